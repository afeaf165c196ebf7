import Foundation

/// A stored document: its metadata from front matter and its content hash.
public struct DocumentRecord: Sendable, Codable, Hashable {
    /// Document id from front matter (`HR-005`) or derived from the file name.
    public var id: String
    /// Title.
    public var title: String
    /// Owning department.
    public var department: String?
    /// Classification (`public`, `internal`, `confidential`, `restricted`).
    public var classification: String?
    /// Effective date as written (`YYYY-MM-DD`).
    public var effectiveDate: String?
    /// Id of the document this one replaces.
    public var supersedes: String?
    /// Id of the document that replaces this one, if any (computed at ingest).
    public var supersededBy: String?
    /// Where the document was read from.
    public var path: String
    /// SHA-256 of the file content, for incremental re-ingest.
    public var contentHash: String
    /// All front-matter fields as strings.
    public var metadata: [String: String]

    /// Creates a document record.
    public init(id: String, title: String, department: String? = nil, classification: String? = nil,
                effectiveDate: String? = nil, supersedes: String? = nil, supersededBy: String? = nil,
                path: String, contentHash: String, metadata: [String: String] = [:]) {
        self.id = id
        self.title = title
        self.department = department
        self.classification = classification
        self.effectiveDate = effectiveDate
        self.supersedes = supersedes
        self.supersededBy = supersededBy
        self.path = path
        self.contentHash = contentHash
        self.metadata = metadata
    }
}

/// A stored chunk of a document.
public struct ChunkRecord: Sendable, Codable, Hashable {
    /// Chunk id (`<document id>#<position>`).
    public var id: String
    /// Owning document.
    public var documentID: String
    /// Position within the document.
    public var position: Int
    /// Heading path of the section the chunk comes from.
    public var section: String
    /// Chunk text.
    public var text: String

    /// Creates a chunk record.
    public init(id: String, documentID: String, position: Int, section: String, text: String) {
        self.id = id
        self.documentID = documentID
        self.position = position
        self.section = section
        self.text = text
    }
}

/// A chunk found by full-text search.
public struct ChunkHit: Sendable, Hashable {
    /// The chunk.
    public var chunk: ChunkRecord
    /// Title of its document.
    public var documentTitle: String
    /// Id of the document that supersedes the chunk's document, if any.
    public var supersededBy: String?
    /// BM25 relevance (higher is better).
    public var score: Double
    /// The owning department of the chunk's document.
    public var documentDepartment: String?

    /// Creates a hit.
    public init(chunk: ChunkRecord, documentTitle: String, supersededBy: String?, score: Double, documentDepartment: String? = nil) {
        self.chunk = chunk
        self.documentTitle = documentTitle
        self.supersededBy = supersededBy
        self.score = score
        self.documentDepartment = documentDepartment
    }
}
