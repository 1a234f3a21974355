/*
 * bitnet-convert -- convert a Hugging Face BitNet checkpoint directory to GGUF.
 *
 *   bitnet-convert MODEL_DIR [-o OUT.gguf] [--type i2_s|tq2_0|tq1_0|f16]
 *                  [--embd-type f16|q8_0|q6_k] [--output-type ...] [--pre NAME]
 *                  [--name NAME] [--force] [--quiet]
 *
 * The writer loop: every tensor is declared first (names, shapes and types follow
 * from config.json and the safetensors headers alone), the header is written, then
 * tensors are converted and streamed one at a time in declaration order, so peak
 * memory is about one projection matrix as float plus its encoded form; embeddings
 * are streamed in row chunks.  Ternary projections:
 *   master weights (bf16/fp16/fp32):  m = max(mean|W|, 1e-5) per tensor, s = 1/m (f32),
 *       q = clamp(round_half_even(W*s), -1, 1), value = q/s      (absmean, docs/spec.md §3.4)
 *   packed uint8 + weight_scale:      value = (code-1) / weight_scale (BitLinear) or
 *       (code-1) * weight_scale (AutoBitLinear)
 * and the values are then encoded by bitnet_quantize (I2_S: one scale = max|value|;
 * TQ1_0/TQ2_0: per-256-block f16 scales, all equal to the tensor scale; F16: the values).
 * Output goes to "<out>.<pid>.part" and is renamed over <out> only when complete; a
 * failure, SIGINT or SIGTERM removes the partial file.
 */
#include "convert.h"

#include "../common/version.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char cv_usage[] =
    "usage: bitnet-convert MODEL_DIR [options]\n"
    "Convert a Hugging Face BitNet checkpoint (config.json, *.safetensors, tokenizer files) to GGUF.\n"
    "  -o, --outfile PATH    output file (default: MODEL_DIR/ggml-model-<type>.gguf)\n"
    "  --type TYPE           ternary projection type: i2_s (default; bitnet.cpp), tq2_0, tq1_0\n"
    "                        (llama.cpp), f16\n"
    "  --embd-type TYPE      token embedding type: f16 (default), q8_0, q6_k\n"
    "  --output-type TYPE    separate output layer (LLaMA models): f16, q8_0, q6_k (default: --embd-type)\n"
    "  --pre NAME            BPE pre-tokenizer name to write when it cannot be recognised (llama-bpe, gpt2)\n"
    "  --name NAME           general.name (default: the directory name)\n"
    "  -f, --force           overwrite an existing output file\n"
    "  -q, --quiet           no progress output\n"
    "  -h, --help            this text\n"
    "  --version             the version\n";

/* The partial output file, removed by the signal handler. */
static char cv_tmp_path[4200];
static volatile sig_atomic_t cv_tmp_live = 0;

static void cv_on_signal(int sig) {
    if (cv_tmp_live) unlink(cv_tmp_path);
    static const char msg[] = "\nbitnet-convert: interrupted; partial output removed\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(128 + sig);
}

static int cv_parse_type(const char *opt, const char *s, int embd, bitnet_type *t) {
    static const struct { const char *n; bitnet_type t; int w, e; } tab[] = {
        {"i2_s", BITNET_TYPE_I2_S, 1, 0},  {"tq2_0", BITNET_TYPE_TQ2_0, 1, 0}, {"tq1_0", BITNET_TYPE_TQ1_0, 1, 0},
        {"f16", BITNET_TYPE_F16, 1, 1},    {"q8_0", BITNET_TYPE_Q8_0, 0, 1},  {"q6_k", BITNET_TYPE_Q6_K, 0, 1},
        {"f32", BITNET_TYPE_F32, 0, 1},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcasecmp(tab[i].n, s) == 0 && (embd ? tab[i].e : tab[i].w)) {
            *t = tab[i].t;
            return 0;
        }
    return cv_fail("%s: unknown type '%s' (%s)", opt, s, embd ? "f16, q8_0, q6_k, f32" : "i2_s, tq2_0, tq1_0, f16");
}

static uint32_t cv_block(bitnet_type t) {
    switch (t) {
    case BITNET_TYPE_I2_S: return 128;
    case BITNET_TYPE_TQ1_0:
    case BITNET_TYPE_TQ2_0:
    case BITNET_TYPE_Q6_K: return 256;
    case BITNET_TYPE_Q8_0: return 32;
    default: return 1;
    }
}

