import ConclaveCore
import ConclaveKnowledge

/// A test double of ``Retriever`` that returns the same passages for every query, instantly.
public struct FixedRetriever: Retriever {
    /// The passages returned.
    public var passages: [Evidence]

    /// Creates a retriever returning `passages` (by default two short policy passages).
    public init(passages: [Evidence] = FixedRetriever.samplePassages) {
        self.passages = passages
    }

    public func retrieve(_ query: String, limit: Int, scope: DocumentScope) async throws -> Retrieval {
        let evidence = passages.filter { scope.allows($0.source.id) }.prefix(limit).map { passage in
            var copy = passage
            copy.subQuestion = query
            return copy
        }
        let withheld = passages.filter { !scope.allows($0.source.id) }.map {
            WithheldSource(documentID: $0.source.id, department: nil,
                           coverage: Coverage.of(query, by: $0.text + " " + ($0.source.section ?? "") + " " + $0.source.title))
        }
        return Retrieval(evidence: Array(evidence), withheld: withheld)
    }

    /// Two passages about annual leave.
    public static let samplePassages: [Evidence] = [
        Evidence(chunkID: "DOC-1#0", source: SourceRef(id: "DOC-1", title: "Annual leave", section: "Entitlement"),
                 text: "Full-time employees get 26 days of paid annual leave per year.", score: 5, subQuestion: ""),
        Evidence(chunkID: "DOC-1#1", source: SourceRef(id: "DOC-1", title: "Annual leave", section: "Carry-over"),
                 text: "Up to 5 unused leave days can be carried over and expire on 30 June.", score: 3, subQuestion: ""),
    ]
}
