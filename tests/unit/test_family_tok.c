/*
 * test_family_tok.c -- the tokenizer rules of the wider BitNet family (docs/spec.md
 * §6.4, docs/tokenizers.md): the pre-tokenizer names Falcon3 and Falcon-E files carry
 * (falcon3, falcon_e: llama.cpp's LLaMA-3 group, so LLaMA-3's split and BOS by default),
 * the Qwen3 embedding model's qwen2 (digits one at a time, no BOS by default), and an
 * explicit add_bos_token winning over the defaults.  (The regexes themselves are checked
 * against a regex engine in tests/family/run_pretok.sh.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "tok_vocab.h"

/* A byte-level BPE vocabulary: the 256 byte symbols, a BOS-like control token, "ab". */
static bn_vocab *build(const char *pre, int add_bos) {
    static char sym[256][4];
    static const char *toks[258];
    static int32_t types[258];
    for (int b = 0; b < 256; b++) {
        uint32_t cp = bn_byte_to_cp((uint8_t)b);
        if (cp < 0x80) sym[b][0] = (char)cp, sym[b][1] = 0;
        else sym[b][0] = (char)(0xc0 | (cp >> 6)), sym[b][1] = (char)(0x80 | (cp & 0x3f)), sym[b][2] = 0;
        toks[b] = sym[b];
        types[b] = 1;
    }
    toks[256] = "<|begin|>";
    types[256] = 3;
    toks[257] = "ab";
    types[257] = 1;
    static const char *const merges[] = {"a b"};
    bn_vocab_desc d;
    bn_vocab_desc_init(&d);
    d.model = "gpt2";
    d.pre = pre;
    d.pre_len = pre ? strlen(pre) : 0;
    d.tokens = toks;
    d.n_tokens = 258;
    d.types = types;
    d.merges = merges;
    d.n_merges = 1;
    d.bos = 256;
    d.add_bos = add_bos;
    bn_vocab *v = NULL;
    assert_int_equal(bn_vocab_build(&d, NULL, &v), BITNET_OK);
    return v;
}

static size_t tokenize(const bn_vocab *v, const char *text, bitnet_token *out) {
    bn_toklist l = {0};
    assert_int_equal(bn_tokenize(v, text, strlen(text), BITNET_TOKENIZE_ADD_BOS, &l), BITNET_OK);
    size_t n = l.n;
    memcpy(out, l.v, n * sizeof *out);
    bn_free(l.v);
    return n;
}

static void test_names_and_bos(void **state) {
    (void)state;
    static const struct {
        const char *pre;
        int add_bos; /* the key: -1 absent */
        int want_bos;
    } cases[] = {
        {"falcon3", -1, 1}, {"falcon_e", -1, 1}, {"llama-bpe", -1, 1}, {"qwen2", -1, 0},
        {"gpt2", -1, 0},    {"default", -1, 0},  {"falcon3", 0, 0},    {"qwen2", 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_vocab *v = build(cases[i].pre, cases[i].add_bos);
        bitnet_token t[64];
        size_t n = tokenize(v, "x", t);
        assert_int_equal(n, 1 + (size_t)cases[i].want_bos);
        assert_int_equal(t[0] == 256, cases[i].want_bos);
        bn_vocab_free(v);
    }
    /* falcon3 and falcon_e split as llama-bpe does, qwen2 keeps digits apart */
    const char *text = "In 2026, 12345 items cost $3.50 -- don'T";
    uint32_t cps[64];
    size_t n = 0;
    for (const char *p = text; *p; p++) cps[n++] = (uint32_t)(unsigned char)*p;
    size_t e1[64], e2[64], e3[64], sc[64];
    bn_vocab *vf3 = build("falcon3", -1), *vfe = build("falcon_e", -1), *vl3 = build("llama-bpe", -1),
             *vq = build("qwen2", -1);
    assert_int_equal(vf3->pre, BN_PRE_LLAMA3);
    assert_int_equal(vfe->pre, BN_PRE_LLAMA3);
    assert_int_equal(vl3->pre, BN_PRE_LLAMA3);
    assert_int_equal(vq->pre, BN_PRE_QWEN2);
    assert_true(vf3->ignore_merges && !vq->ignore_merges);
    size_t k1 = bn_pretok_split(BN_PRE_LLAMA3, cps, n, e1, sc);
    size_t k2 = bn_pretok_split(BN_PRE_QWEN2, cps, n, e2, sc);
    assert_true(k2 > k1); /* "2026" and "12345" cut into single digits */
    size_t k3 = bn_pretok_split(BN_PRE_QWEN2, cps, 7, e3, sc); /* "In 2026" */
    assert_int_equal(k3, 6); /* "In", " ", "2", "0", "2", "6" */
    bn_vocab_free(vf3);
    bn_vocab_free(vfe);
    bn_vocab_free(vl3);
    bn_vocab_free(vq);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_bos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
