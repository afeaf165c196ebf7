import AsyncHTTPClient
import Synchronization
import ConclaveCore
import Foundation
import Logging
import ServiceLifecycle

/// Runs a local `llama-server` as a supervised child process: starts it on a free loopback
/// port, waits for `/health`, publishes it in a ``ReplicaPool``, restarts it if it dies, and stops
/// it on shutdown.
public final class LlamaServerSupervisor: Service, Sendable {
    /// How to start the server.
    public struct Configuration: Sendable {
        /// Path of the `llama-server` binary.
        public var serverPath: String
        /// Path of the GGUF model.
        public var modelPath: String
        /// Total context tokens.
        public var contextSize: Int
        /// Parallel slots.
        public var parallelSlots: Int
        /// CPU threads (0: llama.cpp's choice).
        public var threads: Int
        /// How long to wait for `/health` after a start.
        public var startupTimeout: Duration
        /// File that receives the server's output; nil discards it.
        public var logPath: String?
        /// Fixed port; nil picks a free one.
        public var port: Int?
        /// How long calls in flight may take to finish before the server is stopped.
        public var drainTimeout: Duration = .seconds(30)

        /// Creates a configuration.
        public init(serverPath: String, modelPath: String, contextSize: Int = 8192, parallelSlots: Int = 4,
                    threads: Int = 0, startupTimeout: Duration = .seconds(120), logPath: String? = nil, port: Int? = nil) {
            self.serverPath = serverPath
            self.modelPath = modelPath
            self.contextSize = contextSize
            self.parallelSlots = parallelSlots
            self.threads = threads
            self.startupTimeout = startupTimeout
            self.logPath = logPath
            self.port = port
        }
    }

    /// The replicas this supervisor publishes to.
    public let replicas: ReplicaPool
    private let configuration: Configuration
    private let client: HTTPClient
    private let logger: Logger
    private let runningPID = Mutex<(pid: Int32?, url: String?)>((nil, nil))
    private let retirement = OneShotSignal()

    /// Process id of the running `llama-server`, if one is running.
    public var processID: Int32? { runningPID.withLock { $0.pid } }

    /// Base URL of the running replica (ending in `/v1`), once it has a port.
    public var url: String? { runningPID.withLock { $0.url } }

    /// Creates a supervisor; call ``run()`` (or add it to a `ServiceGroup`) to start the server.
    public init(configuration: Configuration, replicas: ReplicaPool = ReplicaPool(), client: HTTPClient = .shared,
                logger: Logger = Logger(label: "conclave.llama-server")) throws {
        guard FileManager.default.isExecutableFile(atPath: configuration.serverPath) else {
            throw ConclaveError(.invalidConfiguration,
                                "llama-server not found or not executable at '\(configuration.serverPath)'; run `make setup`")
        }
        guard FileManager.default.fileExists(atPath: configuration.modelPath) else {
            throw ConclaveError(.invalidConfiguration, "model file not found at '\(configuration.modelPath)'; run `make setup`")
        }
        self.configuration = configuration
        self.replicas = replicas
        self.client = client
        self.logger = logger
    }

    /// Stops the server for good, after draining it: it gets no new calls and its calls in flight
    /// get `drainTimeout` to finish; ``run()`` then returns. The autoscaler retires replicas so.
    public func retire() {
        retirement.fire()
    }

    /// True once ``retire()`` was called.
    public var isRetired: Bool { retirement.hasFired }

    private enum Ending { case exited, shutdown, retired, cancelled }

