/* A minimal program built against the installed libbitnet: checks the header and the
 * library agree, then writes a GGUF with the public writer and reads it back. */
#include <bitnet.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "consumer.gguf";
    if (strcmp(bitnet_version(), BITNET_VERSION_STRING) != 0 || bitnet_version_number() != BITNET_VERSION_NUMBER) {
        fprintf(stderr, "header %s but library %s\n", BITNET_VERSION_STRING, bitnet_version());
        return 1;
    }
    bitnet_gguf_writer *w = NULL;
    uint32_t v = 42;
    float data[32];
    for (int i = 0; i < 32; i++) data[i] = (float)i;
    int64_t ne[1] = {32};
    if (bitnet_gguf_writer_create(&w) != BITNET_OK ||
        bitnet_gguf_writer_set_scalar(w, "consumer.answer", BITNET_GGUF_UINT32, &v) != BITNET_OK ||
        bitnet_gguf_writer_add_tensor(w, "t", 1, ne, BITNET_TYPE_F32) != BITNET_OK ||
        bitnet_gguf_writer_begin(w, path) != BITNET_OK || bitnet_gguf_writer_write(w, data, sizeof data) != BITNET_OK ||
        bitnet_gguf_writer_finish(w) != BITNET_OK) {
        fprintf(stderr, "write: %s\n", bitnet_last_error());
        return 1;
    }
    bitnet_gguf_writer_free(w);
    bitnet_gguf *g = NULL;
    if (bitnet_gguf_open(path, &g) != BITNET_OK) {
        fprintf(stderr, "open: %s\n", bitnet_last_error());
        return 1;
    }
    int64_t k = bitnet_gguf_find_key(g, "consumer.answer");
    bitnet_gguf_value val;
    uint64_t u = 0;
    int ok = k >= 0 && bitnet_gguf_kv(g, (uint64_t)k, NULL, &val) == BITNET_OK &&
             bitnet_gguf_value_uint(g, &val, &u) == BITNET_OK && u == 42 && bitnet_gguf_n_tensors(g) == 1;
    bitnet_gguf_close(g);
    printf("libbitnet %s (%s): %s\n", bitnet_version(), bitnet_cpu_features(), ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
