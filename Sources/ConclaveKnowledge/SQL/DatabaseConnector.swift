import ConclaveCore
import Foundation
import Logging

/// Answers questions from a business database through governed query templates.
///
/// For a question it picks the template whose subject, intent and measures the question names,
/// fills its parameters from the question (values found in the database's own columns, periods,
/// counts, keyword choices), checks the principal's access to the template's tables and sensitive
/// columns, runs it read-only and returns the rows as evidence cited `db:<table>`. A question no
/// template serves with confidence gets no evidence (documents answer it instead).
public final class DatabaseConnector: Sendable {
    /// The catalog in use.
    public let catalog: TemplateCatalog
    private let database: any ReadOnlyDatabase
    /// Each `values_from` column's distinct values.
    let lexicon: [String: [String]]
    /// Normalised phrases of each parameter's values (value phrases and synonyms), longest first.
    private let phrases: [String: [String: [(phrase: [String], value: String)]]]
    private let logger: Logger
    /// The JSON schema a model's template choice must follow (`knowledge.sql_template_choice: model`).
    public let choiceSchema: String
    /// The templates as a model's prompt describes them.
    public let choiceCatalog: String

    /// A template chosen for a question, with the values filled from it.
    public struct Match: Sendable {
        public var template: QueryTemplate
        public var values: [String: String]
        public var score: Double
    }

    /// Opens the catalog's database and reads the lexicon of every `values_from` column.
    public init(catalog: TemplateCatalog, logger: Logger = Logger(label: "conclave.knowledge.sql")) throws {
        self.catalog = catalog
        self.logger = logger
        database = try Self.open(catalog.database)
        var lexicon: [String: [String]] = [:]
        for template in catalog.templates {
            for p in template.parameters {
                guard let from = p.valuesFrom, lexicon[from] == nil else { continue }
                let parts = from.split(separator: ".").map(String.init)
                do {
                    lexicon[from] = try database.distinctValues(table: parts[0], column: parts[1])
                } catch {
                    throw TemplateError("template \(template.name): values_from \(from) cannot be read: \(error)")
                }
            }
        }
        self.lexicon = lexicon
        var phrases: [String: [String: [(phrase: [String], value: String)]]] = [:]
        for template in catalog.templates {
            var byParameter: [String: [(phrase: [String], value: String)]] = [:]
            for p in template.parameters where p.type == .string || p.type == .list {
                var entries: [(phrase: [String], value: String)] = []
                for value in (p.values ?? []) + (p.valuesFrom.flatMap { lexicon[$0] } ?? []) {
                    entries.append((QuestionText.phrase(value), value))
                    let short = Self.withoutLegalForm(value)
                    if short != value { entries.append((QuestionText.phrase(short), value)) }
                }
                for (phrase, value) in p.synonyms ?? [:] { entries.append((QuestionText.phrase(phrase), value)) }
                byParameter[p.name] = entries.filter { !$0.phrase.isEmpty }.sorted { $0.phrase.count > $1.phrase.count }
            }
            phrases[template.name] = byParameter
        }
        self.phrases = phrases
        choiceSchema = Self.choiceSchema(catalog, lexicon: lexicon)
        choiceCatalog = Self.choiceCatalog(catalog, lexicon: lexicon)
        // Every template must compile and prepare against the database with its defaults.
        for template in catalog.templates {
            do {
                let (sql, bindings) = try template.compile(try template.validate(Self.sampleValues(template, lexicon: lexicon), lexicon: lexicon))
                _ = try database.query("EXPLAIN " + sql, bindings: bindings)
            } catch {
                throw TemplateError("template \(template.name) does not run against \(database.location): \(error)")
            }
        }
    }

