/*
 * chat_jinja_eval.c -- evaluation of the syntax tree (chat_jinja.h), the arena, scopes
 * and the output.
 *
 * Semantics follow jinja2 (3.1) in the sandbox transformers uses:
 *   - an undefined name is Undefined: it prints as "", iterates as nothing, is false,
 *     and using it for anything else (attribute, item, arithmetic, call) is an error;
 *   - `a and b` / `a or b` give an operand, as in Python; comparisons chain;
 *   - scopes: each iteration of a for loop has its own scope (a `set` inside a loop
 *     body is gone at the next iteration and after the loop, which is why templates
 *     use namespace() objects); `if` blocks share the enclosing scope; a macro call
 *     has its own scope whose parent is the scope the macro was defined in;
 *   - `loop` offers index, index0, revindex, revindex0, first, last, length, previtem,
 *     nextitem, depth, depth0, cycle(); `for x in xs if cond` filters before counting.
 * Work is bounded: every node evaluated, loop iteration and 16 bytes a string
 * operation touches count as a step; output, memory and nesting are capped.
 */
#include "chat_jinja_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- arena ------------------------------------------------------------------------------- */

void *bn_ja_alloc(jctx *c, size_t size) {
    jarena *a = &c->ar;
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    jchunk *h = a->head;
    if (!h || h->cap - h->used < size) {
        size_t cap = size > 48 * 1024 ? size : 64 * 1024;
        if (a->total + cap + sizeof(jchunk) > a->cap) {
            a->oom = 0;
            bn_jerr_set(c, "the template needs more than %zu bytes of memory (the renderer's limit)", a->cap);
            return NULL;
        }
        jchunk *nc = bn_malloc(sizeof(jchunk) + cap);
        if (!nc) {
            a->oom = 1;
            bn_set_error("out of memory rendering the chat template");
            return NULL;
        }
        nc->used = 0;
        nc->cap = cap;
        a->total += cap + sizeof(jchunk);
        if (h && size > 48 * 1024) { /* a big block: keep filling the current chunk */
            nc->next = h->next;
            h->next = nc;
            nc->used = size;
            return (char *)nc->data;
        }
        nc->next = h;
        a->head = h = nc;
    }
    void *p = (char *)h->data + h->used;
    h->used += size;
    return p;
}

