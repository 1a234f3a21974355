/*
 * test_session.c -- sessions: batched vs token-by-token evaluation, positions across
 * calls, chunking by n_batch, thread-count independence, parallel sessions, errors
 * (context full, bad token ids), logits_all/embeddings, truncate, reset and state
 * save/load.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>

#include "test_model_util.h"

static bitnet_model *g_model;   /* bitnet-b1.58, I2_S */
static bitnet_model *g_model2;  /* same shapes, another seed */

/* The bit-exact invariants below are checked on the scalar reference kernels (explicit
 * isa); test_auto_kernels checks the automatically chosen variant within a tolerance. */
static bitnet_model *make_isa(uint64_t seed, const char *tag, bitnet_isa isa) {
    tm_spec sp;
    tm_default(&sp);
    sp.seed = seed;
    char path[512];
    tm_path(path, sizeof path, tag);
    if (tm_write(&sp, path) != 0) return NULL;
    bitnet_model_params p;
    bitnet_model_default_params(&p, sizeof p);
    p.isa = isa;
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(path, &p, &m);
    unlink(path);
    return st == BITNET_OK ? m : NULL;
}

static bitnet_model *make(uint64_t seed, const char *tag) { return make_isa(seed, tag, BITNET_ISA_SCALAR); }

static int setup(void **state) {
    (void)state;
    g_model = make(11, "sess1");
    g_model2 = make(12, "sess2");
    return g_model && g_model2 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    bitnet_model_free(g_model);
    bitnet_model_free(g_model2);
    return 0;
}

#define NV 300
#define NT 24

static void prompt(bitnet_token *t, int n, uint64_t seed) {
    uint64_t r = seed;
    for (int i = 0; i < n; i++) t[i] = (bitnet_token)(tm_next(&r) % NV);
}

static bitnet_session *open_s(bitnet_model *m, uint32_t n_ctx, uint32_t n_batch, uint32_t threads, int all,
                              bitnet_kv_type kv) {
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_threads = threads;
    p.logits_all = all;
    p.kv_type = kv;
    bitnet_session *s = NULL;
    assert_int_equal(bitnet_session_create(m, &p, &s), BITNET_OK);
    return s;
}

/* logits of every position: one batch vs one token at a time vs chunks of 5, on 1 and
 * 3 threads: all bit-identical (integer dot products, fixed float order). */
static void test_batch_equivalence(void **state) {
    (void)state;
    bitnet_token t[NT];
    prompt(t, NT, 5);
    static float ref[NT][NV];
    bitnet_session *a = open_s(g_model, 64, 512, 1, 1, BITNET_KV_F16);
    assert_int_equal(bitnet_session_eval(a, t, NT), BITNET_OK);
    assert_int_equal(bitnet_session_n_past(a), NT);
    for (int i = 0; i < NT; i++) {
        const float *lg;
        assert_int_equal(bitnet_session_logits(a, i, &lg), BITNET_OK);
        memcpy(ref[i], lg, sizeof ref[i]);
        for (int j = 0; j < NV; j++) assert_true(isfinite(lg[j]));
    }
    /* -1 is the last token */
    const float *last;
    assert_int_equal(bitnet_session_logits(a, -1, &last), BITNET_OK);
    assert_memory_equal(last, ref[NT - 1], sizeof ref[0]);
    assert_int_equal(bitnet_session_logits(a, NT, &last), BITNET_E_INVALID_ARG);
    bitnet_session_free(a);

    static const uint32_t threads[] = {1, 3};
    for (size_t k = 0; k < 2; k++) {
        bitnet_session *b = open_s(g_model, 64, 512, threads[k], 0, BITNET_KV_F16);
        for (int i = 0; i < NT; i++) {
            assert_int_equal(bitnet_session_eval(b, &t[i], 1), BITNET_OK);
            const float *lg;
            assert_int_equal(bitnet_session_logits(b, -1, &lg), BITNET_OK);
            assert_memory_equal(lg, ref[i], sizeof ref[i]);
        }
        /* logits of earlier tokens are not kept without logits_all */
        assert_int_equal(bitnet_session_logits(b, 0, &last), BITNET_E_INVALID_ARG);
        bitnet_session_free(b);

        bitnet_session *c = open_s(g_model, 64, 5, threads[k], 1, BITNET_KV_F16);
        assert_int_equal(bitnet_session_eval(c, t, 7), BITNET_OK);
        assert_int_equal(bitnet_session_eval(c, t + 7, NT - 7), BITNET_OK);
        for (int i = 7; i < NT; i++) {
            const float *lg;
            assert_int_equal(bitnet_session_logits(c, i - 7, &lg), BITNET_OK);
            assert_memory_equal(lg, ref[i], sizeof ref[i]);
        }
        bitnet_session_free(c);
    }
}

