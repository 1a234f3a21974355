/*
 * x86_common.h -- AVX2 + FMA + F16C kernels shared by the x86 variants (included by
 * x86_avx2.c and x86_avx512.c only; each compiles it with its own flags, so the
 * AVX-512 file gets EVEX encodings of the same code).  Internal, never installed.
 *
 * What is exact and what is not (tests/unit/test_kernels.c holds every variant to it):
 *  - act_quant and dense_prep give the same bytes as the scalar reference: max|x| is
 *    order-free, x * a is the same f32 product, and CVTPS2DQ rounds half-to-even like
 *    ggml's nearest_int (values are clamped to [-128, 127] first, NaN to -128 as the
 *    scalar code does).  Q8_0 rounding is roundf (half away from zero), rebuilt from
 *    truncation so ties agree.  F16 conversion is VCVTPS2PH round-to-nearest-even,
 *    which is what bn_f32_to_f16 implements.
 *  - Float reductions (dense dot products, attention, the RMSNorm sum) run in f32
 *    vector lanes (RMSNorm: double lanes), so the summation order differs from the
 *    reference's sequential double sums: results agree to a relative 1e-5 of the sum
 *    of |terms|, not bit for bit.
 */
#ifndef BN_X86_COMMON_H
#define BN_X86_COMMON_H

#include "internal.h"
#include "kernels.h"
#include "type_table.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define BN_Q80_BYTES 34  /* Q8_0 block: f16 d + 32 int8 (ggml layout)   */
#define BN_Q8K_BYTES 260 /* prepared Q8_K block: f32 d + 256 int8       */

static inline float bn_x86_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int32_t bn_x86_hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* One element of the activation quantizer, exactly as the scalar reference. */
static inline int8_t bn_x86_q1(float x, float a) {
    float p = x * a;
    if (!(p > -128.f)) return -128; /* also NaN */
    if (p > 127.f) return 127;
    return (int8_t)(int32_t)lrintf(p); /* default rounding: half to even */
}

/* max|x| over n floats (NaN ignored, as the scalar `fabs(x) > m` test does). */
static inline float bn_x86_absmax(const float *x, int64_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
    int64_t i = 0;
    /* MAXPS returns its second operand when the first is NaN: keep m second */
    for (; i + 16 <= n; i += 16) {
        m0 = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), m0);
        m1 = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i + 8)), m1);
    }
    for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), m0);
    m0 = _mm256_max_ps(m0, m1);
    float t[8], m = 0;
    _mm256_storeu_ps(t, m0);
    for (int k = 0; k < 8; k++)
        if (t[k] > m) m = t[k];
    for (; i < n; i++) {
        float v = fabsf(x[i]);
        if (v > m) m = v;
    }
    return m;
}

/* act_quant scale from max|x|: the reference computes it in double. */
static inline float bn_x86_act_scale(float mx) {
    double m = (double)mx;
    if (!(m >= 1e-5)) m = 1e-5;
    return (float)(127.0 / m);
}

/* 8 floats * a, clamped, rounded half-to-even to int32. */
static inline __m256i bn_x86_q8(const float *x, __m256 va) {
    __m256 p = _mm256_mul_ps(_mm256_loadu_ps(x), va);
    p = _mm256_max_ps(p, _mm256_set1_ps(-128.f)); /* NaN -> -128 (second operand) */
    p = _mm256_min_ps(p, _mm256_set1_ps(127.f));
    return _mm256_cvtps_epi32(p);
}

