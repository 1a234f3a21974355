/*
 * chat_jinja_lib.c -- the library of the Jinja renderer (chat_jinja.h): strings,
 * values, str() / repr() / JSON, attribute and item access, filters, tests, global
 * functions and the methods of strings, dicts and lists.
 *
 * Strings are UTF-8; Python's string operations count and index code points, so
 * those here do too.  Case conversions (upper, lower, capitalize, title) handle ASCII;
 * a string with other letters in it is refused (BITNET_E_UNSUPPORTED) rather than
 * converted differently from Python.  Whitespace is Python's str.isspace() set.
 * Every string keeps, per byte, whether it came from a message; operations copy that
 * mark with the bytes they copy (a trimmed message is still message text, the quotes
 * tojson adds around it are not).
 */
#include "chat_jinja_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ---- strings -------------------------------------------------------------------------------- */

jstr bn_js_lit(const char *s) {
    jstr r = {s, NULL, strlen(s)};
    return r;
}

int bn_js_eq(jstr a, jstr b) { return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0); }
int bn_js_eqz(jstr a, const char *z) { return a.n == strlen(z) && memcmp(a.p, z, a.n) == 0; }

int bn_js_cmp(jstr a, jstr b) {
    size_t n = a.n < b.n ? a.n : b.n;
    int r = n ? memcmp(a.p, b.p, n) : 0;
    if (r) return r < 0 ? -1 : 1;
    return a.n < b.n ? -1 : a.n > b.n;
}

bitnet_status bn_js_new(jctx *c, const char *p, const uint8_t *m, size_t n, jstr *out) {
    char *q = bn_ja_alloc(c, n + 1);
    if (!q) return ja_error(c);
    if (n) memcpy(q, p, n);
    q[n] = 0;
    uint8_t *mm = NULL;
    if (m) {
        mm = bn_ja_alloc(c, n ? n : 1);
        if (!mm) return ja_error(c);
        if (n) memcpy(mm, m, n);
    }
    out->p = q;
    out->m = mm;
    out->n = n;
    return BITNET_OK;
}

bitnet_status bn_jsb_put(jctx *c, jsb *b, const char *p, size_t n, const uint8_t *m, int from_msg) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = bn_ja_alloc(c, nc);
        uint8_t *nm = np ? bn_ja_alloc(c, nc) : NULL;
        if (!np || !nm) return ja_error(c);
        if (b->n) {
            memcpy(np, b->p, b->n);
            memcpy(nm, b->m, b->n);
        }
        b->p = np;
        b->m = nm;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, p, n);
    if (m) {
        memcpy(b->m + b->n, m, n);
        for (size_t i = 0; i < n && !b->any; i++) b->any = m[i];
    } else {
        memset(b->m + b->n, from_msg ? 1 : 0, n);
        if (from_msg && n) b->any = 1;
    }
    b->n += n;
    b->p[b->n] = 0;
    return BITNET_OK;
}

bitnet_status bn_jsb_puts(jctx *c, jsb *b, const char *z) { return bn_jsb_put(c, b, z, strlen(z), NULL, 0); }
bitnet_status bn_jsb_str(jctx *c, jsb *b, jstr s) { return bn_jsb_put(c, b, s.p, s.n, s.m, 0); }

jstr bn_jsb_done(jsb *b) {
    jstr s = {b->p ? b->p : "", b->any ? b->m : NULL, b->n};
    return s;
}

bitnet_status bn_js_concat(jctx *c, jstr a, jstr b, jstr *out) {
    jsb sb = {0};
    bitnet_status st;
    if ((st = bn_jsb_str(c, &sb, a)) || (st = bn_jsb_str(c, &sb, b))) return st;
    *out = bn_jsb_done(&sb);
    return BITNET_OK;
}

static jstr bn_jinja_lib_js_sub(jstr s, size_t a, size_t b) {
    jstr r = {s.p + a, s.m ? s.m + a : NULL, b - a};
    return r;
}

size_t bn_js_ncp(jstr s) {
    size_t k = 0;
    for (size_t i = 0; i < s.n; i++) k += ((unsigned char)s.p[i] & 0xc0) != 0x80;
    return k;
}

int bn_js_isspace_cp(uint32_t cp) {
    return (cp >= 9 && cp <= 13) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
           cp == 0x3000;
}

static size_t bn_jinja_lib_cp_at(jstr s, size_t i, uint32_t *cp) {
    size_t l = bn_utf8_decode((const unsigned char *)s.p + i, s.n - i, cp);
    if (!l) { *cp = (unsigned char)s.p[i]; l = 1; }
    return l;
}

/* Byte offset of each code point, plus s.n at the end (ncp + 1 entries). */
static bitnet_status bn_jinja_lib_cp_offsets(jctx *c, jstr s, size_t **off, size_t *ncp) {
    size_t n = bn_js_ncp(s);
    size_t *o = bn_ja_alloc(c, (n + 1) * sizeof *o);
    if (!o) return ja_error(c);
    size_t k = 0;
    for (size_t i = 0; i < s.n; i++)
        if (((unsigned char)s.p[i] & 0xc0) != 0x80) o[k++] = i;
    o[n] = s.n;
    *off = o;
    *ncp = n;
    return BITNET_OK;
}

static int bn_jinja_lib_has_non_ascii(jstr s) {
    for (size_t i = 0; i < s.n; i++)
        if ((unsigned char)s.p[i] >= 0x80) return 1;
    return 0;
}

/* ---- values ----------------------------------------------------------------------------------- */

jv bn_jv_undef_named(jstr name) {
    jv v = bn_jv_undef();
    v.u.s = name;
    v.u.s.m = NULL;
    return v;
}

bitnet_status bn_jv_list_new(jctx *c, size_t n, int tuple, jv *out) {
    jlist *l = bn_ja_alloc(c, sizeof *l);
    jv *items = l ? bn_ja_alloc(c, (n ? n : 1) * sizeof(jv)) : NULL;
    if (!items) return ja_error(c);
    memset(l, 0, sizeof *l);
    for (size_t i = 0; i < n; i++) items[i] = bn_jv_undef();
    l->n = n;
    l->v = items;
    *out = bn_jv_undef();
    out->t = JV_LIST;
    out->tuple = (uint8_t)tuple;
    out->u.l = l;
    return BITNET_OK;
}

bitnet_status bn_jv_dict_new(jctx *c, size_t cap, jv *out) {
    jdict *d = bn_ja_alloc(c, sizeof *d);
    if (!d) return ja_error(c);
    memset(d, 0, sizeof *d);
    if (cap) {
        d->k = bn_ja_alloc(c, cap * sizeof(jv));
        d->v = d->k ? bn_ja_alloc(c, cap * sizeof(jv)) : NULL;
        if (!d->v) return ja_error(c);
        d->cap = cap;
    }
    *out = bn_jv_undef();
    out->t = JV_DICT;
    out->u.d = d;
    return BITNET_OK;
}

jv *bn_jd_get(jdict *d, jv key) {
    for (size_t i = 0; i < d->n; i++)
        if (bn_jv_eq(d->k[i], key)) return &d->v[i];
    return NULL;
}

jv *bn_jd_getz(jdict *d, const char *key) { return bn_jd_get(d, bn_jv_str(bn_js_lit(key))); }

bitnet_status bn_jd_set(jctx *c, jdict *d, jv key, jv val) {
    jv *p = bn_jd_get(d, key);
    if (p) {
        *p = val;
        return BITNET_OK;
    }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 4;
        jv *nk = bn_ja_alloc(c, nc * sizeof(jv)), *nv = nk ? bn_ja_alloc(c, nc * sizeof(jv)) : NULL;
        if (!nv) return ja_error(c);
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof(jv));
            memcpy(nv, d->v, d->n * sizeof(jv));
        }
        d->k = nk;
        d->v = nv;
        d->cap = nc;
    }
    d->k[d->n] = key;
    d->v[d->n] = val;
    d->n++;
    return BITNET_OK;
}

const char *bn_jv_type_name(jv v) {
    switch (v.t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: {
        static const char *const k[] = {"list", "tuple", "range", "dict_keys", "dict_values", "dict_items"};
        return k[v.tuple];
    }
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_LOOP: return "LoopContext";
    case JV_FUNC: return "function";
    case JV_MACRO: return "Macro";
    case JV_ITER: return "generator";
    default: return "method";
    }
}

int bn_jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: return 0;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0;
    case JV_STR: return v.u.s.n > 0;
    case JV_LIST: return v.u.l->n > 0;
    case JV_DICT: return v.u.d->n > 0;
    default: return 1;
    }
}

static int bn_jinja_lib_is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
static int bn_jinja_lib_is_int(jv v) { return v.t == JV_INT || v.t == JV_BOOL; }
static int64_t bn_jinja_lib_as_i(jv v) { return v.t == JV_INT ? v.u.i : v.u.b; }

/* Exact comparison of an integer with a double: -1, 0, 1, or 2 when unordered (NaN). */
static int bn_jinja_lib_cmp_int_float(int64_t i, double f) {
    if (f != f) return 2;
    if (f >= 0x1p63) return -1;
    if (f < -0x1p63) return 1;
    double fl = floor(f);
    int64_t fi = (int64_t)fl;
    if (i < fi) return -1;
    if (i > fi) return 1;
    return fl == f ? 0 : -1;
}

static int bn_jinja_lib_cmp_num(jv a, jv b) {
    if (bn_jinja_lib_is_int(a) && bn_jinja_lib_is_int(b)) {
        int64_t x = bn_jinja_lib_as_i(a), y = bn_jinja_lib_as_i(b);
        return x < y ? -1 : x > y;
    }
    if (bn_jinja_lib_is_int(a)) return bn_jinja_lib_cmp_int_float(bn_jinja_lib_as_i(a), b.u.f);
    if (bn_jinja_lib_is_int(b)) {
        int r = bn_jinja_lib_cmp_int_float(bn_jinja_lib_as_i(b), a.u.f);
        return r == 2 ? 2 : -r;
    }
    if (a.u.f != a.u.f || b.u.f != b.u.f) return 2;
    return a.u.f < b.u.f ? -1 : a.u.f > b.u.f;
}

int bn_jv_eq(jv a, jv b) {
    if (bn_jinja_lib_is_num(a) && bn_jinja_lib_is_num(b)) return bn_jinja_lib_cmp_num(a, b) == 0;
    if (a.t != b.t) return 0;
    switch (a.t) {
    case JV_UNDEF: case JV_NONE: return 1;
    case JV_STR: return bn_js_eq(a.u.s, b.u.s);
    case JV_LIST:
        if (a.tuple != b.tuple || a.u.l->n != b.u.l->n) return 0;
        if (a.tuple == TU_VALUES) return a.u.l == b.u.l;
        if (a.tuple == TU_KEYS || a.tuple == TU_ITEMS) { /* set semantics */
            for (size_t i = 0; i < a.u.l->n; i++) {
                size_t j;
                for (j = 0; j < b.u.l->n && !bn_jv_eq(a.u.l->v[i], b.u.l->v[j]); j++) {}
                if (j == b.u.l->n) return 0;
            }
            return 1;
        }
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!bn_jv_eq(a.u.l->v[i], b.u.l->v[i])) return 0;
        return 1;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return 0;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = bn_jd_get(b.u.d, a.u.d->k[i]);
            if (!o || !bn_jv_eq(a.u.d->v[i], *o)) return 0;
        }
        return 1;
    case JV_NS: return a.u.d == b.u.d;
    case JV_ITER: return a.u.l == b.u.l;
    case JV_LOOP: return a.u.lp == b.u.lp;
    case JV_MACRO: return a.u.mac == b.u.mac;
    case JV_FUNC: return a.id == b.id;
    default: return 0;
    }
}

bitnet_status bn_jv_order(jctx *c, jv a, jv b, int *cmp) {
    bitnet_status st;
    if (a.t == JV_UNDEF || b.t == JV_UNDEF)
        return jerr(c, BITNET_E_FORMAT, "'%.*s' is undefined", (int)(a.t == JV_UNDEF ? a : b).u.s.n,
                    (a.t == JV_UNDEF ? a : b).u.s.p);
    if (bn_jinja_lib_is_num(a) && bn_jinja_lib_is_num(b)) {
        *cmp = bn_jinja_lib_cmp_num(a, b);
        return BITNET_OK;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        if ((st = bn_jstep(c, 1 + (a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n) / 16))) return st;
        *cmp = bn_js_cmp(a.u.s, b.u.s);
        return BITNET_OK;
    }
    if (JV_IS_VIEW(a) || JV_IS_VIEW(b)) return jerr(c, BITNET_E_UNSUPPORTED, "ordering dict views (set comparisons)");
    if (a.t == JV_LIST && b.t == JV_LIST && a.tuple == b.tuple && a.tuple != 2) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (bn_jv_eq(a.u.l->v[i], b.u.l->v[i])) continue;
            return bn_jv_order(c, a.u.l->v[i], b.u.l->v[i], cmp);
        }
        *cmp = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
        return BITNET_OK;
    }
    return jerr(c, BITNET_E_FORMAT, "'<' not supported between instances of '%s' and '%s'", bn_jv_type_name(a),
                bn_jv_type_name(b));
}

/* ---- str(), repr() ------------------------------------------------------------------------------ */

