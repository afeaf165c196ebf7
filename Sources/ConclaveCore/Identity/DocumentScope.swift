/// Which documents a request may read. The governance layer's policy decision point computes it
/// from the principal; retrieval applies it before any passage reaches an agent or a model.
public struct DocumentScope: Sendable, Hashable {
    /// Readable document ids; nil means every document.
    public var allowedDocumentIDs: Set<String>?

    /// Creates a scope.
    public init(allowedDocumentIDs: Set<String>?) {
        self.allowedDocumentIDs = allowedDocumentIDs
    }

    /// Every document (governance off, or a tool without a principal).
    public static let unrestricted = DocumentScope(allowedDocumentIDs: nil)

    /// True when the document may be read.
    public func allows(_ documentID: String) -> Bool {
        allowedDocumentIDs?.contains(documentID) ?? true
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
