/*
 * tok_bpe.c -- the encoders: byte-level BPE (tokenizer.ggml.model = gpt2) and
 * SentencePiece BPE (model = llama), plus special-token splitting.
 *
 * Both encoders run the same merge loop over a doubly linked list of symbols (spans of
 * the input) with a binary min-heap of candidate pairs:
 *   byte-level BPE: the symbols start as single bytes (each byte's token is its GPT-2
 *     mapped character); a pair merges when (left id, right id) is in the merge table,
 *     lowest rank first.  With ignore_merges (LLaMA-3) a piece that is already a token
 *     is emitted whole.
 *   SentencePiece: the text gets the "▁" prefix (when asked) and every space becomes
 *     "▁"; symbols start as UTF-8 characters (an invalid byte is a symbol of its own);
 *     a pair merges when the concatenated text is a NORMAL or USER_DEFINED token,
 *     highest score first.  Symbols left that are not tokens become <0xNN> byte tokens
 *     (or the unknown token when the vocabulary has no byte tokens).
 * Ties go to the leftmost pair.  A heap entry remembers the combined byte length of its
 * pair; when popped it is used only if both symbols are still alive, adjacent and of
 * that total length (lengths only grow, so this identifies stale entries exactly).
 */
#include "tok_vocab.h"
#include "tok_unicode.h"

#include <stdlib.h>

bitnet_status bn_toklist_push(bn_toklist *l, bitnet_token t) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        bitnet_token *nv = bn_realloc(l->v, nc * sizeof *nv);
        if (!nv) return bn_err(BITNET_E_NOMEM, "out of memory growing the token list");
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = t;
    return BITNET_OK;
}

typedef struct sym {
    uint32_t start, len; /* span in the (mapped / escaped) input; len 0 = merged away */
    int32_t  prev, next;
    int32_t  id;         /* token id of the span, -1 if it is none */
} sym;

typedef struct pair {
    uint64_t key;  /* priority (smaller first) << 32 | left index */
    int32_t  left, right, result;
    uint32_t size;
} pair;

typedef struct work {
    sym      *syms;  size_t syms_cap;
    pair     *heap;  size_t heap_n, heap_cap;
} work;

static void work_free(work *w) {
    bn_free(w->syms);
    bn_free(w->heap);
}

static bitnet_status work_reserve(work *w, size_t n) {
    if (n > w->syms_cap) {
        sym *s = bn_realloc(w->syms, n * sizeof *s);
        if (!s) return bn_err(BITNET_E_NOMEM, "out of memory in the tokenizer");
        w->syms = s;
        w->syms_cap = n;
    }
    w->heap_n = 0;
    return BITNET_OK;
}

static bitnet_status heap_push(work *w, pair p) {
    if (w->heap_n == w->heap_cap) {
        size_t nc = w->heap_cap ? w->heap_cap * 2 : 64;
        pair *nh = bn_realloc(w->heap, nc * sizeof *nh);
        if (!nh) return bn_err(BITNET_E_NOMEM, "out of memory in the tokenizer");
        w->heap = nh;
        w->heap_cap = nc;
    }
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t par = (i - 1) / 2;
        if (w->heap[par].key <= p.key) break;
        w->heap[i] = w->heap[par];
        i = par;
    }
    w->heap[i] = p;
    return BITNET_OK;
}

static pair heap_pop(work *w) {
    pair top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && w->heap[c + 1].key < w->heap[c].key) c++;
        if (last.key <= w->heap[c].key) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* Float score -> 32-bit key that sorts higher scores first. */
static uint32_t score_key(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* ascending order of floats */
    return ~u;                                       /* descending */
}

static int spm_mergeable(const bn_vocab *v, int32_t id) {
    return id >= 0 && (v->type[id] == BN_TOK_NORMAL || v->type[id] == BN_TOK_USER_DEFINED);
}

/* Queue the pair (l, l.next) if it can merge. */
static bitnet_status try_pair(const bn_vocab *v, work *w, const char *s, int32_t l) {
    sym *a = &w->syms[l];
    if (a->next < 0) return BITNET_OK;
    sym *b = &w->syms[a->next];
    pair p;
    p.left = l;
    p.right = a->next;
    p.size = a->len + b->len;
    if (v->kind == BN_VOCAB_BPE) {
        uint32_t rank;
        if (!bn_vocab_merge(v, a->id, b->id, &rank, &p.result)) return BITNET_OK;
        p.key = ((uint64_t)rank << 32) | (uint32_t)l;
    } else {
        int32_t id = bn_vocab_find(v, s + a->start, p.size);
        if (!spm_mergeable(v, id)) return BITNET_OK;
        p.result = id;
        p.key = ((uint64_t)score_key(v->score[id]) << 32) | (uint32_t)l;
    }
    return heap_push(w, p);
}

