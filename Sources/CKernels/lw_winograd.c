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
ATTR static void wino_input_##SUFFIX(const float *x, int images, int channels, int height, int width,     \
                                     float *v, size_t ld, float *plane) {                                 \
    const int th = (height + 1) / 2, tw = (width + 1) / 2, tiles = th * tw;                              \
    const int pw = 2 * tw + 2, ph = 2 * th + 2;                                                          \
    memset(plane, 0, sizeof(float) * (size_t)pw * (size_t)ph);                                            \
    for (int b = 0; b < images; b++) {                                                                   \
        for (int c = 0; c < channels; c++) {                                                             \
            const float *src = x + ((size_t)b * channels + c) * (size_t)height * width;                  \
            for (int r = 0; r < height; r++) memcpy(plane + (size_t)(r + 1) * pw + 1, src + (size_t)r * width, sizeof(float) * width); \
            float *out = v + (size_t)c * ld + (size_t)b * tiles;                                          \
            for (int i = 0; i < th; i++) {                                                               \
                const float *p0 = plane + (size_t)(2 * i) * pw, *p1 = p0 + pw, *p2 = p1 + pw, *p3 = p2 + pw; \
                float *o = out + (size_t)i * tw;                                                          \
                for (int j = 0; j < tw; j++) {                                                           \
                    const int s = 2 * j;                                                                  \
                    float t0[4], t1[4], t2[4], t3[4];                                                     \
                    for (int k = 0; k < 4; k++) {                                                         \
                        t0[k] = p0[s + k] - p2[s + k];                                                    \
                        t1[k] = p1[s + k] + p2[s + k];                                                    \
                        t2[k] = p2[s + k] - p1[s + k];                                                    \
                        t3[k] = p1[s + k] - p3[s + k];                                                    \
                    }                                                                                     \
                    const float *t[4] = {t0, t1, t2, t3};                                                 \
                    for (int r = 0; r < 4; r++) {                                                         \
                        const float *q = t[r];                                                            \
                        o[(size_t)(4 * r + 0) * (ld * channels)] = q[0] - q[2];            \
                        o[(size_t)(4 * r + 1) * (ld * channels)] = q[1] + q[2];                            \
                        o[(size_t)(4 * r + 2) * (ld * channels)] = q[2] - q[1];                            \
                        o[(size_t)(4 * r + 3) * (ld * channels)] = q[1] - q[3];                            \
                    }                                                                                     \
                    o++;                                                                                  \
                }                                                                                         \
            }                                                                                             \
            /* the border rows/columns the next plane does not overwrite stay zero */                     \
        }                                                                                                 \
    }                                                                                                     \
}                                                                                                         \
                                                                                                          \
