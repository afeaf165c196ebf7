@testable import ConclaveAgents
import ConclaveCore
import ConclaveTesting
import Testing

/// Yes/no questions whose claim no validated fact states, on cases of our own.
@Suite struct ClaimCheckTests {
    let paid = ValidatedFact(text: "Invoice 9001: status paid", source: SourceRef(id: "db:invoices", title: "invoices", section: nil),
                             chunkID: "db:invoices#1", isRecord: true)

    @Test func theClaimOfAPerfectPassiveQuestionIsCheckedAgainstTheFacts() {
        #expect(ValidatorAgent.unsupportedClaim(of: "Have the late fees of Acme been waived?", facts: [paid]) == "waived")
        #expect(ValidatorAgent.unsupportedClaim(of: "Has invoice 9001 been paid yet?", facts: [paid]) == nil)
        // Other questions make no such claim.
        #expect(ValidatorAgent.unsupportedClaim(of: "What has been waived for Acme?", facts: [paid]) == nil)
        #expect(ValidatorAgent.unsupportedClaim(of: "Is invoice 9001 overdue?", facts: [paid]) == nil)
    }

    @Test func theAnswerSaysSoFirstThenStatesTheFacts() async throws {
        var state = WorkflowState(question: "Have the late fees of Acme been waived?")
        var validation = Validation(answerable: true, facts: [paid], rationale: "test")
        validation.unsupportedClaim = "waived"
        state.validation = validation
        let responder = ResponderAgent(model: ScriptedChatModel(), retriever: FixedRetriever())
        let result = try await responder.run(state, context: AgentContext())
        guard case .answer(let answer) = result.output else {
            Issue.record("the responder gave no answer")
            return
        }
        #expect(answer.text.hasPrefix(ResponderAgent.unsupportedClaimAnswer("waived")))
        #expect(answer.text.contains("Invoice 9001: status paid [1]"))
        #expect(!answer.text.contains("have been waived"))
    }
}
