/*
 * fuzz_tok.c -- libFuzzer target for both encoders on arbitrary bytes.
 *
 * Input: byte 0 chooses the vocabulary (bit 0: byte-level BPE "gpt2" / SentencePiece
 * "llama"; bit 1: for BPE, the GPT-2 instead of the LLaMA-3 pre-tokenizer) and the flags
 * (bit 2 parse special tokens, bit 3 add BOS); the rest is the text.  Every id produced
 * must be in the vocabulary, detokenization must succeed (also into a NULL buffer of
 * capacity 0), and for byte-level BPE without special parsing valid UTF-8 must come back
 * byte for byte.
 */
#include "model.h"
#include "tok_vocab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fz_words[] = {"th", "he", "the", "in", "an", "and", " t", " a", "er", "on", "re", "at",
                                        "12", "123", "..", "!!", "ll", "lo", "hel", "hello"};

static bn_vocab *fz_bpe(int gpt2) {
    static bn_vocab *v[2];
    if (v[gpt2]) return v[gpt2];
    static char bytes[256][3];
    static const char *toks[300];
    static int32_t types[300];
    static char mtext[64][16];
    static const char *merges[64];
    static char wtext[64][40];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = bn_byte_to_cp((uint8_t)b);
        if (cp < 0x80) { bytes[b][0] = (char)cp; bytes[b][1] = 0; }
        else { bytes[b][0] = (char)(0xc0 | (cp >> 6)); bytes[b][1] = (char)(0x80 | (cp & 0x3f)); bytes[b][2] = 0; }
        toks[n] = bytes[b];
        types[n++] = BN_TOK_NORMAL;
    }
    /* merges of pairs of the words' characters, mapped through the byte table */
    int nm = 0;
    for (size_t w = 0; w < sizeof fz_words / sizeof fz_words[0]; w++) {
        const char *s = fz_words[w];
        size_t l = strlen(s);
        if (l != 2) continue;
        snprintf(mtext[nm], sizeof mtext[nm], "%s %s", bytes[(uint8_t)s[0]], bytes[(uint8_t)s[1]]);
        snprintf(wtext[nm], sizeof wtext[nm], "%s%s", bytes[(uint8_t)s[0]], bytes[(uint8_t)s[1]]);
        merges[nm] = mtext[nm];
        toks[n] = wtext[nm];
        types[n++] = BN_TOK_NORMAL;
        nm++;
    }
    static const char *const sp[] = {"<|begin_of_text|>", "<|eot_id|>", "<|user|>"};
    static const int32_t st[] = {BN_TOK_CONTROL, BN_TOK_CONTROL, BN_TOK_USER_DEFINED};
    for (int i = 0; i < 3; i++) {
        toks[n] = sp[i];
        types[n++] = st[i];
    }
    bn_vocab_desc d;
    bn_vocab_desc_init(&d);
    d.model = "gpt2";
    d.pre = gpt2 ? "gpt2" : "llama-bpe";
    d.pre_len = strlen(d.pre);
    d.tokens = toks;
    d.n_tokens = n;
    d.types = types;
    d.merges = merges;
    d.n_merges = nm;
    d.bos = n - 3;
    d.eos = n - 2;
    d.add_bos = 1;
    if (bn_vocab_build(&d, NULL, &v[gpt2]) != BITNET_OK) abort();
    return v[gpt2];
}

