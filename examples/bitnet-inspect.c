/*
 * bitnet-inspect -- print what a GGUF file contains: header, metadata, tensor table
 * and a per-type summary.  Uses only the public API (bitnet_gguf_*).
 *
 *     bitnet-inspect [--all] FILE.gguf
 *
 * Arrays print as "[array of N <type>: first values ...]" and long strings are cut
 * unless --all is given.  Strings are quoted with C-style escapes, so control bytes
 * and invalid UTF-8 are visible (\n, \x1b, ...).
 */
#include "args.h"
#include "bitnet.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_PREVIEW   8   /* array elements shown without --all */
#define STRING_PREVIEW  160 /* string bytes shown without --all   */

static int show_all;

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitnet-inspect [--all] FILE.gguf\n"
            "\n"
            "Print a GGUF file's header, metadata and tensor table.\n"
            "  -a, --all     print every array element and whole strings\n"
            "  -h, --help    show this help\n"
            "  --version     the version\n");
}

/* Length of a valid UTF-8 sequence at s (2..4 bytes, no overlongs, surrogates or
 * code points above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static void print_str(const char *s, uint64_t len) {
    uint64_t shown = !show_all && len > STRING_PREVIEW ? STRING_PREVIEW : len;
    const unsigned char *p = (const unsigned char *)s;
    putchar('"');
    for (uint64_t i = 0; i < shown;) {
        unsigned c = p[i];
        size_t k;
        if (c == '"' || c == '\\') printf("\\%c", c), i++;
        else if (c == '\n') fputs("\\n", stdout), i++;
        else if (c == '\t') fputs("\\t", stdout), i++;
        else if (c == '\r') fputs("\\r", stdout), i++;
        else if (c < 0x20 || c == 0x7F) printf("\\x%02x", c), i++;
        else if (c < 0x80) putchar((int)c), i++;
        else if ((k = utf8_seq(p + i, (size_t)(shown - i))) > 0) fwrite(p + i, 1, k, stdout), i += k;
        else printf("\\x%02x", c), i++;
    }
    putchar('"');
    if (shown < len) printf("... (%" PRIu64 " bytes)", len);
}

/* The shortest %g form that reads back as the stored value (f32 or f64). */
static void print_float(double d, int is_f32) {
    char buf[64];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        double back = strtod(buf, NULL);
        if (is_f32 ? (float)back == (float)d : back == d) break;
    }
    fputs(buf, stdout);
}

static void print_value(const bitnet_gguf *g, const bitnet_gguf_value *v) {
    int64_t i;
    uint64_t u;
    double d;
    int b;
    const char *s;
    uint64_t len;
    switch (v->type) {
    case BITNET_GGUF_UINT8: case BITNET_GGUF_UINT16: case BITNET_GGUF_UINT32: case BITNET_GGUF_UINT64:
        if (bitnet_gguf_value_uint(g, v, &u) == BITNET_OK) printf("%" PRIu64, u);
        break;
    case BITNET_GGUF_INT8: case BITNET_GGUF_INT16: case BITNET_GGUF_INT32: case BITNET_GGUF_INT64:
        if (bitnet_gguf_value_int(g, v, &i) == BITNET_OK) printf("%" PRId64, i);
        break;
    case BITNET_GGUF_FLOAT32: case BITNET_GGUF_FLOAT64:
        if (bitnet_gguf_value_float(g, v, &d) == BITNET_OK) print_float(d, v->type == BITNET_GGUF_FLOAT32);
        break;
    case BITNET_GGUF_BOOL:
        if (bitnet_gguf_value_bool(g, v, &b) == BITNET_OK) fputs(b ? "true" : "false", stdout);
        break;
    case BITNET_GGUF_STRING:
        if (bitnet_gguf_value_str(g, v, &s, &len) == BITNET_OK) print_str(s, len);
        break;
    case BITNET_GGUF_ARRAY: {
        printf("[array of %" PRIu64 " %s", v->count, bitnet_gguf_type_name(v->elem_type));
        uint64_t n = !show_all && v->count > ARRAY_PREVIEW ? ARRAY_PREVIEW : v->count;
        for (uint64_t j = 0; j < n; j++) {
            bitnet_gguf_value e;
            if (bitnet_gguf_array_get(g, v, j, &e) != BITNET_OK) break;
            fputs(j ? ", " : ": ", stdout);
            print_value(g, &e);
        }
        if (n < v->count) fputs(", ...", stdout);
        putchar(']');
        break;
    }
    }
}

/* "1.23 GB" style sizes (powers of 1000, as file managers show). */
static void human(uint64_t n, char *buf, size_t cap) {
    const char *unit[] = {"B", "kB", "MB", "GB", "TB"};
    double x = (double)n;
    int k = 0;
    while (x >= 1000.0 && k < 4) x /= 1000.0, k++;
    if (k == 0) snprintf(buf, cap, "%" PRIu64 " B", n);
    else snprintf(buf, cap, "%.2f %s", x, unit[k]);
}

