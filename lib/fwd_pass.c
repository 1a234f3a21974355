/*
 * fwd_pass.c -- the W1.58A8 forward pass, readable top to bottom (formats.md 4.1-4.3).
 *
 * For a batch of n tokens at positions p0..p0+n-1 (h = residual stream, n_embd):
 *
 *   h = token_embd[id]                                     (file type -> f32)
 *   per layer:
 *     x = RMSNorm(h, attn_norm); xq = int8(x) per token    (formats.md 3.6)
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
 * q, k and v share one quantization of x (each matmul re-quantizing the same row would
 * give identical int8 values), as do gate and up.  Matmuls, attention and the output
 * layer are split across the session's threads by output rows / heads; every output
 * element is computed by one thread in a fixed order, so results do not depend on the
 * thread count.
 */
#include "fwd.h"

#include "type_table.h"

#include <math.h>
#include <stdatomic.h>

static int64_t bn_max3(int64_t a, int64_t b, int64_t c) {
    int64_t m = a > b ? a : b;
    return m > c ? m : c;
}

size_t bn_fwd_kv_row_bytes(const bn_fwd *f) { return (size_t)f->n_kv * (f->kv_f16 ? 2u : 4u); }

bitnet_status bn_fwd_init(bn_fwd *f, const bitnet_model *m, uint32_t n_ctx, int64_t n_batch, int kv_f16,
                          int n_threads) {
    memset(f, 0, sizeof *f);
    const bn_hparams *hp = &m->hp;
    f->m = m;
    f->k = m->k;
    f->kv_f16 = kv_f16;
    f->n_ctx = n_ctx;
    f->n_batch = n_batch;
    f->n_kv = hp->n_head_kv * hp->head_dim;
    const int64_t n_q = hp->n_head * hp->head_dim, n_max = bn_max3(hp->n_embd, n_q, hp->n_ff);
    f->n_pad = (n_max + BN_TMAT_BLOCK - 1) / BN_TMAT_BLOCK * BN_TMAT_BLOCK;
    bitnet_status st = bn_pool_create(n_threads, &f->pool);
    if (st != BITNET_OK) return st;
    int nth = bn_pool_size(f->pool);

    f->kc = bn_calloc((size_t)hp->n_layer, sizeof(void *));
    f->vc = bn_calloc((size_t)hp->n_layer, sizeof(void *));
    if (!f->kc || !f->vc) goto nomem;
    size_t layer_bytes = (size_t)n_ctx * bn_fwd_kv_row_bytes(f);
    for (int64_t l = 0; l < hp->n_layer; l++) {
        f->kc[l] = bn_aligned_alloc(64, layer_bytes);
        f->vc[l] = bn_aligned_alloc(64, layer_bytes);
        if (!f->kc[l] || !f->vc[l]) goto nomem;
    }
    size_t nb = (size_t)n_batch;
    f->h = bn_mallocn(nb * (size_t)hp->n_embd, sizeof(float));
    f->xn = bn_mallocn(nb * (size_t)n_max, sizeof(float));
    f->q = bn_mallocn(nb * (size_t)n_q, sizeof(float));
    f->att = bn_mallocn(nb * (size_t)n_q, sizeof(float));
    f->kx = bn_mallocn(nb * (size_t)f->n_kv, sizeof(float));
    f->vx = bn_mallocn(nb * (size_t)f->n_kv, sizeof(float));
    f->g = bn_mallocn(nb * (size_t)hp->n_ff, sizeof(float));
    f->u = bn_mallocn(nb * (size_t)hp->n_ff, sizeof(float));
    f->tmp = bn_mallocn(nb * (size_t)hp->n_embd, sizeof(float));
    f->qbuf = bn_aligned_alloc(64, nb * (size_t)f->n_pad);
    f->qrows = bn_mallocn(nb, sizeof(bn_qrow));
    f->prep_stride = (BN_DENSE_PREP_BYTES(hp->n_embd) + 63) / 64 * 64;
    f->xprep = bn_aligned_alloc(64, nb * f->prep_stride);
    f->att_scratch = bn_mallocn((size_t)nth * n_ctx, sizeof(float));
    f->dense_scratch = bn_mallocn((size_t)nth * BN_DENSE_TOK * (size_t)hp->n_embd, sizeof(float));
    if (!f->h || !f->xn || !f->q || !f->att || !f->kx || !f->vx || !f->g || !f->u || !f->tmp || !f->qbuf ||
        !f->qrows || !f->xprep || !f->att_scratch || !f->dense_scratch)
        goto nomem;
    for (size_t t = 0; t < nb; t++) f->qrows[t].q = f->qbuf + t * (size_t)f->n_pad;
    return BITNET_OK;
nomem:
    bn_fwd_free(f);
    return bn_err(BITNET_E_NOMEM, "out of memory for a session (n_ctx %u, n_batch %lld)", n_ctx, (long long)n_batch);
}