    /// Starts the server and keeps it running until cancelled, retired or gracefully shut down; a
    /// graceful shutdown or a retirement drains the replica before the process is stopped.
    public func run() async throws {
        var failures = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully && !retirement.hasFired {
            let port = try configuration.port ?? FreePort.find()
            let process = try launch(port: port)
            let exit = ChildProcess.Exit(process)
            let base = "http://127.0.0.1:\(port)/v1"
            runningPID.withLock { $0 = (process.processIdentifier, base) }
            defer { runningPID.withLock { $0 = (nil, nil) } }
            let ending: Ending
            do {
                ending = try await withTaskCancellationHandler {
                    if try await waitUntilHealthy(port: port, exit: exit) {
                        replicas.add(base)
                        failures = 0
                        logger.info("llama-server ready", metadata: ["url": "\(base)", "pid": "\(process.processIdentifier)"])
                    }
                    return await withTaskGroup(of: Ending.self) { group in
                        group.addTask {
                            await exit.wait()
                            return .exited
                        }
                        group.addTask {
                            do {
                                try await gracefulShutdown()
                                return .shutdown
                            } catch {
                                return .cancelled
                            }
                        }
                        group.addTask {
                            await self.retirement.wait()
                            return Task.isCancelled ? .cancelled : .retired
                        }
                        let first = await group.next() ?? .cancelled
                        group.cancelAll()
                        if first == .shutdown || first == .retired {
                            logger.info("draining llama-server", metadata: ["url": "\(base)", "reason": "\(first)"])
                            await replicas.drain(base, timeout: configuration.drainTimeout)
                        }
                        if first != .exited {
                            exit.stop()
                            await exit.wait()
                        }
                        return first
                    }
                } onCancel: {
                    exit.stop()
                }
            } catch {
                exit.stop()
                replicas.remove(base)
                await exit.wait()
                throw error
            }
            replicas.remove(base)
            if ending != .exited || Task.isCancelled || Task.isShuttingDownGracefully || retirement.hasFired { break }
            failures += 1
            logger.error("llama-server exited; restarting", metadata: [
                "ending": "\(exit.ending.map(String.init(describing:)) ?? "unknown")", "restarts": "\(failures)",
            ])
            let backoff = min(30.0, 0.25 * pow(2.0, Double(min(failures, 8))))
            try? await Task.sleep(for: .seconds(backoff))
        }
    }

    private func launch(port: Int) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: configuration.serverPath)
        let command = configuration.commandLine(port: port)
        process.arguments = command.arguments
        process.environment = command.environment
        if let logPath = configuration.logPath {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        process.standardInput = FileHandle.nullDevice
        try ChildProcess.launch(process, diesWithParent: true)
        logger.debug("llama-server started", metadata: ["pid": "\(process.processIdentifier)", "port": "\(port)"])
        return process
    }

    /// Polls `/health` until it answers 200; returns false if the process exits first.
    private func waitUntilHealthy(port: Int, exit: ChildProcess.Exit) async throws -> Bool {
        let deadline = ContinuousClock.now + configuration.startupTimeout
        while ContinuousClock.now < deadline {
            try Task.checkCancellation()
            if exit.hasExited { return false }
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/health")
            request.method = .GET
            if let response = try? await client.execute(request, timeout: .seconds(2)) {
                _ = try? await response.body.collect(upTo: 64 * 1024)
                if response.status == .ok { return true }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        logger.error("llama-server did not become healthy in time; stopping it")
        return false
    }
}

extension LlamaServerSupervisor.Configuration {
    /// The arguments and environment `serverPath` runs with on `port` (loopback only), as the
    /// supervisor starts it; `conclave cluster up` starts its replicas the same way.
    public func commandLine(port: Int) -> (arguments: [String], environment: [String: String]) {
        var arguments = [
            "--model", modelPath,
            "--host", "127.0.0.1", "--port", String(port),
            "--ctx-size", String(contextSize),
            "--parallel", String(parallelSlots),
            "--no-webui",
        ]
        if threads > 0 { arguments += ["--threads", String(threads)] }
        var environment = ProcessInfo.processInfo.environment
        let libDir = URL(fileURLWithPath: serverPath).deletingLastPathComponent().path
        environment["LD_LIBRARY_PATH"] = [libDir, environment["LD_LIBRARY_PATH"]].compactMap { $0 }.joined(separator: ":")
        return (arguments, environment)
    }
}
