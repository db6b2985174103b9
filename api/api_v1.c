/*
 * The JSON API under /api/v1 (docs/api.md): Resources with filters and
 * paging, one Resource, its history, incidents, silences, the notification
 * dead-letter stream, the loaded rules and the event stream. Reads are
 * open; writes (POST, DELETE) need the bearer token. Parameters are
 * checked: an unknown or malformed one is a 400 that says which.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api_int.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/util.h"

#define MAX_QUERY_BYTES 256
#define MAX_MATCHERS 32

/* ---- parameters ------------------------------------------------------------ */

struct arg_check {
    const char *const *allowed;
    const char *bad;
};

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct arg_check *ac = cls;

    (void)kind;
    (void)value;
    for (size_t i = 0; ac->allowed[i]; i++) {
        if (!strcmp(ac->allowed[i], key)) {
            return MHD_YES;
        }
    }
    ac->bad = key;
    return MHD_NO;
}

/* Only the `allowed` (NULL-terminated) query parameters; else r is a 400. */
static bool args_ok(struct api_ctx *c, struct api_resp *r, const char *const *allowed)
{
    struct arg_check ac = {allowed, NULL};

    MHD_get_connection_values(c->conn, MHD_GET_ARGUMENT_KIND, check_arg, &ac);
    if (ac.bad) {
        struct vg_buf names = {0};
        for (size_t i = 0; allowed[i]; i++) {
            vg_buf_printf(&names, "%s%s", i ? ", " : "", allowed[i]);
        }
        api_error(r, 400, "unknown parameter \"%s\" (known: %s)", ac.bad,
                  names.data ? names.data : "none");
        vg_buf_fini(&names);
        return false;
    }
    return true;
}

/* An integer parameter in [min, max], `def` when absent; else r is a 400. */
static bool int_arg(struct api_ctx *c, struct api_resp *r, const char *name, int64_t def,
                    int64_t min, int64_t max, int64_t *out)
{
    const char *v = api_arg(c, name);
    int64_t n;

    if (!v) {
        *out = def;
        return true;
    }
    if (!vg_parse_i64(v, &n) || n < min || n > max) {
        api_error(r, 400, "%s: expected an integer from %" PRId64 " to %" PRId64 ", got \"%s\"",
                  name, min, max, v);
        return false;
    }
    *out = n;
    return true;
}

bool api_health_matches(const struct vg_resource *res, const char *health)
{
    return !health || !strcmp(api_health_name(res->health), health);
}

bool api_query_resources(struct api_ctx *c, struct api_resp *r, bool ignore_health,
                         struct vg_resource ***out, size_t *n_out)
{
    const char *q = api_arg(c, "q");
    const char *health = api_arg(c, "health");
    struct vg_state_filter f = {.type = api_arg(c, "type"), .workspace = api_arg(c, "workspace")};
    struct vg_resource **v = NULL;
    struct vg_state *st;
    char errstr[512];
    char *glob = NULL;
    size_t n = 0;
    size_t k = 0;
    vg_err_t err;

    if (!api_health_filter_ok(health)) {
        api_error(r, 400, "health: expected healthy, progressing, unhealthy or unknown, got \"%s\"",
                  health);
        return false;
    }
    if (q && strlen(q) > MAX_QUERY_BYTES) {
        api_error(r, 400, "q: longer than %d bytes", MAX_QUERY_BYTES);
        return false;
    }
    if (!api_state_get(c->api, &st, r)) {
        return false;
    }
    if (q) {
        glob = api_q_glob(q);
        f.name_glob = glob;
    }
    err = vg_state_list(st, &f, &v, &n, errstr, sizeof(errstr));
    free(glob);
    if (!api_state_done(c->api, st, err, errstr, r)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((!q || api_name_matches(v[i]->name, q)) &&
            (ignore_health || api_health_matches(v[i], health))) {
            v[k++] = v[i];
        } else {
            vg_resource_destroy(v[i]);
        }
    }
    *out = v;
    *n_out = k;
    return true;
}

/* ---- lists: 200 and {"items": [...], "count": N}, one item a line ---------------- */

static void items_begin(struct api_resp *r)
{
    r->status = 200;
    vg_buf_puts(&r->body, "{\"items\": [");
}

/* Before item `i` (0 for the first). */
static void item_next(struct api_resp *r, size_t i)
{
    vg_buf_puts(&r->body, i ? ",\n  " : "\n  ");
}

/* After the `n` items: the count. */
static void items_end(struct api_resp *r, size_t n)
{
    vg_buf_printf(&r->body, "%s], \"count\": %zu}\n", n ? "\n" : "", n);
}

