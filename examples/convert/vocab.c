/*
 * vocab.c -- the GGUF tokenizer metadata from a Hugging Face model directory.
 *
 * Two tokenizer families are supported, decided by the files present:
 *  - tokenizer.model (SentencePiece, LLaMA-2 / 1bitLLM style): tokenizer.ggml.model
 *    "llama", pieces with their scores and types (spm.c), then added tokens with ids
 *    past the pieces (added_tokens.json, tokenizer_config.json "added_tokens_decoder"
 *    or tokenizer.json "added_tokens") as USER_DEFINED with score -1000, as bitnet.cpp's
 *    converter writes them; pre-tokenizer "default"; add_space_prefix from the model's
 *    normalizer (add_dummy_prefix).
 *  - tokenizer.json with a byte-level BPE model (LLaMA-3 style): tokenizer.ggml.model
 *    "gpt2", tokens by id from model.vocab, merges (either "a b" strings or ["a", "b"]
 *    pairs, the newer serialization) and added_tokens (special -> CONTROL, else
 *    USER_DEFINED; score -1000 as for the 2B-4T GGUF, base tokens 0).
 *    tokenizer.ggml.pre is ALWAYS written: the pre_tokenizer's Split regexes are
 *    compared with the LLaMA-3 and GPT-2 patterns ("llama-bpe" / "gpt2"); anything else
 *    is refused unless --pre names it, so a converted file never silently falls back
 *    to llama.cpp's "default" rules (bitnet.cpp's missing-pre bug, docs/spec.md §6.4).
 * Ids missing from the files up to config.json's vocab_size become "[PAD<id>]" tokens
 * of type UNUSED.  Special ids come from tokenizer_config.json (bos_token, eos_token,
 * ... as text or {"content": text}) and else from config.json (*_token_id, the first
 * of a list).  The chat template is tokenizer_config.json's chat_template (a string, or
 * the "default" entry of a list of named templates) or chat_template.jinja.
 */
#include "convert.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CV_TT_NORMAL 1
#define CV_TT_CONTROL 3
#define CV_TT_USER 4
#define CV_TT_UNUSED 5

/* The LLaMA-3 split regex (tokenizer.json spelling) and GPT-2's. */
static const char cv_re_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char cv_re_gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int cv_vocab_alloc(cv_vocab *v, size_t n) {
    v->tokens = calloc(n, sizeof *v->tokens);
    v->scores = calloc(n, sizeof *v->scores);
    v->types = calloc(n, sizeof *v->types);
    if (!v->tokens || !v->scores || !v->types) return cv_fail("out of memory for %zu tokens", n);
    v->n = n; /* only once the arrays exist: cv_vocab_free walks n entries */
    return 0;
}

static int cv_set_token(cv_vocab *v, int64_t id, const char *text, float score, int32_t type, const char *src) {
    if (id < 0 || (uint64_t)id >= v->n)
        return cv_fail("%s: token id %lld of '%s' is outside the vocabulary (0..%zu); check config.json vocab_size",
                       src, (long long)id, text, v->n - 1);
    if (v->tokens[id]) {
        if (strcmp(v->tokens[id], text) != 0)
            return cv_fail("%s: token id %lld is both '%s' and '%s'", src, (long long)id, v->tokens[id], text);
        free(v->tokens[id]);
    }
    v->tokens[id] = strdup(text);
    if (!v->tokens[id]) return cv_fail("out of memory");
    v->scores[id] = score;
    v->types[id] = type;
    return 0;
}

static int64_t cv_find_token(const cv_vocab *v, const char *text) {
    for (size_t i = 0; i < v->n; i++)
        if (v->tokens[i] && strcmp(v->tokens[i], text) == 0) return (int64_t)i;
    return -1;
}

/* Fill unset ids with [PAD<id>] (UNUSED). */
static int cv_pad(cv_vocab *v) {
    size_t n_pad = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (v->tokens[i]) continue;
        char buf[32];
        snprintf(buf, sizeof buf, "[PAD%zu]", i);
        if (cv_set_token(v, (int64_t)i, buf, -1000.0f, CV_TT_UNUSED, "padding") != 0) return -1;
        n_pad++;
    }
    if (n_pad) cv_info("vocabulary: %zu unused ids padded as [PAD<id>] tokens", n_pad);
    return 0;
}

