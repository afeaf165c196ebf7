// Dot-product kernels with run-time ISA dispatch.
//
// SwiftPM compiles this file for the baseline target (x86-64 = SSE2) without any
// unsafe flags; the wide kernels are enabled per function with
// __attribute__((target(...))) and only called after CPUID/XGETBV confirm support.
#include "CVectorKernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#define VK_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static int vk_detect(void) {
    int level = 0;
#if VK_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return 0;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    if ((xlo & 0x6) != 0x6) return 0;  // OS saves XMM+YMM state
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    if (avx2 && fma) level = 2;
    if (level == 2 && avx512f && (xlo & 0xE0) == 0xE0) level = 3;  // opmask+ZMM state
    if (level == 3 && ((b >> 30) & 1) && ((c >> 11) & 1)) level = 4;  // AVX512BW + AVX512_VNNI
#endif
    const char *env = getenv("VECTORS_KERNEL");
    if (env != NULL) {
        if (strcmp(env, "portable") == 0 || strcmp(env, "swift") == 0) level = 0;
        else if (strcmp(env, "avx2") == 0 && level > 2) level = 2;
        else if (strcmp(env, "avx512") == 0 && level > 3) level = 3;
    }
    return level;
}

/* Internal level 4 = AVX-512F + BW + VNNI; the public level caps at 3 (float kernels). */

static int vk_cached_level = -1;

static int vk_full_level(void) {
    int level = __atomic_load_n(&vk_cached_level, __ATOMIC_RELAXED);
    if (level < 0) {  // benign race: every thread computes the same value
        level = vk_detect();
        __atomic_store_n(&vk_cached_level, level, __ATOMIC_RELAXED);
    }
    return level;
}

int vk_level(void) {
    const int level = vk_full_level();
    return level > 3 ? 3 : level;
}

int vk_has_vnni(void) { return vk_full_level() >= 4; }

/* ---------- scalar reference (used only when no native level is available) ---------- */

static float dot_scalar(const float *a, const float *b, size_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float dot_i8_scalar(const float *q, const int8_t *c, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += q[i] * (float)c[i];
    return s;
}

#if VK_X86

#define VK_PREFETCH_ROW(p, bytes)                                              \
    do {                                                                       \
        const char *vk_p_ = (const char *)(p);                                 \
        for (size_t vk_o_ = 0; vk_o_ < (bytes); vk_o_ += 64)                   \
            _mm_prefetch(vk_p_ + vk_o_, _MM_HINT_T0);                          \
    } while (0)

/* ---------- AVX-512F ---------- */

__attribute__((target("avx512f,avx2,fma")))
static inline float dot_avx512(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx512f,avx2,fma")))
static void dot_many_avx512(const float *q, const float *base, size_t n, size_t count, float *out) {
    for (size_t r = 0; r < count; r++) out[r] = dot_avx512(q, base + r * n, n);
}

__attribute__((target("avx512f,avx2,fma")))
static void dot_gather_avx512(const float *q, const void *base, size_t stride, size_t n,
                              const int32_t *rows, size_t count, float *out) {
    const char *b = (const char *)base;
    const size_t bytes = n * sizeof(float);
    for (size_t j = 0; j < count && j < 4; j++) VK_PREFETCH_ROW(b + (size_t)rows[j] * stride, 128);
    if (count > 0) VK_PREFETCH_ROW(b + (size_t)rows[0] * stride, bytes);
    for (size_t j = 0; j < count; j++) {
        if (j + 1 < count) VK_PREFETCH_ROW(b + (size_t)rows[j + 1] * stride, bytes);
        if (j + 4 < count) VK_PREFETCH_ROW(b + (size_t)rows[j + 4] * stride, 128);
        out[j] = dot_avx512(q, (const float *)(b + (size_t)rows[j] * stride), n);
    }
}

__attribute__((target("avx512f,avx2,fma")))
static inline float dot_i8_avx512(const float *q, const int8_t *c, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 c0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(c + i))));
        const __m512 c1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(c + i + 16))));
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), c0, s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), c1, s1);
    }
    for (; i + 16 <= n; i += 16) {
        const __m512 c0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(c + i))));
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), c0, s0);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) s += q[i] * (float)c[i];
    return s;
}

__attribute__((target("avx512f,avx2,fma")))
static void dot_i8_many_avx512(const float *q, const int8_t *codes, const float *scales,
                               size_t n, size_t count, float *out) {
    for (size_t r = 0; r < count; r++) out[r] = scales[r] * dot_i8_avx512(q, codes + r * n, n);
}


