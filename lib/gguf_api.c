/*
 * gguf_api.c -- the public bitnet_gguf_* accessors and the internal typed getters
 * (bn_gguf_get_*) over a parsed file (see gguf_read.c for the format and validation).
 *
 * A bitnet_gguf_value is {type, elem_type, count, ref} where ref is the file offset of
 * the value's payload: the bytes after a key's type field, or an array element's
 * bytes.  For an ARRAY that offset is the array header, which is also the key under
 * which gguf_read.c recorded the array (bn_gguf_arr_at).  Values are decoded from the file
 * image on every access; nothing is copied.
 *
 * `ref` comes back from the caller, so it is re-checked against the file size before
 * use: a forged value can yield wrong data but never a read outside the image.
 */
#include "gguf.h"
#include "type_table.h"

#include <math.h>

/* ---- open / close / header ------------------------------------------------------------ */

bitnet_status bitnet_gguf_open(const char *path, bitnet_gguf **out) { return bn_gguf_open_file(path, 1, out); }

bitnet_status bitnet_gguf_open_memory(const void *data, size_t size, bitnet_gguf **out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_open_memory: out is NULL");
    *out = NULL;
    if (!data) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_open_memory: data is NULL");
    return bn_gguf_parse(data, size, out);
}

void bitnet_gguf_close(bitnet_gguf *g) { bn_gguf_free(g); }

uint32_t bitnet_gguf_version(const bitnet_gguf *g) { return g ? g->version : 0; }
uint64_t bitnet_gguf_alignment(const bitnet_gguf *g) { return g ? g->alignment : 0; }
uint64_t bitnet_gguf_data_offset(const bitnet_gguf *g) { return g ? g->data_offset : 0; }
uint64_t bitnet_gguf_file_size(const bitnet_gguf *g) { return g ? g->size : 0; }

/* ---- values ----------------------------------------------------------------------------- */

static void bn_gguf_api_make_value(const bitnet_gguf *g, bitnet_gguf_type type, uint64_t off, bitnet_gguf_value *v) {
    v->type = type;
    v->elem_type = type;
    v->count = 1;
    v->ref = off;
    if (type == BITNET_GGUF_ARRAY) {
        const bn_gguf_arr *a = bn_gguf_arr_at(g, off);
        if (a) { /* always found for values made from a parsed file */
            v->elem_type = (bitnet_gguf_type)a->elem_type;
            v->count = a->count;
        }
    }
}

/* Check that a scalar value of v's type lies inside the file. */
static bitnet_status bn_gguf_api_scalar_ptr(const bitnet_gguf *g, const bitnet_gguf_value *v, const uint8_t **p) {
    const int sz = bn_gguf_type_size(v->type);
    if (sz <= 0) return bn_err(BITNET_E_TYPE, "value of type %s is not a number", bitnet_gguf_type_name(v->type));
    if (v->ref > g->size || g->size - v->ref < (uint64_t)sz)
        return bn_err(BITNET_E_INVALID_ARG, "value does not belong to this file");
    *p = g->base + v->ref;
    return BITNET_OK;
}

/* Integer value as a sign flag plus magnitude-preserving pair: *neg = 1 with *i < 0,
 * or *neg = 0 with *u holding the value.  BITNET_E_TYPE for non-integers. */
