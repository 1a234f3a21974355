/*
 * fuzz_models.h -- the tiny model the model/state fuzz targets and gen_models.c share
 * (the state blobs gen_models.c writes carry this model's fingerprint).
 */
#ifndef FUZZ_MODELS_H
#define FUZZ_MODELS_H

#include "../unit/test_model_util.h"

static inline void gm_base(tm_spec *sp) {
    tm_default(sp);
    sp->n_vocab = 260;
    sp->n_embd = 256;
    sp->n_ff = 256;
    sp->n_layer = 1;
    sp->n_head = 4;
    sp->n_head_kv = 2;
    sp->n_ctx = 64;
}

#endif
