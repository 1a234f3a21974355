/*
 * kernels.h -- the compute kernels behind the forward pass (internal, never installed).
 *
 * The model and the session call compute only through a bn_kernels table: one
 * instance per instruction-set variant (kernels/scalar.c is the readable reference
 * and the oracle every faster variant is tested against).  A variant may leave a slot
 * NULL; bn_kernels_get() fills NULL slots from the scalar table.
 *
 * Ternary matrices (bn_tmat).  Every ternary weight, whatever its file type (I2_S,
 * TQ2_0, TQ1_0, ternary-valued F32/F16/BF16), is repacked at load into this one form:
 *
 *   - rows = output features (GGUF ne1), cols = input features (GGUF ne0);
 *   - each row holds cols_pad 2-bit codes, 0/1/2 = -1/0/+1, cols_pad a multiple of
 *     128 (the loader uses round_up(cols, BN_TMAT_PAD) = 256, so that every matrix
 *     also fits the 256-weight layouts below); padding codes are 1 (weight 0), and
 *     activations are zero-padded to bn_act_pad(cols) >= cols_pad, so padding never
 *     contributes;
 *   - inside a row, blocks of 128 codes take 32 bytes: code e of block b sits in
 *     byte 32b + e%32, bits 7-2*(e/32) .. 6-2*(e/32) (the I2_S "x128" order, so a
 *     SIMD kernel loads 32 bytes and peels four 32-lane groups with shifts);
 *   - row r starts at byte r * row_bytes (row_bytes = cols_pad / 4).
 *
 * Scales.  Per-tensor (I2_S, and TQ1_0/TQ2_0 whose non-empty 256-blocks all carry the
 * same f16 scale, which is what converters write): one float `scale`, and
 *     y = ((float)D - (float)S) / a * scale                       (docs/spec.md §4.1)
 * with D = sum(code * q), S = sum(q) over the row, a = the activation scale.
 * Per-block (TQ1_0/TQ2_0 files whose block scales differ): bscale[r * (cols/256) + b]
 * and, accumulated in f32 in block order,
 *     acc = sum_b ((float)D_b - (float)S_b) * bscale_b,   y = acc / a.
 * Both are exactly the per-token W1.58A8 math; they differ only in where the weight
 * scale is applied.
 */
#ifndef BN_KERNELS_H
#define BN_KERNELS_H

#include "bitnet.h"

#include <stddef.h>
#include <stdint.h>

#define BN_TMAT_BLOCK 128 /* codes per packed block (32 bytes)              */
#define BN_TMAT_PAD   256 /* loaded rows are padded to a multiple of this      */
#define BN_TQ_BLOCK   256 /* elements per scale block of TQ1_0/TQ2_0 files  */
#define BN_MAX_HEAD_DIM 512 /* the loader refuses larger heads                 */
#define BN_ATTN_MQ 4        /* most queries per attention_multi call           */

/* Alternative layouts a kernel variant may repack into at load (tmat_repack):
 *
 * BN_TMAT_G4X256 (AVX2, AVX-VNNI): rows in groups of 4; cols_pad a multiple of 256; a chunk
 * of 256 weights of one row is 64 bytes where byte i holds weights i, 64+i, 128+i,
 * 192+i at bits 7:6, 5:4, 3:2, 1:0; the four rows' chunks c of group G are stored back
 * to back at codes + G*4*row_bytes + c*256 + (row%4)*64.  A decode pass then reads the
 * weights strictly sequentially (this CPU family's prefetchers lose half the bandwidth
 * on four interleaved row streams) and every 64-byte load feeds four VPDPBUSD against
 * contiguous activations.  Needs cols_pad % 256 == 0 and a buffer of whole groups:
 * round_up(rows, 4) * row_bytes bytes, the rows past `rows` all code 1 (they are never
 * computed: dummy rows that only complete the last group).  bn_tmat_repack_g4x256
 * pads any matrix to this; it leaves matrices with per-block scales in rows (the
 * variants hand those to the scalar code).
 *
 * BN_TMAT_G16 (AVX-512, AMX): rows in groups of 16; cols_pad a multiple of 256;
 * a chunk of 16 columns of the group's 16 rows is 64 bytes where byte 4r + b holds the
 * codes of row r, columns 16c + b, 16c + 4 + b, 16c + 8 + b, 16c + 12 + b at bits 7:6,
 * 5:4, 3:2, 1:0; group G chunk c sits at codes + G*16*row_bytes + 64*c.  Shifts by
 * 6/4/2/0 and a mask give four registers whose 32-bit lane r holds four consecutive
 * codes of row r, so VPDPBUSD against four activations broadcast to every lane adds
 * into sixteen rows at once: a register of codes serves every token of a block with
 * one broadcast each, no activation vectors are loaded and no lanes are summed across
 * at the end (docs/performance.md §12).  Decode still reads the matrix front to back.
 * A buffer of whole groups, round_up(rows, 16) * row_bytes bytes, the dummy rows all
 * code 1; bn_tmat_repack_g16 pads any matrix to this and, like G4X256, leaves
 * matrices with per-block scales in rows. */
