/*
 * chat_jinja_parse.c -- lexer and parser of the Jinja renderer (chat_jinja.h).
 *
 * The lexer follows jinja2's with the options transformers uses for chat templates
 * (trim_blocks, lstrip_blocks, keep_trailing_newline off):
 *   - "\r\n" and "\r" become "\n" everywhere; one "\n" at the very end is dropped;
 *   - text ends at the first "{{", "{%" or "{#" (or a "{% raw %}" tag);
 *   - "{%-" / "{{-" / "{#-" strip all whitespace before the tag, "-%}" / "-}}" /
 *     "-#}" all whitespace after it; "{%+" keeps the text before the tag as it is;
 *   - lstrip_blocks: before "{%" and "{#" (not "{{"), spaces and tabs between the start
 *     of a line and the tag are removed;
 *   - trim_blocks: the first newline after "%}" or "#}" is removed ("+%}" keeps it);
 *   - inside a tag, "%}" / "}}" only end it when brackets are balanced.
 * "Whitespace" is Python's (str.isspace), as jinja2's \s is.  String literals are
 * decoded like Python's unicode-escape codec (\n, \t, \xNN, \uNNNN, octal, ...).
 * The parser is recursive descent with jinja2's precedence (lowest first): conditional
 * `a if b else c`, or, and, not, comparisons and `in`, + -, ~, * / // %, **, unary - +,
 * then postfix . [] () and filters | and tests `is`.
 */
#include "chat_jinja_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- tokens ------------------------------------------------------------------------------- */

enum { TK_EOF, TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END, TK_NAME, TK_STRING,
       TK_INT, TK_FLOAT, TK_OP };

enum {
    OP_ADD, OP_SUB, OP_DIV, OP_FLOORDIV, OP_MUL, OP_MOD, OP_POW, OP_TILDE, OP_LBRACKET, OP_RBRACKET,
    OP_LPAREN, OP_RPAREN, OP_LBRACE, OP_RBRACE, OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE, OP_ASSIGN,
    OP_DOT, OP_COLON, OP_PIPE, OP_COMMA, OP_SEMICOLON
};

static const struct { const char *s; uint8_t op; } k_ops[] = { /* longest first */
    {"//", OP_FLOORDIV}, {"**", OP_POW}, {"==", OP_EQ}, {"!=", OP_NE}, {">=", OP_GE}, {"<=", OP_LE},
    {"+", OP_ADD}, {"-", OP_SUB}, {"/", OP_DIV}, {"*", OP_MUL}, {"%", OP_MOD}, {"~", OP_TILDE},
    {"[", OP_LBRACKET}, {"]", OP_RBRACKET}, {"(", OP_LPAREN}, {")", OP_RPAREN}, {"{", OP_LBRACE},
    {"}", OP_RBRACE}, {">", OP_GT}, {"<", OP_LT}, {"=", OP_ASSIGN}, {".", OP_DOT}, {":", OP_COLON},
    {"|", OP_PIPE}, {",", OP_COMMA}, {";", OP_SEMICOLON},
};

typedef struct jtok {
    uint8_t  k, op;
    uint32_t line;
    jstr     s;  /* TK_DATA, TK_NAME, TK_STRING (decoded) */
    int64_t  i;
    double   f;
} jtok;

typedef struct lexer {
    jctx       *c;
    const char *s;
    size_t      n, pos;
    uint32_t    line;
    jtok       *t;
    size_t      nt, capt;
    int         line_starting;
} lexer;

static bitnet_status bn_jinja_parse_lx_push(lexer *L, jtok t) {
    if (L->nt == L->capt) {
        size_t nc = L->capt ? L->capt * 2 : 256;
        jtok *nt = bn_ja_alloc(L->c, nc * sizeof *nt);
        if (!nt) return ja_error(L->c);
        if (L->nt) memcpy(nt, L->t, L->nt * sizeof *nt);
        L->t = nt;
        L->capt = nc;
    }
    L->t[L->nt++] = t;
    return BITNET_OK;
}

static uint32_t bn_jinja_parse_count_nl(const char *p, size_t n) {
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) k += p[i] == '\n';
    return k;
}

/* Length of the Python whitespace character at p (0 if none). */
static size_t bn_jinja_parse_ws_len(const char *p, size_t n) {
    uint32_t cp;
    size_t l = bn_utf8_decode((const unsigned char *)p, n, &cp);
    return l && bn_js_isspace_cp(cp) ? l : 0;
}

/* End of the whitespace run starting at i. */
static size_t bn_jinja_parse_skip_ws(const char *s, size_t n, size_t i) {
    size_t l;
    while (i < n && (l = bn_jinja_parse_ws_len(s + i, n - i)) > 0) i += l;
    return i;
}

/* Start of the trailing whitespace of s[a..b) (Python rstrip). */
static size_t bn_jinja_parse_rstrip_pos(const char *s, size_t a, size_t b) {
    while (b > a) {
        size_t k = b - 1;
        while (k > a && ((unsigned char)s[k] & 0xc0) == 0x80) k--; /* start of the last character */
        if (!bn_jinja_parse_ws_len(s + k, b - k) || bn_jinja_parse_ws_len(s + k, b - k) != b - k) break;
        b = k;
    }
    return b;
}

/* Emit the text s[a..b) that precedes a tag, applying "-" / lstrip_blocks. */
static bitnet_status bn_jinja_parse_lx_text(lexer *L, size_t a, size_t b, char sign, int is_var) {
    uint32_t line = L->line;
    L->line += bn_jinja_parse_count_nl(L->s + a, b - a);
    if (sign == '-') {
        b = bn_jinja_parse_rstrip_pos(L->s, a, b);
    } else if (sign != '+' && !is_var) {
        size_t lp = b;
        while (lp > a && L->s[lp - 1] != '\n') lp--;
        if ((lp > a || L->line_starting) && lp < b) {
            size_t e = bn_jinja_parse_skip_ws(L->s, b, lp);
            if (e == b) b = lp;
        }
    }
    if (b <= a) return BITNET_OK;
    jtok t = {0};
    t.k = TK_DATA;
    t.line = line;
    t.s.p = L->s + a;
    t.s.n = b - a;
    return bn_jinja_parse_lx_push(L, t);
}

/* Match "%}" (or "}}" / "#}") with its modifiers at pos: "+%}", "-%}" + whitespace, or
 * "%}" + one newline (trim_blocks, not for variables).  Returns the end, or 0. */
static size_t bn_jinja_parse_match_end(const lexer *L, size_t pos, char c1, int trim) {
    const char *s = L->s;
    size_t n = L->n;
    if (pos + 3 <= n && s[pos] == '+' && s[pos + 1] == c1 && s[pos + 2] == '}' && c1 != '}') return pos + 3;
    if (pos + 3 <= n && s[pos] == '-' && s[pos + 1] == c1 && s[pos + 2] == '}') return bn_jinja_parse_skip_ws(s, n, pos + 3);
    if (pos + 2 <= n && s[pos] == c1 && s[pos + 1] == '}') {
        pos += 2;
        if (trim && pos < n && s[pos] == '\n') pos++;
        return pos;
    }
    return 0;
}

static int bn_jinja_parse_is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static int bn_jinja_parse_is_alpha_(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; }
static int bn_jinja_parse_hexv(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* (\d+_)*\d+ at i: returns the end or i. */
static size_t bn_jinja_parse_digits_us(const char *s, size_t n, size_t i) {
    size_t j = i;
    for (;;) {
        size_t k = j;
        while (k < n && bn_jinja_parse_is_digit(s[k])) k++;
        if (k == j) return j == i ? i : j - 1; /* j - 1: a trailing '_' is not part of it */
        j = k;
        if (j < n && s[j] == '_' && j + 1 < n && bn_jinja_parse_is_digit(s[j + 1])) { j++; continue; }
        return j;
    }
}

/* jinja2's float_re at i; returns the end or 0. */
static size_t bn_jinja_parse_match_float(const char *s, size_t n, size_t i) {
    if (i > 0 && s[i - 1] == '.') return 0;
    size_t j = bn_jinja_parse_digits_us(s, n, i);
    if (j == i) return 0;
    size_t k = j, frac = 0;
    if (k < n && s[k] == '.') {
        size_t e = bn_jinja_parse_digits_us(s, n, k + 1);
        if (e > k + 1) { frac = e; }
    }
    size_t after = frac ? frac : j;
    if (after < n && (s[after] == 'e' || s[after] == 'E')) {
        size_t q = after + 1;
        if (q < n && (s[q] == '+' || s[q] == '-')) q++;
        size_t e = bn_jinja_parse_digits_us(s, n, q);
        if (e > q) return e;
    }
    return frac ? frac : 0;
}

/* jinja2's integer_re at i (binary, octal, hex, decimal); returns the end or 0 and the
 * base. */
static size_t bn_jinja_parse_match_int(const char *s, size_t n, size_t i, int *base) {
    if (s[i] == '0' && i + 1 < n) {
        char x = s[i + 1];
        int b = (x == 'b' || x == 'B') ? 2 : (x == 'o' || x == 'O') ? 8 : (x == 'x' || x == 'X') ? 16 : 0;
        if (b) {
            size_t j = i + 2, last = 0;
            for (;;) {
                size_t q = j;
                if (q < n && s[q] == '_') q++;
                if (q < n && bn_jinja_parse_hexv(s[q]) >= 0 && bn_jinja_parse_hexv(s[q]) < b) { j = q + 1; last = j; }
                else break;
            }
            if (last) { *base = b; return last; }
        }
    }
    *base = 10;
    if (s[i] >= '1' && s[i] <= '9') {
        size_t j = i + 1;
        for (;;) {
            size_t q = j;
            if (q < n && s[q] == '_') q++;
            if (q < n && bn_jinja_parse_is_digit(s[q])) j = q + 1;
            else break;
        }
        return j;
    }
    if (s[i] == '0') {
        size_t j = i + 1;
        for (;;) {
            size_t q = j;
            if (q < n && s[q] == '_') q++;
            if (q < n && s[q] == '0') j = q + 1;
            else break;
        }
        return j;
    }
    return 0;
}

static bitnet_status bn_jinja_parse_put_cp(jctx *c, jsb *b, uint32_t cp) {
    char u[4];
    size_t k;
    if (cp < 0x80) { u[0] = (char)cp; k = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xc0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3f)); k = 2; }
    else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[3] = (char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    return bn_jsb_put(c, b, u, k, NULL, 0);
}

