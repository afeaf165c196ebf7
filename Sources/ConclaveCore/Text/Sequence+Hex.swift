extension Sequence where Element == UInt8 {
    /// The bytes as lowercase hexadecimal (a SHA-256 digest gives 64 characters). A table
    /// lookup per byte: `String(format: "%02x")` per byte costs microseconds per digest, which
    /// showed up on the request path (audit hashes, API-key lookup).
    public var hexEncoded: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
