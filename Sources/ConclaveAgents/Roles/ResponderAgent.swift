import ConclaveCore
import ConclaveInference
import ConclaveKnowledge
import Foundation
import Synchronization

/// Phrases the answer and streams it token by token, citing its sources.
///
/// After a validator it answers only from the validated facts, and says plainly that the
/// information was not found when there are none. Without a validator (the `single`,
/// `planner-responder` and `planner-retriever-responder` workflows) it answers over the retrieved
/// passages, retrieving them itself when no retriever ran.
public struct ResponderAgent: Agent {
    public var role: AgentRole { .responder }
    private let model: any ChatModel
    private let retriever: any Retriever
    private let sources: [any EvidenceSource]
    private let limit: Int
    private let phrasing: AnswerPhrasing
    private let prompt: AgentPrompts.RolePrompt

    /// How answers from validated document facts are worded.
    public typealias AnswerPhrasing = WorkflowsConfiguration.AnswerPhrasing

    /// The answer given when the evidence does not support one.
    public static let notFoundAnswer = "I could not find this information in the available sources, so I cannot answer it reliably."

    /// The answer to a question an input rule refuses.
    /// The reply to a turn the planner recognised as conversational: fixed, so that a small model
    /// cannot wander, and never claiming anything about the sources.
    public static func conversationalAnswer(_ kind: Plan.Conversational) -> String {
        switch kind {
        case .greeting:
            "Hello! I answer questions from the documents, databases and internal systems you may access, and cite my sources. What would you like to know?"
        case .thanks:
            "You're welcome. Ask me anything else about the documents and data you may access."
        case .capabilities:
            "I answer questions from the documents, databases and internal systems you may access: policies, procedures, records and figures. Each answer cites its sources, and I say so when they do not hold the answer or when it is not yours to see."
        case .outOfScope:
            "I can only help with questions about the documents, databases and internal systems you may access; that request is outside what I can answer."
        }
    }

    public static let refusedAnswer = "I can't help with that request: it is not allowed by the platform's usage policy."

    /// The refusal when the answer lies in documents the user may not read: it says so and who
    /// owns the information, and reveals nothing of it (access policy: refuse without leaking).
    public static func restrictedAnswer(owners: [String]) -> String {
        var seen = Set<String>()
        let departments = owners.filter { !$0.isEmpty && seen.insert($0).inserted }.prefix(2)
        let base = "This information is restricted, and you are not authorised to see it."
        guard !departments.isEmpty else { return base }
        return base + " If you need it, please ask the \(departments.joined(separator: " or ")) department."
    }

    /// Creates a responder.
    public init(model: any ChatModel, retriever: any Retriever, sources: [any EvidenceSource] = [], limit: Int = 4,
                phrasing: AnswerPhrasing = .quote, prompt: AgentPrompts.RolePrompt = .init()) {
        self.prompt = prompt
        self.model = model
        self.retriever = retriever
        self.sources = sources
        self.limit = limit
        self.phrasing = phrasing
    }

    static let factInstructions = """
        You are Conclave, a company assistant. Answer the question in one or two sentences using only the numbered \
        facts. Copy numbers, amounts and dates exactly as written in the facts. Put the fact number in brackets after \
        the sentence that uses it, like [1]. If the facts do not answer the question, say that the information is not available.
        """

    static let passageInstructions = """
        You are Conclave, a company assistant. Answer the question briefly using only the numbered passages. Copy \
        numbers, amounts and dates exactly. Cite the passage number in brackets, like [1]. If the passages do not \
        contain the answer, say that the information is not available.
        """

    public func run(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        guard let textGuard = state.textGuard else { return try await respond(state, context: context) }
        // Everything streamed passes the guard's stream filter; the answer is what was streamed.
        let filter = SharedOutputFilter(textGuard.outputStream())
        var shielded = context
        shielded.emitToken = { text in
            let released = filter.append(text)
            if !released.isEmpty { try await context.emitToken(released) }
        }
        var result = try await respond(state, context: shielded)
        let rest = filter.finish()
        if !rest.isEmpty { try await context.emitToken(rest) }
        if case .answer(var answer) = result.output {
            answer.text = filter.released
            result.output = .answer(answer)
        }
        return result
    }

