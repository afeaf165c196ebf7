import ConclaveCore
import Foundation
import ConclaveInference
import ConclaveKnowledge
import Tracing

/// Gathers evidence for the plan's query and each sub-question, merging duplicates and keeping the
/// best-scoring passages. Uses a model only when one is given to choose SQL templates
/// (`knowledge.sql_template_choice: model`); the deterministic rules choose otherwise.
public struct RetrieverAgent: Agent {
    public var role: AgentRole { .retriever }
    private let retriever: any Retriever
    private let sources: [any EvidenceSource]
    private let limit: Int
    private let chooser: SQLTemplateChooser?

    /// Creates a retriever agent returning up to `limit` passages, consulting `sources` (database,
    /// API) besides the documents when the state's data-access modes enable them. With
    /// `templateModel`, that model chooses and fills the SQL template (JSON-schema constrained,
    /// validated; the rules serve when it chooses none or something invalid).
    public init(retriever: any Retriever, sources: [any EvidenceSource] = [], limit: Int = 4,
                templateModel: (any ChatModel)? = nil, prompt: AgentPrompts.RolePrompt = .init()) {
        self.retriever = retriever
        self.sources = sources
        self.limit = limit
        self.chooser = templateModel.map { SQLTemplateChooser(model: $0, prompt: prompt) }
    }

    public func run(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        if state.inputRefusal != nil || state.plan?.conversational != nil { return AgentResult(.evidence([])) }
        let (retrieval, usage) = try await Self.gather(for: state, retriever: retriever, sources: sources, limit: limit,
                                                       chooser: chooser, context: context)
        return AgentResult(.evidence(retrieval.evidence, withheld: retrieval.withheld), usage: usage)
    }

    /// Evidence for every query of the state from the documents in the state's scope and from the
    /// enabled connectors, deduplicated by chunk, best first; and the matching sources outside the scope.
    static func gather(for state: WorkflowState, retriever: any Retriever, sources: [any EvidenceSource] = [],
                       limit: Int) async throws -> Retrieval {
        try await gather(for: state, retriever: retriever, sources: sources, limit: limit, chooser: nil, context: nil).retrieval
    }

