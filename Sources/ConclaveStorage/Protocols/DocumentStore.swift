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
    /// Chunks that have no vector for the embedding `model` yet, in insertion order.
    func chunksWithoutEmbedding(model: String) async throws -> [ChunkEmbeddingInput]
    /// Stores chunk vectors for `model` (replacing earlier ones).
    func storeEmbeddings(_ vectors: [(chunkID: String, vector: [Float])], model: String) async throws
    /// Every stored vector for `model`, with its chunk's document.
    func embeddings(model: String) async throws -> [StoredEmbedding]
    /// The chunks with these ids, in the given order (missing ids are skipped).
    func chunkHits(ids: [String]) async throws -> [ChunkHit]
    /// A document's chunks in order (none for an unknown id).
    func chunks(ofDocument id: String) async throws -> [ChunkRecord]
}

/// What an embedding model reads of a chunk.
public struct ChunkEmbeddingInput: Sendable, Hashable {
    public var chunkID: String
    public var title: String
    public var section: String?
    public var text: String

    public init(chunkID: String, title: String, section: String?, text: String) {
        self.chunkID = chunkID
        self.title = title
        self.section = section
        self.text = text
    }
}

/// A stored chunk vector.
public struct StoredEmbedding: Sendable {
    public var chunkID: String
    public var documentID: String
    public var vector: [Float]

    public init(chunkID: String, documentID: String, vector: [Float]) {
        self.chunkID = chunkID
        self.documentID = documentID
        self.vector = vector
    }
}

extension DocumentStore {
    /// Full-text search over every document.
    /// The document and its chunks in order, or nil when no document has that id.
    public func document(id: String) async throws -> (DocumentRecord, [ChunkRecord])? {
        guard let document = try await documents().first(where: { $0.id == id }) else { return nil }
        return (document, try await chunks(ofDocument: id))
    }

    public func searchChunks(matching expression: String, limit: Int) async throws -> [ChunkHit] {
        try await searchChunks(matching: expression, limit: limit, allowedDocuments: nil)
    }
}
