/*
 * x86_amx.c -- AMX-INT8 tiles for the ternary matmul of many tokens (prompts, batches).
 * Compiled with the AVX-512 flags plus -mamx-tile -mamx-int8; selected at run time when
 * CPUID, XCR0 and the Linux permission for tile data allow it (kernels/cpu.c).  Every
 * other slot, and the layouts, are the AVX-512 variant's (dispatch.c fills this table's
 * NULL slots from it): decode reads each weight once and stays on VPDPBUSD.
 *
 * One TDPBUSD multiplies a 16 x 64 tile of unsigned bytes by a 64 x 16 tile of signed
 * bytes into 16 x 16 int32 sums without saturation, so the sums are exact and the
 * results the same bits as the scalar reference's:
 *   - A (weights): 16 rows x 64 consecutive columns of codes 0/1/2.  A G4X256 chunk
 *     (64 bytes = 256 weights of a row, byte i holding weights i, 64+i, 128+i, 192+i)
 *     gives four such 64-column pieces with a shift and a mask each, so a block of 32
 *     rows is expanded once into a per-thread buffer (row-major, cols_pad bytes a row)
 *     and then serves every token tile;
 *   - B (activations): act_pack lays the int8 rows out once per matrix input as tiles
 *     of 16 tokens x 64 columns in AMX's B order, row k of a tile holding for token n
 *     the four values 64c+4k .. 64c+4k+3 at bytes 4n .. 4n+3 (a 16 x 16 transpose of
 *     32-bit words);
 *   - C = D[row][token] = sum(code * q); y = ((float)D - (float)S) / a * scale per token,
 *     after a 16 x 16 transpose so each token's 16 rows go out in one store.
 * Blocking: 2 x 2 tiles (two row tiles x two token tiles: four TDPBUSD per four tile
 * loads), tokens in passes of BN_AMX_TPASS so a pass's packed activations stay in L2.
 */
#if defined(__x86_64__)
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AMX_TILE__) || !defined(__AMX_INT8__)
#error "x86_amx.c must be compiled with the AVX-512 flags and -mamx-tile -mamx-int8"
#endif

#include "kernels.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

extern const bn_kernels bn_kernels_avx512;

#define BN_AMX_RB    32  /* weight rows per block: two A tiles                       */
#define BN_AMX_TPASS 128 /* tokens per pass over a block of rows (eight B tiles)      */
/* Up to this many tokens, groups of 32 re-expand each block of rows into L1 pieces (codes
 * re-read from L2) rather than expanding it once into the per-thread buffer: measured
 * faster at 64 tokens (1.07-1.15x, tests/bench/bench_kernels.c), slower at 128. */
#define BN_AMX_FEW_MAX 64

/* ---- 16 x 16 transpose of 32-bit words ------------------------------------------------ */

static inline __attribute__((always_inline)) void bn_amx_tr16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) { /* per 128-bit lane: pairs of rows interleaved */
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) { /* u[g + m], lane L: column 4L + m of rows g .. g+3 */
        u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    for (int m = 0; m < 4; m++) { /* a 4 x 4 transpose of 128-bit lanes among u[m + 4g] */
        const __m512i v0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x88), v1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xdd);
        const __m512i w0 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x88),
                      w1 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xdd);
        r[m] = _mm512_shuffle_i32x4(v0, w0, 0x88);
        r[8 + m] = _mm512_shuffle_i32x4(v0, w0, 0xdd);
        r[4 + m] = _mm512_shuffle_i32x4(v1, w1, 0x88);
        r[12 + m] = _mm512_shuffle_i32x4(v1, w1, 0xdd);
    }
}

/* ---- activations: tiles of 16 tokens x 64 columns in B order ------------------------- */

static void bn_amx_act_pack(const bn_qrow *x, int64_t n_tok, int64_t n_pad, int8_t *dst) {
    const int64_t nc = n_pad / 64;
    for (int64_t t0 = 0; t0 < n_tok; t0 += BN_ACT_PACK_TOK) {
        const int64_t nt = n_tok - t0 < BN_ACT_PACK_TOK ? n_tok - t0 : BN_ACT_PACK_TOK;
        int8_t *tile = dst + (size_t)(t0 / BN_ACT_PACK_TOK) * (size_t)nc * 1024;
        for (int64_t c = 0; c < nc; c++) {
            __m512i r[16];
            for (int n = 0; n < 16; n++)
                r[n] = n < nt ? _mm512_loadu_si512((const void *)(x[t0 + n].q + 64 * c)) : _mm512_setzero_si512();
            bn_amx_tr16(r);
            for (int k = 0; k < 16; k++) _mm512_store_si512((void *)(tile + 1024 * c + 64 * k), r[k]);
        }
    }
}