void bn_fwd_free(bn_fwd *f) {
    if (!f->m) return;
    bn_pool_free(f->pool);
    if (f->kc)
        for (int64_t l = 0; l < f->m->hp.n_layer; l++) bn_aligned_free(f->kc[l]);
    if (f->vc)
        for (int64_t l = 0; l < f->m->hp.n_layer; l++) bn_aligned_free(f->vc[l]);
    bn_free(f->kc);
    bn_free(f->vc);
    bn_free(f->h);
    bn_free(f->xn);
    bn_free(f->q);
    bn_free(f->att);
    bn_free(f->kx);
    bn_free(f->vx);
    bn_free(f->g);
    bn_free(f->u);
    bn_free(f->tmp);
    bn_aligned_free(f->qbuf);
    bn_free(f->qrows);
    bn_aligned_free(f->xprep);
    bn_free(f->att_scratch);
    bn_free(f->dense_scratch);
    memset(f, 0, sizeof *f);
}

void bn_embed_row(const bitnet_model *m, int32_t id, float *out) {
    bn_dmat_row_f32(&m->tok_embd, id, out);
}

/* ---- parallel jobs ------------------------------------------------------------------- */

/* Rows are handed out in chunks through an atomic counter rather than split once per
 * thread: when another process takes a core, the thread that still runs picks up the
 * rest instead of waiting for the stalled one.  Chunk boundaries depend only on the
 * matrix and the thread count (multiples of 4 rows, the interleaved layouts' groups),
 * and every row is computed whole by whichever thread takes its chunk, so results do
 * not depend on scheduling. */
static int64_t bn_chunk_rows(int64_t rows, int nth) {
    int64_t c = rows / ((int64_t)nth * 8);
    if (c < 64) c = 64;
    return (c + 3) / 4 * 4;
}

/* Up to three ternary matmuls sharing one quantized input. */
typedef struct bn_mm_job {
    const bn_kernels *k;
    const bn_tmat    *w[3];
    float            *y[3];
    int               nw;
    const bn_qrow    *x;
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
        j->k->ternary_matmul(j->w[i], lo, hi, j->x, j->n_tok, j->y[i], j->w[i]->rows);
    }
}

typedef struct bn_attn_job {
    bn_fwd          *f;
    int64_t          l, n_tok;
    int32_t          pos0;
    _Atomic int64_t  next;
} bn_attn_job;

static void bn_attn_task(void *ctx, int ith, int nth) {
    bn_attn_job *j = ctx;
    bn_fwd *f = j->f;
    const bn_hparams *hp = &f->m->hp;
    const int64_t hd = hp->head_dim, n_q = hp->n_head * hd, grp = hp->n_head / hp->n_head_kv;
    const float scale = 1.0f / sqrtf((float)hd);
    float *scratch = f->att_scratch + (size_t)ith * f->n_ctx;
    const int64_t items = j->n_tok * hp->n_head, chunk = items / ((int64_t)nth * 16) + 1;
    const size_t esz = f->kv_f16 ? 2u : 4u;
    int64_t lo, hi;
    while (bn_claim(&j->next, items, chunk, &lo, &hi))
      for (int64_t i = lo; i < hi; i++) {
        int64_t t = i / hp->n_head, h = i % hp->n_head, kvh = h / grp;
        const uint8_t *kb = (const uint8_t *)f->kc[j->l] + (size_t)(kvh * hd) * esz;
        const uint8_t *vb = (const uint8_t *)f->vc[j->l] + (size_t)(kvh * hd) * esz;
        f->k->attention(f->q + t * n_q + h * hd, kb, vb, f->kv_f16, (int64_t)j->pos0 + t + 1, hd, f->n_kv, scale,
                        scratch, f->att + t * n_q + h * hd);
      }
}

