/*
 * The outbox dispatcher: its own thread and Redis connection.
 * Reads pages from P:outbox (consumer group), delivers many at once
 * through sinks/ (libcurl multi), retries with backoff and jitter up to
 * each sink's max_attempts and max_age (honouring Retry-After), keeps a
 * later notice of an incident behind an earlier one for the same sink,
 * and acknowledges an entry only after its sink confirmed, in the same
 * MULTI/EXEC that records the attempt in the incident's audit stream. What
 * it gives up on goes to the dead-letter stream, and to the pager's
 * fallback sink when there is one. A SIGKILL loses nothing: unacknowledged
 * entries are re-read on the next start (same consumer name) or claimed by
 * another instance once idle for dispatch.claim_idle.
 * With redis.layout partitioned every partition's scope has its own outbox:
 * an entry remembers its scope, and everything done about it (ack, dead
 * letter, audit, memo, touch, the look at other instances' pending entries)
 * happens in that scope, one MULTI/EXEC per scope. On a cluster those
 * streams span slots and no read can BLOCK on them all: the dispatcher
 * polls them, woken at once by its own pipeline's commits (eng_dispatch_wake)
 * and otherwise backing off up to dispatch.idle_poll_ms.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine_int.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define DISPATCH_BATCH 256
/* Pages held at once: a sink that is down holds its pages here, others keep flowing. */
#define DISPATCH_MAX_ENTRIES 16384
#define DISPATCH_BLOCK_MS 200
#define DISPATCH_FOREIGN_RECHECK_MS 1000
#define DISPATCH_POLL_MAX_MS 50
#define DISPATCH_STOP_GRACE_MS 5000
#define DISPATCH_AUDIT_INCIDENTS_MAX 50
/* Polling (a cluster's partitioned outboxes): the first wait after a read that found
 * something; each empty read doubles it up to dispatch.idle_poll_ms. */
#define DISPATCH_IDLE_FIRST_MS 10

enum entry_state { E_WAIT = 0, E_FLIGHT, E_DONE };

struct entry {
    struct vg_outbox_entry e; /* owned */
    char *skey;               /* scope + "\n" + stream id: stream ids repeat across scopes */
    char *key;                /* incident (or group) key: the page id before "-<seq>" */
    char *chain;              /* key + "\n" + sink: notices in one chain go out in order */
    long seq;
    char **incidents; /* audit streams this notice is recorded in */
    size_t n_incidents;
    int64_t written_ms; /* wall clock, from the stream id */
    int64_t max_age_ms; /* the sink's */
    int max_attempts;   /* the sink's */
    size_t sink_idx;    /* index into the dispatcher's sink table (per-pass flags) */
    int64_t next_at;    /* mono: not before */
    int attempts;
    int step;
    enum entry_state state;
    bool foreign_checked; /* no earlier notice of the chain is held by another instance */
    bool need_memo;
    bool memo_loaded;
    char *memo;
    long last_status;
    char last_detail[VG_SINK_DETAIL_MAX];
    char last_response[VG_SINK_RESPONSE_MAX];
    struct entry *chain_next;
};

struct eng_dispatch {
    pthread_t thread;
    struct vg_state *st;
    struct vg_sinks *sk;
    struct eng_report *report;
    char consumer[128];
    atomic_int stop;

    pthread_mutex_t mu;       /* fallbacks */
    struct vg_map *fallbacks; /* pager -> fallback sink (owned strings) */

    struct entry **v;
    size_t n;
    size_t cap;
    struct vg_map *by_stream; /* stream id -> entry */
    struct vg_map *chains;    /* chain -> first entry */
    struct vg_map *sink_idx;  /* sink name -> index + 1 (as a pointer-sized int) */
    size_t n_sinks;
    bool *blocked; /* per schedule pass: this sink said "wait" */
    size_t cap_blocked;

    /* waiting to be written to Redis (one MULTI/EXEC per round) */
    struct vg_outbox_finish *fin;
    size_t n_fin;
    size_t cap_fin;
    struct vg_outbox_audit *aud;
    size_t n_aud;
    size_t cap_aud;
    const char **aud_scope; /* the scope of aud[i] (owned strings below; NULL: global) */
    size_t cap_aud_scope;
    char **owned; /* strings the queued records borrow */
    size_t n_owned;
    size_t cap_owned;

    bool redis_down;
    /* Outbox reads failed in a row (a cluster down, a failover, a refusal): the tries back off
     * and only the first of a run is a WARN. */
    int read_failures;
    /* dispatch.claim_idle: a dead instance's entries idle this long are claimed (XAUTOCLAIM).
     * Ours are touched every third of it, so a slow Redis round or a long poll still leaves
     * two thirds of the margin before another instance takes a page we retry. */
    int64_t claim_idle_ms;
    int64_t touch_ms;
    int64_t last_touch;
    int64_t last_read;
    unsigned rnd;

    /*
     * Polling instead of a blocking read (the partitioned layout on a
     * cluster). A pipeline commit that queued pages wakes the thread at once
     * (eng_dispatch_wake); otherwise it reads again after idle_wait_ms, which
     * grows from DISPATCH_IDLE_FIRST_MS to idle_poll_ms while reads find
     * nothing: what only a poll finds (another process's pages, a dead
     * instance's claimed ones) waits at most idle_poll_ms.
     */
    bool polling;
    int64_t idle_poll_ms;
    int64_t idle_wait_ms;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv; /* on CLOCK_MONOTONIC */
    bool woken;             /* under wake_mu: pages were queued since the last read */
};

