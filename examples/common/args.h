/*
 * args.h -- small helpers shared by the example programs (not part of the library).
 */
#ifndef BN_EXAMPLES_ARGS_H
#define BN_EXAMPLES_ARGS_H

#include <stdint.h>
#include <stdio.h>

#include "bitnet.h"
#include "opts.h"

/* Parse a whole decimal integer / float; exit(2) with a message naming the option on
 * bad input. */
long long ex_parse_int(const char *opt, const char *s, long long min, long long max);
double ex_parse_float(const char *opt, const char *s);
/* The value after option argv[*i]; exit(2) if missing. */
const char *ex_next(int argc, char **argv, int *i);
/* Print "prog: error: what: <status>: <bitnet_last_error()>" to stderr and exit(1). */
EX_NORETURN void ex_die_status(const char *prog, const char *what, int status);

/* Conversation loop shared by bitnet-chat and bitnet-cli -cnv: reads user lines from
 * `in`, keeps the history in the session (each turn evaluates only what the new message
 * adds to the chat, tokenized with bitnet_chat_tokenize so that message text never
 * becomes a special token), streams answers to stdout.  A line with a NUL byte is
 * refused.  Lines "/reset" and "/quit" are commands.
 * SIGINT stops the current answer (installs its own handler).  tmpl: NULL = the
 * model's template (falls back to "plain" if the model has none).  max_tokens < 0:
 * until end-of-generation or a full context.  Returns the process exit code. */
int ex_chat_loop(const bitnet_model *m, bitnet_session *s, const char *system, const char *tmpl,
                 const bitnet_sampler_params *sp, int32_t max_tokens, FILE *in, int prompt_marks);

#endif
