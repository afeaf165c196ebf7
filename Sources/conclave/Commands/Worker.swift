import ArgumentParser
import ConclaveCore
import ConclaveServer
import ConclaveTelemetry
import Foundation
import Logging

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one agent role's steps from NATS JetStream (distributed mode).",
        discussion: """
            Takes the role's steps from the subject conclave.steps.<role> (durable consumer worker-<role>, shared \
            by every worker of the role), runs them with the configured model, store and governance, and answers \
            the gateway that sent them. Needs messaging.driver: nats. Serves /healthz, /readyz and /metrics on \
            --port. SIGTERM stops taking steps, lets running ones finish (server.shutdown_grace_seconds) and exits 0.
            """)

    @Option(name: .long, help: "The agent role: planner, retriever, reasoner, validator or responder.")
    var role: String

    @Option(name: .long, help: "YAML configuration file.")
    var config: String?

    @Option(name: .long, help: "Address of the probe and metrics listener (default: server.host).")
    var host: String?

    @Option(name: .long, help: "Port of the probe and metrics listener (0 picks a free port).")
    var port: Int = 9090

    func run() async throws {
        guard let agentRole = AgentRole(rawValue: role) else {
            throw ValidationFailure("unknown role '\(role)'; expected one of: "
                                    + AgentRole.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let configuration = try loadConfiguration(path: config)
        do {
            try configuration.validate()
        } catch let error as ConfigurationError {
            throw ValidationFailure(error.description)
        }
        guard configuration.messaging.driver == .nats else {
            throw ValidationFailure(ConfigurationError(key: "messaging.driver", value: configuration.messaging.driver.rawValue,
                                                       expected: "nats for a worker (steps come from NATS JetStream)").description)
        }
        Telemetry.bootstrap(logging: configuration.logging)
        do {
            try Telemetry.bootstrapTracing(configuration.tracing, role: agentRole.rawValue)
        } catch {
            throw ValidationFailure("cannot start tracing: \(error)")
        }
        var roleLogger = Logger(label: "conclave.worker")
        roleLogger[metadataKey: "role"] = "\(agentRole.rawValue)"
        let logger = roleLogger
        let host = self.host ?? configuration.server.host
        try await reportingFailures {
            // Only the roles that search (the retriever, and the responder when no retriever ran)
            // load the embedding model.
            let runtime = try await ConclaveRuntime(configuration: configuration,
                                                    retrieves: agentRole == .retriever || agentRole == .responder, logger: logger)
            try await runtime.prepareVectors()
            try await WorkerServer.run(runtime: runtime, role: agentRole, host: host, port: port) { port in
                logger.info("worker listening", metadata: ["url": "http://\(host):\(port)"])
                Terminal.write("conclave worker \(agentRole.rawValue) listening on http://\(host):\(port)\n")
            }
        }
    }
}
