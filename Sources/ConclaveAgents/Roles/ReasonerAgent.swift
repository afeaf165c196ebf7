import Foundation
import ConclaveCore
import ConclaveInference
import ConclaveKnowledge

/// Works out, in parallel with retrieval, what form the answer takes, which entities and slots it
/// depends on and which computation combines the facts. Falls back to rules on the question's
/// wording when the model's output is unusable.
public struct ReasonerAgent: Agent {
    public var role: AgentRole { .reasoner }
    private let model: any ChatModel
    private let prompt: AgentPrompts.RolePrompt

    /// Creates a reasoner using `model`, with `prompt`'s instructions and sampling where it sets them.
    public init(model: any ChatModel, prompt: AgentPrompts.RolePrompt = .init()) {
        self.model = model
        self.prompt = prompt
    }

    struct Output: Decodable, Sendable {
        var answer_form: String
        var entities: [String]?
        var computation: String?
    }

    static let schema = """
        {"type":"object","properties":{"answer_form":{"type":"string","enum":["number","money","date","duration","percentage","list","yes_no","text"]},\
        "entities":{"type":"array","maxItems":4,"items":{"type":"string","minLength":1,"maxLength":40}},\
        "computation":{"type":"string","enum":["none","sum","difference","product","comparison","count"]}},\
        "required":["answer_form","entities","computation"],"additionalProperties":false}
        """

    static let instructions = """
        You analyse a question before it is answered. Say what form the answer takes, list the key entities \
        (names, grades, places, products) and the computation needed to combine facts. Reply with JSON only, for example:
        {"answer_form":"money","entities":["G5","hotel"],"computation":"none"}
        """

    public func run(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        if state.inputRefusal != nil || state.plan?.conversational != nil { return AgentResult(.reasoning(Self.ruleBased(state.question))) }
        let question = state.contextualQuestion
        let messages: [ChatMessage] = [.system(prompt.instructions ?? Self.instructions), .user("Question: \(question)")]
        let (output, usage) = try await StructuredOutput<Output>(schema: Self.schema, maxTokens: prompt.maxTokens ?? 96, temperature: prompt.temperature)
            .request(messages, model: model, context: context)
        return AgentResult(.reasoning(Self.reasoning(from: output, question: question)), usage: usage)
    }

    /// The model's analysis where it is usable; the question's wording decides the form whenever it
    /// is unambiguous, because a small model guesses it less reliably than these rules.
    static func reasoning(from output: Output?, question: String) -> Reasoning {
        let rule = ruleBased(question)
        guard let output, let modelForm = Reasoning.AnswerForm(rawValue: output.answer_form) else { return rule }
        let questionTerms = TermSet(question, stemmed: false)
        let entities = (output.entities ?? []).filter { entity in
            !TermSet(entity, stemmed: false).isDisjoint(with: questionTerms)
        }
        let form = rule.answerForm != .text ? rule.answerForm : modelForm
        let computation = rule.computation != .none
            ? rule.computation : (output.computation.flatMap(Reasoning.Computation.init(rawValue:)) ?? .none)
        return Reasoning(answerForm: form, entities: entities.isEmpty ? rule.entities : entities, computation: computation)
    }

    /// Form, entities and computation read off the question's wording.
    static func ruleBased(_ question: String) -> Reasoning {
        let q = Lowercased(question)
        let form: Reasoning.AnswerForm
        // "By how much can the deadline be extended?" (or "how much longer", "how much later")
        // asks for time, not money.
        let aboutTime = q.contains("extend") || q.contains("extension") || q.contains("longer") || q.contains("later")
        if q.contains("how much") && !aboutTime || q.contains("cost") || q.contains("price") || q.contains("rate") || q.contains("budget")
            || q.contains("eur") || q.contains("amount") || q.contains("limit") && q.contains("€")
        {
            form = .money
        } else if q.contains("percent") || q.contains("%") {
            form = .percentage
        } else if q.contains("how many") || q.contains("number of") || q.contains("how long") && q.contains("days") {
            form = .number
        } else if q.contains("how long") || q.contains("within how") || q.contains("deadline") || q.contains("how quickly")
            || q.contains("how much") && aboutTime
            || q.contains("how fast") || q.contains("how soon") || q.contains("how often")
        {
            form = .duration
        } else if q.hasPrefix("when") || q.contains("what date") || q.contains("which date") || q.contains("what day") {
            form = .date
        } else if q.hasPrefix("is ") || q.hasPrefix("are ") || q.hasPrefix("can ") || q.hasPrefix("do ") || q.hasPrefix("does ") {
            form = .yesNo
        } else if q.contains("list") || q.contains("which ") && q.contains("s ") {
            form = .list
        } else {
            form = .text
        }
        let computation: Reasoning.Computation
        if q.contains("total") || q.contains("in all") || q.contains("combined") || q.contains(" sum") {
            computation = .sum
        } else if q.contains("difference") || q.contains("more than") || q.contains("less than") {
            computation = .difference
        } else if q.contains(" times ") || q.contains("nights") && form == .money {
            computation = .product
        } else if q.contains("how many") && (q.contains("are there") || q.contains("count")) {
            computation = .count
        } else {
            computation = .none
        }
        let entities = question.split(separator: " ").map { $0.withoutSurroundingPunctuation }.filter(looksLikeEntity)
        return Reasoning(answerForm: form, entities: Array(entities.prefix(4)), computation: computation, isFallback: true)
    }

    /// A capitalised word of two or more letters, or a word with a digit (grades, codes, amounts).
    private static func looksLikeEntity(_ word: String) -> Bool {
        let bytes = word.utf8
        guard let first = bytes.first else { return false }
        if bytes.contains(where: { $0 >= 0x30 && $0 <= 0x39 }) { return true }
        if first < 0x80 { return first >= 0x41 && first <= 0x5A && bytes.count > 1 }
        return word.first?.isUppercase == true && word.count > 1 || word.contains(where: \.isNumber)
    }
}
