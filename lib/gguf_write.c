/*
 * gguf_write.c -- writing GGUF v3 files (bitnet_gguf_writer_*).
 *
 * The writer collects metadata (already encoded, in one growing byte buffer) and
 * tensor infos in memory; begin() writes
 *
 *     "GGUF" u32 3  u64 n_tensors  u64 n_kv
 *     [general.alignment u32, when the alignment is not 32]  the metadata in call order
 *     tensor infos in declaration order
 *     zero padding to the alignment                          <- data section
 *
 * and write() then streams tensor bytes straight to the file: nothing of the tensor
 * data is buffered (beyond stdio's buffer), so models of any size can be written.
 * Each tensor is followed by zero padding up to the alignment, and tensor i's offset
 * is the sum of the padded sizes of tensors 0..i-1 -- exactly the layout upstream
 * ggml's writer produces and its reader insists on.
 *
 * Encoding assumes a little-endian host (as the reader does).
 */
#include "gguf.h"
#include "type_table.h"

#include <errno.h>
#include <stdio.h>

typedef struct wtensor {
    char     name[BN_GGUF_MAX_NAME];
    uint32_t n_dims;
    int64_t  ne[BN_GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t size;   /* bytes, from bn_tensor_nbytes */
    uint64_t offset; /* in the data section */
} wtensor;

enum { W_DECLARE, W_DATA, W_DONE };

struct bitnet_gguf_writer {
    int       state;
    uint32_t  alignment;
    int       raw_alignment; /* general.alignment was given through set_raw: do not add ours */
    /* metadata: encoded records and the keys (for duplicate checks) */
    uint8_t  *kv;
    size_t    kv_len, kv_cap;
    uint64_t  n_kv;
    char    **keys;
    size_t    keys_cap;
    /* tensors */
    wtensor  *t;
    uint64_t  n_t, t_cap;
    uint64_t  data_size; /* sum of padded sizes */
    /* streaming state */
    FILE     *f;
    char     *path;
    uint64_t  cur;      /* tensor being written                       */
    uint64_t  cur_done; /* bytes of it written so far                 */
};

/* ---- encoding helpers --------------------------------------------------------------------- */

static bitnet_status bn_gguf_write_kv_reserve(bitnet_gguf_writer *w, size_t n) {
    if (n <= w->kv_cap - w->kv_len) return BITNET_OK;
    if (n > SIZE_MAX / 2 - w->kv_len) return bn_err(BITNET_E_NOMEM, "GGUF writer: metadata too large");
    size_t cap = w->kv_cap ? w->kv_cap : 256;
    while (cap - w->kv_len < n) cap *= 2;
    uint8_t *p = bn_realloc(w->kv, cap);
    if (!p) return bn_err(BITNET_E_NOMEM, "GGUF writer: out of memory for metadata");
    w->kv = p;
    w->kv_cap = cap;
    return BITNET_OK;
}

/* Appends; the caller reserved the room. */
static void bn_gguf_write_put(bitnet_gguf_writer *w, const void *p, size_t n) {
    if (n) memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
}
static void bn_gguf_write_put_u32(bitnet_gguf_writer *w, uint32_t v) { bn_gguf_write_put(w, &v, 4); }
static void bn_gguf_write_put_u64(bitnet_gguf_writer *w, uint64_t v) { bn_gguf_write_put(w, &v, 8); }

/* Common checks for every setter; on success the key is recorded and the record's
 * key and type are encoded, with `payload` more bytes reserved. */
static bitnet_status bn_gguf_write_begin_kv(bitnet_gguf_writer *w, const char *fn, const char *key,
                                            bitnet_gguf_type type, size_t payload, int raw) {
    if (!w || !key) return bn_err(BITNET_E_INVALID_ARG, "%s: NULL argument", fn);
    if (w->state != W_DECLARE)
        return bn_err(BITNET_E_INVALID_ARG, "%s: key '%s' added after bitnet_gguf_writer_begin", fn, key);
    size_t klen = strlen(key);
    if (klen == 0) return bn_err(BITNET_E_INVALID_ARG, "%s: empty key", fn);
    if (!bn_utf8_valid(key, klen)) return bn_err(BITNET_E_INVALID_ARG, "%s: key is not valid UTF-8", fn);
    if (!raw && strcmp(key, "general.alignment") == 0)
        return bn_err(BITNET_E_INVALID_ARG, "%s: set general.alignment with bitnet_gguf_writer_set_alignment", fn);
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) return bn_err(BITNET_E_INVALID_ARG, "%s: duplicate key '%s'", fn, key);
    if (w->n_kv == w->keys_cap) {
        size_t cap = w->keys_cap ? 2 * w->keys_cap : 32;
        char **k = bn_realloc(w->keys, cap * sizeof *k);
        if (!k) return bn_err(BITNET_E_NOMEM, "GGUF writer: out of memory for keys");
        w->keys = k;
        w->keys_cap = cap;
    }
    if (payload > SIZE_MAX - 64 - klen) return bn_err(BITNET_E_INVALID_ARG, "%s: key '%s': value too large", fn, key);
    bitnet_status st = bn_gguf_write_kv_reserve(w, 8 + klen + 4 + payload);
    if (st) return st;
    char *copy = bn_strndup(key, klen);
    if (!copy) return bn_err(BITNET_E_NOMEM, "GGUF writer: out of memory for keys");
    w->keys[w->n_kv++] = copy;
    if (raw && strcmp(key, "general.alignment") == 0) w->raw_alignment = 1;
    bn_gguf_write_put_u64(w, klen);
    bn_gguf_write_put(w, key, klen);
    bn_gguf_write_put_u32(w, (uint32_t)type);
    return BITNET_OK;
}

