/*
 * Helpers of the issue 6 integration tests (sinks6_common.h).
 */
#include "sinks6_common.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/util.h"

struct s6_env S6;

int s6_setup(const char *name)
{
    char errstr[512];
    struct timeval tv = {.tv_sec = 10};
    const char *url;

    memset(&S6, 0, sizeof(S6));
    signal(SIGPIPE, SIG_IGN);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    S6.dir = vg_test_mkdtemp(name);
    S6.prefix = vg_asprintf("s6%d", (int)getpid());
    S6.config = vg_asprintf("%s/vigil.yaml", S6.dir);
    if (vg_redis_child_start(&S6.redis, S6.dir, errstr, sizeof(errstr)) != VG_OK ||
        vg_state_connect(&S6.st, vg_redis_child_url(S6.redis), S6.prefix, errstr, sizeof(errstr)) !=
            VG_OK) {
        fprintf(stderr, "redis: %s\n", errstr);
        return -1;
    }
    url = vg_redis_child_url(S6.redis);
    S6.raw = redisConnectUnixWithTimeout(url + strlen("unix://"), tv);
    if (!S6.raw || ((redisContext *)S6.raw)->err) {
        fprintf(stderr, "raw redis connect failed\n");
        return -1;
    }
    return 0;
}

void s6_teardown(void)
{
    if (S6.vigil > 0) {
        vg_test_stop(S6.vigil, SIGTERM, 15000);
    }
    if (S6.raw) {
        redisFree(S6.raw);
    }
    vg_state_destroy(S6.st);
    vg_redis_child_stop(S6.redis);
    vg_test_rmrf(S6.dir);
    vg_free(S6.dir);
    vg_free(S6.prefix);
    vg_free(S6.config);
    memset(&S6, 0, sizeof(S6));
}

char *s6_config_head(void)
{
    return vg_asprintf("kafka:\n"
                       "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                       "\"500\"}\n"
                       "redis:\n"
                       "  url: %s\n"
                       "  prefix: %s\n",
                       vg_redis_child_url(S6.redis), S6.prefix);
}

char *s6_log_path(int run)
{
    return vg_asprintf("%s/vigil-%d.err", S6.dir, run);
}

void s6_start_vigil(const char *yaml)
{
    char *out = vg_asprintf("%s/vigil-%d.out", S6.dir, S6.runs);
    char *err = s6_log_path(S6.runs);
    char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"run", (char *)"-c", S6.config, NULL};

    if (!vg_test_write_file(S6.config, yaml, strlen(yaml))) {
        abort();
    }
    S6.vigil = vg_test_spawn(argv, out, err);
    if (S6.vigil <= 0) {
        abort();
    }
    S6.runs++;
    vg_free(out);
    vg_free(err);
}

void s6_stop_vigil(int sig)
{
    if (S6.vigil > 0) {
        vg_test_stop(S6.vigil, sig, 15000);
    }
    S6.vigil = 0;
}

char *s6_all_logs(void)
{
    struct vg_buf b = {0};

    for (int r = 0; r < S6.runs; r++) {
        char *p = s6_log_path(r);
        char *t = vg_test_read_file(p, NULL);
        char *o = vg_asprintf("%s/vigil-%d.out", S6.dir, r);
        char *to = vg_test_read_file(o, NULL);
        vg_buf_puts(&b, t ? t : "");
        vg_buf_puts(&b, to ? to : "");
        vg_free(t);
        vg_free(to);
        vg_free(p);
        vg_free(o);
    }
    return vg_buf_steal(&b);
}

void s6_dump_logs(void)
{
    char *t = s6_all_logs();

    fprintf(stderr, "---- vigil logs ----\n%s\n--------------------\n", t);
    vg_free(t);
}

char *s6_body(const char *inc, const char *status, const char *name)
{
    struct vg_page pg;
    bool firing = !strcmp(status, "firing");
    char *json;

    memset(&pg, 0, sizeof(pg));
    pg.status = vg_strdup(status);
    pg.incident.id = vg_strdup(inc);
    pg.incident.monitor = vg_strdup("workflow-failed");
    pg.incident.severity = vg_strdup("high");
    pg.incident.summary = vg_asprintf("%s failed in public", name);
    pg.incident.started_at_ms = 1795860000123;
    pg.incident.resolved_at_ms = firing ? 0 : 1795860300000;
    pg.resource.id = vg_asprintf("workflow:v1:%s:public", name);
    pg.resource.type = vg_strdup("workflow");
    pg.resource.name = vg_strdup(name);
    pg.resource.workspace = vg_strdup("public");
    pg.resource.version = vg_strdup("v1");
    pg.resource.owner = vg_strdup("iamgroot");
    snprintf(pg.resource.status, sizeof(pg.resource.status), "active");
    snprintf(pg.resource.runtime, sizeof(pg.resource.runtime), firing ? "failed" : "running");
    snprintf(pg.resource.health, sizeof(pg.resource.health), firing ? "unhealthy" : "progressing");
    snprintf(pg.transition.field, sizeof(pg.transition.field), "runtime");
    snprintf(pg.transition.from, sizeof(pg.transition.from), firing ? "running" : "failed");
    snprintf(pg.transition.to, sizeof(pg.transition.to), firing ? "failed" : "running");
    pg.transition.at_ms = firing ? 1795860000123 : 1795860300000;
    json = vg_page_to_json(&pg);
    vg_page_fini(&pg);
    return json;
}

char *s6_put(const char *id, const char *sink, const char *pager, const char *body)
{
    redisReply *r = redisCommand(S6.raw, "XADD %s:outbox * id %s sink %s pager %s body %s",
                                 S6.prefix, id, sink, pager, body);
    char *sid;

    if (!r || r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "XADD failed\n");
        abort();
    }
    sid = vg_strndup(r->str, r->len);
    freeReplyObject(r);
    return sid;
}

static bool drained(void *arg)
{
    int64_t backlog = -1;
    char errstr[256];

    (void)arg;
    return vg_state_outbox_backlog(S6.st, &backlog, errstr, sizeof(errstr)) == VG_OK &&
           backlog == 0;
}

bool s6_wait_drained(int timeout_ms)
{
    return vg_test_wait_for(drained, NULL, timeout_ms);
}

bool s6_wait_requests(struct vg_http_receiver *r, size_t n, int timeout_ms)
{
    return vg_http_receiver_wait(r, n, timeout_ms);
}

int s6_vigil(char **out, char **err, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv[8];
    int i = 0;

    argv[i++] = (char *)vg_test_vigil_bin();
    argv[i++] = (char *)a1;
    if (a2) {
        argv[i++] = (char *)a2;
    }
    if (a3) {
        argv[i++] = (char *)a3;
    }
    if (a4) {
        argv[i++] = (char *)a4;
    }
    argv[i++] = (char *)"-c";
    argv[i++] = S6.config;
    argv[i] = NULL;
    return vg_test_run(argv, out, err);
}

size_t s6_count_id(struct vg_http_receiver *r, const char *id)
{
    size_t n = 0;
    size_t total = vg_http_receiver_count(r);

    for (size_t i = 0; i < total; i++) {
        struct vg_http_request *req = vg_http_receiver_request(r, i);
        const char *k = vg_http_request_header(req, "idempotency-key");
        if (k && !strcmp(k, id)) {
            n++;
        }
        vg_http_request_free(req);
    }
    return n;
}
