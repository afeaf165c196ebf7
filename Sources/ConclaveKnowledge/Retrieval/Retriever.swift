import ConclaveCore

/// Finds evidence for a question.
public protocol Retriever: Sendable {
    /// Up to `limit` passages for `query`, best first.
    func retrieve(_ query: String, limit: Int) async throws -> [Evidence]
}
