/*
 * test_gguf.c -- the GGUF reader (lib/gguf_read.c, lib/gguf_api.c) and writer
 * (lib/gguf_write.c).
 *
 * Round trips go writer -> file -> reader and compare with the values put in.
 * Malformed files are built byte by byte with the small encoder below (written from
 * the GGUF layout, independently of the library's writer), so each case states
 * exactly which field is wrong; every case asserts the status and a substring of the
 * message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gguf.h"
#include "type_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a tiny GGUF encoder for hand-made files ---------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t   n, cap;
} buf;

static void b_bytes(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void b_u8(buf *b, uint8_t v) { b_bytes(b, &v, 1); }
static void b_u32(buf *b, uint32_t v) { b_bytes(b, &v, 4); }
static void b_u64(buf *b, uint64_t v) { b_bytes(b, &v, 8); }
static void b_strn(buf *b, const char *s, size_t n) {
    b_u64(b, n);
    b_bytes(b, s, n);
}
static void b_str(buf *b, const char *s) { b_strn(b, s, strlen(s)); }
static void b_hdr(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b_bytes(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void b_kv_str(buf *b, const char *key, const char *v) {
    b_str(b, key);
    b_u32(b, BITNET_GGUF_STRING);
    b_str(b, v);
}
static void b_kv_u32(buf *b, const char *key, uint32_t v) {
    b_str(b, key);
    b_u32(b, BITNET_GGUF_UINT32);
    b_u32(b, v);
}
/* tensor info with up to 4 dims */
static void b_tinfo(buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) b_u64(b, ne[d]);
    b_u32(b, type);
    b_u64(b, off);
}
static void b_pad(buf *b, size_t align) {
    while (b->n % align) b_u8(b, 0);
}
static void b_zeros(buf *b, size_t n) {
    for (size_t i = 0; i < n; i++) b_u8(b, 0);
}

/* Open b and expect failure with status st and msg inside the message. */
static void expect_fail(const buf *b, bitnet_status st, const char *msg) {
    bitnet_gguf *g = (bitnet_gguf *)(uintptr_t)1;
    bitnet_status got = bitnet_gguf_open_memory(b->p, b->n, &g);
    if (got != st || !strstr(bitnet_last_error(), msg))
        print_error("expected status %d with '%s', got %d: '%s'\n", st, msg, got, bitnet_last_error());
    assert_int_equal(got, st);
    assert_null(g);
    assert_non_null(strstr(bitnet_last_error(), msg));
}

static bitnet_gguf *expect_ok(const buf *b) {
    bitnet_gguf *g = NULL;
    bitnet_status st = bitnet_gguf_open_memory(b->p, b->n, &g);
    if (st) print_error("unexpected failure: %s\n", bitnet_last_error());
    assert_int_equal(st, BITNET_OK);
    assert_non_null(g);
    return g;
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)sz + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static const char *tmp_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/test_gguf_%s.gguf", BN_TEST_TMP_DIR, name);
    return path;
}

/* ---- metadata round trip ------------------------------------------------------------------- */

/* Nested array [[1,2],[3],[]] of i32, encoded by hand (payload after the value type). */
static void nested_i32(buf *b) {
    b_u32(b, BITNET_GGUF_ARRAY);
    b_u64(b, 3);
    b_u32(b, BITNET_GGUF_INT32), b_u64(b, 2), b_u32(b, 1), b_u32(b, 2);
    b_u32(b, BITNET_GGUF_INT32), b_u64(b, 1), b_u32(b, 3);
    b_u32(b, BITNET_GGUF_INT32), b_u64(b, 0);
}

/* Depth-d nest of single-element arrays around a u8 array {7}. */
static void nest(buf *b, int d) {
    if (d == 1) {
        b_u32(b, BITNET_GGUF_UINT8), b_u64(b, 1), b_u8(b, 7);
        return;
    }
    b_u32(b, BITNET_GGUF_ARRAY), b_u64(b, 1);
    nest(b, d - 1);
}

static void write_meta_file(const char *path) {
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet_gguf_writer_create(&w), BITNET_OK);
    uint8_t u8 = 200, b1 = 1;
    int8_t i8 = -5;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint32_t u32 = 4000000000u;
    int32_t i32 = -2000000000;
    float f32 = 1.5f;
    uint64_t u64 = 0xFEDCBA9876543210ull;
    int64_t i64 = -1234567890123ll;
    double f64 = 3.141592653589793;
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "t.u8", BITNET_GGUF_UINT8, &u8), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "t.i8", BITNET_GGUF_INT8, &i8), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "t.u16", BITNET_GGUF_UINT16, &u16), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "t.i16", BITNET_GGUF_INT16, &i16), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "t.u32", BITNET_GGUF_UINT32, &u32), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "t.i32", BITNET_GGUF_INT32, &i32), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "t.f32", BITNET_GGUF_FLOAT32, &f32), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "t.bool", BITNET_GGUF_BOOL, &b1), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "t.u64", BITNET_GGUF_UINT64, &u64), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "t.i64", BITNET_GGUF_INT64, &i64), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "t.f64", BITNET_GGUF_FLOAT64, &f64), 0);
    assert_int_equal(bitnet_gguf_writer_set_str(w, "t.str", "hello\0world", 11), 0);
    assert_int_equal(bitnet_gguf_writer_set_str(w, "t.empty", "", 0), 0);
    assert_int_equal(bitnet_gguf_writer_set_str(w, "t.ütf8", "ünïcödé", strlen("ünïcödé")), 0);
    int32_t ai32[4] = {-1, 0, 1, 2147483647};
    float af32[3] = {0.25f, -8.0f, 1e10f};
    uint8_t abool[3] = {1, 0, 1};
    int64_t ai64[2] = {INT64_MIN, INT64_MAX};
    assert_int_equal(bitnet_gguf_writer_set_array(w, "a.i32", BITNET_GGUF_INT32, ai32, 4), 0);
    assert_int_equal(bitnet_gguf_writer_set_array(w, "a.f32", BITNET_GGUF_FLOAT32, af32, 3), 0);
    assert_int_equal(bitnet_gguf_writer_set_array(w, "a.bool", BITNET_GGUF_BOOL, abool, 3), 0);
    assert_int_equal(bitnet_gguf_writer_set_array(w, "a.i64", BITNET_GGUF_INT64, ai64, 2), 0);
    assert_int_equal(bitnet_gguf_writer_set_array(w, "a.empty", BITNET_GGUF_UINT16, NULL, 0), 0);
    const char *strs[3] = {"a", "", "xyz"};
    assert_int_equal(bitnet_gguf_writer_set_str_array(w, "a.str", strs, NULL, 3), 0);
    const char *bin[1] = {"n\0l"};
    size_t binlen[1] = {3};
    assert_int_equal(bitnet_gguf_writer_set_str_array(w, "a.strlen", bin, binlen, 1), 0);
    assert_int_equal(bitnet_gguf_writer_set_str_array(w, "a.strempty", NULL, NULL, 0), 0);
    buf nb = {0};
    nested_i32(&nb);
    assert_int_equal(bitnet_gguf_writer_set_raw(w, "a.nested", BITNET_GGUF_ARRAY, nb.p, nb.n), 0);
    nb.n = 0;
    nest(&nb, 8); /* the deepest nesting the reader accepts */
    assert_int_equal(bitnet_gguf_writer_set_raw(w, "a.deep", BITNET_GGUF_ARRAY, nb.p, nb.n), 0);
    free(nb.p);
    assert_int_equal(bitnet_gguf_writer_begin(w, path), 0);
    assert_int_equal(bitnet_gguf_writer_finish(w), 0);
    bitnet_gguf_writer_free(w);
}

