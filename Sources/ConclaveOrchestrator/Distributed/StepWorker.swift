import ConclaveAgents
import ConclaveCore
import ConclaveMessaging
import ConclaveStorage
import Foundation
import Logging
import Metrics
import Tracing
import Synchronization

/// Runs one role's agent steps taken from JetStream (`conclave worker --role R`).
///
/// Idempotent per step: the outcome of a request is stored under its key (run, step, dispatch)
/// before it is sent, so a redelivered request (the worker died after sending, before its ack)
/// is answered from the store instead of running the agent again. Agent errors are outcomes too,
/// sent to the gateway whose retry policy decides; only a worker that dies or is stopped leaves
/// its step to JetStream's redelivery.
public final class StepWorker: Sendable {
    public let role: AgentRole
    private let agent: any Agent
    private let queue: JetStreamWorkQueue
    private let results: (any StepResultStore)?
    private let guardFactory: @Sendable (Principal, GuardTransfer) -> (any TransferableTextGuard)?
    private let concurrency: Int
    private let logger: Logger
    private let identity: String
    private let completed: Counter
    private let failed: Counter
    private let replayed: Counter
    /// Time the agent ran, per step (Table 4's time share per role).
    private let stepTime: Metrics.Timer
    /// Model tokens the role's steps spent (Table 4's model share per role).
    private let tokens: Counter
    private let busy = Mutex(0)

    public init(role: AgentRole, agent: any Agent, queue: JetStreamWorkQueue, results: (any StepResultStore)?,
                concurrency: Int = 4,
                guardFactory: @escaping @Sendable (Principal, GuardTransfer) -> (any TransferableTextGuard)? = { _, _ in nil },
                logger: Logger = Logger(label: "conclave.worker")) {
        self.role = role
        self.agent = agent
        self.queue = queue
        self.results = results
        self.guardFactory = guardFactory
        self.concurrency = max(1, concurrency)
        self.logger = logger
        identity = "\(ProcessInfo.processInfo.hostName)/\(getpid())"
        completed = Counter(label: "conclave_worker_steps_total", dimensions: [("role", role.rawValue), ("outcome", "completed")])
        failed = Counter(label: "conclave_worker_steps_total", dimensions: [("role", role.rawValue), ("outcome", "failed")])
        replayed = Counter(label: "conclave_worker_steps_total", dimensions: [("role", role.rawValue), ("outcome", "replayed")])
        stepTime = Metrics.Timer(label: "conclave_worker_step_seconds", dimensions: [("role", role.rawValue)], preferredDisplayUnit: .seconds)
        tokens = Counter(label: "conclave_worker_model_tokens_total", dimensions: [("role", role.rawValue)])
    }

    /// Steps running now.
    public var inFlight: Int { busy.withLock { $0 } }

    /// Takes steps until the calling task is cancelled or `stop` returns true. After `stop` the
    /// steps running finish (a drain); steps still running at cancellation are given back to the
    /// queue for another worker.
    public func run(until stop: @escaping @Sendable () -> Bool = { false }) async throws {
        logger.info("worker: taking steps", metadata: ["role": "\(role.rawValue)", "concurrency": "\(concurrency)",
                                                       "subject": "\(queue.configuration.subject(of: role.rawValue))"])
        try await queue.consume(queue: role.rawValue, concurrency: concurrency, until: stop) { [self] item in
            try await handle(item)
        }
    }

