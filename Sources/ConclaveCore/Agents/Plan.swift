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
    /// Set when the message is not a question for the knowledge base (a greeting, thanks, a
    /// question about the assistant, a request outside its scope): nothing is retrieved and the
    /// responder answers it as such.
    public var conversational: Conversational?

    /// Messages the planner recognises as not asking the knowledge base anything.
    public enum Conversational: String, Sendable, Codable, Hashable, CaseIterable {
        /// "Hello", "Good morning".
        case greeting
        /// "Thanks", "Thank you very much".
        case thanks
        /// "What can you do?", "Who are you?".
        case capabilities
        /// A request outside an enterprise assistant's scope ("write me a poem", "tell me a joke").
        case outOfScope = "out_of_scope"
    }

    /// Creates a plan.
    public init(query: String, subQuestions: [String], sources: [Source] = [.documents], isFallback: Bool = false,
                conversational: Conversational? = nil) {
        self.query = query
        self.subQuestions = subQuestions
        self.sources = sources
        self.isFallback = isFallback
        self.conversational = conversational
    }
}
