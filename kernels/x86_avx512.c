/*
 * x86_avx512.c -- AVX-512 F/BW/VL + VNNI kernels (compiled with those flags only;
 * selected at run time by kernels/dispatch.c when CPUID and XCR0 allow it).
 *
 * Ternary matmul with VPDPBUSD.  A packed block (32 bytes = 128 codes, I2_S x128
 * order: code e at byte e%32, bits 7-2*(e/32)..6-2*(e/32)) is broadcast to both
 * 256-bit halves of a zmm.  A per-lane shift (VPSRLVW by 6 in the low half, 4 in the
 * high half; then 2 and 0) and a mask with 3 give the codes of groups 0|1 and 2|3,
 * which line up with the 64 contiguous activations q[128b .. 128b+64) and
 * q[128b+64 .. 128b+128): no activation shuffles at all.  VPDPBUSD multiplies the
 * unsigned codes (0/1/2) by the signed int8 activations and adds groups of four into
 * int32 lanes without saturation, so D is exact; y = ((float)D - (float)S) / a * scale
 * is then bit-identical to kernels/scalar.c.  One VPDPBUSD does 64 multiply-adds
 * where AVX2 needs VPMADDUBSW + VPADDW + VPMADDWD for 32.
 *
 * The variant's own layout is G16 (kernels.h): lane r of a register of codes holds
 * four codes of row r, and VPDPBUSD multiplies sixteen rows at once by four activations
 * broadcast from memory.  Decode runs one 16-row group at a time (four chains);
 * several tokens run in tiles of 2 groups x 8 tokens, so each unpacked register serves
 * eight tokens and each broadcast two groups (16 accumulators); the amx variant's steps
 * of fewer than 8 tokens come here too.  The x128 row code below serves matrices left
 * in rows.  Activation quantization
 * is 16 lanes with masked tails; the F16 output layer streams four rows at a time with
 * VCVTPH2PS + FMA on 16 lanes.  Everything else
 * is the shared AVX2-level code in x86_common.h compiled with EVEX encodings.
 */
#if defined(__x86_64__)
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || !defined(__AVX512VNNI__) || \
    !defined(__FMA__) || !defined(__F16C__)
#error "x86_avx512.c must be compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c"
#endif

#include "cpu.h"
#include "fwd_act.h"
#include "x86_common.h"
#include "x86_g16.h"

#define BN_AI static inline __attribute__((always_inline))

/* ---- activation quantization --------------------------------------------------------- */

static void bn_avx512_act_quant(const float *x, int64_t n, int64_t n_pad, bn_qrow *r) {
    __m512 m0 = _mm512_setzero_ps(), m1 = _mm512_setzero_ps();
    int64_t i = 0;
    /* MAXPS returns its second operand when the first is NaN: NaN never wins */
    for (; i + 32 <= n; i += 32) {
        m0 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), m0);
        m1 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i + 16)), m1);
    }
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        m0 = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(k, x + i)), m0);
    }
    const float a = bn_x86_act_scale(_mm512_reduce_max_ps(_mm512_max_ps(m0, m1)));
    const __m512 va = _mm512_set1_ps(a), lo = _mm512_set1_ps(-128.f), hi = _mm512_set1_ps(127.f);
    __m512i vsum = _mm512_setzero_si512();
    for (i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), va);
        p = _mm512_min_ps(_mm512_max_ps(p, lo), hi); /* NaN -> -128, as the reference */
        __m512i v = _mm512_maskz_mov_epi32(k, _mm512_cvtps_epi32(p));
        vsum = _mm512_add_epi32(vsum, v);
        _mm512_mask_cvtsepi32_storeu_epi8(r->q + i, k, v);
    }
    if (n_pad > n) memset(r->q + n, 0, (size_t)(n_pad - n));
    r->a = a;
    r->sum = _mm512_reduce_add_epi32(vsum);
}

/* ---- ternary matmul ------------------------------------------------------------------- */

/* D[r * TB + t] = sum(code * q) of rows j..j+RB-1 against tokens x[0..TB). */
BN_AI void bn_avx512_tile(const bn_tmat *w, int64_t j, const int RB, const bn_qrow *x, const int TB, int32_t *D) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m512i sh01 = _mm512_inserti64x4(_mm512_set1_epi16(6), _mm256_set1_epi16(4), 1);
    const __m512i sh23 = _mm512_inserti64x4(_mm512_set1_epi16(2), _mm256_setzero_si256(), 1);
    const int64_t nb = w->cols_pad / BN_TMAT_BLOCK;
    __m512i acc0[4][4], acc1[4][4];
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) acc0[r][t] = acc1[r][t] = _mm512_setzero_si512();
    for (int64_t b = 0; b < nb; b++) {
        __m512i c01[4], c23[4];
        for (int r = 0; r < RB; r++) {
            __m512i raw = _mm512_broadcast_i64x4(
                _mm256_loadu_si256((const __m256i *)(w->codes + (j + r) * w->row_bytes + 32 * b)));
            c01[r] = _mm512_and_si512(_mm512_srlv_epi16(raw, sh01), m3);
            c23[r] = _mm512_and_si512(_mm512_srlv_epi16(raw, sh23), m3);
        }
        for (int t = 0; t < TB; t++) {
            const int8_t *q = x[t].q + BN_TMAT_BLOCK * b;
            __m512i qa = _mm512_loadu_si512(q), qb = _mm512_loadu_si512(q + 64);
            for (int r = 0; r < RB; r++) {
                acc0[r][t] = _mm512_dpbusd_epi32(acc0[r][t], c01[r], qa);
                acc1[r][t] = _mm512_dpbusd_epi32(acc1[r][t], c23[r], qb);
            }
        }
    }
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++) D[r * TB + t] = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0[r][t], acc1[r][t]));
}

