/*
 * pretok_split.c -- prints how libbitnet's pre-tokenizers cut each line of a corpus
 * (for pretok_ref.mjs, which cuts the same lines with the regexes themselves).
 *
 *   bn_pretok_split NAME CORPUS_JSON_LINES
 *       NAME: llama-bpe, qwen2, gpt2 or default; the input holds one JSON-free text per
 *       line, hex-encoded UTF-8.  Output: one line per input, the code-point end offsets
 *       of the pieces, space-separated.
 */
#include "internal.h"
#include "tok_vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    bn_pre_kind pre = !strcmp(argv[1], "llama-bpe") ? BN_PRE_LLAMA3 : !strcmp(argv[1], "qwen2") ? BN_PRE_QWEN2
                      : !strcmp(argv[1], "gpt2") ? BN_PRE_GPT2 : BN_PRE_DEFAULT;
    FILE *f = fopen(argv[2], "r");
    if (!f) return 1;
    static char line[1 << 16];
    static unsigned char text[1 << 15];
    static uint32_t cps[1 << 15];
    static size_t ends[1 << 15], scratch[1 << 15];
    while (fgets(line, sizeof line, f)) {
        size_t hl = strcspn(line, "\r\n"), n = 0, m = 0;
        for (size_t i = 0; i + 1 < hl; i += 2) text[n++] = (unsigned char)(hexval(line[i]) * 16 + hexval(line[i + 1]));
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t l = bn_utf8_decode(text + i, n - i, &cp);
            if (!l) return 3; /* the corpus is valid UTF-8 */
            cps[m++] = cp;
            i += l;
        }
        size_t k = bn_pretok_split(pre, cps, m, ends, scratch);
        for (size_t i = 0; i < k; i++) printf(i ? " %zu" : "%zu", ends[i]);
        printf("\n");
    }
    fclose(f);
    return 0;
}
