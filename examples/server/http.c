/*
 * http.c -- bitnet-server's HTTP side on libmicrohttpd (one thread per connection).
 *
 *   GET  /                      the built-in chat page (public)
 *   GET  /health                {"status": "ok"} (public; 503 while shutting down)
 *   GET  /metrics               Prometheus text
 *   GET  /v1/models[/ID]        the model
 *   POST /v1/chat/completions   chat, non-streamed or as server-sent events
 *   POST /v1/completions        raw-prompt completion, likewise
 *   POST /v1/embeddings         pooled embeddings
 * (the /v1 prefix is optional, as with llama.cpp's server).  With --api-key every
 * endpoint but / and /health needs "Authorization: Bearer KEY".  Errors are OpenAI
 * error objects.  A body larger than --max-body gets 413: before it is read when its
 * Content-Length says so, after it was discarded for a chunked one (a client sending
 * more than 16 times the limit is disconnected).  A full queue gets 429 and a server
 * shutting down 503, both with Retry-After.
 *
 * A connection thread parses its request into a job, queues it and waits: for a plain
 * response until the job ends, for a stream inside the content-reader callback, which
 * turns newly generated text into "data: {chunk}" events and ends with "data: [DONE]".
 * While waiting it polls the socket, so a client that disconnects cancels its job (and
 * frees its slot) within about 50 ms, even while nothing is being written.
 */
#include "server.h"

#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Atomic int srv_http_draining;
_Atomic int srv_http_inflight;

enum { EP_CHAT, EP_COMPLETIONS, EP_EMBEDDINGS, EP_OTHER };

typedef struct srv_req {
    char  *body;
    size_t len, cap;
    int    answered;  /* a response was queued (a 413 before the body was read)   */
    int    too_big;   /* a chunked body went past the limit: discarded, then 413 */
    size_t discarded;
} srv_req;

/* ---- small helpers ---------------------------------------------------------------------- */

static enum MHD_Result send_text(struct MHD_Connection *con, unsigned status, const char *ctype, char *body,
                                 const char *retry_after) {
    if (!body) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        body = strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}");
        ctype = "application/json";
        if (!body) return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result rc = MHD_queue_response(con, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_error(srv_ctx *c, struct MHD_Connection *con, int ep, unsigned status, const char *type,
                                  const char *msg, const char *retry_after) {
    srv_metrics_count(c->sched, ep, (int)status);
    return send_text(con, status, "application/json", srv_api_error(type, msg, NULL), retry_after);
}

/* Constant-time comparison of the bearer token with the key. */
static int key_ok(const srv_ctx *c, struct MHD_Connection *con) {
    if (!c->cfg->api_key) return 1;
    const char *h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0) return 0;
    const char *k = h + 7, *want = c->cfg->api_key;
    size_t lk = strlen(k), lw = strlen(want);
    unsigned char d = (unsigned char)(lk != lw);
    for (size_t i = 0; i < lw; i++) d |= (unsigned char)(want[i] ^ (i < lk ? k[i] : 0));
    return d == 0;
}

static int client_gone(struct MHD_Connection *con) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void cancel_job(srv_ctx *c, srv_job *j) {
    pthread_mutex_lock(&j->mu);
    int live = j->state == SRV_QUEUED || j->state == SRV_RUNNING;
    if (live) j->cancel = 1;
    pthread_mutex_unlock(&j->mu);
    if (live) srv_sched_poke(c->sched);
}