void bn_ja_free_all(jarena *a) {
    jchunk *h = a->head;
    while (h) {
        jchunk *n = h->next;
        bn_free(h);
        h = n;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---- errors and limits --------------------------------------------------------------------- */

void bn_jerr_set(jctx *c, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bn_set_error("chat template, line %u: %s", (unsigned)c->line, msg);
}

bitnet_status bn_jstep(jctx *c, uint64_t n) {
    c->steps += n;
    if (c->steps > c->max_steps)
        return jerr(c, BITNET_E_UNSUPPORTED, "the template takes more than %llu evaluation steps (the renderer's limit)",
                    (unsigned long long)c->max_steps);
    return BITNET_OK;
}

static bitnet_status bn_jinja_eval_enter(jctx *c) {
    if (++c->depth > c->max_depth * 2)
        return jerr(c, BITNET_E_UNSUPPORTED, "the template's evaluation nests deeper than %u levels",
                    (unsigned)c->max_depth * 2);
    return bn_jstep(c, 1);
}

/* ---- output ---------------------------------------------------------------------------------- */

static bitnet_status bn_jinja_eval_out_put(jctx *c, jout *o, jstr s) {
    if (!s.n) return BITNET_OK;
    bitnet_status st;
    if ((st = bn_jstep(c, 1 + s.n / 64))) return st;
    if (o->n + s.n > c->max_output)
        return jerr(c, BITNET_E_UNSUPPORTED, "the rendered text exceeds %zu bytes (the renderer's limit)", c->max_output);
    if (o->n + s.n + 1 > o->cap) {
        size_t nc = o->cap ? o->cap : 1024;
        while (nc < o->n + s.n + 1) nc *= 2;
        if (c->ar.total + 2 * (nc - o->cap) > c->ar.cap)
            return jerr(c, BITNET_E_UNSUPPORTED, "the template needs more than %zu bytes of memory (the renderer's limit)",
                        c->ar.cap);
        char *np = bn_realloc(o->p, nc);
        if (!np) return bn_err(BITNET_E_NOMEM, "out of memory rendering the chat template");
        o->p = np;
        uint8_t *nm = bn_realloc(o->m, nc);
        if (!nm) return bn_err(BITNET_E_NOMEM, "out of memory rendering the chat template");
        o->m = nm;
        c->ar.total += 2 * (nc - o->cap);
        o->cap = nc;
    }
    memcpy(o->p + o->n, s.p, s.n);
    if (s.m) memcpy(o->m + o->n, s.m, s.n);
    else memset(o->m + o->n, 0, s.n);
    o->n += s.n;
    o->p[o->n] = 0;
    return BITNET_OK;
}

static void bn_jinja_eval_out_free(jctx *c, jout *o) {
    c->ar.total -= 2 * o->cap;
    bn_free(o->p);
    bn_free(o->m);
    memset(o, 0, sizeof *o);
}

/* The text of a nested output as a string value (copied into the arena). */
static bitnet_status bn_jinja_eval_out_to_str(jctx *c, jout *o, jstr *s) {
    int any = 0;
    for (size_t i = 0; i < o->n && !any; i++) any = o->m[i];
    return bn_js_new(c, o->p ? o->p : "", any ? o->m : NULL, o->n, s);
}

/* ---- scopes ------------------------------------------------------------------------------------ */

static jv *bn_jinja_eval_scope_find(jscope *s, jstr name) {
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (bn_js_eq(s->v[i].name, name)) return &s->v[i].val;
    return NULL;
}

static bitnet_status bn_jinja_eval_scope_set(jctx *c, jscope *s, jstr name, jv val) {
    for (size_t i = 0; i < s->n; i++)
        if (bn_js_eq(s->v[i].name, name)) {
            s->v[i].val = val;
            return BITNET_OK;
        }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        jvar *nv = bn_ja_alloc(c, nc * sizeof *nv);
        if (!nv) return ja_error(c);
        if (s->n) memcpy(nv, s->v, s->n * sizeof *nv);
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n].name = name;
    s->v[s->n].val = val;
    s->n++;
    return BITNET_OK;
}

/* ---- expressions ----------------------------------------------------------------------------------- */

static bitnet_status bn_jinja_eval_eval(jctx *c, jscope *sc, const jnode *e, jv *out);
static bitnet_status bn_jinja_eval_exec_body(jctx *c, jscope *sc, jnode *const *v, size_t n);

static bitnet_status bn_jinja_eval_type_error(jctx *c, const char *op, jv a, jv b) {
    return jerr(c, BITNET_E_FORMAT, "unsupported operand types for %s: '%s' and '%s'", op, bn_jv_type_name(a),
                bn_jv_type_name(b));
}

static bitnet_status bn_jinja_eval_undef_error(jctx *c, jv u) {
    if (u.u.s.n) return jerr(c, BITNET_E_FORMAT, "'%.*s' is undefined", (int)u.u.s.n, u.u.s.p);
    return jerr(c, BITNET_E_FORMAT, "an undefined value was used");
}

static int bn_jinja_eval_is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
static double bn_jinja_eval_num_f(jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b; }
static int64_t bn_jinja_eval_num_i(jv v) { return v.t == JV_INT ? v.u.i : v.u.b; }

static int64_t bn_jinja_eval_floordiv_i(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

static bitnet_status bn_jinja_eval_repeat(jctx *c, jv seq, int64_t times, jv *out) {
    bitnet_status st;
    if (times < 0) times = 0;
    if (seq.t == JV_STR) {
        uint64_t total;
        if (bn_mul_u64((uint64_t)seq.u.s.n, (uint64_t)times, &total) || total > c->ar.cap)
            return jerr(c, BITNET_E_UNSUPPORTED, "a string repeated %lld times exceeds the renderer's memory limit",
                        (long long)times);
        if ((st = bn_jstep(c, 1 + total / 16))) return st;
        jsb b = {0};
        for (int64_t i = 0; i < times; i++)
            if ((st = bn_jsb_str(c, &b, seq.u.s))) return st;
        *out = bn_jv_str(bn_jsb_done(&b));
        return BITNET_OK;
    }
    uint64_t total;
    if (bn_mul_u64((uint64_t)seq.u.l->n, (uint64_t)times, &total) || total > c->ar.cap / sizeof(jv))
        return jerr(c, BITNET_E_UNSUPPORTED, "a list repeated %lld times exceeds the renderer's memory limit",
                    (long long)times);
    if ((st = bn_jstep(c, 1 + total)) || (st = bn_jv_list_new(c, (size_t)total, seq.tuple, out))) return st;
    for (uint64_t i = 0; i < total; i++) out->u.l->v[i] = seq.u.l->v[i % seq.u.l->n];
    return BITNET_OK;
}

bitnet_status bn_je_binop(jctx *c, int op, jv a, jv b, jv *out) {
    bitnet_status st;
    static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**"};
    if (op == OPB_MOD && a.t == JV_STR)
        return jerr(c, BITNET_E_UNSUPPORTED, "printf-style string formatting ('...' %% x) is not supported");
    if (JV_IS_VIEW(a) || JV_IS_VIEW(b))
        return jerr(c, BITNET_E_UNSUPPORTED, "arithmetic on dict views (set operations)");
    if (a.t == JV_UNDEF) return bn_jinja_eval_undef_error(c, a);
    if (b.t == JV_UNDEF) return bn_jinja_eval_undef_error(c, b);
    if (op == OPB_ADD) {
        if (a.t == JV_STR && b.t == JV_STR) {
            if ((st = bn_jstep(c, 1 + (a.u.s.n + b.u.s.n) / 16)) || (st = bn_js_concat(c, a.u.s, b.u.s, &out->u.s))) return st;
            out->t = JV_STR;
            out->tuple = 0;
            return BITNET_OK;
        }
        if (a.t == JV_LIST && b.t == JV_LIST && a.tuple == b.tuple && a.tuple != 2) {
            size_t n = a.u.l->n + b.u.l->n;
            if ((st = bn_jstep(c, 1 + n)) || (st = bn_jv_list_new(c, n, a.tuple, out))) return st;
            if (a.u.l->n) memcpy(out->u.l->v, a.u.l->v, a.u.l->n * sizeof(jv));
            if (b.u.l->n) memcpy(out->u.l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof(jv));
            return BITNET_OK;
        }
    }
    if (op == OPB_MUL) {
        if ((a.t == JV_STR || (a.t == JV_LIST && a.tuple != 2)) && (b.t == JV_INT || b.t == JV_BOOL))
            return bn_jinja_eval_repeat(c, a, bn_jinja_eval_num_i(b), out);
        if ((b.t == JV_STR || (b.t == JV_LIST && b.tuple != 2)) && (a.t == JV_INT || a.t == JV_BOOL))
            return bn_jinja_eval_repeat(c, b, bn_jinja_eval_num_i(a), out);
    }
    if (!bn_jinja_eval_is_num(a) || !bn_jinja_eval_is_num(b)) {
        if (op == OPB_MOD && a.t == JV_STR)
            return jerr(c, BITNET_E_UNSUPPORTED, "printf-style string formatting ('...' %% x) is not supported");
        return bn_jinja_eval_type_error(c, names[op], a, b);
    }
    int fl = a.t == JV_FLOAT || b.t == JV_FLOAT;
    if (op == OPB_DIV) {
        double y = bn_jinja_eval_num_f(b);
        if (y == 0) return jerr(c, BITNET_E_FORMAT, "division by zero");
        *out = bn_jv_float(bn_jinja_eval_num_f(a) / y);
        return BITNET_OK;
    }
    if (fl) {
        double x = bn_jinja_eval_num_f(a), y = bn_jinja_eval_num_f(b), r;
        switch (op) {
        case OPB_ADD: r = x + y; break;
        case OPB_SUB: r = x - y; break;
        case OPB_MUL: r = x * y; break;
        case OPB_FLOORDIV:
        case OPB_MOD: { /* as CPython's float floor division and modulo */
            if (y == 0) return jerr(c, BITNET_E_FORMAT, "float division by zero");
            double mod = fmod(x, y), div = (x - mod) / y;
            if (mod != 0) {
                if ((y < 0) != (mod < 0)) { mod += y; div -= 1.0; }
            } else {
                mod = copysign(0.0, y);
            }
            double fd;
            if (div != 0) {
                fd = floor(div);
                if (div - fd > 0.5) fd += 1.0;
            } else {
                fd = copysign(0.0, x / y);
            }
            r = op == OPB_MOD ? mod : fd;
            break;
        }
        default: /* pow */
            if (x == 0 && y < 0) return jerr(c, BITNET_E_FORMAT, "0.0 cannot be raised to a negative power");
            if (x < 0 && y != floor(y))
                return jerr(c, BITNET_E_UNSUPPORTED, "a negative number raised to a fractional power (complex result)");
            r = pow(x, y);
            if (isinf(r) && !isinf(x) && !isinf(y)) return jerr(c, BITNET_E_FORMAT, "(34, 'Numerical result out of range')");
        }
        *out = bn_jv_float(r);
        return BITNET_OK;
    }
    int64_t x = bn_jinja_eval_num_i(a), y = bn_jinja_eval_num_i(b), r;
    switch (op) {
    case OPB_ADD: if (__builtin_add_overflow(x, y, &r)) goto overflow; break;
    case OPB_SUB: if (__builtin_sub_overflow(x, y, &r)) goto overflow; break;
    case OPB_MUL: if (__builtin_mul_overflow(x, y, &r)) goto overflow; break;
    case OPB_FLOORDIV:
        if (y == 0) return jerr(c, BITNET_E_FORMAT, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) goto overflow;
        r = bn_jinja_eval_floordiv_i(x, y);
        break;
    case OPB_MOD:
        if (y == 0) return jerr(c, BITNET_E_FORMAT, "integer division or modulo by zero");
        if (y == -1) { r = 0; break; }
        r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        break;
    default: /* pow */
        if (y < 0) {
            if (x == 0) return jerr(c, BITNET_E_FORMAT, "0.0 cannot be raised to a negative power");
            *out = bn_jv_float(pow((double)x, (double)y));
            return BITNET_OK;
        }
        { /* exponentiation by squaring; a squared base that overflows means the result does */
            int64_t base = x, e2 = y;
            r = 1;
            while (e2 > 0) {
                if ((e2 & 1) && __builtin_mul_overflow(r, base, &r)) goto overflow;
                e2 >>= 1;
                if (e2 && __builtin_mul_overflow(base, base, &base)) goto overflow;
            }
        }
    }
    *out = bn_jv_int(r);
    return BITNET_OK;
overflow:
    return jerr(c, BITNET_E_UNSUPPORTED, "integer overflow (libbitnet's integers have 64 bits)");
}

static bitnet_status bn_jinja_eval_compare(jctx *c, int op, jv a, jv b, int *res) {
    bitnet_status st;
    int k;
    switch (op) {
    case OPC_EQ: *res = bn_jv_eq(a, b); return BITNET_OK;
    case OPC_NE: *res = !bn_jv_eq(a, b); return BITNET_OK;
    case OPC_IN: return bn_jv_contains(c, a, b, res);
    case OPC_NOTIN:
        if ((st = bn_jv_contains(c, a, b, res))) return st;
        *res = !*res;
        return BITNET_OK;
    default:
        if ((st = bn_jv_order(c, a, b, &k))) return st;
        *res = op == OPC_LT ? k < 0 : op == OPC_LE ? k <= 0 : op == OPC_GT ? k > 0 : k >= 0;
        return BITNET_OK;
    }
}

/* Evaluate call arguments into a (with *args and **kwargs expanded). */
static bitnet_status bn_jinja_eval_eval_args(jctx *c, jscope *sc, const jnode *e, jargs *a) {
    bitnet_status st;
    jv da = bn_jv_undef(), dk = bn_jv_undef();
    const jv *extra = NULL;
    size_t nextra = 0, nkw = e->nnames;
    memset(a, 0, sizeof *a);
    if (e->dyn_args) {
        if ((st = bn_jinja_eval_eval(c, sc, e->dyn_args, &da))) return st;
        if (da.t != JV_LIST && da.t != JV_ITER && da.t != JV_STR && da.t != JV_DICT)
            return jerr(c, BITNET_E_FORMAT, "argument after * must be an iterable, not %s", bn_jv_type_name(da));
        if ((st = bn_jv_iterate(c, da, &extra, &nextra))) return st;
    }
    if (e->dyn_kwargs) {
        if ((st = bn_jinja_eval_eval(c, sc, e->dyn_kwargs, &dk))) return st;
        if (dk.t != JV_DICT) return jerr(c, BITNET_E_FORMAT, "argument after ** must be a mapping, not %s", bn_jv_type_name(dk));
        for (size_t i = 0; i < dk.u.d->n; i++)
            if (dk.u.d->k[i].t != JV_STR) return jerr(c, BITNET_E_FORMAT, "keywords must be strings");
        nkw += dk.u.d->n;
    }
    a->npos = e->n + nextra;
    if (a->npos) {
        a->pos = bn_ja_alloc(c, a->npos * sizeof(jv));
        if (!a->pos) return ja_error(c);
        for (size_t i = 0; i < e->n; i++)
            if ((st = bn_jinja_eval_eval(c, sc, e->v[i], &a->pos[i]))) return st;
        if (nextra) memcpy(a->pos + e->n, extra, nextra * sizeof(jv));
    }
    if (nkw) {
        a->kwn = bn_ja_alloc(c, nkw * sizeof(jstr));
        a->kwv = bn_ja_alloc(c, nkw * sizeof(jv));
        if (!a->kwn || !a->kwv) return ja_error(c);
        for (size_t i = 0; i < e->nnames; i++) {
            a->kwn[i] = e->names[i];
            if ((st = bn_jinja_eval_eval(c, sc, e->v2[i], &a->kwv[i]))) return st;
        }
        for (size_t i = e->nnames; i < nkw; i++) {
            jstr key = dk.u.d->k[i - e->nnames].u.s;
            for (size_t k = 0; k < i; k++)
                if (bn_js_eq(a->kwn[k], key))
                    return jerr(c, BITNET_E_FORMAT, "got multiple values for keyword argument '%.*s'", (int)key.n, key.p);
            a->kwn[i] = key;
            a->kwv[i] = dk.u.d->v[i - e->nnames];
        }
    }
    a->nkw = nkw;
    return BITNET_OK;
}

/* A literal: an expression without names, calls or block values (jinja2 may evaluate
 * it when compiling).  Depth is bounded by the parser. */
static int bn_jinja_eval_is_literal(const jnode *e) {
    if (!e) return 1;
    if (e->k == E_NAME || e->k == E_CALL || e->k == E_BLOCKVAL) return 0;
    if (!bn_jinja_eval_is_literal(e->a) || !bn_jinja_eval_is_literal(e->b) || !bn_jinja_eval_is_literal(e->c) || !bn_jinja_eval_is_literal(e->dyn_args) ||
        !bn_jinja_eval_is_literal(e->dyn_kwargs))
        return 0;
    for (size_t i = 0; i < e->n; i++)
        if (!bn_jinja_eval_is_literal(e->v[i])) return 0;
    for (size_t i = 0; i < e->n2; i++)
        if (!bn_jinja_eval_is_literal(e->v2[i])) return 0;
    return 1;
}

static bitnet_status bn_jinja_eval_eval(jctx *c, jscope *sc, const jnode *e, jv *out) {
    bitnet_status st;
    if ((st = bn_jinja_eval_enter(c))) return st;
    c->line = e->line;
    jv a, b;
    switch (e->k) {
    case E_CONST:
        *out = e->lit;
        break;
    case E_NAME: {
        jv *v = bn_jinja_eval_scope_find(sc, e->name);
        if (v) *out = *v;
        else if (!bn_jl_global(e->name, out)) *out = bn_jv_undef_named(e->name);
        break;
    }
    case E_LIST:
        if ((st = bn_jv_list_new(c, e->n, e->op == 1, out))) return st;
        for (size_t i = 0; i < e->n; i++)
            if ((st = bn_jinja_eval_eval(c, sc, e->v[i], &out->u.l->v[i]))) return st;
        break;
    case E_DICT:
        if ((st = bn_jv_dict_new(c, e->n, out))) return st;
        for (size_t i = 0; i < e->n; i++) {
            if ((st = bn_jinja_eval_eval(c, sc, e->v[i], &a)) || (st = bn_jinja_eval_eval(c, sc, e->v2[i], &b))) return st;
            if (a.t == JV_LIST && !a.tuple) return jerr(c, BITNET_E_FORMAT, "unhashable type: 'list'");
            if (a.t == JV_DICT || a.t == JV_NS) return jerr(c, BITNET_E_FORMAT, "unhashable type: 'dict'");
            if (a.t == JV_UNDEF) return jerr(c, BITNET_E_UNSUPPORTED, "an undefined value as a dict key");
            if ((st = bn_jd_set(c, out->u.d, a, b))) return st;
        }
        break;
    case E_ATTR:
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a))) return st;
        c->line = e->line;
        if ((st = bn_jv_getattr(c, a, e->name, out))) return st;
        break;
    case E_ITEM:
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a)) || (st = bn_jinja_eval_eval(c, sc, e->b, &b))) return st;
        c->line = e->line;
        if ((st = bn_jv_getitem(c, a, b, out))) return st;
        break;
    case E_SLICE: {
        jv x[3] = {bn_jv_none(), bn_jv_none(), bn_jv_none()};
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a))) return st;
        const jnode *parts[3] = {e->b, e->c, e->v[0]};
        for (int k = 0; k < 3; k++)
            if (parts[k] && (st = bn_jinja_eval_eval(c, sc, parts[k], &x[k]))) return st;
        c->line = e->line;
        if ((st = bn_jv_slice(c, a, x[0], x[1], x[2], out))) {
            /* jinja2 evaluates constant expressions when compiling, where a failing slice
             * of a literal becomes Undefined in some places and an error in others */
            if (st == BITNET_E_FORMAT && bn_jinja_eval_is_literal(e->a))
                return jerr(c, BITNET_E_UNSUPPORTED, "slicing a literal that is no sequence");
            return st;
        }
        break;
    }
    case E_CALL: {
        jargs args;
        jv caller = c->caller; /* set by {% call %} for this call only */
        c->caller = bn_jv_undef();
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a)) || (st = bn_jinja_eval_eval_args(c, sc, e, &args))) return st;
        c->caller = caller;
        c->line = e->line;
        if (a.t == JV_FUNC || a.t == JV_METHOD) st = bn_jl_call(c, a, &args, out);
        else if (a.t == JV_MACRO) st = bn_je_call_macro(c, a.u.mac, &args, out);
        else if (a.t == JV_UNDEF) st = bn_jinja_eval_undef_error(c, a);
        else st = jerr(c, BITNET_E_FORMAT, "'%s' object is not callable", bn_jv_type_name(a));
        c->caller = bn_jv_undef();
        if (st) return st;
        break;
    }
    case E_FILTER: {
        jargs args;
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a)) || (st = bn_jinja_eval_eval_args(c, sc, e, &args))) return st;
        c->line = e->line;
        if ((st = bn_jl_filter(c, e->name, a, &args, out))) return st;
        break;
    }
    case E_BLOCKVAL:
        *out = c->blockval;
        break;
    case E_TEST: {
        jargs args;
        int r;
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a)) || (st = bn_jinja_eval_eval_args(c, sc, e, &args))) return st;
        c->line = e->line;
        if ((st = bn_jl_test(c, e->name, a, &args, &r))) return st;
        *out = bn_jv_bool(r);
        break;
    }
    case E_NOT:
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a))) return st;
        *out = bn_jv_bool(!bn_jv_truthy(a));
        break;
    case E_NEG:
    case E_POS:
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a))) return st;
        c->line = e->line;
        if (a.t == JV_UNDEF) return bn_jinja_eval_undef_error(c, a);
        if (a.t == JV_FLOAT) *out = bn_jv_float(e->k == E_NEG ? -a.u.f : a.u.f);
        else if (a.t == JV_INT || a.t == JV_BOOL) {
            int64_t x = bn_jinja_eval_num_i(a);
            if (e->k == E_NEG && x == INT64_MIN) return jerr(c, BITNET_E_UNSUPPORTED, "integer overflow");
            *out = bn_jv_int(e->k == E_NEG ? -x : x);
        } else {
            return jerr(c, BITNET_E_FORMAT, "bad operand type for unary %c: '%s'", e->k == E_NEG ? '-' : '+',
                        bn_jv_type_name(a));
        }
        break;
    case E_BIN:
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a)) || (st = bn_jinja_eval_eval(c, sc, e->b, &b))) return st;
        c->line = e->line;
        if (e->op == OPB_POW && bn_jinja_eval_is_literal(e->a) && !bn_jinja_eval_is_literal(e->b) &&
            ((a.t == JV_INT && a.u.i < 0) || (a.t == JV_FLOAT && a.u.f < 0))) {
            /* jinja2 folds a constant base into a literal and writes `-2 ** n` into the
             * Python code it compiles, which Python reads as -(2 ** n) */
            jv pos = a.t == JV_INT ? bn_jv_int(-a.u.i) : bn_jv_float(-a.u.f);
            if (a.t == JV_INT && a.u.i == INT64_MIN) return jerr(c, BITNET_E_UNSUPPORTED, "integer overflow");
            if ((st = bn_je_binop(c, OPB_POW, pos, b, &a))) return st;
            if (a.t == JV_INT) *out = bn_jv_int(-a.u.i);
            else *out = bn_jv_float(-a.u.f);
            break;
        }
        if ((st = bn_je_binop(c, e->op, a, b, out))) return st;
        break;
    case E_CONCAT: {
        jsb sb = {0};
        for (size_t i = 0; i < e->n; i++) {
            jstr s;
            if ((st = bn_jinja_eval_eval(c, sc, e->v[i], &a))) return st;
            c->line = e->line;
            if ((st = bn_jv_to_str(c, a, &s)) || (st = bn_jstep(c, 1 + s.n / 16)) || (st = bn_jsb_str(c, &sb, s))) return st;
        }
        *out = bn_jv_str(bn_jsb_done(&sb));
        break;
    }
    case E_AND:
    case E_OR:
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a))) return st;
        if (bn_jv_truthy(a) == (e->k == E_OR)) *out = a;
        else if ((st = bn_jinja_eval_eval(c, sc, e->b, out))) return st;
        break;
    case E_CMP: {
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a))) return st;
        int r = 1;
        for (size_t i = 0; i < e->n && r; i++) {
            if ((st = bn_jinja_eval_eval(c, sc, e->v[i], &b))) return st;
            c->line = e->line;
            if ((st = bn_jinja_eval_compare(c, e->ops[i], a, b, &r))) return st;
            a = b;
        }
        *out = bn_jv_bool(r);
        break;
    }
    case E_COND:
        if ((st = bn_jinja_eval_eval(c, sc, e->a, &a))) return st;
        if (bn_jv_truthy(a)) st = bn_jinja_eval_eval(c, sc, e->b, out);
        else if (e->c) st = bn_jinja_eval_eval(c, sc, e->c, out);
        else *out = bn_jv_undef();
        if (st) return st;
        break;
    default:
        return jerr(c, BITNET_E_INTERNAL, "unknown expression node %d", (int)e->k);
    }
    c->depth--;
    return BITNET_OK;
}

