/*
 * cmocka.h -- a minimal stand-in for the cmocka API used by tests/unit/test_kernels.c,
 * so the kernel tests can be cross-compiled for AArch64 and run under qemu-user where
 * no arm64 cmocka package is installed (tests/neon/run_neon.sh).  A failed check
 * prints where and exits with status 1; there is no per-test recovery.
 */
#ifndef BN_CMOCKA_SHIM_H
#define BN_CMOCKA_SHIM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct CMUnitTest {
    const char *name;
    void (*fn)(void **state);
};

#define cmocka_unit_test(f) {#f, f}

static inline void bn_shim_fail(const char *file, int line, const char *what) {
    printf("FAILED at %s:%d: %s\n", file, line, what);
    exit(1);
}

#define assert_true(c)                                                   \
    do {                                                                 \
        if (!(c)) bn_shim_fail(__FILE__, __LINE__, #c);                  \
    } while (0)
#define assert_false(c) assert_true(!(c))
#define assert_int_equal(a, b) assert_true((intmax_t)(a) == (intmax_t)(b))
#define assert_ptr_equal(a, b) assert_true((const void *)(a) == (const void *)(b))
#define assert_non_null(p) assert_true((p) != NULL)
#define assert_null(p) assert_true((p) == NULL)
#define assert_string_equal(a, b) assert_true(strcmp((a), (b)) == 0)
#define assert_memory_equal(a, b, n) assert_true(memcmp((a), (b), (n)) == 0)
#define print_message(...) printf(__VA_ARGS__)
#define fail_msg(...)                                                    \
    do {                                                                 \
        printf("ERROR: ");                                               \
        printf(__VA_ARGS__);                                             \
        printf("\n");                                                    \
        bn_shim_fail(__FILE__, __LINE__, "fail_msg");                    \
    } while (0)

static inline int bn_shim_run(const struct CMUnitTest *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        printf("[ RUN      ] %s\n", t[i].name);
        t[i].fn(NULL);
        printf("[       OK ] %s\n", t[i].name);
    }
    printf("[  PASSED  ] %zu test(s).\n", n);
    return 0;
}
#define cmocka_run_group_tests(tests, setup, teardown) bn_shim_run(tests, sizeof(tests) / sizeof((tests)[0]))

#endif