BN_AI void bn_avx512_store(const bn_tmat *w, int64_t j, int RB, const bn_qrow *x, int TB, const int32_t *D,
                           float *y, int64_t ldy) {
    for (int r = 0; r < RB; r++)
        for (int t = 0; t < TB; t++)
            y[t * ldy + j + r] = ((float)D[r * TB + t] - (float)x[t].sum) / x[t].a * w->scale;
}

/* One row tile (RB rows) against all n_tok tokens, 4 tokens at a time. */
BN_AI void bn_avx512_rows(const bn_tmat *w, int64_t j, const int RB, const bn_qrow *x, int64_t n_tok, float *y,
                          int64_t ldy) {
    int32_t D[16];
    int64_t t = 0;
    for (; t + 4 <= n_tok; t += 4) {
        bn_avx512_tile(w, j, RB, x + t, 4, D);
        bn_avx512_store(w, j, RB, x + t, 4, D, y + t * ldy, ldy);
    }
    switch (n_tok - t) {
    case 3: bn_avx512_tile(w, j, RB, x + t, 3, D); bn_avx512_store(w, j, RB, x + t, 3, D, y + t * ldy, ldy); break;
    case 2: bn_avx512_tile(w, j, RB, x + t, 2, D); bn_avx512_store(w, j, RB, x + t, 2, D, y + t * ldy, ldy); break;
    case 1: bn_avx512_tile(w, j, RB, x + t, 1, D); bn_avx512_store(w, j, RB, x + t, 1, D, y + t * ldy, ldy); break;
    default: break;
    }
}

/* Software prefetch of the 256-byte chunk pf bytes past p: four cache lines (the next
 * chunks of a G4X32 group, read front to back). */
static inline void bn_avx512_prefetch_chunk(const uint8_t *p, int pf) {
    _mm_prefetch((const char *)p + pf, _MM_HINT_T0);
    _mm_prefetch((const char *)p + pf + 64, _MM_HINT_T0);
    _mm_prefetch((const char *)p + pf + 128, _MM_HINT_T0);
    _mm_prefetch((const char *)p + pf + 192, _MM_HINT_T0);
}

/* ---- ternary matmul on the G16 layout (kernels.h) -------------------------------------
 * Lane r of a register of codes holds four consecutive codes of row r, so each VPDPBUSD
 * multiplies sixteen rows by four activations broadcast from memory (no activation
 * vectors, no sums across lanes).  A tile is RG groups (16 or 32 rows) x TB tokens:
 * every code register, made by one shift and one mask (or one GF2P8AFFINEQB), serves TB
 * tokens, and every broadcast serves RG groups: 2 x 8 accumulators.  One token
 * (decode) keeps four accumulators per group, one per shift, to hide VPDPBUSD latency,
 * and streams the group front to back with a prefetch PF bytes ahead.  The results of
 * rows in [lo, hi) are stored (16 lanes at a time, masked), with the scalar float steps:
 * y = ((float)D - (float)S) / a * scale. */
#define BN_G16_TBMAX 8 /* tokens per tile (12 was slower: twelve activation pointers do not fit the GPRs) */
/* The codes at bits 7-2k .. 6-2k of every byte of raw, as bytes 0..2 (k < 3): one
 * GF2P8AFFINEQB, whose matrix sends bit 6-2k to bit 0 and bit 7-2k to bit 1, where the
 * plain path needs a shift and a mask.  Written in asm so that this file is not compiled
 * with -mgfni (the compiler would then use GFNI anywhere it liked, and AVX-512 CPUs
 * without it exist: Skylake-SP, Cascade Lake); it runs only where CPUID lists GFNI. */
BN_AI __m512i bn_g16_gf_codes(__m512i raw, __m512i mat) {
    __m512i out;
    __asm__("vgf2p8affineqb $0, %2, %1, %0" : "=v"(out) : "v"(raw), "v"(mat));
    return out;
}

BN_AI void bn_g16_tile(const bn_tmat *w, int64_t g, const int RG, const bn_qrow *x, const int TB, float *y,
                       int64_t ldy, int64_t lo, int64_t hi, const int PF, const int GF) {
    /* PF: constant, or a run-time value; GF: unpack with bn_g16_gf_codes */
    /* NCH chains per accumulator (by shift) so that at least four VPDPBUSD are independent */
    const int NCH = RG * TB >= 8 ? 1 : RG * TB >= 4 ? 2 : 4;
    __m512i gm[3];
    for (int k = 0; k < 3; k++)
        gm[k] = _mm512_set1_epi64((long long)(((uint64_t)1 << (62 - 2 * k)) | ((uint64_t)2 << (54 - 2 * k))));
    const int64_t nc = w->cols_pad / 16, gbytes = 16 * w->row_bytes;
    const uint8_t *base = w->codes + g * gbytes;
    __m512i acc[16]; /* acc[(h * RG + i) * TB + t]: at most 16 (see NCH); a flat array GCC keeps in registers */
    for (int h = 0; h < NCH; h++)
        for (int i = 0; i < RG; i++)
            for (int t = 0; t < TB; t++) acc[(h * RG + i) * TB + t] = _mm512_setzero_si512();
    for (int64_t c = 0; c < nc; c++) {
        if (PF)
            for (int i = 0; i < RG; i++) _mm_prefetch((const char *)base + i * gbytes + 64 * c + PF, _MM_HINT_T0);
        for (int k = 0; k < 4; k++) {
            __m512i ck[2];
            for (int i = 0; i < RG; i++) {
                const __m512i raw = _mm512_load_si512((const void *)(base + i * gbytes + 64 * c));
                ck[i] = GF && k < 3 ? bn_g16_gf_codes(raw, gm[k]) : bn_g16_codes(raw, k);
            }
            for (int t = 0; t < TB; t++) {
                int32_t a4;
                memcpy(&a4, x[t].q + 16 * c + 4 * k, 4);
                const __m512i b = _mm512_set1_epi32(a4);
                for (int i = 0; i < RG; i++) {
                    __m512i *A = &acc[((k % NCH) * RG + i) * TB + t];
                    *A = _mm512_dpbusd_epi32(*A, ck[i], b);
                }
            }
        }
    }
    /* (through memory: with the float steps on the registers, GCC spilled inside the loop) */
    int32_t D[2][BN_G16_TBMAX][16] __attribute__((aligned(64)));
    for (int i = 0; i < RG; i++)
        for (int t = 0; t < TB; t++) {
            __m512i v = acc[i * TB + t];
            for (int h = 1; h < NCH; h++) v = _mm512_add_epi32(v, acc[(h * RG + i) * TB + t]);
            _mm512_store_si512((void *)D[i][t], v);
        }
    for (int i = 0; i < RG; i++) {
        const __mmask16 m = bn_g16_rows_mask(g + i, lo, hi);
        if (m)
            for (int t = 0; t < TB; t++) bn_g16_store(w, g + i, m, &x[t], D[i][t], y + t * ldy);
    }
}

