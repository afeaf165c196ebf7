import ConclaveCore
import ConclaveInference
import ConclaveServer
import ConclaveTesting
import Foundation
import Synchronization
import Testing

/// The inference layer against real `llama-server` processes: the autoscaler, and a backend that
/// accepts connections but never answers. Assertions are about the platform (replicas, status
/// codes, time bounds), never the model's wording.
@Suite(.serialized) struct InferenceScalingTests {
    static func direct(_ text: String, maxTokens: Int = 48) -> String {
        #"{"model":"smollm2","temperature":0,"seed":42,"max_tokens":\#(maxTokens),"messages":[{"role":"user","content":\#(TestHTTP.quoted(text))}]}"#
    }

    static func waitUntil(_ limit: Duration, _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(100))
        }
        return true
    }

    @Test func autoscalerAddsAReplicaUnderSustainedLoadAndDrainsItAfterwards() async throws {
        try await EmbeddedServer.with(configure: { configuration in
            configuration.inference.autoscale = AutoscaleConfiguration(
                enabled: true, minReplicas: 1, maxReplicas: 2, targetOutstanding: 1, scaleUpWindowSeconds: 1,
                scaleDownCooldownSeconds: 3, intervalSeconds: 0.2)
        }) { server in
            let replicaSet = try #require(server.runtime.replicaSet)
            let pool = try #require(server.runtime.pool)
            #expect(replicaSet.desired == 1 && pool.ready.count == 1)
            // Sustained load: four clients back to back, twice what one replica's target allows.
            let stop = Shared(false)
            let failures = Shared(0)
            let scaledUp = try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<4 {
                    group.addTask {
                        var turn = 0
                        while !stop.value {
                            turn += 1
                            let reply = try await TestHTTP.send(.POST, server.url + "/v1/chat/completions",
                                                                json: Self.direct("Client \(client), turn \(turn): name a colour."))
                            if reply.status != 200 { failures.update { $0 += 1 } }
                        }
                    }
                }
                let reached = try await Self.waitUntil(.seconds(150)) { pool.ready.count == 2 }
                stop.update { $0 = true }
                try await group.waitForAll()
                return reached
            }
            #expect(scaledUp, "the autoscaler did not bring a second replica up")
            #expect(failures.value == 0, "requests failed while scaling up")
            #expect(replicaSet.events.first?.direction == .scaleUp)
            #expect(replicaSet.events.first.map { $0.from == 1 && $0.to == 2 } == true)
            // Load gone: after the cooldown one replica is drained and stopped.
            let scaledDown = try await Self.waitUntil(.seconds(60)) { replicaSet.desired == 1 && pool.status.count == 1 }
            #expect(scaledDown, "the autoscaler did not scale back down: \(replicaSet.events)")
            #expect(replicaSet.events.last?.direction == .scaleDown)
            // The survivor serves.
            let reply = try await TestHTTP.send(.POST, server.url + "/v1/chat/completions", json: Self.direct("Still there?"))
            #expect(reply.status == 200, "\(reply.body)")
            let admin = try await TestHTTP.send(.GET, server.url + "/admin/inference")
            let autoscaler = admin.json?["autoscaler"] as? [String: Any]
            #expect(autoscaler?["enabled"] as? Bool == true)
            #expect((autoscaler?["events"] as? [[String: Any]])?.compactMap { $0["direction"] as? String }.suffix(2) == ["scale_up", "scale_down"])
        }
    }

    @Test func backendThatNeverAnswersFailsWithinItsTimeoutAndTheRealReplicaKeepsServing() async throws {
        try await EmbeddedServer.with(configure: { configuration in
            configuration.inference.requestTimeoutSeconds = 2
        }) { server in
            let pool = try #require(server.runtime.pool)
            let hang = FakeOpenAIServer(.hang)
            try await hang.run { hangURL in
                pool.add(hangURL)
                let clock = ContinuousClock()
                var statuses: [Int] = []
                // Until the silent replica has had its three strikes (bounded).
                for turn in 0..<20 where hang.callCount < 3 {
                    let started = clock.now
                    let reply = try await TestHTTP.send(.POST, server.url + "/v1/chat/completions", json: Self.direct("Turn \(turn).", maxTokens: 8))
                    // Either served by llama-server, or failed at the 2 s deadline: never a hang.
                    #expect(reply.status == 200 || reply.status == 504, "\(reply.status) \(reply.body)")
                    #expect(clock.now - started < .seconds(6))
                    statuses.append(reply.status)
                }
                #expect(hang.callCount == 3)
                #expect(pool.status.first { $0.url == hangURL }?.breaker == .open)
                // With its breaker open the silent replica gets nothing; every request succeeds.
                for turn in 0..<3 {
                    let reply = try await TestHTTP.send(.POST, server.url + "/v1/chat/completions", json: Self.direct("After \(turn).", maxTokens: 8))
                    #expect(reply.status == 200, "\(reply.body)")
                }
                #expect(hang.callCount == 3)
                #expect(statuses.filter { $0 == 504 }.count == 3, "one 504 per call the silent replica swallowed: \(statuses)")
            }
        }
    }
}

/// A value shared by concurrent test tasks.
final class Shared<Value: Sendable>: Sendable {
    private let box: Mutex<Value>
    init(_ value: Value) { box = Mutex(value) }
    var value: Value { box.withLock { $0 } }
    func update(_ change: (inout Value) -> Void) { box.withLock { change(&$0) } }
}
