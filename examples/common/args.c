#include "args.h"

#include "bitnet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

long long ex_parse_int(const char *opt, const char *s, long long min, long long max) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "error: %s expects an integer in [%lld, %lld], got '%s'\n", opt, min, max, s);
        exit(2);
    }
    return v;
}

double ex_parse_float(const char *opt, const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "error: %s expects a number, got '%s'\n", opt, s);
        exit(2);
    }
    return v;
}

const char *ex_next(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "error: option %s needs a value\n", argv[*i]);
        exit(2);
    }
    return argv[++*i];
}

void ex_die_status(const char *prog, const char *what, int status) {
    const char *msg = bitnet_last_error();
    fprintf(stderr, "%s: %s: %s%s%s\n", prog, what, bitnet_strerror((bitnet_status)status), *msg ? ": " : "",
            msg);
    exit(1);
}
