/*
 * api.c -- OpenAI request bodies into jobs, and jobs into OpenAI response bodies
 * (json-c).  Field names, types and ranges follow the OpenAI API reference for
 * /v1/chat/completions, /v1/completions and /v1/embeddings; a JSON null means "not
 * given".  Extensions (as llama.cpp's server accepts them): top_k, min_p,
 * repeat_penalty, repeat_last_n.  Unknown fields are ignored, a known field of the
 * wrong type or out of range is a 400 naming it.
 */
#include "server.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SRV_MAX_STOP   16
#define SRV_MAX_INPUTS 256

typedef struct perr {
    int  *status;
    char *type, *msg;
    size_t type_cap, msg_cap;
} perr;

static void *bad(perr *e, int status, const char *type, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void *bad(perr *e, int status, const char *type, const char *fmt, ...) {
    *e->status = status;
    snprintf(e->type, e->type_cap, "%s", type);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, e->msg_cap, fmt, ap);
    va_end(ap);
    return NULL;
}
#define BAD(...) bad(e, 400, "invalid_request_error", __VA_ARGS__)

/* The field `key` or NULL when absent or JSON null. */
static json_object *field(json_object *o, const char *key) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v)) return NULL;
    return v && json_object_get_type(v) != json_type_null ? v : NULL;
}

/* Numbers: ints and doubles alike (JSON has one number type). */
static int get_number(perr *e, json_object *o, const char *key, double lo, double hi, double *out) {
    json_object *v = field(o, key);
    if (!v) return 0;
    json_type t = json_object_get_type(v);
    if (t != json_type_int && t != json_type_double) return BAD("'%s': expected a number", key), -1;
    double d = json_object_get_double(v);
    if (!isfinite(d) || d < lo || d > hi) return BAD("'%s': %g is out of range [%g, %g]", key, d, lo, hi), -1;
    *out = d;
    return 1;
}

static int get_int(perr *e, json_object *o, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    json_object *v = field(o, key);
    if (!v) return 0;
    json_type t = json_object_get_type(v);
    double d = t == json_type_double ? json_object_get_double(v) : 0;
    if (t != json_type_int && !(t == json_type_double && d == floor(d) && fabs(d) < 9e15))
        return BAD("'%s': expected an integer", key), -1;
    int64_t x = t == json_type_int ? json_object_get_int64(v) : (int64_t)d;
    if (x < lo || x > hi)
        return BAD("'%s': %lld is out of range [%lld, %lld]", key, (long long)x, (long long)lo, (long long)hi), -1;
    *out = x;
    return 1;
}

static int get_bool(perr *e, json_object *o, const char *key, int *out) {
    json_object *v = field(o, key);
    if (!v) return 0;
    if (json_object_get_type(v) != json_type_boolean) return BAD("'%s': expected true or false", key), -1;
    *out = json_object_get_boolean(v);
    return 1;
}

/* ---- tokens ------------------------------------------------------------------------------- */

static bitnet_token *tokenize(const bitnet_model *m, const char *s, size_t n, uint32_t flags, size_t *n_out) {
    size_t cap = n + 8, need = 0;
    bitnet_token *t = malloc(cap * sizeof *t);
    if (!t) return NULL;
    bitnet_status st = bitnet_tokenize(m, s, n, flags, t, cap, &need);
    if (st == BITNET_E_BUFFER_TOO_SMALL) {
        free(t);
        cap = need;
        if (!(t = malloc((cap ? cap : 1) * sizeof *t))) return NULL;
        st = bitnet_tokenize(m, s, n, flags, t, cap, &need);
    }
    if (st != BITNET_OK) {
        free(t);
        return NULL;
    }
    *n_out = need;
    return t;
}

