@testable import ConclaveAgents
import ConclaveCore
import ConclaveInference
import ConclaveMessaging
import ConclaveOrchestrator
import ConclaveServer
import ConclaveTesting
import Testing

/// The responder after a validator releases only sentences the validated facts support.
@Suite struct GroundingTests {
    let full: Workflow
    let passages = [
        Evidence(chunkID: "POL-7#0", source: SourceRef(id: "POL-7", title: "Bicycle scheme", section: "Allowance"),
                 text: "Staff who cycle to work receive a bicycle allowance of EUR 35 per month.", score: 4, subQuestion: ""),
    ]

    init() throws {
        full = try #require(try WorkflowRegistry().workflows["full"])
    }

    /// Runs `full` with the model wording the answer (`answer_phrasing: model`), which the
    /// grounding filter checks sentence by sentence.
    private func run(answer: String, question: String) async throws -> Answer {
        let model = ScriptedChatModel { request in
            request.jsonSchema == nil ? answer : try ScriptedChatModel.defaultScript(request)
        }
        let engine = WorkflowEngine(team: AgentTeam(model: model, retriever: FixedRetriever(passages: passages), answerPhrasing: .model),
                                    bus: InProcessMessageBus(), eventLog: nil)
        let result = try await engine.run(full, state: WorkflowState(question: question))
        return try #require(result.state.answer)
    }

    @Test func aValueShownOnlyMaskedIsRefusedAsRestricted() async throws {
        let masked = [Evidence(chunkID: "HR-9#0", source: SourceRef(id: "HR-9", title: "Case note", section: "Employee details"),
                               text: "| Salary account | [restricted] |\n| Work e-mail | j.doe@example.com |", score: 4, subQuestion: "")]
        let model = ScriptedChatModel()
        let engine = WorkflowEngine(team: AgentTeam(model: model, retriever: FixedRetriever(passages: masked)),
                                    bus: InProcessMessageBus(), eventLog: nil)
        let result = try await engine.run(full, state: WorkflowState(question: "What is the salary account in the case note?"))
        let answer = try #require(result.state.answer)
        #expect(answer.isRefusal && answer.text.contains("restricted"))
        // Another field of the same row is answered normally.
        let other = try await engine.run(full, state: WorkflowState(question: "What is the work e-mail in the case note?"))
        #expect(other.state.answer?.isRefusal == false)
    }

    @Test func supportedSentenceIsReleasedWithItsCitation() async throws {
        let answer = try await run(answer: "The bicycle allowance is EUR 35 per month [1].",
                                   question: "How large is the bicycle allowance for staff who cycle?")
        #expect(answer.text.contains("EUR 35"))
        #expect(answer.citations.first?.sourceID == "POL-7")
        #expect(!answer.isNotFound)
    }

    @Test func inventedNumberIsNeverStreamed() async throws {
        let answer = try await run(answer: "The bicycle allowance is EUR 50 per month [1].",
                                   question: "How large is the bicycle allowance for staff who cycle?")
        #expect(!answer.text.contains("50"))
        #expect(answer.isNotFound)
        #expect(answer.citations.isEmpty)
    }

    @Test func unsupportedSentenceIsDroppedAndSupportedOneKept() async throws {
        let answer = try await run(
            answer: "Staff who cycle receive EUR 35 per month [1]. The scheme was founded by Queen Wilhelmina in Utrecht.",
            question: "How large is the bicycle allowance for staff who cycle?")
        #expect(answer.text.contains("EUR 35"))
        #expect(!answer.text.contains("Wilhelmina"))
    }

    @Test func worldKnowledgeAnswerBecomesNotFound() async throws {
        let answer = try await run(answer: "The capital of the bicycle country is Amsterdam.",
                                   question: "What is the capital of the bicycle country?")
        #expect(answer.isNotFound)
    }
}

