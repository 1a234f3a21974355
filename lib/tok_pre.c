/*
 * tok_pre.c -- pre-tokenizers: the regexes that cut text into pieces before BPE,
 * implemented as hand-written matchers with the exact semantics of a backtracking
 * regex engine (alternatives tried left to right, greedy quantifiers, the lookahead
 * \s+(?!\S)).  No regex engine is involved.
 *
 * A "pass" runs one regex over each current piece [s, e): at each position it tries to
 * match; a match becomes a piece and scanning resumes after it; positions where nothing
 * matches accumulate into a "gap" piece (llama.cpp's unicode_regex_split keeps both).
 * Matches never look outside the piece: the end of the piece is the end of the text
 * for lookaheads.
 *
 *  LLaMA-3 (llama-bpe), one pass:
 *    (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 *    | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *  Qwen2 (qwen2, the Qwen3 embedding model's), one pass: LLaMA-3's with \p{N} for \p{N}{1,3}
 *  GPT-2, one pass:
 *    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *  DEFAULT (llama.cpp / bitnet.cpp when tokenizer.ggml.pre is absent), four passes:
 *    1. [\p{P}\$\+<=>\^~\|]+     2. GPT-2 without the final \s+
 *    3. \p{N}+                   4. [0-9][0-9][0-9]
 *
 * Classes: \p{L}, \p{N}, \p{P} are Unicode general categories, \s is White_Space
 * (lib/tok_unicode.h).  (?i:...) only folds ASCII letters: no other code point lowercases
 * to s, t, r, e, v, m, l or d.  An invalid UTF-8 byte belongs to no class (like U+FFFD).
 */
#include "tok_vocab.h"
#include "tok_unicode.h"

typedef size_t (*bn_matcher)(const uint32_t *c, size_t e, size_t i);

static int bn_tok_pre_is_l(uint32_t cp) { return (bn_uc_flags(cp) & BN_UC_L) != 0; }
static int bn_tok_pre_is_n(uint32_t cp) { return (bn_uc_flags(cp) & BN_UC_N) != 0; }
static int bn_tok_pre_is_ws(uint32_t cp) { return (bn_uc_flags(cp) & BN_UC_WS) != 0; }
static int bn_tok_pre_is_crlf(uint32_t cp) { return cp == '\r' || cp == '\n'; }
/* [^\s\p{L}\p{N}] */
static int bn_tok_pre_is_other(uint32_t cp) { return (bn_uc_flags(cp) & (BN_UC_L | BN_UC_N | BN_UC_WS)) == 0; }
static uint32_t bn_tok_pre_ascii_lower(uint32_t cp) { return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp; }

