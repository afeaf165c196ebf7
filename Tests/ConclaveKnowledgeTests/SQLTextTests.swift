import ConclaveKnowledge
import Testing

/// The SQL scanner both drivers lean on: placeholders numbered for PostgreSQL outside literals,
/// quoted identifiers and comments; the functions a free query calls, however they are spelled.
@Suite struct SQLTextTests {
    @Test func placeholdersAreNumberedOnlyOutsideLiteralsAndComments() {
        let (sql, count) = SQLText.numberingPlaceholders(
            "SELECT '?', \"a?\" FROM t -- why?\nWHERE x = ? AND y IN (?, ?) /* ? */ AND z = 'it''s ?' LIMIT ?")
        #expect(count == 4)
        #expect(sql == "SELECT '?', \"a?\" FROM t -- why?\nWHERE x = $1 AND y IN ($2, $3) /* ? */ AND z = 'it''s ?' LIMIT $4")
        #expect(SQLText.numberingPlaceholders("SELECT 1").count == 0)
    }

    @Test func functionCallsAreFoundHoweverTheyAreWritten() {
        #expect(SQLText.functionCalls(in: "SELECT count(*), ROUND(avg(x), 1) FROM t WHERE y IN (1, 2) AND EXISTS (SELECT 1)")
                == ["count", "round", "avg"])
        #expect(SQLText.functionCalls(in: "SELECT pg_catalog.pg_sleep (1)") == ["pg_sleep"])
        #expect(SQLText.functionCalls(in: "SELECT \"Query_To_Xml\"('x')") == ["query_to_xml"])
        #expect(SQLText.functionCalls(in: "SELECT set_config/* hidden */('a', 'b', false)") == ["set_config"])
        // Inside a literal or a comment it is text, not a call.
        #expect(SQLText.functionCalls(in: "SELECT 'pg_sleep(1)' -- pg_sleep(1)\nFROM t") == [])
        #expect(SQLText.functionCalls(in: "SELECT CAST(x AS numeric(12, 2)) FROM t") == [])
    }

    @Test func whatTheScannerCannotFollowIsNamed() {
        #expect(SQLText.unscannable("SELECT $$x$$")?.contains("Dollar") == true)
        #expect(SQLText.unscannable("SELECT x FROM t WHERE y = $1")?.contains("Dollar") == true)
        #expect(SQLText.unscannable("SELECT E'\\'' || f()")?.contains("E'") == true)
        #expect(SQLText.unscannable("SELECT 'plain', \"quoted\" FROM t WHERE d = DATE '2025-01-01'") == nil)
    }

    @Test func plainIdentifiers() {
        #expect(SQLText.isPlainIdentifier("shipments") && SQLText.isPlainIdentifier("_x1"))
        #expect(!SQLText.isPlainIdentifier("1x") && !SQLText.isPlainIdentifier("a.b") && !SQLText.isPlainIdentifier(""))
    }
}