/* One function per tile shape (not inlined into the loops below, so each one's registers
 * are allocated on their own: inlined, GCC spilled the loop counter and copied the
 * accumulators on every iteration), called through a table. */
typedef void (*bn_g16_fn)(const bn_tmat *, int64_t, const bn_qrow *, float *, int64_t, int64_t, int64_t, int);
#define BN_G16_FN(GF, RG, TB)                                                                                   \
    static __attribute__((noinline)) void bn_g16_##GF##_##RG##_##TB(const bn_tmat *w, int64_t g, const bn_qrow *x, \
                                                                     float *y, int64_t ldy, int64_t lo,         \
                                                                     int64_t hi, int pf) {                      \
        bn_g16_tile(w, g, RG, x, TB, y, ldy, lo, hi, pf, GF);                                                   \
    }
#define BN_G16_FNS(GF, RG)                                                                                  \
    BN_G16_FN(GF, RG, 1) BN_G16_FN(GF, RG, 2) BN_G16_FN(GF, RG, 3) BN_G16_FN(GF, RG, 4) BN_G16_FN(GF, RG, 5) \
    BN_G16_FN(GF, RG, 6) BN_G16_FN(GF, RG, 7) BN_G16_FN(GF, RG, 8)
BN_G16_FNS(0, 1)
BN_G16_FNS(0, 2)
BN_G16_FNS(1, 1)
BN_G16_FNS(1, 2)
#define BN_G16_ROW(GF, RG)                                                                                      \
    {bn_g16_##GF##_##RG##_1, bn_g16_##GF##_##RG##_2, bn_g16_##GF##_##RG##_3, bn_g16_##GF##_##RG##_4,            \
     bn_g16_##GF##_##RG##_5, bn_g16_##GF##_##RG##_6, bn_g16_##GF##_##RG##_7, bn_g16_##GF##_##RG##_8}
static const bn_g16_fn bn_g16_fns[2][2][BN_G16_TBMAX] = {{BN_G16_ROW(0, 1), BN_G16_ROW(0, 2)},
                                                         {BN_G16_ROW(1, 1), BN_G16_ROW(1, 2)}};

/* Decode: one group at a time, the prefetch distance a constant of each copy. */
#define BN_G16_DEC(GF, PF)                                                                                       \
    static __attribute__((noinline)) void bn_g16_dec_##GF##_##PF(const bn_tmat *w, int64_t g0, int64_t g1,        \
                                                                 const bn_qrow *x, float *y, int64_t ldy,         \
                                                                 int64_t lo, int64_t hi) {                        \
        for (int64_t g = g0; g < g1; g++) bn_g16_tile(w, g, 1, x, 1, y, ldy, lo, hi, PF, GF);                    \
    }
BN_G16_DEC(0, 0)
BN_G16_DEC(0, 2048)
BN_G16_DEC(0, 4096)
BN_G16_DEC(1, 0)
BN_G16_DEC(1, 2048)
BN_G16_DEC(1, 4096)
typedef void (*bn_g16_dec_fn)(const bn_tmat *, int64_t, int64_t, const bn_qrow *, float *, int64_t, int64_t, int64_t);
static const bn_g16_dec_fn bn_g16_decs[2][3] = {{bn_g16_dec_0_0, bn_g16_dec_0_2048, bn_g16_dec_0_4096},
                                                {bn_g16_dec_1_0, bn_g16_dec_1_2048, bn_g16_dec_1_4096}};

/* Rows [r0, r1): the groups that hold them, tokens in blocks of 8 (outer, so a block's
 * activations stay in L1 while the rows' weights are read from L2), two groups at a time. */
static void bn_avx512_ternary_g16(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok,
                                  float *y, int64_t ldy) {
    const int64_t lo = r0, hi = r1 < w->rows ? r1 : w->rows;
    if (hi <= lo) return;
    const int64_t g0 = lo / 16, g1 = (hi + 15) / 16;
    const int pf = bn_cpu_decode_prefetch(), gf = (bn_cpu_features() & BN_CPU_GFNI) != 0;
    if (n_tok == 1) {
        bn_g16_decs[gf][pf == 2048 ? 1 : pf == 4096 ? 2 : 0](w, g0, g1, x, y, ldy, lo, hi);
        return;
    }
    for (int64_t t0 = 0; t0 < n_tok; t0 += BN_G16_TBMAX) {
        const int64_t n = n_tok - t0 < BN_G16_TBMAX ? n_tok - t0 : BN_G16_TBMAX;
        const bn_qrow *xt = x + t0;
        float *yt = y + t0 * ldy;
        int64_t g = g0;
        for (; g + 2 <= g1; g += 2) bn_g16_fns[gf][1][n - 1](w, g, xt, yt, ldy, lo, hi, pf);
        if (g < g1) bn_g16_fns[gf][0][n - 1](w, g, xt, yt, ldy, lo, hi, pf);
    }
}

