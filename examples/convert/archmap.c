/*
 * archmap.c -- which model a Hugging Face directory holds, its hyperparameters, and
 * how its tensors map to GGUF tensors (docs/spec.md §5).
 *
 *   architectures[0]      family         GGUF arch written
 *   BitNetForCausalLM     2B-4T          i2_s, f16: "bitnet-b1.58" (bitnet.cpp's name)
 *                                        tq1_0, tq2_0: "bitnet" + bitnet.hidden_act = "relu2"
 *   BitnetForCausalLM     1bitLLM        "bitnet" (bitnet.cpp and upstream llama.cpp)
 *   LlamaForCausalLM      Llama/Falcon3  "llama" (q/k rows permuted for NORM RoPE)
 *
 * Why "bitnet" + hidden_act for TQ files of 2B-4T: upstream llama.cpp (the runtime for
 * TQ types) knows only "bitnet"; bitnet.cpp's "bitnet-b1.58" graph is the one that
 * matches but bitnet.cpp is not the TQ runtime.  libbitnet reads the hidden_act key
 * (lib/model_arch.c) and runs ReLU^2; upstream ignores the key and would run SiLU, which is
 * wrong for this model (documented in docs/convert.md).
 *
 * HF linear weights are [out, in] (in contiguous) = GGUF ne {in, out}.  Packed
 * checkpoints (quantization_config.quant_method "bitnet", uint8 weights) hold 4 rows
 * per byte along dim 0: row k*(out/4) + p is bits 2k..2k+1 of packed[p], code - 1 is
 * the ternary value; "weight_scale" multiplies (linear_class "autobitlinear") or
 * divides (BitLinear, the default) -- transformers integrations/bitnet.py.
 */
#include "convert.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cv_req_int(json_object *cfg, const char *key, const char *file, int64_t lo, int64_t hi, int64_t *out) {
    int r = cv_json_int(cfg, key, file, out);
    if (r < 0) return -1;
    if (r > 0) return cv_fail("%s: required key \"%s\" is missing", file, key);
    if (*out < lo || *out > hi)
        return cv_fail("%s: \"%s\" = %lld is out of range (%lld..%lld)", file, key, (long long)*out, (long long)lo,
                       (long long)hi);
    return 0;
}

