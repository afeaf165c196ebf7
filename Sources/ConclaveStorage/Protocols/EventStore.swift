import ConclaveCore

/// Stores the event log of workflow runs.
public protocol EventStore: Sendable {
    /// Appends events (from any runs) in one transaction.
    func appendEvents(_ events: [RunEvent]) async throws
    /// Appends the events of several runs (each array one run's events) in one transaction.
    func appendEvents(batches: [[RunEvent]]) async throws
    /// The events of one run, in sequence order.
    func events(ofRun runID: String) async throws -> [RunEvent]
}

extension EventStore {
    public func appendEvents(batches: [[RunEvent]]) async throws {
        try await appendEvents(batches.flatMap { $0 })
    }
}
