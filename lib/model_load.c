/*
 * model_load.c -- loading a model: the GGUF file, its vocabulary, its architecture and
 * hyperparameters (lib/model_arch.c), and its weights.
 *
 * Ternary projections are converted once, at load, from whatever the file holds (I2_S,
 * TL1, TL2, TQ2_0, TQ1_0, ternary-valued F32/F16/BF16: lib/model_decode.c, model_tl.c)
 * straight into the layout the kernel variant reads (the x128 rows of kernels.h, or
 * G4X256 groups), in one pass on a transient pool of threads.  For TQ types, when every
 * non-empty block carries the same d (what converters write) the tensor gets the
 * per-tensor formula with scale d, otherwise per-block scales (kernels.h).  Hostile
 * weights (code 3, values that are not ternary, NaN / infinity anywhere, a non-finite
 * scale) are refused with the tensor, row and column.
 * Tensor data of 1 MiB or more is copied from the page cache with pread (bn_loader),
 * smaller tensors are read through the mapping, whose pages are released afterwards
 * (madvise DONTNEED), so the model keeps one 2-bit copy, not two; the next layer's
 * tensors are read ahead meanwhile (MADV_WILLNEED) for cold loads.
 * Embeddings and the output layer are checked for NaN / infinity and stay in the
 * mapping in their file type (bn_dmat), or are laid out for the variant (F16 G4X32),
 * range by range with each range's file pages released at once; norms, biases and
 * scales are copied to f32 arrays (also checked).
 */
#include "model.h"

#include "core_pool.h"
#include "model_decode.h"
#include "type_table.h"

#include <math.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
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

/* ---- loading on several threads --------------------------------------------------------
 * Converting and laying out the weights runs on a transient pool (the model keeps no
 * threads): one thread per available CPU, at most BN_LOAD_MAX_THREADS.  Work is cut in
 * ranges of rows claimed from a counter; every range writes its own part of the output,
 * so the result does not depend on the threads.  Each thread records the first problem
 * it saw (lowest row, then column) and the caller reports the lowest of all, so the
 * message is deterministic too. */
#define BN_LOAD_MAX_THREADS 8

static int bn_load_threads(void) {
    int n = 1;
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
#endif
    if (n < 1) n = 1;
    return n > BN_LOAD_MAX_THREADS ? BN_LOAD_MAX_THREADS : n;
}

/* What a load works with: the threads, and the file opened once more for reading
 * tensor data with pread: copying a tensor from the page cache into a reused buffer
 * costs less than mapping its pages (faults, or MADV_POPULATE_READ) and unmapping them
 * again (MADV_DONTNEED), which dominated loading; the mapping then serves metadata and
 * the tensors that stay in it.  fd < 0: read through the mapping. */
typedef struct bn_loader {
    bn_pool *pool;
    int      fd;
    uint8_t *rbuf; /* one tensor's bytes (bn_aligned_alloc) */
    size_t   rcap;
} bn_loader;

#define BN_PREAD_MIN ((uint64_t)1 << 20) /* smaller tensors are read through the mapping */