static uint64_t cv_nbytes(bitnet_type t, int64_t rows, int64_t cols) {
    size_t need = 0;
    float dummy = 0;
    (void)bitnet_quantize(t, &dummy, rows, cols, NULL, 0, &need);
    return need;
}

/* ---- progress ------------------------------------------------------------------------ */

typedef struct cv_progress {
    int      tty;
    uint64_t done, total;
    size_t   i, n;
} cv_progress;

static void cv_progress_show(cv_progress *p, const cv_map *m) {
    if (cv_quiet) return;
    if (p->tty) {
        int w = 30, fill = p->total ? (int)((double)p->done / (double)p->total * w) : w;
        fprintf(stderr, "\r[%.*s%*s] %3d%% %-40.40s", fill, "##############################", w - fill, "",
                p->total ? (int)(100.0 * (double)p->done / (double)p->total) : 100, m ? m->gguf : "done");
        if (!m) fputc('\n', stderr);
    } else if (m) {
        fprintf(stderr, "[%zu/%zu] %-32s %-6s {%lld, %lld}\n", p->i + 1, p->n, m->gguf, bitnet_type_name(m->type),
                (long long)m->ne[0], (long long)m->ne[1]);
    }
}

/* ---- tensor conversion ----------------------------------------------------------------- */

static int cv_write(bitnet_gguf_writer *w, const void *p, size_t n, cv_progress *pr) {
    if (bitnet_gguf_writer_write(w, p, n) != BITNET_OK) return cv_fail("writing: %s", bitnet_last_error());
    pr->done += n;
    return 0;
}

/* Ternary values of a projection as float, rows in GGUF order (permuted for llama q/k). */
static int cv_ternary_values(const cv_hparams *hp, const cv_st *st, const cv_map *m, float *v) {
    const int64_t cols = m->ne[0], rows = m->ne[1];
    const cv_tensor *t = m->src;
    if (m->scale) {
        float ws;
        if (cv_st_read_f32(st, m->scale, 0, 1, &ws) != 0) return -1;
        if (!isfinite(ws) || ws == 0.0f) return cv_fail("tensor '%s': weight_scale %g is not usable", m->scale->name, ws);
        const float s = hp->scale_divides ? 1.0f / ws : ws;
        const int64_t P = rows / 4;
        uint8_t *buf = malloc((size_t)cols);
        if (!buf) return cv_fail("out of memory");
        for (int64_t p = 0; p < P; p++) {
            if (cv_st_read_raw(st, t, (uint64_t)(p * cols), (size_t)cols, buf) != 0) {
                free(buf);
                return -1;
            }
            for (int k = 0; k < 4; k++)
                for (int64_t c = 0; c < cols; c++) {
                    int code = (buf[c] >> (2 * k)) & 3;
                    if (code == 3) {
                        free(buf);
                        return cv_fail("tensor '%s': packed code 3 at byte row %lld (only 0, 1, 2 are ternary)",
                                       t->name, (long long)p);
                    }
                    v[(k * P + p) * cols + c] = (float)(code - 1) * s;
                }
        }
        free(buf);
    } else {
        if (cv_st_read_f32(st, t, 0, t->n_elem, v) != 0) return -1;
        double sum = 0;
        for (int64_t i = 0; i < t->n_elem; i++) {
            if (!isfinite(v[i])) return cv_fail("tensor '%s': non-finite value at element %lld", t->name, (long long)i);
            sum += fabs((double)v[i]);
        }
        float mean = (float)(sum / (double)t->n_elem);
        if (mean < 1e-5f) mean = 1e-5f;
        const float s = 1.0f / mean;
        for (int64_t i = 0; i < t->n_elem; i++) {
            float q = rintf(v[i] * s);
            q = q > 1 ? 1 : q < -1 ? -1 : q;
            v[i] = q / s;
        }
    }
    if (m->permute) {
        /* HF q/k rows -> llama.cpp NORM RoPE order: within each head, row j*(hd/2)+i
         * moves to 2i+j (the permutation llama.cpp's converters apply). */
        const int64_t nh = m->permute, hd = rows / nh;
        float *tmp = malloc((size_t)(hd * cols) * sizeof *tmp);
        if (!tmp) return cv_fail("out of memory");
        for (int64_t h = 0; h < nh; h++) {
            float *head = v + h * hd * cols;
            memcpy(tmp, head, (size_t)(hd * cols) * sizeof *tmp);
            for (int64_t j = 0; j < 2; j++)
                for (int64_t i = 0; i < hd / 2; i++)
                    memcpy(head + (2 * i + j) * cols, tmp + (j * (hd / 2) + i) * cols, (size_t)cols * sizeof *tmp);
        }
        free(tmp);
    }
    return 0;
}

