/*
 * bench_kernels -- time one ternary matrix product alone, per kernel variant and per
 * number of tokens (a developer's tool, not a test: run it by hand on a quiet machine).
 *
 *   build/tests/bin/bench_kernels [ROWS COLS [REPS [ISA]]]     (default 4096 1536 20 auto)
 *
 * For k = 1 .. 128 tokens it reports the best thread CPU time of REPS products of
 * the whole matrix on one thread, in the row chunks the forward pass hands to a thread
 * (the matrix in the layout the variant repacks to), the
 * cost per token relative to k = 1 (the "pp k / tg" ratio of docs/performance.md for the
 * matmul alone) and weight x token products per nanosecond.  Variants with a many-token
 * path (act_pack: amx) get the activations packed first from pack_min_tok tokens on, as the
 * forward pass does, and that packing is timed with the product.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: robust to other processes */
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int64_t rows = argc > 1 ? atoll(argv[1]) : 4096, cols = argc > 2 ? atoll(argv[2]) : 1536;
    int reps = argc > 3 ? atoi(argv[3]) : 20;
    bitnet_isa isa = BITNET_ISA_AUTO;
    if (argc > 4 && bitnet_isa_from_name(argv[4], &isa) != BITNET_OK) {
        fprintf(stderr, "unknown isa %s\n", argv[4]);
        return 2;
    }
    const bn_kernels *k = bn_kernels_get(isa);
    if (!k) {
        fprintf(stderr, "variant not supported here\n");
        return 2;
    }
    bn_tmat w = {0};
    w.rows = rows;
    w.cols = cols;
    w.cols_pad = (cols + BN_TMAT_PAD - 1) / BN_TMAT_PAD * BN_TMAT_PAD;
    w.row_bytes = w.cols_pad / 4;
    w.scale = 1.0f;
    w.codes = bn_aligned_alloc(64, (size_t)(rows + 3) * (size_t)w.row_bytes);
    uint32_t s = 12345;
    for (int64_t i = 0; i < rows * w.row_bytes; i++) {
        uint8_t b = 0;
        for (int e = 0; e < 4; e++) {
            s = s * 1664525u + 1013904223u;
            b = (uint8_t)(b << 2 | (s >> 24) % 3);
        }
        w.codes[i] = b;
    }
    if (k->tmat_repack && k->tmat_repack(&w) != BITNET_OK) return 1;
    enum { KMAX = 128 };
    const int64_t act = bn_act_pad(cols);
    bn_qrow x[KMAX];
    int8_t *qbuf = bn_aligned_alloc(64, (size_t)act * KMAX); /* one buffer, rows act apart, as the forward pass */
    for (int t = 0; t < KMAX; t++) {
        x[t].q = qbuf + (size_t)t * (size_t)act;
        int32_t sum = 0;
        for (int64_t i = 0; i < act; i++) {
            s = s * 1664525u + 1013904223u;
            x[t].q[i] = i < cols ? (int8_t)((int)(s >> 24) % 255 - 127) : 0;
            sum += x[t].q[i];
        }
        x[t].a = 1.0f;
        x[t].sum = sum;
    }
    float *y = malloc(sizeof(float) * (size_t)rows * KMAX);
    int8_t *pk = k->act_pack ? bn_aligned_alloc(64, BN_ACT_PACK_BYTES(KMAX, act)) : NULL;
    static const int ks[] = {1, 2, 3, 4, 8, 16, 32, 64, 128};
    double base = 0;
    int64_t chunk = rows / 8 < 64 ? 64 : (rows / 8 + 15) / 16 * 16; /* lib/fwd_pass.c, one thread */
    printf("kernels %s, %lld x %lld, best of %d\n", k->name, (long long)rows, (long long)cols, reps);
    printf("%5s %12s %12s %10s %10s\n", "k", "us/step", "us/token", "vs k=1", "wt/ns");
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
        const int n = ks[i];
        double best = 1e30;
        for (int r = 0; r < reps + 2; r++) {
            double t0 = now_ns();
            x[0].pk = NULL;
            if (pk && n >= k->pack_min_tok) { /* as the forward pass does, once per step (timed) */
                k->act_pack(x, n, act, pk);
                x[0].pk = pk;
                x[0].pk_pad = act;
            }
            for (int64_t r0 = 0; r0 < rows; r0 += chunk) /* in the forward pass's chunks */
                k->ternary_matmul(&w, r0, r0 + chunk < rows ? r0 + chunk : rows, x, n, y, rows);
            double dt = now_ns() - t0;
            if (r >= 2 && dt < best) best = dt;
        }
        if (n == 1) base = best;
        printf("%5d %12.1f %12.2f %10.3f %10.2f\n", n, best / 1e3, best / 1e3 / n, best / n / base,
               (double)rows * (double)cols * n / best);
    }
    return 0;
}
