import ConclaveCore

/// A lowercased string with fast substring tests (the standard library's byte search rather than
/// Foundation's locale-aware one, which dominated the reasoner's cost in profiles).
struct Lowercased {
    let bytes: [UInt8]

    init(_ text: String) {
        bytes = Array(text.lowercased().utf8)
    }

    func contains(_ needle: String) -> Bool {
        ByteSearch.contains(bytes, needle)
    }

    func hasPrefix(_ prefix: String) -> Bool {
        bytes.starts(with: prefix.utf8)
    }

    /// True when the text holds an ISO date (`2025-11-04`).
    var containsISODate: Bool {
        let digit: (UInt8) -> Bool = { $0 >= 0x30 && $0 <= 0x39 }
        guard bytes.count >= 10 else { return false }
        for i in 0...(bytes.count - 10) where digit(bytes[i]) && digit(bytes[i + 3]) && bytes[i + 4] == 0x2D && bytes[i + 7] == 0x2D {
            if digit(bytes[i + 1]) && digit(bytes[i + 2]) && digit(bytes[i + 5]) && digit(bytes[i + 6]) && digit(bytes[i + 8]) && digit(bytes[i + 9]) {
                return true
            }
        }
        return false
    }

    /// True when the text holds a citation marker such as `[1]`.
    var containsCitationMarker: Bool {
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "[") {
                var j = i + 1
                while j < bytes.count && bytes[j] >= 0x30 && bytes[j] <= 0x39 { j += 1 }
                if j > i + 1 && j < bytes.count && bytes[j] == UInt8(ascii: "]") { return true }
            }
            i += 1
        }
        return false
    }
}
