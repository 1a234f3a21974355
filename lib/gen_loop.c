/*
 * gen_loop.c -- sampling from a session, the step-wise generator (bitnet_generator_*) and
 * bitnet_session_generate, a loop over it (beam search is in gen_beam.c).  Uses the
 * session only through the public API and sess.h.
 *
 * Streaming and stop strings.  Each generated token goes through the tokenizer's
 * streaming decoder, which returns only complete UTF-8 text.  That text is appended to
 * a "pending" buffer.  Then:
 *   - if a stop string occurs in pending, the text before its first occurrence is
 *     returned and generation ends (reason STRING); the stop string is never emitted;
 *   - otherwise the longest suffix of pending that is a prefix of some stop string is
 *     held back (it might still become a stop string) and the rest is returned.
 * Text already returned can never be part of a stop string: any suffix of it that could
 * begin one was held back, so every occurrence starts inside pending.
 * When the last token is known in advance (max_tokens reached, context about to fill)
 * its step also carries the decoder's flushed bytes and everything held back.  When
 * generation ends on an end-of-generation token, held-back text (if any) comes with the
 * end step (token -1), because the EOG token itself is not returned.  After a stop by
 * the caller, held-back text is dropped.
 *
 * The generator's states:
 *   PROMPT  created, nothing done: the first next evaluates the prompt (reusing the
 *           session's common prefix) or makes the last token's logits current;
 *   SAMPLE  produce the next token;
 *   FINISH  the end is decided (reason): the next call only brings the last token
 *           returned into the context, then returns the end;
 *   DONE    ended: next returns the end again;
 *   FAILED  a call failed: next returns that status again.
 * Every call of next in PROMPT/SAMPLE/FINISH first "commits" the token returned last:
 * evaluates it unless the caller already has (see bitnet.h).  Where a token comes from
 * is one function (bn_gen_propose): the queue of tokens a speculative step decided
 * (lib/gen_spec.c), else the sampler.
 *
 * Speculation (bitnet_session_set_speculation).  The commit of a token the caller left
 * to next becomes a speculative step: the token and a draft are verified in one forward
 * step, and the tokens decided (kept drafts, already in the context, then one more that
 * is not) are queued.  The following calls return them one by one; those in the context
 * need no evaluation.  "Logical" positions count only returned tokens: limits (context,
 * max_tokens) use them, and drafts are capped so that no step decides more tokens than
 * max_tokens and the context allow.  When generation ends with decided tokens still
 * queued (EOG, a stop string, a stop by the caller), the context is cut back to the
 * returned tokens and the last one evaluated again, so the session ends exactly as
 * without speculation.
 */
#include "gen_sampler.h"
#include "gen_spec.h"
#include "sess.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void bitnet_generate_default_params(bitnet_generate_params *p, size_t struct_size) {
    bitnet_generate_params d;
    memset(&d, 0, sizeof d);
    d.max_tokens = 128;
    bn_params_default(p, struct_size, &d, sizeof d);
}

static bitnet_status bn_generate_params_get(const bitnet_generate_params *in, bitnet_generate_params *out) {
    bitnet_generate_default_params(out, sizeof *out);
    bitnet_status st = bn_params_read(out, sizeof *out, in, "generate");
    if (st != BITNET_OK) return st;
    if (out->n_stop && !out->stop)
        return bn_err(BITNET_E_INVALID_ARG, "generate params: n_stop is %zu but stop is NULL", out->n_stop);
    for (size_t i = 0; i < out->n_stop; i++)
        if (!out->stop[i])
            return bn_err(BITNET_E_INVALID_ARG, "generate params: stop string %zu is NULL", i);
    return BITNET_OK;
}

/* ---- sampling ---------------------------------------------------------------------------- */

