/*
 * test_hardening.c -- regression tests of issue 12 for the library:
 *  - a model loaded with use_mmap = 1 whose file is then truncated: every metadata read
 *    through bitnet_model_gguf(), tokenizing and generating still work (they used to
 *    die of SIGBUS); run in a child process so a fault fails the test instead of
 *    killing the runner;
 *  - bitnet_detokenize into (NULL, 0) reports the size it needs (UBSan: no memcpy to NULL);
 *  - a tokenizer.ggml.token_type outside 0..6 is refused with the index and value;
 *  - n_ctx beyond the model's context_length: one warning per model, naming the KV
 *    cache's size, however many sessions are created; none within it;
 *  - bn_model_load_memory (the loader fuzz_model drives) computes what a file load does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "model.h"
#include "test_model_util.h"

#include <sys/wait.h>

static void small_spec(tm_spec *sp) {
    tm_default(sp);
    sp->n_layer = 1;
    sp->n_ctx = 64;
}

static int walk_metadata(const bitnet_model *m) {
    const bitnet_gguf *g = bitnet_model_gguf(m);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < bitnet_gguf_n_kv(g); i++) {
        const char *key;
        bitnet_gguf_value v;
        if (bitnet_gguf_kv(g, i, &key, &v) != BITNET_OK) return 1;
        sum += (unsigned char)key[0];
        const char *s;
        uint64_t len;
        if (bitnet_gguf_value_str(g, &v, &s, &len) == BITNET_OK && len) sum += (unsigned char)s[len - 1];
        if (v.type == BITNET_GGUF_ARRAY)
            for (uint64_t j = 0; j < v.count; j++) {
                bitnet_gguf_value e;
                if (bitnet_gguf_array_get(g, &v, j, &e) != BITNET_OK) return 1;
                if (bitnet_gguf_value_str(g, &e, &s, &len) == BITNET_OK && len) sum += (unsigned char)s[0];
            }
        if (bitnet_gguf_find_key(g, key) != (int64_t)i) return 1;
    }
    for (uint64_t i = 0; i < bitnet_gguf_n_tensors(g); i++)
        sum += bitnet_gguf_tensor_n_elements(g, i) + (unsigned char)bitnet_gguf_tensor_name(g, i)[0];
    return sum == 0;
}

static void test_truncated_file_metadata(void **state) {
    (void)state;
    char path[512];
    tm_spec sp;
    small_spec(&sp);
    tm_path(path, sizeof path, "truncate");
    assert_int_equal(tm_write(&sp, path), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bitnet_model_params mp;
        bitnet_model_default_params(&mp, sizeof mp);
        mp.use_mmap = 1;
        bitnet_model *m = NULL;
        if (bitnet_model_load(path, &mp, &m) != BITNET_OK) _exit(10);
        if (truncate(path, 0) != 0) _exit(11);
        if (walk_metadata(m)) _exit(12);
        bitnet_token toks[32];
        size_t n = 0;
        if (bitnet_tokenize(m, "hello world", 11, BITNET_TOKENIZE_ADD_BOS, toks, 32, &n) != BITNET_OK) _exit(13);
        char buf[128];
        size_t nb = 0;
        if (bitnet_detokenize(m, toks, n, 0, buf, sizeof buf, &nb) != BITNET_OK) _exit(14);
        bitnet_session *s = NULL;
        bitnet_session_params p;
        bitnet_session_default_params(&p, sizeof p);
        p.n_ctx = 32;
        p.n_threads = 1;
        if (bitnet_session_create(m, &p, &s) != BITNET_OK || bitnet_session_eval(s, toks, n) != BITNET_OK) _exit(15);
        bitnet_session_free(s);
        bitnet_model_free(m);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    unlink(path);
    if (WIFSIGNALED(status)) fail_msg("the child died of signal %d reading a truncated model", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

typedef struct fx {
    char          path[512];
    bitnet_model *m;
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    tm_spec sp;
    small_spec(&sp);
    tm_path(f->path, sizeof f->path, "hardening");
    if (tm_write(&sp, f->path) != 0 || bitnet_model_load(f->path, NULL, &f->m) != BITNET_OK) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    bitnet_model_free(f->m);
    unlink(f->path);
    free(f);
    return 0;
}

static void test_detokenize_null_buffer(void **state) {
    fx *f = *state;
    bitnet_token t[3] = {260, 261, 262};
    size_t need = 0;
    bitnet_status st = bitnet_detokenize(f->m, t, 3, 0, NULL, 0, &need);
    assert_int_equal(st, BITNET_E_BUFFER_TOO_SMALL);
    assert_true(need > 0);
    char buf[64];
    size_t got = 0;
    assert_int_equal(bitnet_detokenize(f->m, t, 3, 0, buf, sizeof buf, &got), BITNET_OK);
    assert_int_equal(got, need);
    /* nothing to write: (NULL, 0) is fine and OK */
    assert_int_equal(bitnet_detokenize(f->m, t, 0, 0, NULL, 0, &need), BITNET_OK);
    assert_int_equal(need, 0);
}

