/*
 * gen_spec.h -- speculative and lookup decoding for the generator (lib/gen_spec.c):
 * drafting (n-gram lookup in the context, or a draft model's session), verification of a
 * draft in one forward step of the target model, the acceptance rule, the KV rollback
 * and the adaptive draft length.  lib/gen_loop.c drives it.
 */
#ifndef BN_GEN_SPEC_H
#define BN_GEN_SPEC_H

#include "gen_sampler.h"

#define BN_SPEC_MAX_DRAFT 64

typedef struct bn_spec bn_spec;

/* The speculation the session is set up for, or NULL (off). */
const bitnet_spec_params *bn_spec_params_of(const bitnet_session *s);

/* Per-generator state for speculation with s's params (*out NULL when off). */
bitnet_status bn_spec_create(bitnet_session *s, bn_spec **out);
void          bn_spec_free(bn_spec *sp);

/* One speculative step.  `pending` is the token sampled last, not yet in s's context (it
 * belongs at position n_past).  At most k_limit tokens are drafted (0: none).  Evaluates
 * pending and the draft in one forward step, keeps the accepted drafts in the context
 * (the rest is truncated away) and decides the token after them with the acceptance
 * rule.  Afterwards the decided tokens are in the queue: bn_spec_queued() of them, the
 * first bn_spec_queued_in_ctx() already in the context, the last not.  With no draft
 * (none found, too short, paused) this is a plain evaluation of pending and the queue
 * stays empty.  *n_eval receives the tokens evaluated by the target. */
bitnet_status bn_spec_step(bn_spec *sp, bitnet_session *s, const bitnet_sampler_params *smp, bitnet_token pending,
                           size_t k_limit, size_t *n_eval);

/* The same step with the caller evaluating (bitnet_generator_draft): decide the draft
 * for pending (at position s->n_past, at most k_limit tokens) into out[0..*k) and
 * remember the step; the caller then evaluates [pending, out[0..*k)] with the logits of
 * every token (or pending alone).  bn_spec_planned_done, when next commits, verifies a
 * draft evaluated as planned (*verified = 1; the queue as after bn_spec_step); when the
 * context holds pending alone it only records the step (*verified = 0, the caller's
 * usual checks follow); the planned tokens without every row's logits, or other tokens
 * there, are BITNET_E_INVALID_ARG. */
bitnet_status bn_spec_plan(bn_spec *sp, bitnet_session *s, const bitnet_sampler_params *smp, bitnet_token pending,
                           size_t k_limit, bitnet_token *out, size_t *k);
bitnet_status bn_spec_planned_done(bn_spec *sp, bitnet_session *s, const bitnet_sampler_params *smp, int *verified);

/* The queue of decided tokens. */
size_t       bn_spec_queued(const bn_spec *sp);
size_t       bn_spec_queued_in_ctx(const bn_spec *sp);
/* Take the next queued token; *in_ctx says whether it is already in the context. */
bitnet_token bn_spec_pop(bn_spec *sp, int *in_ctx);
/* Forget the queue (the caller trims the context). */
void         bn_spec_clear(bn_spec *sp);

/* Counters of this generator's speculation. */
void bn_spec_counts(const bn_spec *sp, size_t *drafted, size_t *accepted, size_t *steps);

#endif
