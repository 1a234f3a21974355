/*
 * sess_core.c -- one token stream over a shared, read-only model: the KV cache and
 * evaluation buffers (lib/fwd.h), the tokens in the context, the logits/embeddings of
 * the last eval, the sampler RNG and a per-session error message (lib/sess_impl.h).
 *
 * eval: validates every token id and the context room first (nothing is evaluated on
 * error), then runs the forward pass in chunks of n_batch tokens; positions continue
 * across calls.  Logits are kept for the last token, or for all tokens with logits_all.
 * A bitnet_batch (lib/sess_batch.c) evaluates tokens of many sessions in one step with
 * exactly the same results, through the same prepare / segment / commit helpers.
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
#include "gen_sampler.h" /* bn_rng_seed: the session's RNG */
#include "sess_impl.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

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

bitnet_status bn_session_fail(const bitnet_session *s, bitnet_status st) {
    /* the session is heap-allocated, never a const object: writing its message through
     * a pointer that was const-qualified is well-defined */
    if (s) snprintf(((bitnet_session *)s)->errmsg, sizeof s->errmsg, "%s", bn_errmsg());
    return st;
}

int bn_session_has_logits(const bitnet_session *s) { return s && s->n_past > 0 && s->n_logits > 0; }

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
    s->n_threads = nt;
    s->tokens = bn_mallocn(n_ctx, sizeof(bitnet_token));
    bitnet_status st;
    if (!s->tokens) {
        st = bn_err(BITNET_E_NOMEM, "out of memory for a session of %u tokens", n_ctx);
        goto fail;
    }
    st = bn_kv_init(&s->kv, m, n_ctx, p.kv_type == BITNET_KV_F16);
    if (st != BITNET_OK) goto fail;
    {
        double kv_mib = (double)n_ctx * (double)bn_kv_row_bytes(&s->kv) * 2.0 * (double)m->hp.n_layer / 1048576.0;
        /* once per model (a server or perplexity run creates many sessions) */
        if (n_ctx > m->hp.n_ctx_train && m->hp.n_ctx_train > 0 &&
            !__atomic_exchange_n(&((bitnet_model *)m)->warned_ctx, 1, __ATOMIC_RELAXED))
            BN_LOG_WARN("the model was trained on only %lld context tokens (n_ctx %u): positions past %lld were "
                        "never trained; the KV cache of n_ctx %u takes %.1f MiB",
                        (long long)m->hp.n_ctx_train, n_ctx, (long long)m->hp.n_ctx_train, n_ctx, kv_mib);
        BN_LOG_INFO("session: n_ctx %u, KV cache %.1f MiB (%s)", n_ctx, kv_mib,
                    p.kv_type == BITNET_KV_F16 ? "f16" : "f32");
    }
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
    if (s->batch) bn_batch_forget(s->batch, s);
    bn_work_free(&s->work);
    bn_kv_free(&s->kv);
    bn_free(s->tokens);
    bn_free(s->logits);
    bn_free(s->embd);
    bn_free(s->scr.s);
    bn_free(s->scr.e);
    bn_aligned_free(s->scr.x);
    bn_free(s->scr_l);
    bn_free(s->scr_lo);
    bn_free(s->scr_hi);
    bn_free(s->scr_ids);
    bn_free(s);
}

const char *bitnet_session_last_error(const bitnet_session *s) { return s ? s->errmsg : ""; }
uint32_t bitnet_session_n_ctx(const bitnet_session *s) { return s ? s->n_ctx : 0; }
uint32_t bitnet_session_n_past(const bitnet_session *s) { return s ? s->n_past : 0; }

