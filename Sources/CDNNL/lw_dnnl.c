// The only file that knows oneDNN's 2.6 C API (op descriptors; gone in 3.x). See lw_dnnl.h.
#define _GNU_SOURCE
#include "lw_dnnl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

static dnnl_engine_t lw_engine;
static dnnl_stream_t lw_stream;
static dnnl_status_t lw_engine_status = dnnl_runtime_error;
static pthread_once_t lw_once = PTHREAD_ONCE_INIT;
static void (*lw_omp_set_num_threads)(int);

static void lw_init(void) {
    // oneDNN's OpenMP runtime (libgomp, loaded with libdnnl): its thread count follows the
    // calling thread's omp_set_num_threads. Looked up at run time so we link only `dnnl`.
    lw_omp_set_num_threads = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    lw_engine_status = dnnl_engine_create(&lw_engine, dnnl_cpu, 0);
    if (lw_engine_status == dnnl_success)
        lw_engine_status = dnnl_stream_create(&lw_stream, lw_engine, dnnl_stream_default_flags);
}

static void lw_set_threads(int threads) {
    if (lw_omp_set_num_threads && threads > 0) lw_omp_set_num_threads(threads);
}

const char *lw_dnnl_version(void) {
    static char text[32];
    const dnnl_version_t *v = dnnl_version();
    snprintf(text, sizeof text, "%d.%d.%d", v->major, v->minor, v->patch);
    return text;
}

#define LW_ALIGN(n) (((n) + 63) & ~(size_t)63)

/// One activation or weight operand: our plain layout (`user`) and the primitive's (`inner`).
/// When they differ, or when the result must be added to the user's tensor, the primitive works
/// on a buffer at `offset` in the workspace and reorders move data between the two.
typedef struct {
    dnnl_memory_desc_t user, inner;
    int reorder;                 // inner layout differs from user layout
    int buffered;                // the primitive reads/writes the workspace buffer
    dnnl_primitive_t to_inner;   // user -> inner (inputs)
    dnnl_primitive_t to_user;    // inner -> user, overwrite (outputs)
    dnnl_primitive_t add_user;   // inner -> user with a sum post-op: user += inner (outputs)
    dnnl_memory_t user_mem, inner_mem;
    size_t offset;
} lw_operand;

/// The primitives for one chunk size (the full chunk, or the batch's tail).
typedef struct {
    int images;
    dnnl_primitive_t conv;
    dnnl_memory_t bias_mem;
    lw_operand src, dst, weights;   // src: x or dx; dst: y or dy; weights: w or dw
    size_t bias_offset;             // diff bias buffer (backward weights)
} lw_part;

struct lw_conv {
    lw_conv_pass pass;
    lw_conv_algorithm algorithm;
    lw_conv_data_type data_type;
    int batch, chunk, threads, with_bias;
    int in_channels, out_channels, in_image, out_image, weights_count;
    lw_part parts[2];
    int part_count;
    dnnl_memory_t scratch_mem;   // bytes at the start of the workspace, shared by every primitive
    size_t scratchpad_bytes, workspace_bytes;
    char implementation[64];
};

static void lw_error(char *error, size_t capacity, const char *what, dnnl_status_t s) {
    if (error && capacity) snprintf(error, capacity, "oneDNN: %s failed (status %d)", what, (int)s);
}

#define LW_TRY(call, what) do { dnnl_status_t s_ = (call); if (s_ != dnnl_success) { \
    lw_error(error, error_capacity, what, s_); goto fail; } } while (0)

static dnnl_status_t lw_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int sum,
                                dnnl_primitive_t *out, size_t *scratch) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success) s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success && sum) {
        s = dnnl_post_ops_create(&ops);
        if (s == dnnl_success) s = dnnl_post_ops_append_sum(ops, 1.0f);
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    if (s == dnnl_success) s = dnnl_reorder_primitive_desc_create(&pd, from, lw_engine, to, lw_engine, attr);
    if (s == dnnl_success) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
        if (bytes > *scratch) *scratch = bytes;
        s = dnnl_primitive_create(out, pd);
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return s;
}

