import AsyncHTTPClient
import ConclaveCore
import ConclaveInference
import Foundation

/// A throw-away `nats-server -js` on free ports of 127.0.0.1, its JetStream store in a temporary
/// directory. ``kill()`` ends it with SIGKILL (a crash); ``stop()`` also removes its directory.
public final class NATSTestServer: Sendable {
    public let port: Int
    public let monitorPort: Int
    private let process: Process
    private let directory: URL

    /// `nats://127.0.0.1:PORT`.
    public var url: String { "nats://127.0.0.1:\(port)" }

    /// Starts the server and waits until its monitoring endpoint reports it healthy. With
    /// `tls`, clients must connect with TLS, verify the server's certificate against the test CA,
    /// and present a client certificate the CA signed (mutual TLS).
    public static func start(timeout: Duration = .seconds(20), tls: TestCertificates? = nil) async throws -> NATSTestServer {
        let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let binary else {
            throw ServeProcessError(message: "nats-server not found (run `make setup`, which installs Debian's nats-server)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conclave-nats-" + RandomID.make())
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = try FreePort.find()
        let monitorPort = try FreePort.find()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-js", "-a", "127.0.0.1", "-p", String(port), "-m", String(monitorPort), "-sd", directory.path]
        if let tls {
            let config = directory.appendingPathComponent("tls.conf")
            try """
                tls {
                  cert_file: "\(tls.serverCertFile)"
                  key_file: "\(tls.serverKeyFile)"
                  ca_file: "\(tls.caFile)"
                  verify: true
                  timeout: 5
                }
                """.write(to: config, atomically: true, encoding: .utf8)
            process.arguments! += ["-c", config.path]
        }
        let log = directory.appendingPathComponent("nats.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        try ChildProcess.launch(process)
        let server = NATSTestServer(port: port, monitorPort: monitorPort, process: process, directory: directory)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let request = HTTPClientRequest(url: "http://127.0.0.1:\(monitorPort)/healthz")
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(1)), response.status == .ok {
                return server
            }
            guard process.isRunning else {
                let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw ServeProcessError(message: "nats-server exited early: \(output.suffix(500))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        server.stop()
        throw ServeProcessError(message: "nats-server did not become healthy in time")
    }

    private init(port: Int, monitorPort: Int, process: Process, directory: URL) {
        self.port = port
        self.monitorPort = monitorPort
        self.process = process
        self.directory = directory
    }

    /// SIGKILL, no cleanup: what a crash looks like to clients.
    public func kill() {
        if process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Kills the server and removes its store.
    public func stop() {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}
