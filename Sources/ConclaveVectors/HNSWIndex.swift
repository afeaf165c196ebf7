import CVectorKernels
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Approximate nearest-neighbour index: Hierarchical Navigable Small World graph
/// (Malkov & Yashunin 2016/2018) over dot-product similarity.
///
/// * Level of a new node: `floor(-ln(U) · mL)`, `mL = 1/ln(M)`, from a seeded SplitMix64
///   stream, so builds are deterministic for a given insertion order.
/// * Layer 0 keeps up to `M0 = 2·M` links per node, upper layers `M`; neighbours are chosen
///   with the "heuristic" (diversity) rule and the lists of existing nodes are re-pruned with
///   the same rule when they overflow.
/// * Removal is a tombstone: removed nodes still route searches but are never returned.
///   Replacing an id tombstones the old node and inserts a new one. When many vectors have
///   been removed, rebuild by re-adding the live vectors into a fresh index.
/// * Searches use per-thread scratch (generation-stamped visited array, pre-allocated
///   heaps) from a pool, and run concurrently under a read lock; adds are serialised.
/// * Filtered search samples the filter's selectivity: selective filters (<8% passing or
///   fewer than `max(4·ef, 1000)` passing ids) are answered exactly over the passing ids;
///   otherwise the graph search only admits passing ids to the result set, and if it still
///   finds fewer than `k` it falls back to the exact scan. At least `min(k, passing)`
///   results are always returned.
public final class HNSWIndex: VectorIndex, @unchecked Sendable {
    /// Construction and search parameters.
    public struct Parameters: Sendable, Equatable {
        /// Links per node on upper layers (layer 0 keeps `2·m`). Typical 8–48.
        public var m: Int = 16
        /// Candidate list size while inserting; higher = better graph, slower build.
        public var efConstruction: Int = 200
        /// Default candidate list size for searches (`max(efSearch, k)` is used).
        public var efSearch: Int = 40
        /// Seed for the level generator.
        public var seed: UInt64 = 42

