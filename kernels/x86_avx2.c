/*
 * x86_avx2.c -- AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c only;
 * selected at run time by kernels/dispatch.c when CPUID and XCR0 allow it).
 *
 * Ternary matmul.  A packed block is 32 bytes = 128 codes in I2_S x128 order (code e
 * at byte e%32, bits 7-2*(e/32)..6-2*(e/32)), so one 256-bit load holds the block and
 * group g (activations 32g..32g+31) is (bytes >> (6-2g)) & 3: four shifts, no
 * shuffles.  Codes are 0/1/2 (unsigned), activations int8, so VPMADDUBSW multiplies
 * them directly; |pair sums| <= 2*2*128 = 512 and the four groups of a block add up to
 * <= 2048 in int16 before VPMADDWD widens them to int32: D is exact.  S = sum(q) comes
 * from act_quant, so y = ((float)D - (float)S) / a * scale is the reference formula on
 * the same integers, and the result is bit-identical to kernels/scalar.c.
 *
 * Blocking: one token (decode) runs 4 rows at a time so every activation load feeds
 * four rows.  Several tokens (prefill, batched decoding, speculation) on the G4X256
 * layout run bn_x86_g4_multi (x86_common.h) with bn_avx2_g4_seg: one row x up to 8 tokens (2-3 tokens: two rows sharing the
 * activation loads), partial sums kept in int16 for eight chunks before they are widened
 * (one multiply per 32 weights x token instead of 1.25), inside a cache blocking of rows
 * (codes in L2), tokens and 2048-column segments (the tokens' activations in L1).  Measured
 * on Zen 3 (tests/bench/bench_kernels.c, one thread, matrices in L3): about 60 weight x token
 * products per ns at one token, 85-110 from eight tokens on, where the earlier 1 x 4 tile
 * gave 65-70, and 40-50 at 128 tokens (it re-read every token's activations from L2 per row).
 */
#if defined(__x86_64__)
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "x86_avx2.c must be compiled with -mavx2 -mfma -mf16c (kernels/kernels.cmake)"
#endif

#include "fwd_act.h"
#include "x86_common.h"

#include <string.h>

#define BN_AI static inline __attribute__((always_inline))

/* D[r * TB + t] = sum(code * q) of rows j..j+RB-1 against tokens x[0..TB). */
BN_AI void bn_avx2_tile(const bn_tmat *w, int64_t j, const int RB, const bn_qrow *x, const int TB, int32_t *D) {
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const int64_t nb = w->cols_pad / BN_TMAT_BLOCK;
    __m256i acc[4][4];
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) acc[r][t] = _mm256_setzero_si256();
    for (int64_t b = 0; b < nb; b++) {
        __m256i c[4][4];
        for (int r = 0; r < RB; r++) {
            __m256i raw = _mm256_loadu_si256((const __m256i *)(w->codes + (j + r) * w->row_bytes + 32 * b));
            c[r][0] = _mm256_and_si256(_mm256_srli_epi16(raw, 6), m3);
            c[r][1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m3);
            c[r][2] = _mm256_and_si256(_mm256_srli_epi16(raw, 2), m3);
            c[r][3] = _mm256_and_si256(raw, m3);
        }
        for (int t = 0; t < TB; t++) {
            const int8_t *q = x[t].q + BN_TMAT_BLOCK * b;
            __m256i q0 = _mm256_loadu_si256((const __m256i *)q), q1 = _mm256_loadu_si256((const __m256i *)(q + 32));
            __m256i q2 = _mm256_loadu_si256((const __m256i *)(q + 64)), q3 = _mm256_loadu_si256((const __m256i *)(q + 96));
            for (int r = 0; r < RB; r++) {
                __m256i s = _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(c[r][0], q0), _mm256_maddubs_epi16(c[r][1], q1)),
                                             _mm256_add_epi16(_mm256_maddubs_epi16(c[r][2], q2), _mm256_maddubs_epi16(c[r][3], q3)));
                acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(s, ones));
            }
        }
    }
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) D[r * TB + t] = bn_x86_hsum_epi32(acc[r][t]);
}