/* ---- statements --------------------------------------------------------------------------------- */

static bitnet_status bn_jinja_eval_assign(jctx *c, jscope *sc, const jnode *s, jv val) {
    bitnet_status st;
    if (s->op == TG_NSATTR) {
        jv *ns = bn_jinja_eval_scope_find(sc, s->names[0]);
        if (!ns || ns->t != JV_NS)
            return jerr(c, BITNET_E_FORMAT, "cannot assign attribute on non-namespace object '%.*s'",
                        (int)s->names[0].n, s->names[0].p);
        jv key = bn_jv_str(s->names[1]);
        return bn_jd_set(c, ns->u.d, key, val);
    }
    if (s->op == TG_NAME) return bn_jinja_eval_scope_set(c, sc, s->names[0], val);
    const jv *items;
    size_t n;
    if (val.t == JV_DICT || val.t == JV_STR || val.t == JV_LIST) {
        if ((st = bn_jv_iterate(c, val, &items, &n))) return st;
    } else {
        return jerr(c, BITNET_E_FORMAT, "cannot unpack non-iterable %s object", bn_jv_type_name(val));
    }
    if (n != s->nnames)
        return jerr(c, BITNET_E_FORMAT, "%s values to unpack (expected %zu, got %zu)",
                    n > s->nnames ? "too many" : "not enough", s->nnames, n);
    for (size_t i = 0; i < n; i++)
        if ((st = bn_jinja_eval_scope_set(c, sc, s->names[i], items[i]))) return st;
    return BITNET_OK;
}

