/*
 * gen_corpus.c -- writes the seed corpus for fuzz_gguf (small valid GGUF files, each
 * well under 4 KiB) with the public writer:
 *
 *     fuzz_gen_corpus OUTDIR
 *
 * The committed files in tests/fuzz/corpus/ came from this program, renamed
 * seed_<name> without the .gguf suffix (the repository ignores *.gguf), plus any
 * crash reproducers found by fuzzing (crash-*).  ctest also runs it into the build
 * tree and replays the result, which checks that everything the writer produces is
 * accepted and fully walkable by the reader.
 */
#include "bitnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *outdir;

static void check(bitnet_status st, const char *what) {
    if (st != BITNET_OK) {
        fprintf(stderr, "fuzz_gen_corpus: %s: %s: %s\n", what, bitnet_strerror(st), bitnet_last_error());
        exit(1);
    }
}

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", outdir, name); }

/* Deterministic filler bytes. */
static void fill(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

static void meta_file(void) {
    bitnet_gguf_writer *w;
    char path[1024];
    check(bitnet_gguf_writer_create(&w), "create");
    uint8_t u8 = 7, b = 1;
    int8_t i8 = -3;
    uint16_t u16 = 513;
    int16_t i16 = -513;
    uint32_t u32 = 2560;
    int32_t i32 = -1;
    float f32 = 1e-5f;
    uint64_t u64 = 1ull << 40;
    int64_t i64 = -(1ll << 40);
    double f64 = 10000.0;
    check(bitnet_gguf_writer_set_str(w, "general.architecture", "bitnet-b1.58", 12), "arch");
    check(bitnet_gguf_writer_set_scalar(w, "t.u8", BITNET_GGUF_UINT8, &u8), "u8");
    check(bitnet_gguf_writer_set_scalar(w, "t.i8", BITNET_GGUF_INT8, &i8), "i8");
    check(bitnet_gguf_writer_set_scalar(w, "t.u16", BITNET_GGUF_UINT16, &u16), "u16");
    check(bitnet_gguf_writer_set_scalar(w, "t.i16", BITNET_GGUF_INT16, &i16), "i16");
    check(bitnet_gguf_writer_set_scalar(w, "t.u32", BITNET_GGUF_UINT32, &u32), "u32");
    check(bitnet_gguf_writer_set_scalar(w, "t.i32", BITNET_GGUF_INT32, &i32), "i32");
    check(bitnet_gguf_writer_set_scalar(w, "t.f32", BITNET_GGUF_FLOAT32, &f32), "f32");
    check(bitnet_gguf_writer_set_scalar(w, "t.bool", BITNET_GGUF_BOOL, &b), "bool");
    check(bitnet_gguf_writer_set_scalar(w, "t.u64", BITNET_GGUF_UINT64, &u64), "u64");
    check(bitnet_gguf_writer_set_scalar(w, "t.i64", BITNET_GGUF_INT64, &i64), "i64");
    check(bitnet_gguf_writer_set_scalar(w, "t.f64", BITNET_GGUF_FLOAT64, &f64), "f64");
    check(bitnet_gguf_writer_set_str(w, "t.str", "a\tb\0c" "\xe2\x82\xac", 8), "str");
    const char *toks[5] = {"<s>", "</s>", "\xe2\x96\x81" "the", "\xc4\xa0" "a", ""};
    float scores[5] = {0, 0, -1.5f, -2.5f, -3};
    int32_t types[5] = {3, 3, 1, 1, 1};
    check(bitnet_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5), "model");
    check(bitnet_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", toks, NULL, 5), "tokens");
    check(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.scores", BITNET_GGUF_FLOAT32, scores, 5), "scores");
    check(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BITNET_GGUF_INT32, types, 5), "types");
    uint8_t bools[3] = {0, 1, 0};
    check(bitnet_gguf_writer_set_array(w, "a.bool", BITNET_GGUF_BOOL, bools, 3), "bools");
    check(bitnet_gguf_writer_set_array(w, "a.empty", BITNET_GGUF_FLOAT64, NULL, 0), "empty");
    /* [[1, 2], []] of u16, and [["x"]] */
    static const uint8_t nested[] = {9, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,                 /* array of 2 arrays */
                                     2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0,     /* u16 [1, 2]        */
                                     2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};                /* u16 []            */
    check(bitnet_gguf_writer_set_raw(w, "a.nested", BITNET_GGUF_ARRAY, nested, sizeof nested), "nested");
    static const uint8_t nested_s[] = {9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                                       1, 0, 0, 0, 0, 0, 0, 0, 'x'};
    check(bitnet_gguf_writer_set_raw(w, "a.nested_str", BITNET_GGUF_ARRAY, nested_s, sizeof nested_s), "nested_s");
    path_of(path, sizeof path, "meta.gguf");
    check(bitnet_gguf_writer_begin(w, path), "begin");
    check(bitnet_gguf_writer_finish(w), "finish");
    bitnet_gguf_writer_free(w);
}

static void tensor_file(const char *name, uint32_t align) {
    static const struct {
        const char *name;
        bitnet_type type;
        uint32_t    n_dims;
        int64_t     ne[2];
    } t[] = {
        {"token_embd.weight", BITNET_TYPE_F16, 2, {8, 4}},  {"output_norm.weight", BITNET_TYPE_F32, 1, {8, 1}},
        {"blk.0.attn_q.weight", BITNET_TYPE_I2_S, 2, {128, 2}}, {"blk.0.ffn_up.weight", BITNET_TYPE_TQ2_0, 2, {256, 1}},
        {"blk.0.ffn_down.weight", BITNET_TYPE_TQ1_0, 1, {256, 1}}, {"q8", BITNET_TYPE_Q8_0, 2, {32, 2}},
        {"q4k", BITNET_TYPE_Q4_K, 1, {256, 1}},                 {"q6k", BITNET_TYPE_Q6_K, 1, {256, 1}},
        {"bf16", BITNET_TYPE_BF16, 1, {4, 1}},                  {"q4_0", BITNET_TYPE_Q4_0, 1, {32, 1}},
    };
    bitnet_gguf_writer *w;
    char path[1024];
    check(bitnet_gguf_writer_create(&w), "create");
    check(bitnet_gguf_writer_set_alignment(w, align), "alignment");
    check(bitnet_gguf_writer_set_str(w, "general.architecture", "bitnet", 6), "arch");
    size_t n = sizeof t / sizeof t[0];
    for (size_t i = 0; i < n; i++) check(bitnet_gguf_writer_add_tensor(w, t[i].name, t[i].n_dims, t[i].ne, t[i].type), t[i].name);
    path_of(path, sizeof path, name);
    check(bitnet_gguf_writer_begin(w, path), "begin");
    for (size_t i = 0; i < n; i++) {
        uint64_t sz = 0;
        /* sizes: same rule as the reader (bitnet_type_row_size per row; I2_S n/4 + 32) */
        if (t[i].type == BITNET_TYPE_I2_S) sz = (uint64_t)(t[i].ne[0] * t[i].ne[1]) / 4 + 32;
        else sz = bitnet_type_row_size(t[i].type, t[i].ne[0]) * (uint64_t)t[i].ne[1];
        uint8_t buf[1024];
        fill(buf, (size_t)sz, (uint32_t)i + 1);
        if (t[i].type == BITNET_TYPE_I2_S) { /* codes 0..2 only, and a finite scale */
            for (uint64_t k = 0; k < sz - 32; k++) buf[k] &= 0x66; /* 01 or 10 or 00 in every pair */
            float scale = 0.75f;
            memcpy(buf + sz - 32, &scale, 4);
        }
        check(bitnet_gguf_writer_write(w, buf, (size_t)sz), "write");
    }
    check(bitnet_gguf_writer_finish(w), "finish");
    bitnet_gguf_writer_free(w);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_gen_corpus OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    meta_file();
    tensor_file("tensors.gguf", 32);
    tensor_file("tensors_align64.gguf", 64);
    tensor_file("tensors_align1.gguf", 1);
    return 0;
}