        /// Creates parameters; values are clamped to sane minimums when the index is built.
        public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 40, seed: UInt64 = 42) {
            self.m = m
            self.efConstruction = efConstruction
            self.efSearch = efSearch
            self.seed = seed
        }
    }

    /// Number of components per vector.
    public let dimensions: Int
    /// Construction parameters (`efSearch` here is the initial value of ``efSearch``).
    public let parameters: Parameters

    private let lock = ReadWriteLock()
    private let graph: HNSWGraph
    private let efSearchValue: Atomic<Int>
    private let scratchPool = Mutex<[SearchScratch]>([])

    /// Creates an empty index. `m` is clamped to 2...512, `efConstruction` to at least `m`.
    public init(dimensions: Int, parameters: Parameters = .init()) {
        precondition(dimensions > 0, "HNSWIndex dimensions must be positive")
        var p = parameters
        p.m = max(2, min(512, p.m))
        p.efConstruction = max(p.m, p.efConstruction)
        p.efSearch = max(1, p.efSearch)
        self.dimensions = dimensions
        self.parameters = p
        graph = HNSWGraph(dimensions: dimensions, m: p.m, efConstruction: p.efConstruction, seed: p.seed)
        efSearchValue = Atomic(p.efSearch)
    }

    private init(graph: HNSWGraph, parameters: Parameters) {
        dimensions = graph.d
        self.parameters = parameters
        self.graph = graph
        efSearchValue = Atomic(max(1, parameters.efSearch))
    }

    /// Candidate list size used by searches (`max(efSearch, k)`); higher = better recall,
    /// slower. Safe to change while other threads search.
    public var efSearch: Int {
        get { efSearchValue.load(ordering: .relaxed) }
        set { efSearchValue.store(max(1, newValue), ordering: .relaxed) }
    }

    /// Number of live (not removed) vectors.
    public var count: Int { lock.withReadLock { graph.liveCount } }

    /// Adds or replaces the vector for `id` (O(efConstruction · M) distance computations).
    public func add(id: Int, vector: [Float]) throws {
        try validate(vector, dimensions: dimensions)
        vector.withUnsafeBufferPointer { v in
            guard let p = v.baseAddress else { return }
            lock.withWriteLock { graph.insert(id: id, vector: p) }
        }
    }

    /// Removes `id` if present (tombstone; the node keeps routing searches).
    public func remove(id: Int) {
        lock.withWriteLock { graph.remove(id: id) }
    }

    /// Approximate top-`k` by dot product, best first.
    public func search(_ query: [Float], k: Int) -> [VectorMatch] {
        guard query.count == dimensions, k > 0 else { return [] }
        let ef = efSearch
        return query.withUnsafeBufferPointer { q in
            guard let qp = q.baseAddress else { return [] }
            return withScratch { scratch in
                lock.withReadLock { graph.search(qp, k: k, ef: ef, scratch: scratch, filter: nil) }
            }
        }
    }

    /// Top-`k` among ids passing `filter`, best first (see the type documentation for how
    /// selective filters are handled).
    public func search(_ query: [Float], k: Int, filter: (Int) -> Bool) -> [VectorMatch] {
        guard query.count == dimensions, k > 0 else { return [] }
        let ef = efSearch
        return query.withUnsafeBufferPointer { q in
            guard let qp = q.baseAddress else { return [] }
            return withoutActuallyEscaping(filter) { f in
                withScratch { scratch in
                    lock.withReadLock { graph.search(qp, k: k, ef: ef, scratch: scratch, filter: f) }
                }
            }
        }
    }

    /// Number of tombstoned nodes still held by the graph (removed or replaced vectors).
    /// They keep routing searches and use memory until ``compacted()`` rebuilds the graph.
    public var tombstoneCount: Int { lock.withReadLock { graph.nodeCount - graph.liveCount } }

    /// Returns a new index with the same parameters built from the live vectors only
    /// (insertion order preserved), dropping tombstones. Costs a full rebuild; this index
    /// stays usable meanwhile (it is only read-locked while its vectors are copied).
    public func compacted() -> HNSWIndex {
        let live = lock.withReadLock { graph.liveVectors() }
        let fresh = HNSWIndex(dimensions: dimensions, parameters: parameters)
        fresh.efSearch = efSearch
        fresh.lock.withWriteLock {
            for (id, vector) in live {
                vector.withUnsafeBufferPointer { v in
                    if let p = v.baseAddress { fresh.graph.insert(id: id, vector: p) }
                }
            }
        }
        return fresh
    }

    private func withScratch<R>(_ body: (SearchScratch) -> R) -> R {
        let scratch = scratchPool.withLock { $0.popLast() } ?? SearchScratch()
        let result = body(scratch)
        scratchPool.withLock { pool in
            if pool.count < 64 { pool.append(scratch) }
        }
        return result
    }

    /// Writes the graph to `path` (format `SVECHNSW` v1) atomically.
    public func save(to path: String) throws {
        let ef = efSearch
        try lock.withReadLock { try graph.save(to: path, efSearch: ef) }
    }

    /// Loads an index written by ``save(to:)`` and validates its structure.
    ///
    /// - Throws: ``VectorIndexError`` with kind `.wrongMagic`, `.unsupportedVersion`,
    ///   `.truncated`, `.corrupt` or `.io` and a message naming the file and the problem.
    public static func load(from path: String) throws -> HNSWIndex {
        let (graph, efSearch) = try HNSWGraph.load(from: path)
        let parameters = Parameters(m: graph.m, efConstruction: graph.efConstruction, efSearch: efSearch, seed: graph.seed)
        return HNSWIndex(graph: graph, parameters: parameters)
    }
}

// MARK: - Search scratch

/// Per-search working memory, reused through the index's pool (one thread at a time).
final class SearchScratch: @unchecked Sendable {
    var visited = RawBuffer<UInt16>(capacity: 0)
    var stamp: UInt16 = 0
    var candidates = MaxHeap(capacity: 256)
    var results = MinHeap(capacity: 256)
    var gatherRows = RawBuffer<Int32>(capacity: 0)
    var gatherScores = RawBuffer<Float>(capacity: 0)

    deinit {
        visited.deallocate()
        candidates.deallocate()
        results.deallocate()
        gatherRows.deallocate()
        gatherScores.deallocate()
    }