/* Decode a string literal's body as jinja2 does: non-ASCII characters are first
 * written as \xNN / \uNNNN / \UNNNNNNNN (Python's backslashreplace), then the
 * unicode-escape codec runs over the result. */
static bitnet_status bn_jinja_parse_decode_string(lexer *L, const char *p, size_t n, jstr *out) {
    jctx *c = L->c;
    jsb esc = {0}, b = {0};
    bitnet_status st;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = bn_utf8_decode((const unsigned char *)p + i, n - i, &cp);
        if (!l) return jerr(c, BITNET_E_INVALID_ARG, "invalid UTF-8 in a string literal");
        if (cp < 0x80) {
            if ((st = bn_jsb_put(c, &esc, p + i, 1, NULL, 0))) return st;
        } else {
            char tmp[16];
            if (cp < 0x100) snprintf(tmp, sizeof tmp, "\\x%02x", (unsigned)cp);
            else if (cp < 0x10000) snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)cp);
            else snprintf(tmp, sizeof tmp, "\\U%08x", (unsigned)cp);
            if ((st = bn_jsb_puts(c, &esc, tmp))) return st;
        }
        i += l;
    }
    const char *s = esc.p;
    size_t m = esc.n;
    for (size_t i = 0; i < m;) {
        char ch = s[i];
        if (ch != '\\') {
            if ((st = bn_jsb_put(c, &b, s + i, 1, NULL, 0))) return st;
            i++;
            continue;
        }
        if (i + 1 >= m) return jerr(c, BITNET_E_FORMAT, "string literal ends with a backslash");
        char e = s[i + 1];
        uint32_t cp = 0;
        int have = 1;
        size_t adv = 2;
        switch (e) {
        case '\n': have = 0; break;
        case '\\': cp = '\\'; break;
        case '\'': cp = '\''; break;
        case '"': cp = '"'; break;
        case 'a': cp = 7; break;
        case 'b': cp = 8; break;
        case 'f': cp = 12; break;
        case 'n': cp = 10; break;
        case 'r': cp = 13; break;
        case 't': cp = 9; break;
        case 'v': cp = 11; break;
        case 'x': case 'u': case 'U': {
            size_t nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            if (i + 2 + nd > m) return jerr(c, BITNET_E_FORMAT, "truncated \\%c escape in a string literal", e);
            for (size_t k = 0; k < nd; k++) {
                int h = bn_jinja_parse_hexv(s[i + 2 + k]);
                if (h < 0) return jerr(c, BITNET_E_FORMAT, "truncated \\%c escape in a string literal", e);
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp > 0x10ffff) return jerr(c, BITNET_E_FORMAT, "illegal Unicode character in a string literal");
            adv = 2 + nd;
            break;
        }
        case 'N':
            return jerr(c, BITNET_E_UNSUPPORTED, "\\N{...} escapes in string literals are not supported");
        default:
            if (e >= '0' && e <= '7') {
                size_t k = i + 1;
                while (k < m && k < i + 4 && s[k] >= '0' && s[k] <= '7') cp = cp * 8 + (uint32_t)(s[k++] - '0');
                adv = k - i;
            } else { /* unknown escape: kept as it is */
                if ((st = bn_jsb_put(c, &b, s + i, 2, NULL, 0))) return st;
                have = 0;
            }
        }
        if (have) {
            if (cp >= 0xd800 && cp <= 0xdfff)
                return jerr(c, BITNET_E_UNSUPPORTED, "a string literal with a surrogate code point (\\u%04x)", (unsigned)cp);
            if ((st = bn_jinja_parse_put_cp(c, &b, cp))) return st;
        }
        i += adv;
    }
    *out = bn_jsb_done(&b);
    return BITNET_OK;
}

/* Tokens inside a tag, up to and including its end. */
static bitnet_status bn_jinja_parse_lx_tag(lexer *L, int kind) {
    jctx *c = L->c;
    const char *s = L->s;
    size_t n = L->n;
    char c1 = kind == TK_VAR_BEGIN ? '}' : '%';
    uint8_t bal[256];
    size_t nbal = 0;
    bitnet_status st;
    for (;;) {
        size_t pos = L->pos;
        c->line = L->line;
        if (pos >= n) return jerr(c, BITNET_E_FORMAT, "unexpected end of template inside a %s tag",
                                  kind == TK_VAR_BEGIN ? "{{ }}" : "{% %}");
        if (!nbal) {
            size_t e = bn_jinja_parse_match_end(L, pos, c1, kind == TK_BLOCK_BEGIN);
            if (e) {
                jtok t = {0};
                t.k = kind == TK_VAR_BEGIN ? TK_VAR_END : TK_BLOCK_END;
                t.line = L->line;
                if ((st = bn_jinja_parse_lx_push(L, t))) return st;
                L->line += bn_jinja_parse_count_nl(s + pos, e - pos);
                L->line_starting = s[e - 1] == '\n';
                L->pos = e;
                return BITNET_OK;
            }
        }
        size_t e = bn_jinja_parse_skip_ws(s, n, pos);
        if (e > pos) {
            L->line += bn_jinja_parse_count_nl(s + pos, e - pos);
            L->pos = e;
            continue;
        }
        jtok t = {0};
        t.line = L->line;
        int base;
        if ((e = bn_jinja_parse_match_float(s, n, pos)) > 0) {
            char buf[128];
            size_t k = 0;
            for (size_t i = pos; i < e && k + 1 < sizeof buf; i++)
                if (s[i] != '_') buf[k++] = s[i];
            if (e - pos >= sizeof buf) return jerr(c, BITNET_E_UNSUPPORTED, "a float literal of %zu characters", e - pos);
            buf[k] = 0;
            t.k = TK_FLOAT;
            t.f = strtod(buf, NULL);
        } else if ((e = bn_jinja_parse_match_int(s, n, pos, &base)) > 0) {
            uint64_t v = 0;
            size_t i = pos + (base != 10 ? 2 : 0);
            for (; i < e; i++) {
                if (s[i] == '_') continue;
                uint64_t d = (uint64_t)bn_jinja_parse_hexv(s[i]);
                if (v > (UINT64_MAX - d) / (uint64_t)base || v * (uint64_t)base + d > (uint64_t)INT64_MAX)
                    return jerr(c, BITNET_E_UNSUPPORTED, "integer literal '%.*s' is too large (64 bits)",
                                (int)(e - pos), s + pos);
                v = v * (uint64_t)base + d;
            }
            t.k = TK_INT;
            t.i = (int64_t)v;
        } else if (bn_jinja_parse_is_alpha_(s[pos])) {
            e = pos + 1;
            while (e < n && (bn_jinja_parse_is_alpha_(s[e]) || bn_jinja_parse_is_digit(s[e]))) e++;
            if (e < n && ((unsigned char)s[e] & 0x80))
                return jerr(c, BITNET_E_UNSUPPORTED, "non-ASCII identifiers are not supported");
            t.k = TK_NAME;
            t.s.p = s + pos;
            t.s.n = e - pos;
        } else if (s[pos] == '\'' || s[pos] == '"') {
            char q = s[pos];
            size_t i = pos + 1;
            while (i < n && s[i] != q) i += s[i] == '\\' && i + 1 < n ? 2 : 1;
            if (i >= n) return jerr(c, BITNET_E_FORMAT, "unterminated string literal");
            e = i + 1;
            t.k = TK_STRING;
            if ((st = bn_jinja_parse_decode_string(L, s + pos + 1, i - pos - 1, &t.s))) return st;
        } else {
            size_t k;
            for (k = 0; k < sizeof k_ops / sizeof k_ops[0]; k++) {
                size_t l = strlen(k_ops[k].s);
                if (pos + l <= n && memcmp(s + pos, k_ops[k].s, l) == 0) break;
            }
            if (k == sizeof k_ops / sizeof k_ops[0]) {
                if ((unsigned char)s[pos] & 0x80)
                    return jerr(c, BITNET_E_UNSUPPORTED, "non-ASCII identifiers are not supported");
                return jerr(c, BITNET_E_FORMAT, "unexpected character '%c' inside a tag", s[pos]);
            }
            t.k = TK_OP;
            t.op = k_ops[k].op;
            e = pos + strlen(k_ops[k].s);
            if (t.op == OP_LBRACE || t.op == OP_LPAREN || t.op == OP_LBRACKET) {
                if (nbal == sizeof bal) return jerr(c, BITNET_E_UNSUPPORTED, "brackets nested deeper than %zu", sizeof bal);
                bal[nbal++] = t.op == OP_LBRACE ? OP_RBRACE : t.op == OP_LPAREN ? OP_RPAREN : OP_RBRACKET;
            } else if (t.op == OP_RBRACE || t.op == OP_RPAREN || t.op == OP_RBRACKET) {
                if (!nbal) return jerr(c, BITNET_E_FORMAT, "unexpected '%c'", s[pos]);
                if (bal[--nbal] != t.op) return jerr(c, BITNET_E_FORMAT, "unexpected '%c'", s[pos]);
            }
        }
        if ((st = bn_jinja_parse_lx_push(L, t))) return st;
        L->line += bn_jinja_parse_count_nl(s + pos, e - pos);
        L->pos = e;
    }
}

