/*
 * gen_beam.c -- beam search over a session (bitnet_session_beam_search).
 *
 * Beam search keeps n_beams hypotheses (token sequence, sum of log-probabilities, the
 * log-softmax of its last logits).  At each step every live beam proposes its n_beams
 * best next tokens; the n_beams best of all proposals and of the already-ended beams
 * survive.  A beam ends when it proposes an EOG token (not included in its sequence).
 * No length normalisation.
 *
 * Every live beam owns a slot: a session holding the prompt and the beam's tokens in
 * its KV cache (slot 0 is the caller's session).  A surviving child takes over its
 * parent's slot; further children of the same parent get a copy of it in a free slot
 * (copy-on-branch, a memory copy of the cache rows, no evaluation).  Then the new
 * token of every live beam is evaluated in one batch, so a step costs one forward step
 * of n_beams tokens whatever the length (evaluation results do not depend on
 * batching, so the search is the same as evaluating each hypothesis alone).  At the end
 * the caller's session is made to hold the prompt and the best sequence.
 */
#include "gen_sampler.h"
#include "sess.h"

#include <math.h>
#include <stdlib.h>

static size_t bn_min_size(size_t a, size_t b) { return a < b ? a : b; }

typedef struct bn_beam {
    bitnet_token *seq;   /* generated tokens (capacity max_len) */
    size_t        n;
    double        score; /* sum of log-probabilities            */
    int           ended; /* proposed an EOG token               */
    float        *logp;  /* log-softmax of the last logits (live beams) */
    int           slot;  /* the session holding it (live beams), else -1 */
} bn_beam;

typedef struct bn_proposal {
    double       score;
    size_t       beam;
    bitnet_token tok; /* -1: carry an ended beam over unchanged */
} bn_proposal;

static int bn_prop_cmp(const void *pa, const void *pb) {
    const bn_proposal *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->beam != b->beam) return a->beam < b->beam ? -1 : 1;
    return (a->tok > b->tok) - (a->tok < b->tok);
}

/* Log-softmax of the session's last logits into dst. */
static bitnet_status bn_last_logp(bitnet_session *s, int32_t n_vocab, float *dst) {
    const float *l = NULL;
    bitnet_status st = bitnet_session_logits(s, -1, &l);
    if (st != BITNET_OK) return st;
    float mx = -INFINITY;
    for (int32_t i = 0; i < n_vocab; i++)
        if (l[i] > mx) mx = l[i];
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) sum += exp((double)l[i] - (double)mx);
    double lse = (double)mx + log(sum);
    for (int32_t i = 0; i < n_vocab; i++) dst[i] = isnan(l[i]) ? -INFINITY : (float)((double)l[i] - lse);
    return BITNET_OK;
}

/* Make the session hold base tokens followed by seq[0..n), evaluating only what
 * differs from what it holds now (the final answer of an ended beam). */
static bitnet_status bn_session_goto(bitnet_session *s, size_t base, const bitnet_token *seq, size_t n) {
    size_t have = 0;
    const bitnet_token *cur = bn_session_tokens(s, &have);
    size_t common = 0;
    while (common < n && base + common < have && cur[base + common] == seq[common]) common++;
    /* Logits are those of the last evaluated token: if nothing is left to evaluate we
     * still need that token's logits, so re-evaluate at least one. */
    if (common == n && base + n == have) return BITNET_OK;
    bitnet_token last;
    if (n == 0) { /* back to the prompt itself */
        last = cur[base - 1];
        bitnet_status st = bitnet_session_truncate(s, (uint32_t)(base - 1));
        return st != BITNET_OK ? st : bitnet_session_eval(s, &last, 1);
    }
    if (common == n) common--;
    bitnet_status st = bitnet_session_truncate(s, (uint32_t)(base + common));
    if (st != BITNET_OK) return st;
    return bitnet_session_eval(s, seq + common, n - common);
}

