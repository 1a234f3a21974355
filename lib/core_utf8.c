/*
 * core_utf8.c -- strict UTF-8 decoding (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 */
#include "internal.h"

size_t bn_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned c = s[0];
    uint32_t v;
    size_t len;
    if (c < 0x80) {
        if (cp) *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2; v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3; v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4; v = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    if (cp) *cp = v;
    return len;
}

int bn_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t l = bn_utf8_decode(p + i, n - i, NULL);
        if (!l) return 0;
        i += l;
    }
    return 1;
}
