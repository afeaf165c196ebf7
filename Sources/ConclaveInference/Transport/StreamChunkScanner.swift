import ConclaveCore

/// Reads the common shape of a streamed chat chunk without a JSON decoder: one choice whose delta
/// has at most a `content` string, a `finish_reason`, and no usage, error or tool calls. Anything
/// else returns nil and the caller decodes the chunk in full. Decoding every chunk with
/// `JSONDecoder` was the largest cost of a proxied stream.
///
/// The scan is one pass over the payload that checks it is JSON and knows where each key sits:
/// `content` counts only as a key of `choices[0].delta`, `finish_reason` only of `choices[0]`.
/// (fuzz/FuzzSSEStream found that searching for the keys anywhere read `"content"` of another
/// object as the delta text.)
enum StreamChunkScanner {
    /// The delta text and finish reason of a chunk, or nil when the chunk is not of the simple shape.
    struct Simple: Equatable {
        var content: String?
        var finishReason: String?
    }

    static func scan(_ payload: Substring.UTF8View) -> Simple? {
        let bytes = Array(payload)
        for marker in chunkMarkers where ByteSearch.contains(bytes, marker) { return nil }
        var reader = Reader(bytes: bytes, completion: false)
        guard reader.value(at: .root, depth: 0), reader.atEnd(), reader.sawChoices else { return nil }
        return reader.result
    }

    /// The answer, finish reason and token counts of a whole (non-streamed) chat completion.
    struct Completion: Equatable {
        var content: String?
        var finishReason: String?
        var promptTokens: Int?
        var completionTokens: Int?
    }

    /// Reads the common shape of a whole chat completion the same way: one choice whose
    /// `message` has at most a `content` string, a `finish_reason`, and a `usage` object whose
    /// `prompt_tokens` and `completion_tokens` are non-negative integers (or absent). Anything
    /// else returns nil and the caller decodes the body in full. Decoding every completion with
    /// `JSONDecoder` was a visible share of a proxied request (docs/performance.md).
    static func scanCompletion(_ body: some Sequence<UInt8>) -> Completion? {
        let bytes = Array(body)
        for marker in completionMarkers where ByteSearch.contains(bytes, marker) { return nil }
        var reader = Reader(bytes: bytes, completion: true)
        guard reader.value(at: .root, depth: 0), reader.atEnd(), reader.sawChoices else { return nil }
        return Completion(content: reader.result.content, finishReason: reader.result.finishReason,
                          promptTokens: reader.promptTokens, completionTokens: reader.completionTokens)
    }

