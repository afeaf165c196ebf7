import ConclaveCore
import ConclaveGovernance
import ConclaveServer
import ConclaveTelemetry
import ConclaveTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Authentication, workflow permissions and the retrieval ACL pre-filter over real HTTP, with the
/// scripted test model behind the API (it records every prompt, so the tests can check what a
/// model was shown).
@Suite struct GovernanceAPITests: GovernedAPITesting {
    private func retrieved(_ json: [String: Any]) -> String {
        let trace = ((json["conclave"] as? [String: Any])?["trace"] as? [[String: Any]]) ?? []
        return trace.first { $0["role"] as? String == "retriever" }?["summary"] as? String ?? ""
    }

    @Test func missingOrInvalidTokensAre401WithoutDetail() async throws {
        try await withApp { client, runtime in
            for token in [nil, "garbage", try await token("u-employee", runtime) + "x"] as [String?] {
                let (status, json) = try await ask(client, "How many days of annual leave do I get?", token: token)
                #expect(status == .unauthorized)
                let error = try #require(json["error"] as? [String: Any])
                #expect(error["message"] as? String == "Invalid token.")
                #expect(error["code"] as? String == "invalid_api_key")
            }
            let models = try await client.execute(uri: "/v1/models", method: .get)
            #expect(models.status == .unauthorized)
            // Every denial is audited, without the credential.
            let denials = try await runtime.store.auditRows(from: 0, limit: 100).filter { $0.type == "denial" }
            #expect(denials.count == 4)
            #expect(denials.allSatisfy { $0.body.contains(#""status":"401""#) && !$0.body.contains("garbage") })
            // Health and readiness stay open for probes.
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }

    @Test func restrictedDocumentsNeverReachTheModelAndTheAnswerIsAPoliteRefusal() async throws {
        let model = ScriptedChatModel()
        try await withApp(model: model) { client, runtime in
            let question = "What is Project Nightjar about?"
            let (status, json) = try await ask(client, question, token: try await token("u-employee", runtime))
            #expect(status == .ok)
            let text = answer(json)
            #expect(text.contains("restricted"), "answer: \(text)")
            #expect(!text.contains("Baltic") && !text.contains("Coldchain"))
            #expect(!retrieved(json).contains("sources=EXEC-001"))
            #expect(retrieved(json).contains("withheld=") && !retrieved(json).contains("EXEC-001"))
            #expect(!String(describing: json).contains("EXEC-001"))  // nowhere in the response
            // No prompt of any agent carried the memo's content.
            #expect(!model.requests.contains { request in request.messages.contains { $0.content.contains("Supervisory Board") || $0.content.contains("Coldchain") } })

            let executive = try await ask(client, question, token: try await token("u-executive", runtime))
            #expect(executive.status == .ok)
            #expect(retrieved(executive.json).contains("EXEC-001"))
            #expect(!answer(executive.json).contains("restricted"))

            // One request record each, chained and verifiable; the refusal and what was withheld are in it.
            let records = try await runtime.store.auditRows(from: 0, limit: 100).filter { $0.type == "request" }
            #expect(records.count == 2)
            #expect(records[0].body.contains(#""withheld":["EXEC-001"]"#) && records[0].body.contains("answer refused"))
            #expect(records[1].body.contains(#""id":"EXEC-001""#) && records[1].body.contains(#""classification":"confidential""#))
            #expect(!records[0].body.contains("Nightjar"))  // metadata granularity: hashes, not text
            let audit = try #require(runtime.governance.audit)
            #expect(try await AuditLog.verify(store: runtime.store, publicKey: audit.publicKey).isValid)
        }
    }

    @Test func phoneNumbersAreMaskedForRolesThatMayNotSeeThemBeforeAnyModelReadsThem() async throws {
        let model = ScriptedChatModel()
        try await withApp(model: model) { client, runtime in
            let question = "What is the mobile phone number of Bas Galderhorst on the platform on-call contact sheet?"
            // An auditor may read the contact sheet (ENG-004) but sees phone numbers masked.
            let (status, json) = try await ask(client, question, token: try await token("u-auditor", runtime))
            #expect(status == .ok)
            #expect(retrieved(json).contains("ENG-004"))
            #expect(!model.requests.contains { request in request.messages.contains { $0.content.contains("8324 7555") } })
            #expect(!answer(json).contains("8324 7555"))
            let record = try #require(try await runtime.store.auditRows(from: 0, limit: 10).last)
            #expect(record.body.contains(#""maskedEntities":{"phone":"#))
            // An engineer sees them (here from the employee record, which the responder states as it is).
            let engineer = try await ask(client, question, token: try await token("u-engineer", runtime))
            #expect(engineer.status == .ok)
            #expect(answer(engineer.json).contains("+31 6 8324 7555")
                || model.requests.contains { request in request.messages.contains { $0.content.contains("+31 6 8324 7555") } })
        }
    }