BN_AI void bn_avx2_store(const bn_tmat *w, int64_t j, int RB, const bn_qrow *x, int TB, const int32_t *D,
                         float *y, int64_t ldy) {
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++)
            y[t * ldy + j + r] = ((float)D[r * TB + t] - (float)x[t].sum) / x[t].a * w->scale;
}

/* ---- the G4X256 layout (kernels.h), shared with AVX-512 ----------------------------------
 * Half a chunk (32 bytes of one row) gives, after the four shifts, the codes of weights
 * [0,32), [64,96), [128,160), [192,224) of the chunk (first half) or the same +32
 * (second half): four VPMADDUBSW against four activation slices, int16 sums <= 2048,
 * then VPMADDWD to int32, exactly as above.  A group's four rows sit side by side, so
 * decode reads the matrix front to back.  Rows [j, j+RB) must lie in one group. */
BN_AI void bn_avx2_g4_tile(const bn_tmat *w, int64_t j, const int RB, const bn_qrow *x, const int TB, int32_t *D) {
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const int64_t nc = w->cols_pad / 256;
    const uint8_t *base = w->codes + (j / 4) * 4 * w->row_bytes + (j % 4) * 64;
    __m256i acc[4][4];
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) acc[r][t] = _mm256_setzero_si256();
    for (int64_t c = 0; c < nc; c++) {
        const uint8_t *p = base + c * 256;
        for (int h = 0; h < 2; h++) {
            for (int r = 0; r < RB; r++) {
                const __m256i raw = _mm256_load_si256((const __m256i *)(const void *)(p + 64 * r + 32 * h));
                const __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(raw, 6), m3);
                const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m3);
                const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(raw, 2), m3);
                const __m256i c3 = _mm256_and_si256(raw, m3);
                for (int t = 0; t < TB; t++) {
                    const int8_t *q = x[t].q + 256 * c + 32 * h;
                    __m256i s = _mm256_add_epi16(
                        _mm256_add_epi16(_mm256_maddubs_epi16(c0, _mm256_loadu_si256((const __m256i *)q)),
                                         _mm256_maddubs_epi16(c1, _mm256_loadu_si256((const __m256i *)(q + 64)))),
                        _mm256_add_epi16(_mm256_maddubs_epi16(c2, _mm256_loadu_si256((const __m256i *)(q + 128))),
                                         _mm256_maddubs_epi16(c3, _mm256_loadu_si256((const __m256i *)(q + 192)))));
                    acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(s, ones));
                }
            }
        }
    }
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) D[r * TB + t] = bn_x86_hsum_epi32(acc[r][t]);
}

/* Several tokens: row j of a G4 group against TB tokens over chunks [c0, c1) (at most
 * eight), the partial sums kept in int16 and added to D[0..TB).  A VPMADDUBSW lane is
 * u0*s0 + u1*s1 with codes u <= 2 and |s| <= 128, so |lane| <= 512, and 64 of them stay
 * within int16 (64 * 512 = 32768 is reached only as -32768, which is representable: the
 * -128 activations that NaN inputs give).  A chunk adds eight lanes (two halves x four
 * slices) to each accumulator, so eight chunks are summed in int16 before VPMADDWD widens
 * them: D is the same exact integer as with per-block widening (bit-identical results),
 * with one multiply fewer per 32 weights x token.  Each unpacked slice of codes feeds the
 * TB tokens in turn (activations as memory operands), so only the slice and the TB
 * accumulators are live: 8 tokens fit the 16 registers. */
BN_AI void bn_avx2_g4_tok(const bn_tmat *w, int64_t j, const bn_qrow *x, const int TB, int64_t c0, int64_t c1,
                          int32_t *D) {
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const uint8_t *base = w->codes + (j / 4) * 4 * w->row_bytes + (j % 4) * 64;
    __m256i acc[8];
    for (int t = 0; t < TB; t++) acc[t] = _mm256_setzero_si256();
    for (int64_t c = c0; c < c1; c++) {
        for (int h = 0; h < 2; h++) {
            const __m256i raw = _mm256_load_si256((const __m256i *)(const void *)(base + c * 256 + 32 * h));
            for (int sl = 0; sl < 4; sl++) {
                const __m256i k = _mm256_and_si256(_mm256_srli_epi16(raw, 6 - 2 * sl), m3);
                for (int t = 0; t < TB; t++) {
                    const int8_t *q = x[t].q + 256 * c + 32 * h + 64 * sl;
                    acc[t] = _mm256_add_epi16(acc[t], _mm256_maddubs_epi16(k, _mm256_loadu_si256((const __m256i *)(const void *)q)));
                    /* pin the accumulator to a register: otherwise the compiler regroups
                     * the int16 additions into trees and spills the partial sums */
                    __asm__("" : "+x"(acc[t]));
                }
            }
        }
    }
    for (int t = 0; t < TB; t++) D[t] += bn_x86_hsum_epi32(_mm256_madd_epi16(acc[t], ones));
}

