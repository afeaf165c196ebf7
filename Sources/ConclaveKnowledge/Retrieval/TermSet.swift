import ConclaveCore

/// The content words of a text as a small sorted set of 64-bit word hashes.
///
/// The agents compare word sets many times per run (a question against every candidate sentence,
/// every generated sentence against the validated facts). Building `Set<String>` for each of them
/// allocated a string per word and dominated the agents' profiles; a `TermSet` scans the UTF-8
/// bytes once, allocates one array, and intersects by merging sorted integers.
///
/// Words are what ``QueryTerms/extract(from:)`` yields (maximal runs of letters and digits,
/// lowercased, stop words and one-letter words dropped), optionally reduced by ``stem(_:)``. Two
/// different words share a hash with probability about 2⁻⁶⁴ per pair, which is far below anything
/// these overlap scores can notice.
public struct TermSet: Sendable, Hashable {
    /// The word hashes, sorted and unique.
    public private(set) var hashes: [UInt64]

    /// The content words of `text`. `stemmed` applies ``stem(_:)``; `includeNumbers: false` drops
    /// words made only of digits.
    public init(_ text: String, stemmed: Bool = true, includeNumbers: Bool = true) {
        var out: [UInt64] = []
        TextWords.forEach(in: text) { word in
            guard word.count > 1 || word[0] >= 0x30 && word[0] <= 0x39 else { return }
            let whole = TextWords.hash(word)
            guard !TextWords.isStopWord(whole) else { return }
            if !includeNumbers && word.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { return }
            out.append(stemmed ? TextWords.stemmedHash(word, whole: whole) : whole)
        }
        out.sort()
        hashes = Self.unique(out)
    }

    private init(sorted hashes: [UInt64]) {
        self.hashes = hashes
    }

    /// No words.
    public static let empty = TermSet(sorted: [])

    /// Number of distinct words.
    public var count: Int { hashes.count }

    /// True when the text had no content words.
    public var isEmpty: Bool { hashes.isEmpty }

    /// Number of words in both sets.
    public func intersectionCount(_ other: TermSet) -> Int {
        var count = 0
        merge(other) { inSelf, inOther, _ in if inSelf && inOther { count += 1 } }
        return count
    }

    /// Words in both sets.
    public func intersection(_ other: TermSet) -> TermSet {
        var out: [UInt64] = []
        merge(other) { inSelf, inOther, hash in if inSelf && inOther { out.append(hash) } }
        return TermSet(sorted: out)
    }

    /// Words of this set that are not in `other`.
    public func subtracting(_ other: TermSet) -> TermSet {
        var out: [UInt64] = []
        merge(other) { inSelf, inOther, hash in if inSelf && !inOther { out.append(hash) } }
        return TermSet(sorted: out)
    }

    /// Words in either set.
    public func union(_ other: TermSet) -> TermSet {
        var out: [UInt64] = []
        out.reserveCapacity(hashes.count + other.hashes.count)
        merge(other) { _, _, hash in out.append(hash) }
        return TermSet(sorted: out)
    }

    /// True when every word of this set is in `other`.
    public func isSubset(of other: TermSet) -> Bool {
        var subset = true
        merge(other) { inSelf, inOther, _ in if inSelf && !inOther { subset = false } }
        return subset
    }

    /// True when the sets share no word.
    public func isDisjoint(with other: TermSet) -> Bool {
        intersectionCount(other) == 0
    }

    /// Walks both sorted arrays once, reporting each distinct hash and which sets hold it.
    @inline(__always)
    private func merge(_ other: TermSet, _ visit: (_ inSelf: Bool, _ inOther: Bool, _ hash: UInt64) -> Void) {
        let a = hashes
        let b = other.hashes
        var i = 0
        var j = 0
        while i < a.count && j < b.count {
            if a[i] == b[j] {
                visit(true, true, a[i])
                i += 1
                j += 1
            } else if a[i] < b[j] {
                visit(true, false, a[i])
                i += 1
            } else {
                visit(false, true, b[j])
                j += 1
            }
        }
        while i < a.count { visit(true, false, a[i]); i += 1 }
        while j < b.count { visit(false, true, b[j]); j += 1 }
    }

    private static func unique(_ sorted: [UInt64]) -> [UInt64] {
        guard sorted.count > 1 else { return sorted }
        var out = sorted
        var write = 1
        for read in 1..<out.count where out[read] != out[write - 1] {
            out[write] = out[read]
            write += 1
        }
        out.removeLast(out.count - write)
        return out
    }