static int cv_convert_one(const cv_hparams *hp, const cv_st *st, const cv_map *m, bitnet_gguf_writer *w,
                          cv_progress *pr) {
    const int64_t cols = m->ne[0], rows = m->ne[1];
    int rc = -1;
    float *v = NULL;
    void *dst = NULL;
    size_t need, wr;
    if (m->kind == CV_K_TERNARY) {
        v = malloc((size_t)(rows * cols) * sizeof *v);
        need = cv_nbytes(m->type, rows, cols);
        dst = malloc(need ? need : 1);
        if (!v || !dst) {
            cv_fail("tensor '%s': out of memory (%lld x %lld)", m->gguf, (long long)rows, (long long)cols);
            goto out;
        }
        if (cv_ternary_values(hp, st, m, v) != 0) goto out;
        if (bitnet_quantize(m->type, v, rows, cols, dst, need, &wr) != BITNET_OK) {
            cv_fail("tensor '%s': %s", m->gguf, bitnet_last_error());
            goto out;
        }
        rc = cv_write(w, dst, wr, pr);
        goto out;
    }
    /* everything else: row chunks of about 4M values */
    int64_t chunk = ((int64_t)1 << 22) / cols;
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    v = malloc((size_t)(chunk * cols) * sizeof *v);
    need = cv_nbytes(m->type, chunk, cols);
    dst = malloc(need ? need : 1);
    if (!v || !dst) {
        cv_fail("tensor '%s': out of memory", m->gguf);
        goto out;
    }
    for (int64_t r = 0; r < rows; r += chunk) {
        int64_t n = rows - r < chunk ? rows - r : chunk;
        if (cv_st_read_f32(st, m->src, r * cols, n * cols, v) != 0) goto out;
        if (bitnet_quantize(m->type, v, n, cols, dst, need, &wr) != BITNET_OK) {
            cv_fail("tensor '%s': %s", m->gguf, bitnet_last_error());
            goto out;
        }
        if (cv_write(w, dst, wr, pr) != 0) goto out;
    }
    rc = 0;
out:
    free(v);
    free(dst);
    return rc;
}

/* ---- metadata -------------------------------------------------------------------------- */

#define CV_W(call) do { if ((call) != BITNET_OK) { cv_fail("GGUF writer: %s", bitnet_last_error()); return -1; } } while (0)

static int cv_kv_u32(bitnet_gguf_writer *w, const char *arch, const char *name, int64_t v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, name);
    uint32_t u = (uint32_t)v;
    CV_W(bitnet_gguf_writer_set_scalar(w, key, BITNET_GGUF_UINT32, &u));
    return 0;
}

static int cv_kv_f32(bitnet_gguf_writer *w, const char *arch, const char *name, double v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, name);
    float f = (float)v;
    CV_W(bitnet_gguf_writer_set_scalar(w, key, BITNET_GGUF_FLOAT32, &f));
    return 0;
}