bitnet_status bitnet_session_sample(bitnet_session *s, const bitnet_sampler_params *sp, bitnet_token *out) {
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_sample: session is NULL");
    if (!out) return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_sample: out is NULL"));
    bitnet_sampler_params p;
    bitnet_status st = bn_sampler_params_get(sp, &p);
    if (st != BITNET_OK) return bn_session_fail(s, st);
    const float *logits = NULL;
    if (!bn_session_has_logits(s)) st = bitnet_session_logits(s, -1, &logits); /* (its error message) */
    else st = bn_session_sample_logits(s, &p, &logits);
    if (st != BITNET_OK) return bn_session_fail(s, st);
    const bitnet_model *m = bn_session_model(s);
    int64_t n_vocab = bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    if (n_vocab <= 0 || n_vocab > INT32_MAX)
        return bn_session_fail(s, bn_err(BITNET_E_INTERNAL, "bitnet_session_sample: model has n_vocab %lld",
                                         (long long)n_vocab));
    size_t n_hist = 0;
    const bitnet_token *hist = bn_session_tokens(s, &n_hist);
    st = bn_sample(logits, (int32_t)n_vocab, hist, n_hist, &p, bn_session_rng(s), out);
    return st == BITNET_OK ? st : bn_session_fail(s, st);
}

/* ---- generation ------------------------------------------------------------------------------ */

/* A growable byte buffer. */
typedef struct bn_buf {
    char  *p;
    size_t n, cap;
} bn_buf;

static bitnet_status bn_buf_reserve(bn_buf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return BITNET_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = bn_realloc(b->p, cap);
    if (!p) return bn_err(BITNET_E_NOMEM, "generate: out of memory for %zu bytes of text", cap);
    b->p = p;
    b->cap = cap;
    return BITNET_OK;
}

/* Append the decoder's output for token t (or its flush when t < 0), growing as
 * needed (the decoder reports the size it needs). */
static bitnet_status bn_decode_append(bitnet_decoder *d, bitnet_token t, bn_buf *b) {
    for (int attempt = 0; attempt < 8; attempt++) {
        size_t room = b->cap > b->n + 1 ? b->cap - b->n - 1 : 0, need = 0;
        bitnet_status st = t >= 0 ? bitnet_decoder_push(d, t, b->p ? b->p + b->n : NULL, room, &need)
                                  : bitnet_decoder_flush(d, b->p ? b->p + b->n : NULL, room, &need);
        if (st == BITNET_OK) {
            b->n += need;
            return BITNET_OK;
        }
        if (st != BITNET_E_BUFFER_TOO_SMALL) return st;
        st = bn_buf_reserve(b, need);
        if (st != BITNET_OK) return st;
    }
    return bn_err(BITNET_E_INTERNAL, "generate: the decoder keeps asking for a larger buffer");
}

/* Find the first occurrence of any stop string in s[0..n); returns its start or n. */
static size_t bn_find_stop(const char *s, size_t n, const char *const *stop, size_t n_stop) {
    size_t best = n;
    for (size_t k = 0; k < n_stop; k++) {
        size_t L = strlen(stop[k]);
        if (L == 0 || L > n) continue;
        for (size_t i = 0; i + L <= n && i < best; i++)
            if (memcmp(s + i, stop[k], L) == 0) { best = i; break; }
    }
    return best;
}

/* Length of the longest suffix of s[0..n) that is a proper prefix of a stop string. */
static size_t bn_stop_prefix_len(const char *s, size_t n, const char *const *stop, size_t n_stop) {
    size_t best = 0;
    for (size_t k = 0; k < n_stop; k++) {
        size_t L = strlen(stop[k]);
        size_t max = L > 0 ? L - 1 : 0;
        if (max > n) max = n;
        for (size_t len = max; len > best; len--)
            if (memcmp(s + n - len, stop[k], len) == 0) { best = len; break; }
    }
    return best;
}

/* ---- the generator -------------------------------------------------------------------------- */

typedef enum bn_gen_state {
    BN_GEN_PROMPT,
    BN_GEN_SAMPLE,
    BN_GEN_FINISH,
    BN_GEN_DONE,
    BN_GEN_FAILED
} bn_gen_state;

struct bitnet_generator {
    bitnet_session        *s;
    const bitnet_model    *m;
    bitnet_sampler_params  sp;
    int32_t                max_tokens;
    int                    ignore_eog;
    char                 **stop;        /* copies of the stop strings (one allocation)   */
    size_t                 n_stop;
    bitnet_token          *prompt;      /* copy, freed once evaluated                    */
    size_t                 n_prompt;
    bitnet_decoder        *dec;
    bn_buf                 pend;        /* decoded text not returned yet (held back)     */
    bn_buf                 text;        /* the text of the step returned last            */
    bn_gen_state           state;
    bitnet_stop_reason     reason;      /* FINISH / DONE: why generation ends            */
    int                    has_pending; /* a token was returned and may not be evaluated */
    bitnet_token           pending;
    uint32_t               pending_pos; /* the context position it belongs at           */
    bitnet_status          fail_st;     /* FAILED: the status and message to repeat      */
    char                   fail_msg[512];
    size_t                 n_generated, n_prompt_cached, n_evaluated;
    bn_spec               *spec;        /* speculation state, NULL when off              */
    int                    pending_in_ctx; /* the pending token came in context (spec)   */
    uint32_t               expect_n;    /* then: the context length it was returned at   */
};

