/*
 * opts.c -- the shared command-line parser and option groups of the example programs
 * (see opts.h for the accepted spellings).
 */
#define BITNET_EXPERIMENTAL /* bitnet_isa_list, bitnet_isa_from_name, bitnet_model_set_output_screening */
#include "opts.h"

#include "version.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

const char *ex_prog = "bitnet";

/* ---- messages ---------------------------------------------------------------------- */

static void ex_vmsg(const char *kind, const char *fmt, va_list ap) EX_PRINTF(2, 0);
static void ex_vmsg(const char *kind, const char *fmt, va_list ap) {
    fflush(stdout); /* keep the order of stdout and stderr on a terminal */
    fprintf(stderr, "%s: %s: ", ex_prog, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void ex_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ex_vmsg("error", fmt, ap);
    va_end(ap);
    exit(2);
}

void ex_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ex_vmsg("error", fmt, ap);
    va_end(ap);
    exit(1);
}

void ex_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ex_vmsg("error", fmt, ap);
    va_end(ap);
}

void ex_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ex_vmsg("warning", fmt, ap);
    va_end(ap);
}

void ex_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ex_vmsg("note", fmt, ap);
    va_end(ap);
}

/* ---- shared tables ------------------------------------------------------------------- */

enum {
    EX_VERSION = EX_INTERNAL_FIRST,
    EX_LOG_VERBOSE,
    EX_LOG_LEVEL,
    EX_LOG_DISABLE,
    EX_LOG_FILE,
};

const ex_opt ex_opts_std[] = {
    {EX_HELP, "-h|--help|--usage", EX_NOARG, NULL},
    {EX_VERSION, "--version", EX_NOARG, NULL},
    {0, NULL, EX_NOARG, NULL},
};

const ex_opt ex_opts_log[] = {
    {EX_LOG_VERBOSE, "-v|--verbose|--log-verbose", EX_NOARG, NULL},
    {EX_LOG_LEVEL, "-lv|--verbosity|--log-verbosity", EX_ARG, NULL},
    {EX_LOG_DISABLE, "--log-disable", EX_NOARG, NULL},
    {EX_LOG_FILE, "--log-file", EX_ARG, NULL},
    {EX_IGNORED_SILENT, "--log-prefix|--log-timestamps", EX_NOARG, NULL},
    {EX_IGNORED_SILENT, "--log-colors", EX_OPTARG, "on|off|auto|true|false|1|0"},
    {0, NULL, EX_NOARG, NULL},
};

#define EX_ONOFF "on|off|auto|true|false|enabled|disabled|1|0"

/* llama.cpp options for GPUs, CPU placement and caches libbitnet does not have: they
 * change where or how fast something runs there, never what is computed, so they are
 * accepted (with their values) and listed in one note. */
const ex_opt ex_opts_ignored[] = {
    {EX_IGNORED, "-ngl|--gpu-layers|--n-gpu-layers", EX_ARG, NULL},
    {EX_IGNORED, "-sm|--split-mode", EX_ARG, NULL},
    {EX_IGNORED, "-ts|--tensor-split", EX_ARG, NULL},
    {EX_IGNORED, "-mg|--main-gpu", EX_ARG, NULL},
    {EX_IGNORED, "-dev|--device", EX_ARG, NULL},
    {EX_IGNORED, "-ot|--override-tensor", EX_ARG, NULL},
    {EX_IGNORED, "-nkvo|--no-kv-offload|-kvo|--kv-offload", EX_NOARG, NULL},
    {EX_IGNORED, "--no-op-offload|--op-offload|--no-host", EX_NOARG, NULL},
    {EX_IGNORED, "-fa|--flash-attn", EX_OPTARG, EX_ONOFF},
    {EX_IGNORED, "-nr|--no-repack|--repack", EX_NOARG, NULL},
    {EX_IGNORED, "-cmoe|--cpu-moe", EX_NOARG, NULL},
    {EX_IGNORED, "-ncmoe|--n-cpu-moe", EX_ARG, NULL},
    {EX_IGNORED, "--numa", EX_ARG, NULL},
    {EX_IGNORED, "-tb|--threads-batch", EX_ARG, NULL},
    {EX_IGNORED, "-C|--cpu-mask|-Cr|--cpu-range|-Cb|--cpu-mask-batch|-Crb|--cpu-range-batch", EX_ARG, NULL},
    {EX_IGNORED, "--cpu-strict|--cpu-strict-batch|--prio|--prio-batch|--poll|--poll-batch", EX_ARG, NULL},
    {EX_IGNORED, "-dt|--defrag-thold", EX_ARG, NULL},
    {EX_IGNORED, "--keep", EX_ARG, NULL}, /* no context shift: generation ends when the context is full */
    {EX_IGNORED, "--warmup|--no-warmup|--check-tensors|--context-shift", EX_NOARG, NULL},
    /* what libbitnet always does anyway: no note */
    {EX_IGNORED_SILENT, "--no-context-shift|--simple-io|--perf", EX_NOARG, NULL},
    {0, NULL, EX_NOARG, NULL},
};

