/// A reference to where a piece of evidence came from.
public struct SourceRef: Sendable, Codable, Hashable {
    /// Source id: a document id such as `HR-005`, `db:<table>` or `api:<path>`.
    public var id: String
    /// Human-readable title of the source.
    public var title: String
    /// Section heading inside the source, if any.
    public var section: String?

    /// Creates a source reference.
    public init(id: String, title: String, section: String? = nil) {
        self.id = id
        self.title = title
        self.section = section
    }
}