    /// A crude English stem (plural and common suffixes), so "days" meets "day": the first of
    /// `ing`, `ies` (→ `y`), `es`, `s`, `ed` that ends a word at least four letters longer than it;
    /// a word with none of them loses a final `e` when longer than four letters, so "acknowledge"
    /// meets "acknowledged" and "employee" meets "employees".
    public static func stem(_ word: String) -> String {
        var w = word
        for suffix in ["ing", "ies", "es", "s", "ed"] where w.utf8.count > suffix.utf8.count + 3 && w.hasSuffix(suffix) {
            w.removeLast(suffix.count)
            if suffix == "ies" { w += "y" }
            return w
        }
        if w.utf8.count > 4 && w.hasSuffix("e") { w.removeLast() }
        return w
    }
}

/// Word scanning and hashing shared by ``TermSet`` and the agents' wording rules.
public enum TextWords {
    /// Calls `body` with each word of `text` in order: a maximal run of letters and digits,
    /// lowercased, as UTF-8 bytes. ASCII text is scanned byte by byte without allocating; other
    /// text goes through the standard library's Unicode-aware lowercasing and letter tests.
    public static func forEach(in text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var text = text
        let ascii = text.withUTF8 { bytes -> Bool in
            guard !bytes.contains(where: { $0 >= 0x80 }) else { return false }
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { word in
                var length = 0
                var overflow: [UInt8] = []
                func flush() {
                    if length > word.count {
                        overflow.withUnsafeBufferPointer { body($0) }
                        overflow.removeAll(keepingCapacity: true)
                    } else if length > 0 {
                        body(UnsafeBufferPointer(rebasing: word[0..<length]))
                    }
                    length = 0
                }
                for byte in bytes {
                    let lowered: UInt8
                    switch byte {
                    case 0x41...0x5A: lowered = byte + 0x20
                    case 0x61...0x7A, 0x30...0x39: lowered = byte
                    default:
                        flush()
                        continue
                    }
                    if length < word.count {
                        word[length] = lowered
                    } else {
                        if length == word.count { overflow = Array(word) }
                        overflow.append(lowered)
                    }
                    length += 1
                }
                flush()
            }
            return true
        }
        guard !ascii else { return }
        for word in text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }) {
            var bytes = Array(word.utf8)
            bytes.withUnsafeMutableBufferPointer { body(UnsafeBufferPointer($0)) }
        }
    }

    /// FNV-1a over `bytes`, continuing from `seed`.
    @inline(__always)
    public static func hash(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var h = seed
        for b in bytes {
            h ^= UInt64(b)
            h &*= 0x0000_0100_0000_01b3
        }
        return h
    }

    /// A hash of `text` with ASCII letters folded to lower case (other bytes as they are): a cheap
    /// key for spotting repeated sentences.
    public static func caseFoldedHash(_ text: String) -> UInt64 {
        hash(ByteSearch.asciiLowercased(text.utf8))
    }

    /// The hash of a lowercased word.
    public static func hash(_ word: String) -> UInt64 {
        hash(word.utf8)
    }

    /// The hash of the stem of `word` (see ``TermSet/stem(_:)``); `whole` is `hash(word)`.
    static func stemmedHash(_ word: UnsafeBufferPointer<UInt8>, whole: UInt64) -> UInt64 {
        let n = word.count
        func ends(_ suffix: StaticString) -> Bool {
            let s = suffix.utf8Start
            let k = suffix.utf8CodeUnitCount
            guard n > k + 3 else { return false }
            for i in 0..<k where word[n - k + i] != s[i] { return false }
            return true
        }
        if ends("ing") { return hash(word[0..<(n - 3)]) }
        if ends("ies") { return hash(CollectionOfOne(UInt8(ascii: "y")), seed: hash(word[0..<(n - 3)])) }
        if ends("es") { return hash(word[0..<(n - 2)]) }
        if ends("s") { return hash(word[0..<(n - 1)]) }
        if ends("ed") { return hash(word[0..<(n - 2)]) }
        return n > 4 && word[n - 1] == UInt8(ascii: "e") ? hash(word[0..<(n - 1)]) : whole
    }

    /// True when `hash` is a stop word's. A binary search over a sorted array: cheaper than a
    /// `Set`, whose SipHash per lookup showed up in profiles.
    static func isStopWord(_ hash: UInt64) -> Bool {
        let table = stopWordHashes
        var low = 0
        var high = table.count
        while low < high {
            let mid = (low + high) / 2
            if table[mid] < hash { low = mid + 1 } else { high = mid }
        }
        return low < table.count && table[low] == hash
    }

    private static let stopWordHashes: [UInt64] = QueryTerms.stopWords.map(hash).sorted()
}
