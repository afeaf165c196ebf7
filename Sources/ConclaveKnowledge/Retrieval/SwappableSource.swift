import ConclaveCore
import Synchronization

/// An evidence source that `conclave reload` can replace while the server runs (the database
/// connector, when its template file changes). Each lookup uses the source that is current when
/// the lookup starts.
public final class SwappableSource: EvidenceSource {
    public let mode: DataAccessMode
    private let current: Mutex<any EvidenceSource>

    /// Wraps `source`; a replacement must have the same mode.
    public init(_ source: any EvidenceSource) {
        mode = source.mode
        current = Mutex(source)
    }

    /// The source in use.
    public var source: any EvidenceSource { current.withLock { $0 } }

    /// Swaps in `source` for the lookups that start from now on.
    public func replace(with source: any EvidenceSource) {
        precondition(source.mode == mode, "a swappable source keeps its data-access mode")
        current.withLock { $0 = source }
    }

    public func lookup(_ question: String, scope: DocumentScope) async throws -> Retrieval {
        try await source.lookup(question, scope: scope)
    }
}
