// Ingestion's readers: the HTML and CSV normalisers (`DocumentFormat.normalize`) and the `Chunker`
// that splits Markdown, run on every input as the `Ingestor` runs them on a file's body. The
// chunk budget and overlap come from the input.
//
// Properties:
// - HTML: without character references in the input (`&`, which decode to `<` and `>`), the
//   text has no markup left: nothing of the form `<…>`;
// - CSV: parsing is stable: the rows written back as RFC 4180 (every field quoted, quotes doubled)
//   parse to the same rows;
// - chunks: none is empty, none exceeds the budget by more than the overlap (what the unit tests
//   promise), and every word of every line that is not a heading is in some chunk (no text lost).
@testable import ConclaveKnowledge
import Foundation
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = Fuzz.text(start, count)
    var choices = FuzzChoices(Fuzz.bytes(start, count))
    let maxTokens = choices.int(in: 4...240)
    let chunker = Chunker(maxTokens: maxTokens, overlapTokens: choices.int(in: 0...(maxTokens / 2)))

    let html = DocumentFormat.html.normalize(text)
    if !text.contains("&") {
        Fuzz.check(html.range(of: "<[^>]+>", options: .regularExpression) == nil, "markup left in \(html.debugDescription)")
    }

    let rows = CSVText.parse(text)
    let rewritten = rows.map { row in row.map(quoted).joined(separator: ",") + "\n" }.joined()
    let reparsed = CSVText.parse(rewritten)
    Fuzz.check(reparsed == rows, "CSV rows \(rows) written as \(rewritten.debugDescription) parse as \(reparsed)")
    let csv = DocumentFormat.csv.normalize(text)

    for normalized in [text, html, csv] {
        let pieces = chunker.chunk(normalized, title: "Fuzz")
        for piece in pieces {
            Fuzz.check(!piece.text.isEmpty, "an empty chunk")
            let tokens = Chunker.estimateTokens(piece.text)
            Fuzz.check(tokens <= chunker.maxTokens + chunker.overlapTokens,
                       "a chunk of \(tokens) tokens, budget \(chunker.maxTokens) + overlap \(chunker.overlapTokens)")
        }
        let chunked = Set(pieces.flatMap { words($0.text) })
        for line in bodyLines(normalized) {
            for word in words(line) where !chunked.contains(word) {
                Fuzz.fail("the word \(word.debugDescription) of line \(line.debugDescription) is in no chunk")
            }
        }
    }
    return 0
}

/// A CSV field in quotes, its quotes doubled, by Unicode scalar: `replacingOccurrences` compares
/// characters, and a quote followed by a combining mark is another character.
private func quoted(_ field: String) -> String {
    var out = String.UnicodeScalarView()
    out.append("\"")
    for scalar in field.unicodeScalars {
        if scalar == "\"" { out.append("\"") }
        out.append(scalar)
    }
    out.append("\"")
    return String(out)
}

/// Words as `Chunker.estimateTokens` counts them, without whitespace scalars: a word may begin
/// with a space that a combining mark joins to it, which the chunker's trimming removes.
private func words(_ text: Substring) -> [String] {
    text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map { word in
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: word.unicodeScalars.filter { !$0.properties.isWhitespace })
        return String(scalars)
    }.filter { !$0.isEmpty }
}

private func words(_ text: String) -> [String] {
    words(Substring(text))
}

/// The lines that are not Markdown headings (`#` to `######`, a space, some text; not inside a
/// ``` fence), which the chunker keeps as text.
private func bodyLines(_ text: String) -> [Substring] {
    var lines: [Substring] = []
    var inFence = false
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasPrefix("```") { inFence.toggle() }
        let hashes = line.prefix(while: { $0 == "#" }).count
        let rest = line.dropFirst(hashes)
        let heading = !inFence && (1...6).contains(hashes) && rest.first == " "
            && !rest.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "**", with: "").isEmpty
        if !heading { lines.append(line) }
    }
    return lines
}
