import ConclaveCore
import Foundation

/// The document formats ingestion understands, chosen by file extension.
public enum DocumentFormat: String, Sendable, CaseIterable {
    case markdown, html, text, csv

    /// The format of a file, or nil if it is not ingestible.
    public init?(path: String) {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "md", "markdown": self = .markdown
        case "html", "htm": self = .html
        case "txt", "text": self = .text
        case "csv": self = .csv
        default: return nil
        }
    }

    /// Converts a body in this format to Markdown-like text whose `#` lines are headings.
    public func normalize(_ body: String) -> String {
        switch self {
        case .markdown, .text: return body
        case .html: return HTMLText.markdown(from: body)
        case .csv: return CSVText.records(from: body)
        }
    }
}

/// Turns HTML into plain text, keeping headings as Markdown `#` lines.
enum HTMLText {
    static func markdown(from html: String) -> String {
        var text = html
        text = replace(#"<!--[\s\S]*?-->"#, in: text, with: "")
        text = replace(#"<(script|style)[^>]*>[\s\S]*?</\1>"#, in: text, with: "")
        for level in 1...6 {
            let hashes = String(repeating: "#", count: level)
            text = replace("<h\(level)[^>]*>([\\s\\S]*?)</h\(level)>", in: text, with: "\n\n\(hashes) $1\n\n")
        }
        text = replace(#"<li[^>]*>"#, in: text, with: "\n- ")
        text = replace(#"</(p|div|tr|table|ul|ol|section|article|li|h[1-6])>"#, in: text, with: "\n")
        text = replace(#"<(br|hr)[^>]*/?>"#, in: text, with: "\n")
        text = replace(#"</t[dh]>"#, in: text, with: " | ")
        text = replace(#"<[^>]+>"#, in: text, with: "")
        text = decodeEntities(text)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: #"[ \t]+"#, with: " ", options: .regularExpression).trimmingCharacters(in: .whitespaces)
        }
        return lines.joined(separator: "\n").replacingOccurrences(of: #"\n{3,}"#, with: "\n\n", options: .regularExpression)
    }

    private static func replace(_ pattern: String, in text: String, with template: String) -> String {
        guard let regex = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]) else { return text }
        return regex.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: template)
    }

    private static func decodeEntities(_ text: String) -> String {
        var result = text
        for (entity, value) in [("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"),
                                ("&apos;", "'"), ("&euro;", "€"), ("&ndash;", "–"), ("&mdash;", "—"), ("&amp;", "&")] {
            result = result.replacingOccurrences(of: entity, with: value)
        }
        return result
    }
}

/// Turns CSV into one text record per row: `column: value; column: value`.
enum CSVText {
    static func records(from csv: String) -> String {
        let rows = parse(csv)
        guard let header = rows.first else { return "" }
        return rows.dropFirst().filter { !$0.allSatisfy(\.isEmpty) }.map { row in
            zip(header, row).filter { !$1.isEmpty }.map { "\($0): \($1)" }.joined(separator: "; ")
        }.joined(separator: "\n")
    }

    /// RFC 4180 parsing: quoted fields, doubled quotes, newlines inside quotes.
    static func parse(_ csv: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var inQuotes = false
        var iterator = csv.makeIterator()
        var lookahead: Character? = iterator.next()
        while let c = lookahead {
            lookahead = iterator.next()
            if inQuotes {
                if c == "\"" {
                    if lookahead == "\"" { field.append("\""); lookahead = iterator.next() } else { inQuotes = false }
                } else {
                    field.append(c)
                }
                continue
            }
            switch c {
            case "\"": inQuotes = true
            case ",": row.append(field.trimmingCharacters(in: .whitespaces)); field = ""
            case "\n", "\r\n":
                row.append(field.trimmingCharacters(in: .whitespaces)); field = ""
                rows.append(row); row = []
            case "\r": break
            default: field.append(c)
            }
        }
        if !field.isEmpty || !row.isEmpty {
            row.append(field.trimmingCharacters(in: .whitespaces))
            rows.append(row)
        }
        return rows
    }
}