/* Recursively collect whether a pre_tokenizer tree has the given regex, and whether it
 * has a ByteLevel step that splits by itself (use_regex true). */
static int cv_scan_pre(json_object *o, const char *file, const char *where, int depth, int *llama3, int *gpt2,
                       int *other, int *bytelevel_regex) {
    char w[256];
    if (!o || json_object_is_type(o, json_type_null)) return 0;
    if (depth > 16) return cv_fail("%s: %s is nested too deeply", file, where);
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            snprintf(w, sizeof w, "%s[%zu]", where, i);
            if (cv_scan_pre(json_object_array_get_idx(o, i), file, w, depth + 1, llama3, gpt2, other,
                            bytelevel_regex) != 0)
                return -1;
        }
        return 0;
    }
    if (!json_object_is_type(o, json_type_object))
        return cv_fail("%s: %s is %s where an object is expected", file, where, cv_json_type_name(o));
    json_object *type, *pat, *re, *ur;
    const char *ts = "";
    if (json_object_object_get_ex(o, "type", &type)) {
        snprintf(w, sizeof w, "%s.type", where);
        if (cv_json_as_str(type, file, w, &ts) != 0) return -1;
    }
    if (strcmp(ts, "Split") == 0) {
        const char *r = NULL;
        if (json_object_object_get_ex(o, "pattern", &pat) && json_object_is_type(pat, json_type_object) &&
            json_object_object_get_ex(pat, "Regex", &re)) {
            snprintf(w, sizeof w, "%s.pattern.Regex", where);
            if (cv_json_as_str(re, file, w, &r) != 0) return -1;
        }
        if (r && strcmp(r, cv_re_llama3) == 0) *llama3 = 1;
        else if (r && strcmp(r, cv_re_gpt2) == 0) *gpt2 = 1;
        else *other = 1;
    } else if (strcmp(ts, "ByteLevel") == 0) {
        if (!json_object_object_get_ex(o, "use_regex", &ur) || json_object_is_type(ur, json_type_null)) {
            *bytelevel_regex = 1;
        } else if (!json_object_is_type(ur, json_type_boolean)) {
            return cv_fail("%s: %s.use_regex is %s where true/false is expected", file, where, cv_json_type_name(ur));
        } else if (json_object_get_boolean(ur)) {
            *bytelevel_regex = 1;
        }
    } else if (strcmp(ts, "Digits") == 0 || strcmp(ts, "Punctuation") == 0) {
        *other = 1;
    }
    json_object *sub;
    if (json_object_object_get_ex(o, "pretokenizers", &sub)) {
        snprintf(w, sizeof w, "%s.pretokenizers", where);
        return cv_scan_pre(sub, file, w, depth + 1, llama3, gpt2, other, bytelevel_regex);
    }
    return 0;
}

/* A merge's halves and their concatenation must be tokens (the loader's rule): a
 * converted file that cannot load is refused here instead. */
static int cv_check_merge(const cv_smap *ids, const char *path, size_t i, const char *a, size_t la, const char *b,
                          size_t lb) {
    char *ab = malloc(la + lb + 1);
    if (!ab) return cv_fail("out of memory for merges");
    memcpy(ab, a, la);
    ab[la] = 0;
    int64_t ia = cv_smap_get(ids, ab);
    memcpy(ab, b, lb);
    ab[lb] = 0;
    int64_t ib = cv_smap_get(ids, ab);
    memcpy(ab, a, la);
    memcpy(ab + la, b, lb);
    ab[la + lb] = 0;
    int64_t ir = cv_smap_get(ids, ab);
    int rc = 0;
    if (ia < 0 || ib < 0 || ir < 0)
        rc = cv_fail("%s: model.merges[%zu] '%.*s' + '%.*s': %s '%.*s' is not in the vocabulary", path, i,
                     (int)(la > 64 ? 64 : la), a, (int)(lb > 64 ? 64 : lb), b,
                     ia < 0 ? "the left token" : ib < 0 ? "the right token" : "the merged token",
                     ia < 0 ? (int)(la > 64 ? 64 : la) : ib < 0 ? (int)(lb > 64 ? 64 : lb) : (int)(la + lb > 64 ? 64 : la + lb),
                     ia < 0 ? a : ib < 0 ? b : ab);
    free(ab);
    return rc;
}

