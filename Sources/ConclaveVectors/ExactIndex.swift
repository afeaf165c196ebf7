import CVectorKernels
import Dispatch
import Synchronization

/// Brute-force (exact) top-k index over contiguous Float32 storage.
///
/// Every search scores every live vector, so results are the true top-k. On CPUs with
/// AVX2/AVX-512 a first pass scores int8-quantised copies of the vectors (4x less memory
/// traffic) together with a rigorous per-vector error bound; only vectors whose upper bound
/// can still reach the top-k are re-scored with the full Float32 kernel. The returned ids
/// and scores are therefore identical to a plain Float32 scan (up to the order of exact
/// ties). Memory: `4·d + d + 8` bytes per vector plus the id map.
///
/// Thread-safety: searches run concurrently under a read lock; `add`/`remove` take the
/// write lock.
public final class ExactIndex: VectorIndex, @unchecked Sendable {
    /// Number of components per vector.
    public let dimensions: Int
    private let lock = ReadWriteLock()
    private let state: ExactState

    /// Creates an empty index for vectors with `dimensions` components (must be > 0).
    public init(dimensions: Int) {
        precondition(dimensions > 0, "ExactIndex dimensions must be positive")
        self.dimensions = dimensions
        state = ExactState(dimensions: dimensions)
    }

    private init(dimensions: Int, state: ExactState) {
        self.dimensions = dimensions
        self.state = state
    }

    /// Number of live vectors.
    public var count: Int { lock.withReadLock { state.count } }

    /// Adds or replaces the vector stored for `id`.
    public func add(id: Int, vector: [Float]) throws {
        try validate(vector, dimensions: dimensions)
        vector.withUnsafeBufferPointer { v in
            guard let p = v.baseAddress else { return }
            lock.withWriteLock { state.upsert(id: id, vector: p) }
        }
    }

    /// Removes `id` if present.
    public func remove(id: Int) {
        lock.withWriteLock { state.remove(id: id) }
    }

    /// Exact top-`k` by dot product, best first.
    public func search(_ query: [Float], k: Int) -> [VectorMatch] {
        guard query.count == dimensions, k > 0 else { return [] }
        return query.withUnsafeBufferPointer { q in
            guard let qp = q.baseAddress else { return [] }
            return lock.withReadLock { state.search(qp, k: k, accept: AcceptAllRows()) }
        }
    }

    /// Exact top-`k` among ids passing `filter`, best first. Returns `min(k, passing)` results.
    public func search(_ query: [Float], k: Int, filter: (Int) -> Bool) -> [VectorMatch] {
        guard query.count == dimensions, k > 0 else { return [] }
        return query.withUnsafeBufferPointer { q in
            guard let qp = q.baseAddress else { return [] }
            return withoutActuallyEscaping(filter) { f in
                lock.withReadLock {
                    state.search(qp, k: k, accept: FilteredRows(ids: UnsafePointer(state.ids.base), filter: f))
                }
            }
        }
    }

    /// Exact top-`k` for many queries using up to `threads` worker threads; results are in
    /// query order and identical to calling ``search(_:k:)`` per query.
    ///
    /// With native kernels, queries are processed eight at a time so that each pass over
    /// the int8 codes serves eight queries (much higher throughput than one-by-one search).
    /// Queries with the wrong number of elements get an empty result.
    public func search(batch queries: [[Float]], k: Int, threads: Int = 1) -> [[VectorMatch]] {
        guard k > 0 else { return Array(repeating: [], count: queries.count) }
        guard state.quantized else {
            return (self as any VectorIndex).search(batch: queries, k: k, threads: threads)
        }
        let d = dimensions
        let qstride = (d + 15) / 16 * 16
        let groups = (queries.count + 7) / 8
        var results = [[VectorMatch]](repeating: [], count: queries.count)
        let next = Atomic<Int>(0)
        let workers = max(1, min(threads, groups))
        results.withUnsafeMutableBufferPointer { out in
            let outBase = UncheckedSendable(out.baseAddress)
            if workers == 1 {
                batchWorker(queries, k: k, groups: groups, qstride: qstride, next: next, out: outBase)
            } else {
                DispatchQueue.concurrentPerform(iterations: workers) { _ in
                    self.batchWorker(queries, k: k, groups: groups, qstride: qstride, next: next, out: outBase)
                }
            }
        }
        return results
    }

