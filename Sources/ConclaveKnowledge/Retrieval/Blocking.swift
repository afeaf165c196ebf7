import Dispatch

/// Runs CPU-heavy synchronous work (embedding a batch of chunks, building an index) on a Dispatch
/// queue instead of Swift concurrency's cooperative pool, which has one thread per core: blocking
/// it would stall every other task of the process (timeouts, streams, the watchdog).
public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            continuation.resume(with: Result { try body() })
        }
    }
}