/* A JSON array of token ids (each in the vocabulary). */
static bitnet_token *token_array(perr *e, const bitnet_model *m, json_object *a, const char *what, size_t *n_out) {
    size_t n = json_object_array_length(a);
    int64_t nv = bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    bitnet_token *t = malloc((n ? n : 1) * sizeof *t);
    if (!t) return bad(e, 500, "server_error", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(a, i);
        if (json_object_get_type(x) != json_type_int) {
            free(t);
            return BAD("'%s': element %zu is not a token id (integer)", what, i);
        }
        int64_t id = json_object_get_int64(x);
        if (id < 0 || id >= nv) {
            free(t);
            return BAD("'%s': token id %lld is outside the vocabulary [0, %lld)", what, (long long)id, (long long)nv);
        }
        t[i] = (bitnet_token)id;
    }
    *n_out = n;
    return t;
}

/* The text of a message's content: a string, or an array of {"type": "text", "text": ...}
 * parts (concatenated). */
static char *message_text(perr *e, json_object *content, size_t i, size_t *len) {
    if (!content) {
        *len = 0;
        return strdup("");
    }
    if (json_object_get_type(content) == json_type_string) {
        *len = (size_t)json_object_get_string_len(content);
        char *s = malloc(*len + 1);
        if (!s) return bad(e, 500, "server_error", "out of memory");
        memcpy(s, json_object_get_string(content), *len);
        s[*len] = 0;
        return s;
    }
    if (json_object_get_type(content) != json_type_array)
        return BAD("'messages[%zu].content': expected a string or an array of text parts", i);
    size_t total = 0, n = json_object_array_length(content);
    for (size_t k = 0; k < n; k++) {
        json_object *p = json_object_array_get_idx(content, k), *ty = NULL, *tx = NULL;
        if (json_object_get_type(p) != json_type_object || !(ty = field(p, "type")) ||
            json_object_get_type(ty) != json_type_string)
            return BAD("'messages[%zu].content[%zu]': expected an object with a 'type'", i, k);
        if (strcmp(json_object_get_string(ty), "text") != 0)
            return bad(e, 400, "invalid_request_error", "'messages[%zu].content[%zu]': content parts of type '%s' "
                       "are not supported (text only)", i, k, json_object_get_string(ty));
        if (!(tx = field(p, "text")) || json_object_get_type(tx) != json_type_string)
            return BAD("'messages[%zu].content[%zu].text': expected a string", i, k);
        total += (size_t)json_object_get_string_len(tx);
    }
    char *s = malloc(total + 1);
    if (!s) return bad(e, 500, "server_error", "out of memory");
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        json_object *tx = field(json_object_array_get_idx(content, k), "text");
        size_t l = (size_t)json_object_get_string_len(tx);
        memcpy(s + o, json_object_get_string(tx), l);
        o += l;
    }
    s[o] = 0;
    *len = o;
    return s;
}

/* messages -> the prompt tokens of the rendered conversation. */
static bitnet_token *chat_prompt(perr *e, const srv_ctx *c, json_object *msgs, size_t *n_out) {
    if (!msgs || json_object_get_type(msgs) != json_type_array) return BAD("'messages': expected an array of messages");
    size_t n = json_object_array_length(msgs);
    if (n == 0) return BAD("'messages': must not be empty");
    if (n > 4096) return BAD("'messages': at most 4096 messages");
    bitnet_chat_message *cm = calloc(n, sizeof *cm);
    char **texts = calloc(n, sizeof *texts);
    bitnet_token *toks = NULL;
    if (!cm || !texts) {
        bad(e, 500, "server_error", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *role;
        if (json_object_get_type(m) != json_type_object) {
            BAD("'messages[%zu]': expected an object", i);
            goto done;
        }
        if (!(role = field(m, "role")) || json_object_get_type(role) != json_type_string) {
            BAD("'messages[%zu].role': expected a string", i);
            goto done;
        }
        const char *r = json_object_get_string(role);
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant") && strcmp(r, "developer") &&
            strcmp(r, "tool")) {
            BAD("'messages[%zu].role': '%.40s' is not one of system, developer, user, assistant, tool", i, r);
            goto done;
        }
        size_t len = 0;
        if (!(texts[i] = message_text(e, field(m, "content"), i, &len))) goto done;
        if (strlen(texts[i]) != len) {
            BAD("'messages[%zu].content': contains a NUL character", i);
            goto done;
        }
        cm[i].role = strcmp(r, "developer") ? r : "system";
        cm[i].content = texts[i];
    }
    {
        size_t nt = 0;
        toks = srv_chat_tokens(c, cm, n, &nt, e->msg, e->msg_cap);
        if (!toks) {
            *e->status = 400;
            snprintf(e->type, e->type_cap, "invalid_request_error");
            goto done;
        }
        *n_out = nt;
    }
done:
    if (texts)
        for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(cm);
    return toks;
}

