/*
 * tok_vocab.c -- the tokenizer vocabulary: reading tokenizer.ggml.* metadata, validating it
 * and building the lookup structures the encoders need.
 *
 * Layout: every token text is copied once into `pool` (NUL-terminated, length kept
 * separately since GGUF strings may contain NUL).  Two open-addressing hash tables
 * (linear probing, power-of-two capacity, load <= 1/2):
 *   index:  token text -> id (FNV-1a over the bytes).  A duplicated text maps to its
 *           last id, as llama.cpp's token_to_id map does.
 *   merges: (left id, right id) -> (rank, merged id), for byte-level BPE.  Each merge
 *           string "A B" is split at its first space at index >= 1 (tokens may begin
 *           with a space character); A, B and AB must all be tokens, else the file is
 *           rejected.  A pair listed twice keeps its first (lowest) rank.
 * Choice of pre-tokenizer (byte-level BPE only): a forced name, else tokenizer.ggml.pre,
 * else the LLaMA-3 rules when the vocabulary is recognised as LLaMA-3's (special tokens
 * <|begin_of_text|> at 128000 and <|eot_id|> at 128009), else llama.cpp's "default".
 */
#include "tok_vocab.h"
#include "tok_unicode.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- GPT-2 byte map ----------------------------------------------------------------
 * Bytes that are printable Latin-1 (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF) stand for
 * themselves; the 68 others, in increasing order, become U+0100, U+0101, ... */
static int bn_tok_vocab_byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
}

/* The 68 non-printable bytes are 0x00-0x20 (33), 0x7F-0xA0 (34) and 0xAD (1). */
uint32_t bn_byte_to_cp(uint8_t b) {
    if (bn_tok_vocab_byte_is_printable(b)) return b;
    if (b <= 0x20) return 0x100u + b;
    if (b <= 0xa0) return 0x100u + 33 + (b - 0x7fu);
    return 0x100u + 67; /* 0xAD */
}

int bn_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) return bn_tok_vocab_byte_is_printable(cp) ? (int)cp : -1;
    uint32_t k = cp - 0x100;
    if (k < 33) return (int)k;
    if (k < 67) return (int)(0x7f + (k - 33));
    if (k == 67) return 0xad;
    return -1;
}

/* ---- hashing --------------------------------------------------------------------------- */

static uint64_t bn_tok_vocab_hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t bn_tok_vocab_pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int32_t bn_vocab_find(const bn_vocab *v, const char *s, size_t n) {
    uint64_t mask = v->index_cap - 1;
    for (uint64_t i = bn_fnv1a(BN_FNV_OFFSET, s, n) & mask;; i = (i + 1) & mask) {
        int32_t id = v->index[i];
        if (id < 0) return -1;
        if (v->len[id] == n && memcmp(v->text[id], s, n) == 0) return id;
    }
}

static void bn_tok_vocab_index_insert(bn_vocab *v, int32_t id) {
    uint64_t mask = v->index_cap - 1;
    for (uint64_t i = bn_fnv1a(BN_FNV_OFFSET, v->text[id], v->len[id]) & mask;; i = (i + 1) & mask) {
        int32_t o = v->index[i];
        if (o < 0 || (v->len[o] == v->len[id] && memcmp(v->text[o], v->text[id], v->len[id]) == 0)) {
            v->index[i] = id; /* a duplicate text: the last id wins */
            return;
        }
    }
}

int bn_vocab_merge(const bn_vocab *v, int32_t left, int32_t right, uint32_t *rank, int32_t *result) {
    if (!v->merge_cap || left < 0 || right < 0) return 0;
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    uint64_t mask = v->merge_cap - 1;
    for (uint64_t i = bn_tok_vocab_hash_u64(key) & mask;; i = (i + 1) & mask) {
        if (v->merges[i].key == 0) return 0;
        if (v->merges[i].key == key) {
            *rank = v->merges[i].rank;
            *result = v->merges[i].result;
            return 1;
        }
    }
}

