import ConclaveCore
import Foundation

/// The document formats ingestion understands, chosen by file extension.
public enum DocumentFormat: String, Sendable, CaseIterable {
    case markdown, html, text, csv, pdf

    /// The format of a file, or nil if it is not ingestible.
    public init?(path: String) {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "md", "markdown": self = .markdown
        case "html", "htm": self = .html
        case "txt", "text": self = .text
        case "csv": self = .csv
        case "pdf": self = .pdf
        default: return nil
        }
    }

    /// Converts a body in this format to Markdown-like text whose `#` lines are headings.
    public func normalize(_ body: String) -> String {
        switch self {
        case .markdown, .text: return body
        case .html: return HTMLText.markdown(from: body)
        case .csv: return CSVText.records(from: body)
        case .pdf: return PDFText.markdown(from: body)
        }
    }
}

/// Extracts a PDF's text with `pdftotext` (Debian's poppler-utils) and marks its headings.
public enum PDFText {
    /// The text of the PDF at `path` (pages separated by blank lines).
    public static func extract(_ path: String) throws -> String {
        let candidates = ["/usr/bin/pdftotext", "/usr/local/bin/pdftotext", "/opt/homebrew/bin/pdftotext"]
        guard let tool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ConclaveError(.ingestion, "Cannot ingest '\(path)': pdftotext is not installed (install poppler-utils, e.g. `apt-get install poppler-utils`; `make setup` does).")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-enc", "UTF-8", "-eol", "unix", path, "-"]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try ChildProcess.launch(process)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let reason = message.split(separator: "\n").first.map(String.init) ?? "exit status \(process.terminationStatus)"
            throw ConclaveError(.ingestion, "Cannot ingest '\(path)': pdftotext failed: \(reason)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// PDF text as Markdown: the first line is the title, short numbered or title-like lines that
    /// do not end a sentence are section headings, page breaks are paragraph breaks.
    static func markdown(from text: String) -> String {
        var out: [String] = []
        var titled = false
        for raw in text.replacingOccurrences(of: "\u{0C}", with: "\n\n").split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty else { out.append(""); continue }
            if !titled {
                out.append("# " + line)
                titled = true
            } else if isHeading(line) {
                out.append("")
                out.append("## " + line)
            } else {
                out.append(line)
            }
        }
        return out.joined(separator: "\n")
    }

    private static func isHeading(_ line: String) -> Bool {
        guard line.count <= 60, let last = line.last, !".,;:".contains(last) else { return false }
        let words = line.split(separator: " ")
        guard words.count <= 8 else { return false }
        if let first = words.first, first.last == ".", first.dropLast().allSatisfy({ $0.isNumber || $0 == "." }), !first.dropLast().isEmpty {
            return true
        }
        let capitalised = words.filter { $0.first?.isUppercase == true }.count
        return words.count >= 2 && capitalised * 2 > words.count && !line.contains(where: { $0.isNumber })
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
    ///
    /// The delimiters are read as Unicode scalars, not characters: a combining mark after a quote
    /// or a comma joins it into one `Character`, which then was no delimiter at all
    /// (fuzz/FuzzIngestion found `"\u{301}"` read as an unterminated quote).
    static func parse(_ csv: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = String.UnicodeScalarView()
        var inQuotes = false
        func endField() {
            row.append(String(field).trimmingCharacters(in: .whitespaces))
            field = String.UnicodeScalarView()
        }
        var iterator = csv.unicodeScalars.makeIterator()
        var lookahead: Unicode.Scalar? = iterator.next()
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
            case ",": endField()
            case "\n":
                endField()
                rows.append(row); row = []
            case "\r": break
            default: field.append(c)
            }
        }
        if !field.isEmpty || !row.isEmpty {
            endField()
            rows.append(row)
        }
        return rows
    }
}
