/*
 * test_generate.c -- bitnet_session_sample / _generate / _beam_search on a tiny random
 * model written by test_model_util.h.
 *
 * The model is random, so expected results are derived inside each test from a plain
 * reference run: e.g. the text streamed with a stop string must equal the greedy text
 * of a run without stop strings, cut at the stop string's first occurrence.  End of
 * generation is forced with a negative presence penalty over the last token only
 * (repeat_last_n = 1): with </s> as the last context token, greedy sampling must pick it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_model_util.h"

typedef struct fixture {
    char            path[512];
    bitnet_model   *m;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    tm_spec sp;
    tm_default(&sp);
    sp.n_layer = 1;
    sp.n_ctx = 64;
    sp.seed = 3;
    tm_path(f->path, sizeof f->path, "generate");
    if (tm_write(&sp, f->path) != 0) return -1;
    if (bitnet_model_load(f->path, NULL, &f->m) != BITNET_OK) {
        fprintf(stderr, "load: %s\n", bitnet_last_error());
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    bitnet_model_free(f->m);
    unlink(f->path);
    free(f);
    return 0;
}

static bitnet_session *new_session(const bitnet_model *m, uint32_t n_ctx, int logits_all) {
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    p.logits_all = logits_all;
    bitnet_session *s = NULL;
    assert_int_equal(bitnet_session_create(m, &p, &s), BITNET_OK);
    return s;
}

static bitnet_sampler_params greedy(void) {
    bitnet_sampler_params p;
    bitnet_sampler_default_params(&p, sizeof p);
    p.temperature = 0.0f;
    return p;
}

/* Records every callback: concatenated text, call count, per-call tokens. */
typedef struct rec {
    char         text[4096];
    size_t       n;
    int          calls;
    bitnet_token toks[256];
    size_t       bound[256]; /* text length after each call */
    int          stop_after; /* return 1 on this call (1-based); 0 = never */
} rec;

static int rec_cb(void *user, bitnet_token t, const char *text, size_t len) {
    rec *r = user;
    assert_true(r->n + len < sizeof r->text);
    assert_true(text[len] == '\0'); /* NUL-terminated as a courtesy */
    memcpy(r->text + r->n, text, len);
    r->n += len;
    r->text[r->n] = 0;
    if (r->calls < 256) {
        r->toks[r->calls] = t;
        r->bound[r->calls] = r->n;
    }
    r->calls++;
    return r->stop_after && r->calls == r->stop_after;
}

static const bitnet_token PROMPT[4] = {1, 300 - 7, 300 - 20, 261};

static void run(const bitnet_model *m, uint32_t n_ctx, const bitnet_sampler_params *sp, bitnet_generate_params *gp,
                rec *r, bitnet_token *out, size_t cap, size_t *n_out, bitnet_stop_reason *why, uint32_t *n_past) {
    bitnet_session *s = new_session(m, n_ctx, 0);
    int stop_after = r->stop_after;
    memset(r, 0, sizeof *r);
    r->stop_after = stop_after;
    gp->callback = rec_cb;
    gp->user = r;
    assert_int_equal(bitnet_session_generate(s, PROMPT, 4, sp, gp, out, cap, n_out, why), BITNET_OK);
    if (n_past) *n_past = bitnet_session_n_past(s);
    bitnet_session_free(s);
}

static void test_max_tokens_and_text(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = 12;
    gp.ignore_eog = 1;
    rec r = {0};
    bitnet_token out[32];
    size_t n = 0;
    bitnet_stop_reason why = BITNET_STOP_NONE;
    uint32_t n_past = 0;
    run(f->m, 0, &sp, &gp, &r, out, 32, &n, &why, &n_past);
    assert_int_equal(n, 12);
    assert_int_equal(why, BITNET_STOP_MAX_TOKENS);
    assert_int_equal(n_past, 4 + 12);
    assert_int_equal(r.calls, 12);
    for (int i = 0; i < 12; i++) assert_int_equal(r.toks[i], out[i]);
    /* the streamed text is the detokenized output */
    char buf[4096];
    size_t nb = 0;
    assert_int_equal(bitnet_detokenize(f->m, out, n, BITNET_DETOK_KEEP_LEADING_SPACE, buf, sizeof buf, &nb),
                     BITNET_OK);
    size_t nb2 = 0;
    char buf2[4096];
    assert_int_equal(bitnet_detokenize(f->m, out, n, 0, buf2, sizeof buf2, &nb2), BITNET_OK);
    assert_true((r.n == nb && memcmp(r.text, buf, nb) == 0) || (r.n == nb2 && memcmp(r.text, buf2, nb2) == 0));
    /* greedy is deterministic: a second run gives the same tokens */
    rec r2 = {0};
    bitnet_token out2[32];
    run(f->m, 0, &sp, &gp, &r2, out2, 32, &n, &why, NULL);
    assert_memory_equal(out, out2, 12 * sizeof *out);
    /* max_tokens 0: nothing */
    gp.max_tokens = 0;
    run(f->m, 0, &sp, &gp, &r2, out2, 32, &n, &why, &n_past);
    assert_int_equal(n, 0);
    assert_int_equal(why, BITNET_STOP_MAX_TOKENS);
    assert_int_equal(r2.calls, 0);
    assert_int_equal(n_past, 4);
}

