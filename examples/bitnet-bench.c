/*
 * bitnet-bench -- prompt-processing and generation speed of a model (the job of
 * llama-bench / bitnet.cpp's e2e_benchmark.py), through the public API only.
 *
 *   bitnet-bench -m MODEL [-p 128,512] [-n 128] [-t 1,2] [-r 5] [-o table|json|csv|md]
 *                [--isa auto|amx|avx512|avxvnni|avx2|neon|scalar] [--bandwidth [MB]] [--streams 1,2,4,8,16]
 *                [--beams 4] [--embd 32,128,512]
 *
 * Method (as llama-bench): random token ids (fixed seed), a fresh context per run.
 *   pp N: one bitnet_session_eval of N tokens; tokens/s = N / time.
 *   tg N: N single-token evals after a one-token start; tokens/s = N / time (no
 *         sampling, so the number is the forward pass alone).
 *   tg N with --streams S: S sessions decode together through one bitnet_batch (one
 *         forward step per token for all of them, after a one-token start each);
 *         reported as the aggregate S*N / time and the per-stream N / time.
 *   tg N with --beams B: beam search with B beams for N tokens after a one-token
 *         prompt (EOG tokens are masked out of the count: a beam may end early, the
 *         rate is tokens of the best sequence / time).
 *   embd N with --embd N: one pooled sentence embedding (bitnet_session_embed: the
 *         model's pooling, L2, no output layer) of an N-token input; reported as
 *         tokens/s = N / time, and texts/s = 1 / time.  (llama-bench's -embd 0|1 is a
 *         different option, accepted and ignored.)
 *   --spec lookup|draft (with -md DRAFT.gguf for draft): greedy generation of -n tokens
 *         with bitnet_session_generate, plain and with speculation, runs alternating,
 *         on two prompts: "grounded" -- a passage S, the model's own greedy continuation
 *         G of it, then S again, so that continuing it means repeating text that is in
 *         the input (what rewriting or quoting a document does) -- and "open" -- a
 *         random prompt, nothing to copy.  Reports tokens/s of the generation alone
 *         (prompt evaluated before the clock starts) for both, their ratio, drafted /
 *         accepted tokens and whether the tokens are identical.
 * Each test runs once untimed (warm-up), then -r times; the median, min and max of the
 * per-run tokens/s are reported.  Load time and peak RSS (VmHWM) are reported too.
 * --bandwidth measures streaming read bandwidth at each -t thread count over a buffer
 * much larger than the caches and prints the decode roofline: bandwidth / bytes of weights
 * held in memory (every weight is read once per generated token; the tied embedding
 * is the output layer, so it counts once).
 *
 * Output (-o): table (ours: median/min/max), json (one object per line; jsonl is the
 * same), and llama-bench's csv and md: the csv columns carry llama-bench's field names
 * (build_commit, cpu_info, model_filename, model_type, model_size, model_n_params,
 * n_batch, n_threads, type_k, n_prompt, n_gen, test_time, avg_ns, stddev_ns, avg_ts,
 * stddev_ts, ...) followed by ours (isa, streams, beams, tps_median/min/max); md is
 * llama-bench's table (model, size, params, backend, threads, test, t/s = mean ± sample
 * standard deviation over the runs).  llama-bench's GPU options (-ngl, -fa, -sm, -mg,
 * -ts, -nkvo, ...) are accepted and have no effect (one note on stderr).
 */
#include "args.h"

#define BITNET_EXPERIMENTAL /* bitnet_batch_* (--streams), bitnet_session_beam_search (--beams), speculation,
                               bitnet_session_embed (--embd) */
#include "bitnet.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_LIST 16

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_list(const char *opt, const char *s, long long min, long long max, int *out) {
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == MAX_LIST) ex_usage_error("%s: at most %d values", opt, MAX_LIST);
        out[n++] = (int)ex_parse_int(opt, tok, min, max);
    }
    return n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Peak resident set size in MiB (VmHWM), or -1. */
static double peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    double kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kb = atof(line + 6);
    fclose(f);
    return kb < 0 ? -1 : kb / 1024.0;
}

/* Start the peak (VmHWM) afresh from the current RSS (Linux: "5" to /proc/self/clear_refs),
 * so that the read-bandwidth probe's buffer is not counted as the model's. */
static void reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    (void)fputs("5", f);
    (void)fclose(f);
}

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t rnd32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Streaming read bandwidth in GB/s with `threads` threads (median of 7 passes): each
 * thread sums its own contiguous share of the buffer, timed from a common start to the
 * last one's end, the way the decode threads share the rows of a matrix. */
typedef struct bw_part {
    const uint64_t    *p;
    size_t             n;
    uint64_t           sum;
    pthread_barrier_t *start;
} bw_part;

static void bw_sum(bw_part *b) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (size_t i = 0; i + 8 <= b->n; i += 8) {
        a0 += b->p[i]; a1 += b->p[i + 1]; a2 += b->p[i + 2]; a3 += b->p[i + 3];
        a4 += b->p[i + 4]; a5 += b->p[i + 5]; a6 += b->p[i + 6]; a7 += b->p[i + 7];
    }
    b->sum = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

static void *bw_worker(void *v) {
    bw_part *b = v;
    pthread_barrier_wait(b->start);
    bw_sum(b);
    return NULL;
}

static double bandwidth_gbs(size_t mb, int threads) {
    enum { MAX_BW_THREADS = 64 };
    if (threads > MAX_BW_THREADS) threads = MAX_BW_THREADS;
    size_t n = mb * 1024 * 1024 / sizeof(uint64_t);
    uint64_t *buf = malloc(n * sizeof *buf);
    if (!buf) return -1;
    for (size_t i = 0; i < n; i++) buf[i] = i * 0x9e3779b97f4a7c15ull; /* touch every page */
    double r[7];
    volatile uint64_t sink = 0;
    for (int pass = 0; pass < 8; pass++) {
        bw_part part[MAX_BW_THREADS];
        pthread_t tid[MAX_BW_THREADS];
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)threads);
        const size_t share = n / (size_t)threads / 8 * 8;
        int started = 1;
        for (int t = 0; t < threads; t++) {
            part[t] = (bw_part){buf + (size_t)t * share, t == threads - 1 ? n - (size_t)t * share : share, 0, &start};
            if (t > 0 && pthread_create(&tid[t], NULL, bw_worker, &part[t]) != 0) break;
            if (t > 0) started++;
        }
        if (started < threads) { /* could not start them all: no figure */
            for (int t = 1; t < started; t++) pthread_cancel(tid[t]);
            free(buf);
            return -1;
        }
        pthread_barrier_wait(&start);
        double t0 = now_s();
        bw_sum(&part[0]);
        for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
        double dt = now_s() - t0;
        pthread_barrier_destroy(&start);
        for (int t = 0; t < threads; t++) sink += part[t].sum;
        if (pass > 0) r[pass - 1] = (double)(n * sizeof *buf) / dt / 1e9; /* pass 0 warms up */
    }
    (void)sink;
    free(buf);
    qsort(r, 7, sizeof r[0], cmp_double);
    return r[3];
}

