import ConclaveAgents
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

/// `conclave reload` / SIGHUP: workflows, the access policy and the SQL templates are re-read,
/// validated together and swapped in; an invalid file changes nothing. With the scripted test
/// model behind the API (the real model runs in tests/python/test_reload.py).
@Suite struct ReloadTests {
    private struct Files {
        let workflows: URL
        let policy: URL
        var workflow: URL { workflows.appendingPathComponent("extra.yaml") }

        func writeWorkflow(timeout: Int, extra: String = "") throws {
            let yaml = """
                name: extra
                description: One responder call.
                steps:
                  - id: respond
                    role: responder
                    timeout_seconds: \(timeout)

                """ + extra
            try yaml.write(to: workflow, atomically: true, encoding: .utf8)
        }
    }

    private func withApp(_ body: @Sendable (any TestClientProtocol, ConclaveRuntime, Files) async throws -> Void) async throws {
        Telemetry.bootstrap(logLevel: .error)
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = try TestRuntime.governedConfiguration(directory: directory)
        let files = Files(workflows: directory.appendingPathComponent("workflows"), policy: directory.appendingPathComponent("policy.yaml"))
        try FileManager.default.createDirectory(at: files.workflows, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: configuration.governance.policyFile, toPath: files.policy.path)
        try files.writeWorkflow(timeout: 120)
        configuration.workflows.directory = files.workflows.path
        configuration.governance.policyFile = files.policy.path
        let runtime = try await TestRuntime.make(model: ScriptedChatModel(), configuration: configuration, documents: [TestRuntime.meridianDocs])
        try await ConclaveServer.makeApplication(runtime: runtime).test(.live) { client in try await body(client, runtime, files) }
    }

    private func token(_ user: String, _ runtime: ConclaveRuntime) async throws -> String {
        let principal = try #require(try UserDirectory(path: runtime.configuration.auth.usersFile).user(user)).principal
        return try await TokenIssuer(authenticator: runtime.governance.authenticator, configuration: runtime.configuration.auth)
            .token(for: principal)
    }

    private func post(_ client: any TestClientProtocol, _ uri: String, token: String, json: [String: Any]? = nil) async throws
        -> (status: HTTPResponse.Status, headers: HTTPFields, json: [String: Any])
    {
        let headers: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(token)"]
        let body = try json.map { try JSONSerialization.data(withJSONObject: $0) } ?? Data()
        let response = try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(bytes: body))
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
        return (response.status, response.headers, object)
    }

    private func ask(_ client: any TestClientProtocol, token: String) async throws -> (status: HTTPResponse.Status, version: Int?, header: String?) {
        let reply = try await post(client, "/v1/chat/completions", token: token, json: [
            "model": "conclave/extra", "messages": [["role": "user", "content": "How many days of annual leave do I get?"]],
        ])
        let version = (reply.json["conclave"] as? [String: Any])?["config_version"] as? Int
        // Every answer names the agents' prompts it was made with.
        if reply.status == .ok {
            #expect((reply.json["conclave"] as? [String: Any])?["prompts_version"] as? String == AgentPrompts.builtIn.version)
        }
        return (reply.status, version, reply.headers[HTTPField.Name("X-Conclave-Config-Version")!])
    }

    @Test func aReloadSwapsTheFilesInAndAnInvalidOneChangesNothing() async throws {
        try await withApp { _, runtime, files in
            let start = runtime.live.current.version
            #expect(start.number == 1 && start.digest.count == 16)
            #expect(runtime.workflows.workflows["extra"]?.steps.first?.timeoutSeconds == 120)
            // Unchanged files: nothing to swap, the version stays.
            let unchanged = try runtime.live.reload()
            #expect(!unchanged.changed && unchanged.version == start)
            #expect(unchanged.files.contains(files.workflow.path) && unchanged.files.contains(files.policy.path))

            try files.writeWorkflow(timeout: 60)
            let changed = try runtime.live.reload()
            #expect(changed.changed && changed.version.number == 2 && changed.version.digest != start.digest)
            #expect(runtime.workflows.workflows["extra"]?.steps.first?.timeoutSeconds == 60)

            // An invalid workflow: refused with the key and the reason; the running set stays.
            try files.writeWorkflow(timeout: 60, extra: "    depends_on: [nowhere]\n")
            let error = #expect(throws: ConfigurationError.self) { try runtime.live.reload() }
            #expect(error?.key == "workflows.directory")
            #expect(error?.expected.contains("nowhere") == true)
            #expect(runtime.live.current.version.number == 2)
            #expect(runtime.workflows.workflows["extra"] != nil)

            // An invalid policy next to a valid workflow change: still nothing changes.
            try files.writeWorkflow(timeout: 30)
            let policy = try String(contentsOf: files.policy, encoding: .utf8)
            let undeclared = policy.replacingOccurrences(of: "admin_roles: [admin]", with: "admin_roles: [no-such-role]")
            #expect(undeclared != policy)
            try undeclared.write(to: files.policy, atomically: true, encoding: .utf8)
            let policyError = #expect(throws: ConfigurationError.self) { try runtime.live.reload() }
            #expect(policyError?.key.hasPrefix("governance.policy_file") == true)
            #expect(runtime.live.current.version.number == 2)
            #expect(runtime.workflows.workflows["extra"]?.steps.first?.timeoutSeconds == 60)
        }
    }

    @Test func answersNameTheirVersionAndOnlyAdminsReloadOverHTTP() async throws {
        try await withApp { client, runtime, files in
            let employee = try await token("u-employee", runtime)
            let admin = try await token("u-admin", runtime)
            let first = try await ask(client, token: employee)
            #expect(first.status == .ok && first.version == 1 && first.header == "1")

            #expect(try await post(client, "/admin/reload", token: employee).status == .forbidden)
            try files.writeWorkflow(timeout: 60)
            let reload = try await post(client, "/admin/reload", token: admin)
            #expect(reload.status == .ok)
            #expect((reload.json["version"] as? [String: Any])?["version"] as? Int == 2)
            #expect(reload.json["changed"] as? Bool == true)
            let second = try await ask(client, token: employee)
            #expect(second.status == .ok && second.version == 2 && second.header == "2")

            // An invalid file is a 400 naming its key, and answers keep the running version.
            try files.writeWorkflow(timeout: 60, extra: "    depends_on: [nowhere]\n")
            let refused = try await post(client, "/admin/reload", token: admin)
            #expect(refused.status == .badRequest)
            let error = try #require(refused.json["error"] as? [String: Any])
            #expect(error["param"] as? String == "workflows.directory")
            #expect((error["message"] as? String)?.contains("running configuration stays") == true)
            #expect(try await ask(client, token: employee).version == 2)

            // A changed policy decides the requests that start after the reload.
            try files.writeWorkflow(timeout: 60)
            let policy = try String(contentsOf: files.policy, encoding: .utf8)
            let reserved = policy.replacingOccurrences(of: "workflows:\n  \"*\": [\"*\"]", with: "workflows:\n  \"*\": [\"*\"]\n  extra: [hr]")
            #expect(reserved != policy)
            try reserved.write(to: files.policy, atomically: true, encoding: .utf8)
            #expect(try await post(client, "/admin/reload", token: admin).status == .ok)
            #expect(try await ask(client, token: employee).status == .forbidden)
            #expect(try await ask(client, token: try await token("u-hr", runtime)).status == .ok)
        }
    }
}
