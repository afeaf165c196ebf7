import ConclaveCore
import ConclaveInference
import ConclaveTelemetry
import ConclaveTesting
import Foundation
import Testing

/// The replica pool and the provider publish their state to the Prometheus registry.
@Suite struct InferenceMetricsTests {
    @Test func poolAndProviderMetricsAppearInTheExposition() async throws {
        let registry = Telemetry.bootstrap(logLevel: .error)
        let upstream = FakeOpenAIServer(.answer("metrics are flowing"))
        try await upstream.run { url in
            let pool = ReplicaPool([url])
            let model = OpenAICompatibleChatModel(pool: pool)
            _ = try await model.stream(ChatRequest(messages: [.user("hi")])) { _ in }
            pool.remove("http://127.0.0.1:9/v1")  // a replica that left reads as open/gone
            let text = registry.emitToString()
            #expect(text.contains(#"conclave_inference_replica_in_flight{replica="\#(url)"} 0"#), "\(text)")
            #expect(text.contains(#"conclave_inference_replica_breaker{replica="\#(url)"} 0"#))
            // Pool-wide gauges (other tests' pools in this process write them too).
            #expect(text.contains("conclave_inference_replicas_ready ") && text.contains("conclave_inference_queue_depth "))
            #expect(text.contains("conclave_inference_time_to_first_token_seconds_count"))
            #expect(text.contains(#"conclave_inference_replica_breaker{replica="http://127.0.0.1:9/v1"} 2"#))
        }
    }
}
