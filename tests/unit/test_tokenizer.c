/*
 * test_tokenizer.c -- tokenizer unit tests over small in-memory vocabularies (no files,
 * no network): Unicode classes, the three pre-tokenizers (expected splits derived by
 * hand from the regexes), byte-level BPE merge order, SentencePiece scores and byte
 * fallback, special tokens, detokenization, the streaming decoder, vocabulary
 * validation and the LLaMA-3 vocabulary recognition.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "tok_unicode.h"
#include "tok_vocab.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* UTF-8 of the GPT-2 mapped character of byte b. */
static void mapped_char(int b, char *out) {
    uint32_t cp = bn_byte_to_cp((uint8_t)b);
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xc0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3f)); out[2] = 0; }
}

/* Byte-level vocabulary: ids 0..255 are the bytes' mapped characters, then `extra`
 * tokens (already in mapped form), with the given merges and token types. */
typedef struct bpe_fixture {
    char    bytes[256][3];
    const char *toks[512];
    int32_t types[512];
    int     n;
} bpe_fixture;

static bn_vocab *make_bpe(const char *pre, const char *const *extra, const int32_t *extra_types, int n_extra,
                          const char *const *merges, int n_merges) {
    static bpe_fixture f;
    for (int b = 0; b < 256; b++) {
        mapped_char(b, f.bytes[b]);
        f.toks[b] = f.bytes[b];
        f.types[b] = BN_TOK_NORMAL;
    }
    for (int i = 0; i < n_extra; i++) {
        f.toks[256 + i] = extra[i];
        f.types[256 + i] = extra_types ? extra_types[i] : BN_TOK_NORMAL;
    }
    bn_vocab_desc d;
    bn_vocab_desc_init(&d);
    d.model = "gpt2";
    d.pre = pre;
    d.pre_len = pre ? strlen(pre) : 0;
    d.tokens = f.toks;
    d.n_tokens = 256 + n_extra;
    d.types = f.types;
    d.merges = merges;
    d.n_merges = n_merges;
    bn_vocab *v = NULL;
    assert_int_equal(bn_vocab_build(&d, NULL, &v), BITNET_OK);
    return v;
}

static size_t encode(const bn_vocab *v, const char *s, size_t len, uint32_t flags, bitnet_token *out, size_t cap) {
    bitnet_model m;
    memset(&m, 0, sizeof m);
    m.vocab = (bn_vocab *)v;
    size_t n = 0;
    assert_int_equal(bitnet_tokenize(&m, s, len, flags, out, cap, &n), BITNET_OK);
    return n;
}

static size_t decode(const bn_vocab *v, const bitnet_token *t, size_t n, uint32_t flags, char *buf, size_t cap) {
    bitnet_model m;
    memset(&m, 0, sizeof m);
    m.vocab = (bn_vocab *)v;
    size_t nb = 0;
    assert_int_equal(bitnet_detokenize(&m, t, n, flags, buf, cap, &nb), BITNET_OK);
    return nb;
}

/* Pieces of s (UTF-8) as "|"-joined string. */
static void split_str(bn_pre_kind pre, const char *s, char *out) {
    size_t len = strlen(s);
    uint32_t cps[256];
    size_t off[257], ends[256], scratch[256], n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = bn_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (!l) { cp = BN_CP_INVALID; l = 1; }
        off[n] = i;
        cps[n++] = cp;
        i += l;
    }
    off[n] = len;
    size_t k = bn_pretok_split(pre, cps, n, ends, scratch), o = 0, st = 0;
    for (size_t i = 0; i < k; i++) {
        if (i) out[o++] = '|';
        memcpy(out + o, s + off[st], off[ends[i]] - off[st]);
        o += off[ends[i]] - off[st];
        st = ends[i];
    }
    out[o] = 0;
}

#define CHECK_SPLIT(pre, in, want) do { char got_[1024]; split_str(pre, in, got_); assert_string_equal(got_, want); } while (0)

/* ---- Unicode classes -------------------------------------------------------------------- */

