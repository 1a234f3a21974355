/*
 * scalar.c -- the portable reference kernels: plain loops, written to be read.  Every
 * faster variant must give the same integers (ternary dot products are exact) and
 * the same floats wherever this file fixes an order of operations.
 *
 * The numerics follow what bitnet.cpp / llama.cpp compute (docs/spec.md §4):
 *  - activations for ternary matmuls: per-token absmax int8,
 *        m = max(1e-5, max|x|) in double, a = (float)(127 / m),
 *        q = clamp(round_half_even(x * a), -128, 127) with the product in f32;
 *  - y = ((float)D - (float)S) / a * scale, D = sum(code * q) with codes 0/1/2 and
 *    S = sum(q) (so D - S = sum((code - 1) * q) exactly);
 *  - RMSNorm: sum of f32 squares in double, mean and 1/sqrtf in f32, then * weight;
 *  - RoPE: theta = pos * base^(-2i/n_rot) as ggml computes it (repeated f32
 *    multiplication by powf(base, -2/n_rot)), cosf/sinf;
 *  - attention: scores in double from f32 (or f16) products, ggml's softmax
 *    (expf(x - max), sum in double, multiply by (float)(1/sum)), then P.V in double;
 *  - dense layers: activations converted as ggml does for the weight type (f16 for
 *    F16 weights, bf16 for BF16, Q8_0 blocks for Q8_0, Q8_K blocks for K-quants and TQ
 *    types), products summed in double (F32/F16/BF16) or per block (quantized types).
 */
#include "kernels.h"

#include "fwd_act.h"
#include "internal.h"

#include "type_table.h"

#include <math.h>
#include <string.h>

/* ggml's nearest_int: round half to even through the f32 mantissa (|v| < 2^22). */
static inline int32_t bn_nearest_int(float v) {
    float f = v + 12582912.f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* ---- activation quantization ------------------------------------------------------ */

static void bn_act_quant_scalar(const float *x, int64_t n, int64_t n_pad, bn_qrow *r) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = fabs((double)x[i]);
        if (v > m) m = v;
    }
    if (!(m >= 1e-5)) m = 1e-5; /* also catches NaN */
    float a = (float)(127.0 / m);
    int32_t sum = 0;
    for (int64_t i = 0; i < n; i++) {
        float p = x[i] * a;
        int32_t v;
        if (!(p > -129.f)) v = -128; /* also NaN: keep the bit trick in range */
        else if (p > 128.f) v = 127;
        else v = bn_nearest_int(p);
        if (v > 127) v = 127;
        if (v < -128) v = -128;
        r->q[i] = (int8_t)v;
        sum += v;
    }
    for (int64_t i = n; i < n_pad; i++) r->q[i] = 0;
    r->a = a;
    r->sum = sum;
}

/* ---- ternary matmul ----------------------------------------------------------------- */

/* sum(code * q) over one 128-code block (32 bytes of codes, 128 activations). */
static inline int32_t bn_block_dot(const uint8_t *c, const int8_t *q) {
    int32_t d = 0;
    for (int g = 0; g < 4; g++) {
        int sh = 6 - 2 * g;
        for (int p = 0; p < 32; p++) d += (int32_t)((c[p] >> sh) & 3) * q[32 * g + p];
    }
    return d;
}

