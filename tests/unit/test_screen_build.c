/*
 * test_screen_build.c -- building the screening copy of an F16 output layer
 * (kernels.h screen_quant, lib/model_screen.c):
 *  - every kernel variant this machine runs gives the scalar builder's bytes exactly
 *    (q and sigma), for both matrix layouts, odd shapes (columns not a multiple of 32 or
 *    64, rows not a multiple of 4, a copy with fewer rows than the matrix), int8 and
 *    6-bit levels, and values that stress the arithmetic (exact .5 ties, f16
 *    subnormals, the largest f16, signed zeros, all-zero blocks);
 *  - the scalar builder's result has the documented properties, checked with double
 *    arithmetic here (sigma = max|w| / qmax rounded once to float, |q| <= qmax, q the
 *    nearest integer to w / sigma up to the float rounding of w * (1 / sigma), padding
 *    and dummy rows zero), and hand-derived values for a block of ties;
 *  - bitnet_model_set_output_screening makes the same copy on every variant (each one's
 *    own layout of the output matrix), and BITNET_SCREEN_INT6 gives 6-bit levels.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "internal.h"
#include "kernels.h"
#include "model.h"
#include "test_model_util.h"

#include <math.h>
#include <string.h>

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g_rng >> 33);
}

/* A random F16 value of one of several kinds. */
static uint16_t rnd_f16(void) {
    switch (rnd() % 16) {
    case 0: return (uint16_t)(rnd() & 0x83ffu);            /* subnormal (or zero), either sign */
    case 1: return (uint16_t)((rnd() & 0x8000u) | 0x7bffu); /* +-65504 */
    case 2: return (uint16_t)(rnd() & 0x8000u);            /* +-0 */
    default: {
        float f = ((float)(rnd() % 20001) - 10000.0f) / 10000.0f;
        f *= ldexpf(1.0f, (int)(rnd() % 9) - 4);
        return bn_f32_to_f16(f);
    }
    }
}

typedef struct mat {
    int64_t  rows, cols;
    uint16_t *h;      /* row-major values */
    uint8_t  *g4;     /* G4X32 copy */
    bn_dmat   rows_m, g4_m;
} mat;

static void mat_make(mat *m, int64_t rows, int64_t cols, int ties) {
    m->rows = rows;
    m->cols = cols;
    m->h = malloc((size_t)(rows * cols) * 2);
    assert_non_null(m->h);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            uint16_t v = rnd_f16();
            if ((r + c / 64) % 7 == 3) v = 0;                    /* whole zero blocks */
            if (ties && (r % 3) == 1) {                          /* max 127 * 2^k: sigma = 2^k, w / sigma = n + 1/2 */
                const float k = ldexpf(1.0f, (int)(r % 5) - 2);
                const float t = c % 64 == 0 ? 127.0f : (float)((int)(rnd() % 253) - 126) + 0.5f;
                v = bn_f32_to_f16(t * k);
            }
            m->h[r * cols + c] = v;
        }
    memset(&m->rows_m, 0, sizeof m->rows_m);
    m->rows_m.data = (const uint8_t *)m->h;
    m->rows_m.type = BITNET_TYPE_F16;
    m->rows_m.rows = rows;
    m->rows_m.cols = cols;
    m->rows_m.row_bytes = (uint64_t)cols * 2;
    m->rows_m.layout = BN_DMAT_ROWS;
    m->g4 = NULL;
    m->g4_m = m->rows_m;
    if (rows >= 4) {
        const uint64_t rb = bn_dmat_g4x32_row_bytes(cols);
        m->g4 = malloc((size_t)(rows * (int64_t)rb));
        assert_non_null(m->g4);
        bn_dmat_g4x32_rows((const uint8_t *)m->h, rows, cols, 0, rows, m->g4);
        m->g4_m.data = m->g4;
        m->g4_m.row_bytes = rb;
        m->g4_m.layout = BN_DMAT_G4X32;
    }
}

static void mat_free(mat *m) {
    free(m->h);
    free(m->g4);
}

static void smat_alloc(bn_smat *s, int64_t rows, int64_t cols, int qmax) {
    memset(s, 0, sizeof *s);
    s->rows = rows;
    s->cols = cols;
    s->cols_pad = (cols + BN_SCREEN_BLOCK - 1) / BN_SCREEN_BLOCK * BN_SCREEN_BLOCK;
    s->nb = s->cols_pad / BN_SCREEN_BLOCK;
    s->qmax = qmax;
    const size_t rows4 = (size_t)(rows + 3) / 4 * 4;
    s->q = malloc(rows4 * (size_t)s->cols_pad);
    s->sigma = malloc(rows4 * (size_t)s->nb * sizeof(float));
    assert_non_null(s->q);
    assert_non_null(s->sigma);
    memset(s->q, 0x5a, rows4 * (size_t)s->cols_pad); /* garbage: the builder must write every byte */
    memset(s->sigma, 0x5a, rows4 * (size_t)s->nb * sizeof(float));
}