static bitnet_status bn_gen_fail(bitnet_generator *g, bitnet_status st) {
    g->state = BN_GEN_FAILED;
    g->fail_st = st;
    snprintf(g->fail_msg, sizeof g->fail_msg, "%s", bn_errmsg());
    return bn_session_fail(g->s, st);
}

bitnet_status bitnet_generator_create(bitnet_session *s, const bitnet_sampler_params *sp,
                                      const bitnet_generate_params *gp, const bitnet_token *prompt,
                                      size_t n_prompt, bitnet_generator **out) {
    if (!out) return s ? bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_create: out is NULL"))
                       : bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_create: out is NULL");
    *out = NULL;
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_create: session is NULL");
    if (n_prompt && !prompt)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_create: prompt is NULL but "
                                         "n_prompt is %zu", n_prompt));
    bitnet_sampler_params p;
    bitnet_generate_params gen;
    bitnet_status st = bn_sampler_params_get(sp, &p);
    if (st == BITNET_OK) st = bn_generate_params_get(gp, &gen);
    if (st != BITNET_OK) return bn_session_fail(s, st);
    const bitnet_model *m = bn_session_model(s);
    if (n_prompt) {
        uint32_t n_ctx = bitnet_session_n_ctx(s);
        if (n_prompt > n_ctx)
            return bn_session_fail(s, bn_err(BITNET_E_CONTEXT_FULL, "bitnet_generator_create: a prompt of %zu "
                                             "tokens does not fit in n_ctx %u", n_prompt, n_ctx));
        int64_t n_vocab = bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
        for (size_t i = 0; i < n_prompt; i++)
            if (prompt[i] < 0 || prompt[i] >= n_vocab)
                return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_create: prompt token %zu "
                                                 "has id %d, outside the vocabulary [0, %lld)", i, (int)prompt[i],
                                                 (long long)n_vocab));
    } else if (bitnet_session_n_past(s) == 0) {
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_create: no prompt and the "
                                         "session is empty: nothing to continue from"));
    }

    bitnet_generator *g = bn_calloc(1, sizeof *g);
    if (!g) return bn_session_fail(s, bn_err(BITNET_E_NOMEM, "out of memory for a generator"));
    g->s = s;
    g->m = m;
    g->sp = p;
    g->max_tokens = gen.max_tokens;
    g->ignore_eog = gen.ignore_eog != 0;
    g->state = BN_GEN_PROMPT;
    if (gen.n_stop) { /* one block: the pointer array, then the strings */
        size_t bytes = gen.n_stop * sizeof(char *);
        for (size_t i = 0; i < gen.n_stop; i++) {
            size_t L = strlen(gen.stop[i]) + 1;
            if (bytes + L < bytes) { bytes = SIZE_MAX; break; }
            bytes += L;
        }
        g->stop = bytes == SIZE_MAX ? NULL : bn_malloc(bytes);
        if (!g->stop) {
            st = bn_err(BITNET_E_NOMEM, "out of memory for %zu stop strings", gen.n_stop);
            goto fail;
        }
        char *q = (char *)(g->stop + gen.n_stop);
        for (size_t i = 0; i < gen.n_stop; i++) {
            size_t L = strlen(gen.stop[i]) + 1;
            memcpy(q, gen.stop[i], L);
            g->stop[i] = q;
            q += L;
        }
        g->n_stop = gen.n_stop;
    }
    if (n_prompt) {
        g->prompt = bn_mallocn(n_prompt, sizeof *prompt);
        if (!g->prompt) {
            st = bn_err(BITNET_E_NOMEM, "out of memory for a prompt of %zu tokens", n_prompt);
            goto fail;
        }
        memcpy(g->prompt, prompt, n_prompt * sizeof *prompt);
        g->n_prompt = n_prompt;
    }
    /* The text continues the context: keep a SentencePiece word's leading space even on
     * the first generated token. */
    st = bitnet_decoder_create(m, BITNET_DETOK_KEEP_LEADING_SPACE, &g->dec);
    if (st == BITNET_OK) st = bn_buf_reserve(&g->pend, 64);
    if (st == BITNET_OK) st = bn_buf_reserve(&g->text, 64);
    if (st != BITNET_OK) goto fail;
    g->text.p[0] = '\0';
    if ((st = bn_spec_create(s, &g->spec)) != BITNET_OK) goto fail;
    *out = g;
    return BITNET_OK;
