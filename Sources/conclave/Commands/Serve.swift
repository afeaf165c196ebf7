import ArgumentParser
import ConclaveCore
import ConclaveServer
import ConclaveTelemetry
import Foundation
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the API server (embedded defaults when no config file is given).",
        discussion: """
            Starts the HTTP server with its background services: a supervised local llama-server with \
            SmolLM2-135M (provider embedded), the SQLite store and the event log writer. SIGTERM or SIGINT \
            drains in-flight requests (up to server.shutdown_grace_seconds) and exits 0.
            """)

    @Option(name: .long, help: "YAML configuration file.")
    var config: String?

    @Option(name: .long, help: "Address to bind (overrides server.host).")
    var host: String?

    @Option(name: .long, help: "Port to bind (overrides server.port; 0 picks a free port).")
    var port: Int?

    func run() async throws {
        var configuration = try loadConfiguration(path: config)
        if let host { configuration.server.host = host }
        if let port { configuration.server.port = port }
        do {
            try configuration.validate()
            try ConclaveServer.validateTLS(configuration.server)
        } catch let error as ConfigurationError {
            throw ValidationFailure(error.description)
        }
        Telemetry.bootstrap(logging: configuration.logging)
        do {
            try Telemetry.bootstrapTracing(configuration.tracing, role: "gateway")
        } catch {
            throw ValidationFailure("cannot start tracing: \(error)")
        }
        let logger = Logger(label: "conclave")
        let runtime: ConclaveRuntime
        do {
            runtime = try await ConclaveRuntime(configuration: configuration, logger: logger)
            // After the runtime: it creates missing key files (mode 600) itself.
            for warning in configuration.secretFileWarnings() { logger.warning("\(warning)") }
            try await runtime.ingestOnStart()
        } catch let error as ConfigurationError {
            throw ValidationFailure(error.description)
        } catch let error as ConclaveError {
            throw ValidationFailure(error.description)
        }
        let host = configuration.server.host
        let scheme = configuration.server.usesTLS ? "https" : "http"
        try await reportingFailures {
            try await ConclaveServer.run(runtime: runtime) { port in
                logger.info("conclave listening", metadata: ["url": "\(scheme)://\(host):\(port)"])
                // A machine-readable line for scripts and tests that start the server on port 0.
                Terminal.write("conclave listening on \(scheme)://\(host):\(port)\n")
            }
        }
    }
}

/// Runs `body`, turning configuration and Conclave errors into one-line ``ValidationFailure``s.
func reportingFailures<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ConfigurationError {
        throw ValidationFailure(error.description)
    } catch let error as ConclaveError {
        throw ValidationFailure(error.description)
    }
}

/// A failure reported as one line on stderr with exit code 1, without a stack trace.
struct ValidationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Loads configuration from a file and the environment, turning errors into one clear line.
func loadConfiguration(path: String?) throws -> ConclaveConfiguration {
    do {
        return try ConfigurationLoader.load(path: path)
    } catch let error as ConfigurationError {
        throw ValidationFailure(error.description)
    }
}
