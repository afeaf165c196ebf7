import CLibPQ
import ConclaveCore
import ConclaveStorage
import Foundation
import Synchronization

/// A read-only connection to a PostgreSQL database through libpq, guarded like the SQLite one:
/// the session's transactions are read-only (`default_transaction_read_only`), each query is a
/// single statement (libpq's extended protocol refuses more), the tables a statement reads are
/// checked against an allow-list in the server's own plan (`EXPLAIN (FORMAT JSON)`), a free
/// (text-to-SQL) query may call only allow-listed functions, and a statement timeout and a row
/// limit bound each query. Parameters go untyped, so the server infers each one's type from
/// where it stands (a date compared with a `DATE` column) as it does for literals: the templates'
/// portable SQL, `?` placeholders included, runs unchanged.
///
/// libpq rather than postgres-nio (which the store uses): the connector's interface is synchronous
/// like SQLite's C API (templates are checked while the configuration loads, also at a reload
/// under its lock), and libpq reads the whole `postgres://` URL (TLS with `sslmode`,
/// `sslrootcert`, `sslcert`, `sslkey`; the password from `PGPASSWORD` or `~/.pgpass`) and lets
/// parameters stay untyped. docs/knowledge.md, "PostgreSQL".
public final class PostgresReadOnlyDatabase: ReadOnlyDatabase {
    /// The libpq connection (nil after a failed reconnect); reopened when it breaks. Used only
    /// under the lock: one query at a time, as libpq requires of a connection.
    private let handle: Mutex<OpaquePointer?>
    private let url: String
    /// The URL without its password.
    public let location: String
    public let rowLimit: Int
    public let timeout: Duration

    /// Functions a free query may call: aggregates, arithmetic, text and date functions that read
    /// nothing but their arguments. Anything else (`query_to_xml`, `pg_read_file`, `dblink`,
    /// `set_config`, user functions) could reach tables or settings the allow-lists do not see.
    public static let freeQueryFunctions: Set<String> = [
        "count", "sum", "avg", "min", "max", "stddev", "stddev_samp", "stddev_pop", "variance", "var_samp", "var_pop",
        "string_agg", "array_agg", "bool_and", "bool_or", "every", "percentile_cont", "percentile_disc", "mode",
        "round", "trunc", "abs", "ceil", "ceiling", "floor", "sign", "mod", "power", "sqrt", "div",
        "lower", "upper", "initcap", "length", "char_length", "character_length", "btrim", "ltrim", "rtrim", "substr",
        "replace", "concat", "concat_ws", "left", "right", "lpad", "rpad", "strpos", "split_part", "starts_with",
        "date_part", "date_trunc", "to_char", "to_date", "make_date", "age", "justify_days", "now",
        "rank", "dense_rank", "row_number", "ntile", "lag", "lead", "first_value", "last_value", "percent_rank", "cume_dist",
    ]

    /// Connects to `url` (`postgres://…` or `postgresql://…`).
    public init(url: String, rowLimit: Int = 200, timeout: Duration = .seconds(2)) throws {
        self.url = url
        location = PostgresLocation.redacted(url)
        self.rowLimit = rowLimit
        self.timeout = timeout
        handle = Mutex(nil)
        try handle.withLock { try connect(&$0) }
    }

    deinit {
        handle.withLock { connection in
            if let connection { PQfinish(connection) }
            connection = nil
        }
    }

    /// Runs one read-only statement with positional `?` bindings. With `allowedTables`, a plan
    /// that reads any other table is refused before the statement runs.
    public func query(_ sql: String, bindings: [SQLValue], allowedTables: Set<String>?) throws -> SQLResult {
        let (statement, count) = SQLText.numberingPlaceholders(sql)
        guard count == bindings.count else {
            throw SQLQueryError(message: "The query has \(count) parameters but \(bindings.count) values were bound.")
        }
        return try handle.withLock { connection in
            if connection == nil || PQstatus(connection) != CONNECTION_OK { try connect(&connection) }
            guard let current = connection else { throw SQLQueryError(message: "No connection to \(location).") }
            do {
                return try attempt(current, statement, bindings, allowedTables)
            } catch where PQstatus(current) != CONNECTION_OK {
                // The server closed the connection (a restart, an administrator): reconnect and
                // run the read-only statement once more.
                try connect(&connection)
                guard let fresh = connection else { throw error }
                return try attempt(fresh, statement, bindings, allowedTables)
            }
        }
    }

    private func attempt(_ connection: OpaquePointer, _ statement: String, _ bindings: [SQLValue],
                         _ allowedTables: Set<String>?) throws -> SQLResult {
        if let allowedTables {
            let plan = try run(connection, "EXPLAIN (FORMAT JSON) " + statement, bindings, limit: nil)
            guard case .text(let json)? = plan.rows.first?.first else {
                throw SQLQueryError(message: "The database returned no plan for the query.")
            }
            let allowed = Set(allowedTables.map { $0.lowercased() })
            if let table = try Self.relations(inPlan: json).first(where: { !allowed.contains($0) }) {
                throw SQLQueryError(message: "The table \(table) is not allowed in this query.")
            }
        }
        return try run(connection, statement, bindings, limit: rowLimit)
    }

    /// A free query may call only ``freeQueryFunctions`` and must scan cleanly (no dollar quoting,
    /// no prefixed literals).
    public func checkFreeQuery(_ sql: String) throws {
        if let problem = SQLText.unscannable(sql) { throw SQLQueryError(message: problem) }
        if let call = SQLText.functionCalls(in: sql).first(where: { !Self.freeQueryFunctions.contains($0) }) {
            throw SQLQueryError(message: "The function \(call) is not allowed in a free query.")
        }
    }

