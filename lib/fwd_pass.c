/*
 * fwd_pass.c -- the W1.58A8 forward pass, readable top to bottom (docs/spec.md §5.2-5.4).
 *
 * For a batch of n tokens at positions p0..p0+n-1 (h = residual stream, n_embd):
 *
 *   h = token_embd[id]                                     (file type -> f32)
 *   per layer:
 *     x = RMSNorm(h, attn_norm); xq = int8(x) per token    (docs/spec.md §4.1)
 *     q, k, v = W{q,k,v} xq  (* .scale, + bias when present)
 *     RoPE(q, k) at each token's position (NEOX for the bitnet archs, NORM for llama)
 *     K/V rows -> cache (f16 or f32);  a = softmax(q.K / sqrt(head_dim)) V over
 *     positions 0..p (causal), GQA: query head j reads KV head j / (n_head / n_head_kv)
 *     [bitnet archs] a = RMSNorm(a, attn_sub_norm)
 *     h += Wo int8(a)
 *     x = RMSNorm(h, ffn_norm); g, u = W{gate,up} int8(x)
 *     f = relu(g)^2 * u  (bitnet-b1.58)  or  silu(g) * u  (bitnet, llama)
 *     [bitnet archs] f = RMSNorm(f, ffn_sub_norm)
 *     h += Wdown int8(f)
 *   out = RMSNorm(h, output_norm); logits = output . out   (output = token_embd when tied)
 *
 * qwen3 and gemma3 (the BitNet embedding models' backbones, docs/spec.md §5.5) change
 * the block in these places, each a branch in the stage that does it:
 *   [gemma3]   h = token_embd[id] * sqrtf(n_embd)
 *   [norm_in]  q, k, v = W{q,k,v} int8(RMSNorm(x, {q,k,v}_norm_in)): each projection
 *              normalises (and quantizes) its own input; likewise gate/up from x,
 *              Wo from RMSNorm(a, attn_output_norm_in), Wdown from RMSNorm(f, ffn_down_norm_in)
 *   [qk_norm]  q, k = RMSNorm per head (attn_q_norm, attn_k_norm), before RoPE
 *   [gemma3]   q *= 1/sqrt(head_dim) after RoPE (the scores are not scaled again);
 *              sliding-window layers attend to the last n_swa positions only and use
 *              their own RoPE base; o = RMSNorm(Wo a, post_attention_norm) before the
 *              residual, f = gelu(g) * u (ggml's f16-table GELU), RMSNorm(Wdown f,
 *              post_ffw_norm) before the residual; logits soft-capped when the file says
 *
 * A step evaluates segments: runs of consecutive tokens of one or several sequences
 * (lib/fwd.h).  Everything but attention is per token, so the step's tokens are simply
 * stacked: each weight matrix is read once for all of them, whatever sequence they
 * belong to; attention reads each token's own KV cache up to its own position.  The
 * kernels compute every output of a token independently of the other tokens
 * (kernels/kernels.h), so a sequence gets bit-identical results alone or batched.
 *
 * q, k and v share one quantization of x (each matmul re-quantizing the same row would
 * give identical int8 values), as do gate and up.  Matmuls, attention and the output
 * layer are split across the session's threads by output rows / heads; every output
 * element is computed by one thread in a fixed order, so results do not depend on the
 * thread count.
 */
#include "fwd.h"
#include "fwd_act.h"

#include "type_table.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <time.h>

/* ---- profiling (off unless the owner attached a bn_prof) ------------------------------ */

