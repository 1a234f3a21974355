/*
 * bn_falcon_chat -- renders a conversation with a model file's own chat template through
 * libbitnet's public API, for falcon_convert.py (which renders the same template with
 * jinja2 as transformers does and compares the bytes).
 *
 *   bn_falcon_chat MODEL.gguf ADD_GEN ROLE CONTENT [ROLE CONTENT ...]
 *       writes bitnet_chat_apply's text to stdout, then a line "\n--ids:" and the ids
 *       bitnet_chat_tokenize gives (BOS as the model asks)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

static int bn_falcon_chat_die(const char *what, bitnet_status st) {
    fprintf(stderr, "bn_falcon_chat: %s: %s (%s)\n", what, bitnet_strerror(st), bitnet_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3 || (argc - 3) % 2 != 0) {
        fprintf(stderr, "usage: bn_falcon_chat MODEL ADD_GEN [ROLE CONTENT]...\n");
        return 2;
    }
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(argv[1], NULL, &m);
    if (st != BITNET_OK) return bn_falcon_chat_die("load", st);
    size_t n_msgs = (size_t)(argc - 3) / 2, n = 0, cap = 1 << 16, n_ids = 0;
    bitnet_chat_message *msgs = calloc(n_msgs ? n_msgs : 1, sizeof *msgs);
    char *buf = malloc(cap);
    bitnet_token *ids = malloc(cap * sizeof *ids);
    int rc = 0;
    if (!msgs || !buf || !ids) return bn_falcon_chat_die("alloc", BITNET_E_NOMEM);
    for (size_t i = 0; i < n_msgs; i++) {
        msgs[i].role = argv[3 + 2 * i];
        msgs[i].content = argv[4 + 2 * i];
    }
    int add_gen = atoi(argv[2]);
    st = bitnet_chat_apply(m, NULL, msgs, n_msgs, add_gen, buf, cap, &n);
    if (st != BITNET_OK) {
        rc = bn_falcon_chat_die("chat_apply", st);
    } else {
        bitnet_chat_params cp;
        bitnet_chat_default_params(&cp, sizeof cp);
        cp.add_generation_prompt = add_gen;
        fwrite(buf, 1, n, stdout);
        st = bitnet_chat_tokenize(m, msgs, n_msgs, &cp, ids, cap, &n_ids);
        if (st != BITNET_OK) {
            rc = bn_falcon_chat_die("chat_tokenize", st);
        } else {
            printf("\n--ids:");
            for (size_t i = 0; i < n_ids; i++) printf(" %d", ids[i]);
            printf("\n");
        }
    }
    free(ids);
    free(buf);
    free(msgs);
    bitnet_model_free(m);
    return rc;
}