/* Horizontal sums of eight 8-lane vectors: result lane j = sum(v_j). */
__attribute__((target("avx2,fma")))
static inline __m256 hsum8x8(__m256 v0, __m256 v1, __m256 v2, __m256 v3,
                             __m256 v4, __m256 v5, __m256 v6, __m256 v7) {
    const __m256 t0 = _mm256_hadd_ps(v0, v1), t1 = _mm256_hadd_ps(v2, v3);
    const __m256 t2 = _mm256_hadd_ps(v4, v5), t3 = _mm256_hadd_ps(v6, v7);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

__attribute__((target("avx512f,avx2,fma")))
static inline __m256 fold512(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/* Stores or selects one row's eight approximate scores (shared by the x8 kernels). */
__attribute__((target("avx2,fma")))
static inline void x8_epilogue(__m256 sums, size_t r, size_t count, const float *scales, float *out,
                               const float *bounds, __m256 qn8, __m256 thr8, int select,
                               int32_t *out_rows, float *out_scores, size_t *cnt) {
    const __m256 approx = _mm256_mul_ps(sums, _mm256_set1_ps(scales[r]));
    if (!select) {
        _mm256_storeu_ps(out + r * 8, approx);
        return;
    }
    /* upper = approx + qnorm * bound, rounded exactly like the Swift code (mul, then add). */
    const __m256 upper = _mm256_add_ps(approx, _mm256_mul_ps(qn8, _mm256_set1_ps(bounds[r])));
    unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(upper, thr8, _CMP_GE_OQ));
    if (mask) {
        float a[8];
        _mm256_storeu_ps(a, approx);
        while (mask) {
            const int j = __builtin_ctz(mask);
            mask &= mask - 1;
            out_rows[(size_t)j * count + cnt[j]] = (int32_t)r;
            out_scores[(size_t)j * count + cnt[j]] = a[j];
            cnt[j]++;
        }
    }
}

__attribute__((target("avx512f,avx2,fma")))
static inline __m512 load_codes16(const int8_t *c, size_t i, size_t n) {
    __m128i raw;
    if (i + 16 <= n) {
        raw = _mm_loadu_si128((const __m128i *)(c + i));
    } else {
        int8_t tail[16] = {0};
        memcpy(tail, c + i, n - i);
        raw = _mm_loadu_si128((const __m128i *)tail);
    }
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(raw));
}

#define VK_X8_FMA2(J)                                                        \
    do {                                                                     \
        const __m512 qv = _mm512_loadu_ps(q + (J) * qstride);                \
        a##J = _mm512_fmadd_ps(qv, cv0, a##J);                               \
        b##J = _mm512_fmadd_ps(qv, cv1, b##J);                               \
    } while (0)

__attribute__((target("avx512f,avx2,fma")))
static void dot_i8_many_x8_avx512(const float *qs, size_t qstride, const int8_t *codes,
                                  const float *scales, size_t n, size_t count, float *out,
                                  const float *bounds, const float *qnorms, const float *thresholds,
                                  int32_t *out_rows, float *out_scores, size_t *out_counts) {
    const int select = out_rows != NULL;
    __m256 qn8 = _mm256_setzero_ps(), thr8 = _mm256_setzero_ps();
    size_t cnt[8] = {0};
    if (select) { qn8 = _mm256_loadu_ps(qnorms); thr8 = _mm256_loadu_ps(thresholds); }
    size_t r = 0;
    /* Two rows per iteration: each query load feeds two FMAs (16 accumulators). */
    for (; r + 2 <= count; r += 2) {
        const int8_t *c0 = codes + r * n, *c1 = c0 + n;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        __m512 a4 = _mm512_setzero_ps(), a5 = _mm512_setzero_ps(), a6 = _mm512_setzero_ps(), a7 = _mm512_setzero_ps();
        __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
        __m512 b4 = _mm512_setzero_ps(), b5 = _mm512_setzero_ps(), b6 = _mm512_setzero_ps(), b7 = _mm512_setzero_ps();
        for (size_t i = 0; i < n; i += 16) {
            const __m512 cv0 = load_codes16(c0, i, n), cv1 = load_codes16(c1, i, n);
            const float *q = qs + i;
            VK_X8_FMA2(0); VK_X8_FMA2(1); VK_X8_FMA2(2); VK_X8_FMA2(3);
            VK_X8_FMA2(4); VK_X8_FMA2(5); VK_X8_FMA2(6); VK_X8_FMA2(7);
        }
        x8_epilogue(hsum8x8(fold512(a0), fold512(a1), fold512(a2), fold512(a3),
                            fold512(a4), fold512(a5), fold512(a6), fold512(a7)),
                    r, count, scales, out, bounds, qn8, thr8, select, out_rows, out_scores, cnt);
        x8_epilogue(hsum8x8(fold512(b0), fold512(b1), fold512(b2), fold512(b3),
                            fold512(b4), fold512(b5), fold512(b6), fold512(b7)),
                    r + 1, count, scales, out, bounds, qn8, thr8, select, out_rows, out_scores, cnt);
    }
    for (; r < count; r++) {
        const int8_t *c = codes + r * n;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        __m512 a4 = _mm512_setzero_ps(), a5 = _mm512_setzero_ps(), a6 = _mm512_setzero_ps(), a7 = _mm512_setzero_ps();
        for (size_t i = 0; i < n; i += 16) {
            const __m512 cv = load_codes16(c, i, n);
            const float *q = qs + i;
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q), cv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + qstride), cv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 2 * qstride), cv, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 3 * qstride), cv, a3);
            a4 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 4 * qstride), cv, a4);
            a5 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 5 * qstride), cv, a5);
            a6 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 6 * qstride), cv, a6);
            a7 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 7 * qstride), cv, a7);
        }
        x8_epilogue(hsum8x8(fold512(a0), fold512(a1), fold512(a2), fold512(a3),
                            fold512(a4), fold512(a5), fold512(a6), fold512(a7)),
                    r, count, scales, out, bounds, qn8, thr8, select, out_rows, out_scores, cnt);
    }
    if (select) for (int j = 0; j < 8; j++) out_counts[j] = cnt[j];
}