static void bn_avx512_ternary_matmul(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok,
                                     float *y, int64_t ldy) {
    if (w->bscale) { /* per-block scales: rare (files whose TQ block scales differ) */
        bn_kernels_scalar.ternary_matmul(w, r0, r1, x, n_tok, y, ldy);
        return;
    }
    if (w->layout == BN_TMAT_G16) {
        bn_avx512_ternary_g16(w, r0, r1, x, n_tok, y, ldy);
        return;
    }
    int64_t j = r0;
    if (n_tok == 1) {
        int32_t D[4];
        for (; j + 4 <= r1; j += 4) {
            bn_avx512_tile(w, j, 4, x, 1, D);
            bn_avx512_store(w, j, 4, x, 1, D, y, ldy);
        }
        for (; j < r1; j++) {
            bn_avx512_tile(w, j, 1, x, 1, D);
            bn_avx512_store(w, j, 1, x, 1, D, y, ldy);
        }
        return;
    }
    for (; j + 2 <= r1; j += 2) bn_avx512_rows(w, j, 2, x, n_tok, y, ldy);
    if (j < r1) bn_avx512_rows(w, j, 1, x, n_tok, y, ldy);
}

/* ---- dense layers: the F16 output layer on 16 lanes ----------------------------------- */

static void bn_avx512_f16_rows4(const uint8_t *w0, uint64_t rb, const float *x, int64_t n, float *y) {
    __m512 a[4][2];
    for (int r = 0; r < 4; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
        for (int r = 0; r < 4; r++) {
            const uint16_t *wr = (const uint16_t *)(const void *)(w0 + r * rb) + i;
            a[r][0] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)wr)), x0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wr + 16))), x1, a[r][1]);
        }
    }
    for (int r = 0; r < 4; r++) {
        const uint8_t *wr = w0 + r * rb;
        float s = _mm512_reduce_add_ps(_mm512_add_ps(a[r][0], a[r][1]));
        for (int64_t k = i; k < n; k++) s += bn_f16_to_f32(bn_rd_u16(wr + 2 * k)) * x[k];
        y[r] = s;
    }
}

/* One F16 row . f32 vector, summed exactly as each row of bn_avx512_f16_rows4 is. */
static float bn_avx512_f16_row1(const uint8_t *wr8, const float *x, int64_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    const uint16_t *wr = (const uint16_t *)(const void *)wr8;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wr + i))), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wr + i + 16))),
                             _mm512_loadu_ps(x + i + 16), a1);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < n; i++) s += bn_f16_to_f32(wr[i]) * x[i];
    return s;
}

/* F16 rows [j, j+RB) of one G4X32 group (RB = 4 from a group start, or 1): each row
 * sums elements 32c..32c+15 in one accumulator and 32c+16..32c+31 in another, whatever
 * RB is, so a row's result never depends on how rows were split among threads.  A row
 * length that is not a multiple of 32 ends in a zero-padded chunk (kernels.h) whose
 * activations are loaded with a mask.  pf > 0: software prefetch pf bytes ahead
 * (bn_cpu_dense_prefetch). */
BN_AI void bn_avx512_f16_g4(const bn_dmat *w, int64_t j, const int RB, const float *x, float *y, int pf) {
    const uint8_t *base = w->data + (uint64_t)(j / 4) * 4 * w->row_bytes + (uint64_t)(j % 4) * 64;
    const int64_t nc = w->cols / 32, tail = w->cols % 32;
    __m512 a[4][2];
    for (int r = 0; r < RB; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int64_t c = 0; c < nc + (tail != 0); c++) {
        const uint8_t *p = base + c * 256;
        if (pf && RB == 4) bn_avx512_prefetch_chunk(p, pf); /* the group's next KiBs */
        __m512 x0, x1;
        if (c < nc) {
            x0 = _mm512_loadu_ps(x + 32 * c);
            x1 = _mm512_loadu_ps(x + 32 * c + 16);
        } else {
            const uint32_t m = tail >= 32 ? 0xffffffffu : (1u << tail) - 1u;
            x0 = _mm512_maskz_loadu_ps((__mmask16)(m & 0xffffu), x + 32 * c);
            x1 = _mm512_maskz_loadu_ps((__mmask16)(m >> 16), x + 32 * c + 16);
        }
        for (int r = 0; r < RB; r++) {
            const __m256i *wr = (const __m256i *)(const void *)(p + 64 * r);
            a[r][0] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_load_si256(wr)), x0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_load_si256(wr + 1)), x1, a[r][1]);
        }
    }
    for (int r = 0; r < RB; r++) y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a[r][0], a[r][1]));
}

/* The f16 activations of tokens [t0, t0 + nt) as f32 rows of n floats in scratch. */
static void bn_avx512_f16_acts(const void *xs, size_t xs_stride, int64_t t0, int64_t nt, int64_t n, float *scratch) {
    for (int64_t t = 0; t < nt; t++) {
        const uint16_t *xh = (const uint16_t *)(const void *)((const uint8_t *)xs + (size_t)(t0 + t) * xs_stride);
        float *d = scratch + t * n;
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(xh + i))));
        for (; i < n; i++) d[i] = bn_f16_to_f32(xh[i]);
    }
}

/* Tokens in groups of BN_DENSE_TOK, the inner loop over each block of rows, so a batch
 * reads every row from memory once; each row is summed the same way whatever the batch
 * and the row range (batching never changes a result). */
