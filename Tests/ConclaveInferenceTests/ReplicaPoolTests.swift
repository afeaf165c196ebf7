import ConclaveCore
import ConclaveInference
import ConclaveTesting
import Testing

@Suite struct ReplicaPoolTests {
    @Test func balancingPicksTheLessLoadedReplica() async throws {
        let pool = ReplicaPool(["http://a/v1", "http://b/v1"])
        let first = try await pool.acquire()
        // With two replicas both are sampled, so the idle one wins every time.
        for _ in 0..<20 {
            let next = try await pool.acquire()
            #expect(next.url != first.url)
            pool.release(next, success: true)
        }
        pool.release(first, success: true)
        #expect(pool.status.allSatisfy { $0.inFlight == 0 })
    }

    @Test func breakerOpensHalfOpensAndCloses() async throws {
        let pool = ReplicaPool(["http://a/v1"], configuration: .init(failureThreshold: 2, openDuration: .milliseconds(100)))
        for _ in 0..<2 {
            let lease = try await pool.acquire()
            pool.release(lease, success: false)
        }
        #expect(pool.status.first?.breaker == .open)
        #expect(pool.ready.isEmpty)
        let refused = await #expect(throws: ConclaveError.self) { try await pool.acquire() }
        #expect(refused?.code == .modelUnavailable)
        try await Task.sleep(for: .milliseconds(150))
        // One probe is let through; a failed probe opens the breaker again.
        let probe = try await pool.acquire()
        #expect(pool.status.first?.breaker == .halfOpen)
        pool.release(probe, success: false)
        #expect(pool.status.first?.breaker == .open)
        try await Task.sleep(for: .milliseconds(150))
        let second = try await pool.acquire()
        pool.release(second, success: true)
        #expect(pool.status.first?.breaker == .closed)
        #expect(pool.status.first?.consecutiveFailures == 0)
    }

    @Test func saturatedPoolQueuesThenRefuses() async throws {
        let pool = ReplicaPool(["http://a/v1"], configuration: .init(maxInFlightPerReplica: 1, maxQueued: 1))
        let held = try await pool.acquire()
        let waiting = Task { try await pool.acquire() }
        while pool.queued == 0 { await Task.yield() }
        let refused = await #expect(throws: ConclaveError.self) { try await pool.acquire() }
        #expect(refused?.code == .modelUnavailable)
        pool.release(held, success: true)
        let granted = try await waiting.value
        #expect(granted.url == "http://a/v1")
        pool.release(granted, success: true)
    }

    @Test func cancelledWaiterLeavesTheQueue() async throws {
        let pool = ReplicaPool(["http://a/v1"], configuration: .init(maxInFlightPerReplica: 1, maxQueued: 4))
        let held = try await pool.acquire()
        let waiting = Task { try await pool.acquire() }
        while pool.queued == 0 { await Task.yield() }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(pool.queued == 0)
        pool.release(held, success: true)
    }

    @Test func timeoutsCountOnlyAgainstAReplicaThatAnswersNobody() async throws {
        let pool = ReplicaPool(["http://a/v1"], configuration: .init(failureThreshold: 2))
        // Busy: another call succeeded after these two began, so their timeouts were the callers' deadlines.
        let slow = [try await pool.acquire(), try await pool.acquire()]
        pool.release(try await pool.acquire(), outcome: .success)
        for lease in slow { pool.release(lease, outcome: .timeout) }
        #expect(pool.status.first?.breaker == .closed)
        #expect(pool.status.first?.consecutiveFailures == 0)
        // Hung: nothing succeeded since these began (the earlier success predates them).
        let silent = [try await pool.acquire(), try await pool.acquire()]
        for lease in silent { pool.release(lease, outcome: .timeout) }
        #expect(pool.status.first?.breaker == .open)
    }

    @Test func aCancelledCallTeachesTheBreakerNothingAndACancelledProbeLetsTheNextCallProbe() async throws {
        let pool = ReplicaPool(["http://a/v1"], configuration: .init(failureThreshold: 2, openDuration: .milliseconds(50)))
        pool.release(try await pool.acquire(), outcome: .failure)
        pool.release(try await pool.acquire(), outcome: .cancelled)
        #expect(pool.status.first?.consecutiveFailures == 1 && pool.status.first?.breaker == .closed)
        pool.release(try await pool.acquire(), outcome: .failure)
        #expect(pool.status.first?.breaker == .open)
        try await Task.sleep(for: .milliseconds(80))
        let probe = try await pool.acquire()
        #expect(pool.status.first?.breaker == .halfOpen)
        pool.release(probe, outcome: .cancelled)
        #expect(pool.status.first?.breaker == .open)
        // The probe is due again at once rather than after another open period.
        let next = try await pool.acquire()
        pool.release(next, outcome: .success)
        #expect(pool.status.first?.breaker == .closed)
    }

    @Test func emptyPoolIsUnavailable() async throws {
        let error = await #expect(throws: ConclaveError.self) { try await ReplicaPool().acquire() }
        #expect(error?.code == .modelUnavailable)
    }
}

