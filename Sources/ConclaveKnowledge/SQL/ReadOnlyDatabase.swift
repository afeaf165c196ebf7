import ConclaveCore
import Foundation

/// A value bound to, or read from, a SQL statement.
public enum SQLValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    public var description: String {
        switch self {
        case .null: return "NULL"
        case .integer(let v): return String(v)
        case .real(let v): return String(v)
        case .text(let v): return v
        }
    }
}

/// The rows a query returned.
public struct SQLResult: Sendable, Hashable {
    /// Column names, in select order.
    public var columns: [String]
    /// Rows, each with one value per column.
    public var rows: [[SQLValue]]
    /// True when the row limit cut the result short.
    public var truncated: Bool
}

/// A statement the guard refuses or the database rejects, in words fit for the caller.
public struct SQLQueryError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }

    public init(message: String) {
        self.message = message
    }
}

/// A read-only connection to a business database, as the SQL connector uses it: one statement at
/// a time, nothing written, only allow-listed tables read when a list is given, bounded in rows
/// and time. ``SQLiteReadOnlyDatabase`` and ``PostgresReadOnlyDatabase`` implement it.
public protocol ReadOnlyDatabase: Sendable {
    /// Where the data lives, for messages (a file path, or a URL without its password).
    var location: String { get }
    /// Most rows a query returns; past it the result is marked truncated.
    var rowLimit: Int { get }
    /// Longest a query may run.
    var timeout: Duration { get }
    /// Runs one read-only statement with positional `?` bindings. With `allowedTables`, reading
    /// any other table is refused.
    func query(_ sql: String, bindings: [SQLValue], allowedTables: Set<String>?) throws -> SQLResult
    /// Refuses a free (text-to-SQL) query the driver's guards cannot vouch for, before it runs.
    func checkFreeQuery(_ sql: String) throws
}

extension ReadOnlyDatabase {
    public func query(_ sql: String) throws -> SQLResult {
        try query(sql, bindings: [], allowedTables: nil)
    }

    public func query(_ sql: String, bindings: [SQLValue]) throws -> SQLResult {
        try query(sql, bindings: bindings, allowedTables: nil)
    }

    public func query(_ sql: String, allowedTables: Set<String>) throws -> SQLResult {
        try query(sql, bindings: [], allowedTables: allowedTables)
    }

    /// Nothing beyond ``query(_:bindings:allowedTables:)``'s own guards.
    public func checkFreeQuery(_ sql: String) throws {}

    /// Distinct non-null text values of `table.column` (the slot filler's lexicon), up to `limit`,
    /// sorted, so that every driver gives the slot filler the same order.
    public func distinctValues(table: String, column: String, limit: Int = 5000) throws -> [String] {
        guard SQLText.isPlainIdentifier(table), SQLText.isPlainIdentifier(column) else {
            throw SQLQueryError(message: "\(table).\(column) is not a plain table and column name.")
        }
        let result = try query("SELECT DISTINCT CAST(\(column) AS TEXT) FROM \(table) WHERE \(column) IS NOT NULL ORDER BY 1 LIMIT \(limit)")
        return result.rows.compactMap { row in
            if case .text(let value) = row.first { return value }
            return row.first.map(\.description)
        }
    }
}
