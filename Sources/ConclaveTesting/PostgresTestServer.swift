import ConclaveCore
import ConclaveInference
import ConclaveStorage
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// A throw-away PostgreSQL cluster on a free port of 127.0.0.1 for tests: `initdb` into a
/// temporary directory (trust authentication, no fsync), then `postgres` as a child process.
/// One cluster serves a whole test process (``shared()``); each test takes a fresh database from
/// ``makeDatabase()``. The cluster is stopped and its directory removed when the process exits.
///
/// `CONCLAVE_TEST_POSTGRES_URL` (a `postgres://` URL of a role that may create databases) uses an
/// existing server instead. Running as root, the server runs as the `postgres` user (PostgreSQL
/// refuses root) through `setpriv`.
public final class PostgresTestServer: Sendable {
    /// `postgres://conclave@127.0.0.1:PORT` (no database).
    public let baseURL: String
    private let process: Process?
    private let directory: URL?
    /// Set for a cluster that only takes TLS connections with a client certificate.
    private let certificates: TestCertificates?

    private static let instance = Mutex<Task<PostgresTestServer, any Error>?>(nil)

    /// The process-wide cluster, started on first use.
    public static func shared() async throws -> PostgresTestServer {
        let task = instance.withLock { current in
            if let current { return current }
            let task = Task { try await start() }
            current = task
            return task
        }
        return try await task.value
    }

