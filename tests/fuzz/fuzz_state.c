/*
 * fuzz_state.c -- libFuzzer target for the session state loader
 * (bitnet_session_state_load): arbitrary bytes handed to a live session of the tiny
 * model of fuzz_models.h (written once to a temporary file and loaded).
 *
 * A refused blob must leave the session usable and empty or as it was; an accepted one
 * must leave a consistent session: n_past within n_ctx, logits readable when it says it
 * has them, and evaluating one more token works when there is room.  The session is
 * reset after every input.  Seeds: fuzz_gen_models writes state_*.bin (real blobs of
 * this model).
 */
#include "fuzz_models.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bitnet_model *fz_model;
static bitnet_session *fz_sess;
static volatile float sink;

static void fz_init(void) {
    bitnet_set_log_callback(NULL, NULL, BITNET_LOG_ERROR);
    char path[512];
    snprintf(path, sizeof path, "/tmp/fuzz_state_model_%d.gguf", (int)getpid());
    tm_spec sp;
    gm_base(&sp);
    if (tm_write(&sp, path) != 0 || bitnet_model_load(path, NULL, &fz_model) != BITNET_OK) abort();
    unlink(path);
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = 32;
    p.n_threads = 1;
    if (bitnet_session_create(fz_model, &p, &fz_sess) != BITNET_OK) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fz_sess) fz_init();
    bitnet_session *s = fz_sess;
    bitnet_status st = bitnet_session_state_load(s, data, size);
    uint32_t np = bitnet_session_n_past(s), nc = bitnet_session_n_ctx(s);
    if (np > nc) abort();
    if (st == BITNET_OK) {
        const float *lg;
        if (np > 0 && bitnet_session_logits(s, -1, &lg) == BITNET_OK) sink += lg[0];
        size_t need = 0;
        (void)bitnet_session_state_save(s, NULL, 0, &need);
    } else if (!bitnet_session_last_error(s)[0]) {
        abort();
    }
    if (np < nc) {
        bitnet_token t = 5;
        if (bitnet_session_eval(s, &t, 1) != BITNET_OK) abort(); /* the session stays usable */
    }
    bitnet_session_reset(s);
    return 0;
}
