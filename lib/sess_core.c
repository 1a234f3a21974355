/*
 * sess_core.c -- one token stream over a shared, read-only model: the KV cache and
 * scratch (lib/fwd.h), the tokens in the context, the logits/embeddings of the last
 * eval, the sampler RNG and a per-session error message.
 *
 * eval: validates every token id and the context room first (nothing is evaluated on
 * error), then runs the forward pass in chunks of n_batch tokens; positions continue
 * across calls.  Logits are kept for the last token, or for all tokens with logits_all.
 *
 * State blob (little-endian, what bitnet_session_state_save writes):
 *   "BNST" | u32 version (1) | u64 model fingerprint | u32 kv_type | u32 n_layer |
 *   u32 n_kv (elements per cache row) | u32 n_past | u64 rng[4] | u32 has_logits |
 *   i32 tokens[n_past] | per layer: K rows [n_past][n_kv], V rows [n_past][n_kv]
 *   (f16 or f32) | f32 logits[n_vocab] if has_logits | u64 FNV-1a of everything before.
 * A blob from another model, another KV type, or with a bad checksum/size is refused
 * with BITNET_E_FORMAT; one needing more context than the session has with
 * BITNET_E_CONTEXT_FULL.
 */
#include "sess.h"

#include "fwd.h"

#include <stdio.h>
#include <unistd.h>

struct bitnet_session {
    const bitnet_model   *m;
    bitnet_session_params p;
    uint32_t              n_ctx;
    uint32_t              n_past;
    bitnet_token         *tokens;      /* n_ctx                                         */
    bn_fwd                fwd;
    float                *logits;      /* n_logits rows of n_vocab                       */
    size_t                logits_cap;  /* rows allocated                                 */
    int64_t               n_logits;    /* rows valid (0: none)                           */
    float                *embd;        /* n_embd_rows rows of n_embd                     */
    size_t                embd_cap;
    int64_t               n_embd_rows;
    uint64_t              rng[4];
    char                  errmsg[512];
};

static size_t bn_min_size(size_t a, size_t b) { return a < b ? a : b; }

void bitnet_session_default_params(bitnet_session_params *p, size_t struct_size) {
    bitnet_session_params d;
    memset(&d, 0, sizeof d);
    d.n_batch = 512;
    d.kv_type = BITNET_KV_F16;
    d.seed = 0x5eed;
    bn_params_default(p, struct_size, &d, sizeof d);
}

/* ---- internal interface (sess.h) ------------------------------------------------------ */

const bitnet_model *bn_session_model(const bitnet_session *s) { return s ? s->m : NULL; }

const bitnet_token *bn_session_tokens(const bitnet_session *s, size_t *n) {
    if (n) *n = s ? s->n_past : 0;
    return s ? s->tokens : NULL;
}

uint64_t *bn_session_rng(bitnet_session *s) { return s->rng; }

