/// Substring search over UTF-8 bytes. Foundation's `range(of:)`/`contains` are locale-aware and
/// `DataProtocol.firstRange` is generic; both showed up as hot spots in the agents' code.
public enum ByteSearch {
    /// True when `needle` occurs in `haystack`.
    @inlinable
    public static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        firstIndex(of: needle, in: haystack) != nil
    }

    /// Index just past the first occurrence of `needle` in `haystack`, or nil.
    @inlinable
    public static func endOfFirst(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        firstIndex(of: needle, in: haystack).map { $0 + needle.count }
    }

    /// Index of the first occurrence of `needle` in `haystack`, or nil.
    @inlinable
    public static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        haystack.withUnsafeBufferPointer { hay in
            needle.withUnsafeBufferPointer { pin in firstIndex(of: pin, in: hay) }
        }
    }

    /// Index of the first occurrence of `needle` in `haystack` at or after `start`, or nil.
    @inlinable
    public static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard start > 0 else { return firstIndex(of: needle, in: haystack) }
        guard start < haystack.count else { return needle.isEmpty ? haystack.count : nil }
        return haystack.withUnsafeBufferPointer { hay in
            needle.withUnsafeBufferPointer { pin in
                firstIndex(of: pin, in: UnsafeBufferPointer(rebasing: hay[start...])).map { $0 + start }
            }
        }
    }

    /// `bytes` with ASCII letters folded to lower case (other bytes as they are).
    @inlinable
    public static func asciiLowercased<S: Sequence>(_ bytes: S) -> [UInt8] where S.Element == UInt8 {
        bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
    }

    /// True when `needle`'s UTF-8 bytes occur in `haystack`.
    @inlinable
    public static func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        var needle = needle
        return needle.withUTF8 { pin in haystack.withUnsafeBufferPointer { hay in firstIndex(of: pin, in: hay) != nil } }
    }

    /// Index of the first occurrence of `needle` in `haystack`, or nil.
    @inlinable
    public static func firstIndex(of needle: UnsafeBufferPointer<UInt8>, in haystack: UnsafeBufferPointer<UInt8>) -> Int? {
        let n = needle.count
        let h = haystack.count
        guard n > 0 else { return 0 }
        guard n <= h else { return nil }
        let first = needle[0]
        var i = 0
        let last = h - n
        while i <= last {
            if haystack[i] == first {
                var j = 1
                while j < n && haystack[i + j] == needle[j] { j += 1 }
                if j == n { return i }
            }
            i += 1
        }
        return nil
    }
}