    private func batchWorker(
        _ queries: [[Float]], k: Int, groups: Int, qstride: Int, next: borrowing Atomic<Int>,
        out outBase: UncheckedSendable<UnsafeMutablePointer<[VectorMatch]>?>
    ) {
        let d = dimensions
        let block = 1024
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: 8 * qstride)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: 8 * block)
        defer {
            packed.deallocate()
            scores.deallocate()
        }
        while true {
            let group = next.wrappingAdd(1, ordering: .relaxed).oldValue
            if group >= groups { break }
            packed.initialize(repeating: 0, count: 8 * qstride)
            var slots: [Int] = []
            for j in 0..<8 {
                let qi = group * 8 + j
                guard qi < queries.count, queries[qi].count == d else { continue }
                queries[qi].withUnsafeBufferPointer { src in
                    if let p = src.baseAddress { (packed + slots.count * qstride).update(from: p, count: d) }
                }
                slots.append(qi)
            }
            if slots.isEmpty { continue }
            let found = lock.withReadLock {
                state.searchEight(packed, qstride: qstride, active: slots.count, k: k, scores: scores, block: block)
            }
            for (slot, qi) in slots.enumerated() { outBase.value?[qi] = found[slot] }
        }
    }

    /// Writes the index to `path` (format `SVECEXCT` v1: header, Int64 ids, Float32 vectors,
    /// checksum). The file is written to a temporary name and renamed into place.
    public func save(to path: String) throws {
        try lock.withReadLock {
            let n = state.count
            var writer = try IndexFileWriter(
                path: path, magic: FileFormat.exactMagic, version: ExactState.formatVersion,
                fields: [UInt64(dimensions), UInt64(n)])
            do {
                try state.ids.base.withMemoryRebound(to: Int64.self, capacity: max(n, 1)) {
                    try writer.write(UnsafePointer($0), count: n)
                }
                try writer.write(UnsafePointer(state.vectors.base), count: n * dimensions)
                try writer.finish()
            } catch {
                writer.abandon()
                throw error
            }
        }
    }

    /// Loads an index written by ``save(to:)``.
    ///
    /// - Throws: ``VectorIndexError`` with kind `.wrongMagic`, `.unsupportedVersion`,
    ///   `.truncated`, `.corrupt` or `.io` and a message naming the file and the problem.
    public static func load(from path: String) throws -> ExactIndex {
        var reader = try IndexFileReader(
            path: path, magic: FileFormat.exactMagic, supportedVersion: ExactState.formatVersion,
            typeName: "an ExactIndex")
        do {
            guard reader.fields.count == 2 else {
                throw reader.corrupt("expected 2 header fields, found \(reader.fields.count)")
            }
            guard reader.fields[0] >= 1, reader.fields[0] <= 1 << 20, reader.fields[1] <= 1 << 40 else {
                throw reader.corrupt("implausible dimensions/count \(reader.fields[0])/\(reader.fields[1])")
            }
            let d = Int(reader.fields[0]), n = Int(reader.fields[1])
            guard let vectorCount = checkedProduct(n, d), let vectorBytes = checkedProduct(vectorCount, 4),
                let idBytes = checkedProduct(n, 8), let payload = checkedSum(idBytes, vectorBytes)
            else { throw reader.corrupt("header describes an impossibly large index") }
            try reader.expectPayload(bytes: payload)

            let state = ExactState(dimensions: d, capacity: n)
            state.ids.append(repeating: 0, count: n)
            state.vectors.append(repeating: 0, count: vectorCount)
            try state.ids.base.withMemoryRebound(to: Int64.self, capacity: max(n, 1)) {
                try reader.read(into: $0, count: n, what: "ids")
            }
            try reader.read(into: state.vectors.base, count: vectorCount, what: "vectors")
            try reader.finish()
            try state.rebuildDerived(fileDescription: path)
            return ExactIndex(dimensions: d, state: state)
        } catch {
            reader.close()
            throw error
        }
    }
}

