import Foundation

/// An error raised while loading a WordPiece vocabulary.
public struct TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The vocabulary file involved.
    public let path: String
    /// What is wrong with it.
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "vocabulary file '\(path)': \(message)" }
}

/// BERT *uncased* tokenizer: the basic tokenizer followed by greedy WordPiece, producing the
/// same ids as Hugging Face's `BertTokenizer`/`BertTokenizerFast` with `do_lower_case=True`
/// (as used by sentence-transformers for all-MiniLM-L6-v2).
///
/// Normalisation, in the order of the `tokenizers` library's `BertNormalizer`:
/// 1. drop NUL, U+FFFD and control/format/unassigned/private-use characters (tab, CR and LF
///    are kept) and turn every whitespace character into a space;
/// 2. surround CJK ideographs with spaces, so each becomes its own word;
/// 3. strip accents: canonical decomposition (NFD) and removal of non-spacing marks (Mn);
/// 4. lowercase.
///
/// Pre-tokenisation splits on whitespace and isolates every punctuation character (Unicode
/// `P*` categories plus all ASCII symbols such as `$ + < = > ^ \` | ~`). Each word is then
/// split greedily into the longest vocabulary entries, continuation pieces prefixed with
/// `##`; a word that cannot be split, or is longer than 100 characters, becomes `[UNK]`.
public struct WordPieceTokenizer: Sendable {
    /// Token → id.
    public let vocabulary: [String: Int32]
    /// Id of `[CLS]`.
    public let clsID: Int32
    /// Id of `[SEP]`.
    public let sepID: Int32
    /// Id of `[UNK]`.
    public let unknownID: Int32
    /// Id of `[PAD]` (0 for BERT vocabularies; informational).
    public let padID: Int32
    /// Words longer than this many Unicode scalars become `[UNK]`.
    public let maxInputCharsPerWord: Int = 100

