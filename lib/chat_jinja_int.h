/*
 * chat_jinja_int.h -- internals shared by the files of the Jinja renderer:
 *   chat_jinja_parse.c  lexer and parser (template text -> syntax tree)
 *   chat_jinja_eval.c   evaluation of the tree, values, scopes, output
 *   chat_jinja_lib.c    filters, tests, methods, globals, repr and JSON
 * All memory of one rendering comes from one arena (freed at the end), so values
 * need no ownership rules; the arena's total is capped (bn_jinja_limits.max_memory).
 */
#ifndef BN_CHAT_JINJA_INT_H
#define BN_CHAT_JINJA_INT_H

#include "chat_jinja.h"

#include <stddef.h>

/* ---- arena --------------------------------------------------------------------------- */

typedef struct jchunk {
    struct jchunk *next;
    size_t         used, cap;
    max_align_t    data[];
} jchunk;

typedef struct jarena {
    jchunk *head;
    size_t  total, cap; /* bytes taken from the system, and the limit */
    int     oom;        /* the last failure was the system's (not the limit) */
} jarena;

/* ---- strings: UTF-8 bytes plus, per byte, whether it came from a message ----------- */

typedef struct jstr {
    const char    *p;
    const uint8_t *m; /* NULL: no byte came from a message */
    size_t         n;
} jstr;

/* ---- values ----------------------------------------------------------------------------- */

enum {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_NS,     /* namespace(): a mutable dict reached through attributes */
    JV_LOOP,   /* the `loop` variable of a for loop                    */
    JV_FUNC,   /* a global function (id)                               */
    JV_MACRO,
    JV_METHOD, /* a bound method: receiver + method id                 */
    JV_ITER    /* a generator (what select, map, items, ... return): true,
                  no len(), iterated once (u.l, consumed up to u.l->pos)   */
};

/* kinds of JV_LIST */
enum { TU_LIST = 0, TU_TUPLE = 1, TU_RANGE = 2, TU_KEYS = 3, TU_VALUES = 4, TU_ITEMS = 5 };
#define JV_IS_VIEW(v) ((v).t == JV_LIST && (v).tuple >= TU_KEYS) /* dict.keys() / values() / items() */

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jloop jloop;
typedef struct jmacro jmacro;
typedef struct jbound jbound;

typedef struct jv {
    uint8_t  t;
    uint8_t  tuple; /* JV_LIST: TU_* (repr, ==, indexing differ) */
    uint16_t id;    /* JV_FUNC, JV_METHOD: which one         */
    union {
        int     b;
        int64_t i;
        double  f;
        jstr    s;      /* JV_STR; JV_UNDEF: the name that was undefined (may be empty) */
        jlist  *l;
        jdict  *d;      /* JV_DICT, JV_NS */
        jloop  *lp;
        jmacro *mac;
        jbound *bm;
    } u;
} jv;

struct jlist {
    size_t n;
    jv    *v;
    size_t pos;                         /* JV_ITER: items already consumed                  */
    bitnet_status err;                  /* JV_ITER: the error that follows the n items     */
    const char   *errmsg;
    int64_t       r_start, r_stop, r_step; /* a range(): its arguments (for repr)         */
};

struct jdict { /* insertion order; linear lookup (templates make small dicts) */
    size_t n, cap;
    jv    *k, *v;
};

struct jloop {
    size_t    index0, length;
    const jv *items;
};

struct jbound {
    jv self;
};

/* ---- syntax tree ---------------------------------------------------------------------- */

enum {
    /* statements */
    S_TEXT, S_OUT, S_IF, S_FOR, S_SET, S_SETBLOCK, S_FILTERBLOCK, S_MACRO, S_CALLBLOCK, S_BREAK, S_CONTINUE,
    S_GEN,
    /* expressions */
    E_CONST, E_NAME, E_LIST, E_DICT, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST,
    E_NOT, E_NEG, E_POS, E_BIN, E_CONCAT, E_AND, E_OR, E_CMP, E_COND, E_BLOCKVAL
};

/* binary and comparison operators */
enum {
    OPB_ADD, OPB_SUB, OPB_MUL, OPB_DIV, OPB_FLOORDIV, OPB_MOD, OPB_POW,
    OPC_EQ, OPC_NE, OPC_LT, OPC_LE, OPC_GT, OPC_GE, OPC_IN, OPC_NOTIN
};

/* S_SET / S_SETBLOCK / S_FOR targets */
enum { TG_NAME = 0, TG_TUPLE = 1, TG_NSATTR = 2 };

