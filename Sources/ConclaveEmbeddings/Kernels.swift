// Vectorised float kernels used by the BERT encoder: layer norm, GELU, softmax, and the
// attention used when OpenBLAS is not available (the portable GEMM is in GEMM.swift).
//
// All kernels work on raw pointers into buffers the caller owns; they never allocate.
// SIMD16<Float> maps to one AVX-512 register, two AVX registers or four SSE registers,
// depending on the target CPU the package is compiled for.

typealias F16 = SIMD16<Float>

/// A 64-byte aligned, zero-initialised float buffer with a stable address.
/// Immutable after construction when shared (weights); worker-local scratch otherwise.
final class FloatBuffer: @unchecked Sendable {
    let count: Int
    let base: UnsafeMutablePointer<Float>

    /// Zero-filled buffer.
    convenience init(count: Int) {
        self.init(uninitialized: count)
        base.initialize(repeating: 0, count: max(count, 16))
    }

    /// Buffer whose contents are unspecified until written (for scratch space).
    init(uninitialized count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 16) * MemoryLayout<Float>.stride, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(count, 16))
    }

    convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { source in
            if let address = source.baseAddress { base.update(from: address, count: values.count) }
        }
    }

    deinit { base.deallocate() }

    var pointer: UnsafePointer<Float> { UnsafePointer(base) }
}

/// 64-byte aligned bfloat16 storage (raw `UInt16` bits), zero-filled.
final class BF16Buffer: @unchecked Sendable {
    let count: Int
    let base: UnsafeMutablePointer<UInt16>

    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 32) * MemoryLayout<UInt16>.stride, alignment: 64)
        base = raw.bindMemory(to: UInt16.self, capacity: max(count, 32))
        base.initialize(repeating: 0, count: max(count, 32))
    }

    deinit { base.deallocate() }
}

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> F16 {
    UnsafeRawPointer(p).loadUnaligned(as: F16.self)
}

@inline(__always) func store16(_ v: F16, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16.self)
}

/// `acc + a * b`; fused when the package is compiled with `EMBEDDINGS_FMA` (a target CPU with FMA).
@inline(__always) func madd(_ acc: F16, _ a: F16, _ b: F16) -> F16 {
    #if EMBEDDINGS_FMA
    return acc.addingProduct(a, b)
    #else
    return acc + a * b
    #endif
}

@inline(__always) func vmax(_ a: F16, _ b: F16) -> F16 { a.replacing(with: b, where: b .> a) }
@inline(__always) func vmin(_ a: F16, _ b: F16) -> F16 { a.replacing(with: b, where: b .< a) }

/// Horizontal sum in a fixed order (deterministic).
@inline(__always) func hsum(_ v: F16) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    let c = b.lowHalf + b.highHalf
    return c[0] + c[1]
}

@inline(__always) func hmax(_ v: F16) -> Float {
    let a = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
    let b = a.lowHalf.replacing(with: a.highHalf, where: a.highHalf .> a.lowHalf)
    let c = b.lowHalf.replacing(with: b.highHalf, where: b.highHalf .> b.lowHalf)
    return Swift.max(c[0], c[1])
}

// MARK: - Elementwise math

