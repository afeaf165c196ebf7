// bfloat16 matrix products on Intel AMX (Sapphire Rapids and later), for the MiniLM encoder.
//
// Everything here is chosen at run time: the file is compiled for the baseline x86-64 target,
// the AMX / AVX-512 code is enabled per function with __attribute__((target(...))), and
// mk_bf16_amx_available() checks CPUID, the OS-enabled register state (XCR0), asks Linux for
// permission to use the AMX tile data (arch_prctl) and runs one tile product in a forked child
// (some virtual machines advertise AMX and fault on it) before anything else is called.
#ifndef CMATRIXKERNELS_H
#define CMATRIXKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when AMX-BF16 and AVX512-BF16 can be used by this process (checked once), else 0.
int mk_bf16_amx_available(void);

/// Number of uint16 elements mk_bf16_pack_weights writes for an n x k weight.
size_t mk_bf16_packed_count(int n, int k);

/// Packs W (n x k, row-major, PyTorch's [out, in] layout) into AMX B-tiles of bfloat16
/// (round to nearest even): for every 16 outputs and 32 inputs one 16 x 32 tile with input
/// pairs interleaved. n and k must be multiples of 32. Portable code (no AMX needed).
void mk_bf16_pack_weights(const float *w, int n, int k, uint16_t *packed);

/// Rounds count floats to bfloat16 (nearest even). Needs mk_bf16_amx_available().
void mk_bf16_convert(const float *a, uint16_t *out, size_t count);

/// C (m x n, row stride ldc floats) = S + A (m x k bfloat16, row-major, stride k) * W^T, with W
/// packed by mk_bf16_pack_weights; S is C itself (accumulate) when bias is NULL, else the bias
/// (n floats) in every row, and C is then only written. Products are exact, sums are float32.
/// m >= 0 is any size; n and k are multiples of 32. Needs mk_bf16_amx_available().
void mk_bf16_gemm(int m, int n, int k, const uint16_t *a, const uint16_t *packed, const float *bias,
                  float *c, int ldc);

/// out = bfloat16(gelu(x)) for count floats (a multiple of 16), with the exact (erf) GELU:
/// the float32 activations of a feed-forward layer become the next product's bfloat16 input in
/// one pass. Needs mk_bf16_amx_available().
void mk_gelu_bf16(const float *x, uint16_t *out, size_t count);

#ifdef __cplusplus
}
#endif

#endif
