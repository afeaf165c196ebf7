#if canImport(Glibc)
import Glibc
#endif
import CMatrixKernels
import Foundation

/// Package-internal measurement hooks for `embed-bench` (not part of the public API).
package enum EmbeddingsDiagnostics {
    /// GFLOP/s of `C(m×n) = A(m×k) · Wᵀ` with the given backend ("openblas", "swift" or "amx"),
    /// best of `repeats` timed runs after one warm-up; `nil` if the backend is unavailable.
    package static func gemmGFLOPS(m: Int, n: Int, k: Int, backend: String, repeats: Int = 20) -> Double? {
        let a = FloatBuffer(count: m * k), w = FloatBuffer(count: n * k), c = FloatBuffer(count: m * n)
        for i in 0..<(m * k) { a.base[i] = Float(i % 7) * 0.1 - 0.3 }
        for i in 0..<(n * k) { w.base[i] = Float(i % 5) * 0.1 - 0.2 }
        let run: () -> Void
        switch backend {
        case "openblas":
            guard let blas = OpenBLAS.shared else { return nil }
            run = { blas.gemmABt(m: m, n: n, k: k, a: a.pointer, lda: k, b: w.pointer, ldb: k, c: c.base, ldc: n, beta: 0) }
        case "amx":
            // Including the rounding of A to bfloat16, as the encoder does per product.
            guard mk_bf16_amx_available() != 0 else { return nil }
            let tiles = BF16Buffer(count: mk_bf16_packed_count(Int32(n), Int32(k)))
            mk_bf16_pack_weights(w.pointer, Int32(n), Int32(k), tiles.base)
            let input = BF16Buffer(count: m * k)
            run = {
                mk_bf16_convert(a.pointer, input.base, m * k)
                mk_bf16_gemm(Int32(m), Int32(n), Int32(k), input.base, tiles.base, nil, c.base, Int32(n))
            }
        case "swift":
            let packed = packWeightPanels(w.pointer, n: n, k: k)
            let scratch = FloatBuffer(count: gemmScratchCount)
            run = { gemmSwift(m: m, n: n, k: k, a: a.pointer, lda: k, packed: packed.pointer, c: c.base, ldc: n,
                              accumulate: false, scratch: scratch.base) }
        default:
            return nil
        }
        run()
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            run()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        }
        return 2 * Double(m) * Double(n) * Double(k) / best / 1e9
    }
}
