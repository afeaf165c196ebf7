import ConclaveCore
import ConclaveKnowledge

/// Lets through only the sentences of a generated answer that the validated facts support.
///
/// A sentence is released when every number in it occurs in the facts, when it carries at least
/// one word or number from the facts that the question did not already contain (it says something
/// the facts say), and when at most half of its content words come from neither the facts nor the
/// question. Citation markers (`[1]`) are ignored by the checks and kept in the text. Sentences are
/// judged as soon as they end, so the answer still streams, a sentence at a time.
struct GroundingFilter {
    private let factTerms: Set<String>
    private let factNumbers: Set<String>
    private let questionTerms: Set<String>
    private var pending = ""
    private(set) var released = ""
    private(set) var dropped: [String] = []

    init(facts: [String], question: String) {
        let factText = facts.joined(separator: " ")
        factTerms = Set(QueryTerms.extract(from: factText).map(FactExtractor.stem))
        factNumbers = Set(Self.numbers(in: factText))
        questionTerms = Set(QueryTerms.extract(from: question).map(FactExtractor.stem))
    }

    /// Adds generated text; returns the text of the sentences it completed that are grounded.
    mutating func append(_ text: String) -> String {
        pending += text
        var out = ""
        while let end = Self.sentenceEnd(in: pending) {
            let sentence = String(pending[..<end])
            pending = String(pending[end...])
            out += judge(sentence)
        }
        return out
    }

    /// Judges what is left at the end of generation.
    mutating func finish() -> String {
        let rest = pending
        pending = ""
        return rest.trimmed.isEmpty ? "" : judge(rest)
    }

    private mutating func judge(_ sentence: String) -> String {
        if isGrounded(sentence) {
            released += sentence
            return sentence
        }
        if !sentence.trimmed.isEmpty { dropped.append(sentence.trimmed) }
        return ""
    }

    func isGrounded(_ sentence: String) -> Bool {
        let text = Self.removingMarkers(sentence)
        let numbers = Self.numbers(in: text)
        guard numbers.allSatisfy(factNumbers.contains) else { return false }
        let terms = Set(QueryTerms.extract(from: text).filter { !$0.allSatisfy(\.isNumber) }.map(FactExtractor.stem))
        let informative = terms.intersection(factTerms).subtracting(questionTerms)
        let newNumbers = Set(numbers).subtracting(Self.numbers(in: questionTerms.joined(separator: " ")))
        guard !informative.isEmpty || !newNumbers.isEmpty else { return false }
        let unsupported = terms.subtracting(factTerms).subtracting(questionTerms)
        return terms.isEmpty || Double(unsupported.count) <= Double(terms.count) * 0.5
    }

    /// Index just past the first sentence end (`.`, `!`, `?` or a newline followed by space or end
    /// of a line), or nil when no sentence is complete yet. Decimal points are not sentence ends.
    static func sentenceEnd(in text: String) -> String.Index? {
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            let next = text.index(after: index)
            if c == "\n" { return next }
            if c == "." || c == "!" || c == "?" {
                guard next < text.endIndex else { return nil }  // wait: "3." may continue as "3.5"
                let after = text[next]
                if after == " " || after == "\n" { return next }
            }
            index = next
        }
        return nil
    }

    static func numbers(in text: String) -> [String] {
        var out: [String] = []
        var current = ""
        var previous: Character = " "
        for c in text {
            if c.isNumber || ((c == "." || c == ",") && !current.isEmpty) {
                current.append(c)
            } else {
                if !current.isEmpty { out.append(normalizeNumber(current)) }
                current = ""
            }
            previous = c
        }
        _ = previous
        if !current.isEmpty { out.append(normalizeNumber(current)) }
        return out.filter { !$0.isEmpty }
    }

    private static func normalizeNumber(_ raw: String) -> String {
        var text = raw
        while let last = text.last, last == "." || last == "," { text.removeLast() }
        return text.replacingOccurrences(of: ",", with: "")
    }

    static func removingMarkers(_ text: String) -> String {
        var out = ""
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == "[" {
                var j = text.index(after: index)
                while j < text.endIndex, text[j].isNumber { j = text.index(after: j) }
                if j < text.endIndex, text[j] == "]", j > text.index(after: index) {
                    index = text.index(after: j)
                    continue
                }
            }
            out.append(text[index])
            index = text.index(after: index)
        }
        return out
    }
}