    /// Starts a new traversal over `nodeCount` nodes and returns its visit stamp.
    @inline(__always)
    func beginVisit(nodeCount: Int) -> UInt16 {
        if visited.count < nodeCount {
            visited.append(repeating: 0, count: nodeCount - visited.count)
        }
        if stamp == UInt16.max {
            visited.base.update(repeating: 0, count: visited.count)
            stamp = 0
        }
        stamp &+= 1
        return stamp
    }

    func ensureGather(_ n: Int) {
        if gatherRows.count < n {
            gatherRows.append(repeating: 0, count: n - gatherRows.count)
            gatherScores.append(repeating: 0, count: n - gatherScores.count)
        }
    }
}

// MARK: - Node acceptance

protocol NodeAcceptor {
    func accepts(_ node: Int32) -> Bool
}

/// Accepts every node (no tombstones present).
struct AcceptAllNodes: NodeAcceptor {
    @inline(__always) func accepts(_ node: Int32) -> Bool { true }
}

/// Accepts live (non-tombstoned) nodes.
struct AcceptLiveNodes: NodeAcceptor {
    let deleted: UnsafePointer<UInt8>
    @inline(__always) func accepts(_ node: Int32) -> Bool { deleted[Int(node)] == 0 }
}

/// Accepts live nodes whose id passes the caller's filter.
struct AcceptFilteredNodes: NodeAcceptor {
    let deleted: UnsafePointer<UInt8>
    let ids: UnsafePointer<Int>
    let filter: (Int) -> Bool
    @inline(__always) func accepts(_ node: Int32) -> Bool {
        deleted[Int(node)] == 0 && filter(ids[Int(node)])
    }
}

// MARK: - Graph

/// The HNSW graph; all access happens under `HNSWIndex.lock` (searches concurrently with
/// each other, mutations exclusively).
final class HNSWGraph {
    static let formatVersion: UInt32 = 1
    static let maxLevelCap = 32

    let d: Int
    let m: Int
    let m0: Int
    let efConstruction: Int
    let seed: UInt64
    let levelMultiplier: Double
    private let native = Kernels.native

    private(set) var nodeCount = 0
    private(set) var liveCount = 0
    private var entryPoint: Int32 = -1
    private var maxLevel = -1
    private var rng: SplitMix64

    // Layer 0 lives in one 64-byte-aligned record per node, links first and the vector right
    // after them (as in hnswlib): expanding a node touches memory adjacent to the vector
    // whose score was just computed, instead of a second random cache miss.
    //   record = [Int32 count, Int32 links x m0, padding to 64 B][Float x d, padding to 64 B]
    private var nodes: NodeStore
    private let vectorOffset: Int
    // Other per-node columns.
    private var ids: RawBuffer<Int>             // nodeCount
    private var levels: RawBuffer<Int32>        // nodeCount
    private var deleted: RawBuffer<UInt8>       // nodeCount
    private var upperOffset: RawBuffer<Int>     // nodeCount; -1 when level == 0
    private var upper: RawBuffer<Int32>         // level blocks of (m + 1)
    private var nodeOf: [Int: Int32] = [:]

    private let buildScratch = SearchScratch()

    init(dimensions: Int, m: Int, efConstruction: Int, seed: UInt64) {
        d = dimensions
        self.m = m
        m0 = 2 * m
        self.efConstruction = efConstruction
        self.seed = seed
        levelMultiplier = 1 / log(Double(m))
        rng = SplitMix64(state: seed)
        let linkBytes = ((2 * m + 1) * 4 + 63) / 64 * 64
        vectorOffset = linkBytes
        nodes = NodeStore(stride: linkBytes + (dimensions * 4 + 63) / 64 * 64, capacity: 1024)
        ids = RawBuffer(capacity: 1024)
        levels = RawBuffer(capacity: 1024)
        deleted = RawBuffer(capacity: 1024)
        upperOffset = RawBuffer(capacity: 1024)
        upper = RawBuffer(capacity: 1024)
    }

    deinit {
        nodes.deallocate()
        ids.deallocate()
        levels.deallocate()
        deleted.deallocate()
        upperOffset.deallocate()
        upper.deallocate()
    }

