/*
 * test_screen.c -- the screened output layer (bitnet_model_set_output_screening,
 * docs/performance.md): on every kernel variant this machine runs,
 *  - the proved bound holds: |screened - exact| <= e for every token at many positions,
 *    the exact logits coming from the ordinary full F16 pass;
 *  - sampling from screened logits gives what the full logits give (greedy, top-k,
 *    min-p, with penalties), including constructed exact ties and one-ulp near-ties in
 *    the output rows;
 *  - greedy generation gives the same tokens with and without screening;
 *  - the cut logic of bn_sampler_screen on adversarial synthetic data (exact logits at
 *    the ends of their intervals, ties at the cut).
 * The reference is always the unscreened F16 path of the same kernel variant.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gen_sampler.h"
#include "sess_impl.h"
#include "test_model_util.h"

static char g_path[512];

static int setup(void **state) {
    (void)state;
    tm_spec sp;
    tm_default(&sp);
    sp.n_vocab = 1000; /* vocabulary-heavy for its size, like 2B-4T */
    sp.n_embd = 160;   /* not a multiple of 64: a padded screening block */
    sp.n_head = 2;
    sp.n_head_kv = 1;
    sp.n_ff = 256;
    sp.n_layer = 1;
    sp.n_ctx = 128;
    sp.seed = 11;
    tm_path(g_path, sizeof g_path, "screen");
    return tm_write(&sp, g_path) != 0 ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(g_path);
    return 0;
}

static bitnet_model *load(bitnet_isa isa) {
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    mp.isa = isa;
    mp.use_mmap = 0; /* the test edits output rows in memory */
    bitnet_model *m = NULL;
    if (bitnet_model_load(g_path, &mp, &m) != BITNET_OK) return NULL;
    return m;
}

static bitnet_session *session(const bitnet_model *m, int embeddings) {
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = 128;
    p.n_threads = 2;
    p.embeddings = embeddings;
    bitnet_session *s = NULL;
    assert_int_equal(bitnet_session_create(m, &p, &s), BITNET_OK);
    return s;
}

/* Write row r of the output matrix (F16, either layout) from floats. */
static void put_row(bitnet_model *m, int64_t r, const float *x) {
    bn_dmat *w = &m->output;
    uint8_t *d = (uint8_t *)(uintptr_t)w->data;
    for (int64_t i = 0; i < w->cols; i++) {
        uint16_t h = bn_f32_to_f16(x[i]);
        size_t off;
        if (w->layout == BN_DMAT_G4X32 && r < (w->rows & ~(int64_t)3))
            off = (size_t)(r / 4) * 4 * w->row_bytes + (size_t)(i / 32) * 256 + (size_t)(r % 4) * 64 + (size_t)(i % 32) * 2;
        else
            off = (size_t)r * w->row_bytes + (size_t)i * 2;
        memcpy(d + off, &h, 2);
    }
}

static uint64_t g_rescored; /* tokens re-scored by check_sample's screened copies */

static const bitnet_isa isas[] = {BITNET_ISA_SCALAR, BITNET_ISA_AVX2, BITNET_ISA_AVXVNNI, BITNET_ISA_AVX512, BITNET_ISA_AMX, BITNET_ISA_NEON};

/* Sample with sp from the full exact logits (a copy of the session's RNG) and from the
 * screened path; both must give the same token and leave the same RNG state. */
static void check_sample(bitnet_session *s, const bitnet_sampler_params *sp) {
    bitnet_session *c = session(s->m, 0), *d = session(s->m, 0);
    assert_int_equal(bitnet_session_copy(c, s), BITNET_OK);
    assert_int_equal(bitnet_session_copy(d, s), BITNET_OK);
    assert_true(c->logits_screened == s->logits_screened);
    bitnet_token t_scr = -1, t_full = -1;
    assert_int_equal(bitnet_session_sample(c, sp, &t_scr), BITNET_OK);
    const float *full = NULL;
    assert_int_equal(bitnet_session_logits(d, -1, &full), BITNET_OK); /* d: the full F16 layer */
    uint64_t rng[4];
    memcpy(rng, s->rng, sizeof rng);
    assert_int_equal(bn_sample(full, (int32_t)s->m->hp.n_vocab, s->tokens, s->n_past, sp, rng, &t_full), BITNET_OK);
    assert_int_equal(t_scr, t_full);
    assert_memory_equal(rng, c->rng, sizeof rng);
    uint64_t nr = 0;
    bitnet_session_screen_stats(c, NULL, &nr, NULL);
    g_rescored += nr;
    bitnet_session_free(c);
    bitnet_session_free(d);
}