/* ---- public: creation and metadata ------------------------------------------------------------- */

bitnet_status bitnet_gguf_writer_create(bitnet_gguf_writer **out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_create: out is NULL");
    *out = NULL;
    bitnet_gguf_writer *w = bn_calloc(1, sizeof *w);
    if (!w) return bn_err(BITNET_E_NOMEM, "out of memory creating a GGUF writer");
    w->alignment = 32;
    *out = w;
    return BITNET_OK;
}

void bitnet_gguf_writer_free(bitnet_gguf_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    for (uint64_t i = 0; i < w->n_kv; i++) bn_free(w->keys[i]);
    bn_free(w->keys);
    bn_free(w->kv);
    bn_free(w->t);
    bn_free(w->path);
    bn_free(w);
}

bitnet_status bitnet_gguf_writer_set_alignment(bitnet_gguf_writer *w, uint32_t alignment) {
    if (!w) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_alignment: writer is NULL");
    if (w->state != W_DECLARE || w->n_t)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_alignment: must be called before tensors are added");
    if (alignment == 0 || alignment > 65536 || (alignment & (alignment - 1)))
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_alignment: %u is not a power of two in 1..65536",
                      alignment);
    w->alignment = alignment;
    return BITNET_OK;
}

bitnet_status bitnet_gguf_writer_set_scalar(bitnet_gguf_writer *w, const char *key, bitnet_gguf_type type,
                                            const void *value) {
    const int n = bn_gguf_type_size(type);
    if (n <= 0) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_scalar: key '%s': type %d is not a scalar type",
                          key ? key : "(null)", (int)type);
    if (!value) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_scalar: value is NULL");
    if (type == BITNET_GGUF_BOOL && *(const uint8_t *)value > 1)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_scalar: key '%s': bool byte must be 0 or 1",
                      key ? key : "(null)");
    bitnet_status st = bn_gguf_write_begin_kv(w, "bitnet_gguf_writer_set_scalar", key, type, (size_t)n, 0);
    if (st) return st;
    bn_gguf_write_put(w, value, (size_t)n);
    return BITNET_OK;
}

bitnet_status bitnet_gguf_writer_set_str(bitnet_gguf_writer *w, const char *key, const char *s, size_t len) {
    if (!s && len) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_str: string is NULL");
    bitnet_status st = bn_gguf_write_begin_kv(w, "bitnet_gguf_writer_set_str", key, BITNET_GGUF_STRING, 8 + len, 0);
    if (st) return st;
    bn_gguf_write_put_u64(w, len);
    bn_gguf_write_put(w, s, len);
    return BITNET_OK;
}

