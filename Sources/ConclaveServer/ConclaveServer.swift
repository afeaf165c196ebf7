import ConclaveCore
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import ServiceLifecycle
import Tracing

/// Builds the HTTP application of a Conclave gateway.
public enum ConclaveServer {
    /// The router with every route and middleware.
    public static func makeRouter(runtime: ConclaveRuntime) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        // A server span per request (continuing a client's `traceparent`), returned to the client;
        // left out when the process has no tracer (tracing off), where it built no-op spans only.
        if !(InstrumentationSystem.tracer is NoOpTracer) {
            router.add(middleware: TracingMiddleware())
            router.add(middleware: TraceResponseMiddleware())
        }
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: OpenAIErrorMiddleware())
        SystemController(runtime: runtime).addRoutes(to: router)
        ChatCompletionsController(runtime: runtime).addRoutes(to: router)
        AdminController(runtime: runtime).addRoutes(to: router)
        EmbeddingsController(runtime: runtime).addRoutes(to: router)
        WorkspaceController(runtime: runtime).addRoutes(to: router)
        if runtime.configuration.console.enabled { ConsoleController().addRoutes(to: router) }
        return router
    }

    /// The Hummingbird application bound to the configured host and port: HTTPS only when
    /// `server.tls_cert_file` and `server.tls_key_file` are set. `onServerRunning` receives the
    /// bound port (useful with port 0). Throws a `ConfigurationError` naming the key when the
    /// certificate or key cannot be loaded.
    public static func makeApplication(runtime: ConclaveRuntime,
                                       onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws
        -> some ApplicationProtocol
    {
        let server = runtime.configuration.server
        let http1 = HTTPServerBuilder.http1(configuration: .init(
            idleTimeout: .milliseconds(Int64(server.idleTimeoutSeconds * 1000)),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: server.maxHeaderBytes, maxHeaderListSize: server.maxHeaderBytes,
                                            maxHeaderFieldCount: server.maxHeaderCount)))
        let builder = server.usesTLS
            ? try HTTPServerBuilder.tls(http1, tlsConfiguration: GatewayTLS.configuration(try runtime.live.gatewayCertificate()))
            : http1
        return Application(
            router: makeRouter(runtime: runtime),
            server: builder,
            configuration: .init(address: .hostname(server.host, port: server.port), serverName: "conclave"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? server.port) },
            logger: runtime.logger)
    }

    /// Loads the gateway's certificate and key when TLS is configured, throwing a
    /// `ConfigurationError` naming the key when they cannot be used (`conclave serve` and
    /// `conclave config check` call it before anything else starts).
    public static func validateTLS(_ server: ConclaveCore.ServerConfiguration) throws {
        if server.usesTLS { _ = try GatewayTLS.load(server) }
    }

    /// Runs the server and its background services until SIGTERM/SIGINT. In-flight requests get
    /// `server.shutdown_grace_seconds` to finish before they are cancelled; then the process exits 0.
    public static func run(runtime: ConclaveRuntime, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        async throws
    {
        let application = try makeApplication(runtime: runtime, onServerRunning: onServerRunning)
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
