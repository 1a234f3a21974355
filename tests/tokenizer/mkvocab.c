/*
 * mkvocab.c -- write a vocabulary-only GGUF file (tokenizer.ggml.* metadata, no
 * tensors) from a text description, with the public GGUF writer.  Used by
 * run_reference.sh to turn reference vocabularies (dumped by the node / python
 * scripts) into files libbitnet loads like any model.
 *
 * Input format (one item per line; HEX = the bytes in lowercase hex, "-" = empty):
 *   model NAME               gpt2 | llama
 *   pre NAME                 optional
 *   bos|eos|eot|unk|pad ID   optional, u32
 *   add_bos|add_eos|add_space_prefix 0|1   optional, bool
 *   chat_template HEX        optional
 *   tokens N                 followed by N lines "HEX TYPE SCORE"
 *   merges M                 followed by M lines "HEX"
 *
 * usage: bitnet-mkvocab IN.txt OUT.gguf
 */
#include "bitnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexv(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode HEX (or "-") into a new buffer; returns NULL on bad input. */
static char *unhex(const char *s, size_t *len) {
    size_t n = strlen(s);
    if (strcmp(s, "-") == 0) n = 0;
    if (n % 2) return NULL;
    char *out = malloc(n / 2 + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int a = hexv(s[2 * i]), b = hexv(s[2 * i + 1]);
        if (a < 0 || b < 0) { free(out); return NULL; }
        out[i] = (char)(a * 16 + b);
    }
    out[n / 2] = 0;
    *len = n / 2;
    return out;
}

static int die(const char *what) {
    fprintf(stderr, "bitnet-mkvocab: %s: %s\n", what, bitnet_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bitnet-mkvocab IN.txt OUT.gguf\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror(argv[1]); return 1; }
    bitnet_gguf_writer *w = NULL;
    if (bitnet_gguf_writer_create(&w)) return die("create");
    static char line[1 << 16];
    int rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char key[32], val[sizeof line];
        if (!line[0]) continue;
        if (sscanf(line, "%31s %65535s", key, val) != 2) { fprintf(stderr, "bad line: %s\n", line); rc = 1; break; }
        if (strcmp(key, "model") == 0 || strcmp(key, "pre") == 0) {
            char k[64];
            snprintf(k, sizeof k, "tokenizer.ggml.%s", key);
            if (bitnet_gguf_writer_set_str(w, k, val, strlen(val))) rc = die(k);
        } else if (!strcmp(key, "bos") || !strcmp(key, "eos") || !strcmp(key, "eot") || !strcmp(key, "unk") ||
                   !strcmp(key, "pad")) {
            static const char *names[][2] = {{"bos", "bos_token_id"}, {"eos", "eos_token_id"}, {"eot", "eot_token_id"},
                                             {"unk", "unknown_token_id"}, {"pad", "padding_token_id"}};
            char k[64];
            for (size_t i = 0; i < 5; i++)
                if (!strcmp(key, names[i][0])) snprintf(k, sizeof k, "tokenizer.ggml.%s", names[i][1]);
            uint32_t id = (uint32_t)strtoul(val, NULL, 10);
            if (bitnet_gguf_writer_set_scalar(w, k, BITNET_GGUF_UINT32, &id)) rc = die(k);
        } else if (!strcmp(key, "add_bos") || !strcmp(key, "add_eos") || !strcmp(key, "add_space_prefix")) {
            char k[64];
            snprintf(k, sizeof k, "tokenizer.ggml.%s%s", key, strcmp(key, "add_space_prefix") ? "_token" : "");
            uint8_t b = (uint8_t)(atoi(val) != 0);
            if (bitnet_gguf_writer_set_scalar(w, k, BITNET_GGUF_BOOL, &b)) rc = die(k);
        } else if (!strcmp(key, "chat_template")) {
            size_t l;
            char *t = unhex(val, &l);
            if (!t || bitnet_gguf_writer_set_str(w, "tokenizer.chat_template", t, l)) rc = die("chat_template");
            free(t);
        } else if (!strcmp(key, "tokens") || !strcmp(key, "merges")) {
            int is_tok = !strcmp(key, "tokens");
            long n = strtol(val, NULL, 10);
            if (n < 0 || n > 10000000) { fprintf(stderr, "bad count %ld\n", n); rc = 1; break; }
            char **s = calloc((size_t)n + 1, sizeof *s);
            size_t *lens = calloc((size_t)n + 1, sizeof *lens);
            float *sc = calloc((size_t)n + 1, sizeof *sc);
            int32_t *ty = calloc((size_t)n + 1, sizeof *ty);
            if (!s || !lens || !sc || !ty) { fprintf(stderr, "out of memory\n"); rc = 1; }
            for (long i = 0; !rc && i < n; i++) {
                char hex[sizeof line];
                int t = 1;
                float score = 0;
                if (!fgets(line, sizeof line, f)) { fprintf(stderr, "%s: truncated\n", key); rc = 1; break; }
                int got = sscanf(line, "%65535s %d %f", hex, &t, &score);
                if (got < 1 || !(s[i] = unhex(hex, &lens[i]))) { fprintf(stderr, "%s[%ld]: bad line\n", key, i); rc = 1; break; }
                ty[i] = t;
                sc[i] = score;
            }
            if (!rc) {
                const char *k = is_tok ? "tokenizer.ggml.tokens" : "tokenizer.ggml.merges";
                if (bitnet_gguf_writer_set_str_array(w, k, (const char *const *)s, lens, (uint64_t)n)) rc = die(k);
                if (!rc && is_tok &&
                    (bitnet_gguf_writer_set_array(w, "tokenizer.ggml.scores", BITNET_GGUF_FLOAT32, sc, (uint64_t)n) ||
                     bitnet_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BITNET_GGUF_INT32, ty, (uint64_t)n)))
                    rc = die("scores/token_type");
            }
            for (long i = 0; s && i < n; i++) free(s[i]);
            free(s);
            free(lens);
            free(sc);
            free(ty);
        } else {
            fprintf(stderr, "unknown key '%s'\n", key);
            rc = 1;
        }
    }
    fclose(f);
    if (!rc && (bitnet_gguf_writer_begin(w, argv[2]) || bitnet_gguf_writer_finish(w))) rc = die(argv[2]);
    bitnet_gguf_writer_free(w);
    return rc;
}
