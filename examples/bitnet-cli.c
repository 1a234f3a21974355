/*
 * bitnet-cli -- run a prompt through a model and print the continuation (the job of
 * bitnet.cpp's run_inference.py / llama-cli).  Public API only.
 *
 *   bitnet-cli -m model.gguf -p "Once upon a time" -n 64 --temp 0
 *   bitnet-cli -m model.gguf -i -r "User:" -f dialogue.txt      (interactive)
 *
 * It takes llama-cli's spellings (opts.h): -n/--n-predict/--predict, --n-predict=2,
 * -t2, -temp, -e, -r, -i, -f, ...; GPU options are accepted and reported as having no
 * effect.  Like llama-cli it echoes the prompt to stdout before the continuation
 * (--no-display-prompt: stdout is exactly the generated text).  Everything else (model
 * info, timings, errors) goes to stderr.  The prompt is tokenized with BOS (if the model
 * asks for it) and special tokens recognised; escapes (\n, \t, ...) in the prompt are
 * processed unless --no-escape.
 *
 * Reverse prompts (-r) are stop strings checked against the text as it is printed: when
 * one appears, generation stops; in interactive mode (-i, -if) control goes to the user,
 * whose line (with --in-prefix/--in-suffix around it) is evaluated, and generation goes
 * on.  --logits-out writes the float32 logits of every prompt position (n_prompt x
 * n_vocab, row-major) for verification; with -n 0 nothing is generated.  -cnv runs a
 * conversation with the model's chat template.  --embedding prints sentence embeddings
 * instead, as llama.cpp's llama-embedding does: one per line of the prompt
 * (--embd-separator), pooled as the model says (--pooling), normalised (--embd-normalize,
 * L2 by default), then the cosine similarity matrix; --embd-output-format
 * array|json|json+ prints JSON.  Exit status: 0 success, 1 runtime error, 2 bad
 * arguments.
 */
#include "args.h"
#include "spec.h"

#define BITNET_EXPERIMENTAL /* bitnet_session_beam_search (--beams), bitnet_session_embed (--embedding) */
#include "bitnet.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitnet-cli -m MODEL [-p PROMPT | -f FILE] [options]\n"
            "  -m, --model FILE        GGUF model (required)\n"
            "  -p, --prompt TEXT       prompt (in -cnv mode: the system prompt)\n"
            "  -f, --file FILE         read the prompt from a file (one final newline dropped)\n"
            "  -bf, --binary-file FILE read the prompt from a file exactly as it is\n"
            "  -e, --escape            process \\n \\r \\t \\' \\\" \\\\ \\xHH in prompts (default)\n"
            "  --no-escape             take prompts literally\n"
            "  --no-display-prompt     do not echo the prompt: stdout is only the generated text\n"
            "  -n, --n-predict N       tokens to generate; -1 until end of text (default 128)\n"
            "  -c, --ctx-size N        context window; 0 the model's, at most 4096 (default 0)\n"
            "%s"
            "%s"
            "%s"
            "  --ignore-eos            keep generating past end-of-text tokens\n"
            "  -r, --reverse-prompt S  stop when S appears; with -i return control to the user\n"
            "                          (may be repeated)\n"
            "  -i, --interactive       interactive mode: after each answer, read a line from stdin\n"
            "  -if, --interactive-first  interactive mode, reading a line before generating\n"
            "  --in-prefix S, --in-suffix S  text put before / after every line typed\n"
            "  --in-prefix-bos         put BOS before every line typed\n"
            "  -mli, --multiline-input lines go on until one ends with '\\' (default: a line ending\n"
            "                          with '\\' continues; '/' at the end returns control)\n"
            "  -co, --color [on|off|auto]  colour the prompt and your input (flag alone: on)\n"
            "  -sp, --special          print special tokens\n"
            "  --verbose-prompt        list the prompt's tokens on stderr\n"
            "  --no-perf               no timing summary\n"
            "  --beams N               beam search with N beams instead of sampling\n"
            "  -cnv, --conversation    chat with the model's template (stdin lines are user turns)\n"
            "  -no-cnv                 no conversation (the default)\n"
            "  -sys, --system-prompt S, -sysf, --system-prompt-file F   the system prompt for -cnv\n"
            "  --chat-template NAME    override the chat template (bitnet, llama3, chatml, plain, or text)\n"
            "  --chat-template-file F  the chat template from a file\n"
            "  --logits-out FILE       write float32 logits of every prompt position\n"
            "  --no-bos                do not add BOS to the prompt\n"
            "  --embedding             print the sentence embedding of each line of the prompt\n"
            "  --pooling NAME          with --embedding: none, mean, cls, last (default: the model's)\n"
            "  --embd-normalize N      -1 none, 0 max-abs (int16 range), 2 L2 (default), p > 0 p-norm\n"
            "  --embd-output-format F  '' (text), array, json or json+ (with cosine similarities)\n"
            "  --embd-separator S      separates the inputs in the prompt (default: newline)\n"
            "  -v, --verbose, -lv N, --log-disable, --log-file F   library log messages\n"
            "  -h, --help              this text;  --version  the version\n"
            "llama.cpp's GPU and placement options (-ngl, -fa, -sm, -mg, -ts, -dev, -nkvo, --numa, -tb, ...)\n"
            "are accepted and have no effect (one note on stderr).\n",
            ex_run_help, ex_sampling_help, ex_spec_help);
}