static inline void bn_x86_act_quant_avx2(const float *x, int64_t n, int64_t n_pad, bn_qrow *r) {
    const float a = bn_x86_act_scale(bn_x86_absmax(x, n));
    const __m256 va = _mm256_set1_ps(a);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i vsum = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i i0 = bn_x86_q8(x + i, va), i1 = bn_x86_q8(x + i + 8, va);
        __m256i i2 = bn_x86_q8(x + i + 16, va), i3 = bn_x86_q8(x + i + 24, va);
        vsum = _mm256_add_epi32(vsum, _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)(r->q + i), _mm256_permutevar8x32_epi32(p, perm));
    }
    int32_t sum = bn_x86_hsum_epi32(vsum);
    for (; i < n; i++) {
        r->q[i] = bn_x86_q1(x[i], a);
        sum += r->q[i];
    }
    if (n_pad > n) memset(r->q + n, 0, (size_t)(n_pad - n));
    r->a = a;
    r->sum = sum;
}

/* ---- RMSNorm --------------------------------------------------------------------------- */

static inline void bn_x86_rmsnorm(const float *x, const float *w, int64_t n, float eps, float *y) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 sq = _mm256_mul_ps(v, v); /* the f32 square, as the reference */
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
    double sum = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    const __m256 vs = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

/* ---- attention over the KV cache ------------------------------------------------------- */

static inline __m256 bn_x86_ld_kv(const void *p, int64_t i, int f16) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_loadu_ps((const float *)p + i);
}

static inline float bn_x86_kv1(const void *p, int64_t i, int f16) {
    return f16 ? bn_f16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

/* scores s[0..n) with maximum mx -> probabilities (rounded to f16 for an f16 cache). */
static inline void bn_x86_softmax(float *s, int64_t n, float mx, int kv_f16) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        float e = expf(s[i] - mx);
        s[i] = e;
        sum += (double)e;
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) {
        s[i] *= inv;
        if (kv_f16) s[i] = bn_f16_to_f32(bn_f32_to_f16(s[i]));
    }
}

static inline void bn_x86_attention(const float *q, const void *k, const void *v, int kv_f16, int64_t n_kv,
                                    int64_t head_dim, int64_t kv_stride, float scale, float *scratch,
                                    float *out) {
    float qr[BN_MAX_HEAD_DIM];
    const size_t esz = kv_f16 ? 2 : 4;
    const uint8_t *kb = k, *vb = v;
    int64_t d8 = head_dim & ~(int64_t)7;
    for (int64_t d = 0; d < head_dim; d++) qr[d] = kv_f16 ? bn_f16_to_f32(bn_f32_to_f16(q[d])) : q[d];
    float mx = -INFINITY;
    for (int64_t i = 0; i < n_kv; i++) {
        const void *kr = kb + (size_t)(i * kv_stride) * esz;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int64_t d = 0;
        for (; d + 16 <= d8; d += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d), bn_x86_ld_kv(kr, d, kv_f16), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d + 8), bn_x86_ld_kv(kr, d + 8, kv_f16), a1);
        }
        for (; d < d8; d += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d), bn_x86_ld_kv(kr, d, kv_f16), a0);
        float s = bn_x86_hsum_ps(_mm256_add_ps(a0, a1));
        for (; d < head_dim; d++) s += qr[d] * bn_x86_kv1(kr, d, kv_f16);
        scratch[i] = s * scale;
        if (scratch[i] > mx) mx = scratch[i];
    }
    bn_x86_softmax(scratch, n_kv, mx, kv_f16);
    /* out = P . V, 64 output dims at a time held in registers while streaming V rows */
    int64_t d = 0;
    for (; d + 64 <= d8; d += 64) {
        __m256 acc[8];
        for (int c = 0; c < 8; c++) acc[c] = _mm256_setzero_ps();
        for (int64_t i = 0; i < n_kv; i++) {
            const void *vr = vb + (size_t)(i * kv_stride) * esz;
            __m256 p = _mm256_set1_ps(scratch[i]);
            for (int c = 0; c < 8; c++) acc[c] = _mm256_fmadd_ps(p, bn_x86_ld_kv(vr, d + 8 * c, kv_f16), acc[c]);
        }
        for (int c = 0; c < 8; c++) _mm256_storeu_ps(out + d + 8 * c, acc[c]);
    }
    for (; d < d8; d += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int64_t i = 0; i < n_kv; i++)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(scratch[i]),
                                  bn_x86_ld_kv(vb + (size_t)(i * kv_stride) * esz, d, kv_f16), acc);
        _mm256_storeu_ps(out + d, acc);
    }
    for (; d < head_dim; d++) {
        float acc = 0;
        for (int64_t i = 0; i < n_kv; i++) acc += scratch[i] * bn_x86_kv1(vb + (size_t)(i * kv_stride) * esz, d, kv_f16);
        out[d] = acc;
    }
}

