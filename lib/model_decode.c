/*
 * model_decode.c -- a file's ternary tensor to our 2-bit codes, row by row, and the
 * non-finite checks of dense tensors (model_decode.h).
 *
 * Output: x128 rows (kernels.h): code e of block b in byte 32b + e%32, bits
 * 7-2(e/32)..6-2(e/32), codes 0/1/2 = -1/0/+1.  The loops are plain C written to be
 * vectorised by the compiler (byte and 16/32-bit lane operations, no data-dependent
 * branches in the common path); a row with a problem is re-scanned slowly to name the
 * first offending element.
 *
 *   I2_S   rows of whole 128-blocks are copied (our order is I2_S's order); a row that
 *          starts or ends inside a block (ne0 % 128 != 0, e.g. ffn_down of the 3B
 *          model: 8640) is unpacked from the flattened blocks; code 3 is refused;
 *   TQ2_0  {qs[64], f16 d}: qs byte 32c + m holds elements 128c + m + 32k at bits 2k, the
 *          mirror of our byte order; code 3 refused;
 *   TQ1_0  {qs[48], qh[4], f16 d}: base-3 digits (docs/formats.md);
 *   F32/F16/BF16  ternary-valued: every value 0 or +-s for one s per tensor, compared by
 *          bit pattern (|v| == s exactly), NaN / infinity named as such;
 *   TL1/TL2  bitnet.cpp's lookup-table layouts, lib/model_tl.c.
 */
#include "model_decode.h"

#include "kernels.h"
#include "type_table.h"

#include <math.h>

void bn_derr_merge(bn_derr *into, const bn_derr *e) {
    if (e->kind == BN_DERR_NONE) return;
    if (into->kind == BN_DERR_NONE || e->row < into->row || (e->row == into->row && e->col < into->col)) *into = *e;
}

static int bn_derr_set(bn_derr *err, int kind, int64_t row, int64_t col, double v) {
    err->kind = kind;
    err->row = row;
    err->col = col;
    err->value = v;
    return 1;
}

/* decoders of lib/model_tl.c */
size_t bn_tl_scratch(const bn_tsrc *s, int64_t cols_pad);
int bn_tl_rows(const bn_tsrc *s, int64_t r0, int64_t r1, uint8_t *out, int64_t row_bytes, uint8_t *scratch,
               bn_derr *err);

/* ---- shared pieces ----------------------------------------------------------------- */

/* Code bytes c[0 .. 128 nb) into nb x128 blocks. */
static void bn_pack_x128(const uint8_t *c, int64_t nb, uint8_t *out) {
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *cb = c + 128 * b;
        uint8_t *o = out + 32 * b;
        for (int p = 0; p < 32; p++)
            o[p] = (uint8_t)(cb[p] << 6 | cb[32 + p] << 4 | cb[64 + p] << 2 | cb[96 + p]);
    }
}

/* Whether n x128 bytes hold a code 3 (both bits of a pair set). */
static int bn_has_code3(const uint8_t *p, int64_t n) {
    uint64_t acc = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint64_t w = bn_rd_u64(p + i);
        acc |= w & (w >> 1) & 0x5555555555555555ull;
    }
    for (; i < n; i++) acc |= (uint64_t)(p[i] & (p[i] >> 1) & 0x55);
    return acc != 0;
}

/* The first column of an x128 row (n bytes) with code 3. */
static int64_t bn_code3_col(const uint8_t *row, int64_t n) {
    int64_t best = -1;
    for (int64_t i = 0; i < n; i++)
        for (int g = 0; g < 4; g++)
            if (((row[i] >> (6 - 2 * g)) & 3) == 3) {
                const int64_t col = 128 * (i / 32) + 32 * g + i % 32;
                if (best < 0 || col < best) best = col;
            }
    return best;
}

/* ---- I2_S ----------------------------------------------------------------------------- */

