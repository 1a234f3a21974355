/*
 * bitnet-tokenize -- tokenize stdin with a model's tokenizer, or decode token ids.
 *
 *   bitnet-tokenize -m MODEL [--no-bos] [--special] [--pieces] [--pre NAME] < text
 *       prints the token ids separated by spaces (--pieces: one "id<TAB>token text"
 *       line per token, control characters escaped)
 *   bitnet-tokenize -m MODEL --decode [--special] < ids
 *       reads whitespace-separated ids and writes the text
 *
 * Works on vocabulary-only GGUF files (tokenizer metadata, no tensors).
 */
#include "args.h"
#include "bitnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: bitnet-tokenize -m MODEL [--no-bos] [--special] [--pieces] [--pre NAME] < text\n"
               "       bitnet-tokenize -m MODEL --decode [--special] < ids\n"
               "  --no-bos    do not prepend BOS (default: as the model asks)\n"
               "  --special   recognise special-token texts (encode) / print them (decode)\n"
               "  --pieces    print one token per line with its vocabulary text\n"
               "  --pre NAME  force the BPE pre-tokenizer: llama-bpe, gpt2, default\n");
}

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); return NULL; }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    *len = n;
    return buf;
}

static void print_escaped(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\') fputs("\\\\", stdout);
        else if (*p == '\n') fputs("\\n", stdout);
        else if (*p == '\t') fputs("\\t", stdout);
        else if (*p == '\r') fputs("\\r", stdout);
        else if (*p < 0x20 || *p == 0x7f) printf("\\x%02x", *p);
        else putchar(*p);
    }
}

int main(int argc, char **argv) {
    const char *model = NULL, *pre = NULL;
    int no_bos = 0, special = 0, pieces = 0, dec = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) model = ex_next(argc, argv, &i);
        else if (strcmp(a, "--no-bos") == 0) no_bos = 1;
        else if (strcmp(a, "--special") == 0) special = 1;
        else if (strcmp(a, "--pieces") == 0) pieces = 1;
        else if (strcmp(a, "--decode") == 0) dec = 1;
        else if (strcmp(a, "--pre") == 0) pre = ex_next(argc, argv, &i);
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(stdout); return 0; }
        else { fprintf(stderr, "bitnet-tokenize: unknown option '%s'\n", a); usage(stderr); return 2; }
    }
    if (!model) { usage(stderr); return 2; }

    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    mp.vocab_only = 1;
    mp.pretokenizer = pre;
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(model, &mp, &m);
    if (st) { ex_die_status("bitnet-tokenize", model, st); return 1; }

    size_t len = 0;
    char *in = read_all(stdin, &len);
    if (!in) { fprintf(stderr, "bitnet-tokenize: out of memory reading stdin\n"); bitnet_model_free(m); return 1; }
    int rc = 0;
    if (dec) {
        size_t cap = 1024, n = 0;
        bitnet_token *ids = malloc(cap * sizeof *ids);
        char *p = in, *end = in + len;
        while (ids && p < end) {
            while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',')) p++;
            if (p >= end) break;
            char num[16];
            size_t k = 0;
            while (p < end && k < sizeof num - 1 && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ',')
                num[k++] = *p++;
            num[k] = 0;
            if (n == cap) {
                bitnet_token *ni = realloc(ids, (cap *= 2) * sizeof *ids);
                if (!ni) { free(ids); ids = NULL; break; }
                ids = ni;
            }
            ids[n++] = (bitnet_token)ex_parse_int("token id", num, 0, INT32_MAX);
        }
        size_t need = 0;
        uint32_t fl = special ? BITNET_DETOK_RENDER_SPECIAL : 0;
        st = ids ? bitnet_detokenize(m, ids, n, fl, NULL, 0, &need) : BITNET_E_NOMEM;
        char *out = NULL;
        if (st == BITNET_E_BUFFER_TOO_SMALL || st == BITNET_OK) {
            out = malloc(need ? need : 1);
            st = out ? bitnet_detokenize(m, ids, n, fl, out, need, &need) : BITNET_E_NOMEM;
        }
        if (st) { ex_die_status("bitnet-tokenize", "decode", st); rc = 1; }
        else fwrite(out, 1, need, stdout);
        free(out);
        free(ids);
    } else {
        uint32_t fl = (no_bos ? 0 : BITNET_TOKENIZE_ADD_BOS) | (special ? BITNET_TOKENIZE_PARSE_SPECIAL : 0);
        size_t n = 0;
        st = bitnet_tokenize(m, in, len, fl, NULL, 0, &n);
        bitnet_token *ids = NULL;
        if (st == BITNET_E_BUFFER_TOO_SMALL || st == BITNET_OK) {
            ids = malloc((n ? n : 1) * sizeof *ids);
            st = ids ? bitnet_tokenize(m, in, len, fl, ids, n, &n) : BITNET_E_NOMEM;
        }
        if (st) {
            ex_die_status("bitnet-tokenize", "tokenize", st);
            rc = 1;
        } else if (pieces) {
            for (size_t i = 0; i < n; i++) {
                printf("%d\t", (int)ids[i]);
                print_escaped(bitnet_token_text(m, ids[i]));
                putchar('\n');
            }
        } else {
            for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
            putchar('\n');
        }
        free(ids);
    }
    free(in);
    bitnet_model_free(m);
    return rc;
}
