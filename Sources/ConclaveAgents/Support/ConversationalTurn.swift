import ConclaveCore
import Foundation

/// Recognises messages that ask the knowledge base nothing: greetings, thanks, questions about
/// the assistant itself, and requests outside an enterprise assistant's scope (creative writing,
/// jokes, the weather). Only a message that is *wholly* such a turn counts: "Hi, how many leave
/// days do I get?" is a question. Deliberately narrow: a question about the company that the
/// documents do not answer is not out of scope, it is "not found".
public enum ConversationalTurn {
    static let greetings = ["hi", "hello", "hey", "hiya", "howdy", "greetings", "good morning", "good afternoon",
                            "good evening", "good day", "morning", "hallo", "bonjour", "hoi"]
    static let thanks = ["thanks", "thank you", "thx", "ty", "cheers", "many thanks", "thanks a lot", "thank you very much",
                         "thanks so much", "thank you so much", "great thanks", "ok thanks", "okay thanks", "perfect thanks",
                         "great thank you", "ok thank you"]
    /// Words that may follow a greeting or thanks without making it a question.
    static let fillers: Set<String> = ["there", "all", "everyone", "team", "assistant", "conclave", "again", "bot", "folks", "for", "that",
                                       "the", "help", "your", "answer", "very", "much", "so", "a", "lot"]
    static let capabilities = ["what can you do", "who are you", "what are you", "how can you help", "what can you help with",
                               "what can you help me with", "what do you do", "help", "how do i use you", "what can i ask you",
                               "what can i ask", "how does this work"]
    static let creativeVerbs: Set<String> = ["write", "compose", "tell", "make", "sing", "create", "generate", "give"]
    static let creativeThings: Set<String> = ["poem", "joke", "jokes", "song", "story", "haiku", "limerick", "rap", "riddle", "sonnet", "lyrics"]

    /// The kind of conversational turn `message` is, or nil for a question to answer from the sources.
    public static func classify(_ message: String) -> Plan.Conversational? {
        let words = message.lowercased()
            .split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "'") })
            .map(String.init)
        guard !words.isEmpty, words.count <= 12 else { return nil }
        let text = words.joined(separator: " ")
        func isPhrase(_ phrases: [String]) -> Bool {
            phrases.contains { phrase in
                guard text == phrase || text.hasPrefix(phrase + " ") else { return false }
                let rest = words.dropFirst(phrase.split(separator: " ").count)
                return rest.allSatisfy(fillers.contains)
            }
        }
        if isPhrase(thanks) { return .thanks }
        if isPhrase(greetings) { return .greeting }
        // A greeting followed by "what can you do?" is a question about the assistant.
        let afterGreeting = greetings.first { text.hasPrefix($0 + " ") }
            .map { String(text.dropFirst($0.count + 1)) } ?? text
        let stripped = afterGreeting.split(separator: " ").filter { !fillers.contains(String($0)) || $0 == "help" }.joined(separator: " ")
        if capabilities.contains(afterGreeting) || capabilities.contains(stripped) { return .capabilities }
        // "Write me a poem about pallets", "tell me a funny joke": an imperative asking for a piece
        // of creative text ("give me the story behind the project" asks about the project).
        if let verb = words.first, creativeVerbs.contains(verb),
           let thing = words.prefix(6).firstIndex(where: creativeThings.contains), thing >= 2,
           ["a", "an", "some", "another"].contains(words[thing - 1]) || ["a", "an", "some", "another"].contains(words[thing - 2]) {
            return .outOfScope
        }
        if words.contains("weather"), words.contains(where: { ["today", "tomorrow", "forecast", "outside", "weekend"].contains($0) }) {
            return .outOfScope
        }
        return nil
    }
}