fail:
    bitnet_generator_free(g);
    return bn_session_fail(s, st);
}

static bitnet_status bn_gen_trim(bitnet_generator *g, int refresh);

void bitnet_generator_free(bitnet_generator *g) {
    if (!g) return;
    if (g->spec && g->state != BN_GEN_FAILED) (void)bn_gen_trim(g, 0);
    bn_spec_free(g->spec);
    bitnet_decoder_free(g->dec);
    bn_free(g->pend.p);
    bn_free(g->text.p);
    bn_free(g->prompt);
    bn_free(g->stop);
    bn_free(g);
}

void bitnet_generator_stop(bitnet_generator *g) {
    if (!g) return;
    if (g->state == BN_GEN_PROMPT || g->state == BN_GEN_SAMPLE) {
        g->state = BN_GEN_FINISH;
        g->reason = BITNET_STOP_CALLBACK;
    }
}

void bitnet_generator_get_stats(const bitnet_generator *g, bitnet_generator_stats *stats, size_t struct_size) {
    bitnet_generator_stats d;
    memset(&d, 0, sizeof d);
    if (g) {
        d.n_prompt = g->n_prompt;
        d.n_prompt_cached = g->n_prompt_cached;
        d.n_generated = g->n_generated;
        d.n_evaluated = g->n_evaluated;
        bn_spec_counts(g->spec, &d.n_drafted, &d.n_accepted, &d.n_spec_steps);
    }
    bn_params_default(stats, struct_size, &d, sizeof d);
}

static bitnet_status bn_gen_eval1(bitnet_generator *g, bitnet_token t) {
    bitnet_status st = bitnet_session_eval(g->s, &t, 1);
    if (st == BITNET_OK) g->n_evaluated++;
    return st;
}

/* Speculation: drop decided tokens that are in the context but were not returned; with
 * refresh, evaluate the last remaining token again so its logits are current. */
static bitnet_status bn_gen_trim(bitnet_generator *g, int refresh) {
    size_t extra = bn_spec_queued_in_ctx(g->spec);
    bn_spec_clear(g->spec);
    if (!extra) return BITNET_OK;
    uint32_t n = bitnet_session_n_past(g->s) - (uint32_t)extra;
    if (!refresh || n == 0) return bitnet_session_truncate(g->s, n);
    size_t nt = 0;
    bitnet_token last = bn_session_tokens(g->s, &nt)[n - 1];
    bitnet_status st = bitnet_session_truncate(g->s, n - 1);
    return st == BITNET_OK ? bn_gen_eval1(g, last) : st;
}

/* PROMPT: bring the context to where generation starts, with current logits. */
static bitnet_status bn_gen_begin(bitnet_generator *g) {
    bitnet_status st;
    if (g->n_prompt) {
        size_t n_eval = 0;
        st = bitnet_session_eval_prompt(g->s, g->prompt, g->n_prompt, &n_eval);
        if (st != BITNET_OK) return st;
        g->n_evaluated += n_eval;
        g->n_prompt_cached = g->n_prompt - n_eval;
        bn_free(g->prompt);
        g->prompt = NULL;
    } else if (!bn_session_has_logits(g->s)) {
        /* continue the context; its last token's logits are gone (a truncate, a state
         * blob without logits): evaluate that token again */
        size_t n = 0;
        const bitnet_token *toks = bn_session_tokens(g->s, &n);
        if (n == 0)
            return bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_next: no prompt and the session is empty: "
                          "nothing to continue from");
        bitnet_token last = toks[n - 1];
        st = bitnet_session_truncate(g->s, (uint32_t)(n - 1));
        if (st == BITNET_OK) st = bn_gen_eval1(g, last);
        if (st != BITNET_OK) return st;
    }
    g->state = BN_GEN_SAMPLE;
    return BITNET_OK;
}

