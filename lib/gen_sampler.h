/*
 * gen_sampler.h -- the RNG and the token sampler (lib/gen_sampler.c), independent of
 * sessions so they can be tested on plain logit arrays.  Sessions hold an RNG state
 * (lib/sess_core.c seeds it); generation draws from it through the sampler.
 */
#ifndef BN_SAMPLER_H
#define BN_SAMPLER_H

#include "internal.h"

/* One candidate token: its (penalised, filtered) logit and, after a softmax, its
 * probability among the surviving candidates. */
typedef struct bn_cand {
    float   logit;
    float   p;
    int32_t id;
} bn_cand;

/* RNG: xoshiro256** seeded through splitmix64. */
void     bn_rng_seed(uint64_t state[4], uint64_t seed);
uint64_t bn_rng_next(uint64_t state[4]);
/* Uniform float in [0, 1). */
double   bn_rng_uniform(uint64_t state[4]);

/* Copy the caller's params (possibly from an older, shorter header) over the defaults.
 * NULL gives the defaults.  BITNET_E_INVALID_ARG if struct_size is too small to hold
 * even the first field, or a value is NaN. */
bitnet_status bn_sampler_params_get(const bitnet_sampler_params *in, bitnet_sampler_params *out);

/* Run the filter chain of llama.cpp's default sampler on logits[0..n_vocab):
 *   penalties (over the last repeat_last_n tokens of hist) -> top_k -> top_p -> min_p
 *   -> temperature -> softmax.
 * cand must hold n_vocab entries.  On return cand[0..*n_cand) are the survivors in
 * decreasing probability (ties: lower id first) with p summing to 1.  With temperature
 * <= 0 the single survivor is the argmax of the penalised logits (ties: lowest id). */
bitnet_status bn_sampler_candidates(const float *logits, int32_t n_vocab, const bitnet_token *hist,
                                    size_t n_hist, const bitnet_sampler_params *sp, bn_cand *cand,
                                    size_t *n_cand);

/* Draw from candidates (probabilities summing to ~1) with one uniform number. */
bitnet_token bn_sampler_draw(const bn_cand *cand, size_t n_cand, uint64_t rng[4]);

/* bn_sampler_candidates + bn_sampler_draw; allocates its own scratch. */
bitnet_status bn_sample(const float *logits, int32_t n_vocab, const bitnet_token *hist, size_t n_hist,
                        const bitnet_sampler_params *sp, uint64_t rng[4], bitnet_token *out);

/* Screened logits s[j] with error bounds e[j] (|s[j] - exact[j]| <= e[j]): when the
 * chain's result depends only on the tokens that can reach its cut (greedy; top_k > 0
 * below n_vocab; min_p with top_p >= 1 and no top_k), *exact = 1 and ids[0..*n_ids)
 * (ascending) are the tokens whose penalised logit can reach it: the chain run on a
 * vector holding their exact logits and -inf elsewhere gives what it gives on the
 * exact logits.  Else *exact = 0 (every logit is needed).  lo, hi: n_vocab floats of
 * scratch; ids: n_vocab. */
bitnet_status bn_sampler_screen(const float *s, const float *e, int32_t n_vocab, const bitnet_token *hist,
                                size_t n_hist, const bitnet_sampler_params *sp, float *lo, float *hi,
                                int32_t *ids, size_t *n_ids, int *exact);

#endif /* BN_SAMPLER_H */
