/*
 * model_arch.c -- which architecture a file runs as, and its hyperparameters.
 *
 * general.architecture names the metadata prefix; the graph is decided from it and
 * from evidence (docs/spec.md §5):
 *   bitnet-b1.58, bitnet-25, bitnet-1.58   -> bitnet-b1.58 (2B-4T: ReLU^2, NEOX, tied)
 *   bitnet                                 -> bitnet (1bitLLM, SiLU) unless the file
 *        says otherwise: an activation key naming relu2 / squared ReLU, the LLaMA-3
 *        vocabulary size (128256) or grouped-query attention (1bitLLM models have
 *        n_head_kv == n_head) mean a 2B-4T model written by upstream's converter, which
 *        must run with ReLU^2 (upstream would wrongly run SiLU);
 *   llama                                  -> llama (Llama3-8B-1.58, Falcon3/Falcon-E)
 * bitnet_model_params.arch overrides the decision.  Every decision is logged (INFO).
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
    *arch = (bn_arch)a;
    if (*arch != BN_ARCH_BITNET) {
        BN_LOG_INFO("architecture: '%s' runs as %s", prefix, bn_arch_name(*arch));
        return BITNET_OK;
    }

    /* 'bitnet' is shared by the 1bitLLM models (SiLU) and upstream conversions of
     * 2B-4T (ReLU^2): weigh the evidence. */
    static const char *const act_keys[] = {"hidden_act", "hidden_activation", "activation",
                                           "feed_forward_activation", "ffn_activation"};
    char key[160];
    for (size_t i = 0; i < sizeof act_keys / sizeof act_keys[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", prefix, act_keys[i]);
        const char *v;
        uint64_t vl;
        if (bn_gguf_get_str(g, key, 0, &v, &vl) != BITNET_OK) continue;
        if (bn_contains_ci(v, (size_t)vl, "relu2") || bn_contains_ci(v, (size_t)vl, "relu_squared") ||
            bn_contains_ci(v, (size_t)vl, "squared_relu") || bn_contains_ci(v, (size_t)vl, "relu^2")) {
            *arch = BN_ARCH_BITNET_B158;
            BN_LOG_INFO("architecture: 'bitnet' file with %s = '%.*s': running as bitnet-b1.58 (ReLU^2 FFN)", key,
                        (int)vl, v);
        } else {
            BN_LOG_INFO("architecture: 'bitnet' file with %s = '%.*s': running as bitnet (SiLU FFN)", key, (int)vl,
                        v);
        }
        return BITNET_OK;
    }
    uint64_t n_vocab = 0, n_head = 0, n_head_kv = 0;
    snprintf(key, sizeof key, "%s.vocab_size", prefix);
    if (bn_gguf_get_u64(g, key, 0, &n_vocab) != BITNET_OK) {
        const bn_gguf_arr *toks;
        if (bn_gguf_get_arr(g, "tokenizer.ggml.tokens", 0, BITNET_GGUF_STRING, &toks) == BITNET_OK)
            n_vocab = toks->count;
    }
    snprintf(key, sizeof key, "%s.attention.head_count", prefix);
    (void)bn_gguf_get_u64(g, key, 0, &n_head);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", prefix);
    if (bn_gguf_get_u64(g, key, 0, &n_head_kv) != BITNET_OK) n_head_kv = n_head;
    if (n_vocab == 128256) {
        *arch = BN_ARCH_BITNET_B158;
        BN_LOG_INFO("architecture: 'bitnet' file with the LLaMA-3 vocabulary (128256 tokens): running as "
                    "bitnet-b1.58 (2B-4T, ReLU^2 FFN); override with arch = \"bitnet\"");
    } else if (n_head_kv != 0 && n_head_kv < n_head) {
        *arch = BN_ARCH_BITNET_B158;
        BN_LOG_INFO("architecture: 'bitnet' file with grouped-query attention (%llu/%llu heads): running as "
                    "bitnet-b1.58 (2B-4T, ReLU^2 FFN); override with arch = \"bitnet\"",
                    (unsigned long long)n_head, (unsigned long long)n_head_kv);
    } else {
        BN_LOG_INFO("architecture: 'bitnet' file without 2B-4T evidence: running as bitnet (1bitLLM, SiLU FFN)");
    }
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
