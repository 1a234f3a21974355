/*
 * model_load.c -- loading a model: the GGUF file, its vocabulary, its architecture and
 * hyperparameters (lib/model_arch.c), and its weights.
 *
 * Ternary projections are repacked once, at load, into the single internal form of
 * kernels/kernels.h (bn_tmat: 2-bit codes in x128 order per row, plus the scale as the
 * file has it), whatever the file type:
 *   I2_S   one f32 scale per tensor (byte n/4); codes copied (rows of whole 128-blocks
 *          are already in our order) and checked: code 3 is refused;
 *   TQ2_0  blocks {u8 qs[64]; f16 d}: element 128c+32k+m in bits 2k of qs[32c+m];
 *          the 2-bit groups are mirrored into our order; code 3 is refused;
 *   TQ1_0  blocks {u8 qs[48]; u8 qh[4]; f16 d}: base-3 digits, decoded per docs/formats.md §3;
 *          for both TQ types, when every non-empty block carries the same d (what
 *          converters write) the tensor gets the per-tensor formula with scale d,
 *          otherwise per-block scales (kernels.h documents both formulas);
 *   F32 / F16 / BF16  must be ternary-valued {-s, 0, +s} with one s per tensor
 *          (else a load error naming the tensor and the offending value).
 * After a tensor is repacked the pages of the file mapping that held it are released
 * (madvise DONTNEED), so the model keeps one 2-bit copy, not two.
 * Embeddings and the output layer stay in the mapping in their file type (bn_dmat);
 * norms, biases and scales are copied to f32 arrays.
 */
#include "model.h"

#include "type_table.h"

#include <math.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

void bitnet_model_default_params(bitnet_model_params *p, size_t struct_size) {
    bitnet_model_params d;
    memset(&d, 0, sizeof d);
    d.isa = BITNET_ISA_AUTO;
    d.use_mmap = 1;
    bn_params_default(p, struct_size, &d, sizeof d);
}

/* ---- tensor lookup ------------------------------------------------------------------ */

/* Find tensor `name` and check its shape (ne1 = 0: a 1-D tensor of ne0).  Returns
 * NULL with *st = BITNET_OK when absent and optional. */
