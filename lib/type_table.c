/*
 * type_table.c -- the tensor type table and the scalar reference (de)quantizers.
 *
 * Every GGUF tensor type is an array of blocks: `blck` consecutive elements of a row
 * stored in `type_size` bytes.  Plain types (F32, F16, BF16, I8, ...) have blocks of
 * one element.  A row of n elements therefore takes n/blck*type_size bytes, and a
 * tensor is rows back to back.  The one exception is bitnet.cpp's I2_S (id 36): the
 * whole tensor is n/4 bytes of 2-bit codes followed by a 32-byte tail whose first 4
 * bytes are one f32 scale for the entire tensor, so it has no per-row size.
 *
 * The byte layout of each block type is described in docs/formats.md; the functions
 * below are the plain, readable reference implementations of those layouts.  They
 * work on whole blocks; callers guarantee n is a multiple of blck and that the
 * buffers hold n/blck blocks.
 *
 * Id collisions: the bitnet.cpp fork of ggml numbered its types 36..39 (I2_S, I8_S,
 * TL1, TL2) after upstream ggml had given 36..38 to repacked IQ4_NL variants (since
 * retired) and before upstream gave 39 to MXFP4.  We read 36 as I2_S (upstream never
 * stores its retired 36 in files) and refuse 37..39 with an explanation.
 */
#include "type_table.h"

#include <math.h>

/* ======================================================================================
 * Plain types
 * ====================================================================================== */

static void bn_type_table_f32_to_float(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void bn_type_table_f32_from_float(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void bn_type_table_f16_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = bn_f16_to_f32(bn_rd_u16(p + 2 * i));
}

static void bn_type_table_f16_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = bn_f32_to_f16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

static void bn_type_table_bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = bn_bf16_to_f32(bn_rd_u16(p + 2 * i));
}

static void bn_type_table_bf16_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = bn_f32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

static void bn_type_table_put_f16(uint8_t *p, float f) {
    uint16_t h = bn_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* ======================================================================================
 * Q8_0: {f16 d; i8 q[32]} = 34 bytes; x = d*q.
 * ====================================================================================== */

static void bn_type_table_q8_0_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n; i += 32, b += 34) {
        float d = bn_f16_to_f32(bn_rd_u16(b));
        for (int j = 0; j < 32; j++) dst[i + j] = d * (float)(int8_t)b[2 + j];
    }
}

/* d = max|x|/127 (stored as f16), q = round(x/d) using the f32 inverse of the exact
 * (pre-f16) d, as ggml's reference encoder does. */
static void bn_type_table_q8_0_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n; i += 32, b += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(src[i + j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!isfinite(id)) id = 0.0f; /* d is an f32 subnormal: stored d is 0 anyway */
        bn_type_table_put_f16(b, d);
        for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)lroundf(src[i + j] * id);
    }
}

/* ======================================================================================
 * Q4_0: {f16 d; u8 qs[16]} = 18 bytes; element j = (qs[j] & 15) - 8, element j+16 =
 * (qs[j] >> 4) - 8; x = d*q.
 * ====================================================================================== */

static void bn_type_table_q4_0_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n; i += 32, b += 18) {
        float d = bn_f16_to_f32(bn_rd_u16(b));
        for (int j = 0; j < 16; j++) {
            dst[i + j] = d * (float)((b[2 + j] & 15) - 8);
            dst[i + j + 16] = d * (float)((b[2 + j] >> 4) - 8);
        }
    }
}

/* ======================================================================================
 * Q4_K: {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]} = 144 bytes.  Eight sub-blocks of
 * 32 elements, each with a 6-bit scale sc and 6-bit min m packed into scales[12]:
 *   j < 4:  sc = scales[j] & 63,                 m = scales[j+4] & 63
 *   j >= 4: sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4,
 *           m  = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4
 * qs holds 4 chunks of 32 bytes; chunk c gives sub-block 2c (low nibbles) and 2c+1
 * (high nibbles).  x = d*sc*q - dmin*m.
 * ====================================================================================== */