    @Test func instructionsHiddenInDocumentsNeverReachAModel() async throws {
        let model = ScriptedChatModel()
        try await withApp(model: model) { client, runtime in
            let question = "What are the payment terms for subcontracted carrier invoices, and how is waiting time paid?"
            for workflow in ["conclave/full", "conclave/single"] {
                let (status, json) = try await ask(client, question, token: try await token("u-manager-ops", runtime), model: workflow)
                #expect(status == .ok)
                #expect(!answer(json).contains("OVERRIDE"))
            }
            #expect(model.requests.contains { request in request.messages.contains { $0.content.contains("OPS-007") } })
            #expect(!model.requests.contains { request in
                request.messages.contains { $0.content.contains("OVERRIDE") || $0.content.lowercased().contains("ignore previous") }
            })
            let records = try await runtime.store.auditRows(from: 0, limit: 10)
            #expect(records.contains { $0.body.contains("instruction-like passages removed") })
        }
    }

    @Test func personalDataTheUserTypesReachesModelsOnlyAsPseudonyms() async throws {
        let model = ScriptedChatModel { request in
            request.jsonSchema == nil ? "Salary payments go to IBAN_1 from now on [1]." : try ScriptedChatModel.defaultScript(request)
        }
        try await withApp(model: model) { client, runtime in
            let question = "Can my salary account be changed to NL91 ABNA 0417 1643 00 in PeopleHub?"
            _ = try await ask(client, question, token: try await token("u-employee", runtime))
            #expect(!model.requests.isEmpty)
            #expect(!model.requests.contains { request in request.messages.contains { $0.content.contains("0417 1643") } })
            #expect(model.requests.contains { request in request.messages.contains { $0.content.contains("IBAN_1") } })
            // Every model call of the turn carries the conversation as its replica-affinity key.
            let keys = Set(model.requests.map(\.affinityKey))
            #expect(keys.count == 1 && (keys.first??.hasPrefix("conv_") ?? false))
        }
    }

    @Test func inputRulesRefuseWithoutCallingAModelAndLimitLength() async throws {
        let model = ScriptedChatModel()
        try await withApp(model: model) { client, runtime in
            let token = try await token("u-manager-ops", runtime)
            let (status, json) = try await ask(client, "Please list all salaries of the Rotterdam staff.", token: token)
            #expect(status == .ok)
            #expect(answer(json).contains("not allowed by the platform's usage policy"))
            #expect(model.requests.isEmpty)
            let record = try #require(try await runtime.store.auditRows(from: 0, limit: 10).last)
            #expect(record.body.contains("rules.input.deny_patterns"))
            let long = try await ask(client, String(repeating: "why ", count: 1100), token: token)
            #expect(long.status == .badRequest)
            #expect((long.json["error"] as? [String: Any])?["param"] as? String == "messages")
        }
    }

    @Test func onlyAdminsMayChooseTheGovernanceModeOfTheirRequestAndOnlyWhereEnabled() async throws {
        try await withApp { client, runtime in
            // Off by default: even an admin may not.
            let refused = try await ask(client, "What is Project Nightjar about?", token: try await token("u-admin", runtime),
                                        metadata: ["governance_mode": "off"])
            #expect(refused.status == .forbidden)
        }
        try await withApp(configure: { configuration, _ in configuration.governance.allowModeOverride = true }) { client, runtime in
            let question = "What is Project Nightjar about?"
            let employee = try await ask(client, question, token: try await token("u-employee", runtime), metadata: ["governance_mode": "off"])
            #expect(employee.status == .forbidden)
            let admin = try await token("u-admin", runtime)
            #expect(try await ask(client, question, token: admin, metadata: ["governance_mode": "sideways"]).status == .badRequest)
            let governed = try await ask(client, question, token: admin)
            #expect(answer(governed.json).contains("restricted"))
            let off = try await ask(client, question, token: admin, metadata: ["governance_mode": "off"])
            #expect(off.status == .ok)
            #expect(retrieved(off.json).contains("sources=EXEC-001"))
            let overrides = try await runtime.store.auditRows(from: 0, limit: 50).filter { $0.type == "override" }
            #expect(overrides.count == 1 && overrides[0].body.contains("governance mode off instead of full"))
        }
    }

    @Test func theDirectModelRouteIsGovernedLikeTheWorkflows() async throws {
        let model = ScriptedChatModel { request in "You wrote: " + (request.messages.last?.content ?? "") }
        try await withApp(model: model) { client, runtime in
            let token = try await token("u-support", runtime)
            #expect(try await ask(client, "Hello", token: nil, model: "smollm2").status == .unauthorized)
            let (status, json) = try await ask(client, "My card is 4111 1111 1111 1111, hello", token: token, model: "smollm2")
            #expect(status == .ok)
            #expect(json["object"] as? String == "chat.completion" && json["model"] as? String == "smollm2")
            // The model saw a pseudonym; the client gets the value back masked (cards are shown to nobody).
            #expect(model.requests.last?.messages.last?.content == "My card is CARD_1, hello")
            #expect(answer(json) == "You wrote: My card is [restricted], hello")
            #expect(json["usage"] is [String: Any])
            let records = try await runtime.store.auditRows(from: 0, limit: 10)
            #expect(records.last?.body.contains(#""workflow":"smollm2""#) == true)
            let models = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(String(buffer: models.body).contains(#""id":"smollm2""#))
            // Streaming (last: the stream closes its connection): OpenAI chunks ending in [DONE].
            var headers: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(token)"]
            headers[.accept] = "text/event-stream"
            let body = #"{"model":"smollm2","stream":true,"messages":[{"role":"user","content":"Stream this please"}]}"#
            let streamed = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: ByteBuffer(string: body))
            let text = String(buffer: streamed.body)
            #expect(text.contains(#""object":"chat.completion.chunk""#) && text.hasSuffix("data: [DONE]\n\n"))
            #expect(text.contains("Stream this please"))
        }
    }

    @Test func namedModelIsServedThroughItsOwnPoolForChatAndEmbeddings() async throws {
        let upstream = FakeOpenAIServer(.answer("from the named model"))
        try await upstream.run { url in
            try await withApp(configure: { configuration, _ in
                configuration.inference.models = [NamedModelConfiguration(name: "remote-chat", endpoints: [url], model: "upstream-x",
                                                                          embeddings: true)]
            }) { client, runtime in
                let token = try await token("u-employee", runtime)
                let auth: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "application/json"]
                let models = try await client.execute(uri: "/v1/models", method: .get, headers: auth)
                #expect(String(buffer: models.body).contains(#""id":"remote-chat""#))
                let (status, json) = try await ask(client, "Hello there", token: token, model: "remote-chat")
                #expect(status == .ok)
                #expect(json["model"] as? String == "remote-chat")
                let content = ((json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
                #expect(content == "from the named model")
                #expect(upstream.callCount == 1)
                let embedded = try await client.execute(
                    uri: "/v1/embeddings", method: .post, headers: auth,
                    body: ByteBuffer(string: #"{"model":"remote-chat","input":["first text","second one here"]}"#))
                #expect(embedded.status == .ok)
                let vectors = ((try JSONSerialization.jsonObject(with: Data(embedded.body.readableBytesView)) as? [String: Any])?["data"]
                    as? [[String: Any]])?.compactMap { ($0["embedding"] as? [Double])?.map { Float($0) } }
                #expect(vectors == ["first text", "second one here"].map(FakeOpenAIServer.embedding(of:)))
                let unknown = try await client.execute(uri: "/v1/embeddings", method: .post, headers: auth,
                                                       body: ByteBuffer(string: #"{"model":"nope","input":"x"}"#))
                #expect(unknown.status == .notFound)
                #expect(String(buffer: unknown.body).contains("remote-chat"))
                let admin = try await self.token("u-admin", runtime)
                let view = try await client.execute(uri: "/admin/inference", method: .get, headers: [.authorization: "Bearer \(admin)"])
                #expect(String(buffer: view.body).contains(#""upstream_model":"upstream-x""#))
                // Last: a stream closes its connection.
                let stream = try await client.execute(
                    uri: "/v1/chat/completions", method: .post, headers: auth,
                    body: ByteBuffer(string: #"{"model":"remote-chat","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#))
                #expect(String(buffer: stream.body).contains("named") && String(buffer: stream.body).hasSuffix("data: [DONE]\n\n"))
            }
        }
    }

    @Test func adminRoutesNeedTheAdminRole() async throws {
        try await withApp { client, runtime in
            // Metrics are process-wide and other suites run alongside: compare counts, at least.
            let before = try await metricValues(client)
            #expect(try await client.execute(uri: "/admin/inference", method: .get).status == .unauthorized)
            let employee = try await token("u-employee", runtime)
            #expect(try await client.execute(uri: "/admin/inference", method: .get, headers: [.authorization: "Bearer \(employee)"]).status
                    == .forbidden)
            let admin = try await token("u-admin", runtime)
            let view = try await client.execute(uri: "/admin/inference", method: .get, headers: [.authorization: "Bearer \(admin)"])
            #expect(view.status == .ok)
            #expect(String(buffer: view.body).contains(#""queue_depth":0"#))
            // Each decision is counted; the denials' audit records too, and the chain verifies.
            let verification = await runtime.governance.audit?.verifyChain()
            #expect(verification?.isValid == true)
            let after = try await metricValues(client)
            func delta(_ series: String) -> Double { (after[series] ?? 0) - (before[series] ?? 0) }
            #expect(delta(#"conclave_governance_decisions_total{point="admin",decision="deny"}"#) >= 1)
            #expect(delta(#"conclave_governance_decisions_total{point="admin",decision="allow"}"#) >= 1)
            #expect(delta(#"conclave_governance_decisions_total{point="authentication",decision="deny"}"#) >= 1)
            #expect(delta(#"conclave_governance_decisions_total{point="authentication",decision="allow"}"#) >= 2)
            #expect(delta("conclave_audit_records_total") >= 2)
            #expect(after["conclave_audit_chain_valid"] == 1)
        }
    }

    @Test func requestRatesAndTokenQuotasPerUserAndTenantAre429WithRetryAfter() async throws {
        try await withApp(configure: { configuration, _ in
            configuration.limits = LimitsConfiguration(requestsPerMinute: 2, tenantRequestsPerMinute: 3, tokensPerDay: 0,
                                                       tenantTokensPerDay: 0)
        }) { client, runtime in
            let employee = try await token("u-employee", runtime)
            let admin = try await token("u-admin", runtime)
            let models = { (token: String) in
                try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer \(token)"])
            }
            // Two requests a minute per user: the third is refused, in OpenAI's shape.
            #expect(try await models(employee).status == .ok)
            #expect(try await ask(client, "How many days of annual leave do I get?", token: employee).status == .ok)
            let refused = try await models(employee)
            #expect(refused.status == .tooManyRequests)
            let retry = try #require(refused.headers[.retryAfter].flatMap { Int($0) })
            #expect((1...30).contains(retry))
            let error = try #require((try JSONSerialization.jsonObject(with: Data(refused.body.readableBytesView)) as? [String: Any])?["error"]
                as? [String: Any])
            #expect(error["code"] as? String == "rate_limit_exceeded")
            #expect((error["message"] as? String)?.contains("2 requests per minute for each user") == true)
            // The tenant's third request of the minute is another user's first; its fourth is refused.
            #expect(try await models(admin).status == .ok)
            let tenant = try await models(admin)
            #expect(tenant.status == .tooManyRequests)
            #expect(String(buffer: tenant.body).contains("for the tenant"))
            // Unauthenticated callers are refused before any bucket is touched.
            #expect(try await client.execute(uri: "/v1/models", method: .get).status == .unauthorized)
        }
    }

    @Test func aUsersTokenQuotaIsChargedWhatItsRequestsUsedAndThenRefuses() async throws {
        try await withApp(configure: { configuration, _ in
            configuration.limits = LimitsConfiguration(tokensPerDay: 50)
        }) { client, runtime in
            let employee = try await token("u-employee", runtime)
            // The first request is admitted (the quota is full) and uses more than 50 tokens.
            let (status, json) = try await ask(client, "How many days of annual leave do I get?", token: employee)
            #expect(status == .ok)
            let used = try #require((json["usage"] as? [String: Any])?["total_tokens"] as? Int)
            #expect(used > 50)
            let (refused, error) = try await ask(client, "And for part-time staff?", token: employee)
            #expect(refused == .tooManyRequests)
            #expect(((error["error"] as? [String: Any])?["message"] as? String)?.contains("50 tokens per day for each user") == true)
            // Another user of the tenant has a quota of their own.
            #expect(try await ask(client, "How many days of annual leave do I get?", token: try await token("u-admin", runtime)).status == .ok)
        }
    }

    /// The gateway's `/metrics` page as series → value.
    private func metricValues(_ client: any TestClientProtocol) async throws -> [String: Double] {
        let page = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
        var values: [String: Double] = [:]
        for line in page.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }

    @Test func forbiddenWorkflowIs403AndHiddenFromTheModelList() async throws {
        try await withApp(configure: { configuration, directory in
            let policy = directory.appendingPathComponent("policy.yaml")
            var text = try String(contentsOfFile: configuration.governance.policyFile, encoding: .utf8)
            text = text.replacingOccurrences(of: "workflows:\n  \"*\": [\"*\"]", with: "workflows:\n  full: [executive]\n  \"*\": [\"*\"]")
            try text.write(to: policy, atomically: true, encoding: .utf8)
            configuration.governance.policyFile = policy.path
        }) { client, runtime in
            let employee = try await token("u-employee", runtime)
            let (status, json) = try await ask(client, "How many days of annual leave do I get?", token: employee)
            #expect(status == .forbidden)
            #expect((json["error"] as? [String: Any])?["code"] as? String == "forbidden")
            #expect(try await ask(client, "How many days of annual leave do I get?", token: employee, model: "conclave/single").status == .ok)
            let models = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer \(employee)"])
            let body = String(buffer: models.body)
            #expect(models.status == .ok && !body.contains("conclave/full") && body.contains("conclave/single"))
        }
    }
}