#define EX_NO_SAMPLER "not implemented by libbitnet's sampler (see --help for the samplers it has)"
const ex_opt ex_opts_unsupported[] = {
    {0, "--mirostat|--mirostat-lr|--mirostat-ent|--typical|--top-nsigma", EX_UNSUPPORTED, EX_NO_SAMPLER},
    {0, "--xtc-probability|--xtc-threshold|--dynatemp-range|--dynatemp-exp", EX_UNSUPPORTED, EX_NO_SAMPLER},
    {0, "--dry-multiplier|--dry-base|--dry-allowed-length|--dry-penalty-last-n", EX_UNSUPPORTED, EX_NO_SAMPLER},
    {0, "--dry-sequence-breaker|--samplers|--sampling-seq|--sampler-seq|-l|--logit-bias", EX_UNSUPPORTED,
     EX_NO_SAMPLER},
    {0, "--grammar|--grammar-file|-j|--json-schema|-jf|--json-schema-file", EX_UNSUPPORTED,
     "constrained generation is not implemented by libbitnet"},
    {0, "--lora|--lora-scaled|--control-vector|--control-vector-scaled|--control-vector-layer-range",
     EX_UNSUPPORTED, "adapters are not implemented by libbitnet"},
    {0, "--prompt-cache|--prompt-cache-all|--prompt-cache-ro", EX_UNSUPPORTED,
     "prompt cache files are not implemented by this program"},
    {0, "-hf|-hfr|--hf-repo|-hff|--hf-file|-mu|--model-url|-hft|--hf-token", EX_UNSUPPORTED,
     "libbitnet does not download models: give a local file with -m"},
    {0, "--rope-scaling|--rope-scale|--rope-freq-base|--rope-freq-scale|--yarn-orig-ctx|--yarn-ext-factor",
     EX_UNSUPPORTED, "RoPE scaling is not implemented by libbitnet: the model's RoPE parameters are used"},
    {0, "--yarn-attn-factor|--yarn-beta-slow|--yarn-beta-fast|-gan|--grp-attn-n|-gaw|--grp-attn-w",
     EX_UNSUPPORTED, "context extension is not implemented by libbitnet"},
    {0, "--override-kv", EX_UNSUPPORTED, "metadata overrides are not implemented by libbitnet"},
    {0, NULL, EX_NOARG, NULL},
};

/* ---- the parser ------------------------------------------------------------------------ */

void ex_args_init(ex_args *a, const char *prog, int argc, char **argv, const ex_opt *const *tables) {
    memset(a, 0, sizeof *a);
    ex_prog = prog;
    a->argc = argc;
    a->argv = argv;
    a->i = 0;
    a->tables = tables;
}

