import ConclaveEmbeddings
import Foundation
import Testing

@Suite("MiniLM embedder vs sentence-transformers reference")
struct MiniLMEmbedderTests {
    @Test("tokenizer ids equal the reference tokenizer's for every fixture sentence")
    func tokenIDsMatchReference() throws {
        let fixture = try Shared.fixture.get()
        let embedder = try Shared.embedder2.get()
        #expect(embedder.maxSequenceLength == fixture.max_seq_length)
        for c in fixture.cases {
            let ids = embedder.tokenizer.encode(c.text, maxLength: fixture.max_seq_length)
            #expect(ids == c.token_ids, "token ids differ for \(c.text.debugDescription)")
        }
    }

    @Test("embeddings have cosine >= 0.999 with sentence-transformers for every fixture sentence")
    func embeddingsMatchReference() throws {
        let fixture = try Shared.fixture.get()
        let embedder = try Shared.embedder2.get()
        #expect(embedder.dimensions == fixture.dimensions)
        let vectors = try embedder.embed(fixture.cases.map(\.text))
        #expect(vectors.count == fixture.cases.count)
        var worst = 1.0
        for (c, v) in zip(fixture.cases, vectors) {
            let cos = cosine(v, c.embedding)
            worst = min(worst, cos)
            #expect(cos >= 0.999, "cosine \(cos) for \(c.text.debugDescription)")
        }
        print("MiniLM min cosine vs sentence-transformers: \(worst) (backend: \(embedder.backendDescription))")
    }

    @Test("vectors are L2-normalised and have 384 dimensions")
    func vectorsAreUnitLength() throws {
        let fixture = try Shared.fixture.get()
        let embedder = try Shared.embedder2.get()
        for v in try embedder.embed(fixture.cases.map(\.text) + ["x", "another sentence"]) {
            #expect(v.count == 384)
            #expect(abs(norm(v) - 1) < 1e-5)
            #expect(v.allSatisfy { $0.isFinite })
        }
    }

    @Test("batch, single and multi-threaded encodes agree")
    func batchAndSingleAgree() throws {
        let fixture = try Shared.fixture.get()
        let two = try Shared.embedder2.get()
        let one = try Shared.embedder1.get()
        // Duplicates, different lengths, and more than one batch of 32.
        var texts = fixture.cases.map(\.text)
        texts += texts.reversed()
        let batched = try two.embed(texts)
        let sequential = try one.embed(texts)
        for (i, text) in texts.enumerated() {
            let single = try two.embed([text])[0]
            #expect(cosine(single, batched[i]) > 0.99999, "batch vs single differ for \(text.debugDescription)")
            #expect(zip(single, batched[i]).allSatisfy { abs($0 - $1) < 1e-4 })
            #expect(cosine(sequential[i], batched[i]) > 0.99999, "1 vs 2 threads differ for \(text.debugDescription)")
        }
    }

    @Test("the portable Swift kernels match the reference and the float32 OpenBLAS path")
    func swiftKernelsMatch() throws {
        let fixture = try Shared.fixture.get()
        let dir = try Shared.modelDirectory.get()
        let portable = try MiniLMEmbedder(directory: dir, threads: 2, kernels: .swift)
        #expect(portable.backendDescription == "Swift SIMD kernels")
        let float32 = try MiniLMEmbedder(directory: dir, threads: 2, kernels: .float32)
        #expect(!float32.backendDescription.contains("bfloat16"))
        let blasVectors = try float32.embed(fixture.cases.map(\.text))
        let vectors = try portable.embed(fixture.cases.map(\.text))
        var worst = 1.0
        for (i, c) in fixture.cases.enumerated() {
            worst = min(worst, cosine(vectors[i], c.embedding))
            #expect(cosine(vectors[i], c.embedding) >= 0.999, "Swift kernels, \(c.text.debugDescription)")
            #expect(cosine(vectors[i], blasVectors[i]) > 0.99999, "Swift vs OpenBLAS, \(c.text.debugDescription)")
        }
        print("MiniLM min cosine vs sentence-transformers: \(worst) (backend: \(portable.backendDescription))")
    }

    @Test("the default kernels (bfloat16 AMX where the CPU has it) stay within cosine 0.9999 of float32")
    func defaultKernelsMatchFloat32() throws {
        let fixture = try Shared.fixture.get()
        let dir = try Shared.modelDirectory.get()
        let fastest = try Shared.embedder2.get()
        let float32 = try MiniLMEmbedder(directory: dir, threads: 2, kernels: .float32)
        // The fixture's texts, and the same texts joined into long ones (up to the 256-token cap).
        var texts = fixture.cases.map(\.text)
        texts += stride(from: 0, to: texts.count, by: 4).map { texts[$0..<min($0 + 4, texts.count)].joined(separator: " ") }
        let a = try fastest.embed(texts), b = try float32.embed(texts)
        var worst = 1.0
        for i in texts.indices {
            worst = min(worst, cosine(a[i], b[i]))
            #expect(cosine(a[i], b[i]) > 0.9999, "\(fastest.backendDescription) vs float32, \(texts[i].prefix(60).debugDescription)")
        }
        print("MiniLM min cosine, default kernels vs float32: \(worst) (backend: \(fastest.backendDescription))")
    }

    @Test("empty input gives no vectors")
    func emptyInput() throws {
        let embedder = try Shared.embedder2.get()
        let vectors = try embedder.embed([])
        #expect(vectors.isEmpty)
    }

    @Test("locate finds the package model directory and rejects roots without it")
    func locate() throws {
        let dir = try Shared.modelDirectory.get()
        #expect(FileManager.default.fileExists(atPath: dir + "/model.safetensors"))
        #expect(MiniLMEmbedder.locate(searchRoots: ["/nonexistent-root", packageRoot]) == dir)
        #expect(MiniLMEmbedder.locate(searchRoots: [dir]) == dir)
        #expect(MiniLMEmbedder.locate(searchRoots: ["/nonexistent-root"]) == nil)
    }

    @Test("init reports a clear error for a directory without the model")
    func missingModelDirectory() throws {
        let tmp = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        do {
            _ = try MiniLMEmbedder(directory: tmp.path)
            Issue.record("expected an error")
        } catch let error as EmbedderError {
            #expect(error.description.contains("model.safetensors"))
            #expect(error.description.contains(tmp.path))
        }
    }
}
