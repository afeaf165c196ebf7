import Foundation
import ConclaveCore
import ConclaveInference
import ConclaveKnowledge

/// Rewrites the latest question as a standalone query with sub-questions, by JSON-schema
/// constrained output. Falls back to the question (joined with the previous one for follow-ups)
/// when the model's plan is unusable or drifts away from what was asked.
public struct PlannerAgent: Agent {
    public var role: AgentRole { .planner }
    private let model: any ChatModel
    private let prompt: AgentPrompts.RolePrompt

    /// Creates a planner using `model`, with `prompt`'s instructions and sampling where it sets them.
    public init(model: any ChatModel, prompt: AgentPrompts.RolePrompt = .init()) {
        self.model = model
        self.prompt = prompt
    }

    struct Output: Decodable, Sendable {
        var query: String
        var sub_questions: [String]?
    }

    static let schema = """
        {"type":"object","properties":{"query":{"type":"string","minLength":3,"maxLength":200},\
        "sub_questions":{"type":"array","maxItems":3,"items":{"type":"string","minLength":3,"maxLength":150}}},\
        "required":["query","sub_questions"],"additionalProperties":false}
        """

    static let instructions = """
        You turn the user's latest message into a standalone search query for a company knowledge base. \
        Resolve words like "it", "that" or "and for X?" using the earlier conversation. \
        Split questions that ask for several things into sub-questions. Reply with JSON only, for example:
        {"query":"<the question, rewritten to stand alone>","sub_questions":["<first part>","<second part>"]}
        """

    public func run(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        if state.inputRefusal != nil {
            return AgentResult(.plan(Plan(query: state.question, subQuestions: [], sources: [], isFallback: true)))
        }
        // A greeting, thanks or a request outside the assistant's scope needs no plan and no model call.
        if let kind = ConversationalTurn.classify(state.question) {
            return AgentResult(.plan(Plan(query: state.question, subQuestions: [], sources: [], conversational: kind)))
        }
        var messages: [ChatMessage] = [.system(prompt.instructions ?? Self.instructions)]
        let recent = state.history.suffix(4)
        if !recent.isEmpty {
            let transcript = recent.map { "\($0.role.rawValue): \($0.content.prefix(300))" }.joined(separator: "\n")
            messages.append(.user("Earlier conversation:\n\(transcript)\n\nLatest message: \(state.question)"))
        } else {
            messages.append(.user("Latest message: \(state.question)"))
        }
        let (output, usage) = try await StructuredOutput<Output>(schema: Self.schema, maxTokens: prompt.maxTokens ?? 160, temperature: prompt.temperature)
            .request(messages, model: model, context: context)
        return AgentResult(.plan(Self.plan(from: output, state: state)), usage: usage)
    }

    /// The plan from the model's output when it stays on topic, otherwise the fallback plan.
    static func plan(from output: Output?, state: WorkflowState) -> Plan {
        let fallbackQuery = state.contextualQuestion
        let fallback = Plan(query: fallbackQuery, subQuestions: [], sources: [.documents], isFallback: true)
        guard let output else { return fallback }
        let asked = TermSet(fallbackQuery, stemmed: false)
        // Words from earlier turns may enter the rewrite only when the question refers back to them.
        let followUp = FollowUp.isFollowUp(state.question) && !state.history.isEmpty
        let conversationTerms = followUp
            ? asked.union(TermSet(state.history.map(\.content).joined(separator: " "), stemmed: false)) : asked
        let query = output.query.trimmed
        let queryTerms = TermSet(query, stemmed: false)
        // A plan must keep most of what was asked (the model may not drop the subject) and may only
        // add words the conversation used (it may not invent a subject, or copy the prompt's example).
        let kept = asked.isEmpty ? 1 : Double(asked.intersectionCount(queryTerms)) / Double(asked.count)
        guard !query.isEmpty, !query.utf8.contains(UInt8(ascii: "<")), kept >= 0.5, queryTerms.isSubset(of: conversationTerms) else {
            return fallback
        }
        let subQuestions = (output.sub_questions ?? []).map(\.trimmed).filter { sub in
            guard !sub.isEmpty, !sub.utf8.contains(UInt8(ascii: "<")) else { return false }
            let terms = TermSet(sub, stemmed: false)
            return !terms.isDisjoint(with: asked) && terms.isSubset(of: conversationTerms)
        }
        // Keep the literal question's words searchable even when the rewrite paraphrases them.
        let standalone = kept < 1 ? query + " " + fallbackQuery : query
        return Plan(query: standalone, subQuestions: Array(subQuestions.prefix(3)), sources: [.documents])
    }
}
