// One implementation of each elementwise kernel per instruction set (see lw_kernels.h).
// Contraction into fused multiply-adds is off for the whole file: every path rounds after each
// multiply and each add, so all paths give the same bits.
#pragma STDC FP_CONTRACT OFF
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#include "lw_kernels.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

// MARK: - One element, the definition every path follows (and the tail of every vector loop)

static inline void adam_one(float *w, const float *g, float *m, float *v, size_t i,
                            float b1, float c1, float b2, float c2, float step, float isb, float eps, float wd) {
    float gi = wd == 0.0f ? g[i] : g[i] + wd * w[i];
    float mi = b1 * m[i] + c1 * gi;
    float vi = b2 * v[i] + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] - step * mi / (__builtin_sqrtf(vi) * isb + eps);
}

static inline void sgd_one(float *w, const float *g, float *buf, size_t i, float lr, float mu, float wd, int first) {
    float gi = wd == 0.0f ? g[i] : g[i] + wd * w[i];
    float bi = first ? gi : mu * buf[i] + gi;
    buf[i] = bi;
    w[i] = w[i] - lr * bi;
}

// MARK: - generic

static void adam_generic(float *w, const float *g, float *m, float *v, size_t n,
                         float b1, float b2, float step, float isb, float eps, float wd) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    for (size_t i = 0; i < n; i++) adam_one(w, g, m, v, i, b1, c1, b2, c2, step, isb, eps, wd);
}

static void sgd_generic(float *w, const float *g, float *buf, size_t n, float lr, float mu, float wd, int first) {
    for (size_t i = 0; i < n; i++) sgd_one(w, g, buf, i, lr, mu, wd, first);
}

static void relu_forward_generic(float *x, size_t n, float slope) {
    for (size_t i = 0; i < n; i++) { float v = x[i]; x[i] = v > 0.0f ? v : v * slope; }
}

static void relu_backward_generic(const float *y, float *grad, size_t n, float slope) {
    for (size_t i = 0; i < n; i++) { if (!(y[i] > 0.0f)) grad[i] = grad[i] * slope; }
}

// MARK: - Lean optimizer state: 8-bit block-wise codes and stochastically rounded bf16

// Code -> fraction of the block's scale, filled once (quant_tables_init); every path reads them.
static float signed_values[256], unsigned_values[256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

// A code's value is computed with multiplications only, so the SIMD loops compute it as fast as
// they read it: (|c|/127)^2 = c^2 (exact in float) x fl(1/127^2), with c's sign;
// (c/255)^4 = fl(c^2 c^2) x fl(1/255^4).
#define LW_SIGNED_UNIT ((float)(1.0 / 16129.0))
#define LW_UNSIGNED_UNIT ((float)(1.0 / 4228250625.0))

static void quant_tables_fill(void) {
    for (int code = 0; code < 256; code++) {
        int c = (int)(signed char)code;
        float t = (float)(c * c) * LW_SIGNED_UNIT;
        signed_values[code] = c < 0 ? -t : t;
        float c2 = (float)(code * code);
        unsigned_values[code] = (c2 * c2) * LW_UNSIGNED_UNIT;
    }
}

static inline void quant_tables_init(void) { pthread_once(&tables_once, quant_tables_fill); }

float lw_quant_signed_value(unsigned char code) { quant_tables_init(); return signed_values[code]; }
float lw_quant_unsigned_value(unsigned char code) { quant_tables_init(); return unsigned_values[code]; }

// Largest magnitude (exact, so the order of the comparisons does not matter).
static inline float block_max(const float *x, size_t n) {
    float amax = 0.0f;
    for (size_t i = 0; i < n; i++) { float a = fabsf(x[i]); amax = a > amax ? a : amax; }
    return amax;
}

// The factor that maps a block's values onto the squared code range: L^2 / s for the block's
// scale s (L = 127 or 255). A block whose scale is below 2^-100 (no moment Adam or SGD can feel)
// gets 0, so its codes are 0 and L^2 / s never overflows.
static inline float code_factor(float scale, float levels_squared) {
    return scale >= 0x1p-100f ? levels_squared / scale : 0.0f;
}

// The code of t = |x| L^2 / s: sqrt(t) rounded to nearest even, with t first clamped to L^2
// (rounding can put the largest value a hair above it; a NaN becomes L^2). sqrt and the
// rounding to an integer are correctly rounded on every instruction set (the AVX2 loops use
// vsqrtps and vcvtps2dq, which rounds to nearest even as rintf), so every path gives the same code.
static inline int code_of_square(float t, float levels_squared) {
    t = t < levels_squared ? t : levels_squared;
    return (int)rintf(sqrtf(t));
}

// x (one block) -> codes: c = rint(127 sqrt(|x| / scale)) with x's sign (`code_of_square`).
static float quantize_signed_block(const float *x, unsigned char *codes, size_t n) {
    float scale = block_max(x, n), k = code_factor(scale, 16129.0f);
    for (size_t i = 0; i < n; i++) {
        int q = code_of_square(fabsf(x[i]) * k, 16129.0f);
        codes[i] = (unsigned char)(signed char)(x[i] < 0.0f ? -q : q);
    }
    return scale;
}

// Square roots of one block (r = sqrt(x), x >= 0) -> codes: c = rint(255 sqrt(r / sqrt(scale)))
// (`code_of_square`), that is 255 (x / scale)^(1/4) with scale the block's largest x. Adam has r
// already (its update divides by it), so its codes cost one square root a value; sqrt(scale) is
// the largest r exactly (a correctly rounded square root is monotonic).
static void quantize_unsigned_roots(const float *r, unsigned char *codes, size_t n, float scale) {
    float k = code_factor(sqrtf(scale), 65025.0f);
    for (size_t i = 0; i < n; i++) codes[i] = (unsigned char)code_of_square(r[i] * k, 65025.0f);
}

// x >= 0 (one block) -> codes as quantize_unsigned_roots.
static float quantize_unsigned_block(const float *x, unsigned char *codes, size_t n) {
    float r[LW_QUANT_BLOCK];
    float scale = block_max(x, n);
    for (size_t i = 0; i < n; i++) r[i] = sqrtf(x[i]);
    quantize_unsigned_roots(r, codes, n, scale);
    return scale;
}

float lw_quantize_signed(const float *x, unsigned char *codes, size_t n) { return quantize_signed_block(x, codes, n); }
float lw_quantize_unsigned(const float *x, unsigned char *codes, size_t n) { return quantize_unsigned_block(x, codes, n); }

void lw_dequantize_signed(const unsigned char *codes, float scale, float *x, size_t n) {
    quant_tables_init();
    for (size_t i = 0; i < n; i++) x[i] = signed_values[codes[i]] * scale;
}

void lw_dequantize_unsigned(const unsigned char *codes, float scale, float *x, size_t n) {
    quant_tables_init();
    for (size_t i = 0; i < n; i++) x[i] = unsigned_values[codes[i]] * scale;
}

// One element of the 8-bit Adam update: dequantise, update (as adam_one), keep m and sqrt(v) for
// the block's requantisation; returns v (the block's scale is its largest v).
static inline float adam_int8_one(float *w, const float *g, const unsigned char *mc, const unsigned char *vc, size_t k,
                                  float *mo, float *ro, float sm, float sv, float b1, float c1, float b2, float c2,
                                  float step, float isb, float eps, float wd) {
    float gi = wd == 0.0f ? g[k] : g[k] + wd * w[k];
    float mi = b1 * (signed_values[mc[k]] * sm) + c1 * gi;
    float vi = b2 * (unsigned_values[vc[k]] * sv) + c2 * gi * gi;
    float ri = sqrtf(vi);
    w[k] = w[k] - step * mi / (ri * isb + eps);
    *mo = mi;
    *ro = ri;
    return vi;
}

static void adam_int8_generic(float *w, const float *g, unsigned char *mc, float *ms, unsigned char *vc, float *vs, size_t n,
                              float b1, float b2, float step, float isb, float eps, float wd) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    float mt[LW_QUANT_BLOCK], rt[LW_QUANT_BLOCK];  // one block's m and sqrt(v) in fp32: all that ever exists
    for (size_t start = 0, block = 0; start < n; start += LW_QUANT_BLOCK, block++) {
        size_t len = n - start < LW_QUANT_BLOCK ? n - start : LW_QUANT_BLOCK;
        const float sm = ms[block], sv = vs[block];
        float av = 0.0f;
        for (size_t i = 0; i < len; i++) {
            float v = adam_int8_one(w, g, mc, vc, start + i, mt + i, rt + i, sm, sv, b1, c1, b2, c2, step, isb, eps, wd);
            av = v > av ? v : av;
        }
        ms[block] = quantize_signed_block(mt, mc + start, len);
        quantize_unsigned_roots(rt, vc + start, len, av);
        vs[block] = av;
    }
}

