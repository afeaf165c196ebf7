import ConclaveCore
import ConclaveKnowledge
import Foundation

/// Splits evidence into candidate facts (sentences, list items, table rows) and scores each
/// against the question: content-word overlap, entity matches and whether it holds a value of the
/// expected form.
public struct FactExtractor: Sendable {
    /// A scored candidate fact.
    public struct Candidate: Sendable, Hashable {
        /// The sentence.
        public var text: String
        /// Where it came from.
        public var evidence: Evidence
        /// Relevance score.
        public var score: Double
        /// Fraction of the question's content words the sentence (with its section heading) covers.
        public var coverage: Double
        /// The question's content words the sentence, its section heading or its lead-in names.
        public var matched: TermSet = .empty
    }

    /// Creates an extractor.
    public init() {}

    /// Candidate facts from `evidence` for `query`, best first. Words of `emphasis` (a follow-up's
    /// own words, which say what changed from the previous question) count once more each. A
    /// table row whose first cell states a band (`EUR 25,000 - 99,999`, `25,000 or more`) ranks
    /// first when the band holds one of `amounts` (the question's, read by `Quantities.amounts`)
    /// and last when it holds none: the row for the asked amount is chosen by code.
    public func candidates(for query: String, evidence: [Evidence], reasoning: Reasoning?, limit: Int = 8,
                           emphasis: TermSet = .empty, amounts: [Double] = []) -> [Candidate] {
        let queryTerms = TermSet(query)
        guard !queryTerms.isEmpty else { return [] }
        let entityTerms = TermSet((reasoning?.entities ?? []).joined(separator: " "))
        let wantsSummary = Self.asksForSummary(query)
        let wantsPurpose = wantsSummary || Self.asksForPurpose(query)
        let asksForBound = Self.asksForBound(query)
        var seen = Set<UInt64>()
        var results: [Candidate] = []
        for item in evidence {
            let sectionTerms = TermSet((item.source.section ?? "") + " " + item.source.title)
            let contextualTerms = queryTerms.intersection(sectionTerms)
            // Asked for a summary, a document's own summary section is the answer.
            // The passage's lines are read once, for its sentences, their lead-ins and its summary.
            let lines = Self.logicalLines(item.text)
            let summary = wantsSummary ? Self.summarySentences(lines) : []
            // A list item's lead-in ("Customers can insure goods with Cargo Plus cover:") is its heading.
            let leads = Self.leadIns(lines)
            // A lead-in states no fact of its own: its items do.
            let leading = Set(leads.values)
            // So does a sentence that ends in a colon: what it introduces follows it.
            for sentence in Self.sentences(lines, sectionUnit: Self.bracketedUnit(item.source.section)) where !leading.contains(sentence) && !sentence.hasSuffix(":") {
                guard seen.insert(TextWords.caseFoldedHash(sentence)).inserted else { continue }
                let own = TermSet(Self.withoutUnaskedFieldNames(sentence, query: queryTerms))
                let ownDirect = queryTerms.intersectionCount(own)
                let band = amounts.isEmpty ? nil : Quantities.band(ofRow: sentence)
                let inBand = band.map { band in amounts.contains(where: band.contains) }
                guard ownDirect > 0 || inBand == true else { continue }
                // A list item states its lead-in ("Customers can insure goods with Cargo Plus
                // cover:" + "- Maximum declared value: EUR 500,000"): the lead-in's words count as
                // the item's own, so an item that repeats them gains nothing over its siblings.
                let terms = leads[sentence].map { own.union(queryTerms.intersection(TermSet($0))) } ?? own
                let direct = Double(queryTerms.intersectionCount(terms))
                let contextual = Double(contextualTerms.subtracting(terms).count)
                // The asked amount found in the row's band counts as one more word of the question covered.
                let summarises = summary.contains(sentence)
                let matched = direct + contextual + (inBand == true ? 1 : 0) + (summarises ? 1 : 0)
                let coverage = min(1, matched / Double(queryTerms.count))
                var score = direct + 0.5 * contextual
                if let inBand { score += inBand ? 4 : -3 }
                if summarises { score += 3 }
                // A document's sentence about itself ("This digest summarises … anything unusual")
                // shares the words of the topics it lists, and answers none of them: its words
                // count half, like a title's, and it ranks below a fact that matches as much.
                if !wantsPurpose, Self.describesItsDocument(sentence) { score -= 0.5 * direct + 1 }
                score += 0.75 * Double(entityTerms.intersectionCount(terms))
                if let form = reasoning?.answerForm, Self.matches(sentence, form: form) { score += 1 }
                // Asked for a bound ("the cap on", "up to what value"), a fact that names one
                // ("Maximum …", "… must not exceed …") is the likelier answer; a word for the bound
                // says so more plainly than "up to", which also bounds the cases a sentence lists
                // ("Gold customers … up to EUR 50,000").
                if asksForBound { score += Self.boundWeight(sentence) }
                score += 0.1 * min(item.score, 10)
                score += Double(emphasis.intersectionCount(terms))
                // A row whose key the question names in full ("Account Manager") is a closer
                // match than one whose key says more ("Key Account Manager").
                if Self.rowKeyIsNamed(sentence, by: queryTerms) { score += 0.5 }
                results.append(Candidate(text: sentence, evidence: item, score: score, coverage: coverage,
                                         matched: queryTerms.intersection(terms).union(contextualTerms)))
            }
        }
        return Array(results.sorted { $0.score > $1.score }.prefix(limit))
    }