static int cv_metadata(bitnet_gguf_writer *w, const cv_hparams *hp, const char *arch, const char *name,
                       bitnet_type wtype, const cv_vocab *vocab) {
    CV_W(bitnet_gguf_writer_set_str(w, "general.architecture", arch, strlen(arch)));
    CV_W(bitnet_gguf_writer_set_str(w, "general.name", name, strlen(name)));
    uint32_t ft = wtype == BITNET_TYPE_I2_S ? 40 : wtype == BITNET_TYPE_TQ1_0 ? 36 : wtype == BITNET_TYPE_TQ2_0 ? 37 : 1;
    CV_W(bitnet_gguf_writer_set_scalar(w, "general.file_type", BITNET_GGUF_UINT32, &ft));
    uint32_t qv = 2;
    CV_W(bitnet_gguf_writer_set_scalar(w, "general.quantization_version", BITNET_GGUF_UINT32, &qv));
    if (cv_kv_u32(w, arch, "vocab_size", (int64_t)vocab->n) || cv_kv_u32(w, arch, "context_length", hp->n_ctx) ||
        cv_kv_u32(w, arch, "embedding_length", hp->n_embd) || cv_kv_u32(w, arch, "block_count", hp->n_layer) ||
        cv_kv_u32(w, arch, "feed_forward_length", hp->n_ff) ||
        cv_kv_u32(w, arch, "rope.dimension_count", hp->head_dim) ||
        cv_kv_u32(w, arch, "attention.head_count", hp->n_head) ||
        cv_kv_u32(w, arch, "attention.head_count_kv", hp->n_head_kv) ||
        cv_kv_f32(w, arch, "attention.layer_norm_rms_epsilon", hp->eps) ||
        cv_kv_f32(w, arch, "rope.freq_base", hp->rope_theta))
        return -1;
    if (hp->head_dim * hp->n_head != hp->n_embd &&
        (cv_kv_u32(w, arch, "attention.key_length", hp->head_dim) ||
         cv_kv_u32(w, arch, "attention.value_length", hp->head_dim)))
        return -1;
    if (hp->family == CV_FAM_BITNET_2B4T && strcmp(arch, "bitnet") == 0) {
        /* 2B-4T under upstream's arch name: tell libbitnet the FFN is ReLU^2 */
        CV_W(bitnet_gguf_writer_set_str(w, "bitnet.hidden_act", "relu2", 5));
    }
    return cv_vocab_write(vocab, w);
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    const char *dir = NULL, *out = NULL, *pre = NULL, *name = NULL;
    bitnet_type wtype = BITNET_TYPE_I2_S, etype = BITNET_TYPE_F16, otype = (bitnet_type)-1;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
#define CV_ARG() (more ? argv[++i] : (cv_fail("%s needs a value", a), exit(2), (char *)NULL))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(cv_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            ex_print_version("bitnet-convert");
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--outfile")) {
            out = CV_ARG();
        } else if (!strcmp(a, "--type") || !strcmp(a, "--outtype")) {
            if (cv_parse_type(a, CV_ARG(), 0, &wtype) != 0) return 2;
        } else if (!strcmp(a, "--embd-type")) {
            if (cv_parse_type(a, CV_ARG(), 1, &etype) != 0) return 2;
        } else if (!strcmp(a, "--output-type")) {
            if (cv_parse_type(a, CV_ARG(), 1, &otype) != 0) return 2;
        } else if (!strcmp(a, "--pre")) {
            pre = CV_ARG();
        } else if (!strcmp(a, "--name")) {
            name = CV_ARG();
        } else if (!strcmp(a, "-f") || !strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            cv_quiet = 1;
        } else if (a[0] == '-') {
            cv_fail("unknown option '%s'\n%s", a, cv_usage);
            return 2;
        } else if (!dir) {
            dir = a;
        } else {
            cv_fail("unexpected argument '%s'", a);
            return 2;
        }