/* Cut the reference text at every token boundary with a 2-byte stop string spanning it. */
static void test_stop_strings(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = 10;
    gp.ignore_eog = 1;
    /* reference: one run without stop strings; the callback records where each
     * token's text ends */
    rec ref = {0};
    size_t n_ref = 0;
    run(f->m, 0, &sp, &gp, &ref, NULL, 0, &n_ref, NULL, NULL);
    assert_int_equal(n_ref, 10);
    const size_t *bound = ref.bound;
    int nb = ref.calls;
    int tested = 0;
    for (int b = 0; b + 1 < nb; b++) {
        size_t cut = bound[b];
        if (cut == 0 || cut >= ref.n) continue;
        char stop[3] = {ref.text[cut - 1], ref.text[cut], 0};
        const char *stops[2] = {"never-appears", stop};
        /* expected: text up to the first occurrence */
        const char *hit = strstr(ref.text, stop);
        assert_non_null(hit);
        size_t expect = (size_t)(hit - ref.text);
        int tok_of_end = 0; /* the token that completes the stop string */
        while (bound[tok_of_end] < expect + 2) tok_of_end++;
        gp.stop = stops;
        gp.n_stop = 2;
        rec r = {0};
        size_t n = 0;
        bitnet_stop_reason why = BITNET_STOP_NONE;
        uint32_t n_past = 0;
        run(f->m, 0, &sp, &gp, &r, NULL, 0, &n, &why, &n_past);
        assert_int_equal(why, BITNET_STOP_STRING);
        assert_int_equal(r.n, expect);
        assert_memory_equal(r.text, ref.text, expect);
        assert_int_equal(n, (size_t)tok_of_end + 1);
        assert_int_equal(n_past, 4 + n); /* the tokens are in the context */
        tested++;
    }
    assert_true(tested > 3);
    /* a stop string that starts like the text's tail but never completes: everything is
     * held back until the last token, then flushed with it */
    char tail[8];
    snprintf(tail, sizeof tail, "%c\x01", ref.text[ref.n - 1]);
    const char *stops[1] = {tail};
    gp.stop = stops;
    gp.n_stop = 1;
    rec r = {0};
    size_t n = 0;
    bitnet_stop_reason why = BITNET_STOP_NONE;
    run(f->m, 0, &sp, &gp, &r, NULL, 0, &n, &why, NULL);
    assert_int_equal(why, BITNET_STOP_MAX_TOKENS);
    assert_int_equal(r.n, ref.n);
    assert_memory_equal(r.text, ref.text, ref.n);
}

static void test_callback_stop(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = 10;
    gp.ignore_eog = 1;
    rec r = {0};
    r.stop_after = 3;
    size_t n = 0;
    bitnet_stop_reason why = BITNET_STOP_NONE;
    uint32_t n_past = 0;
    run(f->m, 0, &sp, &gp, &r, NULL, 0, &n, &why, &n_past);
    assert_int_equal(why, BITNET_STOP_CALLBACK);
    assert_int_equal(n, 3);
    assert_int_equal(r.calls, 3);
    assert_int_equal(n_past, 4 + 3);
}

