/*
 * core_error.c -- status strings and the per-thread "last error" message.
 */
#include "internal.h"

#include <stdio.h>

static _Thread_local char bn_tls_msg[512];

const char *bitnet_strerror(bitnet_status status) {
    switch (status) {
    case BITNET_OK: return "success";
    case BITNET_E_INVALID_ARG: return "invalid argument";
    case BITNET_E_NOMEM: return "out of memory";
    case BITNET_E_IO: return "input/output error";
    case BITNET_E_FORMAT: return "malformed file or data";
    case BITNET_E_UNSUPPORTED: return "not supported";
    case BITNET_E_NOT_FOUND: return "not found";
    case BITNET_E_TYPE: return "wrong value type";
    case BITNET_E_BUFFER_TOO_SMALL: return "buffer too small";
    case BITNET_E_CONTEXT_FULL: return "context window full";
    case BITNET_E_CANCELLED: return "cancelled";
    case BITNET_E_INVALID_UTF8: return "invalid UTF-8";
    case BITNET_E_INTERNAL: return "internal error";
    }
    return "unknown error";
}

const char *bitnet_last_error(void) { return bn_tls_msg; }

const char *bn_errmsg(void) { return bn_tls_msg; }

void bn_vset_error(const char *fmt, va_list ap) {
    char tmp[sizeof bn_tls_msg];
    /* format into a temporary first: fmt's arguments may point into bn_tls_msg */
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    memcpy(bn_tls_msg, tmp, sizeof tmp);
}

void bn_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bn_vset_error(fmt, ap);
    va_end(ap);
}
