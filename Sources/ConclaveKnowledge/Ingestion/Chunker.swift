/// Splits normalised document text into chunks by heading structure, each bounded by an
/// approximate token budget, with overlap between neighbouring chunks of one section.
public struct Chunker: Sendable {
    /// One chunk: the heading path it sits under and its text.
    public struct Piece: Sendable, Hashable {
        /// Heading path, for example `Travel and Expense Policy > 3. Accommodation limits per night`.
        public var section: String
        /// Chunk text.
        public var text: String
    }

    /// Target chunk size in approximate tokens.
    public var maxTokens: Int
    /// Tokens repeated from the end of the previous chunk of the same section.
    public var overlapTokens: Int

    /// Creates a chunker.
    public init(maxTokens: Int = 200, overlapTokens: Int = 30) {
        self.maxTokens = maxTokens
        self.overlapTokens = overlapTokens
    }

    /// Approximate token count: words × 4/3, the usual ratio for English BPE vocabularies.
    public static func estimateTokens(_ text: String) -> Int {
        let words = text.split(whereSeparator: isWordSeparator).count
        return (words * 4 + 2) / 3
    }

    /// What separates the words ``estimateTokens(_:)`` counts. Splitting and overlap use the same
    /// rule, or a chunk's estimate exceeds its budget (a tab-separated line, an overlap that spans lines).
    static func isWordSeparator(_ c: Character) -> Bool {
        c == " " || c == "\n" || c == "\t"
    }

