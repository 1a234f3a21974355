/*
 * test_embed.c -- pooled sentence embeddings (bitnet_session_embed, _embed_text, _pool):
 * each pooling against the per-token hidden states of an ordinary eval
 * (bitnet_session_embeddings) pooled and normalised here as llama-embedding defines it,
 * chunking and batching independence, the session state afterwards, every error, and
 * every allocation failure.  (The graphs and the model's pooling key are checked against
 * an independent reference in tests/embed.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_model_util.h"

#include "internal.h" /* bn_alloc_fail_after */

#define NV 300
#define NE 256
#define NT 13

static bitnet_model *g_model; /* bitnet-b1.58, I2_S: no pooling key (mean) */

static int setup(void **state) {
    (void)state;
    tm_spec sp;
    tm_default(&sp);
    sp.seed = 31;
    char path[512];
    tm_path(path, sizeof path, "embed");
    if (tm_write(&sp, path) != 0) return -1;
    bitnet_model_params p;
    bitnet_model_default_params(&p, sizeof p);
    p.isa = BITNET_ISA_SCALAR;
    bitnet_status st = bitnet_model_load(path, &p, &g_model);
    unlink(path);
    return st == BITNET_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    bitnet_model_free(g_model);
    return 0;
}

static bitnet_session *open_s(uint32_t n_batch, uint32_t threads, int embeddings) {
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = 64;
    p.n_batch = n_batch;
    p.n_threads = threads;
    p.embeddings = embeddings;
    bitnet_session *s = NULL;
    assert_int_equal(bitnet_session_create(g_model, &p, &s), BITNET_OK);
    return s;
}

static void prompt(bitnet_token *t, int n, uint64_t seed) {
    uint64_t r = seed;
    for (int i = 0; i < n; i++) t[i] = (bitnet_token)(tm_next(&r) % NV);
}

/* The definition: pool the rows (mean in double, first, last), then s = 1, max|x|/32760,
 * sqrt(sum x^2) or (sum |x|^p)^(1/p) in double, out = x * (float)(1/s). */
static void expect_pooled(const float *rows, int n, int pooling, int norm, float *out) {
    float v[NE];
    for (int i = 0; i < NE; i++) {
        if (pooling == BITNET_POOLING_MEAN) {
            double a = 0;
            for (int t = 0; t < n; t++) a += rows[t * NE + i];
            v[i] = (float)(a / n);
        } else {
            v[i] = rows[(pooling == BITNET_POOLING_CLS ? 0 : n - 1) * NE + i];
        }
    }
    double s = 0;
    if (norm == -1) s = 1;
    else if (norm == 0) {
        for (int i = 0; i < NE; i++) s = fabs(v[i]) > s ? fabs(v[i]) : s;
        s /= 32760.0;
    } else {
        for (int i = 0; i < NE; i++) s += pow(fabs((double)v[i]), norm);
        s = pow(s, 1.0 / norm);
    }
    for (int i = 0; i < NE; i++) out[i] = v[i] * (float)(1.0 / s);
}

