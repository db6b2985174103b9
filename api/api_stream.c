/*
 * GET /api/v1/stream: Server-Sent Events from a bounded in-process ring.
 * The pipeline publishes after each commit (never blocking: a full ring
 * overwrites its oldest event); each stream connection has its own thread
 * (libmicrohttpd's thread per connection) that waits on the ring's
 * condition variable and sends what is new, a keepalive comment when
 * quiet, and "event: reset" when it fell behind by more than the ring.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "api_int.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/util.h"

#define STREAM_BLOCK_BYTES 4096
#define STREAM_BATCH_BYTES (64 * 1024) /* format at most this much per wake-up */

struct stream {
    struct vg_api *api;
    uint64_t next; /* seq of the next event to send */
    struct vg_buf pending;
    size_t off; /* bytes of `pending` already handed over */
};

void api_ring_init(struct api_ring *ring)
{
    pthread_condattr_t attr;

    pthread_mutex_init(&ring->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ring->cond, &attr);
    pthread_condattr_destroy(&attr);
    ring->slots = vg_calloc(VG_API_RING_SIZE, sizeof(*ring->slots));
    ring->next_seq = 1;
}

void api_ring_fini(struct api_ring *ring)
{
    for (size_t i = 0; i < VG_API_RING_SIZE; i++) {
        free(ring->slots[i].event);
        free(ring->slots[i].data);
    }
    free(ring->slots);
    pthread_cond_destroy(&ring->cond);
    pthread_mutex_destroy(&ring->lock);
}

void api_ring_wake(struct api_ring *ring)
{
    pthread_mutex_lock(&ring->lock);
    pthread_cond_broadcast(&ring->cond);
    pthread_mutex_unlock(&ring->lock);
}

/* True when a stream client is connected (build nothing otherwise). api NULL: false. */
static bool stream_wanted(const struct vg_api *api)
{
    return api && atomic_load(&((struct vg_api *)api)->streams) > 0;
}

/* Publish `data` (one line of JSON) as an event of type `event`. Copied. */
static void publish(struct vg_api *api, const char *event, const char *data)
{
    struct api_ring *ring;
    struct api_ring_slot *slot;

    if (!api) {
        return;
    }
    ring = &api->ring;
    pthread_mutex_lock(&ring->lock);
    slot = &ring->slots[ring->next_seq % VG_API_RING_SIZE];
    free(slot->event);
    free(slot->data);
    slot->seq = ring->next_seq++;
    slot->event = vg_strdup(event);
    slot->data = vg_strdup(data);
    pthread_cond_broadcast(&ring->cond);
    pthread_mutex_unlock(&ring->lock);
}

void vg_api_publish_transitions(struct vg_api *api, const struct vg_transition *t, size_t n)
{
    struct vg_buf b = {0};

    if (!stream_wanted(api)) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        vg_buf_reset(&b);
        vg_buf_putc(&b, '{');
        api_json_kv(&b, "field", vg_field_name(t[i].field), true);
        api_json_kv(&b, "from", t[i].from[0] ? t[i].from : NULL, false);
        api_json_kv(&b, "to", t[i].to, false);
        api_json_kt(&b, "at", t[i].at_ms);
        api_json_kv(&b, "reason", t[i].reason[0] ? t[i].reason : NULL, false);
        vg_buf_puts(&b, ", \"resource\": ");
        api_json_resource(&b, t[i].res);
        vg_buf_putc(&b, '}');
        publish(api, "transition", b.data);
    }
    vg_buf_fini(&b);
}

void vg_api_publish_incidents(struct vg_api *api, const struct vg_incident_record *r, size_t n)
{
    struct vg_buf b = {0};
    int64_t now = vg_now_ms();

    if (!stream_wanted(api)) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        vg_buf_reset(&b);
        api_json_incident(&b, &r[i], now);
        publish(api, "incident", b.data);
    }
    vg_buf_fini(&b);
}

/* ---- a stream connection ----------------------------------------------------- */

/* Format what is new into s->pending, or wait (bounded). Called with the ring locked. */
static void fill(struct stream *s, struct api_ring *ring)
{
    struct timespec deadline;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += API_STREAM_KEEPALIVE_MS / 1000;
    for (;;) {
        uint64_t oldest = ring->next_seq > VG_API_RING_SIZE ? ring->next_seq - VG_API_RING_SIZE : 1;
        if (atomic_load(&s->api->stopping)) {
            return;
        }
        if (s->next < oldest) {
            vg_buf_printf(&s->pending, "event: reset\ndata: {\"missed\": %" PRIu64 "}\n\n",
                          oldest - s->next);
            s->next = oldest;
            return;
        }
        if (s->next < ring->next_seq) {
            while (s->next < ring->next_seq && s->pending.len < STREAM_BATCH_BYTES) {
                const struct api_ring_slot *slot = &ring->slots[s->next % VG_API_RING_SIZE];
                vg_buf_printf(&s->pending, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", slot->seq,
                              slot->event, slot->data);
                s->next++;
            }
            return;
        }
        if (pthread_cond_timedwait(&ring->cond, &ring->lock, &deadline) == ETIMEDOUT) {
            vg_buf_puts(&s->pending, ": keepalive\n\n");
            return;
        }
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    size_t n;

    (void)pos;
    if (s->off == s->pending.len) {
        vg_buf_reset(&s->pending);
        s->off = 0;
        pthread_mutex_lock(&s->api->ring.lock);
        fill(s, &s->api->ring);
        pthread_mutex_unlock(&s->api->ring.lock);
        if (s->pending.len == 0) {
            return MHD_CONTENT_READER_END_OF_STREAM; /* shutting down */
        }
    }
    n = s->pending.len - s->off;
    if (n > max) {
        n = max;
    }
    memcpy(buf, s->pending.data + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;

    atomic_fetch_sub(&s->api->streams, 1);
    vg_buf_fini(&s->pending);
    free(s);
}

void api_stream_open(struct api_ctx *c, struct api_resp *r)
{
    struct vg_api *api = c->api;
    const char *last = api_header(c, "Last-Event-ID");
    struct stream *s;
    int64_t last_id = 0;

    if (atomic_fetch_add(&api->streams, 1) >= api->max_streams) {
        atomic_fetch_sub(&api->streams, 1);
        api_error(r, 503, "too many stream clients (at most %d)", api->max_streams);
        return;
    }
    s = vg_calloc(1, sizeof(*s));
    s->api = api;
    pthread_mutex_lock(&api->ring.lock);
    s->next = api->ring.next_seq;
    /* A reconnecting EventSource resumes after the last event it saw, if the ring still has it. */
    if (last && vg_parse_i64(last, &last_id) && last_id > 0 &&
        (uint64_t)last_id < api->ring.next_seq) {
        s->next = (uint64_t)last_id + 1;
    }
    pthread_mutex_unlock(&api->ring.lock);
    vg_buf_puts(&s->pending, "retry: 2000\n: vigil event stream (transition, incident)\n\n");
    r->status = 200;
    r->ctype = "text/event-stream; charset=utf-8";
    r->stream = s;
}

struct MHD_Response *api_stream_response(struct vg_api *api, void *stream)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, STREAM_BLOCK_BYTES, stream_read, stream, stream_free);

    (void)api;
    if (!resp) {
        stream_free(stream);
    }
    return resp;
}
