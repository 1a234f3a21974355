/*
 * bitnet-gen-dummy -- write a GGUF model with random ternary weights and a usable
 * vocabulary, reproducibly from a seed (the C counterpart of bitnet.cpp's
 * generate-dummy-bitnet-model.py).  Public API only.
 *
 *   bitnet-gen-dummy --size 0.7B --type tq2_0 --seed 1 -o model.gguf
 *
 * The model.  Every projection W (out x in) is s * T with T random ternary
 * (P(-1) = P(+1) = 0.3, P(0) = 0.4) and one scale s per tensor (as an absmean-
 * ternarized checkpoint stores it), s ~ 1/sqrt(0.6 * in) so activations keep their
 * size, rounded to f16 so that I2_S (scale = max |w|), TQ1_0/TQ2_0 (per-block f16 scale
 * = max |w| of the block) and F16 all store exactly the same values: every --type
 * represents the same model.  Norm weights are uniform in [0.9, 1.1]; the embedding is
 * uniform with standard deviation 2.5/sqrt(n_embd), so tied-embedding logits have a
 * spread of a few units.  Every tensor has its own RNG stream (xoshiro256** seeded by
 * splitmix64 from seed and tensor index), so the output depends only on the seed and
 * the shape, not on the order of work.
 *
 * Architectures (tensor names and metadata keys as the files users have):
 *   bitnet        1bitLLM bitnet_b1_58 family (upstream llama.cpp's arch): sub-norms,
 *                 tied embedding, SentencePiece-style vocabulary by default;
 *   bitnet-b1.58  Microsoft BitNet-b1.58-2B-4T (also bitnet-25): same tensors, LLaMA-3
 *                 byte-level BPE vocabulary, the BITNETAssistant chat template;
 *   llama         LLaMA-architecture ternary models: no sub-norms, separate output.weight.
 *
 * Presets (--size; flags override single dims):
 *   125M  bitnet        12L  768d 12/12 heads ff 2560  vocab 32002  ctx 2048  theta 1e4 (SPM)
 *   0.7B  bitnet        24L 1536d 16/16 heads ff 4096  vocab 32002  ctx 2048  theta 1e4 (SPM)
 *   2B    bitnet-b1.58  30L 2560d 20/5  heads ff 6912  vocab 128256 ctx 4096  theta 5e5 (BPE)
 *   3B    bitnet        26L 3200d 32/32 heads ff 8640  vocab 32002  ctx 2048  theta 1e4 (SPM)
 *   8B    llama         32L 4096d 32/8  heads ff 14336 vocab 128256 ctx 8192  theta 5e5 (BPE)
 */
#include "args.h"

#include "bitnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- RNG (xoshiro256** seeded by splitmix64) --------------------------------------------- */

typedef struct rng { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s, out = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl64(s[3], 45);
    return out;
}

static double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* ---- growable string list ------------------------------------------------------------------- */

typedef struct strlist {
    char   **s;
    float   *score;
    int32_t *type;
    size_t   n, cap;
    /* open-addressing hash set over s[] for duplicate detection */
    size_t  *hash;
    size_t   hcap;
} strlist;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        ex_error("out of memory");
        exit(1);
    }
    return q;
}

static int sl_has(const strlist *l, const char *s) {
    if (!l->hcap) return 0;
    for (size_t i = fnv1a(s) & (l->hcap - 1);; i = (i + 1) & (l->hcap - 1)) {
        if (l->hash[i] == (size_t)-1) return 0;
        if (strcmp(l->s[l->hash[i]], s) == 0) return 1;
    }
}

static void sl_rehash(strlist *l) {
    l->hcap = l->hcap ? l->hcap * 2 : 1024;
    l->hash = xrealloc(l->hash, l->hcap * sizeof *l->hash);
    memset(l->hash, 0xff, l->hcap * sizeof *l->hash);
    for (size_t k = 0; k < l->n; k++) {
        size_t i = fnv1a(l->s[k]) & (l->hcap - 1);
        while (l->hash[i] != (size_t)-1) i = (i + 1) & (l->hcap - 1);
        l->hash[i] = k;
    }
}

/* Append s unless present (force: append even if present). Returns 1 if added. */
static int sl_add(strlist *l, const char *s, float score, int32_t type, int force) {
    if (!force && sl_has(l, s)) return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->s = xrealloc(l->s, l->cap * sizeof *l->s);
        l->score = xrealloc(l->score, l->cap * sizeof *l->score);
        l->type = xrealloc(l->type, l->cap * sizeof *l->type);
    }
    size_t len = strlen(s);
    l->s[l->n] = xrealloc(NULL, len + 1);
    memcpy(l->s[l->n], s, len + 1);
    l->score[l->n] = score;
    l->type[l->n] = type;
    l->n++;
    if (l->n * 2 > l->hcap) {
        sl_rehash(l);
    } else {
        size_t i = fnv1a(s) & (l->hcap - 1);
        while (l->hash[i] != (size_t)-1) i = (i + 1) & (l->hcap - 1);
        l->hash[i] = l->n - 1;
    }
    return 1;
}

