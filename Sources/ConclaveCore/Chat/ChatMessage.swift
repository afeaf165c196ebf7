/// One message of a conversation, in the roles the OpenAI chat API uses.
public struct ChatMessage: Sendable, Codable, Hashable {
    /// Who wrote the message.
    public enum Role: String, Sendable, Codable, Hashable {
        case system, user, assistant, tool
    }

    /// The message's author role.
    public var role: Role
    /// The message text.
    public var content: String

    /// Creates a message.
    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }

    /// A system message.
    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: .system, content: content) }
    /// A user message.
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: .user, content: content) }
    /// An assistant message.
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: .assistant, content: content) }
}