/* Up to BN_ATTN_MQ queries against the same keys and values (kernels.h, attention_multi):
 * every query's scores, softmax and weighted sum are computed with exactly the operations,
 * in exactly the order, of bn_x86_attention above (the same FMA lanes over the head
 * dimension, the same sequential sums over positions), so the results are the same bits;
 * what is shared is each key and value row's load and f16 conversion.  head_dim must be
 * a multiple of 8 (the caller falls back to single queries otherwise). */
static inline void bn_x86_attention_multi(int nq, const float *const *q, const int64_t *n_kv, const void *k,
                                          const void *v, int kv_f16, int64_t head_dim, int64_t kv_stride,
                                          float scale, float *scratch, int64_t sstride, float *const *out) {
    float qr[BN_ATTN_MQ][BN_MAX_HEAD_DIM];
    float mx[BN_ATTN_MQ];
    const size_t esz = kv_f16 ? 2 : 4;
    const uint8_t *kb = k, *vb = v;
    int64_t nmax = 0, nmin = INT64_MAX;
    for (int a = 0; a < nq; a++) {
        for (int64_t d = 0; d < head_dim; d++) qr[a][d] = kv_f16 ? bn_f16_to_f32(bn_f32_to_f16(q[a][d])) : q[a][d];
        mx[a] = -INFINITY;
        if (n_kv[a] > nmax) nmax = n_kv[a];
        if (n_kv[a] < nmin) nmin = n_kv[a];
    }
    for (int64_t i = 0; i < nmax; i++) {
        const void *kr = kb + (size_t)(i * kv_stride) * esz;
        __m256 a0[BN_ATTN_MQ], a1[BN_ATTN_MQ];
        for (int a = 0; a < nq; a++) a0[a] = a1[a] = _mm256_setzero_ps();
        int64_t d = 0;
        for (; d + 16 <= head_dim; d += 16) {
            const __m256 k0 = bn_x86_ld_kv(kr, d, kv_f16), k1 = bn_x86_ld_kv(kr, d + 8, kv_f16);
            for (int a = 0; a < nq; a++) {
                a0[a] = _mm256_fmadd_ps(_mm256_loadu_ps(qr[a] + d), k0, a0[a]);
                a1[a] = _mm256_fmadd_ps(_mm256_loadu_ps(qr[a] + d + 8), k1, a1[a]);
            }
        }
        for (; d < head_dim; d += 8) {
            const __m256 k0 = bn_x86_ld_kv(kr, d, kv_f16);
            for (int a = 0; a < nq; a++) a0[a] = _mm256_fmadd_ps(_mm256_loadu_ps(qr[a] + d), k0, a0[a]);
        }
        for (int a = 0; a < nq; a++)
            if (i < n_kv[a]) {
                float *sc = scratch + a * sstride;
                sc[i] = bn_x86_hsum_ps(_mm256_add_ps(a0[a], a1[a])) * scale;
                if (sc[i] > mx[a]) mx[a] = sc[i];
            }
    }
    for (int a = 0; a < nq; a++) bn_x86_softmax(scratch + a * sstride, n_kv[a], mx[a], kv_f16);
    /* out = P . V: 32 dims of two queries at a time; each lane still sums its positions
     * in order from 0, as the single-query loop does */
    for (int a = 0; a < nq; a += 2) {
        const int nb = nq - a < 2 ? 1 : 2;
        const float *p0 = scratch + a * sstride, *p1 = scratch + (a + nb - 1) * sstride;
        const int64_t n0 = n_kv[a], n1 = n_kv[a + nb - 1], nlo = n0 < n1 ? n0 : n1;
        for (int64_t d = 0; d < head_dim; d += 32) {
            const int nc = head_dim - d >= 32 ? 4 : (int)((head_dim - d) / 8);
            __m256 c0[4], c1[4];
            for (int c = 0; c < 4; c++) c0[c] = c1[c] = _mm256_setzero_ps();
            int64_t i = 0;
            for (; i < nlo; i++) {
                const void *vr = vb + (size_t)(i * kv_stride) * esz;
                const __m256 w0 = _mm256_set1_ps(p0[i]), w1 = _mm256_set1_ps(p1[i]);
                for (int c = 0; c < nc; c++) {
                    const __m256 vv = bn_x86_ld_kv(vr, d + 8 * c, kv_f16);
                    c0[c] = _mm256_fmadd_ps(w0, vv, c0[c]);
                    if (nb == 2) c1[c] = _mm256_fmadd_ps(w1, vv, c1[c]);
                }
            }
            for (int64_t i0 = i; i0 < n0; i0++) {
                const void *vr = vb + (size_t)(i0 * kv_stride) * esz;
                for (int c = 0; c < nc; c++)
                    c0[c] = _mm256_fmadd_ps(_mm256_set1_ps(p0[i0]), bn_x86_ld_kv(vr, d + 8 * c, kv_f16), c0[c]);
            }
            if (nb == 2)
                for (int64_t i1 = i; i1 < n1; i1++) {
                    const void *vr = vb + (size_t)(i1 * kv_stride) * esz;
                    for (int c = 0; c < nc; c++)
                        c1[c] = _mm256_fmadd_ps(_mm256_set1_ps(p1[i1]), bn_x86_ld_kv(vr, d + 8 * c, kv_f16), c1[c]);
                }
            for (int c = 0; c < nc; c++) {
                _mm256_storeu_ps(out[a] + d + 8 * c, c0[c]);
                if (nb == 2) _mm256_storeu_ps(out[a + 1] + d + 8 * c, c1[c]);
            }
        }
    }
}

