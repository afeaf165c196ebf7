// Blocked single-precision GEMM in Swift SIMD, used when OpenBLAS is not available
// (or MINILM_GEMM=swift). Computes C = A · Wᵀ (+ C) with W pre-packed at load time.
//
// Blocking (BLIS-style): K in chunks of `kc`, M in blocks of `mc` rows whose A block is packed
// into 12-row micro-panels, N in 32-column weight panels; the 12×32 micro-kernel keeps 24
// SIMD16 accumulators in registers (it is meant for AVX-512's 32 vector registers; on
// narrower targets LLVM splits the vectors and the kernel is correspondingly slower).

let gemmMR = 12      // rows per micro-tile
let gemmNR = 32      // columns per weight panel
let gemmKC = 256     // K chunk
let gemmMC = 120     // rows per packed A block (multiple of gemmMR)

/// `W` (N×K, row-major, PyTorch layout) re-laid out as N/32 panels of `[K][32]`.
func packWeightPanels(_ w: UnsafePointer<Float>, n: Int, k: Int) -> FloatBuffer {
    precondition(n % gemmNR == 0, "output dimension must be a multiple of \(gemmNR)")
    let packed = FloatBuffer(count: n * k)
    for panel in 0..<(n / gemmNR) {
        let dst = packed.base + panel * k * gemmNR
        for j in 0..<gemmNR {
            let src = w + (panel * gemmNR + j) * k
            for kk in 0..<k { dst[kk * gemmNR + j] = src[kk] }
        }
    }
    return packed
}

/// Floats of scratch space ``gemmSwift`` needs for its packed A block.
let gemmScratchCount = gemmMC * gemmKC

/// `C(m×n, ldc) = A(m×k, lda) · Wᵀ + (accumulate ? C : 0)`, W packed by ``packWeightPanels``.
func gemmSwift(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, packed: UnsafePointer<Float>,
               c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, scratch: UnsafeMutablePointer<Float>) {
    let panels = n / gemmNR
    var k0 = 0
    while k0 < k {
        let kLen = min(gemmKC, k - k0)
        let add = accumulate || k0 > 0
        var m0 = 0
        while m0 < m {
            let mLen = min(gemmMC, m - m0)
            let tiles = (mLen + gemmMR - 1) / gemmMR
            // Pack A[m0..<m0+mLen, k0..<k0+kLen] as tiles of [kLen][12], zero-padding missing rows.
            for t in 0..<tiles {
                let dst = scratch + t * kLen * gemmMR
                for r in 0..<gemmMR {
                    let row = t * gemmMR + r
                    if row < mLen {
                        let src = a + (m0 + row) * lda + k0
                        for kk in 0..<kLen { dst[kk * gemmMR + r] = src[kk] }
                    } else {
                        for kk in 0..<kLen { dst[kk * gemmMR + r] = 0 }
                    }
                }
            }
            for panel in 0..<panels {
                let bp = packed + panel * k * gemmNR + k0 * gemmNR
                for t in 0..<tiles {
                    let rows = min(gemmMR, mLen - t * gemmMR)
                    microKernel12x32(kLen: kLen, a: scratch + t * kLen * gemmMR, b: bp,
                                     c: c + (m0 + t * gemmMR) * ldc + panel * gemmNR, ldc: ldc,
                                     rows: rows, accumulate: add)
                }
            }
            m0 += mLen
        }
        k0 += kLen
    }
}

@inline(__always)
private func microKernel12x32(kLen: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                              c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, accumulate: Bool) {
    var c00 = F16(), c01 = F16(), c10 = F16(), c11 = F16(), c20 = F16(), c21 = F16()
    var c30 = F16(), c31 = F16(), c40 = F16(), c41 = F16(), c50 = F16(), c51 = F16()
    var c60 = F16(), c61 = F16(), c70 = F16(), c71 = F16(), c80 = F16(), c81 = F16()
    var c90 = F16(), c91 = F16(), ca0 = F16(), ca1 = F16(), cb0 = F16(), cb1 = F16()
    var pa = a, pb = b
    for _ in 0..<kLen {
        let b0 = load16(pb), b1 = load16(pb + 16)
        var s = F16(repeating: pa[0]); c00 = madd(c00, s, b0); c01 = madd(c01, s, b1)
        s = F16(repeating: pa[1]); c10 = madd(c10, s, b0); c11 = madd(c11, s, b1)
        s = F16(repeating: pa[2]); c20 = madd(c20, s, b0); c21 = madd(c21, s, b1)
        s = F16(repeating: pa[3]); c30 = madd(c30, s, b0); c31 = madd(c31, s, b1)
        s = F16(repeating: pa[4]); c40 = madd(c40, s, b0); c41 = madd(c41, s, b1)
        s = F16(repeating: pa[5]); c50 = madd(c50, s, b0); c51 = madd(c51, s, b1)
        s = F16(repeating: pa[6]); c60 = madd(c60, s, b0); c61 = madd(c61, s, b1)
        s = F16(repeating: pa[7]); c70 = madd(c70, s, b0); c71 = madd(c71, s, b1)
        s = F16(repeating: pa[8]); c80 = madd(c80, s, b0); c81 = madd(c81, s, b1)
        s = F16(repeating: pa[9]); c90 = madd(c90, s, b0); c91 = madd(c91, s, b1)
        s = F16(repeating: pa[10]); ca0 = madd(ca0, s, b0); ca1 = madd(ca1, s, b1)
        s = F16(repeating: pa[11]); cb0 = madd(cb0, s, b0); cb1 = madd(cb1, s, b1)
        pa += gemmMR
        pb += gemmNR
    }
    @inline(__always) func put(_ r: Int, _ v0: F16, _ v1: F16) {
        guard r < rows else { return }
        let p = c + r * ldc
        if accumulate {
            store16(load16(p) + v0, p)
            store16(load16(p + 16) + v1, p + 16)
        } else {
            store16(v0, p)
            store16(v1, p + 16)
        }
    }
    put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31)
    put(4, c40, c41); put(5, c50, c51); put(6, c60, c61); put(7, c70, c71)
    put(8, c80, c81); put(9, c90, c91); put(10, ca0, ca1); put(11, cb0, cb1)
}
