/*
 * test_kernels.c -- every kernel variant this machine runs against the scalar reference,
 * and the scalar reference against independent formulas.
 *
 * Held to (the contract in kernels/kernels.h and x86_common.h):
 *  - integers identical: act_quant's int8 activations, scale a and sum S; the prepared
 *    dense activations (f16 / Q8_0 / Q8_K bytes); ternary matmul results, which are a
 *    fixed float formula of exact integers, so bit-identical floats;
 *  - float reductions within a stated tolerance, because the summation order differs:
 *      dense dot products   |y - ref| <= 2e-5 * sum|w_i x_i| + 1e-6
 *      RMSNorm              |y - ref| <= 1e-6 * |ref| + 1e-7
 *      attention, f32 KV    |o - ref| <= 1e-5 * max|v| + 1e-7
 *      attention, f16 KV    |o - ref| <= 4e-3 * max|v| (probabilities are rounded to
 *                           f16, so an ulp-level score difference can flip a rounding)
 *  - the BITNET_ISA override and explicit variants select what is asked or report
 *    BITNET_E_UNSUPPORTED cleanly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cpu.h"
#include "internal.h"
#include "kernels.h"
#include "type_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rndf(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() & 0xffffff) / 16777216.f; }

/* The SIMD variants this machine runs (the scalar table excluded), from the registry's list. */
static int variants(const bn_kernels **out) {
    bitnet_isa all[16];
    size_t n_all = bitnet_isa_list(all, 16);
    assert_true(n_all >= 1 && n_all <= 16);
    int n = 0;
    for (size_t i = 0; i < n_all; i++) {
        if (all[i] == BITNET_ISA_SCALAR) continue;
        const bn_kernels *k = bn_kernels_get(all[i]);
        assert_int_equal(k != NULL, bitnet_isa_supported(all[i]) != 0);
        if (k) {
            assert_int_equal(k->isa, all[i]);
            out[n++] = k;
        }
    }
    return n;
}

static const bn_kernels *scalar(void) {
    const bn_kernels *s = bn_kernels_get(BITNET_ISA_SCALAR);
    assert_non_null(s);
    assert_int_equal(s->isa, BITNET_ISA_SCALAR);
    return s;
}

static int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

static void fill_floats(float *x, int64_t n, int kind) {
    for (int64_t i = 0; i < n; i++) x[i] = rndf(-3.f, 3.f);
    if (kind == 1) for (int64_t i = 0; i < n; i++) x[i] = 0.f;              /* all zero      */
    if (kind == 2) for (int64_t i = 0; i < n; i++) x[i] = rndf(-1e-7f, 1e-7f); /* tiny: m=1e-5 */
    if (kind == 3 && n > 2) { x[n / 2] = NAN; x[0] = 1000.f; }               /* NaN ignored   */
    if (kind == 4 && n > 1) x[n - 1] = INFINITY;                             /* a = 0         */
    if (kind == 5) for (int64_t i = 0; i < n; i++) x[i] = (float)((int)rndf(-5.f, 5.f)) * 0.5f; /* ties */
    if (kind == 6) for (int64_t i = 0; i < n; i++) x[i] = 1.f;   /* q = 127 everywhere  */
    if (kind == 7) for (int64_t i = 0; i < n; i++) x[i] = -1.f;  /* q = -127 everywhere */
    if (kind == 8) for (int64_t i = 0; i < n; i++) x[i] = NAN;   /* q = -128 everywhere */
}

/* Overrides for the extreme-value ternary cases: every code (-1: random) and every
 * activation row's fill kind (-1: the usual mix). */
static int g_code = -1, g_fill = -1;

/* ---- act_quant --------------------------------------------------------------------------- */

static void test_act_quant(void **state) {
    (void)state;
    const bn_kernels *v[16];
    int nv = variants(v);
    const bn_kernels *s = scalar();
    static const int64_t ns[] = {1, 7, 8, 15, 16, 31, 32, 33, 100, 128, 255, 256, 1536, 2560, 2561, 6912};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        for (int kind = 0; kind < 6; kind++) {
            int64_t n = ns[a], n_pad = round_up(n, 128);
            float *x = malloc((size_t)n * sizeof *x);
            int8_t *q0 = malloc((size_t)n_pad), *q1 = malloc((size_t)n_pad);
            fill_floats(x, n, kind);
            bn_qrow r0 = {.q = q0};
            s->act_quant(x, n, n_pad, &r0);
            /* the reference against its definition */
            int32_t sum = 0;
            for (int64_t i = 0; i < n; i++) sum += q0[i];
            assert_int_equal(sum, r0.sum);
            for (int64_t i = n; i < n_pad; i++) assert_int_equal(q0[i], 0);
            if (kind == 0) {
                double m = 0;
                for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
                assert_true(r0.a == (float)(127.0 / m));
                for (int64_t i = 0; i < n; i++) assert_true(fabsf(x[i] * r0.a - (float)q0[i]) <= 0.5f);
            }
            for (int k = 0; k < nv; k++) {
                memset(q1, 0x55, (size_t)n_pad);
                bn_qrow r1 = {.q = q1};
                v[k]->act_quant(x, n, n_pad, &r1);
                if (memcmp(q0, q1, (size_t)n_pad) != 0 || r0.sum != r1.sum || memcmp(&r0.a, &r1.a, 4) != 0)
                    fail_msg("%s act_quant n=%lld kind=%d differs from scalar", v[k]->name, (long long)n, kind);
            }
            free(x);
            free(q0);
            free(q1);
        }
    }
}

/* ---- ternary matmul ---------------------------------------------------------------------- */

