/*
 * test_load_stream.c -- ternary tensors of 1 MiB or more in a mapped file are read tile
 * by tile by the loader's threads (lib/model_load.c bn_tjob_run).  Checked against the
 * whole-buffer path (use_mmap = 0, which decodes the tensor from memory in one piece):
 *  - the same codes, scales and per-block scales for I2_S, TQ2_0 (uniform and mixed
 *    block scales) and ternary F16, on the scalar and the automatic kernels;
 *  - the same codes for the I2_S and TQ2_0 files (the weights are the same,
 *    test_model_util.h);
 *  - a hostile byte deep inside a streamed tensor is refused with the row and column
 *    derived by hand from the file layout.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "model.h"
#include "test_model_util.h"

#define N_EMBD 1024
#define N_FF   4096 /* ffn tensors: 4M weights, 1 MiB in I2_S */

static void spec(tm_spec *sp, bitnet_type wt) {
    tm_default(sp);
    sp->wtype = wt;
    sp->n_embd = N_EMBD;
    sp->n_ff = wt == BITNET_TYPE_F16 ? N_FF / 4 : N_FF; /* (F16: 2 MiB tensors already) */
    sp->n_head = 8;
    sp->n_head_kv = 4;
    sp->n_layer = 1;
    sp->seed = 3;
}

static bitnet_model *load(const char *path, int mmap_, bitnet_isa isa) {
    bitnet_model_params p;
    bitnet_model_default_params(&p, sizeof p);
    p.use_mmap = mmap_;
    p.isa = isa;
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(path, &p, &m);
    if (st != BITNET_OK) fail_msg("load %s (mmap %d): %s", path, mmap_, bitnet_last_error());
    return m;
}

static size_t tmat_bytes(const bn_tmat *w) { return (size_t)((w->rows + 3) / 4 * 4) * (size_t)w->row_bytes; }

static void same_tmat(const bn_tmat *a, const bn_tmat *b, int scales) {
    assert_int_equal(a->layout, b->layout);
    assert_int_equal(a->row_bytes, b->row_bytes);
    assert_int_equal(a->rows, b->rows);
    assert_memory_equal(a->codes, b->codes, tmat_bytes(a));
    if (!scales) return;
    assert_true(a->scale == b->scale);
    assert_int_equal(a->bscale != NULL, b->bscale != NULL);
    if (a->bscale) assert_memory_equal(a->bscale, b->bscale, (size_t)(a->rows * (a->cols / 256)) * sizeof(float));
}

static void same_model(const bitnet_model *a, const bitnet_model *b, int scales) {
    const bn_layer *x = &a->layers[0], *y = &b->layers[0];
    same_tmat(&x->wq, &y->wq, scales);
    same_tmat(&x->wk, &y->wk, scales);
    same_tmat(&x->wv, &y->wv, scales);
    same_tmat(&x->wo, &y->wo, scales);
    same_tmat(&x->wgate, &y->wgate, scales);
    same_tmat(&x->wup, &y->wup, scales);
    same_tmat(&x->wdown, &y->wdown, scales);
}