static bitnet_status bn_jinja_eval_exec_for(jctx *c, jscope *sc, const jnode *s) {
    bitnet_status st;
    jv seq;
    const jv *items;
    size_t n;
    if ((st = bn_jinja_eval_eval(c, sc, s->a, &seq))) return st;
    c->line = s->line;
    if ((st = bn_jv_iterate(c, seq, &items, &n))) return st;
    /* scopes live in the arena: a macro defined in the body may outlive the loop */
    jscope *itp = bn_ja_alloc(c, sizeof *itp);
    if (!itp) return ja_error(c);
    memset(itp, 0, sizeof *itp);
    itp->parent = sc;
#define it (*itp)
    if (s->b) { /* for x in xs if cond: filter first */
        jv *kept = bn_ja_alloc(c, (n ? n : 1) * sizeof(jv));
        if (!kept) return ja_error(c);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            jv r;
            it.n = 0;
            if ((st = bn_jstep(c, 1)) || (st = bn_jinja_eval_assign(c, &it, s, items[i])) || (st = bn_jinja_eval_eval(c, &it, s->b, &r))) return st;
            if (bn_jv_truthy(r)) kept[k++] = items[i];
        }
        items = kept;
        n = k;
    }
    if (n == 0) return bn_jinja_eval_exec_body(c, sc, s->v2, s->n2);
    jloop *lp = bn_ja_alloc(c, sizeof *lp);
    if (!lp) return ja_error(c);
    lp->length = n;
    lp->items = items;
    jv loopv = bn_jv_undef();
    loopv.t = JV_LOOP;
    loopv.u.lp = lp;
    /* jinja2 runs the else block unless an iteration ran to its end: also when every
     * iteration ended with break or continue (its compiled loop clears the flag at the
     * end of the body) */
    int completed = 0;
    for (size_t i = 0; i < n; i++) {
        lp->index0 = i;
        it.n = 0; /* a fresh scope each iteration */
        c->line = s->line;
        if ((st = bn_jstep(c, 1)) || (st = bn_jinja_eval_assign(c, &it, s, items[i])) ||
            (st = bn_jinja_eval_scope_set(c, &it, bn_js_lit("loop"), loopv)))
            return st;
        int r = bn_jinja_eval_exec_body(c, &it, s->v, s->n);
        if (r < 0) return (bitnet_status)r;
        if (r == 0) completed = 1;
        if (r == JF_BREAK) break;
    }
    if (!completed) return bn_jinja_eval_exec_body(c, sc, s->v2, s->n2);
    return BITNET_OK;
