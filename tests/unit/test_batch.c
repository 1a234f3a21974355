/*
 * test_batch.c -- batched evaluation of many sessions (bitnet_batch_*): a session gets
 * bit-identical logits, embeddings and greedy tokens whether it runs alone or in a
 * batch with others (prompts of different lengths, prompts mixed with decode steps,
 * entries split across steps, 1 and 2 batch threads, every kernel variant this CPU
 * has); and every misuse is refused with a clear error.  Also bitnet_session_copy.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_model_util.h"

#include "internal.h" /* bn_alloc_fail_after */

#define NV 300
#define NS 5    /* sessions            */
#define NGEN 12 /* greedy tokens each  */

static bitnet_model *load_isa(const tm_spec *sp, const char *tag, bitnet_isa isa) {
    char path[512];
    tm_path(path, sizeof path, tag);
    if (tm_write(sp, path) != 0) return NULL;
    bitnet_model_params p;
    bitnet_model_default_params(&p, sizeof p);
    p.isa = isa;
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(path, &p, &m);
    unlink(path);
    return st == BITNET_OK ? m : NULL;
}

static bitnet_session *open_s(bitnet_model *m, uint32_t n_ctx, uint32_t threads, int logits_all, int embd) {
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = n_ctx;
    p.n_threads = threads;
    p.logits_all = logits_all;
    p.embeddings = embd;
    bitnet_session *s = NULL;
    assert_int_equal(bitnet_session_create(m, &p, &s), BITNET_OK);
    return s;
}

static bitnet_batch *open_b(bitnet_model *m, uint32_t n_tokens, uint32_t threads) {
    bitnet_batch_params p;
    bitnet_batch_default_params(&p, sizeof p);
    p.n_tokens = n_tokens;
    p.n_threads = threads;
    bitnet_batch *b = NULL;
    assert_int_equal(bitnet_batch_create(m, &p, &b), BITNET_OK);
    return b;
}

