/*
 * test_model.c -- model loading: architectures and their decision, hyperparameters,
 * every ternary weight type, and load errors naming what is wrong.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "internal.h"
#include "test_model_util.h"

static bitnet_status load(const tm_spec *sp, const char *tag, const char *arch_override, bitnet_model **m) {
    char path[512];
    tm_path(path, sizeof path, tag);
    if (tm_write(sp, path) != 0) {
        unlink(path);
        return BITNET_E_INTERNAL;
    }
    bitnet_model_params p;
    bitnet_model_default_params(&p, sizeof p);
    p.arch = arch_override;
    bitnet_status st = bitnet_model_load(path, &p, m);
    unlink(path);
    return st;
}

static void test_load_types(void **state) {
    (void)state;
    const bitnet_type types[] = {BITNET_TYPE_I2_S, BITNET_TYPE_TQ2_0, BITNET_TYPE_TQ1_0, BITNET_TYPE_F16,
                                 BITNET_TYPE_F32, BITNET_TYPE_BF16};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        tm_spec sp;
        tm_default(&sp);
        sp.wtype = types[i];
        bitnet_model *m = NULL;
        assert_int_equal(load(&sp, "types", NULL, &m), BITNET_OK);
        assert_string_equal(bitnet_model_arch(m), "bitnet-b1.58");
        assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_N_VOCAB), 300);
        assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_N_EMBD), 256);
        assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_N_LAYER), 2);
        assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_N_HEAD), 4);
        assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_N_HEAD_KV), 2);
        assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_N_FF), 512);
        assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_HEAD_DIM), 64);
        assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_N_CTX_TRAIN), 256);
        assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_WEIGHT_TYPE), types[i]);
        /* parameters: embedding + output norm + per layer 4 norms and 7 projections */
        int64_t per_layer = 256 * 3 + 512 + 256 * 256 * 2 + 256 * 128 * 2 + 256 * 512 * 3;
        assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_N_PARAMS), 256 * 300 + 256 + 2 * per_layer);
        /* honest memory: 2-bit codes (+ small vectors), never more than 1 byte/weight */
        int64_t size = bitnet_model_get_info(m, BITNET_INFO_SIZE_BYTES);
        assert_true(size < 256 * 300 * 2 + 2 * per_layer);
        assert_non_null(strstr(bitnet_model_desc(m), "bitnet-b1.58 2L 256d"));
        bitnet_model_free(m);
    }
}

