/*
 * fuzz_model.c -- libFuzzer target for the whole model loader, from memory.
 *
 * The input is a GGUF image handed to bn_model_load_memory (lib/model.h): container,
 * vocabulary, architecture, hyperparameters and every weight check and repacking run as
 * for a file.  A model that loads must be usable: a session of 8 tokens evaluates one
 * token and reads its logits, and a short text tokenizes and detokenizes.  A refusal must
 * leave no model and a message.  Seeds: the valid tiny models that fuzz_gen_models
 * writes (seed_*.gguf) and its broken ones.
 *
 * Built as a libFuzzer binary with -DBITNET_FUZZ=ON (clang), and linked with
 * fuzz_replay.c into a plain program that replays a corpus under ctest.
 */
#include "model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int gm_main(int argc, char **argv); /* gen_models.c */

/* BN_FUZZ_SEED_MODELS=DIR BN_FUZZ_SEED_STATES=DIR: write the seed models and state blobs
 * (gen_models.c, which also checks the broken ones are refused) and exit. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *md = getenv("BN_FUZZ_SEED_MODELS"), *sd = getenv("BN_FUZZ_SEED_STATES");
    if (md && sd) {
        char *a[] = {(char *)"gen", (char *)md, (char *)sd, NULL};
        exit(gm_main(3, a));
    }
    return 0;
}

static volatile float sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        bitnet_set_log_callback(NULL, NULL, BITNET_LOG_ERROR);
        init = 1;
    }
    bitnet_model *m = NULL;
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    mp.use_mmap = 0;
    bitnet_status st = bn_model_load_memory(data, size, &mp, &m);
    if (st != BITNET_OK) {
        if (m || !bitnet_last_error()[0]) abort();
        return 0;
    }
    bitnet_session_params sp;
    bitnet_session_default_params(&sp, sizeof sp);
    sp.n_ctx = 8;
    sp.n_threads = 1;
    bitnet_session *s = NULL;
    if (bitnet_session_create(m, &sp, &s) == BITNET_OK) {
        bitnet_token t[2] = {0, (bitnet_token)(bitnet_model_get_info(m, BITNET_INFO_N_VOCAB) - 1)};
        const float *lg;
        if (bitnet_session_eval(s, t, 2) == BITNET_OK && bitnet_session_logits(s, -1, &lg) == BITNET_OK)
            sink += lg[0];
        bitnet_session_free(s);
    }
    static const char text[] = "Hello, world! <s> 123";
    bitnet_token toks[64];
    size_t n = 0;
    if (bitnet_tokenize(m, text, sizeof text - 1, BITNET_TOKENIZE_PARSE_SPECIAL, toks, 64, &n) == BITNET_OK) {
        char out[256];
        size_t nb = 0;
        (void)bitnet_detokenize(m, toks, n, 0, out, sizeof out, &nb);
        (void)bitnet_detokenize(m, toks, n, 0, NULL, 0, &nb);
    }
    bitnet_model_free(m);
    return 0;
}
