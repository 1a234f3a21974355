/*
 * sess.h -- what the sampling/generation code (lib/gen_loop.c, lib/gen_sampler.c)
 * needs from a session (lib/sess_core.c).
 */
#ifndef BN_SESSION_H
#define BN_SESSION_H

#include "model.h"

/* The model a session runs. */
const bitnet_model *bn_session_model(const bitnet_session *s);
/* The tokens currently in the context (n_past of them), oldest first. */
const bitnet_token *bn_session_tokens(const bitnet_session *s, size_t *n);
/* The session's RNG state (4 words), seeded by bn_rng_seed (gen_sampler.h) at
 * create/reset/set_seed. */
uint64_t *bn_session_rng(bitnet_session *s);
/* Copy this thread's last error message into the session's own (for
 * bitnet_session_last_error) and return st unchanged.  Every failing public function
 * that has a session returns through this (the rule in bitnet.h's conventions); const
 * functions too: the message is not part of the session's logical state. */
bitnet_status bn_session_fail(const bitnet_session *s, bitnet_status st);
/* Whether the logits of the context's last token are available (kept by the last eval
 * or a state load; dropped by reset and by a truncate that removes tokens). */
int bn_session_has_logits(const bitnet_session *s);

/* A new empty session on s's model with s's parameters but n_ctx positions (for
 * helpers that need scratch sessions, such as beam search). */
bitnet_status bn_session_spawn(const bitnet_session *s, uint32_t n_ctx, bitnet_session **out);
/* The number of threads s evaluates with. */
uint32_t bn_session_n_threads(const bitnet_session *s);

/* The logits sampling with sp reads for the last token: the exact logits, or, when
 * they are screened and sp is one of the settings that stay exact (bn_sampler_screen),
 * a vector with the exact logits of every token that can reach the cut and -inf
 * elsewhere (valid until the next call on s). */
bitnet_status bn_session_sample_logits(bitnet_session *s, const bitnet_sampler_params *sp, const float **logits);

#endif