/* ---------- AVX-512 VNNI (int8 x int8) ---------- */

__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma")))
static inline __m512i load_codes64(const int8_t *c, size_t i, size_t n) {
    if (i + 64 <= n) return _mm512_loadu_si512((const void *)(c + i));
    const __mmask64 m = (__mmask64)((1ULL << (n - i)) - 1ULL);  /* n - i < 64 */
    return _mm512_maskz_loadu_epi8(m, c + i);
}

__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma")))
static inline void vnni_epilogue(__m256 dots, size_t r, size_t count, const int32_t *code_sums,
                                 const float *scales, const float *bounds, const float *recon_norms,
                                 __m256 qs8, __m256 qn8, __m256 qx8, __m256 thr8,
                                 int32_t *out_rows, float *out_scores, size_t *cnt) {
    /* dot(u, c) = dot(u + 128, c) - 128 * sum(c); all values are integers < 2^24, so exact. */
    const __m256 d = _mm256_sub_ps(dots, _mm256_set1_ps(128.0f * (float)code_sums[r]));
    const __m256 approx = _mm256_mul_ps(_mm256_mul_ps(d, _mm256_set1_ps(scales[r])), qs8);
    const __m256 slack = _mm256_add_ps(_mm256_mul_ps(qn8, _mm256_set1_ps(bounds[r])),
                                       _mm256_mul_ps(qx8, _mm256_set1_ps(recon_norms[r])));
    const __m256 upper = _mm256_add_ps(approx, slack);
    unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(upper, thr8, _CMP_GE_OQ));
    if (mask) {
        float a[8];
        _mm256_storeu_ps(a, approx);
        while (mask) {
            const int j = __builtin_ctz(mask);
            mask &= mask - 1;
            out_rows[(size_t)j * count + cnt[j]] = (int32_t)r;
            out_scores[(size_t)j * count + cnt[j]] = a[j];
            cnt[j]++;
        }
    }
}

#define VK_VNNI_FOLD(v) fold512(_mm512_cvtepi32_ps(v))
#define VK_VNNI_DP2(J)                                                       \
    do {                                                                     \
        const __m512i qv = _mm512_loadu_si512((const void *)(q + (J) * qstride)); \
        a##J = _mm512_dpbusd_epi32(a##J, qv, cv0);                           \
        b##J = _mm512_dpbusd_epi32(b##J, qv, cv1);                           \
    } while (0)
#define VK_VNNI_DP1(J)                                                       \
    a##J = _mm512_dpbusd_epi32(a##J, _mm512_loadu_si512((const void *)(q + (J) * qstride)), cv0)

