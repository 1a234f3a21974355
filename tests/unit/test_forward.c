/*
 * test_forward.c -- the forward pass building blocks and their invariants:
 *  - act_quant: values derived by hand from docs/spec.md §4.1 (absmax, round half even);
 *  - ternary_matmul: codes packed here from the documented layout (kernels.h), the
 *    result checked against sum((code-1)*q) computed independently, and against the
 *    float product within the quantization error bound;
 *  - rmsnorm / rope / attention against direct formulas;
 *  - every kernel variant this CPU runs against the scalar reference (integer paths
 *    bit-exact);
 *  - the same ternary weights stored as I2_S, TQ2_0, TQ1_0, F16, F32, BF16 give
 *    bit-identical logits (one internal representation, same scale);
 *  - per-block TQ scales (mixed within rows) agree between TQ1_0 and TQ2_0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fwd_act.h"
#include "internal.h"
#include "kernels.h"
#include "test_model_util.h"

static const bn_kernels *S(void) { return &bn_kernels_scalar; }

static void test_act_quant(void **state) {
    (void)state;
    int8_t q[128];
    bn_qrow r = {.q = q};
    const float x[5] = {0.5f, -1.0f, 0.25f, 0.0f, 1e-3f};
    S()->act_quant(x, 5, 128, &r);
    /* m = 1, a = 127: 63.5 -> 64 (half to even), -127, 31.75 -> 32, 0, 0.127 -> 0 */
    assert_true(r.a == 127.0f);
    assert_int_equal(q[0], 64);
    assert_int_equal(q[1], -127);
    assert_int_equal(q[2], 32);
    assert_int_equal(q[3], 0);
    assert_int_equal(q[4], 0);
    for (int i = 5; i < 128; i++) assert_int_equal(q[i], 0);
    assert_int_equal(r.sum, 64 - 127 + 32);
    /* half to even downwards: m = 2 -> a = 63.5; x = 1/127*... choose x with x*a = 2.5 */
    const float y[2] = {2.0f, 2.5f / 63.5f};
    S()->act_quant(y, 2, 128, &r);
    assert_true(r.a == 63.5f);
    assert_int_equal(q[0], 127);
    float p = y[1] * 63.5f;
    assert_int_equal(q[1], p == 2.5f ? 2 : (int)lrintf(p));
    /* all zeros: m = 1e-5 floor, everything 0 */
    const float z[3] = {0, 0, 0};
    S()->act_quant(z, 3, 128, &r);
    assert_true(r.a == (float)(127.0 / 1e-5));
    assert_int_equal(r.sum, 0);
}

/* pack code c as element e of a row, from the layout documented in kernels.h */
static void pack(uint8_t *row, int64_t e, unsigned c) {
    int64_t b = e / 128, k = e % 128;
    uint8_t *byte = row + 32 * b + k % 32;
    unsigned sh = 6 - 2 * (unsigned)(k / 32);
    *byte = (uint8_t)((*byte & ~(3u << sh)) | (c << sh));
}

typedef struct tmat_fix {
    bn_tmat  w;
    int8_t  *codes; /* rows * cols, -1/0/+1 */
} tmat_fix;

static void make_tmat(tmat_fix *f, int64_t rows, int64_t cols, float scale, uint64_t seed) {
    f->w.rows = rows;
    f->w.cols = cols;
    f->w.cols_pad = (cols + 127) / 128 * 128;
    f->w.row_bytes = f->w.cols_pad / 4;
    f->w.codes = malloc((size_t)(rows * f->w.row_bytes));
    f->w.scale = scale;
    f->w.bscale = NULL;
    f->codes = malloc((size_t)(rows * cols));
    memset(f->w.codes, 0x55, (size_t)(rows * f->w.row_bytes));
    uint64_t r = seed;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            unsigned c = (unsigned)(tm_next(&r) % 3);
            f->codes[i * cols + j] = (int8_t)((int)c - 1);
            pack(f->w.codes + i * f->w.row_bytes, j, c);
        }
}

static void free_tmat(tmat_fix *f) {
    free(f->w.codes);
    free(f->codes);
}

