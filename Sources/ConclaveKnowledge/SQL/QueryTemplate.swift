import ConclaveCore
import Foundation
import Yams

/// A governed, parameterised SQL query: the only SQL the platform runs against a business
/// database by default. The model (or the slot filler) picks a template and fills its typed
/// parameters; it never writes SQL.
///
/// The SQL uses Metabase-style markers: `{{name}}` binds a parameter (a list expands to one
/// placeholder per element, a date range binds `{{name.from}}` and `{{name.to}}`, a keyword is
/// replaced by one of its declared choices), and `[[ … ]]` encloses an optional clause that is
/// kept only when every parameter inside it has a value.
public struct QueryTemplate: Sendable, Hashable, Decodable {
    /// What a question must ask for a template to serve it.
    public enum Intent: String, Sendable, Hashable, Decodable, CaseIterable {
        /// "how many …", "number of …".
        case count
        /// "total", "sum", "combined".
        case total
        /// "average", "mean".
        case average
        /// "most", "highest", "largest", "top", "fewest", "lowest".
        case rank
        /// "list", "which", "who", "name".
        case list
        /// "what is", "give me", "tell me": a question about one record's value.
        case lookup
    }

    /// Parameter types.
    public enum ParameterType: String, Sendable, Hashable, Decodable {
        case string, integer, number, date, list, dateRange = "date_range", keyword
    }

    /// A typed parameter.
    public struct Parameter: Sendable, Hashable, Decodable {
        /// Name used in `{{name}}`.
        public var name: String
        /// Value type.
        public var type: ParameterType
        /// How the filter reads in a result sentence ("service level"); the name when absent.
        public var label: String?
        /// `table.column` whose distinct values are the allowed values (and the slot filler's lexicon).
        public var valuesFrom: String?
        /// Allowed values (besides `values_from`).
        public var values: [String]?
        /// Other phrasings of values: phrase → value.
        public var synonyms: [String: String]?
        /// Words that, just before a value in the question, pick this parameter over another with the same values.
        public var cues: [String]?
        /// Keyword choices: SQL keyword → the question words that select it (first is the default).
        public var choices: [String: [String]]?
        /// The default keyword choice, or default value.
        public var `default`: String?
        /// Inclusive bounds for integer and number parameters.
        public var minimum: Double?
        public var maximum: Double?
        /// True when the query cannot run without it.
        public var required: Bool?

        enum CodingKeys: String, CodingKey {
            case name, type, label, values, synonyms, cues, choices, `default`, minimum, maximum, required
            case valuesFrom = "values_from"
        }

        /// The label used in result sentences.
        public var displayLabel: String { label ?? name.replacingOccurrences(of: "_", with: " ") }
    }

    public var name: String
    public var description: String
    /// Words that name what the template is about; one must occur in the question.
    public var subject: [String]
    /// Words of which one must occur as well (for templates over a specific measure, such as salary).
    public var requires: [String]?
    /// Words naming the values it computes; each one in the question raises the template's score.
    public var measures: [String]?
    /// The kinds of question it answers.
    public var intents: [Intent]
    /// Tables it reads; the first is cited as `db:<table>`. The principal must be allowed to read each.
    public var tables: [String]
    /// Columns (`table.column`) whose values, aggregates or rankings it returns; a principal denied
    /// any of them gets a refusal instead of the result.
    public var sensitiveColumns: [String]?
    /// The department that owns the data (named in refusals).
    public var owner: String?
    public var parameters: [Parameter]
    public var sql: String
    /// Sentence introducing the result; `{filters}` becomes the filters applied.
    public var result: String
    /// Sentence for each row; `{column}` becomes the row's value of that column.
    public var row: String
    /// Result columns whose values other sources are keyed by (a customer's tier, an employee's
    /// grade). A template with keys is a *lookup*: it runs beside the best template whenever the
    /// question names one of its records (a value of a `values_from` parameter), whatever its
    /// subject and intent, and the values of these columns join the document search, so that a
    /// question about a customer finds the terms for that customer's tier (a second hop).
    public var keys: [String]?

