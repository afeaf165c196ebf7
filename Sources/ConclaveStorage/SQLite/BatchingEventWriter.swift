import ConclaveCore
import Logging
import ServiceLifecycle
import Synchronization

/// Writes run events to an ``EventStore`` by group commit: callers hand events over without
/// waiting, and a single writer loop stores everything pending in one transaction at a time.
///
/// Run it in the process's `ServiceGroup`; on shutdown it drains what is pending before it returns.
public final class BatchingEventWriter: Service, Sendable {
    private let store: any EventStore
    private let logger: Logger
    /// One array per `append` call (a run's events), so appending is O(1) and copies nothing.
    private let pending = Mutex<[[RunEvent]]>([])
    private let signal: AsyncStream<Void>
    private let signalContinuation: AsyncStream<Void>.Continuation

    /// Creates a writer over `store`.
    public init(store: any EventStore, logger: Logger = Logger(label: "conclave.events")) {
        self.store = store
        self.logger = logger
        (signal, signalContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues events for the next commit.
    public func append(_ events: [RunEvent]) {
        guard !events.isEmpty else { return }
        pending.withLock { $0.append(events) }
        signalContinuation.yield()
    }

    /// Stores everything queued so far, now. On failure the events stay queued for the next
    /// attempt (appends are idempotent per run and sequence, so a retried batch is stored once).
    public func flush() async throws {
        let batch = pending.withLock { batch -> [[RunEvent]] in
            defer { batch = [] }
            return batch
        }
        guard !batch.isEmpty else { return }
        do {
            try await store.appendEvents(batches: batch)
        } catch {
            pending.withLock { $0.insert(contentsOf: batch, at: 0) }
            throw error
        }
    }

    /// Events waiting to be stored.
    public var pendingCount: Int { pending.withLock { $0.reduce(0) { $0 + $1.count } } }

    /// Stops the writer after it has stored everything queued (an alternative to graceful
    /// shutdown for tools that run it outside a service group).
    public func finish() {
        signalContinuation.finish()
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            var failures = 0
            for await _ in signal.cancelOnGracefulShutdown() {
                do {
                    try await flush()
                    failures = 0
                } catch {
                    failures += 1
                    logger.error("event log write failed; will retry", metadata: [
                        "error": "\(error)", "pending": "\(pendingCount)",
                    ])
                    try? await Task.sleep(for: .milliseconds(min(5_000, 50 << min(failures, 7))))
                    signalContinuation.yield()
                }
            }
        } onGracefulShutdown: {
            self.signalContinuation.finish()
        }
        do {
            // In a task of its own: when shutdown comes as cancellation, the database refuses
            // writes from a cancelled task, and the last events would be lost.
            try await Task.detached { try await self.flush() }.value
        } catch {
            logger.error("event log final write failed", metadata: ["error": "\(error)", "lost": "\(pendingCount)"])
        }
    }
}
