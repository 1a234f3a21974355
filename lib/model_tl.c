/*
 * model_tl.c -- bitnet.cpp's TL1 and TL2 lookup-table layouts, decoded into our codes
 * at load (docs/formats.md, "TL1 and TL2").
 *
 * A TL tensor is a permutation of 4-bit indices whose tiling depends on the kernel
 * configuration bitnet.cpp generated for the matrix shape (BM rows per tile, BK columns
 * per block, bm rows per SIMD block).  Its setup script generates one configuration per
 * shape of the models in its table, always with the same parameters, and its converter
 * packs each matrix with the configuration of its shape; so a file can be read exactly
 * for those shapes, and only those (any other shape could not have been written).
 *
 *   TL1: pairs of weights (w0, w1) of columns 2j, 2j+1 as the index 3*w0 + w1 + 4
 *        (0..8); byte B = high nibble | low nibble of the pairs named by the mixed-radix
 *        digits of B (bn_tl1_tile);
 *   TL2: columns [0, K3) (K3 = K - K % BK) in triples (w0, w1, w2) of columns 3j..3j+2
 *        as |9*w0 + 3*w1 + w2| (0..13) with the sign in a separate bit plane, then the
 *        last K % BK columns in TL1-like pairs (bn_tl2_tile);
 *   both: one f32 scale (max |w|) in the tensor's 32-byte tail, at byte n/4 (TL1) or at
 *        the TL2 size rounded up to 32; value = (code - 1) * scale as for I2_S.
 * Tiles of BM rows are contiguous in every part, so the loader decodes a tile per claimed
 * range of rows.
 */
#include "model_decode.h"

#include "kernels.h"
#include "type_table.h"

#include <math.h>

/* The configurations bitnet.cpp's setup script (setup_env.py) passes to its code
 * generators (utils/codegen_tl1.py, codegen_tl2.py), per matrix shape M x K (rows x
 * columns = GGUF ne1 x ne0).  Falcon3, Falcon-E and BitNet-b1.58-2B-4T reuse the
 * Llama3-8B / 3B tables there, whose shapes are not theirs: bitnet.cpp's converter
 * cannot write TL files of those models. */
typedef struct bn_tl_cfg {
    uint32_t    type;
    int64_t     m, k, bm_tile, bk, bm; /* M, K, BM, BK, bm */
    const char *model;
} bn_tl_cfg;

static const bn_tl_cfg bn_tl_cfgs[] = {
    {BN_TYPE_TL1, 1536, 4096, 256, 128, 32, "bitnet_b1_58-large"},
    {BN_TYPE_TL1, 1536, 1536, 128, 64, 64, "bitnet_b1_58-large"},
    {BN_TYPE_TL1, 4096, 1536, 256, 128, 32, "bitnet_b1_58-large"},
    {BN_TYPE_TL1, 3200, 8640, 160, 64, 32, "bitnet_b1_58-3B"},
    {BN_TYPE_TL1, 3200, 3200, 320, 128, 64, "bitnet_b1_58-3B"},
    {BN_TYPE_TL1, 8640, 3200, 320, 64, 32, "bitnet_b1_58-3B"},
    {BN_TYPE_TL1, 14336, 4096, 256, 128, 32, "Llama3-8B-1.58-100B-tokens"},
    {BN_TYPE_TL1, 4096, 14336, 128, 64, 64, "Llama3-8B-1.58-100B-tokens"},
    {BN_TYPE_TL1, 1024, 4096, 256, 128, 32, "Llama3-8B-1.58-100B-tokens"},
    {BN_TYPE_TL1, 4096, 4096, 128, 64, 64, "Llama3-8B-1.58-100B-tokens"},
    {BN_TYPE_TL2, 1536, 4096, 256, 96, 32, "bitnet_b1_58-large"},
    {BN_TYPE_TL2, 1536, 1536, 128, 192, 32, "bitnet_b1_58-large"},
    {BN_TYPE_TL2, 4096, 1536, 256, 96, 32, "bitnet_b1_58-large"},
    {BN_TYPE_TL2, 3200, 8640, 160, 96, 32, "bitnet_b1_58-3B"},
    {BN_TYPE_TL2, 3200, 3200, 320, 96, 32, "bitnet_b1_58-3B"},
    {BN_TYPE_TL2, 8640, 3200, 320, 96, 32, "bitnet_b1_58-3B"},
    {BN_TYPE_TL2, 14336, 4096, 256, 96, 32, "Llama3-8B-1.58-100B-tokens"},
    {BN_TYPE_TL2, 4096, 14336, 128, 96, 32, "Llama3-8B-1.58-100B-tokens"},
    {BN_TYPE_TL2, 1024, 4096, 256, 96, 32, "Llama3-8B-1.58-100B-tokens"},
    {BN_TYPE_TL2, 4096, 4096, 128, 96, 32, "Llama3-8B-1.58-100B-tokens"},
};

