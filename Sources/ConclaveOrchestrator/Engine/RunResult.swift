import ConclaveAgents
import ConclaveCore

/// The outcome of a workflow run.
public struct RunResult: Sendable {
    /// Run id.
    public var runID: String
    /// The final state: plan, evidence, reasoning, validation and answer.
    public var state: WorkflowState
    /// One entry per executed step, in completion order.
    public var trace: [StepTrace]

    /// Creates a result (the engine's, or a cached answer replayed by the gateway).
    public init(runID: String, state: WorkflowState, trace: [StepTrace]) {
        self.runID = runID
        self.state = state
        self.trace = trace
    }

    /// Tokens used by all steps.
    public var usage: TokenUsage {
        var total = TokenUsage()
        for step in trace { total += step.usage }
        return total
    }
}

/// Timing and outcome of one step, as reported in `conclave.trace`.
public struct StepTrace: Sendable, Codable, Hashable {
    /// Step id.
    public var step: String
    /// Agent role.
    public var role: AgentRole
    /// `completed` or `failed`.
    public var status: String
    /// Wall time of the step (all attempts), in milliseconds.
    public var milliseconds: Double
    /// When the step's first attempt started, in milliseconds after the workflow's first step
    /// started (a timeline: overlapping steps ran in parallel).
    public var startMilliseconds: Double
    /// Attempts made.
    public var attempts: Int
    /// Tokens used.
    public var usage: TokenUsage
    /// Summary of the step's output.
    public var summary: String

    /// Creates a trace entry.
    public init(step: String, role: AgentRole, status: String, milliseconds: Double, attempts: Int, usage: TokenUsage,
                summary: String, startMilliseconds: Double = 0) {
        self.step = step
        self.role = role
        self.status = status
        self.milliseconds = milliseconds
        self.startMilliseconds = startMilliseconds
        self.attempts = attempts
        self.usage = usage
        self.summary = summary
    }

    enum CodingKeys: String, CodingKey {
        case step, role, status, milliseconds, attempts, summary
        case startMilliseconds = "start_milliseconds"
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step)
        try c.encode(role, forKey: .role)
        try c.encode(status, forKey: .status)
        try c.encode((milliseconds * 10).rounded() / 10, forKey: .milliseconds)
        try c.encode((startMilliseconds * 10).rounded() / 10, forKey: .startMilliseconds)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(summary, forKey: .summary)
        try c.encode(usage.promptTokens, forKey: .promptTokens)
        try c.encode(usage.completionTokens, forKey: .completionTokens)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        step = try c.decode(String.self, forKey: .step)
        role = try c.decode(AgentRole.self, forKey: .role)
        status = try c.decode(String.self, forKey: .status)
        milliseconds = try c.decode(Double.self, forKey: .milliseconds)
        startMilliseconds = try c.decodeIfPresent(Double.self, forKey: .startMilliseconds) ?? 0
        attempts = try c.decode(Int.self, forKey: .attempts)
        summary = try c.decode(String.self, forKey: .summary)
        usage = TokenUsage(promptTokens: try c.decode(Int.self, forKey: .promptTokens),
                           completionTokens: try c.decode(Int.self, forKey: .completionTokens))
    }
}
