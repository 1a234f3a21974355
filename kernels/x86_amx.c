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
 *     gives four such 64-column pieces with a shift and a mask each; a block of 32 rows
 *     is expanded BN_AMX_KC columns at a time into a 16 KiB piece that stays in L1
 *     while every token tile of the pass multiplies it;
 *   - B (activations): act_pack lays the int8 rows out once per matrix input as tiles
 *     of 16 tokens x 64 columns in AMX's B order, row k of a tile holding for token n
 *     the four values 64c+4k .. 64c+4k+3 at bytes 4n .. 4n+3 (a 16 x 16 transpose of
 *     32-bit words);
 *   - C = D[row][token] = sum(code * q); y = ((float)D - (float)S) / a * scale per token,
 *     after a 16 x 16 transpose so each token's 16 rows go out in one store.
 * Blocking: 2 x 2 tiles (two row tiles x two token tiles: four TDPBUSD per four tile
 * loads, the weight tiles from L1, the activation tiles from L2), tokens in passes of
 * BN_AMX_TPASS so a pass's packed activations stay in L2, and each token pair's C tiles
 * saved to L1 between pieces.  Measured (tests/bench/bench_kernels.c, one thread, Xeon
 * with AMX): 1220-1470 weight x token products per ns at 128 tokens and 440-460 at 8,
 * where the AVX-512 VPDPBUSD tile does 190-195.
 */
#if defined(__x86_64__)
/* (clang before 15 spells the AMX macros __AMXTILE__ / __AMXINT8__) */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !(defined(__AMX_TILE__) || defined(__AMXTILE__)) || \
    !(defined(__AMX_INT8__) || defined(__AMXINT8__))
#error "x86_amx.c must be compiled with the AVX-512 flags and -mamx-tile -mamx-int8"
#endif

#include "kernels.h"

#include <immintrin.h>
#include <string.h>

extern const bn_kernels bn_kernels_avx512;

#define BN_AMX_RB    32  /* weight rows per block: two A tiles                       */
#define BN_AMX_TPASS 128 /* tokens per pass over a block of rows (eight B tiles)      */

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
        int8_t *tile = dst + (size_t)(t0 / BN_ACT_PACK_TOK) * BN_ACT_PACK_TILE(n_pad);
        for (int64_t c = 0; c < nc; c++) {
            __m512i r[16];
            for (int n = 0; n < 16; n++)
                r[n] = n < nt ? _mm512_loadu_si512((const void *)(x[t0 + n].q + 64 * c)) : _mm512_setzero_si512();
            bn_amx_tr16(r);
            for (int k = 0; k < 16; k++) _mm512_store_si512((void *)(tile + 1024 * c + 64 * k), r[k]);
        }
    }
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

/* Columns per L1 piece of the many-token path (32 rows x 512 = 16 KiB): measured best of
 * 256, 512 and 1024 (tests/bench/bench_kernels.c). */
#define BN_AMX_KC 512

/* In passes of 128 tokens, each block of 32 rows is expanded
 * BN_AMX_KC columns at a time into an L1 piece that every token pair of the pass then
 * multiplies, the pairs' partial sums kept in C tiles saved to L1 between pieces (only
 * the packed activations come from L2). */
