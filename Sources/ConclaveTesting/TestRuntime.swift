import ConclaveCore
import ConclaveInference
import ConclaveKnowledge
import ConclaveServer
import ConclaveStorage
import Foundation
import Logging

/// Builders for test runtimes and fixtures.
public enum TestRuntime {
    /// The repository root (the directory holding `Package.swift`), found from this source file.
    public static var repositoryRoot: URL {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url = url.deletingLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    /// `examples/meridian/docs` in the repository.
    public static var meridianDocs: String {
        repositoryRoot.appendingPathComponent("examples/meridian/docs").path
    }

    /// A configuration for tests of orchestration and the API: in-memory store (unless
    /// `storagePath` is given), port 0, and explicitly no authentication and no access control
    /// (governance tests use ``governedConfiguration(directory:)``).
    public static func configuration(storagePath: String = ":memory:") -> ConclaveConfiguration {
        var configuration = ConclaveConfiguration()
        configuration.storage.path = storagePath
        configuration.server.port = 0
        configuration.server.shutdownGraceSeconds = 10
        configuration.auth.mode = .none
        configuration.governance.mode = .off
        configuration.knowledge.sqlTemplatesFile = repositoryRoot.appendingPathComponent("config/connectors/meridian-sql.yaml").path
        // No fixture API server runs by default; tests of the API connector start one and set the file.
        configuration.knowledge.apiFile = ""
        // BM25 keeps the many runtimes of the test suite from embedding the corpus each time;
        // the retrieval and embeddings tests use the vector modes explicitly.
        configuration.knowledge.retrieval = "bm25"
        return configuration
    }

    /// A configuration with JWT authentication (a fresh HS256 key in `directory`), the Meridian
    /// users and policy, and governance `full`.
    public static func governedConfiguration(directory: URL, storagePath: String = ":memory:") throws -> ConclaveConfiguration {
        var configuration = configuration(storagePath: storagePath)
        let key = directory.appendingPathComponent("hs256.key")
        try (RandomID.make() + RandomID.make()).write(to: key, atomically: true, encoding: .utf8)
        configuration.auth = AuthConfiguration(mode: .jwt, hs256KeyFile: key.path,
                                               usersFile: repositoryRoot.appendingPathComponent("examples/meridian/identities/users.yaml").path)
        configuration.governance = GovernanceConfiguration(
            mode: .full, policyFile: repositoryRoot.appendingPathComponent("config/policies/meridian.yaml").path)
        configuration.audit.signingKeyFile = directory.appendingPathComponent("audit-ed25519.key").path
        return configuration
    }

    /// A runtime over `model` with the given documents ingested.
    public static func make(model: any ChatModel, configuration: ConclaveConfiguration = TestRuntime.configuration(),
                            documents: [String] = []) async throws -> ConclaveRuntime {
        let runtime = try await ConclaveRuntime(configuration: configuration, model: model, logger: Logger(label: "test"))
        if !documents.isEmpty {
            if let store = runtime.store as? SQLiteStore {
                try await IngestedTemplates.shared.template(of: documents).copy(into: store)
            } else {
                try await Ingestor(store: runtime.store).ingest(paths: documents)
            }
        }
        return runtime
    }

    /// A scratch directory removed by the caller.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("conclave-test-\(RandomID.make())")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The documents of ``TestRuntime/make(model:configuration:documents:)``, ingested once per test
/// process into an in-memory store and copied into each runtime's SQLite store: the suite's many
/// runtimes do not each parse and index the same files again (run all at once, those ingestions
/// kept both cores busy for half a minute and starved the tests that measure deadlines).
actor IngestedTemplates {
    static let shared = IngestedTemplates()
    private var templates: [[String]: Task<SQLiteStore, any Error>] = [:]

    func template(of documents: [String]) async throws -> SQLiteStore {
        if let template = templates[documents] { return try await template.value }
        let template = Task {
            let store = try SQLiteStore(path: ":memory:")
            try await Ingestor(store: store).ingest(paths: documents)
            return store
        }
        templates[documents] = template
        return try await template.value
    }
}
