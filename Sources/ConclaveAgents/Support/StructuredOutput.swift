import ConclaveCore
import ConclaveInference
import Foundation

/// Calls a model for JSON-schema constrained output and decodes it; any failure (transport,
/// malformed JSON, schema mismatch) is reported as nil so the caller can apply its fallback.
struct StructuredOutput<Value: Decodable & Sendable> {
    let schema: String
    let maxTokens: Int
    /// The role's temperature; nil uses the run's.
    var temperature: Double? = nil

    func request(_ messages: [ChatMessage], model: any ChatModel, context: AgentContext)
        async throws -> (value: Value?, usage: TokenUsage)
    {
        var request = ChatRequest(messages: messages, temperature: temperature ?? context.options.temperature, maxTokens: maxTokens,
                                  seed: context.options.seed, jsonSchema: schema, timeout: context.remaining)
        request.affinityKey = context.affinityKey
        let response: ChatResponse
        do {
            response = try await model.complete(request)
        } catch let error as ConclaveError where error.code == .modelFailed {
            return (nil, TokenUsage())
        }
        return (Self.decode(response.content), response.usage)
    }

    /// Decodes the first JSON object in `text`.
    static func decode(_ text: String) -> Value? {
        guard let start = text.firstIndex(of: "{"), let end = text.lastIndex(of: "}"), start < end else { return nil }
        return try? JSONDecoder().decode(Value.self, from: Data(text[start...end].utf8))
    }
}