static bitnet_status bn_gguf_api_int_value(const bitnet_gguf *g, const bitnet_gguf_value *v, int allow_bool, int *neg,
                               int64_t *i, uint64_t *u) {
    const uint8_t *p;
    bitnet_status st;
    *neg = 0;
    switch (v->type) {
    case BITNET_GGUF_UINT8: case BITNET_GGUF_UINT16: case BITNET_GGUF_UINT32: case BITNET_GGUF_UINT64:
    case BITNET_GGUF_INT8: case BITNET_GGUF_INT16: case BITNET_GGUF_INT32: case BITNET_GGUF_INT64:
        break;
    case BITNET_GGUF_BOOL:
        if (allow_bool) break;
        /* fall through */
    default:
        return bn_err(BITNET_E_TYPE, "value has type %s, not an integer",
                      bitnet_gguf_type_name(v->type) ? bitnet_gguf_type_name(v->type) : "?");
    }
    if ((st = bn_gguf_api_scalar_ptr(g, v, &p))) return st;
    int64_t s = 0;
    switch (v->type) {
    case BITNET_GGUF_UINT8: case BITNET_GGUF_BOOL: *u = p[0]; return BITNET_OK;
    case BITNET_GGUF_UINT16: *u = bn_rd_u16(p); return BITNET_OK;
    case BITNET_GGUF_UINT32: *u = bn_rd_u32(p); return BITNET_OK;
    case BITNET_GGUF_UINT64: *u = bn_rd_u64(p); return BITNET_OK;
    case BITNET_GGUF_INT8: s = (int8_t)p[0]; break;
    case BITNET_GGUF_INT16: s = (int16_t)bn_rd_u16(p); break;
    case BITNET_GGUF_INT32: s = (int32_t)bn_rd_u32(p); break;
    default: s = (int64_t)bn_rd_u64(p); break;
    }
    if (s < 0) {
        *neg = 1;
        *i = s;
    } else {
        *u = (uint64_t)s;
    }
    return BITNET_OK;
}

static bitnet_status bn_gguf_api_float_value(const bitnet_gguf *g, const bitnet_gguf_value *v, double *out) {
    const uint8_t *p;
    bitnet_status st;
    if (v->type == BITNET_GGUF_FLOAT32 || v->type == BITNET_GGUF_FLOAT64) {
        if ((st = bn_gguf_api_scalar_ptr(g, v, &p))) return st;
        *out = v->type == BITNET_GGUF_FLOAT32 ? (double)bn_rd_f32(p) : bn_rd_f64(p);
        return BITNET_OK;
    }
    int neg;
    int64_t i;
    uint64_t u;
    if ((st = bn_gguf_api_int_value(g, v, 0, &neg, &i, &u)))
        return st == BITNET_E_TYPE ? bn_err(st, "value has type %s, not a number",
                                            bitnet_gguf_type_name(v->type) ? bitnet_gguf_type_name(v->type) : "?")
                                   : st;
    *out = neg ? (double)i : (double)u;
    return BITNET_OK;
}

