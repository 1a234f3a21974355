/*
 * test_model_arch.c -- which graph a file runs as (lib/model_arch.c,
 * docs/architecture.md "Architectures"): the declared architecture stands unless the
 * file names its activation or is one known model beyond doubt, and every deviation
 * is a WARN line that says how to override it.
 *
 * The known-model cases need the real shapes (BitNet-b1.58-2B-4T, 1bitLLM large / 3B):
 * those files are written with a complete header and tensor table and a sparse,
 * all-zero data section (the decision reads only metadata and the tensor table), so
 * they cost a few MB of vocabulary, not gigabytes.  The small cases load whole models.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "internal.h"
#include "model.h"
#include "test_model_util.h"
#include "type_table.h"

#include <sys/stat.h>

/* ---- captured log lines ------------------------------------------------------------ */

static char g_warn[4096];
static int g_n_warn;

static void capture(bitnet_log_level level, const char *msg, void *user) {
    (void)user;
    if (level != BITNET_LOG_WARN) return;
    g_n_warn++;
    snprintf(g_warn, sizeof g_warn, "%s", msg);
}

static void capture_start(void) {
    g_warn[0] = 0;
    g_n_warn = 0;
    bitnet_set_log_callback(capture, NULL, BITNET_LOG_INFO);
}

static void capture_stop(void) { bitnet_set_log_callback(NULL, NULL, BITNET_LOG_WARN); }

/* A WARN line was logged that names `what` and says how to override the decision. */
static void assert_warned(const char *what, const char *declared) {
    assert_int_equal(g_n_warn, 1);
    assert_non_null(strstr(g_warn, what));
    assert_non_null(strstr(g_warn, "bitnet_model_params.arch"));
    char want[64];
    snprintf(want, sizeof want, "\"%s\"", declared);
    assert_non_null(strstr(g_warn, want));
}

/* ---- header-only files of real shapes ------------------------------------------------- */

typedef struct ka_spec {
    const char *arch;
    int         n_vocab, n_layer, n_embd, n_head, n_head_kv, n_ff;
    const char *tok_model;   /* "gpt2" or "llama"                        */
    const char *act;         /* "<arch>.hidden_act" value or NULL          */
    int         with_output; /* add output.weight                         */
    int         extra_layer; /* write one more layer than block_count     */
    int         no_sub_norm; /* leave out blk.N.ffn_sub_norm.weight       */
} ka_spec;

static int ka_write(const ka_spec *s, const char *path) {
    bitnet_gguf_writer *w = NULL;
    if (tm_check(bitnet_gguf_writer_create(&w), "create")) return 1;
    char key[128], nm[96];
    int rc = 1;
    char **toks = NULL;
    uint64_t data = 0;
#define KA_U32(suffix, v) do { uint32_t _v = (uint32_t)(v); snprintf(key, sizeof key, "%s.%s", s->arch, suffix); \
        if (tm_check(bitnet_gguf_writer_set_scalar(w, key, BITNET_GGUF_UINT32, &_v), key)) goto done; } while (0)
