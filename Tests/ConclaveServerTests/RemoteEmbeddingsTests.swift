import ConclaveCore
import ConclaveInference
import ConclaveKnowledge
import ConclaveServer
import ConclaveStorage
import ConclaveTesting
import Foundation
import Logging
import Testing

/// Retrieval over an OpenAI-compatible `/v1/embeddings` endpoint (`knowledge.embedding_model`
/// naming an `inference.models` entry), against the fake backend (a test double whose vector
/// of a text is `[characters, words, 1]`).
@Suite struct RemoteEmbeddingsTests {
    static let notes = [
        "a.md": "# Canteen\n\nSoup.",
        "b.md": "# Parking\n\nThe car park behind the main building has forty spaces for visitors and staff on weekdays.",
        "c.md": "# Lockers\n\nLockers are assigned by the facilities team.",
    ]

    func configuration(_ url: String, directory: URL, model: String) -> ConclaveConfiguration {
        var configuration = TestRuntime.configuration()
        configuration.inference.models = [NamedModelConfiguration(name: "fake-embed", endpoints: [url], healthPath: "", chat: false,
                                                                  embeddings: true)]
        configuration.knowledge.retrieval = "vector"
        configuration.knowledge.embeddingModel = model
        return configuration
    }

    @Test func vectorRetrievalRanksByTheNamedModelsVectors() async throws {
        let upstream = FakeOpenAIServer(.answer("unused"))
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, text) in Self.notes { try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        try await upstream.run { url in
            let runtime = try await TestRuntime.make(model: ScriptedChatModel(), configuration: configuration(url, directory: directory, model: "fake-embed"),
                                                     documents: [directory.path])
            let catalog = try #require(runtime.vectors)
            let model = await catalog.model
            #expect(model == "fake-embed")
            let snapshot = try await catalog.current()
            #expect(snapshot.dimensions == 3 && snapshot.index.count == Self.notes.count)
            #expect(upstream.embeddingCallCount >= 1)
            // The fake's vectors order texts by their characters-per-word ratio: the nearest chunk
            // to a query is the one whose ratio is closest, whatever the words say.
            let query = "Where can visitors leave a car during the week?"
            let best = try #require(try await runtime.retriever.retrieve(query, limit: 1).first)
            // Every chunk, as the catalog embeds it (none has a vector under another model's name).
            let chunks = try await runtime.store.chunksWithoutEmbedding(model: "no-such-model")
            #expect(chunks.count == Self.notes.count)
            let expected = try #require(chunks.min { a, b in
                distance(query, VectorCatalog.embeddingText(a)) < distance(query, VectorCatalog.embeddingText(b))
            })
            #expect(best.chunkID == expected.chunkID)
        }
    }

    @Test func anEmptyStoreHasAnEmptyIndexAndNoVectorSearch() async throws {
        let upstream = FakeOpenAIServer(.answer("unused"))
        try await upstream.run { url in
            let runtime = try await TestRuntime.make(model: ScriptedChatModel(),
                                                     configuration: configuration(url, directory: URL(fileURLWithPath: "/"), model: "fake-embed"))
            let snapshot = try await #require(runtime.vectors).current()
            #expect(snapshot.dimensions == 0 && snapshot.index.count == 0)
            #expect(try await runtime.retriever.retrieve("Where can visitors park?", limit: 3).isEmpty)
        }
    }

    @Test func aModelThatServesNoEmbeddingsIsAConfigurationError() async throws {
        let upstream = FakeOpenAIServer(.answer("unused"))
        try await upstream.run { url in
            for name in ["nope", "smollm2"] {
                let error = await #expect(throws: ConfigurationError.self) {
                    _ = try await ConclaveRuntime(configuration: configuration(url, directory: URL(fileURLWithPath: "/"), model: name),
                                                  model: ScriptedChatModel(), logger: Logger(label: "test"))
                }
                #expect(error?.key == "knowledge.embedding_model")
            }
        }
    }

    /// 1 − cosine of the fake's normalised vectors.
    func distance(_ a: String, _ b: String) -> Float {
        let x = FakeOpenAIServer.embedding(of: a), y = FakeOpenAIServer.embedding(of: b)
        let dot = zip(x, y).map(*).reduce(0, +)
        let norms = x.map { $0 * $0 }.reduce(0, +).squareRoot() * y.map { $0 * $0 }.reduce(0, +).squareRoot()
        return 1 - dot / norms
    }
}
