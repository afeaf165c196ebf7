import ArgumentParser
import AsyncHTTPClient
import ConclaveCore
import ConclaveEval
import ConclaveTesting
import Foundation
import NIOCore
import Synchronization

extension Bench {
    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "load",
            abstract: "Load against a running server: closed-loop users or open-loop Poisson arrivals, swept, with optional fault injection.",
            discussion: """
                Questions cycle through --questions (a JSONL task file: each task's first turn; default the Meridian dev \
                set) and go to --model (a workflow such as conclave/full, or a direct model such as smollm2). Closed loop: \
                --users levels, each user sending its next request when the last has finished (plus --think-ms). Open \
                loop: --rates levels in requests per second, Poisson arrivals from --seed, latency from each scheduled \
                arrival. Per level: mean, p50, p95, p99 and max latency (HdrHistogram), throughput, error rate and \
                availability (answered ÷ sent). --kill-replica-every N SIGKILLs a local llama-server replica every N \
                seconds (its pid from GET /admin/inference, so the token must be an admin's). A progress line shows while \
                it runs.
                """)

        @Option(name: .long, help: "Server base URL.")
        var url: String = "http://127.0.0.1:8080"

        @Option(name: .long, help: "Bearer token (or use --user with --config).")
        var token: String?

        @Option(name: .long, help: "Mint a token for this user of auth.users_file (with --config).")
        var user: String?

        @Option(name: .long, help: "YAML configuration of the server (for --user).")
        var config: String?

        @Option(name: .long, help: "Model field: a workflow (conclave/full) or a direct model (smollm2).")
        var model: String = "conclave/full"

        @Option(name: .long, parsing: .upToNextOption, help: "Closed loop: concurrent users per level.")
        var users: [Int] = []

        @Option(name: .long, parsing: .upToNextOption, help: "Open loop: arrivals per second per level.")
        var rates: [Double] = []

        @Option(name: .long, help: "Seconds per level.")
        var duration: Double = 30

        @Option(name: .long, help: "Closed loop: think time between a user's requests (ms).")
        var thinkMs: Int = 0

        @Option(name: .long, help: "Seed of the open-loop arrivals and of the question order.")
        var seed: UInt64 = 42

        @Option(name: .long, help: "Most tokens per answer.")
        var maxTokens: Int = 96

        @Flag(name: .long, help: "Stream the answers (time to first token is recorded).")
        var stream = false

        @Option(name: .long, help: "Task file whose first turns are the questions.")
        var questions: String = "examples/meridian/eval/dev.jsonl"

        @Option(name: .long, help: "SIGKILL a local llama-server replica every this many seconds (0: never).")
        var killReplicaEvery: Double = 0

        @Option(name: .long, help: "Request timeout in seconds.")
        var timeout: Double = 300

        @Option(name: .long, help: "Where to write the JSON results.")
        var output: String = "bench/results/load.json"

        func validate() throws {
            guard users.isEmpty != rates.isEmpty else { throw ValidationError("give --users (closed loop) or --rates (open loop), not both") }
            guard duration > 0 else { throw ValidationError("--duration must be positive") }
        }

        func run() async throws {
            let bearer: String?
            if let token {
                bearer = token
            } else if let user {
                bearer = try Bench.Inference.capture([Bench.Inference.executablePath(), "token", "--user", user]
                                                     + (config.map { ["--config", $0] } ?? []))
            } else {
                bearer = nil
            }
            let texts = try EvalTask.load(path: questions).compactMap { $0.turns.first?.user }
            guard !texts.isEmpty else { throw ValidationFailure("no questions in \(questions)") }
            let stream = self.stream
            var order = SplitMix64(seed: seed)
            let shuffled = texts.shuffled(using: &order)
            let bodies = shuffled.map { question in
                ByteBuffer(string: #"{"model":\#(JSONString.quoted(model)),"stream":\#(stream),"temperature":0,"seed":42,"max_tokens":\#(maxTokens),"messages":[{"role":"user","content":\#(JSONString.quoted(question))}]}"#)
            }
            let levels = users.isEmpty ? rates.map { (open: true, value: $0) } : users.map { (open: false, value: Double($0)) }
            let client = ChatLoad.makeClient(connections: max(64, (users.max() ?? 0) * 2))
            let load = ChatLoad(url: url + "/v1/chat/completions", bearer: bearer, timeout: .milliseconds(Int64(timeout * 1000)),
                                client: client)
            var results: [[String: Any]] = []
            for level in levels {
                let recorder = LoadRecorder()
                let kills = KillCount()
                let label = level.open ? String(format: "%.2f req/s", level.value) : "\(Int(level.value)) users"
                let result = await withTaskGroup(of: ClosedLoopLoad.Result?.self) { group in
                    group.addTask { await Self.showProgress(label: label, recorder: recorder, kills: kills) ; return nil }
                    if killReplicaEvery > 0 {
                        group.addTask { await self.injectFaults(bearer: bearer, kills: kills); return nil }
                    }
                    group.addTask {
                        let duration = Duration.milliseconds(Int64(duration * 1000))
                        if level.open {
                            return await OpenLoopLoad.run(rate: level.value, duration: duration, seed: seed, recorder: recorder) { index in
                                await load.send(bodies[index % bodies.count], stream: stream)
                            }
                        }
                        return await ClosedLoopLoad.run(clients: Int(level.value), duration: duration,
                                                        thinkTime: .milliseconds(thinkMs), progress: recorder) { client, iteration in
                            await load.send(bodies[(client * 7919 + iteration) % bodies.count], stream: stream)
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
                print("")
                var entry: [String: Any] = result.latency.summary
                entry[level.open ? "rate" : "users"] = level.open ? level.value : Double(Int(level.value))
                entry["sent"] = result.sent
                entry["errors"] = result.errors
                entry["error_rate"] = result.sent == 0 ? 0 : Double(result.errors) / Double(result.sent)
                entry["availability"] = result.availability
                entry["throughput"] = result.throughput
                entry["replicas_killed"] = kills.value
                if stream {
                    entry["ttft_p50_ms"] = result.timeToFirstToken.milliseconds(atPercentile: 50)
                    entry["ttft_p95_ms"] = result.timeToFirstToken.milliseconds(atPercentile: 95)
                }
                print(String(format: "%@: %d sent, %.1f%% available, %.2f req/s, mean %.0f ms, p50 %.0f ms, p95 %.0f ms, p99 %.0f ms, max %.0f ms",
                             label, result.sent, 100 * result.availability, result.throughput, result.latency.meanMilliseconds,
                             result.latency.milliseconds(atPercentile: 50), result.latency.milliseconds(atPercentile: 95),
                             result.latency.milliseconds(atPercentile: 99), result.latency.maxMilliseconds))
                results.append(entry)
            }
            try? await client.shutdown()
            let report: [String: Any] = [
                "benchmark": "load", "url": url, "model": model, "mode": users.isEmpty ? "open" : "closed", "stream": stream,
                "duration_seconds": duration, "think_ms": thinkMs, "seed": seed, "max_tokens": maxTokens,
                "kill_replica_every_seconds": killReplicaEvery, "levels": results,
                "cores": ProcessInfo.processInfo.activeProcessorCount, "date": ISO8601DateFormatter().string(from: Date()),
            ]
            let file = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]).write(to: file)
            print("wrote \(output)")
        }

        /// Rewrites one terminal line each second until cancelled.
        static func showProgress(label: String, recorder: LoadRecorder, kills: KillCount) async {
            let clock = ContinuousClock()
            let start = clock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                let snapshot = recorder.snapshot
                let seconds = Double((clock.now - start).components.seconds)
                let line = String(format: "\r%@  %4.0fs  %d done  %d errors  %.2f req/s  p50 %.0f ms%@", label, seconds, snapshot.sent,
                                  snapshot.errors, seconds > 0 ? Double(snapshot.sent - snapshot.errors) / seconds : 0, snapshot.p50,
                                  kills.value > 0 ? "  \(kills.value) replicas killed" : "")
                FileHandle.standardError.write(Data(line.utf8))
            }
        }

        /// Every `killReplicaEvery` seconds, SIGKILLs the ready local replica with the most calls in flight.
        func injectFaults(bearer: String?, kills: KillCount) async {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int64(killReplicaEvery * 1000)))
                if Task.isCancelled { return }
                let reply = try? await TestHTTP.send(.GET, url + "/admin/inference",
                                                     headers: bearer.map { [("Authorization", "Bearer \($0)")] } ?? [], timeout: .seconds(5))
                guard let replicas = reply?.json?["replicas"] as? [[String: Any]] else {
                    FileHandle.standardError.write(Data("\nfault injection: GET /admin/inference failed (\(reply?.status ?? 0)); an admin token is needed\n".utf8))
                    continue
                }
                let victim = replicas.filter { $0["pid"] is Int && $0["breaker"] as? String == "closed" }
                    .max { ($0["in_flight"] as? Int ?? 0) < ($1["in_flight"] as? Int ?? 0) }
                if let pid = victim?["pid"] as? Int {
                    kill(pid_t(pid), SIGKILL)
                    kills.increment()
                }
            }
        }
    }

    /// Replicas killed by fault injection.
    final class KillCount: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        func increment() { count.withLock { $0 += 1 } }
    }
}