/* ---- requests ------------------------------------------------------------------------------ */

static int parse_sampling(perr *e, const srv_ctx *c, json_object *o, srv_job *j) {
    double d;
    int64_t x;
    int r;
    j->sp = c->cfg->sampler;
    if ((r = get_number(e, o, "temperature", 0, 100, &d)) < 0) return -1;
    if (r) j->sp.temperature = (float)d;
    if ((r = get_number(e, o, "top_p", 0, 1, &d)) < 0) return -1;
    if (r) j->sp.top_p = (float)d;
    if ((r = get_int(e, o, "top_k", -1, 1 << 30, &x)) < 0) return -1;
    if (r) j->sp.top_k = (int32_t)x;
    if ((r = get_number(e, o, "min_p", 0, 1, &d)) < 0) return -1;
    if (r) j->sp.min_p = (float)d;
    if ((r = get_number(e, o, "presence_penalty", -2, 2, &d)) < 0) return -1;
    if (r) j->sp.presence_penalty = (float)d;
    if ((r = get_number(e, o, "frequency_penalty", -2, 2, &d)) < 0) return -1;
    if (r) j->sp.frequency_penalty = (float)d;
    if ((r = get_number(e, o, "repeat_penalty", 1e-6, 100, &d)) < 0) return -1;
    if (r) j->sp.repeat_penalty = (float)d;
    if ((r = get_int(e, o, "repeat_last_n", -1, 1 << 30, &x)) < 0) return -1;
    if (r) j->sp.repeat_last_n = (int32_t)x;
    if ((r = get_int(e, o, "seed", INT64_MIN, INT64_MAX, &x)) < 0) return -1;
    if (r) j->has_seed = 1, j->seed = (uint64_t)x;
    return 0;
}

static int parse_stop(perr *e, json_object *o, srv_job *j) {
    json_object *v = field(o, "stop");
    if (!v) return 0;
    size_t n = json_object_get_type(v) == json_type_array ? json_object_array_length(v) : 1;
    if (json_object_get_type(v) != json_type_string && json_object_get_type(v) != json_type_array)
        return BAD("'stop': expected a string or an array of strings"), -1;
    if (n > SRV_MAX_STOP) return BAD("'stop': at most %d stop strings", SRV_MAX_STOP), -1;
    j->stop = calloc(n ? n : 1, sizeof *j->stop);
    if (!j->stop) return bad(e, 500, "server_error", "out of memory"), -1;
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_get_type(v) == json_type_array ? json_object_array_get_idx(v, i) : v;
        if (json_object_get_type(s) != json_type_string) return BAD("'stop[%zu]': expected a string", i), -1;
        size_t len = (size_t)json_object_get_string_len(s);
        if (len == 0 || len > 256 || strlen(json_object_get_string(s)) != len)
            return BAD("'stop[%zu]': must be 1..256 bytes without NUL", i), -1;
        j->stop[j->n_stop++] = strdup(json_object_get_string(s));
    }
    return 0;
}

