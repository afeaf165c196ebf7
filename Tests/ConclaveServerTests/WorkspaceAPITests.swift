import ConclaveCore
import ConclaveGovernance
import ConclaveServer
import ConclaveTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// The routes the web console reads (and any client may): who am I, my conversations, the source
/// passages behind citations, evaluation reports and the audit browser, each under the access policy.
@Suite struct WorkspaceAPITests: GovernedAPITesting {
    @Test func meNamesThePrincipalAndWhatItMayOpen() async throws {
        try await withApp { client, runtime in
            let employee = try await get(client, "/v1/me", token: try await token("u-employee", runtime))
            #expect(employee.status == .ok)
            let me = try #require(employee.json as? [String: Any])
            #expect(me["user"] as? String == "u-employee")
            #expect((me["roles"] as? [String])?.contains("employee") == true)
            #expect(me["governance_mode"] as? String == "full")
            #expect((me["permissions"] as? [String: Bool]) == ["audit": false, "admin": false])
            let auditor = try #require(try await get(client, "/v1/me", token: try await token("u-auditor", runtime)).json as? [String: Any])
            #expect((auditor["permissions"] as? [String: Bool]) == ["audit": true, "admin": false])
            let admin = try #require(try await get(client, "/v1/me", token: try await token("u-admin", runtime)).json as? [String: Any])
            #expect((admin["permissions"] as? [String: Bool]) == ["audit": true, "admin": true])
            #expect(try await get(client, "/v1/me", token: nil).status == .unauthorized)
        }
    }