/* Rows [j, j+RB) of one G4 group against TB tokens over chunks [c0, c1), D[r * ldd + t]: the
 * same sums as bn_avx2_g4_tok, with each activation slice loaded once into a register and
 * shared by the RB rows.  For 2-3 tokens, where an unpacked slice feeds too few tokens to
 * pay for its loads (RB = 2: four rows x three tokens would not fit the registers). */
BN_AI void bn_avx2_g4_rt(const bn_tmat *w, int64_t j, const int RB, const bn_qrow *x, const int TB, int64_t c0,
                         int64_t c1, int32_t *D, int ldd) {
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const uint8_t *base = w->codes + (j / 4) * 4 * w->row_bytes + (j % 4) * 64;
    __m256i acc[4][4];
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) acc[r][t] = _mm256_setzero_si256();
    for (int64_t c = c0; c < c1; c++) {
        for (int h = 0; h < 2; h++) {
            __m256i raw[4];
            for (int r = 0; r < RB; r++) raw[r] = _mm256_load_si256((const __m256i *)(const void *)(base + c * 256 + 64 * r + 32 * h));
            for (int sl = 0; sl < 4; sl++) {
                __m256i a[4];
                for (int t = 0; t < TB; t++) a[t] = _mm256_loadu_si256((const __m256i *)(const void *)(x[t].q + 256 * c + 32 * h + 64 * sl));
                for (int r = 0; r < RB; r++) {
                    const __m256i k = _mm256_and_si256(_mm256_srli_epi16(raw[r], 6 - 2 * sl), m3);
                    for (int t = 0; t < TB; t++) {
                        acc[r][t] = _mm256_add_epi16(acc[r][t], _mm256_maddubs_epi16(k, a[t]));
                        __asm__("" : "+x"(acc[r][t]));
                    }
                }
            }
        }
    }
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) D[r * ldd + t] += bn_x86_hsum_epi32(_mm256_madd_epi16(acc[r][t], ones));
}

/* One segment of bn_x86_g4_multi (x86_common.h): rows [rs, re) against nt tokens over chunks
 * [c0, c1); 2-3 tokens pair the rows (they share each activation load), otherwise one row x
 * nt tokens. */
static void bn_avx2_g4_seg(const bn_tmat *w, int64_t rs, int64_t re, const bn_qrow *xt, int nt, int64_t c0,
                           int64_t c1, int32_t *D) {
    if (nt == 2 || nt == 3) { /* two rows share each activation load (rows pair up inside a group) */
        int64_t j = rs;
        if (j % 2) {
            if (nt == 3) bn_avx2_g4_tok(w, j, xt, 3, c0, c1, D);
            else bn_avx2_g4_tok(w, j, xt, 2, c0, c1, D);
            j++;
        }
        for (; j + 2 <= re; j += 2) {
            if (nt == 3) bn_avx2_g4_rt(w, j, 2, xt, 3, c0, c1, D + (j - rs) * 8, 8);
            else bn_avx2_g4_rt(w, j, 2, xt, 2, c0, c1, D + (j - rs) * 8, 8);
        }
        if (j < re) {
            if (nt == 3) bn_avx2_g4_tok(w, j, xt, 3, c0, c1, D + (j - rs) * 8);
            else bn_avx2_g4_tok(w, j, xt, 2, c0, c1, D + (j - rs) * 8);
        }
        return;
    }
#define BN_TOK(TB) bn_avx2_g4_tok(w, j, xt, TB, c0, c1, D + (j - rs) * 8)
    for (int64_t j = rs; j < re; j++) BN_X86_TB_SWITCH(nt, BN_TOK)
#undef BN_TOK
}