static void make_id(srv_job *j, const char *prefix) {
    static unsigned long long ctr;
    unsigned long long r = (unsigned long long)time(NULL) * 6364136223846793005ull + __atomic_add_fetch(&ctr, 1, __ATOMIC_RELAXED) * 1442695040888963407ull;
    snprintf(j->id, sizeof j->id, "%s-%016llx", prefix, r);
    j->created = (int64_t)time(NULL);
}

static srv_job *parse_generate(perr *e, const srv_ctx *c, srv_kind kind, json_object *o) {
    srv_job *j = srv_job_new(kind);
    if (!j) return bad(e, 500, "server_error", "out of memory");
    make_id(j, kind == SRV_CHAT ? "chatcmpl" : "cmpl");
    json_object *v;
    int64_t x;
    int r;
    if ((v = field(o, "model")) && json_object_get_type(v) != json_type_string) {
        BAD("'model': expected a string");
        goto fail;
    }
    if (get_int(e, o, "n", 1, 1, &x) < 0) {
        BAD("'n': only n = 1 is supported");
        goto fail;
    }
    if (get_bool(e, o, "stream", &j->stream) < 0 || parse_sampling(e, c, o, j) < 0 || parse_stop(e, o, j) < 0) goto fail;
    if ((v = field(o, "stream_options"))) {
        if (json_object_get_type(v) != json_type_object) {
            BAD("'stream_options': expected an object");
            goto fail;
        }
        if (get_bool(e, v, "include_usage", &j->include_usage) < 0) goto fail;
    }
    int lp = 0;
    if (get_bool(e, o, "logprobs", &lp) < 0) goto fail;
    if (lp || ((v = field(o, "logprobs")) && json_object_get_type(v) == json_type_int)) {
        bad(e, 400, "invalid_request_error", "'logprobs' is not supported");
        goto fail;
    }
    const int64_t n_ctx = srv_sched_n_ctx(c->sched);
    const int64_t cap = c->cfg->max_tokens_cap > 0 ? c->cfg->max_tokens_cap : n_ctx;
    r = get_int(e, o, "max_completion_tokens", 1, cap, &x);
    if (r == 0) r = get_int(e, o, "max_tokens", 1, cap, &x);
    if (r < 0) goto fail;
    if (r) j->max_tokens = (int)x;

    if (kind == SRV_CHAT) {
        if (!(j->prompt = chat_prompt(e, c, field(o, "messages"), &j->n_prompt))) goto fail;
    } else {
        v = field(o, "prompt");
        if (!v) {
            BAD("'prompt': required");
            goto fail;
        }
        if (json_object_get_type(v) == json_type_array && json_object_array_length(v) == 1 &&
            json_object_get_type(json_object_array_get_idx(v, 0)) != json_type_int)
            v = json_object_array_get_idx(v, 0); /* ["text"] or [[ids]] */
        if (json_object_get_type(v) == json_type_string) {
            j->prompt = tokenize(c->model, json_object_get_string(v), (size_t)json_object_get_string_len(v),
                                 BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL, &j->n_prompt);
            if (!j->prompt) {
                bad(e, 400, "invalid_request_error", "'prompt': %s", bitnet_last_error());
                goto fail;
            }
        } else if (json_object_get_type(v) == json_type_array) {
            if (!(j->prompt = token_array(e, c->model, v, "prompt", &j->n_prompt))) goto fail;
        } else {
            BAD("'prompt': expected a string or an array of token ids (one prompt per request)");
            goto fail;
        }
    }
    if (j->n_prompt == 0) {
        BAD("the prompt is empty");
        goto fail;
    }
    if ((int64_t)j->n_prompt >= n_ctx || (j->max_tokens > 0 && (int64_t)j->n_prompt + j->max_tokens > n_ctx)) {
        bad(e, 400, "invalid_request_error",
            "This model's maximum context length is %lld tokens. However, you requested %lld tokens (%zu in the "
            "prompt, %d for the completion). Please reduce the prompt or max_tokens.",
            (long long)n_ctx, (long long)j->n_prompt + (j->max_tokens > 0 ? j->max_tokens : 0), j->n_prompt,
            j->max_tokens > 0 ? j->max_tokens : 0);
        snprintf(e->type, e->type_cap, "context_length_exceeded");
        goto fail;
    }
    if (c->cfg->timeout_s > 0) j->deadline = srv_now() + c->cfg->timeout_s;
    return j;
fail:
    srv_job_unref(j);
    return NULL;
}