static void smat_free(bn_smat *s) {
    free(s->q);
    free(s->sigma);
}

static size_t smat_qbytes(const bn_smat *s) { return (size_t)(s->rows + 3) / 4 * 4 * (size_t)s->cols_pad; }
static size_t smat_sbytes(const bn_smat *s) { return (size_t)(s->rows + 3) / 4 * 4 * (size_t)s->nb * sizeof(float); }

/* Build with k in two row ranges (a split at a group boundary, as the pool does). */
static void build(const bn_kernels *k, const bn_dmat *w, bn_smat *s) {
    float *x = malloc((size_t)s->cols_pad * sizeof(float));
    assert_non_null(x);
    const int64_t rows4 = (s->rows + 3) / 4 * 4, mid = rows4 / 8 * 4;
    k->screen_quant(w, 0, mid, s->qmax, s, x);
    k->screen_quant(w, mid, rows4, s->qmax, s, x);
    free(x);
}

/* The documented properties of a copy of the row-major values h, in double arithmetic. */
static void check_props(const mat *m, const bn_smat *s) {
    const int qmax = s->qmax;
    for (int64_t r = 0; r < (s->rows + 3) / 4 * 4; r++)
        for (int64_t b = 0; b < s->nb; b++) {
            const int8_t *q = BN_SMAT_Q(s, r, b);
            const float sg = *BN_SMAT_SIGMA(s, r, b);
            if (r >= s->rows) {
                assert_true(sg == 0.0f);
                for (int i = 0; i < BN_SCREEN_BLOCK; i++) assert_int_equal(q[i], 0);
                continue;
            }
            double mx = 0;
            for (int i = 0; i < BN_SCREEN_BLOCK; i++) {
                const int64_t c = BN_SCREEN_BLOCK * b + i;
                if (c < m->cols) mx = fmax(mx, fabs((double)bn_f16_to_f32(m->h[r * m->cols + c])));
            }
            assert_true(sg == (float)(mx / qmax)); /* one correctly rounded division */
            const double inv = sg > 0 ? (double)(float)(1.0 / (double)sg) : 0.0;
            for (int i = 0; i < BN_SCREEN_BLOCK; i++) {
                const int64_t c = BN_SCREEN_BLOCK * b + i;
                assert_true(q[i] >= -qmax && q[i] <= qmax);
                if (c >= m->cols) {
                    assert_int_equal(q[i], 0);
                    continue;
                }
                const double w = bn_f16_to_f32(m->h[r * m->cols + c]);
                const double t = (double)(float)(w * inv); /* the product rounded to float, as documented */
                double want = nearbyint(t);                 /* ties to even */
                want = want > qmax ? qmax : want < -qmax ? -qmax : want;
                assert_int_equal(q[i], (int)want);
                if (sg > 0) assert_true(fabs(w - (double)sg * q[i]) <= 0.5001 * sg);
            }
        }
}

static void test_variants_match_scalar(void **state) {
    (void)state;
    const bn_kernels *ks = bn_kernels_get(BITNET_ISA_SCALAR);
    assert_non_null(ks);
    assert_non_null(ks->screen_quant);
    bitnet_isa all[16];
    const size_t n_all = bitnet_isa_list(all, 16);
    static const int64_t shapes[][2] = {{1, 64}, {3, 31}, {4, 32}, {5, 100}, {9, 160}, {13, 2560}, {130, 64},
                                        {64, 200}, {7, 1}, {20, 96}};
    static const int qmaxes[] = {127, 31};
    int compared = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int ties = 0; ties < 2; ties++)
            for (size_t qi = 0; qi < 2; qi++) {
                mat m;
                mat_make(&m, shapes[si][0], shapes[si][1], ties);
                for (int fewer = 0; fewer < 2; fewer++) {
                    const int64_t srows = fewer && m.rows > 1 ? m.rows - 1 : m.rows; /* n_vocab < rows */
                    bn_smat ref;
                    smat_alloc(&ref, srows, m.cols, qmaxes[qi]);
                    build(ks, &m.rows_m, &ref);
                    check_props(&m, &ref);
                    for (int lay = 0; lay < 2; lay++) {
                        const bn_dmat *w = lay ? &m.g4_m : &m.rows_m;
                        for (size_t i = 0; i < n_all; i++) {
                            const bn_kernels *k = bn_kernels_get(all[i]);
                            if (!k) continue;
                            bn_smat got;
                            smat_alloc(&got, srows, m.cols, qmaxes[qi]);
                            build(k, w, &got);
                            assert_memory_equal(got.q, ref.q, smat_qbytes(&ref));
                            assert_memory_equal(got.sigma, ref.sigma, smat_sbytes(&ref));
                            smat_free(&got);
                            compared++;
                        }
                    }
                    smat_free(&ref);
                }
                mat_free(&m);
            }
    assert_true(compared > 0);
}