static void bn_avx2_ternary_g4(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok, float *y,
                               int64_t ldy) {
    int64_t j = r0;
    if (n_tok == 1) {
        int32_t D[4];
        for (; j < r1 && j % 4 != 0; j++) {
            bn_avx2_g4_tile(w, j, 1, x, 1, D);
            bn_avx2_store(w, j, 1, x, 1, D, y, ldy);
        }
        for (; j + 4 <= r1; j += 4) {
            bn_avx2_g4_tile(w, j, 4, x, 1, D);
            bn_avx2_store(w, j, 4, x, 1, D, y, ldy);
        }
        for (; j < r1; j++) {
            bn_avx2_g4_tile(w, j, 1, x, 1, D);
            bn_avx2_store(w, j, 1, x, 1, D, y, ldy);
        }
        return;
    }
    bn_x86_g4_multi(w, r0, r1, x, n_tok, y, ldy, bn_avx2_g4_seg);
}

static void bn_avx2_ternary_matmul(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok,
                                   float *y, int64_t ldy) {
    if (w->bscale) { /* per-block scales: rare (files whose TQ block scales differ) */
        bn_kernels_scalar.ternary_matmul(w, r0, r1, x, n_tok, y, ldy);
        return;
    }
    if (w->layout == BN_TMAT_G4X256) {
        bn_avx2_ternary_g4(w, r0, r1, x, n_tok, y, ldy);
        return;
    }
    int32_t D[16];
    int64_t j = r0;
    if (n_tok == 1) {
        for (; j + 4 <= r1; j += 4) {
            bn_avx2_tile(w, j, 4, x, 1, D);
            bn_avx2_store(w, j, 4, x, 1, D, y, ldy);
        }
        for (; j < r1; j++) {
            bn_avx2_tile(w, j, 1, x, 1, D);
            bn_avx2_store(w, j, 1, x, 1, D, y, ldy);
        }
        return;
    }
    for (; j < r1; j++) {
        int64_t t = 0;
        for (; t + 4 <= n_tok; t += 4) {
            bn_avx2_tile(w, j, 1, x + t, 4, D);
            bn_avx2_store(w, j, 1, x + t, 4, D, y + t * ldy, ldy);
        }
        switch (n_tok - t) {
        case 3: bn_avx2_tile(w, j, 1, x + t, 3, D); bn_avx2_store(w, j, 1, x + t, 3, D, y + t * ldy, ldy); break;
        case 2: bn_avx2_tile(w, j, 1, x + t, 2, D); bn_avx2_store(w, j, 1, x + t, 2, D, y + t * ldy, ldy); break;
        case 1: bn_avx2_tile(w, j, 1, x + t, 1, D); bn_avx2_store(w, j, 1, x + t, 1, D, y + t * ldy, ldy); break;
        default: break;
        }
    }
}

static void bn_avx2_act_quant(const float *x, int64_t n, int64_t n_pad, bn_qrow *r) {
    bn_x86_act_quant_avx2(x, n, n_pad, r);
}

static void bn_avx2_rmsnorm(const float *x, const float *w, int64_t n, float eps, float *y) {
    bn_x86_rmsnorm(x, w, n, eps, y);
}

static void bn_avx2_attention(const float *q, const void *k, const void *v, int kv_f16, int64_t n_kv,
                              int64_t head_dim, int64_t kv_stride, float scale, float *scratch, float *out) {
    bn_x86_attention(q, k, v, kv_f16, n_kv, head_dim, kv_stride, scale, scratch, out);
}

static void bn_avx2_attention_multi(int nq, const float *const *q, const int64_t *n_kv, const void *k, const void *v,
                                    int kv_f16, int64_t head_dim, int64_t kv_stride, float scale, float *scratch,
                                    int64_t sstride, float *const *out) {
    bn_x86_attention_multi(nq, q, n_kv, k, v, kv_f16, head_dim, kv_stride, scale, scratch, sstride, out);
}

static void bn_avx2_dense_prep(const bn_dmat *w, const float *x, void *out) { bn_x86_dense_prep(w, x, out); }

