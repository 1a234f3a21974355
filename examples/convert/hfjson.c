/*
 * hfjson.c -- small helpers: messages, files, and typed JSON lookups over json-c
 * (Debian's libjson-c; only the converter needs it, never the library).
 *
 * The lookups distinguish "absent" (or JSON null, which Hugging Face configs use for
 * unset values) from "present with the wrong type", so a config.json that says
 * "num_hidden_layers": "30" is an error that names the key, not a silent default.
 */
#include "convert.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cv_quiet = 0;
int cv_quiet_errors = 0;

int cv_fail(const char *fmt, ...) {
    if (cv_quiet_errors) return -1;
    va_list ap;
    va_start(ap, fmt);
    fputs("bitnet-convert: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

void cv_info(const char *fmt, ...) {
    if (cv_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("bitnet-convert: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cv_path(char *buf, size_t cap, const char *dir, const char *name) {
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int cv_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

char *cv_read_file(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536 + 1) {
            size_t nc = cap ? cap * 2 : 131072;
            if (nc > max + 65536 + 1) nc = max + 65536 + 1;
            if (nc <= cap) {
                errno = EFBIG;
                goto fail;
            }
            char *nb = realloc(buf, nc);
            if (!nb) goto fail;
            buf = nb;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (n > max) {
            errno = EFBIG;
            goto fail;
        }
        if (r == 0) break;
    }
    if (ferror(f)) goto fail;
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

json_object *cv_json_load(const char *path, int required) {
    size_t len;
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        cv_fail("%s: not a regular file", path);
        return NULL;
    }
    if (!cv_file_exists(path)) {
        if (required) cv_fail("%s: file not found", path);
        return NULL;
    }
    char *text = cv_read_file(path, (size_t)1 << 30, &len);
    if (!text) {
        cv_fail("%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(128);
    json_object *o = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    if (!o || json_tokener_get_error(tok) != json_tokener_success) {
        cv_fail("%s: invalid JSON (%s)", path, tok ? json_tokener_error_desc(json_tokener_get_error(tok)) : "no memory");
        if (o) json_object_put(o);
        o = NULL;
    } else if (!json_object_is_type(o, json_type_object)) {
        cv_fail("%s: the top level is not a JSON object", path);
        json_object_put(o);
        o = NULL;
    }
    if (tok) json_tokener_free(tok);
    free(text);
    return o;
}

static json_object *cv_json_get(json_object *o, const char *key) {
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) return NULL;
    return v;
}

int cv_json_int(json_object *o, const char *key, const char *file, int64_t *out) {
    json_object *v = cv_json_get(o, key);
    if (!v) return 1;
    if (!json_object_is_type(v, json_type_int)) return cv_fail("%s: \"%s\" is not an integer", file, key);
    *out = json_object_get_int64(v);
    return 0;
}

int cv_json_num(json_object *o, const char *key, const char *file, double *out) {
    json_object *v = cv_json_get(o, key);
    if (!v) return 1;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return cv_fail("%s: \"%s\" is not a number", file, key);
    *out = json_object_get_double(v);
    return 0;
}

int cv_json_str(json_object *o, const char *key, const char *file, const char **out) {
    json_object *v = cv_json_get(o, key);
    if (!v) return 1;
    if (!json_object_is_type(v, json_type_string)) return cv_fail("%s: \"%s\" is not a string", file, key);
    *out = json_object_get_string(v);
    return 0;
}

int cv_json_bool(json_object *o, const char *key, const char *file, int *out) {
    json_object *v = cv_json_get(o, key);
    if (!v) return 1;
    if (!json_object_is_type(v, json_type_boolean)) return cv_fail("%s: \"%s\" is not true/false", file, key);
    *out = json_object_get_boolean(v);
    return 0;
}

const char *cv_json_type_name(json_object *v) {
    switch (v ? json_object_get_type(v) : json_type_null) {
    case json_type_null: return "null";
    case json_type_boolean: return "a boolean";
    case json_type_double:
    case json_type_int: return "a number";
    case json_type_object: return "an object";
    case json_type_array: return "an array";
    case json_type_string: return "a string";
    }
    return "?";
}

int cv_json_as_str(json_object *v, const char *file, const char *where, const char **out) {
    if (!v || !json_object_is_type(v, json_type_string))
        return cv_fail("%s: %s is %s where a string is expected", file, where, cv_json_type_name(v));
    *out = json_object_get_string(v);
    return 0;
}

int cv_json_as_int(json_object *v, const char *file, const char *where, int64_t lo, int64_t hi, int64_t *out) {
    if (!v || !json_object_is_type(v, json_type_int))
        return cv_fail("%s: %s is %s where an integer is expected", file, where, cv_json_type_name(v));
    errno = 0;
    int64_t x = json_object_get_int64(v);
    /* json-c clamps integers beyond int64 to INT64_MIN/MAX (and sets errno) */
    if (errno || x < lo || x > hi)
        return cv_fail("%s: %s = %s is out of range (%lld..%lld)", file, where, json_object_to_json_string(v),
                       (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

int cv_json_load_opt(const char *path, json_object **out) {
    struct stat sb;
    *out = NULL;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) return 0;
        return cv_fail("%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode)) return cv_fail("%s: not a regular file", path);
    *out = cv_json_load(path, 1);
    return *out ? 0 : -1;
}

/* ---- string map: open addressing, FNV-1a, load factor <= 1/2 ------------------------ */

static uint64_t cv_smap_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int cv_smap_grow(cv_smap *m) {
    size_t nc = m->cap ? m->cap * 2 : 64;
    const char **nk = calloc(nc, sizeof *nk);
    int64_t *nv = malloc(nc * sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = (size_t)cv_smap_hash(m->keys[i]) & (nc - 1);
        while (nk[j]) j = (j + 1) & (nc - 1);
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = nc;
    return 0;
}

int cv_smap_put(cv_smap *m, const char *key, int64_t val) {
    if ((m->n + 1) * 2 > m->cap && cv_smap_grow(m) != 0) return -1;
    size_t j = (size_t)cv_smap_hash(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (strcmp(m->keys[j], key) == 0) return 0;
        j = (j + 1) & (m->cap - 1);
    }
    m->keys[j] = key;
    m->vals[j] = val;
    m->n++;
    return 1;
}

int64_t cv_smap_get(const cv_smap *m, const char *key) {
    if (!m->cap) return -1;
    size_t j = (size_t)cv_smap_hash(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (strcmp(m->keys[j], key) == 0) return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

void cv_smap_free(cv_smap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
