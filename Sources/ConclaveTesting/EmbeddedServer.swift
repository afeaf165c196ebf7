import AsyncHTTPClient
import ConclaveCore
import ConclaveServer
import Foundation
import Logging

/// Runs a complete Conclave server with the embedded default model (a real `llama-server` with
/// SmolLM2 from `.venv`) on free loopback ports, for integration tests.
public enum EmbeddedServer {
    /// A test server's address and runtime.
    public struct Handle: Sendable {
        /// Base URL, `http://127.0.0.1:PORT`.
        public var url: String
        /// The runtime behind it (store, supervisor, engine).
        public var runtime: ConclaveRuntime
    }

    /// Starts the server with `documents` ingested into a temporary database, waits until the
    /// model is ready (bounded by `readyTimeout`), runs `body`, and stops everything.
    public static func with<T: Sendable>(documents: [String] = [TestRuntime.meridianDocs],
                                         readyTimeout: Duration = .seconds(180), replicas: Int = 1,
                                         configure: @Sendable (inout ConclaveConfiguration) -> Void = { _ in },
                                         _ body: @Sendable (Handle) async throws -> T) async throws -> T {
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = TestRuntime.configuration(storagePath: directory.appendingPathComponent("conclave.sqlite").path)
        configuration.inference.parallelSlots = 2
        configuration.inference.contextSize = 4096
        configuration.knowledge.ingestOnStart = documents
        configuration.inference.replicas = replicas
        configure(&configuration)
        var logger = Logger(label: "integration")
        logger.logLevel = .warning
        let runtime = try await ConclaveRuntime(configuration: configuration, logger: logger)
        try await runtime.ingestOnStart()
        return try await RunningServer.with(runtime) { url in
            let deadline = ContinuousClock.now + readyTimeout
            while !(await runtime.model.isReady()) || (runtime.pool?.ready.count ?? 0) < replicas {
                guard ContinuousClock.now < deadline else {
                    throw ConclaveError(.modelUnavailable, "llama-server did not become ready within \(readyTimeout)")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            return try await body(Handle(url: url, runtime: runtime))
        }
    }
}
