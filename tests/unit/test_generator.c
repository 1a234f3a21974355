/*
 * test_generator.c -- the step-wise generator (bitnet_generator_*) and prompts that reuse
 * the KV cache (bitnet_session_common_prefix / _eval_prompt), on tiny random models
 * written by test_model_util.h.
 *
 * References are computed inside each test, independently of lib/gen_loop.c where
 * possible: the plain loop "sample, evaluate, repeat" written here with the public
 * bitnet_session_sample / bitnet_session_eval (what generation is, without stop strings
 * or end-of-generation handling), bitnet_session_generate (which must agree with the
 * generator step by step, callbacks included), and a full re-evaluation of the prompt in
 * a fresh session (which prefix reuse must reproduce bit for bit with the scalar kernels,
 * whose results do not depend on how tokens are batched).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_model_util.h"

#include "internal.h"

#include <time.h>

typedef struct fixture {
    char          path[512];
    bitnet_model *m;      /* automatic kernels */
    bitnet_model *scalar; /* scalar kernels: bit-exact under any batching */
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    tm_spec sp;
    tm_default(&sp);
    sp.n_layer = 1;
    sp.n_ctx = 256;
    sp.seed = 3;
    tm_path(f->path, sizeof f->path, "generator");
    if (tm_write(&sp, f->path) != 0) return -1;
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    if (bitnet_model_load(f->path, &mp, &f->m) != BITNET_OK) return -1;
    mp.isa = BITNET_ISA_SCALAR;
    if (bitnet_model_load(f->path, &mp, &f->scalar) != BITNET_OK) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    bitnet_model_free(f->m);
    bitnet_model_free(f->scalar);
    unlink(f->path);
    free(f);
    return 0;
}

