/*
 * test_spec.c -- speculative and lookup decoding (bitnet_session_set_speculation) on tiny
 * random models written by test_model_util.h.
 *
 * References, computed independently of lib/gen_spec.c:
 *   - greedy: plain generation (the same generator without speculation) in a fresh
 *     session: tokens, text, stop reason, the context afterwards and the last logits
 *     must be identical (scalar kernels, whose results do not depend on how many tokens
 *     a forward step holds, so equality is exact);
 *   - sampling: the exact probability of every token sequence, computed here from the
 *     model's logits with the sampler chain written out in the test (softmax of logit /
 *     T over the top k, nothing else on), against the frequencies of sequences generated
 *     with speculation over many seeds: Pearson's chi-square goodness of fit, cells with
 *     an expected count below 5 pooled, rejected at the 0.1% level (critical values of
 *     the chi-square distribution from its table), and a total-variation distance
 *     below 3.6 / sqrt(N) (0.08 for N = 2000; sampling noise alone gives about
 *     0.03-0.05 there).  The same statistics computed against the draft model's own
 *     distribution must reject, so the test can tell the two apart.
 *
 * The models are small (one layer, 128 wide, 256 FFN, 300 tokens) so that the sanitizer
 * builds' scalar kernels stay quick; that does not weaken the tests: exactness is a
 * property of every prompt and step, and the sampling tests' power comes from the
 * number of samples (N) and the draft's acceptance rate (the near draft keeps about 40%
 * of its drafts, so the rejection branch -- drawing from max(0, p - q) -- runs thousands
 * of times), not from the model's size.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_model_util.h"

/* Sanitizer builds run about 30x slower: fewer prompts and samples there (the sampling
 * tests keep enough samples for the chi-square cells to pool into a valid test). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SPEC_LIGHT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SPEC_LIGHT 1
#endif
#endif
#ifdef SPEC_LIGHT
#define N_GREEDY_SEEDS 6
#define N_SAMPLES      600
#else
#define N_GREEDY_SEEDS 16
#define N_SAMPLES      2000
#endif
#define BITNET_SPEC_TEST_CAP 65 /* a token and the longest draft */

typedef struct fixture {
    char          path[512], path2[512], path3[512], path4[512];
    bitnet_model *m;      /* target, scalar kernels                   */
    bitnet_model *same;   /* the same file loaded again (a perfect draft) */
    bitnet_model *other;  /* another seed, same vocabulary            */
    bitnet_model *wrongv; /* another vocabulary size                  */
    bitnet_model *fast;   /* target with the automatic kernels        */
    bitnet_model *near;   /* the target's embeddings, output layer and FFN, other K/V: a
                             draft that agrees often but not always          */
} fixture;

static bitnet_model *load(const char *path, bitnet_isa isa) {
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    mp.isa = isa;
    bitnet_model *m = NULL;
    return bitnet_model_load(path, &mp, &m) == BITNET_OK ? m : NULL;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    tm_spec sp;
    tm_default(&sp);
    sp.n_layer = 1;
    sp.n_ctx = 512;
    sp.seed = 3;
    /* llama with an untied output layer: the tiny bitnet-b1.58 models here only ever
     * repeat their last token greedily; this one wanders into loops and out of them */
    sp.arch = "llama";
    sp.with_output = 1;
    /* small enough that the sanitizer builds' scalar kernels stay quick */
    sp.n_embd = 128;
    sp.n_head = 2;
    sp.n_head_kv = 1;
    sp.n_ff = 256;
    tm_path(f->path, sizeof f->path, "spec_a");
    if (tm_write(&sp, f->path) != 0) return -1;
    sp.n_head_kv = 2; /* other K/V projections */
    tm_path(f->path4, sizeof f->path4, "spec_d");
    if (tm_write(&sp, f->path4) != 0) return -1;
    sp.n_head_kv = 1;
    sp.seed = 11;
    tm_path(f->path2, sizeof f->path2, "spec_b");
    if (tm_write(&sp, f->path2) != 0) return -1;
    sp.n_vocab = 301;
    tm_path(f->path3, sizeof f->path3, "spec_c");
    if (tm_write(&sp, f->path3) != 0) return -1;
    f->m = load(f->path, BITNET_ISA_SCALAR);
    f->same = load(f->path, BITNET_ISA_SCALAR);
    f->other = load(f->path2, BITNET_ISA_SCALAR);
    f->wrongv = load(f->path3, BITNET_ISA_SCALAR);
    f->fast = load(f->path, BITNET_ISA_AUTO);
    f->near = load(f->path4, BITNET_ISA_AUTO);
    if (!f->m || !f->same || !f->other || !f->wrongv || !f->fast || !f->near) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    bitnet_model_free(f->m);
    bitnet_model_free(f->same);
    bitnet_model_free(f->other);
    bitnet_model_free(f->wrongv);
    bitnet_model_free(f->fast);
    bitnet_model_free(f->near);
    unlink(f->path);
    unlink(f->path2);
    unlink(f->path3);
    unlink(f->path4);
    free(f);
    return 0;
}

static bitnet_session *new_session(const bitnet_model *m, uint32_t n_ctx, uint64_t seed) {
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    p.seed = seed;
    bitnet_session *s = NULL;
    assert_int_equal(bitnet_session_create(m, &p, &s), BITNET_OK);
    return s;
}

static bitnet_sampler_params greedy(float repeat_penalty) {
    bitnet_sampler_params p;
    bitnet_sampler_default_params(&p, sizeof p);
    p.temperature = 0.0f;
    p.repeat_penalty = repeat_penalty;
    return p;
}

