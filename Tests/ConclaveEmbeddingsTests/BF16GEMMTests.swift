import CMatrixKernels
import Foundation
import Testing

/// The AMX bfloat16 GEMM against a double-precision product of the same bfloat16-rounded inputs.
@Suite("bfloat16 AMX GEMM")
struct BF16GEMMTests {
    /// bfloat16 bits → Float.
    static func float(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    @Test("weights and inputs round to the nearest bfloat16, ties to even")
    func rounding() {
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
        // 1 + 3·2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: ties go to 1 + 2^-6.
        let values: [Float] = [1, 1 + 0x1p-8, 1 + 3 * 0x1p-8, -2.5, 1 + 0x1p-9, 3.140625, 0]
        let expected: [Float] = [1, 1, 1 + 0x1p-6, -2.5, 1, 3.140625, 0]
        var out = [UInt16](repeating: 0xFFFF, count: values.count)
        mk_bf16_convert(values, &out, values.count)
        #expect(out.map(Self.float) == expected)
    }

    @Test("C = C + A·Wᵀ and C = bias + A·Wᵀ for row counts around the 16- and 32-row tile edges",
          arguments: [1, 5, 15, 16, 17, 31, 32, 33, 48, 70], [false, true])
    func gemm(rows m: Int, fromBias: Bool) throws {
        guard mk_bf16_amx_available() != 0 else {
            print("bfloat16 AMX GEMM not tested: this CPU (or kernel) has no AMX-BF16")
            return
        }
        let n = 64, k = 96
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15 &+ UInt64(m)
        func next() -> Float {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: seed >> 11) % 2001 - 1000) / 1000
        }
        let a = (0..<(m * k)).map { _ in next() }
        let w = (0..<(n * k)).map { _ in next() }
        let bias = (0..<n).map { _ in next() }
        let initial = (0..<(m * n)).map { _ in next() }
        var packed = [UInt16](repeating: 0, count: mk_bf16_packed_count(Int32(n), Int32(k)))
        mk_bf16_pack_weights(w, Int32(n), Int32(k), &packed)
        var a16 = [UInt16](repeating: 0, count: m * k), w16 = [UInt16](repeating: 0, count: n * k)
        mk_bf16_convert(a, &a16, a.count)
        mk_bf16_convert(w, &w16, w.count)
        // A guard row after C: the kernel must not write past m rows.
        var c = initial + [Float](repeating: 7, count: n)
        if fromBias {
            mk_bf16_gemm(Int32(m), Int32(n), Int32(k), a16, packed, bias, &c, Int32(n))
        } else {
            mk_bf16_gemm(Int32(m), Int32(n), Int32(k), a16, packed, nil, &c, Int32(n))
        }
        var worst: Double = 0
        for i in 0..<m {
            for j in 0..<n {
                var sum = Double(fromBias ? bias[j] : initial[i * n + j])
                for p in 0..<k { sum += Double(Self.float(a16[i * k + p])) * Double(Self.float(w16[j * k + p])) }
                worst = max(worst, abs(sum - Double(c[i * n + j])))
            }
        }
        #expect(worst < 1e-4, "largest difference \(worst) for \(m) rows")
        #expect(c[(m * n)...].allSatisfy { $0 == 7 }, "row \(m) was overwritten")
    }

    @Test("the fused GELU matches x/2·(1 + erf(x/√2)) to the bfloat16 rounding")
    func gelu() throws {
        guard mk_bf16_amx_available() != 0 else {
            print("bfloat16 GELU not tested: this CPU (or kernel) has no AMX-BF16")
            return
        }
        // -8…8 in steps of 1/64, with 16 extra lanes (a count that is not a multiple of 32).
        let x = (0..<1040).map { Float($0 - 520) / 64 }
        var out = [UInt16](repeating: 0, count: x.count)
        mk_gelu_bf16(x, &out, x.count)
        for (value, bits) in zip(x, out) {
            let exact = Double(value) / 2 * (1 + erf(Double(value) / 2.squareRoot()))
            let got = Double(Self.float(bits))
            // Half a bfloat16 ulp of rounding plus the erf approximation's error.
            #expect(abs(got - exact) <= max(abs(exact) * 0x1p-8, 1e-6) + 1e-6, "gelu(\(value)) = \(got), expected \(exact)")
        }
    }
}
