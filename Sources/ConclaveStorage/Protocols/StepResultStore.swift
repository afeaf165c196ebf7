/// Outcomes of agent steps run by workers (distributed mode), kept so a redelivered step is
/// answered once: the first outcome stored under a key wins.
public protocol StepResultStore: Sendable {
    /// The stored outcome of the step with this key (`run/step/dispatch`), if any.
    func stepResult(key: String) async throws -> [UInt8]?
    /// Stores an outcome unless one is stored under the key already.
    func storeStepResult(key: String, runID: String, payload: [UInt8]) async throws
}