    /// A new empty database on the cluster; its URL.
    public func makeDatabase() async throws -> String {
        let name = "t_" + RandomID.make()
        try await Self.withAdminConnection(baseURL: baseURL, certificates: certificates) { connection, logger in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        return baseURL + "/" + name
    }

    private init(baseURL: String, process: Process?, directory: URL?, certificates: TestCertificates? = nil) {
        self.baseURL = baseURL
        self.process = process
        self.directory = directory
        self.certificates = certificates
    }

    /// A cluster of its own (the caller stops it) that accepts only TLS connections presenting a
    /// client certificate signed by `certificates`' CA: `hostssl … clientcert=verify-ca`, and
    /// plain connections rejected. Its server certificate is `certificates`' (127.0.0.1).
    public static func startRequiringClientCertificates(_ certificates: TestCertificates) async throws -> PostgresTestServer {
        try await launch(certificates: certificates)
    }

    private static func start() async throws -> PostgresTestServer {
        if let url = ProcessInfo.processInfo.environment["CONCLAVE_TEST_POSTGRES_URL"], !url.isEmpty {
            var base = url
            if let components = URLComponents(string: url), !components.path.isEmpty, components.path != "/" {
                base = String(url.dropLast(components.path.count))
            }
            let server = PostgresTestServer(baseURL: base, process: nil, directory: nil)
            try await server.waitUntilReady(timeout: .seconds(10), process: nil)
            return server
        }
        return try await launch(certificates: nil)
    }

    private static func launch(certificates: TestCertificates?) async throws -> PostgresTestServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conclave-pg-" + RandomID.make())
        let data = directory.appendingPathComponent("data")
        try PostgresBinaries.prepare(directory: directory)
        let initdb = try PostgresBinaries.process("initdb", PostgresBinaries.initdbArguments(data: data, user: "conclave"))
        let log = directory.appendingPathComponent("initdb.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        initdb.standardOutput = try FileHandle(forWritingTo: log)
        initdb.standardError = initdb.standardOutput
        let initExit = ChildProcess.Exit(initdb)
        try ChildProcess.launch(initdb)
        await initExit.wait()
        guard initExit.ending == .exited(0) else {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw ServeProcessError(message: "initdb failed (\(initExit.ending.map(String.init(describing:)) ?? "?")): \(output.suffix(800))")
        }
        var tlsArguments: [String] = []
        if let certificates {
            // The server's copies belong to the account it runs as; the key must not be readable by others.
            for (source, name) in [(certificates.caFile, "ca.pem"), (certificates.serverCertFile, "server.pem"),
                                   (certificates.serverKeyFile, "server.key")] {
                let target = data.appendingPathComponent(name)
                try FileManager.default.copyItem(atPath: source, toPath: target.path)
                var attributes: [FileAttributeKey: Any] = [.posixPermissions: 0o600]
                if let account = try PostgresBinaries.serviceAccount() {
                    attributes[.ownerAccountID] = account.uid
                    attributes[.groupOwnerAccountID] = account.gid
                }
                try FileManager.default.setAttributes(attributes, ofItemAtPath: target.path)
            }
            try """
                local all all trust
                hostssl all all 127.0.0.1/32 trust clientcert=verify-ca
                hostnossl all all 127.0.0.1/32 reject

                """.write(to: data.appendingPathComponent("pg_hba.conf"), atomically: false, encoding: .utf8)
            tlsArguments = ["-c", "ssl=on", "-c", "ssl_cert_file=server.pem", "-c", "ssl_key_file=server.key", "-c", "ssl_ca_file=ca.pem"]
        }
        let port = try FreePort.find()
        let server = try PostgresBinaries.process("postgres", PostgresBinaries.serverArguments(
            data: data, port: port, socketDirectory: directory, durable: false) + tlsArguments)
        let serverLog = directory.appendingPathComponent("postgres.log")
        FileManager.default.createFile(atPath: serverLog.path, contents: nil)
        server.standardOutput = try FileHandle(forWritingTo: serverLog)
        server.standardError = server.standardOutput
        try ChildProcess.launch(server)
        let instance = PostgresTestServer(baseURL: "postgres://conclave@127.0.0.1:\(port)", process: server, directory: directory,
                                          certificates: certificates)
        Cleanup.register(pid: server.processIdentifier, directory: directory)
        do {
            try await instance.waitUntilReady(timeout: .seconds(30), process: server)
        } catch {
            instance.stop()
            let output = (try? String(contentsOf: serverLog, encoding: .utf8)) ?? ""
            throw ServeProcessError(message: "\(error); postgres log: \(output.suffix(800))")
        }
        return instance
    }

    private func waitUntilReady(timeout: Duration, process: Process?) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            if let process, !process.isRunning { throw ServeProcessError(message: "postgres exited early") }
            do {
                try await Self.withAdminConnection(baseURL: baseURL, certificates: certificates) { connection, logger in
                    try await connection.query("SELECT 1", logger: logger)
                }
                return
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ServeProcessError(message: "PostgreSQL at \(baseURL) did not accept connections in time: \(String(describing: lastError))")
    }

    private static func withAdminConnection(baseURL: String, certificates: TestCertificates?,
                                            _ body: (PostgresConnection, Logger) async throws -> Void) async throws {
        let logger = Logger(label: "conclave.test.postgres")
        // The store's own reading of the URL, with libpq's TLS parameters for the client certificate.
        let tls = certificates.map { "?sslmode=verify-full&sslrootcert=\($0.caFile)&sslcert=\($0.clientCertFile)&sslkey=\($0.clientKeyFile)" }
        let location = try PostgresLocation(url: baseURL + "/postgres" + (tls ?? ""))
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password, database: "postgres",
            tls: try location.connectionTLS())
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            try await body(connection, logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    /// Stops the cluster (immediate shutdown) and removes its directory.
    public func stop() {
        guard let process else { return }
        Cleanup.stop(pid: process.processIdentifier, directory: directory)
    }

    /// Stops clusters at process exit (Swift Testing has no global teardown).
    private enum Cleanup {
        private static let pending = Mutex<[(pid: Int32, directory: URL?)]>([])
        private static let registered = Mutex(false)

        static func register(pid: Int32, directory: URL) {
            pending.withLock { $0.append((pid, directory)) }
            let first = registered.withLock { done -> Bool in
                defer { done = true }
                return !done
            }
            if first { atexit { Cleanup.stopAll() } }
        }

        static func stopAll() {
            for entry in pending.withLock({ list -> [(pid: Int32, directory: URL?)] in defer { list = [] }; return list }) {
                stopNow(pid: entry.pid, directory: entry.directory)
            }
        }

        static func stop(pid: Int32, directory: URL?) {
            pending.withLock { $0.removeAll { $0.pid == pid } }
            stopNow(pid: pid, directory: directory)
        }

        /// SIGQUIT is PostgreSQL's immediate shutdown; SIGKILL if it is still there after 3 s.
        private static func stopNow(pid: Int32, directory: URL?) {
            kill(pid, SIGQUIT)
            for _ in 0..<60 {
                if kill(pid, 0) != 0 { break }
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { break }
                usleep(50_000)
            }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
            if let directory { try? FileManager.default.removeItem(at: directory) }
        }
    }
}
