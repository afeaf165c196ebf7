import ConclaveEmbeddings
import ConclaveInference
import ConclaveVectors
import Foundation

/// Where retrieval's vectors come from: the in-process MiniLM (``LocalEmbeddings``), or any
/// OpenAI-compatible `/v1/embeddings` endpoint (``RemoteEmbeddings``; `knowledge.embedding_model`
/// naming an `inference.models` entry with `embeddings: true`).
public protocol EmbeddingProvider: Sendable {
    /// One L2-normalised vector per text, in order.
    func embed(_ texts: [String]) async throws -> [[Float]]
}

/// The in-process embedder. A batch runs off the cooperative pool; a single query inline (its
/// few milliseconds cost less than the hop to another thread).
public struct LocalEmbeddings: EmbeddingProvider {
    public let embedder: any Embedder

    public init(_ embedder: any Embedder) { self.embedder = embedder }

    public func embed(_ texts: [String]) async throws -> [[Float]] {
        if texts.count <= 1 { return try embedder.embed(texts) }
        let embedder = self.embedder
        return try await runBlocking { try embedder.embed(texts) }
    }
}

/// An OpenAI-compatible `/v1/embeddings` endpoint, called through its replica pool (admission,
/// breakers, retries). Its vectors are L2-normalised here: not every backend does it.
public struct RemoteEmbeddings: EmbeddingProvider {
    public let client: OpenAICompatibleEmbeddings

    public init(_ client: OpenAICompatibleEmbeddings) { self.client = client }

    public func embed(_ texts: [String]) async throws -> [[Float]] {
        try await client.embed(texts).vectors.map(VectorMath.normalized)
    }
}
