import CVectorKernels

/// Dot-product kernels. On x86-64 with AVX2/AVX-512 the C target's run-time dispatched
/// kernels are used (SwiftPM compiles Swift for baseline x86-64, i.e. SSE2 only, and there
/// is no safe per-function target attribute in Swift). Elsewhere, or with
/// `VECTORS_KERNEL=portable`, the Swift SIMD implementation below is used.
enum Kernels {
    static let level: Int = Int(vk_level())
    static let native: Bool = level > 0
    /// AVX-512 VNNI int8 x int8 dot products (used by the exact index's batched search).
    static let vnni: Bool = vk_has_vnni() != 0
    static var name: String {
        switch level {
        case 3: return vnni ? "avx512+vnni" : "avx512"
        case 2: return "avx2+fma"
        default: return "portable-simd"
        }
    }

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int, native: Bool) -> Float {
        native ? vk_dot(a, b, n) : portableDot(a, b, n)
    }

    /// out[j] = dot(q, vector at byte offset rows[j] * stride from base)
    @inline(__always)
    static func dotGather(
        _ q: UnsafePointer<Float>, _ base: UnsafeRawPointer, stride: Int, _ n: Int,
        _ rows: UnsafePointer<Int32>, _ count: Int, _ out: UnsafeMutablePointer<Float>, native: Bool
    ) {
        if native {
            vk_dot_gather(q, base, stride, n, rows, count, out)
        } else {
            for j in 0..<count {
                let v = (base + Int(rows[j]) &* stride).assumingMemoryBound(to: Float.self)
                out[j] = portableDot(q, v, n)
            }
        }
    }

    /// out[r] = dot(q, base + r * n) for r in 0..<count
    @inline(__always)
    static func dotMany(
        _ q: UnsafePointer<Float>, _ base: UnsafePointer<Float>, _ n: Int, _ count: Int,
        _ out: UnsafeMutablePointer<Float>, native: Bool
    ) {
        if native {
            vk_dot_many(q, base, n, count, out)
        } else {
            for r in 0..<count { out[r] = portableDot(q, base + r &* n, n) }
        }
    }

    /// Swift SIMD dot product (two 16-wide accumulators, no FMA so no libm calls).
    @inline(__always)
    static func portableDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        while i &+ 32 <= n {
            let o = i &* 4
            acc0 += ra.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            acc1 += ra.loadUnaligned(fromByteOffset: o &+ 64, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: o &+ 64, as: SIMD16<Float>.self)
            i &+= 32
        }
        var acc8 = SIMD8<Float>()
        while i &+ 8 <= n {
            let o = i &* 4
            acc8 += ra.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                * rb.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            i &+= 8
        }
        var sum = (acc0 + acc1).sum() + acc8.sum()
        while i < n {
            sum += a[i] * b[i]
            i &+= 1
        }
        return sum
    }
}