static void bn_type_table_q4_k_scale_min(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void bn_type_table_q4_k_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n; i += 256, b += 144) {
        float d = bn_f16_to_f32(bn_rd_u16(b)), dmin = bn_f16_to_f32(bn_rd_u16(b + 2));
        const uint8_t *scales = b + 4, *qs = b + 16;
        for (int c = 0; c < 4; c++) {
            int sc0, m0, sc1, m1;
            bn_type_table_q4_k_scale_min(2 * c, scales, &sc0, &m0);
            bn_type_table_q4_k_scale_min(2 * c + 1, scales, &sc1, &m1);
            float d0 = d * (float)sc0, n0 = dmin * (float)m0;
            float d1 = d * (float)sc1, n1 = dmin * (float)m1;
            for (int l = 0; l < 32; l++) {
                dst[i + 64 * c + l] = d0 * (float)(qs[32 * c + l] & 15) - n0;
                dst[i + 64 * c + 32 + l] = d1 * (float)(qs[32 * c + l] >> 4) - n1;
            }
        }
    }
}

/* ======================================================================================
 * Q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d} = 210 bytes.  Sixteen sub-blocks
 * of 16 elements with signed 8-bit scales; 6-bit codes q in 0..63 (value q-32): low 4
 * bits in ql, high 2 bits in qh.  Two halves h of 128 elements use ql+64h, qh+32h,
 * scales+8h; inside a half, for l = 0..31:
 *   y[l]    <- ql[l]    & 15, (qh[l] >> 0) & 3     scale sc[l/16]
 *   y[l+32] <- ql[l+32] & 15, (qh[l] >> 2) & 3     scale sc[l/16 + 2]
 *   y[l+64] <- ql[l]    >> 4, (qh[l] >> 4) & 3     scale sc[l/16 + 4]
 *   y[l+96] <- ql[l+32] >> 4, (qh[l] >> 6) & 3     scale sc[l/16 + 6]
 * x = d*sc*(q-32).
 * ====================================================================================== */

static void bn_type_table_q6_k_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n; i += 256, b += 210) {
        float d = bn_f16_to_f32(bn_rd_u16(b + 208));
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            const int8_t *sc = (const int8_t *)(b + 192 + 8 * h);
            float *y = dst + i + 128 * h;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q0 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q1 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q0;
                y[l + 32] = d * (float)sc[is + 2] * (float)q1;
                y[l + 64] = d * (float)sc[is + 4] * (float)q2;
                y[l + 96] = d * (float)sc[is + 6] * (float)q3;
            }
        }
    }
}

/* Q6_K encoder.  Algorithm (ours, simple and deterministic):
 *  1. For each sub-block s of 16 elements, its scale ls_s = a_s/32 where a_s is the
 *     signed value of largest magnitude (so that element maps to q = -32, the end of
 *     the range with the most room: -32..31).  A positive a_s gives a negative ls_s.
 *  2. The block's d = max|ls_s|/127, rounded UP to an f16 value; sub-block scale
 *     sc_s = round(ls_s/d), so |sc_s| <= 127.
 *  3. q = clamp(round(x/(d*sc_s)), -32, 31) + 32, using the stored f16 d so that the
 *     codes match what the decoder multiplies by.
 * The error per element is at most half a step (d*|sc_s|/2) plus the clamp at +31
 * for values within one step of the extreme, i.e. about |a_s|/64 + small. */
static void bn_type_table_q6_k_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n; i += 256, b += 210) {
        const float *x = src + i;
        float ls[16], maxls = 0.0f;
        for (int s = 0; s < 16; s++) {
            float amax = 0.0f, a = 0.0f;
            for (int l = 0; l < 16; l++) {
                float v = x[16 * s + l];
                if (fabsf(v) > amax) {
                    amax = fabsf(v);
                    a = v;
                }
            }
            ls[s] = -a / 32.0f;
            maxls = fmaxf(maxls, fabsf(ls[s]));
        }
        memset(b, 0, 210);
        if (maxls == 0.0f) continue; /* all zero: d = 0, codes 32 (value 0) */
        /* d must not round below maxls/127, or the largest sub-block scale would not
         * fit in int8: take the next f16 up when rounding went down (this also keeps
         * a tiny d from becoming 0).  Finite as long as maxls <= 65504*127 (see
         * bitnet_quantize's range check). */
        uint16_t dh = bn_f32_to_f16(maxls / 127.0f);
        if (bn_f16_to_f32(dh) * 127.0f < maxls) dh++;
        memcpy(b + 208, &dh, 2);
        float d = bn_f16_to_f32(dh);
        int8_t sc[16];
        uint8_t q[256];
        for (int s = 0; s < 16; s++) {
            long v = d != 0.0f ? lroundf(ls[s] / d) : 0;
            sc[s] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
            float step = d * (float)sc[s];
            for (int l = 0; l < 16; l++) {
                long qq = step != 0.0f ? lroundf(x[16 * s + l] / step) : 0;
                qq = qq < -32 ? -32 : qq > 31 ? 31 : qq;
                q[16 * s + l] = (uint8_t)(qq + 32);
            }
        }
        memcpy(b + 192, sc, 16);
        for (int h = 0; h < 2; h++) {
            uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            const uint8_t *y = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((y[l] & 15) | ((y[l + 64] & 15) << 4));
                ql[l + 32] = (uint8_t)((y[l + 32] & 15) | ((y[l + 96] & 15) << 4));
                qh[l] = (uint8_t)((y[l] >> 4) | ((y[l + 32] >> 4) << 2) | ((y[l + 64] >> 4) << 4) |
                                  ((y[l + 96] >> 4) << 6));
            }
        }
    }
}