/// Fills `o` from the primitive's layout `inner`: reorders (input: user -> inner; output:
/// inner -> user, and inner -> user with sum when `accumulating`), buffer space from `*cursor`.
static dnnl_status_t lw_operand_init(lw_operand *o, const dnnl_memory_desc_t *user, const dnnl_memory_desc_t *inner,
                                     int is_output, int accumulating, size_t *cursor, size_t *scratch) {
    dnnl_status_t s = dnnl_success;
    o->user = *user;
    o->inner = *inner;
    o->reorder = !dnnl_memory_desc_equal(user, inner);
    o->buffered = o->reorder || (is_output && accumulating);
    if (o->buffered) {
        o->offset = *cursor;
        *cursor += LW_ALIGN(dnnl_memory_desc_get_size(inner));
        if (!is_output) s = lw_reorder(user, inner, 0, &o->to_inner, scratch);
        else {
            s = lw_reorder(inner, user, 0, &o->to_user, scratch);
            if (s == dnnl_success && accumulating) s = lw_reorder(inner, user, 1, &o->add_user, scratch);
        }
    }
    if (s == dnnl_success) s = dnnl_memory_create(&o->user_mem, &o->user, lw_engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success) s = dnnl_memory_create(&o->inner_mem, &o->inner, lw_engine, DNNL_MEMORY_NONE);
    return s;
}

static void lw_operand_destroy(lw_operand *o) {
    if (o->to_inner) dnnl_primitive_destroy(o->to_inner);
    if (o->to_user) dnnl_primitive_destroy(o->to_user);
    if (o->add_user) dnnl_primitive_destroy(o->add_user);
    if (o->user_mem) dnnl_memory_destroy(o->user_mem);
    if (o->inner_mem) dnnl_memory_destroy(o->inner_mem);
}

/// The primitive descriptor of `c->pass` for these operand descriptors and algorithm (NULL
/// with a status when oneDNN has no implementation of it).
static dnnl_status_t lw_conv_pd(lw_conv *c, dnnl_alg_kind_t algorithm, const dnnl_memory_desc_t *src,
                                const dnnl_memory_desc_t *w, const dnnl_memory_desc_t *dw, const dnnl_memory_desc_t *b,
                                const dnnl_memory_desc_t *dst, const dnnl_memory_desc_t *diff_src,
                                const dnnl_memory_desc_t *diff_dst, const dnnl_dims_t strides, const dnnl_dims_t pad,
                                dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *pd) {
    dnnl_convolution_desc_t desc;
    dnnl_primitive_desc_t hint = NULL;
    dnnl_status_t s;
    // Backward passes need a forward primitive descriptor of the same algorithm as a hint.
    if (c->pass != LW_CONV_FORWARD) {
        s = dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, algorithm, src, w, c->with_bias ? b : NULL,
                                               diff_dst, strides, pad, pad);
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&hint, &desc, NULL, lw_engine, NULL);
        if (s != dnnl_success) return s;
    }
    switch (c->pass) {
    case LW_CONV_FORWARD:
        s = dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, algorithm, src, w, c->with_bias ? b : NULL,
                                               dst, strides, pad, pad);
        break;
    case LW_CONV_BACKWARD_DATA:
        s = dnnl_convolution_backward_data_desc_init(&desc, algorithm, diff_src, w, diff_dst, strides, pad, pad);
        break;
    default:
        s = dnnl_convolution_backward_weights_desc_init(&desc, algorithm, src, dw, c->with_bias ? b : NULL, diff_dst,
                                                        strides, pad, pad);
        break;
    }
    if (s == dnnl_success) s = dnnl_primitive_desc_create(pd, &desc, attr, lw_engine, hint);
    if (hint) dnnl_primitive_desc_destroy(hint);
    return s;
}

