/*
 * bitnet-server -- an OpenAI-compatible HTTP server with continuous batching, on the
 * public API of libbitnet (docs/server.md).
 *
 *   bitnet-server -m model.gguf [--host 127.0.0.1] [--port 8080] [-np 4] [-c 4096]
 *                 [--api-key KEY] [...]
 *
 * SIGINT/SIGTERM: stop accepting, answer waiting requests with 503, let running ones
 * finish (up to --shutdown-grace seconds, then they end with an error event), exit 0.
 * Exit status: 0 after a clean shutdown, 1 runtime error, 2 bad arguments.
 */
#include "server.h"

#include "opts.h"
#include "spec.h"

#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitnet-server -m MODEL [options]\n"
            "      --alias NAME          model id in the API (default: the file name)\n"
            "      --host ADDR           IPv4 address to listen on (127.0.0.1)\n"
            "      --port N              port (8080)\n"
            "      --api-key KEY         require 'Authorization: Bearer KEY' (also $BITNET_API_KEY)\n"
            "      --api-key-file FILE   read the key from FILE\n"
            "  -np, --parallel N         slots: sequences decoded together (4)\n"
            "  -c, --ctx-size N          context per slot (the model's, at most 4096)\n"
            "  -b, --batch-size N        most tokens per forward step (256)\n"
            "      --prefill-chunk N     most prompt tokens of one request per step (64)\n"
            "      --queue N             requests waiting for a slot before 429 (64)\n"
            "      --max-body BYTES      request body limit (4194304)\n"
            "      --max-tokens N        largest max_tokens accepted (the context)\n"
            "      --timeout S           per-request time limit in seconds, 0 = none (600)\n"
            "      --shutdown-grace S    seconds running requests get at shutdown (10)\n"
            "      --max-connections N   concurrent connections (256)\n"
            "      --chat-template T     template name or text instead of the model's\n"
            "      --isa NAME            kernel variant (%s)\n"
            "%s"
            "Speculation (every slot; greedy output unchanged, sampled output keeps its distribution):\n%s"
            "Sampling defaults for fields a request leaves out:\n%s",
            ex_isa_names(), ex_run_help, ex_spec_help, ex_sampling_help);
}

static char *read_key_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) ex_usage_error("--api-key-file: cannot open '%s'", path);
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = 0;
    if (!n) ex_usage_error("--api-key-file: '%s' is empty", path);
    return strdup(buf);
}

enum {
    O_ALIAS = 1, O_HOST, O_PORT, O_KEY, O_KEY_FILE, O_PARALLEL, O_PREFILL, O_QUEUE, O_MAX_BODY, O_MAX_TOKENS,
    O_TIMEOUT, O_GRACE, O_MAX_CONNS, O_TEMPLATE, O_ISA
};
static const ex_opt srv_opts[] = {
    {O_ALIAS, "--alias|-a", EX_ARG, NULL},
    {O_HOST, "--host", EX_ARG, NULL},
    {O_PORT, "--port", EX_ARG, NULL},
    {O_KEY, "--api-key", EX_ARG, NULL},
    {O_KEY_FILE, "--api-key-file", EX_ARG, NULL},
    {O_PARALLEL, "-np|--parallel", EX_ARG, NULL},
    {O_PREFILL, "--prefill-chunk", EX_ARG, NULL},
    {O_QUEUE, "--queue", EX_ARG, NULL},
    {O_MAX_BODY, "--max-body", EX_ARG, NULL},
    {O_MAX_TOKENS, "--max-tokens", EX_ARG, NULL},
    {O_TIMEOUT, "--timeout|-to", EX_ARG, NULL},
    {O_GRACE, "--shutdown-grace", EX_ARG, NULL},
    {O_MAX_CONNS, "--max-connections", EX_ARG, NULL},
    {O_TEMPLATE, "--chat-template", EX_ARG, NULL},
    {O_ISA, "--isa", EX_ARG, NULL},
    {EX_IGNORED_SILENT, "-cb|--cont-batching", EX_NOARG, NULL}, /* always on */
    {0, NULL, EX_NOARG, NULL},
};
static const ex_opt *const srv_tables[] = {srv_opts,    ex_opts_run,     ex_opts_sampling,    ex_opts_spec, ex_opts_std,
                                           ex_opts_log, ex_opts_ignored, ex_opts_unsupported, NULL};