static const bn_gguf_tensor *bn_tensor(const bitnet_model *m, const char *name, int required, int64_t ne0,
                                       int64_t ne1, bitnet_status *st) {
    *st = BITNET_OK;
    int64_t i = bn_gguf_find_tensor(m->gguf, name);
    if (i < 0) {
        if (required) *st = bn_err(BITNET_E_FORMAT, "tensor '%s' is missing (architecture %s)", name, m->arch);
        return NULL;
    }
    const bn_gguf_tensor *t = &m->gguf->tensors[i];
    int ok = t->ne[0] == ne0 && t->ne[2] == 1 && t->ne[3] == 1 && (ne1 == 0 ? t->ne[1] == 1 : t->ne[1] == ne1);
    if (!ok) {
        *st = bn_err(BITNET_E_FORMAT, "tensor '%s' has shape {%lld, %lld, %lld, %lld}, expected {%lld, %lld}", name,
                     (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                     (long long)ne0, (long long)(ne1 ? ne1 : 1));
        return NULL;
    }
    return t;
}

/* Release the mapped pages of a tensor that has been copied (only for mmapped files;
 * a no-op otherwise).  Only whole pages inside the tensor are released. */
static void bn_release(const bitnet_model *m, const bn_gguf_tensor *t) {
    if (m->gguf->mapped != 1 || t->size == 0) return;
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    uintptr_t a = (uintptr_t)t->data, e = a + (uintptr_t)t->size;
    uintptr_t lo = (a + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1), hi = e & ~((uintptr_t)ps - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* A 1-D tensor of n floats converted to an owned f32 array. */
static bitnet_status bn_load_vec(bitnet_model *m, const char *name, int required, int64_t n, float **out) {
    bitnet_status st;
    *out = NULL;
    const bn_gguf_tensor *t = bn_tensor(m, name, required, n, 0, &st);
    if (!t) return st;
    const bn_type_traits *tr = bn_type_traits_get(t->type);
    if (!tr || !tr->to_float || n % tr->blck != 0)
        return bn_err(BITNET_E_UNSUPPORTED, "tensor '%s': type %s cannot be used for a vector", name,
                      tr ? tr->name : "?");
    float *v = bn_mallocn((size_t)n, sizeof(float));
    if (!v) return bn_err(BITNET_E_NOMEM, "tensor '%s': out of memory", name);
    tr->to_float(t->data, v, n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            bn_free(v);
            return bn_err(BITNET_E_FORMAT, "tensor '%s': element %lld is not finite", name, (long long)i);
        }
    m->size_bytes += (uint64_t)n * sizeof(float);
    *out = v;
    return BITNET_OK;
}

/* An optional single-float scale tensor ("<proj>.scale", 1bitLLM files). */
static bitnet_status bn_load_scalar(bitnet_model *m, const char *name, float *out) {
    float *v = NULL;
    *out = 1.0f;
    bitnet_status st = bn_load_vec(m, name, 0, 1, &v);
    if (st != BITNET_OK) return st;
    if (v) {
        *out = v[0];
        bn_free(v);
        m->size_bytes -= sizeof(float);
    }
    return BITNET_OK;
}

/* ---- ternary repacking -------------------------------------------------------------- */

/* Store code c (0..2) as element e of a packed row (x128 order). */
static inline void bn_put_code(uint8_t *row, int64_t e, unsigned c) {
    uint8_t *b = row + 32 * (e / 128) + (e % 32);
    unsigned sh = 6u - 2u * (unsigned)((e % 128) / 32);
    *b = (uint8_t)((*b & ~(3u << sh)) | (c << sh));
}

/* TQ2_0 byte (groups k at bits 2k) -> our byte (group k at bits 6-2k). */
static uint8_t bn_mirror2(uint8_t x) {
    return (uint8_t)(((x & 3u) << 6) | (((x >> 2) & 3u) << 4) | (((x >> 4) & 3u) << 2) | ((x >> 6) & 3u));
}

/* Decide between one tensor scale and per-block scales for TQ types.  d[] holds
 * rows*nb block scales, empty[] marks blocks whose codes are all "0". */
static bitnet_status bn_tq_scales(const char *name, bn_tmat *w, float *d, const uint8_t *empty, int64_t nblocks) {
    int have = 0, uniform = 1;
    float s = 0;
    for (int64_t i = 0; i < nblocks; i++) {
        if (!isfinite(d[i])) return bn_err(BITNET_E_FORMAT, "tensor '%s': block %lld has a non-finite scale", name, (long long)i);
        if (empty[i]) continue;
        if (!have) { s = d[i]; have = 1; }
        else if (d[i] != s) { uniform = 0; break; }
    }
    if (uniform) {
        w->scale = s;
        w->bscale = NULL;
        bn_free(d);
    } else {
        w->scale = 0;
        w->bscale = d;
    }
    return BITNET_OK;
}

static bitnet_status bn_tmat_load(bitnet_model *m, const char *name, int64_t ne0, int64_t ne1, bn_tmat *w) {
    bitnet_status st;
    const bn_gguf_tensor *t = bn_tensor(m, name, 1, ne0, ne1, &st);
    if (!t) return st;
    memset(w, 0, sizeof *w);
    w->rows = ne1;
    w->cols = ne0;
    w->cols_pad = (ne0 + BN_TMAT_BLOCK - 1) / BN_TMAT_BLOCK * BN_TMAT_BLOCK;
    w->row_bytes = w->cols_pad / 4;
    size_t nbytes = (size_t)w->rows * (size_t)w->row_bytes;
    w->codes = bn_aligned_alloc(64, nbytes);
    if (!w->codes) return bn_err(BITNET_E_NOMEM, "tensor '%s': out of memory for %zu bytes", name, nbytes);
    memset(w->codes, 0x55, nbytes); /* every code 1 = weight 0 (also the padding) */
    const uint8_t *src = t->data;
    const int64_t n = ne0 * ne1;

    switch (t->type) {
    case BITNET_TYPE_I2_S: {
        w->scale = bn_i2s_scale(src, n);
        if (!isfinite(w->scale))
            return bn_err(BITNET_E_FORMAT, "tensor '%s': I2_S scale is not finite", name);
        if (ne0 % 128 == 0) {
            for (int64_t r = 0; r < ne1; r++) {
                const uint8_t *s = src + r * (ne0 / 4);
                for (int64_t i = 0; i < ne0 / 4; i++)
                    if (s[i] & (s[i] >> 1) & 0x55)
                        return bn_err(BITNET_E_FORMAT, "tensor '%s': I2_S code 3 (not ternary) in row %lld", name,
                                      (long long)r);
                memcpy(w->codes + r * w->row_bytes, s, (size_t)(ne0 / 4));
            }
        } else { /* blocks straddle rows: go element by element */
            for (int64_t r = 0; r < ne1; r++)
                for (int64_t c = 0; c < ne0; c++) {
                    int v = bn_i2s_get(src, r * ne0 + c);
                    if (v < -1 || v > 1)
                        return bn_err(BITNET_E_FORMAT, "tensor '%s': I2_S code 3 (not ternary) at row %lld", name,
                                      (long long)r);
                    bn_put_code(w->codes + r * w->row_bytes, c, (unsigned)(v + 1));
                }
        }
        break;
    }
    case BITNET_TYPE_TQ2_0:
    case BITNET_TYPE_TQ1_0: {
        const int tq2 = t->type == BITNET_TYPE_TQ2_0;
        const int64_t nb = ne0 / 256, bsz = tq2 ? 66 : 54;
        float *d = bn_mallocn((size_t)(nb * ne1), sizeof(float));
        uint8_t *empty = bn_malloc((size_t)(nb * ne1));
        if (!d || !empty) {
            bn_free(d);
            bn_free(empty);
            return bn_err(BITNET_E_NOMEM, "tensor '%s': out of memory", name);
        }
        static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
        for (int64_t r = 0; r < ne1; r++) {
            uint8_t *row = w->codes + r * w->row_bytes;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = src + (r * nb + b) * bsz;
                int nonzero = 0;
                if (tq2) {
                    for (int i = 0; i < 64; i++) {
                        uint8_t x = blk[i];
                        if (x & (x >> 1) & 0x55) {
                            bn_free(d);
                            bn_free(empty);
                            return bn_err(BITNET_E_FORMAT, "tensor '%s': TQ2_0 code 3 (not ternary) in row %lld",
                                          name, (long long)r);
                        }
                        nonzero |= x != 0x55;
                        row[64 * b + i] = bn_mirror2(x);
                    }
                    d[r * nb + b] = bn_f16_to_f32(bn_rd_u16(blk + 64));
                } else {
                    int64_t e0 = 256 * b;
                    for (int j = 0; j < 32; j++)
                        for (int k = 0; k < 5; k++) {
                            unsigned c = ((unsigned)(uint8_t)(blk[j] * pow3[k]) * 3u) >> 8;
                            nonzero |= c != 1;
                            bn_put_code(row, e0 + 32 * k + j, c);
                        }
                    for (int j = 0; j < 16; j++)
                        for (int k = 0; k < 5; k++) {
                            unsigned c = ((unsigned)(uint8_t)(blk[32 + j] * pow3[k]) * 3u) >> 8;
                            nonzero |= c != 1;
                            bn_put_code(row, e0 + 160 + 16 * k + j, c);
                        }
                    for (int j = 0; j < 4; j++)
                        for (int k = 0; k < 4; k++) {
                            unsigned c = ((unsigned)(uint8_t)(blk[48 + j] * pow3[k]) * 3u) >> 8;
                            nonzero |= c != 1;
                            bn_put_code(row, e0 + 240 + 4 * k + j, c);
                        }
                    d[r * nb + b] = bn_f16_to_f32(bn_rd_u16(blk + 52));
                }
                empty[r * nb + b] = (uint8_t)!nonzero;
            }
        }
        st = bn_tq_scales(name, w, d, empty, nb * ne1);
        bn_free(empty);
        if (st != BITNET_OK) {
            bn_free(d);
            return st;
        }
        if (w->bscale) {
            m->size_bytes += (uint64_t)(nb * ne1) * sizeof(float);
            BN_LOG_INFO("tensor '%s': block scales differ, using per-block scales", name);
        }
        break;
    }
    case BITNET_TYPE_F32:
    case BITNET_TYPE_F16:
    case BITNET_TYPE_BF16: {
        const bn_type_traits *tr = bn_type_traits_get(t->type);
        float *buf = bn_mallocn((size_t)ne0, sizeof(float));
        if (!buf) return bn_err(BITNET_E_NOMEM, "tensor '%s': out of memory", name);
        float s = 0;
        uint64_t rb = bn_row_size(t->type, ne0);
        for (int64_t r = 0; r < ne1; r++) {
            tr->to_float(src + (uint64_t)r * rb, buf, ne0);
            uint8_t *row = w->codes + r * w->row_bytes;
            for (int64_t c = 0; c < ne0; c++) {
                float v = buf[c];
                if (v == 0) continue;
                float a = fabsf(v);
                if (s == 0 && isfinite(a)) s = a;
                if (a != s) {
                    bn_free(buf);
                    return bn_err(BITNET_E_FORMAT,
                                  "tensor '%s': %s weights are not ternary: value %g at row %lld, column %lld "
                                  "(expected 0 or +-%g, one scale per tensor)",
                                  name, tr->name, (double)v, (long long)r, (long long)c, (double)s);
                }
                bn_put_code(row, c, v > 0 ? 2u : 0u);
            }
        }
        bn_free(buf);
        w->scale = s;
        break;
    }
    default: {
        const char *tn = bitnet_type_name((bitnet_type)t->type);
        return bn_err(BITNET_E_UNSUPPORTED,
                      "tensor '%s': type %s is not supported for ternary projections (I2_S, TQ1_0, TQ2_0, "
                      "ternary-valued F32/F16/BF16)", name, tn ? tn : "?");
    }
    }
    if (m->k->tmat_repack && (st = m->k->tmat_repack(w)) != BITNET_OK) return st;
    m->size_bytes += nbytes + 4;
    bn_release(m, t);
    return BITNET_OK;
}

static void bn_tmat_free(bn_tmat *w) {
    bn_aligned_free(w->codes);
    bn_free(w->bscale);
    w->codes = NULL;
    w->bscale = NULL;
}

/* A dense matrix {ne0, ne1} kept in the mapping. */
static bitnet_status bn_dmat_load(bitnet_model *m, const bn_gguf_tensor *t, const char *name, bn_dmat *d) {
    if (!bn_dense_type_ok(t->type)) {
        const char *tn = bitnet_type_name((bitnet_type)t->type);
        return bn_err(BITNET_E_UNSUPPORTED,
                      "tensor '%s': type %s is not supported for embeddings/output (F32, F16, BF16, Q8_0, Q4_K, "
                      "Q6_K, TQ1_0, TQ2_0)", name, tn ? tn : "?");
    }
    memset(d, 0, sizeof *d); /* (d may hold a copy of tok_embd: start from nothing) */
    d->data = t->data;
    d->type = t->type;
    d->cols = t->ne[0];
    d->rows = t->ne[1];
    d->row_bytes = bn_row_size(t->type, t->ne[0]);
    if (d->row_bytes == 0 || d->row_bytes * (uint64_t)d->rows > t->size)
        return bn_err(BITNET_E_FORMAT, "tensor '%s': inconsistent size", name);
    /* the kernel variant may want its own copy in another layout; the file's pages
     * are then released so memory still holds one copy */
    if (m->k->dmat_repack) {
        bitnet_status st = m->k->dmat_repack(d);
        if (st != BITNET_OK) return st;
        if (d->owned) bn_release(m, t);
    }
    m->size_bytes += t->size;
    return BITNET_OK;
}

/* ---- the whole model ----------------------------------------------------------------- */

/* Identify the file: hyperparameters, the tensor table and samples of each tensor's
 * bytes (start and middle; computed before the mapping's pages are released). */
static uint64_t bn_fingerprint(const bitnet_model *m) {
    uint64_t h = BN_FNV_OFFSET;
    h = bn_fnv1a(h, m->arch, strlen(m->arch));
    h = bn_fnv1a(h, &m->hp, sizeof m->hp);
    const bitnet_gguf *g = m->gguf;
    h = bn_fnv1a(h, &g->n_tensors, sizeof g->n_tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bn_gguf_tensor *t = &g->tensors[i];
        h = bn_fnv1a(h, t->name, strlen(t->name));
        h = bn_fnv1a(h, t->ne, sizeof t->ne);
        h = bn_fnv1a(h, &t->type, sizeof t->type);
        h = bn_fnv1a(h, &t->size, sizeof t->size);
        size_t k = t->size < 64 ? (size_t)t->size : 64;
        h = bn_fnv1a(h, t->data, k);
        h = bn_fnv1a(h, (const uint8_t *)t->data + t->size / 2, (size_t)(t->size - t->size / 2) < k ? (size_t)(t->size - t->size / 2) : k);
    }
    return h;
}

static bitnet_status bn_load_weights(bitnet_model *m, const char *prefix) {
    const bn_hparams *hp = &m->hp;
    bitnet_status st;
    const int64_t n_embd = hp->n_embd, n_q = hp->n_head * hp->head_dim, n_kv = hp->n_head_kv * hp->head_dim;
    const int64_t n_ff = hp->n_ff;
    (void)prefix;

    /* embeddings */
    int64_t it = bn_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (it < 0) return bn_err(BITNET_E_FORMAT, "tensor 'token_embd.weight' is missing (architecture %s)", m->arch);
    const bn_gguf_tensor *te = &m->gguf->tensors[it];
    if (te->ne[0] != n_embd || te->ne[1] < hp->n_vocab || te->ne[2] != 1 || te->ne[3] != 1)
        return bn_err(BITNET_E_FORMAT, "tensor 'token_embd.weight' has shape {%lld, %lld}, expected {%lld, >= %lld}",
                      (long long)te->ne[0], (long long)te->ne[1], (long long)n_embd, (long long)hp->n_vocab);
    if ((st = bn_dmat_load(m, te, "token_embd.weight", &m->tok_embd)) != BITNET_OK) return st;
    const bn_type_traits *tr = bn_type_traits_get(te->type);
    if (!tr || !tr->to_float)
        return bn_err(BITNET_E_UNSUPPORTED, "tensor 'token_embd.weight': type cannot be dequantized");

    /* output layer */
    m->output = m->tok_embd;
    int64_t io = bn_gguf_find_tensor(m->gguf, "output.weight");
    if (io >= 0 && m->arch_id == BN_ARCH_BITNET_B158) {
        BN_LOG_INFO("tensor 'output.weight' present but unused: %s ties the output layer to token_embd", m->arch);
    } else if (io >= 0) {
        const bn_gguf_tensor *to = &m->gguf->tensors[io];
        if (to->ne[0] != n_embd || to->ne[1] < hp->n_vocab || to->ne[2] != 1 || to->ne[3] != 1)
            return bn_err(BITNET_E_FORMAT, "tensor 'output.weight' has shape {%lld, %lld}, expected {%lld, >= %lld}",
                          (long long)to->ne[0], (long long)to->ne[1], (long long)n_embd, (long long)hp->n_vocab);
        if ((st = bn_dmat_load(m, to, "output.weight", &m->output)) != BITNET_OK) return st;
    }
    if ((st = bn_load_vec(m, "output_norm.weight", 1, n_embd, &m->output_norm)) != BITNET_OK) return st;
    if ((st = bn_load_vec(m, "rope_freqs.weight", 0, hp->n_rot / 2, &m->rope_freqs)) != BITNET_OK) return st;

    m->layers = bn_calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return bn_err(BITNET_E_NOMEM, "out of memory for %lld layers", (long long)hp->n_layer);
    char nm[96];
#define BN_NAME(fmt) (snprintf(nm, sizeof nm, "blk.%lld." fmt, (long long)l), nm)
    for (int64_t l = 0; l < hp->n_layer; l++) {
        bn_layer *L = &m->layers[l];
        if ((st = bn_load_vec(m, BN_NAME("attn_norm.weight"), 1, n_embd, &L->attn_norm)) != BITNET_OK) return st;
        if ((st = bn_load_vec(m, BN_NAME("ffn_norm.weight"), 1, n_embd, &L->ffn_norm)) != BITNET_OK) return st;
        if (m->sub_norms) {
            if ((st = bn_load_vec(m, BN_NAME("attn_sub_norm.weight"), 1, n_q, &L->attn_sub_norm)) != BITNET_OK)
                return st;
            if ((st = bn_load_vec(m, BN_NAME("ffn_sub_norm.weight"), 1, n_ff, &L->ffn_sub_norm)) != BITNET_OK)
                return st;
        }
        if ((st = bn_tmat_load(m, BN_NAME("attn_q.weight"), n_embd, n_q, &L->wq)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, BN_NAME("attn_k.weight"), n_embd, n_kv, &L->wk)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, BN_NAME("attn_v.weight"), n_embd, n_kv, &L->wv)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, BN_NAME("attn_output.weight"), n_q, n_embd, &L->wo)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, BN_NAME("ffn_gate.weight"), n_embd, n_ff, &L->wgate)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, BN_NAME("ffn_up.weight"), n_embd, n_ff, &L->wup)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, BN_NAME("ffn_down.weight"), n_ff, n_embd, &L->wdown)) != BITNET_OK) return st;
        if ((st = bn_load_vec(m, BN_NAME("attn_q.bias"), 0, n_q, &L->bq)) != BITNET_OK) return st;
        if ((st = bn_load_vec(m, BN_NAME("attn_k.bias"), 0, n_kv, &L->bk)) != BITNET_OK) return st;
        if ((st = bn_load_vec(m, BN_NAME("attn_v.bias"), 0, n_kv, &L->bv)) != BITNET_OK) return st;
        if ((st = bn_load_vec(m, BN_NAME("attn_output.bias"), 0, n_embd, &L->bo)) != BITNET_OK) return st;
        if ((st = bn_load_vec(m, BN_NAME("ffn_gate.bias"), 0, n_ff, &L->bgate)) != BITNET_OK) return st;
        if ((st = bn_load_vec(m, BN_NAME("ffn_up.bias"), 0, n_ff, &L->bup)) != BITNET_OK) return st;
        if ((st = bn_load_vec(m, BN_NAME("ffn_down.bias"), 0, n_embd, &L->bdown)) != BITNET_OK) return st;
        if ((st = bn_load_scalar(m, BN_NAME("attn_q.scale"), &L->sq)) != BITNET_OK) return st;
        if ((st = bn_load_scalar(m, BN_NAME("attn_k.scale"), &L->sk)) != BITNET_OK) return st;
        if ((st = bn_load_scalar(m, BN_NAME("attn_v.scale"), &L->sv)) != BITNET_OK) return st;
        if ((st = bn_load_scalar(m, BN_NAME("attn_output.scale"), &L->so)) != BITNET_OK) return st;
        if ((st = bn_load_scalar(m, BN_NAME("ffn_gate.scale"), &L->sgate)) != BITNET_OK) return st;
        if ((st = bn_load_scalar(m, BN_NAME("ffn_up.scale"), &L->sup)) != BITNET_OK) return st;
        if ((st = bn_load_scalar(m, BN_NAME("ffn_down.scale"), &L->sdown)) != BITNET_OK) return st;
    }
