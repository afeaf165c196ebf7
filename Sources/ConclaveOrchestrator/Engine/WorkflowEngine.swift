import ConclaveAgents
import ConclaveCore
import ConclaveMessaging
import ConclaveStorage
import Logging
import Metrics

/// Runs workflows: schedules each step once its dependencies are done (independent steps run
/// concurrently in a task group), applies per-step timeouts and retries, publishes every event
/// on the message bus and hands the run's event log to the store.
public struct WorkflowEngine: Sendable {
    /// Engine settings.
    public struct Configuration: Sendable {
        /// Timeout of a step that sets none.
        public var defaultStepTimeout: Duration
        /// Sampling settings passed to agents.
        public var options: ModelCallOptions

        /// Creates settings.
        public init(defaultStepTimeout: Duration = .seconds(60), options: ModelCallOptions = ModelCallOptions()) {
            self.defaultStepTimeout = defaultStepTimeout
            self.options = options
        }
    }

    private let team: AgentTeam
    private let bus: any MessageBus
    private let eventLog: BatchingEventWriter?
    private let configuration: Configuration
    private let logger: Logger
    private let stepTimers: [AgentRole: Metrics.Timer]
    private let promptTokens: Counter
    private let completionTokens: Counter

    /// Creates an engine.
    public init(team: AgentTeam, bus: any MessageBus, eventLog: BatchingEventWriter?, configuration: Configuration = .init(),
                logger: Logger = Logger(label: "conclave.orchestrator")) {
        self.team = team
        self.bus = bus
        self.eventLog = eventLog
        self.configuration = configuration
        self.logger = logger
        var timers: [AgentRole: Metrics.Timer] = [:]
        for role in AgentRole.allCases {
            timers[role] = Metrics.Timer(label: "conclave_step_duration_seconds", dimensions: [("role", role.rawValue)],
                                         preferredDisplayUnit: .seconds)
        }
        stepTimers = timers
        promptTokens = Counter(label: "conclave_model_tokens_total", dimensions: [("direction", "prompt")])
        completionTokens = Counter(label: "conclave_model_tokens_total", dimensions: [("direction", "completion")])
    }

    /// Runs `workflow` from `initial` and returns the final state and trace. Throws the first step
    /// failure that outlives its retries, or `CancellationError` when the caller is cancelled;
    /// either way the run's events (ending in `run_failed`) are persisted.
    /// `options` replaces the configured sampling settings for this run.
    public func run(_ workflow: Workflow, state initial: WorkflowState, runID: String = "run_" + RandomID.make(),
                    options: ModelCallOptions? = nil) async throws -> RunResult
    {
        let recorder = RunRecorder(runID: runID, bus: bus)
        recorder.record(.runStarted, detail: workflow.name)
        defer { eventLog?.append(recorder.events) }
        do {
            let (state, trace) = try await schedule(workflow, initial: initial, recorder: recorder,
                                                    options: options ?? configuration.options)
            recorder.record(.runCompleted)
            return RunResult(runID: runID, state: state, trace: trace)
        } catch {
            let message = (error is CancellationError || Task.isCancelled) ? "cancelled" : "\(error)"
            recorder.record(.runFailed, detail: message)
            throw error
        }
    }

    private func schedule(_ workflow: Workflow, initial: WorkflowState, recorder: RunRecorder, options: ModelCallOptions)
        async throws
        -> (WorkflowState, [StepTrace])
    {
        var state = initial
        var trace: [StepTrace] = []
        var started = Set<String>()
        var done = Set<String>()
        try await withThrowingTaskGroup(of: (WorkflowStep, AgentResult, StepTrace).self) { group in
            func startReady() throws {
                for step in workflow.steps where !started.contains(step.id) && step.dependsOn.allSatisfy(done.contains) {
                    guard let agent = team.agent(for: step.role) else {
                        throw ConclaveError(.invalidWorkflow, "no agent plays role '\(step.role.rawValue)'")
                    }
                    started.insert(step.id)
                    let snapshot = state
                    group.addTask {
                        try await self.execute(step, agent: agent, state: snapshot, recorder: recorder, options: options)
                    }
                }
            }
            try startReady()
            while let (step, result, stepTrace) = try await group.next() {
                state.apply(result.output)
                trace.append(stepTrace)
                done.insert(step.id)
                try startReady()
            }
        }
        guard done.count == workflow.steps.count else {
            throw ConclaveError(.internal, "workflow '\(workflow.name)' stalled", context: "done \(done.sorted())")
        }
        return (state, trace)
    }

    private func execute(_ step: WorkflowStep, agent: any Agent, state: WorkflowState, recorder: RunRecorder,
                         options: ModelCallOptions) async throws
        -> (WorkflowStep, AgentResult, StepTrace)
    {
        let timeout = step.timeoutSeconds.map { Duration.milliseconds(Int64($0 * 1000)) } ?? configuration.defaultStepTimeout
        let clock = ContinuousClock()
        let start = clock.now
        var attempt = 1
        var stepLogger = logger
        stepLogger[metadataKey: "run_id"] = "\(recorder.runID)"
        stepLogger[metadataKey: "step"] = "\(step.id)"
        let context = AgentContext(options: options, logger: stepLogger) { token in
            try Task.checkCancellation()
            recorder.record(.tokenDelta, step: step, detail: token)
        }
        while true {
            recorder.record(.stepStarted, step: step, attempt: attempt)
            let attemptStart = clock.now
            do {
                let result = try await Self.withDeadline(
                    timeout,
                    error: ConclaveError(.timeout, "Step '\(step.id)' (\(step.role.rawValue)) timed out after \(timeout).")
                ) {
                    try await agent.run(state, context: context)
                }
                let elapsed = clock.now - start
                let ms = Self.milliseconds(clock.now - attemptStart)
                recorder.record(.stepCompleted, step: step, attempt: attempt, detail: result.output.summary,
                                durationMilliseconds: ms, usage: result.usage)
                stepTimers[step.role]?.recordNanoseconds(Int64(elapsed.components.seconds) * 1_000_000_000
                                                         + elapsed.components.attoseconds / 1_000_000_000)
                if result.usage.promptTokens > 0 { promptTokens.increment(by: result.usage.promptTokens) }
                if result.usage.completionTokens > 0 { completionTokens.increment(by: result.usage.completionTokens) }
                let entry = StepTrace(step: step.id, role: step.role, status: "completed", milliseconds: Self.milliseconds(elapsed),
                                      attempts: attempt, usage: result.usage, summary: result.output.summary)
                return (step, result, entry)
            } catch {
                let cancelled = error is CancellationError || Task.isCancelled
                recorder.record(.stepFailed, step: step, attempt: attempt, detail: cancelled ? "cancelled" : "\(error)",
                                durationMilliseconds: Self.milliseconds(clock.now - attemptStart))
                if cancelled { throw CancellationError() }
                let retryable = attempt < step.retry.maxAttempts && !recorder.hasEmittedTokens(step.id)
                    && (error as? ConclaveError)?.code != .invalidRequest
                guard retryable else { throw error }
                stepLogger.warning("step failed; retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                let backoff = step.retry.backoffMilliseconds << (attempt - 1)
                try await Task.sleep(for: .milliseconds(backoff))
                attempt += 1
            }
        }
    }

    /// Runs `body`, cancelling it and throwing `error` (a `timeout` error by default) if it takes
    /// longer than `timeout`.
    public static func withDeadline<T: Sendable>(
        _ timeout: Duration,
        error: ConclaveError = ConclaveError(.timeout, "The request timed out."),
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            if let first = try await group.next(), let value = first {
                return value
            }
            throw error
        }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }
}