static int argmax(const float *l, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

static void prompt(bitnet_token *t, int n, uint64_t seed) {
    uint64_t r = seed;
    for (int i = 0; i < n; i++) t[i] = (bitnet_token)(tm_next(&r) % NV);
}

/* Reference: each session alone, prompt then NGEN greedy steps; record the logits of
 * every step (the prompt's last token, then each generated token). */
static float ref_logits[NS][NGEN + 1][NV];
static float ref_embd[NS][NGEN + 1][512];
static bitnet_token ref_tok[NS][NGEN];
static const int plen[NS] = {1, 9, 3, 17, 6};

static void run_alone(bitnet_model *m, int n_vocab, int n_embd) {
    for (int s = 0; s < NS; s++) {
        bitnet_token pr[32];
        prompt(pr, plen[s], 100 + (uint64_t)s);
        bitnet_session *a = open_s(m, 64, 1, 0, 0);
        assert_int_equal(bitnet_session_eval(a, pr, (size_t)plen[s]), BITNET_OK);
        for (int k = 0; k <= NGEN; k++) {
            const float *lg, *em;
            assert_int_equal(bitnet_session_logits(a, -1, &lg), BITNET_OK);
            assert_int_equal(bitnet_session_embeddings(a, -1, &em), BITNET_OK);
            memcpy(ref_logits[s][k], lg, (size_t)n_vocab * sizeof(float));
            memcpy(ref_embd[s][k], em, (size_t)n_embd * sizeof(float));
            if (k == NGEN) break;
            ref_tok[s][k] = argmax(lg, n_vocab);
            assert_int_equal(bitnet_session_eval(a, &ref_tok[s][k], 1), BITNET_OK);
        }
        bitnet_session_free(a);
    }
}

/* The same through batches: prompts join at different steps (session s starts at step
 * s), so prompts are evaluated together with other sessions' decode tokens. */
static void run_batched(bitnet_model *m, int n_vocab, int n_embd, uint32_t n_tokens, uint32_t threads) {
    bitnet_session *ss[NS];
    for (int s = 0; s < NS; s++) ss[s] = open_s(m, 64, 1, 0, 0);
    bitnet_batch *b = open_b(m, n_tokens, threads);
    int step_of[NS] = {0}; /* steps done by each session (0 = prompt pending) */
    for (int round = 0; round < NS + NGEN + 1; round++) {
        int queued = 0;
        for (int s = 0; s < NS; s++) {
            if (round < s || step_of[s] > NGEN) continue;
            if (step_of[s] == 0) {
                bitnet_token pr[32];
                prompt(pr, plen[s], 100 + (uint64_t)s);
                assert_int_equal(bitnet_batch_add(b, ss[s], pr, (size_t)plen[s], 0), BITNET_OK);
            } else if (step_of[s] <= NGEN) {
                bitnet_token t = ref_tok[s][step_of[s] - 1];
                assert_int_equal(bitnet_batch_add(b, ss[s], &t, 1, 0), BITNET_OK);
            }
            queued++;
        }
        if (!queued) continue;
        assert_int_equal(bitnet_batch_eval(b), BITNET_OK);
        assert_int_equal(bitnet_batch_n_tokens(b), 0);
        for (int s = 0; s < NS; s++) {
            if (round < s || step_of[s] > NGEN) continue;
            const float *lg, *em;
            int k = step_of[s];
            assert_int_equal(bitnet_session_logits(ss[s], -1, &lg), BITNET_OK);
            assert_int_equal(bitnet_session_embeddings(ss[s], -1, &em), BITNET_OK);
            if (memcmp(lg, ref_logits[s][k], (size_t)n_vocab * sizeof(float)) != 0)
                fail_msg("session %d step %d: batched logits differ from the session alone (n_tokens %u, %u threads)",
                         s, k, n_tokens, threads);
            assert_memory_equal(em, ref_embd[s][k], (size_t)n_embd * sizeof(float));
            if (k < NGEN) assert_int_equal(argmax(lg, n_vocab), ref_tok[s][k]);
            step_of[s]++;
        }
    }
    for (int s = 0; s < NS; s++) {
        assert_int_equal(bitnet_session_n_past(ss[s]), (uint32_t)(plen[s] + NGEN));
        bitnet_session_free(ss[s]);
    }
    bitnet_batch_free(b);
}

static void check_model(bitnet_model *m) {
    const int n_vocab = (int)bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    const int n_embd = (int)bitnet_model_get_info(m, BITNET_INFO_N_EMBD);
    assert_int_equal(n_vocab, NV);
    assert_true(n_embd <= 512);
    run_alone(m, n_vocab, n_embd);
    run_batched(m, n_vocab, n_embd, 512, 1);
    run_batched(m, n_vocab, n_embd, 512, 2);
    run_batched(m, n_vocab, n_embd, 4, 2); /* entries split across steps */
    run_batched(m, n_vocab, n_embd, 1, 1); /* one token per step */
}

/* Every kernel variant this build and CPU can run, on the 2B-4T-like and the llama
 * graph, with an untied F16 output layer (the dense path) and the tied embedding. */
static void test_batched_equals_alone(void **state) {
    (void)state;
    bitnet_isa isas[16];
    size_t n_isa = bitnet_isa_list(isas, 16);
    assert_true(n_isa <= 16);
    for (size_t i = 0; i < n_isa; i++) {
        if (!bitnet_isa_supported(isas[i])) continue;
        for (int variant = 0; variant < 2; variant++) {
            tm_spec sp;
            tm_default(&sp);
            sp.seed = 7 + (uint64_t)variant;
            if (variant) {
                sp.arch = "llama";
                sp.with_output = 1;
                sp.wtype = BITNET_TYPE_TQ2_0;
            }
            bitnet_model *m = load_isa(&sp, "batch", isas[i]);
            assert_non_null(m);
            check_model(m);
            bitnet_model_free(m);
        }
    }
}

/* logits_all for one entry of a batch: every row equals the session's own logits_all eval. */
static void test_logits_all(void **state) {
    (void)state;
    tm_spec sp;
    tm_default(&sp);
    bitnet_model *m = load_isa(&sp, "batchall", BITNET_ISA_AUTO);
    assert_non_null(m);
    bitnet_token pr[20];
    prompt(pr, 20, 3);
    bitnet_session *ref = open_s(m, 64, 1, 1, 0);
    assert_int_equal(bitnet_session_eval(ref, pr, 20), BITNET_OK);
    bitnet_session *a = open_s(m, 64, 1, 0, 0), *c = open_s(m, 64, 1, 0, 0);
    bitnet_batch *b = open_b(m, 8, 2);
    assert_int_equal(bitnet_batch_add(b, c, pr, 5, 0), BITNET_OK);
    assert_int_equal(bitnet_batch_add(b, a, pr, 20, BITNET_BATCH_LOGITS_ALL), BITNET_OK);
    assert_int_equal(bitnet_batch_n_tokens(b), 25);
    assert_int_equal(bitnet_batch_eval(b), BITNET_OK);
    for (int i = 0; i < 20; i++) {
        const float *x, *y;
        assert_int_equal(bitnet_session_logits(ref, i, &x), BITNET_OK);
        assert_int_equal(bitnet_session_logits(a, i, &y), BITNET_OK);
        assert_memory_equal(x, y, NV * sizeof(float));
    }
    /* the other entry kept only its last token's logits */
    const float *y;
    assert_int_equal(bitnet_session_logits(c, 0, &y), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_logits(c, -1, &y), BITNET_OK);
    bitnet_session_free(ref);
    bitnet_session_free(a);
    bitnet_session_free(c);
    bitnet_batch_free(b);
    bitnet_model_free(m);
}

static void test_errors(void **state) {
    (void)state;
    tm_spec sp;
    tm_default(&sp);
    bitnet_model *m = load_isa(&sp, "batcherr", BITNET_ISA_AUTO);
    sp.seed = 99;
    bitnet_model *m2 = load_isa(&sp, "batcherr2", BITNET_ISA_AUTO);
    assert_non_null(m);
    assert_non_null(m2);
    bitnet_batch *b = open_b(m, 16, 1), *b2 = open_b(m, 16, 1);
    bitnet_session *s = open_s(m, 8, 1, 0, 0), *o = open_s(m2, 8, 1, 0, 0);
    bitnet_token t[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, bad = NV;

    assert_int_equal(bitnet_batch_create(m, NULL, NULL), BITNET_E_INVALID_ARG);
    bitnet_batch *x = (bitnet_batch *)1;
    assert_int_equal(bitnet_batch_create(NULL, NULL, &x), BITNET_E_INVALID_ARG);
    assert_null(x);
    assert_int_equal(bitnet_batch_add(NULL, s, t, 1, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_batch_add(b, NULL, t, 1, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_batch_add(b, s, NULL, 1, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_batch_add(b, s, t, 0, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_batch_add(b, s, t, 1, 0x80), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_session_last_error(s), "flags"));
    assert_int_equal(bitnet_batch_add(b, s, &bad, 1, 0), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "outside the vocabulary"));
    assert_int_equal(bitnet_batch_add(b, s, t, 9, 0), BITNET_E_CONTEXT_FULL);
    assert_int_equal(bitnet_batch_add(b, o, t, 1, 0), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "another model"));
    assert_int_equal(bitnet_batch_n_tokens(b), 0);

    /* once per batch, one batch at a time, no direct eval while queued */
    assert_int_equal(bitnet_batch_add(b, s, t, 2, 0), BITNET_OK);
    assert_int_equal(bitnet_batch_add(b, s, t, 1, 0), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "already in this batch"));
    assert_int_equal(bitnet_batch_add(b2, s, t, 1, 0), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "another batch"));
    assert_int_equal(bitnet_session_eval(s, t, 1), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_n_past(s), 0);

    /* a session restored/changed after add: refused at eval, nothing evaluated */
    bitnet_batch_clear(b);
    assert_int_equal(bitnet_batch_n_tokens(b), 0);
    assert_int_equal(bitnet_session_eval(s, t, 4), BITNET_OK);
    assert_int_equal(bitnet_batch_add(b, s, t, 4, 0), BITNET_OK);
    bitnet_session *s2 = open_s(m, 8, 1, 0, 0);
    assert_int_equal(bitnet_session_eval(s2, t, 8), BITNET_OK);
    size_t need = 0;
    assert_int_equal(bitnet_session_state_save(s2, NULL, 0, &need), BITNET_E_BUFFER_TOO_SMALL);
    void *blob = malloc(need);
    assert_int_equal(bitnet_session_state_save(s2, blob, need, &need), BITNET_OK);
    assert_int_equal(bitnet_session_state_load(s, blob, need), BITNET_OK); /* n_past 8 now */
    free(blob);
    assert_int_equal(bitnet_batch_eval(b), BITNET_E_CONTEXT_FULL);
    assert_int_equal(bitnet_session_n_past(s), 8);
    assert_int_equal(bitnet_batch_n_tokens(b), 0);

    /* a session freed while queued leaves the batch */
    bitnet_session_reset(s);
    assert_int_equal(bitnet_batch_add(b, s2, t, 1, 0), BITNET_E_CONTEXT_FULL);
    bitnet_session_reset(s2);
    assert_int_equal(bitnet_batch_add(b, s, t, 3, 0), BITNET_OK);
    assert_int_equal(bitnet_batch_add(b, s2, t, 3, 0), BITNET_OK);
    bitnet_session_free(s);
    assert_int_equal(bitnet_batch_eval(b), BITNET_OK);
    assert_int_equal(bitnet_session_n_past(s2), 3);
    /* freeing the batch releases its sessions */
    assert_int_equal(bitnet_batch_add(b, s2, t, 1, 0), BITNET_OK);
    bitnet_batch_free(b);
    assert_int_equal(bitnet_session_eval(s2, t, 1), BITNET_OK);
    assert_int_equal(bitnet_batch_eval(NULL), BITNET_E_INVALID_ARG);
    bitnet_batch_clear(NULL);
    bitnet_batch_free(NULL);

    bitnet_session_free(s2);
    bitnet_session_free(o);
    bitnet_batch_free(b2);
    bitnet_model_free(m);
    bitnet_model_free(m2);
}

/* bitnet_session_copy forks a session: both continue exactly as the original would. */
static void test_copy(void **state) {
    (void)state;
    tm_spec sp;
    tm_default(&sp);
    bitnet_model *m = load_isa(&sp, "copy", BITNET_ISA_AUTO);
    sp.seed = 5;
    bitnet_model *m2 = load_isa(&sp, "copy2", BITNET_ISA_AUTO);
    assert_non_null(m);
    assert_non_null(m2);
    bitnet_token pr[12], nx[3] = {17, 18, 19};
    prompt(pr, 12, 9);
    bitnet_session *a = open_s(m, 64, 1, 0, 0), *b = open_s(m, 32, 1, 0, 0), *tiny = open_s(m, 8, 1, 0, 0);
    assert_int_equal(bitnet_session_eval(a, pr, 12), BITNET_OK);
    assert_int_equal(bitnet_session_eval(b, pr, 3), BITNET_OK); /* overwritten by the copy */
    assert_int_equal(bitnet_session_copy(b, a), BITNET_OK);
    assert_int_equal(bitnet_session_n_past(b), 12);
    const float *la, *lb;
    assert_int_equal(bitnet_session_logits(b, -1, &lb), BITNET_OK);
    assert_int_equal(bitnet_session_logits(a, -1, &la), BITNET_OK);
    assert_memory_equal(la, lb, NV * sizeof(float));
    assert_int_equal(bitnet_session_eval(a, nx, 3), BITNET_OK);
    assert_int_equal(bitnet_session_eval(b, nx, 3), BITNET_OK);
    assert_int_equal(bitnet_session_logits(a, -1, &la), BITNET_OK);
    assert_int_equal(bitnet_session_logits(b, -1, &lb), BITNET_OK);
    assert_memory_equal(la, lb, NV * sizeof(float));
    /* refusals */
    assert_int_equal(bitnet_session_copy(tiny, a), BITNET_E_CONTEXT_FULL);
    bitnet_session *o = open_s(m2, 64, 1, 0, 0);
    assert_int_equal(bitnet_session_copy(o, a), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_session_last_error(o), "different models"));
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.kv_type = BITNET_KV_F32;
    bitnet_session *f32 = NULL;
    assert_int_equal(bitnet_session_create(m, &p, &f32), BITNET_OK);
    assert_int_equal(bitnet_session_copy(f32, a), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_copy(NULL, a), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_copy(a, a), BITNET_OK);
    bitnet_session_free(f32);
    bitnet_session_free(o);
    bitnet_session_free(tiny);
    bitnet_session_free(a);
    bitnet_session_free(b);
    bitnet_model_free(m);
    bitnet_model_free(m2);
}

