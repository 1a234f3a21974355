/*
 * bn_embed_driver.c -- the C side of the embedding-model reference test (embed_ref.py).
 * Public API only.
 *
 *   bn_embed_driver run MODEL OUT KV THREADS N_BATCH TOKEN...
 *       loads MODEL and writes OUT (float32, little-endian as in memory):
 *         logits of every position (n x n_vocab; one bitnet_session_eval, logits_all),
 *         final hidden states of every position (n x n_embd; params.embeddings),
 *         the pooled embedding (n_embd; bitnet_session_embed, the model's pooling, L2),
 *         the same pooled from the first eval (n_embd; bitnet_session_pool),
 *         the pooled embedding without normalisation (n_embd).
 *       KV is f16 or f32; N_BATCH the session's n_batch (the input is cut in chunks).
 *   bn_embed_driver text MODEL OUT TEXT
 *       bitnet_session_embed_text: writes the token count (int32) then the embedding.
 */
#include "bitnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void) {
    fprintf(stderr, "usage: bn_embed_driver run MODEL OUT KV THREADS N_BATCH TOK... | text MODEL OUT TEXT\n");
    return 2;
}

static int fail(const char *what) {
    fprintf(stderr, "bn_embed_driver: %s: %s\n", what, bitnet_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 5) return usage();
    const int text_mode = strcmp(argv[1], "text") == 0;
    if (!text_mode && (strcmp(argv[1], "run") != 0 || argc < 8)) return usage();
    bitnet_model *m = NULL;
    if (bitnet_model_load(argv[2], NULL, &m) != BITNET_OK) return fail("load");
    const size_t E = (size_t)bitnet_model_get_info(m, BITNET_INFO_N_EMBD);
    const size_t V = (size_t)bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
    int rc = 1;
    bitnet_session *s = NULL, *s2 = NULL;
    bitnet_token *t = NULL;
    float *v = malloc(3 * E * sizeof *v);
    FILE *f = fopen(argv[3], "wb");
    if (!v || !f) goto done;
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    bitnet_embed_params ep;
    bitnet_embed_default_params(&ep, sizeof ep);
    if (text_mode) {
        p.n_ctx = 256;
        if (bitnet_session_create(m, &p, &s) != BITNET_OK) { rc = fail("session"); goto done; }
        size_t n = 0;
        if (bitnet_session_embed_text(s, argv[4], strlen(argv[4]), NULL, v, E, &n) != BITNET_OK) {
            rc = fail("embed_text");
            goto done;
        }
        int32_t n32 = (int32_t)n;
        rc = fwrite(&n32, sizeof n32, 1, f) == 1 && fwrite(v, sizeof *v, E, f) == E ? 0 : 1;
        goto done;
    }
    const size_t n = (size_t)(argc - 7);
    t = malloc(n * sizeof *t);
    if (!t) goto done;
    for (size_t i = 0; i < n; i++) t[i] = (bitnet_token)atoi(argv[7 + i]);
    p.kv_type = strcmp(argv[4], "f32") == 0 ? BITNET_KV_F32 : BITNET_KV_F16;
    p.n_threads = (uint32_t)atoi(argv[5]);
    p.n_batch = (uint32_t)atoi(argv[6]);
    p.n_ctx = (uint32_t)n + 8;
    p.logits_all = 1;
    p.embeddings = 1;
    if (bitnet_session_create(m, &p, &s) != BITNET_OK) { rc = fail("session"); goto done; }
    if (bitnet_session_eval(s, t, n) != BITNET_OK) { rc = fail("eval"); goto done; }
    for (size_t i = 0; i < n; i++) {
        const float *l;
        if (bitnet_session_logits(s, (int32_t)i, &l) != BITNET_OK) { rc = fail("logits"); goto done; }
        if (fwrite(l, sizeof *l, V, f) != V) goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const float *h;
        if (bitnet_session_embeddings(s, (int32_t)i, &h) != BITNET_OK) { rc = fail("embeddings"); goto done; }
        if (fwrite(h, sizeof *h, E, f) != E) goto done;
    }
    /* pooled from that eval, then by bitnet_session_embed in a session without
     * params.embeddings / logits_all (its own chunking) */
    if (bitnet_session_pool(s, &ep, v + E, E) != BITNET_OK) { rc = fail("pool"); goto done; }
    p.logits_all = 0;
    p.embeddings = 0;
    if (bitnet_session_create(m, &p, &s2) != BITNET_OK) { rc = fail("session 2"); goto done; }
    if (bitnet_session_embed(s2, t, n, &ep, v, E) != BITNET_OK) { rc = fail("embed"); goto done; }
    ep.normalize = -1;
    if (bitnet_session_embed(s2, t, n, &ep, v + 2 * E, E) != BITNET_OK) { rc = fail("embed (raw)"); goto done; }
    rc = fwrite(v, sizeof *v, 3 * E, f) == 3 * E ? 0 : 1;
done:
    if (f && fclose(f) != 0) rc = 1;
    bitnet_session_free(s);
    bitnet_session_free(s2);
    bitnet_model_free(m);
    free(t);
    free(v);
    return rc;
}
