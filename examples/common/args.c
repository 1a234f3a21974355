#include "args.h"

#include "bitnet.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long long ex_parse_int(const char *opt, const char *s, long long min, long long max) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        ex_usage_error("%s expects an integer in [%lld, %lld], got '%s'", opt, min, max, s);
    }
    return v;
}

double ex_parse_float(const char *opt, const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        ex_usage_error("%s expects a number, got '%s'", opt, s);
    }
    return v;
}

const char *ex_next(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        ex_usage_error("option '%s' needs a value (see %s --help)", argv[*i], ex_prog);
    }
    return argv[++*i];
}

void ex_die_status(const char *prog, const char *what, int status) {
    const char *msg = bitnet_last_error();
    fflush(stdout);
    fprintf(stderr, "%s: error: %s: %s%s%s\n", prog, what, bitnet_strerror((bitnet_status)status), *msg ? ": " : "",
            msg);
    exit(1);
}

/* ---- conversation loop ------------------------------------------------------------ */

static volatile sig_atomic_t ex_interrupted;

static void ex_on_sigint(int sig) {
    (void)sig;
    ex_interrupted = 1;
}

typedef struct ex_text {
    char  *p;
    size_t n, cap;
} ex_text;

static void ex_text_add(ex_text *t, const char *s, size_t n) {
    if (t->n + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->n + n + 1) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) ex_fail("out of memory");
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = 0;
}

static int ex_stream(void *user, bitnet_token tok, const char *text, size_t len) {
    (void)tok;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    ex_text_add(user, text, len);
    return ex_interrupted != 0;
}

/* The formatted chat as a malloc'd string, or NULL (message printed). */
static char *ex_format(const bitnet_model *m, const char *tmpl, const bitnet_chat_message *msgs, size_t n,
                       int add_gen, size_t *len) {
    size_t need = 0;
    bitnet_status st = bitnet_chat_apply(m, tmpl, msgs, n, add_gen, NULL, 0, &need);
    if (st != BITNET_OK && st != BITNET_E_BUFFER_TOO_SMALL) return NULL;
    char *buf = malloc(need + 1);
    if (!buf) return NULL;
    st = bitnet_chat_apply(m, tmpl, msgs, n, add_gen, buf, need + 1, &need);
    if (st != BITNET_OK) {
        free(buf);
        return NULL;
    }
    buf[need] = 0;
    *len = need;
    return buf;
}

static bitnet_token *ex_tokenize(const bitnet_model *m, const char *text, size_t len, uint32_t flags, size_t *n) {
    size_t need = 0;
    bitnet_status st = bitnet_tokenize(m, text, len, flags, NULL, 0, &need);
    if (st != BITNET_OK && st != BITNET_E_BUFFER_TOO_SMALL) return NULL;
    bitnet_token *t = malloc((need ? need : 1) * sizeof *t);
    if (!t) return NULL;
    if (bitnet_tokenize(m, text, len, flags, t, need, n) != BITNET_OK) {
        free(t);
        return NULL;
    }
    return t;
}

