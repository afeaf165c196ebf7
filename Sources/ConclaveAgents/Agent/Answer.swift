import ConclaveCore

/// The responder's output: the answer text and the citations its markers refer to.
public struct Answer: Sendable, Codable, Hashable {
    /// The answer as streamed to the client.
    public var text: String
    /// Citations, in marker order.
    public var citations: [Citation]
    /// True when the answer says the information was not found.
    public var isNotFound: Bool
    /// True when the answer refuses because the information is restricted for this user.
    public var isRefusal: Bool

    /// Creates an answer.
    public init(text: String, citations: [Citation], isNotFound: Bool = false, isRefusal: Bool = false) {
        self.text = text
        self.citations = citations
        self.isNotFound = isNotFound
        self.isRefusal = isRefusal
    }

    enum CodingKeys: String, CodingKey { case text, citations, isNotFound, isRefusal }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        text = try c.decode(String.self, forKey: .text)
        citations = try c.decode([Citation].self, forKey: .citations)
        isNotFound = try c.decodeIfPresent(Bool.self, forKey: .isNotFound) ?? false
        isRefusal = try c.decodeIfPresent(Bool.self, forKey: .isRefusal) ?? false
    }
}
