import ConclaveAgents
import ConclaveCore
import ConclaveKnowledge
import ConclaveTesting
import Testing

/// A question that names a document by a code in its id or title reads more of that document.
@Suite struct DocumentReferenceTests {
    /// A short answer passage of another document ranks first; the case note's eight passages follow.
    static let passages: [Evidence] = {
        let other = Evidence(chunkID: "OTHER-1#0", source: SourceRef(id: "OTHER-1", title: "Payroll controls", section: nil),
                             text: "Bank-detail changes are verified by a call-back.", score: 9, subQuestion: "")
        let note = (0..<8).map { index in
            Evidence(chunkID: "CASE-7#\(index)", source: SourceRef(id: "CASE-7", title: "Case note CASE-2024-77 - bank details", section: nil),
                     text: "Case note paragraph \(index).", score: 8 - Double(index), subQuestion: "")
        }
        return [note[0], other] + note.dropFirst()
    }()

    func evidence(_ question: String, scope: DocumentScope = .unrestricted) async throws -> [Evidence] {
        let agent = RetrieverAgent(retriever: FixedRetriever(passages: Self.passages), limit: 2)
        let result = try await agent.run(WorkflowState(question: question, scope: scope), context: AgentContext())
        guard case .evidence(let evidence, _) = result.output else { Issue.record("no evidence"); return [] }
        return evidence
    }

    @Test func aDocumentNamedByItsCodeIsReadFurther() async throws {
        let ids = try await evidence("What bank account is recorded in case CASE-2024-77?").map(\.chunkID)
        #expect(ids.contains("CASE-7#7"))
        #expect(ids.contains("OTHER-1#0"))
        #expect(Set(ids).count == ids.count)
    }

    @Test(arguments: ["What bank account is recorded in the case?", "What bank account is recorded for vehicle VH-122?"])
    func withoutACodeOfARetrievedDocumentNothingIsAdded(question: String) async throws {
        let ids = try await evidence(question).map(\.chunkID)
        #expect(!ids.contains("CASE-7#7"))
    }

    @Test func aCodeThatIsADocumentIDIsReadEvenWhenNotRetrieved() async throws {
        // OTHER-1 ranks below the retrieval limit for this question, but the question names it.
        let agent = RetrieverAgent(retriever: FixedRetriever(passages: Array(Self.passages.dropFirst(2)) + [Self.passages[1]]), limit: 1)
        let result = try await agent.run(WorkflowState(question: "What does OTHER-1 say about bank details?"), context: AgentContext())
        guard case .evidence(let evidence, _) = result.output else { Issue.record("no evidence"); return }
        #expect(evidence.contains { $0.chunkID == "OTHER-1#0" })
    }

    @Test func theHopStaysInsideTheScope() async throws {
        let scope = DocumentScope(allowedDocumentIDs: ["OTHER-1"])
        let ids = try await evidence("What bank account is recorded in case CASE-2024-77?", scope: scope).map(\.chunkID)
        #expect(ids.allSatisfy { $0.hasPrefix("OTHER-1") })
    }

    @Test func codesAreHyphenatedLettersAndDigits() {
        #expect(RetrieverAgent.documentCodes(in: "Who handles HR case HRC-2025-014, and SEC-003?") == ["hrc-2025-014", "sec-003"])
        #expect(RetrieverAgent.documentCodes(in: "Is the on-call rota in 2025 e-mailed to G5 staff?").isEmpty)
    }
}