static bitnet_gguf_value kv(const bitnet_gguf *g, const char *key, bitnet_gguf_type type) {
    int64_t i = bitnet_gguf_find_key(g, key);
    if (i < 0) print_error("key %s missing\n", key);
    assert_true(i >= 0);
    const char *k;
    bitnet_gguf_value v;
    assert_int_equal(bitnet_gguf_kv(g, (uint64_t)i, &k, &v), BITNET_OK);
    assert_string_equal(k, key);
    assert_int_equal(v.type, type);
    return v;
}

static int64_t vint(const bitnet_gguf *g, const bitnet_gguf_value *v) {
    int64_t x;
    assert_int_equal(bitnet_gguf_value_int(g, v, &x), BITNET_OK);
    return x;
}

static void check_meta(bitnet_gguf *g) {
    bitnet_gguf_value v;
    uint64_t u;
    double d;
    int b;
    const char *s;
    uint64_t len;
    assert_int_equal(bitnet_gguf_n_kv(g), 24);
    assert_int_equal(bitnet_gguf_n_tensors(g), 0);
    assert_int_equal(bitnet_gguf_alignment(g), 32);
    v = kv(g, "t.u8", BITNET_GGUF_UINT8);
    assert_int_equal(vint(g, &v), 200);
    v = kv(g, "t.i8", BITNET_GGUF_INT8);
    assert_int_equal(vint(g, &v), -5);
    assert_int_equal(bitnet_gguf_value_uint(g, &v, &u), BITNET_E_FORMAT); /* negative */
    v = kv(g, "t.u16", BITNET_GGUF_UINT16);
    assert_int_equal(vint(g, &v), 60000);
    v = kv(g, "t.i16", BITNET_GGUF_INT16);
    assert_int_equal(vint(g, &v), -30000);
    v = kv(g, "t.u32", BITNET_GGUF_UINT32);
    assert_int_equal(vint(g, &v), 4000000000ll);
    v = kv(g, "t.i32", BITNET_GGUF_INT32);
    assert_int_equal(vint(g, &v), -2000000000ll);
    assert_int_equal(bitnet_gguf_value_float(g, &v, &d), BITNET_OK);
    assert_true(d == -2000000000.0);
    v = kv(g, "t.f32", BITNET_GGUF_FLOAT32);
    assert_int_equal(bitnet_gguf_value_float(g, &v, &d), BITNET_OK);
    assert_true(d == 1.5);
    assert_int_equal(bitnet_gguf_value_int(g, &v, &(int64_t){0}), BITNET_E_TYPE);
    v = kv(g, "t.bool", BITNET_GGUF_BOOL);
    assert_int_equal(bitnet_gguf_value_bool(g, &v, &b), BITNET_OK);
    assert_int_equal(b, 1);
    assert_int_equal(vint(g, &v), 1);
    v = kv(g, "t.u64", BITNET_GGUF_UINT64);
    assert_int_equal(bitnet_gguf_value_uint(g, &v, &u), BITNET_OK);
    assert_true(u == 0xFEDCBA9876543210ull);
    assert_int_equal(bitnet_gguf_value_int(g, &v, &(int64_t){0}), BITNET_E_FORMAT); /* > INT64_MAX */
    v = kv(g, "t.i64", BITNET_GGUF_INT64);
    assert_true(vint(g, &v) == -1234567890123ll);
    v = kv(g, "t.f64", BITNET_GGUF_FLOAT64);
    assert_int_equal(bitnet_gguf_value_float(g, &v, &d), BITNET_OK);
    assert_true(d == 3.141592653589793);
    assert_int_equal(bitnet_gguf_value_str(g, &v, &s, &len), BITNET_E_TYPE);
    v = kv(g, "t.str", BITNET_GGUF_STRING);
    assert_int_equal(bitnet_gguf_value_str(g, &v, &s, &len), BITNET_OK);
    assert_int_equal(len, 11);
    assert_memory_equal(s, "hello\0world", 11);
    assert_int_equal(bitnet_gguf_value_bool(g, &v, &b), BITNET_E_TYPE);
    v = kv(g, "t.empty", BITNET_GGUF_STRING);
    assert_int_equal(bitnet_gguf_value_str(g, &v, &s, &len), BITNET_OK);
    assert_int_equal(len, 0);
    v = kv(g, "t.ütf8", BITNET_GGUF_STRING);
    assert_int_equal(bitnet_gguf_value_str(g, &v, &s, &len), BITNET_OK);
    assert_int_equal(len, strlen("ünïcödé"));
    assert_memory_equal(s, "ünïcödé", len);

    /* fixed-size arrays: element access and packed data */
    bitnet_gguf_value e;
    const void *data;
    v = kv(g, "a.i32", BITNET_GGUF_ARRAY);
    assert_int_equal(v.elem_type, BITNET_GGUF_INT32);
    assert_int_equal(v.count, 4);
    const int64_t want_i32[4] = {-1, 0, 1, 2147483647};
    for (uint64_t j = 0; j < 4; j++) {
        assert_int_equal(bitnet_gguf_array_get(g, &v, j, &e), BITNET_OK);
        assert_int_equal(e.type, BITNET_GGUF_INT32);
        assert_int_equal(vint(g, &e), want_i32[j]);
    }
    assert_int_equal(bitnet_gguf_array_get(g, &v, 4, &e), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_array_data(g, &v, &data), BITNET_OK);
    int32_t raw[4];
    memcpy(raw, data, sizeof raw);
    assert_int_equal(raw[3], 2147483647);
    v = kv(g, "a.f32", BITNET_GGUF_ARRAY);
    assert_int_equal(bitnet_gguf_array_get(g, &v, 2, &e), BITNET_OK);
    assert_int_equal(bitnet_gguf_value_float(g, &e, &d), BITNET_OK);
    assert_true(d == 1e10f);
    v = kv(g, "a.bool", BITNET_GGUF_ARRAY);
    assert_int_equal(bitnet_gguf_array_get(g, &v, 1, &e), BITNET_OK);
    assert_int_equal(bitnet_gguf_value_bool(g, &e, &b), BITNET_OK);
    assert_int_equal(b, 0);
    v = kv(g, "a.i64", BITNET_GGUF_ARRAY);
    assert_int_equal(bitnet_gguf_array_get(g, &v, 0, &e), BITNET_OK);
    assert_true(vint(g, &e) == INT64_MIN);
    v = kv(g, "a.empty", BITNET_GGUF_ARRAY);
    assert_int_equal(v.count, 0);
    assert_int_equal(v.elem_type, BITNET_GGUF_UINT16);
    assert_int_equal(bitnet_gguf_array_get(g, &v, 0, &e), BITNET_E_INVALID_ARG);

    /* string arrays */
    v = kv(g, "a.str", BITNET_GGUF_ARRAY);
    assert_int_equal(v.elem_type, BITNET_GGUF_STRING);
    assert_int_equal(v.count, 3);
    assert_int_equal(bitnet_gguf_array_data(g, &v, &data), BITNET_E_TYPE);
    const char *want_s[3] = {"a", "", "xyz"};
    for (uint64_t j = 0; j < 3; j++) {
        assert_int_equal(bitnet_gguf_array_get(g, &v, j, &e), BITNET_OK);
        assert_int_equal(bitnet_gguf_value_str(g, &e, &s, &len), BITNET_OK);
        assert_int_equal(len, strlen(want_s[j]));
        assert_memory_equal(s, want_s[j], len);
    }
    v = kv(g, "a.strlen", BITNET_GGUF_ARRAY);
    assert_int_equal(bitnet_gguf_array_get(g, &v, 0, &e), BITNET_OK);
    assert_int_equal(bitnet_gguf_value_str(g, &e, &s, &len), BITNET_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "n\0l", 3);
    v = kv(g, "a.strempty", BITNET_GGUF_ARRAY);
    assert_int_equal(v.count, 0);
    assert_int_equal(v.elem_type, BITNET_GGUF_STRING);

    /* nested [[1,2],[3],[]] */
    v = kv(g, "a.nested", BITNET_GGUF_ARRAY);
    assert_int_equal(v.elem_type, BITNET_GGUF_ARRAY);
    assert_int_equal(v.count, 3);
    const uint64_t counts[3] = {2, 1, 0};
    int64_t next = 1;
    for (uint64_t j = 0; j < 3; j++) {
        assert_int_equal(bitnet_gguf_array_get(g, &v, j, &e), BITNET_OK);
        assert_int_equal(e.type, BITNET_GGUF_ARRAY);
        assert_int_equal(e.elem_type, BITNET_GGUF_INT32);
        assert_int_equal(e.count, counts[j]);
        for (uint64_t k = 0; k < e.count; k++) {
            bitnet_gguf_value x;
            assert_int_equal(bitnet_gguf_array_get(g, &e, k, &x), BITNET_OK);
            assert_int_equal(vint(g, &x), next++);
        }
    }
    /* depth 8 */
    v = kv(g, "a.deep", BITNET_GGUF_ARRAY);
    for (int depth = 1; depth < 8; depth++) {
        assert_int_equal(v.elem_type, BITNET_GGUF_ARRAY);
        assert_int_equal(bitnet_gguf_array_get(g, &v, 0, &e), BITNET_OK);
        v = e;
    }
    assert_int_equal(v.elem_type, BITNET_GGUF_UINT8);
    assert_int_equal(bitnet_gguf_array_get(g, &v, 0, &e), BITNET_OK);
    assert_int_equal(vint(g, &e), 7);

    /* internal typed getters */
    int64_t i64;
    assert_int_equal(bn_gguf_get_u64(g, "t.u16", 1, &u), BITNET_OK);
    assert_int_equal(u, 60000);
    assert_int_equal(bn_gguf_get_u64(g, "t.i8", 1, &u), BITNET_E_TYPE);
    assert_non_null(strstr(bitnet_last_error(), "t.i8"));
    assert_int_equal(bn_gguf_get_i64(g, "t.i16", 1, &i64), BITNET_OK);
    assert_int_equal(i64, -30000);
    assert_int_equal(bn_gguf_get_i64(g, "t.str", 1, &i64), BITNET_E_TYPE);
    assert_non_null(strstr(bitnet_last_error(), "key 't.str' has type string"));
    assert_int_equal(bn_gguf_get_f64(g, "t.u32", 1, &d), BITNET_OK);
    assert_true(d == 4000000000.0);
    assert_int_equal(bn_gguf_get_bool(g, "t.bool", 1, &b), BITNET_OK);
    assert_int_equal(b, 1);
    assert_int_equal(bn_gguf_get_str(g, "t.str", 1, &s, &len), BITNET_OK);
    assert_int_equal(len, 11);
    assert_int_equal(bn_gguf_get_str(g, "nope", 1, &s, &len), BITNET_E_NOT_FOUND);
    assert_non_null(strstr(bitnet_last_error(), "nope"));
    assert_int_equal(bn_gguf_get_u64(g, "nope", 0, &u), BITNET_E_NOT_FOUND);
    const bn_gguf_arr *a;
    assert_int_equal(bn_gguf_get_arr(g, "a.str", 1, BITNET_GGUF_STRING, &a), BITNET_OK);
    bn_gguf_arr_str(g, a, 2, &s, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "xyz", 3);
    assert_int_equal(bn_gguf_get_arr(g, "a.str", 1, BITNET_GGUF_INT32, &a), BITNET_E_TYPE);
    assert_int_equal(bn_gguf_get_arr(g, "a.i32", 1, BITNET_GGUF_ARRAY, &a), BITNET_OK);
    assert_int_equal(bn_gguf_arr_i64(g, a, 0), -1);
    assert_true(bn_gguf_arr_f64(g, a, 3) == 2147483647.0);
    assert_int_equal(bitnet_gguf_find_key(g, "absent"), -1);
}

