/*
 * sess_batch.c -- batched evaluation: tokens of many sessions of one model in one
 * forward step (bitnet_batch_*).
 *
 * Decoding one token reads every weight once, so N sessions decoding on their own read
 * the weights N times per step.  A batch reads them once for all: the sessions' tokens
 * are stacked into one step (lib/fwd_pass.c), attention runs per token against its own
 * session's KV cache, and each session's outputs land in its own buffers, exactly as
 * bitnet_session_eval would leave them (bit for bit: the kernels compute every token's
 * outputs independently of the other tokens of a step).
 *
 * add() validates everything (ids, context room, output buffers, attention scratch)
 * and copies the tokens, so eval() can only fail for want of memory (or when a session
 * changed under the batch).  eval() cuts the queued tokens into steps of at most
 * n_tokens: entries in the order they were added, a long entry split across steps
 * (its positions simply continue).  The batch has its own buffers and threads; the
 * sessions' own are not used (nor made).
 */
#include "sess_impl.h"

#include <unistd.h>

typedef struct bn_batch_entry {
    bitnet_session *s;
    size_t          off, n;     /* tokens: b->tok[off .. off + n)             */
    size_t          done;       /* evaluated so far (during eval)            */
    uint32_t        flags;      /* BITNET_BATCH_*                            */
} bn_batch_entry;

struct bitnet_batch {
    const bitnet_model *m;
    bitnet_batch_params p;
    bn_work             work;
    bn_batch_entry     *e;
    size_t              n_e, cap_e;
    bitnet_token       *tok;
    size_t              n_tok, cap_tok;
    bn_fwd_seg         *seg;    /* cap_e segments                              */
    bn_prof             prof;   /* bitnet_batch_set_profiling                   */
};

void bitnet_batch_default_params(bitnet_batch_params *p, size_t struct_size) {
    bitnet_batch_params d;
    memset(&d, 0, sizeof d);
    d.n_tokens = 512;
    bn_params_default(p, struct_size, &d, sizeof d);
}

bitnet_status bitnet_batch_create(const bitnet_model *m, const bitnet_batch_params *params, bitnet_batch **out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_batch_create: out is NULL");
    *out = NULL;
    if (!m) return bn_err(BITNET_E_INVALID_ARG, "bitnet_batch_create: model is NULL");
    if (m->vocab_only)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_batch_create: the model was loaded with vocab_only");
    bitnet_batch_params p;
    bitnet_batch_default_params(&p, sizeof p);
    bitnet_status st = bn_params_read(&p, sizeof p, params, "batch");
    if (st != BITNET_OK) return st;
    if (p.n_tokens == 0) p.n_tokens = 512;
    if (p.n_tokens > (1u << 16))
        return bn_err(BITNET_E_INVALID_ARG, "batch params: n_tokens %u is too large (max %u)", p.n_tokens, 1u << 16);
    if (p.n_threads == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        p.n_threads = c > 0 ? (uint32_t)c : 1;
    }
    if (p.n_threads > 256) p.n_threads = 256;
    bitnet_batch *b = bn_calloc(1, sizeof *b);
    if (!b) return bn_err(BITNET_E_NOMEM, "out of memory for a batch");
    b->m = m;
    b->p = p;
    st = bn_work_init(&b->work, m, p.n_tokens, 1, (int)p.n_threads);
    if (st != BITNET_OK) {
        bn_free(b);
        return st;
    }
    *out = b;
    return BITNET_OK;
}

void bitnet_batch_clear(bitnet_batch *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n_e; i++) b->e[i].s->batch = NULL;
    b->n_e = 0;
    b->n_tok = 0;
}

void bitnet_batch_free(bitnet_batch *b) {
    if (!b) return;
    bitnet_batch_clear(b);
    bn_work_free(&b->work);
    bn_free(b->e);
    bn_free(b->tok);
    bn_free(b->seg);
    bn_free(b);
}

void bn_batch_forget(bitnet_batch *b, bitnet_session *s) {
    for (size_t i = 0; i < b->n_e; i++)
        if (b->e[i].s == s) {
            memmove(&b->e[i], &b->e[i + 1], (b->n_e - i - 1) * sizeof *b->e);
            b->n_e--;
            break;
        }
    s->batch = NULL;
}

size_t bitnet_batch_n_tokens(const bitnet_batch *b) { return b ? b->n_tok : 0; }

void bitnet_batch_set_profiling(bitnet_batch *b, int on) {
    if (!b) return;
    memset(&b->prof, 0, sizeof b->prof);
    b->work.prof = on ? &b->prof : NULL;
}

void bitnet_batch_get_profile(const bitnet_batch *b, bitnet_profile *p, size_t struct_size) {
    bn_prof_export(b ? &b->prof : NULL, p, struct_size);
}

