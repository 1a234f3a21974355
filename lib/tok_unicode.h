/*
 * tok_unicode.h -- code point classes for the pre-tokenizers (lib/tok_unicode.c, generated
 * tables in lib/tok_unicode_data.c from the Unicode Character Database; see
 * lib/unicode/gen_unicode_tables.py and docs/tokenizers.md).
 */
#ifndef BN_UNICODE_H
#define BN_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define BN_UC_L  1u /* general category L*: regex \p{L}                 */
#define BN_UC_N  2u /* general category N*: regex \p{N}                 */
#define BN_UC_P  4u /* general category P*: regex \p{P}                 */
#define BN_UC_WS 8u /* White_Space property: regex \s                   */

/* A code point value that is no code point: an invalid UTF-8 byte (no class). */
#define BN_CP_INVALID 0xFFFFFFFFu

typedef struct bn_uc_range {
    uint32_t lo, hi;
    uint32_t flags;
} bn_uc_range;

extern const bn_uc_range bn_uc_ranges[];
extern const size_t bn_uc_n_ranges;
extern const char bn_unicode_version[];

/* The BN_UC_* flags of code point cp (0 for unassigned, other categories, invalid). */
uint32_t bn_uc_flags(uint32_t cp);

#endif