static void bn_ternary_matmul_scalar(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x,
                                     int64_t n_tok, float *y, int64_t ldy) {
    int64_t nb = w->cols_pad / BN_TMAT_BLOCK;
    for (int64_t j = r0; j < r1; j++) {
        const uint8_t *row = w->codes + j * w->row_bytes;
        for (int64_t t = 0; t < n_tok; t++) {
            const int8_t *q = x[t].q;
            if (!w->bscale) {
                int32_t D = 0;
                for (int64_t b = 0; b < nb; b++) D += bn_block_dot(row + 32 * b, q + BN_TMAT_BLOCK * b);
                y[t * ldy + j] = ((float)D - (float)x[t].sum) / x[t].a * w->scale;
            } else {
                /* per-256-block scales: two packed blocks per scale block */
                int64_t nsb = w->cols / BN_TQ_BLOCK;
                const float *bs = w->bscale + j * nsb;
                float acc = 0.f;
                for (int64_t sb = 0; sb < nsb; sb++) {
                    int32_t D = bn_block_dot(row + 64 * sb, q + 256 * sb) +
                                bn_block_dot(row + 64 * sb + 32, q + 256 * sb + 128);
                    int32_t S = 0;
                    for (int i = 0; i < 256; i++) S += q[256 * sb + i];
                    acc += ((float)D - (float)S) * bs[sb];
                }
                y[t * ldy + j] = acc / x[t].a;
            }
        }
    }
}

/* ---- norms, rope, attention ----------------------------------------------------------- */

static void bn_rmsnorm_scalar(const float *x, const float *w, int64_t n, float eps, float *y) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

static void bn_ffn_act_scalar(int relu2, float *g, const float *u, int64_t n) { bn_ffn_act_loop(relu2, g, u, n); }

static void bn_f16_row_scalar(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = bn_f32_to_f16(x[i]);
}

