/*
 * The metrics registry: families declared once with fixed label names,
 * series created on first use, one mutex; vigil's own families. The tally
 * defers a thread's increments until it knows they count. api/ renders
 * the registry (GET /metrics) through vg_metrics_visit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/metrics.h"
#include "vigil/util.h"
#include "vigil/yaml.h"

#define KEY_SEP '\x1f'

struct series {
    char *key; /* label values joined by KEY_SEP */
    char **values;
    double value;      /* counter, gauge */
    uint64_t *buckets; /* histogram: per-bucket counts (not cumulative), n_buckets + 1 (+Inf) */
    double sum;
    uint64_t count;
};

struct family {
    char *name;
    enum vg_metric_type type;
    char *help;
    char **labels;
    size_t n_labels;
    double *bounds;
    size_t n_bounds;
    struct series **series;
    size_t n_series;
    size_t cap_series;
    struct vg_map *index; /* key -> struct series* */
};

struct vg_metrics {
    pthread_mutex_t lock;
    struct family **fams;
    size_t n_fams;
    size_t cap_fams;
    struct vg_map *by_name; /* name -> struct family* */
};

double vg_metrics_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct vg_metrics *vg_metrics_new(void)
{
    struct vg_metrics *m = vg_calloc(1, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    m->by_name = vg_map_new();
    return m;
}

static void series_free(void *p)
{
    struct series *s = p;
    free(s->key);
    vg_strv_free(s->values);
    free(s->buckets);
    free(s);
}

static void family_clear(struct family *f)
{
    for (size_t i = 0; i < f->n_series; i++) {
        series_free(f->series[i]);
    }
    f->n_series = 0;
    vg_map_clear(f->index, NULL);
}

void vg_metrics_destroy(struct vg_metrics *m)
{
    if (!m) {
        return;
    }
    for (size_t i = 0; i < m->n_fams; i++) {
        struct family *f = m->fams[i];
        family_clear(f);
        vg_map_destroy(f->index, NULL);
        free(f->series);
        free(f->name);
        free(f->help);
        vg_strv_free(f->labels);
        free(f->bounds);
        free(f);
    }
    free(m->fams);
    vg_map_destroy(m->by_name, NULL);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void vg_metrics_declare(struct vg_metrics *m, const char *name, enum vg_metric_type type,
                        const char *help, const char *const *label_names, size_t n_labels,
                        const double *buckets, size_t n_buckets)
{
    struct family *f;

    if (!m) {
        return;
    }
    pthread_mutex_lock(&m->lock);
    if (vg_map_get(m->by_name, name)) {
        pthread_mutex_unlock(&m->lock);
        return;
    }
    f = vg_calloc(1, sizeof(*f));
    f->name = vg_strdup(name);
    f->type = type;
    f->help = vg_strdup(help);
    f->labels = vg_calloc(n_labels + 1, sizeof(*f->labels));
    for (size_t i = 0; i < n_labels; i++) {
        f->labels[i] = vg_strdup(label_names[i]);
    }
    f->n_labels = n_labels;
    if (type == VG_METRIC_HISTOGRAM) {
        VG_ASSERT(n_buckets > 0);
        f->bounds = vg_calloc(n_buckets, sizeof(*f->bounds));
        memcpy(f->bounds, buckets, n_buckets * sizeof(*f->bounds));
        f->n_bounds = n_buckets;
    }
    f->index = vg_map_new();
    *VG_ARRAY_PUSH(m->fams, m->n_fams, m->cap_fams) = f;
    vg_map_put(m->by_name, name, f);
    pthread_mutex_unlock(&m->lock);
}

static char *join_key(const char *const *values, size_t n)
{
    struct vg_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            vg_buf_putc(&b, KEY_SEP);
        }
        vg_buf_puts(&b, values[i] ? values[i] : "");
    }
    return vg_buf_steal(&b);
}