/* ---- the per-thread buffer of expanded weight rows ------------------------------------ */

static pthread_key_t bn_amx_key;
static pthread_once_t bn_amx_key_once = PTHREAD_ONCE_INIT;
static int bn_amx_key_ok;
static void bn_amx_key_make(void) { bn_amx_key_ok = pthread_key_create(&bn_amx_key, free) == 0; }

/* A 64-byte aligned buffer of at least n bytes owned by this thread (freed when it
 * exits), or NULL. */
static uint8_t *bn_amx_buf(size_t n) {
    static __thread uint8_t *buf;
    static __thread size_t cap;
    if (cap >= n) return buf;
    pthread_once(&bn_amx_key_once, bn_amx_key_make);
    if (!bn_amx_key_ok) return NULL;
    uint8_t *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) return NULL;
    if (pthread_setspecific(bn_amx_key, p) != 0) {
        free(p);
        return NULL;
    }
    free(buf);
    buf = p;
    cap = n;
    return p;
}

/* Rows [j, j + nr) of a G4X256 matrix as codes, one byte each, at dst + i * cols_pad;
 * rows nr .. up to the end of the last 16-row tile are zero. */
static void bn_amx_expand(const bn_tmat *w, int64_t j, int nr, uint8_t *dst) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const int64_t nc = w->cols_pad / 256;
    for (int i = 0; i < nr; i++) {
        const int64_t r = j + i;
        const uint8_t *src = w->codes + (r / 4) * 4 * w->row_bytes + (r % 4) * 64;
        uint8_t *d = dst + (size_t)i * (size_t)w->cols_pad;
        for (int64_t c = 0; c < nc; c++) {
            const __m512i z = _mm512_load_si512((const void *)(src + 256 * c));
            _mm512_store_si512((void *)(d + 256 * c), _mm512_and_si512(_mm512_srli_epi16(z, 6), m3));
            _mm512_store_si512((void *)(d + 256 * c + 64), _mm512_and_si512(_mm512_srli_epi16(z, 4), m3));
            _mm512_store_si512((void *)(d + 256 * c + 128), _mm512_and_si512(_mm512_srli_epi16(z, 2), m3));
            _mm512_store_si512((void *)(d + 256 * c + 192), _mm512_and_si512(z, m3));
        }
    }
    const int nz = (nr + 15) / 16 * 16;
    if (nz > nr) memset(dst + (size_t)nr * (size_t)w->cols_pad, 0, (size_t)(nz - nr) * (size_t)w->cols_pad);
}

/* ---- the tiles --------------------------------------------------------------------------- */

