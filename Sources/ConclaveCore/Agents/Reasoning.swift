/// The reasoner's analysis of a question: the shape the answer must take and how facts combine.
public struct Reasoning: Sendable, Codable, Hashable {
    /// The kind of value the answer is.
    public enum AnswerForm: String, Sendable, Codable, Hashable, CaseIterable {
        case number, money, date, duration, percentage, list, yesNo = "yes_no", text
    }

    /// How facts are combined into the answer.
    public enum Computation: String, Sendable, Codable, Hashable, CaseIterable {
        case none, sum, difference, product, comparison, count
    }

    /// Expected form of the answer.
    public var answerForm: AnswerForm
    /// Named entities and slots the answer depends on (grades, cities, product names…).
    public var entities: [String]
    /// The computation that combines facts.
    public var computation: Computation
    /// True when this came from the fallback rather than the model.
    public var isFallback: Bool

    /// Creates a reasoning result.
    public init(answerForm: AnswerForm, entities: [String], computation: Computation, isFallback: Bool = false) {
        self.answerForm = answerForm
        self.entities = entities
        self.computation = computation
        self.isFallback = isFallback
    }
}
