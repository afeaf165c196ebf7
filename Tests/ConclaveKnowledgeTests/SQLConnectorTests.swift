import ConclaveCore
@testable import ConclaveKnowledge
import Foundation
import Testing

/// The repository's Meridian database and templates.
enum MeridianSQL {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let databasePath = root.appendingPathComponent("examples/meridian/db/meridian.sqlite").path
    static let templatesPath = root.appendingPathComponent("config/connectors/meridian-sql.yaml").path

    static func connector() throws -> DatabaseConnector {
        var catalog = try TemplateCatalog.load(path: templatesPath)
        catalog.database.path = databasePath
        return try DatabaseConnector(catalog: catalog)
    }

    /// The value of a one-cell query, computed independently of the templates.
    static func scalar(_ sql: String) throws -> SQLValue {
        let db = try SQLiteReadOnlyDatabase(path: databasePath)
        return try #require(try db.query(sql).rows.first?.first)
    }
}

@Suite struct ReadOnlyDatabaseTests {
    let db: SQLiteReadOnlyDatabase

    init() throws {
        db = try SQLiteReadOnlyDatabase(path: MeridianSQL.databasePath, rowLimit: 5, timeout: .milliseconds(200))
    }

    @Test(arguments: [
        "INSERT INTO warehouses (id, city, capacity_pallets, manager_id) VALUES (99, 'X', 1, 1001)",
        "UPDATE customers SET tier = 'Gold'",
        "DELETE FROM tickets",
        "DROP TABLE invoices",
        "CREATE TABLE t (x INTEGER)",
        "PRAGMA writable_schema = 1",
        "ATTACH DATABASE '/tmp/x.sqlite' AS x",
        "BEGIN IMMEDIATE",
    ])
    func writesAndSchemaChangesAreRefused(_ sql: String) throws {
        #expect(throws: SQLQueryError.self) { try db.query(sql) }
        // The data is untouched.
        #expect(try db.query("SELECT COUNT(*) FROM warehouses").rows.first?.first == .integer(6))
    }

    @Test func onlyOneStatementRuns() throws {
        let error = #expect(throws: SQLQueryError.self) { try db.query("SELECT 1; DELETE FROM tickets") }
        #expect(error?.message.contains("single statement") == true)
    }

    @Test func tablesOutsideTheAllowListAreRefused() throws {
        let error = #expect(throws: SQLQueryError.self) {
            try db.query("SELECT s.id FROM shipments s JOIN employees e ON e.id = 1", allowedTables: ["shipments"])
        }
        #expect(error?.message.contains("employees") == true)
        #expect(throws: SQLQueryError.self) { try db.query("SELECT sql FROM sqlite_master") }
        #expect(try db.query("SELECT COUNT(*) FROM shipments", allowedTables: ["shipments"]).rows.count == 1)
    }

    @Test func rowLimitAndTimeoutBoundAQuery() throws {
        let result = try db.query("SELECT id FROM shipments ORDER BY id")
        #expect(result.rows.count == 5 && result.truncated)
        let error = #expect(throws: SQLQueryError.self) {
            try db.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c")
        }
        #expect(error?.message.contains("stopped") == true)
    }

    @Test func bindingsAreCountedAndTyped() throws {
        #expect(throws: SQLQueryError.self) { try db.query("SELECT ? + ?", bindings: [.integer(1)]) }
        let row = try #require(try db.query("SELECT ? || ?, ? * 2", bindings: [.text("a"), .text("b"), .real(1.5)]).rows.first)
        #expect(row == [.text("ab"), .real(3)])
    }

    @Test func missingFileIsAClearError() {
        #expect(throws: ConfigurationError.self) { try SQLiteReadOnlyDatabase(path: "/nonexistent/db.sqlite") }
    }
}

@Suite struct QueryTemplateTests {
    let connector: DatabaseConnector

    init() throws {
        connector = try MeridianSQL.connector()
    }

    private func template(_ name: String) throws -> QueryTemplate {
        try #require(connector.template(named: name))
    }