static void bn_amx_many(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok, float *y,
                        int64_t ldy) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const size_t tstride = BN_ACT_PACK_TILE(bn_act_pad(w->cols));
    const int64_t n_tiles = (n_tok + BN_ACT_PACK_TOK - 1) / BN_ACT_PACK_TOK, pass = BN_AMX_TPASS / BN_ACT_PACK_TOK;
    uint8_t A[BN_AMX_RB * BN_AMX_KC] __attribute__((aligned(64)));
    int32_t Cm[BN_AMX_TPASS / BN_ACT_PACK_TOK / 2][4][256] __attribute__((aligned(64)));
    for (int64_t k0 = 0; k0 < n_tiles; k0 += pass) {
        const int64_t k1 = k0 + pass < n_tiles ? k0 + pass : n_tiles;
        for (int64_t j = r0; j < r1; j += BN_AMX_RB) {
            const int nr = r1 - j < BN_AMX_RB ? (int)(r1 - j) : BN_AMX_RB, two_r = nr > 16;
            if (nr % 16) memset(A + BN_AMX_KC * nr, 0, (size_t)(BN_AMX_KC * ((nr + 15) / 16 * 16 - nr)));
            for (int64_t c0 = 0; c0 < w->cols_pad; c0 += BN_AMX_KC) {
                const int64_t nk = w->cols_pad - c0 < BN_AMX_KC ? w->cols_pad - c0 : BN_AMX_KC;
                for (int i = 0; i < nr; i++) {
                    const int64_t r = j + i;
                    const uint8_t *src = w->codes + (r / 4) * 4 * w->row_bytes + (r % 4) * 64 + c0;
                    uint8_t *d = A + (size_t)BN_AMX_KC * (size_t)i;
                    for (int64_t c = 0; c < nk; c += 256) {
                        /* the next piece's codes (or the next rows'), fetched during this
                         * piece's tile work: the expansion otherwise waits on L3 / DRAM */
                        _mm_prefetch((const char *)src + c + BN_AMX_KC, _MM_HINT_T0);
                        const __m512i z = _mm512_load_si512((const void *)(src + c));
                        _mm512_store_si512((void *)(d + c), _mm512_and_si512(_mm512_srli_epi16(z, 6), m3));
                        _mm512_store_si512((void *)(d + c + 64), _mm512_and_si512(_mm512_srli_epi16(z, 4), m3));
                        _mm512_store_si512((void *)(d + c + 128), _mm512_and_si512(_mm512_srli_epi16(z, 2), m3));
                        _mm512_store_si512((void *)(d + c + 192), _mm512_and_si512(z, m3));
                    }
                }
                const int first = c0 == 0, last = c0 + nk >= w->cols_pad;
                for (int64_t k = k0; k < k1; k += 2) {
                    const int two_t = k + 1 < k1;
                    int32_t (*C)[256] = Cm[(k - k0) / 2];
                    if (first) {
                        _tile_zero(0);
                        _tile_zero(1);
                        _tile_zero(2);
                        _tile_zero(3);
                    } else {
                        _tile_loadd(0, C[0], 64);
                        _tile_loadd(1, C[1], 64);
                        _tile_loadd(2, C[2], 64);
                        _tile_loadd(3, C[3], 64);
                    }
                    const int8_t *b0 = x[0].pk + (size_t)k * tstride + (size_t)(c0 / 64) * 1024, *b1 = b0 + tstride;
                    for (int64_t s = 0; s < nk / 64; s++) {
                        _tile_loadd(4, A + 64 * s, BN_AMX_KC);
                        _tile_loadd(6, b0 + 1024 * s, 64);
                        _tile_dpbusd(0, 4, 6);
                        if (two_t) {
                            _tile_loadd(7, b1 + 1024 * s, 64);
                            _tile_dpbusd(1, 4, 7);
                        }
                        if (two_r) {
                            _tile_loadd(5, A + 16 * BN_AMX_KC + 64 * s, BN_AMX_KC);
                            _tile_dpbusd(2, 5, 6);
                            if (two_t) _tile_dpbusd(3, 5, 7);
                        }
                    }
                    _tile_stored(0, C[0], 64);
                    _tile_stored(1, C[1], 64);
                    _tile_stored(2, C[2], 64);
                    _tile_stored(3, C[3], 64);
                    if (!last) continue;
                    for (int i = 0; i < 1 + two_r; i++)
                        for (int kk = 0; kk < 1 + two_t; kk++) {
                            const int64_t t0 = (k + kk) * BN_ACT_PACK_TOK;
                            const int nt = n_tok - t0 < BN_ACT_PACK_TOK ? (int)(n_tok - t0) : BN_ACT_PACK_TOK;
                            const int rr = nr - 16 * i < 16 ? nr - 16 * i : 16;
                            bn_amx_store(w, j + 16 * i, rr, x, t0, nt, C[2 * i + kk], y, ldy);
                        }
                }
            }
        }
    }
}

static void bn_amx_ternary_matmul(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok,
                                  float *y, int64_t ldy) {
    const int ok = x[0].pk && x[0].pk_pad == bn_act_pad(w->cols) && w->layout == BN_TMAT_G4X256 && !w->bscale &&
                   r1 > r0;
    if (!ok) { /* no packed activations (few tokens), or another layout */
        bn_kernels_avx512.ternary_matmul(w, r0, r1, x, n_tok, y, ldy);
        return;
    }
    bn_amx_config();
    bn_amx_many(w, r0, r1, x, n_tok, y, ldy);
    _tile_release();
}

const bn_kernels bn_kernels_amx = {
    .name = "amx",
    .isa = BITNET_ISA_AMX,
    .ternary_matmul = bn_amx_ternary_matmul,
    .tmat_repack = bn_tmat_repack_g4x256, /* (not its base's G16: the tiles read G4X256) */
    .act_pack = bn_amx_act_pack,
    .pack_min_tok = 8, /* measured: AMX is ahead from 8 tokens on (docs/performance.md §11) */
};

#endif /* __x86_64__ */
