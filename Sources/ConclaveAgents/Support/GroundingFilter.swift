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
    private let factTerms: TermSet
    private let factNumbers: Set<String>
    private let questionTerms: TermSet
    private let questionNumbers: Set<String>
    private var pending: [UInt8] = []
    private var scanFrom = 0
    private(set) var released = ""
    private(set) var dropped: [String] = []

    init(facts: [String], question: String) {
        let factText = facts.joined(separator: " ")
        factTerms = TermSet(factText)
        factNumbers = Set(Self.numbers(in: factText))
        questionTerms = TermSet(question)
        questionNumbers = Set(Self.numbers(in: question))
    }

    /// Adds generated text; returns the text of the sentences it completed that are grounded.
    mutating func append(_ text: String) -> String {
        pending.append(contentsOf: text.utf8)
        var out = ""
        // Only the new bytes (and the one before them) can complete a sentence.
        while let end = Self.sentenceEnd(in: pending, from: scanFrom) {
            let sentence = String(decoding: pending[..<end], as: UTF8.self)
            pending.removeFirst(end)
            scanFrom = 0
            out += judge(sentence)
        }
        scanFrom = max(0, pending.count - 1)
        return out
    }

    /// Judges what is left at the end of generation.
    mutating func finish() -> String {
        let rest = String(decoding: pending, as: UTF8.self)
        pending = []
        scanFrom = 0
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
        let terms = TermSet(text, includeNumbers: false)
        let informative = terms.intersection(factTerms).subtracting(questionTerms)
        let newNumbers = numbers.filter { !questionNumbers.contains($0) }
        guard !informative.isEmpty || !newNumbers.isEmpty else { return false }
        let unsupported = terms.subtracting(factTerms).subtracting(questionTerms)
        return terms.isEmpty || Double(unsupported.count) <= Double(terms.count) * 0.5
    }

    /// Index just past the first sentence end at or after `start`: a newline, or `.`, `!` or `?`
    /// followed by a space or newline (so decimal points are not sentence ends); nil when no
    /// sentence is complete yet.
    static func sentenceEnd(in bytes: [UInt8], from start: Int) -> Int? {
        var i = start
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\n") { return i + 1 }
            if b == UInt8(ascii: ".") || b == UInt8(ascii: "!") || b == UInt8(ascii: "?"), i + 1 < bytes.count,
               bytes[i + 1] == UInt8(ascii: " ") || bytes[i + 1] == UInt8(ascii: "\n") {
                return i + 1
            }
            i += 1
        }
        return nil
    }

    /// The numbers in `text` (ASCII digits with inner `.` or `,`), thousands separators removed.
    static func numbers(in text: String) -> [String] {
        var out: [String] = []
        var current: [UInt8] = []
        func flush() {
            while let last = current.last, last == UInt8(ascii: ".") || last == UInt8(ascii: ",") { current.removeLast() }
            current.removeAll { $0 == UInt8(ascii: ",") }
            if !current.isEmpty { out.append(String(decoding: current, as: UTF8.self)) }
            current.removeAll(keepingCapacity: true)
        }
        for b in text.utf8 {
            if (b >= 0x30 && b <= 0x39) || ((b == UInt8(ascii: ".") || b == UInt8(ascii: ",")) && !current.isEmpty) {
                current.append(b)
            } else if !current.isEmpty {
                flush()
            }
        }
        flush()
        return out
    }

    /// `text` without citation markers such as `[1]`.
    static func removingMarkers(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "[") {
                var j = i + 1
                while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39 { j += 1 }
                if j > i + 1, j < bytes.count, bytes[j] == UInt8(ascii: "]") {
                    i = j + 1
                    continue
                }
            }
            out.append(bytes[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
