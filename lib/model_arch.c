/*
 * model_arch.c -- which architecture a file runs as, and its hyperparameters.
 *
 * general.architecture names the metadata prefix and, as a rule, the graph
 * (docs/architecture.md, "Architectures"; the graphs: docs/spec.md §5):
 *   bitnet-b1.58, bitnet-25, bitnet-1.58   -> bitnet-b1.58 (2B-4T: ReLU^2, NEOX, tied)
 *   bitnet                                 -> bitnet (SiLU-gated FFN, as llama.cpp, which
 *                                             defines the name, and the 1bitLLM code run it)
 *   llama                                  -> llama (Llama3-8B-1.58, Falcon3/Falcon-E)
 *   qwen3, gemma3                          -> qwen3 / gemma3 (the BitNet embedding models
 *                                             0.6B and 270M; their graphs as llama.cpp and
 *                                             bitnet.cpp define them, docs/spec.md §5.5)
 * The declared architecture stands unless
 *   - the file itself names its FFN activation ("<arch>.hidden_act" and the other keys
 *     of bn_act_keys): relu2 / squared ReLU runs ReLU^2, silu / swish runs SiLU, anything
 *     else is refused; or
 *   - the evidence identifies one known model beyond doubt: the LLaMA-3 vocabulary
 *     (128256 tokens) together with the complete BitNet-b1.58-2B-4T tensor set (the
 *     exact 2B-4T hyperparameters and tensor shapes, sub-norms, no output.weight) in a
 *     'bitnet' file is 2B-4T as upstream llama.cpp's converter writes it (ReLU^2); the
 *     1bitLLM bitnet_b1_58-large / -3B hyperparameters with their 32002-token
 *     SentencePiece vocabulary in a 'bitnet-b1.58' file are those models as bitnet.cpp's
 *     converter labels them since 2026-07 (SiLU).
 * Every deviation from the declared architecture is a WARN line naming the evidence and
 * how to override it (bitnet_model_params.arch); every other decision an INFO line.
 * qwen3 and gemma3 have one activation each (SiLU, GELU): an activation key naming
 * another one is refused.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *bn_arch_name(bn_arch a) {
    switch (a) {
    case BN_ARCH_BITNET_B158: return "bitnet-b1.58";
    case BN_ARCH_BITNET: return "bitnet";
    case BN_ARCH_LLAMA: return "llama";
    case BN_ARCH_QWEN3: return "qwen3";
    case BN_ARCH_GEMMA3: return "gemma3";
    }
    return "?";
}

/* Map an arch name (file or override) to the graph; -1 if unknown. */
static int bn_arch_from_name(const char *s, size_t n) {
    static const struct { const char *name; bn_arch a; } tab[] = {
        {"bitnet-b1.58", BN_ARCH_BITNET_B158},
        {"bitnet-25", BN_ARCH_BITNET_B158},
        {"bitnet-1.58", BN_ARCH_BITNET_B158},
        {"bitnet", BN_ARCH_BITNET},
        {"llama", BN_ARCH_LLAMA},
        {"qwen3", BN_ARCH_QWEN3},
        {"gemma3", BN_ARCH_GEMMA3},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strlen(tab[i].name) == n && memcmp(tab[i].name, s, n) == 0) return (int)tab[i].a;
    return -1;
}

static int bn_contains_ci(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        size_t j = 0;
        while (j < k) {
            char c = s[i + j];
            if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
            if (c != needle[j]) break;
            j++;
        }
        if (j == k) return 1;
    }
    return 0;
}

/* "<prefix>.<name>" as an unsigned integer, 0 when absent or not an integer. */
static uint64_t bn_arch_u64(const bitnet_gguf *g, const char *prefix, const char *name) {
    char key[160];
    uint64_t v = 0;
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    if (bn_gguf_get_u64(g, key, 0, &v) != BITNET_OK) v = 0;
    return v;
}

/* The keys a file may name its FFN activation with (HF's hidden_act and variants). */
static const char *const bn_act_keys[] = {"hidden_act", "hidden_activation", "activation", "feed_forward_activation",
                                          "ffn_activation"};

