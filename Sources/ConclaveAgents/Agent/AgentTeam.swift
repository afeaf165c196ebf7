import ConclaveCore
import ConclaveInference
import ConclaveKnowledge

/// The five agents of a deployment, built over one model and one retriever.
public struct AgentTeam: Sendable {
    private let agents: [AgentRole: any Agent]

    /// Builds the standard team. `prompts` (from `workflows.prompts_file`) replaces the built-in
    /// prompts and sampling where it sets them.
    /// `modelChoosesTemplates` (`knowledge.sql_template_choice: model`) lets the model choose the SQL template.
    public init(model: any ChatModel, retriever: any Retriever, sources: [any EvidenceSource] = [], topK: Int = 4,
                answerPhrasing: WorkflowsConfiguration.AnswerPhrasing = .quote, prompts: AgentPrompts = .builtIn,
                modelChoosesTemplates: Bool = false) {
        let list: [any Agent] = [
            PlannerAgent(model: model, prompt: prompts.planner),
            RetrieverAgent(retriever: retriever, sources: sources, limit: topK, templateModel: modelChoosesTemplates ? model : nil,
                           prompt: prompts.retriever),
            ReasonerAgent(model: model, prompt: prompts.reasoner),
            ValidatorAgent(model: model, prompt: prompts.validator),
            ResponderAgent(model: model, retriever: retriever, sources: sources, limit: topK, phrasing: answerPhrasing,
                           prompt: prompts.responder),
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

extension AgentPrompts {
    /// The prompts and token bounds compiled in: those of `config/prompts/agents.yaml` as shipped
    /// (a test keeps the two the same). Temperature and seed come from `inference`.
    public static let builtIn = AgentPrompts(
        version: "2026-11-27",
        planner: .init(instructions: PlannerAgent.instructions, maxTokens: 160),
        retriever: .init(instructions: SQLTemplateChooser.instructions, maxTokens: 120),
        reasoner: .init(instructions: ReasonerAgent.instructions, maxTokens: 96),
        validator: .init(instructions: ValidatorAgent.instructions, maxTokens: 40),
        responder: .init(instructions: ResponderAgent.factInstructions, passageInstructions: ResponderAgent.passageInstructions))
}
