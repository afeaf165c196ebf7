import ConclaveCore
import Logging
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

extension Telemetry {
    private static let tracing = Mutex<(bootstrapped: Bool, service: (any Service)?)>((false, nil))

    /// The exporter's service once ``bootstrapTracing(_:role:)`` turned tracing on; the runtime
    /// runs it first among its services, so it stops last and flushes the spans of the drain.
    public static var tracingService: (any Service)? { tracing.withLock { $0.service } }

    /// Bootstraps swift-distributed-tracing with swift-otel's OTLP/HTTP exporter when
    /// `tracing.enabled`, once per process, and returns the exporter's service (batching and
    /// export), to run beside the server; nil when tracing is off, and then every span is a no-op.
    ///
    /// The standard `OTEL_*` variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`,
    /// `OTEL_TRACES_SAMPLER`, …) win over the configuration, as in every OpenTelemetry SDK.
    @discardableResult
    public static func bootstrapTracing(_ settings: TracingConfiguration, role: String) throws -> (any Service)? {
        guard settings.enabled else { return nil }
        return try tracing.withLock { state -> (any Service)? in
            if state.bootstrapped { return state.service }
            var configuration = OTel.Configuration.default
            configuration.serviceName = settings.serviceName.isEmpty ? "conclave" : settings.serviceName
            configuration.resourceAttributes["conclave.role"] = role
            configuration.logs.enabled = false
            configuration.metrics.enabled = false
            configuration.traces.enabled = true
            configuration.propagators = [.traceContext]
            configuration.diagnosticLogger = .custom(Logger(label: "conclave.tracing"))
            configuration.diagnosticLogLevel = .warning
            guard let sampler = OTel.Configuration.TracesConfiguration.SamplerConfiguration.parentBasedTraceIDRatio(ratio: settings.samplingRatio) else {
                throw ConfigurationError(key: "tracing.sampling_ratio", value: String(settings.samplingRatio), expected: "a number from 0 to 1")
            }
            configuration.traces.sampler = sampler
            if !settings.endpoint.isEmpty { configuration.traces.otlpExporter.endpoint = settings.endpoint }
            let backend = try OTel.makeTracingBackend(configuration: configuration)
            InstrumentationSystem.bootstrap(backend.factory)
            state = (true, backend.service)
            return backend.service
        }
    }
}

extension Telemetry {
    /// What one span costs while tracing is off, in nanoseconds: `iterations` spans with one
    /// attribute each through the tracer the process has (the no-op tracer unless
    /// ``bootstrapTracing(_:role:)`` installed one), minus the same loop without the span.
    /// `conclave bench tracing` reports it per request.
    public static func spanCostNanoseconds(iterations: Int = 1_000_000) -> Double {
        let clock = ContinuousClock()
        var sink = 0
        let withSpans = clock.measure {
            for index in 0..<iterations {
                withSpan("bench", ofKind: .internal) { span in
                    span.attributes["conclave.bench"] = index
                    sink &+= index
                }
            }
        }
        let without = clock.measure {
            for index in 0..<iterations { sink &+= index &* 3 }
        }
        precondition(sink != 1, "keeps the loops")
        return max(0, Double((withSpans - without).inNanoseconds)) / Double(max(1, iterations))
    }
}