static void bn_avx512_dense_g4(const bn_dmat *w, int64_t r0, int64_t r1, const void *xs, size_t xs_stride,
                               int64_t n_tok, float *y, int64_t ldy, float *scratch) {
    const int64_t rows4 = w->rows & ~(int64_t)3, n = w->cols;
    const int pf = bn_cpu_dense_prefetch();
    for (int64_t t0 = 0; t0 < n_tok; t0 += BN_DENSE_TOK) {
        const int64_t nt = n_tok - t0 < BN_DENSE_TOK ? n_tok - t0 : BN_DENSE_TOK;
        bn_avx512_f16_acts(xs, xs_stride, t0, nt, n, scratch);
        float *yt = y + t0 * ldy;
        int64_t j = r0;
        for (; j < r1 && j < rows4 && j % 4 != 0; j++)
            for (int64_t t = 0; t < nt; t++) bn_avx512_f16_g4(w, j, 1, scratch + t * n, yt + t * ldy + j, 0);
        for (; j + 4 <= r1 && j + 4 <= rows4; j += 4) /* the first token streams the group: it prefetches */
            for (int64_t t = 0; t < nt; t++) bn_avx512_f16_g4(w, j, 4, scratch + t * n, yt + t * ldy + j, t ? 0 : pf);
        for (; j < r1 && j < rows4; j++)
            for (int64_t t = 0; t < nt; t++) bn_avx512_f16_g4(w, j, 1, scratch + t * n, yt + t * ldy + j, 0);
        for (; j < r1; j++) { /* the last rows % 4 rows, row-major (padded), same summation order */
            const uint8_t *wr = w->data + (uint64_t)j * w->row_bytes;
            for (int64_t t = 0; t < nt; t++) {
                const float *xt = scratch + t * n;
                __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
                for (int64_t i = 0; i < n; i += 32) {
                    const int64_t left = n - i;
                    const uint32_t m = left >= 32 ? 0xffffffffu : (1u << left) - 1u;
                    a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(wr + 2 * i))),
                                         _mm512_maskz_loadu_ps((__mmask16)(m & 0xffffu), xt + i), a0);
                    a1 = _mm512_fmadd_ps(
                        _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(wr + 2 * i + 32))),
                        _mm512_maskz_loadu_ps((__mmask16)(m >> 16), xt + i + 16), a1);
                }
                yt[t * ldy + j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
            }
        }
    }
}

static void bn_avx512_dense_matmul(const bn_dmat *w, int64_t r0, int64_t r1, const void *xs, size_t xs_stride,
                                   int64_t n_tok, float *y, int64_t ldy, float *scratch) {
    if (w->layout == BN_DMAT_G4X32) {
        bn_avx512_dense_g4(w, r0, r1, xs, xs_stride, n_tok, y, ldy, scratch);
        return;
    }
    if (w->type != BITNET_TYPE_F16) {
        bn_x86_dense_matmul(w, r0, r1, xs, xs_stride, n_tok, y, ldy, scratch);
        return;
    }
    /* row-major F16: four rows at a time, the rest one by one with the same order */
    const int64_t n = w->cols;
    for (int64_t t0 = 0; t0 < n_tok; t0 += BN_DENSE_TOK) {
        const int64_t nt = n_tok - t0 < BN_DENSE_TOK ? n_tok - t0 : BN_DENSE_TOK;
        bn_avx512_f16_acts(xs, xs_stride, t0, nt, n, scratch);
        int64_t j = r0;
        for (; j + 4 <= r1; j += 4)
            for (int64_t t = 0; t < nt; t++)
                bn_avx512_f16_rows4(w->data + (uint64_t)j * w->row_bytes, w->row_bytes, scratch + t * n, n,
                                    y + (t0 + t) * ldy + j);
        for (; j < r1; j++)
            for (int64_t t = 0; t < nt; t++)
                y[(t0 + t) * ldy + j] = bn_avx512_f16_row1(w->data + (uint64_t)j * w->row_bytes, scratch + t * n, n);
    }
}

static void bn_avx512_rmsnorm(const float *x, const float *w, int64_t n, float eps, float *y) {
    bn_x86_rmsnorm(x, w, n, eps, y);
}

/* ---- attention over the KV cache, 16 lanes ---------------------------------------------
 * Same math and roundings as the scalar reference (q and the probabilities rounded to f16
 * with an f16 cache, as llama.cpp does), vectorised end to end: f16 K/V rows converted
 * 16 at a time, exp() by a polynomial, the probabilities' f16 rounding by VCVTPS2PH. */

/* exp(x) for x <= 0 (softmax arguments), relative error ~2e-7: x = n ln2 + r with
 * |r| <= ln2/2, a degree-6 polynomial for e^r, then the exponent n added. */
static inline __m512 bn_avx512_exp(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f)); /* e^-87 ~ 1.6e-38: still normal */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x); /* ln2 split in two parts */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __m512 bn_avx512_ld_kv(const uint8_t *row, int64_t d, int kv_f16, __mmask16 m) {
    if (kv_f16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)(const void *)row + d));
    return _mm512_maskz_loadu_ps(m, (const float *)(const void *)row + d);
}

/* The lane masks of a head's 16-lane vectors (the last one partial when head_dim % 16). */
static inline void bn_avx512_head_masks(int64_t head_dim, __mmask16 *mk) {
    for (int64_t c = 0; c * 16 < head_dim; c++) {
        int64_t left = head_dim - 16 * c;
        mk[c] = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
    }
}

/* A query as nv vectors, rounded to f16 first with an f16 cache (as the scalar reference). */
static inline void bn_avx512_load_q(const float *q, int64_t nv, const __mmask16 *mk, int kv_f16, __m512 *qv) {
    for (int64_t c = 0; c < nv; c++) {
        __m512 x = _mm512_maskz_loadu_ps(mk[c], q + 16 * c);
        if (kv_f16) x = _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        qv[c] = x;
    }
}