static void test_arch_names(void **state) {
    (void)state;
    static const struct { const char *file, *runs; int kv; const char *act; } cases[] = {
        {"bitnet-b1.58", "bitnet-b1.58", 2, NULL},
        {"bitnet-25", "bitnet-b1.58", 2, NULL},
        {"bitnet-1.58", "bitnet-b1.58", 2, NULL},
        {"bitnet", "bitnet", 4, NULL},          /* 1bitLLM shape: MHA, small vocab -> SiLU */
        {"bitnet", "bitnet", 2, NULL},          /* GQA alone is no evidence: as declared */
        {"bitnet", "bitnet-b1.58", 4, "relu2"}, /* an activation key decides */
        {"bitnet", "bitnet", 2, "silu"},
        {"llama", "llama", 2, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tm_spec sp;
        tm_default(&sp);
        sp.arch = cases[i].file;
        sp.n_head_kv = cases[i].kv;
        sp.act_key = cases[i].act;
        bitnet_model *m = NULL;
        assert_int_equal(load(&sp, "arch", NULL, &m), BITNET_OK);
        assert_string_equal(bitnet_model_arch(m), cases[i].runs);
        bitnet_model_free(m);
    }
    /* the caller's override wins */
    tm_spec sp;
    tm_default(&sp);
    sp.arch = "bitnet";
    bitnet_model *m = NULL;
    assert_int_equal(load(&sp, "arch", "bitnet", &m), BITNET_OK);
    assert_string_equal(bitnet_model_arch(m), "bitnet");
    bitnet_model_free(m);
    m = NULL;
    assert_int_equal(load(&sp, "arch", "gpt-j", &m), BITNET_E_INVALID_ARG);
    assert_null(m);
    assert_non_null(strstr(bitnet_last_error(), "gpt-j"));
}

static void test_errors(void **state) {
    (void)state;
    tm_spec sp;
    bitnet_model *m = NULL;

    tm_default(&sp);
    sp.arch = "gptneox";
    assert_int_equal(load(&sp, "err", NULL, &m), BITNET_E_UNSUPPORTED);
    assert_null(m);
    assert_non_null(strstr(bitnet_last_error(), "gptneox"));

    tm_default(&sp);
    sp.omit = "blk.1.ffn_up.weight";
    assert_int_equal(load(&sp, "err", NULL, &m), BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_last_error(), "blk.1.ffn_up.weight"));
    assert_non_null(strstr(bitnet_last_error(), "missing"));

    tm_default(&sp);
    sp.omit = "blk.0.attn_sub_norm.weight";
    assert_int_equal(load(&sp, "err", NULL, &m), BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_last_error(), "blk.0.attn_sub_norm.weight"));

    tm_default(&sp);
    sp.wtype = BITNET_TYPE_TQ2_0;
    sp.misshape = "blk.0.attn_k.weight";
    assert_int_equal(load(&sp, "err", NULL, &m), BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_last_error(), "blk.0.attn_k.weight"));
    assert_non_null(strstr(bitnet_last_error(), "shape"));

    tm_default(&sp);
    sp.wtype = BITNET_TYPE_F16;
    sp.nonternary = 1;
    assert_int_equal(load(&sp, "err", NULL, &m), BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_last_error(), "blk.0.attn_q.weight"));
    assert_non_null(strstr(bitnet_last_error(), "not ternary"));

    tm_default(&sp);
    sp.n_head = 3; /* 256 % 3 != 0 */
    sp.n_head_kv = 3;
    assert_int_equal(load(&sp, "err", NULL, &m), BITNET_E_FORMAT);
    assert_null(m);
    assert_non_null(strstr(bitnet_last_error(), "embedding_length"));

    tm_default(&sp);
    sp.n_head_kv = 3; /* 4 % 3 != 0 */
    assert_int_equal(load(&sp, "err", NULL, &m), BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_last_error(), "head_count"));
}

/* vocab-only loading still works and reports no hyperparameters */
static void test_vocab_only(void **state) {
    (void)state;
    tm_spec sp;
    tm_default(&sp);
    char path[512];
    tm_path(path, sizeof path, "vonly");
    assert_int_equal(tm_write(&sp, path), 0);
    bitnet_model_params p;
    bitnet_model_default_params(&p, sizeof p);
    p.vocab_only = 1;
    bitnet_model *m = NULL;
    assert_int_equal(bitnet_model_load(path, &p, &m), BITNET_OK);
    unlink(path);
    assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_N_VOCAB), 300);
    assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_N_LAYER), 0);
    bitnet_session *s = NULL;
    assert_int_equal(bitnet_session_create(m, NULL, &s), BITNET_E_INVALID_ARG);
    bitnet_model_free(m);
}

/* Every allocation failure during load and session creation is reported as an error
 * (never a crash; ASan checks nothing leaks). */
static void test_alloc_failures(void **state) {
    (void)state;
    tm_spec sp;
    tm_default(&sp);
    sp.n_layer = 1;
    sp.wtype = BITNET_TYPE_TQ1_0;
    char path[512];
    tm_path(path, sizeof path, "oom");
    assert_int_equal(tm_write(&sp, path), 0);
    int ok = 0;
    for (uint64_t n = 1; n < 5000 && !ok; n++) {
        bn_alloc_fail_after(n);
        bitnet_model *m = NULL;
        bitnet_status st = bitnet_model_load(path, NULL, &m);
        if (st == BITNET_OK) {
            bitnet_session *s = NULL;
            bitnet_session_params p;
            bitnet_session_default_params(&p, sizeof p);
            p.n_threads = 2;
            p.n_ctx = 32;
            st = bitnet_session_create(m, &p, &s);
            if (st == BITNET_OK) {
                bitnet_token t[3] = {5, 6, 7};
                st = bitnet_session_eval(s, t, 3);
                ok = st == BITNET_OK;
            }
            bitnet_session_free(s);
        } else {
            assert_null(m);
        }
        if (!ok) assert_true(st == BITNET_E_NOMEM || st == BITNET_E_IO);
        bitnet_model_free(m);
    }
    bn_alloc_fail_after(0);
    unlink(path);
    assert_true(ok);
}