    enum CodingKeys: String, CodingKey {
        case name, description, subject, requires, measures, intents, tables, owner, parameters, sql, result, row, keys
        case sensitiveColumns = "sensitive_columns"
    }

    /// True for a lookup template (one with `keys`).
    public var isLookup: Bool { !(keys ?? []).isEmpty }

    /// The parameter called `name`.
    public func parameter(_ name: String) -> Parameter? { parameters.first { $0.name == name } }
}

/// A parameter value after validation.
public enum TemplateValue: Sendable, Hashable {
    case text(String)
    case integer(Int64)
    case number(Double)
    case list([String])
    case range(from: String, to: String)
    case keyword(String)
}

/// Errors in template files and in parameter values. Messages name the template and parameter.
public struct TemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A template file: the database it runs against and its templates.
public struct TemplateCatalog: Sendable, Decodable {
    /// The database connection.
    public struct DatabaseSettings: Sendable, Hashable, Decodable {
        /// `sqlite` or `postgres`.
        public var driver: String
        /// SQLite: path of the database file, relative to the template file's directory or the working directory.
        public var path: String
        /// PostgreSQL: a `postgres://` URL (libpq's parameters, e.g. `sslmode`, `sslrootcert`).
        /// Keep passwords out of it: libpq reads `PGPASSWORD` or `~/.pgpass`, or use `urlEnvironment`.
        public var url: String?
        /// PostgreSQL: the environment variable that holds the URL (read when `url` is not set).
        public var urlEnvironment: String?
        /// Most rows one query returns. Default 200.
        public var rowLimit: Int?
        /// Longest one query may run. Default 2 s.
        public var timeoutSeconds: Double?

        public init(driver: String, path: String = "", url: String? = nil, urlEnvironment: String? = nil,
                    rowLimit: Int? = nil, timeoutSeconds: Double? = nil) {
            self.driver = driver
            self.path = path
            self.url = url
            self.urlEnvironment = urlEnvironment
            self.rowLimit = rowLimit
            self.timeoutSeconds = timeoutSeconds
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(driver: try c.decode(String.self, forKey: .driver), path: try c.decodeIfPresent(String.self, forKey: .path) ?? "",
                      url: try c.decodeIfPresent(String.self, forKey: .url),
                      urlEnvironment: try c.decodeIfPresent(String.self, forKey: .urlEnvironment),
                      rowLimit: try c.decodeIfPresent(Int.self, forKey: .rowLimit),
                      timeoutSeconds: try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds))
        }

        /// The PostgreSQL URL: `url`, else the value of `urlEnvironment`; nil when neither gives one.
        public func connectionURL(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
            let value = url ?? urlEnvironment.flatMap { environment[$0] }
            guard let value, value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") else { return nil }
            return value
        }

