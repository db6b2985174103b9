/*
 * The redis-server + vg_state fixture of the state tests (state_redis.h).
 */
#include "state_redis.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static char *workflow_batch_types[] = {(char *)"workflow"};
const struct vg_health_config vg_test_hc_workflow = {workflow_batch_types, 1};

int vg_test_redis_start(struct vg_test_redis *r, const char *name, const char *prefix,
                        bool with_state)
{
    char errstr[512];
    const char *url;

    memset(r, 0, sizeof(*r));
    signal(SIGPIPE, SIG_IGN);
    r->dir = vg_test_mkdtemp(name);
    r->prefix = prefix ? vg_strdup(prefix) : vg_asprintf("%s-%d", name, (int)getpid());
    if (vg_redis_child_start(&r->rc, r->dir, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "redis child: %s\n", errstr);
        return -1;
    }
    url = vg_redis_child_url(r->rc);
    if (with_state && vg_state_connect(&r->st, url, r->prefix, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "connect: %s\n", errstr);
        return -1;
    }
    r->raw = redisConnectUnix(url + strlen("unix://"));
    if (!r->raw || r->raw->err) {
        fprintf(stderr, "raw connect: %s\n", r->raw ? r->raw->errstr : "out of memory");
        return -1;
    }
    return 0;
}

void vg_test_redis_stop(struct vg_test_redis *r)
{
    if (r->raw) {
        redisFree(r->raw);
    }
    vg_state_destroy(r->st);
    vg_redis_child_stop(r->rc);
    if (r->dir) {
        vg_test_rmrf(r->dir);
    }
    vg_free(r->dir);
    vg_free(r->prefix);
    memset(r, 0, sizeof(*r));
}

struct vg_state *vg_test_state_connect_config(const char *url, const char *prefix,
                                              const struct vg_redis_config *rc)
{
    struct vg_state *st = NULL;
    char errstr[512] = "";
    vg_err_t err = vg_state_connect_config(&st, url, prefix, rc, errstr, sizeof(errstr));

    if (err != VG_OK) {
        fprintf(stderr, "connect %s: %s: %s\n", prefix, vg_err_name(err), errstr);
        return NULL;
    }
    return st;
}

int vg_test_redis_use_prefix(struct vg_test_redis *r, char *prefix)
{
    vg_state_destroy(r->st);
    vg_free(r->prefix);
    r->prefix = prefix;
    r->st = vg_test_redis_connect(r, prefix);
    return r->st ? 0 : -1;
}

int vg_test_redis_teardown(void **state)
{
    vg_test_redis_stop(*state);
    return 0;
}

const char *vg_test_redis_url(const struct vg_test_redis *r)
{
    return vg_redis_child_url(r->rc);
}

struct vg_state *vg_test_redis_connect(const struct vg_test_redis *r, const char *prefix)
{
    struct vg_state *st = NULL;
    char errstr[512] = "";

    if (vg_state_connect(&st, vg_test_redis_url(r), prefix ? prefix : r->prefix, errstr,
                         sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "connect %s: %s\n", prefix ? prefix : r->prefix, errstr);
        return NULL;
    }
    return st;
}

int vg_test_redis_expect(const struct vg_test_redis *r, int type, const char *fmt, ...)
{
    va_list ap;
    redisReply *reply;
    int rc = 0;

    va_start(ap, fmt);
    reply = redisvCommand(r->raw, fmt, ap);
    va_end(ap);
    if (!reply) {
        fprintf(stderr, "%s: no reply: %s\n", fmt, r->raw->errstr);
        return -1;
    }
    if (reply->type != type) {
        fprintf(stderr, "%s: reply type %d (%s), want %d\n", fmt, reply->type,
                reply->str ? reply->str : "", type);
        rc = -1;
    }
    freeReplyObject(reply);
    return rc;
}

int vg_test_redis_refuse_writes(const struct vg_test_redis *r, bool on)
{
    if (vg_test_redis_expect(r, REDIS_REPLY_STATUS, "CONFIG SET maxmemory-policy noeviction") !=
        0) {
        return -1;
    }
    return vg_test_redis_expect(r, REDIS_REPLY_STATUS, "CONFIG SET maxmemory %s", on ? "1" : "0");
}