// MARK: - Row acceptance (specialised generics keep the unfiltered loop branch-free)

protocol RowAcceptor {
    func accepts(_ row: Int) -> Bool
}

struct AcceptAllRows: RowAcceptor {
    @inline(__always) func accepts(_ row: Int) -> Bool { true }
}

struct FilteredRows: RowAcceptor {
    let ids: UnsafePointer<Int>
    let filter: (Int) -> Bool
    @inline(__always) func accepts(_ row: Int) -> Bool { filter(ids[row]) }
}

// MARK: - Storage

/// Mutable state of an `ExactIndex`; every access happens under the owner's lock.
final class ExactState {
    static let formatVersion: UInt32 = 1
    let d: Int
    var vectors: RawBuffer<Float>
    var ids: RawBuffer<Int>
    var rowOf: [Int: Int] = [:]
    /// Quantised first pass (only maintained when native kernels are available).
    let quantized: Bool
    var codes: RawBuffer<Int8>
    var scales: RawBuffer<Float>
    /// Per-row bound on |fl(q·x) − scale·fl(q·codes)| / ‖q‖ (quantisation + rounding error).
    var errorBounds: RawBuffer<Float>
    /// Per-row ‖x̂‖ (rounded up) and Σ codes, for the int8 x int8 (VNNI) batched pass.
    var reconNorms: RawBuffer<Float>
    var codeSums: RawBuffer<Int32>

    var count: Int { ids.count }

    init(dimensions: Int, capacity: Int = 0) {
        d = dimensions
        vectors = RawBuffer(capacity: capacity * dimensions)
        ids = RawBuffer(capacity: capacity)
        quantized = Kernels.native
        codes = RawBuffer(capacity: quantized ? capacity * dimensions : 0)
        scales = RawBuffer(capacity: quantized ? capacity : 0)
        errorBounds = RawBuffer(capacity: quantized ? capacity : 0)
        reconNorms = RawBuffer(capacity: quantized ? capacity : 0)
        codeSums = RawBuffer(capacity: quantized ? capacity : 0)
    }

    deinit {
        vectors.deallocate()
        ids.deallocate()
        codes.deallocate()
        scales.deallocate()
        errorBounds.deallocate()
        reconNorms.deallocate()
        codeSums.deallocate()
    }

    func upsert(id: Int, vector: UnsafePointer<Float>) {
        let row: Int
        if let existing = rowOf[id] {
            row = existing
        } else {
            row = ids.count
            ids.append(repeating: id, count: 1)
            vectors.append(repeating: 0, count: d)
            if quantized {
                codes.append(repeating: 0, count: d)
                scales.append(repeating: 0, count: 1)
                errorBounds.append(repeating: 0, count: 1)
                reconNorms.append(repeating: 0, count: 1)
                codeSums.append(repeating: 0, count: 1)
            }
            rowOf[id] = row
        }
        (vectors.base + row * d).update(from: vector, count: d)
        if quantized { quantize(row: row) }
    }

    func remove(id: Int) {
        guard let row = rowOf.removeValue(forKey: id) else { return }
        let last = ids.count - 1
        if row != last {
            let movedID = ids[last]
            ids[row] = movedID
            rowOf[movedID] = row
            (vectors.base + row * d).update(from: vectors.base + last * d, count: d)
            if quantized {
                (codes.base + row * d).update(from: codes.base + last * d, count: d)
                scales[row] = scales[last]
                errorBounds[row] = errorBounds[last]
                reconNorms[row] = reconNorms[last]
                codeSums[row] = codeSums[last]
            }
        }
        ids.removeLast(1)
        vectors.removeLast(d)
        if quantized {
            codes.removeLast(d)
            scales.removeLast(1)
            errorBounds.removeLast(1)
            reconNorms.removeLast(1)
            codeSums.removeLast(1)
        }
    }

