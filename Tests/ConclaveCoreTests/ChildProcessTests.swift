import ConclaveCore
import Foundation
import Testing

@Suite struct ChildProcessTests {
    private static func start(_ arguments: [String], diesWithParent: Bool = false) throws -> (Process, ChildProcess.Exit) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try ChildProcess.launch(process, diesWithParent: diesWithParent)
        return (process, ChildProcess.Exit(process))
    }

    /// Waits for `exit` for at most `limit`; true if the exit was seen in time.
    private static func sees(_ exit: ChildProcess.Exit, within limit: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await exit.wait()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            if !first { kill(exit.pid, SIGKILL) }
            return first
        }
    }

    @Test func reportsTheExitStatusAndTheSignal() async throws {
        let (_, exited) = try Self.start(["exit 3"])
        #expect(await Self.sees(exited, within: .seconds(10)))
        #expect(exited.ending == .exited(3))

        let (_, killed) = try Self.start(["exec sleep 30"])
        kill(killed.pid, SIGKILL)
        #expect(await Self.sees(killed, within: .seconds(10)))
        #expect(killed.ending == .signalled(SIGKILL))
    }

    /// Eight children started at once from concurrent tasks; the death of one is seen while the
    /// others live (Foundation alone can miss it when a sibling inherits its exit socket).
    @Test func theDeathOfOneOfManyChildrenStartedTogetherIsSeen() async throws {
        let children = try await withThrowingTaskGroup(of: ChildProcess.Exit.self) { group in
            for _ in 0..<8 {
                group.addTask { try Self.start(["exec sleep 30"]).1 }
            }
            var all: [ChildProcess.Exit] = []
            for try await child in group { all.append(child) }
            return all
        }
        defer { for child in children { kill(child.pid, SIGKILL) } }
        let victim = children[0]
        kill(victim.pid, SIGKILL)
        #expect(await Self.sees(victim, within: .seconds(5)))
        #expect(children.dropFirst().allSatisfy { !$0.hasExited })
    }

    /// Started from a task (a thread of the cooperative pool, which blocks nearly every signal),
    /// a child still blocks none: SIGTERM stops it at once instead of after the grace period.
    @Test(arguments: [false, true]) func aChildStartedFromATaskStopsOnTerm(diesWithParent: Bool) async throws {
        let exit = try await Task.detached { try Self.start(["exec sleep 30"], diesWithParent: diesWithParent).1 }.value
        try await Task.sleep(for: .milliseconds(200))
        exit.stop(grace: .seconds(60))
        #expect(await Self.sees(exit, within: .seconds(20)))
        #expect(exit.ending == .signalled(SIGTERM))
    }

    /// A Ctrl-C in the terminal reaches the whole process group; children leave stopping to
    /// their parent, which drains them first.
    @Test func aChildIgnoresTheTerminalsInterrupt() async throws {
        let exit = try await Task.detached { try Self.start(["exec sleep 30"]).1 }.value
        defer { kill(exit.pid, SIGKILL) }
        try await Task.sleep(for: .milliseconds(200))
        kill(exit.pid, SIGINT)
        #expect(!(await Self.sees(exit, within: .milliseconds(500))))
    }

    @Test func stopEscalatesToKillWhenTermIsIgnored() async throws {
        let (_, exit) = try Self.start(["trap '' TERM; while :; do sleep 0.1; done"])
        try await Task.sleep(for: .milliseconds(200))
        exit.stop(grace: .milliseconds(300))
        #expect(await Self.sees(exit, within: .seconds(10)))
        #expect(exit.ending == .signalled(SIGKILL))
    }
}
