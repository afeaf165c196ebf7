import Synchronization

/// Deadlines of one run's running step attempts, and the means to stop the run when one passes.
final class StepDeadlines: Sendable {
    /// Grace past a deadline before the watchdog steps in, so a model call that honours the same
    /// deadline can fail (and be retried) on its own first.
    static let grace: Duration = .milliseconds(250)

    private struct State {
        var entries: [String: (step: WorkflowStep, deadline: ContinuousClock.Instant, limit: Duration)] = [:]
        var expired: (step: WorkflowStep, limit: Duration)?
        var onExpiry: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    /// Sets what stops the run once an attempt expires (at once if one already has).
    func onExpiry(_ action: @escaping @Sendable () -> Void) {
        let expiredAlready = state.withLock { state -> Bool in
            state.onExpiry = action
            return state.expired != nil
        }
        if expiredAlready { action() }
    }

    func register(_ step: WorkflowStep, deadline: ContinuousClock.Instant, limit: Duration) {
        state.withLock { $0.entries[step.id] = (step, deadline, limit) }
    }

    func remove(_ step: WorkflowStep) {
        _ = state.withLock { $0.entries.removeValue(forKey: step.id) }
    }

    /// The attempt that overstayed its deadline and stopped the run, if one did.
    var expired: (step: WorkflowStep, limit: Duration)? {
        state.withLock { $0.expired }
    }

    /// Marks the run expired and stops it when an attempt is past its deadline and the grace.
    func expireIfOverdue(at now: ContinuousClock.Instant) {
        let action = state.withLock { state -> (@Sendable () -> Void)?? in
            guard state.expired == nil,
                  let entry = state.entries.values.first(where: { $0.deadline + Self.grace <= now }) else { return nil }
            state.expired = (entry.step, entry.limit)
            return .some(state.onExpiry)
        }
        if case .some(.some(let stop)) = action { stop() }
    }
}

/// One watchdog per engine, for all its runs: a single timer task that wakes every ``tick`` while
/// runs are in flight and cancels any run whose step attempt is overdue. It replaced a watchdog
/// task per run, whose creation, timer and cancellation cost more than the rest of the engine's
/// scheduling (see docs/performance.md).
final class Watchdog: Sendable {
    /// How often in-flight runs are checked. A step is stopped between its deadline plus
    /// ``StepDeadlines/grace`` and that plus one tick.
    static let tick: Duration = .milliseconds(50)

    private let state = Mutex<(runs: [ObjectIdentifier: StepDeadlines], ticking: Bool)>(([:], false))

    /// Watches `run` until ``unwatch(_:)``.
    func watch(_ run: StepDeadlines) {
        let start = state.withLock { state -> Bool in
            state.runs[ObjectIdentifier(run)] = run
            guard !state.ticking else { return false }
            state.ticking = true
            return true
        }
        if start { Task.detached { [self] in await loop() } }
    }

    /// Stops watching `run`.
    func unwatch(_ run: StepDeadlines) {
        _ = state.withLock { $0.runs.removeValue(forKey: ObjectIdentifier(run)) }
    }

    private func loop() async {
        while true {
            try? await Task.sleep(for: Self.tick)
            let now = ContinuousClock.now
            let (runs, more) = state.withLock { state -> ([StepDeadlines], Bool) in
                if state.runs.isEmpty { state.ticking = false }
                return (Array(state.runs.values), state.ticking)
            }
            for run in runs { run.expireIfOverdue(at: now) }
            guard more else { return }
        }
    }
}