/* f32 and f16 caches give close (not identical) logits; positions matter. */
static void test_kv_types_and_positions(void **state) {
    (void)state;
    bitnet_token t[NT];
    prompt(t, NT, 9);
    bitnet_session *a = open_s(g_model, 64, 512, 1, 0, BITNET_KV_F16);
    bitnet_session *b = open_s(g_model, 64, 512, 1, 0, BITNET_KV_F32);
    assert_int_equal(bitnet_session_eval(a, t, NT), BITNET_OK);
    assert_int_equal(bitnet_session_eval(b, t, NT), BITNET_OK);
    const float *la, *lb;
    assert_int_equal(bitnet_session_logits(a, -1, &la), BITNET_OK);
    assert_int_equal(bitnet_session_logits(b, -1, &lb), BITNET_OK);
    double md = 0, mag = 0;
    for (int j = 0; j < NV; j++) {
        md = fmax(md, fabs((double)la[j] - lb[j]));
        mag = fmax(mag, fabs((double)lb[j]));
    }
    assert_true(mag > 0.1);
    assert_true(md < 0.05 * mag);
    /* the same last token at another position gives other logits */
    bitnet_session_reset(b);
    assert_int_equal(bitnet_session_n_past(b), 0);
    assert_int_equal(bitnet_session_logits(b, -1, &lb), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_eval(b, t + 1, NT - 1), BITNET_OK);
    assert_int_equal(bitnet_session_logits(b, -1, &lb), BITNET_OK);
    int differ = 0;
    for (int j = 0; j < NV; j++) differ |= la[j] != lb[j];
    assert_true(differ);
    bitnet_session_free(a);
    bitnet_session_free(b);
}

static void test_errors(void **state) {
    (void)state;
    bitnet_token t[NT];
    prompt(t, NT, 3);
    bitnet_session *s = open_s(g_model, 16, 512, 1, 0, BITNET_KV_F16);
    assert_int_equal(bitnet_session_n_ctx(s), 16);
    assert_int_equal(bitnet_session_eval(s, t, 17), BITNET_E_CONTEXT_FULL);
    assert_int_equal(bitnet_session_n_past(s), 0);
    assert_non_null(strstr(bitnet_session_last_error(s), "n_ctx 16"));
    assert_int_equal(bitnet_session_eval(s, t, 10), BITNET_OK);
    assert_int_equal(bitnet_session_eval(s, t, 7), BITNET_E_CONTEXT_FULL);
    assert_int_equal(bitnet_session_n_past(s), 10);
    bitnet_token bad[3] = {1, NV, 2};
    assert_int_equal(bitnet_session_eval(s, bad, 3), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_session_last_error(s), "300"));
    bad[1] = -1;
    assert_int_equal(bitnet_session_eval(s, bad, 3), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_n_past(s), 10);
    assert_int_equal(bitnet_session_eval(s, t, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_eval(s, t, 6), BITNET_OK);
    assert_int_equal(bitnet_session_n_past(s), 16);
    assert_int_equal(bitnet_session_eval(s, t, 1), BITNET_E_CONTEXT_FULL);
    assert_int_equal(bitnet_session_truncate(s, 17), BITNET_E_INVALID_ARG);
    bitnet_session_free(s);
    /* n_ctx 0 = the model's context (256 here, below the 4096 cap) */
    s = open_s(g_model, 0, 512, 1, 0, BITNET_KV_F16);
    assert_int_equal(bitnet_session_n_ctx(s), 256);
    bitnet_session_free(s);
    bitnet_session *o = NULL;
    assert_int_equal(bitnet_session_create(NULL, NULL, &o), BITNET_E_INVALID_ARG);
}

