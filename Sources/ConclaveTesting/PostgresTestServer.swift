import ConclaveCore
import ConclaveInference
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
        try await Self.withAdminConnection(baseURL: baseURL) { connection, logger in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        return baseURL + "/" + name
    }

    private init(baseURL: String, process: Process?, directory: URL?) {
        self.baseURL = baseURL
        self.process = process
        self.directory = directory
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
        let bin = try binDirectory()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conclave-pg-" + RandomID.make())
        let data = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let runAs = try serviceUser()
        if let runAs {
            try FileManager.default.setAttributes([.ownerAccountID: runAs.uid, .groupOwnerAccountID: runAs.gid],
                                                  ofItemAtPath: directory.path)
        }
        let initdb = try command(bin + "/initdb", ["-D", data.path, "-U", "conclave", "--auth=trust", "-E", "UTF8",
                                                   "--locale=C", "--no-sync"], runAs: runAs)
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
        let port = try FreePort.find()
        let server = try command(bin + "/postgres", [
            "-D", data.path, "-h", "127.0.0.1", "-p", String(port), "-k", directory.path, "-F",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
            "-c", "shared_buffers=32MB", "-c", "logging_collector=off",
        ], runAs: runAs)
        let serverLog = directory.appendingPathComponent("postgres.log")
        FileManager.default.createFile(atPath: serverLog.path, contents: nil)
        server.standardOutput = try FileHandle(forWritingTo: serverLog)
        server.standardError = server.standardOutput
        try ChildProcess.launch(server)
        let instance = PostgresTestServer(baseURL: "postgres://conclave@127.0.0.1:\(port)", process: server, directory: directory)
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
                try await Self.withAdminConnection(baseURL: baseURL) { connection, logger in
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

    private static func withAdminConnection(baseURL: String,
                                            _ body: (PostgresConnection, Logger) async throws -> Void) async throws {
        guard let components = URLComponents(string: baseURL), let host = components.host else {
            throw ServeProcessError(message: "bad PostgreSQL URL \(baseURL)")
        }
        let logger = Logger(label: "conclave.test.postgres")
        let configuration = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
            password: components.password, database: "postgres", tls: .disable)
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

    // MARK: - Locating and running the binaries

    private static func binDirectory() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["CONCLAVE_POSTGRES_BIN"], !explicit.isEmpty { return explicit }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/postgres") {
            return "\(root)/\(version)/bin"
        }
        throw ServeProcessError(message: "PostgreSQL server binaries not found under \(root) (run `make setup`, which installs "
                                + "Debian's postgresql, or set CONCLAVE_POSTGRES_BIN or CONCLAVE_TEST_POSTGRES_URL)")
    }

    private struct ServiceUser { var name: String; var uid: Int; var gid: Int }

    /// PostgreSQL will not run as root: as root, the `postgres` account runs it.
    private static func serviceUser() throws -> ServiceUser? {
        guard geteuid() == 0 else { return nil }
        guard let entry = getpwnam("postgres") else {
            throw ServeProcessError(message: "running as root and there is no 'postgres' user to run PostgreSQL as")
        }
        return ServiceUser(name: "postgres", uid: Int(entry.pointee.pw_uid), gid: Int(entry.pointee.pw_gid))
    }

    private static func command(_ path: String, _ arguments: [String], runAs: ServiceUser?) throws -> Process {
        let process = Process()
        if let runAs {
            // setpriv execs the program itself, so signals reach postgres directly.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=\(runAs.uid)", "--regid=\(runAs.gid)", "--init-groups", "--", path] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
        }
        process.currentDirectoryURL = FileManager.default.temporaryDirectory
        return process
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