typedef struct jnode jnode;
struct jnode {
    uint16_t k, op;
    uint32_t line;
    jnode   *a, *b, *c;
    jnode   *dyn_args, *dyn_kwargs; /* E_CALL / E_FILTER: *args, **kwargs */
    jnode  **v;       /* body, items, positional args, keys, compare operands */
    size_t   n;
    jnode  **v2;      /* else body, kwarg values, dict values, macro defaults  */
    size_t   n2;
    jstr     name;    /* name, attribute, filter / test / macro name          */
    jstr    *names;   /* kwarg names, target names, macro parameters           */
    size_t   nnames;
    uint8_t *ops;     /* E_CMP operators                                        */
    jv       lit;     /* E_CONST, S_TEXT                                        */
};

struct jmacro {
    const jnode *def;
    struct jscope *closure;
};

/* ---- scopes ------------------------------------------------------------------------------ */

typedef struct jvar {
    jstr name;
    jv   val;
} jvar;

typedef struct jscope {
    struct jscope *parent;
    jvar          *v;
    size_t         n, cap;
} jscope;

/* ---- output ------------------------------------------------------------------------------ */

typedef struct jout {
    char    *p;
    uint8_t *m;
    size_t   n, cap;
} jout;

/* ---- one rendering --------------------------------------------------------------------- */

typedef struct jctx {
    jarena                ar;
    const bn_jinja_input *in;
    size_t                max_output;
    uint64_t              steps, max_steps;
    uint32_t              depth, max_depth;
    jout                 *out;         /* where S_TEXT / S_OUT write            */
    jscope               *root;
    uint32_t              line;        /* line being evaluated, for messages    */
    jv                    blockval;    /* the text of a set / filter block      */
    jv                    caller;      /* {% call %}: the caller() of the next macro call */
} jctx;

/* Control-flow results of executing statements (errors are negative statuses). */
#define JF_BREAK    1
#define JF_CONTINUE 2

/* ---- arena (chat_jinja_eval.c) --------------------------------------------------------- */
void *bn_ja_alloc(jctx *c, size_t size);  /* NULL: over the limit or out of memory (error set) */
void  bn_ja_free_all(jarena *a);
/* The status of the error a failed bn_ja_alloc recorded (never BITNET_OK). */
#define ja_error(c) ((c)->ar.oom ? BITNET_E_NOMEM : BITNET_E_UNSUPPORTED)

/* ---- errors ------------------------------------------------------------------------------- */
/* Record "chat template, line N: <message>" and evaluate to st (a macro, like bn_err, so
 * the compiler sees the status). */
void bn_jerr_set(jctx *c, const char *fmt, ...) BN_PRINTF(2, 3);
#define jerr(c, st, ...) (bn_jerr_set((c), __VA_ARGS__), (bitnet_status)(st))
/* Count evaluation work; fails when the step limit is exceeded. */
bitnet_status bn_jstep(jctx *c, uint64_t n);

/* ---- strings (chat_jinja_lib.c) -------------------------------------------------------------- */
jstr bn_js_lit(const char *s);                      /* a NUL-terminated literal, not from a message */
int  bn_js_eq(jstr a, jstr b);
int  bn_js_eqz(jstr a, const char *z);
int  bn_js_cmp(jstr a, jstr b);
/* A copy of n bytes of p with mask m (NULL: template bytes) in the arena. */
bitnet_status bn_js_new(jctx *c, const char *p, const uint8_t *m, size_t n, jstr *out);
bitnet_status bn_js_concat(jctx *c, jstr a, jstr b, jstr *out);
size_t bn_js_ncp(jstr s);                           /* code points (valid UTF-8 assumed) */
/* Python's str.isspace() for code point cp. */
int  bn_js_isspace_cp(uint32_t cp);

/* growable string builder in the arena */
typedef struct jsb {
    char    *p;
    uint8_t *m;
    size_t   n, cap;
    int      any; /* some byte came from a message */
} jsb;
bitnet_status bn_jsb_put(jctx *c, jsb *b, const char *p, size_t n, const uint8_t *m, int from_msg);
bitnet_status bn_jsb_puts(jctx *c, jsb *b, const char *z);
bitnet_status bn_jsb_str(jctx *c, jsb *b, jstr s);
jstr bn_jsb_done(jsb *b);

/* ---- values -------------------------------------------------------------------------------- */
static inline jv bn_jv_undef(void) { jv v; memset(&v, 0, sizeof v); v.t = JV_UNDEF; return v; }
static inline jv bn_jv_none(void) { jv v = bn_jv_undef(); v.t = JV_NONE; return v; }
static inline jv bn_jv_bool(int b) { jv v = bn_jv_undef(); v.t = JV_BOOL; v.u.b = b != 0; return v; }
static inline jv bn_jv_int(int64_t i) { jv v = bn_jv_undef(); v.t = JV_INT; v.u.i = i; return v; }
static inline jv bn_jv_float(double f) { jv v = bn_jv_undef(); v.t = JV_FLOAT; v.u.f = f; return v; }
static inline jv bn_jv_str(jstr s) { jv v = bn_jv_undef(); v.t = JV_STR; v.u.s = s; return v; }
jv bn_jv_undef_named(jstr name);