static void sl_free(strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    free(l->score);
    free(l->type);
    free(l->hash);
    memset(l, 0, sizeof *l);
}

/* ---- vocabularies -------------------------------------------------------------------------------- */

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* Frequent English words: enough to make ordinary text tokenize into words. */
static const char *const k_words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on",
    "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they",
    "you", "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more",
    "when", "will", "would", "who", "so", "no", "she", "other", "its", "may", "these", "what", "them",
    "than", "some", "him", "time", "into", "only", "do", "out", "people", "new", "up", "two", "like",
    "could", "also", "first", "then", "our", "any", "my", "me", "now", "very", "just", "over", "such",
    "how", "year", "after", "most", "made", "many", "world", "where", "your", "did", "about", "should",
    "because", "each", "those", "well", "good", "work", "life", "day", "way", "know", "make", "see",
    "use", "used", "between", "through", "while", "long", "great", "old", "little", "man", "own",
    "here", "same", "under", "still", "place", "hello", "model", "language", "question", "answer",
    "what", "why", "yes", "thank", "please", "help", "tell", "story", "once", "upon", "name", "water",
    "sun", "moon", "light", "house", "city", "country", "small", "large", "number", "word", "said",
    "think", "want", "need", "find", "give", "go", "come", "take", "get", "look", "write", "read",
};

/* GPT-2 byte-to-unicode: printable Latin-1 bytes map to themselves, the other 68 bytes
 * to U+0100.. in increasing order.  Writes the UTF-8 of byte b's character to out. */
