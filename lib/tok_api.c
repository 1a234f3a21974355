/*
 * tok_api.c -- the public tokenizer entry points: special ids, tokenize,
 * detokenize and the streaming decoder.
 *
 * Decoding a token ("piece"):
 *   byte-level BPE  NORMAL: each character of the token text is mapped back through the
 *                   GPT-2 byte map (a character outside the map is copied as UTF-8);
 *                   USER_DEFINED: the text as is.
 *   SentencePiece   NORMAL: "▁" becomes a space; BYTE <0xNN>: that byte;
 *                   USER_DEFINED: the text as is.
 *   CONTROL, UNKNOWN, UNUSED tokens: their text with BITNET_DETOK_RENDER_SPECIAL,
 *                   otherwise nothing.
 * SentencePiece vocabularies with add_space_prefix: the space the tokenizer put before
 * the first word is removed from the first text piece that follows only special tokens,
 * unless BITNET_DETOK_KEEP_LEADING_SPACE.
 * bitnet_detokenize returns the bytes as they are (so tokenize/detokenize round-trips
 * even invalid UTF-8); the streaming decoder returns only complete UTF-8, holding back
 * the bytes of a character split across tokens and writing U+FFFD for bytes that can
 * never become valid.
 */
#include "model.h"
#include "tok_unicode.h"

#define BN_DETOK_FLAGS (BITNET_DETOK_RENDER_SPECIAL | BITNET_DETOK_KEEP_LEADING_SPACE)

static const bn_vocab *bn_tok_api_vocab(const bitnet_model *m) { return m ? m->vocab : NULL; }

bitnet_token bitnet_token_bos(const bitnet_model *m) { const bn_vocab *v = bn_tok_api_vocab(m); return v ? v->bos : -1; }
bitnet_token bitnet_token_eos(const bitnet_model *m) { const bn_vocab *v = bn_tok_api_vocab(m); return v ? v->eos : -1; }
bitnet_token bitnet_token_eot(const bitnet_model *m) { const bn_vocab *v = bn_tok_api_vocab(m); return v ? v->eot : -1; }

int bitnet_token_is_eog(const bitnet_model *m, bitnet_token t) {
    const bn_vocab *v = bn_tok_api_vocab(m);
    return v && t >= 0 && t < v->n && v->eog[t];
}

const char *bitnet_token_text(const bitnet_model *m, bitnet_token t) {
    const bn_vocab *v = bn_tok_api_vocab(m);
    return (v && t >= 0 && t < v->n) ? v->text[t] : NULL;
}

bitnet_status bitnet_tokenize(const bitnet_model *m, const char *text, size_t len, uint32_t flags,
                              bitnet_token *tokens, size_t cap, size_t *n_tokens) {
    const bn_vocab *v = bn_tok_api_vocab(m);
    if (!v) return bn_err(BITNET_E_INVALID_ARG, "bitnet_tokenize: model is NULL");
    if (!text && len) return bn_err(BITNET_E_INVALID_ARG, "bitnet_tokenize: text is NULL");
    if (!tokens && cap) return bn_err(BITNET_E_INVALID_ARG, "bitnet_tokenize: tokens is NULL but cap is %zu", cap);
    if (!n_tokens) return bn_err(BITNET_E_INVALID_ARG, "bitnet_tokenize: n_tokens is NULL");
    if (flags & ~(BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL | BITNET_TOKENIZE_NO_ADD_EOS))
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_tokenize: unknown flags 0x%x", flags);
    if (len > 0x0fffffffu) /* keeps every symbol index and span in 32 bits */
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_tokenize: text of %zu bytes is too long (max 256 MiB)", len);
    bn_toklist l = {0};
    bitnet_status st = bn_tokenize(v, text ? text : "", len, flags, &l);
    if (st == BITNET_OK) {
        *n_tokens = l.n;
        if (l.n > cap) st = bn_err(BITNET_E_BUFFER_TOO_SMALL, "bitnet_tokenize: %zu tokens do not fit in %zu", l.n, cap);
        else if (l.n) memcpy(tokens, l.v, l.n * sizeof *tokens);
    }
    bn_free(l.v);
    return st;
}

/* ---- pieces ---------------------------------------------------------------------------- */

static int bn_tok_api_is_special_type(uint8_t t) {
    return t == BN_TOK_CONTROL || t == BN_TOK_UNKNOWN || t == BN_TOK_UNUSED;
}

static int bn_tok_api_hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Write token t's piece to dst (room for v->len[t] bytes; a piece is never longer than
 * its text) and return its length.  *is_text says whether it is text (not special). */
