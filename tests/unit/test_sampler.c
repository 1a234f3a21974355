/*
 * test_sampler.c -- the RNG and the sampler chain (lib/gen_sampler.c).
 *
 * Expected values are derived independently here: splitmix64 outputs for seed 0 are the
 * published reference values, xoshiro256** outputs from the state {1,2,3,4} are worked
 * out by hand in the comments, and every filtered distribution is recomputed in the
 * test from the definitions (softmax in double, sets chosen by sorting).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen_sampler.h"

static bitnet_sampler_params plain(float temp) {
    bitnet_sampler_params p;
    bitnet_sampler_default_params(&p, sizeof p);
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

/* ---- RNG -------------------------------------------------------------------------- */

static void test_rng_seed_splitmix(void **state) {
    (void)state;
    uint64_t s[4];
    bn_rng_seed(s, 0);
    /* splitmix64 from x = 0: the reference outputs */
    assert_true(s[0] == 0xe220a8397b1dcdafull);
    assert_true(s[1] == 0x6e789e6aa1b965f4ull);
    assert_true(s[2] == 0x06c45d188009454full);
    assert_true(s[3] == 0xf88bb8a8724c81ecull);
}

static void test_rng_xoshiro_by_hand(void **state) {
    (void)state;
    uint64_t s[4] = {1, 2, 3, 4};
    /* out = rotl(s1*5, 7)*9 = rotl(10,7)*9 = 1280*9 */
    assert_true(bn_rng_next(s) == 11520u);
    /* new state: s2=3^1=2, s3=4^2=6, s1=2^2=0, s0=1^6=7, s2^=2<<17 -> 262146 */
    assert_true(s[0] == 7 && s[1] == 0 && s[2] == 262146u);
    assert_true(bn_rng_next(s) == 0u); /* s1 == 0 */
    /* s2 = 262146^7 = 262149, s1 = 0^262149 -> out = (262149*5 << 7)*9 */
    assert_true(bn_rng_next(s) == (uint64_t)262149u * 5u * 128u * 9u);
}

static void test_rng_determinism_uniform(void **state) {
    (void)state;
    uint64_t a[4], b[4], c[4];
    bn_rng_seed(a, 42);
    bn_rng_seed(b, 42);
    bn_rng_seed(c, 43);
    int differ = 0;
    double sum = 0.0;
    for (int i = 0; i < 100000; i++) {
        double ua = bn_rng_uniform(a), ub = bn_rng_uniform(b), uc = bn_rng_uniform(c);
        assert_true(ua == ub);
        assert_true(ua >= 0.0 && ua < 1.0);
        differ += ua != uc;
        sum += ua;
    }
    assert_true(differ > 99000);
    /* mean of 1e5 uniforms: sd = sqrt(1/12/1e5) ~ 0.0009; allow 5 sd */
    assert_true(fabs(sum / 100000.0 - 0.5) < 0.0046);
}

/* ---- params ----------------------------------------------------------------------- */

static void test_params(void **state) {
    (void)state;
    bitnet_sampler_params d, out;
    bitnet_sampler_default_params(&d, sizeof d);
    assert_true(d.struct_size == sizeof d);
    assert_true(d.temperature == 0.8f && d.top_k == 40 && d.top_p == 0.95f && d.min_p == 0.05f);
    assert_true(d.repeat_penalty == 1.0f && d.repeat_last_n == 64);
    assert_int_equal(bn_sampler_params_get(NULL, &out), BITNET_OK);
    assert_true(out.top_k == 40);
    /* an older caller that only knows the first two fields: the rest are defaults */
    bitnet_sampler_params old;
    memset(&old, 0x7f, sizeof old);
    old.struct_size = offsetof(bitnet_sampler_params, top_k) + sizeof old.top_k;
    old.temperature = 0.0f;
    old.top_k = 3;
    assert_int_equal(bn_sampler_params_get(&old, &out), BITNET_OK);
    assert_true(out.temperature == 0.0f && out.top_k == 3 && out.top_p == 0.95f && out.repeat_last_n == 64);
    old.struct_size = 2;
    assert_int_equal(bn_sampler_params_get(&old, &out), BITNET_E_INVALID_ARG);
    bitnet_sampler_params bad = d;
    bad.top_p = NAN;
    assert_int_equal(bn_sampler_params_get(&bad, &out), BITNET_E_INVALID_ARG);
    bad = d;
    bad.repeat_penalty = 0.0f;
    assert_int_equal(bn_sampler_params_get(&bad, &out), BITNET_E_INVALID_ARG);
}

/* ---- the chain --------------------------------------------------------------------- */