static bitnet_spec_params spec(int mode, int n_draft) {
    bitnet_spec_params p;
    bitnet_spec_default_params(&p, sizeof p);
    p.mode = mode;
    p.n_draft_max = n_draft;
    return p;
}

typedef struct run {
    bitnet_token       tok[600];
    size_t             n_tok;
    char               text[8192];
    size_t             n_text;
    bitnet_stop_reason reason;
    bitnet_token       ctx[600];
    uint32_t           n_past;
    int                has_logits;
    float              logits[400];
    bitnet_generator_stats st;
} run;

/* Generate with the generator; stop_after > 0: stop after that many tokens. */
static void gen(const bitnet_model *m, const bitnet_model *draft_m, const bitnet_spec_params *spp, uint32_t n_ctx,
                uint64_t seed, const bitnet_sampler_params *smp, const bitnet_generate_params *gp,
                const bitnet_token *prompt, size_t n_prompt, int stop_after, run *r) {
    memset(r, 0, sizeof *r);
    bitnet_session *s = new_session(m, n_ctx, seed), *ds = NULL;
    if (spp) {
        bitnet_spec_params p = *spp;
        if (draft_m) {
            ds = new_session(draft_m, n_ctx, seed + 1000);
            p.draft = ds;
        }
        assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_OK);
    }
    bitnet_generator *g = NULL;
    assert_int_equal(bitnet_generator_create(s, smp, gp, prompt, n_prompt, &g), BITNET_OK);
    bitnet_generator_step step;
    for (;;) {
        assert_int_equal(bitnet_generator_next(g, &step), BITNET_OK);
        if (step.token >= 0) {
            assert_true(r->n_tok < 600);
            r->tok[r->n_tok++] = step.token;
        }
        assert_true(r->n_text + step.len < sizeof r->text);
        memcpy(r->text + r->n_text, step.text, step.len);
        r->n_text += step.len;
        if (step.reason != BITNET_STOP_NONE) {
            r->reason = step.reason;
            break;
        }
        if (stop_after > 0 && (int)r->n_tok == stop_after) bitnet_generator_stop(g);
    }
    bitnet_generator_get_stats(g, &r->st, sizeof r->st);
    bitnet_generator_free(g);
    r->n_past = bitnet_session_n_past(s);
    const float *l = NULL;
    r->has_logits = bitnet_session_logits(s, -1, &l) == BITNET_OK;
    if (r->has_logits) memcpy(r->logits, l, 300 * sizeof(float));
    /* the context: read back through a state blob is heavy; the tokens are what
     * common_prefix sees */
    assert_true(r->n_past <= 600);
    for (uint32_t i = 0; i < r->n_past; i++) r->ctx[i] = -1;
    bitnet_session_free(s);
    bitnet_session_free(ds);
}

static void assert_same(const run *a, const run *b) {
    assert_int_equal(a->n_tok, b->n_tok);
    assert_memory_equal(a->tok, b->tok, a->n_tok * sizeof(bitnet_token));
    assert_int_equal(a->n_text, b->n_text);
    assert_memory_equal(a->text, b->text, a->n_text);
    assert_int_equal(a->reason, b->reason);
    assert_int_equal(a->n_past, b->n_past);
    assert_int_equal(a->has_logits, b->has_logits);
    if (a->has_logits) assert_memory_equal(a->logits, b->logits, 300 * sizeof(float));
}

/* Prompts with repeated stretches (what lookup can find) and without. */
static size_t make_prompt(uint64_t seed, bitnet_token *p) {
    uint64_t st = seed * 977 + 5;
    size_t n = 0;
    p[n++] = 1;
    size_t len = 6 + tm_next(&st) % 30;
    for (size_t i = 0; i < len; i++) p[n++] = 3 + (bitnet_token)(tm_next(&st) % 297);
    if (seed % 3) { /* repeat a stretch */
        size_t from = 1 + tm_next(&st) % (len / 2), cnt = 3 + tm_next(&st) % (len / 2);
        for (size_t i = 0; i < cnt && from + i < n; i++) p[n++] = p[from + i];
    }
    return n;
}