static size_t bn_tok_api_piece(const bn_vocab *v, int32_t t, uint32_t flags, char *dst, int *is_text) {
    const char *s = v->text[t];
    size_t n = v->len[t];
    uint8_t type = v->type[t];
    *is_text = !bn_tok_api_is_special_type(type);
    if (!*is_text) {
        if (!(flags & BITNET_DETOK_RENDER_SPECIAL)) return 0;
        memcpy(dst, s, n);
        return n;
    }
    if (type == BN_TOK_USER_DEFINED) {
        memcpy(dst, s, n);
        return n;
    }
    size_t o = 0;
    if (v->kind == BN_VOCAB_SPM) {
        if (type == BN_TOK_BYTE && n == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' && bn_tok_api_hexval(s[3]) >= 0 &&
            bn_tok_api_hexval(s[4]) >= 0) {
            dst[0] = (char)(bn_tok_api_hexval(s[3]) * 16 + bn_tok_api_hexval(s[4]));
            return 1;
        }
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                dst[o++] = ' ';
                i += 3;
            } else {
                dst[o++] = s[i++];
            }
        }
        return o;
    }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = bn_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        int b = l ? bn_cp_to_byte(cp) : -1;
        if (b >= 0) {
            dst[o++] = (char)b;
            i += l;
        } else {
            if (!l) l = 1;
            memcpy(dst + o, s + i, l);
            o += l;
            i += l;
        }
    }
    return o;
}

/* Piece with the leading-space rule applied; *at_start tracks "only specials so far". */
static size_t bn_tok_api_piece_at(const bn_vocab *v, int32_t t, uint32_t flags, char *dst, int *at_start) {
    int is_text;
    size_t n = bn_tok_api_piece(v, t, flags, dst, &is_text);
    if (is_text && *at_start) {
        *at_start = 0;
        if (v->kind == BN_VOCAB_SPM && v->add_space_prefix && !(flags & BITNET_DETOK_KEEP_LEADING_SPACE) && n &&
            dst[0] == ' ') {
            memmove(dst, dst + 1, n - 1);
            n--;
        }
    }
    return n;
}

bitnet_status bitnet_detokenize(const bitnet_model *m, const bitnet_token *tokens, size_t n_tokens, uint32_t flags,
                                char *buf, size_t cap, size_t *n_bytes) {
    const bn_vocab *v = bn_tok_api_vocab(m);
    if (!v) return bn_err(BITNET_E_INVALID_ARG, "bitnet_detokenize: model is NULL");
    if (!tokens && n_tokens) return bn_err(BITNET_E_INVALID_ARG, "bitnet_detokenize: tokens is NULL");
    if (!buf && cap) return bn_err(BITNET_E_INVALID_ARG, "bitnet_detokenize: buf is NULL but cap is %zu", cap);
    if (!n_bytes) return bn_err(BITNET_E_INVALID_ARG, "bitnet_detokenize: n_bytes is NULL");
    if (flags & ~BN_DETOK_FLAGS) return bn_err(BITNET_E_INVALID_ARG, "bitnet_detokenize: unknown flags 0x%x", flags);
    uint32_t maxlen = 1;
    for (size_t i = 0; i < n_tokens; i++) {
        if (tokens[i] < 0 || tokens[i] >= v->n)
            return bn_err(BITNET_E_INVALID_ARG, "bitnet_detokenize: token %zu has id %d, outside [0, %d)", i,
                          (int)tokens[i], (int)v->n);
        if (v->len[tokens[i]] > maxlen) maxlen = v->len[tokens[i]];
    }
    char *tmp = bn_malloc(maxlen);
    if (!tmp) return bn_err(BITNET_E_NOMEM, "out of memory detokenizing");
    size_t total = 0;
    int at_start = 1;
    for (size_t i = 0; i < n_tokens; i++) {
        size_t l = bn_tok_api_piece_at(v, tokens[i], flags, tmp, &at_start);
        if (l && total + l <= cap) memcpy(buf + total, tmp, l); /* (buf may be NULL when cap is 0) */
        total += l;
    }
    bn_free(tmp);
    *n_bytes = total;
    if (total > cap) return bn_err(BITNET_E_BUFFER_TOO_SMALL, "bitnet_detokenize: %zu bytes do not fit in %zu", total, cap);
    return BITNET_OK;
}

/* ---- streaming decoder ------------------------------------------------------------------ */

