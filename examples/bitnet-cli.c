/*
 * bitnet-cli -- run a prompt through a model and print the continuation (the job of
 * bitnet.cpp's run_inference.py / llama-cli).  Public API only.
 *
 *   bitnet-cli -m model.gguf -p "Once upon a time" -n 64 --temp 0
 *
 * Generated text goes to stdout, everything else (model info, timings, errors) to
 * stderr.  The prompt is tokenized with BOS (if the model asks for it) and special
 * tokens recognised.  --logits-out writes the float32 logits of every prompt position
 * (n_prompt x n_vocab, row-major, little-endian as in memory) for verification; with
 * -n 0 nothing is generated.  -cnv runs a conversation with the model's chat template,
 * -p being the system prompt.  Exit status: 0 success, 1 runtime error, 2 bad arguments.
 */
#include "args.h"

#define BITNET_EXPERIMENTAL /* bitnet_session_beam_search (--beams) */
#include "bitnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitnet-cli -m MODEL [-p PROMPT] [options]\n"
            "  -m, --model FILE        GGUF model (required)\n"
            "  -p, --prompt TEXT       prompt (in -cnv mode: the system prompt)\n"
            "  -f, --file FILE         read the prompt from a file\n"
            "  -n, --n-predict N       tokens to generate; -1 until end of text (default 128)\n"
            "  -t, --threads N         worker threads (default: all CPUs)\n"
            "  -c, --ctx-size N        context window (default: the model's, at most 4096)\n"
            "  -s, --seed S            sampler seed (default 0x5eed)\n"
            "%s"
            "  --beams N               beam search with N beams instead of sampling\n"
            "  -cnv, --conversation    chat with the model's template (stdin lines are user turns)\n"
            "  --chat-template NAME    override the chat template (bitnet, llama3, chatml, plain)\n"
            "  --logits-out FILE       write float32 logits of every prompt position\n"
            "  --no-bos                do not add BOS to the prompt\n"
            "  --arch NAME             override the architecture decision (bitnet-b1.58, bitnet, llama)\n"
            "  -h, --help              this text\n",
            ex_sampling_help);
}

