import AsyncHTTPClient
import ConclaveCore
import ConclaveInference
import ConclaveServer
import ConclaveTesting
import Foundation
import NIOCore
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

    /// Streams one direct-route request, counting its first content in `started`; returns the whole SSE text.
    static func stream(_ url: String, _ text: String, started: Shared<Int>) async throws -> String {
        var request = HTTPClientRequest(url: url + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        let body = #"{"model":"smollm2","stream":true,"temperature":0,"seed":42,"max_tokens":160,"messages":[{"role":"user","content":\#(TestHTTP.quoted(text))}]}"#
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(300))
        var text = ""
        var counted = false
        for try await chunk in response.body {
            text += String(buffer: chunk)
            if !counted, text.range(of: #""content":"[^"]"#, options: .regularExpression) != nil {
                counted = true
                started.update { $0 += 1 }
            }
        }
        return text
    }

    @Test func killingOneOfTwoReplicasUnderLoadEndsOnlyItsStreamsInFlightWithAnErrorEvent() async throws {
        try await EmbeddedServer.with(replicas: 2) { server in
            let pool = try #require(server.runtime.pool)
            let victim = try #require(server.runtime.supervisors.last)
            let started = Shared(0)
            // Four streams in flight (two slots per replica), and four whole requests beside them.
            async let streams = withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<4 {
                    group.addTask { try await Self.stream(server.url, "Stream \(index): describe a long journey by truck in detail.", started: started) }
                }
                var texts: [String] = []
                for try await text in group { texts.append(text) }
                return texts
            }
            let deadline = ContinuousClock.now + .seconds(120)
            while started.value < 4, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(started.value == 4, "not every stream started")
            #expect(pool.status.allSatisfy { $0.inFlight > 0 }, "both replicas should be busy: \(pool.status)")
            async let whole = withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<4 {
                    group.addTask {
                        try await TestHTTP.send(.POST, server.url + "/v1/chat/completions", json: Self.direct("Whole \(index): say hello.")).status
                    }
                }
                var statuses: [Int] = []
                for try await status in group { statuses.append(status) }
                return statuses
            }
            let pid = try #require(victim.processID)
            kill(pid, SIGKILL)
            let texts = try await streams
            // Streams on the survivor finish; streams cut by the kill end with an error event, never [DONE].
            let finished = texts.filter { $0.hasSuffix("data: [DONE]\n\n") }
            let cut = texts.filter { $0.contains(#"data: {"error""#) }
            #expect(finished.count + cut.count == 4, "\(texts.map { $0.suffix(120) })")
            #expect(!cut.isEmpty, "no stream was cut by the kill")
            #expect(cut.allSatisfy { !$0.contains("[DONE]") })
            // Every whole request succeeds: on the survivor, or retried onto it.
            #expect(try await whole == [200, 200, 200, 200])
            // A stream started after the kill succeeds too.
            let after = try await Self.stream(server.url, "After the kill: say hello.", started: Shared(0))
            #expect(after.hasSuffix("data: [DONE]\n\n"), "\(after.suffix(200))")
            // The killed replica comes back.
            let back = try await Self.waitUntil(.seconds(120)) { pool.ready.count == 2 && victim.processID != pid }
            #expect(back)
        }
    }

    @Test func backendThatNeverAnswersFailsWithinItsTimeoutAndTheRealReplicaKeepsServing() async throws {
        try await EmbeddedServer.with(configure: { configuration in
            configuration.inference.requestTimeoutSeconds = 6
            // Open for the rest of the test, however long the real replica takes per answer (the
            // half-open probe after the open period is the unit tests' business).
            configuration.inference.breakerOpenSeconds = 600
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
                    // Either served by llama-server, or failed at the 6 s deadline: never a hang.
                    #expect(reply.status == 200 || reply.status == 504, "\(reply.status) \(reply.body)")
                    #expect(clock.now - started < .seconds(12))
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
