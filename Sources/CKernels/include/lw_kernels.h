// Layerwise's elementwise hot loops in C, one implementation per instruction set, chosen once at
// run time from the CPU (CPUID on x86-64, NEON on aarch64), so the package builds with plain
// compiler settings for any 64-bit Linux box and still uses AVX2 or AVX-512 where the CPU has
// them. LAYERWISE_KERNELS=avx512|avx2|neon|generic forces a path (tests run every path).
//
// Every path evaluates the same IEEE operations in the same order, without fused multiply-adds
// (contraction is off in the source), so the elementwise kernels give the same bits on every
// path; only their speed differs.
#ifndef LW_KERNELS_H
#define LW_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LW_KERNELS_GENERIC = 0,
    LW_KERNELS_AVX2 = 1,
    LW_KERNELS_AVX512 = 2,
    LW_KERNELS_NEON = 3,
} lw_kernel_path;

/// The path in use: the first call picks LAYERWISE_KERNELS if set and supported, else the best
/// the CPU supports.
lw_kernel_path lw_kernels_path(void);

/// The path's name: "generic", "avx2", "avx512", "neon".
const char *lw_kernels_path_name(lw_kernel_path path);

/// 1 when this CPU (and this build) can run `path`.
int lw_kernels_supported(lw_kernel_path path);

/// Uses `path` from now on; returns 0 (and changes nothing) when it is not supported.
int lw_kernels_force(lw_kernel_path path);

/// A name given to LAYERWISE_KERNELS that is not a path, or names a path this CPU cannot run;
/// NULL when the variable is unset or valid. Read once, with the first path selection.
const char *lw_kernels_rejected_request(void);

/// Adam (PyTorch's form) over n parameters, in place:
///   g' = g + wd w;  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g' g';
///   w -= step_size m / (sqrt(v) inv_sqrt_bc2 + eps)
/// with step_size = lr / (1 - b1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - b2^t) computed by the caller.
void lw_adam(float *w, const float *g, float *m, float *v, size_t n,
             float b1, float b2, float step_size, float inv_sqrt_bc2, float eps, float wd);

/// SGD with momentum (PyTorch's form), in place: g' = g + wd w; buf = first ? g' : mu buf + g';
/// w -= lr buf.
void lw_sgd(float *w, const float *g, float *buf, size_t n, float lr, float mu, float wd, int first);

/// x <- x > 0 ? x : x * slope  (ReLU for slope 0, LeakyReLU otherwise).
void lw_leaky_relu_forward(float *x, size_t n, float slope);

/// grad <- y > 0 ? grad : grad * slope, with y the forward's output.
void lw_leaky_relu_backward(const float *y, float *grad, size_t n, float slope);

#ifdef __cplusplus
}
#endif

#endif
