import Metrics
import Synchronization

/// The metric handles of one pool, made once: looking a metric up by label and dimensions on
/// every call (several per request) cost more than the request's own work on the gateway path.
final class PoolInstruments: Sendable {
    let requestDuration: Metrics.Timer
    let timeToFirstToken: Metrics.Timer
    let promptTokens: Counter
    let completionTokens: Counter
    let replicasReady: Gauge
    let queueDepth: Gauge
    private let model: String
    private let perReplica = Mutex<[String: (inFlight: Gauge, breaker: Gauge)]>([:])
    private let errors = Mutex<[String: Counter]>([:])

    init(model: String) {
        self.model = model
        let dimensions = [("model", model)]
        requestDuration = Metrics.Timer(label: "conclave_inference_request_duration_seconds", dimensions: dimensions,
                                        preferredDisplayUnit: .seconds)
        timeToFirstToken = Metrics.Timer(label: "conclave_inference_time_to_first_token_seconds", dimensions: dimensions,
                                         preferredDisplayUnit: .seconds)
        promptTokens = Counter(label: "conclave_inference_tokens_total", dimensions: [("model", model), ("kind", "prompt")])
        completionTokens = Counter(label: "conclave_inference_tokens_total", dimensions: [("model", model), ("kind", "completion")])
        replicasReady = Gauge(label: "conclave_inference_replicas_ready", dimensions: dimensions)
        queueDepth = Gauge(label: "conclave_inference_queue_depth", dimensions: dimensions)
    }

    /// The in-flight and breaker gauges of a replica.
    func replica(_ url: String) -> (inFlight: Gauge, breaker: Gauge) {
        perReplica.withLock { gauges in
            if let found = gauges[url] { return found }
            let made = (Gauge(label: "conclave_inference_replica_in_flight", dimensions: [("model", model), ("replica", url)]),
                        Gauge(label: "conclave_inference_replica_breaker", dimensions: [("model", model), ("replica", url)]))
            gauges[url] = made
            return made
        }
    }

    /// Drops a removed replica's gauges, so that its series leave `/metrics` (a restarted local
    /// replica comes back on another port, under another `replica` label).
    func forget(_ url: String) {
        guard let gauges = perReplica.withLock({ $0.removeValue(forKey: url) }) else { return }
        gauges.inFlight.destroy()
        gauges.breaker.destroy()
    }

    /// The error counter of a kind.
    func errors(_ kind: String) -> Counter {
        errors.withLock { counters in
            if let found = counters[kind] { return found }
            let made = Counter(label: "conclave_inference_errors_total", dimensions: [("model", model), ("kind", kind)])
            counters[kind] = made
            return made
        }
    }
}
