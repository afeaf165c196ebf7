import ConclaveAgents
import ConclaveCore
import ConclaveMessaging
import ConclaveOrchestrator
import ConclaveServer
import ConclaveTesting
import Testing

/// Greetings, thanks, questions about the assistant and out-of-scope requests (cases of our own).
@Suite struct ConversationalTurnTests {
    @Test(arguments: [
        ("Hi!", Plan.Conversational.greeting),
        ("Good morning, Conclave", .greeting),
        ("hello there", .greeting),
        ("Thanks!", .thanks),
        ("Thank you very much for the help", .thanks),
        ("What can you do?", .capabilities),
        ("Hi, who are you?", .capabilities),
        ("Write me a short poem about forklifts", .outOfScope),
        ("Tell me a joke", .outOfScope),
        ("What's the weather like in Rotterdam today?", .outOfScope),
    ])
    func recognised(message: String, kind: Plan.Conversational) {
        #expect(ConversationalTurn.classify(message) == kind)
    }

    @Test(arguments: [
        "Hi, how many days of annual leave do full-time staff get?",
        "Thanks. And for part-time staff?",
        "Tell me about the expense policy",
        "Give me the story behind the Nightjar project",
        "Help me find the on-call engineer for this week",
        "What is the dress code for the Lyon office?",
        "Does the weather delay shipments to Milan?",
    ])
    func questionsAreNot(message: String) {
        #expect(ConversationalTurn.classify(message) == nil)
    }

    /// Runs `question` through the full workflow over the sample passages and a scripted test double.
    func run(_ question: String) async throws -> (state: WorkflowState, answer: Answer, model: ScriptedChatModel) {
        let model = ScriptedChatModel()
        let full = try #require(try WorkflowRegistry().workflows["full"])
        let engine = WorkflowEngine(team: AgentTeam(model: model, retriever: FixedRetriever()), bus: InProcessMessageBus(), eventLog: nil)
        let result = try await engine.run(full, state: WorkflowState(question: question))
        return (result.state, try #require(result.state.answer), model)
    }

    @Test func aGreetingIsAnsweredWithoutAModelCallOrRetrieval() async throws {
        let (state, answer, model) = try await run("Good morning!")
        #expect(answer.text == ResponderAgent.conversationalAnswer(.greeting))
        #expect(answer.citations.isEmpty && !answer.isRefusal && !answer.isNotFound)
        #expect(state.evidence?.isEmpty ?? true)
        #expect(model.requests.isEmpty)
        #expect(state.plan?.conversational == .greeting)
    }

    @Test func aGreetingWithAQuestionIsAnsweredFromTheSources() async throws {
        let (state, answer, _) = try await run("Hello, how many days of paid annual leave do full-time employees get?")
        #expect(answer.citations.first?.sourceID == "DOC-1")
        #expect(state.plan?.conversational == nil)
    }
}
