import ConclaveKnowledge

/// Names that a question refers to through a labelled field of a fact: "who is the primary
/// on-call engineer …, and what is *their* mobile number?" over `… Primary: Ana Voss; …`, or a
/// follow-up "what's *the secondary's* number?" after an answer stating `Secondary: Ben Okafor`.
/// The name found is the bridge to the fact that answers the rest (the person's contact row):
/// a second hop chosen by code.
public enum SlotBridge {
    /// The values of `Label: Value` fields of `text` (fields separated by `;`, as the extractor
    /// renders table rows and records) whose every label word the question uses and whose value
    /// is a name: two to four capitalised words without digits, not already in the question.
    public static func names(in text: String, labelledBy question: String) -> [String] {
        fields(in: text, labelledBy: question).map(\.name)
    }

    /// The question with the words of the labels it used to point at `names` left out, and the
    /// names added: what to search for the named thing with ("what's the secondary's mobile
    /// number?" → "what's the mobile number? Ben Okafor").
    public static func query(_ question: String, naming text: String) -> String? {
        let found = fields(in: text, labelledBy: question)
        guard !found.isEmpty else { return nil }
        let labelTerms = TermSet(found.map(\.label).joined(separator: " "))
        let words = question.split(separator: " ").filter { TermSet(String($0)).isDisjoint(with: labelTerms) }
        return (words + found.map { Substring($0.name) }).joined(separator: " ")
    }

    /// The labelled fields of `text` that `question` points at, as (label, name).
    static func fields(in text: String, labelledBy question: String) -> [(label: String, name: String)] {
        let asked = TermSet(question)
        let lowerQuestion = Lowercased(question)
        var names: [(label: String, name: String)] = []
        for field in text.split(separator: ";") {
            guard let colon = field.firstIndex(of: ":") else { continue }
            let label = field[..<colon].trimmingCharacters(in: .whitespaces)
            var value = field[field.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            // An answer's citation marker and final stop are not part of the value.
            if let marker = value.range(of: " [") { value = String(value[..<marker.lowerBound]) }
            while value.last == "." { value.removeLast() }
            let labelTerms = TermSet(label)
            guard !labelTerms.isEmpty, labelTerms.isSubset(of: asked), isName(value),
                  !lowerQuestion.contains(value.lowercased()), !names.contains(where: { $0.name == value }) else { continue }
            names.append((label, value))
        }
        return names
    }

    /// The part of a question after its last "and" that starts a second question ("…, and what
    /// is their mobile number?"), or nil when it asks one thing.
    public static func secondPart(of question: String) -> String? {
        let interrogatives: Set<String> = ["what", "how", "when", "who", "which", "where", "why", "is", "are", "does", "do", "can"]
        let words = question.split(whereSeparator: { $0 == " " || $0 == "," })
        guard let and = words.lastIndex(where: { $0.lowercased() == "and" }), and > 0, and + 1 < words.count,
              interrogatives.contains(words[and + 1].lowercased()) else { return nil }
        return words[(and + 1)...].joined(separator: " ")
    }

    static func isName(_ value: String) -> Bool {
        let words = value.split(separator: " ")
        guard (2...4).contains(words.count) else { return false }
        return words.allSatisfy { word in
            word.first?.isUppercase == true && word.allSatisfy { $0.isLetter || $0 == "-" || $0 == "'" }
        }
    }
}