static void test_metadata_roundtrip(void **state) {
    (void)state;
    const char *path = tmp_path("meta");
    write_meta_file(path);
    bitnet_gguf *g = NULL;
    assert_int_equal(bitnet_gguf_open(path, &g), BITNET_OK);
    assert_int_equal(bitnet_gguf_version(g), 3);
    check_meta(g);
    bitnet_gguf_close(g);
    /* the read-into-memory path */
    assert_int_equal(bn_gguf_open_file(path, 0, &g), BITNET_OK);
    check_meta(g);
    bitnet_gguf_close(g);
    /* v2 has the same layout: patch the version field */
    size_t n;
    uint8_t *img = read_all(path, &n);
    img[4] = 2;
    assert_int_equal(bitnet_gguf_open_memory(img, n, &g), BITNET_OK);
    assert_int_equal(bitnet_gguf_version(g), 2);
    check_meta(g);
    bitnet_gguf_close(g);
    free(img);
}

/* ---- tensor round trip ------------------------------------------------------------------------- */

/* Hand-packed I2_S (classic x128 layout from docs/formats.md): element e of block b is
 * in byte 32b + e%32 at bits 6-2*(e/32); code = value + 1; f32 scale at byte n/4. */
static void pack_i2s(const int8_t *vals, int64_t n, float scale, uint8_t *dst) {
    memset(dst, 0, (size_t)(n / 4 + 32));
    for (int64_t i = 0; i < n; i++) {
        int64_t b = i / 128, e = i % 128;
        dst[32 * b + e % 32] |= (uint8_t)((vals[i] + 1) << (6 - 2 * (e / 32)));
    }
    memcpy(dst + n / 4, &scale, 4);
}

typedef struct tdesc {
    const char *name;
    bitnet_type type;
    uint32_t    n_dims;
    int64_t     ne[4];
    size_t      size;
} tdesc;

