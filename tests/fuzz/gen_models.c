/*
 * gen_models.c -- tiny valid models (seeds for fuzz_model) and a corpus of semantically
 * broken ones: well-formed GGUF files whose content cannot be a working model.
 *
 *     fuzz_gen_models DIR [STATE_DIR]
 *
 * (with STATE_DIR, also state blobs of the fuzz_models.h model: the seeds of fuzz_state)
 * writes DIR/seed_*.gguf (valid: each must load from the file and from memory, and a
 * session must evaluate a token to finite logits) and DIR/broken_*.gguf, then checks that
 * the loader refuses every broken file -- through bitnet_model_load and through
 * bn_model_load_memory -- with BITNET_E_FORMAT and a message that names the key or the
 * tensor at fault.  Exit status 0 when every expectation holds.
 *
 * fuzz_model links this file too (GM_NO_MAIN): with BN_FUZZ_SEED_MODELS and
 * BN_FUZZ_SEED_STATES set it writes the seeds and exits (run_fuzz.sh).
 *
 * Not in the list because they are accepted on purpose: an embedding with more rows than
 * tokens (padded vocabularies), and a <arch>.vocab_size that disagrees with the token
 * array (a warning; the token array decides, as llama.cpp does).
 */
#include "model.h"

#include "fuzz_models.h"

#include <math.h>

typedef struct gm_case {
    const char *name;
    const char *expect; /* substring of the message: the key or tensor at fault */
    void (*apply)(tm_spec *sp);
} gm_case;

#define GM_OVR(fn, key, kind, u, f)                                                                                   \
    static void fn(tm_spec *sp) {                                                                                     \
        sp->ovr_key = key;                                                                                            \
        sp->ovr_kind = kind;                                                                                          \
        sp->ovr_u = u;                                                                                                \
        sp->ovr_f = f;                                                                                                \
    }
GM_OVR(gm_heads3, "bitnet-b1.58.attention.head_count", 1, 3, 0)
GM_OVR(gm_kv0, "bitnet-b1.58.attention.head_count_kv", 1, 0, 0)
GM_OVR(gm_kv3, "bitnet-b1.58.attention.head_count_kv", 1, 3, 0)
GM_OVR(gm_heads0, "bitnet-b1.58.attention.head_count", 1, 0, 0)
GM_OVR(gm_rope_odd, "bitnet-b1.58.rope.dimension_count", 1, 63, 0)
GM_OVR(gm_rope_big, "bitnet-b1.58.rope.dimension_count", 1, 130, 0)
GM_OVR(gm_ctx0, "bitnet-b1.58.context_length", 1, 0, 0)
GM_OVR(gm_ctx40, "bitnet-b1.58.context_length", 2, (uint64_t)1 << 40, 0)
GM_OVR(gm_embd0, "bitnet-b1.58.embedding_length", 1, 0, 0)
GM_OVR(gm_embd_wrong, "bitnet-b1.58.embedding_length", 1, 512, 0)
GM_OVR(gm_layers0, "bitnet-b1.58.block_count", 1, 0, 0)
GM_OVR(gm_layers_big, "bitnet-b1.58.block_count", 2, (uint64_t)1 << 33, 0)
GM_OVR(gm_layers2, "bitnet-b1.58.block_count", 1, 2, 0)
GM_OVR(gm_ff_wrong, "bitnet-b1.58.feed_forward_length", 1, 512, 0)
GM_OVR(gm_eps_nan, "bitnet-b1.58.attention.layer_norm_rms_epsilon", 3, 0, NAN)
GM_OVR(gm_eps_neg, "bitnet-b1.58.attention.layer_norm_rms_epsilon", 3, 0, -1.0f)
GM_OVR(gm_base_inf, "bitnet-b1.58.rope.freq_base", 3, 0, INFINITY)
GM_OVR(gm_base_neg, "bitnet-b1.58.rope.freq_base", 3, 0, -10000.0f)
GM_OVR(gm_bos_big, "tokenizer.ggml.bos_token_id", 1, 5000, 0)
static void gm_vocab_more(tm_spec *sp) { sp->vocab_delta = 5; }
static void gm_omit_k(tm_spec *sp) { sp->omit = "blk.0.attn_k.weight"; }
static void gm_omit_embd(tm_spec *sp) { sp->omit = "token_embd.weight"; }
static void gm_omit_onorm(tm_spec *sp) { sp->omit = "output_norm.weight"; }
static void gm_omit_sub(tm_spec *sp) { sp->omit = "blk.0.ffn_sub_norm.weight"; }
static void gm_shape_down(tm_spec *sp) { sp->misshape = "blk.0.ffn_down.weight"; }
static void gm_poison(tm_spec *sp, const char *t, size_t at, const uint8_t *b, int len) {
    sp->poison = t;
    sp->poison_at = at;
    memcpy(sp->poison_bytes, b, (size_t)len);
    sp->poison_len = len;
}
static void gm_nan_embd(tm_spec *sp) { gm_poison(sp, "token_embd.weight", 2 * 1000, (const uint8_t[]){0x00, 0x7e}, 2); }
static void gm_inf_embd(tm_spec *sp) { gm_poison(sp, "token_embd.weight", 0, (const uint8_t[]){0x00, 0x7c}, 2); }
static void gm_inf_onorm(tm_spec *sp) {
    gm_poison(sp, "output_norm.weight", 8, (const uint8_t[]){0x00, 0x00, 0x80, 0x7f}, 4);
}
static void gm_nan_anorm(tm_spec *sp) {
    gm_poison(sp, "blk.0.attn_norm.weight", 4, (const uint8_t[]){0x00, 0x00, 0xc0, 0x7f}, 4);
}
static void gm_nan_subnorm(tm_spec *sp) {
    gm_poison(sp, "blk.0.ffn_sub_norm.weight", 12, (const uint8_t[]){0x01, 0x00, 0x80, 0xff}, 4);
}

