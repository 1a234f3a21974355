/*
 * tokenizer_api.c -- the public tokenizer entry points.  Not implemented yet: every
 * entry point reports BITNET_E_UNSUPPORTED (never fake data).
 */
#include "model.h"

#define BN_NOT_YET(fn) bn_err(BITNET_E_UNSUPPORTED, "%s: not implemented yet", fn)

struct bn_vocab { int32_t n; };

bitnet_status bn_vocab_load(const bitnet_gguf *g, const char *pretokenizer, bn_vocab **out) {
    *out = NULL;
    return BN_NOT_YET("tokenizer");
}
void bn_vocab_free(bn_vocab *v) { bn_free(v); }
int32_t bn_vocab_n_tokens(const bn_vocab *v) { return v ? v->n : 0; }

bitnet_token bitnet_token_bos(const bitnet_model *m) { return -1; }
bitnet_token bitnet_token_eos(const bitnet_model *m) { return -1; }
bitnet_token bitnet_token_eot(const bitnet_model *m) { return -1; }
int bitnet_token_is_eog(const bitnet_model *m, bitnet_token t) { return 0; }
const char *bitnet_token_text(const bitnet_model *m, bitnet_token t) { return NULL; }
bitnet_status bitnet_tokenize(const bitnet_model *m, const char *text, size_t len, uint32_t flags,
                              bitnet_token *tokens, size_t cap, size_t *n_tokens) {
    return BN_NOT_YET("bitnet_tokenize");
}
bitnet_status bitnet_detokenize(const bitnet_model *m, const bitnet_token *tokens, size_t n_tokens,
                                uint32_t flags, char *buf, size_t cap, size_t *n_bytes) {
    return BN_NOT_YET("bitnet_detokenize");
}
bitnet_status bitnet_decoder_create(const bitnet_model *m, uint32_t flags, bitnet_decoder **out) {
    if (out) *out = NULL;
    return BN_NOT_YET("bitnet_decoder_create");
}
void bitnet_decoder_free(bitnet_decoder *d) { (void)d; }
bitnet_status bitnet_decoder_push(bitnet_decoder *d, bitnet_token t, char *buf, size_t cap, size_t *n_bytes) {
    return BN_NOT_YET("bitnet_decoder_push");
}
bitnet_status bitnet_decoder_flush(bitnet_decoder *d, char *buf, size_t cap, size_t *n_bytes) {
    return BN_NOT_YET("bitnet_decoder_flush");
}
bitnet_status bitnet_chat_apply(const bitnet_model *m, const char *tmpl, const bitnet_chat_message *msgs,
                                size_t n_msgs, int add_generation_prompt, char *buf, size_t cap, size_t *n_bytes) {
    return BN_NOT_YET("bitnet_chat_apply");
}