/* "{%" sign? ws* "raw" ws* ("-%}" ws* | "%}") at i: returns the end or 0. */
static size_t bn_jinja_parse_match_raw_begin(const lexer *L, size_t i, const char *word) {
    const char *s = L->s;
    size_t n = L->n, j = i + 2, wl = strlen(word);
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    j = bn_jinja_parse_skip_ws(s, n, j);
    if (j + wl > n || memcmp(s + j, word, wl) != 0) return 0;
    j = bn_jinja_parse_skip_ws(s, n, j + wl);
    return j;
}

static bitnet_status bn_jinja_parse_lex(lexer *L) {
    jctx *c = L->c;
    const char *s = L->s;
    size_t n = L->n;
    bitnet_status st;
    L->line = 1;
    L->line_starting = 1;
    while (L->pos < n) {
        size_t i = L->pos;
        c->line = L->line;
        while (i + 1 < n && !(s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#'))) i++;
        if (i + 1 >= n) { /* the rest is text */
            jtok t = {0};
            t.k = TK_DATA;
            t.line = L->line;
            t.s.p = s + L->pos;
            t.s.n = n - L->pos;
            L->line += bn_jinja_parse_count_nl(t.s.p, t.s.n);
            L->pos = n;
            if ((st = bn_jinja_parse_lx_push(L, t))) return st;
            break;
        }
        char kind = s[i + 1];
        char sign = i + 2 < n && (s[i + 2] == '-' || s[i + 2] == '+') ? s[i + 2] : 0;
        if (kind == '%') { /* {% raw %} ... {% endraw %} */
            size_t j = bn_jinja_parse_match_raw_begin(L, i, "raw");
            size_t e = j ? bn_jinja_parse_match_end(L, j, '%', 0) : 0;
            if (e && j + 2 <= n && (s[j] == '%' || s[j] == '-')) {
                if (s[j] == '%') e = j + 2; /* the raw tag takes no trim_blocks newline */
                if ((st = bn_jinja_parse_lx_text(L, L->pos, i, sign, 0))) return st;
                L->line += bn_jinja_parse_count_nl(s + i, e - i);
                L->line_starting = s[e - 1] == '\n';
                /* find {% endraw %} */
                size_t k = e;
                for (;;) {
                    while (k + 1 < n && !(s[k] == '{' && s[k + 1] == '%')) k++;
                    if (k + 1 >= n) return jerr(c, BITNET_E_FORMAT, "missing end of raw directive");
                    size_t q = bn_jinja_parse_match_raw_begin(L, k, "endraw");
                    size_t ee = q ? bn_jinja_parse_match_end(L, q, '%', 1) : 0;
                    if (ee) {
                        char sg = k + 2 < n && (s[k + 2] == '-' || s[k + 2] == '+') ? s[k + 2] : 0;
                        L->pos = e;
                        if ((st = bn_jinja_parse_lx_text(L, e, k, sg, 0))) return st;
                        L->line += bn_jinja_parse_count_nl(s + k, ee - k);
                        L->line_starting = s[ee - 1] == '\n';
                        L->pos = ee;
                        break;
                    }
                    k++;
                }
                continue;
            }
        }
        if ((st = bn_jinja_parse_lx_text(L, L->pos, i, sign, kind == '{'))) return st;
        L->line_starting = 0;
        size_t p = i + 2 + (sign ? 1 : 0);
        L->pos = p;
        if (kind == '#') {
            size_t k = p, e = 0;
            for (; k < n; k++) {
                if ((e = bn_jinja_parse_match_end(L, k, '#', 1)) > 0) break;
            }
            if (!e) return jerr(c, BITNET_E_FORMAT, "missing end of comment tag");
            L->line += bn_jinja_parse_count_nl(s + p, e - p);
            L->line_starting = s[e - 1] == '\n';
            L->pos = e;
            continue;
        }
        jtok t = {0};
        t.k = kind == '{' ? TK_VAR_BEGIN : TK_BLOCK_BEGIN;
        t.line = L->line;
        if ((st = bn_jinja_parse_lx_push(L, t))) return st;
        if ((st = bn_jinja_parse_lx_tag(L, t.k))) return st;
    }
    jtok t = {0};
    t.k = TK_EOF;
    t.line = L->line;
    return bn_jinja_parse_lx_push(L, t);
}

/* ---- parser ---------------------------------------------------------------------------------- */

typedef struct parser {
    jctx  *c;
    jtok  *t;
    size_t nt, i;
    int    in_loop;
    uint32_t depth;
} parser;

static jtok *bn_jinja_parse_cur(parser *P) { return &P->t[P->i]; }
static jtok *bn_jinja_parse_peek(parser *P, size_t k) { return &P->t[P->i + k < P->nt ? P->i + k : P->nt - 1]; }
static void bn_jinja_parse_adv(parser *P) { if (P->i + 1 < P->nt) P->i++; }
static int bn_jinja_parse_is_op(const jtok *t, int op) { return t->k == TK_OP && t->op == op; }
static int bn_jinja_parse_is_name(const jtok *t, const char *z) { return t->k == TK_NAME && bn_js_eqz(t->s, z); }

static const char *bn_jinja_parse_tok_desc(const jtok *t) {
    switch (t->k) {
    case TK_EOF: return "end of template";
    case TK_DATA: return "template data";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "'%}'";
    case TK_NAME: return "a name";
    case TK_STRING: return "a string";
    case TK_INT: return "an integer";
    case TK_FLOAT: return "a float";
    default: return "an operator";
    }
}

static bitnet_status bn_jinja_parse_perr(parser *P, const char *what) {
    P->c->line = bn_jinja_parse_cur(P)->line;
    return jerr(P->c, BITNET_E_FORMAT, "expected %s, got %s", what, bn_jinja_parse_tok_desc(bn_jinja_parse_cur(P)));
}

static bitnet_status bn_jinja_parse_expect_op(parser *P, int op, const char *what) {
    if (!bn_jinja_parse_is_op(bn_jinja_parse_cur(P), op)) return bn_jinja_parse_perr(P, what);
    bn_jinja_parse_adv(P);
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_expect_kind(parser *P, int k, const char *what) {
    if (bn_jinja_parse_cur(P)->k != k) return bn_jinja_parse_perr(P, what);
    bn_jinja_parse_adv(P);
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_new_node(parser *P, int k, uint32_t line, jnode **out) {
    jnode *nd = bn_ja_alloc(P->c, sizeof *nd);
    if (!nd) return ja_error(P->c);
    memset(nd, 0, sizeof *nd);
    nd->k = (uint16_t)k;
    nd->line = line;
    *out = nd;
    return BITNET_OK;
}

/* growable node list */
typedef struct nlist {
    jnode **v;
    size_t  n, cap;
} nlist;

static bitnet_status bn_jinja_parse_nl_push(parser *P, nlist *l, jnode *x) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        jnode **nv = bn_ja_alloc(P->c, nc * sizeof *nv);
        if (!nv) return ja_error(P->c);
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = x;
    return BITNET_OK;
}

typedef struct slist {
    jstr  *v;
    size_t n, cap;
} slist;

static bitnet_status bn_jinja_parse_sl_push(parser *P, slist *l, jstr x) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        jstr *nv = bn_ja_alloc(P->c, nc * sizeof *nv);
        if (!nv) return ja_error(P->c);
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = x;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_enter(parser *P) {
    if (++P->depth > P->c->max_depth) {
        P->c->line = bn_jinja_parse_cur(P)->line;
        return jerr(P->c, BITNET_E_UNSUPPORTED, "template nested deeper than %u levels", (unsigned)P->c->max_depth);
    }
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_expr(parser *P, int with_cond, jnode **out);
static bitnet_status bn_jinja_parse_tuple(parser *P, int with_cond, const char *extra_end, int explicit_paren, jnode **out);
static bitnet_status bn_jinja_parse_unary(parser *P, int with_filter, jnode **out);
static bitnet_status bn_jinja_parse_primary(parser *P, jnode **out);
static bitnet_status bn_jinja_parse_postfix(parser *P, jnode *node, jnode **out);
static bitnet_status bn_jinja_parse_filter_chain(parser *P, jnode *node, jnode **out);
static bitnet_status bn_jinja_parse_filter(parser *P, jnode *node, int start_inline, jnode **out);

/* Call arguments "(" ... ")": positional into n->v, keyword into names / v2. */
static bitnet_status bn_jinja_parse_call_args(parser *P, jnode *nd) {
    bitnet_status st;
    nlist pos = {0}, kwv = {0};
    slist kwn = {0};
    if ((st = bn_jinja_parse_expect_op(P, OP_LPAREN, "'('"))) return st;
    int need_comma = 0;
    while (!bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_RPAREN)) {
        if (need_comma) {
            if ((st = bn_jinja_parse_expect_op(P, OP_COMMA, "','"))) return st;
            if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_RPAREN)) break;
        }
        jnode *x;
        if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_MUL) || bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_POW)) { /* *args, **kwargs */
            int kw = bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_POW);
            if ((kw ? nd->dyn_kwargs : nd->dyn_args) || (!kw && nd->dyn_kwargs))
                return jerr(P->c, BITNET_E_FORMAT, "invalid syntax for function call expression");
            bn_jinja_parse_adv(P);
            if ((st = bn_jinja_parse_expr(P, 1, &x))) return st;
            if (kw) nd->dyn_kwargs = x;
            else nd->dyn_args = x;
            need_comma = 1;
            continue;
        }
        if (bn_jinja_parse_cur(P)->k == TK_NAME && bn_jinja_parse_is_op(bn_jinja_parse_peek(P, 1), OP_ASSIGN)) {
            jstr key = bn_jinja_parse_cur(P)->s;
            bn_jinja_parse_adv(P);
            bn_jinja_parse_adv(P);
            if (nd->dyn_kwargs) return jerr(P->c, BITNET_E_FORMAT, "invalid syntax for function call expression");
            if ((st = bn_jinja_parse_expr(P, 1, &x)) || (st = bn_jinja_parse_sl_push(P, &kwn, key)) || (st = bn_jinja_parse_nl_push(P, &kwv, x))) return st;
        } else {
            if (kwn.n || nd->dyn_args || nd->dyn_kwargs)
                return bn_jinja_parse_perr(P, "a keyword argument (positional arguments come first)");
            if ((st = bn_jinja_parse_expr(P, 1, &x)) || (st = bn_jinja_parse_nl_push(P, &pos, x))) return st;
        }
        need_comma = 1;
    }
    bn_jinja_parse_adv(P);
    nd->v = pos.v;
    nd->n = pos.n;
    nd->names = kwn.v;
    nd->nnames = kwn.n;
    nd->v2 = kwv.v;
    nd->n2 = kwv.n;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_dotted_name(parser *P, jstr *out) {
    bitnet_status st;
    if (bn_jinja_parse_cur(P)->k != TK_NAME) return bn_jinja_parse_perr(P, "a name");
    jstr nm = bn_jinja_parse_cur(P)->s;
    bn_jinja_parse_adv(P);
    while (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_DOT)) { /* "a.b": no such filter or test exists here, but it parses */
        bn_jinja_parse_adv(P);
        if (bn_jinja_parse_cur(P)->k != TK_NAME) return bn_jinja_parse_perr(P, "a name");
        jstr dot = bn_js_lit(".");
        if ((st = bn_js_concat(P->c, nm, dot, &nm)) || (st = bn_js_concat(P->c, nm, bn_jinja_parse_cur(P)->s, &nm))) return st;
        bn_jinja_parse_adv(P);
    }
    *out = nm;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_filter(parser *P, jnode *node, int start_inline, jnode **out) {
    bitnet_status st;
    while (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_PIPE) || start_inline) {
        if (!start_inline) bn_jinja_parse_adv(P);
        jnode *f;
        if ((st = bn_jinja_parse_new_node(P, E_FILTER, bn_jinja_parse_cur(P)->line, &f)) || (st = bn_jinja_parse_dotted_name(P, &f->name))) return st;
        f->a = node;
        if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_LPAREN) && (st = bn_jinja_parse_call_args(P, f))) return st;
        node = f;
        start_inline = 0;
    }
    *out = node;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_test(parser *P, jnode *node, jnode **out) {
    bitnet_status st;
    uint32_t line = bn_jinja_parse_cur(P)->line;
    bn_jinja_parse_adv(P); /* "is" */
    int neg = 0;
    if (bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "not")) { bn_jinja_parse_adv(P); neg = 1; }
    jnode *t;
    if ((st = bn_jinja_parse_new_node(P, E_TEST, line, &t)) || (st = bn_jinja_parse_dotted_name(P, &t->name))) return st;
    t->a = node;
    jtok *c = bn_jinja_parse_cur(P);
    if (bn_jinja_parse_is_op(c, OP_LPAREN)) {
        if ((st = bn_jinja_parse_call_args(P, t))) return st;
    } else if ((c->k == TK_NAME || c->k == TK_STRING || c->k == TK_INT || c->k == TK_FLOAT || bn_jinja_parse_is_op(c, OP_LPAREN) ||
                bn_jinja_parse_is_op(c, OP_LBRACKET) || bn_jinja_parse_is_op(c, OP_LBRACE)) &&
               !bn_jinja_parse_is_name(c, "else") && !bn_jinja_parse_is_name(c, "or") && !bn_jinja_parse_is_name(c, "and")) {
        if (bn_jinja_parse_is_name(c, "is")) return jerr(P->c, BITNET_E_FORMAT, "you cannot chain multiple tests with is");
        jnode *arg;
        if ((st = bn_jinja_parse_primary(P, &arg)) || (st = bn_jinja_parse_postfix(P, arg, &arg))) return st;
        t->v = bn_ja_alloc(P->c, sizeof *t->v);
        if (!t->v) return ja_error(P->c);
        t->v[0] = arg;
        t->n = 1;
    }
    if (neg) {
        jnode *nt;
        if ((st = bn_jinja_parse_new_node(P, E_NOT, line, &nt))) return st;
        nt->a = t;
        t = nt;
    }
    *out = t;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_filter_chain(parser *P, jnode *node, jnode **out) {
    bitnet_status st;
    for (;;) {
        if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_PIPE)) {
            if ((st = bn_jinja_parse_filter(P, node, 0, &node))) return st;
        } else if (bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "is")) {
            if ((st = bn_jinja_parse_test(P, node, &node))) return st;
        } else if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_LPAREN)) {
            jnode *cl;
            if ((st = bn_jinja_parse_new_node(P, E_CALL, bn_jinja_parse_cur(P)->line, &cl))) return st;
            cl->a = node;
            if ((st = bn_jinja_parse_call_args(P, cl))) return st;
            node = cl;
        } else {
            break;
        }
    }
    *out = node;
    return BITNET_OK;
}