static void test_eog(void **state) {
    fixture *f = *state;
    int eos = bitnet_token_eos(f->m);
    assert_int_equal(eos, 2);
    assert_true(bitnet_token_is_eog(f->m, eos));
    /* boost the last context token by 1000: with </s> last, greedy must pick </s> */
    bitnet_sampler_params sp = greedy();
    sp.presence_penalty = -1000.0f;
    sp.repeat_last_n = 1;
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = 5;
    bitnet_session *s = new_session(f->m, 0, 0);
    bitnet_token prompt[3] = {1, 270, 2};
    rec r = {0};
    gp.callback = rec_cb;
    gp.user = &r;
    size_t n = 99;
    bitnet_stop_reason why = BITNET_STOP_NONE;
    bitnet_token out[8];
    assert_int_equal(bitnet_session_generate(s, prompt, 3, &sp, &gp, out, 8, &n, &why), BITNET_OK);
    assert_int_equal(why, BITNET_STOP_EOG);
    assert_int_equal(n, 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(bitnet_session_n_past(s), 4); /* the EOG token was evaluated */
    /* ignore_eog: the EOG token is generated like any other (and counted) */
    gp.ignore_eog = 1;
    assert_int_equal(bitnet_session_generate(s, NULL, 0, &sp, &gp, out, 8, &n, &why), BITNET_OK);
    assert_int_equal(why, BITNET_STOP_MAX_TOKENS);
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++) assert_int_equal(out[i], eos);
    assert_int_equal(bitnet_session_n_past(s), 4 + 5);
    bitnet_session_free(s);
}

static void test_context_full(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = -1;
    gp.ignore_eog = 1;
    rec r = {0};
    size_t n = 0;
    bitnet_stop_reason why = BITNET_STOP_NONE;
    uint32_t n_past = 0;
    run(f->m, 10, &sp, &gp, &r, NULL, 0, &n, &why, &n_past);
    assert_int_equal(why, BITNET_STOP_CONTEXT);
    assert_int_equal(n, 6);
    assert_int_equal(n_past, 10);
    /* a prompt longer than the context is an error */
    bitnet_session *s = new_session(f->m, 3, 0);
    assert_int_equal(bitnet_session_generate(s, PROMPT, 4, &sp, &gp, NULL, 0, &n, &why), BITNET_E_CONTEXT_FULL);
    bitnet_session_free(s);
}

static void test_sampling_seeded(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp;
    bitnet_sampler_default_params(&sp, sizeof sp);
    sp.temperature = 50.0f; /* the tiny model's logits span ~100: flatten them */
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = 16;
    gp.ignore_eog = 1;
    bitnet_token a[16], b[16], c[16];
    bitnet_session *s = new_session(f->m, 0, 0);
    bitnet_session_set_seed(s, 7);
    assert_int_equal(bitnet_session_generate(s, PROMPT, 4, &sp, &gp, a, 16, NULL, NULL), BITNET_OK);
    bitnet_session_reset(s);
    bitnet_session_set_seed(s, 7);
    assert_int_equal(bitnet_session_generate(s, PROMPT, 4, &sp, &gp, b, 16, NULL, NULL), BITNET_OK);
    assert_memory_equal(a, b, sizeof a);
    bitnet_session_reset(s);
    bitnet_session_set_seed(s, 8);
    assert_int_equal(bitnet_session_generate(s, PROMPT, 4, &sp, &gp, c, 16, NULL, NULL), BITNET_OK);
    assert_true(memcmp(a, c, sizeof a) != 0);
    /* bitnet_session_sample does not evaluate */
    uint32_t before = bitnet_session_n_past(s);
    bitnet_token t;
    assert_int_equal(bitnet_session_sample(s, &sp, &t), BITNET_OK);
    assert_true(t >= 0 && t < 300);
    assert_int_equal(bitnet_session_n_past(s), before);
    /* bad arguments */
    assert_int_equal(bitnet_session_sample(s, &sp, NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_generate(NULL, PROMPT, 4, &sp, &gp, NULL, 0, NULL, NULL), BITNET_E_INVALID_ARG);
    gp.n_stop = 1;
    gp.stop = NULL;
    assert_int_equal(bitnet_session_generate(s, NULL, 0, &sp, &gp, NULL, 0, NULL, NULL), BITNET_E_INVALID_ARG);
    bitnet_session_free(s);
    /* an empty session with no prompt has nothing to continue from */
    s = new_session(f->m, 0, 0);
    gp.n_stop = 0;
    assert_int_equal(bitnet_session_generate(s, NULL, 0, &sp, &gp, NULL, 0, NULL, NULL), BITNET_E_INVALID_ARG);
    bitnet_session_free(s);
}

/* Sum of log-softmax of seq after the prompt, by evaluating prompt + seq with all logits. */
static double seq_logprob(const bitnet_model *m, const bitnet_token *seq, size_t n) {
    bitnet_session *s = new_session(m, 0, 1);
    bitnet_token all[64];
    memcpy(all, PROMPT, sizeof PROMPT);
    memcpy(all + 4, seq, n * sizeof *seq);
    assert_int_equal(bitnet_session_eval(s, all, 4 + n), BITNET_OK);
    double lp = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float *l = NULL;
        assert_int_equal(bitnet_session_logits(s, (int32_t)(3 + i), &l), BITNET_OK);
        double mx = -INFINITY, sum = 0.0;
        for (int v = 0; v < 300; v++) mx = fmax(mx, (double)l[v]);
        for (int v = 0; v < 300; v++) sum += exp((double)l[v] - mx);
        lp += (double)l[seq[i]] - mx - log(sum);
    }
    bitnet_session_free(s);
    return lp;
}