/* truncate + re-eval reproduces the same logits; state save/load restores them */
static void test_truncate_and_state(void **state) {
    (void)state;
    bitnet_token t[NT];
    prompt(t, NT, 21);
    bitnet_session *s = open_s(g_model, 64, 512, 2, 0, BITNET_KV_F16);
    assert_int_equal(bitnet_session_eval(s, t, NT), BITNET_OK);
    float ref[NV];
    const float *lg;
    assert_int_equal(bitnet_session_logits(s, -1, &lg), BITNET_OK);
    memcpy(ref, lg, sizeof ref);
    assert_int_equal(bitnet_session_truncate(s, 10), BITNET_OK);
    assert_int_equal(bitnet_session_n_past(s), 10);
    size_t n_tok = 0;
    (void)n_tok;
    assert_int_equal(bitnet_session_eval(s, t + 10, NT - 10), BITNET_OK);
    assert_int_equal(bitnet_session_logits(s, -1, &lg), BITNET_OK);
    assert_memory_equal(lg, ref, sizeof ref);

    /* save at 12 tokens, continue, then restore into a fresh session and continue */
    assert_int_equal(bitnet_session_truncate(s, 12), BITNET_OK);
    assert_int_equal(bitnet_session_eval(s, t + 12, 1), BITNET_OK);
    size_t need = 0;
    assert_int_equal(bitnet_session_state_save(s, NULL, 0, &need), BITNET_E_BUFFER_TOO_SMALL);
    assert_true(need > 13 * 4);
    uint8_t *blob = malloc(need);
    assert_non_null(blob);
    size_t got = 0;
    assert_int_equal(bitnet_session_state_save(s, blob, need, &got), BITNET_OK);
    assert_int_equal(got, need);
    float after13[NV];
    assert_int_equal(bitnet_session_logits(s, -1, &lg), BITNET_OK);
    memcpy(after13, lg, sizeof after13);

    bitnet_session *r = open_s(g_model, 64, 512, 1, 0, BITNET_KV_F16);
    assert_int_equal(bitnet_session_state_load(r, blob, need), BITNET_OK);
    assert_int_equal(bitnet_session_n_past(r), 13);
    assert_int_equal(bitnet_session_logits(r, -1, &lg), BITNET_OK);
    assert_memory_equal(lg, after13, sizeof after13);
    assert_int_equal(bitnet_session_eval(r, t + 13, NT - 13), BITNET_OK);
    assert_int_equal(bitnet_session_logits(r, -1, &lg), BITNET_OK);
    assert_memory_equal(lg, ref, sizeof ref);

    /* corrupt blob, truncated blob, wrong KV type, another model, too small a context */
    blob[need / 2] ^= 0x40;
    assert_int_equal(bitnet_session_state_load(r, blob, need), BITNET_E_FORMAT);
    blob[need / 2] ^= 0x40;
    assert_int_equal(bitnet_session_state_load(r, blob, need - 1), BITNET_E_FORMAT);
    assert_int_equal(bitnet_session_state_load(r, "nope", 4), BITNET_E_FORMAT);
    bitnet_session *f32 = open_s(g_model, 64, 512, 1, 0, BITNET_KV_F32);
    assert_int_equal(bitnet_session_state_load(f32, blob, need), BITNET_E_FORMAT);
    bitnet_session_free(f32);
    bitnet_session *other = open_s(g_model2, 64, 512, 1, 0, BITNET_KV_F16);
    assert_int_equal(bitnet_session_state_load(other, blob, need), BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_session_last_error(other), "another model"));
    bitnet_session_free(other);
    bitnet_session *small = open_s(g_model, 8, 512, 1, 0, BITNET_KV_F16);
    assert_int_equal(bitnet_session_state_load(small, blob, need), BITNET_E_CONTEXT_FULL);
    bitnet_session_free(small);
    /* the failed loads left r usable and unchanged */
    assert_int_equal(bitnet_session_n_past(r), NT);
    free(blob);
    bitnet_session_free(r);
    bitnet_session_free(s);
}