    @inline(__always)
    private func vector(_ node: Int32) -> UnsafeMutablePointer<Float> {
        (nodes.base + (Int(node) &* nodes.stride &+ vectorOffset)).assumingMemoryBound(to: Float.self)
    }

    /// Base address for strided vector access: vector(i) = vectorBase + i * nodes.stride.
    private var vectorBase: UnsafeRawPointer { UnsafeRawPointer(nodes.base + vectorOffset) }

    /// Pointer to the link list `[count, neighbours...]` of `node` on `level`.
    @inline(__always)
    private func links(_ node: Int32, _ level: Int) -> UnsafeMutablePointer<Int32> {
        if level == 0 { return (nodes.base + Int(node) &* nodes.stride).assumingMemoryBound(to: Int32.self) }
        let offset: Int = upperOffset[Int(node)] &+ (level &- 1) &* (m &+ 1)
        return upper.base + offset
    }

    @inline(__always)
    private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float {
        Kernels.dot(a, b, d, native: native)
    }

    // MARK: Mutation

    /// Live (id, vector) pairs in node order.
    func liveVectors() -> [(Int, [Float])] {
        var out: [(Int, [Float])] = []
        out.reserveCapacity(liveCount)
        for i in 0..<nodeCount where deleted[i] == 0 {
            out.append((ids[i], Array(UnsafeBufferPointer(start: vector(Int32(i)), count: d))))
        }
        return out
    }

    func remove(id: Int) {
        guard let node = nodeOf.removeValue(forKey: id) else { return }
        deleted[Int(node)] = 1
        liveCount -= 1
        if liveCount == 0 { reset() }
    }

    /// Drops every node (all were removed); keeps the RNG stream.
    private func reset() {
        nodeCount = 0
        entryPoint = -1
        maxLevel = -1
        nodes.removeAll()
        ids.removeAll()
        levels.removeAll()
        deleted.removeAll()
        upperOffset.removeAll()
        upper.removeAll()
        nodeOf.removeAll()
    }

    func insert(id: Int, vector source: UnsafePointer<Float>) {
        if let old = nodeOf.removeValue(forKey: id) {
            deleted[Int(old)] = 1
            liveCount -= 1
        }
        let level = min(Int(-log(rng.nextUnitInterval()) * levelMultiplier), Self.maxLevelCap)
        let node = Int32(truncatingIfNeeded: nodeCount)
        _ = nodes.appendZeroed()
        vector(node).update(from: source, count: d)
        ids.append(repeating: id, count: 1)
        levels.append(repeating: Int32(level), count: 1)
        deleted.append(repeating: 0, count: 1)
        if level > 0 {
            let offset = upper.append(repeating: 0, count: level * (m + 1))
            upperOffset.append(repeating: offset, count: 1)
        } else {
            upperOffset.append(repeating: -1, count: 1)
        }
        nodeCount += 1
        liveCount += 1
        nodeOf[id] = node

        guard entryPoint >= 0 else {
            entryPoint = node
            maxLevel = level
            return
        }
        let q = UnsafePointer(vector(node))
        var ep = entryPoint
        var epScore = dot(q, vector(ep))
        if level < maxLevel {
            (ep, epScore) = greedyDescend(q, from: ep, score: epScore, fromLevel: maxLevel, toLevel: level + 1,
                                          scratch: buildScratch)
        }
        let hasDeleted = liveCount != nodeCount
        var lc = min(level, maxLevel)
        while lc >= 0 {
            if hasDeleted {
                searchLayer(q, entry: ep, entryScore: epScore, ef: efConstruction, level: lc,
                            scratch: buildScratch, accept: AcceptLiveNodes(deleted: deleted.base))
            } else {
                searchLayer(q, entry: ep, entryScore: epScore, ef: efConstruction, level: lc,
                            scratch: buildScratch, accept: AcceptAllNodes())
            }
            let found = buildScratch.results.sortedDescending()  // best first
            if let best = found.first {
                ep = best.node
                epScore = best.score
            }
            let selected = selectNeighbours(found, limit: m)
            let own = links(node, lc)
            own[0] = Int32(selected.count)
            for (j, s) in selected.enumerated() { own[1 + j] = s.node }
            for s in selected { connect(s.node, to: node, score: s.score, level: lc) }
            lc -= 1
        }
        if level > maxLevel {
            entryPoint = node
            maxLevel = level
        }
    }

