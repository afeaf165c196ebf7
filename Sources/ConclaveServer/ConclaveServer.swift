import ConclaveCore
import Hummingbird
import Logging
import ServiceLifecycle

/// Builds the HTTP application of a Conclave gateway.
public enum ConclaveServer {
    /// The router with every route and middleware.
    public static func makeRouter(runtime: ConclaveRuntime) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: OpenAIErrorMiddleware())
        SystemController(runtime: runtime).addRoutes(to: router)
        ChatCompletionsController(runtime: runtime).addRoutes(to: router)
        AdminController(runtime: runtime).addRoutes(to: router)
        EmbeddingsController(runtime: runtime).addRoutes(to: router)
        return router
    }

    /// The Hummingbird application bound to the configured host and port. `onServerRunning`
    /// receives the bound port (useful with port 0).
    public static func makeApplication(runtime: ConclaveRuntime,
                                       onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol
    {
        let server = runtime.configuration.server
        return Application(
            router: makeRouter(runtime: runtime),
            server: .http1(configuration: .init(
                idleTimeout: .milliseconds(Int64(server.idleTimeoutSeconds * 1000)),
                httpDecoderConfiguration: .init(maxHeaderFieldSize: server.maxHeaderBytes, maxHeaderListSize: server.maxHeaderBytes,
                                                maxHeaderFieldCount: server.maxHeaderCount))),
            configuration: .init(address: .hostname(server.host, port: server.port), serverName: "conclave"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? server.port) },
            logger: runtime.logger)
    }

    /// Runs the server and its background services until SIGTERM/SIGINT. In-flight requests get
    /// `server.shutdown_grace_seconds` to finish before they are cancelled; then the process exits 0.
    public static func run(runtime: ConclaveRuntime, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        async throws
    {
        let application = makeApplication(runtime: runtime, onServerRunning: onServerRunning)
        var configuration = ServiceGroupConfiguration(
            services: runtime.backgroundServices.map { .init(service: $0) } + [.init(service: application)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: runtime.logger)
        configuration.maximumGracefulShutdownDuration = .milliseconds(Int64(runtime.configuration.server.shutdownGraceSeconds * 1000))
        configuration.maximumCancellationDuration = .seconds(10)
        let group = ServiceGroup(configuration: configuration)
        try await group.run()
    }
}