#define BN_TMAT_ROWS   0
#define BN_TMAT_G4X256 1
#define BN_TMAT_G16    2

typedef struct bn_tmat {
    int64_t  rows, cols;  /* ne1, ne0                                        */
    int64_t  cols_pad;    /* round_up(cols, 128)                             */
    int64_t  row_bytes;   /* cols_pad / 4                                    */
    uint8_t *codes;       /* rows * row_bytes bytes (64-byte aligned)        */
    float    scale;       /* per-tensor weight scale (bscale == NULL)        */
    float   *bscale;      /* NULL, or rows * (cols / 256) per-block scales    */
    int      layout;      /* BN_TMAT_ROWS (the form described above) or another
                             BN_TMAT_* set by the kernel variant's tmat_repack  */
} bn_tmat;

/* Activations multiplied with a ternary matrix of `cols` columns are zero-padded to
 * this many values (a multiple of BN_TMAT_PAD: covers the cols_pad of every matrix the
 * loader or bn_tmat_repack_g4x256 makes). */
static inline int64_t bn_act_pad(int64_t cols) { return (cols + BN_TMAT_PAD - 1) / BN_TMAT_PAD * BN_TMAT_PAD; }

/* A quantized activation row (docs/spec.md §4.1): q[cols_pad] int8 (zero-padded), its
 * scale a = (float)(127 / max(1e-5, max|x|)) and S = sum(q). */
typedef struct bn_qrow {
    int8_t *q;
    float   a;
    int32_t sum;
    /* Only in x[0] of the rows handed to ternary_matmul: NULL, or those n_tok rows laid
     * out by the variant's act_pack with n_pad = pk_pad (the caller sets both after
     * packing and clears pk when the rows change; a matrix whose bn_act_pad(cols) is not
     * pk_pad ignores them). */
    const int8_t *pk;
    int64_t       pk_pad;
} bn_qrow;

/* Dense (non-ternary) matrices: embeddings and the output layer, kept in the file's
 * type (F32, F16, BF16, Q8_0, Q4_K, Q6_K, TQ1_0, TQ2_0), row-major in the mapping, or
 * repacked by a kernel variant's dmat_repack:
 *
 * BN_DMAT_G4X32 (F16 only): rows [0, rows & ~3) in groups of 4, each row cut in chunks
 * of 32 elements (64 bytes); the four rows' chunks c of group G are stored back to
 * back at data + G*4*row_bytes + c*256 + (row%4)*64; the last rows % 4 rows follow
 * row-major.  Rows are padded with f16 zeros to a whole number of chunks: row_bytes =
 * 64 * ceil(cols / 32) (a kernel reads the last chunk's activations with a mask, or
 * from a zero-padded copy).  Read rows through bn_dmat_row_f32. */
#define BN_DMAT_ROWS  0
#define BN_DMAT_G4X32 1

typedef struct bn_dmat {
    const uint8_t *data;      /* the file mapping, or `owned`           */
    uint32_t       type;      /* bitnet_type                            */
    int64_t        rows, cols;
    uint64_t       row_bytes;
    int            layout;    /* BN_DMAT_*                              */
    void          *owned;     /* repacked copy (bn_aligned_free), or NULL */
} bn_dmat;

/* Row r of a dense matrix as floats, whatever its layout (embedding lookups). */
void bn_dmat_row_f32(const bn_dmat *w, int64_t r, float *out);

