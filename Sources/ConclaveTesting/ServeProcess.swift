import ConclaveCore
import Foundation
import Synchronization

/// Runs the `conclave` executable as a child process, for tests of process behaviour (signals,
/// exit codes, startup errors).
public final class ServeProcess: Sendable {
    /// The child process.
    public let process: Process
    private let output = OutputBuffer()
    private let pipe: Pipe

    /// The built `conclave` binary: `CONCLAVE_BIN` if set, else `.build/debug/conclave`.
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["CONCLAVE_BIN"], !path.isEmpty { return path }
        return TestRuntime.repositoryRoot.appendingPathComponent(".build/debug/conclave").path
    }

    /// Starts `conclave` with `arguments` and extra environment variables, in the repository root.
    public init(arguments: [String], environment: [String: String] = [:]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.currentDirectoryURL = TestRuntime.repositoryRoot
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = self.output
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { output.text.withLock { $0 += String(decoding: data, as: UTF8.self) } }
        }
        try ChildProcess.launch(process)
    }

    /// Everything the process printed so far (stdout and stderr).
    public var printed: String { output.text.withLock { $0 } }

    /// Waits until the process prints its listening line and returns the port.
    public func waitForPort(timeout: Duration = .seconds(120)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = printed
            if let range = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                let digits = text[range].split(separator: ":").last.map(String.init) ?? ""
                if let port = Int(digits) { return port }
            }
            if !process.isRunning { throw ServeProcessError(message: "conclave exited early:\n\(printed)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServeProcessError(message: "conclave did not start listening in time:\n\(printed)")
    }

    /// Waits for the process to exit and returns its status.
    public func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                process.terminate()
                throw ServeProcessError(message: "conclave did not exit in time:\n\(printed)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }

    /// Sends `signal` to the process.
    public func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        pipe.fileHandleForReading.readabilityHandler = nil
    }
}

/// A child-process fixture failed.
public struct ServeProcessError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    public init(message: String) {
        self.message = message
    }
}

/// Collected output of a child process, shared with its pipe's reader.
final class OutputBuffer: Sendable {
    let text = Mutex<String>("")
}