size_t bn_tl_scratch(const bn_tsrc *s, int64_t cols_pad);
int bn_tl_rows(const bn_tsrc *s, int64_t r0, int64_t r1, uint8_t *out, int64_t row_bytes, uint8_t *scratch,
               bn_derr *err);

/* Bytes of TL2 data before the tail: bitnet.cpp's size formula, rounded up to 32. */
static uint64_t bn_tl2_payload(int64_t k, int64_t m) {
    uint64_t f = (uint64_t)(k - 256) * (uint64_t)m / 3 * 5 / 8 + 256 * (uint64_t)m / 2 * 4 / 8;
    return (f + 31) / 32 * 32;
}

bitnet_status bn_tl_prepare(const bitnet_gguf *g, const bn_gguf_tensor *t, const char *name, bn_tsrc *s,
                            float *scale) {
    (void)g;
    const char *tn = t->type == BN_TYPE_TL1 ? "TL1" : "TL2";
    const int64_t k = t->ne[0], m = t->ne[1];
    const bn_tl_cfg *c = NULL;
    for (size_t i = 0; i < sizeof bn_tl_cfgs / sizeof bn_tl_cfgs[0]; i++)
        if (bn_tl_cfgs[i].type == t->type && bn_tl_cfgs[i].m == m && bn_tl_cfgs[i].k == k) c = &bn_tl_cfgs[i];
    if (!c)
        return bn_err(BITNET_E_UNSUPPORTED,
                      "tensor '%s': %s matrix of %lld x %lld: bitnet.cpp lays out %s tensors by a kernel "
                      "configuration it generates per model, and only bitnet_b1_58-large, bitnet_b1_58-3B and "
                      "Llama3-8B-1.58 shapes have one in its repository, so this layout cannot be read exactly; "
                      "convert the Hugging Face checkpoint instead (bitnet-convert DIR -o model.gguf, I2_S)",
                      name, tn, (long long)m, (long long)k, tn);
    const uint64_t at = t->type == BN_TYPE_TL1 ? (uint64_t)(m * k) / 4 : bn_tl2_payload(k, m);
    if (at + 4 > t->size) return bn_err(BITNET_E_FORMAT, "tensor '%s': %s data too short", name, tn);
    *scale = bn_rd_f32(t->data + at);
    if (!isfinite(*scale))
        return bn_err(BITNET_E_FORMAT, "tensor '%s': %s scale %g is not finite", name, tn, (double)*scale);
    s->tl = c;
    return BITNET_OK;
}

int64_t bn_tl_tile_rows(const bn_tsrc *s) { return ((const bn_tl_cfg *)s->tl)->bm_tile; }

size_t bn_tl_scratch(const bn_tsrc *s, int64_t cols_pad) {
    const bn_tl_cfg *c = s->tl;
    /* the tile's code bytes, and for TL2 its triples' signed magnitudes */
    return (size_t)c->bm_tile * (size_t)cols_pad + (c->type == BN_TYPE_TL2 ? (size_t)(c->bm_tile * (c->k / 3)) : 0);
}

static int bn_tl_bad(bn_derr *err, int64_t row, int64_t col, unsigned v) {
    err->kind = BN_DERR_TL_INDEX;
    err->row = row;
    err->col = col;
    err->value = (double)v;
    return 1;
}

/* The pair index 3*w0 + w1 + 4 (0..8) as codes w0 + 1, w1 + 1 at columns col, col+1. */
static inline int bn_tl_pair(unsigned idx, uint8_t *c) {
    c[0] = (uint8_t)(idx / 3);
    c[1] = (uint8_t)(idx % 3);
    return idx > 8;
}