/* Merge loop over w->syms[0..n) (already linked, ids set). */
static bitnet_status merge_loop(const bn_vocab *v, work *w, const char *s, int32_t n) {
    bitnet_status st;
    for (int32_t i = 0; i + 1 < n; i++)
        if ((st = try_pair(v, w, s, i))) return st;
    while (w->heap_n) {
        pair p = heap_pop(w);
        sym *a = &w->syms[p.left], *b = &w->syms[p.right];
        if (a->len == 0 || b->len == 0 || a->next != p.right || a->len + b->len != p.size) continue;
        a->len += b->len;
        a->id = p.result;
        a->next = b->next;
        if (b->next >= 0) w->syms[b->next].prev = p.left;
        b->len = 0;
        if (a->prev >= 0 && (st = try_pair(v, w, s, a->prev))) return st;
        if ((st = try_pair(v, w, s, p.left))) return st;
    }
    return BITNET_OK;
}

/* Byte-level BPE of one piece (raw bytes). */
static bitnet_status bpe_piece(const bn_vocab *v, work *w, const unsigned char *b, size_t n, char *mapped,
                               bn_toklist *out) {
    bitnet_status st;
    if (v->ignore_merges) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t cp = bn_byte_to_cp(b[i]);
            if (cp < 0x80) mapped[m++] = (char)cp;
            else { mapped[m++] = (char)(0xc0 | (cp >> 6)); mapped[m++] = (char)(0x80 | (cp & 0x3f)); }
        }
        int32_t id = bn_vocab_find(v, mapped, m);
        if (id >= 0) return bn_toklist_push(out, id);
    }
    if ((st = work_reserve(w, n))) return st;
    for (size_t i = 0; i < n; i++) {
        sym *y = &w->syms[i];
        y->start = (uint32_t)i;
        y->len = 1;
        y->prev = (int32_t)i - 1;
        y->next = i + 1 < n ? (int32_t)i + 1 : -1;
        y->id = v->byte_tok[b[i]];
    }
    if ((st = merge_loop(v, w, (const char *)b, (int32_t)n))) return st;
    for (int32_t i = 0; i >= 0; i = w->syms[i].next) {
        int32_t id = w->syms[i].id;
        if (id < 0) id = v->unk; /* a byte with no token: only in a broken vocabulary */
        if (id >= 0 && (st = bn_toklist_push(out, id))) return st;
    }
    return BITNET_OK;
}

/* Decode text into code points (BN_CP_INVALID per invalid byte) with byte offsets. */
static size_t to_cps(const char *text, size_t len, uint32_t *cps, size_t *off) {
    const unsigned char *p = (const unsigned char *)text;
    size_t n = 0, i = 0;
    while (i < len) {
        uint32_t cp;
        size_t l = bn_utf8_decode(p + i, len - i, &cp);
        if (!l) { cp = BN_CP_INVALID; l = 1; }
        cps[n] = cp;
        off[n] = i;
        n++;
        i += l;
    }
    off[n] = len;
    return n;
}

static bitnet_status encode_bpe(const bn_vocab *v, work *w, const char *text, size_t len, bn_toklist *out) {
    bitnet_status st = BITNET_OK;
    uint32_t *cps = bn_mallocn(len, sizeof *cps);
    size_t *off = bn_mallocn(len + 1, sizeof *off);
    size_t *ends = bn_mallocn(len, sizeof *ends);
    size_t *scratch = bn_mallocn(len, sizeof *scratch);
    char *mapped = bn_mallocn(len, 2);
    if (!cps || !off || !ends || !scratch || !mapped) {
        st = bn_err(BITNET_E_NOMEM, "out of memory tokenizing %zu bytes", len);
        goto done;
    }
    size_t n = to_cps(text, len, cps, off);
    size_t k = bn_pretok_split(v->pre, cps, n, ends, scratch);
    size_t s = 0;
    for (size_t i = 0; i < k && !st; i++) {
        size_t bs = off[s], be = off[ends[i]];
        st = bpe_piece(v, w, (const unsigned char *)text + bs, be - bs, mapped, out);
        s = ends[i];
    }
done:
    bn_free(cps);
    bn_free(off);
    bn_free(ends);
    bn_free(scratch);
    bn_free(mapped);
    return st;
}

