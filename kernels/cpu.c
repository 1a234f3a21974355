/*
 * cpu.c -- which instruction-set extensions this CPU and OS can run.
 *
 * x86: CPUID says what the CPU implements; XGETBV (XCR0) says which register states
 * the OS saves on context switch.  AVX needs XCR0 bits 1-2 (SSE, AVX); AVX-512 also
 * bits 5-7 (opmask, ZMM_Hi256, Hi16_ZMM); AMX bits 17-18 (XTILECFG, XTILEDATA).  A
 * feature counts only if both agree.  On Linux a process must also ask for AMX tile data
 * before its first tile instruction (arch_prctl ARCH_REQ_XCOMP_PERM): bn_cpu_amx_enable()
 * does so once, only when the amx kernels are about to be chosen (the kernel then makes
 * room for the 8 KiB of tiles in every signal frame, and refuses later sigaltstack()s
 * smaller than that: BITNET_ISA=avx512 keeps a process from asking).
 * AArch64 Linux: getauxval(AT_HWCAP).
 */
#include "cpu.h"

#include "bitnet.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Linux 5.16+: permission to use AMX tile data in this process (0 elsewhere). */
static int bn_amx_permitted(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#else
    return 0;
#endif
}

static uint64_t bn_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static uint32_t bn_detect(void) {
    uint32_t a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1;
    if ((c >> 20) & 1) f |= BN_CPU_SSE42;
    uint64_t xcr0 = osxsave ? bn_xgetbv0() : 0;
    int os_avx = (xcr0 & 0x6) == 0x6;
    int os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
    if (os_avx && ((c >> 28) & 1)) f |= BN_CPU_AVX;
    if (os_avx && ((c >> 12) & 1)) f |= BN_CPU_FMA;
    if (os_avx && ((c >> 29) & 1)) f |= BN_CPU_F16C;
    uint32_t max_leaf = __get_cpuid_max(0, NULL);
    {
        uint32_t v0, vb, vc, vd;
        __cpuid(0, v0, vb, vc, vd);
        if (vb == 0x756e6547u && vd == 0x49656e69u && vc == 0x6c65746eu) f |= BN_CPU_INTEL; /* "GenuineIntel" */
    }
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if (os_avx && ((b >> 5) & 1)) f |= BN_CPU_AVX2;
        if (os_avx512) {
            if ((b >> 16) & 1) f |= BN_CPU_AVX512F;
            if ((b >> 30) & 1) f |= BN_CPU_AVX512BW;
            if ((b >> 31) & 1) f |= BN_CPU_AVX512VL;
            if ((c >> 11) & 1) f |= BN_CPU_AVX512VNNI;
            if ((c >> 8) & 1) f |= BN_CPU_GFNI;
        }
        /* EDX bit 24 AMX-TILE, bit 25 AMX-INT8 */
        if ((d >> 24) & 1) f |= BN_CPU_AMX_HW;
        if (os_avx512 && ((xcr0 >> 17) & 3) == 3 && ((d >> 24) & 3) == 3) f |= BN_CPU_AMX;
        __cpuid_count(7, 1, a, b, c, d);
        if (os_avx && ((a >> 4) & 1)) f |= BN_CPU_AVXVNNI;
        if (os_avx512 && ((a >> 5) & 1)) f |= BN_CPU_AVX512BF16;
    }
    return f;
}
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1 << 10)
#endif
static uint32_t bn_detect(void) {
    unsigned long hw = getauxval(AT_HWCAP);
    uint32_t f = 0;
    if (hw & HWCAP_ASIMD) f |= BN_CPU_NEON;
    if (hw & HWCAP_ASIMDDP) f |= BN_CPU_DOTPROD;
    if (hw & HWCAP_ASIMDHP) f |= BN_CPU_FP16;
    return f;
}
#else
static uint32_t bn_detect(void) { return 0; }
#endif

static pthread_once_t bn_cpu_once = PTHREAD_ONCE_INIT;
static uint32_t bn_cpu_bits, bn_cpu_masked;
static char bn_cpu_names[256];

static void bn_cpu_init(void) {
    static const struct { uint32_t bit; const char *name; } names[] = {
        {BN_CPU_SSE42, "sse4.2"},        {BN_CPU_AVX, "avx"},           {BN_CPU_AVX2, "avx2"},
        {BN_CPU_FMA, "fma"},             {BN_CPU_F16C, "f16c"},         {BN_CPU_AVX512F, "avx512f"},
        {BN_CPU_AVX512BW, "avx512bw"},   {BN_CPU_AVX512VL, "avx512vl"}, {BN_CPU_AVX512VNNI, "avx512vnni"},
        {BN_CPU_AVXVNNI, "avxvnni"},     {BN_CPU_AVX512BF16, "avx512bf16"}, {BN_CPU_AMX, "amx-int8"},
        {BN_CPU_GFNI, "gfni"},
        {BN_CPU_NEON, "neon"},           {BN_CPU_DOTPROD, "dotprod"},   {BN_CPU_FP16, "fp16"},
    };
    bn_cpu_bits = bn_detect();
    char *p = bn_cpu_names;
    size_t left = sizeof bn_cpu_names;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(bn_cpu_bits & names[i].bit)) continue;
        size_t l = strlen(names[i].name);
        if (l + 2 > left) break;
        if (p != bn_cpu_names) { *p++ = ' '; left--; }
        memcpy(p, names[i].name, l);
        p += l;
        left -= l;
        *p = 0;
    }
}

uint32_t bn_cpu_features(void) {
    pthread_once(&bn_cpu_once, bn_cpu_init);
    return bn_cpu_bits & ~bn_cpu_masked;
}

void bn_cpu_mask(uint32_t bits) { bn_cpu_masked = bits; }

static pthread_once_t bn_amx_once = PTHREAD_ONCE_INIT;
static int bn_amx_ok;
static void bn_amx_init(void) {
#if defined(__x86_64__) || defined(__i386__)
    bn_amx_ok = (bn_cpu_features() & BN_CPU_AMX) && bn_amx_permitted();
#endif
}

int bn_cpu_amx_enable(void) {
    pthread_once(&bn_amx_once, bn_amx_init);
    return bn_amx_ok;
}

const char *bitnet_cpu_features(void) {
    pthread_once(&bn_cpu_once, bn_cpu_init);
    return bn_cpu_names;
}

int bn_cpu_decode_prefetch(void) {
    const uint32_t f = bn_cpu_features();
    if (!(f & BN_CPU_INTEL)) return 0; /* AMD: the hardware prefetcher alone did best */
    /* Intel Xeon with AMX (480 MiB L3, 14 GB/s per thread): 2 KiB, 1.13x over 4 KiB on 2B-4T;
       the Xeon without AMX (260 MiB L3, 9.8 GB/s): 4 KiB, 1.1x over 1 KiB */
    return f & BN_CPU_AMX_HW ? 2048 : 4096;
}

int bn_cpu_dense_prefetch(void) {
    /* Intel Xeon with AMX: 2 KiB, 2B-4T tg 2 threads 1.03-1.05x (none measured better on
       AMD, and nothing was measured on the earlier Xeon) */
    const uint32_t f = bn_cpu_features();
    return (f & BN_CPU_INTEL) && (f & BN_CPU_AMX_HW) ? 2048 : 0;
}