    /// Rebuilds the id map and quantised copies after loading; validates ids and values.
    func rebuildDerived(fileDescription: String) throws {
        rowOf.reserveCapacity(ids.count)
        for row in 0..<ids.count {
            if rowOf.updateValue(row, forKey: ids[row]) != nil {
                throw VectorIndexError(.corrupt, "'\(fileDescription)' is corrupt: duplicate id \(ids[row])")
            }
        }
        for i in 0..<vectors.count where !vectors[i].isFinite {
            throw VectorIndexError(.corrupt, "'\(fileDescription)' is corrupt: non-finite vector component")
        }
        if quantized {
            codes.append(repeating: 0, count: ids.count * d)
            scales.append(repeating: 0, count: ids.count)
            errorBounds.append(repeating: 0, count: ids.count)
            reconNorms.append(repeating: 0, count: ids.count)
            codeSums.append(repeating: 0, count: ids.count)
            for row in 0..<ids.count { quantize(row: row) }
        }
    }

    /// Quantises a query to int8 (stored as u + 128) and returns its scale and the extra
    /// slack per unit ‖x̂‖: ‖q − q̂‖ + 4u·‖q̂‖ (the final two Float multiplications), rounded up.
    private func quantizeQuery(_ q: UnsafePointer<Float>, into bytes: inout [UInt8], offset: Int) -> (Float, Float) {
        var maxAbs: Float = 0
        for i in 0..<d { maxAbs = max(maxAbs, abs(q[i])) }
        let scale = maxAbs / 127
        var residual2: Double = 0, recon2: Double = 0
        for i in 0..<d {
            let u: Float = scale > 0 ? max(-127, min(127, (q[i] / scale).rounded())) : 0
            bytes[offset + i] = UInt8(Int(u) + 128)
            let recon = Double(scale) * Double(u)
            let e = Double(q[i]) - recon
            residual2 += e * e
            recon2 += recon * recon
        }
        let extra = (residual2.squareRoot() + 4 * 0x1p-24 * recon2.squareRoot()) * (1 + 1e-6) + 1e-7
        return (scale, Float(extra).nextUp)
    }

    /// Symmetric per-row int8 quantisation with a rigorous error bound (see `errorBounds`).
    private func quantize(row: Int) {
        let x = vectors.base + row * d
        let c = codes.base + row * d
        var maxAbs: Float = 0
        for i in 0..<d { maxAbs = max(maxAbs, abs(x[i])) }
        let scale = maxAbs / 127
        var residual2: Double = 0, norm2: Double = 0, qnorm2: Double = 0
        var sum: Int32 = 0
        for i in 0..<d {
            let code: Float = scale > 0 ? max(-127, min(127, (x[i] / scale).rounded())) : 0
            c[i] = Int8(code)
            sum += Int32(code)
            let recon = Double(scale) * Double(code)
            let e = Double(x[i]) - recon
            residual2 += e * e
            norm2 += Double(x[i]) * Double(x[i])
            qnorm2 += recon * recon
        }
        scales[row] = scale
        // fl(q·x) and fl(scale·(q·c)) each carry at most γ_d·‖q‖·‖v‖ rounding error
        // (γ_d = d·u/(1−d·u), u = 2⁻²⁴); the quantisation residual adds ‖q‖·‖x − x̂‖.
        let u = 0x1p-24
        let gamma = Double(d + 2) * u / (1 - Double(d + 2) * u)
        let bound = residual2.squareRoot() + gamma * (norm2.squareRoot() + qnorm2.squareRoot()) + 1e-7
        errorBounds[row] = Float(bound * (1 + 1e-6)).nextUp
        reconNorms[row] = Float(qnorm2.squareRoot() * (1 + 1e-6)).nextUp
        codeSums[row] = sum
    }

