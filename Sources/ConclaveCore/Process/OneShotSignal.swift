import Synchronization

/// A one-time event tasks can wait for.
public final class OneShotSignal: Sendable {
    private let state = Mutex<(fired: Bool, waiters: [Int: CheckedContinuation<Void, Never>], next: Int)>((false, [:], 0))

    /// Creates an unfired signal.
    public init() {}

    /// True once ``fire()`` was called.
    public var hasFired: Bool { state.withLock { $0.fired } }

    /// Fires the signal: every waiter returns, and later waits return at once.
    public func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.fired = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when the signal fires or the task is cancelled.
    public func wait() async {
        let id = nextID()
        await withTaskCancellationHandler {
            await suspend(id, returnIfCancelled: true)
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }

    /// Returns when the signal fires, whether or not the task is cancelled.
    public func waitIgnoringCancellation() async {
        await suspend(nextID(), returnIfCancelled: false)
    }

    private func nextID() -> Int {
        state.withLock { state -> Int in
            state.next += 1
            return state.next
        }
    }

    private func suspend(_ id: Int, returnIfCancelled: Bool) async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if state.fired || returnIfCancelled && Task.isCancelled { return true }
                state.waiters[id] = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}
