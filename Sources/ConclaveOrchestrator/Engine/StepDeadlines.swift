import Synchronization

/// Deadlines of a run's running step attempts, watched by the run's single watchdog.
final class StepDeadlines: Sendable {
    /// Grace past a deadline before the watchdog steps in, so a model call that honours the same
    /// deadline can fail (and be retried) on its own first.
    static let grace: Duration = .milliseconds(250)

    private let entries = Mutex<[String: (step: WorkflowStep, deadline: ContinuousClock.Instant, limit: Duration)]>([:])

    func register(_ step: WorkflowStep, deadline: ContinuousClock.Instant, limit: Duration) {
        entries.withLock { $0[step.id] = (step, deadline, limit) }
    }

    func remove(_ step: WorkflowStep) {
        _ = entries.withLock { $0.removeValue(forKey: step.id) }
    }

    /// The earliest moment an attempt can become overdue.
    func earliest() -> ContinuousClock.Instant? {
        entries.withLock { $0.values.map { $0.deadline + Self.grace }.min() }
    }

    /// An attempt past its deadline (and the grace), if any.
    func overdue(at now: ContinuousClock.Instant) -> (step: WorkflowStep, limit: Duration)? {
        entries.withLock { entries in
            entries.values.first { $0.deadline + Self.grace <= now }.map { ($0.step, $0.limit) }
        }
    }
}