    // MARK: libpq

    /// (Re)opens the connection and makes the session read-only, with the statement timeout.
    private func connect(_ connection: inout OpaquePointer?) throws {
        if let old = connection { PQfinish(old) }
        connection = nil
        guard let opened = PQconnectdb(url) else { throw SQLQueryError(message: "Cannot connect to \(location): out of memory.") }
        guard PQstatus(opened) == CONNECTION_OK else {
            let message = Self.message(opened)
            PQfinish(opened)
            throw SQLQueryError(message: "Cannot connect to \(location): \(message)")
        }
        let milliseconds = max(1, timeout.inMilliseconds)
        for setting in ["SET default_transaction_read_only = on", "SET statement_timeout = \(milliseconds)",
                        "SET standard_conforming_strings = on", "SET DateStyle = ISO"] {
            let result = PQexec(opened, setting)
            defer { PQclear(result) }
            guard PQresultStatus(result) == PGRES_COMMAND_OK else {
                let message = Self.message(opened)
                PQfinish(opened)
                throw SQLQueryError(message: "Cannot prepare the session on \(location): \(message)")
            }
        }
        connection = opened
    }

    /// Sends `sql` with untyped text parameters and reads its rows, at most `limit` of them (the
    /// rest of the statement cancelled).
    private func run(_ connection: OpaquePointer, _ sql: String, _ bindings: [SQLValue], limit: Int?) throws -> SQLResult {
        let owned: [UnsafeMutablePointer<CChar>?] = bindings.map { value in
            if case .null = value { return nil }
            return strdup(value.description)
        }
        defer { owned.forEach { free($0) } }
        var values: [UnsafePointer<CChar>?] = owned.map { $0.map { UnsafePointer($0) } }
        let sent = values.withUnsafeMutableBufferPointer { buffer in
            PQsendQueryParams(connection, sql, Int32(buffer.count), nil, buffer.baseAddress.map { UnsafePointer($0) }, nil, nil, 0)
        }
        guard sent == 1 else { throw SQLQueryError(message: "The query could not be sent: \(Self.message(connection))") }
        if limit != nil { PQsetSingleRowMode(connection) }
        var columns: [String] = []
        var types: [Oid] = []
        var rows: [[SQLValue]] = []
        var truncated = false
        var failure: (state: String, message: String)?
        while let result = PQgetResult(connection) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_SINGLE_TUPLE, PGRES_TUPLES_OK:
                if columns.isEmpty {
                    let count = PQnfields(result)
                    columns = (0..<count).map { String(cString: PQfname(result, $0)) }
                    types = (0..<count).map { PQftype(result, $0) }
                }
                for row in 0..<PQntuples(result) {
                    if let limit, rows.count == limit {
                        if !truncated { truncated = true; Self.cancel(connection) }
                        continue
                    }
                    rows.append((0..<Int32(columns.count)).map { Self.value(result, row, $0, type: types[Int($0)]) })
                }
            case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                continue
            default:
                if failure == nil, !truncated {
                    func field(_ code: Character) -> String? {
                        PQresultErrorField(result, Int32(code.asciiValue ?? 0)).map { String(cString: $0) }
                    }
                    failure = (field("C") ?? "", field("M") ?? Self.message(connection))
                }
            }
        }
        if let failure { throw error(failure.state, failure.message) }
        return SQLResult(columns: columns, rows: rows, truncated: truncated)
    }

    /// A cell as a ``SQLValue``: integers and booleans as integers, floating and numeric types
    /// as reals (as SQLite returns them), everything else (dates included, ISO) as text.
    private static func value(_ result: OpaquePointer, _ row: Int32, _ column: Int32, type: Oid) -> SQLValue {
        guard PQgetisnull(result, row, column) == 0, let bytes = PQgetvalue(result, row, column) else { return .null }
        let text = String(cString: bytes)
        switch type {
        case 16: return .integer(text == "t" ? 1 : 0)
        case 20, 21, 23, 26: return Int64(text).map(SQLValue.integer) ?? .text(text)
        case 700, 701, 1700: return Double(text).map(SQLValue.real) ?? .text(text)
        default: return .text(text)
        }
    }

    /// The server's refusal in the words the SQLite guard uses for the same thing.
    private func error(_ state: String, _ message: String) -> SQLQueryError {
        switch state {
        case "57014": return SQLQueryError(message: "The query ran longer than \(timeout) and was stopped.")
        case "25006": return SQLQueryError(message: "Only read-only statements are allowed.")
        case "42601" where message.contains("multiple commands"):
            return SQLQueryError(message: "Only a single statement is allowed.")
        case "42501": return SQLQueryError(message: "The database refused access: \(message)")
        default: return SQLQueryError(message: "The database rejected the query: \(message)")
        }
    }

    private static func cancel(_ connection: OpaquePointer) {
        guard let cancel = PQgetCancel(connection) else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancel, &buffer, Int32(buffer.count))
        PQfreeCancel(cancel)
    }

    private static func message(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Every `Relation Name` in an `EXPLAIN (FORMAT JSON)` plan, lower-cased (views appear as the
    /// tables they read).
    static func relations(inPlan json: String) throws -> [String] {
        guard let plan = try? JSONSerialization.jsonObject(with: Data(json.utf8)) else {
            throw SQLQueryError(message: "The database's plan for the query could not be read.")
        }
        var names: [String] = []
        func visit(_ node: Any) {
            if let object = node as? [String: Any] {
                if let name = object["Relation Name"] as? String { names.append(name.lowercased()) }
                object.values.forEach(visit)
            } else if let array = node as? [Any] {
                array.forEach(visit)
            }
        }
        visit(plan)
        return names
    }
}
