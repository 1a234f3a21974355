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
    v->n = n;
    if (!v->tokens || !v->scores || !v->types) return cv_fail("out of memory for %zu tokens", n);
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
static void cv_scan_pre(json_object *o, int *llama3, int *gpt2, int *other, int *bytelevel_regex) {
    if (!o) return;
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            cv_scan_pre(json_object_array_get_idx(o, i), llama3, gpt2, other, bytelevel_regex);
        return;
    }
    if (!json_object_is_type(o, json_type_object)) return;
    json_object *type, *pat, *re, *ur;
    const char *ts = json_object_object_get_ex(o, "type", &type) ? json_object_get_string(type) : "";
    if (strcmp(ts, "Split") == 0 && json_object_object_get_ex(o, "pattern", &pat) &&
        json_object_object_get_ex(pat, "Regex", &re)) {
        const char *r = json_object_get_string(re);
        if (strcmp(r, cv_re_llama3) == 0) *llama3 = 1;
        else if (strcmp(r, cv_re_gpt2) == 0) *gpt2 = 1;
        else *other = 1;
    } else if (strcmp(ts, "ByteLevel") == 0) {
        if (!json_object_object_get_ex(o, "use_regex", &ur) || json_object_get_boolean(ur)) *bytelevel_regex = 1;
    } else if (strcmp(ts, "Digits") == 0 || strcmp(ts, "Punctuation") == 0) {
        *other = 1;
    }
    json_object *sub;
    if (json_object_object_get_ex(o, "pretokenizers", &sub)) cv_scan_pre(sub, llama3, gpt2, other, bytelevel_regex);
}

