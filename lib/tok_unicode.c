/*
 * tok_unicode.c -- code point class lookup: an ASCII table built on first principles plus a
 * binary search over the generated range table (lib/tok_unicode_data.c) for the rest.
 */
#include "tok_unicode.h"

uint32_t bn_uc_flags(uint32_t cp) {
    if (cp < 0x80) {
        /* Same answers as the table; the fast path matters because most text is ASCII. */
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return BN_UC_L;
        if (cp >= '0' && cp <= '9') return BN_UC_N;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d)) return BN_UC_WS;
    }
    size_t lo = 0, hi = bn_uc_n_ranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < bn_uc_ranges[mid].lo) hi = mid;
        else if (cp > bn_uc_ranges[mid].hi) lo = mid + 1;
        else return bn_uc_ranges[mid].flags;
    }
    return 0;
}
