/*
 * gen_spec.c -- speculative and lookup decoding (bitnet_session_set_speculation), used by
 * the generator (lib/gen_loop.c) through gen_spec.h.
 *
 * A step.  The generator has sampled token t (position P) and would evaluate it alone.
 * Instead a draft d[0..k) is made (below), [t, d0, .., d(k-1)] is evaluated in one
 * forward step with the logits of every position, and row i (the logits after d(i-1), or
 * after t for i = 0) judges d(i):
 *   greedy (temperature <= 0): d(i) is kept when it is the target's choice for row i;
 *   sampling: with p the target's distribution after the sampler chain (penalties over
 *     the context up to that row, top-k/top-p/min-p, temperature) and q the draft's,
 *     d(i) is kept with probability min(1, p(d)/q(d)); on rejection the token is drawn
 *     from max(0, p - q) normalised.  This is the speculative sampling rule: the token at
 *     every position has distribution p exactly.  A lookup draft is a point mass
 *     (q(d) = 1): keep with probability p(d), else draw from p without d.
 * At the first rejected draft (or after the last row, when all were kept) one more token
 * y is decided from that row, so a step always yields j + 1 tokens (j kept drafts).
 * The context is truncated to P + 1 + j: the kept drafts stay (their KV rows are exactly
 * those plain decoding computes), y is not evaluated yet; it is the next step's t.
 *
 * Drafts.  Lookup: the context plus t is searched for the most recent earlier occurrence
 * of its last n tokens (n from ngram_max down to ngram_min); the draft is what followed
 * it (continued periodically when the occurrence overlaps the end, so a loop drafts a
 * whole period).  Draft model: the draft session is brought to the same context with
 * bitnet_session_eval_prompt (only what it does not hold is evaluated: usually y alone,
 * since it evaluated the kept drafts while drafting) and then drafts token by token:
 * greedily when the target samples greedily, else from its own distribution q with the
 * same sampler params; it stops early when its most likely token has probability below
 * p_min.
 *
 * Adaptive length.  k starts at n_draft_max / 2 (at least 1: a first draft that fails
 * costs less); after a step with every draft kept it doubles (up to n_draft_max),
 * otherwise it becomes (kept + 1), halved when nothing was kept.  After two steps in a
 * row keeping nothing, drafting pauses for 1, 2, 4, ... 64 tokens (doubling while it
 * keeps failing, reset by a step that keeps something), so a source that never predicts
 * (random text) costs a verification of one or two extra tokens only every so often.  A
 * draft model that proposes nothing (its first token below p_min) counts as a failed
 * step too: its evaluation was paid for.  With greedy sampling the steps are also timed:
 * when verification steps (drafting included; decayed sums of their times and tokens)
 * yield more than 3% fewer tokens per second than plain steps (the median of the last
 * five plain steps' times, so that one step slowed down or sped up by other work on the
 * machine does not decide), twice in a row -- drafts accepted too rarely for what a
 * k-token step costs on this machine and model -- drafting pauses the same way (2, 4,
 * ... 64 tokens); to know the plain rate, every 16th step (the 2nd and 3rd at first) is
 * a plain one, and the steps of a pause are timed too.  This never changes the tokens
 * (greedy output is the same whatever is drafted); with sampling it would make the
 * tokens a seed gives depend on timing, so sampling uses only the counts above.
 *
 * The caller evaluating (bitnet_generator_draft, for a batched server).  The step is
 * split in two: bn_spec_plan decides the draft exactly as bn_spec_step would and hands
 * it out; the caller evaluates [t, d0, .., d(k-1)] itself (in a batch with other
 * sessions' tokens, every row's logits kept); bn_spec_planned_done, from the following
 * bitnet_generator_next, checks that the context holds exactly those tokens and applies
 * the same acceptance, rollback and adaptation (bn_spec_accept).  The greedy timing then
 * spans from the plan to the verification, i.e. includes the other sessions' share of
 * the batched step.
 */
#include "gen_spec.h"

#include "sess_impl.h"

#include <math.h>
#include <time.h>

#define BN_SPEC_PLAIN_WIN 5