/* Greedy with lookup and with draft models: many prompts, identical to plain. */
static void test_greedy_exact(void **state) {
    fixture *f = *state;
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.ignore_eog = 1;
    size_t drafted = 0, accepted = 0, spec_steps = 0;
    size_t d_drafted = 0, d_accepted = 0, o_drafted = 0, o_accepted = 0;
    for (uint64_t seed = 1; seed <= N_GREEDY_SEEDS; seed++) {
        bitnet_token prompt[80];
        size_t np = make_prompt(seed, prompt);
        bitnet_sampler_params smp = greedy(seed % 4 == 0 ? 1.3f : 1.0f);
        gp.max_tokens = 20 + (int32_t)(seed % 5) * 9;
        run plain, look, dsame, dother;
        gen(f->m, NULL, NULL, 512, seed, &smp, &gp, prompt, np, 0, &plain);
        bitnet_spec_params sl = spec(BITNET_SPEC_LOOKUP, 1 + (int)(seed % 8));
        sl.ngram_min = 1 + (int)(seed % 2);
        gen(f->m, NULL, &sl, 512, seed, &smp, &gp, prompt, np, 0, &look);
        assert_same(&plain, &look);
        drafted += look.st.n_drafted;
        accepted += look.st.n_accepted;
        spec_steps += look.st.n_spec_steps;
        assert_true(look.st.n_accepted <= look.st.n_drafted);
        /* one forward step per verification: fewer evaluation calls than tokens */
        assert_int_equal(look.st.n_generated, plain.st.n_generated);
        if (seed % 4 == 1) {
            bitnet_spec_params sd = spec(BITNET_SPEC_DRAFT, 4);
            gen(f->m, f->same, &sd, 512, seed, &smp, &gp, prompt, np, 0, &dsame);
            assert_same(&plain, &dsame);
            d_drafted += dsame.st.n_drafted;
            d_accepted += dsame.st.n_accepted;
            sd.p_min = 0.0f;
            gen(f->m, f->other, &sd, 512, seed, &smp, &gp, prompt, np, 0, &dother);
            assert_same(&plain, &dother);
            o_drafted += dother.st.n_drafted;
            o_accepted += dother.st.n_accepted;
        }
    }
    print_message("lookup: %zu drafted, %zu accepted in %zu steps; same-model draft: %zu/%zu; other model: "
                  "%zu/%zu\n", drafted, accepted, spec_steps, d_accepted, d_drafted, o_accepted, o_drafted);
    assert_true(accepted > (N_GREEDY_SEEDS > 6 ? 20 : 5));                   /* lookup found continuations          */
    assert_true(o_accepted < o_drafted);          /* another model's drafts get rejected */
    assert_true(d_drafted > 0 && d_accepted == d_drafted); /* a perfect draft: all kept */
}

/* The automatic kernels: tokens identical in practice on these prompts (a near tie
 * could in principle break differently between a one-token and a k-token step). */
static void test_greedy_fast_kernels(void **state) {
    fixture *f = *state;
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.ignore_eog = 1;
    gp.max_tokens = 40;
    bitnet_sampler_params smp = greedy(1.0f);
    for (uint64_t seed = 1; seed <= 10; seed++) {
        bitnet_token prompt[80];
        size_t np = make_prompt(seed, prompt);
        run plain, look;
        gen(f->fast, NULL, NULL, 512, seed, &smp, &gp, prompt, np, 0, &plain);
        bitnet_spec_params sl = spec(BITNET_SPEC_LOOKUP, 6);
        gen(f->fast, NULL, &sl, 512, seed, &smp, &gp, prompt, np, 0, &look);
        assert_int_equal(plain.n_tok, look.n_tok);
        assert_memory_equal(plain.tok, look.tok, plain.n_tok * sizeof(bitnet_token));
        assert_int_equal(plain.n_past, look.n_past);
    }
}

/* Ends inside a speculative step: max_tokens of every size, stop strings, a stop by the
 * caller, a full context, an end-of-generation token. */
static void test_edges(void **state) {
    fixture *f = *state;
    bitnet_sampler_params smp = greedy(1.0f);
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.ignore_eog = 1;
    bitnet_spec_params sl = spec(BITNET_SPEC_LOOKUP, 8);
    bitnet_spec_params sd = spec(BITNET_SPEC_DRAFT, 5);
    sd.p_min = 0.0f;
    size_t tested_stop = 0;
    for (uint64_t seed = 2; seed <= 8; seed += 3) {
        bitnet_token prompt[80];
        size_t np = make_prompt(seed, prompt);
        run plain, a, b;
        for (int32_t mt = 0; mt <= 9; mt++) { /* max_tokens */
            gp.max_tokens = mt;
            gen(f->m, NULL, NULL, 512, seed, &smp, &gp, prompt, np, 0, &plain);
            gen(f->m, NULL, &sl, 512, seed, &smp, &gp, prompt, np, 0, &a);
            gen(f->m, f->same, &sd, 512, seed, &smp, &gp, prompt, np, 0, &b);
            assert_same(&plain, &a);
            assert_same(&plain, &b);
        }
        gp.max_tokens = 60;
        for (int k = 1; k <= 9; k += 2) { /* stopped by the caller after k tokens */
            gen(f->m, NULL, NULL, 512, seed, &smp, &gp, prompt, np, k, &plain);
            gen(f->m, NULL, &sl, 512, seed, &smp, &gp, prompt, np, k, &a);
            gen(f->m, f->same, &sd, 512, seed, &smp, &gp, prompt, np, k, &b);
            assert_same(&plain, &a);
            assert_same(&plain, &b);
            assert_int_equal(plain.reason, BITNET_STOP_CALLBACK);
        }
        /* a stop string cut from the middle of the plain text */
        gp.max_tokens = 60;
        gen(f->m, NULL, NULL, 512, seed, &smp, &gp, prompt, np, 0, &plain);
        for (size_t at = 3; at + 3 < plain.n_text && at < 40; at += 7) {
            char stop[4] = {plain.text[at], plain.text[at + 1], plain.text[at + 2], 0};
            if (!stop[0] || !stop[1] || !stop[2]) continue;
            const char *stops[1] = {stop};
            bitnet_generate_params g2 = gp;
            g2.stop = stops;
            g2.n_stop = 1;
            run p2;
            gen(f->m, NULL, NULL, 512, seed, &smp, &g2, prompt, np, 0, &p2);
            gen(f->m, NULL, &sl, 512, seed, &smp, &g2, prompt, np, 0, &a);
            gen(f->m, f->same, &sd, 512, seed, &smp, &g2, prompt, np, 0, &b);
            assert_same(&p2, &a);
            assert_same(&p2, &b);
            if (p2.reason == BITNET_STOP_STRING) tested_stop++;
        }
        /* the context fills up */
        gp.max_tokens = -1;
        uint32_t n_ctx = (uint32_t)np + 23 + (uint32_t)(seed % 5);
        gen(f->m, NULL, NULL, n_ctx, seed, &smp, &gp, prompt, np, 0, &plain);
        gen(f->m, NULL, &sl, n_ctx, seed, &smp, &gp, prompt, np, 0, &a);
        gen(f->m, f->same, &sd, n_ctx, seed, &smp, &gp, prompt, np, 0, &b);
        assert_int_equal(plain.reason, BITNET_STOP_CONTEXT);
        assert_int_equal(plain.n_past, n_ctx);
        assert_same(&plain, &a);
        assert_same(&plain, &b);
    }
    assert_true(tested_stop >= 2);
}

