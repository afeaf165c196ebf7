import ConclaveCore
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// The local `llama-server` replicas of one model: starts the configured number, each under its
/// own ``LlamaServerSupervisor`` (restart with backoff, drain before stop), and, when an
/// ``Autoscaler`` is configured, adds and retires replicas by the pool's load. Decisions are
/// logged, counted (`conclave_inference_scale_events_total{direction}`) and kept for
/// `GET /admin/inference`.
public final class LocalReplicaSet: Service, Sendable {
    /// One scaling decision, for the admin view.
    public struct ScaleEvent: Sendable, Hashable, Codable {
        /// `scale_up` or `scale_down`.
        public var direction: Autoscaler.Decision
        /// Replicas before and after.
        public var from: Int
        public var to: Int
        /// Outstanding calls when it was decided.
        public var outstanding: Int
        /// When, as a Unix time.
        public var at: Double
    }

    /// The pool the replicas join.
    public let pool: ReplicaPool
    /// The autoscaler's settings, when it is on.
    public let autoscale: Autoscaler.Configuration?
    /// How often the autoscaler samples the load.
    public let interval: Duration
    private let makeConfiguration: @Sendable (_ index: Int) -> LlamaServerSupervisor.Configuration
    private let initial: Int
    private let logger: Logger
    private let state = Mutex<(supervisors: [LlamaServerSupervisor], started: Int, events: [ScaleEvent])>(([], 0, []))
    private let commands: AsyncStream<LlamaServerSupervisor>
    private let commandSink: AsyncStream<LlamaServerSupervisor>.Continuation

    /// Creates the set: `replicas` supervisors are made at once (so their processes can be
    /// inspected), and start when ``run()`` does. `configuration(i)` describes replica `i`.
    public init(replicas: Int, pool: ReplicaPool, autoscale: Autoscaler.Configuration? = nil, interval: Duration = .milliseconds(500),
                configuration: @escaping @Sendable (_ index: Int) -> LlamaServerSupervisor.Configuration,
                logger: Logger) throws {
        self.pool = pool
        self.autoscale = autoscale
        self.interval = interval
        makeConfiguration = configuration
        initial = autoscale.map { min(max(replicas, $0.minReplicas), $0.maxReplicas) } ?? replicas
        self.logger = logger
        (commands, commandSink) = AsyncStream.makeStream(of: LlamaServerSupervisor.self)
        for _ in 0..<initial { try add() }
        Gauge(label: "conclave_inference_replicas_desired", dimensions: [("model", pool.model)]).record(initial)
    }

    /// The supervisors of the replicas that are wanted now (retired ones are gone).
    public var supervisors: [LlamaServerSupervisor] { state.withLock { $0.supervisors } }

    /// Replicas wanted now.
    public var desired: Int { state.withLock { $0.supervisors.count } }

    /// The most recent scaling decisions, oldest first (at most 20).
    public var events: [ScaleEvent] { state.withLock { $0.events } }

    @discardableResult
    private func add() throws -> LlamaServerSupervisor {
        let index = state.withLock { state -> Int in
            defer { state.started += 1 }
            return state.started
        }
        let supervisor = try LlamaServerSupervisor(configuration: makeConfiguration(index), replicas: pool, logger: logger)
        state.withLock { $0.supervisors.append(supervisor) }
        commandSink.yield(supervisor)
        return supervisor
    }

    /// Runs the replicas (and the autoscaler) until shutdown; each replica drains before it stops.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            if let autoscale {
                group.addTask { try await self.scale(autoscale) }
            }
            for await supervisor in commands.cancelOnGracefulShutdown() {
                group.addTask { try await supervisor.run() }
            }
        }
    }

    private func scale(_ configuration: Autoscaler.Configuration) async throws {
        var scaler = Autoscaler(configuration: configuration)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            } catch {
                return
            }
            let load = pool.load
            let before = desired
            let decision = scaler.observe(outstanding: load.outstanding, replicas: before)
            switch decision {
            case .hold:
                continue
            case .scaleUp:
                try add()
            case .scaleDown:
                // The least-loaded replica goes; it drains before its process stops.
                let inFlight = Dictionary(pool.status.map { ($0.url, $0.inFlight) }, uniquingKeysWith: { a, _ in a })
                let victim = state.withLock { state -> LlamaServerSupervisor? in
                    guard let index = state.supervisors.indices.min(by: {
                        (state.supervisors[$0].url.flatMap { inFlight[$0] } ?? 0) < (state.supervisors[$1].url.flatMap { inFlight[$0] } ?? 0)
                    }) else { return nil }
                    return state.supervisors.remove(at: index)
                }
                victim?.retire()
            }
            let after = desired
            let event = ScaleEvent(direction: decision, from: before, to: after, outstanding: load.outstanding,
                                   at: Date().timeIntervalSince1970)
            state.withLock { state in
                state.events.append(event)
                if state.events.count > 20 { state.events.removeFirst() }
            }
            Counter(label: "conclave_inference_scale_events_total", dimensions: [("model", pool.model), ("direction", decision.rawValue)])
                .increment()
            Gauge(label: "conclave_inference_replicas_desired", dimensions: [("model", pool.model)]).record(after)
            logger.notice("autoscaler: \(decision.rawValue)", metadata: [
                "from": "\(before)", "to": "\(after)", "outstanding": "\(load.outstanding)", "ready": "\(load.ready)",
                "target_per_replica": "\(configuration.targetOutstanding)",
            ])
        }
    }
}