static srv_job *parse_embeddings(perr *e, const srv_ctx *c, json_object *o) {
    bitnet_pooling pool = srv_sched_pooling(c->sched);
    if (pool != BITNET_POOLING_MEAN && pool != BITNET_POOLING_CLS && pool != BITNET_POOLING_LAST)
        return bad(e, 400, "invalid_request_error", "this model's pooling (%s) gives no sentence embeddings",
                   pool == BITNET_POOLING_RANK ? "rank: a reranker" : "none");
    srv_job *j = srv_job_new(SRV_EMBEDDING);
    if (!j) return bad(e, 500, "server_error", "out of memory");
    json_object *v = field(o, "input"), *f;
    const int64_t n_ctx = srv_sched_n_ctx(c->sched);
    if (!v) {
        BAD("'input': required");
        goto fail;
    }
    if ((f = field(o, "encoding_format")) &&
        (json_object_get_type(f) != json_type_string ||
         (strcmp(json_object_get_string(f), "float") && strcmp(json_object_get_string(f), "base64")))) {
        BAD("'encoding_format': expected \"float\" or \"base64\"");
        goto fail;
    }
    j->stream = f && !strcmp(json_object_get_string(f), "base64"); /* reused: base64 output */
    /* a string, an array of strings, an array of ids, an array of arrays of ids */
    int single = json_object_get_type(v) == json_type_string ||
                 (json_object_get_type(v) == json_type_array && json_object_array_length(v) > 0 &&
                  json_object_get_type(json_object_array_get_idx(v, 0)) == json_type_int);
    size_t n = single ? 1 : json_object_get_type(v) == json_type_array ? json_object_array_length(v) : 0;
    if (!single && json_object_get_type(v) != json_type_array) {
        BAD("'input': expected a string, an array of strings or an array of token arrays");
        goto fail;
    }
    if (n == 0 || n > SRV_MAX_INPUTS) {
        BAD("'input': 1 to %d inputs", SRV_MAX_INPUTS);
        goto fail;
    }
    j->inputs = calloc(n, sizeof *j->inputs);
    j->n_inputs = calloc(n, sizeof *j->n_inputs);
    if (!j->inputs || !j->n_inputs) {
        bad(e, 500, "server_error", "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++, j->n_input++) {
        json_object *x = single ? v : json_object_array_get_idx(v, i);
        if (json_object_get_type(x) == json_type_string) {
            j->inputs[i] = tokenize(c->model, json_object_get_string(x), (size_t)json_object_get_string_len(x),
                                    BITNET_TOKENIZE_ADD_BOS, &j->n_inputs[i]);
            if (!j->inputs[i]) {
                bad(e, 400, "invalid_request_error", "'input[%zu]': %s", i, bitnet_last_error());
                goto fail;
            }
        } else if (json_object_get_type(x) == json_type_array) {
            if (!(j->inputs[i] = token_array(e, c->model, x, "input", &j->n_inputs[i]))) goto fail;
        } else {
            BAD("'input[%zu]': expected a string or an array of token ids", i);
            goto fail;
        }
        if (j->n_inputs[i] == 0 || (int64_t)j->n_inputs[i] > n_ctx) {
            bad(e, 400, "context_length_exceeded", "'input[%zu]': %zu tokens; an input must have 1 to %lld tokens", i,
                j->n_inputs[i], (long long)n_ctx);
            j->n_input++;
            goto fail;
        }
    }
    if (c->cfg->timeout_s > 0) j->deadline = srv_now() + c->cfg->timeout_s;
    return j;
fail:
    srv_job_unref(j);
    return NULL;
}

srv_job *srv_api_parse(const srv_ctx *c, srv_kind kind, const char *body, size_t len, int *status, char *type,
                       size_t type_cap, char *msg, size_t msg_cap) {
    perr ee = {status, type, msg, type_cap, msg_cap}, *e = &ee;
    json_tokener *tok = json_tokener_new_ex(32);
    if (!tok) return bad(e, 500, "server_error", "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = len <= INT32_MAX ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    srv_job *j = NULL;
    if (!o || jerr != json_tokener_success) {
        BAD("the body is not valid JSON: %s", jerr == json_tokener_continue ? "unexpected end of data"
                                                                            : json_tokener_error_desc(jerr));
    } else if (used < len && strspn(body + used, " \t\r\n") != len - used) {
        BAD("the body has data after the JSON value");
    } else if (json_object_get_type(o) != json_type_object) {
        BAD("the body must be a JSON object");
    } else {
        j = kind == SRV_EMBEDDING ? parse_embeddings(e, c, o) : parse_generate(e, c, kind, o);
    }
    json_object_put(o);
    return j;
}

/* ---- responses ------------------------------------------------------------------------------- */

static char *dump(json_object *o) {
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *r = s ? strdup(s) : NULL;
    json_object_put(o);
    return r;
}

char *srv_api_error(const char *type, const char *msg, const char *param) {
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "param", param ? json_object_new_string(param) : NULL);
    json_object_object_add(e, "code", json_object_new_string(type));
    json_object_object_add(o, "error", e);
    return dump(o);
}

static json_object *usage(const srv_job *j) {
    json_object *u = json_object_new_object(), *d = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int64((int64_t)j->n_prompt));
    json_object_object_add(u, "completion_tokens", json_object_new_int64((int64_t)j->n_generated));
    json_object_object_add(u, "total_tokens", json_object_new_int64((int64_t)(j->n_prompt + j->n_generated)));
    json_object_object_add(d, "cached_tokens", json_object_new_int64((int64_t)j->n_cached));
    json_object_object_add(u, "prompt_tokens_details", d);
    /* speculation: drafted tokens the model accepted / rejected (OpenAI's names for
     * predicted-output tokens; 0 without speculation) */
    json_object *cd = json_object_new_object();
    json_object_object_add(cd, "accepted_prediction_tokens", json_object_new_int64((int64_t)j->n_accepted));
    json_object_object_add(cd, "rejected_prediction_tokens",
                           json_object_new_int64((int64_t)(j->n_drafted - j->n_accepted)));
    json_object_object_add(u, "completion_tokens_details", cd);
    return u;
}