static void test_bound_and_sampling(void **state) {
    (void)state;
    int ran = 0;
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        bitnet_model *m = load(isas[k]);
        if (!m) continue; /* not on this machine */
        ran++;
        const int64_t V = m->hp.n_vocab, E = m->hp.n_embd;
        /* find the normed hidden state at one position, then plant rows aligned with it:
         * 5 == 7 (an exact tie), 9 = 7 with one element one f16 ulp larger or smaller */
        bitnet_session *s = session(m, 1);
        bitnet_token prompt[8] = {3, 40, 41, 300, 77, 12, 500, 999};
        assert_int_equal(bitnet_session_eval(s, prompt, 8), BITNET_OK);
        const float *h = NULL;
        assert_int_equal(bitnet_session_embeddings(s, -1, &h), BITNET_OK);
        float *row = malloc((size_t)E * sizeof *row);
        float hn = 0;
        for (int64_t i = 0; i < E; i++) hn += h[i] * h[i];
        for (int64_t i = 0; i < E; i++) row[i] = h[i] / sqrtf(hn) * 0.5f;
        put_row(m, 7, row);
        put_row(m, 5, row);
        int64_t big = 0;
        for (int64_t i = 1; i < E; i++)
            if (fabsf(row[i]) > fabsf(row[big])) big = i;
        uint16_t hb = bn_f32_to_f16(row[big]);
        row[big] = bn_f16_to_f32((uint16_t)(hb + 1)); /* one ulp away from zero */
        put_row(m, 9, row);
        row[big] = bn_f16_to_f32((uint16_t)(hb - 1));
        put_row(m, 11, row);
        /* rows hard for the int8 copy: one huge weight per block beside tiny ones (the
         * tiny ones all quantize to 0), and weights at half-steps of the block scale
         * (rounding ties of w / sigma) */
        for (int64_t i = 0; i < E; i++) row[i] = i % 64 == 3 ? 30000.0f : (i % 2 ? 1e-3f : -7e-4f) * (float)(1 + i % 5);
        put_row(m, 13, row);
        for (int64_t i = 0; i < E; i++) row[i] = i % 64 == 0 ? 1.27f : ((float)(i % 50) + 0.5f) * 0.01f * (i % 3 ? 1.0f : -1.0f);
        put_row(m, 15, row);
        bitnet_session_free(s);
        free(row);

        assert_int_equal(bitnet_model_set_output_screening(m, BITNET_SCREEN_EXACT), BITNET_OK);
        s = session(m, 0);
        bitnet_sampler_params sps[6];
        for (int i = 0; i < 6; i++) bitnet_sampler_default_params(&sps[i], sizeof sps[i]);
        sps[0].temperature = 0.0f;                         /* greedy */
        sps[1].temperature = 0.0f, sps[1].repeat_penalty = 1.3f, sps[1].frequency_penalty = 0.2f;
        /* sps[2]: the default chain (top_k 40) */
        sps[3].top_k = 2, sps[3].top_p = 1.0f, sps[3].min_p = 0.0f, sps[3].repeat_penalty = 1.1f;
        sps[4].top_k = 0, sps[4].top_p = 1.0f, sps[4].min_p = 0.05f, sps[4].temperature = 1.5f;
        sps[5].top_k = 0; /* top_p alone: falls back to the full layer */
        uint64_t full_before = 0;
        for (int pos = 0; pos < 40; pos++) {
            bitnet_token t = pos < 8 ? prompt[pos] : (bitnet_token)((pos * 37) % V);
            assert_int_equal(bitnet_session_eval(s, &t, 1), BITNET_OK);
            assert_true(s->logits_screened);
            /* the bound, on a copy (the full logits replace the screened state) */
            float *sc = malloc((size_t)V * sizeof *sc), *ec = malloc((size_t)V * sizeof *ec);
            memcpy(sc, s->scr.s, (size_t)V * sizeof *sc);
            memcpy(ec, s->scr.e, (size_t)V * sizeof *ec);
            for (int i = 0; i < 6; i++) check_sample(s, &sps[i]);
            const float *full = NULL;
            assert_int_equal(bitnet_session_logits(s, -1, &full), BITNET_OK);
            for (int64_t j = 0; j < V; j++) {
                if (!(fabsf(sc[j] - full[j]) <= ec[j]))
                    fail_msg("%s pos %d token %lld: screened %.9g exact %.9g bound %.3g", bitnet_isa_name(isas[k]),
                             pos, (long long)j, (double)sc[j], (double)full[j], (double)ec[j]);
            }
            free(sc);
            free(ec);
        }
        uint64_t ns = 0;
        bitnet_session_screen_stats(s, &ns, NULL, &full_before);
        assert_int_equal(ns, 40);
        assert_true(g_rescored > 0);
        bitnet_session_free(s);
        bitnet_model_free(m);
    }
    assert_true(ran >= 1);
}