    /// Loads a `vocab.txt` (one token per line; the line number is the id).
    /// - Throws: ``TokenizerError`` if the file cannot be read or lacks `[CLS]`, `[SEP]` or `[UNK]`.
    public init(vocabPath: String) throws {
        let contents: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: vocabPath))
            guard let text = String(data: data, encoding: .utf8) else {
                throw TokenizerError(path: vocabPath, message: "file is not valid UTF-8")
            }
            contents = text
        } catch let error as TokenizerError {
            throw error
        } catch {
            let exists = FileManager.default.fileExists(atPath: vocabPath)
            throw TokenizerError(path: vocabPath, message: exists ? "cannot read file (\(error.localizedDescription))" : "file does not exist")
        }
        var vocabulary: [String: Int32] = [:]
        var lines = contents.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        vocabulary.reserveCapacity(lines.count)
        for (index, line) in lines.enumerated() {
            var token = Substring(line)
            if token.hasSuffix("\r") { token = token.dropLast() }
            // Later duplicates win, as in both HF implementations.
            vocabulary[String(token)] = Int32(index)
        }
        func required(_ token: String) throws -> Int32 {
            guard let id = vocabulary[token] else {
                throw TokenizerError(path: vocabPath, message: "vocabulary has no \(token) token (\(vocabulary.count) entries read)")
            }
            return id
        }
        self.clsID = try required("[CLS]")
        self.sepID = try required("[SEP]")
        self.unknownID = try required("[UNK]")
        self.padID = vocabulary["[PAD]"] ?? 0
        self.vocabulary = vocabulary
    }

    /// Token ids for `text`: `[CLS]`, the WordPiece ids truncated to `maxLength - 2`, `[SEP]`.
    /// - Parameter maxLength: Maximum sequence length including `[CLS]`/`[SEP]`; values below 2 are treated as 2.
    public func encode(_ text: String, maxLength: Int = 256) -> [Int32] {
        let budget = max(maxLength, 2) - 2
        var ids: [Int32] = [clsID]
        ids.reserveCapacity(min(budget, text.utf8.count + 8) + 2)
        var remaining = budget
        if remaining > 0 {
            for word in words(text) {
                appendWordPieces(word, to: &ids, limit: &remaining)
                if remaining == 0 { break }
            }
        }
        ids.append(sepID)
        return ids
    }

    /// The word-piece strings for `text` (no `[CLS]`/`[SEP]`, no truncation). Useful for debugging.
    public func tokenize(_ text: String) -> [String] {
        var reverse: [Int32: String] = [:]
        var ids: [Int32] = []
        var unlimited = Int.max
        for word in words(text) { appendWordPieces(word, to: &ids, limit: &unlimited) }
        for (token, id) in vocabulary where reverse[id] == nil { reverse[id] = token }
        return ids.map { reverse[$0] ?? "[UNK]" }
    }

    // MARK: - Basic tokenizer

    /// Normalises `text` and splits it into words (arrays of Unicode scalars).
    func words(_ text: String) -> [[Unicode.Scalar]] {
        let normalized = normalize(text)
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for scalar in normalized {
            if Self.isWhitespace(scalar) {
                if !current.isEmpty { words.append(current); current.removeAll(keepingCapacity: true) }
            } else if Self.isPunctuation(scalar) {
                if !current.isEmpty { words.append(current); current.removeAll(keepingCapacity: true) }
                words.append([scalar])
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// Clean-up, CJK spacing, accent stripping and lowercasing, as a scalar sequence.
    func normalize(_ text: String) -> [Unicode.Scalar] {
        // Fast path: pure ASCII needs no decomposition or Unicode case mapping.
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(text.utf8.count)
            for byte in text.utf8 {
                switch byte {
                case 0x09, 0x0A, 0x0D, 0x20: out.append(" ")
                case 0x00..<0x20, 0x7F: continue  // control characters
                case 0x41...0x5A: out.append(Unicode.Scalar(byte + 0x20))
                default: out.append(Unicode.Scalar(byte))
                }
            }
            return out
        }

        // 1. clean text + 2. CJK spacing.
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { continue }
            if Self.isWhitespace(scalar) {
                cleaned.append(" ")
            } else if Self.isCJK(scalar) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        // 3. strip accents: NFD, then drop non-spacing marks.
        let decomposed = String(cleaned).decomposedStringWithCanonicalMapping
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(decomposed.unicodeScalars.count)
        for scalar in decomposed.unicodeScalars {
            if scalar.properties.generalCategory == .nonspacingMark { continue }
            // 4. lowercase (full, context-free per-character mapping, as Rust's char::to_lowercase).
            if scalar.properties.changesWhenLowercased {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return out
    }

    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x20, 0x09, 0x0A, 0x0D: return true
        case 0..<0x80: return false
        default: return scalar.properties.isWhitespace
        }
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: return false
        default:
            switch scalar.properties.generalCategory {
            case .control, .format, .unassigned, .privateUse, .surrogate: return true
            default: return false
            }
        }
    }

    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        if v < 0x80 { return false }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK Unified Ideograph blocks BERT treats as single-character words.
    static func isCJK(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    // MARK: - WordPiece

    /// Appends the pieces of one word, at most `limit` of them (decrementing `limit`).
    private func appendWordPieces(_ word: [Unicode.Scalar], to ids: inout [Int32], limit: inout Int) {
        guard limit > 0 else { return }
        if word.count > maxInputCharsPerWord {
            ids.append(unknownID)
            limit -= 1
            return
        }
        var pieces: [Int32] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while start < end {
                var candidate = start > 0 ? "##" : ""
                candidate.unicodeScalars.append(contentsOf: word[start..<end])
                if let id = vocabulary[candidate] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                pieces = [unknownID]
                break
            }
            pieces.append(id)
            start = end
        }
        let take = min(pieces.count, limit)
        ids.append(contentsOf: pieces.prefix(take))
        limit -= take
    }
}