static int cv_load_bpe(cv_vocab *v, json_object *tj, const char *path, int64_t n_vocab, const char *pre_override) {
    json_object *model, *vocab, *merges, *added = NULL, *pre;
    if (!json_object_object_get_ex(tj, "model", &model) || !json_object_is_type(model, json_type_object) ||
        !json_object_object_get_ex(model, "vocab", &vocab) || !json_object_is_type(vocab, json_type_object))
        return cv_fail("%s: no model.vocab object", path);
    json_object *mt;
    if (json_object_object_get_ex(model, "type", &mt)) {
        const char *ms;
        if (cv_json_as_str(mt, path, "model.type", &ms) != 0) return -1;
        if (strcmp(ms, "BPE") != 0)
            return cv_fail("%s: tokenizer model type '%s' is not supported (BPE, or a tokenizer.model for SentencePiece)",
                           path, ms);
    }
    if (json_object_object_get_ex(tj, "added_tokens", &added) && !json_object_is_type(added, json_type_null) &&
        !json_object_is_type(added, json_type_array))
        return cv_fail("%s: added_tokens is %s where an array is expected", path, cv_json_type_name(added));
    if (added && !json_object_is_type(added, json_type_array)) added = NULL;
    size_t n_vocab_entries = (size_t)json_object_object_length(vocab);
    size_t n_added = added ? json_object_array_length(added) : 0;
    if (n_vocab_entries == 0) return cv_fail("%s: model.vocab is empty", path);
    /* The vocabulary size is config.json's, or the number of entries the file holds if
     * that is larger: an id beyond both names a token that cannot exist, and is refused
     * before anything is allocated for it. */
    int64_t limit = n_vocab > (int64_t)(n_vocab_entries + n_added) ? n_vocab : (int64_t)(n_vocab_entries + n_added);
    int64_t max_id = -1;
    json_object_object_foreach(vocab, k0, id0) {
        int64_t id;
        char w[128];
        snprintf(w, sizeof w, "model.vocab['%.64s']", k0);
        if (cv_json_as_int(id0, path, w, 0, limit - 1, &id) != 0) return -1;
        if (id > max_id) max_id = id;
    }
    for (size_t i = 0; i < n_added; i++) {
        json_object *a = json_object_array_get_idx(added, i), *id, *content, *special;
        char w[64];
        int64_t x;
        const char *cs;
        if (!json_object_is_type(a, json_type_object))
            return cv_fail("%s: added_tokens[%zu] is %s where an object is expected", path, i, cv_json_type_name(a));
        snprintf(w, sizeof w, "added_tokens[%zu].id", i);
        if (!json_object_object_get_ex(a, "id", &id)) return cv_fail("%s: %s is missing", path, w);
        if (cv_json_as_int(id, path, w, 0, limit - 1, &x) != 0) return -1;
        snprintf(w, sizeof w, "added_tokens[%zu].content", i);
        if (!json_object_object_get_ex(a, "content", &content)) return cv_fail("%s: %s is missing", path, w);
        if (cv_json_as_str(content, path, w, &cs) != 0) return -1;
        if (json_object_object_get_ex(a, "special", &special) && !json_object_is_type(special, json_type_null) &&
            !json_object_is_type(special, json_type_boolean))
            return cv_fail("%s: added_tokens[%zu].special is %s where true/false is expected", path, i,
                           cv_json_type_name(special));
        if (x > max_id) max_id = x;
    }
    size_t n = (size_t)(n_vocab > max_id ? n_vocab : max_id + 1);
    if (cv_vocab_alloc(v, n) != 0) return -1;
    json_object_object_foreach(vocab, vtok, vid) {
        if (cv_set_token(v, json_object_get_int64(vid), vtok, 0.0f, CV_TT_NORMAL, path) != 0) return -1;
    }
    for (size_t i = 0; i < n_added; i++) {
        json_object *a = json_object_array_get_idx(added, i), *id, *content, *special;
        json_object_object_get_ex(a, "id", &id);
        json_object_object_get_ex(a, "content", &content);
        int sp = json_object_object_get_ex(a, "special", &special) && json_object_get_boolean(special);
        if (cv_set_token(v, json_object_get_int64(id), json_object_get_string(content), -1000.0f,
                         sp ? CV_TT_CONTROL : CV_TT_USER, path) != 0)
            return -1;
    }
    if (cv_pad(v) != 0) return -1;

    if (!json_object_object_get_ex(model, "merges", &merges) || !json_object_is_type(merges, json_type_array))
        return cv_fail("%s: no model.merges array", path);
    cv_smap ids = {0};
    for (size_t i = 0; i < v->n; i++)
        if (cv_smap_put(&ids, v->tokens[i], (int64_t)i) < 0) {
            cv_smap_free(&ids);
            return cv_fail("out of memory");
        }
    size_t nm = json_object_array_length(merges);
    v->merges = calloc(nm ? nm : 1, sizeof *v->merges);
    if (!v->merges) {
        cv_smap_free(&ids);
        return cv_fail("out of memory for merges");
    }
    v->n_merges = nm;
    int rc = 0;
    for (size_t i = 0; i < nm && rc == 0; i++) {
        json_object *m = json_object_array_get_idx(merges, i);
        char w[64];
        if (json_object_is_type(m, json_type_string)) {
            const char *s = json_object_get_string(m);
            const char *sp = s[0] ? strchr(s + 1, ' ') : NULL;
            if (!sp) {
                rc = cv_fail("%s: model.merges[%zu] '%.64s' has no separating space", path, i, s);
                break;
            }
            rc = cv_check_merge(&ids, path, i, s, (size_t)(sp - s), sp + 1, strlen(sp + 1));
            if (rc == 0 && !(v->merges[i] = strdup(s))) rc = cv_fail("out of memory for merges");
        } else if (json_object_is_type(m, json_type_array) && json_object_array_length(m) == 2) {
            const char *a, *b;
            snprintf(w, sizeof w, "model.merges[%zu][0]", i);
            if (cv_json_as_str(json_object_array_get_idx(m, 0), path, w, &a) != 0) {
                rc = -1;
                break;
            }
            snprintf(w, sizeof w, "model.merges[%zu][1]", i);
            if (cv_json_as_str(json_object_array_get_idx(m, 1), path, w, &b) != 0) {
                rc = -1;
                break;
            }
            size_t la = strlen(a), lb = strlen(b);
            /* the GGUF form "a b" is split at the first space after the first byte */
            if (la == 0 || lb == 0 || (la > 1 && memchr(a + 1, ' ', la - 1))) {
                rc = cv_fail("%s: model.merges[%zu] ['%.64s', '%.64s'] cannot be written as \"a b\"", path, i, a, b);
                break;
            }
            rc = cv_check_merge(&ids, path, i, a, la, b, lb);
            if (rc == 0 && (v->merges[i] = malloc(la + lb + 2)) != NULL) {
                memcpy(v->merges[i], a, la);
                v->merges[i][la] = ' ';
                memcpy(v->merges[i] + la + 1, b, lb + 1);
            } else if (rc == 0) {
                rc = cv_fail("out of memory for merges");
            }
        } else {
            rc = cv_fail("%s: model.merges[%zu] is %s, neither \"a b\" nor [\"a\", \"b\"]", path, i,
                         cv_json_type_name(m));
        }
    }
    cv_smap_free(&ids);
    if (rc != 0) return -1;
    v->model = "gpt2";

    if (pre_override) {
        v->pre = strdup(pre_override);
    } else {
        int llama3 = 0, gpt2 = 0, other = 0, blre = 0;
        if (json_object_object_get_ex(tj, "pre_tokenizer", &pre) &&
            cv_scan_pre(pre, path, "pre_tokenizer", 0, &llama3, &gpt2, &other, &blre) != 0)
            return -1;
        if (llama3 && !gpt2 && !other) v->pre = strdup("llama-bpe");
        else if ((gpt2 && !llama3 && !other) || (blre && !llama3 && !gpt2 && !other)) v->pre = strdup("gpt2");
        else
            return cv_fail("%s: unrecognised pre_tokenizer (not the LLaMA-3 or GPT-2 split); name it with --pre "
                           "(llama-bpe, gpt2, ...) after checking which llama.cpp pre-tokenizer matches",
                           path);
    }
    if (!v->pre) return cv_fail("out of memory");
    cv_info("tokenizer: byte-level BPE, %zu tokens, %zu merges, pre-tokenizer '%s'", v->n, v->n_merges, v->pre);
    return 0;
}