/* Python's repr() of a float (shortest digits that read back exactly). */
static void bn_jinja_lib_fmt_float(double x, char *buf, size_t cap) {
    if (x != x) { snprintf(buf, cap, "nan"); return; }
    if (isinf(x)) { snprintf(buf, cap, x < 0 ? "-inf" : "inf"); return; }
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    /* tmp: [-]d.ddde[+-]XX -> digits and exponent */
    char digits[24];
    size_t nd = 0;
    const char *p = tmp;
    int neg = 0;
    if (*p == '-') { neg = 1; p++; }
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int e = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    size_t o = 0;
    if (neg) buf[o++] = '-';
    if (e >= -4 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++) buf[o++] = (size_t)i < nd ? digits[i] : '0';
            buf[o++] = '.';
            if ((size_t)(e + 1) < nd) for (size_t i = (size_t)e + 1; i < nd; i++) buf[o++] = digits[i];
            else buf[o++] = '0';
        } else {
            buf[o++] = '0';
            buf[o++] = '.';
            for (int i = 0; i < -e - 1; i++) buf[o++] = '0';
            for (size_t i = 0; i < nd; i++) buf[o++] = digits[i];
        }
        buf[o] = 0;
    } else {
        buf[o++] = digits[0];
        if (nd > 1) {
            buf[o++] = '.';
            for (size_t i = 1; i < nd; i++) buf[o++] = digits[i];
        }
        snprintf(buf + o, cap - o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
}

static bitnet_status bn_jinja_lib_repr_str(jctx *c, jsb *b, jstr s) {
    bitnet_status st;
    if (bn_jinja_lib_has_non_ascii(s))
        return jerr(c, BITNET_E_UNSUPPORTED, "repr() of a string with non-ASCII characters (printing a list or dict "
                                             "that holds one) is not supported");
    int sq = memchr(s.p, '\'', s.n) != NULL, dq = memchr(s.p, '"', s.n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    if ((st = bn_jsb_put(c, b, &q, 1, NULL, 0))) return st;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        int m = s.m ? s.m[i] : 0;
        char e[8];
        size_t k;
        if (ch == (unsigned char)q || ch == '\\') { e[0] = '\\'; e[1] = (char)ch; k = 2; }
        else if (ch == '\t') { memcpy(e, "\\t", 2); k = 2; }
        else if (ch == '\n') { memcpy(e, "\\n", 2); k = 2; }
        else if (ch == '\r') { memcpy(e, "\\r", 2); k = 2; }
        else if (ch < 0x20 || ch == 0x7f) { snprintf(e, sizeof e, "\\x%02x", ch); k = 4; }
        else { e[0] = (char)ch; k = 1; }
        if ((st = bn_jsb_put(c, b, e, k, NULL, m))) return st;
    }
    return bn_jsb_put(c, b, &q, 1, NULL, 0);
}

bitnet_status bn_jv_repr(jctx *c, jsb *b, jv v) {
    bitnet_status st;
    char num[80];
    if ((st = bn_jstep(c, 1))) return st;
    switch (v.t) {
    case JV_UNDEF: return bn_jsb_puts(c, b, "Undefined");
    case JV_NONE: return bn_jsb_puts(c, b, "None");
    case JV_BOOL: return bn_jsb_puts(c, b, v.u.b ? "True" : "False");
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v.u.i); return bn_jsb_puts(c, b, num);
    case JV_FLOAT: bn_jinja_lib_fmt_float(v.u.f, num, sizeof num); return bn_jsb_puts(c, b, num);
    case JV_STR: return bn_jinja_lib_repr_str(c, b, v.u.s);
    case JV_LIST:
        if (v.tuple == 2) {
            if (v.u.l->r_step == 1) snprintf(num, sizeof num, "range(%lld, %lld)", (long long)v.u.l->r_start,
                                              (long long)v.u.l->r_stop);
            else snprintf(num, sizeof num, "range(%lld, %lld, %lld)", (long long)v.u.l->r_start,
                          (long long)v.u.l->r_stop, (long long)v.u.l->r_step);
            return bn_jsb_puts(c, b, num);
        }
        if (JV_IS_VIEW(v)) {
            if ((st = bn_jsb_puts(c, b, bn_jv_type_name(v))) || (st = bn_jsb_puts(c, b, "(["))) return st;
        } else if ((st = bn_jsb_puts(c, b, v.tuple ? "(" : "["))) {
            return st;
        }
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i && (st = bn_jsb_puts(c, b, ", "))) return st;
            if ((st = bn_jv_repr(c, b, v.u.l->v[i]))) return st;
        }
        if (JV_IS_VIEW(v)) return bn_jsb_puts(c, b, "])");
        if (v.tuple && v.u.l->n == 1 && (st = bn_jsb_puts(c, b, ","))) return st;
        return bn_jsb_puts(c, b, v.tuple ? ")" : "]");
    case JV_DICT:
        if ((st = bn_jsb_puts(c, b, "{"))) return st;
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i && (st = bn_jsb_puts(c, b, ", "))) return st;
            if ((st = bn_jv_repr(c, b, v.u.d->k[i])) || (st = bn_jsb_puts(c, b, ": ")) ||
                (st = bn_jv_repr(c, b, v.u.d->v[i])))
                return st;
        }
        return bn_jsb_puts(c, b, "}");
    default:
        return jerr(c, BITNET_E_UNSUPPORTED, "printing a %s object is not supported", bn_jv_type_name(v));
    }
}

bitnet_status bn_jv_to_str(jctx *c, jv v, jstr *out) {
    char num[48];
    bitnet_status st;
    switch (v.t) {
    case JV_STR: *out = v.u.s; return BITNET_OK;
    case JV_UNDEF: *out = bn_js_lit(""); return BITNET_OK;
    case JV_NONE: *out = bn_js_lit("None"); return BITNET_OK;
    case JV_BOOL: *out = bn_js_lit(v.u.b ? "True" : "False"); return BITNET_OK;
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v.u.i); return bn_js_new(c, num, NULL, strlen(num), out);
    case JV_FLOAT: bn_jinja_lib_fmt_float(v.u.f, num, sizeof num); return bn_js_new(c, num, NULL, strlen(num), out);
    case JV_LIST:
    case JV_DICT: {
        jsb b = {0};
        if ((st = bn_jv_repr(c, &b, v))) return st;
        *out = bn_jsb_done(&b);
        return BITNET_OK;
    }
    default:
        return jerr(c, BITNET_E_UNSUPPORTED, "printing a %s object is not supported", bn_jv_type_name(v));
    }
}

/* ---- JSON (transformers' tojson = json.dumps) --------------------------------------------------- */

static bitnet_status bn_jinja_lib_json_str(jctx *c, jsb *b, jstr s, int ensure_ascii) {
    bitnet_status st;
    if ((st = bn_jsb_put(c, b, "\"", 1, NULL, 0)) || (st = bn_jstep(c, 1 + s.n / 16))) return st;
    for (size_t i = 0; i < s.n;) {
        uint32_t cp;
        size_t l = bn_jinja_lib_cp_at(s, i, &cp);
        int m = s.m ? s.m[i] : 0;
        char e[16];
        size_t k = 0;
        if (cp == '"') { memcpy(e, "\\\"", 2); k = 2; }
        else if (cp == '\\') { memcpy(e, "\\\\", 2); k = 2; }
        else if (cp == '\n') { memcpy(e, "\\n", 2); k = 2; }
        else if (cp == '\r') { memcpy(e, "\\r", 2); k = 2; }
        else if (cp == '\t') { memcpy(e, "\\t", 2); k = 2; }
        else if (cp == 8) { memcpy(e, "\\b", 2); k = 2; }
        else if (cp == 12) { memcpy(e, "\\f", 2); k = 2; }
        else if (cp < 0x20 || (ensure_ascii && cp == 0x7f)) { snprintf(e, sizeof e, "\\u%04x", (unsigned)cp); k = 6; }
        else if (ensure_ascii && cp >= 0x80) {
            if (cp >= 0x10000) {
                uint32_t v = cp - 0x10000;
                snprintf(e, sizeof e, "\\u%04x\\u%04x", (unsigned)(0xd800 | (v >> 10)), (unsigned)(0xdc00 | (v & 0x3ff)));
                k = 12;
            } else {
                snprintf(e, sizeof e, "\\u%04x", (unsigned)cp);
                k = 6;
            }
        }
        if (k) st = bn_jsb_put(c, b, e, k, NULL, m);
        else st = bn_jsb_put(c, b, s.p + i, l, s.m ? s.m + i : NULL, 0);
        if (st) return st;
        i += l;
    }
    return bn_jsb_put(c, b, "\"", 1, NULL, 0);
}

static bitnet_status bn_jinja_lib_json_newline(jctx *c, jsb *b, const jjson_opts *o, int level) {
    bitnet_status st;
    if ((st = bn_jsb_puts(c, b, "\n"))) return st;
    for (int i = 0; i < level; i++)
        if ((st = bn_jsb_str(c, b, o->indent))) return st;
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_json_key(jctx *c, jsb *b, jv k, const jjson_opts *o) {
    char num[48];
    switch (k.t) {
    case JV_STR: return bn_jinja_lib_json_str(c, b, k.u.s, o->ensure_ascii);
    case JV_BOOL: return bn_jinja_lib_json_str(c, b, bn_js_lit(k.u.b ? "true" : "false"), 0);
    case JV_NONE: return bn_jinja_lib_json_str(c, b, bn_js_lit("null"), 0);
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)k.u.i); return bn_jinja_lib_json_str(c, b, bn_js_lit(num), 0);
    case JV_FLOAT:
        if (k.u.f != k.u.f) snprintf(num, sizeof num, "NaN");
        else if (isinf(k.u.f)) snprintf(num, sizeof num, k.u.f < 0 ? "-Infinity" : "Infinity");
        else bn_jinja_lib_fmt_float(k.u.f, num, sizeof num);
        return bn_jinja_lib_json_str(c, b, bn_js_lit(num), 0);
    default:
        return jerr(c, BITNET_E_FORMAT, "keys must be str, int, float, bool or None, not %s", bn_jv_type_name(k));
    }
}

bitnet_status bn_jv_to_json(jctx *c, jsb *b, jv v, const jjson_opts *o, int level) {
    bitnet_status st;
    char num[48];
    if ((st = bn_jstep(c, 1))) return st;
    if (level > (int)c->max_depth) return jerr(c, BITNET_E_UNSUPPORTED, "tojson of a value nested too deeply");
    switch (v.t) {
    case JV_NONE: return bn_jsb_puts(c, b, "null");
    case JV_BOOL: return bn_jsb_puts(c, b, v.u.b ? "true" : "false");
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v.u.i); return bn_jsb_puts(c, b, num);
    case JV_FLOAT:
        if (v.u.f != v.u.f) return bn_jsb_puts(c, b, "NaN");
        if (isinf(v.u.f)) return bn_jsb_puts(c, b, v.u.f < 0 ? "-Infinity" : "Infinity");
        bn_jinja_lib_fmt_float(v.u.f, num, sizeof num);
        return bn_jsb_puts(c, b, num);
    case JV_STR: return bn_jinja_lib_json_str(c, b, v.u.s, o->ensure_ascii);
    case JV_LIST:
        if (v.tuple >= TU_RANGE)
            return jerr(c, BITNET_E_FORMAT, "Object of type %s is not JSON serializable", bn_jv_type_name(v));
        if (!v.u.l->n) return bn_jsb_puts(c, b, "[]");
        if ((st = bn_jsb_puts(c, b, "["))) return st;
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i && (st = bn_jsb_str(c, b, o->item_sep))) return st;
            if (o->indent_on && (st = bn_jinja_lib_json_newline(c, b, o, level + 1))) return st;
            if ((st = bn_jv_to_json(c, b, v.u.l->v[i], o, level + 1))) return st;
        }
        if (o->indent_on && (st = bn_jinja_lib_json_newline(c, b, o, level))) return st;
        return bn_jsb_puts(c, b, "]");
    case JV_DICT: {
        jdict *d = v.u.d;
        if (!d->n) return bn_jsb_puts(c, b, "{}");
        size_t *ord = bn_ja_alloc(c, d->n * sizeof *ord);
        if (!ord) return ja_error(c);
        for (size_t i = 0; i < d->n; i++) ord[i] = i;
        if (o->sort_keys) {
            for (size_t i = 0; i < d->n; i++)
                if (d->k[i].t != JV_STR)
                    return jerr(c, BITNET_E_UNSUPPORTED, "tojson(sort_keys=true) with keys that are not strings");
            for (size_t i = 1; i < d->n; i++) { /* insertion sort: dicts here are small */
                size_t x = ord[i], j = i;
                while (j > 0 && bn_js_cmp(d->k[ord[j - 1]].u.s, d->k[x].u.s) > 0) { ord[j] = ord[j - 1]; j--; }
                ord[j] = x;
            }
        }
        if ((st = bn_jsb_puts(c, b, "{"))) return st;
        for (size_t i = 0; i < d->n; i++) {
            if (i && (st = bn_jsb_str(c, b, o->item_sep))) return st;
            if (o->indent_on && (st = bn_jinja_lib_json_newline(c, b, o, level + 1))) return st;
            if ((st = bn_jinja_lib_json_key(c, b, d->k[ord[i]], o)) || (st = bn_jsb_str(c, b, o->key_sep)) ||
                (st = bn_jv_to_json(c, b, d->v[ord[i]], o, level + 1)))
                return st;
        }
        if (o->indent_on && (st = bn_jinja_lib_json_newline(c, b, o, level))) return st;
        return bn_jsb_puts(c, b, "}");
    }
    default:
        return jerr(c, BITNET_E_FORMAT, "Object of type %s is not JSON serializable", bn_jv_type_name(v));
    }
}

/* ---- iteration, attributes, items, slices --------------------------------------------------------- */

static bitnet_status bn_jinja_lib_str_chars(jctx *c, jstr s, jv *out) {
    bitnet_status st;
    size_t *off, n;
    if ((st = bn_jinja_lib_cp_offsets(c, s, &off, &n)) || (st = bn_jstep(c, 1 + n)) || (st = bn_jv_list_new(c, n, 0, out))) return st;
    for (size_t i = 0; i < n; i++) out->u.l->v[i] = bn_jv_str(bn_jinja_lib_js_sub(s, off[i], off[i + 1]));
    return BITNET_OK;
}

bitnet_status bn_jv_iterate(jctx *c, jv v, const jv **items, size_t *n) {
    bitnet_status st;
    switch (v.t) {
    case JV_LIST: *items = v.u.l->v; *n = v.u.l->n; return BITNET_OK;
    case JV_ITER: /* consumed by iterating */
        *items = v.u.l->v + v.u.l->pos;
        *n = v.u.l->n - v.u.l->pos;
        v.u.l->pos = v.u.l->n;
        return v.u.l->err ? bn_jv_iter_error(c, v.u.l) : BITNET_OK;
    case JV_DICT: *items = v.u.d->k; *n = v.u.d->n; return BITNET_OK;
    case JV_UNDEF: *items = NULL; *n = 0; return BITNET_OK;
    case JV_STR: {
        jv l;
        if ((st = bn_jinja_lib_str_chars(c, v.u.s, &l))) return st;
        *items = l.u.l->v;
        *n = l.u.l->n;
        return BITNET_OK;
    }
    default:
        return jerr(c, BITNET_E_FORMAT, "'%s' object is not iterable", bn_jv_type_name(v));
    }
}

