import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Starting child processes and learning when they exit, reliably.
///
/// Foundation's `Process` on Linux learns of a child's exit when a socket the child inherits is
/// closed. The socket is created without close-on-exec, so a second child spawned at the same
/// moment from another thread can inherit the first child's socket too: the first child's death
/// then goes unnoticed until the second one dies (two supervised `llama-server` replicas started
/// together hit this). ``launch(_:)`` serialises every spawn made through it, which closes that
/// window, and ``Exit`` watches the child with `waitid(WNOWAIT)` as well, which does not depend on
/// the socket at all.
public enum ChildProcess {
    /// Starts `process` on one dedicated thread, so never at the same time as another process
    /// started here, and with a signal mask that blocks only SIGINT.
    ///
    /// A child inherits the signal mask of the thread that spawns it (Foundation's `Process` does
    /// not reset it), and the threads of Dispatch and of Swift's cooperative pool block nearly
    /// every signal: a `llama-server` spawned from one ignored SIGTERM, so each stop waited out the
    /// 5 s grace and ended in SIGKILL. The spawn thread's mask blocks only SIGINT: a Ctrl-C in the
    /// terminal reaches the whole process group, and the children wait for their parent to drain
    /// and stop them (SIGTERM) rather than die mid-call.
    ///
    /// With `diesWithParent`, the child is started through util-linux's `setpriv --pdeathsig KILL`
    /// (where it is installed), so the kernel kills it when this process dies, by SIGKILL too:
    /// a supervised `llama-server` never outlives its gateway. The parent-death signal follows
    /// the thread that spawned the child, not the process, which is one more reason for a spawn
    /// thread that lives as long as the process (a pool thread may exit when idle).
    public static func launch(_ process: Process, diesWithParent: Bool = false) throws {
        if diesWithParent, FileManager.default.isExecutableFile(atPath: setpriv), let executable = process.executableURL {
            process.arguments = ["--pdeathsig", "KILL", "--", executable.path] + (process.arguments ?? [])
            process.executableURL = URL(fileURLWithPath: setpriv)
        }
        try SpawnThread.shared.perform { try process.run() }
    }

    static let setpriv = "/usr/bin/setpriv"

    /// The thread every child is spawned from: it never exits (a parent-death signal must not fire
    /// early) and its signal mask blocks only SIGINT.
    private final class SpawnThread: @unchecked Sendable {
        static let shared = SpawnThread()
        private let condition = NSCondition()
        private var jobs: [@Sendable () -> Void] = []  // guarded by `condition`

        private init() {
            let thread = Thread { [self] in
                // Created from whatever thread first spawned, it would inherit that thread's mask.
                var mask = sigset_t()
                sigemptyset(&mask)
                sigaddset(&mask, SIGINT)
                pthread_sigmask(SIG_SETMASK, &mask, nil)
                while true {
                    condition.lock()
                    while jobs.isEmpty { condition.wait() }
                    let job = jobs.removeFirst()
                    condition.unlock()
                    job()
                }
            }
            thread.name = "conclave-spawn"
            thread.start()
        }

        /// Runs `body` on the spawn thread and waits for it.
        func perform(_ body: @escaping @Sendable () throws -> Void) throws {
            let done = DispatchSemaphore(value: 0)
            let failure = Mutex<(any Error)?>(nil)
            condition.lock()
            jobs.append {
                do { try body() } catch { failure.withLock { $0 = error } }
                done.signal()
            }
            condition.signal()
            condition.unlock()
            done.wait()
            if let error = failure.withLock({ $0 }) { throw error }
        }
    }

    /// How a child ended.
    public enum Ending: Sendable, Hashable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        public var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signalled(let signal): "signal \(signal)"
            }
        }
    }

    /// The awaitable exit of a started child. Watches it with `waitid(WNOWAIT)` (which leaves the
    /// child for Foundation to reap) on a plain thread, and with the process's termination handler.
    public final class Exit: Sendable {
        private let recorded = Mutex<Ending?>(nil)
        private let exited = OneShotSignal()

        /// The child's process id.
        public let pid: Int32

        /// Starts watching a process that was launched.
        public init(_ process: Process, pollInterval: Duration = .milliseconds(100)) {
            pid = process.processIdentifier
            process.terminationHandler = { [self] process in finish(Self.ending(of: process)) }
            let pid = pid
            let micros = useconds_t(max(1, pollInterval.inMicroseconds))
            Thread.detachNewThread { [self] in
                while !hasExited {
                    switch Self.peek(pid) {
                    case .running: break
                    case .ended(let ending):
                        finish(ending)
                        return
                    case .reaped:
                        // Foundation reaped it, perhaps before the handler above was set.
                        if !process.isRunning { finish(Self.ending(of: process)) }
                    }
                    usleep(micros)
                }
            }
        }

        private static func ending(of process: Process) -> Ending {
            process.terminationReason == .uncaughtSignal ? .signalled(process.terminationStatus) : .exited(process.terminationStatus)
        }

        /// True once the child has exited.
        public var hasExited: Bool { exited.hasFired }

        /// How it ended, once it has.
        public var ending: Ending? { recorded.withLock { $0 } }

        /// Returns once the child has exited, whether or not the task is cancelled.
        public func wait() async {
            await exited.waitIgnoringCancellation()
        }

        /// Asks the child to stop (SIGTERM) and kills it (SIGKILL) if it is still there after
        /// `grace`; returns at once.
        public func stop(grace: Duration = .seconds(5)) {
            guard !hasExited else { return }
            kill(pid, SIGTERM)
            let deadline = ContinuousClock.now + grace
            Thread.detachNewThread { [self] in
                while !hasExited, ContinuousClock.now < deadline { usleep(50_000) }
                if !hasExited { kill(pid, SIGKILL) }
            }
        }

        private func finish(_ ending: Ending) {
            // The ending is recorded before the signal fires, so a waiter that returns can read it.
            recorded.withLock { if $0 == nil { $0 = ending } }
            exited.fire()
        }

        private enum Peek { case running, ended(Ending), reaped }

        /// Whether the child has exited, without reaping it.
        private static func peek(_ pid: Int32) -> Peek {
            var info = siginfo_t()
            guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else {
                return errno == ECHILD ? .reaped : .running
            }
            let child = info._sifields._sigchld
            guard child.si_pid == pid else { return .running }
            return .ended(info.si_code == CLD_EXITED ? .exited(child.si_status) : .signalled(child.si_status))
        }
    }
}
