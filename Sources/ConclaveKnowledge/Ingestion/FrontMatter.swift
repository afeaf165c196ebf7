import ConclaveCore
import Yams

/// YAML front matter at the top of a document (`---` … `---`), split from the body.
public struct FrontMatter: Sendable, Hashable {
    /// Front-matter fields as strings (nested values are rendered as YAML).
    public var fields: [String: String]
    /// The document text after the front matter.
    public var body: String

    /// Splits `text` into front matter and body. Text without front matter gives empty fields.
    public static func parse(_ text: String) throws -> FrontMatter {
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
        guard normalized.hasPrefix("---\n") else { return FrontMatter(fields: [:], body: normalized) }
        let rest = normalized.dropFirst(4)
        guard let end = rest.range(of: "\n---\n") ?? rest.range(of: "\n---", options: .backwards).flatMap({
            rest[$0.upperBound...].isEmpty ? $0 : nil
        }) else {
            throw ConclaveError(.ingestion, "Front matter starts with '---' but never ends.")
        }
        let yaml = String(rest[..<end.lowerBound])
        let body = String(rest[end.upperBound...])
        let node: Any?
        do {
            node = try GuardedYAML.load(yaml: yaml)
        } catch {
            throw ConclaveError(.ingestion, "Front matter is not valid YAML.", context: "\(error)")
        }
        var fields: [String: String] = [:]
        if let mapping = node as? [String: Any] {
            for (key, value) in mapping {
                fields[key] = Self.render(value)
            }
        } else if node != nil {
            throw ConclaveError(.ingestion, "Front matter must be a YAML mapping.")
        }
        return FrontMatter(fields: fields, body: body)
    }

    private static func render(_ value: Any) -> String {
        switch value {
        case let string as String: return string
        case let date as Date:
            return ISO8601DateFormatter.dateOnly.string(from: date)
        case let list as [Any]: return list.map(render).joined(separator: ", ")
        default: return "\(value)"
        }
    }
}

import Foundation

extension ISO8601DateFormatter {
    fileprivate static var dateOnly: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter
    }
}
