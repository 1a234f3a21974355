/*
 * gguf_read.c -- the GGUF reader: parse and validate a whole file image.
 *
 * Layout (all integers little-endian, no padding between fields):
 *
 *     "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *     n_kv    x { string key; u32 value_type; value }
 *     n_tensors x { string name; u32 n_dims; u64 ne[n_dims]; u32 type; u64 offset }
 *     zero padding up to align_up(position, alignment)       <- data section starts here
 *     tensor data, each at data_offset + offset
 *
 * A string is u64 length + bytes (no NUL).  An array value is u32 element type +
 * u64 count + the elements back to back (strings each length-prefixed, nested arrays
 * each with their own header).  Alignment is general.alignment (u32) or 32.
 *
 * Nothing read from the file is trusted before it has been checked against the bytes
 * that remain: every count is bounded by (bytes left / smallest possible element)
 * BEFORE anything is allocated, so a hostile file can make us allocate at most a few
 * times its own size.  All offset arithmetic is in uint64_t with overflow checks.
 * The cursor `pos` only ever moves forward and is checked by bn_gguf_read_need() before each
 * read, so no read can leave [0, size).
 *
 * Values are not copied: kv records and array records keep file offsets, and the
 * accessors (gguf_api.c) read the payload from the image on demand.  The reader uses
 * nothing of gguf_api.c: the value types' names and sizes live here.
 */
#include "gguf.h"
#include "type_table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC          0x46554747u /* "GGUF" read as a little-endian u32 */
#define GGUF_DEFAULT_ALIGN  32u
#define GGUF_MAX_DEPTH      8           /* nesting limit for arrays of arrays */
#define GGUF_NO_INDEX       UINT64_MAX  /* empty slot in the hash indexes     */

/* ---- cursor over the image ----------------------------------------------------------- */

typedef struct rd {
    const uint8_t *base;
    uint64_t       size;
    uint64_t       pos;
    bitnet_gguf   *g;
    uint64_t       cap_arrs; /* allocated records in g->arrs */
} rd;

static uint64_t bn_gguf_read_left(const rd *r) { return r->size - r->pos; }

/* Whether n more bytes are available.  `what` names the field for the message. */
static bitnet_status bn_gguf_read_need(const rd *r, uint64_t n, const char *what) {
    if (n > bn_gguf_read_left(r))
        return bn_err(BITNET_E_FORMAT, "file truncated: %s at offset %llu needs %llu bytes, %llu left", what,
                      (unsigned long long)r->pos, (unsigned long long)n, (unsigned long long)bn_gguf_read_left(r));
    return BITNET_OK;
}

static bitnet_status bn_gguf_read_u32(rd *r, uint32_t *v, const char *what) {
    bitnet_status st = bn_gguf_read_need(r, 4, what);
    if (st) return st;
    *v = bn_rd_u32(r->base + r->pos);
    r->pos += 4;
    return BITNET_OK;
}

static bitnet_status bn_gguf_read_u64(rd *r, uint64_t *v, const char *what) {
    bitnet_status st = bn_gguf_read_need(r, 8, what);
    if (st) return st;
    *v = bn_rd_u64(r->base + r->pos);
    r->pos += 8;
    return BITNET_OK;
}

/* A string: sets *s (pointer into the image) and *len, advances past it. */
static bitnet_status bn_gguf_read_str(rd *r, const char **s, uint64_t *len, const char *what) {
    bitnet_status st = bn_gguf_read_u64(r, len, what);
    if (st) return st;
    if (*len > bn_gguf_read_left(r))
        return bn_err(BITNET_E_FORMAT, "%s at offset %llu: string length %llu exceeds the %llu bytes left in the file",
                      what, (unsigned long long)(r->pos - 8), (unsigned long long)*len,
                      (unsigned long long)bn_gguf_read_left(r));
    *s = (const char *)(r->base + r->pos);
    r->pos += *len;
    return BITNET_OK;
}

