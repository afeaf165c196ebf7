import ConclaveServer
import Foundation
import ServiceLifecycle

/// Runs a Conclave server (runtime + HTTP application) on a free loopback port for the duration
/// of a test body, then shuts it down gracefully.
public enum RunningServer {
    /// Starts the server, calls `body` with its base URL (`http://127.0.0.1:PORT`), and stops it.
    public static func with<T: Sendable>(_ runtime: ConclaveRuntime,
                                         _ body: @Sendable (String) async throws -> T) async throws -> T {
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let application = try ConclaveServer.makeApplication(runtime: runtime) { port in
            portContinuation.yield(port)
            portContinuation.finish()
        }
        let group = ServiceGroup(
            services: runtime.backgroundServices + [application],
            gracefulShutdownSignals: [],
            logger: runtime.logger)
        return try await withThrowingTaskGroup(of: T?.self) { tasks in
            tasks.addTask {
                try await group.run()
                return nil
            }
            var port = 0
            for await p in portStream { port = p }
            do {
                let result = try await body("http://127.0.0.1:\(port)")
                await group.triggerGracefulShutdown()
                while let next = try await tasks.next() { if next != nil { break } }
                return result
            } catch {
                await group.triggerGracefulShutdown()
                tasks.cancelAll()
                throw error
            }
        }
    }
}
