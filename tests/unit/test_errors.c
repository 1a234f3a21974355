/*
 * test_errors.c -- the error rule of bitnet.h: every failing call records its own
 * message in the thread's channel (bitnet_last_error), and a failing call on a session
 * records the same message in the session (bitnet_session_last_error).  Each case below
 * first leaves an unrelated failure in both channels, then makes one call fail and
 * checks that both channels now name that call, never the earlier failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_model_util.h"

#include <pthread.h>

typedef struct fixture {
    char          path[512];
    bitnet_model *m;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    tm_spec sp;
    tm_default(&sp);
    sp.n_layer = 1;
    sp.n_ctx = 64;
    tm_path(f->path, sizeof f->path, "errors");
    if (tm_write(&sp, f->path) != 0) return -1;
    if (bitnet_model_load(f->path, NULL, &f->m) != BITNET_OK) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    bitnet_model_free(f->m);
    unlink(f->path);
    free(f);
    return 0;
}

static bitnet_session *new_session(const bitnet_model *m) {
    bitnet_session_params p;
    bitnet_session_default_params(&p, sizeof p);
    p.n_ctx = 32;
    p.n_threads = 1;
    bitnet_session *s = NULL;
    assert_int_equal(bitnet_session_create(m, &p, &s), BITNET_OK);
    return s;
}

/* An earlier failure in both channels that no later message may be confused with. */
static void unrelated_failures(bitnet_session *s) {
    assert_int_equal(bitnet_session_truncate(s, 999), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_session_last_error(s), "n_keep 999"));
    bitnet_gguf *g = NULL;
    assert_int_equal(bitnet_gguf_open("/nonexistent/unrelated-earlier-failure.gguf", &g), BITNET_E_IO);
    assert_non_null(strstr(bitnet_last_error(), "unrelated-earlier-failure"));
}

/* The call failed with `st`; both channels carry its message, which contains `want`. */
static void check_channels(bitnet_session *s, bitnet_status got, bitnet_status st, const char *want, const char *what) {
    if (got != st) fail_msg("%s: status %d, expected %d", what, (int)got, (int)st);
    const char *tls = bitnet_last_error(), *ses = bitnet_session_last_error(s);
    if (!strstr(tls, want)) fail_msg("%s: bitnet_last_error() = '%s', expected '%s' in it", what, tls, want);
    if (strcmp(tls, ses) != 0)
        fail_msg("%s: the channels disagree: thread '%s', session '%s'", what, tls, ses);
    assert_null(strstr(tls, "unrelated-earlier-failure"));
    assert_null(strstr(tls, "n_keep 999"));
}

