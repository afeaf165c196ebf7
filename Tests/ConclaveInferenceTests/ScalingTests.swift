import ConclaveCore
import ConclaveInference
import ConclaveTesting
import Testing

@Suite struct AutoscalerTests {
    let start = ContinuousClock.now
    let configuration = Autoscaler.Configuration(minReplicas: 1, maxReplicas: 3, targetOutstanding: 2,
                                                 scaleUpWindow: .seconds(10), scaleDownCooldown: .seconds(30))

    func at(_ seconds: Double) -> ContinuousClock.Instant { start + .milliseconds(Int64(seconds * 1000)) }

    @Test func loadAboveTargetForTheWholeWindowAddsAReplica() {
        var scaler = Autoscaler(configuration: configuration, started: start)
        #expect(scaler.observe(outstanding: 3, replicas: 1, now: at(0)) == .hold)
        #expect(scaler.observe(outstanding: 5, replicas: 1, now: at(9)) == .hold)
        #expect(scaler.observe(outstanding: 4, replicas: 1, now: at(10)) == .scaleUp)
        // The window starts again for the next replica.
        #expect(scaler.observe(outstanding: 9, replicas: 2, now: at(11)) == .hold)
        #expect(scaler.observe(outstanding: 9, replicas: 2, now: at(21)) == .scaleUp)
        // Never past the maximum.
        #expect(scaler.observe(outstanding: 50, replicas: 3, now: at(22)) == .hold)
        #expect(scaler.observe(outstanding: 50, replicas: 3, now: at(40)) == .hold)
    }

    @Test func aDipBelowTargetRestartsTheWindow() {
        var scaler = Autoscaler(configuration: configuration, started: start)
        #expect(scaler.observe(outstanding: 3, replicas: 1, now: at(0)) == .hold)
        #expect(scaler.observe(outstanding: 2, replicas: 1, now: at(5)) == .hold)   // at target: not above
        #expect(scaler.observe(outstanding: 3, replicas: 1, now: at(6)) == .hold)
        #expect(scaler.observe(outstanding: 3, replicas: 1, now: at(15)) == .hold)
        #expect(scaler.observe(outstanding: 3, replicas: 1, now: at(16)) == .scaleUp)
    }

    @Test func scaleDownWaitsForTheCooldownAndStopsAtTheMinimum() {
        var scaler = Autoscaler(configuration: configuration, started: start)
        // Two replicas, load that one replica could carry (≤ 2), for less than the cooldown: hold.
        #expect(scaler.observe(outstanding: 2, replicas: 2, now: at(0)) == .hold)
        #expect(scaler.observe(outstanding: 1, replicas: 2, now: at(29)) == .hold)
        #expect(scaler.observe(outstanding: 0, replicas: 2, now: at(30)) == .scaleDown)
        // At the minimum nothing more goes.
        #expect(scaler.observe(outstanding: 0, replicas: 1, now: at(100)) == .hold)
    }

    @Test func loadThatNeedsEveryReplicaKeepsThem() {
        var scaler = Autoscaler(configuration: configuration, started: start)
        // 3 outstanding over 2 replicas: one fewer would be above target, so both stay.
        for second in stride(from: 0.0, through: 120, by: 5) {
            #expect(scaler.observe(outstanding: 3, replicas: 2, now: at(second)) == .hold)
        }
    }

    @Test func scaleDownWaitsForTheCooldownAfterTheLastChange() {
        var scaler = Autoscaler(configuration: configuration, started: start)
        #expect(scaler.observe(outstanding: 5, replicas: 1, now: at(0)) == .hold)
        #expect(scaler.observe(outstanding: 5, replicas: 1, now: at(10)) == .scaleUp)
        // Load vanishes at once, but the replica just added is kept for a whole cooldown.
        #expect(scaler.observe(outstanding: 0, replicas: 2, now: at(11)) == .hold)
        #expect(scaler.observe(outstanding: 0, replicas: 2, now: at(39)) == .hold)
        #expect(scaler.observe(outstanding: 0, replicas: 2, now: at(41)) == .scaleDown)
    }

    @Test func belowTheMinimumScalesUpAtOnce() {
        var scaler = Autoscaler(configuration: .init(minReplicas: 2, maxReplicas: 3), started: start)
        #expect(scaler.observe(outstanding: 0, replicas: 1, now: at(0)) == .scaleUp)
    }
}