/* Milliseconds to map and first touch `bytes` of fresh anonymous memory (huge pages
 * asked for, as the library's large buffers are): the floor of any load that copies
 * the weights, and a property of the machine (in VMs the host backs fresh pages). */
static double touch_ms(size_t bytes) {
    double t0 = now_s();
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -1;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    for (size_t i = 0; i < bytes; i += 4096) ((volatile char *)p)[i] = 1;
    double ms = (now_s() - t0) * 1e3;
    munmap(p, bytes);
    return ms;
}

/* Drop the file's pages from the page cache (a cold load of this file only). */
static void evict_file(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    (void)fdatasync(fd);
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

/* --load N: N loads of the model, one after the other (each freed before the next). */
static int run_load(const char *path, const bitnet_model_params *mp, int reps, int cold, int json) {
    double *ms = malloc((size_t)reps * sizeof *ms);
    if (!ms) return 1;
    double size_mb = 0, file_mb = 0;
    char desc[256] = "", isa[32] = "";
    FILE *f = fopen(path, "rb");
    if (f && fseek(f, 0, SEEK_END) == 0) file_mb = (double)ftell(f) / 1e6;
    if (f) fclose(f);
    for (int r = 0; r < reps; r++) {
        if (cold) evict_file(path);
        bitnet_model *m = NULL;
        double t0 = now_s();
        int st = bitnet_model_load(path, mp, &m);
        ms[r] = (now_s() - t0) * 1e3;
        if (st != BITNET_OK) {
            free(ms);
            ex_die_status("bitnet-bench", path, st);
            return 1;
        }
        size_mb = (double)bitnet_model_get_info(m, BITNET_INFO_SIZE_BYTES) / 1e6;
        snprintf(desc, sizeof desc, "%s", bitnet_model_desc(m));
        snprintf(isa, sizeof isa, "%s", bitnet_isa_name((bitnet_isa)bitnet_model_get_info(m, BITNET_INFO_ISA)));
        bitnet_model_free(m);
    }
    const double rss = peak_rss_mib();
    const double tms = touch_ms((size_t)(size_mb * 1e6));
    double sorted[1000];
    memcpy(sorted, ms, (size_t)reps * sizeof *ms);
    qsort(sorted, (size_t)reps, sizeof sorted[0], cmp_double);
    const double med = sorted[reps / 2];
    if (json)
        printf("{\"test\": \"load\", \"cold\": %d, \"reps\": %d, \"load_ms_median\": %.1f, \"load_ms_min\": %.1f, "
               "\"load_ms_max\": %.1f, \"file_mb\": %.1f, \"size_mb\": %.1f, \"s_per_gb\": %.3f, "
               "\"touch_ms\": %.1f, \"peak_rss_mib\": %.1f, \"isa\": \"%s\", \"model\": \"%s\"}\n",
               cold, reps, med, sorted[0], sorted[reps - 1], file_mb, size_mb, med / size_mb, tms, rss, isa, path);
    else {
        printf("model: %s (%s)   kernels: %s   CPU: %s\n", path, desc, isa, bitnet_cpu_features());
        printf("%s load x %d: median %.1f ms (min %.1f, max %.1f)   file %.1f MB   weights in memory %.1f MB\n",
               cold ? "cold" : "warm", reps, med, sorted[0], sorted[reps - 1], file_mb, size_mb);
        printf("  %.3f s per GB of weights   peak RSS %.1f MiB   first touch of %.1f MB of fresh memory: %.1f ms\n",
               med / size_mb, rss, size_mb, tms);
    }
    free(ms);
    return 0;
}

typedef struct result {
    double med, min, max;
    double avg_ts, stddev_ts, avg_ns, stddev_ns; /* mean and sample standard deviation, as llama-bench */
    bitnet_profile prof;                         /* --profile: the timed runs' breakdown           */
} result;

static int bench_profile; /* --profile */

/* --profile: the share of each kind of work, one line after a table row or a JSON member. */
static void print_profile(const bitnet_profile *p, int json) {
    const double tot = p->ns_total > 0 ? (double)p->ns_total : 1, per_tok = p->tokens ? tot / 1e6 / (double)p->tokens : 0;
    struct { const char *name; uint64_t ns; } parts[] = {
        {"embed", p->ns_embed},           {"token_ops", p->ns_token_ops},   {"qkv", p->ns_qkv},
        {"attention", p->ns_attention},   {"attn_out", p->ns_attn_out},     {"ffn_gate_up", p->ns_ffn_gate_up},
        {"ffn_down", p->ns_ffn_down},     {"output", p->ns_output},
    };
    if (json) {
        printf(", \"profile\": {\"ms_per_token\": %.4f", per_tok);
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) printf(", \"%s\": %.4f", parts[i].name, (double)parts[i].ns / tot);
        printf("}");
        return;
    }
    printf("|        |         | profile: %.3f ms/token:", per_tok);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) printf(" %s %.1f%%", parts[i].name, 100.0 * (double)parts[i].ns / tot);
    printf(" |\n");
}

/* llama-bench's statistics of the runs: tokens/s per run and nanoseconds per run. */
static void bench_stats(result *res, const double *tps, int reps, double tokens) {
    double s = 0, s2 = 0, ns = 0, ns2 = 0;
    for (int r = 0; r < reps; r++) {
        double t = tokens / tps[r] * 1e9;
        s += tps[r], s2 += tps[r] * tps[r], ns += t, ns2 += t * t;
    }
    res->avg_ts = s / reps;
    res->avg_ns = ns / reps;
    res->stddev_ts = reps > 1 ? sqrt(fmax(0.0, (s2 - s * s / reps) / (reps - 1))) : 0;
    res->stddev_ns = reps > 1 ? sqrt(fmax(0.0, (ns2 - ns * ns / reps) / (reps - 1))) : 0;
}

/* One measurement; returns 0 on success. */
static int bench_n_batch;      /* -b / -ub: tokens per evaluation step of pp tests (0: all at once) */
static int bench_kv = -1;      /* -ctk / -ctv: the KV cache type (-1: the library's default) */
static int bench_greedy;       /* --greedy: tg feeds back the greedy token (sampling included) */
static int bench_screen;       /* --screen: bitnet_screen_mode */

