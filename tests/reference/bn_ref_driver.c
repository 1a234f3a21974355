/*
 * bn_ref_driver.c -- the C side of the numpy reference test (reference.py).
 *
 *   bn_ref_driver write ARCH TYPE SEED PATH N_EMBD N_FF N_HEAD N_HEAD_KV N_LAYER N_VOCAB
 *       writes a tiny random ternary model (tests/unit/test_model_util.h) of projection
 *       type TYPE (i2_s, tq2_0, tq1_0, f16)
 *   bn_ref_driver logits PATH KV THREADS OUT TOKEN...
 *       loads PATH, evaluates the tokens in one call with logits_all and writes the
 *       float32 logits of every position (row-major n_tokens x n_vocab) to OUT;
 *       KV is f16 or f32 (the KV cache type).
 * Public API only.
 */
#include "bitnet.h"
#include "test_model_util.h"

static int usage(void) {
    fprintf(stderr, "usage: bn_ref_driver write ARCH TYPE SEED PATH E FF NH NKV NL NV | logits PATH KV THREADS OUT TOK...\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    if (strcmp(argv[1], "write") == 0) {
        if (argc != 12) return usage();
        tm_spec sp;
        tm_default(&sp);
        sp.arch = argv[2];
        if (strcmp(argv[3], "i2_s") == 0) sp.wtype = BITNET_TYPE_I2_S;
        else if (strcmp(argv[3], "tq2_0") == 0) sp.wtype = BITNET_TYPE_TQ2_0;
        else if (strcmp(argv[3], "tq1_0") == 0) sp.wtype = BITNET_TYPE_TQ1_0;
        else if (strcmp(argv[3], "f16") == 0) sp.wtype = BITNET_TYPE_F16;
        else return usage();
        sp.seed = strtoull(argv[4], NULL, 10);
        sp.n_embd = atoi(argv[6]);
        sp.n_ff = atoi(argv[7]);
        sp.n_head = atoi(argv[8]);
        sp.n_head_kv = atoi(argv[9]);
        sp.n_layer = atoi(argv[10]);
        sp.n_vocab = atoi(argv[11]);
        sp.rope_base = strcmp(sp.arch, "bitnet") == 0 ? 10000.f : 500000.f;
        return tm_write(&sp, argv[5]) == 0 ? 0 : 1;
    }
    if (strcmp(argv[1], "logits") == 0) {
        if (argc < 7) return usage();
        bitnet_model *m = NULL;
        if (bitnet_model_load(argv[2], NULL, &m) != BITNET_OK) {
            fprintf(stderr, "load: %s\n", bitnet_last_error());
            return 1;
        }
        bitnet_session_params p;
        bitnet_session_default_params(&p, sizeof p);
        p.kv_type = strcmp(argv[3], "f32") == 0 ? BITNET_KV_F32 : BITNET_KV_F16;
        p.n_threads = (uint32_t)atoi(argv[4]);
        p.logits_all = 1;
        size_t n = (size_t)(argc - 6);
        p.n_ctx = (uint32_t)n + 8;
        bitnet_token *t = malloc(n * sizeof *t);
        bitnet_session *s = NULL;
        int rc = 1;
        if (t && bitnet_session_create(m, &p, &s) == BITNET_OK) {
            for (size_t i = 0; i < n; i++) t[i] = (bitnet_token)atoi(argv[6 + i]);
            int64_t nv = bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
            FILE *f = fopen(argv[5], "wb");
            if (f && bitnet_session_eval(s, t, n) == BITNET_OK) {
                rc = 0;
                for (size_t i = 0; i < n; i++) {
                    const float *lg;
                    if (bitnet_session_logits(s, (int32_t)i, &lg) != BITNET_OK ||
                        fwrite(lg, sizeof(float), (size_t)nv, f) != (size_t)nv)
                        rc = 1;
                }
            } else {
                fprintf(stderr, "eval: %s\n", bitnet_last_error());
            }
            if (f && fclose(f) != 0) rc = 1;
        }
        fprintf(stderr, "%s: %s\n", argv[2], bitnet_model_desc(m));
        bitnet_session_free(s);
        bitnet_model_free(m);
        free(t);
        return rc;
    }
    return usage();
}