enum {
    O_PROMPT = 1, O_FILE, O_BFILE, O_SYS, O_SYSF, O_NPREDICT, O_REVERSE, O_INTERACTIVE, O_INTERACTIVE_FIRST,
    O_IN_PREFIX, O_IN_SUFFIX, O_IN_PREFIX_BOS, O_ESCAPE, O_NO_ESCAPE, O_DISPLAY, O_NO_DISPLAY, O_COLOR, O_CNV,
    O_NO_CNV, O_TMPL, O_TMPL_FILE, O_SPECIAL, O_VERBOSE_PROMPT, O_IGNORE_EOS, O_MULTILINE, O_PERF, O_NO_PERF,
    O_BEAMS, O_LOGITS_OUT, O_NO_BOS, O_EMBD, O_POOLING, O_EMBD_NORM, O_EMBD_FMT, O_EMBD_SEP,
};

static const ex_opt cli_opts[] = {
    {O_PROMPT, "-p|--prompt", EX_ARG, NULL},
    {O_FILE, "-f|--file", EX_ARG, NULL},
    {O_BFILE, "-bf|--binary-file", EX_ARG, NULL},
    {O_SYS, "-sys|--system-prompt", EX_ARG, NULL},
    {O_SYSF, "-sysf|--system-prompt-file", EX_ARG, NULL},
    {O_NPREDICT, "-n|--n-predict|--predict", EX_ARG, NULL},
    {O_REVERSE, "-r|--reverse-prompt", EX_ARG, NULL},
    {O_INTERACTIVE, "-i|--interactive", EX_NOARG, NULL},
    {O_INTERACTIVE_FIRST, "-if|--interactive-first", EX_NOARG, NULL},
    {O_IN_PREFIX, "--in-prefix", EX_ARG, NULL},
    {O_IN_SUFFIX, "--in-suffix", EX_ARG, NULL},
    {O_IN_PREFIX_BOS, "--in-prefix-bos", EX_NOARG, NULL},
    {O_ESCAPE, "-e|--escape", EX_NOARG, NULL},
    {O_NO_ESCAPE, "--no-escape", EX_NOARG, NULL},
    {O_DISPLAY, "--display-prompt", EX_NOARG, NULL},
    {O_NO_DISPLAY, "--no-display-prompt", EX_NOARG, NULL},
    {O_COLOR, "-co|--color", EX_OPTARG, "on|off|auto|true|false|enabled|disabled|1|0"},
    {O_CNV, "-cnv|--conversation", EX_NOARG, NULL},
    {O_NO_CNV, "-no-cnv|--no-conversation", EX_NOARG, NULL},
    {O_TMPL, "--chat-template", EX_ARG, NULL},
    {O_TMPL_FILE, "--chat-template-file", EX_ARG, NULL},
    {O_SPECIAL, "-sp|--special", EX_NOARG, NULL},
    {O_VERBOSE_PROMPT, "--verbose-prompt", EX_NOARG, NULL},
    {O_IGNORE_EOS, "--ignore-eos", EX_NOARG, NULL},
    {O_MULTILINE, "-mli|--multiline-input", EX_NOARG, NULL},
    {O_PERF, "--perf", EX_NOARG, NULL},
    {O_NO_PERF, "--no-perf", EX_NOARG, NULL},
    {O_BEAMS, "--beams", EX_ARG, NULL},
    {O_LOGITS_OUT, "--logits-out", EX_ARG, NULL},
    {O_NO_BOS, "--no-bos", EX_NOARG, NULL},
    {O_EMBD, "--embedding|--embeddings", EX_NOARG, NULL},
    {O_POOLING, "--pooling", EX_ARG, "none|mean|cls|last"},
    {O_EMBD_NORM, "--embd-normalize", EX_ARG, NULL},
    {O_EMBD_FMT, "--embd-output-format", EX_ARG, NULL},
    {O_EMBD_SEP, "--embd-separator", EX_ARG, NULL},
    {0, NULL, EX_NOARG, NULL},
};

static const ex_opt *const cli_tables[] = {cli_opts,    ex_opts_run,     ex_opts_sampling,    ex_opts_spec,
                                           ex_opts_std, ex_opts_log,     ex_opts_ignored,     ex_opts_unsupported,
                                           NULL};

#define MAX_REVERSE 16
#define COLOR_PROMPT "\033[33m"
#define COLOR_INPUT "\033[1;32m"
#define COLOR_RESET "\033[0m"

/* ---- output: streaming, special tokens, reverse prompts ----------------------------- */

typedef struct cli_out {
    const bitnet_model *m;
    int                 special;
    const char         *reverse[MAX_REVERSE];
    size_t              n_reverse;
    char               *text; /* what was printed since the last user input */
    size_t              n, cap;
    int                 hit; /* the reverse prompt that stopped generation, or -1 */
} cli_out;

static volatile sig_atomic_t cli_interrupted;

static void cli_on_sigint(int sig) {
    (void)sig;
    cli_interrupted = 1;
}

static void cli_out_add(cli_out *o, const char *s, size_t n) {
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->n + n + 1) cap *= 2;
        char *p = realloc(o->text, cap);
        if (!p) ex_fail("out of memory");
        o->text = p;
        o->cap = cap;
    }
    memcpy(o->text + o->n, s, n);
    o->n += n;
    o->text[o->n] = 0;
}

