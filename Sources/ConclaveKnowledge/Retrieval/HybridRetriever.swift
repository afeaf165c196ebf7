import ConclaveCore
import ConclaveStorage
import ConclaveVectors
import ConclaveEmbeddings
import Foundation
import Logging

/// The chunk vectors of one embedding model, in a vector index kept in step with the store.
///
/// Vectors are persisted in the store (`chunk_embeddings`), so a restart only loads them; chunks
/// without a vector (new or changed documents) are embedded when the store's generation moves.
/// The index is exact below `hnswThreshold` vectors and HNSW above.
public actor VectorCatalog {
    /// An immutable view of the index for searching.
    public struct Snapshot: Sendable {
        public let index: any VectorIndex
        /// Length of the index's vectors (0 while the store holds none).
        public let dimensions: Int
        /// Chunk id and document id of each index id.
        public let chunkIDs: [String]
        public let documentIDs: [String]
    }

    private let store: any DocumentStore
    private let embedder: any EmbeddingProvider
    /// The model name the vectors are stored under.
    public let model: String
    private let hnswThreshold: Int
    private let logger: Logger
    private var snapshot: Snapshot?
    private var generation = Int.min

    /// A catalog of the in-process embedder's vectors.
    public init(store: any DocumentStore, embedder: any Embedder, model: String, hnswThreshold: Int = 20_000,
                logger: Logger = Logger(label: "conclave.knowledge.vectors")) {
        self.init(store: store, provider: LocalEmbeddings(embedder), model: model, hnswThreshold: hnswThreshold, logger: logger)
    }

    /// A catalog of `provider`'s vectors, stored under `model`.
    public init(store: any DocumentStore, provider: any EmbeddingProvider, model: String, hnswThreshold: Int = 20_000,
                logger: Logger = Logger(label: "conclave.knowledge.vectors")) {
        self.store = store
        self.embedder = provider
        self.model = model
        self.hnswThreshold = hnswThreshold
        self.logger = logger
    }

    /// The text a chunk is embedded from: its document title, section and text.
    public static func embeddingText(_ input: ChunkEmbeddingInput) -> String {
        [input.title, input.section ?? "", input.text].filter { !$0.isEmpty }.joined(separator: "\n")
    }

    /// The index for the store's current documents, embedding what is missing first.
    public func current() async throws -> Snapshot {
        let now = store.documentsGeneration
        if let snapshot, now == generation { return snapshot }
        let missing = try await store.chunksWithoutEmbedding(model: model)
        if !missing.isEmpty {
            let started = ContinuousClock.now
            for batch in stride(from: 0, to: missing.count, by: 64).map({ Array(missing[$0..<min($0 + 64, missing.count)]) }) {
                let vectors = try await embedder.embed(batch.map(Self.embeddingText))
                guard vectors.count == batch.count else {
                    throw ConclaveError(.modelFailed, "The embedding model returned \(vectors.count) vectors for \(batch.count) chunks.")
                }
                try await store.storeEmbeddings(zip(batch, vectors).map { ($0.chunkID, $1) }, model: model)
            }
            logger.info("embedded chunks", metadata: ["chunks": "\(missing.count)", "model": "\(model)",
                                                      "seconds": "\(ContinuousClock.now - started)"])
        }
        let stored = try await store.embeddings(model: model)
        // The model's vectors all have one length; a store that holds none yet has an empty index.
        let dimensions = stored.first?.vector.count ?? 0
        let useHNSW = stored.count >= hnswThreshold
        let index: any VectorIndex = try await runBlocking {
            // An empty store still gets an (empty) index; its dimension 0 turns vector search off.
            let size = max(dimensions, 1)
            let index: any VectorIndex = useHNSW ? HNSWIndex(dimensions: size) : ExactIndex(dimensions: size)
            for (id, item) in stored.enumerated() where item.vector.count == dimensions {
                try index.add(id: id, vector: item.vector)
            }
            return index
        }
        let fresh = Snapshot(index: index, dimensions: dimensions, chunkIDs: stored.map(\.chunkID), documentIDs: stored.map(\.documentID))
        snapshot = fresh
        generation = now
        return fresh
    }
}

