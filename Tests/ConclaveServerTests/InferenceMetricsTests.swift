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
            let pool = ReplicaPool([url], model: "metrics-test")
            let model = OpenAICompatibleChatModel(pool: pool)
            _ = try await model.stream(ChatRequest(messages: [.user("hi")])) { _ in }
            _ = try await model.complete(ChatRequest(messages: [.user("hi")]))
            // A replica that leaves the pool takes its series with it.
            pool.add("http://127.0.0.1:9/v1")
            #expect(registry.emitToString().contains(#"{model="metrics-test",replica="http://127.0.0.1:9/v1"}"#))
            pool.remove("http://127.0.0.1:9/v1")
            let text = registry.emitToString()
            #expect(text.contains(#"conclave_inference_replica_in_flight{model="metrics-test",replica="\#(url)"} 0"#), "\(text)")
            #expect(text.contains(#"conclave_inference_replica_breaker{model="metrics-test",replica="\#(url)"} 0"#))
            #expect(text.contains(#"conclave_inference_replicas_ready{model="metrics-test"} 1"#))
            #expect(text.contains(#"conclave_inference_queue_depth{model="metrics-test"} 0"#))
            #expect(text.contains(#"conclave_inference_time_to_first_token_seconds_count{model="metrics-test"} 1"#))
            #expect(text.contains(#"conclave_inference_request_duration_seconds_count{model="metrics-test"} 2"#))
            // The fake counts 3 prompt and 2 completion tokens for a whole answer.
            #expect(text.contains(#"conclave_inference_tokens_total{model="metrics-test",kind="prompt"} 3"#))
            #expect(!text.contains(#"{model="metrics-test",replica="http://127.0.0.1:9/v1"}"#), "\(text)")
        }
    }
}