/* ---- resources ----------------------------------------------------------------- */

static void list_resources(struct api_ctx *c, struct api_resp *r)
{
    static const char *const allowed[] = {"type",  "workspace", "q", "health",
                                          "limit", "cursor",    NULL};
    const char *cursor = api_arg(c, "cursor");
    const char *health = api_arg(c, "health");
    struct vg_resource **v = NULL;
    size_t counts[4] = {0, 0, 0, 0};
    char *cname = NULL;
    char *cid = NULL;
    size_t n = 0;
    size_t total = 0;
    size_t shown = 0;
    size_t start = 0;
    int64_t limit;
    size_t last = 0;
    bool more = false;

    if (!args_ok(c, r, allowed) ||
        !int_arg(c, r, "limit", API_DEFAULT_LIMIT, 1, API_MAX_LIMIT, &limit)) {
        return;
    }
    if (cursor && !api_cursor_decode(cursor, &cname, &cid)) {
        api_error(r, 400, "cursor: not a cursor this API returned (use next_cursor as is)");
        return;
    }
    if (!api_query_resources(c, r, true, &v, &n)) {
        free(cname);
        free(cid);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        counts[v[i]->health]++;
    }
    items_begin(r);
    for (size_t i = 0; i < n; i++) {
        int cmp;
        if (!api_health_matches(v[i], health)) {
            continue;
        }
        total++;
        if (cname) {
            cmp = strcmp(v[i]->name, cname);
            if (cmp < 0 || (cmp == 0 && strcmp(v[i]->id, cid) <= 0)) {
                start++;
                continue;
            }
        }
        if (shown == (size_t)limit) {
            more = true;
            continue;
        }
        item_next(r, shown);
        api_json_resource(&r->body, v[i]);
        shown++;
        last = i;
    }
    vg_buf_printf(&r->body,
                  "%s], \"count\": %zu, \"total\": %zu, \"next_cursor\": ", shown ? "\n" : "",
                  shown, total);
    if (more) {
        char *next = api_cursor_encode(v[last]->name, v[last]->id);
        vg_json_append_string(&r->body, next);
        free(next);
    } else {
        vg_buf_puts(&r->body, "null");
    }
    vg_buf_printf(&r->body,
                  ", \"counts\": {\"healthy\": %zu, \"progressing\": %zu, \"unhealthy\": %zu, "
                  "\"unknown\": %zu}}\n",
                  counts[VG_HEALTH_HEALTHY], counts[VG_HEALTH_PROGRESSING],
                  counts[VG_HEALTH_UNHEALTHY], counts[VG_HEALTH_UNKNOWN]);
    (void)start;
    vg_resources_free(v, n);
    free(cname);
    free(cid);
}

static void get_resource(struct api_ctx *c, struct api_resp *r, const char *id)
{
    static const char *const allowed[] = {NULL};
    struct vg_resource *res = NULL;
    struct vg_state *st;
    char errstr[512];
    vg_err_t err;

    if (!args_ok(c, r, allowed) || !api_state_get(c->api, &st, r)) {
        return;
    }
    err = vg_state_get(st, id, &res, errstr, sizeof(errstr));
    if (!api_state_done(c->api, st, err, errstr, r)) {
        return;
    }
    if (!res) {
        api_error(r, 404, "no resource \"%s\"", id);
        return;
    }
    r->status = 200;
    api_json_resource_detail(&r->body, res);
    vg_buf_putc(&r->body, '\n');
    vg_resource_destroy(res);
}

static void get_history(struct api_ctx *c, struct api_resp *r, const char *id)
{
    static const char *const allowed[] = {"limit", NULL};
    struct vg_history_entry *v = NULL;
    struct vg_resource *res = NULL;
    struct vg_state *st;
    char errstr[512];
    size_t n = 0;
    int64_t limit;
    vg_err_t err;

    if (!args_ok(c, r, allowed) ||
        !int_arg(c, r, "limit", API_HISTORY_DEFAULT, 1, API_HISTORY_MAX, &limit) ||
        !api_state_get(c->api, &st, r)) {
        return;
    }
    err = vg_state_get(st, id, &res, errstr, sizeof(errstr));
    if (!err && res) {
        err = vg_state_history(st, id, (size_t)limit, &v, &n, errstr, sizeof(errstr));
    }
    if (!api_state_done(c->api, st, err, errstr, r)) {
        vg_resource_destroy(res);
        return;
    }
    if (!res) {
        api_error(r, 404, "no resource \"%s\"", id);
        return;
    }
    r->status = 200;
    vg_buf_puts(&r->body, "{\"resource\": ");
    vg_json_append_string(&r->body, id);
    vg_buf_puts(&r->body, ", \"items\": [");
    for (size_t i = 0; i < n; i++) {
        item_next(r, i);
        api_json_history_entry(&r->body, &v[i]);
    }
    vg_buf_puts(&r->body, n ? "\n]}\n" : "]}\n");
    vg_history_free(v, n);
    vg_resource_destroy(res);
}