/* The metadata value types: their names (public: bitnet_gguf_type_name) and sizes. */
const char *bitnet_gguf_type_name(bitnet_gguf_type type) {
    static const char *const names[] = {"u8",  "i8",   "u16",    "i16",   "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)type < sizeof names / sizeof names[0] ? names[type] : NULL;
}

int bn_gguf_type_size(uint32_t t) {
    switch (t) {
    case BITNET_GGUF_UINT8: case BITNET_GGUF_INT8: case BITNET_GGUF_BOOL: return 1;
    case BITNET_GGUF_UINT16: case BITNET_GGUF_INT16: return 2;
    case BITNET_GGUF_UINT32: case BITNET_GGUF_INT32: case BITNET_GGUF_FLOAT32: return 4;
    case BITNET_GGUF_UINT64: case BITNET_GGUF_INT64: case BITNET_GGUF_FLOAT64: return 8;
    case BITNET_GGUF_STRING: case BITNET_GGUF_ARRAY: return 0;
    default: return -1;
    }
}

/* ---- hashing ------------------------------------------------------------------------------ */

static uint64_t bn_gguf_read_index_cap(uint64_t n) {
    uint64_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    return cap;
}

/* Key/name of entry i of either table. */
static const char *bn_gguf_read_entry_name(const bitnet_gguf *g, int tensors, uint64_t i) {
    return tensors ? g->tensors[i].name : g->kv[i].key;
}

/* Find `name` in an index; returns the slot (empty or matching). */
static uint64_t bn_gguf_read_index_slot(const bitnet_gguf *g, int tensors, const char *name, size_t len) {
    const uint64_t *idx = tensors ? g->t_index : g->kv_index;
    uint64_t mask = (tensors ? g->t_index_cap : g->kv_index_cap) - 1;
    uint64_t s = bn_fnv1a(BN_FNV_OFFSET, name, len) & mask;
    while (idx[s] != GGUF_NO_INDEX) {
        const char *e = bn_gguf_read_entry_name(g, tensors, idx[s]);
        if (strlen(e) == len && memcmp(e, name, len) == 0) break;
        s = (s + 1) & mask;
    }
    return s;
}

int64_t bn_gguf_find_key(const bitnet_gguf *g, const char *key) {
    if (!g || !key || !g->kv_index) return -1;
    uint64_t s = bn_gguf_read_index_slot(g, 0, key, strlen(key));
    return g->kv_index[s] == GGUF_NO_INDEX ? -1 : (int64_t)g->kv_index[s];
}

int64_t bn_gguf_find_tensor(const bitnet_gguf *g, const char *name) {
    if (!g || !name || !g->t_index) return -1;
    uint64_t s = bn_gguf_read_index_slot(g, 1, name, strlen(name));
    return g->t_index[s] == GGUF_NO_INDEX ? -1 : (int64_t)g->t_index[s];
}

const bn_gguf_arr *bn_gguf_arr_at(const bitnet_gguf *g, uint64_t off) {
    if (!g) return NULL;
    uint64_t lo = 0, hi = g->n_arrs; /* arrs are sorted by off: binary search */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (g->arrs[mid].off < off) lo = mid + 1;
        else hi = mid;
    }
    return lo < g->n_arrs && g->arrs[lo].off == off ? &g->arrs[lo] : NULL;
}

/* ---- metadata -------------------------------------------------------------------------------- */

/* Parse an array whose header (element type) starts at r->pos, recursively.  `key`
 * names the top-level key for messages.  Appends a record to g->arrs before its
 * children, so the records stay sorted by offset. */
