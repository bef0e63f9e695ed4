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

/// 1 when the CPU has AVX512_BF16 (CPUID leaf 7 subleaf 1, EAX bit 5) and the OS saves the
/// AVX-512 state; 0 elsewhere (and on every non-x86 build).
int lw_cpu_has_avx512_bf16(void);
/// 1 when the CPU has AMX-BF16 (CPUID leaf 7 subleaf 0, EDX bit 22).
int lw_cpu_has_amx_bf16(void);

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

/// Values per block of the 8-bit optimizer state: each block of a moment has one fp32 scale (its
/// largest magnitude) and LW_QUANT_BLOCK one-byte codes; a tensor's last block may be partial.
#define LW_QUANT_BLOCK 256

/// The value of an 8-bit code as a fraction of its block's scale. First moments (signed, m and
/// SGD's momentum): code c in -127...127 as a two's-complement byte, value sign(c) (|c|/127)^2.
/// Second moments (v >= 0): code c in 0...255, value (c/255)^4. Both codes are dense near zero
/// (the square and fourth-root domains), where most moments lie.
float lw_quant_signed_value(unsigned char code);
float lw_quant_unsigned_value(unsigned char code);

/// Quantises n values (one block or less) with scale = their largest magnitude (0 for an
/// all-zero block, or one below 2^-100, whose codes are all 0); codes round to nearest (even) in
/// the root domain. Returns the scale.
float lw_quantize_signed(const float *x, unsigned char *codes, size_t n);
float lw_quantize_unsigned(const float *x, unsigned char *codes, size_t n);
/// x[i] = scale * value(codes[i]).
void lw_dequantize_signed(const unsigned char *codes, float scale, float *x, size_t n);
void lw_dequantize_unsigned(const unsigned char *codes, float scale, float *x, size_t n);

/// Adam with 8-bit block-wise moments over n parameters that start at a block boundary
/// (m: signed codes, v: unsigned codes, one scale per LW_QUANT_BLOCK values). Block by block:
/// dequantise, the fp32 update of lw_adam (the weights see the updated fp32 moments), requantise.
/// No fp32 copy of more than one block's moments exists.
void lw_adam_int8(float *w, const float *g, unsigned char *m_codes, float *m_scales,
                  unsigned char *v_codes, float *v_scales, size_t n,
                  float b1, float b2, float step_size, float inv_sqrt_bc2, float eps, float wd);

/// SGD with momentum with an 8-bit block-wise momentum buffer (signed codes), as lw_sgd.
void lw_sgd_int8(float *w, const float *g, unsigned char *codes, float *scales, size_t n,
                 float lr, float mu, float wd, int first);

/// bfloat16 (the top 16 bits of an fp32) rounded stochastically: x's low 16 bits plus 16 random
/// bits, truncated, so E[bf16] = x and a moment decays even when b2 v rounds back to v under
/// round-to-nearest. The random bits are a hash of (key, index): lw_stochastic_key(seed, step)
/// gives the key, index counts from the tensor's first element, so runs are reproducible.
unsigned int lw_stochastic_key(unsigned int seed, unsigned long long step);
unsigned short lw_bf16_round_stochastic(float x, unsigned int random16);
/// The 32 random bits of element `index` under `key` (low 16 round m, high 16 round v).
unsigned int lw_stochastic_bits(unsigned int key, size_t index);

/// Adam with bf16 moments (stochastic rounding), over elements offset...offset+n-1 of a tensor.
void lw_adam_bf16(float *w, const float *g, unsigned short *m, unsigned short *v, size_t n, size_t offset,
                  unsigned int key, float b1, float b2, float step_size, float inv_sqrt_bc2, float eps, float wd);

/// SGD with momentum with a bf16 buffer (stochastic rounding), as lw_sgd.
void lw_sgd_bf16(float *w, const float *g, unsigned short *buf, size_t n, size_t offset, unsigned int key,
                 float lr, float mu, float wd, int first);

/// x <- x > 0 ? x : x * slope  (ReLU for slope 0, LeakyReLU otherwise).
void lw_leaky_relu_forward(float *x, size_t n, float slope);

/// grad <- y > 0 ? grad : grad * slope, with y the forward's output.
void lw_leaky_relu_backward(const float *y, float *grad, size_t n, float slope);

// MARK: Winograd F(2x2, 3x3) for stride-1, pad-1 3x3 convolutions
//
// A transformed tensor holds 16 matrices, one per position xi = 4 r + e of the 4x4 tile: for
// `channels` channels and T tiles, element (xi, c, t) sits at xi * ld * channels + c * ld + t
// with ld >= T (T = images * lw_wino_tiles). Tile t = b * tiles + i * ceil(W/2) + j covers output
// rows 2i, 2i+1 and columns 2j, 2j+1 of image b. The caller runs the 16 GEMMs between the
// transforms. All paths (generic, AVX2) give the same bits.

/// Tiles of one H x W map: ceil(H/2) ceil(W/2).
size_t lw_wino_tiles(int height, int width);
/// Floats of the one-plane scratch every transform needs.
size_t lw_wino_plane_floats(int height, int width);
/// V = B^T d B of every 4x4 input tile (zero padded) of x (images, channels, H, W).
void lw_wino_input(const float *x, int images, int channels, int height, int width, float *v, size_t ld, float *plane);
/// y (images, channels, H, W) = A^T m A per tile, plus bias[c] (may be NULL), or added to y when
/// `accumulate` (bias ignored).
void lw_wino_output(const float *m, size_t ld, int images, int channels, int height, int width, const float *bias,
                    int accumulate, float *y, float *plane);
/// Z = A g A^T of every 2x2 output-gradient tile of dy (images, channels, H, W) (the adjoint of
/// lw_wino_output), for the weight gradient.
void lw_wino_output_grad(const float *dy, int images, int channels, int height, int width, float *z, size_t ld,
                         float *plane);
/// U = G g G^T of w (OC, C, 3, 3), as u[xi][o][c]; with `for_backward_data`, of the transposed
/// convolution's filter (w rotated 180 degrees), as u[xi][c][o]. `scratch`: 9 OC C floats.
void lw_wino_filter(const float *w, int out_channels, int in_channels, int for_backward_data, float *u, float *scratch);
/// dw (OC, C, 3, 3) (+)= G^T du G, du as u[xi][o][c].
void lw_wino_filter_grad(const float *du, int out_channels, int in_channels, int accumulate, float *dw);

#ifdef __cplusplus
}
#endif

#endif
