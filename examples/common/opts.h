/*
 * opts.h -- the command-line parser the example programs share (not part of the library).
 *
 * Each program lists its options in tables (ex_opt) and pulls them one at a time with
 * ex_args_next, which accepts the spellings people type from habit with llama.cpp's
 * programs:
 *
 *     -n 16   --n-predict 16   --n-predict=16   --n_predict 16   -n16   -t2   -temp 0
 *
 * i.e. every spelling of an option listed in its table, a value in the next argument,
 * after '=' (long and short names), or glued to a short name ("-t2": the longest short
 * name that is a prefix of the argument wins, so "-ngl0" is -ngl, not -n), and '_' for
 * '-' in long names.  "--" ends the options.
 *
 * The shared tables below are handled in one place so that every program agrees on them:
 *   ex_opts_std       -h/--help (returned as EX_HELP), --version (printed here, exit 0)
 *   ex_opts_log       -v, -lv N, --log-disable, --log-file F (applied here)
 *   ex_opts_ignored   GPU and placement options libbitnet has no use for (-ngl, -fa, -sm,
 *                     -ts, -mg, -dev, -nkvo, --numa, -tb, ...): accepted with their values
 *                     and reported in ONE note on stderr when parsing ends
 *   ex_opts_unsupported  well-known llama.cpp options libbitnet cannot honour (grammars,
 *                     mirostat, LoRA, prompt caches, ...): a clear error, exit 2
 *   ex_opts_sampling  --temp (-temp) --top-k --top-p --min-p --repeat-penalty ... (ex_sampling_apply)
 *   ex_opts_run       -m -t -c -b -ub -s -ctk -ctv --no-mmap --mlock --arch --pre --screen (ex_run_apply)
 *
 * Errors, for every program, have one form on stderr:  "<prog>: error: <what>" (and
 * "<prog>: note: ...", "<prog>: warning: ...").  Bad arguments exit with status 2,
 * runtime failures with 1.
 */
#ifndef BN_EXAMPLES_OPTS_H
#define BN_EXAMPLES_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bitnet.h"

#if defined(__GNUC__)
#define EX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define EX_NORETURN __attribute__((noreturn))
#else
#define EX_PRINTF(f, a)
#define EX_NORETURN
#endif

/* The program's name in messages (set by ex_args_init). */
extern const char *ex_prog;

/* "<prog>: error: ..." and exit(2) (bad arguments) / exit(1) (runtime failure). */
EX_NORETURN void ex_usage_error(const char *fmt, ...) EX_PRINTF(1, 2);

/* --isa NAME: the variant (bitnet_isa_from_name), or a usage error naming the valid ones. */
bitnet_isa ex_isa(const char *name);
/* "auto scalar avx2 ...": every variant libbitnet knows (bitnet_isa_list), for help texts. */
const char *ex_isa_names(void);
EX_NORETURN void ex_fail(const char *fmt, ...) EX_PRINTF(1, 2);
/* "<prog>: error: ..." without exiting (the caller cleans up). */
void ex_error(const char *fmt, ...) EX_PRINTF(1, 2);
void ex_warn(const char *fmt, ...) EX_PRINTF(1, 2);
void ex_note(const char *fmt, ...) EX_PRINTF(1, 2);

/* --- option tables ------------------------------------------------------------------ */

typedef enum ex_argkind {
    EX_NOARG = 0,   /* a flag                                                       */
    EX_ARG = 1,     /* needs a value                                                */
    EX_OPTARG = 2,  /* an optional value: "--opt=v", a glued value, or the next
                       argument when it is one of `optvals`                           */
    EX_UNSUPPORTED = 3 /* a llama.cpp option libbitnet cannot honour: error         */
} ex_argkind;

typedef struct ex_opt {
    int         id;      /* what ex_args_next returns (program ids: 1..999)            */
    const char *names;   /* every spelling, '|'-separated: "-n|--n-predict|--predict"  */
    ex_argkind  kind;
    const char *optvals; /* EX_OPTARG: '|'-separated words taken from the next
                            argument, or "#" for a number; EX_UNSUPPORTED: the reason  */
} ex_opt;

