import Dispatch
import Testing
import ConclaveVectors

@Suite("HNSWIndex")
struct HNSWIndexTests {
    static let dims = 128
    // Data and queries come from the same clusters (one draw, split).
    static let all = clusteredVectors(count: 6100, dimensions: dims, clusters: 60, seed: 11)
    static let data = Array(all.prefix(6000))
    static let queries = Array(all.suffix(100))

    static func build(parameters: HNSWIndex.Parameters = .init(m: 16, efConstruction: 100, efSearch: 40))
        throws -> (HNSWIndex, [Int: [Float]])
    {
        let index = HNSWIndex(dimensions: dims, parameters: parameters)
        var stored: [Int: [Float]] = [:]
        for (i, v) in data.enumerated() {
            try index.add(id: i, vector: v)
            stored[i] = v
        }
        return (index, stored)
    }

    @Test("recall@10 >= 0.95 on a 6k clustered set")
    func recall() throws {
        let (index, stored) = try Self.build()
        #expect(index.count == Self.data.count)
        var total = 0.0
        for q in Self.queries {
            let found = index.search(q, k: 10)
            #expect(found.count == 10)
            #expect(zip(found, found.dropFirst()).allSatisfy { $0.score >= $1.score })
            total += recallAt(found, referenceTopK(stored, q, k: 10))
        }
        let recall = total / Double(Self.queries.count)
        #expect(recall >= 0.95, "recall@10 = \(recall)")
    }

    @Test("filters: only passing ids, k results even at 2% selectivity")
    func filtered() throws {
        let (index, stored) = try Self.build()
        let selective: (Int) -> Bool = { $0 % 50 == 0 }  // 2%
        let broad: (Int) -> Bool = { $0 % 2 == 0 }  // 50%
        var broadRecall = 0.0
        for q in Self.queries.prefix(30) {
            let a = index.search(q, k: 10, filter: selective)
            #expect(a.count == 10)
            #expect(a.allSatisfy { selective($0.id) })
            #expect(recallAt(a, referenceTopK(stored, q, k: 10, filter: selective)) >= 0.9)
            let b = index.search(q, k: 10, filter: broad)
            #expect(b.count == 10)
            #expect(b.allSatisfy { broad($0.id) })
            broadRecall += recallAt(b, referenceTopK(stored, q, k: 10, filter: broad))
        }
        #expect(broadRecall / 30 >= 0.9)
        #expect(index.search(Self.queries[0], k: 10, filter: { $0 < 4 }).count == 4)
        #expect(index.search(Self.queries[0], k: 10, filter: { _ in false }).isEmpty)
    }

    @Test("removed ids never come back; replace works")
    func removal() throws {
        let (index, _) = try Self.build()
        let q = Self.queries[0]
        let before = index.search(q, k: 10)
        for m in before.prefix(5) { index.remove(id: m.id) }
        #expect(index.count == Self.data.count - 5)
        let removed = Set(before.prefix(5).map(\.id))
        let after = index.search(q, k: 10)
        #expect(after.count == 10)
        #expect(after.allSatisfy { !removed.contains($0.id) })
        #expect(index.search(q, k: 10, filter: { _ in true }).allSatisfy { !removed.contains($0.id) })
        #expect(index.search(q, k: 10, filter: { removed.contains($0) }).isEmpty)
        // Replace: the id now points at the query vector itself.
        let target = after[9].id
        try index.add(id: target, vector: q)
        #expect(index.count == Self.data.count - 5)
        let top = index.search(q, k: 1)
        #expect(top.first?.id == target)
        #expect((top.first?.score ?? 0) > 0.999)
    }

    @Test("compacted() drops tombstones and keeps the live vectors")
    func compaction() throws {
        let index = HNSWIndex(dimensions: Self.dims, parameters: .init(m: 8, efConstruction: 40))
        for (i, v) in Self.data.prefix(600).enumerated() { try index.add(id: i, vector: v) }
        for i in stride(from: 0, to: 600, by: 3) { index.remove(id: i) }
        try index.add(id: 1, vector: Self.data[700])  // replace: tombstones the old node
        #expect(index.count == 400)
        #expect(index.tombstoneCount == 201)
        let compact = index.compacted()
        #expect(compact.count == 400)
        #expect(compact.tombstoneCount == 0)
        let top = compact.search(Self.data[700], k: 1)
        #expect(top.first?.id == 1)
        for q in Self.queries.prefix(10) {
            #expect(compact.search(q, k: 10).allSatisfy { $0.id % 3 != 0 })
        }
    }

    @Test("removing everything then adding again")
    func removeAll() throws {
        let index = HNSWIndex(dimensions: 4)
        for i in 0..<50 { try index.add(id: i, vector: VectorMath.normalized([Float(i), 1, Float(i % 3), 2])) }
        for i in 0..<50 { index.remove(id: i) }
        #expect(index.count == 0)
        #expect(index.search([1, 0, 0, 0], k: 3).isEmpty)
        try index.add(id: 7, vector: [1, 0, 0, 0])
        #expect(index.search([1, 0, 0, 0], k: 3).map(\.id) == [7])
    }

    @Test("save/load round trip gives identical results")
    func roundTrip() throws {
        let (index, _) = try Self.build(parameters: .init(m: 12, efConstruction: 80, efSearch: 32, seed: 7))
        index.remove(id: 3)
        let path = temporaryPath("hnsw.idx")
        defer { removeFile(path) }
        try index.save(to: path)
        let loaded = try HNSWIndex.load(from: path)
        #expect(loaded.count == index.count)
        #expect(loaded.efSearch == 32)
        #expect(loaded.parameters.m == 12)
        for q in Self.queries.prefix(30) {
            #expect(loaded.search(q, k: 10) == index.search(q, k: 10))
            #expect(loaded.search(q, k: 5, filter: { $0 % 3 == 0 }) == index.search(q, k: 5, filter: { $0 % 3 == 0 }))
        }
        // Both continue identically (the level RNG state is persisted too).
        let extra = clusteredVectors(count: 50, dimensions: Self.dims, clusters: 5, seed: 99)
        for (i, v) in extra.enumerated() {
            try index.add(id: 100_000 + i, vector: v)
            try loaded.add(id: 100_000 + i, vector: v)
        }
        for q in Self.queries.prefix(10) {
            #expect(loaded.search(q, k: 10) == index.search(q, k: 10))
        }
    }

    @Test("concurrent searches while adding")
    func concurrency() throws {
        let index = HNSWIndex(dimensions: Self.dims, parameters: .init(m: 8, efConstruction: 40))
        for (i, v) in Self.data.prefix(1000).enumerated() { try index.add(id: i, vector: v) }
        let extra = Array(Self.data[1000..<1400])
        let queries = Self.queries
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            if worker == 0 {
                for (i, v) in extra.enumerated() { try? index.add(id: 1000 + i, vector: v) }
            } else {
                for q in queries.prefix(40) {
                    let r = index.search(q, k: 5)
                    precondition(r.count == 5)
                }
            }
        }
        #expect(index.count == 1400)
        let batch = index.search(batch: Array(queries.prefix(20)), k: 5, threads: 2)
        #expect(batch == queries.prefix(20).map { index.search($0, k: 5) })
    }

    @Test("efSearch is adjustable")
    func efSearch() throws {
        let index = HNSWIndex(dimensions: 2, parameters: .init(efSearch: 10))
        #expect(index.efSearch == 10)
        index.efSearch = 64
        #expect(index.efSearch == 64)
        index.efSearch = 0
        #expect(index.efSearch == 1)
    }
}
