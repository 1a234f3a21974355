/*
 * arm_neon.c -- AArch64 Advanced SIMD kernels (baseline ASIMD, part of every armv8-a
 * CPU; selected by kernels/dispatch.c when getauxval reports HWCAP_ASIMD).
 *
 * Ternary matmul.  A packed block is 32 bytes = 128 codes in I2_S x128 order (code e
 * at byte e%32, bits 7-2*(e/32)..6-2*(e/32)); two 16-byte loads hold it and group g
 * (activations 32g..32g+31) is (bytes >> (6-2g)) & 3.  Codes 0/1/2 and int8
 * activations multiply exactly in SMULL (int16 products, |p| <= 256) and SADALP adds
 * pairs into int32 lanes, so D is exact and y = ((float)D - (float)S) / a * scale is
 * bit-identical to kernels/scalar.c.  Decode runs 4 rows per pass so each activation
 * load feeds four rows; prefill runs 1 row x 4 tokens so an unpacked block serves four
 * tokens.  (A dot-product (SDOT) path for ARMv8.2 CPUs is future work.)
 *
 * act_quant: FMAXNM ignores NaN as the reference's `fabs(x) > m` test does; FCVTNS
 * rounds half to even like ggml's nearest_int after clamping to [-128, 127], so the
 * int8 activations, a and S are identical to the reference.
 */
#if defined(__aarch64__)

#include "internal.h"
#include "kernels.h"

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#define BN_AI static inline __attribute__((always_inline))

static void bn_neon_act_quant(const float *x, int64_t n, int64_t n_pad, bn_qrow *r) {
    float32x4_t m0 = vdupq_n_f32(0.f), m1 = vdupq_n_f32(0.f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        m0 = vmaxnmq_f32(m0, vabsq_f32(vld1q_f32(x + i)));
        m1 = vmaxnmq_f32(m1, vabsq_f32(vld1q_f32(x + i + 4)));
    }
    float mx = vmaxnmvq_f32(vmaxnmq_f32(m0, m1));
    for (; i < n; i++) {
        float v = fabsf(x[i]);
        if (v > mx) mx = v;
    }
    double m = (double)mx;
    if (!(m >= 1e-5)) m = 1e-5;
    const float a = (float)(127.0 / m);
    const float32x4_t va = vdupq_n_f32(a), lo = vdupq_n_f32(-128.f), hi = vdupq_n_f32(127.f);
    int32x4_t vsum = vdupq_n_s32(0);
    for (i = 0; i + 8 <= n; i += 8) {
        float32x4_t p0 = vminq_f32(vmaxnmq_f32(vmulq_f32(vld1q_f32(x + i), va), lo), hi);
        float32x4_t p1 = vminq_f32(vmaxnmq_f32(vmulq_f32(vld1q_f32(x + i + 4), va), lo), hi);
        int32x4_t i0 = vcvtnq_s32_f32(p0), i1 = vcvtnq_s32_f32(p1);
        vsum = vaddq_s32(vsum, vaddq_s32(i0, i1));
        vst1_s8(r->q + i, vqmovn_s16(vcombine_s16(vqmovn_s32(i0), vqmovn_s32(i1))));
    }
    int32_t sum = vaddvq_s32(vsum);
    for (; i < n; i++) {
        float p = x[i] * a;
        int8_t v;
        if (!(p > -128.f)) v = -128;
        else if (p > 127.f) v = 127;
        else v = (int8_t)vcvtns_s32_f32(p);
        r->q[i] = v;
        sum += v;
    }
    if (n_pad > n) memset(r->q + n, 0, (size_t)(n_pad - n));
    r->a = a;
    r->sum = sum;
}

/* acc += codes(16 lanes) * q(16 lanes), exactly. */
BN_AI int32x4_t bn_neon_mac(int32x4_t acc, int8x16_t c, int8x16_t q) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(c), vget_low_s8(q)));
    return vpadalq_s16(acc, vmull_high_s8(c, q));
}