static void test_unicode_classes(void **state) {
    (void)state;
    assert_int_equal(bn_uc_flags('a'), BN_UC_L);
    assert_int_equal(bn_uc_flags('7'), BN_UC_N);
    assert_int_equal(bn_uc_flags('!'), BN_UC_P);
    assert_int_equal(bn_uc_flags('$'), 0);           /* Sc, not P */
    assert_int_equal(bn_uc_flags('`'), 0);           /* Sk */
    assert_int_equal(bn_uc_flags('\n'), BN_UC_WS);
    assert_int_equal(bn_uc_flags(0x00E9), BN_UC_L);  /* é */
    assert_int_equal(bn_uc_flags(0x00B2), BN_UC_N);  /* superscript two, No */
    assert_int_equal(bn_uc_flags(0x0660), BN_UC_N);  /* Arabic-Indic zero */
    assert_int_equal(bn_uc_flags(0x00A0), BN_UC_WS); /* no-break space */
    assert_int_equal(bn_uc_flags(0x0085), BN_UC_WS); /* NEL */
    assert_int_equal(bn_uc_flags(0x3000), BN_UC_WS); /* ideographic space */
    assert_int_equal(bn_uc_flags(0x200B), 0);        /* zero width space is not White_Space */
    assert_int_equal(bn_uc_flags(0x2014), BN_UC_P);  /* em dash */
    assert_int_equal(bn_uc_flags(0x4E2D), BN_UC_L);  /* 中 (inside a First/Last range) */
    assert_int_equal(bn_uc_flags(0xAC00), BN_UC_L);  /* 가 */
    assert_int_equal(bn_uc_flags(0x1F600), 0);       /* emoji: So */
    assert_int_equal(bn_uc_flags(0x0301), 0);        /* combining acute: Mn */
    assert_int_equal(bn_uc_flags(BN_CP_INVALID), 0);
    assert_int_equal(bn_uc_flags(0x10FFFF), 0);
    /* the ASCII fast path agrees with the table */
    for (uint32_t c = 0; c < 0x80; c++) {
        uint32_t f = 0;
        for (size_t i = 0; i < bn_uc_n_ranges; i++)
            if (c >= bn_uc_ranges[i].lo && c <= bn_uc_ranges[i].hi) f = bn_uc_ranges[i].flags;
        assert_int_equal(bn_uc_flags(c), f);
    }
}

static void test_byte_map(void **state) {
    (void)state;
    assert_int_equal(bn_byte_to_cp(' '), 0x120);
    assert_int_equal(bn_byte_to_cp('\n'), 0x10A);
    assert_int_equal(bn_byte_to_cp('A'), 'A');
    assert_int_equal(bn_byte_to_cp(0xAD), 0x143);  /* the last of the 68 remapped bytes */
    for (int b = 0; b < 256; b++) assert_int_equal(bn_cp_to_byte(bn_byte_to_cp((uint8_t)b)), b);
    assert_int_equal(bn_cp_to_byte(0x144), -1);
    assert_int_equal(bn_cp_to_byte(0x20), -1);
}

/* ---- pre-tokenizers ------------------------------------------------------------------------ */

static void test_pre_llama3(void **state) {
    (void)state;
    CHECK_SPLIT(BN_PRE_LLAMA3, "Hello world", "Hello| world");
    CHECK_SPLIT(BN_PRE_LLAMA3, "don't DON'T we'll I'M", "don|'t| DON|'T| we|'ll| I|'M");
    CHECK_SPLIT(BN_PRE_LLAMA3, "12345 678", "123|45| |678");
    CHECK_SPLIT(BN_PRE_LLAMA3, "a  b", "a| | b");
    CHECK_SPLIT(BN_PRE_LLAMA3, "x\n\ny", "x|\n\n|y");
    CHECK_SPLIT(BN_PRE_LLAMA3, "  \n  x", "  \n| | x");
    CHECK_SPLIT(BN_PRE_LLAMA3, "end...\n\nnext", "end|...\n\n|next");
    CHECK_SPLIT(BN_PRE_LLAMA3, "trail   ", "trail|   ");
    CHECK_SPLIT(BN_PRE_LLAMA3, "(hello)", "(hello|)");
    CHECK_SPLIT(BN_PRE_LLAMA3, "\thi", "\thi");
    CHECK_SPLIT(BN_PRE_LLAMA3, "café 中文", "café| 中文");
    CHECK_SPLIT(BN_PRE_LLAMA3, "'hello", "'hello");
    CHECK_SPLIT(BN_PRE_LLAMA3, "x  \ty", "x|  |\ty"); /* \s+(?!\S) backs off one; "\ty" by [^\r\n\p{L}\p{N}]?\p{L}+ */
}