/* The series of `values` in family `name` (created when absent); NULL if undeclared. Locked. */
static struct series *find_series(struct vg_metrics *m, const char *name, const char *const *values,
                                  bool create)
{
    struct family *f = vg_map_get(m->by_name, name);
    struct series *s;
    char *key;

    VG_ASSERT(f != NULL); /* declare every family before use */
    key = join_key(values, f->n_labels);
    s = vg_map_get(f->index, key);
    if (s || !create) {
        free(key);
        return s;
    }
    s = vg_calloc(1, sizeof(*s));
    s->key = key;
    s->values = vg_calloc(f->n_labels + 1, sizeof(*s->values));
    for (size_t i = 0; i < f->n_labels; i++) {
        s->values[i] = vg_strdup(values[i] ? values[i] : "");
    }
    if (f->type == VG_METRIC_HISTOGRAM) {
        s->buckets = vg_calloc(f->n_bounds + 1, sizeof(*s->buckets));
    }
    *VG_ARRAY_PUSH(f->series, f->n_series, f->cap_series) = s;
    vg_map_put(f->index, key, s);
    return s;
}

void vg_metrics_add(struct vg_metrics *m, const char *name, const char *const *values, double delta)
{
    if (!m) {
        return;
    }
    pthread_mutex_lock(&m->lock);
    find_series(m, name, values, true)->value += delta;
    pthread_mutex_unlock(&m->lock);
}

void vg_metrics_set(struct vg_metrics *m, const char *name, const char *const *values, double v)
{
    if (!m) {
        return;
    }
    pthread_mutex_lock(&m->lock);
    find_series(m, name, values, true)->value = v;
    pthread_mutex_unlock(&m->lock);
}

void vg_metrics_observe(struct vg_metrics *m, const char *name, const char *const *values, double v)
{
    struct family *f;
    struct series *s;
    size_t i;

    if (!m) {
        return;
    }
    pthread_mutex_lock(&m->lock);
    f = vg_map_get(m->by_name, name);
    s = find_series(m, name, values, true);
    VG_ASSERT(f->type == VG_METRIC_HISTOGRAM);
    for (i = 0; i < f->n_bounds && v > f->bounds[i]; i++) {
    }
    s->buckets[i]++;
    s->sum += v;
    s->count++;
    pthread_mutex_unlock(&m->lock);
}

void vg_metrics_clear(struct vg_metrics *m, const char *name)
{
    struct family *f;

    if (!m) {
        return;
    }
    pthread_mutex_lock(&m->lock);
    f = vg_map_get(m->by_name, name);
    VG_ASSERT(f != NULL);
    family_clear(f);
    pthread_mutex_unlock(&m->lock);
}

double vg_metrics_value(struct vg_metrics *m, const char *name, const char *const *values)
{
    struct series *s;
    double v = 0;

    if (!m) {
        return 0;
    }
    pthread_mutex_lock(&m->lock);
    s = find_series(m, name, values, false);
    if (s) {
        v = s->buckets ? (double)s->count : s->value;
    }
    pthread_mutex_unlock(&m->lock);
    return v;
}

static int cmp_series(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    return strcmp(x->key, y->key);
}

void vg_metrics_visit(struct vg_metrics *m,
                      void (*fn)(const struct vg_metric_family_view *f, void *arg), void *arg)
{
    struct vg_metric_series_view *views = NULL;
    size_t cap = 0;

    if (!m) {
        return;
    }
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_fams; i++) {
        struct family *f = m->fams[i];
        struct vg_metric_family_view fv = {
            .name = f->name,
            .type = f->type,
            .help = f->help,
            .labels = (const char *const *)f->labels,
            .n_labels = f->n_labels,
            .bounds = f->bounds,
            .n_bounds = f->n_bounds,
            .n_series = f->n_series,
        };

        if (f->n_series > 1) {
            qsort(f->series, f->n_series, sizeof(*f->series), cmp_series);
        }
        vg_array_grow((void **)&views, &cap, f->n_series + 1, sizeof(*views));
        for (size_t k = 0; k < f->n_series; k++) {
            const struct series *s = f->series[k];

            views[k] = (struct vg_metric_series_view){
                .values = (const char *const *)s->values,
                .value = s->value,
                .buckets = s->buckets,
                .sum = s->sum,
                .count = s->count,
            };
        }
        fv.series = views;
        fn(&fv, arg);
    }
    pthread_mutex_unlock(&m->lock);
    free(views);
}