static uint64_t bn_prof_now(const bn_work *f) {
    if (!f->prof) return 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
/* Account the time since *t to `kind` and restart the clock. */
static void bn_prof_mark(const bn_work *f, uint64_t *t, int kind) {
    if (!f->prof) return;
    uint64_t now = bn_prof_now(f);
    f->prof->ns[kind] += now - *t;
    *t = now;
}

static int64_t bn_max3(int64_t a, int64_t b, int64_t c) {
    int64_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* ---- KV cache of one sequence ------------------------------------------------------------ */

size_t bn_kv_row_bytes(const bn_kv *kv) { return (size_t)kv->n_kv * (kv->kv_f16 ? 2u : 4u); }

bitnet_status bn_kv_init(bn_kv *kv, const bitnet_model *m, uint32_t n_ctx, int kv_f16) {
    memset(kv, 0, sizeof *kv);
    const bn_hparams *hp = &m->hp;
    kv->kv_f16 = kv_f16;
    kv->n_ctx = n_ctx;
    kv->n_kv = hp->n_head_kv * hp->head_dim;
    kv->n_layer = hp->n_layer;
    kv->kc = bn_calloc((size_t)hp->n_layer, sizeof(void *));
    kv->vc = bn_calloc((size_t)hp->n_layer, sizeof(void *));
    if (!kv->kc || !kv->vc) goto nomem;
    size_t layer_bytes = (size_t)n_ctx * bn_kv_row_bytes(kv);
    for (int64_t l = 0; l < hp->n_layer; l++) {
        kv->kc[l] = bn_aligned_alloc(64, layer_bytes);
        kv->vc[l] = bn_aligned_alloc(64, layer_bytes);
        if (!kv->kc[l] || !kv->vc[l]) goto nomem;
    }
    return BITNET_OK;
nomem:
    bn_kv_free(kv);
    return bn_err(BITNET_E_NOMEM, "out of memory for a KV cache of %u positions (%zu bytes)", n_ctx,
                  2 * (size_t)hp->n_layer * (size_t)n_ctx * (size_t)(hp->n_head_kv * hp->head_dim) * (kv_f16 ? 2u : 4u));
}

void bn_kv_free(bn_kv *kv) {
    if (kv->kc)
        for (int64_t l = 0; l < kv->n_layer; l++) bn_aligned_free(kv->kc[l]);
    if (kv->vc)
        for (int64_t l = 0; l < kv->n_layer; l++) bn_aligned_free(kv->vc[l]);
    bn_free(kv->kc);
    bn_free(kv->vc);
    memset(kv, 0, sizeof *kv);
}

/* ---- scratch and threads for one step ------------------------------------------------------ */

bitnet_status bn_work_init(bn_work *w, const bitnet_model *m, int64_t n_batch, uint32_t n_ctx, int n_threads) {
    memset(w, 0, sizeof *w);
    const bn_hparams *hp = &m->hp;
    w->m = m;
    w->k = m->k;
    w->n_batch = n_batch;
    const int64_t n_q = hp->n_head * hp->head_dim, n_kv = hp->n_head_kv * hp->head_dim;
    const int64_t n_max = bn_max3(hp->n_embd, n_q, hp->n_ff);
    w->n_pad = bn_act_pad(n_max);
    w->q_stride = w->n_pad + 64;
    bitnet_status st = bn_pool_create(n_threads, &w->pool);
    if (st != BITNET_OK) {
        memset(w, 0, sizeof *w); /* w->m == NULL: not made (sessions retry on their next eval) */
        return st;
    }
    int nth = bn_pool_size(w->pool);
    size_t nb = (size_t)n_batch;
    w->h = bn_mallocn(nb * (size_t)hp->n_embd, sizeof(float));
    w->xn = bn_mallocn(nb * (size_t)n_max, sizeof(float));
    w->q = bn_mallocn(nb * (size_t)n_q, sizeof(float));
    w->att = bn_mallocn(nb * (size_t)n_q, sizeof(float));
    w->kx = bn_mallocn(nb * (size_t)n_kv, sizeof(float));
    w->vx = bn_mallocn(nb * (size_t)n_kv, sizeof(float));
    w->g = bn_mallocn(nb * (size_t)hp->n_ff, sizeof(float));
    w->u = bn_mallocn(nb * (size_t)hp->n_ff, sizeof(float));
    w->tmp = bn_mallocn(nb * (size_t)hp->n_embd, sizeof(float));
    w->qbuf = bn_aligned_alloc(64, nb * (size_t)w->q_stride);
    w->qrows = bn_mallocn(nb, sizeof(bn_qrow));
    if (m->norm_in) { /* k and v (and up) get int8 rows of their own */
        w->qbuf2 = bn_aligned_alloc(64, nb * (size_t)w->q_stride);
        w->qbuf3 = bn_aligned_alloc(64, nb * (size_t)w->q_stride);
        w->qrows2 = bn_mallocn(nb, sizeof(bn_qrow));
        w->qrows3 = bn_mallocn(nb, sizeof(bn_qrow));
        if (!w->qbuf2 || !w->qbuf3 || !w->qrows2 || !w->qrows3) goto nomem;
    }
    w->prep_stride = (BN_DENSE_PREP_BYTES(hp->n_embd) + 63) / 64 * 64;
    w->xprep = bn_aligned_alloc(64, nb * w->prep_stride);
    w->tok_seg = bn_mallocn(nb, sizeof(int32_t));
    w->tok_pos = bn_mallocn(nb, sizeof(int32_t));
    w->dense_scratch = bn_mallocn((size_t)nth * BN_DENSE_TOK * (size_t)hp->n_embd, sizeof(float));
    if (!w->h || !w->xn || !w->q || !w->att || !w->kx || !w->vx || !w->g || !w->u || !w->tmp || !w->qbuf ||
        !w->qrows || !w->xprep || !w->tok_seg || !w->tok_pos || !w->dense_scratch)
        goto nomem;
    for (size_t t = 0; t < nb; t++) w->qrows[t] = (bn_qrow){.q = w->qbuf + t * (size_t)w->q_stride};
    if (m->norm_in)
        for (size_t t = 0; t < nb; t++) {
            w->qrows2[t] = (bn_qrow){.q = w->qbuf2 + t * (size_t)w->q_stride};
            w->qrows3[t] = (bn_qrow){.q = w->qbuf3 + t * (size_t)w->q_stride};
        }
    if (w->k->act_pack && n_batch >= w->k->pack_min_tok)
        for (int i = 0; i < (m->norm_in ? 3 : 1); i++)
            if (!(w->pkbuf[i] = bn_aligned_alloc(64, BN_ACT_PACK_BYTES(n_batch, w->n_pad)))) goto nomem;
    if ((st = bn_work_reserve_ctx(w, n_ctx)) != BITNET_OK) {
        bn_work_free(w);
        return st;
    }
    return BITNET_OK;
nomem:
    bn_work_free(w);
    return bn_err(BITNET_E_NOMEM, "out of memory for evaluation buffers of %lld tokens", (long long)n_batch);
}

bitnet_status bn_work_reserve_ctx(bn_work *w, uint32_t n_ctx) {
    if (n_ctx <= w->n_ctx && w->att_scratch) return BITNET_OK;
    float *p = bn_mallocn((size_t)bn_pool_size(w->pool) * BN_ATTN_MQ * n_ctx, sizeof(float));
    if (!p) return bn_err(BITNET_E_NOMEM, "out of memory for attention scratch of %u positions", n_ctx);
    bn_free(w->att_scratch);
    w->att_scratch = p;
    w->n_ctx = n_ctx;
    return BITNET_OK;
}

void bn_work_free(bn_work *w) {
    if (!w->m) return;
    bn_pool_free(w->pool);
    bn_free(w->h);
    bn_free(w->xn);
    bn_free(w->q);
    bn_free(w->att);
    bn_free(w->kx);
    bn_free(w->vx);
    bn_free(w->g);
    bn_free(w->u);
    bn_free(w->tmp);
    bn_aligned_free(w->qbuf);
    bn_free(w->qrows);
    bn_aligned_free(w->qbuf2);
    bn_aligned_free(w->qbuf3);
    bn_free(w->qrows2);
    bn_free(w->qrows3);
    for (int i = 0; i < 3; i++) bn_aligned_free(w->pkbuf[i]);
    bn_aligned_free(w->xprep);
    bn_free(w->tok_seg);
    bn_free(w->tok_pos);
    bn_free(w->att_scratch);
    bn_free(w->dense_scratch);
    bn_free(w->lbuf);
    bn_aligned_free(w->sxq);
    bn_free(w->sc);
    bn_free(w->sxs);
    bn_free(w->se);
    memset(w, 0, sizeof *w);
}

void bn_embed_row(const bitnet_model *m, int32_t id, float *out) {
    bn_dmat_row_f32(&m->tok_embd, id, out);
}

/* ---- parallel jobs ------------------------------------------------------------------- */

/* Rows are handed out in chunks through an atomic counter rather than split once per
 * thread: when another process takes a core, the thread that still runs picks up the
 * rest instead of waiting for the stalled one.  Chunk boundaries depend only on the
 * matrix and the thread count (multiples of 16 rows, the interleaved layouts' groups),
 * and every row is computed whole by whichever thread takes its chunk, so results do
 * not depend on scheduling. */
static int64_t bn_chunk_rows(int64_t rows, int nth) {
    int64_t c = rows / ((int64_t)nth * 8);
    if (c < 64) c = 64;
    return (c + 15) / 16 * 16;
}

/* The kernels' packed copy of rows[0..n) (n_in values each) for the matmuls that follow,
 * when they have a many-token path and n is large enough for it; otherwise none.  Every
 * matmul job calls this for its inputs first, so a packed copy never outlives its rows. */
static void bn_mm_pack(bn_work *f, bn_qrow *rows, int8_t *buf, int64_t n, int64_t n_in) {
    rows[0].pk = NULL;
    if (!f->k->act_pack || !buf || n < f->k->pack_min_tok) return;
    rows[0].pk_pad = bn_act_pad(n_in);
    f->k->act_pack(rows, n, rows[0].pk_pad, buf);
    rows[0].pk = buf;
}

/* Up to three ternary matmuls run as one job, each with its quantized input (the same
 * rows for all, unless the projections normalise their own inputs). */
typedef struct bn_mm_job {
    const bn_kernels *k;
    const bn_tmat    *w[3];
    float            *y[3];
    int               nw;
    const bn_qrow    *x[3];
    int64_t           n_tok;
    _Atomic int64_t   next; /* next chunk to hand out (0 at start) */
} bn_mm_job;

static void bn_mm_task(void *ctx, int ith, int nth) {
    bn_mm_job *j = ctx;
    (void)ith;
    int64_t chunk[3], n_chunks[3], total = 0;
    for (int i = 0; i < j->nw; i++) {
        chunk[i] = bn_chunk_rows(j->w[i]->rows, nth);
        n_chunks[i] = (j->w[i]->rows + chunk[i] - 1) / chunk[i];
        total += n_chunks[i];
    }
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (c >= total) break;
        int i = 0;
        while (c >= n_chunks[i]) c -= n_chunks[i++];
        const int64_t lo = c * chunk[i], hi = lo + chunk[i] < j->w[i]->rows ? lo + chunk[i] : j->w[i]->rows;
        j->k->ternary_matmul(j->w[i], lo, hi, j->x[i], j->n_tok, j->y[i], j->w[i]->rows);
    }
}

typedef struct bn_attn_job {
    bn_work         *w;
    const bn_fwd_seg *seg;
    int64_t          l, n_tok;
    _Atomic int64_t  next;
} bn_attn_job;

/* One item per (token, query head), each against its own sequence's cache up to and
 * including the token's position (sliding-window layers: the last n_swa positions,
 * llama.cpp's rule: key position p0 is seen from p1 when p1 - p0 < n_swa). */
static void bn_attn_task(void *ctx, int ith, int nth) {
    bn_attn_job *j = ctx;
    bn_work *w = j->w;
    const bn_hparams *hp = &w->m->hp;
    const bn_kernels *K = w->k;
    const int64_t hd = hp->head_dim, n_q = hp->n_head * hd, grp = hp->n_head / hp->n_head_kv;
    const float scale = hp->kq_scale;
    const int swa = w->m->layers[j->l].swa;
    float *scratch = w->att_scratch + (size_t)ith * BN_ATTN_MQ * w->n_ctx;
    /* An item: hb query heads of one KV head x tb consecutive tokens (at most BN_ATTN_MQ
     * queries), so attention_multi shares each key/value row among them. */
    const int multi = K->attention_multi && hd % 8 == 0;
    const int64_t hb = !multi ? 1 : grp < BN_ATTN_MQ ? grp : BN_ATTN_MQ, tb = multi ? BN_ATTN_MQ / hb : 1;
    const int64_t hblk = (grp + hb - 1) / hb, tblk = (j->n_tok + tb - 1) / tb;
    const int64_t items = tblk * hp->n_head_kv * hblk, chunk = items / ((int64_t)nth * 16) + 1;
    int64_t lo, hi;
    while (bn_claim(&j->next, items, chunk, &lo, &hi))
      for (int64_t it = lo; it < hi; it++) {
        const int64_t tbi = it / (hp->n_head_kv * hblk), rest = it % (hp->n_head_kv * hblk);
        const int64_t kvh = rest / hblk, h0 = kvh * grp + (rest % hblk) * hb;
        const int64_t h1 = h0 + hb < (kvh + 1) * grp ? h0 + hb : (kvh + 1) * grp;
        const int64_t t0 = tbi * tb, t1 = t0 + tb < j->n_tok ? t0 + tb : j->n_tok;
        const float *qp[BN_ATTN_MQ];
        float *op[BN_ATTN_MQ];
        int64_t nkv[BN_ATTN_MQ];
        int nq = 0;
        const uint8_t *kb = NULL, *vb = NULL;
        int kv_f16 = 0;
        int64_t g_seg = -1, g_p0 = -1;
        for (int64_t t = t0; t <= t1; t++) {
            const bn_kv *kv = t < t1 ? j->seg[w->tok_seg[t]].kv : NULL;
            const int64_t p1 = t < t1 ? w->tok_pos[t] : 0;
            const int64_t p0 = swa && p1 >= hp->n_swa ? p1 - hp->n_swa + 1 : 0;
            /* flush the queries gathered so far at the end or when the keys differ */
            if (nq && (t == t1 || w->tok_seg[t] != g_seg || p0 != g_p0)) {
                if (multi)
                    K->attention_multi(nq, qp, nkv, kb, vb, kv_f16, hd, j->seg[g_seg].kv->n_kv, scale, scratch,
                                       (int64_t)w->n_ctx, op);
                else
                    for (int a = 0; a < nq; a++)
                        K->attention(qp[a], kb, vb, kv_f16, nkv[a], hd, j->seg[g_seg].kv->n_kv, scale, scratch, op[a]);
                nq = 0;
            }
            if (t == t1) break;
            const size_t esz = kv->kv_f16 ? 2u : 4u;
            const size_t first = (size_t)p0 * (size_t)kv->n_kv + (size_t)(kvh * hd);
            kb = (const uint8_t *)kv->kc[j->l] + first * esz;
            vb = (const uint8_t *)kv->vc[j->l] + first * esz;
            kv_f16 = kv->kv_f16;
            g_seg = w->tok_seg[t];
            g_p0 = p0;
            for (int64_t h = h0; h < h1; h++) {
                qp[nq] = w->q + t * n_q + h * hd;
                op[nq] = w->att + t * n_q + h * hd;
                nkv[nq++] = p1 - p0 + 1;
            }
        }
      }
}

typedef struct bn_dense_job {
    bn_work         *w;
    const bn_dmat   *m;
    int64_t          rows, n_tok;
    float           *y;
    int64_t          ldy;
    _Atomic int64_t  next; /* next chunk (see bn_chunk_rows) */
    const uint8_t   *x;    /* prepared inputs (w->xprep unless set) */
    const int32_t   *ids;  /* NULL, or compute only rows ids[0..rows) (one token) */
} bn_dense_job;

static void bn_dense_task(void *ctx, int ith, int nth) {
    bn_dense_job *j = ctx;
    bn_work *w = j->w;
    const uint8_t *x = j->x ? j->x : w->xprep;
    float *scratch = w->dense_scratch + (size_t)ith * BN_DENSE_TOK * (size_t)w->m->hp.n_embd;
    int64_t lo, hi;
    if (j->ids) {
        while (bn_claim(&j->next, j->rows, 16, &lo, &hi))
            for (int64_t i = lo; i < hi; i++)
                w->k->dense_matmul(j->m, j->ids[i], j->ids[i] + 1, x, w->prep_stride, 1, j->y, j->ldy, scratch);
        return;
    }
    while (bn_claim(&j->next, j->rows, bn_chunk_rows(j->rows, nth), &lo, &hi))
        w->k->dense_matmul(j->m, lo, hi, x, w->prep_stride, j->n_tok, j->y, j->ldy, scratch);
}

void bn_fwd_output_full(bn_work *w, const uint8_t *x, float *logits) {
    bn_dense_job dj = {w, &w->m->output, w->m->hp.n_vocab, 1, logits, w->m->hp.n_vocab, 0, x, NULL};
    bn_pool_run(w->pool, bn_dense_task, &dj);
}

void bn_fwd_output_rows(bn_work *w, const uint8_t *x, const int32_t *ids, int64_t n, float *logits) {
    bn_dense_job dj = {w, &w->m->output, n, 1, logits, w->m->hp.n_vocab, 0, x, ids};
    if (n <= 64) bn_dense_task(&dj, 0, 1);
    else bn_pool_run(w->pool, bn_dense_task, &dj);
}

/* ---- the screened output layer (docs/performance.md; the bound: docs/spec.md) ---------------
 * The F16 input row x^ (what dense_prep made: the activations rounded to f16) is
 * quantized to int16 with one scale xs = max|x^| / 32767, p = round(x^ / xs), so
 * |x^ - xs p| <= 0.51 xs.  Per 64-block b, with A_b = sum |x^_i| over the block, the
 * bound coefficient is
 *   c_b = 0.5 (1 + 2^-14) A_b                       (weights: |w - sigma q| <= sigma / 2)
 *       + 4146 xs                                   (activations: 127 * 64 * 0.51 xs)
 *       + 127.01 gamma(n + 8) A_b                   (rounding of the F16 layer's own sum)
 *       + 127.01 gamma(nb + 8) (A_b + 33 xs)        (rounding of the screened sum)
 * and the bound of row j is e_j = (1 + 2^-10) sum_b sigma_jb c_b + 64 FLT_MIN. */
static bitnet_status bn_screen_reserve(bn_work *w, int64_t rows) {
    const bn_smat *sm = &w->m->screen;
    if (rows <= w->s_rows && w->se) return BITNET_OK;
    bn_aligned_free(w->sxq);
    bn_free(w->sc);
    bn_free(w->sxs);
    w->sxq = bn_aligned_alloc(64, (size_t)rows * (size_t)sm->cols_pad * sizeof(int16_t));
    w->sc = bn_mallocn((size_t)rows * (size_t)sm->nb, sizeof(float));
    w->sxs = bn_mallocn((size_t)rows, sizeof(float));
    if (!w->se) w->se = bn_mallocn((size_t)w->m->hp.n_vocab, sizeof(float));
    w->s_rows = w->sxq && w->sc && w->sxs && w->se ? rows : 0;
    if (!w->s_rows) return bn_err(BITNET_E_NOMEM, "out of memory for the screened output layer's buffers");
    return BITNET_OK;
}

static void bn_screen_prep(const bn_smat *sm, const uint8_t *x, int16_t *xq, float *c, float *xs_out) {
    const int64_t n = sm->cols;
    float mx = 0.0f;
    for (int64_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(bn_f16_to_f32(bn_rd_u16(x + 2 * i))));
    const float xs = mx / 32767.0f;
    const double u = 0x1p-24, gn = (double)(n + 8) * u / (1.0 - (double)(n + 8) * u),
                 gb = (double)(sm->nb + 8) * u / (1.0 - (double)(sm->nb + 8) * u);
    for (int64_t b = 0; b < sm->nb; b++) {
        double a = 0.0;
        for (int64_t i = BN_SCREEN_BLOCK * b; i < BN_SCREEN_BLOCK * (b + 1); i++) {
            float v = i < n ? bn_f16_to_f32(bn_rd_u16(x + 2 * i)) : 0.0f;
            a += fabs((double)v);
            float p = xs > 0.0f ? nearbyintf(v / xs) : 0.0f;
            p = p > 32767.0f ? 32767.0f : p < -32767.0f ? -32767.0f : p;
            xq[i] = (int16_t)p;
        }
        a *= 1.0 + 0x1p-20; /* the rounding of the double sum */
        c[b] = (float)((0.5 * (1.0 + 0x1p-14) + 127.01 * gn + 127.01 * gb) * a + (4146.0 + 127.01 * gb * 33.0) * (double)xs);
    }
    *xs_out = xs;
}

typedef struct bn_screen_job {
    bn_work        *w;
    int64_t         n_tok;
    float          *s;    /* [n_tok][n_vocab] */
    float          *e;    /* [n_vocab] (the bound of token 0) */
    _Atomic int64_t next;
} bn_screen_job;

static void bn_screen_task(void *ctx, int ith, int nth) {
    (void)ith;
    bn_screen_job *j = ctx;
    bn_work *w = j->w;
    const bn_smat *sm = &w->m->screen;
    const int64_t V = w->m->hp.n_vocab;
    int64_t lo, hi;
    while (bn_claim(&j->next, sm->rows, bn_chunk_rows(sm->rows, nth), &lo, &hi))
        for (int64_t t = 0; t < j->n_tok; t++) {
            w->k->screen_matmul(sm, lo, hi, w->sxq + (size_t)t * (size_t)sm->cols_pad, w->sxs[t],
                                w->sc + (size_t)t * (size_t)sm->nb, j->s + (size_t)t * (size_t)V, j->e);
            if (t == 0)
                for (int64_t r = lo; r < hi; r++) j->e[r] = j->e[r] * (1.0f + 0x1p-10f) + 64.0f * FLT_MIN;
        }
}

/* Screen n_tok prepared rows x (prep_stride apart) into s (n_vocab each) and e (token 0). */
static bitnet_status bn_screen_run(bn_work *w, const uint8_t *x, int64_t n_tok, float *s, float *e) {
    const bn_smat *sm = &w->m->screen;
    bitnet_status st = bn_screen_reserve(w, n_tok);
    if (st != BITNET_OK) return st;
    for (int64_t t = 0; t < n_tok; t++)
        bn_screen_prep(sm, x + (size_t)t * w->prep_stride, w->sxq + (size_t)t * (size_t)sm->cols_pad,
                       w->sc + (size_t)t * (size_t)sm->nb, &w->sxs[t]);
    bn_screen_job sj = {w, n_tok, s, e ? e : w->se, 0};
    bn_pool_run(w->pool, bn_screen_task, &sj);
    return BITNET_OK;
}

/* ---- helpers --------------------------------------------------------------------------- */

/* y[t][i] = y[t][i] * s + b[i] (the optional .scale and bias of a projection). */
static void bn_scale_bias(float *y, int64_t n, int64_t n_tok, float s, const float *b) {
    if (s == 1.0f && !b) return;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < n; i++) {
            float v = y[t * n + i];
            if (s != 1.0f) v *= s;
            if (b) v += b[i];
            y[t * n + i] = v;
        }
}

