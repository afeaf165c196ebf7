import ConclaveCore

/// The responder's output: the answer text and the citations its markers refer to.
public struct Answer: Sendable, Codable, Hashable {
    /// The answer as streamed to the client.
    public var text: String
    /// Citations, in marker order.
    public var citations: [Citation]
    /// True when the answer says the information was not found.
    public var isNotFound: Bool

    /// Creates an answer.
    public init(text: String, citations: [Citation], isNotFound: Bool = false) {
        self.text = text
        self.citations = citations
        self.isNotFound = isNotFound
    }
}
