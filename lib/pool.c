/*
 * pool.c -- persistent worker threads for one session.
 *
 * A decode step issues ~10 parallel runs per layer, each only tens of microseconds
 * long, so waking sleeping threads through a condition variable every time would cost
 * as much as the work.  Workers therefore spin briefly on an atomic generation counter
 * (BN_POOL_SPIN polls) before going to sleep on the condition variable; the caller
 * spins on an atomic count of unfinished workers.  The generation is bumped under the
 * mutex and sleepers are woken there, so a worker that decides to sleep can never miss
 * a run.  An idle session's workers sleep (no CPU use) after about a millisecond.
 */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define BN_POOL_SPIN 20000

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
    _Atomic int       pending;  /* workers still running the current run  */
    _Atomic int       quit;
    int               sleepers; /* workers waiting on go (under mu)       */
    bn_task_fn        fn;       /* written before gen is bumped           */
    void             *ctx;
};

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
            BN_CPU_RELAX();
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
        p->fn(p->ctx, ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
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
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (p->sleepers) pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    for (long i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
        if (i < BN_POOL_SPIN) BN_CPU_RELAX();
        else sched_yield();
    }
}