static dnnl_status_t lw_part_init(lw_conv *c, lw_part *p, int images, int height, int width, int kernel, int padding,
                                  lw_conv_layout layout, size_t *cursor, size_t *scratch, char *implementation) {
    const int oh = height + 2 * padding - kernel + 1, ow = width + 2 * padding - kernel + 1;
    dnnl_dims_t src_dims = {images, c->in_channels, height, width};
    dnnl_dims_t dst_dims = {images, c->out_channels, oh, ow};
    dnnl_dims_t w_dims = {c->out_channels, c->in_channels, kernel, kernel};
    dnnl_dims_t b_dims = {c->out_channels};
    dnnl_dims_t strides = {1, 1}, pad = {padding, padding};
    dnnl_memory_desc_t src_user, dst_user, w_user, b_md, src_any, dst_any, w_any, dw_any, diff_src_any, diff_dst_any;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s;
    p->images = images;
    if ((s = dnnl_memory_desc_init_by_tag(&src_user, 4, src_dims, dnnl_f32, dnnl_nchw)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&dst_user, 4, dst_dims, dnnl_f32, dnnl_nchw)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&w_user, 4, w_dims, dnnl_f32, dnnl_oihw)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_x)) != dnnl_success) return s;
    // A single input channel (the first layer): keep x plain nchw, the layout oneDNN's jit
    // kernels take for small C; blocking it would pad 1 channel to 16. Such a conv also stays
    // fp32 under bf16 (its cost is a rounding error of the network's).
    int blocked = layout == LW_CONV_LAYOUT_BLOCKED, wide = c->in_channels >= 4;
    dnnl_format_tag_t src_tag = blocked && wide ? dnnl_format_tag_any : dnnl_nchw;
    dnnl_format_tag_t dst_tag = blocked ? dnnl_format_tag_any : dnnl_nchw;
    // bf16: the operands the convolution reads (x, w, dy) are bf16; what it writes (y, dx, dw,
    // db) stays fp32, accumulated in fp32. The reorders into the workspace do the rounding.
    dnnl_data_type_t in_type = c->data_type == LW_CONV_BF16 && wide ? dnnl_bf16 : dnnl_f32;
    if ((s = dnnl_memory_desc_init_by_tag(&src_any, 4, src_dims, in_type, src_tag)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&dst_any, 4, dst_dims, dnnl_f32, dst_tag)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&diff_dst_any, 4, dst_dims, in_type, dst_tag)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&diff_src_any, 4, src_dims, dnnl_f32, src_tag)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&w_any, 4, w_dims, in_type, dnnl_format_tag_any)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&dw_any, 4, w_dims, dnnl_f32, dnnl_format_tag_any)) != dnnl_success) return s;

    s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success) s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s != dnnl_success) goto done;
    // Winograd where oneDNN has it for this pass and shape (AVX-512 CPUs), else direct.
    s = dnnl_unimplemented;
    if (c->algorithm == LW_CONV_WINOGRAD)
        s = lw_conv_pd(c, dnnl_convolution_winograd, &src_any, &w_any, &dw_any, &b_md, &dst_any, &diff_src_any,
                       &diff_dst_any, strides, pad, attr, &pd);
    if (s != dnnl_success)
        s = lw_conv_pd(c, dnnl_convolution_direct, &src_any, &w_any, &dw_any, &b_md, &dst_any, &diff_src_any,
                       &diff_dst_any, strides, pad, attr, &pd);
    if (s != dnnl_success) goto done;
    {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
        if (bytes > *scratch) *scratch = bytes;
        if (implementation) {
            const char *name = NULL;
            dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
            snprintf(implementation, 64, "%s", name ? name : "?");
        }
    }
    {
        const int fwd = c->pass == LW_CONV_FORWARD, bwd_d = c->pass == LW_CONV_BACKWARD_DATA;
        const dnnl_memory_desc_t *src_in = dnnl_primitive_desc_query_md(pd, fwd || !bwd_d ? dnnl_query_src_md : dnnl_query_diff_src_md, 0);
        const dnnl_memory_desc_t *dst_in = dnnl_primitive_desc_query_md(pd, fwd ? dnnl_query_dst_md : dnnl_query_diff_dst_md, 0);
        const dnnl_memory_desc_t *w_in = dnnl_primitive_desc_query_md(pd, c->pass == LW_CONV_BACKWARD_WEIGHTS ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
        // src is an output only in backward-data (dx, maybe accumulated); dst only in forward
        // (y, overwritten); the weights only in backward-weights (dw, accumulated over chunks).
        s = lw_operand_init(&p->src, &src_user, src_in, bwd_d, bwd_d, cursor, scratch);
        if (s == dnnl_success) s = lw_operand_init(&p->dst, &dst_user, dst_in, fwd, 0, cursor, scratch);
        if (s == dnnl_success) {
            int dw = c->pass == LW_CONV_BACKWARD_WEIGHTS;
            s = lw_operand_init(&p->weights, &w_user, w_in, dw, dw, cursor, scratch);
        }
        if (s == dnnl_success && c->with_bias) {
            s = dnnl_memory_create(&p->bias_mem, &b_md, lw_engine, DNNL_MEMORY_NONE);
            if (c->pass == LW_CONV_BACKWARD_WEIGHTS) {
                p->bias_offset = *cursor;
                *cursor += LW_ALIGN(sizeof(float) * (size_t)c->out_channels);
            }
        }
    }
    if (s == dnnl_success) s = dnnl_primitive_create(&p->conv, pd);
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return s;
}

