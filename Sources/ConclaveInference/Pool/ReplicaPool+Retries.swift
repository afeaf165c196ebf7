import ConclaveCore
import Logging
import Metrics

extension ReplicaPool {
    /// When and how often a failed call is tried again.
    public struct RetryPolicy: Sendable, Hashable {
        /// Attempts per call, each on another replica where there is one (1: no retry).
        public var maxAttempts: Int
        /// Backoff before the first retry; doubled per retry, jittered ±50 %, capped at `maxBackoff`.
        public var backoff: Duration
        /// Longest backoff.
        public var maxBackoff: Duration

        /// Creates a policy.
        public init(maxAttempts: Int = 3, backoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(2)) {
            self.maxAttempts = maxAttempts
            self.backoff = backoff
            self.maxBackoff = maxBackoff
        }

        /// The jittered wait before retry number `retry` (1 for the first).
        public func delay(beforeRetry retry: Int) -> Duration {
            min(maxBackoff, backoff * (1 << min(retry - 1, 5)) * Double.random(in: 0.5...1.5))
        }

        /// Whether an error is the replica's fault and worth another attempt: connection errors,
        /// 502/503/504, timeouts and streams cut short (all `modelUnavailable` or `timeout`).
        public static func isReplicaFault(_ error: any Error) -> Bool {
            (error as? ConclaveError).map { $0.code == .modelUnavailable || $0.code == .timeout } ?? false
        }
    }

    /// Runs `call` on a leased replica with the remaining time to `deadline`; retries the
    /// replica's faults with jittered exponential backoff on another replica where there is one,
    /// while `retryable()` allows (a stream is retried only before its first token). Every
    /// attempt shares the one deadline; the replica's breaker learns each outcome.
    public func withRetries<T>(policy: RetryPolicy, deadline: ContinuousClock.Instant, affinity: String? = nil,
                               retryable: @Sendable () -> Bool = { true }, logger: Logger,
                               _ call: (_ base: String, _ remaining: Duration) async throws -> T) async throws -> T {
        var tried = Set<String>()
        var attempt = 1
        var staleRetried = false
        while true {
            // A retry waits (within the deadline) for a replica to come back when none serves:
            // with two replicas, one killed while the other still loads its model is a moment
            // with none, and the request was already accepted.
            let lease = try await acquire(avoiding: tried, affinity: attempt == 1 ? affinity : nil,
                                          replicaDeadline: attempt == 1 ? nil : deadline)
            do {
                let value = try await call(lease.url, max(.milliseconds(1), deadline - ContinuousClock.now))
                release(lease, success: true)
                return value
            } catch let error as ConclaveError where error.message == Upstream.staleConnection && !staleRetried && retryable() {
                // Not the replica's fault and nothing was sent: once, at once, on the same replica.
                release(lease, success: true)
                staleRetried = true
                continue
            } catch {
                let replicaFault = RetryPolicy.isReplicaFault(error)
                let timedOut = (error as? ConclaveError)?.code == .timeout
                release(lease, outcome: error is CancellationError ? .cancelled
                                        : !replicaFault ? .success : timedOut ? .timeout : .failure)
                if !(error is CancellationError) {
                    instruments.errors((error as? ConclaveError)?.code.rawValue ?? "other").increment()
                }
                tried.insert(lease.url)
                let wait = policy.delay(beforeRetry: attempt)
                guard replicaFault, attempt < policy.maxAttempts, retryable(), !Task.isCancelled,
                      ContinuousClock.now + wait < deadline else {
                    if replicaFault {
                        logger.warning("model call failed", metadata: [
                            "model": "\(model)", "replica": "\(lease.url)", "attempt": "\(attempt)", "error": "\(error)",
                        ])
                    }
                    throw error
                }
                logger.warning("model call failed; retrying", metadata: [
                    "model": "\(model)", "replica": "\(lease.url)", "attempt": "\(attempt)", "error": "\(error)",
                ])
                try await Task.sleep(for: wait)
                attempt += 1
            }
        }
    }
}