/* Insert; returns 0 when the pair was already present (the first rank stays). */
static int bn_tok_vocab_merge_insert(bn_vocab *v, int32_t left, int32_t right, uint32_t rank, int32_t result) {
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    uint64_t mask = v->merge_cap - 1;
    for (uint64_t i = bn_tok_vocab_hash_u64(key) & mask;; i = (i + 1) & mask) {
        if (v->merges[i].key == key) return 0;
        if (v->merges[i].key == 0) {
            v->merges[i].key = key;
            v->merges[i].rank = rank;
            v->merges[i].result = result;
            return 1;
        }
    }
}

/* ---- building ---------------------------------------------------------------------------- */

void bn_vocab_desc_init(bn_vocab_desc *d) {
    memset(d, 0, sizeof *d);
    d->bos = d->eos = d->eot = d->unk = d->pad = -1;
    d->add_bos = d->add_eos = d->add_space_prefix = -1;
}

void bn_vocab_free(bn_vocab *v) {
    if (!v) return;
    bn_free(v->text);
    bn_free(v->len);
    bn_free(v->score);
    bn_free(v->type);
    bn_free(v->eog);
    bn_free(v->pool);
    bn_free(v->index);
    bn_free(v->merges);
    bn_free(v->specials);
    bn_free(v->chat_template);
    bn_free(v);
}

int32_t bn_vocab_n_tokens(const bn_vocab *v) { return v ? v->n : 0; }

static size_t bn_tok_vocab_str_len_of(const char *const *s, const uint64_t *lens, int64_t i) {
    return lens ? (size_t)lens[i] : strlen(s[i]);
}

static int bn_tok_vocab_name_is(const char *s, size_t n, const char *name) {
    return strlen(name) == n && memcmp(s, name, n) == 0;
}

/* Map a pre-tokenizer name to its kind; -1 when unknown. */
static int bn_tok_vocab_pre_from_name(const char *s, size_t n) {
    static const char *const llama3[] = {"llama-bpe", "llama3", "llama-v3", "falcon3", "falcon_e"};
    for (size_t i = 0; i < sizeof llama3 / sizeof llama3[0]; i++)
        if (bn_tok_vocab_name_is(s, n, llama3[i])) return BN_PRE_LLAMA3;
    if (bn_tok_vocab_name_is(s, n, "gpt2") || bn_tok_vocab_name_is(s, n, "gpt-2")) return BN_PRE_GPT2;
    if (bn_tok_vocab_name_is(s, n, "qwen2")) return BN_PRE_QWEN2;
    if (bn_tok_vocab_name_is(s, n, "default")) return BN_PRE_DEFAULT;
    return -1;
}

static int bn_tok_vocab_token_is(const bn_vocab *v, int32_t id, const char *s) {
    return id >= 0 && id < v->n && v->len[id] == strlen(s) && memcmp(v->text[id], s, v->len[id]) == 0;
}

/* Texts that end a turn in the chat formats we know (docs/spec.md §6.2). */
static const char *const k_eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
};
/* The first of these present becomes EOT when the file names none. */
static const char *const k_eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<EOT>"};

static int bn_tok_vocab_cmp_special(const void *a, const void *b, const bn_vocab *v) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (v->len[x] != v->len[y]) return v->len[x] > v->len[y] ? -1 : 1;
    return x < y ? -1 : (x > y);
}

/* Sort v->specials by text length descending, id ascending.  qsort has no context
 * argument in C11, so this is a bottom-up merge sort (insertion sort if the scratch
 * allocation fails). */
static void bn_tok_vocab_sort_specials(bn_vocab *v) {
    int32_t n = v->n_specials;
    if (n < 2) return;
    int32_t *tmp = bn_mallocn((size_t)n, sizeof *tmp);
    if (!tmp) { /* fall back to insertion sort: correct, only slower */
        for (int32_t i = 1; i < n; i++) {
            int32_t x = v->specials[i], j = i;
            while (j > 0 && bn_tok_vocab_cmp_special(&v->specials[j - 1], &x, v) > 0) {
                v->specials[j] = v->specials[j - 1];
                j--;
            }
            v->specials[j] = x;
        }
        return;
    }
    for (int32_t w = 1; w < n; w *= 2) {
        for (int32_t lo = 0; lo < n; lo += 2 * w) {
            int32_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = bn_tok_vocab_cmp_special(&v->specials[j], &v->specials[i], v) < 0 ? v->specials[j++]
                                                                                            : v->specials[i++];
            while (i < mid) tmp[k++] = v->specials[i++];
            while (j < hi) tmp[k++] = v->specials[j++];
        }
        memcpy(v->specials, tmp, (size_t)n * sizeof *tmp);
    }
    bn_free(tmp);
}