static void byte_to_unicode(unsigned b, char out[3]) {
    unsigned cp;
    if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) {
        cp = b;
    } else {
        unsigned k = 0;
        for (unsigned x = 0; x < b; x++)
            if (!((x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff))) k++;
        cp = 0x100 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

typedef struct vocab {
    strlist tok;    /* tokens with score and type */
    strlist merges; /* BPE only */
    int32_t bos, eos, eot, unk;
    int     bpe;
} vocab;

/* Add the BPE merges that build `word` (already in byte-to-unicode form) left to right,
 * and the tokens they produce. */
static void bpe_add_chain(vocab *v, const char *word, size_t max_tok) {
    /* The merge after i bytes joins word[0..i) with the UTF-8 character that follows. */
    size_t n = strlen(word), i = 0;
    char merged[128], rule[130];
    if (n >= sizeof merged) return;
    while (i < n) {
        size_t cl = 1;
        while (i + cl < n && ((unsigned char)word[i + cl] & 0xc0) == 0x80) cl++;
        if (i > 0) {
            if (v->tok.n >= max_tok) return;
            memcpy(merged, word, i + cl);
            merged[i + cl] = 0;
            memcpy(rule, word, i);
            rule[i] = ' ';
            memcpy(rule + i + 1, word + i, cl);
            rule[i + 1 + cl] = 0;
            if (!sl_has(&v->tok, merged)) {
                sl_add(&v->merges, rule, 0, 0, 0);
                sl_add(&v->tok, merged, 0, TT_NORMAL, 0);
            }
        }
        i += cl;
    }
}

static const char *const k_llama3_named[10] = {
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>", "<|reserved_special_token_3|>", "<|start_header_id|>",
    "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>",
};

/* LLaMA-3-style byte-level BPE: 256 byte tokens, merges building frequent words (with
 * and without a leading space, lower-case and capitalised), letter pairs, letter
 * triples (bare and after a space), letter quadruples; then the special
 * tokens (ids 128000.. when the vocabulary has 128256 entries, else the last ids), with
 * filler tokens in between. */
static int build_bpe(vocab *v, size_t n_vocab) {
    size_t n_special = n_vocab >= 128256 ? 256 : 10;
    if (n_vocab < 256 + n_special + 1) {
        ex_error("a BPE vocabulary needs at least %zu tokens", 256 + n_special + 1);
        return 0;
    }
    size_t first_special = n_vocab >= 128256 ? 128000 : n_vocab - n_special;
    v->bpe = 1;
    char c[3];
    for (unsigned b = 0; b < 256; b++) {
        byte_to_unicode(b, c);
        sl_add(&v->tok, c, 0, TT_NORMAL, 0);
    }
    const char *sp = "\xc4\xa0"; /* U+0120, the mapped space */
    char w[96];
    for (int pass = 0; pass < 4; pass++) {
        for (size_t k = 0; k < sizeof k_words / sizeof *k_words; k++) {
            if (pass == 0) snprintf(w, sizeof w, "%s%s", sp, k_words[k]);
            else if (pass == 1) snprintf(w, sizeof w, "%s", k_words[k]);
            else if (pass == 2) snprintf(w, sizeof w, "%s%c%s", sp, k_words[k][0] - 32, k_words[k] + 1);
            else snprintf(w, sizeof w, "%c%s", k_words[k][0] - 32, k_words[k] + 1);
            bpe_add_chain(v, w, first_special);
        }
    }
    for (char a = 'a'; a <= 'z'; a++)
        for (char b = 'a'; b <= 'z'; b++) {
            snprintf(w, sizeof w, "%s%c%c", sp, a, b);
            bpe_add_chain(v, w, first_special);
            snprintf(w, sizeof w, "%c%c", a, b);
            bpe_add_chain(v, w, first_special);
        }
    for (int pass = 0; pass < 3 && v->tok.n < first_special; pass++)
        for (char a = 'a'; a <= 'z'; a++)
            for (char b = 'a'; b <= 'z'; b++)
                for (char d = 'a'; d <= 'z'; d++) {
                    if (pass == 0) {
                        snprintf(w, sizeof w, "%c%c%c", a, b, d);
                        bpe_add_chain(v, w, first_special);
                    } else if (pass == 1) {
                        snprintf(w, sizeof w, "%s%c%c%c", sp, a, b, d);
                        bpe_add_chain(v, w, first_special);
                    } else {
                        for (char e = 'a'; e <= 'z' && v->tok.n < first_special; e++) {
                            snprintf(w, sizeof w, "%c%c%c%c", a, b, d, e);
                            bpe_add_chain(v, w, first_special);
                        }
                    }
                }
    char buf[64];
    for (size_t i = 0; v->tok.n < first_special; i++) {
        snprintf(buf, sizeof buf, "[FILL%zu]", i);
        sl_add(&v->tok, buf, 0, TT_NORMAL, 0);
    }
    for (size_t i = 0; i < n_special; i++) {
        if (i < 10) {
            snprintf(buf, sizeof buf, "%s", k_llama3_named[i]);
        } else {
            snprintf(buf, sizeof buf, "<|reserved_special_token_%zu|>", i - 5);
        }
        sl_add(&v->tok, buf, 0, TT_CONTROL, 0);
    }
    for (size_t i = 0; v->tok.n < n_vocab; i++) { /* n_vocab above the specials */
        snprintf(buf, sizeof buf, "[EXTRA%zu]", i);
        sl_add(&v->tok, buf, 0, TT_NORMAL, 0);
    }
    v->bos = (int32_t)first_special;
    v->eot = (int32_t)first_special + 9;
    v->eos = v->eot;
    v->unk = -1;
    return 1;
}

/* SentencePiece-style: <unk> <s> </s>, byte tokens <0x00>..<0xFF>, then pieces with
 * decreasing scores: "▁", single characters, "▁"+letter, frequent words and their
 * prefixes (so the highest-score merges can reach them), letter pairs, capitalised
 * words, letter triples (bare and after "▁"), letter quadruples; filler pieces only if
 * the vocabulary is larger still. */
static int build_spm(vocab *v, size_t n_vocab) {
    if (n_vocab < 3 + 256 + 1) {
        ex_error("a SentencePiece vocabulary needs at least 260 tokens");
        return 0;
    }
    v->bpe = 0;
    sl_add(&v->tok, "<unk>", 0, TT_UNKNOWN, 0);
    sl_add(&v->tok, "<s>", 0, TT_CONTROL, 0);
    sl_add(&v->tok, "</s>", 0, TT_CONTROL, 0);
    char buf[96];
    for (unsigned b = 0; b < 256; b++) {
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        sl_add(&v->tok, buf, 0, TT_BYTE, 0);
    }
    const char *U = "\xe2\x96\x81"; /* U+2581 */
    float score = 0.0f;
#define ADD(str) do { if (v->tok.n < n_vocab && sl_add(&v->tok, (str), score, TT_NORMAL, 0)) score -= 1.0f; } while (0)
    ADD(U);
    const char *singles = "etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,!?;:'\"-()/";
    for (const char *p = singles; *p; p++) {
        snprintf(buf, sizeof buf, "%c", *p);
        ADD(buf);
    }
    for (const char *p = singles; *p; p++) {
        snprintf(buf, sizeof buf, "%s%c", U, *p);
        ADD(buf);
    }
    for (size_t k = 0; k < sizeof k_words / sizeof *k_words; k++) {
        size_t L = strlen(k_words[k]);
        for (size_t len = 2; len <= L; len++) {
            snprintf(buf, sizeof buf, "%s%.*s", U, (int)len, k_words[k]);
            ADD(buf);
            snprintf(buf, sizeof buf, "%.*s", (int)len, k_words[k]);
            ADD(buf);
        }
    }
    for (char a = 'a'; a <= 'z'; a++)
        for (char b = 'a'; b <= 'z'; b++) {
            snprintf(buf, sizeof buf, "%c%c", a, b);
            ADD(buf);
            snprintf(buf, sizeof buf, "%s%c%c", U, a, b);
            ADD(buf);
        }
    for (size_t k = 0; k < sizeof k_words / sizeof *k_words; k++) { /* capitalised words */
        size_t L = strlen(k_words[k]);
        for (size_t len = 2; len <= L; len++) {
            snprintf(buf, sizeof buf, "%s%c%.*s", U, k_words[k][0] - 32, (int)len - 1, k_words[k] + 1);
            ADD(buf);
        }
    }
    for (int pass = 0; pass < 3 && v->tok.n < n_vocab; pass++)
        for (char a = 'a'; a <= 'z'; a++)
            for (char b = 'a'; b <= 'z'; b++)
                for (char d = 'a'; d <= 'z'; d++) {
                    if (pass == 0) {
                        snprintf(buf, sizeof buf, "%c%c%c", a, b, d);
                        ADD(buf);
                    } else if (pass == 1) {
                        snprintf(buf, sizeof buf, "%s%c%c%c", U, a, b, d);
                        ADD(buf);
                    } else {
                        for (char e = 'a'; e <= 'z' && v->tok.n < n_vocab; e++) {
                            snprintf(buf, sizeof buf, "%c%c%c%c", a, b, d, e);
                            ADD(buf);
                        }
                    }
                }
#undef ADD
    for (size_t i = 0; v->tok.n < n_vocab; i++) {
        snprintf(buf, sizeof buf, "[FILL%zu]", i);
        sl_add(&v->tok, buf, score, TT_NORMAL, 0);
        score -= 1.0f;
    }
    v->unk = 0;
    v->bos = 1;
    v->eos = 2;
    v->eot = -1;
    return 1;
}

/* ---- model description ------------------------------------------------------------------------------ */

typedef struct shape {
    const char *arch;
    int layers, embd, heads, heads_kv, ff, vocab, ctx;
    double theta;
    int bpe; /* vocabulary kind */
} shape;

static int preset(const char *size, shape *s) {
    static const struct { const char *name; shape s; } P[] = {
        {"125M", {"bitnet", 12, 768, 12, 12, 2560, 32002, 2048, 10000.0, 0}},
        {"0.7B", {"bitnet", 24, 1536, 16, 16, 4096, 32002, 2048, 10000.0, 0}},
        {"2B", {"bitnet-b1.58", 30, 2560, 20, 5, 6912, 128256, 4096, 500000.0, 1}},
        {"3B", {"bitnet", 26, 3200, 32, 32, 8640, 32002, 2048, 10000.0, 0}},
        {"8B", {"llama", 32, 4096, 32, 8, 14336, 128256, 8192, 500000.0, 1}},
    };
    for (size_t i = 0; i < sizeof P / sizeof *P; i++)
        if (strcmp(P[i].name, size) == 0) {
            *s = P[i].s;
            return 1;
        }
    return 0;
}

/* The chat template written for each vocabulary kind (our own template texts). */
static const char *const k_tmpl_bitnet =
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + '\\n\\nBITNETAssistant: ' + eos_token }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";
static const char *const k_tmpl_llama3 =
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