static void tensor_roundtrip(uint32_t align) {
    /* F32 5x3, F16 64, Q8_0 32x3, I2_S 128x2, I2_S 64x4, TQ2_0 256 (raw bytes), F32 4-D */
    tdesc td[7] = {
        {"f32", BITNET_TYPE_F32, 2, {5, 3, 1, 1}, 60},
        {"f16", BITNET_TYPE_F16, 1, {64, 1, 1, 1}, 128},
        {"q8", BITNET_TYPE_Q8_0, 2, {32, 3, 1, 1}, 3 * 34},
        {"i2s", BITNET_TYPE_I2_S, 2, {128, 2, 1, 1}, 64 + 32},
        {"i2s.small", BITNET_TYPE_I2_S, 2, {64, 4, 1, 1}, 64 + 32},
        {"tq2", BITNET_TYPE_TQ2_0, 1, {256, 1, 1, 1}, 66},
        {"blk.0.4d", BITNET_TYPE_F32, 4, {2, 1, 3, 2}, 48},
    };
    uint8_t *data[7];
    float f32v[15];
    for (int i = 0; i < 15; i++) f32v[i] = (float)i * 0.5f - 3.0f;
    data[0] = malloc(60);
    memcpy(data[0], f32v, 60);
    /* F16: exactly representable values: 1.0 (3C00), -2.0 (C000), 0.5 (3800), 0 */
    const uint16_t h[4] = {0x3C00, 0xC000, 0x3800, 0x0000};
    const float hv[4] = {1.0f, -2.0f, 0.5f, 0.0f};
    data[1] = malloc(128);
    for (int i = 0; i < 64; i++) memcpy(data[1] + 2 * i, &h[i % 4], 2);
    /* Q8_0: block r has d = 0.5 (f16 0x3800), q[j] = j - 16 + r */
    data[2] = malloc(3 * 34);
    for (int r = 0; r < 3; r++) {
        uint16_t d16 = 0x3800;
        memcpy(data[2] + 34 * r, &d16, 2);
        for (int j = 0; j < 32; j++) data[2][34 * r + 2 + j] = (uint8_t)(int8_t)(j - 16 + r);
    }
    int8_t tern[256];
    for (int i = 0; i < 256; i++) tern[i] = (int8_t)((i * 7) % 3 - 1);
    data[3] = malloc(96);
    pack_i2s(tern, 256, 0.25f, data[3]);
    data[4] = malloc(96);
    pack_i2s(tern, 256, 2.0f, data[4]);
    data[5] = malloc(66);
    for (int i = 0; i < 66; i++) data[5][i] = (uint8_t)(i * 37 + 11);
    data[6] = malloc(48);
    for (int i = 0; i < 48; i++) data[6][i] = (uint8_t)(255 - i);

    const char *path = tmp_path("tensors");
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet_gguf_writer_create(&w), 0);
    assert_int_equal(bitnet_gguf_writer_set_alignment(w, align), 0);
    assert_int_equal(bitnet_gguf_writer_set_str(w, "general.architecture", "test", 4), 0);
    for (int i = 0; i < 7; i++)
        assert_int_equal(bitnet_gguf_writer_add_tensor(w, td[i].name, td[i].n_dims, td[i].ne, td[i].type), 0);
    assert_int_equal(bitnet_gguf_writer_begin(w, path), 0);
    for (int i = 0; i < 7; i++) {
        /* in uneven pieces, to exercise the streaming */
        size_t half = td[i].size / 3;
        assert_int_equal(bitnet_gguf_writer_write(w, data[i], half), 0);
        assert_int_equal(bitnet_gguf_writer_write(w, data[i] + half, td[i].size - half), 0);
    }
    assert_int_equal(bitnet_gguf_writer_write(w, "x", 1), BITNET_E_INVALID_ARG); /* one too many */
    assert_int_equal(bitnet_gguf_writer_finish(w), 0);
    bitnet_gguf_writer_free(w);

    size_t n;
    uint8_t *img = read_all(path, &n);
    bitnet_gguf *g = NULL;
    assert_int_equal(bitnet_gguf_open_memory(img, n, &g), BITNET_OK);
    assert_int_equal(bitnet_gguf_alignment(g), align);
    assert_int_equal(bitnet_gguf_n_kv(g), align == 32 ? 1 : 2);
    if (align != 32) {
        bitnet_gguf_value v = kv(g, "general.alignment", BITNET_GGUF_UINT32);
        assert_int_equal(vint(g, &v), align);
    }
    assert_int_equal(bitnet_gguf_data_offset(g) % align, 0);
    assert_int_equal(bitnet_gguf_file_size(g), n);
    assert_int_equal(bitnet_gguf_n_tensors(g), 7);
    uint64_t expect_off = 0;
    for (uint64_t i = 0; i < 7; i++) {
        assert_int_equal(bitnet_gguf_find_tensor(g, td[i].name), (int64_t)i);
        assert_string_equal(bitnet_gguf_tensor_name(g, i), td[i].name);
        assert_int_equal(bitnet_gguf_tensor_type(g, i), td[i].type);
        assert_int_equal(bitnet_gguf_tensor_n_dims(g, i), td[i].n_dims);
        uint64_t nel = 1;
        for (uint32_t d = 0; d < 4; d++) {
            assert_int_equal(bitnet_gguf_tensor_dim(g, i, d), td[i].ne[d]);
            nel *= (uint64_t)td[i].ne[d];
        }
        assert_int_equal(bitnet_gguf_tensor_dim(g, i, 7), 1);
        assert_int_equal(bitnet_gguf_tensor_n_elements(g, i), nel);
        assert_int_equal(bitnet_gguf_tensor_size(g, i), td[i].size);
        /* upstream layout: offset = running sum of sizes padded to the alignment */
        assert_int_equal(bitnet_gguf_tensor_offset(g, i), expect_off);
        expect_off += (td[i].size + align - 1) / align * align;
        const uint8_t *p = bitnet_gguf_tensor_data(g, i);
        assert_ptr_equal(p, img + bitnet_gguf_data_offset(g) + bitnet_gguf_tensor_offset(g, i));
        assert_memory_equal(p, data[i], td[i].size);
    }
    assert_int_equal(n, bitnet_gguf_data_offset(g) + expect_off); /* last tensor padded too */
    assert_null(bitnet_gguf_tensor_name(g, 7));
    assert_null(bitnet_gguf_tensor_data(g, 7));
    assert_int_equal(bitnet_gguf_tensor_size(g, 7), 0);
    assert_int_equal(bitnet_gguf_find_tensor(g, "nope"), -1);

    /* to_f32 */
    float out[256];
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 0, 1, 2, out), BITNET_OK);
    for (int i = 0; i < 10; i++) assert_true(out[i] == f32v[5 + i]);
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 0, 2, 2, out), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "'f32'"));
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 0, -1, 1, out), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 0, 3, 0, out), BITNET_OK);
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 1, 0, 1, out), BITNET_OK);
    for (int i = 0; i < 64; i++) assert_true(out[i] == hv[i % 4]);
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 2, 1, 2, out), BITNET_OK);
    for (int r = 1; r < 3; r++)
        for (int j = 0; j < 32; j++) assert_true(out[32 * (r - 1) + j] == 0.5f * (float)(j - 16 + r));
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 3, 0, 2, out), BITNET_OK);
    for (int i = 0; i < 256; i++) assert_true(out[i] == 0.25f * tern[i]);
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 3, 1, 1, out), BITNET_OK);
    for (int i = 0; i < 128; i++) assert_true(out[i] == 0.25f * tern[128 + i]);
    /* rows of 64 elements: not block-aligned */
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 4, 1, 2, out), BITNET_OK);
    for (int i = 0; i < 128; i++) assert_true(out[i] == 2.0f * tern[64 + i]);
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 6, 0, 6, out), BITNET_OK);
    for (int i = 0; i < 12; i++) {
        float f;
        memcpy(&f, data[6] + 4 * i, 4);
        assert_memory_equal(&out[i], &f, 4);
    }
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 99, 0, 1, out), BITNET_E_INVALID_ARG);
    bitnet_gguf_close(g);
    free(img);
    for (int i = 0; i < 7; i++) free(data[i]);
}

