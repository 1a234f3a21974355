/*
 * layout.c -- repacking weights into the layouts that kernel variants prefer
 * (BN_TMAT_G4X256, BN_TMAT_G16, BN_DMAT_G4X32; see kernels.h), and reading dense rows back in
 * any layout, and building the screening copy of an F16 output layer (the scalar
 * builder, every variant's oracle).  Portable C (the loops are written so compilers vectorise them), run
 * once per matrix at load time.  Every shape fits: rows are completed to whole groups
 * with dummy rows and row lengths padded with zero weights, in memory only.
 */
#include "kernels.h"

#include "internal.h"
#include "type_table.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* One 256-weight chunk of a row: the two x128 blocks a (weights 0..127) and b
 * (128..255) into the G4X256 chunk out (byte i = weights i, 64+i, 128+i, 192+i from the
 * high bits down).  In x128, byte p of a block holds its weights p, 32+p, 64+p, 96+p
 * from the high bits down, so for i < 32 out[i] takes bits 7:6 and 3:2 of a[i] and
 * b[i], and out[32 + i] bits 5:4 and 1:0 -- pure bit moves, no unpacking. */
static inline void bn_g4_chunk(const uint8_t *a, const uint8_t *b, uint8_t *out) {
    for (int i = 0; i < 32; i++) {
        const unsigned x = a[i], y = b[i];
        out[i] = (uint8_t)((x & 0xc0u) | ((x & 0x0cu) << 2) | ((y & 0xc0u) >> 4) | ((y & 0x0cu) >> 2));
        out[32 + i] = (uint8_t)(((x & 0x30u) << 2) | ((x & 0x03u) << 4) | ((y & 0x30u) >> 2) | (y & 0x03u));
    }
}

void bn_g4x256_pack_group(const uint8_t *rows4, int64_t row_bytes, uint8_t *dst) {
    const int64_t nc = row_bytes / 64;
    for (int r = 0; r < 4; r++) {
        const uint8_t *row = rows4 + (size_t)r * (size_t)row_bytes;
        for (int64_t c = 0; c < nc; c++) bn_g4_chunk(row + 64 * c, row + 64 * c + 32, dst + c * 256 + r * 64);
    }
}

/* Rows into groups of G rows (pack: G consecutive x128 rows into one group), rows and
 * cols_pad padded with code 1.  When the pack moves bytes only within a group's own span
 * (in_place: G4X256), a matrix of whole groups and 256-multiple rows is rearranged in
 * place, one group at a time through a small copy; any other shape, or a pack that
 * gathers across the group (G16), moves into a new buffer.  Per-block scales (rare TQ
 * files) stay in rows: the scalar code reads them. */
static bitnet_status bn_tmat_repack_groups(bn_tmat *w, int64_t G, void (*pack)(const uint8_t *, int64_t, uint8_t *),
                                           int in_place, int layout) {
    if (w->layout != BN_TMAT_ROWS || w->bscale) return BITNET_OK;
    const int64_t groups = (w->rows + G - 1) / G;
    const int64_t cols_pad = (w->cols_pad + 255) / 256 * 256, row_bytes = cols_pad / 4;
    const size_t gbytes = (size_t)G * (size_t)row_bytes;
    const int grow = !in_place || w->rows % G != 0 || cols_pad != w->cols_pad;
    uint8_t *grp = bn_malloc(gbytes), *dst = grow ? bn_aligned_alloc(64, (size_t)groups * gbytes) : w->codes;
    if (!grp || !dst) {
        bn_free(grp);
        if (grow) bn_aligned_free(dst);
        return bn_err(BITNET_E_NOMEM, "out of memory repacking a %lld x %lld matrix", (long long)w->rows,
                      (long long)w->cols);
    }
    for (int64_t g = 0; g < groups; g++) {
        memset(grp, 0x55, gbytes); /* code 1: the padding and the dummy rows */
        for (int64_t r = G * g; r < G * g + G && r < w->rows; r++)
            memcpy(grp + (size_t)(r - G * g) * (size_t)row_bytes, w->codes + (size_t)r * (size_t)w->row_bytes,
                   (size_t)w->row_bytes);
        pack(grp, row_bytes, dst + (size_t)g * gbytes);
    }
    bn_free(grp);
    if (grow) {
        bn_aligned_free(w->codes);
        w->codes = dst;
        w->cols_pad = cols_pad;
        w->row_bytes = row_bytes;
    }
    w->layout = layout;
    return BITNET_OK;
}

