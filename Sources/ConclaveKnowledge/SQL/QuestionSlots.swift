import Foundation

/// A question prepared for matching against templates: lower-cased words, and the intents its
/// wording signals. Everything here reads the question's words generically (numbers, periods,
/// intent words); nothing names a template or a dataset.
public struct QuestionText: Sendable {
    /// The original question.
    public let original: String
    /// Words, lower-cased, alphanumeric runs only.
    public let words: [String]
    /// Words of the original question as typed (same positions as `words`).
    let typed: [String]
    /// " w1 w2 … " for phrase search.
    let padded: String

    public init(_ question: String) {
        original = question
        var typed: [String] = []
        var current = ""
        for scalar in question.unicodeScalars {
            if CharacterSet.alphanumerics.contains(scalar) {
                current.unicodeScalars.append(scalar)
            } else if !current.isEmpty {
                typed.append(current)
                current = ""
            }
        }
        if !current.isEmpty { typed.append(current) }
        self.typed = typed
        words = typed.map { $0.lowercased() }
        padded = " " + words.joined(separator: " ") + " "
    }

    /// Normalises a phrase (a value, a subject word) the way questions are.
    static func phrase(_ text: String) -> [String] {
        QuestionText(text.replacingOccurrences(of: "_", with: " ")).words
    }

    /// Word positions where `phrase` (already normalised) starts.
    func occurrences(of phrase: [String]) -> [Int] {
        guard !phrase.isEmpty, phrase.count <= words.count else { return [] }
        var out: [Int] = []
        for start in 0...(words.count - phrase.count) where words[start] == phrase[0] {
            if Array(words[start..<(start + phrase.count)]) == phrase { out.append(start) }
        }
        return out
    }

    /// True when any of `phrases` occurs.
    func containsAny(_ phrases: [String]) -> Bool {
        phrases.contains { !occurrences(of: Self.phrase($0)).isEmpty }
    }

    /// Number of `phrases` that occur.
    func countOf(_ phrases: [String]) -> Int {
        phrases.filter { !occurrences(of: Self.phrase($0)).isEmpty }.count
    }

    // MARK: Intents

    static let auxiliaries: Set<String> = ["do", "does", "did", "is", "are", "was", "were", "have", "has", "had", "can", "could",
                                            "will", "would", "should", "must", "may", "might", "shall", "get", "gets"]
    static let totalWords = ["total", "sum", "combined", "altogether", "overall", "in all", "in total"]
    static let averageWords = ["average", "mean", "avg", "typical"]
    static let rankWords = ["most", "highest", "largest", "biggest", "top", "lowest", "fewest", "least", "smallest",
                            "maximum", "minimum", "greatest", "heaviest", "lightest", "best", "worst"]
    static let listWords = ["list", "which", "who", "name", "names", "show", "what are"]
    static let lookupWords = ["what is", "what s", "whats", "what was", "give me", "tell me", "show me"]
    static let dataWords = ["database", "records", "record", "data", "system"]

    /// The intents the question's wording signals for a template about `subject`.
    public func intents(subject: [String]) -> Set<QueryTemplate.Intent> {
        var out = Set<QueryTemplate.Intent>()
        let subjects = subject.map(Self.phrase)
        // "how many <…up to 3 words…> <subject>" or "number of <…> <subject>".
        for (lead, reach) in [(["how", "many"], 4), (["number", "of"], 3), (["count", "of"], 3), (["count"], 2)] {
            for start in occurrences(of: lead) {
                let from = start + lead.count
                // The counted noun phrase ends at the first verb: "how many days do tickets…" counts days.
                var window = Array(words[from..<min(words.count, from + reach)])
                if let verb = window.firstIndex(where: Self.auxiliaries.contains) { window = Array(window[..<verb]) }
                if subjects.contains(where: { s in !s.isEmpty && (0...max(0, window.count - s.count)).contains { i in
                    i + s.count <= window.count && Array(window[i..<(i + s.count)]) == s } }) {
                    out.insert(.count)
                }
            }
        }
        if containsAny(Self.totalWords) { out.insert(.total) }
        if containsAny(Self.averageWords) { out.insert(.average) }
        if containsAny(Self.rankWords) { out.insert(.rank) }
        if containsAny(Self.listWords) { out.insert(.list) }
        if containsAny(Self.lookupWords) { out.insert(.lookup) }
        return out
    }

