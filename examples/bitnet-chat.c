/*
 * bitnet-chat -- an interactive chat with a model (public API only).
 *
 *   bitnet-chat -m model.gguf [-s "You are a helpful assistant."]
 *
 * Each line you type is a user turn; the answer streams to stdout as it is generated.
 * The conversation is kept in the session's KV cache: a turn evaluates only the text
 * the model has not seen yet (the chat template applied to the history with and
 * without the new message, minus what is already there).  Commands: /reset clears the
 * conversation (keeps the system prompt), /quit (or end of input) exits.  Ctrl-C stops
 * the current answer; at the prompt it exits.
 */
#include "args.h"

#include "bitnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitnet-chat -m MODEL [options]\n"
            "  -m, --model FILE        GGUF model (required)\n"
            "  -s, --system TEXT       system prompt\n"
            "  -n, --n-predict N       maximum tokens per answer; -1 no limit (default -1)\n"
            "  -t, --threads N         worker threads (default: all CPUs)\n"
            "  -c, --ctx-size N        context window (default: the model's, at most 4096)\n"
            "  --seed S                sampler seed (default 0x5eed)\n"
            "%s"
            "  --chat-template NAME    override the chat template (bitnet, llama3, chatml, plain)\n"
            "  -h, --help              this text\n"
            "commands: /reset clears the conversation, /quit exits; Ctrl-C stops an answer\n",
            ex_sampling_help);
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *system = NULL, *tmpl = NULL;
    long long n_predict = -1, n_threads = 0, n_ctx = 0;
    uint64_t seed = 0x5eed;
    bitnet_sampler_params sp;
    bitnet_sampler_default_params(&sp, sizeof sp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (ex_parse_sampling(argc, argv, &i, &sp)) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = ex_next(argc, argv, &i);
        else if (!strcmp(a, "-s") || !strcmp(a, "--system")) system = ex_next(argc, argv, &i);
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) n_predict = ex_parse_int(a, ex_next(argc, argv, &i), -1, INT32_MAX);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) n_threads = ex_parse_int(a, ex_next(argc, argv, &i), 0, 4096);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) n_ctx = ex_parse_int(a, ex_next(argc, argv, &i), 0, 1 << 24);
        else if (!strcmp(a, "--seed")) seed = (uint64_t)ex_parse_int(a, ex_next(argc, argv, &i), 0, INT64_MAX);
        else if (!strcmp(a, "--chat-template")) tmpl = ex_next(argc, argv, &i);
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "error: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!model_path) {
        fprintf(stderr, "error: -m MODEL is required (see --help)\n");
        return 2;
    }
    bitnet_model *model = NULL;
    bitnet_status st = bitnet_model_load(model_path, NULL, &model);
    if (st != BITNET_OK) ex_die_status("bitnet-chat", model_path, st);
    bitnet_session_params pp;
    bitnet_session_default_params(&pp, sizeof pp);
    pp.n_ctx = (uint32_t)n_ctx;
    pp.n_threads = (uint32_t)n_threads;
    pp.seed = seed;
    bitnet_session *s = NULL;
    st = bitnet_session_create(model, &pp, &s);
    if (st != BITNET_OK) ex_die_status("bitnet-chat", "creating the session", st);
    int interactive = isatty(STDIN_FILENO);
    if (interactive)
        fprintf(stderr, "bitnet-chat: %s, context %u tokens. /reset clears, /quit exits, Ctrl-C stops an answer.\n",
                bitnet_model_desc(model), bitnet_session_n_ctx(s));
    int rc = ex_chat_loop(model, s, system, tmpl, &sp, (int32_t)n_predict, stdin, interactive);
    bitnet_session_free(s);
    bitnet_model_free(model);
    return rc;
}