bitnet_status bn_session_fail(bitnet_session *s, bitnet_status st) {
    if (s) snprintf(s->errmsg, sizeof s->errmsg, "%s", bn_errmsg());
    return st;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

bitnet_status bitnet_session_create(const bitnet_model *m, const bitnet_session_params *params,
                                    bitnet_session **out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_create: out is NULL");
    *out = NULL;
    if (!m) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_create: model is NULL");
    if (m->vocab_only)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_create: the model was loaded with vocab_only");
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    bitnet_status pst = bn_params_read(&p, sizeof p, params, "session");
    if (pst != BITNET_OK) return pst;
    if (p.kv_type != BITNET_KV_F16 && p.kv_type != BITNET_KV_F32)
        return bn_err(BITNET_E_INVALID_ARG, "session params: unknown kv_type %d", (int)p.kv_type);
    uint32_t n_ctx = p.n_ctx;
    if (n_ctx == 0) n_ctx = (uint32_t)(m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096);
    if (n_ctx > (1u << 24))
        return bn_err(BITNET_E_INVALID_ARG, "session params: n_ctx %u is too large (max %u)", n_ctx, 1u << 24);
    if (p.n_batch == 0) p.n_batch = 512;
    if (p.n_batch > n_ctx) p.n_batch = n_ctx;
    uint32_t nt = p.n_threads;
    if (nt == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        nt = c > 0 ? (uint32_t)c : 1;
    }
    if (nt > 256) nt = 256;

    bitnet_session *s = bn_calloc(1, sizeof *s);
    if (!s) return bn_err(BITNET_E_NOMEM, "out of memory for a session");
    s->m = m;
    s->p = p;
    s->n_ctx = n_ctx;
    s->tokens = bn_mallocn(n_ctx, sizeof(bitnet_token));
    bitnet_status st;
    if (!s->tokens) {
        st = bn_err(BITNET_E_NOMEM, "out of memory for a session of %u tokens", n_ctx);
        goto fail;
    }
    st = bn_fwd_init(&s->fwd, m, n_ctx, p.n_batch, p.kv_type == BITNET_KV_F16, (int)nt);
    if (st != BITNET_OK) goto fail;
    s->embd = bn_mallocn((size_t)m->hp.n_embd, sizeof(float));
    s->logits = bn_mallocn((size_t)m->hp.n_vocab, sizeof(float));
    if (!s->embd || !s->logits) {
        st = bn_err(BITNET_E_NOMEM, "out of memory for a session's logits");
        goto fail;
    }
    s->embd_cap = 1;
    s->logits_cap = 1;
    bn_rng_seed(s->rng, p.seed);
    *out = s;
    return BITNET_OK;
fail:
    bitnet_session_free(s);
    return st;
}

void bitnet_session_free(bitnet_session *s) {
    if (!s) return;
    bn_fwd_free(&s->fwd);
    bn_free(s->tokens);
    bn_free(s->logits);
    bn_free(s->embd);
    bn_free(s);
}

const char *bitnet_session_last_error(const bitnet_session *s) { return s ? s->errmsg : ""; }
uint32_t bitnet_session_n_ctx(const bitnet_session *s) { return s ? s->n_ctx : 0; }
uint32_t bitnet_session_n_past(const bitnet_session *s) { return s ? s->n_past : 0; }

void bitnet_session_reset(bitnet_session *s) {
    if (!s) return;
    s->n_past = 0;
    s->n_logits = 0;
    s->n_embd_rows = 0;
    bn_rng_seed(s->rng, s->p.seed);
}

void bitnet_session_set_seed(bitnet_session *s, uint64_t seed) {
    if (!s) return;
    s->p.seed = seed;
    bn_rng_seed(s->rng, seed);
}

bitnet_status bitnet_session_truncate(bitnet_session *s, uint32_t n_keep) {
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_truncate: session is NULL");
    if (n_keep > s->n_past)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_truncate: n_keep %u > n_past %u",
                                         n_keep, s->n_past));
    if (n_keep < s->n_past) { /* the logits no longer belong to the last token in context */
        s->n_logits = 0;
        s->n_embd_rows = 0;
    }
    s->n_past = n_keep;
    return BITNET_OK;
}

/* ---- evaluation ------------------------------------------------------------------------------ */

/* Make room for `rows` rows of `width` floats in *buf (capacity *cap rows). */
static bitnet_status bn_grow(float **buf, size_t *cap, size_t rows, size_t width) {
    if (rows <= *cap) return BITNET_OK;
    size_t bytes;
    if (__builtin_mul_overflow(rows, width * sizeof(float), &bytes))
        return bn_err(BITNET_E_NOMEM, "output buffer of %zu rows overflows", rows);
    float *p = bn_realloc(*buf, bytes);
    if (!p) return bn_err(BITNET_E_NOMEM, "out of memory for %zu output rows", rows);
    *buf = p;
    *cap = rows;
    return BITNET_OK;
}

