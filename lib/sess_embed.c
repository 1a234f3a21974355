/*
 * sess_embed.c -- pooled sentence embeddings (bitnet_session_embed*, bitnet_session_pool):
 * the final hidden states of an input's tokens (after the output norm, what
 * bitnet_session_embeddings returns) pooled and normalised as llama.cpp computes them
 * for llama-embedding and its server (docs/spec.md §5.5, docs/architecture.md,
 * "Embeddings"):
 *
 *   pooling (<arch>.pooling_type; mean when the file names none)
 *     mean   the average of every token's hidden state (summed in double)
 *     cls    the first token's
 *     last   the last token's
 *   normalisation (llama-embedding's --embd-normalize, 2 by default), with
 *     s = 1 (-1), max|x| / 32760 (0), sqrt(sum x^2) (2), (sum |x|^p)^(1/p) (p > 0),
 *     sums in double: out = x * (float)(1 / s), 0 when s is 0.
 *
 * An input is evaluated as a sequence of its own from position 0, in chunks of the
 * session's n_batch tokens (causal attention: the chunking changes nothing), without
 * the output layer: no logits are computed, which for an embedding model with a
 * 150k-token tied vocabulary is most of the work of a short input.
 */
#include "sess_impl.h"

#include <math.h>

static size_t bn_sess_embed_min(size_t a, size_t b) { return a < b ? a : b; }

void bitnet_embed_default_params(bitnet_embed_params *p, size_t struct_size) {
    bitnet_embed_params d;
    memset(&d, 0, sizeof d);
    d.pooling = BITNET_POOLING_MODEL;
    d.normalize = 2;
    bn_params_default(p, struct_size, &d, sizeof d);
}

bitnet_pooling bitnet_model_pooling(const bitnet_model *m) {
    if (!m || m->vocab_only) return BITNET_POOLING_MEAN;
    return m->hp.pooling < 0 ? BITNET_POOLING_MEAN : (bitnet_pooling)m->hp.pooling;
}

/* Read and check the params; *pool receives the pooling to use. */
static bitnet_status bn_sess_embed_params(const bitnet_model *m, const bitnet_embed_params *params,
                                          bitnet_embed_params *p, int *pool, const char *who) {
    bitnet_embed_default_params(p, sizeof *p);
    bitnet_status st = bn_params_read(p, sizeof *p, params, "embed");
    if (st != BITNET_OK) return st;
    int pl = p->pooling == BITNET_POOLING_MODEL ? (int)bitnet_model_pooling(m) : p->pooling;
    if (pl == BITNET_POOLING_NONE)
        return bn_err(BITNET_E_INVALID_ARG,
                      "%s: pooling 'none' gives one vector per token, not a sentence embedding (evaluate with "
                      "params.embeddings and read bitnet_session_embeddings, or choose mean, cls or last)", who);
    if (pl == BITNET_POOLING_RANK)
        return bn_err(BITNET_E_UNSUPPORTED, "%s: rank pooling (a reranker's classification head) is not supported",
                      who);
    if (pl < BITNET_POOLING_MEAN || pl > BITNET_POOLING_LAST)
        return bn_err(BITNET_E_INVALID_ARG, "%s: unknown pooling %d", who, (int)p->pooling);
    if (p->normalize < -1 || p->normalize > 64)
        return bn_err(BITNET_E_INVALID_ARG, "%s: normalize %d is not -1 (none), 0 (max-abs), 1..64 (p-norm)", who,
                      (int)p->normalize);
    *pool = pl;
    return BITNET_OK;
}

/* llama.cpp's common_embd_normalize. */
static void bn_sess_embed_normalize(const float *x, float *out, int64_t n, int norm) {
    double sum = 0.0;
    if (norm == -1) {
        sum = 1.0;
    } else if (norm == 0) {
        for (int64_t i = 0; i < n; i++)
            if (sum < fabsf(x[i])) sum = fabsf(x[i]);
        sum /= 32760.0; /* the int16 range */
    } else if (norm == 2) {
        for (int64_t i = 0; i < n; i++) sum += x[i] * x[i];
        sum = sqrt(sum);
    } else {
        for (int64_t i = 0; i < n; i++) sum += pow(fabsf(x[i]), norm);
        sum = pow(sum, 1.0 / norm);
    }
    const float k = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * k;
}