#define KA_T(name, a, b) do { int64_t _ne[2] = {(a), (b)}; uint32_t _nd = (b) ? 2u : 1u; \
        bitnet_type _ty = (b) ? BITNET_TYPE_I2_S : BITNET_TYPE_F32; uint64_t _sz = 0; \
        if (tm_check(bitnet_gguf_writer_add_tensor(w, name, _nd, _ne, _ty), name)) goto done; \
        if (bn_tensor_nbytes((uint32_t)_ty, _nd, _ne, &_sz, NULL) != BITNET_OK) goto done; \
        data += (_sz + 31) / 32 * 32; } while (0)
    if (tm_check(bitnet_gguf_writer_set_str(w, "general.architecture", s->arch, strlen(s->arch)), "arch")) goto done;
    KA_U32("vocab_size", s->n_vocab);
    KA_U32("context_length", 4096);
    KA_U32("embedding_length", s->n_embd);
    KA_U32("block_count", s->n_layer);
    KA_U32("feed_forward_length", s->n_ff);
    KA_U32("attention.head_count", s->n_head);
    KA_U32("attention.head_count_kv", s->n_head_kv);
    if (s->act) {
        snprintf(key, sizeof key, "%s.hidden_act", s->arch);
        if (tm_check(bitnet_gguf_writer_set_str(w, key, s->act, strlen(s->act)), key)) goto done;
    }
    if (tm_check(bitnet_gguf_writer_set_str(w, "tokenizer.ggml.model", s->tok_model, strlen(s->tok_model)), "tm"))
        goto done;
    toks = calloc((size_t)s->n_vocab, sizeof *toks);
    if (!toks) goto done;
    for (int i = 0; i < s->n_vocab; i++) {
        toks[i] = malloc(16);
        if (!toks[i]) goto done;
        snprintf(toks[i], 16, "t%d", i);
    }
    if (tm_check(bitnet_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL,
                                                  (uint64_t)s->n_vocab), "tokens"))
        goto done;
    const int64_t E = s->n_embd, F = s->n_ff, KV = E / s->n_head * s->n_head_kv;
    KA_T("token_embd.weight", E, (int64_t)s->n_vocab);
    KA_T("output_norm.weight", E, 0);
    if (s->with_output) KA_T("output.weight", E, (int64_t)s->n_vocab);
    for (int l = 0; l < s->n_layer + (s->extra_layer ? 1 : 0); l++) {
#define KA_L(suffix, a, b) do { snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix); KA_T(nm, a, b); } while (0)
        KA_L("attn_norm.weight", E, 0);
        KA_L("attn_sub_norm.weight", E, 0);
        KA_L("ffn_norm.weight", E, 0);
        if (!s->no_sub_norm) KA_L("ffn_sub_norm.weight", F, 0);
        KA_L("attn_q.weight", E, E);
        KA_L("attn_k.weight", E, KV);
        KA_L("attn_v.weight", E, KV);
        KA_L("attn_output.weight", E, E);
        KA_L("ffn_gate.weight", E, F);
        KA_L("ffn_up.weight", E, F);
        KA_L("ffn_down.weight", F, E);
#undef KA_L
    }
    if (tm_check(bitnet_gguf_writer_begin(w, path), path)) goto done;
    bitnet_gguf_writer_free(w); /* header and tensor table written; the data stays sparse */
    w = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0 || truncate(path, (off_t)((uint64_t)sb.st_size + data)) != 0) goto done;
    rc = 0;
done:
#undef KA_U32
#undef KA_T
    bitnet_gguf_writer_free(w);
    if (toks)
        for (int i = 0; i < s->n_vocab; i++) free(toks[i]);
    free(toks);
    return rc;
}

static const ka_spec k_2b4t = {"bitnet", 128256, 30, 2560, 20, 5, 6912, "gpt2", NULL, 0, 0, 0};
static const ka_spec k_large = {"bitnet-b1.58", 32002, 24, 1536, 16, 16, 4096, "llama", NULL, 0, 0, 0};
static const ka_spec k_3b = {"bitnet-b1.58", 32002, 26, 3200, 32, 32, 8640, "llama", NULL, 0, 0, 0};

/* Decide the architecture of a header-only file; returns the status. */
static bitnet_status ka_decide(const ka_spec *s, const char *tag, bn_arch *out) {
    char path[512];
    tm_path(path, sizeof path, tag);
    assert_int_equal(ka_write(s, path), 0);
    bitnet_gguf *g = NULL;
    assert_int_equal(bitnet_gguf_open(path, &g), BITNET_OK);
    char prefix[64];
    capture_start();
    bitnet_status st = bn_arch_decide(g, NULL, out, prefix, sizeof prefix);
    capture_stop();
    assert_string_equal(prefix, s->arch);
    bitnet_gguf_close(g);
    unlink(path);
    return st;
}

/* Upstream llama.cpp's converter writes 2B-4T as 'bitnet': identified by the LLaMA-3
 * vocabulary together with the whole 2B-4T tensor set, it runs with ReLU^2 and a WARN. */
