/*
 * test_model_util.h -- builds tiny GGUF models for the model/forward/session tests
 * with the public writer (bitnet_gguf_writer_*) and quantizer (bitnet_quantize).
 *
 * Weights are random ternary values {-s, 0, +s} with one s per tensor (s a power of
 * two, exact in f16, so I2_S / TQ2_0 / TQ1_0 / F16 encodings of the same weights give
 * the same model); norms are random around 1; the embedding is random f16.  The
 * vocabulary is a small SentencePiece-style one: <unk> <s> </s>, 256 byte tokens, then
 * filler pieces.  Everything is reproducible from the seed.
 */
#ifndef TEST_MODEL_UTIL_H
#define TEST_MODEL_UTIL_H

#include "bitnet.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct tm_spec {
    const char *arch;       /* general.architecture                         */
    bitnet_type wtype;      /* projection type                               */
    bitnet_type etype;      /* token_embd type (F16 default)                 */
    int         n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    float       rope_base;
    uint64_t    seed;
    const char *omit;       /* tensor name to leave out, or NULL             */
    const char *misshape;   /* tensor name to write with ne1 + 1, or NULL     */
    const char *act_key;    /* value for "<arch>.hidden_act", or NULL         */
    int         with_output;/* write a separate output.weight (F16)          */
    int         nonternary; /* make blk.0.attn_q non-ternary (float types)    */
    int         mixed_scales; /* TQ types: scale the second half of each row by 2 */
    const char *poison;     /* tensor whose encoded bytes get poison_bytes ...   */
    size_t      poison_at;  /* ... at this byte offset (NaN/Inf tests)           */
    uint8_t     poison_bytes[4];
    int         poison_len;
    const char *ovr_key;    /* metadata key written with ovr_* instead (broken-model tests) */
    int         ovr_kind;   /* 1: u32 ovr_u, 2: u64 ovr_u, 3: f32 ovr_f, 4: leave the key out */
    uint64_t    ovr_u;
    float       ovr_f;
    int         vocab_delta;/* tokenizer arrays hold n_vocab + vocab_delta tokens    */
    int         eos_id;     /* tokenizer.ggml.eos_token_id, 0: 2 (</s>)       */
} tm_spec;

/* The override of tm_spec, if it names key: 1 written (or left out), 0 not this key, -1 error. */
static inline int tm_override(bitnet_gguf_writer *w, const tm_spec *sp, const char *key) {
    if (!sp->ovr_key || strcmp(sp->ovr_key, key) != 0) return 0;
    uint32_t u32 = (uint32_t)sp->ovr_u;
    uint64_t u64 = sp->ovr_u;
    float f = sp->ovr_f;
    bitnet_status st = BITNET_OK;
    if (sp->ovr_kind == 1) st = bitnet_gguf_writer_set_scalar(w, key, BITNET_GGUF_UINT32, &u32);
    else if (sp->ovr_kind == 2) st = bitnet_gguf_writer_set_scalar(w, key, BITNET_GGUF_UINT64, &u64);
    else if (sp->ovr_kind == 3) st = bitnet_gguf_writer_set_scalar(w, key, BITNET_GGUF_FLOAT32, &f);
    return st == BITNET_OK ? 1 : -1;
}

static inline void tm_default(tm_spec *s) {
    memset(s, 0, sizeof *s);
    s->arch = "bitnet-b1.58";
    s->wtype = BITNET_TYPE_I2_S;
    s->etype = BITNET_TYPE_F16;
    s->n_vocab = 300;
    s->n_embd = 256;
    s->n_layer = 2;
    s->n_head = 4;
    s->n_head_kv = 2;
    s->n_ff = 512;
    s->n_ctx = 256;
    s->rope_base = 500000.f;
    s->seed = 1;
}

