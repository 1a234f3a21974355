/*
 * fwd_act.h -- element-wise activations of the forward pass (internal), written so the
 * compiler vectorises them on every CPU (integer steps where a float compare would stay a
 * branch) and they give the same bits whatever kernel variant runs.
 */
#ifndef BN_FWD_ACT_H
#define BN_FWD_ACT_H

#include <stdint.h>
#include <string.h>

/* The kernel variants compile these loops with FMA enabled (kernels/kernels.h, ffn_act):
 * GCC in ISO C mode never contracts a * b + c, clang does unless told not to, and a
 * contraction would change the bits. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static inline uint32_t bn_act_bits(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}
static inline float bn_act_float(uint32_t b) {
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* x > 0 ? x : 0 (NaN and -0 give +0): positive floats other than NaN are exactly the bit
 * patterns 1 .. 0x7f800000 read as signed integers. */
static inline float bn_relu_bits(float x) {
    uint32_t b = bn_act_bits(x);
    const int32_t s = (int32_t)b;
    b &= 0u - (uint32_t)((s > 0) & (s <= 0x7f800000));
    return bn_act_float(b);
}

/* SiLU x / (1 + e^-x), e^t as 2^n * p(r): n = round(t / ln 2), r = t - n ln 2 (ln 2 in two
 * parts, n * 0.693359375 exact), p the degree-6 Taylor polynomial of e^r (|r| <= 0.347,
 * truncation below 1.2e-7 relative); plain float operations (no contraction under ISO C),
 * so every CPU gets the same bits, within 5 ulp of x / (1 + expf(-x)) (tests/unit/
 * test_forward.c).  |x| is clamped to 87 on the bits first (2^n then stays a normal float;
 * NaN keeps its NaN numerator); below -87 the result is -0 (the exact value is under 1e-35
 * in magnitude; -inf also gives -0, where libm's form gives NaN). */
static inline float bn_silu(float x) {
    const uint32_t b = bn_act_bits(x), a = b & 0x7fffffffu, b87 = 0x42ae0000u; /* 87.0f */
    const uint32_t big = 0u - (uint32_t)((int32_t)a > (int32_t)b87);
    const float t = -bn_act_float((b & ~big) | (((b & 0x80000000u) | b87) & big));
    const float n = (t * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    const float r = (t - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const float e = p * bn_act_float((uint32_t)((int32_t)n + 127) << 23);
    /* x < -87 (not NaN): -0, what x / (1 + expf(-x)) rounds to or nearly (x e^x < 1e-35) */
    const uint32_t neg_big = big & (0u - (uint32_t)(((int32_t)b < 0) & ((int32_t)a <= 0x7f800000)));
    const uint32_t y = bn_act_bits(x / (1.0f + e));
    return bn_act_float((y & ~neg_big) | (0x80000000u & neg_big));
}

/* The FFN's gated activation in place, g[i] = act(g[i]) * u[i]: ReLU^2 when relu2, else
 * SiLU; each variant compiles this loop for its own vector width (kernels.h, ffn_act). */
static inline void bn_ffn_act_loop(int relu2, float *g, const float *u, int64_t n) {
    if (relu2) {
        for (int64_t i = 0; i < n; i++) {
            const float r = bn_relu_bits(g[i]);
            g[i] = (r * r) * u[i];
        }
    } else {
        for (int64_t i = 0; i < n; i++) g[i] = bn_silu(g[i]) * u[i];
    }
}

#endif
