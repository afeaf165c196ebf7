import ConclaveCore
import Metrics
import Synchronization

/// The model replicas behind one model, with admission control, load balancing and a circuit
/// breaker per replica.
///
/// - **Balancing**: power of two choices over the available replicas, by fewest outstanding calls.
/// - **Admission**: each replica takes at most `maxInFlightPerReplica` calls; beyond that callers
///   wait in a bounded queue, and past `maxQueued` they are refused at once with
///   `modelUnavailable` (the API answers 503 with `Retry-After`) instead of queueing forever.
/// - **Circuit breaker**: `failureThreshold` consecutive failures open a replica's breaker; after
///   `openDuration` one probe call is let through (half-open); its success closes the breaker, its
///   failure opens it again. A call that ran out of time counts only when the replica answered no
///   other call meanwhile: a busy replica is slow, a hung one is silent (``release(_:outcome:)``).
public final class ReplicaPool: Sendable {
    /// Pool settings.
    public struct Configuration: Sendable, Hashable {
        /// Calls one replica serves at once.
        public var maxInFlightPerReplica: Int
        /// Callers that may wait for a free replica.
        public var maxQueued: Int
        /// Consecutive failures that open a breaker.
        public var failureThreshold: Int
        /// How long an open breaker stays open before a probe.
        public var openDuration: Duration

        /// Creates settings.
        public init(maxInFlightPerReplica: Int = 8, maxQueued: Int = 64, failureThreshold: Int = 3,
                    openDuration: Duration = .seconds(5)) {
            self.maxInFlightPerReplica = maxInFlightPerReplica
            self.maxQueued = maxQueued
            self.failureThreshold = failureThreshold
            self.openDuration = openDuration
        }
    }

    /// A breaker's state.
    public enum BreakerState: String, Sendable, Codable, Hashable {
        case closed, open
        case halfOpen = "half_open"
    }

    /// A replica's state, for admin views and tests.
    public struct ReplicaStatus: Sendable, Hashable, Codable {
        public var url: String
        public var inFlight: Int
        public var consecutiveFailures: Int
        public var breaker: BreakerState
        /// False while the active health check fails.
        public var healthy: Bool
        /// True while the replica finishes its calls before it is stopped.
        public var draining: Bool
    }

    /// Outstanding work, the signal of admission control and of the autoscaler.
    public struct Load: Sendable, Hashable {
        /// Replicas that may take calls (breaker not open, healthy, not draining).
        public var ready: Int
        /// Calls in flight plus callers queued.
        public var outstanding: Int
        /// Callers queued.
        public var queued: Int
    }

    /// The right to make one call to one replica; give it back with ``release(_:outcome:)``.
    public struct Lease: Sendable, Hashable {
        /// Base URL of the replica (ending in `/v1`).
        public let url: String
        /// When the call got its slot.
        public let acquiredAt: ContinuousClock.Instant

        init(url: String, acquiredAt: ContinuousClock.Instant = .now) {
            self.url = url
            self.acquiredAt = acquiredAt
        }
    }

    /// How a call on a leased replica ended, for its breaker.
    public enum Outcome: Sendable, Hashable {
        /// Answered (or failed for a reason of the request's own, such as a 400).
        case success
        /// A fault of the replica: connection refused or reset, 502/503/504, a stream cut short.
        case failure
        /// No answer within the call's time (its own timeout, the first-token timeout, or the
        /// remaining budget of the workflow step that made it). A failure only if the replica
        /// answered no other call since this one began: a replica that answers others is busy and
        /// the deadline was the caller's, while one that answers nobody is hung.
        case timeout
        /// The caller gave up (its task was cancelled): nothing learnt about the replica. A
        /// cancelled probe leaves the breaker open with the next probe due at once.
        case cancelled
    }

    private struct Replica {
        var url: String
        var inFlight = 0
        var failures = 0
        var breaker = BreakerState.closed
        var openedAt: ContinuousClock.Instant?
        var probing = false
        var healthy = true
        var draining = false
        /// When a call on it last succeeded.
        var lastSuccess: ContinuousClock.Instant?