/* ======================================================================================
 * TQ2_0: {u8 qs[64]; f16 d} = 66 bytes.  Two chunks c of 32 bytes, 128 elements each:
 * element 128c + 32k + m is bits 2k..2k+1 of qs[32c + m] (the LOWEST bits hold the
 * first 32 elements); trit t in 0..2, value (t-1)*d.
 * ====================================================================================== */

static void bn_type_table_tq2_0_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n; i += 256, b += 66) {
        float d = bn_f16_to_f32(bn_rd_u16(b + 64));
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 4; k++)
                for (int m = 0; m < 32; m++)
                    dst[i + 128 * c + 32 * k + m] = d * (float)(((b[32 * c + m] >> (2 * k)) & 3) - 1);
    }
}

/* Per block: d = max|x| (f16); trit = round(x/d) + 1 with the f32 inverse of the exact d. */
static float bn_type_table_ternary_block_scale(const float *x, float *id) {
    float amax = 0.0f;
    for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(x[j]));
    *id = amax != 0.0f ? 1.0f / amax : 0.0f;
    if (!isfinite(*id)) *id = 0.0f; /* amax is an f32 subnormal: stored d is 0 anyway */
    return amax;
}

static uint8_t bn_type_table_ternary_trit(float v, float id) {
    long t = lroundf(v * id); /* |v*id| <= 1 up to rounding, so t in -1..1 */
    t = t < -1 ? -1 : t > 1 ? 1 : t;
    return (uint8_t)(t + 1);
}

static void bn_type_table_tq2_0_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n; i += 256, b += 66) {
        float id, d = bn_type_table_ternary_block_scale(src + i, &id);
        memset(b, 0, 64);
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 4; k++)
                for (int m = 0; m < 32; m++)
                    b[32 * c + m] |=
                        (uint8_t)(bn_type_table_ternary_trit(src[i + 128 * c + 32 * k + m], id) << (2 * k));
        bn_type_table_put_f16(b + 64, d);
    }
}

/* ======================================================================================
 * TQ1_0: {u8 qs[48]; u8 qh[4]; f16 d} = 54 bytes.  Each byte packs 5 trits (4 for qh)
 * as a base-3 number, most significant trit first, rescaled to 0..255 by
 * q' = ceil(q*256/243) so that trit n can be read back as ((uint8_t)(q'*3^n) * 3) >> 8:
 * multiplying by 3^n (mod 256) shifts the fixed-point fraction q'/256 ~ q/243 left by
 * n ternary digits, and *3 >> 8 extracts the integer digit.  qh bytes hold only 4
 * trits, so they are multiplied by 3 once more before rescaling (their 5th digit is 0).
 * Element order: qs[0..31] give 32n + m (n = 0..4) -> 0..159; qs[32..47] give
 * 160 + 16n + m -> 160..239; qh[0..3] give 240 + 4n + j (n = 0..3) -> 240..255.
 * ====================================================================================== */

static const uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};