    /// Adds the link `from → to` on `level`, re-pruning `from`'s list with the heuristic
    /// when it is full.
    private func connect(_ from: Int32, to: Int32, score: Float, level: Int) {
        let list = links(from, level)
        let capacity = level == 0 ? m0 : m
        let n = Int(list[0])
        for j in 0..<n where list[1 + j] == to { return }
        if n < capacity {
            list[1 + n] = to
            list[0] = Int32(n + 1)
            return
        }
        let base = UnsafePointer(vector(from))
        var candidates = [Scored]()
        candidates.reserveCapacity(n + 1)
        candidates.append(Scored(score: score, node: to))
        for j in 0..<n {
            let other = list[1 + j]
            candidates.append(Scored(score: dot(base, vector(other)), node: other))
        }
        candidates.sort { $0.score != $1.score ? $0.score > $1.score : $0.node < $1.node }
        let kept = selectNeighbours(candidates, limit: capacity)
        list[0] = Int32(kept.count)
        for (j, s) in kept.enumerated() { list[1 + j] = s.node }
    }

    /// HNSW neighbour-selection heuristic (Algorithm 4 without extension/keep-pruned):
    /// walk candidates best-first and keep one only if it is closer to the base point than
    /// to every neighbour kept so far. `candidates` must be sorted best first.
    private func selectNeighbours(_ candidates: [Scored], limit: Int) -> [Scored] {
        if candidates.count <= limit { return candidates }
        var kept = [Scored]()
        kept.reserveCapacity(limit)
        for c in candidates {
            if kept.count >= limit { break }
            let cv = UnsafePointer(vector(c.node))
            var good = true
            for r in kept where dot(cv, vector(r.node)) > c.score {
                good = false
                break
            }
            if good { kept.append(c) }
        }
        return kept
    }

    // MARK: Search

    /// Greedy best-first walk (ef = 1) from `fromLevel` down to `toLevel` inclusive.
    private func greedyDescend(
        _ q: UnsafePointer<Float>, from start: Int32, score startScore: Float, fromLevel: Int, toLevel: Int,
        scratch: SearchScratch
    ) -> (Int32, Float) {
        var current = start
        var currentScore = startScore
        scratch.ensureGather(m0)
        let rows = scratch.gatherRows.base
        let scores = scratch.gatherScores.base
        var level = fromLevel
        while level >= toLevel {
            var changed = true
            while changed {
                changed = false
                let list = links(current, level)
                let n = Int(list[0])
                if n == 0 { break }
                for j in 0..<n { rows[j] = list[1 + j] }
                Kernels.dotGather(q, vectorBase, stride: nodes.stride, d, rows, n, scores, native: native)
                for j in 0..<n where scores[j] > currentScore {
                    currentScore = scores[j]
                    current = rows[j]
                    changed = true
                }
            }
            level -= 1
        }
        return (current, currentScore)
    }

    /// Beam search on one layer (Algorithm 2). Leaves the best `ef` accepted nodes in
    /// `scratch.results`. Non-accepted nodes are still expanded (they route the search).
    private func searchLayer<A: NodeAcceptor>(
        _ q: UnsafePointer<Float>, entry: Int32, entryScore: Float, ef: Int, level: Int,
        scratch: SearchScratch, accept: A
    ) {
        let stamp = scratch.beginVisit(nodeCount: nodeCount)
        let visited = scratch.visited.base
        let maxLinks = level == 0 ? m0 : m
        scratch.ensureGather(maxLinks)
        let rows = scratch.gatherRows.base
        let scores = scratch.gatherScores.base
        var candidates = scratch.candidates
        var results = scratch.results
        candidates.removeAll()
        results.removeAll()
        defer {
            scratch.candidates = candidates
            scratch.results = results
        }

        visited[Int(entry)] = stamp
        candidates.push(Scored(score: entryScore, node: entry))
        if accept.accepts(entry) { results.push(Scored(score: entryScore, node: entry)) }
        let vbase = vectorBase
        let stride = nodes.stride

        while !candidates.isEmpty {
            let current = candidates.pop()
            if results.count >= ef && current.score < results.top.score { break }
            let list = links(current.node, level)
            let n = Int(list[0])
            var g = 0
            for j in 1...max(n, 1) where j <= n {
                let nb = list[j]
                if visited[Int(nb)] != stamp {
                    visited[Int(nb)] = stamp
                    rows[g] = nb
                    g &+= 1
                }
            }
            if g == 0 { continue }
            Kernels.dotGather(q, vbase, stride: stride, d, rows, g, scores, native: native)
            for j in 0..<g {
                let s = scores[j]
                if results.count < ef || s > results.top.score {
                    let item = Scored(score: s, node: rows[j])
                    candidates.push(item)
                    if accept.accepts(item.node) {
                        if results.count < ef {
                            results.push(item)
                        } else {
                            results.replaceTop(item)
                        }
                    }
                }
            }
        }
    }