/* The text of a special (control) token, or NULL for an ordinary one. */
static char *cli_special_text(const bitnet_model *m, bitnet_token t, size_t *len) {
    size_t plain = 0, with = 0;
    bitnet_detokenize(m, &t, 1, 0, NULL, 0, &plain);
    if (plain) return NULL; /* it has text of its own */
    bitnet_status st = bitnet_detokenize(m, &t, 1, BITNET_DETOK_RENDER_SPECIAL, NULL, 0, &with);
    if ((st != BITNET_OK && st != BITNET_E_BUFFER_TOO_SMALL) || with == 0) return NULL;
    char *buf = malloc(with);
    if (!buf || bitnet_detokenize(m, &t, 1, BITNET_DETOK_RENDER_SPECIAL, buf, with, len) != BITNET_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int cli_stream(void *user, bitnet_token t, const char *text, size_t len) {
    cli_out *o = user;
    char *sp = NULL;
    if (len == 0 && o->special && t >= 0 && (sp = cli_special_text(o->m, t, &len)) != NULL) text = sp;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    size_t before = o->n;
    cli_out_add(o, text, len);
    free(sp);
    /* a reverse prompt that ends in the new text */
    for (size_t k = 0; k < o->n_reverse && len > 0; k++) {
        size_t rl = strlen(o->reverse[k]);
        if (rl == 0 || rl > o->n) continue;
        size_t from = before + 1 > rl ? before + 1 - rl : 0;
        if (memmem(o->text + from, o->n - from, o->reverse[k], rl)) {
            o->hit = (int)k;
            return 1;
        }
    }
    return cli_interrupted != 0;
}

/* ---- input ------------------------------------------------------------------------------ */

/* One user input as llama-cli reads it: a line ending in '\' continues (with -mli the
 * other way round), '/' at the end returns control without a newline; every other line
 * keeps its '\n'.  Returns 0 at end of input or on Ctrl-C. */
static int cli_read_input(cli_out *buf, int multiline) {
    char *line = NULL;
    size_t cap = 0;
    int got_any = 0;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0 || cli_interrupted) break;
        got_any = 1;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        int more = multiline;
        if (n > 0 && line[n - 1] == '/') {
            cli_out_add(buf, line, (size_t)n - 1);
            free(line);
            return 1;
        }
        if (n > 0 && line[n - 1] == '\\') {
            line[--n] = 0;
            more = !more;
        }
        cli_out_add(buf, line, (size_t)n);
        cli_out_add(buf, "\n", 1);
        if (!more) break;
    }
    free(line);
    return got_any && !cli_interrupted;
}

static bitnet_token *cli_tokenize(const bitnet_model *m, const char *text, size_t len, uint32_t flags, size_t *n) {
    size_t need = 0;
    bitnet_status st = bitnet_tokenize(m, text, len, flags, NULL, 0, &need);
    if (st != BITNET_OK && st != BITNET_E_BUFFER_TOO_SMALL) ex_die_status(ex_prog, "tokenizing", st);
    bitnet_token *t = malloc((need ? need : 1) * sizeof *t);
    if (!t) ex_fail("out of memory");
    st = bitnet_tokenize(m, text, len, flags, t, need, n);
    if (st != BITNET_OK) ex_die_status(ex_prog, "tokenizing", st);
    return t;
}

/* Append b[0..nb) to *a (length *na). */
static void cli_append(bitnet_token **a, size_t *na, const bitnet_token *b, size_t nb) {
    bitnet_token *p = realloc(*a, (*na + nb + 1) * sizeof *p);
    if (!p) ex_fail("out of memory");
    if (nb) memcpy(p + *na, b, nb * sizeof *p);
    *a = p;
    *na += nb;
}

static void cli_append_text(const bitnet_model *m, bitnet_token **a, size_t *na, const char *text, uint32_t flags) {
    size_t n = 0;
    bitnet_token *t = cli_tokenize(m, text, strlen(text), flags, &n);
    cli_append(a, na, t, n);
    free(t);
}

/* Read a file for an option; exit(1) naming it if unreadable. */
static char *cli_file(const char *opt, const char *path) {
    char *s = ex_read_file(path, NULL);
    if (!s) ex_fail("%s: cannot read '%s': %s", opt, path, strerror(errno));
    return s;
}

/* ---- --embedding: llama-embedding's output ----------------------------------------------- */

typedef struct cli_embd_opts {
    int         pooling;   /* bitnet_pooling, BITNET_POOLING_MODEL for the model's */
    int         normalize;
    const char *format;    /* "", "array", "json", "json+"                        */
    const char *separator;
} cli_embd_opts;

/* llama.cpp's common_embd_similarity_cos. */
static float cli_embd_cos(const float *a, const float *b, int64_t n) {
    double s = 0, s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        s += a[i] * b[i];
        s1 += a[i] * a[i];
        s2 += b[i] * b[i];
    }
    if (s1 == 0.0 || s2 == 0.0) return s1 == 0.0 && s2 == 0.0 ? 1.0f : 0.0f;
    return (float)(s / (sqrt(s1) * sqrt(s2)));
}

/* Normalise a token's hidden state as bitnet_session_embed does (pooling none). */
static void cli_embd_normalize(const float *x, float *out, int64_t n, int norm) {
    double sum = 0;
    if (norm == -1) sum = 1;
    else if (norm == 0) {
        for (int64_t i = 0; i < n; i++)
            if (sum < fabsf(x[i])) sum = fabsf(x[i]);
        sum /= 32760.0;
    } else if (norm == 2) {
        for (int64_t i = 0; i < n; i++) sum += x[i] * x[i];
        sum = sqrt(sum);
    } else {
        for (int64_t i = 0; i < n; i++) sum += pow(fabsf(x[i]), norm);
        sum = pow(sum, 1.0 / norm);
    }
    const float k = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * k;
}

