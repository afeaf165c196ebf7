import ConclaveAgents
import ConclaveCore
import ConclaveOrchestrator

/// Conclave's extension of a completion: where the answer came from and how it was produced.
public struct ConclaveAnnotations: Sendable, Codable {
    /// Run id (its event log is stored under this id).
    public var runID: String
    /// Workflow that produced the answer.
    public var workflow: String
    /// The version of the reloadable configuration (workflows, policy, SQL templates) the
    /// request ran on (`conclave reload`).
    public var configVersion: Int
    /// The version of the agents' prompts file (`workflows.prompts_file`) the answer was made with.
    public var promptsVersion: String
    /// Citations, in marker order.
    public var citations: [Citation]
    /// One entry per executed step.
    public var trace: [StepTrace]

    enum CodingKeys: String, CodingKey {
        case runID = "run_id"
        case configVersion = "config_version"
        case promptsVersion = "prompts_version"
        case workflow, citations, trace
    }
}

/// Token usage in OpenAI's shape.
public struct UsageBody: Sendable, Codable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int

    init(_ usage: TokenUsage) {
        promptTokens = usage.promptTokens
        completionTokens = usage.completionTokens
        totalTokens = usage.totalTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case totalTokens = "total_tokens"
    }
}

/// A non-streaming `chat.completion` response.
public struct ChatCompletionResponse: Sendable, Codable {
    public struct Choice: Sendable, Codable {
        public struct Message: Sendable, Codable {
            public var role: String
            public var content: String
        }
        public var index: Int
        public var message: Message
        public var finishReason: String

        enum CodingKeys: String, CodingKey {
            case index, message
            case finishReason = "finish_reason"
        }
    }

    public var id: String
    public var object = "chat.completion"
    public var created: Int
    public var model: String
    public var choices: [Choice]
    public var usage: UsageBody
    public var conversationID: String
    public var conclave: ConclaveAnnotations

    enum CodingKeys: String, CodingKey {
        case id, object, created, model, choices, usage, conclave
        case conversationID = "conversation_id"
    }
}

/// One `chat.completion.chunk` of a streamed response.
public struct ChatCompletionChunk: Sendable, Codable {
    public struct Choice: Sendable, Codable {
        public struct Delta: Sendable, Codable {
            public var role: String?
            public var content: String?
        }
        public var index: Int
        public var delta: Delta
        public var finishReason: String?

        enum CodingKeys: String, CodingKey {
            case index, delta
            case finishReason = "finish_reason"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(delta, forKey: .delta)
            try c.encode(finishReason, forKey: .finishReason)  // explicit null, as OpenAI sends
        }
    }

    public var id: String
    public var object = "chat.completion.chunk"
    public var created: Int
    public var model: String
    public var choices: [Choice]
    public var usage: UsageBody?
    public var conversationID: String
    public var conclave: ConclaveAnnotations?

    enum CodingKeys: String, CodingKey {
        case id, object, created, model, choices, usage, conclave
        case conversationID = "conversation_id"
    }
}

/// `GET /v1/models` entries.
public struct ModelList: Sendable, Codable {
    public struct Entry: Sendable, Codable {
        public var id: String
        public var object = "model"
        public var created: Int
        public var ownedBy = "conclave"
        public var description: String

        enum CodingKeys: String, CodingKey {
            case id, object, created, description
            case ownedBy = "owned_by"
        }
    }
    public var object = "list"
    public var data: [Entry]
}