/* embeddings: the last token always; every token with params.embeddings */
static void test_embeddings(void **state) {
    (void)state;
    bitnet_token t[6];
    prompt(t, 6, 33);
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = 32;
    p.n_threads = 1;
    p.embeddings = 1;
    bitnet_session *s = NULL;
    assert_int_equal(bitnet_session_create(g_model, &p, &s), BITNET_OK);
    assert_int_equal(bitnet_session_eval(s, t, 6), BITNET_OK);
    const float *e0, *e5, *el;
    assert_int_equal(bitnet_session_embeddings(s, 0, &e0), BITNET_OK);
    assert_int_equal(bitnet_session_embeddings(s, 5, &e5), BITNET_OK);
    assert_int_equal(bitnet_session_embeddings(s, -1, &el), BITNET_OK);
    assert_ptr_equal(e5, el);
    /* output norm: mean square of (h / rms) * w is close to mean(w^2) ~ 1 */
    double ms = 0;
    for (int i = 0; i < 256; i++) ms += (double)e5[i] * e5[i];
    ms /= 256;
    assert_true(ms > 0.5 && ms < 2.0);
    /* the last token's logits are still there */
    const float *lg;
    assert_int_equal(bitnet_session_logits(s, -1, &lg), BITNET_OK);
    bitnet_session *q = open_s(g_model, 32, 512, 1, 0, BITNET_KV_F16);
    assert_int_equal(bitnet_session_eval(q, t, 6), BITNET_OK);
    const float *lq, *eq;
    assert_int_equal(bitnet_session_logits(q, -1, &lq), BITNET_OK);
    assert_memory_equal(lg, lq, NV * sizeof(float));
    assert_int_equal(bitnet_session_embeddings(q, -1, &eq), BITNET_OK);
    assert_memory_equal(eq, e5, 256 * sizeof(float));
    assert_int_equal(bitnet_session_embeddings(q, 0, &eq), BITNET_E_INVALID_ARG);
    bitnet_session_free(q);
    bitnet_session_free(s);
}

/* sessions on one model from several threads at once give the serial logits */
typedef struct par_arg {
    uint64_t seed;
    float    out[NV];
    int      rc;
} par_arg;

static void *par_run(void *arg) {
    par_arg *a = arg;
    bitnet_token t[NT];
    prompt(t, NT, a->seed);
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = 64;
    p.n_threads = 1;
    bitnet_session *s = NULL;
    a->rc = 1;
    if (bitnet_session_create(g_model, &p, &s) != BITNET_OK) return NULL;
    const float *lg;
    if (bitnet_session_eval(s, t, NT / 2) == BITNET_OK && bitnet_session_eval(s, t + NT / 2, NT - NT / 2) == BITNET_OK &&
        bitnet_session_logits(s, -1, &lg) == BITNET_OK) {
        memcpy(a->out, lg, sizeof a->out);
        a->rc = 0;
    }
    bitnet_session_free(s);
    return NULL;
}

static void test_parallel_sessions(void **state) {
    (void)state;
    enum { N = 4 };
    static par_arg serial[N], par[N];
    for (int i = 0; i < N; i++) {
        serial[i].seed = par[i].seed = 100 + (uint64_t)i;
        par_run(&serial[i]);
        assert_int_equal(serial[i].rc, 0);
    }
    pthread_t th[N];
    for (int i = 0; i < N; i++) assert_int_equal(pthread_create(&th[i], NULL, par_run, &par[i]), 0);
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(par[i].rc, 0);
        assert_memory_equal(par[i].out, serial[i].out, sizeof par[i].out);
    }
}

/* The automatically chosen kernels: batched, token-by-token and multi-threaded runs
 * agree with the scalar reference within float tolerance. */