__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma")))
static void i8_select_x8_vnni(const uint8_t *qs, size_t qstride, const int8_t *codes,
                              const int32_t *code_sums, const float *scales, const float *bounds,
                              const float *recon_norms, size_t n, size_t count, const float *qscales,
                              const float *qnorms, const float *qextras, const float *thresholds,
                              int32_t *out_rows, float *out_scores, size_t *out_counts) {
    const __m256 qs8 = _mm256_loadu_ps(qscales), qn8 = _mm256_loadu_ps(qnorms);
    const __m256 qx8 = _mm256_loadu_ps(qextras), thr8 = _mm256_loadu_ps(thresholds);
    size_t cnt[8] = {0};
    size_t r = 0;
    for (; r + 2 <= count; r += 2) {
        const int8_t *c0 = codes + r * n, *c1 = c0 + n;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        __m512i b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
        for (size_t i = 0; i < n; i += 64) {
            const __m512i cv0 = load_codes64(c0, i, n), cv1 = load_codes64(c1, i, n);
            const uint8_t *q = qs + i;
            VK_VNNI_DP2(0); VK_VNNI_DP2(1); VK_VNNI_DP2(2); VK_VNNI_DP2(3);
            VK_VNNI_DP2(4); VK_VNNI_DP2(5); VK_VNNI_DP2(6); VK_VNNI_DP2(7);
        }
        vnni_epilogue(hsum8x8(VK_VNNI_FOLD(a0), VK_VNNI_FOLD(a1), VK_VNNI_FOLD(a2), VK_VNNI_FOLD(a3),
                              VK_VNNI_FOLD(a4), VK_VNNI_FOLD(a5), VK_VNNI_FOLD(a6), VK_VNNI_FOLD(a7)),
                      r, count, code_sums, scales, bounds, recon_norms, qs8, qn8, qx8, thr8,
                      out_rows, out_scores, cnt);
        vnni_epilogue(hsum8x8(VK_VNNI_FOLD(b0), VK_VNNI_FOLD(b1), VK_VNNI_FOLD(b2), VK_VNNI_FOLD(b3),
                              VK_VNNI_FOLD(b4), VK_VNNI_FOLD(b5), VK_VNNI_FOLD(b6), VK_VNNI_FOLD(b7)),
                      r + 1, count, code_sums, scales, bounds, recon_norms, qs8, qn8, qx8, thr8,
                      out_rows, out_scores, cnt);
    }
    for (; r < count; r++) {
        const int8_t *c0 = codes + r * n;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (size_t i = 0; i < n; i += 64) {
            const __m512i cv0 = load_codes64(c0, i, n);
            const uint8_t *q = qs + i;
            VK_VNNI_DP1(0); VK_VNNI_DP1(1); VK_VNNI_DP1(2); VK_VNNI_DP1(3);
            VK_VNNI_DP1(4); VK_VNNI_DP1(5); VK_VNNI_DP1(6); VK_VNNI_DP1(7);
        }
        vnni_epilogue(hsum8x8(VK_VNNI_FOLD(a0), VK_VNNI_FOLD(a1), VK_VNNI_FOLD(a2), VK_VNNI_FOLD(a3),
                              VK_VNNI_FOLD(a4), VK_VNNI_FOLD(a5), VK_VNNI_FOLD(a6), VK_VNNI_FOLD(a7)),
                      r, count, code_sums, scales, bounds, recon_norms, qs8, qn8, qx8, thr8,
                      out_rows, out_scores, cnt);
    }
    for (int j = 0; j < 8; j++) out_counts[j] = cnt[j];
}

/* ---------- AVX2 + FMA ---------- */

__attribute__((target("avx2,fma")))
static inline float hsum256(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_shuffle_ps(r, r, 1));
    return _mm_cvtss_f32(r);
}

__attribute__((target("avx2,fma")))
static inline float dot_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma")))
static void dot_many_avx2(const float *q, const float *base, size_t n, size_t count, float *out) {
    for (size_t r = 0; r < count; r++) out[r] = dot_avx2(q, base + r * n, n);
}

__attribute__((target("avx2,fma")))
static void dot_gather_avx2(const float *q, const void *base, size_t stride, size_t n,
                              const int32_t *rows, size_t count, float *out) {
    const char *b = (const char *)base;
    const size_t bytes = n * sizeof(float);
    for (size_t j = 0; j < count && j < 4; j++) VK_PREFETCH_ROW(b + (size_t)rows[j] * stride, 128);
    if (count > 0) VK_PREFETCH_ROW(b + (size_t)rows[0] * stride, bytes);
    for (size_t j = 0; j < count; j++) {
        if (j + 1 < count) VK_PREFETCH_ROW(b + (size_t)rows[j + 1] * stride, bytes);
        if (j + 4 < count) VK_PREFETCH_ROW(b + (size_t)rows[j + 4] * stride, 128);
        out[j] = dot_avx2(q, (const float *)(b + (size_t)rows[j] * stride), n);
    }
}

