/// A coding key that accepts any string, used to find keys a configuration section does not know.
struct AnyConfigurationKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// Throws a ``ConfigurationError`` naming the first key of this mapping that `Keys` does not list.
    func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        let container = try container(keyedBy: AnyConfigurationKey.self)
        let known = Set(Keys.allCases.map(\.stringValue))
        for key in container.allKeys where !known.contains(key.stringValue) {
            let path = ConfigurationError.path(codingPath + [key])
            throw ConfigurationError(
                key: path, value: nil,
                expected: "one of the known keys here: \(known.sorted().joined(separator: ", "))", isUnknownKey: true)
        }
    }
}

extension KeyedDecodingContainer {
    /// Decodes a value when present, otherwise returns the default.
    func value<T: Decodable>(_ key: Key, default defaultValue: @autoclosure () -> T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? defaultValue()
    }
}

extension ConfigurationError {
    /// A coding path as configuration keys are written: `inference.models[0].name`.
    static func path(_ keys: [any CodingKey]) -> String {
        keys.reduce(into: "") { path, key in
            if let index = key.intValue {
                path += "[\(index)]"
            } else {
                path += (path.isEmpty ? "" : ".") + key.stringValue
            }
        }
    }
}

extension KeyedDecodingContainer {
    /// Decodes a string enum, naming the allowed values when the string is not one of them.
    func enumValue<T: RawRepresentable & CaseIterable>(_ key: Key, default defaultValue: T) throws -> T
    where T.RawValue == String {
        guard let raw = try decodeIfPresent(String.self, forKey: key) else { return defaultValue }
        guard let value = T(rawValue: raw) else {
            let path = ConfigurationError.path(codingPath + [key])
            throw ConfigurationError(key: path, value: raw,
                                     expected: "one of " + T.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return value
    }
}
