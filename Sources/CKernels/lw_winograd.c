// Winograd F(2x2, 3x3) transforms for stride-1, pad-1 3x3 convolutions (see lw_kernels.h). The
// 16 tile GEMMs between them are the caller's (BLAS). Contraction is off and every path does the
// same adds and subtracts (and exact halvings) in the same order per element, so the generic
// and AVX2 builds of these loops give the same bits; the AVX2 build is the same C compiled for
// AVX2 so the compiler vectorizes the loops over tiles.
#pragma STDC FP_CONTRACT OFF
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#include "lw_kernels.h"

#include <string.h>

// 1-D pieces, 4 taps: B^T d (input), G g (filter), A^T m (output), and the adjoints A y (output
// gradient) and G^T u (filter gradient).
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]

#define WINO_BODIES(SUFFIX, ATTR)                                                                          \
/* The padded plane P (rows 0..2th+1, columns 0..2tw+1; P[r][q] = x[r-1][q-1], zero outside) is  \
   kept as its even and odd columns, so every loop below reads and writes consecutive floats. */   \
ATTR static void wino_input_##SUFFIX(const float *x, int images, int channels, int height, int width,     \
                                     float *v, size_t ld, float *plane) {                                 \
    const int th = (height + 1) / 2, tw = (width + 1) / 2, tiles = th * tw, half = tw + 1;               \
    const int ph = 2 * th + 2;                                                                           \
    const size_t xi = ld * (size_t)channels;                                                             \
    float *even = plane, *odd = plane + (size_t)ph * half, *t = odd + (size_t)ph * half;                 \
    memset(plane, 0, sizeof(float) * 2 * (size_t)ph * half);                                              \
    for (int b = 0; b < images; b++) {                                                                   \
        for (int c = 0; c < channels; c++) {                                                             \
            const float *src = x + ((size_t)b * channels + c) * (size_t)height * width;                  \
            for (int r = 0; r < height; r++) {                                                           \
                const float *s = src + (size_t)r * width;                                                 \
                float *pe = even + (size_t)(r + 1) * half, *po = odd + (size_t)(r + 1) * half;           \
                pe[0] = 0.0f;                                                                             \
                for (int j = 1; j < half; j++) pe[j] = 2 * j - 1 < width ? s[2 * j - 1] : 0.0f;          \
                for (int j = 0; j < half; j++) po[j] = 2 * j < width ? s[2 * j] : 0.0f;                  \
            }                                                                                             \
            float *out = v + (size_t)c * ld + (size_t)b * tiles;                                          \
            for (int i = 0; i < th; i++) {                                                               \
                const float *e0 = even + (size_t)(2 * i) * half, *e1 = e0 + half, *e2 = e1 + half, *e3 = e2 + half; \
                const float *o0 = odd + (size_t)(2 * i) * half, *o1 = o0 + half, *o2 = o1 + half, *o3 = o2 + half; \
                /* rows: B^T d, for every column at once; t[r] even then odd */                          \
                float *t0e = t, *t0o = t0e + half, *t1e = t0o + half, *t1o = t1e + half;                  \
                float *t2e = t1o + half, *t2o = t2e + half, *t3e = t2o + half, *t3o = t3e + half;         \
                for (int j = 0; j < half; j++) {                                                         \
                    t0e[j] = e0[j] - e2[j]; t0o[j] = o0[j] - o2[j];                                       \
                    t1e[j] = e1[j] + e2[j]; t1o[j] = o1[j] + o2[j];                                       \
                    t2e[j] = e2[j] - e1[j]; t2o[j] = o2[j] - o1[j];                                       \
                    t3e[j] = e1[j] - e3[j]; t3o[j] = o1[j] - o3[j];                                       \
                }                                                                                         \
                /* columns: tile j reads padded columns 2j..2j+3 = even[j], odd[j], even[j+1], odd[j+1] */ \
                float *o = out + (size_t)i * tw;                                                          \
                for (int r = 0; r < 4; r++) {                                                             \
                    const float *te = t + (size_t)(2 * r) * half, *to = te + half;                        \
                    float *q0 = o + (size_t)(4 * r) * xi, *q1 = q0 + xi, *q2 = q1 + xi, *q3 = q2 + xi;     \
                    for (int j = 0; j < tw; j++) {                                                       \
                        q0[j] = te[j] - te[j + 1];                                                        \
                        q1[j] = to[j] + te[j + 1];                                                        \
                        q2[j] = te[j + 1] - to[j];                                                        \
                        q3[j] = to[j] - to[j + 1];                                                        \
                    }                                                                                     \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
}                                                                                                         \
                                                                                                          \
ATTR static void wino_output_##SUFFIX(const float *m, size_t ld, int images, int channels, int height,     \
                                      int width, const float *bias, int accumulate, float *y, float *plane) { \
    const int th = (height + 1) / 2, tw = (width + 1) / 2, tiles = th * tw;                              \
    const size_t xi = ld * (size_t)channels;                                                             \
    float *r0e = plane, *r0o = r0e + tw, *r1e = r0o + tw, *r1o = r1e + tw;                                \
    for (int b = 0; b < images; b++) {                                                                   \
        for (int c = 0; c < channels; c++) {                                                             \
            const float *in = m + (size_t)c * ld + (size_t)b * tiles;                                     \
            float *dst = y + ((size_t)b * channels + c) * (size_t)height * width;                        \
            const float add = bias ? bias[c] : 0.0f;                                                      \
            for (int i = 0; i < th; i++) {                                                               \
                const float *q = in + (size_t)i * tw;                                                      \
                for (int j = 0; j < tw; j++) {                                                           \
                    float w0[4], w1[4];                                                                   \
                    for (int e = 0; e < 4; e++) {                                                         \
                        const float u0 = q[(size_t)e * xi + j], u1 = q[(size_t)(4 + e) * xi + j];          \
                        const float u2 = q[(size_t)(8 + e) * xi + j], u3 = q[(size_t)(12 + e) * xi + j];   \
                        w0[e] = u0 + u1 + u2;                                                             \
                        w1[e] = u1 - u2 - u3;                                                             \
                    }                                                                                     \
                    r0e[j] = w0[0] + w0[1] + w0[2];                                                       \
                    r0o[j] = w0[1] - w0[2] - w0[3];                                                       \
                    r1e[j] = w1[0] + w1[1] + w1[2];                                                       \
                    r1o[j] = w1[1] - w1[2] - w1[3];                                                       \
                }                                                                                         \
                for (int k = 0; k < 2 && 2 * i + k < height; k++) {                                      \
                    const float *se = k ? r1e : r0e, *so = k ? r1o : r0o;                                 \
                    float *d = dst + (size_t)(2 * i + k) * width;                                         \
                    if (accumulate) {                                                                     \
                        for (int s = 0; s < width; s++) d[s] += (s & 1) ? so[s >> 1] : se[s >> 1];        \
                    } else if (bias) {                                                                    \
                        for (int s = 0; s < width; s++) d[s] = ((s & 1) ? so[s >> 1] : se[s >> 1]) + add; \
                    } else {                                                                              \
                        for (int s = 0; s < width; s++) d[s] = (s & 1) ? so[s >> 1] : se[s >> 1];         \
                    }                                                                                     \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
}                                                                                                         \
                                                                                                          \
ATTR static void wino_output_grad_##SUFFIX(const float *dy, int images, int channels, int height, int width, \
                                           float *z, size_t ld, float *plane) {                          \
    const int th = (height + 1) / 2, tw = (width + 1) / 2, tiles = th * tw;                              \
    const size_t xi = ld * (size_t)channels;                                                             \
    float *g0e = plane, *g0o = g0e + tw, *g1e = g0o + tw, *g1o = g1e + tw;                                \
    for (int b = 0; b < images; b++) {                                                                   \
        for (int c = 0; c < channels; c++) {                                                             \
            const float *src = dy + ((size_t)b * channels + c) * (size_t)height * width;                 \
            float *out = z + (size_t)c * ld + (size_t)b * tiles;                                          \
            for (int i = 0; i < th; i++) {                                                               \
                /* rows 2i and 2i+1 of dy as even and odd columns, zero past the map */                   \
                for (int k = 0; k < 2; k++) {                                                             \
                    float *ge = k ? g1e : g0e, *go = k ? g1o : g0o;                                       \
                    const int r = 2 * i + k;                                                              \
                    const float *s = src + (size_t)r * width;                                             \
                    for (int j = 0; j < tw; j++) {                                                       \
                        ge[j] = r < height ? s[2 * j] : 0.0f;                                             \
                        go[j] = r < height && 2 * j + 1 < width ? s[2 * j + 1] : 0.0f;                    \
                    }                                                                                     \
                }                                                                                         \
                /* Z = A g A^T for each 2x2 g: A = [1 0; 1 1; 1 -1; 0 -1] */                               \
                float *o = out + (size_t)i * tw;                                                          \
                for (int j = 0; j < tw; j++) {                                                           \
                    float a[4][2];                                                                        \
                    a[0][0] = g0e[j]; a[0][1] = g0o[j];                                                   \
                    a[1][0] = g0e[j] + g1e[j]; a[1][1] = g0o[j] + g1o[j];                                 \
                    a[2][0] = g0e[j] - g1e[j]; a[2][1] = g0o[j] - g1o[j];                                 \
                    a[3][0] = -g1e[j]; a[3][1] = -g1o[j];                                                 \
                    for (int r = 0; r < 4; r++) {                                                         \
                        o[(size_t)(4 * r + 0) * xi + j] = a[r][0];                                        \
                        o[(size_t)(4 * r + 1) * xi + j] = a[r][0] + a[r][1];                              \
                        o[(size_t)(4 * r + 2) * xi + j] = a[r][0] - a[r][1];                              \
                        o[(size_t)(4 * r + 3) * xi + j] = -a[r][1];                                       \
                    }                                                                                     \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
}                                                                                                         \
                                                                                                          \
/* U = G g G^T over `pairs` filters laid out as 9 planes k[tap][pair]: consecutive pairs are     \
   consecutive floats, so the loop vectorizes; u[xi][pair]. */                                           \
ATTR static void wino_filter_planes_##SUFFIX(const float *k, size_t pairs, float *u) {                  \
    for (size_t p = 0; p < pairs; p++) {                                                                 \
        float t[4][3];                                                                                    \
        for (int s = 0; s < 3; s++) {                                                                     \
            const float k0 = k[(size_t)s * pairs + p], k1 = k[(size_t)(3 + s) * pairs + p], k2 = k[(size_t)(6 + s) * pairs + p]; \
            t[0][s] = k0;                                                                                 \
            t[1][s] = (k0 + k1 + k2) * 0.5f;                                                              \
            t[2][s] = (k0 - k1 + k2) * 0.5f;                                                              \
            t[3][s] = k2;                                                                                 \
        }                                                                                                 \
        for (int r = 0; r < 4; r++) {                                                                     \
            u[(size_t)(4 * r) * pairs + p] = t[r][0];                                                     \
            u[(size_t)(4 * r + 1) * pairs + p] = (t[r][0] + t[r][1] + t[r][2]) * 0.5f;                    \
            u[(size_t)(4 * r + 2) * pairs + p] = (t[r][0] - t[r][1] + t[r][2]) * 0.5f;                    \
            u[(size_t)(4 * r + 3) * pairs + p] = t[r][2];                                                 \
        }                                                                                                 \
    }                                                                                                     \
}

WINO_BODIES(generic, )
#if defined(__x86_64__)
WINO_BODIES(avx2, __attribute__((target("avx2"))))
#define WINO_PICK(name) (lw_kernels_path() == LW_KERNELS_GENERIC ? name##_generic : name##_avx2)
#else
#define WINO_PICK(name) (name##_generic)
#endif

size_t lw_wino_tiles(int height, int width) { return (size_t)((height + 1) / 2) * (size_t)((width + 1) / 2); }

size_t lw_wino_plane_floats(int height, int width) {
    // The input transform's even and odd padded planes and its 8 row buffers (the largest use).
    const size_t half = (size_t)((width + 1) / 2) + 1, rows = (size_t)(2 * ((height + 1) / 2) + 2);
    return 2 * rows * half + 8 * half;
}

void lw_wino_input(const float *x, int images, int channels, int height, int width, float *v, size_t ld, float *plane) {
    WINO_PICK(wino_input)(x, images, channels, height, width, v, ld, plane);
}

void lw_wino_output(const float *m, size_t ld, int images, int channels, int height, int width, const float *bias,
                    int accumulate, float *y, float *plane) {
    WINO_PICK(wino_output)(m, ld, images, channels, height, width, bias, accumulate, y, plane);
}

void lw_wino_output_grad(const float *dy, int images, int channels, int height, int width, float *z, size_t ld,
                         float *plane) {
    WINO_PICK(wino_output_grad)(dy, images, channels, height, width, z, ld, plane);
}

// U = G g G^T for each (o, c). `for_backward_data`: the filter of the transposed convolution,
// g'[c][o] = g[o][c] rotated by 180 degrees, stored as u[xi][c][o] (rows C, columns OC). The
// weights are first laid out as 9 tap planes in `scratch` (9 OC C floats), in u's pair order.
void lw_wino_filter(const float *w, int out_channels, int in_channels, int for_backward_data, float *u, float *scratch) {
    const size_t pairs = (size_t)out_channels * (size_t)in_channels;
    if (!for_backward_data) {
        for (size_t p = 0; p < pairs; p++)
            for (int t = 0; t < 9; t++) scratch[(size_t)t * pairs + p] = w[p * 9 + t];
    } else {
        for (int c = 0; c < in_channels; c++)
            for (int o = 0; o < out_channels; o++) {
                const float *g = w + ((size_t)o * in_channels + c) * 9;
                const size_t p = (size_t)c * out_channels + o;
                for (int t = 0; t < 9; t++) scratch[(size_t)t * pairs + p] = g[8 - t];  // rotated: tap (2-r, 2-s)
            }
    }
    WINO_PICK(wino_filter_planes)(scratch, pairs, u);
}

// dW (+)= G^T dU G for each (o, c), dU as u[xi][o][c].
void lw_wino_filter_grad(const float *du, int out_channels, int in_channels, int accumulate, float *dw) {
    const size_t plane = (size_t)out_channels * (size_t)in_channels;
    for (int o = 0; o < out_channels; o++) {
        for (int c = 0; c < in_channels; c++) {
            const size_t at = (size_t)o * in_channels + c;
            float q[4][4];
            for (int r = 0; r < 4; r++)
                for (int e = 0; e < 4; e++) q[r][e] = du[(size_t)(4 * r + e) * plane + at];
            // G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1], applied to rows then columns.
            float t[3][4];
            for (int e = 0; e < 4; e++) {
                t[0][e] = q[0][e] + (q[1][e] + q[2][e]) * 0.5f;
                t[1][e] = (q[1][e] - q[2][e]) * 0.5f;
                t[2][e] = (q[1][e] + q[2][e]) * 0.5f + q[3][e];
            }
            float *d = dw + at * 9;
            for (int r = 0; r < 3; r++) {
                const float k0 = t[r][0] + (t[r][1] + t[r][2]) * 0.5f;
                const float k1 = (t[r][1] - t[r][2]) * 0.5f;
                const float k2 = (t[r][1] + t[r][2]) * 0.5f + t[r][3];
                if (accumulate) { d[r * 3] += k0; d[r * 3 + 1] += k1; d[r * 3 + 2] += k2; }
                else { d[r * 3] = k0; d[r * 3 + 1] = k1; d[r * 3 + 2] = k2; }
            }
        }
    }
}