static void cli_embd_print(float v, int normalize) {
    if (normalize == 0) printf("%6.0f ", v);
    else printf("%9.6f ", v);
}

static int cli_embd_run(const bitnet_model *model, bitnet_session *s, const char *prompt, int no_bos,
                         const cli_embd_opts *o) {
    const int64_t E = bitnet_model_get_info(model, BITNET_INFO_N_EMBD);
    const int pooling = o->pooling == BITNET_POOLING_MODEL ? (int)bitnet_model_pooling(model) : o->pooling;
    const size_t sep_len = strlen(o->separator);
    /* the inputs: the prompt split at the separator (an empty separator: one input) */
    size_t n_in = 1;
    for (const char *p = prompt; sep_len && (p = strstr(p, o->separator)) != NULL; p += sep_len) n_in++;
    const char **in = calloc(n_in, sizeof *in);
    size_t *in_len = calloc(n_in, sizeof *in_len);
    float *emb = NULL;
    bitnet_token *toks = NULL;
    size_t n_emb = 0, cap_emb = 0, tok_cap = 0;
    int rc = 1;
    if (!in || !in_len) goto done;
    {
        const char *p = prompt;
        for (size_t k = 0; k < n_in; k++) {
            const char *q = sep_len ? strstr(p, o->separator) : NULL;
            in[k] = p;
            in_len[k] = q ? (size_t)(q - p) : strlen(p);
            p = q ? q + sep_len : p + in_len[k];
        }
    }
    bitnet_embed_params ep;
    bitnet_embed_default_params(&ep, sizeof ep);
    ep.pooling = pooling;
    ep.normalize = o->normalize;
    const uint32_t flags = BITNET_TOKENIZE_PARSE_SPECIAL | (no_bos ? 0u : BITNET_TOKENIZE_ADD_BOS);
    for (size_t k = 0; k < n_in; k++) {
        size_t n = 0;
        bitnet_status st = bitnet_tokenize(model, in[k], in_len[k], flags, NULL, 0, &n);
        if (st != BITNET_OK && st != BITNET_E_BUFFER_TOO_SMALL) ex_die_status("bitnet-cli", "tokenizing", st);
        if (n == 0) {
            ex_error("input %zu gives no tokens", k);
            goto done;
        }
        if (n > tok_cap) {
            bitnet_token *t2 = realloc(toks, n * sizeof *toks);
            if (!t2) goto done;
            toks = t2;
            tok_cap = n;
        }
        st = bitnet_tokenize(model, in[k], in_len[k], flags, toks, n, &n);
        if (st != BITNET_OK) ex_die_status("bitnet-cli", "tokenizing", st);
        const bitnet_token eos = bitnet_token_eos(model);
        if (toks[n - 1] != eos)
            ex_warn("the last token of input %zu is not EOS (tokenizer.ggml.add_eos_token is not set)", k);
        const size_t rows = pooling == BITNET_POOLING_NONE ? n : 1;
        if (n_emb + rows > cap_emb) {
            size_t c = (n_emb + rows) * 2;
            float *e2 = realloc(emb, c * (size_t)E * sizeof *emb);
            if (!e2) goto done;
            emb = e2;
            cap_emb = c;
        }
        if (pooling == BITNET_POOLING_NONE) { /* every token's hidden state, normalised */
            bitnet_session_reset(s);
            st = bitnet_session_eval(s, toks, n);
            if (st != BITNET_OK) ex_die_status("bitnet-cli", "evaluating", st);
            for (size_t t = 0; t < n; t++) {
                const float *h = NULL;
                st = bitnet_session_embeddings(s, (int32_t)t, &h);
                if (st != BITNET_OK) ex_die_status("bitnet-cli", "reading embeddings", st);
                cli_embd_normalize(h, emb + (n_emb + t) * (size_t)E, E, o->normalize);
            }
        } else {
            st = bitnet_session_embed(s, toks, n, &ep, emb + n_emb * (size_t)E, (size_t)E);
            if (st != BITNET_OK) ex_die_status("bitnet-cli", "embedding", st);
        }
        n_emb += rows;
    }
    if (!o->format[0]) {
        printf("\n");
        if (pooling == BITNET_POOLING_NONE) {
            for (size_t j = 0; j < n_emb; j++) {
                printf("embedding %zu: ", j);
                for (int64_t i = 0; i < (E < 3 ? E : 3); i++) cli_embd_print(emb[j * (size_t)E + (size_t)i], o->normalize);
                printf(" ... ");
                for (int64_t i = E - 3 < 0 ? 0 : E - 3; i < E; i++) cli_embd_print(emb[j * (size_t)E + (size_t)i], o->normalize);
                printf("\n");
            }
        } else {
            for (size_t j = 0; j < n_emb; j++) {
                printf("embedding %zu: ", j);
                const int64_t shown = n_in > 1 ? (E < 16 ? E : 16) : E;
                for (int64_t i = 0; i < shown; i++) cli_embd_print(emb[j * (size_t)E + (size_t)i], o->normalize);
                printf("\n");
            }
            if (n_in > 1) {
                printf("\ncosine similarity matrix:\n\n");
                for (size_t i = 0; i < n_in; i++) printf("%6.6s ", in[i]); /* (like llama.cpp, the first bytes) */
                printf("\n");
                for (size_t i = 0; i < n_in; i++) {
                    for (size_t j = 0; j < n_in; j++)
                        printf("%6.2f ", cli_embd_cos(emb + i * (size_t)E, emb + j * (size_t)E, E));
                    printf("%.*s\n", (int)(in_len[i] < 10 ? in_len[i] : 10), in[i]);
                }
            }
        }
    } else {
        const int obj = strcmp(o->format, "array") != 0;
        printf(obj ? "{\n  \"object\": \"list\",\n  \"data\": [\n" : "[");
        for (size_t j = 0; j < n_emb; j++) {
            if (obj) printf("    {\n      \"object\": \"embedding\",\n      \"index\": %zu,\n      \"embedding\": ", j);
            printf("[");
            for (int64_t i = 0; i < E; i++) {
                const float v = emb[j * (size_t)E + (size_t)i];
                if (i) printf(",");
                if (o->normalize == 0) printf("%1.0f", v);
                else printf("%1.7f", v);
            }
            printf(obj ? "]\n    }" : "]");
            if (j + 1 < n_emb) printf(obj ? ",\n" : ",");
        }
        printf(obj ? "\n  ]" : "]\n");
        if (!strcmp(o->format, "json+") && n_in > 1) {
            printf(",\n  \"cosineSimilarity\": [\n");
            for (size_t i = 0; i < n_emb; i++) {
                printf("    [");
                for (size_t j = 0; j < n_emb; j++)
                    printf("%s%6.2f", j ? ", " : "", cli_embd_cos(emb + i * (size_t)E, emb + j * (size_t)E, E));
                printf(" ]%s", i + 1 < n_emb ? ",\n" : "");
            }
            printf("\n  ]");
        }
        if (obj) printf("\n}\n");
    }
    printf("\n");
    fflush(stdout);
    rc = 0;
done:
    free(in);
    free(in_len);
    free(emb);
    free(toks);
    return rc;
}