@Suite struct GroundingFilterTests {
    @Test func sentencesAreJudgedAcrossDeltasAndDecimalsDoNotSplitThem() {
        var filter = GroundingFilter(facts: ["Mileage is reimbursed at EUR 0.30 per km, up to 1,500 km a month."],
                                     question: "What is the mileage rate?")
        var out = filter.append("Mileage is paid at EUR 0.")
        #expect(out.isEmpty)
        out += filter.append("30 per km [1]. It was EUR 0.45 in 1999.")
        #expect(out == "Mileage is paid at EUR 0.30 per km [1].")
        out += filter.finish()
        #expect(!out.contains("0.45"))
        #expect(filter.dropped == ["It was EUR 0.45 in 1999."])
        #expect(GroundingFilter.numbers(in: "up to 1,500 km, EUR 0.30.") == ["1500", "0.30"])
        #expect(GroundingFilter.removingMarkers("paid [1][2] at [x]") == "paid  at [x]")
    }
}

/// The default `quote` phrasing: the answer states the validated facts as the documents word them.
@Suite struct QuotedAnswerTests {
    let full: Workflow
    let passages = [
        Evidence(chunkID: "TRV-2#0", source: SourceRef(id: "TRV-2", title: "Travel rules", section: "Hotel limits per night"),
                 text: """
                     | Band | Standard city | Capital city | Notes |
                     |---|---|---|---|
                     | B1 - B3 | EUR 120 | EUR 150 | Breakfast is not included in the limit and is claimed separately under the meals rule of section 4, with receipts for every night of the stay and the booking confirmation attached to the claim |
                     | B4 - B6 | EUR 140 | EUR 175 | As for B1 - B3 |
                     """, score: 4, subQuestion: ""),
        Evidence(chunkID: "TRV-2#1", source: SourceRef(id: "TRV-2", title: "Travel rules", section: "Booking"),
                 text: "Hotels are booked through the travel desk at least five working days before the trip.", score: 3, subQuestion: ""),
    ]

    init() throws {
        full = try #require(try WorkflowRegistry().workflows["full"])
    }

    /// Runs `full` with a model whose free-text answers would invent a value.
    private func ask(_ question: String) async throws -> (Answer, ScriptedChatModel) {
        let model = ScriptedChatModel { request in
            request.jsonSchema == nil ? "The limit is EUR 999 per night [1]." : try ScriptedChatModel.defaultScript(request)
        }
        let engine = WorkflowEngine(team: AgentTeam(model: model, retriever: FixedRetriever(passages: passages)),
                                    bus: InProcessMessageBus(), eventLog: nil)
        let result = try await engine.run(full, state: WorkflowState(question: question))
        return (try #require(result.state.answer), model)
    }

    @Test func theAnswerStatesTheCellUnderTheAskedColumnWithItsCitation() async throws {
        let (answer, model) = try await ask("What is the capital city hotel limit for band B4?")
        #expect(answer.text.contains("EUR 175"), "\(answer.text)")
        #expect(!answer.text.contains("999"))
        #expect(answer.text.contains("[1]"))
        #expect(answer.citations.first?.sourceID == "TRV-2")
        // The responder made no free-text call: every model call asked for JSON (plan, reason, validate).
        #expect(model.requests.allSatisfy { $0.jsonSchema != nil })
    }

    @Test func aQuestionAboutABandNoFactNamesIsNotAnswered() async throws {
        let (answer, _) = try await ask("What is the capital city hotel limit for band B9?")
        #expect(answer.isNotFound, "\(answer.text)")
        #expect(!answer.text.contains("EUR"))
    }

    @Test func aSecondFactIsStatedOnlyWhenItCoversMoreOfTheQuestion() {
        let hotel = (text: "Band: B4 - B6; Capital city: EUR 175", source: SourceRef(id: "T", title: "T"))
        let again = (text: "Band: B4 - B6; Standard city: EUR 140", source: SourceRef(id: "T", title: "T"))
        let booking = (text: "Hotels are booked through the travel desk five working days ahead.", source: SourceRef(id: "T", title: "T"))
        let one = ResponderAgent.factsToState([hotel, again], question: "What is the capital city limit for band B4?")
        #expect(one.map(\.text) == [hotel.text])
        let two = ResponderAgent.factsToState([hotel, again, booking], question: "What is the B4 capital city limit and how early are hotels booked?")
        #expect(two.map(\.text) == [hotel.text, booking.text])
    }
}