@Suite struct OpenAICompatibleChatModelTests {
    private func request() -> ChatRequest {
        ChatRequest(messages: [.user("hello")], temperature: 0, maxTokens: 8)
    }

    @Test func failingReplicaIsRetriedOnAnother() async throws {
        let bad = FakeOpenAIServer(.status(503))
        let good = FakeOpenAIServer(.answer("all good"))
        try await bad.run { badURL in
            try await good.run { goodURL in
                let pool = ReplicaPool([badURL, goodURL])
                let model = OpenAICompatibleChatModel(pool: pool, configuration: .init(retryBackoff: .milliseconds(1)))
                // Every call succeeds, whichever replica balancing picks first.
                var calls = 0
                while bad.callCount < 3 && calls < 200 {
                    let response = try await model.complete(request())
                    #expect(response.content == "all good")
                    calls += 1
                }
                #expect(good.callCount == calls)
                // Three consecutive failures opened the failing replica's breaker; it gets no more calls.
                #expect(bad.callCount == 3)
                #expect(pool.status.first { $0.url == badURL }?.breaker == .open)
                for _ in 0..<5 { _ = try await model.complete(request()) }
                #expect(bad.callCount == 3)
                #expect(good.callCount == calls + 5)
            }
        }
    }

    @Test func aRetryWaitsForABusyOtherReplicaRatherThanReturnToTheOneThatFailed() async throws {
        let pool = ReplicaPool(["http://a/v1", "http://b/v1"], configuration: .init(maxInFlightPerReplica: 1))
        let first = try await pool.acquire(avoiding: ["http://b/v1"])
        #expect(first.url == "http://a/v1")
        // b failed this caller; a is busy: the retry waits for a instead of taking b again.
        let retry = Task { try await pool.acquire(avoiding: ["http://b/v1"]) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(pool.queued == 1)
        // A fresh caller still gets b meanwhile.
        let fresh = try await pool.acquire()
        #expect(fresh.url == "http://b/v1")
        pool.release(first, success: true)
        #expect(try await retry.value.url == "http://a/v1")
        // When no other replica serves at all (a is gone), a retry may go back to the one it tried.
        pool.remove("http://a/v1")
        pool.release(fresh, success: true)
        #expect(try await pool.acquire(avoiding: ["http://b/v1"]).url == "http://b/v1")
    }

    /// A retry survives a moment with no replica serving (the chaos test's kills: one replica
    /// killed while the other still loads its model); a fresh request is refused at once.
    @Test func aRetryWaitsForAReplicaToComeBackWithinItsDeadline() async throws {
        let pool = ReplicaPool(["http://a/v1"])
        pool.setHealth("http://a/v1", healthy: false)
        await #expect(throws: ConclaveError.self) { try await pool.acquire() }
        let started = ContinuousClock.now
        await #expect(throws: ConclaveError.self) {
            try await pool.acquire(avoiding: ["http://a/v1"], replicaDeadline: .now + .milliseconds(500))
        }
        #expect(ContinuousClock.now - started >= .milliseconds(250))
        let retry = Task { try await pool.acquire(avoiding: ["http://a/v1"], replicaDeadline: .now + .seconds(30)) }
        try await Task.sleep(for: .milliseconds(300))
        pool.setHealth("http://a/v1", healthy: true)
        #expect(try await retry.value.url == "http://a/v1")
    }