void bitnet_session_reset(bitnet_session *s) {
    if (!s) return;
    s->n_past = 0;
    s->n_logits = 0;
    s->logits_screened = 0;
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
        s->logits_screened = 0;
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

static size_t bn_session_prep_stride(const bitnet_model *m) {
    return (BN_DENSE_PREP_BYTES(m->hp.n_embd) + 63) / 64 * 64; /* as bn_work_init */
}

static bitnet_status bn_session_screen_bufs(bitnet_session *s) {
    if (s->scr.x) return BITNET_OK;
    const size_t V = (size_t)s->m->hp.n_vocab;
    s->scr.s = bn_mallocn(V, sizeof(float));
    s->scr.e = bn_mallocn(V, sizeof(float));
    s->scr.x = bn_aligned_alloc(64, bn_session_prep_stride(s->m));
    if (s->scr.s && s->scr.e && s->scr.x) return BITNET_OK;
    bn_free(s->scr.s);
    bn_free(s->scr.e);
    bn_aligned_free(s->scr.x);
    memset(&s->scr, 0, sizeof s->scr);
    return bn_err(BITNET_E_NOMEM, "out of memory for a session's screened logits");
}

bitnet_status bn_session_exact_logits(bitnet_session *s) {
    if (!s->logits_screened) return BITNET_OK;
    bitnet_status st = bn_session_ensure_work(s);
    if (st != BITNET_OK) return st;
    bn_fwd_output_full(&s->work, s->scr.x, s->logits);
    s->logits_screened = 0;
    s->scr_n_full++;
    return BITNET_OK;
}

bitnet_status bn_session_eval_prepare(bitnet_session *s, const bitnet_token *tokens, size_t n, uint32_t flags,
                                      const char *who) {
    const int logits_all = (flags & BITNET_BATCH_LOGITS_ALL) != 0;
    const bitnet_model *m = s->m;
    const int64_t n_vocab = m->hp.n_vocab, E = m->hp.n_embd;
    if (!tokens || n == 0)
        return bn_err(BITNET_E_INVALID_ARG, "%s: %s", who, !tokens ? "tokens is NULL" : "no tokens (n = 0)");
    if (n > s->n_ctx || s->n_past + n > s->n_ctx)
        return bn_err(BITNET_E_CONTEXT_FULL, "%s: %zu tokens do not fit: %u in context, n_ctx %u", who, n, s->n_past,
                      s->n_ctx);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return bn_err(BITNET_E_INVALID_ARG, "%s: token %zu has id %d, outside the vocabulary [0, %lld)", who, i,
                          (int)tokens[i], (long long)n_vocab);
    bitnet_status st = bn_grow(&s->logits, &s->logits_cap, logits_all || s->p.logits_all ? n : 1, (size_t)n_vocab);
    if (st == BITNET_OK) st = bn_grow(&s->embd, &s->embd_cap, s->p.embeddings ? n : 1, (size_t)E);
    if (st == BITNET_OK && m->screen_mode == BITNET_SCREEN_EXACT) st = bn_session_screen_bufs(s);
    return st;
}

void bn_session_segment(bitnet_session *s, const bitnet_token *tokens, size_t n, size_t done, size_t nb,
                        uint32_t flags, bn_fwd_seg *g) {
    const int all_logits = (flags & BITNET_BATCH_LOGITS_ALL) || s->p.logits_all, all_embd = s->p.embeddings != 0;
    const int no_logits = (flags & BITNET_BATCH_NO_LOGITS) != 0;
    const int last = done + nb == n;
    memset(g, 0, sizeof *g);
    g->kv = &s->kv;
    g->tok = tokens + done;
    g->n = (int64_t)nb;
    g->pos0 = (int32_t)(s->n_past + done);
    /* every token's outputs, or only the very last token's */
    if (no_logits) g->logits = NULL;
    else if (all_logits) g->logits = s->logits + done * (size_t)s->m->hp.n_vocab, g->logits0 = 0;
    else if (last) g->logits = s->logits, g->logits0 = g->n - 1;
    if (!no_logits && !all_logits && last && s->scr.x) {
        s->scr.done = 0;
        g->screen = &s->scr;
    }
    if (all_embd) g->embd = s->embd + done * (size_t)s->m->hp.n_embd, g->embd0 = 0;
    else if (last) g->embd = s->embd, g->embd0 = g->n - 1;
}

void bn_session_eval_commit(bitnet_session *s, const bitnet_token *tokens, size_t n, uint32_t flags) {
    const int logits_all = (flags & BITNET_BATCH_LOGITS_ALL) || s->p.logits_all;
    memcpy(s->tokens + s->n_past, tokens, n * sizeof(bitnet_token));
    s->n_past += (uint32_t)n;
    s->n_logits = flags & BITNET_BATCH_NO_LOGITS ? 0 : logits_all ? (int64_t)n : 1;
    s->n_embd_rows = s->p.embeddings ? (int64_t)n : 1;
    s->logits_kept_all = logits_all && !(flags & BITNET_BATCH_NO_LOGITS);
    s->logits_screened = s->n_logits == 1 && !logits_all && s->scr.x && s->scr.done;
    s->scr.done = 0;
    if (s->logits_screened) s->scr_n_screened++;
}

void bn_session_drop_outputs(bitnet_session *s) {
    s->n_logits = 0;
    s->logits_screened = 0;
    s->n_embd_rows = 0;
}

bitnet_status bn_session_ensure_work(bitnet_session *s) {
    if (!s->work.m) {
        bitnet_status st = bn_work_init(&s->work, s->m, s->p.n_batch, s->n_ctx, (int)s->n_threads);
        if (st != BITNET_OK) return st;
    }
    s->work.prof = s->prof_on ? &s->prof : NULL;
    return BITNET_OK;
}

bitnet_status bitnet_session_eval(bitnet_session *s, const bitnet_token *tokens, size_t n) {
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_eval: session is NULL");
    if (s->batch)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_eval: the session has tokens waiting "
                                         "in a batch (evaluate or clear the batch first)"));
    bitnet_status st = bn_session_eval_prepare(s, tokens, n, 0, "bitnet_session_eval");
    if (st == BITNET_OK) st = bn_session_ensure_work(s);
    if (st != BITNET_OK) return bn_session_fail(s, st);
    bn_session_drop_outputs(s);
    for (size_t done = 0; done < n;) {
        size_t nb = bn_min_size(n - done, (size_t)s->work.n_batch);
        bn_fwd_seg g;
        bn_session_segment(s, tokens, n, done, nb, 0, &g);
        if ((st = bn_fwd_eval(&s->work, &g, 1)) != BITNET_OK) return bn_session_fail(s, st);
        done += nb;
    }
    bn_session_eval_commit(s, tokens, n, 0);
    return BITNET_OK;
}