/* ---- incidents ------------------------------------------------------------------ */

static void list_incidents(struct api_ctx *c, struct api_resp *r)
{
    static const char *const allowed[] = {"status", "resource", "limit", NULL};
    static const char *const statuses[] = {"all", "firing", "resolved", "stale", "deleted", NULL};
    const char *status = api_arg(c, "status");
    const char *resource = api_arg(c, "resource");
    struct vg_incident_query q = {0};
    struct vg_incident_record *v = NULL;
    struct vg_state *st;
    char errstr[512];
    int64_t now = vg_now_ms();
    size_t n = 0;
    int64_t limit;
    bool known = false;
    vg_err_t err;

    if (!args_ok(c, r, allowed) ||
        !int_arg(c, r, "limit", API_MAX_LIMIT, 1, 10 * API_MAX_LIMIT, &limit)) {
        return;
    }
    status = status ? status : "all";
    for (size_t i = 0; statuses[i]; i++) {
        known |= !strcmp(statuses[i], status);
    }
    if (!known) {
        api_error(r, 400, "status: expected firing, resolved, stale, deleted or all, got \"%s\"",
                  status);
        return;
    }
    if (!api_state_get(c->api, &st, r)) {
        return;
    }
    /* A page from the indexes: the cost follows `limit`, not the records kept. */
    q.status = status;
    q.resource = resource;
    q.limit = (size_t)limit;
    err = vg_state_incidents_page(st, &q, &v, &n, errstr, sizeof(errstr));
    if (!api_state_done(c->api, st, err, errstr, r)) {
        return;
    }
    items_begin(r);
    for (size_t i = 0; i < n; i++) {
        item_next(r, i);
        api_json_incident(&r->body, &v[i], now);
    }
    items_end(r, n);
    vg_incident_records_free(v, n);
}

vg_err_t api_collect_incidents(struct vg_api *api, struct vg_state *st, char *errstr,
                               size_t errstr_size)
{
    struct vg_incident_count *v = NULL;
    size_t n = 0;
    /* Counts kept by the commits themselves: one HGETALL, however many incidents are on record. */
    vg_err_t err = vg_state_incidents_firing_counts(st, &v, &n, errstr, errstr_size);

    if (err) {
        return err;
    }
    vg_metrics_clear(api->metrics, VG_M_INCIDENTS_FIRING);
    for (size_t i = 0; i < n; i++) {
        vg_metrics_set(api->metrics, VG_M_INCIDENTS_FIRING,
                       (const char *const[]){v[i].monitor, v[i].severity}, (double)v[i].firing);
    }
    vg_incident_counts_free(v, n);
    return VG_OK;
}

/* ---- silences ---------------------------------------------------------------------- */

static void list_silences(struct api_ctx *c, struct api_resp *r)
{
    static const char *const allowed[] = {NULL};
    struct vg_silence *v = NULL;
    struct vg_state *st;
    char errstr[512];
    int64_t now = vg_now_ms();
    size_t n = 0;
    vg_err_t err;

    if (!args_ok(c, r, allowed) || !api_state_get(c->api, &st, r)) {
        return;
    }
    err = vg_state_silences_list(st, &v, &n, errstr, sizeof(errstr));
    if (!api_state_done(c->api, st, err, errstr, r)) {
        return;
    }
    items_begin(r);
    for (size_t i = 0; i < n; i++) {
        item_next(r, i);
        api_json_silence(&r->body, &v[i], now);
    }
    items_end(r, n);
    vg_silences_free(v, n);
}

/* 16 random hex characters. */
static void random_id(char out[17])
{
    unsigned char raw[8] = {0};
    FILE *fp = fopen("/dev/urandom", "rb");
    int64_t now = vg_now_ms();

    if (!fp || fread(raw, 1, sizeof(raw), fp) != sizeof(raw)) {
        memcpy(raw, &now, sizeof(raw)); /* no /dev/urandom: unique enough, ids are not secrets */
    }
    if (fp) {
        fclose(fp);
    }
    for (int i = 0; i < 8; i++) {
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    }
}