typedef struct tcase {
    bn_tmat w;
    int8_t *vals; /* rows * cols ternary values, for the independent check */
} tcase;

static void tmat_make(tcase *c, int64_t rows, int64_t cols, int per_block) {
    bn_tmat *w = &c->w;
    memset(c, 0, sizeof *c);
    w->rows = rows;
    w->cols = cols;
    w->cols_pad = round_up(cols, BN_TMAT_BLOCK);
    w->row_bytes = w->cols_pad / 4;
    w->codes = aligned_alloc(64, (size_t)round_up(rows * w->row_bytes, 64));
    c->vals = malloc((size_t)(rows * cols));
    memset(w->codes, 0x55, (size_t)(rows * w->row_bytes)); /* code 1 everywhere = padding */
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t e = 0; e < cols; e++) {
            int code = g_code >= 0 ? g_code : (int)(rnd() % 3);
            c->vals[r * cols + e] = (int8_t)(code - 1);
            int64_t b = e / 128, i = e % 128;
            uint8_t *byte = w->codes + r * w->row_bytes + 32 * b + i % 32;
            int sh = 6 - 2 * (int)(i / 32);
            *byte = (uint8_t)((*byte & ~(3 << sh)) | (code << sh));
        }
    }
    w->scale = rndf(0.5f, 2.f);
    if (per_block) {
        int64_t nsb = cols / BN_TQ_BLOCK;
        w->bscale = malloc((size_t)(rows * nsb) * sizeof(float));
        for (int64_t i = 0; i < rows * nsb; i++) w->bscale[i] = rndf(0.1f, 2.f);
    }
}

static void tmat_free(tcase *c) {
    free(c->w.codes);
    free(c->w.bscale);
    free(c->vals);
}

static void check_ternary(int64_t rows, int64_t cols, int64_t n_tok, int per_block, const bn_kernels **v, int nv) {
    const bn_kernels *s = scalar();
    tcase c;
    tmat_make(&c, rows, cols, per_block);
    int64_t n_pad = bn_act_pad(cols); /* what the forward pass pads to (kernels.h) */
    bn_qrow *x = calloc((size_t)n_tok, sizeof *x);
    float *xf = malloc((size_t)cols * sizeof *xf);
    for (int64_t t = 0; t < n_tok; t++) {
        x[t].q = malloc((size_t)n_pad);
        fill_floats(xf, cols, g_fill >= 0 ? g_fill : t % 3 == 2 ? 5 : 0);
        s->act_quant(xf, cols, n_pad, &x[t]);
    }
    const int64_t ldy = rows + 3;
    float *y0 = malloc((size_t)(n_tok * ldy) * sizeof(float)), *y1 = malloc((size_t)(n_tok * ldy) * sizeof(float));
    for (int64_t i = 0; i < n_tok * ldy; i++) y0[i] = -7.f;
    s->ternary_matmul(&c.w, 0, rows, x, n_tok, y0, ldy);
    /* the reference against sum((code - 1) * q) computed here */
    for (int64_t t = 0; t < n_tok; t++) {
        for (int64_t r = 0; r < rows; r++) {
            float want;
            if (!per_block) {
                int32_t d = 0;
                for (int64_t e = 0; e < cols; e++) d += c.vals[r * cols + e] * x[t].q[e];
                want = (float)d / x[t].a * c.w.scale;
                assert_true(fabsf(y0[t * ldy + r] - want) <= 1e-5f * (fabsf(want) + 1.f));
            } else {
                double acc = 0;
                for (int64_t sb = 0; sb < cols / 256; sb++) {
                    int32_t d = 0;
                    for (int64_t e = 256 * sb; e < 256 * sb + 256; e++) d += c.vals[r * cols + e] * x[t].q[e];
                    acc += (double)d * c.w.bscale[r * (cols / 256) + sb];
                }
                want = (float)(acc / x[t].a);
                assert_true(fabsf(y0[t * ldy + r] - want) <= 1e-4f * (fabsf(want) + 1.f));
            }
        }
        for (int64_t r = rows; r < ldy; r++) assert_true(y0[t * ldy + r] == -7.f);
    }
    for (int k = 0; k < nv; k++)
      for (int lay = 0; lay < 3; lay++) {
        /* lay 1: the variant's own repacked layout (tmat_repack), when it has one and the
         * shape fits it; lay 2: that layout with the activations packed (act_pack), when
         * the variant has a many-token path; the results must still equal scalar's bit for bit */
        bn_tmat wk = c.w;
        int8_t *pk = NULL;
        if (lay == 2) {
            if (!v[k]->act_pack) continue;
            pk = aligned_alloc(64, BN_ACT_PACK_BYTES(n_tok, n_pad));
            assert_non_null(pk);
            memset(pk, 0x5a, BN_ACT_PACK_BYTES(n_tok, n_pad)); /* act_pack must write every byte it reads */
            v[k]->act_pack(x, n_tok, n_pad, pk);
            x[0].pk = pk;
            x[0].pk_pad = n_pad;
        }
        if (lay) {
            if (!v[k]->tmat_repack) continue;
            size_t nb = (size_t)round_up(rows * c.w.row_bytes, 64);
            wk.codes = aligned_alloc(64, nb);
            memcpy(wk.codes, c.w.codes, (size_t)(rows * c.w.row_bytes));
            assert_int_equal(v[k]->tmat_repack(&wk), BITNET_OK);
            if (wk.layout == BN_TMAT_ROWS) {
                free(wk.codes);
                free(pk);
                x[0].pk = NULL;
                continue;
            }
        }
        /* whole range, then sub-ranges (work split by rows, also inside a group of rows)
         * that must leave the other rows alone */
        for (int pass = 0; pass < 3; pass++) {
            int64_t r0 = pass == 1 ? rows / 3 : pass == 2 ? rows > 2 : 0;
            int64_t r1 = pass == 1 ? rows - rows / 4 : pass == 2 ? rows - (rows > 2) : rows;
            for (int64_t i = 0; i < n_tok * ldy; i++) y1[i] = -7.f;
            v[k]->ternary_matmul(&wk, r0, r1, x, n_tok, y1, ldy);
            for (int64_t t = 0; t < n_tok; t++) {
                for (int64_t r = 0; r < ldy; r++) {
                    float got = y1[t * ldy + r], want = (r >= r0 && r < r1) ? y0[t * ldy + r] : -7.f;
                    if (memcmp(&got, &want, 4) != 0)
                        fail_msg("%s ternary (layout pass %d) %lldx%lld n_tok=%lld bscale=%d rows [%lld,%lld): "
                                 "y[%lld][%lld] = %.9g, scalar %.9g",
                                 v[k]->name, lay, (long long)rows, (long long)cols, (long long)n_tok, per_block,
                                 (long long)r0, (long long)r1, (long long)t, (long long)r, (double)got, (double)want);
                }
            }
        }
        if (lay) free(wk.codes);
        free(pk);
        x[0].pk = NULL;
    }
    for (int64_t t = 0; t < n_tok; t++) free(x[t].q);
    free(x);
    free(xf);
    free(y0);
    free(y1);
    tmat_free(&c);
}