/* Hostile weights: an I2_S code 3 or a TQ2_0 code 3 is refused, naming the tensor. */
static void test_code3(void **state) {
    (void)state;
    const bitnet_type types[] = {BITNET_TYPE_I2_S, BITNET_TYPE_TQ2_0};
    for (int k = 0; k < 2; k++) {
        tm_spec sp;
        tm_default(&sp);
        sp.wtype = types[k];
        char path[512];
        tm_path(path, sizeof path, "code3");
        assert_int_equal(tm_write(&sp, path), 0);
        bitnet_gguf *g = NULL;
        assert_int_equal(bitnet_gguf_open(path, &g), BITNET_OK);
        int64_t i = bitnet_gguf_find_tensor(g, "blk.1.ffn_down.weight");
        assert_true(i >= 0);
        long off = (long)(bitnet_gguf_data_offset(g) + bitnet_gguf_tensor_offset(g, (uint64_t)i)) + 100;
        bitnet_gguf_close(g);
        FILE *f = fopen(path, "r+b");
        assert_non_null(f);
        assert_int_equal(fseek(f, off, SEEK_SET), 0);
        assert_int_equal(fputc(0xff, f), 0xff);
        assert_int_equal(fclose(f), 0);
        bitnet_model *m = NULL;
        assert_int_equal(bitnet_model_load(path, NULL, &m), BITNET_E_FORMAT);
        assert_null(m);
        assert_non_null(strstr(bitnet_last_error(), "blk.1.ffn_down.weight"));
        assert_non_null(strstr(bitnet_last_error(), "code 3"));
        unlink(path);
    }
}

/* Non-finite weights: NaN or infinity in any float tensor the loader touches is refused,
 * naming the tensor -- embeddings and output of every type (values of float types,
 * block scales of block types), norms, projection scales, TQ block scales, ternary
 * float projections -- on the G4X32 copy path (auto kernels) and the check-in-place
 * path (scalar kernels) alike. */
typedef struct nf_case {
    const char *tensor;
    bitnet_type wtype, etype;
    int         with_output;
    size_t      at;      /* byte offset in the tensor's data */
    uint8_t     bytes[4];
    int         len;
    const char *says;    /* part of the message */
} nf_case;