static bitnet_status encode_spm(const bn_vocab *v, work *w, const char *text, size_t len, int add_prefix,
                                bn_toklist *out) {
    static const char k_space[] = "\xe2\x96\x81"; /* U+2581 */
    bitnet_status st;
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t n = len + 2 * spaces + (add_prefix ? 3 : 0); /* each space grows by 2 bytes */
    char *s = bn_malloc(n);
    if (!s) return bn_err(BITNET_E_NOMEM, "out of memory tokenizing %zu bytes", len);
    size_t m = 0;
    if (add_prefix) { memcpy(s, k_space, 3); m = 3; }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { memcpy(s + m, k_space, 3); m += 3; }
        else s[m++] = text[i];
    }
    if ((st = work_reserve(w, n))) goto done;
    int32_t ns = 0;
    for (size_t i = 0; i < n;) {
        size_t l = bn_utf8_decode((const unsigned char *)s + i, n - i, NULL);
        if (!l) l = 1;
        sym *y = &w->syms[ns];
        y->start = (uint32_t)i;
        y->len = (uint32_t)l;
        y->prev = ns - 1;
        y->next = i + l < n ? ns + 1 : -1;
        int32_t id = bn_vocab_find(v, s + i, l);
        y->id = spm_mergeable(v, id) ? id : -1;
        ns++;
        i += l;
    }
    if (ns == 0) goto done;
    if ((st = merge_loop(v, w, s, ns))) goto done;
    for (int32_t i = 0; i >= 0; i = w->syms[i].next) {
        sym *y = &w->syms[i];
        if (y->id >= 0) {
            if ((st = bn_toklist_push(out, y->id))) goto done;
            continue;
        }
        int all_bytes = 1;
        for (uint32_t j = 0; j < y->len; j++)
            if (v->byte_tok[(unsigned char)s[y->start + j]] < 0) all_bytes = 0;
        if (all_bytes) {
            for (uint32_t j = 0; j < y->len; j++)
                if ((st = bn_toklist_push(out, v->byte_tok[(unsigned char)s[y->start + j]]))) goto done;
        } else if (v->unk >= 0) {
            if ((st = bn_toklist_push(out, v->unk))) goto done;
        }
    }
done:
    bn_free(s);
    return st;
}

bitnet_status bn_tokenize_raw(const bn_vocab *v, const char *text, size_t len, int add_prefix, bn_toklist *out) {
    work w = {0};
    bitnet_status st = v->kind == BN_VOCAB_BPE ? encode_bpe(v, &w, text, len, out)
                                               : encode_spm(v, &w, text, len, add_prefix, out);
    work_free(&w);
    return st;
}

/* ---- special tokens -------------------------------------------------------------------
 * As llama.cpp's tokenizer_st_partition: starting from the whole text as one raw
 * fragment, each special token in turn (longest text first) is cut out of every raw
 * fragment wherever it occurs (left to right, non-overlapping).  USER_DEFINED tokens
 * are always cut out (they are ordinary text pieces of the vocabulary, as in
 * SentencePiece); CONTROL and UNKNOWN tokens only with BITNET_TOKENIZE_PARSE_SPECIAL. */

typedef struct frag {
    size_t  start, end; /* raw text span, when id < 0 */
    int32_t id;         /* a special token, or -1    */
} frag;

typedef struct fraglist {
    frag  *v;
    size_t n, cap;
} fraglist;

static bitnet_status frag_push(fraglist *l, size_t s, size_t e, int32_t id) {
    if (id < 0 && s == e) return BITNET_OK; /* empty raw fragments vanish */
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        frag *nv = bn_realloc(l->v, nc * sizeof *nv);
        if (!nv) return bn_err(BITNET_E_NOMEM, "out of memory splitting special tokens");
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n].start = s;
    l->v[l->n].end = e;
    l->v[l->n].id = id;
    l->n++;
    return BITNET_OK;
}

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0 || nn > hn) return NULL;
    return memmem(h, hn, nd, nn);
}

/* Whether a special token found at text[at..at+tl) may be used.  Without a content
 * mask every occurrence counts.  With one (chat rendering, see docs/chat.md), an
 * occurrence that touches a byte of message text is plain text, except USER_DEFINED
 * tokens, which are ordinary vocabulary -- unless they start, end or pad a sequence
 * or a turn (BOS, EOS, EOT, end-of-generation, padding): those never come from a
 * message. */