int main(int argc, char **argv) {
    srv_config cfg = {0};
    cfg.host = "127.0.0.1";
    cfg.port = 8080;
    cfg.n_slots = 4;
    cfg.n_batch = 256;
    cfg.prefill_chunk = 64;
    cfg.queue_max = 64;
    cfg.body_max = 4u << 20;
    cfg.timeout_s = 600;
    cfg.shutdown_grace = 10;
    cfg.max_conns = 256;
    cfg.isa = BITNET_ISA_AUTO;
    bitnet_sampler_default_params(&cfg.sampler, sizeof cfg.sampler);
    const char *isa_name = NULL;
    ex_run run;
    ex_run_init(&run);
    ex_spec spec;
    ex_spec_init(&spec);
    ex_args a;
    ex_args_init(&a, "bitnet-server", argc, argv, srv_tables);
    for (int id; (id = ex_args_next(&a)) != EX_END;) {
        if (ex_run_apply(&a, id, &run) || ex_sampling_apply(&a, id, &cfg.sampler) || ex_spec_apply(&a, id, &spec))
            continue;
        switch (id) {
        case EX_HELP: usage(stdout); return 0;
        case EX_POSITIONAL: ex_usage_error("unexpected argument '%s' (see bitnet-server --help)", a.val);
        case O_ALIAS: cfg.alias = a.val; break;
        case O_HOST: cfg.host = a.val; break;
        case O_PORT: cfg.port = (int)ex_int(&a, 1, 65535); break;
        case O_KEY: cfg.api_key = a.val; break;
        case O_KEY_FILE: cfg.api_key = read_key_file(a.val); break;
        case O_PARALLEL: cfg.n_slots = (int)ex_int(&a, 1, 256); break;
        case O_PREFILL: cfg.prefill_chunk = (int)ex_int(&a, 1, 65536); break;
        case O_QUEUE: cfg.queue_max = (int)ex_int(&a, 0, 1 << 20); break;
        case O_MAX_BODY: cfg.body_max = (size_t)ex_int(&a, 1024, 1ll << 32); break;
        case O_MAX_TOKENS: cfg.max_tokens_cap = (int)ex_int(&a, 0, 1 << 24); break;
        case O_TIMEOUT: cfg.timeout_s = ex_float(&a); break;
        case O_GRACE: cfg.shutdown_grace = ex_float(&a); break;
        case O_MAX_CONNS: cfg.max_conns = (int)ex_int(&a, 1, 65536); break;
        case O_TEMPLATE: cfg.tmpl = a.val; break;
        case O_ISA: isa_name = a.val; break;
        default: ex_usage_error("option '%s' does not apply to bitnet-server", a.opt);
        }
    }
    cfg.model_path = run.model;
    cfg.n_ctx = (int)run.n_ctx;
    cfg.n_threads = (int)run.n_threads;
    cfg.kv_type = run.kv_type;
    if (run.n_batch > 0) cfg.n_batch = (int)run.n_batch;
    if (!cfg.model_path) ex_usage_error("-m MODEL is required (see bitnet-server --help)");
    if (!cfg.api_key && getenv("BITNET_API_KEY") && *getenv("BITNET_API_KEY")) cfg.api_key = getenv("BITNET_API_KEY");
    if (cfg.timeout_s < 0 || cfg.shutdown_grace < 0) ex_usage_error("--timeout and --shutdown-grace must be >= 0");
    if (isa_name) cfg.isa = ex_isa(isa_name);

    /* SIGINT/SIGTERM are taken by sigwait in this thread only; every thread started
     * below inherits the blocked mask.  A client gone mid-write is not a signal. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    bitnet_model_params mp;
    bitnet_model_default_params(&mp, sizeof mp);
    ex_run_model_params(&run, &mp);
    mp.isa = cfg.isa;
    bitnet_model *m = NULL;
    if (bitnet_model_load(cfg.model_path, &mp, &m) != BITNET_OK) ex_fail("%s: %s", cfg.model_path, bitnet_last_error());
    if (ex_run_after_load(&run, m)) {
        bitnet_model_free(m);
        return 1;
    }
    bitnet_spec_default_params(&cfg.spec, sizeof cfg.spec);
    if (ex_spec_on(&spec)) {
        /* the params and the draft model; every slot gets its own draft session */
        ex_spec_params(&spec, &run, &cfg.spec);
        cfg.draft_model = spec.dm;
    }
    const char *base = strrchr(cfg.model_path, '/');
    srv_ctx ctx = {&cfg, m, cfg.alias ? cfg.alias : base ? base + 1 : cfg.model_path, NULL};
    if (srv_sched_start(&cfg, m, &ctx.sched) != 0) {
        ex_error("cannot create %d slots: %s", cfg.n_slots, bitnet_last_error());
        return 1;
    }
    char err[256];
    struct MHD_Daemon *d = srv_http_start(&ctx, err, sizeof err);
    if (!d) {
        ex_error("%s", err);
        srv_sched_shutdown(ctx.sched, 0);
        srv_sched_free(ctx.sched);
        ex_spec_free(&spec);
        bitnet_model_free(m);
        return 1;
    }
    fprintf(stderr, "bitnet-server: %s\nbitnet-server: %d slots of %u tokens, %s kernels, model id '%s'%s\n",
            bitnet_model_desc(m), cfg.n_slots, srv_sched_n_ctx(ctx.sched),
            bitnet_isa_name((bitnet_isa)bitnet_model_get_info(m, BITNET_INFO_ISA)), ctx.model_id,
            cfg.api_key ? ", API key required" : "");
    if (cfg.spec.mode != BITNET_SPEC_NONE)
        fprintf(stderr, "bitnet-server: speculation: %s, drafts of up to %d tokens\n",
                cfg.draft_model ? "draft model" : "lookup (n-gram)", (int)cfg.spec.n_draft_max);
    fprintf(stderr, "bitnet-server: listening on http://%s:%d\n", cfg.host, cfg.port);
    fflush(stderr);

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "bitnet-server: %s: shutting down (waiting requests get 503, running ones up to %.0f s)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", cfg.shutdown_grace);
    srv_http_draining = 1;
    MHD_socket ls = MHD_quiesce_daemon(d); /* no new connections */
    if (ls != MHD_INVALID_SOCKET) close(ls);
    srv_sched_shutdown(ctx.sched, cfg.shutdown_grace);
    /* every job has ended: let the connection threads write their last bytes (streams'
     * final events) before the daemon closes what is left (idle keep-alive connections) */
    for (double t0 = srv_now(); srv_http_inflight > 0 && srv_now() - t0 < 10;) usleep(10000);
    MHD_stop_daemon(d);
    srv_sched_free(ctx.sched);
    ex_spec_free(&spec);
    bitnet_model_free(m);
    fprintf(stderr, "bitnet-server: stopped\n");
    return 0;
}
