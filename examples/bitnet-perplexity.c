/*
 * bitnet-perplexity -- perplexity of a model over a text file, computed the way
 * llama-perplexity (and bitnet.cpp's test_perplexity.py, which runs it) does.  Public
 * API only.
 *
 *   bitnet-perplexity -m model.gguf -f wiki.test.raw [-c 512] [--chunks N]
 *
 * The whole file is tokenized once (BOS added if the model asks for it, special-token
 * texts not parsed).  It is cut into chunks of -c tokens (a remainder shorter than a
 * chunk is dropped); each chunk is evaluated from an empty context with its first token
 * replaced by BOS (when the model uses BOS), and only the second half is scored: for
 * j = c/2 .. c-2 the logits at j give the probability of token j+1, so every scored
 * token sees at least c/2 tokens of context.  With p the softmax of the logits,
 *   NLL = -log p[token],   PPL = exp(mean NLL over every scored token),
 * the ± value is PPL * standard error of the mean NLL (as llama-perplexity prints).
 * Running values "[i]ppl," go to stdout after each chunk, then the final line
 *   Final estimate: PPL = 8.1234 +/- 0.0567
 * Progress goes to stderr as llama-perplexity writes it (tokenization time, then after
 * the first chunk "X seconds per pass - ETA Y minutes"), plus a line every 30 seconds
 * with the chunk count, running perplexity and ETA when stdout is not a terminal.  A
 * -c larger than the model's training context gets a warning.
 * Exit status: 0 success, 1 runtime error, 2 bad arguments.
 */
#include "args.h"

#define BITNET_EXPERIMENTAL /* bitnet_model_set_output_screening (--output-int8) */
#include "bitnet.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f, "usage: bitnet-perplexity -m MODEL -f TEXTFILE [options]\n"
               "  -m, --model FILE     GGUF model (required)\n"
               "  -f, --file FILE      UTF-8 text to score (required)\n"
               "  -c, --ctx-size N     tokens per chunk (default 512); the second half is scored\n"
               "  --chunks N           score at most N chunks; -1 all (default: all)\n"
               "  -t, --threads N      worker threads; <= 0 all CPUs (default: all CPUs)\n"
               "  -b, --batch-size N   tokens per evaluation step (default 512)\n"
               "  --output-int8        lossy: compute the output layer from its int8 screening copy\n"
               "                       (F16 output layers; docs/performance.md)\n"
               "  --output-int6        lossy: the same with 6-bit levels (-31..31 per block of 64)\n"
               "  --agree              with --output-int8/-int6: also run the F16 output layer (a second\n"
               "                       copy of the model) and report its perplexity, the top-1 agreement\n"
               "                       and the mean KL divergence F16 || lossy over the scored tokens\n"
               "  --kv-f32             keep the KV cache in f32 (default f16; also -ctk f32 -ctv f32)\n"
               "  --no-mmap, --mlock   read the model into memory / lock it in RAM\n"
               "  --arch NAME          override the architecture decision (bitnet-b1.58, bitnet, llama)\n"
               "  --pre NAME           override the BPE pre-tokenizer (llama-bpe, default, gpt2)\n"
               "  -v, -lv N, --log-disable, --log-file F   library log messages\n"
               "  -h, --help           this text;  --version  the version\n"
               "Progress (seconds per chunk, ETA) goes to stderr, the running perplexity to stdout.\n"
               "llama.cpp's GPU and placement options (-ngl, -fa, ...) are accepted and have no effect.\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "11.80 minutes" or "1 hours 3.20 minutes", as llama-perplexity writes its ETA. */
static void print_eta(double seconds) {
    int hours = (int)(seconds / 3600);
    if (hours > 0) fprintf(stderr, "%d hours ", hours);
    fprintf(stderr, "%.2f minutes\n", (seconds - 3600.0 * hours) / 60.0);
}

enum { O_FILE = 1, O_CHUNKS, O_KV_F32, O_OUT_INT8, O_OUT_INT6, O_AGREE };

static const ex_opt ppl_opts[] = {
    {O_FILE, "-f|--file", EX_ARG, NULL},
    {O_CHUNKS, "--chunks", EX_ARG, NULL},
    {O_KV_F32, "--kv-f32", EX_NOARG, NULL},
    {O_OUT_INT8, "--output-int8", EX_NOARG, NULL},
    {O_OUT_INT6, "--output-int6", EX_NOARG, NULL},
    {O_AGREE, "--agree", EX_NOARG, NULL},
    {0, NULL, EX_NOARG, NULL},
};

static const ex_opt *const ppl_tables[] = {ppl_opts,        ex_opts_run,         ex_opts_std, ex_opts_log,
                                           ex_opts_ignored, ex_opts_unsupported, NULL};

