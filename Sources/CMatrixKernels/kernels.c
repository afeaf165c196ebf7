// bfloat16 GEMM on Intel AMX. See include/CMatrixKernels.h.
#include "CMatrixKernels.h"

#include <string.h>

#if defined(__x86_64__) && defined(__linux__)
#define MK_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#if MK_AMX
// 32 x 32 bfloat16 ones (0x3F80) as A, the same packed as B: every sum of the product is 32.
static uint16_t mk_probe_ones[16 * 32] __attribute__((aligned(64)));
static float mk_probe_out[16 * 16] __attribute__((aligned(64)));

typedef struct {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} mk_tile_config;

__attribute__((target("amx-tile,amx-bf16")))
static int mk_probe_product(void) {
    for (int i = 0; i < 16 * 32; i++) mk_probe_ones[i] = 0x3F80;
    mk_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 3; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_loadd(1, mk_probe_ones, 64);
    _tile_loadd(2, mk_probe_ones, 64);
    _tile_dpbf16ps(0, 1, 2);
    _tile_stored(0, mk_probe_out, 64);
    _tile_release();
    for (int i = 0; i < 16 * 16; i++) if (mk_probe_out[i] != 32.0f) return 0;
    return 1;
}

// Some virtual machines report AMX in CPUID and XCR0 and still fault on the tile instructions
// (SIGILL; seen with llama.cpp's AMX kernels). So the first use runs one tile product in a forked
// child: only a child that exits 0 with the right sums lets the process use AMX. The child runs
// no code but this (no allocation, no locks) and leaves with _exit.
static int mk_probe(void) {
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        // A fault must end the child quietly, not run the parent's crash handlers (Swift's backtracer).
        signal(SIGILL, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        _exit(mk_probe_product() ? 0 : 1);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return 0;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int mk_detect(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return 0;  // OSXSAVE
    __cpuid_count(7, 0, a, b, c, d);
    const int avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    const int amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
    __cpuid_count(7, 1, a, b, c, d);
    const int avx512_bf16 = (a >> 5) & 1;
    if (!(avx512f && avx512bw && avx512vl && amx_bf16 && amx_tile && avx512_bf16)) return 0;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    // XMM/YMM (bits 1-2), opmask/ZMM (5-7), XTILECFG/XTILEDATA (17-18).
    if ((xlo & 0xE6) != 0xE6 || (xlo & 0x60000) != 0x60000) return 0;
    // Linux hands out the 8 KiB tile state only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
    if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) return 0;
    return mk_probe();
}
#endif

int mk_bf16_amx_available(void) {
#if MK_AMX
    static int state = -1;  // benign race: every thread computes the same answer
    if (state < 0) state = mk_detect();
    return state;
#else
    return 0;
#endif
}

size_t mk_bf16_packed_count(int n, int k) { return (size_t)n * (size_t)k; }

static uint16_t mk_round_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void mk_bf16_pack_weights(const float *w, int n, int k, uint16_t *packed) {
    const int kblocks = k / 32;
    for (int nb = 0; nb < n / 16; nb++) {
        for (int kb = 0; kb < kblocks; kb++) {
            uint16_t *tile = packed + ((size_t)nb * kblocks + kb) * 512;
            for (int pair = 0; pair < 16; pair++)
                for (int col = 0; col < 16; col++)
                    for (int j = 0; j < 2; j++)
                        tile[pair * 32 + col * 2 + j] = mk_round_bf16(w[(size_t)(nb * 16 + col) * k + kb * 32 + pair * 2 + j]);
        }
    }
}

#if MK_AMX
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void mk_convert_avx512(const float *a, uint16_t *out, size_t count) {
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(a + i));
        _mm512_storeu_si512((void *)(out + i), (__m512i)v);
    }
    for (; i < count; i++) out[i] = mk_round_bf16(a[i]);
}

// erf by the rational approximation Eigen and XLA use (a few ulp on [-4, 4], saturating
// outside), with the division done as a 14-bit reciprocal plus one Newton step (~2^-28).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static inline __m512 mk_gelu16(__m512 v) {
    const __m512 x = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678f)),
                                                 _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
    const __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-2.72614225e-10f);
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.77068142e-08f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.10102402e-06f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.69250639e-05f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-7.34990630e-04f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.95460000e-03f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.60960333e-02f));
    p = _mm512_mul_ps(p, x);
    __m512 q = _mm512_set1_ps(-1.45660718e-05f);
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-2.13374055e-04f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.68282700e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-7.37332917e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.42647391e-02f));
    __m512 r = _mm512_rcp14_ps(q);
    r = _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0f)));
    const __m512 erf = _mm512_mul_ps(p, r);
    return _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.5f)), _mm512_add_ps(erf, _mm512_set1_ps(1.0f)));
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void mk_gelu_avx512(const float *x, uint16_t *out, size_t count) {
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(mk_gelu16(_mm512_loadu_ps(x + i + 16)), mk_gelu16(_mm512_loadu_ps(x + i)));
        _mm512_storeu_si512((void *)(out + i), (__m512i)v);
    }
    for (; i < count; i += 16) {
        _mm256_storeu_si256((__m256i *)(out + i), (__m256i)_mm512_cvtneps_pbh(mk_gelu16(_mm512_loadu_ps(x + i))));
    }
}

