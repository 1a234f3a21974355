/*
 * cpu.h -- CPU feature detection (kernels/cpu.c).  Internal.
 */
#ifndef BN_CPU_H
#define BN_CPU_H

#include <stdint.h>

enum {
    BN_CPU_SSE42      = 1u << 0,
    BN_CPU_AVX        = 1u << 1,
    BN_CPU_AVX2       = 1u << 2,
    BN_CPU_FMA        = 1u << 3,
    BN_CPU_F16C       = 1u << 4,
    BN_CPU_AVX512F    = 1u << 5,
    BN_CPU_AVX512BW   = 1u << 6,
    BN_CPU_AVX512VL   = 1u << 7,
    BN_CPU_AVX512VNNI = 1u << 8,
    BN_CPU_AVXVNNI    = 1u << 9,
    BN_CPU_AVX512BF16 = 1u << 10,
    BN_CPU_AMX        = 1u << 11, /* AMX-TILE + AMX-INT8, tile state enabled by the OS */
    BN_CPU_GFNI       = 1u << 12, /* GF2P8AFFINEQB (with AVX-512: the 512-bit form)         */
    BN_CPU_NEON       = 1u << 16,
    BN_CPU_DOTPROD    = 1u << 17,
    BN_CPU_FP16       = 1u << 18,
    BN_CPU_INTEL      = 1u << 24, /* vendor GenuineIntel (tunings, not instructions)      */
    BN_CPU_AMX_HW     = 1u << 25  /* CPUID lists AMX tiles, usable or not (tunings; BN_CPU_AMX
                                     says whether they may run)                           */
};

/* Features present in the CPU *and* enabled by the OS (XCR0 on x86).  Cached. */
uint32_t bn_cpu_features(void);

/* Tests only: clear these bits from bn_cpu_features() (to run a kernel's other path on a
 * CPU that has the feature); 0 restores them. */
void bn_cpu_mask(uint32_t bits);

/* Ask the OS (once) for this process's permission to use AMX tile data; 1 if granted
 * (Linux 5.16+), 0 otherwise or without BN_CPU_AMX.  The amx kernels run only after it. */
int bn_cpu_amx_enable(void);

/* How far ahead (bytes) the one-token ternary pass prefetches its weight stream, 0 for
 * none: a tuning measured per kind of CPU (docs/performance.md §3, §10, §11). */
int bn_cpu_decode_prefetch(void);
/* The same for the F16 output layer's pass (G4X32): 0 except where measured to help. */
int bn_cpu_dense_prefetch(void);

#endif