bitnet_status bitnet_gguf_writer_set_array(bitnet_gguf_writer *w, const char *key, bitnet_gguf_type elem_type,
                                           const void *data, uint64_t n) {
    const int esz = bn_gguf_type_size(elem_type);
    if (esz <= 0) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_array: key '%s': element type %d is not fixed-size",
                           key ? key : "(null)", (int)elem_type);
    const size_t es = (size_t)esz;
    if (!data && n) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_array: data is NULL");
    if (n > (SIZE_MAX / 2) / es) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_array: too many elements");
    if (elem_type == BITNET_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1)
                return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_array: key '%s': bool element %llu is not 0 or 1",
                              key ? key : "(null)", (unsigned long long)i);
    bitnet_status st =
        bn_gguf_write_begin_kv(w, "bitnet_gguf_writer_set_array", key, BITNET_GGUF_ARRAY, 12 + (size_t)n * es, 0);
    if (st) return st;
    bn_gguf_write_put_u32(w, (uint32_t)elem_type);
    bn_gguf_write_put_u64(w, n);
    bn_gguf_write_put(w, data, (size_t)n * es);
    return BITNET_OK;
}

bitnet_status bitnet_gguf_writer_set_str_array(bitnet_gguf_writer *w, const char *key, const char *const *strs,
                                               const size_t *lens, uint64_t n) {
    const char *fn = "bitnet_gguf_writer_set_str_array";
    if (!strs && n) return bn_err(BITNET_E_INVALID_ARG, "%s: strs is NULL", fn);
    size_t total = 12;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i] && (!lens || lens[i])) return bn_err(BITNET_E_INVALID_ARG, "%s: string %llu is NULL", fn,
                                                          (unsigned long long)i);
        size_t l = lens ? lens[i] : strlen(strs[i]);
        if (l > SIZE_MAX / 4 || total > SIZE_MAX / 4 - l - 8)
            return bn_err(BITNET_E_INVALID_ARG, "%s: strings too large", fn);
        total += 8 + l;
    }
    bitnet_status st = bn_gguf_write_begin_kv(w, fn, key, BITNET_GGUF_ARRAY, total, 0);
    if (st) return st;
    bn_gguf_write_put_u32(w, BITNET_GGUF_STRING);
    bn_gguf_write_put_u64(w, n);
    for (uint64_t i = 0; i < n; i++) {
        size_t l = lens ? lens[i] : strlen(strs[i]);
        bn_gguf_write_put_u64(w, l);
        bn_gguf_write_put(w, strs[i], l);
    }
    return BITNET_OK;
}

bitnet_status bitnet_gguf_writer_set_raw(bitnet_gguf_writer *w, const char *key, bitnet_gguf_type type,
                                         const void *payload, size_t size) {
    if (!payload && size) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_set_raw: payload is NULL");
    bitnet_status st = bn_gguf_write_begin_kv(w, "bitnet_gguf_writer_set_raw", key, type, size, 1);
    if (st) return st;
    bn_gguf_write_put(w, payload, size);
    return BITNET_OK;
}

/* ---- public: tensors ------------------------------------------------------------------------------ */

