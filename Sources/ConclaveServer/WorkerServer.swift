import ConclaveCore
import ConclaveGovernance
import ConclaveOrchestrator
import ConclaveTelemetry
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// A worker process (`conclave worker --role R`): one role's agent steps from JetStream, and a
/// small HTTP listener for probes and metrics (`/healthz`, `/readyz`, `/metrics`).
public enum WorkerServer {
    /// Runs the worker until SIGTERM/SIGINT: it stops taking steps, lets the running ones finish
    /// within `server.shutdown_grace_seconds`, gives the rest back to the queue, and exits 0.
    public static func run(runtime: ConclaveRuntime, role: AgentRole, host: String, port: Int,
                           onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        guard let queue = runtime.workQueue else {
            throw ConfigurationError(key: "messaging.driver", value: runtime.configuration.messaging.driver.rawValue,
                                     expected: "nats for a worker (steps come from NATS JetStream)")
        }
        guard let agent = runtime.agents.agent(for: role) else {
            throw ConclaveError(.invalidWorkflow, "No agent plays role '\(role.rawValue)'.")
        }
        let governance = runtime.governance
        let worker = StepWorker(
            role: role, agent: agent, queue: queue, results: runtime.store,
            concurrency: runtime.configuration.messaging.workerConcurrency,
            guardFactory: { principal, transfer in governance.textGuard(for: principal, transfer: transfer) },
            logger: runtime.logger)
        let router = Router(context: BasicRequestContext.self)
        router.get("/healthz") { _, _ in SystemController.json(#"{"status":"ok","role":"\#(role.rawValue)"}"#) }
        router.get("/readyz") { _, _ -> Response in
            let storeReady = await runtime.store.isHealthy()
            let modelReady = await runtime.model.isReady()
            let busReady = queue.connection.isConnected
            let ready = storeReady && modelReady && busReady
            var response = SystemController.json(#"{"status":"\#(ready ? "ready" : "not_ready")","role":"\#(role.rawValue)","store":\#(storeReady),"model":\#(modelReady),"bus":\#(busReady),"in_flight":\#(worker.inFlight)}"#)
            if !ready {
                response.status = .serviceUnavailable
                response.headers[.retryAfter] = "2"
            }
            return response
        }
        router.get("/metrics") { _, _ in SystemController.metrics(role: role.rawValue) }
        let application = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "conclave-worker"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) }, logger: runtime.logger)
        var configuration = ServiceGroupConfiguration(
            // A worker writes no audit records (the gateway audits each request), so it neither
            // verifies the chain nor checkpoints it.
            services: runtime.backgroundServices.filter { !($0 is AuditLog) }.map { .init(service: $0) }
                + [.init(service: StepWorkerService(worker: worker)), .init(service: application)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: runtime.logger)
        configuration.maximumGracefulShutdownDuration = .milliseconds(Int64(runtime.configuration.server.shutdownGraceSeconds * 1000))
        configuration.maximumCancellationDuration = .seconds(10)
        try await ServiceGroup(configuration: configuration).run()
        let stats = ProcessStats.current()
        runtime.logger.info("worker: stopped", metadata: ["role": "\(role.rawValue)", "cpu_seconds": "\(stats.cpuSeconds)",
                                                          "resident_bytes": "\(stats.residentBytes)"])
    }
}

/// Runs a ``StepWorker`` under ServiceLifecycle: graceful shutdown stops it taking steps and
/// drains the running ones; cancellation gives them back.
struct StepWorkerService: Service {
    let worker: StepWorker

    func run() async throws {
        let draining = Flag()
        try await withGracefulShutdownHandler {
            try await worker.run(until: { draining.isSet })
        } onGracefulShutdown: {
            draining.set()
        }
    }

    final class Flag: Sendable {
        private let value = Mutex(false)
        var isSet: Bool { value.withLock { $0 } }
        func set() { value.withLock { $0 = true } }
    }
}
