import ConclaveCore

/// Stores ingested documents and their chunks, and searches the chunks by BM25.
public protocol DocumentStore: Sendable {
    /// Content hash of a stored document, or nil if it is not stored.
    func contentHash(ofDocument id: String) async throws -> String?
    /// Replaces a document and all its chunks in one transaction.
    func replaceDocument(_ document: DocumentRecord, chunks: [ChunkRecord]) async throws
    /// Deletes a document and its chunks.
    func deleteDocument(id: String) async throws
    /// All stored documents.
    func documents() async throws -> [DocumentRecord]
    /// Full-text search over chunks with an FTS5 match expression, best first. With
    /// `allowedDocuments`, only chunks of those documents are considered (the ACL pre-filter runs
    /// inside the query, so the best allowed chunks are found however many others rank higher).
    func searchChunks(matching expression: String, limit: Int, allowedDocuments: Set<String>?) async throws -> [ChunkHit]
    /// Number of stored chunks.
    func chunkCount() async throws -> Int
    /// A number that changes whenever this store instance changes a document (for caches).
    var documentsGeneration: Int { get }
}

extension DocumentStore {
    /// Full-text search over every document.
    public func searchChunks(matching expression: String, limit: Int) async throws -> [ChunkHit] {
        try await searchChunks(matching: expression, limit: limit, allowedDocuments: nil)
    }
}