static double rnd01(struct eng_dispatch *d)
{
    d->rnd = d->rnd * 1103515245u + 12345u;
    return (double)((d->rnd >> 8) & 0xFFFFFF) / (double)0x1000000;
}

static const char *own(struct eng_dispatch *d, const char *s)
{
    char *copy = vg_strdup(s ? s : "");

    *VG_ARRAY_PUSH(d->owned, d->n_owned, d->cap_owned) = copy;
    return copy;
}

/* Sleep up to `ms`, waking early when asked to stop. */
static void nap(struct eng_dispatch *d, int64_t ms)
{
    int64_t end = vg_mono_ms() + ms;

    while (!atomic_load(&d->stop)) {
        int64_t left = end - vg_mono_ms();
        struct timespec ts;
        if (left <= 0) {
            return;
        }
        if (left > 50) {
            left = 50;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = (long)left * 1000000L;
        nanosleep(&ts, NULL);
    }
}

/* Take a pending wake-up (true: pages were queued since it was last taken). */
static bool take_wake(struct eng_dispatch *d)
{
    bool woken;

    pthread_mutex_lock(&d->wake_mu);
    woken = d->woken;
    d->woken = false;
    pthread_mutex_unlock(&d->wake_mu);
    return woken;
}

/* Wait up to `ms` for a wake-up or a stop request (the wake-up is left to take_wake). */
static void wait_wake(struct eng_dispatch *d, int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->wake_mu);
    while (!d->woken && !atomic_load(&d->stop)) {
        if (pthread_cond_timedwait(&d->wake_cv, &d->wake_mu, &ts) != 0) {
            break; /* ETIMEDOUT */
        }
    }
    pthread_mutex_unlock(&d->wake_mu);
}

/* "<key>-<seq>": the chain key and the sequence number (0 when the id has none). */
static void split_id(const char *id, char **key, long *seq)
{
    const char *dash = strrchr(id, '-');
    int64_t v = 0;

    if (dash && dash != id && dash[1] && vg_parse_i64(dash + 1, &v) && v > 0) {
        *key = vg_strndup(id, (size_t)(dash - id));
        *seq = (long)v;
    } else {
        *key = vg_strdup(id);
        *seq = 0;
    }
}

static int64_t stream_ms(const char *stream_id)
{
    const char *dash = strchr(stream_id, '-');
    char *ms = vg_strndup(stream_id, dash ? (size_t)(dash - stream_id) : strlen(stream_id));
    int64_t v = 0;

    if (!vg_parse_i64(ms, &v)) {
        v = vg_now_ms();
    }
    vg_free(ms);
    return v;
}

/* Stream ids compare as (ms, seq). */
static int stream_cmp(const char *a, const char *b)
{
    int64_t ams = stream_ms(a);
    int64_t bms = stream_ms(b);
    const char *ad = strchr(a, '-');
    const char *bd = strchr(b, '-');
    int64_t as = 0;
    int64_t bs = 0;

    if (ams != bms) {
        return ams < bms ? -1 : 1;
    }
    if (ad) {
        (void)vg_parse_i64(ad + 1, &as);
    }
    if (bd) {
        (void)vg_parse_i64(bd + 1, &bs);
    }
    return as < bs ? -1 : as > bs ? 1 : 0;
}