/* Speculation: the most tokens a draft for the pending token may have -- none once the
 * end is decided, none past max_tokens. */
static size_t bn_gen_draft_limit(const bitnet_generator *g) {
    if (g->state == BN_GEN_FINISH) return 0;
    if (g->max_tokens >= 0)
        return (size_t)g->max_tokens > g->n_generated ? (size_t)g->max_tokens - g->n_generated - 1 : 0;
    return SIZE_MAX;
}

/* Bring the token returned last into the context, unless the caller has done so. */
static bitnet_status bn_gen_commit(bitnet_generator *g) {
    if (!g->has_pending) return BITNET_OK;
    size_t n = 0;
    const bitnet_token *toks = bn_session_tokens(g->s, &n);
    bitnet_status st = BITNET_OK;
    int verified = 0;
    if (g->pending_in_ctx) { /* speculation: decided and evaluated in an earlier step */
        if (n != g->expect_n)
            st = bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_next: the session changed between calls: with "
                        "speculation the context must stay at %u tokens between calls (returned tokens may "
                        "already be in it: leave their evaluation to next), but it holds %zu", g->expect_n, n);
    } else if (g->spec && (st = bn_spec_planned_done(g->spec, g->s, &g->sp, &verified)) != BITNET_OK) {
        /* the caller evaluated other tokens than bitnet_generator_draft asked for */
    } else if (verified) {
        /* the caller evaluated the token and its draft: verified, decided tokens queued */
    } else if (n == g->pending_pos && g->spec) {
        /* verify a draft together with it */
        size_t n_eval = 0;
        st = bn_spec_step(g->spec, g->s, &g->sp, g->pending, bn_gen_draft_limit(g), &n_eval);
        g->n_evaluated += n_eval;
    } else if (n == g->pending_pos) {
        st = bn_gen_eval1(g, g->pending);
    } else if (!(n == (size_t)g->pending_pos + 1 && toks[g->pending_pos] == g->pending &&
                 bn_session_has_logits(g->s))) {
        st = bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_next: the session changed between calls: token %d "
                    "was expected at position %u (evaluated by the caller, with its logits, or not at all), "
                    "but the context holds %zu tokens", (int)g->pending, g->pending_pos, n);
    }
    if (st == BITNET_OK) g->has_pending = 0;
    return st;
}

bitnet_status bitnet_generator_draft(bitnet_generator *g, bitnet_token *tokens, size_t cap, size_t *n_tokens) {
    if (n_tokens) *n_tokens = 0;
    if (!g) return bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_draft: generator is NULL");
    if (!n_tokens || (cap && !tokens))
        return bn_session_fail(g->s, bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_draft: %s is NULL",
                                            n_tokens ? "tokens" : "n_tokens"));
    if (g->state == BN_GEN_FAILED) return bn_session_fail(g->s, bn_err(g->fail_st, "%s", g->fail_msg));
    if (!g->has_pending || g->pending_in_ctx) return BITNET_OK; /* nothing to evaluate */
    size_t n = 0;
    (void)bn_session_tokens(g->s, &n);
    if (n != g->pending_pos) {
        if (n == (size_t)g->pending_pos + 1) return BITNET_OK; /* the caller has evaluated it already */
        return bn_session_fail(g->s, bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_draft: the session changed "
                                            "since the last next: token %d belongs at position %u, but the context "
                                            "holds %zu tokens", (int)g->pending, g->pending_pos, n));
    }
    if (cap == 0)
        return bn_session_fail(g->s, bn_err(BITNET_E_BUFFER_TOO_SMALL, "bitnet_generator_draft: cap is 0: room "
                                            "for at least the token itself is needed"));
    tokens[0] = g->pending;
    *n_tokens = 1;
    if (!g->spec) return BITNET_OK;
    size_t k_limit = bn_gen_draft_limit(g), k = 0;
    if (k_limit > cap - 1) k_limit = cap - 1;
    bitnet_status st = bn_spec_plan(g->spec, g->s, &g->sp, g->pending, k_limit, tokens + 1, &k);
    if (st != BITNET_OK) return bn_gen_fail(g, st);
    *n_tokens = 1 + k;
    return BITNET_OK;
}