/* One TL1 tile (rows a*BM .. a*BM + BM) into code bytes c (cp per row). */
static int bn_tl1_tile(const bn_tl_cfg *cf, const uint8_t *src, int64_t a, uint8_t *c, int64_t cp, bn_derr *err) {
    const int64_t K = cf->k, BM = cf->bm_tile, BY = cf->bk, bm = cf->bm, by = 256 / bm;
    const uint8_t *p = src + (uint64_t)a * (uint64_t)(BM * K / 4);
    /* byte order: digits (kb, mb, ky, r16, j4, r) of sizes (K/BY, BM/bm, BY/by, bm/16,
     * by/4, 16); row = mb*bm + r16*16 + r, pair = kb*BY/2 + ky*by/2 + 2*j4 (high nibble)
     * and + 1 (low nibble) */
    for (int64_t kb = 0; kb < K / BY; kb++)
        for (int64_t mb = 0; mb < BM / bm; mb++)
            for (int64_t ky = 0; ky < BY / by; ky++)
                for (int64_t r16 = 0; r16 < bm / 16; r16++)
                    for (int64_t j4 = 0; j4 < by / 4; j4++) {
                        const int64_t pair = kb * (BY / 2) + ky * (by / 2) + 2 * j4;
                        for (int64_t r = 0; r < 16; r++) {
                            const unsigned x = *p++;
                            uint8_t *row = c + (mb * bm + r16 * 16 + r) * cp + 2 * pair;
                            if (bn_tl_pair(x >> 4, row) | bn_tl_pair(x & 15u, row + 2))
                                return bn_tl_bad(err, a * BM + mb * bm + r16 * 16 + r, 2 * pair,
                                                 (x >> 4) > 8 ? x >> 4 : x & 15u);
                        }
                    }
    return 0;
}

/* Position q' of an 8-byte group inside a 32-byte block of TL2 indices holds the rows
 * 8 * perm[q'] .. + 7 (bitnet.cpp swaps the middle two groups; the swap is its own
 * inverse). */
static const int bn_tl2_perm[4] = {0, 2, 1, 3};

