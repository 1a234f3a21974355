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

#include "args.h"

#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitnet-server -m MODEL [options]\n"
            "  -m, --model PATH          GGUF model\n"
            "      --alias NAME          model id in the API (default: the file name)\n"
            "      --host ADDR           IPv4 address to listen on (127.0.0.1)\n"
            "      --port N              port (8080)\n"
            "      --api-key KEY         require 'Authorization: Bearer KEY' (also $BITNET_API_KEY)\n"
            "      --api-key-file FILE   read the key from FILE\n"
            "  -np, --parallel N         slots: sequences decoded together (4)\n"
            "  -c, --ctx-size N          context per slot (the model's, at most 4096)\n"
            "  -t, --threads N           threads (all CPUs)\n"
            "  -b, --batch-size N        most tokens per forward step (256)\n"
            "      --prefill-chunk N     most prompt tokens of one request per step (64)\n"
            "      --queue N             requests waiting for a slot before 429 (64)\n"
            "      --max-body BYTES      request body limit (4194304)\n"
            "      --max-tokens N        largest max_tokens accepted (the context)\n"
            "      --timeout S           per-request time limit in seconds, 0 = none (600)\n"
            "      --shutdown-grace S    seconds running requests get at shutdown (10)\n"
            "      --max-connections N   concurrent connections (256)\n"
            "      --chat-template T     template name or text instead of the model's\n"
            "      --isa NAME            kernel variant (auto scalar avx2 avx512 neon)\n"
            "  -v, --verbose             log requests and libmicrohttpd errors\n"
            "      --version             print the version and exit\n"
            "Sampling defaults for fields a request leaves out:\n%s",
            ex_sampling_help);
}

static char *read_key_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bitnet-server: --api-key-file: cannot open '%s'\n", path);
        exit(2);
    }
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = 0;
    if (!n) {
        fprintf(stderr, "bitnet-server: --api-key-file: '%s' is empty\n", path);
        exit(2);
    }
    return strdup(buf);
}

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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) cfg.model_path = ex_next(argc, argv, &i);
        else if (!strcmp(a, "--alias")) cfg.alias = ex_next(argc, argv, &i);
        else if (!strcmp(a, "--host")) cfg.host = ex_next(argc, argv, &i);
        else if (!strcmp(a, "--port")) cfg.port = (int)ex_parse_int(a, ex_next(argc, argv, &i), 1, 65535);
        else if (!strcmp(a, "--api-key")) cfg.api_key = ex_next(argc, argv, &i);
        else if (!strcmp(a, "--api-key-file")) cfg.api_key = read_key_file(ex_next(argc, argv, &i));
        else if (!strcmp(a, "-np") || !strcmp(a, "--parallel")) cfg.n_slots = (int)ex_parse_int(a, ex_next(argc, argv, &i), 1, 256);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) cfg.n_ctx = (int)ex_parse_int(a, ex_next(argc, argv, &i), 0, 1 << 20);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) cfg.n_threads = (int)ex_parse_int(a, ex_next(argc, argv, &i), 0, 1024);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) cfg.n_batch = (int)ex_parse_int(a, ex_next(argc, argv, &i), 1, 65536);
        else if (!strcmp(a, "--prefill-chunk")) cfg.prefill_chunk = (int)ex_parse_int(a, ex_next(argc, argv, &i), 1, 65536);
        else if (!strcmp(a, "--queue")) cfg.queue_max = (int)ex_parse_int(a, ex_next(argc, argv, &i), 0, 1 << 20);
        else if (!strcmp(a, "--max-body")) cfg.body_max = (size_t)ex_parse_int(a, ex_next(argc, argv, &i), 1024, 1ll << 32);
        else if (!strcmp(a, "--max-tokens")) cfg.max_tokens_cap = (int)ex_parse_int(a, ex_next(argc, argv, &i), 0, 1 << 24);
        else if (!strcmp(a, "--timeout")) cfg.timeout_s = ex_parse_float(a, ex_next(argc, argv, &i));
        else if (!strcmp(a, "--shutdown-grace")) cfg.shutdown_grace = ex_parse_float(a, ex_next(argc, argv, &i));
        else if (!strcmp(a, "--max-connections")) cfg.max_conns = (int)ex_parse_int(a, ex_next(argc, argv, &i), 1, 65536);
        else if (!strcmp(a, "--chat-template")) cfg.tmpl = ex_next(argc, argv, &i);
        else if (!strcmp(a, "--isa")) isa_name = ex_next(argc, argv, &i);
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) cfg.verbose = 1;
        else if (!strcmp(a, "--version")) {
            printf("bitnet-server (libbitnet) %s\n", bitnet_version());
            return 0;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (ex_parse_sampling(argc, argv, &i, &cfg.sampler)) {
        } else {
            fprintf(stderr, "bitnet-server: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!cfg.model_path) {
        usage(stderr);
        return 2;
    }
    if (!cfg.api_key && getenv("BITNET_API_KEY") && *getenv("BITNET_API_KEY")) cfg.api_key = getenv("BITNET_API_KEY");
    if (cfg.timeout_s < 0 || cfg.shutdown_grace < 0) {
        fprintf(stderr, "bitnet-server: --timeout and --shutdown-grace must be >= 0\n");
        return 2;
    }
    if (isa_name) {
        static const bitnet_isa all[] = {BITNET_ISA_AUTO, BITNET_ISA_SCALAR, BITNET_ISA_AVX2, BITNET_ISA_AVX512,
                                         BITNET_ISA_NEON};
        size_t k = 0;
        while (k < sizeof all / sizeof all[0] && strcmp(bitnet_isa_name(all[k]), isa_name) != 0) k++;
        if (k == sizeof all / sizeof all[0]) {
            fprintf(stderr, "bitnet-server: --isa: unknown variant '%s'\n", isa_name);
            return 2;
        }
        cfg.isa = all[k];
    }

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
    mp.isa = cfg.isa;
    bitnet_model *m = NULL;
    if (bitnet_model_load(cfg.model_path, &mp, &m) != BITNET_OK) {
        fprintf(stderr, "bitnet-server: %s: %s\n", cfg.model_path, bitnet_last_error());
        return 1;
    }
    const char *base = strrchr(cfg.model_path, '/');
    srv_ctx ctx = {&cfg, m, cfg.alias ? cfg.alias : base ? base + 1 : cfg.model_path, NULL};
    if (srv_sched_start(&cfg, m, &ctx.sched) != 0) {
        fprintf(stderr, "bitnet-server: cannot create %d slots: %s\n", cfg.n_slots, bitnet_last_error());
        return 1;
    }
    char err[256];
    struct MHD_Daemon *d = srv_http_start(&ctx, err, sizeof err);
    if (!d) {
        fprintf(stderr, "bitnet-server: %s\n", err);
        srv_sched_shutdown(ctx.sched, 0);
        srv_sched_free(ctx.sched);
        bitnet_model_free(m);
        return 1;
    }
    fprintf(stderr, "bitnet-server: %s\nbitnet-server: %d slots of %u tokens, %s kernels, model id '%s'%s\n",
            bitnet_model_desc(m), cfg.n_slots, srv_sched_n_ctx(ctx.sched),
            bitnet_isa_name((bitnet_isa)bitnet_model_get_info(m, BITNET_INFO_ISA)), ctx.model_id,
            cfg.api_key ? ", API key required" : "");
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
    bitnet_model_free(m);
    fprintf(stderr, "bitnet-server: stopped\n");
    return 0;
}