/* Allocation failures anywhere in creating a batch, adding to it and evaluating it:
 * each is BITNET_E_NOMEM, leaves the sessions as they were, and leaks nothing (ASan). */
static void test_alloc_failures(void **state) {
    (void)state;
    tm_spec sp;
    tm_default(&sp);
    bitnet_model *m = load_isa(&sp, "batchoom", BITNET_ISA_AUTO);
    assert_non_null(m);
    bitnet_token pr[9];
    prompt(pr, 9, 4);
    int ok = 0;
    for (uint64_t n = 1; n < 400 && !ok; n++) {
        bitnet_session *a = open_s(m, 32, 1, 0, 0), *b = open_s(m, 32, 1, 0, 0);
        assert_int_equal(bitnet_session_eval(a, pr, 3), BITNET_OK);
        bn_alloc_fail_after(n);
        bitnet_batch_params bp;
        bitnet_batch_default_params(&bp, sizeof bp);
        bp.n_tokens = 4;
        bp.n_threads = 2;
        bitnet_batch *bt = NULL;
        bitnet_status st = bitnet_batch_create(m, &bp, &bt);
        if (st == BITNET_OK) st = bitnet_batch_add(bt, a, pr + 3, 2, 0);
        if (st == BITNET_OK) st = bitnet_batch_add(bt, b, pr, 7, BITNET_BATCH_LOGITS_ALL);
        if (st == BITNET_OK) st = bitnet_batch_eval(bt);
        bn_alloc_fail_after(0);
        if (st == BITNET_OK) {
            ok = 1;
            assert_int_equal(bitnet_session_n_past(a), 5);
            assert_int_equal(bitnet_session_n_past(b), 7);
        } else {
            assert_int_equal(st, BITNET_E_NOMEM);
            /* nothing half-done: contexts as before the batch (a kept its 3 tokens) */
            assert_true(bitnet_session_n_past(a) == 3 || bitnet_session_n_past(a) == 5);
            assert_true(bitnet_session_n_past(b) == 0 || bitnet_session_n_past(b) == 7);
            assert_int_equal(bitnet_session_n_past(a) == 5, bitnet_session_n_past(b) == 7);
        }
        bitnet_batch_free(bt);
        bitnet_session_free(a);
        bitnet_session_free(b);
    }
    assert_true(ok);
    bitnet_model_free(m);
}