enum { BN_ACT_NONE = 0, BN_ACT_RELU2 = 1, BN_ACT_SILU = 2, BN_ACT_OTHER = 3, BN_ACT_GELU = 4 };

/* The activation the file names, if any; key/value for messages. */
static int bn_act_of(const bitnet_gguf *g, const char *prefix, char *key, size_t key_cap, const char **v,
                     uint64_t *vl) {
    for (size_t i = 0; i < sizeof bn_act_keys / sizeof bn_act_keys[0]; i++) {
        snprintf(key, key_cap, "%s.%s", prefix, bn_act_keys[i]);
        if (bn_gguf_get_str(g, key, 0, v, vl) != BITNET_OK) continue;
        const size_t n = (size_t)*vl;
        if (bn_contains_ci(*v, n, "relu2") || bn_contains_ci(*v, n, "relu_squared") ||
            bn_contains_ci(*v, n, "squared_relu") || bn_contains_ci(*v, n, "relu^2") ||
            bn_contains_ci(*v, n, "relu_sqr") || bn_contains_ci(*v, n, "sqrelu"))
            return BN_ACT_RELU2;
        if (bn_contains_ci(*v, n, "silu") || bn_contains_ci(*v, n, "swish") || bn_contains_ci(*v, n, "swiglu"))
            return BN_ACT_SILU;
        if (bn_contains_ci(*v, n, "gelu") || bn_contains_ci(*v, n, "geglu")) return BN_ACT_GELU;
        return BN_ACT_OTHER;
    }
    return BN_ACT_NONE;
}

/* Tokens in the vocabulary (the token array; <prefix>.vocab_size if there is none). */
static uint64_t bn_arch_vocab(const bitnet_gguf *g, const char *prefix) {
    const bn_gguf_arr *toks;
    if (bn_gguf_get_arr(g, "tokenizer.ggml.tokens", 0, BITNET_GGUF_STRING, &toks) == BITNET_OK) return toks->count;
    return bn_arch_u64(g, prefix, "vocab_size");
}

/* Whether tensor `name` exists with exactly this shape (ne1 = 0: 1-D). */
static int bn_arch_has(const bitnet_gguf *g, const char *name, int64_t ne0, int64_t ne1) {
    int64_t i = bn_gguf_find_tensor(g, name);
    if (i < 0) return 0;
    const bn_gguf_tensor *t = &g->tensors[i];
    return t->ne[0] == ne0 && t->ne[1] == (ne1 ? ne1 : 1) && t->ne[2] == 1 && t->ne[3] == 1;
}

/* The shape of one known BitNet model: hyperparameters and, per layer, the tensors of
 * the bitnet graph (q/k/v/o, gate/up/down, the four norms) with their exact shapes. */
typedef struct bn_known {
    const char *name;
    uint64_t    n_vocab, n_layer, n_embd, n_head, n_head_kv, n_ff;
    const char *tok_model; /* tokenizer.ggml.model */
} bn_known;