lw_conv *lw_conv_create(lw_conv_pass pass, int batch, int in_channels, int out_channels, int height, int width,
                        int kernel, int padding, int with_bias, lw_conv_layout layout, lw_conv_algorithm algorithm,
                        lw_conv_data_type data_type, int max_chunk, int threads, char *error, size_t error_capacity) {
    pthread_once(&lw_once, lw_init);
    if (lw_engine_status != dnnl_success) { lw_error(error, error_capacity, "engine or stream creation", lw_engine_status); return NULL; }
    if (batch < 1 || max_chunk < 1) { lw_error(error, error_capacity, "batch and chunk must be positive", dnnl_invalid_arguments); return NULL; }
    lw_conv *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->pass = pass;
    c->algorithm = algorithm;
    c->data_type = data_type;
    c->batch = batch;
    c->chunk = batch < max_chunk ? batch : max_chunk;
    c->threads = threads;
    c->with_bias = with_bias;
    c->in_channels = in_channels;
    c->out_channels = out_channels;
    const int oh = height + 2 * padding - kernel + 1, ow = width + 2 * padding - kernel + 1;
    c->in_image = in_channels * height * width;
    c->out_image = out_channels * oh * ow;
    c->weights_count = out_channels * in_channels * kernel * kernel;
    lw_set_threads(threads);
    // Layout of the workspace: [scratchpad | operand buffers of the part running]; the
    // scratchpad (the largest any primitive asks for) is placed once the parts are known.
    // The tail chunk runs after every full chunk, so its buffers reuse the same bytes: the
    // workspace is the larger of the two parts, not their sum, and stops growing with the batch
    // once the batch reaches one chunk.
    size_t cursor = 0, tail_cursor = 0, scratch = 0;
    int tail = batch % c->chunk;
    c->part_count = tail ? 2 : 1;
    LW_TRY(lw_part_init(c, &c->parts[0], c->chunk, height, width, kernel, padding, layout, &cursor, &scratch, c->implementation),
           "convolution primitive (full chunk)");
    if (tail)
        LW_TRY(lw_part_init(c, &c->parts[1], tail, height, width, kernel, padding, layout, &tail_cursor, &scratch, NULL),
               "convolution primitive (tail chunk)");
    if (tail_cursor > cursor) cursor = tail_cursor;
    c->scratchpad_bytes = LW_ALIGN(scratch);
    c->workspace_bytes = c->scratchpad_bytes + cursor;
    {
        dnnl_dims_t bytes = {(dnnl_dim_t)(c->scratchpad_bytes ? c->scratchpad_bytes : 64)};
        dnnl_memory_desc_t md;
        LW_TRY(dnnl_memory_desc_init_by_tag(&md, 1, bytes, dnnl_u8, dnnl_a), "scratchpad descriptor");
        LW_TRY(dnnl_memory_create(&c->scratch_mem, &md, lw_engine, DNNL_MEMORY_NONE), "scratchpad memory");
    }
    return c;
fail:
    lw_conv_destroy(c);
    return NULL;
}

