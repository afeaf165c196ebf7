import ConclaveCore
import Foundation

/// A span of personal data found in a text.
public struct PIIMatch: Sendable, Hashable {
    /// PII type as the policy names it: `email`, `private_contact`, `phone`, `iban`, `card`,
    /// `national_id`, `date_of_birth`, `ip_address`, `salary`, `person`.
    public var type: String
    /// UTF-8 byte range in the text.
    public var range: Range<Int>
    /// The matched text.
    public var value: String
}

/// Finds personal data in text, on UTF-8 bytes. Checksummed identifiers are validated (IBAN
/// mod-97, payment cards Luhn, Dutch BSN eleven-test), so a random number is not taken for one;
/// formats without a public checksum in the dataset (Polish/German 11-digit ids, French NIR,
/// Belgian national register, Italian codice fiscale) are matched by their exact shape.
public struct PIIDetector: Sendable {
    /// E-mail domains that are work addresses (everything else is a private address).
    public var workDomains: [String]
    /// Full names of people (for example the employee directory), matched case-sensitively.
    public var names: [String]

    public init(workDomains: [String] = [], names: [String] = []) {
        self.workDomains = workDomains.map { $0.lowercased() }
        self.names = names.filter { $0.utf8.count >= 5 }
    }

    /// Every match, sorted by position, overlaps resolved in favour of the earlier, longer one.
    public func matches(in text: String) -> [PIIMatch] {
        matches(in: Array(text.utf8))
    }

    /// Every match in UTF-8 `bytes` (for callers that already hold bytes).
    public func matches(in bytes: [UInt8]) -> [PIIMatch] {
        let lower = ByteSearch.asciiLowercased(bytes)
        var found: [PIIMatch] = []
        func add(_ type: String, _ range: Range<Int>) {
            found.append(PIIMatch(type: type, range: range, value: String(decoding: bytes[range], as: UTF8.self)))
        }
        emails(bytes, add)
        ibans(bytes, add)
        digitRuns(bytes, add)
        codiceFiscale(bytes, add)
        datesOfBirth(bytes, lower, add)
        ipAddresses(bytes, add)
        salaries(bytes, lower, add)
        for name in names {
            let needle = Array(name.utf8)
            var from = 0
            while let hit = Self.find(needle, in: bytes, from: from) {
                let end = hit + needle.count
                if (hit == 0 || !Self.isWordByte(bytes[hit - 1])) && (end == bytes.count || !Self.isWordByte(bytes[end])) {
                    add("person", hit..<end)
                }
                from = end
            }
        }
        found.sort { $0.range.lowerBound != $1.range.lowerBound ? $0.range.lowerBound < $1.range.lowerBound : $0.range.count > $1.range.count }
        var resolved: [PIIMatch] = []
        for match in found where resolved.last.map({ match.range.lowerBound >= $0.range.upperBound }) ?? true {
            resolved.append(match)
        }
        return resolved
    }

    // MARK: - Detectors

    private func emails(_ b: [UInt8], _ add: (String, Range<Int>) -> Void) {
        for at in b.indices where b[at] == UInt8(ascii: "@") {
            var start = at
            while start > 0, Self.isLocalByte(b[start - 1]) { start -= 1 }
            var end = at + 1
            while end < b.count, Self.isDomainByte(b[end]) { end += 1 }
            while end > at + 1, b[end - 1] == UInt8(ascii: ".") || b[end - 1] == UInt8(ascii: "-") { end -= 1 }
            guard start < at, end > at + 1 else { continue }
            let domain = String(decoding: b[(at + 1)..<end], as: UTF8.self).lowercased()
            guard domain.contains("."), !domain.hasSuffix(".") else { continue }
            let work = workDomains.contains { domain == $0 || domain.hasSuffix("." + $0) }
            add(work ? "email" : "private_contact", start..<end)
        }
    }

    private func ibans(_ b: [UInt8], _ add: (String, Range<Int>) -> Void) {
        var i = 0
        while i + 15 <= b.count {
            guard Self.isUpper(b[i]), Self.isUpper(b[i + 1]), Self.isDigit(b[i + 2]), Self.isDigit(b[i + 3]),
                  i == 0 || !Self.isWordByte(b[i - 1]) else { i += 1; continue }
            // Country, check digits, then groups of letters and digits, optionally space-separated.
            var end = i + 4
            var compact = Array(b[i..<(i + 4)])
            var j = end
            while j < b.count, compact.count < 34 {
                if b[j] == UInt8(ascii: " "), j + 1 < b.count, Self.isAlnumUpper(b[j + 1]) { j += 1; continue }
                guard Self.isAlnumUpper(b[j]) else { break }
                compact.append(b[j])
                j += 1
                end = j
            }
            if compact.count >= 15, Self.validIBAN(compact) {
                add("iban", i..<end)
                i = end
            } else {
                i += 1
            }
        }
    }