static inline uint64_t tm_next(uint64_t *st) {
    uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline float tm_unif(uint64_t *st) { return (float)((tm_next(st) >> 40) / 16777216.0); }
static inline float tm_gauss(uint64_t *st) {
    float u1 = tm_unif(st) + 1e-7f, u2 = tm_unif(st);
    return sqrtf(-2.f * logf(u1)) * cosf(6.2831853f * u2);
}

static inline int tm_check(bitnet_status st, const char *what) {
    if (st != BITNET_OK) {
        fprintf(stderr, "test model: %s: %s (%s)\n", what, bitnet_strerror(st), bitnet_last_error());
        return 1;
    }
    return 0;
}

typedef struct tm_tensor {
    char        name[64];
    int64_t     ne0, ne1;
    int         n_dims;
    bitnet_type type;
    float      *src;
} tm_tensor;

/* Write the model to path; returns 0 on success. */
static inline int tm_write(const tm_spec *sp, const char *path) {
    uint64_t rng = sp->seed * 0x1234567ull + 7;
    bitnet_gguf_writer *w = NULL;
    if (tm_check(bitnet_gguf_writer_create(&w), "writer_create")) return 1;
    char key[128];
    int rc = 1;
    tm_tensor *ts = NULL;
    char **toks = NULL;
    float *scores = NULL;
    int32_t *ttype = NULL;
    const int V = sp->n_vocab, E = sp->n_embd, F = sp->n_ff, hd = sp->n_head > 0 ? sp->n_embd / sp->n_head : 0;
    const int VT = sp->n_vocab + sp->vocab_delta; /* tokens in the tokenizer arrays */
    const int nkv = hd * sp->n_head_kv;
#define TM_KEY(suffix) (snprintf(key, sizeof key, "%s.%s", sp->arch, suffix), key)
#define TM_U32(k, v) do { uint32_t _v = (uint32_t)(v); int _o = tm_override(w, sp, k); if (_o < 0) goto done; \
        if (!_o && tm_check(bitnet_gguf_writer_set_scalar(w, k, BITNET_GGUF_UINT32, &_v), k)) goto done; } while (0)
#define TM_F32(k, v) do { float _v = (float)(v); int _o = tm_override(w, sp, k); if (_o < 0) goto done; \
        if (!_o && tm_check(bitnet_gguf_writer_set_scalar(w, k, BITNET_GGUF_FLOAT32, &_v), k)) goto done; } while (0)
    if (tm_check(bitnet_gguf_writer_set_str(w, "general.architecture", sp->arch, strlen(sp->arch)), "arch")) goto done;
    TM_U32(TM_KEY("vocab_size"), V);
    TM_U32(TM_KEY("context_length"), sp->n_ctx);
    TM_U32(TM_KEY("embedding_length"), E);
    TM_U32(TM_KEY("block_count"), sp->n_layer);
    TM_U32(TM_KEY("feed_forward_length"), F);
    TM_U32(TM_KEY("rope.dimension_count"), hd);
    TM_U32(TM_KEY("attention.head_count"), sp->n_head);
    TM_U32(TM_KEY("attention.head_count_kv"), sp->n_head_kv);
    TM_F32(TM_KEY("attention.layer_norm_rms_epsilon"), 1e-5);
    TM_F32(TM_KEY("rope.freq_base"), sp->rope_base);
    if (sp->act_key &&
        tm_check(bitnet_gguf_writer_set_str(w, TM_KEY("hidden_act"), sp->act_key, strlen(sp->act_key)), "act"))
        goto done;

    /* vocabulary */
    toks = calloc((size_t)VT, sizeof *toks);
    scores = calloc((size_t)VT, sizeof *scores);
    ttype = calloc((size_t)VT, sizeof *ttype);
    if (!toks || !scores || !ttype) goto done;
    for (int i = 0; i < VT; i++) {
        toks[i] = malloc(16);
        if (!toks[i]) goto done;
        if (i == 0) { strcpy(toks[i], "<unk>"); ttype[i] = 2; }
        else if (i == 1) { strcpy(toks[i], "<s>"); ttype[i] = 3; }
        else if (i == 2) { strcpy(toks[i], "</s>"); ttype[i] = 3; }
        else if (i < 259) { snprintf(toks[i], 16, "<0x%02X>", i - 3); ttype[i] = 6; }
        else { snprintf(toks[i], 16, "\xe2\x96\x81t%d", i); ttype[i] = 1; scores[i] = -(float)i; }
    }
    if (tm_check(bitnet_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5), "tok model")) goto done;
    if (tm_check(bitnet_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL,
                                                  (uint64_t)VT), "tokens")) goto done;
    if (tm_check(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.scores", BITNET_GGUF_FLOAT32, scores, (uint64_t)VT),
                 "scores")) goto done;
    if (tm_check(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BITNET_GGUF_INT32, ttype, (uint64_t)VT),
                 "token_type")) goto done;
    TM_U32("tokenizer.ggml.bos_token_id", 1);
    TM_U32("tokenizer.ggml.eos_token_id", sp->eos_id ? sp->eos_id : 2);
    TM_U32("tokenizer.ggml.unknown_token_id", 0);

    /* tensors */
    int n_t = 0, cap = 3 + 11 * sp->n_layer + 1;
    ts = calloc((size_t)cap, sizeof *ts);
    if (!ts) goto done;