static void test_pooling(void **state) {
    (void)state;
    bitnet_token t[NT];
    prompt(t, NT, 5);
    /* the per-token hidden states of one ordinary eval */
    bitnet_session *ref = open_s(512, 1, 1);
    assert_int_equal(bitnet_session_eval(ref, t, NT), BITNET_OK);
    static float rows[NT * NE];
    for (int i = 0; i < NT; i++) {
        const float *h;
        assert_int_equal(bitnet_session_embeddings(ref, i, &h), BITNET_OK);
        memcpy(rows + i * NE, h, sizeof(float) * NE);
    }
    assert_int_equal(bitnet_model_pooling(g_model), BITNET_POOLING_MEAN); /* no pooling key */
    static const int pools[] = {BITNET_POOLING_MODEL, BITNET_POOLING_MEAN, BITNET_POOLING_CLS, BITNET_POOLING_LAST};
    static const int norms[] = {2, -1, 0, 1, 3};
    for (size_t pi = 0; pi < 4; pi++)
        for (size_t ni = 0; ni < 5; ni++)
            for (int cfg = 0; cfg < 3; cfg++) { /* one chunk / chunks of 4 / 2 threads */
                bitnet_session *s = open_s(cfg == 1 ? 4 : 512, cfg == 2 ? 2 : 1, 0);
                bitnet_embed_params ep;
                bitnet_embed_default_params(&ep, sizeof ep);
                ep.pooling = pools[pi];
                ep.normalize = norms[ni];
                float got[NE], want[NE];
                assert_int_equal(bitnet_session_embed(s, t, NT, &ep, got, NE), BITNET_OK);
                const int p = pools[pi] == BITNET_POOLING_MODEL ? BITNET_POOLING_MEAN : pools[pi];
                expect_pooled(rows, NT, p, norms[ni], want);
                for (int i = 0; i < NE; i++) assert_true(got[i] == want[i]); /* scalar kernels: exact */
                /* the context is the input; the last hidden state kept; no logits */
                assert_int_equal(bitnet_session_n_past(s), NT);
                const float *h, *l;
                assert_int_equal(bitnet_session_embeddings(s, -1, &h), BITNET_OK);
                assert_memory_equal(h, rows + (NT - 1) * NE, sizeof(float) * NE);
                assert_int_equal(bitnet_session_logits(s, -1, &l), BITNET_E_INVALID_ARG);
                /* again, on a session that already holds something: same result */
                float again[NE];
                assert_int_equal(bitnet_session_embed(s, t, NT, &ep, again, NE), BITNET_OK);
                assert_memory_equal(again, got, sizeof got);
                bitnet_session_free(s);
                /* bitnet_session_pool after the ordinary eval gives the same */
                assert_int_equal(bitnet_session_pool(ref, &ep, again, NE), BITNET_OK);
                assert_memory_equal(again, got, sizeof got);
            }
    bitnet_session_free(ref);
}

static void test_text_and_defaults(void **state) {
    (void)state;
    bitnet_session *s = open_s(512, 1, 0);
    const char *text = "hello world";
    bitnet_token t[64];
    size_t n = 0;
    assert_int_equal(bitnet_tokenize(g_model, text, strlen(text), BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL,
                                     t, 64, &n),
                     BITNET_OK);
    float a[NE], b[NE];
    size_t nt = 0;
    assert_int_equal(bitnet_session_embed_text(s, text, strlen(text), NULL, a, NE, &nt), BITNET_OK);
    assert_int_equal(nt, n);
    assert_int_equal(bitnet_session_embed(s, t, n, NULL, b, NE), BITNET_OK); /* NULL params: defaults */
    assert_memory_equal(a, b, sizeof a);
    double ss = 0;
    for (int i = 0; i < NE; i++) ss += (double)a[i] * a[i];
    assert_true(fabs(ss - 1.0) < 1e-5); /* L2 by default */
    bitnet_embed_params ep;
    bitnet_embed_default_params(&ep, sizeof ep);
    assert_int_equal(ep.pooling, BITNET_POOLING_MODEL);
    assert_int_equal(ep.normalize, 2);
    bitnet_session_free(s);
}