/* Added tokens of a SentencePiece model beyond its pieces. */
static int cv_spm_added(cv_vocab *v, size_t n_pieces, const char *dir) {
    char path[4096];
    json_object *o;
    if (cv_path(path, sizeof path, dir, "added_tokens.json") != 0 || cv_json_load_opt(path, &o) != 0) return -1;
    if (o) {
        json_object_object_foreach(o, text, id) {
            if (!json_object_is_type(id, json_type_int)) {
                json_object_put(o);
                return cv_fail("%s: '%s' is not mapped to an integer id", path, text);
            }
            int64_t i = json_object_get_int64(id);
            if (i >= (int64_t)n_pieces && cv_set_token(v, i, text, -1000.0f, CV_TT_USER, path) != 0) {
                json_object_put(o);
                return -1;
            }
        }
        json_object_put(o);
    }
    if (cv_path(path, sizeof path, dir, "tokenizer_config.json") != 0 || cv_json_load_opt(path, &o) != 0) return -1;
    if (o) {
        json_object *atd;
        if (json_object_object_get_ex(o, "added_tokens_decoder", &atd) && json_object_is_type(atd, json_type_object)) {
            json_object_object_foreach(atd, ids, ent) {
                char *end;
                errno = 0;
                long long i = strtoll(ids, &end, 10);
                json_object *c;
                const char *cs;
                char w[96];
                if (*end || errno || !json_object_is_type(ent, json_type_object) ||
                    !json_object_object_get_ex(ent, "content", &c))
                    continue;
                snprintf(w, sizeof w, "added_tokens_decoder['%.32s'].content", ids);
                if (cv_json_as_str(c, path, w, &cs) != 0 ||
                    (i >= (long long)n_pieces && cv_set_token(v, i, cs, -1000.0f, CV_TT_USER, path) != 0)) {
                    json_object_put(o);
                    return -1;
                }
            }
        }
        json_object_put(o);
    }
    return 0;
}