static int run_test(const bitnet_model *m, int pp, int n, int threads, int reps, uint32_t n_ctx, result *res) {
    bitnet_session_params sp;
    bitnet_session_default_params(&sp, sizeof sp);
    sp.n_threads = (uint32_t)threads;
    sp.n_ctx = n_ctx;
    sp.n_batch = pp ? (uint32_t)(bench_n_batch && bench_n_batch < n ? bench_n_batch : n) : 512;
    if (bench_kv >= 0) sp.kv_type = (bitnet_kv_type)bench_kv;
    bitnet_session *s = NULL;
    int st = bitnet_session_create(m, &sp, &s);
    if (st != BITNET_OK) {
        ex_die_status("bitnet-bench", "creating a session", st);
        return 1;
    }
    int32_t n_vocab = (int32_t)bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    bitnet_token *tok = malloc((size_t)(n + 1) * sizeof *tok);
    double *tps = malloc((size_t)reps * sizeof *tps);
    if (!tok || !tps) {
        fprintf(stderr, "bitnet-bench: out of memory\n");
        exit(1);
    }
    for (int i = 0; i <= n; i++) tok[i] = (bitnet_token)(rnd32() % (uint32_t)n_vocab);
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        bitnet_session_reset(s);
        if (r == 0 && bench_profile) bitnet_session_set_profiling(s, 1);
        double dt;
        if (pp) {
            double t0 = now_s();
            st = bitnet_session_eval(s, tok, (size_t)n);
            dt = now_s() - t0;
        } else {
            st = bitnet_session_eval(s, tok, 1);
            double t0 = now_s();
            for (int i = 1; i <= n && st == BITNET_OK; i++) {
                if (bench_greedy) { /* --greedy: decode what greedy sampling picks (the screened layer's use) */
                    bitnet_sampler_params gp;
                    bitnet_sampler_default_params(&gp, sizeof gp);
                    gp.temperature = 0.0f;
                    st = bitnet_session_sample(s, &gp, &tok[i]);
                    if (st != BITNET_OK) break;
                }
                st = bitnet_session_eval(s, tok + i, 1);
            }
            dt = now_s() - t0;
        }
        if (st != BITNET_OK) {
            ex_die_status("bitnet-bench", "evaluating", st);
            return 1;
        }
        if (r >= 0) tps[r] = (double)n / dt;
    }
    qsort(tps, (size_t)reps, sizeof *tps, cmp_double);
    res->min = tps[0];
    res->max = tps[reps - 1];
    res->med = reps % 2 ? tps[reps / 2] : 0.5 * (tps[reps / 2 - 1] + tps[reps / 2]);
    bench_stats(res, tps, reps, (double)n);
    bitnet_session_get_profile(s, &res->prof, sizeof res->prof);
    if (bench_screen && !pp) {
        uint64_t ns = 0, nr = 0, nf = 0;
        bitnet_session_screen_stats(s, &ns, &nr, &nf);
        fprintf(stderr, "bitnet-bench: screened %llu evals, re-scored %.1f tokens per sampled eval, %llu full passes\n",
                (unsigned long long)ns, ns ? (double)nr / (double)ns : 0.0, (unsigned long long)nf);
    }
    free(tok);
    free(tps);
    bitnet_session_free(s);
    return 0;
}

/* Batched decoding of `streams` sessions; res gets the aggregate tokens/s. */
static int run_streams(const bitnet_model *m, int n, int streams, int threads, int reps, uint32_t n_ctx,
                       result *res) {
    bitnet_session_params sp;
    bitnet_session_default_params(&sp, sizeof sp);
    sp.n_threads = 1; /* unused: the batch has the threads */
    sp.n_ctx = n_ctx;
    bitnet_session **ss = calloc((size_t)streams, sizeof *ss);
    bitnet_batch_params bp;
    bitnet_batch_default_params(&bp, sizeof bp);
    bp.n_threads = (uint32_t)threads;
    bp.n_tokens = (uint32_t)streams;
    bitnet_batch *b = NULL;
    int st = bitnet_batch_create(m, &bp, &b);
    for (int i = 0; i < streams && st == BITNET_OK; i++) st = bitnet_session_create(m, &sp, &ss[i]);
    int32_t n_vocab = (int32_t)bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    bitnet_token *tok = malloc((size_t)(n + 1) * (size_t)streams * sizeof *tok);
    double *tps = malloc((size_t)reps * sizeof *tps);
    if (st != BITNET_OK || !tok || !tps) {
        ex_die_status("bitnet-bench", "creating sessions for --streams", st != BITNET_OK ? st : BITNET_E_NOMEM);
        return 1;
    }
    for (int i = 0; i < (n + 1) * streams; i++) tok[i] = (bitnet_token)(rnd32() % (uint32_t)n_vocab);
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        if (r == 0 && bench_profile) bitnet_batch_set_profiling(b, 1);
        double t0 = 0;
        for (int step = 0; step <= n && st == BITNET_OK; step++) {
            if (step == 1) t0 = now_s(); /* after the one-token start */
            for (int i = 0; i < streams && st == BITNET_OK; i++) {
                if (step == 0) bitnet_session_reset(ss[i]);
                st = bitnet_batch_add(b, ss[i], &tok[step * streams + i], 1, 0);
            }
            if (st == BITNET_OK) st = bitnet_batch_eval(b);
        }
        double dt = now_s() - t0;
        if (st != BITNET_OK) {
            ex_die_status("bitnet-bench", "batched decoding", st);
            return 1;
        }
        if (r >= 0) tps[r] = (double)n * streams / dt;
    }
    qsort(tps, (size_t)reps, sizeof *tps, cmp_double);
    res->min = tps[0];
    res->max = tps[reps - 1];
    res->med = reps % 2 ? tps[reps / 2] : 0.5 * (tps[reps / 2 - 1] + tps[reps / 2]);
    bench_stats(res, tps, reps, (double)n * streams);
    bitnet_batch_get_profile(b, &res->prof, sizeof res->prof);
    for (int i = 0; i < streams; i++) bitnet_session_free(ss[i]);
    bitnet_batch_free(b);
    free(ss);
    free(tok);
    free(tps);
    return 0;
}

/* Sentence embeddings of n-token inputs; res gets tokens/s (texts/s = tokens/s / n). */
static int run_embd(const bitnet_model *m, int n, int threads, int reps, uint32_t n_ctx, result *res) {
    bitnet_session_params sp;
    bitnet_session_default_params(&sp, sizeof sp);
    sp.n_threads = (uint32_t)threads;
    sp.n_ctx = n_ctx;
    sp.n_batch = (uint32_t)(bench_n_batch && bench_n_batch < n ? bench_n_batch : n);
    if (bench_kv >= 0) sp.kv_type = (bitnet_kv_type)bench_kv;
    bitnet_session *s = NULL;
    int st = bitnet_session_create(m, &sp, &s);
    const int32_t n_vocab = (int32_t)bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    const size_t n_embd = (size_t)bitnet_model_get_info(m, BITNET_INFO_N_EMBD);
    bitnet_token *tok = malloc((size_t)n * sizeof *tok);
    float *out = malloc(n_embd * sizeof *out);
    double *tps = malloc((size_t)reps * sizeof *tps);
    if (st != BITNET_OK || !tok || !out || !tps) {
        ex_die_status("bitnet-bench", "creating a session for --embd", st != BITNET_OK ? st : BITNET_E_NOMEM);
        return 1;
    }
    for (int i = 0; i < n; i++) tok[i] = (bitnet_token)(rnd32() % (uint32_t)n_vocab);
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        double t0 = now_s();
        st = bitnet_session_embed(s, tok, (size_t)n, NULL, out, n_embd);
        double dt = now_s() - t0;
        if (st != BITNET_OK) {
            ex_die_status("bitnet-bench", "embedding", st);
            return 1;
        }
        if (r >= 0) tps[r] = (double)n / dt;
    }
    qsort(tps, (size_t)reps, sizeof *tps, cmp_double);
    res->min = tps[0];
    res->max = tps[reps - 1];
    res->med = reps % 2 ? tps[reps / 2] : 0.5 * (tps[reps / 2 - 1] + tps[reps / 2]);
    bench_stats(res, tps, reps, (double)n);
    free(tok);
    free(out);
    free(tps);
    bitnet_session_free(s);
    return 0;
}