/* End-of-generation: the target model again, written with a token its greedy output
 * reaches as the end-of-generation token (the weights do not depend on it), so plain
 * decoding ends there and lookup / draft speculation drafts across it. */
static void test_eog(void **state) {
    fixture *f = *state;
    bitnet_sampler_params smp = greedy(1.0f);
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = 40;
    gp.ignore_eog = 1;
    bitnet_spec_params sl = spec(BITNET_SPEC_LOOKUP, 8);
    bitnet_spec_params sd = spec(BITNET_SPEC_DRAFT, 8);
    sd.p_min = 0.0f;
    int found = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        bitnet_token prompt[80];
        size_t np = make_prompt(seed, prompt);
        run plain, a, b;
        gen(f->m, NULL, NULL, 512, seed, &smp, &gp, prompt, np, 0, &plain);
        /* a token the output reaches after a few steps, not in the prompt */
        bitnet_token eos = -1;
        for (size_t i = 4 + seed % 7; i < plain.n_tok && eos < 0; i++) {
            int in_prompt = plain.tok[i] < 3;
            for (size_t j = 0; j < np; j++) in_prompt |= prompt[j] == plain.tok[i];
            if (!in_prompt) eos = plain.tok[i];
        }
        if (eos < 0) continue;
        tm_spec ts;
        tm_default(&ts);
        ts.n_layer = 1;
        ts.n_ctx = 512;
        ts.seed = 3;
        ts.arch = "llama";
        ts.with_output = 1;
        ts.n_embd = 128; /* the fixture's target shape */
        ts.n_head = 2;
        ts.n_head_kv = 1;
        ts.n_ff = 256;
        ts.eos_id = eos;
        char path[512];
        tm_path(path, sizeof path, "spec_eos");
        assert_int_equal(tm_write(&ts, path), 0);
        bitnet_model *m = load(path, BITNET_ISA_SCALAR);
        assert_non_null(m);
        assert_true(bitnet_token_is_eog(m, eos));
        bitnet_generate_params g2 = gp;
        g2.ignore_eog = 0;
        gen(m, NULL, NULL, 512, seed, &smp, &g2, prompt, np, 0, &plain);
        assert_int_equal(plain.reason, BITNET_STOP_EOG);
        gen(m, NULL, &sl, 512, seed, &smp, &g2, prompt, np, 0, &a);
        gen(m, m, &sd, 512, seed, &smp, &g2, prompt, np, 0, &b);
        assert_same(&plain, &a);
        assert_same(&plain, &b);
        assert_int_equal(plain.n_past, np + plain.n_tok + 1); /* the EOG in the context */
        bitnet_model_free(m);
        unlink(path);
        found++;
    }
    print_message("EOG cases: %d\n", found);
    assert_true(found >= 3);
}

/* Parameter checks and the draft model's vocabulary. */
static void test_params(void **state) {
    fixture *f = *state;
    bitnet_session *s = new_session(f->m, 128, 1), *ds = new_session(f->wrongv, 128, 1),
                   *ok = new_session(f->other, 128, 1);
    bitnet_spec_params p = spec(BITNET_SPEC_DRAFT, 4);
    assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_E_INVALID_ARG); /* no draft */
    p.draft = s;
    assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_E_INVALID_ARG);
    p.draft = ds;
    assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_E_UNSUPPORTED);
    assert_non_null(strstr(bitnet_session_last_error(s), "vocabulary"));
    p.draft = ok;
    assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_OK);
    p.n_draft_max = 0;
    assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_E_INVALID_ARG);
    p.n_draft_max = 65;
    assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_E_INVALID_ARG);
    p = spec(BITNET_SPEC_LOOKUP, 4);
    p.ngram_min = 5;
    assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_E_INVALID_ARG);
    p.ngram_min = 0;
    assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_E_INVALID_ARG);
    p = spec(7, 4);
    assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_session_set_speculation(s, NULL), BITNET_OK);
    assert_int_equal(bitnet_session_set_speculation(NULL, NULL), BITNET_E_INVALID_ARG);

    /* with speculation the caller must leave evaluation to next: a prompt that is the
     * model's own greedy continuation, twice, so drafts are kept */
    bitnet_token prompt[200];
    size_t np = make_prompt(1, prompt);
    bitnet_sampler_params smp = greedy(1.0f);
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = 30;
    gp.ignore_eog = 1;
    run plain;
    gen(f->m, NULL, NULL, 512, 1, &smp, &gp, prompt, np, 0, &plain);
    for (size_t i = 0; i < plain.n_tok; i++) prompt[np++] = plain.tok[i];
    bitnet_session_free(s);
    s = new_session(f->m, 512, 1);
    p = spec(BITNET_SPEC_LOOKUP, 8);
    assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_OK);
    bitnet_generator *g = NULL;
    assert_int_equal(bitnet_generator_create(s, &smp, &gp, prompt, np, &g), BITNET_OK);
    bitnet_generator_step step;
    int failed = 0;
    for (int i = 0; i < 30; i++) {
        bitnet_status st = bitnet_generator_next(g, &step);
        if (st != BITNET_OK) {
            assert_int_equal(st, BITNET_E_INVALID_ARG);
            assert_non_null(strstr(bitnet_session_last_error(s), "speculation"));
            failed = 1;
            break;
        }
        if (step.token < 0) break;
        if (i >= 4) (void)bitnet_session_eval(s, &step.token, 1); /* against the rule */
    }
    bitnet_generator_free(g);
    assert_true(failed);
    bitnet_session_free(s);
    bitnet_session_free(ds);
    bitnet_session_free(ok);
}