struct bn_spec {
    bitnet_spec_params p;
    int32_t            n_vocab;
    size_t             k_cur;     /* the draft length to try next                      */
    int                fail_run;  /* steps in a row that kept nothing                    */
    size_t             pause;     /* tokens to go without drafting                       */
    size_t             pause_len; /* the last pause                                      */
    bitnet_token      *ctx;       /* n_ctx + 1: the context plus the pending token       */
    bitnet_token       draft[BN_SPEC_MAX_DRAFT];
    bitnet_token       step[BN_SPEC_MAX_DRAFT + 1];
    float             *q;         /* DRAFT + sampling: the draft's distributions, rows   */
    float             *pd;        /* n_vocab: the target's distribution, dense           */
    bn_cand           *cand;      /* n_vocab                                             */
    bitnet_token       queue[BN_SPEC_MAX_DRAFT + 1];
    size_t             q_head, q_n, q_ctx; /* queue[q_head..q_n); the first q_ctx of those
                                              are in the context                           */
    size_t             drafted, accepted, steps;
    /* greedy: measured throughput, plain steps (the last few times) against verification
     * steps (decayed sums) */
    double             plain_t[BN_SPEC_PLAIN_WIN];
    size_t             plain_cnt;
    double             spec_ns, spec_tok;
    int                slow_run;    /* greedy: verification steps in a row slower than plain */
    size_t             since_plain; /* greedy: verification steps since the last plain one */
    size_t             tpause_len;  /* greedy: the last pause for being slower than plain   */
    /* bn_spec_plan: a step the caller evaluates */
    int                planned;
    uint32_t           plan_P;
    size_t             plan_k;
    bitnet_token       plan_pending;
    double             plan_t0;
};

static double bn_spec_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

void bitnet_spec_default_params(bitnet_spec_params *p, size_t struct_size) {
    bitnet_spec_params d;
    memset(&d, 0, sizeof d);
    d.mode = BITNET_SPEC_NONE;
    d.n_draft_max = 8;
    d.n_draft_min = 0;
    d.ngram_min = 1;
    d.ngram_max = 4;
    d.p_min = 0.5f;
    d.draft = NULL;
    bn_params_default(p, struct_size, &d, sizeof d);
}

/* The two models' vocabularies agree: same size, same text for every token. */
static bitnet_status bn_spec_same_vocab(const bitnet_model *a, const bitnet_model *b) {
    int64_t na = bitnet_model_get_info(a, BITNET_INFO_N_VOCAB), nb = bitnet_model_get_info(b, BITNET_INFO_N_VOCAB);
    if (na != nb)
        return bn_err(BITNET_E_UNSUPPORTED, "bitnet_session_set_speculation: the draft model's vocabulary has %lld "
                      "tokens, the target's %lld: a draft model must share the target's vocabulary",
                      (long long)nb, (long long)na);
    for (int64_t i = 0; i < na; i++) {
        const char *ta = bitnet_token_text(a, (bitnet_token)i), *tb = bitnet_token_text(b, (bitnet_token)i);
        if (!ta || !tb || strcmp(ta, tb) != 0)
            return bn_err(BITNET_E_UNSUPPORTED, "bitnet_session_set_speculation: token %lld is \"%.40s\" in the "
                          "target's vocabulary but \"%.40s\" in the draft model's: a draft model must share the "
                          "target's vocabulary", (long long)i, ta ? ta : "", tb ? tb : "");
    }
    return BITNET_OK;
}