static void test_greedy_and_ties(void **state) {
    (void)state;
    float l[6] = {0.5f, 2.0f, -1.0f, 2.0f, NAN, 1.9f};
    bitnet_sampler_params p = plain(0.0f);
    bn_cand cand[6];
    size_t n = 0;
    assert_int_equal(bn_sampler_candidates(l, 6, NULL, 0, &p, cand, &n), BITNET_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cand[0].id, 1); /* tie between 1 and 3: lowest id */
    uint64_t rng[4];
    bn_rng_seed(rng, 1);
    bitnet_token t = -1;
    p.temperature = -1.0f;
    assert_int_equal(bn_sample(l, 6, NULL, 0, &p, rng, &t), BITNET_OK);
    assert_int_equal(t, 1);
    /* a repeat penalty on tokens 1 and 3 makes 5 the argmax (2/1.1 < 1.9) */
    bitnet_token hist[2] = {3, 1};
    p.repeat_penalty = 1.1f;
    assert_int_equal(bn_sample(l, 6, hist, 2, &p, rng, &t), BITNET_OK);
    assert_int_equal(t, 5);
}

/* Softmax of l[ids]/T in double. */
static void ref_softmax(const float *l, const int *ids, int n, double T, double *p) {
    double mx = -INFINITY, sum = 0.0;
    for (int i = 0; i < n; i++) mx = fmax(mx, (double)l[ids[i]]);
    for (int i = 0; i < n; i++) sum += (p[i] = exp(((double)l[ids[i]] - mx) / T));
    for (int i = 0; i < n; i++) p[i] /= sum;
}

/* Check cand[0..n) holds exactly ids[0..n_ids) (in that order) with probabilities
 * softmax(l/T) over them. */
static void check_set(const bn_cand *cand, size_t n, const float *l, const int *ids, int n_ids, double T) {
    assert_int_equal(n, (size_t)n_ids);
    double p[64];
    ref_softmax(l, ids, n_ids, T, p);
    for (int i = 0; i < n_ids; i++) {
        assert_int_equal(cand[i].id, ids[i]);
        assert_true(fabs((double)cand[i].p - p[i]) < 1e-6);
    }
}

static const float L8[8] = {1.0f, 3.0f, 0.0f, 2.5f, -2.0f, 2.9f, 0.5f, -0.5f};
/* ids by decreasing logit: 1 (3.0), 5 (2.9), 3 (2.5), 0 (1.0), 6 (0.5), 2 (0.0), 7, 4 */

static void test_temperature_only(void **state) {
    (void)state;
    bn_cand cand[8];
    size_t n = 0;
    int all[8] = {1, 5, 3, 0, 6, 2, 7, 4};
    bitnet_sampler_params p = plain(0.7f);
    assert_int_equal(bn_sampler_candidates(L8, 8, NULL, 0, &p, cand, &n), BITNET_OK);
    check_set(cand, n, L8, all, 8, 0.7);
    p = plain(1.5f);
    assert_int_equal(bn_sampler_candidates(L8, 8, NULL, 0, &p, cand, &n), BITNET_OK);
    check_set(cand, n, L8, all, 8, 1.5);
}

static void test_top_k(void **state) {
    (void)state;
    bn_cand cand[8];
    size_t n = 0;
    bitnet_sampler_params p = plain(1.0f);
    p.top_k = 3;
    assert_int_equal(bn_sampler_candidates(L8, 8, NULL, 0, &p, cand, &n), BITNET_OK);
    int top3[3] = {1, 5, 3};
    check_set(cand, n, L8, top3, 3, 1.0);
    p.top_k = 100; /* larger than the vocabulary: no effect */
    assert_int_equal(bn_sampler_candidates(L8, 8, NULL, 0, &p, cand, &n), BITNET_OK);
    assert_int_equal(n, 8);
    /* ties at the cut: lower ids win */
    float t[5] = {1.0f, 2.0f, 2.0f, 2.0f, 0.0f};
    p.top_k = 2;
    assert_int_equal(bn_sampler_candidates(t, 5, NULL, 0, &p, cand, &n), BITNET_OK);
    assert_int_equal(n, 2);
    assert_int_equal(cand[0].id, 1);
    assert_int_equal(cand[1].id, 2);
}