/* D[r * TB + t] = sum(code * q) of rows j..j+RB-1 against tokens x[0..TB). */
BN_AI void bn_neon_tile(const bn_tmat *w, int64_t j, const int RB, const bn_qrow *x, const int TB, int32_t *D) {
    const uint8x16_t m3 = vdupq_n_u8(3);
    const int64_t nb = w->cols_pad / BN_TMAT_BLOCK;
    int32x4_t acc[4][4];
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) acc[r][t] = vdupq_n_s32(0);
    for (int64_t b = 0; b < nb; b++) {
        int8x16_t c[4][8];
        for (int r = 0; r < RB; r++) {
            const uint8_t *p = w->codes + (j + r) * w->row_bytes + 32 * b;
            uint8x16_t lo = vld1q_u8(p), hi = vld1q_u8(p + 16);
            c[r][0] = vreinterpretq_s8_u8(vshrq_n_u8(lo, 6));
            c[r][1] = vreinterpretq_s8_u8(vshrq_n_u8(hi, 6));
            c[r][2] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(lo, 4), m3));
            c[r][3] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(hi, 4), m3));
            c[r][4] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(lo, 2), m3));
            c[r][5] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(hi, 2), m3));
            c[r][6] = vreinterpretq_s8_u8(vandq_u8(lo, m3));
            c[r][7] = vreinterpretq_s8_u8(vandq_u8(hi, m3));
        }
        for (int t = 0; t < TB; t++) {
            const int8_t *q = x[t].q + BN_TMAT_BLOCK * b;
            for (int g = 0; g < 8; g++) {
                int8x16_t qv = vld1q_s8(q + 16 * g);
                for (int r = 0; r < RB; r++) acc[r][t] = bn_neon_mac(acc[r][t], c[r][g], qv);
            }
        }
    }
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) D[r * TB + t] = vaddvq_s32(acc[r][t]);
}

BN_AI void bn_neon_store(const bn_tmat *w, int64_t j, int RB, const bn_qrow *x, int TB, const int32_t *D, float *y,
                         int64_t ldy) {
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++)
            y[t * ldy + j + r] = ((float)D[r * TB + t] - (float)x[t].sum) / x[t].a * w->scale;
}

static void bn_neon_ternary_matmul(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok,
                                   float *y, int64_t ldy) {
    if (w->bscale) { /* per-block scales: rare (files whose TQ block scales differ) */
        bn_kernels_scalar.ternary_matmul(w, r0, r1, x, n_tok, y, ldy);
        return;
    }
    int32_t D[16];
    int64_t j = r0;
    if (n_tok == 1) {
        for (; j + 4 <= r1; j += 4) {
            bn_neon_tile(w, j, 4, x, 1, D);
            bn_neon_store(w, j, 4, x, 1, D, y, ldy);
        }
        for (; j < r1; j++) {
            bn_neon_tile(w, j, 1, x, 1, D);
            bn_neon_store(w, j, 1, x, 1, D, y, ldy);
        }
        return;
    }
    for (; j < r1; j++) {
        int64_t t = 0;
        for (; t + 4 <= n_tok; t += 4) {
            bn_neon_tile(w, j, 1, x + t, 4, D);
            bn_neon_store(w, j, 1, x + t, 4, D, y + t * ldy, ldy);
        }
        switch (n_tok - t) {
        case 3: bn_neon_tile(w, j, 1, x + t, 3, D); bn_neon_store(w, j, 1, x + t, 3, D, y + t * ldy, ldy); break;
        case 2: bn_neon_tile(w, j, 1, x + t, 2, D); bn_neon_store(w, j, 1, x + t, 2, D, y + t * ldy, ldy); break;
        case 1: bn_neon_tile(w, j, 1, x + t, 1, D); bn_neon_store(w, j, 1, x + t, 1, D, y + t * ldy, ldy); break;
        default: break;
        }
    }
}

const bn_kernels bn_kernels_neon = {
    .name = "neon",
    .isa = BITNET_ISA_NEON,
    .act_quant = bn_neon_act_quant,
    .ternary_matmul = bn_neon_ternary_matmul,
    /* the rest from scalar until profiles show they matter on ARM */
};

#endif /* __aarch64__ */
