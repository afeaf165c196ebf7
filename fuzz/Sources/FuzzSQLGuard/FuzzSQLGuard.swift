// The text-to-SQL guard: `DatabaseConnector.runGuarded`, which runs SQL a model wrote. The input
// is that SQL. The database is a small copy of examples/meridian/db/meridian.sqlite (its schema,
// 20 rows per table); text-to-SQL may read every table but `employees`.
//
// Properties, for every statement the guard runs (checked with SQLite on a second, writable
// connection, without the guard's authorizer or read-only flags):
// - it is a single statement: what follows it prepares to nothing (whitespace, `;`, comments);
// - SQLite calls it read-only (`sqlite3_stmt_readonly`), and compiling it asks for nothing but
//   SELECT, reads, functions and recursive CTEs (no write, schema change, PRAGMA, ATTACH,
//   transaction);
// - it reads only allowed tables (no `employees`, no `sqlite_*` schema table);
// - the database file is unchanged afterwards, and the result respects the row limit;
// - every refusal is a `SQLQueryError`.
import ConclaveKnowledge
import Foundation
import FuzzSupport
import GRDBSQLite

private let allowedTables = ["shipments", "warehouses", "customers", "invoices", "tickets"]
private let rowLimit = 50

private let databasePath: String = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    let source = root.appendingPathComponent("examples/meridian/db/meridian.sqlite").path
    let path = Fuzz.scratch.appendingPathComponent("meridian-fuzz.sqlite").path
    var db: OpaquePointer?
    guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, nil) == SQLITE_OK, let db else {
        Fuzz.fail("cannot create \(path)")
    }
    guard sqlite3_exec(db, "ATTACH DATABASE 'file:\(source)?mode=ro' AS source", nil, nil, nil) == SQLITE_OK else {
        Fuzz.fail("cannot attach \(source): \(String(cString: sqlite3_errmsg(db)))")
    }
    var schema: [(String, String)] = []
    var statement: OpaquePointer?
    sqlite3_prepare_v2(db, "SELECT name, sql FROM source.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'", -1, &statement, nil)
    while sqlite3_step(statement) == SQLITE_ROW {
        schema.append((String(cString: sqlite3_column_text(statement, 0)), String(cString: sqlite3_column_text(statement, 1))))
    }
    sqlite3_finalize(statement)
    for (name, sql) in schema {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK,
              sqlite3_exec(db, "INSERT INTO main.\(name) SELECT * FROM source.\(name) LIMIT 20", nil, nil, nil) == SQLITE_OK else {
            Fuzz.fail("cannot copy table \(name): \(String(cString: sqlite3_errmsg(db)))")
        }
    }
    sqlite3_exec(db, "DETACH DATABASE source", nil, nil, nil)
    sqlite3_close(db)
    return path
}()

private let connector: DatabaseConnector = {
    let yaml = """
        database: {driver: sqlite, path: "\(databasePath)", row_limit: \(rowLimit), timeout_seconds: 1}
        templates: []
        text_to_sql: {enabled: true, tables: [\(allowedTables.joined(separator: ", "))]}
        """
    do {
        return try DatabaseConnector(catalog: TemplateCatalog.load(yaml: yaml, origin: "fuzz"))
    } catch {
        Fuzz.fail("cannot open the fuzz catalog: \(error)")
    }
}()

/// The writable connection that checks what the guard ran.
private let checker: OpaquePointer = {
    var db: OpaquePointer?
    guard sqlite3_open_v2(databasePath, &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let db else {
        Fuzz.fail("cannot open \(databasePath) for checking")
    }
    return db
}()

private let pristine: Data = {
    _ = connector
    return FileManager.default.contents(atPath: databasePath) ?? Data()
}()

/// What compiling a statement asked the authorizer for (the fuzz target is single-threaded).
private var requested: [(action: Int32, table: String?)] = []

private func record(_: UnsafeMutableRawPointer?, _ action: Int32, _ first: UnsafePointer<CChar>?, _: UnsafePointer<CChar>?,
                    _: UnsafePointer<CChar>?, _: UnsafePointer<CChar>?) -> Int32 {
    requested.append((action, action == SQLITE_READ ? first.map { String(cString: $0) } : nil))
    return SQLITE_OK
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let sql = Fuzz.text(start, count)
    _ = pristine
    let result: SQLResult
    do {
        result = try connector.runGuarded(sql)
    } catch is SQLQueryError {
        return 0
    } catch {
        Fuzz.fail("refused with \(type(of: error)), not an SQLQueryError: \(error)")
    }
    Fuzz.check(result.rows.count <= rowLimit, "\(result.rows.count) rows, limit \(rowLimit)")
    Fuzz.check(FileManager.default.contents(atPath: databasePath) == pristine, "the database file changed after \(sql.debugDescription)")

    let trimmed = sql.trimmingCharacters(in: .whitespacesAndNewlines)
    requested = []
    sqlite3_set_authorizer(checker, record, nil)
    defer { sqlite3_set_authorizer(checker, nil, nil) }
    Array(trimmed.utf8CString).withUnsafeBufferPointer { text in
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let status = sqlite3_prepare_v2(checker, text.baseAddress, -1, &statement, &tail)
        defer { sqlite3_finalize(statement) }
        guard status == SQLITE_OK, let statement else {
            Fuzz.fail("the guard ran \(trimmed.debugDescription), which SQLite does not compile: \(String(cString: sqlite3_errmsg(checker)))")
        }
        Fuzz.check(sqlite3_stmt_readonly(statement) != 0, "the guard ran a statement that writes: \(trimmed.debugDescription)")
        let reads: Set<Int32> = [SQLITE_SELECT, SQLITE_READ, SQLITE_FUNCTION, SQLITE_RECURSIVE]
        for request in requested {
            Fuzz.check(reads.contains(request.action),
                       "the guard ran \(trimmed.debugDescription), which asks for authorizer action \(request.action)")
            if let table = request.table?.lowercased() {
                Fuzz.check(allowedTables.contains(table), "the guard ran \(trimmed.debugDescription), which reads table \(table)")
            }
        }
        // What follows the statement must compile to nothing.
        var rest = tail
        while let next = rest, next.pointee != 0 {
            var more: OpaquePointer?
            var after: UnsafePointer<CChar>?
            let status = sqlite3_prepare_v2(checker, next, -1, &more, &after)
            sqlite3_finalize(more)
            Fuzz.check(status != SQLITE_OK || more == nil, "the guard ran \(trimmed.debugDescription), which holds a second statement")
            guard status == SQLITE_OK, after != next else { break }
            rest = after
        }
    }
    return 0
}
