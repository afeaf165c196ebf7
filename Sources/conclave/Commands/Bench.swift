import ArgumentParser
import ConclaveAgents
import ConclaveCore
import ConclaveMessaging
import ConclaveOrchestrator
import ConclaveServer
import ConclaveStorage
import ConclaveTesting
import Foundation
import Logging
import ServiceLifecycle

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks. Each writes its numbers to a JSON file.", subcommands: [Load.self, Orchestration.self, Governance.self, Inference.self, Tracing.self, FakeUpstream.self, BareProxy.self])

    struct Orchestration: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The full workflow in-process with an instant test model and the event log persisted, at several concurrencies.",
            discussion: """
                Runs plan → (retrieve ∥ reason) → validate → respond with ScriptedChatModel (a test double that answers \
                instantly) and a fixed retriever, so the numbers are the engine's own cost: scheduling, events on the \
                bus, the SQLite event log (group commit, as in production), agents' code. With --langgraph SCRIPT \
                the same topology runs in LangGraph in the same invocation and the ratios are reported.
                """)

        @Option(name: .long, parsing: .upToNextOption, help: "Concurrent runs to measure.")
        var concurrency: [Int] = [1, 64]

        @Option(name: .long, help: "Runs per concurrency level.")
        var runs: Int = 40_000

        @Option(name: .long, help: "Where to write the JSON results.")
        var output: String = "bench/results/orchestration.json"

        @Option(name: .long, help: "Python interpreter and LangGraph script to run beside (e.g. '.venv/bin/python bench/langgraph_orchestration.py').")
        var langgraph: String?

        func run() async throws {
            var logger = Logger(label: "bench")
            logger.logLevel = .error
            let directory = try TestRuntime.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let store = try SQLiteStore(path: directory.appendingPathComponent("bench.sqlite").path)
            let writer = BatchingEventWriter(store: store, logger: logger)
            let model = ScriptedChatModel(recordsRequests: false)
            let team = AgentTeam(model: model, retriever: FixedRetriever())
            let engine = WorkflowEngine(team: team, bus: InProcessMessageBus(), eventLog: writer, logger: logger)
            guard let workflow = try WorkflowRegistry().workflows["full"] else { throw ValidationFailure("no full workflow") }
            let state = WorkflowState(question: "How many days of annual leave do full-time employees get?")

            var results: [[String: Any]] = []
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await writer.run() }
                // Warm up caches, allocators and the database.
                _ = try await measure(engine: engine, workflow: workflow, state: state, runs: 2_000, concurrency: 8)
                for level in concurrency {
                    let r = try await measure(engine: engine, workflow: workflow, state: state, runs: runs, concurrency: level)
                    try await writer.flush()
                    print(String(format: "conclave  c=%-3d p50 %.3f ms  p99 %.3f ms  %.0f runs/s", level, r.p50, r.p99, r.throughput))
                    results.append(["system": "conclave", "concurrency": level, "runs": runs, "p50_ms": r.p50, "p99_ms": r.p99,
                                    "runs_per_second": r.throughput])
                }
                writer.finish()
                try await group.waitForAll()
            }
            var report: [String: Any] = ["benchmark": "orchestration", "workflow": "full", "model": "ScriptedChatModel (instant test double)",
                                         "event_log": "SQLite, group commit", "cores": ProcessInfo.processInfo.activeProcessorCount,
                                         "results": results]
            if let langgraph {
                let lg = try runLangGraph(langgraph, concurrency: concurrency, runs: min(runs, 4_000))
                report["langgraph"] = lg
                var ratios: [[String: Any]] = []
                for entry in lg {
                    guard let level = entry["concurrency"] as? Int,
                          let mine = results.first(where: { ($0["concurrency"] as? Int) == level }),
                          let theirP50 = entry["p50_ms"] as? Double, let theirRate = entry["runs_per_second"] as? Double,
                          let myP50 = mine["p50_ms"] as? Double, let myRate = mine["runs_per_second"] as? Double else { continue }
                    print(String(format: "langgraph c=%-3d p50 %.3f ms  %.0f runs/s   →  conclave is %.1f× faster at p50, %.1f× the throughput",
                                 level, theirP50, theirRate, theirP50 / myP50, myRate / theirRate))
                    ratios.append(["concurrency": level, "p50_speedup": theirP50 / myP50, "throughput_ratio": myRate / theirRate])
                }
                report["ratios"] = ratios
            }
            let url = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: url)
            print("wrote \(output)")
        }

        private func measure(engine: WorkflowEngine, workflow: Workflow, state: WorkflowState, runs: Int, concurrency: Int)
            async throws -> (p50: Double, p99: Double, throughput: Double)
        {
            let result = try await ClosedLoop.run(clients: concurrency, perClient: max(1, runs / concurrency)) { _, _ in
                _ = try await engine.run(workflow, state: state)
            }
            return (result.percentile(0.5), result.percentile(0.99), result.perSecond)
        }

        private func runLangGraph(_ command: String, concurrency: [Int], runs: Int) throws -> [[String: Any]] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", command + " --runs \(runs) --concurrency " + concurrency.map(String.init).joined(separator: " ")]
            let pipe = Pipe()
            process.standardOutput = pipe
            try ChildProcess.launch(process)
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0,
                  let parsed = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let results = parsed["results"] as? [[String: Any]] else {
                throw ValidationFailure("the LangGraph benchmark failed (exit \(process.terminationStatus))")
            }
            return results
        }
    }
}
