import ConclaveCore
import ConclaveKnowledge

/// Everything a run has produced so far. The engine applies each step's output to it; agents
/// read what their dependencies produced.
public struct WorkflowState: Sendable {
    /// The user's latest message.
    public var question: String
    /// Earlier messages of the conversation (oldest first), without the latest question.
    public var history: [ChatMessage]
    /// Who is asking.
    public var principal: Principal
    /// The conversation this turn belongs to, if it is stored (keeps its model calls on one replica).
    public var conversationID: String?
    /// The documents the principal may read (the retrieval ACL pre-filter).
    public var scope: DocumentScope
    /// Documents that matched but lie outside the scope (identity only).
    public var withheld: [WithheldSource] = []
    /// Masks what the principal may not see in evidence and in the answer; nil for none.
    public var textGuard: (any TextGuard)?
    /// The input rule that refused the question, if one did: no agent calls a model, and the
    /// responder answers with a polite refusal.
    public var inputRefusal: String?
    /// Where evidence may come from (documents, database, API, answer cache).
    public var dataAccess: Set<DataAccessMode> = DataAccessMode.standard
    /// The planner's output.
    public var plan: Plan?
    /// The retriever's output.
    public var evidence: [Evidence]?
    /// The reasoner's output.
    public var reasoning: Reasoning?
    /// The validator's output.
    public var validation: Validation?
    /// The responder's output.
    public var answer: Answer?

    /// Creates the initial state of a run.
    public init(question: String, history: [ChatMessage] = [], principal: Principal = .anonymous,
                scope: DocumentScope = .unrestricted, textGuard: (any TextGuard)? = nil) {
        self.question = question
        self.history = history
        self.principal = principal
        self.scope = scope
        self.textGuard = textGuard
    }

    /// Records an agent's output.
    public mutating func apply(_ output: AgentOutput) {
        switch output {
        case .plan(let plan): self.plan = plan
        case .evidence(let evidence, let withheld):
            self.evidence = evidence
            self.withheld = withheld
        case .reasoning(let reasoning): self.reasoning = reasoning
        case .validation(let validation): self.validation = validation
        case .answer(let answer): self.answer = answer
        }
    }

    /// The user's earlier questions, most recent last.
    public var previousQuestions: [String] {
        history.filter { $0.role == .user }.map(\.content)
    }

    /// The question, joined with the previous question when it reads as a follow-up (and, when
    /// that one was a follow-up too, with the last question before it that stood alone).
    public var contextualQuestion: String {
        FollowUp.contextualize(question, previous: previousQuestions)
    }

    /// Names the question refers to through a labelled field of the previous answer ("the
    /// secondary's number" after `… Secondary: Ben Okafor …`), carried into this turn. A question
    /// that asks *who* fills the field ("who is his secondary that week?") asks for the name, not
    /// about it, and carries none.
    public var carriedNames: [String] {
        guard let previous = history.last(where: { $0.role == .assistant })?.content, !asksWho else { return [] }
        return SlotBridge.names(in: previous, labelledBy: question)
    }

    /// The question as it reads with the carried names in place of the labels that pointed at
    /// them (see ``carriedNames``), or nil when it carries none.
    public var carriedQuery: String? {
        guard let previous = history.last(where: { $0.role == .assistant })?.content, !asksWho else { return nil }
        return SlotBridge.query(question, naming: previous)
    }

    private var asksWho: Bool {
        question.split(whereSeparator: { !$0.isLetter }).first?.lowercased() == "who"
    }

    /// `item` as this run may see it: its text through the request's guard (injected
    /// instructions removed, personal data masked), unchanged when there is none.
    public func guarded(_ item: Evidence) -> Evidence {
        guard let textGuard else { return item }
        var item = item
        item.text = textGuard.evidence(item.text)
        return item
    }

    /// The question to search with: the plan's standalone query when there is one, else
    /// ``contextualQuestion``.
    public var searchQuery: String {
        if let plan, !plan.query.isEmpty { return plan.query }
        return contextualQuestion
    }
}

/// Detects follow-up questions that depend on the previous turn.
public enum FollowUp {
    private static let anaphora: Set<UInt64> = Set([
        "it", "its", "they", "them", "their", "this", "that", "these", "those", "there", "he", "she", "his", "her",
        "one", "ones", "same", "also", "instead", "else", "then",
    ].map(TextWords.hash))
    private static let openers: Set<UInt64> = Set(["and", "but", "or", "also", "then"].map(TextWords.hash))
    private static let openingPairs: Set<[UInt64]> = Set(
        [["what", "about"], ["how", "about"], ["what", "if"]].map { $0.map(TextWords.hash) })

    /// True when `question` is very short, opens like a continuation ("and …", "what about …")
    /// or refers back with a pronoun.
    public static func isFollowUp(_ question: String) -> Bool {
        var words: [UInt64] = []
        TextWords.forEach(in: question) { words.append(TextWords.hash($0)) }
        if words.count <= 3 { return true }
        if openers.contains(words[0]) || openingPairs.contains([words[0], words[1]]) { return true }
        return words.contains(where: anaphora.contains)
    }

    /// How far back a chain of follow-ups is followed to the question that stood alone.
    static let lookBack = 6

    /// `question` prefixed with the previous question when it reads as a follow-up. A follow-up of
    /// a follow-up ("What is the status of shipment 7?" "Why is it late?" "When will it arrive?")
    /// refers to what the question before them asked about: the last question that stood alone
    /// (within ``lookBack``) comes first, then the previous one.
    public static func contextualize(_ question: String, previous: [String]) -> String {
        guard isFollowUp(question), let last = previous.last else { return question }
        var chain = [last]
        if isFollowUp(last),
           let standalone = previous.dropLast().suffix(lookBack - 1).last(where: { !isFollowUp($0) }) {
            chain.insert(standalone, at: 0)
        }
        return (chain + [question]).joined(separator: " ")
    }
}