static bitnet_session *new_session(const bitnet_model *m, uint32_t n_ctx) {
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = n_ctx;
    p.n_threads = 1;
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

/* Flattened sampling: the tiny model's logits span ~100. */
static bitnet_sampler_params hot(void) {
    bitnet_sampler_params p;
    bitnet_sampler_default_params(&p, sizeof p);
    p.temperature = 50.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static bitnet_generate_params gen_params(int32_t max_tokens, int ignore_eog) {
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = max_tokens;
    gp.ignore_eog = ignore_eog;
    return gp;
}

static const bitnet_token PROMPT[4] = {1, 300 - 7, 300 - 20, 261};

/* What a consumer sees: each callback call / each step with a token or text. */
typedef struct trace {
    bitnet_token       tok[512];
    size_t             bound[512]; /* text length after the call */
    int                calls;
    char               text[8192];
    size_t             n;
    size_t             n_tokens;
    bitnet_stop_reason reason;
    uint32_t           n_past;     /* the session's afterwards */
    int                stop_after; /* callback: return 1 on this call (1-based) */
} trace;

static void trace_add(trace *r, bitnet_token t, const char *text, size_t len) {
    assert_true(r->n + len < sizeof r->text);
    assert_true(r->calls < 512);
    assert_true(text[len] == '\0');
    memcpy(r->text + r->n, text, len);
    r->n += len;
    r->text[r->n] = 0;
    r->tok[r->calls] = t;
    r->bound[r->calls] = r->n;
    r->calls++;
    if (t >= 0) r->n_tokens++;
}

static int trace_cb(void *user, bitnet_token t, const char *text, size_t len) {
    trace *r = user;
    trace_add(r, t, text, len);
    return r->stop_after && r->calls == r->stop_after;
}

/* bitnet_session_generate on a fresh session (seeded), recorded through its callback. */
static void via_generate(const bitnet_model *m, uint32_t n_ctx, uint64_t seed, const bitnet_sampler_params *sp,
                         bitnet_generate_params gp, const bitnet_token *prompt, size_t n_prompt, trace *r) {
    bitnet_session *s = new_session(m, n_ctx);
    bitnet_session_set_seed(s, seed);
    int stop_after = r->stop_after;
    memset(r, 0, sizeof *r);
    r->stop_after = stop_after;
    gp.callback = trace_cb;
    gp.user = r;
    size_t n_out = 0;
    assert_int_equal(bitnet_session_generate(s, prompt, n_prompt, sp, &gp, NULL, 0, &n_out, &r->reason), BITNET_OK);
    assert_int_equal(n_out, r->n_tokens);
    r->n_past = bitnet_session_n_past(s);
    bitnet_session_free(s);
}

/* How the caller treats returned tokens in via_generator. */
enum { EVAL_NONE, EVAL_ALL, EVAL_ODD };

/* The generator on session s until its end (or until stop_after steps, then
 * bitnet_generator_stop); with `external`, the caller evaluates returned tokens itself. */
static void run_generator(bitnet_session *s, const bitnet_sampler_params *sp, const bitnet_generate_params *gp,
                          const bitnet_token *prompt, size_t n_prompt, int external, trace *r,
                          bitnet_generator_stats *stats) {
    int stop_after = r->stop_after;
    memset(r, 0, sizeof *r);
    r->stop_after = stop_after;
    bitnet_generator *g = NULL;
    assert_int_equal(bitnet_generator_create(s, sp, gp, prompt, n_prompt, &g), BITNET_OK);
    bitnet_generator_step step;
    for (int i = 0;; i++) {
        assert_true(i < 1000);
        assert_int_equal(bitnet_generator_next(g, &step), BITNET_OK);
        assert_non_null(step.text);
        if (step.token >= 0) assert_int_equal(step.reason, BITNET_STOP_NONE);
        if (step.token >= 0 || step.len > 0) trace_add(r, step.token, step.text, step.len);
        if (step.reason != BITNET_STOP_NONE) {
            r->reason = step.reason;
            break;
        }
        if (external == EVAL_ALL || (external == EVAL_ODD && r->n_tokens % 2 == 1)) {
            assert_int_equal(bitnet_session_eval(s, &step.token, 1), BITNET_OK);
        }
        if (r->stop_after && r->calls == r->stop_after) bitnet_generator_stop(g);
    }
    /* the end repeats */
    bitnet_generator_step again;
    assert_int_equal(bitnet_generator_next(g, &again), BITNET_OK);
    assert_int_equal(again.token, -1);
    assert_int_equal(again.len, 0);
    assert_int_equal(again.reason, r->reason);
    if (stats) bitnet_generator_get_stats(g, stats, sizeof *stats);
    bitnet_generator_free(g);
    r->n_past = bitnet_session_n_past(s);
}

/* The same on a fresh session: the prompt is evaluated by the generator. */
static void via_generator(const bitnet_model *m, uint32_t n_ctx, uint64_t seed, const bitnet_sampler_params *sp,
                          const bitnet_generate_params *gp, const bitnet_token *prompt, size_t n_prompt, int external,
                          trace *r, bitnet_generator_stats *stats) {
    bitnet_session *s = new_session(m, n_ctx);
    bitnet_session_set_seed(s, seed);
    run_generator(s, sp, gp, prompt, n_prompt, external, r, stats);
    bitnet_session_free(s);
}

static void assert_same_trace(const trace *a, const trace *b) {
    assert_int_equal(a->calls, b->calls);
    assert_int_equal(a->n_tokens, b->n_tokens);
    assert_int_equal(a->reason, b->reason);
    assert_int_equal(a->n_past, b->n_past);
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->text, b->text, a->n);
    for (int i = 0; i < a->calls; i++) {
        assert_int_equal(a->tok[i], b->tok[i]);
        assert_int_equal(a->bound[i], b->bound[i]);
    }
}

/* Generation as it is defined: sample from the last logits, evaluate, repeat. */
static size_t plain_loop(const bitnet_model *m, uint32_t n_ctx, uint64_t seed, const bitnet_sampler_params *sp,
                         const bitnet_token *prompt, size_t n_prompt, size_t max, bitnet_token *out) {
    bitnet_session *s = new_session(m, n_ctx);
    bitnet_session_set_seed(s, seed);
    assert_int_equal(bitnet_session_eval(s, prompt, n_prompt), BITNET_OK);
    size_t n = 0;
    while (n < max && bitnet_session_n_past(s) < bitnet_session_n_ctx(s)) {
        assert_int_equal(bitnet_session_sample(s, sp, &out[n]), BITNET_OK);
        assert_int_equal(bitnet_session_eval(s, &out[n], 1), BITNET_OK);
        n++;
    }
    bitnet_session_free(s);
    return n;
}

/* Greedy and seeded sampling: the generator's tokens are the plain loop's and
 * bitnet_session_generate's, whether the caller or the generator evaluates them. */
static void test_same_tokens(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sps[2] = {greedy(), hot()};
    for (int k = 0; k < 2; k++) {
        for (uint64_t seed = 1; seed <= (k ? 3u : 1u); seed++) {
            bitnet_generate_params gp = gen_params(24, 1);
            bitnet_token ref[64] = {0};
            size_t n_ref = plain_loop(f->m, 0, seed, &sps[k], PROMPT, 4, 24, ref);
            assert_int_equal(n_ref, 24);
            trace a, b, c, d;
            memset(&a, 0, sizeof a);
            memset(&b, 0, sizeof b);
            memset(&c, 0, sizeof c);
            memset(&d, 0, sizeof d);
            via_generate(f->m, 0, seed, &sps[k], gp, PROMPT, 4, &a);
            bitnet_generator_stats st_b, st_c;
            via_generator(f->m, 0, seed, &sps[k], &gp, PROMPT, 4, EVAL_NONE, &b, &st_b);
            via_generator(f->m, 0, seed, &sps[k], &gp, PROMPT, 4, EVAL_ALL, &c, &st_c);
            via_generator(f->m, 0, seed, &sps[k], &gp, PROMPT, 4, EVAL_ODD, &d, NULL);
            assert_int_equal(a.n_tokens, 24);
            assert_int_equal(a.reason, BITNET_STOP_MAX_TOKENS);
            assert_int_equal(a.n_past, 4 + 24);
            for (size_t i = 0; i < n_ref; i++) assert_int_equal(a.tok[i], ref[i]);
            assert_same_trace(&a, &b);
            assert_same_trace(&a, &c);
            assert_same_trace(&a, &d);
            /* who evaluated what */
            assert_int_equal(st_b.struct_size, sizeof st_b);
            assert_int_equal(st_b.n_prompt, 4);
            assert_int_equal(st_b.n_prompt_cached, 0);
            assert_int_equal(st_b.n_generated, 24);
            assert_int_equal(st_b.n_evaluated, 4 + 24);
            assert_int_equal(st_c.n_generated, 24);
            assert_int_equal(st_c.n_evaluated, 4); /* the caller evaluated every token */
        }
    }
}

/* Stop strings spanning every token boundary: the generator's steps equal the
 * callbacks of bitnet_session_generate, and the text is the reference text cut at the
 * first occurrence; also when the caller evaluates the tokens. */
static void test_stop_strings(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp = gen_params(12, 1);
    trace ref;
    memset(&ref, 0, sizeof ref);
    via_generate(f->m, 0, 1, &sp, gp, PROMPT, 4, &ref);
    assert_int_equal(ref.n_tokens, 12);
    int tested = 0;
    for (int b = 0; b + 1 < ref.calls; b++) {
        size_t cut = ref.bound[b];
        if (cut == 0 || cut >= ref.n) continue;
        char stop[4] = {ref.text[cut - 1], ref.text[cut], 0, 0};
        if (cut + 1 < ref.n && b % 2) stop[2] = ref.text[cut + 1]; /* 2 or 3 bytes */
        const char *stops[2] = {"\xff never", stop};
        gp.stop = stops;
        gp.n_stop = 2;
        const char *hit = strstr(ref.text, stop);
        assert_non_null(hit);
        size_t expect = (size_t)(hit - ref.text);
        trace a, g1, g2;
        memset(&a, 0, sizeof a);
        memset(&g1, 0, sizeof g1);
        memset(&g2, 0, sizeof g2);
        via_generate(f->m, 0, 1, &sp, gp, PROMPT, 4, &a);
        via_generator(f->m, 0, 1, &sp, &gp, PROMPT, 4, EVAL_NONE, &g1, NULL);
        via_generator(f->m, 0, 1, &sp, &gp, PROMPT, 4, EVAL_ALL, &g2, NULL);
        assert_int_equal(a.reason, BITNET_STOP_STRING);
        assert_int_equal(a.n, expect);
        assert_memory_equal(a.text, ref.text, expect);
        assert_int_equal(a.n_past, 4 + a.n_tokens); /* the stopping token is in the context */
        assert_same_trace(&a, &g1);
        assert_same_trace(&a, &g2);
        tested++;
    }
    assert_true(tested > 4);
}

/* Sample seeds until one run ends on an end-of-generation token after >= 1 token. */
static uint64_t find_eog_seed(const bitnet_model *m, const bitnet_sampler_params *sp, trace *r) {
    bitnet_generate_params gp = gen_params(120, 0);
    for (uint64_t seed = 1; seed < 400; seed++) {
        r->stop_after = 0;
        via_generator(m, 0, seed, sp, &gp, PROMPT, 4, EVAL_NONE, r, NULL);
        if (r->reason == BITNET_STOP_EOG && r->n_tokens >= 1 && r->n > 0) return seed;
    }
    fail_msg("no seed below 400 ends on </s>");
    return 0;
}

/* End of generation: the EOG token is evaluated but not returned; text held back for
 * a stop string that never completes comes with the end step, exactly as
 * bitnet_session_generate's final token -1 callback. */
static void test_eog(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = hot();
    trace r;
    memset(&r, 0, sizeof r);
    uint64_t seed = find_eog_seed(f->m, &sp, &r);
    assert_int_equal(r.n_past, 4 + r.n_tokens + 1); /* + the EOG token */
    for (int i = 0; i < r.calls; i++) assert_true(r.tok[i] >= 0);
    /* hold the last character back: a stop string that starts with it never completes
     * (0xff never appears in decoded text) */
    char stop[3] = {r.text[r.n - 1], (char)0xff, 0};
    const char *stops[1] = {stop};
    bitnet_generate_params gp = gen_params(120, 0);
    gp.stop = stops;
    gp.n_stop = 1;
    trace a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    via_generate(f->m, 0, seed, &sp, gp, PROMPT, 4, &a);
    via_generator(f->m, 0, seed, &sp, &gp, PROMPT, 4, EVAL_NONE, &b, NULL);
    via_generator(f->m, 0, seed, &sp, &gp, PROMPT, 4, EVAL_ALL, &c, NULL);
    assert_int_equal(a.reason, BITNET_STOP_EOG);
    assert_int_equal(a.n, r.n);
    assert_memory_equal(a.text, r.text, r.n);
    assert_int_equal(a.calls, r.calls + 1);      /* one more call ...        */
    assert_int_equal(a.tok[a.calls - 1], -1);    /* ... with token -1 ...    */
    assert_true(a.bound[a.calls - 1] - a.bound[a.calls - 2] >= 1); /* ... carrying the held-back text */
    assert_same_trace(&a, &b);
    assert_same_trace(&a, &c);
    /* EOG right away: nothing returned, the EOG token is in the context */
    bitnet_sampler_params boost = greedy();
    boost.presence_penalty = -1000.0f; /* with </s> last, greedy picks </s> */
    boost.repeat_last_n = 1;
    bitnet_session *s = new_session(f->m, 0);
    bitnet_token p3[3] = {1, 270, 2};
    gp = gen_params(5, 0);
    trace e;
    memset(&e, 0, sizeof e);
    run_generator(s, &boost, &gp, p3, 3, EVAL_NONE, &e, NULL);
    assert_int_equal(e.reason, BITNET_STOP_EOG);
    assert_int_equal(e.calls, 0);
    assert_int_equal(bitnet_session_n_past(s), 4);
    /* ignore_eog: the EOG token is an ordinary token */
    gp.ignore_eog = 1;
    run_generator(s, &boost, &gp, NULL, 0, EVAL_NONE, &e, NULL);
    assert_int_equal(e.reason, BITNET_STOP_MAX_TOKENS);
    assert_int_equal(e.n_tokens, 5);
    for (int i = 0; i < 5; i++) assert_int_equal(e.tok[i], 2);
    bitnet_session_free(s);
}

/* max_tokens: the last token carries all the text, the end evaluates it; 0 tokens;
 * and a caller stop (the callback's equivalent). */
static void test_max_tokens_and_stop(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp = gen_params(7, 1);
    char tail[8];
    trace ref;
    memset(&ref, 0, sizeof ref);
    via_generate(f->m, 0, 1, &sp, gp, PROMPT, 4, &ref);
    snprintf(tail, sizeof tail, "%c\xff", ref.text[ref.n - 1]); /* holds the tail back to the end */
    const char *stops[1] = {tail};
    gp.stop = stops;
    gp.n_stop = 1;
    trace a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    via_generate(f->m, 0, 1, &sp, gp, PROMPT, 4, &a);
    via_generator(f->m, 0, 1, &sp, &gp, PROMPT, 4, EVAL_NONE, &b, NULL);
    assert_int_equal(a.reason, BITNET_STOP_MAX_TOKENS);
    assert_int_equal(a.n, ref.n);
    assert_int_equal(a.bound[a.calls - 1], ref.n); /* the 7th token's step carries the tail */
    assert_int_equal(a.n_past, 4 + 7);
    assert_same_trace(&a, &b);
    /* nothing to generate */
    gp = gen_params(0, 1);
    via_generator(f->m, 0, 1, &sp, &gp, PROMPT, 4, EVAL_NONE, &b, NULL);
    assert_int_equal(b.reason, BITNET_STOP_MAX_TOKENS);
    assert_int_equal(b.calls, 0);
    assert_int_equal(b.n_past, 4);
    /* a caller stop after 3 tokens = the callback returning 1 on its third call */
    gp = gen_params(10, 1);
    a.stop_after = b.stop_after = 3;
    via_generate(f->m, 0, 1, &sp, gp, PROMPT, 4, &a);
    via_generator(f->m, 0, 1, &sp, &gp, PROMPT, 4, EVAL_NONE, &b, NULL);
    assert_int_equal(a.reason, BITNET_STOP_CALLBACK);
    assert_int_equal(a.n_past, 4 + 3);
    assert_same_trace(&a, &b);
    /* stop before the first next: nothing is evaluated, not even the prompt */
    bitnet_session *s = new_session(f->m, 0);
    bitnet_generator *g = NULL;
    assert_int_equal(bitnet_generator_create(s, &sp, &gp, PROMPT, 4, &g), BITNET_OK);
    bitnet_generator_stop(g);
    bitnet_generator_step step;
    assert_int_equal(bitnet_generator_next(g, &step), BITNET_OK);
    assert_int_equal(step.token, -1);
    assert_int_equal(step.reason, BITNET_STOP_CALLBACK);
    assert_int_equal(bitnet_session_n_past(s), 0);
    bitnet_generator_free(g);
    /* free without finishing: the token returned last is not evaluated */
    assert_int_equal(bitnet_generator_create(s, &sp, &gp, PROMPT, 4, &g), BITNET_OK);
    assert_int_equal(bitnet_generator_next(g, &step), BITNET_OK);
    assert_true(step.token >= 0);
    bitnet_generator_free(g);
    assert_int_equal(bitnet_session_n_past(s), 4);
    bitnet_generator_free(NULL);
    bitnet_generator_stop(NULL);
    bitnet_session_free(s);
}

/* A context that fills up ends generation with CONTEXT; a prompt that cannot fit is
 * refused when the generator is created. */
static void test_context_full(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp = gen_params(-1, 1);
    trace a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    via_generate(f->m, 10, 1, &sp, gp, PROMPT, 4, &a);
    via_generator(f->m, 10, 1, &sp, &gp, PROMPT, 4, EVAL_NONE, &b, NULL);
    via_generator(f->m, 10, 1, &sp, &gp, PROMPT, 4, EVAL_ALL, &c, NULL);
    assert_int_equal(a.reason, BITNET_STOP_CONTEXT);
    assert_int_equal(a.n_tokens, 6);
    assert_int_equal(a.n_past, 10);
    assert_same_trace(&a, &b);
    assert_same_trace(&a, &c);
    bitnet_session *s = new_session(f->m, 3);
    bitnet_generator *g = (bitnet_generator *)&g;
    assert_int_equal(bitnet_generator_create(s, &sp, &gp, PROMPT, 4, &g), BITNET_E_CONTEXT_FULL);
    assert_null(g);
    assert_non_null(strstr(bitnet_last_error(), "n_ctx 3"));
    assert_string_equal(bitnet_session_last_error(s), bitnet_last_error());
    /* a prompt that fills the context exactly: the end comes at once */
    bitnet_token p3[3] = {1, 5, 6};
    trace e;
    memset(&e, 0, sizeof e);
    run_generator(s, &sp, &gp, p3, 3, EVAL_NONE, &e, NULL);
    assert_int_equal(e.reason, BITNET_STOP_CONTEXT);
    assert_int_equal(e.calls, 0);
    bitnet_session_free(s);
}

/* The evaluation contract: anything but "evaluated t" or "left t alone" between two
 * next calls is refused, and the generator stays failed. */
static void test_contract_violations(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp = gen_params(10, 1);
    bitnet_generator_step step;
    for (int k = 0; k < 3; k++) {
        bitnet_session *s = new_session(f->m, 0);
        bitnet_generator *g = NULL;
        assert_int_equal(bitnet_generator_create(s, &sp, &gp, PROMPT, 4, &g), BITNET_OK);
        assert_int_equal(bitnet_generator_next(g, &step), BITNET_OK);
        bitnet_token other = step.token == 7 ? 8 : 7;
        if (k == 0) assert_int_equal(bitnet_session_eval(s, &other, 1), BITNET_OK);      /* another token */
        if (k == 1) assert_int_equal(bitnet_session_truncate(s, 2), BITNET_OK);          /* truncated */
        if (k == 2) {                                                                    /* two tokens */
            bitnet_token two[2] = {step.token, other};
            assert_int_equal(bitnet_session_eval(s, two, 2), BITNET_OK);
        }
        assert_int_equal(bitnet_generator_next(g, &step), BITNET_E_INVALID_ARG);
        assert_int_equal(step.token, -1);
        assert_non_null(strstr(bitnet_last_error(), "session changed"));
        assert_string_equal(bitnet_session_last_error(s), bitnet_last_error());
        assert_int_equal(bitnet_generator_next(g, &step), BITNET_E_INVALID_ARG); /* stays failed */
        assert_non_null(strstr(bitnet_last_error(), "session changed"));
        bitnet_generator_free(g);
        bitnet_session_free(s);
    }
    /* bad arguments */
    bitnet_session *s = new_session(f->m, 0);
    bitnet_generator *g = NULL;
    assert_int_equal(bitnet_generator_create(NULL, &sp, &gp, PROMPT, 4, &g), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_generator_create(s, &sp, &gp, PROMPT, 4, NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_generator_create(s, &sp, &gp, NULL, 4, &g), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_generator_create(s, &sp, &gp, NULL, 0, &g), BITNET_E_INVALID_ARG); /* empty session */
    assert_non_null(strstr(bitnet_session_last_error(s), "nothing to continue from"));
    bitnet_token bad[2] = {1, 300};
    assert_int_equal(bitnet_generator_create(s, &sp, &gp, bad, 2, &g), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "300"));
    gp.n_stop = 1;
    gp.stop = NULL;
    assert_int_equal(bitnet_generator_create(s, &sp, &gp, PROMPT, 4, &g), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_generator_next(NULL, &step), BITNET_E_INVALID_ARG);
    gp.n_stop = 0;
    assert_int_equal(bitnet_generator_create(s, NULL, NULL, PROMPT, 4, &g), BITNET_OK); /* defaults */
    assert_int_equal(bitnet_generator_next(g, NULL), BITNET_E_INVALID_ARG);
    bitnet_generator_free(g);
    bitnet_session_free(s);
}

/* Continue without a prompt: with current logits the generator just samples; after a
 * truncate it evaluates the last token again.  Either way the tokens are those of a
 * fresh run over the same context. */
static void test_continue(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp = gen_params(8, 1);
    bitnet_token ref[16] = {0};
    assert_int_equal(plain_loop(f->scalar, 0, 1, &sp, PROMPT, 3, 8, ref), 8);
    bitnet_session *s = new_session(f->scalar, 0);
    assert_int_equal(bitnet_session_eval(s, PROMPT, 3), BITNET_OK);
    trace a;
    memset(&a, 0, sizeof a);
    bitnet_generator_stats st;
    run_generator(s, &sp, &gp, NULL, 0, EVAL_NONE, &a, &st);
    assert_int_equal(st.n_evaluated, 8); /* sampling first: the context's logits were current */
    for (int i = 0; i < 8; i++) assert_int_equal(a.tok[i], ref[i]);
    /* cut back to the 3 prompt tokens: their logits are gone */
    assert_int_equal(bitnet_session_truncate(s, 3), BITNET_OK);
    const float *l = NULL;
    assert_int_equal(bitnet_session_logits(s, -1, &l), BITNET_E_INVALID_ARG);
    run_generator(s, &sp, &gp, NULL, 0, EVAL_NONE, &a, &st);
    assert_int_equal(st.n_evaluated, 1 + 8);
    for (int i = 0; i < 8; i++) assert_int_equal(a.tok[i], ref[i]);
    bitnet_session_free(s);
}

/* Prefix reuse: the generator given the whole context keeps what the session holds. */
static void test_generator_prompt_reuse(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp = gen_params(6, 1);
    bitnet_session *s = new_session(f->scalar, 0);
    trace a, fresh;
    memset(&a, 0, sizeof a);
    memset(&fresh, 0, sizeof fresh);
    bitnet_generator_stats st;
    run_generator(s, &sp, &gp, PROMPT, 4, EVAL_NONE, &a, &st);
    assert_int_equal(st.n_prompt_cached, 0);
    /* the next prompt: what the session holds, two tokens changed at the end, more */
    bitnet_token p2[16];
    assert_int_equal(bitnet_session_n_past(s), 10);
    memcpy(p2, PROMPT, sizeof PROMPT);
    memcpy(p2 + 4, a.tok, 4 * sizeof *p2); /* 4 of the 6 generated tokens */
    p2[8] = 270;
    p2[9] = 271;
    p2[10] = 272;
    assert_int_equal(bitnet_session_common_prefix(s, p2, 11), 8);
    run_generator(s, &sp, &gp, p2, 11, EVAL_NONE, &a, &st);
    assert_int_equal(st.n_prompt, 11);
    assert_int_equal(st.n_prompt_cached, 8);
    assert_int_equal(st.n_evaluated, 3 + 6);
    via_generator(f->scalar, 0, 1, &sp, &gp, p2, 11, EVAL_NONE, &fresh, NULL);
    assert_same_trace(&a, &fresh);
    bitnet_session_free(s);
}

/* The batched server's loop: several generators whose tokens the caller evaluates in one
 * bitnet_batch step per round (prompts too).  Each stream equals its generator run alone,
 * and the generators evaluate nothing themselves but the EOG tokens that end streams. */
static void test_batched_generators(void **state) {
    fixture *f = *state;
    enum { N = 3 };
    bitnet_sampler_params sps[N] = {greedy(), hot(), hot()};
    bitnet_generate_params gps[N] = {gen_params(12, 1), gen_params(9, 1), gen_params(40, 0)};
    const char *stops[1] = {"\xff"};
    gps[2].stop = stops;
    gps[2].n_stop = 1;
    bitnet_token prompts[N][4] = {{1, 300 - 7, 300 - 20, 261}, {1, 270, 271, 272}, {1, 280, 281, 282}};
    uint64_t seeds[N] = {1, 5, 9};
    trace ref[N], got[N];
    for (int i = 0; i < N; i++) {
        memset(&ref[i], 0, sizeof ref[i]);
        memset(&got[i], 0, sizeof got[i]);
        via_generator(f->m, 0, seeds[i], &sps[i], &gps[i], prompts[i], 4, EVAL_NONE, &ref[i], NULL);
    }
    bitnet_batch *b = NULL;
    assert_int_equal(bitnet_batch_create(f->m, NULL, &b), BITNET_OK);
    bitnet_session *s[N];
    bitnet_generator *g[N];
    int done[N] = {0};
    for (int i = 0; i < N; i++) {
        s[i] = new_session(f->m, 0);
        bitnet_session_set_seed(s[i], seeds[i]);
        assert_int_equal(bitnet_batch_add(b, s[i], prompts[i], 4, 0), BITNET_OK); /* batched prompts */
    }
    assert_int_equal(bitnet_batch_eval(b), BITNET_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(bitnet_generator_create(s[i], &sps[i], &gps[i], prompts[i], 4, &g[i]), BITNET_OK);
    for (int round = 0, left = N; left > 0; round++) {
        assert_true(round < 100);
        for (int i = 0; i < N; i++) {
            if (done[i]) continue;
            bitnet_generator_step step;
            assert_int_equal(bitnet_generator_next(g[i], &step), BITNET_OK);
            if (step.token >= 0 || step.len > 0) trace_add(&got[i], step.token, step.text, step.len);
            if (step.reason != BITNET_STOP_NONE) {
                got[i].reason = step.reason;
                done[i] = 1;
                left--;
                continue;
            }
            assert_int_equal(bitnet_batch_add(b, s[i], &step.token, 1, 0), BITNET_OK);
        }
        if (bitnet_batch_n_tokens(b) > 0) assert_int_equal(bitnet_batch_eval(b), BITNET_OK);
    }
    for (int i = 0; i < N; i++) {
        bitnet_generator_stats st;
        bitnet_generator_get_stats(g[i], &st, sizeof st);
        assert_int_equal(st.n_prompt_cached, 4); /* evaluated by the batch */
        assert_int_equal(st.n_evaluated, got[i].reason == BITNET_STOP_EOG ? 1 : 0);
        got[i].n_past = bitnet_session_n_past(s[i]);
        assert_same_trace(&ref[i], &got[i]);
        bitnet_generator_free(g[i]);
        bitnet_session_free(s[i]);
    }
    bitnet_batch_free(b);
}

static void logits_of(const bitnet_model *m, const bitnet_token *t, size_t n, float *out) {
    bitnet_session *s = new_session(m, 0);
    assert_int_equal(bitnet_session_eval(s, t, n), BITNET_OK);
    const float *l = NULL;
    assert_int_equal(bitnet_session_logits(s, -1, &l), BITNET_OK);
    memcpy(out, l, 300 * sizeof *out);
    bitnet_session_free(s);
}

static void assert_logits(const bitnet_session *s, const float *ref) {
    const float *l = NULL;
    assert_int_equal(bitnet_session_logits(s, -1, &l), BITNET_OK);
    assert_memory_equal(l, ref, 300 * sizeof *ref); /* scalar kernels: bit-exact */
}

/* bitnet_session_eval_prompt gives the logits of a full re-evaluation and evaluates only
 * what is new. */
static void test_eval_prompt(void **state) {
    fixture *f = *state;
    bitnet_token a[12] = {1, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30};
    bitnet_token b[10] = {1, 20, 21, 22, 23, 40, 41, 42, 43, 44};
    float ra[300], ra7[300], rb[300];
    logits_of(f->scalar, a, 12, ra);
    logits_of(f->scalar, a, 7, ra7);
    logits_of(f->scalar, b, 10, rb);
    bitnet_session *s = new_session(f->scalar, 16);
    size_t n_ev = 99;
    assert_int_equal(bitnet_session_common_prefix(s, a, 12), 0);
    assert_int_equal(bitnet_session_eval_prompt(s, a, 7, &n_ev), BITNET_OK);
    assert_int_equal(n_ev, 7);
    assert_logits(s, ra7);
    /* growing prompt: only the new part */
    assert_int_equal(bitnet_session_common_prefix(s, a, 12), 7);
    assert_int_equal(bitnet_session_eval_prompt(s, a, 12, &n_ev), BITNET_OK);
    assert_int_equal(n_ev, 5);
    assert_int_equal(bitnet_session_n_past(s), 12);
    assert_logits(s, ra);
    /* the same prompt again, logits current: nothing */
    assert_int_equal(bitnet_session_eval_prompt(s, a, 12, &n_ev), BITNET_OK);
    assert_int_equal(n_ev, 0);
    assert_logits(s, ra);
    /* a shorter prefix of the context: truncated, the last token evaluated again */
    assert_int_equal(bitnet_session_eval_prompt(s, a, 7, &n_ev), BITNET_OK);
    assert_int_equal(n_ev, 1);
    assert_int_equal(bitnet_session_n_past(s), 7);
    assert_logits(s, ra7);
    /* after a truncate the logits are gone: the last token is evaluated again */
    assert_int_equal(bitnet_session_eval_prompt(s, a, 12, NULL), BITNET_OK);
    assert_int_equal(bitnet_session_truncate(s, 12), BITNET_OK); /* same length: logits kept */
    assert_int_equal(bitnet_session_eval_prompt(s, a, 12, &n_ev), BITNET_OK);
    assert_int_equal(n_ev, 0);
    /* a diverging prompt: common prefix 5 */
    assert_int_equal(bitnet_session_common_prefix(s, b, 10), 5);
    assert_int_equal(bitnet_session_eval_prompt(s, b, 10, &n_ev), BITNET_OK);
    assert_int_equal(n_ev, 5);
    assert_int_equal(bitnet_session_n_past(s), 10);
    assert_logits(s, rb);
    /* errors leave the session unchanged */
    bitnet_token big[17] = {0};
    bitnet_token bad[3] = {1, 20, 300};
    assert_int_equal(bitnet_session_eval_prompt(s, big, 17, &n_ev), BITNET_E_CONTEXT_FULL);
    assert_int_equal(bitnet_session_eval_prompt(s, bad, 3, &n_ev), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_session_last_error(s), "300"));
    assert_int_equal(bitnet_session_eval_prompt(s, NULL, 3, &n_ev), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_eval_prompt(s, b, 0, &n_ev), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_eval_prompt(NULL, b, 3, &n_ev), BITNET_E_INVALID_ARG);
    assert_int_equal(n_ev, 0);
    assert_int_equal(bitnet_session_n_past(s), 10);
    assert_logits(s, rb);
    assert_int_equal(bitnet_session_common_prefix(s, NULL, 3), 0);
    assert_int_equal(bitnet_session_common_prefix(NULL, b, 3), 0);
    bitnet_session_free(s);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A chat of 12 turns that re-sends the whole conversation each turn (user message of 8
 * tokens, reply of up to 6, an end-of-turn token): with prefix reuse every turn evaluates
 * about the same number of tokens (its new part), not the whole conversation.  Times are
 * printed (noisy on a shared machine); the count is what is asserted. */
static void test_chat_turns_flat(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    bitnet_generate_params gp = gen_params(6, 1);
    bitnet_session *s = new_session(f->m, 256);
    bitnet_token conv[256];
    size_t n_conv = 0;
    conv[n_conv++] = 1;
    size_t evaluated[12];
    double secs[12];
    for (int turn = 0; turn < 12; turn++) {
        for (int i = 0; i < 8; i++) conv[n_conv++] = (bitnet_token)(259 + (turn * 8 + i) % 41);
        trace r;
        memset(&r, 0, sizeof r);
        bitnet_generator_stats st;
        double t0 = now_s();
        run_generator(s, &sp, &gp, conv, n_conv, EVAL_NONE, &r, &st);
        secs[turn] = now_s() - t0;
        evaluated[turn] = st.n_evaluated;
        assert_int_equal(st.n_prompt, n_conv);
        for (size_t i = 0; i < r.n_tokens; i++) conv[n_conv++] = r.tok[i];
        conv[n_conv++] = 2; /* the template's end of turn */
    }
    fprintf(stderr, "chat turns: conversation %zu tokens; evaluated per turn (prompt+reply):", n_conv);
    for (int t = 0; t < 12; t++) fprintf(stderr, " %zu", evaluated[t]);
    fprintf(stderr, "\nchat turns: ms per turn:");
    for (int t = 0; t < 12; t++) fprintf(stderr, " %.2f", 1e3 * secs[t]);
    fprintf(stderr, "\n");
    /* turn 1: BOS + 8 + 6 generated; later turns: the end-of-turn token + 8 + 6 */
    assert_int_equal(evaluated[0], 1 + 8 + 6);
    for (int t = 1; t < 12; t++) assert_int_equal(evaluated[t], 1 + 8 + 6);
    bitnet_session_free(s);
}

/* Every allocation failure in create/next is an error (never a crash or a leak). */
static void test_alloc_failures(void **state) {
    fixture *f = *state;
    bitnet_sampler_params sp = greedy();
    const char *stops[2] = {"abc", "\xff"};
    bitnet_generate_params gp = gen_params(5, 1);
    gp.stop = stops;
    gp.n_stop = 2;
    bitnet_session *s = new_session(f->m, 0);
    int ok = 0;
    for (uint64_t n = 1; n < 200 && !ok; n++) {
        bitnet_session_reset(s);
        bn_alloc_fail_after(n);
        bitnet_generator *g = NULL;
        bitnet_status st = bitnet_generator_create(s, &sp, &gp, PROMPT, 4, &g);
        bitnet_generator_step step;
        while (st == BITNET_OK) {
            st = bitnet_generator_next(g, &step);
            if (st == BITNET_OK && step.reason != BITNET_STOP_NONE) break;
        }
        bn_alloc_fail_after(0);
        if (st == BITNET_OK) ok = 1;
        else assert_int_equal(st, BITNET_E_NOMEM);
        bitnet_generator_free(g);
    }
    assert_true(ok);
    bitnet_session_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_tokens),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_eog),
        cmocka_unit_test(test_max_tokens_and_stop),
        cmocka_unit_test(test_context_full),
        cmocka_unit_test(test_contract_violations),
        cmocka_unit_test(test_continue),
        cmocka_unit_test(test_generator_prompt_reuse),
        cmocka_unit_test(test_batched_generators),
        cmocka_unit_test(test_eval_prompt),
        cmocka_unit_test(test_chat_turns_flat),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
