/*
 * sched.c -- bitnet-server's scheduler: one thread owns the sessions and runs every
 * active job through one bitnet_batch, one forward step at a time (continuous
 * batching).
 *
 * Slots.  Each of the n_slots slots is a session that keeps its KV cache between jobs.
 * A queued job goes to the free slot whose cached tokens share the longest prefix with
 * its prompt (then the least recently used), so a follow-up request that repeats a
 * conversation evaluates only the new part.
 *
 * A step.  Every decoding slot contributes the token its generator returned last; then
 * the remaining budget (n_batch tokens) goes to prompts, at most prefill_chunk tokens of
 * each job per step, oldest first, so a long prompt advances in chunks while the others
 * keep decoding.  After the batch is evaluated, each decoding slot's generator samples
 * its next token (the generator sees the token it returned evaluated and only samples,
 * bitnet.h), and a slot whose prompt is complete gets a generator and its first token.
 * Embedding requests go through a separate session with params.embeddings, one input
 * at a time, chunk by chunk in the same steps, without logits (BITNET_BATCH_NO_LOGITS):
 * pooled as the model says (mean, first token, or last token as the BitNet embedding
 * models do), then L2-normalised.
 *
 * Cancellation (client gone, timeout, shutdown) is checked before every step; a slot
 * is freed at once.  Results do not depend on batching (bitnet_batch is exact), so a
 * greedy request gets the same tokens alone or among many.
 */
#include "server.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SRV_STEP_MAX 65 /* a token and a draft of at most 64 */

typedef struct srv_slot {
    bitnet_session   *s;
    srv_job          *j;        /* NULL: free                                   */
    int               prefill;  /* prompt tokens remain                          */
    size_t            done;     /* prompt tokens in the context                 */
    bitnet_generator *g;
    bitnet_token      pending;  /* returned by the generator, to evaluate (-1)  */
    size_t            step_n;   /* tokens this slot put into the current step    */
    double            last_used;
    bitnet_session   *ds;       /* -md: the slot's draft-model session            */
    size_t            drafted, accepted, spec_steps; /* the generator's, counted   */
    bitnet_token      toks[SRV_STEP_MAX]; /* what the slot evaluates this step     */
} srv_slot;

struct srv_sched {
    const srv_config   *cfg;
    const bitnet_model *m;
    uint32_t            n_ctx;
    pthread_t           th;
    pthread_mutex_t     mu;
    pthread_cond_t      cv;
    srv_job           **queue;  /* FIFO of waiting jobs */
    int                 q_len;
    srv_slot           *slots;
    int                 n_slots;
    bitnet_batch       *batch;
    /* embeddings: the job, its current input, tokens of it done, the running sum */
    bitnet_session     *emb;
    srv_job            *ej;
    size_t              e_in, e_done, e_step;
    double             *e_sum;
    int                 n_embd;
    bitnet_pooling      pooling;  /* the model's (mean, CLS or last token)          */
    int                 stopping;
    double              stop_deadline;
    uint64_t            seed_ctr;
    srv_metrics         met;
    double              rate_t[8];
    uint64_t            rate_n[8];
    int                 rate_i;
};

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- jobs ------------------------------------------------------------------------------- */

srv_job *srv_job_new(srv_kind kind) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->kind = kind;
    j->refs = 1;
    j->max_tokens = -1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->t_start = srv_now();
    return j;
}

void srv_job_unref(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last) return;
    free(j->prompt);
    for (size_t i = 0; i < j->n_input; i++) free(j->inputs[i]);
    free(j->inputs);
    free(j->n_inputs);
    for (size_t i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->stop);
    free(j->out);
    if (j->embd)
        for (size_t i = 0; i < j->n_input; i++) free(j->embd[i]);
    free(j->embd);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* Under j->mu. */