static int bn_arch_is(const bitnet_gguf *g, const char *prefix, const bn_known *k) {
    const uint64_t n_head_kv = bn_arch_u64(g, prefix, "attention.head_count_kv");
    if (bn_arch_vocab(g, prefix) != k->n_vocab || bn_arch_u64(g, prefix, "block_count") != k->n_layer ||
        bn_arch_u64(g, prefix, "embedding_length") != k->n_embd ||
        bn_arch_u64(g, prefix, "attention.head_count") != k->n_head ||
        (n_head_kv ? n_head_kv : k->n_head) != k->n_head_kv ||
        bn_arch_u64(g, prefix, "feed_forward_length") != k->n_ff)
        return 0;
    const char *tm;
    uint64_t tl;
    if (bn_gguf_get_str(g, "tokenizer.ggml.model", 0, &tm, &tl) != BITNET_OK || tl != strlen(k->tok_model) ||
        memcmp(tm, k->tok_model, (size_t)tl) != 0)
        return 0;
    const int64_t E = (int64_t)k->n_embd, F = (int64_t)k->n_ff, KV = E / (int64_t)k->n_head * (int64_t)k->n_head_kv;
    if (!bn_arch_has(g, "token_embd.weight", E, (int64_t)k->n_vocab) || !bn_arch_has(g, "output_norm.weight", E, 0) ||
        bn_gguf_find_tensor(g, "output.weight") >= 0)
        return 0;
    char nm[96];
    for (uint64_t l = 0; l <= k->n_layer; l++) {
#define BN_HAS(suffix, a, b) (snprintf(nm, sizeof nm, "blk.%llu." suffix, (unsigned long long)l), bn_arch_has(g, nm, a, b))
        if (l == k->n_layer) { /* no extra layer */
            snprintf(nm, sizeof nm, "blk.%llu.attn_q.weight", (unsigned long long)l);
            if (bn_gguf_find_tensor(g, nm) >= 0) return 0;
            break;
        }
        if (!BN_HAS("attn_norm.weight", E, 0) || !BN_HAS("attn_sub_norm.weight", E, 0) ||
            !BN_HAS("ffn_norm.weight", E, 0) || !BN_HAS("ffn_sub_norm.weight", F, 0) ||
            !BN_HAS("attn_q.weight", E, E) || !BN_HAS("attn_k.weight", E, KV) || !BN_HAS("attn_v.weight", E, KV) ||
            !BN_HAS("attn_output.weight", E, E) || !BN_HAS("ffn_gate.weight", E, F) ||
            !BN_HAS("ffn_up.weight", E, F) || !BN_HAS("ffn_down.weight", F, E))
            return 0;
#undef BN_HAS
    }
    return 1;
}

/* BitNet-b1.58-2B-4T: LLaMA-3 vocabulary, 30 x 2560, GQA 20/5, FFN 6912, tied. */
static const bn_known bn_known_2b4t = {"BitNet-b1.58-2B-4T", 128256, 30, 2560, 20, 5, 6912, "gpt2"};
/* 1bitLLM bitnet_b1_58-large and -3B: LLaMA-2 SentencePiece + 2 added tokens, MHA. */
static const bn_known bn_known_1bitllm[] = {
    {"1bitLLM bitnet_b1_58-large", 32002, 24, 1536, 16, 16, 4096, "llama"},
    {"1bitLLM bitnet_b1_58-3B", 32002, 26, 3200, 32, 32, 8640, "llama"},
};