static void test_top_p(void **state) {
    (void)state;
    bn_cand cand[8];
    size_t n = 0;
    int all[8] = {1, 5, 3, 0, 6, 2, 7, 4};
    double p1[8];
    ref_softmax(L8, all, 8, 1.0, p1);
    /* choose top_p between the cumulative sums of 2 and 3 tokens: expect 3 to survive */
    double c2 = p1[0] + p1[1], c3 = c2 + p1[2];
    bitnet_sampler_params p = plain(1.0f);
    p.top_p = (float)((c2 + c3) / 2);
    assert_int_equal(bn_sampler_candidates(L8, 8, NULL, 0, &p, cand, &n), BITNET_OK);
    check_set(cand, n, L8, all, 3, 1.0);
    /* a tiny top_p keeps one token */
    p.top_p = 0.01f;
    assert_int_equal(bn_sampler_candidates(L8, 8, NULL, 0, &p, cand, &n), BITNET_OK);
    check_set(cand, n, L8, all, 1, 1.0);
    /* top_p is applied at temperature 1 even when the final temperature differs */
    p.top_p = (float)((c2 + c3) / 2);
    p.temperature = 2.0f;
    assert_int_equal(bn_sampler_candidates(L8, 8, NULL, 0, &p, cand, &n), BITNET_OK);
    check_set(cand, n, L8, all, 3, 2.0);
}

static void test_min_p(void **state) {
    (void)state;
    bn_cand cand[8];
    size_t n = 0;
    int all[8] = {1, 5, 3, 0, 6, 2, 7, 4};
    bitnet_sampler_params p = plain(1.0f);
    /* p_i / p_max = exp(l_i - 3): token 3 -> e^-0.5 = 0.607, token 0 -> e^-2 = 0.135 */
    p.min_p = 0.5f;
    assert_int_equal(bn_sampler_candidates(L8, 8, NULL, 0, &p, cand, &n), BITNET_OK);
    check_set(cand, n, L8, all, 3, 1.0);
    p.min_p = 0.1f;
    assert_int_equal(bn_sampler_candidates(L8, 8, NULL, 0, &p, cand, &n), BITNET_OK);
    check_set(cand, n, L8, all, 4, 1.0);
    /* chained after top_k: min_p cannot bring back what top_k removed */
    p.top_k = 2;
    assert_int_equal(bn_sampler_candidates(L8, 8, NULL, 0, &p, cand, &n), BITNET_OK);
    check_set(cand, n, L8, all, 2, 1.0);
}

static void test_penalties(void **state) {
    (void)state;
    float l[6] = {2.0f, -1.0f, 1.0f, 0.5f, -0.5f, 0.0f};
    /* history: token 0 twice, token 1 once, token 2 three times, one out-of-range id */
    bitnet_token hist[8] = {5, 0, 2, 1, 2, 0, 2, 77};
    bitnet_sampler_params p = plain(1.0f);
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.25f;
    p.presence_penalty = 0.125f;
    p.repeat_last_n = 7; /* the window is hist[1..8): token 5 falls out */
    bn_cand cand[6];
    size_t n = 0;
    assert_int_equal(bn_sampler_candidates(l, 6, hist, 8, &p, cand, &n), BITNET_OK);
    assert_int_equal(n, 6);
    float expect[6];
    expect[0] = 2.0f / 2.0f - (2 * 0.25f + 0.125f);  /* 0.375  */
    expect[1] = -1.0f * 2.0f - (1 * 0.25f + 0.125f); /* -2.375 */
    expect[2] = 1.0f / 2.0f - (3 * 0.25f + 0.125f);  /* -0.375 */
    expect[3] = 0.5f;
    expect[4] = -0.5f;
    expect[5] = 0.0f; /* outside the window */
    for (size_t i = 0; i < n; i++) assert_true(fabsf(cand[i].logit - expect[cand[i].id]) < 1e-6f);
    /* repeat_last_n = -1: the whole history, token 5 penalised too */
    p.repeat_last_n = -1;
    assert_int_equal(bn_sampler_candidates(l, 6, hist, 8, &p, cand, &n), BITNET_OK);
    for (size_t i = 0; i < n; i++)
        if (cand[i].id == 5) assert_true(fabsf(cand[i].logit - (0.0f - 0.375f)) < 1e-6f);
    /* repeat_last_n = 0: no penalties at all */
    p.repeat_last_n = 0;
    assert_int_equal(bn_sampler_candidates(l, 6, hist, 8, &p, cand, &n), BITNET_OK);
    for (size_t i = 0; i < n; i++) assert_true(cand[i].logit == l[cand[i].id]);
}

/* Draw many times and compare frequencies with the probabilities computed here. */
static void test_draw_distribution(void **state) {
    (void)state;
    float l[5] = {0.0f, 1.0f, 2.0f, -1.0f, 0.5f};
    bitnet_sampler_params p = plain(0.9f);
    p.top_k = 4; /* drops token 3 */
    int ids[4] = {2, 1, 4, 0};
    double pr[4];
    ref_softmax(l, ids, 4, 0.9, pr);
    uint64_t rng[4];
    bn_rng_seed(rng, 1234);
    enum { N = 200000 };
    int count[5] = {0};
    bn_cand cand[5];
    size_t n = 0;
    assert_int_equal(bn_sampler_candidates(l, 5, NULL, 0, &p, cand, &n), BITNET_OK);
    for (int i = 0; i < N; i++) count[bn_sampler_draw(cand, n, rng)]++;
    assert_int_equal(count[3], 0);
    for (int i = 0; i < 4; i++) {
        double f = (double)count[ids[i]] / N, sd = sqrt(pr[i] * (1 - pr[i]) / N);
        assert_true(fabs(f - pr[i]) < 5 * sd);
    }
}