    /// The catalog's database, read-only: a SQLite file, or a PostgreSQL server through libpq.
    static func open(_ settings: TemplateCatalog.DatabaseSettings) throws -> any ReadOnlyDatabase {
        let rowLimit = settings.rowLimit ?? 200
        let timeout = Duration.milliseconds(Int64((settings.timeoutSeconds ?? 2) * 1000))
        switch settings.driver {
        case "postgres", "postgresql":
            guard let url = settings.connectionURL() else {
                throw TemplateError("database.url (or the variable named by database.url_env) must give a postgres:// URL")
            }
            do {
                return try PostgresReadOnlyDatabase(url: url, rowLimit: rowLimit, timeout: timeout)
            } catch let error as SQLQueryError {
                throw TemplateError(error.message)
            }
        default:
            return try SQLiteReadOnlyDatabase(path: settings.path, rowLimit: rowLimit, timeout: timeout)
        }
    }

    /// Loads the catalog at `path` and opens its database.
    public convenience init(path: String, logger: Logger = Logger(label: "conclave.knowledge.sql")) throws {
        try self.init(catalog: try TemplateCatalog.load(path: path), logger: logger)
    }

    /// Values for every parameter, so that every optional clause is exercised at load time (a
    /// required text parameter takes the first value of its column).
    static func sampleValues(_ template: QueryTemplate, lexicon: [String: [String]] = [:]) -> [String: String] {
        var values: [String: String] = [:]
        for p in template.parameters {
            switch p.type {
            case .string, .list:
                values[p.name] = p.required == true ? (p.values?.first ?? p.valuesFrom.flatMap { lexicon[$0]?.first }) : nil
            case .integer: values[p.name] = p.default ?? String(Int64(p.minimum ?? 1))
            case .number: values[p.name] = p.default ?? String(p.minimum ?? 0)
            case .date: values[p.name] = "2000-01-01"
            case .dateRange: values[p.name] = "2000-01-01/2000-12-31"
            case .keyword: values[p.name] = p.default ?? p.choices?.keys.sorted().first
            }
        }
        return values
    }

    /// Legal forms dropped from names so "Baltiq Furniture" finds "Baltiq Furniture Sp. z o.o.".
    static let legalForms = ["b.v.", "n.v.", "gmbh", "ag", "sp. z o.o.", "s.a.", "s.p.a.", "spa", "srl", "s.r.l.", "sas", "sarl",
                             "ltd", "ltd.", "plc", "inc", "inc.", "llc", "oy", "ab", "as", "a/s", "se", "kg", "nv", "bv"]

    static func withoutLegalForm(_ name: String) -> String {
        let lower = name.lowercased()
        for form in legalForms.sorted(by: { $0.count > $1.count }) where lower.hasSuffix(" " + form) {
            return String(name.dropLast(form.count + 1)).trimmingCharacters(in: .whitespaces)
        }
        return name
    }

    // MARK: Choosing a template

    /// The best template for `question`, or nil when none serves it with confidence.
    public func match(_ question: String) -> Match? {
        let text = QuestionText(question)
        var best: Match?
        for template in catalog.templates where !template.isLookup {
            if let requires = template.requires, !text.containsAny(requires) { continue }
            // The subject is named; or, for a template over a specific measure (its `requires`
            // words occur), a record is: "Maren Tideveld's salary", "the support team's national ids".
            let named = text.containsAny(template.subject)
            let recordValues = !named && template.requires != nil ? fill(template, from: text) : nil
            guard named || recordValues.map({ Self.hasRecordValue(template, $0) }) == true else { continue }
            let intents = text.intents(subject: template.subject)
            var served = intents.intersection(template.intents)
            let measures = text.countOf(template.measures ?? [])
            // "Largest", "most", "maximum" rank by one of the template's measures when it names them
            // ("largest capacity"), not by whatever else the question is about ("maximum hotel rate").
            if served.contains(.rank), template.measures != nil, measures == 0, template.requires == nil { served.remove(.rank) }
            guard !served.isEmpty else { continue }
            var values = recordValues ?? fill(template, from: text)
            // A ranking template asked for a list rather than a ranking returns every row.
            if !served.contains(.rank), let limit = template.parameter("limit"), values["limit"] == nil, let maximum = limit.maximum {
                values["limit"] = String(Int64(maximum))
            }
            let filled = values.keys.filter { name in
                template.parameter(name).map { $0.type != .keyword && $0.name != "limit" } ?? false
            }.count
            let requiresHit = template.requires != nil
            // Without a filter, a measure, a ranking or a pointer at the records, a question that
            // merely names a subject ("how many employees does the company have?") is left to the documents.
            let confident = filled > 0 || measures > 0 || requiresHit || served.contains(.rank) || text.mentionsData
            guard confident else { continue }
            var score = 2.0 + Double(filled) + 1.5 * Double(measures) + (requiresHit ? 1 : 0)
            if served.contains(.rank) { score += 1 }
            if served.count > 1 { score += 0.25 }
            if best == nil || score > best!.score { best = Match(template: template, values: values, score: score) }
        }
        return best
    }