static bn_vocab *fz_spm(void) {
    static bn_vocab *v;
    if (v) return v;
    static char text[300][24];
    static const char *toks[300];
    static float scores[300];
    static int32_t types[300];
    int n = 0;
    static const char *const head[] = {"<unk>", "<s>", "</s>"};
    static const int32_t ht[] = {BN_TOK_UNKNOWN, BN_TOK_CONTROL, BN_TOK_CONTROL};
    for (int i = 0; i < 3; i++) {
        toks[n] = head[i];
        types[n++] = ht[i];
    }
    for (int b = 0; b < 256; b++) {
        snprintf(text[n], sizeof text[n], "<0x%02X>", b);
        toks[n] = text[n];
        types[n++] = BN_TOK_BYTE;
    }
    for (size_t w = 0; w < sizeof fz_words / sizeof fz_words[0]; w++) {
        snprintf(text[n], sizeof text[n], "%s", fz_words[w]);
        for (char *c = text[n]; *c; c++)
            if (*c == ' ') *c = '_'; /* placeholder, replaced below */
        char tmp[24];
        size_t o = 0;
        for (const char *c = fz_words[w]; *c && o + 4 < sizeof tmp; c++) {
            if (*c == ' ') { memcpy(tmp + o, "\xe2\x96\x81", 3); o += 3; }
            else tmp[o++] = *c;
        }
        tmp[o] = 0;
        memcpy(text[n], tmp, o + 1);
        toks[n] = text[n];
        scores[n] = -(float)w;
        types[n++] = BN_TOK_NORMAL;
    }
    static const char *const extra[] = {"\xe2\x96\x81", "\xe2\x96\x81the", "\xe2\x96\x81hello", "a", "e", "t", "h"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        toks[n] = extra[i];
        scores[n] = -0.5f * (float)i;
        types[n++] = BN_TOK_NORMAL;
    }
    bn_vocab_desc d;
    bn_vocab_desc_init(&d);
    d.model = "llama";
    d.tokens = toks;
    d.n_tokens = n;
    d.scores = scores;
    d.types = types;
    d.bos = 1;
    d.eos = 2;
    d.unk = 0;
    d.add_bos = 1;
    d.add_space_prefix = 1;
    if (bn_vocab_build(&d, NULL, &v) != BITNET_OK) abort();
    return v;
}

static int fz_valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t l = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!l || i + l > n) return 0;
        uint32_t cp = l == 1 ? c : (uint32_t)(c & (0x7f >> l));
        for (size_t k = 1; k < l; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((l == 2 && cp < 0x80) || (l == 3 && cp < 0x800) || (l == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += l;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        bitnet_set_log_callback(NULL, NULL, BITNET_LOG_ERROR);
        init = 1;
    }
    if (size < 1) return 0;
    int spm = data[0] & 1, gpt2 = (data[0] >> 1) & 1;
    uint32_t flags = BITNET_TOKENIZE_NO_ADD_EOS;
    if (data[0] & 4) flags |= BITNET_TOKENIZE_PARSE_SPECIAL;
    if (data[0] & 8) flags |= BITNET_TOKENIZE_ADD_BOS;
    const bn_vocab *v = spm ? fz_spm() : fz_bpe(gpt2);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    bitnet_model m;
    memset(&m, 0, sizeof m);
    m.vocab = (bn_vocab *)v;
    size_t n = 0;
    bitnet_status st = bitnet_tokenize(&m, text, len, flags, NULL, 0, &n);
    if (st != BITNET_OK && st != BITNET_E_BUFFER_TOO_SMALL) {
        if (st != BITNET_E_INVALID_UTF8 && st != BITNET_E_NOMEM) abort();
        return 0;
    }
    bitnet_token *toks = malloc((n ? n : 1) * sizeof *toks);
    if (!toks) return 0;
    size_t n2 = 0;
    if (bitnet_tokenize(&m, text, len, flags, toks, n, &n2) != BITNET_OK || n2 != n) abort();
    for (size_t i = 0; i < n; i++)
        if (toks[i] < 0 || toks[i] >= v->n) abort();
    size_t need = 0;
    st = bitnet_detokenize(&m, toks, n, BITNET_DETOK_RENDER_SPECIAL, NULL, 0, &need);
    if (st != BITNET_OK && st != BITNET_E_BUFFER_TOO_SMALL) abort();
    char *out = malloc(need + 1);
    size_t got = 0;
    if (!out || bitnet_detokenize(&m, toks, n, BITNET_DETOK_RENDER_SPECIAL, out, need + 1, &got) != BITNET_OK ||
        got != need)
        abort();
    if (!spm && !(flags & BITNET_TOKENIZE_PARSE_SPECIAL) && fz_valid_utf8((const uint8_t *)text, len)) {
        /* byte-level BPE is lossless: drop the BOS and compare */
        size_t nb = 0;
        size_t skip = (n > 0 && (flags & BITNET_TOKENIZE_ADD_BOS) && toks[0] == v->bos) ? 1 : 0;
        if (bitnet_detokenize(&m, toks + skip, n - skip, BITNET_DETOK_KEEP_LEADING_SPACE, out, need + 1, &nb) !=
                BITNET_OK ||
            nb != len || memcmp(out, text, len) != 0)
            abort();
    }
    free(out);
    free(toks);
    return 0;
}