/* One TL2 tile into code bytes c (cp per row); mag is scratch of BM * K3/3 bytes. */
static int bn_tl2_tile(const bn_tl_cfg *cf, const uint8_t *src, int64_t a, uint8_t *c, int64_t cp, int8_t *mag,
                       bn_derr *err) {
    const int64_t M = cf->m, K = cf->k, BM = cf->bm_tile, BY = cf->bk;
    const int64_t K3 = K - K % BY, K2 = K - K3, nt = K3 / 3;
    const uint8_t *three = src + (uint64_t)a * (uint64_t)(BM * K3 / 6);
    const uint8_t *sign = src + (uint64_t)(M * K3 / 6) + (uint64_t)a * (uint64_t)(BM * K3 / 24);
    const uint8_t *two = src + (uint64_t)(M * K3 / 6 + M * K3 / 24) + (uint64_t)a * (uint64_t)(BM * K2 / 4);
    /* magnitudes: blocks of 32 bytes with digits (kb, mb, ky) of sizes (K3/BY, BM/32,
     * BY/6); byte 8q' + e is row mb*32 + 8*perm[q'] + e, triples kb*BY/3 + 2*ky (high
     * nibble) and + 1 (low nibble) */
    for (int64_t kb = 0; kb < K3 / BY; kb++)
        for (int64_t mb = 0; mb < BM / 32; mb++)
            for (int64_t ky = 0; ky < BY / 6; ky++) {
                const int64_t t = kb * (BY / 3) + 2 * ky;
                for (int q = 0; q < 4; q++)
                    for (int e = 0; e < 8; e++) {
                        const unsigned x = *three++;
                        const int64_t r = mb * 32 + 8 * bn_tl2_perm[q] + e;
                        if ((x >> 4) > 13 || (x & 15u) > 13)
                            return bn_tl_bad(err, a * BM + r, 3 * t, (x >> 4) > 13 ? x >> 4 : x & 15u);
                        mag[r * nt + t] = (int8_t)(x >> 4);
                        mag[r * nt + t + 1] = (int8_t)(x & 15u);
                    }
            }
    /* signs: blocks of 32 bytes = 16 little-endian u16 words, digits (kb, mb, k4) of
     * sizes (K3/BY, BM/32, BY/24); triple kb*BY/3 + 8*k4 + js of row mb*32 + rr is bit
     * 15 - (2*js + rr/16) of word rr % 16; a set bit negates the magnitude */
    for (int64_t kb = 0; kb < K3 / BY; kb++)
        for (int64_t mb = 0; mb < BM / 32; mb++)
            for (int64_t k4 = 0; k4 < BY / 24; k4++) {
                for (int js = 0; js < 8; js++)
                    for (int rr = 0; rr < 32; rr++) {
                        const int bit = 15 - (2 * js + rr / 16), w = rr % 16;
                        const unsigned word = (unsigned)sign[2 * w] | (unsigned)sign[2 * w + 1] << 8;
                        if (word >> bit & 1u) {
                            int8_t *v = &mag[(mb * 32 + rr) * nt + kb * (BY / 3) + 8 * k4 + js];
                            *v = (int8_t)-*v;
                        }
                    }
                sign += 32;
            }
    /* triples to codes: t = 9*w0 + 3*w1 + w2 (balanced ternary), u = t + 13 in base 3 */
    for (int64_t r = 0; r < BM; r++) {
        const int8_t *mr = mag + r * nt;
        uint8_t *row = c + r * cp;
        for (int64_t t = 0; t < nt; t++) {
            const unsigned u = (unsigned)(mr[t] + 13);
            row[3 * t] = (uint8_t)(u / 9);
            row[3 * t + 1] = (uint8_t)(u / 3 % 3);
            row[3 * t + 2] = (uint8_t)(u % 3);
        }
    }
    /* the last K2 columns: TL1-like pairs in 32-byte blocks, digits (kb, mb, ky) of
     * sizes (K2/32, BM/32, 8); byte 8q' + e is row mb*32 + 8*perm[q'] + e, pairs
     * kb*16 + 2*ky (high nibble) and + 1 (low nibble) */
    for (int64_t kb = 0; kb < K2 / 32; kb++)
        for (int64_t mb = 0; mb < BM / 32; mb++)
            for (int64_t ky = 0; ky < 8; ky++) {
                const int64_t pair = kb * 16 + 2 * ky;
                for (int q = 0; q < 4; q++)
                    for (int e = 0; e < 8; e++) {
                        const unsigned x = *two++;
                        const int64_t r = mb * 32 + 8 * bn_tl2_perm[q] + e;
                        uint8_t *row = c + r * cp + K3 + 2 * pair;
                        if (bn_tl_pair(x >> 4, row) | bn_tl_pair(x & 15u, row + 2))
                            return bn_tl_bad(err, a * BM + r, K3 + 2 * pair, (x >> 4) > 8 ? x >> 4 : x & 15u);
                    }
            }
    return 0;
}

/* Rows [r0, r1) are one tile (the loader claims ranges of bn_tl_tile_rows rows). */
int bn_tl_rows(const bn_tsrc *s, int64_t r0, int64_t r1, uint8_t *out, int64_t row_bytes, uint8_t *scratch,
               bn_derr *err) {
    const bn_tl_cfg *cf = s->tl;
    const int64_t BM = cf->bm_tile, cp = row_bytes * 4, a = r0 / BM;
    uint8_t *c = scratch;
    for (int64_t r = 0; r < BM; r++) memset(c + r * cp + cf->k, 1, (size_t)(cp - cf->k)); /* padding: weight 0 */
    int bad = cf->type == BN_TYPE_TL1
                  ? bn_tl1_tile(cf, s->data, a, c, cp, err)
                  : bn_tl2_tile(cf, s->data, a, c, cp, (int8_t *)(void *)(scratch + (size_t)BM * (size_t)cp), err);
    if (bad) return 1;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *cr = c + (r - a * BM) * cp;
        uint8_t *o = out + (r - r0) * row_bytes;
        for (int64_t b = 0; b < cp / 128; b++)
            for (int p = 0; p < 32; p++)
                o[32 * b + p] = (uint8_t)(cr[128 * b + p] << 6 | cr[128 * b + 32 + p] << 4 | cr[128 * b + 64 + p] << 2 |
                                          cr[128 * b + 96 + p]);
    }
    return 0;
}
