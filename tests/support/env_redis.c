/*
 * The environment's raw Redis connection (env.h, vg_test_env_redis): for
 * tests that write or read what vigil keeps in Redis directly, as another
 * instance or an older version of vigil would.
 */
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "support.h"

static bool connect_raw(struct vg_test_env *e)
{
    const char *url = vg_redis_child_url(e->redis);
    struct timeval tv = {.tv_sec = 10};
    redisReply *reply;

    if (strncmp(url, "unix://", strlen("unix://")) != 0) {
        fprintf(stderr, "env: redis url %s is not a unix socket\n", url);
        return false;
    }
    e->redis_raw = redisConnectUnixWithTimeout(url + strlen("unix://"), tv);
    if (!e->redis_raw || e->redis_raw->err) {
        fprintf(stderr, "env: raw redis connect: %s\n",
                e->redis_raw ? e->redis_raw->errstr : "out of memory");
        vg_test_env_redis_close(e);
        return false;
    }
    if (!e->opts.redis_password) {
        return true;
    }
    reply = redisCommand(e->redis_raw, "AUTH %s", e->opts.redis_password);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "env: raw redis AUTH failed\n");
        if (reply) {
            freeReplyObject(reply);
        }
        vg_test_env_redis_close(e);
        return false;
    }
    freeReplyObject(reply);
    return true;
}

/* The command on the raw connection (connected on first use; closed when it dies). */
static redisReply *env_vcommand(struct vg_test_env *e, const char *fmt, va_list ap)
{
    redisReply *reply;

    if (!e->redis_raw && !connect_raw(e)) {
        return NULL;
    }
    reply = redisvCommand(e->redis_raw, fmt, ap);
    if (!reply) {
        fprintf(stderr, "env: raw redis: %s\n", e->redis_raw->errstr);
        vg_test_env_redis_close(e); /* the context is dead: the next call reconnects */
    }
    return reply;
}

struct redisReply *vg_test_env_redis(struct vg_test_env *e, const char *fmt, ...)
{
    va_list ap;
    redisReply *reply;

    va_start(ap, fmt);
    reply = env_vcommand(e, fmt, ap);
    va_end(ap);
    return reply;
}

long long vg_test_env_int(struct vg_test_env *e, const char *fmt, ...)
{
    va_list ap;
    redisReply *reply;

    va_start(ap, fmt);
    reply = env_vcommand(e, fmt, ap);
    va_end(ap);
    return vg_test_reply_int(reply, fmt);
}

void vg_test_env_redis_close(struct vg_test_env *e)
{
    if (e->redis_raw) {
        redisFree(e->redis_raw);
        e->redis_raw = NULL;
    }
}

long long vg_test_redis_commands_run(struct redisContext *ctx)
{
    redisReply *r = redisCommand(ctx, "INFO commandstats");
    long long total = 0;

    if (!r || r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "env: INFO commandstats: %s\n", r ? "unexpected reply" : ctx->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }
    for (const char *p = strstr(r->str, "cmdstat_"); p; p = strstr(p + 1, "\ncmdstat_")) {
        const char *calls = strstr(p, "calls=");

        if (*p == '\n') {
            p++;
        }
        if (strncmp(p, "cmdstat_info:", 13) != 0 && calls) {
            total += strtoll(calls + 6, NULL, 10);
        }
    }
    freeReplyObject(r);
    return total;
}