/* One subscript: an expression or a slice a:b:c. */
static bitnet_status bn_jinja_parse_subscribed(parser *P, jnode **out) {
    bitnet_status st;
    uint32_t line = bn_jinja_parse_cur(P)->line;
    jnode *parts[3] = {NULL, NULL, NULL};
    if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_COLON)) {
        bn_jinja_parse_adv(P);
    } else {
        jnode *x;
        if ((st = bn_jinja_parse_expr(P, 1, &x))) return st;
        if (!bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_COLON)) { *out = x; return BITNET_OK; }
        bn_jinja_parse_adv(P);
        parts[0] = x;
    }
    if (!bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_COLON) && !bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_RBRACKET) && !bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_COMMA)) {
        if ((st = bn_jinja_parse_expr(P, 1, &parts[1]))) return st;
    }
    if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_COLON)) {
        bn_jinja_parse_adv(P);
        if (!bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_RBRACKET) && !bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_COMMA) && (st = bn_jinja_parse_expr(P, 1, &parts[2]))) return st;
    }
    jnode *s;
    if ((st = bn_jinja_parse_new_node(P, E_SLICE, line, &s))) return st;
    s->a = parts[0];
    s->b = parts[1];
    s->c = parts[2];
    *out = s;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_postfix(parser *P, jnode *node, jnode **out) {
    bitnet_status st;
    for (;;) {
        jtok *t = bn_jinja_parse_cur(P);
        if (bn_jinja_parse_is_op(t, OP_DOT)) {
            bn_jinja_parse_adv(P);
            jtok *a = bn_jinja_parse_cur(P);
            jnode *x;
            if (a->k == TK_NAME) {
                if ((st = bn_jinja_parse_new_node(P, E_ATTR, t->line, &x))) return st;
                x->a = node;
                x->name = a->s;
                bn_jinja_parse_adv(P);
            } else if (a->k == TK_INT) {
                jnode *k;
                if ((st = bn_jinja_parse_new_node(P, E_ITEM, t->line, &x)) || (st = bn_jinja_parse_new_node(P, E_CONST, a->line, &k))) return st;
                k->lit = bn_jv_int(a->i);
                x->a = node;
                x->b = k;
                bn_jinja_parse_adv(P);
            } else {
                return bn_jinja_parse_perr(P, "a name or number after '.'");
            }
            node = x;
        } else if (bn_jinja_parse_is_op(t, OP_LBRACKET)) {
            bn_jinja_parse_adv(P);
            nlist args = {0};
            while (!bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_RBRACKET)) {
                if (args.n && (st = bn_jinja_parse_expect_op(P, OP_COMMA, "','"))) return st;
                jnode *x;
                if ((st = bn_jinja_parse_subscribed(P, &x)) || (st = bn_jinja_parse_nl_push(P, &args, x))) return st;
            }
            bn_jinja_parse_adv(P);
            if (!args.n) return bn_jinja_parse_perr(P, "a subscript");
            jnode *it;
            if ((st = bn_jinja_parse_new_node(P, E_ITEM, t->line, &it))) return st;
            it->a = node;
            if (args.n == 1 && args.v[0]->k == E_SLICE) { /* obj[a:b:c] */
                jnode *sl = args.v[0];
                it->k = E_SLICE;
                it->b = sl->a;
                it->c = sl->b;
                it->v = bn_ja_alloc(P->c, sizeof *it->v);
                if (!it->v) return ja_error(P->c);
                it->v[0] = sl->c;
                it->n = 1;
            } else if (args.n == 1) {
                it->b = args.v[0];
            } else {
                for (size_t k = 0; k < args.n; k++)
                    if (args.v[k]->k == E_SLICE) {
                        P->c->line = t->line;
                        return jerr(P->c, BITNET_E_UNSUPPORTED, "slices inside a tuple subscript are not supported");
                    }
                jnode *tp;
                if ((st = bn_jinja_parse_new_node(P, E_LIST, t->line, &tp))) return st;
                tp->op = 1;
                tp->v = args.v;
                tp->n = args.n;
                it->b = tp;
            }
            node = it;
        } else if (bn_jinja_parse_is_op(t, OP_LPAREN)) {
            jnode *cl;
            if ((st = bn_jinja_parse_new_node(P, E_CALL, t->line, &cl))) return st;
            cl->a = node;
            if ((st = bn_jinja_parse_call_args(P, cl))) return st;
            node = cl;
        } else {
            break;
        }
    }
    *out = node;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_list(parser *P, int closing, int kind, jnode **out) {
    bitnet_status st;
    uint32_t line = bn_jinja_parse_cur(P)->line;
    bn_jinja_parse_adv(P);
    nlist items = {0}, vals = {0};
    while (!bn_jinja_parse_is_op(bn_jinja_parse_cur(P), closing)) {
        if (items.n && (st = bn_jinja_parse_expect_op(P, OP_COMMA, "','"))) return st;
        if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), closing)) break;
        jnode *x;
        if ((st = bn_jinja_parse_expr(P, 1, &x)) || (st = bn_jinja_parse_nl_push(P, &items, x))) return st;
        if (kind == E_DICT) {
            if ((st = bn_jinja_parse_expect_op(P, OP_COLON, "':'")) || (st = bn_jinja_parse_expr(P, 1, &x)) || (st = bn_jinja_parse_nl_push(P, &vals, x))) return st;
        }
    }
    bn_jinja_parse_adv(P);
    jnode *nd;
    if ((st = bn_jinja_parse_new_node(P, kind, line, &nd))) return st;
    nd->v = items.v;
    nd->n = items.n;
    nd->v2 = vals.v;
    nd->n2 = vals.n;
    *out = nd;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_primary(parser *P, jnode **out) {
    bitnet_status st;
    jtok *t = bn_jinja_parse_cur(P);
    jnode *nd;
    if ((st = bn_jinja_parse_enter(P))) return st;
    if (t->k == TK_NAME) {
        if ((st = bn_jinja_parse_new_node(P, E_CONST, t->line, &nd))) return st;
        if (bn_js_eqz(t->s, "true") || bn_js_eqz(t->s, "True")) nd->lit = bn_jv_bool(1);
        else if (bn_js_eqz(t->s, "false") || bn_js_eqz(t->s, "False")) nd->lit = bn_jv_bool(0);
        else if (bn_js_eqz(t->s, "none") || bn_js_eqz(t->s, "None")) nd->lit = bn_jv_none();
        else { nd->k = E_NAME; nd->name = t->s; }
        bn_jinja_parse_adv(P);
    } else if (t->k == TK_STRING) {
        jstr s = t->s;
        bn_jinja_parse_adv(P);
        while (bn_jinja_parse_cur(P)->k == TK_STRING) { /* adjacent literals concatenate */
            if ((st = bn_js_concat(P->c, s, bn_jinja_parse_cur(P)->s, &s))) return st;
            bn_jinja_parse_adv(P);
        }
        if ((st = bn_jinja_parse_new_node(P, E_CONST, t->line, &nd))) return st;
        nd->lit = bn_jv_str(s);
    } else if (t->k == TK_INT || t->k == TK_FLOAT) {
        if ((st = bn_jinja_parse_new_node(P, E_CONST, t->line, &nd))) return st;
        nd->lit = t->k == TK_INT ? bn_jv_int(t->i) : bn_jv_float(t->f);
        bn_jinja_parse_adv(P);
    } else if (bn_jinja_parse_is_op(t, OP_LPAREN)) {
        bn_jinja_parse_adv(P);
        if ((st = bn_jinja_parse_tuple(P, 1, NULL, 1, &nd)) || (st = bn_jinja_parse_expect_op(P, OP_RPAREN, "')'"))) return st;
    } else if (bn_jinja_parse_is_op(t, OP_LBRACKET)) {
        if ((st = bn_jinja_parse_list(P, OP_RBRACKET, E_LIST, &nd))) return st;
    } else if (bn_jinja_parse_is_op(t, OP_LBRACE)) {
        if ((st = bn_jinja_parse_list(P, OP_RBRACE, E_DICT, &nd))) return st;
    } else {
        return bn_jinja_parse_perr(P, "an expression");
    }
    P->depth--;
    *out = nd;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_unary(parser *P, int with_filter, jnode **out) {
    bitnet_status st;
    jtok *t = bn_jinja_parse_cur(P);
    jnode *nd;
    if ((st = bn_jinja_parse_enter(P))) return st;
    if (bn_jinja_parse_is_op(t, OP_SUB) || bn_jinja_parse_is_op(t, OP_ADD)) {
        bn_jinja_parse_adv(P);
        jnode *x;
        if ((st = bn_jinja_parse_unary(P, 0, &x)) || (st = bn_jinja_parse_new_node(P, t->op == OP_SUB ? E_NEG : E_POS, t->line, &nd))) return st;
        nd->a = x;
    } else if ((st = bn_jinja_parse_primary(P, &nd))) {
        return st;
    }
    if ((st = bn_jinja_parse_postfix(P, nd, &nd))) return st;
    if (with_filter && (st = bn_jinja_parse_filter_chain(P, nd, &nd))) return st;
    P->depth--;
    *out = nd;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_bin(parser *P, int k, int op, uint32_t line, jnode *a, jnode *b, jnode **out) {
    bitnet_status st;
    jnode *nd;
    if ((st = bn_jinja_parse_new_node(P, k, line, &nd))) return st;
    nd->op = (uint16_t)op;
    nd->a = a;
    nd->b = b;
    *out = nd;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_pow(parser *P, jnode **out) {
    bitnet_status st;
    jnode *l, *r;
    if ((st = bn_jinja_parse_unary(P, 1, &l))) return st;
    while (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_POW)) {
        uint32_t line = bn_jinja_parse_cur(P)->line;
        bn_jinja_parse_adv(P);
        if ((st = bn_jinja_parse_unary(P, 1, &r)) || (st = bn_jinja_parse_bin(P, E_BIN, OPB_POW, line, l, r, &l))) return st;
    }
    *out = l;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_math2(parser *P, jnode **out) {
    bitnet_status st;
    jnode *l, *r;
    if ((st = bn_jinja_parse_pow(P, &l))) return st;
    for (;;) {
        jtok *t = bn_jinja_parse_cur(P);
        int op = bn_jinja_parse_is_op(t, OP_MUL) ? OPB_MUL : bn_jinja_parse_is_op(t, OP_DIV) ? OPB_DIV : bn_jinja_parse_is_op(t, OP_FLOORDIV) ? OPB_FLOORDIV
               : bn_jinja_parse_is_op(t, OP_MOD) ? OPB_MOD : -1;
        if (op < 0) break;
        bn_jinja_parse_adv(P);
        if ((st = bn_jinja_parse_pow(P, &r)) || (st = bn_jinja_parse_bin(P, E_BIN, op, t->line, l, r, &l))) return st;
    }
    *out = l;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_concat(parser *P, jnode **out) {
    bitnet_status st;
    jnode *x;
    uint32_t line = bn_jinja_parse_cur(P)->line;
    if ((st = bn_jinja_parse_math2(P, &x))) return st;
    if (!bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_TILDE)) { *out = x; return BITNET_OK; }
    nlist args = {0};
    if ((st = bn_jinja_parse_nl_push(P, &args, x))) return st;
    while (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_TILDE)) {
        bn_jinja_parse_adv(P);
        if ((st = bn_jinja_parse_math2(P, &x)) || (st = bn_jinja_parse_nl_push(P, &args, x))) return st;
    }
    jnode *nd;
    if ((st = bn_jinja_parse_new_node(P, E_CONCAT, line, &nd))) return st;
    nd->v = args.v;
    nd->n = args.n;
    *out = nd;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_math1(parser *P, jnode **out) {
    bitnet_status st;
    jnode *l, *r;
    if ((st = bn_jinja_parse_concat(P, &l))) return st;
    for (;;) {
        jtok *t = bn_jinja_parse_cur(P);
        int op = bn_jinja_parse_is_op(t, OP_ADD) ? OPB_ADD : bn_jinja_parse_is_op(t, OP_SUB) ? OPB_SUB : -1;
        if (op < 0) break;
        bn_jinja_parse_adv(P);
        if ((st = bn_jinja_parse_concat(P, &r)) || (st = bn_jinja_parse_bin(P, E_BIN, op, t->line, l, r, &l))) return st;
    }
    *out = l;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_compare(parser *P, jnode **out) {
    bitnet_status st;
    jnode *x;
    uint32_t line = bn_jinja_parse_cur(P)->line;
    if ((st = bn_jinja_parse_math1(P, &x))) return st;
    nlist args = {0};
    uint8_t ops[64];
    size_t nops = 0;
    for (;;) {
        jtok *t = bn_jinja_parse_cur(P);
        int op = -1;
        if (t->k == TK_OP) {
            switch (t->op) {
            case OP_EQ: op = OPC_EQ; break;
            case OP_NE: op = OPC_NE; break;
            case OP_LT: op = OPC_LT; break;
            case OP_LE: op = OPC_LE; break;
            case OP_GT: op = OPC_GT; break;
            case OP_GE: op = OPC_GE; break;
            default: break;
            }
            if (op >= 0) bn_jinja_parse_adv(P);
        } else if (bn_jinja_parse_is_name(t, "in")) {
            op = OPC_IN;
            bn_jinja_parse_adv(P);
        } else if (bn_jinja_parse_is_name(t, "not") && bn_jinja_parse_is_name(bn_jinja_parse_peek(P, 1), "in")) {
            op = OPC_NOTIN;
            bn_jinja_parse_adv(P);
            bn_jinja_parse_adv(P);
        }
        if (op < 0) break;
        if (nops == sizeof ops) return jerr(P->c, BITNET_E_UNSUPPORTED, "more than %zu chained comparisons", sizeof ops);
        jnode *r;
        if ((st = bn_jinja_parse_math1(P, &r)) || (st = bn_jinja_parse_nl_push(P, &args, r))) return st;
        ops[nops++] = (uint8_t)op;
    }
    if (!nops) { *out = x; return BITNET_OK; }
    jnode *nd;
    if ((st = bn_jinja_parse_new_node(P, E_CMP, line, &nd))) return st;
    nd->a = x;
    nd->v = args.v;
    nd->n = args.n;
    nd->ops = bn_ja_alloc(P->c, nops);
    if (!nd->ops) return ja_error(P->c);
    memcpy(nd->ops, ops, nops);
    *out = nd;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_not(parser *P, jnode **out) {
    bitnet_status st;
    if (bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "not")) {
        uint32_t line = bn_jinja_parse_cur(P)->line;
        bn_jinja_parse_adv(P);
        jnode *x, *nd;
        if ((st = bn_jinja_parse_enter(P)) || (st = bn_jinja_parse_not(P, &x)) || (st = bn_jinja_parse_new_node(P, E_NOT, line, &nd))) return st;
        P->depth--;
        nd->a = x;
        *out = nd;
        return BITNET_OK;
    }
    return bn_jinja_parse_compare(P, out);
}

static bitnet_status bn_jinja_parse_and(parser *P, jnode **out) {
    bitnet_status st;
    jnode *l, *r;
    if ((st = bn_jinja_parse_not(P, &l))) return st;
    while (bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "and")) {
        uint32_t line = bn_jinja_parse_cur(P)->line;
        bn_jinja_parse_adv(P);
        if ((st = bn_jinja_parse_not(P, &r)) || (st = bn_jinja_parse_bin(P, E_AND, 0, line, l, r, &l))) return st;
    }
    *out = l;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_or(parser *P, jnode **out) {
    bitnet_status st;
    jnode *l, *r;
    if ((st = bn_jinja_parse_and(P, &l))) return st;
    while (bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "or")) {
        uint32_t line = bn_jinja_parse_cur(P)->line;
        bn_jinja_parse_adv(P);
        if ((st = bn_jinja_parse_and(P, &r)) || (st = bn_jinja_parse_bin(P, E_OR, 0, line, l, r, &l))) return st;
    }
    *out = l;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_expr(parser *P, int with_cond, jnode **out) {
    bitnet_status st;
    jnode *x;
    if ((st = bn_jinja_parse_enter(P)) || (st = bn_jinja_parse_or(P, &x))) return st;
    while (with_cond && bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "if")) {
        uint32_t line = bn_jinja_parse_cur(P)->line;
        bn_jinja_parse_adv(P);
        jnode *test, *els = NULL, *nd;
        if ((st = bn_jinja_parse_or(P, &test))) return st;
        if (bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "else")) {
            bn_jinja_parse_adv(P);
            if ((st = bn_jinja_parse_expr(P, 1, &els))) return st;
        }
        if ((st = bn_jinja_parse_new_node(P, E_COND, line, &nd))) return st;
        nd->a = test;
        nd->b = x;
        nd->c = els;
        x = nd;
    }
    P->depth--;
    *out = x;
    return BITNET_OK;
}

static int bn_jinja_parse_tuple_end(parser *P, const char *extra) {
    jtok *t = bn_jinja_parse_cur(P);
    if (t->k == TK_VAR_END || t->k == TK_BLOCK_END || bn_jinja_parse_is_op(t, OP_RPAREN)) return 1;
    return extra && bn_jinja_parse_is_name(t, extra);
}

static bitnet_status bn_jinja_parse_tuple(parser *P, int with_cond, const char *extra_end, int explicit_paren, jnode **out) {
    bitnet_status st;
    uint32_t line = bn_jinja_parse_cur(P)->line;
    nlist args = {0};
    int is_tuple = 0;
    for (;;) {
        if (args.n && (st = bn_jinja_parse_expect_op(P, OP_COMMA, "','"))) return st;
        if (bn_jinja_parse_tuple_end(P, extra_end)) break;
        jnode *x;
        if ((st = bn_jinja_parse_expr(P, with_cond, &x)) || (st = bn_jinja_parse_nl_push(P, &args, x))) return st;
        if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_COMMA)) is_tuple = 1;
        else break;
    }
    if (!is_tuple) {
        if (args.n) { *out = args.v[0]; return BITNET_OK; }
        if (!explicit_paren) return bn_jinja_parse_perr(P, "an expression");
    }
    jnode *nd;
    if ((st = bn_jinja_parse_new_node(P, E_LIST, line, &nd))) return st;
    nd->op = 1;
    nd->v = args.v;
    nd->n = args.n;
    *out = nd;
    return BITNET_OK;
}

