import Hummingbird
import HummingbirdCore
import Logging
import ServiceLifecycle

/// Serves a router on a free 127.0.0.1 port for as long as a body runs: the test servers of
/// this module (the fake model backend, the OTLP receiver) share it.
enum LoopbackApplication {
    /// Starts `router` with `server`, passes the bound port to `body`, and shuts the server down
    /// gracefully when `body` returns.
    static func run<T: Sendable>(router: Router<BasicRequestContext>, server: HTTPServerBuilder = .http1(), logger: Logger? = nil,
                                 _ body: (Int) async throws -> T) async throws -> T {
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(router: router, server: server, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in
                                  portContinuation.yield(channel.localAddress?.port ?? 0)
                                  portContinuation.finish()
                              }, logger: logger)
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: app.logger)
        return try await withThrowingTaskGroup(of: T?.self) { tasks in
            tasks.addTask {
                try await group.run()
                return nil
            }
            var port = 0
            for await p in portStream { port = p }
            defer { tasks.cancelAll() }
            let result = try await body(port)
            await group.triggerGracefulShutdown()
            return result
        }
    }
}
