/*
 * layout.c -- repacking weights into the layouts that kernel variants prefer
 * (BN_TMAT_G4X256, BN_DMAT_G4X32; see kernels.h), and reading dense rows back in
 * any layout.  Portable C, run once per matrix at load time.
 */
#include "kernels.h"

#include "internal.h"
#include "type_table.h"

#include <stdint.h>
#include <string.h>

bitnet_status bn_tmat_repack_g4x256(bn_tmat *w) {
    /* per-block scales (rare TQ files) run on the scalar code, which reads rows */
    if (w->layout != BN_TMAT_ROWS || w->bscale || w->rows % 4 != 0 || w->cols_pad % 256 != 0) return BITNET_OK;
    /* A group of four rows occupies the same 4*row_bytes bytes in both layouts, so the
     * matrix is rearranged in place, one group at a time through a small copy. */
    const size_t gbytes = 4 * (size_t)w->row_bytes;
    uint8_t *grp = bn_malloc(gbytes);
    if (!grp) return bn_err(BITNET_E_NOMEM, "out of memory repacking a %lld x %lld matrix", (long long)w->rows,
                            (long long)w->cols);
    const int64_t nc = w->cols_pad / 256;
    uint8_t codes[256];
    for (int64_t g = 0; g < w->rows / 4; g++) {
        uint8_t *dst = w->codes + (size_t)g * gbytes;
        memcpy(grp, dst, gbytes);
        for (int r = 0; r < 4; r++) {
            const uint8_t *row = grp + (size_t)r * (size_t)w->row_bytes;
            for (int64_t c = 0; c < nc; c++) {
                /* unpack the two x128 blocks of this chunk (byte p of block k holds
                 * elements 128k + p, +32, +64, +96 from the high bits down) ... */
                const uint8_t *src = row + 64 * c;
                for (int k = 0; k < 64; k++) {
                    const int e = 128 * (k / 32) + k % 32;
                    codes[e] = src[k] >> 6 & 3;
                    codes[e + 32] = src[k] >> 4 & 3;
                    codes[e + 64] = src[k] >> 2 & 3;
                    codes[e + 96] = src[k] & 3;
                }
                /* ... and pack them four 64-element strides per byte */
                uint8_t *chunk = dst + c * 256 + r * 64;
                for (int i = 0; i < 64; i++)
                    chunk[i] =
                        (uint8_t)(codes[i] << 6 | codes[64 + i] << 4 | codes[128 + i] << 2 | codes[192 + i]);
            }
        }
    }
    bn_free(grp);
    w->layout = BN_TMAT_G4X256;
    return BITNET_OK;
}

bitnet_status bn_dmat_repack_g4x32(bn_dmat *w) {
    if (w->layout != BN_DMAT_ROWS || w->type != BITNET_TYPE_F16 || w->cols % 32 != 0 || w->rows < 4)
        return BITNET_OK;
    size_t nbytes = (size_t)w->rows * (size_t)w->row_bytes;
    uint8_t *dst = bn_aligned_alloc(64, nbytes);
    if (!dst) return bn_err(BITNET_E_NOMEM, "out of memory repacking a %lld x %lld matrix", (long long)w->rows,
                            (long long)w->cols);
    const int64_t rows4 = w->rows & ~(int64_t)3, nc = w->cols / 32;
    for (int64_t r = 0; r < rows4; r++) {
        const uint8_t *src = w->data + (uint64_t)r * w->row_bytes;
        uint8_t *g = dst + (uint64_t)(r / 4) * 4 * w->row_bytes + (uint64_t)(r % 4) * 64;
        for (int64_t c = 0; c < nc; c++) memcpy(g + c * 256, src + c * 64, 64);
    }
    memcpy(dst + (uint64_t)rows4 * w->row_bytes, w->data + (uint64_t)rows4 * w->row_bytes,
           (size_t)(w->rows - rows4) * (size_t)w->row_bytes);
    bn_aligned_free(w->owned);
    w->owned = dst;
    w->data = dst;
    w->layout = BN_DMAT_G4X32;
    return BITNET_OK;
}

void bn_dmat_row_f32(const bn_dmat *w, int64_t r, float *out) {
    const bn_type_traits *tr = bn_type_traits_get(w->type);
    if (w->layout == BN_DMAT_G4X32 && r < (w->rows & ~(int64_t)3)) {
        const uint8_t *g = w->data + (uint64_t)(r / 4) * 4 * w->row_bytes + (uint64_t)(r % 4) * 64;
        for (int64_t c = 0; c < w->cols / 32; c++) tr->to_float(g + c * 256, out + 32 * c, 32);
        return;
    }
    tr->to_float(w->data + (uint64_t)r * w->row_bytes, out, w->cols);
}
