/// Outcomes of agent steps run by workers (distributed mode), kept so a redelivered step is
/// answered once: the first outcome stored under a key wins.
public protocol StepResultStore: Sendable {
    /// The stored outcome of the step with this key (`run/step/dispatch`), if any.
    func stepResult(key: String) async throws -> [UInt8]?
    /// Stores an outcome unless one is stored under the key already, and returns the stored one
    /// (this one, or the earlier one that won).
    func storeStepResult(key: String, runID: String, payload: [UInt8]) async throws -> [UInt8]
    /// Deletes outcomes stored before `time` (seconds since 1970); returns how many.
    @discardableResult
    func pruneStepResults(storedBefore time: Double) async throws -> Int
}