static const gm_case gm_cases[] = {
    {"head_count_3", "head_count", gm_heads3},
    {"head_count_0", "head_count", gm_heads0},
    {"head_count_kv_0", "head_count_kv", gm_kv0},
    {"head_count_kv_3", "head_count_kv", gm_kv3},
    {"rope_dims_odd", "rope.dimension_count", gm_rope_odd},
    {"rope_dims_130", "rope.dimension_count", gm_rope_big},
    {"context_length_0", "context_length", gm_ctx0},
    {"context_length_2p40", "context_length", gm_ctx40},
    {"embedding_length_0", "embedding_length", gm_embd0},
    {"embedding_length_wrong", "token_embd.weight", gm_embd_wrong},
    {"block_count_0", "block_count", gm_layers0},
    {"block_count_2p33", "block_count", gm_layers_big},
    {"block_count_2", "blk.1.", gm_layers2},
    {"feed_forward_length_wrong", "ffn_", gm_ff_wrong},
    {"rms_eps_nan", "layer_norm_rms_epsilon", gm_eps_nan},
    {"rms_eps_negative", "layer_norm_rms_epsilon", gm_eps_neg},
    {"rope_base_inf", "freq_base", gm_base_inf},
    {"rope_base_negative", "freq_base", gm_base_neg},
    {"bos_outside_vocab", "bos_token_id", gm_bos_big},
    {"vocab_more_tokens_than_embd", "token_embd.weight", gm_vocab_more},
    {"missing_attn_k", "blk.0.attn_k.weight", gm_omit_k},
    {"missing_token_embd", "token_embd.weight", gm_omit_embd},
    {"missing_output_norm", "output_norm.weight", gm_omit_onorm},
    {"missing_ffn_sub_norm", "blk.0.ffn_sub_norm.weight", gm_omit_sub},
    {"shape_ffn_down", "blk.0.ffn_down.weight", gm_shape_down},
    {"nan_token_embd", "token_embd.weight", gm_nan_embd},
    {"inf_token_embd", "token_embd.weight", gm_inf_embd},
    {"inf_output_norm", "output_norm.weight", gm_inf_onorm},
    {"nan_attn_norm", "blk.0.attn_norm.weight", gm_nan_anorm},
    {"nan_ffn_sub_norm", "blk.0.ffn_sub_norm.weight", gm_nan_subnorm},
};

