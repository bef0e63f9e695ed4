// Layerwise's own tiny convolution API over oneDNN 2.6 (libdnnl-dev). This header names no
// oneDNN type: the Swift side sees opaque handles, float pointers and one caller-owned
// workspace, so the ledger books every byte oneDNN touches besides the tensors themselves.
//
// Convolution: stride 1, symmetric zero padding, NCHW activations (B, C, H, W), weights
// (OC, C, k, k) in oihw, bias (OC). A handle is made for one (pass, geometry, batch) and runs
// the batch as chunks of at most `max_chunk` images (one oneDNN primitive for the full chunk,
// one for the tail), so its workspace grows with the chunk, never with the batch.
#ifndef LW_DNNL_H
#define LW_DNNL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LW_CONV_FORWARD = 0,
    LW_CONV_BACKWARD_DATA = 1,
    LW_CONV_BACKWARD_WEIGHTS = 2,
} lw_conv_pass;

typedef enum {
    /// oneDNN picks the activation layouts (blocked nChw16c on AVX-512); our NCHW tensors are
    /// reordered into and out of chunk-sized buffers in the workspace.
    LW_CONV_LAYOUT_BLOCKED = 0,
    /// Activations stay NCHW (no reorders; oneDNN may pick a slower implementation).
    LW_CONV_LAYOUT_PLAIN = 1,
} lw_conv_layout;

typedef enum {
    /// oneDNN's direct convolution.
    LW_CONV_DIRECT = 0,
    /// oneDNN's Winograd F(4x4, 3x3) where it has one for the pass and shape (its AVX-512
    /// kernels), direct where it does not.
    LW_CONV_WINOGRAD = 1,
} lw_conv_algorithm;

typedef enum {
    /// Everything fp32.
    LW_CONV_F32 = 0,
    /// The operands the convolution reads (x, w, dy) rounded to bf16 in the reorders into the
    /// workspace; what it writes (y, dx, dw, db) fp32, accumulated in fp32. Convolutions with
    /// fewer than 4 input channels stay fp32.
    LW_CONV_BF16 = 1,
} lw_conv_data_type;

typedef struct lw_conv lw_conv;

/// Makes the primitives of one pass. Returns NULL on failure with a message in `error`.
/// `threads` is fixed here (oneDNN's jit kernels block for the thread count at creation) and set
/// again before every execution. `with_bias`: forward adds bias, backward-weights computes db.
lw_conv *lw_conv_create(lw_conv_pass pass, int batch, int in_channels, int out_channels,
                        int height, int width, int kernel, int padding, int with_bias,
                        lw_conv_layout layout, lw_conv_algorithm algorithm, lw_conv_data_type data_type,
                        int max_chunk, int threads, char *error, size_t error_capacity);

/// Bytes of the caller-owned workspace every call of this handle needs (oneDNN's scratchpad,
/// reorder buffers for one chunk, weights in oneDNN's layout), 64-byte aligned regions.
size_t lw_conv_workspace_bytes(const lw_conv *conv);
/// Only oneDNN's own scratchpad (part of lw_conv_workspace_bytes).
size_t lw_conv_scratchpad_bytes(const lw_conv *conv);
/// Images per chunk.
int lw_conv_chunk(const lw_conv *conv);
/// oneDNN's implementation name of the full-chunk convolution, e.g. "jit:avx512_core".
const char *lw_conv_implementation(const lw_conv *conv);

/// y (B, OC, H', W') = conv(x (B, C, H, W), w) + b (b may be NULL when made without bias).
int lw_conv_forward(lw_conv *conv, const float *x, const float *w, const float *b, float *y,
                    void *workspace);
/// dx (+)= conv^T(dy, w); `accumulate` adds to dx instead of overwriting it.
int lw_conv_backward_data(lw_conv *conv, const float *dy, const float *w, float *dx,
                          int accumulate, void *workspace);
/// dw (+)= sum_b dy_b * x_b, db (+)= sum of dy over batch and positions; either may be NULL.
int lw_conv_backward_weights(lw_conv *conv, const float *dy, const float *x, float *dw,
                             float *db, int accumulate, void *workspace);

void lw_conv_destroy(lw_conv *conv);

/// Profiling (`layerwise bench train --breakdown`): while enabled, the wall time of every
/// reorder between our layouts and oneDNN's is added to a process-wide counter (calls run one
/// at a time; the counter is not atomic). Off: one branch per reorder.
void lw_dnnl_profile(int enable);
/// Nanoseconds spent in reorders while profiling was enabled.
uint64_t lw_dnnl_profile_reorder_ns(void);

/// oneDNN's version, "2.6.3".
const char *lw_dnnl_version(void);

#ifdef __cplusplus
}
#endif

#endif
