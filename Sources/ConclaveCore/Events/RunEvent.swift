import Foundation

/// Something that happened during a workflow run. Events are published on the message bus and
/// persisted as the run's event log.
public struct RunEvent: Sendable, Codable, Hashable {
    /// The event type.
    public enum Kind: String, Sendable, Codable, Hashable {
        case runStarted = "run_started"
        case stepStarted = "step_started"
        case stepCompleted = "step_completed"
        case stepFailed = "step_failed"
        case tokenDelta = "token_delta"
        case runCompleted = "run_completed"
        case runFailed = "run_failed"
    }

    /// The run this event belongs to.
    public var runID: String
    /// Position of the event in the run (0-based, gap-free).
    public var sequence: Int
    /// What happened.
    public var kind: Kind
    /// The step concerned, for step and token events.
    public var stepID: String?
    /// The agent role of the step.
    public var role: AgentRole?
    /// Attempt number of the step (1-based).
    public var attempt: Int
    /// Payload: the token text, an error message, or a JSON summary of the step output.
    public var detail: String?
    /// Step duration in milliseconds, for completion and failure events.
    public var durationMilliseconds: Double?
    /// Token usage of the step.
    public var usage: TokenUsage?
    /// When the event happened.
    public var timestamp: Date

    /// Creates an event.
    public init(runID: String, sequence: Int, kind: Kind, stepID: String? = nil, role: AgentRole? = nil,
                attempt: Int = 1, detail: String? = nil, durationMilliseconds: Double? = nil,
                usage: TokenUsage? = nil, timestamp: Date = Date()) {
        self.runID = runID
        self.sequence = sequence
        self.kind = kind
        self.stepID = stepID
        self.role = role
        self.attempt = attempt
        self.detail = detail
        self.durationMilliseconds = durationMilliseconds
        self.usage = usage
        self.timestamp = timestamp
    }
}
