/*
 * model_tl.c -- bitnet.cpp's TL1 and TL2 lookup-table layouts (docs/formats.md).
 */
#include "model_decode.h"

#include "type_table.h"

size_t bn_tl_scratch(const bn_tsrc *s, int64_t cols_pad);
int bn_tl_rows(const bn_tsrc *s, int64_t r0, int64_t r1, uint8_t *out, int64_t row_bytes, uint8_t *scratch,
               bn_derr *err);

bitnet_status bn_tl_prepare(const bitnet_gguf *g, const bn_gguf_tensor *t, const char *name, bn_tsrc *s,
                            float *scale) {
    (void)g, (void)t, (void)s, (void)scale;
    return bn_err(BITNET_E_UNSUPPORTED, "tensor '%s': TL1/TL2 are not supported yet", name);
}

int64_t bn_tl_tile_rows(const bn_tsrc *s) {
    (void)s;
    return 16;
}

size_t bn_tl_scratch(const bn_tsrc *s, int64_t cols_pad) {
    (void)s;
    return (size_t)cols_pad;
}

int bn_tl_rows(const bn_tsrc *s, int64_t r0, int64_t r1, uint8_t *out, int64_t row_bytes, uint8_t *scratch,
               bn_derr *err) {
    (void)s, (void)r1, (void)out, (void)row_bytes, (void)scratch;
    err->kind = BN_DERR_NOT_TERNARY;
    err->row = r0;
    return 1;
}
