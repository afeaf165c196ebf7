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

    /// Creates evidence.
    public init(chunkID: String, source: SourceRef, text: String, score: Double, subQuestion: String) {
        self.chunkID = chunkID
        self.source = source
        self.text = text
        self.score = score
        self.subQuestion = subQuestion
    }
}