    /// True when the question points at stored records ("in the database").
    public var mentionsData: Bool { containsAny(Self.dataWords) }

    // MARK: Numbers and periods

    static let numberWords = ["one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                              "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20]

    /// A small count the question asks for ("three customers", "top 5"): number words, or a
    /// one- or two-digit number that is not part of a date.
    public var requestedCount: Int? {
        for (i, word) in words.enumerated() {
            if let n = Self.numberWords[word] { return n }
            if word.count <= 2, let n = Int(word), n > 0 {
                let next = i + 1 < words.count ? words[i + 1] : ""
                let previous = i > 0 ? words[i - 1] : ""
                if Self.months[next] != nil || Self.months[previous] != nil || previous == "q" { continue }
                return n
            }
        }
        return nil
    }

    static let months: [String: Int] = [
        "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
        "september": 9, "october": 10, "november": 11, "december": 12,
        "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
    ]
    static let ordinals = ["first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4]

    /// The first period the question names, as inclusive ISO dates: "between 2025-01-01 and
    /// 2025-03-31", "Q3 2025", "third quarter of 2025", "July to September 2025", "September 2025",
    /// "in 2024".
    public var period: (from: String, to: String)? {
        if let explicit = isoRange { return explicit }
        func year(_ i: Int) -> Int? {
            guard i >= 0, i < words.count, words[i].count == 4, let y = Int(words[i]), (1900...2199).contains(y) else { return nil }
            return y
        }
        for i in words.indices {
            // Q3 2025 / q3 of 2025
            if words[i].count == 2, words[i].hasPrefix("q"), let q = Int(words[i].dropFirst()), (1...4).contains(q) {
                if let y = year(i + 1) ?? year(i + 2) { return Self.quarter(q, y) }
            }
            if let q = Self.ordinals[words[i]], i + 1 < words.count, words[i + 1] == "quarter" {
                if let y = year(i + 2) ?? year(i + 3) { return Self.quarter(q, y) }
            }
            // July to September 2025 / between July and September 2025
            if let m1 = Self.months[words[i]], words[i] != "may" || year(i + 1) != nil || (i + 2 < words.count && Self.months[words[i + 2]] != nil) {
                if i + 2 < words.count, ["to", "through", "until", "and"].contains(words[i + 1]), let m2 = Self.months[words[i + 2]],
                   let y = year(i + 3), m2 >= m1 {
                    return (Self.iso(y, m1, 1), Self.iso(y, m2, Self.daysIn(m2, y)))
                }
                if let y = year(i + 1) ?? (i + 2 < words.count && words[i + 1] == "of" ? year(i + 2) : nil) {
                    return (Self.iso(y, m1, 1), Self.iso(y, m1, Self.daysIn(m1, y)))
                }
            }
        }
        for i in words.indices where ["in", "during", "for", "of", "year"].contains(words[i]) {
            if let y = year(i + 1) { return (Self.iso(y, 1, 1), Self.iso(y, 12, 31)) }
        }
        return nil
    }

    private var isoRange: (from: String, to: String)? {
        let pattern = #"(\d{4}-\d{2}-\d{2})\s*(?:and|to|until|through|-|–)\s*(\d{4}-\d{2}-\d{2})"#
        guard let regex = try? NSRegularExpression(pattern: pattern),
              let match = regex.firstMatch(in: original, range: NSRange(original.startIndex..., in: original)),
              let a = Range(match.range(at: 1), in: original), let b = Range(match.range(at: 2), in: original) else { return nil }
        let from = String(original[a]), to = String(original[b])
        return from <= to ? (from, to) : (to, from)
    }

    static func quarter(_ q: Int, _ y: Int) -> (from: String, to: String) {
        let first = (q - 1) * 3 + 1
        return (iso(y, first, 1), iso(y, first + 2, daysIn(first + 2, y)))
    }

    static func daysIn(_ month: Int, _ year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func iso(_ y: Int, _ m: Int, _ d: Int) -> String {
        String(format: "%04d-%02d-%02d", y, m, d)
    }

    /// The word as typed at `index` (for case-sensitive checks of short values such as "IT").
    func typedWord(_ index: Int) -> String { typed[index] }
}
