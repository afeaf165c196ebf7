#ifndef CVECTORKERNELS_H
#define CVECTORKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Kernel level chosen for this process (detected once, thread-safe):
/// 0 = none (caller uses its portable Swift SIMD path), 2 = AVX2+FMA, 3 = AVX-512F.
/// The environment variable VECTORS_KERNEL=portable|avx2 caps the level (benchmarks/tests).
int vk_level(void);

/// Dot product of two n-element float vectors.
float vk_dot(const float *a, const float *b, size_t n);

/// out[r] = dot(q, base + r*n) for r in [0, count): contiguous row-major rows.
void vk_dot_many(const float *q, const float *base, size_t n, size_t count, float *out);

/// out[j] = dot(q, (const float *)((const char *)base + rows[j]*stride)) for j in [0, count),
/// prefetching upcoming rows. `stride` is in bytes.
void vk_dot_gather(const float *q, const void *base, size_t stride, size_t n,
                   const int32_t *rows, size_t count, float *out);

/// Prefetches the first `bytes` bytes at p into cache (no-op where unsupported).
void vk_prefetch(const void *p, size_t bytes);

/// out[r] = scales[r] * dot(q, codes + r*n) for int8 codes, r in [0, count).
void vk_dot_i8_many(const float *q, const int8_t *codes, const float *scales,
                    size_t n, size_t count, float *out);

/// Eight queries at once: out[r*8 + j] = scales[r] * dot(queries + j*qstride, codes + r*n)
/// for r in [0, count), j in [0, 8). `qstride` >= n must be a multiple of 16 and each query
/// row must be zero-padded from n to qstride. Requires vk_level() >= 2.
void vk_dot_i8_many_x8(const float *queries, size_t qstride, const int8_t *codes,
                       const float *scales, size_t n, size_t count, float *out);

/// Quantised candidate selection for one query. For r in [0, count):
///   a = scales[r] * dot(q, codes + r*n); upper = a + qnorm * bounds[r]
/// rows with upper >= threshold are written to out_rows/out_scores (a); returns how many.
/// out_rows/out_scores must hold `count` entries.
size_t vk_i8_select(const float *q, const int8_t *codes, const float *scales, const float *bounds,
                    size_t n, size_t count, float qnorm, float threshold,
                    int32_t *out_rows, float *out_scores);

/// Eight-query version of vk_i8_select (queries laid out as for vk_dot_i8_many_x8).
/// Query j's rows go to out_rows[j*count ...] / out_scores[j*count ...]; out_counts[j] is set.
void vk_i8_select_x8(const float *queries, size_t qstride, const int8_t *codes, const float *scales,
                     const float *bounds, size_t n, size_t count, const float *qnorms,
                     const float *thresholds, int32_t *out_rows, float *out_scores, size_t *out_counts);

/// 1 when AVX-512 VNNI int8 dot products are usable (and not disabled by VECTORS_KERNEL).
int vk_has_vnni(void);

/// Eight-query int8 x int8 selection with AVX-512 VNNI (call only if vk_has_vnni()).
/// queries_u8: 8 rows of `qstride` bytes (qstride a multiple of 64, >= n), byte = u + 128 for
/// the int8-quantised query u. For query j and row r:
///   approx = (dot(u_j, codes_r)) * scales[r] * qscales[j]     (integer dot is exact)
///   upper  = approx + (qnorms[j] * bounds[r] + qextras[j] * recon_norms[r])
/// rows with upper >= thresholds[j] are emitted as in vk_i8_select_x8.
void vk_i8_select_x8_vnni(const uint8_t *queries_u8, size_t qstride, const int8_t *codes,
                          const int32_t *code_sums, const float *scales, const float *bounds,
                          const float *recon_norms, size_t n, size_t count, const float *qscales,
                          const float *qnorms, const float *qextras, const float *thresholds,
                          int32_t *out_rows, float *out_scores, size_t *out_counts);

#ifdef __cplusplus
}
#endif

#endif