static bitnet_status bn_gguf_read_array(rd *r, const char *key, int depth, uint64_t *arr_index) {
    bitnet_gguf *g = r->g;
    uint64_t hdr = r->pos;
    uint32_t et;
    uint64_t count;
    bitnet_status st;
    if (depth > GGUF_MAX_DEPTH)
        return bn_err(BITNET_E_FORMAT, "key '%s': arrays nested deeper than %d levels", key, GGUF_MAX_DEPTH);
    if ((st = bn_gguf_read_u32(r, &et, "array element type")) || (st = bn_gguf_read_u64(r, &count, "array count")))
        return st;
    int esz = bn_gguf_type_size(et);
    if (esz < 0)
        return bn_err(BITNET_E_FORMAT, "key '%s': array at offset %llu has invalid element type %u", key,
                      (unsigned long long)hdr, et);
    /* Bound the count by the bytes left before allocating anything: a fixed element
     * takes esz bytes, a string at least 8 (its length), an array at least 12. */
    uint64_t min_sz = esz > 0 ? (uint64_t)esz : et == BITNET_GGUF_STRING ? 8 : 12;
    if (count > bn_gguf_read_left(r) / min_sz)
        return bn_err(BITNET_E_FORMAT,
                      "key '%s': array of %llu %s elements cannot fit in the %llu bytes left in the file", key,
                      (unsigned long long)count, bitnet_gguf_type_name((bitnet_gguf_type)et),
                      (unsigned long long)bn_gguf_read_left(r));

    if (g->n_arrs == r->cap_arrs) {
        uint64_t ncap = r->cap_arrs ? 2 * r->cap_arrs : 16;
        if (ncap > SIZE_MAX / sizeof(bn_gguf_arr))
            return bn_err(BITNET_E_NOMEM, "out of memory recording metadata arrays");
        bn_gguf_arr *na = bn_realloc(g->arrs, (size_t)ncap * sizeof *na);
        if (!na) return bn_err(BITNET_E_NOMEM, "out of memory recording metadata arrays");
        g->arrs = na;
        r->cap_arrs = ncap;
    }
    uint64_t ai = g->n_arrs++;
    bn_gguf_arr *a = &g->arrs[ai];
    memset(a, 0, sizeof *a);
    a->off = hdr;
    a->elem_type = et;
    a->count = count;
    a->data = r->pos;
    *arr_index = ai;

    if (esz > 0) {
        if (et == BITNET_GGUF_BOOL) {
            for (uint64_t j = 0; j < count; j++) {
                uint8_t b = r->base[r->pos + j];
                if (b > 1)
                    return bn_err(BITNET_E_FORMAT, "key '%s': bool array element %llu is %u, not 0 or 1", key,
                                  (unsigned long long)j, b);
            }
        }
        r->pos += count * (uint64_t)esz; /* cannot overflow or pass the end: bounded above */
        return BITNET_OK;
    }

    uint64_t *offs = bn_mallocn(count ? (size_t)count : 1, sizeof *offs);
    if (!offs) return bn_err(BITNET_E_NOMEM, "key '%s': out of memory for an array of %llu elements", key,
                             (unsigned long long)count);
    g->arrs[ai].elem_off = offs; /* owned by the record from here on (freed on close) */
    for (uint64_t j = 0; j < count; j++) {
        offs[j] = r->pos;
        if (et == BITNET_GGUF_STRING) {
            const char *s;
            uint64_t len;
            if ((st = bn_gguf_read_str(r, &s, &len, "string array element"))) return st;
        } else {
            uint64_t child;
            /* g->arrs may move in the recursion: do not hold `a` across it */
            if ((st = bn_gguf_read_array(r, key, depth + 1, &child))) return st;
        }
    }
    return BITNET_OK;
}

static bitnet_status bn_gguf_read_kv(rd *r, uint64_t i) {
    bitnet_gguf *g = r->g;
    bn_gguf_kv *kv = &g->kv[i];
    const char *key;
    uint64_t len;
    uint32_t type;
    bitnet_status st;
    kv->arr = -1;
    if ((st = bn_gguf_read_str(r, &key, &len, "metadata key"))) return st;
    if (len == 0) return bn_err(BITNET_E_FORMAT, "metadata key %llu is empty", (unsigned long long)i);
    if (memchr(key, 0, (size_t)len))
        return bn_err(BITNET_E_FORMAT, "metadata key %llu contains a NUL byte", (unsigned long long)i);
    if (!bn_utf8_valid(key, (size_t)len))
        return bn_err(BITNET_E_FORMAT, "metadata key %llu (offset %llu) is not valid UTF-8", (unsigned long long)i,
                      (unsigned long long)(r->pos - len));
    kv->key = bn_strndup(key, (size_t)len);
    if (!kv->key) return bn_err(BITNET_E_NOMEM, "out of memory copying metadata keys");
    kv->key_len = len;

    uint64_t slot = bn_gguf_read_index_slot(g, 0, kv->key, (size_t)len);
    if (g->kv_index[slot] != GGUF_NO_INDEX) return bn_err(BITNET_E_FORMAT, "duplicate metadata key '%s'", kv->key);
    g->kv_index[slot] = i;

    if ((st = bn_gguf_read_u32(r, &type, "metadata value type"))) return st;
    if (type > BITNET_GGUF_FLOAT64)
        return bn_err(BITNET_E_FORMAT, "key '%s': invalid value type %u (valid: 0..12)", kv->key, type);
    kv->type = (bitnet_gguf_type)type;
    kv->off = r->pos;
    int esz = bn_gguf_type_size(type);
    if (esz > 0) {
        if ((st = bn_gguf_read_need(r, (uint64_t)esz, "metadata value"))) return st;
        if (type == BITNET_GGUF_BOOL && r->base[r->pos] > 1)
            return bn_err(BITNET_E_FORMAT, "key '%s': bool value is %u, not 0 or 1", kv->key, r->base[r->pos]);
        r->pos += (uint64_t)esz;
    } else if (type == BITNET_GGUF_STRING) {
        const char *s;
        uint64_t slen;
        if ((st = bn_gguf_read_str(r, &s, &slen, "string value"))) return st;
    } else {
        uint64_t ai;
        if ((st = bn_gguf_read_array(r, kv->key, 1, &ai))) return st;
        kv->arr = (int64_t)ai;
    }
    return BITNET_OK;
}

