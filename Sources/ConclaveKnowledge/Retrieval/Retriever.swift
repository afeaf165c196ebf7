import ConclaveCore

/// What a search found: passages the principal may read, and documents that matched but may not
/// be read (identity only, never text).
public struct Retrieval: Sendable, Hashable {
    /// Readable passages, best first.
    public var evidence: [Evidence]
    /// Matching documents outside the principal's scope.
    public var withheld: [WithheldSource]

    /// Creates a result.
    public init(evidence: [Evidence], withheld: [WithheldSource] = []) {
        self.evidence = evidence
        self.withheld = withheld
    }
}

/// Finds evidence for a question.
public protocol Retriever: Sendable {
    /// Up to `limit` passages for `query` from documents in `scope`, best first, and the documents
    /// outside the scope that matched. A passage outside the scope must never be returned.
    func retrieve(_ query: String, limit: Int, scope: DocumentScope) async throws -> Retrieval
}

extension Retriever {
    /// Up to `limit` passages for `query` from every document.
    public func retrieve(_ query: String, limit: Int) async throws -> [Evidence] {
        try await retrieve(query, limit: limit, scope: .unrestricted).evidence
    }
}

/// How much of a query's content words a passage covers.
public enum Coverage {
    /// Fraction of `query`'s stemmed content words found in `text`.
    public static func of(_ query: String, by text: String) -> Double {
        let wanted = TermSet(query)
        guard !wanted.isEmpty else { return 0 }
        return Double(wanted.intersectionCount(TermSet(text))) / Double(wanted.count)
    }
}

/// A connector that answers questions from a system other than the documents (a database, an
/// internal API). It returns evidence only when it can serve the question with confidence, and
/// reports the sources it withheld from the principal instead of their content.
public protocol EvidenceSource: Sendable {
    /// The data-access mode that enables it.
    var mode: DataAccessMode { get }
    /// Evidence for `question` within `scope`.
    func lookup(_ question: String, scope: DocumentScope) async throws -> Retrieval
}

extension DatabaseConnector: EvidenceSource {
    public var mode: DataAccessMode { .database }

    public func lookup(_ question: String, scope: DocumentScope) async throws -> Retrieval {
        evidence(for: question, scope: scope)
    }
}
