/// OpenTelemetry tracing (`tracing`): spans per request, workflow step, model call, connector
/// call and policy decision, exported over OTLP/HTTP. Off by default; off costs nothing
/// measurable (the spans are no-ops).
public struct TracingConfiguration: Sendable, Codable, Hashable {
    /// Export spans. Default false.
    public var enabled: Bool
    /// The OTLP/HTTP traces endpoint (`http://collector:4318/v1/traces`). Default "": the
    /// standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` variables,
    /// else `http://localhost:4318/v1/traces`.
    public var endpoint: String
    /// Share of new traces sampled, 0 to 1; a request that carries a `traceparent` follows its
    /// caller's decision. Default 1.
    public var samplingRatio: Double
    /// `service.name` of the spans. Default "" (`OTEL_SERVICE_NAME`, else `conclave`).
    public var serviceName: String

    /// Creates tracing settings.
    public init(enabled: Bool = false, endpoint: String = "", samplingRatio: Double = 1, serviceName: String = "") {
        self.enabled = enabled
        self.endpoint = endpoint
        self.samplingRatio = samplingRatio
        self.serviceName = serviceName
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case enabled, endpoint
        case samplingRatio = "sampling_ratio"
        case serviceName = "service_name"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = TracingConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.value(.enabled, default: d.enabled)
        endpoint = try c.value(.endpoint, default: d.endpoint)
        samplingRatio = try c.value(.samplingRatio, default: d.samplingRatio)
        serviceName = try c.value(.serviceName, default: d.serviceName)
    }

    func validate() throws {
        guard samplingRatio >= 0, samplingRatio <= 1 else {
            throw ConfigurationError(key: "tracing.sampling_ratio", value: String(samplingRatio), expected: "a number from 0 to 1")
        }
        if !endpoint.isEmpty, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
            throw ConfigurationError(key: "tracing.endpoint", value: endpoint, expected: "an http:// or https:// URL of an OTLP/HTTP traces endpoint")
        }
    }
}