int cv_hparams_load(cv_hparams *hp, const char *dir) {
    memset(hp, 0, sizeof *hp);
    char path[4096];
    if (cv_path(path, sizeof path, dir, "config.json") != 0) return cv_fail("%s: path too long", dir);
    json_object *cfg = cv_json_load(path, 1), *archs, *qc;
    if (!cfg) return -1;
    int rc = -1;
    static const struct { const char *name; cv_family f; } fams[] = {
        {"BitNetForCausalLM", CV_FAM_BITNET_2B4T},
        {"BitnetForCausalLM", CV_FAM_1BITLLM},
        {"LlamaForCausalLM", CV_FAM_LLAMA},
    };
    if (!json_object_object_get_ex(cfg, "architectures", &archs) || !json_object_is_type(archs, json_type_array) ||
        json_object_array_length(archs) < 1) {
        cv_fail("%s: \"architectures\" is missing", path);
        goto out;
    }
    const char *an;
    if (cv_json_as_str(json_object_array_get_idx(archs, 0), path, "architectures[0]", &an) != 0) goto out;
    size_t k = 0;
    while (k < sizeof fams / sizeof fams[0] && strcmp(fams[k].name, an) != 0) k++;
    if (k == sizeof fams / sizeof fams[0]) {
        cv_fail("%s: unknown architecture '%s' (supported: BitNetForCausalLM, BitnetForCausalLM, LlamaForCausalLM)",
                path, an);
        goto out;
    }
    hp->family = fams[k].f;
    hp->hf_arch = fams[k].name;
    const int64_t big = (int64_t)1 << 20;
    if (cv_req_int(cfg, "hidden_size", path, 1, big, &hp->n_embd) || cv_req_int(cfg, "num_hidden_layers", path, 1, 4096, &hp->n_layer) ||
        cv_req_int(cfg, "intermediate_size", path, 1, big, &hp->n_ff) ||
        cv_req_int(cfg, "num_attention_heads", path, 1, 4096, &hp->n_head) ||
        cv_req_int(cfg, "vocab_size", path, 1, (int64_t)1 << 31, &hp->n_vocab))
        goto out;
    int r = cv_json_int(cfg, "num_key_value_heads", path, &hp->n_head_kv);
    if (r < 0) goto out;
    if (r > 0) hp->n_head_kv = hp->n_head;
    if (hp->n_head_kv < 1 || hp->n_head % hp->n_head_kv != 0) {
        cv_fail("%s: num_attention_heads %lld is not a multiple of num_key_value_heads %lld", path,
                (long long)hp->n_head, (long long)hp->n_head_kv);
        goto out;
    }
    r = cv_json_int(cfg, "head_dim", path, &hp->head_dim);
    if (r < 0) goto out;
    if (r > 0) {
        if (hp->n_embd % hp->n_head != 0) {
            cv_fail("%s: hidden_size %lld is not a multiple of num_attention_heads %lld", path, (long long)hp->n_embd,
                    (long long)hp->n_head);
            goto out;
        }
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    if (hp->head_dim < 2 || hp->head_dim % 2 || hp->head_dim > 1024) {
        cv_fail("%s: head dimension %lld must be even and in 2..1024", path, (long long)hp->head_dim);
        goto out;
    }
    r = cv_json_int(cfg, "max_position_embeddings", path, &hp->n_ctx);
    if (r < 0) goto out;
    if (r > 0) hp->n_ctx = 2048;
    /* written as a u32 context_length, which the loader accepts in 1..2^24 */
    if (hp->n_ctx < 1 || hp->n_ctx > ((int64_t)1 << 24)) {
        cv_fail("%s: \"max_position_embeddings\" = %lld is out of range (1..%lld)", path, (long long)hp->n_ctx,
                (long long)1 << 24);
        goto out;
    }
    hp->eps = 1e-5;
    hp->rope_theta = 10000.0;
    if (cv_json_num(cfg, "rms_norm_eps", path, &hp->eps) < 0 || cv_json_num(cfg, "rope_theta", path, &hp->rope_theta) < 0)
        goto out;
    if (!(hp->eps > 0 && hp->eps < 1) || !(hp->rope_theta > 0)) {
        cv_fail("%s: rms_norm_eps / rope_theta out of range", path);
        goto out;
    }
    int tied;
    r = cv_json_bool(cfg, "tie_word_embeddings", path, &tied);
    if (r < 0) goto out;
    hp->tied = r == 0 ? tied : -1; /* -1: decide from the tensors */
    const char *act = hp->family == CV_FAM_BITNET_2B4T ? "relu2" : "silu";
    if (cv_json_str(cfg, "hidden_act", path, &act) < 0) goto out;
    snprintf(hp->act, sizeof hp->act, "%s", act);
    if (hp->family == CV_FAM_BITNET_2B4T && strcmp(hp->act, "relu2") != 0) {
        cv_fail("%s: BitNetForCausalLM with hidden_act '%s': only relu2 is supported", path, hp->act);
        goto out;
    }
    if (hp->family != CV_FAM_BITNET_2B4T && strcmp(hp->act, "silu") != 0) {
        cv_fail("%s: %s with hidden_act '%s': only silu is supported", path, hp->hf_arch, hp->act);
        goto out;
    }
    hp->scale_divides = 1;
    if (json_object_object_get_ex(cfg, "quantization_config", &qc) && json_object_is_type(qc, json_type_object)) {
        const char *qm = "", *lc = "bitlinear";
        if (cv_json_str(qc, "quant_method", path, &qm) < 0 || cv_json_str(qc, "linear_class", path, &lc) < 0) goto out;
        if (strcmp(qm, "bitnet") != 0) {
            cv_fail("%s: quantization_config.quant_method '%s' is not supported (only bitnet)", path, qm);
            goto out;
        }
        hp->scale_divides = strcmp(lc, "autobitlinear") != 0;
    }
    rc = 0;
out:
    json_object_put(cfg);
    return rc;
}

const char *cv_gguf_arch(const cv_hparams *hp, bitnet_type wtype) {
    switch (hp->family) {
    case CV_FAM_BITNET_2B4T:
        return wtype == BITNET_TYPE_TQ1_0 || wtype == BITNET_TYPE_TQ2_0 ? "bitnet" : "bitnet-b1.58";
    case CV_FAM_1BITLLM: return "bitnet";
    case CV_FAM_LLAMA: return "llama";
    }
    return "?";
}

typedef struct cv_list {
    cv_map *m;
    size_t  n, cap;
} cv_list;

/* Add tensor hf -> gguf with expected HF shape {rows, cols} (cols = 0: 1-D). */
static int cv_add(cv_list *l, cv_st *st, const cv_hparams *hp, const char *hf, const char *gguf, cv_kind kind,
                  int64_t rows, int64_t cols, int required, int permute) {
    cv_tensor *t = cv_st_find(st, hf);
    if (!t) {
        if (!required) return 0;
        return cv_fail("tensor '%s' (for GGUF '%s') is missing from the checkpoint", hf, gguf);
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 64;
        cv_map *nm = realloc(l->m, nc * sizeof *nm);
        if (!nm) return cv_fail("out of memory");
        l->m = nm;
        l->cap = nc;
    }
    cv_map *m = &l->m[l->n];
    memset(m, 0, sizeof *m);
    snprintf(m->gguf, sizeof m->gguf, "%s", gguf);
    m->src = t;
    m->kind = kind;
    m->permute = permute;
    t->used = 1;
    int64_t got_rows = t->n_dims >= 1 ? t->shape[0] : 1, got_cols = t->n_dims == 2 ? t->shape[1] : 0;
    if (kind == CV_K_TERNARY && (t->dtype == CV_U8 || t->dtype == CV_I8)) {
        /* packed: 4 rows per byte along dim 0, plus <module>.weight_scale */
        got_rows *= 4;
        char sn[512];
        size_t hl = strlen(hf);
        if (hl < 7 || hl > 400) return cv_fail("tensor '%s': unexpected name", hf);
        snprintf(sn, sizeof sn, "%.*s_scale", (int)hl, hf);
        m->scale = cv_st_find(st, sn);
        if (!m->scale) return cv_fail("tensor '%s' is packed (%s) but '%s' is missing", hf, cv_dtype_name(t->dtype), sn);
        if (m->scale->n_elem != 1 || m->scale->dtype == CV_U8 || m->scale->dtype == CV_I8)
            return cv_fail("tensor '%s': expected one floating-point value, got %lld of %s", sn,
                           (long long)m->scale->n_elem, cv_dtype_name(m->scale->dtype));
        m->scale->used = 1;
    } else if (t->dtype == CV_U8 || t->dtype == CV_I8) {
        return cv_fail("tensor '%s': dtype %s is not a floating-point type", hf, cv_dtype_name(t->dtype));
    }
    int want_dims = cols ? 2 : 1;
    if (t->n_dims != want_dims || got_rows != rows || (cols && got_cols != cols)) {
        char got[96];
        if (t->n_dims == 2) snprintf(got, sizeof got, "[%lld, %lld]", (long long)t->shape[0], (long long)t->shape[1]);
        else if (t->n_dims == 1) snprintf(got, sizeof got, "[%lld]", (long long)t->shape[0]);
        else snprintf(got, sizeof got, "%d dimensions", t->n_dims);
        if (cols)
            return cv_fail("tensor '%s': shape mismatch: checkpoint has %s%s, config.json implies [%lld, %lld]", hf,
                           got, m->scale ? " (packed, 4 rows per byte)" : "", (long long)rows, (long long)cols);
        return cv_fail("tensor '%s': shape mismatch: checkpoint has %s, config.json implies [%lld]", hf, got,
                       (long long)rows);
    }
    m->n_dims = want_dims;
    m->ne[0] = cols ? cols : rows;
    m->ne[1] = cols ? rows : 1;
    (void)hp;
    l->n++;
    return 0;
}

int cv_map_tensors(const cv_hparams *hp, cv_st *st, cv_map **out, size_t *n_out) {
    cv_list l = {0};
    const int64_t E = hp->n_embd, F = hp->n_ff, Q = hp->n_head * hp->head_dim, KV = hp->n_head_kv * hp->head_dim;
    const int llama = hp->family == CV_FAM_LLAMA;
    const char *attn_sub = hp->family == CV_FAM_1BITLLM ? "self_attn.inner_attn_ln" : "self_attn.attn_sub_norm";
    const char *ffn_sub = hp->family == CV_FAM_1BITLLM ? "mlp.ffn_layernorm" : "mlp.ffn_sub_norm";
    char hf[256], gg[64];
#define CV_ADD(hfn, ggn, kind, r, c, req, perm)                                                                     \
    do {                                                                                                            \
        if (cv_add(&l, st, hp, hfn, ggn, kind, r, c, req, perm) != 0) goto fail;                                    \
    } while (0)
    CV_ADD("model.embed_tokens.weight", "token_embd.weight", CV_K_EMBD, hp->n_vocab, E, 1, 0);
    for (int64_t i = 0; i < hp->n_layer; i++) {
        static const struct { const char *hf, *gg; int proj; } tab[] = {
            {"input_layernorm", "attn_norm", 0},       {"self_attn.q_proj", "attn_q", 1},
            {"self_attn.k_proj", "attn_k", 2},         {"self_attn.v_proj", "attn_v", 3},
            {"self_attn.o_proj", "attn_output", 4},    {NULL, "attn_sub_norm", 0},
            {"post_attention_layernorm", "ffn_norm", 0}, {"mlp.gate_proj", "ffn_gate", 5},
            {"mlp.up_proj", "ffn_up", 5},              {"mlp.down_proj", "ffn_down", 6},
            {NULL, "ffn_sub_norm", 0},
        };
        for (size_t k = 0; k < sizeof tab / sizeof tab[0]; k++) {
            int sub = tab[k].hf == NULL;
            if (sub && llama) continue;
            const char *h = tab[k].hf ? tab[k].hf : (strcmp(tab[k].gg, "attn_sub_norm") == 0 ? attn_sub : ffn_sub);
            snprintf(hf, sizeof hf, "model.layers.%lld.%s.weight", (long long)i, h);
            snprintf(gg, sizeof gg, "blk.%lld.%s.weight", (long long)i, tab[k].gg);
            switch (tab[k].proj) {
            case 0: CV_ADD(hf, gg, CV_K_NORM, strcmp(tab[k].gg, "ffn_sub_norm") == 0 ? F : strcmp(tab[k].gg, "attn_sub_norm") == 0 ? Q : E, 0, 1, 0); break;
            case 1: CV_ADD(hf, gg, CV_K_TERNARY, Q, E, 1, llama ? (int)hp->n_head : 0); break;
            case 2: CV_ADD(hf, gg, CV_K_TERNARY, KV, E, 1, llama ? (int)hp->n_head_kv : 0); break;
            case 3: CV_ADD(hf, gg, CV_K_TERNARY, KV, E, 1, 0); break;
            case 4: CV_ADD(hf, gg, CV_K_TERNARY, E, Q, 1, 0); break;
            case 5: CV_ADD(hf, gg, CV_K_TERNARY, F, E, 1, 0); break;
            case 6: CV_ADD(hf, gg, CV_K_TERNARY, E, F, 1, 0); break;
            }
        }
    }
    CV_ADD("model.norm.weight", "output_norm.weight", CV_K_NORM, E, 0, 1, 0);
    cv_tensor *lm = cv_st_find(st, "lm_head.weight");
    if (lm && llama && hp->tied != 1) {
        CV_ADD("lm_head.weight", "output.weight", CV_K_OUTPUT, hp->n_vocab, E, 1, 0);
    } else if (lm) {
        /* the bitnet graphs always tie the output layer to token_embd */
        lm->used = 1;
        if (!llama)
            cv_info("%s: lm_head.weight ignored: the BitNet graphs of bitnet.cpp, llama.cpp and libbitnet tie the "
                    "output layer to the embedding%s", hp->tied == 0 ? "warning" : "note",
                    hp->tied == 0 ? " (config.json says tie_word_embeddings false)" : "");
    }
    for (size_t i = 0; i < st->n; i++) {
        const char *n = st->t[i].name;
        size_t nl = strlen(n);
        static const char inv[] = "rotary_emb.inv_freq";
        if (st->t[i].used || (nl >= sizeof inv - 1 && strcmp(n + nl - (sizeof inv - 1), inv) == 0)) continue;
        cv_fail("tensor '%s' in the checkpoint is not part of a %s model (wrong config.json, or an unsupported "
                "variant)", n, hp->hf_arch);
        goto fail;
    }
#undef CV_ADD
    *out = l.m;
    *n_out = l.n;
    return 0;
fail:
    free(l.m);
    return -1;
}
