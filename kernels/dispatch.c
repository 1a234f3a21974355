/*
 * dispatch.c -- the one registry of kernel variants and the choice between them.
 *
 * Every variant is a bn_kernels table in its own file, compiled with its own flags
 * (kernels/kernels.cmake).  bn_candidates lists every variant libbitnet knows, best
 * first, with its name, its table (NULL when this build does not contain it) and the CPU
 * features (kernels/cpu.c: CPUID + XGETBV on x86, getauxval on AArch64) it needs; the
 * scalar reference is always last and always runs.  Names, the BITNET_ISA cap,
 * bitnet_isa_list / bitnet_isa_from_name and, through those, the tests, the Python
 * binding and the programs' --isa derive from it.  Adding a variant = one file, one row
 * here, its (append-only) bitnet_isa value, its flags in kernels.cmake.  A variant that
 * only adds to another (amx over avx512, avxvnni over avx2) names it as its base and leaves the rest NULL.
 *
 * Choice (once per model, bn_kernels_get):
 *   - an explicit isa (bitnet_model_params.isa) gets exactly that variant, or NULL when
 *     this build or CPU cannot run it (the caller reports BITNET_E_UNSUPPORTED);
 *   - AUTO gets the best supported variant, capped by the environment variable
 *     BITNET_ISA=amx|avx512|avxvnni|avx2|neon|scalar: variants ranked above the named one are
 *     skipped (BITNET_ISA=avx512 on an AVX2-only CPU gives avx2, on an AMX CPU avx512).  A name this build
 *     does not contain caps everything down to scalar; an unknown name is ignored.
 *     Both cases are logged.
 * A variant may leave slots NULL; they are filled from the scalar table once.
 */
#include "cpu.h"
#include "internal.h"
#include "kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
extern const bn_kernels bn_kernels_amx;
extern const bn_kernels bn_kernels_avx512;
extern const bn_kernels bn_kernels_avxvnni;
extern const bn_kernels bn_kernels_avx2;
#define BN_AMX    (&bn_kernels_amx)
#define BN_AVXVNNI (&bn_kernels_avxvnni)
#define BN_AVX512 (&bn_kernels_avx512)
#define BN_AVX2   (&bn_kernels_avx2)
#else
#define BN_AMX    NULL
#define BN_AVXVNNI NULL
#define BN_AVX512 NULL
#define BN_AVX2   NULL
#endif
#if defined(__aarch64__)
extern const bn_kernels bn_kernels_neon;
#define BN_NEON (&bn_kernels_neon)
#else
#define BN_NEON NULL
#endif

typedef struct bn_variant {
    bitnet_isa        isa;
    const char       *name;  /* what bitnet_isa_name, BITNET_ISA and the programs' --isa say */
    const bn_kernels *k;     /* NULL: this build does not contain the variant */
    uint32_t          needs; /* BN_CPU_* bits that must all be present */
    const bn_kernels *base;  /* NULL, or the variant whose slots fill this one's NULL slots
                                (before the scalar table's) */
} bn_variant;

/* Every variant libbitnet knows, best first, scalar last: the one list the name of an isa,
 * the BITNET_ISA cap, bitnet_isa_list (and through it the tests, the programs' --isa and
 * their help) derive from. */
#define BN_NEEDS_AVX512 \
    (BN_CPU_AVX512F | BN_CPU_AVX512BW | BN_CPU_AVX512VL | BN_CPU_AVX512VNNI | BN_CPU_AVX2 | BN_CPU_FMA | BN_CPU_F16C)
static const bn_variant bn_candidates[] = {
    {BITNET_ISA_AMX, "amx", BN_AMX, BN_NEEDS_AVX512 | BN_CPU_AMX, BN_AVX512},
    {BITNET_ISA_AVX512, "avx512", BN_AVX512, BN_NEEDS_AVX512, NULL},
    {BITNET_ISA_AVXVNNI, "avxvnni", BN_AVXVNNI, BN_CPU_AVXVNNI | BN_CPU_AVX2 | BN_CPU_FMA | BN_CPU_F16C, BN_AVX2},
    {BITNET_ISA_AVX2, "avx2", BN_AVX2, BN_CPU_AVX2 | BN_CPU_FMA | BN_CPU_F16C, NULL},
    {BITNET_ISA_NEON, "neon", BN_NEON, BN_CPU_NEON, NULL},
    {BITNET_ISA_SCALAR, "scalar", &bn_kernels_scalar, 0, NULL},
};
#define BN_N_CANDIDATES (sizeof bn_candidates / sizeof bn_candidates[0])

static bn_kernels bn_filled[BN_N_CANDIDATES];
static pthread_once_t bn_fill_once = PTHREAD_ONCE_INIT;

/* NULL slots of k from `from` (the optional slots too: a variant built on another
 * inherits its layouts and its optional kernels). */