    func search(
        _ q: UnsafePointer<Float>, k: Int, ef efSearch: Int, scratch: SearchScratch, filter: ((Int) -> Bool)?
    ) -> [VectorMatch] {
        guard liveCount > 0, entryPoint >= 0 else { return [] }
        let k = min(k, liveCount)
        let ef = max(efSearch, k)
        if let filter {
            return filteredSearch(q, k: k, ef: ef, scratch: scratch, filter: filter)
        }
        let (ep, epScore) = descend(q, scratch: scratch)
        if liveCount == nodeCount {
            searchLayer(q, entry: ep, entryScore: epScore, ef: ef, level: 0, scratch: scratch, accept: AcceptAllNodes())
        } else {
            searchLayer(q, entry: ep, entryScore: epScore, ef: ef, level: 0, scratch: scratch,
                        accept: AcceptLiveNodes(deleted: deleted.base))
        }
        return topMatches(scratch.results, k: k)
    }

    private func descend(_ q: UnsafePointer<Float>, scratch: SearchScratch) -> (Int32, Float) {
        let epScore = dot(q, vector(entryPoint))
        if maxLevel <= 0 { return (entryPoint, epScore) }
        return greedyDescend(q, from: entryPoint, score: epScore, fromLevel: maxLevel, toLevel: 1, scratch: scratch)
    }

    private func topMatches(_ results: MinHeap, k: Int) -> [VectorMatch] {
        results.sortedDescending().prefix(k).map { VectorMatch(id: ids[Int($0.node)], score: $0.score) }
    }

    private func filteredSearch(
        _ q: UnsafePointer<Float>, k: Int, ef: Int, scratch: SearchScratch, filter: @escaping (Int) -> Bool
    ) -> [VectorMatch] {
        // Estimate selectivity on an evenly spaced sample of nodes.
        let sampleSize = min(nodeCount, 512)
        var sampledLive = 0, sampledPassing = 0
        if sampleSize > 0 {
            let stride = max(1, nodeCount / sampleSize)
            var i = 0
            while i < nodeCount && sampledLive < sampleSize {
                if deleted[i] == 0 {
                    sampledLive += 1
                    if filter(ids[i]) { sampledPassing += 1 }
                }
                i += stride
            }
        }
        let fraction = sampledLive > 0 ? Double(sampledPassing) / Double(sampledLive) : 1
        let expectedPassing = fraction * Double(liveCount)
        if fraction < 0.08 || expectedPassing < Double(max(4 * ef, 1000)) {
            return exactFiltered(q, k: k, filter: filter)
        }
        let (ep, epScore) = descend(q, scratch: scratch)
        searchLayer(q, entry: ep, entryScore: epScore, ef: ef, level: 0, scratch: scratch,
                    accept: AcceptFilteredNodes(deleted: deleted.base, ids: ids.base, filter: filter))
        if scratch.results.count >= k { return topMatches(scratch.results, k: k) }
        return exactFiltered(q, k: k, filter: filter)
    }

