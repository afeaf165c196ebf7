import ConclaveCore
import ConclaveEmbeddings
import ConclaveKnowledge
import ConclaveStorage
import ConclaveTesting
import Foundation
import Testing

/// Retrieval quality on the Meridian dev set's fact and multi-hop tasks (measuring, not fitting:
/// nothing here tunes retrieval to these questions), and the access scope under vector search.
@Suite(.serialized) struct HybridRetrievalTests {
    /// One store with the Meridian documents and their vectors, shared by the suite.
    actor Shared {
        static let instance = Shared()
        private var value: (store: SQLiteStore, embedder: MiniLMEmbedder, catalog: VectorCatalog)?

        func get() async throws -> (store: SQLiteStore, embedder: MiniLMEmbedder, catalog: VectorCatalog) {
            if let value { return value }
            let store = try SQLiteStore(path: ":memory:")
            let root = TestRuntime.repositoryRoot.path
            let embedder = try await runBlocking { try EmbeddingModel.load(directory: "", projectRoot: root) }
            try await Ingestor(store: store).ingest(paths: [TestRuntime.meridianDocs])
            let catalog = VectorCatalog(store: store, embedder: embedder, model: EmbeddingModel.name)
            _ = try await catalog.current()
            value = (store, embedder, catalog)
            return (store, embedder, catalog)
        }
    }

    private func fixture() async throws -> (store: SQLiteStore, embedder: MiniLMEmbedder, catalog: VectorCatalog) {
        try await Shared.instance.get()
    }

    struct Task_: Decodable {
        struct Turn: Decodable { var user: String }
        struct Expect: Decodable { var sources: [String]? }
        var id: String
        var type: String
        var turns: [Turn]
        var expect: Expect
    }

    /// (question, expected document ids) for the fact and multi-hop tasks that cite documents.
    static func documentTasks() throws -> [(String, Set<String>)] {
        let text = try String(contentsOf: TestRuntime.repositoryRoot.appendingPathComponent("examples/meridian/eval/dev.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").compactMap { line -> (String, Set<String>)? in
            let task = try JSONDecoder().decode(Task_.self, from: Data(line.utf8))
            guard ["fact", "multi_hop"].contains(task.type), let question = task.turns.last?.user else { return nil }
            let documents = Set((task.expect.sources ?? []).filter { !$0.contains(":") })
            return documents.isEmpty ? nil : (question, documents)
        }
    }

    private func recall(_ mode: HybridRetriever.Mode, tasks: [(String, Set<String>)]) async throws -> Double {
        let (store, embedder, catalog) = try await fixture()
        let retriever = HybridRetriever(store: store, embedder: embedder, catalog: catalog, mode: mode)
        var found = 0.0
        for (question, expected) in tasks {
            let ids = Set(try await retriever.retrieve(question, limit: 5).map(\.source.id))
            found += Double(expected.intersection(ids).count) / Double(expected.count)
        }
        return found / Double(tasks.count)
    }

    @Test func hybridRecallAtFiveOfTheExpectedDocumentsIsAtLeastNinetyPercent() async throws {
        let tasks = try Self.documentTasks()
        #expect(tasks.count >= 30)
        let hybrid = try await recall(.hybrid, tasks: tasks)
        let bm25 = try await recall(.bm25, tasks: tasks)
        let vector = try await recall(.vector, tasks: tasks)
        print("recall@5 over \(tasks.count) fact and multi-hop tasks: hybrid \(hybrid), BM25 \(bm25), vector \(vector)")
        #expect(hybrid >= 0.9, "hybrid recall@5 \(hybrid) (BM25 \(bm25), vector \(vector))")
    }

    @Test func vectorSearchNeverReturnsAChunkOutsideTheScope() async throws {
        let (store, embedder, catalog) = try await fixture()
        let readable: Set<String> = ["HR-001", "HR-002", "GEN-001"]
        let scope = DocumentScope(allowedDocumentIDs: readable)
        for mode in [HybridRetriever.Mode.vector, .hybrid] {
            let retriever = HybridRetriever(store: store, embedder: embedder, catalog: catalog, mode: mode)
            let result = try await retriever.retrieve("What are the compensation bands for grade G7 in the executive team?", limit: 5, scope: scope)
            #expect(!result.evidence.isEmpty)
            #expect(result.evidence.allSatisfy { readable.contains($0.source.id) })
        }
    }

    @Test func aChangedDocumentIsReembeddedAndAnOldVectorNeverSurvives() async throws {
        let store = try SQLiteStore(path: ":memory:")
        let (_, embedder, _) = try await fixture()
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("note.md")
        try "# Canteen\n\nThe canteen serves soup on Mondays.".write(to: file, atomically: true, encoding: .utf8)
        try await Ingestor(store: store).ingest(paths: [directory.path])
        let catalog = VectorCatalog(store: store, embedder: embedder, model: EmbeddingModel.name)
        #expect(try await catalog.current().index.count == 1)
        try "# Canteen\n\nThe canteen serves pasta on Fridays.\n\n## Hours\n\nIt opens at noon.".write(to: file, atomically: true, encoding: .utf8)
        try await Ingestor(store: store, chunker: Chunker(maxTokens: 32, overlapTokens: 0)).ingest(paths: [directory.path])
        let snapshot = try await catalog.current()
        #expect(snapshot.index.count == (try await store.chunkCount()))
        let retriever = HybridRetriever(store: store, embedder: embedder, catalog: catalog, mode: .vector)
        let best = try #require(try await retriever.retrieve("What food is served on Fridays?", limit: 1).first)
        #expect(best.text.contains("pasta") && !best.text.contains("soup"))
    }
}