static void bn_store_kv_row(const bn_kernels *K, const bn_kv *kv, const float *r, void *cache, int32_t pos) {
    if (kv->kv_f16) {
        K->f16_row(r, (uint16_t *)cache + (size_t)pos * (size_t)kv->n_kv, kv->n_kv);
    } else {
        memcpy((float *)cache + (size_t)pos * (size_t)kv->n_kv, r, (size_t)kv->n_kv * sizeof(float));
    }
}

/* ---- per-token work between the matmuls ---------------------------------------------------
 * Norms, activation quantization, RoPE, KV stores and the FFN activation are independent
 * per token: a batch splits them by tokens across the pool (one token runs inline, where a
 * pool round trip would cost more than the work).  Each token's operations and their order
 * are the same either way, so results do not depend on the thread count. */
enum { BN_TOK_ATTN_IN, BN_TOK_ROPE_KV, BN_TOK_ATTN_OUT, BN_TOK_FFN_IN, BN_TOK_FFN_ACT, BN_TOK_RESID };

typedef struct bn_tok_job {
    bn_work          *f;
    const bn_fwd_seg *seg;
    const bn_layer   *L;
    int64_t           l, n;
    int               stage;
    _Atomic int64_t   next;
} bn_tok_job;

/* Quantize row t of x (n values) into f->qrows[t]. */
static void bn_quant_row(bn_work *f, const float *x, int64_t n, int64_t t) {
    f->k->act_quant(x, n, bn_act_pad(n), &f->qrows[t]);
}

