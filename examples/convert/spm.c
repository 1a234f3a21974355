/*
 * spm.c -- the few fields of a SentencePiece tokenizer.model that a GGUF needs.
 *
 * tokenizer.model is a serialized protobuf `ModelProto` (sentencepiece_model.proto):
 *   1: repeated SentencePiece pieces   { 1: string piece; 2: float score; 3: enum type }
 *   2: TrainerSpec trainer_spec        { 40: int32 unk_id; 41: bos_id; 42: eos_id; 43: pad_id }
 *   3: NormalizerSpec normalizer_spec  { 3: bool add_dummy_prefix }
 * Wire format: each field is a varint key (field number << 3 | wire type) followed by
 * a varint (type 0), 8 bytes (1), a varint length + that many bytes (2) or 4 bytes (5).
 * Every length is checked against the bytes left in its enclosing message before it is
 * used; unknown fields are skipped; groups (types 3/4) are refused.  Piece types use
 * SentencePiece's numbering (1 normal, 2 unknown, 3 control, 4 user defined, 5 unused,
 * 6 byte), which is also GGUF's tokenizer.ggml.token_type numbering.  Proto defaults
 * apply to absent fields: type normal, score 0, unk 0, bos 1, eos 2, pad -1,
 * add_dummy_prefix true.
 */
#include "convert.h"

#include <stdlib.h>
#include <string.h>

typedef struct cv_pb {
    const uint8_t *p, *end;
    const char    *what;
} cv_pb;

static int cv_pb_varint(cv_pb *b, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return cv_fail("%s: truncated varint", b->what);
        uint8_t c = *b->p++;
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return cv_fail("%s: varint longer than 10 bytes", b->what);
}

/* Read one field header and, for length-delimited fields, the payload bounds. */
static int cv_pb_field(cv_pb *b, uint32_t *num, int *wt, uint64_t *val, const uint8_t **data, size_t *len) {
    uint64_t key = 0; /* (set by cv_pb_varint on success; gcc cannot see that) */
    if (cv_pb_varint(b, &key) != 0) return -1;
    *num = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    if (*num == 0) return cv_fail("%s: field number 0", b->what);
    switch (*wt) {
    case 0: return cv_pb_varint(b, val);
    case 1:
    case 5: {
        size_t n = *wt == 1 ? 8 : 4;
        if ((size_t)(b->end - b->p) < n) return cv_fail("%s: truncated fixed-size field %u", b->what, *num);
        uint64_t x = 0;
        for (size_t i = n; i-- > 0;) x = x << 8 | b->p[i];
        *val = x;
        b->p += n;
        return 0;
    }
    case 2: {
        uint64_t l = 0;
        if (cv_pb_varint(b, &l) != 0) return -1;
        if (l > (uint64_t)(b->end - b->p))
            return cv_fail("%s: field %u claims %llu bytes but only %zu remain", b->what, *num, (unsigned long long)l,
                           (size_t)(b->end - b->p));
        *data = b->p;
        *len = (size_t)l;
        b->p += l;
        return 0;
    }
    default: return cv_fail("%s: unsupported protobuf wire type %d (field %u)", b->what, *wt, *num);
    }
}