static void test_pre_gpt2(void **state) {
    (void)state;
    CHECK_SPLIT(BN_PRE_GPT2, "Hello world", "Hello| world");
    CHECK_SPLIT(BN_PRE_GPT2, "don't DON'T", "don|'t| DON|'|T");
    CHECK_SPLIT(BN_PRE_GPT2, "12345 678", "12345| 678");
    CHECK_SPLIT(BN_PRE_GPT2, " 123abc", " 123|abc");
    CHECK_SPLIT(BN_PRE_GPT2, "a  b", "a| | b");
    CHECK_SPLIT(BN_PRE_GPT2, "x\ny", "x|\n|y");
    CHECK_SPLIT(BN_PRE_GPT2, "hi!! ?", "hi|!!| ?");
}

static void test_pre_default(void **state) {
    (void)state;
    CHECK_SPLIT(BN_PRE_DEFAULT, "don't", "don|'|t");
    CHECK_SPLIT(BN_PRE_DEFAULT, "12345", "123|45");
    CHECK_SPLIT(BN_PRE_DEFAULT, " 1234567", " |123|456|7");
    CHECK_SPLIT(BN_PRE_DEFAULT, "a=b", "a|=|b");
    CHECK_SPLIT(BN_PRE_DEFAULT, "hello, world", "hello|,| world");
    CHECK_SPLIT(BN_PRE_DEFAULT, "x`y", "x|`|y");  /* backtick is not in regex 1; regex 2 splits it */
}

/* ---- byte-level BPE -------------------------------------------------------------------------- */

static void test_bpe_merge_order(void **state) {
    (void)state;
    static const char *const extra[] = {"ab", "bc", "aa"};
    static const char *const m1[] = {"a b", "b c", "a a"};
    static const char *const m2[] = {"b c", "a b", "a a"};
    bitnet_token t[16];
    bn_vocab *v = make_bpe("gpt2", extra, NULL, 3, m1, 3);
    assert_int_equal(encode(v, "abc", 3, 0, t, 16), 2);
    assert_int_equal(t[0], 256);  /* ab: rank 0 wins */
    assert_int_equal(t[1], 'c');
    assert_int_equal(encode(v, "aaa", 3, 0, t, 16), 2);
    assert_int_equal(t[0], 258);  /* equal ranks: leftmost first */
    assert_int_equal(t[1], 'a');
    bn_vocab_free(v);
    v = make_bpe("gpt2", extra, NULL, 3, m2, 3);
    assert_int_equal(encode(v, "abc", 3, 0, t, 16), 2);
    assert_int_equal(t[0], 'a');
    assert_int_equal(t[1], 257);  /* bc: now rank 0 */
    bn_vocab_free(v);
}

static void test_bpe_space_and_ignore_merges(void **state) {
    (void)state;
    /* "Ġw" is " w" mapped; "Ġwo" reachable by merges; "xyz" only as a whole token */
    static const char *const extra[] = {"\xc4\xa0w", "\xc4\xa0wo", "xyz"};
    static const char *const merges[] = {"\xc4\xa0 w", "\xc4\xa0w o"};
    bitnet_token t[16];
    bn_vocab *v = make_bpe("llama-bpe", extra, NULL, 3, merges, 2);
    size_t n = encode(v, "xyz wo", 6, 0, t, 16);
    assert_int_equal(n, 2);
    assert_int_equal(t[0], 258); /* ignore_merges: the piece is a token */
    assert_int_equal(t[1], 257);
    bn_vocab_free(v);
    v = make_bpe("gpt2", extra, NULL, 3, merges, 2);
    n = encode(v, "xyz wo", 6, 0, t, 16);
    assert_int_equal(n, 4);      /* no ignore_merges: x y z Ġwo */
    assert_int_equal(t[0], 'x');
    assert_int_equal(t[3], 257);
    bn_vocab_free(v);
}

