import ConclaveCore
import Foundation
import GRDBSQLite
import Synchronization

/// A read-only connection to a SQLite database, guarded three ways: the file is opened
/// read-only, an authorizer admits only reads (of allow-listed tables when a statement is checked
/// against a list) and functions, and every statement must be a single read-only statement.
/// Queries stop after a row limit and a time limit.
public final class SQLiteReadOnlyDatabase: ReadOnlyDatabase {
    private let handle: Mutex<OpaquePointer?>
    /// Path of the database file.
    public let path: String
    public var location: String { path }
    /// Most rows a query returns.
    public let rowLimit: Int
    /// Longest a query may run.
    public let timeout: Duration

    /// Opens `path` read-only.
    public init(path: String, rowLimit: Int = 200, timeout: Duration = .seconds(2)) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigurationError(key: "knowledge.sql_templates_file", value: path, expected: "a database file that exists (not found: \(path))")
        }
        var db: OpaquePointer?
        let status = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil)
        guard status == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "status \(status)"
            if let db { sqlite3_close(db) }
            throw ConclaveError(.internal, "Cannot open the database \(path) read-only: \(message)")
        }
        sqlite3_exec(db, "PRAGMA query_only = 1", nil, nil, nil)
        self.handle = Mutex(db)
        self.path = path
        self.rowLimit = rowLimit
        self.timeout = timeout
    }

    deinit {
        handle.withLock { db in
            if let db { sqlite3_close(db) }
            db = nil
        }
    }

    /// Runs one read-only statement with positional `?` bindings. With `allowedTables`, reading
    /// any other table is refused.
    public func query(_ sql: String, bindings: [SQLValue], allowedTables: Set<String>?) throws -> SQLResult {
        try handle.withLock { db in
            guard let db else { throw SQLQueryError(message: "The database is closed.") }
            let guardState = AuthorizerState(allowedTables: allowedTables.map { Set($0.map { $0.lowercased() }) })
            let context = Unmanaged.passRetained(guardState)
            defer { context.release() }
            sqlite3_set_authorizer(db, readOnlyAuthorizer, context.toOpaque())
            defer { sqlite3_set_authorizer(db, nil, nil) }
            var statement: OpaquePointer?
            var tail: UnsafePointer<CChar>?
            let status = sql.withCString { sqlite3_prepare_v2(db, $0, -1, &statement, &tail) }
            defer { sqlite3_finalize(statement) }
            guard status == SQLITE_OK, let statement else {
                if let refusal = guardState.refusal { throw SQLQueryError(message: refusal) }
                throw SQLQueryError(message: "The database rejected the query: \(String(cString: sqlite3_errmsg(db))).")
            }
            if let tail, !String(cString: tail).allSatisfy({ $0.isWhitespace || $0 == ";" }) {
                throw SQLQueryError(message: "Only a single statement is allowed.")
            }
            guard sqlite3_stmt_readonly(statement) != 0 else {
                throw SQLQueryError(message: "Only read-only statements are allowed.")
            }
            guard Int(sqlite3_bind_parameter_count(statement)) == bindings.count else {
                throw SQLQueryError(message: "The query has \(sqlite3_bind_parameter_count(statement)) parameters but \(bindings.count) values were bound.")
            }
            for (offset, value) in bindings.enumerated() {
                let index = Int32(offset + 1)
                switch value {
                case .null: sqlite3_bind_null(statement, index)
                case .integer(let v): sqlite3_bind_int64(statement, index, v)
                case .real(let v): sqlite3_bind_double(statement, index, v)
                case .text(let v): sqlite3_bind_text(statement, index, v, -1, Self.transient)
                }
            }
            let deadline = ContinuousClock.now + timeout
            let clock = DeadlineBox(deadline)
            let clockContext = Unmanaged.passRetained(clock)
            defer { clockContext.release() }
            sqlite3_progress_handler(db, 1000, deadlineHandler, clockContext.toOpaque())
            defer { sqlite3_progress_handler(db, 0, nil, nil) }
            let count = Int(sqlite3_column_count(statement))
            let columns = (0..<count).map { String(cString: sqlite3_column_name(statement, Int32($0))) }
            var rows: [[SQLValue]] = []
            var truncated = false
            while true {
                let step = sqlite3_step(statement)
                if step == SQLITE_DONE { break }
                guard step == SQLITE_ROW else {
                    if step == SQLITE_INTERRUPT {
                        throw SQLQueryError(message: "The query ran longer than \(timeout) and was stopped.")
                    }
                    throw SQLQueryError(message: "The query failed: \(String(cString: sqlite3_errmsg(db))).")
                }
                if rows.count == rowLimit {
                    truncated = true
                    break
                }
                rows.append((0..<count).map { column in
                    let i = Int32(column)
                    switch sqlite3_column_type(statement, i) {
                    case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, i))
                    case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, i))
                    case SQLITE_NULL: return .null
                    default: return .text(sqlite3_column_text(statement, i).map { String(cString: $0) } ?? "")
                    }
                })
            }
            return SQLResult(columns: columns, rows: rows, truncated: truncated)
        }
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// What the authorizer callback sees: the allowed tables and the first refusal.
private final class AuthorizerState: @unchecked Sendable {
    let allowedTables: Set<String>?
    var refusal: String?

    init(allowedTables: Set<String>?) {
        self.allowedTables = allowedTables
    }
}

private final class DeadlineBox: Sendable {
    let deadline: ContinuousClock.Instant
    init(_ deadline: ContinuousClock.Instant) { self.deadline = deadline }
}

/// Admits SELECT, reads (of allowed tables), functions and recursive CTEs; refuses everything else
/// (writes, schema changes, ATTACH, PRAGMA, transactions).
private func readOnlyAuthorizer(_ context: UnsafeMutableRawPointer?, _ action: Int32, _ first: UnsafePointer<CChar>?,
                                _ second: UnsafePointer<CChar>?, _ database: UnsafePointer<CChar>?,
                                _ trigger: UnsafePointer<CChar>?) -> Int32 {
    guard let context else { return SQLITE_DENY }
    let state = Unmanaged<AuthorizerState>.fromOpaque(context).takeUnretainedValue()
    switch action {
    case SQLITE_SELECT, SQLITE_FUNCTION, SQLITE_RECURSIVE:
        return SQLITE_OK
    case SQLITE_READ:
        guard let first else { return SQLITE_OK }
        let table = String(cString: first).lowercased()
        if table.hasPrefix("sqlite_") {
            state.refusal = state.refusal ?? "Reading the schema table \(table) is not allowed."
            return SQLITE_DENY
        }
        if let allowed = state.allowedTables, !allowed.contains(table) {
            state.refusal = state.refusal ?? "The table \(table) is not allowed in this query."
            return SQLITE_DENY
        }
        return SQLITE_OK
    default:
        state.refusal = state.refusal ?? "Only SELECT statements are allowed."
        return SQLITE_DENY
    }
}

private func deadlineHandler(_ context: UnsafeMutableRawPointer?) -> Int32 {
    guard let context else { return 0 }
    let box = Unmanaged<DeadlineBox>.fromOpaque(context).takeUnretainedValue()
    return ContinuousClock.now > box.deadline ? 1 : 0
}