/* ---- statements ------------------------------------------------------------------------------ */

static bitnet_status bn_jinja_parse_body(parser *P, const char *const *ends, size_t n_ends, nlist *body);

/* Expect "%}" then parse a body up to one of ends (left as the current token). */
static bitnet_status bn_jinja_parse_statements(parser *P, const char *const *ends, size_t n_ends, nlist *body, int drop) {
    bitnet_status st;
    if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_COLON)) bn_jinja_parse_adv(P);
    if ((st = bn_jinja_parse_expect_kind(P, TK_BLOCK_END, "'%}'")) || (st = bn_jinja_parse_body(P, ends, n_ends, body))) return st;
    if (bn_jinja_parse_cur(P)->k == TK_EOF) {
        P->c->line = bn_jinja_parse_cur(P)->line;
        return jerr(P->c, BITNET_E_FORMAT, "unexpected end of template: expected '%s'", ends[0]);
    }
    if (drop) bn_jinja_parse_adv(P);
    return BITNET_OK;
}

/* An assignment target: a name, names separated by commas (a tuple), or ns.attr. */
static bitnet_status bn_jinja_parse_target(parser *P, jnode *nd, int with_ns, const char *extra_end) {
    bitnet_status st;
    slist names = {0};
    if (with_ns && bn_jinja_parse_cur(P)->k == TK_NAME && bn_jinja_parse_is_op(bn_jinja_parse_peek(P, 1), OP_DOT)) {
        jstr ns = bn_jinja_parse_cur(P)->s;
        bn_jinja_parse_adv(P);
        bn_jinja_parse_adv(P);
        if (bn_jinja_parse_cur(P)->k != TK_NAME) return bn_jinja_parse_perr(P, "an attribute name");
        if ((st = bn_jinja_parse_sl_push(P, &names, ns)) || (st = bn_jinja_parse_sl_push(P, &names, bn_jinja_parse_cur(P)->s))) return st;
        bn_jinja_parse_adv(P);
        nd->op = TG_NSATTR;
    } else {
        int paren = bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_LPAREN);
        if (paren) bn_jinja_parse_adv(P);
        int comma = 0;
        for (;;) {
            if (bn_jinja_parse_cur(P)->k != TK_NAME) {
                if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_LPAREN)) {
                    P->c->line = bn_jinja_parse_cur(P)->line;
                    return jerr(P->c, BITNET_E_UNSUPPORTED, "nested tuple assignment targets are not supported");
                }
                return bn_jinja_parse_perr(P, "a name to assign to");
            }
            jstr nm = bn_jinja_parse_cur(P)->s;
            if (bn_js_eqz(nm, "true") || bn_js_eqz(nm, "false") || bn_js_eqz(nm, "none") || bn_js_eqz(nm, "True") ||
                bn_js_eqz(nm, "False") || bn_js_eqz(nm, "None"))
                return bn_jinja_parse_perr(P, "a name to assign to");
            if ((st = bn_jinja_parse_sl_push(P, &names, nm))) return st;
            bn_jinja_parse_adv(P);
            if (!bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_COMMA)) break;
            comma = 1;
            bn_jinja_parse_adv(P);
            if (paren ? bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_RPAREN) : (bn_jinja_parse_cur(P)->k != TK_NAME || (extra_end && bn_jinja_parse_is_name(bn_jinja_parse_cur(P), extra_end))))
                break;
        }
        if (paren && (st = bn_jinja_parse_expect_op(P, OP_RPAREN, "')'"))) return st;
        nd->op = (comma || paren) && !(paren && !comma) ? TG_TUPLE : TG_NAME;
    }
    nd->names = names.v;
    nd->nnames = names.n;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_for(parser *P, jnode **out) {
    static const char *const ends[] = {"endfor", "else"}, *const ends2[] = {"endfor"};
    bitnet_status st;
    jnode *nd;
    if ((st = bn_jinja_parse_new_node(P, S_FOR, bn_jinja_parse_cur(P)->line, &nd))) return st;
    bn_jinja_parse_adv(P);
    if ((st = bn_jinja_parse_target(P, nd, 0, "in"))) return st;
    if (!bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "in")) return bn_jinja_parse_perr(P, "'in'");
    bn_jinja_parse_adv(P);
    if ((st = bn_jinja_parse_tuple(P, 0, "recursive", 0, &nd->a))) return st;
    if (bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "if")) {
        bn_jinja_parse_adv(P);
        if ((st = bn_jinja_parse_expr(P, 1, &nd->b))) return st;
    }
    if (bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "recursive")) {
        P->c->line = bn_jinja_parse_cur(P)->line;
        return jerr(P->c, BITNET_E_UNSUPPORTED, "recursive for loops are not supported");
    }
    nlist body = {0}, els = {0};
    P->in_loop++;
    if ((st = bn_jinja_parse_statements(P, ends, 2, &body, 0))) return st;
    P->in_loop--;
    int is_else = bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "else");
    bn_jinja_parse_adv(P);
    if (is_else && (st = bn_jinja_parse_statements(P, ends2, 1, &els, 1))) return st;
    nd->v = body.v;
    nd->n = body.n;
    nd->v2 = els.v;
    nd->n2 = els.n;
    *out = nd;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_if(parser *P, jnode **out) {
    static const char *const ends[] = {"elif", "else", "endif"}, *const ends2[] = {"endif"};
    bitnet_status st;
    jnode *top = NULL, *prev = NULL;
    for (;;) {
        jnode *nd;
        if ((st = bn_jinja_parse_new_node(P, S_IF, bn_jinja_parse_cur(P)->line, &nd))) return st;
        bn_jinja_parse_adv(P); /* "if" / "elif" */
        nlist body = {0};
        if ((st = bn_jinja_parse_tuple(P, 0, NULL, 0, &nd->a)) || (st = bn_jinja_parse_statements(P, ends, 3, &body, 0))) return st;
        nd->v = body.v;
        nd->n = body.n;
        if (prev) { /* elif: the else branch of the previous if */
            prev->v2 = bn_ja_alloc(P->c, sizeof *prev->v2);
            if (!prev->v2) return ja_error(P->c);
            prev->v2[0] = nd;
            prev->n2 = 1;
        } else {
            top = nd;
        }
        prev = nd;
        if (bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "elif")) continue;
        if (bn_jinja_parse_is_name(bn_jinja_parse_cur(P), "else")) {
            bn_jinja_parse_adv(P);
            nlist els = {0};
            if ((st = bn_jinja_parse_statements(P, ends2, 1, &els, 1))) return st;
            nd->v2 = els.v;
            nd->n2 = els.n;
        } else {
            bn_jinja_parse_adv(P); /* endif */
        }
        break;
    }
    *out = top;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_set(parser *P, jnode **out) {
    static const char *const ends[] = {"endset"};
    bitnet_status st;
    jnode *nd;
    if ((st = bn_jinja_parse_new_node(P, S_SET, bn_jinja_parse_cur(P)->line, &nd))) return st;
    bn_jinja_parse_adv(P);
    if ((st = bn_jinja_parse_target(P, nd, 1, NULL))) return st;
    if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_ASSIGN)) {
        bn_jinja_parse_adv(P);
        if ((st = bn_jinja_parse_tuple(P, 1, NULL, 0, &nd->a))) return st;
    } else {
        nd->k = S_SETBLOCK;
        jnode *ph;
        if ((st = bn_jinja_parse_new_node(P, E_BLOCKVAL, bn_jinja_parse_cur(P)->line, &ph))) return st;
        nd->a = ph;
        if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_PIPE) && (st = bn_jinja_parse_filter(P, ph, 0, &nd->a))) return st;
        nlist body = {0};
        if ((st = bn_jinja_parse_statements(P, ends, 1, &body, 1))) return st;
        nd->v = body.v;
        nd->n = body.n;
    }
    *out = nd;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_signature(parser *P, jnode *nd);