static void bn_fill_from(bn_kernels *k, const bn_kernels *from) {
#define BN_FILL(slot) \
    if (!k->slot) k->slot = from->slot
    BN_FILL(act_quant);
    BN_FILL(ternary_matmul);
    BN_FILL(ffn_act);
    BN_FILL(f16_row);
    BN_FILL(rmsnorm);
    BN_FILL(rope);
    BN_FILL(attention);
    BN_FILL(attention_multi);
    BN_FILL(dense_prep);
    BN_FILL(dense_matmul);
    BN_FILL(screen_matmul);
    BN_FILL(tmat_repack);
    BN_FILL(dmat_repack);
    BN_FILL(screen_quant);
    BN_FILL(act_pack);
#undef BN_FILL
}

static void bn_fill(void) {
    for (size_t i = 0; i < BN_N_CANDIDATES; i++) {
        if (!bn_candidates[i].k) continue;
        bn_kernels k = *bn_candidates[i].k;
        if (bn_candidates[i].base) bn_fill_from(&k, bn_candidates[i].base);
        bn_fill_from(&k, &bn_kernels_scalar); /* the scalar table's optional slots are NULL */
        bn_filled[i] = k;
    }
}

static int bn_runs(size_t i) {
    if (!bn_candidates[i].k) return 0;
    uint32_t have = bn_cpu_features();
    if ((bn_candidates[i].needs & have) != bn_candidates[i].needs) return 0;
    /* AMX: the process asks for tile data only when these kernels could be chosen */
    return !(bn_candidates[i].needs & BN_CPU_AMX) || bn_cpu_amx_enable();
}

/* Index of the row for `isa`, or -1 for a value libbitnet does not know. */
static int bn_row(bitnet_isa isa) {
    for (size_t i = 0; i < BN_N_CANDIDATES; i++)
        if (bn_candidates[i].isa == isa) return (int)i;
    return -1;
}

/* Index of the candidate for `isa`, or -1 if this build has none. */
static int bn_find(bitnet_isa isa) {
    int i = bn_row(isa);
    return i >= 0 && bn_candidates[i].k ? i : -1;
}

/* "avx512, avx2, neon, scalar": every name, for messages. */
static char bn_names_buf[128];
static pthread_once_t bn_names_once = PTHREAD_ONCE_INIT;
static void bn_names_fill(void) {
    size_t n = 0;
    for (size_t i = 0; i < BN_N_CANDIDATES; i++)
        n += (size_t)snprintf(bn_names_buf + n, sizeof bn_names_buf - n, "%s%s", i ? ", " : "", bn_candidates[i].name);
}
static const char *bn_names(void) {
    pthread_once(&bn_names_once, bn_names_fill);
    return bn_names_buf;
}

/* The BITNET_ISA cap: index of the first candidate AUTO may take. */
static size_t bn_env_cap(void) {
    const char *e = getenv("BITNET_ISA");
    if (!e || !*e || strcmp(e, "auto") == 0) return 0;
    for (size_t i = 0; i < BN_N_CANDIDATES; i++) {
        if (strcmp(e, bn_candidates[i].name) != 0) continue;
        if (!bn_candidates[i].k) {
            BN_LOG_WARN("BITNET_ISA=%s: this build has no such kernels; using scalar", e);
            return BN_N_CANDIDATES - 1;
        }
        return i;
    }
    BN_LOG_WARN("BITNET_ISA=%s is not a kernel variant (auto, %s); ignored", e, bn_names());
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
    if (isa == BITNET_ISA_AUTO) return "auto";
    int i = bn_row(isa);
    return i >= 0 ? bn_candidates[i].name : NULL;
}

size_t bitnet_isa_list(bitnet_isa *out, size_t cap) {
    for (size_t i = 0; i < BN_N_CANDIDATES && out && i < cap; i++) out[i] = bn_candidates[i].isa;
    return BN_N_CANDIDATES;
}

bitnet_status bitnet_isa_from_name(const char *name, bitnet_isa *out) {
    if (!name || !out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_isa_from_name: NULL argument");
    if (strcmp(name, "auto") == 0) {
        *out = BITNET_ISA_AUTO;
        return BITNET_OK;
    }
    for (size_t i = 0; i < BN_N_CANDIDATES; i++)
        if (strcmp(name, bn_candidates[i].name) == 0) {
            *out = bn_candidates[i].isa;
            return BITNET_OK;
        }
    return bn_err(BITNET_E_INVALID_ARG, "'%s' is not a kernel variant (auto, %s)", name, bn_names());
}

int bitnet_isa_supported(bitnet_isa isa) {
    if (isa == BITNET_ISA_AUTO) return 1;
    int i = bn_find(isa);
    return i >= 0 && bn_runs((size_t)i);
}
