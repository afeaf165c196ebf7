import Testing
import ConclaveVectors

@Suite("ExactIndex")
struct ExactIndexTests {
    let dims = 96

    @Test("returns the true top-k in order")
    func trueTopK() throws {
        let all = clusteredVectors(count: 3025, dimensions: dims, clusters: 30, seed: 1)
        let data = all.prefix(3000)
        let index = ExactIndex(dimensions: dims)
        var stored: [Int: [Float]] = [:]
        for (i, v) in data.enumerated() {
            try index.add(id: i * 3 + 7, vector: v)
            stored[i * 3 + 7] = v
        }
        #expect(index.count == 3000)
        let queries = all.suffix(25)
        for q in queries {
            let found = index.search(q, k: 10)
            let truth = referenceTopK(stored, q, k: 10)
            #expect(found.count == 10)
            for (f, t) in zip(found, truth) {
                // Same rank, same score (ids may only differ on exact float ties).
                #expect(abs(Double(f.score) - t.score) < 1e-5)
            }
            #expect(recallAt(found, truth) >= 0.9)
            #expect(zip(found, found.dropFirst()).allSatisfy { $0.score >= $1.score })
        }
    }

    @Test("k larger than the collection and empty index")
    func smallCollections() throws {
        let index = ExactIndex(dimensions: 4)
        #expect(index.search([1, 0, 0, 0], k: 5).isEmpty)
        try index.add(id: 1, vector: [1, 0, 0, 0])
        try index.add(id: 2, vector: [0, 1, 0, 0])
        let found = index.search([0.6, 0.8, 0, 0], k: 5)
        #expect(found.map(\.id) == [2, 1])
        #expect(index.search([1, 0, 0], k: 1).isEmpty)  // wrong query dimension
        #expect(index.search([1, 0, 0, 0], k: 0).isEmpty)
    }

    @Test("replace and remove")
    func replaceAndRemove() throws {
        let index = ExactIndex(dimensions: 3)
        try index.add(id: 10, vector: [1, 0, 0])
        try index.add(id: 11, vector: [0, 1, 0])
        try index.add(id: 12, vector: [0, 0, 1])
        try index.add(id: 10, vector: [0, 0.8, 0.6])  // replace
        #expect(index.count == 3)
        #expect(index.search([1, 0.1, 0], k: 1).first?.id == 11)
        index.remove(id: 11)
        index.remove(id: 999)  // absent: no-op
        #expect(index.count == 2)
        let found = index.search([0, 1, 0], k: 3)
        #expect(found.map(\.id) == [10, 12])
        #expect(!found.contains { $0.id == 11 })
    }

    @Test("filter returns only passing ids and still k results when selective")
    func filtered() throws {
        let all = clusteredVectors(count: 5001, dimensions: dims, clusters: 50, seed: 2)
        let data = all.prefix(5000)
        let index = ExactIndex(dimensions: dims)
        var stored: [Int: [Float]] = [:]
        for (i, v) in data.enumerated() {
            try index.add(id: i, vector: v)
            stored[i] = v
        }
        let q = all[5000]
        let passes: (Int) -> Bool = { $0 % 50 == 0 }  // 2% of ids
        let found = index.search(q, k: 10, filter: passes)
        #expect(found.count == 10)
        #expect(found.allSatisfy { passes($0.id) })
        #expect(recallAt(found, referenceTopK(stored, q, k: 10, filter: passes)) >= 0.9)
        // Fewer passing ids than k: all of them.
        #expect(index.search(q, k: 10, filter: { $0 < 3 }).count == 3)
    }

    @Test("save/load round trip gives identical results")
    func roundTrip() throws {
        let all = clusteredVectors(count: 1510, dimensions: dims, clusters: 20, seed: 3)
        let data = all.prefix(1500)
        let index = ExactIndex(dimensions: dims)
        for (i, v) in data.enumerated() { try index.add(id: i - 500, vector: v) }
        index.remove(id: 0)
        let path = temporaryPath("exact.idx")
        defer { removeFile(path) }
        try index.save(to: path)
        let loaded = try ExactIndex.load(from: path)
        #expect(loaded.count == index.count)
        #expect(loaded.dimensions == dims)
        for q in all.suffix(10) {
            #expect(loaded.search(q, k: 10) == index.search(q, k: 10))
        }
        try loaded.add(id: 5000, vector: data[0])
        #expect(loaded.search(data[0], k: 1).first?.score ?? 0 > 0.999)
    }

    @Test("batch search matches sequential search")
    func batch() throws {
        let data = clusteredVectors(count: 800, dimensions: dims, clusters: 10, seed: 4)
        let index = ExactIndex(dimensions: dims)
        for (i, v) in data.enumerated() { try index.add(id: i, vector: v) }
        let queries = Array(data.prefix(100))
        let sequential = queries.map { index.search($0, k: 5) }
        #expect(index.search(batch: queries, k: 5, threads: 2) == sequential)
        #expect(index.search(batch: queries, k: 5, threads: 1) == sequential)
    }
}

@Suite("Odd dimensions (kernel tails)")
struct OddDimensionTests {
    @Test("exact single, batched and filtered search match the reference for d = 37")
    func exactOddDimension() throws {
        let d = 37
        let all = clusteredVectors(count: 2_050, dimensions: d, clusters: 12, seed: 21)
        let index = ExactIndex(dimensions: d)
        var stored: [Int: [Float]] = [:]
        for (i, v) in all.prefix(2_000).enumerated() {
            try index.add(id: i, vector: v)
            stored[i] = v
        }
        let queries = Array(all.suffix(50)) + [[Float](repeating: 0.1, count: 5)]  // last: wrong dimension
        let single = queries.map { index.search($0, k: 7) }
        #expect(index.search(batch: queries, k: 7, threads: 2) == single)
        #expect(index.search(batch: queries, k: 7, threads: 1) == single)
        #expect(single.last?.isEmpty == true)
        for (q, found) in zip(queries.dropLast(), single) {
            let truth = referenceTopK(stored, q, k: 7)
            #expect(found.count == 7)
            for (f, t) in zip(found, truth) { #expect(abs(Double(f.score) - t.score) < 1e-5) }
            let filtered = index.search(q, k: 7, filter: { $0 % 7 == 3 })
            let filteredTruth = referenceTopK(stored, q, k: 7, filter: { $0 % 7 == 3 })
            for (f, t) in zip(filtered, filteredTruth) { #expect(abs(Double(f.score) - t.score) < 1e-5) }
        }
    }

    @Test("HNSW with d = 37 finds exact duplicates")
    func hnswOddDimension() throws {
        let d = 37
        let data = clusteredVectors(count: 1_000, dimensions: d, clusters: 10, seed: 22)
        let index = HNSWIndex(dimensions: d, parameters: .init(m: 8, efConstruction: 64))
        for (i, v) in data.enumerated() { try index.add(id: i, vector: v) }
        var hits = 0
        for i in stride(from: 0, to: 1_000, by: 10) where index.search(data[i], k: 1).first?.id == i { hits += 1 }
        #expect(hits >= 98)
    }
}