static void create_silence(struct api_ctx *c, struct api_resp *r)
{
    static const char *const allowed[] = {NULL};
    struct vg_buf why = {0};
    struct vg_silence s;
    struct vg_state *st;
    char errstr[512];
    char id[17];
    vg_err_t err;

    if (!args_ok(c, r, allowed) || !api_authorized(c, r)) {
        return;
    }
    if (!api_silence_parse(c->body, c->body_len, vg_now_ms(), &s, &why)) {
        api_error(r, 400, "%s", why.data);
        vg_buf_fini(&why);
        vg_silence_fini(&s);
        return;
    }
    random_id(id);
    s.id = vg_strdup(id);
    if (!api_state_get(c->api, &st, r)) {
        vg_silence_fini(&s);
        return;
    }
    err = vg_state_silence_add(st, &s, errstr, sizeof(errstr));
    if (api_state_done(c->api, st, err, errstr, r)) {
        VG_LOG_INFO("api", "silence %s created by %s (%zu matchers)", s.id, s.created_by,
                    s.n_matchers);
        r->status = 201;
        api_json_silence(&r->body, &s, vg_now_ms());
        vg_buf_putc(&r->body, '\n');
    }
    vg_silence_fini(&s);
}

static void delete_silence(struct api_ctx *c, struct api_resp *r, const char *id)
{
    static const char *const allowed[] = {"id", NULL};
    struct vg_state *st;
    char errstr[512];
    bool found = false;
    vg_err_t err;

    if (!args_ok(c, r, allowed) || !api_authorized(c, r)) {
        return;
    }
    id = id ? id : api_arg(c, "id");
    if (!id) {
        api_error(r, 400, "which silence? DELETE /api/v1/silences/{id}");
        return;
    }
    if (!api_state_get(c->api, &st, r)) {
        return;
    }
    err = vg_state_silence_expire(st, id, vg_now_ms(), &found, errstr, sizeof(errstr));
    if (!api_state_done(c->api, st, err, errstr, r)) {
        return;
    }
    if (!found) {
        api_error(r, 404, "no silence \"%s\"", id);
    } else {
        VG_LOG_INFO("api", "silence %s expired", id);
        r->status = 200;
        vg_buf_puts(&r->body, "{\"id\": ");
        vg_json_append_string(&r->body, id);
        vg_buf_puts(&r->body, ", \"status\": \"expired\"}\n");
    }
}

/* ---- the dead-letter stream ---------------------------------------------------------- */

static void list_dlq(struct api_ctx *c, struct api_resp *r)
{
    static const char *const allowed[] = {"limit", NULL};
    struct vg_dead_entry *v = NULL;
    struct vg_state *st;
    char errstr[512];
    size_t n = 0;
    int64_t limit;
    vg_err_t err;

    if (!args_ok(c, r, allowed) ||
        !int_arg(c, r, "limit", API_DEFAULT_LIMIT, 1, API_MAX_LIMIT, &limit) ||
        !api_state_get(c->api, &st, r)) {
        return;
    }
    err = vg_state_dlq_list(st, (size_t)limit, &v, &n, errstr, sizeof(errstr));
    if (!api_state_done(c->api, st, err, errstr, r)) {
        return;
    }
    items_begin(r);
    for (size_t i = 0; i < n; i++) {
        const struct vg_dead_entry *e = &v[i];
        item_next(r, i);
        vg_buf_putc(&r->body, '{');
        api_json_kv(&r->body, "stream_id", e->stream_id, true);
        api_json_kv(&r->body, "id", e->id, false);
        api_json_kv(&r->body, "sink", e->sink, false);
        api_json_kv(&r->body, "pager", e->pager, false);
        api_json_kv(&r->body, "reason", e->reason, false);
        vg_buf_printf(&r->body, ", \"status\": %ld, \"attempts\": %d", e->status, e->attempts);
        api_json_kt(&r->body, "failed_at", e->failed_at_ms);
        api_json_kv(&r->body, "origin", e->origin && e->origin[0] ? e->origin : NULL, false);
        api_json_kv(&r->body, "response", e->response, false);
        api_json_kv(&r->body, "body", e->body, false);
        vg_buf_putc(&r->body, '}');
    }
    items_end(r, n);
    vg_dead_entries_free(v, n);
}