/* Beam search with `beams` beams for up to n tokens; res gets tokens/s of the result. */
static int run_beams(const bitnet_model *m, int n, int beams, int threads, int reps, uint32_t n_ctx, result *res) {
    bitnet_session_params sp;
    bitnet_session_default_params(&sp, sizeof sp);
    sp.n_threads = (uint32_t)threads;
    sp.n_ctx = n_ctx;
    bitnet_session *s = NULL;
    int st = bitnet_session_create(m, &sp, &s);
    bitnet_token *out = malloc((size_t)n * sizeof *out);
    double *tps = malloc((size_t)reps * sizeof *tps);
    if (st != BITNET_OK || !out || !tps) {
        ex_die_status("bitnet-bench", "creating a session for --beams", st != BITNET_OK ? st : BITNET_E_NOMEM);
        return 1;
    }
    int32_t n_vocab = (int32_t)bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    bitnet_token start = (bitnet_token)(rnd32() % (uint32_t)n_vocab);
    for (int r = -1; r < reps; r++) {
        bitnet_session_reset(s);
        size_t got = 0;
        double t0 = now_s();
        st = bitnet_session_beam_search(s, &start, 1, (uint32_t)beams, n, out, (size_t)n, &got);
        double dt = now_s() - t0;
        if (st != BITNET_OK) {
            ex_die_status("bitnet-bench", "beam search", st);
            return 1;
        }
        if (r >= 0) tps[r] = (double)(got ? got : 1) / dt;
    }
    qsort(tps, (size_t)reps, sizeof *tps, cmp_double);
    res->min = tps[0];
    res->max = tps[reps - 1];
    res->med = reps % 2 ? tps[reps / 2] : 0.5 * (tps[reps / 2 - 1] + tps[reps / 2]);
    bench_stats(res, tps, reps, (double)n);
    free(out);
    free(tps);
    bitnet_session_free(s);
    return 0;
}

