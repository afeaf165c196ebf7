import ConclaveCore
@testable import ConclaveKnowledge
import ConclaveTesting
import Foundation
import Testing

/// The SQL connector on PostgreSQL: the Meridian database loaded from its portable SQL file into
/// the throw-away test cluster, read through a role that may only SELECT. The same templates must
/// give the same evidence as on SQLite, and the guards must hold without SQLite's authorizer.
@Suite(.serialized) struct PostgresSQLConnectorTests {
    /// The loaded database, once per test process: the admin URL and the read-only role's URL.
    static let meridian = Task { () async throws -> (admin: String, reader: String) in
        let admin = try await PostgresTestServer.shared().makeDatabase()
        guard var reader = URLComponents(string: admin) else { throw SQLQueryError(message: "not a URL: \(admin)") }
        let role = "reader_" + reader.path.dropFirst()
        try psql(admin, file: MeridianSQL.root.appendingPathComponent("examples/meridian/db/meridian.sql").path)
        try psql(admin, command: "CREATE ROLE \(role) LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \(role);")
        reader.user = role
        return (admin, reader.string ?? admin)
    }

    static func psql(_ url: String, file: String? = nil, command: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = ["-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", url] + (file.map { ["-f", $0] } ?? []) + (command.map { ["-c", $0] } ?? [])
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let printed = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SQLQueryError(message: "psql failed: \(String(decoding: printed, as: UTF8.self))")
        }
    }

    func connector(_ url: String, textToSQL: Bool = false) throws -> DatabaseConnector {
        var catalog = try TemplateCatalog.load(path: MeridianSQL.templatesPath)
        catalog.database = .init(driver: "postgres", url: url, rowLimit: 200, timeoutSeconds: 2)
        if textToSQL { catalog.textToSQL?.enabled = true }
        return try DatabaseConnector(catalog: catalog)
    }

    /// Every turn of the dev set asked of both databases: the same template, the same values, the
    /// same rendered evidence (numbers formatted alike although PostgreSQL returns NUMERIC).
    @Test func everyQuestionGetsTheSameEvidenceAsOnSQLite() async throws {
        let postgres = try connector(try await Self.meridian.value.reader)
        let sqlite = try MeridianSQL.connector()
        let tasks = try String(contentsOf: MeridianSQL.root.appendingPathComponent("examples/meridian/eval/dev.jsonl"), encoding: .utf8)
        var questions: [String] = []
        for line in tasks.split(separator: "\n") {
            let task = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            questions += (task["turns"] as? [[String: Any]] ?? []).compactMap { $0["user"] as? String }
        }
        var answered = 0
        for question in questions {
            let expected = sqlite.evidence(for: question).evidence.map(\.text)
            let actual = postgres.evidence(for: question).evidence.map(\.text)
            #expect(actual == expected, "\(question)")
            if !expected.isEmpty { answered += 1 }
        }
        #expect(answered >= 20, "the dev set's sql questions should reach the templates")
        // Every template with every optional clause in use, as the load-time check runs them.
        for template in sqlite.catalog.templates {
            let values = DatabaseConnector.sampleValues(template, lexicon: sqlite.lexicon)
            #expect(try postgres.run(template, values: values).evidence.map(\.text) == sqlite.run(template, values: values).evidence.map(\.text),
                    "\(template.name)")
        }
    }

    @Test func writesSchemaChangesAndSecondStatementsAreRefused() async throws {
        let db = try PostgresReadOnlyDatabase(url: try await Self.meridian.value.admin)
        for sql in ["DELETE FROM tickets", "INSERT INTO warehouses (id) VALUES (99)", "UPDATE customers SET tier = 'Gold'",
                    "CREATE TABLE t (x int)", "DROP TABLE tickets",
                    "WITH gone AS (DELETE FROM tickets RETURNING id) SELECT count(*) FROM gone"] {
            let error = #expect(throws: SQLQueryError.self, "\(sql)") { try db.query(sql) }
            #expect(error?.message.contains("read-only") == true, "\(sql): \(error?.message ?? "")")
        }
        let second = #expect(throws: SQLQueryError.self) { try db.query("SELECT 1; DELETE FROM tickets") }
        #expect(second?.message == "Only a single statement is allowed.")
        // Even the administrator's connection stays read-only: the rows are all still there.
        #expect(try db.query("SELECT count(*) FROM tickets").rows.first?.first == MeridianSQL.scalar("SELECT count(*) FROM tickets"))
    }

    @Test func tablesOutsideTheAllowListAreRefusedFromThePlan() async throws {
        let db = try PostgresReadOnlyDatabase(url: try await Self.meridian.value.reader)
        let allowed: Set<String> = ["customers", "shipments"]
        #expect(try db.query("SELECT count(*) FROM shipments s JOIN customers c ON c.id = s.customer_id", allowedTables: allowed).rows.count == 1)
        for (sql, table) in [("SELECT full_name FROM employees", "employees"),
                             ("SELECT * FROM customers WHERE id IN (SELECT customer_id FROM invoices)", "invoices"),
                             ("SELECT relname FROM pg_class", "pg_class")] {
            let error = #expect(throws: SQLQueryError.self, "\(sql)") { try db.query(sql, allowedTables: allowed) }
            #expect(error?.message == "The table \(table) is not allowed in this query.")
        }
    }

    @Test func aFreeQueryCallsOnlyAllowListedFunctions() async throws {
        let url = try await Self.meridian.value.reader
        let connector = try connector(url, textToSQL: true)
        #expect(try connector.runGuarded("SELECT count(*), round(avg(weight_kg), 1) FROM shipments").rows.count == 1)
        for (sql, expected) in [
            ("SELECT query_to_xml('SELECT * FROM employees', true, true, '')", "query_to_xml"),
            ("SELECT pg_catalog.pg_sleep(5)", "pg_sleep"),
            ("SELECT \"set_config\"('default_transaction_read_only', 'off', false)", "set_config"),
            ("SELECT $$x$$", "Dollar"), ("SELECT E'\\'' || current_setting('is_superuser')", "Prefixed"),
            ("DELETE FROM customers", "SELECT"), ("SELECT rolname FROM pg_roles", "is not allowed in this query"),
        ] {
            let error = #expect(throws: (any Error).self, "\(sql)") { try connector.runGuarded(sql, scope: .unrestricted) }
            #expect("\(error.map { "\($0)" } ?? "")".contains(expected), "\(sql): \(String(describing: error))")
        }
    }

    @Test func rowLimitTimeoutAndAReconnect() async throws {
        let (admin, reader) = try await Self.meridian.value
        let db = try PostgresReadOnlyDatabase(url: reader, rowLimit: 5, timeout: .milliseconds(200))
        let limited = try db.query("SELECT id FROM shipments ORDER BY id")
        #expect(limited.rows.count == 5 && limited.truncated)
        #expect(limited.rows.first?.first == .integer(try #require(MeridianSQL.scalar("SELECT min(id) FROM shipments").integer)))
        let slow = #expect(throws: SQLQueryError.self) {
            try db.query("SELECT count(*) FROM shipments a, shipments b, shipments c, shipments d")
        }
        #expect(slow?.message.contains("ran longer than") == true, "\(slow?.message ?? "")")
        // The server ends the session (an administrator, a restart): the next query reconnects.
        let role = try #require(URLComponents(string: reader)?.user)
        try Self.psql(admin, command: "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '\(role)'")
        #expect(try db.query("SELECT count(*) FROM warehouses").rows.first?.first == MeridianSQL.scalar("SELECT count(*) FROM warehouses"))
        #expect(try db.query("SELECT ? ::int + ?", bindings: [.integer(2), .integer(3)]).rows.first?.first == .integer(5))
    }

    @Test func aServerThatIsNotThereIsAClearErrorWithoutThePassword() throws {
        let error = #expect(throws: SQLQueryError.self) {
            try PostgresReadOnlyDatabase(url: "postgres://reader:s3cret@127.0.0.1:1/meridian?connect_timeout=2")
        }
        #expect(error?.message.contains("Cannot connect to postgres://reader:***@127.0.0.1:1/meridian") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("s3cret") == false)
    }
}

extension SQLValue {
    var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }
}