typedef struct tensor_plan {
    char        name[64];
    int64_t     ne[2];
    int         n_dims;
    bitnet_type type;
    int         kind; /* 0 norm, 1 projection, 2 embedding */
} tensor_plan;

static void check(bitnet_status st, const char *what) {
    if (st != BITNET_OK) ex_die_status("bitnet-gen-dummy", what, st);
}

static void set_u32(bitnet_gguf_writer *w, const char *arch, const char *key, uint32_t v) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    check(bitnet_gguf_writer_set_scalar(w, k, BITNET_GGUF_UINT32, &v), k);
}

static void set_f32(bitnet_gguf_writer *w, const char *arch, const char *key, float v) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    check(bitnet_gguf_writer_set_scalar(w, k, BITNET_GGUF_FLOAT32, &v), k);
}

/* Fill rows [r0, r0+nr) of tensor t (stream = its index) into f. */
static void gen_rows(const tensor_plan *t, uint64_t seed, uint64_t stream, int64_t r0, int64_t nr, float *f,
                     float pscale) {
    rng r = {{0, 0, 0, 0}}; /* seeded on the first row below */
    int64_t n0 = t->ne[0];
    /* one stream per row block of 64 rows, so chunked generation is order-independent */
    for (int64_t row = r0; row < r0 + nr; row++) {
        if (row == r0 || row % 64 == 0) {
            rng_seed(&r, seed, stream * 1000003ull + (uint64_t)(row / 64));
            for (int64_t skip = (row / 64) * 64; skip < row; skip++)
                for (int64_t j = 0; j < n0; j++) rng_next(&r);
        }
        float *d = f + (row - r0) * n0;
        for (int64_t j = 0; j < n0; j++) {
            double u = rng_uniform(&r);
            if (t->kind == 0) {
                d[j] = (float)(0.9 + 0.2 * u);
            } else if (t->kind == 1) {
                d[j] = u < 0.3 ? -pscale : u < 0.6 ? pscale : 0.0f;
            } else {
                d[j] = (float)((2.0 * u - 1.0) * pscale);
            }
        }
    }
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitnet-gen-dummy [options] -o FILE\n"
            "  --size 125M|0.7B|2B|3B|8B      preset shape (default 125M)\n"
            "  --arch bitnet|bitnet-b1.58|bitnet-25|llama   architecture (default: the preset's)\n"
            "  --type i2_s|tq2_0|tq1_0|f16    projection weight type (default i2_s)\n"
            "  --embd-type f16|q8_0|q6_k|f32  embedding/output type (default f16)\n"
            "  --vocab-kind spm|bpe           vocabulary kind (default: the preset's)\n"
            "  --layers N --embd N --heads N --heads-kv N --ff N --vocab N --ctx N   custom dims\n"
            "  --seed N                       RNG seed (default 0)\n"
            "  --layer-scale X                scale every layer's output projections (attn_output,\n"
            "                                 ffn_down) by X (default 1).  Small X (0.001) makes the layers\n"
            "                                 add little to the residual stream: the model is then close to\n"
            "                                 a fixed bigram map from its embedding and output layer, greedy\n"
            "                                 text falls into loops, and a model with fewer layers and the same\n"
            "                                 seed (same embedding, output and first layers) agrees with it\n"
            "                                 often -- an artificial model for measuring speculative decoding,\n"
            "                                 not a language model\n"
            "  -q, --quiet                    no progress output\n"
            "  -h, --help                     this text;  --version  the version\n");
}

