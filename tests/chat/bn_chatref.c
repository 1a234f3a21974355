/*
 * bn_chatref.c -- renders chat-template cases with libbitnet's Jinja renderer for the
 * reference comparison (tests/chat/reference.py compares with python3-jinja2).
 *
 *     bn_chatref CASES OUT NOW
 *
 * CASES is a sequence of length-prefixed fields ("<decimal length>\n<bytes>\n"; length
 * -1 for an absent string): for each case the template, bos_token, eos_token,
 * add_generation_prompt ("0"/"1"), the number of messages, then role and content of
 * each.  OUT receives per case: the status, the rendered text (or the error message)
 * and the content mask as '0'/'1' characters, in the same framing.  NOW is the time
 * strftime_now() formats.
 */
#include "chat_jinja.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_field(FILE *f, long *len) {
    long n;
    if (fscanf(f, "%ld", &n) != 1) return NULL;
    if (fgetc(f) != '\n') return NULL;
    *len = n;
    if (n < 0) return (char *)"";
    char *p = malloc((size_t)n + 1);
    if (!p || (n && fread(p, 1, (size_t)n, f) != (size_t)n)) { free(p); return NULL; }
    p[n] = 0;
    if (fgetc(f) != '\n') { free(p); return NULL; }
    return p;
}

static void write_field(FILE *f, const char *p, size_t n) {
    fprintf(f, "%zu\n", n);
    fwrite(p, 1, n, f);
    fputc('\n', f);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bn_chatref CASES OUT NOW\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) {
        fprintf(stderr, "bn_chatref: cannot open %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    long long now = atoll(argv[3]);
    long cases = 0;
    for (;;) {
        long tl, bl, el, gl, nl;
        char *tmpl = read_field(in, &tl);
        if (!tmpl) break;
        char *bos = read_field(in, &bl), *eos = read_field(in, &el), *agp = read_field(in, &gl);
        char *nm = read_field(in, &nl);
        if (!bos || !eos || !agp || !nm) { fprintf(stderr, "bn_chatref: truncated case\n"); return 2; }
        long n = atol(nm);
        bitnet_chat_message *msgs = calloc((size_t)(n > 0 ? n : 1), sizeof *msgs);
        for (long i = 0; i < n; i++) {
            long l1, l2;
            msgs[i].role = read_field(in, &l1);
            msgs[i].content = read_field(in, &l2);
            if (!msgs[i].role || !msgs[i].content) { fprintf(stderr, "bn_chatref: truncated message\n"); return 2; }
        }
        bn_jinja_input ji;
        memset(&ji, 0, sizeof ji);
        ji.msgs = msgs;
        ji.n_msgs = (size_t)n;
        ji.add_generation_prompt = agp[0] == '1';
        ji.bos_token = bl < 0 ? NULL : bos;
        ji.eos_token = el < 0 ? NULL : eos;
        ji.now = now;
        bn_chat_text t;
        bitnet_status st = bn_jinja_render(tmpl, (size_t)tl, &ji, &t);
        char sts[16];
        snprintf(sts, sizeof sts, "%d", (int)st);
        write_field(out, sts, strlen(sts));
        if (st == BITNET_OK) {
            write_field(out, t.text, t.n);
            char *mask = malloc(t.n + 1);
            for (size_t i = 0; i < t.n; i++) mask[i] = t.content[i] ? '1' : '0';
            write_field(out, mask, t.n);
            free(mask);
            bn_chat_text_free(&t);
        } else {
            const char *msg = bitnet_last_error();
            write_field(out, msg, strlen(msg));
            write_field(out, "", 0);
        }
        for (long i = 0; i < n; i++) {
            free((char *)msgs[i].role);
            free((char *)msgs[i].content);
        }
        free(msgs);
        free(tmpl);
        if (bl >= 0) free(bos);
        if (el >= 0) free(eos);
        free(agp);
        free(nm);
        cases++;
    }
    fclose(in);
    if (fclose(out) != 0) return 2;
    fprintf(stderr, "bn_chatref: %ld cases\n", cases);
    return 0;
}
