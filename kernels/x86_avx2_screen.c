/*
 * x86_avx2_screen.c -- building the screening copy of an F16 output layer with AVX2 +
 * F16C (kernels.h screen_quant; the scalar builder in kernels/layout.c is the oracle and
 * the result is bit-identical to it: tests/unit/test_screen_build.c).
 *
 * Per row: the F16 values become floats (VCVTPH2PS, exact like the scalar conversion),
 * then per block of 64 the max of |w| (exact in any order), sigma = max / qmax and
 * inv = 1 / sigma as scalar float divisions, q = round(w * inv) with VMULPS (one
 * rounding, as the scalar product) and VROUNDPS to nearest-even (as rintf in the
 * default mode), clamped and narrowed with saturation (exact: the values are integers
 * in [-qmax, qmax]).
 */
#include "kernels.h"

#if defined(__x86_64__)

#include "internal.h"

#include <immintrin.h>
#include <string.h>

static inline const uint8_t *bn_avx2s_row(const bn_dmat *w, int64_t r, uint64_t *cs) {
    if (w->layout == BN_DMAT_G4X32 && r < (w->rows & ~(int64_t)3)) {
        *cs = 256;
        return w->data + (uint64_t)(r / 4) * 4 * w->row_bytes + (uint64_t)(r % 4) * 64;
    }
    *cs = 64;
    return w->data + (uint64_t)r * w->row_bytes;
}

void bn_avx2_screen_quant(const bn_dmat *w, int64_t r0, int64_t r1, int qmax, bn_smat *s, float *x) {
    const float fq = (float)qmax;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 hi = _mm256_set1_ps(fq), lo = _mm256_set1_ps(-fq);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const int64_t full = w->cols / 32;
    for (int64_t r = r0; r < r1; r++) {
        if (r >= s->rows) {
            for (int64_t b = 0; b < s->nb; b++) {
                memset(BN_SMAT_Q(s, r, b), 0, BN_SCREEN_BLOCK);
                *BN_SMAT_SIGMA(s, r, b) = 0.0f;
            }
            continue;
        }
        uint64_t cs;
        const uint8_t *p = bn_avx2s_row(w, r, &cs);
        for (int64_t c = 0; c < full; c++) {
            const uint8_t *src = p + (uint64_t)c * cs;
            float *d = x + 32 * c;
            _mm256_storeu_ps(d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)src)));
            _mm256_storeu_ps(d + 8, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 16))));
            _mm256_storeu_ps(d + 16, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 32))));
            _mm256_storeu_ps(d + 24, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 48))));
        }
        for (int64_t c = 32 * full; c < w->cols; c++) x[c] = bn_f16_to_f32(bn_rd_u16(p + (uint64_t)full * cs + 2 * (uint64_t)(c % 32)));
        for (int64_t c = w->cols; c < s->cols_pad; c++) x[c] = 0.0f;
        for (int64_t b = 0; b < s->nb; b++) {
            const float *xb = x + BN_SCREEN_BLOCK * b;
            __m256 v[8];
            for (int i = 0; i < 8; i++) v[i] = _mm256_loadu_ps(xb + 8 * i);
            __m256 m0 = _mm256_max_ps(_mm256_and_ps(v[0], absmask), _mm256_and_ps(v[1], absmask));
            __m256 m1 = _mm256_max_ps(_mm256_and_ps(v[2], absmask), _mm256_and_ps(v[3], absmask));
            __m256 m2 = _mm256_max_ps(_mm256_and_ps(v[4], absmask), _mm256_and_ps(v[5], absmask));
            __m256 m3 = _mm256_max_ps(_mm256_and_ps(v[6], absmask), _mm256_and_ps(v[7], absmask));
            m0 = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
            const float mx = _mm_cvtss_f32(h);
            const float sg = mx / fq, inv = sg > 0.0f ? 1.0f / sg : 0.0f;
            *BN_SMAT_SIGMA(s, r, b) = sg;
            const __m256 vinv = _mm256_set1_ps(inv);
            __m256i qi[8];
            for (int i = 0; i < 8; i++) {
                __m256 t = _mm256_round_ps(_mm256_mul_ps(v[i], vinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
                qi[i] = _mm256_cvtps_epi32(t);
            }
            int8_t *q = BN_SMAT_Q(s, r, b);
            for (int i = 0; i < 8; i += 4) {
                const __m256i ab = _mm256_packs_epi32(qi[i], qi[i + 1]), cd = _mm256_packs_epi32(qi[i + 2], qi[i + 3]);
                const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), perm);
                _mm256_storeu_si256((__m256i *)(q + 8 * i), bytes);
            }
        }
    }
}

#endif /* __x86_64__ */
