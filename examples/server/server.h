/*
 * server.h -- bitnet-server's parts (a program on the public API; docs/server.md):
 *
 *   main.c   options, the model, the HTTP daemon (libmicrohttpd), signals, shutdown
 *   http.c   requests: routing, the API key, body limits, JSON responses, SSE streams
 *   api.c    OpenAI request bodies -> jobs (json-c), jobs -> OpenAI response bodies
 *   sched.c  the scheduler thread: slots (one session each), continuous batching
 *   page.c   the built-in chat page (generated from index.html at build time)
 *
 * A request becomes a job.  HTTP threads (one per connection) parse and validate it,
 * queue it and wait; the single scheduler thread owns the model's sessions and runs
 * every active job in one batched forward step per token (bitnet_batch), prompts in
 * chunks between the decode steps of the others.  A job's output is a growing text
 * buffer the HTTP side reads under the job's lock.
 */
#ifndef BN_SERVER_H
#define BN_SERVER_H

#define BITNET_EXPERIMENTAL /* bitnet_batch_*, bitnet_generator_*, bitnet_session_eval_prompt */
#include "bitnet.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* ---- configuration -------------------------------------------------------------------- */

typedef struct srv_config {
    const char *model_path;
    const char *alias;         /* model id in the API (default: the file's base name) */
    const char *host;          /* 127.0.0.1                                           */
    int         port;          /* 8080                                                */
    const char *api_key;       /* NULL: no key                                        */
    int         n_slots;       /* parallel sequences (4)                              */
    int         n_ctx;         /* context per slot (0: the model's, capped at 4096)   */
    int         kv_type;       /* -1: the default (f16), else a bitnet_kv_type       */
    int         n_threads;     /* 0: all CPUs                                         */
    int         n_batch;       /* tokens per forward step (256)                       */
    int         prefill_chunk; /* most prompt tokens of one job per step (64)         */
    int         queue_max;     /* jobs waiting for a slot before 429 (64)             */
    size_t      body_max;      /* request body limit in bytes (4 MiB)                 */
    int         max_tokens_cap;/* largest max_tokens accepted (0: the context)        */
    double      timeout_s;     /* per request, 0 = none (600)                         */
    double      shutdown_grace;/* seconds running jobs get at shutdown (10)           */
    int         max_conns;     /* concurrent connections (256)                        */
    const char *tmpl;          /* chat template override (NULL: the model's)          */
    int         verbose;
    bitnet_isa  isa;
    bitnet_sampler_params sampler; /* defaults for fields a request leaves out          */
    bitnet_spec_params    spec;    /* speculation of every slot (mode NONE: off)         */
    bitnet_model         *draft_model; /* -md: the draft model (a session of it per slot) */
} srv_config;

/* ---- jobs ----------------------------------------------------------------------------- */

typedef enum srv_kind { SRV_CHAT, SRV_COMPLETION, SRV_EMBEDDING } srv_kind;

typedef enum srv_state {
    SRV_QUEUED,   /* waiting for a slot                          */
    SRV_RUNNING,  /* in a slot                                   */
    SRV_DONE,     /* finished: finish_reason says how            */
    SRV_FAILED    /* error: http_status + error message          */
} srv_state;

typedef struct srv_job {
    /* set by the HTTP side before queueing, then read-only */
    srv_kind              kind;
    char                  id[40];        /* "chatcmpl-..." / "cmpl-..."                 */
    int64_t               created;       /* unix time                                   */
    int                   stream;
    int                   include_usage; /* stream_options.include_usage              */
    bitnet_token         *prompt;        /* chat/completion prompt                     */
    size_t                n_prompt;
    bitnet_token        **inputs;        /* embedding inputs                           */
    size_t               *n_inputs;
    size_t                n_input;
    bitnet_sampler_params sp;
    int                   max_tokens;    /* < 0: until EOG / context                    */
    char                **stop;          /* stop strings                                */
    size_t                n_stop;
    int                   has_seed;
    uint64_t              seed;
    double                deadline;      /* monotonic seconds, 0 = none                 */

    /* shared state, under mu */
    pthread_mutex_t       mu;
    pthread_cond_t        cv;
    int                   refs;          /* the HTTP side and the scheduler             */
    srv_state             state;
    int                   cancel;        /* the client went away / shutdown: stop it    */
    char                 *out;           /* generated text so far (complete UTF-8)      */
    size_t                out_len, out_cap;
    size_t                n_generated;
    size_t                n_cached;      /* prompt tokens found in the slot's cache     */
    size_t                n_drafted;     /* speculation: drafted tokens verified          */
    size_t                n_accepted;    /* of those, accepted                            */
    const char           *finish;        /* "stop", "length", ... when DONE             */
    int                   http_status;   /* when FAILED                                 */
    char                  err_type[40];
    char                  err_msg[256];
    float               **embd;          /* embedding results (n_input rows of n_embd)   */
    int                   n_embd;
    double                t_start, t_first, t_end; /* monotonic: queued, first token, end */
} srv_job;