        enum CodingKeys: String, CodingKey {
            case driver, path, url
            case urlEnvironment = "url_env"
            case rowLimit = "row_limit"
            case timeoutSeconds = "timeout_seconds"
        }
    }

    /// The opt-in text-to-SQL mode: the model may write one SELECT over these tables.
    public struct TextToSQL: Sendable, Hashable, Decodable {
        public var enabled: Bool
        public var tables: [String]
    }

    public var database: DatabaseSettings
    public var templates: [QueryTemplate]
    public var textToSQL: TextToSQL?

    enum CodingKeys: String, CodingKey {
        case database, templates
        case textToSQL = "text_to_sql"
    }

    /// Parses and checks a catalog; errors name the file, the template and what is wrong.
    public static func load(yaml: String, origin: String) throws -> TemplateCatalog {
        let catalog: TemplateCatalog
        do {
            catalog = try YAMLDecoder().decode(TemplateCatalog.self, from: yaml)
        } catch let error as DecodingError {
            throw TemplateError("\(origin): \(error.readableDescription)")
        } catch {
            throw TemplateError("\(origin): \(error)")
        }
        switch catalog.database.driver {
        case "sqlite":
            guard !catalog.database.path.isEmpty else { throw TemplateError("\(origin): database.path is required for driver sqlite") }
        case "postgres", "postgresql":
            guard catalog.database.url != nil || catalog.database.urlEnvironment != nil else {
                throw TemplateError("\(origin): database.url or database.url_env is required for driver postgres")
            }
        default:
            throw TemplateError("\(origin): database.driver \"\(catalog.database.driver)\" is not supported (expected sqlite or postgres)")
        }
        var names = Set<String>()
        for template in catalog.templates {
            guard names.insert(template.name).inserted else { throw TemplateError("\(origin): template \(template.name) is defined twice") }
            do {
                try template.check()
            } catch let error as TemplateError {
                throw TemplateError("\(origin): \(error.message)")
            }
        }
        return catalog
    }

    /// Loads the catalog at `path`, resolving the database path against the file's directory when it is relative and exists there.
    public static func load(path: String) throws -> TemplateCatalog {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TemplateError("cannot read the SQL template file \(path)")
        }
        var catalog = try load(yaml: text, origin: path)
        if catalog.database.driver == "sqlite" { catalog.database.path = resolve(catalog.database.path, from: path) }
        return catalog
    }

    /// A relative `path` from a file at `file`: as given when it exists from the working
    /// directory, else from the file's directory or the nearest of its parents where it exists.
    static func resolve(_ path: String, from file: String) -> String {
        guard !path.hasPrefix("/"), !FileManager.default.fileExists(atPath: path) else { return path }
        var directory = URL(fileURLWithPath: file).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(path).path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return path
    }
}

extension QueryTemplate {
    /// Checks the template's shape: parameters named in the SQL exist, optional clauses hold a
    /// parameter, required parameters are not optional, keyword parameters have choices.
    func check() throws {
        let where_ = "template \(name)"
        guard !subject.isEmpty else { throw TemplateError("\(where_): subject must name at least one word") }
        guard !intents.isEmpty else { throw TemplateError("\(where_): intents must name at least one intent") }
        guard !tables.isEmpty, tables.allSatisfy(SQLText.isPlainIdentifier) else {
            throw TemplateError("\(where_): tables must list plain table names")
        }
        var seen = Set<String>()
        for p in parameters {
            guard seen.insert(p.name).inserted, SQLText.isPlainIdentifier(p.name) else {
                throw TemplateError("\(where_): parameter name \(p.name) is repeated or not a plain identifier")
            }
            if p.type == .keyword {
                guard let choices = p.choices, !choices.isEmpty, choices.keys.allSatisfy(Self.isSQLKeyword) else {
                    throw TemplateError("\(where_): keyword parameter \(p.name) needs choices whose keys are SQL keywords (ASC, DESC, …)")
                }
                if let d = p.default, choices[d] == nil {
                    throw TemplateError("\(where_): default \(d) of \(p.name) is not one of its choices")
                }
            }
            if let from = p.valuesFrom {
                let parts = from.split(separator: ".").map(String.init)
                guard parts.count == 2, parts.allSatisfy(SQLText.isPlainIdentifier) else {
                    throw TemplateError("\(where_): values_from of \(p.name) must be table.column")
                }
            }
        }
        let segments = try TemplateSQL.parse(sql, template: name)
        for segment in segments {
            for reference in segment.references {
                guard let p = parameter(reference.name) else {
                    throw TemplateError("\(where_): the SQL uses {{\(reference.name)}} but no such parameter is declared")
                }
                if p.type == .dateRange, reference.part == nil {
                    throw TemplateError("\(where_): date range \(p.name) is bound as {{\(p.name).from}} and {{\(p.name).to}}")
                }
                if segment.optional == false, p.required != true, p.default == nil, p.type != .keyword {
                    throw TemplateError("\(where_): parameter \(p.name) is used outside [[ ]] so it must be required or have a default")
                }
            }
        }
    }