/* ---- the caller evaluating (bitnet_generator_draft, as bitnet-server does) ----------------- */

/* Generate on several sessions at once, the caller evaluating every token and draft in
 * one bitnet_batch step per round (r[i]: as gen() fills it). */
static void gen_batched(const bitnet_model *m, int n, const bitnet_model *draft_m, const bitnet_spec_params *spp,
                        uint64_t seed0, const bitnet_sampler_params *smp, const bitnet_generate_params *gp,
                        bitnet_token prompts[][80], const size_t *np, run *r) {
    enum { MAXS = 4 };
    assert_true(n <= MAXS);
    bitnet_session *s[MAXS], *ds[MAXS] = {NULL};
    bitnet_generator *g[MAXS];
    int done[MAXS] = {0};
    bitnet_batch_params bp;
    bitnet_batch_default_params(&bp, sizeof bp);
    bp.n_threads = 1;
    bitnet_batch *b = NULL;
    assert_int_equal(bitnet_batch_create(m, &bp, &b), BITNET_OK);
    for (int i = 0; i < n; i++) {
        memset(&r[i], 0, sizeof r[i]);
        s[i] = new_session(m, 512, seed0 + (uint64_t)i);
        bitnet_spec_params p = spp[i];
        if (p.mode == BITNET_SPEC_DRAFT) {
            ds[i] = new_session(draft_m, 512, seed0 + 1000 + (uint64_t)i);
            p.draft = ds[i];
        }
        assert_int_equal(bitnet_session_set_speculation(s[i], &p), BITNET_OK);
        assert_int_equal(bitnet_generator_create(s[i], smp, gp, prompts[i], np[i], &g[i]), BITNET_OK);
    }
    for (int left = n; left > 0;) {
        for (int i = 0; i < n; i++) {
            if (done[i]) continue;
            for (;;) { /* next until there is something to evaluate */
                bitnet_generator_step step;
                assert_int_equal(bitnet_generator_next(g[i], &step), BITNET_OK);
                if (step.token >= 0) {
                    assert_true(r[i].n_tok < 600);
                    r[i].tok[r[i].n_tok++] = step.token;
                }
                assert_true(r[i].n_text + step.len < sizeof r[i].text);
                memcpy(r[i].text + r[i].n_text, step.text, step.len);
                r[i].n_text += step.len;
                if (step.reason != BITNET_STOP_NONE) {
                    r[i].reason = step.reason;
                    done[i] = 1;
                    left--;
                    break;
                }
                bitnet_token t[BITNET_SPEC_TEST_CAP];
                size_t nt = 0;
                assert_int_equal(bitnet_generator_draft(g[i], t, BITNET_SPEC_TEST_CAP, &nt), BITNET_OK);
                assert_true(nt == 0 || t[0] == step.token);
                if (nt == 0) continue; /* decided by the last verification: already in */
                assert_int_equal(bitnet_batch_add(b, s[i], t, nt, nt > 1 ? BITNET_BATCH_LOGITS_ALL : 0), BITNET_OK);
                break;
            }
        }
        if (bitnet_batch_n_tokens(b)) assert_int_equal(bitnet_batch_eval(b), BITNET_OK);
    }
    for (int i = 0; i < n; i++) {
        bitnet_generator_get_stats(g[i], &r[i].st, sizeof r[i].st);
        bitnet_generator_free(g[i]);
        r[i].n_past = bitnet_session_n_past(s[i]);
        const float *l = NULL;
        r[i].has_logits = bitnet_session_logits(s[i], -1, &l) == BITNET_OK;
        if (r[i].has_logits) memcpy(r[i].logits, l, 300 * sizeof(float));
        bitnet_session_free(s[i]);
        bitnet_session_free(ds[i]);
    }
    bitnet_batch_free(b);
}

/* Greedy: four sessions in one batch (lookup with two draft lengths, draft models: the
 * same file -- a perfect draft -- or another model) give exactly the plain tokens, text
 * and final context. */