int main(int argc, char **argv) {
    const char *prompt = NULL, *system = NULL, *logits_out = NULL, *tmpl = NULL, *in_prefix = "", *in_suffix = "";
    const char *prompt_path = NULL, *prompt_opt = NULL, *system_path = NULL, *tmpl_path = NULL;
    long long n_predict = 128, beams = 0;
    int conversation = 0, no_bos = 0, interactive = 0, interactive_first = 0, escape = 1, display = 1,
        color = 0, special = 0, verbose_prompt = 0, multiline = 0, perf = 1, prefix_bos = 0;
    int prompt_binary = 0, embedding = 0;
    cli_embd_opts eo = {BITNET_POOLING_MODEL, 2, "", "\n"};
    ex_run run;
    ex_spec spec;
    ex_spec_init(&spec);
    ex_run_init(&run);
    bitnet_sampler_params sp;
    bitnet_sampler_default_params(&sp, sizeof sp);
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    cli_out out;
    memset(&out, 0, sizeof out);
    out.hit = -1;

    ex_args a;
    ex_args_init(&a, "bitnet-cli", argc, argv, cli_tables);
    for (int id; (id = ex_args_next(&a)) != EX_END;) {
        if (ex_run_apply(&a, id, &run) || ex_sampling_apply(&a, id, &sp) || ex_spec_apply(&a, id, &spec))
            continue;
        switch (id) {
        case EX_HELP: usage(stdout); return 0;
        case EX_POSITIONAL: ex_usage_error("unexpected argument '%s' (see bitnet-cli --help)", a.val);
        case O_PROMPT: prompt = a.val, prompt_path = NULL, prompt_opt = a.opt; break; /* the last one wins */
        case O_FILE: prompt_path = a.val, prompt_binary = 0, prompt_opt = a.opt; break;
        case O_BFILE: prompt_path = a.val, prompt_binary = 1, prompt_opt = a.opt; break;
        case O_SYS: system = a.val, system_path = NULL; break;
        case O_SYSF: system_path = a.val; break;
        case O_NPREDICT:
            n_predict = ex_int(&a, -2, INT32_MAX);
            if (n_predict == -2) n_predict = -1; /* llama.cpp's "until the context is full" */
            break;
        case O_REVERSE:
            if (out.n_reverse == MAX_REVERSE) ex_usage_error("at most %d reverse prompts", MAX_REVERSE);
            out.reverse[out.n_reverse++] = a.val;
            break;
        case O_INTERACTIVE: interactive = 1; break;
        case O_INTERACTIVE_FIRST: interactive = interactive_first = 1; break;
        case O_IN_PREFIX: in_prefix = a.val; break;
        case O_IN_SUFFIX: in_suffix = a.val; break;
        case O_IN_PREFIX_BOS: prefix_bos = 1; break;
        case O_ESCAPE: escape = 1; break;
        case O_NO_ESCAPE: escape = 0; break;
        case O_DISPLAY: display = 1; break;
        case O_NO_DISPLAY: display = 0; break;
        case O_COLOR: {
            int k = a.val ? ex_choice(&a, "on|off|auto|true|false|enabled|disabled|1|0") : 0;
            color = k == 2 ? isatty(STDOUT_FILENO) : (k == 0 || k == 3 || k == 5 || k == 7);
            break;
        }
        case O_CNV: conversation = 1; break;
        case O_NO_CNV: conversation = 0; break;
        case O_TMPL: tmpl = a.val, tmpl_path = NULL; break;
        case O_TMPL_FILE: tmpl_path = a.val; break;
        case O_SPECIAL: special = 1; break;
        case O_VERBOSE_PROMPT: verbose_prompt = 1; break;
        case O_IGNORE_EOS: gp.ignore_eog = 1; break;
        case O_MULTILINE: multiline = 1; break;
        case O_PERF: perf = 1; break;
        case O_NO_PERF: perf = 0; break;
        case O_BEAMS: beams = ex_int(&a, 1, 64); break;
        case O_LOGITS_OUT: logits_out = a.val; break;
        case O_NO_BOS: no_bos = 1; break;
        case O_EMBD: embedding = 1; break;
        case O_POOLING: eo.pooling = ex_choice(&a, "none|mean|cls|last"); break;
        case O_EMBD_NORM: eo.normalize = (int)ex_int(&a, -1, 64); break;
        case O_EMBD_FMT:
            eo.format = a.val;
            if (eo.format[0]) (void)ex_choice(&a, "array|json|json+");
            break;
        case O_EMBD_SEP: eo.separator = a.val; break;
        default: ex_usage_error("option '%s' does not apply to bitnet-cli", a.opt);
        }
    }
    if (!run.model) ex_usage_error("-m MODEL is required (see bitnet-cli --help)");
    if (conversation && (logits_out || beams))
        ex_usage_error("-cnv cannot be combined with --logits-out or --beams");
    if (embedding && (conversation || interactive || logits_out || beams))
        ex_usage_error("--embedding cannot be combined with -cnv, -i, --logits-out or --beams");
    if (interactive && !conversation && (logits_out || beams))
        ex_usage_error("-i / -if cannot be combined with --logits-out or --beams");
    if (conversation && (prompt || prompt_path) && (system || system_path))
        ex_usage_error("in -cnv mode -p is the system prompt (as in bitnet.cpp's llama-cli): give it once, "
                       "with -p or -sys");

    /* files are read after parsing: a missing one is a runtime error (1) */
    char *prompt_text = NULL, *system_text = NULL, *tmpl_text = NULL;
    if (prompt_path) {
        size_t len = 0;
        prompt_text = ex_read_file(prompt_path, &len);
        if (!prompt_text) ex_fail("%s: cannot read '%s': %s", prompt_opt, prompt_path, strerror(errno));
        if (!prompt_binary && len > 0 && prompt_text[len - 1] == '\n') prompt_text[len - 1] = 0; /* as llama-cli */
    } else if (prompt) {
        prompt_text = strdup(prompt);
    }
    if (system_path) {
        system_text = cli_file("-sysf", system_path);
        size_t n = strlen(system_text);
        if (n > 0 && system_text[n - 1] == '\n') system_text[n - 1] = 0; /* as llama-cli */
    } else if (system) {
        system_text = strdup(system);
    }
    if (tmpl_path) tmpl = tmpl_text = cli_file("--chat-template-file", tmpl_path);
    char *prefix_text = strdup(in_prefix), *suffix_text = strdup(in_suffix);
    char *reverse_text[MAX_REVERSE];
    for (size_t k = 0; k < out.n_reverse; k++) out.reverse[k] = reverse_text[k] = strdup(out.reverse[k]);
    if (escape) {
        if (prompt_text) ex_unescape(prompt_text);
        ex_unescape(prefix_text);
        ex_unescape(suffix_text);
        for (size_t k = 0; k < out.n_reverse; k++) ex_unescape(reverse_text[k]);
    }
    const char *prompt_s = prompt_text ? prompt_text : "";

    /* ---- load ---- */
    double t0 = now_ms();
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    ex_run_model_params(&run, &mp);
    bitnet_model *model = NULL;
    bitnet_status st = bitnet_model_load(run.model, &mp, &model);
    if (st != BITNET_OK) ex_die_status("bitnet-cli", run.model, st);
    double t_load = now_ms() - t0;
    fprintf(stderr, "bitnet-cli: %s (loaded in %.0f ms)\n", bitnet_model_desc(model), t_load);
    if (ex_run_after_load(&run, model)) { /* --screen refused: the message is printed */
        free(prompt_text), free(system_text), free(tmpl_text), free(prefix_text), free(suffix_text);
        for (size_t k = 0; k < out.n_reverse; k++) free(reverse_text[k]);
        bitnet_model_free(model);
        return 1;
    }
    out.m = model;
    out.special = special;

    if (run.seed_random) {
        run.seed = ex_random_seed();
        fprintf(stderr, "bitnet-cli: seed %llu\n", (unsigned long long)run.seed);
    }
    bitnet_session_params pp;
    bitnet_session_default_params(&pp, sizeof pp);
    ex_run_session_params(&run, &pp);
    pp.logits_all = logits_out != NULL;
    pp.embeddings = embedding && eo.pooling == BITNET_POOLING_NONE;
    bitnet_session *s = NULL;
    st = bitnet_session_create(model, &pp, &s);
    if (st != BITNET_OK) ex_die_status("bitnet-cli", "creating the session", st);
    if (ex_spec_on(&spec) && (embedding || beams > 1))
        ex_usage_error("--lookup / -md apply to sampling and greedy generation, not to %s",
                       embedding ? "--embedding" : "--beams");
    ex_spec_setup(&spec, &run, s);

    if (embedding) {
        int rc = cli_embd_run(model, s, prompt_s, no_bos, &eo);
        bitnet_session_free(s);
        bitnet_model_free(model);
        free(prompt_text), free(system_text), free(tmpl_text), free(prefix_text), free(suffix_text);
        for (size_t k = 0; k < out.n_reverse; k++) free(reverse_text[k]);
        return rc;
    }

    if (conversation) {
        const char *sys_prompt = system_text ? system_text : prompt_s;
        int rc = ex_chat_loop(model, s, sys_prompt, tmpl, &sp, (int32_t)n_predict, stdin, 0);
        bitnet_session_free(s);
        ex_spec_free(&spec);
        bitnet_model_free(model);
        free(prompt_text), free(system_text), free(tmpl_text), free(prefix_text), free(suffix_text);
        for (size_t k = 0; k < out.n_reverse; k++) free(reverse_text[k]);
        return rc;
    }

    int rc = 1;
    bitnet_token *toks = NULL;
    /* ---- prompt ---- */
    uint32_t flags = BITNET_TOKENIZE_PARSE_SPECIAL | (no_bos ? 0u : BITNET_TOKENIZE_ADD_BOS);
    size_t n_prompt = 0;
    toks = cli_tokenize(model, prompt_s, strlen(prompt_s), flags, &n_prompt);
    if (n_prompt == 0 && !interactive) {
        ex_error("the prompt is empty (and the model adds no BOS): nothing to evaluate");
        goto done;
    }
    if (n_prompt > bitnet_session_n_ctx(s)) {
        ex_error("the prompt has %zu tokens but the context holds %u (use -c)", n_prompt, bitnet_session_n_ctx(s));
        goto done;
    }
    fprintf(stderr, "bitnet-cli: prompt: %zu tokens\n", n_prompt);
    if (verbose_prompt) {
        fprintf(stderr, "bitnet-cli: prompt: '%s'\n", prompt_s);
        for (size_t i = 0; i < n_prompt; i++) {
            char piece[256];
            size_t nb = 0;
            bitnet_status dst = bitnet_detokenize(model, &toks[i], 1, BITNET_DETOK_RENDER_SPECIAL |
                                                  BITNET_DETOK_KEEP_LEADING_SPACE, piece, sizeof piece - 1, &nb);
            piece[dst == BITNET_OK ? nb : 0] = 0;
            fprintf(stderr, "%6d -> '%s'\n", (int)toks[i], piece);
        }
    }
    if (display && n_prompt) {
        /* the prompt as its tokens read back, like llama-cli's echo */
        uint32_t df = special ? BITNET_DETOK_RENDER_SPECIAL : 0;
        size_t nb = 0;
        st = bitnet_detokenize(model, toks, n_prompt, df, NULL, 0, &nb);
        char *echo = malloc(nb + 1);
        if (!echo) ex_fail("out of memory");
        if (st == BITNET_OK || st == BITNET_E_BUFFER_TOO_SMALL) st = bitnet_detokenize(model, toks, n_prompt, df, echo, nb, &nb);
        if (st != BITNET_OK) ex_die_status("bitnet-cli", "echoing the prompt", st);
        if (color) fputs(COLOR_PROMPT, stdout);
        fwrite(echo, 1, nb, stdout);
        if (color) fputs(COLOR_RESET, stdout);
        fflush(stdout);
        free(echo);
    }

    t0 = now_ms();
    double t_prompt = 0;
    if (n_prompt) {
        st = bitnet_session_eval(s, toks, n_prompt);
        if (st != BITNET_OK) ex_die_status("bitnet-cli", "evaluating the prompt", st);
    }
    t_prompt = now_ms() - t0;

    if (logits_out) {
        FILE *f = fopen(logits_out, "wb");
        if (!f) {
            ex_error("cannot open '%s' for writing: %s", logits_out, strerror(errno));
            goto done;
        }
        size_t n_vocab = (size_t)bitnet_model_get_info(model, BITNET_INFO_N_VOCAB);
        for (size_t i = 0; i < n_prompt; i++) {
            const float *l = NULL;
            st = bitnet_session_logits(s, (int32_t)i, &l);
            if (st != BITNET_OK) ex_die_status("bitnet-cli", "reading logits", st);
            if (fwrite(l, sizeof *l, n_vocab, f) != n_vocab) {
                ex_error("writing '%s' failed", logits_out);
                fclose(f);
                goto done;
            }
        }
        if (fclose(f) != 0) {
            ex_error("writing '%s' failed", logits_out);
            goto done;
        }
        fprintf(stderr, "bitnet-cli: wrote %zu x %zu logits to %s\n", n_prompt, n_vocab, logits_out);
    }

    /* ---- generate ---- */
    size_t n_gen = 0;
    bitnet_stop_reason why = BITNET_STOP_NONE;
    t0 = now_ms();
    if (n_predict != 0 && beams > 0) {
        size_t cap = n_predict > 0 ? (size_t)n_predict : bitnet_session_n_ctx(s);
        bitnet_token *bout = malloc((cap ? cap : 1) * sizeof *bout);
        if (!bout) goto done;
        st = bitnet_session_beam_search(s, NULL, 0, (uint32_t)beams, (int32_t)n_predict, bout, cap, &n_gen);
        if (st != BITNET_OK) ex_die_status("bitnet-cli", "beam search", st);
        size_t nb = 0;
        st = bitnet_detokenize(model, bout, n_gen < cap ? n_gen : cap, BITNET_DETOK_KEEP_LEADING_SPACE, NULL, 0, &nb);
        char *text = malloc(nb + 1);
        if (!text) goto done;
        if (st == BITNET_OK || st == BITNET_E_BUFFER_TOO_SMALL)
            st = bitnet_detokenize(model, bout, n_gen < cap ? n_gen : cap, BITNET_DETOK_KEEP_LEADING_SPACE, text, nb,
                                   &nb);
        if (st != BITNET_OK) ex_die_status("bitnet-cli", "detokenizing", st);
        fwrite(text, 1, nb, stdout);
        free(text);
        free(bout);
    } else if (n_predict != 0 || interactive) {
        if (interactive) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = cli_on_sigint; /* no SA_RESTART: Ctrl-C at the prompt ends the input */
            sigemptyset(&sa.sa_mask);
            sigaction(SIGINT, &sa, NULL);
        }
        gp.max_tokens = (int32_t)n_predict;
        gp.callback = cli_stream;
        gp.user = &out;
        bitnet_token *pending = NULL; /* tokens to evaluate before the next answer */
        size_t n_pending = 0;
        int need_input = interactive_first || n_prompt == 0;
        for (;;) {
            if (!need_input && n_predict != 0) {
                size_t got = 0;
                out.hit = -1;
                cli_interrupted = 0;
                st = bitnet_session_generate(s, pending, n_pending, &sp, &gp, NULL, 0, &got, &why);
                n_gen += got;
                free(pending);
                pending = NULL;
                n_pending = 0;
                if (st == BITNET_E_CONTEXT_FULL) {
                    fprintf(stderr, "\n");
                    ex_error("the context is full (%u tokens): use -c", bitnet_session_n_ctx(s));
                    why = BITNET_STOP_CONTEXT;
                    break;
                }
                if (st != BITNET_OK) ex_die_status("bitnet-cli", "generating", st);
                if (why == BITNET_STOP_CONTEXT || !interactive) break;
                if (why == BITNET_STOP_EOG && out.n_reverse > 0) {
                    /* as llama-cli: the first reverse prompt follows an end of text */
                    fputs(out.reverse[0], stdout);
                    cli_append_text(model, &pending, &n_pending, out.reverse[0], BITNET_TOKENIZE_PARSE_SPECIAL);
                }
            } else if (!need_input) {
                break; /* -n 0 */
            }
            need_input = 0;
            /* ---- the user's turn ---- */
            fputs(prefix_text, stdout);
            if (color) fputs(COLOR_INPUT, stdout);
            fflush(stdout);
            cli_out line;
            memset(&line, 0, sizeof line);
            cli_out_add(&line, "", 0);
            cli_interrupted = 0;
            int ok = cli_read_input(&line, multiline);
            if (color) fputs(COLOR_RESET, stdout);
            fflush(stdout);
            out.n = 0; /* reverse prompts are looked for in what follows */
            if (!ok) {
                free(line.text);
                break; /* end of input or Ctrl-C */
            }
            if (line.n > 1 || (line.n == 1 && line.text[0] != '\n')) {
                fputs(suffix_text, stdout);
                if (escape) line.n = ex_unescape(line.text);
                if (prefix_bos && bitnet_token_bos(model) >= 0) {
                    bitnet_token bos = bitnet_token_bos(model);
                    cli_append(&pending, &n_pending, &bos, 1);
                }
                cli_append_text(model, &pending, &n_pending, prefix_text, BITNET_TOKENIZE_PARSE_SPECIAL);
                cli_append_text(model, &pending, &n_pending, line.text, 0);
                cli_append_text(model, &pending, &n_pending, suffix_text, BITNET_TOKENIZE_PARSE_SPECIAL);
            }
            free(line.text);
            /* an empty line hands control back; with nothing to continue from, ask again */
            if (n_pending == 0 && bitnet_session_n_past(s) == 0) need_input = 1;
        }
        free(pending);
    }
    double t_gen = now_ms() - t0;
    /* stdout holds exactly the echo and the generated text; the line break for the
     * terminal goes to stderr with the summary */
    fflush(stdout);
    static const char *const reasons[] = {"", "max tokens", "end of text", "stop string", "stopped", "context full"};
    const char *reason = out.hit >= 0 ? "reverse prompt" : why ? reasons[why] : "";
    char spec_line[256];
    ex_spec_stats(&spec, s, spec_line, sizeof spec_line);
    if (run.screen > 0) { /* --screen: how often the screening copy stood in for the F16 layer */
        uint64_t n_scr = 0, n_res = 0, n_full = 0;
        bitnet_session_screen_stats(s, &n_scr, &n_res, &n_full);
        size_t l = strlen(spec_line);
        snprintf(spec_line + l, sizeof spec_line - l, " | screened %llu steps, %llu tokens re-scored, %llu full passes",
                 (unsigned long long)n_scr, (unsigned long long)n_res, (unsigned long long)n_full);
    }
    if (perf)
        fprintf(stderr, "%sbitnet-cli: load %.0f ms | prompt %zu tokens in %.1f ms (%.2f tok/s) | generation %zu "
                        "tokens in %.1f ms (%.2f tok/s)%s%s%s\n",
                n_predict != 0 || interactive ? "\n" : "", t_load, n_prompt, t_prompt,
                t_prompt > 0 ? 1e3 * (double)n_prompt / t_prompt : 0.0, n_gen, t_gen,
                t_gen > 0 && n_gen ? 1e3 * (double)n_gen / t_gen : 0.0, *reason ? ", stopped by " : "", reason,
                spec_line);
    else if (n_predict != 0 || interactive)
        fputc('\n', stderr);
    rc = 0;
done: /* every exit after the session exists frees it all (LeakSanitizer runs the smoke tests) */
    free(toks);
    free(out.text);
    free(prompt_text), free(system_text), free(tmpl_text), free(prefix_text), free(suffix_text);
    for (size_t k = 0; k < out.n_reverse; k++) free(reverse_text[k]);
    bitnet_session_free(s);
    ex_spec_free(&spec);
    bitnet_model_free(model);
    return rc;
}
