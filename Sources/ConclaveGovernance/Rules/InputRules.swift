import ConclaveCore
import Foundation

/// The verdict of the input rules on a question.
public enum InputVerdict: Sendable, Hashable {
    case allowed
    /// Refused politely (the answer says so); the rule that matched.
    case refused(rule: String)
}

extension AccessPolicy.InputRules {
    /// Checks a question: too long throws `invalidRequest` (400); a deny pattern or topic refuses.
    public func check(_ question: String) throws -> InputVerdict {
        if maxCharacters > 0, question.count > maxCharacters {
            throw ConclaveError(.invalidRequest, "The message is longer than \(maxCharacters) characters.", parameter: "messages")
        }
        let range = NSRange(question.startIndex..., in: question)
        for pattern in denyPatterns {
            if let regex = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]),
               regex.firstMatch(in: question, range: range) != nil {
                return .refused(rule: "rules.input.deny_patterns")
            }
        }
        let lower = question.lowercased()
        for (topic, words) in denyTopics.sorted(by: { $0.key < $1.key }) where !words.isEmpty && words.allSatisfy({ lower.contains($0.lowercased()) }) {
            return .refused(rule: "rules.input.deny_topics.\(topic)")
        }
        return .allowed
    }
}