/* Greedy generation from the planted-tie position: identical with and without screening. */
static void test_generate_same(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        bitnet_token out[2][48];
        int ok = 1;
        for (int mode = 0; mode < 2 && ok; mode++) {
            bitnet_model *m = load(isas[k]);
            if (!m) { ok = 0; break; }
            if (mode) assert_int_equal(bitnet_model_set_output_screening(m, BITNET_SCREEN_EXACT), BITNET_OK);
            bitnet_session *s = session(m, 0);
            bitnet_sampler_params sp;
            bitnet_sampler_default_params(&sp, sizeof sp);
            sp.temperature = 0.0f;
            bitnet_token t = 17;
            for (int i = 0; i < 48; i++) {
                assert_int_equal(bitnet_session_eval(s, &t, 1), BITNET_OK);
                assert_int_equal(bitnet_session_sample(s, &sp, &t), BITNET_OK);
                out[mode][i] = t;
            }
            if (mode) {
                uint64_t nf = 0;
                bitnet_session_screen_stats(s, NULL, NULL, &nf);
                assert_int_equal(nf, 0); /* greedy never needed the full layer */
            }
            bitnet_session_free(s);
            bitnet_model_free(m);
        }
        if (ok) assert_memory_equal(out[0], out[1], sizeof out[0]);
    }
}

/* The lossy mode: logits from the int8 copy, within the bound of the exact ones. */
static void test_int8_mode(void **state) {
    (void)state;
    bitnet_model *m = load(BITNET_ISA_AUTO), *m8 = load(BITNET_ISA_AUTO);
    assert_non_null(m);
    assert_non_null(m8);
    assert_int_equal(bitnet_model_set_output_screening(m8, BITNET_SCREEN_INT8), BITNET_OK);
    bitnet_session *a = session(m, 0), *b = session(m8, 0);
    bitnet_token t[4] = {5, 6, 7, 8};
    assert_int_equal(bitnet_session_eval(a, t, 4), BITNET_OK);
    assert_int_equal(bitnet_session_eval(b, t, 4), BITNET_OK);
    const float *la = NULL, *lb = NULL;
    assert_int_equal(bitnet_session_logits(a, -1, &la), BITNET_OK);
    assert_int_equal(bitnet_session_logits(b, -1, &lb), BITNET_OK);
    int differ = 0;
    double mean = 0, var = 0, maxd = 0;
    for (int64_t j = 0; j < m->hp.n_vocab; j++) mean += la[j];
    mean /= (double)m->hp.n_vocab;
    for (int64_t j = 0; j < m->hp.n_vocab; j++) {
        var += (la[j] - mean) * (la[j] - mean);
        maxd = fmax(maxd, fabs((double)la[j] - (double)lb[j]));
        differ += la[j] != lb[j];
    }
    /* int8 with 64-blocks: errors far below the spread of the logits */
    assert_true(maxd < 0.05 * sqrt(var / (double)m->hp.n_vocab));
    assert_true(differ > 0); /* it really is the int8 copy */
    assert_int_equal(bitnet_model_set_output_screening(m8, (bitnet_screen_mode)7), BITNET_E_INVALID_ARG);
    bitnet_session_free(a);
    bitnet_session_free(b);
    bitnet_model_free(m);
    bitnet_model_free(m8);
}