enum { O_OUT = 1, O_SIZE, O_ARCH, O_TYPE, O_EMBD_TYPE, O_VOCAB_KIND, O_LAYERS, O_EMBD, O_HEADS, O_HEADS_KV, O_FF,
       O_VOCAB, O_CTX, O_SEED, O_QUIET, O_LAYER_SCALE };

static const ex_opt gd_opts[] = {
    {O_OUT, "-o|--outfile", EX_ARG, NULL},
    {O_SIZE, "--size", EX_ARG, NULL},
    {O_ARCH, "--arch", EX_ARG, NULL},
    {O_TYPE, "--type", EX_ARG, NULL},
    {O_EMBD_TYPE, "--embd-type", EX_ARG, NULL},
    {O_VOCAB_KIND, "--vocab-kind", EX_ARG, NULL},
    {O_LAYERS, "--layers", EX_ARG, NULL},
    {O_EMBD, "--embd", EX_ARG, NULL},
    {O_HEADS, "--heads", EX_ARG, NULL},
    {O_HEADS_KV, "--heads-kv", EX_ARG, NULL},
    {O_FF, "--ff", EX_ARG, NULL},
    {O_VOCAB, "--vocab", EX_ARG, NULL},
    {O_CTX, "--ctx", EX_ARG, NULL},
    {O_SEED, "--seed", EX_ARG, NULL},
    {O_LAYER_SCALE, "--layer-scale", EX_ARG, NULL},
    {O_QUIET, "-q|--quiet", EX_NOARG, NULL},
    {0, NULL, EX_NOARG, NULL},
};

static const ex_opt *const gd_tables[] = {gd_opts, ex_opts_std, NULL};