bitnet_status bitnet_session_logits(const bitnet_session *s, int32_t i, const float **logits) {
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_logits: session is NULL");
    if (!logits) return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_logits: logits is NULL"));
    if (s->n_logits == 0)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_logits: no logits (nothing "
                                         "evaluated since the last reset/truncate/load)"));
    int64_t row;
    if (i == -1) row = s->n_logits - 1;
    else if (i >= 0 && s->logits_kept_all && i < s->n_logits) row = i;
    else if (i >= 0 && !s->logits_kept_all)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_logits: token %d: only the last "
                                         "token's logits are kept (set logits_all)", (int)i));
    else
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_logits: index %d out of range "
                                         "(last eval had %lld tokens)", (int)i, (long long)s->n_logits));
    if (s->logits_screened) { /* computed on demand (the session is used by one thread at a time) */
        bitnet_status st = bn_session_exact_logits((bitnet_session *)(uintptr_t)s);
        if (st != BITNET_OK) return bn_session_fail(s, st);
    }
    *logits = s->logits + row * s->m->hp.n_vocab;
    return BITNET_OK;
}

bitnet_status bitnet_session_embeddings(const bitnet_session *s, int32_t i, const float **embd) {
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_embeddings: session is NULL");
    if (!embd) return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_embeddings: embd is NULL"));
    if (s->n_embd_rows == 0)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_embeddings: nothing evaluated"));
    int64_t row;
    if (i == -1) row = s->n_embd_rows - 1;
    else if (i >= 0 && s->p.embeddings && i < s->n_embd_rows) row = i;
    else
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_embeddings: index %d unavailable "
                                         "(%s)", (int)i, s->p.embeddings ? "out of range" :
                                         "set params.embeddings to keep every token"));
    *embd = s->embd + row * s->m->hp.n_embd;
    return BITNET_OK;
}

/* ---- profiling ------------------------------------------------------------------------------ */

void bn_prof_export(const bn_prof *p, bitnet_profile *out, size_t struct_size) {
    if (!out || struct_size < sizeof(size_t)) return;
    bitnet_profile r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    if (p) {
        r.steps = p->steps;
        r.tokens = p->tokens;
        r.ns_total = p->ns[BN_PROF_TOTAL];
        r.ns_embed = p->ns[BN_PROF_EMBED];
        r.ns_token_ops = p->ns[BN_PROF_TOKEN_OPS];
        r.ns_qkv = p->ns[BN_PROF_QKV];
        r.ns_attention = p->ns[BN_PROF_ATTENTION];
        r.ns_attn_out = p->ns[BN_PROF_ATTN_OUT];
        r.ns_ffn_gate_up = p->ns[BN_PROF_GATE_UP];
        r.ns_ffn_down = p->ns[BN_PROF_DOWN];
        r.ns_output = p->ns[BN_PROF_OUTPUT];
    }
    size_t n = struct_size < sizeof r ? struct_size : sizeof r;
    memcpy(out, &r, n);
    out->struct_size = n;
}

void bitnet_session_set_profiling(bitnet_session *s, int on) {
    if (!s) return;
    memset(&s->prof, 0, sizeof s->prof);
    s->prof_on = on != 0;
    if (s->work.m) s->work.prof = s->prof_on ? &s->prof : NULL;
}

