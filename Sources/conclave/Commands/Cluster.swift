import ArgumentParser
import AsyncHTTPClient
import ConclaveCore
import ConclaveInference
import ConclaveStorage
import Foundation
import Logging
import Yams

/// `conclave cluster up|down`: distributed mode on one machine, every part a process on loopback.
struct Cluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start or stop a local cluster: PostgreSQL, nats-server, llama-server replicas, gateways and workers.",
        subcommands: [Up.self, Down.self])

    /// The cluster file (`examples/cluster.yaml`).
    struct Spec: Decodable {
        /// Where the cluster keeps its data, logs and `cluster.json`.
        var directory: String = "var/cluster"
        /// The Conclave configuration the gateways and workers start from; the cluster sets
        /// storage, messaging, inference endpoint and ports over it.
        var config: String?
        var gateways: Int = 2
        /// Workers per role; a role left out gets one.
        var workers: [String: Int] = [:]
        var inference: Inference = .init()
        /// An existing PostgreSQL (`postgres://…`) instead of a local one.
        var postgresURL: String?
        /// An existing NATS server (`nats://…`) instead of a local one.
        var natsURL: String?
        /// Files or directories the first gateway ingests at start (into the shared store).
        var ingest: [String] = []

        struct Inference: Decodable {
            var replicas: Int = 1
            var parallelSlots: Int = 4
            var contextSize: Int = 8192
            /// CPU threads per replica; 0 divides the cores among the replicas.
            var threads: Int = 0
            /// An existing OpenAI-compatible endpoint (with `/v1`) instead of local replicas.
            var endpoint: String?

            enum CodingKeys: String, CodingKey {
                case replicas, endpoint, threads
                case parallelSlots = "parallel_slots"
                case contextSize = "context_size"
            }

            init() {}

            init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                replicas = try c.decodeIfPresent(Int.self, forKey: .replicas) ?? 1
                parallelSlots = try c.decodeIfPresent(Int.self, forKey: .parallelSlots) ?? 4
                contextSize = try c.decodeIfPresent(Int.self, forKey: .contextSize) ?? 8192
                threads = try c.decodeIfPresent(Int.self, forKey: .threads) ?? 0
                endpoint = try c.decodeIfPresent(String.self, forKey: .endpoint)
            }
        }

        enum CodingKeys: String, CodingKey {
            case directory, config, gateways, workers, inference, ingest
            case postgresURL = "postgres_url"
            case natsURL = "nats_url"
        }

        init() {}

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let allowed = Set(["directory", "config", "gateways", "workers", "inference", "ingest", "postgres_url", "nats_url"])
            let present = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
            if let unknown = present.first(where: { !allowed.contains($0) }) {
                throw ValidationFailure("cluster file: '\(unknown)' is not a known key; expected one of \(allowed.sorted().joined(separator: ", "))")
            }
            directory = try c.decodeIfPresent(String.self, forKey: .directory) ?? "var/cluster"
            config = try c.decodeIfPresent(String.self, forKey: .config)
            gateways = try c.decodeIfPresent(Int.self, forKey: .gateways) ?? 2
            workers = try c.decodeIfPresent([String: Int].self, forKey: .workers) ?? [:]
            inference = try c.decodeIfPresent(Inference.self, forKey: .inference) ?? .init()
            postgresURL = try c.decodeIfPresent(String.self, forKey: .postgresURL)
            natsURL = try c.decodeIfPresent(String.self, forKey: .natsURL)
            ingest = try c.decodeIfPresent([String].self, forKey: .ingest) ?? []
        }

        struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        static func load(_ path: String?) throws -> Spec {
            guard let path else { return Spec() }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationFailure("cannot read the cluster file '\(path)'")
            }
            let spec: Spec
            do {
                spec = try YAMLDecoder().decode(Spec.self, from: text.isEmpty ? "{}" : text)
            } catch let error as ValidationFailure {
                throw error
            } catch {
                throw ValidationFailure("cluster file '\(path)': \(error)")
            }
            guard spec.gateways >= 1 else { throw ValidationFailure("cluster file: gateways must be at least 1") }
            for (role, count) in spec.workers {
                guard AgentRole(rawValue: role) != nil else {
                    throw ValidationFailure("cluster file: workers.\(role) is not an agent role; expected one of "
                                            + AgentRole.allCases.map(\.rawValue).joined(separator: ", "))
                }
                guard count >= 1 else { throw ValidationFailure("cluster file: workers.\(role) must be at least 1") }
            }
            return spec
        }
    }

    /// What `up` started, for `down` and for clients (`cluster.json`).
    struct State: Codable {
        struct Member: Codable {
            var name: String
            var pid: Int32
            var url: String?
            var log: String
            /// The process's start time (`/proc/<pid>/stat`), so `down` never signals another
            /// process that reused the pid.
            var started: String?
        }

        var members: [Member]
        var gateways: [String]
        var storageURL: String
        var natsURL: String
    }

    static func statePath(_ directory: URL) -> URL { directory.appendingPathComponent("cluster.json") }

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the cluster the file describes and print its addresses.",
            discussion: """
                Starts, each on a free loopback port: PostgreSQL (a data directory under the cluster's directory, \
                initialised on first use), nats-server with JetStream, the llama-server replicas, the gateways \
                (conclave serve; the first one ingests knowledge.ingest_on_start) and the workers per role. Every \
                process runs detached, logging under <directory>/logs; <directory>/cluster.json lists them. \
                `conclave cluster down` stops them.
                """)

        @Option(name: .long, help: "Cluster file (YAML); defaults apply without one.")
        var config: String?

        func run() async throws {
            let spec = try Spec.load(config)
            let directory = URL(fileURLWithPath: spec.directory)
            let logs = directory.appendingPathComponent("logs")
            try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
            if let existing = try? JSONDecoder().decode(State.self, from: Data(contentsOf: statePath(directory))),
               existing.members.contains(where: Detached.isRunning) {
                throw ValidationFailure("a cluster is already up in \(spec.directory) (run `conclave cluster down` first)")
            }
            var members: [State.Member] = []
            func started(_ name: String, _ process: Process, url: String?, log: URL) {
                members.append(.init(name: name, pid: process.processIdentifier, url: url, log: log.path,
                                     started: Detached.startTime(process.processIdentifier)))
            }
            do {
                // PostgreSQL.
                let storageURL: String
                if let url = spec.postgresURL {
                    storageURL = url
                } else {
                    let data = directory.appendingPathComponent("postgres")
                    try PostgresBinaries.prepare(directory: directory.appendingPathComponent("postgres-run"))
                    if !FileManager.default.fileExists(atPath: data.appendingPathComponent("PG_VERSION").path) {
                        try PostgresBinaries.prepare(directory: data)
                        let initdb = try PostgresBinaries.process("initdb", PostgresBinaries.initdbArguments(data: data, user: "conclave"))
                        let log = logs.appendingPathComponent("initdb.log")
                        try Detached.redirect(initdb, to: log)
                        try ChildProcess.launch(initdb)
                        initdb.waitUntilExit()
                        guard initdb.terminationStatus == 0 else {
                            let tail = (try? String(contentsOf: log, encoding: .utf8)).map { String($0.suffix(600)) } ?? ""
                            throw ValidationFailure("initdb failed (\(log.path)):\n\(tail)\n(as root, PostgreSQL runs as the "
                                                    + "postgres account, which must be able to reach \(data.path))")
                        }
                    }
                    let port = try FreePort.find()
                    let log = logs.appendingPathComponent("postgres.log")
                    let server = try Detached.start(try PostgresBinaries.process("postgres", PostgresBinaries.serverArguments(
                        data: data, port: port, socketDirectory: directory.appendingPathComponent("postgres-run"), durable: true)), log: log)
                    storageURL = "postgres://conclave@127.0.0.1:\(port)/postgres"
                    started("postgres", server, url: storageURL, log: log)
                    try await Detached.waitForPostgres(storageURL, process: server)
                }
                // NATS.
                let natsURL: String
                if let url = spec.natsURL {
                    natsURL = url
                } else {
                    let port = try FreePort.find()
                    let monitor = try FreePort.find()
                    let store = directory.appendingPathComponent("nats")
                    try FileManager.default.createDirectory(at: store, withIntermediateDirectories: true)
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: try Detached.natsServer())
                    process.arguments = ["-js", "-a", "127.0.0.1", "-p", String(port), "-m", String(monitor), "-sd", store.path]
                    let log = logs.appendingPathComponent("nats.log")
                    natsURL = "nats://127.0.0.1:\(port)"
                    started("nats", try Detached.start(process, log: log), url: natsURL, log: log)
                    try await Detached.waitForHTTP("http://127.0.0.1:\(monitor)/healthz", name: "nats-server")
                }
                // Inference replicas.
                var endpoints: [String] = []
                if let endpoint = spec.inference.endpoint {
                    endpoints = [endpoint]
                } else {
                    let root = EmbeddedModelLocator.projectRoot()
                    guard let server = EmbeddedModelLocator.llamaServer(root: root), let model = EmbeddedModelLocator.smolLM2(root: root) else {
                        throw ValidationFailure("llama-server or SmolLM2 not found in .venv (run `make setup`)")
                    }
                    let replicas = max(1, spec.inference.replicas)
                    let threads = spec.inference.threads > 0
                        ? spec.inference.threads : max(1, ProcessInfo.processInfo.activeProcessorCount / replicas)
                    for index in 0..<replicas {
                        let port = try FreePort.find()
                        let settings = LlamaServerSupervisor.Configuration(
                            serverPath: server, modelPath: model, contextSize: spec.inference.contextSize,
                            parallelSlots: spec.inference.parallelSlots, threads: threads)
                        let command = settings.commandLine(port: port)
                        let process = Process()
                        process.executableURL = URL(fileURLWithPath: server)
                        process.arguments = command.arguments
                        process.environment = command.environment
                        let log = logs.appendingPathComponent("llama-server-\(index + 1).log")
                        started("llama-server-\(index + 1)", try Detached.start(process, log: log), url: "http://127.0.0.1:\(port)/v1",
                                log: log)
                        endpoints.append("http://127.0.0.1:\(port)/v1")
                    }
                    for endpoint in endpoints {
                        try await Detached.waitForHTTP(String(endpoint.dropLast(3)) + "/health", name: "llama-server", timeout: .seconds(180))
                    }
                }
                // Gateways, then workers, all from the same configuration.
                var environment = [
                    "CONCLAVE_STORAGE__DRIVER": "postgres", "CONCLAVE_STORAGE__URL": storageURL,
                    "CONCLAVE_MESSAGING__DRIVER": "nats", "CONCLAVE_MESSAGING__URL": natsURL,
                    "CONCLAVE_INFERENCE__PROVIDER": "openai", "CONCLAVE_INFERENCE__ENDPOINT": endpoints[0],
                ]
                if endpoints.count > 1 {
                    // Several replicas: every gateway and worker balances over all of them.
                    environment["CONCLAVE_INFERENCE__ENDPOINTS"] = "[" + endpoints.dropFirst().joined(separator: ", ") + "]"
                }
                let binary = Bench.Inference.executablePath()
                let configArguments = spec.config.map { ["--config", $0] } ?? []
                var gateways: [String] = []
                for index in 0..<spec.gateways {
                    let port = try FreePort.find()
                    var env = environment
                    // Only the first gateway ingests at start (the store is shared).
                    env["CONCLAVE_KNOWLEDGE__INGEST_ON_START"] = index == 0 && !spec.ingest.isEmpty
                        ? "[" + spec.ingest.joined(separator: ", ") + "]" : "[]"
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: binary)
                    process.arguments = ["serve", "--port", String(port)] + configArguments
                    process.environment = ProcessInfo.processInfo.environment.merging(env) { _, new in new }
                    let log = logs.appendingPathComponent("gateway-\(index + 1).log")
                    let url = "http://127.0.0.1:\(port)"
                    started("gateway-\(index + 1)", try Detached.start(process, log: log), url: url, log: log)
                    gateways.append(url)
                    try await Detached.waitForHTTP(url + "/readyz", name: "gateway-\(index + 1)", timeout: .seconds(300),
                                                   process: process, log: log)
                }
                var workerURLs: [(String, String, Process, URL)] = []
                for role in AgentRole.allCases {
                    for index in 0..<(spec.workers[role.rawValue] ?? 1) {
                        let port = try FreePort.find()
                        let process = Process()
                        process.executableURL = URL(fileURLWithPath: binary)
                        process.arguments = ["worker", "--role", role.rawValue, "--port", String(port)] + configArguments
                        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
                        let name = "worker-\(role.rawValue)-\(index + 1)"
                        let log = logs.appendingPathComponent("\(name).log")
                        let url = "http://127.0.0.1:\(port)"
                        started(name, try Detached.start(process, log: log), url: url, log: log)
                        workerURLs.append((name, url, process, log))
                    }
                }
                for (name, url, process, log) in workerURLs {
                    try await Detached.waitForHTTP(url + "/readyz", name: name, timeout: .seconds(120), process: process, log: log)
                }
                let state = State(members: members, gateways: gateways, storageURL: storageURL, natsURL: natsURL)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try encoder.encode(state).write(to: statePath(directory))
                print("cluster up (\(members.count) processes; \(statePath(directory).path)):")
                for member in members { print("  \(member.name.padding(toLength: 22, withPad: " ", startingAt: 0)) pid \(member.pid)  \(member.url ?? "")") }
                print("gateways: \(gateways.joined(separator: " "))")
            } catch {
                // Nothing half-started stays behind.
                Detached.stop(members.reversed(), grace: .seconds(10))
                throw error
            }
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the cluster `up` started: workers and gateways drain (SIGTERM), then the servers stop.")

        @Option(name: .long, help: "Cluster file (YAML), for its directory.")
        var config: String?

        @Option(name: .long, help: "Seconds to wait for each process before SIGKILL.")
        var grace: Double = 30

        func run() async throws {
            let spec = try Spec.load(config)
            let path = statePath(URL(fileURLWithPath: spec.directory))
            guard let state = try? JSONDecoder().decode(State.self, from: Data(contentsOf: path)) else {
                print("no cluster is up in \(spec.directory)")
                return
            }
            // Clients first: workers and gateways drain (they still need the model, the bus and the
            // database for that); then the model, the bus and the database.
            let grace = Duration.milliseconds(Int64(self.grace * 1000))
            Detached.stop(state.members.filter { $0.name.hasPrefix("worker-") || $0.name.hasPrefix("gateway-") }, grace: grace)
            Detached.stop(state.members.filter { !$0.name.hasPrefix("worker-") && !$0.name.hasPrefix("gateway-") }.reversed(),
                          grace: grace)
            try? FileManager.default.removeItem(at: path)
            print("cluster down (\(state.members.count) processes stopped)")
        }
    }
}