static bool same_scope(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Add `scope` to the distinct scopes v[0..*n) (cap *cap) unless there. */
static void scope_note(const char ***v, size_t *n, size_t *cap, const char *scope)
{
    for (size_t i = 0; i < *n; i++) {
        if (same_scope((*v)[i], scope)) {
            return;
        }
    }
    *VG_ARRAY_PUSH(*v, *n, *cap) = scope;
}

/* Enter `scope` on the dispatcher's connection (nothing with the single layout). */
static bool enter_scope(struct eng_dispatch *d, const char *scope)
{
    char errstr[512];

    if (vg_state_scope_set(d->st, scope, errstr, sizeof(errstr)) != VG_OK) {
        VG_LOG_WARN("sinks", "outbox scope %s unreachable, retrying: %s", scope ? scope : "global",
                    errstr);
        d->redis_down = true;
        return false;
    }
    return true;
}

static void entry_free(struct entry *en)
{
    vg_free(en->skey);
    vg_free(en->e.scope);
    vg_free(en->e.stream_id);
    vg_free(en->e.id);
    vg_free(en->e.sink);
    vg_free(en->e.pager);
    vg_free(en->e.body);
    vg_free(en->e.origin);
    vg_free(en->key);
    vg_free(en->chain);
    for (size_t i = 0; i < en->n_incidents; i++) {
        vg_free(en->incidents[i]);
    }
    vg_free(en->incidents);
    vg_free(en->memo);
    vg_free(en);
}

/* The first entry of en's chain that is not done: only it may be attempted. */
static bool is_chain_head(struct eng_dispatch *d, const struct entry *en)
{
    const struct entry *h = vg_map_get(d->chains, en->chain);

    while (h && h->state == E_DONE) {
        h = h->chain_next;
    }
    return h == en;
}

static void admit(struct eng_dispatch *d, struct vg_outbox_entry *src)
{
    struct entry *en;
    struct entry *head;

    char *skey = vg_asprintf("%s\n%s", src->scope ? src->scope : "", src->stream_id);

    if (vg_map_get(d->by_stream, skey)) {
        /* Ours already (claimed back after a stall): keep the copy we work on. */
        vg_free(skey);
        return;
    }
    en = vg_calloc(1, sizeof(*en));
    en->e = *src;
    en->skey = skey;
    memset(src, 0, sizeof(*src));
    split_id(en->e.id, &en->key, &en->seq);
    en->chain = vg_asprintf("%s\n%s", en->key, en->e.sink);
    en->written_ms = stream_ms(en->e.stream_id);
    en->max_age_ms = vg_sinks_max_age_ms(d->sk, en->e.sink);
    en->max_attempts = vg_sinks_max_attempts(d->sk, en->e.sink);
    {
        uintptr_t idx = (uintptr_t)vg_map_get(d->sink_idx, en->e.sink);
        if (idx == 0) {
            idx = ++d->n_sinks;
            vg_map_put(d->sink_idx, en->e.sink, (void *)idx);
            if (d->n_sinks > d->cap_blocked) {
                d->cap_blocked = d->n_sinks * 2;
                d->blocked = vg_realloc(d->blocked, d->cap_blocked * sizeof(bool));
            }
        }
        en->sink_idx = (size_t)idx - 1;
    }
    en->next_at = 0;
    /* A fallback copy has its own chain (sink differs) and its firing went out long ago. */
    en->foreign_checked = en->seq <= 1 || en->e.origin != NULL;
    en->need_memo = vg_sinks_wants_memo(d->sk, en->e.sink) && en->seq > 1;
    en->n_incidents = vg_sinks_page_incidents(en->e.body, en->e.body_len, &en->incidents,
                                              DISPATCH_AUDIT_INCIDENTS_MAX);
    if (en->n_incidents == 0) {
        en->incidents = vg_calloc(1, sizeof(char *));
        en->incidents[0] = vg_strdup(en->key);
        en->n_incidents = 1;
    }
    vg_map_put(d->by_stream, en->skey, en);
    /* Insert into the chain in stream order (a claimed older entry may arrive late). */
    head = vg_map_get(d->chains, en->chain);
    if (!head || stream_cmp(en->e.stream_id, head->e.stream_id) < 0) {
        en->chain_next = head;
        vg_map_put(d->chains, en->chain, en);
    } else {
        struct entry *p = head;
        while (p->chain_next && stream_cmp(p->chain_next->e.stream_id, en->e.stream_id) < 0) {
            p = p->chain_next;
        }
        en->chain_next = p->chain_next;
        p->chain_next = en;
    }
    *VG_ARRAY_PUSH(d->v, d->n, d->cap) = en;
}

static void audit(struct eng_dispatch *d, const struct entry *en, const char *outcome, long status,
                  int64_t latency_ms, const char *detail)
{
    for (size_t i = 0; i < en->n_incidents; i++) {
        size_t n = d->n_aud;
        struct vg_outbox_audit *a;

        *VG_ARRAY_PUSH(d->aud_scope, n, d->cap_aud_scope) =
            en->e.scope ? own(d, en->e.scope) : NULL;
        a = VG_ARRAY_PUSH(d->aud, d->n_aud, d->cap_aud);
        memset(a, 0, sizeof(*a));
        a->incident = own(d, en->incidents[i]);
        a->id = own(d, en->e.id);
        a->sink = own(d, en->e.sink);
        a->attempt = en->attempts;
        a->outcome = outcome; /* static */
        a->status = status;
        a->latency_ms = latency_ms;
        a->detail = detail ? own(d, detail) : NULL;
        a->at_ms = vg_now_ms();
    }
}

static const char *fallback_for(struct eng_dispatch *d, const struct entry *en)
{
    const char *fb = NULL;

    if (en->e.origin || !en->e.pager || !en->e.pager[0]) {
        return NULL; /* a fallback copy never falls back again */
    }
    pthread_mutex_lock(&d->mu);
    fb = d->fallbacks ? vg_map_get(d->fallbacks, en->e.pager) : NULL;
    fb = fb ? own(d, fb) : NULL;
    pthread_mutex_unlock(&d->mu);
    if (fb && !strcmp(fb, en->e.sink)) {
        return NULL;
    }
    return fb;
}

static void finish_delivered(struct eng_dispatch *d, struct entry *en, const char *memo)
{
    struct vg_outbox_finish *f = VG_ARRAY_PUSH(d->fin, d->n_fin, d->cap_fin);

    memset(f, 0, sizeof(*f));
    f->e = &en->e;
    if (memo) {
        f->memo_key = own(d, en->key);
        f->memo = own(d, memo);
        /* The next notice of this incident may start before this commit lands. */
        for (struct entry *nx = en->chain_next; nx; nx = nx->chain_next) {
            if (nx->need_memo && !nx->memo_loaded) {
                nx->memo = vg_strdup(memo);
                nx->memo_loaded = true;
            }
        }
    }
    en->state = E_DONE;
    VG_LOG_INFO("sinks", "page sent id=%s sink=%s attempt=%d", en->e.id, en->e.sink, en->attempts);
}

static void give_up(struct eng_dispatch *d, struct entry *en, const char *reason)
{
    struct vg_outbox_finish *f = VG_ARRAY_PUSH(d->fin, d->n_fin, d->cap_fin);
    const char *fb = fallback_for(d, en);

    memset(f, 0, sizeof(*f));
    f->e = &en->e;
    f->dead = true;
    f->reason = own(d, reason);
    f->status = en->last_status;
    f->response = own(d, en->last_response);
    f->attempts = en->attempts;
    f->fallback_sink = fb;
    en->state = E_DONE;
    audit(d, en, fb ? "fallback" : "dead", en->last_status, 0, reason);
    vg_metrics_add(d->report->metrics, VG_M_NOTIFICATIONS,
                   (const char *const[]){en->e.sink, "dead"}, 1);
    vg_sinks_note_given_up(d->sk, en->e.sink);
    if (fb) {
        VG_LOG_ERROR("sinks",
                     "giving up on page %s to %s after %d attempt(s): %s (dead-lettered; "
                     "sent to fallback sink %s)",
                     en->e.id, en->e.sink, en->attempts, reason, fb);
    } else {
        VG_LOG_ERROR("sinks",
                     "giving up on page %s to %s after %d attempt(s): %s (moved to the "
                     "dead-letter stream)",
                     en->e.id, en->e.sink, en->attempts, reason);
    }
}

/* One attempt's outcome (delivered, retry, failed) and duration, by sink. */
static void count_attempt(struct eng_dispatch *d, const struct entry *en,
                          const struct vg_sink_result *r, const char *outcome)
{
    vg_metrics_observe(d->report->metrics, VG_M_DELIVERY_SECONDS, (const char *const[]){en->e.sink},
                       (double)r->latency_ms / 1000.0);
    vg_metrics_add(d->report->metrics, VG_M_NOTIFICATIONS,
                   (const char *const[]){en->e.sink, outcome}, 1);
}

static void on_result(struct eng_dispatch *d, struct vg_sink_result *r)
{
    struct entry *en = (struct entry *)(uintptr_t)r->tag;
    const char *outcome = r->err == VG_OK ? "delivered" : "retry";
    int64_t now = vg_mono_ms();
    int max = en->max_attempts;
    int64_t age = vg_now_ms() - en->written_ms;

    en->last_status = r->status;
    snprintf(en->last_detail, sizeof(en->last_detail), "%s", r->detail);
    memcpy(en->last_response, r->response, sizeof(en->last_response));
    if (r->err == VG_OK) {
        count_attempt(d, en, r, "delivered");
        audit(d, en, outcome, r->status, r->latency_ms, NULL);
        finish_delivered(d, en, r->memo);
        return;
    }
    if (!vg_err_is_retriable(r->err) || en->attempts >= max || age >= en->max_age_ms) {
        count_attempt(d, en, r, "failed");
        audit(d, en, "failed", r->status, r->latency_ms, r->detail);
        give_up(d, en, r->detail);
        return;
    }
    count_attempt(d, en, r, "retry");
    audit(d, en, outcome, r->status, r->latency_ms, r->detail);
    en->state = E_WAIT;
    en->step = r->next_step;
    {
        int64_t delay = vg_sinks_backoff_ms(en->attempts, rnd01(d));
        if (r->retry_after_ms > delay) {
            delay = r->retry_after_ms;
        }
        en->next_at = now + delay;
        VG_LOG_WARN("sinks", "page %s to %s failed (attempt %d/%d, retry in %lld ms): %s", en->e.id,
                    en->e.sink, en->attempts, max, (long long)delay, r->detail);
    }
}

/*
 * Start what may start; returns the ms until something else might (-1:
 * nothing waits). `first_only`: only entries that are the first of their
 * chain (no earlier notice held here, finished or not).
 */
static int64_t schedule(struct eng_dispatch *d, bool first_only)
{
    int64_t now = vg_mono_ms();
    int64_t wall = vg_now_ms();
    int64_t soonest = -1;

    /* Cheap checks first: this runs after every completion, over every entry held. */
    if (d->n_sinks > 0) {
        memset(d->blocked, 0, d->n_sinks * sizeof(bool));
    }
    for (size_t i = 0; i < d->n; i++) {
        struct entry *en = d->v[i];
        struct vg_sink_job job;
        char errstr[512];
        int64_t wait = -1;
        enum vg_sink_gate gate;

        if (en->state != E_WAIT || d->blocked[en->sink_idx] || !en->foreign_checked ||
            (en->need_memo && !en->memo_loaded)) {
            continue;
        }
        if (first_only && vg_map_get(d->chains, en->chain) != en) {
            continue;
        }
        if (wall - en->written_ms >= en->max_age_ms) {
            char why[128];
            snprintf(why, sizeof(why), "sink %s: older than max_age (%lld ms)", en->e.sink,
                     (long long)en->max_age_ms);
            give_up(d, en, why);
            continue;
        }
        if (en->next_at > now) {
            wait = en->next_at - now;
            soonest = soonest < 0 || wait < soonest ? wait : soonest;
            continue;
        }
        if (!is_chain_head(d, en)) {
            continue;
        }
        gate = vg_sinks_acquire(d->sk, en->e.sink, now, &wait);
        if (gate == VG_SINK_WAIT) {
            if (wait >= 0) {
                soonest = soonest < 0 || wait < soonest ? wait : soonest;
            }
            d->blocked[en->sink_idx] = true; /* the sink's answer holds for its other pages */
            continue;
        }
        if (gate == VG_SINK_DISABLED || gate == VG_SINK_UNKNOWN) {
            char why[128];
            snprintf(why, sizeof(why),
                     gate == VG_SINK_DISABLED ? "sink %s: disabled after HTTP 410 Gone"
                                              : "sink %s: unknown sink",
                     en->e.sink);
            give_up(d, en, why);
            continue;
        }
        memset(&job, 0, sizeof(job));
        job.tag = (uint64_t)(uintptr_t)en;
        job.sink = en->e.sink;
        job.id = en->e.id;
        job.pager = en->e.pager;
        job.body = en->e.body;
        job.body_len = en->e.body_len;
        job.memo = en->memo;
        job.step = en->step;
        en->attempts++;
        if (vg_sinks_start(d->sk, &job, errstr, sizeof(errstr)) != VG_OK) {
            en->last_status = 0;
            audit(d, en, "failed", 0, 0, errstr);
            give_up(d, en, errstr);
            continue;
        }
        en->state = E_FLIGHT;
    }
    return soonest;
}

/*
 * Write the finished entries and audit records of one scope per MULTI/EXEC
 * (each scope is its own slot with the partitioned layout; with the single
 * layout everything is one). Returns false on a failure: what was written
 * is off the queues, the rest stays for the next try.
 */
static bool commit_scopes(struct eng_dispatch *d)
{
    char errstr[512];
    const char **scopes = NULL;
    size_t n_scopes = 0;
    size_t cap_scopes = 0;
    bool *f_done = vg_calloc(d->n_fin + 1, sizeof(bool));
    bool *a_done = vg_calloc(d->n_aud + 1, sizeof(bool));
    struct vg_outbox_finish *fs = vg_calloc(d->n_fin + 1, sizeof(*fs));
    struct vg_outbox_audit *as = vg_calloc(d->n_aud + 1, sizeof(*as));
    bool ok = true;
    size_t w;

    for (size_t i = 0; i < d->n_fin; i++) {
        scope_note(&scopes, &n_scopes, &cap_scopes, d->fin[i].e->scope);
    }
    for (size_t i = 0; i < d->n_aud; i++) {
        scope_note(&scopes, &n_scopes, &cap_scopes, d->aud_scope[i]);
    }
    for (size_t k = 0; k < n_scopes && ok; k++) {
        size_t nf = 0;
        size_t na = 0;

        for (size_t i = 0; i < d->n_fin; i++) {
            if (same_scope(d->fin[i].e->scope, scopes[k])) {
                fs[nf++] = d->fin[i];
            }
        }
        for (size_t i = 0; i < d->n_aud; i++) {
            if (same_scope(d->aud_scope[i], scopes[k])) {
                as[na++] = d->aud[i];
            }
        }
        ok = enter_scope(d, scopes[k]);
        if (ok && vg_state_outbox_commit(d->st, fs, nf, as, na, errstr, sizeof(errstr)) != VG_OK) {
            VG_LOG_WARN("sinks", "could not record %zu finished page(s) in redis, retrying: %s", nf,
                        errstr);
            d->redis_down = true;
            ok = false;
        }
        for (size_t i = 0; ok && i < d->n_fin; i++) {
            f_done[i] = f_done[i] || same_scope(d->fin[i].e->scope, scopes[k]);
        }
        for (size_t i = 0; ok && i < d->n_aud; i++) {
            a_done[i] = a_done[i] || same_scope(d->aud_scope[i], scopes[k]);
        }
    }
    w = 0;
    for (size_t i = 0; i < d->n_fin; i++) {
        if (!f_done[i]) {
            d->fin[w++] = d->fin[i];
        }
    }
    d->n_fin = w;
    w = 0;
    for (size_t i = 0; i < d->n_aud; i++) {
        if (!a_done[i]) {
            d->aud_scope[w] = d->aud_scope[i];
            d->aud[w++] = d->aud[i];
        }
    }
    d->n_aud = w;
    vg_free(scopes);
    vg_free(f_done);
    vg_free(a_done);
    vg_free(fs);
    vg_free(as);
    return ok;
}

/* Write finished entries and audit records; on success free what is done. */
static bool flush(struct eng_dispatch *d)
{
    size_t w = 0;

    if (d->n_fin == 0 && d->n_aud == 0) {
        return true;
    }
    if (!commit_scopes(d)) {
        return false;
    }
    for (size_t i = 0; i < d->n_owned; i++) {
        vg_free(d->owned[i]);
    }
    d->n_owned = 0;
    /* Drop done entries; a chain's map entry moves to its next live entry. */
    for (size_t i = 0; i < d->n; i++) {
        struct entry *en = d->v[i];
        if (en->state != E_DONE) {
            d->v[w++] = en;
            continue;
        }
        if (vg_map_get(d->chains, en->chain) == en) {
            if (en->chain_next) {
                vg_map_put(d->chains, en->chain, en->chain_next);
            } else {
                vg_map_remove(d->chains, en->chain);
            }
        } else {
            struct entry *p = vg_map_get(d->chains, en->chain);
            while (p && p->chain_next != en) {
                p = p->chain_next;
            }
            if (p) {
                p->chain_next = en->chain_next;
            }
        }
        vg_map_remove(d->by_stream, en->skey);
        entry_free(en);
    }
    d->n = w;
    return true;
}

/* Later notices of `scope` whose chain may still have an earlier one at another instance. */
static void check_foreign_scope(struct eng_dispatch *d, const char *scope, int64_t now)
{
    struct vg_outbox_entry *f = NULL;
    size_t n_f = 0;
    char errstr[512];

    if (!enter_scope(d, scope)) {
        return;
    }
    if (vg_state_outbox_foreign(d->st, d->consumer, &f, &n_f, errstr, sizeof(errstr)) != VG_OK) {
        d->redis_down = true;
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        struct entry *en = d->v[i];
        bool blocked = false;

        if (en->foreign_checked || en->state != E_WAIT || en->next_at > now ||
            !same_scope(en->e.scope, scope)) {
            continue;
        }
        for (size_t k = 0; k < n_f && !blocked; k++) {
            char *key;
            long seq;
            split_id(f[k].id, &key, &seq);
            blocked = !strcmp(key, en->key) && !strcmp(f[k].sink, en->e.sink) &&
                      stream_cmp(f[k].stream_id, en->e.stream_id) < 0;
            vg_free(key);
        }
        if (blocked) {
            int64_t at = vg_mono_ms() + DISPATCH_FOREIGN_RECHECK_MS;
            en->next_at = en->next_at > at ? en->next_at : at;
            VG_LOG_DEBUG("sinks",
                         "page %s to %s waits for an earlier notice held by another "
                         "instance",
                         en->e.id, en->e.sink);
        } else {
            en->foreign_checked = true;
        }
    }
    vg_outbox_entries_free(f, n_f);
}

/* Later notices whose chain may still have an earlier one at another instance. */
static void check_foreign(struct eng_dispatch *d)
{
    const char **scopes = NULL;
    size_t n_scopes = 0;
    size_t cap_scopes = 0;
    int64_t now = vg_mono_ms();

    /* Only notices that could start now: a blocked one is looked at again after its next_at. */
    for (size_t i = 0; i < d->n; i++) {
        if (!d->v[i]->foreign_checked && d->v[i]->state == E_WAIT && d->v[i]->next_at <= now) {
            scope_note(&scopes, &n_scopes, &cap_scopes, d->v[i]->e.scope);
        }
    }
    for (size_t k = 0; k < n_scopes && !d->redis_down; k++) {
        check_foreign_scope(d, scopes[k], now);
    }
    vg_free(scopes);
}

/* Slack memos (message ts) of notices about to start, in one round trip per scope. */
static void load_memos_scope(struct eng_dispatch *d, const char *scope)
{
    const char **keys = vg_calloc(d->n + 1, sizeof(char *));
    const char **sinks = vg_calloc(d->n + 1, sizeof(char *));
    struct entry **who = vg_calloc(d->n + 1, sizeof(struct entry *));
    size_t n = 0;
    char **out;
    char errstr[512];

    for (size_t i = 0; i < d->n; i++) {
        struct entry *en = d->v[i];
        if (en->need_memo && !en->memo_loaded && en->state == E_WAIT && is_chain_head(d, en) &&
            same_scope(en->e.scope, scope)) {
            keys[n] = en->key;
            sinks[n] = en->e.sink;
            who[n] = en;
            n++;
        }
    }
    if (n > 0 && enter_scope(d, scope)) {
        out = vg_calloc(n, sizeof(char *));
        if (vg_state_outbox_memos(d->st, keys, sinks, n, out, errstr, sizeof(errstr)) != VG_OK) {
            d->redis_down = true;
        } else {
            for (size_t i = 0; i < n; i++) {
                who[i]->memo = out[i];
                who[i]->memo_loaded = true;
            }
        }
        vg_free(out);
    }
    vg_free(keys);
    vg_free(sinks);
    vg_free(who);
}

static void load_memos(struct eng_dispatch *d)
{
    const char **scopes = NULL;
    size_t n_scopes = 0;
    size_t cap_scopes = 0;

    for (size_t i = 0; i < d->n; i++) {
        struct entry *en = d->v[i];
        if (en->need_memo && !en->memo_loaded && en->state == E_WAIT) {
            scope_note(&scopes, &n_scopes, &cap_scopes, en->e.scope);
        }
    }
    for (size_t k = 0; k < n_scopes && !d->redis_down; k++) {
        load_memos_scope(d, scopes[k]);
    }
    vg_free(scopes);
}

/* Keep our entries from looking abandoned while they wait for a retry. */
static void touch(struct eng_dispatch *d)
{
    char **ids;
    bool *kept;
    char errstr[512];
    const char **scopes = NULL;
    size_t n_scopes = 0;
    size_t cap_scopes = 0;

    if (d->n == 0 || vg_mono_ms() - d->last_touch < d->touch_ms) {
        return;
    }
    d->last_touch = vg_mono_ms();
    ids = vg_calloc(d->n, sizeof(char *));
    kept = vg_calloc(d->n, sizeof(bool));
    for (size_t i = 0; i < d->n; i++) {
        scope_note(&scopes, &n_scopes, &cap_scopes, d->v[i]->e.scope);
    }
    for (size_t k = 0; k < n_scopes && !d->redis_down; k++) {
        size_t n = 0;

        for (size_t i = 0; i < d->n; i++) {
            if (same_scope(d->v[i]->e.scope, scopes[k])) {
                ids[n++] = d->v[i]->e.stream_id;
            }
        }
        if (enter_scope(d, scopes[k]) &&
            vg_state_outbox_touch(d->st, d->consumer, ids, n, d->touch_ms, kept, errstr,
                                  sizeof(errstr)) != VG_OK) {
            d->redis_down = true;
        }
    }
    vg_free(scopes);
    vg_free(ids);
    vg_free(kept);
}

/* The longest pause between two outbox reads that failed. */
#define DISPATCH_READ_BACKOFF_MAX_MS 1000

/*
 * An outbox read failed. Redis may be reachable and still refuse every
 * read for seconds (CLUSTERDOWN while a primary fails over, a missing
 * permission): the connection is made again, as after any failure, and the
 * next try waits 20 ms, doubled after each failure up to
 * DISPATCH_READ_BACKOFF_MAX_MS, so that a refusal is not retried in a busy
 * loop. The first failure of a run is a WARN, the others DEBUG.
 */
static void read_failed(struct eng_dispatch *d, const char *errstr)
{
    int64_t pause = 20;

    if (d->read_failures == 0) {
        VG_LOG_WARN("sinks", "outbox read failed, retrying: %s", errstr);
    } else {
        VG_LOG_DEBUG("sinks", "outbox read failed again (%d in a row): %s", d->read_failures + 1,
                     errstr);
    }
    for (int i = 0; i < d->read_failures && pause < DISPATCH_READ_BACKOFF_MAX_MS; i++) {
        pause *= 2;
    }
    if (pause > DISPATCH_READ_BACKOFF_MAX_MS) {
        pause = DISPATCH_READ_BACKOFF_MAX_MS;
    }
    d->read_failures++;
    d->redis_down = true;
    nap(d, pause);
}

/* Read and admit up to a batch of entries; returns how many were read. */
static size_t read_outbox(struct eng_dispatch *d, int block_ms)
{
    struct vg_outbox_entry *v = NULL;
    size_t n = 0;
    char errstr[512];
    size_t room = DISPATCH_MAX_ENTRIES > d->n ? DISPATCH_MAX_ENTRIES - d->n : 0;

    if (room == 0) {
        return 0;
    }
    if (room > DISPATCH_BATCH) {
        room = DISPATCH_BATCH;
    }
    d->last_read = vg_mono_ms();
    if (vg_state_outbox_read(d->st, d->consumer, room, block_ms, d->claim_idle_ms, &v, &n, errstr,
                             sizeof(errstr)) != VG_OK) {
        read_failed(d, errstr);
        return 0;
    }
    if (d->read_failures > 0) {
        VG_LOG_INFO("sinks", "outbox read works again after %d failed tries", d->read_failures);
        d->read_failures = 0;
    }
    for (size_t i = 0; i < n; i++) {
        admit(d, &v[i]);
    }
    vg_outbox_entries_free(v, n);
    return n;
}

static size_t poll_sinks(struct eng_dispatch *d, int timeout_ms)
{
    struct vg_sink_result res[64];
    size_t got = vg_sinks_poll(d->sk, timeout_ms, res, VG_ARRAY_LEN(res));

    for (size_t i = 0; i < got; i++) {
        on_result(d, &res[i]);
        vg_sink_result_fini(&res[i]);
    }
    return got;
}

/*
 * One round of the polling dispatcher (`soonest`: ms until a held entry
 * may start, -1: none). Reads when woken or when the idle wait is over,
 * else waits for whichever comes first: a wake-up, a delivery finishing,
 * the idle wait, `soonest`.
 */
static void poll_round(struct eng_dispatch *d, int64_t soonest, size_t in_flight)
{
    int64_t now = vg_mono_ms();
    int64_t wait = d->last_read + d->idle_wait_ms - now;

    if (take_wake(d) || wait <= 0) {
        size_t got;

        d->last_read = now; /* also when no room is left and nothing is read */
        got = read_outbox(d, 0);
        if (got > 0 || d->redis_down) {
            d->idle_wait_ms = DISPATCH_IDLE_FIRST_MS;
        } else if (d->idle_wait_ms < d->idle_poll_ms) {
            d->idle_wait_ms =
                d->idle_wait_ms * 2 < d->idle_poll_ms ? d->idle_wait_ms * 2 : d->idle_poll_ms;
            VG_LOG_DEBUG("sinks", "outbox idle: next look in %lld ms unless woken",
                         (long long)d->idle_wait_ms);
        }
        poll_sinks(d, 0);
        return;
    }
    if (soonest >= 0 && soonest < wait) {
        wait = soonest;
    }
    if (in_flight > 0) {
        /* eng_dispatch_wake also ends this poll early */
        poll_sinks(d, (int)(wait < DISPATCH_POLL_MAX_MS ? wait : DISPATCH_POLL_MAX_MS));
    } else {
        wait_wake(d, wait);
    }
}

static bool reconnect(struct eng_dispatch *d)
{
    char errstr[512];

    /* Each failed try counts as a Redis error, as does the failure that led here */
    vg_metrics_add(d->report->metrics, VG_M_REDIS_ERRORS, (const char *const[]){"dispatcher"}, 1);
    if (vg_state_reconnect(d->st, errstr, sizeof(errstr)) != VG_OK) {
        return false;
    }
    vg_metrics_add(d->report->metrics, VG_M_REDIS_RECONNECTS, (const char *const[]){"dispatcher"},
                   1);
    VG_LOG_INFO("sinks", "dispatcher reconnected to redis");
    d->redis_down = false;
    return true;
}

static void *dispatch_main(void *arg)
{
    struct eng_dispatch *d = arg;
    int64_t stop_deadline = -1;

    for (;;) {
        int64_t soonest;
        size_t in_flight;

        if (atomic_load(&d->stop)) {
            /* Let what is in flight finish (bounded) and record it; the rest stays pending. */
            if (stop_deadline < 0) {
                stop_deadline = vg_mono_ms() + DISPATCH_STOP_GRACE_MS;
            }
            if (vg_sinks_in_flight(d->sk) == 0 || vg_mono_ms() >= stop_deadline) {
                if (d->redis_down) {
                    reconnect(d);
                }
                flush(d);
                break;
            }
            poll_sinks(d, DISPATCH_POLL_MAX_MS);
            continue;
        }
        if (d->redis_down && !reconnect(d)) {
            /* Deliveries in flight still finish; their results wait for Redis. */
            poll_sinks(d, vg_sinks_in_flight(d->sk) > 0 ? 200 : 0);
            nap(d, vg_sinks_in_flight(d->sk) > 0 ? 0 : 500);
            continue;
        }
        /*
         * Pages just read go out before the finished ones are recorded: that
         * record is a round trip queued behind the pipeline's commits (tens
         * to hundreds of ms when they are large), and a first notice does
         * not depend on it. A later notice of a chain still waits until the
         * earlier one is recorded.
         */
        if (d->n_fin > 0 || d->n_aud > 0) {
            schedule(d, true);
        }
        if (!flush(d)) {
            continue;
        }
        check_foreign(d);
        load_memos(d);
        touch(d);
        soonest = d->redis_down ? 0 : schedule(d, false);
        in_flight = vg_sinks_in_flight(d->sk);
        if (d->redis_down) {
            continue;
        }
        if (d->polling) {
            poll_round(d, soonest, in_flight);
        } else if (in_flight > 0) {
            int wait = DISPATCH_POLL_MAX_MS;
            if (soonest >= 0 && soonest < wait) {
                wait = (int)soonest;
            }
            if (poll_sinks(d, wait) == 0 || vg_mono_ms() - d->last_read >= 5) {
                read_outbox(d, 0);
            }
        } else {
            int block = DISPATCH_BLOCK_MS;
            if (soonest >= 0 && soonest < block) {
                block = (int)soonest;
            }
            read_outbox(d, block);
            poll_sinks(d, 0);
        }
    }
    return NULL;
}

vg_err_t eng_dispatch_start(struct eng_dispatch **out, const char *redis_url,
                            const struct vg_redis_config *redis,
                            const struct vg_dispatch_config *dc, struct vg_sinks *sk,
                            struct eng_report *report, char *errstr, size_t errstr_size)
{
    struct eng_dispatch *d = vg_calloc(1, sizeof(*d));
    const char *inst = getenv("VIGIL_INSTANCE");
    char host[64] = "localhost";
    vg_err_t err =
        vg_state_connect_config(&d->st, redis_url, redis->prefix, redis, errstr, errstr_size);

    if (err) {
        vg_free(d);
        return err;
    }
    gethostname(host, sizeof(host) - 1);
    /* A stable name: a restarted instance re-reads its own unacknowledged pages at once. */
    snprintf(d->consumer, sizeof(d->consumer), "%s", inst && *inst ? inst : host);
    d->sk = sk;
    d->report = report;
    d->by_stream = vg_map_new();
    d->chains = vg_map_new();
    d->sink_idx = vg_map_new();
    d->rnd = (unsigned)getpid() ^ (unsigned)vg_mono_ms();
    VG_ASSERT(dc->claim_idle_ms > 0); /* vg_config_init's default, or a loaded value */
    d->claim_idle_ms = dc->claim_idle_ms;
    d->touch_ms = dc->claim_idle_ms / 3;
    d->last_touch = vg_mono_ms();
    /* One Redis BLOCKs on every stream at once; a cluster's partitioned outboxes cannot. */
    d->polling = redis->cluster && vg_state_partitioned(d->st);
    VG_ASSERT(dc->idle_poll_ms >= DISPATCH_IDLE_FIRST_MS);
    d->idle_poll_ms = dc->idle_poll_ms;
    d->idle_wait_ms = DISPATCH_IDLE_FIRST_MS;
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->wake_mu, NULL);
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&d->wake_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    atomic_init(&d->stop, 0);
    if (pthread_create(&d->thread, NULL, dispatch_main, d) != 0) {
        vg_state_destroy(d->st);
        vg_map_destroy(d->by_stream, NULL);
        vg_map_destroy(d->chains, NULL);
        vg_map_destroy(d->sink_idx, NULL);
        pthread_mutex_destroy(&d->mu);
        pthread_mutex_destroy(&d->wake_mu);
        pthread_cond_destroy(&d->wake_cv);
        vg_free(d);
        snprintf(errstr, errstr_size, "pthread_create: %s", strerror(errno));
        return VG_ERR_FATAL;
    }
    *out = d;
    return VG_OK;
}