    func search<A: RowAcceptor>(_ q: UnsafePointer<Float>, k: Int, accept: A) -> [VectorMatch] {
        let n = ids.count
        guard n > 0 else { return [] }
        var top = TopK(k: min(k, n))
        defer { top.deallocate() }
        let native = Kernels.native
        let block = 1024
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { scoresBuffer in
            guard let scores = scoresBuffer.baseAddress else { return }
            if quantized {
                searchQuantized(q, top: &top, accept: accept, scores: scores, block: block)
            } else {
                var start = 0
                while start < n {
                    let m = min(block, n - start)
                    Kernels.dotMany(q, vectors.base + start * d, d, m, scores, native: native)
                    for j in 0..<m {
                        let s = scores[j]
                        if s > top.threshold && accept.accepts(start + j) {
                            top.insert(score: s, row: Int32(truncatingIfNeeded: start + j))
                        }
                    }
                    start += m
                }
            }
        }
        return top.sortedDescending().map { VectorMatch(id: ids[Int($0.node)], score: $0.score) }
    }

    private func searchQuantized<A: RowAcceptor>(
        _ q: UnsafePointer<Float>, top: inout TopK, accept: A,
        scores: UnsafeMutablePointer<Float>, block: Int
    ) {
        let n = ids.count
        var selector = QuantizedSelector(k: top.k, query: q, dimensions: d)
        let rows = UnsafeMutablePointer<Int32>.allocate(capacity: block)
        defer {
            selector.deallocate()
            rows.deallocate()
        }
        var start = 0
        while start < n {
            let m = min(block, n - start)
            let emitted = vk_i8_select(
                q, codes.base + start * d, scales.base + start, errorBounds.base + start, d, m,
                selector.queryNorm, selector.threshold, rows, scores)
            selector.consume(rows: rows, approx: scores, count: emitted, rowBase: start,
                             bounds: errorBounds.base + start, recon: reconNorms.base + start, accept: accept)
            start += m
        }
        selector.rerank(q, top: &top, vectors: vectors.base, dimensions: d)
    }

    /// Exact top-k for up to 8 queries with one int8 pass over the codes (quantised mode).
    /// `queries` holds 8 rows of `qstride` floats, zero-padded; rows >= `active` are ignored.
    func searchEight(
        _ queries: UnsafePointer<Float>, qstride: Int, active: Int, k: Int,
        scores: UnsafeMutablePointer<Float>, block: Int
    ) -> [[VectorMatch]] {
        let n = ids.count
        guard n > 0 else { return Array(repeating: [], count: active) }
        let k = min(k, n)
        var selectors = (0..<active).map { QuantizedSelector(k: k, query: queries + $0 * qstride, dimensions: d) }
        defer { for s in selectors { s.deallocate() } }
        let rows = UnsafeMutablePointer<Int32>.allocate(capacity: 8 * block)
        defer { rows.deallocate() }
        var qnorms = [Float](repeating: 0, count: 8)
        var thresholds = [Float](repeating: .infinity, count: 8)  // inactive slots emit nothing
        var counts = [Int](repeating: 0, count: 8)
        for j in 0..<active { qnorms[j] = selectors[j].queryNorm }
        // With VNNI the queries are quantised to int8 as well (u8 = u + 128 for vpdpbusd).
        let vnni = Kernels.vnni
        let ustride = (d + 63) / 64 * 64
        var qbytes = [UInt8](repeating: 128, count: vnni ? 8 * ustride : 0)
        var qscales = [Float](repeating: 0, count: 8)
        var qextras = [Float](repeating: 0, count: 8)
        if vnni {
            for j in 0..<active {
                let (scale, extra) = quantizeQuery(queries + j * qstride, into: &qbytes, offset: j * ustride)
                qscales[j] = scale
                qextras[j] = extra
                selectors[j].queryExtra = extra
            }
        }
        var start = 0
        while start < n {
            let m = min(block, n - start)
            for j in 0..<active { thresholds[j] = selectors[j].threshold }
            if vnni {
                vk_i8_select_x8_vnni(
                    qbytes, ustride, codes.base + start * d, codeSums.base + start, scales.base + start,
                    errorBounds.base + start, reconNorms.base + start, d, m, qscales, qnorms, qextras,
                    thresholds, rows, scores, &counts)
            } else {
                vk_i8_select_x8(
                    queries, qstride, codes.base + start * d, scales.base + start, errorBounds.base + start, d, m,
                    qnorms, thresholds, rows, scores, &counts)
            }
            for j in 0..<active {
                selectors[j].consume(rows: rows + j * m, approx: scores + j * m, count: counts[j], rowBase: start,
                                     bounds: errorBounds.base + start, recon: reconNorms.base + start,
                                     accept: AcceptAllRows())
            }
            start += m
        }
        return (0..<active).map { j in
            var top = TopK(k: k)
            defer { top.deallocate() }
            selectors[j].rerank(queries + j * qstride, top: &top, vectors: vectors.base, dimensions: d)
            return top.sortedDescending().map { VectorMatch(id: ids[Int($0.node)], score: $0.score) }
        }
    }
}

