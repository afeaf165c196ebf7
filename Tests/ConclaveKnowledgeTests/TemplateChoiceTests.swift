import ConclaveCore
@testable import ConclaveKnowledge
import Foundation
import Testing

/// A model's choice of SQL template (`knowledge.sql_template_choice: model`): the JSON schema that
/// constrains it, and the validation of what it returns.
@Suite struct TemplateChoiceTests {
    let connector: DatabaseConnector

    init() throws { connector = try MeridianSQL.connector() }

    private func schema() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(connector.choiceSchema.utf8)) as? [String: Any])
    }

    @Test func theSchemaHasOneAlternativePerTemplateAndNone() throws {
        let alternatives = try #require(try schema()["anyOf"] as? [[String: Any]])
        let names = alternatives.compactMap { alternative -> String? in
            let template = (alternative["properties"] as? [String: Any])?["template"] as? [String: Any]
            return (template?["enum"] as? [String])?.first
        }
        let expected = connector.catalog.templates.filter { !$0.isLookup }.map(\.name) + ["none"]
        #expect(names == expected)
        // Lookups only ever run beside another template: the model cannot pick one.
        #expect(!names.contains("customer_profile"))
    }

    @Test func parametersAreTypedAndBounded() throws {
        let alternatives = try #require(try schema()["anyOf"] as? [[String: Any]])
        func parameters(_ name: String) throws -> [String: [String: Any]] {
            let alternative = try #require(alternatives.first {
                (((($0["properties"] as? [String: Any])?["template"]) as? [String: Any])?["enum"] as? [String]) == [name]
            })
            let parameters = try #require((alternative["properties"] as? [String: Any])?["parameters"] as? [String: Any])
            #expect(parameters["additionalProperties"] as? Bool == false)
            return try #require(parameters["properties"] as? [String: [String: Any]])
        }
        let shipments = try parameters("shipment_statistics")
        // A column's values become an enum; a date range a pattern; every string is bounded.
        let serviceLevels = try #require(shipments["service_level"]?["enum"] as? [String])
        #expect(Set(serviceLevels) == Set(try SQLiteReadOnlyDatabase(path: MeridianSQL.databasePath)
            .distinctValues(table: "shipments", column: "service_level")))
        #expect(shipments["shipped"]?["pattern"] as? String != nil)
        #expect(shipments["status"]?["maxLength"] as? Int != nil)
        for alternative in alternatives {
            let properties = ((alternative["properties"] as? [String: Any])?["parameters"] as? [String: Any])?["properties"] as? [String: [String: Any]] ?? [:]
            for (name, p) in properties where p["type"] as? String == "string" {
                #expect(p["enum"] != nil || p["maxLength"] != nil || p["pattern"] != nil, "\(name) is unbounded")
            }
            for (name, p) in properties where p["type"] as? String == "integer" {
                let template = connector.catalog.templates.first { $0.parameters.contains { $0.name == name } }
                if template?.parameter(name)?.maximum != nil { #expect(p["maximum"] != nil, "\(name) lost its bound") }
            }
        }
    }

    @Test func aValidChoiceBecomesAMatchAndRuns() throws {
        let choice = try JSONDecoder().decode(TemplateChoice.self, from: Data(#"{"template":"shipment_statistics","parameters":{"status":"delayed"}}"#.utf8))
        let match = try #require(try connector.match(choice))
        #expect(match.template.name == "shipment_statistics")
        let retrieval = connector.evidence(for: "How many shipments are late?", match: match)
        let expected = try MeridianSQL.scalar("SELECT COUNT(*) FROM shipments WHERE status = 'delayed'")
        guard case .integer(let count) = expected else { Issue.record("no count"); return }
        #expect(retrieval.evidence.first?.text.contains("\(count) shipments") == true)
        #expect(retrieval.evidence.first?.source.id == "db:shipments")
    }

    @Test func numbersMayComeAsJSONNumbers() throws {
        let choice = try JSONDecoder().decode(TemplateChoice.self, from: Data(#"{"template":"customers_by_shipments","parameters":{"limit":3}}"#.utf8))
        #expect(choice.parameters["limit"] == "3")
        #expect(try connector.match(choice)?.values["limit"] == "3")
    }

    @Test func noneIsNoMatch() throws {
        #expect(try connector.match(TemplateChoice(template: "none")) == nil)
    }

    @Test(arguments: [
        (TemplateChoice(template: "drop_tables"), "unknown template"),
        (TemplateChoice(template: "customer_profile", parameters: [:]), "unknown template"),
        (TemplateChoice(template: "shipment_statistics", parameters: ["status": "teleported"]), "parameter status"),
        (TemplateChoice(template: "shipment_statistics", parameters: ["colour": "red"]), "no parameter colour"),
        (TemplateChoice(template: "shipment_statistics", parameters: ["shipped": "last year"]), "date range"),
    ])
    func anInvalidChoiceNamesWhatIsWrong(choice: TemplateChoice, message: String) throws {
        let error = #expect(throws: TemplateError.self) { try connector.match(choice) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test func theCatalogForThePromptListsTemplatesAndParameters() {
        let catalog = connector.choiceCatalog
        #expect(catalog.contains("- shipment_statistics: Shipment counts"))
        #expect(catalog.contains("shipped (date_range: YYYY-MM-DD/YYYY-MM-DD)"))
        #expect(!catalog.contains("customer_profile"))
        #expect(!catalog.contains("SELECT"))
    }
}