/* Does the '|'-separated list `names` contain the word w[0..n)? */
static int ex_names_have(const char *names, const char *w, size_t n) {
    for (const char *p = names; *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, w, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static const ex_opt *ex_find(const ex_opt *const *tabs, const char *name) {
    for (size_t t = 0; tabs[t]; t++)
        for (const ex_opt *o = tabs[t]; o->names; o++)
            if (ex_names_have(o->names, name, strlen(name))) return o;
    return NULL;
}

/* The value-taking option whose single-dash spelling is the longest proper prefix of
 * arg ("-t2" -> -t, "-ngl0" -> -ngl); *len receives that spelling's length. */
static const ex_opt *ex_find_glued(const ex_opt *const *tabs, const char *arg, size_t *len) {
    const ex_opt *best = NULL;
    size_t best_len = 0, n = strlen(arg);
    for (size_t t = 0; tabs[t]; t++)
        for (const ex_opt *o = tabs[t]; o->names; o++) {
            if (o->kind != EX_ARG && o->kind != EX_OPTARG) continue;
            for (const char *p = o->names; *p;) {
                const char *e = strchr(p, '|');
                size_t l = e ? (size_t)(e - p) : strlen(p);
                if (l >= 2 && p[1] != '-' && l < n && l > best_len && memcmp(p, arg, l) == 0) {
                    best = o;
                    best_len = l;
                }
                if (!e) break;
                p = e + 1;
            }
        }
    *len = best_len;
    return best;
}

static int ex_is_number(const char *s) {
    char *end;
    errno = 0;
    (void)strtod(s, &end);
    return *s && !*end && !errno;
}

/* ---- logging options ---------------------------------------------------------------- */

static FILE *ex_log_fp;
static int ex_log_level = -1;
static int ex_log_off;

static void ex_log_to_file(bitnet_log_level level, const char *msg, void *user) {
    static const char *const names[] = {"error", "warning", "info", "debug"};
    (void)user;
    fprintf(ex_log_fp, "%s: %s\n", (unsigned)level < 4 ? names[level] : "log", msg);
    fflush(ex_log_fp);
}

static void ex_log_drop(bitnet_log_level level, const char *msg, void *user) {
    (void)level, (void)msg, (void)user;
}

static void ex_log_apply(void) {
    if (ex_log_level < 0) {
        const char *env = getenv("BITNET_LOG_LEVEL");
        ex_log_level = env && env[0] >= '0' && env[0] <= '3' && !env[1] ? env[0] - '0' : BITNET_LOG_WARN;
    }
    if (ex_log_off) bitnet_set_log_callback(ex_log_drop, NULL, BITNET_LOG_ERROR);
    else if (ex_log_fp) bitnet_set_log_callback(ex_log_to_file, NULL, (bitnet_log_level)ex_log_level);
    else bitnet_set_log_callback(NULL, NULL, (bitnet_log_level)ex_log_level);
}

static void ex_note_ignored(ex_args *a) {
    size_t used = strlen(a->ignored);
    int n = snprintf(a->ignored + used, sizeof a->ignored - used, "%s%s%s%s", used ? ", " : "", a->opt,
                     a->val ? " " : "", a->val ? a->val : "");
    if (n < 0 || (size_t)n >= sizeof a->ignored - used) strcpy(a->ignored + sizeof a->ignored - 5, "...");
}

int ex_args_next(ex_args *a) {
    for (;;) {
        a->opt = a->val = NULL;
        if (++a->i >= a->argc) {
            a->i = a->argc;
            if (a->ignored[0]) {
                ex_note("ignoring %s: libbitnet runs on the CPU with one thread pool, these options have no "
                        "effect", a->ignored);
                a->ignored[0] = 0;
            }
            return EX_END;
        }
        const char *s = a->argv[a->i];
        if (a->only_positional || s[0] != '-' || s[1] == 0) {
            a->val = s;
            return EX_POSITIONAL;
        }
        if (!strcmp(s, "--")) {
            a->only_positional = 1;
            continue;
        }
        const char *eq = strchr(s, '=');
        size_t n = eq ? (size_t)(eq - s) : strlen(s);
        if (n >= sizeof a->name) ex_usage_error("unknown option '%.40s...' (see %s --help)", s, ex_prog);
        memcpy(a->name, s, n);
        a->name[n] = 0;
        if (s[1] == '-')
            for (char *p = a->name + 2; *p; p++)
                if (*p == '_') *p = '-';
        const char *inl = eq ? eq + 1 : NULL;
        const ex_opt *o = ex_find(a->tables, a->name);
        if (!o && s[1] != '-') {
            size_t l = 0;
            o = ex_find_glued(a->tables, s, &l);
            if (o) {
                memcpy(a->name, s, l);
                a->name[l] = 0;
                inl = s + l + (s[l] == '=');
            }
        }
        if (!o) ex_usage_error("unknown option '%s' (see %s --help)", a->name, ex_prog);
        a->opt = a->name;
        switch (o->kind) {
        case EX_UNSUPPORTED:
            ex_usage_error("%s: %s", a->opt, o->optvals);
        case EX_NOARG:
            if (inl) ex_usage_error("option '%s' takes no value (got '%s')", a->opt, inl);
            break;
        case EX_ARG:
            if (inl) a->val = inl;
            else if (a->i + 1 < a->argc) a->val = a->argv[++a->i];
            else ex_usage_error("option '%s' needs a value (see %s --help)", a->opt, ex_prog);
            break;
        case EX_OPTARG:
            if (inl) a->val = inl;
            else if (a->i + 1 < a->argc) {
                const char *nx = a->argv[a->i + 1];
                if (!strcmp(o->optvals, "#") ? ex_is_number(nx) : ex_names_have(o->optvals, nx, strlen(nx)))
                    a->val = a->argv[++a->i];
            }
            break;
        }
        switch (o->id) {
        case EX_VERSION:
            ex_print_version(ex_prog);
            exit(0);
        case EX_LOG_VERBOSE:
            ex_log_level = BITNET_LOG_DEBUG;
            ex_log_off = 0;
            ex_log_apply();
            continue;
        case EX_LOG_LEVEL: {
            /* llama.cpp's thresholds: 1 error, 2 warning, 3 info, 4 debug */
            long long v = ex_int(a, 0, 1000);
            ex_log_level = v <= 1 ? BITNET_LOG_ERROR : v == 2 ? BITNET_LOG_WARN : v == 3 ? BITNET_LOG_INFO : BITNET_LOG_DEBUG;
            ex_log_off = 0;
            ex_log_apply();
            continue;
        }
        case EX_LOG_DISABLE:
            ex_log_off = 1;
            ex_log_apply();
            continue;
        case EX_LOG_FILE: {
            FILE *f = fopen(a->val, "a");
            if (!f) ex_fail("--log-file: cannot open '%s': %s", a->val, strerror(errno));
            if (ex_log_fp) fclose(ex_log_fp);
            ex_log_fp = f;
            ex_log_apply();
            continue;
        }
        case EX_IGNORED:
            ex_note_ignored(a);
            continue;
        case EX_IGNORED_SILENT:
            continue;
        default:
            return o->id;
        }
    }
}

/* ---- values --------------------------------------------------------------------------- */

long long ex_int(const ex_args *a, long long min, long long max) {
    const char *s = a->val ? a->val : "";
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        ex_usage_error("%s expects an integer in [%lld, %lld], got '%s'", a->opt, min, max, s);
    return v;
}

double ex_float(const ex_args *a) {
    const char *s = a->val ? a->val : "";
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) ex_usage_error("%s expects a number, got '%s'", a->opt, s);
    return v;
}

int ex_choice(const ex_args *a, const char *words) {
    const char *v = a->val ? a->val : "";
    int k = 0;
    for (const char *p = words; *p; k++) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (strlen(v) == len && memcmp(p, v, len) == 0) return k;
        if (!e) break;
        p = e + 1;
    }
    ex_usage_error("%s: '%s' is not one of %s", a->opt, v, words);
}