static uint8_t *gm_read(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = sz > 0 ? malloc((size_t)sz) : NULL;
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* A valid model: loads both ways and evaluates one token to finite logits. */
static int gm_check_valid(const char *path) {
    bitnet_model *m = NULL;
    if (bitnet_model_load(path, NULL, &m) != BITNET_OK) {
        fprintf(stderr, "FAIL %s: valid model refused: %s\n", path, bitnet_last_error());
        return 1;
    }
    bitnet_session_params sp;
    bitnet_session_default_params(&sp, sizeof sp);
    sp.n_ctx = 16;
    sp.n_threads = 1;
    bitnet_session *s = NULL;
    int bad = 0;
    const float *lg = NULL;
    bitnet_token t = 1;
    if (bitnet_session_create(m, &sp, &s) != BITNET_OK || bitnet_session_eval(s, &t, 1) != BITNET_OK ||
        bitnet_session_logits(s, -1, &lg) != BITNET_OK) {
        fprintf(stderr, "FAIL %s: cannot evaluate: %s\n", path, bitnet_last_error());
        bad = 1;
    } else {
        for (int64_t i = 0; i < bitnet_model_get_info(m, BITNET_INFO_N_VOCAB); i++)
            if (!isfinite(lg[i])) bad = 1;
        if (bad) fprintf(stderr, "FAIL %s: non-finite logits\n", path);
    }
    bitnet_session_free(s);
    bitnet_model_free(m);
    size_t n;
    uint8_t *b = gm_read(path, &n);
    if (!b || bn_model_load_memory(b, n, NULL, &m) != BITNET_OK) {
        fprintf(stderr, "FAIL %s: refused from memory: %s\n", path, bitnet_last_error());
        bad = 1;
    } else {
        bitnet_model_free(m);
    }
    free(b);
    return bad;
}

static int gm_check_broken(const char *path, const char *expect) {
    bitnet_model *m = NULL;
    int bad = 0;
    bitnet_status st = bitnet_model_load(path, NULL, &m);
    if (st == BITNET_OK || m) {
        fprintf(stderr, "FAIL %s: loaded\n", path);
        bitnet_model_free(m);
        return 1;
    }
    if (st != BITNET_E_FORMAT || !strstr(bitnet_last_error(), expect)) {
        fprintf(stderr, "FAIL %s: %s: \"%s\" does not name '%s'\n", path, bitnet_strerror(st), bitnet_last_error(),
                expect);
        bad = 1;
    } else {
        printf("ok   %-34s %s\n", strrchr(path, '/') + 1, bitnet_last_error());
    }
    size_t n;
    uint8_t *b = gm_read(path, &n);
    st = b ? bn_model_load_memory(b, n, NULL, &m) : BITNET_E_IO;
    if (st == BITNET_OK || !strstr(bitnet_last_error(), expect)) {
        fprintf(stderr, "FAIL %s: from memory: %s\n", path, st == BITNET_OK ? "loaded" : bitnet_last_error());
        bitnet_model_free(m);
        bad = 1;
    }
    free(b);
    return bad;
}

/* State blobs of the fuzz_models.h model after 0, 1, 3 and 7 tokens. */
static int gm_write_states(const char *dir, const char *sdir) {
    char path[4096];
    tm_spec sp;
    gm_base(&sp);
    snprintf(path, sizeof path, "%s/state_model.gguf", dir);
    bitnet_model *m = NULL;
    bitnet_session *s = NULL;
    if (tm_write(&sp, path) != 0 || bitnet_model_load(path, NULL, &m) != BITNET_OK) return 1;
    unlink(path);
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = 32;
    p.n_threads = 1;
    int bad = bitnet_session_create(m, &p, &s) != BITNET_OK;
    static const int lens[] = {0, 1, 3, 7};
    for (size_t i = 0; !bad && i < sizeof lens / sizeof lens[0]; i++) {
        bitnet_token t[7] = {1, 100, 200, 259, 3, 4, 5};
        bitnet_session_reset(s);
        if (lens[i] && bitnet_session_eval(s, t, (size_t)lens[i]) != BITNET_OK) bad = 1;
        size_t need = 0;
        (void)bitnet_session_state_save(s, NULL, 0, &need);
        uint8_t *b = malloc(need ? need : 1);
        if (!b || bitnet_session_state_save(s, b, need, &need) != BITNET_OK) bad = 1;
        snprintf(path, sizeof path, "%s/state_%d.bin", sdir, lens[i]);
        FILE *f = bad ? NULL : fopen(path, "wb");
        if (!f || fwrite(b, 1, need, f) != need) bad = 1;
        if (f) fclose(f);
        free(b);
    }
    bitnet_session_free(s);
    bitnet_model_free(m);
    if (bad) fprintf(stderr, "FAIL writing state blobs: %s\n", bitnet_last_error());
    return bad;
}

int gm_main(int argc, char **argv);
int gm_main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: fuzz_gen_models DIR [STATE_DIR]\n");
        return 2;
    }
    bitnet_set_log_callback(NULL, NULL, BITNET_LOG_ERROR);
    char path[4096];
    int fails = 0;
    /* seeds: the base model in each projection type, and a llama-arch one */
    static const struct { const char *name; const char *arch; bitnet_type wt; } seeds[] = {
        {"seed_i2s", "bitnet-b1.58", BITNET_TYPE_I2_S},
        {"seed_tq2", "bitnet-b1.58", BITNET_TYPE_TQ2_0},
        {"seed_tq1_llama", "llama", BITNET_TYPE_TQ1_0},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        tm_spec sp;
        gm_base(&sp);
        sp.arch = seeds[i].arch;
        sp.wtype = seeds[i].wt;
        snprintf(path, sizeof path, "%s/%s.gguf", argv[1], seeds[i].name);
        if (tm_write(&sp, path) != 0) return 1;
        fails += gm_check_valid(path);
    }
    for (size_t i = 0; i < sizeof gm_cases / sizeof gm_cases[0]; i++) {
        tm_spec sp;
        gm_base(&sp);
        gm_cases[i].apply(&sp);
        snprintf(path, sizeof path, "%s/broken_%s.gguf", argv[1], gm_cases[i].name);
        if (tm_write(&sp, path) != 0) {
            fprintf(stderr, "FAIL cannot write %s\n", path);
            fails++;
            continue;
        }
        fails += gm_check_broken(path, gm_cases[i].expect);
    }
    if (argc == 3) fails += gm_write_states(argv[1], argv[2]);
    if (fails) fprintf(stderr, "%d failure(s)\n", fails);
    else printf("all %zu broken models refused, naming the key or tensor\n", sizeof gm_cases / sizeof gm_cases[0]);
    return fails != 0;
}

#ifndef GM_NO_MAIN
int main(int argc, char **argv) { return gm_main(argc, argv); }
#endif
