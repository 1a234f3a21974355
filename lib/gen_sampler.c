/*
 * gen_sampler.c -- the RNG, the sampler parameters and the token sampler.  It depends on
 * nothing but internal.h: sessions (lib/sess_core.c) keep an RNG state and seed it with
 * bn_rng_seed, generation (lib/gen_loop.c, lib/gen_beam.c) calls the sampler.
 *
 * RNG: xoshiro256** (Blackman & Vigna), its 256-bit state filled from the 64-bit seed
 * by four steps of splitmix64 (which never yields an all-zero state).  Uniform doubles
 * take the top 53 bits: u = (x >> 11) * 2^-53, so u is in [0, 1).
 *
 * Sampler: the order and semantics of llama.cpp's default chain (docs/spec.md §9):
 *
 *   1. penalties over the last repeat_last_n tokens of the context (-1: all of them,
 *      0: none).  For every distinct token t seen c_t > 0 times in that window:
 *        logit_t = logit_t > 0 ? logit_t / repeat_penalty : logit_t * repeat_penalty
 *        logit_t -= c_t * frequency_penalty + presence_penalty
 *      (the repeat penalty applies once per distinct token, not per occurrence).
 *   2. temperature <= 0: greedy, the argmax of the penalised logits (ties: lowest id).
 *   3. top_k (> 0): keep the k largest logits (ties: lower id first).
 *   4. top_p (< 1): softmax over the survivors (temperature 1); keep the shortest
 *      prefix, in decreasing probability, whose cumulative probability reaches top_p
 *      (at least one token).
 *   5. min_p (> 0): keep tokens with p >= min_p * p_max, i.e. with
 *      exp(logit - logit_max) >= min_p (a ratio, so independent of normalisation).
 *   6. temperature: logits / T, softmax over the survivors, draw one token by
 *      inverting the cumulative distribution with one uniform number.
 *
 * Sums are done in double.  NaN logits are treated as -inf; if every candidate is
 * -inf the lowest-id survivor is chosen (there is no distribution to draw from).
 */
#include "gen_sampler.h"

#include <math.h>
#include <stdlib.h>

/* ---- RNG ----------------------------------------------------------------------------- */

static uint64_t bn_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void bn_rng_seed(uint64_t state[4], uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) state[i] = bn_splitmix64(&x);
}

static inline uint64_t bn_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t bn_rng_next(uint64_t s[4]) {
    uint64_t result = bn_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = bn_rotl(s[3], 45);
    return result;
}

double bn_rng_uniform(uint64_t state[4]) {
    return (double)(bn_rng_next(state) >> 11) * 0x1.0p-53;
}

/* ---- parameters ------------------------------------------------------------------------ */

void bitnet_sampler_default_params(bitnet_sampler_params *p, size_t struct_size) {
    bitnet_sampler_params d;
    memset(&d, 0, sizeof d);
    d.temperature = 0.8f;
    d.top_k = 40;
    d.top_p = 0.95f;
    d.min_p = 0.05f;
    d.repeat_penalty = 1.0f;
    d.repeat_last_n = 64;
    bn_params_default(p, struct_size, &d, sizeof d);
}

bitnet_status bn_sampler_params_get(const bitnet_sampler_params *in, bitnet_sampler_params *out) {
    bitnet_sampler_default_params(out, sizeof *out);
    bitnet_status st = bn_params_read(out, sizeof *out, in, "sampler");
    if (st != BITNET_OK) return st;
    if (isnan(out->temperature) || isnan(out->top_p) || isnan(out->min_p) || isnan(out->repeat_penalty) ||
        isnan(out->frequency_penalty) || isnan(out->presence_penalty))
        return bn_err(BITNET_E_INVALID_ARG, "sampler params: a parameter is NaN");
    if (out->repeat_penalty <= 0.0f)
        return bn_err(BITNET_E_INVALID_ARG, "sampler params: repeat_penalty must be > 0 (1 = off), got %g",
                      (double)out->repeat_penalty);
    if (out->repeat_last_n < -1)
        return bn_err(BITNET_E_INVALID_ARG, "sampler params: repeat_last_n must be >= -1, got %d",
                      (int)out->repeat_last_n);
    return BITNET_OK;
}