static void sgd_int8_generic(float *w, const float *g, unsigned char *codes, float *scales, size_t n,
                             float lr, float mu, float wd, int first) {
    float bt[LW_QUANT_BLOCK];
    for (size_t start = 0, block = 0; start < n; start += LW_QUANT_BLOCK, block++) {
        size_t len = n - start < LW_QUANT_BLOCK ? n - start : LW_QUANT_BLOCK;
        const float s = scales[block];
        for (size_t i = 0; i < len; i++) {
            size_t k = start + i;
            float gi = wd == 0.0f ? g[k] : g[k] + wd * w[k];
            float bi = first ? gi : mu * (signed_values[codes[k]] * s) + gi;
            w[k] = w[k] - lr * bi;
            bt[i] = bi;
        }
        scales[block] = quantize_signed_block(bt, codes + start, len);
    }
}

// A 32-bit integer hash (Chris Wellons' lowbias32): counter-based random bits, so the rounding of
// element i at step t is the same on every path, every thread split and every resumed run.
static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16; x *= 0x7feb352dU; x ^= x >> 15; x *= 0x846ca68bU; x ^= x >> 16;
    return x;
}

unsigned int lw_stochastic_key(unsigned int seed, unsigned long long step) {
    return mix32(seed ^ mix32((uint32_t)step ^ mix32((uint32_t)(step >> 32) + 0x9e3779b9U)));
}

unsigned int lw_stochastic_bits(unsigned int key, size_t index) { return mix32((uint32_t)index ^ key); }

static inline float bf16_value(unsigned short h) {
    uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

unsigned short lw_bf16_round_stochastic(float x, unsigned int random16) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (unsigned short)((bits + (random16 & 0xffffU)) >> 16);
}

static void adam_bf16_generic(float *w, const float *g, unsigned short *m, unsigned short *v, size_t n, size_t offset,
                              unsigned int key, float b1, float b2, float step, float isb, float eps, float wd) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    for (size_t i = 0; i < n; i++) {
        float gi = wd == 0.0f ? g[i] : g[i] + wd * w[i];
        float mi = b1 * bf16_value(m[i]) + c1 * gi;
        float vi = b2 * bf16_value(v[i]) + c2 * gi * gi;
        w[i] = w[i] - step * mi / (sqrtf(vi) * isb + eps);
        uint32_t r = lw_stochastic_bits(key, offset + i);
        m[i] = lw_bf16_round_stochastic(mi, r & 0xffffU);
        v[i] = lw_bf16_round_stochastic(vi, r >> 16);
    }
}

