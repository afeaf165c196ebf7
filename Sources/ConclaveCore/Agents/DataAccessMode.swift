/// Where a workflow may take its evidence from (the study's data-access variable).
public enum DataAccessMode: String, Sendable, Codable, Hashable, CaseIterable {
    /// Retrieval over the ingested documents.
    case rag
    /// Governed query templates over the business database.
    case database
    /// GET operations of the internal API.
    case api
    /// Answers cached per normalised question and access scope (invalidated on re-ingest).
    case cached

    /// The modes named in a comma- or space-separated list; nil when any name is unknown.
    public static func parse(_ list: String) -> Set<DataAccessMode>? {
        var out = Set<DataAccessMode>()
        for name in list.split(whereSeparator: { $0 == "," || $0 == " " }) {
            guard let mode = DataAccessMode(rawValue: name.lowercased()) else { return nil }
            out.insert(mode)
        }
        return out.isEmpty ? nil : out
    }

    /// The modes used when neither the workflow nor the request chooses.
    public static let standard: Set<DataAccessMode> = [.rag, .database, .api]
}