    /// The lookup templates (those with `keys`) whose record the question names, with the values
    /// filled from it.
    public func lookups(_ question: String) -> [Match] {
        let text = QuestionText(question)
        return catalog.templates.filter(\.isLookup).compactMap { template in
            let values = fill(template, from: text)
            return Self.hasRecordValue(template, values) ? Match(template: template, values: values, score: 1) : nil
        }
    }

    /// True when `values` (filled from a question) hold a value of one of the template's
    /// `values_from` columns.
    static func hasRecordValue(_ template: QueryTemplate, _ values: [String: String]) -> Bool {
        template.parameters.contains { $0.valuesFrom != nil && values[$0.name] != nil }
    }

    /// Parameter values read off the question.
    func fill(_ template: QueryTemplate, from text: QuestionText) -> [String: String] {
        var values: [String: String] = [:]
        var taken = Array(repeating: false, count: text.words.count)
        // Value phrases of every text parameter, longest first across parameters.
        var found: [(start: Int, length: Int, value: String, candidates: [QueryTemplate.Parameter])] = []
        let byParameter = phrases[template.name] ?? [:]
        var all: [(phrase: [String], value: String, parameter: String)] = []
        for (name, entries) in byParameter { all += entries.map { ($0.phrase, $0.value, name) } }
        all.sort { $0.phrase.count != $1.phrase.count ? $0.phrase.count > $1.phrase.count : $0.parameter < $1.parameter }
        for entry in all {
            for start in text.occurrences(of: entry.phrase) {
                let range = start..<(start + entry.phrase.count)
                // Short values ("it", "hr") count only when typed in capitals, so they are not read from ordinary words.
                if entry.phrase.count == 1, entry.phrase[0].count <= 2, text.typedWord(start) != text.typedWord(start).uppercased() { continue }
                if let index = found.firstIndex(where: { $0.start == start && $0.length == entry.phrase.count && $0.value == entry.value }) {
                    if let p = template.parameter(entry.parameter) { found[index].candidates.append(p) }
                    continue
                }
                guard !range.contains(where: { taken[$0] }) else { continue }
                guard let p = template.parameter(entry.parameter) else { continue }
                found.append((start, entry.phrase.count, entry.value, [p]))
            }
            for f in found { for i in f.start..<(f.start + f.length) { taken[i] = true } }
        }
        found.sort { $0.start < $1.start }
        for item in found {
            var candidates = item.candidates
            if candidates.count > 1 {
                let before = text.words[max(0, item.start - 2)..<item.start]
                let cued = candidates.filter { p in (p.cues ?? []).contains { before.contains($0.lowercased()) } }
                if cued.isEmpty {
                    candidates = candidates.filter { ($0.cues ?? []).isEmpty }
                    guard candidates.count == 1 else { continue }  // ambiguous: leave it unfilled
                } else {
                    candidates = cued
                }
            }
            let p = candidates[0]
            if p.type == .list, let existing = values[p.name] {
                if !existing.split(separator: ",").contains(Substring(item.value)) { values[p.name] = existing + "," + item.value }
            } else if values[p.name] == nil {
                values[p.name] = item.value
            }
        }
        for p in template.parameters {
            switch p.type {
            case .dateRange:
                if let period = text.period { values[p.name] = "\(period.from)/\(period.to)" }
            case .keyword:
                if let choices = p.choices {
                    for (keyword, words) in choices.sorted(by: { $0.key < $1.key }) where text.containsAny(words) {
                        values[p.name] = keyword
                        break
                    }
                }
            case .integer:
                if let n = text.requestedCount { values[p.name] = String(n) }
            default:
                break
            }
        }
        return values
    }

