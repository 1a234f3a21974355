/*
 * model_arch.c -- which architecture a file runs as, and its hyperparameters.
 *
 * general.architecture names the metadata prefix and, as a rule, the graph
 * (docs/architecture.md, "Architectures"; the graphs: docs/spec.md §5):
 *   bitnet-b1.58, bitnet-25, bitnet-1.58   -> bitnet-b1.58 (2B-4T: ReLU^2, NEOX, tied)
 *   bitnet                                 -> bitnet (SiLU-gated FFN, as llama.cpp, which
 *                                             defines the name, and the 1bitLLM code run it)
 *   llama                                  -> llama (Llama3-8B-1.58, Falcon3/Falcon-E)
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

enum { BN_ACT_NONE = 0, BN_ACT_RELU2 = 1, BN_ACT_SILU = 2, BN_ACT_OTHER = 3 };

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
                          "model params: unknown arch override '%s' (use bitnet-b1.58, bitnet or llama)", override);
        *arch = (bn_arch)a;
        BN_LOG_INFO("architecture: running '%s' as %s (override from the caller)", prefix, bn_arch_name(*arch));
        return BITNET_OK;
    }
    int a = bn_arch_from_name(prefix, (size_t)fl);
    if (a < 0)
        return bn_err(BITNET_E_UNSUPPORTED,
                      "general.architecture: unsupported architecture '%s' (supported: bitnet-b1.58, bitnet-25, "
                      "bitnet-1.58, bitnet, llama)", prefix);
    const bn_arch declared = (bn_arch)a;
    *arch = declared;
    if (declared == BN_ARCH_LLAMA) {
        BN_LOG_INFO("architecture: '%s' runs as llama", prefix);
        return BITNET_OK;
    }

    /* bitnet and bitnet-b1.58 differ in the FFN activation only (SiLU vs ReLU^2; the
     * 2B-4T graph also ties the output layer): first what the file says ... */
    char key[160];
    const char *v = NULL;
    uint64_t vl = 0;
    const int act = bn_act_of(g, prefix, key, sizeof key, &v, &vl);
    if (act == BN_ACT_OTHER)
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

bitnet_status bn_hparams_load(const bitnet_gguf *g, const char *prefix, int64_t n_vocab, bn_hparams *hp) {
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
    return BITNET_OK;
}