bitnet_status bn_jv_contains(jctx *c, jv needle, jv hay, int *res) {
    bitnet_status st;
    *res = 0;
    switch (hay.t) {
    case JV_STR:
        if (needle.t != JV_STR)
            return jerr(c, BITNET_E_FORMAT, "'in <string>' requires string as left operand, not %s", bn_jv_type_name(needle));
        if ((st = bn_jstep(c, 1 + hay.u.s.n / 16))) return st;
        *res = !needle.u.s.n ||
               (needle.u.s.n <= hay.u.s.n && memmem(hay.u.s.p, hay.u.s.n, needle.u.s.p, needle.u.s.n) != NULL);
        return BITNET_OK;
    case JV_LIST:
        if ((st = bn_jstep(c, 1 + hay.u.l->n))) return st;
        for (size_t i = 0; i < hay.u.l->n && !*res; i++) *res = bn_jv_eq(hay.u.l->v[i], needle);
        return BITNET_OK;
    case JV_ITER: /* consumed up to the first match */
        while (hay.u.l->pos < hay.u.l->n && !*res) {
            if ((st = bn_jstep(c, 1))) return st;
            *res = bn_jv_eq(hay.u.l->v[hay.u.l->pos++], needle);
        }
        return !*res && hay.u.l->err ? bn_jv_iter_error(c, hay.u.l) : BITNET_OK;
    case JV_DICT:
        if ((needle.t == JV_LIST && needle.tuple != 1 && needle.tuple != 2) || needle.t == JV_DICT || needle.t == JV_NS)
            return jerr(c, BITNET_E_FORMAT, "unhashable type: '%s'", bn_jv_type_name(needle));
        if ((st = bn_jstep(c, 1 + hay.u.d->n))) return st;
        *res = bn_jd_get(hay.u.d, needle) != NULL;
        return BITNET_OK;
    case JV_UNDEF: /* Undefined iterates as nothing */
        return BITNET_OK;
    default:
        return jerr(c, BITNET_E_FORMAT, "argument of type '%s' is not iterable", bn_jv_type_name(hay));
    }
}

static void bn_jinja_lib_make_iter(jv *v) { v->t = JV_ITER; v->tuple = 0; v->u.l->pos = 0; }

bitnet_status bn_jv_iter_error(jctx *c, const jlist *l) {
    (void)c;
    return bn_err(l->err, "%s", l->errmsg ? l->errmsg : "error in a generator");
}

/* jinja2's select, map, unique and items are generators: an error inside one only
 * shows when the generator is consumed.  `partial` holds the items made before the
 * error st; the result is a generator that yields them and then fails with st. */
static bitnet_status bn_jinja_lib_defer(jctx *c, bitnet_status st, jv *partial, jv *out) {
    if (st == BITNET_E_NOMEM) return st;
    const char *msg = bn_errmsg();
    size_t n = strlen(msg);
    char *copy = bn_ja_alloc(c, n + 1);
    if (!copy) return ja_error(c);
    memcpy(copy, msg, n + 1);
    if (partial->t != JV_LIST && partial->t != JV_ITER && bn_jv_list_new(c, 0, 0, partial)) return ja_error(c);
    *out = *partial;
    bn_jinja_lib_make_iter(out);
    out->u.l->err = st;
    out->u.l->errmsg = copy;
    return BITNET_OK;
}

/* method ids: type * 100 + index in the table; the attribute names of Python's str,
 * dict and list all exist (so `s.zfill is defined`), the ones without an
 * implementation fail when called. */
enum { MT_STR = 1, MT_DICT = 2, MT_LIST = 3, MT_LOOP = 4 };
static const char *const k_str_methods[] = {
    "", "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "upper", "lower", "title",
    "capitalize", "replace", "find", "rfind", "count", "join", "splitlines", "isdigit", "isalpha", "isspace",
    "isalnum", "islower", "isupper", "removeprefix", "removesuffix", "index", "rindex",
    /* no implementation: */
    "casefold", "center", "encode", "expandtabs", "format", "format_map", "isascii", "isdecimal", "isidentifier",
    "isnumeric", "isprintable", "istitle", "ljust", "maketrans", "partition", "rjust", "rpartition", "swapcase",
    "translate", "zfill", NULL};
static const char *const k_dict_methods[] = {"", "items", "keys", "values", "get",
                                             "copy", "pop", "popitem", "update", "clear", "setdefault", "fromkeys", NULL};
static const char *const k_list_methods[] = {"", "index", "count",
                                             "append", "clear", "copy", "extend", "insert", "pop", "remove", "reverse",
                                             "sort", NULL};
static const char *const k_loop_methods[] = {"", "cycle", "changed", NULL};

static int bn_jinja_lib_find_name(const char *const *tab, jstr name) {
    for (int i = 1; tab[i]; i++)
        if (bn_js_eqz(name, tab[i])) return i;
    return 0;
}

int bn_jl_method_id(int t, jstr name) {
    int k;
    switch (t) {
    case JV_STR: k = bn_jinja_lib_find_name(k_str_methods, name); return k ? MT_STR * 100 + k : 0;
    case JV_DICT: k = bn_jinja_lib_find_name(k_dict_methods, name); return k ? MT_DICT * 100 + k : 0;
    case JV_LIST: k = bn_jinja_lib_find_name(k_list_methods, name); return k ? MT_LIST * 100 + k : 0;
    case JV_LOOP: k = bn_jinja_lib_find_name(k_loop_methods, name); return k ? MT_LOOP * 100 + k : 0;
    default: return 0;
    }
}

static const char *bn_jinja_lib_method_name(int id) {
    int t = id / 100, k = id % 100;
    const char *const *tab = t == MT_STR ? k_str_methods : t == MT_DICT ? k_dict_methods : t == MT_LIST ? k_list_methods
                                                                                                          : k_loop_methods;
    return tab[k];
}