static void bn_rope_scalar(float *x, int64_t n_head, int64_t head_dim, int64_t n_rot, int32_t pos, float base,
                           const float *freq_factors, int neox) {
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    /* the angles depend on the position and the pair only: compute them once for all heads */
    float cs[BN_MAX_HEAD_DIM / 2], sn[BN_MAX_HEAD_DIM / 2];
    float theta = (float)pos;
    for (int64_t i0 = 0; i0 < n_rot; i0 += 2) {
        float ff = freq_factors ? freq_factors[i0 / 2] : 1.0f;
        float th = theta / ff;
        cs[i0 / 2] = cosf(th);
        sn[i0 / 2] = sinf(th);
        theta *= theta_scale;
    }
    for (int64_t h = 0; h < n_head; h++) {
        float *v = x + h * head_dim;
        for (int64_t i0 = 0; i0 < n_rot; i0 += 2) {
            const float c = cs[i0 / 2], s = sn[i0 / 2];
            int64_t a = neox ? i0 / 2 : i0;
            int64_t b = neox ? i0 / 2 + n_rot / 2 : i0 + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

static void bn_attention_scalar(const float *q, const void *k, const void *v, int kv_f16, int64_t n_kv,
                                int64_t head_dim, int64_t kv_stride, float scale, float *scratch, float *out) {
    const uint16_t *k16 = k, *v16 = v;
    const float *k32 = k, *v32 = v;
    float qr[BN_MAX_HEAD_DIM]; /* q rounded to f16 (llama.cpp converts Q for Q.K) */
    if (kv_f16)
        for (int64_t d = 0; d < head_dim; d++) qr[d] = bn_f16_to_f32(bn_f32_to_f16(q[d]));
    float mx = -INFINITY;
    for (int64_t i = 0; i < n_kv; i++) {
        double s = 0;
        if (kv_f16) {
            const uint16_t *kr = k16 + i * kv_stride;
            for (int64_t d = 0; d < head_dim; d++) s += (double)(qr[d] * bn_f16_to_f32(kr[d]));
        } else {
            const float *kr = k32 + i * kv_stride;
            for (int64_t d = 0; d < head_dim; d++) s += (double)(q[d] * kr[d]);
        }
        scratch[i] = (float)s * scale;
        if (scratch[i] > mx) mx = scratch[i];
    }
    double sum = 0;
    for (int64_t i = 0; i < n_kv; i++) {
        float e = expf(scratch[i] - mx);
        scratch[i] = e;
        sum += (double)e;
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n_kv; i++) {
        scratch[i] *= inv;
        if (kv_f16) scratch[i] = bn_f16_to_f32(bn_f32_to_f16(scratch[i]));
    }
    for (int64_t d = 0; d < head_dim; d++) {
        double acc = 0;
        if (kv_f16) {
            for (int64_t i = 0; i < n_kv; i++) acc += (double)(scratch[i] * bn_f16_to_f32(v16[i * kv_stride + d]));
        } else {
            for (int64_t i = 0; i < n_kv; i++) acc += (double)(scratch[i] * v32[i * kv_stride + d]);
        }
        out[d] = (float)acc;
    }
}

/* ---- dense layers -------------------------------------------------------------------- */

/* Q8_K-style activation block as prepared here: f32 d, then 256 int8. */
#define BN_Q8K_BYTES 260
/* Q8_0 block: f16 d, 32 int8 (ggml's layout). */
#define BN_Q80_BYTES 34

int bn_dense_type_ok(uint32_t type) {
    switch (type) {
    case BITNET_TYPE_F32:
    case BITNET_TYPE_F16:
    case BITNET_TYPE_BF16:
    case BITNET_TYPE_Q8_0: return 1;
    case BITNET_TYPE_Q4_K:
    case BITNET_TYPE_Q6_K:
    case BITNET_TYPE_TQ1_0:
    case BITNET_TYPE_TQ2_0: {
        const bn_type_traits *tr = bn_type_traits_get(type);
        return tr && tr->to_float != NULL;
    }
    default: return 0;
    }
}

static void bn_dense_prep_scalar(const bn_dmat *w, const float *x, void *out) {
    int64_t n = w->cols;
    uint8_t *o = out;
    switch (w->type) {
    case BITNET_TYPE_F32: memcpy(out, x, (size_t)n * sizeof(float)); break;
    case BITNET_TYPE_F16: bn_f16_row_scalar(x, out, n); break;
    case BITNET_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = bn_f32_to_bf16(x[i]);
            memcpy(o + 2 * i, &h, 2);
        }
        break;
    case BITNET_TYPE_Q8_0: /* ggml quantize_row_q8_0_ref */
        for (int64_t b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[32 * b + i]));
            float d = amax / 127.f, id = d != 0.f ? 1.0f / d : 0.0f;
            uint16_t dh = bn_f32_to_f16(d);
            uint8_t *blk = o + BN_Q80_BYTES * b;
            memcpy(blk, &dh, 2);
            for (int i = 0; i < 32; i++) blk[2 + i] = (uint8_t)(int8_t)roundf(x[32 * b + i] * id);
        }
        break;
    default: /* Q8_K (ggml quantize_row_q8_K_ref): signed max, iscale = -127 / max */
        for (int64_t b = 0; b < n / 256; b++) {
            const float *xb = x + 256 * b;
            uint8_t *blk = o + BN_Q8K_BYTES * b;
            float amax = 0, mx = 0;
            for (int i = 0; i < 256; i++) {
                float ax = fabsf(xb[i]);
                if (ax > amax) { amax = ax; mx = xb[i]; }
            }
            float d = 0;
            if (amax == 0.f) {
                memset(blk + 4, 0, 256);
            } else {
                const float iscale = -127.f / mx;
                for (int i = 0; i < 256; i++) {
                    int32_t v = bn_nearest_int(iscale * xb[i]);
                    blk[4 + i] = (uint8_t)(int8_t)(v < 127 ? v : 127);
                }
                d = 1 / iscale;
            }
            memcpy(blk, &d, 4);
        }
        break;
    }
}