static void bn_type_table_tq1_0_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n; i += 256, b += 54) {
        float d = bn_f16_to_f32(bn_rd_u16(b + 52));
        float *y = dst + i;
        for (int t = 0; t < 5; t++) {
            for (int m = 0; m < 32; m++) {
                uint8_t q = (uint8_t)(b[m] * pow3[t]);
                y[32 * t + m] = d * (float)((int)(((unsigned)q * 3) >> 8) - 1);
            }
            for (int m = 0; m < 16; m++) {
                uint8_t q = (uint8_t)(b[32 + m] * pow3[t]);
                y[160 + 16 * t + m] = d * (float)((int)(((unsigned)q * 3) >> 8) - 1);
            }
        }
        for (int t = 0; t < 4; t++)
            for (int j = 0; j < 4; j++) {
                uint8_t q = (uint8_t)(b[48 + j] * pow3[t]);
                y[240 + 4 * t + j] = d * (float)((int)(((unsigned)q * 3) >> 8) - 1);
            }
    }
}

static uint8_t bn_type_table_tq1_pack(unsigned q) { /* q = base-3 number in 0..242 */
    return (uint8_t)((q * 256 + 242) / 243);
}

static void bn_type_table_tq1_0_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n; i += 256, b += 54) {
        const float *x = src + i;
        float id, d = bn_type_table_ternary_block_scale(x, &id);
        for (int m = 0; m < 32; m++) {
            unsigned q = 0;
            for (int t = 0; t < 5; t++) q = q * 3 + bn_type_table_ternary_trit(x[32 * t + m], id);
            b[m] = bn_type_table_tq1_pack(q);
        }
        for (int m = 0; m < 16; m++) {
            unsigned q = 0;
            for (int t = 0; t < 5; t++) q = q * 3 + bn_type_table_ternary_trit(x[160 + 16 * t + m], id);
            b[32 + m] = bn_type_table_tq1_pack(q);
        }
        for (int j = 0; j < 4; j++) {
            unsigned q = 0;
            for (int t = 0; t < 4; t++) q = q * 3 + bn_type_table_ternary_trit(x[240 + 4 * t + j], id);
            b[48 + j] = bn_type_table_tq1_pack(q * 3);
        }
        bn_type_table_put_f16(b + 52, d);
    }
}

/* ======================================================================================
 * The table.  Sizes are those of ggml's block structs (ggml-common.h) and type_traits
 * (ggml.c); see docs/formats.md.
 * ====================================================================================== */

#define T(id, nm, bl, sz) [id] = {.name = nm, .blck = bl, .type_size = sz}
#define TF(id, nm, bl, sz, tf, ff) [id] = {.name = nm, .blck = bl, .type_size = sz, .to_float = tf, .from_float = ff}