    /// Sentences, list items and table rows of a passage, cleaned of Markdown emphasis. Works on
    /// UTF-8 bytes (every marker it looks for is ASCII), which kept it off the validator's profile.
    public static func sentences(in text: String) -> [String] {
        sentences(logicalLines(text))
    }

    /// The sentences of lines already read by ``logicalLines(_:)``. `sectionUnit`, the unit the
    /// passage's heading names in brackets ("Selected transit times (business days)"), goes with
    /// the bare numbers of a table's columns whose headers name none.
    static func sentences(_ lines: [[UInt8]], sectionUnit: String? = nil) -> [String] {
        var out: [String] = []
        var tableHeader: [String]?
        for logical in lines {
            var line = logical[...]
            if line.first == UInt8(ascii: "|") {
                if line.allSatisfy({ $0 == UInt8(ascii: "|") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: " ") }) {
                    continue
                }
                let cells = line.split(separator: UInt8(ascii: "|"), omittingEmptySubsequences: false).dropFirst().dropLast()
                    .map { String(decoding: withoutBoldMarkers(trimmed($0)), as: UTF8.self) }
                guard let header = tableHeader else {
                    tableHeader = cells
                    continue
                }
                // A table row becomes a record that names its columns, so it stands alone as a fact.
                let named = zip(header.indices, zip(header, cells)).filter { !$0.1.1.isEmpty }
                    .map { column, pair in
                        pair.0.isEmpty ? pair.1
                            : "\(pair.0): \(Self.withUnit(pair.1, from: pair.0, otherwise: column == 0 ? nil : sectionUnit))"
                    }
                let record = named.joined(separator: "; ")
                if record.utf8.count > 240, named.count > 2 {
                    // A wide row: one fact per cell, each keyed by the row's first cell, so the
                    // value under a column stays next to what the row is about.
                    for cell in named.dropFirst() { out.append("\(named[0]); \(cell)") }
                    continue
                }
                line = ArraySlice(record.utf8)
            } else {
                tableHeader = nil
            }
            line = withoutBoldMarkers(line)
            if line.count >= 2, line[line.startIndex + 1] == UInt8(ascii: " "),
               line.first == UInt8(ascii: "-") || line.first == UInt8(ascii: "*") {
                line = line.dropFirst(2)
            }
            guard line.count >= 12, !isHeading(line) else { continue }
            if line.count > 240, let fields = Self.recordFields(line) {
                // A long `key: value; key: value` record (a CSV row): one fact per field, keyed
                // by the first, as for a wide table row.
                for field in fields.dropFirst() { out.append("\(fields[0]); \(field)") }
                continue
            }
            if line.count <= 240 {
                out.append(String(decoding: line, as: UTF8.self))
                continue
            }
            // Split long lines at sentence boundaries.
            var start = line.startIndex
            // A stop ends a sentence only before a space or the end ("EUR 307.10" and "ops.example" go on).
            for i in line.indices where (line[i] == UInt8(ascii: ".") || line[i] == UInt8(ascii: ";")) && i - start + 1 > 40
                && (i + 1 == line.endIndex || line[i + 1] == 0x20) {
                out.append(String(decoding: trimmed(line[start...i]), as: UTF8.self))
                start = i + 1
            }
            let rest = trimmed(line[start...])
            if rest.count >= 12 { out.append(String(decoding: rest, as: UTF8.self)) }
        }
        return out
    }

    /// The passage's lines as the extractor reads them: a plain-text table (`a | b` rows under a
    /// `---+---` rule, as in `.txt` documents) becomes a Markdown table; a line that continues a
    /// hard-wrapped sentence (it starts in lower case after a line that ends without punctuation)
    /// joins the line before; rules and underlines (`-----`, `=====`) are dropped. Blank lines end
    /// a paragraph.
    static func logicalLines(_ text: String) -> [[UInt8]] {
        let pipe = UInt8(ascii: "|")
        let raw = Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { trimmed($0) }
        func isRule(_ line: ArraySlice<UInt8>) -> Bool {
            line.count >= 3 && line.allSatisfy { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "+") || $0 == 0x20 || $0 == pipe || $0 == UInt8(ascii: ":") }
                && line.contains { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "=") }
        }
        func pipes(_ line: ArraySlice<UInt8>) -> Int { line.reduce(0) { $0 + ($1 == pipe ? 1 : 0) } }
        func asMarkdownRow(_ line: ArraySlice<UInt8>) -> [UInt8] { [pipe, 0x20] + Array(line) + [0x20, pipe] }
        var out: [[UInt8]] = []
        var plainTablePipes = 0  // pipes per row of the plain-text table being read; 0 outside one
        var joinable = false     // the last line is prose that a wrapped continuation may join
        var index = 0
        while index < raw.count {
            let line = raw[index]
            defer { index += 1 }
            if line.isEmpty {
                plainTablePipes = 0
                joinable = false
                out.append([])
                continue
            }
            if line.first != pipe {
                let count = pipes(line)
                // A plain-text table's header is a line with pipes right above a rule with a `+`.
                if count > 0, plainTablePipes == 0, index + 1 < raw.count, isRule(raw[index + 1]),
                   raw[index + 1].contains(UInt8(ascii: "+")) {
                    plainTablePipes = count
                    out.append(asMarkdownRow(line))
                    out.append(Array("|---|".utf8))
                    index += 1
                    joinable = false
                    continue
                }
                if plainTablePipes > 0 {
                    if count == plainTablePipes {
                        out.append(asMarkdownRow(line))
                        continue
                    }
                    plainTablePipes = 0
                }
            }
            if isRule(line) && line.first != pipe {
                joinable = false
                continue
            }
            let startsLower = line.first.map { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") } ?? false
            if joinable, startsLower, !startsWithKey(line), var previous = out.popLast() {
                previous.append(0x20)
                previous.append(contentsOf: line)
                out.append(previous)
            } else {
                out.append(Array(line))
            }
            let last = line.last ?? 0
            joinable = line.first != pipe && !".!?:;".utf8.contains(last) && !startsWithKey(line)
        }
        return out
    }

    /// A bare number under a header that names its unit, with the unit: "45" under "Days after
    /// due date" or "Transit (business days)" reads "45 days" / "45 business days".
    /// When the header names none, `otherwise` (the section's unit) is used.
    static func withUnit(_ cell: String, from header: String, otherwise: String? = nil) -> String {
        guard let first = cell.first, first.isNumber, cell.allSatisfy({ $0.isNumber || $0 == "," || $0 == "." }) else { return cell }
        let lower = header.lowercased()
        if let unit = bracketedUnit(lower) ?? units.first(where: { lower.hasPrefix($0 + " ") || lower == $0 }) ?? otherwise {
            return "\(cell) \(unit)"
        }
        return cell
    }

    /// Units of time a header or heading may name for the numbers under it.
    private static let units = ["minutes", "hours", "days", "business days", "calendar days", "working days", "weeks", "months", "years"]

    /// The unit of time `text` names in its last brackets ("Transit (business days)"); for a
    /// section path ("Terms > 5. Selected transit times (business days)"), its last heading's.
    static func bracketedUnit(_ text: String?) -> String? {
        guard let text else { return nil }
        let lower = (text.components(separatedBy: " > ").last ?? text).lowercased()
        guard let open = lower.lastIndex(of: "("), let close = lower[open...].firstIndex(of: ")") else { return nil }
        let inside = lower[lower.index(after: open)..<close].trimmingCharacters(in: .whitespaces)
        return units.contains(inside) ? inside : nil
    }

    /// The lead-in of each list item's sentences: the line ending in a colon that introduces the
    /// list ("Customers can insure goods up to their full value with Cargo Plus cover:").
    static func leadIns(in text: String) -> [String: String] {
        leadIns(logicalLines(text))
    }

    /// The lead-ins of lines already read by ``logicalLines(_:)``.
    static func leadIns(_ lines: [[UInt8]]) -> [String: String] {
        var leads: [String: String] = [:]
        var lead: String?
        for line in lines where !line.isEmpty {
            let first = line.first ?? 0
            let isItem = line.count >= 2 && (first == UInt8(ascii: "-") || first == UInt8(ascii: "*")) && line[1] == 0x20
            if isItem, let lead {
                for sentence in sentences(in: String(decoding: line, as: UTF8.self)) { leads[sentence] = lead }
            } else if !isItem {
                // The lead-in as the extractor states it (emphasis removed), so it is known among the sentences.
                lead = line.last == UInt8(ascii: ":") && first != UInt8(ascii: "|") ? sentences(in: String(decoding: line, as: UTF8.self)).first : nil
            }
        }
        return leads
    }

    /// `sentence` without the field names (`origin_code`, `salary_eur`) that `query` does not name in
    /// full: a record's column name matches a question only as a whole, so "dress code" does not
    /// find every row with an `origin_code`.
    static func withoutUnaskedFieldNames(_ sentence: String, query: TermSet) -> String {
        guard sentence.utf8.contains(UInt8(ascii: "_")) else { return sentence }
        var out = ""
        var word = ""
        func flush() {
            if word.contains("_"), !TermSet(word.replacingOccurrences(of: "_", with: " ")).isSubset(of: query) {
                out += " "
            } else {
                out += word
            }
            word = ""
        }
        for character in sentence {
            if character.isLetter || character.isNumber || character == "_" {
                word.append(character)
            } else {
                flush()
                out.append(character)
            }
        }
        flush()
        return out
    }

    /// True when `sentence` is a row (`Key: value; …`) whose key value's every word is in `query`.
    static func rowKeyIsNamed(_ sentence: String, by query: TermSet) -> Bool {
        guard let colon = sentence.firstIndex(of: ":"), let semicolon = sentence.firstIndex(of: ";"), colon < semicolon else { return false }
        let key = TermSet(String(sentence[sentence.index(after: colon)..<semicolon]))
        return !key.isEmpty && key.isSubset(of: query)
    }

    /// True when the question asks for an upper bound: a maximum, a cap, a limit, a ceiling, "up
    /// to what / how much", "at most".
    static func asksForBound(_ question: String) -> Bool {
        let lower = Lowercased(question)
        return ["maximum", "max ", "max.", " cap ", " cap?", " caps ", "capped", "ceiling", "limit", "up to what", "up to how",
                "at most", "highest"].contains { lower.contains($0) }
    }

    /// How plainly `sentence` names an upper bound: 1 for a noun or verb for it ("maximum", "max.",
    /// "cap", "ceiling", "limit", "must not exceed"), 0.5 for "up to", "at most" or "no more than"
    /// alone, 0 for none.
    static func boundWeight(_ sentence: String) -> Double {
        let lower = Lowercased(sentence)
        if ["maximum", "max ", "max.", "cap ", "capped", "ceiling", "limit", "exceed"].contains(where: { lower.contains($0) }) { return 1 }
        if ["up to", "at most", "no more than"].contains(where: { lower.contains($0) }) { return 0.5 }
        return 0
    }

    /// True when the question asks for a summary or an overview of something.
    /// True when the question asks what a document is for or about ("what is the purpose of …",
    /// "what does … cover", "what is … about").
    static func asksForPurpose(_ question: String) -> Bool {
        let lower = question.lowercased()
        if ["purpose", "what is it for", "cover", "describe", "scope", " aim"].contains(where: lower.contains) { return true }
        // "What is the digest about?" (not "what should agents do about it?").
        return (lower.hasPrefix("what is") || lower.hasPrefix("what's")) && lower.contains(" about")
    }

    /// Names a document gives itself in a sentence about itself.
    static let documentNouns: Set<String> = [
        "document", "digest", "policy", "procedure", "guide", "handbook", "note", "plan", "standard", "runbook", "page",
        "memo", "report", "schedule", "faq", "overview", "matrix", "sheet", "scheme", "programme", "calendar", "article",
        "bulletin", "newsletter", "circular", "notice", "manual", "checklist", "template", "summary", "section", "chapter",
    ]
    /// What such a sentence says the document does.
    static let purposeVerbs: Set<String> = [
        "summarises", "summarizes", "describes", "explains", "sets", "defines", "lists", "covers", "answers", "outlines",
    ]

    /// True for a sentence in which a document describes itself: "This [weekly] digest summarises
    /// …", "This procedure explains …" (not "This policy applies to …", which states a fact).
    static func describesItsDocument(_ sentence: String) -> Bool {
        let words = sentence.prefix(80).split(separator: " ").prefix(5).map { $0.lowercased() }
        guard words.first == "this", words.count >= 3 else { return false }
        guard let noun = words.dropFirst().prefix(3).firstIndex(where: { documentNouns.contains($0) }),
              noun + 1 < words.count else { return false }
        return purposeVerbs.contains(words[noun + 1])
    }

    static func asksForSummary(_ question: String) -> Bool {
        let lower = Lowercased(question)
        return ["summary", "summarise", "summarize", "overview", "key points", "main points", "highlights", "in short",
                "gist"].contains { lower.contains($0) }
    }

    /// The sentences under a passage's own summary heading ("SUMMARY", "## Overview", "Key
    /// points", "Highlights", "At a glance"), up to the next heading.
    static func summarySentences(in text: String) -> Set<String> {
        summarySentences(logicalLines(text))
    }

    /// The summary sentences of lines already read by ``logicalLines(_:)``.
    static func summarySentences(_ lines: [[UInt8]]) -> Set<String> {
        let cues = ["summary", "overview", "key points", "key facts", "highlights", "at a glance"]
        var inSummary = false
        var out = Set<String>()
        for line in lines where !line.isEmpty {
            let slice = line[...]
            if line.first == UInt8(ascii: "#") || isHeading(slice) || (slice.count < 40 && slice.last == UInt8(ascii: ":")) {
                let heading = String(decoding: line, as: UTF8.self).lowercased()
                inSummary = cues.contains { heading.contains($0) }
                continue
            }
            if inSummary { out.formUnion(sentences(in: String(decoding: line, as: UTF8.self))) }
        }
        return out
    }

    /// True for a plain-text heading: a short line in capitals without a final stop
    /// ("CUSTOMER INBOX DIGEST - WEEK 43"). It names a topic; it states no fact.
    private static func isHeading(_ line: ArraySlice<UInt8>) -> Bool {
        guard line.count < 100, let last = line.last, !".!?".utf8.contains(last) else { return false }
        var letters = 0
        for byte in line {
            if byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") { return false }
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { letters += 1 }
        }
        return letters >= 6
    }

    /// True when `line` starts like a `key: value` record field (a CSV row's first column).
    private static func startsWithKey(_ line: ArraySlice<UInt8>) -> Bool {
        guard let colon = line.prefix(41).firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
              colon + 1 < line.endIndex, line[colon + 1] == 0x20 else { return false }
        return line[line.startIndex..<colon].allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || $0 == UInt8(ascii: "_") }
    }

    /// The `key: value` fields of a record line, when it has at least three and every one is so
    /// written; nil otherwise.
    private static func recordFields(_ line: ArraySlice<UInt8>) -> [String]? {
        let fields = line.split(separator: UInt8(ascii: ";")).map { String(decoding: trimmed($0), as: UTF8.self) }
            .filter { !$0.isEmpty }
        guard fields.count >= 3, fields.allSatisfy({ field in
            guard let colon = field.firstIndex(of: ":") else { return false }
            return field.distance(from: field.startIndex, to: colon) <= 40
        }) else { return nil }
        return fields
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        func space(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }
        var slice = bytes
        while let first = slice.first, space(first) { slice.removeFirst() }
        while let last = slice.last, space(last) { slice.removeLast() }
        return slice
    }

    /// `bytes` without `**` pairs (a lone `*` stays).
    private static func withoutBoldMarkers(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard bytes.contains(UInt8(ascii: "*")) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            if bytes[i] == UInt8(ascii: "*"), i + 1 < bytes.endIndex, bytes[i + 1] == UInt8(ascii: "*") {
                i += 2
                continue
            }
            out.append(bytes[i])
            i += 1
        }
        return out[...]
    }

    /// True when `sentence` states a duration: a number with a unit of time ("21 days", "48 h"),
    /// or one in words (a number word, then within two words a unit of time: "one month", "two
    /// further months"; "a fortnight" is not counted). `hasDigit`: the sentence holds a digit.
    static func statesDuration(_ sentence: String, hasDigit: Bool) -> Bool {
        let words = sentence.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init)
        if hasDigit, words.contains(where: timeUnits.contains) { return true }
        let numbers: Set<String> = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                                    "twelve", "fifteen", "twenty", "thirty", "forty", "sixty", "ninety", "a", "an"]
        for (index, word) in words.enumerated() where numbers.contains(word) {
            for next in words[(index + 1)..<min(words.count, index + 3)] where timeUnits.contains(next) {
                // "a" and "an" count only right before the unit ("within a month").
                if word.count > 2 || next == words[index + 1] { return true }
            }
        }
        return false
    }

    /// Words that name a unit of time, for durations.
    private static let timeUnits: Set<String> = ["second", "seconds", "minute", "minutes", "min", "mins", "hour", "hours", "hrs", "day",
                                                 "days", "week", "weeks", "month", "months", "year", "years", "quarter", "quarters",
                                                 "h"]

    /// True when `sentence` holds a value of the given form.
    public static func matches(_ sentence: String, form: Reasoning.AnswerForm) -> Bool {
        let hasDigit = sentence.utf8.contains { $0 >= 0x30 && $0 <= 0x39 }
        switch form {
        case .duration: return statesDuration(sentence, hasDigit: hasDigit)
        case .number, .percentage: return hasDigit
        case .money:
            let lower = Lowercased(sentence)
            return hasDigit && (lower.contains("eur") || lower.contains("€") || lower.contains("$"))
        case .date:
            let months = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
                          "october", "november", "december"]
            let lower = Lowercased(sentence)
            return months.contains(where: lower.contains) || lower.containsISODate
        case .list, .yesNo, .text: return true
        }
    }
}