    // MARK: Running

    /// Evidence from the database for `question`, or the tables withheld from the principal.
    public func evidence(for question: String, scope: DocumentScope = .unrestricted) -> Retrieval {
        evidence(for: question, match: match(question), scope: scope)
    }

    /// Evidence from the database for `question` with the template `match` (chosen by the rules
    /// or by a model), plus the lookups the question names.
    public func evidence(for question: String, match: Match?, scope: DocumentScope = .unrestricted) -> Retrieval {
        var retrieval = Retrieval(evidence: [], withheld: [])
        if let match {
            do {
                retrieval = try run(match.template, values: match.values, scope: scope, subQuestion: question, confidence: match.score)
            } catch {
                // A value the question implied that the template refuses (out of range, say) is a miss, not a failure of the request.
                logger.debug("sql template not run", metadata: ["template": "\(match.template.name)", "error": "\(error)"])
            }
        }
        // Lookups add context to an answer, not to a refusal, and never a refusal of their own:
        // one the principal may not run is skipped.
        guard retrieval.withheld.isEmpty else { return retrieval }
        for lookup in lookups(question) where withheld(lookup.template, scope: scope) == nil {
            do {
                retrieval.evidence += try run(lookup.template, values: lookup.values, scope: scope, subQuestion: question).evidence
            } catch {
                logger.debug("sql lookup not run", metadata: ["template": "\(lookup.template.name)", "error": "\(error)"])
            }
        }
        return retrieval
    }

    /// Runs `template` with raw `values` (validated here) as the principal of `scope`.
    public func run(_ template: QueryTemplate, values raw: [String: String], scope: DocumentScope = .unrestricted,
                    subQuestion: String = "", confidence: Double = 1) throws -> Retrieval {
        if let denied = withheld(template, scope: scope) {
            return Retrieval(evidence: [], withheld: [denied])
        }
        let values = try template.validate(raw, lexicon: lexicon)
        let (sql, bindings) = try template.compile(values)
        let result = try database.query(sql, bindings: bindings, allowedTables: Set(template.tables))
        let masked = Set((template.sensitiveColumns ?? []).filter(scope.maskedColumns.contains)
            .compactMap { $0.split(separator: ".").last.map(String.init) })
        let text = Self.render(template, values: values, result: result, masked: masked)
        let id = "db:" + template.tables[0]
        let key = values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        // A lookup's keys: the values of its key columns in the rows found (a record found in
        // none is not a lookup's result, and gives no evidence).
        var keys: [String]?
        if let keyColumns = template.keys, !keyColumns.isEmpty {
            let indices = keyColumns.compactMap { result.columns.firstIndex(of: $0) }
            var found: [String] = []
            for row in result.rows.prefix(3) {
                for index in indices where !masked.contains(result.columns[index]) {
                    let value = Self.format(row[index], column: result.columns[index])
                    if value != "none", !found.contains(value) { found.append(value) }
                }
            }
            guard !found.isEmpty else { return Retrieval(evidence: [], withheld: []) }
            keys = found
        }
        let evidence = Evidence(chunkID: "\(id)#\(template.name)?\(key)",
                                source: SourceRef(id: id, title: template.description, section: template.name),
                                text: text, score: 10 + confidence, subQuestion: subQuestion, keys: keys)
        return Retrieval(evidence: [evidence], withheld: [])
    }

    /// The template by name.
    public func template(named name: String) -> QueryTemplate? { catalog.templates.first { $0.name == name } }

    /// The source a principal is refused: the first table it may not read, or the first
    /// sensitive column denied to it.
    func withheld(_ template: QueryTemplate, scope: DocumentScope) -> WithheldSource? {
        if let table = template.tables.first(where: { !scope.allows(table: $0) }) {
            return WithheldSource(documentID: "db:" + table, department: template.owner, coverage: 1)
        }
        if let column = (template.sensitiveColumns ?? []).first(where: scope.deniedColumns.contains) {
            return WithheldSource(documentID: "db:" + column, department: template.owner, coverage: 1)
        }
        return nil
    }

