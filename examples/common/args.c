#define BITNET_EXPERIMENTAL /* bitnet_chat_tokenize (the conversation loop) */
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

/* The tokens of a conversation (bitnet_chat_tokenize: message text never becomes a
 * special token) as a malloc'd array, or NULL with *st set.  n_prefix > 0: only what
 * msgs[n_prefix..n) add to a context that holds the first n_prefix messages. */
static bitnet_token *ex_chat_tokens(const bitnet_model *m, const char *tmpl, const bitnet_chat_message *msgs,
                                    size_t n, size_t n_prefix, int add_gen, size_t *n_tok, bitnet_status *st) {
    bitnet_chat_params p;
    bitnet_chat_default_params(&p, sizeof p);
    p.tmpl = tmpl;
    p.add_generation_prompt = add_gen;
    p.n_prefix = n_prefix;
    size_t need = 0;
    *st = bitnet_chat_tokenize(m, msgs, n, &p, NULL, 0, &need);
    if (*st != BITNET_OK && *st != BITNET_E_BUFFER_TOO_SMALL) return NULL;
    bitnet_token *t = malloc((need ? need : 1) * sizeof *t);
    if (!t) {
        *st = BITNET_E_NOMEM;
        return NULL;
    }
    *st = bitnet_chat_tokenize(m, msgs, n, &p, t, need, n_tok);
    if (*st != BITNET_OK) {
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
    bitnet_status pst;
    bitnet_token *pf = ex_chat_tokens(m, tmpl, &probe, 1, 0, 1, &plen, &pst);
    if (!pf) {
        if (tmpl) {
            ex_error("chat template '%s': %s", tmpl, bitnet_last_error());
            return 1;
        }
        ex_note("the model has no usable chat template (%s); using \"plain\"", bitnet_last_error());
        tmpl = "plain";
        pf = ex_chat_tokens(m, tmpl, &probe, 1, 0, 1, &plen, &pst);
        if (!pf) {
            ex_error("chat template 'plain': %s", bitnet_last_error());
            return 1;
        }
    }
    free(pf);

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
        if (memchr(line, 0, (size_t)got)) { /* a message is a C string: refuse rather than cut it */
            ex_error("the line contains a NUL byte; not sent");
            continue;
        }
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

        /* Evaluate only what the session does not hold yet (llama-cli's way): what the new
         * message adds to the conversation so far; the whole conversation when the session
         * is empty or the template renders earlier turns differently now. */
        size_t n_tok = 0;
        bitnet_status cst = BITNET_OK;
        bitnet_token *toks = NULL;
        if (bitnet_session_n_past(s) > 0 && n_msgs > 1) {
            toks = ex_chat_tokens(m, tmpl, msgs, n_msgs, n_msgs - 1, 1, &n_tok, &cst);
            if (!toks && cst == BITNET_E_NOT_FOUND) bitnet_session_reset(s);
        }
        if (!toks && (bitnet_session_n_past(s) == 0 || n_msgs <= 1)) {
            bitnet_session_reset(s);
            /* llama-cli evaluates the system prompt on its own first, then the turn: the
             * same token boundaries here (they matter for the bitnet format, whose system
             * message ends without a special token) */
            size_t n_sys = 0, n_turn = 0;
            bitnet_token *sys = n_keep && n_msgs > n_keep ? ex_chat_tokens(m, tmpl, msgs, n_keep, 0, 0, &n_sys, &cst)
                                                          : NULL;
            bitnet_token *turn = sys ? ex_chat_tokens(m, tmpl, msgs, n_msgs, n_keep, 1, &n_turn, &cst) : NULL;
            if (sys && turn && (toks = malloc((n_sys + n_turn + 1) * sizeof *toks)) != NULL) {
                memcpy(toks, sys, n_sys * sizeof *toks);
                memcpy(toks + n_sys, turn, n_turn * sizeof *toks);
                n_tok = n_sys + n_turn;
            }
            free(sys);
            free(turn);
            if (!toks) toks = ex_chat_tokens(m, tmpl, msgs, n_msgs, 0, 1, &n_tok, &cst);
        }
        if (!toks) {
            ex_error("formatting the chat: %s", bitnet_last_error());
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