/* Tiles 0-3: C (row tile i, token tile k at 2i + k); 4-5: A (row tiles); 6-7: B. */
static void bn_amx_config(void) {
    struct {
        uint8_t palette, start_row, rsv[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
}

/* y for one C tile: rows j .. j+nr-1 (nr <= 16), tokens t0 .. t0+nt-1 (nt <= 16). */
static void bn_amx_store(const bn_tmat *w, int64_t j, int nr, const bn_qrow *x, int64_t t0, int nt,
                         const int32_t *C, float *y, int64_t ldy) {
    __m512i r[16];
    for (int m = 0; m < 16; m++) r[m] = _mm512_load_si512((const void *)(C + 16 * m));
    bn_amx_tr16(r); /* r[n]: token n's sums of the 16 rows */
    const __mmask16 mk = (__mmask16)((1u << nr) - 1u);
    const __m512 sc = _mm512_set1_ps(w->scale);
    for (int n = 0; n < nt; n++) {
        const bn_qrow *xt = &x[t0 + n];
        __m512 v = _mm512_sub_ps(_mm512_cvtepi32_ps(r[n]), _mm512_set1_ps((float)xt->sum));
        v = _mm512_mul_ps(_mm512_div_ps(v, _mm512_set1_ps(xt->a)), sc);
        _mm512_mask_storeu_ps(y + (t0 + n) * ldy + j, mk, v);
    }
}

/* Row block [j, j + nr) (expanded in A, nr <= 32) against the token tiles [k0, k1) of the
 * packed activations. */
static void bn_amx_block(const bn_tmat *w, int64_t j, int nr, const uint8_t *A, const bn_qrow *x, int64_t n_tok,
                         int64_t k0, int64_t k1, float *y, int64_t ldy) {
    const int64_t nc = w->cols_pad / 64, ld = w->cols_pad;
    const size_t tstride = (size_t)(bn_act_pad(w->cols) / 64) * 1024; /* bytes per packed token tile */
    const int two_r = nr > 16;
    int32_t C[4][256] __attribute__((aligned(64)));
    for (int64_t k = k0; k < k1; k += 2) {
        const int two_t = k + 1 < k1;
        const int8_t *B0 = x[0].pk + (size_t)k * tstride, *B1 = B0 + tstride;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        if (two_r && two_t) {
            for (int64_t c = 0; c < nc; c++) {
                _tile_loadd(4, A + 64 * c, ld);
                _tile_loadd(5, A + 16 * ld + 64 * c, ld);
                _tile_loadd(6, B0 + 1024 * c, 64);
                _tile_loadd(7, B1 + 1024 * c, 64);
                _tile_dpbusd(0, 4, 6);
                _tile_dpbusd(1, 4, 7);
                _tile_dpbusd(2, 5, 6);
                _tile_dpbusd(3, 5, 7);
            }
        } else if (two_r) {
            for (int64_t c = 0; c < nc; c++) {
                _tile_loadd(4, A + 64 * c, ld);
                _tile_loadd(5, A + 16 * ld + 64 * c, ld);
                _tile_loadd(6, B0 + 1024 * c, 64);
                _tile_dpbusd(0, 4, 6);
                _tile_dpbusd(2, 5, 6);
            }
        } else if (two_t) {
            for (int64_t c = 0; c < nc; c++) {
                _tile_loadd(4, A + 64 * c, ld);
                _tile_loadd(6, B0 + 1024 * c, 64);
                _tile_loadd(7, B1 + 1024 * c, 64);
                _tile_dpbusd(0, 4, 6);
                _tile_dpbusd(1, 4, 7);
            }
        } else {
            for (int64_t c = 0; c < nc; c++) {
                _tile_loadd(4, A + 64 * c, ld);
                _tile_loadd(6, B0 + 1024 * c, 64);
                _tile_dpbusd(0, 4, 6);
            }
        }
        _tile_stored(0, C[0], 64);
        _tile_stored(1, C[1], 64);
        _tile_stored(2, C[2], 64);
        _tile_stored(3, C[3], 64);
        for (int i = 0; i < 1 + two_r; i++)
            for (int kk = 0; kk < 1 + two_t; kk++) {
                const int64_t t0 = (k + kk) * BN_ACT_PACK_TOK;
                const int nt = n_tok - t0 < BN_ACT_PACK_TOK ? (int)(n_tok - t0) : BN_ACT_PACK_TOK;
                const int rr = nr - 16 * i < 16 ? nr - 16 * i : 16;
                bn_amx_store(w, j + 16 * i, rr, x, t0, nt, C[2 * i + kk], y, ldy);
            }
    }
}

/* Up to 32 tokens (one or two token tiles, pk: their packed tiles): the C tiles hold the
 * whole sums, so a block of 32 rows is expanded 256 columns at a time into an L1-resident
 * piece right before its four steps, overlapping the weight stream with the tile work. */
static void bn_amx_few(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok, float *y,
                       int64_t ldy, const int8_t *pk) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const int64_t nc = w->cols_pad / 256;
    const int two_t = n_tok > BN_ACT_PACK_TOK;
    const int8_t *B0 = pk, *B1 = B0 + (size_t)(bn_act_pad(w->cols) / 64) * 1024;
    uint8_t A[BN_AMX_RB * 256] __attribute__((aligned(64)));
    int32_t C[4][256] __attribute__((aligned(64)));
    for (int64_t j = r0; j < r1; j += BN_AMX_RB) {
        const int nr = r1 - j < BN_AMX_RB ? (int)(r1 - j) : BN_AMX_RB, two_r = nr > 16;
        if (nr % 16) memset(A + 256 * nr, 0, (size_t)(256 * ((nr + 15) / 16 * 16 - nr)));
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int64_t c = 0; c < nc; c++) {
            for (int i = 0; i < nr; i++) {
                const int64_t r = j + i;
                const __m512i z = _mm512_load_si512(
                    (const void *)(w->codes + (r / 4) * 4 * w->row_bytes + (r % 4) * 64 + 256 * c));
                _mm512_store_si512((void *)(A + 256 * i), _mm512_and_si512(_mm512_srli_epi16(z, 6), m3));
                _mm512_store_si512((void *)(A + 256 * i + 64), _mm512_and_si512(_mm512_srli_epi16(z, 4), m3));
                _mm512_store_si512((void *)(A + 256 * i + 128), _mm512_and_si512(_mm512_srli_epi16(z, 2), m3));
                _mm512_store_si512((void *)(A + 256 * i + 192), _mm512_and_si512(z, m3));
            }
            const int8_t *b0 = B0 + 4096 * c, *b1 = B1 + 4096 * c;
#define BN_AMX_STEP(s)                                                   \
    do {                                                                 \
        _tile_loadd(4, A + 64 * (s), 256);                               \
        _tile_loadd(6, b0 + 1024 * (s), 64);                             \
        _tile_dpbusd(0, 4, 6);                                           \
        if (two_t) {                                                     \
            _tile_loadd(7, b1 + 1024 * (s), 64);                         \
            _tile_dpbusd(1, 4, 7);                                       \
        }                                                                \
        if (two_r) {                                                     \
            _tile_loadd(5, A + 16 * 256 + 64 * (s), 256);                \
            _tile_dpbusd(2, 5, 6);                                       \
            if (two_t) _tile_dpbusd(3, 5, 7);                            \
        }                                                                \
    } while (0)
            BN_AMX_STEP(0);
            BN_AMX_STEP(1);
            BN_AMX_STEP(2);
            BN_AMX_STEP(3);
#undef BN_AMX_STEP
        }
        _tile_stored(0, C[0], 64);
        _tile_stored(1, C[1], 64);
        _tile_stored(2, C[2], 64);
        _tile_stored(3, C[3], 64);
        for (int i = 0; i < 1 + two_r; i++)
            for (int kk = 0; kk < 1 + two_t; kk++) {
                const int64_t t0 = kk * BN_ACT_PACK_TOK;
                const int nt = n_tok - t0 < BN_ACT_PACK_TOK ? (int)(n_tok - t0) : BN_ACT_PACK_TOK;
                const int rr = nr - 16 * i < 16 ? nr - 16 * i : 16;
                bn_amx_store(w, j + 16 * i, rr, x, t0, nt, C[2 * i + kk], y, ldy);
            }
    }
}