/* Softmax of n_kv scores in place; with an f16 cache the probabilities are rounded to f16
 * as the scalar reference does.  Shared by the single- and multi-query attention, so both
 * give the same bits. */
static inline void bn_avx512_softmax(float *scratch, int64_t n_kv, int kv_f16) {
    __m512 vmx = _mm512_set1_ps(-INFINITY);
    int64_t i;
    for (i = 0; i < n_kv; i += 16) {
        __mmask16 m = n_kv - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n_kv - i)) - 1);
        vmx = _mm512_mask_max_ps(vmx, m, vmx, _mm512_maskz_loadu_ps(m, scratch + i));
    }
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmx));
    __m512 vsum = _mm512_setzero_ps();
    for (i = 0; i < n_kv; i += 16) {
        __mmask16 m = n_kv - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n_kv - i)) - 1);
        __m512 e = _mm512_maskz_mov_ps(m, bn_avx512_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scratch + i), mx)));
        _mm512_mask_storeu_ps(scratch + i, m, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (i = 0; i < n_kv; i += 16) {
        __mmask16 m = n_kv - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n_kv - i)) - 1);
        __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, scratch + i), inv);
        if (kv_f16) p = _mm512_cvtph_ps(_mm512_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm512_mask_storeu_ps(scratch + i, m, p);
    }
}

/* Lane i of the result: the sum of the 16 lanes of v[i], by one fixed tree (halves of
 * 256 bits, then of 128 bits, then pairs within them) computed for 16 vectors at once:
 * about three instructions per sum where a horizontal reduction per vector takes ten. */
static inline __m512 bn_avx512_hsum16(const __m512 *v) {
    __m512 x[8], y[4];
    for (int m = 0; m < 8; m++) /* 128-bit blocks (0,1 | 2,3) of v[2m] and v[2m+1]: b0+b2, b1+b3 */
        x[m] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], 0xee));
    for (int m = 0; m < 4; m++) /* block j of y[m]: four partial sums of v[4m + j] */
        y[m] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * m], x[2 * m + 1], 0x88),
                             _mm512_shuffle_f32x4(x[2 * m], x[2 * m + 1], 0xdd));
    const __m512 u0 = _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], 0x44), _mm512_shuffle_ps(y[0], y[1], 0xee));
    const __m512 u1 = _mm512_add_ps(_mm512_shuffle_ps(y[2], y[3], 0x44), _mm512_shuffle_ps(y[2], y[3], 0xee));
    /* block j, lane i of f: the sum of v[4i + j] */
    const __m512 f = _mm512_add_ps(_mm512_shuffle_ps(u0, u1, 0x88), _mm512_shuffle_ps(u0, u1, 0xdd));
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(idx, f);
}

/* Scores q[a] . k_i * scale of nq queries for keys [0, nmax) (query a keeps i < n_kv[a]) into
 * scratch + a * sstride: each key row is loaded once for all the queries; a key's products
 * go to two accumulators (even and odd vectors of the head), whose sum is reduced with the
 * other 15 keys of its block of 16 by bn_avx512_hsum16.  The single- and multi-query
 * attention both call this, so their scores are the same bits. */
static inline __attribute__((always_inline)) void bn_avx512_scores_t(const int nq, __m512 (*qv)[BN_MAX_HEAD_DIM / 16],
                                                                     const int64_t *n_kv, int64_t nmax,
                                                                     const uint8_t *kb, size_t rs, const int kv_f16,
                                                                     int64_t nv, const __mmask16 *mk, float scale,
                                                                     float *scratch, int64_t sstride) {
    __m512 part[BN_ATTN_MQ][16];
    const __m512 vs = _mm512_set1_ps(scale);
    for (int64_t i0 = 0; i0 < nmax; i0 += 16) {
        const int nk = nmax - i0 < 16 ? (int)(nmax - i0) : 16;
        for (int kk = 0; kk < nk; kk++) {
            const uint8_t *kr = kb + (size_t)(i0 + kk) * rs;
            __m512 a0[BN_ATTN_MQ], a1[BN_ATTN_MQ];
            for (int a = 0; a < nq; a++) a0[a] = a1[a] = _mm512_setzero_ps();
            int64_t c = 0;
            for (; c + 2 <= nv; c += 2) {
                const __m512 k0 = bn_avx512_ld_kv(kr, 16 * c, kv_f16, mk[c]);
                const __m512 k1 = bn_avx512_ld_kv(kr, 16 * c + 16, kv_f16, mk[c + 1]);
                for (int a = 0; a < nq; a++) {
                    a0[a] = _mm512_fmadd_ps(qv[a][c], k0, a0[a]);
                    a1[a] = _mm512_fmadd_ps(qv[a][c + 1], k1, a1[a]);
                }
            }
            if (c < nv) {
                const __m512 k0 = bn_avx512_ld_kv(kr, 16 * c, kv_f16, mk[c]);
                for (int a = 0; a < nq; a++) a0[a] = _mm512_fmadd_ps(qv[a][c], k0, a0[a]);
            }
            for (int a = 0; a < nq; a++) part[a][kk] = _mm512_add_ps(a0[a], a1[a]);
        }
        for (int a = 0; a < nq; a++) {
            const int64_t left = n_kv[a] - i0;
            if (left <= 0) continue;
            for (int kk = nk; kk < 16; kk++) part[a][kk] = _mm512_setzero_ps();
            const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            _mm512_mask_storeu_ps(scratch + a * sstride + i0, m, _mm512_mul_ps(bn_avx512_hsum16(part[a]), vs));
        }
    }
}

/* The same with nq and the cache type constant in each copy (the accumulators of all the
 * queries then stay in registers). */