/* ---- tensors ---------------------------------------------------------------------------------- */

static bitnet_status bn_gguf_read_tensor_info(rd *r, uint64_t i) {
    bitnet_gguf *g = r->g;
    bn_gguf_tensor *t = &g->tensors[i];
    const char *name;
    uint64_t len;
    bitnet_status st;
    if ((st = bn_gguf_read_str(r, &name, &len, "tensor name"))) return st;
    if (len == 0) return bn_err(BITNET_E_FORMAT, "tensor %llu has an empty name", (unsigned long long)i);
    if (len >= BN_GGUF_MAX_NAME)
        return bn_err(BITNET_E_FORMAT, "tensor %llu: name of %llu bytes is too long (limit %d)", (unsigned long long)i,
                      (unsigned long long)len, BN_GGUF_MAX_NAME - 1);
    if (memchr(name, 0, (size_t)len))
        return bn_err(BITNET_E_FORMAT, "tensor %llu: name contains a NUL byte", (unsigned long long)i);
    if (!bn_utf8_valid(name, (size_t)len))
        return bn_err(BITNET_E_FORMAT, "tensor %llu: name is not valid UTF-8", (unsigned long long)i);
    memcpy(t->name, name, (size_t)len);
    t->name[len] = 0;
    uint64_t slot = bn_gguf_read_index_slot(g, 1, t->name, (size_t)len);
    if (g->t_index[slot] != GGUF_NO_INDEX) return bn_err(BITNET_E_FORMAT, "duplicate tensor name '%s'", t->name);
    g->t_index[slot] = i;

    if ((st = bn_gguf_read_u32(r, &t->n_dims, "tensor n_dims"))) return st;
    if (t->n_dims < 1 || t->n_dims > BN_GGUF_MAX_DIMS)
        return bn_err(BITNET_E_FORMAT, "tensor '%s': n_dims is %u (must be 1..%d)", t->name, t->n_dims,
                      BN_GGUF_MAX_DIMS);
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < BN_GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims && (st = bn_gguf_read_u64(r, &ne, "tensor dimension"))) return st;
        /* Zero-size dimensions are refused (as bitnet.cpp does): no model has empty
         * tensors, and a 0-byte tensor has no meaningful data range. */
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return bn_err(BITNET_E_FORMAT, "tensor '%s': dimension %u is %llu (must be 1..2^63-1)", t->name, d,
                          (unsigned long long)ne);
        if (bn_mul_u64(n_el, ne, &n_el) || n_el > (uint64_t)INT64_MAX)
            return bn_err(BITNET_E_FORMAT, "tensor '%s': element count overflows 2^63", t->name);
        t->ne[d] = (int64_t)ne;
    }
    t->n_elements = n_el;
    if ((st = bn_gguf_read_u32(r, &t->type, "tensor type"))) return st;
    if ((st = bn_gguf_read_u64(r, &t->offset, "tensor offset"))) return st;

    if (!bn_type_traits_get(t->type) || (t->type == BN_TYPE_TL2 && !g->tl2)) {
        const char *why = bn_type_refusal(t->type);
        if (why) return bn_err(BITNET_E_UNSUPPORTED, "tensor '%s': type %u: %s", t->name, t->type, why);
        return bn_err(BITNET_E_FORMAT, "tensor '%s': unknown tensor type id %u", t->name, t->type);
    }
    const char *why = NULL;
    if (bn_tensor_nbytes(t->type, t->n_dims, t->ne, &t->size, &why) != BITNET_OK)
        return bn_err(BITNET_E_FORMAT, "tensor '%s': %s", t->name, why ? why : "invalid shape for its type");
    return BITNET_OK;
}

