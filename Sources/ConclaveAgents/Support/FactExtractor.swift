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
        var seen = Set<UInt64>()
        var results: [Candidate] = []
        for item in evidence {
            let sectionTerms = TermSet((item.source.section ?? "") + " " + item.source.title)
            let contextualTerms = queryTerms.intersection(sectionTerms)
            for sentence in Self.sentences(in: item.text) {
                guard seen.insert(TextWords.caseFoldedHash(sentence)).inserted else { continue }
                let terms = TermSet(sentence)
                let direct = Double(queryTerms.intersectionCount(terms))
                let band = amounts.isEmpty ? nil : Quantities.band(ofRow: sentence)
                let inBand = band.map { band in amounts.contains(where: band.contains) }
                guard direct > 0 || inBand == true else { continue }
                let contextual = Double(contextualTerms.subtracting(terms).count)
                // The asked amount found in the row's band counts as one more word of the question covered.
                let matched = direct + contextual + (inBand == true ? 1 : 0)
                let coverage = min(1, matched / Double(queryTerms.count))
                var score = direct + 0.5 * contextual
                if let inBand { score += inBand ? 4 : -3 }
                score += 0.75 * Double(entityTerms.intersectionCount(terms))
                if let form = reasoning?.answerForm, Self.matches(sentence, form: form) { score += 1 }
                score += 0.1 * min(item.score, 10)
                score += Double(emphasis.intersectionCount(terms))
                results.append(Candidate(text: sentence, evidence: item, score: score, coverage: coverage))
            }
        }
        return Array(results.sorted { $0.score > $1.score }.prefix(limit))
    }

    /// Sentences, list items and table rows of a passage, cleaned of Markdown emphasis. Works on
    /// UTF-8 bytes (every marker it looks for is ASCII), which kept it off the validator's profile.
    public static func sentences(in text: String) -> [String] {
        var out: [String] = []
        var tableHeader: [String]?
        let bytes = Array(text.utf8)
        for rawLine in bytes.split(separator: UInt8(ascii: "\n")) {
            var line = trimmed(rawLine)
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
                let named = zip(header, cells).filter { !$0.1.isEmpty }.map { $0.0.isEmpty ? $0.1 : "\($0.0): \($0.1)" }
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
            guard line.count >= 12 else { continue }
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
            for i in line.indices where (line[i] == UInt8(ascii: ".") || line[i] == UInt8(ascii: ";")) && i - start + 1 > 40 {
                out.append(String(decoding: trimmed(line[start...i]), as: UTF8.self))
                start = i + 1
            }
            let rest = trimmed(line[start...])
            if rest.count >= 12 { out.append(String(decoding: rest, as: UTF8.self)) }
        }
        return out
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

    /// True when `sentence` holds a value of the given form.
    public static func matches(_ sentence: String, form: Reasoning.AnswerForm) -> Bool {
        let hasDigit = sentence.utf8.contains { $0 >= 0x30 && $0 <= 0x39 }
        switch form {
        case .number, .duration, .percentage: return hasDigit
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