#undef it
}

static bitnet_status bn_jinja_eval_exec_stmt(jctx *c, jscope *sc, const jnode *s) {
    bitnet_status st;
    if ((st = bn_jinja_eval_enter(c))) return st;
    c->line = s->line;
    jv v;
    int r = 0;
    switch (s->k) {
    case S_TEXT:
        st = bn_jinja_eval_out_put(c, c->out, s->lit.u.s);
        break;
    case S_OUT: {
        jstr str;
        if ((st = bn_jinja_eval_eval(c, sc, s->a, &v))) return st;
        c->line = s->line;
        if ((st = bn_jv_to_str(c, v, &str))) return st;
        st = bn_jinja_eval_out_put(c, c->out, str);
        break;
    }
    case S_IF:
        if ((st = bn_jinja_eval_eval(c, sc, s->a, &v))) return st;
        r = bn_jv_truthy(v) ? bn_jinja_eval_exec_body(c, sc, s->v, s->n) : bn_jinja_eval_exec_body(c, sc, s->v2, s->n2);
        break;
    case S_FOR:
        st = bn_jinja_eval_exec_for(c, sc, s);
        break;
    case S_SET:
        if ((st = bn_jinja_eval_eval(c, sc, s->a, &v))) return st;
        c->line = s->line;
        st = bn_jinja_eval_assign(c, sc, s, v);
        break;
    case S_SETBLOCK:
    case S_FILTERBLOCK: {
        jout o = {0}, *saved = c->out;
        jstr text;
        c->out = &o;
        r = bn_jinja_eval_exec_body(c, sc, s->v, s->n);
        c->out = saved;
        if (r == 0) r = bn_jinja_eval_out_to_str(c, &o, &text);
        bn_jinja_eval_out_free(c, &o);
        if (r) break;
        c->blockval = bn_jv_str(text);
        if ((st = bn_jinja_eval_eval(c, sc, s->a, &v))) return st; /* the block's filters applied to its text */
        c->line = s->line;
        if (s->k == S_SETBLOCK) {
            st = bn_jinja_eval_assign(c, sc, s, v);
        } else {
            jstr str;
            if ((st = bn_jv_to_str(c, v, &str))) return st;
            st = bn_jinja_eval_out_put(c, c->out, str);
        }
        break;
    }
    case S_MACRO: {
        jmacro *m = bn_ja_alloc(c, sizeof *m);
        if (!m) return ja_error(c);
        m->def = s;
        m->closure = sc;
        v = bn_jv_undef();
        v.t = JV_MACRO;
        v.u.mac = m;
        st = bn_jinja_eval_scope_set(c, sc, s->name, v);
        break;
    }
    case S_CALLBLOCK: {
        jmacro *m = bn_ja_alloc(c, sizeof *m);
        if (!m) return ja_error(c);
        m->def = s;
        m->closure = sc;
        c->caller = bn_jv_undef();
        c->caller.t = JV_MACRO;
        c->caller.u.mac = m;
        jstr str;
        st = bn_jinja_eval_eval(c, sc, s->a, &v);
        c->caller = bn_jv_undef();
        if (st) return st;
        if ((st = bn_jv_to_str(c, v, &str))) return st;
        st = bn_jinja_eval_out_put(c, c->out, str);
        break;
    }
    case S_BREAK: r = JF_BREAK; break;
    case S_CONTINUE: r = JF_CONTINUE; break;
    case S_GEN: r = bn_jinja_eval_exec_body(c, sc, s->v, s->n); break;
    default:
        return jerr(c, BITNET_E_INTERNAL, "unknown statement node %d", (int)s->k);
    }
    if (st) return st;
    c->depth--;
    return r;
}