static void test_token_type_out_of_range(void **state) {
    (void)state;
    char path[512];
    tm_path(path, sizeof path, "ttype");
    bitnet_gguf_writer *w = NULL;
    assert_int_equal(bitnet_gguf_writer_create(&w), BITNET_OK);
    const char *toks[6] = {"<unk>", "<s>", "</s>", "a", "b", "c"};
    int32_t types[6] = {2, 3, 3, 1, 1, 99};
    float scores[6] = {0};
    assert_int_equal(bitnet_gguf_writer_set_str(w, "general.architecture", "llama", 5), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", toks, NULL, 6), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.scores", BITNET_GGUF_FLOAT32, scores, 6), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BITNET_GGUF_INT32, types, 6),
                     BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_begin(w, path), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_finish(w), BITNET_OK);
    bitnet_gguf_writer_free(w);
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    mp.vocab_only = 1;
    bitnet_model *m = NULL;
    assert_int_equal(bitnet_model_load(path, &mp, &m), BITNET_E_FORMAT);
    assert_null(m);
    assert_non_null(strstr(bitnet_last_error(), "tokenizer.ggml.token_type[5] = 99"));
    /* the same file with a valid type loads */
    types[5] = 1;
    assert_int_equal(bitnet_gguf_writer_create(&w), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_str(w, "general.architecture", "llama", 5), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", toks, NULL, 6), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.scores", BITNET_GGUF_FLOAT32, scores, 6), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BITNET_GGUF_INT32, types, 6),
                     BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_begin(w, path), BITNET_OK);
    assert_int_equal(bitnet_gguf_writer_finish(w), BITNET_OK);
    bitnet_gguf_writer_free(w);
    assert_int_equal(bitnet_model_load(path, &mp, &m), BITNET_OK);
    bitnet_model_free(m);
    unlink(path);
}

static int n_warn;
static char last_warn[1024];
static void capture(bitnet_log_level level, const char *msg, void *user) {
    (void)user;
    if (level == BITNET_LOG_WARN && strstr(msg, "context tokens")) {
        n_warn++;
        snprintf(last_warn, sizeof last_warn, "%s", msg);
    }
}

static void test_n_ctx_warning_once(void **state) {
    fx *f = *state;
    bitnet_set_log_callback(capture, NULL, BITNET_LOG_WARN);
    n_warn = 0;
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_threads = 1;
    p.n_ctx = 64; /* = context_length: no warning */
    bitnet_session *s = NULL;
    assert_int_equal(bitnet_session_create(f->m, &p, &s), BITNET_OK);
    bitnet_session_free(s);
    assert_int_equal(n_warn, 0);
    p.n_ctx = 1000;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bitnet_session_create(f->m, &p, &s), BITNET_OK);
        bitnet_session_free(s);
    }
    bitnet_set_log_callback(NULL, NULL, BITNET_LOG_WARN);
    assert_int_equal(n_warn, 1);
    assert_non_null(strstr(last_warn, "trained on only 64 context tokens (n_ctx 1000)"));
    /* 1 layer, 2 kv heads of 64, f16 K and V: 1000 * 2 * 64 * 2 bytes * 2 = 0.49 MiB */
    assert_non_null(strstr(last_warn, "takes 0.5 MiB"));
}

static void test_load_memory_matches_file(void **state) {
    fx *f = *state;
    FILE *fp = fopen(f->path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    size_t n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *img = malloc(n);
    assert_int_equal(fread(img, 1, n, fp), n);
    fclose(fp);
    bitnet_model *mm = NULL;
    assert_int_equal(bn_model_load_memory(img, n, NULL, &mm), BITNET_OK);
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = 16;
    p.n_threads = 1;
    bitnet_session *a = NULL, *b = NULL;
    assert_int_equal(bitnet_session_create(f->m, &p, &a), BITNET_OK);
    assert_int_equal(bitnet_session_create(mm, &p, &b), BITNET_OK);
    bitnet_token t[3] = {1, 100, 270};
    assert_int_equal(bitnet_session_eval(a, t, 3), BITNET_OK);
    assert_int_equal(bitnet_session_eval(b, t, 3), BITNET_OK);
    const float *la, *lb;
    assert_int_equal(bitnet_session_logits(a, -1, &la), BITNET_OK);
    assert_int_equal(bitnet_session_logits(b, -1, &lb), BITNET_OK);
    assert_memory_equal(la, lb, 300 * sizeof(float));
    bitnet_session_free(a);
    bitnet_session_free(b);
    bitnet_model_free(mm);
    /* a truncated image is refused with a message, and no model */
    assert_int_equal(bn_model_load_memory(img, n / 2, NULL, &mm), BITNET_E_FORMAT);
    assert_null(mm);
    free(img);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_file_metadata),
        cmocka_unit_test_setup_teardown(test_detokenize_null_buffer, setup, teardown),
        cmocka_unit_test(test_token_type_out_of_range),
        cmocka_unit_test_setup_teardown(test_n_ctx_warning_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_memory_matches_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
