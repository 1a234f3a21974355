/*
 * type_api.c -- the public tensor-type functions of bitnet.h: type names, support
 * queries, row sizes and bitnet_quantize().  Thin argument-checking wrappers over the
 * type table in type_table.c.
 *
 * bitnet_quantize() converts n_rows rows of n_per_row floats.  For block types no
 * block crosses a row boundary (n_per_row is a multiple of the block size), so the
 * rows are simply one long run of blocks.  I2_S is different: one scale (max |x|) for
 * the whole tensor, n/4 code bytes then a 32-byte tail, and the code blocks of 128
 * elements run over the flattened tensor: the element count must be a multiple of 128,
 * a row may start and end inside a block (bitnet.cpp's quantizers lay such tensors out
 * the same way; docs/formats.md says who can read them).
 */
#include "type_table.h"

#include <math.h>

const char *bitnet_type_name(bitnet_type type) {
    const bn_type_traits *tt = bn_type_traits_get((uint32_t)type);
    return tt ? tt->name : NULL;
}

int bitnet_type_is_supported(bitnet_type type) {
    const bn_type_traits *tt = bn_type_traits_get((uint32_t)type);
    if (tt == NULL) return 0;
    return tt->to_float != NULL || type == BITNET_TYPE_I2_S;
}

uint64_t bitnet_type_row_size(bitnet_type type, int64_t n) {
    return bn_row_size((uint32_t)type, n);
}

/* Largest |x| a block type can encode without its f16 scale overflowing (0: no
 * limit).  Q8_0: d = max/127; Q6_K: d = max/(32*127), rounded up (type_table.c); TQ: d = max. */
static float bn_type_api_max_abs(bitnet_type type) {
    switch (type) {
    case BITNET_TYPE_Q8_0: return 65504.0f * 127.0f;
    case BITNET_TYPE_Q6_K: return 65504.0f * 127.0f * 32.0f;
    case BITNET_TYPE_TQ1_0:
    case BITNET_TYPE_TQ2_0: return 65504.0f;
    default: return 0.0f;
    }
}

bitnet_status bitnet_quantize(bitnet_type type, const float *src, int64_t n_rows, int64_t n_per_row,
                              void *dst, size_t dst_size, size_t *written) {
    const bn_type_traits *tt = bn_type_traits_get((uint32_t)type);
    int is_i2s = type == BITNET_TYPE_I2_S;
    if (tt == NULL)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_quantize: unknown type id %d", (int)type);
    if (tt->from_float == NULL && !is_i2s)
        return bn_err(BITNET_E_UNSUPPORTED, "bitnet_quantize: quantizing to %s is not supported", tt->name);
    if (n_rows < 0 || n_per_row < 0)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_quantize: negative n_rows (%lld) or n_per_row (%lld)",
                      (long long)n_rows, (long long)n_per_row);
    if (!is_i2s && n_per_row % tt->blck != 0)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_quantize: n_per_row %lld is not a multiple of %s's block size %u",
                      (long long)n_per_row, tt->name, tt->blck);
    int64_t n;
    if (bn_mul_i64(n_rows, n_per_row, &n))
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_quantize: n_rows * n_per_row overflows");
    /* I2_S stores 128-element code blocks over the whole tensor */
    if (is_i2s && n % 128 != 0)
        return bn_err(BITNET_E_INVALID_ARG,
                      "bitnet_quantize: I2_S needs an element count that is a multiple of 128 (%lld x %lld = %lld)",
                      (long long)n_rows, (long long)n_per_row, (long long)n);

    uint64_t need;
    if (is_i2s) {
        need = (uint64_t)n / 4 + 32;
    } else if (bn_mul_u64((uint64_t)n / tt->blck, tt->type_size, &need)) {
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_quantize: output size overflows");
    }
    if (need > SIZE_MAX)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_quantize: output size %llu does not fit size_t",
                      (unsigned long long)need);
    if (written) *written = (size_t)need;
    if (dst_size < need)
        return bn_err(BITNET_E_BUFFER_TOO_SMALL, "bitnet_quantize: dst has %zu bytes, %s needs %llu", dst_size,
                      tt->name, (unsigned long long)need);
    if ((src == NULL && n > 0) || (dst == NULL && need > 0))
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_quantize: %s is NULL", src == NULL ? "src" : "dst");

    /* Scales are computed from max |x|: a NaN or infinity would poison a whole block
     * (or, for I2_S, the whole tensor) silently, and so would a value whose block
     * scale overflows f16.  Plain float types carry such values as they are. */
    if (tt->blck > 1 || is_i2s) {
        float lim = bn_type_api_max_abs(type);
        for (int64_t i = 0; i < n; i++) {
            if (!isfinite(src[i]))
                return bn_err(BITNET_E_INVALID_ARG, "bitnet_quantize: src[%lld] (row %lld) is not finite",
                              (long long)i, (long long)(i / n_per_row));
            if (lim > 0.0f && fabsf(src[i]) > lim)
                return bn_err(BITNET_E_INVALID_ARG,
                              "bitnet_quantize: src[%lld] = %g is too large for %s (limit %g: the block "
                              "scale is an f16)", (long long)i, (double)src[i], tt->name, (double)lim);
        }
    }
    if (n == 0) {
        if (is_i2s) memset(dst, 0, 32); /* scale 0 and a zero tail */
        return BITNET_OK;
    }
    if (is_i2s)
        bn_i2s_quantize(src, n, dst);
    else
        tt->from_float(src, dst, n);
    return BITNET_OK;
}