bitnet_status bitnet_session_beam_search(bitnet_session *s, const bitnet_token *prompt, size_t n_prompt,
                                         uint32_t n_beams, int32_t max_tokens, bitnet_token *out, size_t cap,
                                         size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_beam_search: session is NULL");
    if (n_beams == 0 || n_beams > 64)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_beam_search: n_beams must be "
                                         "in [1, 64], got %u", n_beams));
    if (n_prompt && !prompt)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_beam_search: prompt is NULL"));
    const bitnet_model *m = bn_session_model(s);
    int64_t nv = bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    if (nv <= 0 || nv > INT32_MAX)
        return bn_session_fail(s, bn_err(BITNET_E_INTERNAL, "beam search: model has n_vocab %lld", (long long)nv));
    int32_t n_vocab = (int32_t)nv;

    bitnet_status st = BITNET_OK;
    if (n_prompt) {
        st = bitnet_session_eval(s, prompt, n_prompt);
        if (st != BITNET_OK) return bn_session_fail(s, st);
    } else if (bitnet_session_n_past(s) == 0) {
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_beam_search: no prompt and the "
                                         "session is empty"));
    }
    size_t base = bitnet_session_n_past(s);
    uint32_t n_ctx = bitnet_session_n_ctx(s);
    size_t room = n_ctx > base ? n_ctx - base : 0;
    size_t max_len = max_tokens < 0 ? room : bn_min_size((size_t)max_tokens, room);
    if (max_tokens >= 0 && (size_t)max_tokens > room)
        BN_LOG_INFO("beam search: only %zu tokens fit in the context", room);

    /* Two generations of beams (current and next) + proposals; slots (sessions) for
     * the live beams and a batch to step them together. */
    bn_beam *cur = bn_calloc(n_beams, sizeof *cur), *nxt = bn_calloc(n_beams, sizeof *nxt);
    bn_proposal *props = bn_mallocn((size_t)n_beams * (n_beams + 1), sizeof *props);
    bn_cand *cand = bn_mallocn((size_t)n_vocab, sizeof *cand);
    bitnet_token *tmp = bn_mallocn(max_len + 1, sizeof *tmp);
    bitnet_session **slot = bn_calloc(n_beams, sizeof *slot);
    int *slot_used = bn_calloc(n_beams, sizeof *slot_used), *child_of = bn_calloc(n_beams, sizeof *child_of);
    bitnet_batch *batch = NULL;
    int ok = cur && nxt && props && cand && tmp && slot && slot_used && child_of;
    for (uint32_t b = 0; ok && b < n_beams; b++) {
        cur[b].seq = bn_mallocn(max_len + 1, sizeof(bitnet_token));
        nxt[b].seq = bn_mallocn(max_len + 1, sizeof(bitnet_token));
        cur[b].logp = bn_mallocn((size_t)n_vocab, sizeof(float));
        nxt[b].logp = bn_mallocn((size_t)n_vocab, sizeof(float));
        ok = cur[b].seq && nxt[b].seq && cur[b].logp && nxt[b].logp;
    }
    if (!ok) {
        st = bn_err(BITNET_E_NOMEM, "beam search: out of memory for %u beams", n_beams);
        goto done;
    }
    slot[0] = s;
    if (n_beams > 1 && max_len > 0) {
        bitnet_batch_params bp;
        bitnet_batch_default_params(&bp, sizeof bp);
        bp.n_tokens = n_beams;
        bp.n_threads = bn_session_n_threads(s);
        st = bitnet_batch_create(m, &bp, &batch);
        for (uint32_t b = 1; st == BITNET_OK && b < n_beams; b++)
            st = bn_session_spawn(s, (uint32_t)(base + max_len), &slot[b]);
        if (st != BITNET_OK) goto done;
    }

    size_t n_cur = 1;
    cur[0].n = 0;
    cur[0].score = 0.0;
    cur[0].ended = 0;
    cur[0].slot = 0;
    st = bn_last_logp(s, n_vocab, cur[0].logp);
    if (st != BITNET_OK) goto done;

    for (size_t step = 0; step < max_len; step++) {
        size_t n_props = 0, live = 0;
        for (size_t b = 0; b < n_cur; b++) {
            if (cur[b].ended) {
                props[n_props++] = (bn_proposal){cur[b].score, b, -1};
                continue;
            }
            live++;
            /* this beam's n_beams best next tokens */
            for (int32_t i = 0; i < n_vocab; i++) cand[i] = (bn_cand){cur[b].logp[i], 0.0f, i};
            size_t k = bn_min_size(n_beams, (size_t)n_vocab);
            /* partial selection: k passes (n_beams is small) */
            for (size_t j = 0; j < k; j++) {
                size_t best = j;
                for (size_t i = j + 1; i < (size_t)n_vocab; i++)
                    if (cand[i].logit > cand[best].logit ||
                        (cand[i].logit == cand[best].logit && cand[i].id < cand[best].id))
                        best = i;
                bn_cand t = cand[j]; cand[j] = cand[best]; cand[best] = t;
                props[n_props++] = (bn_proposal){cur[b].score + (double)cand[j].logit, b, cand[j].id};
            }
        }
        if (live == 0) break;
        qsort(props, n_props, sizeof *props, bn_prop_cmp);
        size_t n_nxt = bn_min_size(n_props, n_beams);
        /* the survivors; extended ones need a slot holding their parent's state */
        for (uint32_t b = 0; b < n_beams; b++) slot_used[b] = 0, child_of[b] = 0;
        for (size_t j = 0; j < n_nxt; j++) {
            const bn_proposal *pr = &props[j];
            const bn_beam *src = &cur[pr->beam];
            bn_beam *dst = &nxt[j];
            memcpy(dst->seq, src->seq, src->n * sizeof *src->seq);
            dst->n = src->n;
            dst->score = pr->score;
            dst->ended = src->ended;
            dst->slot = -1;
            if (pr->tok < 0) continue; /* an ended beam carried over */
            if (bitnet_token_is_eog(m, pr->tok)) {
                dst->ended = 1;
                continue;
            }
            dst->seq[dst->n++] = pr->tok;
            if (!child_of[pr->beam]++) { /* the first extended child inherits the slot */
                dst->slot = src->slot;
                slot_used[src->slot] = 1;
            }
        }
        /* further children: copies of the parent's slot into free ones, made before
         * any slot is extended */
        for (size_t j = 0; j < n_nxt; j++) {
            bn_beam *dst = &nxt[j];
            if (dst->ended || dst->slot >= 0) continue;
            uint32_t f = 0;
            while (slot_used[f]) f++;
            slot_used[f] = 1;
            dst->slot = (int)f;
            st = bitnet_session_copy(slot[f], slot[cur[props[j].beam].slot]);
            if (st != BITNET_OK) goto done;
        }
        /* one step for every extended beam */
        size_t n_live = 0;
        for (size_t j = 0; j < n_nxt; j++) {
            bn_beam *dst = &nxt[j];
            if (dst->ended) continue;
            n_live++;
            st = batch ? bitnet_batch_add(batch, slot[dst->slot], &dst->seq[dst->n - 1], 1, 0)
                       : bitnet_session_eval(slot[dst->slot], &dst->seq[dst->n - 1], 1);
            if (st != BITNET_OK) goto done;
        }
        if (batch && n_live) st = bitnet_batch_eval(batch);
        for (size_t j = 0; st == BITNET_OK && j < n_nxt; j++)
            if (!nxt[j].ended) st = bn_last_logp(slot[nxt[j].slot], n_vocab, nxt[j].logp);
        if (st != BITNET_OK) goto done;
        bn_beam *sw = cur; cur = nxt; nxt = sw;
        n_cur = n_nxt;
    }

    /* The best hypothesis (beams are sorted by score after every step, except when no
     * step ran: then the only beam is the empty one), held by the caller's session. */
    {
        size_t best = 0;
        for (size_t b = 1; b < n_cur; b++)
            if (cur[b].score > cur[best].score) best = b;
        size_t n = cur[best].n;
        memcpy(tmp, cur[best].seq, n * sizeof *tmp);
        if (!cur[best].ended && cur[best].slot > 0) st = bitnet_session_copy(s, slot[cur[best].slot]);
        else if (cur[best].ended || cur[best].slot < 0) st = bn_session_goto(s, base, tmp, n);
        if (st != BITNET_OK) goto done;
        if (out) memcpy(out, tmp, bn_min_size(n, cap) * sizeof *out);
        if (n_out) *n_out = n;
    }

done:
    bitnet_batch_free(batch);
    if (slot)
        for (uint32_t b = 1; b < n_beams; b++) bitnet_session_free(slot[b]);
    bn_free(slot);
    bn_free(slot_used);
    bn_free(child_of);
    for (uint32_t b = 0; b < n_beams; b++) {
        if (cur) { bn_free(cur[b].seq); bn_free(cur[b].logp); }
        if (nxt) { bn_free(nxt[b].seq); bn_free(nxt[b].logp); }
    }
    bn_free(cur);
    bn_free(nxt);
    bn_free(props);
    bn_free(cand);
    bn_free(tmp);
    return st == BITNET_OK ? st : bn_session_fail(s, st);
}