__attribute__((target("avx2,fma")))
static inline float dot_i8_avx2(const float *q, const int8_t *c, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 c0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(c + i))));
        const __m256 c1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(c + i + 8))));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), c0, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), c1, s1);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += q[i] * (float)c[i];
    return s;
}

__attribute__((target("avx2,fma")))
static void dot_i8_many_avx2(const float *q, const int8_t *codes, const float *scales,
                             size_t n, size_t count, float *out) {
    for (size_t r = 0; r < count; r++) out[r] = scales[r] * dot_i8_avx2(q, codes + r * n, n);
}


__attribute__((target("avx2,fma")))
static void dot_i8_many_x8_avx2(const float *qs, size_t qstride, const int8_t *codes,
                                const float *scales, size_t n, size_t count, float *out,
                                const float *bounds, const float *qnorms, const float *thresholds,
                                int32_t *out_rows, float *out_scores, size_t *out_counts) {
    const int select = out_rows != NULL;
    __m256 qn8 = _mm256_setzero_ps(), thr8 = _mm256_setzero_ps();
    size_t cnt[8] = {0};
    if (select) { qn8 = _mm256_loadu_ps(qnorms); thr8 = _mm256_loadu_ps(thresholds); }
    for (size_t r = 0; r < count; r++) {
        const int8_t *c = codes + r * n;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        __m256 a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps(), a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps();
        for (size_t i = 0; i < n; i += 8) {
            __m128i raw;
            if (i + 8 <= n) {
                raw = _mm_loadl_epi64((const __m128i *)(c + i));
            } else {
                int8_t tail[16] = {0};
                memcpy(tail, c + i, n - i);
                raw = _mm_loadl_epi64((const __m128i *)tail);
            }
            const __m256 cv = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(raw));
            const float *q = qs + i;
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q), cv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + qstride), cv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 2 * qstride), cv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 3 * qstride), cv, a3);
            a4 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 4 * qstride), cv, a4);
            a5 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 5 * qstride), cv, a5);
            a6 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 6 * qstride), cv, a6);
            a7 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 7 * qstride), cv, a7);
        }
        x8_epilogue(hsum8x8(a0, a1, a2, a3, a4, a5, a6, a7), r, count, scales, out, bounds, qn8, thr8,
                    select, out_rows, out_scores, cnt);
    }
    if (select) for (int j = 0; j < 8; j++) out_counts[j] = cnt[j];
}

#endif /* VK_X86 */

/* ---------- dispatching entry points ---------- */

float vk_dot(const float *a, const float *b, size_t n) {
#if VK_X86
    switch (vk_level()) {
    case 3: return dot_avx512(a, b, n);
    case 2: return dot_avx2(a, b, n);
    default: break;
    }
#endif
    return dot_scalar(a, b, n);
}

void vk_dot_many(const float *q, const float *base, size_t n, size_t count, float *out) {
#if VK_X86
    switch (vk_level()) {
    case 3: dot_many_avx512(q, base, n, count, out); return;
    case 2: dot_many_avx2(q, base, n, count, out); return;
    default: break;
    }
#endif
    for (size_t r = 0; r < count; r++) out[r] = dot_scalar(q, base + r * n, n);
}

void vk_dot_gather(const float *q, const void *base, size_t stride, size_t n,
                   const int32_t *rows, size_t count, float *out) {
#if VK_X86
    switch (vk_level()) {
    case 3: dot_gather_avx512(q, base, stride, n, rows, count, out); return;
    case 2: dot_gather_avx2(q, base, stride, n, rows, count, out); return;
    default: break;
    }
#endif
    for (size_t j = 0; j < count; j++)
        out[j] = dot_scalar(q, (const float *)((const char *)base + (size_t)rows[j] * stride), n);
}

void vk_prefetch(const void *p, size_t bytes) {
#if VK_X86
    VK_PREFETCH_ROW(p, bytes);
#else
    (void)p; (void)bytes;
#endif
}