#undef CV_ARG
    }
    if (!dir) {
        fputs(cv_usage, stderr);
        return 2;
    }
    if ((int)otype < 0) otype = etype;
    static const char *const tnames[] = {[BITNET_TYPE_I2_S] = "i2_s", [BITNET_TYPE_TQ1_0] = "tq1_0",
                                         [BITNET_TYPE_TQ2_0] = "tq2_0", [BITNET_TYPE_F16] = "f16"};
    char defout[4096];
    if (!out) {
        char fn[64];
        snprintf(fn, sizeof fn, "ggml-model-%s.gguf", tnames[wtype]);
        if (cv_path(defout, sizeof defout, dir, fn) != 0) return cv_fail("%s: path too long", dir), 1;
        out = defout;
    }
    if (!force && access(out, F_OK) == 0) {
        cv_fail("%s already exists (use --force to overwrite)", out);
        return 1;
    }
    char dname[256];
    if (!name) {
        const char *b = dir + strlen(dir);
        while (b > dir && b[-1] == '/') b--;
        const char *e = b;
        while (b > dir && b[-1] != '/') b--;
        snprintf(dname, sizeof dname, "%.*s", (int)(e - b), b);
        name = dname[0] ? dname : "model";
    }

    cv_hparams hp;
    cv_st st;
    cv_vocab vocab;
    cv_map *maps = NULL;
    size_t n_maps = 0;
    bitnet_gguf_writer *w = NULL;
    int rc = 1;
    memset(&st, 0, sizeof st);
    memset(&vocab, 0, sizeof vocab);
    if (cv_hparams_load(&hp, dir) != 0) goto done;
    if (cv_st_open_dir(&st, dir) != 0) goto done;
    if (cv_map_tensors(&hp, &st, &maps, &n_maps) != 0) goto done;
    if (cv_vocab_load(&vocab, dir, hp.n_vocab, pre) != 0) goto done;
    if ((int64_t)vocab.n != hp.n_vocab) {
        cv_fail("the tokenizer has %zu tokens but config.json vocab_size (and the embedding) has %lld", vocab.n,
                (long long)hp.n_vocab);
        goto done;
    }
    const char *arch = cv_gguf_arch(&hp, wtype);
    cv_info("%s: %s, %lld layers, hidden %lld, heads %lld/%lld, ffn %lld, vocab %lld -> arch '%s', %s", dir,
            hp.hf_arch, (long long)hp.n_layer, (long long)hp.n_embd, (long long)hp.n_head, (long long)hp.n_head_kv,
            (long long)hp.n_ff, (long long)hp.n_vocab, arch, bitnet_type_name(wtype));

    if (bitnet_gguf_writer_create(&w) != BITNET_OK) {
        cv_fail("%s", bitnet_last_error());
        goto done;
    }
    if (cv_metadata(w, &hp, arch, name, wtype, &vocab) != 0) goto done;
    cv_progress pr = {isatty(2), 0, 0, 0, n_maps};
    for (size_t i = 0; i < n_maps; i++) {
        cv_map *m = &maps[i];
        bitnet_type t = m->kind == CV_K_NORM ? BITNET_TYPE_F32 : m->kind == CV_K_EMBD ? etype
                      : m->kind == CV_K_OUTPUT ? otype : wtype;
        /* I2_S blocks run over the flattened tensor (rows may end inside one, as the 3B
         * model's ffn_down does): only the element count must be a multiple of 128 */
        if (t == BITNET_TYPE_I2_S ? (m->ne[0] * m->ne[1]) % 128 != 0 : m->ne[0] % cv_block(t) != 0) {
            cv_info("warning: tensor '%s': %s %lld is not a multiple of %s's block of %u; writing F16", m->gguf,
                    t == BITNET_TYPE_I2_S ? "element count" : "row length",
                    (long long)(t == BITNET_TYPE_I2_S ? m->ne[0] * m->ne[1] : m->ne[0]), bitnet_type_name(t),
                    cv_block(t));
            t = BITNET_TYPE_F16;
        }
        m->type = t;
        if (bitnet_gguf_writer_add_tensor(w, m->gguf, (uint32_t)m->n_dims, m->ne, t) != BITNET_OK) {
            cv_fail("%s", bitnet_last_error());
            goto done;
        }
        pr.total += cv_nbytes(t, m->ne[1], m->ne[0]);
    }

    int n = snprintf(cv_tmp_path, sizeof cv_tmp_path, "%s.%ld.part", out, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof cv_tmp_path) {
        cv_fail("%s: path too long", out);
        goto done;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cv_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    cv_tmp_live = 1;
    if (bitnet_gguf_writer_begin(w, cv_tmp_path) != BITNET_OK) {
        cv_fail("%s", bitnet_last_error());
        goto done;
    }
    for (size_t i = 0; i < n_maps; i++) {
        pr.i = i;
        cv_progress_show(&pr, &maps[i]);
        if (cv_convert_one(&hp, &st, &maps[i], w, &pr) != 0) goto done;
    }
    if (bitnet_gguf_writer_finish(w) != BITNET_OK) {
        cv_fail("%s", bitnet_last_error());
        goto done;
    }
    if (pr.tty) cv_progress_show(&pr, NULL);
    if (!force && access(out, F_OK) == 0) {
        cv_fail("%s appeared while converting (use --force to overwrite)", out);
        goto done;
    }
    if (rename(cv_tmp_path, out) != 0) {
        cv_fail("cannot rename %s to %s: %s", cv_tmp_path, out, strerror(errno));
        goto done;
    }
    cv_tmp_live = 0;
    cv_info("wrote %s (%zu tensors, %.1f MiB)", out, n_maps, (double)pr.done / (1024.0 * 1024.0));
    rc = 0;
done:
    bitnet_gguf_writer_free(w);
    if (cv_tmp_live) {
        cv_tmp_live = 0;
        unlink(cv_tmp_path);
    }
    free(maps);
    cv_vocab_free(&vocab);
    cv_st_close(&st);
    return rc;
}
