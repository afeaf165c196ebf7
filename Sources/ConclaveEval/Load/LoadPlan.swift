import AsyncHTTPClient
import ConclaveCore
import Foundation
import NIOCore
import Synchronization

/// What a load run sends: the model (a workflow or a direct model), the levels (closed-loop users
/// or open-loop arrival rates), how long each lasts, and the questions.
public struct LoadPlan: Sendable, Codable, Hashable {
    /// `closed` (users) or `open` (Poisson arrivals).
    public enum Mode: String, Sendable, Codable, Hashable {
        case closed, open
    }

    /// The `model` field of every request.
    public var model: String
    /// Closed or open loop.
    public var mode: Mode
    /// Users (closed) or arrivals per second (open), one level each.
    public var levels: [Double]
    /// Seconds per level.
    public var durationSeconds: Double
    /// Closed loop: pause between a user's requests.
    public var thinkMilliseconds: Int
    /// Seed of the arrivals and the question order.
    public var seed: UInt64
    /// Most tokens per answer.
    public var maxTokens: Int
    /// Stream the answers.
    public var stream: Bool
    /// SIGKILL a local llama-server replica this often (0: never).
    public var killReplicaEverySeconds: Double

    enum CodingKeys: String, CodingKey {
        case model, mode, levels, seed, stream
        case durationSeconds = "duration_seconds"
        case thinkMilliseconds = "think_ms"
        case maxTokens = "max_tokens"
        case killReplicaEverySeconds = "kill_replica_every_seconds"
    }

    /// Creates a plan.
    public init(model: String, mode: Mode = .closed, levels: [Double], durationSeconds: Double = 30, thinkMilliseconds: Int = 0,
                seed: UInt64 = 42, maxTokens: Int = 96, stream: Bool = false, killReplicaEverySeconds: Double = 0) {
        self.model = model
        self.mode = mode
        self.levels = levels
        self.durationSeconds = durationSeconds
        self.thinkMilliseconds = thinkMilliseconds
        self.seed = seed
        self.maxTokens = maxTokens
        self.stream = stream
        self.killReplicaEverySeconds = killReplicaEverySeconds
    }

    /// One level's numbers.
    public struct LevelResult: Sendable, Codable, Hashable {
        /// Users or arrivals per second.
        public var level: Double
        public var sent: Int
        public var errors: Int
        public var availability: Double
        public var throughput: Double
        public var meanMilliseconds: Double
        public var p50Milliseconds: Double
        public var p95Milliseconds: Double
        public var p99Milliseconds: Double
        public var maxMilliseconds: Double
        public var timeToFirstTokenP50Milliseconds: Double?
        public var replicasKilled: Int
        /// Streaming only: started streams that ended with an error event (failed, and said so).
        public var streamsEndedWithError: Int?
        /// Streaming only: started streams that ended with neither `[DONE]` nor an error event.
        public var streamsCut: Int?

        enum CodingKeys: String, CodingKey {
            case level, sent, errors, availability, throughput
            case meanMilliseconds = "mean_ms"
            case p50Milliseconds = "p50_ms"
            case p95Milliseconds = "p95_ms"
            case p99Milliseconds = "p99_ms"
            case maxMilliseconds = "max_ms"
            case timeToFirstTokenP50Milliseconds = "ttft_p50_ms"
            case replicasKilled = "replicas_killed"
            case streamsEndedWithError = "streams_ended_with_error"
            case streamsCut = "streams_cut"
        }
    }