static bitnet_status bn_tok_vocab_check_id(const char *key, int64_t id, int32_t n, int32_t *out) {
    if (id < 0 || id == 0xffffffffll) { *out = -1; return BITNET_OK; }
    if (id >= n)
        return bn_err(BITNET_E_FORMAT, "%s = %lld is out of range (the vocabulary has %d tokens)", key,
                      (long long)id, (int)n);
    *out = (int32_t)id;
    return BITNET_OK;
}

bitnet_status bn_vocab_build(const bn_vocab_desc *d, const char *force_pre, bn_vocab **out) {
    *out = NULL;
    bitnet_status st;
    if (!d->model) return bn_err(BITNET_E_FORMAT, "tokenizer.ggml.model is missing");
    bn_vocab_kind kind;
    if (strcmp(d->model, "gpt2") == 0) kind = BN_VOCAB_BPE;
    else if (strcmp(d->model, "llama") == 0) kind = BN_VOCAB_SPM;
    else return bn_err(BITNET_E_UNSUPPORTED, "tokenizer.ggml.model '%s' is not supported (gpt2 and llama are)", d->model);
    if (d->n_tokens <= 0 || d->n_tokens > INT32_MAX / 2)
        return bn_err(BITNET_E_FORMAT, "tokenizer.ggml.tokens: %lld tokens is not a valid vocabulary size",
                      (long long)d->n_tokens);
    if (kind == BN_VOCAB_BPE && d->n_merges <= 0)
        return bn_err(BITNET_E_FORMAT, "tokenizer.ggml.merges is missing or empty (required by the gpt2 tokenizer)");
    int pre_forced = -1;
    if (force_pre) {
        pre_forced = bn_tok_vocab_pre_from_name(force_pre, strlen(force_pre));
        if (pre_forced < 0)
            return bn_err(BITNET_E_INVALID_ARG, "pretokenizer '%s' is not one of llama-bpe, qwen2, default, gpt2", force_pre);
    }

    bn_vocab *v = bn_calloc(1, sizeof *v);
    if (!v) return bn_err(BITNET_E_NOMEM, "out of memory allocating the vocabulary");
    int32_t n = (int32_t)d->n_tokens;
    v->kind = kind;
    v->n = n;
    size_t pool_size = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t l = bn_tok_vocab_str_len_of(d->tokens, d->token_lens, i);
        if (l > UINT32_MAX - 1) { st = bn_err(BITNET_E_FORMAT, "tokenizer.ggml.tokens[%d] is too long", (int)i); goto fail; }
        pool_size += l + 1;
    }
    v->text = bn_mallocn((size_t)n, sizeof *v->text);
    v->len = bn_mallocn((size_t)n, sizeof *v->len);
    v->score = bn_mallocn((size_t)n, sizeof *v->score);
    v->type = bn_mallocn((size_t)n, 1);
    v->eog = bn_calloc((size_t)n, 1);
    v->pool = bn_malloc(pool_size);
    v->index_cap = bn_tok_vocab_pow2_at_least((uint64_t)n * 2);
    v->index = bn_mallocn(v->index_cap, sizeof *v->index);
    if (!v->text || !v->len || !v->score || !v->type || !v->eog || !v->pool || !v->index) {
        st = bn_err(BITNET_E_NOMEM, "out of memory allocating the vocabulary (%d tokens)", (int)n);
        goto fail;
    }
    memset(v->index, 0xff, v->index_cap * sizeof *v->index);
    char *p = v->pool;
    for (int32_t i = 0; i < n; i++) {
        size_t l = bn_tok_vocab_str_len_of(d->tokens, d->token_lens, i);
        memcpy(p, d->tokens[i], l);
        p[l] = 0;
        v->text[i] = p;
        v->len[i] = (uint32_t)l;
        p += l + 1;
        v->score[i] = d->scores ? d->scores[i] : 0.0f;
        int32_t t = d->types ? d->types[i] : BN_TOK_NORMAL;
        if (t < 0 || t > BN_TOK_BYTE) {
            st = bn_err(BITNET_E_FORMAT, "tokenizer.ggml.token_type[%d] = %d is not a token type (0..6)", (int)i, (int)t);
            goto fail;
        }
        v->type[i] = (uint8_t)(t == BN_TOK_UNDEFINED ? BN_TOK_NORMAL : t);
        bn_tok_vocab_index_insert(v, i);
    }

    /* merges */
    if (d->n_merges > 0) {
        if ((uint64_t)d->n_merges > UINT32_MAX / 4) {
            st = bn_err(BITNET_E_FORMAT, "tokenizer.ggml.merges: too many merges (%lld)", (long long)d->n_merges);
            goto fail;
        }
        v->merge_cap = bn_tok_vocab_pow2_at_least((uint64_t)d->n_merges * 2);
        v->merges = bn_calloc(v->merge_cap, sizeof *v->merges);
        if (!v->merges) { st = bn_err(BITNET_E_NOMEM, "out of memory allocating %lld merges", (long long)d->n_merges); goto fail; }
        char *buf = NULL;
        size_t buf_cap = 0;
        for (int64_t i = 0; i < d->n_merges; i++) {
            const char *s = d->merges[i];
            size_t l = bn_tok_vocab_str_len_of(d->merges, d->merge_lens, i);
            const char *sp = l > 1 ? memchr(s + 1, ' ', l - 1) : NULL;
            if (!sp) {
                bn_free(buf);
                st = bn_err(BITNET_E_FORMAT, "tokenizer.ggml.merges[%lld] '%.*s' is not two tokens separated by a space",
                            (long long)i, (int)(l > 64 ? 64 : l), s);
                goto fail;
            }
            size_t la = (size_t)(sp - s), lb = l - la - 1;
            int32_t a = bn_vocab_find(v, s, la), b = bn_vocab_find(v, sp + 1, lb), r = -1;
            if (a >= 0 && b >= 0) {
                if (la + lb > buf_cap) {
                    char *nb = bn_realloc(buf, la + lb);
                    if (!nb) { bn_free(buf); st = bn_err(BITNET_E_NOMEM, "out of memory reading merges"); goto fail; }
                    buf = nb;
                    buf_cap = la + lb;
                }
                memcpy(buf, s, la);
                memcpy(buf + la, sp + 1, lb);
                r = bn_vocab_find(v, buf, la + lb);
            }
            if (a < 0 || b < 0 || r < 0) {
                bn_free(buf);
                st = bn_err(BITNET_E_FORMAT, "tokenizer.ggml.merges[%lld] '%.*s': %s is not in the vocabulary",
                            (long long)i, (int)(l > 64 ? 64 : l), s,
                            a < 0 ? "the left token" : b < 0 ? "the right token" : "the merged token");
                goto fail;
            }
            if (bn_tok_vocab_merge_insert(v, a, b, (uint32_t)i, r)) v->n_merges++;
        }
        bn_free(buf);
    }

    /* special ids */
    if ((st = bn_tok_vocab_check_id("tokenizer.ggml.bos_token_id", d->bos, n, &v->bos)) ||
        (st = bn_tok_vocab_check_id("tokenizer.ggml.eos_token_id", d->eos, n, &v->eos)) ||
        (st = bn_tok_vocab_check_id("tokenizer.ggml.eot_token_id", d->eot, n, &v->eot)) ||
        (st = bn_tok_vocab_check_id("tokenizer.ggml.unknown_token_id", d->unk, n, &v->unk)) ||
        (st = bn_tok_vocab_check_id("tokenizer.ggml.padding_token_id", d->pad, n, &v->pad)))
        goto fail;
    if (kind == BN_VOCAB_SPM) { /* llama.cpp's SentencePiece defaults */
        if (d->unk < 0 && n > 0) v->unk = 0;
        if (d->bos < 0 && n > 1) v->bos = 1;
        if (d->eos < 0 && n > 2) v->eos = 2;
    }
    if (v->eot < 0) {
        for (size_t k = 0; k < sizeof k_eot_texts / sizeof k_eot_texts[0] && v->eot < 0; k++) {
            int32_t id = bn_vocab_find(v, k_eot_texts[k], strlen(k_eot_texts[k]));
            if (id >= 0 && v->type[id] == BN_TOK_CONTROL) v->eot = id;
        }
    }
    if (v->eos >= 0) v->eog[v->eos] = 1;
    if (v->eot >= 0) v->eog[v->eot] = 1;
    for (size_t k = 0; k < sizeof k_eog_texts / sizeof k_eog_texts[0]; k++) {
        int32_t id = bn_vocab_find(v, k_eog_texts[k], strlen(k_eog_texts[k]));
        if (id >= 0) v->eog[id] = 1;
    }

    /* byte tokens */
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t l;
        if (kind == BN_VOCAB_BPE) {
            uint32_t cp = bn_byte_to_cp((uint8_t)b);
            if (cp < 0x80) { s[0] = (char)cp; l = 1; }
            else { s[0] = (char)(0xc0 | (cp >> 6)); s[1] = (char)(0x80 | (cp & 0x3f)); l = 2; }
        } else {
            l = (size_t)snprintf(s, sizeof s, "<0x%02X>", b);
        }
        v->byte_tok[b] = bn_vocab_find(v, s, l);
    }

    /* pre-tokenizer */
    int llama3_vocab = kind == BN_VOCAB_BPE && bn_tok_vocab_token_is(v, 128000, "<|begin_of_text|>") &&
                       bn_tok_vocab_token_is(v, 128009, "<|eot_id|>");
    if (kind == BN_VOCAB_BPE) {
        if (pre_forced >= 0) {
            v->pre = (bn_pre_kind)pre_forced;
        } else if (d->pre) {
            int pk = bn_tok_vocab_pre_from_name(d->pre, d->pre_len);
            if (pk < 0) {
                st = bn_err(BITNET_E_UNSUPPORTED, "tokenizer.ggml.pre '%.*s' is not supported (llama-bpe, qwen2, gpt2, default are)",
                            (int)(d->pre_len > 64 ? 64 : d->pre_len), d->pre);
                goto fail;
            }
            v->pre = (bn_pre_kind)pk;
        } else if (llama3_vocab) {
            v->pre = BN_PRE_LLAMA3;
            BN_LOG_INFO("tokenizer.ggml.pre is missing; the vocabulary is LLaMA-3's, so using the llama-bpe "
                        "pre-tokenizer (pretokenizer=\"default\" gives bitnet.cpp's behaviour)");
        } else {
            v->pre = BN_PRE_DEFAULT;
            BN_LOG_INFO("tokenizer.ggml.pre is missing; using the default pre-tokenizer (as llama.cpp)");
        }
        v->ignore_merges = v->pre == BN_PRE_LLAMA3;
    }
    /* BOS when the file does not say: llama.cpp's defaults (SentencePiece; the pre-tokenizer
     * names of its LLaMA-3 group: llama-bpe, llama3, llama-v3, falcon3, falcon_e); and the
     * LLaMA-3 vocabulary recognised without a name */
    const int llama3_named = kind == BN_VOCAB_BPE && d->pre &&
                             bn_tok_vocab_pre_from_name(d->pre, d->pre_len) == BN_PRE_LLAMA3;
    v->add_bos = d->add_bos >= 0 ? d->add_bos : (kind == BN_VOCAB_SPM || llama3_vocab || llama3_named);
    v->add_eos = d->add_eos >= 0 ? d->add_eos : 0;
    v->add_space_prefix = d->add_space_prefix >= 0 ? d->add_space_prefix : kind == BN_VOCAB_SPM;

    /* special tokens that may be cut out of the text */
    v->specials = bn_mallocn((size_t)n, sizeof *v->specials);
    if (!v->specials) { st = bn_err(BITNET_E_NOMEM, "out of memory"); goto fail; }
    for (int32_t i = 0; i < n; i++) {
        uint8_t t = v->type[i];
        if (v->len[i] > 0 && (t == BN_TOK_CONTROL || t == BN_TOK_USER_DEFINED || t == BN_TOK_UNKNOWN))
            v->specials[v->n_specials++] = i;
    }
    bn_tok_vocab_sort_specials(v);

    if (d->chat_template) {
        v->chat_template = bn_strndup(d->chat_template, d->chat_template_len);
        if (!v->chat_template) { st = bn_err(BITNET_E_NOMEM, "out of memory"); goto fail; }
    }
    *out = v;
    return BITNET_OK;