/* The largest partial sums the integer kernels can meet: every weight +1 or -1 against
 * activations all 127, all -127 or all -128 (NaN inputs), over 4096 columns (a kernel
 * that sums int16 lanes over several blocks must not overflow anywhere: the -128 case
 * with codes +1 reaches the int16 limit exactly in a lane summed over 2048 columns). */
static void test_ternary_extremes(void **state) {
    (void)state;
    const bn_kernels *v[16];
    int nv = variants(v);
    static const int codes[] = {2, 0}, fills[] = {6, 7, 8};
    static const int64_t toks[] = {1, 2, 8, 9, 17};
    for (size_t a = 0; a < 2; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t c = 0; c < sizeof toks / sizeof toks[0]; c++) {
                g_code = codes[a];
                g_fill = fills[b];
                check_ternary(8, 4096, toks[c], 0, v, nv);
            }
    g_code = g_fill = -1;
}

static void test_ternary_matmul(void **state) {
    (void)state;
    const bn_kernels *v[16];
    int nv = variants(v);
    static const int64_t rows[] = {1, 3, 4, 5, 8, 17};
    static const int64_t cols[] = {128, 100, 256, 300, 384, 640, 1000};
    for (size_t a = 0; a < sizeof rows / sizeof rows[0]; a++)
        for (size_t b = 0; b < sizeof cols / sizeof cols[0]; b++)
            for (int64_t n_tok = 1; n_tok <= 9; n_tok++) check_ternary(rows[a], cols[b], n_tok, 0, v, nv);
    /* model-like shapes, decode and a prefill tile */
    check_ternary(64, 2560, 1, 0, v, nv);
    check_ternary(33, 2560, 13, 0, v, nv);
    check_ternary(16, 6912, 2, 0, v, nv);
    check_ternary(36, 2560, 13, 0, v, nv); /* repackable shapes (rows % 4, cols % 256) */
    check_ternary(260, 4352, 19, 0, v, nv); /* several row blocks, token blocks and column segments */
    check_ternary(8, 1000, 5, 0, v, nv);
    check_ternary(12, 6912, 1, 0, v, nv);
    /* the 3B shape's rows (3200, 8640: not multiples of 256) and odd row counts, which
     * the repackers pad (dummy rows, zero-weight codes) */
    check_ternary(8, 3200, 1, 0, v, nv);
    check_ternary(6, 8640, 1, 0, v, nv);
    check_ternary(13, 3200, 5, 0, v, nv);
    /* many-token paths (act_pack): token tiles of 16 whole, partial and odd in number, row
     * blocks of 32 whole and partial, one pass and several over the tokens */
    check_ternary(32, 512, 16, 0, v, nv);
    check_ternary(48, 1536, 33, 0, v, nv);
    check_ternary(100, 768, 47, 0, v, nv);
    check_ternary(70, 3200, 130, 0, v, nv);
    check_ternary(20, 8640, 17, 0, v, nv);
    check_ternary(40, 1536, 64, 0, v, nv); /* the last count of 32-token groups, and the first past it */
    check_ternary(36, 1024, 65, 0, v, nv);
    /* the same kernels without the GFNI unpacking (AVX-512 CPUs without GFNI exist), when
     * this CPU has it: decode, every tile width, two groups and one */
    if (bn_cpu_features() & BN_CPU_GFNI) {
        bn_cpu_mask(BN_CPU_GFNI);
        for (int64_t n_tok = 1; n_tok <= 9; n_tok++) check_ternary(17, 640, n_tok, 0, v, nv);
        check_ternary(260, 4352, 19, 0, v, nv);
        check_ternary(13, 3200, 5, 0, v, nv);
        bn_cpu_mask(0);
    }
    /* per-block scales (TQ files whose block scales differ) */
    check_ternary(7, 512, 1, 1, v, nv);
    check_ternary(5, 768, 6, 1, v, nv);
    check_ternary(8, 512, 3, 1, v, nv); /* a repackable shape: must stay in rows for the scalar code */
}