/* BITNET_BATCH_NO_LOGITS: embeddings as with logits, no logits afterwards. */
static void test_no_logits(void **state) {
    (void)state;
    tm_spec sp;
    tm_default(&sp);
    bitnet_model *m = load_isa(&sp, "batchnolog", BITNET_ISA_AUTO);
    assert_non_null(m);
    bitnet_token pr[10];
    prompt(pr, 10, 8);
    bitnet_session *ref = open_s(m, 32, 1, 0, 1), *a = open_s(m, 32, 1, 0, 1), *c = open_s(m, 32, 1, 0, 0);
    assert_int_equal(bitnet_session_eval(ref, pr, 10), BITNET_OK);
    bitnet_batch *b = open_b(m, 6, 1);
    assert_int_equal(bitnet_batch_add(b, a, pr, 10, BITNET_BATCH_NO_LOGITS), BITNET_OK);
    assert_int_equal(bitnet_batch_add(b, c, pr, 4, 0), BITNET_OK);
    assert_int_equal(bitnet_batch_eval(b), BITNET_OK);
    for (int i = 0; i < 10; i++) {
        const float *x, *y;
        assert_int_equal(bitnet_session_embeddings(ref, i, &x), BITNET_OK);
        assert_int_equal(bitnet_session_embeddings(a, i, &y), BITNET_OK);
        assert_memory_equal(x, y, 256 * sizeof(float));
    }
    const float *l;
    assert_int_equal(bitnet_session_logits(a, -1, &l), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_logits(c, -1, &l), BITNET_OK);
    assert_int_equal(bitnet_batch_add(b, a, pr, 1, BITNET_BATCH_NO_LOGITS | BITNET_BATCH_LOGITS_ALL), BITNET_E_INVALID_ARG);
    bitnet_batch_free(b);
    bitnet_session_free(ref);
    bitnet_session_free(a);
    bitnet_session_free(c);
    bitnet_model_free(m);
}