bitnet_status bitnet_session_set_speculation(bitnet_session *s, const bitnet_spec_params *in) {
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_set_speculation: session is NULL");
    bitnet_spec_params p;
    bitnet_spec_default_params(&p, sizeof p);
    bitnet_status st = in ? bn_params_read(&p, sizeof p, in, "speculation") : BITNET_OK;
    if (st != BITNET_OK) return bn_session_fail(s, st);
    if (p.mode != BITNET_SPEC_NONE && p.mode != BITNET_SPEC_LOOKUP && p.mode != BITNET_SPEC_DRAFT)
        st = bn_err(BITNET_E_INVALID_ARG, "speculation params: unknown mode %d", (int)p.mode);
    else if (p.n_draft_max < 1 || p.n_draft_max > BN_SPEC_MAX_DRAFT)
        st = bn_err(BITNET_E_INVALID_ARG, "speculation params: n_draft_max %d is outside 1..%d", (int)p.n_draft_max,
                    BN_SPEC_MAX_DRAFT);
    else if (p.n_draft_min < 0 || p.n_draft_min > p.n_draft_max)
        st = bn_err(BITNET_E_INVALID_ARG, "speculation params: n_draft_min %d is outside 0..n_draft_max (%d)",
                    (int)p.n_draft_min, (int)p.n_draft_max);
    else if (p.mode == BITNET_SPEC_LOOKUP && (p.ngram_max < 1 || p.ngram_max > 16 || p.ngram_min < 1 ||
                                              p.ngram_min > p.ngram_max))
        st = bn_err(BITNET_E_INVALID_ARG, "speculation params: n-gram sizes %d..%d (need 1 <= ngram_min <= "
                    "ngram_max <= 16)", (int)p.ngram_min, (int)p.ngram_max);
    else if (p.mode == BITNET_SPEC_DRAFT && !(p.p_min >= 0.0f && p.p_min <= 1.0f))
        st = bn_err(BITNET_E_INVALID_ARG, "speculation params: p_min %g is outside [0, 1]", (double)p.p_min);
    else if (p.mode == BITNET_SPEC_DRAFT && !p.draft)
        st = bn_err(BITNET_E_INVALID_ARG, "speculation params: mode DRAFT needs a draft session");
    else if (p.mode == BITNET_SPEC_DRAFT && p.draft == s)
        st = bn_err(BITNET_E_INVALID_ARG, "speculation params: the draft session is the target session itself");
    else if (p.mode == BITNET_SPEC_DRAFT)
        st = bn_spec_same_vocab(s->m, p.draft->m);
    if (st != BITNET_OK) return bn_session_fail(s, st);
    if (p.mode != BITNET_SPEC_DRAFT) p.draft = NULL;
    s->spec = p;
    s->spec_drafted = s->spec_accepted = s->spec_steps = 0;
    return BITNET_OK;
}

void bitnet_session_get_spec_stats(const bitnet_session *s, bitnet_generator_stats *stats, size_t struct_size) {
    bitnet_generator_stats d;
    memset(&d, 0, sizeof d);
    if (s) {
        d.n_drafted = s->spec_drafted;
        d.n_accepted = s->spec_accepted;
        d.n_spec_steps = s->spec_steps;
    }
    bn_params_default(stats, struct_size, &d, sizeof d);
}

const bitnet_spec_params *bn_spec_params_of(const bitnet_session *s) {
    return s && s->spec.struct_size && s->spec.mode != BITNET_SPEC_NONE ? &s->spec : NULL;
}

bitnet_status bn_spec_create(bitnet_session *s, bn_spec **out) {
    *out = NULL;
    const bitnet_spec_params *p = bn_spec_params_of(s);
    if (!p) return BITNET_OK;
    bn_spec *sp = bn_calloc(1, sizeof *sp);
    if (!sp) return bn_err(BITNET_E_NOMEM, "out of memory for speculation state");
    sp->p = *p;
    sp->n_vocab = (int32_t)s->m->hp.n_vocab;
    sp->k_cur = p->n_draft_max > 1 ? (size_t)p->n_draft_max / 2 : 1;
    sp->ctx = bn_mallocn((size_t)s->n_ctx + 1, sizeof *sp->ctx);
    sp->pd = bn_mallocn((size_t)sp->n_vocab, sizeof *sp->pd);
    sp->cand = bn_mallocn((size_t)sp->n_vocab, sizeof *sp->cand);
    if (p->mode == BITNET_SPEC_DRAFT) sp->q = bn_mallocn((size_t)p->n_draft_max * (size_t)sp->n_vocab, sizeof *sp->q);
    if (!sp->ctx || !sp->pd || !sp->cand || (p->mode == BITNET_SPEC_DRAFT && !sp->q)) {
        bn_spec_free(sp);
        return bn_err(BITNET_E_NOMEM, "out of memory for speculation state");
    }
    *out = sp;
    return BITNET_OK;
}

void bn_spec_free(bn_spec *sp) {
    if (!sp) return;
    bn_free(sp->ctx);
    bn_free(sp->pd);
    bn_free(sp->cand);
    bn_free(sp->q);
    bn_free(sp);
}

size_t bn_spec_queued(const bn_spec *sp) { return sp ? sp->q_n - sp->q_head : 0; }
size_t bn_spec_queued_in_ctx(const bn_spec *sp) { return sp ? sp->q_ctx : 0; }

bitnet_token bn_spec_pop(bn_spec *sp, int *in_ctx) {
    *in_ctx = sp->q_ctx > 0;
    if (sp->q_ctx) sp->q_ctx--;
    return sp->queue[sp->q_head++];
}