static int cv_spm_piece(cv_spm *s, const uint8_t *data, size_t len, const char *what) {
    cv_pb b = {data, data + len, what};
    const char *piece = NULL;
    size_t plen = 0;
    float score = 0;
    int32_t type = 1;
    int have_piece = 0;
    while (b.p < b.end) {
        uint32_t num;
        int wt;
        uint64_t v = 0;
        const uint8_t *d = NULL;
        size_t l = 0;
        if (cv_pb_field(&b, &num, &wt, &v, &d, &l) != 0) return -1;
        if (num == 1 && wt == 2) {
            piece = (const char *)d;
            plen = l;
            have_piece = 1;
        } else if (num == 2 && wt == 5) {
            uint32_t u = (uint32_t)v;
            memcpy(&score, &u, 4);
        } else if (num == 3 && wt == 0) {
            if (v < 1 || v > 6) return cv_fail("%s: piece %zu has unknown type %llu", what, s->n, (unsigned long long)v);
            type = (int32_t)v;
        } else if (num <= 3) {
            return cv_fail("%s: piece %zu: field %u has wire type %d", what, s->n, num, wt);
        }
    }
    if (!have_piece) return cv_fail("%s: piece %zu has no text", what, s->n);
    if (memchr(piece, 0, plen)) return cv_fail("%s: piece %zu contains a NUL byte", what, s->n);
    char **np = realloc(s->pieces, (s->n + 1) * sizeof *np);
    if (np) s->pieces = np;
    float *ns = realloc(s->scores, (s->n + 1) * sizeof *ns);
    if (ns) s->scores = ns;
    int32_t *nt = realloc(s->types, (s->n + 1) * sizeof *nt);
    if (nt) s->types = nt;
    if (!np || !ns || !nt) return cv_fail("out of memory");
    char *copy = malloc(plen + 1);
    if (!copy) return cv_fail("out of memory");
    memcpy(copy, piece, plen);
    copy[plen] = 0;
    s->pieces[s->n] = copy;
    s->scores[s->n] = score;
    s->types[s->n] = type;
    s->n++;
    return 0;
}

static int cv_spm_id(uint64_t v, int64_t *out) {
    /* int32 fields: negative values are sign-extended to 64 bits on the wire */
    int64_t x = (int64_t)v;
    if (x < -1 || x > INT32_MAX) return -1;
    *out = x;
    return 0;
}

int cv_spm_parse(const uint8_t *data, size_t len, const char *what, cv_spm *s) {
    memset(s, 0, sizeof *s);
    s->unk_id = 0;
    s->bos_id = 1;
    s->eos_id = 2;
    s->pad_id = -1;
    s->add_dummy_prefix = 1;
    cv_pb b = {data, data + len, what};
    while (b.p < b.end) {
        uint32_t num;
        int wt;
        uint64_t v = 0;
        const uint8_t *d = NULL;
        size_t l = 0;
        if (cv_pb_field(&b, &num, &wt, &v, &d, &l) != 0) goto fail;
        if (num == 1 && wt == 2) {
            if (cv_spm_piece(s, d, l, what) != 0) goto fail;
        } else if (num == 2 && wt == 2) {
            cv_pb t = {d, d + l, what};
            while (t.p < t.end) {
                uint32_t tn;
                int tw;
                uint64_t tv = 0;
                const uint8_t *td;
                size_t tl;
                if (cv_pb_field(&t, &tn, &tw, &tv, &td, &tl) != 0) goto fail;
                int64_t *dst = tn == 40 ? &s->unk_id : tn == 41 ? &s->bos_id : tn == 42 ? &s->eos_id
                             : tn == 43 ? &s->pad_id : NULL;
                if (dst && tw == 0 && cv_spm_id(tv, dst) != 0) {
                    cv_fail("%s: trainer_spec field %u: id out of range", what, tn);
                    goto fail;
                }
            }
        } else if (num == 3 && wt == 2) {
            cv_pb t = {d, d + l, what};
            while (t.p < t.end) {
                uint32_t tn;
                int tw;
                uint64_t tv = 0;
                const uint8_t *td;
                size_t tl;
                if (cv_pb_field(&t, &tn, &tw, &tv, &td, &tl) != 0) goto fail;
                if (tn == 3 && tw == 0) s->add_dummy_prefix = tv != 0;
            }
        }
    }
    if (s->n == 0) {
        cv_fail("%s: no pieces (is this a SentencePiece model?)", what);
        goto fail;
    }
    return 0;
fail:
    cv_spm_free(s);
    return -1;
}

void cv_spm_free(cv_spm *s) {
    for (size_t i = 0; i < s->n; i++) free(s->pieces[i]);
    free(s->pieces);
    free(s->scores);
    free(s->types);
    memset(s, 0, sizeof *s);
}