/* ---- sampling ---------------------------------------------------------------------------- */

enum {
    EX_S_TEMP = EX_SAMPLING_FIRST,
    EX_S_TOP_K,
    EX_S_TOP_P,
    EX_S_MIN_P,
    EX_S_REPEAT_PENALTY,
    EX_S_REPEAT_LAST_N,
    EX_S_FREQ,
    EX_S_PRESENCE,
};

const ex_opt ex_opts_sampling[] = {
    {EX_S_TEMP, "--temp|-temp", EX_ARG, NULL},
    {EX_S_TOP_K, "--top-k", EX_ARG, NULL},
    {EX_S_TOP_P, "--top-p", EX_ARG, NULL},
    {EX_S_MIN_P, "--min-p", EX_ARG, NULL},
    {EX_S_REPEAT_PENALTY, "--repeat-penalty", EX_ARG, NULL},
    {EX_S_REPEAT_LAST_N, "--repeat-last-n", EX_ARG, NULL},
    {EX_S_FREQ, "--frequency-penalty", EX_ARG, NULL},
    {EX_S_PRESENCE, "--presence-penalty", EX_ARG, NULL},
    {0, NULL, EX_NOARG, NULL},
};

const char ex_sampling_help[] =
    "  --temp T                temperature; <= 0 is greedy (default 0.8)\n"
    "  --top-k N               keep the N most likely tokens; <= 0 off (default 40)\n"
    "  --top-p P               nucleus sampling; >= 1 off (default 0.95)\n"
    "  --min-p P               drop tokens below P * p(best); <= 0 off (default 0.05)\n"
    "  --repeat-penalty X      penalise repeated tokens; 1 off (default 1.0)\n"
    "  --repeat-last-n N       tokens the penalties look at; -1 all, 0 none (default 64)\n"
    "  --frequency-penalty X   subtract X per occurrence (default 0)\n"
    "  --presence-penalty X    subtract X once per seen token (default 0)\n";

