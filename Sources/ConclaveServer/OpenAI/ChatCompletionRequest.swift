import ConclaveCore
import Foundation

/// The body of `POST /v1/chat/completions`, as OpenAI defines it (the fields Conclave uses;
/// others are accepted and ignored).
public struct ChatCompletionRequest: Sendable, Decodable {
    /// One request message. `content` may be a string or an array of text parts.
    public struct Message: Sendable, Decodable {
        public var role: ChatMessage.Role
        public var content: String

        enum CodingKeys: String, CodingKey { case role, content }

        struct Part: Decodable {
            var type: String
            var text: String?
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let roleName = try c.decode(String.self, forKey: .role)
            switch roleName {
            case "system", "developer": role = .system
            case "user": role = .user
            case "assistant": role = .assistant
            case "tool": role = .tool
            default:
                throw ConclaveError(.invalidRequest, "Invalid role '\(roleName)'; expected system, developer, user, assistant or tool.",
                                    parameter: "messages")
            }
            if let text = try? c.decode(String.self, forKey: .content) {
                content = text
            } else if let parts = try? c.decode([Part].self, forKey: .content) {
                content = parts.compactMap { $0.type == "text" ? $0.text : nil }.joined(separator: "\n")
            } else if (try? c.decodeNil(forKey: .content)) == true || !c.contains(.content) {
                content = ""
            } else {
                throw ConclaveError(.invalidRequest, "Message content must be a string or an array of text parts.",
                                    parameter: "messages")
            }
        }

        public init(role: ChatMessage.Role, content: String) {
            self.role = role
            self.content = content
        }
    }

    /// Streaming options.
    public struct StreamOptions: Sendable, Decodable {
        public var includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    public var model: String?
    public var messages: [Message]
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var temperature: Double?
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var seed: Int?
    public var user: String?
    public var metadata: [String: String]?

    enum CodingKeys: String, CodingKey {
        case model, messages, stream, temperature, seed, user, metadata
        case streamOptions = "stream_options"
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
    }

    /// Decodes and checks a request body, throwing `invalidRequest` errors that name the parameter.
    /// `maxMessages` and `maxTokens` are the server's limits (`server.max_messages`, `server.max_tokens`).
    public static func decode(_ data: Data, maxMessages: Int = .max, maxTokens: Int = .max) throws -> ChatCompletionRequest {
        let request = try OpenAIRequestBody.decode(ChatCompletionRequest.self, from: data)
        try request.validate(maxMessages: maxMessages, maxTokens: maxTokens)
        return request
    }

    /// The completion-token limit the request asks for (`max_completion_tokens`, OpenAI's current
    /// name, wins over the older `max_tokens`).
    public var completionTokenLimit: Int? { maxCompletionTokens ?? maxTokens }

    func validate(maxMessages: Int, maxTokens limit: Int) throws {
        guard !messages.isEmpty else {
            throw ConclaveError(.invalidRequest, "'messages' must contain at least one message.", parameter: "messages")
        }
        guard messages.count <= maxMessages else {
            throw ConclaveError(.invalidRequest, "'messages' holds \(messages.count) messages; at most \(maxMessages) are accepted.",
                                parameter: "messages")
        }
        guard let last = messages.last, last.role == .user,
              !last.content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ConclaveError(.invalidRequest, "The last message must be a non-empty user message.", parameter: "messages")
        }
        if let t = temperature, !(0...2).contains(t) {
            throw ConclaveError(.invalidRequest, "'temperature' must be between 0 and 2.", parameter: "temperature")
        }
        for (name, value) in [("max_tokens", maxTokens), ("max_completion_tokens", maxCompletionTokens)] {
            guard let value else { continue }
            guard value >= 1 else { throw ConclaveError(.invalidRequest, "'\(name)' must be at least 1.", parameter: name) }
            guard value <= limit else {
                throw ConclaveError(.invalidRequest, "'\(name)' must be at most \(limit).", parameter: name)
            }
        }
    }
}

/// Decodes an OpenAI-style request body, turning decoding failures into `invalidRequest` errors
/// that name the parameter (shared by every route that takes a JSON body).
enum OpenAIRequestBody {
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as ConclaveError {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            let path = (context.codingPath + [key]).map(\.stringValue).first ?? key.stringValue
            throw ConclaveError(.invalidRequest, "Missing required parameter: '\(key.stringValue)'.", parameter: path)
        } catch let DecodingError.typeMismatch(_, context) {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            throw ConclaveError(.invalidRequest, "Invalid type for '\(path)'.", parameter: context.codingPath.first?.stringValue)
        } catch let DecodingError.valueNotFound(_, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ConclaveError(.invalidRequest, "Missing value for '\(path)'.", parameter: context.codingPath.first?.stringValue)
        } catch {
            throw ConclaveError(.invalidRequest, "The request body is not valid JSON.")
        }
    }
}