/// In place `row[j] = e^(row[j] - shift)` for `count` (multiple of 16) values; returns the lane-wise sum.
/// Cephes polynomial, ~1 ulp on [-87, 88]; arguments are clamped to that range. The polynomial
/// is written inside the loop (not as a helper taking SIMD16 values) so LLVM keeps it in full
/// vector registers.
func expShiftedInPlace(_ row: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> F16 {
    let lower = F16(repeating: -87.33654), upper = F16(repeating: 88.0)
    let magic = F16(repeating: 12_582_912), log2e = F16(repeating: 1.442_695_04)
    let ln2Hi = F16(repeating: -0.693_359_375), ln2Lo = F16(repeating: 2.121_944_4e-4)
    let magicBits = unsafeBitCast(magic, to: SIMD16<Int32>.self)
    let s = F16(repeating: shift)
    var sum = F16()
    var j = 0
    while j < count {
        let x = vmin(vmax(load16(row + j) - s, lower), upper)
        // n = round(x / ln 2) via the 1.5·2^23 trick (no SSE4.1 round instruction needed).
        let shifted = madd(magic, x, log2e)
        let n = shifted - magic
        let r = madd(madd(x, n, ln2Hi), n, ln2Lo)
        var p = F16(repeating: 1.987_569_15e-4)
        p = madd(F16(repeating: 1.398_199_95e-3), p, r)
        p = madd(F16(repeating: 8.333_451_9e-3), p, r)
        p = madd(F16(repeating: 4.166_579_59e-2), p, r)
        p = madd(F16(repeating: 1.666_666_55e-1), p, r)
        p = madd(F16(repeating: 5.000_000_12e-1), p, r)
        p = madd(r + 1, p, r * r)
        // The low mantissa bits of `shifted` hold n (two's complement relative to the magic number).
        let n32 = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- magicBits
        let e = p * unsafeBitCast((n32 &+ 127) &<< 23, to: F16.self)
        store16(e, row + j)
        sum += e
        j += 16
    }
    return sum
}

/// `e^x` for 16 lanes; same polynomial as ``expShiftedInPlace(_:count:shift:)``.
@inline(__always) func vexp(_ input: F16) -> F16 {
    let x = vmin(vmax(input, F16(repeating: -87.33654)), F16(repeating: 88.0))
    let magic = F16(repeating: 12_582_912)
    let shifted = madd(magic, x, F16(repeating: 1.442_695_04))
    let n = shifted - magic
    let r = madd(madd(x, n, F16(repeating: -0.693_359_375)), n, F16(repeating: 2.121_944_4e-4))
    var p = F16(repeating: 1.987_569_15e-4)
    p = madd(F16(repeating: 1.398_199_95e-3), p, r)
    p = madd(F16(repeating: 8.333_451_9e-3), p, r)
    p = madd(F16(repeating: 4.166_579_59e-2), p, r)
    p = madd(F16(repeating: 1.666_666_55e-1), p, r)
    p = madd(F16(repeating: 5.000_000_12e-1), p, r)
    p = madd(r + 1, p, r * r)
    let n32 = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
    return p * unsafeBitCast((n32 &+ 127) &<< 23, to: F16.self)
}

/// In place softmax down each of the first `columns` columns of a `rows × ld` row-major matrix
/// (`ld` a multiple of 16 that is ≥ `columns`). Columns past `columns` up to the next multiple of
/// 16 are scratch: they are computed on and overwritten.
func softmaxColumns(_ m: UnsafeMutablePointer<Float>, rows: Int, columns: Int, ld: Int) {
    var c = 0
    while c < columns {
        let col = m + c
        if columns - c < 16 {
            // Neutral values in the padding lanes (whatever memory held before).
            for r in 0..<rows { for t in (columns - c)..<16 { col[r * ld + t] = 0 } }
        }
        var mx = load16(col)
        for r in 1..<max(rows, 1) { mx = vmax(mx, load16(col + r * ld)) }
        var sum = F16()
        for r in 0..<rows {
            let e = vexp(load16(col + r * ld) - mx)
            store16(e, col + r * ld)
            sum += e
        }
        let inv = 1 / sum
        for r in 0..<rows { store16(load16(col + r * ld) * inv, col + r * ld) }
        c += 16
    }
}

/// `erf(x)` for 16 lanes: the rational approximation used by Eigen/XLA (a few ulp on [-4, 4],
/// saturating to ±1 outside).
@inline(__always) func verf(_ input: F16) -> F16 {
    let x = vmin(vmax(input, F16(repeating: -4)), F16(repeating: 4))
    let x2 = x * x
    var p = F16(repeating: -2.726_142_25e-10)
    p = madd(F16(repeating: 2.770_681_42e-08), p, x2)
    p = madd(F16(repeating: -2.101_024_02e-06), p, x2)
    p = madd(F16(repeating: -5.692_506_39e-05), p, x2)
    p = madd(F16(repeating: -7.349_906_30e-04), p, x2)
    p = madd(F16(repeating: -2.954_600_0e-03), p, x2)
    p = madd(F16(repeating: -1.609_603_33e-02), p, x2)
    p = p * x
    var q = F16(repeating: -1.456_607_18e-05)
    q = madd(F16(repeating: -2.133_740_55e-04), q, x2)
    q = madd(F16(repeating: -1.682_827_0e-03), q, x2)
    q = madd(F16(repeating: -7.373_329_17e-03), q, x2)
    q = madd(F16(repeating: -1.426_473_91e-02), q, x2)
    return p / q
}

/// In place: `x = gelu(x + bias)` with the exact (erf) GELU, for `rows` rows of `n` (multiple of 16) values.
func biasGELU(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int, bias: UnsafePointer<Float>) {
    let half = F16(repeating: 0.5)
    let invSqrt2 = F16(repeating: 0.707_106_77)
    for r in 0..<rows {
        let row = x + r * n
        var j = 0
        while j < n {
            let v = load16(row + j) + load16(bias + j)
            store16(half * v * (verf(v * invSqrt2) + 1), row + j)
            j += 16
        }
    }
}

/// In place LayerNorm over rows of `n` (multiple of 16) values; two-pass mean/variance.
func layerNorm(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int,
               gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, epsilon: Float) {
    let invN = 1 / Float(n)
    for r in 0..<rows {
        let row = x + r * n
        var s0 = F16(), s1 = F16()
        var j = 0
        while j + 32 <= n { s0 += load16(row + j); s1 += load16(row + j + 16); j += 32 }
        while j < n { s0 += load16(row + j); j += 16 }
        let mean = hsum(s0 + s1) * invN
        let m = F16(repeating: mean)
        var v0 = F16(), v1 = F16()
        j = 0
        while j + 32 <= n {
            let d0 = load16(row + j) - m, d1 = load16(row + j + 16) - m
            v0 = madd(v0, d0, d0); v1 = madd(v1, d1, d1); j += 32
        }
        while j < n { let d = load16(row + j) - m; v0 = madd(v0, d, d); j += 16 }
        let variance = hsum(v0 + v1) * invN
        let scale = F16(repeating: 1 / (variance + epsilon).squareRoot())
        j = 0
        while j < n {
            let y = (load16(row + j) - m) * scale
            store16(madd(load16(beta + j), y, load16(gamma + j)), row + j)
            j += 16
        }
    }
}

/// `dst[r] = a[r] + bias` for `rows` rows of `n` (multiple of 16).
func addRowsBias(_ a: UnsafePointer<Float>, bias: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
    for r in 0..<rows {
        var j = 0
        while j < n {
            store16(load16(a + r * n + j) + load16(bias + j), dst + r * n + j)
            j += 16
        }
    }
}

/// Broadcast `bias` (n, multiple of 16) into every row of `dst` (row stride `n`).
func fillRows(_ dst: UnsafeMutablePointer<Float>, rows: Int, n: Int, bias: UnsafePointer<Float>) {
    for r in 0..<rows { (dst + r * n).update(from: bias, count: n) }
}

/// In place softmax of the first `count` values of a row that has room for `count` rounded up
/// to a multiple of 16 floats; the padding lanes are ignored on input and hold ~0 on output.
func softmaxPaddedRow(_ row: UnsafeMutablePointer<Float>, count: Int) {
    let padded = (count + 15) & ~15
    let last = padded - 16
    // Mask lanes past `count` in the last block to a large negative value.
    let laneIndices = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    let tailMask = laneIndices .>= SIMD16<Int32>(repeating: Int32(count - last))
    store16(load16(row + last).replacing(with: -1e30, where: tailMask), row + last)
    var m = load16(row)
    var j = 16
    while j < padded { m = vmax(m, load16(row + j)); j += 16 }
    let s = expShiftedInPlace(row, count: padded, shift: hmax(m))
    let iv = F16(repeating: 1 / hsum(s))
    j = 0
    while j < padded { store16(load16(row + j) * iv, row + j); j += 16 }
}

// MARK: - Portable attention for one head of one sequence (used without OpenBLAS)

/// `out[i, 0..<32] = softmax_j(q_i · k_j) · v_j` for one head (head size 32; the 1/√d scale is
/// already folded into q). `q`, `k`, `v`, `out` are row pointers with the given strides;
/// `kt` is scratch of `32 × roundUp(length, 16)` floats and `scores` of `roundUp(length, 16)`.
func attentionHead32(length: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                     stride: Int, out: UnsafeMutablePointer<Float>, outStride: Int,
                     kt: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>) {
    let padded = (length + 15) & ~15
    // Kᵀ, zero-padded to a multiple of 16 columns.
    for d in 0..<32 {
        let row = kt + d * padded
        for j in 0..<length { row[j] = k[j * stride + d] }
        for j in length..<padded { row[j] = 0 }
    }
    for i in 0..<length {
        let qi = q + i * stride
        var jb = 0
        while jb < padded {
            var acc = F16()
            for d in 0..<32 { acc = madd(acc, F16(repeating: qi[d]), load16(kt + d * padded + jb)) }
            store16(acc, scores + jb)
            jb += 16
        }
        softmaxPaddedRow(scores, count: length)
        var o0 = F16(), o1 = F16()
        for j in 0..<length {
            let p = F16(repeating: scores[j])
            let vj = v + j * stride
            o0 = madd(o0, p, load16(vj))
            o1 = madd(o1, p, load16(vj + 16))
        }
        let oi = out + i * outStride
        store16(o0, oi)
        store16(o1, oi + 16)
    }
}