static void test_sample_determinism(void **state) {
    (void)state;
    enum { V = 1000 };
    float *l = malloc(V * sizeof *l);
    assert_non_null(l);
    uint64_t x[4];
    bn_rng_seed(x, 7);
    for (int i = 0; i < V; i++) l[i] = (float)(bn_rng_uniform(x) * 8.0 - 4.0);
    bitnet_sampler_params p;
    bitnet_sampler_default_params(&p, sizeof p);
    p.top_k = 0; /* exercise the full sort */
    uint64_t a[4], b[4];
    bn_rng_seed(a, 99);
    bn_rng_seed(b, 99);
    int differ_from_greedy = 0;
    bitnet_token hist[3] = {1, 2, 3};
    for (int i = 0; i < 200; i++) {
        bitnet_token ta, tb;
        assert_int_equal(bn_sample(l, V, hist, 3, &p, a, &ta), BITNET_OK);
        assert_int_equal(bn_sample(l, V, hist, 3, &p, b, &tb), BITNET_OK);
        assert_int_equal(ta, tb);
        assert_true(ta >= 0 && ta < V);
        /* min_p 0.05 over logits in [-4, 4]: only logits >= max + ln 0.05 survive */
        float mx = -INFINITY;
        for (int j = 0; j < V; j++) mx = fmaxf(mx, l[j]);
        assert_true(l[ta] >= mx + logf(0.05f) - 1e-5f);
        bitnet_sampler_params g = p;
        g.temperature = 0.0f;
        bitnet_token tg;
        uint64_t gr[4] = {1, 2, 3, 4};
        assert_int_equal(bn_sample(l, V, NULL, 0, &g, gr, &tg), BITNET_OK);
        assert_true(gr[0] == 1 && gr[3] == 4); /* greedy does not use the RNG */
        differ_from_greedy += ta != tg;
    }
    assert_true(differ_from_greedy > 0);
    free(l);
}

static void test_all_minus_inf(void **state) {
    (void)state;
    float l[3] = {-INFINITY, -INFINITY, -INFINITY};
    bitnet_sampler_params p = plain(1.0f);
    uint64_t rng[4];
    bn_rng_seed(rng, 3);
    bitnet_token t = -1;
    assert_int_equal(bn_sample(l, 3, NULL, 0, &p, rng, &t), BITNET_OK);
    assert_int_equal(t, 0);
    assert_int_equal(bn_sample(NULL, 3, NULL, 0, &p, rng, &t), BITNET_E_INVALID_ARG);
    assert_int_equal(bn_sample(l, 0, NULL, 0, &p, rng, &t), BITNET_E_INVALID_ARG);
}

static void test_large_vocab_top_k_heap(void **state) {
    (void)state;
    /* the heap path must agree with a full sort */
    enum { V = 5000, K = 37 };
    float *l = malloc(V * sizeof *l);
    bn_cand *cand = malloc(V * sizeof *cand);
    int *ids = malloc(V * sizeof *ids);
    assert_true(l && cand && ids);
    uint64_t x[4];
    bn_rng_seed(x, 11);
    for (int i = 0; i < V; i++) l[i] = (float)(int)(bn_rng_uniform(x) * 200.0) / 10.0f; /* many ties */
    for (int i = 0; i < V; i++) ids[i] = i;
    /* reference order: insertion sort by (logit desc, id asc) */
    for (int i = 1; i < V; i++) {
        int v = ids[i], j = i;
        while (j > 0 && (l[ids[j - 1]] < l[v] || (l[ids[j - 1]] == l[v] && ids[j - 1] > v))) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = v;
    }
    bitnet_sampler_params p = plain(1.0f);
    p.top_k = K;
    size_t n = 0;
    assert_int_equal(bn_sampler_candidates(l, V, NULL, 0, &p, cand, &n), BITNET_OK);
    check_set(cand, n, l, ids, K, 1.0);
    free(l);
    free(cand);
    free(ids);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_seed_splitmix),
        cmocka_unit_test(test_rng_xoshiro_by_hand),
        cmocka_unit_test(test_rng_determinism_uniform),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_greedy_and_ties),
        cmocka_unit_test(test_temperature_only),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_draw_distribution),
        cmocka_unit_test(test_sample_determinism),
        cmocka_unit_test(test_all_minus_inf),
        cmocka_unit_test(test_large_vocab_top_k_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