bitnet_status bn_tmat_repack_g4x256(bn_tmat *w) {
    /* a group of four rows takes the same bytes in both layouts */
    return bn_tmat_repack_groups(w, 4, bn_g4x256_pack_group, 1, BN_TMAT_G4X256);
}

/* G16 (kernels.h): the 16 columns of chunk c of an x128 row are 16 consecutive bytes of
 * its block c / 8 (from byte 16 * (c % 2)), all in the 2-bit field at bit 6 - 2 * ((c % 8) / 2).
 * Output byte 4r + b of the chunk gathers, from the high bits down, the codes of columns
 * 16c + b, 16c + 4 + b, 16c + 8 + b, 16c + 12 + b of row r: four source bytes 4k + b, so one
 * 32-bit word of the source per k, shifted and masked, gives four output bytes at once. */
static inline uint32_t bn_ld32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void bn_g16_pack_group(const uint8_t *rows16, int64_t row_bytes, uint8_t *dst) {
    const int64_t nc = row_bytes / 4; /* 16-column chunks */
    for (int64_t c = 0; c < nc; c++) {
        const int s = 6 - 2 * (int)((c % 8) / 2);
        const uint8_t *src = rows16 + 32 * (c / 8) + 16 * (c % 2);
        uint8_t *out = dst + 64 * c;
        for (int r = 0; r < 16; r++) {
            const uint8_t *p = src + (size_t)r * (size_t)row_bytes;
            uint32_t v = 0;
            for (int k = 0; k < 4; k++) v |= ((bn_ld32(p + 4 * k) >> s) & 0x03030303u) << (6 - 2 * k);
            out[4 * r] = (uint8_t)v;
            out[4 * r + 1] = (uint8_t)(v >> 8);
            out[4 * r + 2] = (uint8_t)(v >> 16);
            out[4 * r + 3] = (uint8_t)(v >> 24);
        }
    }
}

bitnet_status bn_tmat_repack_g16(bn_tmat *w) {
    /* a group gathers bytes from all its rows, so this one never works in place */
    return bn_tmat_repack_groups(w, 16, bn_g16_pack_group, 0, BN_TMAT_G16);
}

uint64_t bn_dmat_g4x32_row_bytes(int64_t cols) { return (uint64_t)(cols + 31) / 32 * 64; }

void bn_dmat_g4x32_rows(const uint8_t *src, int64_t rows, int64_t cols, int64_t r0, int64_t r1, uint8_t *dst) {
    const uint64_t srb = (uint64_t)cols * 2, rb = bn_dmat_g4x32_row_bytes(cols);
    const int64_t rows4 = rows & ~(int64_t)3, nc = cols / 32, tail = cols % 32;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *s = src + (uint64_t)(r - r0) * srb;
        if (r < rows4) {
            uint8_t *g = dst + (uint64_t)(r / 4) * 4 * rb + (uint64_t)(r % 4) * 64;
            for (int64_t c = 0; c < nc; c++) memcpy(g + c * 256, s + c * 64, 64);
            if (tail) {
                memcpy(g + nc * 256, s + nc * 64, (size_t)tail * 2);
                memset(g + nc * 256 + tail * 2, 0, (size_t)(32 - tail) * 2);
            }
        } else { /* the last rows % 4 rows: row-major, padded */
            uint8_t *d = dst + (uint64_t)r * rb;
            memcpy(d, s, (size_t)srb);
            memset(d + srb, 0, (size_t)(rb - srb));
        }
    }
}