    /// Runs one SELECT written outside the templates (the opt-in text-to-SQL mode), after the
    /// guard: a single read-only statement over the catalog's allow-listed tables that the
    /// principal may read.
    public func runGuarded(_ sql: String, scope: DocumentScope = .unrestricted) throws -> SQLResult {
        guard let mode = catalog.textToSQL, mode.enabled else {
            throw TemplateError("text-to-SQL is not enabled for this database")
        }
        return try Self.guardedQuery(sql, database: database, allowedTables: Set(mode.tables.filter { scope.allows(table: $0) }))
    }

    /// The text-to-SQL guard: one SELECT over `allowedTables`, checked by the database's own parser
    /// (SQLite's authorizer; PostgreSQL's plan), and the driver's check of free queries.
    static func guardedQuery(_ sql: String, database: any ReadOnlyDatabase, allowedTables: Set<String>) throws -> SQLResult {
        let trimmed = sql.trimmingCharacters(in: .whitespacesAndNewlines)
        let lower = trimmed.lowercased()
        guard lower.hasPrefix("select") || lower.hasPrefix("with") else {
            throw SQLQueryError(message: "Only a single SELECT statement is allowed.")
        }
        try database.checkFreeQuery(trimmed)
        return try database.query(trimmed, allowedTables: allowedTables)
    }

    // MARK: Rendering

    /// The result as sentences: the template's introduction with the filters, then one sentence per row.
    static func render(_ template: QueryTemplate, values: [String: TemplateValue], result: SQLResult, masked: Set<String>) -> String {
        var filters: [String] = []
        for p in template.parameters {
            guard let value = values[p.name] else { continue }
            switch value {
            case .text(let v): filters.append("\(p.displayLabel) \(v.replacingOccurrences(of: "_", with: " "))")
            case .list(let items):
                filters.append("\(p.displayLabel) \(items.map { $0.replacingOccurrences(of: "_", with: " ") }.joined(separator: " or "))")
            case .range(let from, let to): filters.append("\(p.displayLabel) between \(from) and \(to)")
            case .integer, .number, .keyword: continue
            }
        }
        let filterText = filters.isEmpty ? "" : " (" + filters.joined(separator: "; ") + ")"
        let intro = template.result.replacingOccurrences(of: "{filters}", with: filterText)
        guard !result.rows.isEmpty else { return intro + " No records match." }
        let rows = result.rows.map { row -> String in
            var sentence = template.row
            for (index, column) in result.columns.enumerated() {
                let value = masked.contains(column) ? MaskedValue.restricted : format(row[index], column: column)
                sentence = sentence.replacingOccurrences(of: "{\(column)}", with: value)
            }
            return sentence
        }
        return intro + " " + rows.joined(separator: "; ") + (result.truncated ? "; (more rows not shown)." : ".")
    }

    /// A value as people write it: thousands separators, no trailing ".0"; ids and years plain.
    static func format(_ value: SQLValue, column: String) -> String {
        let plain = column == "id" || column.hasSuffix("_id") || column.hasSuffix("year")
        switch value {
        case .null: return "none"
        case .text(let v): return v.replacingOccurrences(of: "_", with: " ")
        case .integer(let v): return plain ? String(v) : grouped(String(v))
        case .real(let v):
            var text = String(format: "%.2f", v)
            if text.hasSuffix("0") && text.contains(".") { text.removeLast() }
            if text.hasSuffix(".0") { text.removeLast(2) }
            return plain ? text : grouped(text)
        }
    }

    /// `number` (digits, an optional sign and decimal part) with thousands separators: "2000000"
    /// → "2,000,000".
    public static func grouped(_ number: String) -> String {
        var sign = ""
        var digits = Substring(number)
        if digits.hasPrefix("-") { sign = "-"; digits = digits.dropFirst() }
        let parts = digits.split(separator: ".", maxSplits: 1)
        guard let integer = parts.first else { return number }
        var out = ""
        for (i, ch) in integer.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return sign + String(out.reversed()) + (parts.count > 1 ? "." + parts[1] : "")
    }
}