@Suite struct RetryPolicyTests {
    @Test func backoffDoublesWithinItsJitterAndStopsAtTheCap() {
        let policy = ReplicaPool.RetryPolicy(maxAttempts: 5, backoff: .milliseconds(50), maxBackoff: .milliseconds(300))
        for retry in 1...6 {
            let base = 50.0 * Double(1 << (retry - 1))
            for _ in 0..<200 {
                let delay = policy.delay(beforeRetry: retry)
                let ms = Double(delay.components.seconds) * 1000 + Double(delay.components.attoseconds) / 1e15
                #expect(ms >= min(300, base * 0.5) - 0.001 && ms <= min(300, base * 1.5) + 0.001, "retry \(retry): \(ms) ms")
            }
        }
    }

    @Test func onlyTheReplicasFaultsAreRetried() {
        #expect(ReplicaPool.RetryPolicy.isReplicaFault(ConclaveError(.modelUnavailable, "down")))
        #expect(ReplicaPool.RetryPolicy.isReplicaFault(ConclaveError(.timeout, "slow")))
        #expect(!ReplicaPool.RetryPolicy.isReplicaFault(ConclaveError(.modelFailed, "HTTP 400")))
        #expect(!ReplicaPool.RetryPolicy.isReplicaFault(ConclaveError(.invalidRequest, "bad")))
        #expect(!ReplicaPool.RetryPolicy.isReplicaFault(CancellationError()))
    }
}

