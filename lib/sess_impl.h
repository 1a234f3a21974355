/*
 * sess_impl.h -- the session object itself, shared by the files that evaluate into it
 * (lib/sess_core.c: create, eval, logits, state; lib/sess_batch.c: batches of many
 * sessions).  Everything else uses sessions through the public API and lib/sess.h.
 */
#ifndef BN_SESS_IMPL_H
#define BN_SESS_IMPL_H

#include "fwd.h"
#include "sess.h"

struct bitnet_session {
    const bitnet_model   *m;
    bitnet_session_params p;
    uint32_t              n_ctx;
    uint32_t              n_threads;   /* threads of `work`'s pool                       */
    uint32_t              n_past;
    bitnet_token         *tokens;      /* n_ctx                                         */
    bn_kv                 kv;          /* the KV cache                                  */
    bn_work               work;        /* bitnet_session_eval's buffers and threads;
                                          made on the first eval (work.m == NULL before),
                                          so sessions used only in batches never pay them */
    float                *logits;      /* n_logits rows of n_vocab                       */
    size_t                logits_cap;  /* rows allocated                                 */
    int64_t               n_logits;    /* rows valid (0: none)                           */
    float                *embd;        /* n_embd_rows rows of n_embd                     */
    size_t                embd_cap;
    int64_t               n_embd_rows;
    int                   logits_kept_all; /* the last eval kept every token's logits   */
    uint64_t              rng[4];
    bitnet_batch         *batch;       /* the batch holding tokens for it, or NULL      */
    bn_prof               prof;        /* bitnet_session_set_profiling                  */
    int                   prof_on;
    bn_screen_buf         scr;         /* screened logits of the last token (model in
                                          BITNET_SCREEN_EXACT mode; buffers made on first use) */
    int                   logits_screened; /* s->logits not computed yet: scr holds them   */
    float                *scr_l, *scr_lo, *scr_hi; /* n_vocab: sampling from screened logits */
    int32_t              *scr_ids;
    uint64_t              scr_n_screened, scr_n_rescored, scr_n_full; /* bitnet_session_screen_stats */
    char                  errmsg[512];
    bitnet_spec_params    spec;        /* bitnet_session_set_speculation (lib/gen_spec.c) */
    size_t                spec_drafted, spec_accepted, spec_steps; /* its totals          */
};

/* Compute the last token's exact logits if they are still screened (lazily: sampling
 * may never need them).  Fails only with BITNET_E_NOMEM. */
bitnet_status bn_session_exact_logits(bitnet_session *s);

/* Check that n tokens can be evaluated into s (ids, context room) and make room for
 * their outputs (logits of every token with BITNET_BATCH_LOGITS_ALL in flags or
 * params.logits_all, else of the last, none with BITNET_BATCH_NO_LOGITS; embeddings
 * alike with params.embeddings).  `who` names the caller in the
 * message.  Nothing changes on failure but the buffers' capacity. */
bitnet_status bn_session_eval_prepare(bitnet_session *s, const bitnet_token *tokens, size_t n, uint32_t flags,
                                      const char *who);

/* The forward-pass segment for tokens [done, done + nb) of an eval of n tokens. */
void bn_session_segment(bitnet_session *s, const bitnet_token *tokens, size_t n, size_t done, size_t nb,
                        uint32_t flags, bn_fwd_seg *g);

/* Record a completed eval of n tokens: they join the context, their outputs become
 * the session's logits/embeddings. */
void bn_session_eval_commit(bitnet_session *s, const bitnet_token *tokens, size_t n, uint32_t flags);

/* Forget outputs that no longer match the context (a failed or abandoned eval). */
void bn_session_drop_outputs(bitnet_session *s);

/* Make the session's own evaluation buffers and threads if it has none yet (its first
 * own eval), with its profile attached when profiling is on. */
bitnet_status bn_session_ensure_work(bitnet_session *s);

/* lib/sess_batch.c: remove s from the batch holding it (session free). */
void bn_batch_forget(bitnet_batch *b, bitnet_session *s);

#endif