bitnet_status bitnet_session_eval(bitnet_session *s, const bitnet_token *tokens, size_t n) {
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_eval: session is NULL");
    if (!tokens || n == 0)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_eval: %s",
                                         !tokens ? "tokens is NULL" : "no tokens (n = 0)"));
    const bitnet_model *m = s->m;
    const int64_t n_vocab = m->hp.n_vocab, E = m->hp.n_embd;
    if (n > s->n_ctx || s->n_past + n > s->n_ctx)
        return bn_session_fail(s, bn_err(BITNET_E_CONTEXT_FULL,
                                         "bitnet_session_eval: %zu tokens do not fit: %u in context, n_ctx %u", n,
                                         s->n_past, s->n_ctx));
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG,
                                             "bitnet_session_eval: token %zu has id %d, outside the vocabulary "
                                             "[0, %lld)", i, (int)tokens[i], (long long)n_vocab));
    const int all_logits = s->p.logits_all != 0, all_embd = s->p.embeddings != 0;
    bitnet_status st = bn_grow(&s->logits, &s->logits_cap, all_logits ? n : 1, (size_t)n_vocab);
    if (st == BITNET_OK) st = bn_grow(&s->embd, &s->embd_cap, all_embd ? n : 1, (size_t)E);
    if (st != BITNET_OK) return bn_session_fail(s, st);

    s->n_logits = 0;
    s->n_embd_rows = 0;
    size_t done = 0;
    while (done < n) {
        int64_t nb = (int64_t)bn_min_size(n - done, (size_t)s->fwd.n_batch);
        int last_chunk = done + (size_t)nb == n;
        int64_t first_out;
        float *lg = NULL, *em = NULL;
        if (all_logits || all_embd) {
            first_out = 0;
        } else {
            first_out = last_chunk ? nb - 1 : nb; /* only the very last token */
        }
        /* One output pass per chunk: every token (logits_all / embeddings) or the last
         * one.  When only one of the two flags is set, the other buffer gets just the
         * last token's row, filled below. */
        int64_t n_out = nb - first_out;
        if (n_out > 0) {
            if (all_logits) lg = s->logits + done * (size_t)n_vocab;
            else lg = last_chunk ? s->logits : NULL;
            if (all_embd) em = s->embd + done * (size_t)E;
            else em = last_chunk ? s->embd : NULL;
            if (all_logits && !all_embd) em = NULL;
            if (all_embd && !all_logits) lg = NULL;
        }
        bn_fwd_eval(&s->fwd, tokens + done, nb, (int32_t)(s->n_past + done), first_out, em, lg);
        /* last token only, when a full set was not requested for that buffer */
        if (last_chunk && n_out > 0) {
            if (all_logits && !all_embd) /* embedding of the last token: the last row of xn */
                memcpy(s->embd, s->fwd.xn + (n_out - 1) * E, (size_t)E * sizeof(float));
            if (all_embd && !all_logits) {
                /* logits of the last token only (single thread: one row of output) */
                const bn_dmat *w = &m->output;
                m->k->dense_prep(w, s->fwd.xn + (n_out - 1) * E, s->fwd.xprep);
                m->k->dense_matmul(w, 0, n_vocab, s->fwd.xprep, s->fwd.prep_stride, 1, s->logits, n_vocab,
                                   s->fwd.dense_scratch);
            }
        }
        memcpy(s->tokens + s->n_past + done, tokens + done, (size_t)nb * sizeof(bitnet_token));
        done += (size_t)nb;
    }
    s->n_past += (uint32_t)n;
    s->n_logits = all_logits ? (int64_t)n : 1;
    s->n_embd_rows = all_embd ? (int64_t)n : 1;
    return BITNET_OK;
}

