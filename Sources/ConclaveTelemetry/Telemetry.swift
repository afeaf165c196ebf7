import ConclaveCore
import Logging
import Metrics
import Prometheus
import Synchronization

/// Process-wide logging and metrics bootstrap. swift-log and swift-metrics allow one bootstrap per
/// process, so this is idempotent: the first call wins and later calls return the same registry.
public enum Telemetry {
    private static let state = Mutex<PrometheusCollectorRegistry?>(nil)

    /// Bootstraps logging at `level` and metrics into a Prometheus registry, once per process.
    @discardableResult
    public static func bootstrap(logLevel: LoggingConfiguration.Level = .info) -> PrometheusCollectorRegistry {
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
                (sanitize(name), labels.map { (sanitize($0.0), $0.1) })
            }
            MetricsSystem.bootstrap(factory)
            let level = Logger.Level(rawValue: logLevel.rawValue) ?? .info
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            registry = created
            return created
        }
    }

    /// The registry, if ``bootstrap(logLevel:)`` has run.
    public static var registry: PrometheusCollectorRegistry? { state.withLock { $0 } }

    /// Prometheus names: snake_case, `conclave_` prefix for metrics from libraries (Hummingbird's
    /// `http.server.requests` becomes `conclave_http_server_requests`).
    static func sanitize(_ name: String) -> String {
        var out = ""
        for character in name {
            out.append(character.isLetter || character.isNumber || character == "_" ? character : "_")
        }
        if !out.hasPrefix("conclave_") && (name.hasPrefix("http.") || name.hasPrefix("hb")) { out = "conclave_" + out }
        return out
    }
}
