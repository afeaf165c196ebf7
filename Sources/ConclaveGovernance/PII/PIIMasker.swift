import ConclaveCore
import Synchronization

/// Masks personal data a principal may not see, as the access policy's PII rules say, and counts
/// what it masked (for the audit trail). One per request.
public final class PIIMasker: TextGuard, Sendable {
    let detector: PIIDetector
    private let visibility: @Sendable (String) -> FieldAccess
    private let masked = Mutex<[String: Int]>([:])

    /// A masker for `principal` under `decisions`.
    public init(detector: PIIDetector, decisions: PolicyDecisionPoint, principal: Principal) {
        self.detector = detector
        visibility = { decisions.pii($0, for: principal) }
    }

    /// A masker with an explicit visibility rule (tests).
    public init(detector: PIIDetector, visibility: @escaping @Sendable (String) -> FieldAccess) {
        self.detector = detector
        self.visibility = visibility
    }

    /// Counts of masked values by type so far.
    public var maskedCounts: [String: Int] { masked.withLock { $0 } }

    /// Adds counts of values masked elsewhere (by a worker's copy of this masker).
    public func absorb(maskedCounts counts: [String: Int]) {
        masked.withLock { masked in
            for (type, n) in counts { masked[type, default: 0] += n }
        }
    }

    public func evidence(_ text: String) -> String {
        mask(text)
    }

    public func outputStream() -> any OutputStreamFilter {
        PIIStreamFilter(masker: self)
    }

    /// A value of `type` as the principal may see it: itself, or its masked form.
    public func reveal(_ value: String, type: String) -> String {
        guard case .masked(let form) = visibility(type) else { return value }
        return Self.masked(PIIMatch(type: type, range: 0..<value.utf8.count, value: value), form)
    }

    /// `text` with every value the principal may not see replaced by its masked form.
    public func mask(_ text: String) -> String {
        let bytes = Array(text.utf8)
        let (out, _) = mask(bytes, matches: detector.matches(in: bytes), upTo: bytes.count)
        return String(decoding: out, as: UTF8.self)
    }

    /// Masks `bytes[..<end]` given `matches` over all of `bytes`; returns the masked bytes and
    /// how far they reach (a match that crosses `end` is left for later).
    func mask(_ bytes: [UInt8], matches: [PIIMatch], upTo end: Int, from start: Int = 0) -> ([UInt8], Int) {
        var out: [UInt8] = []
        var position = start
        var limit = end
        for match in matches where match.range.upperBound > start {
            if match.range.lowerBound < end && match.range.upperBound > end {
                limit = max(start, match.range.lowerBound)
                break
            }
            guard match.range.upperBound <= end else { continue }
            let access = visibility(match.type)
            guard case .masked(let form) = access else { continue }
            if match.range.lowerBound < start {
                // The value began in text already released (a currency sign, a date cue): the
                // rest of it is withheld whole.
                out += Array(MaskedValue.restricted.utf8)
            } else {
                out += bytes[position..<match.range.lowerBound]
                out += Array(Self.masked(match, form).utf8)
            }
            position = match.range.upperBound
            masked.withLock { $0[match.type, default: 0] += 1 }
        }
        if position < limit { out += bytes[position..<limit] }
        return (out, max(limit, position))
    }

    /// The masked form of a value.
    static func masked(_ match: PIIMatch, _ form: AccessPolicy.MaskedForm) -> String {
        switch form {
        case .restricted:
            return MaskedValue.restricted
        case .hash:
            return "[\(match.type):\(AuditLog.sha256(match.value).prefix(8))]"
        case .partial:
            guard let at = match.value.firstIndex(of: "@"), let first = match.value.first else { return "[restricted]" }
            return "\(first)***" + match.value[at...]
        case .lastTwo:
            // Keep the country code (and a one- or two-digit area or mobile prefix), mask every
            // other digit but the last two: +31 6 6077 8324 → +31 6 **** **24.
            let value = Array(match.value)
            let groups = match.value.split(separator: " ")
            var keep = 0
            // A country code is one to three digits: a longer first group ("+31612345678",
            // found by fuzz/FuzzPII) is the number itself and is masked like the rest.
            if match.value.hasPrefix("+"), let code = groups.first, code.count <= 4 {
                keep = code.count
                if groups.count > 2, let next = groups.dropFirst().first, next.count <= 2 { keep += 1 + next.count }
            }
            let digitPositions = value.indices.filter { value[$0].isNumber }
            let lastTwo = Set(digitPositions.suffix(2))
            return String(value.enumerated().map { index, character in
                index < keep || !character.isNumber || lastTwo.contains(index) ? character : "*"
            })
        }
    }
}

/// Stream-safe masking of one answer: text is released once no personal-data value can still be
/// completed by what follows; the held-back suffix is at most the trailing run that could be the
/// start of one (a number with separators, an address-like word, an upper-case code).
struct PIIStreamFilter: OutputStreamFilter {
    let masker: PIIMasker
    /// Released original bytes kept as context for detectors that look behind (a date after
    /// "date of birth", an amount after "salary").
    private var context: [UInt8] = []
    private var pending: [UInt8] = []
    static let contextBytes = 64
    static let maximumHold = 96

    init(masker: PIIMasker) {
        self.masker = masker
    }

    mutating func append(_ text: String) -> String {
        pending += Array(text.utf8)
        return release(upTo: Self.safeCut(pending))
    }

    mutating func finish() -> String {
        release(upTo: pending.count)
    }

    private mutating func release(upTo cut: Int) -> String {
        guard cut > 0 else { return "" }
        let all = context + pending
        let matches = masker.detector.matches(in: all)
        let (out, reached) = masker.mask(all, matches: matches, upTo: context.count + cut, from: context.count)
        let consumed = reached - context.count
        guard consumed > 0 else { return "" }
        context = Array((context + pending[..<consumed]).suffix(Self.contextBytes))
        pending.removeFirst(consumed)
        return String(decoding: out, as: UTF8.self)
    }

    /// Where the text stops being final: before the trailing run of bytes that could still grow
    /// into personal data (bounded, so ordinary text is never held for long).
    static func safeCut(_ b: [UInt8]) -> Int {
        var i = b.count
        let floor = max(0, b.count - maximumHold)
        func piiByte(_ x: UInt8) -> Bool {
            PIIDetector.isDigit(x) || PIIDetector.isUpper(x) || x == UInt8(ascii: "+") || x == UInt8(ascii: "-")
                || x == UInt8(ascii: ".") || x == UInt8(ascii: "(") || x == UInt8(ascii: ")") || x == UInt8(ascii: "/")
                || x == UInt8(ascii: "@") || x == UInt8(ascii: ",") || x == UInt8(ascii: "_")
                || (x >= 0x61 && x <= 0x7A)
        }
        while i > floor {
            let x = b[i - 1]
            if piiByte(x) {
                i -= 1
            } else if x == UInt8(ascii: " "), i >= 2, i - 1 > floor, PIIDetector.isDigit(b[i - 2]) || PIIDetector.isUpper(b[i - 2]) {
                // A space inside a grouped number or code ("+31 6 6077", "NL55 ZZBK") may continue it.
                i -= 1
            } else {
                break
            }
        }
        return i
    }
}