static void test_ternary_matmul(void **state) {
    (void)state;
    const int64_t rows = 37, cols = 320; /* cols not a multiple of 128: padding */
    tmat_fix f;
    make_tmat(&f, rows, cols, 0.0625f, 3);
    enum { NTOK = 5 };
    float x[NTOK][320];
    int8_t qb[NTOK][384];
    bn_qrow qr[NTOK];
    uint64_t r = 77;
    for (int t = 0; t < NTOK; t++) {
        for (int j = 0; j < cols; j++) x[t][j] = tm_gauss(&r) * (float)(t + 1);
        qr[t].q = qb[t];
        S()->act_quant(x[t], cols, 384, &qr[t]);
    }
    float y[NTOK * 37];
    S()->ternary_matmul(&f.w, 0, rows, qr, NTOK, y, rows);
    for (int t = 0; t < NTOK; t++)
        for (int64_t i = 0; i < rows; i++) {
            int32_t dm = 0; /* sum((code - 1) * q) */
            double exact = 0;
            for (int j = 0; j < cols; j++) {
                dm += f.codes[i * cols + j] * qr[t].q[j];
                exact += (double)f.codes[i * cols + j] * x[t][j] * 0.0625;
            }
            /* D - S == dm exactly, so y is dm/a*scale up to f32 rounding */
            double want = (double)dm / qr[t].a * 0.0625;
            assert_true(fabs(y[t * rows + i] - want) <= 1e-5 * (fabs(want) + 1));
            /* and within the int8 quantization error of the float product:
             * |err| <= sum|w| * (0.5 / a) * scale */
            double bound = (double)cols * 0.5 / qr[t].a * 0.0625 + 1e-4;
            assert_true(fabs(y[t * rows + i] - exact) <= bound);
        }
    /* row ranges compose: [0,10) + [10,37) equals the whole */
    float y2[NTOK * 37];
    S()->ternary_matmul(&f.w, 0, 10, qr, NTOK, y2, rows);
    S()->ternary_matmul(&f.w, 10, rows, qr, NTOK, y2, rows);
    assert_memory_equal(y, y2, sizeof y);

    /* every variant this CPU runs gives the same bits, for any tile shape */
    bitnet_isa isas[16];
    size_t n_isa = bitnet_isa_list(isas, 16);
    assert_true(n_isa <= 16);
    for (size_t v = 0; v < n_isa; v++) {
        if (isas[v] == BITNET_ISA_SCALAR) continue;
        const bn_kernels *k = bn_kernels_get(isas[v]);
        if (!k) continue;
        for (int nt = 1; nt <= NTOK; nt++) {
            for (int64_t r0 = 0; r0 < 6; r0++) {
                float yv[NTOK * 37];
                memset(yv, 0, sizeof yv);
                k->ternary_matmul(&f.w, r0, rows, qr, nt, yv, rows);
                for (int t = 0; t < nt; t++)
                    for (int64_t i = r0; i < rows; i++) {
                        if (yv[t * rows + i] != y[t * rows + i])
                            fail_msg("%s ternary_matmul differs from scalar: tok %d/%d row %lld (from %lld): %.9g vs %.9g",
                                     k->name, t, nt, (long long)i, (long long)r0, (double)yv[t * rows + i],
                                     (double)y[t * rows + i]);
                    }
            }
        }
        int8_t q2[384];
        bn_qrow r2 = {.q = q2};
        for (int t = 0; t < NTOK; t++) {
            k->act_quant(x[t], cols, 384, &r2);
            assert_memory_equal(q2, qb[t], 384);
            assert_true(r2.a == qr[t].a);
            assert_int_equal(r2.sum, qr[t].sum);
        }
    }
    free_tmat(&f);
}