/* A projection's own input (BitNet embedding models): y = RMSNorm(x, w) quantized into
 * rows[t]; tmp holds y. */
static void bn_quant_normed(bn_work *f, const float *x, const float *w, int64_t n, float *tmp, bn_qrow *rows,
                            int64_t t) {
    f->k->rmsnorm(x, w, n, f->m->hp.eps, tmp);
    f->k->act_quant(tmp, n, bn_act_pad(n), &rows[t]);
}

/* GELU as ggml computes it on CPUs (GGML_GELU_FP16, the default): 0 for x <= -10, x for
 * x >= 10, else a table indexed by f16(x) that holds f16(gelu_tanh(f16(x))) computed in
 * f32 as 0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2))). */
static float bn_gelu(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    const float v = bn_f16_to_f32(bn_f32_to_f16(x));
    const float g = 0.5f * v * (1.0f + tanhf(0.79788456080286535587989211986876f * v * (1.0f + 0.044715f * v * v)));
    return bn_f16_to_f32(bn_f32_to_f16(g));
}

static void bn_tok_stage(const bn_tok_job *j, int64_t t) {
    bn_work *f = j->f;
    const bitnet_model *m = f->m;
    const bn_kernels *K = f->k;
    const bn_hparams *hp = &m->hp;
    const bn_layer *L = j->L;
    const int64_t E = hp->n_embd, hd = hp->head_dim, n_q = hp->n_head * hd, n_kv = hp->n_head_kv * hd, F = hp->n_ff;
    float *h = f->h + t * E, *xn = f->xn + t * E;
    switch (j->stage) {
    case BN_TOK_ATTN_IN: /* x = RMSNorm(h); int8(x) for q, k, v */
        K->rmsnorm(h, L->attn_norm, E, hp->eps, xn);
        if (L->q_in) { /* [norm_in] q, k, v each from RMSNorm(x, its own norm) */
            float *tmp = f->tmp + t * E;
            bn_quant_normed(f, xn, L->q_in, E, tmp, f->qrows, t);
            bn_quant_normed(f, xn, L->k_in, E, tmp, f->qrows2, t);
            bn_quant_normed(f, xn, L->v_in, E, tmp, f->qrows3, t);
        } else {
            bn_quant_row(f, xn, E, t);
        }
        break;
    case BN_TOK_ROPE_KV: {
        float *q = f->q + t * n_q, *k = f->kx + t * n_kv, *v = f->vx + t * n_kv;
        bn_scale_bias(q, n_q, 1, L->sq, L->bq);
        bn_scale_bias(k, n_kv, 1, L->sk, L->bk);
        bn_scale_bias(v, n_kv, 1, L->sv, L->bv);
        if (L->attn_q_norm) { /* [qk_norm] RMSNorm of each head of q and k */
            for (int64_t hh = 0; hh < hp->n_head; hh++) K->rmsnorm(q + hh * hd, L->attn_q_norm, hd, hp->eps, q + hh * hd);
            for (int64_t hh = 0; hh < hp->n_head_kv; hh++)
                K->rmsnorm(k + hh * hd, L->attn_k_norm, hd, hp->eps, k + hh * hd);
        }
        const int32_t pos = f->tok_pos[t];
        const bn_kv *kv = j->seg[f->tok_seg[t]].kv;
        K->rope(q, hp->n_head, hd, hp->n_rot, pos, L->rope_base, m->rope_freqs, m->rope_neox);
        K->rope(k, hp->n_head_kv, hd, hp->n_rot, pos, L->rope_base, m->rope_freqs, m->rope_neox);
        if (hp->q_scale != 1.0f) /* [gemma3] the query scale, applied to q itself */
            for (int64_t i = 0; i < n_q; i++) q[i] *= hp->q_scale;
        bn_store_kv_row(K, kv, k, kv->kc[j->l], pos);
        bn_store_kv_row(K, kv, v, kv->vc[j->l], pos);
        break;
    }
    case BN_TOK_ATTN_OUT: { /* [sub-norm]; int8 for Wo */
        float *a = f->att + t * n_q;
        if (L->attn_sub_norm) K->rmsnorm(a, L->attn_sub_norm, n_q, hp->eps, a);
        if (L->o_in) K->rmsnorm(a, L->o_in, n_q, hp->eps, a); /* [norm_in] */
        bn_quant_row(f, a, n_q, t);
        break;
    }
    case BN_TOK_FFN_IN: { /* h += Wo a; x = RMSNorm(h); int8(x) for gate, up */
        float *o = f->tmp + t * E;
        bn_scale_bias(o, E, 1, L->so, L->bo);
        if (L->attn_post_norm) K->rmsnorm(o, L->attn_post_norm, E, hp->eps, o); /* [gemma3] */
        for (int64_t i = 0; i < E; i++) h[i] += o[i];
        K->rmsnorm(h, L->ffn_norm, E, hp->eps, xn);
        if (L->gate_in) { /* [norm_in] gate and up each from RMSNorm(x, its own norm) */
            bn_quant_normed(f, xn, L->gate_in, E, o, f->qrows, t);
            bn_quant_normed(f, xn, L->up_in, E, o, f->qrows2, t);
        } else {
            bn_quant_row(f, xn, E, t);
        }
        break;
    }
    case BN_TOK_FFN_ACT: { /* f = act(g) * u; [sub-norm]; int8 for Wdown */
        float *g = f->g + t * F, *u = f->u + t * F;
        bn_scale_bias(g, F, 1, L->sgate, L->bgate);
        bn_scale_bias(u, F, 1, L->sup, L->bup);
        /* one loop per activation, each vectorised (lib/fwd_act.h): a float compare and
         * branch per element (ReLU) was mispredicted half the time, and libm's expf per
         * element (SiLU) was most of the token ops' time */
        if (m->ffn_act == BN_FFN_GELU)
            for (int64_t i = 0; i < F; i++) g[i] = bn_gelu(g[i]) * u[i];
        else /* the variant's own vector width (kernels.h, ffn_act) */
            K->ffn_act(m->ffn_act == BN_FFN_RELU2, g, u, F);
        if (L->ffn_sub_norm) K->rmsnorm(g, L->ffn_sub_norm, F, hp->eps, g);
        if (L->down_in) K->rmsnorm(g, L->down_in, F, hp->eps, g); /* [norm_in] */
        bn_quant_row(f, g, F, t);
        break;
    }
    case BN_TOK_RESID: { /* h += Wdown f */
        float *o = f->tmp + t * E;
        bn_scale_bias(o, E, 1, L->sdown, L->bdown);
        if (L->ffn_post_norm) K->rmsnorm(o, L->ffn_post_norm, E, hp->eps, o); /* [gemma3] */
        for (int64_t i = 0; i < E; i++) h[i] += o[i];
        break;
    }
    default: break;
    }
}