static void test_tensors_align32(void **state) { (void)state; tensor_roundtrip(32); }
static void test_tensors_align64(void **state) { (void)state; tensor_roundtrip(64); }
static void test_tensors_align1(void **state) { (void)state; tensor_roundtrip(1); }
static void test_tensors_align4096(void **state) { (void)state; tensor_roundtrip(4096); }

static void test_unsupported_to_f32(void **state) {
    (void)state;
    buf b = {0};
    uint64_t ne[1] = {256};
    b_hdr(&b, 3, 1, 0);
    b_tinfo(&b, "q2k", 1, ne, BITNET_TYPE_Q2_K, 0);
    b_pad(&b, 32);
    b_zeros(&b, 84);
    bitnet_gguf *g = expect_ok(&b);
    float out[256];
    assert_int_equal(bitnet_gguf_tensor_to_f32(g, 0, 0, 1, out), BITNET_E_UNSUPPORTED);
    assert_non_null(strstr(bitnet_last_error(), "q2k"));
    bitnet_gguf_close(g);
    free(b.p);
}

/* Many keys and tensors: the hash indexes find every one and nothing else. */
static void test_many_entries(void **state) {
    (void)state;
    const char *path = tmp_path("many");
    bitnet_gguf_writer *w;
    char name[32];
    assert_int_equal(bitnet_gguf_writer_create(&w), 0);
    for (uint32_t i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "k.%u", i);
        assert_int_equal(bitnet_gguf_writer_set_scalar(w, name, BITNET_GGUF_UINT32, &i), 0);
    }
    int64_t ne[1] = {1};
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "blk.%d.w", i);
        assert_int_equal(bitnet_gguf_writer_add_tensor(w, name, 1, ne, BITNET_TYPE_F32), 0);
    }
    assert_int_equal(bitnet_gguf_writer_begin(w, path), 0);
    for (int i = 0; i < 300; i++) {
        float f = (float)i;
        assert_int_equal(bitnet_gguf_writer_write(w, &f, 4), 0);
    }
    assert_int_equal(bitnet_gguf_writer_finish(w), 0);
    bitnet_gguf_writer_free(w);

    bitnet_gguf *g;
    assert_int_equal(bitnet_gguf_open(path, &g), BITNET_OK);
    assert_int_equal(bitnet_gguf_n_kv(g), 3000);
    for (uint32_t i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "k.%u", i);
        int64_t k = bitnet_gguf_find_key(g, name);
        assert_int_equal(k, i);
        bitnet_gguf_value v;
        assert_int_equal(bitnet_gguf_kv(g, (uint64_t)k, NULL, &v), BITNET_OK);
        assert_int_equal(vint(g, &v), i);
    }
    assert_int_equal(bitnet_gguf_find_key(g, "k.3000"), -1);
    assert_int_equal(bitnet_gguf_find_key(g, "k."), -1);
    assert_int_equal(bitnet_gguf_find_key(g, ""), -1);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "blk.%d.w", i);
        int64_t t = bitnet_gguf_find_tensor(g, name);
        assert_int_equal(t, i);
        float f;
        assert_int_equal(bitnet_gguf_tensor_to_f32(g, (uint64_t)t, 0, 1, &f), BITNET_OK);
        assert_true(f == (float)i);
        assert_int_equal(bitnet_gguf_tensor_offset(g, (uint64_t)t), 32 * (uint64_t)i);
    }
    assert_int_equal(bitnet_gguf_find_tensor(g, "blk.300.w"), -1);
    bitnet_gguf_close(g);
}

/* ---- truncation at every byte --------------------------------------------------------------------- */

static void test_truncation(void **state) {
    (void)state;
    const char *path = tmp_path("trunc");
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet_gguf_writer_create(&w), 0);
    uint32_t u = 7;
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "k.u32", BITNET_GGUF_UINT32, &u), 0);
    assert_int_equal(bitnet_gguf_writer_set_str(w, "k.s", "value", 5), 0);
    const char *strs[2] = {"ab", "cde"};
    assert_int_equal(bitnet_gguf_writer_set_str_array(w, "k.sa", strs, NULL, 2), 0);
    buf nb = {0};
    nested_i32(&nb);
    assert_int_equal(bitnet_gguf_writer_set_raw(w, "k.nest", BITNET_GGUF_ARRAY, nb.p, nb.n), 0);
    free(nb.p);
    int64_t ne1[2] = {8, 2}, ne2[1] = {32};
    assert_int_equal(bitnet_gguf_writer_add_tensor(w, "t1", 2, ne1, BITNET_TYPE_F32), 0);
    assert_int_equal(bitnet_gguf_writer_add_tensor(w, "t2", 1, ne2, BITNET_TYPE_F16), 0);
    assert_int_equal(bitnet_gguf_writer_begin(w, path), 0);
    uint8_t zero[64] = {0};
    assert_int_equal(bitnet_gguf_writer_write(w, zero, 64), 0);
    assert_int_equal(bitnet_gguf_writer_write(w, zero, 64), 0);
    assert_int_equal(bitnet_gguf_writer_finish(w), 0);
    bitnet_gguf_writer_free(w);

    size_t n;
    uint8_t *img = read_all(path, &n);
    bitnet_gguf *g;
    assert_int_equal(bitnet_gguf_open_memory(img, n, &g), BITNET_OK);
    uint64_t end = bitnet_gguf_data_offset(g) + 64 + 64; /* end of t2 */
    assert_int_equal(end, n);
    bitnet_gguf_close(g);
    /* every proper prefix fails with FORMAT; copy each so ASan catches any overread */
    for (size_t len = 0; len < n; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, img, len);
        g = (bitnet_gguf *)(uintptr_t)1;
        bitnet_status st = bitnet_gguf_open_memory(cut, len, &g);
        if (st != BITNET_E_FORMAT) print_error("prefix of %zu bytes: status %d (%s)\n", len, st, bitnet_last_error());
        assert_int_equal(st, BITNET_E_FORMAT);
        assert_null(g);
        assert_true(bitnet_last_error()[0] != 0);
        free(cut);
    }
    free(img);
}

/* Every allocation failure surfaces as NOMEM (and leaks nothing under ASan). */
static void test_alloc_failures(void **state) {
    (void)state;
    const char *path = tmp_path("meta");
    write_meta_file(path);
    size_t n;
    uint8_t *img = read_all(path, &n);
    int ok = 0;
    for (uint64_t k = 1; k < 1000 && !ok; k++) {
        bn_alloc_fail_after(k);
        bitnet_gguf *g = NULL;
        bitnet_status st = bitnet_gguf_open_memory(img, n, &g);
        bn_alloc_fail_after(0);
        if (st == BITNET_OK) {
            ok = 1;
            check_meta(g);
        } else {
            assert_int_equal(st, BITNET_E_NOMEM);
            assert_null(g);
        }
        bitnet_gguf_close(g);
    }
    assert_true(ok);
    free(img);
}

/* ---- malformed files -------------------------------------------------------------------------------- */

