import AsyncHTTPClient
import ConclaveCore
import Foundation
import Logging
import NIOCore

/// `/v1/embeddings` of an OpenAI-compatible backend (vLLM, Ollama, llama-server with
/// `--embeddings`, a hosted API), called through a ``ReplicaPool`` with the same admission,
/// breakers and retries as chat calls.
public struct OpenAICompatibleEmbeddings: Sendable {
    /// Vectors and token usage of one call.
    public struct Result: Sendable {
        /// One vector per input, in input order.
        public var vectors: [[Float]]
        /// Tokens the backend counted.
        public var promptTokens: Int
    }

    private let pool: ReplicaPool
    private let client: HTTPClient
    private let model: String
    private let apiKey: String?
    private let timeout: Duration
    private let logger: Logger

    /// Creates a provider for upstream model `model` over the replicas in `pool`.
    public init(pool: ReplicaPool, model: String, apiKey: String? = nil, timeout: Duration = .seconds(60),
                client: HTTPClient = InferenceHTTPClient.shared(connectTimeout: .seconds(5)),
                logger: Logger = Logger(label: "conclave.inference")) {
        self.pool = pool
        self.client = client
        self.model = model
        self.apiKey = apiKey
        self.timeout = timeout
        self.logger = logger
    }

    /// Embeds `texts` (with `dimensions` passed on where set).
    public func embed(_ texts: [String], dimensions: Int? = nil) async throws -> Result {
        var object: [String: Any] = ["model": model, "input": texts, "encoding_format": "float"]
        if let dimensions { object["dimensions"] = dimensions }
        let body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object))
        return try await pool.withRetries(policy: .init(), deadline: ContinuousClock.now + timeout, logger: logger) { base, remaining in
            let response = try await Upstream.post(body, to: base + "/embeddings", apiKey: apiKey, timeout: remaining,
                                                   client: client, logger: logger)
            let bytes: ByteBuffer
            do {
                bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
            } catch {
                throw Upstream.mapTransportError(error, logger: logger)
            }
            guard response.status == .ok else { throw Upstream.backendError(response.status, body: bytes) }
            guard let decoded = try? JSONDecoder().decode(Wire.self, from: Data(bytes.readableBytesView)),
                  decoded.data.count == texts.count else {
                throw ConclaveError(.modelFailed, "The embeddings backend returned a response that is not an embedding list for the input.",
                                    context: String(buffer: bytes).prefix(300).description)
            }
            let ordered = decoded.data.sorted { ($0.index ?? 0) < ($1.index ?? 0) }.map(\.embedding)
            return Result(vectors: ordered, promptTokens: decoded.usage?.prompt_tokens ?? 0)
        }
    }

    private struct Wire: Decodable {
        struct Item: Decodable {
            var index: Int?
            var embedding: [Float]
        }
        struct Usage: Decodable { var prompt_tokens: Int? }
        var data: [Item]
        var usage: Usage?
    }
}