static bitnet_status bn_batch_reserve(bitnet_batch *b, size_t n_tok) {
    if (b->n_e == b->cap_e) {
        size_t cap = b->cap_e ? 2 * b->cap_e : 16;
        bn_batch_entry *e = bn_realloc(b->e, cap * sizeof *e);
        if (!e) return bn_err(BITNET_E_NOMEM, "out of memory for a batch of %zu sessions", cap);
        b->e = e;
        bn_fwd_seg *g = bn_realloc(b->seg, cap * sizeof *g);
        if (!g) return bn_err(BITNET_E_NOMEM, "out of memory for a batch of %zu sessions", cap);
        b->seg = g;
        b->cap_e = cap;
    }
    if (b->n_tok + n_tok > b->cap_tok) {
        size_t cap = b->cap_tok ? b->cap_tok : 256;
        while (cap < b->n_tok + n_tok) cap *= 2;
        bitnet_token *t = bn_realloc(b->tok, cap * sizeof *t);
        if (!t) return bn_err(BITNET_E_NOMEM, "out of memory for %zu batched tokens", cap);
        b->tok = t;
        b->cap_tok = cap;
    }
    return BITNET_OK;
}

bitnet_status bitnet_batch_add(bitnet_batch *b, bitnet_session *s, const bitnet_token *tokens, size_t n,
                               uint32_t flags) {
    if (!b) return bn_err(BITNET_E_INVALID_ARG, "bitnet_batch_add: batch is NULL");
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_batch_add: session is NULL");
    if (flags & ~(uint32_t)(BITNET_BATCH_LOGITS_ALL | BITNET_BATCH_NO_LOGITS) ||
        (flags & BITNET_BATCH_LOGITS_ALL && flags & BITNET_BATCH_NO_LOGITS))
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_batch_add: bad flags 0x%x", flags));
    if (s->m != b->m)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG,
                                         "bitnet_batch_add: the session runs another model than the batch"));
    if (s->batch)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_batch_add: the session is already in %s",
                                         s->batch == b ? "this batch (add all its tokens at once)" : "another batch"));
    bitnet_status st = bn_session_eval_prepare(s, tokens, n, flags, "bitnet_batch_add");
    if (st == BITNET_OK) st = bn_work_reserve_ctx(&b->work, s->n_ctx);
    if (st == BITNET_OK) st = bn_batch_reserve(b, n);
    if (st != BITNET_OK) return bn_session_fail(s, st);
    memcpy(b->tok + b->n_tok, tokens, n * sizeof *tokens);
    b->e[b->n_e++] = (bn_batch_entry){s, b->n_tok, n, 0, flags};
    b->n_tok += n;
    s->batch = b;
    return BITNET_OK;
}

bitnet_status bitnet_batch_eval(bitnet_batch *b) {
    if (!b) return bn_err(BITNET_E_INVALID_ARG, "bitnet_batch_eval: batch is NULL");
    bitnet_status st = BITNET_OK;
    for (size_t i = 0; i < b->n_e; i++) { /* a session reset or restored since add() */
        const bitnet_session *s = b->e[i].s;
        if ((size_t)s->n_past + b->e[i].n > s->n_ctx) {
            st = bn_err(BITNET_E_CONTEXT_FULL, "bitnet_batch_eval: a session's context changed since its tokens were "
                        "added: %u + %zu tokens exceed n_ctx %u", s->n_past, b->e[i].n, s->n_ctx);
            goto done;
        }
    }
    for (size_t i = 0; i < b->n_e; i++) {
        b->e[i].done = 0;
        bn_session_drop_outputs(b->e[i].s);
    }
    /* steps of at most n_tokens tokens, entries in order, long ones split */
    for (size_t first = 0; first < b->n_e;) {
        size_t budget = b->work.n_batch;
        int n_seg = 0;
        for (size_t i = first; i < b->n_e && budget > 0; i++) {
            bn_batch_entry *e = &b->e[i];
            size_t nb = e->n - e->done < budget ? e->n - e->done : budget;
            bn_session_segment(e->s, b->tok + e->off, e->n, e->done, nb, e->flags, &b->seg[n_seg++]);
            budget -= nb;
        }
        if ((st = bn_fwd_eval(&b->work, b->seg, n_seg)) != BITNET_OK) goto done;
        for (int k = 0; k < n_seg; k++) {
            bn_batch_entry *e = &b->e[first];
            e->done += (size_t)b->seg[k].n;
            if (e->done == e->n) first++;
        }
    }
    for (size_t i = 0; i < b->n_e; i++) bn_session_eval_commit(b->e[i].s, b->tok + b->e[i].off, b->e[i].n, b->e[i].flags);
done:
    if (st != BITNET_OK)
        for (size_t i = 0; i < b->n_e; i++) {
            bn_session_drop_outputs(b->e[i].s);
            bn_session_fail(b->e[i].s, st);
        }
    bitnet_batch_clear(b);
    return st;
}