static void test_bad_header(void **state) {
    (void)state;
    buf b = {0};
    b_bytes(&b, "GGUX", 4), b_u32(&b, 3), b_u64(&b, 0), b_u64(&b, 0);
    expect_fail(&b, BITNET_E_FORMAT, "bad magic");
    b.n = 0, b_hdr(&b, 1, 0, 0);
    expect_fail(&b, BITNET_E_UNSUPPORTED, "version 1");
    b.n = 0, b_hdr(&b, 0x03000000u, 0, 0);
    expect_fail(&b, BITNET_E_UNSUPPORTED, "big-endian");
    b.n = 0, b_hdr(&b, 4, 0, 0);
    expect_fail(&b, BITNET_E_UNSUPPORTED, "version 4");
    b.n = 0, b_hdr(&b, 3, 0, 1ull << 60);
    expect_fail(&b, BITNET_E_FORMAT, "metadata count");
    b.n = 0, b_hdr(&b, 3, UINT64_MAX, 0);
    expect_fail(&b, BITNET_E_FORMAT, "tensor count");
    b.n = 0, b_hdr(&b, 3, 0, 1);
    expect_fail(&b, BITNET_E_FORMAT, "metadata count 1 cannot fit");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "key"), b_u32(&b, BITNET_GGUF_UINT32), b_u8(&b, 1);
    expect_fail(&b, BITNET_E_FORMAT, "truncated");
    /* an empty but valid file */
    b.n = 0, b_hdr(&b, 3, 0, 0);
    bitnet_gguf *g = expect_ok(&b);
    assert_int_equal(bitnet_gguf_n_kv(g), 0);
    bitnet_gguf_close(g);
    free(b.p);
}

static void test_bad_metadata(void **state) {
    (void)state;
    buf b = {0};
    /* absurd key length */
    b_hdr(&b, 3, 0, 1), b_u64(&b, 1ull << 62), b_bytes(&b, "abcdefghijklmnop", 16);
    expect_fail(&b, BITNET_E_FORMAT, "string length");
    /* absurd string value length */
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "k"), b_u32(&b, BITNET_GGUF_STRING), b_u64(&b, UINT64_MAX);
    expect_fail(&b, BITNET_E_FORMAT, "string length");
    /* absurd array counts, fixed and variable elements */
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "k"), b_u32(&b, BITNET_GGUF_ARRAY), b_u32(&b, BITNET_GGUF_UINT32);
    b_u64(&b, 1ull << 61), b_u32(&b, 0);
    expect_fail(&b, BITNET_E_FORMAT, "cannot fit");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "k"), b_u32(&b, BITNET_GGUF_ARRAY), b_u32(&b, BITNET_GGUF_STRING);
    b_u64(&b, 3), b_str(&b, "x"), b_u64(&b, 0);
    expect_fail(&b, BITNET_E_FORMAT, "cannot fit");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "k"), b_u32(&b, BITNET_GGUF_ARRAY), b_u32(&b, BITNET_GGUF_ARRAY);
    b_u64(&b, UINT64_MAX / 2);
    expect_fail(&b, BITNET_E_FORMAT, "cannot fit");
    /* unknown value types */
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "k"), b_u32(&b, 13), b_u32(&b, 0);
    expect_fail(&b, BITNET_E_FORMAT, "invalid value type 13");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "k"), b_u32(&b, 0x80000000u), b_u32(&b, 0);
    expect_fail(&b, BITNET_E_FORMAT, "invalid value type");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "k"), b_u32(&b, BITNET_GGUF_ARRAY), b_u32(&b, 13), b_u64(&b, 0);
    expect_fail(&b, BITNET_E_FORMAT, "invalid element type 13");
    /* nesting: 8 levels fine, 9 refused, and a depth bomb of 100000 levels */
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "k"), b_u32(&b, BITNET_GGUF_ARRAY), nest(&b, 8);
    bitnet_gguf *g = expect_ok(&b);
    bitnet_gguf_close(g);
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "k"), b_u32(&b, BITNET_GGUF_ARRAY), nest(&b, 9);
    expect_fail(&b, BITNET_E_FORMAT, "nested deeper than 8");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "deep"), b_u32(&b, BITNET_GGUF_ARRAY);
    for (int i = 0; i < 100000; i++) b_u32(&b, BITNET_GGUF_ARRAY), b_u64(&b, 1);
    b_u32(&b, BITNET_GGUF_UINT8), b_u64(&b, 0);
    expect_fail(&b, BITNET_E_FORMAT, "key 'deep': arrays nested deeper");
    /* bool must be 0 or 1 */
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "flag"), b_u32(&b, BITNET_GGUF_BOOL), b_u8(&b, 2);
    expect_fail(&b, BITNET_E_FORMAT, "key 'flag': bool value is 2");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "flags"), b_u32(&b, BITNET_GGUF_ARRAY), b_u32(&b, BITNET_GGUF_BOOL);
    b_u64(&b, 3), b_u8(&b, 0), b_u8(&b, 1), b_u8(&b, 255);
    expect_fail(&b, BITNET_E_FORMAT, "bool array element 2");
    /* keys: empty, NUL inside, bad UTF-8 (a lone continuation byte; an overlong '/'), duplicate */
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, ""), b_u32(&b, BITNET_GGUF_UINT8), b_u8(&b, 0);
    expect_fail(&b, BITNET_E_FORMAT, "is empty");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_strn(&b, "a\0b", 3), b_u32(&b, BITNET_GGUF_UINT8), b_u8(&b, 0);
    expect_fail(&b, BITNET_E_FORMAT, "NUL");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "ke\x80y"), b_u32(&b, BITNET_GGUF_UINT8), b_u8(&b, 0);
    expect_fail(&b, BITNET_E_FORMAT, "not valid UTF-8");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "a\xc0\xafz"), b_u32(&b, BITNET_GGUF_UINT8), b_u8(&b, 0);
    expect_fail(&b, BITNET_E_FORMAT, "not valid UTF-8");
    b.n = 0, b_hdr(&b, 3, 0, 2), b_kv_u32(&b, "dup", 1), b_kv_u32(&b, "dup", 2);
    expect_fail(&b, BITNET_E_FORMAT, "duplicate metadata key 'dup'");
    /* general.alignment: wrong type, not a power of two, zero */
    b.n = 0, b_hdr(&b, 3, 0, 1), b_str(&b, "general.alignment"), b_u32(&b, BITNET_GGUF_UINT64), b_u64(&b, 32);
    expect_fail(&b, BITNET_E_FORMAT, "'general.alignment' has type u64");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_kv_u32(&b, "general.alignment", 48);
    expect_fail(&b, BITNET_E_FORMAT, "power of two");
    b.n = 0, b_hdr(&b, 3, 0, 1), b_kv_u32(&b, "general.alignment", 0);
    expect_fail(&b, BITNET_E_FORMAT, "power of two");
    free(b.p);
}

/* A file with one tensor info (n_dims, ne, type, offset given) followed by data. */
static void one_tensor(buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off,
                       size_t data) {
    b->n = 0;
    b_hdr(b, 3, 1, 0);
    b_tinfo(b, name, n_dims, ne, type, off);
    b_pad(b, 32);
    b_zeros(b, data);
}

