/// Which documents a request may read. The governance layer's policy decision point computes it
/// from the principal; retrieval applies it before any passage reaches an agent or a model.
///
/// The same scope carries what the principal may read through the connectors: database tables,
/// sensitive columns and API operations (nil sets mean everything).
public struct DocumentScope: Sendable, Hashable, Codable {
    /// Readable document ids; nil means every document.
    public var allowedDocumentIDs: Set<String>?
    /// Readable database tables; nil means every table.
    public var readableTables: Set<String>?
    /// Columns (`table.column`) whose values, aggregates and rankings the principal may not see.
    public var deniedColumns: Set<String>
    /// Columns (`table.column`) the principal sees only masked.
    public var maskedColumns: Set<String>
    /// API operations (`GET /path`) the principal may call; nil means every operation.
    public var allowedOperations: Set<String>?
    /// A request's own filter on documents (metadata filters); nil means none. Documents outside
    /// it are simply not searched: unlike the policy's exclusions they are never "withheld".
    public var filterDocumentIDs: Set<String>?

    /// Creates a scope.
    public init(allowedDocumentIDs: Set<String>?, readableTables: Set<String>? = nil, deniedColumns: Set<String> = [],
                maskedColumns: Set<String> = [], allowedOperations: Set<String>? = nil) {
        self.allowedDocumentIDs = allowedDocumentIDs
        self.readableTables = readableTables
        self.deniedColumns = deniedColumns
        self.maskedColumns = maskedColumns
        self.allowedOperations = allowedOperations
    }

    /// Every document (governance off, or a tool without a principal).
    public static let unrestricted = DocumentScope(allowedDocumentIDs: nil)

    /// True when the document may be read and passes the request's filter.
    public func allows(_ documentID: String) -> Bool {
        (allowedDocumentIDs?.contains(documentID) ?? true) && (filterDocumentIDs?.contains(documentID) ?? true)
    }

    /// True when the request's filter admits the document but the policy keeps it from the principal.
    public func withholds(_ documentID: String) -> Bool {
        (filterDocumentIDs?.contains(documentID) ?? true) && !(allowedDocumentIDs?.contains(documentID) ?? true)
    }

    /// The documents a search may consider (policy and filter together); nil means every document.
    public var searchableDocumentIDs: Set<String>? {
        switch (allowedDocumentIDs, filterDocumentIDs) {
        case (nil, nil): return nil
        case (let a?, nil): return a
        case (nil, let f?): return f
        case (let a?, let f?): return a.intersection(f)
        }
    }

    /// True when the table may be queried.
    public func allows(table: String) -> Bool {
        readableTables?.contains(table) ?? true
    }

    /// True when the API operation (`GET /path`) may be called.
    public func allows(operation: String) -> Bool {
        allowedOperations?.contains(operation) ?? true
    }
}

/// A document that matched a question but that the principal may not read. Only its identity
/// and owner travel on (never its text), so the answer can say that the information is
/// restricted and who owns it.
public struct WithheldSource: Sendable, Codable, Hashable {
    /// Document id.
    public var documentID: String
    /// Owning department, when the document names one.
    public var department: String?
    /// Fraction of the question's content words the withheld passage (with its headings) covers.
    public var coverage: Double

    /// Creates a withheld source.
    public init(documentID: String, department: String?, coverage: Double) {
        self.documentID = documentID
        self.department = department
        self.coverage = coverage
    }
}