/* bn_sampler_screen on synthetic intervals: exact values chosen adversarially inside
 * [s - e, s + e]; the chain on the candidate vector must match the chain on the exact
 * logits. */
static void test_cut_logic(void **state) {
    (void)state;
    enum { V = 600 };
    float s[V], e[V], x[V], lo[V], hi[V], vec[V];
    int32_t ids[V];
    uint64_t rng = 99;
    for (int trial = 0; trial < 300; trial++) {
        for (int j = 0; j < V; j++) {
            s[j] = tm_gauss(&rng) * (trial % 3 == 0 ? 0.1f : 2.0f);
            e[j] = (trial % 5 == 0) ? 0.0f : 0.3f * tm_unif(&rng);
            int end = (int)(tm_next(&rng) % 3); /* the low end, the high end, or inside */
            x[j] = end == 0 ? s[j] - e[j] : end == 1 ? s[j] + e[j] : s[j] + (tm_unif(&rng) - 0.5f) * e[j];
            if (x[j] < s[j] - e[j]) x[j] = s[j] - e[j];
            if (x[j] > s[j] + e[j]) x[j] = s[j] + e[j];
        }
        /* exact ties at the top */
        x[10] = x[20] = x[30] = 50.0f;
        s[10] = s[20] = s[30] = 50.0f;
        if (trial % 2) { s[20] = 50.1f; e[20] = 0.1f; }
        bitnet_sampler_params sp;
        bitnet_sampler_default_params(&sp, sizeof sp);
        switch (trial % 4) {
        case 0: sp.temperature = 0.0f; break;
        case 1: sp.top_k = 3; break;
        case 2: sp.top_k = 0, sp.top_p = 1.0f, sp.min_p = 0.01f; break;
        default: sp.repeat_penalty = 1.5f, sp.presence_penalty = 0.5f; break;
        }
        bitnet_token hist[3] = {10, 20, 5};
        size_t n = 0;
        int exact = 0;
        assert_int_equal(bn_sampler_screen(s, e, V, hist, 3, &sp, lo, hi, ids, &n, &exact), BITNET_OK);
        assert_true(exact);
        for (int j = 0; j < V; j++) vec[j] = -INFINITY;
        for (size_t i = 0; i < n; i++) vec[ids[i]] = x[ids[i]];
        uint64_t r1[4], r2[4];
        bn_rng_seed(r1, (uint64_t)trial);
        memcpy(r2, r1, sizeof r1);
        bitnet_token a = -1, b = -1;
        assert_int_equal(bn_sample(x, V, hist, 3, &sp, r1, &a), BITNET_OK);
        assert_int_equal(bn_sample(vec, V, hist, 3, &sp, r2, &b), BITNET_OK);
        assert_int_equal(a, b);
        assert_memory_equal(r1, r2, sizeof r1);
    }
    /* pure temperature and top_p without top_k need every logit */
    bitnet_sampler_params sp;
    bitnet_sampler_default_params(&sp, sizeof sp);
    sp.top_k = 0;
    size_t n = 0;
    int exact = 1;
    assert_int_equal(bn_sampler_screen(s, e, V, NULL, 0, &sp, lo, hi, ids, &n, &exact), BITNET_OK);
    assert_false(exact);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_logic),
        cmocka_unit_test(test_bound_and_sampling),
        cmocka_unit_test(test_generate_same),
        cmocka_unit_test(test_int8_mode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