static void sgd_bf16_generic(float *w, const float *g, unsigned short *buf, size_t n, size_t offset, unsigned int key,
                             float lr, float mu, float wd, int first) {
    for (size_t i = 0; i < n; i++) {
        float gi = wd == 0.0f ? g[i] : g[i] + wd * w[i];
        float bi = first ? gi : mu * bf16_value(buf[i]) + gi;
        w[i] = w[i] - lr * bi;
        buf[i] = lw_bf16_round_stochastic(bi, lw_stochastic_bits(key, offset + i) & 0xffffU);
    }
}

// MARK: - AVX2 (8 lanes) and AVX-512 (16 lanes)

#if defined(__x86_64__)
__attribute__((target("avx2")))
static void adam_avx2(float *w, const float *g, float *m, float *v, size_t n,
                      float b1, float b2, float step, float isb, float eps, float wd) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    const __m256 B1 = _mm256_set1_ps(b1), C1 = _mm256_set1_ps(c1), B2 = _mm256_set1_ps(b2), C2 = _mm256_set1_ps(c2);
    const __m256 S = _mm256_set1_ps(step), I = _mm256_set1_ps(isb), E = _mm256_set1_ps(eps), WD = _mm256_set1_ps(wd);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wi = _mm256_loadu_ps(w + i);
        __m256 gi = _mm256_loadu_ps(g + i);
        if (wd != 0.0f) gi = _mm256_add_ps(gi, _mm256_mul_ps(WD, wi));
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(B1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(C1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(B2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(C2, gi), gi));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 denom = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), I), E);
        _mm256_storeu_ps(w + i, _mm256_sub_ps(wi, _mm256_div_ps(_mm256_mul_ps(S, mi), denom)));
    }
    for (; i < n; i++) adam_one(w, g, m, v, i, b1, c1, b2, c2, step, isb, eps, wd);
}

__attribute__((target("avx2")))
static void sgd_avx2(float *w, const float *g, float *buf, size_t n, float lr, float mu, float wd, int first) {
    const __m256 LR = _mm256_set1_ps(lr), MU = _mm256_set1_ps(mu), WD = _mm256_set1_ps(wd);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wi = _mm256_loadu_ps(w + i);
        __m256 gi = _mm256_loadu_ps(g + i);
        if (wd != 0.0f) gi = _mm256_add_ps(gi, _mm256_mul_ps(WD, wi));
        __m256 bi = first ? gi : _mm256_add_ps(_mm256_mul_ps(MU, _mm256_loadu_ps(buf + i)), gi);
        _mm256_storeu_ps(buf + i, bi);
        _mm256_storeu_ps(w + i, _mm256_sub_ps(wi, _mm256_mul_ps(LR, bi)));
    }
    for (; i < n; i++) sgd_one(w, g, buf, i, lr, mu, wd, first);
}

__attribute__((target("avx2")))
static void relu_forward_avx2(float *x, size_t n, float slope) {
    const __m256 S = _mm256_set1_ps(slope), Z = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 positive = _mm256_cmp_ps(v, Z, _CMP_GT_OQ);
        _mm256_storeu_ps(x + i, _mm256_blendv_ps(_mm256_mul_ps(v, S), v, positive));
    }
    for (; i < n; i++) { float v = x[i]; x[i] = v > 0.0f ? v : v * slope; }
}

__attribute__((target("avx2")))
static void relu_backward_avx2(const float *y, float *grad, size_t n, float slope) {
    const __m256 S = _mm256_set1_ps(slope), Z = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 positive = _mm256_cmp_ps(_mm256_loadu_ps(y + i), Z, _CMP_GT_OQ);
        __m256 gi = _mm256_loadu_ps(grad + i);
        _mm256_storeu_ps(grad + i, _mm256_blendv_ps(_mm256_mul_ps(gi, S), gi, positive));
    }
    for (; i < n; i++) { if (!(y[i] > 0.0f)) grad[i] = grad[i] * slope; }
}


// code_of_square on 8 lanes: the same clamp (vminps returns its second operand for a NaN, as
// the scalar comparison does), a correctly rounded square root and vcvtps2dq (nearest even).
__attribute__((target("avx2")))
static inline __m256i code_of_square_avx2(__m256 t, __m256 levels_squared) {
    return _mm256_cvtps_epi32(_mm256_sqrt_ps(_mm256_min_ps(t, levels_squared)));
}

// Sixteen 32-bit codes (each within a byte's range: -127...127 signed, 0...255 unsigned) -> 16
// bytes at out, in order.
__attribute__((target("avx2")))
static inline void store_codes_avx2(__m256i lo, __m256i hi, unsigned char *out, int is_signed) {
    __m256i w16 = _mm256_packs_epi32(lo, hi);  // 0-3 8-11 | 4-7 12-15
    __m256i b = is_signed ? _mm256_packs_epi16(w16, w16) : _mm256_packus_epi16(w16, w16);
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5));
    _mm_storeu_si128((__m128i *)out, _mm256_castsi256_si128(b));
}

// AVX2 8-bit Adam (also the AVX-512 path's): the same operations as adam_int8_one and the
// quantisers, 8 lanes at a time (the code tables' values recomputed; round-to-nearest-even as rintf;
// the block's largest magnitude is a max, exact in any order).
__attribute__((target("avx2")))
static inline float hmax_avx2(__m256 x) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