void eng_dispatch_set_fallbacks(struct eng_dispatch *d, const struct vg_kv *pager_sink, size_t n)
{
    struct vg_map *m = vg_map_new();
    struct vg_map *old;

    for (size_t i = 0; i < n; i++) {
        vg_free(vg_map_put(m, pager_sink[i].key, vg_strdup(pager_sink[i].value)));
    }
    pthread_mutex_lock(&d->mu);
    old = d->fallbacks;
    d->fallbacks = m;
    pthread_mutex_unlock(&d->mu);
    vg_map_destroy(old, vg_free);
}

void eng_dispatch_wake(struct eng_dispatch *d)
{
    if (!d) {
        return;
    }
    pthread_mutex_lock(&d->wake_mu);
    d->woken = true;
    pthread_cond_signal(&d->wake_cv);
    pthread_mutex_unlock(&d->wake_mu);
    /* a dispatcher driving deliveries waits in vg_sinks_poll instead */
    vg_sinks_wakeup(d->sk);
}

void eng_dispatch_request_stop(struct eng_dispatch *d)
{
    if (!d) {
        return;
    }
    atomic_store(&d->stop, 1);
    /* under wake_mu, so a wait_wake between its check and its wait cannot miss it */
    pthread_mutex_lock(&d->wake_mu);
    pthread_cond_signal(&d->wake_cv);
    pthread_mutex_unlock(&d->wake_mu);
    vg_sinks_wakeup(d->sk);
}

void eng_dispatch_stop(struct eng_dispatch *d)
{
    if (!d) {
        return;
    }
    eng_dispatch_request_stop(d);
    pthread_join(d->thread, NULL);
    /* Whatever is still in flight is abandoned: those entries stay pending in Redis. */
    for (size_t i = 0; i < d->n; i++) {
        entry_free(d->v[i]);
    }
    vg_free(d->v);
    vg_free(d->fin);
    vg_free(d->aud);
    vg_free(d->aud_scope);
    for (size_t i = 0; i < d->n_owned; i++) {
        vg_free(d->owned[i]);
    }
    vg_free(d->owned);
    vg_map_destroy(d->by_stream, NULL);
    vg_map_destroy(d->chains, NULL);
    vg_map_destroy(d->sink_idx, NULL);
    vg_free(d->blocked);
    vg_map_destroy(d->fallbacks, vg_free);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->wake_mu);
    pthread_cond_destroy(&d->wake_cv);
    vg_state_destroy(d->st);
    vg_free(d);
}
