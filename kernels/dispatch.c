/*
 * dispatch.c -- the one registry of kernel variants and the choice between them.
 *
 * Every variant is a bn_kernels table in its own file, compiled with its own flags
 * (kernels/kernels.cmake).  bn_candidates lists the variants this build contains, best
 * first, each with the CPU features (kernels/cpu.c: CPUID + XGETBV on x86, getauxval
 * on AArch64) it needs; the scalar reference is always last and always runs.  Adding a
 * variant = one file, one row here, its flags in kernels.cmake.
 *
 * Choice (once per model, bn_kernels_get):
 *   - an explicit isa (bitnet_model_params.isa) gets exactly that variant, or NULL when
 *     this build or CPU cannot run it (the caller reports BITNET_E_UNSUPPORTED);
 *   - AUTO gets the best supported variant, capped by the environment variable
 *     BITNET_ISA=scalar|avx2|avx512|neon: variants ranked above the named one are
 *     skipped (BITNET_ISA=avx512 on an AVX2-only CPU gives avx2).  A name this build
 *     does not contain caps everything down to scalar; an unknown name is ignored.
 *     Both cases are logged.
 * A variant may leave slots NULL; they are filled from the scalar table once.
 */
#include "cpu.h"
#include "internal.h"
#include "kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#define BN_X86 1
extern const bn_kernels bn_kernels_avx512;
extern const bn_kernels bn_kernels_avx2;
#elif defined(__aarch64__)
#define BN_ARM 1
extern const bn_kernels bn_kernels_neon;
#endif

typedef struct bn_variant {
    const bn_kernels *k;
    uint32_t          needs; /* BN_CPU_* bits that must all be present */
} bn_variant;

/* Best first; scalar last. */
static const bn_variant bn_candidates[] = {
#if defined(BN_X86)
    {&bn_kernels_avx512, BN_CPU_AVX512F | BN_CPU_AVX512BW | BN_CPU_AVX512VL | BN_CPU_AVX512VNNI | BN_CPU_AVX2 |
                             BN_CPU_FMA | BN_CPU_F16C},
    {&bn_kernels_avx2, BN_CPU_AVX2 | BN_CPU_FMA | BN_CPU_F16C},
#elif defined(BN_ARM)
    {&bn_kernels_neon, BN_CPU_NEON},
#endif
    {&bn_kernels_scalar, 0},
};
#define BN_N_CANDIDATES (sizeof bn_candidates / sizeof bn_candidates[0])

static bn_kernels bn_filled[BN_N_CANDIDATES];
static pthread_once_t bn_fill_once = PTHREAD_ONCE_INIT;

static void bn_fill(void) {
    const bn_kernels *s = &bn_kernels_scalar;
    for (size_t i = 0; i < BN_N_CANDIDATES; i++) {
        bn_kernels k = *bn_candidates[i].k;
        if (!k.act_quant) k.act_quant = s->act_quant;
        if (!k.ternary_matmul) k.ternary_matmul = s->ternary_matmul;
        if (!k.rmsnorm) k.rmsnorm = s->rmsnorm;
        if (!k.rope) k.rope = s->rope;
        if (!k.attention) k.attention = s->attention;
        if (!k.dense_prep) k.dense_prep = s->dense_prep;
        if (!k.dense_matmul) k.dense_matmul = s->dense_matmul;
        bn_filled[i] = k;
    }
}

static int bn_runs(size_t i) {
    uint32_t have = bn_cpu_features();
    return (bn_candidates[i].needs & have) == bn_candidates[i].needs;
}

/* Index of the candidate for `isa`, or -1 if this build has none. */
static int bn_find(bitnet_isa isa) {
    for (size_t i = 0; i < BN_N_CANDIDATES; i++)
        if (bn_candidates[i].k->isa == isa) return (int)i;
    return -1;
}

/* The BITNET_ISA cap: index of the first candidate AUTO may take. */
static size_t bn_env_cap(void) {
    const char *e = getenv("BITNET_ISA");
    if (!e || !*e || strcmp(e, "auto") == 0) return 0;
    static const bitnet_isa all[] = {BITNET_ISA_SCALAR, BITNET_ISA_AVX2, BITNET_ISA_AVX512, BITNET_ISA_NEON};
    for (size_t j = 0; j < sizeof all / sizeof all[0]; j++) {
        if (strcmp(e, bitnet_isa_name(all[j])) != 0) continue;
        int i = bn_find(all[j]);
        if (i < 0) {
            BN_LOG_WARN("BITNET_ISA=%s: this build has no such kernels; using scalar", e);
            return BN_N_CANDIDATES - 1;
        }
        return (size_t)i;
    }
    BN_LOG_WARN("BITNET_ISA=%s is not a kernel variant (scalar, avx2, avx512, neon); ignored", e);
    return 0;
}

const bn_kernels *bn_kernels_get(bitnet_isa isa) {
    pthread_once(&bn_fill_once, bn_fill);
    if (isa == BITNET_ISA_AUTO) {
        for (size_t i = bn_env_cap(); i < BN_N_CANDIDATES; i++)
            if (bn_runs(i)) return &bn_filled[i];
        return &bn_filled[BN_N_CANDIDATES - 1]; /* not reached: scalar always runs */
    }
    int i = bn_find(isa);
    if (i < 0 || !bn_runs((size_t)i)) return NULL;
    return &bn_filled[i];
}

bitnet_status bn_kernels_select(bitnet_isa isa, const bn_kernels **out) {
    const char *name = bitnet_isa_name(isa);
    if (!name) return bn_err(BITNET_E_INVALID_ARG, "isa: unknown kernel variant %d", (int)isa);
    const bn_kernels *k = bn_kernels_get(isa);
    if (!k) {
        if (bn_find(isa) < 0)
            return bn_err(BITNET_E_UNSUPPORTED, "isa: this build of libbitnet has no %s kernels", name);
        return bn_err(BITNET_E_UNSUPPORTED, "isa: this CPU cannot run the %s kernels (CPU features: %s)", name,
                      bitnet_cpu_features());
    }
    BN_LOG_INFO("kernels: %s", k->name);
    *out = k;
    return BITNET_OK;
}

const char *bitnet_isa_name(bitnet_isa isa) {
    switch (isa) {
    case BITNET_ISA_AUTO: return "auto";
    case BITNET_ISA_SCALAR: return "scalar";
    case BITNET_ISA_AVX2: return "avx2";
    case BITNET_ISA_AVX512: return "avx512";
    case BITNET_ISA_NEON: return "neon";
    }
    return NULL;
}

int bitnet_isa_supported(bitnet_isa isa) {
    if (isa == BITNET_ISA_AUTO) return 1;
    int i = bn_find(isa);
    return i >= 0 && bn_runs((size_t)i);
}