void bitnet_session_get_profile(const bitnet_session *s, bitnet_profile *p, size_t struct_size) {
    bn_prof_export(s ? &s->prof : NULL, p, struct_size);
}

/* ---- copies ------------------------------------------------------------------------------- */

bitnet_status bitnet_session_copy(bitnet_session *dst, const bitnet_session *src) {
    if (!dst || !src) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_copy: %s is NULL", dst ? "src" : "dst");
    if (dst == src) return BITNET_OK;
    if (dst->m != src->m || dst->kv.kv_f16 != src->kv.kv_f16)
        return bn_session_fail(dst, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_copy: the sessions %s",
                                           dst->m != src->m ? "run different models" : "have different KV types"));
    if (dst->batch)
        return bn_session_fail(dst, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_copy: dst has tokens waiting in a batch"));
    if (src->n_past > dst->n_ctx)
        return bn_session_fail(dst, bn_err(BITNET_E_CONTEXT_FULL, "bitnet_session_copy: %u tokens do not fit in n_ctx %u",
                                           src->n_past, dst->n_ctx));
    const int64_t V = src->m->hp.n_vocab, E = src->m->hp.n_embd;
    /* the last token's outputs travel along (they are what sampling reads) */
    bitnet_status st = bn_grow(&dst->logits, &dst->logits_cap, 1, (size_t)V);
    if (st == BITNET_OK) st = bn_grow(&dst->embd, &dst->embd_cap, 1, (size_t)E);
    if (st != BITNET_OK) return bn_session_fail(dst, st);
    memcpy(dst->tokens, src->tokens, (size_t)src->n_past * sizeof(bitnet_token));
    size_t rb = bn_kv_row_bytes(&src->kv) * src->n_past;
    for (int64_t l = 0; l < src->m->hp.n_layer; l++) {
        memcpy(dst->kv.kc[l], src->kv.kc[l], rb);
        memcpy(dst->kv.vc[l], src->kv.vc[l], rb);
    }
    dst->n_past = src->n_past;
    dst->n_logits = src->n_logits > 0;
    dst->n_embd_rows = src->n_embd_rows > 0;
    dst->logits_kept_all = 0;
    dst->logits_screened = 0;
    if (src->n_logits > 0 && src->logits_screened) { /* the screened state travels instead */
        st = bn_session_screen_bufs(dst);
        if (st != BITNET_OK) return bn_session_fail(dst, st);
        memcpy(dst->scr.s, src->scr.s, (size_t)V * sizeof(float));
        memcpy(dst->scr.e, src->scr.e, (size_t)V * sizeof(float));
        memcpy(dst->scr.x, src->scr.x, bn_session_prep_stride(src->m));
        dst->logits_screened = 1;
    } else if (src->n_logits > 0)
        memcpy(dst->logits, src->logits + (src->n_logits - 1) * V, (size_t)V * sizeof(float));
    if (src->n_embd_rows > 0) memcpy(dst->embd, src->embd + (src->n_embd_rows - 1) * E, (size_t)E * sizeof(float));
    memcpy(dst->rng, src->rng, sizeof dst->rng);
    return BITNET_OK;
}

bitnet_status bn_session_spawn(const bitnet_session *s, uint32_t n_ctx, bitnet_session **out) {
    bitnet_session_params p = s->p;
    p.n_ctx = n_ctx;
    p.n_threads = s->n_threads;
    p.logits_all = 0;
    p.embeddings = 0;
    if (p.n_batch > n_ctx) p.n_batch = n_ctx;
    return bitnet_session_create(s->m, &p, out);
}

uint32_t bn_session_n_threads(const bitnet_session *s) { return s->n_threads; }

/* ---- state ----------------------------------------------------------------------------------- */

#define BN_STATE_MAGIC   "BNST"
#define BN_STATE_VERSION 1u
#define BN_STATE_HEADER  (4 + 4 + 8 + 4 + 4 + 4 + 4 + 32 + 4)