        /// Takes calls: not failing its health check, not draining.
        var serving: Bool { healthy && !draining }
        /// Counted as ready: serving, breaker not open.
        var ready: Bool { serving && breaker != .open }
    }

    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Lease, any Error>
        /// Replicas this caller already tried (a retry): it waits for another one while any other serves.
        var avoiding: Set<String> = []
    }

    private struct State {
        var replicas: [Replica] = []
        var waiters: [Waiter] = []
        var nextWaiterID = 0
        var generator = SystemRandomNumberGenerator()
    }

    /// The settings.
    public let configuration: Configuration
    /// The served model's name, the `model` label of the pool's metrics.
    public let model: String
    let instruments: PoolInstruments
    private let state = Mutex(State())

    /// Creates a pool with the given ready replicas (base URLs ending in `/v1`).
    public init(_ urls: [String] = [], configuration: Configuration = Configuration(), model: String = "default") {
        self.configuration = configuration
        self.model = model
        instruments = PoolInstruments(model: model)
        state.withLock { $0.replicas = urls.map { Replica(url: $0) } }
    }

    /// Adds a ready replica (a no-op if present) and lets waiting callers use it.
    public func add(_ url: String) {
        let resumed = state.withLock { state -> [(CheckedContinuation<Lease, any Error>, Lease)] in
            if !state.replicas.contains(where: { $0.url == url }) { state.replicas.append(Replica(url: url)) }
            return Self.serveWaiters(&state, configuration: configuration)
        }
        for (continuation, lease) in resumed { continuation.resume(returning: lease) }
        publishMetrics()
    }

    /// Records the result of an active health check: an unhealthy replica gets no calls until a
    /// check succeeds again.
    public func setHealth(_ url: String, healthy: Bool) {
        let resumed = state.withLock { state -> [(CheckedContinuation<Lease, any Error>, Lease)] in
            guard let index = state.replicas.firstIndex(where: { $0.url == url }), state.replicas[index].healthy != healthy else { return [] }
            state.replicas[index].healthy = healthy
            return Self.serveWaiters(&state, configuration: configuration)
        }
        for (continuation, lease) in resumed { continuation.resume(returning: lease) }
        publishMetrics()
    }

    /// Drains a replica: it gets no new calls, and this returns once its calls in flight have
    /// finished or `timeout` has passed; then the replica is removed.
    public func drain(_ url: String, timeout: Duration) async {
        let known = state.withLock { state -> Bool in
            guard let index = state.replicas.firstIndex(where: { $0.url == url }) else { return false }
            state.replicas[index].draining = true
            return true
        }
        guard known else { return }
        publishMetrics()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !Task.isCancelled,
              state.withLock({ $0.replicas.first { $0.url == url }?.inFlight ?? 0 }) > 0 {
            try? await Task.sleep(for: .milliseconds(25))
        }
        remove(url)
    }

    /// Outstanding work over the serving replicas.
    public var load: Load {
        state.withLock { state in
            Load(ready: state.replicas.filter(\.ready).count,
                 outstanding: state.replicas.reduce(0) { $0 + $1.inFlight } + state.waiters.count, queued: state.waiters.count)
        }
    }

    /// Removes a replica (it died or is being drained); calls in flight on it finish as they may.
    public func remove(_ url: String) {
        // A retry waiting for another replica than the ones it tried may now take one of those.
        let resumed = state.withLock { state -> [(CheckedContinuation<Lease, any Error>, Lease)] in
            state.replicas.removeAll { $0.url == url }
            return Self.serveWaiters(&state, configuration: configuration)
        }
        for (continuation, lease) in resumed { continuation.resume(returning: lease) }
        instruments.forget(url)
        publishMetrics()
    }

    /// Publishes the pool's state as gauges: calls in flight and breaker state (0 closed,
    /// 1 half-open, 2 open) per replica, replicas ready, and the queue depth. A removed
    /// replica's gauges are gone.
    func publishMetrics() {
        // One snapshot: the ready count is read under the same lock as the replicas.
        let (replicas, queued) = state.withLock { ($0.replicas.map { ($0.url, $0.inFlight, $0.breaker, $0.ready) }, $0.waiters.count) }
        for (url, inFlight, breaker, _) in replicas {
            let gauges = instruments.replica(url)
            gauges.inFlight.record(inFlight)
            gauges.breaker.record(breaker == .closed ? 0 : breaker == .halfOpen ? 1 : 2)
        }
        instruments.replicasReady.record(replicas.filter(\.3).count)
        instruments.queueDepth.record(queued)
    }

    /// Base URLs of replicas that take calls: breaker not open, healthy, not draining.
    public var ready: [String] {
        state.withLock { $0.replicas.filter(\.ready).map(\.url) }
    }

    /// The replicas' states.
    public var status: [ReplicaStatus] {
        state.withLock {
            $0.replicas.map {
                ReplicaStatus(url: $0.url, inFlight: $0.inFlight, consecutiveFailures: $0.failures, breaker: $0.breaker,
                              healthy: $0.healthy, draining: $0.draining)
            }
        }
    }

    /// Callers waiting for a free replica.
    public var queued: Int { state.withLock { $0.waiters.count } }

    /// How often a retry waiting for a replica to come back looks again.
    static let replicaPollInterval: Duration = .milliseconds(200)

    /// Takes a slot on the least-loaded of two random available replicas, preferring replicas not in
    /// `avoiding` (used by retries). Waits when every replica is busy and the queue has room;
    /// throws `modelUnavailable` when the queue is full, and when there is no usable replica (none
    /// ready, or every breaker open) unless `replicaDeadline` is given: then it waits for one to
    /// come back (restarted, or its breaker due for a probe) until that instant. Retries pass it,
    /// so that a request already accepted survives a moment with every replica down; a fresh
    /// request is refused at once (503 and `Retry-After`), which lets a load balancer go elsewhere.
    public func acquire(avoiding: Set<String> = [], affinity: String? = nil,
                        replicaDeadline: ContinuousClock.Instant? = nil) async throws -> Lease {
        enum Decision { case lease(Lease), wait, refuse(String, noReplica: Bool) }
        while true {
            let decision = state.withLock { state -> Decision in
                if let lease = Self.pick(&state, avoiding: avoiding, affinity: affinity, configuration: configuration) { return .lease(lease) }
                let now = ContinuousClock.now
                let usable = state.replicas.contains { $0.serving && ($0.breaker == .closed || Self.probeDue($0, now: now, configuration)) }
                guard usable else {
                    return .refuse(state.replicas.isEmpty ? "No model backend is ready." : "Every model replica is failing.", noReplica: true)
                }
                guard state.waiters.count < configuration.maxQueued else { return .refuse("Every model replica is busy.", noReplica: false) }
                return .wait
            }
            switch decision {
            case .lease(let lease):
                publishMetrics()
                return lease
            case .refuse(let message, let noReplica):
                if noReplica, let replicaDeadline, ContinuousClock.now + Self.replicaPollInterval < replicaDeadline {
                    try await Task.sleep(for: Self.replicaPollInterval)
                    continue
                }
                throw ConclaveError(.modelUnavailable, message)
            case .wait: break
            }
            return try await waitForSlot(avoiding: avoiding)
        }
    }

    /// Queues the caller until a replica it accepts has a free slot.
    private func waitForSlot(avoiding: Set<String>) async throws -> Lease {
        let id = state.withLock { state -> Int in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let immediate = state.withLock { state -> Lease? in
                    if let lease = Self.pick(&state, avoiding: avoiding, configuration: configuration) { return lease }
                    state.waiters.append(Waiter(id: id, continuation: continuation, avoiding: avoiding))
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Gives a slot back, recording whether the call succeeded (for the breaker). A failure is a
    /// fault of the replica (connection refused, 5xx, timeout), not a bad request.
    public func release(_ lease: Lease, success: Bool) {
        release(lease, outcome: success ? .success : .failure)
    }

    /// Gives a slot back, recording how the call ended (for the breaker): a success closes the
    /// breaker, a failure counts towards opening it, and a timeout counts as a failure unless the
    /// replica answered another call after this one began (or the call was the half-open probe).
    public func release(_ lease: Lease, outcome: Outcome) {
        let resumed = state.withLock { state -> [(CheckedContinuation<Lease, any Error>, Lease)] in
            if let index = state.replicas.firstIndex(where: { $0.url == lease.url }) {
                var replica = state.replicas[index]
                replica.inFlight = max(0, replica.inFlight - 1)
                let busy = outcome == .timeout && replica.breaker == .closed
                    && (replica.lastSuccess.map { $0 > lease.acquiredAt } ?? false)
                if outcome == .success {
                    replica.failures = 0
                    replica.breaker = .closed
                    replica.probing = false
                    replica.openedAt = nil
                    replica.lastSuccess = .now
                } else if busy {
                    // Slow, not silent: neither a strike nor a clean record.
                } else if outcome == .cancelled {
                    if replica.breaker == .halfOpen {
                        replica.breaker = .open
                        replica.probing = false
                    }
                } else {
                    replica.failures += 1
                    if replica.breaker == .halfOpen || replica.failures >= configuration.failureThreshold {
                        replica.breaker = .open
                        replica.openedAt = .now
                        replica.probing = false
                    }
                }
                state.replicas[index] = replica
            }
            return Self.serveWaiters(&state, configuration: configuration)
        }
        for (continuation, lease) in resumed { continuation.resume(returning: lease) }
        publishMetrics()
    }

    // MARK: - Selection (called with the lock held)

    private static func probeDue(_ replica: Replica, now: ContinuousClock.Instant, _ configuration: Configuration) -> Bool {
        guard replica.serving, replica.breaker == .open, !replica.probing, let openedAt = replica.openedAt else { return false }
        return now - openedAt >= configuration.openDuration
    }

    private static func pick(_ state: inout State, avoiding: Set<String>, affinity: String? = nil,
                             configuration: Configuration) -> Lease? {
        let now = ContinuousClock.now
        // A due probe goes first: one call decides whether the replica comes back.
        if let index = state.replicas.firstIndex(where: { probeDue($0, now: now, configuration) && !avoiding.contains($0.url) }) {
            state.replicas[index].breaker = .halfOpen
            state.replicas[index].probing = true
            state.replicas[index].inFlight += 1
            return Lease(url: state.replicas[index].url)
        }
        let serving = state.replicas.indices.filter { state.replicas[$0].serving && state.replicas[$0].breaker == .closed }
        let others = serving.filter { !avoiding.contains(state.replicas[$0].url) }
        // A retry goes back to a replica it already tried only when no other one serves at all;
        // when the others are merely busy it waits for one of them (the replica that just failed
        // is most likely dead, and its removal is a moment away).
        let candidates = (others.isEmpty ? serving : others).filter {
            state.replicas[$0].inFlight < configuration.maxInFlightPerReplica
        }
        guard !candidates.isEmpty else { return nil }
        var chosen = candidates[0]
        if let affinity, candidates.count > 1 {
            // Rendezvous hashing: the key's replica stays the same while the set of replicas does,
            // and only the keys of a replica that leaves move.
            chosen = candidates.max { rendezvous(affinity, state.replicas[$0].url) < rendezvous(affinity, state.replicas[$1].url) }!
        } else if candidates.count > 1 {
            let first = Int.random(in: 0..<candidates.count, using: &state.generator)
            var second = Int.random(in: 0..<(candidates.count - 1), using: &state.generator)
            if second >= first { second += 1 }
            let a = candidates[first]
            let b = candidates[second]
            chosen = state.replicas[a].inFlight <= state.replicas[b].inFlight ? a : b
        }
        state.replicas[chosen].inFlight += 1
        return Lease(url: state.replicas[chosen].url)
    }

    static func rendezvous(_ key: String, _ url: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        h = (h ^ 0x7c) &* 0x0000_0100_0000_01b3
        for byte in url.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    private static func serveWaiters(_ state: inout State, configuration: Configuration)
        -> [(CheckedContinuation<Lease, any Error>, Lease)]
    {
        var resumed: [(CheckedContinuation<Lease, any Error>, Lease)] = []
        // In arrival order; a waiter whose acceptable replicas are all busy lets later ones pass.
        var index = 0
        while index < state.waiters.count {
            if let lease = pick(&state, avoiding: state.waiters[index].avoiding, configuration: configuration) {
                resumed.append((state.waiters.remove(at: index).continuation, lease))
            } else {
                index += 1
            }
        }
        return resumed
    }
}

extension InferenceConfiguration {
    /// The pool settings of a model whose replicas each take `maxInFlight` calls at once, with the
    /// configured breaker (`breaker_failures`, `breaker_open_seconds`).
    public func poolConfiguration(maxInFlight: Int) -> ReplicaPool.Configuration {
        ReplicaPool.Configuration(maxInFlightPerReplica: maxInFlight, failureThreshold: breakerFailures,
                                  openDuration: .milliseconds(Int64(breakerOpenSeconds * 1000)))
    }
}
