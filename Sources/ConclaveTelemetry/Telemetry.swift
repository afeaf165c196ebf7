import ConclaveCore
import Logging
import Metrics
import OTel
import Prometheus
import Synchronization

/// Process-wide logging and metrics bootstrap. swift-log and swift-metrics allow one bootstrap per
/// process, so this is idempotent: the first call wins and later calls return the same registry.
public enum Telemetry {
    private static let state = Mutex<PrometheusCollectorRegistry?>(nil)

    /// Bootstraps logging at `level` and metrics into a Prometheus registry, once per process.
    @discardableResult
    public static func bootstrap(logLevel: LoggingConfiguration.Level = .info) -> PrometheusCollectorRegistry {
        bootstrap(logging: LoggingConfiguration(level: logLevel))
    }

    /// Bootstraps logging (`logging`: level, format, module levels) and metrics into a
    /// Prometheus registry, once per process.
    @discardableResult
    public static func bootstrap(logging: LoggingConfiguration) -> PrometheusCollectorRegistry {
        state.withLock { registry in
            if let registry { return registry }
            let created = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: created)
            factory.defaultDurationHistogramBuckets = [
                .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
            ]
            factory.nameAndLabelSanitizer = { name, labels in
                (metricName(name), labels.map { (labelName($0.0), $0.1) })
            }
            MetricsSystem.bootstrap(factory)
            // Every line logged inside a traced span carries its `trace_id` and `span_id` (nothing
            // when tracing is off).
            LoggingSystem.bootstrap({ label, provider in
                var handler = ConclaveLogHandler(label: label, configuration: logging)
                handler.metadataProvider = provider
                return handler
            }, metadataProvider: OTel.makeLoggingMetadataProvider())
            registry = created
            return created
        }
    }

    /// The registry, if ``bootstrap(logLevel:)`` has run.
    public static var registry: PrometheusCollectorRegistry? { state.withLock { $0 } }

    /// Names of library metrics, mapped onto Conclave's snake_case names with units.
    static let renamed: [String: String] = [
        "hb.requests": "conclave_http_requests_total",
        "hb.request.errors": "conclave_http_request_errors_total",
        "http.server.request.duration": "conclave_http_request_duration_seconds",
        "http.server.active_requests": "conclave_http_requests_in_flight",

    ]

    /// Library label names mapped onto short ones.
    static let renamedLabels: [String: String] = [
        "http.route": "route", "http.request.method": "method", "http.response.status_code": "status",
    ]

    /// A valid Prometheus metric name for `name`.
    static func metricName(_ name: String) -> String {
        if let renamed = renamed[name] { return renamed }
        return sanitize(name)
    }

    /// A valid Prometheus label name for `name`.
    static func labelName(_ name: String) -> String {
        if let renamed = renamedLabels[name] { return renamed }
        return sanitize(name)
    }

    static func sanitize(_ name: String) -> String {
        // Most names are valid already; checking bytes is much cheaper than rebuilding Characters,
        // and the factory sanitizes on every metric lookup.
        if name.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }) {
            return name
        }
        var out = ""
        for character in name {
            out.append(character.isLetter || character.isNumber || character == "_" ? character : "_")
        }
        return out
    }
}