    static func isSQLKeyword(_ word: String) -> Bool {
        ["ASC", "DESC"].contains(word)
    }

    /// Validates raw values (from the slot filler or the model's JSON) against the parameters:
    /// types, bounds, allowed values. `lexicon` holds each `values_from` column's values.
    public func validate(_ raw: [String: String], lexicon: [String: [String]] = [:]) throws -> [String: TemplateValue] {
        var values: [String: TemplateValue] = [:]
        for p in parameters {
            let where_ = "parameter \(p.name) of template \(name)"
            guard let text = raw[p.name] ?? p.default else {
                if p.required == true { throw TemplateError("\(where_) is required") }
                continue
            }
            let allowed = (p.values ?? []) + (p.valuesFrom.flatMap { lexicon[$0] } ?? [])
            func checkAllowed(_ value: String) throws -> String {
                guard !allowed.isEmpty else { return value }
                if let match = allowed.first(where: { $0.caseInsensitiveCompare(value) == .orderedSame }) { return match }
                throw TemplateError("\(where_) must be one of the known values; \"\(value.prefix(60))\" is not")
            }
            func checkBounds(_ number: Double) throws {
                if let min = p.minimum, number < min { throw TemplateError("\(where_) must be at least \(Self.plain(min)), got \(text)") }
                if let max = p.maximum, number > max { throw TemplateError("\(where_) must be at most \(Self.plain(max)), got \(text)") }
            }
            switch p.type {
            case .string:
                values[p.name] = .text(try checkAllowed(text))
            case .integer:
                guard let number = Int64(text.trimmingCharacters(in: .whitespaces)) else {
                    throw TemplateError("\(where_) must be an integer, got \"\(text.prefix(60))\"")
                }
                try checkBounds(Double(number))
                values[p.name] = .integer(number)
            case .number:
                guard let number = Double(text.trimmingCharacters(in: .whitespaces)), number.isFinite else {
                    throw TemplateError("\(where_) must be a number, got \"\(text.prefix(60))\"")
                }
                try checkBounds(number)
                values[p.name] = .number(number)
            case .date:
                guard Self.isISODate(text) else { throw TemplateError("\(where_) must be a date YYYY-MM-DD, got \"\(text.prefix(60))\"") }
                values[p.name] = .text(text)
            case .list:
                let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                guard !items.isEmpty, items.count <= 50 else { throw TemplateError("\(where_) must list 1 to 50 values") }
                values[p.name] = .list(try items.map(checkAllowed))
            case .dateRange:
                let parts = text.split(separator: "/").map(String.init)
                guard parts.count == 2, Self.isISODate(parts[0]), Self.isISODate(parts[1]), parts[0] <= parts[1] else {
                    throw TemplateError("\(where_) must be a date range YYYY-MM-DD/YYYY-MM-DD, got \"\(text.prefix(60))\"")
                }
                values[p.name] = .range(from: parts[0], to: parts[1])
            case .keyword:
                guard let choices = p.choices, choices[text] != nil else {
                    throw TemplateError("\(where_) must be one of \(p.choices?.keys.sorted().joined(separator: ", ") ?? "")")
                }
                values[p.name] = .keyword(text)
            }
        }
        for key in raw.keys where parameter(key) == nil {
            throw TemplateError("template \(name) has no parameter \(key)")
        }
        return values
    }

    static func plain(_ number: Double) -> String {
        number == number.rounded() ? String(Int64(number)) : String(number)
    }

    static func isISODate(_ text: String) -> Bool {
        let b = Array(text.utf8)
        guard b.count == 10, b[4] == 0x2D, b[7] == 0x2D else { return false }
        for i in [0, 1, 2, 3, 5, 6, 8, 9] where !(0x30...0x39).contains(b[i]) { return false }
        let month = Int(text.dropFirst(5).prefix(2)) ?? 0, day = Int(text.suffix(2)) ?? 0
        return (1...12).contains(month) && (1...31).contains(day)
    }