/* The repackers (kernels/layout.c), plugged into a variant's table.  Every shape fits:
 * bn_tmat_repack_g4x256 pads rows to whole groups of 4 and cols_pad to a multiple of
 * 256 (a new buffer when it must grow, else in place), bn_tmat_repack_g16 to groups of
 * 16 (always a new buffer), bn_dmat_repack_g4x32 pads rows to
 * whole chunks of 32; only dense types other than F16 are left as they are. */
bitnet_status bn_tmat_repack_g4x256(bn_tmat *w);
bitnet_status bn_tmat_repack_g16(bn_tmat *w);
bitnet_status bn_dmat_repack_g4x32(bn_dmat *w);

/* The building blocks the loader calls directly (lib/model_load.c converts a file's
 * tensor and lays it out in one pass, on several threads):
 *  - bn_g4x256_pack_group: four consecutive x128 rows (row_bytes each, row_bytes a
 *    multiple of 64) into one G4X256 group of 4 * row_bytes bytes at dst;
 *  - bn_g16_pack_group: the same for sixteen rows and a G16 group (never in place);
 *  - bn_dmat_g4x32_rows: rows [r0, r1) of an F16 row-major matrix (cols columns, 2 * cols
 *    bytes per row, src pointing at row r0) into the G4X32 buffer dst of a matrix with
 *    `rows` rows (r0 a multiple of 4; groups stay whole unless r1 == rows);
 *  - bn_dmat_g4x32_row_bytes: the padded row size of that layout. */
void     bn_g4x256_pack_group(const uint8_t *rows4, int64_t row_bytes, uint8_t *dst);
void     bn_g16_pack_group(const uint8_t *rows16, int64_t row_bytes, uint8_t *dst);
void     bn_dmat_g4x32_rows(const uint8_t *src, int64_t rows, int64_t cols, int64_t r0, int64_t r1, uint8_t *dst);
uint64_t bn_dmat_g4x32_row_bytes(int64_t cols);

/* Bytes of the converted activation row that dense_prep writes for a matrix of
 * `type` and `cols` columns (an upper bound good for every type). */
#define BN_DENSE_PREP_BYTES(cols) ((size_t)(cols) * 4u + 64u)

/* The screening copy of an F16 output layer (docs/performance.md, "Screened output
 * layer"; the error bound is proved in docs/spec.md): weights in blocks of
 * BN_SCREEN_BLOCK, row j block b holds q = round(w / sigma) in int8 with sigma =
 * max|w| / 127 over the block (0 for an all-zero block), so |w - sigma * q| <= sigma / 2.
 * cols_pad = round_up(cols, BN_SCREEN_BLOCK) (zero padded), nb = cols_pad / BN_SCREEN_BLOCK.
 * Rows come in groups of 4 (the buffer holds round_up(rows, 4) rows, extra rows zero) and
 * a group is stored block by block, the four rows' 64 bytes of block b back to back, so
 * a pass reads the matrix front to back (one stream, as G4X256 / G4X32 do): row j block
 * b at q + (j/4)*4*cols_pad + 256*b + 64*(j%4), its sigma at sigma[(j/4)*4*nb + 4*b + j%4]. */
#define BN_SCREEN_BLOCK 64
#define BN_SMAT_Q(w, j, b) ((w)->q + ((size_t)((j) / 4) * 4 * (size_t)(w)->cols_pad + 256 * (size_t)(b) + 64 * (size_t)((j) % 4)))
#define BN_SMAT_SIGMA(w, j, b) ((w)->sigma + ((size_t)((j) / 4) * 4 * (size_t)(w)->nb + 4 * (size_t)(b) + (size_t)((j) % 4)))
typedef struct bn_smat {
    int64_t rows, cols, cols_pad, nb;
    int8_t *q;     /* 64-byte aligned */
    float  *sigma;
    int     qmax;  /* the levels: 127 (int8, as above) or 31 (6-bit: sigma = max|w| / 31) */
} bn_smat;

/* act_pack's layout (kernels/x86_amx.c): tiles of 16 tokens (the last one zero padded),
 * BN_ACT_PACK_TILE(n_pad) bytes apart: one KiB per 64 values plus one KiB, so that tiles
 * are never a power of two apart (they would share cache sets: 4096 values measured 2.5x
 * slower at 128 tokens). */