/* ---- the chain ----------------------------------------------------------------------------- */

/* a ranks before b: larger logit, then lower id. */
static inline int bn_better(const bn_cand *a, const bn_cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int bn_cand_cmp(const void *pa, const void *pb) {
    const bn_cand *a = pa, *b = pb;
    if (bn_better(a, b)) return -1;
    if (bn_better(b, a)) return 1;
    return 0;
}

static int bn_tok_cmp(const void *pa, const void *pb) {
    bitnet_token a = *(const bitnet_token *)pa, b = *(const bitnet_token *)pb;
    return (a > b) - (a < b);
}

/* Apply the penalties to the logits at base + t * stride (bytes) for the tokens t of the
 * window: cand[].logit (cand[i].id == i at this point) or a plain float array. */
static bitnet_status bn_apply_penalties_at(void *base, size_t stride, int32_t n_vocab, const bitnet_token *hist,
                                           size_t n_hist, const bitnet_sampler_params *sp) {
    if (sp->repeat_last_n == 0 || !hist || n_hist == 0) return BITNET_OK;
    if (sp->repeat_penalty == 1.0f && sp->frequency_penalty == 0.0f && sp->presence_penalty == 0.0f)
        return BITNET_OK;
    size_t n = n_hist;
    if (sp->repeat_last_n > 0 && (size_t)sp->repeat_last_n < n) n = (size_t)sp->repeat_last_n;
    const bitnet_token *win = hist + (n_hist - n);
    /* Count occurrences by sorting a copy of the window: O(n log n), no vocab-sized table. */
    bitnet_token *w = bn_mallocn(n, sizeof *w);
    if (!w) return bn_err(BITNET_E_NOMEM, "sampler: out of memory for the penalty window (%zu tokens)", n);
    memcpy(w, win, n * sizeof *w);
    qsort(w, n, sizeof *w, bn_tok_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && w[j] == w[i]) j++;
        bitnet_token t = w[i];
        if (t >= 0 && t < n_vocab) {
            float c = (float)(j - i);
            float *lp = (float *)(void *)((char *)base + (size_t)t * stride);
            float l = *lp;
            l = l > 0.0f ? l / sp->repeat_penalty : l * sp->repeat_penalty;
            l -= c * sp->frequency_penalty + sp->presence_penalty;
            *lp = l;
        }
        i = j;
    }
    bn_free(w);
    return BITNET_OK;
}

static bitnet_status bn_apply_penalties(bn_cand *cand, int32_t n_vocab, const bitnet_token *hist,
                                        size_t n_hist, const bitnet_sampler_params *sp) {
    return bn_apply_penalties_at(&cand[0].logit, sizeof *cand, n_vocab, hist, n_hist, sp);
}

/* Move the k best of cand[0..n) to cand[0..k), sorted best first.  A min-heap of the k
 * best seen so far (root = worst kept) makes this O(n log k). */
static void bn_top_k(bn_cand *cand, size_t n, size_t k) {
    if (k < n) {
        /* build a heap on cand[0..k) where the root is the WORST element */
        for (size_t start = k / 2; start-- > 0;) {
            size_t i = start;
            for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < k && bn_better(&cand[m], &cand[l])) m = l;
                if (r < k && bn_better(&cand[m], &cand[r])) m = r;
                if (m == i) break;
                bn_cand t = cand[i]; cand[i] = cand[m]; cand[m] = t;
                i = m;
            }
        }
        for (size_t j = k; j < n; j++) {
            if (!bn_better(&cand[j], &cand[0])) continue;
            cand[0] = cand[j];
            size_t i = 0;
            for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < k && bn_better(&cand[m], &cand[l])) m = l;
                if (r < k && bn_better(&cand[m], &cand[r])) m = r;
                if (m == i) break;
                bn_cand t = cand[i]; cand[i] = cand[m]; cand[m] = t;
                i = m;
            }
        }
    } else {
        k = n;
    }
    qsort(cand, k, sizeof *cand, bn_cand_cmp);
}

