import ConclaveCore
import ConclaveEmbeddings
import ConclaveInference
import ConclaveKnowledge
import Foundation
import Hummingbird
import NIOCore

/// `POST /v1/embeddings`: OpenAI's embeddings API over the in-process MiniLM encoder (model id
/// `minilm`). Input is a string or an array of strings (at most 256, each truncated to the
/// model's 256 tokens); `encoding_format` is `float` (default) or `base64` (little-endian float32);
/// `dimensions` is rejected unless it equals 384, since MiniLM cannot shorten its vectors.
struct EmbeddingsController: Sendable {
    let runtime: ConclaveRuntime
    static let maxInputs = 256

    struct Request: Decodable {
        enum Input: Decodable {
            case one(String)
            case many([String])

            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let text = try? container.decode(String.self) {
                    self = .one(text)
                } else if let texts = try? container.decode([String].self) {
                    self = .many(texts)
                } else {
                    throw ConclaveError(.invalidRequest, "input must be a string or an array of strings.", parameter: "input")
                }
            }

            var texts: [String] {
                switch self {
                case .one(let text): return [text]
                case .many(let texts): return texts
                }
            }
        }

        var model: String?
        var input: Input
        var encodingFormat: String?
        var dimensions: Int?
        var user: String?

        enum CodingKeys: String, CodingKey {
            case model, input, dimensions, user
            case encodingFormat = "encoding_format"
        }
    }

    struct Response: Encodable {
        struct Item: Encodable {
            var object = "embedding"
            var index: Int
            var embedding: Vector
        }

        enum Vector: Encodable {
            case floats([Float])
            case base64(String)

            func encode(to encoder: any Encoder) throws {
                var container = encoder.singleValueContainer()
                switch self {
                case .floats(let values): try container.encode(values)
                case .base64(let text): try container.encode(text)
                }
            }
        }

        struct Usage: Encodable {
            var promptTokens: Int
            var totalTokens: Int
            enum CodingKeys: String, CodingKey {
                case promptTokens = "prompt_tokens"
                case totalTokens = "total_tokens"
            }
        }

        var object = "list"
        var data: [Item]
        var model: String
        var usage: Usage
    }

    /// Embeddings of a named model whose endpoints serve `/v1/embeddings`, through its pool.
    private func proxied(_ decoded: Request, model: String, _ remote: OpenAICompatibleEmbeddings,
                         principal: Principal) async throws -> Hummingbird.Response {
        let texts = decoded.input.texts
        guard !texts.isEmpty, texts.count <= Self.maxInputs else {
            throw ConclaveError(.invalidRequest, "input must hold 1 to \(Self.maxInputs) strings.", parameter: "input")
        }
        let format = decoded.encodingFormat ?? "float"
        guard format == "float" || format == "base64" else {
            throw ConclaveError(.invalidRequest, "encoding_format must be float or base64.", parameter: "encoding_format")
        }
        let result = try await remote.embed(texts, dimensions: decoded.dimensions)
        await runtime.limiter.charge(principal, tokens: result.promptTokens)
        return try Self.encode(result.vectors, model: model, format: format, tokens: result.promptTokens)
    }

    static func encode(_ vectors: [[Float]], model: String, format: String, tokens: Int) throws -> Hummingbird.Response {
        let items = vectors.enumerated().map { index, vector in
            Response.Item(index: index, embedding: format == "base64"
                ? .base64(vector.withUnsafeBufferPointer { Data(buffer: $0) }.base64EncodedString()) : .floats(vector))
        }
        let response = Response(data: items, model: model, usage: .init(promptTokens: tokens, totalTokens: tokens))
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Hummingbird.Response(status: .ok, headers: headers, body: .init(byteBuffer: try JSONCoding.encode(response)))
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.post("/v1/embeddings") { request, _ -> Hummingbird.Response in
            var request = request
            let body = try await BodyReader.collect(&request, server: runtime.configuration.server)
            let principal = try await runtime.admit(authorization: request.headers[.authorization])
            let decoded = try OpenAIRequestBody.decode(Request.self, from: Data(body.readableBytesView))
            let model = decoded.model ?? EmbeddingModel.name
            if model != EmbeddingModel.name {
                guard let served = runtime.servedModels[model], let remote = served.embeddings else {
                    let offered = ([runtime.embedder == nil ? nil : EmbeddingModel.name]
                        + runtime.servedModels.values.filter { $0.embeddings != nil }.map(\.name)).compactMap { $0 }.sorted()
                    throw ConclaveError(.modelNotFound, "The model '\(model)' does not serve embeddings; these do: "
                                            + (offered.isEmpty ? "none" : offered.joined(separator: ", ")) + ".", parameter: "model")
                }
                try await runtime.governance.authorize(workflow: served.name, for: principal)
                return try await proxied(decoded, model: served.name, remote, principal: principal)
            }
            guard let embedder = runtime.embedder else {
                throw ConclaveError(.modelNotFound, "No embedding model is configured (its files were not found in .venv or at knowledge.embedding_model_path).")
            }
            let texts = decoded.input.texts
            guard !texts.isEmpty, texts.count <= Self.maxInputs else {
                throw ConclaveError(.invalidRequest, "input must hold 1 to \(Self.maxInputs) strings.", parameter: "input")
            }
            if let dimensions = decoded.dimensions, dimensions != embedder.dimensions {
                throw ConclaveError(.invalidRequest, "\(EmbeddingModel.name) produces \(embedder.dimensions)-dimensional vectors; dimensions \(dimensions) is not supported.",
                                    parameter: "dimensions")
            }
            let format = decoded.encodingFormat ?? "float"
            guard format == "float" || format == "base64" else {
                throw ConclaveError(.invalidRequest, "encoding_format must be float or base64.", parameter: "encoding_format")
            }
            let vectors = try await runBlocking { try embedder.embed(texts) }
            let tokens = texts.reduce(0) { $0 + embedder.tokenize($1).count }
            await runtime.limiter.charge(principal, tokens: tokens)
            return try Self.encode(vectors, model: EmbeddingModel.name, format: format, tokens: tokens)
        }
    }
}