/* The G16 layout as kernels.h defines it, read weight by weight: group G chunk c byte
 * 4r + b holds row 16G + r, column 16c + 4k + b at bits 7-2k .. 6-2k; the rows past
 * `rows` and the columns past cols_pad of the source are code 1.  Checked against the
 * x128 source for shapes that need both kinds of padding. */
static void test_layout_g16(void **state) {
    (void)state;
    static const int64_t shapes[][2] = {{1, 128}, {16, 256}, {17, 384}, {35, 640}, {48, 3200}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t rows = shapes[si][0], cols = shapes[si][1], cols_pad = round_up(cols, 128), rb = cols_pad / 4;
        bn_tmat w = {0};
        w.rows = rows;
        w.cols = cols;
        w.cols_pad = cols_pad;
        w.row_bytes = rb;
        w.scale = 1.0f;
        w.codes = aligned_alloc(64, (size_t)round_up(rows * rb, 64));
        assert_non_null(w.codes);
        uint8_t *src = malloc((size_t)(rows * rb));
        assert_non_null(src);
        uint32_t r32 = 99u + (uint32_t)si;
        for (int64_t i = 0; i < rows * rb; i++) {
            uint8_t b = 0;
            for (int e = 0; e < 4; e++) {
                r32 = r32 * 1664525u + 1013904223u;
                b = (uint8_t)(b << 2 | (r32 >> 24) % 3);
            }
            src[i] = w.codes[i] = b;
        }
        assert_int_equal(bn_tmat_repack_g16(&w), BITNET_OK);
        assert_int_equal(w.layout, BN_TMAT_G16);
        assert_int_equal(w.cols_pad, round_up(cols, 256));
        for (int64_t r = 0; r < round_up(rows, 16); r++)
            for (int64_t col = 0; col < w.cols_pad; col++) {
                const uint8_t *chunk = w.codes + (r / 16) * 16 * w.row_bytes + 64 * (col / 16);
                const int k = (int)((col % 16) / 4);
                const unsigned got = (chunk[4 * (r % 16) + col % 4] >> (6 - 2 * k)) & 3u;
                unsigned want = 1;
                if (r < rows && col < cols_pad)
                    want = (src[r * rb + 32 * (col / 128) + col % 32] >> (6 - 2 * ((col % 128) / 32))) & 3u;
                if (got != want)
                    fail_msg("G16 %lldx%lld: row %lld col %lld holds %u, want %u", (long long)rows, (long long)cols,
                             (long long)r, (long long)col, got, want);
            }
        free(src);
        free(w.codes);
    }
}

/* ffn_act: every variant gives the scalar table's bits (lib/fwd_act.h's loop compiled
 * for other vector widths must not contract or reorder), on wide ranges, special values
 * and lengths with vector tails. */
static void test_ffn_act(void **state) {
    (void)state;
    const bn_kernels *v[16];
    int nv = variants(v);
    const bn_kernels *s = scalar();
    static const int64_t ns[] = {1, 7, 16, 33, 100, 4096 + 5};
    static const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 87.0f, -87.0f, 88.5f, -88.5f, 1e30f, -1e30f,
                                    INFINITY, -INFINITY, NAN, 3.0f, -3.0f};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        const int64_t n = ns[a];
        float *g = malloc((size_t)n * sizeof(float)), *u = malloc((size_t)n * sizeof(float));
        float *g0 = malloc((size_t)n * sizeof(float)), *g1 = malloc((size_t)n * sizeof(float));
        assert_true(g && u && g0 && g1);
        uint32_t r = 17u + (uint32_t)n;
        for (int64_t i = 0; i < n; i++) {
            r = r * 1664525u + 1013904223u;
            g[i] = i < (int64_t)(sizeof special / sizeof special[0]) ? special[i]
                                                                      : ((float)(r >> 8) / 16777216.0f - 0.5f) * 40.0f;
            r = r * 1664525u + 1013904223u;
            u[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 4.0f;
        }
        for (int relu2 = 0; relu2 < 2; relu2++) {
            memcpy(g0, g, (size_t)n * sizeof(float));
            s->ffn_act(relu2, g0, u, n);
            for (int k = 0; k < nv; k++) {
                memcpy(g1, g, (size_t)n * sizeof(float));
                v[k]->ffn_act(relu2, g1, u, n);
                for (int64_t i = 0; i < n; i++)
                    if (memcmp(&g0[i], &g1[i], sizeof(float)) != 0)
                        fail_msg("%s ffn_act(relu2=%d) n=%lld [%lld]: %.9g, scalar %.9g (input %.9g)", v[k]->name,
                                 relu2, (long long)n, (long long)i, (double)g1[i], (double)g0[i], (double)g[i]);
            }
        }
        free(g);
        free(u);
        free(g0);
        free(g1);
    }
}

/* f16_row: every variant gives bn_f32_to_f16's bits (the scalar table's), on the edges of
 * f16's range: subnormal results, ties, overflow to inf, inf and NaNs with payloads. */
