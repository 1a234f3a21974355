/*
 * fuzz_chat.c -- libFuzzer target for chat rendering: the Jinja renderer and the
 * tokenization of its output that keeps message text out of special tokens.
 *
 * Input: the first byte holds flags (bit 0: add_generation_prompt), then the template
 * text, then NUL-separated role / content pairs (a missing content is empty).  The
 * renderer runs with small limits so that every input finishes quickly; then the
 * rendering is tokenized with its content mask against a small byte-level vocabulary
 * with special tokens, and must detokenize back to the rendered text.  Any read
 * outside the input or crash is caught by ASan/UBSan; a broken invariant aborts.
 *
 * Built as a libFuzzer binary with -DBITNET_FUZZ=ON (clang), and linked with
 * fuzz_replay.c into a plain program that runs tests/fuzz/corpus_chat under ctest.
 * See docs/chat.md for the long-run command.
 */
#include "chat_jinja.h"
#include "model.h"
#include "tok_vocab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 256 byte tokens plus special tokens, built once */
static bn_vocab *vocab(void) {
    static bn_vocab *v;
    static char bytes[256][3];
    static const char *toks[264];
    static int32_t types[264];
    if (v) return v;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = bn_byte_to_cp((uint8_t)b);
        if (cp < 0x80) { bytes[b][0] = (char)cp; bytes[b][1] = 0; }
        else { bytes[b][0] = (char)(0xc0 | (cp >> 6)); bytes[b][1] = (char)(0x80 | (cp & 0x3f)); bytes[b][2] = 0; }
        toks[b] = bytes[b];
        types[b] = BN_TOK_NORMAL;
    }
    static const char *const sp[] = {"<|eot_id|>", "<|begin_of_text|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>",
                                     "<u>", "ab"};
    static const int32_t ty[] = {BN_TOK_CONTROL, BN_TOK_CONTROL, BN_TOK_CONTROL, BN_TOK_USER_DEFINED, BN_TOK_CONTROL,
                                 BN_TOK_CONTROL, BN_TOK_USER_DEFINED, BN_TOK_NORMAL};
    for (int i = 0; i < 8; i++) {
        toks[256 + i] = sp[i];
        types[256 + i] = ty[i];
    }
    static const char *const merges[] = {"a b"};
    bn_vocab_desc d;
    bn_vocab_desc_init(&d);
    d.model = "gpt2";
    d.pre = "llama-bpe";
    d.pre_len = strlen(d.pre);
    d.tokens = toks;
    d.n_tokens = 264;
    d.types = types;
    d.merges = merges;
    d.n_merges = 1;
    d.bos = 257;
    d.eos = 256;
    d.add_bos = 1;
    if (bn_vocab_build(&d, NULL, &v) != BITNET_OK) abort();
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int agp = data[0] & 1;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    const char *end = memchr(p, 0, n);
    size_t tlen = end ? (size_t)(end - p) : n;
    char *tmpl = malloc(tlen + 1);
    if (!tmpl) return 0;
    memcpy(tmpl, p, tlen);
    tmpl[tlen] = 0;

    /* messages: role \0 content \0 ... (copied so each is NUL-terminated) */
    bitnet_chat_message msgs[16];
    char *owned[32];
    size_t n_msgs = 0, n_owned = 0;
    size_t pos = end ? tlen + 1 : n;
    while (pos < n && n_msgs < 16) {
        const char *s[2];
        for (int k = 0; k < 2; k++) {
            const char *q = pos < n ? p + pos : "";
            size_t rest = pos < n ? n - pos : 0;
            const char *z = memchr(q, 0, rest);
            size_t l = z ? (size_t)(z - q) : rest;
            char *c = malloc(l + 1);
            if (!c) abort();
            memcpy(c, q, l);
            c[l] = 0;
            owned[n_owned++] = c;
            s[k] = c;
            pos += l + 1;
        }
        msgs[n_msgs].role = s[0];
        msgs[n_msgs].content = s[1];
        n_msgs++;
    }

    bn_jinja_limits lim = {0};
    lim.max_template = 64 * 1024;
    lim.max_output = 256 * 1024;
    lim.max_memory = 16u << 20;
    lim.max_steps = 200000;
    lim.max_depth = 64;
    bn_jinja_input in;
    memset(&in, 0, sizeof in);
    in.msgs = msgs;
    in.n_msgs = n_msgs;
    in.add_generation_prompt = agp;
    in.bos_token = "<|begin_of_text|>";
    in.eos_token = "<|eot_id|>";
    in.now = 1721995200;
    in.limits = &lim;
    bn_chat_text t;
    bitnet_status st = bn_jinja_render(tmpl, tlen, &in, &t);
    if (st == BITNET_OK) {
        if (!t.text || !t.content || t.text[t.n] != 0) abort();
        for (size_t i = 0; i < t.n; i++)
            if (t.content[i] > 1) abort();
        /* tokenize with the mask; the tokens must spell the text again */
        const bn_vocab *v = vocab();
        bn_toklist l = {0};
        st = bn_tokenize_masked(v, t.text, t.n, BITNET_TOKENIZE_PARSE_SPECIAL | BITNET_TOKENIZE_NO_ADD_EOS, t.content,
                                &l);
        if (st == BITNET_OK) {
            bitnet_model m;
            memset(&m, 0, sizeof m);
            m.vocab = (bn_vocab *)v;
            size_t nb = 0;
            char *back = malloc(t.n + 1);
            if (!back) abort();
            if (bitnet_detokenize(&m, l.v, l.n, BITNET_DETOK_RENDER_SPECIAL, back, t.n + 1, &nb) != BITNET_OK ||
                nb != t.n || memcmp(back, t.text, t.n) != 0)
                abort();
            /* no control token may stand where message bytes are: walk the pieces */
            size_t off = 0;
            for (size_t i = 0; i < l.n; i++) {
                size_t tl = v->len[l.v[i]];
                int control = v->type[l.v[i]] == BN_TOK_CONTROL;
                if (control && off + tl <= t.n) {
                    for (size_t k = 0; k < tl; k++)
                        if (t.content[off + k]) abort();
                }
                size_t pl = 0;
                char piece[64];
                if (bitnet_detokenize(&m, &l.v[i], 1, BITNET_DETOK_RENDER_SPECIAL | BITNET_DETOK_KEEP_LEADING_SPACE,
                                      piece, sizeof piece, &pl) != BITNET_OK || off + pl > t.n)
                    abort();
                off += pl;
            }
            free(back);
        } else if (st != BITNET_E_UNSUPPORTED && st != BITNET_E_NOMEM) {
            abort();
        }
        bn_free(l.v);
        bn_chat_text_free(&t);
    } else if (st != BITNET_E_FORMAT && st != BITNET_E_UNSUPPORTED && st != BITNET_E_INVALID_ARG &&
               st != BITNET_E_INVALID_UTF8 && st != BITNET_E_NOMEM) {
        abort();
    }
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    free(tmpl);
    return 0;
}