/* ids of the shared tables (programs use 1..999) */
enum {
    EX_END = -1,        /* no more arguments                                       */
    EX_POSITIONAL = -2, /* a non-option argument (in a->val)                        */
    EX_HELP = 1000,
    EX_SAMPLING_FIRST = 1100, /* .. 1199 */
    EX_RUN_FIRST = 1200,      /* .. 1299 */
    EX_INTERNAL_FIRST = 1900, /* .. 1999: handled inside ex_args_next */
    /* ids a program may give its own entries: */
    EX_IGNORED = 1990,        /* no effect: listed in the note at the end          */
    EX_IGNORED_SILENT = 1991  /* no effect, what libbitnet does anyway: no note    */
};

extern const ex_opt ex_opts_std[];
extern const ex_opt ex_opts_log[];
extern const ex_opt ex_opts_ignored[];
extern const ex_opt ex_opts_unsupported[];
extern const ex_opt ex_opts_sampling[];
extern const ex_opt ex_opts_run[];

typedef struct ex_args {
    int                 argc;
    char              **argv;
    int                 i;       /* index of the argument being looked at          */
    const ex_opt *const *tables; /* NULL-terminated                                 */
    const char         *opt;     /* the option as spelled, without "=value"         */
    const char         *val;     /* its value (NULL for flags)                      */
    int                 only_positional;
    char                name[64];
    char                ignored[512]; /* options for the one "no effect" note      */
} ex_args;

/* prog: the name in messages ("bitnet-cli").  tables: NULL-terminated list. */
void ex_args_init(ex_args *a, const char *prog, int argc, char **argv, const ex_opt *const *tables);
/* The next option's id (a->opt, a->val set), EX_POSITIONAL, or EX_END (after printing
 * the note about ignored options, if any).  Unknown options, missing values and
 * unsupported options exit(2) with a message. */
int ex_args_next(ex_args *a);

/* Values of the current option: a whole decimal integer in [min, max] / a number /
 * one of '|'-separated words (returns its index); exit(2) naming the option otherwise. */
long long ex_int(const ex_args *a, long long min, long long max);
double ex_float(const ex_args *a);
int ex_choice(const ex_args *a, const char *words);

/* --- shared option groups ------------------------------------------------------------ */

/* If id is a sampling option, store its value in sp and return 1. */
int ex_sampling_apply(const ex_args *a, int id, bitnet_sampler_params *sp);
extern const char ex_sampling_help[];

/* Model and session settings shared by the programs that run a model. */
typedef struct ex_run {
    const char    *model;
    long long      n_threads; /* 0: all CPUs                                   */
    long long      n_ctx;     /* 0: the model's                                */
    long long      n_batch;   /* 0: the library's default                      */
    long long      n_ubatch;  /* 0: not given                                  */
    int            kv_type;   /* -1 not given, else a bitnet_kv_type           */
    int            use_mmap;
    int            mlock;
    int            seed_random;
    uint64_t       seed;
    const char    *arch, *pre;
    int            screen;    /* -1 not given, else a bitnet_screen_mode       */
} ex_run;
void ex_run_init(ex_run *r);
int ex_run_apply(const ex_args *a, int id, ex_run *r);
/* Fill params from r (after their default_params). */
void ex_run_model_params(const ex_run *r, bitnet_model_params *mp);
void ex_run_session_params(const ex_run *r, bitnet_session_params *sp);
/* After loading: --screen (its copy made; 1 after printing the library's message when the
 * model cannot be screened) and --mlock (mlockall, a warning if refused); 0 otherwise. */
int ex_run_after_load(const ex_run *r, bitnet_model *m);
extern const char ex_run_help[];

/* --- small helpers ------------------------------------------------------------------- */

/* The whole file, NUL-terminated (malloc'd; *len may be NULL), or NULL with errno set. */
char *ex_read_file(const char *path, size_t *len);
/* Process llama.cpp's escapes in place: \n \r \t \' \" \\ and \xHH; others stay as
 * written.  Returns the new length. */
size_t ex_unescape(char *s);
/* A seed from /dev/urandom (the time and pid if that fails). */
uint64_t ex_random_seed(void);

#endif
