/*
 * model_decode.h -- a file's ternary tensor to our 2-bit codes, row by row
 * (lib/model_decode.c), and the non-finite checks of the dense tensors the loader
 * touches.  The loader (lib/model_load.c) runs these on several threads over ranges
 * of rows, so nothing here calls bn_err (its message is per thread): failures are
 * described in a bn_derr and turned into an error by the caller.
 */
#ifndef BN_MODEL_DECODE_H
#define BN_MODEL_DECODE_H

#include "gguf.h"
#include "internal.h"

/* What was wrong, and where (the first offending element in row order). */
enum {
    BN_DERR_NONE = 0,
    BN_DERR_CODE3,      /* I2_S / TQ2_0 code 3 (not ternary)                        */
    BN_DERR_NOT_TERNARY,/* F32/F16/BF16 value other than 0 and +-s                 */
    BN_DERR_NONFINITE,  /* NaN or infinity in a float tensor (value)               */
    BN_DERR_SCALE,      /* NaN or infinity in a block scale (col = the block's first column) */
    BN_DERR_TL_INDEX    /* TL1/TL2 index out of range (value)                       */
};

typedef struct bn_derr {
    int     kind;
    int64_t row, col;
    double  value; /* the offending value (NOT_TERNARY, NONFINITE, SCALE) */
} bn_derr;

/* Keep the earlier (row, col) of two errors in *into. */
void bn_derr_merge(bn_derr *into, const bn_derr *e);

/* A ternary tensor as the file stores it, ready to be decoded by rows. */
typedef struct bn_tsrc {
    uint32_t       type;     /* bitnet_type (I2_S, TQ1_0, TQ2_0, F32, F16, BF16, TL1, TL2)    */
    const uint8_t *data;
    int64_t        ne0, ne1; /* columns, rows                                                 */
    /* F32/F16/BF16: the bit pattern of the one magnitude s (0 if every value is 0)        */
    uint32_t       s_bits;
    /* TQ1_0/TQ2_0 outputs, one per 256-block in row-major order: the f16 scale and
     * whether the block's codes are all 0 (weight 0)                                     */
    float         *bd;
    uint8_t       *bempty;
    /* TL1/TL2: the tile configuration (lib/model_tl.c)                                    */
    const void    *tl;
} bn_tsrc;

/* Bytes of scratch bn_tsrc_rows needs per thread. */
size_t bn_tsrc_scratch(const bn_tsrc *s, int64_t cols_pad);

/* For F32/F16/BF16: find s (the magnitude of the first non-zero value) and put its bit
 * pattern in s->s_bits; a non-finite first value is an error. */
int bn_tsrc_float_scale(bn_tsrc *s, bn_derr *err);

/* Decode rows [r0, r1) into x128 rows (kernels.h) at out, row_bytes apart; out is
 * already filled with code 1 (the padding).  Returns 0, or 1 with *err set. */
int bn_tsrc_rows(const bn_tsrc *s, int64_t r0, int64_t r1, uint8_t *out, int64_t row_bytes, uint8_t *scratch,
                 bn_derr *err);

/* Check rows [r0, r1) of a dense matrix (embedding / output) of `type` for NaN and
 * infinity: every value of F32/F16/BF16, the block scales of Q8_0, Q4_K, Q6_K, TQ1_0,
 * TQ2_0.  row_bytes = the file's row size.  Returns 0, or 1 with *err set. */
int bn_dense_check_rows(uint32_t type, const uint8_t *data, uint64_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                        bn_derr *err);

/* ---- TL1 / TL2 (lib/model_tl.c) ---- */

/* Check a TL1/TL2 tensor t (docs/formats.md: its shape must be one of bitnet.cpp's
 * preset kernel configurations), find its scale, and set up s for bn_tsrc_rows. */
bitnet_status bn_tl_prepare(const bitnet_gguf *g, const bn_gguf_tensor *t, const char *name, bn_tsrc *s,
                            float *scale);
/* Rows per range the TL decoder works on (its tile height). */
int64_t bn_tl_tile_rows(const bn_tsrc *s);

#endif
