import ConclaveCore
import Logging

/// One specialised agent: reads the workflow state, does its part, returns its output.
///
/// Agents are stateless and idempotent for a given state, so a step can be retried (or, in
/// distributed mode, redelivered) safely.
public protocol Agent: Sendable {
    /// The role this agent plays.
    var role: AgentRole { get }
    /// Does the agent's part of the run.
    func run(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult
}

/// What an agent needs from the engine besides the state.
public struct AgentContext: Sendable {
    /// Sampling settings for the agent's model calls.
    public var options: ModelCallOptions
    /// Called with each piece of answer text as it is produced (responder only).
    public var emitToken: @Sendable (String) async throws -> Void
    /// The run this attempt belongs to, for log metadata.
    public var runID: String?
    /// The workflow step this attempt executes, for log metadata.
    public var stepID: String?
    /// Key that keeps a conversation's model calls on one replica (see `ChatRequest.affinityKey`).
    public var affinityKey: String?
    private var baseLogger: Logger
    /// When this attempt of the step must be done; model calls are bounded by it.
    public var deadline: ContinuousClock.Instant?

    /// Creates a context.
    public init(options: ModelCallOptions = ModelCallOptions(), deadline: ContinuousClock.Instant? = nil,
                logger: Logger = Logger(label: "conclave.agent"), runID: String? = nil, stepID: String? = nil,
                emitToken: @escaping @Sendable (String) async throws -> Void = { _ in }) {
        self.options = options
        self.deadline = deadline
        self.emitToken = emitToken
        self.baseLogger = logger
        self.runID = runID
        self.stepID = stepID
    }

    /// True when a message at `level` would be logged (check before building costly metadata).
    public func logs(at level: Logger.Level) -> Bool {
        baseLogger.logLevel <= level
    }

    /// Logger with the run's and step's metadata. Built when an agent logs (rarely), not per step:
    /// setting logger metadata for every step showed up in the engine's profile.
    public var logger: Logger {
        var logger = baseLogger
        if let runID { logger[metadataKey: "run_id"] = "\(runID)" }
        if let stepID { logger[metadataKey: "step"] = "\(stepID)" }
        return logger
    }

    /// Time left before the deadline (nil without one).
    public var remaining: Duration? {
        deadline.map { max(.milliseconds(1), $0 - ContinuousClock.now) }
    }
}

/// Sampling settings for model calls.
public struct ModelCallOptions: Sendable, Hashable, Codable {
    /// Temperature.
    public var temperature: Double
    /// Seed.
    public var seed: Int
    /// Most tokens the responder may generate.
    public var maxTokens: Int

    /// Creates options; the defaults are deterministic.
    public init(temperature: Double = 0, seed: Int = 42, maxTokens: Int = 256) {
        self.temperature = temperature
        self.seed = seed
        self.maxTokens = maxTokens
    }
}

/// An agent's output and the model tokens it spent.
public struct AgentResult: Sendable {
    /// The output.
    public var output: AgentOutput
    /// Tokens used by the agent's model calls.
    public var usage: TokenUsage

    /// Creates a result.
    public init(_ output: AgentOutput, usage: TokenUsage = TokenUsage()) {
        self.output = output
        self.usage = usage
    }
}

/// The typed output of each role.
public enum AgentOutput: Sendable {
    case plan(Plan)
    case evidence([Evidence], withheld: [WithheldSource] = [])
    case reasoning(Reasoning)
    case validation(Validation)
    case answer(Answer)

    /// A one-line summary for the event log and trace.
    public var summary: String {
        switch self {
        case .plan(let plan):
            if let kind = plan.conversational { return "conversational=\(kind.rawValue)" }
            return "query=\(plan.query.prefix(120)) sub_questions=\(plan.subQuestions.count)\(plan.isFallback ? " fallback" : "")"
        case .evidence(let evidence, let withheld):
            return "passages=\(evidence.count) sources=\(Array(Set(evidence.map(\.source.id))).sorted().joined(separator: ","))"
                // Only a count: the ids of documents the user may not read never reach the client
                // (they are in the audit record).
                + (withheld.isEmpty ? "" : " withheld=\(withheld.count)")
        case .reasoning(let r):
            return "form=\(r.answerForm.rawValue) computation=\(r.computation.rawValue) entities=\(r.entities.count)\(r.isFallback ? " fallback" : "")"
        case .validation(let v):
            return "answerable=\(v.answerable) facts=\(v.facts.count)\(v.isFallback ? " fallback" : "")\(v.isRestricted ? " restricted" : "") (\(v.rationale))"
        case .answer(let a):
            return "characters=\(a.text.count) citations=\(a.citations.count)"
        }
    }
}