static int stream_out(void *user, bitnet_token t, const char *text, size_t len) {
    (void)user;
    (void)t;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) { free(buf); buf = NULL; break; }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL, *logits_out = NULL, *tmpl = NULL,
               *arch = NULL;
    long long n_predict = 128, n_threads = 0, n_ctx = 0, beams = 0;
    uint64_t seed = 0x5eed;
    int conversation = 0, no_bos = 0;
    bitnet_sampler_params sp;
    bitnet_sampler_default_params(&sp, sizeof sp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (ex_parse_sampling(argc, argv, &i, &sp)) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = ex_next(argc, argv, &i);
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = ex_next(argc, argv, &i);
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) prompt_file = ex_next(argc, argv, &i);
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) n_predict = ex_parse_int(a, ex_next(argc, argv, &i), -1, INT32_MAX);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) n_threads = ex_parse_int(a, ex_next(argc, argv, &i), 0, 4096);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) n_ctx = ex_parse_int(a, ex_next(argc, argv, &i), 0, 1 << 24);
        else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) seed = (uint64_t)ex_parse_int(a, ex_next(argc, argv, &i), 0, INT64_MAX);
        else if (!strcmp(a, "--beams")) beams = ex_parse_int(a, ex_next(argc, argv, &i), 1, 64);
        else if (!strcmp(a, "-cnv") || !strcmp(a, "--conversation")) conversation = 1;
        else if (!strcmp(a, "--chat-template")) tmpl = ex_next(argc, argv, &i);
        else if (!strcmp(a, "--logits-out")) logits_out = ex_next(argc, argv, &i);
        else if (!strcmp(a, "--no-bos")) no_bos = 1;
        else if (!strcmp(a, "--arch")) arch = ex_next(argc, argv, &i);
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "error: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!model_path) {
        fprintf(stderr, "error: -m MODEL is required (see --help)\n");
        return 2;
    }
    if (prompt && prompt_file) {
        fprintf(stderr, "error: give either -p or -f, not both\n");
        return 2;
    }
    if (conversation && (logits_out || beams)) {
        fprintf(stderr, "error: -cnv cannot be combined with --logits-out or --beams\n");
        return 2;
    }
    char *file_text = NULL;
    if (prompt_file) {
        file_text = read_file(prompt_file);
        if (!file_text) {
            fprintf(stderr, "error: cannot read prompt file '%s'\n", prompt_file);
            return 1;
        }
        prompt = file_text;
    }
    if (!prompt) prompt = "";

    /* ---- load ---- */
    double t0 = now_ms();
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    mp.arch = arch;
    bitnet_model *model = NULL;
    bitnet_status st = bitnet_model_load(model_path, &mp, &model);
    if (st != BITNET_OK) ex_die_status("bitnet-cli", model_path, st);
    double t_load = now_ms() - t0;
    fprintf(stderr, "bitnet-cli: %s (loaded in %.0f ms)\n", bitnet_model_desc(model), t_load);

    bitnet_session_params pp;
    bitnet_session_default_params(&pp, sizeof pp);
    pp.n_ctx = (uint32_t)n_ctx;
    pp.n_threads = (uint32_t)n_threads;
    pp.seed = seed;
    pp.logits_all = logits_out != NULL;
    bitnet_session *s = NULL;
    st = bitnet_session_create(model, &pp, &s);
    if (st != BITNET_OK) ex_die_status("bitnet-cli", "creating the session", st);

    if (conversation) {
        int rc = ex_chat_loop(model, s, prompt, tmpl, &sp, (int32_t)n_predict, stdin, 0);
        bitnet_session_free(s);
        bitnet_model_free(model);
        free(file_text);
        return rc;
    }

    int rc = 1;
    bitnet_token *toks = NULL;
    /* ---- prompt ---- */
    uint32_t flags = BITNET_TOKENIZE_PARSE_SPECIAL | (no_bos ? 0u : BITNET_TOKENIZE_ADD_BOS);
    size_t n_prompt = 0;
    st = bitnet_tokenize(model, prompt, strlen(prompt), flags, NULL, 0, &n_prompt);
    if (st != BITNET_OK && st != BITNET_E_BUFFER_TOO_SMALL) ex_die_status("bitnet-cli", "tokenizing the prompt", st);
    toks = malloc((n_prompt ? n_prompt : 1) * sizeof *toks);
    if (!toks) goto done;
    st = bitnet_tokenize(model, prompt, strlen(prompt), flags, toks, n_prompt, &n_prompt);
    if (st != BITNET_OK) ex_die_status("bitnet-cli", "tokenizing the prompt", st);
    if (n_prompt == 0) {
        fprintf(stderr, "bitnet-cli: the prompt is empty (and the model adds no BOS): nothing to evaluate\n");
        goto done;
    }
    if (n_prompt > bitnet_session_n_ctx(s)) {
        fprintf(stderr, "bitnet-cli: the prompt has %zu tokens but the context holds %u (use -c)\n", n_prompt,
                bitnet_session_n_ctx(s));
        goto done;
    }
    fprintf(stderr, "bitnet-cli: prompt: %zu tokens\n", n_prompt);

    t0 = now_ms();
    st = bitnet_session_eval(s, toks, n_prompt);
    if (st != BITNET_OK) ex_die_status("bitnet-cli", "evaluating the prompt", st);
    double t_prompt = now_ms() - t0;

    if (logits_out) {
        FILE *f = fopen(logits_out, "wb");
        if (!f) {
            fprintf(stderr, "bitnet-cli: cannot open '%s' for writing\n", logits_out);
            goto done;
        }
        size_t n_vocab = (size_t)bitnet_model_get_info(model, BITNET_INFO_N_VOCAB);
        for (size_t i = 0; i < n_prompt; i++) {
            const float *l = NULL;
            st = bitnet_session_logits(s, (int32_t)i, &l);
            if (st != BITNET_OK) ex_die_status("bitnet-cli", "reading logits", st);
            if (fwrite(l, sizeof *l, n_vocab, f) != n_vocab) {
                fprintf(stderr, "bitnet-cli: writing '%s' failed\n", logits_out);
                fclose(f);
                goto done;
            }
        }
        if (fclose(f) != 0) {
            fprintf(stderr, "bitnet-cli: writing '%s' failed\n", logits_out);
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
        bitnet_token *out = malloc((cap ? cap : 1) * sizeof *out);
        if (!out) goto done;
        st = bitnet_session_beam_search(s, NULL, 0, (uint32_t)beams, (int32_t)n_predict, out, cap, &n_gen);
        if (st != BITNET_OK) ex_die_status("bitnet-cli", "beam search", st);
        size_t nb = 0;
        st = bitnet_detokenize(model, out, n_gen < cap ? n_gen : cap, 0, NULL, 0, &nb);
        char *text = malloc(nb + 1);
        if (!text) goto done;
        if (st == BITNET_OK || st == BITNET_E_BUFFER_TOO_SMALL)
            st = bitnet_detokenize(model, out, n_gen < cap ? n_gen : cap, 0, text, nb, &nb);
        if (st != BITNET_OK) ex_die_status("bitnet-cli", "detokenizing", st);
        fwrite(text, 1, nb, stdout);
        free(text);
        free(out);
    } else if (n_predict != 0) {
        bitnet_generate_params gp;
        bitnet_generate_default_params(&gp, sizeof gp);
        gp.max_tokens = (int32_t)n_predict;
        gp.callback = stream_out;
        st = bitnet_session_generate(s, NULL, 0, &sp, &gp, NULL, 0, &n_gen, &why);
        if (st != BITNET_OK) ex_die_status("bitnet-cli", "generating", st);
    }
    double t_gen = now_ms() - t0;
    /* stdout holds exactly the generated text; the line break for the terminal goes to
     * stderr with the summary */
    fflush(stdout);
    static const char *const reasons[] = {"", "max tokens", "end of text", "stop string", "stopped", "context full"};
    fprintf(stderr, "%sbitnet-cli: load %.0f ms | prompt %zu tokens in %.1f ms (%.2f tok/s) | generation %zu tokens in "
                    "%.1f ms (%.2f tok/s)%s%s\n",
            n_predict != 0 ? "\n" : "", t_load, n_prompt, t_prompt,
            t_prompt > 0 ? 1e3 * (double)n_prompt / t_prompt : 0.0, n_gen, t_gen,
            t_gen > 0 && n_gen ? 1e3 * (double)n_gen / t_gen : 0.0, why ? ", stopped by " : "",
            why ? reasons[why] : "");
    rc = 0;
done: /* every exit after the session exists frees it all (LeakSanitizer runs the smoke tests) */
    free(toks);
    free(file_text);
    bitnet_session_free(s);
    bitnet_model_free(model);
    return rc;
}
