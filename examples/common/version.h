/*
 * version.h -- what every program prints for --version (header-only, so bitnet-convert,
 * which does not link the shared option parser, prints the same).
 */
#ifndef BN_EXAMPLES_VERSION_H
#define BN_EXAMPLES_VERSION_H

#include <stdio.h>

#include "bitnet.h"

#if defined(__clang__)
#define EX_COMPILER __VERSION__
#elif defined(__GNUC__)
#define EX_COMPILER "gcc " __VERSION__
#else
#define EX_COMPILER "an unknown compiler"
#endif

#if defined(__x86_64__)
#define EX_TARGET "x86_64"
#elif defined(__aarch64__)
#define EX_TARGET "aarch64"
#elif defined(__i386__)
#define EX_TARGET "i386"
#elif defined(__arm__)
#define EX_TARGET "arm"
#else
#define EX_TARGET "an unknown CPU"
#endif

/* "<prog> (libbitnet) <running library version>" and the build line, on stdout. */
static inline void ex_print_version(const char *prog) {
    printf("%s (libbitnet) %s\n", prog, bitnet_version());
    printf("built against libbitnet %s with %s for %s\n", BITNET_VERSION_STRING, EX_COMPILER, EX_TARGET);
}

#endif
