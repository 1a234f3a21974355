/*
 * core_pool.c -- persistent worker threads for one session.
 *
 * A decode step issues ~10 parallel runs per layer, each only tens of microseconds
 * long, so waking sleeping threads through a condition variable every time would cost
 * as much as the work.  Workers therefore spin briefly on an atomic generation counter
 * (BN_POOL_SPIN polls) before going to sleep on the condition variable; after the first
 * BN_POOL_PURE_SPIN polls each poll yields the CPU, so a spinning thread that shares a
 * core with a busy one (ours or another process's) does not take its time.  The generation
 * is bumped under the mutex and sleepers are woken there, so a worker that decides to
 * sleep can never miss a run.  An idle session's workers sleep (no CPU use) after about
 * a millisecond.
 *
 * Tasks claim their work in chunks through atomic counters (lib/fwd_pass.c), so the
 * caller can finish a run alone.  It then does not wait for workers that have not
 * started: it closes the run and waits only for workers already inside it.  A worker
 * enters a run by incrementing `active` and then checking that the run is not closed;
 * the caller closes it and then reads `active` (both sequentially consistent), so a
 * late worker either is counted or sees the run (or a later one) closed and never
 * touches the caller's task.  When another process holds a core and a worker is descheduled, the session
 * keeps going on the remaining core instead of stalling at every run.
 *
 * A worker descheduled in the middle of a chunk still makes the caller wait for it.
 * The caller therefore watches its own waits: a wait longer than 50 us and longer than
 * half of the caller's own share of the run cannot be a worker finishing its last
 * chunk (chunks are about 1/16 of a run).  When several of the last 16 runs waited like
 * that, another process is competing for the cores, and the
 * next BN_POOL_SOLO_RUNS runs (a few decode steps) are done by the caller alone, with
 * the same chunk boundaries (so the same results), before the workers are tried again.
 * Two threads on a busy machine then cost about what one does, instead of waiting on
 * the scheduler at every run.
 */
#include "core_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#define BN_POOL_SPIN       20000
#define BN_POOL_PURE_SPIN  1000  /* polls before spinning turns into sched_yield()            */
#define BN_POOL_STALL_NS   50000 /* shortest wait counted as a stalled worker              */
#define BN_POOL_SOLO_RUNS  512  /* runs done alone after repeated stalls                     */

#if defined(__x86_64__) || defined(__i386__)
#define BN_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define BN_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define BN_CPU_RELAX() ((void)0)
#endif

struct bn_pool {
    int               n;        /* threads including the caller           */
    pthread_t        *th;       /* n - 1 workers                           */
    pthread_mutex_t   mu;
    pthread_cond_t    go;
    _Atomic uint64_t  gen;      /* bumped (under mu) to start a run       */
    _Atomic uint64_t  closed;   /* the last run the caller has closed     */
    _Atomic int       active;   /* workers inside the current run         */
    _Atomic int       quit;
    int               sleepers; /* workers waiting on go (under mu)       */
    bn_task_fn        fn;       /* written before gen is bumped           */
    void             *ctx;
    uint32_t          stalls;   /* bit i: the i-th last run waited long (caller only) */
    int               solo;     /* runs left to do without the workers (caller only)  */
};

static int64_t bn_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct bn_worker_arg {
    bn_pool *p;
    int      ith;
} bn_worker_arg;

static void *bn_worker(void *arg) {
    bn_pool *p = ((bn_worker_arg *)arg)->p;
    int ith = ((bn_worker_arg *)arg)->ith;
    bn_free(arg);
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int i = 0; i < BN_POOL_SPIN && g == seen && !atomic_load_explicit(&p->quit, memory_order_relaxed); i++) {
            if (i < BN_POOL_PURE_SPIN) BN_CPU_RELAX();
            else sched_yield(); /* free (if asked) the core for a thread that needs it */
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->go, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = g;
        atomic_fetch_add(&p->active, 1);
        /* not too late: fn and ctx are this run's.  "<", not "!=": a worker that saw run g
         * but was descheduled may find that run g and the next ones are closed already (the
         * caller started run g+1 after g's close, when this worker was not yet counted) */
        if (atomic_load(&p->closed) < g)
            p->fn(p->ctx, ith, p->n);
        atomic_fetch_sub_explicit(&p->active, 1, memory_order_release);
    }
}

bitnet_status bn_pool_create(int n_threads, bn_pool **out) {
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    bn_pool *p = bn_calloc(1, sizeof *p);
    if (!p) return bn_err(BITNET_E_NOMEM, "out of memory for the thread pool");
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    if (n_threads > 1) {
        p->th = bn_calloc((size_t)n_threads - 1, sizeof *p->th);
        if (!p->th) {
            bn_pool_free(p);
            return bn_err(BITNET_E_NOMEM, "out of memory for the thread pool");
        }
        /* p->n is final before any worker can see a run (runs start after create) */
        p->n = n_threads;
        for (int i = 1; i < n_threads; i++) {
            bn_worker_arg *a = bn_malloc(sizeof *a);
            int ok = a != NULL;
            if (ok) {
                a->p = p;
                a->ith = i;
                ok = pthread_create(&p->th[i - 1], NULL, bn_worker, a) == 0;
                if (!ok) bn_free(a);
            }
            if (!ok) {
                p->n = i; /* only i - 1 workers exist */
                bn_pool_free(p);
                return bn_err(BITNET_E_NOMEM, "could not start worker thread %d of %d", i, n_threads);
            }
        }
    }
    *out = p;
    return BITNET_OK;
}

void bn_pool_free(bn_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    bn_free(p->th);
    bn_free(p);
}

int bn_pool_size(const bn_pool *p) { return p ? p->n : 1; }

void bn_pool_run(bn_pool *p, bn_task_fn fn, void *ctx) {
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    if (p->solo > 0) { /* contended: claim every chunk here (same boundaries, same results) */
        p->solo--;
        fn(ctx, 0, p->n);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    pthread_mutex_lock(&p->mu);
    uint64_t g = atomic_fetch_add_explicit(&p->gen, 1, memory_order_release) + 1;
    if (p->sleepers) pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    const int64_t t0 = bn_now_ns();
    fn(ctx, 0, p->n); /* returns when no work is left to claim */
    atomic_store(&p->closed, g);
    const int64_t t1 = bn_now_ns();
    for (long i = 0; atomic_load(&p->active) > 0; i++) {
        if (i < BN_POOL_PURE_SPIN) BN_CPU_RELAX();
        else sched_yield();
    }
    const int64_t waited = bn_now_ns() - t1;
    p->stalls = p->stalls << 1 | (waited > BN_POOL_STALL_NS && waited > (t1 - t0) / 2);
    if (__builtin_popcount(p->stalls & 0xffffu) >= 3) {
        p->solo = BN_POOL_SOLO_RUNS;
        p->stalls = 0;
    }
}
