/*
 * args.h -- small helpers shared by the example programs (not part of the library).
 */
#ifndef BN_EXAMPLES_ARGS_H
#define BN_EXAMPLES_ARGS_H

#include <stdint.h>

/* Parse a whole decimal integer / float; exit(2) with a message naming the option on
 * bad input. */
long long ex_parse_int(const char *opt, const char *s, long long min, long long max);
double ex_parse_float(const char *opt, const char *s);
/* The value after option argv[*i]; exit(2) if missing. */
const char *ex_next(int argc, char **argv, int *i);
/* Print "prog: what: <bitnet_last_error()>" to stderr. */
void ex_die_status(const char *prog, const char *what, int status);

#endif