void vk_dot_i8_many(const float *q, const int8_t *codes, const float *scales,
                    size_t n, size_t count, float *out) {
#if VK_X86
    switch (vk_level()) {
    case 3: dot_i8_many_avx512(q, codes, scales, n, count, out); return;
    case 2: dot_i8_many_avx2(q, codes, scales, n, count, out); return;
    default: break;
    }
#endif
    for (size_t r = 0; r < count; r++) out[r] = scales[r] * dot_i8_scalar(q, codes + r * n, n);
}

void vk_dot_i8_many_x8(const float *queries, size_t qstride, const int8_t *codes,
                       const float *scales, size_t n, size_t count, float *out) {
#if VK_X86
    switch (vk_level()) {
    case 3: dot_i8_many_x8_avx512(queries, qstride, codes, scales, n, count, out, NULL, NULL, NULL, NULL, NULL, NULL); return;
    case 2: dot_i8_many_x8_avx2(queries, qstride, codes, scales, n, count, out, NULL, NULL, NULL, NULL, NULL, NULL); return;
    default: break;
    }
#endif
    for (size_t r = 0; r < count; r++)
        for (size_t j = 0; j < 8; j++)
            out[r * 8 + j] = scales[r] * dot_i8_scalar(queries + j * qstride, codes + r * n, n);
}

void vk_i8_select_x8(const float *queries, size_t qstride, const int8_t *codes, const float *scales,
                     const float *bounds, size_t n, size_t count, const float *qnorms,
                     const float *thresholds, int32_t *out_rows, float *out_scores, size_t *out_counts) {
#if VK_X86
    switch (vk_level()) {
    case 3:
        dot_i8_many_x8_avx512(queries, qstride, codes, scales, n, count, NULL, bounds, qnorms, thresholds,
                              out_rows, out_scores, out_counts);
        return;
    case 2:
        dot_i8_many_x8_avx2(queries, qstride, codes, scales, n, count, NULL, bounds, qnorms, thresholds,
                            out_rows, out_scores, out_counts);
        return;
    default: break;
    }
#endif
    for (size_t j = 0; j < 8; j++) {
        out_counts[j] = vk_i8_select(queries + j * qstride, codes, scales, bounds, n, count, qnorms[j],
                                     thresholds[j], out_rows + j * count, out_scores + j * count);
    }
}

size_t vk_i8_select(const float *q, const int8_t *codes, const float *scales, const float *bounds,
                    size_t n, size_t count, float qnorm, float threshold,
                    int32_t *out_rows, float *out_scores) {
    const int level = vk_level();
    size_t emitted = 0;
    for (size_t r = 0; r < count; r++) {
        float d;
#if VK_X86
        if (level == 3) d = dot_i8_avx512(q, codes + r * n, n);
        else if (level == 2) d = dot_i8_avx2(q, codes + r * n, n);
        else d = dot_i8_scalar(q, codes + r * n, n);
#else
        (void)level;
        d = dot_i8_scalar(q, codes + r * n, n);
#endif
        const float a = scales[r] * d;
        const float slack = qnorm * bounds[r];
        if (a + slack >= threshold) {
            out_rows[emitted] = (int32_t)r;
            out_scores[emitted] = a;
            emitted++;
        }
    }
    return emitted;
}

void vk_i8_select_x8_vnni(const uint8_t *queries_u8, size_t qstride, const int8_t *codes,
                          const int32_t *code_sums, const float *scales, const float *bounds,
                          const float *recon_norms, size_t n, size_t count, const float *qscales,
                          const float *qnorms, const float *qextras, const float *thresholds,
                          int32_t *out_rows, float *out_scores, size_t *out_counts) {
#if VK_X86
    if (vk_has_vnni()) {
        i8_select_x8_vnni(queries_u8, qstride, codes, code_sums, scales, bounds, recon_norms, n, count,
                          qscales, qnorms, qextras, thresholds, out_rows, out_scores, out_counts);
        return;
    }
#endif
    /* Scalar reference (never used by the Swift side unless vk_has_vnni() is true). */
    for (size_t j = 0; j < 8; j++) {
        size_t emitted = 0;
        for (size_t r = 0; r < count; r++) {
            long long dot = 0;
            for (size_t i = 0; i < n; i++)
                dot += ((int)queries_u8[j * qstride + i] - 128) * (int)codes[r * n + i];
            const float approx = (float)dot * scales[r] * qscales[j];
            const float slack = qnorms[j] * bounds[r] + qextras[j] * recon_norms[r];
            if (approx + slack >= thresholds[j]) {
                out_rows[j * count + emitted] = (int32_t)r;
                out_scores[j * count + emitted] = approx;
                emitted++;
            }
        }
        out_counts[j] = emitted;
    }
}