void bn_spec_clear(bn_spec *sp) {
    if (sp) sp->q_head = sp->q_n = sp->q_ctx = 0;
}

void bn_spec_counts(const bn_spec *sp, size_t *drafted, size_t *accepted, size_t *steps) {
    *drafted = sp ? sp->drafted : 0;
    *accepted = sp ? sp->accepted : 0;
    *steps = sp ? sp->steps : 0;
}

/* ---- drafts ------------------------------------------------------------------------------- */

/* Lookup: fill sp->draft from ctx[0..n) (n >= 1); returns the draft length (<= k). */
static size_t bn_spec_lookup(bn_spec *sp, const bitnet_token *ctx, size_t n, size_t k) {
    for (size_t g = (size_t)sp->p.ngram_max; g >= (size_t)sp->p.ngram_min; g--) {
        if (g >= n) continue;
        const bitnet_token *key = ctx + n - g;
        for (size_t start = n - g; start-- > 0;) {
            if (ctx[start] != key[0] || memcmp(ctx + start, key, g * sizeof *key) != 0) continue;
            /* what followed, continued periodically past the end */
            for (size_t i = 0; i < k; i++) {
                size_t at = start + g + i;
                sp->draft[i] = at < n ? ctx[at] : sp->draft[at - n];
            }
            return k;
        }
    }
    return 0;
}

/* Probability of the most likely token of logits[0..n) at temperature 1. */
static float bn_spec_top_p(const float *logits, int32_t n) {
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    if (mx == -INFINITY) return 1.0f;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) sum += exp((double)logits[i] - (double)mx);
    return (float)(1.0 / sum);
}

/* Draft model: bring the draft session to ctx[0..n) and draft up to k tokens. */
static bitnet_status bn_spec_draft_model(bn_spec *sp, const bitnet_sampler_params *smp, const bitnet_token *ctx,
                                         size_t n, size_t k, size_t *got) {
    bitnet_session *ds = sp->p.draft;
    *got = 0;
    if (n + k > ds->n_ctx) k = ds->n_ctx > n ? ds->n_ctx - n : 0;
    if (k == 0) return BITNET_OK;
    bitnet_status st = bitnet_session_eval_prompt(ds, ctx, n, NULL);
    if (st != BITNET_OK) return st;
    const int greedy = smp->temperature <= 0.0f;
    const int32_t nv = sp->n_vocab;
    for (size_t i = 0; i < k; i++) {
        const float *logits = NULL;
        /* greedy without p_min needs the draft's choice only: its screened logits when its
         * model screens the output layer (exact for every token that can be chosen) */
        if (greedy && sp->p.p_min <= 0.0f) st = bn_session_sample_logits(ds, smp, &logits);
        else st = bitnet_session_logits(ds, -1, &logits);
        if (st != BITNET_OK) return st;
        bitnet_token d;
        if (greedy) {
            size_t nc = 0;
            if ((st = bn_sampler_candidates(logits, nv, ds->tokens, ds->n_past, smp, sp->cand, &nc)) != BITNET_OK)
                return st;
            d = sp->cand[0].id;
            if (sp->p.p_min > 0.0f && bn_spec_top_p(logits, nv) < sp->p.p_min) break;
        } else {
            size_t nc = 0;
            if ((st = bn_sampler_candidates(logits, nv, ds->tokens, ds->n_past, smp, sp->cand, &nc)) != BITNET_OK)
                return st;
            if (sp->p.p_min > 0.0f && sp->cand[0].p < sp->p.p_min) break;
            float *q = sp->q + i * (size_t)nv;
            memset(q, 0, (size_t)nv * sizeof *q);
            for (size_t c = 0; c < nc; c++) q[sp->cand[c].id] = sp->cand[c].p;
            d = bn_sampler_draw(sp->cand, nc, ds->rng);
        }
        sp->draft[i] = d;
        *got = i + 1;
        if (i + 1 < k && (st = bitnet_session_eval(ds, &d, 1)) != BITNET_OK) return st;
    }
    return BITNET_OK;
}

/* ---- verification ---------------------------------------------------------------------------- */