bitnet_status bn_dmat_repack_g4x32(bn_dmat *w) {
    if (w->layout != BN_DMAT_ROWS || w->type != BITNET_TYPE_F16 || w->rows < 4) return BITNET_OK;
    const uint64_t rb = bn_dmat_g4x32_row_bytes(w->cols);
    uint8_t *dst = bn_aligned_alloc(64, (size_t)w->rows * (size_t)rb);
    if (!dst) return bn_err(BITNET_E_NOMEM, "out of memory repacking a %lld x %lld matrix", (long long)w->rows,
                            (long long)w->cols);
    bn_dmat_g4x32_rows(w->data, w->rows, w->cols, 0, w->rows, dst);
    bn_aligned_free(w->owned);
    w->owned = dst;
    w->data = dst;
    w->row_bytes = rb;
    w->layout = BN_DMAT_G4X32;
    return BITNET_OK;
}

void bn_dmat_row_f32(const bn_dmat *w, int64_t r, float *out) {
    const bn_type_traits *tr = bn_type_traits_get(w->type);
    if (w->layout == BN_DMAT_G4X32 && r < (w->rows & ~(int64_t)3)) {
        const uint8_t *g = w->data + (uint64_t)(r / 4) * 4 * w->row_bytes + (uint64_t)(r % 4) * 64;
        for (int64_t c = 0; 32 * c < w->cols; c++)
            tr->to_float(g + c * 256, out + 32 * c, w->cols - 32 * c < 32 ? w->cols - 32 * c : 32);
        return;
    }
    tr->to_float(w->data + (uint64_t)r * w->row_bytes, out, w->cols);
}

/* The F16 bytes of row r of w, and the distance between its chunks of 32 values (both
 * layouts: G4X32 groups, or row-major rows). */
static const uint8_t *bn_layout_f16_row(const bn_dmat *w, int64_t r, uint64_t *chunk_stride) {
    if (w->layout == BN_DMAT_G4X32 && r < (w->rows & ~(int64_t)3)) {
        *chunk_stride = 256;
        return w->data + (uint64_t)(r / 4) * 4 * w->row_bytes + (uint64_t)(r % 4) * 64;
    }
    *chunk_stride = 64;
    return w->data + (uint64_t)r * w->row_bytes;
}

void bn_screen_quant_scalar(const bn_dmat *w, int64_t r0, int64_t r1, int qmax, bn_smat *s, float *x) {
    const float fq = (float)qmax;
    for (int64_t r = r0; r < r1; r++) {
        if (r >= s->rows) { /* the dummy rows completing the last group of four */
            for (int64_t b = 0; b < s->nb; b++) {
                memset(BN_SMAT_Q(s, r, b), 0, BN_SCREEN_BLOCK);
                *BN_SMAT_SIGMA(s, r, b) = 0.0f;
            }
            continue;
        }
        uint64_t cs;
        const uint8_t *p = bn_layout_f16_row(w, r, &cs);
        for (int64_t c = 0; c < w->cols; c++) x[c] = bn_f16_to_f32(bn_rd_u16(p + (uint64_t)(c / 32) * cs + 2 * (uint64_t)(c % 32)));
        for (int64_t c = w->cols; c < s->cols_pad; c++) x[c] = 0.0f;
        for (int64_t b = 0; b < s->nb; b++) {
            const float *xb = x + BN_SCREEN_BLOCK * b;
            int8_t *q = BN_SMAT_Q(s, r, b);
            float mx = 0.0f;
            for (int i = 0; i < BN_SCREEN_BLOCK; i++) {
                const float a = fabsf(xb[i]);
                mx = a > mx ? a : mx;
            }
            const float sg = mx / fq, inv = sg > 0.0f ? 1.0f / sg : 0.0f;
            *BN_SMAT_SIGMA(s, r, b) = sg;
            for (int i = 0; i < BN_SCREEN_BLOCK; i++) {
                float v = rintf(xb[i] * inv); /* round half to even (the default mode); no add to fuse */
                v = v > fq ? fq : v < -fq ? -fq : v;
                q[i] = (int8_t)v;
            }
        }
    }
}