/* Rows [r0, r1) of a G4X256 matrix against n_tok >= 2 tokens, in the cache blocking the
 * AVX2-class kernels share (x86_avx2.c, x86_avxvnni.c): blocks of BN_X86_G4_RB rows (their
 * codes stay in L2), tokens in blocks of eight, columns in segments of eight chunks (2048
 * columns: eight tokens' activations, 16 KiB, stay in L1 while every row of the block
 * passes over them).  seg(w, rs, re, xt, nt, c0, c1, D) adds to D[(j - rs) * 8 + t] the
 * exact sums of rows j in [rs, re) against tokens xt[0..nt) over chunks [c0, c1).  The int32
 * sums are complete before the float conversion, so the result is the reference formula
 * on the same integers whatever the blocking.  Inlined with a constant seg: a direct call. */
#define BN_X86_G4_RB 128
/* CALL(TB) with TB the constant equal to nt (1..8), so each tile is fully unrolled. */
#define BN_X86_TB_SWITCH(nt, CALL)       \
    switch (nt) {                        \
    case 8: CALL(8); break;              \
    case 7: CALL(7); break;              \
    case 6: CALL(6); break;              \
    case 5: CALL(5); break;              \
    case 4: CALL(4); break;              \
    case 3: CALL(3); break;              \
    case 2: CALL(2); break;              \
    default: CALL(1); break;             \
    }
typedef void (*bn_x86_g4_seg)(const bn_tmat *w, int64_t rs, int64_t re, const bn_qrow *xt, int nt, int64_t c0,
                              int64_t c1, int32_t *D);
