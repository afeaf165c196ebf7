import ArgumentParser
import AsyncHTTPClient
import ConclaveCore
import ConclaveEval
import ConclaveInference
import ConclaveTesting
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

extension Bench {
    struct Inference: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "inference",
            abstract: "Conclave's inference path against the raw backend (SmolLM2) and against LiteLLM (instant fake upstream).",
            discussion: """
                Part 1, model: one llama-server with SmolLM2 (8 slots) measured directly and through \
                `conclave serve`'s direct model route (authentication and audit on), 8 concurrent streams, rounds \
                alternated: aggregate generated tokens/s and time to first token, and their ratios.
                Part 2, gateway: an instant fake OpenAI upstream (a fixed completion; a stream of 20 chunks) \
                measured directly, through the LiteLLM proxy (one worker, master key, no database) and through \
                Conclave's direct model route (JWT authentication and the audit trail on), alternated, non-streaming \
                and streaming, at 1 and 32 concurrent clients: added p50/p99 latency and throughput ratios.
                The load generator shares the machine with what it measures: read ratios, not absolute numbers.
                """)

        @Option(name: .long, help: "Where to write the JSON results.")
        var output: String = "bench/results/inference.json"

        @Option(name: .long, help: "Which parts to run: model, gateway or both.")
        var parts: [String] = ["model", "gateway"]

        @Option(name: .long, help: "Rounds per target (alternated).")
        var rounds: Int = 3

        @Option(name: .long, help: "Seconds per round of the gateway part.")
        var gatewaySeconds: Double = 3

        @Option(name: .long, help: "Seconds per round of the model part.")
        var modelSeconds: Double = 20

        @Option(name: .long, parsing: .upToNextOption, help: "Concurrent clients of the gateway part.")
        var concurrency: [Int] = [1, 32]

        @Option(name: .long, parsing: .upToNextOption, help: "Response modes of the gateway part: whole, stream.")
        var modes: [String] = ["whole", "stream"]

        @Option(name: .long, help: "Conclave's governance mode (audit: access control and the audit trail).")
        var governance: String = "audit"

        @Option(name: .long, help: "Script that starts the LiteLLM proxy on a port (empty: skip LiteLLM).")
        var litellm: String = "scripts/litellm-proxy.sh"

        @Option(name: .long, help: "Also measure a pass-through proxy on the gateway's HTTP stack with no logic (true/false).")
        var includeBareProxy: Bool = true

        func run() async throws {
            Logging.LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
            setenv("CONCLAVE_BIN", Self.executablePath(), 1)
            let directory = try TestRuntime.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            var report: [String: Any] = ["benchmark": "inference", "cores": ProcessInfo.processInfo.activeProcessorCount,
                                         "date": ISO8601DateFormatter().string(from: Date())]
            if parts.contains("model") { report["model"] = try await modelPart(directory: directory) }
            if parts.contains("gateway") { report["gateway"] = try await gatewayPart(directory: directory) }
            let url = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]).write(to: url)
            print("wrote \(output)")
        }

        static func executablePath() -> String {
            let argument = CommandLine.arguments[0]
            if argument.hasPrefix("/") { return argument }
            if argument.contains("/") { return FileManager.default.currentDirectoryPath + "/" + argument }
            return URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        }

        // MARK: - Conclave under test

        /// Starts `conclave serve` with authentication (JWT) and governance `audit` over `inference`
        /// settings, and returns the process, its chat URL and a token.
        private func startConclave(directory: URL, name: String, inference: String) async throws -> (ServeProcess, String, String) {
            let key = directory.appendingPathComponent("\(name)-hs256.key")
            try (RandomID.make() + RandomID.make()).write(to: key, atomically: true, encoding: .utf8)
            let root = TestRuntime.repositoryRoot.path
            let config = directory.appendingPathComponent("\(name).yaml")
            try """
                server: {host: 127.0.0.1, port: 0}
                storage: {path: \(directory.appendingPathComponent("\(name).sqlite").path)}
                logging: {level: error}
                auth: {mode: jwt, hs256_key_file: \(key.path), users_file: \(root)/examples/meridian/identities/users.yaml}
                governance: {mode: \(governance), policy_file: \(root)/config/policies/meridian.yaml}
                audit: {signing_key_file: \(directory.appendingPathComponent("\(name)-audit.key").path)}
                knowledge: {retrieval: bm25, sql_templates_file: "", api_file: ""}
                inference:
                \(inference)
                """.write(to: config, atomically: true, encoding: .utf8)
            let token = try Self.capture([Self.executablePath(), "token", "--user", "u-admin", "--config", config.path])
            let process = try ServeProcess(arguments: ["serve", "--config", config.path])
            let port = try await process.waitForPort()
            let base = "http://127.0.0.1:\(port)"
            try await Self.waitForStatus200(base + "/readyz", timeout: .seconds(120))
            return (process, base + "/v1/chat/completions", token)
        }

        /// Runs a command (with extra environment variables) and returns what it printed, trimmed.
        static func capture(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: arguments[0])
            process.arguments = Array(arguments.dropFirst())
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            let pipe = Pipe()
            process.standardOutput = pipe
            try ChildProcess.launch(process)
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw ValidationFailure("\(arguments.joined(separator: " ")) failed") }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        static func waitForStatus200(_ url: String, timeout: Duration) async throws {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let reply = try? await TestHTTP.send(.GET, url, timeout: .seconds(2)), reply.status == 200 { return }
                try await Task.sleep(for: .milliseconds(200))
            }
            throw ValidationFailure("\(url) did not answer 200 within \(timeout)")
        }

        // MARK: - Part 1: the model

        private func modelPart(directory: URL) async throws -> [String: Any] {
            let root = EmbeddedModelLocator.projectRoot()
            guard let server = EmbeddedModelLocator.llamaServer(root: root), let model = EmbeddedModelLocator.smolLM2(root: root) else {
                throw ValidationFailure("llama-server or SmolLM2 not found in .venv; run `make setup`")
            }
            let pool = ReplicaPool(model: "bench")
            let supervisor = try LlamaServerSupervisor(
                configuration: .init(serverPath: server, modelPath: model, contextSize: 8192, parallelSlots: 8,
                                     logPath: directory.appendingPathComponent("llama-server.log").path),
                replicas: pool)
            var part: [String: Any] = ["streams": 8, "max_tokens": 128, "rounds": rounds, "seconds_per_round": modelSeconds,
                                       "model": "SmolLM2-135M-Instruct Q4_1, llama-server -c 8192 -np 8"]
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await supervisor.run() }
                defer { group.cancelAll() }
                let deadline = ContinuousClock.now + .seconds(180)
                while pool.ready.isEmpty {
                    guard ContinuousClock.now < deadline else { throw ValidationFailure("llama-server did not start") }
                    try await Task.sleep(for: .milliseconds(100))
                }
                let raw = pool.ready[0]
                let (conclave, url, token) = try await startConclave(directory: directory, name: "model", inference: """
                      provider: openai
                      endpoint: \(raw)
                      served_model_name: smollm2
                      parallel_slots: 8
                      context_size: 8192
                    """)
                defer { conclave.send(SIGKILL) }
                let client = ChatLoad.makeClient(connections: 16)
                let targets = [("llama-server", ChatLoad(url: raw + "/chat/completions", client: client)),
                               ("conclave", ChatLoad(url: url, bearer: token, client: client))]
                let prompts = (0..<8).map { "Write a short paragraph about topic number \($0 + 1): shipping, cold chains, fleets, hubs, or people." }
                let bodies = prompts.map { prompt in
                    ByteBuffer(string: #"{"model":"smollm2","stream":true,"stream_options":{"include_usage":true},"temperature":0,"seed":42,"max_tokens":128,"cache_prompt":true,"messages":[{"role":"user","content":"\#(prompt)"}]}"#)
                }
                // Warm both paths (prompt cache, connections).
                for (_, target) in targets {
                    _ = await ClosedLoopLoad.run(clients: 8, duration: .seconds(1)) { client, _ in await target.send(bodies[client], stream: true) }
                }
                var results: [String: ClosedLoopLoad.Result] = [:]
                for round in 0..<rounds {
                    for (name, target) in round % 2 == 0 ? targets : targets.reversed() {
                        let result = await ClosedLoopLoad.run(clients: 8, duration: .milliseconds(Int64(modelSeconds * 1000))) { client, _ in
                            await target.send(bodies[client], stream: true)
                        }
                        print(String(format: "model  round %d  %-12@ %6.1f tokens/s  ttft p50 %7.1f ms  p95 %7.1f ms  errors %d",
                                     round + 1, name as NSString, result.tokensPerSecond,
                                     result.timeToFirstToken.milliseconds(atPercentile: 50),
                                     result.timeToFirstToken.milliseconds(atPercentile: 95), result.errors))
                        results[name, default: .init()].add(result)
                    }
                }
                // Time to first token alone: one stream at a time, 8 tokens each, so the batch's
                // scheduling noise does not hide a gateway's share.
                let short = prompts.map { prompt in
                    ByteBuffer(string: #"{"model":"smollm2","stream":true,"temperature":0,"seed":42,"max_tokens":8,"cache_prompt":true,"messages":[{"role":"user","content":"\#(prompt)"}]}"#)
                }
                var single: [String: ClosedLoopLoad.Result] = [:]
                for round in 0..<(rounds * 2) {
                    for (name, target) in round % 2 == 0 ? targets : targets.reversed() {
                        let result = await ClosedLoopLoad.run(clients: 1, duration: .seconds(3)) { _, iteration in
                            await target.send(short[iteration % short.count], stream: true)
                        }
                        single[name, default: .init()].add(result)
                    }
                }
                try? await client.shutdown()
                var one: [String: Any] = ["streams": 1, "max_tokens": 8]
                for (name, result) in single {
                    one[name] = ["ttft_p50_ms": result.timeToFirstToken.milliseconds(atPercentile: 50),
                                 "ttft_p95_ms": result.timeToFirstToken.milliseconds(atPercentile: 95), "requests": result.sent,
                                 "errors": result.errors]
                }
                if let a = single["llama-server"], let b = single["conclave"] {
                    one["added_ttft_p50_ms"] = b.timeToFirstToken.milliseconds(atPercentile: 50) - a.timeToFirstToken.milliseconds(atPercentile: 50)
                    one["added_ttft_p95_ms"] = b.timeToFirstToken.milliseconds(atPercentile: 95) - a.timeToFirstToken.milliseconds(atPercentile: 95)
                    print(String(format: "model, one stream: ttft p50 %.2f ms raw, %.2f ms through conclave (%+.2f ms)",
                                 a.timeToFirstToken.milliseconds(atPercentile: 50), b.timeToFirstToken.milliseconds(atPercentile: 50),
                                 one["added_ttft_p50_ms"] as? Double ?? 0))
                }
                part["one_stream"] = one
                for (name, result) in results {
                    part[name] = ["tokens_per_second": result.tokensPerSecond, "requests": result.sent, "errors": result.errors,
                                  "ttft_p50_ms": result.timeToFirstToken.milliseconds(atPercentile: 50),
                                  "ttft_p95_ms": result.timeToFirstToken.milliseconds(atPercentile: 95),
                                  "latency": result.latency.summary]
                }
                if let a = results["llama-server"], let b = results["conclave"] {
                    part["throughput_ratio"] = b.tokensPerSecond / a.tokensPerSecond
                    part["added_ttft_p50_ms"] = b.timeToFirstToken.milliseconds(atPercentile: 50) - a.timeToFirstToken.milliseconds(atPercentile: 50)
                    part["added_ttft_p95_ms"] = b.timeToFirstToken.milliseconds(atPercentile: 95) - a.timeToFirstToken.milliseconds(atPercentile: 95)
                    print(String(format: "model: conclave %.1f%% of raw throughput, %+.2f ms p50 time to first token",
                                 100 * b.tokensPerSecond / a.tokensPerSecond, part["added_ttft_p50_ms"] as? Double ?? 0))
                }
            }
            return part
        }

        // MARK: - Part 2: the gateway

        private func gatewayPart(directory: URL) async throws -> [String: Any] {
            let upstream = try ServeProcess(arguments: ["bench", "fake-upstream", "--port", "0"])
            defer { upstream.send(SIGKILL) }
            let upstreamPort = try await upstream.waitForPort()
            let upstreamBase = "http://127.0.0.1:\(upstreamPort)/v1"
            let (conclave, conclaveURL, token) = try await startConclave(directory: directory, name: "gateway", inference: """
                  provider: openai
                  endpoint: \(upstreamBase)
                  served_model_name: ""
                  models:
                    - {name: fake, endpoints: ["\(upstreamBase)"], max_in_flight: 256}
                """)
            defer { conclave.send(SIGKILL) }
            var targets: [(String, String, String?)] = [("direct", upstreamBase + "/chat/completions", nil), ("conclave", conclaveURL, token)]
            // The same HTTP stack with no logic: what any gateway on it costs at least.
            let bare = includeBareProxy
                ? try ServeProcess(arguments: ["bench", "bare-proxy", "--port", "0", "--upstream", upstreamBase + "/chat/completions"])
                : nil
            defer { bare?.send(SIGKILL) }
            if let bare {
                let port = try await bare.waitForPort()
                targets.insert(("bare-proxy", "http://127.0.0.1:\(port)/v1/chat/completions", nil), at: 1)
            }
            var litellmProcess: Process?
            if !litellm.isEmpty, FileManager.default.fileExists(atPath: litellm) {
                let port = try FreePort.find()
                let key = "sk-bench-" + RandomID.make()
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/bin/bash")
                process.arguments = [litellm, String(port)]
                process.environment = ProcessInfo.processInfo.environment.merging(
                    ["FAKE_UPSTREAM_BASE": upstreamBase, "LITELLM_MASTER_KEY": key]) { _, new in new }
                process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
                process.standardError = FileHandle(forWritingAtPath: "/dev/null")
                try ChildProcess.launch(process)
                litellmProcess = process
                try await Self.waitForStatus200("http://127.0.0.1:\(port)/health/readiness", timeout: .seconds(120))
                targets.insert(("litellm", "http://127.0.0.1:\(port)/chat/completions", key), at: 1)
            } else {
                print("LiteLLM skipped (\(litellm) not found)")
            }
            defer {
                if let litellmProcess, litellmProcess.isRunning { kill(litellmProcess.processIdentifier, SIGKILL) }
            }
            let client = ChatLoad.makeClient(connections: (concurrency.max() ?? 32) * 2)
            let loads = targets.map { ($0.0, ChatLoad(url: $0.1, bearer: $0.2, timeout: .seconds(60), client: client)) }
            var part: [String: Any] = ["upstream": "instant fake (Hummingbird, separate process): fixed completion; stream of 20 chunks",
                                       "conclave": "direct model route, JWT auth, governance audit (audit trail on), logging error",
                                       "litellm": litellmProcess == nil ? "skipped" : "litellm[proxy] 1.108.7, one worker, master key, no database",
                                       "rounds": rounds, "seconds_per_round": gatewaySeconds]
            var cases: [[String: Any]] = []
            for stream in [false, true] where modes.contains(stream ? "stream" : "whole") {
                let body = ByteBuffer(string: #"{"model":"fake","stream":\#(stream),"max_tokens":32,"messages":[{"role":"user","content":"Say something short."}]}"#)
                // Warm-up: LiteLLM loads parts of itself on first use.
                for (_, load) in loads {
                    _ = await ClosedLoopLoad.run(clients: 4, duration: .seconds(1)) { _, _ in await load.send(body, stream: stream) }
                }
                for clients in concurrency {
                    var results: [String: ClosedLoopLoad.Result] = [:]
                    for round in 0..<rounds {
                        let order = round % 2 == 0 ? loads : loads.reversed()
                        for (name, load) in order {
                            let result = await ClosedLoopLoad.run(clients: clients, duration: .milliseconds(Int64(gatewaySeconds * 1000))) { _, _ in
                                await load.send(body, stream: stream)
                            }
                            results[name, default: .init()].add(result)
                        }
                    }
                    var entry: [String: Any] = ["stream": stream, "clients": clients]
                    let direct = results["direct"]
                    for (name, result) in results {
                        var numbers: [String: Any] = result.latency.summary
                        numbers["requests_per_second"] = result.throughput
                        numbers["errors"] = result.errors
                        numbers["requests"] = result.sent
                        if name != "direct", let direct {
                            numbers["added_p50_ms"] = result.latency.milliseconds(atPercentile: 50) - direct.latency.milliseconds(atPercentile: 50)
                            numbers["added_p99_ms"] = result.latency.milliseconds(atPercentile: 99) - direct.latency.milliseconds(atPercentile: 99)
                            numbers["throughput_ratio"] = result.throughput / direct.throughput
                        }
                        entry[name] = numbers
                        print(String(format: "gateway %@ c=%-3d %-9@ p50 %7.3f ms  p99 %7.3f ms  %8.0f req/s  errors %d%@",
                                     stream ? "stream" : "whole ", clients, name as NSString,
                                     result.latency.milliseconds(atPercentile: 50), result.latency.milliseconds(atPercentile: 99),
                                     result.throughput, result.errors,
                                     (numbers["added_p50_ms"] as? Double).map { String(format: "  added p50 %+.3f ms p99 %+.3f ms", $0,
                                                                                      numbers["added_p99_ms"] as? Double ?? 0) as NSString } ?? ""))
                    }
                    cases.append(entry)
                }
            }
            try? await client.shutdown()
            part["cases"] = cases
            return part
        }
    }

    /// An instant OpenAI-compatible upstream for the gateway benchmark: a fixed completion, or a
    /// stream of 20 chunks, with no sleeps.
    struct FakeUpstream: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fake-upstream", abstract: "An instant fake OpenAI upstream (for `bench inference`).", shouldDisplay: false)

        @Option(name: .long, help: "Port (0: a free one).")
        var port: Int = 0

        static let completion = ByteBuffer(string: #"{"id":"chatcmpl-fake","object":"chat.completion","created":1700000000,"model":"fake","choices":[{"index":0,"message":{"role":"assistant","content":"This is a fixed answer from the fake upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22}}"#)

        static let stream: ByteBuffer = {
            var text = ""
            for index in 0..<20 {
                text += #"data: {"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,"model":"fake","choices":[{"index":0,"delta":{"content":"word\#(index) "},"finish_reason":null}]}"# + "\n\n"
            }
            text += #"data: {"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,"model":"fake","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}"# + "\n\n"
            text += "data: [DONE]\n\n"
            return ByteBuffer(string: text)
        }()

        func run() async throws {
            var logger = Logger(label: "fake-upstream")
            logger.logLevel = .error
            let router = Router()
            router.get("/health") { _, _ in "{\"status\":\"ok\"}" }
            router.post("/v1/chat/completions") { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                let streamed = body.readableBytesView.count > 0 && String(buffer: body).contains(#""stream":true"#)
                var headers = HTTPFields()
                headers[.contentType] = streamed ? "text/event-stream" : "application/json"
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: streamed ? Self.stream : Self.completion))
            }
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
                                  onServerRunning: { channel in
                                      // Unbuffered: the benchmark reads this line through a pipe.
                                      FileHandle.standardOutput.write(Data("listening on http://127.0.0.1:\(channel.localAddress?.port ?? 0)\n".utf8))
                                  },
                                  logger: logger)
            try await app.runService()
        }
    }

    /// The floor of the gateway's own HTTP stack, for `bench inference`: a pass-through proxy on
    /// the same libraries as `conclave serve` (Hummingbird in, AsyncHTTPClient out, through the
    /// client the model providers use) with nothing else: no authentication, no decoding, no
    /// governance, no audit, no metrics. Not a product feature.
    struct BareProxy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bare-proxy", abstract: "A pass-through proxy with no logic (for `bench inference`).", shouldDisplay: false)

        @Option(name: .long, help: "Port (0: a free one).")
        var port: Int = 0

        @Option(name: .long, help: "The upstream's chat completions URL.")
        var upstream: String

        func run() async throws {
            var logger = Logger(label: "bare-proxy")
            logger.logLevel = .error
            let client = InferenceHTTPClient.shared(connectTimeout: .seconds(5))
            let router = Router()
            router.post("/v1/chat/completions") { [upstream] request, _ -> Response in
                var outbound = HTTPClientRequest(url: upstream)
                outbound.method = .POST
                outbound.headers.add(name: "content-type", value: "application/json")
                outbound.body = .bytes(try await request.body.collect(upTo: 1 << 20))
                let response = try await client.execute(outbound, timeout: .seconds(30))
                var headers = HTTPFields()
                headers[.contentType] = response.headers.first(name: "content-type") ?? "application/json"
                // Relayed as it arrives, so a stream stays a stream.
                return Response(status: .init(code: Int(response.status.code)), headers: headers,
                                body: .init(asyncSequence: response.body))
            }
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
                                  onServerRunning: { channel in
                                      FileHandle.standardOutput.write(Data("listening on http://127.0.0.1:\(channel.localAddress?.port ?? 0)\n".utf8))
                                  },
                                  logger: logger)
            try await app.runService()
        }
    }
}