bool vg_test_redis_errstr_is(const struct vg_test_redis *r, const char *errstr, const char *what,
                             const char *text)
{
    char redacted[512];
    char want[1024];

    vg_redact_url(vg_test_redis_url(r), redacted, sizeof(redacted));
    snprintf(want, sizeof(want), "redis %s: %s: %s", redacted, what, text);
    if (strcmp(errstr, want) != 0) {
        fprintf(stderr, "errstr \"%s\", want \"%s\"\n", errstr, want);
        return false;
    }
    return true;
}

long long vg_test_redis_calls(const struct vg_test_redis *r, const char *cmd)
{
    redisReply *reply = redisCommand(r->raw, "INFO commandstats");
    char needle[64];
    const char *p;
    long long n = 0;

    if (!reply || reply->type != REDIS_REPLY_STRING) {
        if (reply) {
            freeReplyObject(reply);
        }
        return -1;
    }
    snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", cmd);
    p = strstr(reply->str, needle);
    if (p) {
        char *end = NULL;

        n = strtoll(p + strlen(needle), &end, 10);
        if (!end || *end != ',') {
            n = -1;
        }
    }
    freeReplyObject(reply);
    return n;
}

long long vg_test_redis_int(const struct vg_test_redis *r, const char *fmt, ...)
{
    va_list ap;
    redisReply *reply;

    va_start(ap, fmt);
    reply = redisvCommand(r->raw, fmt, ap);
    va_end(ap);
    if (!reply) {
        fprintf(stderr, "%s: no reply: %s\n", fmt, r->raw->errstr);
        return LLONG_MIN;
    }
    return vg_test_reply_int(reply, fmt);
}

void vg_test_event_make(struct vg_event *ev, const struct vg_test_event *f)
{
    const char *version = f->version ? f->version : "v1";

    memset(ev, 0, sizeof(*ev));
    ev->type = vg_strdup(f->type);
    ev->name = vg_strdup(f->name);
    ev->workspace = vg_strdup(f->workspace);
    ev->version = vg_strdup(version);
    ev->owner = vg_strdup(f->owner ? f->owner : "");
    ev->id = vg_resource_id(f->type, version, f->name, f->workspace);
    snprintf(ev->status, sizeof(ev->status), "%s", f->status ? f->status : "");
    snprintf(ev->runtime, sizeof(ev->runtime), "%s", f->runtime ? f->runtime : "");
    ev->time_ms = f->time_ms;
    ev->message = f->message ? vg_strdup(f->message) : NULL;
    ev->pos.topic = vg_strdup(f->topic ? f->topic : "vigil.events");
    ev->pos.partition = f->partition;
    ev->pos.offset = f->offset;
}

