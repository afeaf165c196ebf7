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
                seconds (its pid from GET /admin/inference, so the token must be an admin's). --kill-worker-every N with \
                --cluster DIR SIGKILLs a worker of that local cluster (conclave cluster up) every N seconds, in turn, and \
                starts it again as Kubernetes would restart its pod. A progress line shows while it runs.
                """)

        @Option(name: .long, help: "Server base URL; several gateways of a cluster comma-separated (users spread over them).")
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

        @Option(name: .long, help: "SIGKILL a worker of the local cluster in --cluster every this many seconds, and start it again (0: never).")
        var killWorkerEvery: Double = 0

        @Option(name: .long, help: "The directory of a local cluster (`directory` of conclave cluster up's file), for --kill-worker-every.")
        var cluster: String?

        @Option(name: .long, help: "Request timeout in seconds.")
        var timeout: Double = 300

        @Option(name: .long, help: "Where to write the JSON results.")
        var output: String = "bench/results/load.json"

        func validate() throws {
            guard users.isEmpty != rates.isEmpty else { throw ValidationError("give --users (closed loop) or --rates (open loop), not both") }
            guard duration > 0 else { throw ValidationError("--duration must be positive") }
            guard killWorkerEvery <= 0 || cluster != nil else { throw ValidationError("--kill-worker-every needs --cluster DIR") }
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
            let plan = LoadPlan(model: model, mode: users.isEmpty ? .open : .closed, levels: users.isEmpty ? rates : users.map(Double.init),
                                durationSeconds: duration, thinkMilliseconds: thinkMs, seed: seed, maxTokens: maxTokens, stream: stream,
                                killReplicaEverySeconds: killReplicaEvery)
            let chaos = cluster.map { WorkerChaos(directory: URL(fileURLWithPath: $0), every: killWorkerEvery) }
            let faults = killWorkerEvery > 0 ? chaos.map { chaos in Task { await chaos.run() } } : nil
            let levels = await plan.run(url: url, bearer: bearer, questions: texts, timeout: .milliseconds(Int64(timeout * 1000)))
            faults?.cancel()
            if let chaos, killWorkerEvery > 0 { print("workers killed and restarted: \(chaos.kills)") }
            for level in levels {
                print(String(format: "%@: %d sent, %.1f%% available, %.2f req/s, mean %.0f ms, p50 %.0f ms, p95 %.0f ms, p99 %.0f ms, max %.0f ms",
                             plan.mode == .open ? String(format: "%.2f req/s", level.level) : "\(Int(level.level)) users",
                             level.sent, 100 * level.availability, level.throughput, level.meanMilliseconds, level.p50Milliseconds,
                             level.p95Milliseconds, level.p99Milliseconds, level.maxMilliseconds))
            }
            struct Report: Encodable {
                var benchmark = "load"
                var url: String
                var plan: LoadPlan
                var levels: [LoadPlan.LevelResult]
                /// Workers killed and restarted (--kill-worker-every), over all levels.
                var workersKilled: Int?
                var cores: Int

                enum CodingKeys: String, CodingKey {
                    case benchmark, url, plan, levels, cores, date
                    case workersKilled = "workers_killed"
                }
                var date: String
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let file = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try encoder.encode(Report(url: url, plan: plan, levels: levels, workersKilled: killWorkerEvery > 0 ? chaos?.kills : nil,
                                      cores: ProcessInfo.processInfo.activeProcessorCount,
                                      date: ISO8601DateFormatter().string(from: Date()))).write(to: file)
            print("wrote \(output)")
        }
    }
}