static void test_bad_tensors(void **state) {
    (void)state;
    buf b = {0};
    uint64_t ne[5] = {32, 2, 1, 1, 1};
    one_tensor(&b, "w", 2, ne, BITNET_TYPE_F32, 0, 256);
    bitnet_gguf_close(expect_ok(&b));
    one_tensor(&b, "w", 0, ne, BITNET_TYPE_F32, 0, 256);
    expect_fail(&b, BITNET_E_FORMAT, "tensor 'w': n_dims is 0");
    one_tensor(&b, "w", 5, ne, BITNET_TYPE_F32, 0, 256);
    expect_fail(&b, BITNET_E_FORMAT, "tensor 'w': n_dims is 5");
    uint64_t zero[2] = {32, 0};
    one_tensor(&b, "w", 2, zero, BITNET_TYPE_F32, 0, 256);
    expect_fail(&b, BITNET_E_FORMAT, "dimension 1 is 0");
    uint64_t neg[2] = {32, 1ull << 63};
    one_tensor(&b, "w", 2, neg, BITNET_TYPE_F32, 0, 256);
    expect_fail(&b, BITNET_E_FORMAT, "dimension 1 is");
    uint64_t big[3] = {1ull << 32, 1ull << 20, 1ull << 12};
    one_tensor(&b, "w", 3, big, BITNET_TYPE_F32, 0, 256);
    expect_fail(&b, BITNET_E_FORMAT, "element count overflows");
    uint64_t huge[2] = {1ull << 40, 1ull << 20}; /* 2^60 elements: fine as a count, bytes overflow */
    one_tensor(&b, "w", 2, huge, BITNET_TYPE_F32, 0, 256);
    expect_fail(&b, BITNET_E_FORMAT, "tensor 'w'");
    one_tensor(&b, "w", 2, ne, 100, 0, 256);
    expect_fail(&b, BITNET_E_FORMAT, "unknown tensor type id 100");
    /* bitnet.cpp's TL1 (38): a whole-tensor type like I2_S, n/4 + 32 bytes */
    one_tensor(&b, "w", 2, ne, 38, 0, 256);
    bitnet_gguf *tg = expect_ok(&b);
    assert_int_equal(bitnet_gguf_tensor_size(tg, 0), 64 / 4 + 32);
    assert_string_equal(bitnet_type_name(bitnet_gguf_tensor_type(tg, 0)), "TL1");
    bitnet_gguf_close(tg);
    /* 39 is upstream's MXFP4 unless the file is a bitnet.cpp TL2 file: a BitNet
     * architecture with general.file_type 39 (docs/formats.md) */
    uint64_t ne2[2] = {256, 4};
    one_tensor(&b, "w", 2, ne2, 39, 0, 512);
    expect_fail(&b, BITNET_E_UNSUPPORTED, "MXFP4");
    static const char *const kinds[][2] = {{"bitnet", "39"}, {"llama", "39"}, {"gpt-oss", "39"}, {"bitnet", "38"}};
    for (int k = 0; k < 4; k++) {
        b.n = 0;
        b_hdr(&b, 3, 1, 2);
        b_kv_str(&b, "general.architecture", kinds[k][0]);
        b_kv_u32(&b, "general.file_type", (uint32_t)atoi(kinds[k][1]));
        b_tinfo(&b, "w", 2, ne2, 39, 0);
        b_pad(&b, 32);
        b_zeros(&b, 512);
        if (k < 2) {
            tg = expect_ok(&b);
            /* bitnet.cpp's size: (256 - 256) * 4 / 3 * 5 / 8 + 256 * 4 / 2 * 4 / 8 = 256, to 32, + 32 */
            assert_int_equal(bitnet_gguf_tensor_size(tg, 0), 256 + 32);
            bitnet_gguf_close(tg);
        } else {
            expect_fail(&b, BITNET_E_UNSUPPORTED, "MXFP4");
        }
    }
    one_tensor(&b, "w", 2, ne, 37, 0, 256);
    expect_fail(&b, BITNET_E_UNSUPPORTED, "I8_S");
    uint64_t odd[2] = {33, 2};
    one_tensor(&b, "w", 2, odd, BITNET_TYPE_Q8_0, 0, 256);
    expect_fail(&b, BITNET_E_FORMAT, "tensor 'w': row length");
    /* data: past the end, misaligned, overflowing offset */
    one_tensor(&b, "w", 2, ne, BITNET_TYPE_F32, 0, 255);
    expect_fail(&b, BITNET_E_FORMAT, "tensor 'w': data range");
    one_tensor(&b, "w", 2, ne, BITNET_TYPE_F32, 32, 256);
    expect_fail(&b, BITNET_E_FORMAT, "past the end");
    one_tensor(&b, "w", 2, ne, BITNET_TYPE_F32, 4, 512);
    expect_fail(&b, BITNET_E_FORMAT, "not a multiple of the alignment");
    one_tensor(&b, "w", 2, ne, BITNET_TYPE_F32, UINT64_MAX - 31, 512);
    expect_fail(&b, BITNET_E_FORMAT, "past the end");
    /* names: empty, 64 bytes, bad UTF-8, NUL inside, duplicate */
    one_tensor(&b, "", 2, ne, BITNET_TYPE_F32, 0, 256);
    expect_fail(&b, BITNET_E_FORMAT, "empty name");
    char longname[65];
    memset(longname, 'n', 64), longname[64] = 0;
    one_tensor(&b, longname, 2, ne, BITNET_TYPE_F32, 0, 256);
    expect_fail(&b, BITNET_E_FORMAT, "too long");
    longname[63] = 0; /* 63 bytes is the longest allowed */
    one_tensor(&b, longname, 2, ne, BITNET_TYPE_F32, 0, 256);
    bitnet_gguf_close(expect_ok(&b));
    one_tensor(&b, "bad\xff", 2, ne, BITNET_TYPE_F32, 0, 256);
    expect_fail(&b, BITNET_E_FORMAT, "not valid UTF-8");
    b.n = 0, b_hdr(&b, 3, 1, 0), b_strn(&b, "a\0b", 3), b_u32(&b, 1), b_u64(&b, 4), b_u32(&b, 0), b_u64(&b, 0);
    b_pad(&b, 32), b_zeros(&b, 16);
    expect_fail(&b, BITNET_E_FORMAT, "NUL");
    /* two tensors: duplicate names, overlap, and a valid pair in reverse offset order */
    uint64_t ne16[1] = {16};
    b.n = 0, b_hdr(&b, 3, 2, 0);
    b_tinfo(&b, "same", 1, ne16, BITNET_TYPE_F32, 0), b_tinfo(&b, "same", 1, ne16, BITNET_TYPE_F32, 64);
    b_pad(&b, 32), b_zeros(&b, 128);
    expect_fail(&b, BITNET_E_FORMAT, "duplicate tensor name 'same'");
    b.n = 0, b_hdr(&b, 3, 2, 0);
    b_tinfo(&b, "a", 1, ne16, BITNET_TYPE_F32, 32), b_tinfo(&b, "b", 1, ne16, BITNET_TYPE_F32, 0);
    b_pad(&b, 32), b_zeros(&b, 128);
    expect_fail(&b, BITNET_E_FORMAT, "overlap");
    b.n = 0, b_hdr(&b, 3, 2, 0);
    b_tinfo(&b, "a", 1, ne16, BITNET_TYPE_F32, 64), b_tinfo(&b, "b", 1, ne16, BITNET_TYPE_F32, 0);
    b_pad(&b, 32), b_zeros(&b, 128);
    bitnet_gguf *g = expect_ok(&b);
    assert_int_equal(bitnet_gguf_tensor_offset(g, 0), 64);
    bitnet_gguf_close(g);
    /* tensors declared but the file ends inside the padding before the data section */
    b.n = 0, b_hdr(&b, 3, 1, 0), b_tinfo(&b, "w", 1, ne16, BITNET_TYPE_F32, 0);
    expect_fail(&b, BITNET_E_FORMAT, "truncated");
    /* alignment from general.alignment applies to offsets and the data section */
    b.n = 0, b_hdr(&b, 3, 1, 1), b_kv_u32(&b, "general.alignment", 64);
    b_tinfo(&b, "w", 1, ne16, BITNET_TYPE_F32, 32), b_pad(&b, 64), b_zeros(&b, 128);
    expect_fail(&b, BITNET_E_FORMAT, "not a multiple of the alignment 64");
    free(b.p);
}