srv_job *srv_job_new(srv_kind kind);
void srv_job_unref(srv_job *j);
/* Mark a job failed (under its lock) and wake its waiter. */
void srv_job_fail(srv_job *j, int http_status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- the scheduler (sched.c) ------------------------------------------------------------ */

typedef struct srv_metrics {
    uint64_t requests[4];      /* chat, completions, embeddings, other               */
    uint64_t responses_4xx, responses_5xx;
    uint64_t prompt_tokens, cached_tokens, generated_tokens;
    uint64_t steps;            /* forward steps                                       */
    uint64_t drafted_tokens, accepted_tokens, spec_steps; /* speculation               */
    int      spec_mode;        /* a bitnet_spec_mode                                   */
    uint64_t cancelled, timeouts;
    int      queue_len, active_slots, n_slots;
    double   decode_tps;       /* generated tokens/s over the last few seconds          */
} srv_metrics;

typedef struct srv_sched srv_sched;

int srv_sched_start(const srv_config *cfg, const bitnet_model *m, srv_sched **out);
/* Queue a job: 0 ok, -1 queue full (429), -2 shutting down (503). */
int srv_sched_submit(srv_sched *sc, srv_job *j);
/* Wake the scheduler (a job was cancelled). */
void srv_sched_poke(srv_sched *sc);
/* Stop taking jobs; fail queued ones with 503; give running ones `grace` seconds,
 * then cancel them; returns when the scheduler thread has ended. */
void srv_sched_shutdown(srv_sched *sc, double grace);
void srv_sched_free(srv_sched *sc);
void srv_sched_metrics(srv_sched *sc, srv_metrics *out);
void srv_metrics_count(srv_sched *sc, int endpoint, int http_status);
uint32_t srv_sched_n_ctx(const srv_sched *sc);
bitnet_pooling srv_sched_pooling(const srv_sched *sc); /* the model's pooling */

/* ---- OpenAI bodies (api.c) ---------------------------------------------------------------- */

typedef struct srv_ctx {
    const srv_config   *cfg;
    const bitnet_model *model;
    const char         *model_id;
    srv_sched          *sched;
} srv_ctx;

/* Parse and validate a request body into a new job (NULL on error: *status, type and
 * msg describe it, e.g. 400 invalid_request_error "max_tokens: expected an integer"). */
srv_job *srv_api_parse(const srv_ctx *c, srv_kind kind, const char *body, size_t len, int *status, char *type,
                       size_t type_cap, char *msg, size_t msg_cap);

/* Response bodies (malloc'd JSON text). */
char *srv_api_result(const srv_ctx *c, srv_job *j);              /* non-streamed result */
char *srv_api_chunk(const srv_ctx *c, srv_job *j, const char *text, size_t len, const char *finish,
                    int first);                                    /* one SSE chunk       */
char *srv_api_usage_chunk(const srv_ctx *c, srv_job *j);          /* include_usage chunk */
char *srv_api_error(const char *type, const char *msg, const char *param);
char *srv_api_models(const srv_ctx *c, int one); /* the list, or one model object */
/* The prompt tokens of a conversation in the model's chat template, message content
 * tokenized as plain text; NULL with a message on error. */
bitnet_token *srv_chat_tokens(const srv_ctx *c, const bitnet_chat_message *msgs, size_t n, size_t *n_out, char *msg,
                              size_t msg_cap);

/* ---- HTTP (http.c) -------------------------------------------------------------------------- */

struct MHD_Daemon;
struct MHD_Daemon *srv_http_start(srv_ctx *c, char *err, size_t err_cap);
extern _Atomic int srv_http_draining;  /* set at shutdown: new requests get 503 */
extern _Atomic int srv_http_inflight;  /* requests between their headers and their last byte */

/* ---- page.c (generated) ------------------------------------------------------------------- */

extern const unsigned char srv_page_html[];
extern const size_t srv_page_html_len;

/* ---- util ----------------------------------------------------------------------------------- */

double srv_now(void); /* monotonic seconds */

#endif