typedef struct span {
    uint64_t off, size, idx;
} span;

static int bn_gguf_read_cmp_span(const void *a, const void *b) {
    uint64_t x = ((const span *)a)->off, y = ((const span *)b)->off;
    return x < y ? -1 : x > y;
}

/* Data ranges: aligned, inside the file, pairwise disjoint. */
static bitnet_status bn_gguf_read_check_tensor_data(bitnet_gguf *g) {
    uint64_t data_len = g->size > g->data_offset ? g->size - g->data_offset : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        bn_gguf_tensor *t = &g->tensors[i];
        uint64_t end;
        if (t->offset % g->alignment)
            return bn_err(BITNET_E_FORMAT, "tensor '%s': data offset %llu is not a multiple of the alignment %llu",
                          t->name, (unsigned long long)t->offset, (unsigned long long)g->alignment);
        if (bn_add_u64(t->offset, t->size, &end) || end > data_len)
            return bn_err(BITNET_E_FORMAT,
                          "tensor '%s': data range [%llu, %llu+%llu) ends past the end of the file (data section "
                          "holds %llu bytes)",
                          t->name, (unsigned long long)t->offset, (unsigned long long)t->offset,
                          (unsigned long long)t->size, (unsigned long long)data_len);
        t->data = g->base + g->data_offset + t->offset;
    }
    if (g->n_tensors < 2) return BITNET_OK;
    /* sort the ranges by offset; then only neighbours can overlap */
    span *order = bn_mallocn((size_t)g->n_tensors, sizeof *order);
    if (!order) return bn_err(BITNET_E_NOMEM, "out of memory checking tensor overlap");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        order[i].off = g->tensors[i].offset;
        order[i].size = g->tensors[i].size;
        order[i].idx = i;
    }
    qsort(order, (size_t)g->n_tensors, sizeof *order, bn_gguf_read_cmp_span);
    bitnet_status st = BITNET_OK;
    for (uint64_t k = 1; k < g->n_tensors; k++) {
        const bn_gguf_tensor *p = &g->tensors[order[k - 1].idx], *c = &g->tensors[order[k].idx];
        if (p->offset + p->size > c->offset) { /* no overflow: both ends checked above */
            st = bn_err(BITNET_E_FORMAT, "tensors '%s' and '%s' overlap (data offsets %llu+%llu and %llu)", p->name,
                        c->name, (unsigned long long)p->offset, (unsigned long long)p->size,
                        (unsigned long long)c->offset);
            break;
        }
    }
    bn_free(order);
    return st;
}

/* ---- the whole file ------------------------------------------------------------------------------ */

static void bn_gguf_read_free(bitnet_gguf *g) {
    if (!g) return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) bn_free(g->kv[i].key);
    for (uint64_t i = 0; i < g->n_arrs; i++) bn_free(g->arrs[i].elem_off);
    bn_free(g->kv);
    bn_free(g->arrs);
    bn_free(g->tensors);
    bn_free(g->kv_index);
    bn_free(g->t_index);
    if (g->mapped == 1) munmap((void *)(uintptr_t)g->base, (size_t)g->size);
    else if (g->mapped == 2) bn_free((void *)(uintptr_t)g->base);
    bn_free(g);
}

static uint64_t *bn_gguf_read_index_new(uint64_t cap) {
    uint64_t *idx = bn_mallocn((size_t)cap, sizeof *idx);
    if (idx) memset(idx, 0xff, (size_t)cap * sizeof *idx); /* GGUF_NO_INDEX everywhere */
    return idx;
}

/* general.alignment, if present: must be a u32, non-zero power of two. */
static bitnet_status bn_gguf_read_alignment(bitnet_gguf *g) {
    g->alignment = GGUF_DEFAULT_ALIGN;
    int64_t i = bn_gguf_find_key(g, "general.alignment");
    if (i < 0) return BITNET_OK;
    const bn_gguf_kv *kv = &g->kv[i];
    if (kv->type != BITNET_GGUF_UINT32)
        return bn_err(BITNET_E_FORMAT, "key 'general.alignment' has type %s, must be u32",
                      bitnet_gguf_type_name(kv->type));
    uint32_t a = bn_rd_u32(g->base + kv->off);
    if (a == 0 || (a & (a - 1)))
        return bn_err(BITNET_E_FORMAT, "key 'general.alignment' is %u, must be a non-zero power of two", a);
    g->alignment = a;
    return BITNET_OK;
}