int ex_sampling_apply(const ex_args *a, int id, bitnet_sampler_params *sp) {
    switch (id) {
    case EX_S_TEMP: sp->temperature = (float)ex_float(a); return 1;
    case EX_S_TOP_K: sp->top_k = (int32_t)ex_int(a, INT32_MIN, INT32_MAX); return 1;
    case EX_S_TOP_P: sp->top_p = (float)ex_float(a); return 1;
    case EX_S_MIN_P: sp->min_p = (float)ex_float(a); return 1;
    case EX_S_REPEAT_PENALTY:
        sp->repeat_penalty = (float)ex_float(a);
        if (!(sp->repeat_penalty > 0.0f)) ex_usage_error("%s must be > 0, got '%s'", a->opt, a->val);
        return 1;
    case EX_S_REPEAT_LAST_N: sp->repeat_last_n = (int32_t)ex_int(a, -1, INT32_MAX); return 1;
    case EX_S_FREQ: sp->frequency_penalty = (float)ex_float(a); return 1;
    case EX_S_PRESENCE: sp->presence_penalty = (float)ex_float(a); return 1;
    default: return 0;
    }
}

/* ---- model and session ------------------------------------------------------------------- */

enum {
    EX_R_MODEL = EX_RUN_FIRST,
    EX_R_THREADS,
    EX_R_CTX,
    EX_R_BATCH,
    EX_R_UBATCH,
    EX_R_SEED,
    EX_R_CTK,
    EX_R_CTV,
    EX_R_MMAP,
    EX_R_NO_MMAP,
    EX_R_MLOCK,
    EX_R_ARCH,
    EX_R_PRE,
    EX_R_SCREEN,
};

const ex_opt ex_opts_run[] = {
    {EX_R_MODEL, "-m|--model", EX_ARG, NULL},
    {EX_R_THREADS, "-t|--threads", EX_ARG, NULL},
    {EX_R_CTX, "-c|--ctx-size", EX_ARG, NULL},
    {EX_R_BATCH, "-b|--batch-size", EX_ARG, NULL},
    {EX_R_UBATCH, "-ub|--ubatch-size", EX_ARG, NULL},
    {EX_R_SEED, "-s|--seed", EX_ARG, NULL},
    {EX_R_CTK, "-ctk|--cache-type-k", EX_ARG, NULL},
    {EX_R_CTV, "-ctv|--cache-type-v", EX_ARG, NULL},
    {EX_R_MMAP, "--mmap", EX_NOARG, NULL},
    {EX_R_NO_MMAP, "--no-mmap", EX_NOARG, NULL},
    {EX_R_MLOCK, "--mlock", EX_NOARG, NULL},
    {EX_R_ARCH, "--arch", EX_ARG, NULL},
    {EX_R_PRE, "--pre", EX_ARG, NULL},
    {EX_R_SCREEN, "--screen", EX_ARG, NULL},
    {0, NULL, EX_NOARG, NULL},
};