static void test_beam_search(void **state) {
    fixture *f = *state;
    /* greedy reference (stops at EOG like beam search) */
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = 6;
    bitnet_token g[8], b1[8], b3[8];
    size_t ng = 0, n1 = 0, n3 = 0;
    bitnet_session *s = new_session(f->m, 0, 0);
    assert_int_equal(bitnet_session_generate(s, PROMPT, 4, &sp, &gp, g, 8, &ng, NULL), BITNET_OK);
    bitnet_session_reset(s);
    /* one beam = greedy */
    assert_int_equal(bitnet_session_beam_search(s, PROMPT, 4, 1, 6, b1, 8, &n1), BITNET_OK);
    assert_int_equal(n1, ng);
    assert_memory_equal(b1, g, ng * sizeof *g);
    assert_int_equal(bitnet_session_n_past(s), 4 + n1);
    bitnet_session_reset(s);
    /* three beams: at least as probable as greedy; the context holds prompt + result */
    assert_int_equal(bitnet_session_beam_search(s, PROMPT, 4, 3, 6, b3, 8, &n3), BITNET_OK);
    assert_int_equal(bitnet_session_n_past(s), 4 + n3);
    if (n3 == ng) assert_true(seq_logprob(f->m, b3, n3) >= seq_logprob(f->m, g, ng) - 1e-4);
    /* the session continues from the best sequence: its logits are those of the last token */
    const float *l = NULL;
    assert_int_equal(bitnet_session_logits(s, -1, &l), BITNET_OK);
    bitnet_session *s2 = new_session(f->m, 0, 0);
    bitnet_token all[16];
    memcpy(all, PROMPT, sizeof PROMPT);
    memcpy(all + 4, b3, n3 * sizeof *b3);
    assert_int_equal(bitnet_session_eval(s2, all, 4 + n3), BITNET_OK);
    const float *l2 = NULL;
    assert_int_equal(bitnet_session_logits(s2, -1, &l2), BITNET_OK);
    for (int v = 0; v < 300; v++) assert_true(fabsf(l[v] - l2[v]) < 1e-3f);
    bitnet_session_free(s2);
    assert_int_equal(bitnet_session_beam_search(s, NULL, 0, 0, 6, b3, 8, &n3), BITNET_E_INVALID_ARG);
    bitnet_session_free(s);
}

/* A plain reference beam search: every surviving hypothesis is scored by evaluating
 * prompt + hypothesis from scratch in a fresh session; proposals are ranked as the
 * library documents (score, then beam index, then token id; per beam the n best
 * log-probabilities, ties to the lower id). */
typedef struct rbeam {
    bitnet_token seq[32];
    size_t       n;
    double       score;
    int          ended;
} rbeam;

static void ref_logp(const bitnet_model *m, const bitnet_token *pr, size_t np, const rbeam *b, double *lp) {
    bitnet_session *s = new_session(m, 0, 0);
    bitnet_token all[64];
    memcpy(all, pr, np * sizeof *pr);
    memcpy(all + np, b->seq, b->n * sizeof *b->seq);
    assert_int_equal(bitnet_session_eval(s, all, np + b->n), BITNET_OK);
    const float *l;
    assert_int_equal(bitnet_session_logits(s, -1, &l), BITNET_OK);
    float mx = -INFINITY;
    for (int v = 0; v < 300; v++) mx = l[v] > mx ? l[v] : mx;
    double sum = 0;
    for (int v = 0; v < 300; v++) sum += exp((double)l[v] - (double)mx);
    for (int v = 0; v < 300; v++) lp[v] = (double)(float)((double)l[v] - ((double)mx + log(sum)));
    bitnet_session_free(s);
}