    @Test func parameterValuesAreValidatedByType() throws {
        let ranking = try template("customers_by_contract_value")
        #expect(throws: TemplateError("parameter limit of template customers_by_contract_value must be an integer, got \"three\"")) {
            try ranking.validate(["limit": "three"])
        }
        #expect(throws: TemplateError("parameter limit of template customers_by_contract_value must be at most 40, got 500")) {
            try ranking.validate(["limit": "500"])
        }
        #expect(throws: TemplateError("parameter limit of template customers_by_contract_value must be at least 1, got 0")) {
            try ranking.validate(["limit": "0"])
        }
        let error = #expect(throws: TemplateError.self) { try ranking.validate(["tier": "Platinum"], lexicon: ["customers.tier": ["Gold", "Silver"]]) }
        #expect(error?.message.contains("known values") == true)
        #expect(throws: TemplateError.self) { try ranking.validate(["direction": "DESC; DROP TABLE x"]) }
        #expect(throws: TemplateError.self) { try ranking.validate(["colour": "red"]) }
        let shipments = try template("shipment_statistics")
        #expect(throws: TemplateError.self) { try shipments.validate(["shipped": "2025-13-01/2025-12-31"]) }
        #expect(throws: TemplateError.self) { try shipments.validate(["shipped": "2025-09-30/2025-09-01"]) }
    }

    @Test func optionalClausesListsRangesAndKeywordsCompile() throws {
        let shipments = try template("shipment_statistics")
        let values = try shipments.validate(["status": "delayed,exception", "shipped": "2025-04-01/2025-06-30"])
        let (sql, bindings) = try shipments.compile(values)
        #expect(sql.contains("s.status IN (?, ?)") && sql.contains("BETWEEN ? AND ?"))
        #expect(!sql.contains("service_level =") && !sql.contains("{{") && !sql.contains("[["))
        #expect(bindings == [.text("delayed"), .text("exception"), .text("2025-04-01"), .text("2025-06-30")])
        let ranking = try template("customers_by_contract_value")
        let (ranked, rankBindings) = try ranking.compile(try ranking.validate(["direction": "ASC", "limit": "2"]))
        #expect(ranked.contains("ORDER BY annual_contract_eur ASC") && rankBindings == [.integer(2)])
    }

    @Test(arguments: [
        ("templates: [{name: t, description: d, subject: [x], intents: [count], tables: [t], parameters: [], sql: 'SELECT {{nope}}', result: r, row: r}]",
         "uses {{nope}} but no such parameter"),
        ("templates: [{name: t, description: d, subject: [x], intents: [count], tables: [t], parameters: [{name: a, type: string}], sql: 'SELECT 1 [[AND 1 = 1]]', result: r, row: r}]",
         "must use a parameter"),
        ("templates: [{name: t, description: d, subject: [x], intents: [count], tables: [t], parameters: [{name: a, type: string}], sql: 'SELECT {{a}}', result: r, row: r}]",
         "must be required or have a default"),
        ("templates: [{name: t, description: d, subject: [x], intents: [guess], tables: [t], parameters: [], sql: 'SELECT 1', result: r, row: r}]",
         "templates[0].intents"),
        ("templates: [{name: t, description: d, subject: [x], intents: [rank], tables: [t], parameters: [{name: d, type: keyword, choices: {'DROP': [x]}}], sql: 'SELECT 1 ORDER BY 1 {{d}}', result: r, row: r}]",
         "choices whose keys are SQL keywords"),
    ])
    func malformedTemplatesAreRejectedWithTheReason(_ templates: String, _ expected: String) {
        let yaml = "database: {driver: sqlite, path: x.sqlite}\n" + templates
        let error = #expect(throws: TemplateError.self) { try TemplateCatalog.load(yaml: yaml, origin: "bad.yaml") }
        #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
        #expect(error?.message.hasPrefix("bad.yaml") == true)
    }

    @Test func unsupportedDriverIsNamed() {
        let error = #expect(throws: TemplateError.self) {
            try TemplateCatalog.load(yaml: "database: {driver: oracle, path: x}\ntemplates: []", origin: "c.yaml")
        }
        #expect(error?.message.contains("oracle") == true)
        let postgres = #expect(throws: TemplateError.self) {
            try TemplateCatalog.load(yaml: "database: {driver: postgres}\ntemplates: []", origin: "c.yaml")
        }
        #expect(postgres?.message.contains("database.url or database.url_env") == true)
        let settings = TemplateCatalog.DatabaseSettings(driver: "postgres", urlEnvironment: "MERIDIAN_DATABASE_URL")
        #expect(settings.connectionURL(["MERIDIAN_DATABASE_URL": "postgres://r@h/db"]) == "postgres://r@h/db")
        #expect(settings.connectionURL([:]) == nil && settings.connectionURL(["MERIDIAN_DATABASE_URL": "mysql://x"]) == nil)
    }
}

@Suite struct TemplateMatchingTests {
    let connector: DatabaseConnector

    init() throws {
        connector = try MeridianSQL.connector()
    }

    @Test func filtersAreReadOffTheQuestionAndTheCountComesFromTheDatabase() throws {
        let match = try #require(connector.match("How many Standard shipments are delayed at the moment?"))
        #expect(match.template.name == "shipment_statistics")
        #expect(match.values["service_level"] == "Standard" && match.values["status"] == "delayed")
        let expected = try MeridianSQL.scalar("SELECT COUNT(*) FROM shipments WHERE service_level = 'Standard' AND status = 'delayed'")
        let evidence = try #require(connector.evidence(for: "How many Standard shipments are delayed at the moment?").evidence.first)
        #expect(evidence.source.id == "db:shipments")
        #expect(evidence.text.contains(": \(expected) shipments"))
    }

