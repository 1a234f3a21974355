/*
 * fwd.h -- the forward pass over a batch of tokens (lib/fwd_pass.c) and the state
 * it needs: the KV cache and scratch buffers, owned by a session.
 */
#ifndef BN_FORWARD_H
#define BN_FORWARD_H

#include "model.h"
#include "core_pool.h"

typedef struct bn_fwd {
    const bitnet_model *m;
    const bn_kernels   *k;
    int                 kv_f16;   /* 1: cache elements are f16, 0: f32              */
    uint32_t            n_ctx;
    int64_t             n_batch;  /* most tokens per bn_fwd_eval                    */
    int64_t             n_kv;     /* n_head_kv * head_dim: one cache row           */
    void              **kc, **vc; /* per layer: n_ctx rows of n_kv elements        */
    /* scratch for n_batch tokens */
    float   *h;       /* [n_batch][n_embd] residual stream                          */
    float   *xn;      /* [n_batch][n_max] normalised inputs                          */
    float   *q, *kx, *vx, *att; /* [n_batch][n_q], [n_batch][n_kv] x2, [n_batch][n_q] */
    float   *g, *u;   /* [n_batch][n_ff]                                            */
    float   *tmp;     /* [n_batch][n_embd]                                          */
    int64_t  n_pad;   /* round_up(n_max, 128)                                      */
    int8_t  *qbuf;    /* [n_batch][n_pad]                                           */
    bn_qrow *qrows;   /* [n_batch]                                                  */
    uint8_t *xprep;   /* [n_batch][prep_stride] activations for the output layer    */
    size_t   prep_stride;
    float   *att_scratch;   /* [n_threads][n_ctx]                                   */
    float   *dense_scratch; /* [n_threads][BN_DENSE_TOK * n_embd]                   */
    bn_pool *pool;
} bn_fwd;

bitnet_status bn_fwd_init(bn_fwd *f, const bitnet_model *m, uint32_t n_ctx, int64_t n_batch, int kv_f16,
                          int n_threads);
void bn_fwd_free(bn_fwd *f);

/* Bytes of one cache row (of one layer, K or V). */
size_t bn_fwd_kv_row_bytes(const bn_fwd *f);

/* Evaluate tokens tok[0..n) (n <= n_batch, ids already validated) at positions
 * pos0.. (pos0 + n <= n_ctx).  For tokens first_out..n-1, writes the final hidden
 * state after the output norm to embd (n_embd floats each; may be NULL) and the
 * logits to logits (n_vocab floats each; may be NULL). */
void bn_fwd_eval(bn_fwd *f, const bitnet_token *tok, int64_t n, int32_t pos0, int64_t first_out, float *embd,
                 float *logits);

#endif
