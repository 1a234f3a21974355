/*
 * tokcompare.c -- compare libbitnet's tokenizer with a reference tokenizer's output.
 *
 * usage: bitnet-tokcompare MODEL.gguf CASES.txt [--pre NAME] [--no-special]
 * CASES.txt: one case per line, "HEX<TAB>id id id ..." (HEX of the UTF-8 text, "-" when
 * empty), as written by the reference scripts.  For each case the text is tokenized
 * without BOS/EOS (with BITNET_TOKENIZE_PARSE_SPECIAL unless --no-special) and the ids
 * must equal the reference ids; then decoding the ids (rendering specials) must give
 * the text back.  Finally a set of invalid UTF-8 inputs must tokenize without error
 * and decode back to the same bytes.  Exit status: 0 all equal, 1 any mismatch.
 */
#include "bitnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexv(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static void print_ids(const char *label, const bitnet_token *t, size_t n) {
    fprintf(stderr, "  %s (%zu):", label, n);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)t[i]);
    fputc('\n', stderr);
}

static void print_text(const char *s, size_t n) {
    fputs("  text: \"", stderr);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c == '\t') fputs("\\t", stderr);
        else if (c == '\r') fputs("\\r", stderr);
        else if (c < 0x20) fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    fputs("\"\n", stderr);
}

/* Tokenize, decode, compare with the input; returns the number of failures (0/1). */
static int roundtrip(bitnet_model *m, const char *text, size_t len, uint32_t tflags, bitnet_token *ids, size_t cap,
                     size_t *n_ids, char *buf, size_t buf_cap) {
    bitnet_status st = bitnet_tokenize(m, text, len, tflags, ids, cap, n_ids);
    if (st) { fprintf(stderr, "tokenize failed: %s\n", bitnet_last_error()); print_text(text, len); return 1; }
    size_t nb = 0;
    st = bitnet_detokenize(m, ids, *n_ids, BITNET_DETOK_RENDER_SPECIAL, buf, buf_cap, &nb);
    if (st || nb != len || memcmp(buf, text, len) != 0) {
        fprintf(stderr, "MISMATCH decode(encode(x)) != x\n");
        print_text(text, len);
        if (!st) print_text(buf, nb);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bitnet-tokcompare MODEL.gguf CASES.txt [--pre NAME] [--no-special]\n");
        return 2;
    }
    const char *pre = NULL;
    uint32_t tflags = BITNET_TOKENIZE_PARSE_SPECIAL | BITNET_TOKENIZE_NO_ADD_EOS;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--pre") && i + 1 < argc) pre = argv[++i];
        else if (!strcmp(argv[i], "--no-special")) tflags &= ~BITNET_TOKENIZE_PARSE_SPECIAL;
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    mp.vocab_only = 1;
    mp.pretokenizer = pre;
    bitnet_model *m = NULL;
    if (bitnet_model_load(argv[1], &mp, &m)) {
        fprintf(stderr, "load %s: %s\n", argv[1], bitnet_last_error());
        return 1;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) { perror(argv[2]); bitnet_model_free(m); return 1; }
    size_t line_cap = 1 << 20, cap = 1 << 16;
    char *line = malloc(line_cap), *text = malloc(line_cap), *buf = malloc(line_cap);
    bitnet_token *want = malloc(cap * sizeof *want), *got = malloc(cap * sizeof *got);
    if (!line || !text || !buf || !want || !got) { fprintf(stderr, "out of memory\n"); return 1; }
    int fails = 0, cases = 0;
    while (fgets(line, (int)line_cap, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        size_t len = 0;
        if (strcmp(line, "-") != 0)
            for (char *p = line; p[0] && p[1]; p += 2) text[len++] = (char)(hexv(p[0]) * 16 + hexv(p[1]));
        size_t nw = 0;
        for (char *p = tab + 1, *e; *p && nw < cap; p = e) {
            long v = strtol(p, &e, 10);
            if (e == p) break;
            want[nw++] = (bitnet_token)v;
        }
        size_t ng = 0;
        cases++;
        bitnet_status st = bitnet_tokenize(m, text, len, tflags, got, cap, &ng);
        if (st || ng != nw || memcmp(got, want, nw * sizeof *want) != 0) {
            fprintf(stderr, "MISMATCH case %d%s%s\n", cases, st ? ": " : "", st ? bitnet_last_error() : "");
            print_text(text, len);
            print_ids("reference", want, nw);
            print_ids("libbitnet", got, ng);
            fails++;
            continue;
        }
        fails += roundtrip(m, text, len, tflags, got, cap, &ng, buf, line_cap);
    }
    fclose(f);
    /* invalid UTF-8: defined outcome (raw bytes preserved), no crash */
    static const char *const bad[] = {
        "\xff", "\xfe\xff", "abc\200def", "\xc3", "caf\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xed\xa0\x80",
        "\xc0\xaf", "\xf8\x88\x80\x80\x80", "ok \xc3\x28 ok", "\x80\x80\x80 \x80", "\xf4\x90\x80\x80", "x\xc3 \xa9y",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t ng = 0;
        cases++;
        fails += roundtrip(m, bad[i], strlen(bad[i]), tflags, got, cap, &ng, buf, line_cap);
    }
    printf("%s: %d cases, %d mismatches\n", argv[2], cases, fails);
    free(line);
    free(text);
    free(buf);
    free(want);
    free(got);
    bitnet_model_free(m);
    return fails ? 1 : 0;
}