    @Test func anEndpointThatDemandsAClientCertificateIsReachedOverMutualTLS() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let upstream = FakeOpenAIServer(.answer("over tls"))
        try await upstream.run(tls: certificates) { url in
            #expect(url.hasPrefix("https://"))
            let tls = InferenceHTTPClient.TLS(caFile: certificates.caFile, certFile: certificates.clientCertFile,
                                              keyFile: certificates.clientKeyFile)
            let client = try InferenceHTTPClient.shared(connectTimeout: .seconds(2), tls: tls)
            let model = OpenAICompatibleChatModel(pool: ReplicaPool([url]), client: client, configuration: .init(retryBackoff: .milliseconds(1)))
            #expect(try await model.complete(request()).content == "over tls")
            // Trusting the CA without a client certificate, or not trusting the CA: refused.
            for refused in [InferenceHTTPClient.TLS(caFile: certificates.caFile), InferenceHTTPClient.TLS()] {
                let other = OpenAICompatibleChatModel(pool: ReplicaPool([url]),
                                                      client: try InferenceHTTPClient.shared(connectTimeout: .seconds(2), tls: refused),
                                                      configuration: .init(maxAttempts: 1, retryBackoff: .milliseconds(1)))
                await #expect(throws: (any Error).self) { _ = try await other.complete(request()) }
            }
            #expect(upstream.callCount == 1)
        }
        // A file that cannot be loaded names its key.
        #expect(throws: ConfigurationError.self) {
            _ = try InferenceHTTPClient.shared(connectTimeout: .seconds(2), tls: .init(caFile: "/nonexistent/ca.pem"))
        }
    }

    @Test func badRequestIsNotRetried() async throws {
        let upstream = FakeOpenAIServer(.status(400))
        try await upstream.run { url in
            let model = OpenAICompatibleChatModel(pool: ReplicaPool([url]), configuration: .init(retryBackoff: .milliseconds(1)))
            let error = await #expect(throws: ConclaveError.self) { try await model.complete(request()) }
            #expect(error?.code == .modelFailed)
            #expect(upstream.callCount == 1)
        }
    }

    @Test func streamCutAfterItsFirstTokenFailsWithoutRetry() async throws {
        let cut = FakeOpenAIServer(.cutStream("partial answer here"))
        try await cut.run { url in
            let model = OpenAICompatibleChatModel(pool: ReplicaPool([url]), configuration: .init(retryBackoff: .milliseconds(1)))
            let received = TextBox()
            await #expect(throws: ConclaveError.self) {
                _ = try await model.stream(request()) { received.append($0) }
            }
            #expect(received.text == "partial answer here")
            #expect(cut.callCount == 1)
        }
    }

    @Test func streamFailingBeforeItsFirstTokenIsRetried() async throws {
        let bad = FakeOpenAIServer(.status(502))
        let good = FakeOpenAIServer(.answer("streamed fine"))
        try await bad.run { badURL in
            try await good.run { goodURL in
                let model = OpenAICompatibleChatModel(pool: ReplicaPool([badURL, goodURL]),
                                                      configuration: .init(retryBackoff: .milliseconds(1)))
                for _ in 0..<3 {
                    let received = TextBox()
                    let response = try await model.stream(request()) { received.append($0) }
                    #expect(response.content == "streamed fine")
                    #expect(received.text == "streamed fine")
                }
            }
        }
    }

    @Test func affinityKeepsAKeyOnOneReplicaWhileItHasRoom() async throws {
        let urls = ["http://a/v1", "http://b/v1", "http://c/v1"]
        let pool = ReplicaPool(urls, configuration: .init(maxInFlightPerReplica: 1))
        var homes: [String: String] = [:]
        for key in (0..<30).map({ "conversation-\($0)" }) {
            let lease = try await pool.acquire(affinity: key)
            pool.release(lease, success: true)
            let again = try await pool.acquire(affinity: key)
            pool.release(again, success: true)
            #expect(lease.url == again.url)
            homes[key] = lease.url
        }
        // Keys spread over the replicas rather than piling onto one.
        #expect(Set(homes.values).count == 3)
        // A saturated home sends the call elsewhere instead of queueing it.
        let key = "conversation-0"
        let held = try await pool.acquire(affinity: key)
        let other = try await pool.acquire(affinity: key)
        #expect(held.url == homes[key] && other.url != held.url)
        pool.release(held, success: true)
        pool.release(other, success: true)
    }
}

/// Deadlines of a few hundred milliseconds, measured: `scripts/test.sh` runs the suites named
/// `…DeadlineTests` with the integration tests, one at a time, because among the hundreds of unit
/// tests run in parallel on two cores a ready answer can wait longer than such a deadline for a
/// thread (the first test below then saw the good replica time out as well).
@Suite struct OpenAICompatibleChatModelDeadlineTests {
    private func request() -> ChatRequest {
        ChatRequest(messages: [.user("hello")], temperature: 0, maxTokens: 8)
    }

    @Test func streamWithoutAFirstTokenIsAbandonedAndRetriedElsewhere() async throws {
        let hang = FakeOpenAIServer(.hang)
        let good = FakeOpenAIServer(.answer("here at last"))
        try await hang.run { hangURL in
            try await good.run { goodURL in
                let pool = ReplicaPool([hangURL, goodURL])
                let model = OpenAICompatibleChatModel(pool: pool, configuration: .init(
                    timeout: .seconds(30), retryBackoff: .milliseconds(1), firstTokenTimeout: .milliseconds(300)))
                let clock = ContinuousClock()
                for _ in 0..<3 {
                    let start = clock.now
                    let received = TextBox()
                    let response = try await model.stream(request()) { received.append($0) }
                    #expect(response.content == "here at last" && received.text == "here at last")
                    #expect(clock.now - start < .seconds(5))
                }
            }
        }
    }

    @Test func hangingBackendFailsWithinItsTimeout() async throws {
        let hang = FakeOpenAIServer(.hang)
        try await hang.run { url in
            let model = OpenAICompatibleChatModel(pool: ReplicaPool([url]),
                                                  configuration: .init(timeout: .milliseconds(300), maxAttempts: 1))
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: ConclaveError.self) { try await model.complete(request()) }
            #expect(error?.code == .timeout)
            #expect(clock.now - start < .seconds(5))
        }
    }
}

/// Collects streamed text (test helper).
final class TextBox: Sendable {
    private let value = Mutex("")
    var text: String { value.withLock { $0 } }
    func append(_ piece: String) { value.withLock { $0 += piece } }
}

import Synchronization