static bitnet_status bn_jinja_eval_exec_body(jctx *c, jscope *sc, jnode *const *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int r = bn_jinja_eval_exec_stmt(c, sc, v[i]);
        if (r) return r;
    }
    return BITNET_OK;
}

bitnet_status bn_je_call_macro(jctx *c, const jmacro *m, const jargs *a, jv *out) {
    bitnet_status st;
    const jnode *d = m->def;
    if (a->npos > d->nnames)
        return jerr(c, BITNET_E_UNSUPPORTED, "macro '%.*s' takes %zu arguments, %zu given (varargs are not supported)",
                    (int)d->name.n, d->name.p, d->nnames, a->npos);
    jscope *msp = bn_ja_alloc(c, sizeof *msp); /* in the arena: a macro defined inside may outlive the call */
    if (!msp) return ja_error(c);
    memset(msp, 0, sizeof *msp);
    msp->parent = m->closure;
#define ms (*msp)
    jv caller = c->caller;
    c->caller = bn_jv_undef();
    if (caller.t == JV_MACRO && (st = bn_jinja_eval_scope_set(c, &ms, bn_js_lit("caller"), caller))) return st;
    for (size_t i = 0; i < d->nnames; i++) {
        jv val = bn_jv_undef_named(d->names[i]);
        int have = 0;
        if (i < a->npos) { val = a->pos[i]; have = 1; }
        for (size_t k = 0; k < a->nkw; k++)
            if (bn_js_eq(a->kwn[k], d->names[i])) {
                if (have) return jerr(c, BITNET_E_FORMAT, "macro '%.*s' got multiple values for argument '%.*s'",
                                      (int)d->name.n, d->name.p, (int)d->names[i].n, d->names[i].p);
                val = a->kwv[k];
                have = 1;
            }
        size_t first_def = d->nnames - d->n2;
        if (!have && i >= first_def && (st = bn_jinja_eval_eval(c, &ms, d->v2[i - first_def], &val))) return st;
        if ((st = bn_jinja_eval_scope_set(c, &ms, d->names[i], val))) return st;
    }
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i;
        for (i = 0; i < d->nnames && !bn_js_eq(a->kwn[k], d->names[i]); i++) {}
        if (i == d->nnames)
            return jerr(c, BITNET_E_UNSUPPORTED, "macro '%.*s' has no argument '%.*s' (kwargs are not supported)",
                        (int)d->name.n, d->name.p, (int)a->kwn[k].n, a->kwn[k].p);
    }
    jout o = {0}, *saved = c->out;
    c->out = &o;
    int r = bn_jinja_eval_exec_body(c, &ms, d->v, d->n);
    c->out = saved;
    jstr text;
    if (r == 0) r = bn_jinja_eval_out_to_str(c, &o, &text);
    bn_jinja_eval_out_free(c, &o);
    if (r) return r < 0 ? (bitnet_status)r : jerr(c, BITNET_E_FORMAT, "break/continue outside of a loop");
    *out = bn_jv_str(text);
    return BITNET_OK;
