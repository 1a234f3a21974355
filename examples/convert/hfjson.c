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

int cv_fail(const char *fmt, ...) {
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
