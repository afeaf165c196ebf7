import ConclaveCore

/// Stores conversations and their messages.
public protocol ConversationStore: Sendable {
    /// Creates a conversation.
    func createConversation(_ conversation: Conversation) async throws
    /// Loads a conversation with its messages, or nil if it does not exist.
    func conversation(id: String) async throws -> Conversation?
    /// Appends messages (one turn: the user message and the answer) atomically.
    func appendMessages(_ messages: [ChatMessage], toConversation id: String) async throws
    /// The owner's conversations, most recently active first, at most `limit`.
    func conversations(ownedBy userID: String, limit: Int) async throws -> [ConversationSummary]
}