static size_t ref_beam(const bitnet_model *m, const bitnet_token *pr, size_t np, size_t nb, size_t max_len,
                       bitnet_token *out) {
    rbeam cur[8], nxt[8];
    double lp[8][300];
    size_t n_cur = 1;
    memset(&cur[0], 0, sizeof cur[0]);
    ref_logp(m, pr, np, &cur[0], lp[0]);
    for (size_t step = 0; step < max_len; step++) {
        struct { double score; size_t beam; int tok; } props[64];
        size_t n_props = 0, live = 0;
        for (size_t b = 0; b < n_cur; b++) {
            if (cur[b].ended) {
                props[n_props].score = cur[b].score, props[n_props].beam = b, props[n_props++].tok = -1;
                continue;
            }
            live++;
            int used[300] = {0};
            for (size_t k = 0; k < nb; k++) {
                int best = -1;
                for (int v = 0; v < 300; v++)
                    if (!used[v] && (best < 0 || lp[b][v] > lp[b][best])) best = v;
                used[best] = 1;
                props[n_props].score = cur[b].score + lp[b][best], props[n_props].beam = b, props[n_props++].tok = best;
            }
        }
        if (!live) break;
        for (size_t i = 0; i < n_props; i++) /* insertion sort by the documented order */
            for (size_t j = i; j > 0; j--) {
                int sw = props[j].score > props[j - 1].score ||
                         (props[j].score == props[j - 1].score &&
                          (props[j].beam < props[j - 1].beam ||
                           (props[j].beam == props[j - 1].beam && props[j].tok < props[j - 1].tok)));
                if (!sw) break;
                __typeof__(props[0]) t = props[j]; props[j] = props[j - 1]; props[j - 1] = t;
            }
        size_t n_nxt = n_props < nb ? n_props : nb;
        double lpn[8][300];
        for (size_t j = 0; j < n_nxt; j++) {
            nxt[j] = cur[props[j].beam];
            nxt[j].score = props[j].score;
            if (props[j].tok < 0) continue;
            if (bitnet_token_is_eog(m, props[j].tok)) { nxt[j].ended = 1; continue; }
            nxt[j].seq[nxt[j].n++] = props[j].tok;
            ref_logp(m, pr, np, &nxt[j], lpn[j]);
        }
        memcpy(cur, nxt, sizeof cur);
        memcpy(lp, lpn, sizeof lp);
        n_cur = n_nxt;
    }
    size_t best = 0;
    for (size_t b = 1; b < n_cur; b++)
        if (cur[b].score > cur[best].score) best = b;
    memcpy(out, cur[best].seq, cur[best].n * sizeof *out);
    return cur[best].n;
}

/* The library's beam search (one batched step for all beams, copy-on-branch caches)
 * finds exactly the reference's sequence, and leaves the session holding it. */
static void test_beam_search_reference(void **state) {
    (void)state;
    /* a deeper model than the fixture's with its own output layer, so that the ranking
     * of a token's successors depends on its context (a wrong cache changes the search) */
    fixture fx, *f = &fx;
    tm_spec sp;
    tm_default(&sp);
    sp.n_layer = 3;
    sp.n_ctx = 64;
    sp.seed = 31;
    sp.with_output = 1; /* untied: a token's best successor is not simply itself */
    tm_path(f->path, sizeof f->path, "beamref");
    assert_int_equal(tm_write(&sp, f->path), 0);
    assert_int_equal(bitnet_model_load(f->path, NULL, &f->m), BITNET_OK);
    unlink(f->path);
    uint64_t r = 77;
    for (int p = 0; p < 12; p++)
        for (size_t nb = 2; nb <= 5; nb++) {
            bitnet_token prompt[5] = {1}, want[32], got[32];
            for (int i = 1; i < 5; i++) prompt[i] = (bitnet_token)(3 + tm_next(&r) % 297);
            size_t nw = ref_beam(f->m, prompt, 5, nb, 10, want), ng = 0;
            bitnet_session *s = new_session(f->m, 0, 0);
            assert_int_equal(bitnet_session_beam_search(s, prompt, 5, (uint32_t)nb, 10, got, 32, &ng), BITNET_OK);
            assert_int_equal(ng, nw);
            assert_memory_equal(got, want, nw * sizeof *got);
            assert_int_equal(bitnet_session_n_past(s), 5 + nw);
            bitnet_session_free(s);
        }
    bitnet_model_free(f->m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_tokens_and_text),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_eog),
        cmocka_unit_test(test_context_full),
        cmocka_unit_test(test_sampling_seeded),
        cmocka_unit_test(test_beam_search),
        cmocka_unit_test(test_beam_search_reference),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