/* Hand-derived: a block whose max is 127 has sigma 1 and q = w rounded half to even. */
static void test_ties_by_hand(void **state) {
    (void)state;
    static const float w[8] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 126.5f, -126.5f};
    static const int want127[8] = {127, 0, 2, 2, 0, -2, 126, -126};
    /* qmax 31: sigma = 127 / 31 (rounded), w / sigma = w * 31 / 127 -> hand rounding */
    static const int want31[8] = {31, 0, 0, 1, 0, 0, 31, -31};
    mat m;
    memset(&m, 0, sizeof m);
    m.rows = 4;
    m.cols = 64;
    m.h = calloc(4 * 64, 2);
    assert_non_null(m.h);
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 8; i++) m.h[r * 64 + i] = bn_f32_to_f16(w[i]);
    m.rows_m.data = (const uint8_t *)m.h;
    m.rows_m.type = BITNET_TYPE_F16;
    m.rows_m.rows = 4;
    m.rows_m.cols = 64;
    m.rows_m.row_bytes = 128;
    m.rows_m.layout = BN_DMAT_ROWS;
    bitnet_isa all[16];
    const size_t n_all = bitnet_isa_list(all, 16);
    for (size_t i = 0; i < n_all; i++) {
        const bn_kernels *k = bn_kernels_get(all[i]);
        if (!k) continue;
        for (int qi = 0; qi < 2; qi++) {
            bn_smat s;
            smat_alloc(&s, 4, 64, qi ? 31 : 127);
            build(k, &m.rows_m, &s);
            for (int r = 0; r < 4; r++) {
                assert_true(*BN_SMAT_SIGMA(&s, r, 0) == 127.0f / (qi ? 31.0f : 127.0f));
                for (int j = 0; j < 8; j++) assert_int_equal(BN_SMAT_Q(&s, r, 0)[j], qi ? want31[j] : want127[j]);
                for (int j = 8; j < 64; j++) assert_int_equal(BN_SMAT_Q(&s, r, 0)[j], 0);
            }
            smat_free(&s);
        }
    }
    free(m.h);
}

/* Through the API: the copy is the same on every variant (each with its own layout of the
 * output matrix), and INT6 has 6-bit levels; switching modes rebuilds it. */
static void test_model_copy(void **state) {
    (void)state;
    char path[512];
    tm_spec sp;
    tm_default(&sp);
    sp.n_vocab = 600;
    sp.n_embd = 160; /* a padded block */
    sp.n_head = 2;
    sp.n_head_kv = 1;
    sp.n_layer = 1;
    sp.n_ff = 256;
    sp.seed = 5;
    tm_path(path, sizeof path, "screen_build");
    assert_int_equal(tm_write(&sp, path), 0);
    bitnet_isa all[16];
    const size_t n_all = bitnet_isa_list(all, 16);
    bn_smat ref[2];
    memset(ref, 0, sizeof ref);
    for (size_t i = 0; i < n_all; i++) {
        if (!bitnet_isa_supported(all[i])) continue;
        bitnet_model_params mp;
        bitnet_model_default_params(&mp, sizeof mp);
        mp.isa = all[i];
        bitnet_model *m = NULL;
        assert_int_equal(bitnet_model_load(path, &mp, &m), BITNET_OK);
        for (int mode = 0; mode < 2; mode++) {
            assert_int_equal(bitnet_model_set_output_screening(m, mode ? BITNET_SCREEN_INT6 : BITNET_SCREEN_INT8),
                             BITNET_OK);
            const bn_smat *s = &m->screen;
            assert_non_null(s->q);
            assert_int_equal(s->qmax, mode ? 31 : 127);
            int maxq = 0;
            for (size_t b = 0; b < smat_qbytes(s); b++) maxq = abs(s->q[b]) > maxq ? abs(s->q[b]) : maxq;
            assert_int_equal(maxq, mode ? 31 : 127); /* every non-zero block reaches its max level */
            if (!ref[mode].q) {
                ref[mode] = *s;
                ref[mode].q = malloc(smat_qbytes(s));
                ref[mode].sigma = malloc(smat_sbytes(s));
                assert_non_null(ref[mode].q);
                assert_non_null(ref[mode].sigma);
                memcpy(ref[mode].q, s->q, smat_qbytes(s));
                memcpy(ref[mode].sigma, s->sigma, smat_sbytes(s));
            } else {
                assert_int_equal(s->rows, ref[mode].rows);
                assert_memory_equal(s->q, ref[mode].q, smat_qbytes(s));
                assert_memory_equal(s->sigma, ref[mode].sigma, smat_sbytes(s));
            }
        }
        bitnet_model_free(m);
    }
    for (int mode = 0; mode < 2; mode++) {
        free(ref[mode].q);
        free(ref[mode].sigma);
    }
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ties_by_hand),
        cmocka_unit_test(test_variants_match_scalar),
        cmocka_unit_test(test_model_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