/* Where the next token comes from: the queue of tokens a speculative step decided (*in_ctx:
 * already in the context), else the sampler. */
static bitnet_status bn_gen_propose(bitnet_generator *g, bitnet_token *t, int *in_ctx) {
    *in_ctx = 0;
    if (bn_spec_queued(g->spec)) {
        *t = bn_spec_pop(g->spec, in_ctx);
        return BITNET_OK;
    }
    return bitnet_session_sample(g->s, &g->sp, t);
}

/* Fill step with the end of generation, carrying text[0..len) of pend (0: none). */
static bitnet_status bn_gen_end(bitnet_generator *g, bitnet_stop_reason why, size_t len,
                                bitnet_generator_step *step) {
    if (g->spec) {
        bitnet_status st = bn_gen_trim(g, 1);
        if (st != BITNET_OK) return st;
    }
    g->state = BN_GEN_DONE;
    g->reason = why;
    g->text.n = 0;
    if (len) {
        bitnet_status st = bn_buf_reserve(&g->text, len);
        if (st != BITNET_OK) return st;
        memcpy(g->text.p, g->pend.p, len);
        g->text.n = len;
    }
    g->text.p[g->text.n] = '\0';
    g->pend.n = 0;
    step->token = -1;
    step->text = g->text.p;
    step->len = g->text.n;
    step->reason = why;
    return BITNET_OK;
}

/* SAMPLE: produce one token, or the end. */
static bitnet_status bn_gen_produce(bitnet_generator *g, bitnet_generator_step *step) {
    bitnet_session *s = g->s;
    if (g->max_tokens >= 0 && g->n_generated >= (size_t)g->max_tokens)
        return bn_gen_end(g, BITNET_STOP_MAX_TOKENS, 0, step);
    /* the logical position: decided tokens in the context are not returned yet */
    uint32_t n_past = bitnet_session_n_past(s) - (uint32_t)bn_spec_queued_in_ctx(g->spec),
             n_ctx = bitnet_session_n_ctx(s);
    if (n_past >= n_ctx) return bn_gen_end(g, BITNET_STOP_CONTEXT, 0, step);
    bitnet_token t;
    int in_ctx = 0;
    bitnet_status st = bn_gen_propose(g, &t, &in_ctx);
    if (st != BITNET_OK) return st;
    if (!g->ignore_eog && bitnet_token_is_eog(g->m, t)) {
        /* Keep the EOG token in the context so a chat can continue after it, and hand
         * out what was held back (a possible stop-string start, bytes of an incomplete
         * character). */
        st = in_ctx ? BITNET_OK : bn_gen_eval1(g, t);
        if (st == BITNET_OK) st = bn_decode_append(g->dec, -1, &g->pend);
        if (st != BITNET_OK) return st;
        return bn_gen_end(g, BITNET_STOP_EOG, g->pend.n, step);
    }
    g->n_generated++;
    /* Is this the last token?  Then flush everything with it. */
    int last = (g->max_tokens >= 0 && g->n_generated >= (size_t)g->max_tokens) || n_past + 1 >= n_ctx;
    st = bn_decode_append(g->dec, t, &g->pend);
    if (st == BITNET_OK && last) st = bn_decode_append(g->dec, -1, &g->pend);
    g->text.n = 0;
    if (st == BITNET_OK) st = bn_buf_reserve(&g->text, g->pend.n);
    if (st != BITNET_OK) return st;
    bn_buf *pend = &g->pend;
    size_t emit, stop_at = bn_find_stop(pend->p, pend->n, (const char *const *)g->stop, g->n_stop);
    if (stop_at < pend->n) {
        emit = stop_at;
        g->state = BN_GEN_FINISH;
        g->reason = BITNET_STOP_STRING;
    } else {
        emit = last ? pend->n : pend->n - bn_stop_prefix_len(pend->p, pend->n, (const char *const *)g->stop,
                                                             g->n_stop);
    }
    memcpy(g->text.p, pend->p, emit);
    g->text.p[emit] = '\0';
    g->text.n = emit;
    if (g->state == BN_GEN_FINISH) {
        pend->n = 0; /* the stop string and what follows are never returned */
    } else {
        memmove(pend->p, pend->p + emit, pend->n - emit);
        pend->n -= emit;
    }
    g->has_pending = 1;
    g->pending = t;
    g->pending_pos = n_past;
    g->pending_in_ctx = in_ctx;
    g->expect_n = bitnet_session_n_past(s);
    step->token = t;
    step->text = g->text.p;
    step->len = emit;
    step->reason = BITNET_STOP_NONE;
    return BITNET_OK;
}