static void test_stream_equals_buffer(void **state) {
    (void)state;
    /* (TQ1_0 tensors of this shape stay under 1 MiB: read whole, covered elsewhere) */
    static const bitnet_type types[] = {BITNET_TYPE_I2_S, BITNET_TYPE_TQ2_0, BITNET_TYPE_F16};
    static const bitnet_isa isas[] = {BITNET_ISA_SCALAR, BITNET_ISA_AUTO};
    bitnet_model *first[2] = {NULL, NULL}; /* the I2_S file's models: every type must decode to them */
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int mixed = 0; mixed < (types[t] == BITNET_TYPE_TQ2_0 ? 2 : 1); mixed++) {
            tm_spec sp;
            spec(&sp, types[t]);
            sp.mixed_scales = mixed;
            char path[512];
            tm_path(path, sizeof path, "stream");
            assert_int_equal(tm_write(&sp, path), 0);
            for (int k = 0; k < 2; k++) {
                /* (the scalar kernels' row layout for I2_S and TQ2_0 only: enough for that path) */
                if (k == 0 && types[t] == BITNET_TYPE_F16) continue;
                bitnet_model *a = load(path, 1, isas[k]), *b = load(path, 0, isas[k]);
                assert_true(a->gguf->mapped == 1); /* (the streamed path needs a mapped file) */
                same_model(a, b, 1);
                if (mixed) assert_non_null(a->layers[0].wdown.bscale);
                if (!first[k]) first[k] = a;
                else {
                    if (!mixed && types[t] != BITNET_TYPE_F16) same_model(a, first[k], 0); /* (same shape) */
                    bitnet_model_free(a);
                }
                bitnet_model_free(b);
            }
            unlink(path);
        }
    bitnet_model_free(first[0]);
    bitnet_model_free(first[1]);
}

/* I2_S rows of ne0 weights are ne0 / 4 bytes; byte p of a row holds, from the high bits
 * down, the weights 128 (p / 32) + p % 32 + {0, 32, 64, 96}: 0xff there makes the first
 * code 3 of the row at column 128 (p / 32) + p % 32. */
static void test_stream_errors(void **state) {
    (void)state;
    const size_t rb = N_FF / 4;
    static const struct { size_t row, p; } at[] = {{700, 100}, {1023, 1023}, {5, 0}};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        tm_spec sp;
        spec(&sp, BITNET_TYPE_I2_S);
        sp.poison = "blk.0.ffn_down.weight"; /* {N_FF, N_EMBD}: N_EMBD rows of N_FF */
        sp.poison_at = at[i].row * rb + at[i].p;
        sp.poison_bytes[0] = 0xff;
        sp.poison_len = 1;
        char path[512], want[128];
        tm_path(path, sizeof path, "stream_err");
        assert_int_equal(tm_write(&sp, path), 0);
        snprintf(want, sizeof want, "at row %zu, column %zu", at[i].row, 128 * (at[i].p / 32) + at[i].p % 32);
        for (int mm = 0; mm < 2; mm++) {
            bitnet_model_params p;
            bitnet_model_default_params(&p, sizeof p);
            p.use_mmap = mm;
            bitnet_model *m = NULL;
            assert_int_equal(bitnet_model_load(path, &p, &m), BITNET_E_FORMAT);
            assert_null(m);
            if (!strstr(bitnet_last_error(), "blk.0.ffn_down.weight") || !strstr(bitnet_last_error(), want))
                fail_msg("mmap %d: '%s', expected '%s'", mm, bitnet_last_error(), want);
        }
        unlink(path);
    }
    /* ternary F16: a value other than 0 and +-s deep inside (row 900 of ffn_up, column 17) */
    tm_spec sp;
    spec(&sp, BITNET_TYPE_F16);
    sp.poison = "blk.0.ffn_up.weight"; /* {N_EMBD, N_FF / 4}: 1024 rows of N_EMBD, 2 MiB */
    sp.poison_at = (900 * (size_t)N_EMBD + 17) * 2;
    sp.poison_bytes[0] = 0x00;
    sp.poison_bytes[1] = 0x3e; /* 1.5 */
    sp.poison_len = 2;
    char path[512];
    tm_path(path, sizeof path, "stream_err");
    assert_int_equal(tm_write(&sp, path), 0);
    bitnet_model *m = NULL;
    assert_int_equal(bitnet_model_load(path, NULL, &m), BITNET_E_FORMAT);
    unlink(path);
    if (!strstr(bitnet_last_error(), "blk.0.ffn_up.weight") || !strstr(bitnet_last_error(), "row 900, column 17"))
        fail_msg("'%s'", bitnet_last_error());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_equals_buffer),
        cmocka_unit_test(test_stream_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
