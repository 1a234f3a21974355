/*
 * bitnet-tokenize -- tokenize text with a model's tokenizer, or decode token ids.
 *
 *   bitnet-tokenize -m MODEL [-p TEXT | -f FILE | --stdin] [--no-bos] [--special]
 *                   [--pieces | --ids] [--show-count] [--pre NAME]
 *       prints the token ids separated by spaces (--pieces: one "id<TAB>token text"
 *       line per token, control characters escaped; --ids: "[1, 2, 3]" as
 *       llama-tokenize --ids prints them)
 *   bitnet-tokenize -m MODEL --decode [--special] [-p IDS | -f FILE | --stdin]
 *       reads whitespace-separated ids and writes the text
 * The input is read from stdin unless -p or -f gives it.
 *
 * Works on vocabulary-only GGUF files (tokenizer metadata, no tensors).
 */
#include "args.h"
#include "bitnet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: bitnet-tokenize -m MODEL [-p TEXT | -f FILE | --stdin] [options]\n"
               "       bitnet-tokenize -m MODEL --decode [--special] [-p IDS | -f FILE | --stdin]\n"
               "The text comes from -p, -f or stdin (the default), exactly as given; escapes in -p\n"
               "(\\n, \\t, ...) are processed unless --no-escape.\n"
               "  -p, --prompt TEXT  the text (or, with --decode, the ids)\n"
               "  -f, --file FILE    read it from a file\n"
               "  --stdin            read it from stdin\n"
               "  --no-escape        take -p literally\n"
               "  --no-bos           do not prepend BOS (default: as the model asks)\n"
               "  --special          recognise special-token texts (encode) / print them (decode)\n"
               "  --no-parse-special do not recognise them (the default)\n"
               "  --pieces           print one token per line with its vocabulary text\n"
               "  --ids              print the ids as a list: [1, 2, 3]\n"
               "  --show-count       print the number of tokens at the end\n"
               "  --pre NAME         force the BPE pre-tokenizer: llama-bpe, gpt2, default\n"
               "  --log-disable, -v  library log messages off / all\n"
               "  -h, --help         this text;  --version  the version\n");
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

enum { O_MODEL = 1, O_PROMPT, O_FILE, O_STDIN, O_NO_ESCAPE, O_NO_BOS, O_SPECIAL, O_NO_SPECIAL, O_PIECES, O_IDS,
       O_COUNT, O_DECODE, O_PRE };

static const ex_opt tok_opts[] = {
    {O_MODEL, "-m|--model", EX_ARG, NULL},
    {O_PROMPT, "-p|--prompt", EX_ARG, NULL},
    {O_FILE, "-f|--file", EX_ARG, NULL},
    {O_STDIN, "--stdin", EX_NOARG, NULL},
    {O_NO_ESCAPE, "--no-escape", EX_NOARG, NULL},
    {O_NO_BOS, "--no-bos", EX_NOARG, NULL},
    {O_SPECIAL, "--special|--parse-special", EX_NOARG, NULL},
    {O_NO_SPECIAL, "--no-parse-special", EX_NOARG, NULL},
    {O_PIECES, "--pieces", EX_NOARG, NULL},
    {O_IDS, "--ids", EX_NOARG, NULL},
    {O_COUNT, "--show-count", EX_NOARG, NULL},
    {O_DECODE, "--decode", EX_NOARG, NULL},
    {O_PRE, "--pre", EX_ARG, NULL},
    {0, NULL, EX_NOARG, NULL},
};

static const ex_opt *const tok_tables[] = {tok_opts, ex_opts_std, ex_opts_log, NULL};

int main(int argc, char **argv) {
    const char *model = NULL, *pre = NULL, *prompt = NULL, *path = NULL;
    int no_bos = 0, special = 0, pieces = 0, dec = 0, ids_list = 0, show_count = 0, escape = 1, from_stdin = 0;
    ex_args a;
    ex_args_init(&a, "bitnet-tokenize", argc, argv, tok_tables);
    for (int id; (id = ex_args_next(&a)) != EX_END;) {
        switch (id) {
        case EX_HELP: usage(stdout); return 0;
        case EX_POSITIONAL: ex_usage_error("unexpected argument '%s' (see bitnet-tokenize --help)", a.val);
        case O_MODEL: model = a.val; break;
        case O_PROMPT: prompt = a.val, path = NULL, from_stdin = 0; break; /* the last source wins */
        case O_FILE: path = a.val, prompt = NULL, from_stdin = 0; break;
        case O_STDIN: from_stdin = 1, prompt = path = NULL; break;
        case O_NO_ESCAPE: escape = 0; break;
        case O_NO_BOS: no_bos = 1; break;
        case O_SPECIAL: special = 1; break;
        case O_NO_SPECIAL: special = 0; break;
        case O_PIECES: pieces = 1, ids_list = 0; break;
        case O_IDS: ids_list = 1, pieces = 0; break;
        case O_COUNT: show_count = 1; break;
        case O_DECODE: dec = 1; break;
        case O_PRE: pre = a.val; break;
        default: ex_usage_error("option '%s' does not apply to bitnet-tokenize", a.opt);
        }
    }
    (void)from_stdin;
    if (!model) ex_usage_error("-m MODEL is required (see bitnet-tokenize --help)");

    size_t len = 0;
    char *in = NULL;
    if (prompt) {
        in = strdup(prompt);
        if (!in) ex_fail("out of memory");
        len = escape ? ex_unescape(in) : strlen(in);
    } else if (path) {
        in = ex_read_file(path, &len);
        if (!in) ex_fail("-f: cannot read '%s': %s", path, strerror(errno));
    } else {
        in = read_all(stdin, &len);
        if (!in) ex_fail("out of memory reading stdin");
    }

    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    mp.vocab_only = 1;
    mp.pretokenizer = pre;
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(model, &mp, &m);
    if (st) { free(in); ex_die_status("bitnet-tokenize", model, st); }

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
        } else if (ids_list) {
            putchar('[');
            for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", (int)ids[i]);
            puts("]");
        } else {
            for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
            putchar('\n');
        }
        if (st == BITNET_OK && show_count) printf("Total number of tokens: %zu\n", n);
        free(ids);
    }
    free(in);
    bitnet_model_free(m);
    return rc;
}
