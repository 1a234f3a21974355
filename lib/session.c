/*
 * session.c -- sessions, sampling and generation.  Not implemented yet: every entry
 * point reports BITNET_E_UNSUPPORTED (never fake data).
 */
#include "session.h"

#define BN_NOT_YET(fn) bn_err(BITNET_E_UNSUPPORTED, "%s: not implemented yet", fn)

static size_t bn_min_size(size_t a, size_t b) { return a < b ? a : b; }

void bitnet_session_default_params(bitnet_session_params *p, size_t struct_size) {
    if (!p || !struct_size) return;
    bitnet_session_params d;
    memset(&d, 0, sizeof d);
    d.struct_size = bn_min_size(sizeof d, struct_size);
    d.n_batch = 512;
    d.kv_type = BITNET_KV_F16;
    d.seed = 0x5eed;
    memset(p, 0, struct_size);
    memcpy(p, &d, d.struct_size);
}

bitnet_status bitnet_session_create(const bitnet_model *m, const bitnet_session_params *params,
                                    bitnet_session **out) {
    if (out) *out = NULL;
    return BN_NOT_YET("bitnet_session_create");
}
void bitnet_session_free(bitnet_session *s) { (void)s; }
const char *bitnet_session_last_error(const bitnet_session *s) { return ""; }
uint32_t bitnet_session_n_ctx(const bitnet_session *s) { return 0; }
uint32_t bitnet_session_n_past(const bitnet_session *s) { return 0; }
void bitnet_session_reset(bitnet_session *s) { (void)s; }
bitnet_status bitnet_session_truncate(bitnet_session *s, uint32_t n_keep) { return BN_NOT_YET("bitnet_session_truncate"); }
bitnet_status bitnet_session_eval(bitnet_session *s, const bitnet_token *tokens, size_t n) {
    return BN_NOT_YET("bitnet_session_eval");
}
bitnet_status bitnet_session_logits(const bitnet_session *s, int32_t i, const float **logits) {
    return BN_NOT_YET("bitnet_session_logits");
}
bitnet_status bitnet_session_embeddings(const bitnet_session *s, int32_t i, const float **embd) {
    return BN_NOT_YET("bitnet_session_embeddings");
}
void bitnet_session_set_seed(bitnet_session *s, uint64_t seed) { (void)s; (void)seed; }
bitnet_status bitnet_session_state_save(const bitnet_session *s, void *buf, size_t cap, size_t *n_bytes) {
    return BN_NOT_YET("bitnet_session_state_save");
}
bitnet_status bitnet_session_state_load(bitnet_session *s, const void *buf, size_t size) {
    return BN_NOT_YET("bitnet_session_state_load");
}