    @Test func conversationsAreListedAndReadByTheirOwnerOnly() async throws {
        try await withApp { client, runtime in
            let employee = try await token("u-employee", runtime)
            let first = try await ask(client, "How many days of annual leave do I get?", token: employee)
            let id = try #require(first.json["conversation_id"] as? String)
            _ = try await ask(client, "What is the expense reimbursement deadline?", token: employee)
            let listed = try await get(client, "/v1/conversations", token: employee)
            #expect(listed.status == .ok)
            let data = try #require((listed.json as? [String: Any])?["data"] as? [[String: Any]])
            #expect(data.count == 2)
            // Most recently active first, titled by the opening question.
            #expect(data[0]["title"] as? String == "What is the expense reimbursement deadline?")
            #expect(data[1]["id"] as? String == id && data[1]["message_count"] as? Int == 2)
            #expect(try await get(client, "/v1/conversations?limit=1", token: employee).json.flatMap { ($0 as? [String: Any])?["data"] as? [Any] }?.count == 1)
            #expect(try await get(client, "/v1/conversations?limit=0", token: employee).status == .badRequest)

            let detail = try #require(try await get(client, "/v1/conversations/\(id)", token: employee).json as? [String: Any])
            let messages = try #require(detail["messages"] as? [[String: String]])
            #expect(messages.map { $0["role"] } == ["user", "assistant"])
            #expect(messages[0]["content"] == "How many days of annual leave do I get?")
            #expect(messages[1]["content"] == answer(first.json))

            // Someone else's conversation is not found, and not in their list.
            let other = try await token("u-engineer", runtime)
            #expect(try await get(client, "/v1/conversations/\(id)", token: other).status == .notFound)
            #expect(((try await get(client, "/v1/conversations", token: other).json as? [String: Any])?["data"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func aCitedDocumentOpensUnderTheAccessPolicyWithPassagesMaskedAndTheReadAudited() async throws {
        try await withApp { client, runtime in
            let employee = try await token("u-employee", runtime)
            let (_, json) = try await ask(client, "How many days of annual leave do I get?", token: employee)
            let citation = try #require(((json["conclave"] as? [String: Any])?["citations"] as? [[String: Any]])?.first)
            let source = try #require(citation["source_id"] as? String)
            let opened = try await get(client, "/v1/documents/\(source)", token: employee)
            #expect(opened.status == .ok)
            let document = try #require(opened.json as? [String: Any])
            let passages = try #require(document["passages"] as? [[String: Any]])
            #expect(document["id"] as? String == source && !passages.isEmpty)
            // The citation's section and snippet lead to one of the document's passages.
            let snippet = String((citation["snippet"] as? String ?? "").prefix(40))
            #expect(passages.contains { ($0["text"] as? String ?? "").contains(snippet) && $0["section"] as? String == citation["section"] as? String })

            // A restricted document is refused, and the refusal audited.
            let memo = try await get(client, "/v1/documents/EXEC-001", token: employee)
            #expect(memo.status == .forbidden)
            #expect(try await get(client, "/v1/documents/NO-SUCH-DOC", token: employee).status == .notFound)
            let records = try await runtime.store.auditRows(from: 0, limit: 100)
            #expect(records.contains { $0.type == "document" && $0.body.contains(#""id":"\#(source)""#) })
            #expect(records.contains { $0.type == "denial" && $0.body.contains("EXEC-001") && $0.body.contains(#""status":"403""#) })

            // An auditor reads the on-call contact sheet with its phone numbers masked; an engineer does not.
            let auditorView = try #require(try await get(client, "/v1/documents/ENG-004", token: try await token("u-auditor", runtime)).json as? [String: Any])
            let auditorText = ((auditorView["passages"] as? [[String: Any]]) ?? []).compactMap { $0["text"] as? String }.joined()
            #expect(!auditorText.contains("8324 7555") && !auditorText.isEmpty)
            let engineerView = try #require(try await get(client, "/v1/documents/ENG-004", token: try await token("u-engineer", runtime)).json as? [String: Any])
            #expect(((engineerView["passages"] as? [[String: Any]]) ?? []).contains { ($0["text"] as? String ?? "").contains("8324 7555") })
        }
    }

    @Test func theAuditBrowserIsForAuditRolesAndPagesNewestFirst() async throws {
        try await withApp { client, runtime in
            let employee = try await token("u-employee", runtime)
            for question in ["How many days of annual leave do I get?", "What is the expense reimbursement deadline?", "Who approves a purchase of 60,000 EUR?"] {
                _ = try await ask(client, question, token: employee)
            }
            let refused = try await get(client, "/admin/audit", token: employee)
            #expect(refused.status == .forbidden)
            #expect(try await get(client, "/admin/audit/verify", token: employee).status == .forbidden)

            let auditor = try await token("u-auditor", runtime)
            let page = try #require(try await get(client, "/admin/audit?limit=2", token: auditor).json as? [String: Any])
            let data = try #require(page["data"] as? [[String: Any]])
            #expect(data.count == 2)
            let seqs = data.compactMap { $0["seq"] as? Int }
            #expect(seqs == seqs.sorted(by: >))
            let before = try #require(page["next_before"] as? Int)
            #expect(before == seqs.last)
            let older = try #require(try await get(client, "/admin/audit?limit=500&before=\(before)", token: auditor).json as? [String: Any])
            let olderSeqs = ((older["data"] as? [[String: Any]]) ?? []).compactMap { $0["seq"] as? Int }
            #expect(olderSeqs.first == before - 1 && olderSeqs.last == 1 && older["next_before"] == nil)
            // The stored record travels as it was hashed: the employee's denial above is in it.
            #expect(data.contains { (($0["record"] as? [String: Any])?["record"] as? [String: Any])?["type"] as? String == "denial" })
            #expect(try await get(client, "/admin/audit?before=0", token: auditor).status == .badRequest)

            let verify = try #require(try await get(client, "/admin/audit/verify", token: auditor).json as? [String: Any])
            #expect(verify["valid"] as? Bool == true)
            #expect((verify["last_seq"] as? Int ?? 0) >= seqs[0])
        }
    }

    @Test func evaluationReportsAreListedNewestFirstAndServeOnlyTheirOwnFiles() async throws {
        let reports = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: reports) }
        for (name, files) in [("20261101T000000Z", ["table1.md": "# Table 1\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n"]),
                              ("20261102T000000Z", ["table2.md": "# Table 2\n", "figure1.svg": "<svg/>", "figure1.png": "png",
                                                    "figure2.png": "png", "notes.txt": "skip"])] {
            let directory = reports.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (file, text) in files { try text.write(to: directory.appendingPathComponent(file), atomically: true, encoding: .utf8) }
        }
        try "secret".write(to: reports.deletingLastPathComponent().appendingPathComponent("outside-\(UUID()).md"), atomically: true, encoding: .utf8)
        try await withApp(configure: { configuration, _ in configuration.console.reportsDirectory = reports.path }) { client, runtime in
            let user = try await token("u-employee", runtime)
            let list = try #require(try await get(client, "/v1/evaluations", token: user).json as? [String: Any])
            let data = try #require(list["data"] as? [[String: Any]])
            #expect(data.compactMap { $0["id"] as? String } == ["20261102T000000Z", "20261101T000000Z"])
            #expect(data[0]["figures"] as? [String] == ["figure1.svg", "figure2.png"])
            #expect(data[0]["created_at"] as? Int == 1_793_577_600)

            let latest = try #require(try await get(client, "/v1/evaluations/latest", token: user).json as? [String: Any])
            #expect(latest["id"] as? String == "20261102T000000Z")
            #expect((latest["documents"] as? [[String: String]])?.first?["markdown"] == "# Table 2\n")

            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(user)"
            let figure = try await client.execute(uri: "/v1/evaluations/20261102T000000Z/files/figure1.svg", method: .get, headers: headers)
            #expect(figure.status == .ok && figure.headers[.contentType] == "image/svg+xml")
            for uri in ["/v1/evaluations/20261102T000000Z/files/notes.txt", "/v1/evaluations/..", "/v1/evaluations/nope",
                        "/v1/evaluations/20261102T000000Z/files/..%2Ftable1.md"] {
                #expect(try await get(client, uri, token: user).status == .notFound, "\(uri)")
            }
            #expect(try await get(client, "/v1/evaluations", token: nil).status == .unauthorized)
        }
    }

    @Test func theConsoleIsServedFromTheBinaryWithAStrictContentSecurityPolicy() async throws {
        try await withApp { client, _ in
            let page = try await client.execute(uri: "/console", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(String(buffer: page.body).contains(#"<script src="/console/console.js""#))
            let policy = try #require(page.headers[.contentSecurityPolicy])
            #expect(policy.contains("script-src 'self'") && policy.contains("default-src 'none'"))
            let script = try await client.execute(uri: "/console/console.js", method: .get)
            #expect(script.status == .ok && script.headers[.contentType]?.hasPrefix("text/javascript") == true)
            let etag = try #require(script.headers[.eTag])
            let again = try await client.execute(uri: "/console/console.js", method: .get, headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified)
            #expect(try await client.execute(uri: "/console/missing.js", method: .get).status == .notFound)
        }
        try await withApp(configure: { configuration, _ in configuration.console.enabled = false }) { client, _ in
            let status = try await client.execute(uri: "/console", method: .get).status
            #expect(status == .notFound)
        }
    }

    /// The compiled-in assets are the files under console/ (scripts/embed-console.py was run).
    @Test func theEmbeddedAssetsMatchTheConsoleSources() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", TestRuntime.repositoryRoot.appendingPathComponent("scripts/embed-console.py").path, "--check"]
        try ChildProcess.launch(process)
        let exit = ChildProcess.Exit(process)
        await exit.wait()
        var clean = false
        if case .exited(0) = exit.ending { clean = true }
        #expect(clean, "Sources/ConclaveServer/Console/ConsoleAssets.swift is stale: run `make console`")
    }
}
