/*
 * test_types.c -- the tensor type table, half-precision conversions and the scalar
 * reference (de)quantizers (lib/type_table.c, lib/type_api.c).
 *
 * Dequantizer tests build blocks byte by byte from the published layouts (see
 * docs/formats.md) and compute the expected floats in the test itself; they never use
 * our quantizers.  Quantizers are then checked by round trips through the (already
 * verified) dequantizers, and bit by bit where the layout is the point (I2_S).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "type_table.h"

/* ---- helpers ----------------------------------------------------------------------- */

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Deterministic pseudo-random floats in [-1, 1) (xorshift32). */
static uint32_t rng_state = 12345;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

/* The value of an IEEE binary16 bit pattern, derived from the definition:
 * (-1)^s * 2^(e-15) * (1 + m/1024) for normal numbers, 2^-14 * m/1024 for subnormals. */
static double f16_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0)
        v = ldexp((double)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(1024 + m), e - 25);
    return s ? -v : v;
}

/* ---- half precision ---------------------------------------------------------------- */

static void test_f16_exhaustive(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bn_f16_to_f32((uint16_t)h);
        double want = f16_value((uint16_t)h);
        uint16_t back = bn_f32_to_f16(f);
        if (isnan(want)) {
            assert_true(isnan(f));
            assert_int_equal(back & 0x7c00, 0x7c00); /* NaN stays NaN, sign kept */
            assert_int_not_equal(back & 0x03ff, 0);
            assert_int_equal(back & 0x8000, h & 0x8000);
        } else {
            assert_true((double)f == want);
            assert_int_equal(signbit(f) != 0, (h >> 15) != 0);
            assert_int_equal(back, h);
        }
    }
}

/* For every pair of adjacent finite positive f16 values a < b, the f32 midpoint must
 * round to the one with the even mantissa, and the f32 neighbours of the midpoint to
 * the nearer one.  The midpoint needs 12 significant bits: exact in f32. */
static void test_f16_rounding_all_midpoints(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        double a = f16_value((uint16_t)h), b = f16_value((uint16_t)(h + 1));
        float mid = (float)((a + b) / 2);
        assert_true((double)mid == (a + b) / 2);
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        assert_int_equal(bn_f32_to_f16(mid), even);
        assert_int_equal(bn_f32_to_f16(nextafterf(mid, 0.0f)), h);
        assert_int_equal(bn_f32_to_f16(nextafterf(mid, INFINITY)), h + 1);
        assert_int_equal(bn_f32_to_f16(-mid), 0x8000 | even); /* symmetric */
    }
}