int main(int argc, char **argv) {
    static const ex_opt opts[] = {{1, "-a|--all", EX_NOARG, NULL}, {0, NULL, EX_NOARG, NULL}};
    static const ex_opt *const tables[] = {opts, ex_opts_std, NULL};
    const char *path = NULL;
    ex_args a;
    ex_args_init(&a, "bitnet-inspect", argc, argv, tables);
    for (int id; (id = ex_args_next(&a)) != EX_END;) {
        if (id == EX_HELP) return usage(stdout), 0;
        if (id == 1) show_all = 1;
        else if (id != EX_POSITIONAL) ex_usage_error("option '%s' does not apply to bitnet-inspect", a.opt);
        else if (!path) path = a.val;
        else ex_usage_error("only one file may be given (got '%s' and '%s')", path, a.val);
    }
    if (!path) ex_usage_error("no FILE.gguf given (see bitnet-inspect --help)");
    bitnet_gguf *g;
    bitnet_status st = bitnet_gguf_open(path, &g);
    if (st != BITNET_OK) ex_die_status("bitnet-inspect", path, st);

    char hb[32];
    uint64_t n_kv = bitnet_gguf_n_kv(g), n_t = bitnet_gguf_n_tensors(g);
    human(bitnet_gguf_file_size(g), hb, sizeof hb);
    printf("file:         %s\n", path);
    printf("version:      %" PRIu32 "\n", bitnet_gguf_version(g));
    printf("alignment:    %" PRIu64 "\n", bitnet_gguf_alignment(g));
    printf("n_kv:         %" PRIu64 "\n", n_kv);
    printf("n_tensors:    %" PRIu64 "\n", n_t);
    printf("data offset:  %" PRIu64 "\n", bitnet_gguf_data_offset(g));
    printf("file size:    %" PRIu64 " (%s)\n", bitnet_gguf_file_size(g), hb);

    printf("\nmetadata (%" PRIu64 " keys):\n", n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        const char *key;
        bitnet_gguf_value v;
        if (bitnet_gguf_kv(g, i, &key, &v) != BITNET_OK) continue;
        printf("  %-40s %-6s ", key, bitnet_gguf_type_name(v.type));
        print_value(g, &v);
        putchar('\n');
    }

    /* per-type totals, indexed by type id (ids are < 64) */
    uint64_t count[64] = {0}, bytes[64] = {0}, params = 0, total = 0;
    printf("\ntensors (%" PRIu64 "):\n", n_t);
    printf("  %5s  %-40s %-8s %-28s %14s %14s\n", "#", "name", "type", "dims", "offset", "size");
    for (uint64_t i = 0; i < n_t; i++) {
        bitnet_type t = bitnet_gguf_tensor_type(g, i);
        const char *tn = bitnet_type_name(t);
        char dims[96];
        size_t o = 0;
        uint32_t nd = bitnet_gguf_tensor_n_dims(g, i);
        o += (size_t)snprintf(dims + o, sizeof dims - o, "[");
        for (uint32_t d = 0; d < nd && o < sizeof dims; d++)
            o += (size_t)snprintf(dims + o, sizeof dims - o, "%s%" PRId64, d ? ", " : "", bitnet_gguf_tensor_dim(g, i, d));
        if (o < sizeof dims) snprintf(dims + o, sizeof dims - o, "]");
        uint64_t sz = bitnet_gguf_tensor_size(g, i);
        printf("  %5" PRIu64 "  %-40s %-8s %-28s %14" PRIu64 " %14" PRIu64 "\n", i, bitnet_gguf_tensor_name(g, i),
               tn ? tn : "?", dims, bitnet_gguf_tensor_offset(g, i), sz);
        if ((unsigned)t < 64) count[t]++, bytes[t] += sz;
        params += bitnet_gguf_tensor_n_elements(g, i);
        total += sz;
    }

    printf("\nsummary:\n");
    for (unsigned t = 0; t < 64; t++) {
        if (!count[t]) continue;
        const char *tn = bitnet_type_name((bitnet_type)t);
        human(bytes[t], hb, sizeof hb);
        printf("  %-8s %6" PRIu64 " tensors %16" PRIu64 " bytes (%s)\n", tn ? tn : "?", count[t], bytes[t], hb);
    }
    human(total, hb, sizeof hb);
    printf("  %-8s %6" PRIu64 " tensors %16" PRIu64 " bytes (%s)\n", "total", n_t, total, hb);
    printf("  parameters: %" PRIu64 " (%.3fB)\n", params, (double)params / 1e9);
    bitnet_gguf_close(g);
    return 0;
}