#define TM_T(nm, a, b, nd, ty) do { tm_tensor *_t = &ts[n_t++]; snprintf(_t->name, sizeof _t->name, "%s", nm); \
        _t->ne0 = a; _t->ne1 = b; _t->n_dims = nd; _t->type = ty; } while (0)
    TM_T("token_embd.weight", E, V, 2, sp->etype);
    TM_T("output_norm.weight", E, 1, 1, BITNET_TYPE_F32);
    if (sp->with_output) TM_T("output.weight", E, V, 2, BITNET_TYPE_F16);
    char nm[64];
    int sub = strcmp(sp->arch, "llama") != 0;
    for (int l = 0; l < sp->n_layer; l++) {
#define TM_L(fmt, a, b, nd, ty) do { snprintf(nm, sizeof nm, "blk.%d." fmt, l); TM_T(nm, a, b, nd, ty); } while (0)
        TM_L("attn_norm.weight", E, 1, 1, BITNET_TYPE_F32);
        if (sub) TM_L("attn_sub_norm.weight", E, 1, 1, BITNET_TYPE_F32);
        TM_L("ffn_norm.weight", E, 1, 1, BITNET_TYPE_F32);
        if (sub) TM_L("ffn_sub_norm.weight", F, 1, 1, BITNET_TYPE_F32);
        TM_L("attn_q.weight", E, E, 2, sp->wtype);
        TM_L("attn_k.weight", E, nkv, 2, sp->wtype);
        TM_L("attn_v.weight", E, nkv, 2, sp->wtype);
        TM_L("attn_output.weight", E, E, 2, sp->wtype);
        TM_L("ffn_gate.weight", E, F, 2, sp->wtype);
        TM_L("ffn_up.weight", E, F, 2, sp->wtype);
        TM_L("ffn_down.weight", F, E, 2, sp->wtype);
#undef TM_L
    }
    for (int i = 0; i < n_t; i++) {
        tm_tensor *t = &ts[i];
        size_t n = (size_t)(t->ne0 * t->ne1);
        t->src = malloc(n * sizeof(float));
        if (!t->src) goto done;
        int proj = t->type == sp->wtype && t->n_dims == 2 && strncmp(t->name, "blk.", 4) == 0;
        if (proj) {
            /* a per-tensor scale 2^-k, exact in f16 */
            float s = ldexpf(1.0f, -4 - (int)(tm_next(&rng) % 3));
            for (size_t j = 0; j < n; j++) {
                uint64_t r = tm_next(&rng) % 3;
                float v = r == 0 ? -s : r == 1 ? 0.f : s;
                if (sp->mixed_scales && (j % (size_t)t->ne0) >= (size_t)t->ne0 / 2) v *= 2;
                t->src[j] = v;
            }
            if (sp->nonternary && strcmp(t->name, "blk.0.attn_q.weight") == 0) t->src[5] = s * 0.5f;
        } else if (t->n_dims == 1) {
            for (size_t j = 0; j < n; j++) t->src[j] = 1.0f + 0.25f * tm_gauss(&rng);
        } else {
            for (size_t j = 0; j < n; j++) t->src[j] = 0.5f * tm_gauss(&rng);
        }
        if (strcmp(t->name, sp->omit ? sp->omit : "") == 0) continue;
        int64_t ne[2] = {t->ne0, t->ne1};
        if (sp->misshape && strcmp(t->name, sp->misshape) == 0) ne[1] += 1;
        if (tm_check(bitnet_gguf_writer_add_tensor(w, t->name, (uint32_t)t->n_dims, ne, t->type), t->name)) goto done;
    }
    if (tm_check(bitnet_gguf_writer_begin(w, path), "begin")) goto done;
    for (int i = 0; i < n_t; i++) {
        tm_tensor *t = &ts[i];
        if (strcmp(t->name, sp->omit ? sp->omit : "") == 0) continue;
        int64_t rows = t->ne1;
        if (sp->misshape && strcmp(t->name, sp->misshape) == 0) rows += 1;
        float *src = t->src;
        float *big = NULL;
        if (rows != t->ne1) { /* pad the extra row with zeros */
            big = calloc((size_t)(rows * t->ne0), sizeof(float));
            if (!big) goto done;
            memcpy(big, t->src, (size_t)(t->ne0 * t->ne1) * sizeof(float));
            src = big;
        }
        size_t need = 0;
        (void)bitnet_quantize(t->type, src, rows, t->ne0, NULL, 0, &need);
        void *buf = malloc(need ? need : 1);
        size_t wr = 0;
        int bad = !buf || tm_check(bitnet_quantize(t->type, src, rows, t->ne0, buf, need, &wr), t->name);
        if (!bad && sp->poison && strcmp(t->name, sp->poison) == 0 && sp->poison_at + (size_t)sp->poison_len <= wr)
            memcpy((uint8_t *)buf + sp->poison_at, sp->poison_bytes, (size_t)sp->poison_len);
        bad = bad || tm_check(bitnet_gguf_writer_write(w, buf, wr), "write");
        free(buf);
        free(big);
        if (bad) goto done;
    }
    if (tm_check(bitnet_gguf_writer_finish(w), "finish")) goto done;
    rc = 0;
done:
    bitnet_gguf_writer_free(w);
    if (ts)
        for (int i = 0; i < cap; i++) free(ts[i].src);
    free(ts);
    if (toks)
        for (int i = 0; i < VT; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(ttype);
    return rc;
#undef TM_KEY
#undef TM_U32
#undef TM_F32
#undef TM_T
}

/* A temporary path for a test model. */
static inline void tm_path(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "%s/tm_%s_%d.gguf", BN_TEST_TMP_DIR, tag, (int)getpid());
}

#endif
