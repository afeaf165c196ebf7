import AsyncHTTPClient
import ConclaveCore
import ConclaveInference
import ConclaveStorage
import ConclaveTesting
import Foundation
import NIOCore
import Testing

/// Distributed mode on loopback, every part real: PostgreSQL, nats-server with JetStream, one
/// llama-server with SmolLM2, `conclave serve` gateways and one `conclave worker` per role (plus
/// extras), all as separate processes. Asserts what the platform controls: statuses, traces,
/// where steps ran, stored conversations and events, the audit chain.
@Suite(.serialized) struct DistributedModeTests {
    /// The processes of one test's cluster.
    final class Cluster: Sendable {
        let directory: URL
        let storageURL: String
        let nats: NATSTestServer
        let llama: LlamaServerSupervisor
        let llamaTask: Task<Void, any Error>
        let environment: [String: String]
        /// A bearer token of `u-employee`.
        let token: String
        let gateways: [ServeProcess]
        let gatewayPorts: [Int]
        let workers: [(role: AgentRole, process: ServeProcess, port: Int)]

        static func start(gateways gatewayCount: Int, extraWorkers: [AgentRole] = [],
                          settings: [String: String] = [:]) async throws -> Cluster {
            let directory = try TestRuntime.temporaryDirectory()
            let storageURL = try await PostgresTestServer.shared().makeDatabase()
            let nats = try await NATSTestServer.start()
            let root = EmbeddedModelLocator.projectRoot()
            let server = try #require(EmbeddedModelLocator.llamaServer(root: root), "run make setup: llama-server is missing")
            let model = try #require(EmbeddedModelLocator.smolLM2(root: root), "run make setup: SmolLM2 is missing")
            let llama = try LlamaServerSupervisor(configuration: .init(
                serverPath: server, modelPath: model, contextSize: 8192, parallelSlots: 4, threads: 2,
                startupTimeout: .seconds(120), logPath: directory.appendingPathComponent("llama-server.log").path))
            let llamaTask = Task { try await llama.run() }
            let deadline = ContinuousClock.now + .seconds(120)
            while llama.url == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            let llamaURL = try #require(llama.url, "llama-server did not start")
            var environment = [
                "CONCLAVE_STORAGE__DRIVER": "postgres", "CONCLAVE_STORAGE__URL": storageURL, "CONCLAVE_STORAGE__MAX_CONNECTIONS": "4",
                "CONCLAVE_MESSAGING__DRIVER": "nats", "CONCLAVE_MESSAGING__URL": nats.url,
                "CONCLAVE_MESSAGING__ACK_WAIT_SECONDS": "3",
                "CONCLAVE_INFERENCE__PROVIDER": "openai", "CONCLAVE_INFERENCE__ENDPOINT": llamaURL,
                "CONCLAVE_KNOWLEDGE__RETRIEVAL": "bm25",
                // Full governance: the text guard travels with every step to the workers.
                "CONCLAVE_AUTH__HS256_KEY_FILE": directory.appendingPathComponent("hs256.key").path,
                "CONCLAVE_AUDIT__SIGNING_KEY_FILE": directory.appendingPathComponent("audit.key").path,
                "CONCLAVE_SERVER__SHUTDOWN_GRACE_SECONDS": "5",
            ]
            environment.merge(settings) { _, new in new }
            try (UUID().uuidString + UUID().uuidString).write(to: directory.appendingPathComponent("hs256.key"), atomically: true,
                                                              encoding: .utf8)
            let token = try await DistributedModeTests.token(environment: environment)
            var gateways: [ServeProcess] = []
            var ports: [Int] = []
            var workers: [(role: AgentRole, process: ServeProcess, port: Int)] = []
            do {
                // The first gateway ingests the documents and creates the audit key; the rest start after it.
                var first = environment
                first["CONCLAVE_KNOWLEDGE__INGEST_ON_START"] = "[\(TestRuntime.meridianDocs)]"
                gateways.append(try ServeProcess(arguments: ["serve", "--port", "0"], environment: first))
                ports.append(try await gateways[0].waitForPort())
                for _ in 1..<max(1, gatewayCount) {
                    gateways.append(try ServeProcess(arguments: ["serve", "--port", "0"], environment: environment))
                    ports.append(try await gateways.last!.waitForPort())
                }
                for role in AgentRole.allCases + extraWorkers {
                    let worker = try ServeProcess(arguments: ["worker", "--role", role.rawValue, "--port", "0"], environment: environment)
                    workers.append((role, worker, 0))
                }
                for index in workers.indices { workers[index].port = try await workers[index].process.waitForPort() }
            } catch {
                for process in gateways + workers.map(\.process) { process.send(SIGKILL) }
                llamaTask.cancel()
                nats.stop()
                throw error
            }
            return Cluster(directory: directory, storageURL: storageURL, nats: nats, llama: llama, llamaTask: llamaTask,
                           environment: environment, token: token, gateways: gateways, gatewayPorts: ports, workers: workers)
        }