const char ex_run_help[] =
    "  -t, --threads N         worker threads; <= 0 all CPUs (default: all CPUs)\n"
    "  -b, --batch-size N      tokens per evaluation step of a long prompt (default 512)\n"
    "  -ub, --ubatch-size N    the same limit, llama.cpp's physical batch (the smaller one wins)\n"
    "  -s, --seed S            sampler seed; -1 a random one (default 0x5eed)\n"
    "  -ctk, -ctv TYPE         KV cache type, f16 or f32, the same for K and V (default f16)\n"
    "  --no-mmap               read the model into memory instead of mapping it\n"
    "  --mlock                 lock the model in RAM (mlockall)\n"
    "  --arch NAME             override the architecture decision (bitnet-b1.58, bitnet, llama,\n"
    "                          qwen3, gemma3)\n"
    "  --pre NAME              override the BPE pre-tokenizer (llama-bpe, default, gpt2, qwen2)\n"
    "  --screen MODE           F16 output layer screening (experimental): off (default), exact\n"
    "                          (an int8 copy ranks the vocabulary, F16 re-scores the candidates:\n"
    "                          the same tokens for greedy, top-k and min-p sampling), int8 (lossy)\n";

static int ex_ctk = -1, ex_ctv = -1; /* what -ctk / -ctv said, checked in ex_run_session_params */

void ex_run_init(ex_run *r) {
    memset(r, 0, sizeof *r);
    r->kv_type = -1;
    r->use_mmap = 1;
    r->seed = 0x5eed;
    r->screen = -1;
}

int ex_run_apply(const ex_args *a, int id, ex_run *r) {
    switch (id) {
    case EX_R_MODEL: r->model = a->val; return 1;
    case EX_R_THREADS: {
        long long t = ex_int(a, INT32_MIN, 4096);
        r->n_threads = t < 0 ? 0 : t; /* llama.cpp: <= 0 is every CPU */
        return 1;
    }
    case EX_R_CTX: r->n_ctx = ex_int(a, 0, 1 << 24); return 1;
    case EX_R_BATCH: r->n_batch = ex_int(a, 1, 1 << 24); return 1;
    case EX_R_UBATCH: r->n_ubatch = ex_int(a, 1, 1 << 24); return 1;
    case EX_R_SEED: {
        long long s = ex_int(a, -1, INT64_MAX);
        /* llama.cpp: -1 (and its LLAMA_DEFAULT_SEED, 0xFFFFFFFF) ask for a random seed */
        r->seed_random = s == -1 || s == 0xFFFFFFFFLL;
        if (!r->seed_random) r->seed = (uint64_t)s;
        return 1;
    }
    case EX_R_CTK:
    case EX_R_CTV: {
        int k = ex_choice(a, "f16|f32|bf16|q8_0|q4_0|q4_1|iq4_nl|q5_0|q5_1");
        if (k > 1) ex_usage_error("%s %s: libbitnet keeps the KV cache in f16 or f32", a->opt, a->val);
        if (id == EX_R_CTK) ex_ctk = k;
        else ex_ctv = k;
        r->kv_type = k == 1 ? BITNET_KV_F32 : BITNET_KV_F16;
        return 1;
    }
    case EX_R_MMAP: r->use_mmap = 1; return 1;
    case EX_R_NO_MMAP: r->use_mmap = 0; return 1;
    case EX_R_MLOCK: r->mlock = 1; return 1;
    case EX_R_ARCH: r->arch = a->val; return 1;
    case EX_R_PRE: r->pre = a->val; return 1;
    case EX_R_SCREEN: r->screen = ex_choice(a, "off|exact|int8"); return 1; /* = bitnet_screen_mode */
    default: return 0;
    }
}