static const bn_type_traits bn_types[BN_TYPE_COUNT] = {
    TF(BITNET_TYPE_F32, "F32", 1, 4, bn_type_table_f32_to_float, bn_type_table_f32_from_float),
    TF(BITNET_TYPE_F16, "F16", 1, 2, bn_type_table_f16_to_float, bn_type_table_f16_from_float),
    TF(BITNET_TYPE_Q4_0, "Q4_0", 32, 18, bn_type_table_q4_0_to_float, NULL),
    T(BITNET_TYPE_Q4_1, "Q4_1", 32, 20),
    T(BITNET_TYPE_Q5_0, "Q5_0", 32, 22),
    T(BITNET_TYPE_Q5_1, "Q5_1", 32, 24),
    TF(BITNET_TYPE_Q8_0, "Q8_0", 32, 34, bn_type_table_q8_0_to_float, bn_type_table_q8_0_from_float),
    T(BITNET_TYPE_Q8_1, "Q8_1", 32, 36),
    T(BITNET_TYPE_Q2_K, "Q2_K", 256, 84),
    T(BITNET_TYPE_Q3_K, "Q3_K", 256, 110),
    TF(BITNET_TYPE_Q4_K, "Q4_K", 256, 144, bn_type_table_q4_k_to_float, NULL),
    T(BITNET_TYPE_Q5_K, "Q5_K", 256, 176),
    TF(BITNET_TYPE_Q6_K, "Q6_K", 256, 210, bn_type_table_q6_k_to_float, bn_type_table_q6_k_from_float),
    T(BITNET_TYPE_Q8_K, "Q8_K", 256, 292),
    T(BITNET_TYPE_IQ2_XXS, "IQ2_XXS", 256, 66),
    T(BITNET_TYPE_IQ2_XS, "IQ2_XS", 256, 74),
    T(BITNET_TYPE_IQ3_XXS, "IQ3_XXS", 256, 98),
    T(BITNET_TYPE_IQ1_S, "IQ1_S", 256, 50),
    T(BITNET_TYPE_IQ4_NL, "IQ4_NL", 32, 18),
    T(BITNET_TYPE_IQ3_S, "IQ3_S", 256, 110),
    T(BITNET_TYPE_IQ2_S, "IQ2_S", 256, 82),
    T(BITNET_TYPE_IQ4_XS, "IQ4_XS", 256, 136),
    T(BITNET_TYPE_I8, "I8", 1, 1),
    T(BITNET_TYPE_I16, "I16", 1, 2),
    T(BITNET_TYPE_I32, "I32", 1, 4),
    T(BITNET_TYPE_I64, "I64", 1, 8),
    T(BITNET_TYPE_F64, "F64", 1, 8),
    T(BITNET_TYPE_IQ1_M, "IQ1_M", 256, 56),
    TF(BITNET_TYPE_BF16, "BF16", 1, 2, bn_type_table_bf16_to_float, bn_type_table_bf16_from_float),
    TF(BITNET_TYPE_TQ1_0, "TQ1_0", 256, 54, bn_type_table_tq1_0_to_float, bn_type_table_tq1_0_from_float),
    TF(BITNET_TYPE_TQ2_0, "TQ2_0", 256, 66, bn_type_table_tq2_0_to_float, bn_type_table_tq2_0_from_float),
    /* I2_S: block size 1 and type size 1 as bitnet.cpp registers it; the real size is
     * special-cased in bn_tensor_nbytes, and (de)quantization needs the tensor-wide
     * scale, so the row converters stay NULL. */
    T(BITNET_TYPE_I2_S, "I2_S", 1, 1),
    /* bitnet.cpp's lookup-table layouts (docs/formats.md): whole-tensor formats like
     * I2_S, sized in bn_tensor_nbytes, decoded only by the model loader (the tile
     * layout depends on the shape: lib/model_tl.c).  Id 39 is TL2 only in files that
     * say so (lib/gguf_read.c); elsewhere it is upstream's MXFP4 and refused. */
    T(BN_TYPE_TL1, "TL1", 1, 1),
    T(BN_TYPE_TL2, "TL2", 1, 1),
};

#undef T
#undef TF

const bn_type_traits *bn_type_traits_get(uint32_t type) {
    if (type >= BN_TYPE_COUNT || bn_types[type].name == NULL) return NULL;
    return &bn_types[type];
}

const char *bn_type_refusal(uint32_t type) {
    switch (type) {
    case 4:
    case 5:
        return "type ids 4 and 5 (Q4_2, Q4_3) were removed from ggml in 2023 and are not supported";
    case 31:
    case 32:
    case 33:
        return "type ids 31..33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8: ARM-repacked Q4_0) were retired by ggml "
               "and are not supported; re-convert the model";
    case 37:
        return "type id 37 is bitnet.cpp's I8_S (an activation scratch type, never stored in model files) "
               "or upstream ggml's retired IQ4_NL_4_8; neither is supported";
    case 39:
        return "type id 39 is upstream ggml's MXFP4 here (it is bitnet.cpp's TL2 only in a BitNet-architecture "
               "file whose general.file_type is 39); MXFP4 is not supported";
    default:
        return NULL;
    }
}

