import ConclaveCore
import Foundation

/// Output rules: sentences of an answer that match a deny pattern are replaced before the client
/// sees them. The filter releases text a sentence at a time (only when rules are configured).
struct OutputRuleFilter: OutputStreamFilter {
    var inner: any OutputStreamFilter
    let patterns: [NSRegularExpressionBox]
    private var pending = ""
    static let replacement = "[removed by the platform's output policy]"

    init(inner: any OutputStreamFilter, patterns: [NSRegularExpressionBox]) {
        self.inner = inner
        self.patterns = patterns
    }

    mutating func append(_ text: String) -> String {
        pending += inner.append(text)
        return releaseCompleteSentences()
    }

    mutating func finish() -> String {
        pending += inner.finish()
        let rest = pending
        pending = ""
        return judge(rest)
    }

    private mutating func releaseCompleteSentences() -> String {
        var out = ""
        while let end = Self.sentenceEnd(pending) {
            let sentence = String(pending[..<end])
            pending = String(pending[end...])
            out += judge(sentence)
        }
        return out
    }

    private func judge(_ sentence: String) -> String {
        let range = NSRange(sentence.startIndex..., in: sentence)
        guard patterns.contains(where: { $0.regex.firstMatch(in: sentence, range: range) != nil }) else { return sentence }
        let trailing = sentence.hasSuffix(" ") || sentence.hasSuffix("\n") ? String(sentence.last!) : ""
        return Self.replacement + trailing
    }

    /// Index just past the first sentence end (`.`, `!`, `?` followed by a space, or a newline).
    static func sentenceEnd(_ text: String) -> String.Index? {
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            let next = text.index(after: index)
            if c == "\n" { return next }
            if c == "." || c == "!" || c == "?", next < text.endIndex, text[next] == " " { return text.index(after: next) }
            index = next
        }
        return nil
    }
}

/// A compiled case-insensitive regular expression that can cross concurrency domains (it is
/// immutable once built).
struct NSRegularExpressionBox: @unchecked Sendable {
    let regex: NSRegularExpression

    init?(_ pattern: String) {
        guard let regex = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]) else { return nil }
        self.regex = regex
    }
}