static int cv_load_spm(cv_vocab *v, const char *path, const char *dir, int64_t n_vocab) {
    size_t len;
    uint8_t *data = (uint8_t *)cv_read_file(path, (size_t)256 << 20, &len);
    if (!data) return cv_fail("%s: cannot read: %s", path, strerror(errno));
    cv_spm s;
    int rc = cv_spm_parse(data, len, path, &s);
    free(data);
    if (rc != 0) return -1;
    size_t n = (size_t)(n_vocab > (int64_t)s.n ? n_vocab : (int64_t)s.n);
    if (cv_vocab_alloc(v, n) != 0) goto fail;
    for (size_t i = 0; i < s.n; i++)
        if (cv_set_token(v, (int64_t)i, s.pieces[i], s.scores[i], s.types[i], path) != 0) goto fail;
    if (cv_spm_added(v, s.n, dir) != 0) goto fail;
    if (cv_pad(v) != 0) goto fail;
    v->model = "llama";
    v->pre = strdup("default");
    v->unk = s.unk_id;
    v->bos = s.bos_id;
    v->eos = s.eos_id;
    v->pad = s.pad_id;
    v->add_space_prefix = s.add_dummy_prefix;
    cv_info("tokenizer: SentencePiece, %zu pieces, %zu tokens", s.n, v->n);
    cv_spm_free(&s);
    return v->pre ? 0 : cv_fail("out of memory");
fail:
    cv_spm_free(&s);
    return -1;
}

/* A special token given as text or {"content": text} in tokenizer_config.json (null:
 * unset).  Another type is an error; a text that is not a token is an error for the
 * tokens generation depends on (BOS, EOS) and a warning for the others. */
static int cv_special(cv_vocab *v, json_object *tc, const char *file, const char *key, int required, int64_t *id) {
    json_object *o, *c;
    char w[64];
    const char *text;
    if (!tc || !json_object_object_get_ex(tc, key, &o) || json_object_is_type(o, json_type_null)) return 0;
    snprintf(w, sizeof w, "%s", key);
    if (json_object_is_type(o, json_type_object)) {
        if (!json_object_object_get_ex(o, "content", &c)) return cv_fail("%s: %s has no \"content\"", file, key);
        o = c;
        snprintf(w, sizeof w, "%s.content", key);
    }
    if (cv_json_as_str(o, file, w, &text) != 0) return -1;
    int64_t t = cv_find_token(v, text);
    if (t >= 0) {
        *id = t;
    } else if (required) {
        return cv_fail("%s: %s '%.64s' is not a token of the vocabulary", file, w, text);
    } else {
        cv_info("warning: %s: %s '%.64s' is not a token of the vocabulary: ignored", file, w, text);
    }
    return 0;
}

