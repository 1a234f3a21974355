/*
 * test_tokenizer_gguf.c -- the vocabulary read from GGUF metadata: vocab-only files
 * written with the public writer, loaded with bitnet_model_load(vocab_only), and the
 * validation errors for malformed tokenizer metadata.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "bitnet.h"

#define TMP BN_TEST_TMP_DIR "/test_tokenizer_gguf.gguf"

/* What to break in the file. */
enum { OK_FILE, NO_MODEL, BAD_MODEL, SHORT_TYPES, BAD_MERGE, EOS_RANGE, SCORES_TYPE, BAD_PRE };

static const char *const k_toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", ("\xe2\x96\x81" "a"), "ab"};
static const int32_t k_types[] = {2, 3, 3, 1, 1, 1, 1, 1};
static const float k_scores[] = {0, 0, 0, -1, -2, -3, -0.5f, -4};

static void write_file(int what, const char *model) {
    bitnet_gguf_writer *w = NULL;
    assert_int_equal(bitnet_gguf_writer_create(&w), BITNET_OK);
    if (what != NO_MODEL) {
        const char *m = what == BAD_MODEL ? "t5" : model;
        assert_int_equal(bitnet_gguf_writer_set_str(w, "tokenizer.ggml.model", m, strlen(m)), BITNET_OK);
    }
    if (what == BAD_PRE) assert_int_equal(bitnet_gguf_writer_set_str(w, "tokenizer.ggml.pre", "deepseek-llm", 12), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", k_toks, NULL, 8), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BITNET_GGUF_INT32, k_types,
                                                  what == SHORT_TYPES ? 7 : 8), BITNET_OK);
    if (what == SCORES_TYPE)
        assert_int_equal(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.scores", BITNET_GGUF_INT32, k_types, 8), BITNET_OK);
    else
        assert_int_equal(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.scores", BITNET_GGUF_FLOAT32, k_scores, 8), BITNET_OK);
    if (strcmp(model, "gpt2") == 0) {
        const char *merges[] = {what == BAD_MERGE ? "a c" : "a b"};
        assert_int_equal(bitnet_gguf_writer_set_str_array(w, "tokenizer.ggml.merges", merges, NULL, 1), BITNET_OK);
    }
    uint32_t bos = 1, eos = what == EOS_RANGE ? 8 : 2;
    uint8_t yes = 1;
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "tokenizer.ggml.bos_token_id", BITNET_GGUF_UINT32, &bos), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "tokenizer.ggml.eos_token_id", BITNET_GGUF_UINT32, &eos), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "tokenizer.ggml.add_bos_token", BITNET_GGUF_BOOL, &yes), BITNET_OK);
    const char *tmpl = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                       "'<|im_end|>' + '\\n'}}{% endfor %}";
    assert_int_equal(bitnet_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl, strlen(tmpl)), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_begin(w, TMP), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_finish(w), BITNET_OK);
    bitnet_gguf_writer_free(w);
}

static bitnet_status load(bitnet_model **m) {
    bitnet_model_params p;
    bitnet_model_default_params(&p, sizeof p);
    p.vocab_only = 1;
    return bitnet_model_load(TMP, &p, m);
}

static void test_spm_file(void **state) {
    (void)state;
    write_file(OK_FILE, "llama");
    bitnet_model *m = NULL;
    assert_int_equal(load(&m), BITNET_OK);
    assert_int_equal(bitnet_model_get_info(m, BITNET_INFO_N_VOCAB), 8);
    assert_int_equal(bitnet_token_bos(m), 1);
    assert_int_equal(bitnet_token_eos(m), 2);
    assert_true(bitnet_token_is_eog(m, 2));
    assert_string_equal(bitnet_token_text(m, 6), "\xe2\x96\x81" "a");
    bitnet_token t[8];
    size_t n = 0;
    /* "ab" -> "▁ab": "▁a" (-0.5) beats "ab" (-4), then b */
    assert_int_equal(bitnet_tokenize(m, "ab", 2, BITNET_TOKENIZE_ADD_BOS, t, 8, &n), BITNET_OK);
    assert_int_equal(n, 3);
    assert_int_equal(t[0], 1);
    assert_int_equal(t[1], 6);
    assert_int_equal(t[2], 5);
    /* the chat template of the file (ChatML) */
    bitnet_chat_message msg = {"user", "hi"};
    char buf[64];
    assert_int_equal(bitnet_chat_apply(m, NULL, &msg, 1, 0, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, strlen("<|im_start|>user\nhi<|im_end|>\n"));
    bitnet_model_free(m);
}

static void test_bpe_file(void **state) {
    (void)state;
    write_file(OK_FILE, "gpt2");
    bitnet_model *m = NULL;
    assert_int_equal(load(&m), BITNET_OK);
    bitnet_token t[8];
    size_t n = 0;
    assert_int_equal(bitnet_tokenize(m, "ab", 2, 0, t, 8, &n), BITNET_OK);
    assert_int_equal(n, 1);
    assert_int_equal(t[0], 7);
    bitnet_model_free(m);
}

static void expect_fail(int what, const char *model, bitnet_status want, const char *needle) {
    write_file(what, model);
    bitnet_model *m = (bitnet_model *)1;
    assert_int_equal(load(&m), want);
    assert_null(m);
    assert_non_null(strstr(bitnet_last_error(), needle));
}

static void test_errors(void **state) {
    (void)state;
    expect_fail(NO_MODEL, "llama", BITNET_E_NOT_FOUND, "tokenizer.ggml.model");
    expect_fail(BAD_MODEL, "llama", BITNET_E_UNSUPPORTED, "t5");
    expect_fail(SHORT_TYPES, "llama", BITNET_E_FORMAT, "token_type");
    expect_fail(BAD_MERGE, "gpt2", BITNET_E_FORMAT, "merges[0]");
    expect_fail(EOS_RANGE, "llama", BITNET_E_FORMAT, "eos_token_id");
    expect_fail(SCORES_TYPE, "llama", BITNET_E_FORMAT, "scores");
    expect_fail(BAD_PRE, "gpt2", BITNET_E_UNSUPPORTED, "deepseek-llm");
    remove(TMP);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_file),
        cmocka_unit_test(test_bpe_file),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
