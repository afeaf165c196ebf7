/// The planner's output: what to look up and where.
public struct Plan: Sendable, Codable, Hashable {
    /// Kinds of source a plan may route a question to.
    public enum Source: String, Sendable, Codable, Hashable, CaseIterable {
        case documents, database, api
    }

    /// The user's request rewritten as a standalone question (pronouns and ellipsis resolved).
    public var query: String
    /// Sub-questions whose answers together answer the query.
    public var subQuestions: [String]
    /// Where the evidence should come from.
    public var sources: [Source]
    /// True when the plan came from the fallback rather than the model.
    public var isFallback: Bool

    /// Creates a plan.
    public init(query: String, subQuestions: [String], sources: [Source] = [.documents], isFallback: Bool = false) {
        self.query = query
        self.subQuestions = subQuestions
        self.sources = sources
        self.isFallback = isFallback
    }
}