/* llama-server-like timings: prompt (queued to first token) and generation, drafts. */
static json_object *timings(const srv_job *j) {
    json_object *t = json_object_new_object();
    const double first = j->t_first > 0 ? j->t_first : j->t_end, end = j->t_end > 0 ? j->t_end : first;
    const double prompt_ms = first > j->t_start ? (first - j->t_start) * 1e3 : 0.0,
                 gen_ms = end > first ? (end - first) * 1e3 : 0.0;
    json_object_object_add(t, "prompt_n", json_object_new_int64((int64_t)(j->n_prompt - j->n_cached)));
    json_object_object_add(t, "prompt_ms", json_object_new_double(prompt_ms));
    json_object_object_add(t, "predicted_n", json_object_new_int64((int64_t)j->n_generated));
    json_object_object_add(t, "predicted_ms", json_object_new_double(gen_ms));
    json_object_object_add(t, "predicted_per_second",
                           json_object_new_double(gen_ms > 0 && j->n_generated > 1
                                                      ? (double)(j->n_generated - 1) * 1e3 / gen_ms : 0.0));
    json_object_object_add(t, "draft_n", json_object_new_int64((int64_t)j->n_drafted));
    json_object_object_add(t, "draft_n_accepted", json_object_new_int64((int64_t)j->n_accepted));
    return t;
}