bitnet_status bn_arch_decide(const bitnet_gguf *g, const char *override, bn_arch *arch, char *prefix,
                             size_t prefix_cap) {
    const char *fa;
    uint64_t fl;
    bitnet_status st = bn_gguf_get_str(g, "general.architecture", 1, &fa, &fl);
    if (st != BITNET_OK) return st;
    if (fl == 0 || fl >= prefix_cap || memchr(fa, 0, (size_t)fl))
        return bn_err(BITNET_E_FORMAT, "general.architecture: invalid value (%llu bytes)", (unsigned long long)fl);
    memcpy(prefix, fa, (size_t)fl);
    prefix[fl] = 0;

    if (override) {
        int a = bn_arch_from_name(override, strlen(override));
        if (a < 0)
            return bn_err(BITNET_E_INVALID_ARG,
                          "model params: unknown arch override '%s' (use bitnet-b1.58, bitnet, llama, qwen3 or gemma3)",
                          override);
        *arch = (bn_arch)a;
        BN_LOG_INFO("architecture: running '%s' as %s (override from the caller)", prefix, bn_arch_name(*arch));
        return BITNET_OK;
    }
    int a = bn_arch_from_name(prefix, (size_t)fl);
    if (a < 0)
        return bn_err(BITNET_E_UNSUPPORTED,
                      "general.architecture: unsupported architecture '%s' (supported: bitnet-b1.58, bitnet-25, "
                      "bitnet-1.58, bitnet, llama, qwen3, gemma3)", prefix);
    const bn_arch declared = (bn_arch)a;
    *arch = declared;
    if (declared == BN_ARCH_LLAMA) {
        BN_LOG_INFO("architecture: '%s' runs as llama", prefix);
        return BITNET_OK;
    }
    char key[160];
    const char *v = NULL;
    uint64_t vl = 0;
    const int act = bn_act_of(g, prefix, key, sizeof key, &v, &vl);
    if (declared == BN_ARCH_QWEN3 || declared == BN_ARCH_GEMMA3) {
        /* one activation per graph (llama.cpp's qwen3: SiLU; gemma3: GELU): a key may only
         * confirm it */
        const int want = declared == BN_ARCH_QWEN3 ? BN_ACT_SILU : BN_ACT_GELU;
        if (act != BN_ACT_NONE && act != want)
            return bn_err(BITNET_E_UNSUPPORTED, "%s = '%.*s': architecture '%s' has a %s-gated FFN only", key, (int)vl,
                          v, prefix, want == BN_ACT_SILU ? "SiLU" : "GELU");
        const int norm_in = bn_gguf_find_tensor(g, "blk.0.attn_q_norm_in.weight") >= 0;
        BN_LOG_INFO("architecture: '%s' runs as %s%s", prefix, bn_arch_name(declared),
                    norm_in ? " with BitNet per-projection input norms (a BitNet embedding model)" : "");
        return BITNET_OK;
    }

    /* bitnet and bitnet-b1.58 differ in the FFN activation only (SiLU vs ReLU^2; the
     * 2B-4T graph also ties the output layer): first what the file says ... */
    if (act == BN_ACT_OTHER || act == BN_ACT_GELU)
        return bn_err(BITNET_E_UNSUPPORTED,
                      "%s = '%.*s': unsupported FFN activation for architecture '%s' (supported: silu, relu2)", key,
                      (int)vl, v, prefix);
    if (act != BN_ACT_NONE) {
        *arch = act == BN_ACT_RELU2 ? BN_ARCH_BITNET_B158 : BN_ARCH_BITNET;
        if (*arch == declared)
            BN_LOG_INFO("architecture: '%s' file with %s = '%.*s': runs as %s", prefix, key, (int)vl, v,
                        bn_arch_name(*arch));
        else
            BN_LOG_WARN("architecture: '%s' file with %s = '%.*s': running as %s (%s FFN) instead of the declared "
                        "architecture's %s; set bitnet_model_params.arch = \"%s\" (bitnet-cli --arch %s) to run it "
                        "as declared",
                        prefix, key, (int)vl, v, bn_arch_name(*arch), *arch == BN_ARCH_BITNET ? "SiLU" : "ReLU^2",
                        declared == BN_ARCH_BITNET ? "SiLU" : "ReLU^2", bn_arch_name(declared),
                        bn_arch_name(declared));
        return BITNET_OK;
    }
    /* ... then one known model identified beyond doubt */
    const bn_known *known = NULL;
    if (declared == BN_ARCH_BITNET && bn_arch_is(g, prefix, &bn_known_2b4t)) {
        known = &bn_known_2b4t;
        *arch = BN_ARCH_BITNET_B158;
    } else if (declared == BN_ARCH_BITNET_B158) {
        for (size_t i = 0; i < sizeof bn_known_1bitllm / sizeof bn_known_1bitllm[0]; i++)
            if (bn_arch_is(g, prefix, &bn_known_1bitllm[i])) {
                known = &bn_known_1bitllm[i];
                *arch = BN_ARCH_BITNET;
            }
    }
    if (known) {
        BN_LOG_WARN("architecture: '%s' file identified as %s (its vocabulary, hyperparameters and tensor set): "
                    "running as %s (%s FFN, as the model was trained) instead of the declared architecture's %s "
                    "FFN; set bitnet_model_params.arch = \"%s\" (bitnet-cli --arch %s) to run it as declared",
                    prefix, known->name, bn_arch_name(*arch), *arch == BN_ARCH_BITNET ? "SiLU" : "ReLU^2",
                    declared == BN_ARCH_BITNET ? "SiLU" : "ReLU^2", bn_arch_name(declared), bn_arch_name(declared));
        return BITNET_OK;
    }
    BN_LOG_INFO("architecture: '%s' runs as declared: %s (%s FFN)", prefix, bn_arch_name(declared),
                declared == BN_ARCH_BITNET ? "SiLU" : "ReLU^2");
    return BITNET_OK;
}