    func handle(_ item: WorkItem) async throws {
        let request: StepRequest
        do {
            request = try BusCoding.decode(StepRequest.self, from: item.payload)
        } catch {
            // No retry can fix it, and nobody can be answered: straight to the dead-letter stream.
            throw UnprocessableMessage("an undecodable step request: \(error)")
        }
        busy.withLock { $0 += 1 }
        defer { busy.withLock { $0 -= 1 } }
        if let results, let stored = try await results.stepResult(key: request.key) {
            replayed.increment()
            logger.info("worker: step already ran; sending its stored result",
                        metadata: ["run_id": "\(request.runID)", "step": "\(request.stepID)", "delivery": "\(item.deliveryCount)"])
            try await send(stored, to: request.replySubject)
            return
        }
        let textGuard = request.state.guardTransfer.flatMap { guardFactory(request.state.principal, $0) }
        let state = request.state.workflowState(textGuard: textGuard)
        // The time left when the gateway sent it, less the time it waited in the queue.
        let deadline = request.remainingMilliseconds.map {
            ContinuousClock.now + .milliseconds(max(1, $0 - (item.queuedMicroseconds ?? 0) / 1000))
        }
        let sent = Mutex(0)
        let connection = queue.connection
        let delivery = item.deliveryCount
        var context = AgentContext(options: request.options, deadline: deadline, logger: logger, runID: request.runID,
                                   stepID: request.stepID) { text in
            let offset = sent.withLock { count -> Int in
                defer { count += text.count }
                return count
            }
            try connection.publish(request.replySubject, try BusCoding.encode(StepFrame.token(text: text, offset: offset, delivery: delivery)))
        }
        context.affinityKey = request.affinityKey
        var outcome: StepOutcome
        let started = ContinuousClock.now
        do {
            // The worker's span continues the gateway's trace (the step span travels in the request).
            let result = try await withSpan("invoke_agent \(request.role.rawValue)", context: TraceContextCarrier.context(request.traceContext),
                                            ofKind: .consumer) { span in
                span.attributes["gen_ai.operation.name"] = "invoke_agent"
                span.attributes["gen_ai.agent.name"] = request.role.rawValue
                span.attributes["conclave.step.id"] = request.stepID
                span.attributes["conclave.run_id"] = request.runID
                span.attributes["conclave.worker"] = identity
                span.attributes["messaging.system"] = "nats"
                span.attributes["messaging.message.delivery_count"] = Int(delivery)
                return try await agent.run(state, context: context)
            }
            outcome = StepOutcome(output: PortableOutput(result.output), error: nil, usage: result.usage,
                                  guardActivity: textGuard?.activity, worker: identity)
            completed.increment()
        } catch {
            // Stopping: the step goes back to the queue (nak) for another worker.
            if error is CancellationError || Task.isCancelled { throw error }
            outcome = StepOutcome(output: nil, error: PortableError(error), usage: TokenUsage(), guardActivity: textGuard?.activity,
                                  worker: identity)
            failed.increment()
            logger.warning("worker: step failed", metadata: ["run_id": "\(request.runID)", "step": "\(request.stepID)",
                                                             "error": "\(error)"])
        }
        let elapsed = ContinuousClock.now - started
        outcome.workerMicroseconds = elapsed.inMicroseconds
        outcome.queuedMicroseconds = item.queuedMicroseconds
        stepTime.recordNanoseconds(elapsed.inNanoseconds)
        let spent = outcome.usage.promptTokens + outcome.usage.completionTokens
        if spent > 0 { tokens.increment(by: spent) }
        let frame = try BusCoding.encode(StepFrame.result(outcome))
        // Stored before it is sent: a redelivery after this point replays it, and if another
        // delivery stored first, its outcome is the one sent.
        let stored = try await results?.storeStepResult(key: request.key, runID: request.runID, payload: frame) ?? frame
        try await send(stored, to: request.replySubject)
        await pruneOccasionally()
    }

    private func send(_ frame: [UInt8], to subject: String) async throws {
        try queue.connection.publish(subject, frame)
        try await queue.connection.flush()
    }

    private let lastPrune = Mutex(ContinuousClock.now)

    /// Outcomes are needed only while their step can be redelivered: once an hour, a worker
    /// deletes those older than a day.
    private func pruneOccasionally() async {
        let due = lastPrune.withLock { last -> Bool in
            guard ContinuousClock.now - last > .seconds(3600) else { return false }
            last = ContinuousClock.now
            return true
        }
        guard due, let results else { return }
        do {
            let removed = try await results.pruneStepResults(storedBefore: Date().timeIntervalSince1970 - 86_400)
            if removed > 0 { logger.info("worker: pruned stored step outcomes", metadata: ["removed": "\(removed)"]) }
        } catch {
            logger.warning("worker: pruning stored step outcomes failed", metadata: ["error": "\(error)"])
        }
    }
}