static void bn_dense_matmul_scalar(const bn_dmat *w, int64_t r0, int64_t r1, const void *xs, size_t xs_stride,
                                   int64_t n_tok, float *y, int64_t ldy, float *scratch) {
    const int64_t n = w->cols;
    const uint8_t *xb = xs;
    const bn_type_traits *tr = bn_type_traits_get(w->type);
    for (int64_t j = r0; j < r1; j++) {
        const uint8_t *row = w->data + (uint64_t)j * w->row_bytes;
        int kq = w->type != BITNET_TYPE_F32 && w->type != BITNET_TYPE_F16 && w->type != BITNET_TYPE_BF16 &&
                 w->type != BITNET_TYPE_Q8_0;
        if (kq) tr->to_float(row, scratch, n); /* K-quants / TQ: dequantize the row once */
        for (int64_t t = 0; t < n_tok; t++) {
            const uint8_t *x = xb + (size_t)t * xs_stride;
            float r = 0;
            if (w->type == BITNET_TYPE_F32) {
                double s = 0;
                for (int64_t i = 0; i < n; i++) s += (double)(bn_rd_f32(row + 4 * i) * bn_rd_f32(x + 4 * i));
                r = (float)s;
            } else if (w->type == BITNET_TYPE_F16) {
                double s = 0;
                for (int64_t i = 0; i < n; i++)
                    s += (double)(bn_f16_to_f32(bn_rd_u16(row + 2 * i)) * bn_f16_to_f32(bn_rd_u16(x + 2 * i)));
                r = (float)s;
            } else if (w->type == BITNET_TYPE_BF16) {
                double s = 0;
                for (int64_t i = 0; i < n; i++)
                    s += (double)(bn_bf16_to_f32(bn_rd_u16(row + 2 * i)) * bn_bf16_to_f32(bn_rd_u16(x + 2 * i)));
                r = (float)s;
            } else if (w->type == BITNET_TYPE_Q8_0) {
                for (int64_t b = 0; b < n / 32; b++) {
                    const uint8_t *wb = row + BN_Q80_BYTES * b, *ab = x + BN_Q80_BYTES * b;
                    int32_t si = 0;
                    for (int i = 0; i < 32; i++) si += (int32_t)(int8_t)wb[2 + i] * (int32_t)(int8_t)ab[2 + i];
                    r += (float)si * (bn_f16_to_f32(bn_rd_u16(wb)) * bn_f16_to_f32(bn_rd_u16(ab)));
                }
            } else {
                for (int64_t b = 0; b < n / 256; b++) {
                    const uint8_t *ab = x + BN_Q8K_BYTES * b;
                    double s = 0;
                    for (int i = 0; i < 256; i++) s += (double)scratch[256 * b + i] * (int8_t)ab[4 + i];
                    r += (float)s * bn_rd_f32(ab);
                }
            }
            y[t * ldy + j] = r;
        }
    }
}

/* ---- the screened output layer (kernels.h, bn_smat) ------------------------------------ */

static void bn_screen_matmul_scalar(const bn_smat *w, int64_t r0, int64_t r1, const int16_t *xq, float xs,
                                    const float *c, float *s, float *e) {
    for (int64_t j = r0; j < r1; j++) {
        float acc = 0.0f, err = 0.0f;
        for (int64_t b = 0; b < w->nb; b++) {
            const int8_t *q = BN_SMAT_Q(w, j, b);
            const float sg = *BN_SMAT_SIGMA(w, j, b);
            int32_t d = 0;
            for (int i = 0; i < BN_SCREEN_BLOCK; i++) d += (int32_t)q[i] * (int32_t)xq[BN_SCREEN_BLOCK * b + i];
            acc += sg * (float)d;
            err += sg * c[b];
        }
        s[j] = acc * xs;
        e[j] = err;
    }
}

const bn_kernels bn_kernels_scalar = {
    .name = "scalar",
    .isa = BITNET_ISA_SCALAR,
    .act_quant = bn_act_quant_scalar,
    .ternary_matmul = bn_ternary_matmul_scalar,
    .rmsnorm = bn_rmsnorm_scalar,
    .ffn_act = bn_ffn_act_scalar,
    .f16_row = bn_f16_row_scalar,
    .rope = bn_rope_scalar,
    .attention = bn_attention_scalar,
    .dense_prep = bn_dense_prep_scalar,
    .dense_matmul = bn_dense_matmul_scalar,
    .screen_matmul = bn_screen_matmul_scalar,
    .screen_quant = bn_screen_quant_scalar,
};
