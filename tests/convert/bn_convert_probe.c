/*
 * bn_convert_probe -- runs a converted GGUF through libbitnet's public API for the
 * conversion tests (test_convert.py compares its output with a numpy reference).
 *
 *   bn_convert_probe MODEL.gguf info
 *       prints "arch=<arch> n_vocab=<n> weight_type=<type name>"
 *   bn_convert_probe MODEL.gguf tokenize TEXT
 *       prints the token ids of TEXT (BOS added if the model asks for it), space separated
 *   bn_convert_probe MODEL.gguf run OUT.f32 N_GEN ID ID ...
 *       evaluates the ids (f32 KV cache, one thread) with logits for every position,
 *       writes them to OUT.f32 ([n][n_vocab] float32), then generates N_GEN greedy
 *       tokens and prints them as "gen: id id ..."
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

static int die(const char *what, bitnet_status st) {
    fprintf(stderr, "bn_convert_probe: %s: %s (%s)\n", what, bitnet_strerror(st), bitnet_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bn_convert_probe MODEL info|tokenize TEXT|run OUT N_GEN IDS...\n");
        return 2;
    }
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(argv[1], NULL, &m);
    if (st != BITNET_OK) return die("load", st);
    int rc = 0;
    if (strcmp(argv[2], "info") == 0) {
        printf("arch=%s n_vocab=%lld weight_type=%s\n", bitnet_model_arch(m),
               (long long)bitnet_model_get_info(m, BITNET_INFO_N_VOCAB),
               bitnet_type_name((bitnet_type)bitnet_model_get_info(m, BITNET_INFO_WEIGHT_TYPE)));
    } else if (strcmp(argv[2], "tokenize") == 0 && argc == 4) {
        size_t n = 0, cap = strlen(argv[3]) + 16;
        bitnet_token *t = malloc(cap * sizeof *t);
        st = bitnet_tokenize(m, argv[3], strlen(argv[3]), BITNET_TOKENIZE_ADD_BOS, t, cap, &n);
        if (st != BITNET_OK) rc = die("tokenize", st);
        for (size_t i = 0; rc == 0 && i < n; i++) printf("%s%d", i ? " " : "", t[i]);
        printf("\n");
        free(t);
    } else if (strcmp(argv[2], "run") == 0 && argc >= 6) {
        int n_gen = atoi(argv[4]), n = argc - 5;
        bitnet_token *ids = malloc((size_t)(n + n_gen) * sizeof *ids);
        for (int i = 0; i < n; i++) ids[i] = atoi(argv[5 + i]);
        bitnet_session_params sp;
        bitnet_session_default_params(&sp, sizeof sp);
        sp.logits_all = 1;
        sp.kv_type = BITNET_KV_F32;
        sp.n_threads = 1;
        sp.n_ctx = (uint32_t)(n + n_gen + 8);
        bitnet_session *s = NULL;
        if ((st = bitnet_session_create(m, &sp, &s)) != BITNET_OK) return die("session", st);
        if ((st = bitnet_session_eval(s, ids, (size_t)n)) != BITNET_OK) return die("eval", st);
        int64_t nv = bitnet_model_get_info(m, BITNET_INFO_N_VOCAB);
        FILE *f = fopen(argv[3], "wb");
        if (!f) return die("open output", BITNET_E_IO);
        for (int i = 0; i < n; i++) {
            const float *lg;
            if ((st = bitnet_session_logits(s, i, &lg)) != BITNET_OK) return die("logits", st);
            fwrite(lg, sizeof(float), (size_t)nv, f);
        }
        fclose(f);
        printf("gen:");
        for (int g = 0; g < n_gen; g++) {
            const float *lg;
            if ((st = bitnet_session_logits(s, -1, &lg)) != BITNET_OK) return die("logits", st);
            int best = 0;
            for (int64_t v = 1; v < nv; v++)
                if (lg[v] > lg[best]) best = (int)v;
            printf(" %d", best);
            bitnet_token t = best;
            if ((st = bitnet_session_eval(s, &t, 1)) != BITNET_OK) return die("eval", st);
        }
        printf("\n");
        bitnet_session_free(s);
        free(ids);
    } else {
        fprintf(stderr, "bn_convert_probe: bad command\n");
        rc = 2;
    }
    bitnet_model_free(m);
    return rc;
}
