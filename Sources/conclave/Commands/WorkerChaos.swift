import ConclaveCore
import Foundation
import Synchronization

/// Fault injection for a local cluster (`conclave cluster up`): every `every` seconds it SIGKILLs
/// the next worker (in name order, round robin) and starts it again with its own command line,
/// environment and log, as Kubernetes restarts a pod whose container died; `cluster.json` then
/// names the new process, so `cluster down` stops it. A step the killed worker held is redelivered
/// by JetStream after `messaging.ack_wait_seconds`.
final class WorkerChaos: Sendable {
    let directory: URL
    let every: Double
    private let state = Mutex<(kills: Int, next: Int)>((0, 0))

    init(directory: URL, every: Double) {
        self.directory = directory
        self.every = every
    }

    /// Workers killed (and started again) so far.
    var kills: Int { state.withLock { $0.kills } }

    /// Kills and restarts a worker every `every` seconds until cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int64(every * 1000)))
            if Task.isCancelled { return }
            do {
                let name = try killAndRestartNext()
                FileHandle.standardError.write(Data("\nfault injection: killed and restarted \(name)\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("\nfault injection: \(error)\n".utf8))
            }
        }
    }

    /// Kills the next worker, starts it again and records its new pid; returns its name.
    @discardableResult
    func killAndRestartNext() throws -> String {
        let path = Cluster.statePath(directory)
        var cluster = try JSONDecoder().decode(Cluster.State.self, from: Data(contentsOf: path))
        let workers = cluster.members.indices.filter { cluster.members[$0].name.hasPrefix("worker-") }
            .sorted { cluster.members[$0].name < cluster.members[$1].name }
        guard !workers.isEmpty else { throw ValidationFailure("no workers in \(path.path)") }
        let index = workers[state.withLock { $0.next } % workers.count]
        let member = cluster.members[index]
        guard Detached.isRunning(member) else { throw ValidationFailure("\(member.name) (pid \(member.pid)) is not running") }
        // What it was started with, read before it goes.
        let arguments = try Self.nulSeparated("/proc/\(member.pid)/cmdline")
        let environment = Dictionary(try Self.nulSeparated("/proc/\(member.pid)/environ").compactMap { entry -> (String, String)? in
            guard let equals = entry.firstIndex(of: "=") else { return nil }
            return (String(entry[..<equals]), String(entry[entry.index(after: equals)...]))
        }, uniquingKeysWith: { _, last in last })
        let workingDirectory = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(member.pid)/cwd")
        guard let executable = arguments.first else { throw ValidationFailure("cannot read \(member.name)'s command line") }
        kill(member.pid, SIGKILL)
        let deadline = ContinuousClock.now + .seconds(5)
        while Detached.isRunning(member) && !Detached.isZombie(member.pid) && ContinuousClock.now < deadline { usleep(20_000) }

        // Started as `cluster up` starts it; the log goes on where the killed process left it.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        let log = URL(fileURLWithPath: member.log)
        let marker = try FileHandle(forWritingTo: log)
        try marker.seekToEnd()
        try marker.write(contentsOf: Data("\n--- killed by fault injection (SIGKILL), started again\n".utf8))
        try marker.close()
        try Detached.start(process, log: log, appending: true)
        cluster.members[index].pid = process.processIdentifier
        cluster.members[index].started = Detached.startTime(process.processIdentifier)
        try JSONEncoder().encode(cluster).write(to: path, options: .atomic)
        state.withLock { $0 = ($0.kills + 1, $0.next + 1) }
        return member.name
    }

    /// The NUL-separated strings of a `/proc` file.
    static func nulSeparated(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationFailure("cannot read \(path)") }
        return data.split(separator: 0, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
    }
}