    /// Phone numbers, payment cards and numeric national ids: runs of digits joined by spaces,
    /// dashes, dots or parentheses.
    private func digitRuns(_ b: [UInt8], _ add: (String, Range<Int>) -> Void) {
        var i = 0
        while i < b.count {
            let plus = b[i] == UInt8(ascii: "+") && i + 1 < b.count && Self.isDigit(b[i + 1])
            guard plus || Self.isDigit(b[i]), i == 0 || !(Self.isWordByte(b[i - 1]) || b[i - 1] == UInt8(ascii: ".")
                                                            || b[i - 1] == UInt8(ascii: ",")) else { i += 1; continue }
            var j = plus ? i + 1 : i
            var end = j
            var digits: [UInt8] = []
            var separators = 0
            while j < b.count {
                if Self.isDigit(b[j]) {
                    digits.append(b[j])
                    j += 1
                    end = j
                } else if [UInt8(ascii: " "), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "("), UInt8(ascii: ")")].contains(b[j]),
                          j + 1 < b.count, Self.isDigit(b[j + 1]) || (b[j] == UInt8(ascii: " ") && b[j + 1] == UInt8(ascii: "(")) {
                    separators += 1
                    j += 1
                } else {
                    break
                }
            }
            guard end == b.count || !Self.isWordByte(b[end]) else { i = max(end, i + 1); continue }
            let shape = String(decoding: b[i..<end], as: UTF8.self)
            if let type = classify(shape: shape, digits: digits, plus: plus, separators: separators) {
                add(type, i..<end)
            }
            i = max(end, i + 1)
        }
    }

    private func classify(shape: String, digits: [UInt8], plus: Bool, separators: Int) -> String? {
        let n = digits.count
        if plus { return (8...15).contains(n) ? "phone" : nil }
        // National id shapes of the dataset.
        if separators == 0 && n == 9 && Self.elevenTest(digits) { return "national_id" }
        if separators == 0 && n == 11 { return "national_id" }
        if Self.matches(shape, "9999999999999 99") { return "national_id" }
        if Self.matches(shape, "99.99.99-999.99") { return "national_id" }
        if (13...19).contains(n) && Self.luhn(digits) && (separators == 0 || separators >= 2) { return "card" }
        // National phone formats: a leading 0 and 9 to 11 digits, with separators.
        if digits.first == UInt8(ascii: "0") && (9...11).contains(n) && separators >= 1 { return "phone" }
        return nil
    }

    private func codiceFiscale(_ b: [UInt8], _ add: (String, Range<Int>) -> Void) {
        // LLLLLL99L99L999L
        let pattern: [Bool] = [true, true, true, true, true, true, false, false, true, false, false, true, false, false, false, true]
        guard b.count >= 16 else { return }
        for i in 0...(b.count - 16) where (i == 0 || !Self.isWordByte(b[i - 1])) && (i + 16 == b.count || !Self.isWordByte(b[i + 16])) {
            var ok = true
            for (k, letter) in pattern.enumerated() where letter ? !Self.isUpper(b[i + k]) : !Self.isDigit(b[i + k]) {
                ok = false
                break
            }
            if ok { add("national_id", i..<(i + 16)) }
        }
    }

    /// A date within 40 bytes after "date of birth", "born" or "DOB".
    private func datesOfBirth(_ b: [UInt8], _ lower: [UInt8], _ add: (String, Range<Int>) -> Void) {
        for cue in ["date of birth", "born on", "born", "dob"] {
            let needle = Array(cue.utf8)
            var from = 0
            while let hit = Self.find(needle, in: lower, from: from) {
                from = hit + needle.count
                guard hit == 0 || !Self.isWordByte(lower[hit - 1]) else { continue }
                if let date = Self.date(in: b, from: from, within: 40) { add("date_of_birth", date) }
            }
        }
    }

    private func ipAddresses(_ b: [UInt8], _ add: (String, Range<Int>) -> Void) {
        var i = 0
        while i < b.count {
            guard Self.isDigit(b[i]), i == 0 || !(Self.isWordByte(b[i - 1]) || b[i - 1] == UInt8(ascii: ".")) else { i += 1; continue }
            var j = i
            var parts = 0
            var valid = true
            while parts < 4 {
                var value = 0
                var length = 0
                while j < b.count, Self.isDigit(b[j]), length < 4 {
                    value = value * 10 + Int(b[j] - 0x30)
                    j += 1
                    length += 1
                }
                guard length > 0, length <= 3, value <= 255 else { valid = false; break }
                parts += 1
                if parts < 4 {
                    guard j < b.count, b[j] == UInt8(ascii: "."), j + 1 < b.count, Self.isDigit(b[j + 1]) else { valid = false; break }
                    j += 1
                }
            }
            if valid, parts == 4, j == b.count || !(Self.isWordByte(b[j]) || (b[j] == UInt8(ascii: ".") && j + 1 < b.count && Self.isDigit(b[j + 1]))) {
                add("ip_address", i..<j)
                i = j
            } else {
                i += 1
            }
        }
    }

    /// An amount within 40 bytes after "salary" (the word, any case).
    private func salaries(_ b: [UInt8], _ lower: [UInt8], _ add: (String, Range<Int>) -> Void) {
        let needle = Array("salary".utf8)
        var from = 0
        while let hit = Self.find(needle, in: lower, from: from) {
            from = hit + needle.count
            var j = from
            let limit = min(b.count, from + 40)
            while j < limit, !Self.isDigit(b[j]), b[j] != UInt8(ascii: "\n") { j += 1 }
            guard j < limit, Self.isDigit(b[j]) else { continue }
            var start = j
            // Include a currency just before the amount.
            for currency in ["EUR ", "€", "€ "] {
                let c = Array(currency.utf8)
                if start >= c.count, Array(b[(start - c.count)..<start]) == c { start -= c.count; break }
            }
            var end = j
            while end < b.count, Self.isDigit(b[end]) || ((b[end] == UInt8(ascii: ",") || b[end] == UInt8(ascii: "."))
                                                           && end + 1 < b.count && Self.isDigit(b[end + 1])) {
                end += 1
            }
            if end - j >= 4 { add("salary", start..<end) }
        }
    }

    // MARK: - Checks

    static func validIBAN(_ compact: [UInt8]) -> Bool {
        let rearranged = Array(compact[4...]) + Array(compact[..<4])
        var remainder = 0
        for byte in rearranged {
            if isDigit(byte) {
                remainder = (remainder * 10 + Int(byte - 0x30)) % 97
            } else {
                let value = Int(byte - UInt8(ascii: "A")) + 10
                remainder = (remainder * 100 + value) % 97
            }
        }
        return remainder == 1
    }

    static func luhn(_ digits: [UInt8]) -> Bool {
        var sum = 0
        for (index, byte) in digits.reversed().enumerated() {
            var d = Int(byte - 0x30)
            if index % 2 == 1 {
                d *= 2
                if d > 9 { d -= 9 }
            }
            sum += d
        }
        return sum % 10 == 0
    }

    /// The Dutch BSN eleven-test.
    static func elevenTest(_ digits: [UInt8]) -> Bool {
        guard digits.count == 9 else { return false }
        var sum = 0
        for i in 0..<8 { sum += Int(digits[i] - 0x30) * (9 - i) }
        sum -= Int(digits[8] - 0x30)
        return sum % 11 == 0 && sum != 0
    }

    static func matches(_ text: String, _ shape: String) -> Bool {
        let a = Array(text.utf8), s = Array(shape.utf8)
        guard a.count == s.count else { return false }
        for (x, y) in zip(a, s) {
            if y == UInt8(ascii: "9") { if !isDigit(x) { return false } } else if x != y { return false }
        }
        return true
    }

    /// A date (`14 March 1987`, `1987-03-14`, `14/03/1987`, `14.03.1987`) starting within `within`
    /// bytes of `from`.
    static func date(in b: [UInt8], from: Int, within: Int) -> Range<Int>? {
        let months = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                      "november", "december"]
        let limit = min(b.count, from + within)
        var i = from
        while i < limit {
            guard isDigit(b[i]), i == 0 || !isWordByte(b[i - 1]) else { i += 1; continue }
            var j = i
            while j < b.count, isDigit(b[j]) || b[j] == UInt8(ascii: "-") || b[j] == UInt8(ascii: "/") || b[j] == UInt8(ascii: ".") {
                j += 1
            }
            let numeric = String(decoding: b[i..<j], as: UTF8.self)
            if numeric.filter(\.isNumber).count >= 6, numeric.contains(where: { "-/.".contains($0) }) {
                return i..<(j - (b[j - 1] == UInt8(ascii: ".") ? 1 : 0))
            }
            // Day, month name, year.
            var k = i
            while k < b.count, isDigit(b[k]) { k += 1 }
            if k - i <= 2, k < b.count, b[k] == UInt8(ascii: " ") {
                let rest = String(decoding: b[(k + 1)..<min(b.count, k + 16)], as: UTF8.self).lowercased()
                if let month = months.first(where: { rest.hasPrefix($0 + " ") }) {
                    var end = k + 1 + month.utf8.count + 1
                    let yearStart = end
                    while end < b.count, isDigit(b[end]) { end += 1 }
                    if end - yearStart == 4 { return i..<end }
                }
            }
            i = j > i ? j : i + 1
        }
        return nil
    }

    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        return hay.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                ByteSearch.firstIndex(of: n, in: UnsafeBufferPointer(rebasing: h[from...])).map { $0 + from }
            }
        }
    }

    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    static func isUpper(_ b: UInt8) -> Bool { b >= 0x41 && b <= 0x5A }
    static func isAlnumUpper(_ b: UInt8) -> Bool { isDigit(b) || isUpper(b) }
    static func isWordByte(_ b: UInt8) -> Bool { isDigit(b) || isUpper(b) || (b >= 0x61 && b <= 0x7A) || b >= 0x80 || b == UInt8(ascii: "_") }
    static func isLocalByte(_ b: UInt8) -> Bool {
        isWordByte(b) && b < 0x80 || b == UInt8(ascii: ".") || b == UInt8(ascii: "+") || b == UInt8(ascii: "-")
    }
    static func isDomainByte(_ b: UInt8) -> Bool {
        isDigit(b) || isUpper(b) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: ".") || b == UInt8(ascii: "-")
    }
}
