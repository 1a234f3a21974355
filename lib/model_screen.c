/*
 * model_screen.c -- the screening copy of an F16 output layer (kernels.h bn_smat;
 * docs/performance.md "Screened output layer", the error bound in docs/spec.md).
 *
 * Built from the loaded output matrix (whatever layout the kernel variant repacked it
 * into) by the variant's screen_quant (kernels.h; AVX2 + F16C on x86, bit-identical to
 * the scalar builder in kernels/layout.c), rows split across a transient pool of one
 * thread per CPU.  Per block of BN_SCREEN_BLOCK weights: sigma = max|w| / 127 and
 * q = round(w * fl(1 / sigma)) clamped to [-127, 127] (so |w - sigma q| <= sigma / 2 up
 * to two float roundings, which the bound allows for).  The lossy 6-bit mode
 * (BITNET_SCREEN_INT6) uses 31 in place of 127: levels -31..31, still one byte each.
 */

#include "core_pool.h"
#include "model.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

void bn_screen_free(bn_smat *w) {
    bn_aligned_free(w->q);
    bn_free(w->sigma);
    memset(w, 0, sizeof *w);
}

typedef struct bn_screen_job {
    const bitnet_model *m;
    bn_smat            *dst;
    float              *rowbuf; /* [nth][cols_pad] */
    _Atomic int64_t     next;
} bn_screen_job;

static void bn_model_screen_task(void *ctx, int ith, int nth) {
    (void)nth;
    bn_screen_job *j = ctx;
    bn_smat *w = j->dst;
    float *x = j->rowbuf + (size_t)ith * (size_t)w->cols_pad;
    const int64_t rows4 = (w->rows + 3) / 4 * 4;
    int64_t lo, hi;
    while (bn_claim(&j->next, rows4, 256, &lo, &hi)) j->m->k->screen_quant(&j->m->output, lo, hi, w->qmax, w, x);
}

static int bn_model_screen_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 16 ? 16 : (int)n;
}

/* Make the copy with levels -qmax..qmax into *out, on a transient pool. */
static bitnet_status bn_model_screen_build(const bitnet_model *m, int qmax, bn_smat *out) {
    bn_smat w;
    memset(&w, 0, sizeof w);
    w.rows = m->hp.n_vocab < m->output.rows ? m->hp.n_vocab : m->output.rows;
    w.cols = m->output.cols;
    w.cols_pad = (w.cols + BN_SCREEN_BLOCK - 1) / BN_SCREEN_BLOCK * BN_SCREEN_BLOCK;
    w.nb = w.cols_pad / BN_SCREEN_BLOCK;
    w.qmax = qmax;
    /* whole groups of 4, extra rows zero; every byte is written by the builder (so the
     * threads, not this one, touch the fresh pages) */
    const size_t rows4 = (size_t)(w.rows + 3) / 4 * 4;
    w.q = bn_aligned_alloc(64, rows4 * (size_t)w.cols_pad);
    w.sigma = bn_mallocn(rows4 * (size_t)w.nb, sizeof(float));
    bn_pool *pool = NULL;
    if (bn_pool_create(bn_model_screen_threads(), &pool) != BITNET_OK) pool = NULL;
    const int nth = pool ? bn_pool_size(pool) : 1;
    float *rowbuf = bn_mallocn((size_t)nth * (size_t)w.cols_pad, sizeof(float));
    if (!w.q || !w.sigma || !rowbuf) {
        bn_free(rowbuf);
        bn_pool_free(pool);
        bn_screen_free(&w);
        return bn_err(BITNET_E_NOMEM, "output screening: out of memory for the %lld x %lld int8 copy",
                      (long long)w.rows, (long long)w.cols);
    }
    bn_screen_job j = {m, &w, rowbuf, 0};
    bn_pool_run(pool, bn_model_screen_task, &j);
    bn_free(rowbuf);
    bn_pool_free(pool);
    *out = w;
    return BITNET_OK;
}

bitnet_status bitnet_model_set_output_screening(bitnet_model *m, bitnet_screen_mode mode) {
    if (!m) return bn_err(BITNET_E_INVALID_ARG, "bitnet_model_set_output_screening: model is NULL");
    if (mode != BITNET_SCREEN_OFF && mode != BITNET_SCREEN_EXACT && mode != BITNET_SCREEN_INT8 &&
        mode != BITNET_SCREEN_INT6)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_model_set_output_screening: unknown mode %d", (int)mode);
    if (mode == BITNET_SCREEN_OFF) {
        bn_screen_free(&m->screen);
        m->screen_mode = BITNET_SCREEN_OFF;
        return BITNET_OK;
    }
    if (m->vocab_only || !m->layers)
        return bn_err(BITNET_E_UNSUPPORTED, "output screening: the model was loaded vocab-only");
    if (m->output.type != BITNET_TYPE_F16)
        return bn_err(BITNET_E_UNSUPPORTED, "output screening needs an F16 output layer (this one is %s)",
                      bitnet_type_name((bitnet_type)m->output.type));
    if (m->hp.logit_softcap > 0)
        return bn_err(BITNET_E_UNSUPPORTED, "output screening: the model soft-caps its logits");
    const int qmax = mode == BITNET_SCREEN_INT6 ? 31 : 127;
    if (m->screen.q && m->screen.qmax != qmax) bn_screen_free(&m->screen); /* other levels: made again */
    if (!m->screen.q) {
        bn_smat w;
        bitnet_status st = bn_model_screen_build(m, qmax, &w);
        if (st != BITNET_OK) return st;
        m->screen = w;
    }
    m->screen_mode = (int)mode;
    return BITNET_OK;
}