static json_object *envelope(const srv_ctx *c, const srv_job *j, const char *object) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(j->id));
    json_object_object_add(o, "object", json_object_new_string(object));
    json_object_object_add(o, "created", json_object_new_int64(j->created));
    json_object_object_add(o, "model", json_object_new_string(c->model_id));
    json_object_object_add(o, "system_fingerprint", json_object_new_string("libbitnet-" BITNET_VERSION_STRING));
    return o;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_object *base64_floats(const float *v, int n) {
    const unsigned char *p = (const unsigned char *)v;
    size_t len = (size_t)n * 4, o = 0;
    char *s = malloc((len + 2) / 3 * 4 + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);
        s[o++] = b64[x >> 18 & 63];
        s[o++] = b64[x >> 12 & 63];
        s[o++] = i + 1 < len ? b64[x >> 6 & 63] : '=';
        s[o++] = i + 2 < len ? b64[x & 63] : '=';
    }
    s[o] = 0;
    json_object *r = json_object_new_string_len(s, (int)o);
    free(s);
    return r;
}

char *srv_api_result(const srv_ctx *c, srv_job *j) {
    if (j->kind == SRV_EMBEDDING) {
        json_object *o = json_object_new_object(), *data = json_object_new_array();
        json_object_object_add(o, "object", json_object_new_string("list"));
        size_t total = 0;
        for (size_t i = 0; i < j->n_input; i++) {
            json_object *d = json_object_new_object();
            json_object_object_add(d, "object", json_object_new_string("embedding"));
            json_object_object_add(d, "index", json_object_new_int64((int64_t)i));
            if (j->stream) {
                json_object_object_add(d, "embedding", base64_floats(j->embd[i], j->n_embd));
            } else {
                json_object *v = json_object_new_array_ext(j->n_embd);
                for (int k = 0; k < j->n_embd; k++) json_object_array_add(v, json_object_new_double(j->embd[i][k]));
                json_object_object_add(d, "embedding", v);
            }
            json_object_array_add(data, d);
            total += j->n_inputs[i];
        }
        json_object_object_add(o, "data", data);
        json_object_object_add(o, "model", json_object_new_string(c->model_id));
        json_object *u = json_object_new_object();
        json_object_object_add(u, "prompt_tokens", json_object_new_int64((int64_t)total));
        json_object_object_add(u, "total_tokens", json_object_new_int64((int64_t)total));
        json_object_object_add(o, "usage", u);
        return dump(o);
    }
    const int chat = j->kind == SRV_CHAT;
    json_object *o = envelope(c, j, chat ? "chat.completion" : "text_completion");
    json_object *choices = json_object_new_array(), *ch = json_object_new_object();
    json_object_object_add(ch, "index", json_object_new_int(0));
    json_object *text = json_object_new_string_len(j->out ? j->out : "", (int)j->out_len);
    if (chat) {
        json_object *msg = json_object_new_object();
        json_object_object_add(msg, "role", json_object_new_string("assistant"));
        json_object_object_add(msg, "content", text);
        json_object_object_add(ch, "message", msg);
    } else {
        json_object_object_add(ch, "text", text);
    }
    json_object_object_add(ch, "logprobs", NULL);
    json_object_object_add(ch, "finish_reason", json_object_new_string(j->finish ? j->finish : "stop"));
    json_object_array_add(choices, ch);
    json_object_object_add(o, "choices", choices);
    json_object_object_add(o, "usage", usage(j));
    json_object_object_add(o, "timings", timings(j));
    return dump(o);
}

