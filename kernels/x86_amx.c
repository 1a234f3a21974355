/*
 * x86_amx.c -- AMX-INT8 tiles for the ternary matmul of many tokens (prompts, batches).
 * Compiled with the AVX-512 flags plus -mamx-tile -mamx-int8; selected at run time when
 * CPUID, XCR0 and the Linux permission for tile data allow it (kernels/cpu.c).  Every
 * other slot, and the G16 layout, are the AVX-512 variant's (dispatch.c fills this
 * table's NULL slots from it): decode and steps of fewer than 8 tokens stay on its
 * VPDPBUSD tiles, which read each weight once.
 *
 * One TDPBSUD multiplies a 16 x 64 tile of signed bytes by a 64 x 16 tile of unsigned
 * bytes into 16 x 16 int32 sums without saturation, so the sums are exact and the
 * results the same bits as the scalar reference's:
 *   - A (activations): 16 tokens x 64 consecutive int8 values; act_pack copies each
 *     matrix input once into tiles of 16 token rows, n_pad + 64 bytes apart (so rows are
 *     never a power of two apart);
 *   - B (weights): in AMX's B order row k of a tile holds, for each of 16 output rows n,
 *     the four codes of columns 4k .. 4k+3 at bytes 4n .. 4n+3, which is exactly what a
 *     shift and a mask make of a G16 chunk (kernels.h): four B rows per 64-byte chunk, a
 *     tile from four chunks, no transposes.  A block of 32 rows is expanded BN_AMX_KC
 *     columns at a time into a 16 KiB piece that stays in L1 while every token tile of
 *     the pass multiplies it;
 *   - C[token][row] = sum(code * q): row m of a C tile is token m's 16 outputs, stored as
 *     y = ((float)D - (float)S) / a * scale in one masked store.
 * Blocking: 2 x 2 tiles (two token tiles x two row tiles: four TDPBSUD per four tile
 * loads, the weight tiles from L1, the activation tiles from L2), tokens in passes of
 * BN_AMX_TPASS so a pass's packed activations stay in L2, and each token pair's C tiles
 * saved to L1 between pieces.  Measured: docs/performance.md §11 and §12.
 */
#if defined(__x86_64__)
/* (clang before 15 spells the AMX macros __AMXTILE__ / __AMXINT8__) */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !(defined(__AMX_TILE__) || defined(__AMXTILE__)) || \
    !(defined(__AMX_INT8__) || defined(__AMXINT8__))
#error "x86_amx.c must be compiled with the AVX-512 flags and -mamx-tile -mamx-int8"
#endif

#include "kernels.h"
#include "x86_g16.h"

#include <immintrin.h>
#include <string.h>

extern const bn_kernels bn_kernels_avx512;

#define BN_AMX_TPASS 128 /* tokens per pass over a block of rows (eight B tiles)      */

/* ---- activations: tiles of 16 token rows --------------------------------------------- */

#define BN_AMX_LDA(n_pad) ((size_t)(n_pad) + 64) /* bytes from one token row to the next */

static void bn_amx_act_pack(const bn_qrow *x, int64_t n_tok, int64_t n_pad, int8_t *dst) {
    for (int64_t t0 = 0; t0 < n_tok; t0 += BN_ACT_PACK_TOK) {
        const int64_t nt = n_tok - t0 < BN_ACT_PACK_TOK ? n_tok - t0 : BN_ACT_PACK_TOK;
        int8_t *tile = dst + (size_t)(t0 / BN_ACT_PACK_TOK) * BN_ACT_PACK_TILE(n_pad);
        for (int64_t n = 0; n < BN_ACT_PACK_TOK; n++) {
            int8_t *row = tile + (size_t)n * BN_AMX_LDA(n_pad);
            if (n < nt) memcpy(row, x[t0 + n].q, (size_t)n_pad);
            else memset(row, 0, (size_t)n_pad);
        }
    }
}

/* ---- the tiles --------------------------------------------------------------------------- */

/* Tiles 0-3: C (token tile k, row tile i at 2k + i); 4-5: A (token tiles); 6-7: B. */
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

/* y for one C tile: tokens t0 .. t0+nt-1 (row n of C), the rows of group g in [lo, hi). */
static void bn_amx_store(const bn_tmat *w, int64_t g, int64_t lo, int64_t hi, const bn_qrow *x, int64_t t0, int nt,
                         const int32_t *C, float *y, int64_t ldy) {
    const __mmask16 m = bn_g16_rows_mask(g, lo, hi);
    if (m)
        for (int n = 0; n < nt; n++) bn_g16_store(w, g, m, &x[t0 + n], C + 16 * n, y + (t0 + n) * ldy);
}