typedef struct bn_dense_job {
    bn_fwd          *f;
    const bn_dmat   *w;
    int64_t          rows, n_tok;
    float           *y;
    int64_t          ldy;
    _Atomic int64_t  next; /* next chunk (see bn_chunk_rows) */
} bn_dense_job;

static void bn_dense_task(void *ctx, int ith, int nth) {
    bn_dense_job *j = ctx;
    int64_t lo, hi;
    while (bn_claim(&j->next, j->rows, bn_chunk_rows(j->rows, nth), &lo, &hi))
        j->f->k->dense_matmul(j->w, lo, hi, j->f->xprep, j->f->prep_stride, j->n_tok, j->y, j->ldy,
                              j->f->dense_scratch + (size_t)ith * BN_DENSE_TOK * (size_t)j->f->m->hp.n_embd);
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

static void bn_store_kv_row(const bn_fwd *f, const float *r, void *cache, int32_t pos) {
    if (f->kv_f16) {
        uint16_t *d = (uint16_t *)cache + (size_t)pos * (size_t)f->n_kv;
        for (int64_t i = 0; i < f->n_kv; i++) d[i] = bn_f32_to_f16(r[i]);
    } else {
        memcpy((float *)cache + (size_t)pos * (size_t)f->n_kv, r, (size_t)f->n_kv * sizeof(float));
    }
}

/* ---- per-token work between the matmuls ---------------------------------------------------
 * Norms, activation quantization, RoPE, KV stores and the FFN activation are independent
 * per token: a batch splits them by tokens across the pool (one token runs inline, where a
 * pool round trip would cost more than the work).  Each token's operations and their order
 * are the same either way, so results do not depend on the thread count. */
enum { BN_TOK_ATTN_IN, BN_TOK_ROPE_KV, BN_TOK_ATTN_OUT, BN_TOK_FFN_IN, BN_TOK_FFN_ACT, BN_TOK_RESID };

typedef struct bn_tok_job {
    bn_fwd         *f;
    const bn_layer *L;
    int64_t         l, n;
    int32_t         pos0;
    int             stage;
    _Atomic int64_t next;
} bn_tok_job;

/* Quantize row t of x (n values) into f->qrows[t]. */
static void bn_quant_row(bn_fwd *f, const float *x, int64_t n, int64_t t) {
    f->k->act_quant(x, n, (n + BN_TMAT_BLOCK - 1) / BN_TMAT_BLOCK * BN_TMAT_BLOCK, &f->qrows[t]);
}

static void bn_tok_stage(const bn_tok_job *j, int64_t t) {
    bn_fwd *f = j->f;
    const bitnet_model *m = f->m;
    const bn_kernels *K = f->k;
    const bn_hparams *hp = &m->hp;
    const bn_layer *L = j->L;
    const int64_t E = hp->n_embd, hd = hp->head_dim, n_q = hp->n_head * hd, n_kv = f->n_kv, F = hp->n_ff;
    float *h = f->h + t * E, *xn = f->xn + t * E;
    switch (j->stage) {
    case BN_TOK_ATTN_IN: /* x = RMSNorm(h); int8(x) for q, k, v */
        K->rmsnorm(h, L->attn_norm, E, hp->eps, xn);
        bn_quant_row(f, xn, E, t);
        break;
    case BN_TOK_ROPE_KV: {
        float *q = f->q + t * n_q, *k = f->kx + t * n_kv, *v = f->vx + t * n_kv;
        bn_scale_bias(q, n_q, 1, L->sq, L->bq);
        bn_scale_bias(k, n_kv, 1, L->sk, L->bk);
        bn_scale_bias(v, n_kv, 1, L->sv, L->bv);
        K->rope(q, hp->n_head, hd, hp->n_rot, j->pos0 + (int32_t)t, hp->rope_base, m->rope_freqs, m->rope_neox);
        K->rope(k, hp->n_head_kv, hd, hp->n_rot, j->pos0 + (int32_t)t, hp->rope_base, m->rope_freqs, m->rope_neox);
        bn_store_kv_row(f, k, f->kc[j->l], j->pos0 + (int32_t)t);
        bn_store_kv_row(f, v, f->vc[j->l], j->pos0 + (int32_t)t);
        break;
    }
    case BN_TOK_ATTN_OUT: { /* [sub-norm]; int8 for Wo */
        float *a = f->att + t * n_q;
        if (L->attn_sub_norm) K->rmsnorm(a, L->attn_sub_norm, n_q, hp->eps, a);
        bn_quant_row(f, a, n_q, t);
        break;
    }
    case BN_TOK_FFN_IN: { /* h += Wo a; x = RMSNorm(h); int8(x) for gate, up */
        float *o = f->tmp + t * E;
        bn_scale_bias(o, E, 1, L->so, L->bo);
        for (int64_t i = 0; i < E; i++) h[i] += o[i];
        K->rmsnorm(h, L->ffn_norm, E, hp->eps, xn);
        bn_quant_row(f, xn, E, t);
        break;
    }
    case BN_TOK_FFN_ACT: { /* f = act(g) * u; [sub-norm]; int8 for Wdown */
        float *g = f->g + t * F, *u = f->u + t * F;
        bn_scale_bias(g, F, 1, L->sgate, L->bgate);
        bn_scale_bias(u, F, 1, L->sup, L->bup);
        for (int64_t i = 0; i < F; i++) {
            float gi = g[i], a;
            if (m->relu2) {
                float r = gi > 0.f ? gi : 0.f;
                a = r * r;
            } else {
                a = gi / (1.0f + expf(-gi));
            }
            g[i] = a * u[i];
        }
        if (L->ffn_sub_norm) K->rmsnorm(g, L->ffn_sub_norm, F, hp->eps, g);
        bn_quant_row(f, g, F, t);
        break;
    }
    case BN_TOK_RESID: { /* h += Wdown f */
        float *o = f->tmp + t * E;
        bn_scale_bias(o, E, 1, L->sdown, L->bdown);
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

void bn_fwd_eval(bn_fwd *f, const bitnet_token *tok, int64_t n, int32_t pos0, int64_t first_out, float *embd,
                 float *logits) {
    const bitnet_model *m = f->m;
    const bn_kernels *K = f->k;
    const bn_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;

    for (int64_t t = 0; t < n; t++) bn_embed_row(m, tok[t], f->h + t * E);

    for (int64_t l = 0; l < hp->n_layer; l++) {
        const bn_layer *L = &m->layers[l];
        bn_tok_job tj = {f, L, l, n, pos0, 0, 0};

        /* attention */
        bn_tok_run(&tj, BN_TOK_ATTN_IN);
        bn_mm_job mm = {K, {&L->wq, &L->wk, &L->wv}, {f->q, f->kx, f->vx}, 3, f->qrows, n, 0};
        bn_pool_run(f->pool, bn_mm_task, &mm);
        bn_tok_run(&tj, BN_TOK_ROPE_KV);
        bn_attn_job aj = {f, l, n, pos0, 0};
        bn_pool_run(f->pool, bn_attn_task, &aj);
        bn_tok_run(&tj, BN_TOK_ATTN_OUT);
        bn_mm_job mo = {K, {&L->wo}, {f->tmp}, 1, f->qrows, n, 0};
        bn_pool_run(f->pool, bn_mm_task, &mo);

        /* feed-forward */
        bn_tok_run(&tj, BN_TOK_FFN_IN);
        bn_mm_job mg = {K, {&L->wgate, &L->wup}, {f->g, f->u}, 2, f->qrows, n, 0};
        bn_pool_run(f->pool, bn_mm_task, &mg);
        bn_tok_run(&tj, BN_TOK_FFN_ACT);
        bn_mm_job md = {K, {&L->wdown}, {f->tmp}, 1, f->qrows, n, 0};
        bn_pool_run(f->pool, bn_mm_task, &md);
        bn_tok_run(&tj, BN_TOK_RESID);
    }

    /* output norm and logits for tokens first_out..n-1 */
    const int64_t n_out = n - first_out;
    for (int64_t t = 0; t < n_out; t++) {
        float *o = f->xn + t * E;
        K->rmsnorm(f->h + (first_out + t) * E, m->output_norm, E, hp->eps, o);
        if (embd) memcpy(embd + t * E, o, (size_t)E * sizeof(float));
        K->dense_prep(&m->output, o, f->xprep + (size_t)t * f->prep_stride);
    }
    if (logits) {
        bn_dense_job dj = {f, &m->output, hp->n_vocab, n_out, logits, hp->n_vocab, 0};
        bn_pool_run(f->pool, bn_dense_task, &dj);
    }
}