/// Candidate selection for the quantised first pass.
///
/// Each row has an approximate score `a` with `|fl(q·x) − a| ≤ ‖q‖·bound`. We keep the `k`
/// best lower bounds `a − slack` (their minimum `T` only rises) and every row whose upper
/// bound `a + slack` reaches the running `T`; any row of the true top-k satisfies
/// `upper ≥ true ≥ T_final ≥ T_then`, so the candidate list is a superset of it.
struct QuantizedSelector {
    private var lower: TopK
    private var candidates: RawBuffer<Scored>
    /// ‖q‖ rounded up.
    let queryNorm: Float
    /// Extra slack per unit of ‖x̂‖ when the query itself was quantised (0 otherwise):
    /// ‖q − q̂‖ plus the rounding of the final scaling.
    var queryExtra: Float = 0
    /// Current k-th best lower bound (−∞ until k rows were accepted); only rises.
    var threshold: Float { lower.threshold }

    init(k: Int, query: UnsafePointer<Float>, dimensions d: Int) {
        lower = TopK(k: k)
        candidates = RawBuffer(capacity: 4 * k + 64)
        var norm2: Double = 0
        for i in 0..<d { norm2 += Double(query[i]) * Double(query[i]) }
        queryNorm = Float(norm2.squareRoot() * (1 + 1e-6)).nextUp
    }

    func deallocate() {
        lower.deallocate()
        candidates.deallocate()
    }

    /// Processes rows emitted by the kernel: `rows` are block-relative indices, `approx`
    /// their approximate scores, `bounds` the block's error bounds.
    @inline(__always)
    mutating func consume<A: RowAcceptor>(
        rows: UnsafePointer<Int32>, approx: UnsafePointer<Float>, count: Int, rowBase: Int,
        bounds: UnsafePointer<Float>, recon: UnsafePointer<Float>, accept: A
    ) {
        let qn = queryNorm
        let qx = queryExtra
        var threshold = lower.threshold
        for i in 0..<count {
            let local = Int(rows[i])
            let a = approx[i]
            let slack = qn * bounds[local] + qx * recon[local]
            let upper = a + slack
            if upper < threshold { continue }
            let row = rowBase + local
            if !accept.accepts(row) { continue }
            lower.insert(score: a - slack, row: Int32(truncatingIfNeeded: row))
            threshold = lower.threshold
            candidates.append(Scored(score: upper, node: Int32(truncatingIfNeeded: row)))
        }
    }

    /// Exact Float32 re-scoring of the candidates in decreasing upper-bound order.
    mutating func rerank(_ q: UnsafePointer<Float>, top: inout TopK, vectors: UnsafePointer<Float>, dimensions d: Int) {
        let threshold = lower.threshold
        var sorted = UnsafeMutableBufferPointer(start: candidates.base, count: candidates.count)
        sorted.sort { $0.score > $1.score }
        for c in sorted {
            if c.score < threshold || c.score < top.threshold { break }
            top.insert(score: vk_dot(q, vectors + Int(c.node) * d, d), row: c.node)
        }
    }
}
