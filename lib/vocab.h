/*
 * vocab.h -- tokenizer internals (lib/vocab.c, lib/tokenizer_*.c).
 */
#ifndef BN_VOCAB_H
#define BN_VOCAB_H

#include "gguf.h"

typedef struct bn_vocab bn_vocab;

/* Build the vocabulary from tokenizer.ggml.* metadata, validating it.
 * pretokenizer: NULL (from the file / recognised vocabulary) or a forced name. */
bitnet_status bn_vocab_load(const bitnet_gguf *g, const char *pretokenizer, bn_vocab **out);
void bn_vocab_free(bn_vocab *v);
int32_t bn_vocab_n_tokens(const bn_vocab *v);

#endif
