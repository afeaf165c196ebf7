import ConclaveKnowledge
import Foundation

/// Amounts a question states ("a purchase worth EUR 60,000", "12,000 pallets a year", "above two
/// million euros") and the ranges that table rows state in their first cell ("EUR 25,000 - 99,999",
/// "Below EUR 5,000", "25,000 or more"), so that the row whose band holds the question's amount
/// can be chosen by code: a lookup in a banded table is a computation, not a matter of shared words.
public enum Quantities {
    /// A closed or half-open band of values.
    public struct Band: Sendable, Hashable {
        public var lower: Double
        public var upper: Double

        /// True when `value` lies in the band (bounds included).
        public func contains(_ value: Double) -> Bool { value >= lower && value <= upper }
    }

    /// The amounts of `text` worth matching against bands: numbers of at least three digits or
    /// with a scale word ("2 million", "two million"), that are neither years nor identifiers
    /// ("ticket 70220", "shipment 101489": a number right after a noun names a record, it does
    /// not measure anything).
    public static func amounts(in text: String) -> [Double] {
        readings(in: text).filter { reading in
            reading.scaled || reading.digits >= 3 && !reading.isYear && !identifierNouns.contains(reading.previous)
        }.map(\.value)
    }

    /// The amounts `text` states with a scale word ("two million euros", "EUR 2.5 million"),
    /// written out in digits with thousands separators ("2,000,000", "2,500,000"), as documents
    /// write them in tables; empty when it states none. A search for the question then finds the
    /// passages that write the amount in digits.
    public static func scaledAmountsInDigits(_ text: String) -> [String] {
        readings(in: text).filter { $0.scaled && $0.value >= 1_000 && $0.value == $0.value.rounded() && $0.value < 1e15 }
            .map { DatabaseConnector.grouped(String(Int($0.value))) }
    }

    /// A number as `text` states it, with the scale word after it applied ("2 million", "two
    /// million": a number word counts only before a scale word).
    private struct Reading {
        var value: Double
        /// True when a scale word followed it.
        var scaled: Bool
        /// The digits it was written with; 0 for a number word.
        var digits: Int
        /// Four digits without a separator between 1900 and 2100, unscaled.
        var isYear: Bool
        /// The word before it, lowercased; empty at the start of the text.
        var previous: String
    }

    /// The numbers `text` states, in order.
    private static func readings(in text: String) -> [Reading] {
        let tokens = tokenize(text)
        var out: [Reading] = []
        var index = 0
        while index < tokens.count {
            let start = index
            let token = tokens[index]
            index += 1
            var value: Double?
            var digits = 0
            if let number = number(token) {
                value = number
                digits = token.filter(\.isNumber).count
            } else if let word = numberWords[token.lowercased()], index < tokens.count, scales[tokens[index].lowercased()] != nil {
                value = word
            }
            guard var amount = value else { continue }
            var scaled = false
            if index < tokens.count, let scale = scales[tokens[index].lowercased()] {
                amount *= scale
                scaled = true
                index += 1
            }
            let isYear = !scaled && digits == 4 && (1900...2100).contains(amount) && !token.contains(",")
            out.append(Reading(value: amount, scaled: scaled, digits: digits, isYear: isYear,
                               previous: start > 0 ? tokens[start - 1].lowercased() : ""))
        }
        return out
    }

    /// The band the first field of a table-row fact states (`Header: <band>; …`), or nil when the
    /// fact is not a row or its first value is not a range.
    public static func band(ofRow fact: String) -> Band? {
        guard let colon = fact.firstIndex(of: ":") else { return nil }
        let end = fact[colon...].firstIndex(of: ";") ?? fact.endIndex
        let value = fact[fact.index(after: colon)..<end].lowercased()
        return band(value)
    }

    /// The band a phrase states: "25,000 - 99,999", "eur 5,000 to 24,999", "below eur 5,000",
    /// "up to 499", "25,000 or more", "eur 2,000,000 and above", "more than 100".
    static func band(_ phrase: String) -> Band? {
        let tokens = tokenize(phrase)
        let numbers = tokens.enumerated().compactMap { item in number(item.element).map { (offset: item.offset, value: $0) } }
        guard let first = numbers.first else { return nil }
        let words = Set(tokens.map { $0.lowercased() })
        if numbers.count >= 2, numbers[1].offset - first.offset <= 3, numbers[1].value >= first.value {
            let between = tokens[(first.offset + 1)..<numbers[1].offset].map { $0.lowercased() }
            if between.contains("-") || between.contains("–") || between.contains("to") {
                return Band(lower: first.value, upper: numbers[1].value)
            }
        }
        guard numbers.count == 1 else { return nil }
        if !words.isDisjoint(with: ["below", "under", "less", "fewer", "lower"]) {
            return Band(lower: -.infinity, upper: first.value.nextDown)
        }
        if words.contains("up") && words.contains("to") { return Band(lower: -.infinity, upper: first.value) }
        if !words.isDisjoint(with: ["above", "more", "over", "higher", "greater", "exceeding", "plus"]) || phrase.contains("+") {
            let inclusive = words.contains("or") || words.contains("and") || words.contains("from")
            return Band(lower: inclusive ? first.value : first.value.nextUp, upper: .infinity)
        }
        return nil
    }

    /// A number written with digits, thousands separators and an optional decimal part.
    static func number(_ token: String) -> Double? {
        guard let first = token.first, first.isNumber else { return nil }
        guard token.allSatisfy({ $0.isNumber || $0 == "," || $0 == "." }) else { return nil }
        let parts = token.split(separator: ",", omittingEmptySubsequences: false)
        if parts.count > 1 {
            // "60,000" and "2,000,000", not a list "3,4".
            guard parts.dropFirst().allSatisfy({ $0.prefix(while: \.isNumber).count == 3 }) else { return nil }
        }
        return Double(token.replacingOccurrences(of: ",", with: ""))
    }

    /// Words, numbers (with their separators) and dashes, in order.
    static func tokenize(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        func flush() {
            // A trailing separator belongs to the sentence, not to the number.
            while let last = current.last, last == "," || last == "." { current.removeLast() }
            if !current.isEmpty { tokens.append(current) }
            current = ""
        }
        for character in text {
            if character.isLetter || character.isNumber {
                current.append(character)
            } else if (character == "," || character == "."), current.first?.isNumber == true {
                current.append(character)
            } else {
                flush()
                if character == "-" || character == "–" || character == "+" { tokens.append(String(character)) }
            }
        }
        flush()
        return tokens
    }

    /// True when `text` states a number: a digit, or a number word from "one" to "twelve"
    /// ("two further months", "three written quotes").
    static func statesNumber(_ text: String) -> Bool {
        if text.utf8.contains(where: { $0 >= 0x30 && $0 <= 0x39 }) { return true }
        let words: Set<String> = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
        return text.lowercased().split(whereSeparator: { !$0.isLetter }).contains { words.contains(String($0)) }
    }

    static let scales: [String: Double] = ["thousand": 1_000, "million": 1_000_000, "millions": 1_000_000, "billion": 1_000_000_000]
    static let numberWords: [String: Double] = ["one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                                                "eight": 8, "nine": 9, "ten": 10, "a": 1, "half": 0.5]
    /// Nouns after which a number is a record's identifier rather than an amount.
    static let identifierNouns: Set<String> = ["ticket", "tickets", "shipment", "shipments", "invoice", "invoices", "order",
                                               "orders", "case", "number", "no", "id", "account", "employee", "customer",
                                               "vehicle", "incident", "room", "week", "grade", "version", "page", "section"]
}
