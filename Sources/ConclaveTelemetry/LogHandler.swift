import ConclaveCore
import Foundation
import Logging

/// Conclave's swift-log handler: swift-log's text line or one JSON object per line
/// (`logging.format`), with levels per module (`logging.modules`) on top of `logging.level`.
///
/// A JSON line holds `time` (ISO 8601, UTC, milliseconds), `level`, `module`, `label`, `message`
/// and the metadata, flattened to strings, with swift-log's and Hummingbird's key for the request
/// id written as `request_id`. Conversation, run and user ids come from the request's logger
/// metadata; question and answer texts are never logged.
public struct ConclaveLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// The lowest of `logging.level` and the module levels: what the `Logger` lets through.
    public var logLevel: Logger.Level
    private let label: String
    private let configuration: LoggingConfiguration
    private let text: StreamLogHandler

    public init(label: String, configuration: LoggingConfiguration) {
        self.label = label
        self.configuration = configuration
        let levels = [configuration.level] + Array(configuration.modules.values)
        logLevel = levels.map(Self.level).min() ?? .info
        text = StreamLogHandler.standardError(label: label)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static func level(_ level: LoggingConfiguration.Level) -> Logger.Level {
        Logger.Level(rawValue: level.rawValue) ?? .info
    }

    /// Whether a line of `module` at `level` is written.
    func writes(_ level: Logger.Level, module: String) -> Bool {
        level >= Self.level(configuration.modules[module] ?? configuration.level)
    }

    public func log(event: LogEvent) {
        guard writes(event.level, module: event.source) else { return }
        switch configuration.format {
        case .text:
            var handler = text
            handler.logLevel = .trace
            handler.metadata = metadata
            handler.metadataProvider = metadataProvider
            handler.log(event: event)
        case .json:
            var line = Data(Self.json(event, label: label, metadata: mergedMetadata(event.metadata)).utf8)
            line.append(UInt8(ascii: "\n"))
            FileHandle.standardError.write(line)
        }
    }

    private func mergedMetadata(_ explicit: Logger.Metadata?) -> Logger.Metadata {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit { merged.merge(explicit) { _, new in new } }
        return merged
    }

    static let renamedKeys = ["hb.request.id": "request_id", "hb.request.method": "method", "hb.request.path": "path"]

    /// One JSON object, keys in a stable order: the fixed fields, then the metadata sorted.
    static func json(_ event: LogEvent, label: String, metadata: Logger.Metadata, now: Date = Date()) -> String {
        var fields: [(String, String)] = [
            ("time", timestamp(now)), ("level", event.level.rawValue), ("module", event.source), ("label", label),
            ("message", event.message.description),
        ]
        if let error = event.error { fields.append(("error", "\(error)")) }
        let reserved = Set(fields.map(\.0))
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            let name = renamedKeys[key] ?? key
            guard !reserved.contains(name) else { continue }
            fields.append((name, flatten(value)))
        }
        return "{" + fields.map { JSONString.quoted($0.0) + ":" + JSONString.quoted($0.1) }.joined(separator: ",") + "}"
    }

    static func flatten(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): "[" + values.map(flatten).joined(separator: ", ") + "]"
        case .dictionary(let values): "{" + values.sorted { $0.key < $1.key }.map { "\($0.key): \(flatten($0.value))" }.joined(separator: ", ") + "}"
        }
    }

    private static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
