import ConclaveCore
import ConclaveServer
import ConclaveTelemetry
import ConclaveTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// API behaviour over real HTTP with the scripted test model (a test double) behind it.
@Suite struct ChatCompletionsTests {
    static let documents = [TestRuntime.meridianDocs]

    private func withApp(model: ScriptedChatModel = ScriptedChatModel(),
                         configure: (inout ConclaveConfiguration) -> Void = { _ in },
                         _ body: @Sendable (any TestClientProtocol, ConclaveRuntime) async throws -> Void) async throws {
        Telemetry.bootstrap(logLevel: .error)
        var configuration = TestRuntime.configuration()
        configure(&configuration)
        let runtime = try await TestRuntime.make(model: model, configuration: configuration, documents: Self.documents)
        let app = try ConclaveServer.makeApplication(runtime: runtime)
        try await app.test(.live) { client in try await body(client, runtime) }
    }

    private func post(_ client: any TestClientProtocol, _ json: String, headers: HTTPFields = [:]) async throws
        -> TestResponse
    {
        try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: ByteBuffer(string: json))
    }

    private func errorBody(_ response: TestResponse) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
        return try #require(object?["error"] as? [String: Any])
    }

    @Test func malformedJSONIs400InOpenAIShape() async throws {
        try await withApp { client, _ in
            let response = try await post(client, "{not json")
            #expect(response.status == .badRequest)
            #expect(response.headers[.contentType] == "application/json")
            let error = try errorBody(response)
            #expect(error["type"] as? String == "invalid_request_error")
            #expect(error["message"] is String)
            #expect(error.keys.contains("param") && error.keys.contains("code"))
        }
    }

    @Test func missingMessagesIs400NamingTheParameter() async throws {
        try await withApp { client, _ in
            let response = try await post(client, #"{"model":"conclave/full"}"#)
            #expect(response.status == .badRequest)
            #expect(try errorBody(response)["param"] as? String == "messages")
            let empty = try await post(client, #"{"messages":[]}"#)
            #expect(empty.status == .badRequest)
            let assistantLast = try await post(client, #"{"messages":[{"role":"assistant","content":"hi"}]}"#)
            #expect(assistantLast.status == .badRequest)
        }
    }

    @Test func unknownModelIs404ModelNotFound() async throws {
        try await withApp { client, _ in
            let response = try await post(client, #"{"model":"conclave/nope","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(response.status == .notFound)
            let error = try errorBody(response)
            #expect(error["code"] as? String == "model_not_found")
            #expect(error["param"] as? String == "model")
        }
    }

    @Test func oversizedBodyIs413() async throws {
        try await withApp(configure: { $0.server.maxBodyBytes = 1024 }) { client, _ in
            let big = String(repeating: "x", count: 4096)
            let response = try await post(client, #"{"messages":[{"role":"user","content":"\#(big)"}]}"#)
            #expect(response.status == .contentTooLarge)
            #expect(try errorBody(response)["code"] as? String == "payload_too_large")
        }
    }

    @Test func messageCountAndTokenLimitsAre400NamingTheParameter() async throws {
        try await withApp(configure: { $0.server.maxMessages = 3; $0.server.maxTokens = 64 }) { client, _ in
            let four = Array(repeating: #"{"role":"user","content":"hi"}"#, count: 4).joined(separator: ",")
            var response = try await post(client, #"{"messages":[\#(four)]}"#)
            #expect(response.status == .badRequest)
            #expect(try errorBody(response)["param"] as? String == "messages")
            for (field, value) in [("max_tokens", 65), ("max_completion_tokens", 65), ("max_completion_tokens", 0)] {
                // The other field is valid: each one is checked on its own.
                let other = field == "max_tokens" ? "max_completion_tokens" : "max_tokens"
                response = try await post(client, #"{"messages":[{"role":"user","content":"hi"}],"\#(field)":\#(value),"\#(other)":8}"#)
                #expect(response.status == .badRequest)
                #expect(try errorBody(response)["param"] as? String == field)
            }
            response = try await post(client, #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":64,"metadata":null,"user":null}"#)
            #expect(response.status == .ok)
        }
    }

    @Test func aKnownPathWithTheWrongMethodIs405WithAllow() async throws {
        try await withApp { client, _ in
            let response = try await client.execute(uri: "/v1/chat/completions", method: .get)
            #expect(response.status == .methodNotAllowed)
            #expect(response.headers[.allow] == "POST")
            #expect(try errorBody(response)["code"] as? String == "method_not_allowed")
            let contract = try await client.execute(uri: "/openapi.json", method: .get)
            #expect(contract.status == .ok)
            let paths = try #require((try JSONSerialization.jsonObject(with: Data(contract.body.readableBytesView)) as? [String: Any])?["paths"]
                as? [String: Any])
            #expect(paths["/v1/chat/completions"] != nil && paths["/openapi.json"] != nil)
        }
    }

    @Test func deadBackendIs503WithRetryAfter() async throws {
        let model = ScriptedChatModel()
        model.setReady(false)
        try await withApp(model: model) { client, _ in
            let response = try await post(client, #"{"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(response.status == .serviceUnavailable)
            #expect(response.headers[.retryAfter] != nil)
            #expect(try errorBody(response)["code"] as? String == "model_unavailable")
            let ready = try await client.execute(uri: "/readyz", method: .get)
            #expect(ready.status == .serviceUnavailable)
        }
    }

    @Test func unknownPathIsOpenAIShaped404() async throws {
        try await withApp { client, _ in
            let response = try await client.execute(uri: "/v1/nothing", method: .get)
            #expect(response.status == .notFound)
            #expect(try errorBody(response)["type"] as? String == "invalid_request_error")
        }
    }

    @Test func nonStreamingCompletionCarriesConversationCitationsAndTrace() async throws {
        try await withApp { client, _ in
            let response = try await post(client, #"{"model":"conclave/full","messages":[{"role":"user","content":"What is the yearly annual leave entitlement for staff working full time?"}]}"#)
            #expect(response.status == .ok)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
            #expect(object["object"] as? String == "chat.completion")
            let conversation = try #require(object["conversation_id"] as? String)
            #expect(response.headers[HTTPField.Name("X-Conclave-Conversation")!] == conversation)
            let conclave = try #require(object["conclave"] as? [String: Any])
            let citations = try #require(conclave["citations"] as? [[String: Any]])
            #expect(citations.contains { $0["source_id"] as? String == "HR-001" })
            let trace = try #require(conclave["trace"] as? [[String: Any]])
            #expect(Set(trace.compactMap { $0["step"] as? String }) == ["plan", "retrieve", "reason", "validate", "respond"])
            #expect(trace.allSatisfy { $0["status"] as? String == "completed" && $0["milliseconds"] is Double })
        }
    }

    @Test func streamingIsFramedAsOpenAIChunksEndingInDone() async throws {
        try await withApp { client, _ in
            let response = try await post(client, #"{"model":"conclave/single","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"What is the annual leave entitlement?"}]}"#)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream")
            let text = String(buffer: response.body)
            let events = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(events.allSatisfy { $0.hasPrefix("data: ") })
            #expect(events.last == "data: [DONE]")
            let chunks = try events.dropLast().map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.dropFirst(6).utf8)) as? [String: Any])
            }
            #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
            let first = try #require((chunks.first?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])
            #expect(first["role"] as? String == "assistant")
            let content = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }
                .joined()
            #expect(content.contains("[1]"))
            let usageChunk = try #require(chunks.last)
            #expect((usageChunk["choices"] as? [Any])?.isEmpty == true)
            #expect((usageChunk["usage"] as? [String: Any])?["total_tokens"] is Int)
            #expect(usageChunk["conclave"] is [String: Any])
        }
    }

    @Test func conversationIdContinuesTheStoredHistory() async throws {
        let model = ScriptedChatModel()
        try await withApp(model: model) { client, runtime in
            let first = try await post(client, #"{"model":"conclave/single","messages":[{"role":"user","content":"What is the yearly annual leave entitlement for staff working full time?"}]}"#)
            let id = try #require(first.headers[HTTPField.Name("X-Conclave-Conversation")!])
            let second = try await post(client, #"{"model":"conclave/single","messages":[{"role":"user","content":"And how many can I carry over?"}]}"#,
                                        headers: [HTTPField.Name("X-Conclave-Conversation")!: id])
            #expect(second.status == .ok)
            #expect(second.headers[HTTPField.Name("X-Conclave-Conversation")!] == id)
            // The responder saw the first turn as history.
            let last = try #require(model.requests.last)
            #expect(last.messages.contains { $0.role == .user && $0.content.contains("annual leave entitlement") })
            let stored = try #require(try await runtime.store.conversation(id: id))
            #expect(stored.messages.map(\.role) == [.user, .assistant, .user, .assistant])
            // The same via metadata in the body.
            let third = try await post(client, #"{"model":"conclave/single","metadata":{"conversation_id":"\#(id)"},"messages":[{"role":"user","content":"Thanks, and when do they expire?"}]}"#)
            #expect(third.headers[HTTPField.Name("X-Conclave-Conversation")!] == id)
            let unknown = try await post(client, #"{"messages":[{"role":"user","content":"hi"}]}"#,
                                         headers: [HTTPField.Name("X-Conclave-Conversation")!: "conv_missing"])
            #expect(unknown.status == .notFound)
        }
    }

    @Test func modelFailureMidStreamEndsWithAnErrorEventNotDone() async throws {
        let model = ScriptedChatModel { request in
            if request.jsonSchema != nil { return try ScriptedChatModel.defaultScript(request) }
            throw ConclaveError(.modelFailed, "backend broke")
        }
        try await withApp(model: model) { client, runtime in
            let response = try await post(client, #"{"model":"conclave/single","stream":true,"messages":[{"role":"user","content":"What is the annual leave entitlement?"}]}"#)
            let text = String(buffer: response.body)
            #expect(!text.contains("[DONE]"))
            #expect(text.contains(#"data: {"error":"#))
            #expect(text.contains("model_error"))
            #expect(!text.contains("backend broke"))
            // The user's turn is kept even though the run failed.
            let id = try #require(response.headers[HTTPField.Name("X-Conclave-Conversation")!])
            let stored = try await runtime.store.conversation(id: id)
            #expect(stored?.messages.last?.role == .user)
        }
    }

    @Test func modelsListsTheFourWorkflowsTheDirectModelAndTheEmbeddingModel() async throws {
        try await withApp { client, _ in
            let response = try await client.execute(uri: "/v1/models", method: .get)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
            let ids = Set(((object["data"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String })
            #expect(ids == ["conclave/single", "conclave/planner-responder", "conclave/planner-retriever-responder", "conclave/full",
                            "smollm2", "minilm"])
        }
    }

    @Test func healthReadinessAndMetricsRespond() async throws {
        try await withApp { client, _ in
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
            _ = try await post(client, #"{"model":"conclave/full","messages":[{"role":"user","content":"What is the annual leave entitlement?"}]}"#)
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(metrics.contains("conclave_step_duration_seconds"))
            #expect(metrics.contains(#"role="planner""#))
            #expect(metrics.contains("conclave_model_tokens_total"))
            #expect(metrics.contains(#"conclave_http_requests_total{route="/v1/chat/completions",method="POST",status="200"}"#))
            #expect(metrics.contains("conclave_http_request_duration_seconds_bucket"))
            #expect(metrics.contains("conclave_http_requests_in_flight"))
        }
    }

    @Test func theCachedModeAnswersARepeatedQuestionWithoutTheAgentsUntilReingest() async throws {
        let model = ScriptedChatModel()
        try await withApp(model: model) { client, runtime in
            let body = #"{"model":"conclave/full","messages":[{"role":"user","content":"How many days of annual leave do staff get?"}],"metadata":{"data_access":"rag,cached"}}"#
            func trace(_ response: TestResponse) throws -> [String] {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
                let conclave = try #require(object["conclave"] as? [String: Any])
                return try #require(conclave["trace"] as? [[String: Any]]).compactMap { $0["step"] as? String }
            }
            func answer(_ response: TestResponse) throws -> String? {
                let object = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                return ((object?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
            }
            let first = try await post(client, body)
            #expect(first.status == .ok)
            #expect(try trace(first).contains("respond"))
            let calls = model.requests.count
            // Same question, other spelling and punctuation: answered from the cache, no model call.
            let second = try await post(client, body.replacingOccurrences(of: "How many days", with: "how  many DAYS"))
            #expect(try trace(second) == ["cache"])
            #expect(try answer(second) == (try answer(first)))
            #expect(model.requests.count == calls)
            // Without the mode the agents run again.
            let uncached = try await post(client, body.replacingOccurrences(of: "rag,cached", with: "rag"))
            #expect(try trace(uncached).contains("respond"))
            // A re-ingest changes the store's generation: the entry no longer matches.
            try await runtime.store.deleteDocument(id: "GEN-003")
            let afterIngest = try await post(client, body)
            #expect(try trace(afterIngest).contains("respond"))
        }
    }

    @Test func embeddingsAreServedInTheOpenAIShape() async throws {
        try await withApp { client, runtime in
            try #require(runtime.embedder != nil, "the MiniLM model was not found in .venv (run `make setup`)")
            func post(_ json: String) async throws -> TestResponse {
                try await client.execute(uri: "/v1/embeddings", method: .post, headers: [:], body: ByteBuffer(string: json))
            }
            let response = try await post(#"{"model":"minilm","input":["The canteen opens at noon.","Parking is free for staff."]}"#)
            #expect(response.status == .ok)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
            #expect(object["object"] as? String == "list" && object["model"] as? String == "minilm")
            let data = try #require(object["data"] as? [[String: Any]])
            #expect(data.map { $0["index"] as? Int } == [0, 1])
            let first = try #require(data[0]["embedding"] as? [Double])
            #expect(first.count == 384)
            #expect(abs(first.reduce(0) { $0 + $1 * $1 } - 1) < 1e-3)
            #expect(((object["usage"] as? [String: Any])?["prompt_tokens"] as? Int ?? 0) > 0)
            // base64 carries the same little-endian float32 vector.
            let encoded = try await post(#"{"model":"minilm","input":"The canteen opens at noon.","encoding_format":"base64"}"#)
            let encodedObject = try #require(try JSONSerialization.jsonObject(with: Data(encoded.body.readableBytesView)) as? [String: Any])
            let text = try #require(((encodedObject["data"] as? [[String: Any]])?.first)?["embedding"] as? String)
            let floats = try #require(Data(base64Encoded: text)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            #expect(zip(floats, first).allSatisfy { abs(Double($0) - $1) < 1e-5 })
            // Errors in OpenAI's shape, with the right status.
            #expect(try await post(#"{"model":"text-embedding-3-small","input":"x"}"#).status == .notFound)
            #expect(try await post(#"{"model":"minilm","input":[]}"#).status == .badRequest)
            #expect(try await post(#"{"model":"minilm","input":"x","dimensions":128}"#).status == .badRequest)
            #expect(try await post(#"{"model":"minilm"}"#).status == .badRequest)
            #expect(try await post(#"{"model":"minilm","input":42}"#).status == .badRequest)
            let models = try await client.execute(uri: "/v1/models", method: .get)
            #expect(String(buffer: models.body).contains(#""id":"minilm""#))
        }
    }

    @Test func metadataFiltersNarrowTheSearchWithoutRefusing() async throws {
        try await withApp { client, runtime in
            let departments = Dictionary(try await runtime.store.documents().map { ($0.id, $0.department ?? "") }, uniquingKeysWith: { a, _ in a })
            let body = #"{"model":"conclave/single","messages":[{"role":"user","content":"What are the rules for travel expenses and hotel limits?"}],"metadata":{"departments":"finance"}}"#
            let response = try await post(client, body)
            #expect(response.status == .ok)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
            let citations = try #require((object["conclave"] as? [String: Any])?["citations"] as? [[String: Any]])
            let sources = citations.compactMap { $0["source_id"] as? String }
            #expect(!sources.isEmpty)
            #expect(sources.allSatisfy { departments[$0] == "finance" }, "\(sources)")
        }
    }
}