double vg_metrics_sum(struct vg_metrics *m, const char *name, const char *label, const char *value)
{
    struct family *f;
    size_t li = 0;
    double sum = 0;

    if (!m) {
        return 0;
    }
    pthread_mutex_lock(&m->lock);
    f = vg_map_get(m->by_name, name);
    if (f && label) {
        for (li = 0; li < f->n_labels && strcmp(f->labels[li], label) != 0; li++) {
        }
        if (li == f->n_labels) {
            f = NULL;
        }
    }
    for (size_t k = 0; f && k < f->n_series; k++) {
        const struct series *s = f->series[k];

        if (!label || strcmp(s->values[li], value) == 0) {
            sum += f->type == VG_METRIC_HISTOGRAM ? (double)s->count : s->value;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return sum;
}

/* ---- the tally ---------------------------------------------------------- */

struct tally_item {
    char *name;
    char **values;
    size_t n_values;
    double delta;
};

struct vg_metrics_tally {
    struct tally_item *items;
    size_t n;
    size_t cap;
    size_t last; /* the item hit last: consecutive events mostly share topic and outcome */
};

struct vg_metrics_tally *vg_metrics_tally_new(void)
{
    return vg_calloc(1, sizeof(struct vg_metrics_tally));
}

void vg_metrics_tally_destroy(struct vg_metrics_tally *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].name);
        vg_strv_free(t->items[i].values);
    }
    free(t->items);
    free(t);
}

static bool item_is(const struct tally_item *it, const char *name, const char *const *values,
                    size_t n_values)
{
    if (it->n_values != n_values || strcmp(it->name, name) != 0) {
        return false;
    }
    for (size_t i = 0; i < n_values; i++) {
        if (strcmp(it->values[i], values[i] ? values[i] : "") != 0) {
            return false;
        }
    }
    return true;
}

/*
 * Per event, so no allocation once an item exists: a linear scan (a tally
 * holds a few topics x outcomes and fields x values), starting at the last hit.
 */
void vg_metrics_tally_add(struct vg_metrics_tally *t, const char *name, const char *const *values,
                          size_t n_values, double delta)
{
    struct tally_item *it = NULL;

    if (t->last < t->n && item_is(&t->items[t->last], name, values, n_values)) {
        it = &t->items[t->last];
    }
    for (size_t i = 0; !it && i < t->n; i++) {
        if (item_is(&t->items[i], name, values, n_values)) {
            it = &t->items[i];
            t->last = i;
        }
    }
    if (!it) {
        it = VG_ARRAY_PUSH(t->items, t->n, t->cap);
        memset(it, 0, sizeof(*it));
        it->name = vg_strdup(name);
        it->values = vg_calloc(n_values + 1, sizeof(*it->values));
        for (size_t i = 0; i < n_values; i++) {
            it->values[i] = vg_strdup(values[i] ? values[i] : "");
        }
        it->n_values = n_values;
        t->last = t->n - 1;
    }
    it->delta += delta;
}

void vg_metrics_tally_flush(struct vg_metrics_tally *t, struct vg_metrics *m)
{
    if (m) {
        pthread_mutex_lock(&m->lock);
    }
    for (size_t i = 0; i < t->n; i++) {
        struct tally_item *it = &t->items[i];
        if (m && it->delta != 0) {
            find_series(m, it->name, (const char *const *)it->values, true)->value += it->delta;
        }
        it->delta = 0;
    }
    if (m) {
        pthread_mutex_unlock(&m->lock);
    }
}

