import ConclaveAgents
import ConclaveCore
import Foundation

/// One agent step sent from a gateway to the workers of its role (JSON on
/// `conclave.steps.<role>`): the run's state so far, the sampling settings, the time left, and
/// where to answer.
public struct StepRequest: Sendable, Codable {
    public var runID: String
    public var stepID: String
    public var role: AgentRole
    /// Unique per dispatch: the JetStream message id (a re-sent publish is stored once) and the
    /// worker's idempotency key together with the run and step.
    public var dispatchID: String
    /// Core NATS subject the worker answers on (token frames, then one result frame).
    public var replySubject: String
    /// Milliseconds the step may still take when it was sent.
    public var remainingMilliseconds: Int64?
    public var options: ModelCallOptions
    public var affinityKey: String?
    public var state: PortableState
    /// The W3C trace context of the gateway's step span (`traceparent`, `tracestate`), so the
    /// worker's spans join the request's trace; nil when tracing is off.
    public var traceContext: [String: String]?

    /// `run/step/dispatch`: what a redelivered message is recognised by.
    public var key: String { "\(runID)/\(stepID)/\(dispatchID)" }
}

/// The parts of a ``WorkflowState`` that travel: everything but the text guard, which travels as
/// its ``GuardTransfer`` and is rebuilt by the worker's governance layer.
public struct PortableState: Sendable, Codable {
    public var question: String
    public var history: [ChatMessage]
    public var principal: Principal
    public var conversationID: String?
    public var scope: DocumentScope
    public var withheld: [WithheldSource]
    public var inputRefusal: String?
    public var dataAccess: Set<DataAccessMode>
    public var plan: Plan?
    public var evidence: [Evidence]?
    public var reasoning: Reasoning?
    public var validation: Validation?
    public var answer: Answer?
    /// Nil when the request has no text guard (governance below `full`).
    public var guardTransfer: GuardTransfer?

    public init(_ state: WorkflowState) {
        question = state.question
        history = state.history
        principal = state.principal
        conversationID = state.conversationID
        scope = state.scope
        withheld = state.withheld
        inputRefusal = state.inputRefusal
        dataAccess = state.dataAccess
        plan = state.plan
        evidence = state.evidence
        reasoning = state.reasoning
        validation = state.validation
        answer = state.answer
        guardTransfer = (state.textGuard as? any TransferableTextGuard)?.transfer()
    }

    /// The state again, with `textGuard` (built from ``guardTransfer`` by the caller).
    public func workflowState(textGuard: (any TextGuard)?) -> WorkflowState {
        var state = WorkflowState(question: question, history: history, principal: principal, scope: scope, textGuard: textGuard)
        state.conversationID = conversationID
        state.withheld = withheld
        state.inputRefusal = inputRefusal
        state.dataAccess = dataAccess
        state.plan = plan
        state.evidence = evidence
        state.reasoning = reasoning
        state.validation = validation
        state.answer = answer
        return state
    }
}

/// What a worker sends back on the reply subject: answer text as it is produced, then the result.
public enum StepFrame: Sendable, Codable {
    /// Answer text; `offset` is the number of characters this delivery sent before it.
    case token(text: String, offset: Int, delivery: Int)
    /// The step's outcome (sent once per delivery; the gateway keeps the first).
    case result(StepOutcome)
    /// Sent by the gateway to itself when the step's time is up.
    case expired
}

/// A step's outcome: the agent's output or its error, the tokens spent and what the worker's
/// text guard did.
public struct StepOutcome: Sendable, Codable {
    public var output: PortableOutput?
    public var error: PortableError?
    public var usage: TokenUsage
    public var guardActivity: GuardActivity?
    /// The worker that ran it (host and pid), for traces and logs.
    public var worker: String
    /// How long the agent ran on the worker, in microseconds: the gateway subtracts it from the
    /// dispatch's wall time to measure what the bus adds to a step.
    public var workerMicroseconds: Int64?
    /// How long the request sat in the stream before a worker fetched it (waiting for a free
    /// worker of its role), in microseconds.
    public var queuedMicroseconds: Int64?
}

/// A step error that crosses the bus with its code, so the gateway's retry rules and the client's
/// error mapping see the same error as in one process.
public struct PortableError: Sendable, Codable, Hashable {
    public var code: String
    public var message: String

    public init(_ error: any Error) {
        if let error = error as? ConclaveError {
            code = error.code.rawValue
            message = error.message
        } else {
            code = ConclaveError.Code.internal.rawValue
            message = String(describing: error)
        }
    }

    public var conclaveError: ConclaveError {
        ConclaveError(ConclaveError.Code(rawValue: code) ?? .internal, message)
    }
}

/// ``AgentOutput`` as JSON.
public enum PortableOutput: Sendable, Codable {
    case plan(Plan)
    case evidence([Evidence], withheld: [WithheldSource])
    case reasoning(Reasoning)
    case validation(Validation)
    case answer(Answer)

    public init(_ output: AgentOutput) {
        switch output {
        case .plan(let plan): self = .plan(plan)
        case .evidence(let evidence, let withheld): self = .evidence(evidence, withheld: withheld)
        case .reasoning(let reasoning): self = .reasoning(reasoning)
        case .validation(let validation): self = .validation(validation)
        case .answer(let answer): self = .answer(answer)
        }
    }

    public var agentOutput: AgentOutput {
        switch self {
        case .plan(let plan): .plan(plan)
        case .evidence(let evidence, let withheld): .evidence(evidence, withheld: withheld)
        case .reasoning(let reasoning): .reasoning(reasoning)
        case .validation(let validation): .validation(validation)
        case .answer(let answer): .answer(answer)
        }
    }
}

/// The JSON coding of bus messages (one encoder/decoder configuration for both sides).
enum BusCoding {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try JSONEncoder().encode(value))
    }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
