import ConclaveCore

/// A chat model: takes messages, returns (or streams) the assistant's reply.
///
/// Implemented by ``OpenAICompatibleChatModel`` for any OpenAI-compatible endpoint (the embedded
/// `llama-server` included) and, in tests, by `ScriptedChatModel` from `ConclaveTesting`.
public protocol ChatModel: Sendable {
    /// Runs one completion and returns the whole reply.
    func complete(_ request: ChatRequest) async throws -> ChatResponse

    /// Runs one completion, calling `onDelta` with each piece of text as the model produces it,
    /// and returns the whole reply once the stream ends.
    func stream(_ request: ChatRequest, onDelta: @Sendable (String) async throws -> Void) async throws -> ChatResponse

    /// True when a backend is ready to take a call now.
    func isReady() async -> Bool
}

/// One call to a chat model.
public struct ChatRequest: Sendable, Hashable {
    /// The conversation sent to the model.
    public var messages: [ChatMessage]
    /// Sampling temperature; `nil` uses the backend default.
    public var temperature: Double?
    /// Upper bound of generated tokens.
    public var maxTokens: Int?
    /// Sampling seed.
    public var seed: Int?
    /// A JSON schema (as JSON text) the reply must conform to.
    public var jsonSchema: String?
    /// Stop sequences.
    public var stop: [String]
    /// Upper bound of this call (the provider's own timeout applies when it is shorter).
    public var timeout: Duration?
    /// Calls with the same key go to the same replica while it has room (its KV cache then
    /// still holds the conversation's prompt prefix); typically the conversation id.
    public var affinityKey: String?

    /// Creates a request.
    public init(messages: [ChatMessage], temperature: Double? = nil, maxTokens: Int? = nil, seed: Int? = nil,
                jsonSchema: String? = nil, stop: [String] = [], timeout: Duration? = nil) {
        self.timeout = timeout
        self.messages = messages
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.seed = seed
        self.jsonSchema = jsonSchema
        self.stop = stop
    }
}

/// The reply of a chat model.
public struct ChatResponse: Sendable, Hashable {
    /// The generated text.
    public var content: String
    /// Tokens used.
    public var usage: TokenUsage
    /// Why generation stopped (`stop`, `length`), as the backend reports it.
    public var finishReason: String?

    /// Creates a response.
    public init(content: String, usage: TokenUsage = TokenUsage(), finishReason: String? = "stop") {
        self.content = content
        self.usage = usage
        self.finishReason = finishReason
    }
}
