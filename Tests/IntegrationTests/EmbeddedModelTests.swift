import AsyncHTTPClient
import ConclaveAgents
import ConclaveCore
import ConclaveInference
import ConclaveKnowledge
import ConclaveServer
import ConclaveTesting
import Foundation
import NIOCore
import Testing

/// End-to-end tests against the real `llama-server` + SmolLM2-135M. They assert what the platform
/// controls (status, shape, trace, citations, retrieved sources), never the model's wording.
@Suite(.serialized) struct EmbeddedModelTests {
    static let workflows = ["single", "planner-responder", "planner-retriever-responder", "full"]
    static let expectedSteps: [String: Set<String>] = [
        "single": ["respond"], "planner-responder": ["plan", "respond"],
        "planner-retriever-responder": ["plan", "retrieve", "respond"],
        "full": ["plan", "retrieve", "reason", "validate", "respond"],
    ]

    static func body(_ workflow: String, _ question: String, stream: Bool) -> String {
        #"{"model":"conclave/\#(workflow)","stream":\#(stream),"stream_options":{"include_usage":true},"temperature":0,"seed":42,"max_tokens":96,"messages":[{"role":"user","content":\#(TestHTTP.quoted(question))}]}"#
    }

    @Test func everyWorkflowAnswersWholeAndStreamed() async throws {
        try await EmbeddedServer.with { server in
            let question = "What is the yearly annual leave entitlement for staff working full time?"
            for workflow in Self.workflows {
                // Non-streaming.
                let reply = try await TestHTTP.send(.POST, server.url + "/v1/chat/completions",
                                                    json: Self.body(workflow, question, stream: false))
                #expect(reply.status == 200, "\(workflow): \(reply.body)")
                let json = try #require(reply.json)
                let message = ((json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
                #expect(message?.isEmpty == false, "\(workflow)")
                let conclave = try #require(json["conclave"] as? [String: Any])
                let trace = try #require(conclave["trace"] as? [[String: Any]])
                #expect(Set(trace.compactMap { $0["step"] as? String }) == Self.expectedSteps[workflow], "\(workflow)")
                #expect(trace.allSatisfy { $0["status"] as? String == "completed" })
                let citations = try #require(conclave["citations"] as? [[String: Any]])
                if let retrieve = trace.first(where: { $0["step"] as? String == "retrieve" }) {
                    #expect((retrieve["summary"] as? String)?.contains("HR-001") == true, "\(workflow): \(retrieve)")
                }
                if workflow == "full" && citations.isEmpty {
                    // The grounding filter may withhold an unsupported answer; then it must say so.
                    #expect(message == ResponderAgent.notFoundAnswer, "\(workflow): \(message ?? "")")
                } else {
                    #expect(citations.contains { $0["source_id"] as? String == "HR-001" }, "\(workflow): \(citations)")
                }
                #expect(((json["usage"] as? [String: Any])?["completion_tokens"] as? Int ?? 0) > 0)

                // Streaming.
                let streamed = try await TestHTTP.send(.POST, server.url + "/v1/chat/completions",
                                                       json: Self.body(workflow, question, stream: true))
                #expect(streamed.status == 200)
                #expect(streamed.header("content-type") == "text/event-stream")
                let data = streamed.sseData
                #expect(data.last == "[DONE]", "\(workflow)")
                let chunks = data.dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                #expect(chunks.count == data.count - 1)
                let text = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }
                    .joined()
                #expect(!text.isEmpty)
                let final = try #require(chunks.last { $0["conclave"] != nil }?["conclave"] as? [String: Any])
                let streamedCitations = (final["citations"] as? [[String: Any]]) ?? []
                #expect(streamedCitations.contains { $0["source_id"] as? String == "HR-001" }
                        || (workflow == "full" && text == ResponderAgent.notFoundAnswer))
            }
        }
    }

    @Test func theModelChoosesASQLTemplateWithinTheSchema() async throws {
        try await EmbeddedServer.with(configure: { $0.knowledge.sqlTemplateChoice = "model" }) { server in
            let connector = try #require(server.runtime.database)
            let templates = Set(connector.catalog.templates.filter { !$0.isLookup }.map(\.name) + ["none"])
            // llama-server compiles the connector's schema into a grammar: whatever the 135M model
            // writes is a choice of one of the catalog's templates (or none), never SQL.
            for question in ["How many shipments were delayed?", "Which customers have the most shipments?"] {
                let reply = try await server.runtime.model.complete(ChatRequest(
                    messages: [.system(AgentPrompts.builtIn.retriever.instructions! + "\n\nTemplates:\n" + connector.choiceCatalog),
                               .user("Question: \(question)")],
                    temperature: 0, maxTokens: 120, seed: 42, jsonSchema: connector.choiceSchema))
                let choice = try JSONDecoder().decode(TemplateChoice.self, from: Data(reply.content.utf8))
                #expect(templates.contains(choice.template), "\(reply.content)")
            }
            // Through the API: the model chooses (or the rules, when its choice does not validate);
            // either way the answer is the database's record, cited.
            let reply = try await TestHTTP.send(.POST, server.url + "/v1/chat/completions",
                                                json: Self.body("full", "How many shipments were delayed?", stream: false))
            #expect(reply.status == 200, "\(reply.body)")
            let conclave = try #require(reply.json?["conclave"] as? [String: Any])
            let citations = try #require(conclave["citations"] as? [[String: Any]])
            #expect(citations.contains { $0["source_id"] as? String == "db:shipments" }, "\(citations)")
        }
    }