static uint64_t bn_gguf_write_pad_to(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

bitnet_status bitnet_gguf_writer_add_tensor(bitnet_gguf_writer *w, const char *name, uint32_t n_dims,
                                            const int64_t *ne, bitnet_type type) {
    const char *fn = "bitnet_gguf_writer_add_tensor";
    if (!w || !name || !ne) return bn_err(BITNET_E_INVALID_ARG, "%s: NULL argument", fn);
    if (w->state != W_DECLARE)
        return bn_err(BITNET_E_INVALID_ARG, "%s: tensor '%s' added after bitnet_gguf_writer_begin", fn, name);
    size_t len = strlen(name);
    if (len == 0 || len >= BN_GGUF_MAX_NAME)
        return bn_err(BITNET_E_INVALID_ARG, "%s: tensor name '%s' must be 1..%d bytes", fn, name, BN_GGUF_MAX_NAME - 1);
    if (!bn_utf8_valid(name, len)) return bn_err(BITNET_E_INVALID_ARG, "%s: tensor name is not valid UTF-8", fn);
    if (n_dims < 1 || n_dims > BN_GGUF_MAX_DIMS)
        return bn_err(BITNET_E_INVALID_ARG, "%s: tensor '%s': n_dims %u is not 1..4", fn, name, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] < 1) return bn_err(BITNET_E_INVALID_ARG, "%s: tensor '%s': dimension %u is %lld", fn, name, d,
                                     (long long)ne[d]);
    for (uint64_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return bn_err(BITNET_E_INVALID_ARG, "%s: duplicate tensor name '%s'", fn, name);
    if (!bn_type_traits_get((uint32_t)type))
        return bn_err(BITNET_E_INVALID_ARG, "%s: tensor '%s': unknown or unsupported type %d", fn, name, (int)type);
    uint64_t size;
    const char *why = NULL;
    if (bn_tensor_nbytes((uint32_t)type, n_dims, ne, &size, &why) != BITNET_OK)
        return bn_err(BITNET_E_INVALID_ARG, "%s: tensor '%s': %s", fn, name, why ? why : "invalid shape");
    uint64_t padded = bn_gguf_write_pad_to(size, w->alignment), end;
    if (size > UINT64_MAX - w->alignment || bn_add_u64(w->data_size, padded, &end) || end > (uint64_t)INT64_MAX)
        return bn_err(BITNET_E_INVALID_ARG, "%s: tensor '%s': data section too large", fn, name);
    if (w->n_t == w->t_cap) {
        uint64_t cap = w->t_cap ? 2 * w->t_cap : 64;
        wtensor *nt = bn_realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) return bn_err(BITNET_E_NOMEM, "GGUF writer: out of memory for tensor infos");
        w->t = nt;
        w->t_cap = cap;
    }
    wtensor *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, len);
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < BN_GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->type = (uint32_t)type;
    t->size = size;
    t->offset = w->data_size;
    w->data_size = end;
    return BITNET_OK;
}

/* ---- public: streaming ------------------------------------------------------------------------------ */

static bitnet_status bn_gguf_write_fail(bitnet_gguf_writer *w, const char *what) {
    int e = errno;
    w->state = W_DONE;
    if (w->f) fclose(w->f);
    w->f = NULL;
    return bn_err(BITNET_E_IO, "%s: %s: %s", w->path ? w->path : "GGUF writer", what, e ? strerror(e) : "error");
}

static int bn_gguf_write_zeros(FILE *f, uint64_t n) {
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        if (fwrite(zeros, 1, k, f) != k) return -1;
        n -= k;
    }
    return 0;
}