__attribute__((target("avx2")))
static void adam_int8_avx2(float *w, const float *g, unsigned char *mc, float *ms, unsigned char *vc, float *vs, size_t n,
                           float b1, float b2, float step, float isb, float eps, float wd) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    const __m256 B1 = _mm256_set1_ps(b1), C1 = _mm256_set1_ps(c1), B2 = _mm256_set1_ps(b2), C2 = _mm256_set1_ps(c2);
    const __m256 S = _mm256_set1_ps(step), I = _mm256_set1_ps(isb), E = _mm256_set1_ps(eps), WD = _mm256_set1_ps(wd);
    const __m256 ABS = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), ZERO = _mm256_setzero_ps();
    const __m256 L127 = _mm256_set1_ps(16129.0f), L255 = _mm256_set1_ps(65025.0f);
    const __m256 SU = _mm256_set1_ps(LW_SIGNED_UNIT), UU = _mm256_set1_ps(LW_UNSIGNED_UNIT);
    float mt[LW_QUANT_BLOCK], rt[LW_QUANT_BLOCK];
    for (size_t start = 0, block = 0; start < n; start += LW_QUANT_BLOCK, block++) {
        size_t len = n - start < LW_QUANT_BLOCK ? n - start : LW_QUANT_BLOCK;
        const float sm = ms[block], sv = vs[block];
        const __m256 SM = _mm256_set1_ps(sm), SV = _mm256_set1_ps(sv);
        __m256 mmax = ZERO, vmax = ZERO;
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            size_t k = start + i;
            __m256 wi = _mm256_loadu_ps(w + k);
            __m256 gi = _mm256_loadu_ps(g + k);
            if (wd != 0.0f) gi = _mm256_add_ps(gi, _mm256_mul_ps(WD, wi));
            // The code tables' values computed as quant_tables_fill does (a gather was 2x slower
            // on AMD EPYC: 12 vs 6 ns a parameter, one thread): sign(c) c^2 / 127^2, c^2 c^2 / 255^4.
            __m256 mcf = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(mc + k))));
            __m256 mvalue = _mm256_or_ps(_mm256_mul_ps(_mm256_mul_ps(mcf, mcf), SU), _mm256_andnot_ps(ABS, mcf));
            __m256 vcf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(vc + k))));
            __m256 vc2 = _mm256_mul_ps(vcf, vcf);
            __m256 vvalue = _mm256_mul_ps(_mm256_mul_ps(vc2, vc2), UU);
            __m256 m0 = _mm256_mul_ps(mvalue, SM);
            __m256 v0 = _mm256_mul_ps(vvalue, SV);
            __m256 mi = _mm256_add_ps(_mm256_mul_ps(B1, m0), _mm256_mul_ps(C1, gi));
            __m256 vi = _mm256_add_ps(_mm256_mul_ps(B2, v0), _mm256_mul_ps(_mm256_mul_ps(C2, gi), gi));
            __m256 ri = _mm256_sqrt_ps(vi);
            __m256 denom = _mm256_add_ps(_mm256_mul_ps(ri, I), E);
            _mm256_storeu_ps(w + k, _mm256_sub_ps(wi, _mm256_div_ps(_mm256_mul_ps(S, mi), denom)));
            _mm256_storeu_ps(mt + i, mi);
            _mm256_storeu_ps(rt + i, ri);
            mmax = _mm256_max_ps(mmax, _mm256_and_ps(mi, ABS));
            vmax = _mm256_max_ps(vmax, vi);
        }
        float am = hmax_avx2(mmax), av = hmax_avx2(vmax);
        for (; i < len; i++) {
            float v = adam_int8_one(w, g, mc, vc, start + i, mt + i, rt + i, sm, sv, b1, c1, b2, c2, step, isb, eps, wd);
            float a = fabsf(mt[i]); am = a > am ? a : am;
            av = v > av ? v : av;
        }
        const float km = code_factor(am, 16129.0f), kv = code_factor(sqrtf(av), 65025.0f);
        const __m256 KM = _mm256_set1_ps(km), KV = _mm256_set1_ps(kv);
        unsigned char *mq = mc + start, *vq = vc + start;
        for (i = 0; i + 16 <= len; i += 16) {
            __m256 x0 = _mm256_loadu_ps(mt + i), x1 = _mm256_loadu_ps(mt + i + 8);
            __m256i q0 = code_of_square_avx2(_mm256_mul_ps(_mm256_and_ps(x0, ABS), KM), L127);
            __m256i q1 = code_of_square_avx2(_mm256_mul_ps(_mm256_and_ps(x1, ABS), KM), L127);
            store_codes_avx2(_mm256_sign_epi32(q0, _mm256_castps_si256(x0)), _mm256_sign_epi32(q1, _mm256_castps_si256(x1)), mq + i, 1);
            store_codes_avx2(code_of_square_avx2(_mm256_mul_ps(_mm256_loadu_ps(rt + i), KV), L255),
                             code_of_square_avx2(_mm256_mul_ps(_mm256_loadu_ps(rt + i + 8), KV), L255), vq + i, 0);
        }
        for (; i < len; i++) {
            int q = code_of_square(fabsf(mt[i]) * km, 16129.0f);
            mq[i] = (unsigned char)(signed char)(mt[i] < 0.0f ? -q : q);
            vq[i] = (unsigned char)code_of_square(rt[i] * kv, 65025.0f);
        }
        ms[block] = am;
        vs[block] = av;
    }
}