int ex_chat_loop(const bitnet_model *m, bitnet_session *s, const char *system, const char *tmpl,
                 const bitnet_sampler_params *sp, int32_t max_tokens, FILE *in, int prompt_marks) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ex_on_sigint; /* no SA_RESTART: Ctrl-C at the prompt ends the input */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    /* Which template: the model's, else "plain". */
    bitnet_chat_message probe = {"user", "hi"};
    size_t plen = 0;
    char *pf = ex_format(m, tmpl, &probe, 1, 1, &plen);
    if (!pf) {
        if (tmpl) {
            ex_error("chat template '%s': %s", tmpl, bitnet_last_error());
            return 1;
        }
        ex_note("the model has no usable chat template (%s); using \"plain\"", bitnet_last_error());
        tmpl = "plain";
        pf = ex_format(m, tmpl, &probe, 1, 1, &plen);
        if (!pf) {
            ex_error("chat template 'plain': %s", bitnet_last_error());
            return 1;
        }
    }
    free(pf);
    const char *bos_text = bitnet_token_bos(m) >= 0 ? bitnet_token_text(m, bitnet_token_bos(m)) : NULL;

    size_t n_msgs = 0, cap_msgs = 16, n_keep = 0;
    bitnet_chat_message *msgs = malloc(cap_msgs * sizeof *msgs);
    if (!msgs) return 1;
    if (system && *system) {
        msgs[n_msgs].role = "system";
        msgs[n_msgs].content = strdup(system);
        n_msgs++;
        n_keep = 1;
    }
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = max_tokens;
    gp.callback = ex_stream;

    int rc = 0;
    char *line = NULL;
    size_t line_cap = 0;
    for (;;) {
        if (prompt_marks) {
            fprintf(stderr, "\n> ");
            fflush(stderr);
        }
        ex_interrupted = 0;
        ssize_t got = getline(&line, &line_cap, in);
        if (got < 0) break; /* end of input, or Ctrl-C at the prompt */
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
        if (!strcmp(line, "/reset")) {
            for (size_t k = n_keep; k < n_msgs; k++) free((char *)msgs[k].content);
            n_msgs = n_keep;
            bitnet_session_reset(s);
            fprintf(stderr, "[conversation cleared]\n");
            continue;
        }
        if (got == 0) continue;
        if (n_msgs + 2 > cap_msgs) {
            cap_msgs *= 2;
            bitnet_chat_message *nm = realloc(msgs, cap_msgs * sizeof *msgs);
            if (!nm) { rc = 1; break; }
            msgs = nm;
        }
        msgs[n_msgs].role = "user";
        msgs[n_msgs].content = strdup(line);
        n_msgs++;

        size_t new_len = 0, prev_len = 0;
        char *fnew = ex_format(m, tmpl, msgs, n_msgs, 1, &new_len);
        char *fprev = n_msgs > 1 ? ex_format(m, tmpl, msgs, n_msgs - 1, 0, &prev_len) : NULL;
        if (!fnew) {
            ex_error("formatting the chat: %s", bitnet_last_error());
            free(fprev);
            rc = 1;
            break;
        }
        /* Evaluate only what the session does not hold yet (llama-cli's way): the
         * difference between the chat with and without the new message. */
        const char *text = fnew;
        size_t len = new_len;
        uint32_t flags = BITNET_TOKENIZE_PARSE_SPECIAL;
        if (bitnet_session_n_past(s) > 0 && fprev && prev_len <= new_len && !memcmp(fnew, fprev, prev_len)) {
            text = fnew + prev_len;
            len = new_len - prev_len;
        } else {
            bitnet_session_reset(s);
            if (!bos_text || strncmp(fnew, bos_text, strlen(bos_text)) != 0) flags |= BITNET_TOKENIZE_ADD_BOS;
        }
        size_t n_tok = 0;
        bitnet_token *toks = ex_tokenize(m, text, len, flags | BITNET_TOKENIZE_NO_ADD_EOS, &n_tok);
        free(fnew);
        free(fprev);
        if (!toks) {
            ex_error("tokenizing: %s", bitnet_last_error());
            rc = 1;
            break;
        }
        ex_text reply = {0};
        ex_text_add(&reply, "", 0);
        bitnet_stop_reason why = BITNET_STOP_NONE;
        gp.user = &reply;
        bitnet_status st = bitnet_session_generate(s, toks, n_tok, sp, &gp, NULL, 0, NULL, &why);
        free(toks);
        if (st == BITNET_E_CONTEXT_FULL) {
            fprintf(stderr, "\n[the context is full: conversation cleared, please repeat]\n");
            for (size_t k = n_keep; k < n_msgs; k++) free((char *)msgs[k].content);
            n_msgs = n_keep;
            bitnet_session_reset(s);
            free(reply.p);
            continue;
        }
        if (st != BITNET_OK) {
            fputc('\n', stderr);
            ex_error("generation failed: %s: %s", bitnet_strerror(st), bitnet_last_error());
            free(reply.p);
            rc = 1;
            break;
        }
        fputc('\n', stdout);
        fflush(stdout);
        if (why == BITNET_STOP_CALLBACK) fprintf(stderr, "[stopped]\n");
        if (why == BITNET_STOP_CONTEXT) fprintf(stderr, "[the context is full: /reset to start over]\n");
        msgs[n_msgs].role = "assistant";
        msgs[n_msgs].content = reply.p;
        n_msgs++;
    }
    for (size_t k = 0; k < n_msgs; k++) free((char *)msgs[k].content);
    free(msgs);
    free(line);
    return rc;
}