/* A required positive dimension "<prefix>.<name>" (<= limit). */
static bitnet_status bn_hp_dim(const bitnet_gguf *g, const char *prefix, const char *name, int required,
                               int64_t limit, int64_t *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    uint64_t v;
    bitnet_status st = bn_gguf_get_u64(g, key, required, &v);
    if (st == BITNET_E_NOT_FOUND && !required) return st;
    if (st != BITNET_OK) return st;
    if (v == 0 || v > (uint64_t)limit)
        return bn_err(BITNET_E_FORMAT, "%s: value %llu out of range (1..%lld)", key, (unsigned long long)v,
                      (long long)limit);
    *out = (int64_t)v;
    return BITNET_OK;
}

static bitnet_status bn_hp_float(const bitnet_gguf *g, const char *prefix, const char *name, double dflt,
                                 float *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    double v;
    bitnet_status st = bn_gguf_get_f64(g, key, 0, &v);
    if (st == BITNET_E_NOT_FOUND) {
        BN_LOG_WARN("%s missing: using %g", key, dflt);
        v = dflt;
    } else if (st != BITNET_OK) {
        return st;
    }
    if (!isfinite(v) || v <= 0 || v > 1e30)
        return bn_err(BITNET_E_FORMAT, "%s: value %g must be positive and finite", key, v);
    *out = (float)v;
    return BITNET_OK;
}

/* The graph constants of an architecture and the keys that only some graphs read
 * (docs/spec.md §5.5): llama.cpp's qwen3 and gemma3 builders, as bitnet.cpp runs them. */
static bitnet_status bn_hp_graph(const bitnet_gguf *g, const char *prefix, bn_arch arch, bn_hparams *hp) {
    char key[160];
    bitnet_status st;
    hp->embd_scale = 1.0f;
    hp->q_scale = 1.0f;
    hp->kq_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->rope_base_swa = hp->rope_base;
    hp->pooling = -1;
    /* <arch>.pooling_type: 0 none, 1 mean, 2 cls, 3 last, 4 rank (llama.cpp's enum) */
    uint64_t pt;
    snprintf(key, sizeof key, "%s.pooling_type", prefix);
    st = bn_gguf_get_u64(g, key, 0, &pt);
    if (st == BITNET_OK) {
        if (pt > 4) return bn_err(BITNET_E_FORMAT, "%s: value %llu is not a pooling type (0..4)", key, (unsigned long long)pt);
        hp->pooling = (int)pt;
    } else if (st != BITNET_E_NOT_FOUND) {
        return st;
    }
    /* every graph here is causal; encoder models (attention.causal = false) are not */
    int causal = 1;
    snprintf(key, sizeof key, "%s.attention.causal", prefix);
    st = bn_gguf_get_bool(g, key, 0, &causal);
    if (st != BITNET_OK && st != BITNET_E_NOT_FOUND) return st;
    if (!causal)
        return bn_err(BITNET_E_UNSUPPORTED, "%s = false: non-causal (encoder) attention is not supported", key);
    if (arch == BN_ARCH_QWEN3 && hp->n_rot != hp->head_dim) /* (llama.cpp's qwen3 graph asserts it) */
        return bn_err(BITNET_E_FORMAT, "%s.rope.dimension_count %lld differs from the head dimension %lld", prefix,
                      (long long)hp->n_rot, (long long)hp->head_dim);
    if (arch != BN_ARCH_GEMMA3) return BITNET_OK;

    /* Gemma3: the embedding is scaled by sqrt(n_embd) (f32); q is scaled after RoPE by
     * 1/sqrt(head_dim) (by 1/sqrt(n_embd / n_head) for the 62-layer 27B model, whose
     * query_pre_attn_scalar differs) and the scores are not scaled again. */
    hp->embd_scale = sqrtf((float)hp->n_embd);
    hp->q_scale = hp->n_layer == 62 ? 1.0f / sqrtf((float)(hp->n_embd / hp->n_head)) : 1.0f / sqrtf((float)hp->head_dim);
    hp->kq_scale = 1.0f;
    double cap = 0;
    snprintf(key, sizeof key, "%s.final_logit_softcapping", prefix);
    st = bn_gguf_get_f64(g, key, 0, &cap);
    if (st != BITNET_OK && st != BITNET_E_NOT_FOUND) return st;
    if (st == BITNET_OK && (!isfinite(cap) || cap < 0 || cap > 1e30))
        return bn_err(BITNET_E_FORMAT, "%s: value %g must be finite and >= 0", key, cap);
    hp->logit_softcap = (float)cap;
    /* sliding-window attention only when the file names a window (bitnet.cpp's converter
     * writes none: every layer attends to the whole context) */
    uint64_t swa = 0;
    snprintf(key, sizeof key, "%s.attention.sliding_window", prefix);
    st = bn_gguf_get_u64(g, key, 0, &swa);
    if (st != BITNET_OK && st != BITNET_E_NOT_FOUND) return st;
    if (swa > ((uint64_t)1 << 24)) return bn_err(BITNET_E_FORMAT, "%s: value %llu out of range", key, (unsigned long long)swa);
    hp->n_swa = (int64_t)swa;
    if (hp->n_swa > 0) {
        double b = 10000.0; /* llama.cpp's default base of the SWA layers */
        snprintf(key, sizeof key, "%s.rope.freq_base_swa", prefix);
        st = bn_gguf_get_f64(g, key, 0, &b);
        if (st != BITNET_OK && st != BITNET_E_NOT_FOUND) return st;
        if (!isfinite(b) || b <= 0 || b > 1e30) return bn_err(BITNET_E_FORMAT, "%s: value %g must be positive and finite", key, b);
        hp->rope_base_swa = (float)b;
    }
    return BITNET_OK;
}

