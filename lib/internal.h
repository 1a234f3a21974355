/*
 * internal.h -- shared internals of libbitnet: error reporting, logging, allocation,
 * checked arithmetic and half-precision conversions.  Never installed.
 */
#ifndef BN_INTERNAL_H
#define BN_INTERNAL_H

#include "bitnet.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#  define BN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#  define BN_UNUSED       __attribute__((unused))
#else
#  define BN_PRINTF(f, a)
#  define BN_UNUSED
#endif

/* ---- errors (lib/core_error.c) ------------------------------------------------------ */

/* Record `fmt` as this thread's last error message. */
void bn_set_error(const char *fmt, ...) BN_PRINTF(1, 2);
void bn_vset_error(const char *fmt, va_list ap) BN_PRINTF(1, 0);
/* Record a message and evaluate to st.  Typical use:
 *     return bn_err(BITNET_E_FORMAT, "tensor '%s': ...", name);
 * A macro (not a function) so the compiler sees the status value that comes back:
 * otherwise gcc cannot prove `if ((st = f(&x))) return st;` leaves x set on success
 * and warns about maybe-uninitialized variables at -O2/-O3. */
#define bn_err(st, ...) (bn_set_error(__VA_ARGS__), (bitnet_status)(st))
#define bn_verr(st, fmt, ap) (bn_vset_error((fmt), (ap)), (bitnet_status)(st))
/* The thread's current message (never NULL). */
const char *bn_errmsg(void);

/* ---- logging (lib/core_log.c) ---------------------------------------------------------- */

void bn_log(bitnet_log_level level, const char *fmt, ...) BN_PRINTF(2, 3);
#define BN_LOG_ERROR(...) bn_log(BITNET_LOG_ERROR, __VA_ARGS__)
#define BN_LOG_WARN(...)  bn_log(BITNET_LOG_WARN, __VA_ARGS__)
#define BN_LOG_INFO(...)  bn_log(BITNET_LOG_INFO, __VA_ARGS__)
#define BN_LOG_DEBUG(...) bn_log(BITNET_LOG_DEBUG, __VA_ARGS__)

/* ---- allocation (lib/core_alloc.c) ------------------------------------------------------
 * Every allocation goes through these so tests can inject failures.  bn_malloc(0)
 * returns a valid unique pointer.  bn_calloc/bn_mallocn check n*size for overflow. */
void *bn_malloc(size_t size);
void *bn_calloc(size_t n, size_t size);
void *bn_mallocn(size_t n, size_t size);
void *bn_realloc(void *p, size_t size);
void *bn_aligned_alloc(size_t alignment, size_t size); /* free with bn_aligned_free */
void  bn_aligned_free(void *p);
void  bn_free(void *p);
char *bn_strndup(const char *s, size_t n);
/* Test hook: fail the n-th allocation from now on (0 = never).  Returns the number of
 * allocations made since the last call. */
uint64_t bn_alloc_fail_after(uint64_t n);

/* ---- size-prefixed parameter structs (lib/core_params.c) -------------------------------------
 * bn_params_default: hand `defaults` (d_size bytes, first field size_t struct_size) to a
 * caller's struct of struct_size bytes -- zero it, copy the common prefix, record in its
 * struct_size how many bytes the library filled.
 * bn_params_read: copy a caller's struct (any struct_size >= sizeof(size_t), possibly from
 * an older or newer header) over `out`, which holds the defaults; NULL keeps them.  A
 * struct_size below sizeof(size_t) is BITNET_E_INVALID_ARG ("<what> params: ..."). */
void bn_params_default(void *p, size_t struct_size, void *defaults, size_t d_size);
bitnet_status bn_params_read(void *out, size_t out_size, const void *in, const char *what);

/* ---- checked arithmetic ------------------------------------------------------------- */

static inline int bn_add_u64(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_add_overflow(a, b, r); }
static inline int bn_mul_u64(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline int bn_mul_i64(int64_t a, int64_t b, int64_t *r) { return __builtin_mul_overflow(a, b, r); }

/* ---- hashing ---------------------------------------------------------------------------- */

#define BN_FNV_OFFSET 0xcbf29ce484222325ull
/* 64-bit FNV-1a over n bytes, continuing from h (start a hash with BN_FNV_OFFSET). */
static inline uint64_t bn_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---- little-endian loads (files are little-endian; unaligned safe) ------------------- */

static inline uint16_t bn_rd_u16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t bn_rd_u32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t bn_rd_u64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline float    bn_rd_f32(const void *p) { float v; memcpy(&v, p, 4); return v; }
static inline double   bn_rd_f64(const void *p) { double v; memcpy(&v, p, 8); return v; }

/* ---- half precision ------------------------------------------------------------------ */

/* IEEE binary16 -> binary32, exact (subnormals, inf, nan). */
static inline float bn_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* binary32 -> binary16, round to nearest even (as F16C / ggml do). */
static inline uint16_t bn_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* result is subnormal or zero */
        if (ax < 0x33000000u) return (uint16_t)sign; /* < 2^-25: rounds to 0 */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u); /* round to nearest even */
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

static inline float bn_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* binary32 -> bfloat16, round to nearest even; NaN stays NaN (as ggml does). */
static inline uint16_t bn_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 if s does not start with
 * one (overlong forms, surrogates and code points above U+10FFFF are invalid).  If
 * cp is not NULL it receives the code point. */
size_t bn_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Whether s[0..n) is entirely valid UTF-8. */
int bn_utf8_valid(const char *s, size_t n);

#endif /* BN_INTERNAL_H */