#undef ms
}

/* ---- entry point ---------------------------------------------------------------------------------- */

void bn_chat_text_free(bn_chat_text *t) {
    if (!t) return;
    bn_free(t->text);
    bn_free(t->content);
    memset(t, 0, sizeof *t);
}

static bitnet_status bn_jinja_eval_str_arg(jctx *c, const char *z, jv *out, int from_msg, const char *what, size_t i) {
    size_t n = strlen(z);
    if (!bn_utf8_valid(z, n))
        return bn_err(BITNET_E_INVALID_UTF8, "chat message %zu: the %s is not valid UTF-8", i, what);
    uint8_t *m = NULL;
    if (from_msg && n) {
        m = bn_ja_alloc(c, n);
        if (!m) return ja_error(c);
        memset(m, 1, n);
    }
    jstr s = {z, m, n};
    *out = bn_jv_str(s);
    return BITNET_OK;
}

bitnet_status bn_jinja_render(const char *tmpl, size_t len, const bn_jinja_input *in, bn_chat_text *out) {
    if (!tmpl || !in || !out || (!in->msgs && in->n_msgs))
        return bn_err(BITNET_E_INVALID_ARG, "bn_jinja_render: NULL argument");
    memset(out, 0, sizeof *out);
    bn_jinja_limits lim = {0};
    if (in->limits) lim = *in->limits;
    if (!lim.max_template) lim.max_template = BN_JINJA_DEFAULT_MAX_TEMPLATE;
    if (!lim.max_output) lim.max_output = BN_JINJA_DEFAULT_MAX_OUTPUT;
    if (!lim.max_memory) lim.max_memory = BN_JINJA_DEFAULT_MAX_MEMORY;
    if (!lim.max_steps) lim.max_steps = BN_JINJA_DEFAULT_MAX_STEPS;
    if (!lim.max_depth) lim.max_depth = BN_JINJA_DEFAULT_MAX_DEPTH;
    if (len > lim.max_template)
        return bn_err(BITNET_E_UNSUPPORTED, "chat template of %zu bytes exceeds the renderer's limit of %zu", len,
                      lim.max_template);
    if (!bn_utf8_valid(tmpl, len)) return bn_err(BITNET_E_FORMAT, "the chat template is not valid UTF-8");
    for (size_t i = 0; i < in->n_msgs; i++)
        if (!in->msgs[i].role || !in->msgs[i].content)
            return bn_err(BITNET_E_INVALID_ARG, "chat message %zu has a NULL %s", i,
                          !in->msgs[i].role ? "role" : "content");

    jctx c;
    memset(&c, 0, sizeof c);
    c.ar.cap = lim.max_memory;
    c.in = in;
    c.max_output = lim.max_output;
    c.max_steps = lim.max_steps;
    c.max_depth = lim.max_depth;
    c.line = 1;
    jnode **body = NULL;
    size_t nbody = 0;
    jout o = {0};
    bitnet_status st = bn_jp_parse(&c, tmpl, len, &body, &nbody);
    if (st) goto done;

    /* the variables transformers passes: messages, add_generation_prompt, the special
     * tokens, tools = documents = None */
    jscope root = {0};
    c.root = &root;
    jv msgs;
    if ((st = bn_jv_list_new(&c, in->n_msgs, 0, &msgs))) goto done;
    for (size_t i = 0; i < in->n_msgs; i++) {
        jv d, r, t;
        if ((st = bn_jv_dict_new(&c, 2, &d)) || (st = bn_jinja_eval_str_arg(&c, in->msgs[i].role, &r, 1, "role", i)) ||
            (st = bn_jinja_eval_str_arg(&c, in->msgs[i].content, &t, 1, "content", i)) ||
            (st = bn_jd_set(&c, d.u.d, bn_jv_str(bn_js_lit("role")), r)) ||
            (st = bn_jd_set(&c, d.u.d, bn_jv_str(bn_js_lit("content")), t)))
            goto done;
        msgs.u.l->v[i] = d;
    }
    if ((st = bn_jinja_eval_scope_set(&c, &root, bn_js_lit("messages"), msgs)) ||
        (st = bn_jinja_eval_scope_set(&c, &root, bn_js_lit("add_generation_prompt"), bn_jv_bool(in->add_generation_prompt))) ||
        (st = bn_jinja_eval_scope_set(&c, &root, bn_js_lit("tools"), bn_jv_none())) ||
        (st = bn_jinja_eval_scope_set(&c, &root, bn_js_lit("documents"), bn_jv_none())))
        goto done;
    const char *tok_names[4] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    const char *tok_vals[4] = {in->bos_token, in->eos_token, in->unk_token, in->pad_token};
    for (int k = 0; k < 4; k++) {
        if (!tok_vals[k]) continue;
        jv v;
        if ((st = bn_jinja_eval_str_arg(&c, tok_vals[k], &v, 0, tok_names[k], 0)) ||
            (st = bn_jinja_eval_scope_set(&c, &root, bn_js_lit(tok_names[k]), v)))
            goto done;
    }
    c.out = &o;
    int r = bn_jinja_eval_exec_body(&c, &root, body, nbody);
    if (r > 0) st = jerr(&c, BITNET_E_FORMAT, "break/continue outside of a loop");
    else st = (bitnet_status)r;
    if (st) goto done;
    if (!o.p) {
        o.p = bn_malloc(1);
        o.m = bn_malloc(1);
        if (!o.p || !o.m) { st = bn_err(BITNET_E_NOMEM, "out of memory rendering the chat template"); goto done; }
        o.p[0] = 0;
    }
    out->text = o.p;
    out->content = o.m;
    out->n = o.n;
    memset(&o, 0, sizeof o);
done:
    bn_free(o.p);
    bn_free(o.m);
    bn_ja_free_all(&c.ar);
    return st;
}