#define BN_ACT_PACK_TOK 16
#define BN_ACT_PACK_TILE(n_pad) (((size_t)(n_pad) / 64 + 1) * 1024)
#define BN_ACT_PACK_BYTES(n_tok, n_pad) \
    ((size_t)(((n_tok) + BN_ACT_PACK_TOK - 1) / BN_ACT_PACK_TOK) * BN_ACT_PACK_TILE(n_pad))

/* dense_matmul handles tokens in groups of at most this many (its scratch holds one
 * f32 activation row per token of a group). */
#define BN_DENSE_TOK 16

typedef struct bn_kernels {
    const char *name; /* "scalar", ...                    */
    bitnet_isa  isa;

    /* Quantize x[0..n) to int8 per token (docs/spec.md §4.1) into r->q[0..n_pad), zero
     * padding after n; fills r->a and r->sum. */
    void (*act_quant)(const float *x, int64_t n, int64_t n_pad, bn_qrow *r);

    /* y[t * ldy + j] for rows j in [r0, r1) of w and n_tok activation rows; the same
     * bits whether or not x[0].pk is set. */
    void (*ternary_matmul)(const bn_tmat *w, int64_t r0, int64_t r1, const bn_qrow *x, int64_t n_tok,
                           float *y, int64_t ldy);

    /* Optional (NULL: none).  Lay the quantized rows x[0..n_tok) of n_pad = bn_act_pad(cols)
     * values out in dst (BN_ACT_PACK_BYTES(n_tok, n_pad) bytes, 64-byte aligned) in the
     * form this variant's ternary_matmul multiplies many tokens with; the caller then sets
     * x[0].pk = dst for the matrices of those cols.  Worth it from pack_min_tok tokens on
     * (the forward pass packs only then). */
    void (*act_pack)(const bn_qrow *x, int64_t n_tok, int64_t n_pad, int8_t *dst);
    int pack_min_tok;

    /* The FFN's gated activation in place: g[i] = act(g[i]) * u[i], act = ReLU^2 (relu2)
     * or SiLU, exactly as lib/fwd_act.h defines them: the same bits on every variant. */
    void (*ffn_act)(int relu2, float *g, const float *u, int64_t n);

    /* y[i] = f16(x[i]) for i < n, rounded to nearest even as bn_f32_to_f16 (lib/internal.h)
     * does, NaNs included: the same bits on every variant (KV cache rows). */
    void (*f16_row)(const float *x, uint16_t *y, int64_t n);

    /* y = x / sqrt(mean(x^2) + eps) * w, llama.cpp's order (sum in double). x == y ok. */
    void (*rmsnorm)(const float *x, const float *w, int64_t n, float eps, float *y);

    /* Rotate n_head heads of head_dim floats in place for position pos: the first
     * n_rot dims of each head, NEOX pairs (i, i + n_rot/2) or NORM pairs (2i, 2i+1).
     * freq_factors (n_rot/2 divisors) may be NULL. */
    void (*rope)(float *x, int64_t n_head, int64_t head_dim, int64_t n_rot, int32_t pos, float base,
                 const float *freq_factors, int neox);

    /* One query head against n_kv cached positions: out[head_dim] = softmax(q.k * scale) . V.
     * k and v point at the head's slice of position 0; consecutive positions are
     * kv_stride elements apart; kv_f16 selects uint16 (f16) or float elements (f16:
     * q and the probabilities are rounded to f16 as llama.cpp does).  scratch holds
     * n_kv floats. */
    void (*attention)(const float *q, const void *k, const void *v, int kv_f16, int64_t n_kv,
                      int64_t head_dim, int64_t kv_stride, float scale, float *scratch, float *out);

    /* Optional (NULL: the caller makes nq attention() calls).  nq <= BN_ATTN_MQ queries
     * q[a] (head_dim floats each; query heads of one KV head, and/or consecutive tokens
     * of one sequence) against the same k, v: query a sees the first n_kv[a] positions,
     * its probabilities go to scratch + a * sstride, its result to out[a].  The results
     * are the same bits as nq attention() calls of this variant (batched decoding and
     * prefill rely on it).  Only called with head_dim % 8 == 0. */
    void (*attention_multi)(int nq, const float *const *q, const int64_t *n_kv, const void *k, const void *v,
                            int kv_f16, int64_t head_dim, int64_t kv_stride, float scale, float *scratch,
                            int64_t sstride, float *const *out);

    /* Dense matrices (prepared rows: at least 4-byte aligned).  dense_prep converts one
     * activation row to what the matrix type
     * multiplies with (F16 weights: f16 activations; BF16: bf16; Q8_0: Q8_0 blocks;
     * K-quants and TQ types: Q8_K blocks; F32: f32).  dense_matmul computes
     * y[t * ldy + j] = row_j . x_t for rows [r0, r1); xs holds n_tok prepared rows
     * xs_stride bytes apart; scratch holds BN_DENSE_TOK * cols floats.  A result never
     * depends on n_tok, on the other tokens or on [r0, r1) (batched decoding relies on
     * it: a sequence gets the same logits alone or in a batch), and a batch of tokens
     * reads each weight row from memory once (tokens are the inner loop over a block
     * of rows that stays in cache). */
    void (*dense_prep)(const bn_dmat *w, const float *x, void *out);
    void (*dense_matmul)(const bn_dmat *w, int64_t r0, int64_t r1, const void *xs, size_t xs_stride,
                         int64_t n_tok, float *y, int64_t ldy, float *scratch);

    /* Screened output layer: for rows j in [r0, r1),
     *   s[j] = xs * sum_b sigma[j][b] * D[j][b],  D[j][b] = sum_{i in b} q[j][i] * xq[i] (exact int32),
     *   e[j] = sum_b sigma[j][b] * c[b],
     * xq: cols_pad int16 (zero padded), c: nb floats.  Any summation order (the bound
     * allows for the rounding of nb + 2 float operations per row). */
    void (*screen_matmul)(const bn_smat *w, int64_t r0, int64_t r1, const int16_t *xq, float xs, const float *c,
                          float *s, float *e);

    /* Optional (NULL: keep the portable layouts).  Rearrange a freshly loaded matrix
     * into the layout this variant reads fastest, replacing its buffer (the old one
     * is freed / left to the caller's mapping); may leave it unchanged.  Called once
     * per matrix at load; a failure is BITNET_E_NOMEM with a message. */
    bitnet_status (*tmat_repack)(bn_tmat *w);
    bitnet_status (*dmat_repack)(bn_dmat *w);

    /* Building the screening copy: rows [r0, r1) of s (r1 <= round_up(s->rows, 4)) from
     * the F16 matrix w (either layout; rows >= s->rows are written as zeros) with levels
     * -qmax..qmax (127: int8; 31: 6-bit): per block sigma = max|w| / qmax (float
     * division) and q = round-half-even(w * fl(1 / sigma)) clamped to [-qmax, qmax].
     * Every variant's result is bit-identical to the scalar one (tests/unit/
     * test_screen_build.c).  scratch holds s->cols_pad floats. */
    void (*screen_quant)(const bn_dmat *w, int64_t r0, int64_t r1, int qmax, bn_smat *s, float *scratch);
} bn_kernels;

