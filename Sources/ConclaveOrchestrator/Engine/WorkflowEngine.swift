import ConclaveAgents
import ConclaveCore
import ConclaveMessaging
import ConclaveStorage
import Logging
import Metrics
import Tracing

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
    private let watchdog = Watchdog()

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
    /// `options` replaces the configured sampling settings for this run. `configVersion`, the
    /// version of the reloadable configuration the request runs on, goes on the run's span.
    public func run(_ workflow: Workflow, state initial: WorkflowState, runID: String = "run_" + RandomID.makeTimeOrdered(),
                    options: ModelCallOptions? = nil, configVersion: Int? = nil) async throws -> RunResult
    {
        let recorder = RunRecorder(runID: runID, bus: bus)
        recorder.record(.runStarted, detail: workflow.name)
        defer { eventLog?.append(recorder.eventsForLog) }
        do {
            return try await withSpan("invoke_workflow \(workflow.name)", ofKind: .internal) { span in
                span.attributes["conclave.workflow"] = workflow.name
                span.attributes["conclave.run_id"] = runID
                if let configVersion { span.attributes["conclave.config_version"] = configVersion }
                let (state, trace) = try await schedule(workflow, initial: initial, recorder: recorder,
                                                        options: options ?? configuration.options)
                recorder.record(.runCompleted)
                return RunResult(runID: runID, state: state, trace: trace)
            }
        } catch {
            let message = (error is CancellationError || Task.isCancelled) ? "cancelled" : "\(error)"
            recorder.record(.runFailed, detail: message)
            throw error
        }
    }

    private typealias StepResult = (step: WorkflowStep, result: AgentResult, trace: StepTrace)

    /// Runs the steps in a task of their own that the engine's ``Watchdog`` cancels when a step
    /// attempt overstays its timeout (the caller's task is never cancelled by a timeout; cancelling
    /// the caller cancels the steps).
    private func schedule(_ workflow: Workflow, initial: WorkflowState, recorder: RunRecorder, options: ModelCallOptions)
        async throws -> (WorkflowState, [StepTrace])
    {
        let deadlines = StepDeadlines()
        let steps = Task {
            try await self.runSteps(workflow, initial: initial, recorder: recorder, options: options, deadlines: deadlines)
        }
        deadlines.onExpiry { steps.cancel() }
        watchdog.watch(deadlines)
        defer { watchdog.unwatch(deadlines) }
        do {
            return try await withTaskCancellationHandler {
                try await steps.value
            } onCancel: {
                steps.cancel()
            }
        } catch {
            if let expired = deadlines.expired {
                recorder.record(.stepFailed, step: expired.step, detail: "timed out after \(expired.limit)")
                throw ConclaveError(.timeout, "Step '\(expired.step.id)' (\(expired.step.role.rawValue)) timed out after \(expired.limit).")
            }
            throw error
        }
    }

    /// Starts every step whose dependencies are done. A step that is the only one ready while
    /// nothing else runs executes inline (no task to create or hop to); steps that can overlap run
    /// as child tasks.
    private func runSteps(_ workflow: Workflow, initial: WorkflowState, recorder: RunRecorder, options: ModelCallOptions,
                          deadlines: StepDeadlines) async throws -> (WorkflowState, [StepTrace])
    {
        var state = initial
        var trace: [StepTrace] = []
        let runStart = ContinuousClock.now
        var started = Set<String>()
        var done = Set<String>()
        var running = 0
        func agent(for step: WorkflowStep) throws -> any Agent {
            guard let agent = team.agent(for: step.role) else {
                throw ConclaveError(.invalidWorkflow, "no agent plays role '\(step.role.rawValue)'")
            }
            return agent
        }
        try await withThrowingTaskGroup(of: StepResult.self) { group in
            while done.count < workflow.steps.count {
                let ready = workflow.steps.filter { !started.contains($0.id) && $0.dependsOn.allSatisfy(done.contains) }
                if running == 0 && ready.count == 1, let step = ready.first {
                    started.insert(step.id)
                    let outcome = try await execute(step, agent: try agent(for: step), state: state, recorder: recorder,
                                                    options: options, deadlines: deadlines, runStart: runStart)
                    state.apply(outcome.result.output)
                    trace.append(outcome.trace)
                    done.insert(step.id)
                    continue
                }
                for step in ready {
                    let stepAgent = try agent(for: step)
                    started.insert(step.id)
                    running += 1
                    let snapshot = state
                    group.addTask {
                        try await self.execute(step, agent: stepAgent, state: snapshot, recorder: recorder, options: options,
                                               deadlines: deadlines, runStart: runStart)
                    }
                }
                guard running > 0, let outcome = try await group.next() else {
                    throw ConclaveError(.internal, "workflow '\(workflow.name)' stalled", context: "done \(done.sorted())")
                }
                running -= 1
                state.apply(outcome.result.output)
                trace.append(outcome.trace)
                done.insert(outcome.step.id)
            }
        }
        return (state, trace)
    }

    private func timeout(of step: WorkflowStep) -> Duration {
        step.timeoutSeconds.map { Duration.milliseconds(Int64($0 * 1000)) } ?? configuration.defaultStepTimeout
    }

    private func execute(_ step: WorkflowStep, agent: any Agent, state: WorkflowState, recorder: RunRecorder,
                         options: ModelCallOptions, deadlines: StepDeadlines, runStart: ContinuousClock.Instant) async throws -> StepResult
    {
        let limit = timeout(of: step)
        let clock = ContinuousClock()
        let start = clock.now
        var attempt = 1
        while true {
            recorder.record(.stepStarted, step: step, attempt: attempt)
            let attemptStart = clock.now
            let deadline = attemptStart + limit
            deadlines.register(step, deadline: deadline, limit: limit)
            var context = AgentContext(options: options, deadline: deadline, logger: logger, runID: recorder.runID,
                                       stepID: step.id) { token in
                try Task.checkCancellation()
                recorder.record(.tokenDelta, step: step, detail: token)
            }
            context.affinityKey = state.conversationID
            do {
                // One span per attempt, named after the OpenTelemetry GenAI agent conventions.
                let tried = attempt
                let result = try await withSpan("invoke_agent \(step.role.rawValue)", ofKind: .internal) { span in
                    span.attributes["gen_ai.operation.name"] = "invoke_agent"
                    span.attributes["gen_ai.agent.name"] = step.role.rawValue
                    span.attributes["conclave.step.id"] = step.id
                    span.attributes["conclave.step.attempt"] = tried
                    let result = try await agent.run(state, context: context)
                    span.attributes["gen_ai.usage.input_tokens"] = result.usage.promptTokens
                    span.attributes["gen_ai.usage.output_tokens"] = result.usage.completionTokens
                    return result
                }
                deadlines.remove(step)
                let elapsed = clock.now - start
                let ms = Self.milliseconds(clock.now - attemptStart)
                let summary = result.output.summary
                recorder.record(.stepCompleted, step: step, attempt: attempt, detail: summary,
                                durationMilliseconds: ms, usage: result.usage)
                stepTimers[step.role]?.recordNanoseconds(elapsed.inNanoseconds)
                if result.usage.promptTokens > 0 { promptTokens.increment(by: result.usage.promptTokens) }
                if result.usage.completionTokens > 0 { completionTokens.increment(by: result.usage.completionTokens) }
                let entry = StepTrace(step: step.id, role: step.role, status: "completed", milliseconds: Self.milliseconds(elapsed),
                                      attempts: attempt, usage: result.usage, summary: summary,
                                      startMilliseconds: Self.milliseconds(start - runStart))
                return (step, result, entry)
            } catch {
                deadlines.remove(step)
                let cancelled = error is CancellationError || Task.isCancelled
                recorder.record(.stepFailed, step: step, attempt: attempt, detail: cancelled ? "cancelled" : "\(error)",
                                durationMilliseconds: Self.milliseconds(clock.now - attemptStart))
                if cancelled { throw CancellationError() }
                let retryable = attempt < step.retry.maxAttempts && !recorder.hasEmittedTokens(step.id)
                    && (error as? ConclaveError)?.code != .invalidRequest
                guard retryable else { throw error }
                context.logger.warning("step failed; retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
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

