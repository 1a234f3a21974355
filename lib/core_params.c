/*
 * core_params.c -- the size-prefixed parameter structs of the public API (bitnet.h).
 *
 * Every *_params struct begins with `size_t struct_size`.  A caller built against an
 * older (shorter) or newer (longer) header passes the size it knows; the library only
 * ever reads or writes that many bytes of the caller's struct.
 */
#include "internal.h"

void bn_params_default(void *p, size_t struct_size, void *defaults, size_t d_size) {
    if (!p || struct_size == 0) return;
    size_t n = d_size < struct_size ? d_size : struct_size;
    if (n >= sizeof(size_t)) memcpy(defaults, &n, sizeof n); /* the copy reports what it holds */
    memset(p, 0, struct_size);
    memcpy(p, defaults, n);
}

bitnet_status bn_params_read(void *out, size_t out_size, const void *in, const char *what) {
    if (!in) return BITNET_OK; /* NULL: the defaults already in out */
    size_t in_size;
    memcpy(&in_size, in, sizeof in_size);
    if (in_size < sizeof(size_t))
        return bn_err(BITNET_E_INVALID_ARG, "%s params: struct_size %zu is too small (fill them with "
                      "bitnet_%s_default_params)", what, in_size, what);
    memcpy(out, in, in_size < out_size ? in_size : out_size);
    memcpy(out, &out_size, sizeof out_size);
    return BITNET_OK;
}