/* --spec: one side of the comparison, -n greedy tokens after prompt[0..np). */
static double spec_run(bitnet_session *s, const bitnet_token *prompt, size_t np, int n, bitnet_token *out,
                       size_t *n_out) {
    bitnet_session_reset(s);
    int st = bitnet_session_eval(s, prompt, np);
    if (st != BITNET_OK) ex_die_status("bitnet-bench", "--spec: evaluating the prompt", st);
    bitnet_sampler_params sp;
    bitnet_sampler_default_params(&sp, sizeof sp);
    sp.temperature = 0.0f;
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    gp.max_tokens = n;
    gp.ignore_eog = 1;
    double t0 = now_s();
    st = bitnet_session_generate(s, NULL, 0, &sp, &gp, out, (size_t)n, n_out, NULL);
    double dt = now_s() - t0;
    if (st != BITNET_OK) ex_die_status("bitnet-bench", "--spec: generating", st);
    return (double)*n_out / dt;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int run_spec(const bitnet_model *m, const char *mode, const char *draft_path, int n_draft, double p_min, int n,
                    int threads, int reps, const bitnet_model_params *mp) {
    int lookup = strcmp(mode, "lookup") == 0;
    if (!lookup && strcmp(mode, "draft") != 0) ex_usage_error("--spec: lookup or draft, not '%s'", mode);
    if (!lookup && !draft_path) ex_usage_error("--spec draft needs -md DRAFT.gguf");
    const size_t n_s = 32;
    uint32_t n_ctx = (uint32_t)(3 * n_s + (size_t)n * 2 + 64);
    bitnet_session_params pp;
    bitnet_session_default_params(&pp, sizeof pp);
    pp.n_threads = (uint32_t)threads;
    pp.n_ctx = n_ctx;
    bitnet_session *plain = NULL, *spec = NULL, *ds = NULL;
    bitnet_model *dm = NULL;
    int st = bitnet_session_create(m, &pp, &plain);
    if (st == BITNET_OK) st = bitnet_session_create(m, &pp, &spec);
    if (st != BITNET_OK) ex_die_status("bitnet-bench", "--spec: creating sessions", st);
    bitnet_spec_params sp;
    bitnet_spec_default_params(&sp, sizeof sp);
    sp.mode = lookup ? BITNET_SPEC_LOOKUP : BITNET_SPEC_DRAFT;
    if (n_draft > 0) sp.n_draft_max = n_draft;
    if (p_min >= 0.0) sp.p_min = (float)p_min;
    if (!lookup) {
        if ((st = bitnet_model_load(draft_path, mp, &dm)) != BITNET_OK) ex_die_status("bitnet-bench", draft_path, st);
        if (bench_screen && (st = bitnet_model_set_output_screening(dm, (bitnet_screen_mode)bench_screen)) != BITNET_OK)
            ex_die_status("bitnet-bench", "--screen: the draft model", st);
        if ((st = bitnet_session_create(dm, &pp, &ds)) != BITNET_OK)
            ex_die_status("bitnet-bench", "--spec: the draft session", st);
        sp.draft = ds;
    }
    if ((st = bitnet_session_set_speculation(spec, &sp)) != BITNET_OK)
        ex_die_status("bitnet-bench", "--spec: setting speculation up", st);
    int32_t n_vocab = (int32_t)bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    size_t cap = 3 * n_s + (size_t)n + 1;
    bitnet_token *prompt = malloc(cap * sizeof *prompt), *a = malloc((size_t)n * sizeof *a),
                 *b = malloc((size_t)n * sizeof *b);
    double *tp = malloc((size_t)reps * sizeof *tp), *ts = malloc((size_t)reps * sizeof *ts);
    if (!prompt || !a || !b || !tp || !ts) ex_fail("out of memory");
    printf("speculation: %s%s%s, draft up to %d tokens%s, %d greedy tokens, %d threads, %d runs each\n\n", mode,
           lookup ? "" : " with ", lookup ? "" : draft_path, sp.n_draft_max, p_min >= 0.0 && !lookup ? " (p-min set)" : "",
           n, threads, reps);
    printf("| prompt   | plain t/s | spec t/s | ratio | drafted | accepted | rate  | identical |\n");
    printf("|----------|----------:|---------:|------:|--------:|---------:|------:|-----------|\n");
    for (int kind = 0; kind < 2; kind++) {
        size_t np = 0;
        for (size_t i = 0; i < n_s; i++) prompt[np++] = (bitnet_token)(rnd32() % (uint32_t)n_vocab);
        if (kind == 0) { /* S, the model's own continuation of S, S again */
            size_t got = 0;
            (void)spec_run(plain, prompt, np, n, a, &got);
            for (size_t i = 0; i < got && i < (size_t)n; i++) prompt[np++] = a[i];
            for (size_t i = 0; i < n_s; i++) prompt[np++] = prompt[i];
        }
        size_t na = 0, nb = 0;
        int same = 1;
        bitnet_generator_stats s0, s1;
        for (int r = -1; r < reps; r++) {
            double x = spec_run(plain, prompt, np, n, a, &na);
            if (r == 0) bitnet_session_get_spec_stats(spec, &s0, sizeof s0);
            double y = spec_run(spec, prompt, np, n, b, &nb);
            same &= na == nb && memcmp(a, b, na * sizeof *a) == 0;
            if (r >= 0) tp[r] = x, ts[r] = y;
        }
        bitnet_session_get_spec_stats(spec, &s1, sizeof s1);
        size_t dr = s1.n_drafted - s0.n_drafted, ac = s1.n_accepted - s0.n_accepted;
        double mp_ = median(tp, reps), ms = median(ts, reps);
        printf("| %-8s | %9.2f | %8.2f | %5.2f | %7zu | %8zu | %4.0f%% | %-9s |\n", kind == 0 ? "grounded" : "open",
               mp_, ms, ms / mp_, dr, ac, dr ? 100.0 * (double)ac / (double)dr : 0.0, same ? "yes" : "NO");
        fflush(stdout);
    }
    free(prompt), free(a), free(b), free(tp), free(ts);
    bitnet_session_free(plain);
    bitnet_session_free(spec);
    bitnet_session_free(ds);
    bitnet_model_free(dm);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitnet-bench -m MODEL [options]\n"
            "  -m, --model PATH     GGUF model\n"
            "  -p, --n-prompt LIST  prompt lengths to process (128; 0 = none)\n"
            "  -n, --n-gen LIST     tokens to generate (128; 0 = none)\n"
            "  -t, --threads LIST   thread counts (1,2)\n"
            "  -r, --repetitions N  timed runs per test (5)\n"
            "  -o, --output FMT     table, json (one object per line per measurement; also jsonl),\n"
            "                       or llama-bench's csv and md\n"
            "  -b, --batch-size N   tokens per evaluation step in pp tests (default: the whole prompt)\n"
            "  -ub, --ubatch-size N the same limit (the smaller one wins)\n"
            "  -ctk, -ctv TYPE      KV cache type, f16 or f32 (default f16)\n"
            "  -mmp, --mmap 0|1     map the model (1, default) or read it into memory (0)\n"
            "      --isa NAME       kernel variant: %s (auto)\n"
            "      --bandwidth [MB] measure read bandwidth at each -t (buffer MB, 512) and the roofline\n"
            "      --streams LIST   also decode -n tokens in S parallel sessions through one batch\n"
            "                       (aggregate and per-stream tokens/s), e.g. --streams 1,2,4,8,16\n"
            "      --beams LIST     also run beam search for -n tokens with B beams, e.g. --beams 4\n"
            "      --greedy         tg tests decode the greedy token of each step (sampling timed too)\n"
            "      --screen MODE    output layer screening (experimental): off, exact, int8 (lossy)\n"
            "      --profile        after each pp/tg/streams row, the share of time per kind of work\n"
            "                       (embed, token ops, qkv, attention, attn_out, ffn gate/up, ffn down, output)\n"
            "      --embd LIST      also time sentence embeddings of N-token inputs (tokens/s, texts/s),\n"
            "                       e.g. --embd 32,128,512\n"
            "      --load N         instead: load the model N times (--cold: its file's pages dropped from\n"
            "                       the page cache before each load); load time, s per GB, peak RSS, and\n"
            "                       what first touching that much fresh memory costs on this machine\n"
            "      --spec MODE      instead: greedy -n tokens plain vs speculative, MODE lookup or draft\n"
            "                       (-md DRAFT.gguf), on a grounded and an open prompt (each -t value)\n"
            "  -md, --model-draft F the draft model for --spec draft;  --draft N  most drafted tokens\n"
            "      --draft-p-min P  the draft model stops below probability P (library default 0.5)\n"
            "  -v, --verbose        library log messages;  --version  the version\n"
            "LISTs are comma-separated, e.g. -p 128,512 -t 1,2.  llama-bench's GPU options (-ngl, -fa,\n"
            "-sm, -mg, -ts, -nkvo) are accepted and have no effect.\n",
            ex_isa_names());
}

enum { FMT_TABLE, FMT_JSON, FMT_JSONL, FMT_CSV, FMT_MD };

enum { O_MODEL = 1, O_PROMPT, O_GEN, O_THREADS, O_REPS, O_OUTPUT, O_ISA, O_STREAMS, O_BEAMS, O_BANDWIDTH, O_BATCH, O_PROFILE,
       O_CACHE_TYPE, O_MMAP, O_EMBD, O_GREEDY, O_SCREEN, O_SPEC, O_MD, O_DRAFT, O_LOAD, O_COLD, O_P_MIN };

static const ex_opt bench_opts[] = {
    {O_MODEL, "-m|--model", EX_ARG, NULL},
    {O_PROMPT, "-p|--n-prompt", EX_ARG, NULL},
    {O_GEN, "-n|--n-gen", EX_ARG, NULL},
    {O_THREADS, "-t|--threads", EX_ARG, NULL},
    {O_REPS, "-r|--repetitions", EX_ARG, NULL},
    {O_OUTPUT, "-o|--output", EX_ARG, NULL},
    {O_ISA, "--isa", EX_ARG, NULL},
    {O_STREAMS, "--streams", EX_ARG, NULL},
    {O_PROFILE, "--profile", EX_NOARG, NULL},
    {O_GREEDY, "--greedy", EX_NOARG, NULL},
    {O_SCREEN, "--screen", EX_ARG, NULL},
    {O_BEAMS, "--beams", EX_ARG, NULL},
    {O_EMBD, "--embd", EX_ARG, NULL},
    {O_SPEC, "--spec", EX_ARG, NULL},
    {O_LOAD, "--load", EX_ARG, NULL},
    {O_COLD, "--cold", EX_NOARG, NULL},
    {O_MD, "-md|--model-draft", EX_ARG, NULL},
    {O_DRAFT, "--draft|--draft-max|--draft-n", EX_ARG, NULL},
    {O_P_MIN, "--draft-p-min", EX_ARG, NULL},
    {O_BANDWIDTH, "--bandwidth", EX_OPTARG, "#"},
    {O_BATCH, "-b|--batch-size|-ub|--ubatch-size", EX_ARG, NULL},
    {O_CACHE_TYPE, "-ctk|--cache-type-k|-ctv|--cache-type-v", EX_ARG, NULL},
    {O_MMAP, "-mmp|--mmap", EX_ARG, NULL},
    /* llama-bench spells these with values (lists of 0|1) */
    {EX_IGNORED, "-nkvo|--no-kv-offload|-fa|--flash-attn|-embd|--embeddings", EX_ARG, NULL},
    {EX_IGNORED, "--delay|--progress", EX_OPTARG, "#"},
    {0, NULL, EX_NOARG, NULL},
};

