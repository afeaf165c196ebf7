import ConclaveEmbeddings
import Foundation
import Testing

/// A small vocabulary: ids are line numbers.
private let tinyVocab = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "un", "##aff", "##able", "!", ",", "cafe",
    "a", "b", "c", "你", "##s", "run", "$", "5", "-", "well", "known", "i", "##stanbul",
]

private func withVocab<T>(_ lines: [String], _ body: (WordPieceTokenizer, String) throws -> T) throws -> T {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("vocab.txt").path
    try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return try body(try WordPieceTokenizer(vocabPath: path), path)
}

private func id(_ token: String) -> Int32 { Int32(tinyVocab.firstIndex(of: token) ?? -1) }

@Suite("WordPiece tokenizer")
struct WordPieceTokenizerTests {
    @Test("lowercases, splits punctuation and adds [CLS]/[SEP]")
    func basic() throws {
        try withVocab(tinyVocab) { tok, _ in
            #expect(tok.encode("Hello, WORLD!") == [2, id("hello"), id(","), id("world"), id("!"), 3])
            #expect(tok.encode("") == [2, 3])
            #expect(tok.encode(" \t\n ") == [2, 3])
        }
    }

    @Test("greedy longest-match-first with ## continuations; unknown words become [UNK]")
    func wordPiece() throws {
        try withVocab(tinyVocab) { tok, _ in
            #expect(tok.encode("unaffable runs") == [2, id("un"), id("##aff"), id("##able"), id("run"), id("##s"), 3])
            #expect(tok.encode("unzzz hello") == [2, 1, id("hello"), 3])
            #expect(tok.encode(String(repeating: "a", count: 101)) == [2, 1, 3])
            #expect(tok.tokenize("unaffable") == ["un", "##aff", "##able"])
        }
    }

    @Test("strips accents, drops control characters, isolates CJK and ASCII symbols")
    func normalization() throws {
        try withVocab(tinyVocab) { tok, _ in
            #expect(tok.encode("CAFÉ") == [2, id("cafe"), 3])
            #expect(tok.encode("ca\u{0}f\u{7}e\u{200B}") == [2, id("cafe"), 3])
            #expect(tok.encode("hello你world") == [2, id("hello"), id("你"), id("world"), 3])
            #expect(tok.encode("$5 well-known") == [2, id("$"), id("5"), id("well"), id("-"), id("known"), 3])
            #expect(tok.encode("İstanbul") == [2, id("i"), id("##stanbul"), 3])
        }
    }

    @Test("truncates to maxLength including [CLS]/[SEP]")
    func truncation() throws {
        try withVocab(tinyVocab) { tok, _ in
            #expect(tok.encode("a b c a b c", maxLength: 4) == [2, id("a"), id("b"), 3])
            #expect(tok.encode("unaffable", maxLength: 4) == [2, id("un"), id("##aff"), 3])
            #expect(tok.encode("a b", maxLength: 0) == [2, 3])
        }
    }

    @Test("clear errors for a missing file or a vocabulary without special tokens")
    func errors() throws {
        do {
            _ = try WordPieceTokenizer(vocabPath: "/nonexistent/vocab.txt")
            Issue.record("expected an error")
        } catch let error as TokenizerError {
            #expect(error.description.contains("/nonexistent/vocab.txt"))
            #expect(error.description.contains("does not exist"))
        }
        do {
            _ = try withVocab(["hello", "world"]) { _, _ in Issue.record("expected an error") }
        } catch let error as TokenizerError {
            #expect(error.description.contains("[CLS]"))
        }
    }
}
