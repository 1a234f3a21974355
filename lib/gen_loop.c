/*
 * gen_loop.c -- sampling from a session, and generation with streaming and stop strings
 * (beam search is in gen_beam.c).  Uses the session only through the public API and sess.h.
 *
 * Streaming and stop strings.  Each generated token goes through the tokenizer's
 * streaming decoder, which returns only complete UTF-8 text.  That text is appended to
 * a "pending" buffer.  Then:
 *   - if a stop string occurs in pending, the text before its first occurrence is
 *     streamed and generation ends (reason STRING); the stop string is never emitted;
 *   - otherwise the longest suffix of pending that is a prefix of some stop string is
 *     held back (it might still become a stop string) and the rest is streamed.
 * Text already streamed can never be part of a stop string: any suffix of it that could
 * begin one was held back, so every occurrence starts inside pending.
 * When the last token is known in advance (max_tokens reached, context about to fill)
 * its callback also carries the decoder's flushed bytes and everything held back.  When
 * generation ends on an end-of-generation token, held-back text (if any) is delivered
 * by one final callback call with token -1, because the EOG token itself is not
 * streamed.  After a callback stop, held-back text is dropped.
 */
#include "gen_sampler.h"
#include "sess.h"

#include <math.h>
#include <stdlib.h>

static size_t bn_min_size(size_t a, size_t b) { return a < b ? a : b; }

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

void bitnet_generate_default_params(bitnet_generate_params *p, size_t struct_size) {
    bitnet_generate_params d;
    memset(&d, 0, sizeof d);
    d.max_tokens = 128;
    bn_params_default(p, struct_size, &d, sizeof d);
}

static bitnet_status bn_generate_params_get(const bitnet_generate_params *in, bitnet_generate_params *out) {
    bitnet_generate_default_params(out, sizeof *out);
    if (!in) return BITNET_OK;
    if (in->struct_size < offsetof(bitnet_generate_params, max_tokens) + sizeof in->max_tokens)
        return bn_err(BITNET_E_INVALID_ARG, "generate params: struct_size %zu is too small (use "
                      "bitnet_generate_default_params)", in->struct_size);
    memcpy(out, in, bn_min_size(in->struct_size, sizeof *out));
    out->struct_size = sizeof *out;
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
    st = bitnet_session_logits(s, -1, &logits);
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

    const bitnet_model *m = bn_session_model(s);
    if (n_prompt) {
        st = bitnet_session_eval(s, prompt, n_prompt);
        if (st != BITNET_OK) return bn_session_fail(s, st);
    } else if (bitnet_session_n_past(s) == 0) {
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_generate: no prompt and the "
                                         "session is empty: nothing to continue from"));
    }

    bitnet_decoder *dec = NULL;
    /* The text continues the context: keep a SentencePiece word's leading space even
     * on the first generated token. */
    st = bitnet_decoder_create(m, BITNET_DETOK_KEEP_LEADING_SPACE, &dec);
    if (st != BITNET_OK) return bn_session_fail(s, st);

    bn_buf pend = {0};
    st = bn_buf_reserve(&pend, 64);
    if (st != BITNET_OK) {
        bitnet_decoder_free(dec);
        return bn_session_fail(s, st);
    }
    bitnet_stop_reason why = BITNET_STOP_NONE;
    size_t n_gen = 0;
    uint32_t n_ctx = bitnet_session_n_ctx(s);
    for (;;) {
        if (g.max_tokens >= 0 && n_gen >= (size_t)g.max_tokens) { why = BITNET_STOP_MAX_TOKENS; break; }
        uint32_t n_past = bitnet_session_n_past(s);
        if (n_past >= n_ctx) { why = BITNET_STOP_CONTEXT; break; }
        bitnet_token t;
        st = bitnet_session_sample(s, &p, &t);
        if (st != BITNET_OK) break;
        if (!g.ignore_eog && bitnet_token_is_eog(m, t)) {
            /* Keep the EOG token in the context so a chat can continue after it. */
            st = bitnet_session_eval(s, &t, 1);
            why = BITNET_STOP_EOG;
            break;
        }
        if (out && n_gen < cap) out[n_gen] = t;
        n_gen++;
        /* Is this the last token?  Then flush everything with it. */
        int last = (g.max_tokens >= 0 && n_gen >= (size_t)g.max_tokens) || n_past + 1 >= n_ctx;
        st = bn_decode_append(dec, t, &pend);
        if (st == BITNET_OK && last) st = bn_decode_append(dec, -1, &pend);
        if (st != BITNET_OK) break;
        size_t emit, stop_at = bn_find_stop(pend.p, pend.n, g.stop, g.n_stop);
        if (stop_at < pend.n) {
            emit = stop_at;
            why = BITNET_STOP_STRING;
        } else {
            emit = last ? pend.n : pend.n - bn_stop_prefix_len(pend.p, pend.n, g.stop, g.n_stop);
        }
        int cb_stop = 0;
        if (g.callback) {
            st = bn_buf_reserve(&pend, 0);
            if (st != BITNET_OK) break;
            char saved = pend.p[emit];
            pend.p[emit] = '\0'; /* the callback gets NUL-terminated text too */
            cb_stop = g.callback(g.user, t, pend.p, emit);
            pend.p[emit] = saved;
        }
        memmove(pend.p, pend.p + emit, pend.n - emit);
        pend.n -= emit;
        /* Evaluate the token so that the context holds everything generated (a chat
         * or a later call continues from it), even when generation stops here. */
        st = bitnet_session_eval(s, &t, 1);
        if (st != BITNET_OK) break;
        if (why == BITNET_STOP_STRING) break;
        if (cb_stop) { why = BITNET_STOP_CALLBACK; break; }
    }
    if (st == BITNET_OK && why == BITNET_STOP_EOG && g.callback) {
        /* Deliver what was held back (a possible stop-string start, bytes of an
         * incomplete character) in one last call with token -1. */
        st = bn_decode_append(dec, -1, &pend);
        if (st == BITNET_OK && pend.n > 0) {
            st = bn_buf_reserve(&pend, 0);
            if (st == BITNET_OK) {
                pend.p[pend.n] = '\0';
                g.callback(g.user, -1, pend.p, pend.n);
            }
        }
    }
    bitnet_decoder_free(dec);
    bn_free(pend.p);
    if (n_out) *n_out = n_gen;
    if (st != BITNET_OK) return bn_session_fail(s, st);
    if (reason) *reason = why;
    return BITNET_OK;
}