bitnet_status bitnet_gguf_value_int(const bitnet_gguf *g, const bitnet_gguf_value *v, int64_t *out) {
    if (!g || !v || !out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_value_int: NULL argument");
    int neg;
    int64_t i;
    uint64_t u;
    bitnet_status st = bn_gguf_api_int_value(g, v, 1, &neg, &i, &u);
    if (st) return st;
    if (!neg && u > (uint64_t)INT64_MAX)
        return bn_err(BITNET_E_FORMAT, "value %llu does not fit in int64", (unsigned long long)u);
    *out = neg ? i : (int64_t)u;
    return BITNET_OK;
}

bitnet_status bitnet_gguf_value_uint(const bitnet_gguf *g, const bitnet_gguf_value *v, uint64_t *out) {
    if (!g || !v || !out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_value_uint: NULL argument");
    int neg;
    int64_t i;
    uint64_t u;
    bitnet_status st = bn_gguf_api_int_value(g, v, 0, &neg, &i, &u);
    if (st) return st;
    if (neg) return bn_err(BITNET_E_FORMAT, "value %lld is negative", (long long)i);
    *out = u;
    return BITNET_OK;
}

bitnet_status bitnet_gguf_value_float(const bitnet_gguf *g, const bitnet_gguf_value *v, double *out) {
    if (!g || !v || !out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_value_float: NULL argument");
    return bn_gguf_api_float_value(g, v, out);
}

bitnet_status bitnet_gguf_value_bool(const bitnet_gguf *g, const bitnet_gguf_value *v, int *out) {
    if (!g || !v || !out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_value_bool: NULL argument");
    if (v->type != BITNET_GGUF_BOOL)
        return bn_err(BITNET_E_TYPE, "value has type %s, not bool",
                      bitnet_gguf_type_name(v->type) ? bitnet_gguf_type_name(v->type) : "?");
    const uint8_t *p;
    bitnet_status st = bn_gguf_api_scalar_ptr(g, v, &p);
    if (st) return st;
    *out = p[0] != 0;
    return BITNET_OK;
}

/* String at file offset off (u64 length + bytes), bounds-checked. */
static bitnet_status bn_gguf_api_str_at(const bitnet_gguf *g, uint64_t off, const char **s, uint64_t *len) {
    if (off > g->size || g->size - off < 8) return bn_err(BITNET_E_INVALID_ARG, "value does not belong to this file");
    uint64_t n = bn_rd_u64(g->base + off);
    if (n > g->size - off - 8) return bn_err(BITNET_E_INVALID_ARG, "value does not belong to this file");
    *s = (const char *)(g->base + off + 8);
    *len = n;
    return BITNET_OK;
}

bitnet_status bitnet_gguf_value_str(const bitnet_gguf *g, const bitnet_gguf_value *v, const char **data,
                                    uint64_t *len) {
    if (!g || !v || !data || !len) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_value_str: NULL argument");
    if (v->type != BITNET_GGUF_STRING)
        return bn_err(BITNET_E_TYPE, "value has type %s, not string",
                      bitnet_gguf_type_name(v->type) ? bitnet_gguf_type_name(v->type) : "?");
    return bn_gguf_api_str_at(g, v->ref, data, len);
}

/* ---- keys and arrays ------------------------------------------------------------------------ */

uint64_t bitnet_gguf_n_kv(const bitnet_gguf *g) { return g ? g->n_kv : 0; }

bitnet_status bitnet_gguf_kv(const bitnet_gguf *g, uint64_t i, const char **key, bitnet_gguf_value *value) {
    if (!g) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_kv: handle is NULL");
    if (i >= g->n_kv)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_kv: index %llu out of range (%llu keys)",
                      (unsigned long long)i, (unsigned long long)g->n_kv);
    if (key) *key = g->kv[i].key;
    if (value) bn_gguf_api_make_value(g, g->kv[i].type, g->kv[i].off, value);
    return BITNET_OK;
}

int64_t bitnet_gguf_find_key(const bitnet_gguf *g, const char *key) { return bn_gguf_find_key(g, key); }

static bitnet_status bn_gguf_api_array_of(const bitnet_gguf *g, const bitnet_gguf_value *v, const bn_gguf_arr **a) {
    if (v->type != BITNET_GGUF_ARRAY)
        return bn_err(BITNET_E_TYPE, "value has type %s, not array",
                      bitnet_gguf_type_name(v->type) ? bitnet_gguf_type_name(v->type) : "?");
    *a = bn_gguf_arr_at(g, v->ref);
    if (!*a) return bn_err(BITNET_E_INVALID_ARG, "array value does not belong to this file");
    return BITNET_OK;
}

bitnet_status bitnet_gguf_array_get(const bitnet_gguf *g, const bitnet_gguf_value *array, uint64_t j,
                                    bitnet_gguf_value *elem) {
    if (!g || !array || !elem) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_array_get: NULL argument");
    const bn_gguf_arr *a;
    bitnet_status st = bn_gguf_api_array_of(g, array, &a);
    if (st) return st;
    if (j >= a->count)
        return bn_err(BITNET_E_INVALID_ARG, "array index %llu out of range (%llu elements)", (unsigned long long)j,
                      (unsigned long long)a->count);
    uint64_t off = a->elem_off ? a->elem_off[j] : a->data + j * (uint64_t)bn_gguf_type_size(a->elem_type);
    bn_gguf_api_make_value(g, (bitnet_gguf_type)a->elem_type, off, elem);
    return BITNET_OK;
}

bitnet_status bitnet_gguf_array_data(const bitnet_gguf *g, const bitnet_gguf_value *array, const void **data) {
    if (!g || !array || !data) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_array_data: NULL argument");
    const bn_gguf_arr *a;
    bitnet_status st = bn_gguf_api_array_of(g, array, &a);
    if (st) return st;
    if (a->elem_off)
        return bn_err(BITNET_E_TYPE, "array of %s has no packed data (variable-size elements)",
                      bitnet_gguf_type_name((bitnet_gguf_type)a->elem_type));
    *data = g->base + a->data;
    return BITNET_OK;
}

/* ---- tensors ------------------------------------------------------------------------------- */

uint64_t bitnet_gguf_n_tensors(const bitnet_gguf *g) { return g ? g->n_tensors : 0; }
int64_t bitnet_gguf_find_tensor(const bitnet_gguf *g, const char *name) { return bn_gguf_find_tensor(g, name); }

static const bn_gguf_tensor *bn_gguf_api_tensor_at(const bitnet_gguf *g, uint64_t i) {
    return g && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const char *bitnet_gguf_tensor_name(const bitnet_gguf *g, uint64_t i) {
    const bn_gguf_tensor *t = bn_gguf_api_tensor_at(g, i);
    return t ? t->name : NULL;
}
bitnet_type bitnet_gguf_tensor_type(const bitnet_gguf *g, uint64_t i) {
    const bn_gguf_tensor *t = bn_gguf_api_tensor_at(g, i);
    return t ? (bitnet_type)t->type : (bitnet_type)0;
}
uint32_t bitnet_gguf_tensor_n_dims(const bitnet_gguf *g, uint64_t i) {
    const bn_gguf_tensor *t = bn_gguf_api_tensor_at(g, i);
    return t ? t->n_dims : 0;
}
int64_t bitnet_gguf_tensor_dim(const bitnet_gguf *g, uint64_t i, uint32_t d) {
    const bn_gguf_tensor *t = bn_gguf_api_tensor_at(g, i);
    return !t ? 0 : d < BN_GGUF_MAX_DIMS ? t->ne[d] : 1;
}
uint64_t bitnet_gguf_tensor_n_elements(const bitnet_gguf *g, uint64_t i) {
    const bn_gguf_tensor *t = bn_gguf_api_tensor_at(g, i);
    return t ? t->n_elements : 0;
}
uint64_t bitnet_gguf_tensor_offset(const bitnet_gguf *g, uint64_t i) {
    const bn_gguf_tensor *t = bn_gguf_api_tensor_at(g, i);
    return t ? t->offset : 0;
}
uint64_t bitnet_gguf_tensor_size(const bitnet_gguf *g, uint64_t i) {
    const bn_gguf_tensor *t = bn_gguf_api_tensor_at(g, i);
    return t ? t->size : 0;
}
const void *bitnet_gguf_tensor_data(const bitnet_gguf *g, uint64_t i) {
    const bn_gguf_tensor *t = bn_gguf_api_tensor_at(g, i);
    return t ? t->data : NULL;
}

/* Rows of a tensor are ne[0] elements; the tensor has n_elements / ne[0] of them.
 * Block types are converted with the type's to_float from the row's byte offset.
 * I2_S has one scale per tensor and 128-element blocks spanning rows, so it goes
 * through bn_i2s_dequant when the range is block-aligned and element by element
 * otherwise. */
bitnet_status bitnet_gguf_tensor_to_f32(const bitnet_gguf *g, uint64_t i, int64_t row0, int64_t n_rows, float *dst) {
    const bn_gguf_tensor *t = bn_gguf_api_tensor_at(g, i);
    if (!t) return bn_err(BITNET_E_INVALID_ARG, "bitnet_gguf_tensor_to_f32: no tensor %llu", (unsigned long long)i);
    if (!dst && n_rows) return bn_err(BITNET_E_INVALID_ARG, "tensor '%s': dst is NULL", t->name);
    int64_t ne0 = t->ne[0], rows = (int64_t)(t->n_elements / (uint64_t)ne0);
    if (row0 < 0 || n_rows < 0 || row0 > rows || n_rows > rows - row0)
        return bn_err(BITNET_E_INVALID_ARG, "tensor '%s': rows [%lld, %lld+%lld) out of range (%lld rows)", t->name,
                      (long long)row0, (long long)row0, (long long)n_rows, (long long)rows);
    if (n_rows == 0) return BITNET_OK;
    int64_t start = row0 * ne0, n = n_rows * ne0; /* <= n_elements: no overflow */

    if (t->type == BITNET_TYPE_I2_S) {
        if (start % 128 == 0 && n % 128 == 0) {
            bn_i2s_dequant(t->data, (int64_t)t->n_elements, start, n, dst);
        } else {
            float scale = bn_i2s_scale(t->data, (int64_t)t->n_elements);
            for (int64_t k = 0; k < n; k++) dst[k] = (float)bn_i2s_get(t->data, start + k) * scale;
        }
        return BITNET_OK;
    }
    const bn_type_traits *tr = bn_type_traits_get(t->type);
    if (!tr || !tr->to_float)
        return bn_err(BITNET_E_UNSUPPORTED, "tensor '%s': type %s cannot be converted to float", t->name,
                      tr ? tr->name : "?");
    uint64_t row_bytes = bn_row_size(t->type, ne0);
    const uint8_t *src = (const uint8_t *)t->data + (uint64_t)row0 * row_bytes;
    uint64_t nbytes = (uint64_t)n_rows * row_bytes;
    /* The converters may read through typed pointers: give them an aligned copy when
     * the data is not (general.alignment may be as small as 1). */
    if ((uintptr_t)src % 16 != 0) {
        void *tmp = bn_aligned_alloc(64, (size_t)nbytes);
        if (!tmp) return bn_err(BITNET_E_NOMEM, "tensor '%s': out of memory converting %lld rows", t->name,
                                (long long)n_rows);
        memcpy(tmp, src, (size_t)nbytes);
        tr->to_float(tmp, dst, n);
        bn_aligned_free(tmp);
    } else {
        tr->to_float(src, dst, n);
    }
    return BITNET_OK;
}

/* ---- internal typed getters ------------------------------------------------------------------ */

static bitnet_status bn_gguf_api_find_kv(const bitnet_gguf *g, const char *key, int required, bitnet_gguf_value *v) {
    if (!g || !key) return bn_err(BITNET_E_INVALID_ARG, "gguf getter: NULL argument");
    int64_t i = bn_gguf_find_key(g, key);
    if (i < 0) {
        if (required) return bn_err(BITNET_E_NOT_FOUND, "required key '%s' is missing", key);
        return BITNET_E_NOT_FOUND;
    }
    bn_gguf_api_make_value(g, g->kv[i].type, g->kv[i].off, v);
    return BITNET_OK;
}

static bitnet_status bn_gguf_api_wrong_type(const char *key, const char *expected, bitnet_gguf_type found) {
    return bn_err(BITNET_E_TYPE, "key '%s' has type %s, expected %s", key, bitnet_gguf_type_name(found), expected);
}

bitnet_status bn_gguf_get_u64(const bitnet_gguf *g, const char *key, int required, uint64_t *out) {
    bitnet_gguf_value v;
    bitnet_status st = bn_gguf_api_find_kv(g, key, required, &v);
    if (st) return st;
    int neg;
    int64_t i;
    uint64_t u;
    if (bn_gguf_api_int_value(g, &v, 0, &neg, &i, &u)) return bn_gguf_api_wrong_type(key, "an integer", v.type);
    if (neg) return bn_err(BITNET_E_TYPE, "key '%s' is %lld, expected a non-negative integer", key, (long long)i);
    *out = u;
    return BITNET_OK;
}

bitnet_status bn_gguf_get_i64(const bitnet_gguf *g, const char *key, int required, int64_t *out) {
    bitnet_gguf_value v;
    bitnet_status st = bn_gguf_api_find_kv(g, key, required, &v);
    if (st) return st;
    int neg;
    int64_t i;
    uint64_t u;
    if (bn_gguf_api_int_value(g, &v, 0, &neg, &i, &u)) return bn_gguf_api_wrong_type(key, "an integer", v.type);
    if (!neg && u > (uint64_t)INT64_MAX)
        return bn_err(BITNET_E_TYPE, "key '%s' is %llu, too large for int64", key, (unsigned long long)u);
    *out = neg ? i : (int64_t)u;
    return BITNET_OK;
}

bitnet_status bn_gguf_get_f64(const bitnet_gguf *g, const char *key, int required, double *out) {
    bitnet_gguf_value v;
    bitnet_status st = bn_gguf_api_find_kv(g, key, required, &v);
    if (st) return st;
    if (bn_gguf_api_float_value(g, &v, out)) return bn_gguf_api_wrong_type(key, "a number", v.type);
    return BITNET_OK;
}

bitnet_status bn_gguf_get_bool(const bitnet_gguf *g, const char *key, int required, int *out) {
    bitnet_gguf_value v;
    bitnet_status st = bn_gguf_api_find_kv(g, key, required, &v);
    if (st) return st;
    if (v.type != BITNET_GGUF_BOOL) return bn_gguf_api_wrong_type(key, "bool", v.type);
    *out = g->base[v.ref] != 0;
    return BITNET_OK;
}

bitnet_status bn_gguf_get_str(const bitnet_gguf *g, const char *key, int required, const char **s, uint64_t *len) {
    bitnet_gguf_value v;
    bitnet_status st = bn_gguf_api_find_kv(g, key, required, &v);
    if (st) return st;
    if (v.type != BITNET_GGUF_STRING) return bn_gguf_api_wrong_type(key, "string", v.type);
    return bn_gguf_api_str_at(g, v.ref, s, len);
}

bitnet_status bn_gguf_get_arr(const bitnet_gguf *g, const char *key, int required, bitnet_gguf_type elem_type,
                              const bn_gguf_arr **arr) {
    bitnet_gguf_value v;
    bitnet_status st = bn_gguf_api_find_kv(g, key, required, &v);
    if (st) return st;
    if (v.type != BITNET_GGUF_ARRAY) return bn_gguf_api_wrong_type(key, "array", v.type);
    const bn_gguf_arr *a = bn_gguf_arr_at(g, v.ref);
    if (!a) return bn_err(BITNET_E_INTERNAL, "key '%s': array record missing", key);
    if (elem_type != BITNET_GGUF_ARRAY && a->elem_type != (uint32_t)elem_type)
        return bn_err(BITNET_E_TYPE, "key '%s' is an array of %s, expected an array of %s", key,
                      bitnet_gguf_type_name((bitnet_gguf_type)a->elem_type), bitnet_gguf_type_name(elem_type));
    *arr = a;
    return BITNET_OK;
}

void bn_gguf_arr_str(const bitnet_gguf *g, const bn_gguf_arr *a, uint64_t j, const char **s, uint64_t *len) {
    /* validated at parse time: the element lies inside the file */
    uint64_t off = a->elem_off[j];
    *len = bn_rd_u64(g->base + off);
    *s = (const char *)(g->base + off + 8);
}

/* Float to int64, truncating; NaN and out-of-range values give 0 (the cast would be
 * undefined behaviour). */
static int64_t bn_gguf_api_f64_to_i64(double d) {
    return isfinite(d) && d > -9223372036854775808.0 && d < 9223372036854775808.0 ? (int64_t)d : 0;
}

int64_t bn_gguf_arr_i64(const bitnet_gguf *g, const bn_gguf_arr *a, uint64_t j) {
    const uint8_t *p = g->base + a->data + j * (uint64_t)bn_gguf_type_size(a->elem_type);
    switch (a->elem_type) {
    case BITNET_GGUF_UINT8: case BITNET_GGUF_BOOL: return p[0];
    case BITNET_GGUF_INT8: return (int8_t)p[0];
    case BITNET_GGUF_UINT16: return bn_rd_u16(p);
    case BITNET_GGUF_INT16: return (int16_t)bn_rd_u16(p);
    case BITNET_GGUF_UINT32: return bn_rd_u32(p);
    case BITNET_GGUF_INT32: return (int32_t)bn_rd_u32(p);
    case BITNET_GGUF_UINT64: case BITNET_GGUF_INT64: return (int64_t)bn_rd_u64(p);
    case BITNET_GGUF_FLOAT32: return bn_gguf_api_f64_to_i64(bn_rd_f32(p));
    case BITNET_GGUF_FLOAT64: return bn_gguf_api_f64_to_i64(bn_rd_f64(p));
    default: return 0;
    }
}

double bn_gguf_arr_f64(const bitnet_gguf *g, const bn_gguf_arr *a, uint64_t j) {
    const uint8_t *p = g->base + a->data + j * (uint64_t)bn_gguf_type_size(a->elem_type);
    switch (a->elem_type) {
    case BITNET_GGUF_FLOAT32: return bn_rd_f32(p);
    case BITNET_GGUF_FLOAT64: return bn_rd_f64(p);
    case BITNET_GGUF_UINT64: return (double)bn_rd_u64(p);
    default: return (double)bn_gguf_arr_i64(g, a, j);
    }
}