static void test_f16_special_cases(void **state) {
    (void)state;
    /* halfway cases around 1.0: ulp is 2^-10 */
    assert_int_equal(bn_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);         /* tie -> even */
    assert_int_equal(bn_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);     /* tie -> even */
    assert_int_equal(bn_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    /* overflow: 65504 is the largest f16, 65520 is the tie with 65536 (= inf) */
    assert_int_equal(bn_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(bn_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(bn_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(bn_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(bn_f32_to_f16(-1e10f), 0xfc00);
    assert_int_equal(bn_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(bn_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(bn_f32_to_f16(bits_f32(0x7f7fffffu)), 0x7c00);
    uint16_t n = bn_f32_to_f16(NAN);
    assert_true((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    /* a NaN whose payload lives only in the low f32 bits must not become inf */
    n = bn_f32_to_f16(bits_f32(0x7f800001u));
    assert_true((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    /* subnormals: smallest is 2^-24; 2^-25 is the tie between 0 and it */
    assert_int_equal(bn_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(bn_f32_to_f16(0x1p-25f), 0x0000);
    assert_int_equal(bn_f32_to_f16(0x1p-25f * 1.0001f), 0x0001);
    assert_int_equal(bn_f32_to_f16(3 * 0x1p-25f), 0x0002);            /* 1.5 ulp: tie -> 2 */
    assert_int_equal(bn_f32_to_f16(5 * 0x1p-25f), 0x0002);            /* 2.5 ulp: tie -> 2 */
    assert_int_equal(bn_f32_to_f16(0x1p-30f), 0x0000);
    assert_int_equal(bn_f32_to_f16(-0x1p-30f), 0x8000);
    assert_int_equal(bn_f32_to_f16(0x1p-14f), 0x0400);                /* smallest normal */
    assert_int_equal(bn_f32_to_f16(0x1p-14f - 0x1p-25f), 0x0400);     /* tie 0x3ff/0x400 */
    assert_int_equal(bn_f32_to_f16(0x1p-14f - 0x1p-24f), 0x03ff);
    assert_int_equal(bn_f32_to_f16(bits_f32(1)), 0x0000);             /* f32 subnormal */
    assert_int_equal(bn_f32_to_f16(-0.0f), 0x8000);
}

static void test_bf16(void **state) {
    (void)state;
    /* bf16 -> f32 is the top half of the f32 bits */
    for (uint32_t h = 0; h < 65536; h += 7) {
        float f = bn_bf16_to_f32((uint16_t)h);
        assert_int_equal(f32_bits(f), h << 16);
    }
    assert_true(bn_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(bn_bf16_to_f32(0x40c0) == 6.0f);
    assert_true(bn_bf16_to_f32(0xc000) == -2.0f);
    /* rounding: the ulp at 1.0 is 2^-7 */
    assert_int_equal(bn_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(bn_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);          /* tie -> even */
    assert_int_equal(bn_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);      /* tie -> even */
    assert_int_equal(bn_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    assert_int_equal(bn_f32_to_bf16(1.0f + 0x1p-8f - 0x1p-20f), 0x3f80);
    assert_int_equal(bn_f32_to_bf16(-1.0f - 3 * 0x1p-8f), 0xbf82);
    assert_int_equal(bn_f32_to_bf16(bits_f32(0x7f7fffffu)), 0x7f80);   /* overflow -> inf */
    assert_int_equal(bn_f32_to_bf16(INFINITY), 0x7f80);
    /* NaN stays NaN even when only low payload bits are set */
    uint16_t n = bn_f32_to_bf16(bits_f32(0x7f800001u));
    assert_true((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
    n = bn_f32_to_bf16(bits_f32(0xffc00000u));
    assert_true((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0 && (n & 0x8000));
}

/* ---- the type table ------------------------------------------------------------------ */

static void check_type(uint32_t id, const char *name, uint32_t blck, uint32_t size) {
    const bn_type_traits *tt = bn_type_traits_get(id);
    assert_non_null(tt);
    assert_string_equal(tt->name, name);
    assert_int_equal(tt->blck, blck);
    assert_int_equal(tt->type_size, size);
    assert_string_equal(bitnet_type_name((bitnet_type)id), name);
}

static void test_type_table(void **state) {
    (void)state;
    /* Sizes as ggml-common.h's static_asserts state them (QK_K = 256, ggml_half = 2):
     * q4_0 = sizeof(ggml_half) + QK4_0/2; q8_0 = sizeof(ggml_half) + QK8_0;
     * q8_1 = 2*sizeof(ggml_half) + QK8_1; q2_K = 2*sizeof(ggml_half) + QK_K/16 + QK_K/4;
     * q4_K = 2*sizeof(ggml_half) + K_SCALE_SIZE(12) + QK_K/2;
     * q6_K = sizeof(ggml_half) + QK_K/16 + 3*QK_K/4;
     * q8_K = sizeof(float) + QK_K + QK_K/16*sizeof(int16_t);
     * iq3_s = sizeof(ggml_half) + 13*(QK_K/32) + QK_K/64; iq1_m = QK_K/8 + QK_K/16 + QK_K/32;
     * iq4_xs = sizeof(ggml_half) + sizeof(uint16_t) + QK_K/64 + QK_K/2;
     * tq1_0 = sizeof(ggml_half) + QK_K/64 + (QK_K - 4*QK_K/64)/5; tq2_0 = sizeof(ggml_half) + QK_K/4. */
    check_type(0, "F32", 1, 4);
    check_type(1, "F16", 1, 2);
    check_type(2, "Q4_0", 32, 2 + 32 / 2);
    check_type(3, "Q4_1", 32, 2 * 2 + 32 / 2);
    check_type(6, "Q5_0", 32, 2 + 4 + 32 / 2);
    check_type(7, "Q5_1", 32, 2 * 2 + 4 + 32 / 2);
    check_type(8, "Q8_0", 32, 2 + 32);
    check_type(9, "Q8_1", 32, 2 * 2 + 32);
    check_type(10, "Q2_K", 256, 2 * 2 + 256 / 16 + 256 / 4);
    check_type(11, "Q3_K", 256, 2 + 256 / 4 + 256 / 8 + 12);
    check_type(12, "Q4_K", 256, 2 * 2 + 12 + 256 / 2);
    check_type(13, "Q5_K", 256, 2 * 2 + 12 + 256 / 2 + 256 / 8);
    check_type(14, "Q6_K", 256, 2 + 256 / 16 + 3 * 256 / 4);
    check_type(15, "Q8_K", 256, 4 + 256 + 256 / 16 * 2);
    check_type(16, "IQ2_XXS", 256, 2 + 256 / 8 * 2);
    check_type(17, "IQ2_XS", 256, 2 + 256 / 8 * 2 + 256 / 32);
    check_type(18, "IQ3_XXS", 256, 2 + 3 * (256 / 8));
    check_type(19, "IQ1_S", 256, 2 + 256 / 8 + 256 / 16);
    check_type(20, "IQ4_NL", 32, 2 + 32 / 2);
    check_type(21, "IQ3_S", 256, 2 + 13 * (256 / 32) + 256 / 64);
    check_type(22, "IQ2_S", 256, 2 + 256 / 4 + 256 / 16);
    check_type(23, "IQ4_XS", 256, 2 + 2 + 256 / 64 + 256 / 2);
    check_type(24, "I8", 1, 1);
    check_type(25, "I16", 1, 2);
    check_type(26, "I32", 1, 4);
    check_type(27, "I64", 1, 8);
    check_type(28, "F64", 1, 8);
    check_type(29, "IQ1_M", 256, 256 / 8 + 256 / 16 + 256 / 32);
    check_type(30, "BF16", 1, 2);
    check_type(34, "TQ1_0", 256, 2 + 256 / 64 + (256 - 4 * 256 / 64) / 5);
    check_type(35, "TQ2_0", 256, 2 + 256 / 4);
    check_type(36, "I2_S", 1, 1);
    check_type(38, "TL1", 1, 1); /* bitnet.cpp's lookup-table types: whole-tensor sizes */
    check_type(39, "TL2", 1, 1);

    /* retired, refused and out-of-range ids */
    const uint32_t unknown[] = {4, 5, 31, 32, 33, 37, 40, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_null(bn_type_traits_get(unknown[i]));
        assert_null(bitnet_type_name((bitnet_type)unknown[i]));
        assert_int_equal(bitnet_type_is_supported((bitnet_type)unknown[i]), 0);
        assert_int_equal(bitnet_type_row_size((bitnet_type)unknown[i], 256), 0);
    }
    assert_non_null(strstr(bn_type_refusal(37), "I8_S"));
    assert_null(bn_type_refusal(38));
    assert_non_null(strstr(bn_type_refusal(39), "TL2"));
    assert_non_null(strstr(bn_type_refusal(39), "MXFP4"));
    /* TL1 and TL2 cannot be converted row by row (the tiling depends on the shape) */
    for (uint32_t t = 38; t <= 39; t++) {
        assert_int_equal(bitnet_type_is_supported((bitnet_type)t), 0);
        assert_int_equal(bitnet_type_row_size((bitnet_type)t, 256), 0);
    }
    assert_null(bn_type_refusal(40));
    assert_null(bn_type_refusal(0));
    assert_null(bn_type_refusal(36));

    /* support: exactly the types with a dequantizer, plus I2_S */
    const int supported[] = {0, 1, 2, 8, 12, 14, 30, 34, 35, 36};
    for (uint32_t id = 0; id < 64; id++) {
        int want = 0;
        for (size_t i = 0; i < sizeof supported / sizeof supported[0]; i++) want |= (int)id == supported[i];
        assert_int_equal(bitnet_type_is_supported((bitnet_type)id), want);
        const bn_type_traits *tt = bn_type_traits_get(id);
        if (tt && id != 36) assert_int_equal(tt->to_float != NULL, want);
    }
}

static void test_row_size(void **state) {
    (void)state;
    assert_int_equal(bn_row_size(BITNET_TYPE_F32, 10), 40);
    assert_int_equal(bn_row_size(BITNET_TYPE_Q8_0, 64), 68);
    assert_int_equal(bn_row_size(BITNET_TYPE_Q6_K, 512), 420);
    assert_int_equal(bn_row_size(BITNET_TYPE_TQ1_0, 2560), 540);
    assert_int_equal(bn_row_size(BITNET_TYPE_Q8_0, 33), 0);  /* not a multiple of 32 */
    assert_int_equal(bn_row_size(BITNET_TYPE_F32, -1), 0);
    assert_int_equal(bn_row_size(BITNET_TYPE_I2_S, 128), 0);
    assert_int_equal(bn_row_size(BITNET_TYPE_F64, INT64_MAX), 0); /* overflow */
    assert_int_equal(bitnet_type_row_size(BITNET_TYPE_TQ2_0, 512), 132);
    assert_int_equal(bitnet_type_row_size(BITNET_TYPE_I2_S, 512), 0);
}

static void test_tensor_nbytes(void **state) {
    (void)state;
    uint64_t nb = 1;
    const char *why = "x";
    int64_t ne[4] = {4, 3, 1, 1};
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_F32, 2, ne, &nb, &why), BITNET_OK);
    assert_int_equal(nb, 48);
    assert_null(why);
    ne[0] = 64; ne[1] = 2; ne[2] = 3;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_Q8_0, 3, ne, &nb, &why), BITNET_OK);
    assert_int_equal(nb, 2 * 2 * 3 * 34);
    /* I2_S: n/4 + 32 for the whole tensor (2B-4T attn_k: 2560 x 640) */
    ne[0] = 2560; ne[1] = 640;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_I2_S, 2, ne, &nb, &why), BITNET_OK);
    assert_int_equal(nb, 2560 * 640 / 4 + 32);
    /* 0 dims: a scalar */
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_F16, 0, NULL, &nb, &why), BITNET_OK);
    assert_int_equal(nb, 2);
    /* a zero dimension is an empty tensor */
    ne[0] = 256; ne[1] = 0;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_Q6_K, 2, ne, &nb, &why), BITNET_OK);
    assert_int_equal(nb, 0);

    /* ne0 % blck */
    ne[0] = 33; ne[1] = 1;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_Q8_0, 2, ne, &nb, &why), BITNET_E_FORMAT);
    assert_non_null(why);
    assert_non_null(strstr(why, "block size"));
    /* ne0 % blck even though the total is a multiple of the block size */
    ne[0] = 16; ne[1] = 2;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_Q8_0, 2, ne, &nb, &why), BITNET_E_FORMAT);
    /* element count overflow */
    ne[0] = INT64_MAX; ne[1] = 2;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_F32, 2, ne, &nb, &why), BITNET_E_FORMAT);
    assert_non_null(strstr(why, "overflow"));
    ne[0] = (int64_t)1 << 32; ne[1] = (int64_t)1 << 31; /* 2^63 */
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_I8, 2, ne, &nb, &why), BITNET_E_FORMAT);
    ne[0] = (int64_t)1 << 32; ne[1] = (int64_t)1 << 16; ne[2] = (int64_t)1 << 16; /* 2^64: wraps to 0 */
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_I8, 3, ne, &nb, &why), BITNET_E_FORMAT);
    /* byte count overflow: 2^61 F64 = 2^64 bytes; 2^61 F32 = 2^63 bytes (> INT64_MAX) */
    ne[0] = (int64_t)1 << 61;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_F64, 1, ne, &nb, &why), BITNET_E_FORMAT);
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_F32, 1, ne, &nb, &why), BITNET_E_FORMAT);
    ne[0] = (int64_t)1 << 60;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_F32, 1, ne, &nb, &why), BITNET_OK);
    assert_int_equal(nb, (uint64_t)1 << 62);
    /* Q8_K: 2^60 elements = 2^52 blocks * 292 bytes fits; 2^63 - 256 elements =
     * (2^55 - 1) blocks * 292 bytes ~ 1.05e19 > INT64_MAX does not */
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_Q8_K, 1, ne, &nb, &why), BITNET_OK);
    assert_int_equal(nb, ((uint64_t)1 << 52) * 292);
    ne[0] = INT64_MAX - 255;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_Q8_K, 1, ne, &nb, &why), BITNET_E_FORMAT);
    /* I2_S with the largest element count */
    ne[0] = INT64_MAX;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_I2_S, 1, ne, &nb, &why), BITNET_OK);
    assert_int_equal(nb, (uint64_t)INT64_MAX / 4 + 32);
    /* negative dims, too many dims, unknown and refused types */
    ne[0] = 32; ne[1] = -1;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_F32, 2, ne, &nb, &why), BITNET_E_FORMAT);
    ne[1] = 1;
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_F32, 5, ne, &nb, &why), BITNET_E_FORMAT);
    assert_int_equal(bn_tensor_nbytes(40, 1, ne, &nb, &why), BITNET_E_FORMAT);
    assert_non_null(why);
    assert_int_equal(bn_tensor_nbytes(37, 1, ne, &nb, &why), BITNET_E_FORMAT);
    assert_ptr_equal(why, bn_type_refusal(37));
    /* TL1: n/4 + 32 like I2_S; TL2: bitnet.cpp's formula (ggml_nbytes) for 2-D tensors
     * of ne0 >= 256: the 3B model's 3200 x 8640 ffn_up is
     * (3200 - 256) * 8640 / 3 * 5 / 8 + 256 * 8640 / 2 * 4 / 8 = 5299200 + 552960,
     * rounded up to 32, + 32 */
    int64_t m3[2] = {3200, 8640};
    assert_int_equal(bn_tensor_nbytes(38, 2, m3, &nb, &why), BITNET_OK);
    assert_int_equal(nb, 3200 * 8640 / 4 + 32);
    assert_int_equal(bn_tensor_nbytes(39, 2, m3, &nb, &why), BITNET_OK);
    assert_int_equal(nb, (5299200 + 552960 + 31) / 32 * 32 + 32);
    assert_int_equal(bn_tensor_nbytes(39, 1, m3, &nb, &why), BITNET_E_FORMAT);
    int64_t narrow[2] = {128, 4};
    assert_int_equal(bn_tensor_nbytes(39, 2, narrow, &nb, &why), BITNET_E_FORMAT);
    /* why and nbytes may be NULL */
    assert_int_equal(bn_tensor_nbytes(BITNET_TYPE_F32, 1, ne, NULL, NULL), BITNET_OK);
    assert_int_equal(bn_tensor_nbytes(37, 1, ne, NULL, NULL), BITNET_E_FORMAT);
}