static void test_bpe_bytes_roundtrip(void **state) {
    (void)state;
    static const char *const extra[] = {"ab"};
    static const char *const merges[] = {"a b"};
    bn_vocab *v = make_bpe("llama-bpe", extra, NULL, 1, merges, 1);
    const char in[] = "ab \xff\xc3(\xe2\x82 caf\xc3\xa9 \xf0\x9f\x98\x80\n\t";
    size_t len = sizeof in - 1;
    bitnet_token t[64];
    size_t n = encode(v, in, len, 0, t, 64);
    assert_int_equal(t[0], 256);
    assert_int_equal(t[2], 0xff); /* invalid bytes are their own byte tokens */
    char out[64];
    assert_int_equal(decode(v, t, n, 0, out, sizeof out), len);
    assert_memory_equal(out, in, len);
    bn_vocab_free(v);
}

/* ---- special tokens ----------------------------------------------------------------------------- */

static const char *const k_sp_extra[] = {"ab", "<|eot_id|>", "<|begin_of_text|>", "<u>"};
static const int32_t k_sp_types[] = {BN_TOK_NORMAL, BN_TOK_CONTROL, BN_TOK_CONTROL, BN_TOK_USER_DEFINED};
static const char *const k_sp_merges[] = {"a b"};

static void test_special_tokens(void **state) {
    (void)state;
    bn_vocab *v = make_bpe("llama-bpe", k_sp_extra, k_sp_types, 4, k_sp_merges, 1);
    bitnet_token t[32];
    /* without PARSE_SPECIAL the text is just text: ab < | e o t _ i d | > */
    size_t n = encode(v, "ab<|eot_id|>", 12, 0, t, 32);
    assert_int_equal(n, 11);
    for (size_t i = 0; i < n; i++) assert_true(t[i] < 257);
    n = encode(v, "ab<|eot_id|>", 12, BITNET_TOKENIZE_PARSE_SPECIAL, t, 32);
    assert_int_equal(n, 2);
    assert_int_equal(t[0], 256);
    assert_int_equal(t[1], 257);
    /* the longer special wins where both could match */
    n = encode(v, "<|begin_of_text|><|eot_id|>x", 28, BITNET_TOKENIZE_PARSE_SPECIAL, t, 32);
    assert_int_equal(n, 3);
    assert_int_equal(t[0], 258);
    assert_int_equal(t[1], 257);
    assert_int_equal(t[2], 'x');
    /* USER_DEFINED tokens are vocabulary text: always recognised */
    n = encode(v, "x<u>y", 5, 0, t, 32);
    assert_int_equal(n, 3);
    assert_int_equal(t[1], 259);
    /* EOT found by its text; EOG set */
    bitnet_model m;
    memset(&m, 0, sizeof m);
    m.vocab = v;
    assert_int_equal(bitnet_token_eot(&m), 257);
    assert_true(bitnet_token_is_eog(&m, 257));
    assert_false(bitnet_token_is_eog(&m, 258));
    assert_false(bitnet_token_is_eog(&m, -1));
    assert_string_equal(bitnet_token_text(&m, 257), "<|eot_id|>");
    assert_null(bitnet_token_text(&m, 260));
    /* rendering specials on request only */
    bitnet_token d[] = {257, 256};
    char out[64];
    assert_int_equal(decode(v, d, 2, 0, out, sizeof out), 2);
    assert_memory_equal(out, "ab", 2);
    assert_int_equal(decode(v, d, 2, BITNET_DETOK_RENDER_SPECIAL, out, sizeof out), 12);
    assert_memory_equal(out, "<|eot_id|>ab", 12);
    /* buffer convention */
    size_t need = 0;
    assert_int_equal(bitnet_tokenize(&m, "ab<|eot_id|>", 12, 0, t, 3, &need), BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(need, 11);
    assert_int_equal(bitnet_detokenize(&m, d, 2, BITNET_DETOK_RENDER_SPECIAL, out, 5, &need), BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(need, 12);
    bitnet_token bad = 999;
    assert_int_equal(bitnet_detokenize(&m, &bad, 1, 0, out, sizeof out, &need), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_tokenize(&m, "x", 1, 0x100, t, 32, &need), BITNET_E_INVALID_ARG);
    bn_vocab_free(v);
}

/* ---- streaming decoder -------------------------------------------------------------------------- */

static void test_decoder(void **state) {
    (void)state;
    bn_vocab *v = make_bpe("llama-bpe", k_sp_extra, k_sp_types, 4, k_sp_merges, 1);
    bitnet_model m;
    memset(&m, 0, sizeof m);
    m.vocab = v;
    bitnet_decoder *d = NULL;
    assert_int_equal(bitnet_decoder_create(&m, 0, &d), BITNET_OK);
    char buf[32];
    size_t n = 99;
    assert_int_equal(bitnet_decoder_push(d, 0xC3, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bitnet_decoder_push(d, 0xA9, buf, 1, &n), BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, 2);
    assert_int_equal(bitnet_decoder_push(d, 0xA9, buf, sizeof buf, &n), BITNET_OK); /* retry: state kept */
    assert_int_equal(n, 2);
    assert_memory_equal(buf, "\xc3\xa9", 2);
    /* a 4-byte character over three tokens */
    assert_int_equal(bitnet_decoder_push(d, 0xF0, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bitnet_decoder_push(d, 0x9F, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bitnet_decoder_push(d, 0x98, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bitnet_decoder_push(d, 0x80, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "\xf0\x9f\x98\x80", 4);
    /* an interrupted sequence: U+FFFD then the new text */
    assert_int_equal(bitnet_decoder_push(d, 0xC3, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(bitnet_decoder_push(d, 'a', buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "\xef\xbf\xbd" "a", 4);
    /* a byte that can never start a character */
    assert_int_equal(bitnet_decoder_push(d, 0xFF, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 3);
    /* ED A0 would be a surrogate: not held */
    assert_int_equal(bitnet_decoder_push(d, 0xED, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bitnet_decoder_push(d, 0xA0, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 6);
    /* flush emits a held prefix as one U+FFFD */
    assert_int_equal(bitnet_decoder_push(d, 0xE2, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(bitnet_decoder_flush(d, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 3);
    assert_int_equal(bitnet_decoder_flush(d, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 0);
    /* specials hidden unless asked */
    assert_int_equal(bitnet_decoder_push(d, 257, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bitnet_decoder_push(d, 1000, buf, sizeof buf, &n), BITNET_E_INVALID_ARG);
    bitnet_decoder_free(d);
    assert_int_equal(bitnet_decoder_create(&m, BITNET_DETOK_RENDER_SPECIAL, &d), BITNET_OK);
    assert_int_equal(bitnet_decoder_push(d, 257, buf, sizeof buf, &n), BITNET_OK);
    assert_int_equal(n, 10);
    bitnet_decoder_free(d);
    bitnet_decoder_free(NULL);
    bn_vocab_free(v);
}

/* ---- SentencePiece ---------------------------------------------------------------------------- */

typedef struct spm_fixture {
    char        names[259][8];
    const char *toks[300];
    float       scores[300];
    int32_t     types[300];
    int         n;
} spm_fixture;

static bn_vocab *make_spm(int add_space_prefix) {
    static spm_fixture f;
    static const struct { const char *t; float s; } extra[] = {
        {"\xe2\x96\x81", -1}, {"h", -2}, {"e", -3}, {"l", -4}, {"o", -5}, {"ll", -6},
        {"\xe2\x96\x81h", -7}, {"he", -0.5f}, {"\xe2\x96\x81he", -1.5f}, {"llo", -2},
    };
    int n = 0;
    f.toks[n] = "<unk>"; f.types[n] = BN_TOK_UNKNOWN; f.scores[n++] = 0;
    f.toks[n] = "<s>"; f.types[n] = BN_TOK_CONTROL; f.scores[n++] = 0;
    f.toks[n] = "</s>"; f.types[n] = BN_TOK_CONTROL; f.scores[n++] = 0;
    for (int b = 0; b < 256; b++) {
        snprintf(f.names[b], sizeof f.names[b], "<0x%02X>", b);
        f.toks[n] = f.names[b]; f.types[n] = BN_TOK_BYTE; f.scores[n++] = 0;
    }
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        f.toks[n] = extra[i].t; f.types[n] = BN_TOK_NORMAL; f.scores[n++] = extra[i].s;
    }
    bn_vocab_desc d;
    bn_vocab_desc_init(&d);
    d.model = "llama";
    d.tokens = f.toks;
    d.n_tokens = n;
    d.scores = f.scores;
    d.types = f.types;
    d.add_space_prefix = add_space_prefix;
    bn_vocab *v = NULL;
    assert_int_equal(bn_vocab_build(&d, NULL, &v), BITNET_OK);
    return v;
}

enum { SPM_SP = 259, SPM_HE_ = 267, SPM_LLO = 268, SPM_BYTE0 = 3 };

static void test_spm(void **state) {
    (void)state;
    bn_vocab *v = make_spm(-1);
    bitnet_token t[32];
    /* ▁ h e l l o: "he" (-0.5) first, then "▁he" (-1.5), then "ll" (-6) ... then "llo" */
    size_t n = encode(v, "hello", 5, 0, t, 32);
    assert_int_equal(n, 2);
    assert_int_equal(t[0], SPM_HE_);
    assert_int_equal(t[1], SPM_LLO);
    n = encode(v, "hello", 5, BITNET_TOKENIZE_ADD_BOS, t, 32);
    assert_int_equal(n, 3);
    assert_int_equal(t[0], 1);
    /* byte fallback for characters not in the vocabulary, and for invalid bytes */
    n = encode(v, "\xc3\xa9\xff", 3, 0, t, 32);
    assert_int_equal(n, 4);
    assert_int_equal(t[0], SPM_SP);
    assert_int_equal(t[1], SPM_BYTE0 + 0xC3);
    assert_int_equal(t[2], SPM_BYTE0 + 0xA9);
    assert_int_equal(t[3], SPM_BYTE0 + 0xFF);
    /* the space prefix comes back after a special token */
    n = encode(v, "hello</s>hello", 14, BITNET_TOKENIZE_PARSE_SPECIAL, t, 32);
    assert_int_equal(n, 5);
    assert_int_equal(t[2], 2);
    assert_int_equal(t[3], SPM_HE_);
    assert_int_equal(encode(v, "", 0, 0, t, 32), 0);
    /* decoding: the prefix space goes, bytes are bytes */
    char out[64];
    bitnet_token d1[] = {1, SPM_HE_, SPM_LLO, SPM_SP, SPM_BYTE0 + 0xC3, SPM_BYTE0 + 0xA9};
    assert_int_equal(decode(v, d1, 6, 0, out, sizeof out), 8);
    assert_memory_equal(out, "hello \xc3\xa9", 8);
    assert_int_equal(decode(v, d1, 6, BITNET_DETOK_KEEP_LEADING_SPACE, out, sizeof out), 9);
    assert_memory_equal(out, " hello \xc3\xa9", 9);
    assert_int_equal(decode(v, d1, 6, BITNET_DETOK_RENDER_SPECIAL, out, sizeof out), 11);
    assert_memory_equal(out, "<s>hello \xc3\xa9", 11);
    /* round trip */
    const char *texts[] = {"hello hello", "  leading", "trailing  ", "h\xc3\xa9llo\n\tx", "\xf0\x9f\x98\x80"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t len = strlen(texts[i]);
        n = encode(v, texts[i], len, BITNET_TOKENIZE_ADD_BOS, t, 32);
        assert_int_equal(decode(v, t, n, 0, out, sizeof out), len);
        assert_memory_equal(out, texts[i], len);
    }
    bn_vocab_free(v);
    /* without the space prefix */
    v = make_spm(0);
    n = encode(v, "hello", 5, 0, t, 32);
    assert_int_equal(n, 2);
    assert_int_equal(t[0], 266); /* he */
    assert_int_equal(t[1], SPM_LLO);
    bn_vocab_free(v);
}

/* ---- validation ---------------------------------------------------------------------------------- */

static bitnet_status build_bpe(const char *model, const char *pre, const char *force, const char *const *merges,
                               int n_merges, int64_t eos, int32_t bad_type) {
    static const char *const toks[] = {"a", "b", "ab"};
    int32_t types[] = {1, 1, bad_type};
    bn_vocab_desc d;
    bn_vocab_desc_init(&d);
    d.model = model;
    d.pre = pre;
    d.pre_len = pre ? strlen(pre) : 0;
    d.tokens = toks;
    d.n_tokens = 3;
    d.types = types;
    d.merges = merges;
    d.n_merges = n_merges;
    d.eos = eos;
    bn_vocab *v = NULL;
    bitnet_status st = bn_vocab_build(&d, force, &v);
    assert_true((st == BITNET_OK) == (v != NULL));
    bn_vocab_free(v);
    return st;
}

static void test_validation(void **state) {
    (void)state;
    const char *good[] = {"a b"}, *missing[] = {"a c"}, *nospace[] = {"ab"}, *nores[] = {"b a"};
    assert_int_equal(build_bpe("gpt2", NULL, NULL, good, 1, 2, 1), BITNET_OK);
    assert_int_equal(build_bpe("gpt2", NULL, NULL, missing, 1, 2, 1), BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_last_error(), "merges[0]"));
    assert_int_equal(build_bpe("gpt2", NULL, NULL, nospace, 1, 2, 1), BITNET_E_FORMAT);
    assert_int_equal(build_bpe("gpt2", NULL, NULL, nores, 1, 2, 1), BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_last_error(), "merged token"));
    assert_int_equal(build_bpe("gpt2", NULL, NULL, good, 0, 2, 1), BITNET_E_FORMAT);
    assert_int_equal(build_bpe("bert", NULL, NULL, good, 1, 2, 1), BITNET_E_UNSUPPORTED);
    assert_int_equal(build_bpe("gpt2", NULL, NULL, good, 1, 3, 1), BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_last_error(), "eos_token_id"));
    assert_int_equal(build_bpe("gpt2", NULL, NULL, good, 1, 0xffffffffll, 1), BITNET_OK); /* "none" */
    assert_int_equal(build_bpe("gpt2", NULL, NULL, good, 1, 2, 9), BITNET_E_FORMAT);
    assert_int_equal(build_bpe("gpt2", "deepseek-llm", NULL, good, 1, 2, 1), BITNET_E_UNSUPPORTED);
    assert_int_equal(build_bpe("gpt2", "deepseek-llm", "gpt2", good, 1, 2, 1), BITNET_OK);
    assert_int_equal(build_bpe("gpt2", NULL, "nonsense", good, 1, 2, 1), BITNET_E_INVALID_ARG);
}

/* ---- LLaMA-3 vocabulary recognition -------------------------------------------------------------- */

static int g_info_llama;
static void log_cb(bitnet_log_level lvl, const char *msg, void *user) {
    (void)user;
    if (lvl == BITNET_LOG_INFO && strstr(msg, "llama-bpe")) g_info_llama++;
}

static void test_llama3_recognition(void **state) {
    (void)state;
    enum { N = 128256 };
    const char **toks = calloc(N, sizeof *toks);
    int32_t *types = calloc(N, sizeof *types);
    char *store = calloc(N, 16);
    assert_non_null(toks);
    assert_non_null(types);
    assert_non_null(store);
    for (int i = 0; i < N; i++) {
        char *s = store + (size_t)i * 16;
        if (i < 256) mapped_char(i, s);
        else if (i == 256) strcpy(s, "ab");
        else snprintf(s, 16, "t%d", i);
        toks[i] = s;
        types[i] = i >= 128000 ? BN_TOK_CONTROL : BN_TOK_NORMAL;
    }
    strcpy(store + 128000 * 16, "<|begin_of_text|>");
    strcpy(store + 128009 * 16, "<|eot_id|>");
    const char *merges[] = {"a b"};
    bn_vocab_desc d;
    bn_vocab_desc_init(&d);
    d.model = "gpt2";
    d.tokens = toks;
    d.n_tokens = N;
    d.types = types;
    d.merges = merges;
    d.n_merges = 1;
    d.bos = 128000;
    bitnet_set_log_callback(log_cb, NULL, BITNET_LOG_DEBUG);
    g_info_llama = 0;
    bn_vocab *v = NULL;
    assert_int_equal(bn_vocab_build(&d, NULL, &v), BITNET_OK);
    assert_int_equal(v->pre, BN_PRE_LLAMA3);
    assert_int_equal(g_info_llama, 1);
    assert_int_equal(v->eot, 128009);
    assert_true(v->add_bos);
    bitnet_token t[8];
    assert_int_equal(encode(v, "don't", 5, BITNET_TOKENIZE_ADD_BOS, t, 8), 6); /* BOS d o n ' t */
    bn_vocab_free(v);
    assert_int_equal(bn_vocab_build(&d, "default", &v), BITNET_OK);
    assert_int_equal(v->pre, BN_PRE_DEFAULT);
    assert_int_equal(g_info_llama, 1);
    bn_vocab_free(v);
    /* another vocabulary of the same size is not LLaMA-3's */
    strcpy(store + 128009 * 16, "<|im_end|>");
    assert_int_equal(bn_vocab_build(&d, NULL, &v), BITNET_OK);
    assert_int_equal(v->pre, BN_PRE_DEFAULT);
    bn_vocab_free(v);
    bitnet_set_log_callback(NULL, NULL, BITNET_LOG_WARN);
    free(toks);
    free(types);
    free(store);
}

/* ---- robustness ------------------------------------------------------------------------------ */

/* Random bytes through every pre-tokenizer and both encoders: no failure, and exact
 * round trips (raw bytes are preserved, valid or not). */
static void test_random_roundtrip(void **state) {
    (void)state;
    static const char *const extra[] = {"ab", "\xc4\xa0" "a"};
    static const char *const merges[] = {"a b", "\xc4\xa0 a"};
    bn_vocab *vs[4];
    vs[0] = make_bpe("llama-bpe", extra, NULL, 2, merges, 2);
    vs[1] = make_bpe("gpt2", extra, NULL, 2, merges, 2);
    vs[2] = make_bpe("default", extra, NULL, 2, merges, 2);
    vs[3] = make_spm(-1);
    static const char alphabet[] = "ab '\n\t1.\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\xff\x80\r\xc2\xa0";
    uint32_t seed = 12345;
    char in[64], out[256];
    bitnet_token t[256];
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = 0, want = (size_t)(iter % 40);
        while (len < want) {
            seed = seed * 1103515245u + 12345u;
            in[len++] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        for (int k = 0; k < 4; k++) {
            size_t n = encode(vs[k], in, len, 0, t, 256);
            assert_int_equal(decode(vs[k], t, n, 0, out, sizeof out), len);
            assert_memory_equal(out, in, len);
        }
    }
    for (int k = 0; k < 4; k++) bn_vocab_free(vs[k]);
}

/* Every allocation failure is reported as BITNET_E_NOMEM, never a crash or leak. */
static void test_alloc_failures(void **state) {
    (void)state;
    static const char *const extra[] = {"ab", "<|eot_id|>"};
    static const int32_t types[] = {BN_TOK_NORMAL, BN_TOK_CONTROL};
    static const char *const merges[] = {"a b"};
    int saw_ok = 0;
    for (uint64_t k = 1; k < 200 && !saw_ok; k++) {
        static bpe_fixture f;
        for (int b = 0; b < 256; b++) { mapped_char(b, f.bytes[b]); f.toks[b] = f.bytes[b]; f.types[b] = 1; }
        f.toks[256] = extra[0]; f.types[256] = types[0];
        f.toks[257] = extra[1]; f.types[257] = types[1];
        bn_vocab_desc d;
        bn_vocab_desc_init(&d);
        d.model = "gpt2";
        d.tokens = f.toks;
        d.n_tokens = 258;
        d.types = f.types;
        d.merges = merges;
        d.n_merges = 1;
        bn_vocab *v = NULL;
        bn_alloc_fail_after(k);
        bitnet_status st = bn_vocab_build(&d, "llama-bpe", &v);
        if (st == BITNET_OK) {
            bn_toklist l = {0};
            st = bn_tokenize(v, "ab cd<|eot_id|> \xc3\xa9", 18, BITNET_TOKENIZE_PARSE_SPECIAL, &l);
            bn_free(l.v);
            bn_alloc_fail_after(0);
            if (st == BITNET_OK) saw_ok = 1;
            bn_vocab_free(v);
        }
        bn_alloc_fail_after(0);
        assert_true(st == BITNET_OK || st == BITNET_E_NOMEM);
    }
    assert_true(saw_ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unicode_classes),
        cmocka_unit_test(test_byte_map),
        cmocka_unit_test(test_pre_llama3),
        cmocka_unit_test(test_pre_gpt2),
        cmocka_unit_test(test_pre_default),
        cmocka_unit_test(test_bpe_merge_order),
        cmocka_unit_test(test_bpe_space_and_ignore_merges),
        cmocka_unit_test(test_bpe_bytes_roundtrip),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_decoder),
        cmocka_unit_test(test_spm),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_llama3_recognition),
        cmocka_unit_test(test_random_roundtrip),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
