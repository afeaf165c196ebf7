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

/// A governed gateway (JWT authentication, the Meridian policy, governance `full`, the audit trail)
/// over the scripted test model with the Meridian documents ingested, and the requests its suites
/// send it.
protocol GovernedAPITesting {}

extension GovernedAPITesting {
    func withApp(model: ScriptedChatModel = ScriptedChatModel(),
                 configure: (inout ConclaveConfiguration, URL) throws -> Void = { _, _ in },
                 _ body: @Sendable (any TestClientProtocol, ConclaveRuntime) async throws -> Void) async throws {
        Telemetry.bootstrap(logLevel: .error)
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = try TestRuntime.governedConfiguration(directory: directory)
        try configure(&configuration, directory)
        let runtime = try await TestRuntime.make(model: model, configuration: configuration, documents: [TestRuntime.meridianDocs])
        try await ConclaveServer.makeApplication(runtime: runtime).test(.live) { client in try await body(client, runtime) }
    }

    func token(_ user: String, _ runtime: ConclaveRuntime) async throws -> String {
        let directory = try UserDirectory(path: runtime.configuration.auth.usersFile)
        let principal = try #require(directory.user(user)).principal
        return try await TokenIssuer(authenticator: runtime.governance.authenticator, configuration: runtime.configuration.auth)
            .token(for: principal)
    }

    func ask(_ client: any TestClientProtocol, _ question: String, token: String?, model: String = "conclave/full",
             metadata: [String: String]? = nil) async throws -> (status: HTTPResponse.Status, json: [String: Any])
    {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        var object: [String: Any] = ["model": model, "messages": [["role": "user", "content": question]]]
        if let metadata { object["metadata"] = metadata }
        let body = try JSONSerialization.data(withJSONObject: object)
        let response = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers,
                                                body: ByteBuffer(bytes: body))
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
        return (response.status, json)
    }

    func answer(_ json: [String: Any]) -> String {
        (((json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String) ?? ""
    }

    /// `GET uri` with the user's token: the status and the JSON body.
    func get(_ client: any TestClientProtocol, _ uri: String, token: String?) async throws -> (status: HTTPResponse.Status, json: Any?) {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        let response = try await client.execute(uri: uri, method: .get, headers: headers)
        return (response.status, try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)))
    }
}
