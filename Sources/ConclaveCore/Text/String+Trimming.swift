extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and newlines. A cheap alternative to
    /// Foundation's `trimmingCharacters(in:)`, which showed up in the agents' profiles.
    @inlinable
    public var trimmed: String {
        var start = startIndex
        var end = endIndex
        while start < end, self[start] == " " || self[start] == "\t" || self[start] == "\n" || self[start] == "\r" {
            start = index(after: start)
        }
        while end > start {
            let before = index(before: end)
            let c = self[before]
            guard c == " " || c == "\t" || c == "\n" || c == "\r" else { break }
            end = before
        }
        return String(self[start..<end])
    }

    /// The text without leading and trailing punctuation (Unicode categories P*, as Foundation's
    /// `CharacterSet.punctuationCharacters`).
    @inlinable
    public var withoutSurroundingPunctuation: String {
        var start = startIndex
        var end = endIndex
        while start < end, self[start].isPunctuation { start = index(after: start) }
        while end > start, self[index(before: end)].isPunctuation { end = index(before: end) }
        return String(self[start..<end])
    }

    /// The text with every `**` (Markdown bold) removed.
    @inlinable
    public var withoutBoldMarkers: String {
        guard utf8.contains(UInt8(ascii: "*")) else { return String(self) }
        var out = ""
        out.reserveCapacity(utf8.count)
        var previousStar = false
        for c in self {
            if c == "*" {
                if previousStar { previousStar = false } else { previousStar = true }
                continue
            }
            if previousStar { out.append("*"); previousStar = false }
            out.append(c)
        }
        if previousStar { out.append("*") }
        return out
    }
}