/* Type id 39 is TL2 in bitnet.cpp's numbering and MXFP4 in upstream ggml's, and a
 * tensor does not say which.  The file does: bitnet.cpp's converter writes
 * general.file_type = 39 (its LLAMA_FTYPE_MOSTLY_TL2) into TL2 files, which are all of
 * a BitNet architecture; upstream's MXFP4 files say 38 (MOSTLY_MXFP4_MOE), and its
 * file_type 39 (MOSTLY_NVFP4) uses another tensor type.  So 39 is TL2 exactly when the
 * architecture is one of ours and the file type is 39 (docs/formats.md). */
static int bn_gguf_read_is_tl2_file(const bitnet_gguf *g) {
    static const char *const archs[] = {"bitnet", "bitnet-b1.58", "bitnet-25", "bitnet-1.58", "llama"};
    const char *a;
    uint64_t al, ft = 0;
    if (bn_gguf_get_str(g, "general.architecture", 0, &a, &al) != BITNET_OK) return 0;
    if (bn_gguf_get_u64(g, "general.file_type", 0, &ft) != BITNET_OK || ft != 39) return 0;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strlen(archs[i]) == al && memcmp(archs[i], a, (size_t)al) == 0) return 1;
    return 0;
}

static bitnet_status bn_gguf_read_image(bitnet_gguf *g) {
    rd r = {g->base, g->size, 0, g, 0};
    uint32_t magic, version;
    bitnet_status st;
    if (g->size < 4) return bn_err(BITNET_E_FORMAT, "not a GGUF file: only %llu bytes", (unsigned long long)g->size);
    magic = bn_rd_u32(g->base);
    if (magic != GGUF_MAGIC)
        return bn_err(BITNET_E_FORMAT, "not a GGUF file: bad magic %02x %02x %02x %02x (expected \"GGUF\")",
                      g->base[0], g->base[1], g->base[2], g->base[3]);
    r.pos = 4;
    if ((st = bn_gguf_read_u32(&r, &version, "version"))) return st;
    /* A big-endian file has its version byte-swapped: 3 reads as 0x03000000. */
    if ((version & 0xFFFFu) == 0)
        return bn_err(BITNET_E_UNSUPPORTED, "big-endian GGUF is not supported (version field %08x)", version);
    if (version == 1) return bn_err(BITNET_E_UNSUPPORTED, "GGUF version 1 is obsolete and not supported");
    if (version != 2 && version != 3)
        return bn_err(BITNET_E_UNSUPPORTED, "GGUF version %u is not supported (only 2 and 3)", version);
    g->version = version;
    if ((st = bn_gguf_read_u64(&r, &g->n_tensors, "tensor count")) ||
        (st = bn_gguf_read_u64(&r, &g->n_kv, "metadata count")))
        return st;
    /* Smallest possible record: a kv is key length (8) + type (4) + >= 1 value byte
     * (keys must be non-empty, but that is reported later, by name); a tensor info is name length (8) + >= 1 byte + n_dims (4) +
     * one dim (8) + type (4) + offset (8). */
    if (g->n_kv > bn_gguf_read_left(&r) / 13)
        return bn_err(BITNET_E_FORMAT, "metadata count %llu cannot fit in a file of %llu bytes",
                      (unsigned long long)g->n_kv, (unsigned long long)g->size);
    if (g->n_tensors > bn_gguf_read_left(&r) / 33)
        return bn_err(BITNET_E_FORMAT, "tensor count %llu cannot fit in a file of %llu bytes",
                      (unsigned long long)g->n_tensors, (unsigned long long)g->size);

    g->kv = bn_calloc(g->n_kv ? (size_t)g->n_kv : 1, sizeof *g->kv);
    g->kv_index_cap = bn_gguf_read_index_cap(g->n_kv);
    g->kv_index = bn_gguf_read_index_new(g->kv_index_cap);
    if (!g->kv || !g->kv_index) return bn_err(BITNET_E_NOMEM, "out of memory for %llu metadata keys",
                                              (unsigned long long)g->n_kv);
    uint64_t n_kv = g->n_kv;
    g->n_kv = 0; /* count only parsed records, so bn_gguf_read_free frees exactly those keys */
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = i + 1;
        if ((st = bn_gguf_read_kv(&r, i))) return st;
    }
    if ((st = bn_gguf_read_alignment(g))) return st;
    g->tl2 = bn_gguf_read_is_tl2_file(g);

    g->tensors = bn_calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *g->tensors);
    g->t_index_cap = bn_gguf_read_index_cap(g->n_tensors);
    g->t_index = bn_gguf_read_index_new(g->t_index_cap);
    if (!g->tensors || !g->t_index)
        return bn_err(BITNET_E_NOMEM, "out of memory for %llu tensor infos", (unsigned long long)g->n_tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((st = bn_gguf_read_tensor_info(&r, i))) return st;

    /* data section: first multiple of the alignment at or after the tensor infos */
    g->data_offset = (r.pos + g->alignment - 1) / g->alignment * g->alignment; /* r.pos < 2^63: no overflow */
    if (g->n_tensors > 0 && g->data_offset > g->size)
        return bn_err(BITNET_E_FORMAT, "file truncated: data section would start at offset %llu, file has %llu bytes",
                      (unsigned long long)g->data_offset, (unsigned long long)g->size);
    return bn_gguf_read_check_tensor_data(g);
}