#undef BN_NAME
    int64_t iq = bn_gguf_find_tensor(m->gguf, "blk.0.attn_q.weight");
    m->weight_type = iq >= 0 ? m->gguf->tensors[iq].type : 0;
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) m->n_params += (int64_t)m->gguf->tensors[i].n_elements;
    return BITNET_OK;
}

bitnet_status bitnet_model_load(const char *path, const bitnet_model_params *params, bitnet_model **out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_model_load: out is NULL");
    *out = NULL;
    if (!path) return bn_err(BITNET_E_INVALID_ARG, "bitnet_model_load: path is NULL");
    bitnet_model_params p;
    bitnet_model_default_params(&p, sizeof p);
    bitnet_status pst = bn_params_read(&p, sizeof p, params, "model");
    if (pst != BITNET_OK) return pst;

    bitnet_model *m = bn_calloc(1, sizeof *m);
    if (!m) return bn_err(BITNET_E_NOMEM, "out of memory allocating the model");
    bitnet_status st = bn_gguf_open_file(path, p.use_mmap, &m->gguf);
    if (st != BITNET_OK) goto fail;
    st = bn_vocab_load(m->gguf, p.pretokenizer, &m->vocab);
    if (st != BITNET_OK) goto fail;
    m->vocab_only = p.vocab_only != 0;
    if (m->vocab_only) {
        snprintf(m->arch, sizeof m->arch, "%s", "vocab");
        snprintf(m->desc, sizeof m->desc, "vocabulary only, %d tokens", (int)bn_vocab_n_tokens(m->vocab));
        *out = m;
        return BITNET_OK;
    }

    st = bn_kernels_select(p.isa, &m->k);
    if (st != BITNET_OK) goto fail;
    char prefix[64];
    st = bn_arch_decide(m->gguf, p.arch, &m->arch_id, prefix, sizeof prefix);
    if (st != BITNET_OK) goto fail;
    snprintf(m->arch, sizeof m->arch, "%s", bn_arch_name(m->arch_id));
    m->sub_norms = m->arch_id != BN_ARCH_LLAMA;
    m->relu2 = m->arch_id == BN_ARCH_BITNET_B158;
    m->rope_neox = m->arch_id != BN_ARCH_LLAMA;
    st = bn_hparams_load(m->gguf, prefix, bn_vocab_n_tokens(m->vocab), &m->hp);
    if (st != BITNET_OK) goto fail;
    m->fingerprint = bn_fingerprint(m);
    st = bn_load_weights(m, prefix);
    if (st != BITNET_OK) goto fail;
    const char *wt = bitnet_type_name((bitnet_type)m->weight_type);
    double np = (double)m->n_params;
    snprintf(m->desc, sizeof m->desc, "%s %lldL %lldd %s %.2f%s params", m->arch, (long long)m->hp.n_layer,
             (long long)m->hp.n_embd, wt ? wt : "?", np >= 1e9 ? np / 1e9 : np / 1e6, np >= 1e9 ? "B" : "M");
    BN_LOG_INFO("loaded %s: %s, %.1f MiB of weights in memory, kernels %s", path, m->desc,
                (double)m->size_bytes / (1024.0 * 1024.0), m->k->name);
    *out = m;
    return BITNET_OK;
fail:
    bitnet_model_free(m);
    return st;
}