static int bn_i2s_rows(const bn_tsrc *s, int64_t r0, int64_t r1, uint8_t *out, int64_t row_bytes, uint8_t *scratch,
                       bn_derr *err) {
    const int64_t ne0 = s->ne0;
    if (ne0 % 128 == 0) { /* whole blocks per row: the bytes are already in our order */
        const int64_t n = ne0 / 4;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *src = s->data + (uint64_t)r * (uint64_t)n;
            if (bn_has_code3(src, n)) return bn_derr_set(err, BN_DERR_CODE3, r, bn_code3_col(src, n), 3);
            memcpy(out + (r - r0) * row_bytes, src, (size_t)n);
        }
        return 0;
    }
    /* rows start and end inside blocks of the flattened tensor: unpack the blocks that
     * cover the row into code bytes, then pack the row's part (padding codes 1) */
    const int64_t cols_pad = row_bytes * 4;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t e0 = r * ne0, b0 = e0 / 128, b1 = (e0 + ne0 - 1) / 128;
        for (int64_t b = b0; b <= b1; b++) {
            const uint8_t *blk = s->data + 32 * b;
            uint8_t *c = scratch + 128 * (b - b0);
            for (int p = 0; p < 32; p++) {
                const unsigned x = blk[p];
                c[p] = (uint8_t)(x >> 6);
                c[32 + p] = (uint8_t)(x >> 4 & 3);
                c[64 + p] = (uint8_t)(x >> 2 & 3);
                c[96 + p] = (uint8_t)(x & 3);
            }
        }
        uint8_t *row = scratch + (e0 - 128 * b0);
        unsigned bad = 0;
        for (int64_t i = 0; i < ne0; i++) bad |= row[i] == 3;
        if (bad)
            for (int64_t i = 0; i < ne0; i++)
                if (row[i] == 3) return bn_derr_set(err, BN_DERR_CODE3, r, i, 3);
        memset(row + ne0, 1, (size_t)(cols_pad - ne0));
        bn_pack_x128(row, cols_pad / 128, out + (r - r0) * row_bytes);
    }
    return 0;
}

/* ---- TQ2_0 / TQ1_0 --------------------------------------------------------------------- */

static inline uint8_t bn_mirror2(unsigned x) {
    return (uint8_t)(((x & 0x03u) << 6) | ((x & 0x0cu) << 2) | ((x & 0x30u) >> 2) | ((x & 0xc0u) >> 6));
}

static int bn_tq_rows(const bn_tsrc *s, int64_t r0, int64_t r1, uint8_t *out, int64_t row_bytes, uint8_t *scratch,
                      bn_derr *err) {
    const int tq2 = s->type == BITNET_TYPE_TQ2_0;
    const int64_t nb = s->ne0 / 256, bsz = tq2 ? 66 : 54;
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    for (int64_t r = r0; r < r1; r++) {
        uint8_t *row = out + (r - r0) * row_bytes;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = s->data + (uint64_t)(r * nb + b) * (uint64_t)bsz;
            const float d = bn_f16_to_f32(bn_rd_u16(blk + (tq2 ? 64 : 52)));
            if (!isfinite(d)) return bn_derr_set(err, BN_DERR_SCALE, r, 256 * b, d);
            unsigned nz = 0;
            if (tq2) {
                if (bn_has_code3(blk, 64)) {
                    /* TQ2_0 element 128c + 32k + m is bits 2k of qs[32c + m] */
                    for (int64_t e = 0; e < 256; e++)
                        if (((blk[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3) == 3)
                            return bn_derr_set(err, BN_DERR_CODE3, r, 256 * b + e, 3);
                }
                for (int i = 0; i < 64; i++) {
                    nz |= blk[i] ^ 0x55u;
                    row[64 * b + i] = bn_mirror2(blk[i]);
                }
            } else {
                uint8_t *c = scratch;
                for (int j = 0; j < 32; j++)
                    for (int k = 0; k < 5; k++) c[32 * k + j] = (uint8_t)(((unsigned)(uint8_t)(blk[j] * pow3[k]) * 3u) >> 8);
                for (int j = 0; j < 16; j++)
                    for (int k = 0; k < 5; k++)
                        c[160 + 16 * k + j] = (uint8_t)(((unsigned)(uint8_t)(blk[32 + j] * pow3[k]) * 3u) >> 8);
                for (int j = 0; j < 4; j++)
                    for (int k = 0; k < 4; k++)
                        c[240 + 4 * k + j] = (uint8_t)(((unsigned)(uint8_t)(blk[48 + j] * pow3[k]) * 3u) >> 8);
                for (int i = 0; i < 256; i++) nz |= c[i] ^ 1u;
                bn_pack_x128(c, 2, row + 64 * b);
            }
            s->bd[r * nb + b] = d;
            s->bempty[r * nb + b] = (uint8_t)(nz == 0);
        }
    }
    return 0;
}

/* ---- ternary-valued F32 / F16 / BF16 ----------------------------------------------------- */

/* Magnitude bit mask, the smallest non-finite magnitude, and element size. */
static void bn_float_bits(uint32_t type, uint32_t *abs_mask, uint32_t *inf, int *esz) {
    if (type == BITNET_TYPE_F32) {
        *abs_mask = 0x7fffffffu, *inf = 0x7f800000u, *esz = 4;
    } else if (type == BITNET_TYPE_F16) {
        *abs_mask = 0x7fffu, *inf = 0x7c00u, *esz = 2;
    } else { /* BF16 */
        *abs_mask = 0x7fffu, *inf = 0x7f80u, *esz = 2;
    }
}

static double bn_float_value(uint32_t type, const uint8_t *p) {
    if (type == BITNET_TYPE_F32) return (double)bn_rd_f32(p);
    if (type == BITNET_TYPE_F16) return (double)bn_f16_to_f32(bn_rd_u16(p));
    return (double)bn_bf16_to_f32(bn_rd_u16(p));
}

int bn_tsrc_float_scale(bn_tsrc *s, bn_derr *err) {
    uint32_t am, inf;
    int esz;
    bn_float_bits(s->type, &am, &inf, &esz);
    const int64_t n = s->ne0 * s->ne1;
    s->s_bits = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *p = s->data + (uint64_t)i * (uint64_t)esz;
        const uint32_t a = (esz == 4 ? bn_rd_u32(p) : bn_rd_u16(p)) & am;
        if (a == 0) continue;
        if (a >= inf) return bn_derr_set(err, BN_DERR_NONFINITE, i / s->ne0, i % s->ne0, bn_float_value(s->type, p));
        s->s_bits = a;
        break;
    }
    return 0;
}

