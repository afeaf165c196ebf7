import Foundation

/// A stored conversation: the context that follow-up turns are resolved against.
public struct Conversation: Sendable, Codable, Hashable {
    /// Conversation id (`conv_…`), returned to clients as `conversation_id`.
    public var id: String
    /// The user who owns the conversation.
    public var userID: String
    /// Messages in order, oldest first.
    public var messages: [ChatMessage]
    /// When the conversation was created.
    public var createdAt: Date

    /// Creates a conversation.
    public init(id: String, userID: String, messages: [ChatMessage] = [], createdAt: Date = Date()) {
        self.id = id
        self.userID = userID
        self.messages = messages
        self.createdAt = createdAt
    }

    /// A new random conversation id.
    public static func newID() -> String { "conv_" + RandomID.make() }
}

/// A conversation in a list: no messages, but when it was last active and its opening question.
public struct ConversationSummary: Sendable, Codable, Hashable {
    /// Conversation id.
    public var id: String
    /// When it was created.
    public var createdAt: Date
    /// When its last message was stored (its creation time when it has none).
    public var updatedAt: Date
    /// Messages stored.
    public var messageCount: Int
    /// Its first user message, at most ``titleLength`` characters.
    public var title: String

    /// Longest title kept.
    public static let titleLength = 120

    /// Creates a summary; `title` is shortened to ``titleLength`` characters.
    public init(id: String, createdAt: Date, updatedAt: Date, messageCount: Int, title: String) {
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.messageCount = messageCount
        self.title = title.count > Self.titleLength ? String(title.prefix(Self.titleLength - 1)) + "…" : title
    }
}

/// Short random identifiers for conversations, runs and completions.
public enum RandomID {
    /// 24 lowercase hexadecimal characters from the system random generator.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let a = generator.next() as UInt64
        let b = generator.next() as UInt32
        return String(a, radix: 16).leftPadded(to: 16) + String(b, radix: 16).leftPadded(to: 8)
    }

    /// 24 lowercase hexadecimal characters that sort by creation time: 12 for the milliseconds
    /// since 1970, 12 random. Used for run ids, so the event log (keyed by run id) appends at the
    /// end of its index instead of writing to a random page per event.
    public static func makeTimeOrdered() -> String {
        var generator = SystemRandomNumberGenerator()
        let milliseconds = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        let random = (generator.next() as UInt64) & 0xFFFF_FFFF_FFFF
        return String(milliseconds, radix: 16).leftPadded(to: 12) + String(random, radix: 16).leftPadded(to: 12)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