__attribute__((format(printf, 4, 0)))
static void srv_job_fail_locked(srv_job *j, int http_status, const char *type, const char *fmt, va_list ap) {
    if (j->state == SRV_DONE || j->state == SRV_FAILED) return;
    j->state = SRV_FAILED;
    j->http_status = http_status;
    snprintf(j->err_type, sizeof j->err_type, "%s", type);
    vsnprintf(j->err_msg, sizeof j->err_msg, fmt, ap);
    j->t_end = srv_now();
    pthread_cond_broadcast(&j->cv);
}

void srv_job_fail(srv_job *j, int http_status, const char *type, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&j->mu);
    srv_job_fail_locked(j, http_status, type, fmt, ap);
    pthread_mutex_unlock(&j->mu);
    va_end(ap);
}

static void srv_job_finish(srv_job *j, const char *finish) {
    pthread_mutex_lock(&j->mu);
    if (j->state == SRV_RUNNING || j->state == SRV_QUEUED) {
        j->state = SRV_DONE;
        j->finish = finish;
        j->t_end = srv_now();
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
}

/* Append generated text (len may be 0) and count one generated token when `token`;
 * record the speculation counters (st, may be NULL); 0 on success, -1 out of memory. */
static int srv_job_emit(srv_job *j, const char *text, size_t len, int token, const bitnet_generator_stats *st) {
    int rc = 0;
    pthread_mutex_lock(&j->mu);
    if (j->out_len + len + 1 > j->out_cap) {
        size_t cap = j->out_cap ? j->out_cap : 256;
        while (cap < j->out_len + len + 1) cap *= 2;
        char *p = realloc(j->out, cap);
        if (!p) rc = -1;
        else j->out = p, j->out_cap = cap;
    }
    if (st) {
        j->n_drafted = st->n_drafted;
        j->n_accepted = st->n_accepted;
    }
    if (rc == 0) {
        memcpy(j->out + j->out_len, text, len);
        j->out_len += len;
        j->out[j->out_len] = 0;
        if (token) {
            j->n_generated++;
            if (j->t_first == 0) j->t_first = srv_now();
        }
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

static int srv_job_cancelled(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    int c = j->cancel;
    pthread_mutex_unlock(&j->mu);
    return c;
}

/* ---- slots -------------------------------------------------------------------------------- */

static void srv_slot_release(srv_sched *sc, srv_slot *sl) {
    bitnet_generator_free(sl->g);
    sl->g = NULL;
    sl->pending = -1;
    sl->prefill = 0;
    sl->last_used = srv_now();
    srv_job_unref(sl->j);
    sl->j = NULL;
    pthread_mutex_lock(&sc->mu);
    sc->met.active_slots--;
    pthread_mutex_unlock(&sc->mu);
}

/* Put job j into a free slot (called with sc->mu held; returns 0 if none is free). */
static int srv_admit(srv_sched *sc, srv_job *j) {
    int best = -1;
    size_t best_lcp = 0;
    for (int i = 0; i < sc->n_slots; i++) {
        srv_slot *sl = &sc->slots[i];
        if (sl->j) continue;
        size_t lcp = bitnet_session_common_prefix(sl->s, j->prompt, j->n_prompt);
        if (best < 0 || lcp > best_lcp || (lcp == best_lcp && sl->last_used < sc->slots[best].last_used)) {
            best = i;
            best_lcp = lcp;
        }
    }
    if (best < 0) return 0;
    srv_slot *sl = &sc->slots[best];
    /* keep the common prefix; the last prompt token is always evaluated again so its
     * logits are current for the first sample */
    size_t keep = best_lcp < j->n_prompt ? best_lcp : j->n_prompt - 1;
    bitnet_session_truncate(sl->s, (uint32_t)keep);
    sl->j = j;
    sl->done = keep;
    sl->prefill = 1;
    sl->pending = -1;
    pthread_mutex_lock(&j->mu);
    j->state = SRV_RUNNING;
    j->n_cached = keep;
    pthread_mutex_unlock(&j->mu);
    sc->met.active_slots++;
    sc->met.prompt_tokens += j->n_prompt;
    sc->met.cached_tokens += keep;
    return 1;
}

/* The prompt is in: a generator continues from the session's current logits. */
static int srv_slot_start(srv_sched *sc, srv_slot *sl) {
    srv_job *j = sl->j;
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = j->max_tokens;
    gp.stop = (const char *const *)j->stop;
    gp.n_stop = j->n_stop;
    bitnet_session_set_seed(sl->s, j->has_seed ? j->seed : (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull + ++sc->seed_ctr);
    sl->drafted = sl->accepted = sl->spec_steps = 0;
    if (bitnet_generator_create(sl->s, &j->sp, &gp, NULL, 0, &sl->g) != BITNET_OK) {
        srv_job_fail(j, 500, "server_error", "generator: %s", bitnet_session_last_error(sl->s));
        return -1;
    }
    sl->prefill = 0;
    return 0;
}

static const char *srv_finish_name(bitnet_stop_reason r) {
    switch (r) {
    case BITNET_STOP_EOG: return "stop";
    case BITNET_STOP_STRING: return "stop";
    case BITNET_STOP_MAX_TOKENS: return "length";
    case BITNET_STOP_CONTEXT: return "length";
    default: return "stop";
    }
}

/* One generator step for a slot whose last token (if any) has been evaluated; returns
 * 1 when the job ended (slot released). */
static int srv_slot_next(srv_sched *sc, srv_slot *sl) {
    srv_job *j = sl->j;
    bitnet_generator_step step;
    if (bitnet_generator_next(sl->g, &step) != BITNET_OK) {
        srv_job_fail(j, 500, "server_error", "generation failed: %s", bitnet_session_last_error(sl->s));
        srv_slot_release(sc, sl);
        return 1;
    }
    bitnet_generator_stats gs;
    bitnet_generator_get_stats(sl->g, &gs, sizeof gs);
    if (srv_job_emit(j, step.text, step.len, step.token >= 0, &gs) != 0) {
        srv_job_fail(j, 500, "server_error", "out of memory for the generated text");
        srv_slot_release(sc, sl);
        return 1;
    }
    if (step.token < 0) {
        srv_job_finish(j, srv_finish_name(step.reason));
        srv_slot_release(sc, sl);
        return 1;
    }
    pthread_mutex_lock(&sc->mu);
    sc->met.generated_tokens++;
    sc->met.drafted_tokens += gs.n_drafted - sl->drafted;
    sc->met.accepted_tokens += gs.n_accepted - sl->accepted;
    sc->met.spec_steps += gs.n_spec_steps - sl->spec_steps;
    pthread_mutex_unlock(&sc->mu);
    sl->drafted = gs.n_drafted;
    sl->accepted = gs.n_accepted;
    sl->spec_steps = gs.n_spec_steps;
    sl->pending = step.token;
    return 0;
}

/* ---- embeddings --------------------------------------------------------------------------- */

static void srv_emb_done_input(srv_sched *sc) {
    srv_job *j = sc->ej;
    size_t n = j->n_inputs[sc->e_in];
    double norm = 0;
    for (int i = 0; i < sc->n_embd; i++) {
        if (sc->pooling == BITNET_POOLING_MEAN) sc->e_sum[i] /= (double)n;
        norm += sc->e_sum[i] * sc->e_sum[i];
    }
    norm = sqrt(norm);
    for (int i = 0; i < sc->n_embd; i++) j->embd[sc->e_in][i] = (float)(norm > 0 ? sc->e_sum[i] / norm : 0);
    memset(sc->e_sum, 0, (size_t)sc->n_embd * sizeof *sc->e_sum);
    sc->e_in++;
    sc->e_done = 0;
    bitnet_session_reset(sc->emb);
    if (sc->e_in == j->n_input) {
        srv_job_finish(j, "stop");
        srv_job_unref(j);
        sc->ej = NULL;
        pthread_mutex_lock(&sc->mu);
        sc->met.active_slots--;
        pthread_mutex_unlock(&sc->mu);
    }
}

static int srv_emb_admit(srv_sched *sc, srv_job *j) {
    if (sc->ej) return 0;
    j->embd = calloc(j->n_input, sizeof *j->embd);
    int ok = j->embd != NULL;
    for (size_t i = 0; ok && i < j->n_input; i++) ok = (j->embd[i] = malloc((size_t)sc->n_embd * sizeof(float))) != NULL;
    if (!ok) {
        srv_job_fail(j, 500, "server_error", "out of memory for embeddings");
        srv_job_unref(j);
        return 1;
    }
    j->n_embd = sc->n_embd;
    sc->ej = j;
    sc->e_in = 0;
    sc->e_done = 0;
    bitnet_session_reset(sc->emb);
    memset(sc->e_sum, 0, (size_t)sc->n_embd * sizeof *sc->e_sum);
    pthread_mutex_lock(&j->mu);
    j->state = SRV_RUNNING;
    pthread_mutex_unlock(&j->mu);
    sc->met.active_slots++;
    for (size_t i = 0; i < j->n_input; i++) sc->met.prompt_tokens += j->n_inputs[i];
    return 1;
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* Check every running job for cancellation and timeouts (and the shutdown deadline). */
static void srv_reap(srv_sched *sc, double now, int force) {
    for (int i = 0; i < sc->n_slots; i++) {
        srv_slot *sl = &sc->slots[i];
        if (!sl->j) continue;
        srv_job *j = sl->j;
        if (force) {
            srv_job_fail(j, 503, "server_shutdown", "the server is shutting down");
        } else if (j->deadline > 0 && now > j->deadline) {
            pthread_mutex_lock(&sc->mu); /* counted before the client can see the answer */
            sc->met.timeouts++;
            pthread_mutex_unlock(&sc->mu);
            srv_job_fail(j, 504, "timeout", "the request took longer than the server's timeout (%g s)",
                         sc->cfg->timeout_s);
        } else if (!srv_job_cancelled(j)) {
            continue;
        } else {
            pthread_mutex_lock(&sc->mu);
            sc->met.cancelled++;
            pthread_mutex_unlock(&sc->mu);
        }
        srv_slot_release(sc, sl);
    }
    if (sc->ej && (force || srv_job_cancelled(sc->ej) || (sc->ej->deadline > 0 && now > sc->ej->deadline))) {
        pthread_mutex_lock(&sc->mu);
        if (!force && !srv_job_cancelled(sc->ej)) sc->met.timeouts++;
        pthread_mutex_unlock(&sc->mu);
        srv_job_fail(sc->ej, force ? 503 : 504, force ? "server_shutdown" : "timeout", "%s",
                     force ? "the server is shutting down" : "the request timed out");
        srv_job_unref(sc->ej);
        sc->ej = NULL;
        bitnet_session_reset(sc->emb);
        pthread_mutex_lock(&sc->mu);
        sc->met.active_slots--;
        pthread_mutex_unlock(&sc->mu);
    }
}

static void srv_rate_sample(srv_sched *sc, double now) {
    int last = (sc->rate_i + 7) % 8;
    if (sc->rate_t[last] != 0 && now - sc->rate_t[last] < 1.0) return;
    sc->rate_t[sc->rate_i] = now;
    sc->rate_n[sc->rate_i] = sc->met.generated_tokens;
    sc->rate_i = (sc->rate_i + 1) % 8;
}

static void *srv_sched_main(void *arg) {
    srv_sched *sc = arg;
    const srv_config *cfg = sc->cfg;
    for (;;) {
        double now = srv_now();
        pthread_mutex_lock(&sc->mu);
        int force = sc->stopping && now > sc->stop_deadline;
        /* admit waiting jobs, in order, while slots are free */
        int k = 0;
        for (int i = 0; i < sc->q_len; i++) {
            srv_job *j = sc->queue[i];
            int taken = j->kind == SRV_EMBEDDING ? srv_emb_admit(sc, j) : srv_admit(sc, j);
            if (!taken) sc->queue[k++] = j;
        }
        sc->q_len = k;
        sc->met.queue_len = k;
        srv_rate_sample(sc, now);
        int active = sc->ej != NULL;
        for (int i = 0; i < sc->n_slots; i++) active += sc->slots[i].j != NULL;
        if (!active) {
            if (sc->stopping) {
                pthread_mutex_unlock(&sc->mu);
                break;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&sc->cv, &sc->mu, &ts);
            pthread_mutex_unlock(&sc->mu);
            continue;
        }
        pthread_mutex_unlock(&sc->mu);

        srv_reap(sc, now, force);

        /* one step: decode tokens first, then prompt chunks, then an embedding chunk */
        size_t budget = (size_t)cfg->n_batch;
        int n_in_step = 0;
        for (int i = 0; i < sc->n_slots; i++) {
            srv_slot *sl = &sc->slots[i];
            sl->step_n = 0;
            if (!sl->j || sl->prefill || sl->pending < 0) continue;
            /* what to evaluate: the token (and with speculation a draft to verify with it),
             * or nothing when speculation decided it already -- then it is returned now */
            size_t n = 0;
            for (;;) {
                size_t cap = budget > SRV_STEP_MAX ? SRV_STEP_MAX : budget > 1 ? budget : 1;
                if (bitnet_generator_draft(sl->g, sl->toks, cap, &n) != BITNET_OK) {
                    srv_job_fail(sl->j, 500, "server_error", "generation failed: %s", bitnet_session_last_error(sl->s));
                    srv_slot_release(sc, sl);
                    break;
                }
                if (n > 0 || srv_slot_next(sc, sl)) break;
            }
            if (!sl->j || n == 0) continue;
            if (bitnet_batch_add(sc->batch, sl->s, sl->toks, n, n > 1 ? BITNET_BATCH_LOGITS_ALL : 0) != BITNET_OK) {
                srv_job_fail(sl->j, 500, "server_error", "%s", bitnet_session_last_error(sl->s));
                srv_slot_release(sc, sl);
                continue;
            }
            sl->step_n = n;
            budget = budget > n ? budget - n : 0;
            n_in_step++;
        }
        /* prompts: oldest job first */
        for (;;) {
            srv_slot *pick = NULL;
            for (int i = 0; i < sc->n_slots; i++) {
                srv_slot *sl = &sc->slots[i];
                if (sl->j && sl->prefill && sl->step_n == 0 && (!pick || sl->j->t_start < pick->j->t_start)) pick = sl;
            }
            if (!pick || budget == 0) break;
            size_t left = pick->j->n_prompt - pick->done, n = left;
            if (n > (size_t)cfg->prefill_chunk) n = (size_t)cfg->prefill_chunk;
            if (n > budget) n = budget;
            if (bitnet_batch_add(sc->batch, pick->s, pick->j->prompt + pick->done, n, 0) != BITNET_OK) {
                srv_job_fail(pick->j, 500, "server_error", "%s", bitnet_session_last_error(pick->s));
                srv_slot_release(sc, pick);
                continue;
            }
            pick->step_n = n;
            budget -= n;
            n_in_step++;
        }
        sc->e_step = 0;
        if (sc->ej && budget > 0) {
            srv_job *j = sc->ej;
            size_t left = j->n_inputs[sc->e_in] - sc->e_done, n = left;
            if (n > (size_t)cfg->prefill_chunk) n = (size_t)cfg->prefill_chunk;
            if (n > budget) n = budget;
            if (bitnet_batch_add(sc->batch, sc->emb, j->inputs[sc->e_in] + sc->e_done, n, BITNET_BATCH_NO_LOGITS) ==
                BITNET_OK) {
                sc->e_step = n;
                n_in_step++;
            }
        }
        if (n_in_step == 0) continue;
        if (bitnet_batch_eval(sc->batch) != BITNET_OK) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", bitnet_last_error());
            for (int i = 0; i < sc->n_slots; i++)
                if (sc->slots[i].j && sc->slots[i].step_n) {
                    srv_job_fail(sc->slots[i].j, 500, "server_error", "evaluation failed: %s", msg);
                    srv_slot_release(sc, &sc->slots[i]);
                }
            continue;
        }
        pthread_mutex_lock(&sc->mu);
        sc->met.steps++;
        pthread_mutex_unlock(&sc->mu);

        for (int i = 0; i < sc->n_slots; i++) {
            srv_slot *sl = &sc->slots[i];
            if (!sl->j || !sl->step_n) continue;
            if (sl->prefill) {
                sl->done += sl->step_n;
                if (sl->done < sl->j->n_prompt) continue;
                if (srv_slot_start(sc, sl) != 0) {
                    srv_slot_release(sc, sl);
                    continue;
                }
            }
            srv_slot_next(sc, sl);
        }
        if (sc->e_step) { /* pool: every token (mean), the first (CLS) or the last one */
            const int last_chunk = sc->e_done + sc->e_step == sc->ej->n_inputs[sc->e_in];
            for (size_t t = 0; t < sc->e_step; t++) {
                if (sc->pooling == BITNET_POOLING_CLS && (sc->e_done > 0 || t > 0)) break;
                if (sc->pooling == BITNET_POOLING_LAST && (!last_chunk || t + 1 < sc->e_step)) continue;
                const float *e = NULL;
                if (bitnet_session_embeddings(sc->emb, (int32_t)t, &e) != BITNET_OK) break;
                for (int d = 0; d < sc->n_embd; d++) sc->e_sum[d] += e[d];
            }
            sc->e_done += sc->e_step;
            if (sc->e_done == sc->ej->n_inputs[sc->e_in]) srv_emb_done_input(sc);
        }
    }
    return NULL;
}

/* ---- public --------------------------------------------------------------------------------- */

int srv_sched_start(const srv_config *cfg, const bitnet_model *m, srv_sched **out) {
    srv_sched *sc = calloc(1, sizeof *sc);
    if (!sc) return -1;
    sc->cfg = cfg;
    sc->m = m;
    sc->n_slots = cfg->n_slots;
    sc->n_embd = (int)bitnet_model_get_info(m, BITNET_INFO_N_EMBD);
    sc->pooling = bitnet_model_pooling(m);
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    sc->queue = calloc((size_t)cfg->queue_max + 1, sizeof *sc->queue);
    sc->slots = calloc((size_t)sc->n_slots, sizeof *sc->slots);
    sc->e_sum = calloc((size_t)sc->n_embd, sizeof *sc->e_sum);
    if (!sc->queue || !sc->slots || !sc->e_sum) return -1;
    bitnet_session_params sp;
    bitnet_session_default_params(&sp, sizeof sp);
    sp.n_ctx = (uint32_t)cfg->n_ctx;
    if (cfg->kv_type >= 0) sp.kv_type = (bitnet_kv_type)cfg->kv_type;
    sp.n_threads = 1; /* sessions are evaluated through the batch, which has the threads */
    for (int i = 0; i < sc->n_slots; i++) {
        if (bitnet_session_create(m, &sp, &sc->slots[i].s) != BITNET_OK) return -1;
        sc->slots[i].pending = -1;
    }
    sc->n_ctx = bitnet_session_n_ctx(sc->slots[0].s);
    if (cfg->spec.mode != BITNET_SPEC_NONE) { /* every slot speculates (its own draft session with -md) */
        for (int i = 0; i < sc->n_slots; i++) {
            bitnet_spec_params p = cfg->spec;
            if (cfg->draft_model) {
                bitnet_session_params dp;
                bitnet_session_default_params(&dp, sizeof dp);
                dp.n_ctx = sc->n_ctx;
                if (cfg->kv_type >= 0) dp.kv_type = (bitnet_kv_type)cfg->kv_type;
                dp.n_threads = (uint32_t)cfg->n_threads;
                if (bitnet_session_create(cfg->draft_model, &dp, &sc->slots[i].ds) != BITNET_OK) return -1;
                p.draft = sc->slots[i].ds;
            }
            if (bitnet_session_set_speculation(sc->slots[i].s, &p) != BITNET_OK) return -1;
        }
    }
    sc->met.spec_mode = cfg->spec.mode;
    sp.embeddings = 1;
    if (bitnet_session_create(m, &sp, &sc->emb) != BITNET_OK) return -1;
    bitnet_batch_params bp;
    bitnet_batch_default_params(&bp, sizeof bp);
    bp.n_tokens = (uint32_t)cfg->n_batch;
    bp.n_threads = (uint32_t)cfg->n_threads;
    if (bitnet_batch_create(m, &bp, &sc->batch) != BITNET_OK) return -1;
    sc->met.n_slots = sc->n_slots;
    if (pthread_create(&sc->th, NULL, srv_sched_main, sc) != 0) return -1;
    *out = sc;
    return 0;
}

uint32_t srv_sched_n_ctx(const srv_sched *sc) { return sc->n_ctx; }
bitnet_pooling srv_sched_pooling(const srv_sched *sc) { return sc->pooling; }

int srv_sched_submit(srv_sched *sc, srv_job *j) {
    pthread_mutex_lock(&sc->mu);
    int rc = 0;
    if (sc->stopping) rc = -2;
    else if (sc->q_len >= sc->cfg->queue_max) rc = -1;
    else {
        pthread_mutex_lock(&j->mu);
        j->refs++; /* the scheduler's reference */
        j->state = SRV_QUEUED;
        pthread_mutex_unlock(&j->mu);
        sc->queue[sc->q_len++] = j;
        sc->met.queue_len = sc->q_len;
        pthread_cond_signal(&sc->cv);
    }
    pthread_mutex_unlock(&sc->mu);
    return rc;
}

void srv_sched_poke(srv_sched *sc) {
    pthread_mutex_lock(&sc->mu);
    pthread_cond_signal(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
}

void srv_sched_shutdown(srv_sched *sc, double grace) {
    pthread_mutex_lock(&sc->mu);
    sc->stopping = 1;
    sc->stop_deadline = srv_now() + grace;
    for (int i = 0; i < sc->q_len; i++) { /* never started: answered, not dropped */
        srv_job_fail(sc->queue[i], 503, "server_shutdown", "the server is shutting down");
        srv_job_unref(sc->queue[i]);
    }
    sc->q_len = 0;
    sc->met.queue_len = 0;
    pthread_cond_signal(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    pthread_join(sc->th, NULL);
}

void srv_sched_free(srv_sched *sc) {
    if (!sc) return;
    for (int i = 0; i < sc->n_slots; i++) {
        bitnet_session_free(sc->slots[i].s);
        bitnet_session_free(sc->slots[i].ds);
    }
    bitnet_session_free(sc->emb);
    bitnet_batch_free(sc->batch);
    free(sc->slots);
    free(sc->queue);
    free(sc->e_sum);
    pthread_mutex_destroy(&sc->mu);
    pthread_cond_destroy(&sc->cv);
    free(sc);
}

void srv_sched_metrics(srv_sched *sc, srv_metrics *out) {
    pthread_mutex_lock(&sc->mu);
    *out = sc->met;
    double now = srv_now();
    int oldest = sc->rate_i; /* the ring's oldest sample (or an empty one) */
    for (int k = 0; k < 8 && sc->rate_t[oldest] == 0; k++) oldest = (oldest + 1) % 8;
    double dt = now - sc->rate_t[oldest];
    out->decode_tps = sc->rate_t[oldest] != 0 && dt > 0.5 ? (double)(sc->met.generated_tokens - sc->rate_n[oldest]) / dt : 0;
    pthread_mutex_unlock(&sc->mu);
}

void srv_metrics_count(srv_sched *sc, int endpoint, int http_status) {
    pthread_mutex_lock(&sc->mu);
    if (endpoint >= 0 && endpoint < 4) sc->met.requests[endpoint]++;
    if (http_status >= 400 && http_status < 500) sc->met.responses_4xx++;
    if (http_status >= 500) sc->met.responses_5xx++;
    pthread_mutex_unlock(&sc->mu);
}