/* ---- vigil's families ------------------------------------------------------ */

void vg_metrics_declare_vigil(struct vg_metrics *m)
{
    static const double batch_s[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,     10};
    static const double deliver_s[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    static const char *const topic_outcome[] = {"topic", "outcome"};
    static const char *const reason[] = {"reason"};
    static const char *const topic_partition[] = {"topic", "partition"};
    static const char *const field_value[] = {"field", "value"};
    static const char *const monitor_severity[] = {"monitor", "severity"};
    static const char *const sink_outcome[] = {"sink", "outcome"};
    static const char *const sink[] = {"sink"};
    static const char *const component[] = {"component"};
    static const char *const kind[] = {"kind"};
    static const char *const outcome[] = {"outcome"};
    static const char *const version[] = {"version"};
    static const char *const sink_state[] = {"sink", "state"};
    static const char *const topic[] = {"topic"};

    if (!m) {
        return;
    }
    vg_metrics_declare(m, VG_M_SINK_UP, VG_METRIC_GAUGE,
                       "1 when the sink delivers, 0 when its breaker is open or it is disabled.",
                       sink_state, 2, NULL, 0);
    vg_metrics_declare(m, VG_M_BUILD_INFO, VG_METRIC_GAUGE, "Always 1; the version of this vigil.",
                       version, 1, NULL, 0);
    vg_metrics_declare(m, VG_M_EVENTS_CONSUMED, VG_METRIC_COUNTER,
                       "Kafka messages consumed, by topic and outcome (applied, replayed, "
                       "invalid, skipped, late).",
                       topic_outcome, 2, NULL, 0);
    vg_metrics_declare(m, VG_M_DECODE_ERRORS, VG_METRIC_COUNTER,
                       "Messages that could not be decoded, by reason.", reason, 1, NULL, 0);
    vg_metrics_declare(m, VG_M_DLQ_PRODUCED, VG_METRIC_COUNTER,
                       "Messages produced to the dead-letter topic and acknowledged.", NULL, 0,
                       NULL, 0);
    vg_metrics_declare(m, VG_M_CONSUMER_LAG, VG_METRIC_GAUGE,
                       "Messages behind the high watermark, per assigned partition.",
                       topic_partition, 2, NULL, 0);
    vg_metrics_declare(m, VG_M_BATCH_SECONDS, VG_METRIC_HISTOGRAM,
                       "Time to apply one consumed batch (decode to commit), in seconds.", NULL, 0,
                       batch_s, VG_ARRAY_LEN(batch_s));
    vg_metrics_declare(m, VG_M_TRANSITIONS, VG_METRIC_COUNTER,
                       "Committed transitions, by field and new value.", field_value, 2, NULL, 0);
    vg_metrics_declare(m, VG_M_INCIDENTS_FIRING, VG_METRIC_GAUGE,
                       "Incidents firing now, by monitor and severity (read from Redis: the "
                       "same for every instance).",
                       monitor_severity, 2, NULL, 0);
    vg_metrics_declare(m, VG_M_NOTIFICATIONS, VG_METRIC_COUNTER,
                       "Notification delivery attempts, by sink and outcome (delivered, retry, "
                       "failed, dead).",
                       sink_outcome, 2, NULL, 0);
    vg_metrics_declare(m, VG_M_DELIVERY_SECONDS, VG_METRIC_HISTOGRAM,
                       "Time of one delivery attempt to a sink, in seconds.", sink, 1, deliver_s,
                       VG_ARRAY_LEN(deliver_s));
    vg_metrics_declare(m, VG_M_OUTBOX_DEPTH, VG_METRIC_GAUGE,
                       "Notifications in the outbox not yet acknowledged.", NULL, 0, NULL, 0);
    vg_metrics_declare(m, VG_M_DEAD_DEPTH, VG_METRIC_GAUGE,
                       "Notifications in the dead-letter stream.", NULL, 0, NULL, 0);
    vg_metrics_declare(m, VG_M_REDIS_ERRORS, VG_METRIC_COUNTER,
                       "Redis calls that failed (connection lost or refused), by component.",
                       component, 1, NULL, 0);
    vg_metrics_declare(m, VG_M_REDIS_RECONNECTS, VG_METRIC_COUNTER,
                       "Successful reconnections to Redis after a failure, by component.",
                       component, 1, NULL, 0);
    vg_metrics_declare(m, VG_M_RULES_LOADED, VG_METRIC_GAUGE,
                       "Rules loaded, by kind (monitor, pager).", kind, 1, NULL, 0);
    vg_metrics_declare(m, VG_M_RULES_RELOADS, VG_METRIC_COUNTER,
                       "Rule reloads, by outcome (ok, error).", outcome, 1, NULL, 0);
    vg_metrics_declare(m, VG_M_STREAM_CLIENTS, VG_METRIC_GAUGE,
                       "Clients connected to /api/v1/stream.", NULL, 0, NULL, 0);
    vg_metrics_declare(m, VG_M_HTTP_REJECTED, VG_METRIC_COUNTER,
                       "HTTP connections and requests the server refused, by reason (host, "
                       "too_many_connections, per_ip_limit, timeout, too_large, bad_request, "
                       "unauthorized).",
                       reason, 1, NULL, 0);
    vg_metrics_declare(m, VG_M_NOTIFICATIONS_QUEUED, VG_METRIC_COUNTER,
                       "Notifications written to the outbox (by the pipeline and by timers).", NULL,
                       0, NULL, 0);
    vg_metrics_declare(m, VG_M_OFFSET_RESETS, VG_METRIC_COUNTER,
                       "Partitions whose offsets started again (topic recreated, or a new "
                       "cluster) while Redis held applied offsets of the old ones, by topic.",
                       topic, 1, NULL, 0);
    vg_metrics_declare(m, VG_M_DLQ_FAILURES, VG_METRIC_COUNTER,
                       "Poison messages the dead-letter topic refused even cut short: counted, "
                       "logged and skipped, by reason (too_large, invalid_record).",
                       reason, 1, NULL, 0);
    vg_metrics_declare(m, VG_M_CACHE_EVICTIONS, VG_METRIC_COUNTER,
                       "Resources dropped from the pipeline's cache to keep it within "
                       "redis.cache_resources (reloaded from Redis when seen again).",
                       NULL, 0, NULL, 0);
    vg_metrics_declare(m, VG_M_COMMIT_CONFLICTS, VG_METRIC_COUNTER,
                       "Commits refused because another instance had claimed one of their "
                       "partitions since (nothing written; claimed again and retried), by topic.",
                       topic, 1, NULL, 0);
    vg_metrics_set(m, VG_M_CACHE_EVICTIONS, NULL, 0);
    vg_metrics_set(m, VG_M_BUILD_INFO, (const char *const[]){VIGIL_VERSION}, 1);
    vg_metrics_set(m, VG_M_NOTIFICATIONS_QUEUED, NULL, 0);
    for (int r = 1; r < VG_DECODE__COUNT; r++) {
        if (!vg_decode_reason_is_skip((enum vg_decode_reason)r)) {
            vg_metrics_set(m, VG_M_DECODE_ERRORS,
                           (const char *const[]){vg_decode_reason_name((enum vg_decode_reason)r)},
                           0);
        }
    }
    vg_metrics_set(m, VG_M_DLQ_PRODUCED, NULL, 0);
    vg_metrics_set(m, VG_M_OUTBOX_DEPTH, NULL, 0);
    vg_metrics_set(m, VG_M_DEAD_DEPTH, NULL, 0);
    for (size_t i = 0; i < 2; i++) {
        vg_metrics_set(m, VG_M_RULES_RELOADS, (const char *const[]){i ? "error" : "ok"}, 0);
    }
}