static bitnet_status bn_jinja_parse_macro(parser *P, jnode **out) {
    static const char *const ends[] = {"endmacro"};
    bitnet_status st;
    jnode *nd;
    if ((st = bn_jinja_parse_new_node(P, S_MACRO, bn_jinja_parse_cur(P)->line, &nd))) return st;
    bn_jinja_parse_adv(P);
    if (bn_jinja_parse_cur(P)->k != TK_NAME) return bn_jinja_parse_perr(P, "a macro name");
    nd->name = bn_jinja_parse_cur(P)->s;
    bn_jinja_parse_adv(P);
    if ((st = bn_jinja_parse_signature(P, nd))) return st;
    int saved = P->in_loop;
    P->in_loop = 0;
    nlist body = {0};
    if ((st = bn_jinja_parse_statements(P, ends, 1, &body, 1))) return st;
    P->in_loop = saved;
    nd->v = body.v;
    nd->n = body.n;
    *out = nd;
    return BITNET_OK;
}

/* {% call(params) macro(args) %} body {% endcall %} */
static bitnet_status bn_jinja_parse_callblock(parser *P, jnode **out) {
    static const char *const ends[] = {"endcall"};
    bitnet_status st;
    jnode *nd;
    if ((st = bn_jinja_parse_new_node(P, S_CALLBLOCK, bn_jinja_parse_cur(P)->line, &nd))) return st;
    bn_jinja_parse_adv(P);
    nd->name = bn_js_lit("caller");
    if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_LPAREN) && (st = bn_jinja_parse_signature(P, nd))) return st;
    if ((st = bn_jinja_parse_expr(P, 1, &nd->a))) return st;
    if (nd->a->k != E_CALL) return jerr(P->c, BITNET_E_FORMAT, "expected call");
    int saved = P->in_loop;
    P->in_loop = 0;
    nlist body = {0};
    if ((st = bn_jinja_parse_statements(P, ends, 1, &body, 1))) return st;
    P->in_loop = saved;
    nd->v = body.v;
    nd->n = body.n;
    *out = nd;
    return BITNET_OK;
}

