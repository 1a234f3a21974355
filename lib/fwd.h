/*
 * fwd.h -- the forward pass (lib/fwd_pass.c) and the two kinds of state it needs:
 *
 *   bn_kv    the KV cache of one token sequence (a session owns one);
 *   bn_work  scratch for up to n_batch tokens plus the thread pool that runs a step
 *            (a session owns one for bitnet_session_eval, a bitnet_batch owns one for
 *            evaluating many sessions in one step).
 *
 * One step evaluates a list of segments: each segment is a run of consecutive tokens
 * of one sequence (its KV cache, its start position, where its outputs go).  Every
 * weight matrix is read once per step for all the step's tokens; attention runs per
 * token against its own sequence's cache.
 */
#ifndef BN_FWD_H
#define BN_FWD_H

#include "core_pool.h"
#include "model.h"

typedef struct bn_kv {
    int      kv_f16;  /* 1: cache elements are f16, 0: f32      */
    uint32_t n_ctx;   /* positions                               */
    int64_t  n_kv;    /* n_head_kv * head_dim: one cache row    */
    int64_t  n_layer;
    void   **kc, **vc; /* per layer: n_ctx rows of n_kv elements */
} bn_kv;

bitnet_status bn_kv_init(bn_kv *kv, const bitnet_model *m, uint32_t n_ctx, int kv_f16);
void bn_kv_free(bn_kv *kv);
/* Bytes of one cache row (of one layer, K or V). */
size_t bn_kv_row_bytes(const bn_kv *kv);

/* Wall time per kind of work in the forward pass (bitnet_*_get_profile), measured on the
 * calling thread around each parallel run when a profile is attached. */
typedef struct bn_prof {
    uint64_t steps, tokens;
    uint64_t ns[9]; /* BN_PROF_* */
} bn_prof;
enum {
    BN_PROF_EMBED, BN_PROF_TOKEN_OPS, BN_PROF_QKV, BN_PROF_ATTENTION, BN_PROF_ATTN_OUT, BN_PROF_GATE_UP,
    BN_PROF_DOWN, BN_PROF_OUTPUT, BN_PROF_TOTAL
};
/* Copy a profile into the public struct (lib/sess_core.c). */
void bn_prof_export(const bn_prof *p, bitnet_profile *out, size_t struct_size);

typedef struct bn_work {
    const bitnet_model *m;
    const bn_kernels   *k;
    int64_t             n_batch;  /* most tokens per step                          */
    uint32_t            n_ctx;    /* longest sequence att_scratch has room for     */
    /* scratch for n_batch tokens */
    float   *h;       /* [n_batch][n_embd] residual stream                          */
    float   *xn;      /* [n_batch][n_max] normalised inputs                          */
    float   *q, *kx, *vx, *att; /* [n_batch][n_q], [n_batch][n_kv] x2, [n_batch][n_q] */
    float   *g, *u;   /* [n_batch][n_ff]                                            */
    float   *tmp;     /* [n_batch][n_embd]                                          */
    int64_t  n_pad;   /* bn_act_pad(n_max)                                         */
    int64_t  q_stride; /* bytes between tokens' int8 rows: n_pad + 64, so that the
                          rows of a multi-token tile never sit 4 KiB apart (they would
                          all map to the same L1 sets: n_pad is often 4096)           */
    int8_t  *qbuf;    /* [n_batch][q_stride]                                        */
    bn_qrow *qrows;   /* [n_batch]                                                  */
    int8_t  *qbuf2, *qbuf3;   /* models with per-projection input norms: the own int8  */
    bn_qrow *qrows2, *qrows3; /* rows of k and v (qbuf2 also up's); NULL otherwise     */
    int8_t  *pkbuf[3]; /* the kernels' packed copies of qrows, qrows2, qrows3 (act_pack;
                          NULL when the kernels have none): BN_ACT_PACK_BYTES(n_batch, n_pad) */
    uint8_t *xprep;   /* [n_batch][prep_stride] activations for the output layer    */
    size_t   prep_stride;
    int32_t *tok_seg; /* [n_batch] segment of each token of the step               */
    int32_t *tok_pos; /* [n_batch] position of each token                          */
    float   *att_scratch;   /* [n_threads][BN_ATTN_MQ][n_ctx]                       */
    float   *dense_scratch; /* [n_threads][BN_DENSE_TOK * n_embd]                   */
    float   *lbuf;          /* logits of a multi-segment step before they are copied */
    bn_prof *prof;          /* NULL, or where the owner wants time accounted           */
    size_t   lbuf_rows;     /* rows lbuf has room for                               */
    int16_t *sxq;           /* screened output layer (lib/fwd_pass.c): [n_batch][cols_pad] int16 */
    float   *sc, *sxs;      /* activations, [n_batch][nb] bound coefficients, [n_batch] scales */
    float   *se;            /* [n_vocab] bounds (INT8 mode: discarded)                 */
    int64_t  s_rows;        /* rows sxq/sc/sxs have room for (0: not made yet)         */
    bn_pool *pool;
} bn_work;

bitnet_status bn_work_init(bn_work *w, const bitnet_model *m, int64_t n_batch, uint32_t n_ctx, int n_threads);
void bn_work_free(bn_work *w);
/* Make att_scratch hold n_ctx positions (sequences longer than the one w was made for). */
bitnet_status bn_work_reserve_ctx(bn_work *w, uint32_t n_ctx);

/* A run of n consecutive tokens of one sequence, at positions pos0.. (pos0 + n <=
 * kv->n_ctx; ids already validated).  Tokens [out0, n) get outputs: the final hidden
 * state after the output norm for tokens [embd0, n) into embd (n_embd floats each;
 * embd may be NULL), logits for tokens [logits0, n) into logits (n_vocab floats each;
 * may be NULL).  out0 = min(embd0, logits0) of those requested; n when none. */
/* Where a step screens the output layer instead of computing it (model screen_mode
 * BITNET_SCREEN_EXACT, docs/performance.md): s[j] = the screened logit of token j,
 * e[j] its proved error bound (|s[j] - logits[j]| <= e[j], docs/spec.md), x the F16
 * input row (w->prep_stride bytes) from which bn_fwd_output_* compute exact logits. */
typedef struct bn_screen_buf {
    float   *s, *e;
    uint8_t *x;
    int      done; /* set by bn_fwd_eval when it screened (logits then not written) */
} bn_screen_buf;

typedef struct bn_fwd_seg {
    bn_kv              *kv;
    const bitnet_token *tok;
    int64_t             n;
    int32_t             pos0;
    int64_t             embd0, logits0;
    float              *embd, *logits;
    bn_screen_buf      *screen; /* NULL, or screen this segment's logits when they are the
                                   step's only logits row and the model screens (EXACT) */
} bn_fwd_seg;

/* Evaluate segments seg[0..n_seg) in one step (their tokens sum to <= w->n_batch; no
 * two segments share a KV cache).  A token's results do not depend on the other
 * tokens of the step, on the segment split or on the thread count.  Fails only with
 * BITNET_E_NOMEM (logits of several segments are staged in w->lbuf). */
bitnet_status bn_fwd_eval(bn_work *w, const bn_fwd_seg *seg, int n_seg);

/* Exact logits from a saved F16 output-layer input x (bn_screen_buf.x): every row
 * (bn_fwd_output_full), or rows ids[0..n) into logits[ids[i]] (the same kernel as the
 * full layer, so the same values bit for bit). */
void bn_fwd_output_full(bn_work *w, const uint8_t *x, float *logits);
void bn_fwd_output_rows(bn_work *w, const uint8_t *x, const int32_t *ids, int64_t n, float *logits);

#endif