        private init(directory: URL, storageURL: String, nats: NATSTestServer, llama: LlamaServerSupervisor,
                     llamaTask: Task<Void, any Error>, environment: [String: String], token: String, gateways: [ServeProcess],
                     gatewayPorts: [Int],
                     workers: [(role: AgentRole, process: ServeProcess, port: Int)]) {
            self.directory = directory
            self.storageURL = storageURL
            self.nats = nats
            self.llama = llama
            self.llamaTask = llamaTask
            self.environment = environment
            self.token = token
            self.gateways = gateways
            self.gatewayPorts = gatewayPorts
            self.workers = workers
        }

        func gateway(_ index: Int) -> String { "http://127.0.0.1:\(gatewayPorts[index])" }

        /// Steps a worker completed, from its `/metrics`.
        func completedSteps(port: Int) async throws -> Int {
            let metrics = try await TestHTTP.send(.GET, "http://127.0.0.1:\(port)/metrics").body
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("conclave_worker_steps_total") && $0.contains("outcome=\"completed\"") }
            return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        }

        func stop() async {
            for process in gateways + workers.map(\.process) where process.process.isRunning { process.send(SIGTERM) }
            for process in gateways + workers.map(\.process) { _ = try? await process.waitForExit(timeout: .seconds(20)) }
            llamaTask.cancel()
            _ = await llamaTask.result
            nats.stop()
            try? FileManager.default.removeItem(at: directory)
        }

