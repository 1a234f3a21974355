/*
 * gguf.h -- the GGUF reader's internal interface (lib/gguf_read.c).  The public accessors
 * in bitnet.h are thin wrappers over these structures.
 *
 * After bn_gguf_parse() succeeds everything below has been validated: keys are
 * unique, valid UTF-8 and NUL-terminated copies; every string, array and tensor lies
 * inside the file; tensor types are known, sizes computed without overflow, data
 * aligned and non-overlapping.  Callers never re-check bounds.
 */
#ifndef BN_GGUF_H
#define BN_GGUF_H

#include "internal.h"

#define BN_GGUF_MAX_DIMS 4
#define BN_GGUF_MAX_NAME 64 /* tensor names are < 64 bytes, as in ggml */

/* One array anywhere in the metadata (top-level or nested).  Arrays whose elements
 * have variable size (strings, arrays) get a table of element offsets so that element
 * j is found in O(1). */
typedef struct bn_gguf_arr {
    uint64_t  off;       /* file offset of the array header (elem type field)      */
    uint32_t  elem_type; /* bitnet_gguf_type                                       */
    uint64_t  count;
    uint64_t  data;      /* file offset of element 0                               */
    uint64_t *elem_off;  /* count offsets (file offsets of each element's payload;
                            for strings the u64 length prefix), NULL for fixed size */
} bn_gguf_arr;

typedef struct bn_gguf_kv {
    char             *key;     /* NUL-terminated copy (validated UTF-8, no NUL inside) */
    uint64_t          key_len;
    bitnet_gguf_type  type;
    uint64_t          off;     /* file offset of the value payload (after the type)   */
    int64_t           arr;     /* index into g->arrs when type == ARRAY, else -1       */
} bn_gguf_kv;

typedef struct bn_gguf_tensor {
    char        name[BN_GGUF_MAX_NAME];
    uint32_t    n_dims;
    int64_t     ne[BN_GGUF_MAX_DIMS]; /* unused dims are 1 */
    uint32_t    type;                 /* bitnet_type */
    uint64_t    offset;               /* relative to the data section */
    uint64_t    size;                 /* bytes */
    uint64_t    n_elements;
    const void *data;                 /* g->base + data_offset + offset */
} bn_gguf_tensor;

struct bitnet_gguf {
    const uint8_t  *base;      /* the whole file */
    uint64_t        size;
    int             mapped;    /* 1: munmap(base) on close; 2: bn_free(base); 0: caller's */
    uint32_t        version;
    uint64_t        alignment;
    uint64_t        data_offset;
    uint64_t        n_kv;
    bn_gguf_kv     *kv;
    uint64_t        n_arrs;
    bn_gguf_arr    *arrs;      /* sorted by off (parse order) */
    uint64_t        n_tensors;
    bn_gguf_tensor *tensors;
    int             tl2;       /* type id 39 is bitnet.cpp's TL2 (else upstream MXFP4): see gguf_read.c */
    /* hash indexes for key and tensor lookups (open addressing, sizes powers of 2) */
    uint64_t       *kv_index;  uint64_t kv_index_cap;
    uint64_t       *t_index;   uint64_t t_index_cap;
};

/* Parse and validate a complete file image.  On success *out owns nothing of the
 * image (the caller sets g->mapped to hand ownership over). */
bitnet_status bn_gguf_parse(const uint8_t *base, uint64_t size, bitnet_gguf **out);

/* Open a file: mmap (use_mmap) or read into memory. */
bitnet_status bn_gguf_open_file(const char *path, int use_mmap, bitnet_gguf **out);

/* Release a handle from bn_gguf_parse / bn_gguf_open_file (NULL is fine). */
void bn_gguf_free(bitnet_gguf *g);

/* Bytes of one value of a fixed-size metadata type; 0 for STRING and ARRAY; -1 for an
 * unknown type id. */
int bn_gguf_type_size(uint32_t type);

/* Lookups: index or -1. */
int64_t bn_gguf_find_key(const bitnet_gguf *g, const char *key);
int64_t bn_gguf_find_tensor(const bitnet_gguf *g, const char *name);

/* The array record for an ARRAY value at payload offset `off`, or NULL. */
const bn_gguf_arr *bn_gguf_arr_at(const bitnet_gguf *g, uint64_t off);

/* Typed getters by key for the model loader.  Each returns BITNET_E_NOT_FOUND when
 * the key is absent (with a message only if `required`), BITNET_E_TYPE when the value
 * has an incompatible type (message names key, expected and found type).  Integer
 * getters accept any integer type whose value fits; float getters accept f32/f64 and
 * integers. */
bitnet_status bn_gguf_get_u64(const bitnet_gguf *g, const char *key, int required, uint64_t *out);
bitnet_status bn_gguf_get_i64(const bitnet_gguf *g, const char *key, int required, int64_t *out);
bitnet_status bn_gguf_get_f64(const bitnet_gguf *g, const char *key, int required, double *out);
bitnet_status bn_gguf_get_bool(const bitnet_gguf *g, const char *key, int required, int *out);
bitnet_status bn_gguf_get_str(const bitnet_gguf *g, const char *key, int required,
                              const char **s, uint64_t *len);
/* Top-level array of a given element type (pass BITNET_GGUF_ARRAY as "any"). */
bitnet_status bn_gguf_get_arr(const bitnet_gguf *g, const char *key, int required,
                              bitnet_gguf_type elem_type, const bn_gguf_arr **arr);
/* Element j of a string array (pointer into the file, length). */
void bn_gguf_arr_str(const bitnet_gguf *g, const bn_gguf_arr *a, uint64_t j, const char **s, uint64_t *len);
/* Element j of a numeric array, converted. */
int64_t bn_gguf_arr_i64(const bitnet_gguf *g, const bn_gguf_arr *a, uint64_t j);
double  bn_gguf_arr_f64(const bitnet_gguf *g, const bn_gguf_arr *a, uint64_t j);

#endif /* BN_GGUF_H */