static void test_norm_rope_attention(void **state) {
    (void)state;
    float x[64], w[64], y[64];
    uint64_t r = 5;
    double ss = 0;
    for (int i = 0; i < 64; i++) {
        x[i] = tm_gauss(&r);
        w[i] = 1.0f + 0.1f * (float)i;
        ss += (double)x[i] * x[i];
    }
    S()->rmsnorm(x, w, 64, 1e-5f, y);
    for (int i = 0; i < 64; i++) assert_true(fabs(y[i] - x[i] / sqrt(ss / 64 + 1e-5) * w[i]) < 1e-5);

    /* rope: position 0 is the identity; rotation keeps pair norms; NEOX pairs (i, i+n/2) */
    float h[2 * 64], h0[2 * 64];
    for (int i = 0; i < 128; i++) h[i] = h0[i] = tm_gauss(&r);
    S()->rope(h, 2, 64, 64, 0, 10000.f, NULL, 1);
    assert_memory_equal(h, h0, sizeof h);
    S()->rope(h, 2, 64, 32, 7, 10000.f, NULL, 1); /* partial: dims 32..63 untouched */
    for (int hh = 0; hh < 2; hh++) {
        for (int i = 32; i < 64; i++) assert_true(h[64 * hh + i] == h0[64 * hh + i]);
        for (int i = 0; i < 16; i++) {
            double a = hypot(h[64 * hh + i], h[64 * hh + i + 16]), b = hypot(h0[64 * hh + i], h0[64 * hh + i + 16]);
            assert_true(fabs(a - b) < 1e-5 * (b + 1));
        }
        /* pair 0 rotates by exactly pos radians */
        double c = cos(7.0), s = sin(7.0);
        double e0 = h0[64 * hh] * c - h0[64 * hh + 16] * s;
        assert_true(fabs(h[64 * hh] - e0) < 1e-5);
    }
    /* NORM pairs (2i, 2i+1) */
    float g[4] = {1, 0, 0, 1};
    S()->rope(g, 1, 4, 4, 1, 10000.f, NULL, 0);
    assert_true(fabs(g[0] - cos(1.0)) < 1e-6 && fabs(g[1] - sin(1.0)) < 1e-6);

    /* attention over 3 positions with f32 cache: softmax(q.k * scale) . v */
    float q[4] = {1, 2, 0, -1}, kv_k[3 * 8], kv_v[3 * 8], out[4], scratch[3];
    for (int i = 0; i < 24; i++) {
        kv_k[i] = tm_gauss(&r);
        kv_v[i] = tm_gauss(&r);
    }
    S()->attention(q, kv_k + 4, kv_v + 4, 0, 3, 4, 8, 0.5f, scratch, out); /* head 1 of 2 */
    double sc[3], mx = -1e30, sum = 0;
    for (int i = 0; i < 3; i++) {
        sc[i] = 0;
        for (int d = 0; d < 4; d++) sc[i] += q[d] * kv_k[8 * i + 4 + d];
        sc[i] *= 0.5;
        if (sc[i] > mx) mx = sc[i];
    }
    for (int i = 0; i < 3; i++) sum += exp(sc[i] - mx);
    for (int d = 0; d < 4; d++) {
        double o = 0;
        for (int i = 0; i < 3; i++) o += exp(sc[i] - mx) / sum * kv_v[8 * i + 4 + d];
        assert_true(fabs(out[d] - o) < 1e-5);
    }
}

/* ---- whole models ---------------------------------------------------------------------- */

static bitnet_isa g_isa = BITNET_ISA_AUTO; /* the kernels last_logits loads with */

static int last_logits(const tm_spec *sp, const char *tag, int n_tok, float *out, int n_vocab) {
    char path[512];
    tm_path(path, sizeof path, tag);
    if (tm_write(sp, path) != 0) return 1;
    bitnet_model *m = NULL;
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    mp.isa = g_isa;
    bitnet_status st = bitnet_model_load(path, &mp, &m);
    unlink(path);
    if (st != BITNET_OK) {
        fprintf(stderr, "load: %s\n", bitnet_last_error());
        return 1;
    }
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = 64;
    p.n_threads = 1;
    p.logits_all = 1;
    bitnet_session *s = NULL;
    int rc = 1;
    if (bitnet_session_create(m, &p, &s) == BITNET_OK) {
        bitnet_token t[16];
        uint64_t r = 4;
        for (int i = 0; i < n_tok; i++) t[i] = (bitnet_token)(tm_next(&r) % (uint64_t)n_vocab);
        if (bitnet_session_eval(s, t, (size_t)n_tok) == BITNET_OK) {
            rc = 0;
            for (int i = 0; i < n_tok; i++) {
                const float *lg;
                if (bitnet_session_logits(s, i, &lg) != BITNET_OK) rc = 1;
                else memcpy(out + i * n_vocab, lg, (size_t)n_vocab * sizeof(float));
            }
        }
    }
    bitnet_session_free(s);
    bitnet_model_free(m);
    return rc;
}