    /// As ``gather(for:retriever:sources:limit:)``, with a model choosing the SQL template when
    /// `chooser` is given; also returns the tokens that choice spent.
    static func gather(for state: WorkflowState, retriever: any Retriever, sources: [any EvidenceSource], limit: Int,
                       chooser: SQLTemplateChooser?, context: AgentContext?) async throws -> (retrieval: Retrieval, usage: TokenUsage) {
        var usage = TokenUsage()
        var queries = [state.searchQuery]
        queries += state.plan?.subQuestions ?? []
        let contextual = state.contextualQuestion
        queries.append(contextual)
        // An amount written in words ("above two million euros") is searched for as documents
        // write it, in digits ("2,000,000"), so a banded table's row can be found.
        let digits = Quantities.scaledAmountsInDigits(contextual)
        if !digits.isEmpty { queries.append(state.searchQuery + " " + digits.joined(separator: " ")) }
        // A plan whose sub-questions repeat the question (the small model often writes it again)
        // searches once per distinct query.
        var distinct = Set<String>()
        queries = queries.filter { distinct.insert($0.lowercased().trimmingCharacters(in: .whitespacesAndNewlines)).inserted }
        var best: [String: Evidence] = [:]
        var order: [String] = []
        var withheld: [String: WithheldSource] = [:]
        // Connectors answer the question as asked (values and periods intact), else the plan's rewrite.
        for source in sources where state.dataAccess.contains(source.mode) {
            // The model's choice of SQL template, asked once for the question as asked.
            var chosen: DatabaseConnector.Match?
            let connector = chooser == nil ? nil : DatabaseConnector.underlying(source)
            if let chooser, let connector, let context {
                let (match, outcome, spent) = try await chooser.choose(contextual, connector: connector, context: context)
                usage += spent
                chosen = match
                if context.logs(at: .debug) {
                    context.logger.debug("sql template choice", metadata: ["outcome": "\(outcome.description)"])
                }
            }
            for query in [contextual, state.searchQuery] {
                // A connector call is a tool call in the OpenTelemetry GenAI conventions.
                let retrieval = try await withSpan("execute_tool \(source.mode.rawValue)", ofKind: .client) { span in
                    span.attributes["gen_ai.operation.name"] = "execute_tool"
                    span.attributes["gen_ai.tool.name"] = source.mode.rawValue
                    var chosenRetrieval: Retrieval?
                    if let connector, let match = chosen, query == contextual {
                        // A template the principal may not run is refused only when the rules
                        // choose it too: a model's stray choice must not turn a question into a refusal.
                        let modelRetrieval = connector.evidence(for: query, match: match, scope: state.scope)
                        if modelRetrieval.withheld.isEmpty {
                            span.attributes["conclave.sql.template"] = match.template.name
                            span.attributes["conclave.sql.chosen_by"] = "model"
                            chosenRetrieval = modelRetrieval
                        }
                    }
                    let result: Retrieval
                    if let chosenRetrieval { result = chosenRetrieval } else { result = try await source.lookup(query, scope: state.scope) }
                    span.attributes["conclave.evidence.count"] = result.evidence.count
                    span.attributes["conclave.withheld.count"] = result.withheld.count
                    return result
                }
                guard !retrieval.evidence.isEmpty || !retrieval.withheld.isEmpty else { continue }
                for item in retrieval.withheld { withheld[item.documentID] = item }
                for item in retrieval.evidence where best[item.chunkID] == nil {
                    best[item.chunkID] = state.guarded(item)
                    order.append(item.chunkID)
                }
                break
            }
        }
        // A second hop: the key values of the records the question names (a customer's tier, an
        // employee's grade) join the question, so the documents keyed by them are found too.
        let keys = Self.lookupKeys(order.compactMap { best[$0] })
        if !keys.isEmpty { queries.insert(state.searchQuery + " " + keys.joined(separator: " "), at: 0) }
        // Names carried from the previous answer ("the secondary's number") are searched for by name.
        if let carried = state.carriedQuery { queries.insert(carried, at: 0) }
        let documentQueries = state.dataAccess.contains(.rag) ? queries : []
        for (index, query) in documentQueries.enumerated() {
            let weight = index == 0 ? 1.0 : 0.8
            let retrieval = try await withSpan("retrieve documents", ofKind: .internal) { span in
                span.attributes["conclave.retrieval.limit"] = limit
                let retrieval = try await retriever.retrieve(query, limit: limit, scope: state.scope)
                span.attributes["conclave.evidence.count"] = retrieval.evidence.count
                span.attributes["conclave.withheld.count"] = retrieval.withheld.count
                return retrieval
            }
            for source in retrieval.withheld where source.coverage > (withheld[source.documentID]?.coverage ?? -1) {
                withheld[source.documentID] = source
            }
            for found in retrieval.evidence {
                var item = state.guarded(found)
                item.score *= weight
                if let existing = best[item.chunkID] {
                    if item.score > existing.score { best[item.chunkID] = item }
                } else {
                    best[item.chunkID] = item
                    order.append(item.chunkID)
                }
            }
        }
        let merged = order.compactMap { best[$0] }.sorted { $0.score > $1.score }
        var kept = Array(merged.prefix(limit + 2))
        // A second hop through a name: when the best fact for a two-part question names, in a
        // labelled field, whom its second part is about ("…, and what is *their* number?" over
        // `Primary: <name>`), the second part is searched again with the name, and its best
        // passage is kept.
        if state.dataAccess.contains(.rag), let second = SlotBridge.secondPart(of: state.question),
           let top = FactExtractor().candidates(for: state.searchQuery, evidence: kept, reasoning: nil, limit: 1).first {
            let names = SlotBridge.names(in: top.text, labelledBy: state.question)
            if !names.isEmpty {
                // The passages already kept may rank first again: ask for more, keep two new ones.
                let hop = try await retriever.retrieve(second + " " + names.joined(separator: " "), limit: kept.count + 2, scope: state.scope)
                for item in hop.evidence.filter({ item in !kept.contains { $0.chunkID == item.chunkID } }).prefix(2) {
                    kept.append(state.guarded(item))
                }
            }
        }
        // A question that names a document by a code its id or title carries ("HR case
        // HRC-2025-014", "SEC-003") is about that document: more of its passages are read, so a
        // fact the best-ranked ones miss (a row further down a table) can still be found. A code
        // no retrieved passage's document carries is tried as a document id.
        let codes = Self.documentCodes(in: state.contextualQuestion)
        if state.dataAccess.contains(.rag), !codes.isEmpty {
            // The documents whose title carries a code, and the codes that may be document ids themselves.
            var named = Set(kept.filter { item in
                let name = (item.source.id + " " + item.source.title).lowercased()
                return codes.contains { name.contains($0) }
            }.map(\.source.id))
            if named.isEmpty { named = Set(codes.map { $0.uppercased() }) }
            for id in named.sorted() {
                var scope = state.scope
                scope.filterDocumentIDs = scope.filterDocumentIDs.map { $0.intersection([id]) } ?? [id]
                let more = try await retriever.retrieve(state.searchQuery, limit: Self.namedDocumentPassages, scope: scope)
                for item in more.evidence where !kept.contains(where: { $0.chunkID == item.chunkID }) {
                    kept.append(state.guarded(item))
                }
            }
        }
        return (Retrieval(evidence: kept, withheld: withheld.values.sorted { $0.coverage > $1.coverage }), usage)
    }

    /// Passages read from a document the question names by a code.
    static let namedDocumentPassages = 12

    /// The question's codes that could name a document, lowercased: words of at least five
    /// characters that join letters and digits with a hyphen ("HRC-2025-014", "SEC-003").
    package static func documentCodes(in question: String) -> [String] {
        question.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "-") })
            .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "-")) }
            .filter { $0.count >= 5 && $0.contains("-") && $0.contains(where: \.isNumber) && $0.contains(where: \.isLetter) }
            .map { $0.lowercased() }
    }

    /// The key values of the lookup records among `evidence`, in order, without repeats.
    static func lookupKeys(_ evidence: [Evidence]) -> [String] {
        var keys: [String] = []
        for item in evidence where item.isLookup {
            for key in item.keys ?? [] where !keys.contains(key) { keys.append(key) }
        }
        return keys
    }
}