    /// Parts a decoder would read that neither simple shape has a place for.
    private static let completionMarkers: [[UInt8]] = [#""error""#, #""tool_calls""#, #""refusal":""#].map { Array($0.utf8) }
    /// And a chunk's usage, which only a completion's shape reads.
    private static let chunkMarkers: [[UInt8]] = [Array(#""usage":{"#.utf8)] + completionMarkers

    /// Where a value sits in the chunk.
    private enum Place {
        case root, choices, choice, delta, content, finishReason, usage, promptTokens, completionTokens, other
    }

    /// A validating JSON reader that records the values of the simple shape. Every method
    /// returns false for input that is not JSON or not of the shape, leaving it to the decoder.
    private struct Reader {
        let bytes: [UInt8]
        /// Reading a whole completion: the choice's text is under `message`, not `delta`, and
        /// `usage` is an object whose token counts are read.
        let completion: Bool
        var i = 0
        var result = Simple()
        var promptTokens: Int?
        var completionTokens: Int?
        var sawChoices = false
        var sawDelta = false
        var sawContent = false
        var sawFinishReason = false
        var sawUsage = false
        var sawPromptTokens = false
        var sawCompletionTokens = false
        static let maximumDepth = 32

        init(bytes: [UInt8], completion: Bool) {
            self.bytes = bytes
            self.completion = completion
        }

        mutating func atEnd() -> Bool {
            skipWhitespace()
            return i == bytes.count
        }

        mutating func value(at place: Place, depth: Int) -> Bool {
            guard depth < Self.maximumDepth else { return false }
            skipWhitespace()
            guard i < bytes.count else { return false }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                guard place == .root || place == .choice || place == .delta || place == .other || (completion && place == .usage) else {
                    return false
                }
                return object(at: place, depth: depth)
            case UInt8(ascii: "["):
                guard place == .choices || place == .other else { return false }
                return array(at: place, depth: depth)
            case UInt8(ascii: "\""):
                switch place {
                case .content: result.content = text()
                case .finishReason: result.finishReason = text()
                case .other: return skipText()
                default: return false
                }
                return place == .content ? result.content != nil : result.finishReason != nil
            case UInt8(ascii: "n"):
                // A null delta, content, finish reason or usage reads as absent; any other usage
                // is for the decoder to read.
                guard place == .delta || place == .content || place == .finishReason || place == .usage || place == .other
                    || place == .promptTokens || place == .completionTokens else {
                    return false
                }
                return literal("null")
            case UInt8(ascii: "t"):
                return place == .other && literal("true")
            case UInt8(ascii: "f"):
                return place == .other && literal("false")
            default:
                switch place {
                case .other: return number()
                case .promptTokens:
                    promptTokens = count()
                    return promptTokens != nil
                case .completionTokens:
                    completionTokens = count()
                    return completionTokens != nil
                default: return false
                }
            }
        }

        /// A token count: digits only, without sign, fraction or exponent, that fit an `Int`.
        private mutating func count() -> Int? {
            let start = i
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
            let digits = bytes[start..<i]
            guard !digits.isEmpty, digits.count <= 18, digits.count == 1 || digits.first != 0x30 else { return nil }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") || bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                return nil
            }
            return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }

        private mutating func object(at place: Place, depth: Int) -> Bool {
            i += 1
            skipWhitespace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
                i += 1
                return true
            }
            while true {
                skipWhitespace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\""), let key = key() else { return false }
                skipWhitespace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return false }
                i += 1
                let inner: Place
                switch (place, key) {
                case (.root, "choices"):
                    guard !sawChoices else { return false }
                    sawChoices = true
                    inner = .choices
                case (.choice, "delta") where !completion, (.choice, "message") where completion:
                    guard !sawDelta else { return false }
                    sawDelta = true
                    inner = .delta
                case (.choice, "finish_reason"):
                    guard !sawFinishReason else { return false }
                    sawFinishReason = true
                    inner = .finishReason
                case (.delta, "content"):
                    guard !sawContent else { return false }
                    sawContent = true
                    inner = .content
                case (.root, "usage"):
                    guard !sawUsage else { return false }
                    sawUsage = true
                    inner = .usage
                case (.usage, "prompt_tokens"):
                    guard !sawPromptTokens else { return false }
                    sawPromptTokens = true
                    inner = .promptTokens
                case (.usage, "completion_tokens"):
                    guard !sawCompletionTokens else { return false }
                    sawCompletionTokens = true
                    inner = .completionTokens
                default:
                    inner = .other
                }
                guard value(at: inner, depth: depth + 1) else { return false }
                skipWhitespace()
                guard i < bytes.count else { return false }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                } else if bytes[i] == UInt8(ascii: "}") {
                    i += 1
                    return true
                } else {
                    return false
                }
            }
        }

        private mutating func array(at place: Place, depth: Int) -> Bool {
            i += 1
            skipWhitespace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
                i += 1
                return place == .other  // no choices: the decoder decides
            }
            var count = 0
            while true {
                // The simple shape has exactly one choice, and it is an object.
                let inner: Place = place == .choices ? .choice : .other
                if place == .choices {
                    skipWhitespace()
                    guard count == 0, i < bytes.count, bytes[i] == UInt8(ascii: "{") else { return false }
                }
                guard value(at: inner, depth: depth + 1) else { return false }
                count += 1
                skipWhitespace()
                guard i < bytes.count else { return false }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                } else if bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    return true
                } else {
                    return false
                }
            }
        }

        private mutating func skipWhitespace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        private mutating func literal(_ word: StaticString) -> Bool {
            let count = word.utf8CodeUnitCount
            guard i + count <= bytes.count else { return false }
            for k in 0..<count where bytes[i + k] != word.utf8Start[k] { return false }
            i += count
            return true
        }

        /// A JSON number: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
        private mutating func number() -> Bool {
            func digits() -> Int {
                let start = i
                while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
                return i - start
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { return false }
            if bytes[i] == 0x30 { i += 1 } else { _ = digits() }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { return false }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { return false }
            }
            return true
        }

        /// The names the simple shape reads, as bytes: keys without escapes (nearly all) are
        /// compared in place, without building a String.
        static let keys: [(name: [UInt8], key: String)] = [
            "choices", "delta", "message", "finish_reason", "content", "usage", "prompt_tokens", "completion_tokens",
        ].map {
            (Array($0.utf8), $0)
        }

        /// The key at `i` (its opening quote): one of ``keys``, "" for any other, nil if invalid.
        private mutating func key() -> String? {
            let start = i
            guard let escaped = skipString() else { return nil }
            if escaped {
                i = start
                guard let name = string() else { return nil }
                return Self.keys.contains { $0.key == name } ? name : ""
            }
            let body = bytes[(start + 1)..<(i - 1)]
            return Self.keys.first { body.elementsEqual($0.name) }?.key ?? ""
        }

        /// The string at `i` (its opening quote) with escapes decoded, or nil if invalid.
        private mutating func text() -> String? {
            let start = i
            guard let escaped = skipString() else { return nil }
            guard escaped else { return String(decoding: bytes[(start + 1)..<(i - 1)], as: UTF8.self) }
            i = start
            return string()
        }

        /// Moves past the string at `i`, checking it as ``text()`` would; false if invalid.
        private mutating func skipText() -> Bool {
            let start = i
            guard let escaped = skipString() else { return false }
            guard escaped else { return true }
            i = start
            return string() != nil
        }

        /// Moves past the string at `i` (its opening quote); returns whether it holds escapes, or
        /// nil for an unterminated string or a raw control character. Escapes are checked by
        /// ``string()``, which callers run when there are any.
        private mutating func skipString() -> Bool? {
            var escaped = false
            i += 1
            while i < bytes.count {
                let byte = bytes[i]
                if byte == UInt8(ascii: "\"") {
                    i += 1
                    return escaped
                }
                if byte < 0x20 { return nil }
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    i += 2
                } else {
                    i += 1
                }
            }
            return nil
        }

        /// A JSON string at `i` (its opening quote), escapes decoded; `i` moves past the closing quote.
        private mutating func string() -> String? {
            var out: [UInt8] = []
            i += 1
            while i < bytes.count {
                let byte = bytes[i]
                if byte == UInt8(ascii: "\"") {
                    i += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if byte < 0x20 { return nil }
                guard byte == UInt8(ascii: "\\") else {
                    out.append(byte)
                    i += 1
                    continue
                }
                guard i + 1 < bytes.count else { return nil }
                let escaped = bytes[i + 1]
                i += 2
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4(at: i) else { return nil }
                    i += 4
                    if (0xD800...0xDBFF).contains(scalar) {
                        // A surrogate pair: the low half must follow as another \u escape.
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u"),
                              let low = hex4(at: i + 2), (0xDC00...0xDFFF).contains(low) else { return nil }
                        i += 6
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        return nil
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { return nil }
                    out.append(contentsOf: Array(String(Character(unicode)).utf8))
                default:
                    return nil
                }
            }
            return nil
        }

        private func hex4(at start: Int) -> UInt32? {
            guard start + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for byte in bytes[start..<(start + 4)] {
                let digit: UInt32
                switch byte {
                case 48...57: digit = UInt32(byte - 48)
                case 65...70: digit = UInt32(byte - 55)
                case 97...102: digit = UInt32(byte - 87)
                default: return nil
                }
                value = value * 16 + digit
            }
            return value
        }
    }
}