// Tiles: 0-3 accumulate C (2 x 2 blocks of 16 x 16 floats), 4-5 hold A (16 rows x 32 bf16),
// 6-7 hold B (16 input pairs x 16 outputs). rows0/rows1: rows of the upper/lower A and C tiles.
__attribute__((target("amx-tile,amx-bf16")))
static void mk_configure(int rows0, int rows1) {
    mk_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    const int rows[8] = {rows0, rows0, rows1, rows1, rows0, rows1, 16, 16};
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = (uint8_t)(rows[t] > 0 ? rows[t] : 1);
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
}

// One band of up to 32 rows starting at a / c, all n columns. With a bias, the C tiles start
// from it (a tile load with stride 0 repeats one row), otherwise from C.
__attribute__((target("amx-tile,amx-bf16")))
static void mk_band(int two_rows, int n, int k, const uint16_t *a, const uint16_t *packed, const float *bias,
                    float *c, int ldc) {
    const int kblocks = k / 32;
    const size_t astride = (size_t)k * 2, cstride = (size_t)ldc * 4;
    const uint16_t *a0 = a, *a1 = a + (size_t)16 * k;
    for (int n0 = 0; n0 < n; n0 += 32) {
        float *c0 = c + n0, *c1 = c + (size_t)16 * ldc + n0;
        const uint16_t *b0 = packed + (size_t)(n0 / 16) * kblocks * 512, *b1 = b0 + (size_t)kblocks * 512;
        // Where the accumulators start: the bias row repeated (stride 0), or C itself.
        const float *s0 = bias ? bias + n0 : c0, *s1 = bias ? bias + n0 : c1;
        const size_t sstride = bias ? 0 : cstride;
        _tile_loadd(0, s0, sstride);
        _tile_loadd(1, s0 + 16, sstride);
        if (two_rows) {
            _tile_loadd(2, s1, sstride);
            _tile_loadd(3, s1 + 16, sstride);
            for (int kb = 0; kb < kblocks; kb++) {
                _tile_loadd(4, a0 + kb * 32, astride);
                _tile_loadd(5, a1 + kb * 32, astride);
                _tile_loadd(6, b0 + (size_t)kb * 512, 64);
                _tile_loadd(7, b1 + (size_t)kb * 512, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(2, c1, cstride);
            _tile_stored(3, c1 + 16, cstride);
        } else {
            for (int kb = 0; kb < kblocks; kb++) {
                _tile_loadd(4, a0 + kb * 32, astride);
                _tile_loadd(6, b0 + (size_t)kb * 512, 64);
                _tile_loadd(7, b1 + (size_t)kb * 512, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
            }
        }
        _tile_stored(0, c0, cstride);
        _tile_stored(1, c0 + 16, cstride);
    }
}

__attribute__((target("amx-tile,amx-bf16")))
static void mk_gemm_amx(int m, int n, int k, const uint16_t *a, const uint16_t *packed, const float *bias,
                        float *c, int ldc) {
    const int full = m / 32 * 32;
    if (full > 0) {
        mk_configure(16, 16);
        for (int m0 = 0; m0 < full; m0 += 32)
            mk_band(1, n, k, a + (size_t)m0 * k, packed, bias, c + (size_t)m0 * ldc, ldc);
    }
    const int tail = m - full;
    if (tail > 0) {
        // Tiles with fewer rows read and write only those rows: no padding needed.
        const int rows0 = tail < 16 ? tail : 16, rows1 = tail - rows0;
        mk_configure(rows0, rows1);
        mk_band(rows1 > 0, n, k, a + (size_t)full * k, packed, bias, c + (size_t)full * ldc, ldc);
    }
    _tile_release();
}
#endif

void mk_bf16_convert(const float *a, uint16_t *out, size_t count) {
#if MK_AMX
    mk_convert_avx512(a, out, count);
#else
    for (size_t i = 0; i < count; i++) out[i] = mk_round_bf16(a[i]);
#endif
}

void mk_bf16_gemm(int m, int n, int k, const uint16_t *a, const uint16_t *packed, const float *bias,
                  float *c, int ldc) {
#if MK_AMX
    if (m > 0) mk_gemm_amx(m, n, k, a, packed, bias, c, ldc);
#else
    (void)m; (void)n; (void)k; (void)a; (void)packed; (void)bias; (void)c; (void)ldc;
#endif
}

void mk_gelu_bf16(const float *x, uint16_t *out, size_t count) {
#if MK_AMX
    mk_gelu_avx512(x, out, count);
#else
    (void)x; (void)out; (void)count;
#endif
}
