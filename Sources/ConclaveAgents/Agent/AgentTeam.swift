import ConclaveCore
import ConclaveInference
import ConclaveKnowledge

/// The five agents of a deployment, built over one model and one retriever.
public struct AgentTeam: Sendable {
    private let agents: [AgentRole: any Agent]

    /// Builds the standard team.
    public init(model: any ChatModel, retriever: any Retriever, sources: [any EvidenceSource] = [], topK: Int = 4,
                answerPhrasing: WorkflowsConfiguration.AnswerPhrasing = .quote) {
        let list: [any Agent] = [
            PlannerAgent(model: model),
            RetrieverAgent(retriever: retriever, sources: sources, limit: topK),
            ReasonerAgent(model: model),
            ValidatorAgent(model: model),
            ResponderAgent(model: model, retriever: retriever, sources: sources, limit: topK, phrasing: answerPhrasing),
        ]
        self.init(agents: list)
    }

    /// Builds a team from explicit agents (one per role; later ones replace earlier ones).
    public init(agents: [any Agent]) {
        var byRole: [AgentRole: any Agent] = [:]
        for agent in agents { byRole[agent.role] = agent }
        self.agents = byRole
    }

    /// The agent playing `role`, if the team has one.
    public func agent(for role: AgentRole) -> (any Agent)? { agents[role] }
}