static void retry_dlq(struct api_ctx *c, struct api_resp *r, const char *id)
{
    static const char *const allowed[] = {NULL};
    struct vg_state *st;
    char errstr[512];
    size_t done = 0;
    vg_err_t err;

    if (!args_ok(c, r, allowed) || !api_authorized(c, r) || !api_state_get(c->api, &st, r)) {
        return;
    }
    err = vg_state_dlq_retry(st, id, &done, errstr, sizeof(errstr));
    if (!api_state_done(c->api, st, err, errstr, r)) {
        return;
    }
    if (done == 0) {
        api_error(r, 404, "no dead-letter entry \"%s\"", id);
    } else {
        VG_LOG_INFO("api", "dead-letter %s queued again (%zu entries)", id, done);
        r->status = 200;
        vg_buf_puts(&r->body, "{\"id\": ");
        vg_json_append_string(&r->body, id);
        vg_buf_printf(&r->body, ", \"retried\": %zu}\n", done);
    }
}

/* ---- rules ------------------------------------------------------------------------------ */

static void get_rules(struct api_ctx *c, struct api_resp *r)
{
    static const char *const allowed[] = {NULL};
    char *json;

    if (!args_ok(c, r, allowed)) {
        return;
    }
    json = c->api->hooks.rules_json ? c->api->hooks.rules_json(c->api->hooks.opaque) : NULL;
    if (!json) {
        api_error(r, 501, "the rules listing is not available in this build");
        return;
    }
    r->status = 200;
    vg_buf_puts(&r->body, json);
    free(json);
}

/* ---- routing ---------------------------------------------------------------------------- */

/*
 * The request's method is one of `methods` ("GET" or "GET, POST, DELETE"; HEAD
 * counts as GET); else r is a 405 with the Allow header.
 */
static bool only(struct api_ctx *c, struct api_resp *r, const char *methods)
{
    const char *m = !strcmp(c->method, "HEAD") ? "GET" : c->method;
    size_t ml = strlen(m);

    for (const char *p = methods; *p;) {
        size_t tl = strcspn(p, ", ");
        if (tl == ml && !strncmp(p, m, ml)) {
            return true;
        }
        p += tl;
        p += strspn(p, ", ");
    }
    api_error(r, 405, "%s %s: method not allowed (allowed: %s)", c->method, c->path, methods);
    r->allow = !strcmp(methods, "GET")                 ? "GET, HEAD"
               : !strcmp(methods, "GET, POST, DELETE") ? "GET, HEAD, POST, DELETE"
                                                       : methods;
    return false;
}

void api_v1(struct api_ctx *c, struct api_resp *r, const char *sub)
{
    size_t len = strlen(sub);

    if (!strcmp(sub, "/resources")) {
        if (only(c, r, "GET")) {
            list_resources(c, r);
        }
    } else if (!strncmp(sub, "/resources/", 11) && len > 11) {
        const char *id = sub + 11;
        size_t il = strlen(id);
        if (il > 8 && !strcmp(id + il - 8, "/history")) {
            char *rid = vg_strndup(id, il - 8);
            if (only(c, r, "GET")) {
                get_history(c, r, rid);
            }
            free(rid);
        } else if (only(c, r, "GET")) {
            get_resource(c, r, id);
        }
    } else if (!strcmp(sub, "/incidents")) {
        if (only(c, r, "GET")) {
            list_incidents(c, r);
        }
    } else if (!strcmp(sub, "/silences")) {
        if (!only(c, r, "GET, POST, DELETE")) {
            return;
        }
        if (!strcmp(c->method, "POST")) {
            create_silence(c, r);
        } else if (!strcmp(c->method, "DELETE")) {
            delete_silence(c, r, NULL);
        } else {
            list_silences(c, r);
        }
    } else if (!strncmp(sub, "/silences/", 10) && len > 10) {
        if (only(c, r, "DELETE")) {
            delete_silence(c, r, sub + 10);
        }
    } else if (!strcmp(sub, "/dlq")) {
        if (only(c, r, "GET")) {
            list_dlq(c, r);
        }
    } else if (!strncmp(sub, "/dlq/", 5) && len > 11 && !strcmp(sub + len - 6, "/retry")) {
        char *id = vg_strndup(sub + 5, len - 11);
        if (only(c, r, "POST")) {
            retry_dlq(c, r, id);
        }
        free(id);
    } else if (!strcmp(sub, "/rules")) {
        if (only(c, r, "GET")) {
            get_rules(c, r);
        }
    } else if (!strcmp(sub, "/stream")) {
        if (only(c, r, "GET")) {
            api_stream_open(c, r);
        }
    } else {
        api_error(r, 404, "not found: /api/v1%s", sub);
    }
}
