/*
 * bitnet-chat -- an interactive chat with a model (public API only).
 *
 *   bitnet-chat -m model.gguf [-sys "You are a helpful assistant."]
 *
 * Each line you type is a user turn; the answer streams to stdout as it is generated.
 * The conversation is kept in the session's KV cache: a turn evaluates only the text
 * the model has not seen yet (what the new message adds to the rendered chat).  Text
 * you type is never read as special tokens: "<|eot_id|>" in a message stays text
 * (bitnet_chat_tokenize).  Commands: /reset clears the
 * conversation (keeps the system prompt), /quit (or end of input) exits.  Ctrl-C stops
 * the current answer; at the prompt it exits.
 */
#include "args.h"
#include "spec.h"

#include "bitnet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitnet-chat -m MODEL [options]\n"
            "  -m, --model FILE        GGUF model (required)\n"
            "  -sys, --system-prompt TEXT   system prompt (--system is the same)\n"
            "  -sysf, --system-prompt-file FILE   system prompt from a file\n"
            "  -n, --n-predict N       maximum tokens per answer; -1 no limit (default -1)\n"
            "  -c, --ctx-size N        context window; 0 the model's, at most 4096 (default 0)\n"
            "%s"
            "%s"
            "%s"
            "  --chat-template T       override the chat template: a name (bitnet, bitnet-hf, llama3,\n"
            "                          chatml, plain) or a Jinja template text\n"
            "  --chat-template-file F  the chat template from a file\n"
            "  -v, --verbose, -lv N, --log-disable, --log-file F   library log messages\n"
            "  -h, --help              this text;  --version  the version\n"
            "llama.cpp's GPU and placement options (-ngl, -fa, ...) are accepted and have no effect.\n"
            "commands: /reset clears the conversation, /quit exits; Ctrl-C stops an answer\n",
            ex_run_help, ex_sampling_help, ex_spec_help);
}

enum { O_SYS = 1, O_SYSF, O_NPREDICT, O_TMPL, O_TMPL_FILE };

static const ex_opt chat_opts[] = {
    {O_SYS, "-sys|--system-prompt|--system", EX_ARG, NULL},
    {O_SYSF, "-sysf|--system-prompt-file", EX_ARG, NULL},
    {O_NPREDICT, "-n|--n-predict|--predict", EX_ARG, NULL},
    {O_TMPL, "--chat-template", EX_ARG, NULL},
    {O_TMPL_FILE, "--chat-template-file", EX_ARG, NULL},
    {0, NULL, EX_NOARG, NULL},
};

static const ex_opt *const chat_tables[] = {chat_opts,   ex_opts_run,     ex_opts_sampling,    ex_opts_spec,
                                            ex_opts_std, ex_opts_log,     ex_opts_ignored,     ex_opts_unsupported,
                                            NULL};

int main(int argc, char **argv) {
    const char *system = NULL, *tmpl = NULL, *system_path = NULL, *tmpl_path = NULL;
    long long n_predict = -1;
    ex_run run;
    ex_run_init(&run);
    ex_spec spec;
    ex_spec_init(&spec);
    bitnet_sampler_params sp;
    bitnet_sampler_default_params(&sp, sizeof sp);
    ex_args a;
    ex_args_init(&a, "bitnet-chat", argc, argv, chat_tables);
    for (int id; (id = ex_args_next(&a)) != EX_END;) {
        if (ex_run_apply(&a, id, &run) || ex_sampling_apply(&a, id, &sp) || ex_spec_apply(&a, id, &spec))
            continue;
        switch (id) {
        case EX_HELP: usage(stdout); return 0;
        case EX_POSITIONAL: ex_usage_error("unexpected argument '%s' (see bitnet-chat --help)", a.val);
        case O_SYS: system = a.val, system_path = NULL; break;
        case O_SYSF: system_path = a.val; break;
        case O_NPREDICT:
            n_predict = ex_int(&a, -2, INT32_MAX);
            if (n_predict == -2) n_predict = -1;
            break;
        case O_TMPL: tmpl = a.val, tmpl_path = NULL; break;
        case O_TMPL_FILE: tmpl_path = a.val; break;
        default: ex_usage_error("option '%s' does not apply to bitnet-chat", a.opt);
        }
    }
    if (!run.model) ex_usage_error("-m MODEL is required (see bitnet-chat --help)");
    char *system_text = NULL, *tmpl_text = NULL;
    if (system_path && !(system = system_text = ex_read_file(system_path, NULL)))
        ex_fail("-sysf: cannot read '%s': %s", system_path, strerror(errno));
    if (tmpl_path && !(tmpl = tmpl_text = ex_read_file(tmpl_path, NULL)))
        ex_fail("--chat-template-file: cannot read '%s': %s", tmpl_path, strerror(errno));
    if (system_text) {
        size_t n = strlen(system_text);
        if (n > 0 && system_text[n - 1] == '\n') system_text[n - 1] = 0; /* as llama-cli's -sysf */
    }
    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    ex_run_model_params(&run, &mp);
    bitnet_model *model = NULL;
    bitnet_status st = bitnet_model_load(run.model, &mp, &model);
    if (st != BITNET_OK) ex_die_status("bitnet-chat", run.model, st);
    if (ex_run_after_load(&run, model)) { /* --screen refused: the message is printed */
        free(system_text);
        free(tmpl_text);
        bitnet_model_free(model);
        return 1;
    }
    if (run.seed_random) run.seed = ex_random_seed();
    bitnet_session_params pp;
    bitnet_session_default_params(&pp, sizeof pp);
    ex_run_session_params(&run, &pp);
    bitnet_session *s = NULL;
    st = bitnet_session_create(model, &pp, &s);
    if (st != BITNET_OK) ex_die_status("bitnet-chat", "creating the session", st);
    ex_spec_setup(&spec, &run, s);
    int interactive = isatty(STDIN_FILENO);
    if (interactive)
        fprintf(stderr, "bitnet-chat: %s, context %u tokens. /reset clears, /quit exits, Ctrl-C stops an answer.\n",
                bitnet_model_desc(model), bitnet_session_n_ctx(s));
    int rc = ex_chat_loop(model, s, system, tmpl, &sp, (int32_t)n_predict, stdin, interactive);
    if (ex_spec_on(&spec)) {
        char line[160];
        ex_spec_stats(&spec, s, line, sizeof line);
        fprintf(stderr, "bitnet-chat: speculation%s\n", line);
    }
    bitnet_session_free(s);
    ex_spec_free(&spec);
    bitnet_model_free(model);
    free(system_text);
    free(tmpl_text);
    return rc;
}