static void test_known_2b4t(void **state) {
    (void)state;
    bn_arch a;
    assert_int_equal(ka_decide(&k_2b4t, "ka2b", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET_B158);
    assert_warned("2B-4T", "bitnet");

    /* anything less than the whole evidence: the declared SiLU graph, no warning */
    ka_spec s = k_2b4t;
    s.with_output = 1;
    assert_int_equal(ka_decide(&s, "ka2b", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET);
    assert_int_equal(g_n_warn, 0);
    s = k_2b4t;
    s.extra_layer = 1;
    assert_int_equal(ka_decide(&s, "ka2b", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET);
    s = k_2b4t;
    s.no_sub_norm = 1;
    assert_int_equal(ka_decide(&s, "ka2b", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET);
    s = k_2b4t;
    s.n_ff = 6656; /* another shape with the LLaMA-3 vocabulary and GQA */
    assert_int_equal(ka_decide(&s, "ka2b", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET);
    assert_int_equal(g_n_warn, 0);
    s = k_2b4t;
    s.tok_model = "llama";
    assert_int_equal(ka_decide(&s, "ka2b", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET);
    /* the 2B-4T shape declared as such: as declared, no warning */
    s = k_2b4t;
    s.arch = "bitnet-b1.58";
    assert_int_equal(ka_decide(&s, "ka2b", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET_B158);
    assert_int_equal(g_n_warn, 0);
    /* an activation key wins over the evidence */
    s = k_2b4t;
    s.act = "silu";
    assert_int_equal(ka_decide(&s, "ka2b", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET);
    assert_int_equal(g_n_warn, 0);
}

/* bitnet.cpp's converter labels the 1bitLLM models 'bitnet-b1.58' since 2026-07: their
 * exact shapes and 32002-token SentencePiece vocabulary run them with SiLU, warned. */
static void test_known_1bitllm(void **state) {
    (void)state;
    bn_arch a;
    assert_int_equal(ka_decide(&k_large, "ka07", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET);
    assert_warned("bitnet_b1_58-large", "bitnet-b1.58");
    assert_int_equal(ka_decide(&k_3b, "ka3b", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET);
    assert_warned("bitnet_b1_58-3B", "bitnet-b1.58");

    ka_spec s = k_large;
    s.arch = "bitnet"; /* declared right: nothing to say */
    assert_int_equal(ka_decide(&s, "ka07", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET);
    assert_int_equal(g_n_warn, 0);
    s = k_large;
    s.n_vocab = 32000;
    assert_int_equal(ka_decide(&s, "ka07", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET_B158);
    assert_int_equal(g_n_warn, 0);
    s = k_large;
    s.n_layer = 23;
    assert_int_equal(ka_decide(&s, "ka07", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET_B158);
    s = k_3b;
    s.act = "relu2"; /* the file's own key: as it says, declared = what it says, no warning */
    assert_int_equal(ka_decide(&s, "ka3b", &a), BITNET_OK);
    assert_int_equal(a, BN_ARCH_BITNET_B158);
    assert_int_equal(g_n_warn, 0);
}

/* ---- whole small models ---------------------------------------------------------------- */

static bitnet_status load_small(const tm_spec *sp, const char *override, bitnet_model **m) {
    char path[512];
    tm_path(path, sizeof path, "kasmall");
    if (tm_write(sp, path) != 0) return BITNET_E_INTERNAL;
    bitnet_model_params p;
    bitnet_model_default_params(&p, sizeof p);
    p.arch = override;
    capture_start();
    bitnet_status st = bitnet_model_load(path, &p, m);
    capture_stop();
    unlink(path);
    return st;
}

static void test_declared_stands(void **state) {
    (void)state;
    static const struct { const char *file; int kv; const char *act; const char *runs; int warn; } cases[] = {
        /* the case: 'bitnet', GQA, SentencePiece, no activation key -> SiLU */
        {"bitnet", 2, NULL, "bitnet", 0},
        {"bitnet", 4, NULL, "bitnet", 0},
        {"bitnet", 2, "silu", "bitnet", 0},
        {"bitnet", 2, "relu2", "bitnet-b1.58", 1},
        {"bitnet", 4, "squared_relu", "bitnet-b1.58", 1},
        {"bitnet-b1.58", 2, NULL, "bitnet-b1.58", 0},
        {"bitnet-25", 2, NULL, "bitnet-b1.58", 0},
        {"bitnet-1.58", 4, NULL, "bitnet-b1.58", 0},
        {"bitnet-b1.58", 2, "relu2", "bitnet-b1.58", 0},
        {"bitnet-b1.58", 2, "silu", "bitnet", 1},
        {"llama", 2, NULL, "llama", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tm_spec sp;
        tm_default(&sp);
        sp.arch = cases[i].file;
        sp.n_head_kv = cases[i].kv;
        sp.act_key = cases[i].act;
        bitnet_model *m = NULL;
        assert_int_equal(load_small(&sp, NULL, &m), BITNET_OK);
        assert_string_equal(bitnet_model_arch(m), cases[i].runs);
        assert_int_equal(g_n_warn, cases[i].warn);
        if (cases[i].warn) assert_warned(cases[i].act, cases[i].file);
        bitnet_model_free(m);
    }
}

/* An activation we cannot run is refused, naming the key and the value. */
static void test_unknown_activation(void **state) {
    (void)state;
    tm_spec sp;
    tm_default(&sp);
    sp.arch = "bitnet";
    sp.act_key = "gelu";
    bitnet_model *m = NULL;
    assert_int_equal(load_small(&sp, NULL, &m), BITNET_E_UNSUPPORTED);
    assert_null(m);
    assert_non_null(strstr(bitnet_last_error(), "bitnet.hidden_act"));
    assert_non_null(strstr(bitnet_last_error(), "gelu"));
    /* the caller can still run it as one of ours */
    assert_int_equal(load_small(&sp, "bitnet", &m), BITNET_OK);
    assert_string_equal(bitnet_model_arch(m), "bitnet");
    bitnet_model_free(m);
}

/* The graph really follows the decision: a 'bitnet' file with relu2 gives the logits of
 * the same weights declared 'bitnet-b1.58', and a GQA 'bitnet' file without a key those
 * of the same weights run with the SiLU override (and not the ReLU^2 ones). */
static void eval_logits(const tm_spec *sp, const char *override, float *out, int n_vocab) {
    bitnet_model *m = NULL;
    assert_int_equal(load_small(sp, override, &m), BITNET_OK);
    bitnet_session *s = NULL;
    assert_int_equal(bitnet_session_create(m, NULL, &s), BITNET_OK);
    const bitnet_token toks[4] = {1, 260, 270, 280};
    assert_int_equal(bitnet_session_eval(s, toks, 4), BITNET_OK);
    const float *l = NULL;
    assert_int_equal(bitnet_session_logits(s, -1, &l), BITNET_OK);
    memcpy(out, l, (size_t)n_vocab * sizeof *out);
    bitnet_session_free(s);
    bitnet_model_free(m);
}

static void test_graph_follows(void **state) {
    (void)state;
    enum { V = 300 };
    static float a[V], b[V], c[V];
    tm_spec sp;
    tm_default(&sp);
    sp.arch = "bitnet";
    sp.act_key = "relu2";
    eval_logits(&sp, NULL, a, V);
    sp.arch = "bitnet-b1.58";
    sp.act_key = NULL;
    eval_logits(&sp, NULL, b, V);
    assert_memory_equal(a, b, sizeof a);

    sp.arch = "bitnet";
    eval_logits(&sp, NULL, a, V);
    eval_logits(&sp, "bitnet", b, V);
    eval_logits(&sp, "bitnet-b1.58", c, V);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_2b4t),
        cmocka_unit_test(test_known_1bitllm),
        cmocka_unit_test(test_declared_stands),
        cmocka_unit_test(test_unknown_activation),
        cmocka_unit_test(test_graph_follows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
