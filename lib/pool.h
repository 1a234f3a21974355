/*
 * pool.h -- a small persistent thread pool owned by a session (lib/pool.c).
 *
 * bn_pool_run(p, fn, ctx) calls fn(ctx, ith, nth) on nth threads (the caller is
 * thread 0) and returns when all are done.  Work is split by the callers (rows of a
 * matrix, heads of attention), each thread writing disjoint outputs, so results do not
 * depend on scheduling.
 */
#ifndef BN_POOL_H
#define BN_POOL_H

#include "internal.h"

typedef struct bn_pool bn_pool;
typedef void (*bn_task_fn)(void *ctx, int ith, int nth);

/* n_threads >= 1 (1: no extra threads, bn_pool_run calls fn inline). */
bitnet_status bn_pool_create(int n_threads, bn_pool **out);
void bn_pool_free(bn_pool *p);
int bn_pool_size(const bn_pool *p);
void bn_pool_run(bn_pool *p, bn_task_fn fn, void *ctx);

/* Split [0, n) into nth contiguous parts: part ith is [*lo, *hi). */
static inline void bn_split(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    *lo = n * ith / nth;
    *hi = n * (ith + 1) / nth;
}

#endif
