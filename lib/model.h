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
    BN_ARCH_LLAMA       = 2, /* LLaMA/Falcon3 ternary: SiLU, no sub-norms, NORM RoPE       */
    BN_ARCH_QWEN3       = 3, /* Qwen3 (BitNet embedding 0.6B): QK-norm, SiLU, NEOX RoPE    */
    BN_ARCH_GEMMA3      = 4  /* Gemma3 (BitNet embedding 270M): scaled embedding, QK-norm,
                                post-attention/FFN norms, GELU, NEOX RoPE, sliding window  */
} bn_arch;

/* The FFN activation: f = act(gate) * up. */
enum { BN_FFN_SILU = 0, BN_FFN_RELU2 = 1, BN_FFN_GELU = 2 };

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
    /* the graph's constants (lib/model_arch.c; docs/spec.md §5.5) */
    float   embd_scale;    /* token embeddings are multiplied by it (Gemma3: sqrtf(n_embd)) */
    float   q_scale;       /* q is multiplied by it after RoPE (Gemma3), else 1            */
    float   kq_scale;      /* the attention kernel's score scale (1/sqrt(head_dim), 1 when
                              q_scale holds it)                                          */
    float   logit_softcap; /* logits = c * tanh(logits / c) when > 0 (Gemma3 key)           */
    int64_t n_swa;         /* sliding window of the SWA layers (0: none)                    */
    float   rope_base_swa; /* RoPE base of the SWA layers                                   */
    int     pooling;       /* <arch>.pooling_type (bitnet_pooling), -1 when absent           */
} bn_hparams;

/* One transformer block.  Optional vectors are NULL when absent; optional .scale
 * multipliers (1bitLLM files) are 1 when absent. */
typedef struct bn_layer {
    float  *attn_norm, *attn_sub_norm, *ffn_norm, *ffn_sub_norm;
    float  *attn_q_norm, *attn_k_norm;     /* QK-norm per head (head_dim): qwen3, gemma3  */
    float  *attn_post_norm, *ffn_post_norm; /* gemma3: norms of the attention / FFN output */
    /* BitNet embedding models: each projection's own input RMSNorm (BitLinear style) */
    float  *q_in, *k_in, *v_in, *o_in, *gate_in, *up_in, *down_in;
    bn_tmat wq, wk, wv, wo, wgate, wup, wdown;
    float  *bq, *bk, *bv, *bo, *bgate, *bup, *bdown;
    float   sq, sk, sv, so, sgate, sup, sdown;
    int     swa;       /* sliding-window attention layer (hp.n_swa positions)           */
    float   rope_base; /* RoPE base of this layer                                       */
} bn_layer;

struct bitnet_model {
    bitnet_gguf *gguf;       /* the file; metadata stays readable for the model's life */
    bn_vocab    *vocab;      /* tokenizer (every model has one)                        */
    int          vocab_only;
    int          warned_ctx; /* the n_ctx > context_length warning was given (atomic) */
    char         arch[32];   /* the architecture it runs as                            */
    char         desc[192];

    /* --- everything below is zero for a vocab-only model --- */
    bn_arch           arch_id;
    bn_hparams        hp;
    int               sub_norms;  /* attn/ffn sub-norms present in the graph     */
    int               ffn_act;    /* BN_FFN_*: silu(g) * u, relu(g)^2 * u, gelu(g) * u */
    int               rope_neox;  /* 1 NEOX pairs, 0 NORM pairs                  */
    int               qk_norm;    /* per-head RMSNorm of q and k (qwen3, gemma3) */
    int               post_norms; /* attention/FFN output norms (gemma3)         */
    int               norm_in;    /* per-projection input norms (BitNet embedding
                                     models): q/k/v and gate/up get their own int8 rows */
    bn_layer         *layers;     /* n_layer                                     */
    float            *output_norm;
    float            *rope_freqs; /* optional rope_freqs.weight (n_rot/2)       */
    bn_dmat           tok_embd;   /* rows = embedding rows (>= n_vocab)          */
    bn_dmat           output;     /* the output layer (tok_embd when tied)       */
    bn_smat           screen;       /* screening copy of `output` (lib/model_screen.c), q NULL: none */
    int               screen_mode;  /* BITNET_SCREEN_* (bitnet_model_set_output_screening)          */
    const bn_kernels *k;
    uint32_t          weight_type;  /* file type of the ternary projections       */
    int64_t           n_params;
    uint64_t          size_bytes;
    uint64_t          fingerprint;  /* identifies the file (state blobs)          */
};

/* ---- lib/model_screen.c -------------------------------------------------------------------- */

void bn_screen_free(bn_smat *w);

/* ---- lib/model_arch.c ---------------------------------------------------------------------- */

/* Decide the architecture to run from the file (general.architecture plus evidence)
 * or from `override` (bitnet_model_params.arch); logs the decision.  On success
 * *arch is set and *prefix is the file's metadata key prefix (its arch string). */
bitnet_status bn_arch_decide(const bitnet_gguf *g, const char *override, bn_arch *arch, char *prefix,
                             size_t prefix_cap);
/* The canonical name ("bitnet-b1.58", "bitnet", "llama", "qwen3", "gemma3"). */
const char *bn_arch_name(bn_arch a);
/* Read and validate the hyperparameters (keys "<prefix>.*"); n_vocab from the vocab;
 * the graph constants of architecture `arch`. */
bitnet_status bn_hparams_load(const bitnet_gguf *g, const char *prefix, bn_arch arch, int64_t n_vocab,
                              bn_hparams *hp);
/* Which layers use sliding-window attention and their RoPE bases (after the layers are
 * allocated): "<prefix>.attention.sliding_window_pattern" or llama.cpp's default. */
bitnet_status bn_hparams_layers(const bitnet_gguf *g, const char *prefix, bn_arch arch, const bn_hparams *hp,
                                bn_layer *layers);

/* ---- lib/fwd_pass.c ------------------------------------------------------------------- */

/* Embedding row of token id (n_embd floats). */
void bn_embed_row(const bitnet_model *m, int32_t id, float *out);

/* Load a whole model from a GGUF image in memory (borrowed: it must outlive the model).
 * Internal: the model-loading fuzz target and tests use it to run the complete loader
 * (vocabulary, hyperparameters, every weight check) without a file. */
bitnet_status bn_model_load_memory(const void *data, size_t size, const bitnet_model_params *params,
                                   bitnet_model **out);

#endif
