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
                     model: ScriptedChatModel = ScriptedChatModel(), passages: [Evidence]? = nil,
                     modelChoosesTemplates: Bool = false) async throws -> (Answer, WorkflowState) {
        let passages = passages ?? [Evidence(chunkID: "OPS-9#0", source: SourceRef(id: "OPS-9", title: "Shipping guide", section: "Service levels"),
                                             text: "Shipments are sent as Express, Standard or Economy; cancelled shipments are not invoiced.",
                                             score: 3, subQuestion: "")]
        let team = AgentTeam(model: model, retriever: FixedRetriever(passages: passages), sources: [SwappableSource(connector)],
                             modelChoosesTemplates: modelChoosesTemplates)
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

    @Test func aNamedCustomersTierChoosesTheDocumentRowForThatTier() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let database = try SQLiteReadOnlyDatabase(path: root.appendingPathComponent("examples/meridian/db/meridian.sqlite").path)
        let customer = try #require(try database.query("SELECT name FROM customers WHERE tier = 'Silver' ORDER BY id LIMIT 1").rows.first?.first)
        guard case .text(let name) = customer else { Issue.record("no customer name"); return }
        let terms = Evidence(chunkID: "FIN-9#0", source: SourceRef(id: "FIN-9", title: "Credit terms", section: "Payment terms by tier"),
                             text: """
                                 | Tier | Payment term | Reminder after |
                                 |---|---|---|
                                 | Gold | 60 days net | 10 days |
                                 | Silver | 40 days net | 7 days |
                                 | Bronze | 20 days net | 3 days |
                                 """, score: 3, subQuestion: "")
        let (answer, state) = try await run("What payment term do we give \(name)?", passages: [terms])
        // The customer's record is stated first, then the row its tier selects, both cited.
        let lookup = try #require(state.evidence?.first { $0.isLookup })
        #expect(lookup.keys == ["Silver"])
        #expect(answer.text.hasPrefix(lookup.text))
        #expect(answer.text.contains("40 days net") && !answer.text.contains("60 days") && !answer.text.contains("20 days"))
        #expect(Set(answer.citations.map(\.sourceID)) == ["db:customers", "FIN-9"])
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

    // MARK: knowledge.sql_template_choice: model (the scripted model is a test double standing in for the LLM)

    /// A script that answers the template-choice schema with `choice` and every other request as the default script does.
    static func choosing(_ choice: String) -> ScriptedChatModel {
        ScriptedChatModel { request in
            request.jsonSchema?.contains("\"anyOf\"") == true ? choice : try ScriptedChatModel.defaultScript(request)
        }
    }

    @Test func theModelsTemplateChoiceRunsWhenItValidates() async throws {
        // The rules would filter on "cancelled"; the model's (different) valid choice is what runs.
        let model = Self.choosing(#"{"template":"shipment_statistics","parameters":{"status":"delayed"}}"#)
        let (answer, state) = try await run("How many shipments were cancelled in total?", model: model, modelChoosesTemplates: true)
        let record = try #require(state.evidence?.first { $0.source.id == "db:shipments" })
        #expect(record.chunkID.contains("#shipment_statistics?status=") && record.chunkID.contains("delayed"))
        #expect(answer.citations.first?.sourceID == "db:shipments")
        // The request carried the connector's schema and its catalog, and no SQL.
        let request = try #require(model.requests.first { $0.jsonSchema?.contains("\"anyOf\"") == true })
        #expect(request.jsonSchema == connector.choiceSchema)
        #expect(request.messages.first?.content.contains("- shipment_statistics: ") == true)
        #expect(request.messages.first?.content.contains("SELECT") == false)
    }

    @Test(arguments: [
        #"{"template":"shipment_statistics","parameters":{"status":"teleported"}}"#,  // not a known value
        #"{"template":"drop_tables","parameters":{}}"#,  // not a template
        #"{"template":"none","parameters":{}}"#,  // the model declines
        "not json",
    ])
    func anUnusableOrEmptyChoiceLeavesItToTheRules(choice: String) async throws {
        let model = Self.choosing(choice)
        let (answer, state) = try await run("How many shipments were cancelled in total?", model: model, modelChoosesTemplates: true)
        let record = try #require(state.evidence?.first { $0.source.id == "db:shipments" })
        #expect(record.chunkID.contains("#shipment_statistics?status=") && record.chunkID.contains("cancelled"))
        #expect(answer.citations.first?.sourceID == "db:shipments")
    }

    @Test func byDefaultTheRulesChooseAndTheModelIsNotAsked() async throws {
        let model = Self.choosing(#"{"template":"shipment_statistics","parameters":{"status":"delayed"}}"#)
        let (_, state) = try await run("How many shipments were cancelled in total?", model: model)
        #expect(state.evidence?.first { $0.source.id == "db:shipments" }?.chunkID.contains("cancelled") == true)
        #expect(!model.requests.contains { $0.jsonSchema?.contains("\"anyOf\"") == true })
    }

    @Test func aModelsChoiceOfATableOutsideTheScopeIsRefusedAsRestricted() async throws {
        let model = Self.choosing(#"{"template":"invoice_statistics","parameters":{}}"#)
        let scope = DocumentScope(allowedDocumentIDs: nil, readableTables: ["shipments", "customers"])
        let (answer, _) = try await run("How many invoices are overdue?", scope: scope, model: model, modelChoosesTemplates: true)
        #expect(answer.isRefusal && answer.text.contains("finance"))
    }

    @Test func aModelsStrayChoiceOfAForbiddenTemplateIsNotARefusal() async throws {
        // The question is about shipments; the model picks the invoices the principal may not read.
        let model = Self.choosing(#"{"template":"invoice_statistics","parameters":{}}"#)
        let scope = DocumentScope(allowedDocumentIDs: nil, readableTables: ["shipments", "customers"])
        let (answer, state) = try await run("How many shipments were cancelled in total?", scope: scope, model: model,
                                            modelChoosesTemplates: true)
        #expect(!answer.isRefusal)
        #expect(answer.citations.first?.sourceID == "db:shipments")
        #expect(state.evidence?.first { $0.source.id == "db:shipments" }?.chunkID.contains("cancelled") == true)
    }
}
