/*
 * The outbox from the test's side (outbox.h).
 */
#include "outbox.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "vigil/mem.h"

char *vg_test_outbox_put(struct vg_test_env *e, const char *id, const char *sink, const char *pager,
                         const char *body)
{
    redisReply *r = vg_test_env_redis(e, "XADD %s:outbox * id %s sink %s pager %s body %s",
                                      e->prefix, id, sink, pager, body);
    char *sid = NULL;

    if (r && r->type == REDIS_REPLY_STRING) {
        sid = vg_strndup(r->str, r->len);
    } else {
        fprintf(stderr, "outbox: XADD %s failed\n", id);
    }
    if (r) {
        freeReplyObject(r);
    }
    return sid;
}

static bool drained(void *arg)
{
    struct vg_test_env *e = arg;
    int64_t backlog = -1;
    char errstr[256];

    return vg_state_outbox_backlog(e->st, &backlog, errstr, sizeof(errstr)) == VG_OK &&
           backlog == 0;
}

bool vg_test_outbox_wait_drained(struct vg_test_env *e, int timeout_ms)
{
    if (vg_test_wait_for(drained, e, timeout_ms)) {
        return true;
    }
    fprintf(stderr, "outbox: not drained\n");
    vg_test_env_dump_logs(e);
    return false;
}

struct pending_wait {
    struct vg_test_env *e;
    const char *stream_id;
    const char *consumer;
};

/* XPENDING P:outbox dispatch <id> <id> 1 -> [[id, consumer, idle, deliveries]] */
static bool is_pending(void *arg)
{
    struct pending_wait *w = arg;
    redisReply *r = vg_test_env_redis(w->e, "XPENDING %s:outbox dispatch %s %s 1", w->e->prefix,
                                      w->stream_id, w->stream_id);
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
              r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 2 &&
              r->element[0]->element[1]->type == REDIS_REPLY_STRING &&
              !strcmp(r->element[0]->element[1]->str, w->consumer);

    if (r) {
        freeReplyObject(r);
    }
    return ok;
}

bool vg_test_outbox_wait_pending(struct vg_test_env *e, const char *stream_id, const char *consumer,
                                 int timeout_ms)
{
    struct pending_wait w = {e, stream_id, consumer};

    if (vg_test_wait_for(is_pending, &w, timeout_ms)) {
        return true;
    }
    fprintf(stderr, "outbox: %s never pending for %s\n", stream_id, consumer);
    vg_test_env_dump_logs(e);
    return false;
}

size_t vg_test_requests_with_key(struct vg_http_receiver *r, const char *id)
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