// AVX2 bf16 Adam (also the AVX-512 path's): lw_stochastic_bits per lane with 32-bit multiplies,
// the same integer and float operations as adam_bf16_generic.
__attribute__((target("avx2")))
static inline __m256i mix32_avx2(__m256i x) {
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x7feb352dU));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bU));
    return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}

__attribute__((target("avx2")))
static void adam_bf16_avx2(float *w, const float *g, unsigned short *m, unsigned short *v, size_t n, size_t offset,
                           unsigned int key, float b1, float b2, float step, float isb, float eps, float wd) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    const __m256 B1 = _mm256_set1_ps(b1), C1 = _mm256_set1_ps(c1), B2 = _mm256_set1_ps(b2), C2 = _mm256_set1_ps(c2);
    const __m256 S = _mm256_set1_ps(step), I = _mm256_set1_ps(isb), E = _mm256_set1_ps(eps), WD = _mm256_set1_ps(wd);
    const __m256i LANES = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), KEY = _mm256_set1_epi32((int)key);
    const __m256i LOW = _mm256_set1_epi32(0xffff);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wi = _mm256_loadu_ps(w + i);
        __m256 gi = _mm256_loadu_ps(g + i);
        if (wd != 0.0f) gi = _mm256_add_ps(gi, _mm256_mul_ps(WD, wi));
        __m256 m0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(m + i))), 16));
        __m256 v0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(v + i))), 16));
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(B1, m0), _mm256_mul_ps(C1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(B2, v0), _mm256_mul_ps(_mm256_mul_ps(C2, gi), gi));
        __m256 denom = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), I), E);
        _mm256_storeu_ps(w + i, _mm256_sub_ps(wi, _mm256_div_ps(_mm256_mul_ps(S, mi), denom)));
        __m256i index = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)(offset + i)), LANES);
        __m256i r = mix32_avx2(_mm256_xor_si256(index, KEY));
        __m256i mb = _mm256_srli_epi32(_mm256_add_epi32(_mm256_castps_si256(mi), _mm256_and_si256(r, LOW)), 16);
        __m256i vb = _mm256_srli_epi32(_mm256_add_epi32(_mm256_castps_si256(vi), _mm256_srli_epi32(r, 16)), 16);
        // (m0-3 v0-3 | m4-7 v4-7) as 16-bit -> (m0-7 | v0-7)
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(mb, vb), 0xD8);
        _mm_storeu_si128((__m128i *)(m + i), _mm256_castsi256_si128(packed));
        _mm_storeu_si128((__m128i *)(v + i), _mm256_extracti128_si256(packed, 1));
    }
    if (i < n) adam_bf16_generic(w + i, g + i, m + i, v + i, n - i, offset + i, key, b1, b2, step, isb, eps, wd);
}


// AVX2 SGD with 8-bit and bf16 momentum (also the AVX-512 path's): the generic loops' operations.
__attribute__((target("avx2")))
static void sgd_int8_avx2(float *w, const float *g, unsigned char *codes, float *scales, size_t n,
                          float lr, float mu, float wd, int first) {
    const __m256 LR = _mm256_set1_ps(lr), MU = _mm256_set1_ps(mu), WD = _mm256_set1_ps(wd);
    const __m256 ABS = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), ZERO = _mm256_setzero_ps();
    const __m256 L127 = _mm256_set1_ps(16129.0f), SU = _mm256_set1_ps(LW_SIGNED_UNIT);
    float bt[LW_QUANT_BLOCK];
    for (size_t start = 0, block = 0; start < n; start += LW_QUANT_BLOCK, block++) {
        size_t len = n - start < LW_QUANT_BLOCK ? n - start : LW_QUANT_BLOCK;
        const float s = scales[block];
        const __m256 SC = _mm256_set1_ps(s);
        __m256 bmax = ZERO;
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            size_t k = start + i;
            __m256 wi = _mm256_loadu_ps(w + k);
            __m256 gi = _mm256_loadu_ps(g + k);
            if (wd != 0.0f) gi = _mm256_add_ps(gi, _mm256_mul_ps(WD, wi));
            __m256 bi = gi;
            if (!first) {
                __m256 cf = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(codes + k))));
                __m256 value = _mm256_or_ps(_mm256_mul_ps(_mm256_mul_ps(cf, cf), SU), _mm256_andnot_ps(ABS, cf));
                bi = _mm256_add_ps(_mm256_mul_ps(MU, _mm256_mul_ps(value, SC)), gi);
            }
            _mm256_storeu_ps(w + k, _mm256_sub_ps(wi, _mm256_mul_ps(LR, bi)));
            _mm256_storeu_ps(bt + i, bi);
            bmax = _mm256_max_ps(bmax, _mm256_and_ps(bi, ABS));
        }
        float am = hmax_avx2(bmax);
        for (; i < len; i++) {
            size_t k = start + i;
            float gi = wd == 0.0f ? g[k] : g[k] + wd * w[k];
            float bi = first ? gi : mu * (signed_values[codes[k]] * s) + gi;
            w[k] = w[k] - lr * bi;
            bt[i] = bi;
            float a = fabsf(bi); am = a > am ? a : am;
        }
        const float k = code_factor(am, 16129.0f);
        const __m256 K = _mm256_set1_ps(k);
        unsigned char *q8 = codes + start;
        for (i = 0; i + 16 <= len; i += 16) {
            __m256 x0 = _mm256_loadu_ps(bt + i), x1 = _mm256_loadu_ps(bt + i + 8);
            __m256i q0 = code_of_square_avx2(_mm256_mul_ps(_mm256_and_ps(x0, ABS), K), L127);
            __m256i q1 = code_of_square_avx2(_mm256_mul_ps(_mm256_and_ps(x1, ABS), K), L127);
            store_codes_avx2(_mm256_sign_epi32(q0, _mm256_castps_si256(x0)), _mm256_sign_epi32(q1, _mm256_castps_si256(x1)), q8 + i, 1);
        }
        for (; i < len; i++) {
            int q = code_of_square(fabsf(bt[i]) * k, 16129.0f);
            q8[i] = (unsigned char)(signed char)(bt[i] < 0.0f ? -q : q);
        }
        scales[block] = am;
    }
}

