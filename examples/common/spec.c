/*
 * spec.c -- speculative / lookup decoding options of the example programs (spec.h).
 */
#define BITNET_EXPERIMENTAL /* bitnet_session_set_speculation */
#include "spec.h"

#include <stdio.h>
#include <string.h>

enum {
    EX_S_LOOKUP = EX_SPEC_FIRST,
    EX_S_DRAFT_MODEL,
    EX_S_DRAFT,
    EX_S_DRAFT_MIN,
    EX_S_P_MIN,
    EX_S_NGRAM
};

const ex_opt ex_opts_spec[] = {
    {EX_S_LOOKUP, "--lookup", EX_NOARG, NULL},
    {EX_S_DRAFT_MODEL, "-md|--model-draft", EX_ARG, NULL},
    {EX_S_DRAFT, "--draft|--draft-n|--draft-max", EX_ARG, NULL},
    {EX_S_DRAFT_MIN, "--draft-min|--draft-n-min", EX_ARG, NULL},
    {EX_S_P_MIN, "--draft-p-min", EX_ARG, NULL},
    {EX_S_NGRAM, "--lookup-ngram", EX_ARG, NULL},
    {0, NULL, EX_NOARG, NULL}};

const char ex_spec_help[] =
    "  --lookup                lookup (n-gram) speculation: draft from the prompt and the text so far\n"
    "  -md, --model-draft FILE a smaller model with the same vocabulary drafts tokens\n"
    "  --draft, --draft-max N  most tokens drafted per step, 1..64 (default 8)\n"
    "  --draft-min N           fewest tokens worth verifying (default 0)\n"
    "  --draft-p-min P         the draft model stops when its best token is below P (default 0.5)\n"
    "  --lookup-ngram N        longest n-gram --lookup matches, 1..16 (default 4)\n";

void ex_spec_init(ex_spec *sp) {
    memset(sp, 0, sizeof *sp);
    sp->n_draft = sp->n_draft_min = sp->ngram_max = -1;
    sp->p_min = -1.0;
}

int ex_spec_apply(const ex_args *a, int id, ex_spec *sp) {
    switch (id) {
    case EX_S_LOOKUP: sp->lookup = 1; return 1;
    case EX_S_DRAFT_MODEL: sp->draft_model = a->val; return 1;
    case EX_S_DRAFT: sp->n_draft = ex_int(a, 1, 64); return 1;
    case EX_S_DRAFT_MIN: sp->n_draft_min = ex_int(a, 0, 64); return 1;
    case EX_S_NGRAM: sp->ngram_max = ex_int(a, 1, 16); return 1;
    case EX_S_P_MIN: {
        double p = ex_float(a);
        if (!(p >= 0.0 && p <= 1.0)) ex_usage_error("%s: %s is not a probability in [0, 1]", a->opt, a->val);
        sp->p_min = p;
        return 1;
    }
    default: return 0;
    }
}

int ex_spec_on(const ex_spec *sp) { return sp->lookup || sp->draft_model; }

void ex_spec_params(ex_spec *sp, const ex_run *run, bitnet_spec_params *p) {
    if (sp->lookup && sp->draft_model) ex_usage_error("--lookup and -md exclude each other: choose one draft source");
    bitnet_spec_default_params(p, sizeof *p);
    p->mode = sp->lookup ? BITNET_SPEC_LOOKUP : BITNET_SPEC_DRAFT;
    if (sp->n_draft > 0) p->n_draft_max = (int32_t)sp->n_draft;
    if (sp->n_draft_min >= 0) p->n_draft_min = (int32_t)sp->n_draft_min;
    if (p->n_draft_min > p->n_draft_max)
        ex_usage_error("--draft-min %d is larger than --draft %d", (int)p->n_draft_min, (int)p->n_draft_max);
    if (sp->ngram_max > 0) {
        p->ngram_max = (int32_t)sp->ngram_max;
        if (p->ngram_min > p->ngram_max) p->ngram_min = p->ngram_max;
    }
    if (sp->p_min >= 0) p->p_min = (float)sp->p_min;
    if (sp->draft_model && !sp->dm) {
        bitnet_model_params mp;
        bitnet_model_default_params(&mp, sizeof mp);
        ex_run_model_params(run, &mp);
        bitnet_status st = bitnet_model_load(sp->draft_model, &mp, &sp->dm);
        if (st != BITNET_OK)
            ex_fail("-md %s: %s: %s", sp->draft_model, bitnet_strerror(st), bitnet_last_error());
    }
}

void ex_spec_setup(ex_spec *sp, const ex_run *run, bitnet_session *s) {
    if (!ex_spec_on(sp)) return;
    bitnet_spec_params p;
    ex_spec_params(sp, run, &p);
    if (sp->draft_model) {
        bitnet_session_params pp;
        bitnet_session_default_params(&pp, sizeof pp);
        ex_run_session_params(run, &pp);
        pp.n_ctx = bitnet_session_n_ctx(s);
        pp.logits_all = 0;
        pp.embeddings = 0;
        bitnet_status st = bitnet_session_create(sp->dm, &pp, &sp->ds);
        if (st != BITNET_OK)
            ex_fail("-md %s: creating its session: %s: %s", sp->draft_model, bitnet_strerror(st), bitnet_last_error());
        p.draft = sp->ds;
    }
    bitnet_status st = bitnet_session_set_speculation(s, &p);
    if (st != BITNET_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", bitnet_session_last_error(s));
        ex_spec_free(sp);
        ex_fail("%s%s: %s: %s", sp->draft_model ? "-md " : "--lookup", sp->draft_model ? sp->draft_model : "",
                bitnet_strerror(st), msg);
    }
}

void ex_spec_stats(const ex_spec *sp, const bitnet_session *s, char *buf, size_t cap) {
    buf[0] = '\0';
    if (!ex_spec_on(sp)) return;
    bitnet_generator_stats g;
    bitnet_session_get_spec_stats(s, &g, sizeof g);
    snprintf(buf, cap, " | %s: %zu/%zu drafted tokens accepted (%.1f%%) in %zu steps",
             sp->lookup ? "lookup" : "draft", g.n_accepted, g.n_drafted,
             g.n_drafted ? 100.0 * (double)g.n_accepted / (double)g.n_drafted : 0.0, g.n_spec_steps);
}

void ex_spec_free(ex_spec *sp) {
    bitnet_session_free(sp->ds);
    bitnet_model_free(sp->dm);
    sp->ds = NULL;
    sp->dm = NULL;
}
