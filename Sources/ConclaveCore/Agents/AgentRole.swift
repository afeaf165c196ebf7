/// The five specialised agent roles a workflow is built from.
public enum AgentRole: String, Sendable, Codable, Hashable, CaseIterable {
    case planner, retriever, reasoner, validator, responder
}
