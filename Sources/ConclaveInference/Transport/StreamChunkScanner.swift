import ConclaveCore

/// Reads the common shape of a streamed chat chunk without a JSON decoder: one choice whose delta
/// has at most a `content` string, a `finish_reason`, and no usage, error or tool calls. Anything
/// else returns nil and the caller decodes the chunk in full. Decoding every chunk with
/// `JSONDecoder` was the largest cost of a proxied stream.
enum StreamChunkScanner {
    /// The delta text and finish reason of a chunk, or nil when the chunk is not of the simple shape.
    struct Simple: Equatable {
        var content: String?
        var finishReason: String?
    }

    static func scan(_ payload: Substring.UTF8View) -> Simple? {
        let bytes = Array(payload)
        for marker in markers where ByteSearch.contains(bytes, marker) { return nil }
        guard ByteSearch.contains(bytes, choicesKey) else { return nil }
        var result = Simple()
        switch value(after: contentKey, in: bytes) {
        case .absent, .null: break
        case .string(let text): result.content = text
        case .other, .repeated: return nil
        }
        switch value(after: finishKey, in: bytes) {
        case .absent, .null: break
        case .string(let text): result.finishReason = text
        case .other, .repeated: return nil
        }
        return result
    }

    private static let markers: [[UInt8]] = [#""usage":{"#, #""error""#, #""tool_calls""#, #""index":1"#, #""refusal":""#]
        .map { Array($0.utf8) }
    private static let choicesKey = Array(#""choices":[{"#.utf8)
    private static let contentKey = Array(#""content":"#.utf8)
    private static let finishKey = Array(#""finish_reason":"#.utf8)

    private enum Value {
        case absent, null, other, repeated
        case string(String)
    }

    /// The value after the only occurrence of `key`.
    private static func value(after key: [UInt8], in bytes: [UInt8]) -> Value {
        guard let at = ByteSearch.firstIndex(of: key, in: bytes) else { return .absent }
        if ByteSearch.firstIndex(of: key, in: bytes, from: at + 1) != nil { return .repeated }
        var i = at + key.count
        while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
        guard i < bytes.count else { return .other }
        if bytes[i] == UInt8(ascii: "n") { return bytes[i...].starts(with: Array("null".utf8)) ? .null : .other }
        guard bytes[i] == UInt8(ascii: "\"") else { return .other }
        return string(bytes, from: i + 1).map(Value.string) ?? .other
    }

    /// A JSON string body starting at `start` (after the opening quote), escapes decoded.
    private static func string(_ bytes: [UInt8], from start: Int) -> String? {
        var out: [UInt8] = []
        var i = start
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
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
                guard var scalar = hex4(bytes, at: i) else { return nil }
                i += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    // A surrogate pair: the low half must follow as another \u escape.
                    guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u"),
                          let low = hex4(bytes, at: i + 2), (0xDC00...0xDFFF).contains(low) else { return nil }
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

    private static func hex4(_ bytes: [UInt8], at start: Int) -> UInt32? {
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