static void bn_avx512_scores(int nq, __m512 (*qv)[BN_MAX_HEAD_DIM / 16], const int64_t *n_kv, int64_t nmax,
                             const uint8_t *kb, size_t rs, int kv_f16, int64_t nv, const __mmask16 *mk, float scale,
                             float *scratch, int64_t sstride) {
#define BN_SCORES(NQ, F16) bn_avx512_scores_t(NQ, qv, n_kv, nmax, kb, rs, F16, nv, mk, scale, scratch, sstride)
    switch (nq * 2 + (kv_f16 != 0)) {
    case 2: BN_SCORES(1, 0); break;
    case 3: BN_SCORES(1, 1); break;
    case 4: BN_SCORES(2, 0); break;
    case 5: BN_SCORES(2, 1); break;
    case 6: BN_SCORES(3, 0); break;
    case 7: BN_SCORES(3, 1); break;
    case 8: BN_SCORES(4, 0); break;
    default: BN_SCORES(4, 1); break;
    }
#undef BN_SCORES
}

/* out[a] = sum_i p_a[i] v_i over positions [0, n[a]) for nb <= 2 queries and the NC vectors
 * [c0, c0 + NC) of the head; each lane sums its positions in order from 0 (the same bits
 * for one query or two).  NC is a constant at every call, so the accumulators stay in
 * registers. */
static inline __attribute__((always_inline)) void bn_avx512_pv(int nb, const float *p0, const float *p1, int64_t n0,
                                                               int64_t n1, const uint8_t *vb, size_t rs,
                                                               const int kv_f16, int64_t c0, const int NC, const __mmask16 *mk,
                                                               float *o0, float *o1) {
    __m512 s0[8], s1[8];
    for (int c = 0; c < NC; c++) s0[c] = s1[c] = _mm512_setzero_ps();
    const int64_t nlo = nb == 2 && n1 < n0 ? n1 : n0;
    int64_t i = 0;
    if (nb == 2)
        for (; i < nlo; i++) {
            const uint8_t *vr = vb + (size_t)i * rs;
            const __m512 w0 = _mm512_set1_ps(p0[i]), w1 = _mm512_set1_ps(p1[i]);
            for (int c = 0; c < NC; c++) {
                const __m512 vv = bn_avx512_ld_kv(vr, 16 * (c0 + c), kv_f16, mk[c0 + c]);
                s0[c] = _mm512_fmadd_ps(w0, vv, s0[c]);
                s1[c] = _mm512_fmadd_ps(w1, vv, s1[c]);
            }
        }
    for (int64_t i0 = i; i0 < n0; i0++) {
        const uint8_t *vr = vb + (size_t)i0 * rs;
        const __m512 w0 = _mm512_set1_ps(p0[i0]);
        for (int c = 0; c < NC; c++)
            s0[c] = _mm512_fmadd_ps(w0, bn_avx512_ld_kv(vr, 16 * (c0 + c), kv_f16, mk[c0 + c]), s0[c]);
    }
    if (nb == 2)
        for (int64_t i1 = i; i1 < n1; i1++) {
            const uint8_t *vr = vb + (size_t)i1 * rs;
            const __m512 w1 = _mm512_set1_ps(p1[i1]);
            for (int c = 0; c < NC; c++)
                s1[c] = _mm512_fmadd_ps(w1, bn_avx512_ld_kv(vr, 16 * (c0 + c), kv_f16, mk[c0 + c]), s1[c]);
        }
    for (int c = 0; c < NC; c++) {
        _mm512_mask_storeu_ps(o0 + 16 * (c0 + c), mk[c0 + c], s0[c]);
        if (nb == 2) _mm512_mask_storeu_ps(o1 + 16 * (c0 + c), mk[c0 + c], s1[c]);
    }
}

/* P . V for one or two queries: the head in passes of up to 8 vectors (128 dims), each
 * pass a copy with its vector count and the cache type constant. */
static void bn_avx512_pv_all(int nb, const float *p0, const float *p1, int64_t n0, int64_t n1, const uint8_t *vb,
                             size_t rs, int kv_f16, int64_t nv, const __mmask16 *mk, float *o0, float *o1) {
#define BN_PV(F16, NC) bn_avx512_pv(nb, p0, p1, n0, n1, vb, rs, F16, c0, NC, mk, o0, o1)
#define BN_PV_NC(F16)                   \
    switch (nv - c0 < 8 ? nv - c0 : 8) { \
    case 8: BN_PV(F16, 8); break;       \
    case 7: BN_PV(F16, 7); break;       \
    case 6: BN_PV(F16, 6); break;       \
    case 5: BN_PV(F16, 5); break;       \
    case 4: BN_PV(F16, 4); break;       \
    case 3: BN_PV(F16, 3); break;       \
    case 2: BN_PV(F16, 2); break;       \
    default: BN_PV(F16, 1); break;      \
    }
    for (int64_t c0 = 0; c0 < nv; c0 += 8) {
        if (kv_f16) {
            BN_PV_NC(1)
        } else {
            BN_PV_NC(0)
        }
    }
#undef BN_PV_NC
#undef BN_PV
}

static void bn_avx512_attention(const float *q, const void *k, const void *v, int kv_f16, int64_t n_kv,
                                int64_t head_dim, int64_t kv_stride, float scale, float *scratch, float *out) {
    const size_t esz = kv_f16 ? 2 : 4, rs = (size_t)kv_stride * esz;
    const int64_t nv = (head_dim + 15) / 16; /* 16-lane vectors per head (<= 32) */
    __m512 qv[1][BN_MAX_HEAD_DIM / 16];
    __mmask16 mk[BN_MAX_HEAD_DIM / 16];
    bn_avx512_head_masks(head_dim, mk);
    bn_avx512_load_q(q, nv, mk, kv_f16, qv[0]);
    bn_avx512_scores(1, qv, &n_kv, n_kv, k, rs, kv_f16, nv, mk, scale, scratch, 0);
    bn_avx512_softmax(scratch, n_kv, kv_f16);
    bn_avx512_pv_all(1, scratch, scratch, n_kv, n_kv, v, rs, kv_f16, nv, mk, out, out);
}