bitnet_status bn_tensor_nbytes(uint32_t type, uint32_t n_dims, const int64_t *ne, uint64_t *nbytes,
                               const char **why) {
    const char *dummy;
    if (why == NULL) why = &dummy;
    *why = NULL;
    if (nbytes) *nbytes = 0;
    const bn_type_traits *tt = bn_type_traits_get(type);
    if (tt == NULL) {
        *why = bn_type_refusal(type);
        if (*why == NULL) *why = "unknown tensor type id";
        return BITNET_E_FORMAT;
    }
    if (n_dims > 4) {
        *why = "more than 4 dimensions";
        return BITNET_E_FORMAT;
    }
    if (n_dims > 0 && ne == NULL) {
        *why = "no dimensions given";
        return BITNET_E_FORMAT;
    }
    int64_t n = 1;
    for (uint32_t i = 0; i < n_dims; i++) {
        if (ne[i] < 0) {
            *why = "negative dimension";
            return BITNET_E_FORMAT;
        }
        if (bn_mul_i64(n, ne[i], &n)) {
            *why = "element count overflows 64 bits";
            return BITNET_E_FORMAT;
        }
    }
    uint64_t size;
    if (type == BITNET_TYPE_I2_S || type == BN_TYPE_TL1) {
        /* bitnet.cpp: n/4 bytes of codes + 32-byte tail holding the f32 scale.  n < 2^63
         * so this cannot overflow. */
        size = (uint64_t)n / 4 + 32;
    } else if (type == BN_TYPE_TL2) {
        /* bitnet.cpp's ggml_nbytes: (ne0 - 256) * ne1 / 3 * 5 / 8 + 256 * ne1 / 2 * 4 / 8
         * (integer steps, left to right), rounded up to 32, then a 32-byte tail holding
         * the f32 scale */
        int64_t ne0 = n_dims > 0 ? ne[0] : 1, ne1 = n_dims > 1 ? ne[1] : 1;
        if (n_dims != 2 || ne0 < 256 || ne0 > ((int64_t)1 << 31) || ne1 > ((int64_t)1 << 31)) {
            *why = "TL2 needs a 2-D tensor with 256 <= ne[0] and both dimensions below 2^31";
            return BITNET_E_FORMAT;
        }
        uint64_t f = (uint64_t)(ne0 - 256) * (uint64_t)ne1 / 3 * 5 / 8 + 256 * (uint64_t)ne1 / 2 * 4 / 8;
        size = (f + 31) / 32 * 32 + 32;
    } else {
        int64_t ne0 = n_dims > 0 ? ne[0] : 1;
        if (ne0 % tt->blck != 0) {
            *why = "row length (ne[0]) is not a multiple of the type's block size";
            return BITNET_E_FORMAT;
        }
        if (bn_mul_u64((uint64_t)n / tt->blck, tt->type_size, &size) || size > (uint64_t)INT64_MAX) {
            *why = "byte size overflows 63 bits";
            return BITNET_E_FORMAT;
        }
    }
    if (nbytes) *nbytes = size;
    return BITNET_OK;
}

uint64_t bn_row_size(uint32_t type, int64_t n) {
    const bn_type_traits *tt = bn_type_traits_get(type);
    if (tt == NULL || type == BITNET_TYPE_I2_S || type == BN_TYPE_TL1 || type == BN_TYPE_TL2 || n < 0 ||
        n % tt->blck != 0)
        return 0;
    uint64_t size;
    if (bn_mul_u64((uint64_t)n / tt->blck, tt->type_size, &size)) return 0;
    return size;
}

/* ======================================================================================
 * I2_S (bitnet.cpp), classic x128 layout: blocks of 128 elements in 32 bytes; element
 * e of block b is byte 32b + e%32, bits 6-2*(e/32) (two bits).  Code 0/1/2 = -1/0/+1.
 * ====================================================================================== */

float bn_i2s_scale(const void *tensor, int64_t n_total) {
    return bn_rd_f32((const uint8_t *)tensor + n_total / 4);
}

int bn_i2s_get(const void *tensor, int64_t i) {
    const uint8_t *p = tensor;
    int64_t b = i / 128, e = i % 128;
    int code = (p[32 * b + e % 32] >> (6 - 2 * (e / 32))) & 3;
    return code - 1;
}

void bn_i2s_dequant(const void *tensor, int64_t n_total, int64_t start, int64_t n, float *dst) {
    float s = bn_i2s_scale(tensor, n_total);
    for (int64_t i = 0; i < n; i++) dst[i] = (float)bn_i2s_get(tensor, start + i) * s;
}

void bn_i2s_quantize(const float *src, int64_t n_total, void *dst) {
    uint8_t *p = dst;
    double amax = 0.0;
    for (int64_t i = 0; i < n_total; i++) amax = fmax(amax, fabs((double)src[i]));
    memset(p, 0, (size_t)(n_total / 4) + 32);
    for (int64_t i = 0; i < n_total; i++) {
        int code = fabsf(src[i]) < 1e-6f ? 1 : src[i] > 0.0f ? 2 : 0;
        int64_t b = i / 128, e = i % 128;
        p[32 * b + e % 32] |= (uint8_t)(code << (6 - 2 * (e / 32)));
    }
    float s = (float)amax;
    memcpy(p + n_total / 4, &s, 4);
}
