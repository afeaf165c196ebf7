import ConclaveCore
@testable import ConclaveKnowledge
import ConclaveTesting
import Foundation
import Testing

/// The API connector against the real Meridian fixture server (`examples/meridian/api/serve.py`).
@Suite(.serialized) struct APIConnectorTests {
    static let connectorFile = MeridianSQL.root.appendingPathComponent("config/connectors/meridian-api.yaml").path

    private func connector(_ server: MeridianAPIServer, token: String? = MeridianAPIServer.token) throws -> APIConnector {
        let text = try String(contentsOfFile: Self.connectorFile, encoding: .utf8)
        var settings = try APIConnector.Settings.load(yaml: text, origin: Self.connectorFile)
        settings.openapi = MeridianSQL.root.appendingPathComponent(settings.openapi).path
        var environment: [String: String] = [:]
        if let token { environment["MERIDIAN_API_TOKEN"] = token }
        return try APIConnector(settings: settings, baseURL: server.baseURL, environment: environment)
    }

    @Test func getOperationsBecomeToolsWithTypedParameters() throws {
        let document = try OpenAPIDocument.load(path: MeridianSQL.root.appendingPathComponent("examples/meridian/api/openapi.yaml").path)
        let tracking = try #require(document.operations.first { $0.id == "getShipmentTracking" })
        #expect(tracking.path == "/shipments/{id}/tracking" && tracking.parameters.first?.schema.type == "integer")
        let vehicles = try #require(document.operations.first { $0.id == "listVehicles" })
        #expect(vehicles.parameters.first { $0.name == "status" }?.schema.enumValues.contains("maintenance") == true)
        #expect(document.operations.first { $0.id == "health" }?.isPublic == true)
        #expect(tracking.vocabulary.contains("delivered") && tracking.vocabulary.contains("status"))
    }

    @Test func aRecordComesBackCitedByItsPath() async throws {
        let server = try await MeridianAPIServer.start()
        defer { server.stop() }
        let api = try connector(server)
        let retrieval = await api.evidence(for: "Which vehicle carries shipment 101461 and what is its status?", scope: .unrestricted)
        let evidence = try #require(retrieval.evidence.first)
        #expect(evidence.source.id == "api:/shipments/101461/tracking")
        // The fixture's own record, read independently of the connector.
        let fixtures = try JSONSerialization.jsonObject(
            with: Data(contentsOf: MeridianSQL.root.appendingPathComponent("examples/meridian/api/fixtures.json"))) as? [String: Any]
        let tracking = try #require((fixtures?["tracking"] as? [String: Any])?["101461"] as? [String: Any])
        let vehicle = try #require(tracking["vehicle_id"] as? String)
        #expect(evidence.text.contains("vehicle id: \(vehicle)"))
    }

    @Test func queryParametersFilterACollection() async throws {
        let server = try await MeridianAPIServer.start()
        defer { server.stop() }
        let api = try connector(server)
        let match = try #require(api.match("Which trucks are in maintenance right now?"))
        #expect(match.operation.id == "listVehicles" && match.arguments == ["status": "maintenance"])
        let text = try #require(await api.evidence(for: "Which trucks are in maintenance right now?", scope: .unrestricted).evidence.first).text
        #expect(text.contains("status maintenance") && !text.contains("status en route"))
    }

    @Test func anUnknownIdIsANotFoundRecord() async throws {
        let server = try await MeridianAPIServer.start()
        defer { server.stop() }
        let api = try connector(server)
        let evidence = try #require(await api.evidence(for: "Where is shipment 999123 now? What is its status?", scope: .unrestricted).evidence.first)
        #expect(evidence.text.contains("not found") && evidence.source.id == "api:/shipments/999123/tracking")
    }

    @Test func withoutATokenTheAPIRefusesAndNoEvidenceIsMade() async throws {
        let server = try await MeridianAPIServer.start()
        defer { server.stop() }
        let api = try connector(server, token: nil)
        let operation = try #require(api.document.operations.first { $0.id == "getHubStatus" })
        let result = try await api.call(operation, arguments: ["code": "HAM"])
        #expect(result.status == 401)
        #expect(await api.evidence(for: "What is the occupancy of the Hamburg hub?", scope: .unrestricted).evidence.isEmpty)
    }

    @Test func anOperationOutsideTheScopeIsWithheld() async throws {
        let server = try await MeridianAPIServer.start()
        defer { server.stop() }
        let scope = DocumentScope(allowedDocumentIDs: nil, allowedOperations: ["GET /hubs/{code}/status"])
        let api = try connector(server)
        let retrieval = await api.evidence(for: "What is the status of shipment 101461?", scope: scope)
        #expect(retrieval.evidence.isEmpty)
        #expect(retrieval.withheld.first?.documentID == "api:/shipments/{id}/tracking")
    }

    @Test func argumentsAreCheckedAgainstTheSchemaBeforeACall() async throws {
        let server = try await MeridianAPIServer.start()
        defer { server.stop() }
        let api = try connector(server)
        let vehicle = try #require(api.document.operations.first { $0.id == "getVehicle" })
        await #expect(throws: APIConnectorError.self) { try await api.call(vehicle, arguments: ["id": "../../etc/passwd"]) }
        let tracking = try #require(api.document.operations.first { $0.id == "getShipmentTracking" })
        await #expect(throws: APIConnectorError.self) { try await api.call(tracking, arguments: ["id": "12ab"]) }
    }

    @Test(arguments: [
        "I'm visiting the Rotterdam hub next week; what is the hotel limit per night?",
        "What is the liability per kg for a lost shipment?",
        "How do I book a van for a customer visit?",
    ])
    func questionsForTheDocumentsCallNoOperation(_ question: String) throws {
        let settings = try APIConnector.Settings.load(yaml: try String(contentsOfFile: Self.connectorFile, encoding: .utf8), origin: Self.connectorFile)
        var local = settings
        local.openapi = MeridianSQL.root.appendingPathComponent(settings.openapi).path
        let api = try APIConnector(settings: local, baseURL: "http://127.0.0.1:9", environment: [:])
        #expect(api.match(question) == nil)
    }

    @Test func aMalformedDocumentIsAClearError() {
        let error = #expect(throws: APIConnectorError.self) { try OpenAPIDocument.parse(yaml: "swagger: '2.0'\npaths: {}", origin: "old.yaml") }
        #expect(error?.message.contains("OpenAPI 3") == true)
    }
}

