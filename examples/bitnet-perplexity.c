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
 * Exit status: 0 success, 1 runtime error, 2 bad arguments.
 */
#include "args.h"

#include "bitnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: bitnet-perplexity -m MODEL -f TEXTFILE [options]\n"
               "  -m, --model FILE     GGUF model (required)\n"
               "  -f, --file FILE      UTF-8 text to score (required)\n"
               "  -c, --ctx-size N     tokens per chunk (default 512); the second half is scored\n"
               "  --chunks N           score at most N chunks (default: all)\n"
               "  -t, --threads N      worker threads (default: all CPUs)\n"
               "  -b, --batch-size N   tokens per evaluation step (default 512)\n"
               "  --kv-f32             keep the KV cache in f32 (default f16)\n"
               "  --arch NAME          override the architecture decision (bitnet-b1.58, bitnet, llama)\n"
               "  --pre NAME           override the BPE pre-tokenizer (llama-bpe, default, gpt2)\n"
               "  -h, --help           this text\n");
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *text_path = NULL;
    long long n_ctx = 512, max_chunks = -1, n_threads = 0, n_batch = 512;
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    int kv_f32 = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = ex_next(argc, argv, &i);
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) text_path = ex_next(argc, argv, &i);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) n_ctx = ex_parse_int(a, ex_next(argc, argv, &i), 4, 1 << 20);
        else if (!strcmp(a, "--chunks")) max_chunks = ex_parse_int(a, ex_next(argc, argv, &i), 1, 1LL << 40);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) n_threads = ex_parse_int(a, ex_next(argc, argv, &i), 0, 1024);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) n_batch = ex_parse_int(a, ex_next(argc, argv, &i), 1, 1 << 20);
        else if (!strcmp(a, "--kv-f32")) kv_f32 = 1;
        else if (!strcmp(a, "--arch")) mp.arch = ex_next(argc, argv, &i);
        else if (!strcmp(a, "--pre")) mp.pretokenizer = ex_next(argc, argv, &i);
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "error: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model_path || !text_path) {
        usage(stderr);
        return 2;
    }
    size_t text_len = 0;
    char *text = read_all(text_path, &text_len);
    if (!text) {
        fprintf(stderr, "error: cannot read %s\n", text_path);
        return 1;
    }
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(model_path, &mp, &m);
    if (st != BITNET_OK) {
        free(text);
        ex_die_status("bitnet-perplexity", "loading the model", st);
        return 1;
    }
    int rc = 1;
    bitnet_token *toks = NULL;
    bitnet_session *s = NULL;
    size_t n_tok = 0;
    /* tokenize: ask for the size first, then fill */
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
    long long n_chunks = (long long)n_tok / n_ctx;
    if (max_chunks > 0 && n_chunks > max_chunks) n_chunks = max_chunks;
    if (n_chunks < 1) {
        fprintf(stderr, "error: %s has %zu tokens, fewer than one chunk of %lld (use a smaller -c)\n", text_path, n_tok,
                n_ctx);
        goto done;
    }
    fprintf(stderr, "perplexity: %zu tokens, %lld chunks of %lld, scoring the second half of each\n", n_tok, n_chunks,
            n_ctx);

    bitnet_session_params sp;
    bitnet_session_default_params(&sp, sizeof sp);
    sp.n_ctx = (uint32_t)n_ctx;
    sp.n_threads = (uint32_t)n_threads;
    sp.n_batch = (uint32_t)n_batch;
    sp.logits_all = 1;
    sp.kv_type = kv_f32 ? BITNET_KV_F32 : BITNET_KV_F16;
    if ((st = bitnet_session_create(m, &sp, &s)) != BITNET_OK) {
        ex_die_status("bitnet-perplexity", "creating the session", st);
        goto done;
    }
    const int64_t n_vocab = bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    const bitnet_token bos = bitnet_token_bos(m);
    const int add_bos = bos >= 0 && n_tok > 0 && toks[0] == bos;
    const long long first = n_ctx / 2;
    double sum = 0, sum2 = 0;
    long long count = 0;
    for (long long c = 0; c < n_chunks; c++) {
        bitnet_token *chunk = toks + c * n_ctx;
        bitnet_token saved = chunk[0];
        if (add_bos) chunk[0] = bos; /* every chunk starts like a document */
        bitnet_session_reset(s);
        st = bitnet_session_eval(s, chunk, (size_t)n_ctx);
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
            sum += nll;
            sum2 += nll * nll;
            count++;
        }
        printf("[%lld]%.4f,", c + 1, exp(sum / (double)count));
        fflush(stdout);
    }
    double mean = sum / (double)count, var = sum2 / (double)count - mean * mean;
    double err = count > 1 && var > 0 ? sqrt(var / (double)(count - 1)) : 0;
    double ppl = exp(mean);
    printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, ppl * err);
    rc = 0;
done:
    bitnet_session_free(s);
    free(toks);
    bitnet_model_free(m);
    free(text);
    return rc;
}