static size_t bn_state_size(const bitnet_session *s, uint32_t n_past, int has_logits) {
    return BN_STATE_HEADER + (size_t)n_past * 4 +
           2 * (size_t)s->m->hp.n_layer * (size_t)n_past * bn_kv_row_bytes(&s->kv) +
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
        return bn_session_fail(s, bn_err(BITNET_E_BUFFER_TOO_SMALL, "bitnet_session_state_save: needs %zu bytes, "
                                         "got %zu", need, cap));
    uint8_t *p = buf;
    uint32_t u;
    p = bn_put(p, BN_STATE_MAGIC, 4);
    u = BN_STATE_VERSION; p = bn_put(p, &u, 4);
    p = bn_put(p, &s->m->fingerprint, 8);
    u = (uint32_t)s->p.kv_type; p = bn_put(p, &u, 4);
    u = (uint32_t)s->m->hp.n_layer; p = bn_put(p, &u, 4);
    u = (uint32_t)s->kv.n_kv; p = bn_put(p, &u, 4);
    p = bn_put(p, &s->n_past, 4);
    p = bn_put(p, s->rng, 32);
    u = (uint32_t)has_logits; p = bn_put(p, &u, 4);
    p = bn_put(p, s->tokens, (size_t)s->n_past * 4);
    size_t rb = bn_kv_row_bytes(&s->kv) * s->n_past;
    for (int64_t l = 0; l < s->m->hp.n_layer; l++) {
        p = bn_put(p, s->kv.kc[l], rb);
        p = bn_put(p, s->kv.vc[l], rb);
    }
    if (has_logits && s->logits_screened) {
        bitnet_status st = bn_session_exact_logits((bitnet_session *)(uintptr_t)s);
        if (st != BITNET_OK) return bn_session_fail(s, st);
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
    if (fp != s->m->fingerprint || n_layer != (uint32_t)s->m->hp.n_layer || n_kv != (uint32_t)s->kv.n_kv)
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
    size_t rb = bn_kv_row_bytes(&s->kv) * n_past;
    for (int64_t l = 0; l < s->m->hp.n_layer; l++) {
        memcpy(s->kv.kc[l], q, rb);
        q += rb;
        memcpy(s->kv.vc[l], q, rb);
        q += rb;
    }
    for (int i = 0; i < 4; i++) s->rng[i] = bn_rd_u64(p + 32 + 8 * i);
    s->n_past = n_past;
    s->n_embd_rows = 0;
    s->n_logits = 0;
    s->logits_screened = 0;
    if (has_logits) {
        memcpy(s->logits, q, (size_t)s->m->hp.n_vocab * 4);
        s->n_logits = 1;
        s->logits_kept_all = 0;
    }
    return BITNET_OK;
}

/* ---- sampling from screened logits (docs/performance.md) ----------------------------------- */

bitnet_status bn_session_sample_logits(bitnet_session *s, const bitnet_sampler_params *sp, const float **logits) {
    if (s->logits_screened && s->n_logits == 1) {
        const size_t V = (size_t)s->m->hp.n_vocab;
        if (!s->scr_l) {
            s->scr_l = bn_mallocn(V, sizeof(float));
            s->scr_lo = bn_mallocn(V, sizeof(float));
            s->scr_hi = bn_mallocn(V, sizeof(float));
            s->scr_ids = bn_mallocn(V, sizeof(int32_t));
            if (!s->scr_l || !s->scr_lo || !s->scr_hi || !s->scr_ids) {
                bn_free(s->scr_l), bn_free(s->scr_lo), bn_free(s->scr_hi), bn_free(s->scr_ids);
                s->scr_l = s->scr_lo = s->scr_hi = NULL;
                s->scr_ids = NULL;
                return bn_err(BITNET_E_NOMEM, "out of memory for sampling screened logits");
            }
        }
        size_t n_ids = 0;
        int exact = 0;
        bitnet_status st = bn_sampler_screen(s->scr.s, s->scr.e, (int32_t)V, s->tokens, s->n_past, sp, s->scr_lo,
                                             s->scr_hi, s->scr_ids, &n_ids, &exact);
        if (st != BITNET_OK) return st;
        if (exact && n_ids * 4 < V) { /* (past a quarter of the vocabulary the full layer is as fast) */
            if ((st = bn_session_ensure_work(s)) != BITNET_OK) return st;
            for (size_t j = 0; j < V; j++) s->scr_l[j] = -INFINITY;
            bn_fwd_output_rows(&s->work, s->scr.x, s->scr_ids, (int64_t)n_ids, s->scr_l);
            s->scr_n_rescored += n_ids;
            *logits = s->scr_l;
            return BITNET_OK;
        }
    }
    return bitnet_session_logits(s, -1, logits);
}

void bitnet_session_screen_stats(const bitnet_session *s, uint64_t *n_screened, uint64_t *n_rescored,
                                 uint64_t *n_full) {
    if (n_screened) *n_screened = s ? s->scr_n_screened : 0;
    if (n_rescored) *n_rescored = s ? s->scr_n_rescored : 0;
    if (n_full) *n_full = s ? s->scr_n_full : 0;
}