bitnet_status bitnet_session_logits(const bitnet_session *s, int32_t i, const float **logits) {
    if (!s || !logits) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_logits: %s is NULL", s ? "logits" : "session");
    if (s->n_logits == 0) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_logits: no logits (nothing evaluated since the last reset/truncate/load)");
    int64_t row;
    if (i == -1) row = s->n_logits - 1;
    else if (i >= 0 && s->p.logits_all && i < s->n_logits) row = i;
    else if (i >= 0 && !s->p.logits_all)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_logits: token %d: only the last token's logits are kept "
                      "(set logits_all)", (int)i);
    else
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_logits: index %d out of range (last eval had %lld tokens)",
                      (int)i, (long long)s->n_logits);
    *logits = s->logits + row * s->m->hp.n_vocab;
    return BITNET_OK;
}

bitnet_status bitnet_session_embeddings(const bitnet_session *s, int32_t i, const float **embd) {
    if (!s || !embd) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_embeddings: %s is NULL", s ? "embd" : "session");
    if (s->n_embd_rows == 0) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_embeddings: nothing evaluated");
    int64_t row;
    if (i == -1) row = s->n_embd_rows - 1;
    else if (i >= 0 && s->p.embeddings && i < s->n_embd_rows) row = i;
    else
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_embeddings: index %d unavailable (%s)", (int)i,
                      s->p.embeddings ? "out of range" : "set params.embeddings to keep every token");
    *embd = s->embd + row * s->m->hp.n_embd;
    return BITNET_OK;
}

/* ---- state ----------------------------------------------------------------------------------- */

#define BN_STATE_MAGIC   "BNST"
#define BN_STATE_VERSION 1u
#define BN_STATE_HEADER  (4 + 4 + 8 + 4 + 4 + 4 + 4 + 32 + 4)

static size_t bn_state_size(const bitnet_session *s, uint32_t n_past, int has_logits) {
    return BN_STATE_HEADER + (size_t)n_past * 4 +
           2 * (size_t)s->m->hp.n_layer * (size_t)n_past * bn_fwd_kv_row_bytes(&s->fwd) +
           (has_logits ? (size_t)s->m->hp.n_vocab * 4 : 0) + 8;
}

static uint8_t *bn_put(uint8_t *p, const void *v, size_t n) {
    memcpy(p, v, n);
    return p + n;
}

bitnet_status bitnet_session_state_save(const bitnet_session *s, void *buf, size_t cap, size_t *n_bytes) {
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_state_save: session is NULL");
    const int has_logits = s->n_logits > 0;
    size_t need = bn_state_size(s, s->n_past, has_logits);
    if (n_bytes) *n_bytes = need;
    if (!buf || cap < need)
        return bn_err(BITNET_E_BUFFER_TOO_SMALL, "bitnet_session_state_save: needs %zu bytes, got %zu", need, cap);
    uint8_t *p = buf;
    uint32_t u;
    p = bn_put(p, BN_STATE_MAGIC, 4);
    u = BN_STATE_VERSION; p = bn_put(p, &u, 4);
    p = bn_put(p, &s->m->fingerprint, 8);
    u = (uint32_t)s->p.kv_type; p = bn_put(p, &u, 4);
    u = (uint32_t)s->m->hp.n_layer; p = bn_put(p, &u, 4);
    u = (uint32_t)s->fwd.n_kv; p = bn_put(p, &u, 4);
    p = bn_put(p, &s->n_past, 4);
    p = bn_put(p, s->rng, 32);
    u = (uint32_t)has_logits; p = bn_put(p, &u, 4);
    p = bn_put(p, s->tokens, (size_t)s->n_past * 4);
    size_t rb = bn_fwd_kv_row_bytes(&s->fwd) * s->n_past;
    for (int64_t l = 0; l < s->m->hp.n_layer; l++) {
        p = bn_put(p, s->fwd.kc[l], rb);
        p = bn_put(p, s->fwd.vc[l], rb);
    }
    if (has_logits) p = bn_put(p, s->logits + (s->n_logits - 1) * s->m->hp.n_vocab, (size_t)s->m->hp.n_vocab * 4);
    uint64_t h = bn_fnv1a(BN_FNV_OFFSET, buf, (size_t)(p - (uint8_t *)buf));
    p = bn_put(p, &h, 8);
    return BITNET_OK;
}