void bitnet_model_free(bitnet_model *m) {
    if (!m) return;
    if (m->layers) {
        for (int64_t l = 0; l < m->hp.n_layer; l++) {
            bn_layer *L = &m->layers[l];
            bn_free(L->attn_norm);
            bn_free(L->attn_sub_norm);
            bn_free(L->ffn_norm);
            bn_free(L->ffn_sub_norm);
            bn_tmat_free(&L->wq);
            bn_tmat_free(&L->wk);
            bn_tmat_free(&L->wv);
            bn_tmat_free(&L->wo);
            bn_tmat_free(&L->wgate);
            bn_tmat_free(&L->wup);
            bn_tmat_free(&L->wdown);
            bn_free(L->bq);
            bn_free(L->bk);
            bn_free(L->bv);
            bn_free(L->bo);
            bn_free(L->bgate);
            bn_free(L->bup);
            bn_free(L->bdown);
        }
        bn_free(m->layers);
    }
    if (m->output.owned != m->tok_embd.owned) bn_aligned_free(m->output.owned); /* (tied: the same copy) */
    bn_aligned_free(m->tok_embd.owned);
    bn_free(m->output_norm);
    bn_free(m->rope_freqs);
    bn_vocab_free(m->vocab);
    bitnet_gguf_close(m->gguf);
    bn_free(m);
}