bitnet_status bitnet_gguf_writer_begin(bitnet_gguf_writer *w, const char *path) {
    if (!w || !path) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_begin: NULL argument");
    if (w->state != W_DECLARE) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_begin: called twice");
    w->path = bn_strndup(path, strlen(path));
    if (!w->path) return bn_err(BITNET_E_NOMEM, "out of memory");
    /* tensor infos, encoded in one buffer */
    size_t info_len = 0;
    for (uint64_t i = 0; i < w->n_t; i++) info_len += 8 + strlen(w->t[i].name) + 4 + 8 * w->t[i].n_dims + 4 + 8;
    uint8_t *info = bn_malloc(info_len);
    if (!info) return bn_err(BITNET_E_NOMEM, "GGUF writer: out of memory for tensor infos");
    uint8_t *p = info;
    for (uint64_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        uint64_t len = strlen(t->name);
        memcpy(p, &len, 8), p += 8;
        memcpy(p, t->name, len), p += len;
        memcpy(p, &t->n_dims, 4), p += 4;
        for (uint32_t d = 0; d < t->n_dims; d++) memcpy(p, &t->ne[d], 8), p += 8;
        memcpy(p, &t->type, 4), p += 4;
        memcpy(p, &t->offset, 8), p += 8;
    }

    /* header; general.alignment (u32) first when it is not the default */
    int add_align = w->alignment != 32 && !w->raw_alignment;
    uint8_t hdr[24 + 8 + 17 + 4 + 4];
    uint32_t magic = 0x46554747u, version = 3, u32type = BITNET_GGUF_UINT32;
    uint64_t n_kv = w->n_kv + (uint64_t)add_align, n_t = w->n_t, klen = 17;
    size_t hl = 0;
    memcpy(hdr + hl, &magic, 4), hl += 4;
    memcpy(hdr + hl, &version, 4), hl += 4;
    memcpy(hdr + hl, &n_t, 8), hl += 8;
    memcpy(hdr + hl, &n_kv, 8), hl += 8;
    if (add_align) {
        memcpy(hdr + hl, &klen, 8), hl += 8;
        memcpy(hdr + hl, "general.alignment", 17), hl += 17;
        memcpy(hdr + hl, &u32type, 4), hl += 4;
        memcpy(hdr + hl, &w->alignment, 4), hl += 4;
    }
    uint64_t end = hl + w->kv_len + info_len;

    w->f = fopen(path, "wb");
    if (!w->f) {
        bn_free(info);
        return bn_gguf_write_fail(w, "cannot create");
    }
    int bad = fwrite(hdr, 1, hl, w->f) != hl || (w->kv_len && fwrite(w->kv, 1, w->kv_len, w->f) != w->kv_len) ||
              (info_len && fwrite(info, 1, info_len, w->f) != info_len) ||
              bn_gguf_write_zeros(w->f, bn_gguf_write_pad_to(end, w->alignment) - end) != 0;
    bn_free(info);
    if (bad) return bn_gguf_write_fail(w, "write failed");
    w->state = W_DATA;
    w->cur = 0;
    w->cur_done = 0;
    return BITNET_OK;
}

bitnet_status bitnet_gguf_writer_write(bitnet_gguf_writer *w, const void *data, size_t size) {
    if (!w) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_write: writer is NULL");
    if (w->state != W_DATA)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_write: not between begin and finish");
    if (!data && size) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_write: data is NULL");
    /* refuse before writing anything if more bytes come than remain declared */
    uint64_t left = 0;
    for (uint64_t i = w->cur; i < w->n_t && left <= size; i++) left += w->t[i].size - (i == w->cur ? w->cur_done : 0);
    if (size > left)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_write: %zu bytes given but only %llu remain declared",
                      size, (unsigned long long)left);
    const uint8_t *src = data;
    while (size) {
        wtensor *t = &w->t[w->cur];
        uint64_t room = t->size - w->cur_done;
        size_t k = size < room ? size : (size_t)room;
        if (fwrite(src, 1, k, w->f) != k) return bn_gguf_write_fail(w, "write failed");
        src += k;
        size -= k;
        w->cur_done += k;
        if (w->cur_done == t->size) {
            if (bn_gguf_write_zeros(w->f, bn_gguf_write_pad_to(t->size, w->alignment) - t->size))
                return bn_gguf_write_fail(w, "write failed");
            w->cur++;
            w->cur_done = 0;
        }
    }
    return BITNET_OK;
}

bitnet_status bitnet_gguf_writer_finish(bitnet_gguf_writer *w) {
    if (!w) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_finish: writer is NULL");
    if (w->state != W_DATA)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_writer_finish: begin was not called or the writer failed");
    if (w->cur < w->n_t) {
        const wtensor *t = &w->t[w->cur];
        bitnet_status st = bn_err(BITNET_E_INVALID_ARG, "%s: tensor '%s' is missing %llu of its %llu bytes", w->path,
                                  t->name, (unsigned long long)(t->size - w->cur_done), (unsigned long long)t->size);
        w->state = W_DONE;
        fclose(w->f);
        w->f = NULL;
        return st;
    }
    w->state = W_DONE;
    errno = 0;
    int bad = fflush(w->f) != 0 || ferror(w->f);
    if (bad) return bn_gguf_write_fail(w, "write failed");
    FILE *f = w->f;
    w->f = NULL;
    if (fclose(f) != 0) return bn_err(BITNET_E_IO, "%s: close failed: %s", w->path, strerror(errno));
    return BITNET_OK;
}
