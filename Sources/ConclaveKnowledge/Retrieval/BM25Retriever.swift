import ConclaveCore
import ConclaveStorage

/// Lexical retrieval over the stored chunks with SQLite FTS5's BM25 ranking.
///
/// A chunk of a superseded document never ranks above a chunk of the document that replaces it.
public struct BM25Retriever: Retriever {
    private let store: any DocumentStore

    /// Creates a retriever over `store`.
    public init(store: any DocumentStore) {
        self.store = store
    }

    public func retrieve(_ query: String, limit: Int, scope: DocumentScope) async throws -> Retrieval {
        guard let expression = Self.matchExpression(for: query) else { return Retrieval(evidence: []) }
        let breadth = max(limit * 3, 12)
        // One search over everything; the ACL-filtered search runs only when too few of its hits
        // are readable. Either way no unreadable chunk goes further than this function.
        let all = try await store.searchChunks(matching: expression, limit: breadth, allowedDocuments: nil)
        var hits = all.filter { scope.allows($0.chunk.documentID) }
        if scope.searchableDocumentIDs != nil, hits.count < breadth, all.count == breadth {
            hits = try await store.searchChunks(matching: expression, limit: breadth, allowedDocuments: scope.searchableDocumentIDs)
        }
        let evidence = Self.demoteSuperseded(hits, query: query).prefix(limit).map { hit in
            Evidence(chunkID: hit.chunk.id,
                     source: SourceRef(id: hit.chunk.documentID, title: hit.documentTitle, section: hit.chunk.section),
                     text: hit.chunk.text, score: hit.score, subQuestion: query)
        }
        guard scope.allowedDocumentIDs != nil else { return Retrieval(evidence: Array(evidence)) }
        // What the scope kept out: the documents of the best unfiltered hits outside it, judged by
        // how much of the question their hits cover together (a contact sheet's rota and its phone
        // list are two chunks of one answer). Their text stops here.
        let wanted = TermSet(query)
        var covered: [String: TermSet] = [:]
        var withheld: [String: WithheldSource] = [:]
        for hit in all.prefix(limit) where scope.withholds(hit.chunk.documentID) && !wanted.isEmpty {
            let terms = wanted.intersection(TermSet(hit.chunk.text + " " + hit.chunk.section + " " + hit.documentTitle))
            let union = covered[hit.chunk.documentID].map { $0.union(terms) } ?? terms
            covered[hit.chunk.documentID] = union
            withheld[hit.chunk.documentID] = WithheldSource(documentID: hit.chunk.documentID, department: hit.documentDepartment,
                                                            coverage: Double(union.count) / Double(wanted.count))
        }
        return Retrieval(evidence: Array(evidence), withheld: withheld.values.sorted { $0.coverage > $1.coverage })
    }

    /// Words by which a question asks about an earlier version of a document.
    static let earlierVersionCues: Set<String> = ["previous", "old", "older", "earlier", "former", "superseded", "prior",
                                                   "outdated", "replaced", "obsolete", "version", "versions", "history"]

    /// True when `query` asks about an earlier version ("the previous travel policy", "version 3",
    /// "v3"): only then do superseded documents take part in retrieval.
    public static func asksForEarlierVersions(_ query: String) -> Bool {
        query.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).contains { word in
            earlierVersionCues.contains(String(word)) || (word.count >= 2 && word.first == "v" && word.dropFirst().allSatisfy(\.isNumber))
        }
    }

    /// Superseded documents are left out unless the query asks for earlier versions; then every
    /// version competes on its relevance alone.
    static func demoteSuperseded(_ hits: [ChunkHit], query: String) -> [ChunkHit] {
        let kept = asksForEarlierVersions(query) ? hits : hits.filter { $0.supersededBy == nil }
        return kept.sorted { $0.score > $1.score }
    }

    /// An FTS5 expression that matches any of the query's content words, each quoted.
    public static func matchExpression(for query: String) -> String? {
        let terms = QueryTerms.extract(from: query)
        guard !terms.isEmpty else { return nil }
        return terms.map { "\"\($0)\"" }.joined(separator: " OR ")
    }
}

/// Content words of a query: lowercased, stop words removed, duplicates dropped.
public enum QueryTerms {
    /// Extracts content words from `text`.
    public static func extract(from text: String) -> [String] {
        var seen = Set<String>()
        var terms: [String] = []
        func add(_ term: String) {
            guard term.utf8.count > 1 || term.utf8.first.map({ $0 >= 0x30 && $0 <= 0x39 }) == true,
                  !stopWords.contains(term), seen.insert(term).inserted else { return }
            terms.append(term)
        }
        // Fast path for ASCII text (the common case): split and lowercase bytes directly.
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            var word: [UInt8] = []
            word.reserveCapacity(24)
            for byte in text.utf8 {
                switch byte {
                case 0x41...0x5A: word.append(byte + 0x20)
                case 0x61...0x7A, 0x30...0x39: word.append(byte)
                default:
                    if !word.isEmpty { add(String(decoding: word, as: UTF8.self)); word.removeAll(keepingCapacity: true) }
                }
            }
            if !word.isEmpty { add(String(decoding: word, as: UTF8.self)) }
            return terms
        }
        for word in text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }) {
            add(String(word))
        }
        return terms
    }

    /// English function words that carry no retrieval signal.
    public static let stopWords: Set<String> = [
        "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with", "about", "as",
        "into", "from", "up", "down", "out", "over", "under", "is", "are", "was", "were", "be", "been", "being", "am",
        "do", "does", "did", "doing", "have", "has", "had", "having", "i", "me", "my", "we", "our", "you", "your",
        "he", "she", "it", "its", "they", "them", "their", "this", "that", "these", "those", "what", "which", "who",
        "whom", "whose", "when", "where", "why", "how", "can", "could", "should", "would", "will", "shall", "may",
        "might", "must", "there", "here", "so", "than", "too", "very", "just", "any", "some", "all", "each", "no",
        "not", "only", "own", "same", "such", "both", "few", "more", "most", "other", "also", "please", "tell",
        "much", "many", "get", "got", "us", "s", "t", "don", "then", "again", "once", "per",
    ]
}