int main(int argc, char **argv) {
    shape s;
    preset("125M", &s);
    const char *out = NULL, *arch = NULL, *vkind = NULL;
    int layers = -1, embd = -1, heads = -1, heads_kv = -1, ff = -1, n_vocab = -1, ctx = -1, quiet = 0;
    bitnet_type wtype = BITNET_TYPE_I2_S, etype = BITNET_TYPE_F16;
    uint64_t seed = 0;
    double layer_scale = 1.0;
    static const bitnet_type wtypes[] = {BITNET_TYPE_I2_S, BITNET_TYPE_TQ2_0, BITNET_TYPE_TQ1_0, BITNET_TYPE_F16};
    static const bitnet_type etypes[] = {BITNET_TYPE_F16, BITNET_TYPE_Q8_0, BITNET_TYPE_Q6_K, BITNET_TYPE_F32};
    ex_args a;
    ex_args_init(&a, "bitnet-gen-dummy", argc, argv, gd_tables);
    for (int id; (id = ex_args_next(&a)) != EX_END;) {
        switch (id) {
        case EX_HELP: usage(stdout); return 0;
        case EX_POSITIONAL: ex_usage_error("unexpected argument '%s' (see bitnet-gen-dummy --help)", a.val);
        case O_OUT: out = a.val; break;
        case O_SIZE:
            if (!preset(a.val, &s)) ex_usage_error("--size must be 125M, 0.7B, 2B, 3B or 8B, got '%s'", a.val);
            break;
        case O_ARCH:
            ex_choice(&a, "bitnet|bitnet-b1.58|bitnet-25|llama");
            arch = a.val;
            break;
        case O_TYPE: wtype = wtypes[ex_choice(&a, "i2_s|tq2_0|tq1_0|f16")]; break;
        case O_EMBD_TYPE: etype = etypes[ex_choice(&a, "f16|q8_0|q6_k|f32")]; break;
        case O_VOCAB_KIND:
            ex_choice(&a, "spm|bpe");
            vkind = a.val;
            break;
        case O_LAYERS: layers = (int)ex_int(&a, 1, 512); break;
        case O_EMBD: embd = (int)ex_int(&a, 32, 65536); break;
        case O_HEADS: heads = (int)ex_int(&a, 1, 1024); break;
        case O_HEADS_KV: heads_kv = (int)ex_int(&a, 1, 1024); break;
        case O_FF: ff = (int)ex_int(&a, 32, 1 << 20); break;
        case O_VOCAB: n_vocab = (int)ex_int(&a, 260, 1 << 22); break;
        case O_CTX: ctx = (int)ex_int(&a, 1, 1 << 24); break;
        case O_SEED: seed = (uint64_t)ex_int(&a, 0, INT64_MAX); break;
        case O_LAYER_SCALE:
            layer_scale = ex_float(&a);
            if (!(layer_scale > 0.0 && layer_scale <= 1.0)) ex_usage_error("--layer-scale must be in (0, 1], got '%s'", a.val);
            break;
        case O_QUIET: quiet = 1; break;
        default: ex_usage_error("option '%s' does not apply to bitnet-gen-dummy", a.opt);
        }
    }
    if (!out) ex_usage_error("-o FILE is required (see bitnet-gen-dummy --help)");
    if (arch) s.arch = arch;
    if (layers > 0) s.layers = layers;
    if (embd > 0) s.embd = embd;
    if (heads > 0) {
        /* a preset with as many KV heads as heads (no GQA) keeps that property */
        if (heads_kv < 0 && (s.heads_kv == s.heads || s.heads_kv > heads)) s.heads_kv = heads;
        s.heads = heads;
    }
    if (heads_kv > 0) s.heads_kv = heads_kv;
    if (ff > 0) s.ff = ff;
    if (n_vocab > 0) s.vocab = n_vocab;
    if (ctx > 0) s.ctx = ctx;
    if (vkind) s.bpe = !strcmp(vkind, "bpe");
    if (s.embd % s.heads || s.heads % s.heads_kv) {
        ex_usage_error("--embd (%d) must be a multiple of --heads (%d), and --heads of --heads-kv (%d)", s.embd,
                       s.heads, s.heads_kv);
    }
    int head_dim = s.embd / s.heads;
    if (head_dim % 2) {
        ex_usage_error("head dimension %d (embd/heads) must be even for RoPE", head_dim);
    }
    /* TQ types: rows of whole 256-blocks.  I2_S: its 128-blocks run over the flattened
     * tensor, so only each tensor's element count must be a multiple of 128 (rows may
     * end inside a block, as the 3B model's 8640-wide ffn_down does). */
    int blk = wtype == BITNET_TYPE_TQ1_0 || wtype == BITNET_TYPE_TQ2_0 ? 256 : 1;
    if (s.embd % blk || s.ff % blk) {
        ex_usage_error("--type %s needs --embd (%d) and --ff (%d) to be multiples of %d (i2_s takes any shape)",
                       bitnet_type_name(wtype), s.embd, s.ff, blk);
    }
    if (wtype == BITNET_TYPE_I2_S) {
        const long long e = s.embd, kv = (long long)s.heads_kv * head_dim, f = s.ff;
        if ((e * e) % 128 || (e * kv) % 128 || (e * f) % 128) {
            ex_usage_error("--type i2_s needs every projection's element count to be a multiple of 128 "
                           "(embd %lld x embd, x %lld, x ff %lld)", e, kv, f);
        }
    }
    int eblk = etype == BITNET_TYPE_Q8_0 ? 32 : etype == BITNET_TYPE_Q6_K ? 256 : 1;
    if (s.embd % eblk) {
        ex_usage_error("--embd-type %s needs --embd (%d) to be a multiple of %d", bitnet_type_name(etype), s.embd,
                       eblk);
    }
    int is_llama = !strcmp(s.arch, "llama");

    vocab v;
    memset(&v, 0, sizeof v);
    if (!(s.bpe ? build_bpe(&v, (size_t)s.vocab) : build_spm(&v, (size_t)s.vocab))) return 2;

    /* ---- plan the tensors ---- */
    size_t n_t = 2 + (size_t)is_llama + (size_t)s.layers * 11;
    tensor_plan *T = calloc(n_t, sizeof *T);
    if (!T) return 1;
    size_t k = 0;
    int64_t n_kv = (int64_t)s.heads_kv * head_dim;
#define PLAN(nm, n0, n1, nd, ty, kd)                                                                   \
    do {                                                                                               \
        snprintf(T[k].name, sizeof T[k].name, "%s", nm);                                               \
        T[k].ne[0] = (n0); T[k].ne[1] = (n1); T[k].n_dims = (nd); T[k].type = (ty); T[k].kind = (kd);  \
        k++;                                                                                           \
    } while (0)
    PLAN("token_embd.weight", s.embd, s.vocab, 2, etype, 2);
    PLAN("output_norm.weight", s.embd, 1, 1, BITNET_TYPE_F32, 0);
    if (is_llama) PLAN("output.weight", s.embd, s.vocab, 2, etype, 2);
    for (int l = 0; l < s.layers; l++) {
        char nm[64];
#define PL(suffix, n0, n1, nd, ty, kd) do { snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix); PLAN(nm, n0, n1, nd, ty, kd); } while (0)
        PL("attn_norm.weight", s.embd, 1, 1, BITNET_TYPE_F32, 0);
        PL("attn_q.weight", s.embd, s.embd, 2, wtype, 1);
        PL("attn_k.weight", s.embd, n_kv, 2, wtype, 1);
        PL("attn_v.weight", s.embd, n_kv, 2, wtype, 1);
        PL("attn_output.weight", s.embd, s.embd, 2, wtype, 1);
        if (!is_llama) PL("attn_sub_norm.weight", s.embd, 1, 1, BITNET_TYPE_F32, 0);
        PL("ffn_norm.weight", s.embd, 1, 1, BITNET_TYPE_F32, 0);
        PL("ffn_gate.weight", s.embd, s.ff, 2, wtype, 1);
        PL("ffn_up.weight", s.embd, s.ff, 2, wtype, 1);
        PL("ffn_down.weight", s.ff, s.embd, 2, wtype, 1);
        if (!is_llama) PL("ffn_sub_norm.weight", s.ff, 1, 1, BITNET_TYPE_F32, 0);
#undef PL
    }
#undef PLAN
    n_t = k;

    /* ---- metadata ---- */
    bitnet_gguf_writer *w = NULL;
    check(bitnet_gguf_writer_create(&w), "creating the writer");
    check(bitnet_gguf_writer_set_str(w, "general.architecture", s.arch, strlen(s.arch)), "general.architecture");
    char name[128];
    if (layer_scale != 1.0)
        snprintf(name, sizeof name, "bitnet-dummy %s %dL %dd seed %llu layer-scale %g", s.arch, s.layers, s.embd,
                 (unsigned long long)seed, layer_scale);
    else
        snprintf(name, sizeof name, "bitnet-dummy %s %dL %dd seed %llu", s.arch, s.layers, s.embd,
                 (unsigned long long)seed);
    check(bitnet_gguf_writer_set_str(w, "general.name", name, strlen(name)), "general.name");
    set_u32(w, s.arch, "vocab_size", (uint32_t)s.vocab);
    set_u32(w, s.arch, "context_length", (uint32_t)s.ctx);
    set_u32(w, s.arch, "embedding_length", (uint32_t)s.embd);
    set_u32(w, s.arch, "block_count", (uint32_t)s.layers);
    set_u32(w, s.arch, "feed_forward_length", (uint32_t)s.ff);
    set_u32(w, s.arch, "rope.dimension_count", (uint32_t)head_dim);
    set_u32(w, s.arch, "attention.head_count", (uint32_t)s.heads);
    set_u32(w, s.arch, "attention.head_count_kv", (uint32_t)s.heads_kv);
    set_f32(w, s.arch, "attention.layer_norm_rms_epsilon", 1e-5f);
    set_f32(w, s.arch, "rope.freq_base", (float)s.theta);
    /* llama.cpp's ftype numbers: MOSTLY_F16 1, TQ1_0 36, TQ2_0 37; bitnet.cpp's I2_S 40 */
    uint32_t ftype = wtype == BITNET_TYPE_I2_S ? 40 : wtype == BITNET_TYPE_TQ1_0 ? 36 : wtype == BITNET_TYPE_TQ2_0 ? 37 : 1;
    check(bitnet_gguf_writer_set_scalar(w, "general.file_type", BITNET_GGUF_UINT32, &ftype), "general.file_type");
    uint32_t qv = 2;
    check(bitnet_gguf_writer_set_scalar(w, "general.quantization_version", BITNET_GGUF_UINT32, &qv),
          "general.quantization_version");
    const char *tm = v.bpe ? "gpt2" : "llama";
    check(bitnet_gguf_writer_set_str(w, "tokenizer.ggml.model", tm, strlen(tm)), "tokenizer.ggml.model");
    if (v.bpe && !strcmp(s.arch, "llama")) {
        const char *pre = "llama-bpe";
        check(bitnet_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre, strlen(pre)), "tokenizer.ggml.pre");
    }
    check(bitnet_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", (const char *const *)v.tok.s, NULL, v.tok.n),
          "tokenizer.ggml.tokens");
    check(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.scores", BITNET_GGUF_FLOAT32, v.tok.score, v.tok.n),
          "tokenizer.ggml.scores");
    check(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BITNET_GGUF_INT32, v.tok.type, v.tok.n),
          "tokenizer.ggml.token_type");
    if (v.bpe)
        check(bitnet_gguf_writer_set_str_array(w, "tokenizer.ggml.merges", (const char *const *)v.merges.s, NULL,
                                               v.merges.n),
              "tokenizer.ggml.merges");
    uint32_t id = (uint32_t)v.bos;
    check(bitnet_gguf_writer_set_scalar(w, "tokenizer.ggml.bos_token_id", BITNET_GGUF_UINT32, &id), "bos");
    id = (uint32_t)v.eos;
    check(bitnet_gguf_writer_set_scalar(w, "tokenizer.ggml.eos_token_id", BITNET_GGUF_UINT32, &id), "eos");
    if (v.unk >= 0) {
        id = (uint32_t)v.unk;
        check(bitnet_gguf_writer_set_scalar(w, "tokenizer.ggml.unknown_token_id", BITNET_GGUF_UINT32, &id), "unk");
    }
    uint8_t yes = 1, no = 0;
    check(bitnet_gguf_writer_set_scalar(w, "tokenizer.ggml.add_bos_token", BITNET_GGUF_BOOL, &yes), "add_bos");
    check(bitnet_gguf_writer_set_scalar(w, "tokenizer.ggml.add_eos_token", BITNET_GGUF_BOOL, &no), "add_eos");
    if (v.bpe) {
        const char *t = is_llama ? k_tmpl_llama3 : k_tmpl_bitnet;
        check(bitnet_gguf_writer_set_str(w, "tokenizer.chat_template", t, strlen(t)), "tokenizer.chat_template");
    }

    for (size_t i = 0; i < n_t; i++)
        check(bitnet_gguf_writer_add_tensor(w, T[i].name, (uint32_t)T[i].n_dims, T[i].ne, T[i].type), T[i].name);
    check(bitnet_gguf_writer_begin(w, out), out);

    /* ---- tensor data ---- */
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < n_t; i++) total += (uint64_t)T[i].ne[0] * (uint64_t)T[i].ne[1];
    /* progress for big files: a live line on a terminal, a line per ~10% otherwise */
    const int progress = !quiet && total > 50000000ull, tty = isatty(STDERR_FILENO);
    int last_decile = -1;
    float *f = NULL;
    void *q = NULL;
    size_t fcap = 0, qcap = 0;
    for (size_t i = 0; i < n_t; i++) {
        const tensor_plan *t = &T[i];
        float pscale;
        if (t->kind == 1) {
            /* per-tensor scale ~ 1/sqrt(0.6 * in) * U[0.8, 1.2], rounded to f16 */
            rng r;
            rng_seed(&r, seed, 0xfeed0000ull + i);
            double sc = (0.8 + 0.4 * rng_uniform(&r)) / sqrt(0.6 * (double)t->ne[0]);
            const size_t nl = strlen(t->name);
            if ((nl > 18 && !strcmp(t->name + nl - 18, "attn_output.weight")) ||
                (nl > 15 && !strcmp(t->name + nl - 15, "ffn_down.weight")))
                sc *= layer_scale; /* --layer-scale */
            float sf = (float)sc;
            uint16_t h;
            check(bitnet_quantize(BITNET_TYPE_F16, &sf, 1, 1, &h, sizeof h, NULL), "f16 scale");
            /* read it back: F16 -> float through a one-element F32 conversion */
            uint32_t sign = (uint32_t)(h & 0x8000u) << 16, ex = (h >> 10) & 0x1fu, man = h & 0x3ffu;
            if (ex == 0) {
                pscale = ldexpf((float)man, -24);
            } else {
                pscale = ldexpf((float)(man | 0x400u), (int)ex - 25);
            }
            if (sign) pscale = -pscale;
        } else if (t->kind == 2) {
            pscale = (float)(2.5 / sqrt((double)s.embd) * sqrt(3.0));
        } else {
            pscale = 1.0f;
        }
        /* whole tensor for I2_S (one scale), chunks of rows otherwise */
        int64_t rows = t->ne[1], chunk = t->type == BITNET_TYPE_I2_S ? rows : 256;
        if (chunk > rows) chunk = rows;
        size_t need_f = (size_t)(chunk * t->ne[0]);
        if (need_f > fcap) {
            f = xrealloc(f, need_f * sizeof *f);
            fcap = need_f;
        }
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
            int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
            gen_rows(t, seed, i, r0, nr, f, pscale);
            size_t need = 0;
            bitnet_status st = bitnet_quantize(t->type, f, nr, t->ne[0], NULL, 0, &need);
            if (st != BITNET_OK && st != BITNET_E_BUFFER_TOO_SMALL) check(st, t->name);
            if (need > qcap) {
                q = xrealloc(q, need);
                qcap = need;
            }
            check(bitnet_quantize(t->type, f, nr, t->ne[0], q, qcap, &need), t->name);
            check(bitnet_gguf_writer_write(w, q, need), t->name);
            done += (uint64_t)nr * (uint64_t)t->ne[0];
        }
        if (progress && tty) {
            fprintf(stderr, "\rbitnet-gen-dummy: %5.1f%%  %-28s", 100.0 * (double)done / (double)total, t->name);
        } else if (progress && (int)(10 * done / total) > last_decile) {
            last_decile = (int)(10 * done / total);
            fprintf(stderr, "bitnet-gen-dummy: %3d%%  %s\n", 10 * last_decile, t->name);
        }
    }
    if (progress && tty) fprintf(stderr, "\n");
    check(bitnet_gguf_writer_finish(w), out);
    bitnet_gguf_writer_free(w);
    if (!quiet)
        fprintf(stderr, "bitnet-gen-dummy: wrote %s: arch %s, %dL %dd %d/%d heads ff %d vocab %d (%s), %s weights, "
                        "%.1fM params\n",
                out, s.arch, s.layers, s.embd, s.heads, s.heads_kv, s.ff, s.vocab, v.bpe ? "BPE" : "SPM",
                bitnet_type_name(wtype), (double)total / 1e6);
    free(f);
    free(q);
    free(T);
    sl_free(&v.tok);
    sl_free(&v.merges);
    return 0;
}
