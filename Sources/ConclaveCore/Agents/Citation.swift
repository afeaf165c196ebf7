/// A citation attached to an answer: the source and the passage that supports it.
public struct Citation: Sendable, Codable, Hashable {
    /// Marker index used in the answer text (`[1]`).
    public var index: Int
    /// Source id such as `HR-005`.
    public var sourceID: String
    /// Title of the source.
    public var title: String
    /// Supporting passage, shortened.
    public var snippet: String
    /// Section of the source the passage comes from (a document's heading path), when known.
    public var section: String?

    /// Creates a citation.
    public init(index: Int, sourceID: String, title: String, snippet: String, section: String? = nil) {
        self.index = index
        self.sourceID = sourceID
        self.title = title
        self.snippet = snippet
        self.section = section
    }

    enum CodingKeys: String, CodingKey {
        case index
        case sourceID = "source_id"
        case title, snippet, section
    }
}