/* Wait up to ms for the job to change (called with j->mu held). */
static void job_wait(srv_job *j, int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    while (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

/* ---- streams ----------------------------------------------------------------------------- */

typedef struct srv_stream {
    srv_ctx               *c;
    srv_job               *j;
    struct MHD_Connection *con;
    size_t                 sent;     /* bytes of j->out turned into events          */
    int                    first;    /* the first chunk is still to be sent         */
    int                    ended;    /* [DONE] queued                                */
    char                  *pend;     /* formatted event bytes not yet handed to MHD */
    size_t                 pend_len, pend_off;
} srv_stream;

static void stream_add(srv_stream *st, const char *json) {
    if (!json) return;
    size_t n = strlen(json), need = st->pend_len + n + 8;
    char *p = realloc(st->pend, need);
    if (!p) return;
    st->pend = p;
    memcpy(p + st->pend_len, "data: ", 6);
    memcpy(p + st->pend_len + 6, json, n);
    memcpy(p + st->pend_len + 6 + n, "\n\n", 2);
    st->pend_len += n + 8;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_stream *st = cls;
    srv_job *j = st->j;
    while (st->pend_off == st->pend_len) {
        if (st->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        st->pend_len = st->pend_off = 0;
        pthread_mutex_lock(&j->mu);
        while (j->out_len == st->sent && (j->state == SRV_QUEUED || j->state == SRV_RUNNING)) {
            job_wait(j, 50);
            if (j->out_len == st->sent && (j->state == SRV_QUEUED || j->state == SRV_RUNNING) && client_gone(st->con)) {
                pthread_mutex_unlock(&j->mu);
                cancel_job(st->c, j);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
        }
        srv_state state = j->state;
        size_t from = st->sent, to = j->out_len;
        char *text = to > from ? strndup(j->out + from, to - from) : NULL;
        st->sent = to;
        pthread_mutex_unlock(&j->mu);
        if (to > from) {
            char *ch = srv_api_chunk(st->c, j, text, to - from, NULL, st->first);
            st->first = 0;
            stream_add(st, ch);
            free(ch);
        }
        free(text);
        if (state == SRV_DONE) {
            char *ch = srv_api_chunk(st->c, j, NULL, 0, j->finish ? j->finish : "stop", st->first);
            stream_add(st, ch);
            free(ch);
            if (j->include_usage) {
                ch = srv_api_usage_chunk(st->c, j);
                stream_add(st, ch);
                free(ch);
            }
            stream_add(st, "[DONE]");
            st->ended = 1;
        } else if (state == SRV_FAILED) {
            char *e = srv_api_error(j->err_type, j->err_msg, NULL);
            stream_add(st, e);
            free(e);
            stream_add(st, "[DONE]");
            st->ended = 1;
        }
        if (st->pend_len == 0 && !st->ended) continue;
    }
    size_t n = st->pend_len - st->pend_off;
    if (n > max) n = max;
    memcpy(buf, st->pend + st->pend_off, n);
    st->pend_off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    srv_stream *st = cls;
    cancel_job(st->c, st->j); /* a no-op when it has ended */
    srv_job_unref(st->j);
    free(st->pend);
    free(st);
}

/* ---- jobs ---------------------------------------------------------------------------------- */

static enum MHD_Result run_job(srv_ctx *c, struct MHD_Connection *con, int ep, srv_kind kind, const char *body,
                               size_t len) {
    int status = 0;
    char type[48], msg[512];
    srv_job *j = srv_api_parse(c, kind, body, len, &status, type, sizeof type, msg, sizeof msg);
    if (!j) return send_error(c, con, ep, (unsigned)status, type, msg, NULL);
    int rc = srv_sched_submit(c->sched, j);
    if (rc != 0) {
        srv_job_unref(j);
        return rc == -1 ? send_error(c, con, ep, 429, "rate_limit_exceeded",
                                     "too many requests are waiting: try again shortly", "1")
                        : send_error(c, con, ep, 503, "server_shutdown", "the server is shutting down", "5");
    }
    if (j->stream && kind != SRV_EMBEDDING) {
        srv_stream *st = calloc(1, sizeof *st);
        struct MHD_Response *r = st ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st,
                                                                        stream_free)
                                    : NULL;
        if (!r) {
            cancel_job(c, j);
            srv_job_unref(j);
            free(st);
            return send_error(c, con, ep, 500, "server_error", "out of memory", NULL);
        }
        *st = (srv_stream){c, j, con, 0, 1, 0, NULL, 0, 0};
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
        srv_metrics_count(c->sched, ep, 200);
        enum MHD_Result res = MHD_queue_response(con, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return res;
    }
    pthread_mutex_lock(&j->mu);
    while (j->state == SRV_QUEUED || j->state == SRV_RUNNING) {
        job_wait(j, 50);
        if ((j->state == SRV_QUEUED || j->state == SRV_RUNNING) && client_gone(con)) {
            pthread_mutex_unlock(&j->mu);
            cancel_job(c, j);
            srv_job_unref(j);
            return MHD_NO; /* nobody to answer: close */
        }
    }
    pthread_mutex_unlock(&j->mu);
    enum MHD_Result res;
    if (j->state == SRV_DONE) {
        srv_metrics_count(c->sched, ep, 200);
        res = send_text(con, MHD_HTTP_OK, "application/json", srv_api_result(c, j), NULL);
    } else {
        res = send_error(c, con, ep, (unsigned)j->http_status, j->err_type, j->err_msg,
                         j->http_status == 503 ? "5" : NULL);
    }
    srv_job_unref(j);
    return res;
}

static char *metrics_text(srv_ctx *c) {
    srv_metrics m;
    srv_sched_metrics(c->sched, &m);
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f) return NULL;
    static const char *eps[4] = {"chat", "completions", "embeddings", "other"};
    fprintf(f, "# HELP bitnet_requests_total Requests received, by endpoint.\n# TYPE bitnet_requests_total counter\n");
    for (int i = 0; i < 4; i++) fprintf(f, "bitnet_requests_total{endpoint=\"%s\"} %llu\n", eps[i], (unsigned long long)m.requests[i]);
    fprintf(f, "# HELP bitnet_responses_errors_total Error responses, by class.\n# TYPE bitnet_responses_errors_total counter\n");
    fprintf(f, "bitnet_responses_errors_total{class=\"4xx\"} %llu\n", (unsigned long long)m.responses_4xx);
    fprintf(f, "bitnet_responses_errors_total{class=\"5xx\"} %llu\n", (unsigned long long)m.responses_5xx);
#define BN_M(name, type, help, fmt, v) fprintf(f, "# HELP " name " " help "\n# TYPE " name " " type "\n" name " " fmt "\n", v)
    BN_M("bitnet_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.", "%llu", (unsigned long long)m.prompt_tokens);
    BN_M("bitnet_prompt_tokens_cached_total", "counter", "Prompt tokens found in a slot's cache (not evaluated).", "%llu",
         (unsigned long long)m.cached_tokens);
    BN_M("bitnet_generated_tokens_total", "counter", "Tokens generated.", "%llu", (unsigned long long)m.generated_tokens);
    BN_M("bitnet_forward_steps_total", "counter", "Batched forward steps.", "%llu", (unsigned long long)m.steps);
    BN_M("bitnet_requests_cancelled_total", "counter", "Requests cancelled by their client.", "%llu", (unsigned long long)m.cancelled);
    BN_M("bitnet_requests_timeout_total", "counter", "Requests stopped by the timeout.", "%llu", (unsigned long long)m.timeouts);
    BN_M("bitnet_queue_length", "gauge", "Requests waiting for a slot.", "%d", m.queue_len);
    BN_M("bitnet_active_slots", "gauge", "Slots running a request.", "%d", m.active_slots);
    BN_M("bitnet_slots", "gauge", "Slots (parallel sequences).", "%d", m.n_slots);
    BN_M("bitnet_spec_drafted_tokens_total", "counter", "Speculation: drafted tokens verified.", "%llu",
         (unsigned long long)m.drafted_tokens);
    BN_M("bitnet_spec_accepted_tokens_total", "counter", "Speculation: drafted tokens accepted.", "%llu",
         (unsigned long long)m.accepted_tokens);
    BN_M("bitnet_spec_steps_total", "counter", "Speculation: verification steps (a token and its draft).", "%llu",
         (unsigned long long)m.spec_steps);
    BN_M("bitnet_decode_tokens_per_second", "gauge", "Generated tokens per second over the last seconds.", "%.2f", m.decode_tps);
#undef BN_M
    fclose(f);
    return s;
}

/* ---- the handler -------------------------------------------------------------------------------- */

static int path_is(const char *url, const char *p) {
    if (!strncmp(url, "/v1", 3) && !strcmp(url + 3, p)) return 1;
    return !strcmp(url, p);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    srv_ctx *c = cls;
    srv_req *rq = *con_cls;
    if (!rq) { /* headers are in: refuse an oversized body before reading it */
        if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
        *con_cls = rq;
        srv_http_inflight++;
        const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > c->cfg->body_max) {
            rq->answered = 1;
            char m[128];
            snprintf(m, sizeof m, "the request body is larger than %zu bytes", c->cfg->body_max);
            return send_error(c, con, EP_OTHER, 413, "request_too_large", m, NULL);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (rq->too_big) { /* discarded; a client that keeps sending far more is cut off */
            rq->discarded += *upload_size;
            *upload_size = 0;
            return rq->discarded > 16 * c->cfg->body_max + (64u << 20) ? MHD_NO : MHD_YES;
        }
        if (!rq->answered) {
            if (rq->len + *upload_size > c->cfg->body_max) { /* a chunked body: answered at its end */
                rq->too_big = 1;
                rq->discarded = rq->len + *upload_size;
                free(rq->body);
                rq->body = NULL;
                rq->len = rq->cap = 0;
                *upload_size = 0;
                return MHD_YES;
            }
            if (rq->len + *upload_size + 1 > rq->cap) {
                size_t cap = rq->cap ? rq->cap : 4096;
                while (cap < rq->len + *upload_size + 1) cap *= 2;
                char *p = realloc(rq->body, cap);
                if (!p) return MHD_NO;
                rq->body = p;
                rq->cap = cap;
            }
            memcpy(rq->body + rq->len, upload, *upload_size);
            rq->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->answered) return MHD_YES;
    rq->answered = 1;
    if (rq->too_big) {
        char m[128];
        snprintf(m, sizeof m, "the request body is larger than %zu bytes", c->cfg->body_max);
        return send_error(c, con, EP_OTHER, 413, "request_too_large", m, NULL);
    }

    const int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
        if (!get) return send_error(c, con, EP_OTHER, 405, "invalid_request_error", "use GET", NULL);
        struct MHD_Response *r = MHD_create_response_from_buffer(srv_page_html_len, (void *)srv_page_html,
                                                                 MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
        MHD_add_response_header(r, "Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                                              "script-src 'self' 'unsafe-inline'");
        enum MHD_Result rc = MHD_queue_response(con, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return rc;
    }
    if (!strcmp(url, "/health")) {
        if (srv_http_draining)
            return send_text(con, 503, "application/json", strdup("{\"status\":\"shutting down\"}"), "5");
        return send_text(con, MHD_HTTP_OK, "application/json", strdup("{\"status\":\"ok\"}"), NULL);
    }
    int ep = path_is(url, "/chat/completions") ? EP_CHAT
             : path_is(url, "/completions")    ? EP_COMPLETIONS
             : path_is(url, "/embeddings")     ? EP_EMBEDDINGS
                                               : EP_OTHER;
    int models = path_is(url, "/models") || !strncmp(url, "/v1/models/", 11);
    if (ep == EP_OTHER && !models && strcmp(url, "/metrics") != 0)
        return send_error(c, con, EP_OTHER, 404, "not_found_error", "no such endpoint", NULL);
    if (!key_ok(c, con)) {
        srv_metrics_count(c->sched, ep, 401);
        return send_text(con, 401, "application/json",
                         srv_api_error("invalid_api_key", "a valid API key is required (Authorization: Bearer KEY)",
                                       NULL),
                         NULL);
    }
    if (srv_http_draining) return send_error(c, con, ep, 503, "server_shutdown", "the server is shutting down", "5");
    if (ep == EP_OTHER) {
        if (!get) return send_error(c, con, EP_OTHER, 405, "invalid_request_error", "use GET", NULL);
        if (models) {
            if (!strncmp(url, "/v1/models/", 11) && strcmp(url + 11, c->model_id) != 0)
                return send_error(c, con, EP_OTHER, 404, "not_found_error", "no such model", NULL);
            return send_text(con, MHD_HTTP_OK, "application/json", srv_api_models(c, !strncmp(url, "/v1/models/", 11)),
                             NULL);
        }
        return send_text(con, MHD_HTTP_OK, "text/plain; version=0.0.4", metrics_text(c), NULL);
    }
    if (!post) return send_error(c, con, ep, 405, "invalid_request_error", "use POST", NULL);
    /* the body is parsed as JSON whatever Content-Type says (curl -d sends a form type) */
    srv_kind kind = ep == EP_CHAT ? SRV_CHAT : ep == EP_COMPLETIONS ? SRV_COMPLETION : SRV_EMBEDDING;
    return run_job(c, con, ep, kind, rq->body ? rq->body : "", rq->len);
}

static void completed(void *cls, struct MHD_Connection *con, void **con_cls, enum MHD_RequestTerminationCode code) {
    (void)cls;
    (void)con;
    (void)code;
    srv_req *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
        srv_http_inflight--;
    }
    *con_cls = NULL;
}

struct MHD_Daemon *srv_http_start(srv_ctx *c, char *err, size_t err_cap) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)c->cfg->port);
    const char *host = !strcmp(c->cfg->host, "localhost") ? "127.0.0.1" : c->cfg->host;
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, err_cap, "--host '%s' is not an IPv4 address", c->cfg->host);
        return NULL;
    }
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                             MHD_USE_ERROR_LOG * (c->cfg->verbose != 0),
                         0, NULL, NULL, handle, c, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->cfg->max_conns, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)120, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE,
                         (unsigned)1, MHD_OPTION_END);
    if (!d) snprintf(err, err_cap, "cannot listen on %s:%d (in use, or not allowed)", c->cfg->host, c->cfg->port);
    return d;
}
