/*
 * fuzz_convert.c -- libFuzzer target for bitnet-convert's readers of untrusted files.
 *
 * Byte 0 (mod 6) chooses the reader, the rest is the file's content:
 *   0  a *.safetensors file (cv_st_add_file), then every small float tensor is read;
 *   1  model.safetensors.index.json next to one valid shard "a.safetensors";
 *   2  config.json (cv_hparams_load);
 *   3  tokenizer.json (cv_vocab_load, byte-level BPE);
 *   4  tokenizer_config.json next to a small valid tokenizer.json;
 *   5  a SentencePiece tokenizer.model (cv_spm_parse).
 * Files go to a private temporary directory (one per process).  Any crash, leak or read
 * outside a buffer is caught by ASan/UBSan; the readers' error messages are silenced.
 *
 * Built as a libFuzzer binary with -DBITNET_FUZZ=ON (clang) when json-c is installed,
 * and linked with fuzz_replay.c into a plain program that replays tests/fuzz/corpus_convert.
 */
#include "convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir[6][256];

static void fz_put(const char *dir, const char *name, const void *p, size_t n) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

static char fz_root[64];

/* remove the temporary directory (libFuzzer ends with exit()) */
static void fz_cleanup(void) {
    static const char *const names[] = {"model.safetensors", "model.safetensors.index.json", "a.safetensors",
                                        "config.json", "tokenizer.json", "tokenizer_config.json"};
    char path[2048];
    for (int k = 0; k < 6; k++) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", fz_dir[k], names[i]);
            unlink(path);
        }
        rmdir(fz_dir[k]);
    }
    rmdir(fz_root);
}

static void fz_init(void) {
    snprintf(fz_root, sizeof fz_root, "/tmp/fuzz_convert_%d", (int)getpid());
    mkdir(fz_root, 0700);
    atexit(fz_cleanup);
    for (int k = 0; k < 6; k++) {
        snprintf(fz_dir[k], sizeof fz_dir[k], "%s/m%d", fz_root, k);
        mkdir(fz_dir[k], 0700);
    }
    /* mode 1: one valid shard holding tensor "x" (2 x F32) */
    static const char hdr[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    uint8_t buf[8 + sizeof hdr - 1 + 8];
    uint64_t hl = sizeof hdr - 1;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    memset(buf + 8 + hl, 0, 8);
    fz_put(fz_dir[1], "a.safetensors", buf, sizeof buf);
    /* mode 4: a small valid byte-level BPE tokenizer.json */
    static const char tj[] =
        "{\"added_tokens\":[{\"id\":3,\"content\":\"<s>\",\"special\":true},{\"id\":4,\"content\":\"</s>\","
        "\"special\":true}],\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":true},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}}";
    fz_put(fz_dir[4], "tokenizer.json", tj, sizeof tj - 1);
    cv_quiet = 1;
    cv_quiet_errors = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fz_dir[0][0]) fz_init();
    if (size < 1) return 0;
    int mode = data[0] % 6;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (mode) {
    case 0: {
        fz_put(fz_dir[0], "model.safetensors", p, n);
        cv_st st;
        if (cv_st_open_dir(&st, fz_dir[0]) == 0) {
            float f[64];
            for (size_t i = 0; i < st.n; i++)
                if (st.t[i].n_elem <= 64 && st.t[i].dtype != CV_U8 && st.t[i].dtype != CV_I8)
                    (void)cv_st_read_f32(&st, &st.t[i], 0, st.t[i].n_elem, f);
        }
        cv_st_close(&st);
        break;
    }
    case 1: {
        fz_put(fz_dir[1], "model.safetensors.index.json", p, n);
        cv_st st;
        (void)cv_st_open_dir(&st, fz_dir[1]);
        cv_st_close(&st);
        break;
    }
    case 2: {
        fz_put(fz_dir[2], "config.json", p, n);
        cv_hparams hp;
        (void)cv_hparams_load(&hp, fz_dir[2]);
        break;
    }
    case 3:
    case 4: {
        fz_put(fz_dir[mode], mode == 3 ? "tokenizer.json" : "tokenizer_config.json", p, n);
        cv_vocab v;
        (void)cv_vocab_load(&v, fz_dir[mode], 0, NULL);
        cv_vocab_free(&v);
        break;
    }
    case 5: {
        cv_spm s;
        if (cv_spm_parse(p, n, "tokenizer.model", &s) == 0) cv_spm_free(&s);
        break;
    }
    }
    return 0;
}