static void test_formats_identical(void **state) {
    (void)state;
    static const char *archs[] = {"bitnet-b1.58", "bitnet", "llama"};
    static const bitnet_type types[] = {BITNET_TYPE_TQ2_0, BITNET_TYPE_TQ1_0, BITNET_TYPE_F16, BITNET_TYPE_F32,
                                        BITNET_TYPE_BF16};
    enum { NTK = 6, V = 300 };
    static float ref[NTK * V], got[NTK * V];
    for (size_t a = 0; a < 3; a++) {
        tm_spec sp;
        tm_default(&sp);
        sp.arch = archs[a];
        sp.n_head_kv = a == 1 ? 4 : 2;
        sp.wtype = BITNET_TYPE_I2_S;
        assert_int_equal(last_logits(&sp, "fmt", NTK, ref, V), 0);
        double mag = 0;
        for (int i = 0; i < NTK * V; i++) mag = fmax(mag, fabs(ref[i]));
        assert_true(mag > 0.1);
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            sp.wtype = types[t];
            assert_int_equal(last_logits(&sp, "fmt", NTK, got, V), 0);
            for (int i = 0; i < NTK * V; i++)
                if (got[i] != ref[i])
                    fail_msg("arch %s type %s: logit %d differs from I2_S: %.9g vs %.9g", archs[a],
                             bitnet_type_name(types[t]), i, (double)got[i], (double)ref[i]);
        }
    }
    /* per-block scales: TQ2_0 and TQ1_0 agree; results differ from the uniform model */
    tm_spec sp;
    tm_default(&sp);
    sp.mixed_scales = 1;
    sp.wtype = BITNET_TYPE_TQ2_0;
    assert_int_equal(last_logits(&sp, "mixed", NTK, ref, V), 0);
    sp.wtype = BITNET_TYPE_TQ1_0;
    assert_int_equal(last_logits(&sp, "mixed", NTK, got, V), 0);
    assert_memory_equal(ref, got, sizeof ref);
    /* the scalar reference kernels give the same logits (within float rounding):
     * whatever layout the chosen kernels keep such matrices in, they read it right */
    g_isa = BITNET_ISA_SCALAR;
    assert_int_equal(last_logits(&sp, "mixed", NTK, got, V), 0);
    g_isa = BITNET_ISA_AUTO;
    for (int i = 0; i < NTK * V; i++)
        if (!(fabs((double)got[i] - (double)ref[i]) <= 2e-3 * (1.0 + fabs((double)ref[i]))))
            fail_msg("per-block scales: logit %d is %.9g with the scalar kernels, %.9g with the chosen ones", i,
                     (double)got[i], (double)ref[i]);
    sp.mixed_scales = 0;
    assert_int_equal(last_logits(&sp, "mixed", NTK, got, V), 0);
    int differ = 0;
    for (int i = 0; i < NTK * V; i++) differ |= got[i] != ref[i];
    assert_true(differ);
}

/* Embedding / output layer types: logits equal the final hidden state dotted with the
 * dequantized output rows, within the activation rounding of the type (f16, bf16,
 * Q8_0 or Q8_K blocks). */