    /// The SQL with `?` placeholders and the values to bind, for validated `values`.
    public func compile(_ values: [String: TemplateValue]) throws -> (sql: String, bindings: [SQLValue]) {
        var sql = ""
        var bindings: [SQLValue] = []
        for segment in try TemplateSQL.parse(self.sql, template: name) {
            if segment.optional && !segment.references.allSatisfy({ values[$0.name] != nil }) { continue }
            for piece in segment.pieces {
                switch piece {
                case .text(let text): sql += text
                case .reference(let reference):
                    guard let value = values[reference.name] else {
                        throw TemplateError("parameter \(reference.name) of template \(name) is required")
                    }
                    switch value {
                    case .text(let v): sql += "?"; bindings.append(.text(v))
                    case .integer(let v): sql += "?"; bindings.append(.integer(v))
                    case .number(let v): sql += "?"; bindings.append(.real(v))
                    case .list(let items):
                        sql += Array(repeating: "?", count: items.count).joined(separator: ", ")
                        bindings += items.map { .text($0) }
                    case .range(let from, let to):
                        sql += "?"
                        bindings.append(.text(reference.part == "to" ? to : from))
                    case .keyword(let keyword):
                        guard Self.isSQLKeyword(keyword) else { throw TemplateError("\(keyword) is not an allowed keyword") }
                        sql += keyword
                    }
                }
            }
        }
        return (sql, bindings)
    }
}

/// The parsed SQL of a template: text and `{{references}}`, in plain and `[[optional]]` segments.
enum TemplateSQL {
    struct Reference: Hashable {
        var name: String
        var part: String?
    }

    enum Piece: Hashable {
        case text(String)
        case reference(Reference)
    }

    struct Segment {
        var optional: Bool
        var pieces: [Piece]
        var references: [Reference] {
            pieces.compactMap { if case .reference(let r) = $0 { return r } else { return nil } }
        }
    }

    static func parse(_ sql: String, template: String) throws -> [Segment] {
        var segments: [Segment] = []
        var rest = Substring(sql)
        while !rest.isEmpty {
            if let open = rest.range(of: "[[") {
                segments.append(Segment(optional: false, pieces: try pieces(rest[..<open.lowerBound], template: template)))
                guard let close = rest[open.upperBound...].range(of: "]]") else {
                    throw TemplateError("template \(template): [[ without ]] in its SQL")
                }
                let inner = rest[open.upperBound..<close.lowerBound]
                guard !inner.contains("[[") else { throw TemplateError("template \(template): optional clauses cannot nest") }
                let segment = Segment(optional: true, pieces: try pieces(inner, template: template))
                guard !segment.references.isEmpty else {
                    throw TemplateError("template \(template): an optional clause [[ ]] must use a parameter")
                }
                segments.append(segment)
                rest = rest[close.upperBound...]
            } else {
                if rest.contains("]]") { throw TemplateError("template \(template): ]] without [[ in its SQL") }
                segments.append(Segment(optional: false, pieces: try pieces(rest, template: template)))
                rest = ""
            }
        }
        return segments
    }

    private static func pieces(_ text: Substring, template: String) throws -> [Piece] {
        var out: [Piece] = []
        var rest = text
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { out.append(.text(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw TemplateError("template \(template): {{ without }} in its SQL")
            }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
            guard let first = parts.first, SQLText.isPlainIdentifier(first), parts.count == 1 || ["from", "to"].contains(parts[1]) else {
                throw TemplateError("template \(template): {{\(name)}} is not a parameter reference")
            }
            out.append(.reference(Reference(name: first, part: parts.count == 2 ? parts[1] : nil)))
            rest = rest[close.upperBound...]
        }
        if rest.contains("}}") { throw TemplateError("template \(template): }} without {{ in its SQL") }
        if !rest.isEmpty { out.append(.text(String(rest))) }
        return out
    }
}