static void test_f16_row(void **state) {
    (void)state;
    const bn_kernels *v[16];
    int nv = variants(v);
    static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x33000000u, 0x33000001u, 0x387fe000u, 0x387ff000u,
                                       0x38800000u, 0x3f801000u, 0x3f803000u, 0x477fe000u, 0x477ff000u, 0x477fefffu,
                                       0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u, 0xffc12345u, 0x7f7fffffu};
    const int64_t n = 1000 + 3;
    float *x = malloc((size_t)n * sizeof(float));
    uint16_t *y0 = malloc((size_t)n * 2), *y1 = malloc((size_t)n * 2);
    assert_true(x && y0 && y1);
    uint32_t r = 4242u;
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        if (i < (int64_t)(sizeof special / sizeof special[0])) {
            b = special[i];
        } else {
            r = r * 1664525u + 1013904223u;
            b = (r & 0x80000000u) | (0x30000000u + (r >> 4) % 0x18000000u); /* 2^-31 .. beyond 65504 */
        }
        memcpy(&x[i], &b, 4);
    }
    scalar()->f16_row(x, y0, n);
    for (int64_t i = 0; i < n; i++) assert_int_equal(y0[i], bn_f32_to_f16(x[i]));
    for (int k = 0; k < nv; k++) {
        memset(y1, 0, (size_t)n * 2);
        v[k]->f16_row(x, y1, n);
        for (int64_t i = 0; i < n; i++)
            if (y0[i] != y1[i])
                fail_msg("%s f16_row [%lld] of %.9g: %04x, bn_f32_to_f16 %04x", v[k]->name, (long long)i, (double)x[i],
                         y1[i], y0[i]);
    }
    free(x);
    free(y0);
    free(y1);
}

/* ---- dense layers ------------------------------------------------------------------------ */

static void check_dense(uint32_t type, int64_t rows, int64_t cols, int64_t n_tok, const bn_kernels **v, int nv) {
    const bn_kernels *s = scalar();
    const bn_type_traits *tr = bn_type_traits_get(type);
    assert_non_null(tr);
    uint64_t rb = bn_row_size(type, cols);
    uint8_t *data = malloc((size_t)(rb * (uint64_t)rows) + 64);
    float *wf = malloc((size_t)(rows * cols) * sizeof(float));
    for (int64_t i = 0; i < rows * cols; i++) wf[i] = rndf(-1.f, 1.f);
    if (tr->from_float) {
        tr->from_float(wf, data, rows * cols);
    } else { /* Q4_K: random bytes with sane f16 super-block scales */
        for (uint64_t i = 0; i < rb * (uint64_t)rows; i++) data[i] = (uint8_t)rnd();
        for (int64_t b = 0; b < rows * cols / 256; b++) {
            uint16_t d = bn_f32_to_f16(0.01f), dm = bn_f32_to_f16(0.02f);
            memcpy(data + (uint64_t)b * tr->type_size, &d, 2);
            memcpy(data + (uint64_t)b * tr->type_size + 2, &dm, 2);
        }
    }
    tr->to_float(data, wf, rows * cols); /* the weights as the kernels see them */
    bn_dmat w = {data, type, rows, cols, rb, BN_DMAT_ROWS, NULL};
    const size_t stride = BN_DENSE_PREP_BYTES(cols);
    uint8_t *xs0 = calloc((size_t)n_tok, stride), *xs1 = calloc((size_t)n_tok, stride);
    float *x = malloc((size_t)(n_tok * cols) * sizeof(float));
    for (int64_t i = 0; i < n_tok * cols; i++) x[i] = rndf(-2.f, 2.f);
    for (int64_t t = 0; t < n_tok; t++) s->dense_prep(&w, x + t * cols, xs0 + (size_t)t * stride);
    float *scratch = malloc((size_t)(BN_DENSE_TOK * cols) * sizeof(float));
    float *y0 = malloc((size_t)(n_tok * rows) * sizeof(float)), *y1 = malloc((size_t)(n_tok * rows) * sizeof(float));
    float *ysolo = malloc((size_t)rows * sizeof(float));
    s->dense_matmul(&w, 0, rows, xs0, stride, n_tok, y0, rows, scratch);
    /* tolerance from sum |w_i x_i| with the unquantized activations */
    for (int k = 0; k < nv; k++)
      for (int lay = 0; lay < 2; lay++) {
        bn_dmat wk = w; /* lay 1: the variant's repacked layout (dmat_repack) */
        if (lay) {
            if (!v[k]->dmat_repack) continue;
            assert_int_equal(v[k]->dmat_repack(&wk), BITNET_OK);
            if (wk.layout == BN_DMAT_ROWS) continue;
            /* rows read back through the layout equal the original rows */
            float *row = malloc((size_t)cols * sizeof(float));
            for (int64_t r = 0; r < rows; r++) {
                bn_dmat_row_f32(&wk, r, row);
                assert_memory_equal(row, wf + r * cols, (size_t)cols * sizeof(float));
            }
            free(row);
        }
        float *ysplit = NULL;
        memset(xs1, 0, (size_t)n_tok * stride);
        for (int64_t t = 0; t < n_tok; t++) v[k]->dense_prep(&w, x + t * cols, xs1 + (size_t)t * stride);
        if (memcmp(xs0, xs1, (size_t)n_tok * stride) != 0)
            fail_msg("%s dense_prep %s cols=%lld differs from scalar", v[k]->name, tr->name, (long long)cols);
        for (int pass = 0; pass < 2; pass++) {
            int64_t r0 = pass ? rows / 3 : 0, r1 = pass ? rows - rows / 5 : rows;
            for (int64_t i = 0; i < n_tok * rows; i++) y1[i] = -7.f;
            v[k]->dense_matmul(&wk, r0, r1, xs1, stride, n_tok, y1, rows, scratch);
            if (pass == 0) { /* keep the whole-range result: splits must not change a row */
                ysplit = malloc((size_t)(n_tok * rows) * sizeof(float));
                memcpy(ysplit, y1, (size_t)(n_tok * rows) * sizeof(float));
                /* nor may the batch: each token alone gives bit-identical results */
                for (int64_t t = 0; t < n_tok && n_tok > 1; t++) {
                    v[k]->dense_matmul(&wk, 0, rows, xs1 + (size_t)t * stride, stride, 1, ysolo, rows, scratch);
                    if (memcmp(ysolo, &y1[t * rows], (size_t)rows * sizeof(float)) != 0)
                        fail_msg("%s dense %s%s %lldx%lld: token %lld of %lld differs from the same token alone",
                                 v[k]->name, tr->name, lay ? " (repacked)" : "", (long long)rows, (long long)cols,
                                 (long long)t, (long long)n_tok);
                }
            }
            if (pass == 1)
                for (int64_t t = 0; t < n_tok; t++)
                    for (int64_t r = r0; r < r1; r++)
                        if (memcmp(&y1[t * rows + r], &ysplit[t * rows + r], 4) != 0)
                            fail_msg("%s dense %s%s row %lld depends on the row split", v[k]->name, tr->name,
                                     lay ? " (repacked)" : "", (long long)r);
            for (int64_t t = 0; t < n_tok; t++) {
                for (int64_t r = 0; r < rows; r++) {
                    float got = y1[t * rows + r];
                    if (r < r0 || r >= r1) {
                        assert_true(got == -7.f);
                        continue;
                    }
                    double mag = 0;
                    for (int64_t i = 0; i < cols; i++) mag += fabs((double)wf[r * cols + i] * x[t * cols + i]);
                    double err = fabs((double)got - (double)y0[t * rows + r]);
                    if (!(err <= 2e-5 * mag + 1e-6))
                        fail_msg("%s dense %s %lldx%lld n_tok=%lld y[%lld][%lld] = %.9g, scalar %.9g (tol %.3g)",
                                 v[k]->name, tr->name, (long long)rows, (long long)cols, (long long)n_tok,
                                 (long long)t, (long long)r, (double)got, (double)y0[t * rows + r],
                                 2e-5 * mag + 1e-6);
                }
            }
        }
        free(ysplit);
        if (lay) bn_aligned_free(wk.owned);
    }
    free(data);
    free(wf);
    free(xs0);
    free(xs1);
    free(x);
    free(scratch);
    free(y0);
    free(y1);
    free(ysolo);
}