static inline __attribute__((always_inline)) void bn_x86_g4_multi(const bn_tmat *w, int64_t r0, int64_t r1,
                                                                  const bn_qrow *x, int64_t n_tok, float *y,
                                                                  int64_t ldy, bn_x86_g4_seg seg) {
    const int64_t nc = w->cols_pad / 256;
    int32_t D[BN_X86_G4_RB * 8];
    for (int64_t rs = r0; rs < r1; rs += BN_X86_G4_RB) {
        const int64_t re = rs + BN_X86_G4_RB < r1 ? rs + BN_X86_G4_RB : r1;
        for (int64_t t = 0; t < n_tok; t += 8) {
            const int nt = n_tok - t < 8 ? (int)(n_tok - t) : 8;
            const bn_qrow *xt = x + t;
            memset(D, 0, sizeof D);
            for (int64_t c0 = 0; c0 < nc; c0 += 8) seg(w, rs, re, xt, nt, c0, c0 + 8 < nc ? c0 + 8 : nc, D);
            for (int64_t j = rs; j < re; j++)
                for (int tt = 0; tt < nt; tt++)
                    y[(t + tt) * ldy + j] = ((float)D[(j - rs) * 8 + tt] - (float)xt[tt].sum) / xt[tt].a * w->scale;
        }
    }
}

/* The end of a screened output row tile (x86_avx2.c, x86_avx512.c): s = the eight lanes of
 * acc summed, times xs; e = sum_b sigma_b c_b, eight blocks at a time (sigma of row r:
 * stride 4).  One copy, so the AVX2 and AVX-512 variants give the same bits. */
static inline __attribute__((always_inline)) void bn_x86_screen_finish(const bn_smat *w, int64_t j, const int RB,
                                                                      const __m256 *acc, float xs, const float *c,
                                                                      float *s, float *e) {
    const float *sg = BN_SMAT_SIGMA(w, j, 0);
    __m256 err[4];
    for (int r = 0; r < RB; r++) err[r] = _mm256_setzero_ps();
    const __m256i idx = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    int64_t b = 0;
    for (; b + 8 <= w->nb; b += 8) {
        const __m256 cv = _mm256_loadu_ps(c + b);
        for (int r = 0; r < RB; r++)
            err[r] = _mm256_fmadd_ps(_mm256_i32gather_ps(sg + 4 * b + r, idx, 4), cv, err[r]);
    }
    for (int r = 0; r < RB; r++) {
        float et = bn_x86_hsum_ps(err[r]);
        for (int64_t bb = b; bb < w->nb; bb++) et += sg[4 * bb + r] * c[bb];
        s[j + r] = bn_x86_hsum_ps(acc[r]) * xs;
        e[j + r] = et;
    }
}

/* ---- dense layers ---------------------------------------------------------------------- */

/* roundf (half away from zero) of 8 lanes, exactly: trunc, then step by the sign when
 * the (exact) fraction is at least one half. */
static inline __m256 bn_x86_roundf(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 step = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign)));
    return _mm256_add_ps(t, step);
}

/* f16_row with F16C (rounding to nearest even, quiet NaNs with the payload's top bits:
 * what bn_f32_to_f16 computes), the tail in software. */
static inline void bn_x86_f16_row(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = bn_f32_to_f16(x[i]);
}