void lw_conv_destroy(lw_conv *c) {
    if (!c) return;
    for (int i = 0; i < 2; i++) {
        lw_part *p = &c->parts[i];
        if (p->conv) dnnl_primitive_destroy(p->conv);
        if (p->bias_mem) dnnl_memory_destroy(p->bias_mem);
        lw_operand_destroy(&p->src);
        lw_operand_destroy(&p->dst);
        lw_operand_destroy(&p->weights);
    }
    if (c->scratch_mem) dnnl_memory_destroy(c->scratch_mem);
    free(c);
}

size_t lw_conv_workspace_bytes(const lw_conv *c) { return c->workspace_bytes; }
size_t lw_conv_scratchpad_bytes(const lw_conv *c) { return c->scratchpad_bytes; }
int lw_conv_chunk(const lw_conv *c) { return c->chunk; }
const char *lw_conv_implementation(const lw_conv *c) { return c->implementation; }

static dnnl_status_t lw_run(dnnl_primitive_t prim, int n, const dnnl_exec_arg_t *args) {
    return dnnl_primitive_execute(prim, lw_stream, n, args);
}

static int lw_profiling;
static uint64_t lw_reorder_ns;

void lw_dnnl_profile(int enable) { lw_profiling = enable; }
uint64_t lw_dnnl_profile_reorder_ns(void) { return lw_reorder_ns; }

static uint64_t lw_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/// Runs a reorder `from` -> `to` with the workspace's scratchpad. oneDNN's CPU stream runs
/// primitives synchronously (OpenMP runtime), so the reorder is done when execute returns.
static dnnl_status_t lw_move(dnnl_primitive_t reorder, dnnl_memory_t from, dnnl_memory_t to, dnnl_memory_t scratch) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {DNNL_ARG_SCRATCHPAD, scratch}};
    if (!lw_profiling) return lw_run(reorder, 3, args);
    uint64_t start = lw_now_ns();
    dnnl_status_t s = lw_run(reorder, 3, args);
    lw_reorder_ns += lw_now_ns() - start;
    return s;
}

/// Points the operand's memories at `user` and its buffer; returns the memory the convolution
/// uses. Inputs are reordered into the buffer here.
static dnnl_status_t lw_bind(lw_operand *o, void *user, char *workspace, int is_input, dnnl_memory_t scratch,
                             dnnl_memory_t *use) {
    dnnl_status_t s = dnnl_memory_set_data_handle(o->user_mem, user);
    if (s != dnnl_success) return s;
    if (!o->buffered) { *use = o->user_mem; return dnnl_success; }
    if ((s = dnnl_memory_set_data_handle(o->inner_mem, workspace + o->offset)) != dnnl_success) return s;
    if (is_input) s = lw_move(o->to_inner, o->user_mem, o->inner_mem, scratch);
    *use = o->inner_mem;
    return s;
}