static void test_nonfinite(void **state) {
    (void)state;
    const size_t i2s_q = 256 * 256 / 4; /* byte of blk.N.attn_q's I2_S scale */
    static nf_case cases[] = {
        {"token_embd.weight", BITNET_TYPE_I2_S, BITNET_TYPE_F16, 0, 20, {0x00, 0x7c}, 2, "not finite"},  /* +inf */
        {"token_embd.weight", BITNET_TYPE_I2_S, BITNET_TYPE_F16, 0, 2 * 256 * 299 + 6, {0x00, 0xfc}, 2, "not finite"},
        {"token_embd.weight", BITNET_TYPE_I2_S, BITNET_TYPE_F16, 0, 1000, {0x01, 0x7e}, 2, "not finite"}, /* NaN */
        {"token_embd.weight", BITNET_TYPE_I2_S, BITNET_TYPE_F32, 0, 400, {0x00, 0x00, 0xc0, 0x7f}, 4, "not finite"},
        {"token_embd.weight", BITNET_TYPE_I2_S, BITNET_TYPE_BF16, 0, 64, {0x80, 0x7f}, 2, "not finite"},
        {"token_embd.weight", BITNET_TYPE_I2_S, BITNET_TYPE_Q8_0, 0, 34 * 5, {0x00, 0x7c}, 2, "block scale"},
        {"token_embd.weight", BITNET_TYPE_I2_S, BITNET_TYPE_Q6_K, 0, 210 * 3 + 208, {0x00, 0x7e}, 2, "block scale"},
        {"output.weight", BITNET_TYPE_I2_S, BITNET_TYPE_F16, 1, 512 * 7 + 2, {0x00, 0x7c}, 2, "not finite"},
        {"blk.1.ffn_norm.weight", BITNET_TYPE_I2_S, BITNET_TYPE_F16, 0, 4 * 9, {0x00, 0x00, 0x80, 0x7f}, 4,
         "not finite"},
        {"blk.0.attn_q.weight", BITNET_TYPE_I2_S, BITNET_TYPE_F16, 0, 0, {0x00, 0x00, 0xc0, 0x7f}, 4, "not finite"},
        {"blk.1.ffn_up.weight", BITNET_TYPE_TQ2_0, BITNET_TYPE_F16, 0, 66 * 9 + 64, {0x00, 0x7c}, 2, "block scale"},
        {"blk.0.ffn_gate.weight", BITNET_TYPE_TQ1_0, BITNET_TYPE_F16, 0, 54 * 2 + 52, {0x00, 0xfe}, 2, "block scale"},
        {"blk.0.attn_v.weight", BITNET_TYPE_F16, BITNET_TYPE_F16, 0, 2 * 300, {0x00, 0x7c}, 2, "not finite"},
        {"blk.1.attn_k.weight", BITNET_TYPE_F32, BITNET_TYPE_F16, 0, 4 * 77, {0x00, 0x00, 0xc0, 0xff}, 4, "not finite"},
        {"blk.0.ffn_down.weight", BITNET_TYPE_BF16, BITNET_TYPE_F16, 0, 0, {0x80, 0xff}, 2, "not finite"},
    };
    cases[9].at = i2s_q; /* the I2_S tensor scale itself */
    const bitnet_isa isas[] = {BITNET_ISA_AUTO, BITNET_ISA_SCALAR};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int k = 0; k < 2; k++) {
            tm_spec sp;
            tm_default(&sp);
            sp.wtype = cases[i].wtype;
            sp.etype = cases[i].etype;
            sp.with_output = cases[i].with_output;
            if (sp.with_output) sp.arch = "llama"; /* (2B-4T ties the output layer) */
            sp.poison = cases[i].tensor;
            sp.poison_at = cases[i].at;
            memcpy(sp.poison_bytes, cases[i].bytes, 4);
            sp.poison_len = cases[i].len;
            char path[512];
            tm_path(path, sizeof path, "nonfinite");
            assert_int_equal(tm_write(&sp, path), 0);
            bitnet_model_params p;
            bitnet_model_default_params(&p, sizeof p);
            p.isa = isas[k];
            bitnet_model *m = NULL;
            bitnet_status st = bitnet_model_load(path, &p, &m);
            unlink(path);
            if (st != BITNET_E_FORMAT || !strstr(bitnet_last_error(), cases[i].tensor) ||
                !strstr(bitnet_last_error(), cases[i].says))
                fail_msg("case %zu (%s, isa %d): status %d, message '%s'", i, cases[i].tensor, (int)isas[k], (int)st,
                         bitnet_last_error());
            assert_null(m);
        }
    /* the same files without the poison load */
    tm_spec sp;
    tm_default(&sp);
    sp.etype = BITNET_TYPE_Q6_K;
    bitnet_model *m = NULL;
    char path[512];
    tm_path(path, sizeof path, "nonfinite");
    assert_int_equal(tm_write(&sp, path), 0);
    assert_int_equal(bitnet_model_load(path, NULL, &m), BITNET_OK);
    bitnet_model_free(m);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_types),
        cmocka_unit_test(test_arch_names),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_vocab_only),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_code3),
        cmocka_unit_test(test_nonfinite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