static void test_args_and_io(void **state) {
    (void)state;
    bitnet_gguf *g = (bitnet_gguf *)(uintptr_t)1;
    assert_int_equal(bitnet_gguf_open(BN_TEST_TMP_DIR "/no/such/file.gguf", &g), BITNET_E_IO);
    assert_null(g);
    assert_non_null(strstr(bitnet_last_error(), "no/such/file.gguf"));
    assert_int_equal(bitnet_gguf_open(NULL, &g), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_open("x", NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_open_memory(NULL, 10, &g), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_open_memory("GGUF", 4, NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_open(BN_TEST_TMP_DIR, &g), BITNET_E_IO); /* a directory */
    bitnet_gguf_close(NULL);
    assert_int_equal(bitnet_gguf_version(NULL), 0);
    assert_int_equal(bitnet_gguf_n_kv(NULL), 0);
    assert_int_equal(bitnet_gguf_n_tensors(NULL), 0);
    assert_null(bitnet_gguf_tensor_name(NULL, 0));
    assert_int_equal(bitnet_gguf_find_key(NULL, "a"), -1);
    assert_int_equal(bitnet_gguf_find_tensor(NULL, "a"), -1);
    bitnet_gguf_value v = {BITNET_GGUF_UINT32, BITNET_GGUF_UINT32, 1, 0};
    int64_t x;
    assert_int_equal(bitnet_gguf_value_int(NULL, &v, &x), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_kv(NULL, 0, NULL, &v), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_tensor_to_f32(NULL, 0, 0, 1, NULL), BITNET_E_INVALID_ARG);
    assert_string_equal(bitnet_gguf_type_name(BITNET_GGUF_UINT32), "u32");
    assert_string_equal(bitnet_gguf_type_name(BITNET_GGUF_FLOAT64), "f64");
    assert_null(bitnet_gguf_type_name((bitnet_gguf_type)13));

    /* forged values never read outside the file */
    buf b = {0};
    b_hdr(&b, 3, 0, 1), b_kv_u32(&b, "k", 5);
    g = expect_ok(&b);
    assert_int_equal(bitnet_gguf_kv(g, 1, NULL, &v), BITNET_E_INVALID_ARG);
    v.ref = b.n - 2;
    assert_int_equal(bitnet_gguf_value_int(g, &v, &x), BITNET_E_INVALID_ARG);
    v.type = BITNET_GGUF_STRING, v.ref = 0;
    const char *s;
    uint64_t len;
    assert_int_equal(bitnet_gguf_value_str(g, &v, &s, &len), BITNET_E_INVALID_ARG);
    v.type = BITNET_GGUF_ARRAY;
    bitnet_gguf_value e;
    assert_int_equal(bitnet_gguf_array_get(g, &v, 0, &e), BITNET_E_INVALID_ARG);
    bitnet_gguf_close(g);
    free(b.p);

    /* a file too short to be GGUF */
    const char *path = tmp_path("short");
    FILE *f = fopen(path, "wb");
    fwrite("GGUF", 1, 4, f);
    fclose(f);
    assert_int_equal(bitnet_gguf_open(path, &g), BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_last_error(), "not a GGUF file"));
}

static void test_writer_errors(void **state) {
    (void)state;
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet_gguf_writer_create(NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_create(&w), 0);
    uint32_t u = 1;
    uint8_t two = 2;
    int64_t ne[2] = {32, 2}, bad[2] = {32, 0};
    assert_int_equal(bitnet_gguf_writer_set_alignment(w, 48), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_set_alignment(w, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_set_alignment(w, 131072), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "a", BITNET_GGUF_UINT32, &u), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "a", BITNET_GGUF_UINT32, &u), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "duplicate key 'a'"));
    assert_int_equal(bitnet_gguf_writer_set_str(w, "a", "x", 1), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "", BITNET_GGUF_UINT32, &u), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "b\xff", BITNET_GGUF_UINT32, &u), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "s", BITNET_GGUF_STRING, &u), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "b", BITNET_GGUF_BOOL, &two), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_set_array(w, "arr", BITNET_GGUF_STRING, &u, 1), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "general.alignment", BITNET_GGUF_UINT32, &u),
                     BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_add_tensor(w, "t", 2, ne, BITNET_TYPE_F32), 0);
    assert_int_equal(bitnet_gguf_writer_add_tensor(w, "t", 2, ne, BITNET_TYPE_F32), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "duplicate tensor name 't'"));
    assert_int_equal(bitnet_gguf_writer_set_alignment(w, 64), BITNET_E_INVALID_ARG); /* after tensors */
    assert_int_equal(bitnet_gguf_writer_add_tensor(w, "z", 2, bad, BITNET_TYPE_F32), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_add_tensor(w, "z", 0, ne, BITNET_TYPE_F32), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_add_tensor(w, "z", 5, ne, BITNET_TYPE_F32), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_add_tensor(w, "z", 2, ne, (bitnet_type)39), BITNET_E_INVALID_ARG);
    int64_t odd[1] = {33};
    assert_int_equal(bitnet_gguf_writer_add_tensor(w, "z", 1, odd, BITNET_TYPE_Q8_0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_add_tensor(w, "", 1, odd, BITNET_TYPE_F32), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_write(w, "x", 1), BITNET_E_INVALID_ARG); /* before begin */
    assert_int_equal(bitnet_gguf_writer_finish(w), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_gguf_writer_begin(w, BN_TEST_TMP_DIR "/no/such/dir/x.gguf"), BITNET_E_IO);
    bitnet_gguf_writer_free(w);

    /* missing bytes at finish */
    assert_int_equal(bitnet_gguf_writer_create(&w), 0);
    assert_int_equal(bitnet_gguf_writer_add_tensor(w, "t", 2, ne, BITNET_TYPE_F32), 0);
    assert_int_equal(bitnet_gguf_writer_begin(w, tmp_path("short_data")), 0);
    assert_int_equal(bitnet_gguf_writer_set_scalar(w, "late", BITNET_GGUF_UINT32, &u), BITNET_E_INVALID_ARG);
    float z[64] = {0};
    assert_int_equal(bitnet_gguf_writer_write(w, z, 100), 0);
    assert_int_equal(bitnet_gguf_writer_write(w, z, 200), BITNET_E_INVALID_ARG); /* 156 remain */
    assert_int_equal(bitnet_gguf_writer_finish(w), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "tensor 't' is missing 156 of its 256 bytes"));
    bitnet_gguf_writer_free(w);
    bitnet_gguf_writer_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_roundtrip), cmocka_unit_test(test_tensors_align32),
        cmocka_unit_test(test_tensors_align64),    cmocka_unit_test(test_tensors_align1),
        cmocka_unit_test(test_tensors_align4096),  cmocka_unit_test(test_unsupported_to_f32),
        cmocka_unit_test(test_truncation),         cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_bad_header),         cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_bad_tensors),        cmocka_unit_test(test_args_and_io),
        cmocka_unit_test(test_writer_errors),      cmocka_unit_test(test_many_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