static bitnet_status bn_jinja_lib_bound(jctx *c, jv self, int id, jv *out) {
    jbound *b = bn_ja_alloc(c, sizeof *b);
    if (!b) return ja_error(c);
    b->self = self;
    *out = bn_jv_undef();
    out->t = JV_METHOD;
    out->id = (uint16_t)id;
    out->u.bm = b;
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_loop_attr(jctx *c, const jloop *lp, jstr name, jv *out) {
    size_t i = lp->index0, n = lp->length;
    if (bn_js_eqz(name, "index")) *out = bn_jv_int((int64_t)i + 1);
    else if (bn_js_eqz(name, "index0")) *out = bn_jv_int((int64_t)i);
    else if (bn_js_eqz(name, "revindex")) *out = bn_jv_int((int64_t)(n - i));
    else if (bn_js_eqz(name, "revindex0")) *out = bn_jv_int((int64_t)(n - i - 1));
    else if (bn_js_eqz(name, "first")) *out = bn_jv_bool(i == 0);
    else if (bn_js_eqz(name, "last")) *out = bn_jv_bool(i + 1 == n);
    else if (bn_js_eqz(name, "length")) *out = bn_jv_int((int64_t)n);
    else if (bn_js_eqz(name, "depth")) *out = bn_jv_int(1);
    else if (bn_js_eqz(name, "depth0")) *out = bn_jv_int(0);
    else if (bn_js_eqz(name, "previtem")) *out = i > 0 ? lp->items[i - 1] : bn_jv_undef_named(bn_js_lit("previtem"));
    else if (bn_js_eqz(name, "nextitem")) *out = i + 1 < n ? lp->items[i + 1] : bn_jv_undef_named(bn_js_lit("nextitem"));
    else {
        jv self = bn_jv_undef();
        self.t = JV_LOOP;
        self.u.lp = (jloop *)lp;
        int id = bn_jl_method_id(JV_LOOP, name);
        if (id) return bn_jinja_lib_bound(c, self, id, out);
        *out = bn_jv_undef_named(name);
    }
    return BITNET_OK;
}

bitnet_status bn_jv_getattr(jctx *c, jv obj, jstr name, jv *out) {
    int id;
    switch (obj.t) {
    case JV_UNDEF:
        if (obj.u.s.n) return jerr(c, BITNET_E_FORMAT, "'%.*s' is undefined", (int)obj.u.s.n, obj.u.s.p);
        return jerr(c, BITNET_E_FORMAT, "an undefined value has no attribute '%.*s'", (int)name.n, name.p);
    case JV_DICT: {
        if ((id = bn_jl_method_id(JV_DICT, name))) return bn_jinja_lib_bound(c, obj, id, out);
        jv *v = bn_jd_get(obj.u.d, bn_jv_str(name));
        *out = v ? *v : bn_jv_undef_named(name);
        return BITNET_OK;
    }
    case JV_NS: {
        jv *v = bn_jd_get(obj.u.d, bn_jv_str(name));
        *out = v ? *v : bn_jv_undef_named(name);
        return BITNET_OK;
    }
    case JV_STR:
    case JV_LIST:
        if (!JV_IS_VIEW(obj) && (id = bn_jl_method_id(obj.t, name))) return bn_jinja_lib_bound(c, obj, id, out);
        *out = bn_jv_undef_named(name);
        return BITNET_OK;
    case JV_LOOP:
        return bn_jinja_lib_loop_attr(c, obj.u.lp, name, out);
    default:
        *out = bn_jv_undef_named(name);
        return BITNET_OK;
    }
}

/* Python index i (negative from the end) into n items, or -1. */
static int64_t bn_jinja_lib_py_index(int64_t i, size_t n) {
    if (i < 0) i += (int64_t)n;
    return i >= 0 && (uint64_t)i < n ? i : -1;
}

bitnet_status bn_jv_getitem(jctx *c, jv obj, jv key, jv *out) {
    bitnet_status st;
    switch (obj.t) {
    case JV_UNDEF:
        return bn_jv_getattr(c, obj, bn_js_lit("[]"), out);
    case JV_LIST:
        if (bn_jinja_lib_is_int(key) && !JV_IS_VIEW(obj)) {
            int64_t i = bn_jinja_lib_py_index(bn_jinja_lib_as_i(key), obj.u.l->n);
            *out = i >= 0 ? obj.u.l->v[i] : bn_jv_undef();
            return BITNET_OK;
        }
        break;
    case JV_STR:
        if (bn_jinja_lib_is_int(key)) {
            size_t *off, n;
            if ((st = bn_jinja_lib_cp_offsets(c, obj.u.s, &off, &n)) || (st = bn_jstep(c, 1 + obj.u.s.n / 16))) return st;
            int64_t i = bn_jinja_lib_py_index(bn_jinja_lib_as_i(key), n);
            *out = i >= 0 ? bn_jv_str(bn_jinja_lib_js_sub(obj.u.s, off[i], off[i + 1])) : bn_jv_undef();
            return BITNET_OK;
        }
        break;
    case JV_DICT: {
        if (key.t == JV_LIST && !key.tuple) return jerr(c, BITNET_E_FORMAT, "unhashable type: 'list'");
        jv *v = bn_jd_get(obj.u.d, key);
        if (v) { *out = *v; return BITNET_OK; }
        break;
    }
    default:
        break;
    }
    if (key.t == JV_STR) return bn_jv_getattr(c, obj, key.u.s, out);
    *out = bn_jv_undef();
    return BITNET_OK;
}

/* Python's slice index rules for n items; returns the item count. */
static size_t bn_jinja_lib_slice_indices(int64_t n, jv start, jv stop, int64_t step, int64_t *a, int64_t *b) {
    int64_t s, e;
    if (start.t == JV_NONE) s = step < 0 ? n - 1 : 0;
    else {
        s = bn_jinja_lib_as_i(start);
        if (s < 0) { s += n; if (s < 0) s = step < 0 ? -1 : 0; }
        else if (s >= n) s = step < 0 ? n - 1 : n;
    }
    if (stop.t == JV_NONE) e = step < 0 ? -1 : n;
    else {
        e = bn_jinja_lib_as_i(stop);
        if (e < 0) { e += n; if (e < 0) e = step < 0 ? -1 : 0; }
        else if (e >= n) e = step < 0 ? n - 1 : n;
    }
    *a = s;
    *b = e;
    if (step > 0) return e > s ? (size_t)((e - s - 1) / step + 1) : 0;
    return s > e ? (size_t)((s - e - 1) / (-step) + 1) : 0;
}

bitnet_status bn_jv_slice(jctx *c, jv obj, jv start, jv stop, jv step, jv *out) {
    bitnet_status st;
    /* jinja2 compiles obj[a:b:c] as a plain Python slice: errors are not softened into
     * Undefined as for obj[key] */
    if (obj.t == JV_UNDEF) return bn_jv_getattr(c, obj, bn_js_lit("[:]"), out);
    if (obj.t != JV_LIST && obj.t != JV_STR)
        return jerr(c, BITNET_E_FORMAT, "'%s' object is not subscriptable with a slice", bn_jv_type_name(obj));
    if ((start.t != JV_NONE && !bn_jinja_lib_is_int(start)) || (stop.t != JV_NONE && !bn_jinja_lib_is_int(stop)) ||
        (step.t != JV_NONE && !bn_jinja_lib_is_int(step)))
        return jerr(c, BITNET_E_FORMAT, "slice indices must be integers or None");
    int64_t k = step.t == JV_NONE ? 1 : bn_jinja_lib_as_i(step), a, b;
    if (k == 0) return jerr(c, BITNET_E_FORMAT, "slice step cannot be zero");
    if (k == INT64_MIN) k = INT64_MIN + 1;
    if (obj.t == JV_LIST && obj.tuple == TU_RANGE)
        return jerr(c, BITNET_E_UNSUPPORTED, "slicing a range() is not supported");
    if (JV_IS_VIEW(obj)) return jerr(c, BITNET_E_FORMAT, "'%s' object is not subscriptable", bn_jv_type_name(obj));
    if (obj.t == JV_LIST) {
        size_t cnt = bn_jinja_lib_slice_indices((int64_t)obj.u.l->n, start, stop, k, &a, &b);
        if ((st = bn_jstep(c, 1 + cnt)) || (st = bn_jv_list_new(c, cnt, obj.tuple, out))) return st;
        for (size_t i = 0; i < cnt; i++) out->u.l->v[i] = obj.u.l->v[a + (int64_t)i * k];
        return BITNET_OK;
    }
    size_t *off, n;
    if ((st = bn_jinja_lib_cp_offsets(c, obj.u.s, &off, &n)) || (st = bn_jstep(c, 1 + obj.u.s.n / 16))) return st;
    size_t cnt = bn_jinja_lib_slice_indices((int64_t)n, start, stop, k, &a, &b);
    if (k == 1) {
        *out = bn_jv_str(bn_jinja_lib_js_sub(obj.u.s, off[a], cnt ? off[a + (int64_t)cnt] : off[a]));
        return BITNET_OK;
    }
    jsb sb = {0};
    for (size_t i = 0; i < cnt; i++) {
        int64_t j = a + (int64_t)i * k;
        if ((st = bn_jsb_str(c, &sb, bn_jinja_lib_js_sub(obj.u.s, off[j], off[j + 1])))) return st;
    }
    *out = bn_jv_str(bn_jsb_done(&sb));
    return BITNET_OK;
}

/* ---- arguments ---------------------------------------------------------------------------------- */

/* Argument number i or named `name`; 0 when absent.  Errors if given twice. */
static int bn_jinja_lib_arg(const jargs *a, size_t i, const char *name, jv *out) {
    if (i < a->npos) { *out = a->pos[i]; return 1; }
    for (size_t k = 0; k < a->nkw; k++)
        if (bn_js_eqz(a->kwn[k], name)) { *out = a->kwv[k]; return 1; }
    return 0;
}

/* Refuse more than max_pos positional arguments and keyword names not in names. */
static bitnet_status bn_jinja_lib_check_args(jctx *c, const char *what, const jargs *a, size_t max_pos, const char *const *names) {
    if (a->npos > max_pos)
        return jerr(c, BITNET_E_FORMAT, "%s takes at most %zu arguments (%zu given)", what, max_pos, a->npos);
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i;
        for (i = 0; names && names[i]; i++)
            if (bn_js_eqz(a->kwn[k], names[i])) break;
        if (!names || !names[i])
            return jerr(c, BITNET_E_FORMAT, "%s got an unexpected keyword argument '%.*s'", what, (int)a->kwn[k].n,
                        a->kwn[k].p);
        if (i < a->npos)
            return jerr(c, BITNET_E_FORMAT, "%s got multiple values for argument '%s'", what, names[i]);
    }
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_need_str(jctx *c, const char *what, jv v, jstr *out) {
    if (v.t != JV_STR) return jerr(c, BITNET_E_FORMAT, "%s: expected a string, got %s", what, bn_jv_type_name(v));
    *out = v.u.s;
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_need_int(jctx *c, const char *what, jv v, int64_t *out) {
    if (!bn_jinja_lib_is_int(v)) return jerr(c, BITNET_E_FORMAT, "%s: expected an integer, got %s", what, bn_jv_type_name(v));
    *out = bn_jinja_lib_as_i(v);
    return BITNET_OK;
}

/* ---- string operations ---------------------------------------------------------------------------- */

static int bn_jinja_lib_in_chars(jstr chars, uint32_t cp) {
    for (size_t i = 0; i < chars.n;) {
        uint32_t x;
        i += bn_jinja_lib_cp_at(chars, i, &x);
        if (x == cp) return 1;
    }
    return 0;
}

/* strip: which = 1 left, 2 right, 3 both; chars NULL: whitespace */
static bitnet_status bn_jinja_lib_s_strip(jctx *c, jstr s, const jstr *chars, int which, jstr *out) {
    bitnet_status st;
    if ((st = bn_jstep(c, 1 + s.n / 16))) return st;
    size_t a = 0, b = s.n;
    if (which & 1) {
        while (a < b) {
            uint32_t cp;
            size_t l = bn_jinja_lib_cp_at(s, a, &cp);
            if (!(chars ? bn_jinja_lib_in_chars(*chars, cp) : bn_js_isspace_cp(cp))) break;
            a += l;
        }
    }
    if (which & 2) {
        while (b > a) {
            size_t k = b - 1;
            while (k > a && ((unsigned char)s.p[k] & 0xc0) == 0x80) k--;
            uint32_t cp;
            bn_jinja_lib_cp_at(s, k, &cp);
            if (!(chars ? bn_jinja_lib_in_chars(*chars, cp) : bn_js_isspace_cp(cp))) break;
            b = k;
        }
    }
    *out = bn_jinja_lib_js_sub(s, a, b);
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_need_ascii_case(jctx *c, const char *what, jstr s) {
    if (bn_jinja_lib_has_non_ascii(s))
        return jerr(c, BITNET_E_UNSUPPORTED, "%s of a string with non-ASCII characters is not supported", what);
    return BITNET_OK;
}

/* mode: 0 lower, 1 upper, 2 capitalize, 3 Jinja's title filter, 4 Python's str.title() */
static bitnet_status bn_jinja_lib_s_case(jctx *c, jstr s, int mode, jstr *out) {
    static const char *const names[] = {"lower", "upper", "capitalize", "title", "title"};
    bitnet_status st;
    if ((st = bn_jinja_lib_need_ascii_case(c, names[mode], s)) || (st = bn_jstep(c, 1 + s.n / 16))) return st;
    char *p = bn_ja_alloc(c, s.n + 1);
    if (!p) return ja_error(c);
    int prev_sep = 1, prev_cased = 0;
    for (size_t i = 0; i < s.n; i++) {
        char ch = s.p[i];
        int lower = ch >= 'a' && ch <= 'z', upper = ch >= 'A' && ch <= 'Z';
        int up;
        switch (mode) {
        case 0: up = 0; break;
        case 1: up = 1; break;
        case 2: up = i == 0; break;
        case 3: up = prev_sep; break;
        default: up = !prev_cased; break;
        }
        if (up && lower) ch = (char)(ch - 32);
        else if (!up && upper) ch = (char)(ch + 32);
        p[i] = ch;
        /* Jinja's title splits at runs of [-\s({\[<]; the first character after one is
         * upper-cased even when it is not a letter (it then stays as it is) */
        prev_sep = ch == '-' || ch == '(' || ch == '{' || ch == '[' || ch == '<' || bn_js_isspace_cp((unsigned char)ch);
        prev_cased = lower || upper;
    }
    p[s.n] = 0;
    out->p = p;
    out->m = s.m;
    out->n = s.n;
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_s_replace(jctx *c, jstr s, jstr old, jstr new_, int64_t count, jstr *out) {
    bitnet_status st;
    if ((st = bn_jstep(c, 1 + s.n / 16))) return st;
    jsb b = {0};
    int64_t done = 0;
    if (old.n == 0) { /* Python inserts `new` before every character and at the end */
        size_t i = 0;
        while (i <= s.n) {
            if (count < 0 || done < count) {
                if ((st = bn_jsb_str(c, &b, new_))) return st;
                done++;
            }
            if (i == s.n) break;
            uint32_t cp;
            size_t l = bn_jinja_lib_cp_at(s, i, &cp);
            if ((st = bn_jsb_str(c, &b, bn_jinja_lib_js_sub(s, i, i + l)))) return st;
            i += l;
        }
        *out = bn_jsb_done(&b);
        return BITNET_OK;
    }
    size_t i = 0;
    while (i < s.n) {
        const char *hit = (count < 0 || done < count) && old.n <= s.n - i ? memmem(s.p + i, s.n - i, old.p, old.n) : NULL;
        if (!hit) break;
        size_t at = (size_t)(hit - s.p);
        if ((st = bn_jsb_str(c, &b, bn_jinja_lib_js_sub(s, i, at))) || (st = bn_jsb_str(c, &b, new_))) return st;
        i = at + old.n;
        done++;
        if ((st = bn_jstep(c, 1))) return st;
    }
    if ((st = bn_jsb_str(c, &b, bn_jinja_lib_js_sub(s, i, s.n)))) return st;
    *out = bn_jsb_done(&b);
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_list_push(jctx *c, jv *list, size_t *cap, jv x) {
    jlist *l = list->u.l;
    if (l->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        jv *nv = bn_ja_alloc(c, nc * sizeof(jv));
        if (!nv) return ja_error(c);
        if (l->n) memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        *cap = nc;
    }
    l->v[l->n++] = x;
    return BITNET_OK;
}

/* str.split / rsplit (sep NULL: runs of whitespace) */
static bitnet_status bn_jinja_lib_s_split(jctx *c, jstr s, const jstr *sep, int64_t maxsplit, int right, jv *out) {
    bitnet_status st;
    size_t cap = 0;
    if ((st = bn_jstep(c, 1 + s.n / 16)) || (st = bn_jv_list_new(c, 0, 0, out))) return st;
    if (sep && !sep->n) return jerr(c, BITNET_E_FORMAT, "empty separator");
    if (right && maxsplit >= 0 && sep == NULL) {
        /* rsplit() on whitespace with a limit: from the right */
        jv parts;
        size_t pcap = 0;
        if ((st = bn_jv_list_new(c, 0, 0, &parts))) return st;
        size_t b = s.n;
        int64_t done = 0;
        for (;;) {
            while (b > 0) {
                size_t k = b - 1;
                while (k > 0 && ((unsigned char)s.p[k] & 0xc0) == 0x80) k--;
                uint32_t cp;
                bn_jinja_lib_cp_at(s, k, &cp);
                if (!bn_js_isspace_cp(cp)) break;
                b = k;
            }
            if (b == 0) break;
            if (done == maxsplit) {
                if ((st = bn_jinja_lib_list_push(c, &parts, &pcap, bn_jv_str(bn_jinja_lib_js_sub(s, 0, b))))) return st;
                break;
            }
            size_t a = b;
            while (a > 0) {
                size_t k = a - 1;
                while (k > 0 && ((unsigned char)s.p[k] & 0xc0) == 0x80) k--;
                uint32_t cp;
                bn_jinja_lib_cp_at(s, k, &cp);
                if (bn_js_isspace_cp(cp)) break;
                a = k;
            }
            if ((st = bn_jinja_lib_list_push(c, &parts, &pcap, bn_jv_str(bn_jinja_lib_js_sub(s, a, b))))) return st;
            done++;
            b = a;
        }
        for (size_t i = parts.u.l->n; i-- > 0;)
            if ((st = bn_jinja_lib_list_push(c, out, &cap, parts.u.l->v[i]))) return st;
        return BITNET_OK;
    }
    if (!sep) {
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            while (i < s.n) {
                uint32_t cp;
                size_t l = bn_jinja_lib_cp_at(s, i, &cp);
                if (!bn_js_isspace_cp(cp)) break;
                i += l;
            }
            if (i >= s.n) break;
            if (maxsplit >= 0 && done == maxsplit) {
                jstr rest;
                bn_jinja_lib_s_strip(c, bn_jinja_lib_js_sub(s, i, s.n), NULL, 2, &rest);
                if ((st = bn_jinja_lib_list_push(c, out, &cap, bn_jv_str(rest)))) return st;
                break;
            }
            size_t a = i;
            while (i < s.n) {
                uint32_t cp;
                size_t l = bn_jinja_lib_cp_at(s, i, &cp);
                if (bn_js_isspace_cp(cp)) break;
                i += l;
            }
            if ((st = bn_jinja_lib_list_push(c, out, &cap, bn_jv_str(bn_jinja_lib_js_sub(s, a, i))))) return st;
            done++;
        }
        return BITNET_OK;
    }
    if (!right) {
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            const char *hit = (maxsplit < 0 || done < maxsplit) && sep->n <= s.n - i
                                  ? memmem(s.p + i, s.n - i, sep->p, sep->n) : NULL;
            if (!hit) break;
            size_t at = (size_t)(hit - s.p);
            if ((st = bn_jinja_lib_list_push(c, out, &cap, bn_jv_str(bn_jinja_lib_js_sub(s, i, at))))) return st;
            i = at + sep->n;
            done++;
        }
        return bn_jinja_lib_list_push(c, out, &cap, bn_jv_str(bn_jinja_lib_js_sub(s, i, s.n)));
    }
    /* rsplit with a separator: find from the right */
    jv parts;
    size_t pcap = 0;
    if ((st = bn_jv_list_new(c, 0, 0, &parts))) return st;
    size_t b = s.n;
    int64_t done = 0;
    while (maxsplit < 0 || done < maxsplit) {
        size_t at = SIZE_MAX;
        if (b >= sep->n)
            for (size_t k = b - sep->n + 1; k-- > 0;)
                if (memcmp(s.p + k, sep->p, sep->n) == 0) { at = k; break; }
        if (at == SIZE_MAX) break;
        if ((st = bn_jinja_lib_list_push(c, &parts, &pcap, bn_jv_str(bn_jinja_lib_js_sub(s, at + sep->n, b))))) return st;
        b = at;
        done++;
    }
    if ((st = bn_jinja_lib_list_push(c, &parts, &pcap, bn_jv_str(bn_jinja_lib_js_sub(s, 0, b))))) return st;
    for (size_t i = parts.u.l->n; i-- > 0;)
        if ((st = bn_jinja_lib_list_push(c, out, &cap, parts.u.l->v[i]))) return st;
    return BITNET_OK;
}

static int bn_jinja_lib_starts_with(jstr s, jstr p) { return p.n <= s.n && memcmp(s.p, p.p, p.n) == 0; }
static int bn_jinja_lib_ends_with(jstr s, jstr p) { return p.n <= s.n && memcmp(s.p + s.n - p.n, p.p, p.n) == 0; }

/* ---- calls: methods and globals -------------------------------------------------------------------- */

enum { G_RANGE = 1, G_NAMESPACE, G_DICT, G_RAISE, G_STRFTIME, G_CYCLER, G_JOINER, G_LIPSUM };
static const char *const k_globals[] = {"", "range", "namespace", "dict", "raise_exception", "strftime_now", "cycler",
                                        "joiner", "lipsum", NULL};

int bn_jl_global(jstr name, jv *out) {
    int k = bn_jinja_lib_find_name(k_globals, name);
    if (!k) return 0;
    *out = bn_jv_undef();
    out->t = JV_FUNC;
    out->id = (uint16_t)k;
    return 1;
}

static bitnet_status bn_jinja_lib_join_items(jctx *c, const jv *items, size_t n, jstr sep, jstr *out) {
    bitnet_status st;
    jsb b = {0};
    for (size_t i = 0; i < n; i++) {
        jstr s;
        if (i && (st = bn_jsb_str(c, &b, sep))) return st;
        if ((st = bn_jv_to_str(c, items[i], &s)) || (st = bn_jstep(c, 1 + s.n / 16)) || (st = bn_jsb_str(c, &b, s))) return st;
    }
    *out = bn_jsb_done(&b);
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_str_method(jctx *c, int k, jstr s, const jargs *a, jv *out) {
    static const char *const n_chars[] = {"chars", NULL}, *const n_split[] = {"sep", "maxsplit", NULL};
    static const char *const n_repl[] = {"count", NULL};
    bitnet_status st;
    const char *name = k_str_methods[k];
    jv x, y;
    jstr t, u;
    int64_t i;
    switch (k) {
    case 1: case 2: case 3: { /* strip lstrip rstrip */
        if ((st = bn_jinja_lib_check_args(c, name, a, 1, n_chars))) return st;
        int have = bn_jinja_lib_arg(a, 0, "chars", &x) && x.t != JV_NONE;
        if (have && (st = bn_jinja_lib_need_str(c, name, x, &t))) return st;
        if ((st = bn_jinja_lib_s_strip(c, s, have ? &t : NULL, k == 1 ? 3 : k == 2 ? 1 : 2, &u))) return st;
        *out = bn_jv_str(u);
        return BITNET_OK;
    }
    case 4: case 5: { /* split rsplit */
        if ((st = bn_jinja_lib_check_args(c, name, a, 2, n_split))) return st;
        int have = bn_jinja_lib_arg(a, 0, "sep", &x) && x.t != JV_NONE;
        int64_t maxsplit = -1;
        if (have && (st = bn_jinja_lib_need_str(c, name, x, &t))) return st;
        if (bn_jinja_lib_arg(a, 1, "maxsplit", &y) && (st = bn_jinja_lib_need_int(c, name, y, &maxsplit))) return st;
        return bn_jinja_lib_s_split(c, s, have ? &t : NULL, maxsplit, k == 5, out);
    }
    case 6: case 7: { /* startswith endswith */
        if ((st = bn_jinja_lib_check_args(c, name, a, 1, NULL))) return st;
        if (!bn_jinja_lib_arg(a, 0, "", &x)) return jerr(c, BITNET_E_FORMAT, "%s() takes at least 1 argument", name);
        int r = 0;
        if (x.t == JV_LIST && x.tuple) {
            for (size_t j = 0; j < x.u.l->n; j++) {
                if ((st = bn_jinja_lib_need_str(c, name, x.u.l->v[j], &t))) return st;
                r |= k == 6 ? bn_jinja_lib_starts_with(s, t) : bn_jinja_lib_ends_with(s, t);
            }
        } else {
            if (x.t != JV_STR)
                return jerr(c, BITNET_E_FORMAT, "%s first arg must be str or a tuple of str, not %s", name, bn_jv_type_name(x));
            r = k == 6 ? bn_jinja_lib_starts_with(s, x.u.s) : bn_jinja_lib_ends_with(s, x.u.s);
        }
        *out = bn_jv_bool(r);
        return BITNET_OK;
    }
    case 8: case 9: case 10: case 11: /* upper lower title capitalize */
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL))) return st;
        if ((st = bn_jinja_lib_s_case(c, s, k == 8 ? 1 : k == 9 ? 0 : k == 10 ? 4 : 2, &u))) return st;
        *out = bn_jv_str(u);
        return BITNET_OK;
    case 12: { /* replace */
        if ((st = bn_jinja_lib_check_args(c, name, a, 3, n_repl))) return st;
        jv z;
        int64_t count = -1;
        if (!bn_jinja_lib_arg(a, 0, "", &x) || !bn_jinja_lib_arg(a, 1, "", &y))
            return jerr(c, BITNET_E_FORMAT, "replace() takes at least 2 arguments");
        if ((st = bn_jinja_lib_need_str(c, name, x, &t)) || (st = bn_jinja_lib_need_str(c, name, y, &u))) return st;
        if (bn_jinja_lib_arg(a, 2, "count", &z) && (st = bn_jinja_lib_need_int(c, name, z, &count))) return st;
        jstr r;
        if ((st = bn_jinja_lib_s_replace(c, s, t, u, count, &r))) return st;
        *out = bn_jv_str(r);
        return BITNET_OK;
    }
    case 13: case 14: case 15: case 26: case 27: { /* find rfind count index rindex */
        if ((st = bn_jinja_lib_check_args(c, name, a, 1, NULL))) return st;
        if (!bn_jinja_lib_arg(a, 0, "", &x) || (st = bn_jinja_lib_need_str(c, name, x, &t))) return st ? st : jerr(c, BITNET_E_FORMAT, "%s() takes 1 argument", name);
        if ((st = bn_jstep(c, 1 + s.n / 16))) return st;
        if (k == 15) {
            int64_t n = 0;
            if (!t.n) n = (int64_t)bn_js_ncp(s) + 1;
            else
                for (size_t p = 0; p + t.n <= s.n;) {
                    const char *h = memmem(s.p + p, s.n - p, t.p, t.n);
                    if (!h) break;
                    n++;
                    p = (size_t)(h - s.p) + t.n;
                }
            *out = bn_jv_int(n);
            return BITNET_OK;
        }
        int64_t at = -1;
        if (k == 13 || k == 26) {
            const char *h = t.n <= s.n ? (t.n ? memmem(s.p, s.n, t.p, t.n) : s.p) : NULL;
            if (h) at = (int64_t)(h - s.p);
        } else if (t.n <= s.n) {
            for (size_t p = s.n - t.n + 1; p-- > 0;)
                if (memcmp(s.p + p, t.p, t.n) == 0) { at = (int64_t)p; break; }
        }
        if (at < 0 && (k == 26 || k == 27)) return jerr(c, BITNET_E_FORMAT, "substring not found");
        if (at >= 0) at = (int64_t)bn_js_ncp(bn_jinja_lib_js_sub(s, 0, (size_t)at)); /* code point index */
        *out = bn_jv_int(at);
        return BITNET_OK;
    }
    case 16: { /* join */
        const jv *items;
        size_t n;
        if ((st = bn_jinja_lib_check_args(c, name, a, 1, NULL))) return st;
        if (!bn_jinja_lib_arg(a, 0, "", &x)) return jerr(c, BITNET_E_FORMAT, "join() takes exactly one argument");
        if ((st = bn_jv_iterate(c, x, &items, &n))) return st;
        for (size_t j = 0; j < n; j++)
            if (items[j].t != JV_STR)
                return jerr(c, BITNET_E_FORMAT, "sequence item %zu: expected str instance, %s found", j,
                            bn_jv_type_name(items[j]));
        if ((st = bn_jinja_lib_join_items(c, items, n, s, &u))) return st;
        *out = bn_jv_str(u);
        return BITNET_OK;
    }
    case 17: { /* splitlines */
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL))) return st;
        if (bn_jinja_lib_has_non_ascii(s)) return jerr(c, BITNET_E_UNSUPPORTED, "splitlines() of a non-ASCII string");
        size_t cap = 0, p = 0;
        if ((st = bn_jv_list_new(c, 0, 0, out))) return st;
        while (p < s.n) {
            size_t e = p;
            while (e < s.n && !strchr("\n\r\v\f\x1c\x1d\x1e", s.p[e])) e++;
            if ((st = bn_jinja_lib_list_push(c, out, &cap, bn_jv_str(bn_jinja_lib_js_sub(s, p, e))))) return st;
            if (e < s.n && s.p[e] == '\r' && e + 1 < s.n && s.p[e + 1] == '\n') e++;
            p = e + 1;
        }
        return BITNET_OK;
    }
    case 18: case 19: case 20: case 21: case 22: case 23: { /* isdigit isalpha isspace isalnum islower isupper */
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL))) return st;
        if (k != 20 && bn_jinja_lib_has_non_ascii(s)) return jerr(c, BITNET_E_UNSUPPORTED, "%s() of a non-ASCII string", name);
        int r = s.n > 0, cased = 0;
        for (size_t j = 0; j < s.n;) {
            uint32_t cp;
            j += bn_jinja_lib_cp_at(s, j, &cp);
            int dig = cp >= '0' && cp <= '9', lo = cp >= 'a' && cp <= 'z', up = cp >= 'A' && cp <= 'Z';
            if (k == 18) r &= dig;
            else if (k == 19) r &= lo || up;
            else if (k == 20) r &= bn_js_isspace_cp(cp);
            else if (k == 21) r &= dig || lo || up;
            else if (k == 22) { if (up) r = 0; cased |= lo; }
            else { if (lo) r = 0; cased |= up; }
        }
        if (k == 22 || k == 23) r = r && cased;
        *out = bn_jv_bool(r);
        return BITNET_OK;
    }
    case 24: case 25: /* removeprefix removesuffix */
        if ((st = bn_jinja_lib_check_args(c, name, a, 1, NULL))) return st;
        if (!bn_jinja_lib_arg(a, 0, "", &x) || (st = bn_jinja_lib_need_str(c, name, x, &t))) return st ? st : jerr(c, BITNET_E_FORMAT, "%s() takes 1 argument", name);
        if (k == 24) *out = bn_jv_str(bn_jinja_lib_starts_with(s, t) ? bn_jinja_lib_js_sub(s, t.n, s.n) : s);
        else *out = bn_jv_str(bn_jinja_lib_ends_with(s, t) && t.n ? bn_jinja_lib_js_sub(s, 0, s.n - t.n) : s);
        return BITNET_OK;
    default:
        (void)i;
        return jerr(c, BITNET_E_UNSUPPORTED, "the string method '%s' is not supported", name);
    }
}

