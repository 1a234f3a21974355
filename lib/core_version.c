/*
 * core_version.c -- run-time version of the library.
 */
#include "internal.h"

const char *bitnet_version(void) { return BITNET_VERSION_STRING; }

uint32_t bitnet_version_number(void) { return BITNET_VERSION_NUMBER; }