static void test_session_calls(void **state) {
    fixture *f = *state;
    bitnet_session *s = new_session(f->m);
    bitnet_sampler_params sp;
    bitnet_sampler_default_params(&sp, sizeof sp);
    bitnet_generate_params gp;
    bitnet_generate_default_params(&gp, sizeof gp);
    const float *fl = NULL;
    bitnet_token t = 0, toks[3] = {1, 5, 6}, bad[2] = {1, 300};
    size_t n = 0;
    bitnet_generator *g = NULL;
    bitnet_generator_step step;

#define CASE(call, st, want)                                                                                      \
    do {                                                                                                          \
        unrelated_failures(s);                                                                                    \
        check_channels(s, (call), (st), (want), #call);                                                           \
    } while (0)

    /* a fresh session: nothing evaluated */
    CASE(bitnet_session_logits(s, -1, &fl), BITNET_E_INVALID_ARG, "bitnet_session_logits: no logits");
    CASE(bitnet_session_logits(s, -1, NULL), BITNET_E_INVALID_ARG, "bitnet_session_logits: logits is NULL");
    CASE(bitnet_session_embeddings(s, -1, &fl), BITNET_E_INVALID_ARG, "bitnet_session_embeddings: nothing");
    CASE(bitnet_session_embeddings(s, 0, NULL), BITNET_E_INVALID_ARG, "bitnet_session_embeddings: embd is NULL");
    CASE(bitnet_session_sample(s, &sp, &t), BITNET_E_INVALID_ARG, "no logits");
    CASE(bitnet_session_sample(s, &sp, NULL), BITNET_E_INVALID_ARG, "bitnet_session_sample: out is NULL");
    CASE(bitnet_session_eval(s, NULL, 1), BITNET_E_INVALID_ARG, "bitnet_session_eval: tokens is NULL");
    CASE(bitnet_session_eval(s, bad, 2), BITNET_E_INVALID_ARG, "outside the vocabulary");
    CASE(bitnet_session_generate(s, NULL, 0, &sp, &gp, NULL, 0, NULL, NULL), BITNET_E_INVALID_ARG,
         "bitnet_session_generate: no prompt");
    CASE(bitnet_session_beam_search(s, toks, 3, 0, 4, NULL, 0, &n), BITNET_E_INVALID_ARG, "n_beams");
    CASE(bitnet_session_state_save(s, NULL, 0, &n), BITNET_E_BUFFER_TOO_SMALL, "bitnet_session_state_save: needs");
    CASE(bitnet_session_state_load(s, "junk", 4), BITNET_E_FORMAT, "not a libbitnet state blob");
    CASE(bitnet_session_eval_prompt(s, NULL, 1, &n), BITNET_E_INVALID_ARG, "bitnet_session_eval_prompt: tokens");
    CASE(bitnet_session_eval_prompt(s, bad, 2, &n), BITNET_E_INVALID_ARG, "bitnet_session_eval_prompt: token 1");
    CASE(bitnet_generator_create(s, &sp, &gp, NULL, 0, &g), BITNET_E_INVALID_ARG,
         "bitnet_generator_create: no prompt");
    CASE(bitnet_generator_create(s, &sp, &gp, bad, 2, &g), BITNET_E_INVALID_ARG,
         "bitnet_generator_create: prompt token 1");
    sp.repeat_penalty = 0.0f;
    CASE(bitnet_generator_create(s, &sp, &gp, toks, 3, &g), BITNET_E_INVALID_ARG, "repeat_penalty");
    sp.repeat_penalty = 1.0f;

    /* with something evaluated */
    assert_int_equal(bitnet_session_eval(s, toks, 3), BITNET_OK);
    CASE(bitnet_session_logits(s, 1, &fl), BITNET_E_INVALID_ARG, "set logits_all");
    CASE(bitnet_session_embeddings(s, 1, &fl), BITNET_E_INVALID_ARG, "set params.embeddings");
    bitnet_token many[40] = {0};
    CASE(bitnet_session_eval(s, many, 40), BITNET_E_CONTEXT_FULL, "do not fit");
    CASE(bitnet_session_eval_prompt(s, many, 40, &n), BITNET_E_CONTEXT_FULL, "do not fit in n_ctx 32");
    assert_int_equal(bitnet_generator_create(s, &sp, &gp, NULL, 0, &g), BITNET_OK);
    CASE(bitnet_generator_next(g, NULL), BITNET_E_INVALID_ARG, "bitnet_generator_next: step is NULL");
    assert_int_equal(bitnet_generator_next(g, &step), BITNET_OK);
    assert_int_equal(bitnet_session_truncate(s, 1), BITNET_OK);
    CASE(bitnet_generator_next(g, &step), BITNET_E_INVALID_ARG, "session changed");
    CASE(bitnet_generator_next(g, &step), BITNET_E_INVALID_ARG, "session changed"); /* repeated */
    bitnet_generator_free(g);
#undef CASE
    bitnet_session_free(s);
}

/* Calls without a session report through the thread's channel only, and never leave
 * an earlier message there. */
static void test_thread_channel(void **state) {
    fixture *f = *state;
    bitnet_session *s = new_session(f->m);
    bitnet_decoder *d = NULL;
    assert_int_equal(bitnet_decoder_create(f->m, 0, &d), BITNET_OK);
    char buf[16];
    size_t n = 0;
    unrelated_failures(s);
    assert_int_equal(bitnet_decoder_push(d, 300, buf, sizeof buf, &n), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "bitnet_decoder_push"));
    unrelated_failures(s);
    assert_int_equal(bitnet_session_logits(NULL, -1, NULL), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "bitnet_session_logits: session is NULL"));
    unrelated_failures(s);
    assert_int_equal(bitnet_generator_next(NULL, NULL), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "bitnet_generator_next: generator is NULL"));
    assert_string_equal(bitnet_session_last_error(NULL), "");
    bitnet_decoder_free(d);
    bitnet_session_free(s);
}

typedef struct worker_arg {
    bitnet_session *s;
    bitnet_status   st;
} worker_arg;

static void *fail_in_thread(void *p) {
    worker_arg *a = p;
    const float *l = NULL;
    a->st = bitnet_session_logits(a->s, -1, &l);
    return NULL;
}

/* The session's channel is what another thread reads after a worker's call failed
 * (the thread channel is per thread). */
static void test_session_channel_across_threads(void **state) {
    fixture *f = *state;
    bitnet_session *s = new_session(f->m);
    bitnet_gguf *g = NULL;
    assert_int_equal(bitnet_gguf_open("/nonexistent/main-thread.gguf", &g), BITNET_E_IO);
    worker_arg a = {s, BITNET_OK};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fail_in_thread, &a), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(a.st, BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_session_last_error(s), "bitnet_session_logits: no logits"));
    assert_non_null(strstr(bitnet_last_error(), "main-thread.gguf")); /* this thread's own */
    bitnet_session_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_calls),
        cmocka_unit_test(test_thread_channel),
        cmocka_unit_test(test_session_channel_across_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
