import ConclaveCore
import AsyncHTTPClient
import ConclaveInference
import Foundation

/// The Meridian Fleet & Tracking API fixture server (`examples/meridian/api/serve.py`, Python's
/// standard library) on a free port of 127.0.0.1, for tests of the API connector. Stop it with
/// ``stop()``; it is killed when released.
public final class MeridianAPIServer: Sendable {
    /// The bearer token the fixture server accepts.
    public static let token = "fleet-demo-token"
    public let process: Process
    public let port: Int

    /// The base URL (`http://127.0.0.1:PORT`).
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts the server and waits until `/healthz` answers.
    public static func start(timeout: Duration = .seconds(20)) async throws -> MeridianAPIServer {
        let port = try FreePort.find()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", TestRuntime.repositoryRoot.appendingPathComponent("examples/meridian/api/serve.py").path,
                             "--port", String(port), "--quiet"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try ChildProcess.launch(process)
        let server = MeridianAPIServer(process: process, port: port)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: server.baseURL + "/healthz"), timeout: .seconds(1)),
               response.status == .ok {
                return server
            }
            guard process.isRunning else { throw ServeProcessError(message: "the Meridian API fixture server exited early") }
            try await Task.sleep(for: .milliseconds(100))
        }
        server.stop()
        throw ServeProcessError(message: "the Meridian API fixture server did not answer /healthz in time")
    }

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    /// Stops the server. SIGKILL: a child of the test runner may inherit a signal mask that
    /// blocks SIGTERM, and the fixture's own shutdown is not under test.
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