static void test_output_types(void **state) {
    (void)state;
    static const bitnet_type types[] = {BITNET_TYPE_F32, BITNET_TYPE_F16, BITNET_TYPE_BF16, BITNET_TYPE_Q8_0,
                                        BITNET_TYPE_Q6_K};
    static const double tol[] = {1e-5, 2e-3, 1e-2, 2e-2, 2e-2};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        tm_spec sp;
        tm_default(&sp);
        sp.etype = types[k];
        char path[512];
        tm_path(path, sizeof path, "otype");
        assert_int_equal(tm_write(&sp, path), 0);
        bitnet_model *m = NULL;
        assert_int_equal(bitnet_model_load(path, NULL, &m), BITNET_OK);
        unlink(path);
        bitnet_session_params p;
        bitnet_session_default_params(&p, sizeof p);
        p.n_ctx = 16;
        p.n_threads = 2;
        bitnet_session *s = NULL;
        assert_int_equal(bitnet_session_create(m, &p, &s), BITNET_OK);
        bitnet_token t[4] = {7, 100, 299, 3};
        assert_int_equal(bitnet_session_eval(s, t, 4), BITNET_OK);
        const float *lg, *e;
        assert_int_equal(bitnet_session_logits(s, -1, &lg), BITNET_OK);
        assert_int_equal(bitnet_session_embeddings(s, -1, &e), BITNET_OK);
        const bitnet_gguf *g = bitnet_model_gguf(m);
        int64_t ti = bitnet_gguf_find_tensor(g, "token_embd.weight");
        assert_true(ti >= 0);
        float *w = malloc(300 * 256 * sizeof(float));
        assert_non_null(w);
        assert_int_equal(bitnet_gguf_tensor_to_f32(g, (uint64_t)ti, 0, 300, w), BITNET_OK);
        double en = 0;
        for (int i = 0; i < 256; i++) en += (double)e[i] * e[i];
        for (int j = 0; j < 300; j++) {
            double d = 0, wn = 0;
            for (int i = 0; i < 256; i++) {
                d += (double)w[j * 256 + i] * e[i];
                wn += (double)w[j * 256 + i] * w[j * 256 + i];
            }
            double bound = tol[k] * sqrt(en * wn) + 1e-5;
            if (fabs(lg[j] - d) > bound)
                fail_msg("%s: logit %d = %.6g, expected %.6g (bound %.3g)", bitnet_type_name(types[k]), j,
                         (double)lg[j], d, bound);
        }
        free(w);
        bitnet_session_free(s);
        bitnet_model_free(m);
    }
}

/* The vectorised activations (lib/fwd_act.h) against the definitions computed in double:
 * SiLU within 8 ulp wherever the result is not negligible, ReLU exactly, and the special
 * values (signed zeros, infinities, NaN, huge and subnormal inputs). */
static int64_t ulps(float a, float b) {
    int32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    if (x < 0) x = INT32_MIN - x;
    if (y < 0) y = INT32_MIN - y;
    return x > y ? (int64_t)x - y : (int64_t)y - x;
}

static void test_activations(void **state) {
    (void)state;
    int64_t worst = 0;
    for (float x = -100.f; x <= 100.f; x += 3.7e-4f) {
        const float want = (float)((double)x / (1.0 + exp(-(double)x))), got = bn_silu(x);
        if (fabsf(want) > 1e-30f) {
            const int64_t u = ulps(want, got);
            if (u > worst) worst = u;
            if (u > 8) fail_msg("silu(%.9g) = %.9g, want %.9g (%lld ulp)", (double)x, (double)got, (double)want, (long long)u);
        } else {
            assert_true(fabsf(got - want) <= 1e-30f);
        }
        const float r = bn_relu_bits(x);
        assert_true(x > 0.f ? r == x : (r == 0.f && !signbit(r)));
    }
    print_message("silu: at most %lld ulp from the double-precision definition\n", (long long)worst);
    assert_true(bn_silu(0.f) == 0.f && !signbit(bn_silu(0.f)));
    assert_true(bn_silu(-0.f) == 0.f && signbit(bn_silu(-0.f)));
    assert_true(isinf(bn_silu(INFINITY)) && bn_silu(INFINITY) > 0);
    assert_true(bn_silu(-INFINITY) == 0.f);
    assert_true(isnan(bn_silu(NAN)) && isnan(bn_silu(-NAN)));
    assert_true(bn_silu(1e30f) == 1e30f && bn_silu(-1e30f) == 0.f);
    assert_true(bn_silu(1e-40f) == 1e-40f / 2); /* subnormal in, subnormal out */
    assert_true(bn_relu_bits(NAN) == 0.f && bn_relu_bits(-0.f) == 0.f && !signbit(bn_relu_bits(-0.f)));
    assert_true(bn_relu_bits(INFINITY) == INFINITY && bn_relu_bits(-INFINITY) == 0.f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_quant),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_ternary_matmul),
        cmocka_unit_test(test_norm_rope_attention),
        cmocka_unit_test(test_formats_identical),
        cmocka_unit_test(test_output_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
