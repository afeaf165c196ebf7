import ConclaveAgents
import ConclaveCore
import ConclaveMessaging
import ConclaveStorage
import Foundation
import Logging
import Metrics
import Tracing

/// Sends agent steps to the workers of their role over JetStream and waits for their frames on a
/// core NATS subject of its own. One per gateway.
public final class StepDispatcher: Sendable {
    private let queue: JetStreamWorkQueue
    /// `conclave.replies.<gatewayID>`: the prefix of this gateway's reply subjects.
    private let replyPrefix: String
    private let logger: Logger
    /// What the bus adds to a step: dispatch wall time minus the agent's time on the worker and
    /// minus the time the step waited for a free worker.
    fileprivate let overhead: [AgentRole: Metrics.Timer]
    /// Time steps waited in the queue for a free worker of their role.
    fileprivate let queueing: [AgentRole: Metrics.Timer]

    /// The shared store's step outcomes: a reply lost in transit (core NATS delivers at most
    /// once) is found there when the step's time is up.
    private let results: (any StepResultStore)?

    public init(queue: JetStreamWorkQueue, results: (any StepResultStore)? = nil,
                logger: Logger = Logger(label: "conclave.orchestrator")) throws {
        self.queue = queue
        self.results = results
        replyPrefix = "conclave.replies.\(RandomID.make())"
        self.logger = logger
        func timers(_ label: String) -> [AgentRole: Metrics.Timer] {
            Dictionary(uniqueKeysWithValues: AgentRole.allCases.map {
                ($0, Metrics.Timer(label: label, dimensions: [("role", $0.rawValue)], preferredDisplayUnit: .seconds))
            })
        }
        overhead = timers("conclave_bus_overhead_seconds")
        queueing = timers("conclave_bus_queue_seconds")
        // The consumers exist before the first step, so no step is published into a subject
        // nobody will read (a work-queue stream keeps it until a consumer of its subject comes).
        for role in AgentRole.allCases { try queue.prepare(queue: role.rawValue) }
    }

    /// The team a gateway runs workflows with in distributed mode: every role is a ``RemoteAgent``.
    public func team() -> AgentTeam {
        AgentTeam(agents: AgentRole.allCases.map { RemoteAgent(role: $0, dispatcher: self) })
    }

    /// Publishes the step, forwards its answer text to `context.emitToken`, returns its result.
    ///
    /// A worker that dies mid-step is replaced by JetStream's redelivery to another worker, which
    /// produces the answer text again from its start. The text already forwarded is not sent
    /// twice: only characters beyond it are. With deterministic sampling (temperature 0 and a
    /// seed, the default) the regenerated prefix is the same text.
    func dispatch(_ role: AgentRole, state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        let dispatchID = RandomID.make()
        let reply = "\(replyPrefix).\(dispatchID)"
        let request = StepRequest(
            runID: context.runID ?? "run_unknown", stepID: context.stepID ?? role.rawValue, role: role, dispatchID: dispatchID,
            replySubject: reply,
            remainingMilliseconds: context.remaining.map { $0.inMilliseconds },
            options: context.options, affinityKey: context.affinityKey, state: PortableState(state),
            traceContext: TraceContextCarrier.current())
        let started = ContinuousClock.now
        let payload = try BusCoding.encode(request)
        let frames: AsyncStream<NATSMessage>
        do {
            frames = try await queue.connection.subscribe(reply)
            try await queue.submit(to: role.rawValue, payload: payload, id: request.key,
                                   headers: ["Conclave-Run": request.runID, "Conclave-Step": request.stepID])
        } catch {
            throw ConclaveError(.unavailable, "The agent bus did not accept the \(role.rawValue) step.", context: "\(error)")
        }
        // At the step's deadline, stop waiting (a step error the engine may retry) rather than
        // leave the run to the engine's watchdog; a result stored but lost in transit still counts.
        let expiry = context.deadline.map { deadline in
            Task {
                try await Task.sleep(until: deadline, clock: .continuous)
                try await queue.connection.publish(reply, BusCoding.encode(StepFrame.expired))
            }
        }
        defer { expiry?.cancel() }
        var forwarded = 0
        for await message in frames {
            let frame: StepFrame
            do {
                frame = try BusCoding.decode(StepFrame.self, from: message.payload)
            } catch {
                logger.error("orchestrator: undecodable step frame", metadata: ["reply": "\(reply)", "error": "\(error)"])
                continue
            }
            switch frame {
            case .expired:
                if let results, let stored = try? await results.stepResult(key: request.key),
                   case .result(let outcome)? = try? BusCoding.decode(StepFrame.self, from: stored) {
                    return try result(outcome, role: role, state: state, started: started)
                }
                throw ConclaveError(.timeout, "The \(role.rawValue) step got no answer from a worker in time.")
            case .token(let text, let offset, _):
                // Characters this delivery sent that the client has not seen yet.
                let end = offset + text.count
                guard end > forwarded else { continue }
                let fresh = offset >= forwarded ? text : String(text.dropFirst(forwarded - offset))
                forwarded = end
                try await context.emitToken(fresh)
            case .result(let outcome):
                return try result(outcome, role: role, state: state, started: started)
            }
        }
        // The stream ends early only when this task is cancelled (the engine's timeout or the client).
        try Task.checkCancellation()
        throw CancellationError()
    }
}

extension StepDispatcher {
    /// A worker's outcome as the agent's result: measures what the bus added, hands the guard's
    /// activity to the request's guard, and rethrows the worker's error with its code.
    fileprivate func result(_ outcome: StepOutcome, role: AgentRole, state: WorkflowState, started: ContinuousClock.Instant) throws
        -> AgentResult {
        if let worker = outcome.workerMicroseconds {
            let total = ContinuousClock.now - started
            let nanoseconds = total.inNanoseconds
            let queued = min(max(0, nanoseconds - worker * 1000), (outcome.queuedMicroseconds ?? 0) * 1000)
            queueing[role]?.recordNanoseconds(queued)
            overhead[role]?.recordNanoseconds(max(0, nanoseconds - worker * 1000 - queued))
        }
        if let activity = outcome.guardActivity, let textGuard = state.textGuard as? any TransferableTextGuard {
            textGuard.absorb(activity)
        }
        if let error = outcome.error { throw error.conclaveError }
        guard let output = outcome.output else {
            throw ConclaveError(.internal, "The \(role.rawValue) worker sent a result without output.")
        }
        return AgentResult(output.agentOutput, usage: outcome.usage)
    }
}

/// An agent whose work happens in a worker process (`conclave worker --role …`).
public struct RemoteAgent: Agent {
    public let role: AgentRole
    let dispatcher: StepDispatcher

    public func run(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        try await dispatcher.dispatch(role, state: state, context: context)
    }
}