static void test_dense(void **state) {
    (void)state;
    const bn_kernels *v[16];
    int nv = variants(v);
    static const uint32_t types[] = {BITNET_TYPE_F32, BITNET_TYPE_F16, BITNET_TYPE_BF16, BITNET_TYPE_Q8_0,
                                     BITNET_TYPE_Q4_K, BITNET_TYPE_Q6_K, BITNET_TYPE_TQ1_0, BITNET_TYPE_TQ2_0};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        assert_true(bn_dense_type_ok(types[i]));
        int blk256 = bn_type_traits_get(types[i])->blck == 256;
        static const int64_t rows[] = {1, 3, 4, 7, 9, 33};
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            for (int64_t n_tok = 1; n_tok <= 3; n_tok++) {
                check_dense(types[i], rows[r], 256, n_tok, v, nv);
                check_dense(types[i], rows[r], 768, n_tok, v, nv);
                if (!blk256) {
                    check_dense(types[i], rows[r], 32, n_tok, v, nv);
                    check_dense(types[i], rows[r], 96, n_tok, v, nv);
                    if (types[i] != BITNET_TYPE_Q8_0) check_dense(types[i], rows[r], 37, n_tok, v, nv);
                    /* row lengths that are not a multiple of 32: the padded G4X32 chunk */
                    if (types[i] != BITNET_TYPE_Q8_0) check_dense(types[i], rows[r], 100, n_tok, v, nv);
                }
            }
        }
        check_dense(types[i], 67, 2560, 1, v, nv);
        check_dense(types[i], 13, 512, BN_DENSE_TOK + 3, v, nv); /* two token groups */
    }
}

/* ---- RMSNorm and attention --------------------------------------------------------------- */

static void test_rmsnorm(void **state) {
    (void)state;
    const bn_kernels *v[16];
    int nv = variants(v);
    const bn_kernels *s = scalar();
    static const int64_t ns[] = {1, 5, 8, 64, 100, 1536, 2560};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        int64_t n = ns[a];
        float *x = malloc((size_t)n * 4), *w = malloc((size_t)n * 4), *y0 = malloc((size_t)n * 4),
              *y1 = malloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++) { x[i] = rndf(-4.f, 4.f); w[i] = rndf(-2.f, 2.f); }
        s->rmsnorm(x, w, n, 1e-5f, y0);
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
        for (int64_t i = 0; i < n; i++) {
            double want = x[i] / sqrt(ss / (double)n + 1e-5) * w[i];
            assert_true(fabs(y0[i] - want) <= 1e-5 * fabs(want) + 1e-6);
        }
        for (int k = 0; k < nv; k++) {
            memcpy(y1, x, (size_t)n * 4);
            v[k]->rmsnorm(y1, w, n, 1e-5f, y1); /* in place is allowed */
            for (int64_t i = 0; i < n; i++)
                if (!(fabsf(y1[i] - y0[i]) <= 1e-6f * fabsf(y0[i]) + 1e-7f))
                    fail_msg("%s rmsnorm n=%lld y[%lld] = %.9g, scalar %.9g", v[k]->name, (long long)n,
                             (long long)i, (double)y1[i], (double)y0[i]);
        }
        free(x);
        free(w);
        free(y0);
        free(y1);
    }
}