/* The mean of n rows of E floats (stride E), summed in double. */
static void bn_sess_embed_mean(const float *rows, int64_t n, int64_t E, float *out) {
    for (int64_t i = 0; i < E; i++) {
        double acc = 0;
        for (int64_t t = 0; t < n; t++) acc += rows[t * E + i];
        out[i] = (float)(acc / (double)n);
    }
}

bitnet_status bitnet_session_embed(bitnet_session *s, const bitnet_token *tokens, size_t n,
                                   const bitnet_embed_params *params, float *out, size_t cap) {
    static const char who[] = "bitnet_session_embed";
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "%s: session is NULL", who);
    const bitnet_model *m = s->m;
    const int64_t E = m->hp.n_embd;
    bitnet_embed_params p;
    int pool = 0;
    bitnet_status st = bn_sess_embed_params(m, params, &p, &pool, who);
    if (st != BITNET_OK) return bn_session_fail(s, st);
    if (!out || cap < (size_t)E)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "%s: out %s (the embedding has %lld floats)", who,
                                         out ? "is too small" : "is NULL", (long long)E));
    if (!tokens || n == 0)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "%s: %s", who,
                                         !tokens ? "tokens is NULL" : "no tokens (n = 0)"));
    if (s->batch)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "%s: the session has tokens waiting in a batch", who));
    if (n > s->n_ctx)
        return bn_session_fail(s, bn_err(BITNET_E_CONTEXT_FULL, "%s: %zu tokens do not fit in n_ctx %u", who, n,
                                         s->n_ctx));
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab)
            return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "%s: token %zu has id %d, outside the "
                                             "vocabulary [0, %lld)", who, i, (int)tokens[i], (long long)m->hp.n_vocab));
    if ((st = bn_session_ensure_work(s)) != BITNET_OK) return bn_session_fail(s, st);
    const size_t nb_max = bn_sess_embed_min(n, (size_t)s->work.n_batch);
    float *rows = bn_mallocn(nb_max * (size_t)E, sizeof(float));
    double *sum = pool == BITNET_POOLING_MEAN ? bn_calloc((size_t)E, sizeof(double)) : NULL;
    float *pooled = bn_mallocn((size_t)E, sizeof(float));
    if (!rows || !pooled || (pool == BITNET_POOLING_MEAN && !sum)) {
        bn_free(rows);
        bn_free(sum);
        bn_free(pooled);
        return bn_session_fail(s, bn_err(BITNET_E_NOMEM, "%s: out of memory for %zu hidden states", who, nb_max));
    }
    /* the input replaces the context */
    s->n_past = 0;
    bn_session_drop_outputs(s);
    for (size_t done = 0; done < n;) {
        const size_t nb = bn_sess_embed_min(n - done, (size_t)s->work.n_batch);
        const int last = done + nb == n;
        bn_fwd_seg g;
        memset(&g, 0, sizeof g);
        g.kv = &s->kv;
        g.tok = tokens + done;
        g.n = (int64_t)nb;
        g.pos0 = (int32_t)done;
        /* hidden states: every row (mean), the first chunk's (cls), the last token's */
        g.embd0 = pool == BITNET_POOLING_MEAN || (pool == BITNET_POOLING_CLS && done == 0) ? 0
                  : last                                                                 ? g.n - 1
                                                                                         : g.n;
        g.embd = g.embd0 < g.n ? rows : NULL;
        if ((st = bn_fwd_eval(&s->work, &g, 1)) != BITNET_OK) break;
        if (pool == BITNET_POOLING_MEAN)
            for (size_t t = 0; t < nb; t++)
                for (int64_t i = 0; i < E; i++) sum[i] += rows[t * (size_t)E + (size_t)i];
        if (pool == BITNET_POOLING_CLS && done == 0) memcpy(pooled, rows, (size_t)E * sizeof(float));
        if (last) { /* the last token's hidden state: bitnet_session_embeddings(s, -1) */
            memcpy(s->embd, rows + (nb - 1 - (size_t)g.embd0) * (size_t)E, (size_t)E * sizeof(float));
            if (pool == BITNET_POOLING_LAST) memcpy(pooled, s->embd, (size_t)E * sizeof(float));
        }
        done += nb;
    }
    if (st == BITNET_OK) {
        memcpy(s->tokens, tokens, n * sizeof *tokens);
        s->n_past = (uint32_t)n;
        s->n_embd_rows = 1;
        s->logits_kept_all = 0;
        if (pool == BITNET_POOLING_MEAN)
            for (int64_t i = 0; i < E; i++) pooled[i] = (float)(sum[i] / (double)n);
        bn_sess_embed_normalize(pooled, out, E, p.normalize);
    }
    bn_free(rows);
    bn_free(sum);
    bn_free(pooled);
    return st == BITNET_OK ? BITNET_OK : bn_session_fail(s, st);
}