char *srv_api_chunk(const srv_ctx *c, srv_job *j, const char *text, size_t len, const char *finish, int first) {
    const int chat = j->kind == SRV_CHAT;
    json_object *o = envelope(c, j, chat ? "chat.completion.chunk" : "text_completion");
    json_object *choices = json_object_new_array(), *ch = json_object_new_object();
    json_object_object_add(ch, "index", json_object_new_int(0));
    if (chat) {
        json_object *d = json_object_new_object();
        if (first) json_object_object_add(d, "role", json_object_new_string("assistant"));
        if (len || !finish) json_object_object_add(d, "content", json_object_new_string_len(text ? text : "", (int)len));
        json_object_object_add(ch, "delta", d);
    } else {
        json_object_object_add(ch, "text", json_object_new_string_len(text ? text : "", (int)len));
    }
    json_object_object_add(ch, "logprobs", NULL);
    json_object_object_add(ch, "finish_reason", finish ? json_object_new_string(finish) : NULL);
    json_object_array_add(choices, ch);
    json_object_object_add(o, "choices", choices);
    if (j->include_usage) json_object_object_add(o, "usage", NULL);
    return dump(o);
}

char *srv_api_usage_chunk(const srv_ctx *c, srv_job *j) {
    json_object *o = envelope(c, j, j->kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion");
    json_object_object_add(o, "choices", json_object_new_array());
    json_object_object_add(o, "usage", usage(j));
    json_object_object_add(o, "timings", timings(j));
    return dump(o);
}

char *srv_api_models(const srv_ctx *c, int one) {
    json_object *o = json_object_new_object(), *data = json_object_new_array(), *m = json_object_new_object();
    json_object_object_add(o, "object", json_object_new_string("list"));
    json_object_object_add(m, "id", json_object_new_string(c->model_id));
    json_object_object_add(m, "object", json_object_new_string("model"));
    json_object_object_add(m, "created", json_object_new_int64((int64_t)time(NULL)));
    json_object_object_add(m, "owned_by", json_object_new_string("libbitnet"));
    json_object *meta = json_object_new_object();
    json_object_object_add(meta, "description", json_object_new_string(bitnet_model_desc(c->model)));
    json_object_object_add(meta, "n_ctx_per_slot", json_object_new_int64(srv_sched_n_ctx(c->sched)));
    json_object_object_add(meta, "n_vocab", json_object_new_int64(bitnet_model_get_info(c->model, BITNET_INFO_N_VOCAB)));
    json_object_object_add(meta, "n_ctx_train", json_object_new_int64(bitnet_model_get_info(c->model, BITNET_INFO_N_CTX_TRAIN)));
    json_object_object_add(m, "meta", meta);
    if (one) {
        json_object_put(o);
        json_object_put(data);
        return dump(m);
    }
    json_object_array_add(data, m);
    json_object_object_add(o, "data", data);
    return dump(o);
}

/* ---- conversations ---------------------------------------------------------------------------- */

bitnet_token *srv_chat_tokens(const srv_ctx *c, const bitnet_chat_message *msgs, size_t n, size_t *n_out, char *msg,
                              size_t msg_cap) {
    /* rendered with the model's template; message text is tokenized as plain text, only
     * the template's own markup can become special tokens (bitnet_chat_tokenize) */
    bitnet_chat_params cp;
    bitnet_chat_default_params(&cp, sizeof cp);
    cp.tmpl = c->cfg->tmpl;
    cp.add_generation_prompt = 1;
    cp.flags = BITNET_TOKENIZE_ADD_BOS;
    size_t need = 0;
    bitnet_status st = bitnet_chat_tokenize(c->model, msgs, n, &cp, NULL, 0, &need);
    bitnet_token *t = NULL;
    if (st == BITNET_OK || st == BITNET_E_BUFFER_TOO_SMALL) {
        t = malloc((need ? need : 1) * sizeof *t);
        st = t ? bitnet_chat_tokenize(c->model, msgs, n, &cp, t, need, &need) : BITNET_E_NOMEM;
    }
    if (st != BITNET_OK) {
        free(t);
        snprintf(msg, msg_cap, "the conversation cannot be rendered with the chat template: %s", bitnet_last_error());
        return NULL;
    }
    *n_out = need;
    return t;
}