static inline void bn_x86_dense_prep(const bn_dmat *w, const float *x, void *out) {
    const int64_t n = w->cols;
    uint8_t *o = out;
    switch (w->type) {
    case BITNET_TYPE_F16: bn_x86_f16_row(x, (uint16_t *)out, n); return;
    case BITNET_TYPE_Q8_0: {
        const __m256 sign = _mm256_set1_ps(-0.0f);
        for (int64_t b = 0; b < n / 32; b++) {
            const float *xb = x + 32 * b;
            __m256 m = _mm256_setzero_ps();
            for (int k = 0; k < 4; k++) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xb + 8 * k)), m);
            float t[8], amax = 0;
            _mm256_storeu_ps(t, m);
            for (int k = 0; k < 8; k++) amax = fmaxf(amax, t[k]);
            float d = amax / 127.f, id = d != 0.f ? 1.0f / d : 0.0f;
            uint8_t *blk = o + BN_Q80_BYTES * b;
            uint16_t dh = bn_f32_to_f16(d);
            memcpy(blk, &dh, 2);
            __m256 vid = _mm256_set1_ps(id);
            __m256i q[4];
            for (int k = 0; k < 4; k++)
                q[k] = _mm256_cvttps_epi32(bn_x86_roundf(_mm256_mul_ps(_mm256_loadu_ps(xb + 8 * k), vid)));
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(blk + 2), p);
        }
        return;
    }
    default: bn_kernels_scalar.dense_prep(w, x, out); return;
    }
}

/* Row . f32 vector for F16 rows (8 lanes), four rows at a time: the output layer. */
static inline void bn_x86_f16_rows4(const uint8_t *w0, uint64_t rb, const float *x, int64_t n, float *y) {
    __m256 a[4][2];
    for (int r = 0; r < 4; r++) a[r][0] = a[r][1] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        for (int r = 0; r < 4; r++) {
            const uint16_t *wr = (const uint16_t *)(w0 + r * rb) + i;
            a[r][0] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)wr)), x0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wr + 8))), x1, a[r][1]);
        }
    }
    for (int r = 0; r < 4; r++) {
        const uint8_t *wr = w0 + r * rb;
        float s = bn_x86_hsum_ps(_mm256_add_ps(a[r][0], a[r][1]));
        for (int64_t k = i; k < n; k++) s += bn_f16_to_f32(bn_rd_u16(wr + 2 * k)) * x[k];
        y[r] = s;
    }
}

/* 8 elements of a dense row or prepared activation as f32 (F32, F16, BF16). */
static inline __m256 bn_x86_ld8(const uint8_t *p, int64_t i, uint32_t type) {
    switch (type) {
    case BITNET_TYPE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i)));
    case BITNET_TYPE_BF16:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 2 * i))), 16));
    default: return _mm256_loadu_ps((const float *)(const void *)(p + 4 * i));
    }
}

static inline float bn_x86_ld1(const uint8_t *p, int64_t i, uint32_t type) {
    switch (type) {
    case BITNET_TYPE_F16: return bn_f16_to_f32(bn_rd_u16(p + 2 * i));
    case BITNET_TYPE_BF16: return bn_bf16_to_f32(bn_rd_u16(p + 2 * i));
    default: return bn_rd_f32(p + 4 * i);
    }
}

static inline float bn_x86_dot_float(const uint8_t *w, const uint8_t *x, int64_t n, uint32_t type) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(bn_x86_ld8(w, i, type), bn_x86_ld8(x, i, type), a0);
        a1 = _mm256_fmadd_ps(bn_x86_ld8(w, i + 8, type), bn_x86_ld8(x, i + 8, type), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(bn_x86_ld8(w, i, type), bn_x86_ld8(x, i, type), a0);
    float s = bn_x86_hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += bn_x86_ld1(w, i, type) * bn_x86_ld1(x, i, type);
    return s;
}

/* Q8_0 row . Q8_0 activation.  |w| goes unsigned, its sign onto x: exact for every
 * weight byte because prepared activations never hold -128 (|round(x*127/amax)| <= 127),
 * so sign_epi8 cannot overflow and |products| <= 128*127*2 fit maddubs' int16. */
