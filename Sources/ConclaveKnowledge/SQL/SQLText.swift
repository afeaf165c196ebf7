/// Lexical work on SQL text that both database drivers need: numbering `?` placeholders for
/// PostgreSQL, and finding the functions a free (text-to-SQL) query calls. A scanner, not a
/// parser: it knows string literals, quoted identifiers and comments, which is what both need.
public enum SQLText {
    /// A plain SQL identifier (letters, digits, underscore; not starting with a digit).
    public static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(0x30...0x39).contains(first) else { return false }
        return name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    }

    /// `sql` with each `?` outside literals, quoted identifiers and comments replaced by `$1`,
    /// `$2`, …, and how many there were.
    public static func numberingPlaceholders(_ sql: String) -> (sql: String, count: Int) {
        var out = ""
        var count = 0
        for token in tokens(sql) {
            if token.kind == .symbol, token.text == "?" {
                count += 1
                out += "$\(count)"
            } else {
                out += token.text
            }
        }
        return (out, count)
    }

    /// The names called as functions in `sql`: an identifier (plain or quoted, schema prefix
    /// dropped) followed by `(`, except SQL keywords that take parentheses. Lower-cased, in order.
    public static func functionCalls(in sql: String) -> [String] {
        let meaningful = tokens(sql).filter { $0.kind != .space && $0.kind != .comment }
        var calls: [String] = []
        for (index, token) in meaningful.enumerated() where index + 1 < meaningful.count {
            guard meaningful[index + 1].kind == .symbol, meaningful[index + 1].text == "(" else { continue }
            switch token.kind {
            case .word where !keywordsBeforeParenthesis.contains(token.text.lowercased()):
                calls.append(token.text.lowercased())
            case .quotedIdentifier:
                calls.append(String(token.text.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"").lowercased())
            default:
                continue
            }
        }
        return calls
    }

    /// Why the scanner cannot vouch for `sql` as a free query, or nil: a dollar sign (dollar-quoted
    /// strings, `$n` placeholders) or a prefixed literal such as `E'…'`, whose backslash escapes
    /// this scanner does not follow.
    public static func unscannable(_ sql: String) -> String? {
        let all = tokens(sql)
        if all.contains(where: { $0.kind == .symbol && $0.text == "$" }) {
            return "Dollar signs (dollar quoting, placeholders) are not allowed in a free query."
        }
        for (token, next) in zip(all, all.dropFirst()) where token.kind == .word && next.kind == .literal {
            return "Prefixed string literals (\(token.text)'…') are not allowed in a free query."
        }
        return nil
    }

    /// Keywords that may stand before `(` without being a function call.
    static let keywordsBeforeParenthesis: Set<String> = [
        "select", "in", "exists", "any", "some", "all", "values", "over", "filter", "as", "on", "using", "from", "join",
        "where", "and", "or", "not", "by", "then", "else", "when", "case", "between", "is", "with", "distinct", "having",
        "limit", "offset", "union", "except", "intersect", "lateral", "interval", "within", "group", "partition", "order",
        "row", "array", "like", "ilike", "escape", "asc", "desc", "rows", "range", "preceding", "following", "recursive",
        "materialized", "cast", "extract", "substring", "position", "trim", "overlay", "coalesce", "nullif", "greatest",
        "least", "date", "time", "timestamp", "numeric", "decimal", "varchar", "char", "character", "integer", "int",
        "bigint", "smallint", "real", "float", "double", "precision", "text", "boolean",
    ]

    struct Token {
        enum Kind { case word, quotedIdentifier, literal, comment, space, number, symbol }
        var kind: Kind
        var text: String
    }

    /// Splits `sql` into tokens; their texts concatenated give back `sql`.
    static func tokens(_ sql: String) -> [Token] {
        let characters = Array(sql.unicodeScalars)
        var tokens: [Token] = []
        var index = 0
        func take(_ kind: Token.Kind, from start: Int) {
            var text = ""
            text.unicodeScalars.append(contentsOf: characters[start..<index])
            tokens.append(Token(kind: kind, text: text))
        }
        func isWordStart(_ c: Unicode.Scalar) -> Bool { c == "_" || c.properties.isAlphabetic }
        func isWordPart(_ c: Unicode.Scalar) -> Bool { isWordStart(c) || ("0"..."9").contains(c) }
        while index < characters.count {
            let start = index
            let c = characters[index]
            let next: Unicode.Scalar? = index + 1 < characters.count ? characters[index + 1] : nil
            if c == "'" || c == "\"" {
                // A literal or quoted identifier; a doubled quote is an escaped one. Unterminated runs to the end.
                index += 1
                while index < characters.count {
                    if characters[index] == c {
                        if index + 1 < characters.count, characters[index + 1] == c { index += 2; continue }
                        index += 1
                        break
                    }
                    index += 1
                }
                take(c == "'" ? .literal : .quotedIdentifier, from: start)
            } else if c == "-", next == "-" {
                while index < characters.count, characters[index] != "\n" { index += 1 }
                take(.comment, from: start)
            } else if c == "/", next == "*" {
                index += 2
                while index < characters.count, !(characters[index] == "*" && index + 1 < characters.count && characters[index + 1] == "/") {
                    index += 1
                }
                index = min(characters.count, index + 2)
                take(.comment, from: start)
            } else if c.properties.isWhitespace {
                while index < characters.count, characters[index].properties.isWhitespace { index += 1 }
                take(.space, from: start)
            } else if isWordStart(c) {
                while index < characters.count, isWordPart(characters[index]) { index += 1 }
                take(.word, from: start)
            } else if ("0"..."9").contains(c) {
                while index < characters.count, isWordPart(characters[index]) || characters[index] == "." { index += 1 }
                take(.number, from: start)
            } else {
                index += 1
                take(.symbol, from: start)
            }
        }
        return tokens
    }
}