/* 's|'t|'re|'ve|'m|'ll|'d, optionally ASCII-case-insensitive: length or 0. */
static size_t bn_tok_pre_contraction(const uint32_t *c, size_t e, size_t i, int fold) {
    if (c[i] != '\'' || i + 1 >= e) return 0;
    uint32_t c1 = fold ? bn_tok_pre_ascii_lower(c[i + 1]) : c[i + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (i + 2 >= e) return 0;
    uint32_t c2 = fold ? bn_tok_pre_ascii_lower(c[i + 2]) : c[i + 2];
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
}

/* Length of the run of white space starting at i. */
static size_t bn_tok_pre_ws_run(const uint32_t *c, size_t e, size_t i) {
    size_t k = i;
    while (k < e && bn_tok_pre_is_ws(c[k])) k++;
    return k - i;
}

/* \s+(?!\S) then (optionally) \s+: the run, minus its last character when a
 * non-space follows and the run is longer than one. */
static size_t bn_tok_pre_ws_tail(const uint32_t *c, size_t e, size_t i, int plain_ws_alt) {
    size_t run = bn_tok_pre_ws_run(c, e, i);
    if (run == 0) return 0;
    if (i + run == e) return run;      /* (?!\S) holds at the end of the piece */
    if (run >= 2) return run - 1;      /* backtrack one: the next char is white space */
    return plain_ws_alt ? run : 0;     /* \s+ */
}

/* LLaMA-3's regex with digit runs of at most max_digits (3: LLaMA-3, 1: Qwen2). */
static size_t bn_tok_pre_llama3_digits(const uint32_t *c, size_t e, size_t i, size_t max_digits) {
    size_t l = bn_tok_pre_contraction(c, e, i, 1);
    if (l) return l;
    uint32_t c0 = c[i];
    /* [^\r\n\p{L}\p{N}]?\p{L}+ : if the optional class matches c0 it must be taken
     * (the alternative without it would need \p{L} at c0, which the class excludes). */
    size_t j = (!bn_tok_pre_is_crlf(c0) && !bn_tok_pre_is_l(c0) && !bn_tok_pre_is_n(c0)) ? i + 1 : i;
    if (j < e && bn_tok_pre_is_l(c[j])) {
        size_t k = j;
        while (k < e && bn_tok_pre_is_l(c[k])) k++;
        return k - i;
    }
    /* \p{N}{1,3} (Qwen2: \p{N}) */
    if (bn_tok_pre_is_n(c0)) {
        size_t k = i;
        while (k < e && k - i < max_digits && bn_tok_pre_is_n(c[k])) k++;
        return k - i;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    j = c0 == ' ' ? i + 1 : i;
    if (j < e && bn_tok_pre_is_other(c[j])) {
        size_t k = j;
        while (k < e && bn_tok_pre_is_other(c[k])) k++;
        while (k < e && bn_tok_pre_is_crlf(c[k])) k++;
        return k - i;
    }
    /* \s*[\r\n]+ : the white-space run up to and including its last \r or \n */
    size_t run = bn_tok_pre_ws_run(c, e, i), last = 0;
    for (size_t k = i; k < i + run; k++)
        if (bn_tok_pre_is_crlf(c[k])) last = k + 1;
    if (last) return last - i;
    /* \s+(?!\S) | \s+ */
    return bn_tok_pre_ws_tail(c, e, i, 1);
}

static size_t bn_tok_pre_llama3(const uint32_t *c, size_t e, size_t i) { return bn_tok_pre_llama3_digits(c, e, i, 3); }
static size_t bn_tok_pre_qwen2(const uint32_t *c, size_t e, size_t i) { return bn_tok_pre_llama3_digits(c, e, i, 1); }

static size_t bn_tok_pre_gpt2_common(const uint32_t *c, size_t e, size_t i, int plain_ws_alt) {
    size_t l = bn_tok_pre_contraction(c, e, i, 0);
    if (l) return l;
    /* ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+': the optional space, when present, must be
     * taken (without it each alternative would start at a space, which none accepts). */
    size_t j = c[i] == ' ' ? i + 1 : i;
    if (j < e) {
        int (*cls)(uint32_t) = bn_tok_pre_is_l(c[j])       ? bn_tok_pre_is_l
                               : bn_tok_pre_is_n(c[j])     ? bn_tok_pre_is_n
                               : bn_tok_pre_is_other(c[j]) ? bn_tok_pre_is_other
                                                           : NULL;
        if (cls) {
            size_t k = j;
            while (k < e && cls(c[k])) k++;
            return k - i;
        }
    }
    return bn_tok_pre_ws_tail(c, e, i, plain_ws_alt);
}

static size_t bn_tok_pre_gpt2(const uint32_t *c, size_t e, size_t i) { return bn_tok_pre_gpt2_common(c, e, i, 1); }
static size_t bn_tok_pre_default2(const uint32_t *c, size_t e, size_t i) { return bn_tok_pre_gpt2_common(c, e, i, 0); }

/* [\p{P}\$\+<=>\^~\|]+ */
static int bn_tok_pre_is_punct1(uint32_t cp) {
    return (bn_uc_flags(cp) & BN_UC_P) || cp == '$' || cp == '+' || cp == '<' || cp == '=' || cp == '>' ||
           cp == '^' || cp == '~' || cp == '|';
}
static size_t bn_tok_pre_default1(const uint32_t *c, size_t e, size_t i) {
    size_t k = i;
    while (k < e && bn_tok_pre_is_punct1(c[k])) k++;
    return k - i;
}

/* \p{N}+ */
static size_t bn_tok_pre_default3(const uint32_t *c, size_t e, size_t i) {
    size_t k = i;
    while (k < e && bn_tok_pre_is_n(c[k])) k++;
    return k - i;
}

/* [0-9][0-9][0-9] */
static size_t bn_tok_pre_default4(const uint32_t *c, size_t e, size_t i) {
    if (i + 3 > e) return 0;
    for (size_t k = i; k < i + 3; k++)
        if (c[k] < '0' || c[k] > '9') return 0;
    return 3;
}

/* One regex over every piece of in_ends[0..n_in); gaps kept. */
static size_t bn_tok_pre_split_pass(bn_matcher m, const uint32_t *c, const size_t *in_ends, size_t n_in, size_t *out) {
    size_t n_out = 0, s = 0;
    for (size_t p = 0; p < n_in; p++) {
        size_t e = in_ends[p], pos = s, gap = s;
        while (pos < e) {
            size_t l = m(c, e, pos);
            if (l) {
                if (gap < pos) out[n_out++] = pos;
                pos += l;
                out[n_out++] = pos;
                gap = pos;
            } else {
                pos++;
            }
        }
        if (gap < e) out[n_out++] = e;
        s = e;
    }
    return n_out;
}

size_t bn_pretok_split(bn_pre_kind pre, const uint32_t *cps, size_t n, size_t *ends, size_t *scratch) {
    if (n == 0) return 0;
    size_t whole = n;
    switch (pre) {
    case BN_PRE_LLAMA3:
        return bn_tok_pre_split_pass(bn_tok_pre_llama3, cps, &whole, 1, ends);
    case BN_PRE_GPT2:
        return bn_tok_pre_split_pass(bn_tok_pre_gpt2, cps, &whole, 1, ends);
    case BN_PRE_QWEN2:
        return bn_tok_pre_split_pass(bn_tok_pre_qwen2, cps, &whole, 1, ends);
    case BN_PRE_DEFAULT:
    default: {
        size_t k = bn_tok_pre_split_pass(bn_tok_pre_default1, cps, &whole, 1, ends);
        k = bn_tok_pre_split_pass(bn_tok_pre_default2, cps, ends, k, scratch);
        k = bn_tok_pre_split_pass(bn_tok_pre_default3, cps, scratch, k, ends);
        k = bn_tok_pre_split_pass(bn_tok_pre_default4, cps, ends, k, scratch);
        memcpy(ends, scratch, k * sizeof *ends);
        return k;
    }
    }
}