static void test_auto_kernels(void **state) {
    (void)state;
    bitnet_model *ma = make_isa(11, "sessauto", BITNET_ISA_AUTO);
    assert_non_null(ma);
    bitnet_token t[NT];
    prompt(t, NT, 5);
    static float ref[NT][NV];
    bitnet_session *a = open_s(g_model, 64, 512, 1, 1, BITNET_KV_F16);
    assert_int_equal(bitnet_session_eval(a, t, NT), BITNET_OK);
    for (int i = 0; i < NT; i++) {
        const float *lg;
        assert_int_equal(bitnet_session_logits(a, i, &lg), BITNET_OK);
        memcpy(ref[i], lg, sizeof ref[i]);
    }
    bitnet_session_free(a);
    static const uint32_t threads[] = {1, 3};
    for (size_t k = 0; k < 2; k++) {
        for (int batched = 0; batched < 2; batched++) {
            bitnet_session *b = open_s(ma, 64, 512, threads[k], 1, BITNET_KV_F16);
            double md = 0;
            for (int i = 0; i < NT; i += batched ? NT : 1) {
                assert_int_equal(bitnet_session_eval(b, &t[i], batched ? NT : 1), BITNET_OK);
                for (int j = 0; j < (batched ? NT : 1); j++) {
                    const float *lg;
                    assert_int_equal(bitnet_session_logits(b, j, &lg), BITNET_OK);
                    for (int v = 0; v < NV; v++) md = fmax(md, fabs((double)lg[v] - ref[i + j][v]));
                }
            }
            assert_true(md < 2e-3);
            bitnet_session_free(b);
        }
    }
    bitnet_model_free(ma);
}

/* Every architecture, including llama with its own output.weight (untied: a second
 * dense matrix that a kernel variant repacks separately), gives the same logits on the
 * automatically chosen kernels as on scalar, within float tolerance. */
static void test_auto_vs_scalar_archs(void **state) {
    (void)state;
    static const struct { const char *arch; int with_output; bitnet_type etype; } cases[] = {
        {"bitnet-b1.58", 0, BITNET_TYPE_F16}, {"bitnet", 0, BITNET_TYPE_F16}, {"llama", 1, BITNET_TYPE_F16},
        {"llama", 0, BITNET_TYPE_F16},        {"llama", 1, BITNET_TYPE_Q8_0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tm_spec sp;
        tm_default(&sp);
        sp.arch = cases[c].arch;
        sp.with_output = cases[c].with_output;
        sp.etype = cases[c].etype;
        sp.seed = 40 + c;
        char path[512];
        tm_path(path, sizeof path, "archauto");
        assert_int_equal(tm_write(&sp, path), 0);
        float *ref = NULL;
        for (int pass = 0; pass < 2; pass++) {
            bitnet_model_params p;
            bitnet_model_default_params(&p, sizeof p);
            p.isa = pass ? BITNET_ISA_AUTO : BITNET_ISA_SCALAR;
            bitnet_model *m = NULL;
            assert_int_equal(bitnet_model_load(path, &p, &m), BITNET_OK);
            const int64_t nv = bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
            bitnet_session *s = open_s(m, 64, 512, 2, 1, BITNET_KV_F16);
            bitnet_token t[NT];
            prompt(t, NT, 9);
            assert_int_equal(bitnet_session_eval(s, t, NT), BITNET_OK);
            if (!pass) ref = malloc((size_t)(NT * nv) * sizeof(float));
            /* Float sums in another order can move an activation across an int8 rounding
             * boundary, which shifts later logits by a visible step (the per-token int8
             * math is discontinuous): most positions agree tightly, all within 2%.  A
             * wrong layout or a wrong matrix is off by about the logits' own size. */
            double mag = 0, worst = 0;
            int tight = 0;
            for (int i = 0; i < NT; i++) {
                const float *lg;
                assert_int_equal(bitnet_session_logits(s, i, &lg), BITNET_OK);
                double md = 0;
                for (int64_t v = 0; v < nv; v++) {
                    if (!pass) ref[i * nv + v] = lg[v];
                    md = fmax(md, fabs((double)lg[v] - ref[i * nv + v]));
                    mag = fmax(mag, fabs((double)ref[i * nv + v]));
                }
                worst = fmax(worst, md);
                tight += md <= 2e-3 * (mag + 1);
            }
            if (pass && !(worst <= 0.02 * (mag + 1) && tight >= NT * 3 / 4))
                fail_msg("%s%s: automatic kernels differ from scalar by up to %g (max |logit| %g; %d/%d positions "
                         "within 2e-3)", cases[c].arch, cases[c].with_output ? " +output.weight" : "", worst, mag,
                         tight, NT);
            bitnet_session_free(s);
            bitnet_model_free(m);
        }
        free(ref);
        unlink(path);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_vs_scalar_archs),
        cmocka_unit_test(test_batch_equivalence),
        cmocka_unit_test(test_kv_types_and_positions),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_truncate_and_state),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_parallel_sessions),
        cmocka_unit_test(test_auto_kernels),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