    /// Runs every level against the server at `url` with `questions` as traffic, showing a
    /// progress line on stderr when `showProgress`. Several gateways of one cluster may be given
    /// comma-separated: closed-loop user `i` (open-loop arrival `i`) uses gateway `i mod n`.
    public func run(url: String, bearer: String?, questions: [String], timeout: Duration = .seconds(300),
                    showProgress: Bool = true) async -> [LevelResult] {
        var order = SplitMix64(seed: seed)
        let shuffled = questions.shuffled(using: &order)
        let bodies = shuffled.map { question in
            ByteBuffer(string: #"{"model":\#(JSONString.quoted(model)),"stream":\#(stream),"temperature":0,"seed":42,"max_tokens":\#(maxTokens),"messages":[{"role":"user","content":\#(JSONString.quoted(question))}]}"#)
        }
        guard !bodies.isEmpty, !url.isEmpty else { return [] }
        let client = ChatLoad.makeClient(connections: max(64, Int(levels.max() ?? 0) * 2))
        let urls = url.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let loads = urls.map { ChatLoad(url: $0 + "/v1/chat/completions", bearer: bearer, timeout: timeout, client: client) }
        var results: [LevelResult] = []
        for level in levels {
            let recorder = LoadRecorder()
            let kills = FaultInjector(url: urls[0], bearer: bearer, every: killReplicaEverySeconds)
            let label = mode == .open ? String(format: "%.2f req/s", level) : "\(Int(level)) users"
            let plan = self
            let result = await withTaskGroup(of: ClosedLoopLoad.Result?.self) { group in
                if showProgress {
                    group.addTask {
                        await Self.showProgress(label: label, recorder: recorder, kills: kills)
                        return nil
                    }
                }
                if killReplicaEverySeconds > 0 {
                    group.addTask {
                        await kills.run()
                        return nil
                    }
                }
                group.addTask {
                    let duration = Duration.milliseconds(Int64(plan.durationSeconds * 1000))
                    if plan.mode == .open {
                        return await OpenLoopLoad.run(rate: level, duration: duration, seed: plan.seed, recorder: recorder) { index in
                            await loads[index % loads.count].send(bodies[index % bodies.count], stream: plan.stream)
                        }
                    }
                    return await ClosedLoopLoad.run(clients: Int(level), duration: duration,
                                                    thinkTime: .milliseconds(plan.thinkMilliseconds), progress: recorder) { client, iteration in
                        await loads[client % loads.count].send(bodies[(client * 7919 + iteration) % bodies.count], stream: plan.stream)
                    }
                }
                var outcome = ClosedLoopLoad.Result()
                while let next = await group.next() {
                    if let next {
                        outcome = next
                        group.cancelAll()
                    }
                }
                return outcome
            }
            if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
            results.append(LevelResult(
                level: level, sent: result.sent, errors: result.errors, availability: result.availability, throughput: result.throughput,
                meanMilliseconds: result.latency.meanMilliseconds, p50Milliseconds: result.latency.milliseconds(atPercentile: 50),
                p95Milliseconds: result.latency.milliseconds(atPercentile: 95), p99Milliseconds: result.latency.milliseconds(atPercentile: 99),
                maxMilliseconds: result.latency.maxMilliseconds,
                timeToFirstTokenP50Milliseconds: stream ? result.timeToFirstToken.milliseconds(atPercentile: 50) : nil,
                replicasKilled: kills.count,
                streamsEndedWithError: stream ? result.streamsEndedWithError : nil, streamsCut: stream ? result.streamsCut : nil))
        }
        try? await client.shutdown()
        return results
    }

    /// Rewrites one stderr line each second until cancelled.
    static func showProgress(label: String, recorder: LoadRecorder, kills: FaultInjector) async {
        let clock = ContinuousClock()
        let start = clock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let snapshot = recorder.snapshot
            let seconds = Double((clock.now - start).components.seconds)
            let line = String(format: "\r%@  %4.0fs  %d done  %d errors  %.2f req/s  p50 %.0f ms%@", label, seconds, snapshot.sent,
                              snapshot.errors, seconds > 0 ? Double(snapshot.sent - snapshot.errors) / seconds : 0, snapshot.p50,
                              kills.count > 0 ? "  \(kills.count) replicas killed" : "")
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}

/// Kills a local llama-server replica every so often: the ready one with the most calls in
/// flight, its pid read from `GET /admin/inference` (an admin's token is needed).
public final class FaultInjector: Sendable {
    let url: String
    let bearer: String?
    let every: Double
    private let kills = Mutex(0)

    init(url: String, bearer: String?, every: Double) {
        self.url = url
        self.bearer = bearer
        self.every = every
    }

    /// Replicas killed so far.
    public var count: Int { kills.withLock { $0 } }

    func run() async {
        let client = HTTPClient.shared
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int64(every * 1000)))
            if Task.isCancelled { return }
            var request = HTTPClientRequest(url: url + "/admin/inference")
            if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
            guard let response = try? await client.execute(request, timeout: .seconds(5)),
                  let body = try? await response.body.collect(upTo: 1 << 20), response.status == .ok,
                  let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
                  let replicas = object["replicas"] as? [[String: Any]] else {
                FileHandle.standardError.write(Data("\nfault injection: GET /admin/inference failed; an admin token is needed\n".utf8))
                continue
            }
            let victim = replicas.filter { $0["pid"] is Int && $0["breaker"] as? String == "closed" }
                .max { ($0["in_flight"] as? Int ?? 0) < ($1["in_flight"] as? Int ?? 0) }
            if let pid = victim?["pid"] as? Int {
                kill(pid_t(pid), SIGKILL)
                kills.withLock { $0 += 1 }
            }
        }
    }
}