/* ---- dequantizers on hand-built blocks ------------------------------------------------ */

static void dequant(uint32_t type, const void *src, float *dst, int64_t n) {
    const bn_type_traits *tt = bn_type_traits_get(type);
    assert_non_null(tt);
    assert_non_null(tt->to_float);
    tt->to_float(src, dst, n);
}

static void quant(uint32_t type, const float *src, void *dst, int64_t n) {
    const bn_type_traits *tt = bn_type_traits_get(type);
    assert_non_null(tt);
    assert_non_null(tt->from_float);
    tt->from_float(src, dst, n);
}

static void test_dequant_plain(void **state) {
    (void)state;
    float f[3] = {1.5f, -0.0f, 3e38f}, out[3];
    dequant(BITNET_TYPE_F32, f, out, 3);
    assert_memory_equal(f, out, sizeof f);

    uint8_t h[8];
    put_u16(h + 0, 0x3c00); /* 1.0  */
    put_u16(h + 2, 0xc000); /* -2.0 */
    put_u16(h + 4, 0x0001); /* 2^-24 */
    put_u16(h + 6, 0x7bff); /* 65504 */
    float o4[4];
    dequant(BITNET_TYPE_F16, h, o4, 4);
    assert_true(o4[0] == 1.0f && o4[1] == -2.0f && o4[2] == 0x1p-24f && o4[3] == 65504.0f);

    put_u16(h + 0, 0x3f80); /* 1.0 */
    put_u16(h + 2, 0x40c0); /* 6.0 */
    put_u16(h + 4, 0xbe00); /* -0.125 */
    put_u16(h + 6, 0x7f80); /* inf */
    dequant(BITNET_TYPE_BF16, h, o4, 4);
    assert_true(o4[0] == 1.0f && o4[1] == 6.0f && o4[2] == -0.125f && isinf(o4[3]));
}

