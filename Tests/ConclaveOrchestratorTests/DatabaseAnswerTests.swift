import ConclaveAgents
import ConclaveCore
import ConclaveKnowledge
import ConclaveMessaging
import ConclaveOrchestrator
import ConclaveServer
import ConclaveTesting
import Foundation
import Testing

/// Questions a governed SQL template serves are answered from its record, stated as it is and
/// cited `db:<table>`; a principal denied the table gets the restricted refusal.
@Suite struct DatabaseAnswerTests {
    let full: Workflow
    let connector: DatabaseConnector

    init() throws {
        full = try #require(try WorkflowRegistry().workflows["full"])
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var catalog = try TemplateCatalog.load(path: root.appendingPathComponent("config/connectors/meridian-sql.yaml").path)
        catalog.database.path = root.appendingPathComponent("examples/meridian/db/meridian.sqlite").path
        connector = try DatabaseConnector(catalog: catalog)
    }

    private func run(_ question: String, scope: DocumentScope = .unrestricted, modes: Set<DataAccessMode> = DataAccessMode.standard,
                     model: ScriptedChatModel = ScriptedChatModel()) async throws -> (Answer, WorkflowState) {
        let passages = [Evidence(chunkID: "OPS-9#0", source: SourceRef(id: "OPS-9", title: "Shipping guide", section: "Service levels"),
                                 text: "Shipments are sent as Express, Standard or Economy; cancelled shipments are not invoiced.",
                                 score: 3, subQuestion: "")]
        let team = AgentTeam(model: model, retriever: FixedRetriever(passages: passages), sources: [connector])
        let engine = WorkflowEngine(team: team, bus: InProcessMessageBus(), eventLog: nil)
        var state = WorkflowState(question: question, scope: scope)
        state.dataAccess = modes
        let result = try await engine.run(full, state: state)
        return (try #require(result.state.answer), result.state)
    }

    @Test func theRecordIsStatedAndCitedWithoutTheModelRephrasingIt() async throws {
        // The scripted responder would invent a number; the record's number must be what the user reads.
        let model = ScriptedChatModel { request in
            request.jsonSchema == nil ? "There were 999 cancelled shipments [1]." : try ScriptedChatModel.defaultScript(request)
        }
        let (answer, state) = try await run("How many shipments were cancelled in total?", model: model)
        let record = try #require(state.evidence?.first { $0.source.id == "db:shipments" })
        #expect(answer.text.hasPrefix(record.text))
        #expect(!answer.text.contains("999"))
        #expect(answer.citations.first?.sourceID == "db:shipments")
        #expect(state.validation?.facts.first?.isRecord == true)
    }

    @Test func withoutTheDatabaseModeTheTemplatesAreNotConsulted() async throws {
        let (_, state) = try await run("How many shipments were cancelled in total?", modes: [.rag])
        #expect(state.evidence?.contains { $0.source.id.hasPrefix("db:") } == false)
    }

    @Test func aTableOutsideTheScopeIsRefusedAsRestricted() async throws {
        let scope = DocumentScope(allowedDocumentIDs: nil, readableTables: ["shipments", "customers"])
        let (answer, state) = try await run("How many invoices are overdue?", scope: scope)
        #expect(answer.isRefusal && answer.text.contains("finance"))
        #expect(state.evidence?.contains { $0.source.id.hasPrefix("db:") } == false)
    }
}