static void check_attention(int kv_f16, int64_t n_kv, int64_t head_dim, const bn_kernels **v, int nv) {
    const bn_kernels *s = scalar();
    const int64_t stride = 2 * head_dim + 8; /* another head's slice between positions */
    size_t esz = kv_f16 ? 2 : 4;
    uint8_t *k = malloc((size_t)(n_kv * stride) * esz), *vv = malloc((size_t)(n_kv * stride) * esz);
    float q[BN_MAX_HEAD_DIM], o0[BN_MAX_HEAD_DIM], o1[BN_MAX_HEAD_DIM];
    float *scratch = malloc((size_t)n_kv * 4);
    float vmax = 0;
    for (int64_t i = 0; i < n_kv * stride; i++) {
        float a = rndf(-1.f, 1.f), b = rndf(-1.f, 1.f);
        if (kv_f16) {
            uint16_t ha = bn_f32_to_f16(a), hb = bn_f32_to_f16(b);
            memcpy(k + 2 * i, &ha, 2);
            memcpy(vv + 2 * i, &hb, 2);
        } else {
            memcpy(k + 4 * i, &a, 4);
            memcpy(vv + 4 * i, &b, 4);
        }
        vmax = fmaxf(vmax, fabsf(b));
    }
    for (int64_t d = 0; d < head_dim; d++) q[d] = rndf(-2.f, 2.f);
    float scale = 1.0f / sqrtf((float)head_dim);
    s->attention(q, k, vv, kv_f16, n_kv, head_dim, stride, scale, scratch, o0);
    /* the reference against softmax(q.k).V in double here */
    {
        double *p = malloc((size_t)n_kv * sizeof(double)), mx = -INFINITY, sum = 0;
        for (int64_t i = 0; i < n_kv; i++) {
            double sdot = 0;
            for (int64_t d = 0; d < head_dim; d++) {
                double kv = kv_f16 ? bn_f16_to_f32(bn_rd_u16(k + 2 * (i * stride + d))) : bn_rd_f32(k + 4 * (i * stride + d));
                sdot += q[d] * kv;
            }
            p[i] = sdot * scale;
            mx = fmax(mx, p[i]);
        }
        for (int64_t i = 0; i < n_kv; i++) sum += (p[i] = exp(p[i] - mx));
        for (int64_t d = 0; d < head_dim; d++) {
            double acc = 0;
            for (int64_t i = 0; i < n_kv; i++) {
                double vx = kv_f16 ? bn_f16_to_f32(bn_rd_u16(vv + 2 * (i * stride + d))) : bn_rd_f32(vv + 4 * (i * stride + d));
                acc += p[i] / sum * vx;
            }
            assert_true(fabs(o0[d] - acc) <= (kv_f16 ? 4e-3 : 1e-5) * vmax + 1e-6);
        }
        free(p);
    }
    for (int kk = 0; kk < nv; kk++) {
        v[kk]->attention(q, k, vv, kv_f16, n_kv, head_dim, stride, scale, scratch, o1);
        double tol = (kv_f16 ? 4e-3 : 1e-5) * vmax + 1e-7;
        for (int64_t d = 0; d < head_dim; d++)
            if (!(fabs(o1[d] - o0[d]) <= tol))
                fail_msg("%s attention f16=%d n_kv=%lld hd=%lld out[%lld] = %.9g, scalar %.9g", v[kk]->name, kv_f16,
                         (long long)n_kv, (long long)head_dim, (long long)d, (double)o1[d], (double)o0[d]);
        /* several queries at once (GQA heads, consecutive tokens seeing one position more
         * each): the same bits as one call per query */
        if (!v[kk]->attention_multi || head_dim % 8) continue;
        for (int nq = 1; nq <= BN_ATTN_MQ; nq++) {
            float qs[BN_ATTN_MQ][BN_MAX_HEAD_DIM], om[BN_ATTN_MQ][BN_MAX_HEAD_DIM];
            const float *qp[BN_ATTN_MQ];
            float *op[BN_ATTN_MQ];
            int64_t nk[BN_ATTN_MQ];
            float *ms = malloc((size_t)(BN_ATTN_MQ * n_kv) * 4);
            for (int a = 0; a < nq; a++) {
                for (int64_t d = 0; d < head_dim; d++) qs[a][d] = a == 0 ? q[d] : rndf(-2.f, 2.f);
                qp[a] = qs[a];
                op[a] = om[a];
                nk[a] = n_kv - (nq - 1 - a) > 0 ? n_kv - (nq - 1 - a) : 1; /* causal: later tokens see more */
            }
            v[kk]->attention_multi(nq, qp, nk, k, vv, kv_f16, head_dim, stride, scale, ms, n_kv, op);
            for (int a = 0; a < nq; a++) {
                v[kk]->attention(qs[a], k, vv, kv_f16, nk[a], head_dim, stride, scale, scratch, o1);
                if (memcmp(o1, om[a], (size_t)head_dim * 4) != 0)
                    fail_msg("%s attention_multi nq=%d query %d (n_kv %lld, hd %lld, f16 %d) differs from attention",
                             v[kk]->name, nq, a, (long long)nk[a], (long long)head_dim, kv_f16);
            }
            free(ms);
        }
    }
    free(k);
    free(vv);
    free(scratch);
}

static void test_attention(void **state) {
    (void)state;
    const bn_kernels *v[16];
    int nv = variants(v);
    static const int64_t nkv[] = {1, 2, 5, 17, 100, 700};
    static const int64_t hd[] = {64, 80, 96, 100, 128, 136};
    for (int f16 = 0; f16 < 2; f16++)
        for (size_t a = 0; a < sizeof nkv / sizeof nkv[0]; a++)
            for (size_t b = 0; b < sizeof hd / sizeof hd[0]; b++) check_attention(f16, nkv[a], hd[b], v, nv);
}

