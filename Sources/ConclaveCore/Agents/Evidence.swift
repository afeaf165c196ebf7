/// A passage retrieved for a question, with where it came from and how well it matched.
public struct Evidence: Sendable, Codable, Hashable {
    /// Stable id of the chunk the passage was taken from.
    public var chunkID: String
    /// The source document or system.
    public var source: SourceRef
    /// The passage text.
    public var text: String
    /// Retrieval score (higher is better; comparable within one search only).
    public var score: Double
    /// The sub-question this evidence was retrieved for.
    public var subQuestion: String
    /// For a lookup record (a customer's, an employee's row looked up because the question names
    /// it): the values other sources are keyed by, which the document search adds to the question.
    /// Nil for passages and for records that answer the question themselves.
    public var keys: [String]?

    /// Creates evidence.
    public init(chunkID: String, source: SourceRef, text: String, score: Double, subQuestion: String, keys: [String]? = nil) {
        self.chunkID = chunkID
        self.source = source
        self.text = text
        self.score = score
        self.subQuestion = subQuestion
        self.keys = keys
    }

    /// True for a lookup record (see ``keys``).
    public var isLookup: Bool { !(keys ?? []).isEmpty }
}