/* Profiling: counts the steps and tokens, the parts add up to the total, off costs nothing. */
static void test_profile(void **state) {
    (void)state;
    tm_spec sp;
    tm_default(&sp);
    bitnet_model *m = load_isa(&sp, "batchprof", BITNET_ISA_AUTO);
    assert_non_null(m);
    bitnet_token pr[12];
    prompt(pr, 12, 2);
    bitnet_session *s = open_s(m, 64, 1, 0, 0);
    bitnet_profile p;
    assert_int_equal(bitnet_session_eval(s, pr, 4), BITNET_OK);
    bitnet_session_get_profile(s, &p, sizeof p);
    assert_int_equal(p.struct_size, sizeof p);
    assert_true(p.steps == 0 && p.tokens == 0 && p.ns_total == 0); /* off by default */
    bitnet_session_set_profiling(s, 1);
    assert_int_equal(bitnet_session_eval(s, pr + 4, 5), BITNET_OK);
    assert_int_equal(bitnet_session_eval(s, pr + 9, 1), BITNET_OK);
    bitnet_session_get_profile(s, &p, sizeof p);
    assert_int_equal(p.steps, 2);
    assert_int_equal(p.tokens, 6);
    uint64_t sum = p.ns_embed + p.ns_token_ops + p.ns_qkv + p.ns_attention + p.ns_attn_out + p.ns_ffn_gate_up +
                   p.ns_ffn_down + p.ns_output;
    assert_true(p.ns_total > 0 && sum == p.ns_total);
    assert_true(p.ns_qkv > 0 && p.ns_ffn_down > 0 && p.ns_output > 0);
    /* an older, shorter struct gets only its prefix */
    bitnet_profile q;
    memset(&q, 0xab, sizeof q);
    bitnet_session_get_profile(s, &q, offsetof(bitnet_profile, ns_total));
    assert_int_equal(q.struct_size, offsetof(bitnet_profile, ns_total));
    assert_int_equal(q.tokens, 6);
    uint64_t junk;
    memset(&junk, 0xab, sizeof junk);
    assert_memory_equal(&q.ns_total, &junk, sizeof junk);
    bitnet_session_set_profiling(s, 0);
    assert_int_equal(bitnet_session_eval(s, pr + 10, 1), BITNET_OK);
    bitnet_session_get_profile(s, &p, sizeof p);
    assert_int_equal(p.steps, 0);
    /* batches */
    bitnet_batch *b = open_b(m, 8, 2);
    bitnet_session *t = open_s(m, 64, 1, 0, 0);
    bitnet_batch_set_profiling(b, 1);
    assert_int_equal(bitnet_batch_add(b, t, pr, 12, 0), BITNET_OK); /* two steps of at most 8 */
    assert_int_equal(bitnet_batch_eval(b), BITNET_OK);
    bitnet_batch_get_profile(b, &p, sizeof p);
    assert_int_equal(p.steps, 2);
    assert_int_equal(p.tokens, 12);
    bitnet_batch_free(b);
    bitnet_session_free(t);
    bitnet_session_free(s);
    bitnet_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_equals_alone),
        cmocka_unit_test(test_logits_all),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_no_logits),
        cmocka_unit_test(test_profile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