    @Test func secondTurnResolvesAgainstTheFirst() async throws {
        try await EmbeddedServer.with { server in
            let first = try await TestHTTP.send(
                .POST, server.url + "/v1/chat/completions",
                json: Self.body("full", "What is the yearly annual leave entitlement for staff working full time?", stream: false))
            #expect(first.status == 200)
            let conversation = try #require(first.header("X-Conclave-Conversation"))
            // On its own this follow-up names neither leave nor the policy; only the first turn does.
            let second = try await TestHTTP.send(.POST, server.url + "/v1/chat/completions",
                                                 json: Self.body("full", "And for part-time staff?", stream: false),
                                                 headers: [("X-Conclave-Conversation", conversation)])
            #expect(second.status == 200)
            #expect(second.json?["conversation_id"] as? String == conversation)
            // The follow-up was searched together with the first turn: the leave policy was retrieved.
            let trace = ((second.json?["conclave"] as? [String: Any])?["trace"] as? [[String: Any]]) ?? []
            let retrieve = trace.first { $0["step"] as? String == "retrieve" }
            #expect((retrieve?["summary"] as? String)?.contains("HR-001") == true, "\(trace)")
            // Whatever is cited was retrieved for this turn.
            let citations = ((second.json?["conclave"] as? [String: Any])?["citations"] as? [[String: Any]]) ?? []
            let retrieved = (retrieve?["summary"] as? String) ?? ""
            for citation in citations {
                #expect(retrieved.contains((citation["source_id"] as? String) ?? "<none>"), "\(citation) not in \(retrieved)")
            }
            let stored = try #require(try await server.runtime.store.conversation(id: conversation))
            #expect(stored.messages.map(\.role) == [.user, .assistant, .user, .assistant])
        }
    }

    @Test func clientDisconnectCancelsTheRun() async throws {
        try await EmbeddedServer.with { server in
            var request = HTTPClientRequest(url: server.url + "/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: Self.body("full", "Summarise the deployment freeze windows and the on-call rotation rules.", stream: true)))
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            var runID: String?
            do {
                let response = try await client.execute(request, timeout: .seconds(120))
                var seen = ""
                // Read the first chunk (written before planning starts), then hang up.
                for try await buffer in response.body {
                    seen += String(buffer: buffer)
                    if let range = seen.range(of: #""id":"chatcmpl-([0-9a-f]+)""#, options: .regularExpression) {
                        runID = "run_" + seen[range].dropFirst(#""id":"chatcmpl-"#.count).dropLast()
                        break
                    }
                }
            }
            try await client.shutdown()
            let id = try #require(runID)
            // The run stops with a cancellation, recorded in its event log.
            let deadline = ContinuousClock.now + .seconds(60)
            var events: [RunEvent] = []
            while ContinuousClock.now < deadline {
                events = try await server.runtime.store.events(ofRun: id)
                if events.last?.kind == .runFailed || events.last?.kind == .runCompleted { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(events.last?.kind == .runFailed, "\(events.map(\.kind))")
            #expect(events.last?.detail == "cancelled")
            #expect(!events.contains { $0.kind == .stepCompleted && $0.role == .responder })
        }
    }

    @Test func twoReplicasKeepServingWhenOneIsKilledAndTheDeadOneRejoins() async throws {
        try await EmbeddedServer.with(replicas: 2) { server in
            let admin = try await TestHTTP.send(.GET, server.url + "/admin/inference")
            #expect(admin.status == 200)
            #expect(admin.json?["replicas_desired"] as? Int == 2)
            #expect(admin.json?["replicas_ready"] as? Int == 2)
            #expect((admin.json?["replicas"] as? [[String: Any]])?.count == 2)
            let victim = try #require(server.runtime.supervisors.last)
            let pid = try #require(victim.processID)
            kill(pid, SIGKILL)
            // Every request still succeeds: on the survivor, or retried onto it.
            for question in ["How many days of annual leave?", "How long is parental leave?", "What is the expense deadline?"] {
                let reply = try await TestHTTP.send(.POST, server.url + "/v1/chat/completions",
                                                    json: Self.body("single", question, stream: false))
                #expect(reply.status == 200, "\(reply.body)")
            }
            // The dead replica is restarted and rejoins the pool.
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline, server.runtime.pool?.ready.count != 2 || victim.processID == pid {
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(victim.processID != pid)
            #expect(server.runtime.pool?.ready.count == 2)
        }
    }

    @Test func killedModelServerMeans503ThenRecovers() async throws {
        try await EmbeddedServer.with { server in
            let supervisor = try #require(server.runtime.supervisor)
            let pid = try #require(supervisor.processID)
            kill(pid, SIGKILL)
            let down = try await TestHTTP.send(.POST, server.url + "/v1/chat/completions",
                                               json: Self.body("full", "How many days of annual leave?", stream: false))
            // Either the retries reach the restarted server (a restart takes a second or two) or
            // the request fails fast with 503 and Retry-After; never a hang or another error.
            #expect(down.status == 503 || down.status == 200, "\(down.body)")
            if down.status == 503 {
                #expect(down.header("Retry-After") != nil)
                #expect((down.json?["error"] as? [String: Any])?["code"] as? String == "model_unavailable")
            }
            // The supervisor restarts it; readiness comes back.
            let deadline = ContinuousClock.now + .seconds(120)
            var ready = 503
            while ContinuousClock.now < deadline {
                ready = try await TestHTTP.send(.GET, server.url + "/readyz").status
                if ready == 200 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(ready == 200)
            #expect(supervisor.processID != pid)
            let up = try await TestHTTP.send(.POST, server.url + "/v1/chat/completions",
                                             json: Self.body("single", "How many days of annual leave?", stream: false))
            #expect(up.status == 200)
        }
    }
}