        func store() async throws -> PostgresStore {
            try await PostgresStore(url: storageURL, maxConnections: 2)
        }
    }

    /// A bearer token of `u-employee` from `conclave token` under `environment`'s configuration.
    static func token(environment: [String: String]) async throws -> String {
        let issue = try ServeProcess(arguments: ["token", "--user", "u-employee"], environment: environment)
        guard try await issue.waitForExit() == 0,
              let token = issue.printed.split(separator: "\n").last(where: { $0.split(separator: ".").count == 3 }) else {
            throw ServeProcessError(message: "conclave token failed: \(issue.printed)")
        }
        return String(token)
    }

    static func body(_ question: String, stream: Bool) -> String {
        #"{"model":"conclave/full","stream":\#(stream),"temperature":0,"seed":42,"max_tokens":96,"messages":[{"role":"user","content":\#(TestHTTP.quoted(question))}]}"#
    }

    @Test func stepsRunOnTheWorkersAndAConversationContinuesOnAnotherGatewayAfterAKill() async throws {
        // Every process exports its spans to a test OTLP receiver: one request is one trace across them.
        let receiver = OTLPTestReceiver()
        try await receiver.run { traces in
            try await stepsRunOnTheWorkers(receiver: receiver, traces: traces)
        }
    }

    private func stepsRunOnTheWorkers(receiver: OTLPTestReceiver, traces: String) async throws {
        let cluster = try await Cluster.start(gateways: 2, settings: [
            "CONCLAVE_TRACING__ENABLED": "true", "CONCLAVE_TRACING__ENDPOINT": traces, "OTEL_BSP_SCHEDULE_DELAY": "200",
        ])
        do {
            let question = "What is the yearly annual leave entitlement for staff working full time?"
            let traceID = RandomID.make() + RandomID.make().prefix(8)
            let clientSpan = String(RandomID.make().prefix(16))
            let first = try await TestHTTP.send(.POST, cluster.gateway(0) + "/v1/chat/completions", json: Self.body(question, stream: false),
                                                headers: [("Authorization", "Bearer \(cluster.token)"),
                                                          ("traceparent", "00-\(traceID)-\(clientSpan)-01")],
                                                timeout: .seconds(180))
            #expect(first.status == 200, "\(first.body)")
            // The trace crossed the bus: each worker's step span (consumer) is the child of the
            // gateway's step span for its role, and the worker's model calls are its children.
            var spans: [OTLPTestReceiver.Span] = []
            let deadline = ContinuousClock.now + .seconds(30)
            repeat {
                try await Task.sleep(for: .milliseconds(300))
                spans = receiver.spans.filter { $0.traceID == traceID }
            } while spans.filter({ $0.kind == 5 }).count < 5 && ContinuousClock.now < deadline
            for role in ["planner", "retriever", "reasoner", "validator", "responder"] {
                let gatewaySide = spans.first { $0.name == "invoke_agent \(role)" && $0.kind == 1 }
                let workerSide = spans.first { $0.name == "invoke_agent \(role)" && $0.kind == 5 }
                #expect(gatewaySide != nil && workerSide?.parentSpanID == gatewaySide?.spanID, "\(role): \(spans)")
            }
            let workerSteps = Set(spans.filter { $0.kind == 5 }.map(\.spanID))
            let modelCalls = spans.filter { $0.name.hasPrefix("chat ") }
            #expect(!modelCalls.isEmpty && modelCalls.allSatisfy { workerSteps.contains($0.parentSpanID) }, "\(spans)")
            #expect(spans.contains { $0.kind == 2 && $0.parentSpanID == clientSpan }, "\(spans)")
            let conversation = try #require(first.header("X-Conclave-Conversation"))
            let trace = ((first.json?["conclave"] as? [String: Any])?["trace"] as? [[String: Any]]) ?? []
            #expect(Set(trace.compactMap { $0["step"] as? String }) == ["plan", "retrieve", "reason", "validate", "respond"])
            #expect(trace.allSatisfy { $0["status"] as? String == "completed" }, "\(trace)")
            let retrieve = trace.first { $0["step"] as? String == "retrieve" }
            #expect((retrieve?["summary"] as? String)?.contains("HR-001") == true, "\(trace)")
            // The workers reached the model: the planner's plan is the model's, not the fallback.
            let plan = trace.first { $0["step"] as? String == "plan" }
            #expect((plan?["summary"] as? String)?.contains("fallback") == false, "\(trace)")
            #expect(((first.json?["usage"] as? [String: Any])?["completion_tokens"] as? Int ?? 0) > 0, "\(first.body)")
            // Every step ran in its role's worker process, none in the gateway.
            for worker in cluster.workers {
                #expect(try await cluster.completedSteps(port: worker.port) == 1, "\(worker.role)")
            }

            // The gateway that served the first turn dies; the client retries the next turn on the
            // other gateway with the same conversation id, and the history is there.
            cluster.gateways[0].send(SIGKILL)
            _ = try await cluster.gateways[0].waitForExit()
            let second = try await TestHTTP.send(.POST, cluster.gateway(1) + "/v1/chat/completions",
                                                 json: Self.body("And for part-time staff?", stream: false),
                                                 headers: [("X-Conclave-Conversation", conversation), ("Authorization", "Bearer \(cluster.token)")],
                                                 timeout: .seconds(180))
            #expect(second.status == 200, "\(second.body)")
            #expect(second.json?["conversation_id"] as? String == conversation)
            // The follow-up was searched with the first turn: only the history makes it about leave.
            let secondTrace = ((second.json?["conclave"] as? [String: Any])?["trace"] as? [[String: Any]]) ?? []
            let secondRetrieve = secondTrace.first { $0["step"] as? String == "retrieve" }
            #expect((secondRetrieve?["summary"] as? String)?.contains("HR-001") == true, "\(secondTrace)")
            let store = try await cluster.store()
            let stored = try #require(try await store.conversation(id: conversation))
            #expect(stored.messages.map(\.role) == [.user, .assistant, .user, .assistant])
            await store.close()

            // No audit record was lost to the kill: the shared chain verifies.
            let verify = try ServeProcess(arguments: ["audit", "verify"], environment: cluster.environment)
            #expect(try await verify.waitForExit() == 0, "\(verify.printed)")
            #expect(verify.printed.contains("audit chain valid"), "\(verify.printed)")
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    @Test func aWorkerKilledMidStepIsReplacedAndTheClientGetsOneCompleteAnswer() async throws {
        // Two responders; the model phrases the answer, so the responder streams for a while.
        let cluster = try await Cluster.start(gateways: 1, extraWorkers: [.responder],
                                              settings: ["CONCLAVE_WORKFLOWS__ANSWER_PHRASING": "model"])
        do {
            var request = HTTPClientRequest(url: cluster.gateway(0) + "/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Authorization", value: "Bearer \(cluster.token)")
            request.body = .bytes(ByteBuffer(string: Self.body(
                "What is the yearly annual leave entitlement for staff working full time?", stream: true)))
            let responders = cluster.workers.filter { $0.role == .responder }
            // Watch both responders; kill the first one seen running the step.
            let killer = Task { () -> Bool in
                let deadline = ContinuousClock.now + .seconds(150)
                while ContinuousClock.now < deadline {
                    for responder in responders {
                        let ready = try? await TestHTTP.send(.GET, "http://127.0.0.1:\(responder.port)/readyz", timeout: .seconds(2))
                        if (ready?.json?["in_flight"] as? Int ?? 0) > 0 {
                            responder.process.send(SIGKILL)
                            return true
                        }
                    }
                    try await Task.sleep(for: .milliseconds(5))
                }
                return false
            }
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(180))
            #expect(response.status == .ok)
            var body = ""
            for try await buffer in response.body { body += String(buffer: buffer) }
            killer.cancel()
            let killed: AgentRole? = (try? await killer.value) == true ? .responder : nil
            #expect(killed == .responder, "no responder was found mid-step")
            let data = body.components(separatedBy: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
            #expect(data.last == "[DONE]", "\(body.suffix(400))")
            #expect(!body.contains(#""error""#), "\(body.suffix(400))")
            let chunks = data.dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let streamed = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }
                .joined()
            #expect(!streamed.isEmpty)
            let id = try #require(chunks.first?["id"] as? String)
            let runID = "run_" + id.dropFirst("chatcmpl-".count)
            // The run's log holds exactly one completed responder step and a completed run.
            let store = try await cluster.store()
            var events: [RunEvent] = []
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                events = try await store.events(ofRun: runID)
                if events.last?.kind == .runCompleted { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            await store.close()
            #expect(events.last?.kind == .runCompleted, "\(events.map(\.kind))")
            #expect(events.filter { $0.kind == .stepCompleted && $0.role == .responder }.count == 1)
            #expect(!events.contains { $0.kind == .stepFailed }, "\(events.filter { $0.kind == .stepFailed }.map(\.detail))")
            // The surviving responder finished the redelivered step.
            let survivor = try #require(responders.first { $0.process.process.isRunning })
            #expect(try await cluster.completedSteps(port: survivor.port) == 1)
            // The client's text is one answer: the redelivery's text was not appended to the dead worker's.
            let conversationStore = try await cluster.store()
            let turn = try await conversationStore.conversation(id: try #require(chunks.first { $0["conversation_id"] != nil }?["conversation_id"] as? String))
            await conversationStore.close()
            #expect(turn?.messages.last?.content == streamed, "stored \(turn?.messages.last?.content ?? "nil") vs streamed \(streamed)")
            // The killed worker cost no audit record: the chain verifies.
            let verify = try ServeProcess(arguments: ["audit", "verify"], environment: cluster.environment)
            #expect(try await verify.waitForExit() == 0, "\(verify.printed)")
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }
}

/// `conclave cluster up|down`: the local cluster the docs walk through.
@Suite(.serialized) struct ClusterCommandTests {
    @Test func clusterUpServesOnEveryGatewayAndDownStopsEveryProcess() async throws {
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let spec = directory.appendingPathComponent("cluster.yaml")
        // A short acknowledgement wait, so that a killed worker's step goes to its restarted self quickly.
        let base = directory.appendingPathComponent("conclave.yaml")
        try "messaging:\n  ack_wait_seconds: 3\n".write(to: base, atomically: true, encoding: .utf8)
        try """
            directory: \(directory.appendingPathComponent("cluster").path)
            config: \(base.path)
            gateways: 2
            workers: {responder: 2}
            inference: {replicas: 1, parallel_slots: 4, context_size: 8192}
            ingest: [\(TestRuntime.meridianDocs)]
            """.write(to: spec, atomically: true, encoding: .utf8)
        let up = try ServeProcess(arguments: ["cluster", "up", "--config", spec.path])
        #expect(try await up.waitForExit(timeout: .seconds(300)) == 0, "\(up.printed)")
        let statePath = directory.appendingPathComponent("cluster/cluster.json")
        let state = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: statePath)) as? [String: Any])
        let members = try #require(state["members"] as? [[String: Any]])
        let gateways = try #require(state["gateways"] as? [String])
        let pids = members.compactMap { ($0["pid"] as? NSNumber)?.int32Value }
        // PostgreSQL, NATS, one llama-server, two gateways, four single workers and two responders.
        #expect(members.count == 11, "\(members.map { $0["name"] ?? "?" })")
        #expect(pids.allSatisfy { kill($0, 0) == 0 }, "a listed process is not running")
        let token = try await DistributedModeTests.token(environment: [:])
        for gateway in gateways {
            let reply = try await TestHTTP.send(
                .POST, gateway + "/v1/chat/completions",
                json: DistributedModeTests.body("What is the yearly annual leave entitlement for staff working full time?", stream: false),
                headers: [("Authorization", "Bearer \(token)")], timeout: .seconds(180))
            #expect(reply.status == 200, "\(gateway): \(reply.body)")
            let trace = ((reply.json?["conclave"] as? [String: Any])?["trace"] as? [[String: Any]]) ?? []
            #expect(trace.count == 5 && trace.allSatisfy { $0["status"] as? String == "completed" }, "\(trace)")
        }
        // Fault injection: `bench load` SIGKILLs a worker every 2 s and starts it again (as its
        // pod would be); every request is still answered, and cluster.json names the new processes.
        let report = directory.appendingPathComponent("load.json")
        let load = try ServeProcess(arguments: [
            "bench", "load", "--url", gateways.joined(separator: ","), "--token", token, "--model", "conclave/full", "--users", "2",
            "--duration", "7", "--max-tokens", "16", "--kill-worker-every", "2", "--cluster", directory.appendingPathComponent("cluster").path,
            "--output", report.path,
        ])
        #expect(try await load.waitForExit(timeout: .seconds(300)) == 0, "\(load.printed)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any])
        let level = try #require((result["levels"] as? [[String: Any]])?.first)
        #expect((result["workers_killed"] as? Int ?? 0) >= 3, "\(result)")
        #expect((level["sent"] as? Int ?? 0) > 0 && level["availability"] as? Double == 1, "\(level)")
        let after = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: statePath)) as? [String: Any])
        let restarted = ((after["members"] as? [[String: Any]]) ?? []).compactMap { ($0["pid"] as? NSNumber)?.int32Value }
        #expect(restarted.count == 11 && restarted.allSatisfy { kill($0, 0) == 0 }, "a listed process is not running")
        #expect(Set(restarted).subtracting(pids).count >= 3, "the killed workers were not replaced")

        let again = try ServeProcess(arguments: ["cluster", "up", "--config", spec.path])
        #expect(try await again.waitForExit() != 0)
        #expect(again.printed.contains("already up"))
        let down = try ServeProcess(arguments: ["cluster", "down", "--config", spec.path])
        #expect(try await down.waitForExit(timeout: .seconds(120)) == 0, "\(down.printed)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(Set(pids + restarted).filter { kill($0, 0) == 0 && !Self.isZombie($0) }.isEmpty, "processes left after down")
        #expect(!FileManager.default.fileExists(atPath: statePath.path))
    }

    static func isZombie(_ pid: Int32) -> Bool {
        ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").contains(") Z ")
    }
}