int main(int argc, char **argv) {
    const char *text_path = NULL;
    long long max_chunks = -1;
    int out_int8 = 0, agree = 0; /* out_int8: the bitnet_screen_mode (0: off) */
    ex_run run;
    ex_run_init(&run);
    run.n_ctx = 512;
    ex_args a;
    ex_args_init(&a, "bitnet-perplexity", argc, argv, ppl_tables);
    for (int id; (id = ex_args_next(&a)) != EX_END;) {
        if (ex_run_apply(&a, id, &run)) continue;
        switch (id) {
        case EX_HELP: usage(stdout); return 0;
        case EX_POSITIONAL: ex_usage_error("unexpected argument '%s' (see bitnet-perplexity --help)", a.val);
        case O_FILE: text_path = a.val; break;
        case O_CHUNKS: max_chunks = ex_int(&a, -1, 1LL << 40); break;
        case O_KV_F32: run.kv_type = BITNET_KV_F32; break;
        case O_OUT_INT8: out_int8 = BITNET_SCREEN_INT8; break;
        case O_OUT_INT6: out_int8 = BITNET_SCREEN_INT6; break;
        case O_AGREE: agree = 1; break;
        default: ex_usage_error("option '%s' does not apply to bitnet-perplexity", a.opt);
        }
    }
    if (!run.model || !text_path) ex_usage_error("-m MODEL and -f TEXTFILE are required (see bitnet-perplexity --help)");
    if (agree && !out_int8) ex_usage_error("--agree compares a lossy output layer: give --output-int8 or --output-int6");
    if (run.n_ctx < 4) ex_usage_error("-c must be at least 4 for perplexity (got %lld)", run.n_ctx);
    if (max_chunks == 0) max_chunks = -1;
    const long long n_ctx = run.n_ctx;
    size_t text_len = 0;
    char *text = ex_read_file(text_path, &text_len);
    if (!text) ex_fail("-f: cannot read '%s': %s", text_path, strerror(errno));
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    ex_run_model_params(&run, &mp);
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(run.model, &mp, &m);
    if (st != BITNET_OK) {
        free(text);
        ex_die_status("bitnet-perplexity", run.model, st);
    }
    if (ex_run_after_load(&run, m)) {
        free(text);
        bitnet_model_free(m);
        return 1;
    }
    if (out_int8 && (st = bitnet_model_set_output_screening(m, (bitnet_screen_mode)out_int8)) != BITNET_OK) {
        free(text);
        bitnet_model_free(m);
        ex_die_status("bitnet-perplexity", out_int8 == BITNET_SCREEN_INT6 ? "--output-int6" : "--output-int8", st);
    }
    int rc = 1;
    bitnet_token *toks = NULL;
    bitnet_session *s = NULL, *s_ref = NULL;
    bitnet_model *m_ref = NULL; /* --agree: the same model with its F16 output layer */
    if (agree && (st = bitnet_model_load(run.model, &mp, &m_ref)) != BITNET_OK) {
        free(text);
        bitnet_model_free(m);
        ex_die_status("bitnet-perplexity", run.model, st);
    }
    size_t n_tok = 0;
    /* tokenize: ask for the size first, then fill */
    fprintf(stderr, "perplexity: tokenizing the input ..\n");
    double t_tok = now_s();
    st = bitnet_tokenize(m, text, text_len, BITNET_TOKENIZE_ADD_BOS, NULL, 0, &n_tok);
    if (st != BITNET_OK && st != BITNET_E_BUFFER_TOO_SMALL) {
        ex_die_status("bitnet-perplexity", "tokenizing", st);
        goto done;
    }
    toks = malloc((n_tok ? n_tok : 1) * sizeof *toks);
    if (!toks || (st = bitnet_tokenize(m, text, text_len, BITNET_TOKENIZE_ADD_BOS, toks, n_tok, &n_tok)) != BITNET_OK) {
        ex_die_status("bitnet-perplexity", "tokenizing", toks ? st : BITNET_E_NOMEM);
        goto done;
    }
    fprintf(stderr, "perplexity: tokenization took %.3f ms\n", (now_s() - t_tok) * 1e3);
    long long n_chunks = (long long)n_tok / n_ctx;
    if (max_chunks > 0 && n_chunks > max_chunks) n_chunks = max_chunks;
    if (n_chunks < 1) {
        ex_error("%s has %zu tokens, fewer than one chunk of %lld (use a smaller -c)", text_path, n_tok, n_ctx);
        goto done;
    }
    bitnet_session_params sp;
    bitnet_session_default_params(&sp, sizeof sp);
    ex_run_session_params(&run, &sp);
    sp.logits_all = 1;
    fprintf(stderr, "perplexity: %zu tokens; calculating perplexity over %lld chunks, n_ctx=%lld, batch_size=%u "
                    "(the second half of each chunk is scored)\n",
            n_tok, n_chunks, n_ctx, (unsigned)((long long)sp.n_batch < n_ctx ? (long long)sp.n_batch : n_ctx));
    if ((st = bitnet_session_create(m, &sp, &s)) != BITNET_OK ||
        (m_ref && (st = bitnet_session_create(m_ref, &sp, &s_ref)) != BITNET_OK)) {
        ex_die_status("bitnet-perplexity", "creating the session", st);
        goto done;
    }
    const int64_t n_vocab = bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    const bitnet_token bos = bitnet_token_bos(m);
    const int add_bos = bos >= 0 && n_tok > 0 && toks[0] == bos;
    const long long first = n_ctx / 2;
    double sum = 0, sum2 = 0, sum_ref = 0, sum_kl = 0;
    long long count = 0, same_top1 = 0;
    /* Progress: like llama-perplexity, the time of one chunk and the ETA after the first;
     * and when stdout (the running values) is not a terminal, a line every 30 seconds. */
    const int quiet_stdout = !isatty(STDOUT_FILENO);
    const double t_start = now_s();
    double t_report = t_start;
    for (long long c = 0; c < n_chunks; c++) {
        bitnet_token *chunk = toks + c * n_ctx;
        bitnet_token saved = chunk[0];
        if (add_bos) chunk[0] = bos; /* every chunk starts like a document */
        bitnet_session_reset(s);
        st = bitnet_session_eval(s, chunk, (size_t)n_ctx);
        if (st == BITNET_OK && s_ref) {
            bitnet_session_reset(s_ref);
            st = bitnet_session_eval(s_ref, chunk, (size_t)n_ctx);
        }
        chunk[0] = saved;
        if (st != BITNET_OK) {
            ex_die_status("bitnet-perplexity", "evaluating", st);
            goto done;
        }
        for (long long j = first; j < n_ctx - 1; j++) {
            const float *lg;
            if ((st = bitnet_session_logits(s, (int32_t)j, &lg)) != BITNET_OK) {
                ex_die_status("bitnet-perplexity", "reading logits", st);
                goto done;
            }
            /* log-softmax in double: nll = log(sum exp(l - max)) - (l[t] - max) */
            float mx = lg[0];
            for (int64_t v = 1; v < n_vocab; v++)
                if (lg[v] > mx) mx = lg[v];
            double se = 0;
            for (int64_t v = 0; v < n_vocab; v++) se += exp((double)lg[v] - mx);
            double nll = log(se) - ((double)lg[chunk[j + 1]] - mx);
            if (s_ref) { /* the F16 layer's row: its nll, its argmax, KL(F16 || lossy) */
                const float *lr;
                if ((st = bitnet_session_logits(s_ref, (int32_t)j, &lr)) != BITNET_OK) {
                    ex_die_status("bitnet-perplexity", "reading logits", st);
                    goto done;
                }
                int64_t am = 0, ar = 0;
                float mr = lr[0];
                for (int64_t v = 1; v < n_vocab; v++) {
                    if (lg[v] > lg[am]) am = v;
                    if (lr[v] > mr) mr = lr[v], ar = v;
                }
                double ser = 0;
                for (int64_t v = 0; v < n_vocab; v++) ser += exp((double)lr[v] - mr);
                const double lzr = log(ser), lz = log(se);
                double kl = 0;
                for (int64_t v = 0; v < n_vocab; v++) {
                    const double lpr = (double)lr[v] - mr - lzr, lp = (double)lg[v] - mx - lz;
                    kl += exp(lpr) * (lpr - lp);
                }
                sum_ref += lzr - ((double)lr[chunk[j + 1]] - mr);
                sum_kl += kl;
                same_top1 += am == ar;
            }
            sum += nll;
            sum2 += nll * nll;
            count++;
        }
        double t_now = now_s();
        if (c == 0) {
            fprintf(stderr, "perplexity: %.2f seconds per pass - ETA ", t_now - t_start);
            print_eta((t_now - t_start) * (double)n_chunks);
        } else if (quiet_stdout && t_now - t_report >= 30.0 && c + 1 < n_chunks) {
            double per = (t_now - t_start) / (double)(c + 1);
            fprintf(stderr, "perplexity: [%lld/%lld] ppl %.4f, %.1f s per chunk - ETA ", c + 1, n_chunks,
                    exp(sum / (double)count), per);
            print_eta(per * (double)(n_chunks - c - 1));
            t_report = t_now;
        }
        printf("[%lld]%.4f,", c + 1, exp(sum / (double)count));
        fflush(stdout);
    }
    double mean = sum / (double)count, var = sum2 / (double)count - mean * mean;
    double err = count > 1 && var > 0 ? sqrt(var / (double)(count - 1)) : 0;
    double ppl = exp(mean);
    printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, ppl * err);
    if (s_ref)
        printf("F16 output layer: PPL = %.4f   top-1 agreement %lld/%lld (%.2f%%)   mean KL(F16 || %s) = %.6f\n",
               exp(sum_ref / (double)count), same_top1, count, 100.0 * (double)same_top1 / (double)count,
               out_int8 == BITNET_SCREEN_INT6 ? "int6" : "int8", sum_kl / (double)count);
    rc = 0;
done:
    bitnet_session_free(s);
    bitnet_session_free(s_ref);
    free(toks);
    bitnet_model_free(m);
    bitnet_model_free(m_ref);
    free(text);
    return rc;
}