bitnet_status bn_gguf_parse(const uint8_t *base, uint64_t size, bitnet_gguf **out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "bn_gguf_parse: out is NULL");
    *out = NULL;
    if (!base && size) return bn_err(BITNET_E_INVALID_ARG, "bn_gguf_parse: data is NULL");
    bitnet_gguf *g = bn_calloc(1, sizeof *g);
    if (!g) return bn_err(BITNET_E_NOMEM, "out of memory opening a GGUF file");
    g->base = base;
    g->size = size;
    bitnet_status st = bn_gguf_read_image(g);
    if (st != BITNET_OK) {
        bn_gguf_read_free(g);
        return st;
    }
    *out = g;
    return BITNET_OK;
}

bitnet_status bn_gguf_open_file(const char *path, int use_mmap, bitnet_gguf **out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bn_err(BITNET_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return bn_err(BITNET_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return bn_err(BITNET_E_IO, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 24) { /* magic + version + two counts */
        close(fd);
        return bn_err(BITNET_E_FORMAT, "%s: not a GGUF file: only %llu bytes", path, (unsigned long long)size);
    }
    if (size > SIZE_MAX) {
        close(fd);
        return bn_err(BITNET_E_IO, "%s: file too large for this address space", path);
    }
    uint8_t *base;
    int mapped;
    if (use_mmap) {
        void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return bn_err(BITNET_E_IO, "%s: cannot map %llu bytes: %s", path, (unsigned long long)size, strerror(e));
        }
        base = p;
        mapped = 1;
    } else {
        base = bn_malloc((size_t)size);
        if (!base) {
            close(fd);
            return bn_err(BITNET_E_NOMEM, "%s: out of memory reading %llu bytes", path, (unsigned long long)size);
        }
        uint64_t got = 0;
        while (got < size) {
            size_t chunk = size - got > (1u << 30) ? (1u << 30) : (size_t)(size - got);
            ssize_t n = read(fd, base + got, chunk);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                int e = n < 0 ? errno : 0;
                close(fd);
                bn_free(base);
                return bn_err(BITNET_E_IO, "%s: read failed at byte %llu: %s", path, (unsigned long long)got,
                              e ? strerror(e) : "unexpected end of file");
            }
            got += (uint64_t)n;
        }
        mapped = 2;
    }
    close(fd);
    bitnet_gguf *g;
    bitnet_status st = bn_gguf_parse(base, size, &g);
    if (st != BITNET_OK) {
        bn_err(st, "%s: %s", path, bn_errmsg()); /* prefix the path (bn_err copes with aliasing) */
        if (mapped == 1) munmap(base, (size_t)size);
        else bn_free(base);
        return st;
    }
    g->mapped = mapped;
    *out = g;
    return BITNET_OK;
}

void bn_gguf_free(bitnet_gguf *g) { bn_gguf_read_free(g); }