bitnet_status bitnet_session_state_load(bitnet_session *s, const void *buf, size_t size) {
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_state_load: session is NULL");
    if (!buf) return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_state_load: buf is NULL"));
    const uint8_t *p = buf;
    if (size < BN_STATE_HEADER + 8 || memcmp(p, BN_STATE_MAGIC, 4) != 0)
        return bn_session_fail(s, bn_err(BITNET_E_FORMAT, "session state: not a libbitnet state blob"));
    uint32_t ver = bn_rd_u32(p + 4), kv_type = bn_rd_u32(p + 16), n_layer = bn_rd_u32(p + 20);
    uint32_t n_kv = bn_rd_u32(p + 24), n_past = bn_rd_u32(p + 28), has_logits = bn_rd_u32(p + 64);
    uint64_t fp = bn_rd_u64(p + 8);
    if (ver != BN_STATE_VERSION)
        return bn_session_fail(s, bn_err(BITNET_E_FORMAT, "session state: version %u not supported (expected %u)", ver,
                                         BN_STATE_VERSION));
    if (fp != s->m->fingerprint || n_layer != (uint32_t)s->m->hp.n_layer || n_kv != (uint32_t)s->fwd.n_kv)
        return bn_session_fail(s, bn_err(BITNET_E_FORMAT, "session state: saved from another model"));
    if (kv_type != (uint32_t)s->p.kv_type)
        return bn_session_fail(s, bn_err(BITNET_E_FORMAT, "session state: KV type %s, but this session uses %s",
                                         kv_type == BITNET_KV_F16 ? "f16" : "f32",
                                         s->p.kv_type == BITNET_KV_F16 ? "f16" : "f32"));
    if (has_logits > 1 || n_past > (1u << 24) || size != bn_state_size(s, n_past, (int)has_logits))
        return bn_session_fail(s, bn_err(BITNET_E_FORMAT, "session state: size %zu does not match its header", size));
    if (bn_fnv1a(BN_FNV_OFFSET, p, size - 8) != bn_rd_u64(p + size - 8))
        return bn_session_fail(s, bn_err(BITNET_E_FORMAT, "session state: checksum mismatch (corrupt blob)"));
    if (n_past > s->n_ctx)
        return bn_session_fail(s, bn_err(BITNET_E_CONTEXT_FULL, "session state: %u tokens do not fit in n_ctx %u",
                                         n_past, s->n_ctx));
    const uint8_t *q = p + BN_STATE_HEADER;
    for (uint32_t i = 0; i < n_past; i++) {
        int32_t t = (int32_t)bn_rd_u32(q + 4 * i);
        if (t < 0 || t >= s->m->hp.n_vocab)
            return bn_session_fail(s, bn_err(BITNET_E_FORMAT, "session state: token %u has invalid id %d", i, (int)t));
    }
    memcpy(s->tokens, q, (size_t)n_past * 4);
    q += (size_t)n_past * 4;
    size_t rb = bn_fwd_kv_row_bytes(&s->fwd) * n_past;
    for (int64_t l = 0; l < s->m->hp.n_layer; l++) {
        memcpy(s->fwd.kc[l], q, rb);
        q += rb;
        memcpy(s->fwd.vc[l], q, rb);
        q += rb;
    }
    for (int i = 0; i < 4; i++) s->rng[i] = bn_rd_u64(p + 32 + 8 * i);
    s->n_past = n_past;
    s->n_embd_rows = 0;
    s->n_logits = 0;
    if (has_logits) {
        memcpy(s->logits, q, (size_t)s->m->hp.n_vocab * 4);
        s->n_logits = 1;
    }
    return BITNET_OK;
}