/* Name the first value of row r that is not 0 or +-s. */
static int bn_float_bad(const bn_tsrc *s, int64_t r, bn_derr *err) {
    uint32_t am, inf;
    int esz;
    bn_float_bits(s->type, &am, &inf, &esz);
    const uint8_t *row = s->data + (uint64_t)r * (uint64_t)s->ne0 * (uint64_t)esz;
    for (int64_t i = 0; i < s->ne0; i++) {
        const uint8_t *p = row + (uint64_t)i * (uint64_t)esz;
        const uint32_t a = (esz == 4 ? bn_rd_u32(p) : bn_rd_u16(p)) & am;
        if (a == 0 || a == s->s_bits) continue;
        return bn_derr_set(err, a >= inf ? BN_DERR_NONFINITE : BN_DERR_NOT_TERNARY, r, i, bn_float_value(s->type, p));
    }
    return 0; /* not reached */
}

static int bn_float_rows(const bn_tsrc *s, int64_t r0, int64_t r1, uint8_t *out, int64_t row_bytes,
                         uint8_t *scratch, bn_derr *err) {
    const int64_t ne0 = s->ne0, cols_pad = row_bytes * 4;
    uint8_t *c = scratch;
    memset(c + ne0, 1, (size_t)(cols_pad - ne0));
    for (int64_t r = r0; r < r1; r++) {
        unsigned bad = 0;
        if (s->type == BITNET_TYPE_F32) {
            const uint32_t sb = s->s_bits;
            const uint8_t *src = s->data + (uint64_t)r * (uint64_t)ne0 * 4;
            for (int64_t i = 0; i < ne0; i++) {
                const uint32_t x = bn_rd_u32(src + 4 * i), a = x & 0x7fffffffu;
                bad |= (a != 0) & (a != sb);
                c[i] = (uint8_t)(a == 0 ? 1 : (x >> 31) ? 0 : 2);
            }
        } else {
            /* 16-bit lanes throughout, branch-free, so the compiler vectorises it */
            const uint16_t sb = (uint16_t)s->s_bits;
            const uint8_t *src = s->data + (uint64_t)r * (uint64_t)ne0 * 2;
            uint16_t bad16 = 0;
            for (int64_t i = 0; i < ne0; i++) {
                const uint16_t x = bn_rd_u16(src + 2 * i), a = x & 0x7fffu;
                const uint16_t nz = a != 0, neg = x >> 15;
                bad16 |= (uint16_t)(nz & (a != sb));
                c[i] = (uint8_t)(1 + nz - 2 * (nz & neg)); /* 0: 1, +s: 2, -s: 0 */
            }
            bad = bad16;
        }
        if (bad) return bn_float_bad(s, r, err);
        bn_pack_x128(c, cols_pad / 128, out + (r - r0) * row_bytes);
    }
    return 0;
}