static void test_caller_evaluates(void **state) {
    fixture *f = *state;
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.ignore_eog = 1;
    size_t drafted = 0, accepted = 0, verified_other = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        bitnet_token prompts[4][80];
        size_t np[4];
        bitnet_spec_params sp[4];
        for (int i = 0; i < 4; i++) np[i] = make_prompt(seed * 4 + (uint64_t)i, prompts[i]);
        sp[0] = spec(BITNET_SPEC_LOOKUP, 8);
        sp[1] = spec(BITNET_SPEC_DRAFT, 5);
        sp[2] = spec(BITNET_SPEC_DRAFT, 3);
        sp[2].p_min = 0.0f;
        sp[3] = spec(BITNET_SPEC_LOOKUP, 2 + (int)seed);
        gp.max_tokens = 25 + (int32_t)seed * 7;
        bitnet_sampler_params smp = greedy(seed == 2 ? 1.3f : 1.0f);
        run got[4], want;
        /* sessions 1 and 2 draft with the same model file or another one: split the
         * runs so both draft sources are seen (the helper takes one draft model) */
        gen_batched(f->m, 4, seed == 3 ? f->other : f->same, sp, seed, &smp, &gp, prompts, np, got);
        for (int i = 0; i < 4; i++) {
            gen(f->m, NULL, NULL, 512, seed + (uint64_t)i, &smp, &gp, prompts[i], np[i], 0, &want);
            assert_same(&want, &got[i]);
            drafted += got[i].st.n_drafted;
            accepted += got[i].st.n_accepted;
            if (seed == 3 && i >= 1 && i <= 2) verified_other += got[i].st.n_drafted - got[i].st.n_accepted;
        }
    }
    print_message("caller evaluating: %zu drafted, %zu accepted; another model's drafts rejected: %zu\n", drafted,
                  accepted, verified_other);
    assert_true(accepted > 20 && accepted < drafted);
    assert_true(verified_other > 0);
}

/* The contract: what next says when the caller evaluates otherwise than asked. */
static void test_caller_contract(void **state) {
    fixture *f = *state;
    bitnet_token prompt[200];
    size_t np = make_prompt(1, prompt);
    bitnet_sampler_params smp = greedy(1.0f);
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = 30;
    gp.ignore_eog = 1;
    run plain;
    gen(f->m, NULL, NULL, 512, 1, &smp, &gp, prompt, np, 0, &plain);
    for (size_t i = 0; i < plain.n_tok; i++) prompt[np++] = plain.tok[i]; /* lookup finds the rest */
    gen(f->m, NULL, NULL, 512, 1, &smp, &gp, prompt, np, 0, &plain);
    for (int variant = 0; variant < 3; variant++) {
        bitnet_session *s = new_session(f->m, 512, 1);
        bitnet_spec_params p = spec(BITNET_SPEC_LOOKUP, 8);
        assert_int_equal(bitnet_session_set_speculation(s, &p), BITNET_OK);
        bitnet_generator *g = NULL;
        assert_int_equal(bitnet_generator_create(s, &smp, &gp, prompt, np, &g), BITNET_OK);
        bitnet_token t[16];
        size_t nt = 99;
        assert_int_equal(bitnet_generator_draft(g, t, 16, &nt), BITNET_OK); /* before the first next */
        assert_int_equal(nt, 0);
        bitnet_generator_step step;
        bitnet_status st = BITNET_OK;
        size_t n_tok = 0, drafts_seen = 0;
        bitnet_token toks[64];
        while ((st = bitnet_generator_next(g, &step)) == BITNET_OK && step.token >= 0) {
            toks[n_tok++] = step.token;
            assert_int_equal(bitnet_generator_draft(g, t, 0, &nt), BITNET_E_BUFFER_TOO_SMALL);
            assert_int_equal(bitnet_generator_draft(g, t, 16, &nt), BITNET_OK);
            if (nt == 0) continue;
            if (nt > 1) drafts_seen++;
            if (variant == 0) { /* only the token: allowed, the draft is dropped */
                assert_int_equal(bitnet_session_eval(s, t, 1), BITNET_OK);
            } else if (variant == 1 && nt > 1) { /* the draft without every row's logits */
                assert_int_equal(bitnet_session_eval(s, t, nt), BITNET_OK);
            } else if (variant == 2 && nt > 1) { /* other tokens than asked */
                t[nt - 1] = (bitnet_token)((t[nt - 1] + 1) % 300);
                bitnet_batch_params bp;
                bitnet_batch_default_params(&bp, sizeof bp);
                bitnet_batch *b = NULL;
                assert_int_equal(bitnet_batch_create(f->m, &bp, &b), BITNET_OK);
                assert_int_equal(bitnet_batch_add(b, s, t, nt, BITNET_BATCH_LOGITS_ALL), BITNET_OK);
                assert_int_equal(bitnet_batch_eval(b), BITNET_OK);
                bitnet_batch_free(b);
            } else {
                assert_int_equal(bitnet_session_eval(s, t, 1), BITNET_OK);
            }
        }
        if (variant == 0) {
            assert_int_equal(st, BITNET_OK);
            assert_int_equal(n_tok, plain.n_tok);
            assert_memory_equal(toks, plain.tok, n_tok * sizeof *toks);
            assert_true(drafts_seen > 0);
        } else {
            assert_int_equal(st, BITNET_E_INVALID_ARG);
            assert_non_null(strstr(bitnet_session_last_error(s), variant == 1 ? "logits" : "bitnet_generator_draft"));
            assert_int_equal(bitnet_generator_draft(g, t, 16, &nt), BITNET_E_INVALID_ARG); /* failed for good */
        }
        bitnet_generator_free(g);
        bitnet_session_free(s);
    }
}

/* ---- the sampling distribution ------------------------------------------------------------- */

#define DEPTH 5
#define TOPK  2
#define TEMP  30.0f

/* softmax(logits / T) over the top TOPK: ids and probabilities (written out here). */
static void topk_dist(const float *l, int n, int *ids, double *pr) {
    for (int k = 0; k < TOPK; k++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int used = 0;
            for (int j = 0; j < k; j++) used |= ids[j] == i;
            if (!used && (best < 0 || l[i] > l[best])) best = i;
        }
        ids[k] = best;
    }
    double mx = l[ids[0]], sum = 0;
    for (int k = 0; k < TOPK; k++) sum += pr[k] = exp(((double)l[ids[k]] - mx) / TEMP);
    for (int k = 0; k < TOPK; k++) pr[k] /= sum;
}

