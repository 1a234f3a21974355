/*
 * x86_g16.h -- pieces of the G16 layout's kernels (kernels.h) shared by the AVX-512 and
 * AMX variants (both files are compiled with the AVX-512 flags).  Internal.
 */
#ifndef BN_X86_G16_H
#define BN_X86_G16_H

#include "kernels.h"

#include <immintrin.h>

/* Codes k (0..3) of a G16 chunk: byte 4r + b of the result is the code of row r, column
 * 16c + 4k + b (a shift and a mask). */
static inline __m512i bn_g16_codes(__m512i raw, int k) {
    return _mm512_and_si512(k == 3 ? raw : _mm512_srli_epi16(raw, 6 - 2 * k), _mm512_set1_epi8(3));
}

/* The lanes of G16 group g whose rows lie in [lo, hi), as a mask (0: none). */
static inline __mmask16 bn_g16_rows_mask(int64_t g, int64_t lo, int64_t hi) {
    const int64_t r0 = 16 * g, a = lo > r0 ? lo - r0 : 0, e = hi < r0 + 16 ? hi - r0 : 16;
    return e <= a ? 0 : (__mmask16)(((1u << e) - 1u) & ~((1u << a) - 1u));
}

/* y[16g .. 16g+16) of token xt from its 16 exact sums D, the lanes of mask m:
 * y = ((float)D - (float)S) / a * scale, the scalar reference's float steps. */
static inline void bn_g16_store(const bn_tmat *w, int64_t g, __mmask16 m, const bn_qrow *xt, const int32_t *D,
                                float *yrow) {
    const __m512 d = _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512((const void *)D)), _mm512_set1_ps((float)xt->sum));
    _mm512_mask_storeu_ps(yrow + 16 * g, m,
                          _mm512_mul_ps(_mm512_div_ps(d, _mm512_set1_ps(xt->a)), _mm512_set1_ps(w->scale)));
}

#endif