/* Evaluate tokens[0..n) into s in one forward step (n <= n_batch) keeping every row's logits. */
static bitnet_status bn_spec_eval_all(bitnet_session *s, const bitnet_token *tokens, size_t n) {
    bitnet_status st = bn_session_eval_prepare(s, tokens, n, BITNET_BATCH_LOGITS_ALL, "speculation");
    if (st == BITNET_OK) st = bn_session_ensure_work(s);
    if (st != BITNET_OK) return st;
    bn_session_drop_outputs(s);
    for (size_t done = 0; done < n;) {
        size_t nb = n - done < (size_t)s->work.n_batch ? n - done : (size_t)s->work.n_batch;
        bn_fwd_seg g;
        bn_session_segment(s, tokens, n, done, nb, BITNET_BATCH_LOGITS_ALL, &g);
        if ((st = bn_fwd_eval(&s->work, &g, 1)) != BITNET_OK) return st;
        done += nb;
    }
    bn_session_eval_commit(s, tokens, n, BITNET_BATCH_LOGITS_ALL);
    return BITNET_OK;
}

/* Draw from w[0..n_vocab) (non-negative weights summing to total > 0). */
static bitnet_token bn_spec_draw_dense(const float *w, int32_t n, double total, uint64_t rng[4]) {
    double u = bn_rng_uniform(rng) * total, cum = 0.0;
    bitnet_token last = 0;
    for (int32_t i = 0; i < n; i++) {
        if (w[i] <= 0.0f) continue;
        cum += w[i];
        last = i;
        if (u < cum) return i;
    }
    return last;
}

/* Greedy: after a verification step, compare the tokens per second of verification steps
 * with those of plain steps (both measured here, decayed); when speculation is the slower
 * one, pause it as after a failure.  The tokens are the same either way. */
/* The median of the plain steps' times kept (the typical cost of a token: one step slowed
 * down or sped up by other work on the machine does not move it). */
