/*
 * spec.h -- speculative / lookup decoding options shared by the example programs (not
 * part of the library): --lookup, -md/--model-draft FILE, --draft N, --draft-min N,
 * --draft-p-min P, --lookup-ngram N, and the statistics for the timing line.
 */
#ifndef BN_EXAMPLES_SPEC_H
#define BN_EXAMPLES_SPEC_H

#ifndef BITNET_EXPERIMENTAL
#define BITNET_EXPERIMENTAL /* bitnet_spec_params */
#endif
#include "bitnet.h" /* (again, if opts.h came first: now with the experimental part) */
#include "opts.h"

enum { EX_SPEC_FIRST = 1300 /* .. 1399 */ };

typedef struct ex_spec {
    int            lookup;       /* --lookup                                     */
    const char    *draft_model;  /* -md FILE                                     */
    long long      n_draft;      /* --draft N (-1: the library's default)        */
    long long      n_draft_min;  /* --draft-min N (-1: default)                  */
    long long      ngram_max;    /* --lookup-ngram N (-1: default)               */
    double         p_min;        /* --draft-p-min P (< 0: default)               */
    bitnet_model  *dm;           /* the draft model and its session, once set up  */
    bitnet_session *ds;
} ex_spec;

extern const ex_opt ex_opts_spec[];
extern const char   ex_spec_help[];

void ex_spec_init(ex_spec *sp);
/* If id is a speculation option, store it and return 1. */
int  ex_spec_apply(const ex_args *a, int id, ex_spec *sp);
/* Whether any speculation was asked for. */
int  ex_spec_on(const ex_spec *sp);
/* The library params the options ask for (mode LOOKUP or DRAFT; p.draft not set), and
 * the draft model loaded into sp->dm (with run's model settings) for -md; exit(2/1) with
 * a message on bad options or a model that does not load. */
void ex_spec_params(ex_spec *sp, const ex_run *run, bitnet_spec_params *p);
/* Load the draft model (with run's model settings) and set speculation up on s; exit(1)
 * with a message on failure (a draft model with another vocabulary included). */
void ex_spec_setup(ex_spec *sp, const ex_run *run, bitnet_session *s);
/* ", draft 12/20 accepted (60.0%) in 5 steps" for the timing line, "" when off. */
void ex_spec_stats(const ex_spec *sp, const bitnet_session *s, char *buf, size_t cap);
void ex_spec_free(ex_spec *sp);

#endif
