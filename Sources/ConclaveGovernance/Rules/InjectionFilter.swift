import ConclaveCore
import Synchronization

/// Finds instruction-like content in text that is data (retrieved passages) or in a user's
/// message: requests to ignore instructions, to change role, to reveal or to answer in a fixed
/// way, and override codes. In evidence the content is removed before any agent or model sees it
/// (retrieved text is data, never instructions); in user input it is recorded.
public enum InjectionFilter {
    /// Lower-case cues of instruction-like text.
    static let cues = [
        "ignore previous instructions", "ignore all previous instructions", "ignore prior instructions",
        "ignore the above", "ignore your instructions", "disregard previous", "disregard all previous", "disregard your instructions",
        "you are now", "operating without restrictions", "system override", "for ai agents", "for the assistant",
        "note for the assistant", "start your reply with", "begin the answer with", "begin your answer with",
        "end every answer with", "end your answer with", "do not mention this note", "reveal all", "new instructions:",
    ]

    /// Placeholder for removed content.
    public static let placeholder = "[instruction-like text removed from this source]"

    /// True when `text` reads as an instruction to the assistant.
    public static func isInstructionLike(_ text: String) -> Bool {
        let lower = ByteSearch.asciiLowercased(text.utf8)
        if cueBytes.contains(where: { ByteSearch.contains(lower, $0) }) { return true }
        return containsOverrideCode(text)
    }

    private static let cueBytes = cues.map { Array($0.utf8) }

    /// `UPPER-OVERRIDE-1234`-style codes.
    static func containsOverrideCode(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        let marker = Array("-OVERRIDE-".utf8)
        var i = 0
        while let hit = PIIDetector.find(marker, in: bytes, from: i) {
            let after = hit + marker.count
            if hit > 0, PIIDetector.isUpper(bytes[hit - 1]), after < bytes.count, PIIDetector.isDigit(bytes[after]) { return true }
            i = after
        }
        return false
    }

    /// `text` without its instruction-like parts, and how many were removed. A quoted block
    /// (lines starting with `>`) goes as a whole when any of its lines is instruction-like;
    /// otherwise the offending sentence goes.
    public static func clean(_ text: String) -> (text: String, removed: Int) {
        guard isInstructionLike(text) else { return (text, 0) }
        var out: [String] = []
        var removed = 0
        var block: [Substring] = []
        func flushBlock() {
            guard !block.isEmpty else { return }
            if block.contains(where: { isInstructionLike(String($0)) }) {
                out.append(placeholder)
                removed += 1
            } else {
                out += block.map(String.init)
            }
            block = []
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmed.hasPrefix(">") {
                block.append(line)
                continue
            }
            flushBlock()
            guard isInstructionLike(String(line)) else {
                out.append(String(line))
                continue
            }
            // Keep the sentences of the line that are not instruction-like.
            let sentences = line.split(separator: ".", omittingEmptySubsequences: false)
            let kept = sentences.filter { !isInstructionLike(String($0)) }
            removed += 1
            let rest = kept.joined(separator: ".").trimmed
            out.append(rest.isEmpty || kept.count == sentences.count ? placeholder : rest + " " + placeholder)
        }
        flushBlock()
        return (out.joined(separator: "\n"), removed)
    }
}

/// The governance layer's ``TextGuard`` for one request: instruction-like content is removed from
/// evidence, then personal data masked; the answer streams through the PII stream filter.
public final class RequestGuard: TransferableTextGuard, Sendable {
    public let masker: PIIMasker
    /// The conversation's pseudonyms for personal data the user typed.
    public let vault: PseudonymVault
    private let removed = Mutex(0)
    private let outputRules: [NSRegularExpressionBox]

    public init(masker: PIIMasker, vault: PseudonymVault = PseudonymVault(), outputDenyPatterns: [String] = []) {
        self.masker = masker
        self.vault = vault
        outputRules = outputDenyPatterns.compactMap(NSRegularExpressionBox.init)
    }

    /// The user's text with personal data replaced by pseudonyms, before any model reads it.
    public func input(_ text: String) -> String {
        vault.pseudonymize(text, detector: masker.detector)
    }

    /// Instruction-like passages removed from evidence so far.
    public var removedInstructions: Int { removed.withLock { $0 } }

    public func transfer() -> GuardTransfer { vault.transfer }

    public var activity: GuardActivity {
        GuardActivity(removedInstructions: removedInstructions, maskedCounts: masker.maskedCounts)
    }

    public func absorb(_ activity: GuardActivity) {
        removed.withLock { $0 += activity.removedInstructions }
        masker.absorb(maskedCounts: activity.maskedCounts)
    }

    public func evidence(_ text: String) -> String {
        let (clean, count) = InjectionFilter.clean(text)
        if count > 0 { removed.withLock { $0 += count } }
        return masker.mask(clean)
    }

    public func outputStream() -> any OutputStreamFilter {
        let masker = self.masker
        let restored = RestoringStreamFilter(inner: masker.outputStream(), vault: vault) { value, type in
            masker.reveal(value, type: type)
        }
        return outputRules.isEmpty ? restored : OutputRuleFilter(inner: restored, patterns: outputRules)
    }
}