/// After the convolution: moves a buffered output to the user's tensor (adding when `add`).
static dnnl_status_t lw_finish(lw_operand *o, int add, dnnl_memory_t scratch) {
    if (!o->buffered) return dnnl_success;
    return lw_move(add ? o->add_user : o->to_user, o->inner_mem, o->user_mem, scratch);
}

int lw_conv_forward(lw_conv *c, const float *x, const float *w, const float *b, float *y, void *workspace) {
    if (c->pass != LW_CONV_FORWARD || (c->with_bias && !b)) return dnnl_invalid_arguments;
    // [scratchpad | operand buffers]: buffer offsets count from the end of the scratchpad.
    char *ws = (char *)workspace + c->scratchpad_bytes;
    lw_set_threads(c->threads);
    dnnl_status_t s = dnnl_success;
    int weights_ready[2] = {0, 0};
    for (int start = 0; start < c->batch && s == dnnl_success; start += c->chunk) {
        int n = c->batch - start < c->chunk ? c->batch - start : c->chunk;
        lw_part *p = &c->parts[n == c->chunk ? 0 : 1];
        int k = n == c->chunk ? 0 : 1;
        dnnl_memory_t src, dst, wei;
        if ((s = dnnl_memory_set_data_handle(c->scratch_mem, workspace)) != dnnl_success) break;
        // The weights are reordered once per call per chunk size, not per chunk.
        if (!weights_ready[k]) {
            if ((s = lw_bind(&p->weights, (void *)w, ws, 1, c->scratch_mem, &wei)) != dnnl_success) break;
            weights_ready[k] = 1;
        }
        wei = p->weights.buffered ? p->weights.inner_mem : p->weights.user_mem;
        if ((s = lw_bind(&p->src, (void *)(x + (size_t)start * c->in_image), ws, 1, c->scratch_mem, &src)) != dnnl_success) break;
        if ((s = lw_bind(&p->dst, y + (size_t)start * c->out_image, ws, 0, c->scratch_mem, &dst)) != dnnl_success) break;
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst},
                                   {DNNL_ARG_SCRATCHPAD, c->scratch_mem}, {DNNL_ARG_BIAS, p->bias_mem}};
        if (c->with_bias && (s = dnnl_memory_set_data_handle(p->bias_mem, (void *)b)) != dnnl_success) break;
        if ((s = lw_run(p->conv, c->with_bias ? 5 : 4, args)) != dnnl_success) break;
        s = lw_finish(&p->dst, 0, c->scratch_mem);
    }
    if (s == dnnl_success) s = dnnl_stream_wait(lw_stream);
    return s;
}

int lw_conv_backward_data(lw_conv *c, const float *dy, const float *w, float *dx, int accumulate, void *workspace) {
    if (c->pass != LW_CONV_BACKWARD_DATA) return dnnl_invalid_arguments;
    // [scratchpad | operand buffers]: buffer offsets count from the end of the scratchpad.
    char *ws = (char *)workspace + c->scratchpad_bytes;
    lw_set_threads(c->threads);
    dnnl_status_t s = dnnl_success;
    int weights_ready[2] = {0, 0};
    for (int start = 0; start < c->batch && s == dnnl_success; start += c->chunk) {
        int n = c->batch - start < c->chunk ? c->batch - start : c->chunk;
        int k = n == c->chunk ? 0 : 1;
        lw_part *p = &c->parts[k];
        dnnl_memory_t src, dst, wei;
        if ((s = dnnl_memory_set_data_handle(c->scratch_mem, workspace)) != dnnl_success) break;
        if (!weights_ready[k]) {
            if ((s = lw_bind(&p->weights, (void *)w, ws, 1, c->scratch_mem, &wei)) != dnnl_success) break;
            weights_ready[k] = 1;
        }
        wei = p->weights.buffered ? p->weights.inner_mem : p->weights.user_mem;
        if ((s = lw_bind(&p->dst, (void *)(dy + (size_t)start * c->out_image), ws, 1, c->scratch_mem, &dst)) != dnnl_success) break;
        // dx: written straight into the tensor when its layout is ours and nothing is added.
        lw_operand *o = &p->src;
        if ((s = dnnl_memory_set_data_handle(o->user_mem, dx + (size_t)start * c->in_image)) != dnnl_success) break;
        int direct = !o->reorder && !accumulate;
        if (!direct && (s = dnnl_memory_set_data_handle(o->inner_mem, ws + o->offset)) != dnnl_success) break;
        src = direct ? o->user_mem : o->inner_mem;
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, dst}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_SRC, src},
                                   {DNNL_ARG_SCRATCHPAD, c->scratch_mem}};
        if ((s = lw_run(p->conv, 4, args)) != dnnl_success) break;
        if (!direct) s = lw_move(accumulate ? o->add_user : o->to_user, o->inner_mem, o->user_mem, c->scratch_mem);
    }
    if (s == dnnl_success) s = dnnl_stream_wait(lw_stream);
    return s;
}

