/*
 * model.h -- the loaded model (lib/model_load.c, lib/model_arch.c).  Read-only after
 * bitnet_model_load: sessions on many threads share it; all mutable state lives in
 * the session.
 */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include "gguf.h"
#include "kernels.h"
#include "tok_vocab.h"

/* The architectures a model can run as (docs/spec.md §5). */
typedef enum bn_arch {
    BN_ARCH_BITNET_B158 = 0, /* BitNet-b1.58-2B-4T: ReLU^2 FFN, sub-norms, NEOX RoPE, tied */
    BN_ARCH_BITNET      = 1, /* 1bitLLM bitnet_b1_58: SiLU FFN, sub-norms, NEOX RoPE       */
    BN_ARCH_LLAMA       = 2  /* LLaMA/Falcon3 ternary: SiLU, no sub-norms, NORM RoPE       */
} bn_arch;

typedef struct bn_hparams {
    int64_t n_vocab;     /* tokens in the vocabulary = logits per token          */
    int64_t n_ctx_train;
    int64_t n_embd;
    int64_t n_layer;
    int64_t n_head, n_head_kv, head_dim;
    int64_t n_ff;
    int64_t n_rot;       /* rotated dims per head                                 */
    float   eps;         /* RMSNorm epsilon                                       */
    float   rope_base;
} bn_hparams;

/* One transformer block.  Optional vectors are NULL when absent; optional .scale
 * multipliers (1bitLLM files) are 1 when absent. */
typedef struct bn_layer {
    float  *attn_norm, *attn_sub_norm, *ffn_norm, *ffn_sub_norm;
    bn_tmat wq, wk, wv, wo, wgate, wup, wdown;
    float  *bq, *bk, *bv, *bo, *bgate, *bup, *bdown;
    float   sq, sk, sv, so, sgate, sup, sdown;
} bn_layer;

struct bitnet_model {
    bitnet_gguf *gguf;       /* the file; metadata stays readable for the model's life */
    bn_vocab    *vocab;      /* tokenizer (every model has one)                        */
    int          vocab_only;
    char         arch[32];   /* the architecture it runs as                            */
    char         desc[192];

    /* --- everything below is zero for a vocab-only model --- */
    bn_arch           arch_id;
    bn_hparams        hp;
    int               sub_norms;  /* attn/ffn sub-norms present in the graph     */
    int               relu2;      /* FFN activation: 1 relu(g)^2 * u, 0 silu(g) * u */
    int               rope_neox;  /* 1 NEOX pairs, 0 NORM pairs                  */
    bn_layer         *layers;     /* n_layer                                     */
    float            *output_norm;
    float            *rope_freqs; /* optional rope_freqs.weight (n_rot/2)       */
    bn_dmat           tok_embd;   /* rows = embedding rows (>= n_vocab)          */
    bn_dmat           output;     /* the output layer (tok_embd when tied)       */
    const bn_kernels *k;
    uint32_t          weight_type;  /* file type of the ternary projections       */
    int64_t           n_params;
    uint64_t          size_bytes;
    uint64_t          fingerprint;  /* identifies the file (state blobs)          */
};

/* ---- lib/model_arch.c ---------------------------------------------------------------------- */

/* Decide the architecture to run from the file (general.architecture plus evidence)
 * or from `override` (bitnet_model_params.arch); logs the decision.  On success
 * *arch is set and *prefix is the file's metadata key prefix (its arch string). */
bitnet_status bn_arch_decide(const bitnet_gguf *g, const char *override, bn_arch *arch, char *prefix,
                             size_t prefix_cap);
/* The canonical name ("bitnet-b1.58", "bitnet", "llama"). */
const char *bn_arch_name(bn_arch a);
/* Read and validate the hyperparameters (keys "<prefix>.*"); n_vocab from the vocab. */
bitnet_status bn_hparams_load(const bitnet_gguf *g, const char *prefix, int64_t n_vocab, bn_hparams *hp);

/* ---- lib/fwd_pass.c ------------------------------------------------------------------- */

/* Embedding row of token id (n_embd floats). */
void bn_embed_row(const bitnet_model *m, int32_t id, float *out);

#endif