bitnet_status bitnet_generator_next(bitnet_generator *g, bitnet_generator_step *step) {
    if (!g) return bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_next: generator is NULL");
    if (!step) return bn_session_fail(g->s, bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_next: step is NULL"));
    step->token = -1;
    step->text = "";
    step->len = 0;
    step->reason = BITNET_STOP_NONE;
    if (g->state == BN_GEN_FAILED)
        return bn_session_fail(g->s, bn_err(g->fail_st, "%s", g->fail_msg));
    if (g->state == BN_GEN_DONE) {
        step->reason = g->reason;
        return BITNET_OK;
    }
    bitnet_status st = BITNET_OK;
    if (g->state == BN_GEN_PROMPT) st = bn_gen_begin(g);
    if (st == BITNET_OK) st = bn_gen_commit(g);
    if (st == BITNET_OK) {
        if (g->state == BN_GEN_FINISH) {
            g->pend.n = 0; /* held-back text is dropped */
            st = bn_gen_end(g, g->reason, 0, step);
        } else {
            st = bn_gen_produce(g, step);
        }
    }
    if (st != BITNET_OK) {
        step->token = -1;
        step->text = "";
        step->len = 0;
        step->reason = BITNET_STOP_NONE;
        return bn_gen_fail(g, st);
    }
    return BITNET_OK;
}

/* ---- bitnet_session_generate: a loop over the generator ------------------------------------------- */

bitnet_status bitnet_session_generate(bitnet_session *s, const bitnet_token *prompt, size_t n_prompt,
                                      const bitnet_sampler_params *sp, const bitnet_generate_params *gp,
                                      bitnet_token *out, size_t cap, size_t *n_out, bitnet_stop_reason *reason) {
    if (n_out) *n_out = 0;
    if (reason) *reason = BITNET_STOP_NONE;
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_generate: session is NULL");
    if (n_prompt && !prompt)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_generate: prompt is NULL "
                                         "but n_prompt is %zu", n_prompt));
    bitnet_sampler_params p;
    bitnet_generate_params g;
    bitnet_status st = bn_sampler_params_get(sp, &p);
    if (st == BITNET_OK) st = bn_generate_params_get(gp, &g);
    if (st != BITNET_OK) return bn_session_fail(s, st);

    /* The prompt continues the context (the generator's prompt would replace it). */
    if (n_prompt) {
        st = bitnet_session_eval(s, prompt, n_prompt);
        if (st != BITNET_OK) return bn_session_fail(s, st);
    } else if (bitnet_session_n_past(s) == 0) {
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_generate: no prompt and the "
                                         "session is empty: nothing to continue from"));
    }
    bitnet_generator *gen = NULL;
    st = bitnet_generator_create(s, &p, &g, NULL, 0, &gen);
    if (st != BITNET_OK) return bn_session_fail(s, st);
    bitnet_stop_reason why = BITNET_STOP_NONE;
    size_t n_gen = 0;
    bitnet_generator_step step;
    for (;;) {
        st = bitnet_generator_next(gen, &step);
        if (st != BITNET_OK) break;
        if (step.token >= 0) {
            if (out && n_gen < cap) out[n_gen] = step.token;
            n_gen++;
        }
        /* every token, and the end's held-back text if any (token -1) */
        if (g.callback && (step.token >= 0 || step.len > 0)) {
            int stop = g.callback(g.user, step.token, step.text, step.len);
            if (stop && step.reason == BITNET_STOP_NONE) bitnet_generator_stop(gen);
        }
        if (step.reason != BITNET_STOP_NONE) {
            why = step.reason;
            break;
        }
    }
    bitnet_generator_free(gen);
    if (n_out) *n_out = n_gen;
    if (st != BITNET_OK) return bn_session_fail(s, st);
    if (reason) *reason = why;
    return BITNET_OK;
}
