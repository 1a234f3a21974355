/*
 * core_log.c -- process-wide log sink.  The default prints WARN and ERROR to stderr; the
 * environment variable BITNET_LOG_LEVEL (0..3) changes the default level.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t bn_log_mu = PTHREAD_MUTEX_INITIALIZER;
static bitnet_log_callback bn_log_cb;
static void *bn_log_user;
static int bn_log_max = -1; /* -1: not yet initialised from the environment */

static const char *const bn_level_names[] = {"error", "warn", "info", "debug"};

void bitnet_set_log_callback(bitnet_log_callback cb, void *user, bitnet_log_level max_level) {
    pthread_mutex_lock(&bn_log_mu);
    bn_log_cb = cb;
    bn_log_user = user;
    bn_log_max = (int)max_level;
    pthread_mutex_unlock(&bn_log_mu);
}

void bn_log(bitnet_log_level level, const char *fmt, ...) {
    pthread_mutex_lock(&bn_log_mu);
    if (bn_log_max < 0) {
        const char *e = getenv("BITNET_LOG_LEVEL");
        bn_log_max = (e && *e >= '0' && *e <= '3' && e[1] == 0) ? *e - '0' : BITNET_LOG_WARN;
    }
    bitnet_log_callback cb = bn_log_cb;
    void *user = bn_log_user;
    int max = bn_log_max;
    pthread_mutex_unlock(&bn_log_mu);
    if ((int)level > max) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cb)
        cb(level, msg, user);
    else
        fprintf(stderr, "bitnet: %s: %s\n", bn_level_names[(unsigned)level & 3u], msg);
}
