/*
 * dispatch.c -- names of the kernel variants and which ones this build and CPU can run.
 * (The kernel tables themselves arrive with the fast-kernels work; until then every
 * computation runs the scalar reference.)
 */
#include "cpu.h"

#include "bitnet.h"

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
    switch (isa) {
    case BITNET_ISA_AUTO:
    case BITNET_ISA_SCALAR: return 1;
    default: return 0; /* no SIMD kernels are built yet */
    }
}