/* Softmax of cand[0..n).logit / temp into .p (cand sorted best first, so cand[0] holds
 * the maximum).  Returns 0 if every logit is -inf (no distribution). */
static int bn_softmax(bn_cand *cand, size_t n, float temp) {
    float mx = cand[0].logit;
    if (mx == -INFINITY) return 0;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = exp(((double)cand[i].logit - (double)mx) / (double)temp);
        cand[i].p = (float)e;
        sum += e;
    }
    for (size_t i = 0; i < n; i++) cand[i].p = (float)((double)cand[i].p / sum);
    return 1;
}

bitnet_status bn_sampler_candidates(const float *logits, int32_t n_vocab, const bitnet_token *hist,
                                    size_t n_hist, const bitnet_sampler_params *sp, bn_cand *cand,
                                    size_t *n_cand) {
    if (!logits || !cand || !n_cand || !sp || n_vocab <= 0)
        return bn_err(BITNET_E_INVALID_ARG, "sampler: no logits to sample from");
    for (int32_t i = 0; i < n_vocab; i++) {
        cand[i].logit = isnan(logits[i]) ? -INFINITY : logits[i];
        cand[i].p = 0.0f;
        cand[i].id = i;
    }
    bitnet_status st = bn_apply_penalties(cand, n_vocab, hist, n_hist, sp);
    if (st != BITNET_OK) return st;
    size_t n = (size_t)n_vocab;

    if (sp->temperature <= 0.0f) { /* greedy */
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (bn_better(&cand[i], &cand[best])) best = i;
        cand[0] = cand[best];
        cand[0].p = 1.0f;
        *n_cand = 1;
        return BITNET_OK;
    }

    size_t k = sp->top_k > 0 && (size_t)sp->top_k < n ? (size_t)sp->top_k : n;
    bn_top_k(cand, n, k);
    n = k;

    if (sp->top_p < 1.0f && bn_softmax(cand, n, 1.0f)) {
        double cum = 0.0;
        size_t keep = n;
        for (size_t i = 0; i < n; i++) {
            cum += cand[i].p;
            if (cum >= (double)sp->top_p) { keep = i + 1; break; }
        }
        n = keep;
    }

    if (sp->min_p > 0.0f && cand[0].logit != -INFINITY) {
        size_t keep = 1;
        while (keep < n && exp((double)cand[keep].logit - (double)cand[0].logit) >= (double)sp->min_p) keep++;
        n = keep;
    }

    if (!bn_softmax(cand, n, sp->temperature)) {
        /* every survivor is -inf: no distribution; take the lowest id among them */
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (cand[i].id < cand[best].id) best = i;
        cand[0] = cand[best];
        cand[0].p = 1.0f;
        n = 1;
    }
    *n_cand = n;
    return BITNET_OK;
}

bitnet_token bn_sampler_draw(const bn_cand *cand, size_t n_cand, uint64_t rng[4]) {
    if (n_cand == 1) return cand[0].id; /* greedy: the RNG is not advanced */
    double u = bn_rng_uniform(rng), cum = 0.0;
    for (size_t i = 0; i < n_cand; i++) {
        cum += cand[i].p;
        if (u < cum) return cand[i].id;
    }
    return cand[n_cand - 1].id; /* rounding left the total just below u */
}

