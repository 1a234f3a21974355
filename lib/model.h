/*
 * model.h -- the loaded model (lib/model.c).  Read-only after bitnet_model_load.
 */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include "gguf.h"
#include "vocab.h"

struct bitnet_model {
    bitnet_gguf *gguf;       /* the file; metadata stays readable for the model's life */
    bn_vocab    *vocab;      /* tokenizer (every model has one)                        */
    int          vocab_only;
    char         arch[32];   /* the architecture it runs as                            */
    char         desc[192];
};

#endif