    @Test func routeCuesSeparateOriginFromDestinationAndPeriodsBecomeRanges() throws {
        let match = try #require(connector.match("What was the combined weight of shipments from Hamburg to Antwerp in the second quarter of 2025?"))
        #expect(match.values["origin"] == "Hamburg" && match.values["destination"] == "Antwerp")
        #expect(match.values["shipped"] == "2025-04-01/2025-06-30")
    }

    @Test func rankingsTakeDirectionAndCount() throws {
        let match = try #require(connector.match("Name the two customers with the lowest annual contract value."))
        #expect(match.template.name == "customers_by_contract_value")
        #expect(match.values["direction"] == "ASC" && match.values["limit"] == "2")
        let text = try #require(connector.evidence(for: "Name the two customers with the lowest annual contract value.").evidence.first).text
        let lowest = try MeridianSQL.scalar("SELECT name FROM customers ORDER BY annual_contract_eur ASC, name LIMIT 1")
        #expect(text.contains(lowest.description))
    }

    @Test func namesMatchWithoutTheirLegalForm() throws {
        let name = try MeridianSQL.scalar("SELECT name FROM customers WHERE name LIKE '% GmbH' ORDER BY id LIMIT 1").description
        let short = DatabaseConnector.withoutLegalForm(name)
        #expect(short != name)
        let match = try #require(connector.match("How many invoices have we issued to \(short)?"))
        #expect(match.values["customer"] == name)
    }

    @Test(arguments: [
        "How many days of annual leave do employees get?",
        "What is the maximum hotel rate per night in Milan?",
        "How many employees does the company have?",
        "Who should I call when the warehouse fire alarm goes off?",
        "What does the Express service level promise for delivery times?",
    ])
    func questionsForTheDocumentsSelectNoTemplate(_ question: String) {
        #expect(connector.match(question) == nil)
    }

    @Test func aTableOutsideTheScopeIsWithheldWithItsOwner() throws {
        let scope = DocumentScope(allowedDocumentIDs: nil, readableTables: ["customers", "shipments", "employees", "warehouses"])
        let retrieval = connector.evidence(for: "How many invoices are disputed?", scope: scope)
        #expect(retrieval.evidence.isEmpty)
        #expect(retrieval.withheld == [WithheldSource(documentID: "db:invoices", department: "finance", coverage: 1)])
    }

    @Test func aDeniedColumnWithholdsItsAggregatesAndRankings() throws {
        let scope = DocumentScope(allowedDocumentIDs: nil, deniedColumns: ["employees.salary_eur", "customers.annual_contract_eur"])
        let salary = connector.evidence(for: "What is the average salary in the finance department?", scope: scope)
        #expect(salary.evidence.isEmpty && salary.withheld.first?.documentID == "db:employees.salary_eur")
        let ranking = connector.evidence(for: "Which customer has the highest annual contract value?", scope: scope)
        #expect(ranking.evidence.isEmpty && ranking.withheld.first?.documentID == "db:customers.annual_contract_eur")
        // A head count over the same table stays answerable.
        #expect(connector.evidence(for: "How many employees work in the finance department?", scope: scope).evidence.count == 1)
    }

    @Test func personalDataOfANamedEmployeeIsServedOnlyToThoseAllowedToSeeIt() throws {
        let name = try MeridianSQL.scalar("SELECT full_name FROM employees WHERE department = 'finance' ORDER BY id LIMIT 1").description
        let question = "What is \(name)'s annual salary?"
        let match = try #require(connector.match(question))
        #expect(match.template.name == "employee_salaries" && match.values["name"] == name)
        // Someone denied the column gets the refusal, naming HR; someone allowed gets the value from the database.
        let denied = connector.evidence(for: question, scope: DocumentScope(allowedDocumentIDs: nil, deniedColumns: ["employees.salary_eur", "employees.national_id"]))
        // A masked column is shown masked rather than refused.
        let phone = connector.evidence(for: "What is \(name)'s mobile number?",
                                       scope: DocumentScope(allowedDocumentIDs: nil, deniedColumns: ["employees.salary_eur"], maskedColumns: ["employees.phone"]))
        #expect(phone.withheld.isEmpty && phone.evidence.first?.text.contains("mobile [restricted]") == true)
        #expect(denied.evidence.isEmpty && denied.withheld.first?.department == "hr")
        let salary = try MeridianSQL.scalar("SELECT salary_eur FROM employees WHERE full_name = '\(name)'")
        let text = try #require(connector.evidence(for: question).evidence.first).text
        #expect(text.contains("annual base salary EUR " + DatabaseConnector.format(salary, column: "salary_eur")), "\(text)")
        // The record template does not take over document questions about the same people.
        #expect(connector.match("What is the expense policy for the finance department?") == nil)
    }