/* F16 rows [j, j+RB) of one G4X32 group: per row, elements 32c+[0,8) and +[16,24) go
 * to one accumulator, +[8,16) and +[24,32) to another, whatever RB is, so a row's
 * result does not depend on the row split.  A row length that is not a multiple of 32
 * ends in a zero-padded chunk (kernels.h), multiplied with the zero-padded copy xt of
 * the activations' tail (NULL when there is none). */
BN_AI void bn_avx2_f16_chunk(const uint8_t *p, const float *xc, const int RB, __m256 a[4][2]) {
    const __m256 x0 = _mm256_loadu_ps(xc), x1 = _mm256_loadu_ps(xc + 8);
    const __m256 x2 = _mm256_loadu_ps(xc + 16), x3 = _mm256_loadu_ps(xc + 24);
    for (int r = 0; r < RB; r++) {
        const __m128i *wr = (const __m128i *)(const void *)(p + 64 * r);
        a[r][0] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(wr)), x0, a[r][0]);
        a[r][1] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(wr + 1)), x1, a[r][1]);
        a[r][0] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(wr + 2)), x2, a[r][0]);
        a[r][1] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(wr + 3)), x3, a[r][1]);
    }
}

BN_AI void bn_avx2_f16_g4(const uint8_t *base, uint64_t stride, int64_t nc, const int RB, const float *x,
                          const float *xt, float *y) {
    __m256 a[4][2];
    for (int r = 0; r < RB; r++) a[r][0] = a[r][1] = _mm256_setzero_ps();
    for (int64_t c = 0; c < nc; c++) bn_avx2_f16_chunk(base + (uint64_t)c * stride, x + 32 * c, RB, a);
    if (xt) bn_avx2_f16_chunk(base + (uint64_t)nc * stride, xt, RB, a);
    for (int r = 0; r < RB; r++) y[r] = bn_x86_hsum_ps(_mm256_add_ps(a[r][0], a[r][1]));
}

static void bn_avx2_dense_g4(const bn_dmat *w, int64_t r0, int64_t r1, const void *xs, size_t xs_stride,
                             int64_t n_tok, float *y, int64_t ldy, float *scratch) {
    const int64_t rows4 = w->rows & ~(int64_t)3, nc = w->cols / 32, n = w->cols, tail = w->cols % 32;
    float xtail[BN_DENSE_TOK][32]; /* zero-padded copies of each token's last partial chunk */
    /* tokens in groups, the inner loop over a block of rows (each row summed the same
     * way whatever the batch: batching never changes a result) */
    for (int64_t t0 = 0; t0 < n_tok; t0 += BN_DENSE_TOK) {
        const int64_t nt = n_tok - t0 < BN_DENSE_TOK ? n_tok - t0 : BN_DENSE_TOK;
        bn_x86_f16_acts(xs, xs_stride, t0, nt, n, scratch);
        if (tail)
            for (int64_t t = 0; t < nt; t++)
                for (int k = 0; k < 32; k++) xtail[t][k] = k < tail ? scratch[t * n + 32 * nc + k] : 0.0f;
        float *yt = y + t0 * ldy;
#define BN_G4ROW(jj) (w->data + (uint64_t)((jj) / 4) * 4 * w->row_bytes + (uint64_t)((jj) % 4) * 64)
#define BN_TOKS(RB, base, stride)                                                                                 \
    for (int64_t t = 0; t < nt; t++)                                                                              \
    bn_avx2_f16_g4(base, stride, nc, RB, scratch + t * n, tail ? xtail[t] : NULL, yt + t * ldy + j)
        int64_t j = r0;
        for (; j < r1 && j < rows4 && j % 4 != 0; j++) BN_TOKS(1, BN_G4ROW(j), 256);
        for (; j + 4 <= r1 && j + 4 <= rows4; j += 4) BN_TOKS(4, BN_G4ROW(j), 256);
        for (; j < r1 && j < rows4; j++) BN_TOKS(1, BN_G4ROW(j), 256);
        /* the last rows % 4 rows are row-major (padded): chunk c at byte 64c of the row */
        for (; j < r1; j++) BN_TOKS(1, w->data + (uint64_t)j * w->row_bytes, 64);
#undef BN_TOKS
#undef BN_G4ROW
    }
}

