// Runs the elementwise kernels of Sources/CKernels on every dispatch path the CPU supports and
// prints one line per path: the path, and an FNV-1a hash of every output bit for a fixed set of
// inputs. All paths must print the same hash, and every architecture the same hash as every
// other (the kernels round identically everywhere). Exits 1 if two paths differ.
// Built and run by tools/test-aarch64.sh (natively, and for aarch64 under qemu).
// No fused multiply-adds here either: the inputs must be the same bits on every architecture.
#pragma STDC FP_CONTRACT OFF
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#include "lw_kernels.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { N = 1037 };  // vector loops of 4, 8 and 16 lanes, and a tail for each

static uint64_t state = 0x243F6A8885A308D3ull;
static float uniform(float low, float high) {  // SplitMix64
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return low + (high - low) * (float)((double)(z >> 11) / 9007199254740992.0);
}

static uint64_t hash_floats(uint64_t h, const float *x, size_t n) {
    const unsigned char *bytes = (const unsigned char *)x;
    for (size_t i = 0; i < n * sizeof(float); i++) { h ^= bytes[i]; h *= 0x100000001B3ull; }
    return h;
}

static uint64_t hash_bytes(uint64_t h, const void *x, size_t bytes) {
    const unsigned char *b = (const unsigned char *)x;
    for (size_t i = 0; i < bytes; i++) { h ^= b[i]; h *= 0x100000001B3ull; }
    return h;
}

enum { BLOCKS = (N + LW_QUANT_BLOCK - 1) / LW_QUANT_BLOCK };

// The lean optimizer state: 8-bit block-wise Adam and SGD (N spans four whole blocks and a
// partial one), bf16 with stochastic rounding.
static uint64_t run_lean(uint64_t h, const float *w0, const float *g, const float *m0, const float *v0) {
    static float w[N], ms[BLOCKS], vs[BLOCKS];
    static unsigned char mc[N], vc[N];
    static unsigned short mh[N], vh[N];
    for (int wd = 0; wd < 2; wd++) {
        memcpy(w, w0, sizeof w);
        for (int b = 0; b < BLOCKS; b++) {
            size_t len = N - b * LW_QUANT_BLOCK < LW_QUANT_BLOCK ? N - b * LW_QUANT_BLOCK : LW_QUANT_BLOCK;
            ms[b] = lw_quantize_signed(m0 + b * LW_QUANT_BLOCK, mc + b * LW_QUANT_BLOCK, len);
            vs[b] = lw_quantize_unsigned(v0 + b * LW_QUANT_BLOCK, vc + b * LW_QUANT_BLOCK, len);
        }
        for (int step = 0; step < 3; step++)
            lw_adam_int8(w, g, mc, ms, vc, vs, N, 0.9f, 0.999f, 1e-3f, 1.7f, 1e-8f, wd ? 0.01f : 0.0f);
        h = hash_floats(h, w, N); h = hash_bytes(h, mc, N); h = hash_bytes(h, vc, N);
        h = hash_floats(h, ms, BLOCKS); h = hash_floats(h, vs, BLOCKS);
        memcpy(w, w0, sizeof w);
        for (int step = 0; step < 3; step++) lw_sgd_int8(w, g, mc, ms, N, 0.1f, 0.9f, wd ? 5e-4f : 0.0f, step == 0);
        h = hash_floats(h, w, N); h = hash_bytes(h, mc, N); h = hash_floats(h, ms, BLOCKS);
        memcpy(w, w0, sizeof w);
        memset(mh, 0, sizeof mh); memset(vh, 0, sizeof vh);
        for (int step = 1; step <= 3; step++)
            lw_adam_bf16(w, g, mh, vh, N, 0, lw_stochastic_key(7, (unsigned long long)step), 0.9f, 0.999f, 1e-3f, 1.7f, 1e-8f, wd ? 0.01f : 0.0f);
        h = hash_floats(h, w, N); h = hash_bytes(h, mh, sizeof mh); h = hash_bytes(h, vh, sizeof vh);
        memcpy(w, w0, sizeof w);
        for (int step = 1; step <= 3; step++)
            lw_sgd_bf16(w, g, mh, N, 0, lw_stochastic_key(9, (unsigned long long)step), 0.1f, 0.9f, wd ? 5e-4f : 0.0f, step == 1);
        h = hash_floats(h, w, N); h = hash_bytes(h, mh, sizeof mh);
    }
    return h;
}

static uint64_t run_all(void) {
    static float w0[N], g[N], m0[N], v0[N], x0[N];
    static float w[N], m[N], v[N], x[N], grad[N];
    state = 0x243F6A8885A308D3ull;
    for (int i = 0; i < N; i++) {
        w0[i] = uniform(-1, 1); g[i] = uniform(-1, 1); m0[i] = uniform(-0.1f, 0.1f); v0[i] = uniform(0, 0.01f);
        x0[i] = uniform(-1, 1);
    }
    uint64_t h = 0xCBF29CE484222325ull;
    for (int wd = 0; wd < 2; wd++) {
        memcpy(w, w0, sizeof w); memcpy(m, m0, sizeof m); memcpy(v, v0, sizeof v);
        for (int step = 0; step < 3; step++) lw_adam(w, g, m, v, N, 0.9f, 0.999f, 1e-3f, 1.7f, 1e-8f, wd ? 0.01f : 0.0f);
        h = hash_floats(h, w, N); h = hash_floats(h, m, N); h = hash_floats(h, v, N);
        memcpy(w, w0, sizeof w); memcpy(m, m0, sizeof m);
        for (int step = 0; step < 3; step++) lw_sgd(w, g, m, N, 0.1f, 0.9f, wd ? 5e-4f : 0.0f, step == 0);
        h = hash_floats(h, w, N); h = hash_floats(h, m, N);
    }
    float slopes[2] = {0.0f, 0.01f};
    for (int s = 0; s < 2; s++) {
        memcpy(x, x0, sizeof x); memcpy(grad, g, sizeof grad);
        lw_leaky_relu_forward(x, N, slopes[s]);
        lw_leaky_relu_backward(x, grad, N, slopes[s]);
        h = hash_floats(h, x, N); h = hash_floats(h, grad, N);
    }
    return run_lean(h, w0, g, m0, v0);
}

int main(void) {
    uint64_t first = 0;
    int paths = 0, differ = 0;
    printf("selected: %s\n", lw_kernels_path_name(lw_kernels_path()));
    for (int p = LW_KERNELS_GENERIC; p <= LW_KERNELS_NEON; p++) {
        if (!lw_kernels_force((lw_kernel_path)p)) continue;
        uint64_t h = run_all();
        printf("%-8s %016llx\n", lw_kernels_path_name((lw_kernel_path)p), (unsigned long long)h);
        if (paths++ == 0) first = h;
        else if (h != first) differ = 1;
    }
    if (differ) { printf("FAIL: paths differ\n"); return 1; }
    printf("ok: %d paths, identical bits\n", paths);
    return 0;
}
