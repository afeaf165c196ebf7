import ArgumentParser
import AsyncHTTPClient
import ConclaveCore
import ConclaveEval
import ConclaveTelemetry
import ConclaveTesting
import Foundation
import Logging
import NIOCore

extension Bench {
    struct Tracing: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tracing",
            abstract: "The gateway's requests/s and p50/p99 latency with tracing off and with sampling 1.0 exporting to a receiver.",
            discussion: """
                Starts two `conclave serve` processes that differ only in `tracing.enabled` (the second exports every \
                span over OTLP/HTTP to a receiver in this process), both over the same instant fake model backend, and \
                drives them in turn with closed-loop clients asking conclave/single (a request span, the policy spans, \
                the workflow, its step, the document retrieval and the model call: about 9 spans per request). Rounds \
                alternate which server goes first. The instant model makes tracing's share as large as it can be. \
                Writes the numbers and the on/off ratios as JSON. See docs/performance.md.
                """)

        @Option(name: .long, help: "Concurrent clients.")
        var clients: Int = 8

        @Option(name: .long, help: "Seconds per server per round.")
        var seconds: Int = 15

        @Option(name: .long, help: "Rounds (each runs both servers).")
        var rounds: Int = 3

        @Option(name: .long, help: "Time the fake model takes per call (ms); 0 answers at once, tracing's worst case.")
        var modelLatencyMs: Int = 0

        @Option(name: .long, help: "Where to write the JSON results.")
        var output: String = "bench/results/tracing.json"

        func run() async throws {
            LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
            let directory = try TestRuntime.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let key = directory.appendingPathComponent("hs256.key")
            try (RandomID.make() + RandomID.make()).write(to: key, atomically: true, encoding: .utf8)
            let config = directory.appendingPathComponent("conclave.yaml")
            try "auth:\n  hs256_key_file: \(key.path)\n".write(to: config, atomically: true, encoding: .utf8)
            guard let token = try await Eval.tokens(config: config.path)("u-employee") else {
                throw ValidationFailure("cannot sign a token for u-employee")
            }
            let receiver = OTLPTestReceiver()
            let answer = "Employees get 26 days of annual leave a year."
            let fake = FakeOpenAIServer(modelLatencyMs > 0 ? .delayed(answer, .milliseconds(Int64(modelLatencyMs))) : .answer(answer))
            let json = try await fake.run { backend in
                try await receiver.run { traces in
                    let report = try await measure(backend: backend, traces: traces, config: config.path, directory: directory,
                                                   token: token, receiver: receiver)
                    print(String(decoding: try JSONSerialization.data(withJSONObject: report["comparison"] ?? [:],
                                                                      options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
                    return try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
                }
            }
            let url = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try json.write(to: url)
            print("wrote \(output)")
        }

        private func measure(backend: String, traces: String, config: String, directory: URL, token: String,
                             receiver: OTLPTestReceiver) async throws -> [String: Any] {
            func environment(_ name: String, tracing: Bool) -> [String: String] {
                [
                    "CONCLAVE_INFERENCE__PROVIDER": "openai", "CONCLAVE_INFERENCE__ENDPOINT": backend,
                    "CONCLAVE_INFERENCE__PARALLEL_SLOTS": "8",
                    "CONCLAVE_STORAGE__PATH": directory.appendingPathComponent("\(name).sqlite").path,
                    "CONCLAVE_KNOWLEDGE__INGEST_ON_START": "[examples/meridian/docs]", "CONCLAVE_KNOWLEDGE__RETRIEVAL": "bm25",
                    "CONCLAVE_KNOWLEDGE__API_FILE": "", "CONCLAVE_LOGGING__LEVEL": "error",
                    "CONCLAVE_TRACING__ENABLED": tracing ? "true" : "false", "CONCLAVE_TRACING__ENDPOINT": traces,
                    "CONCLAVE_TRACING__SAMPLING_RATIO": "1",
                ]
            }
            let modes = [("off", false), ("on", true)]
            var servers: [String: (process: ServeProcess, url: String)] = [:]
            defer { for server in servers.values { server.process.send(SIGTERM) } }
            for (name, tracing) in modes {
                let process = try ServeProcess(arguments: ["serve", "--config", config, "--port", "0"],
                                               environment: environment(name, tracing: tracing))
                let port = try await process.waitForPort()
                servers[name] = (process, "http://127.0.0.1:\(port)/v1/chat/completions")
            }
            let client = ChatLoad.makeClient(connections: clients)
            let body = ByteBuffer(string: #"{"model":"conclave/single","max_tokens":16,"messages":[{"role":"user","content":"How many days of annual leave do employees get?"}]}"#)
            var results: [String: ClosedLoopLoad.Result] = ["off": .init(), "on": .init()]
            var warmupRequests = 0
            for (name, _) in modes {  // warm-up: connections, caches, the first export
                let load = ChatLoad(url: servers[name]!.url, bearer: token, client: client)
                let warm = await ClosedLoopLoad.run(clients: clients, duration: .seconds(3)) { _, _ in await load.send(body, stream: false) }
                if name == "on" { warmupRequests = warm.sent - warm.errors }
            }
            // Spans per request from the warm-up; from here on the receiver only counts bytes, so
            // that decoding them does not take CPU from the servers it measures.
            try await Task.sleep(for: .seconds(6))  // the warm-up's last batch
            let spansPerRequest = Double(receiver.spanCount) / Double(max(1, warmupRequests))
            receiver.setDecoding(false)
            let bytesBefore = receiver.bytes, requestsBefore = receiver.requests
            for round in 0..<rounds {
                for (name, _) in round % 2 == 0 ? modes : modes.reversed() {
                    let load = ChatLoad(url: servers[name]!.url, bearer: token, client: client)
                    let result = await ClosedLoopLoad.run(clients: clients, duration: .seconds(Int64(seconds))) { _, _ in
                        await load.send(body, stream: false)
                    }
                    results[name]!.add(result)
                }
            }
            try? await client.shutdown()
            try await Task.sleep(for: .seconds(2))  // the last batch export
            var perMode: [String: Any] = [:]
            for (name, _) in modes {
                let result = results[name]!
                perMode[name] = ["requests": result.sent, "errors": result.errors, "requests_per_second": result.throughput,
                                 "p50_ms": result.latency.milliseconds(atPercentile: 50),
                                 "p99_ms": result.latency.milliseconds(atPercentile: 99)]
            }
            let off = results["off"]!, on = results["on"]!
            let answered = Double(on.sent - on.errors)
            // Tracing off: every span is the no-op tracer's (this process installs no tracer).
            let spanCost = Telemetry.spanCostNanoseconds()
            let offCostPerRequest = spanCost * spansPerRequest
            let offP50 = off.latency.milliseconds(atPercentile: 50)
            return [
                "benchmark": "tracing", "cores": ProcessInfo.processInfo.activeProcessorCount, "clients": clients,
                "seconds_per_round": seconds, "rounds": rounds, "workflow": "conclave/single",
                "model": "FakeOpenAIServer (test double)", "model_latency_ms": modelLatencyMs, "modes": perMode,
                "export_bytes": receiver.bytes - bytesBefore, "export_requests": receiver.requests - requestsBefore,
                "comparison": [
                    "throughput_on_over_off": on.throughput / max(off.throughput, 1e-9),
                    "p50_on_over_off": on.latency.milliseconds(atPercentile: 50) / max(off.latency.milliseconds(atPercentile: 50), 1e-9),
                    "p99_on_over_off": on.latency.milliseconds(atPercentile: 99) / max(off.latency.milliseconds(atPercentile: 99), 1e-9),
                    "spans_per_request": spansPerRequest,
                    "export_bytes_per_request": answered > 0 ? Double(receiver.bytes - bytesBefore) / answered : 0,
                    "off_span_cost_ns": spanCost,
                    "off_cost_per_request_ns": offCostPerRequest,
                    "off_cost_share_of_p50": offP50 > 0 ? offCostPerRequest / (offP50 * 1e6) : 0,
                ],
            ]
        }
    }
}