static void bn_avx2_dense_matmul(const bn_dmat *w, int64_t r0, int64_t r1, const void *xs, size_t xs_stride,
                                 int64_t n_tok, float *y, int64_t ldy, float *scratch) {
    if (w->layout == BN_DMAT_G4X32) {
        bn_avx2_dense_g4(w, r0, r1, xs, xs_stride, n_tok, y, ldy, scratch);
        return;
    }
    bn_x86_dense_matmul(w, r0, r1, xs, xs_stride, n_tok, y, ldy, scratch);
}

/* ---- the screened output layer (kernels.h, bn_smat) ------------------------------------
 * Per block of 64: four VPMOVSXBW widen the int8 weights, four VPMADDWD against the int16
 * activations give eight int32 lane sums (exact: |q * xq| <= 127 * 32767, eight products
 * a lane), converted to float and accumulated with sigma by FMA.  RB rows share the
 * activation loads. */
/* Rows [j, j+RB) of one group of 4 (kernels.h layout: the group's blocks back to back). */
BN_AI void bn_avx2_screen_rows(const bn_smat *w, int64_t j, const int RB, const int16_t *xq, float xs,
                               const float *c, float *s, float *e) {
    __m256 acc[4];
    for (int r = 0; r < RB; r++) acc[r] = _mm256_setzero_ps();
    const int8_t *q = BN_SMAT_Q(w, j, 0);
    const float *sg = BN_SMAT_SIGMA(w, j, 0);
    for (int64_t b = 0; b < w->nb; b++) {
        const __m256i *xb = (const __m256i *)(const void *)(xq + BN_SCREEN_BLOCK * b);
        const __m256i x0 = _mm256_loadu_si256(xb), x1 = _mm256_loadu_si256(xb + 1);
        const __m256i x2 = _mm256_loadu_si256(xb + 2), x3 = _mm256_loadu_si256(xb + 3);
        for (int r = 0; r < RB; r++) {
            const __m128i *qb = (const __m128i *)(const void *)(q + 256 * b + 64 * r);
            const __m256i p0 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(qb)), x0);
            const __m256i p1 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(qb + 1)), x1);
            const __m256i p2 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(qb + 2)), x2);
            const __m256i p3 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(qb + 3)), x3);
            const __m256i d = _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3));
            acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(sg + 4 * b + r), _mm256_cvtepi32_ps(d), acc[r]);
        }
    }
    bn_x86_screen_finish(w, j, RB, acc, xs, c, s, e);
}

void bn_avx2_screen_matmul(const bn_smat *w, int64_t r0, int64_t r1, const int16_t *xq, float xs,
                                  const float *c, float *s, float *e) {
    int64_t j = r0;
    for (; j < r1 && j % 4 != 0; j++) bn_avx2_screen_rows(w, j, 1, xq, xs, c, s, e);
    for (; j + 4 <= r1; j += 4) bn_avx2_screen_rows(w, j, 4, xq, xs, c, s, e);
    for (; j < r1; j++) bn_avx2_screen_rows(w, j, 1, xq, xs, c, s, e);
}

/* The FFN activation: lib/fwd_act.h's loop compiled for this variant's vector width
 * (integer and float steps only, no contraction: the scalar bits). */
static void bn_avx2_ffn_act(int relu2, float *g, const float *u, int64_t n) { bn_ffn_act_loop(relu2, g, u, n); }

const bn_kernels bn_kernels_avx2 = {
    .name = "avx2",
    .isa = BITNET_ISA_AVX2,
    .act_quant = bn_avx2_act_quant,
    .ternary_matmul = bn_avx2_ternary_matmul,
    .ffn_act = bn_avx2_ffn_act,
    .f16_row = bn_x86_f16_row,
    .rmsnorm = bn_avx2_rmsnorm,
    .rope = NULL, /* scalar: a few hundred sin/cos per token */
    .attention = bn_avx2_attention,
    .attention_multi = bn_avx2_attention_multi,
    .dense_prep = bn_avx2_dense_prep,
    .dense_matmul = bn_avx2_dense_matmul,
    .screen_matmul = bn_avx2_screen_matmul,
    .tmat_repack = bn_tmat_repack_g4x256,
    .dmat_repack = bn_dmat_repack_g4x32,
    .screen_quant = bn_avx2_screen_quant,
};

#endif /* __x86_64__ */