bitnet_status bn_sample(const float *logits, int32_t n_vocab, const bitnet_token *hist, size_t n_hist,
                        const bitnet_sampler_params *sp, uint64_t rng[4], bitnet_token *out) {
    if (n_vocab <= 0) return bn_err(BITNET_E_INVALID_ARG, "sampler: n_vocab is %d", (int)n_vocab);
    bn_cand *cand = bn_mallocn((size_t)n_vocab, sizeof *cand);
    if (!cand) return bn_err(BITNET_E_NOMEM, "sampler: out of memory for %d candidates", (int)n_vocab);
    size_t n = 0;
    bitnet_status st = bn_sampler_candidates(logits, n_vocab, hist, n_hist, sp, cand, &n);
    if (st == BITNET_OK) *out = bn_sampler_draw(cand, n, rng);
    bn_free(cand);
    return st;
}

/* ---- screened logits (lib/fwd_pass.c, docs/performance.md) ------------------------------ */

/* Sift-down of a min-heap h[0..n). */
static void bn_fheap_down(float *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l] < h[m]) m = l;
        if (r < n && h[r] < h[m]) m = r;
        if (m == i) return;
        float t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

/* The k-th largest of v[0..n) (1 <= k <= n). */
static float bn_kth_largest(const float *v, size_t n, size_t k, float *heap) {
    for (size_t i = 0; i < k; i++) heap[i] = v[i];
    for (size_t i = k / 2; i-- > 0;) bn_fheap_down(heap, k, i);
    for (size_t i = k; i < n; i++)
        if (v[i] > heap[0]) {
            heap[0] = v[i];
            bn_fheap_down(heap, k, 0);
        }
    return heap[0];
}

bitnet_status bn_sampler_screen(const float *s, const float *e, int32_t n_vocab, const bitnet_token *hist,
                                size_t n_hist, const bitnet_sampler_params *sp, float *lo, float *hi,
                                int32_t *ids, size_t *n_ids, int *exact) {
    *exact = 0;
    *n_ids = 0;
    const size_t n = (size_t)n_vocab;
    const int greedy = sp->temperature <= 0.0f;
    const int topk = !greedy && sp->top_k > 0 && (size_t)sp->top_k < n;
    const int minp = !greedy && !topk && sp->top_p >= 1.0f && sp->min_p > 0.0f;
    if (!greedy && !topk && !minp) return BITNET_OK; /* the chain needs every logit */
    for (size_t j = 0; j < n; j++) {
        if (!isfinite(s[j]) || !isfinite(e[j])) return BITNET_OK;
        lo[j] = s[j] - e[j];
        hi[j] = s[j] + e[j];
    }
    /* the penalties are non-decreasing in the logit: they map [lo, hi] onto an interval
     * holding the penalised exact logit */
    bitnet_status st = bn_apply_penalties_at(lo, sizeof(float), n_vocab, hist, n_hist, sp);
    if (st == BITNET_OK) st = bn_apply_penalties_at(hi, sizeof(float), n_vocab, hist, n_hist, sp);
    if (st != BITNET_OK) return st;
    float maxlo = -INFINITY, cut;
    for (size_t j = 0; j < n; j++) maxlo = lo[j] > maxlo ? lo[j] : maxlo;
    if (greedy) {
        cut = maxlo;
    } else if (topk) {
        float *heap = bn_mallocn((size_t)sp->top_k, sizeof(float));
        if (!heap) return bn_err(BITNET_E_NOMEM, "sampler: out of memory for %d screened logits", (int)sp->top_k);
        cut = bn_kth_largest(lo, n, (size_t)sp->top_k, heap);
        bn_free(heap);
    } else {
        double d = log((double)sp->min_p);
        if (d > 0.0) d = 0.0;
        cut = (float)((double)maxlo + d - 1e-6 * (1.0 + fabs((double)maxlo)));
    }
    size_t m = 0;
    for (size_t j = 0; j < n; j++)
        if (hi[j] >= cut) ids[m++] = (int32_t)j;
    *n_ids = m;
    *exact = 1;
    return BITNET_OK;
}
