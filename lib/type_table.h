/*
 * type_table.h -- the tensor type table and scalar reference (de)quantizers (lib/type_table.c).
 *
 * Block layouts are documented in docs/formats.md.  Every function here is the plain,
 * readable reference; fast kernels live in kernels/ and are tested against these.
 */
#ifndef BN_TYPES_H
#define BN_TYPES_H

#include "internal.h"

#define BN_TYPE_COUNT 40 /* ids 0..39 */

/* bitnet.cpp's lookup-table types (not in the public enum: id 38 is also upstream's
 * retired IQ4_NL_8_8, id 39 upstream's MXFP4; docs/formats.md says how we tell them
 * apart). */
#define BN_TYPE_TL1 38u
#define BN_TYPE_TL2 39u

typedef struct bn_type_traits {
    const char *name;       /* "F32", "Q8_0", "I2_S" ...                          */
    uint32_t    blck;       /* elements per block (1 for plain types and I2_S)    */
    uint32_t    type_size;  /* bytes per block (I2_S: see bn_tensor_nbytes)       */
    /* Convert n elements (a multiple of blck) starting at a block boundary; NULL
     * if libbitnet cannot dequantize this type.  Not used for I2_S (needs the
     * tensor-wide scale): see bn_i2s_dequant. */
    void (*to_float)(const void *src, float *dst, int64_t n);
    /* Quantize n elements (multiple of blck); NULL if not supported. */
    void (*from_float)(const float *src, void *dst, int64_t n);
} bn_type_traits;

/* Traits of a known type id, or NULL for ids that are unknown, retired, or refused
 * (37 I8_S).  Id 36 is I2_S, 38 TL1, 39 TL2 (or MXFP4: the GGUF reader decides). */
const bn_type_traits *bn_type_traits_get(uint32_t type);

/* Why a type id is refused, for error messages: ids 37, 39 (when it is MXFP4) and the
 * retired upstream ids 4, 5 and 31..33.  NULL for any other id. */
const char *bn_type_refusal(uint32_t type);

/* Byte size of a tensor of `type` with n_dims dims ne[]: blocks for ordinary types,
 * n/4 + 32 for I2_S and TL1 (one f32 scale at byte n/4), bitnet.cpp's formula for TL2
 * (docs/formats.md).  Checks ne0 % blck == 0 and
 * overflow.  Returns BITNET_OK or BITNET_E_FORMAT (message left to the caller: the
 * returned string in *why explains). */
bitnet_status bn_tensor_nbytes(uint32_t type, uint32_t n_dims, const int64_t *ne, uint64_t *nbytes,
                               const char **why);

/* Bytes of one row of n elements (block types), 0 for I2_S, unknown types, n < 0,
 * n not a multiple of the block size, or overflow. */
uint64_t bn_row_size(uint32_t type, int64_t n);

/* ---- I2_S (bitnet.cpp), classic x128 layout ------------------------------------------
 * n = ne0*ne1 elements; bytes [0, n/4) are 2-bit codes in blocks of 128 elements /
 * 32 bytes: element e of block b sits in byte 32b + e%32, bits 6-2*(e/32)..7-2*(e/32).
 * Code 0,1,2 = -1,0,+1.  The f32 scale is at byte n/4. */
float bn_i2s_scale(const void *tensor, int64_t n_total);
/* Dequantize elements [start, start+n) (start and n multiples of 128). */
void bn_i2s_dequant(const void *tensor, int64_t n_total, int64_t start, int64_t n, float *dst);
/* The ternary value (-1/0/+1) of element i (code 3 reads as +2, as bitnet.cpp's
 * kernels would: the loader rejects tensors containing it). */
int bn_i2s_get(const void *tensor, int64_t i);
/* Quantize a whole tensor: scale = max|x| (computed in double, stored f32), codes by
 * sign (|x| < 1e-6 -> 0), as bitnet.cpp's quantize_i2_s.  dst has n/4 + 32 bytes;
 * n_total must be a multiple of 128.  The 28 tail bytes after the scale are zeroed. */
void bn_i2s_quantize(const float *src, int64_t n_total, void *dst);

#endif /* BN_TYPES_H */