bitnet_status bn_jv_list_new(jctx *c, size_t n, int tuple, jv *out);   /* items zeroed (undefined) */
bitnet_status bn_jv_dict_new(jctx *c, size_t cap, jv *out);
/* Set key to val (replacing an equal key). */
bitnet_status bn_jd_set(jctx *c, jdict *d, jv key, jv val);
/* The value of key, or NULL. */
jv *bn_jd_get(jdict *d, jv key);
jv *bn_jd_getz(jdict *d, const char *key);
/* The deferred error of a generator (JV_ITER) consumed past its good items. */
bitnet_status bn_jv_iter_error(jctx *c, const jlist *l);

int  bn_jv_truthy(jv v);
int  bn_jv_eq(jv a, jv b);
/* Python <, <=, >, >= (a TypeError becomes a BITNET_E_FORMAT error). */
bitnet_status bn_jv_order(jctx *c, jv a, jv b, int *cmp);
const char *bn_jv_type_name(jv v);

/* str(v) as Jinja prints it ({{ v }}, ~, |string, |join). */
bitnet_status bn_jv_to_str(jctx *c, jv v, jstr *out);
/* Python repr(v) into b. */
bitnet_status bn_jv_repr(jctx *c, jsb *b, jv v);
/* transformers' tojson: json.dumps(v, ensure_ascii, indent, separators, sort_keys). */
typedef struct jjson_opts {
    int         ensure_ascii, sort_keys;
    int         indent_on;
    jstr        indent;        /* the indentation unit when indent_on */
    jstr        item_sep, key_sep;
} jjson_opts;
bitnet_status bn_jv_to_json(jctx *c, jsb *b, jv v, const jjson_opts *o, int level);

/* A for loop's sequence: the items of v (list, dict keys, string characters; undefined:
 * none).  Anything else is an error. */
bitnet_status bn_jv_iterate(jctx *c, jv v, const jv **items, size_t *n);
/* `needle in hay` (Python semantics; hay undefined: false). */
bitnet_status bn_jv_contains(jctx *c, jv needle, jv hay, int *res);

/* Getattr / getitem with jinja2's rules (undefined when missing). */
bitnet_status bn_jv_getattr(jctx *c, jv obj, jstr name, jv *out);
bitnet_status bn_jv_getitem(jctx *c, jv obj, jv key, jv *out);
bitnet_status bn_jv_slice(jctx *c, jv obj, jv start, jv stop, jv step, jv *out);

/* ---- library (chat_jinja_lib.c) --------------------------------------------------------- */

/* Call arguments. */
typedef struct jargs {
    jv    *pos;
    size_t npos;
    jstr  *kwn;
    jv    *kwv;
    size_t nkw;
} jargs;

bitnet_status bn_jl_filter(jctx *c, jstr name, jv in, const jargs *a, jv *out);
bitnet_status bn_jl_test(jctx *c, jstr name, jv in, const jargs *a, int *out);
/* The global named name (range, namespace, dict, raise_exception, strftime_now), or 0. */
int bn_jl_global(jstr name, jv *out);
/* Call a JV_FUNC or JV_METHOD. */
bitnet_status bn_jl_call(jctx *c, jv fn, const jargs *a, jv *out);
/* Method id of attribute `name` of a value of type t (str, dict, list), or 0 when the
 * type has no such attribute. */
int bn_jl_method_id(int t, jstr name);
/* Python's binary operators (OPB_*) (chat_jinja_eval.c). */
bitnet_status bn_je_binop(jctx *c, int op, jv a, jv b, jv *out);
/* Call a macro (chat_jinja_eval.c). */
bitnet_status bn_je_call_macro(jctx *c, const jmacro *m, const jargs *a, jv *out);

/* ---- parser (chat_jinja_parse.c) ---------------------------------------------------------- */

/* Whether jinja2 knows a filter / test of this name (it refuses a template that uses
 * an unknown one outside an if block or if expression when compiling it). */
int bn_jl_known_filter(jstr name);
int bn_jl_known_test(jstr name);

/* Parse template text into a statement list (top-level body). */
bitnet_status bn_jp_parse(jctx *c, const char *src, size_t len, jnode ***body, size_t *n);

#endif