static void test_errors(void **state) {
    (void)state;
    bitnet_session *s = open_s(512, 1, 0);
    bitnet_token t[4] = {1, 2, 3, 4};
    float out[NE];
    bitnet_embed_params ep;
    bitnet_embed_default_params(&ep, sizeof ep);
    assert_int_equal(bitnet_session_embed(NULL, t, 4, NULL, out, NE), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_embed(s, NULL, 4, NULL, out, NE), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_embed(s, t, 0, NULL, out, NE), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_embed(s, t, 4, NULL, NULL, NE), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_embed(s, t, 4, NULL, out, NE - 1), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_session_last_error(s), "too small"));
    bitnet_token bad[2] = {1, NV};
    assert_int_equal(bitnet_session_embed(s, bad, 2, NULL, out, NE), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "outside the vocabulary"));
    static bitnet_token many[65];
    assert_int_equal(bitnet_session_embed(s, many, 65, NULL, out, NE), BITNET_E_CONTEXT_FULL);
    ep.pooling = BITNET_POOLING_NONE;
    assert_int_equal(bitnet_session_embed(s, t, 4, &ep, out, NE), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_session_last_error(s), "none"));
    ep.pooling = BITNET_POOLING_RANK;
    assert_int_equal(bitnet_session_embed(s, t, 4, &ep, out, NE), BITNET_E_UNSUPPORTED);
    ep.pooling = 7;
    assert_int_equal(bitnet_session_embed(s, t, 4, &ep, out, NE), BITNET_E_INVALID_ARG);
    ep.pooling = BITNET_POOLING_MODEL;
    ep.normalize = -2;
    assert_int_equal(bitnet_session_embed(s, t, 4, &ep, out, NE), BITNET_E_INVALID_ARG);
    ep.normalize = 2;
    /* a failed call changed nothing: the session still works */
    assert_int_equal(bitnet_session_embed(s, t, 4, &ep, out, NE), BITNET_OK);
    assert_int_equal(bitnet_session_embed_text(s, NULL, 3, NULL, out, NE, NULL), BITNET_E_INVALID_ARG);
    /* pool: nothing evaluated; mean / cls without every hidden state */
    bitnet_session *p = open_s(512, 1, 0);
    assert_int_equal(bitnet_session_pool(p, NULL, out, NE), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_eval(p, t, 4), BITNET_OK);
    assert_int_equal(bitnet_session_pool(p, NULL, out, NE), BITNET_E_INVALID_ARG); /* mean */
    assert_non_null(strstr(bitnet_session_last_error(p), "params.embeddings"));
    ep.pooling = BITNET_POOLING_LAST;
    assert_int_equal(bitnet_session_pool(p, &ep, out, NE), BITNET_OK);
    bitnet_session_free(p);
    /* an eval that did not start at position 0 cannot be mean-pooled */
    p = open_s(512, 1, 1);
    assert_int_equal(bitnet_session_eval(p, t, 2), BITNET_OK);
    assert_int_equal(bitnet_session_eval(p, t + 2, 2), BITNET_OK);
    ep.pooling = BITNET_POOLING_MEAN;
    assert_int_equal(bitnet_session_pool(p, &ep, out, NE), BITNET_E_INVALID_ARG);
    bitnet_session_free(p);
    bitnet_session_free(s);
}

static void test_alloc_failures(void **state) {
    (void)state;
    bitnet_token t[NT];
    prompt(t, NT, 9);
    float want[NE], got[NE];
    bitnet_session *ref = open_s(4, 1, 0);
    assert_int_equal(bitnet_session_embed(ref, t, NT, NULL, want, NE), BITNET_OK);
    bitnet_session_free(ref);
    int ok = 0;
    for (uint64_t n = 1; n < 200 && !ok; n++) {
        bitnet_session *s = open_s(4, 1, 0);
        bn_alloc_fail_after(n);
        bitnet_status st = bitnet_session_embed_text(s, "some text", 9, NULL, got, NE, NULL);
        if (st == BITNET_OK) st = bitnet_session_embed(s, t, NT, NULL, got, NE);
        bn_alloc_fail_after(0);
        if (st == BITNET_OK) {
            ok = 1;
            assert_memory_equal(got, want, sizeof got);
        } else {
            assert_int_equal(st, BITNET_E_NOMEM);
            /* the session is usable afterwards */
            assert_int_equal(bitnet_session_embed(s, t, NT, NULL, got, NE), BITNET_OK);
            assert_memory_equal(got, want, sizeof got);
        }
        bitnet_session_free(s);
    }
    assert_true(ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pooling),
        cmocka_unit_test(test_text_and_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
