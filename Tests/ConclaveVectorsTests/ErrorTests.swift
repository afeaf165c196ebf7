import Testing
import ConclaveVectors

@Suite("Errors and file validation")
struct ErrorTests {
    @Test("wrong dimension and non-finite values are rejected with clear messages")
    func invalidVectors() throws {
        for index in [ExactIndex(dimensions: 3) as any VectorIndex, HNSWIndex(dimensions: 3)] {
            let e = #expect(throws: VectorIndexError.self) { try index.add(id: 1, vector: [1, 2]) }
            #expect(e?.kind == .dimensionMismatch)
            #expect(e?.description.contains("2 elements") == true)
            #expect(e?.description.contains("3 dimensions") == true)
            let nan = #expect(throws: VectorIndexError.self) { try index.add(id: 1, vector: [1, .nan, 0]) }
            #expect(nan?.kind == .invalidArgument)
            #expect(index.count == 0)
        }
    }

    static func savedFiles() throws -> (exact: String, hnsw: String) {
        let data = clusteredVectors(count: 300, dimensions: 16, clusters: 4, seed: 5)
        let exact = ExactIndex(dimensions: 16)
        let hnsw = HNSWIndex(dimensions: 16, parameters: .init(m: 8, efConstruction: 32))
        for (i, v) in data.enumerated() {
            try exact.add(id: i, vector: v)
            try hnsw.add(id: i, vector: v)
        }
        let paths = (temporaryPath("e.idx"), temporaryPath("h.idx"))
        try exact.save(to: paths.0)
        try hnsw.save(to: paths.1)
        return paths
    }

    static func loadError(_ path: String, hnsw: Bool) -> VectorIndexError? {
        do {
            if hnsw { _ = try HNSWIndex.load(from: path) } else { _ = try ExactIndex.load(from: path) }
            return nil
        } catch let error as VectorIndexError {
            return error
        } catch {
            return nil
        }
    }

    @Test("truncated, corrupted, wrong-magic, wrong-version and missing files")
    func badFiles() throws {
        let (exactPath, hnswPath) = try Self.savedFiles()
        defer {
            removeFile(exactPath)
            removeFile(hnswPath)
        }
        for (path, isHNSW) in [(exactPath, false), (hnswPath, true)] {
            let original = readFile(path)
            #expect(original.count > 100)
            #expect(Self.loadError(path, hnsw: isHNSW) == nil)
            let scratch = temporaryPath("bad.idx")
            defer { removeFile(scratch) }

            for cut in [original.count - 1, original.count / 2, 20, 10, 0] {
                writeFile(scratch, Array(original.prefix(cut)))
                let e = Self.loadError(scratch, hnsw: isHNSW)
                #expect(e?.kind == .truncated, "cut at \(cut): \(String(describing: e))")
                #expect(e?.description.contains("truncated") == true)
            }

            var flipped = original
            flipped[original.count / 2] ^= 0x40
            writeFile(scratch, flipped)
            let corrupt = Self.loadError(scratch, hnsw: isHNSW)
            #expect(corrupt?.kind == .corrupt)
            #expect(corrupt?.description.contains("checksum") == true)

            writeFile(scratch, original + [0, 0, 0])
            #expect(Self.loadError(scratch, hnsw: isHNSW)?.kind == .corrupt)

            var magic = original
            magic[0] = UInt8(ascii: "X")
            writeFile(scratch, magic)
            let m = Self.loadError(scratch, hnsw: isHNSW)
            #expect(m?.kind == .wrongMagic)
            #expect(m?.description.contains("magic") == true)

            var version = original
            version[8] = 99
            writeFile(scratch, version)
            let v = Self.loadError(scratch, hnsw: isHNSW)
            #expect(v?.kind == .unsupportedVersion)
            #expect(v?.description.contains("version 99") == true)
        }
        // Loading one index type as the other names both.
        let cross = Self.loadError(exactPath, hnsw: true)
        #expect(cross?.kind == .wrongMagic)
        #expect(cross?.description.contains("ExactIndex") == true)
        #expect(Self.loadError("/nonexistent/dir/x.idx", hnsw: false)?.kind == .io)
    }

    @Test("save to an unwritable location throws an I/O error")
    func unwritable() throws {
        let index = ExactIndex(dimensions: 2)
        try index.add(id: 1, vector: [1, 0])
        let e = #expect(throws: VectorIndexError.self) { try index.save(to: "/nonexistent/dir/x.idx") }
        #expect(e?.kind == .io)
    }
}