    /// Splits `text` into chunks.
    public func chunk(_ text: String, title: String) -> [Piece] {
        var pieces: [Piece] = []
        var headings: [(level: Int, text: String)] = []
        var paragraphs: [String] = []
        var current: [String] = []

        func flushParagraph() {
            let paragraph = current.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            if !paragraph.isEmpty { paragraphs.append(paragraph) }
            current = []
        }
        func flushSection() {
            flushParagraph()
            let path = ([title] + headings.map(\.text)).filter { !$0.isEmpty }
            var deduplicated: [String] = []
            for part in path where deduplicated.last != part { deduplicated.append(part) }
            pieces += pack(paragraphs, section: deduplicated.joined(separator: " > "))
            paragraphs = []
        }

        var inFence = false
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(rawLine)
            if line.hasPrefix("```") { inFence.toggle() }
            if !inFence, let heading = Self.heading(line) {
                flushSection()
                headings.removeAll { $0.level >= heading.level }
                headings.append(heading)
                continue
            }
            if line.trimmingCharacters(in: .whitespaces).isEmpty && !inFence {
                flushParagraph()
            } else {
                current.append(line)
            }
        }
        flushSection()
        return pieces
    }

    private static func heading(_ line: String) -> (level: Int, text: String)? {
        guard line.hasPrefix("#") else { return nil }
        let level = line.prefix(while: { $0 == "#" }).count
        guard level <= 6 else { return nil }
        let rest = line.dropFirst(level)
        guard rest.first == " " else { return nil }
        let text = rest.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "**", with: "")
        return text.isEmpty ? nil : (level, text)
    }

    /// Packs paragraphs into chunks of at most `maxTokens`; a paragraph longer than the budget is
    /// split by lines, then by words. Consecutive chunks share `overlapTokens` of text.
    private func pack(_ paragraphs: [String], section: String) -> [Piece] {
        var units: [String] = []
        // Units that are a table with its own header need no overlap before them.
        var selfContained = Set<Int>()
        for paragraph in paragraphs {
            if Self.estimateTokens(paragraph) <= maxTokens {
                if Self.tableHeaderLines(paragraph.split(separator: "\n")[...]) > 0 { selfContained.insert(units.count) }
                units.append(paragraph)
            } else if let tables = tableBlocks(paragraph) {
                for table in tables {
                    selfContained.insert(units.count)
                    units.append(table)
                }
            } else {
                for line in paragraph.split(separator: "\n") {
                    let line = String(line)
                    if Self.estimateTokens(line) <= maxTokens {
                        units.append(line)
                    } else {
                        let words = line.split(whereSeparator: Self.isWordSeparator)
                        let step = max(1, maxTokens * 3 / 4)
                        var start = 0
                        while start < words.count {
                            units.append(words[start..<min(words.count, start + step)].joined(separator: " "))
                            start += step
                        }
                    }
                }
            }
        }
        var pieces: [Piece] = []
        var buffer: [String] = []
        var tokens = 0
        for (index, unit) in units.enumerated() {
            let unitTokens = Self.estimateTokens(unit)
            if tokens + unitTokens > maxTokens, !buffer.isEmpty {
                pieces.append(Piece(section: section, text: buffer.joined(separator: "\n\n")))
                let overlap = selfContained.contains(index) ? "" : tail(of: buffer.joined(separator: "\n\n"), tokens: overlapTokens)
                buffer = overlap.isEmpty ? [] : [overlap]
                tokens = Self.estimateTokens(overlap)
            }
            buffer.append(unit)
            tokens += unitTokens
        }
        if !buffer.isEmpty, !(pieces.count > 0 && buffer.count == 1 && overlapTokens > 0 && buffer[0] == tail(of: pieces.last!.text, tokens: overlapTokens)) {
            pieces.append(Piece(section: section, text: buffer.joined(separator: "\n\n")))
        }
        return pieces
    }

    /// The text from the start of its last `tokens * 3 / 4` words (at most `tokens` by the
    /// estimate); when that spans a line break, from the next line's start, so that the overlap
    /// holds whole lines (a table row cut in two reads as two broken rows).
    private func tail(of text: String, tokens: Int) -> String {
        guard tokens > 0 else { return "" }
        let words = text.split(whereSeparator: Self.isWordSeparator)
        let count = max(0, tokens * 3 / 4)
        guard count > 0, words.count > count else { return "" }
        let start = words[words.count - count].startIndex
        if start > text.startIndex, text[text.index(before: start)] != "\n", let newline = text[start...].firstIndex(of: "\n") {
            return String(text[text.index(after: newline)...]).trimmingCharacters(in: .newlines)
        }
        return String(text[start...])
    }

    /// An oversized table paragraph (a Markdown table, or a plain-text one whose header sits
    /// above a `---+---` rule) as tables of its rows that fit the budget, each under the header
    /// repeated, so every chunk's rows keep their column names. Nil when the paragraph is no
    /// such table, or its header takes more than half the budget.
    private func tableBlocks(_ paragraph: String) -> [String]? {
        let lines = paragraph.split(separator: "\n").map(String.init)
        // The table may follow a few lines of its own (a plain-text heading and its underline).
        guard let start = Self.tableStart(lines.map { Substring($0) }) else { return nil }
        let header = lines[start..<(start + 2)].joined(separator: "\n")
        let headerTokens = Self.estimateTokens(header)
        guard headerTokens * 2 <= maxTokens else { return nil }
        var blocks: [String] = []
        var rows: [String] = []
        var tokens = headerTokens
        if start > 0 {
            let preamble = lines[..<start].joined(separator: "\n")
            guard Self.estimateTokens(preamble) <= maxTokens else { return nil }
            blocks.append(preamble)
        }
        for line in lines[(start + 2)...] {
            let lineTokens = Self.estimateTokens(line)
            guard headerTokens + lineTokens <= maxTokens else { return nil }  // a row too long for any chunk: split by lines instead
            if tokens + lineTokens > maxTokens, !rows.isEmpty {
                blocks.append(([header] + rows).joined(separator: "\n"))
                rows = []
                tokens = headerTokens
            }
            rows.append(line)
            tokens += lineTokens
        }
        if !rows.isEmpty { blocks.append(([header] + rows).joined(separator: "\n")) }
        return blocks
    }

    /// Where a table's header starts among the first four of `lines` (after a plain-text heading
    /// and its underline, say), or nil when they hold none.
    static func tableStart(_ lines: [Substring]) -> Int? {
        (0..<min(lines.count, 4)).first { tableHeaderLines(lines[$0...]) > 0 }
    }

    /// 2 when `lines` open with a table header and its rule (`| a | b |` over `|---|---|`, or
    /// `a | b` over `---+---`), else 0.
    static func tableHeaderLines(_ lines: ArraySlice<Substring>) -> Int {
        guard lines.count >= 3, lines[lines.startIndex].contains("|") else { return 0 }
        let rule = lines[lines.startIndex + 1].trimmingCharacters(in: .whitespaces)
        let ruleCharacters: Set<Character> = ["-", "=", "+", "|", ":", " "]
        guard rule.count >= 3, rule.allSatisfy(ruleCharacters.contains), rule.contains("-"),
              rule.contains("|") || rule.contains("+") else { return 0 }
        return 2
    }
}
