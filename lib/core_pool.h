/*
 * core_pool.h -- a small persistent thread pool owned by a session (lib/core_pool.c).
 *
 * bn_pool_run(p, fn, ctx) calls fn(ctx, ith, nth) on the caller (thread 0) and on each
 * worker that joins the run in time, and returns when every call that started has
 * returned.  A worker may not join at all (descheduled, late), so fn must take its work
 * by claiming chunks from a counter in ctx (bn_claim) until none is left, never by a
 * fixed split over ith/nth.  Chunk boundaries depend only on the sizes and nth, and
 * each chunk writes disjoint outputs, so results do not depend on scheduling.
 */
#ifndef BN_POOL_H
#define BN_POOL_H

#include "internal.h"

#include <stdatomic.h>

typedef struct bn_pool bn_pool;
typedef void (*bn_task_fn)(void *ctx, int ith, int nth);

/* n_threads >= 1 (1: no extra threads, bn_pool_run calls fn inline). */
bitnet_status bn_pool_create(int n_threads, bn_pool **out);
void bn_pool_free(bn_pool *p);
int bn_pool_size(const bn_pool *p);
void bn_pool_run(bn_pool *p, bn_task_fn fn, void *ctx);

/* Claim the next chunk [*lo, *hi) of [0, n) in chunks of `chunk` items from the
 * counter *next (0 at the start of the run); 0 when nothing is left. */
static inline int bn_claim(_Atomic int64_t *next, int64_t n, int64_t chunk, int64_t *lo, int64_t *hi) {
    int64_t c = atomic_fetch_add_explicit(next, 1, memory_order_relaxed);
    if (c >= (n + chunk - 1) / chunk) return 0;
    *lo = c * chunk;
    *hi = *lo + chunk < n ? *lo + chunk : n;
    return 1;
}

#endif