@Suite struct PoolHealthAndDrainTests {
    @Test func failingHealthChecksTakeAReplicaOutOfRotationAndSuccessBringsItBack() async throws {
        let sick = FakeOpenAIServer(.answer("from sick"))
        let well = FakeOpenAIServer(.answer("from well"))
        try await sick.run { sickURL in
            try await well.run { wellURL in
                let pool = ReplicaPool([sickURL, wellURL])
                let checker = HealthChecker(pool: pool, interval: .milliseconds(20), timeout: .milliseconds(500), failureThreshold: 3)
                sick.setHealthy(false)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await checker.run() }
                    defer { group.cancelAll() }
                    try await eventually { pool.ready == [wellURL] }
                    #expect(pool.status.first { $0.url == sickURL }?.healthy == false)
                    // Every call goes to the healthy replica.
                    let model = OpenAICompatibleChatModel(pool: pool)
                    for _ in 0..<10 { #expect(try await model.complete(request()).content == "from well") }
                    #expect(sick.callCount == 0)
                    sick.setHealthy(true)
                    try await eventually { pool.ready.count == 2 }
                }
            }
        }
    }

    @Test func unreachableReplicaFailsItsHealthChecks() async throws {
        let pool = ReplicaPool(["http://127.0.0.1:9/v1"])
        let checker = HealthChecker(pool: pool, interval: .milliseconds(20), timeout: .milliseconds(300), failureThreshold: 2)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await checker.run() }
            defer { group.cancelAll() }
            try await eventually { pool.ready.isEmpty }
        }
        let refused = await #expect(throws: ConclaveError.self) { try await pool.acquire() }
        #expect(refused?.code == .modelUnavailable)
    }

    @Test func anAnswerBelow500IsUpAndA5xxOrNoAnswerIsDown() async throws {
        let upstream = FakeOpenAIServer(.answer("up"))
        try await upstream.run { url in
            let pool = ReplicaPool([url])
            // A backend without the route (a hosted API) answers 404: it is up.
            #expect(await HealthChecker(pool: pool, path: "/v1/health", timeout: .seconds(30)).isHealthy(url))
            let checker = HealthChecker(pool: pool, timeout: .seconds(30))
            #expect(await checker.isHealthy(url))
            upstream.setHealthy(false)   // 503, as llama.cpp while it loads
            #expect(await checker.isHealthy(url) == false)
        }
        #expect(await HealthChecker(pool: ReplicaPool(), timeout: .seconds(5)).isHealthy("http://127.0.0.1:9/v1") == false)
    }

    @Test func healthURLDropsTheAPIPrefix() {
        #expect(HealthChecker.healthURL(base: "http://h:8000/v1", path: "/health") == "http://h:8000/health")
        #expect(HealthChecker.healthURL(base: "http://h:8000/v1/", path: "/v1/models") == "http://h:8000/v1/models")
        #expect(HealthChecker.healthURL(base: "http://h:8000", path: "/health") == "http://h:8000/health")
    }

    @Test func drainingReplicaGetsNoNewCallsAndWaitsForItsCallsInFlight() async throws {
        let pool = ReplicaPool(["http://a/v1", "http://b/v1"])
        var held: ReplicaPool.Lease?
        while held?.url != "http://a/v1" {
            if let other = held { pool.release(other, success: true) }
            held = try await pool.acquire()
        }
        let lease = try #require(held)
        let clock = ContinuousClock()
        let started = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.drain("http://a/v1", timeout: .seconds(120)) }
            try await eventually { pool.status.first { $0.url == "http://a/v1" }?.draining == true }
            for _ in 0..<10 {
                let next = try await pool.acquire()
                #expect(next.url == "http://b/v1")
                pool.release(next, success: true)
            }
            try await Task.sleep(for: .milliseconds(100))
            #expect(pool.status.contains { $0.url == "http://a/v1" }, "removed before its call finished")
            pool.release(lease, success: true)
            try await group.waitForAll()
        }
        #expect(pool.status.map(\.url) == ["http://b/v1"])
        // It returned when the call finished, not at its (long) timeout.
        #expect(clock.now - started < .seconds(60))
    }

    @Test func drainGivesUpAtItsTimeout() async throws {
        let pool = ReplicaPool(["http://a/v1"])
        let lease = try await pool.acquire()
        await pool.drain("http://a/v1", timeout: .milliseconds(100))
        #expect(pool.status.isEmpty)
        pool.release(lease, success: true)   // a late release of a removed replica is harmless
        #expect(pool.load.outstanding == 0)
    }

    @Test func backendThatDoesNotAcceptFailsAtTheConnectTimeoutAndIsRetriedElsewhere() async throws {
        let silent = try UnacceptingListener()
        defer { silent.stop() }
        let good = FakeOpenAIServer(.answer("connected"))
        try await good.run { goodURL in
            let pool = ReplicaPool([silent.url, goodURL])
            let model = OpenAICompatibleChatModel(
                pool: pool, client: InferenceHTTPClient.shared(connectTimeout: .milliseconds(200)),
                configuration: .init(timeout: .seconds(30), retryBackoff: .milliseconds(1)))
            let clock = ContinuousClock()
            for _ in 0..<4 {
                let started = clock.now
                let answer = try await model.complete(request()).content
                #expect(answer == "connected")
                // A connect timeout, not the call's 30 s deadline, bounds the wait.
                #expect(clock.now - started < .seconds(3))
            }
        }
    }

    @Test func refusedConnectionFailsAtOnceAndIsRetriedElsewhere() async throws {
        let good = FakeOpenAIServer(.answer("elsewhere"))
        try await good.run { goodURL in
            // Port 9 on loopback refuses; the connect timeout (5 s) must not be what ends the attempt.
            let pool = ReplicaPool(["http://127.0.0.1:9/v1", goodURL])
            let model = OpenAICompatibleChatModel(pool: pool, client: InferenceHTTPClient.shared(connectTimeout: .seconds(5)),
                                                  configuration: .init(timeout: .seconds(30), retryBackoff: .milliseconds(1)))
            let clock = ContinuousClock()
            for _ in 0..<4 {
                let started = clock.now
                let answer = try await model.complete(request()).content
                #expect(answer == "elsewhere")
                #expect(clock.now - started < .seconds(4))
            }
        }
    }

    @Test func namedModelEmbeddingsComeBackInInputOrder() async throws {
        let upstream = FakeOpenAIServer(.answer("unused"))
        try await upstream.run { url in
            let embeddings = OpenAICompatibleEmbeddings(pool: ReplicaPool([url]), model: "fake-embedder")
            let texts = ["one", "two words", "three little words"]
            let result = try await embeddings.embed(texts)
            #expect(result.vectors == texts.map(FakeOpenAIServer.embedding(of:)))
            #expect(result.promptTokens == 6)
            #expect(upstream.embeddingCallCount == 1)
        }
    }
}

private func request() -> ChatRequest {
    ChatRequest(messages: [.user("hello")], temperature: 0, maxTokens: 8)
}

/// Waits (at most 60 s: the whole suite shares two cores) until `condition` holds.
func eventually(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within 60 s")
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}