static void cv_config_id(json_object *cfg, const char *key, int64_t *id) {
    json_object *o;
    if (*id >= 0 || !cfg || !json_object_object_get_ex(cfg, key, &o)) return;
    if (json_object_is_type(o, json_type_array) && json_object_array_length(o) > 0)
        o = json_object_array_get_idx(o, 0);
    if (json_object_is_type(o, json_type_int)) *id = json_object_get_int64(o);
}

int cv_vocab_load(cv_vocab *v, const char *dir, int64_t n_vocab, const char *pre_override) {
    memset(v, 0, sizeof *v);
    v->bos = v->eos = v->unk = v->pad = v->eot = -1;
    v->add_bos = v->add_eos = v->add_space_prefix = -1;
    char path[4096], tcpath[4096], cfgpath[4096];
    int rc = -1;
    json_object *tj = NULL, *tc = NULL, *cfg = NULL;
    if (cv_path(path, sizeof path, dir, "tokenizer.model") != 0 ||
        cv_path(tcpath, sizeof tcpath, dir, "tokenizer_config.json") != 0 ||
        cv_path(cfgpath, sizeof cfgpath, dir, "config.json") != 0)
        return cv_fail("%s: path too long", dir);
    if (cv_file_exists(path)) {
        if (cv_load_spm(v, path, dir, n_vocab) != 0) goto out;
    } else {
        if (cv_path(path, sizeof path, dir, "tokenizer.json") != 0) goto out;
        if (!cv_file_exists(path)) {
            cv_fail("%s: no tokenizer.json or tokenizer.model: the tokenizer files are part of the download", dir);
            goto out;
        }
        if (!(tj = cv_json_load(path, 1))) goto out;
        if (cv_load_bpe(v, tj, path, n_vocab, pre_override) != 0) goto out;
    }
    if (cv_json_load_opt(tcpath, &tc) != 0 || cv_json_load_opt(cfgpath, &cfg) != 0) goto out;
    /* tokenizer_config.json's texts override the SentencePiece trainer ids (as HF does) */
    if (cv_special(v, tc, tcpath, "bos_token", 1, &v->bos) || cv_special(v, tc, tcpath, "eos_token", 1, &v->eos) ||
        cv_special(v, tc, tcpath, "unk_token", 0, &v->unk) || cv_special(v, tc, tcpath, "pad_token", 0, &v->pad))
        goto out;
    cv_config_id(cfg, "bos_token_id", &v->bos);
    cv_config_id(cfg, "eos_token_id", &v->eos);
    cv_config_id(cfg, "pad_token_id", &v->pad);
    v->eot = cv_find_token(v, "<|eot_id|>");
    int b;
    int r;
    if (tc && (r = cv_json_bool(tc, "add_bos_token", tcpath, &b)) <= 0) {
        if (r < 0) goto out;
        v->add_bos = b;
    }
    if (tc && (r = cv_json_bool(tc, "add_eos_token", tcpath, &b)) <= 0) {
        if (r < 0) goto out;
        v->add_eos = b;
    }
    if (v->add_bos < 0) v->add_bos = v->bos >= 0; /* LLaMA-3 and SentencePiece models prepend BOS */
    if (v->add_eos < 0) v->add_eos = 0;
    /* chat template */
    json_object *ct;
    if (tc && json_object_object_get_ex(tc, "chat_template", &ct) && !json_object_is_type(ct, json_type_null)) {
        if (json_object_is_type(ct, json_type_string)) {
            v->chat_template = strdup(json_object_get_string(ct));
            if (!v->chat_template) {
                cv_fail("out of memory");
                goto out;
            }
        } else if (json_object_is_type(ct, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(ct); i++) {
                json_object *e = json_object_array_get_idx(ct, i), *nm = NULL, *tp = NULL;
                const char *ns, *ts;
                char w[64];
                if (!json_object_is_type(e, json_type_object)) {
                    cv_fail("%s: chat_template[%zu] is %s where {\"name\", \"template\"} is expected", tcpath, i,
                            cv_json_type_name(e));
                    goto out;
                }
                json_object_object_get_ex(e, "name", &nm);
                json_object_object_get_ex(e, "template", &tp);
                snprintf(w, sizeof w, "chat_template[%zu].name", i);
                if (cv_json_as_str(nm, tcpath, w, &ns) != 0) goto out;
                snprintf(w, sizeof w, "chat_template[%zu].template", i);
                if (cv_json_as_str(tp, tcpath, w, &ts) != 0) goto out;
                if (strcmp(ns, "default") == 0 && !v->chat_template && !(v->chat_template = strdup(ts))) {
                    cv_fail("out of memory");
                    goto out;
                }
            }
            if (!v->chat_template)
                cv_info("warning: %s: chat_template lists no template named \"default\": none written", tcpath);
        } else {
            cv_fail("%s: chat_template is %s where a string or a list of {\"name\", \"template\"} is expected", tcpath,
                    cv_json_type_name(ct));
            goto out;
        }
    }
    if (!v->chat_template) {
        char jp[4096];
        if (cv_path(jp, sizeof jp, dir, "chat_template.jinja") == 0 && cv_file_exists(jp))
            v->chat_template = cv_read_file(jp, (size_t)1 << 20, NULL);
    }
    int64_t *ids[] = {&v->bos, &v->eos, &v->unk, &v->pad, &v->eot};
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        int64_t *id = ids[k];
        if (*id >= (int64_t)v->n) {
            cv_info("warning: special token id %lld is outside the vocabulary: not written", (long long)*id);
            *id = -1;
        }
    }
    rc = 0;