static void test_dequant_q8_0(void **state) {
    (void)state;
    uint8_t b[2 * 34];
    put_u16(b, 0x3800);      /* d = 0.5 */
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(j - 16);
    put_u16(b + 34, 0xc000); /* d = -2 */
    for (int j = 0; j < 32; j++) b[36 + j] = (uint8_t)(0x80 + 8 * j); /* -128, -120, ... */
    float out[64];
    dequant(BITNET_TYPE_Q8_0, b, out, 64);
    for (int j = 0; j < 32; j++) {
        assert_true(out[j] == 0.5f * (float)(j - 16));
        assert_true(out[32 + j] == -2.0f * (float)(-128 + 8 * j));
    }
}

static void test_dequant_q4_0(void **state) {
    (void)state;
    uint8_t b[18];
    put_u16(b, 0x3400); /* d = 0.25 */
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    float out[32];
    dequant(BITNET_TYPE_Q4_0, b, out, 32);
    for (int j = 0; j < 16; j++) {
        assert_true(out[j] == 0.25f * (float)(j - 8));       /* low nibble  */
        assert_true(out[16 + j] == 0.25f * (float)(7 - j));  /* high nibble */
    }
}

static void test_dequant_q4_k(void **state) {
    (void)state;
    /* 6-bit scales and mins of the 8 sub-blocks, chosen so that the high two bits
     * (stored apart for sub-blocks 4..7) are exercised. */
    const int sc[8] = {1, 63, 17, 40, 33, 62, 5, 48};
    const int mn[8] = {0, 9, 63, 21, 50, 3, 44, 16};
    uint8_t b[144];
    memset(b, 0, sizeof b);
    put_u16(b, 0x3800);     /* d = 0.5     */
    put_u16(b + 2, 0x3400); /* dmin = 0.25 */
    uint8_t *s = b + 4;
    for (int j = 0; j < 4; j++) {
        /* bytes 0..3: scale j (6 bits) + top 2 bits of scale j+4 */
        s[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        /* bytes 4..7: min j + top 2 bits of min j+4 */
        s[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
        /* bytes 8..11: low 4 bits of scale j+4 | low 4 bits of min j+4 << 4 */
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
    uint8_t *qs = b + 16;
    for (int i = 0; i < 128; i++) qs[i] = (uint8_t)((i * 7 + 3) & 0xff);
    float out[256];
    dequant(BITNET_TYPE_Q4_K, b, out, 256);
    for (int i = 0; i < 256; i++) {
        int sub = i / 32;               /* sub-block of element i                      */
        int byte = 32 * (sub / 2) + i % 32; /* sub-blocks 2c, 2c+1 share bytes 32c..32c+31 */
        int q = (sub % 2 == 0) ? (qs[byte] & 15) : (qs[byte] >> 4);
        float want = 0.5f * (float)sc[sub] * (float)q - 0.25f * (float)mn[sub];
        assert_float_equal(out[i], want, 1e-6);
    }
}

static void test_dequant_q6_k(void **state) {
    (void)state;
    int q[256];
    int8_t sc[16];
    for (int i = 0; i < 256; i++) q[i] = (i * 37 + 11) % 64; /* all 64 codes occur */
    for (int s = 0; s < 16; s++) sc[s] = (int8_t)(s * 17 - 128);
    uint8_t b[210];
    memset(b, 0, sizeof b);
    /* Pack from the layout: element i is in half h = i/128; with r = i%128, group
     * g = r/32 and l = r%32 its low nibble goes to ql[64h + l] (g = 0: low, 2: high)
     * or ql[64h + 32 + l] (g = 1: low, 3: high), and its top 2 bits to bits 2g..2g+1
     * of qh[32h + l]. */
    for (int i = 0; i < 256; i++) {
        int h = i / 128, r = i % 128, g = r / 32, l = r % 32;
        uint8_t *ql = b + 64 * h + ((g & 1) ? 32 : 0) + l;
        *ql |= (uint8_t)((q[i] & 15) << ((g & 2) ? 4 : 0));
        b[128 + 32 * h + l] |= (uint8_t)((q[i] >> 4) << (2 * g));
    }
    memcpy(b + 192, sc, 16);
    put_u16(b + 208, 0x2c00); /* d = 2^-4 */
    float out[256];
    dequant(BITNET_TYPE_Q6_K, b, out, 256);
    for (int i = 0; i < 256; i++) {
        float want = 0.0625f * (float)sc[i / 16] * (float)(q[i] - 32);
        assert_float_equal(out[i], want, 1e-6);
    }
}

static void test_dequant_tq2_0(void **state) {
    (void)state;
    int t[256];
    for (int i = 0; i < 256; i++) t[i] = (i * 5 + i / 7) % 3;
    uint8_t b[66];
    memset(b, 0, sizeof b);
    for (int i = 0; i < 256; i++) {
        int c = i / 128, k = (i % 128) / 32, m = i % 32;
        b[32 * c + m] |= (uint8_t)(t[i] << (2 * k));
    }
    put_u16(b + 64, 0x3e00); /* d = 1.5 */
    float out[256];
    dequant(BITNET_TYPE_TQ2_0, b, out, 256);
    for (int i = 0; i < 256; i++) assert_true(out[i] == 1.5f * (float)(t[i] - 1));
    memset(b, 0x55, 64); /* all trit 1 = 0 */
    b[0] = 0xa4;         /* 0b10100100: trits 0, 1, 2, 2 for elements 0, 32, 64, 96 */
    dequant(BITNET_TYPE_TQ2_0, b, out, 256);
    assert_true(out[0] == -1.5f && out[32] == 0.0f && out[64] == 1.5f && out[96] == 1.5f);
    for (int i = 0; i < 256; i++)
        if (i != 0 && i != 32 && i != 64 && i != 96) assert_true(out[i] == 0.0f);
}

/* TQ1_0 byte from base-3 digits, most significant first (n digits), rescaled to
 * 0..255 by ceil(q*256/243) as the published format defines. */
static uint8_t tq1_byte(const int *digits, int n) {
    unsigned q = 0;
    for (int k = 0; k < n; k++) q = q * 3 + (unsigned)digits[k];
    for (int k = n; k < 5; k++) q *= 3; /* qh bytes: 4 digits, then one more x3 */
    unsigned r = (q * 256 + 242) / 243;
    assert_true(r <= 255);
    return (uint8_t)r;
}

static void test_dequant_tq1_0(void **state) {
    (void)state;
    uint8_t b[54];
    float out[256];
    /* Known bytes first.  0 = all digits 0; 255 = all digits 2 (q = 242);
     * trits (1,0,0,0,0) = q 81 -> ceil(81*256/243) = ceil(85.33) = 86. */
    memset(b, 0, sizeof b);
    b[0] = 255;
    b[1] = 86;
    put_u16(b + 52, 0x3c00);
    dequant(BITNET_TYPE_TQ1_0, b, out, 256);
    for (int n = 0; n < 5; n++) {
        assert_true(out[32 * n + 0] == 1.0f);             /* byte 0: all +1        */
        assert_true(out[32 * n + 1] == (n == 0 ? 0.0f : -1.0f)); /* byte 1: 1,0,0,0,0 */
        assert_true(out[32 * n + 2] == -1.0f);
    }
    for (int i = 160; i < 256; i++) assert_true(out[i] == -1.0f);

    /* A full block with every element's digit set from a pattern. */
    int t[256];
    for (int i = 0; i < 256; i++) t[i] = (i * 7 + i / 11) % 3;
    memset(b, 0, sizeof b);
    int dg[5];
    for (int m = 0; m < 32; m++) { /* elements 32n + m */
        for (int n = 0; n < 5; n++) dg[n] = t[32 * n + m];
        b[m] = tq1_byte(dg, 5);
    }
    for (int m = 0; m < 16; m++) { /* elements 160 + 16n + m */
        for (int n = 0; n < 5; n++) dg[n] = t[160 + 16 * n + m];
        b[32 + m] = tq1_byte(dg, 5);
    }
    for (int j = 0; j < 4; j++) { /* elements 240 + 4n + j */
        for (int n = 0; n < 4; n++) dg[n] = t[240 + 4 * n + j];
        b[48 + j] = tq1_byte(dg, 4);
    }
    put_u16(b + 52, 0xb600); /* d = -0.375 */
    dequant(BITNET_TYPE_TQ1_0, b, out, 256);
    for (int i = 0; i < 256; i++) assert_true(out[i] == -0.375f * (float)(t[i] - 1));

    /* the encoder writes exactly these bytes for the same trits (d = +0.375) */
    float x[256];
    uint8_t enc[54];
    for (int i = 0; i < 256; i++) x[i] = 0.375f * (float)(t[i] - 1);
    quant(BITNET_TYPE_TQ1_0, x, enc, 256);
    assert_memory_equal(enc, b, 52);
    assert_int_equal(bn_rd_u16(enc + 52), 0x3600);

    /* every 5-digit byte value decodes to its digits */
    for (int q = 0; q < 243; q++) {
        int d5[5] = {q / 81, q / 27 % 3, q / 9 % 3, q / 3 % 3, q % 3};
        memset(b, 0x00, sizeof b);
        b[7] = tq1_byte(d5, 5);
        put_u16(b + 52, 0x3c00);
        dequant(BITNET_TYPE_TQ1_0, b, out, 256);
        for (int n = 0; n < 5; n++) assert_true(out[32 * n + 7] == (float)(d5[n] - 1));
    }
}

/* I2_S tensor of n elements built by hand: code c (0..2) of element i goes to byte
 * 32*(i/128) + i%32 at bit 6 - 2*((i%128)/32). */
static void test_i2s_layout_by_hand(void **state) {
    (void)state;
    enum { N = 384 };
    uint8_t t[N / 4 + 32];
    int code[N];
    memset(t, 0, sizeof t);
    for (int i = 0; i < N; i++) {
        code[i] = (i * 13 + i / 5) % 3;
        t[32 * (i / 128) + i % 32] |= (uint8_t)(code[i] << (6 - 2 * ((i % 128) / 32)));
    }
    float scale = 0.8125f;
    memcpy(t + N / 4, &scale, 4);
    assert_true(bn_i2s_scale(t, N) == scale);
    for (int i = 0; i < N; i++) assert_int_equal(bn_i2s_get(t, i), code[i] - 1);
    float out[N];
    bn_i2s_dequant(t, N, 0, N, out);
    for (int i = 0; i < N; i++) assert_true(out[i] == scale * (float)(code[i] - 1));
    bn_i2s_dequant(t, N, 128, 256, out); /* a sub-range */
    for (int i = 0; i < 256; i++) assert_true(out[i] == scale * (float)(code[128 + i] - 1));

    /* byte 0 = 0b10010000: element 0 -> code 2 (+1), 32 -> 1 (0), 64 -> 0 (-1), 96 -> 0 */
    memset(t, 0x55, N / 4);
    t[0] = 0x90;
    assert_int_equal(bn_i2s_get(t, 0), 1);
    assert_int_equal(bn_i2s_get(t, 32), 0);
    assert_int_equal(bn_i2s_get(t, 64), -1);
    assert_int_equal(bn_i2s_get(t, 96), -1);
    assert_int_equal(bn_i2s_get(t, 1), 0);
    /* code 3 reads as +2 (the loader rejects it) */
    t[33] = 0xc0 | 0x15; /* element 128+1 */
    assert_int_equal(bn_i2s_get(t, 129), 2);
}

/* ---- quantizers -------------------------------------------------------------------- */

static void test_roundtrip_float_types(void **state) {
    (void)state;
    enum { N = 1024 };
    float x[N], y[N];
    uint8_t buf[N * 4];
    for (int i = 0; i < N; i++) x[i] = frand() * ldexpf(1.0f, i % 20 - 10);
    quant(BITNET_TYPE_F32, x, buf, N);
    dequant(BITNET_TYPE_F32, buf, y, N);
    assert_memory_equal(x, y, sizeof x);
    quant(BITNET_TYPE_F16, x, buf, N);
    dequant(BITNET_TYPE_F16, buf, y, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(bn_rd_u16(buf + 2 * i), bn_f32_to_f16(x[i]));
        if (fabsf(x[i]) >= 0x1p-14f) assert_true(fabsf(y[i] - x[i]) <= fabsf(x[i]) * 0x1p-11f);
        else assert_true(fabsf(y[i] - x[i]) <= 0x1p-25f);
    }
    quant(BITNET_TYPE_BF16, x, buf, N);
    dequant(BITNET_TYPE_BF16, buf, y, N);
    for (int i = 0; i < N; i++) assert_true(fabsf(y[i] - x[i]) <= fabsf(x[i]) * 0x1p-8f);
}

static void test_roundtrip_q8_0(void **state) {
    (void)state;
    enum { N = 32 * 8 };
    float x[N], y[N];
    uint8_t buf[8 * 34];
    for (int i = 0; i < N; i++) x[i] = frand() * (float)(1 + i / 32);
    for (int j = 0; j < 32; j++) x[32 * 5 + j] = 0.0f; /* an all-zero block */
    quant(BITNET_TYPE_Q8_0, x, buf, N);
    dequant(BITNET_TYPE_Q8_0, buf, y, N);
    for (int b = 0; b < 8; b++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
        float d = amax / 127.0f;
        /* d as specified, stored as f16 */
        assert_int_equal(bn_rd_u16(buf + 34 * b), bn_f32_to_f16(d));
        for (int j = 0; j < 32; j++) {
            int q = (int8_t)buf[34 * b + 2 + j];
            assert_true(q >= -127 && q <= 127);
            /* half a step, plus the f16 error of d times |q| <= 127 */
            assert_true(fabsf(y[32 * b + j] - x[32 * b + j]) <= d * 0.5f + 127.0f * d * 0x1p-11f + 1e-7f);
        }
    }
    for (int j = 0; j < 32; j++) assert_true(y[32 * 5 + j] == 0.0f);
}

static void test_roundtrip_q6_k(void **state) {
    (void)state;
    enum { NB = 6, N = 256 * NB };
    float x[N], y[N];
    uint8_t buf[NB * 210];
    for (int i = 0; i < N; i++) x[i] = frand() * (float)(1 + (i / 16) % 5); /* sub-blocks differ */
    for (int i = 256; i < 512; i++) x[i] = 0.0f;                         /* zero block */
    for (int i = 512; i < 768; i++) x[i] = (i % 16 == 3) ? -4.0f : 0.0f; /* spikes */
    for (int i = 768; i < 1024; i++) x[i] = 1e-3f * frand();            /* d is an f16 subnormal */
    for (int i = 1024; i < 1280; i++) x[i] = (i < 1040) ? 100.0f * frand() : 0.01f * frand(); /* one big sub-block */
    quant(BITNET_TYPE_Q6_K, x, buf, N);
    dequant(BITNET_TYPE_Q6_K, buf, y, N);
    for (int b = 0; b < NB; b++) {
        float bmax = 0.0f;
        double se = 0.0;
        for (int j = 0; j < 256; j++) bmax = fmaxf(bmax, fabsf(x[256 * b + j]));
        for (int s = 0; s < 16; s++) {
            float smax = 0.0f;
            for (int l = 0; l < 16; l++) smax = fmaxf(smax, fabsf(x[256 * b + 16 * s + l]));
            for (int l = 0; l < 16; l++) {
                int i = 256 * b + 16 * s + l;
                float err = fabsf(y[i] - x[i]);
                /* one quantization step of this sub-block (about smax/32) plus the
                 * rounding of its 8-bit scale (bmax/(32*127)/2 per unit of q) */
                assert_true(err <= smax / 31.0f + 16.0f * bmax / (32.0f * 127.0f) + 1e-7f);
                se += (double)err * err;
            }
        }
        assert_true(sqrt(se / 256) <= bmax / 60.0 + 1e-9);
    }
    for (int i = 256; i < 512; i++) assert_true(y[i] == 0.0f);
    for (int i = 512; i < 768; i++) assert_float_equal(y[i], x[i], 4.0f / 64.0f);

    /* magnitudes from 2^-30 (d rounds to the smallest f16 subnormal) to 2^26: the
     * stored d (f16, rounded up) and every |scale| <= 127 keep the error within one
     * step of the sub-block plus the scale's own rounding (16 * d). */
    for (int e = -30; e <= 26; e += 2) {
        for (int i = 0; i < 256; i++) x[i] = ldexpf(frand(), e) * (float)(1 + (i / 16) % 4);
        quant(BITNET_TYPE_Q6_K, x, buf, 256);
        dequant(BITNET_TYPE_Q6_K, buf, y, 256);
        float d = bn_f16_to_f32(bn_rd_u16(buf + 208));
        assert_true(d > 0.0f && isfinite(d));
        for (int s = 0; s < 16; s++) {
            float smax = 0.0f;
            for (int l = 0; l < 16; l++) smax = fmaxf(smax, fabsf(x[16 * s + l]));
            for (int l = 0; l < 16; l++) {
                float err = fabsf(y[16 * s + l] - x[16 * s + l]);
                assert_true(err <= smax / 32.0f + 16.0f * d * 1.001f);
            }
        }
    }
}

static void ternary_block(float *x, float d, int seed) {
    for (int j = 0; j < 256; j++) x[j] = d * (float)((j * 7 + seed + j / 13) % 3 - 1);
    x[seed % 256] = d; /* max |x| = d in every block */
}

static void test_roundtrip_ternary(void **state) {
    (void)state;
    enum { NB = 4, N = 256 * NB };
    float x[N], y[N];
    uint8_t buf[NB * 66];
    const float ds[NB] = {1.0f, 0.375f, 3.0517578125e-05f /* 2^-15, an f16 subnormal */, 1024.0f};
    const uint32_t types[2] = {BITNET_TYPE_TQ1_0, BITNET_TYPE_TQ2_0};
    for (int ti = 0; ti < 2; ti++) {
        for (int b = 0; b < NB; b++) ternary_block(x + 256 * b, (b == 1 ? -1.0f : 1.0f) * ds[b], b * 31 + ti);
        quant(types[ti], x, buf, N);
        dequant(types[ti], buf, y, N);
        for (int i = 0; i < N; i++) assert_true(y[i] == x[i]); /* exact (-0 == 0) */
        /* zeros stay zeros */
        memset(x, 0, sizeof x);
        quant(types[ti], x, buf, N);
        dequant(types[ti], buf, y, N);
        for (int i = 0; i < N; i++) assert_true(y[i] == 0.0f);
        /* general values: each lands on the nearest of -d, 0, d (d = block max |x|) */
        for (int i = 0; i < N; i++) x[i] = frand() * 2.0f;
        quant(types[ti], x, buf, N);
        dequant(types[ti], buf, y, N);
        for (int b = 0; b < NB; b++) {
            float d = 0.0f;
            for (int j = 0; j < 256; j++) d = fmaxf(d, fabsf(x[256 * b + j]));
            float d16 = bn_f16_to_f32(bn_f32_to_f16(d));
            for (int j = 0; j < 256; j++) {
                float v = x[256 * b + j], r = v / d;
                float want = r > 0.5001f ? d16 : r < -0.5001f ? -d16 : (fabsf(r) < 0.4999f ? 0.0f : y[256 * b + j]);
                assert_true(y[256 * b + j] == want);
            }
        }
    }
    /* the TQ2_0 encoder writes exactly the published layout for a single +d element */
    for (int i = 0; i < 256; i += 17) {
        for (int k = 0; k < 256; k++) x[k] = 0.0f;
        x[i] = 2.0f;
        quant(BITNET_TYPE_TQ2_0, x, buf, 256);
        for (int k = 0; k < 64; k++) {
            int c = i / 128, g = (i % 128) / 32, m = i % 32;
            uint8_t want = (k == 32 * c + m) ? (uint8_t)(0x55 + (1 << (2 * g))) : 0x55;
            assert_int_equal(buf[k], want);
        }
        assert_int_equal(bn_rd_u16(buf + 64), 0x4000);
    }
}

static void test_i2s_quantize_layout(void **state) {
    (void)state;
    enum { N = 256 };
    float x[N];
    uint8_t t[N / 4 + 32];
    /* one non-zero element at a time: exactly its two bits change */
    for (int i = 0; i < N; i++) {
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            memset(x, 0, sizeof x);
            x[i] = 0.5f * (float)sgn;
            memset(t, 0xee, sizeof t);
            bn_i2s_quantize(x, N, t);
            int byte = 32 * (i / 128) + i % 32, shift = 6 - 2 * ((i % 128) / 32);
            int code = sgn > 0 ? 2 : 0;
            for (int k = 0; k < N / 4; k++) {
                uint8_t want = 0x55; /* all codes 1 (= 0) */
                if (k == byte) want = (uint8_t)((0x55 & ~(3 << shift)) | (code << shift));
                assert_int_equal(t[k], want);
            }
            assert_true(bn_rd_f32(t + N / 4) == 0.5f);
            for (int k = N / 4 + 4; k < N / 4 + 32; k++) assert_int_equal(t[k], 0);
        }
    }
    /* ternary input round-trips exactly; the scale is max |x| */
    for (int i = 0; i < N; i++) x[i] = 0.7f * (float)((i * 11 + i / 3) % 3 - 1);
    x[5] = -0.7f;
    bn_i2s_quantize(x, N, t);
    assert_true(bn_i2s_scale(t, N) == 0.7f);
    float y[N];
    bn_i2s_dequant(t, N, 0, N, y);
    assert_memory_equal(x, y, sizeof x);
    /* codes by sign only; |x| < 1e-6 is zero */
    x[0] = 1e-7f; x[1] = -1e-7f; x[2] = 1e-5f; x[3] = -0.01f; x[4] = 3.0f;
    bn_i2s_quantize(x, N, t);
    assert_int_equal(bn_i2s_get(t, 0), 0);
    assert_int_equal(bn_i2s_get(t, 1), 0);
    assert_int_equal(bn_i2s_get(t, 2), 1);
    assert_int_equal(bn_i2s_get(t, 3), -1);
    assert_int_equal(bn_i2s_get(t, 4), 1);
    assert_true(bn_i2s_scale(t, N) == 3.0f);
}

/* ---- the public API ------------------------------------------------------------------ */

static void test_bitnet_quantize_api(void **state) {
    (void)state;
    float x[512];
    uint8_t buf[1024];
    size_t w = 0;
    for (int i = 0; i < 512; i++) x[i] = frand();

    /* success: 2 rows of 256 to Q6_K */
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q6_K, x, 2, 256, buf, sizeof buf, &w), BITNET_OK);
    assert_int_equal(w, 2 * 210);
    /* the same bytes as the row function */
    uint8_t ref[420];
    quant(BITNET_TYPE_Q6_K, x, ref, 512);
    assert_memory_equal(buf, ref, 420);
    /* buffer too small: the size needed is reported */
    w = 0;
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q8_0, x, 4, 128, buf, 100, &w), BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(w, 4 * 4 * 34);
    assert_true(strlen(bitnet_last_error()) > 0);
    /* size query with NULL buffers */
    assert_int_equal(bitnet_quantize(BITNET_TYPE_TQ1_0, NULL, 3, 512, NULL, 0, &w), BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(w, 3 * 2 * 54);
    /* I2_S: one tensor, n/4 + 32 */
    assert_int_equal(bitnet_quantize(BITNET_TYPE_I2_S, x, 2, 256, buf, sizeof buf, &w), BITNET_OK);
    assert_int_equal(w, 512 / 4 + 32);
    assert_int_equal(bitnet_quantize(BITNET_TYPE_I2_S, x, 1, 64, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "multiple of 128"));
    assert_int_equal(bitnet_quantize(BITNET_TYPE_I2_S, x, 3, 100, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    /* rows that end inside a 128-block (the 3B model's 8640-wide ffn_down): the blocks
     * run over the flattened tensor, as bitnet.cpp lays it out -- the same bytes as one
     * long row */
    assert_int_equal(bitnet_quantize(BITNET_TYPE_I2_S, x, 2, 192, buf, sizeof buf, &w), BITNET_OK);
    assert_int_equal(w, 384 / 4 + 32);
    for (int i = 0; i < 384; i++) {
        int want = fabsf(x[i]) < 1e-6f ? 0 : x[i] > 0 ? 1 : -1;
        assert_int_equal(bn_i2s_get(buf, i), want);
    }
    assert_int_equal(bitnet_quantize(BITNET_TYPE_I2_S, x, 1, 384, buf + 512, sizeof buf - 512, &w), BITNET_OK);
    assert_memory_equal(buf, buf + 512, 384 / 4 + 32);
    /* F16 / BF16 / F32 / TQ2_0 work, written may be NULL */
    assert_int_equal(bitnet_quantize(BITNET_TYPE_F16, x, 1, 7, buf, 14, NULL), BITNET_OK);
    assert_int_equal(bn_rd_u16(buf + 12), bn_f32_to_f16(x[6]));
    assert_int_equal(bitnet_quantize(BITNET_TYPE_BF16, x, 1, 3, buf, 6, NULL), BITNET_OK);
    assert_int_equal(bitnet_quantize(BITNET_TYPE_F32, x, 1, 3, buf, 12, NULL), BITNET_OK);
    assert_int_equal(bitnet_quantize(BITNET_TYPE_TQ2_0, x, 2, 256, buf, 132, NULL), BITNET_OK);

    /* refusals */
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q4_K, x, 1, 256, buf, sizeof buf, &w), BITNET_E_UNSUPPORTED);
    assert_non_null(strstr(bitnet_last_error(), "Q4_K"));
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q5_K, x, 1, 256, buf, sizeof buf, &w), BITNET_E_UNSUPPORTED);
    assert_int_equal(bitnet_quantize((bitnet_type)39, x, 1, 256, buf, sizeof buf, &w), BITNET_E_UNSUPPORTED);
    assert_int_equal(bitnet_quantize((bitnet_type)37, x, 1, 256, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_quantize((bitnet_type)4, x, 1, 256, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q8_0, x, 1, 100, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "block size"));
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q8_0, x, -1, 32, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q8_0, x, 1, -32, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q8_0, x, INT64_MAX, 64, buf, sizeof buf, &w),
                     BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q8_0, NULL, 1, 32, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q8_0, x, 1, 32, NULL, sizeof buf, &w), BITNET_E_INVALID_ARG);
    x[40] = NAN;
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q8_0, x, 2, 32, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "src[40]"));
    x[40] = INFINITY;
    assert_int_equal(bitnet_quantize(BITNET_TYPE_I2_S, x, 1, 128, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    /* values whose block scale would overflow f16 */
    x[40] = 65505.0f;
    assert_int_equal(bitnet_quantize(BITNET_TYPE_TQ2_0, x, 1, 256, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "too large"));
    x[40] = -65504.0f; /* the largest f16: fine */
    assert_int_equal(bitnet_quantize(BITNET_TYPE_TQ1_0, x, 1, 256, buf, sizeof buf, &w), BITNET_OK);
    assert_int_equal(bn_rd_u16(buf + 52), 0x7bff);
    x[40] = 65504.0f * 127.0f * 32.0f; /* Q6_K's limit: d = 65504 exactly */
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q6_K, x, 1, 256, buf, sizeof buf, &w), BITNET_OK);
    assert_int_equal(bn_rd_u16(buf + 208), 0x7bff);
    x[40] = 65504.0f * 127.0f * 33.0f;
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q6_K, x, 1, 256, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    x[40] = 65504.0f * 127.0f * 2.0f;
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q8_0, x, 1, 256, buf, sizeof buf, &w), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_quantize(BITNET_TYPE_I2_S, x, 1, 256, buf, sizeof buf, &w), BITNET_OK);
    x[40] = INFINITY;
    /* plain float types carry non-finite values through */
    assert_int_equal(bitnet_quantize(BITNET_TYPE_F16, x, 1, 64, buf, sizeof buf, &w), BITNET_OK);
    assert_int_equal(bn_rd_u16(buf + 80), 0x7c00);
    /* empty input */
    assert_int_equal(bitnet_quantize(BITNET_TYPE_Q8_0, x, 0, 32, buf, sizeof buf, &w), BITNET_OK);
    assert_int_equal(w, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_f16_rounding_all_midpoints),
        cmocka_unit_test(test_f16_special_cases),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_row_size),
        cmocka_unit_test(test_tensor_nbytes),
        cmocka_unit_test(test_dequant_plain),
        cmocka_unit_test(test_dequant_q8_0),
        cmocka_unit_test(test_dequant_q4_0),
        cmocka_unit_test(test_dequant_q4_k),
        cmocka_unit_test(test_dequant_q6_k),
        cmocka_unit_test(test_dequant_tq2_0),
        cmocka_unit_test(test_dequant_tq1_0),
        cmocka_unit_test(test_i2s_layout_by_hand),
        cmocka_unit_test(test_roundtrip_float_types),
        cmocka_unit_test(test_roundtrip_q8_0),
        cmocka_unit_test(test_roundtrip_q6_k),
        cmocka_unit_test(test_roundtrip_ternary),
        cmocka_unit_test(test_i2s_quantize_layout),
        cmocka_unit_test(test_bitnet_quantize_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