    /// Exact scan over live nodes passing `filter`.
    private func exactFiltered(_ q: UnsafePointer<Float>, k: Int, filter: (Int) -> Bool) -> [VectorMatch] {
        var top = TopK(k: k)
        defer { top.deallocate() }
        for i in 0..<nodeCount where deleted[i] == 0 && filter(ids[i]) {
            top.insert(score: dot(q, vector(Int32(truncatingIfNeeded: i))), row: Int32(truncatingIfNeeded: i))
        }
        return top.sortedDescending().map { VectorMatch(id: ids[Int($0.node)], score: $0.score) }
    }

    // MARK: Persistence

    func save(to path: String, efSearch: Int) throws {
        let n = nodeCount
        var writer = try IndexFileWriter(
            path: path, magic: FileFormat.hnswMagic, version: Self.formatVersion,
            fields: [
                UInt64(d), UInt64(m), UInt64(efConstruction), UInt64(efSearch), seed, rng.state,
                UInt64(n), UInt64(liveCount), UInt64(bitPattern: Int64(entryPoint)),
                UInt64(bitPattern: Int64(maxLevel)), UInt64(upper.count),
            ])
        do {
            try ids.base.withMemoryRebound(to: Int64.self, capacity: max(n, 1)) {
                try writer.write(UnsafePointer($0), count: n)
            }
            try writer.write(UnsafePointer(levels.base), count: n)
            try writer.write(UnsafePointer(deleted.base), count: n)
            try upperOffset.base.withMemoryRebound(to: Int64.self, capacity: max(n, 1)) {
                try writer.write(UnsafePointer($0), count: n)
            }
            try writer.writeRows(count: n, rowBytes: d * 4) { UnsafeRawPointer(vector(Int32($0))) }
            try writer.writeRows(count: n, rowBytes: (m0 + 1) * 4) { UnsafeRawPointer(links(Int32($0), 0)) }
            try writer.write(UnsafePointer(upper.base), count: upper.count)
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }

    static func load(from path: String) throws -> (HNSWGraph, efSearch: Int) {
        var reader = try IndexFileReader(
            path: path, magic: FileFormat.hnswMagic, supportedVersion: formatVersion, typeName: "an HNSWIndex")
        do {
            let f = reader.fields
            guard f.count == 11 else { throw reader.corrupt("expected 11 header fields, found \(f.count)") }
            guard f[0] >= 1, f[0] <= 1 << 20 else { throw reader.corrupt("implausible dimensions \(f[0])") }
            guard f[1] >= 2, f[1] <= 512 else { throw reader.corrupt("implausible M \(f[1])") }
            guard f[2] >= 1, f[2] <= 1 << 20, f[3] >= 1, f[3] <= 1 << 30 else {
                throw reader.corrupt("implausible ef parameters \(f[2])/\(f[3])")
            }
            guard f[6] < UInt64(Int32.max), f[7] <= f[6], f[10] <= 1 << 40 else {
                throw reader.corrupt("implausible node counts \(f[6])/\(f[7])/\(f[10])")
            }
            let d = Int(f[0]), m = Int(f[1]), n = Int(f[6]), live = Int(f[7]), upperCount = Int(f[10])
            let entry = Int64(bitPattern: f[8]), maxLevel = Int64(bitPattern: f[9])
            let m0 = 2 * m
            guard let vectorCount = checkedProduct(n, d), let vectorBytes = checkedProduct(vectorCount, 4),
                let link0Count = checkedProduct(n, m0 + 1), let link0Bytes = checkedProduct(link0Count, 4),
                let upperBytes = checkedProduct(upperCount, 4),
                let columnBytes = checkedProduct(n, 8 + 4 + 1 + 8),
                let payload = checkedSum(columnBytes, vectorBytes, link0Bytes, upperBytes)
            else { throw reader.corrupt("header describes an impossibly large index") }
            try reader.expectPayload(bytes: payload)

            let g = HNSWGraph(dimensions: d, m: m, efConstruction: Int(f[2]), seed: f[4])
            g.rng.state = f[5]
            g.ids.append(repeating: 0, count: n)
            g.levels.append(repeating: 0, count: n)
            g.deleted.append(repeating: 0, count: n)
            g.upperOffset.append(repeating: 0, count: n)
            g.nodes.deallocate()
            g.nodes = NodeStore(stride: g.nodes.stride, capacity: max(n, 1024))
            for _ in 0..<n { _ = g.nodes.appendZeroed() }
            g.upper.append(repeating: 0, count: upperCount)
            try g.ids.base.withMemoryRebound(to: Int64.self, capacity: max(n, 1)) {
                try reader.read(into: $0, count: n, what: "ids")
            }
            try reader.read(into: g.levels.base, count: n, what: "levels")
            try reader.read(into: g.deleted.base, count: n, what: "tombstones")
            try g.upperOffset.base.withMemoryRebound(to: Int64.self, capacity: max(n, 1)) {
                try reader.read(into: $0, count: n, what: "upper-layer offsets")
            }
            try reader.readRows(count: n, rowBytes: d * 4, what: "vectors") { UnsafeMutableRawPointer(g.vector(Int32($0))) }
            try reader.readRows(count: n, rowBytes: (m0 + 1) * 4, what: "layer-0 links") {
                UnsafeMutableRawPointer(g.links(Int32($0), 0))
            }
            try reader.read(into: g.upper.base, count: upperCount, what: "upper-layer links")
            try reader.finish()

            g.nodeCount = n
            g.liveCount = live
            g.maxLevel = Int(maxLevel)
            g.entryPoint = Int32(truncatingIfNeeded: entry)
            try g.validateLoaded(reader: reader, entry: entry, maxLevel: maxLevel)
            return (g, Int(f[3]))
        } catch {
            reader.close()
            throw error
        }
    }

    /// Structural validation so that a crafted or damaged (but checksum-consistent) file
    /// can never cause out-of-bounds access.
    private func validateLoaded(reader: IndexFileReader, entry: Int64, maxLevel: Int64) throws {
        let n = nodeCount
        if n == 0 {
            guard entry == -1, maxLevel == -1, liveCount == 0, upper.count == 0 else {
                throw reader.corrupt("empty graph with an entry point")
            }
            return
        }
        guard entry >= 0, entry < n, maxLevel >= 0, maxLevel <= Int64(Self.maxLevelCap) else {
            throw reader.corrupt("entry point \(entry) / top level \(maxLevel) out of range")
        }
        guard Int64(levels[Int(entry)]) == maxLevel else {
            throw reader.corrupt("entry point is not on the top level")
        }
        var live = 0
        var expectedUpper = 0
        for i in 0..<n {
            let level = Int(levels[i])
            guard level >= 0, level <= Int(maxLevel) else { throw reader.corrupt("node \(i) has level \(level)") }
            guard deleted[i] <= 1 else { throw reader.corrupt("node \(i) has an invalid tombstone flag") }
            if level == 0 {
                guard upperOffset[i] == -1 else { throw reader.corrupt("node \(i) has a stray upper-layer offset") }
            } else {
                guard upperOffset[i] == expectedUpper else {
                    throw reader.corrupt("node \(i) has upper-layer offset \(upperOffset[i]), expected \(expectedUpper)")
                }
                expectedUpper += level * (m + 1)
            }
            if deleted[i] == 0 {
                live += 1
                if nodeOf.updateValue(Int32(i), forKey: ids[i]) != nil {
                    throw reader.corrupt("duplicate live id \(ids[i])")
                }
            }
        }
        guard expectedUpper == upper.count else { throw reader.corrupt("upper-layer link table has the wrong size") }
        guard live == liveCount else { throw reader.corrupt("live count \(liveCount) does not match tombstones (\(live))") }
        for i in 0..<n {
            let v = vector(Int32(i))
            for j in 0..<d where !v[j].isFinite { throw reader.corrupt("non-finite component in vector \(i)") }
        }
        for i in 0..<n {
            let node = Int32(i)
            for level in 0...Int(levels[i]) {
                let list = links(node, level)
                let count = Int(list[0])
                guard count >= 0, count <= (level == 0 ? m0 : m) else {
                    throw reader.corrupt("node \(i) has \(count) links on level \(level)")
                }
                for j in 0..<count {
                    let target = Int(list[1 + j])
                    guard target >= 0, target < n, Int(levels[target]) >= level else {
                        throw reader.corrupt("node \(i) links to invalid node \(target) on level \(level)")
                    }
                }
            }
        }
    }
}
