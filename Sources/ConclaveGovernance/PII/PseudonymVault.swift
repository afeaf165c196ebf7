import ConclaveCore
import Synchronization

/// Reversible pseudonyms for the personal data a user types, one vault per conversation: the
/// model reads `IBAN_1` instead of the account number, and the value comes back in the answer
/// only for a user the policy lets see it (everyone else gets its masked form).
public final class PseudonymVault: Sendable {
    /// Types that get pseudonyms (names stay: the policy shows them to everyone, and retrieval needs them).
    static let types: Set<String> = ["email", "private_contact", "phone", "iban", "card", "national_id", "date_of_birth",
                                     "ip_address", "salary"]

    private let state = Mutex<(byValue: [String: String], byToken: [String: (value: String, type: String)], counts: [String: Int])>(
        ([:], [:], [:]))

    public init() {}

    /// A vault holding `transfer`'s pseudonyms (a worker's copy of the gateway's vault).
    public init(_ transfer: GuardTransfer) {
        var byValue: [String: String] = [:]
        var byToken: [String: (value: String, type: String)] = [:]
        var counts: [String: Int] = [:]
        for (token, entry) in transfer.pseudonyms {
            byValue[entry.value] = token
            byToken[token] = (entry.value, entry.type)
            counts[entry.type, default: 0] += 1
        }
        state.withLock { $0 = (byValue, byToken, counts) }
    }

    /// Every pseudonym, for a copy in another process.
    public var transfer: GuardTransfer {
        GuardTransfer(pseudonyms: state.withLock { $0.byToken }.mapValues { GuardTransfer.Pseudonym(value: $0.value, type: $0.type) })
    }

    /// `text` with each personal-data value replaced by its pseudonym (the same value always
    /// gets the same one).
    public func pseudonymize(_ text: String, detector: PIIDetector) -> String {
        let matches = detector.matches(in: text).filter { Self.types.contains($0.type) }
        guard !matches.isEmpty else { return text }
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var position = 0
        for match in matches {
            out += bytes[position..<match.range.lowerBound]
            out += Array(token(for: match).utf8)
            position = match.range.upperBound
        }
        out += bytes[position...]
        return String(decoding: out, as: UTF8.self)
    }

    private func token(for match: PIIMatch) -> String {
        state.withLock { state in
            if let existing = state.byValue[match.value] { return existing }
            let n = state.counts[match.type, default: 0] + 1
            state.counts[match.type] = n
            let token = "\(match.type.uppercased())_\(n)"
            state.byValue[match.value] = token
            state.byToken[token] = (match.value, match.type)
            return token
        }
    }

    /// Pseudonyms in `text` replaced by what `reveal` gives for each (value and type).
    public func restore(_ text: String, reveal: (String, String) -> String) -> String {
        let tokens = state.withLock { $0.byToken }
        guard !tokens.isEmpty, text.utf8.contains(UInt8(ascii: "_")) else { return text }
        var result = text
        // Longest first, so IBAN_12 is not taken for IBAN_1.
        for (token, entry) in tokens.sorted(by: { $0.key.count > $1.key.count }) where result.contains(token) {
            result = Self.replacingWholeWord(token, in: result, with: reveal(entry.value, entry.type))
        }
        return result
    }

    static func replacingWholeWord(_ word: String, in text: String, with replacement: String) -> String {
        let bytes = Array(text.utf8)
        let needle = Array(word.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if let hit = PIIDetector.find(needle, in: bytes, from: i) {
                let end = hit + needle.count
                let boundaryBefore = hit == 0 || !PIIDetector.isWordByte(bytes[hit - 1])
                let boundaryAfter = end == bytes.count || !PIIDetector.isWordByte(bytes[end])
                out += bytes[i..<hit]
                out += boundaryBefore && boundaryAfter ? Array(replacement.utf8) : needle
                i = end
            } else {
                out += bytes[i...]
                break
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Restores pseudonyms in an answer stream after the PII filter (which holds back any trailing
/// upper-case code, so a pseudonym is never split).
struct RestoringStreamFilter: OutputStreamFilter {
    var inner: any OutputStreamFilter
    let vault: PseudonymVault
    let reveal: @Sendable (String, String) -> String

    mutating func append(_ text: String) -> String {
        vault.restore(inner.append(text), reveal: reveal)
    }

    mutating func finish() -> String {
        vault.restore(inner.finish(), reveal: reveal)
    }
}
