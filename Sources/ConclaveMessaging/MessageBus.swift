import ConclaveCore

/// Carries run events from the engine to whoever listens (the server's SSE writer, tracing,
/// later the distributed workers).
public protocol MessageBus: Sendable {
    /// Publishes an event to the subscribers of its run.
    func publish(_ event: RunEvent)
    /// Publishes several events of one run, in order.
    func publish(_ events: [RunEvent])
    /// Subscribes to one run's events. The stream ends when the subscription is cancelled or the
    /// run's final event (`run_completed` / `run_failed`) has been delivered.
    func subscribe(toRun runID: String) -> AsyncStream<RunEvent>
}

extension MessageBus {
    public func publish(_ events: [RunEvent]) {
        for event in events { publish(event) }
    }
}