int lw_conv_backward_weights(lw_conv *c, const float *dy, const float *x, float *dw, float *db, int accumulate,
                             void *workspace) {
    if (c->pass != LW_CONV_BACKWARD_WEIGHTS || (db && !c->with_bias)) return dnnl_invalid_arguments;
    // [scratchpad | operand buffers]: buffer offsets count from the end of the scratchpad.
    char *ws = (char *)workspace + c->scratchpad_bytes;
    lw_set_threads(c->threads);
    dnnl_status_t s = dnnl_success;
    if (db && !accumulate) memset(db, 0, sizeof(float) * (size_t)c->out_channels);
    for (int start = 0; start < c->batch && s == dnnl_success; start += c->chunk) {
        int n = c->batch - start < c->chunk ? c->batch - start : c->chunk;
        lw_part *p = &c->parts[n == c->chunk ? 0 : 1];
        dnnl_memory_t src, dst;
        if ((s = dnnl_memory_set_data_handle(c->scratch_mem, workspace)) != dnnl_success) break;
        if ((s = lw_bind(&p->src, (void *)(x + (size_t)start * c->in_image), ws, 1, c->scratch_mem, &src)) != dnnl_success) break;
        if ((s = lw_bind(&p->dst, (void *)(dy + (size_t)start * c->out_image), ws, 1, c->scratch_mem, &dst)) != dnnl_success) break;
        // dw of this chunk lands in the buffer, then is stored (first chunk, no accumulate) or
        // added into the caller's dw; db likewise by a plain loop.
        lw_operand *o = &p->weights;
        if ((s = dnnl_memory_set_data_handle(o->inner_mem, ws + o->offset)) != dnnl_success) break;
        float *bias_buffer = (float *)(ws + p->bias_offset);
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, dst}, {DNNL_ARG_DIFF_WEIGHTS, o->inner_mem},
                                   {DNNL_ARG_SCRATCHPAD, c->scratch_mem}, {DNNL_ARG_DIFF_BIAS, p->bias_mem}};
        if (c->with_bias && (s = dnnl_memory_set_data_handle(p->bias_mem, bias_buffer)) != dnnl_success) break;
        if ((s = lw_run(p->conv, c->with_bias ? 5 : 4, args)) != dnnl_success) break;
        if (dw) {
            if ((s = dnnl_memory_set_data_handle(o->user_mem, dw)) != dnnl_success) break;
            if ((s = lw_move(accumulate || start > 0 ? o->add_user : o->to_user, o->inner_mem, o->user_mem, c->scratch_mem)) != dnnl_success) break;
        }
        if (db) {
            if ((s = dnnl_stream_wait(lw_stream)) != dnnl_success) break;
            for (int i = 0; i < c->out_channels; i++) db[i] += bias_buffer[i];
        }
    }
    if (s == dnnl_success) s = dnnl_stream_wait(lw_stream);
    return s;
}
