/*
 * fuzz_gguf.c -- libFuzzer target for the GGUF reader.
 *
 * Opens the input with bitnet_gguf_open_memory and, when it is accepted, walks
 * everything the public API exposes: every key and value (recursively through nested
 * arrays, every element), every tensor accessor, the raw tensor bytes, and
 * bitnet_gguf_tensor_to_f32 on tensors small enough to convert quickly.  Any read
 * outside the input is caught by ASan; inconsistencies the API promises never to
 * have (a key that find_key cannot find, a tensor outside the file) abort.
 *
 * Built as a libFuzzer binary with -DBITNET_FUZZ=ON (clang), and linked with
 * fuzz_replay.c into a plain program that runs the corpus under ctest.
 */
#include "bitnet.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink; /* keeps the reads from being optimised away */

static void walk_value(const bitnet_gguf *g, const bitnet_gguf_value *v, int depth) {
    int64_t i;
    uint64_t u, len;
    double d;
    int b;
    const char *s;
    const void *p;
    if (bitnet_gguf_value_int(g, v, &i) == BITNET_OK) sink += (uint64_t)i;
    if (bitnet_gguf_value_uint(g, v, &u) == BITNET_OK) sink += u;
    if (bitnet_gguf_value_float(g, v, &d) == BITNET_OK) sink += d == d;
    if (bitnet_gguf_value_bool(g, v, &b) == BITNET_OK) sink += (uint64_t)b;
    if (bitnet_gguf_value_str(g, v, &s, &len) == BITNET_OK)
        for (uint64_t k = 0; k < len; k++) sink += (unsigned char)s[k];
    if (v->type != BITNET_GGUF_ARRAY) return;
    if (depth > 64) abort(); /* the reader limits nesting to 8 */
    if (bitnet_gguf_array_data(g, v, &p) == BITNET_OK && v->count) sink += ((const uint8_t *)p)[0];
    for (uint64_t j = 0; j < v->count; j++) {
        bitnet_gguf_value e;
        if (bitnet_gguf_array_get(g, v, j, &e) != BITNET_OK) abort();
        if (e.type != v->elem_type) abort();
        walk_value(g, &e, depth + 1);
    }
    bitnet_gguf_value e;
    if (bitnet_gguf_array_get(g, v, v->count, &e) == BITNET_OK) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bitnet_gguf *g = NULL;
    if (bitnet_gguf_open_memory(data, size, &g) != BITNET_OK) {
        if (g) abort();
        return 0;
    }
    sink += bitnet_gguf_version(g) + bitnet_gguf_alignment(g);
    uint64_t doff = bitnet_gguf_data_offset(g), fsize = bitnet_gguf_file_size(g);
    if (fsize != size) abort();
    for (uint64_t i = 0; i < bitnet_gguf_n_kv(g); i++) {
        const char *key;
        bitnet_gguf_value v;
        if (bitnet_gguf_kv(g, i, &key, &v) != BITNET_OK) abort();
        if (bitnet_gguf_find_key(g, key) != (int64_t)i) abort();
        sink += strlen(key);
        walk_value(g, &v, 0);
    }
    for (uint64_t i = 0; i < bitnet_gguf_n_tensors(g); i++) {
        const char *name = bitnet_gguf_tensor_name(g, i);
        if (!name || bitnet_gguf_find_tensor(g, name) != (int64_t)i) abort();
        uint64_t off = bitnet_gguf_tensor_offset(g, i), sz = bitnet_gguf_tensor_size(g, i);
        const uint8_t *p = bitnet_gguf_tensor_data(g, i);
        if (p != data + doff + off || doff + off + sz > size) abort();
        sink += p[0] + p[sz - 1];
        uint32_t nd = bitnet_gguf_tensor_n_dims(g, i);
        uint64_t nel = 1;
        for (uint32_t d = 0; d < 4; d++) {
            int64_t ne = bitnet_gguf_tensor_dim(g, i, d);
            if (ne < 1 || (d >= nd && ne != 1)) abort();
            nel *= (uint64_t)ne;
        }
        if (nel != bitnet_gguf_tensor_n_elements(g, i)) abort();
        sink += (uint64_t)bitnet_gguf_tensor_type(g, i);
        if (nel <= (1u << 16)) {
            int64_t ne0 = bitnet_gguf_tensor_dim(g, i, 0), rows = (int64_t)(nel / (uint64_t)ne0);
            float *dst = malloc((size_t)nel * sizeof *dst);
            if (!dst) abort();
            if (bitnet_gguf_tensor_to_f32(g, i, 0, rows, dst) == BITNET_OK) sink += dst[nel - 1] == dst[0];
            if (rows > 1 && bitnet_gguf_tensor_to_f32(g, i, rows - 1, 1, dst) == BITNET_OK) sink += dst[0] == 0;
            if (bitnet_gguf_tensor_to_f32(g, i, rows, 1, dst) == BITNET_OK) abort();
            free(dst);
        }
    }
    bitnet_gguf_close(g);
    return 0;
}