static double bn_spec_plain_median(const bn_spec *sp) {
    double v[BN_SPEC_PLAIN_WIN];
    size_t n = sp->plain_cnt < BN_SPEC_PLAIN_WIN ? sp->plain_cnt : BN_SPEC_PLAIN_WIN;
    memcpy(v, sp->plain_t, n * sizeof *v);
    for (size_t i = 1; i < n; i++) /* insertion sort: at most BN_SPEC_PLAIN_WIN values */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void bn_spec_adapt_time(bn_spec *sp, double dt, size_t kept) {
    sp->spec_ns = 0.75 * sp->spec_ns + dt;
    sp->spec_tok = 0.75 * sp->spec_tok + (double)(kept + 1);
    if (sp->plain_cnt == 0 || sp->pause) return; /* nothing to compare with yet */
    const double plain_rate = 1.0 / bn_spec_plain_median(sp), spec_rate = sp->spec_tok / sp->spec_ns;
    /* slower by more than noise, twice in a row: pause */
    if (spec_rate < 0.97 * plain_rate && ++sp->slow_run >= 2) {
        sp->slow_run = 0;
        sp->tpause_len = sp->tpause_len ? (sp->tpause_len * 2 > 64 ? 64 : sp->tpause_len * 2) : 2;
        if (sp->pause < sp->tpause_len) sp->pause = sp->tpause_len;
    } else if (spec_rate >= 0.97 * plain_rate) {
        sp->slow_run = 0;
        sp->tpause_len = 0;
    }
}

static void bn_spec_adapt(bn_spec *sp, size_t k, size_t kept) {
    const size_t kmax = (size_t)sp->p.n_draft_max;
    if (kept == k) {
        sp->k_cur = sp->k_cur * 2 > kmax ? kmax : sp->k_cur * 2;
        sp->fail_run = 0;
        sp->pause_len = 0;
    } else if (kept > 0) {
        sp->k_cur = kept + 1;
        sp->fail_run = 0;
        sp->pause_len = 0;
    } else {
        sp->k_cur = sp->k_cur / 2 ? sp->k_cur / 2 : 1;
        if (++sp->fail_run >= 2) {
            sp->pause_len = sp->pause_len ? (sp->pause_len * 2 > 64 ? 64 : sp->pause_len * 2) : 1;
            sp->pause = sp->pause_len;
        }
    }
}

/* Decide the draft for a step of `pending` at position P = s->n_past (at most k_limit
 * tokens; into sp->draft): its length, 0 for a plain step. */
static bitnet_status bn_spec_make_draft(bn_spec *sp, bitnet_session *s, const bitnet_sampler_params *smp,
                                        bitnet_token pending, size_t k_limit, size_t *k_out) {
    const uint32_t P = s->n_past;
    const int greedy = smp->temperature <= 0.0f;
    size_t k = 0;
    *k_out = 0;
    if (k_limit > s->n_ctx - P - 1) k_limit = s->n_ctx - P - 1; /* room for pending and the draft */
    if (k_limit > BN_SPEC_MAX_DRAFT) k_limit = BN_SPEC_MAX_DRAFT;
    if (sp->pause) {
        sp->pause--;
    } else if (greedy && (sp->plain_cnt == 0 ? sp->since_plain >= 2 : sp->since_plain >= 16)) {
        /* a plain step now and then, to know what plain decoding costs */
    } else if (k_limit > 0) {
        size_t want = sp->k_cur < k_limit ? sp->k_cur : k_limit;
        memcpy(sp->ctx, s->tokens, P * sizeof *sp->ctx);
        sp->ctx[P] = pending;
        if (sp->p.mode == BITNET_SPEC_LOOKUP) {
            k = bn_spec_lookup(sp, sp->ctx, (size_t)P + 1, want);
        } else {
            bitnet_status st = bn_spec_draft_model(sp, smp, sp->ctx, (size_t)P + 1, want, &k);
            if (st != BITNET_OK) return st;
        }
        if (k < (size_t)sp->p.n_draft_min) k = 0;
        /* a draft model that proposes nothing still cost its evaluation: count the step as
         * a failed one so that drafting pauses when this keeps happening */
        if (k == 0 && sp->p.mode == BITNET_SPEC_DRAFT) bn_spec_adapt(sp, 1, 0);
    }
    *k_out = k;
    return BITNET_OK;
}

/* Greedy: a plain step of dt ns. */
static void bn_spec_plain_done(bn_spec *sp, double dt) {
    sp->plain_t[sp->plain_cnt++ % BN_SPEC_PLAIN_WIN] = dt;
    sp->since_plain = 0;
}

/* The acceptance rule over the rows s->logits[0..k] of an eval of [pending, draft[0..k)]
 * at position P (k >= 1), the rollback of the rejected drafts, the queue, the adaptation
 * (t0: when the step began, greedy timing). */
static bitnet_status bn_spec_accept(bn_spec *sp, bitnet_session *s, const bitnet_sampler_params *smp, uint32_t P,
                                    size_t k, double t0) {
    const int32_t nv = sp->n_vocab;
    const int greedy = smp->temperature <= 0.0f;
    bitnet_status st;
    sp->steps++;
    sp->drafted += k;
    size_t kept = 0;
    bitnet_token y = -1;
    for (size_t i = 0; i <= k; i++) {
        const float *row = s->logits + i * (size_t)nv;
        size_t nc = 0;
        /* the history this row was computed after: the context up to and including step[i] */
        if ((st = bn_sampler_candidates(row, nv, s->tokens, (size_t)P + 1 + i, smp, sp->cand, &nc)) != BITNET_OK)
            return st;
        if (i == k) { /* every draft kept: one more from the last row */
            y = bn_sampler_draw(sp->cand, nc, s->rng);
            break;
        }
        const bitnet_token d = sp->draft[i];
        if (greedy) {
            if (sp->cand[0].id == d) { kept++; continue; }
            y = sp->cand[0].id;
            break;
        }
        memset(sp->pd, 0, (size_t)nv * sizeof *sp->pd);
        for (size_t c = 0; c < nc; c++) sp->pd[sp->cand[c].id] = sp->cand[c].p;
        const float *q = sp->p.mode == BITNET_SPEC_DRAFT ? sp->q + i * (size_t)nv : NULL;
        const double pdv = sp->pd[d], qdv = q ? q[d] : 1.0;
        const double u = bn_rng_uniform(s->rng);

        if (qdv > 0.0 && u * qdv < pdv) { kept++; continue; }
        /* rejected: draw from max(0, p - q), normalised */
        double total = 0.0;
        for (int32_t x = 0; x < nv; x++) {
            float r = sp->pd[x] - (q ? q[x] : (x == d ? 1.0f : 0.0f));
            sp->pd[x] = r > 0.0f ? r : 0.0f;
            total += sp->pd[x];
        }
        if (total > 0.0) {
            y = bn_spec_draw_dense(sp->pd, nv, total, s->rng);
        } else { /* p <= q everywhere up to rounding: p itself */
            y = bn_sampler_draw(sp->cand, nc, s->rng);
        }
        break;
    }
    sp->accepted += kept;
    s->spec_drafted += k;
    s->spec_accepted += kept;
    s->spec_steps++;
    /* roll the rejected drafts back out of the KV cache */
    if ((st = bitnet_session_truncate(s, P + 1 + (uint32_t)kept)) != BITNET_OK) return st;
    memcpy(sp->queue, sp->draft, kept * sizeof *sp->draft);
    sp->queue[kept] = y;
    sp->q_head = 0;
    sp->q_n = kept + 1;
    sp->q_ctx = kept;
    bn_spec_adapt(sp, k, kept);
    if (greedy) {
        sp->since_plain++;
        bn_spec_adapt_time(sp, bn_spec_now_ns() - t0, kept);
    }
    return BITNET_OK;
}

bitnet_status bn_spec_step(bn_spec *sp, bitnet_session *s, const bitnet_sampler_params *smp, bitnet_token pending,
                           size_t k_limit, size_t *n_eval) {
    *n_eval = 0;
    bn_spec_clear(sp);
    sp->planned = 0;
    const uint32_t P = s->n_past;
    const int greedy = smp->temperature <= 0.0f;
    const double t0 = greedy ? bn_spec_now_ns() : 0.0; /* drafting included */
    size_t k = 0;
    bitnet_status st = bn_spec_make_draft(sp, s, smp, pending, k_limit, &k);
    if (st != BITNET_OK) return st;
    if (k == 0) { /* a plain step */
        st = bitnet_session_eval(s, &pending, 1);
        if (st == BITNET_OK) *n_eval = 1;
        if (st == BITNET_OK && greedy) bn_spec_plain_done(sp, bn_spec_now_ns() - t0);
        return st;
    }
    sp->step[0] = pending;
    memcpy(sp->step + 1, sp->draft, k * sizeof *sp->draft);
    if ((st = bn_spec_eval_all(s, sp->step, k + 1)) != BITNET_OK) return st;
    *n_eval = k + 1;
    return bn_spec_accept(sp, s, smp, P, k, t0);
}

bitnet_status bn_spec_plan(bn_spec *sp, bitnet_session *s, const bitnet_sampler_params *smp, bitnet_token pending,
                           size_t k_limit, bitnet_token *out, size_t *k_out) {
    bn_spec_clear(sp);
    sp->planned = 0;
    const int greedy = smp->temperature <= 0.0f;
    const double t0 = greedy ? bn_spec_now_ns() : 0.0;
    size_t k = 0;
    bitnet_status st = bn_spec_make_draft(sp, s, smp, pending, k_limit, &k);
    if (st != BITNET_OK) return st;
    memcpy(out, sp->draft, k * sizeof *out);
    sp->planned = 1;
    sp->plan_P = s->n_past;
    sp->plan_k = k;
    sp->plan_pending = pending;
    sp->plan_t0 = t0;
    *k_out = k;
    return BITNET_OK;
}

bitnet_status bn_spec_planned_done(bn_spec *sp, bitnet_session *s, const bitnet_sampler_params *smp, int *verified) {
    *verified = 0;
    if (!sp || !sp->planned) return BITNET_OK;
    sp->planned = 0;
    const uint32_t P = sp->plan_P;
    const size_t k = sp->plan_k;
    const int greedy = smp->temperature <= 0.0f;
    if (s->n_past == P + 1 && s->tokens[P] == sp->plan_pending) { /* the token alone */
        if (k == 0 && greedy) bn_spec_plain_done(sp, bn_spec_now_ns() - sp->plan_t0);
        return BITNET_OK; /* (drafts left out by the caller: nothing to verify) */
    }
    if (k == 0 || s->n_past != P + 1 + k) return BITNET_OK; /* not evaluated as planned: the caller's checks */
    if (s->tokens[P] != sp->plan_pending || memcmp(s->tokens + P + 1, sp->draft, k * sizeof *sp->draft) != 0)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_next: the context's last %zu tokens are not the ones "
                      "bitnet_generator_draft asked to evaluate", k + 1);
    if (!s->logits_kept_all || s->n_logits < (int64_t)(k + 1))
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_generator_next: the %zu tokens bitnet_generator_draft asked "
                      "for were evaluated without the logits of every one (BITNET_BATCH_LOGITS_ALL)", k + 1);
    *verified = 1;
    return bn_spec_accept(sp, s, smp, P, k, sp->plan_t0);
}