static inline float bn_x86_dot_q8_0(const uint8_t *w, const uint8_t *x, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + BN_Q80_BYTES * b, *xb = x + BN_Q80_BYTES * b;
        __m256i wv = _mm256_loadu_si256((const __m256i *)(wb + 2));
        __m256i xv = _mm256_loadu_si256((const __m256i *)(xb + 2));
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv)), ones);
        float d = bn_f16_to_f32(bn_rd_u16(wb)) * bn_f16_to_f32(bn_rd_u16(xb));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d), acc);
    }
    return bn_x86_hsum_ps(acc);
}

/* One F16 row . f32 vector, summed exactly as each row of bn_x86_f16_rows4 is. */
static inline float bn_x86_f16_row1(const uint8_t *wr, const float *x, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const uint16_t *w = (const uint16_t *)(const void *)wr + i;
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w)), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 8))), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = bn_x86_hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += bn_f16_to_f32(bn_rd_u16(wr + 2 * i)) * x[i];
    return s;
}

/* The f16 activations of tokens [t0, t0 + nt) as f32 rows of n floats in scratch. */
static inline void bn_x86_f16_acts(const uint8_t *xs, size_t xs_stride, int64_t t0, int64_t nt, int64_t n,
                                   float *scratch) {
    for (int64_t t = 0; t < nt; t++) {
        const uint8_t *xh = xs + (size_t)(t0 + t) * xs_stride;
        float *d = scratch + t * n;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, bn_x86_ld8(xh, i, BITNET_TYPE_F16));
        for (; i < n; i++) d[i] = bn_x86_ld1(xh, i, BITNET_TYPE_F16);
    }
}

/* Row-major dense matrices.  Every (row, token) result comes from one routine whatever
 * n_tok and the row range are; tokens are the inner loop, so a batch reads each row
 * from memory once. */
static inline void bn_x86_dense_matmul(const bn_dmat *w, int64_t r0, int64_t r1, const void *xs, size_t xs_stride,
                                       int64_t n_tok, float *y, int64_t ldy, float *scratch) {
    const int64_t n = w->cols;
    const uint8_t *xb = xs;
    switch (w->type) {
    case BITNET_TYPE_F16:
        for (int64_t t0 = 0; t0 < n_tok; t0 += BN_DENSE_TOK) {
            const int64_t nt = n_tok - t0 < BN_DENSE_TOK ? n_tok - t0 : BN_DENSE_TOK;
            bn_x86_f16_acts(xb, xs_stride, t0, nt, n, scratch);
            int64_t j = r0;
            for (; j + 4 <= r1; j += 4)
                for (int64_t t = 0; t < nt; t++)
                    bn_x86_f16_rows4(w->data + (uint64_t)j * w->row_bytes, w->row_bytes, scratch + t * n, n,
                                     y + (t0 + t) * ldy + j);
            for (; j < r1; j++)
                for (int64_t t = 0; t < nt; t++)
                    y[(t0 + t) * ldy + j] = bn_x86_f16_row1(w->data + (uint64_t)j * w->row_bytes, scratch + t * n, n);
        }
        return;
    case BITNET_TYPE_F32:
    case BITNET_TYPE_BF16:
        for (int64_t j = r0; j < r1; j++) {
            const uint8_t *row = w->data + (uint64_t)j * w->row_bytes;
            for (int64_t t = 0; t < n_tok; t++)
                y[t * ldy + j] = bn_x86_dot_float(row, xb + (size_t)t * xs_stride, n, w->type);
        }
        return;
    case BITNET_TYPE_Q8_0:
        for (int64_t j = r0; j < r1; j++) {
            const uint8_t *row = w->data + (uint64_t)j * w->row_bytes;
            for (int64_t t = 0; t < n_tok; t++)
                y[t * ldy + j] = bn_x86_dot_q8_0(row, xb + (size_t)t * xs_stride, n / 32);
        }
        return;
    default: bn_kernels_scalar.dense_matmul(w, r0, r1, xs, xs_stride, n_tok, y, ldy, scratch); return;
    }
}

#endif /* BN_X86_COMMON_H */