static void bn_tok_task(void *ctx, int ith, int nth) {
    bn_tok_job *j = ctx;
    (void)ith;
    int64_t lo, hi;
    while (bn_claim(&j->next, j->n, j->n / ((int64_t)nth * 8) + 1, &lo, &hi))
        for (int64_t t = lo; t < hi; t++) bn_tok_stage(j, t);
}

static void bn_tok_run(bn_tok_job *j, int stage) {
    j->stage = stage;
    atomic_store_explicit(&j->next, 0, memory_order_relaxed);
    if (j->n < 2)
        for (int64_t t = 0; t < j->n; t++) bn_tok_stage(j, t);
    else
        bn_pool_run(j->f->pool, bn_tok_task, j);
}

/* ---- the pass ---------------------------------------------------------------------------- */

/* Output rows of a segment: tokens [out0, n). */
static int64_t bn_seg_out0(const bn_fwd_seg *g) {
    int64_t o = g->n;
    if (g->embd && g->embd0 < o) o = g->embd0;
    if (g->logits && g->logits0 < o) o = g->logits0;
    return o;
}

bitnet_status bn_fwd_eval(bn_work *f, const bn_fwd_seg *seg, int n_seg) {
    const bitnet_model *m = f->m;
    const bn_kernels *K = f->k;
    const bn_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, V = hp->n_vocab;

    uint64_t t_prof = bn_prof_now(f), t_start = t_prof;
    /* the step's tokens, segment after segment */
    int64_t n = 0, n_out = 0;
    for (int s = 0; s < n_seg; s++) {
        for (int64_t i = 0; i < seg[s].n; i++, n++) {
            f->tok_seg[n] = s;
            f->tok_pos[n] = seg[s].pos0 + (int32_t)i;
            float *h = f->h + n * E;
            bn_embed_row(m, seg[s].tok[i], h);
            if (hp->embd_scale != 1.0f) /* [gemma3] */
                for (int64_t e = 0; e < E; e++) h[e] *= hp->embd_scale;
        }
        n_out += seg[s].n - bn_seg_out0(&seg[s]);
    }
    /* logits of several segments are computed in one pass over the output layer into
     * lbuf, then copied out; a single segment's go straight to their destination */
    int n_logit_segs = 0;
    for (int s = 0; s < n_seg; s++) n_logit_segs += seg[s].logits && seg[s].n > seg[s].logits0;
    float *lg = NULL;
    if (n_logit_segs > 1) {
        if ((size_t)n_out > f->lbuf_rows) {
            float *p = bn_mallocn((size_t)n_out * (size_t)V, sizeof(float));
            if (!p) return bn_err(BITNET_E_NOMEM, "out of memory for the logits of %lld tokens", (long long)n_out);
            bn_free(f->lbuf);
            f->lbuf = p;
            f->lbuf_rows = (size_t)n_out;
        }
        lg = f->lbuf;
    }

    bn_prof_mark(f, &t_prof, BN_PROF_EMBED);
    for (int64_t l = 0; l < hp->n_layer; l++) {
        const bn_layer *L = &m->layers[l];
        bn_tok_job tj = {f, seg, L, l, n, 0, 0};

        /* attention */
        bn_tok_run(&tj, BN_TOK_ATTN_IN);
        bn_prof_mark(f, &t_prof, BN_PROF_TOKEN_OPS);
        bn_mm_pack(f, f->qrows, f->pkbuf[0], n, E);
        if (L->q_in) {
            bn_mm_pack(f, f->qrows2, f->pkbuf[1], n, E);
            bn_mm_pack(f, f->qrows3, f->pkbuf[2], n, E);
        }
        const bn_qrow *xk = L->q_in ? f->qrows2 : f->qrows, *xv = L->q_in ? f->qrows3 : f->qrows;
        bn_mm_job mm = {K, {&L->wq, &L->wk, &L->wv}, {f->q, f->kx, f->vx}, 3, {f->qrows, xk, xv}, n, 0};
        bn_pool_run(f->pool, bn_mm_task, &mm);
        bn_prof_mark(f, &t_prof, BN_PROF_QKV);
        bn_tok_run(&tj, BN_TOK_ROPE_KV);
        bn_prof_mark(f, &t_prof, BN_PROF_TOKEN_OPS);
        bn_attn_job aj = {f, seg, l, n, 0};
        bn_pool_run(f->pool, bn_attn_task, &aj);
        bn_prof_mark(f, &t_prof, BN_PROF_ATTENTION);
        bn_tok_run(&tj, BN_TOK_ATTN_OUT);
        bn_prof_mark(f, &t_prof, BN_PROF_TOKEN_OPS);
        bn_mm_pack(f, f->qrows, f->pkbuf[0], n, hp->n_head * hp->head_dim);
        bn_mm_job mo = {K, {&L->wo}, {f->tmp}, 1, {f->qrows}, n, 0};
        bn_pool_run(f->pool, bn_mm_task, &mo);
        bn_prof_mark(f, &t_prof, BN_PROF_ATTN_OUT);

        /* feed-forward */
        bn_tok_run(&tj, BN_TOK_FFN_IN);
        bn_prof_mark(f, &t_prof, BN_PROF_TOKEN_OPS);
        bn_mm_pack(f, f->qrows, f->pkbuf[0], n, E);
        if (L->gate_in) bn_mm_pack(f, f->qrows2, f->pkbuf[1], n, E);
        bn_mm_job mg = {K, {&L->wgate, &L->wup}, {f->g, f->u}, 2, {f->qrows, L->gate_in ? f->qrows2 : f->qrows}, n, 0};
        bn_pool_run(f->pool, bn_mm_task, &mg);
        bn_prof_mark(f, &t_prof, BN_PROF_GATE_UP);
        bn_tok_run(&tj, BN_TOK_FFN_ACT);
        bn_prof_mark(f, &t_prof, BN_PROF_TOKEN_OPS);
        bn_mm_pack(f, f->qrows, f->pkbuf[0], n, hp->n_ff);
        bn_mm_job md = {K, {&L->wdown}, {f->tmp}, 1, {f->qrows}, n, 0};
        bn_pool_run(f->pool, bn_mm_task, &md);
        bn_prof_mark(f, &t_prof, BN_PROF_DOWN);
        bn_tok_run(&tj, BN_TOK_RESID);
        bn_prof_mark(f, &t_prof, BN_PROF_TOKEN_OPS);
    }

    /* output norm of every output row (xn row o), embeddings, and the prepared rows of
     * those that need logits (xprep row p) */
    int64_t o = 0, p = 0, t0 = 0;
    const bn_fwd_seg *single = NULL;
    for (int s = 0; s < n_seg; s++) {
        const bn_fwd_seg *g = &seg[s];
        for (int64_t i = bn_seg_out0(g); i < g->n; i++, o++) {
            float *x = f->xn + o * E;
            K->rmsnorm(f->h + (t0 + i) * E, m->output_norm, E, hp->eps, x);
            if (g->embd && i >= g->embd0) memcpy(g->embd + (i - g->embd0) * E, x, (size_t)E * sizeof(float));
            if (g->logits && i >= g->logits0) K->dense_prep(&m->output, x, f->xprep + (size_t)(p++) * f->prep_stride);
        }
        if (g->logits && g->n > g->logits0) single = g;
        t0 += g->n;
    }
    if (f->prof) {
        f->prof->steps++;
        f->prof->tokens += (uint64_t)n;
    }
    if (p == 0) {
        bn_prof_mark(f, &t_prof, BN_PROF_OUTPUT);
        if (f->prof) f->prof->ns[BN_PROF_TOTAL] += t_prof - t_start;
        return BITNET_OK;
    }
    if (m->screen_mode == BITNET_SCREEN_EXACT && p == 1 && single->screen) {
        bn_screen_buf *sb = single->screen;
        memcpy(sb->x, f->xprep, f->prep_stride);
        bitnet_status st = bn_screen_run(f, f->xprep, 1, sb->s, sb->e);
        if (st != BITNET_OK) return st;
        sb->done = 1;
        bn_prof_mark(f, &t_prof, BN_PROF_OUTPUT);
        if (f->prof) f->prof->ns[BN_PROF_TOTAL] += t_prof - t_start;
        return BITNET_OK;
    }
    if (m->screen_mode == BITNET_SCREEN_INT8 || m->screen_mode == BITNET_SCREEN_INT6) { /* lossy: the copy's logits */
        bitnet_status st = bn_screen_run(f, f->xprep, p, lg ? lg : single->logits, NULL);
        if (st != BITNET_OK) return st;
    } else {
        bn_dense_job dj = {f, &m->output, V, p, lg ? lg : single->logits, V, 0, NULL, NULL};
        bn_pool_run(f->pool, bn_dense_task, &dj);
    }
    if (hp->logit_softcap > 0) { /* [gemma3] logits = c * tanh(logits / c), as ggml scales */
        const float c = hp->logit_softcap, inv = 1.0f / c;
        float *y = lg ? lg : single->logits;
        for (int64_t i = 0; i < p * V; i++) y[i] = tanhf(y[i] * inv) * c;
    }
    if (lg) { /* hand each segment its rows */
        int64_t r = 0;
        for (int s = 0; s < n_seg; s++) {
            const bn_fwd_seg *g = &seg[s];
            if (!g->logits || g->n <= g->logits0) continue;
            size_t rows = (size_t)(g->n - g->logits0);
            memcpy(g->logits, lg + r * V, rows * (size_t)V * sizeof(float));
            r += (int64_t)rows;
        }
    }
    bn_prof_mark(f, &t_prof, BN_PROF_OUTPUT);
    if (f->prof) f->prof->ns[BN_PROF_TOTAL] += t_prof - t_start;
    return BITNET_OK;
}