/* vg_test_state_apply_one, under `fence` when it is not NULL. */
static vg_err_t apply_one(struct vg_state *st, const struct vg_health_config *hc,
                          const struct vg_event *ev, const struct vg_fence *fence,
                          const char *cluster, size_t *lost, char *errstr, size_t errstr_size)
{
    struct vg_resource *res;
    struct vg_transition trans[3];
    struct vg_offset off = {ev->pos.topic, ev->pos.partition, ev->pos.offset};
    struct vg_commit cm = {0};
    vg_err_t err = vg_state_resolve(st, ev, 1, &res, errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    cm.res = &res;
    cm.n_res = 1;
    cm.trans = trans;
    cm.n_trans = vg_resource_apply(hc, res, ev, trans);
    cm.offsets = &off;
    cm.n_offsets = 1;
    cm.offset_clusters = &cluster;
    if (fence) {
        cm.fences = fence;
        cm.n_fences = 1;
        cm.fence_lost = lost;
    }
    return vg_state_commit(st, &cm, errstr, errstr_size);
}

vg_err_t vg_test_state_apply_one(struct vg_state *st, const struct vg_health_config *hc,
                                 const struct vg_event *ev, char *errstr, size_t errstr_size)
{
    return apply_one(st, hc, ev, NULL, NULL, NULL, errstr, errstr_size);
}

vg_err_t vg_test_state_apply_one_fenced(struct vg_state *st, const struct vg_health_config *hc,
                                        const struct vg_event *ev, int64_t epoch,
                                        const char *cluster, size_t *lost, char *errstr,
                                        size_t errstr_size)
{
    struct vg_fence fence = {ev->pos.topic, ev->pos.partition, epoch};

    return apply_one(st, hc, ev, &fence, cluster, lost, errstr, errstr_size);
}

int64_t vg_test_state_claim(struct vg_state *st, const char *topic, int32_t partition,
                            int64_t *offset)
{
    int64_t epoch = 0;
    int64_t off = -1;
    char *cluster = NULL;
    char errstr[512] = "";
    vg_err_t err = vg_state_partition_claim(st, topic, partition, &epoch, &off, &cluster, errstr,
                                            sizeof(errstr));

    vg_free(cluster);
    if (err != VG_OK) {
        fprintf(stderr, "claim %s/%d: %s: %s\n", topic, (int)partition, vg_err_name(err), errstr);
        return -1;
    }
    if (offset) {
        *offset = off;
    }
    return epoch;
}

int64_t vg_test_state_applied(struct vg_state *st, const char *topic, int32_t partition)
{
    int64_t off = -2;
    char errstr[512] = "";
    vg_err_t err = vg_state_applied_offset(st, topic, partition, &off, errstr, sizeof(errstr));

    if (err != VG_OK) {
        fprintf(stderr, "applied offset %s/%d: %s: %s\n", topic, (int)partition, vg_err_name(err),
                errstr);
        return -2;
    }
    return off;
}

bool vg_test_state_enter(struct vg_state *st, const char *topic, int32_t partition)
{
    char errstr[512] = "";
    vg_err_t err = vg_state_scope(st, topic, partition, errstr, sizeof(errstr));

    if (err != VG_OK) {
        fprintf(stderr, "scope %s/%d: %s: %s\n", topic ? topic : "(global)", (int)partition,
                vg_err_name(err), errstr);
        return false;
    }
    return true;
}

bool vg_test_part_commit_build(struct vg_state *st, const struct vg_health_config *hc,
                               struct vg_test_part_commit *pc, const struct vg_test_event *f,
                               int64_t epoch)
{
    char errstr[512] = "";
    vg_err_t err;

    memset(pc, 0, sizeof(*pc));
    if (!vg_test_state_enter(st, f->topic, f->partition)) {
        return false;
    }
    vg_test_event_make(&pc->ev, f);
    err = vg_state_resolve(st, &pc->ev, 1, &pc->res, errstr, sizeof(errstr));
    if (err != VG_OK) {
        fprintf(stderr, "resolve %s: %s: %s\n", f->name, vg_err_name(err), errstr);
        return false;
    }
    pc->off = (struct vg_offset){f->topic, f->partition, f->offset};
    pc->fence = (struct vg_fence){.topic = f->topic, .partition = f->partition, .epoch = epoch};
    pc->fence_lost = SIZE_MAX;
    pc->cm.res = &pc->res;
    pc->cm.n_res = 1;
    pc->cm.trans = pc->trans;
    pc->cm.n_trans = vg_resource_apply(hc, pc->res, &pc->ev, pc->trans);
    pc->cm.offsets = &pc->off;
    pc->cm.n_offsets = 1;
    if (epoch > 0) {
        pc->cm.fences = &pc->fence;
        pc->cm.n_fences = 1;
        pc->cm.fence_lost = &pc->fence_lost;
    }
    return true;
}

/* The fields of vg_test_event_workflow. */
static void workflow_fields(struct vg_test_event *out, const char *name, const char *workspace,
                            const char *runtime, const char *topic, int32_t partition,
                            int64_t offset, int64_t time_ms)
{
    const struct vg_test_event f = {.type = "workflow",
                                    .name = name,
                                    .workspace = workspace,
                                    .status = "active",
                                    .runtime = runtime,
                                    .time_ms = time_ms,
                                    .topic = topic,
                                    .partition = partition,
                                    .offset = offset};

    *out = f;
}

void vg_test_event_workflow(struct vg_event *ev, const char *name, const char *workspace,
                            const char *runtime, const char *topic, int32_t partition,
                            int64_t offset, int64_t time_ms)
{
    struct vg_test_event f;

    workflow_fields(&f, name, workspace, runtime, topic, partition, offset, time_ms);
    vg_test_event_make(ev, &f);
}

bool vg_test_part_commit_workflow(struct vg_state *st, const struct vg_health_config *hc,
                                  struct vg_test_part_commit *pc, const char *topic,
                                  int32_t partition, int64_t offset, const char *name,
                                  int64_t time_ms, int64_t epoch)
{
    struct vg_test_event f;

    workflow_fields(&f, name, "ws", "running", topic, partition, offset, time_ms);
    return vg_test_part_commit_build(st, hc, pc, &f, epoch);
}