/* Up to BN_ATTN_MQ queries against the same keys and values (kernels.h, attention_multi):
 * the scores, softmax and weighted sums are the helpers bn_avx512_attention runs, so each
 * query's result is the same bits as its own attention() call; what is shared is the
 * loading of each key and value row (the scores of all queries, the weighted sums of two
 * queries at a time). */
static void bn_avx512_attention_multi(int nq, const float *const *q, const int64_t *n_kv, const void *k,
                                      const void *v, int kv_f16, int64_t head_dim, int64_t kv_stride, float scale,
                                      float *scratch, int64_t sstride, float *const *out) {
    const size_t esz = kv_f16 ? 2 : 4, rs = (size_t)kv_stride * esz;
    const int64_t nv = (head_dim + 15) / 16;
    __m512 qv[BN_ATTN_MQ][BN_MAX_HEAD_DIM / 16];
    __mmask16 mk[BN_MAX_HEAD_DIM / 16];
    int64_t nmax = 0;
    bn_avx512_head_masks(head_dim, mk);
    for (int a = 0; a < nq; a++) {
        bn_avx512_load_q(q[a], nv, mk, kv_f16, qv[a]);
        if (n_kv[a] > nmax) nmax = n_kv[a];
    }
    bn_avx512_scores(nq, qv, n_kv, nmax, k, rs, kv_f16, nv, mk, scale, scratch, sstride);
    for (int a = 0; a < nq; a++) bn_avx512_softmax(scratch + a * sstride, n_kv[a], kv_f16);
    for (int a = 0; a < nq; a += 2) {
        const int nb = nq - a < 2 ? 1 : 2;
        bn_avx512_pv_all(nb, scratch + a * sstride, scratch + (a + nb - 1) * sstride, n_kv[a], n_kv[a + nb - 1], v,
                         rs, kv_f16, nv, mk, out[a], out[a + nb - 1]);
    }
}

static void bn_avx512_dense_prep(const bn_dmat *w, const float *x, void *out) { bn_x86_dense_prep(w, x, out); }

/* The screened output layer (kernels.h, screen_matmul): the AVX2 variant's arithmetic with
 * 512-bit integer steps.  Lane l of a 512-bit VPMADDWD / VPDPWSSD over 32 weights holds
 * the products of AVX2 lane l (l < 8) or of the next 16 weights' lane l - 8; adding the
 * two halves gives every AVX2 eight-lane block sum d exactly (integers), and the float
 * steps after it are the AVX2 ones, so the results are the same bits. */
BN_AI void bn_avx512_screen_rows(const bn_smat *w, int64_t j, const int RB, const int16_t *xq, float xs,
                                 const float *c, float *s, float *e) {
    __m256 acc[4];
    for (int r = 0; r < RB; r++) acc[r] = _mm256_setzero_ps();
    const int8_t *q = BN_SMAT_Q(w, j, 0);
    const float *sg = BN_SMAT_SIGMA(w, j, 0);
    for (int64_t b = 0; b < w->nb; b++) {
        const int16_t *xb = xq + BN_SCREEN_BLOCK * b;
        const __m512i x01 = _mm512_loadu_si512(xb), x23 = _mm512_loadu_si512(xb + 32);
        for (int r = 0; r < RB; r++) {
            const int8_t *qb = q + 256 * b + 64 * r;
            const __m512i q01 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)qb));
            const __m512i q23 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(qb + 32)));
            const __m512i dd = _mm512_dpwssd_epi32(_mm512_madd_epi16(q01, x01), q23, x23);
            const __m256i d = _mm256_add_epi32(_mm512_castsi512_si256(dd), _mm512_extracti64x4_epi64(dd, 1));
            acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(sg + 4 * b + r), _mm256_cvtepi32_ps(d), acc[r]);
        }
    }
    bn_x86_screen_finish(w, j, RB, acc, xs, c, s, e);
}

static void bn_avx512_screen_matmul(const bn_smat *w, int64_t r0, int64_t r1, const int16_t *xq, float xs,
                                    const float *c, float *s, float *e) {
    int64_t j = r0;
    for (; j < r1 && j % 4 != 0; j++) bn_avx512_screen_rows(w, j, 1, xq, xs, c, s, e);
    for (; j + 4 <= r1; j += 4) bn_avx512_screen_rows(w, j, 4, xq, xs, c, s, e);
    for (; j < r1; j++) bn_avx512_screen_rows(w, j, 1, xq, xs, c, s, e);
}

/* The FFN activation: lib/fwd_act.h's loop compiled for this variant's vector width
 * (integer and float steps only, no contraction: the scalar bits). */
static void bn_avx512_ffn_act(int relu2, float *g, const float *u, int64_t n) { bn_ffn_act_loop(relu2, g, u, n); }

const bn_kernels bn_kernels_avx512 = {
    .name = "avx512",
    .isa = BITNET_ISA_AVX512,
    .act_quant = bn_avx512_act_quant,
    .ternary_matmul = bn_avx512_ternary_matmul,
    .ffn_act = bn_avx512_ffn_act,
    .f16_row = bn_x86_f16_row,
    .rmsnorm = bn_avx512_rmsnorm,
    .rope = NULL, /* scalar: a few hundred sin/cos per token */
    .attention = bn_avx512_attention,
    .attention_multi = bn_avx512_attention_multi,
    .dense_prep = bn_avx512_dense_prep,
    .dense_matmul = bn_avx512_dense_matmul,
    .screen_matmul = bn_avx512_screen_matmul,
    .tmat_repack = bn_tmat_repack_g16,
    .dmat_repack = bn_dmat_repack_g4x32,
    .screen_quant = bn_avx2_screen_quant,
};

#endif /* __x86_64__ */