const bitnet_gguf *bitnet_model_gguf(const bitnet_model *m) { return m ? m->gguf : NULL; }
const char *bitnet_model_arch(const bitnet_model *m) { return m ? m->arch : NULL; }
const char *bitnet_model_desc(const bitnet_model *m) { return m ? m->desc : NULL; }

int64_t bitnet_model_get_info(const bitnet_model *m, bitnet_model_info what) {
    if (!m) return 0;
    if (what == BITNET_INFO_N_VOCAB) return bn_vocab_n_tokens(m->vocab);
    if (m->vocab_only) return what == BITNET_INFO_ISA ? BITNET_ISA_SCALAR : 0;
    switch (what) {
    case BITNET_INFO_N_VOCAB: return m->hp.n_vocab;
    case BITNET_INFO_N_CTX_TRAIN: return m->hp.n_ctx_train;
    case BITNET_INFO_N_EMBD: return m->hp.n_embd;
    case BITNET_INFO_N_LAYER: return m->hp.n_layer;
    case BITNET_INFO_N_HEAD: return m->hp.n_head;
    case BITNET_INFO_N_HEAD_KV: return m->hp.n_head_kv;
    case BITNET_INFO_N_FF: return m->hp.n_ff;
    case BITNET_INFO_HEAD_DIM: return m->hp.head_dim;
    case BITNET_INFO_N_PARAMS: return m->n_params;
    case BITNET_INFO_SIZE_BYTES: return (int64_t)m->size_bytes;
    case BITNET_INFO_WEIGHT_TYPE: return m->weight_type;
    case BITNET_INFO_ISA: return m->k ? m->k->isa : BITNET_ISA_SCALAR;
    }
    return 0;
}