static void bn_amx_ternary_matmul(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok,
                                  float *y, int64_t ldy) {
    const int ok = x[0].pk && x[0].pk_pad == bn_act_pad(w->cols) && w->layout == BN_TMAT_G4X256 && !w->bscale &&
                   r1 > r0;
    if (ok && n_tok <= BN_AMX_FEW_MAX) { /* groups of 32 tokens, each with the L1 pieces */
        bn_amx_config();
        const size_t tstride = (size_t)(bn_act_pad(w->cols) / 64) * 1024;
        for (int64_t t0 = 0; t0 < n_tok; t0 += 2 * BN_ACT_PACK_TOK) {
            const int64_t nt = n_tok - t0 < 2 * BN_ACT_PACK_TOK ? n_tok - t0 : 2 * BN_ACT_PACK_TOK;
            bn_amx_few(w, r0, r1, x + t0, nt, y + t0 * ldy, ldy, x[0].pk + (size_t)(t0 / BN_ACT_PACK_TOK) * tstride);
        }
        _tile_release();
        return;
    }
    uint8_t *A = ok ? bn_amx_buf((size_t)BN_AMX_RB * (size_t)w->cols_pad) : NULL;
    if (!A) { /* no packed activations (few tokens), another layout, or no buffer */
        bn_kernels_avx512.ternary_matmul(w, r0, r1, x, n_tok, y, ldy);
        return;
    }
    bn_amx_config();
    const int64_t n_tiles = (n_tok + BN_ACT_PACK_TOK - 1) / BN_ACT_PACK_TOK, pass = BN_AMX_TPASS / BN_ACT_PACK_TOK;
    for (int64_t k0 = 0; k0 < n_tiles; k0 += pass) {
        const int64_t k1 = k0 + pass < n_tiles ? k0 + pass : n_tiles;
        for (int64_t j = r0; j < r1; j += BN_AMX_RB) {
            const int nr = r1 - j < BN_AMX_RB ? (int)(r1 - j) : BN_AMX_RB;
            bn_amx_expand(w, j, nr, A);
            bn_amx_block(w, j, nr, A, x, n_tok, k0, k1, y, ldy);
        }
    }
    _tile_release();
}

const bn_kernels bn_kernels_amx = {
    .name = "amx",
    .isa = BITNET_ISA_AMX,
    .ternary_matmul = bn_amx_ternary_matmul,
    .act_pack = bn_amx_act_pack,
    .pack_min_tok = 8, /* measured: AMX is ahead from 8 tokens on (docs/performance.md §11) */
};

#endif /* __x86_64__ */