/* ---- dispatch --------------------------------------------------------------------------------- */

size_t bn_tsrc_scratch(const bn_tsrc *s, int64_t cols_pad) {
    if (s->type == BN_TYPE_TL1 || s->type == BN_TYPE_TL2) return bn_tl_scratch(s, cols_pad);
    /* code bytes of a padded row; I2_S: the blocks around a row plus its padding */
    return (size_t)(cols_pad + 2 * 128 + 256);
}

int bn_tsrc_rows(const bn_tsrc *s, int64_t r0, int64_t r1, uint8_t *out, int64_t row_bytes, uint8_t *scratch,
                 bn_derr *err) {
    switch (s->type) {
    case BITNET_TYPE_I2_S: return bn_i2s_rows(s, r0, r1, out, row_bytes, scratch, err);
    case BITNET_TYPE_TQ2_0:
    case BITNET_TYPE_TQ1_0: return bn_tq_rows(s, r0, r1, out, row_bytes, scratch, err);
    case BITNET_TYPE_F32:
    case BITNET_TYPE_F16:
    case BITNET_TYPE_BF16: return bn_float_rows(s, r0, r1, out, row_bytes, scratch, err);
    case BN_TYPE_TL1:
    case BN_TYPE_TL2: return bn_tl_rows(s, r0, r1, out, row_bytes, scratch, err);
    default: return bn_derr_set(err, BN_DERR_NOT_TERNARY, r0, 0, 0);
    }
}

/* ---- dense tensors: NaN / infinity ------------------------------------------------------------ */

int bn_dense_check_rows(uint32_t type, const uint8_t *data, uint64_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                        bn_derr *err) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = data + (uint64_t)r * row_bytes;
        unsigned bad = 0;
        switch (type) {
        case BITNET_TYPE_F32:
            for (int64_t i = 0; i < cols; i++) bad |= (bn_rd_u32(row + 4 * i) & 0x7f800000u) == 0x7f800000u;
            break;
        case BITNET_TYPE_F16:
            for (int64_t i = 0; i < cols; i++) bad |= (bn_rd_u16(row + 2 * i) & 0x7c00u) == 0x7c00u;
            break;
        case BITNET_TYPE_BF16:
            for (int64_t i = 0; i < cols; i++) bad |= (bn_rd_u16(row + 2 * i) & 0x7f80u) == 0x7f80u;
            break;
        default: { /* block types: the f16 scales (and Q4_K's minimum scale) */
            const bn_type_traits *tr = bn_type_traits_get(type);
            int off0 = -1, off1 = -1;
            switch (type) {
            case BITNET_TYPE_Q4_0:
            case BITNET_TYPE_Q8_0: off0 = 0; break;
            case BITNET_TYPE_Q4_K: off0 = 0, off1 = 2; break;
            case BITNET_TYPE_Q6_K: off0 = 208; break;
            case BITNET_TYPE_TQ2_0: off0 = 64; break;
            case BITNET_TYPE_TQ1_0: off0 = 52; break;
            default: break;
            }
            if (!tr || off0 < 0) break;
            const int64_t nb = cols / tr->blck;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + (uint64_t)b * tr->type_size;
                uint16_t d = bn_rd_u16(blk + off0);
                if (off1 >= 0 && (bn_rd_u16(blk + off1) & 0x7c00u) == 0x7c00u) d = 0x7c00u;
                if ((d & 0x7c00u) == 0x7c00u)
                    return bn_derr_set(err, BN_DERR_SCALE, r, b * tr->blck, bn_f16_to_f32(d));
            }
            break;
        }
        }
        if (bad) { /* find it */
            for (int64_t i = 0; i < cols; i++) {
                const uint8_t *p = row + (uint64_t)i * (type == BITNET_TYPE_F32 ? 4u : 2u);
                const double v = bn_float_value(type, p);
                if (!isfinite(v)) return bn_derr_set(err, BN_DERR_NONFINITE, r, i, v);
            }
        }
    }
    return 0;
}