ATTR static void wino_output_##SUFFIX(const float *m, size_t ld, int images, int channels, int height,     \
                                      int width, const float *bias, int accumulate, float *y, float *plane) { \
    const int th = (height + 1) / 2, tw = (width + 1) / 2, tiles = th * tw, pw = 2 * tw;                 \
    const size_t xi = ld * (size_t)channels;                                                             \
    for (int b = 0; b < images; b++) {                                                                   \
        for (int c = 0; c < channels; c++) {                                                             \
            const float *in = m + (size_t)c * ld + (size_t)b * tiles;                                     \
            for (int i = 0; i < th; i++) {                                                               \
                float *r0 = plane + (size_t)(2 * i) * pw, *r1 = r0 + pw;                                   \
                const float *q = in + (size_t)i * tw;                                                      \
                for (int j = 0; j < tw; j++) {                                                           \
                    float u[4][4];                                                                        \
                    for (int a = 0; a < 4; a++)                                                           \
                        for (int e = 0; e < 4; e++) u[a][e] = q[(size_t)(4 * a + e) * xi + j];             \
                    float w0[4], w1[4];                                                                   \
                    for (int e = 0; e < 4; e++) {                                                         \
                        w0[e] = u[0][e] + u[1][e] + u[2][e];                                              \
                        w1[e] = u[1][e] - u[2][e] - u[3][e];                                              \
                    }                                                                                     \
                    r0[2 * j] = w0[0] + w0[1] + w0[2];                                                    \
                    r0[2 * j + 1] = w0[1] - w0[2] - w0[3];                                                \
                    r1[2 * j] = w1[0] + w1[1] + w1[2];                                                    \
                    r1[2 * j + 1] = w1[1] - w1[2] - w1[3];                                                \
                }                                                                                         \
            }                                                                                             \
            float *dst = y + ((size_t)b * channels + c) * (size_t)height * width;                        \
            const float add = bias ? bias[c] : 0.0f;                                                      \
            for (int r = 0; r < height; r++) {                                                           \
                const float *src = plane + (size_t)r * pw;                                                \
                float *d = dst + (size_t)r * width;                                                       \
                if (accumulate) { for (int s = 0; s < width; s++) d[s] += src[s]; }                       \
                else if (bias) { for (int s = 0; s < width; s++) d[s] = src[s] + add; }                   \
                else memcpy(d, src, sizeof(float) * width);                                               \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
}                                                                                                         \
                                                                                                          \
ATTR static void wino_output_grad_##SUFFIX(const float *dy, int images, int channels, int height, int width, \
                                           float *z, size_t ld, float *plane) {                          \
    const int th = (height + 1) / 2, tw = (width + 1) / 2, tiles = th * tw, pw = 2 * tw;                 \
    const size_t xi = ld * (size_t)channels;                                                             \
    memset(plane, 0, sizeof(float) * (size_t)pw * (size_t)(2 * th));                                      \
    for (int b = 0; b < images; b++) {                                                                   \
        for (int c = 0; c < channels; c++) {                                                             \
            const float *src = dy + ((size_t)b * channels + c) * (size_t)height * width;                 \
            for (int r = 0; r < height; r++) memcpy(plane + (size_t)r * pw, src + (size_t)r * width, sizeof(float) * width); \
            float *out = z + (size_t)c * ld + (size_t)b * tiles;                                          \
            for (int i = 0; i < th; i++) {                                                               \
                const float *r0 = plane + (size_t)(2 * i) * pw, *r1 = r0 + pw;                             \
                float *o = out + (size_t)i * tw;                                                          \
                for (int j = 0; j < tw; j++) {                                                           \
                    /* Z = A g A^T for the 2x2 g: A = [1 0; 1 1; 1 -1; 0 -1] */                            \
                    const float g00 = r0[2 * j], g01 = r0[2 * j + 1], g10 = r1[2 * j], g11 = r1[2 * j + 1]; \
                    float a[4][2];                                                                        \
                    a[0][0] = g00; a[0][1] = g01;                                                         \
                    a[1][0] = g00 + g10; a[1][1] = g01 + g11;                                             \
                    a[2][0] = g00 - g10; a[2][1] = g01 - g11;                                             \
                    a[3][0] = -g10; a[3][1] = -g11;                                                       \
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
    return (size_t)(2 * ((width + 1) / 2) + 2) * (size_t)(2 * ((height + 1) / 2) + 2);
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
// g'[c][o] = g[o][c] rotated by 180 degrees, stored as u[xi][c][o] (rows C, columns OC).
void lw_wino_filter(const float *w, int out_channels, int in_channels, int for_backward_data, float *u) {
    const size_t plane = (size_t)out_channels * (size_t)in_channels;
    for (int o = 0; o < out_channels; o++) {
        for (int c = 0; c < in_channels; c++) {
            const float *g = w + ((size_t)o * in_channels + c) * 9;
            float k[3][3];
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++) k[r][s] = for_backward_data ? g[(2 - r) * 3 + (2 - s)] : g[r * 3 + s];
            float t[4][3];
            for (int s = 0; s < 3; s++) {
                t[0][s] = k[0][s];
                t[1][s] = (k[0][s] + k[1][s] + k[2][s]) * 0.5f;
                t[2][s] = (k[0][s] - k[1][s] + k[2][s]) * 0.5f;
                t[3][s] = k[2][s];
            }
            const size_t at = for_backward_data ? (size_t)c * out_channels + o : (size_t)o * in_channels + c;
            for (int r = 0; r < 4; r++) {
                float q[4];
                q[0] = t[r][0];
                q[1] = (t[r][0] + t[r][1] + t[r][2]) * 0.5f;
                q[2] = (t[r][0] - t[r][1] + t[r][2]) * 0.5f;
                q[3] = t[r][2];
                for (int e = 0; e < 4; e++) u[(size_t)(4 * r + e) * plane + at] = q[e];
            }
        }
    }
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