static const ex_opt *const bench_tables[] = {bench_opts, ex_opts_std, ex_opts_log, ex_opts_ignored, NULL};

/* The CPU's model name (/proc/cpuinfo), as llama-bench's cpu_info. */
static void cpu_name(char *buf, size_t cap) {
    snprintf(buf, cap, "%s", bitnet_cpu_features());
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (c && !strncmp(line, "model name", 10)) {
            c++;
            while (*c == ' ' || *c == '\t') c++;
            c[strcspn(c, "\n")] = 0;
            snprintf(buf, cap, "%s", c);
            break;
        }
    }
    fclose(f);
}

/* One csv field, quoted as llama-bench quotes every value. */
static void csv_field(const char *v, int last) {
    putchar('"');
    for (const char *p = v; *p; p++) {
        if (*p == '"') putchar('"');
        putchar(*p);
    }
    putchar('"');
    putchar(last ? '\n' : ',');
}

typedef struct bench_info {
    const char *path, *desc, *isa, *kv;
    char        cpu[256];
    uint64_t    size_bytes, n_params;
    int         use_mmap;
} bench_info;

static const char csv_header[] =
    "build_commit,build_number,cpu_info,gpu_info,backends,model_filename,model_type,model_size,model_n_params,"
    "n_batch,n_ubatch,n_threads,type_k,type_v,n_gpu_layers,use_mmap,n_prompt,n_gen,test_time,avg_ns,stddev_ns,"
    "avg_ts,stddev_ts,isa,streams,beams,tps_median,tps_min,tps_max\n";