void ex_run_model_params(const ex_run *r, bitnet_model_params *mp) {
    mp->arch = r->arch;
    mp->pretokenizer = r->pre;
    mp->use_mmap = r->use_mmap;
}

void ex_run_session_params(const ex_run *r, bitnet_session_params *sp) {
    if (ex_ctk >= 0 && ex_ctv >= 0 && ex_ctk != ex_ctv)
        ex_usage_error("-ctk and -ctv differ: libbitnet keeps K and V in one type (f16 or f32)");
    sp->n_threads = (uint32_t)r->n_threads;
    if (r->n_ctx) sp->n_ctx = (uint32_t)r->n_ctx;
    if (r->n_batch) sp->n_batch = (uint32_t)r->n_batch;
    if (r->n_ubatch && (!r->n_batch || r->n_ubatch < r->n_batch)) sp->n_batch = (uint32_t)r->n_ubatch;
    if (r->kv_type >= 0) sp->kv_type = (bitnet_kv_type)r->kv_type;
    sp->seed = r->seed;
}

int ex_run_after_load(const ex_run *r, bitnet_model *m) {
    if (r->screen > 0) {
        bitnet_status st = bitnet_model_set_output_screening(m, (bitnet_screen_mode)r->screen);
        if (st != BITNET_OK) {
            fprintf(stderr, "%s: error: --screen: %s\n", ex_prog, bitnet_last_error());
            return 1;
        }
    }
    if (r->mlock && mlockall(MCL_CURRENT) != 0)
        ex_warn("--mlock: the model stays swappable: mlockall failed (%s; see ulimit -l)", strerror(errno));
    /* n_ctx beyond the model's context_length: the library warns (once per model) when the
       session is created, with the memory the KV cache takes */
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------- */

char *ex_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                errno = ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (buf && ferror(f)) {
        int e = errno;
        free(buf);
        buf = NULL;
        errno = e ? e : EIO;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static int ex_hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t ex_unescape(char *s) {
    char *w = s;
    for (const char *p = s; *p; p++) {
        if (*p != '\\' || !p[1]) {
            *w++ = *p;
            continue;
        }
        char c = p[1];
        if (c == 'n') *w++ = '\n';
        else if (c == 'r') *w++ = '\r';
        else if (c == 't') *w++ = '\t';
        else if (c == '\'' || c == '"' || c == '\\') *w++ = c;
        else if (c == 'x' && ex_hexval(p[2]) >= 0 && ex_hexval(p[3]) >= 0) {
            *w++ = (char)(ex_hexval(p[2]) * 16 + ex_hexval(p[3]));
            p += 2;
        } else {
            *w++ = '\\';
            *w++ = c;
        }
        p++;
    }
    *w = 0;
    return (size_t)(w - s);
}

uint64_t ex_random_seed(void) {
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&v, sizeof v, 1, f) != 1) v = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    if (f) fclose(f);
    return v & 0x7fffffffffffffffull;
}

bitnet_isa ex_isa(const char *name) {
    bitnet_isa isa = BITNET_ISA_AUTO;
    if (bitnet_isa_from_name(name, &isa) != BITNET_OK) ex_usage_error("--isa: %s", bitnet_last_error());
    return isa;
}

const char *ex_isa_names(void) {
    static char buf[256];
    if (buf[0]) return buf;
    bitnet_isa all[32];
    size_t n = bitnet_isa_list(all, sizeof all / sizeof all[0]), len = 0;
    if (n > sizeof all / sizeof all[0]) n = sizeof all / sizeof all[0];
    len += (size_t)snprintf(buf, sizeof buf, "auto");
    for (size_t i = 0; i < n && len < sizeof buf; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, " %s", bitnet_isa_name(all[i]));
    return buf;
}
