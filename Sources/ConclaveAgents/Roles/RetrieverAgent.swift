import ConclaveCore
import ConclaveKnowledge
import Tracing

/// Gathers evidence for the plan's query and each sub-question, merging duplicates and keeping the
/// best-scoring passages. Uses no model.
public struct RetrieverAgent: Agent {
    public var role: AgentRole { .retriever }
    private let retriever: any Retriever
    private let sources: [any EvidenceSource]
    private let limit: Int

    /// Creates a retriever agent returning up to `limit` passages, consulting `sources` (database,
    /// API) besides the documents when the state's data-access modes enable them.
    public init(retriever: any Retriever, sources: [any EvidenceSource] = [], limit: Int = 4) {
        self.retriever = retriever
        self.sources = sources
        self.limit = limit
    }

    public func run(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        if state.inputRefusal != nil { return AgentResult(.evidence([])) }
        let retrieval = try await Self.gather(for: state, retriever: retriever, sources: sources, limit: limit)
        return AgentResult(.evidence(retrieval.evidence, withheld: retrieval.withheld))
    }

    /// Evidence for every query of the state from the documents in the state's scope and from the
    /// enabled connectors, deduplicated by chunk, best first; and the matching sources outside the scope.
    static func gather(for state: WorkflowState, retriever: any Retriever, sources: [any EvidenceSource] = [],
                       limit: Int) async throws -> Retrieval {
        var queries = [state.searchQuery]
        queries += state.plan?.subQuestions ?? []
        let contextual = state.contextualQuestion
        queries.append(contextual)
        // A plan whose sub-questions repeat the question (the small model often writes it again)
        // searches once per distinct query.
        var distinct = Set<String>()
        queries = queries.filter { distinct.insert($0.lowercased().trimmingCharacters(in: .whitespacesAndNewlines)).inserted }
        var best: [String: Evidence] = [:]
        var order: [String] = []
        var withheld: [String: WithheldSource] = [:]
        // Connectors answer the question as asked (values and periods intact), else the plan's rewrite.
        for source in sources where state.dataAccess.contains(source.mode) {
            for query in [contextual, state.searchQuery] {
                // A connector call is a tool call in the OpenTelemetry GenAI conventions.
                let retrieval = try await withSpan("execute_tool \(source.mode.rawValue)", ofKind: .client) { span in
                    span.attributes["gen_ai.operation.name"] = "execute_tool"
                    span.attributes["gen_ai.tool.name"] = source.mode.rawValue
                    let retrieval = try await source.lookup(query, scope: state.scope)
                    span.attributes["conclave.evidence.count"] = retrieval.evidence.count
                    span.attributes["conclave.withheld.count"] = retrieval.withheld.count
                    return retrieval
                }
                guard !retrieval.evidence.isEmpty || !retrieval.withheld.isEmpty else { continue }
                for item in retrieval.withheld { withheld[item.documentID] = item }
                for var item in retrieval.evidence where best[item.chunkID] == nil {
                    if let textGuard = state.textGuard { item.text = textGuard.evidence(item.text) }
                    best[item.chunkID] = item
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
            for var item in retrieval.evidence {
                if let textGuard = state.textGuard { item.text = textGuard.evidence(item.text) }
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
                for var item in hop.evidence.filter({ item in !kept.contains { $0.chunkID == item.chunkID } }).prefix(2) {
                    if let textGuard = state.textGuard { item.text = textGuard.evidence(item.text) }
                    kept.append(item)
                }
            }
        }
        return Retrieval(evidence: kept, withheld: withheld.values.sorted { $0.coverage > $1.coverage })
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