static void csv_row(const bench_info *bi, int n_prompt, int n_gen, int threads, int streams, int beams, int n_batch,
                    const result *r) {
    char v[32][128];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int k = 0;
    snprintf(v[k++], 128, "%s", BITNET_VERSION_STRING);
    snprintf(v[k++], 128, "%u", (unsigned)bitnet_version_number());
    k++; /* cpu_info: long, printed from bi */
    snprintf(v[k++], 128, "%s", "");
    snprintf(v[k++], 128, "%s", "CPU");
    k++; /* model_filename */
    k++; /* model_type */
    snprintf(v[k++], 128, "%llu", (unsigned long long)bi->size_bytes);
    snprintf(v[k++], 128, "%llu", (unsigned long long)bi->n_params);
    snprintf(v[k++], 128, "%d", n_batch);
    snprintf(v[k++], 128, "%d", n_batch);
    snprintf(v[k++], 128, "%d", threads);
    snprintf(v[k++], 128, "%s", bi->kv);
    snprintf(v[k++], 128, "%s", bi->kv);
    snprintf(v[k++], 128, "%d", 0);
    snprintf(v[k++], 128, "%d", bi->use_mmap);
    snprintf(v[k++], 128, "%d", n_prompt);
    snprintf(v[k++], 128, "%d", n_gen);
    strftime(v[k++], 128, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(v[k++], 128, "%.0f", r->avg_ns);
    snprintf(v[k++], 128, "%.0f", r->stddev_ns);
    snprintf(v[k++], 128, "%.6f", r->avg_ts);
    snprintf(v[k++], 128, "%.6f", r->stddev_ts);
    snprintf(v[k++], 128, "%s", bi->isa);
    snprintf(v[k++], 128, "%d", streams);
    snprintf(v[k++], 128, "%d", beams);
    snprintf(v[k++], 128, "%.6f", r->med);
    snprintf(v[k++], 128, "%.6f", r->min);
    snprintf(v[k++], 128, "%.6f", r->max);
    for (int i = 0; i < k; i++)
        csv_field(i == 2 ? bi->cpu : i == 5 ? bi->path : i == 6 ? bi->desc : v[i], i == k - 1);
}

static void md_header(void) {
    printf("| %-30s | %10s | %10s | %-10s | %7s | %13s | %20s |\n", "model", "size", "params", "backend", "threads",
           "test", "t/s");
    printf("| %s | %s: | %s: | %s | %s: | %s: | %s: |\n", "------------------------------", "---------",
           "---------", "----------", "------", "------------", "-------------------");
}

static void md_row(const bench_info *bi, const char *test, int threads, const result *r) {
    char size[32], params[32], ts[64];
    if (bi->size_bytes < 1024ull * 1024 * 1024) snprintf(size, sizeof size, "%.2f MiB", bi->size_bytes / 1048576.0);
    else snprintf(size, sizeof size, "%.2f GiB", bi->size_bytes / 1073741824.0);
    if (bi->n_params < 1000000000ull) snprintf(params, sizeof params, "%.2f M", bi->n_params / 1e6);
    else snprintf(params, sizeof params, "%.2f B", bi->n_params / 1e9);
    snprintf(ts, sizeof ts, "%.2f \u00b1 %.2f", r->avg_ts, r->stddev_ts);
    printf("| %-30.30s | %10s | %10s | %-10s | %7d | %13s | %21s |\n", bi->desc, size, params, "CPU", threads, test, ts);
}

int main(int argc, char **argv) {
    const char *path = NULL, *isa_name = "auto";
    int pp[MAX_LIST] = {128}, tg[MAX_LIST] = {128}, th[MAX_LIST] = {1, 2};
    int streams[MAX_LIST] = {0};
    int beams[MAX_LIST] = {0};
    int embd[MAX_LIST] = {0};
    int n_pp = 1, n_tg = 1, n_th = 2, reps = 5, json = 0, n_streams = 0, n_beams = 0, use_mmap = 1, n_embd_list = 0;
    int fmt = FMT_TABLE;
    long long bw_mb = 0;
    const char *spec_mode = NULL, *draft_path = NULL;
    int n_draft = 0, load_reps = 0, load_cold = 0;
    double p_min = -1.0;
    ex_args a;
    ex_args_init(&a, "bitnet-bench", argc, argv, bench_tables);
    for (int id; (id = ex_args_next(&a)) != EX_END;) {
        switch (id) {
        case EX_HELP: usage(stdout); return 0;
        case EX_POSITIONAL: ex_usage_error("unexpected argument '%s' (see bitnet-bench --help)", a.val);
        case O_MODEL: path = a.val; break;
        case O_PROMPT: n_pp = parse_list(a.opt, a.val, 0, 1 << 16, pp); break;
        case O_GEN: n_tg = parse_list(a.opt, a.val, 0, 1 << 16, tg); break;
        case O_THREADS: n_th = parse_list(a.opt, a.val, 1, 1024, th); break;
        case O_REPS: reps = (int)ex_int(&a, 1, 1000); break;
        case O_OUTPUT:
            fmt = ex_choice(&a, "table|json|jsonl|csv|md");
            if (fmt == FMT_JSONL) fmt = FMT_JSON;
            json = fmt == FMT_JSON;
            break;
        case O_ISA: isa_name = a.val; break;
        case O_STREAMS: n_streams = parse_list(a.opt, a.val, 1, 256, streams); break;
        case O_PROFILE: bench_profile = 1; break;
        case O_GREEDY: bench_greedy = 1; break;
        case O_SCREEN: bench_screen = ex_choice(&a, "off|exact|int8"); break;
        case O_BEAMS: n_beams = parse_list(a.opt, a.val, 1, 64, beams); break;
        case O_EMBD: n_embd_list = parse_list(a.opt, a.val, 1, 1 << 16, embd); break;
        case O_BANDWIDTH: bw_mb = a.val ? ex_int(&a, 16, 1 << 16) : 512; break;
        case O_BATCH: {
            int v[MAX_LIST];
            if (parse_list(a.opt, a.val, 1, 1 << 20, v) != 1) ex_usage_error("%s: give one value", a.opt);
            if (!bench_n_batch || v[0] < bench_n_batch) bench_n_batch = v[0];
            break;
        }
        case O_CACHE_TYPE:
            bench_kv = ex_choice(&a, "f16|f32") == 1 ? BITNET_KV_F32 : BITNET_KV_F16;
            break;
        case O_MMAP: use_mmap = (int)ex_int(&a, 0, 1); break;
        case O_SPEC: spec_mode = a.val; break;
        case O_LOAD: load_reps = (int)ex_int(&a, 1, 1000); break;
        case O_COLD: load_cold = 1; break;
        case O_MD: draft_path = a.val; break;
        case O_DRAFT: n_draft = (int)ex_int(&a, 1, 64); break;
        case O_P_MIN:
            p_min = ex_float(&a);
            if (!(p_min >= 0.0 && p_min <= 1.0)) ex_usage_error("--draft-p-min: %s is not in [0, 1]", a.val);
            break;
        default: ex_usage_error("option '%s' does not apply to bitnet-bench", a.opt);
        }
    }
    if (!path && !bw_mb) ex_usage_error("-m MODEL is required (see bitnet-bench --help)");

    bitnet_isa isa = ex_isa(isa_name);

    double bws[MAX_LIST]; /* the probe at each -t thread count */
    for (int i = 0; i < n_th; i++) bws[i] = bw_mb ? bandwidth_gbs((size_t)bw_mb, th[i]) : -1;
    if (bw_mb) reset_peak_rss(); /* the probe's buffer is freed: peak RSS is the model's again */
    if (!path) {
        for (int i = 0; i < n_th; i++) {
            if (json) printf("{\"test\": \"bandwidth\", \"mb\": %lld, \"threads\": %d, \"gbs\": %.2f}\n", bw_mb, th[i], bws[i]);
            else printf("read bandwidth (%d thread%s, %lld MB): %.2f GB/s\n", th[i], th[i] == 1 ? "" : "s", bw_mb, bws[i]);
        }
        return 0;
    }

    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    mp.isa = isa;
    mp.use_mmap = use_mmap;
    if (load_reps) return run_load(path, &mp, load_reps, load_cold, json);
    bitnet_model *m = NULL;
    double t0 = now_s();
    int st = bitnet_model_load(path, &mp, &m);
    double load_ms = (now_s() - t0) * 1e3;
    if (st != BITNET_OK) {
        ex_die_status("bitnet-bench", path, st);
        return 1;
    }
    if (bench_screen) {
        double ts = now_s();
        if ((st = bitnet_model_set_output_screening(m, (bitnet_screen_mode)bench_screen)) != BITNET_OK) {
            ex_die_status("bitnet-bench", "--screen", st);
            return 1;
        }
        fprintf(stderr, "bitnet-bench: screening copy made in %.1f ms\n", (now_s() - ts) * 1e3);
    }
    if (spec_mode) {
        printf("model: %s (%s)   CPU: %s\n", path, bitnet_model_desc(m), bitnet_cpu_features());
        int rc = 0; /* one table per thread count */
        for (int i = 0; i < n_th && rc == 0; i++)
            rc = run_spec(m, spec_mode, draft_path, n_draft, p_min, tg[0] > 0 ? tg[0] : 128, th[i], reps, &mp);
        bitnet_model_free(m);
        return rc;
    }
    const char *isa_used = bitnet_isa_name((bitnet_isa)bitnet_model_get_info(m, BITNET_INFO_ISA));
    double size_mb = (double)bitnet_model_get_info(m, BITNET_INFO_SIZE_BYTES) / 1e6;
    int max_pp = 0, max_tg = 0;
    for (int i = 0; i < n_pp; i++) max_pp = pp[i] > max_pp ? pp[i] : max_pp;
    for (int i = 0; i < n_embd_list; i++) max_pp = embd[i] > max_pp ? embd[i] : max_pp;
    for (int i = 0; i < n_tg; i++) max_tg = tg[i] > max_tg ? tg[i] : max_tg;
    uint32_t n_ctx = (uint32_t)(max_pp > max_tg + 1 ? max_pp : max_tg + 1);
    n_ctx = (n_ctx + 255) / 256 * 256;

    bench_info info = {path, bitnet_model_desc(m), isa_used, bench_kv == BITNET_KV_F32 ? "f32" : "f16", {0},
                       (uint64_t)bitnet_model_get_info(m, BITNET_INFO_SIZE_BYTES),
                       (uint64_t)bitnet_model_get_info(m, BITNET_INFO_N_PARAMS), use_mmap};
    cpu_name(info.cpu, sizeof info.cpu);
    if (fmt == FMT_CSV) fputs(csv_header, stdout);
    if (fmt == FMT_MD) md_header();
    if (fmt == FMT_TABLE) {
        printf("model: %s (%s)\nkernels: %s   CPU: %s\n", path, bitnet_model_desc(m), isa_used, bitnet_cpu_features());
        printf("load: %.1f ms   weights in memory: %.1f MB   peak RSS after load: %.1f MiB\n", load_ms, size_mb,
               peak_rss_mib());
        for (int i = 0; i < n_th; i++)
            if (bws[i] > 0)
                printf("read bandwidth (%d thread%s): %.2f GB/s   decode roofline: %.1f tokens/s\n", th[i],
                       th[i] == 1 ? "" : "s", bws[i], bws[i] * 1e3 / size_mb);
        printf("\n| test   | threads | t/s median | t/s min | t/s max |\n");
        printf("|--------|--------:|-----------:|--------:|--------:|\n");
        fflush(stdout);
    }
    for (int ti = 0; ti < n_th; ti++) {
        for (int kind = 0; kind < 2; kind++) {
            int cnt = kind == 0 ? n_pp : n_tg;
            for (int i = 0; i < cnt; i++) {
                int n = kind == 0 ? pp[i] : tg[i];
                if (n <= 0) continue;
                result r;
                if (run_test(m, kind == 0, n, th[ti], reps, n_ctx, &r)) {
                    bitnet_model_free(m);
                    return 1;
                }
                char name[32];
                snprintf(name, sizeof name, "%s%d", kind == 0 ? "pp" : "tg", n);
                if (fmt == FMT_CSV)
                    csv_row(&info, kind == 0 ? n : 0, kind == 0 ? 0 : n, th[ti], 0, 0,
                            bench_n_batch ? bench_n_batch : kind == 0 ? n : 512, &r);
                else if (fmt == FMT_MD)
                    md_row(&info, name, th[ti], &r);
                else if (json) {
                    printf("{\"test\": \"%s\", \"n\": %d, \"threads\": %d, \"reps\": %d, \"tps_median\": %.3f, "
                           "\"tps_min\": %.3f, \"tps_max\": %.3f, \"isa\": \"%s\", \"model\": \"%s\", "
                           "\"load_ms\": %.1f, \"size_mb\": %.1f, \"peak_rss_mib\": %.1f",
                           kind == 0 ? "pp" : "tg", n, th[ti], reps, r.med, r.min, r.max, isa_used, path, load_ms,
                           size_mb, peak_rss_mib());
                    if (bws[ti] > 0)
                        printf(", \"bandwidth_gbs\": %.2f, \"roofline_tps\": %.1f", bws[ti], bws[ti] * 1e3 / size_mb);
                    if (bench_profile) print_profile(&r.prof, 1);
                    printf("}\n");
                } else {
                    printf("| %-6s | %7d | %10.2f | %7.2f | %7.2f |\n", name, th[ti], r.med, r.min, r.max);
                    if (bench_profile) print_profile(&r.prof, 0);
                }
                fflush(stdout);
            }
        }
        for (int si = 0; si < n_streams; si++)
            for (int i = 0; i < n_tg; i++) {
                if (tg[i] <= 0) continue;
                result r;
                if (run_streams(m, tg[i], streams[si], th[ti], reps, n_ctx, &r)) {
                    bitnet_model_free(m);
                    return 1;
                }
                char name[32];
                snprintf(name, sizeof name, "tg%dx%d", tg[i], streams[si]);
                if (fmt == FMT_CSV)
                    csv_row(&info, 0, tg[i], th[ti], streams[si], 0, streams[si], &r);
                else if (fmt == FMT_MD)
                    md_row(&info, name, th[ti], &r);
                else if (json) {
                    printf("{\"test\": \"tg\", \"n\": %d, \"streams\": %d, \"threads\": %d, \"reps\": %d, "
                           "\"tps_median\": %.3f, \"tps_min\": %.3f, \"tps_max\": %.3f, \"per_stream_tps_median\": %.3f, "
                           "\"isa\": \"%s\", \"model\": \"%s\", \"peak_rss_mib\": %.1f",
                           tg[i], streams[si], th[ti], reps, r.med, r.min, r.max, r.med / streams[si], isa_used, path,
                           peak_rss_mib());
                    if (bench_profile) print_profile(&r.prof, 1);
                    printf("}\n");
                } else {
                    printf("| %-6s | %7d | %10.2f | %7.2f | %7.2f |  (%.2f per stream)\n", name, th[ti], r.med, r.min,
                           r.max, r.med / streams[si]);
                    if (bench_profile) print_profile(&r.prof, 0);
                }
                fflush(stdout);
            }
        for (int bi = 0; bi < n_beams; bi++)
            for (int i = 0; i < n_tg; i++) {
                if (tg[i] <= 0) continue;
                result r;
                if (run_beams(m, tg[i], beams[bi], th[ti], reps, n_ctx, &r)) {
                    bitnet_model_free(m);
                    return 1;
                }
                char name[32];
                snprintf(name, sizeof name, "beam%dx%d", tg[i], beams[bi]);
                if (fmt == FMT_CSV)
                    csv_row(&info, 0, tg[i], th[ti], 0, beams[bi], beams[bi], &r);
                else if (fmt == FMT_MD)
                    md_row(&info, name, th[ti], &r);
                else if (json)
                    printf("{\"test\": \"beam\", \"n\": %d, \"beams\": %d, \"threads\": %d, \"reps\": %d, "
                           "\"tps_median\": %.3f, \"tps_min\": %.3f, \"tps_max\": %.3f, \"isa\": \"%s\", "
                           "\"model\": \"%s\"}\n",
                           tg[i], beams[bi], th[ti], reps, r.med, r.min, r.max, isa_used, path);
                else
                    printf("| %-6s | %7d | %10.2f | %7.2f | %7.2f |\n", name, th[ti], r.med, r.min, r.max);
                fflush(stdout);
            }
        for (int ei = 0; ei < n_embd_list; ei++) {
            result r;
            if (run_embd(m, embd[ei], th[ti], reps, n_ctx, &r)) {
                bitnet_model_free(m);
                return 1;
            }
            char name[32];
            snprintf(name, sizeof name, "embd%d", embd[ei]);
            if (fmt == FMT_CSV)
                csv_row(&info, embd[ei], 0, th[ti], 0, 0, bench_n_batch ? bench_n_batch : embd[ei], &r);
            else if (fmt == FMT_MD)
                md_row(&info, name, th[ti], &r);
            else if (json)
                printf("{\"test\": \"embd\", \"n\": %d, \"threads\": %d, \"reps\": %d, \"tps_median\": %.3f, "
                       "\"tps_min\": %.3f, \"tps_max\": %.3f, \"texts_per_s_median\": %.3f, \"isa\": \"%s\", "
                       "\"model\": \"%s\"}\n",
                       embd[ei], th[ti], reps, r.med, r.min, r.max, r.med / embd[ei], isa_used, path);
            else
                printf("| %-6s | %7d | %10.2f | %7.2f | %7.2f |  (%.2f texts/s)\n", name, th[ti], r.med, r.min, r.max,
                       r.med / embd[ei]);
            fflush(stdout);
        }
    }
    if (fmt == FMT_TABLE) {
        /* against what must be resident: the weights and one session's KV cache at n_ctx */
        const double kv_mib = (double)bitnet_model_get_info(m, BITNET_INFO_N_LAYER) * n_ctx *
                              (double)bitnet_model_get_info(m, BITNET_INFO_N_HEAD_KV) *
                              (double)bitnet_model_get_info(m, BITNET_INFO_HEAD_DIM) * 2.0 *
                              (bench_kv == BITNET_KV_F32 ? 4.0 : 2.0) / (1024.0 * 1024.0);
        const double w_mib = size_mb * 1e6 / (1024.0 * 1024.0), rss = peak_rss_mib();
        printf("\npeak RSS: %.1f MiB   weights %.1f MiB + KV cache (n_ctx %u) %.1f MiB = %.1f MiB: %+.1f%%\n", rss,
               w_mib, (unsigned)n_ctx, kv_mib, w_mib + kv_mib, 100.0 * (rss / (w_mib + kv_mib) - 1.0));
    }
    if (fmt == FMT_MD) printf("\nbuild: libbitnet %s (%u)\n", bitnet_version(), (unsigned)bitnet_version_number());
    bitnet_model_free(m);
    return 0;
}