bitnet_status bn_hparams_layers(const bitnet_gguf *g, const char *prefix, bn_arch arch, const bn_hparams *hp,
                                bn_layer *layers) {
    (void)arch;
    for (int64_t l = 0; l < hp->n_layer; l++) {
        layers[l].swa = 0;
        layers[l].rope_base = hp->rope_base;
    }
    if (hp->n_swa <= 0) return BITNET_OK;
    /* "<prefix>.attention.sliding_window_pattern": a period P (layer l is SWA unless
     * l % P == P - 1; P = 0: every layer) or one bool per layer (true: SWA); llama.cpp's
     * gemma3 default is P = 6 */
    char key[160];
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", prefix);
    uint64_t period = 6;
    const int64_t ki = bn_gguf_find_key(g, key);
    if (ki >= 0 && g->kv[ki].type == BITNET_GGUF_ARRAY) {
        const bn_gguf_arr *a = &g->arrs[g->kv[ki].arr];
        if (a->count != (uint64_t)hp->n_layer ||
            (a->elem_type != BITNET_GGUF_BOOL && a->elem_type != BITNET_GGUF_UINT8 && a->elem_type != BITNET_GGUF_INT8 &&
             a->elem_type != BITNET_GGUF_UINT32 && a->elem_type != BITNET_GGUF_INT32))
            return bn_err(BITNET_E_FORMAT, "%s: expected %lld booleans (one per layer), found an array of %llu", key,
                          (long long)hp->n_layer, (unsigned long long)a->count);
        for (int64_t l = 0; l < hp->n_layer; l++) layers[l].swa = bn_gguf_arr_i64(g, a, (uint64_t)l) != 0;
    } else {
        bitnet_status st = bn_gguf_get_u64(g, key, 0, &period);
        if (st != BITNET_OK && st != BITNET_E_NOT_FOUND) return st;
        for (int64_t l = 0; l < hp->n_layer; l++)
            layers[l].swa = period == 0 || (uint64_t)l % period < period - 1;
    }
    for (int64_t l = 0; l < hp->n_layer; l++)
        if (layers[l].swa) layers[l].rope_base = hp->rope_base_swa;
    return BITNET_OK;
}

