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

    /// Candidate facts from `evidence` for `query`, best first.
    public func candidates(for query: String, evidence: [Evidence], reasoning: Reasoning?, limit: Int = 8) -> [Candidate] {
        let queryTerms = Set(QueryTerms.extract(from: query).map(Self.stem))
        guard !queryTerms.isEmpty else { return [] }
        let entityTerms = Set((reasoning?.entities ?? []).flatMap { QueryTerms.extract(from: $0) }.map(Self.stem))
        var seen = Set<String>()
        var results: [Candidate] = []
        for item in evidence {
            let sectionTerms = Set(QueryTerms.extract(from: item.source.section ?? "").map(Self.stem))
                .union(QueryTerms.extract(from: item.source.title).map(Self.stem))
            for sentence in Self.sentences(in: item.text) {
                let key = sentence.lowercased()
                guard seen.insert(key).inserted else { continue }
                let terms = Set(QueryTerms.extract(from: sentence).map(Self.stem))
                let direct = Double(queryTerms.intersection(terms).count)
                let contextual = Double(queryTerms.intersection(sectionTerms).subtracting(terms).count)
                let coverage = (direct + contextual) / Double(queryTerms.count)
                guard direct > 0 else { continue }
                var score = direct + 0.5 * contextual
                score += 0.75 * Double(entityTerms.intersection(terms).count)
                if let form = reasoning?.answerForm, Self.matches(sentence, form: form) { score += 1 }
                score += 0.1 * min(item.score, 10)
                results.append(Candidate(text: sentence, evidence: item, score: score, coverage: coverage))
            }
        }
        return Array(results.sorted { $0.score > $1.score }.prefix(limit))
    }

    /// Sentences, list items and table rows of a passage, cleaned of Markdown emphasis.
    public static func sentences(in text: String) -> [String] {
        var out: [String] = []
        var tableHeader: [String]?
        for line in text.split(separator: "\n") {
            var line = line.trimmed
            if line.hasPrefix("|") {
                if line.allSatisfy({ "|-: ".contains($0) }) { continue }
                let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                    .map { $0.trimmed.withoutBoldMarkers }
                guard let header = tableHeader else {
                    tableHeader = cells
                    continue
                }
                // A table row becomes a record that names its columns, so it stands alone as a fact.
                line = zip(header, cells).filter { !$0.1.isEmpty }.map { $0.0.isEmpty ? $0.1 : "\($0.0): \($0.1)" }
                    .joined(separator: "; ")
            } else {
                tableHeader = nil
            }
            line = line.withoutBoldMarkers
            if line.hasPrefix("- ") || line.hasPrefix("* ") { line.removeFirst(2) }
            guard line.count >= 12 else { continue }
            if line.count <= 240 {
                out.append(line)
                continue
            }
            // Split long lines at sentence boundaries.
            var current = ""
            for character in line {
                current.append(character)
                if ".;".contains(character), current.count > 40 {
                    out.append(current.trimmed)
                    current = ""
                }
            }
            let rest = current.trimmed
            if rest.count >= 12 { out.append(rest) }
        }
        return out
    }

    /// True when `sentence` holds a value of the given form.
    public static func matches(_ sentence: String, form: Reasoning.AnswerForm) -> Bool {
        let hasDigit = sentence.contains(where: \.isNumber)
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

    /// A crude English stem (plural and common suffixes), so "days" meets "day".
    static func stem(_ word: String) -> String {
        var w = word
        for suffix in ["ing", "ies", "es", "s", "ed"] where w.count > suffix.count + 3 && w.hasSuffix(suffix) {
            w.removeLast(suffix.count)
            if suffix == "ies" { w += "y" }
            break
        }
        return w
    }
}