static int special_allowed(const bn_vocab *v, int32_t id, const uint8_t *content, size_t at, size_t tl) {
    if (!content) return 1;
    int touches = 0;
    for (size_t i = 0; i < tl && !touches; i++) touches = content[at + i];
    if (!touches) return 1;
    if (v->type[id] != BN_TOK_USER_DEFINED) return 0;
    return !(v->eog[id] || id == v->bos || id == v->eos || id == v->eot || id == v->pad);
}

/* Whether a token produced from message text is one a message must never produce. */
static int control_like(const bn_vocab *v, int32_t id) {
    return v->type[id] == BN_TOK_CONTROL || v->eog[id] || id == v->bos || id == v->eos || id == v->eot ||
           id == v->pad;
}

bitnet_status bn_tokenize_masked(const bn_vocab *v, const char *text, size_t len, uint32_t flags,
                                 const uint8_t *content, bn_toklist *out) {
    bitnet_status st = BITNET_OK;
    fraglist a = {0}, b = {0};
    int parse_special = (flags & BITNET_TOKENIZE_PARSE_SPECIAL) != 0;
    if ((st = frag_push(&a, 0, len, -1))) goto done;
    for (int32_t k = 0; k < v->n_specials && a.n; k++) {
        int32_t id = v->specials[k];
        if (v->type[id] != BN_TOK_USER_DEFINED && !parse_special) continue;
        const char *t = v->text[id];
        size_t tl = v->len[id];
        if (!find_bytes(text, len, t, tl)) continue; /* cheap test first */
        b.n = 0;
        for (size_t f = 0; f < a.n; f++) {
            frag fr = a.v[f];
            if (fr.id >= 0) {
                if ((st = frag_push(&b, 0, 0, fr.id))) goto done;
                continue;
            }
            size_t pos = fr.start, from = fr.start;
            const char *hit;
            while ((hit = find_bytes(text + from, fr.end - from, t, tl))) {
                size_t at = (size_t)(hit - text);
                if (!special_allowed(v, id, content, at, tl)) { /* message text: keep looking after it */
                    from = at + 1;
                    continue;
                }
                if ((st = frag_push(&b, pos, at, -1)) || (st = frag_push(&b, 0, 0, id))) goto done;
                pos = from = at + tl;
            }
            if ((st = frag_push(&b, pos, fr.end, -1))) goto done;
        }
        fraglist tmp = a;
        a = b;
        b = tmp;
    }
    if ((flags & BITNET_TOKENIZE_ADD_BOS) && v->add_bos && v->bos >= 0 && (st = bn_toklist_push(out, v->bos)))
        goto done;
    int prev_special = 1;
    for (size_t f = 0; f < a.n; f++) {
        if (a.v[f].id >= 0) {
            if ((st = bn_toklist_push(out, a.v[f].id))) goto done;
            prev_special = 1;
        } else {
            int prefix = v->kind == BN_VOCAB_SPM && v->add_space_prefix && prev_special;
            size_t first = out->n, s0 = a.v[f].start, s1 = a.v[f].end;
            if ((st = bn_tokenize_raw(v, text + s0, s1 - s0, prefix, out))) goto done;
            prev_special = 0;
            if (content) { /* a vocabulary could spell a control token from ordinary pieces */
                int touches = 0;
                for (size_t i = s0; i < s1 && !touches; i++) touches = content[i];
                for (size_t i = first; touches && i < out->n; i++)
                    if (control_like(v, out->v[i])) {
                        st = bn_err(BITNET_E_UNSUPPORTED,
                                    "tokenizing a chat: message text would become the special token %d ('%s') even "
                                    "as plain text (this vocabulary spells it from ordinary pieces)",
                                    (int)out->v[i], v->text[out->v[i]]);
                        goto done;
                    }
            }
        }
    }
    if (v->add_eos && !(flags & BITNET_TOKENIZE_NO_ADD_EOS) && v->eos >= 0) st = bn_toklist_push(out, v->eos);
done:
    bn_free(a.v);
    bn_free(b.v);
    return st;
}

bitnet_status bn_tokenize(const bn_vocab *v, const char *text, size_t len, uint32_t flags, bn_toklist *out) {
    return bn_tokenize_masked(v, text, len, flags, NULL, out);
}