bitnet_status bn_hparams_load(const bitnet_gguf *g, const char *prefix, bn_arch arch, int64_t n_vocab,
                              bn_hparams *hp) {
    memset(hp, 0, sizeof *hp);
    bitnet_status st;
    const int64_t big = (int64_t)1 << 20;
    if ((st = bn_hp_dim(g, prefix, "embedding_length", 1, big, &hp->n_embd)) != BITNET_OK) return st;
    if ((st = bn_hp_dim(g, prefix, "block_count", 1, 4096, &hp->n_layer)) != BITNET_OK) return st;
    if ((st = bn_hp_dim(g, prefix, "attention.head_count", 1, 4096, &hp->n_head)) != BITNET_OK) return st;
    if ((st = bn_hp_dim(g, prefix, "feed_forward_length", 1, big, &hp->n_ff)) != BITNET_OK) return st;
    st = bn_hp_dim(g, prefix, "attention.head_count_kv", 0, 4096, &hp->n_head_kv);
    if (st == BITNET_E_NOT_FOUND) hp->n_head_kv = hp->n_head;
    else if (st != BITNET_OK) return st;
    st = bn_hp_dim(g, prefix, "context_length", 0, (int64_t)1 << 24, &hp->n_ctx_train);
    if (st == BITNET_E_NOT_FOUND) {
        BN_LOG_WARN("%s.context_length missing: assuming 2048", prefix);
        hp->n_ctx_train = 2048;
    } else if (st != BITNET_OK) {
        return st;
    }
    st = bn_hp_dim(g, prefix, "attention.key_length", 0, BN_MAX_HEAD_DIM, &hp->head_dim);
    if (st == BITNET_E_NOT_FOUND) {
        if (hp->n_embd % hp->n_head != 0)
            return bn_err(BITNET_E_FORMAT, "%s.embedding_length %lld is not a multiple of attention.head_count %lld",
                          prefix, (long long)hp->n_embd, (long long)hp->n_head);
        hp->head_dim = hp->n_embd / hp->n_head;
    } else if (st != BITNET_OK) {
        return st;
    }
    int64_t vlen = 0;
    st = bn_hp_dim(g, prefix, "attention.value_length", 0, BN_MAX_HEAD_DIM, &vlen);
    if (st == BITNET_OK && vlen != hp->head_dim)
        return bn_err(BITNET_E_UNSUPPORTED, "%s.attention.value_length %lld differs from the key length %lld", prefix,
                      (long long)vlen, (long long)hp->head_dim);
    if (hp->head_dim > BN_MAX_HEAD_DIM || hp->head_dim % 2 != 0)
        return bn_err(BITNET_E_UNSUPPORTED, "%s: head dimension %lld must be even and at most %d", prefix,
                      (long long)hp->head_dim, BN_MAX_HEAD_DIM);
    if (hp->n_head_kv > hp->n_head || hp->n_head % hp->n_head_kv != 0)
        return bn_err(BITNET_E_FORMAT,
                      "%s.attention.head_count %lld is not a multiple of attention.head_count_kv %lld", prefix,
                      (long long)hp->n_head, (long long)hp->n_head_kv);
    st = bn_hp_dim(g, prefix, "rope.dimension_count", 0, BN_MAX_HEAD_DIM, &hp->n_rot);
    if (st == BITNET_E_NOT_FOUND) hp->n_rot = hp->head_dim;
    else if (st != BITNET_OK) return st;
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0)
        return bn_err(BITNET_E_FORMAT, "%s.rope.dimension_count %lld must be even and at most the head dimension %lld",
                      prefix, (long long)hp->n_rot, (long long)hp->head_dim);
    if ((st = bn_hp_float(g, prefix, "attention.layer_norm_rms_epsilon", 1e-5, &hp->eps)) != BITNET_OK) return st;
    if ((st = bn_hp_float(g, prefix, "rope.freq_base", 10000.0, &hp->rope_base)) != BITNET_OK) return st;
    if (n_vocab <= 0) return bn_err(BITNET_E_FORMAT, "tokenizer.ggml.tokens: the vocabulary is empty");
    hp->n_vocab = n_vocab;
    int64_t kv_vocab = 0;
    st = bn_hp_dim(g, prefix, "vocab_size", 0, (int64_t)1 << 31, &kv_vocab);
    if (st == BITNET_OK && kv_vocab != n_vocab)
        BN_LOG_WARN("%s.vocab_size %lld differs from the %lld tokens of the vocabulary: using the vocabulary", prefix,
                    (long long)kv_vocab, (long long)n_vocab);
    else if (st != BITNET_OK && st != BITNET_E_NOT_FOUND)
        return st;
    return bn_hp_graph(g, prefix, arch, hp);
}