/* "(" name ["=" default] ... ")" into names / v2 */
static bitnet_status bn_jinja_parse_signature(parser *P, jnode *nd) {
    bitnet_status st;
    if ((st = bn_jinja_parse_expect_op(P, OP_LPAREN, "'('"))) return st;
    slist params = {0};
    nlist defs = {0};
    while (!bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_RPAREN)) {
        if (params.n && (st = bn_jinja_parse_expect_op(P, OP_COMMA, "','"))) return st;
        if (bn_jinja_parse_cur(P)->k != TK_NAME) return bn_jinja_parse_perr(P, "a parameter name");
        if ((st = bn_jinja_parse_sl_push(P, &params, bn_jinja_parse_cur(P)->s))) return st;
        bn_jinja_parse_adv(P);
        if (bn_jinja_parse_is_op(bn_jinja_parse_cur(P), OP_ASSIGN)) {
            bn_jinja_parse_adv(P);
            jnode *d;
            if ((st = bn_jinja_parse_expr(P, 1, &d)) || (st = bn_jinja_parse_nl_push(P, &defs, d))) return st;
        } else if (defs.n) {
            return jerr(P->c, BITNET_E_FORMAT, "non-default argument follows default argument");
        }
    }
    bn_jinja_parse_adv(P);
    nd->names = params.v;
    nd->nnames = params.n;
    nd->v2 = defs.v;
    nd->n2 = defs.n;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_statement(parser *P, jnode **out) {
    static const char *const gen_ends[] = {"endgeneration"};
    bitnet_status st;
    jtok *t = bn_jinja_parse_cur(P);
    P->c->line = t->line;
    if (t->k != TK_NAME) return bn_jinja_parse_perr(P, "a tag name");
    if ((st = bn_jinja_parse_enter(P))) return st;
    if (bn_jinja_parse_is_name(t, "for")) st = bn_jinja_parse_for(P, out);
    else if (bn_jinja_parse_is_name(t, "if")) st = bn_jinja_parse_if(P, out);
    else if (bn_jinja_parse_is_name(t, "set")) st = bn_jinja_parse_set(P, out);
    else if (bn_jinja_parse_is_name(t, "macro")) st = bn_jinja_parse_macro(P, out);
    else if (bn_jinja_parse_is_name(t, "call")) st = bn_jinja_parse_callblock(P, out);
    else if (bn_jinja_parse_is_name(t, "break") || bn_jinja_parse_is_name(t, "continue")) {
        int brk = bn_jinja_parse_is_name(t, "break");
        if (!P->in_loop) return jerr(P->c, BITNET_E_FORMAT, "'%s' outside of a loop", brk ? "break" : "continue");
        if ((st = bn_jinja_parse_new_node(P, brk ? S_BREAK : S_CONTINUE, t->line, out))) return st;
        bn_jinja_parse_adv(P);
    } else if (bn_jinja_parse_is_name(t, "generation")) { /* transformers' {% generation %}: renders its body */
        jnode *nd;
        if ((st = bn_jinja_parse_new_node(P, S_GEN, t->line, &nd))) return st;
        bn_jinja_parse_adv(P);
        nlist body = {0};
        if ((st = bn_jinja_parse_statements(P, gen_ends, 1, &body, 1))) return st;
        nd->v = body.v;
        nd->n = body.n;
        *out = nd;
    } else if (bn_jinja_parse_is_name(t, "filter")) { /* {% filter f(args) | g %} ... {% endfilter %} */
        static const char *const ends[] = {"endfilter"};
        jnode *nd, *ph;
        if ((st = bn_jinja_parse_new_node(P, S_FILTERBLOCK, t->line, &nd)) || (st = bn_jinja_parse_new_node(P, E_BLOCKVAL, t->line, &ph))) return st;
        bn_jinja_parse_adv(P);
        if ((st = bn_jinja_parse_filter(P, ph, 1, &nd->a))) return st;
        nlist body = {0};
        if ((st = bn_jinja_parse_statements(P, ends, 1, &body, 1))) return st;
        nd->v = body.v;
        nd->n = body.n;
        *out = nd;
    } else {
        static const char *const known[] = {"with", "block", "extends", "include", "import",
                                            "from", "autoescape", "print", "do", "trans", "pluralize"};
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (bn_jinja_parse_is_name(t, known[k]))
                return jerr(P->c, BITNET_E_UNSUPPORTED, "the '{%% %s %%}' tag is not supported", known[k]);
        return jerr(P->c, BITNET_E_FORMAT, "unknown tag '%.*s'", (int)t->s.n, t->s.p);
    }
    if (st) return st;
    P->depth--;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_body(parser *P, const char *const *ends, size_t n_ends, nlist *body) {
    bitnet_status st;
    for (;;) {
        jtok *t = bn_jinja_parse_cur(P);
        P->c->line = t->line;
        if (t->k == TK_EOF) return BITNET_OK;
        if (t->k == TK_DATA) {
            jnode *nd;
            if ((st = bn_jinja_parse_new_node(P, S_TEXT, t->line, &nd))) return st;
            nd->lit = bn_jv_str(t->s);
            if ((st = bn_jinja_parse_nl_push(P, body, nd))) return st;
            bn_jinja_parse_adv(P);
        } else if (t->k == TK_VAR_BEGIN) {
            bn_jinja_parse_adv(P);
            jnode *nd;
            if ((st = bn_jinja_parse_new_node(P, S_OUT, t->line, &nd)) || (st = bn_jinja_parse_tuple(P, 1, NULL, 0, &nd->a)) ||
                (st = bn_jinja_parse_expect_kind(P, TK_VAR_END, "'}}'")) || (st = bn_jinja_parse_nl_push(P, body, nd)))
                return st;
        } else if (t->k == TK_BLOCK_BEGIN) {
            bn_jinja_parse_adv(P);
            for (size_t k = 0; k < n_ends; k++)
                if (bn_jinja_parse_is_name(bn_jinja_parse_cur(P), ends[k])) return BITNET_OK;
            jtok *nm = bn_jinja_parse_cur(P);
            if (nm->k == TK_NAME && nm->s.n >= 3 && (memcmp(nm->s.p, "end", 3) == 0 || bn_js_eqz(nm->s, "elif") ||
                                                     bn_js_eqz(nm->s, "else")))
                return jerr(P->c, BITNET_E_FORMAT, "unexpected '%.*s'", (int)nm->s.n, nm->s.p);
            jnode *nd = NULL;
            if ((st = bn_jinja_parse_statement(P, &nd)) || (st = bn_jinja_parse_expect_kind(P, TK_BLOCK_END, "'%}'")) ||
                (st = bn_jinja_parse_nl_push(P, body, nd)))
                return st;
        } else {
            return bn_jinja_parse_perr(P, "template data or a tag");
        }
    }
}

/* jinja2 refuses, when compiling, a filter or test it does not know -- except inside an
 * if statement or an if expression, where it only fails when evaluated. */
static bitnet_status bn_jinja_parse_check_names(jctx *c, const jnode *nd, int soft, uint32_t depth);

static bitnet_status bn_jinja_parse_check_list(jctx *c, jnode *const *v, size_t n, int soft, uint32_t depth) {
    bitnet_status st;
    for (size_t i = 0; i < n; i++)
        if (v[i] && (st = bn_jinja_parse_check_names(c, v[i], soft, depth))) return st;
    return BITNET_OK;
}

static bitnet_status bn_jinja_parse_check_names(jctx *c, const jnode *nd, int soft, uint32_t depth) {
    bitnet_status st;
    if (!nd) return BITNET_OK;
    if (depth > 4 * c->max_depth) return jerr(c, BITNET_E_UNSUPPORTED, "template nested too deeply");
    int inner = soft;
    switch (nd->k) {
    case S_IF: case E_COND: inner = 1; break;
    case E_FILTER: case E_TEST:
        if (!soft && !(nd->k == E_FILTER ? bn_jl_known_filter(nd->name) : bn_jl_known_test(nd->name))) {
            c->line = nd->line;
            return jerr(c, BITNET_E_FORMAT, "No %s named '%.*s'.", nd->k == E_FILTER ? "filter" : "test",
                        (int)nd->name.n, nd->name.p);
        }
        break;
    default: break;
    }
    int body_soft = inner;
    if (nd->k == S_FOR || nd->k == S_MACRO || nd->k == S_CALLBLOCK || nd->k == S_SETBLOCK || nd->k == S_FILTERBLOCK)
        body_soft = 0;
    if ((st = bn_jinja_parse_check_names(c, nd->a, inner, depth + 1)) || (st = bn_jinja_parse_check_names(c, nd->b, inner, depth + 1)) ||
        (st = bn_jinja_parse_check_names(c, nd->c, inner, depth + 1)) || (st = bn_jinja_parse_check_names(c, nd->dyn_args, inner, depth + 1)) ||
        (st = bn_jinja_parse_check_names(c, nd->dyn_kwargs, inner, depth + 1)))
        return st;
    int is_stmt_body = nd->k == S_IF || nd->k == S_FOR || nd->k == S_MACRO || nd->k == S_CALLBLOCK ||
                       nd->k == S_SETBLOCK || nd->k == S_FILTERBLOCK || nd->k == S_GEN;
    if ((st = bn_jinja_parse_check_list(c, nd->v, nd->n, is_stmt_body ? body_soft : inner, depth + 1))) return st;
    return bn_jinja_parse_check_list(c, nd->v2, nd->n2, (nd->k == S_FOR || nd->k == S_IF) ? body_soft : inner, depth + 1);
}

bitnet_status bn_jp_parse(jctx *c, const char *src, size_t len, jnode ***body, size_t *n) {
    bitnet_status st;
    /* newlines: \r\n and \r become \n; one trailing \n is dropped */
    char *s = bn_ja_alloc(c, len + 1);
    if (!s) return ja_error(c);
    size_t m = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[m++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[m++] = src[i];
        }
    }
    if (m && s[m - 1] == '\n') m--;
    s[m] = 0;
    lexer L = {0};
    L.c = c;
    L.s = s;
    L.n = m;
    if ((st = bn_jinja_parse_lex(&L))) return st;
    parser P = {0};
    P.c = c;
    P.t = L.t;
    P.nt = L.nt;
    nlist top = {0};
    if ((st = bn_jinja_parse_body(&P, NULL, 0, &top))) return st;
    if (bn_jinja_parse_cur(&P)->k != TK_EOF) return bn_jinja_parse_perr(&P, "end of template");
    if ((st = bn_jinja_parse_check_list(c, top.v, top.n, 0, 0))) return st;
    *body = top.v;
    *n = top.n;
    return BITNET_OK;
}