/* Read n bytes at file offset off into dst; 0 on success. */
static int bn_pread_all(int fd, void *dst, uint64_t n, uint64_t off) {
    uint8_t *d = dst;
    while (n > 0) {
        size_t k = n > ((uint64_t)1 << 30) ? (size_t)1 << 30 : (size_t)n;
        ssize_t r = pread(fd, d, k, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        d += r;
        off += (uint64_t)r;
        n -= (uint64_t)r;
    }
    return 0;
}

/* The bytes of tensor t: a copy in L->rbuf when the file can be read, else the mapping. */
static const uint8_t *bn_tensor_bytes(const bitnet_model *m, bn_loader *L, const bn_gguf_tensor *t) {
    if (L->fd < 0 || t->size < BN_PREAD_MIN || t->size > SIZE_MAX) return t->data;
    if (t->size > L->rcap) {
        bn_aligned_free(L->rbuf);
        L->rcap = 0;
        L->rbuf = bn_aligned_alloc(64, (size_t)t->size);
        if (!L->rbuf) return t->data; /* (no memory for the copy: read through the mapping) */
        L->rcap = (size_t)t->size;
    }
    const uint64_t off = (uint64_t)((const uint8_t *)t->data - m->gguf->base);
    return bn_pread_all(L->fd, L->rbuf, t->size, off) == 0 ? L->rbuf : t->data;
}

/* Release whole pages of the mapping inside [p, p + n) (see bn_release). */
static void bn_release_range(const bitnet_model *m, const void *p, uint64_t n) {
    if (m->gguf->mapped != 1 || n == 0) return;
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    uintptr_t a = (uintptr_t)p, e = a + (uintptr_t)n;
    uintptr_t lo = (a + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1), hi = e & ~((uintptr_t)ps - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Map the file pages of [p, p + n) in one call (MADV_POPULATE_READ, Linux 5.14+)
 * instead of a page fault per few pages while the threads read them; the pages must be
 * in memory anyway, and a kernel without it just faults them in as before. */
static void bn_populate(const bitnet_model *m, const void *p, uint64_t n) {
#ifdef MADV_POPULATE_READ
    if (m->gguf->mapped != 1 || n == 0) return;
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    uintptr_t a = (uintptr_t)p & ~((uintptr_t)ps - 1);
    (void)madvise((void *)a, (uintptr_t)p + (uintptr_t)n - a, MADV_POPULATE_READ);
#else
    (void)m, (void)p, (void)n;
#endif
}

/* Ask the kernel to read a tensor ahead (cold loads: the next tensors' I/O overlaps the
 * conversion of this one). */
static void bn_prefetch(const bitnet_model *m, const char *name) {
    int64_t i = bn_gguf_find_tensor(m->gguf, name);
    if (i < 0 || m->gguf->mapped != 1) return;
    const bn_gguf_tensor *t = &m->gguf->tensors[i];
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0 || t->size == 0) return;
    uintptr_t a = (uintptr_t)t->data & ~((uintptr_t)ps - 1);
    (void)madvise((void *)a, (uintptr_t)t->data + (uintptr_t)t->size - a, MADV_WILLNEED);
}

/* An error of a worker as the caller's message. */
static bitnet_status bn_derr_status(const bn_derr *e, const char *name, uint32_t type) {
    const char *tn = bitnet_type_name((bitnet_type)type);
    if (!tn) tn = type == BN_TYPE_TL1 ? "TL1" : type == BN_TYPE_TL2 ? "TL2" : "?";
    switch (e->kind) {
    case BN_DERR_CODE3:
        return bn_err(BITNET_E_FORMAT, "tensor '%s': %s code 3 (not ternary) at row %lld, column %lld", name, tn,
                      (long long)e->row, (long long)e->col);
    case BN_DERR_NONFINITE:
        return bn_err(BITNET_E_FORMAT, "tensor '%s': %s value %g at row %lld, column %lld is not finite", name, tn,
                      e->value, (long long)e->row, (long long)e->col);
    case BN_DERR_TL_INDEX:
        return bn_err(BITNET_E_FORMAT, "tensor '%s': %s index %g at row %lld, column %lld is out of range (not ternary)",
                      name, tn, e->value, (long long)e->row, (long long)e->col);
    case BN_DERR_SCALE:
        return bn_err(BITNET_E_FORMAT,
                      "tensor '%s': the %s block scale of row %lld, columns %lld.. is not finite (%g)", name, tn,
                      (long long)e->row, (long long)e->col, e->value);
    default:
        return bn_err(BITNET_E_FORMAT,
                      "tensor '%s': %s weights are not ternary: value %g at row %lld, column %lld (expected 0 or "
                      "+-s with one s per tensor)", name, tn, e->value, (long long)e->row, (long long)e->col);
    }
}

/* ---- ternary matrices ----------------------------------------------------------------------
 * One pass from the file to the layout the kernels read: rows are decoded into x128
 * rows (lib/model_decode.c) in a small per-thread buffer and, when the kernel variant
 * reads G4X256 or G16, packed into their group right away; the row form is written
 * directly.  Storage is padded in memory: rows to whole groups (dummy rows of code 1,
 * never computed), row length to bn_act_pad(cols) (zero-weight codes). */

/* Decide between one tensor scale and per-block scales for TQ types.  d[] holds
 * rows*nb block scales, empty[] marks blocks whose codes are all "0". */
static void bn_tq_scales(bn_tmat *w, float *d, const uint8_t *empty, int64_t nblocks) {
    int have = 0, uniform = 1;
    float s = 0;
    for (int64_t i = 0; i < nblocks; i++) {
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
}

typedef struct bn_tjob {
    const bn_tsrc  *src;
    bn_tmat        *w;
    int             grp;        /* pack into groups: 4 (BN_TMAT_G4X256), 16
                                   (BN_TMAT_G16), else 0 (rows)                  */
    int64_t         tile;       /* rows per claimed range (a multiple of 16)     */
    int64_t         rows_pad;   /* round_up(rows, grp)                           */
    int64_t         used;       /* bytes of a row the decoders write             */
    uint8_t        *buf;        /* per thread: scratch, a tile of x128 rows, then
                                   (streamed) the tile's file bytes              */
    size_t          scratch_per, per;
    int             fd;         /* streamed: each tile's rows are read with pread */
    uint64_t        off0, srb;  /* (the tensor's file offset and row size) into   */
    size_t          tile_per;   /* the thread's buffer, or fd < 0: the mapping    */
    bn_derr        *err;        /* per thread                                    */
    _Atomic int64_t next;
} bn_tjob;

static void bn_tjob_task(void *ctx, int ith, int nth) {
    bn_tjob *j = ctx;
    (void)nth;
    bn_tmat *w = j->w;
    const int64_t rb = w->row_bytes;
    uint8_t *scratch = j->buf + (size_t)ith * j->per, *tilebuf = scratch + j->scratch_per;
    uint8_t *filebuf = tilebuf + j->tile_per;
    int64_t lo, hi;
    while (bn_claim(&j->next, j->rows_pad, j->tile, &lo, &hi)) {
        uint8_t *out = j->grp ? tilebuf : w->codes + (size_t)lo * (size_t)rb;
        const int64_t real = hi < w->rows ? hi : w->rows;
        bn_derr e = {0};
        int bad = 0;
        if (lo < real && j->fd >= 0 &&
            bn_pread_all(j->fd, filebuf, (uint64_t)(real - lo) * j->srb, j->off0 + (uint64_t)lo * j->srb) == 0) {
            /* the tile's rows as a tensor of their own (row-contiguous types only) */
            bn_tsrc ls = *j->src;
            const int64_t nb = w->cols / 256;
            ls.data = filebuf;
            ls.ne1 = real - lo;
            if (ls.bd) ls.bd += lo * nb, ls.bempty += lo * nb;
            bad = bn_tsrc_rows(&ls, 0, real - lo, out, rb, scratch, &e);
            e.row += lo;
        } else if (lo < real) {
            bad = bn_tsrc_rows(j->src, lo, real, out, rb, scratch, &e);
        }
        if (bad) {
            bn_derr_merge(&j->err[ith], &e);
            continue;
        }
        for (int64_t r = lo; r < real; r++) memset(out + (r - lo) * rb + j->used, 0x55, (size_t)(rb - j->used));
        if (real < hi) memset(out + (real - lo) * rb, 0x55, (size_t)((hi - real) * rb)); /* dummy rows */
        if (j->grp == 4)
            for (int64_t g = lo; g < hi; g += 4)
                bn_g4x256_pack_group(tilebuf + (g - lo) * rb, rb, w->codes + (size_t)g * (size_t)rb);
        else if (j->grp == 16)
            for (int64_t g = lo; g < hi; g += 16)
                bn_g16_pack_group(tilebuf + (g - lo) * rb, rb, w->codes + (size_t)g * (size_t)rb);
    }
}

/* The file bytes of one row of a tensor whose rows are contiguous and independent in the
 * file (so a range of rows can be read and decoded on its own), or 0. */
static uint64_t bn_tsrc_row_bytes(const bn_tsrc *src) {
    switch (src->type) {
    case BITNET_TYPE_I2_S: return src->ne0 % 128 == 0 ? (uint64_t)src->ne0 / 4 : 0; /* (else rows share blocks) */
    case BITNET_TYPE_TQ2_0: return (uint64_t)(src->ne0 / 256) * 66;
    case BITNET_TYPE_TQ1_0: return (uint64_t)(src->ne0 / 256) * 54;
    case BITNET_TYPE_F32: return (uint64_t)src->ne0 * 4;
    case BITNET_TYPE_F16:
    case BITNET_TYPE_BF16: return (uint64_t)src->ne0 * 2;
    default: return 0;
    }
}

/* Decode the whole tensor into w (codes allocated, scale fields set by the caller).
 * fd >= 0: the tensor's rows are read from the file at off0 tile by tile, by each thread
 * into its own buffer (the copy runs on every thread, and decoding reads it from the
 * cache); else src->data is read. */
static bitnet_status bn_tjob_run(bn_pool *pool, const bn_tsrc *src, bn_tmat *w, int grp, const char *name, int fd,
                                 uint64_t off0) {
    const int nth = bn_pool_size(pool);
    bn_tjob j;
    memset(&j, 0, sizeof j);
    j.src = src;
    j.w = w;
    j.grp = grp;
    j.rows_pad = grp ? (w->rows + grp - 1) / grp * grp : (w->rows + 3) / 4 * 4;
    j.srb = fd >= 0 ? bn_tsrc_row_bytes(src) : 0;
    j.fd = j.srb ? fd : -1;
    j.off0 = off0;
    j.tile = src->tl ? bn_tl_tile_rows(src) : 16;
    if (j.fd >= 0) { /* about 256 KiB of file per tile: few reads, and the tile stays in L2 */
        int64_t t = (int64_t)(((uint64_t)256 << 10) / j.srb) / 16 * 16;
        j.tile = t < 16 ? 16 : t > 1024 ? 1024 : t;
    }
    j.used = (w->cols + 127) / 128 * 32;
    j.scratch_per = (bn_tsrc_scratch(src, w->cols_pad) + 63) / 64 * 64;
    j.tile_per = ((size_t)j.tile * (size_t)w->row_bytes + 63) / 64 * 64;
    j.per = j.scratch_per + j.tile_per + (j.fd >= 0 ? ((size_t)j.tile * (size_t)j.srb + 63) / 64 * 64 : 0);
    j.buf = bn_aligned_alloc(64, (size_t)nth * j.per);
    j.err = bn_calloc((size_t)nth, sizeof *j.err);
    if (!j.buf || !j.err) {
        bn_aligned_free(j.buf);
        bn_free(j.err);
        return bn_err(BITNET_E_NOMEM, "tensor '%s': out of memory for the conversion buffers", name);
    }
    bn_pool_run(pool, bn_tjob_task, &j);
    bn_derr e = {0};
    for (int i = 0; i < nth; i++) bn_derr_merge(&e, &j.err[i]);
    bn_aligned_free(j.buf);
    bn_free(j.err);
    if (e.kind != BN_DERR_NONE) return bn_derr_status(&e, name, src->type);
    w->layout = grp == 4 ? BN_TMAT_G4X256 : grp == 16 ? BN_TMAT_G16 : BN_TMAT_ROWS;
    return BITNET_OK;
}

static bitnet_status bn_tmat_load(bitnet_model *m, bn_loader *L, const char *name, int64_t ne0, int64_t ne1,
                                  bn_tmat *w) {
    bitnet_status st;
    const bn_gguf_tensor *t = bn_tensor(m, name, 1, ne0, ne1, &st);
    if (!t) return st;
    memset(w, 0, sizeof *w);
    w->rows = ne1;
    w->cols = ne0;
    w->cols_pad = bn_act_pad(ne0);
    w->row_bytes = w->cols_pad / 4;
    const int64_t n = ne0 * ne1;
    bn_pool *pool = L->pool;
    bn_tsrc src;
    memset(&src, 0, sizeof src);
    src.type = t->type;
    src.data = t->data;
    src.ne0 = ne0;
    src.ne1 = ne1;
    bn_derr e = {0};
    switch (t->type) {
    case BITNET_TYPE_I2_S:
        w->scale = bn_i2s_scale(t->data, n);
        if (!isfinite(w->scale))
            return bn_err(BITNET_E_FORMAT, "tensor '%s': I2_S scale %g is not finite", name, (double)w->scale);
        break;
    case BITNET_TYPE_TQ2_0:
    case BITNET_TYPE_TQ1_0:
        src.bd = bn_mallocn((size_t)(n / 256), sizeof(float));
        src.bempty = bn_malloc((size_t)(n / 256));
        if (!src.bd || !src.bempty) {
            bn_free(src.bd);
            bn_free(src.bempty);
            return bn_err(BITNET_E_NOMEM, "tensor '%s': out of memory", name);
        }
        break;
    case BITNET_TYPE_F32:
    case BITNET_TYPE_F16:
    case BITNET_TYPE_BF16:
        if (bn_tsrc_float_scale(&src, &e)) return bn_derr_status(&e, name, t->type);
        w->scale = t->type == BITNET_TYPE_F32   ? bn_rd_f32(&src.s_bits)
                   : t->type == BITNET_TYPE_F16 ? bn_f16_to_f32((uint16_t)src.s_bits)
                                                : bn_bf16_to_f32((uint16_t)src.s_bits);
        break;
    case BN_TYPE_TL1:
    case BN_TYPE_TL2:
        if ((st = bn_tl_prepare(m->gguf, t, name, &src, &w->scale)) != BITNET_OK) return st;
        break;
    default: {
        const char *tn = bitnet_type_name((bitnet_type)t->type);
        return bn_err(BITNET_E_UNSUPPORTED,
                      "tensor '%s': type %s is not supported for ternary projections (I2_S, TL1, TL2, TQ1_0, TQ2_0, "
                      "ternary-valued F32/F16/BF16)", name, tn ? tn : "?");
    }
    }
    /* the variant's layout: G4X256 and G16 are made here directly (when a tile of rows
     * holds whole groups); another repacker runs after */
    int grp = m->k->tmat_repack == bn_tmat_repack_g4x256 ? 4 : m->k->tmat_repack == bn_tmat_repack_g16 ? 16 : 0;
    if (grp && src.tl && bn_tl_tile_rows(&src) % grp != 0) grp = 0;
    const size_t nbytes = (size_t)((ne1 + 15) / 16 * 16) * (size_t)w->row_bytes;
    w->codes = bn_aligned_alloc(64, nbytes);
    if (!w->codes) {
        st = bn_err(BITNET_E_NOMEM, "tensor '%s': out of memory for %zu bytes", name, nbytes);
        goto fail;
    }
    /* row-contiguous types are read tile by tile on the threads (bn_tjob_run); the
     * others as a whole, into the loader's buffer, or through the mapping */
    const uint64_t off0 = (uint64_t)((const uint8_t *)t->data - m->gguf->base);
    const int stream = L->fd >= 0 && bn_tsrc_row_bytes(&src) != 0 && t->size >= BN_PREAD_MIN;
    if (!stream) {
        src.data = bn_tensor_bytes(m, L, t);
        if (src.data == t->data) bn_populate(m, t->data, t->size);
    }
    if ((st = bn_tjob_run(pool, &src, w, grp, name, stream ? L->fd : -1, off0)) != BITNET_OK) goto fail;
    if (src.bd) {
        bn_tq_scales(w, src.bd, src.bempty, n / 256); /* src.bd is now w->bscale, or freed */
        if (w->bscale) { /* per-block scales: the kernels read those rows with the scalar code */
            m->size_bytes += (uint64_t)(n / 256) * sizeof(float);
            BN_LOG_INFO("tensor '%s': block scales differ, using per-block scales", name);
            if (grp) st = bn_tjob_run(pool, &src, w, 0, name, stream ? L->fd : -1, off0); /* (writes the same scales again) */
        }
        src.bd = NULL;
        bn_free(src.bempty);
        src.bempty = NULL;
        if (st != BITNET_OK) goto fail;
    }
    if (!grp && m->k->tmat_repack && (st = m->k->tmat_repack(w)) != BITNET_OK) goto fail;
    m->size_bytes += nbytes + 4;
    bn_release(m, t);
    return BITNET_OK;
fail:
    bn_free(src.bd);
    bn_free(src.bempty);
    return st;
}

static void bn_tmat_free(bn_tmat *w) {
    bn_aligned_free(w->codes);
    bn_free(w->bscale);
    w->codes = NULL;
    w->bscale = NULL;
}

/* ---- dense matrices (embeddings, output) ---------------------------------------------------
 * Checked for NaN / infinity (every value of float types, the block scales of block
 * types) on the pool; an F16 matrix the variant reads in G4X32 is checked and copied
 * range by range, and the file pages of each finished range are released at once, so
 * memory never holds two copies of it. */

typedef struct bn_djob {
    const bitnet_model *m;
    const bn_gguf_tensor *t;
    bn_dmat            *d;
    uint8_t            *dst;   /* G4X32 copy, or NULL: check only */
    int64_t             chunk;
    int                 fd;    /* read ranges with pread into buf (per thread), or -1 */
    uint8_t            *buf;
    bn_derr            *err;
    _Atomic int64_t     next;
} bn_djob;

static void bn_djob_task(void *ctx, int ith, int nth) {
    bn_djob *j = ctx;
    (void)nth;
    const bn_dmat *d = j->d;
    const uint64_t srb = bn_row_size(d->type, d->cols), off0 = (uint64_t)((const uint8_t *)j->t->data - j->m->gguf->base);
    int64_t lo, hi;
    while (bn_claim(&j->next, d->rows, j->chunk, &lo, &hi)) {
        const uint8_t *src = (const uint8_t *)j->t->data + (uint64_t)lo * srb, *mapped = src;
        const uint64_t n = (uint64_t)(hi - lo) * srb;
        uint8_t *mine = j->buf ? j->buf + (size_t)ith * (size_t)j->chunk * (size_t)srb : NULL;
        if (mine && bn_pread_all(j->fd, mine, n, off0 + (uint64_t)lo * srb) == 0) src = mine;
        else bn_populate(j->m, src, n);
        bn_derr e = {0};
        if (bn_dense_check_rows(d->type, src, srb, d->cols, 0, hi - lo, &e)) {
            e.row += lo;
            bn_derr_merge(&j->err[ith], &e);
            continue;
        }
        if (j->dst) {
            bn_dmat_g4x32_rows(src, d->rows, d->cols, lo, hi, j->dst);
            if (src == mapped) bn_release_range(j->m, mapped, n);
        }
    }
}

/* A dense matrix {ne0, ne1}: checked, and kept in the mapping or laid out for the
 * variant. */
static bitnet_status bn_dmat_load(bitnet_model *m, bn_loader *L, const bn_gguf_tensor *t, const char *name,
                                  bn_dmat *d) {
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
    bn_pool *pool = L->pool;
    const int nth = bn_pool_size(pool);
    bn_djob j;
    memset(&j, 0, sizeof j);
    j.m = m;
    j.t = t;
    j.d = d;
    /* about 256 KiB of the file per range (at least 4 rows: G4X32 groups stay whole), so
     * the checks and the copy read it from L2 */
    j.chunk = (int64_t)(((uint64_t)256 << 10) / (d->row_bytes ? d->row_bytes : 1)) / 4 * 4;
    j.chunk = j.chunk < 4 ? 4 : j.chunk > 256 ? 256 : j.chunk;
    j.fd = L->fd;
    if (L->fd >= 0 && t->size >= BN_PREAD_MIN)
        j.buf = bn_aligned_alloc(64, (size_t)nth * (size_t)j.chunk * (size_t)d->row_bytes); /* NULL: the mapping */
    const int g4 = m->k->dmat_repack == bn_dmat_repack_g4x32 && t->type == BITNET_TYPE_F16 && d->rows >= 4;
    const uint64_t rb = bn_dmat_g4x32_row_bytes(d->cols);
    if (g4) {
        j.dst = bn_aligned_alloc(64, (size_t)d->rows * (size_t)rb);
        if (!j.dst) return bn_err(BITNET_E_NOMEM, "tensor '%s': out of memory for a %lld x %lld matrix", name,
                                  (long long)d->rows, (long long)d->cols);
    }
    j.err = bn_calloc((size_t)nth, sizeof *j.err);
    if (!j.err) {
        bn_aligned_free(j.dst);
        bn_aligned_free(j.buf);
        return bn_err(BITNET_E_NOMEM, "tensor '%s': out of memory", name);
    }
    bn_pool_run(pool, bn_djob_task, &j);
    bn_aligned_free(j.buf);
    bn_derr e = {0};
    for (int i = 0; i < nth; i++) bn_derr_merge(&e, &j.err[i]);
    bn_free(j.err);
    if (e.kind != BN_DERR_NONE) {
        bn_aligned_free(j.dst);
        return bn_derr_status(&e, name, t->type);
    }
    if (g4) {
        d->owned = j.dst;
        d->data = j.dst;
        d->row_bytes = rb;
        d->layout = BN_DMAT_G4X32;
        bn_release(m, t);
    } else if (m->k->dmat_repack && m->k->dmat_repack != bn_dmat_repack_g4x32) {
        /* another variant's own layout; the file's pages are then released */
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

static bitnet_status bn_load_weights_on(bitnet_model *m, bn_loader *ld, const char *prefix);

static bitnet_status bn_load_weights(bitnet_model *m, const char *path, const char *prefix) {
    bn_loader L = {NULL, -1, NULL, 0};
    if (bn_pool_create(bn_load_threads(), &L.pool) != BITNET_OK) L.pool = NULL; /* then on this thread alone */
    if (m->gguf->mapped == 1) L.fd = open(path, O_RDONLY | O_CLOEXEC); /* (-1: read through the mapping) */
    if (L.fd >= 0) (void)posix_fadvise(L.fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* cold loads: larger read-ahead */
    bitnet_status st = bn_load_weights_on(m, &L, prefix);
    if (L.fd >= 0) close(L.fd);
    bn_aligned_free(L.rbuf);
    bn_pool_free(L.pool);
    return st;
}

static bitnet_status bn_load_weights_on(bitnet_model *m, bn_loader *ld, const char *prefix) {
    const bn_hparams *hp = &m->hp;
    bitnet_status st;
    const int64_t n_embd = hp->n_embd, n_q = hp->n_head * hp->head_dim, n_kv = hp->n_head_kv * hp->head_dim;
    const int64_t n_ff = hp->n_ff;

    /* embeddings */
    int64_t it = bn_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (it < 0) return bn_err(BITNET_E_FORMAT, "tensor 'token_embd.weight' is missing (architecture %s)", m->arch);
    const bn_gguf_tensor *te = &m->gguf->tensors[it];
    if (te->ne[0] != n_embd || te->ne[1] < hp->n_vocab || te->ne[2] != 1 || te->ne[3] != 1)
        return bn_err(BITNET_E_FORMAT, "tensor 'token_embd.weight' has shape {%lld, %lld}, expected {%lld, >= %lld}",
                      (long long)te->ne[0], (long long)te->ne[1], (long long)n_embd, (long long)hp->n_vocab);
    bn_prefetch(m, "token_embd.weight"); /* cold loads: the threads' reads find it on the way */
    if ((st = bn_dmat_load(m, ld, te, "token_embd.weight", &m->tok_embd)) != BITNET_OK) return st;
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
        if ((st = bn_dmat_load(m, ld, to, "output.weight", &m->output)) != BITNET_OK) return st;
    }
    if ((st = bn_load_vec(m, "output_norm.weight", 1, n_embd, &m->output_norm)) != BITNET_OK) return st;
    if ((st = bn_load_vec(m, "rope_freqs.weight", 0, hp->n_rot / 2, &m->rope_freqs)) != BITNET_OK) return st;

    m->layers = bn_calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return bn_err(BITNET_E_NOMEM, "out of memory for %lld layers", (long long)hp->n_layer);
    if ((st = bn_hparams_layers(m->gguf, prefix, m->arch_id, hp, m->layers)) != BITNET_OK) return st;
    char nm[96];
#define BN_NAME(fmt) (snprintf(nm, sizeof nm, "blk.%lld." fmt, (long long)l), nm)
    static const char *const proj[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                                       "ffn_down"};
    for (int64_t l = 0; l < hp->n_layer; l++) {
        bn_layer *L = &m->layers[l];
        for (int64_t a = l == 0 ? 0 : l + 1; a <= l + 1 && a < hp->n_layer; a++)
            for (size_t k = 0; k < sizeof proj / sizeof proj[0]; k++) {
                snprintf(nm, sizeof nm, "blk.%lld.%s.weight", (long long)a, proj[k]);
                bn_prefetch(m, nm); /* the next layer's reads overlap this one's work */
            }
        if ((st = bn_load_vec(m, BN_NAME("attn_norm.weight"), 1, n_embd, &L->attn_norm)) != BITNET_OK) return st;
        if ((st = bn_load_vec(m, BN_NAME("ffn_norm.weight"), 1, n_embd, &L->ffn_norm)) != BITNET_OK) return st;
        if (m->sub_norms) {
            if ((st = bn_load_vec(m, BN_NAME("attn_sub_norm.weight"), 1, n_q, &L->attn_sub_norm)) != BITNET_OK)
                return st;
            if ((st = bn_load_vec(m, BN_NAME("ffn_sub_norm.weight"), 1, n_ff, &L->ffn_sub_norm)) != BITNET_OK)
                return st;
        }
        if (m->qk_norm) { /* per head: head_dim weights shared by every head */
            if ((st = bn_load_vec(m, BN_NAME("attn_q_norm.weight"), 1, hp->head_dim, &L->attn_q_norm)) != BITNET_OK)
                return st;
            if ((st = bn_load_vec(m, BN_NAME("attn_k_norm.weight"), 1, hp->head_dim, &L->attn_k_norm)) != BITNET_OK)
                return st;
        }
        if (m->post_norms) {
            if ((st = bn_load_vec(m, BN_NAME("post_attention_norm.weight"), 1, n_embd, &L->attn_post_norm)) !=
                BITNET_OK)
                return st;
            if ((st = bn_load_vec(m, BN_NAME("post_ffw_norm.weight"), 1, n_embd, &L->ffn_post_norm)) != BITNET_OK)
                return st;
        }
        if (m->norm_in) { /* the input of q/k/v/gate/up is the normed layer input, of o the
                             attention output, of down the gated product */
            if ((st = bn_load_vec(m, BN_NAME("attn_q_norm_in.weight"), 1, n_embd, &L->q_in)) != BITNET_OK ||
                (st = bn_load_vec(m, BN_NAME("attn_k_norm_in.weight"), 1, n_embd, &L->k_in)) != BITNET_OK ||
                (st = bn_load_vec(m, BN_NAME("attn_v_norm_in.weight"), 1, n_embd, &L->v_in)) != BITNET_OK ||
                (st = bn_load_vec(m, BN_NAME("attn_output_norm_in.weight"), 1, n_q, &L->o_in)) != BITNET_OK ||
                (st = bn_load_vec(m, BN_NAME("ffn_gate_norm_in.weight"), 1, n_embd, &L->gate_in)) != BITNET_OK ||
                (st = bn_load_vec(m, BN_NAME("ffn_up_norm_in.weight"), 1, n_embd, &L->up_in)) != BITNET_OK ||
                (st = bn_load_vec(m, BN_NAME("ffn_down_norm_in.weight"), 1, n_ff, &L->down_in)) != BITNET_OK)
                return st;
        }
        if ((st = bn_tmat_load(m, ld, BN_NAME("attn_q.weight"), n_embd, n_q, &L->wq)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, ld, BN_NAME("attn_k.weight"), n_embd, n_kv, &L->wk)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, ld, BN_NAME("attn_v.weight"), n_embd, n_kv, &L->wv)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, ld, BN_NAME("attn_output.weight"), n_q, n_embd, &L->wo)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, ld, BN_NAME("ffn_gate.weight"), n_embd, n_ff, &L->wgate)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, ld, BN_NAME("ffn_up.weight"), n_embd, n_ff, &L->wup)) != BITNET_OK) return st;
        if ((st = bn_tmat_load(m, ld, BN_NAME("ffn_down.weight"), n_ff, n_embd, &L->wdown)) != BITNET_OK) return st;
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

/* With use_mmap = 1 the metadata (keys, values, tensor infos, the vocabulary's texts) is
 * read from the mapping for as long as the model lives.  Weights are copied at load, so
 * only those pages tie the model to the file: they are replaced by an anonymous private
 * copy, and a file truncated or rewritten under a loaded model can no longer make a
 * metadata read fault (SIGBUS).  The raw tensor bytes behind bitnet_model_gguf() stay
 * mapped (docs/api.md, "Models and their files"). */
static void bn_model_pin_metadata(bitnet_gguf *g) {
    if (!g || g->mapped != 1) return;
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0) return;
    uint64_t end = g->data_offset < g->size ? g->data_offset : g->size;
    size_t n = (size_t)((end + (uint64_t)pg - 1) / (uint64_t)pg * (uint64_t)pg);
    size_t copy = (size_t)(n < g->size ? n : g->size);
    if (!copy) return;
    uint8_t *tmp = bn_malloc(copy);
    if (!tmp) return; /* keep the file-backed pages: still correct while the file is untouched */
    memcpy(tmp, g->base, copy);
    void *p = mmap((void *)(uintptr_t)g->base, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p != MAP_FAILED) {
        memcpy(p, tmp, copy);
        (void)mprotect(p, n, PROT_READ);
    }
    bn_free(tmp);
}

/* Everything after the container is open: vocabulary, architecture, weights.  path is
 * used for messages and, when the container is mapped, to pread the weights. */
static bitnet_status bn_model_load_gguf(bitnet_model *m, const char *path, const bitnet_model_params *pp) {
    const bitnet_model_params p = *pp;
    bitnet_status st = bn_vocab_load(m->gguf, p.pretokenizer, &m->vocab);
    if (st != BITNET_OK) return st;
    m->vocab_only = p.vocab_only != 0;
    if (m->vocab_only) {
        snprintf(m->arch, sizeof m->arch, "%s", "vocab");
        snprintf(m->desc, sizeof m->desc, "vocabulary only, %d tokens", (int)bn_vocab_n_tokens(m->vocab));
        bn_model_pin_metadata(m->gguf);
        return BITNET_OK;
    }

    st = bn_kernels_select(p.isa, &m->k);
    if (st != BITNET_OK) return st;
    char prefix[64];
    st = bn_arch_decide(m->gguf, p.arch, &m->arch_id, prefix, sizeof prefix);
    if (st != BITNET_OK) return st;
    snprintf(m->arch, sizeof m->arch, "%s", bn_arch_name(m->arch_id));
    /* the graph of each architecture (docs/architecture.md, "Architectures") */
    m->sub_norms = m->arch_id == BN_ARCH_BITNET_B158 || m->arch_id == BN_ARCH_BITNET;
    m->ffn_act = m->arch_id == BN_ARCH_BITNET_B158 ? BN_FFN_RELU2 : m->arch_id == BN_ARCH_GEMMA3 ? BN_FFN_GELU : BN_FFN_SILU;
    m->rope_neox = m->arch_id != BN_ARCH_LLAMA;
    m->qk_norm = m->arch_id == BN_ARCH_QWEN3 || m->arch_id == BN_ARCH_GEMMA3;
    m->post_norms = m->arch_id == BN_ARCH_GEMMA3;
    /* BitNet embedding models add an input norm to every projection (all seven or none) */
    if (m->qk_norm) {
        static const char *const nin[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
        for (size_t i = 0; i < sizeof nin / sizeof nin[0] && !m->norm_in; i++) {
            char nm[64];
            snprintf(nm, sizeof nm, "blk.0.%s_norm_in.weight", nin[i]);
            m->norm_in = bn_gguf_find_tensor(m->gguf, nm) >= 0;
        }
    }
    st = bn_hparams_load(m->gguf, prefix, m->arch_id, bn_vocab_n_tokens(m->vocab), &m->hp);
    if (st != BITNET_OK) return st;
    m->fingerprint = bn_fingerprint(m);
    st = bn_load_weights(m, path, prefix);
    if (st != BITNET_OK) return st;
    bn_model_pin_metadata(m->gguf);
    const char *wt = bitnet_type_name((bitnet_type)m->weight_type);
    double np = (double)m->n_params;
    snprintf(m->desc, sizeof m->desc, "%s %lldL %lldd %s %.2f%s params", m->arch, (long long)m->hp.n_layer,
             (long long)m->hp.n_embd, wt ? wt : "?", np >= 1e9 ? np / 1e9 : np / 1e6, np >= 1e9 ? "B" : "M");
    BN_LOG_INFO("loaded %s: %s, %.1f MiB of weights in memory, kernels %s", path, m->desc,
                (double)m->size_bytes / (1024.0 * 1024.0), m->k->name);
    return BITNET_OK;
}

/* The loader body both entry points share: the file at `path`, or (path NULL) the `size`
 * bytes at `data`, borrowed (mapped = 0). */
static bitnet_status bn_model_load_from(const char *path, const void *data, size_t size,
                                        const bitnet_model_params *params, bitnet_model **out) {
    bitnet_model_params p;
    bitnet_model_default_params(&p, sizeof p);
    bitnet_status st = bn_params_read(&p, sizeof p, params, "model");
    if (st != BITNET_OK) return st;
    bitnet_model *m = bn_calloc(1, sizeof *m);
    if (!m) return bn_err(BITNET_E_NOMEM, "out of memory allocating the model");
    st = path ? bn_gguf_open_file(path, p.use_mmap, &m->gguf) : bn_gguf_parse(data, size, &m->gguf);
    if (st == BITNET_OK) st = bn_model_load_gguf(m, path ? path : "(memory)", &p);
    if (st != BITNET_OK) {
        bitnet_model_free(m);
        return st;
    }
    *out = m;
    return BITNET_OK;
}

bitnet_status bitnet_model_load(const char *path, const bitnet_model_params *params, bitnet_model **out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_model_load: out is NULL");
    *out = NULL;
    if (!path) return bn_err(BITNET_E_INVALID_ARG, "bitnet_model_load: path is NULL");
    return bn_model_load_from(path, NULL, 0, params, out);
}

bitnet_status bn_model_load_memory(const void *data, size_t size, const bitnet_model_params *params,
                                   bitnet_model **out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "bn_model_load_memory: out is NULL");
    *out = NULL;
    if (!data) return bn_err(BITNET_E_INVALID_ARG, "bn_model_load_memory: data is NULL");
    return bn_model_load_from(NULL, data, size, params, out);
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
            bn_free(L->attn_q_norm);
            bn_free(L->attn_k_norm);
            bn_free(L->attn_post_norm);
            bn_free(L->ffn_post_norm);
            bn_free(L->q_in);
            bn_free(L->k_in);
            bn_free(L->v_in);
            bn_free(L->o_in);
            bn_free(L->gate_in);
            bn_free(L->up_in);
            bn_free(L->down_in);
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
    bn_screen_free(&m->screen);
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
