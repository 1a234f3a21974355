/*
 * core_alloc.c -- every allocation of the library, with a fault-injection hook for tests
 * (fail the n-th allocation, as SQLite's test_malloc does).
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

static _Atomic uint64_t bn_alloc_count;
static _Atomic uint64_t bn_alloc_fail_at; /* 0 = never fail */

uint64_t bn_alloc_fail_after(uint64_t n) {
    uint64_t made = atomic_exchange(&bn_alloc_count, 0);
    atomic_store(&bn_alloc_fail_at, n);
    return made;
}

static int bn_alloc_should_fail(void) {
    uint64_t c = atomic_fetch_add(&bn_alloc_count, 1) + 1;
    uint64_t f = atomic_load(&bn_alloc_fail_at);
    return f != 0 && c == f;
}

void *bn_malloc(size_t size) {
    if (bn_alloc_should_fail()) return NULL;
    return malloc(size ? size : 1);
}

void *bn_mallocn(size_t n, size_t size) {
    size_t t;
    if (__builtin_mul_overflow(n, size, &t)) return NULL;
    return bn_malloc(t);
}

void *bn_calloc(size_t n, size_t size) {
    if (bn_alloc_should_fail()) return NULL;
    if (n == 0 || size == 0) return calloc(1, 1);
    return calloc(n, size);
}

void *bn_realloc(void *p, size_t size) {
    if (bn_alloc_should_fail()) return NULL;
    return realloc(p, size ? size : 1);
}

/* Buffers of this size or more (weights, KV caches) are aligned to 2 MiB and marked for
 * transparent huge pages: a few faults instead of one per 4 KiB page at load (the page
 * faults dominated loading a 1.2 GB model), and fewer TLB misses while decode streams
 * the weights.  Where THP is off, madvise is a harmless no-op. */
#define BN_HUGE_MIN   ((size_t)4 << 20)
#define BN_HUGE_ALIGN ((size_t)2 << 20)

void *bn_aligned_alloc(size_t alignment, size_t size) {
    if (bn_alloc_should_fail()) return NULL;
    void *p = NULL;
    if (alignment < sizeof(void *)) alignment = sizeof(void *);
    const int huge = size >= BN_HUGE_MIN;
    if (huge && alignment < BN_HUGE_ALIGN) alignment = BN_HUGE_ALIGN;
    if (posix_memalign(&p, alignment, size ? size : alignment) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (huge) (void)madvise(p, size, MADV_HUGEPAGE);
#endif
    return p;
}

void bn_aligned_free(void *p) { free(p); }

void bn_free(void *p) { free(p); }

char *bn_strndup(const char *s, size_t n) {
    char *d = bn_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}