/// Processes that outlive the command that starts them.
enum Detached {
    /// Starts `process` so that it outlives this command and a closed terminal (SIGHUP ignored,
    /// as `nohup` does; the shell execs the program, so the recorded pid is the program's), output
    /// to `log`.
    /// With `appending`, the output goes on at the end of `log` instead of replacing it.
    @discardableResult
    static func start(_ process: Process, log: URL, appending: Bool = false) throws -> Process {
        let executable = process.executableURL?.path ?? ""
        process.arguments = ["-c", #"trap "" HUP; exec "$0" "$@""#, executable] + (process.arguments ?? [])
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        try redirect(process, to: log, appending: appending)
        process.standardInput = FileHandle.nullDevice
        try ChildProcess.launch(process)
        return process
    }

    static func redirect(_ process: Process, to log: URL, appending: Bool = false) throws {
        if !appending || !FileManager.default.fileExists(atPath: log.path) {
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: log)
        if appending { try handle.seekToEnd() }
        process.standardOutput = handle
        process.standardError = handle
    }

    static func natsServer() throws -> String {
        guard let path = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ValidationFailure("nats-server not found (run `make setup`, which installs Debian's nats-server)")
        }
        return path
    }

    static func waitForHTTP(_ url: String, name: String, timeout: Duration = .seconds(30), process: Process? = nil,
                            log: URL? = nil) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2)),
               response.status == .ok {
                return
            }
            if let process, !process.isRunning {
                let tail = log.flatMap { try? String(contentsOf: $0, encoding: .utf8) }.map { String($0.suffix(600)) } ?? ""
                throw ValidationFailure("\(name) exited during start:\n\(tail)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw ValidationFailure("\(name) did not become ready at \(url) in time")
    }

    static func waitForPostgres(_ url: String, process: Process) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            var quiet = Logger(label: "conclave.cluster")
            quiet.logLevel = .warning
            if let store = try? await PostgresStore(url: url, maxConnections: 1, logger: quiet) {
                await store.close()
                return
            }
            guard process.isRunning else { throw ValidationFailure("postgres exited during start") }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw ValidationFailure("PostgreSQL did not accept connections in time")
    }

    /// The start time of `pid` (field 22 of `/proc/<pid>/stat`), nil when it is gone.
    static func startTime(_ pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }

    /// True when the member's process still runs (the same process: its start time matches).
    static func isRunning(_ member: Cluster.State.Member) -> Bool {
        guard member.pid > 0, kill(member.pid, 0) == 0 else { return false }
        return member.started == nil || startTime(member.pid) == member.started
    }

    /// SIGTERM to each member still running (PostgreSQL's smart shutdown, the others' drain),
    /// then SIGKILL for whatever is left after `grace`.
    static func stop(_ members: [Cluster.State.Member], grace: Duration) {
        var remaining = members.filter(isRunning)
        for member in remaining { kill(member.pid, SIGTERM) }
        let deadline = ContinuousClock.now + grace
        while !remaining.isEmpty, ContinuousClock.now < deadline {
            remaining = remaining.filter { member in
                var status: Int32 = 0
                if waitpid(member.pid, &status, WNOHANG) == member.pid { return false }
                return isRunning(member) && !isZombie(member.pid)
            }
            if !remaining.isEmpty { usleep(100_000) }
        }
        for member in remaining { kill(member.pid, SIGKILL) }
    }

    static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }
}