    private func respond(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        if state.inputRefusal != nil {
            try await context.emitToken(Self.refusedAnswer)
            return AgentResult(.answer(Answer(text: Self.refusedAnswer, citations: [], isRefusal: true)))
        }
        if let kind = state.plan?.conversational {
            let text = Self.conversationalAnswer(kind)
            try await context.emitToken(text)
            return AgentResult(.answer(Answer(text: text, citations: [])))
        }
        if let validation = state.validation {
            if validation.isRestricted {
                let text = Self.restrictedAnswer(owners: validation.withheld.compactMap(\.department))
                try await context.emitToken(text)
                return AgentResult(.answer(Answer(text: text, citations: [], isNotFound: false, isRefusal: true)))
            }
            guard validation.answerable, !validation.facts.isEmpty else {
                try await context.emitToken(Self.notFoundAnswer)
                return AgentResult(.answer(Answer(text: Self.notFoundAnswer, citations: [], isNotFound: true)))
            }
            guard let claim = validation.unsupportedClaim else { return try await answer(from: validation, state: state, context: context) }
            // A yes/no question whose claim no fact states ("have they been waived?" over facts that
            // never say "waived"): that is said first, then what the sources do hold.
            let lead = Self.unsupportedClaimAnswer(claim)
            try await context.emitToken(lead + " ")
            var result = try await answer(from: validation, state: state, context: context)
            if case .answer(var answer) = result.output {
                answer.text = lead + " " + answer.text
                result.output = .answer(answer)
            }
            return result
        }
        var evidence = state.evidence ?? []
        if state.evidence == nil {
            evidence = try await RetrieverAgent.gather(for: state, retriever: retriever, sources: sources, limit: limit).evidence
        }
        guard !evidence.isEmpty else {
            try await context.emitToken(Self.notFoundAnswer)
            return AgentResult(.answer(Answer(text: Self.notFoundAnswer, citations: [], isNotFound: true)))
        }
        let sources = evidence.prefix(3).map { (text: String($0.text.prefix(1200)), source: $0.source) }
        return try await answer(state, sources: Array(sources), instructions: prompt.passageInstructions ?? Self.passageInstructions,
                                label: "Passages", grounded: false, context: context)
    }

    /// The first sentence of an answer to a yes/no question whose claim (`claim`, the word the
    /// question turns on) no validated fact states.
    public static func unsupportedClaimAnswer(_ claim: String) -> String {
        "I found no record that this has happened: no source available to you says \"\(claim)\"."
    }

    /// The answer from the validated facts: records as they are, document facts quoted or worded.
    private func answer(from validation: Validation, state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        let records = validation.facts.filter(\.isRecord)
        let facts = validation.facts.filter { !$0.isRecord }.map { (text: $0.text, source: $0.source) }
        guard !records.isEmpty else {
            if phrasing == .quote { return try await quote(facts, state: state, context: context) }
            return try await answer(state, sources: facts, instructions: prompt.instructions ?? Self.factInstructions, label: "Facts",
                                    grounded: true, context: context)
        }
        // Records from governed queries are stated as they are, each with its citation; the
        // model phrases only what the documents add.
        let stated = records.enumerated().map { "\($0.element.text) [\($0.offset + 1)]" }.joined(separator: " ")
        try await context.emitToken(stated)
        let citations = Self.citations(for: records.map { (text: $0.text, source: $0.source) }, shownThrough: state.textGuard)
        guard !facts.isEmpty else {
            return AgentResult(.answer(Answer(text: stated, citations: citations)))
        }
        try await context.emitToken(" ")
        let more = phrasing == .quote
            ? try await quote(facts, state: state, context: context, citationOffset: records.count)
            : try await answer(state, sources: facts, instructions: prompt.instructions ?? Self.factInstructions, label: "Facts",
                               grounded: true, context: context, citationOffset: records.count)
        guard case .answer(let rest) = more.output, !rest.isNotFound else {
            return AgentResult(.answer(Answer(text: stated, citations: citations)), usage: more.usage)
        }
        return AgentResult(.answer(Answer(text: stated + " " + rest.text, citations: citations + rest.citations)), usage: more.usage)
    }

    /// States the facts that answer the question, in the validator's order: the first, then each
    /// later one that covers a word of the question the ones before it did not (at most three),
    /// each followed by its citation marker.
    private func quote(_ facts: [(text: String, source: SourceRef)], state: WorkflowState, context: AgentContext,
                       citationOffset: Int = 0) async throws -> AgentResult {
        let chosen = Self.factsToState(facts, question: state.contextualQuestion)
        let citations = Self.citations(for: chosen, offset: citationOffset, shownThrough: state.textGuard)
        var sentences: [String] = []
        for (index, fact) in chosen.enumerated() {
            var sentence: String = fact.text.trimmed
            if let last = sentence.last, !".!?".contains(last) { sentence += "." }
            sentences.append(sentence + " [" + String(index + 1 + citationOffset) + "]")
        }
        let text = sentences.joined(separator: " ")
        try await context.emitToken(text)
        return AgentResult(.answer(Answer(text: text, citations: citations)))
    }

