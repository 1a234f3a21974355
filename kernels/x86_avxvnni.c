/*
 * x86_avxvnni.c -- the AVX2 kernels with the 256-bit VPDPBUSD of AVX-VNNI (VEX encoded:
 * CPUs that have it without AVX-512, such as Intel's Alder Lake and later client cores).
 * Compiled with -mavx2 -mfma -mf16c -mavxvnni; selected at run time when CPUID and XCR0
 * allow it.  Only the ternary matmul on the G4X256 layout is this file's; everything
 * else, and the layouts, are the AVX2 variant's (dispatch.c fills the NULL slots from it).
 *
 * VPDPBUSD multiplies 32 unsigned bytes (codes 0/1/2) by 32 signed bytes (activations)
 * and adds each group of four products into an int32 lane without saturation: D is the
 * exact integer the scalar reference computes, with one instruction per 32 weights x
 * token where AVX2 needs VPMADDUBSW plus an int16 add (and a VPMADDWD every eight
 * chunks).  y = ((float)D - (float)S) / a * scale, so the results are the same bits.
 *
 * Half a G4X256 chunk (32 bytes of one row) gives, with shifts by 6/4/2/0 and a mask, the
 * codes of weights [0,32), [64,96), [128,160), [192,224) of the chunk (first half) or the
 * same +32 (second half), which meet 32 contiguous activations each.
 * Blocking: decode runs the four rows of a group together (each activation load feeds
 * four rows, two accumulators per row); several tokens run one row x up to eight tokens
 * (codes unpacked once per slice, activations as memory operands) inside the cache
 * blocking it shares with AVX2 (bn_x86_g4_multi: 128 rows, eight tokens, 2048-column
 * segments).
 */
#if defined(__x86_64__)
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__) || !defined(__AVXVNNI__)
#error "x86_avxvnni.c must be compiled with -mavx2 -mfma -mf16c -mavxvnni (kernels/kernels.cmake)"
#endif

#include "x86_common.h"

#include <string.h>

#define BN_AI static inline __attribute__((always_inline))

extern const bn_kernels bn_kernels_avx2;

BN_AI __m256i bn_vnni_slice(__m256i raw, int sl, __m256i m3) {
    return _mm256_and_si256(_mm256_srli_epi16(raw, 6 - 2 * sl), m3);
}

/* One token: rows [j, j+RB) of one group (RB = 4 from a group start, or 1), D[0..RB). */
BN_AI void bn_vnni_g4_one(const bn_tmat *w, int64_t j, const int RB, const int8_t *q, int32_t *D) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const int64_t nc = w->cols_pad / 256;
    const uint8_t *base = w->codes + (j / 4) * 4 * w->row_bytes + (j % 4) * 64;
    __m256i acc[4][2];
    for (int r = 0; r < RB; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int64_t c = 0; c < nc; c++) {
        for (int h = 0; h < 2; h++) {
            const int8_t *qh = q + 256 * c + 32 * h;
            const __m256i a0 = _mm256_loadu_si256((const __m256i *)(const void *)qh);
            const __m256i a1 = _mm256_loadu_si256((const __m256i *)(const void *)(qh + 64));
            const __m256i a2 = _mm256_loadu_si256((const __m256i *)(const void *)(qh + 128));
            const __m256i a3 = _mm256_loadu_si256((const __m256i *)(const void *)(qh + 192));
            for (int r = 0; r < RB; r++) {
                const __m256i raw = _mm256_load_si256((const __m256i *)(const void *)(base + c * 256 + 64 * r + 32 * h));
                acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], bn_vnni_slice(raw, 0, m3), a0);
                acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], bn_vnni_slice(raw, 1, m3), a1);
                acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], bn_vnni_slice(raw, 2, m3), a2);
                acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], bn_vnni_slice(raw, 3, m3), a3);
            }
        }
    }
    for (int r = 0; r < RB; r++) D[r] = bn_x86_hsum_epi32(_mm256_add_epi32(acc[r][0], acc[r][1]));
}

/* Row j of a group against TB <= 8 tokens over chunks [c0, c1), added to D[0..TB). */
BN_AI void bn_vnni_g4_tok(const bn_tmat *w, int64_t j, const bn_qrow *x, const int TB, int64_t c0, int64_t c1,
                          int32_t *D) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const uint8_t *base = w->codes + (j / 4) * 4 * w->row_bytes + (j % 4) * 64;
    __m256i acc[8];
    for (int t = 0; t < TB; t++) acc[t] = _mm256_setzero_si256();
    for (int64_t c = c0; c < c1; c++) {
        for (int h = 0; h < 2; h++) {
            const __m256i raw = _mm256_load_si256((const __m256i *)(const void *)(base + c * 256 + 32 * h));
            for (int sl = 0; sl < 4; sl++) {
                const __m256i k = bn_vnni_slice(raw, sl, m3);
                for (int t = 0; t < TB; t++) {
                    const int8_t *q = x[t].q + 256 * c + 32 * h + 64 * sl;
                    acc[t] = _mm256_dpbusd_avx_epi32(acc[t], k, _mm256_loadu_si256((const __m256i *)(const void *)q));
                }
            }
        }
    }
    for (int t = 0; t < TB; t++) D[t] += bn_x86_hsum_epi32(acc[t]);
}

BN_AI void bn_vnni_store(const bn_tmat *w, int64_t j, int RB, const bn_qrow *x, int TB, const int32_t *D, int ldd,
                         float *y, int64_t ldy) {
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++)
            y[t * ldy + j + r] = ((float)D[r * ldd + t] - (float)x[t].sum) / x[t].a * w->scale;
}

/* One segment of bn_x86_g4_multi (x86_common.h): one row x nt tokens at a time. */
static void bn_vnni_g4_seg(const bn_tmat *w, int64_t rs, int64_t re, const bn_qrow *xt, int nt, int64_t c0,
                           int64_t c1, int32_t *D) {
#define BN_TOK(TB) bn_vnni_g4_tok(w, j, xt, TB, c0, c1, D + (j - rs) * 8)
    for (int64_t j = rs; j < re; j++) BN_X86_TB_SWITCH(nt, BN_TOK)
#undef BN_TOK
}

static void bn_vnni_ternary_matmul(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok,
                                   float *y, int64_t ldy) {
    if (w->bscale || w->layout != BN_TMAT_G4X256) { /* per-block scales, or the portable layout */
        bn_kernels_avx2.ternary_matmul(w, r0, r1, x, n_tok, y, ldy);
        return;
    }
    if (n_tok > 1) {
        bn_x86_g4_multi(w, r0, r1, x, n_tok, y, ldy, bn_vnni_g4_seg);
        return;
    }
    int32_t D[4];
    int64_t j = r0;
    for (; j < r1 && j % 4 != 0; j++) { /* a split inside a group */
        bn_vnni_g4_one(w, j, 1, x[0].q, D);
        bn_vnni_store(w, j, 1, x, 1, D, 1, y, ldy);
    }
    for (; j + 4 <= r1; j += 4) {
        bn_vnni_g4_one(w, j, 4, x[0].q, D);
        bn_vnni_store(w, j, 4, x, 1, D, 1, y, ldy);
    }
    for (; j < r1; j++) {
        bn_vnni_g4_one(w, j, 1, x[0].q, D);
        bn_vnni_store(w, j, 1, x, 1, D, 1, y, ldy);
    }
}

const bn_kernels bn_kernels_avxvnni = {
    .name = "avxvnni",
    .isa = BITNET_ISA_AVXVNNI,
    .ternary_matmul = bn_vnni_ternary_matmul,
};

#endif /* __x86_64__ */