__attribute__((target("avx2")))
static void sgd_bf16_avx2(float *w, const float *g, unsigned short *buf, size_t n, size_t offset, unsigned int key,
                          float lr, float mu, float wd, int first) {
    const __m256 LR = _mm256_set1_ps(lr), MU = _mm256_set1_ps(mu), WD = _mm256_set1_ps(wd);
    const __m256i LANES = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), KEY = _mm256_set1_epi32((int)key);
    const __m256i LOW = _mm256_set1_epi32(0xffff);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wi = _mm256_loadu_ps(w + i);
        __m256 gi = _mm256_loadu_ps(g + i);
        if (wd != 0.0f) gi = _mm256_add_ps(gi, _mm256_mul_ps(WD, wi));
        __m256 bi = gi;
        if (!first) {
            __m256 b0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(buf + i))), 16));
            bi = _mm256_add_ps(_mm256_mul_ps(MU, b0), gi);
        }
        _mm256_storeu_ps(w + i, _mm256_sub_ps(wi, _mm256_mul_ps(LR, bi)));
        __m256i index = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)(offset + i)), LANES);
        __m256i r = mix32_avx2(_mm256_xor_si256(index, KEY));
        __m256i bb = _mm256_srli_epi32(_mm256_add_epi32(_mm256_castps_si256(bi), _mm256_and_si256(r, LOW)), 16);
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(bb, bb), 0xD8);
        _mm_storeu_si128((__m128i *)(buf + i), _mm256_castsi256_si128(packed));
    }
    if (i < n) sgd_bf16_generic(w + i, g + i, buf + i, n - i, offset + i, key, lr, mu, wd, first);
}

__attribute__((target("avx512f")))
static void adam_avx512(float *w, const float *g, float *m, float *v, size_t n,
                        float b1, float b2, float step, float isb, float eps, float wd) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    const __m512 B1 = _mm512_set1_ps(b1), C1 = _mm512_set1_ps(c1), B2 = _mm512_set1_ps(b2), C2 = _mm512_set1_ps(c2);
    const __m512 S = _mm512_set1_ps(step), I = _mm512_set1_ps(isb), E = _mm512_set1_ps(eps), WD = _mm512_set1_ps(wd);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 wi = _mm512_loadu_ps(w + i);
        __m512 gi = _mm512_loadu_ps(g + i);
        if (wd != 0.0f) gi = _mm512_add_ps(gi, _mm512_mul_ps(WD, wi));
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(B1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(C1, gi));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(B2, _mm512_loadu_ps(v + i)), _mm512_mul_ps(_mm512_mul_ps(C2, gi), gi));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        __m512 denom = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(vi), I), E);
        _mm512_storeu_ps(w + i, _mm512_sub_ps(wi, _mm512_div_ps(_mm512_mul_ps(S, mi), denom)));
    }
    for (; i < n; i++) adam_one(w, g, m, v, i, b1, c1, b2, c2, step, isb, eps, wd);
}

__attribute__((target("avx512f")))
static void sgd_avx512(float *w, const float *g, float *buf, size_t n, float lr, float mu, float wd, int first) {
    const __m512 LR = _mm512_set1_ps(lr), MU = _mm512_set1_ps(mu), WD = _mm512_set1_ps(wd);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 wi = _mm512_loadu_ps(w + i);
        __m512 gi = _mm512_loadu_ps(g + i);
        if (wd != 0.0f) gi = _mm512_add_ps(gi, _mm512_mul_ps(WD, wi));
        __m512 bi = first ? gi : _mm512_add_ps(_mm512_mul_ps(MU, _mm512_loadu_ps(buf + i)), gi);
        _mm512_storeu_ps(buf + i, bi);
        _mm512_storeu_ps(w + i, _mm512_sub_ps(wi, _mm512_mul_ps(LR, bi)));
    }
    for (; i < n; i++) sgd_one(w, g, buf, i, lr, mu, wd, first);
}

__attribute__((target("avx512f")))
static void relu_forward_avx512(float *x, size_t n, float slope) {
    const __m512 S = _mm512_set1_ps(slope), Z = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __mmask16 positive = _mm512_cmp_ps_mask(v, Z, _CMP_GT_OQ);
        _mm512_storeu_ps(x + i, _mm512_mask_blend_ps(positive, _mm512_mul_ps(v, S), v));
    }
    for (; i < n; i++) { float v = x[i]; x[i] = v > 0.0f ? v : v * slope; }
}

__attribute__((target("avx512f")))
static void relu_backward_avx512(const float *y, float *grad, size_t n, float slope) {
    const __m512 S = _mm512_set1_ps(slope), Z = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __mmask16 positive = _mm512_cmp_ps_mask(_mm512_loadu_ps(y + i), Z, _CMP_GT_OQ);
        __m512 gi = _mm512_loadu_ps(grad + i);
        _mm512_storeu_ps(grad + i, _mm512_mask_blend_ps(positive, _mm512_mul_ps(gi, S), gi));
    }
    for (; i < n; i++) { if (!(y[i] > 0.0f)) grad[i] = grad[i] * slope; }
}
#endif