/* ---- selection ------------------------------------------------------------------------------ */

static void test_select(void **state) {
    (void)state;
    const bn_kernels *k = NULL;
    unsetenv("BITNET_ISA");
    const bn_kernels *best = bn_kernels_get(BITNET_ISA_AUTO);
    assert_non_null(best);
    assert_true(bitnet_isa_supported(best->isa));
    /* the registry's list: every variant once, named, best first, scalar last; names round-trip */
    bitnet_isa all[16];
    size_t n_all = bitnet_isa_list(all, 16);
    assert_true(n_all >= 2 && n_all <= 16);
    assert_int_equal(bitnet_isa_list(NULL, 0), n_all);
    assert_int_equal(all[n_all - 1], BITNET_ISA_SCALAR);
    for (size_t i = 0; i < n_all; i++) {
        assert_true(all[i] != BITNET_ISA_AUTO);
        for (size_t j = 0; j < i; j++) assert_true(all[i] != all[j]);
        bitnet_isa back = BITNET_ISA_AUTO;
        assert_non_null(bitnet_isa_name(all[i]));
        assert_int_equal(bitnet_isa_from_name(bitnet_isa_name(all[i]), &back), BITNET_OK);
        assert_int_equal(back, all[i]);
    }
    bitnet_isa got = BITNET_ISA_SCALAR;
    assert_int_equal(bitnet_isa_from_name("auto", &got), BITNET_OK);
    assert_int_equal(got, BITNET_ISA_AUTO);
    assert_int_equal(bitnet_isa_from_name("avx9000", &got), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "scalar")); /* the message names the valid ones */
    assert_int_equal(bitnet_isa_from_name(NULL, &got), BITNET_E_INVALID_ARG);
    assert_null(bitnet_isa_name((bitnet_isa)99));

    /* AUTO picks the best: the first supported variant of the list */
    size_t rank_best = 0;
    while (!bitnet_isa_supported(all[rank_best])) rank_best++;
    assert_int_equal(best->isa, all[rank_best]);

    for (size_t i = 0; i < n_all; i++) {
        const char *name = bitnet_isa_name(all[i]);
        /* explicit choice: exactly that variant, or a clean UNSUPPORTED naming it */
        bitnet_status st = bn_kernels_select(all[i], &k);
        if (bitnet_isa_supported(all[i])) {
            assert_int_equal(st, BITNET_OK);
            assert_int_equal(k->isa, all[i]);
            assert_string_equal(k->name, name);
        } else {
            assert_int_equal(st, BITNET_E_UNSUPPORTED);
            assert_null(bn_kernels_get(all[i]));
            assert_non_null(strstr(bitnet_last_error(), name));
        }
        /* the environment caps AUTO: the named variant, or one ranked below it */
        setenv("BITNET_ISA", name, 1);
        const bn_kernels *a = bn_kernels_get(BITNET_ISA_AUTO);
        assert_non_null(a);
        if (bitnet_isa_supported(all[i])) assert_int_equal(a->isa, all[i]);
        size_t rank_a = 0;
        while (all[rank_a] != a->isa) rank_a++;
        assert_true(rank_a >= i);
        if (all[i] == BITNET_ISA_AVX512 && !bitnet_isa_supported(BITNET_ISA_AVX512) &&
            bitnet_isa_supported(BITNET_ISA_AVX2))
            assert_int_equal(a->isa, BITNET_ISA_AVX2); /* capped, not refused */
        assert_true(bitnet_isa_supported(a->isa));
        /* the env never changes an explicit choice */
        assert_true(bn_kernels_get(BITNET_ISA_SCALAR) != NULL);
    }
    setenv("BITNET_ISA", "no-such-isa", 1);
    assert_ptr_equal(bn_kernels_get(BITNET_ISA_AUTO), best); /* unknown names are ignored */
    setenv("BITNET_ISA", "auto", 1);
    assert_ptr_equal(bn_kernels_get(BITNET_ISA_AUTO), best);
    unsetenv("BITNET_ISA");
    assert_int_equal(bn_kernels_select((bitnet_isa)99, &k), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_isa_supported(BITNET_ISA_AUTO), 1);
    assert_int_equal(bitnet_isa_supported(BITNET_ISA_SCALAR), 1);
    assert_int_equal(bitnet_isa_supported((bitnet_isa)99), 0);
    /* every table is complete (NULL slots filled from scalar) */
    const bn_kernels *v[16];
    int nv = variants(v);
    print_message("variants: scalar");
    for (int i = 0; i < nv; i++) print_message(" %s", v[i]->name);
    print_message(" (CPU: %s)\n", bitnet_cpu_features());
    v[nv++] = scalar();
    for (int i = 0; i < nv; i++) {
        assert_non_null(v[i]->act_quant);
        assert_non_null(v[i]->ternary_matmul);
        assert_non_null(v[i]->rmsnorm);
        assert_non_null(v[i]->rope);
        assert_non_null(v[i]->attention);
        assert_non_null(v[i]->dense_prep);
        assert_non_null(v[i]->dense_matmul);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),         cmocka_unit_test(test_act_quant), cmocka_unit_test(test_ternary_matmul), cmocka_unit_test(test_ternary_extremes), cmocka_unit_test(test_layout_g16), cmocka_unit_test(test_ffn_act), cmocka_unit_test(test_f16_row),
        cmocka_unit_test(test_dense),          cmocka_unit_test(test_rmsnorm),   cmocka_unit_test(test_attention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