/* Columns per L1 piece of the many-token path (32 rows x 512 = 16 KiB): measured best of
 * 256, 512 and 1024 (tests/bench/bench_kernels.c). */
#define BN_AMX_KC 512

/* In passes of 128 tokens, each pair of G16 groups (32 rows) is expanded BN_AMX_KC
 * columns at a time into an L1 piece that every token pair of the pass then multiplies,
 * the pairs' partial sums kept in C tiles saved to L1 between pieces (only the packed
 * activations come from L2). */
static void bn_amx_many(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok, float *y,
                        int64_t ldy) {
    const int64_t n_pad = bn_act_pad(w->cols), lo = r0, hi = r1 < w->rows ? r1 : w->rows;
    const size_t tstride = BN_ACT_PACK_TILE(n_pad), lda = BN_AMX_LDA(n_pad), gbytes = 16 * (size_t)w->row_bytes;
    const int64_t n_tiles = (n_tok + BN_ACT_PACK_TOK - 1) / BN_ACT_PACK_TOK, pass = BN_AMX_TPASS / BN_ACT_PACK_TOK;
    const int64_t g0 = lo / 16, g1 = (hi + 15) / 16;
    uint8_t B[2][16 * BN_AMX_KC] __attribute__((aligned(64)));
    int32_t Cm[BN_AMX_TPASS / BN_ACT_PACK_TOK / 2][4][256] __attribute__((aligned(64)));
    for (int64_t k0 = 0; k0 < n_tiles; k0 += pass) {
        const int64_t k1 = k0 + pass < n_tiles ? k0 + pass : n_tiles;
        for (int64_t g = g0; g < g1; g += 2) {
            const int two_r = g + 1 < g1;
            for (int64_t c0 = 0; c0 < w->cols_pad; c0 += BN_AMX_KC) {
                const int64_t nk = w->cols_pad - c0 < BN_AMX_KC ? w->cols_pad - c0 : BN_AMX_KC;
                for (int i = 0; i < 1 + two_r; i++) {
                    const uint8_t *src = w->codes + (size_t)(g + i) * gbytes + (size_t)(c0 / 16) * 64;
                    for (int64_t c = 0; c < nk / 16; c++) {
                        /* the next piece's codes (or the next groups'), fetched during this
                         * piece's tile work: the expansion otherwise waits on L3 / DRAM */
                        _mm_prefetch((const char *)src + 64 * c + BN_AMX_KC * 4, _MM_HINT_T0);
                        const __m512i z = _mm512_load_si512((const void *)(src + 64 * c));
                        uint8_t *d = B[i] + 256 * c;
                        for (int k = 0; k < 4; k++) _mm512_store_si512((void *)(d + 64 * k), bn_g16_codes(z, k));
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
                    const int8_t *a0 = x[0].pk + (size_t)k * tstride + (size_t)c0, *a1 = a0 + tstride;
                    for (int64_t s = 0; s < nk / 64; s++) {
                        _tile_loadd(6, B[0] + 1024 * s, 64);
                        _tile_loadd(4, a0 + 64 * s, (long)lda);
                        _tile_dpbsud(0, 4, 6);
                        if (two_r) {
                            _tile_loadd(7, B[1] + 1024 * s, 64);
                            _tile_dpbsud(1, 4, 7);
                        }
                        if (two_t) {
                            _tile_loadd(5, a1 + 64 * s, (long)lda);
                            _tile_dpbsud(2, 5, 6);
                            if (two_r) _tile_dpbsud(3, 5, 7);
                        }
                    }
                    _tile_stored(0, C[0], 64);
                    _tile_stored(1, C[1], 64);
                    _tile_stored(2, C[2], 64);
                    _tile_stored(3, C[3], 64);
                    if (!last) continue;
                    for (int kk = 0; kk < 1 + two_t; kk++)
                        for (int i = 0; i < 1 + two_r; i++) {
                            const int64_t t0 = (k + kk) * BN_ACT_PACK_TOK;
                            const int nt = n_tok - t0 < BN_ACT_PACK_TOK ? (int)(n_tok - t0) : BN_ACT_PACK_TOK;
                            bn_amx_store(w, g + i, lo, hi, x, t0, nt, C[2 * kk + i], y, ldy);
                        }
                }
            }
        }
    }
}

static void bn_amx_ternary_matmul(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok,
                                  float *y, int64_t ldy) {
    const int ok = x[0].pk && x[0].pk_pad == bn_act_pad(w->cols) && w->layout == BN_TMAT_G16 && !w->bscale &&
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
    .act_pack = bn_amx_act_pack,
    .pack_min_tok = 8, /* measured: AMX is ahead from 8 tokens on (docs/performance.md §11) */
};

#endif /* __x86_64__ */