out:
    if (tj) json_object_put(tj);
    if (tc) json_object_put(tc);
    if (cfg) json_object_put(cfg);
    return rc;
}

void cv_vocab_free(cv_vocab *v) {
    for (size_t i = 0; i < v->n; i++) free(v->tokens[i]);
    for (size_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->tokens);
    free(v->scores);
    free(v->types);
    free(v->merges);
    free(v->pre);
    free(v->chat_template);
    memset(v, 0, sizeof *v);
}

#define CV_W(call) do { if ((call) != BITNET_OK) return cv_fail("GGUF writer: %s", bitnet_last_error()); } while (0)

static int cv_put_u32(bitnet_gguf_writer *w, const char *key, int64_t v) {
    if (v < 0) return 0;
    uint32_t u = (uint32_t)v;
    CV_W(bitnet_gguf_writer_set_scalar(w, key, BITNET_GGUF_UINT32, &u));
    return 0;
}

static int cv_put_bool(bitnet_gguf_writer *w, const char *key, int v) {
    if (v < 0) return 0;
    uint8_t b = v != 0;
    CV_W(bitnet_gguf_writer_set_scalar(w, key, BITNET_GGUF_BOOL, &b));
    return 0;
}

int cv_vocab_write(const cv_vocab *v, bitnet_gguf_writer *w) {
    CV_W(bitnet_gguf_writer_set_str(w, "tokenizer.ggml.model", v->model, strlen(v->model)));
    if (v->pre) CV_W(bitnet_gguf_writer_set_str(w, "tokenizer.ggml.pre", v->pre, strlen(v->pre)));
    CV_W(bitnet_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens, NULL, v->n));
    CV_W(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.scores", BITNET_GGUF_FLOAT32, v->scores, v->n));
    CV_W(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BITNET_GGUF_INT32, v->types, v->n));
    if (v->merges)
        CV_W(bitnet_gguf_writer_set_str_array(w, "tokenizer.ggml.merges", (const char *const *)v->merges, NULL,
                                              v->n_merges));
    if (cv_put_u32(w, "tokenizer.ggml.bos_token_id", v->bos) || cv_put_u32(w, "tokenizer.ggml.eos_token_id", v->eos) ||
        cv_put_u32(w, "tokenizer.ggml.unknown_token_id", v->unk) ||
        cv_put_u32(w, "tokenizer.ggml.padding_token_id", v->pad) ||
        cv_put_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos) ||
        cv_put_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos) ||
        cv_put_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix))
        return -1;
    if (v->chat_template)
        CV_W(bitnet_gguf_writer_set_str(w, "tokenizer.chat_template", v->chat_template, strlen(v->chat_template)));
    return 0;
}
