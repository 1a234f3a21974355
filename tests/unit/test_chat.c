/*
 * test_chat.c -- chat templates: exact renderings (written out by hand from the
 * template definitions in docs/tokenizers.md / docs/spec.md §7.1), recognition of template
 * texts, the fallback, and errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "tok_vocab.h"

static const bitnet_chat_message k_msgs[] = {
    {"system", "You are helpful."},
    {"user", "Hi!"},
    {"assistant", "Hello."},
    {"user", " Bye \n"},
};

static void check(const char *tmpl, int gen, const char *want) {
    char buf[1024];
    size_t n = 0;
    assert_int_equal(bn_chat_apply(NULL, tmpl, k_msgs, 4, gen, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(buf, want, n);
}

static void test_bitnet(void **state) {
    (void)state;
    const char *want = "System: You are helpful.User: Hi!<|eot_id|>Assistant: Hello.User:  Bye \n<|eot_id|>Assistant: ";
    check("bitnet", 1, want);
    check("bitnet", 0, want); /* bitnet.cpp ignores add_generation_prompt */
    /* the template text in the 2B-4T GGUF selects the same rendering */
    check("{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}{% if message['role'] == 'user' %}"
          "{{ 'Human: ' + message['content'] + '\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == "
          "'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}", 1, want);
    check("bitnet-hf", 1,
          "System: You are helpful.<|eot_id|>User: Hi!<|eot_id|>Assistant: Hello.<|eot_id|>User:  Bye \n<|eot_id|>Assistant: ");
}

static void test_llama3_chatml_plain(void **state) {
    (void)state;
    check("llama3", 1,
          "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
    check("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}", 0,
          "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>");
    check("chatml", 1,
          "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
          "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n Bye \n<|im_end|>\n<|im_start|>assistant\n");
    check("plain", 1, "System: You are helpful.\nUser: Hi!\nAssistant: Hello.\nUser:  Bye \n\nAssistant:");
}

static void test_errors_and_buffer(void **state) {
    (void)state;
    char buf[16];
    size_t n = 0;
    assert_int_equal(bn_chat_apply(NULL, "{{ unknown }}", k_msgs, 4, 1, buf, sizeof buf, &n), BITNET_E_UNSUPPORTED);
    assert_non_null(strstr(bitnet_last_error(), "template"));
    assert_int_equal(bn_chat_apply(NULL, NULL, k_msgs, 4, 1, buf, sizeof buf, &n), BITNET_E_INVALID_ARG);
    bitnet_chat_message bad = {NULL, "x"};
    assert_int_equal(bn_chat_apply(NULL, "chatml", &bad, 1, 1, buf, sizeof buf, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bn_chat_apply(NULL, "chatml", k_msgs, 4, 1, buf, sizeof buf, &n), BITNET_E_BUFFER_TOO_SMALL);
    assert_true(n > sizeof buf);
    char big[64];
    assert_int_equal(bn_chat_apply(NULL, "chatml", k_msgs, 0, 1, big, sizeof big, &n), BITNET_OK);
    assert_int_equal(n, strlen("<|im_start|>assistant\n"));
    assert_int_equal(bitnet_chat_apply(NULL, NULL, k_msgs, 4, 1, buf, sizeof buf, &n), BITNET_E_INVALID_ARG);
}

static void test_model_template(void **state) {
    (void)state;
    static const char *const toks[] = {"a", "b", "ab"};
    static const char *const merges[] = {"a b"};
    bn_vocab_desc d;
    bn_vocab_desc_init(&d);
    d.model = "gpt2";
    d.tokens = toks;
    d.n_tokens = 3;
    d.merges = merges;
    d.n_merges = 1;
    bn_vocab *v = NULL;
    char buf[256];
    size_t n = 0;
    /* no template: plain */
    assert_int_equal(bn_vocab_build(&d, NULL, &v), BITNET_OK);
    assert_int_equal(bn_chat_apply(v, NULL, k_msgs + 1, 1, 1, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, strlen("User: Hi!\nAssistant:"));
    assert_memory_equal(buf, "User: Hi!\nAssistant:", n);
    bn_vocab_free(v);
    /* a ChatML template text */
    const char *t = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>'}}{% endfor %}";
    d.chat_template = t;
    d.chat_template_len = strlen(t);
    assert_int_equal(bn_vocab_build(&d, NULL, &v), BITNET_OK);
    assert_int_equal(bn_chat_apply(v, NULL, k_msgs + 1, 1, 0, buf, sizeof buf, &n), BITNET_OK);
    assert_memory_equal(buf, "<|im_start|>user\nHi!<|im_end|>\n", n);
    /* the name overrides the model's template */
    assert_int_equal(bn_chat_apply(v, "plain", k_msgs + 1, 1, 0, buf, sizeof buf, &n), BITNET_OK);
    assert_memory_equal(buf, "User: Hi!\n", n);
    bn_vocab_free(v);
    /* an unknown template text in the model */
    d.chat_template = "{{ messages }}";
    d.chat_template_len = strlen(d.chat_template);
    assert_int_equal(bn_vocab_build(&d, NULL, &v), BITNET_OK);
    assert_int_equal(bn_chat_apply(v, NULL, k_msgs, 1, 0, buf, sizeof buf, &n), BITNET_E_UNSUPPORTED);
    bn_vocab_free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitnet),
        cmocka_unit_test(test_llama3_chatml_plain),
        cmocka_unit_test(test_errors_and_buffer),
        cmocka_unit_test(test_model_template),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