fail:
    bn_vocab_free(v);
    return st;
}

/* ---- GGUF -------------------------------------------------------------------------------- */

static bitnet_status bn_tok_vocab_opt_int(const bitnet_gguf *g, const char *key, int64_t *out) {
    bitnet_status st = bn_gguf_get_i64(g, key, 0, out);
    if (st == BITNET_E_NOT_FOUND) { *out = -1; return BITNET_OK; }
    return st;
}

static bitnet_status bn_tok_vocab_opt_bool(const bitnet_gguf *g, const char *key, int *out) {
    bitnet_status st = bn_gguf_get_bool(g, key, 0, out);
    if (st == BITNET_E_NOT_FOUND) { *out = -1; return BITNET_OK; }
    return st;
}

static int bn_tok_vocab_elem_is_int(uint32_t t) {
    return t == BITNET_GGUF_UINT8 || t == BITNET_GGUF_INT8 || t == BITNET_GGUF_UINT16 || t == BITNET_GGUF_INT16 ||
           t == BITNET_GGUF_UINT32 || t == BITNET_GGUF_INT32 || t == BITNET_GGUF_UINT64 || t == BITNET_GGUF_INT64;
}

bitnet_status bn_vocab_load(const bitnet_gguf *g, const char *pretokenizer, bn_vocab **out) {
    *out = NULL;
    bn_vocab_desc d;
    bn_vocab_desc_init(&d);
    const char **toks = NULL, **merges = NULL;
    uint64_t *tok_lens = NULL, *merge_lens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    char model[16];
    const char *s;
    uint64_t len;
    const bn_gguf_arr *a;

    bitnet_status st = bn_gguf_get_str(g, "tokenizer.ggml.model", 1, &s, &len);
    if (st) return st;
    if (len >= sizeof model || memchr(s, 0, len))
        return bn_err(BITNET_E_UNSUPPORTED, "tokenizer.ggml.model '%.*s' is not supported (gpt2 and llama are)",
                      (int)(len > 32 ? 32 : len), s);
    memcpy(model, s, len);
    model[len] = 0;
    d.model = model;
    st = bn_gguf_get_str(g, "tokenizer.ggml.pre", 0, &d.pre, &len);
    if (st == BITNET_E_NOT_FOUND) d.pre = NULL;
    else if (st) return st;
    else d.pre_len = (size_t)len;

    if ((st = bn_gguf_get_arr(g, "tokenizer.ggml.tokens", 1, BITNET_GGUF_STRING, &a))) return st;
    if (a->count == 0 || a->count > INT32_MAX / 2)
        return bn_err(BITNET_E_FORMAT, "tokenizer.ggml.tokens: %llu tokens is not a valid vocabulary size",
                      (unsigned long long)a->count);
    d.n_tokens = (int64_t)a->count;
    toks = bn_mallocn(a->count, sizeof *toks);
    tok_lens = bn_mallocn(a->count, sizeof *tok_lens);
    if (!toks || !tok_lens) { st = bn_err(BITNET_E_NOMEM, "out of memory reading tokens"); goto done; }
    for (uint64_t j = 0; j < a->count; j++) bn_gguf_arr_str(g, a, j, &toks[j], &tok_lens[j]);
    d.tokens = toks;
    d.token_lens = tok_lens;

    st = bn_gguf_get_arr(g, "tokenizer.ggml.scores", 0, BITNET_GGUF_ARRAY, &a);
    if (st == BITNET_OK) {
        if (a->count != (uint64_t)d.n_tokens || (a->elem_type != BITNET_GGUF_FLOAT32 && a->elem_type != BITNET_GGUF_FLOAT64)) {
            st = bn_err(BITNET_E_FORMAT, "tokenizer.ggml.scores: expected %lld floats, found %llu elements of type %s",
                        (long long)d.n_tokens, (unsigned long long)a->count, bitnet_gguf_type_name((bitnet_gguf_type)a->elem_type));
            goto done;
        }
        if (!(scores = bn_mallocn(a->count, sizeof *scores))) { st = bn_err(BITNET_E_NOMEM, "out of memory"); goto done; }
        for (uint64_t j = 0; j < a->count; j++) scores[j] = (float)bn_gguf_arr_f64(g, a, j);
        d.scores = scores;
    } else if (st != BITNET_E_NOT_FOUND) goto done;

    st = bn_gguf_get_arr(g, "tokenizer.ggml.token_type", 0, BITNET_GGUF_ARRAY, &a);
    if (st == BITNET_OK) {
        if (a->count != (uint64_t)d.n_tokens || !bn_tok_vocab_elem_is_int(a->elem_type)) {
            st = bn_err(BITNET_E_FORMAT, "tokenizer.ggml.token_type: expected %lld integers, found %llu elements of type %s",
                        (long long)d.n_tokens, (unsigned long long)a->count, bitnet_gguf_type_name((bitnet_gguf_type)a->elem_type));
            goto done;
        }
        if (!(types = bn_mallocn(a->count, sizeof *types))) { st = bn_err(BITNET_E_NOMEM, "out of memory"); goto done; }
        for (uint64_t j = 0; j < a->count; j++) {
            int64_t t = bn_gguf_arr_i64(g, a, j);
            if (t < 0 || t > 6) { /* 0 undefined .. 6 byte: anything else is a broken file, not a guess */
                st = bn_err(BITNET_E_FORMAT, "tokenizer.ggml.token_type[%llu] = %lld is not a token type (0..6)",
                            (unsigned long long)j, (long long)t);
                goto done;
            }
            types[j] = (int32_t)t;
        }
        d.types = types;
    } else if (st != BITNET_E_NOT_FOUND) goto done;

    st = bn_gguf_get_arr(g, "tokenizer.ggml.merges", 0, BITNET_GGUF_STRING, &a);
    if (st == BITNET_OK) {
        if (a->count > UINT32_MAX / 4) { st = bn_err(BITNET_E_FORMAT, "tokenizer.ggml.merges: too many merges"); goto done; }
        merges = bn_mallocn(a->count ? a->count : 1, sizeof *merges);
        merge_lens = bn_mallocn(a->count ? a->count : 1, sizeof *merge_lens);
        if (!merges || !merge_lens) { st = bn_err(BITNET_E_NOMEM, "out of memory reading merges"); goto done; }
        for (uint64_t j = 0; j < a->count; j++) bn_gguf_arr_str(g, a, j, &merges[j], &merge_lens[j]);
        d.merges = merges;
        d.merge_lens = merge_lens;
        d.n_merges = (int64_t)a->count;
    } else if (st != BITNET_E_NOT_FOUND) goto done;

    if ((st = bn_tok_vocab_opt_int(g, "tokenizer.ggml.bos_token_id", &d.bos)) ||
        (st = bn_tok_vocab_opt_int(g, "tokenizer.ggml.eos_token_id", &d.eos)) ||
        (st = bn_tok_vocab_opt_int(g, "tokenizer.ggml.eot_token_id", &d.eot)) ||
        (st = bn_tok_vocab_opt_int(g, "tokenizer.ggml.unknown_token_id", &d.unk)) ||
        (st = bn_tok_vocab_opt_int(g, "tokenizer.ggml.padding_token_id", &d.pad)) ||
        (st = bn_tok_vocab_opt_bool(g, "tokenizer.ggml.add_bos_token", &d.add_bos)) ||
        (st = bn_tok_vocab_opt_bool(g, "tokenizer.ggml.add_eos_token", &d.add_eos)) ||
        (st = bn_tok_vocab_opt_bool(g, "tokenizer.ggml.add_space_prefix", &d.add_space_prefix)))
        goto done;
    st = bn_gguf_get_str(g, "tokenizer.chat_template", 0, &d.chat_template, &len);
    if (st == BITNET_E_NOT_FOUND) d.chat_template = NULL;
    else if (st) goto done;
    else d.chat_template_len = (size_t)len;

    st = bn_vocab_build(&d, pretokenizer, out);
done:
    bn_free(toks);
    bn_free(tok_lens);
    bn_free(merges);
    bn_free(merge_lens);
    bn_free(scores);
    bn_free(types);
    return st;
}