// MARK: - NEON (4 lanes)

#if defined(__aarch64__)
static void adam_neon(float *w, const float *g, float *m, float *v, size_t n,
                      float b1, float b2, float step, float isb, float eps, float wd) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    const float32x4_t B1 = vdupq_n_f32(b1), C1 = vdupq_n_f32(c1), B2 = vdupq_n_f32(b2), C2 = vdupq_n_f32(c2);
    const float32x4_t S = vdupq_n_f32(step), I = vdupq_n_f32(isb), E = vdupq_n_f32(eps), WD = vdupq_n_f32(wd);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t wi = vld1q_f32(w + i);
        float32x4_t gi = vld1q_f32(g + i);
        if (wd != 0.0f) gi = vaddq_f32(gi, vmulq_f32(WD, wi));
        float32x4_t mi = vaddq_f32(vmulq_f32(B1, vld1q_f32(m + i)), vmulq_f32(C1, gi));
        float32x4_t vi = vaddq_f32(vmulq_f32(B2, vld1q_f32(v + i)), vmulq_f32(vmulq_f32(C2, gi), gi));
        vst1q_f32(m + i, mi);
        vst1q_f32(v + i, vi);
        float32x4_t denom = vaddq_f32(vmulq_f32(vsqrtq_f32(vi), I), E);
        vst1q_f32(w + i, vsubq_f32(wi, vdivq_f32(vmulq_f32(S, mi), denom)));
    }
    for (; i < n; i++) adam_one(w, g, m, v, i, b1, c1, b2, c2, step, isb, eps, wd);
}

static void sgd_neon(float *w, const float *g, float *buf, size_t n, float lr, float mu, float wd, int first) {
    const float32x4_t LR = vdupq_n_f32(lr), MU = vdupq_n_f32(mu), WD = vdupq_n_f32(wd);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t wi = vld1q_f32(w + i);
        float32x4_t gi = vld1q_f32(g + i);
        if (wd != 0.0f) gi = vaddq_f32(gi, vmulq_f32(WD, wi));
        float32x4_t bi = first ? gi : vaddq_f32(vmulq_f32(MU, vld1q_f32(buf + i)), gi);
        vst1q_f32(buf + i, bi);
        vst1q_f32(w + i, vsubq_f32(wi, vmulq_f32(LR, bi)));
    }
    for (; i < n; i++) sgd_one(w, g, buf, i, lr, mu, wd, first);
}

static void relu_forward_neon(float *x, size_t n, float slope) {
    const float32x4_t S = vdupq_n_f32(slope), Z = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        vst1q_f32(x + i, vbslq_f32(vcgtq_f32(v, Z), v, vmulq_f32(v, S)));
    }
    for (; i < n; i++) { float v = x[i]; x[i] = v > 0.0f ? v : v * slope; }
}

static void relu_backward_neon(const float *y, float *grad, size_t n, float slope) {
    const float32x4_t S = vdupq_n_f32(slope), Z = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t gi = vld1q_f32(grad + i);
        vst1q_f32(grad + i, vbslq_f32(vcgtq_f32(vld1q_f32(y + i), Z), gi, vmulq_f32(gi, S)));
    }
    for (; i < n; i++) { if (!(y[i] > 0.0f)) grad[i] = grad[i] * slope; }
}
#endif

// MARK: - Dispatch

typedef struct {
    void (*adam)(float *, const float *, float *, float *, size_t, float, float, float, float, float, float);
    void (*sgd)(float *, const float *, float *, size_t, float, float, float, int);
    void (*relu_forward)(float *, size_t, float);
    void (*relu_backward)(const float *, float *, size_t, float);
    void (*adam_int8)(float *, const float *, unsigned char *, float *, unsigned char *, float *, size_t,
                      float, float, float, float, float, float);
    void (*adam_bf16)(float *, const float *, unsigned short *, unsigned short *, size_t, size_t, unsigned int,
                      float, float, float, float, float, float);
    void (*sgd_int8)(float *, const float *, unsigned char *, float *, size_t, float, float, float, int);
    void (*sgd_bf16)(float *, const float *, unsigned short *, size_t, size_t, unsigned int, float, float, float, int);
} kernel_table;

static const kernel_table generic_table = {adam_generic, sgd_generic, relu_forward_generic, relu_backward_generic, adam_int8_generic, adam_bf16_generic, sgd_int8_generic, sgd_bf16_generic};
#if defined(__x86_64__)
static const kernel_table avx2_table = {adam_avx2, sgd_avx2, relu_forward_avx2, relu_backward_avx2, adam_int8_avx2, adam_bf16_avx2, sgd_int8_avx2, sgd_bf16_avx2};
static const kernel_table avx512_table = {adam_avx512, sgd_avx512, relu_forward_avx512, relu_backward_avx512, adam_int8_avx2, adam_bf16_avx2, sgd_int8_avx2, sgd_bf16_avx2};
#endif
#if defined(__aarch64__)
static const kernel_table neon_table = {adam_neon, sgd_neon, relu_forward_neon, relu_backward_neon, adam_int8_generic, adam_bf16_generic, sgd_int8_generic, sgd_bf16_generic};
#endif

static const kernel_table *table_for(lw_kernel_path path) {
    switch (path) {
#if defined(__x86_64__)
    case LW_KERNELS_AVX2: return &avx2_table;
    case LW_KERNELS_AVX512: return &avx512_table;
#endif
#if defined(__aarch64__)
    case LW_KERNELS_NEON: return &neon_table;
#endif
    default: return &generic_table;
    }
}