/* The portable screening-copy builder (kernels/layout.c), the scalar table's. */
void bn_screen_quant_scalar(const bn_dmat *w, int64_t r0, int64_t r1, int qmax, bn_smat *s, float *scratch);

#if defined(__x86_64__)
/* The AVX2 screened output layer (kernels/x86_avx2.c), also the AVX-512 table's. */
void bn_avx2_screen_matmul(const bn_smat *w, int64_t r0, int64_t r1, const int16_t *xq, float xs, const float *c,
                           float *s, float *e);
/* The AVX2 + F16C screening-copy builder (kernels/x86_avx2_screen.c), also AVX-512's. */
void bn_avx2_screen_quant(const bn_dmat *w, int64_t r0, int64_t r1, int qmax, bn_smat *s, float *scratch);
#endif

/* The scalar reference table. */
extern const bn_kernels bn_kernels_scalar;

/* The table for `isa` (AUTO: the best this CPU supports), or NULL if this build or
 * CPU cannot run it.  NULL slots of a variant are filled from the scalar table. */
const bn_kernels *bn_kernels_get(bitnet_isa isa);

/* The same as a status for loaders (kernels/dispatch.c): BITNET_E_UNSUPPORTED naming
 * the variant when this build or CPU cannot run it, BITNET_E_INVALID_ARG for an
 * unknown value. */
bitnet_status bn_kernels_select(bitnet_isa isa, const bn_kernels **out);

/* Whether dense_prep/dense_matmul handle this type. */
int bn_dense_type_ok(uint32_t type);

#endif /* BN_KERNELS_H */