struct bitnet_decoder {
    const bn_vocab *v;
    uint32_t        flags;
    int             at_start;
    unsigned char   pend[4]; /* a proper prefix of a UTF-8 sequence (<= 3 bytes) */
    size_t          n_pend;
    char           *tmp;     /* room for the longest token + 4 */
    char           *out;     /* room for 3 * (longest token + 4) */
};

/* Whether s[0..n) (n >= 1) is a proper prefix of a valid UTF-8 sequence. */
static int bn_tok_api_utf8_partial(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) need = 2;
    else if (c >= 0xe0 && c <= 0xef) { need = 3; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 4; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
    else return 0;
    if (n >= need) return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return 0;
    }
    return 1;
}

bitnet_status bitnet_decoder_create(const bitnet_model *m, uint32_t flags, bitnet_decoder **out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_decoder_create: out is NULL");
    *out = NULL;
    const bn_vocab *v = bn_tok_api_vocab(m);
    if (!v) return bn_err(BITNET_E_INVALID_ARG, "bitnet_decoder_create: model is NULL");
    if (flags & ~BN_DETOK_FLAGS) return bn_err(BITNET_E_INVALID_ARG, "bitnet_decoder_create: unknown flags 0x%x", flags);
    uint32_t maxlen = 1;
    for (int32_t i = 0; i < v->n; i++)
        if (v->len[i] > maxlen) maxlen = v->len[i];
    bitnet_decoder *d = bn_calloc(1, sizeof *d);
    if (d) {
        d->tmp = bn_malloc((size_t)maxlen + 4);
        d->out = bn_mallocn((size_t)maxlen + 4, 3);
    }
    if (!d || !d->tmp || !d->out) {
        bitnet_decoder_free(d);
        return bn_err(BITNET_E_NOMEM, "out of memory creating a decoder");
    }
    d->v = v;
    d->flags = flags;
    d->at_start = 1;
    *out = d;
    return BITNET_OK;
}

void bitnet_decoder_free(bitnet_decoder *d) {
    if (!d) return;
    bn_free(d->tmp);
    bn_free(d->out);
    bn_free(d);
}

static bitnet_status bn_tok_api_give(const char *src, size_t n, char *buf, size_t cap, size_t *n_bytes, const char *fn) {
    *n_bytes = n;
    if (n > cap) return bn_err(BITNET_E_BUFFER_TOO_SMALL, "%s: %zu bytes do not fit in %zu", fn, n, cap);
    if (n) memcpy(buf, src, n);
    return BITNET_OK;
}

bitnet_status bitnet_decoder_push(bitnet_decoder *d, bitnet_token t, char *buf, size_t cap, size_t *n_bytes) {
    if (!d || !n_bytes || (!buf && cap))
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_decoder_push: %s is NULL", !d ? "decoder" : !n_bytes ? "n_bytes" : "buf");
    const bn_vocab *v = d->v;
    if (t < 0 || t >= v->n)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_decoder_push: token id %d outside [0, %d)", (int)t, (int)v->n);
    /* Work on copies so that a too-small buffer leaves the decoder unchanged. */
    int at_start = d->at_start;
    memcpy(d->tmp, d->pend, d->n_pend);
    size_t n = d->n_pend + bn_tok_api_piece_at(v, t, d->flags, d->tmp + d->n_pend, &at_start);
    const unsigned char *s = (const unsigned char *)d->tmp;
    size_t o = 0, i = 0;
    while (i < n) {
        size_t l = bn_utf8_decode(s + i, n - i, NULL);
        if (l) {
            memcpy(d->out + o, s + i, l);
            o += l;
            i += l;
        } else if (bn_tok_api_utf8_partial(s + i, n - i)) {
            break;
        } else {
            memcpy(d->out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    bitnet_status st = bn_tok_api_give(d->out, o, buf, cap, n_bytes, "bitnet_decoder_push");
    if (st) return st;
    d->at_start = at_start;
    d->n_pend = n - i;
    memcpy(d->pend, s + i, d->n_pend);
    return BITNET_OK;
}

bitnet_status bitnet_decoder_flush(bitnet_decoder *d, char *buf, size_t cap, size_t *n_bytes) {
    if (!d || !n_bytes || (!buf && cap))
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_decoder_flush: %s is NULL", !d ? "decoder" : !n_bytes ? "n_bytes" : "buf");
    bitnet_status st = bn_tok_api_give("\xef\xbf\xbd", d->n_pend ? 3 : 0, buf, cap, n_bytes, "bitnet_decoder_flush");
    if (st) return st;
    d->n_pend = 0;
    d->at_start = 1;
    return BITNET_OK;
}