/// Retrieval over documents by BM25, by vectors, or both fused by reciprocal rank fusion.
///
/// In every mode the document scope filters before ranking: the lexical search applies it inside
/// its query, the vector search inside the index's search (a filtered search that still returns
/// the best readable chunks), so no restricted chunk reaches an agent. Superseded documents rank
/// after their successors, as with BM25 alone. Withheld documents are reported by the lexical
/// search.
public struct HybridRetriever: Retriever {
    /// What the retriever ranks by.
    public enum Mode: String, Sendable, Codable, CaseIterable {
        case bm25, vector, hybrid
    }

    private let store: any DocumentStore
    private let lexical: BM25Retriever
    private let embedder: any EmbeddingProvider
    private let catalog: VectorCatalog
    /// The ranking mode.
    public let mode: Mode
    /// Reciprocal rank fusion constant (60 in the original paper and in most engines).
    public let fusionK: Double

    /// A retriever whose query vectors come from the in-process embedder.
    public init(store: any DocumentStore, embedder: any Embedder, catalog: VectorCatalog, mode: Mode = .hybrid, fusionK: Double = 60) {
        self.init(store: store, provider: LocalEmbeddings(embedder), catalog: catalog, mode: mode, fusionK: fusionK)
    }

    /// A retriever whose query vectors come from `provider` (the model of `catalog`'s vectors).
    public init(store: any DocumentStore, provider: any EmbeddingProvider, catalog: VectorCatalog, mode: Mode = .hybrid,
                fusionK: Double = 60) {
        self.store = store
        self.lexical = BM25Retriever(store: store)
        self.embedder = provider
        self.catalog = catalog
        self.mode = mode
        self.fusionK = fusionK
    }

    public func retrieve(_ query: String, limit: Int, scope: DocumentScope) async throws -> Retrieval {
        let breadth = max(limit * 3, 12)
        let lexicalResult = mode == .vector ? Retrieval(evidence: []) : try await lexical.retrieve(query, limit: breadth, scope: scope)
        if mode == .bm25 {
            return Retrieval(evidence: Array(lexicalResult.evidence.prefix(limit)), withheld: lexicalResult.withheld)
        }
        let snapshot = try await catalog.current()
        guard snapshot.dimensions > 0, let vector = try await embedder.embed([query]).first,
              vector.count == snapshot.dimensions else { return lexicalResult }
        let documentIDs = snapshot.documentIDs
        let matches = scope.searchableDocumentIDs == nil
            ? snapshot.index.search(vector, k: breadth)
            : snapshot.index.search(vector, k: breadth, filter: { scope.allows(documentIDs[$0]) })
        var fused: [String: Double] = [:]
        for (rank, item) in lexicalResult.evidence.enumerated() { fused[item.chunkID, default: 0] += 1 / (fusionK + Double(rank + 1)) }
        for (rank, match) in matches.enumerated() {
            fused[snapshot.chunkIDs[match.id], default: 0] += 1 / (fusionK + Double(rank + 1))
        }
        let ranked = fused.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit * 2)
        var hits = try await store.chunkHits(ids: ranked.map(\.key)).filter { scope.allows($0.chunk.documentID) }
        let top = ranked.first?.value ?? 1
        for index in hits.indices { hits[index].score = 10 * (fused[hits[index].chunk.id] ?? 0) / top }
        let evidence = BM25Retriever.demoteSuperseded(hits, query: query).prefix(limit).map { hit in
            Evidence(chunkID: hit.chunk.id, source: SourceRef(id: hit.chunk.documentID, title: hit.documentTitle, section: hit.chunk.section),
                     text: hit.chunk.text, score: hit.score, subQuestion: query)
        }
        return Retrieval(evidence: Array(evidence), withheld: lexicalResult.withheld)
    }
}