/* Exact probabilities of the TOPK^DEPTH continuations of prompt under model m. */
static void exact_tree(const bitnet_model *m, const bitnet_token *prompt, size_t np, bitnet_token seqs[][DEPTH],
                       double *prob) {
    int ncell = 1;
    for (int d = 0; d < DEPTH; d++) ncell *= TOPK;
    for (int c = 0; c < ncell; c++) {
        bitnet_session *s = new_session(m, 128, 1);
        assert_int_equal(bitnet_session_eval(s, prompt, np), BITNET_OK);
        double p = 1;
        int code = c;
        for (int d = 0; d < DEPTH; d++) {
            const float *l = NULL;
            assert_int_equal(bitnet_session_logits(s, -1, &l), BITNET_OK);
            int ids[TOPK];
            double pr[TOPK];
            topk_dist(l, 300, ids, pr);
            int pick = code % TOPK;
            code /= TOPK;
            p *= pr[pick];
            seqs[c][d] = ids[pick];
            assert_int_equal(bitnet_session_eval(s, &seqs[c][d], 1), BITNET_OK);
        }
        prob[c] = p;
        bitnet_session_free(s);
    }
}

/* Pearson's chi-square with cells of expected count < 5 pooled; returns the statistic
 * and the degrees of freedom. */
static double chi2(const double *prob, const int *count, int ncell, int n, int *df) {
    double stat = 0, pool_e = 0, pool_o = 0;
    int cells = 0;
    for (int c = 0; c < ncell; c++) {
        double e = prob[c] * n;
        if (e < 5) { pool_e += e; pool_o += count[c]; continue; }
        stat += (count[c] - e) * (count[c] - e) / e;
        cells++;
    }
    if (pool_e > 0) { stat += (pool_o - pool_e) * (pool_o - pool_e) / (pool_e > 1e-9 ? pool_e : 1e-9); cells++; }
    *df = cells - 1;
    return stat;
}

/* Upper 0.1% points of the chi-square distribution (standard tables), df 1..30. */
static const double CHI2_999[32] = {0,     10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59,
                                    31.26, 32.91, 34.53, 36.12, 37.70, 39.25, 40.79, 42.31, 43.82, 45.31,
                                    46.80, 48.27, 49.73, 51.18, 52.62, 54.05, 55.48, 56.89, 58.30, 59.70,
                                    61.10};

static void sample_counts(const fixture *f, const bitnet_model *draft_m, int mode, int caller,
                          const bitnet_token *prompt, size_t np, bitnet_token seqs[][DEPTH], int ncell, int n,
                          int *count, size_t *drafted, size_t *accepted) {
    bitnet_sampler_params smp;
    bitnet_sampler_default_params(&smp, sizeof smp);
    smp.temperature = TEMP;
    smp.top_k = TOPK;
    smp.top_p = 1.0f;
    smp.min_p = 0.0f;
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = DEPTH;
    gp.ignore_eog = 1;
    bitnet_session *s = new_session(f->fast, 128, 1), *ds = NULL;
    bitnet_spec_params sp = spec(mode, 4);
    sp.p_min = 0.0f;
    if (draft_m) {
        ds = new_session(draft_m, 128, 7);
        sp.draft = ds;
    }
    if (mode != BITNET_SPEC_NONE) assert_int_equal(bitnet_session_set_speculation(s, &sp), BITNET_OK);
    bitnet_batch *b = NULL;
    if (caller) {
        bitnet_batch_params bp;
        bitnet_batch_default_params(&bp, sizeof bp);
        bp.n_threads = 1;
        assert_int_equal(bitnet_batch_create(f->fast, &bp, &b), BITNET_OK);
    }
    memset(count, 0, (size_t)ncell * sizeof *count);
    for (int it = 0; it < n; it++) {
        bitnet_session_set_seed(s, 1000003ull * (uint64_t)it + 17);
        if (ds) bitnet_session_set_seed(ds, 7919ull * (uint64_t)it + 3);
        bitnet_generator *g = NULL;
        assert_int_equal(bitnet_generator_create(s, &smp, &gp, prompt, np, &g), BITNET_OK);
        bitnet_token got[DEPTH];
        int ng = 0;
        bitnet_generator_step step;
        for (;;) {
            assert_int_equal(bitnet_generator_next(g, &step), BITNET_OK);
            if (step.token >= 0) got[ng++] = step.token;
            if (step.reason != BITNET_STOP_NONE) break;
            if (b) { /* the caller evaluates what bitnet_generator_draft asks for, batched */
                bitnet_token t[BITNET_SPEC_TEST_CAP];
                size_t nt = 0;
                assert_int_equal(bitnet_generator_draft(g, t, BITNET_SPEC_TEST_CAP, &nt), BITNET_OK);
                if (nt == 0) continue;
                assert_int_equal(bitnet_batch_add(b, s, t, nt, nt > 1 ? BITNET_BATCH_LOGITS_ALL : 0), BITNET_OK);
                assert_int_equal(bitnet_batch_eval(b), BITNET_OK);
            }
        }
        bitnet_generator_stats st;
        bitnet_generator_get_stats(g, &st, sizeof st);
        *drafted += st.n_drafted;
        *accepted += st.n_accepted;
        bitnet_generator_free(g);
        assert_int_equal(ng, DEPTH);
        int cell = -1;
        for (int c = 0; c < ncell && cell < 0; c++)
            if (memcmp(seqs[c], got, sizeof got) == 0) cell = c;
        assert_true(cell >= 0); /* only top-k tokens can come out */
        count[cell]++;
    }
    bitnet_batch_free(b);
    bitnet_session_free(s);
    bitnet_session_free(ds);
}