static int cv_load_bpe(cv_vocab *v, json_object *tj, const char *path, int64_t n_vocab, const char *pre_override) {
    json_object *model, *vocab, *merges, *added, *pre;
    if (!json_object_object_get_ex(tj, "model", &model) || !json_object_object_get_ex(model, "vocab", &vocab) ||
        !json_object_is_type(vocab, json_type_object))
        return cv_fail("%s: no model.vocab object", path);
    json_object *mt;
    if (json_object_object_get_ex(model, "type", &mt) && strcmp(json_object_get_string(mt), "BPE") != 0)
        return cv_fail("%s: tokenizer model type '%s' is not supported (BPE, or a tokenizer.model for SentencePiece)",
                       path, json_object_get_string(mt));
    /* the vocabulary size: config.json's, but never less than the highest id + 1 */
    int64_t max_id = -1;
    json_object_object_foreach(vocab, k0, id0) {
        (void)k0;
        if (!json_object_is_type(id0, json_type_int)) return cv_fail("%s: model.vocab['%s'] is not an id", path, k0);
        if (json_object_get_int64(id0) > max_id) max_id = json_object_get_int64(id0);
    }
    if (json_object_object_get_ex(tj, "added_tokens", &added) && json_object_is_type(added, json_type_array))
        for (size_t i = 0; i < json_object_array_length(added); i++) {
            json_object *id;
            if (json_object_object_get_ex(json_object_array_get_idx(added, i), "id", &id) &&
                json_object_get_int64(id) > max_id)
                max_id = json_object_get_int64(id);
        }
    if (max_id < 0 || max_id >= ((int64_t)1 << 31)) return cv_fail("%s: empty or absurd vocabulary", path);
    size_t n = (size_t)(n_vocab > max_id ? n_vocab : max_id + 1);
    if (cv_vocab_alloc(v, n) != 0) return -1;
    json_object_object_foreach(vocab, vtok, vid) {
        if (cv_set_token(v, json_object_get_int64(vid), vtok, 0.0f, CV_TT_NORMAL, path) != 0) return -1;
    }
    if (added && json_object_is_type(added, json_type_array))
        for (size_t i = 0; i < json_object_array_length(added); i++) {
            json_object *a = json_object_array_get_idx(added, i), *id, *content, *special;
            if (!json_object_object_get_ex(a, "id", &id) || !json_object_is_type(id, json_type_int) ||
                !json_object_object_get_ex(a, "content", &content) || !json_object_is_type(content, json_type_string))
                return cv_fail("%s: added_tokens[%zu] needs an integer id and a string content", path, i);
            int sp = json_object_object_get_ex(a, "special", &special) && json_object_get_boolean(special);
            if (cv_set_token(v, json_object_get_int64(id), json_object_get_string(content), -1000.0f,
                             sp ? CV_TT_CONTROL : CV_TT_USER, path) != 0)
                return -1;
        }
    if (cv_pad(v) != 0) return -1;

    if (!json_object_object_get_ex(model, "merges", &merges) || !json_object_is_type(merges, json_type_array))
        return cv_fail("%s: no model.merges array", path);
    v->n_merges = json_object_array_length(merges);
    v->merges = calloc(v->n_merges ? v->n_merges : 1, sizeof *v->merges);
    if (!v->merges) return cv_fail("out of memory for merges");
    for (size_t i = 0; i < v->n_merges; i++) {
        json_object *m = json_object_array_get_idx(merges, i);
        if (json_object_is_type(m, json_type_string)) {
            const char *s = json_object_get_string(m);
            if (!strchr(s + (s[0] ? 1 : 0), ' ')) return cv_fail("%s: merge %zu '%s' has no separating space", path, i, s);
            v->merges[i] = strdup(s);
        } else if (json_object_is_type(m, json_type_array) && json_object_array_length(m) == 2) {
            const char *a = json_object_get_string(json_object_array_get_idx(m, 0));
            const char *b = json_object_get_string(json_object_array_get_idx(m, 1));
            size_t la = strlen(a), lb = strlen(b);
            v->merges[i] = malloc(la + lb + 2);
            if (v->merges[i]) {
                memcpy(v->merges[i], a, la);
                v->merges[i][la] = ' ';
                memcpy(v->merges[i] + la + 1, b, lb + 1);
            }
        } else {
            return cv_fail("%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", path, i);
        }
        if (!v->merges[i]) return cv_fail("out of memory for merges");
    }
    v->model = "gpt2";

    if (pre_override) {
        v->pre = strdup(pre_override);
    } else {
        int llama3 = 0, gpt2 = 0, other = 0, blre = 0;
        if (json_object_object_get_ex(tj, "pre_tokenizer", &pre)) cv_scan_pre(pre, &llama3, &gpt2, &other, &blre);
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
    if (cv_path(path, sizeof path, dir, "added_tokens.json") == 0 && (o = cv_json_load(path, 0)) != NULL) {
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
    if (cv_path(path, sizeof path, dir, "tokenizer_config.json") == 0 && (o = cv_json_load(path, 0)) != NULL) {
        json_object *atd;
        if (json_object_object_get_ex(o, "added_tokens_decoder", &atd) && json_object_is_type(atd, json_type_object)) {
            json_object_object_foreach(atd, ids, ent) {
                char *end;
                errno = 0;
                long long i = strtoll(ids, &end, 10);
                json_object *c;
                if (*end || errno || !json_object_object_get_ex(ent, "content", &c)) continue;
                if (i >= (long long)n_pieces &&
                    cv_set_token(v, i, json_object_get_string(c), -1000.0f, CV_TT_USER, path) != 0) {
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

/* A special token given as text or {"content": text} in tokenizer_config.json. */
static void cv_special(cv_vocab *v, json_object *tc, const char *key, int64_t *id) {
    json_object *o, *c;
    if (!tc || !json_object_object_get_ex(tc, key, &o)) return;
    if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "content", &c)) o = c;
    if (!json_object_is_type(o, json_type_string)) return;
    int64_t t = cv_find_token(v, json_object_get_string(o));
    if (t >= 0) *id = t;
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
    tc = cv_json_load(tcpath, 0);
    cfg = cv_json_load(cfgpath, 0);
    /* tokenizer_config.json's texts override the SentencePiece trainer ids (as HF does) */
    cv_special(v, tc, "bos_token", &v->bos);
    cv_special(v, tc, "eos_token", &v->eos);
    cv_special(v, tc, "unk_token", &v->unk);
    cv_special(v, tc, "pad_token", &v->pad);
    cv_config_id(cfg, "bos_token_id", &v->bos);
    cv_config_id(cfg, "eos_token_id", &v->eos);
    cv_config_id(cfg, "pad_token_id", &v->pad);
    v->eot = cv_find_token(v, "<|eot_id|>");
    int b;
    if (tc && cv_json_bool(tc, "add_bos_token", tcpath, &b) == 0) v->add_bos = b;
    if (tc && cv_json_bool(tc, "add_eos_token", tcpath, &b) == 0) v->add_eos = b;
    if (v->add_bos < 0) v->add_bos = v->bos >= 0; /* LLaMA-3 and SentencePiece models prepend BOS */
    if (v->add_eos < 0) v->add_eos = 0;
    /* chat template */
    json_object *ct;
    if (tc && json_object_object_get_ex(tc, "chat_template", &ct)) {
        if (json_object_is_type(ct, json_type_string)) {
            v->chat_template = strdup(json_object_get_string(ct));
        } else if (json_object_is_type(ct, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(ct); i++) {
                json_object *e = json_object_array_get_idx(ct, i), *nm, *tp;
                if (json_object_object_get_ex(e, "name", &nm) && json_object_object_get_ex(e, "template", &tp) &&
                    strcmp(json_object_get_string(nm), "default") == 0)
                    v->chat_template = strdup(json_object_get_string(tp));
            }
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