bitnet_status bitnet_session_embed_text(bitnet_session *s, const char *text, size_t len,
                                        const bitnet_embed_params *params, float *out, size_t cap,
                                        size_t *n_tokens) {
    static const char who[] = "bitnet_session_embed_text";
    if (n_tokens) *n_tokens = 0;
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "%s: session is NULL", who);
    if (!text && len) return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "%s: text is NULL", who));
    /* as llama-embedding tokenizes its prompts: special tokens added (BOS, and EOS when
     * the vocabulary says add_eos_token) and special-token texts parsed */
    const uint32_t flags = BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL;
    size_t n = 0;
    bitnet_status st = bitnet_tokenize(s->m, text ? text : "", len, flags, NULL, 0, &n);
    if (st != BITNET_OK && st != BITNET_E_BUFFER_TOO_SMALL) return bn_session_fail(s, st);
    if (n == 0) return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "%s: the input gives no tokens", who));
    bitnet_token *toks = bn_mallocn(n, sizeof *toks);
    if (!toks) return bn_session_fail(s, bn_err(BITNET_E_NOMEM, "%s: out of memory for %zu tokens", who, n));
    size_t n2 = 0;
    st = bitnet_tokenize(s->m, text ? text : "", len, flags, toks, n, &n2);
    if (st == BITNET_OK) st = bitnet_session_embed(s, toks, n2, params, out, cap);
    else bn_session_fail(s, st);
    if (st == BITNET_OK && n_tokens) *n_tokens = n2;
    bn_free(toks);
    return st;
}

bitnet_status bitnet_session_pool(const bitnet_session *s, const bitnet_embed_params *params, float *out,
                                  size_t cap) {
    static const char who[] = "bitnet_session_pool";
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "%s: session is NULL", who);
    const int64_t E = s->m->hp.n_embd;
    bitnet_embed_params p;
    int pool = 0;
    bitnet_status st = bn_sess_embed_params(s->m, params, &p, &pool, who);
    if (st != BITNET_OK) return bn_session_fail(s, st);
    if (!out || cap < (size_t)E)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "%s: out %s (the embedding has %lld floats)", who,
                                         out ? "is too small" : "is NULL", (long long)E));
    if (s->n_embd_rows == 0 || s->n_past == 0)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "%s: nothing evaluated", who));
    const float *src;
    float *mean = NULL;
    if (pool == BITNET_POOLING_LAST) {
        src = s->embd + (s->n_embd_rows - 1) * E;
    } else {
        /* mean and cls need the hidden state of every token of the context: the last
         * eval must have covered it from position 0 and kept them all */
        if (!s->p.embeddings || s->n_embd_rows != (int64_t)s->n_past)
            return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "%s: %s pooling needs every token's hidden state: "
                                             "create the session with params.embeddings and evaluate the whole "
                                             "input from position 0 in one call", who,
                                             pool == BITNET_POOLING_MEAN ? "mean" : "cls"));
        if (pool == BITNET_POOLING_CLS) {
            src = s->embd;
        } else {
            mean = bn_mallocn((size_t)E, sizeof(float));
            if (!mean) return bn_session_fail(s, bn_err(BITNET_E_NOMEM, "%s: out of memory", who));
            bn_sess_embed_mean(s->embd, s->n_embd_rows, E, mean);
            src = mean;
        }
    }
    bn_sess_embed_normalize(src, out, E, p.normalize);
    bn_free(mean);
    return BITNET_OK;
}
