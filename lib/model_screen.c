/*
 * model_screen.c -- the screening copy of an F16 output layer (kernels.h bn_smat;
 * docs/performance.md "Screened output layer", the error bound in docs/spec.md).
 *
 * Built from the loaded output matrix (whatever layout the kernel variant repacked it
 * into: rows are read back through bn_dmat_row_f32), rows split across a pool of the
 * loader's size.  Per block of BN_SCREEN_BLOCK weights: sigma = max|w| / 127 and
 * q = round(w * fl(1 / sigma)) clamped to [-127, 127] (so |w - sigma q| <= sigma / 2 up
 * to two float roundings, which the bound allows for).
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
    const bn_dmat  *src;
    bn_smat        *dst;
    float          *rowbuf; /* [nth][cols_pad] */
    const float    *f16;    /* [65536]: every f16 value as a float */
    _Atomic int64_t next;
} bn_screen_job;

/* Row r of an F16 matrix (either layout, kernels.h) as floats, through the table. */
static void bn_model_screen_row(const bn_screen_job *j, int64_t r, float *out) {
    const bn_dmat *w = j->src;
    const uint8_t *p;
    uint64_t stride;
    if (w->layout == BN_DMAT_G4X32 && r < (w->rows & ~(int64_t)3)) {
        p = w->data + (uint64_t)(r / 4) * 4 * w->row_bytes + (uint64_t)(r % 4) * 64;
        stride = 256;
    } else {
        p = w->data + (uint64_t)r * w->row_bytes;
        stride = 64;
    }
    for (int64_t c = 0; 32 * c < w->cols; c++) {
        const int64_t n = w->cols - 32 * c < 32 ? w->cols - 32 * c : 32;
        for (int64_t i = 0; i < n; i++) out[32 * c + i] = j->f16[bn_rd_u16(p + c * stride + 2 * i)];
    }
}

static void bn_model_screen_task(void *ctx, int ith, int nth) {
    (void)nth;
    bn_screen_job *j = ctx;
    bn_smat *w = j->dst;
    float *x = j->rowbuf + (size_t)ith * (size_t)w->cols_pad;
    int64_t lo, hi;
    while (bn_claim(&j->next, w->rows, 256, &lo, &hi))
        for (int64_t r = lo; r < hi; r++) {
            memset(x + w->cols, 0, (size_t)(w->cols_pad - w->cols) * sizeof(float));
            bn_model_screen_row(j, r, x);
            for (int64_t b = 0; b < w->nb; b++) {
                const float *xb = x + BN_SCREEN_BLOCK * b;
                int8_t *q = BN_SMAT_Q(w, r, b);
                float mx = 0.0f;
                for (int i = 0; i < BN_SCREEN_BLOCK; i++) {
                    const float a = fabsf(xb[i]);
                    mx = a > mx ? a : mx;
                }
                const float s = mx / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
                *BN_SMAT_SIGMA(w, r, b) = s;
                for (int i = 0; i < BN_SCREEN_BLOCK; i++) {
                    /* round to nearest: adding and subtracting 1.5 * 2^23 (|v| < 2^22) */
                    float v = xb[i] * inv;
                    v = (v + 12582912.0f) - 12582912.0f;
                    v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
                    q[i] = (int8_t)v;
                }
            }
        }
}

static int bn_model_screen_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 16 ? 16 : (int)n;
}

bitnet_status bitnet_model_set_output_screening(bitnet_model *m, bitnet_screen_mode mode) {
    if (!m) return bn_err(BITNET_E_INVALID_ARG, "bitnet_model_set_output_screening: model is NULL");
    if (mode != BITNET_SCREEN_OFF && mode != BITNET_SCREEN_EXACT && mode != BITNET_SCREEN_INT8)
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
    if (!m->screen.q) {
        bn_smat w;
        memset(&w, 0, sizeof w);
        w.rows = m->hp.n_vocab < m->output.rows ? m->hp.n_vocab : m->output.rows;
        w.cols = m->output.cols;
        w.cols_pad = (w.cols + BN_SCREEN_BLOCK - 1) / BN_SCREEN_BLOCK * BN_SCREEN_BLOCK;
        w.nb = w.cols_pad / BN_SCREEN_BLOCK;
        const size_t rows4 = (size_t)(w.rows + 3) / 4 * 4; /* whole groups of 4, extra rows zero */
        w.q = bn_aligned_alloc(64, rows4 * (size_t)w.cols_pad);
        w.sigma = bn_mallocn(rows4 * (size_t)w.nb, sizeof(float));
        if (w.q) memset(w.q, 0, rows4 * (size_t)w.cols_pad);
        if (w.sigma) memset(w.sigma, 0, rows4 * (size_t)w.nb * sizeof(float));
        bn_pool *pool = NULL;
        if (bn_pool_create(bn_model_screen_threads(), &pool) != BITNET_OK) pool = NULL;
        const int nth = pool ? bn_pool_size(pool) : 1;
        float *rowbuf = bn_mallocn((size_t)nth * (size_t)w.cols_pad, sizeof(float));
        float *f16 = bn_mallocn(65536, sizeof(float));
        if (f16)
            for (uint32_t h = 0; h < 65536; h++) f16[h] = bn_f16_to_f32((uint16_t)h);
        if (!w.q || !w.sigma || !rowbuf || !f16) {
            bn_free(f16);
            bn_free(rowbuf);
            bn_pool_free(pool);
            bn_screen_free(&w);
            return bn_err(BITNET_E_NOMEM, "output screening: out of memory for the %lld x %lld int8 copy",
                          (long long)w.rows, (long long)w.cols);
        }
        bn_screen_job j = {&m->output, &w, rowbuf, f16, 0};
        bn_pool_run(pool, bn_model_screen_task, &j);
        bn_free(f16);
        bn_free(rowbuf);
        bn_pool_free(pool);
        m->screen = w;
    }
    m->screen_mode = (int)mode;
    return BITNET_OK;
}