static bitnet_status bn_jinja_lib_dict_pairs(jctx *c, jdict *d, int what, jv *out) {
    bitnet_status st;
    if ((st = bn_jstep(c, 1 + d->n)) || (st = bn_jv_list_new(c, d->n, 0, out))) return st;
    out->tuple = (uint8_t)(what == 1 ? TU_ITEMS : what == 2 ? TU_KEYS : TU_VALUES); /* the caller may change it */
    for (size_t i = 0; i < d->n; i++) {
        if (what == 1) { /* items */
            jv p;
            if ((st = bn_jv_list_new(c, 2, 1, &p))) return st;
            p.u.l->v[0] = d->k[i];
            p.u.l->v[1] = d->v[i];
            out->u.l->v[i] = p;
        } else {
            out->u.l->v[i] = what == 2 ? d->k[i] : d->v[i];
        }
    }
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_call_method(jctx *c, jv fn, const jargs *a, jv *out) {
    bitnet_status st;
    int t = fn.id / 100, k = fn.id % 100;
    jv self = fn.u.bm->self, x;
    if (t == MT_STR) return bn_jinja_lib_str_method(c, k, self.u.s, a, out);
    if (t == MT_DICT) {
        if (k >= 1 && k <= 3) {
            if ((st = bn_jinja_lib_check_args(c, bn_jinja_lib_method_name(fn.id), a, 0, NULL))) return st;
            return bn_jinja_lib_dict_pairs(c, self.u.d, k, out);
        }
        if (k == 4) { /* get */
            if ((st = bn_jinja_lib_check_args(c, "get", a, 2, NULL))) return st;
            if (!bn_jinja_lib_arg(a, 0, "", &x)) return jerr(c, BITNET_E_FORMAT, "get expected at least 1 argument, got 0");
            jv *v = bn_jd_get(self.u.d, x);
            if (v) *out = *v;
            else if (!bn_jinja_lib_arg(a, 1, "", out)) *out = bn_jv_none();
            return BITNET_OK;
        }
        if (k >= 6) return jerr(c, BITNET_E_FORMAT, "access to the modifying dict method '%s' is unsafe (sandbox)",
                                bn_jinja_lib_method_name(fn.id));
    }
    if (t == MT_LIST) {
        if (k == 1 || k == 2) { /* index count */
            if ((st = bn_jinja_lib_check_args(c, bn_jinja_lib_method_name(fn.id), a, 1, NULL))) return st;
            if (!bn_jinja_lib_arg(a, 0, "", &x)) return jerr(c, BITNET_E_FORMAT, "%s() takes exactly one argument", bn_jinja_lib_method_name(fn.id));
            int64_t n = 0, at = -1;
            for (size_t i = 0; i < self.u.l->n; i++)
                if (bn_jv_eq(self.u.l->v[i], x)) { n++; if (at < 0) at = (int64_t)i; }
            if (k == 1 && at < 0) return jerr(c, BITNET_E_FORMAT, "x not in list");
            *out = bn_jv_int(k == 1 ? at : n);
            return BITNET_OK;
        }
        if (k != 4) /* copy is harmless but rare */
            return jerr(c, BITNET_E_FORMAT, "access to the modifying list method '%s' is unsafe (sandbox)",
                        bn_jinja_lib_method_name(fn.id));
    }
    if (t == MT_LOOP && k == 1) { /* cycle */
        if (a->nkw || !a->npos) return jerr(c, BITNET_E_FORMAT, "no items for cycling given");
        *out = a->pos[self.u.lp->index0 % a->npos];
        return BITNET_OK;
    }
    return jerr(c, BITNET_E_UNSUPPORTED, "the method '%s' is not supported", bn_jinja_lib_method_name(fn.id));
}

bitnet_status bn_jl_call(jctx *c, jv fn, const jargs *a, jv *out) {
    static const char *const n_range[] = {NULL};
    bitnet_status st;
    jv x;
    if (fn.t == JV_METHOD) return bn_jinja_lib_call_method(c, fn, a, out);
    switch (fn.id) {
    case G_RANGE: {
        int64_t v[3] = {0, 0, 1};
        if ((st = bn_jinja_lib_check_args(c, "range", a, 3, n_range))) return st;
        if (a->npos == 0) return jerr(c, BITNET_E_FORMAT, "range expected at least 1 argument, got 0");
        for (size_t i = 0; i < a->npos; i++)
            if ((st = bn_jinja_lib_need_int(c, "range", a->pos[i], &v[a->npos == 1 ? 1 : i]))) return st;
        if (v[2] == 0) return jerr(c, BITNET_E_FORMAT, "range() arg 3 must not be zero");
        int64_t n = 0;
        if (v[2] > 0 && v[1] > v[0]) n = (int64_t)(((uint64_t)v[1] - (uint64_t)v[0] - 1) / (uint64_t)v[2]) + 1;
        if (v[2] < 0 && v[0] > v[1]) n = (int64_t)(((uint64_t)v[0] - (uint64_t)v[1] - 1) / (uint64_t)(-(v[2] + 1) + 1)) + 1;
        if (n > 100000) /* jinja2's sandbox refuses ranges longer than MAX_RANGE */
            return jerr(c, BITNET_E_FORMAT, "range too big (the sandbox allows 100000 items)");
        if ((st = bn_jstep(c, 1 + (uint64_t)n)) || (st = bn_jv_list_new(c, (size_t)n, 2, out))) return st;
        for (int64_t i = 0; i < n; i++) out->u.l->v[i] = bn_jv_int(v[0] + i * v[2]);
        out->u.l->r_start = v[0];
        out->u.l->r_stop = v[1];
        out->u.l->r_step = v[2];
        return BITNET_OK;
    }
    case G_NAMESPACE:
    case G_DICT: {
        if (a->npos > 1) return jerr(c, BITNET_E_FORMAT, "%s expected at most 1 argument", k_globals[fn.id]);
        if ((st = bn_jv_dict_new(c, a->nkw + 4, out))) return st;
        if (a->npos) {
            x = a->pos[0];
            if (x.t == JV_DICT || x.t == JV_NS) {
                for (size_t i = 0; i < x.u.d->n; i++)
                    if ((st = bn_jd_set(c, out->u.d, x.u.d->k[i], x.u.d->v[i]))) return st;
            } else if (x.t == JV_LIST) {
                for (size_t i = 0; i < x.u.l->n; i++) {
                    jv p = x.u.l->v[i];
                    if (p.t != JV_LIST || p.u.l->n != 2)
                        return jerr(c, BITNET_E_FORMAT, "%s: element %zu is not a pair", k_globals[fn.id], i);
                    if ((st = bn_jd_set(c, out->u.d, p.u.l->v[0], p.u.l->v[1]))) return st;
                }
            } else if (x.t != JV_UNDEF) {
                return jerr(c, BITNET_E_FORMAT, "'%s' object is not iterable", bn_jv_type_name(x));
            }
        }
        for (size_t i = 0; i < a->nkw; i++)
            if ((st = bn_jd_set(c, out->u.d, bn_jv_str(a->kwn[i]), a->kwv[i]))) return st;
        if (fn.id == G_NAMESPACE) {
            for (size_t i = 0; i < out->u.d->n; i++)
                if (out->u.d->k[i].t != JV_STR) return jerr(c, BITNET_E_FORMAT, "namespace keys must be strings");
            out->t = JV_NS;
        }
        return BITNET_OK;
    }
    case G_RAISE: {
        jstr msg = bn_js_lit("");
        if (a->npos >= 1 && (st = bn_jv_to_str(c, a->pos[0], &msg))) return st;
        return jerr(c, BITNET_E_INVALID_ARG, "the template refused the conversation: %.*s", (int)msg.n, msg.p);
    }
    case G_STRFTIME: {
        jstr f;
        if (a->npos != 1 || a->nkw) return jerr(c, BITNET_E_FORMAT, "strftime_now() takes exactly one argument");
        if ((st = bn_jinja_lib_need_str(c, "strftime_now", a->pos[0], &f))) return st;
        if (f.n > 200 || memchr(f.p, 0, f.n)) return jerr(c, BITNET_E_UNSUPPORTED, "strftime_now: format too long");
        char fmt[208], buf[512];
        memcpy(fmt, f.p, f.n);
        fmt[f.n] = 0;
        time_t now = c->in->now ? (time_t)c->in->now : time(NULL);
        struct tm tmv;
        if (!localtime_r(&now, &tmv)) return jerr(c, BITNET_E_FORMAT, "strftime_now: the time is out of range");
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
        size_t n = strftime(buf, sizeof buf, fmt, &tmv); /* the template's format, as Python's strftime */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif
        if (n == 0 && f.n) return jerr(c, BITNET_E_UNSUPPORTED, "strftime_now: the formatted date is empty or too long");
        jstr r;
        if ((st = bn_js_new(c, buf, NULL, n, &r))) return st;
        *out = bn_jv_str(r);
        return BITNET_OK;
    }
    default:
        return jerr(c, BITNET_E_UNSUPPORTED, "the global function '%s' is not supported", k_globals[fn.id]);
    }
}

/* ---- tests ----------------------------------------------------------------------------------------------- */

static const char *const k_tests[] = {"", "defined", "undefined", "none", "boolean", "false", "true", "integer", "float",
                                      "number", "string", "mapping", "iterable", "sequence", "callable", "odd", "even",
                                      "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le",
                                      "<=", "gt", "greaterthan", ">", "ge", ">=", "in", "sameas", "lower", "upper",
                                      "escaped", "filter", "test", NULL};
static const char *const k_filters[] = {"", "trim", "capitalize", "upper", "lower", "title", "length", "count", "tojson",
                                        "replace", "default", "d", "join", "first", "last", "string", "items", "list",
                                        "int", "float", "abs", "indent", "selectattr", "rejectattr", "select", "reject",
                                        "map", "unique", "reverse", "dictsort", "wordcount", "sum", "min", "max",
                                        "safe", "e", "escape", "forceescape", "format", "random", "attr", NULL};

static const char *const k_jinja_filters[] = {
    "", "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
    "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "join", "last", "length",
    "list", "lower", "items", "map", "min", "max", "pprint", "random", "reject", "rejectattr", "replace", "reverse",
    "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title", "trim",
    "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr", "tojson", NULL};

int bn_jl_known_filter(jstr name) { return bn_jinja_lib_find_name(k_jinja_filters, name) != 0; }
int bn_jl_known_test(jstr name) { return bn_jinja_lib_find_name(k_tests, name) != 0; }

static bitnet_status bn_jinja_lib_test_by_name(jctx *c, jstr name, jv in, const jargs *a, int *out);

bitnet_status bn_jl_test(jctx *c, jstr name, jv in, const jargs *a, int *out) { return bn_jinja_lib_test_by_name(c, name, in, a, out); }

static bitnet_status bn_jinja_lib_test_by_name(jctx *c, jstr name, jv in, const jargs *a, int *out) {
    bitnet_status st;
    int k = bn_jinja_lib_find_name(k_tests, name);
    jv x;
    if (!k) return jerr(c, BITNET_E_UNSUPPORTED, "the test '%.*s' is not supported", (int)name.n, name.p);
    if (k >= 18 && k <= 34) { /* comparisons, in, sameas: one argument */
        if (a->npos + a->nkw != 1) return jerr(c, BITNET_E_FORMAT, "the test '%s' takes one argument", k_tests[k]);
        x = a->npos ? a->pos[0] : a->kwv[0];
        int r, op;
        switch (k) {
        case 18: case 19: case 20: *out = bn_jv_eq(in, x); return BITNET_OK;
        case 21: case 22: *out = !bn_jv_eq(in, x); return BITNET_OK;
        case 33: /* in */
            return bn_jv_contains(c, in, x, out);
        case 34: /* sameas: identity; only singletons are certain */
            if (x.t == JV_NONE || x.t == JV_BOOL) { *out = in.t == x.t && (x.t == JV_NONE || in.u.b == x.u.b); return BITNET_OK; }
            return jerr(c, BITNET_E_UNSUPPORTED, "'sameas' with anything but none, true or false");
        default:
            op = k <= 25 ? 0 : k <= 27 ? 1 : k <= 30 ? 2 : 3;
            if ((st = bn_jv_order(c, in, x, &r))) return st;
            *out = r == 2 ? 0 : op == 0 ? r < 0 : op == 1 ? r <= 0 : op == 2 ? r > 0 : r >= 0;
            return BITNET_OK;
        }
    }
    if (k != 17 && (a->npos || a->nkw)) return jerr(c, BITNET_E_FORMAT, "the test '%s' takes no arguments", k_tests[k]);
    switch (k) {
    case 1: *out = in.t != JV_UNDEF; break;
    case 2: *out = in.t == JV_UNDEF; break;
    case 3: *out = in.t == JV_NONE; break;
    case 4: *out = in.t == JV_BOOL; break;
    case 5: *out = in.t == JV_BOOL && !in.u.b; break;
    case 6: *out = in.t == JV_BOOL && in.u.b; break;
    case 7: *out = in.t == JV_INT; break;
    case 8: *out = in.t == JV_FLOAT; break;
    case 9: *out = bn_jinja_lib_is_num(in); break;
    case 10: *out = in.t == JV_STR; break;
    case 11: *out = in.t == JV_DICT; break;
    case 12: *out = in.t == JV_STR || in.t == JV_LIST || in.t == JV_DICT || in.t == JV_UNDEF || in.t == JV_LOOP ||
                    in.t == JV_ITER; break;
    case 13: *out = in.t == JV_STR || (in.t == JV_LIST && !JV_IS_VIEW(in)) || in.t == JV_DICT || in.t == JV_UNDEF; break;
    case 14: *out = in.t == JV_FUNC || in.t == JV_MACRO || in.t == JV_METHOD || in.t == JV_UNDEF; break;
    case 15: case 16: case 17: { /* value % 2 == 1, value % 2 == 0, value % num == 0 */
        jv d = bn_jv_int(2), m;
        if (k == 17 && !bn_jinja_lib_arg(a, 0, "num", &d)) return jerr(c, BITNET_E_FORMAT, "divisibleby takes one argument");
        if ((st = bn_je_binop(c, OPB_MOD, in, d, &m))) return st;
        *out = bn_jv_eq(m, bn_jv_int(k == 15 ? 1 : 0));
        break;
    }
    case 35: case 36: { /* lower upper: str(value).islower() */
        jstr s;
        if ((st = bn_jv_to_str(c, in, &s))) return st;
        if (bn_jinja_lib_has_non_ascii(s)) return jerr(c, BITNET_E_UNSUPPORTED, "the test '%s' on a non-ASCII string", k_tests[k]);
        int r = 1, cased = 0;
        for (size_t i = 0; i < s.n; i++) {
            char ch = s.p[i];
            if (k == 35 ? (ch >= 'A' && ch <= 'Z') : (ch >= 'a' && ch <= 'z')) r = 0;
            if (k == 35 ? (ch >= 'a' && ch <= 'z') : (ch >= 'A' && ch <= 'Z')) cased = 1;
        }
        *out = r && cased;
        break;
    }
    case 37: *out = 0; break; /* escaped: nothing is Markup here */
    default: { /* filter / test: whether one of that name exists */
        return jerr(c, BITNET_E_UNSUPPORTED, "the test '%s' is not supported", k_tests[k]);
    }
    }
    return BITNET_OK;
}

/* ---- filters ------------------------------------------------------------------------------------------- */

/* attribute lookup for selectattr / map / unique: dotted names, integers as indices */
static bitnet_status bn_jinja_lib_attr_path(jctx *c, jv item, jstr path, jv *out) {
    bitnet_status st;
    size_t i = 0;
    *out = item;
    while (i <= path.n) {
        size_t e = i;
        while (e < path.n && path.p[e] != '.') e++;
        jstr part = bn_jinja_lib_js_sub(path, i, e);
        int digits = part.n > 0;
        int64_t v = 0;
        for (size_t k = 0; k < part.n; k++) {
            if (part.p[k] < '0' || part.p[k] > '9' || v > 100000000) { digits = 0; break; }
            v = v * 10 + (part.p[k] - '0');
        }
        if ((st = bn_jv_getitem(c, *out, digits ? bn_jv_int(v) : bn_jv_str(part), out))) return st;
        i = e + 1;
    }
    return BITNET_OK;
}

/* select / reject / selectattr / rejectattr */
static bitnet_status bn_jinja_lib_f_select(jctx *c, int k, jv in, const jargs *a, jv *out) {
    bitnet_status st;
    int attr = k == 22 || k == 23, keep_true = k == 22 || k == 24;
    if (!bn_jv_truthy(in)) { /* jinja2 looks at nothing else then */
        if ((st = bn_jv_list_new(c, 0, 0, out))) return st;
        bn_jinja_lib_make_iter(out);
        return BITNET_OK;
    }
    size_t first = 0;
    jstr path = {0}, tname = {0};
    if (a->nkw) return jerr(c, BITNET_E_UNSUPPORTED, "keyword arguments to '%s'", k_filters[k]);
    if (attr) {
        if (a->npos < 1 || a->pos[0].t != JV_STR)
            return jerr(c, BITNET_E_FORMAT, "'%s' needs an attribute name", k_filters[k]);
        path = a->pos[0].u.s;
        first = 1;
    }
    int have_test = a->npos > first;
    if (have_test && (st = bn_jinja_lib_need_str(c, k_filters[k], a->pos[first], &tname))) return st;
    jargs targs = {0};
    if (have_test) {
        targs.pos = a->pos + first + 1;
        targs.npos = a->npos - first - 1;
    }
    const jv *items;
    size_t n, cap = 0;
    if ((st = bn_jv_iterate(c, in, &items, &n)) || (st = bn_jv_list_new(c, 0, 0, out))) return st;
    for (size_t i = 0; i < n; i++) {
        jv v = items[i];
        int r;
        if ((st = bn_jstep(c, 1))) return st;
        if (attr && (st = bn_jinja_lib_attr_path(c, v, path, &v))) return st;
        if (have_test) {
            if ((st = bn_jinja_lib_test_by_name(c, tname, v, &targs, &r))) return st;
        } else {
            r = bn_jv_truthy(v);
        }
        if ((r != 0) == keep_true && (st = bn_jinja_lib_list_push(c, out, &cap, items[i]))) return st;
    }
    bn_jinja_lib_make_iter(out);
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_filter_by_name(jctx *c, int k, jv in, const jargs *a, jv *out);

static bitnet_status bn_jinja_lib_f_map(jctx *c, jv in, const jargs *a, jv *out) {
    bitnet_status st;
    const jv *items;
    size_t n;
    jv path = bn_jv_undef(), dflt = bn_jv_undef();
    if (!bn_jv_truthy(in)) {
        if ((st = bn_jv_list_new(c, 0, 0, out))) return st;
        bn_jinja_lib_make_iter(out);
        return BITNET_OK;
    }
    int by_attr = 0, has_default = 0;
    for (size_t i = 0; i < a->nkw; i++) {
        if (bn_js_eqz(a->kwn[i], "attribute")) { path = a->kwv[i]; by_attr = 1; }
        else if (bn_js_eqz(a->kwn[i], "default")) { dflt = a->kwv[i]; has_default = 1; }
    }
    if (by_attr) {
        if (a->npos || a->nkw != 1u + (unsigned)has_default || path.t != JV_STR)
            return jerr(c, BITNET_E_UNSUPPORTED, "map(attribute=...) with other arguments");
    } else if (!a->npos || a->pos[0].t != JV_STR || a->nkw) {
        return jerr(c, BITNET_E_FORMAT, "map needs a filter name or attribute=");
    }
    int fk = 0;
    jargs fargs = {0};
    if (!by_attr) {
        fk = bn_jinja_lib_find_name(k_filters, a->pos[0].u.s);
        if (!fk) return jerr(c, BITNET_E_UNSUPPORTED, "the filter '%.*s' is not supported", (int)a->pos[0].u.s.n,
                             a->pos[0].u.s.p);
        fargs.pos = a->pos + 1;
        fargs.npos = a->npos - 1;
    }
    if ((st = bn_jv_iterate(c, in, &items, &n)) || (st = bn_jv_list_new(c, n, 0, out))) return st;
    for (size_t i = 0; i < n; i++) {
        jv v;
        if ((st = bn_jstep(c, 1))) return st;
        if (by_attr) {
            if ((st = bn_jinja_lib_attr_path(c, items[i], path.u.s, &v))) { out->u.l->n = i; return st; }
            if (v.t == JV_UNDEF && has_default && dflt.t != JV_NONE) v = dflt;
        } else if ((st = bn_jinja_lib_filter_by_name(c, fk, items[i], &fargs, &v))) {
            out->u.l->n = i; /* the items made so far (see defer) */
            return st;
        }
        out->u.l->v[i] = v;
    }
    bn_jinja_lib_make_iter(out);
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_f_indent(jctx *c, jv in, const jargs *a, jv *out) {
    static const char *const names[] = {"width", "first", "blank", NULL};
    bitnet_status st;
    jv w, x;
    jstr ind = bn_js_lit("    "), s;
    int first = 0, blank = 0;
    if ((st = bn_jinja_lib_check_args(c, "indent", a, 3, names))) return st;
    if (bn_jinja_lib_arg(a, 0, "width", &w)) {
        if (w.t == JV_STR) ind = w.u.s;
        else if (bn_jinja_lib_is_int(w)) {
            int64_t n = bn_jinja_lib_as_i(w);
            if (n > 4096) return jerr(c, BITNET_E_UNSUPPORTED, "indent width %lld", (long long)n);
            char *p = bn_ja_alloc(c, (size_t)(n > 0 ? n : 0) + 1);
            if (!p) return ja_error(c);
            for (int64_t i = 0; i < n; i++) p[i] = ' ';
            ind.p = p;
            ind.m = NULL;
            ind.n = (size_t)(n > 0 ? n : 0);
        } else {
            return jerr(c, BITNET_E_FORMAT, "indent: width must be an int or a string");
        }
    }
    if (bn_jinja_lib_arg(a, 1, "first", &x)) first = bn_jv_truthy(x);
    if (bn_jinja_lib_arg(a, 2, "blank", &x)) blank = bn_jv_truthy(x);
    if (in.t != JV_STR) {
        if (in.t == JV_UNDEF) return jerr(c, BITNET_E_FORMAT, "'%.*s' is undefined", (int)in.u.s.n, in.u.s.p);
        return jerr(c, BITNET_E_FORMAT, "indent: expected a string, got %s", bn_jv_type_name(in));
    }
    s = in.u.s;
    if (bn_jinja_lib_has_non_ascii(s)) {
        /* splitlines() also splits at U+0085, U+2028, U+2029: refuse those, allow the rest */
        for (size_t i = 0; i < s.n;) {
            uint32_t cp;
            i += bn_jinja_lib_cp_at(s, i, &cp);
            if (cp == 0x85 || cp == 0x2028 || cp == 0x2029)
                return jerr(c, BITNET_E_UNSUPPORTED, "indent of text with Unicode line separators");
        }
    }
    if ((st = bn_jstep(c, 1 + s.n / 16))) return st;
    /* as jinja2: lines = (s + "\n").splitlines(); the first line, then each other line
     * indented unless it is empty (blank=true: indented too); first=true indents line 1 */
    jsb b = {0};
    size_t p = 0, line = 0;
    while (p < s.n + 1) { /* the appended "\n" ends the last line */
        size_t e = p;
        while (e < s.n && !strchr("\n\r\v\f\x1c\x1d\x1e", s.p[e])) e++;
        jstr ln = bn_jinja_lib_js_sub(s, p, e);
        if (line > 0 && (st = bn_jsb_puts(c, &b, "\n"))) return st;
        if ((line == 0 ? first : (blank || ln.n)) && (st = bn_jsb_str(c, &b, ind))) return st;
        if ((st = bn_jsb_str(c, &b, ln))) return st;
        line++;
        if (e >= s.n) break; /* this line ended at the appended newline */
        if (s.p[e] == '\r' && e + 1 < s.n && s.p[e + 1] == '\n') e++;
        p = e + 1;
    }
    *out = bn_jv_str(bn_jsb_done(&b));
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_f_tojson(jctx *c, jv in, const jargs *a, jv *out) {
    static const char *const names[] = {"ensure_ascii", "indent", "separators", "sort_keys", NULL};
    bitnet_status st;
    jv x;
    jjson_opts o;
    memset(&o, 0, sizeof o);
    if ((st = bn_jinja_lib_check_args(c, "tojson", a, 4, names))) return st;
    if (bn_jinja_lib_arg(a, 0, "ensure_ascii", &x)) o.ensure_ascii = bn_jv_truthy(x);
    if (bn_jinja_lib_arg(a, 1, "indent", &x) && x.t != JV_NONE) {
        o.indent_on = 1;
        if (x.t == JV_STR) o.indent = x.u.s;
        else if (bn_jinja_lib_is_int(x)) {
            int64_t n = bn_jinja_lib_as_i(x);
            if (n > 256) return jerr(c, BITNET_E_UNSUPPORTED, "tojson indent %lld", (long long)n);
            char *p = bn_ja_alloc(c, (size_t)(n > 0 ? n : 0) + 1);
            if (!p) return ja_error(c);
            for (int64_t i = 0; i < n; i++) p[i] = ' ';
            o.indent.p = p;
            o.indent.n = (size_t)(n > 0 ? n : 0);
        } else {
            return jerr(c, BITNET_E_UNSUPPORTED, "tojson indent of type %s", bn_jv_type_name(x));
        }
    }
    o.item_sep = bn_js_lit(o.indent_on ? "," : ", ");
    o.key_sep = bn_js_lit(": ");
    if (bn_jinja_lib_arg(a, 2, "separators", &x) && x.t != JV_NONE) {
        if (x.t != JV_LIST || x.u.l->n != 2 || x.u.l->v[0].t != JV_STR || x.u.l->v[1].t != JV_STR)
            return jerr(c, BITNET_E_FORMAT, "tojson: separators must be a pair of strings");
        o.item_sep = x.u.l->v[0].u.s;
        o.key_sep = x.u.l->v[1].u.s;
    }
    if (bn_jinja_lib_arg(a, 3, "sort_keys", &x)) o.sort_keys = bn_jv_truthy(x);
    jsb b = {0};
    if ((st = bn_jv_to_json(c, &b, in, &o, 0))) return st;
    *out = bn_jv_str(bn_jsb_done(&b));
    return BITNET_OK;
}

/* digitpart: digit (['_'] digit)*; returns the end or i */
static size_t bn_jinja_lib_py_digits(const char *p, size_t n, size_t i) {
    size_t j = i;
    if (j >= n || p[j] < '0' || p[j] > '9') return i;
    j++;
    for (;;) {
        if (j < n && p[j] >= '0' && p[j] <= '9') { j++; continue; }
        if (j + 1 < n && p[j] == '_' && p[j + 1] >= '0' && p[j + 1] <= '9') { j += 2; continue; }
        return j;
    }
}

static bitnet_status bn_jinja_lib_py_strip_ascii(jctx *c, jstr s, jstr *z, int *ascii) {
    bitnet_status st;
    if ((st = bn_jinja_lib_s_strip(c, s, NULL, 3, z))) return st;
    *ascii = !bn_jinja_lib_has_non_ascii(*z);
    if (!*ascii) return jerr(c, BITNET_E_UNSUPPORTED, "converting a non-ASCII string to a number");
    return BITNET_OK;
}

/* Python's int(str) in base 10: *ok = 0 when the text is no integer. */
static bitnet_status bn_jinja_lib_py_int_of_str(jctx *c, jstr s, int64_t *v, int *ok) {
    bitnet_status st;
    jstr z;
    int ascii;
    *ok = 0;
    if ((st = bn_jinja_lib_py_strip_ascii(c, s, &z, &ascii))) return st;
    size_t i = 0;
    int neg = 0;
    if (i < z.n && (z.p[i] == '+' || z.p[i] == '-')) neg = z.p[i++] == '-';
    size_t e = bn_jinja_lib_py_digits(z.p, z.n, i);
    if (e == i || e != z.n) return BITNET_OK;
    uint64_t acc = 0;
    for (size_t k = i; k < e; k++) {
        if (z.p[k] == '_') continue;
        if (acc > (UINT64_MAX - 9) / 10) return jerr(c, BITNET_E_UNSUPPORTED, "integer overflow (64 bits)");
        acc = acc * 10 + (uint64_t)(z.p[k] - '0');
    }
    if (acc > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) return jerr(c, BITNET_E_UNSUPPORTED, "integer overflow (64 bits)");
    *v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    *ok = 1;
    return BITNET_OK;
}

/* Python's float(str): *ok = 0 when the text is no float. */
static bitnet_status bn_jinja_lib_py_float_of_str(jctx *c, jstr s, double *f, int *ok) {
    bitnet_status st;
    jstr z;
    int ascii;
    *ok = 0;
    if ((st = bn_jinja_lib_py_strip_ascii(c, s, &z, &ascii))) return st;
    size_t i = 0;
    if (i < z.n && (z.p[i] == '+' || z.p[i] == '-')) i++;
    char low[16];
    size_t rest = z.n - i;
    if (rest && rest < sizeof low) {
        for (size_t k = 0; k < rest; k++) low[k] = (char)(z.p[i + k] | 0x20);
        low[rest] = 0;
        if (!strcmp(low, "inf") || !strcmp(low, "infinity") || !strcmp(low, "nan")) {
            *f = low[0] == 'n' ? NAN : (z.p[0] == '-' ? -INFINITY : INFINITY);
            *ok = 1;
            return BITNET_OK;
        }
    }
    size_t e = bn_jinja_lib_py_digits(z.p, z.n, i), frac = e;
    if (e < z.n && z.p[e] == '.') frac = bn_jinja_lib_py_digits(z.p, z.n, e + 1) == e + 1 ? e + 1 : bn_jinja_lib_py_digits(z.p, z.n, e + 1);
    if (e == i && frac <= e + 1) return BITNET_OK; /* no digits at all */
    size_t q = frac;
    if (q < z.n && (z.p[q] == 'e' || z.p[q] == 'E')) {
        size_t r = q + 1;
        if (r < z.n && (z.p[r] == '+' || z.p[r] == '-')) r++;
        size_t ee = bn_jinja_lib_py_digits(z.p, z.n, r);
        if (ee == r) return BITNET_OK;
        q = ee;
    }
    if (q != z.n || z.n > 200) return BITNET_OK;
    char buf[208];
    size_t m = 0;
    for (size_t k = 0; k < z.n; k++)
        if (z.p[k] != '_') buf[m++] = z.p[k];
    buf[m] = 0;
    *f = strtod(buf, NULL);
    *ok = 1;
    return BITNET_OK;
}

static bitnet_status bn_jinja_lib_filter_eager(jctx *c, int k, jv in, const jargs *a, jv *out);

/* items, select, reject, selectattr, rejectattr, map and unique make generators: their
 * errors wait until the generator is consumed (see defer). */
static bitnet_status bn_jinja_lib_filter_by_name(jctx *c, int k, jv in, const jargs *a, jv *out) {
    if (k == 16 || (k >= 22 && k <= 27)) {
        *out = bn_jv_undef();
        bitnet_status st = bn_jinja_lib_filter_eager(c, k, in, a, out);
        return st ? bn_jinja_lib_defer(c, st, out, out) : BITNET_OK;
    }
    return bn_jinja_lib_filter_eager(c, k, in, a, out);
}

static bitnet_status bn_jinja_lib_filter_eager(jctx *c, int k, jv in, const jargs *a, jv *out) {
    static const char *const n_trim[] = {"chars", NULL}, *const n_repl[] = {"old", "new", "count", NULL};
    static const char *const n_def[] = {"default_value", "boolean", NULL}, *const n_join[] = {"d", "attribute", NULL};
    static const char *const n_int[] = {"default", "base", NULL}, *const n_float[] = {"default", NULL};
    static const char *const n_uniq[] = {"case_sensitive", "attribute", NULL};
    static const char *const n_dsort[] = {"case_sensitive", "by", "reverse", NULL};
    bitnet_status st;
    const char *name = k_filters[k];
    jv x, y;
    jstr s, t, u;
    switch (k) {
    case 1: { /* trim */
        if ((st = bn_jinja_lib_check_args(c, name, a, 1, n_trim)) || (st = bn_jv_to_str(c, in, &s))) return st;
        int have = bn_jinja_lib_arg(a, 0, "chars", &x) && x.t != JV_NONE;
        if (have && (st = bn_jinja_lib_need_str(c, name, x, &t))) return st;
        if ((st = bn_jinja_lib_s_strip(c, s, have ? &t : NULL, 3, &u))) return st;
        *out = bn_jv_str(u);
        return BITNET_OK;
    }
    case 2: case 3: case 4: case 5: /* capitalize upper lower title */
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL)) || (st = bn_jv_to_str(c, in, &s))) return st;
        if ((st = bn_jinja_lib_s_case(c, s, k == 2 ? 2 : k == 3 ? 1 : k == 4 ? 0 : 3, &u))) return st;
        *out = bn_jv_str(u);
        return BITNET_OK;
    case 6: case 7: /* length count */
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL))) return st;
        switch (in.t) {
        case JV_STR: *out = bn_jv_int((int64_t)bn_js_ncp(in.u.s)); break;
        case JV_LIST: *out = bn_jv_int((int64_t)in.u.l->n); break;
        case JV_DICT: *out = bn_jv_int((int64_t)in.u.d->n); break;
        case JV_UNDEF: *out = bn_jv_int(0); break;
        case JV_LOOP: *out = bn_jv_int((int64_t)in.u.lp->length); break;
        default: return jerr(c, BITNET_E_FORMAT, "object of type '%s' has no len()", bn_jv_type_name(in));
        }
        return BITNET_OK;
    case 8: return bn_jinja_lib_f_tojson(c, in, a, out);
    case 9: { /* replace */
        jv z;
        int64_t count = -1;
        if ((st = bn_jinja_lib_check_args(c, name, a, 3, n_repl))) return st;
        if (!bn_jinja_lib_arg(a, 0, "old", &x) || !bn_jinja_lib_arg(a, 1, "new", &y)) return jerr(c, BITNET_E_FORMAT, "replace needs old and new");
        if ((st = bn_jv_to_str(c, in, &s)) || (st = bn_jv_to_str(c, x, &t)) || (st = bn_jv_to_str(c, y, &u))) return st;
        if (bn_jinja_lib_arg(a, 2, "count", &z) && z.t != JV_NONE && (st = bn_jinja_lib_need_int(c, name, z, &count))) return st;
        jstr r;
        if ((st = bn_jinja_lib_s_replace(c, s, t, u, count, &r))) return st;
        *out = bn_jv_str(r);
        return BITNET_OK;
    }
    case 10: case 11: /* default d */
        if ((st = bn_jinja_lib_check_args(c, name, a, 2, n_def))) return st;
        if (!bn_jinja_lib_arg(a, 0, "default_value", &x)) x = bn_jv_str(bn_js_lit(""));
        if (!bn_jinja_lib_arg(a, 1, "boolean", &y)) y = bn_jv_bool(0);
        *out = (in.t == JV_UNDEF || (bn_jv_truthy(y) && !bn_jv_truthy(in))) ? x : in;
        return BITNET_OK;
    case 12: { /* join */
        const jv *items;
        size_t n;
        if ((st = bn_jinja_lib_check_args(c, name, a, 2, n_join))) return st;
        t = bn_js_lit("");
        if (bn_jinja_lib_arg(a, 0, "d", &x) && (st = bn_jv_to_str(c, x, &t))) return st;
        if ((st = bn_jv_iterate(c, in, &items, &n))) return st;
        if (bn_jinja_lib_arg(a, 1, "attribute", &y) && y.t != JV_NONE) {
            jv *mapped = bn_ja_alloc(c, (n ? n : 1) * sizeof(jv));
            if (!mapped) return ja_error(c);
            jstr path;
            if ((st = bn_jinja_lib_need_str(c, name, y, &path))) return st;
            for (size_t i = 0; i < n; i++)
                if ((st = bn_jinja_lib_attr_path(c, items[i], path, &mapped[i]))) return st;
            items = mapped;
        }
        if ((st = bn_jinja_lib_join_items(c, items, n, t, &u))) return st;
        *out = bn_jv_str(u);
        return BITNET_OK;
    }
    case 13: case 14: { /* first last */
        const jv *items;
        size_t n;
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL))) return st;
        if (in.t == JV_ITER) {
            if (k == 14) return jerr(c, BITNET_E_FORMAT, "'generator' object is not reversible");
            if (in.u.l->pos < in.u.l->n) *out = in.u.l->v[in.u.l->pos++];
            else if (in.u.l->err) return bn_jv_iter_error(c, in.u.l);
            else *out = bn_jv_undef();
            return BITNET_OK;
        }
        if ((st = bn_jv_iterate(c, in, &items, &n))) return st;
        *out = n ? items[k == 13 ? 0 : n - 1] : bn_jv_undef();
        return BITNET_OK;
    }
    case 15: /* string */
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL)) || (st = bn_jv_to_str(c, in, &s))) return st;
        *out = bn_jv_str(s);
        return BITNET_OK;
    case 16: /* items */
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL))) return st;
        if (in.t == JV_UNDEF) st = bn_jv_list_new(c, 0, 0, out);
        else if (in.t != JV_DICT) return jerr(c, BITNET_E_FORMAT, "Can only get item pairs from a mapping.");
        else st = bn_jinja_lib_dict_pairs(c, in.u.d, 1, out);
        if (!st) out->tuple = TU_LIST;
        if (st) return st;
        bn_jinja_lib_make_iter(out);
        return BITNET_OK;
    case 17: { /* list */
        const jv *items;
        size_t n;
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL)) || (st = bn_jv_iterate(c, in, &items, &n)) ||
            (st = bn_jv_list_new(c, n, 0, out)))
            return st;
        if (n) memcpy(out->u.l->v, items, n * sizeof(jv));
        return BITNET_OK;
    }
    case 18: { /* int: int(value), else int(float(value)), else the default */
        if ((st = bn_jinja_lib_check_args(c, name, a, 2, n_int))) return st;
        jv dflt = bn_jv_int(0);
        bn_jinja_lib_arg(a, 0, "default", &dflt);
        if (bn_jinja_lib_arg(a, 1, "base", &y) && !(bn_jinja_lib_is_int(y) && bn_jinja_lib_as_i(y) == 10))
            return jerr(c, BITNET_E_UNSUPPORTED, "int with a base other than 10");
        double f;
        int64_t iv;
        if (in.t == JV_INT || in.t == JV_BOOL) { *out = bn_jv_int(bn_jinja_lib_as_i(in)); return BITNET_OK; }
        if (in.t == JV_UNDEF) return bn_jv_getattr(c, in, bn_js_lit("__int__"), out); /* Undefined fails int() */
        if (in.t == JV_STR) {
            int r;
            if ((st = bn_jinja_lib_py_int_of_str(c, in.u.s, &iv, &r))) return st;
            if (r) { *out = bn_jv_int(iv); return BITNET_OK; }
            if ((st = bn_jinja_lib_py_float_of_str(c, in.u.s, &f, &r))) return st;
            if (!r) { *out = dflt; return BITNET_OK; }
        } else if (in.t == JV_FLOAT) {
            f = in.u.f;
        } else {
            *out = dflt;
            return BITNET_OK;
        }
        if (f != f) { *out = dflt; return BITNET_OK; }
        if (isinf(f)) return jerr(c, BITNET_E_FORMAT, "cannot convert float infinity to integer");
        if (fabs(f) >= 0x1p63) return jerr(c, BITNET_E_UNSUPPORTED, "integer overflow (64 bits)");
        *out = bn_jv_int((int64_t)f);
        return BITNET_OK;
    }
    case 19: { /* float: float(value), else the default */
        if ((st = bn_jinja_lib_check_args(c, name, a, 1, n_float))) return st;
        jv dflt = bn_jv_float(0);
        bn_jinja_lib_arg(a, 0, "default", &dflt);
        if (bn_jinja_lib_is_num(in)) { *out = bn_jv_float(in.t == JV_FLOAT ? in.u.f : (double)bn_jinja_lib_as_i(in)); return BITNET_OK; }
        if (in.t == JV_UNDEF) return bn_jv_getattr(c, in, bn_js_lit("__float__"), out);
        if (in.t == JV_STR) {
            double f;
            int r;
            if ((st = bn_jinja_lib_py_float_of_str(c, in.u.s, &f, &r))) return st;
            *out = r ? bn_jv_float(f) : dflt;
            return BITNET_OK;
        }
        *out = dflt;
        return BITNET_OK;
    }
    case 20: /* abs */
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL))) return st;
        if (in.t == JV_FLOAT) *out = bn_jv_float(fabs(in.u.f));
        else if (bn_jinja_lib_is_int(in) && bn_jinja_lib_as_i(in) != INT64_MIN) *out = bn_jv_int(bn_jinja_lib_as_i(in) < 0 ? -bn_jinja_lib_as_i(in) : bn_jinja_lib_as_i(in));
        else return jerr(c, BITNET_E_FORMAT, "bad operand type for abs(): '%s'", bn_jv_type_name(in));
        return BITNET_OK;
    case 21: return bn_jinja_lib_f_indent(c, in, a, out);
    case 22: case 23: case 24: case 25: return bn_jinja_lib_f_select(c, k, in, a, out);
    case 26: return bn_jinja_lib_f_map(c, in, a, out);
    case 27: { /* unique */
        const jv *items;
        size_t n, cap = 0;
        if ((st = bn_jinja_lib_check_args(c, name, a, 2, n_uniq))) return st;
        int cs = bn_jinja_lib_arg(a, 0, "case_sensitive", &x) && bn_jv_truthy(x);
        int by = bn_jinja_lib_arg(a, 1, "attribute", &y) && y.t != JV_NONE;
        if (by && y.t != JV_STR) return jerr(c, BITNET_E_UNSUPPORTED, "unique(attribute=) with a non-string");
        if ((st = bn_jv_iterate(c, in, &items, &n)) || (st = bn_jv_list_new(c, 0, 0, out))) return st;
        jv *keys = bn_ja_alloc(c, (n ? n : 1) * sizeof(jv));
        if (!keys) return ja_error(c);
        size_t nk = 0;
        for (size_t i = 0; i < n; i++) {
            jv key = items[i];
            if (by && (st = bn_jinja_lib_attr_path(c, key, y.u.s, &key))) return st;
            if (!cs && key.t == JV_STR && (st = bn_jinja_lib_s_case(c, key.u.s, 0, &key.u.s))) return st;
            if (key.t == JV_LIST && !key.tuple) return jerr(c, BITNET_E_FORMAT, "unhashable type: 'list'");
            if (key.t == JV_DICT) return jerr(c, BITNET_E_FORMAT, "unhashable type: 'dict'");
            size_t j;
            if ((st = bn_jstep(c, 1 + nk))) return st;
            for (j = 0; j < nk && !bn_jv_eq(keys[j], key); j++) {}
            if (j < nk) continue;
            keys[nk++] = key;
            if ((st = bn_jinja_lib_list_push(c, out, &cap, items[i]))) return st;
        }
        bn_jinja_lib_make_iter(out);
        return BITNET_OK;
    }
    case 28: { /* reverse */
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL))) return st;
        if (in.t == JV_STR) {
            jv chars;
            if ((st = bn_jinja_lib_str_chars(c, in.u.s, &chars))) return st;
            jsb b = {0};
            for (size_t i = chars.u.l->n; i-- > 0;)
                if ((st = bn_jsb_str(c, &b, chars.u.l->v[i].u.s))) return st;
            *out = bn_jv_str(bn_jsb_done(&b));
            return BITNET_OK;
        }
        if (in.t == JV_ITER) return jerr(c, BITNET_E_FORMAT, "'generator' object is not reversible");
        const jv *items;
        size_t n;
        if (in.t != JV_LIST && in.t != JV_DICT && in.t != JV_UNDEF)
            return jerr(c, BITNET_E_FORMAT, "argument to reversed() must be a sequence");
        if ((st = bn_jv_iterate(c, in, &items, &n)) || (st = bn_jv_list_new(c, n, 0, out))) return st;
        for (size_t i = 0; i < n; i++) out->u.l->v[i] = items[n - 1 - i];
        bn_jinja_lib_make_iter(out); /* reversed() gives an iterator */
        return BITNET_OK;
    }
    case 29: { /* dictsort */
        if ((st = bn_jinja_lib_check_args(c, name, a, 3, n_dsort))) return st;
        int cs = bn_jinja_lib_arg(a, 0, "case_sensitive", &x) && bn_jv_truthy(x);
        int by_value = bn_jinja_lib_arg(a, 1, "by", &y) && y.t == JV_STR && bn_js_eqz(y.u.s, "value");
        if (bn_jinja_lib_arg(a, 1, "by", &y) && !(y.t == JV_STR && (bn_js_eqz(y.u.s, "key") || bn_js_eqz(y.u.s, "value"))))
            return jerr(c, BITNET_E_FORMAT, "You can only sort by either \"key\" or \"value\"");
        int rev = bn_jinja_lib_arg(a, 2, "reverse", &x) && bn_jv_truthy(x);
        if (in.t != JV_DICT) return jerr(c, BITNET_E_FORMAT, "dictsort needs a mapping");
        if ((st = bn_jinja_lib_dict_pairs(c, in.u.d, 1, out))) return st;
        out->tuple = TU_LIST;
        jv *v = out->u.l->v;
        size_t n = out->u.l->n;
        for (size_t i = 1; i < n; i++) { /* stable insertion sort */
            jv cur = v[i];
            size_t j = i;
            while (j > 0) {
                jv ka = v[j - 1].u.l->v[by_value], kb = cur.u.l->v[by_value];
                if (!cs && ka.t == JV_STR && (st = bn_jinja_lib_s_case(c, ka.u.s, 0, &ka.u.s))) return st;
                if (!cs && kb.t == JV_STR && (st = bn_jinja_lib_s_case(c, kb.u.s, 0, &kb.u.s))) return st;
                int r;
                if ((st = bn_jv_order(c, ka, kb, &r)) || (st = bn_jstep(c, 1))) return st;
                if (rev ? r >= 0 : r <= 0) break;
                v[j] = v[j - 1];
                j--;
            }
            v[j] = cur;
        }
        return BITNET_OK;
    }
    case 30: { /* wordcount: \w+ */
        if ((st = bn_jinja_lib_check_args(c, name, a, 0, NULL)) || (st = bn_jv_to_str(c, in, &s))) return st;
        if (bn_jinja_lib_has_non_ascii(s)) return jerr(c, BITNET_E_UNSUPPORTED, "wordcount of a non-ASCII string");
        int64_t n = 0;
        int inw = 0;
        for (size_t i = 0; i < s.n; i++) {
            char ch = s.p[i];
            int w = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
            if (w && !inw) n++;
            inw = w;
        }
        *out = bn_jv_int(n);
        return BITNET_OK;
    }
    case 31: { /* sum (of numbers) */
        const jv *items;
        size_t n;
        if (a->npos || a->nkw) return jerr(c, BITNET_E_UNSUPPORTED, "sum with arguments");
        if ((st = bn_jv_iterate(c, in, &items, &n))) return st;
        jv acc = bn_jv_int(0);
        for (size_t i = 0; i < n; i++) {
            if (!bn_jinja_lib_is_num(items[i])) return jerr(c, BITNET_E_FORMAT, "unsupported operand type(s) for +");
            if (acc.t == JV_FLOAT || items[i].t == JV_FLOAT)
                acc = bn_jv_float((acc.t == JV_FLOAT ? acc.u.f : (double)acc.u.i) +
                               (items[i].t == JV_FLOAT ? items[i].u.f : (double)bn_jinja_lib_as_i(items[i])));
            else if (__builtin_add_overflow(acc.u.i, bn_jinja_lib_as_i(items[i]), &acc.u.i))
                return jerr(c, BITNET_E_UNSUPPORTED, "integer overflow");
        }
        *out = acc;
        return BITNET_OK;
    }
    case 32: case 33: { /* min max (case-insensitive for strings, as Jinja) */
        const jv *items;
        size_t n;
        if (a->npos || a->nkw) return jerr(c, BITNET_E_UNSUPPORTED, "%s with arguments", name);
        if ((st = bn_jv_iterate(c, in, &items, &n))) return st;
        if (!n) { *out = bn_jv_undef(); return BITNET_OK; }
        size_t best = 0;
        for (size_t i = 1; i < n; i++) {
            jv ka = items[i], kb = items[best];
            if (ka.t == JV_STR && (st = bn_jinja_lib_s_case(c, ka.u.s, 0, &ka.u.s))) return st;
            if (kb.t == JV_STR && (st = bn_jinja_lib_s_case(c, kb.u.s, 0, &kb.u.s))) return st;
            int r;
            if ((st = bn_jv_order(c, ka, kb, &r))) return st;
            if (k == 32 ? r == -1 : r == 1) best = i;
        }
        *out = items[best];
        return BITNET_OK;
    }
    case 34: case 35: case 36: case 37:
        return jerr(c, BITNET_E_UNSUPPORTED, "the filter '%s' (HTML markup semantics) is not supported", name);
    default:
        return jerr(c, BITNET_E_UNSUPPORTED, "the filter '%s' is not supported", name);
    }
}

bitnet_status bn_jl_filter(jctx *c, jstr name, jv in, const jargs *a, jv *out) {
    int k = bn_jinja_lib_find_name(k_filters, name);
    if (!k) return jerr(c, BITNET_E_UNSUPPORTED, "the filter '%.*s' is not supported", (int)name.n, name.p);
    return bn_jinja_lib_filter_by_name(c, k, in, a, out);
}