    /// The facts worth stating for `question`: the first, and each later one that covers a
    /// question word none before it covers; at most three.
    static func factsToState(_ facts: [(text: String, source: SourceRef)], question: String) -> [(text: String, source: SourceRef)] {
        guard let first = facts.first else { return [] }
        let asked = TermSet(question)
        var chosen = [first]
        var covered = TermSet(first.text).intersection(asked)
        for fact in facts.dropFirst() where chosen.count < 3 {
            let adds = TermSet(fact.text).intersection(asked).subtracting(covered)
            guard !adds.isEmpty else { continue }
            chosen.append(fact)
            covered = covered.union(adds)
        }
        return chosen
    }

    /// Asks the model for the answer over numbered `sources`. With `grounded`, each sentence is
    /// checked against the sources before it is streamed, and an answer left with no supported
    /// sentence becomes the not-found answer.
    private func answer(_ state: WorkflowState, sources: [(text: String, source: SourceRef)], instructions: String,
                        label: String, grounded: Bool, context: AgentContext, citationOffset: Int = 0) async throws -> AgentResult {
        let numbered = sources.enumerated().map { "[\($0.offset + 1 + citationOffset)] (\($0.element.source.id)) \($0.element.text)" }
            .joined(separator: "\n")
        var messages: [ChatMessage] = [.system(instructions)]
        for message in state.history.suffix(4) where message.role == .user || message.role == .assistant {
            messages.append(ChatMessage(role: message.role, content: String(message.content.prefix(400))))
        }
        messages.append(.user("\(label):\n\(numbered)\n\nQuestion: \(state.question)"))
        var request = ChatRequest(messages: messages, temperature: prompt.temperature ?? context.options.temperature,
                                  maxTokens: prompt.maxTokens ?? context.options.maxTokens, seed: context.options.seed,
                                  timeout: context.remaining)
        request.affinityKey = context.affinityKey
        let response: ChatResponse
        var text: String
        if grounded {
            let filter = GroundingBox(GroundingFilter(facts: sources.map(\.text), question: state.question))
            response = try await model.stream(request) { delta in
                let released = filter.append(delta)
                if !released.isEmpty { try await context.emitToken(released) }
            }
            let rest = filter.finish()
            if !rest.isEmpty { try await context.emitToken(rest) }
            text = filter.released
            if !filter.dropped.isEmpty && context.logs(at: .debug) {
                // The count only: the sentences may quote personal data.
                context.logger.debug("responder dropped unsupported sentences", metadata: ["dropped": "\(filter.dropped.count)"])
            }
            if text.trimmed.isEmpty {
                if citationOffset > 0 {
                    return AgentResult(.answer(Answer(text: "", citations: [], isNotFound: true)), usage: response.usage)
                }
                try await context.emitToken(Self.notFoundAnswer)
                return AgentResult(.answer(Answer(text: Self.notFoundAnswer, citations: [], isNotFound: true)),
                                   usage: response.usage)
            }
        } else {
            response = try await model.stream(request, onDelta: context.emitToken)
            text = response.content
        }
        // Every answer carries markers for the sources it was given; add them when the model left them out.
        let citations = Self.citations(for: sources, offset: citationOffset, shownThrough: state.textGuard)
        if !citations.isEmpty, !Lowercased(text).containsCitationMarker {
            let markers = " " + citations.map { "[\($0.index)]" }.joined()
            try await context.emitToken(markers)
            text += markers
        }
        return AgentResult(.answer(Answer(text: text, citations: citations)), usage: response.usage)
    }

    /// One citation per source passage, in marker order; each snippet as `textGuard` lets it be shown.
    static func citations(for sources: [(text: String, source: SourceRef)], offset: Int = 0,
                          shownThrough textGuard: (any TextGuard)?) -> [Citation] {
        sources.enumerated().map { index, item in
            let cut = item.text.count > 240 ? String(item.text.prefix(237)) + "..." : item.text
            let snippet = textGuard.map { $0.shown(cut) } ?? cut
            return Citation(index: index + 1 + offset, sourceID: item.source.id, title: item.source.title, snippet: snippet,
                            section: item.source.section.flatMap { $0.isEmpty ? nil : $0 })
        }
    }
}

/// Shares a ``GroundingFilter`` with the streaming callback.
final class GroundingBox: Sendable {
    private let filter: Mutex<GroundingFilter>

    init(_ filter: GroundingFilter) { self.filter = Mutex(filter) }

    func append(_ text: String) -> String { filter.withLock { $0.append(text) } }
    func finish() -> String { filter.withLock { $0.finish() } }
    var released: String { filter.withLock { $0.released } }
    var dropped: [String] { filter.withLock { $0.dropped } }
}
