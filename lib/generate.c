/*
 * generate.c -- sampling, generation with streaming and stop strings, beam search.
 * Not implemented yet: entry points report BITNET_E_UNSUPPORTED (never fake data).
 */
#include "session.h"

#define BN_NOT_YET(fn) bn_err(BITNET_E_UNSUPPORTED, "%s: not implemented yet", fn)

static size_t bn_min_size(size_t a, size_t b) { return a < b ? a : b; }

void bitnet_sampler_default_params(bitnet_sampler_params *p, size_t struct_size) {
    if (!p || !struct_size) return;
    bitnet_sampler_params d;
    memset(&d, 0, sizeof d);
    d.struct_size = bn_min_size(sizeof d, struct_size);
    d.temperature = 0.8f;
    d.top_k = 40;
    d.top_p = 0.95f;
    d.min_p = 0.05f;
    d.repeat_penalty = 1.0f;
    d.repeat_last_n = 64;
    memset(p, 0, struct_size);
    memcpy(p, &d, d.struct_size);
}

void bitnet_generate_default_params(bitnet_generate_params *p, size_t struct_size) {
    if (!p || !struct_size) return;
    bitnet_generate_params d;
    memset(&d, 0, sizeof d);
    d.struct_size = bn_min_size(sizeof d, struct_size);
    d.max_tokens = 128;
    memset(p, 0, struct_size);
    memcpy(p, &d, d.struct_size);
}

bitnet_status bitnet_session_sample(bitnet_session *s, const bitnet_sampler_params *sp, bitnet_token *out) {
    return BN_NOT_YET("bitnet_session_sample");
}
bitnet_status bitnet_session_generate(bitnet_session *s, const bitnet_token *prompt, size_t n_prompt,
                                      const bitnet_sampler_params *sp, const bitnet_generate_params *gp,
                                      bitnet_token *out, size_t cap, size_t *n_out, bitnet_stop_reason *reason) {
    return BN_NOT_YET("bitnet_session_generate");
}
bitnet_status bitnet_session_beam_search(bitnet_session *s, const bitnet_token *prompt, size_t n_prompt,
                                         uint32_t n_beams, int32_t max_tokens, bitnet_token *out, size_t cap,
                                         size_t *n_out) {
    return BN_NOT_YET("bitnet_session_beam_search");
}
