import ConclaveCore
import Logging

/// Everything a Conclave process keeps, in one database: conversations, documents and chunks,
/// run events, the audit chain, the outcomes of distributed steps and the rate-limit buckets. ``SQLiteStore`` (embedded) and ``PostgresStore`` (shared,
/// distributed mode) implement it; one conformance suite runs against both.
public protocol ConclaveStore: ConversationStore, DocumentStore, EventStore, AuditStore, StepResultStore, RateLimitStore {
    /// True when the database answers a trivial query (readiness).
    func isHealthy() async -> Bool
    /// Releases connections; the store is unusable afterwards.
    func close() async
}

/// Opens the store the configuration names.
public enum StoreFactory {
    /// `storage.driver` `sqlite` opens `storage.path`; `postgres` connects to `storage.url` with
    /// `storage.password` (normally from `CONCLAVE_STORAGE__PASSWORD`) and migrates it.
    public static func open(_ configuration: StorageConfiguration, logger: Logger = Logger(label: "conclave.storage")) async throws
        -> any ConclaveStore {
        switch configuration.driver {
        case .sqlite:
            return try SQLiteStore(path: configuration.path)
        case .postgres:
            return try await PostgresStore(url: configuration.url, password: configuration.password.isEmpty ? nil : configuration.password,
                                           maxConnections: configuration.maxConnections, logger: logger)
        }
    }
}
