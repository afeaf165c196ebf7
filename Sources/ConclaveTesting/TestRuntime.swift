import ConclaveCore
import ConclaveInference
import ConclaveKnowledge
import ConclaveServer
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

    /// A configuration for tests: in-memory store (unless `storagePath` is given), port 0.
    public static func configuration(storagePath: String = ":memory:") -> ConclaveConfiguration {
        var configuration = ConclaveConfiguration()
        configuration.storage.path = storagePath
        configuration.server.port = 0
        configuration.server.shutdownGraceSeconds = 10
        return configuration
    }

    /// A runtime over `model` with the given documents ingested.
    public static func make(model: any ChatModel, configuration: ConclaveConfiguration = TestRuntime.configuration(),
                            documents: [String] = []) async throws -> ConclaveRuntime {
        let runtime = try ConclaveRuntime(configuration: configuration, model: model, logger: Logger(label: "test"))
        if !documents.isEmpty {
            try await Ingestor(store: runtime.store).ingest(paths: documents)
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
