/// A configuration problem that names the key, the value found and what was expected.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Dotted key path, for example `server.port`.
    public var key: String
    /// The offending value as written, if there was one.
    public var value: String?
    /// What the key accepts.
    public var expected: String
    /// Where the value came from (a file path or an environment variable).
    public var origin: String?
    /// True when the key itself is not a configuration key.
    public var isUnknownKey: Bool

    /// Creates a configuration error.
    public init(key: String, value: String?, expected: String, origin: String? = nil, isUnknownKey: Bool = false) {
        self.key = key
        self.value = value
        self.expected = expected
        self.origin = origin
        self.isUnknownKey = isUnknownKey
    }

    public var description: String {
        var text = "invalid configuration: key '\(key)'"
        if isUnknownKey {
            text += " is not a known key"
        } else if let value {
            text += " has value '\(value)'"
        } else {
            text += " is missing or empty"
        }
        text += "; expected \(expected)"
        if let origin { text += " (from \(origin))" }
        return text
    }
}