static void check_distribution(void **state, const bitnet_model *draft_m, int mode, int caller) {
    fixture *f = *state;
    /* the model's own greedy continuation of a short prompt: it runs into a loop, which
     * lookup drafts from */
    bitnet_token prompt[40] = {1, 50, 60, 70};
    size_t np = 4;
    bitnet_session *s = new_session(f->fast, 128, 1);
    assert_int_equal(bitnet_session_eval(s, prompt, np), BITNET_OK);
    while (np < 34) {
        const float *l = NULL;
        assert_int_equal(bitnet_session_logits(s, -1, &l), BITNET_OK);
        int ids[TOPK];
        double pr[TOPK];
        topk_dist(l, 300, ids, pr);
        prompt[np] = ids[0];
        assert_int_equal(bitnet_session_eval(s, &prompt[np], 1), BITNET_OK);
        np++;
    }
    bitnet_session_free(s);

    enum { NCELL = TOPK * TOPK * TOPK * TOPK * TOPK, N = N_SAMPLES };
    bitnet_token seqs[NCELL][DEPTH];
    double prob[NCELL];
    exact_tree(f->fast, prompt, np, seqs, prob);
    int count[NCELL];
    size_t drafted = 0, accepted = 0;
    sample_counts(f, draft_m, mode, caller, prompt, np, seqs, NCELL, N, count, &drafted, &accepted);
    int df = 0;
    double x2 = chi2(prob, count, NCELL, N, &df), tv = 0;
    for (int c = 0; c < NCELL; c++) tv += fabs(count[c] / (double)N - prob[c]) / 2;
    print_message("mode %d: chi2 %.2f (df %d, 0.1%% point %.2f), TV %.4f; %zu drafted, %zu accepted\n", mode, x2,
                  df, CHI2_999[df], tv, drafted, accepted);
    assert_true(df >= 1 && df <= 31);
    assert_true(drafted > (size_t)N / 4);            /* speculation really ran ...   */
    assert_true(accepted > 0 && accepted < drafted); /* ... keeping and rejecting    */
    assert_true(x2 < CHI2_999[df]);
    assert_true(tv < 3.6 / sqrt((double)N)); /* 0.08 at N = 2000 */
}

/* Lookup through the generator's own evaluation; the draft model with the caller
 * evaluating in a batch (bitnet_generator_draft).  Both paths run the same drafting and
 * acceptance code (lib/gen_spec.c) and differ only in who evaluates the k + 1 tokens, a
 * deterministic step, so one distribution test per draft source covers both paths. */
static void test_sampling_lookup(void **state) { check_distribution(state, NULL, BITNET_SPEC_LOOKUP, 0); }
static void test_sampling_draft(void **state) {
    fixture *f = *state;
    check_distribution(state, f->near, BITNET_SPEC_DRAFT, 1);
}

/* The test can fail: plain sampling from the draft model (what accepting every draft
 * would give) is told apart from the target's distribution by the same statistic. */
static void test_distribution_power(void **state) {
    fixture *f = *state;
    bitnet_token prompt[4] = {1, 50, 60, 70};
    enum { NCELL = TOPK * TOPK * TOPK * TOPK * TOPK, N = N_SAMPLES };
    bitnet_token seqs[NCELL][DEPTH], dseqs[NCELL][DEPTH];
    double prob[NCELL], dprob[NCELL];
    exact_tree(f->fast, prompt, 4, seqs, prob);
    exact_tree(f->near, prompt, 4, dseqs, dprob);
    int count[NCELL];
    size_t d = 0, a = 0;
    fixture g = *f;
    g.fast = f->near;
    sample_counts(&g, NULL, BITNET_SPEC_NONE, 0, prompt, 4, dseqs, NCELL, N, count, &d, &a);
    int tcount[NCELL];
    memset(tcount, 0, sizeof tcount);
    int outside = 0; /* sequences the target never produces */
    for (int c = 0; c < NCELL; c++) {
        int cell = -1;
        for (int t = 0; t < NCELL && cell < 0; t++)
            if (memcmp(seqs[t], dseqs[c], sizeof seqs[t]) == 0) cell = t;
        if (cell >= 0) tcount[cell] += count[c];
        else outside += count[c];
    }
    int df = 0;
    double x2 = chi2(prob, tcount, NCELL, N - outside, &df);
    print_message("the draft's distribution against the target's: chi2 %.1f (df %d), %d of %d impossible "
                  "for the target\n", x2, df, outside, N);
    assert_true(outside > 0 || (df >= 1 && df <= 31 && x2 > CHI2_999[df]));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_greedy_exact),
        cmocka_unit_test(test_greedy_fast_kernels),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_eog),
        cmocka_unit_test(test_caller_evaluates),
        cmocka_unit_test(test_caller_contract),
        cmocka_unit_test(test_sampling_lookup),
        cmocka_unit_test(test_sampling_draft),
        cmocka_unit_test(test_distribution_power),
    };
    if (getenv("BN_TEST_FILTER")) cmocka_set_test_filter(getenv("BN_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