    @Test func aNamedRecordIsLookedUpBesideTheAnswerWithItsKeys() throws {
        let (name, tier) = try {
            let name = try MeridianSQL.scalar("SELECT name FROM customers WHERE tier = 'Silver' ORDER BY id LIMIT 1").description
            return (name, try MeridianSQL.scalar("SELECT tier FROM customers WHERE name = '\(name)'").description)
        }()
        // A question no template answers still brings the record it names, and the record's keys.
        let question = "Which discount applies to \(name) this year?"
        #expect(connector.match(question) == nil)
        let lookup = try #require(connector.evidence(for: question).evidence.first)
        #expect(lookup.source.id == "db:customers" && lookup.isLookup && lookup.keys == [tier])
        #expect(lookup.text.contains(name) && lookup.text.contains(tier))
        // Beside a template's answer the lookup comes second.
        let counted = connector.evidence(for: "How many invoices have we issued to \(name)?").evidence
        #expect(counted.map(\.isLookup) == [false, true])
        // A principal who may not read the table gets neither the record nor a refusal for it.
        let contractor = DocumentScope(allowedDocumentIDs: nil, readableTables: ["shipments", "warehouses"])
        let hidden = connector.evidence(for: question, scope: contractor)
        #expect(hidden.evidence.isEmpty && hidden.withheld.isEmpty)
        // A question that names no record runs no lookup.
        #expect(connector.lookups("Which discount applies to Silver customers?").isEmpty)
    }

    @Test func maskedColumnsAreRenderedRestricted() throws {
        let template = try #require(connector.template(named: "customers_by_contract_value"))
        let result = SQLResult(columns: ["name", "annual_contract_eur"], rows: [[.text("A"), .real(1_250_000.5)]], truncated: false)
        let text = DatabaseConnector.render(template, values: [:], result: result, masked: ["annual_contract_eur"])
        #expect(text.contains("A (EUR [restricted])") && !text.contains("1,250"))
        #expect(DatabaseConnector.render(template, values: [:], result: result, masked: []).contains("EUR 1,250,000.5"))
    }

    @Test func textToSQLIsOffByDefaultAndGuardedWhenOn() throws {
        #expect(throws: TemplateError.self) { try connector.runGuarded("SELECT COUNT(*) FROM customers") }
        let db = try SQLiteReadOnlyDatabase(path: MeridianSQL.databasePath)
        let allowed: Set<String> = ["customers", "shipments"]
        let count = try DatabaseConnector.guardedQuery("SELECT COUNT(*) FROM customers", database: db, allowedTables: allowed)
        #expect(count.rows.first?.first == .integer(40))
        for sql in ["SELECT full_name FROM employees", "DELETE FROM customers", "SELECT 1; SELECT 2",
                    "PRAGMA table_info(customers)", "SELECT * FROM customers WHERE id IN (SELECT customer_id FROM invoices)"] {
            #expect(throws: SQLQueryError.self, "\(sql)") {
                try DatabaseConnector.guardedQuery(sql, database: db, allowedTables: allowed)
            }
        }
    }
}

@Suite struct QuestionTextTests {
    @Test(arguments: [
        ("shipments in Q1 2024", "2024-01-01", "2024-03-31"),
        ("invoices issued in March 2025", "2025-03-01", "2025-03-31"),
        ("tickets opened in February 2024", "2024-02-01", "2024-02-29"),
        ("between 2025-02-01 and 2025-02-15", "2025-02-01", "2025-02-15"),
        ("shipped from May to July 2025", "2025-05-01", "2025-07-31"),
        ("employees hired in 2023", "2023-01-01", "2023-12-31"),
        ("in the fourth quarter of 2024", "2024-10-01", "2024-12-31"),
    ])
    func periodsBecomeInclusiveRanges(_ text: String, _ from: String, _ to: String) throws {
        let period = try #require(QuestionText(text).period)
        #expect(period.from == from && period.to == to)
    }

    @Test func countsIntentsAndNumbers() {
        #expect(QuestionText("Which three hubs are largest?").requestedCount == 3)
        #expect(QuestionText("top 5 customers").requestedCount == 5)
        #expect(QuestionText("shipments in Q3 2025").requestedCount == nil)
        #expect(QuestionText("How many of the tickets are open?").intents(subject: ["tickets"]).contains(.count))
        #expect(!QuestionText("How many days do tickets stay open?").intents(subject: ["tickets"]).contains(.count))
        #expect(DatabaseConnector.format(.real(5662165.62), column: "total_eur") == "5,662,165.62")
        #expect(DatabaseConnector.format(.real(828600), column: "total_eur") == "828,600")
        #expect(DatabaseConnector.format(.integer(100001), column: "shipment_id") == "100001")
    }
}