int lw_kernels_supported(lw_kernel_path path) {
    switch (path) {
    case LW_KERNELS_GENERIC: return 1;
#if defined(__x86_64__)
    case LW_KERNELS_AVX2: return __builtin_cpu_supports("avx2");
    case LW_KERNELS_AVX512: return __builtin_cpu_supports("avx512f");
#endif
#if defined(__aarch64__)
    case LW_KERNELS_NEON: return 1;  // Advanced SIMD is part of every ARMv8-A core
#endif
    default: return 0;
    }
}

int lw_cpu_has_avx512_bf16(void) {
#if defined(__x86_64__)
    unsigned eax, ebx, ecx, edx;
    if (!__builtin_cpu_supports("avx512f")) return 0;  // also false when the OS does not save zmm state
    if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return 0;
    return (eax >> 5) & 1;
#else
    return 0;
#endif
}

int lw_cpu_has_amx_bf16(void) {
#if defined(__x86_64__)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (edx >> 22) & 1;
#else
    return 0;
#endif
}

const char *lw_kernels_path_name(lw_kernel_path path) {
    switch (path) {
    case LW_KERNELS_AVX2: return "avx2";
    case LW_KERNELS_AVX512: return "avx512";
    case LW_KERNELS_NEON: return "neon";
    default: return "generic";
    }
}

// The selection is made once (pthread_once: kernels run on several threads at once); forcing a
// path later is for tests and benchmarks, between kernel calls.
static pthread_once_t selection_once = PTHREAD_ONCE_INIT;
static int selected = -1;
static const kernel_table *current = 0;
static const char *rejected = 0;
static char rejected_text[64];

static void select_path_once(void) {
    lw_kernel_path best = LW_KERNELS_GENERIC;
#if defined(__x86_64__)
    if (lw_kernels_supported(LW_KERNELS_AVX512)) best = LW_KERNELS_AVX512;
    else if (lw_kernels_supported(LW_KERNELS_AVX2)) best = LW_KERNELS_AVX2;
#endif
#if defined(__aarch64__)
    best = LW_KERNELS_NEON;
#endif
    const char *request = getenv("LAYERWISE_KERNELS");
    if (request && *request) {
        int found = 0;
        for (int p = LW_KERNELS_GENERIC; p <= LW_KERNELS_NEON; p++) {
            if (strcmp(request, lw_kernels_path_name((lw_kernel_path)p)) == 0 && lw_kernels_supported((lw_kernel_path)p)) {
                best = (lw_kernel_path)p;
                found = 1;
            }
        }
        if (!found) {
            strncpy(rejected_text, request, sizeof rejected_text - 1);
            rejected = rejected_text;
        }
    }
    current = table_for(best);
    selected = (int)best;
}

static inline void select_path(void) { pthread_once(&selection_once, select_path_once); }

lw_kernel_path lw_kernels_path(void) { select_path(); return (lw_kernel_path)selected; }

const char *lw_kernels_rejected_request(void) { select_path(); return rejected; }

int lw_kernels_force(lw_kernel_path path) {
    select_path();
    if (!lw_kernels_supported(path)) return 0;
    current = table_for(path);
    selected = (int)path;
    return 1;
}

void lw_adam(float *w, const float *g, float *m, float *v, size_t n,
             float b1, float b2, float step_size, float inv_sqrt_bc2, float eps, float wd) {
    select_path();
    current->adam(w, g, m, v, n, b1, b2, step_size, inv_sqrt_bc2, eps, wd);
}

void lw_sgd(float *w, const float *g, float *buf, size_t n, float lr, float mu, float wd, int first) {
    select_path();
    current->sgd(w, g, buf, n, lr, mu, wd, first);
}

void lw_leaky_relu_forward(float *x, size_t n, float slope) {
    select_path();
    current->relu_forward(x, n, slope);
}

void lw_leaky_relu_backward(const float *y, float *grad, size_t n, float slope) {
    select_path();
    current->relu_backward(y, grad, n, slope);
}

// The lean-state kernels have AVX2 loops (AVX-512 uses them too); NEON runs the generic loops
// (the same bits by construction).
void lw_adam_int8(float *w, const float *g, unsigned char *m_codes, float *m_scales,
                  unsigned char *v_codes, float *v_scales, size_t n,
                  float b1, float b2, float step_size, float inv_sqrt_bc2, float eps, float wd) {
    quant_tables_init();
    select_path();
    current->adam_int8(w, g, m_codes, m_scales, v_codes, v_scales, n, b1, b2, step_size, inv_sqrt_bc2, eps, wd);
}

void lw_sgd_int8(float *w, const float *g, unsigned char *codes, float *scales, size_t n,
                 float lr, float mu, float wd, int first) {
    quant_tables_init();
    select_path();
    current->sgd_int8(w, g, codes, scales, n, lr, mu, wd, first);
}

void lw_adam_bf16(float *w, const float *g, unsigned short *m, unsigned short *v, size_t n, size_t offset,
                  unsigned int key, float b1, float b2, float step_size, float inv_sqrt_bc2, float eps, float wd) {
    select_path();
    current->adam_bf16(w, g, m, v, n, offset, key, b1, b2, step_size, inv_sqrt_bc2, eps, wd);
}

void lw_sgd_bf16(float *w, const float *g, unsigned short *buf, size_t n, size_t offset, unsigned int key,
                 float lr, float mu, float wd, int first) {
    select_path();
    current->sgd_bf16(w, g, buf, n, offset, key, lr, mu, wd, first);
}
