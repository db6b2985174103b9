/*
 * The web console: server-rendered HTML (readable without JavaScript) for
 * the Resources table, a Resource's page and the Incidents page, plus the
 * static assets compiled into the binary (api/console/, console_assets.c).
 * api/console/app.js then filters, searches and updates the page live from
 * the event stream. No inline script or style: the CSP forbids both.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api_int.h"
#include "vigil/util.h"

#define CONSOLE_PAGE_ROWS 500

void api_html(struct vg_buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            vg_buf_puts(b, "&amp;");
            break;
        case '<':
            vg_buf_puts(b, "&lt;");
            break;
        case '>':
            vg_buf_puts(b, "&gt;");
            break;
        case '"':
            vg_buf_puts(b, "&quot;");
            break;
        case '\'':
            vg_buf_puts(b, "&#39;");
            break;
        default:
            vg_buf_putc(b, *s);
        }
    }
}

/* Percent-encode for a URL path segment or query value. */
static void url_part(struct vg_buf *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~:", ch)) {
            vg_buf_putc(b, (char)ch);
        } else {
            vg_buf_printf(b, "%%%02X", ch);
        }
    }
}

/* kubectl's ages: 45s, 5m30s, 3h5m, 2d3h, 400d. */
static void age(int64_t ms, char *out, size_t size)
{
    int64_t s = ms / 1000;

    if (s < 0) {
        s = 0;
    }
    if (s < 120) {
        snprintf(out, size, "%" PRId64 "s", s);
    } else if (s < 600) {
        snprintf(out, size, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    } else if (s < 3 * 3600) {
        snprintf(out, size, "%" PRId64 "m", s / 60);
    } else if (s < 48 * 3600) {
        snprintf(out, size, "%" PRId64 "h%" PRId64 "m", s / 3600, (s % 3600) / 60);
    } else if (s < 8 * 86400) {
        snprintf(out, size, "%" PRId64 "d%" PRId64 "h", s / 86400, (s % 86400) / 3600);
    } else {
        snprintf(out, size, "%" PRId64 "d", s / 86400);
    }
}

/* <time datetime=... data-ms=...>age</time>, or an empty string for 0. */
static void time_cell(struct vg_buf *b, int64_t ms, int64_t now)
{
    char ts[40];
    char a[32];

    if (ms <= 0) {
        return;
    }
    api_time(ms, ts, sizeof(ts));
    age(now - ms, a, sizeof(a));
    vg_buf_printf(b, "<time datetime=\"%s\" data-ms=\"%" PRId64 "\" title=\"%s\">%s</time>", ts, ms,
                  ts, a);
}

/* A coloured badge: class v-<value> picks the colour (style.css). */
static void badge(struct vg_buf *b, const char *value)
{
    if (!value || !value[0]) {
        vg_buf_puts(b, "<span class=\"badge v-none\">-</span>");
        return;
    }
    vg_buf_puts(b, "<span class=\"badge v-");
    for (const char *p = value; *p; p++) {
        char ch = *p;
        vg_buf_putc(b, (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ? ch : '_');
    }
    vg_buf_puts(b, "\">");
    api_html(b, value);
    vg_buf_puts(b, "</span>");
}

static void page_start(struct vg_buf *b, const char *title, const char *page)
{
    vg_buf_puts(b, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                   "<title>");
    api_html(b, title);
    vg_buf_puts(b, " · vigil</title>\n"
                   "<link rel=\"icon\" href=\"/console/favicon.svg\" type=\"image/svg+xml\">\n"
                   "<link rel=\"stylesheet\" href=\"/console/style.css\">\n"
                   "<script src=\"/console/app.js\" defer></script>\n</head>\n");
    vg_buf_printf(b, "<body data-page=\"%s\">\n", page);
    vg_buf_puts(b, "<a class=\"skip\" href=\"#main\">Skip to content</a>\n"
                   "<header class=\"top\"><a class=\"brand\" href=\"/\">vigil</a>\n"
                   "<nav aria-label=\"Main\">");
    vg_buf_printf(b, "<a href=\"/\"%s>Resources</a><a href=\"/incidents\"%s>Incidents</a>",
                  !strcmp(page, "incidents") ? "" : " aria-current=\"page\"",
                  !strcmp(page, "incidents") ? " aria-current=\"page\"" : "");
    vg_buf_puts(b, "</nav>\n<span id=\"live\" class=\"live\" role=\"status\" "
                   "aria-live=\"polite\"></span></header>\n<main id=\"main\">\n");
}

static void page_end(struct vg_buf *b)
{
    vg_buf_puts(b, "</main>\n</body>\n</html>\n");
}

static void html_ok(struct api_resp *r)
{
    r->status = 200;
    r->html = true;
    r->ctype = "text/html; charset=utf-8";
}

/* A console page that cannot be shown: the error in the page layout. */
static void html_error(struct api_resp *r, unsigned status, const char *title, const char *msg)
{
    vg_buf_reset(&r->body);
    page_start(&r->body, title, "error");
    vg_buf_puts(&r->body, "<h1>");
    api_html(&r->body, title);
    vg_buf_puts(&r->body, "</h1>\n<p class=\"error\">");
    api_html(&r->body, msg);
    vg_buf_puts(&r->body, "</p>\n<p><a href=\"/\">Back to Resources</a></p>\n");
    page_end(&r->body);
    html_ok(r);
    r->status = status;
}

/* The error message of an api_resp holding {"error": "..."}: shown in HTML. */
static const char *json_error_text(struct api_resp *r)
{
    char *p = r->body.data ? strstr(r->body.data, "\"error\": \"") : NULL;
    char *end;

    if (!p) {
        return "error";
    }
    p += 10;
    end = strrchr(p, '"');
    if (end) {
        *end = '\0';
    }
    return p;
}

/* ---- resources ---------------------------------------------------------------- */

static void resource_row(struct vg_buf *b, const struct vg_resource *res, int64_t now)
{
    const char *h = api_health_name(res->health);

    vg_buf_puts(b, "<tr data-id=\"");
    api_html(b, res->id);
    vg_buf_printf(
        b, "\" class=\"h-%s\"><td data-label=\"NAME\" class=\"name\"><a href=\"/resources/", h);
    url_part(b, res->id);
    vg_buf_puts(b, "\">");
    api_html(b, res->name);
    vg_buf_puts(b, "</a></td><td data-label=\"VERSION\">");
    api_html(b, res->version);
    vg_buf_puts(b, "</td><td data-label=\"TYPE\">");
    api_html(b, res->type);
    vg_buf_puts(b, "</td><td data-label=\"WORKSPACE\">");
    api_html(b, res->workspace);
    vg_buf_puts(b, "</td><td data-label=\"STATUS\" class=\"status\">");
    badge(b, res->status);
    vg_buf_puts(b, "</td><td data-label=\"RUNTIME\" class=\"runtime\">");
    badge(b, res->runtime);
    vg_buf_puts(b, "</td><td data-label=\"OWNER\">");
    api_html(b, res->owner);
    vg_buf_puts(b, "</td><td data-label=\"HEALTH\" class=\"health\">");
    badge(b, h);
    vg_buf_puts(b, "</td><td data-label=\"SINCE\" class=\"since\">");
    time_cell(b, api_since_ms(res), now);
    vg_buf_puts(b, "</td></tr>\n");
}

/* <select name=...> of the distinct values in v (already sorted by name, so collect). */
static void select_of(struct vg_buf *b, const char *label, const char *name, struct vg_resource **v,
                      size_t n, size_t offset, const char *current)
{
    struct vg_map *seen = vg_map_new();
    const char **vals = NULL;
    size_t nv = 0;
    size_t cap = 0;

    for (size_t i = 0; i < n; i++) {
        const char *val = *(const char *const *)((const char *)v[i] + offset);
        if (val && val[0] && !vg_map_get(seen, val)) {
            vg_map_put(seen, val, (void *)1);
            *VG_ARRAY_PUSH(vals, nv, cap) = val;
        }
    }
    if (current && !vg_map_get(seen, current)) {
        *VG_ARRAY_PUSH(vals, nv, cap) = current;
    }
    /* insertion sort: a handful of values */
    for (size_t i = 1; i < nv; i++) {
        for (size_t j = i; j > 0 && strcmp(vals[j - 1], vals[j]) > 0; j--) {
            const char *t = vals[j];
            vals[j] = vals[j - 1];
            vals[j - 1] = t;
        }
    }
    vg_buf_printf(b, "<label>%s <select name=\"%s\" id=\"f-%s\"><option value=\"\">all</option>",
                  label, name, name);
    for (size_t i = 0; i < nv; i++) {
        vg_buf_puts(b, "<option");
        if (current && !strcmp(current, vals[i])) {
            vg_buf_puts(b, " selected");
        }
        vg_buf_puts(b, ">");
        api_html(b, vals[i]);
        vg_buf_puts(b, "</option>");
    }
    vg_buf_puts(b, "</select></label>\n");
    free(vals);
    vg_map_destroy(seen, NULL);
}

static void query_link(struct vg_buf *b, struct api_ctx *c, const char *health)
{
    static const char *const keep[] = {"type", "workspace", "q"};
    bool first = true;

    vg_buf_putc(b, '/');
    for (size_t i = 0; i < VG_ARRAY_LEN(keep); i++) {
        const char *v = api_arg(c, keep[i]);
        if (v) {
            vg_buf_printf(b, "%c%s=", first ? '?' : '&', keep[i]);
            url_part(b, v);
            first = false;
        }
    }
    if (health) {
        vg_buf_printf(b, "%chealth=%s", first ? '?' : '&', health);
    }
}

static void resources_page(struct api_ctx *c, struct api_resp *r)
{
    static const char *const healths[] = {"healthy", "progressing", "unhealthy", "unknown"};
    const char *health = api_arg(c, "health");
    const char *q = api_arg(c, "q");
    struct vg_resource **v = NULL;
    struct vg_resource **all = NULL;
    size_t counts[4] = {0, 0, 0, 0};
    struct vg_buf *b = &r->body;
    int64_t now = vg_now_ms();
    size_t n = 0;
    size_t n_all = 0;
    size_t shown = 0;
    bool more = false;

    if (!api_health_filter_ok(health)) {
        html_error(r, 400, "Resources",
                   "health: expected healthy, progressing, unhealthy or unknown");
        return;
    }
    if (!api_query_resources(c, r, true, &v, &n)) {
        html_error(r, r->status, "Resources", json_error_text(r));
        return;
    }
    {
        /* The filter menus offer every type and workspace, not only those of the matches. */
        struct api_resp tmp = {0};
        struct vg_state *st;
        char errstr[256];
        if (api_state_get(c->api, &st, &tmp)) {
            vg_err_t err = vg_state_list(st, NULL, &all, &n_all, errstr, sizeof(errstr));
            api_state_put(c->api, st, err);
        }
        vg_buf_fini(&tmp.body);
    }
    for (size_t i = 0; i < n; i++) {
        counts[v[i]->health]++;
    }
    vg_buf_reset(b);
    page_start(b, "Resources", "resources");
    vg_buf_puts(b, "<h1>Resources</h1>\n<ul class=\"counts\" id=\"counts\" aria-label=\"Resources "
                   "by health\">\n");
    for (size_t i = 0; i < VG_ARRAY_LEN(healths); i++) {
        size_t idx = i == 3 ? VG_HEALTH_UNKNOWN : i + 1;
        vg_buf_printf(b, "<li><a class=\"count h-%s\" data-health=\"%s\" href=\"", healths[i],
                      healths[i]);
        query_link(b, c, health && !strcmp(health, healths[i]) ? NULL : healths[i]);
        vg_buf_printf(b, "\"%s><b>%zu</b> %s</a></li>\n",
                      health && !strcmp(health, healths[i]) ? " aria-current=\"true\"" : "",
                      counts[idx], healths[i]);
    }
    vg_buf_puts(b, "</ul>\n<form class=\"filters\" id=\"filters\" method=\"get\" action=\"/\" "
                   "role=\"search\">\n<label>Search <input type=\"search\" name=\"q\" id=\"q\" "
                   "placeholder=\"name\" autocomplete=\"off\" value=\"");
    api_html(b, q);
    vg_buf_puts(b, "\"></label>\n");
    select_of(b, "Type", "type", all, n_all, offsetof(struct vg_resource, type),
              api_arg(c, "type"));
    select_of(b, "Workspace", "workspace", all, n_all, offsetof(struct vg_resource, workspace),
              api_arg(c, "workspace"));
    vg_buf_puts(b, "<label>Health <select name=\"health\" id=\"f-health\"><option "
                   "value=\"\">all</option>");
    for (size_t i = 0; i < VG_ARRAY_LEN(healths); i++) {
        vg_buf_printf(b, "<option%s>%s</option>",
                      health && !strcmp(health, healths[i]) ? " selected" : "", healths[i]);
    }
    vg_buf_puts(b, "</select></label>\n<button type=\"submit\">Filter</button>\n</form>\n"
                   "<div class=\"table-wrap\"><table class=\"resources\" id=\"resources\">\n"
                   "<thead><tr><th scope=\"col\">NAME</th><th scope=\"col\">VERSION</th>"
                   "<th scope=\"col\">TYPE</th><th scope=\"col\">WORKSPACE</th>"
                   "<th scope=\"col\">STATUS</th><th scope=\"col\">RUNTIME</th>"
                   "<th scope=\"col\">OWNER</th><th scope=\"col\">HEALTH</th>"
                   "<th scope=\"col\">SINCE</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < n; i++) {
        if (!api_health_matches(v[i], health)) {
            continue;
        }
        if (shown == CONSOLE_PAGE_ROWS) {
            more = true;
            break;
        }
        resource_row(b, v[i], now);
        shown++;
    }
    vg_buf_printf(b,
                  "</tbody>\n</table></div>\n<p class=\"empty\" id=\"empty\"%s>No resources "
                  "match.</p>\n",
                  shown ? " hidden" : "");
    if (more) {
        vg_buf_printf(b,
                      "<p class=\"more\">Showing the first %d; narrow the search to see the "
                      "rest.</p>\n",
                      CONSOLE_PAGE_ROWS);
    }
    page_end(b);
    html_ok(r);
    vg_resources_free(v, n);
    vg_resources_free(all, n_all);
}

/* ---- one resource --------------------------------------------------------------------- */

static void kv_row(struct vg_buf *b, const char *k, const char *v)
{
    vg_buf_puts(b, "<dt>");
    api_html(b, k);
    vg_buf_puts(b, "</dt><dd>");
    api_html(b, v && v[0] ? v : "-");
    vg_buf_puts(b, "</dd>\n");
}

static void state_card(struct vg_buf *b, const char *title, const char *cls, const char *value,
                       int64_t since, int64_t now)
{
    vg_buf_printf(b, "<div class=\"card\" id=\"card-%s\"><h2>%s</h2>", cls, title);
    badge(b, value);
    if (since > 0) {
        vg_buf_puts(b, "<p>since ");
        time_cell(b, since, now);
        vg_buf_puts(b, "</p>");
    }
    vg_buf_puts(b, "</div>\n");
}

static void timeline(struct vg_buf *b, const struct vg_history_entry *v, size_t n)
{
    vg_buf_puts(b, "<ol class=\"timeline\" id=\"timeline\" reversed>\n");
    for (size_t i = n; i-- > 0;) {
        const struct vg_history_entry *e = &v[i];
        char ts[40];

        api_time(e->at_ms, ts, sizeof(ts));
        vg_buf_printf(b, "<li class=\"%s\"><time datetime=\"%s\">%s</time> ",
                      e->field ? "t-transition" : "t-log", ts, ts[0] ? ts : "-");
        if (e->field) {
            vg_buf_puts(b, "<span class=\"field\">");
            api_html(b, e->field);
            vg_buf_puts(b, "</span> ");
            badge(b, e->from && e->from[0] ? e->from : NULL);
            vg_buf_puts(b, " <span aria-label=\"to\">→</span> ");
            badge(b, e->to);
        } else {
            vg_buf_puts(b, "<span class=\"field\">log</span>");
        }
        for (size_t k = 0; k < e->n_extra; k++) {
            const char *key = e->extra[2 * k];
            if (!strcmp(key, "reason") || !strcmp(key, "pod") || !strcmp(key, "late") ||
                !strcmp(key, "type")) {
                vg_buf_puts(b, " <span class=\"extra\">");
                api_html(b, key);
                vg_buf_puts(b, "=");
                api_html(b, e->extra[2 * k + 1]);
                vg_buf_puts(b, "</span>");
            }
        }
        if (e->message) {
            vg_buf_puts(b, " <span class=\"message\">");
            api_html(b, e->message);
            vg_buf_puts(b, "</span>");
        }
        vg_buf_puts(b, "</li>\n");
    }
    vg_buf_puts(b, "</ol>\n");
    if (n == 0) {
        vg_buf_puts(b, "<p class=\"empty\">No history yet.</p>\n");
    }
}

/* What the Resource page shows, read with one lent state handle. */
struct resource_view {
    struct vg_resource *res;
    struct vg_history_entry *hist;
    size_t n_hist;
    struct vg_incident_record *incs;
    size_t n_incs;
};

static void resource_view_fini(struct resource_view *v)
{
    vg_history_free(v->hist, v->n_hist);
    vg_incident_records_free(v->incs, v->n_incs);
    vg_resource_destroy(v->res);
}

/* Read the Resource, its history and its incidents (answering an error page on failure). */
static bool resource_load(struct api_ctx *c, struct api_resp *r, const char *id,
                          struct resource_view *v)
{
    struct vg_incident_query q = {.resource = id, .limit = API_HISTORY_DEFAULT};
    struct vg_state *st;
    char errstr[512];
    vg_err_t err;

    if (!api_state_get(c->api, &st, r)) {
        html_error(r, r->status, "Resource", json_error_text(r));
        return false;
    }
    err = vg_state_get(st, id, &v->res, errstr, sizeof(errstr));
    if (!err && v->res) {
        err = vg_state_history(st, id, API_HISTORY_DEFAULT, &v->hist, &v->n_hist, errstr,
                               sizeof(errstr));
    }
    /* Incidents are a nice-to-have here: a failure leaves the section empty. */
    if (!err && v->res &&
        vg_state_incidents_page(st, &q, &v->incs, &v->n_incs, errstr, sizeof(errstr)) != VG_OK) {
        v->incs = NULL;
        v->n_incs = 0;
    }
    if (!api_state_done(c->api, st, err, errstr, r)) {
        html_error(r, r->status, "Resource", json_error_text(r));
        return false;
    }
    if (!v->res) {
        char *msg = vg_asprintf("No resource \"%s\".", id);

        html_error(r, 404, "Resource not found", msg);
        free(msg);
        return false;
    }
    return true;
}

/* The breadcrumbs, the title and the three state cards. */
static void resource_header(struct vg_buf *b, const struct vg_resource *res, int64_t now)
{
    vg_buf_puts(b, "<nav class=\"crumbs\" aria-label=\"Breadcrumb\"><a href=\"/\">Resources</a> "
                   "› <span>");
    api_html(b, res->name);
    vg_buf_puts(b, "</span></nav>\n<h1 id=\"resource\" data-id=\"");
    api_html(b, res->id);
    vg_buf_puts(b, "\">");
    api_html(b, res->name);
    vg_buf_puts(b, " <small>");
    api_html(b, res->type);
    vg_buf_puts(b, " · ");
    api_html(b, res->workspace);
    vg_buf_puts(b, " · ");
    api_html(b, res->version);
    vg_buf_puts(b, "</small></h1>\n<section class=\"cards\" aria-label=\"Current state\">\n");
    state_card(b, "Status", "status", res->status, res->status_since_ms, now);
    state_card(b, "Runtime", "runtime", res->runtime, res->runtime_since_ms, now);
    state_card(b, "Health", "health", api_health_name(res->health), res->health_since_ms, now);
    vg_buf_puts(b, "</section>\n");
}

/* Identity, labels and where the last change came from. */
static void resource_identity(struct vg_buf *b, const struct vg_resource *res)
{
    char pos[128] = "";
    char ts[40];

    vg_buf_puts(b, "<section><h2>Identity</h2>\n<dl class=\"kv\">\n");
    kv_row(b, "Id", res->id);
    kv_row(b, "Name", res->name);
    kv_row(b, "Type", res->type);
    kv_row(b, "Workspace", res->workspace);
    kv_row(b, "Version", res->version);
    kv_row(b, "Owner", res->owner);
    api_time(res->updated_at_ms, ts, sizeof(ts));
    kv_row(b, "Updated", ts);
    kv_row(b, "Message", res->message);
    if (res->runtime_reason) {
        kv_row(b, "Runtime reason", res->runtime_reason);
    }
    if (res->pos.topic) {
        snprintf(pos, sizeof(pos), "%s / %d / %" PRId64, res->pos.topic, (int)res->pos.partition,
                 res->pos.offset);
    }
    kv_row(b, "Kafka", pos);
    for (size_t i = 0; i < res->n_labels; i++) {
        char *k = vg_asprintf("label %s", res->labels[i].key);

        kv_row(b, k, res->labels[i].value);
        free(k);
    }
    vg_buf_puts(b, "</dl></section>\n");
}

static void pod_row(struct vg_buf *b, const struct vg_pod *pod, int64_t now)
{
    size_t ready = 0;
    size_t total = 0;

    for (size_t k = 0; k < pod->n_containers; k++) {
        if (!pod->containers[k].init) {
            total++;
            ready += pod->containers[k].ready;
        }
    }
    vg_buf_puts(b, "<tr><td data-label=\"NAME\">");
    api_html(b, pod->name);
    vg_buf_puts(b, "</td><td data-label=\"PHASE\">");
    badge(b, pod->phase[0] ? pod->phase : NULL);
    vg_buf_printf(b,
                  "</td><td data-label=\"READY\">%zu/%zu</td><td "
                  "data-label=\"RESTARTS\">%d</td><td data-label=\"REASON\">",
                  ready, total, (int)pod->restarts);
    api_html(b, pod->reason);
    vg_buf_puts(b, "</td><td data-label=\"LAST TRANSITION\">");
    time_cell(b, pod->last_transition_ms, now);
    vg_buf_puts(b, "</td></tr>\n");
}

static void resource_pods(struct vg_buf *b, const struct vg_resource *res, int64_t now)
{
    vg_buf_puts(b, "<section><h2>Pods</h2>\n");
    if (res->n_pods == 0) {
        vg_buf_puts(b, "<p class=\"empty\">No pods.</p>\n</section>\n");
        return;
    }
    vg_buf_puts(b, "<div class=\"table-wrap\"><table class=\"pods\"><thead><tr>"
                   "<th scope=\"col\">NAME</th><th scope=\"col\">PHASE</th>"
                   "<th scope=\"col\">READY</th><th scope=\"col\">RESTARTS</th>"
                   "<th scope=\"col\">REASON</th><th scope=\"col\">LAST TRANSITION</th>"
                   "</tr></thead><tbody>\n");
    for (size_t i = 0; i < res->n_pods; i++) {
        pod_row(b, &res->pods[i], now);
    }
    vg_buf_puts(b, "</tbody></table></div>\n</section>\n");
}

static void resource_incidents(struct vg_buf *b, const struct resource_view *v, int64_t now)
{
    size_t shown = 0;

    vg_buf_puts(b, "<section><h2>Incidents</h2>\n");
    for (size_t i = 0; i < v->n_incs; i++) {
        const struct vg_incident_record *inc = &v->incs[i];

        if (!inc->resource || strcmp(inc->resource, v->res->id) != 0) {
            continue;
        }
        if (shown++ == 0) {
            vg_buf_puts(b, "<div class=\"table-wrap\"><table class=\"incidents\" "
                           "id=\"res-incidents\"><thead><tr><th scope=\"col\">SEVERITY</th><th "
                           "scope=\"col\">MONITOR</th><th scope=\"col\">STATUS</th><th "
                           "scope=\"col\">STARTED</th><th scope=\"col\">SUMMARY</th></tr></thead>"
                           "<tbody>\n");
        }
        vg_buf_puts(b, "<tr><td data-label=\"SEVERITY\">");
        badge(b, inc->severity);
        vg_buf_puts(b, "</td><td data-label=\"MONITOR\">");
        api_html(b, inc->monitor);
        vg_buf_puts(b, "</td><td data-label=\"STATUS\">");
        badge(b, inc->state);
        vg_buf_puts(b, "</td><td data-label=\"STARTED\">");
        time_cell(b, inc->started_at_ms, now);
        vg_buf_puts(b, "</td><td data-label=\"SUMMARY\">");
        api_html(b, inc->summary);
        vg_buf_puts(b, "</td></tr>\n");
    }
    vg_buf_puts(b, shown ? "</tbody></table></div>\n" : "<p class=\"empty\">No incidents.</p>\n");
    vg_buf_puts(b, "</section>\n");
}

/* GET /resources/ID: the Resource's state, identity, pods, incidents and timeline. */
static void resource_page(struct api_ctx *c, struct api_resp *r, const char *id)
{
    struct resource_view v = {0};
    struct vg_buf *b = &r->body;
    int64_t now = vg_now_ms();

    if (resource_load(c, r, id, &v)) {
        vg_buf_reset(b);
        page_start(b, v.res->name, "resource");
        resource_header(b, v.res, now);
        resource_identity(b, v.res);
        resource_pods(b, v.res, now);
        resource_incidents(b, &v, now);
        vg_buf_puts(b, "<section><h2>Timeline</h2>\n");
        timeline(b, v.hist, v.n_hist);
        vg_buf_puts(b, "</section>\n");
        page_end(b);
        html_ok(r);
    }
    resource_view_fini(&v);
}

/* ---- incidents ------------------------------------------------------------------------- */

static void incident_row(struct vg_buf *b, const struct vg_incident_record *inc, int64_t now,
                         bool firing)
{
    char dur[32];
    int64_t end = inc->ended_at_ms > 0 ? inc->ended_at_ms : now;

    age(end - inc->started_at_ms, dur, sizeof(dur));
    vg_buf_puts(b, "<tr data-id=\"");
    api_html(b, inc->id);
    vg_buf_puts(b, "\"><td data-label=\"SEVERITY\">");
    badge(b, inc->severity);
    vg_buf_puts(b, "</td><td data-label=\"MONITOR\">");
    api_html(b, inc->monitor);
    vg_buf_puts(b, "</td><td data-label=\"RESOURCE\"><a href=\"/resources/");
    url_part(b, inc->resource);
    vg_buf_puts(b, "\">");
    api_html(b, inc->resource);
    vg_buf_puts(b, "</a></td><td data-label=\"SUMMARY\">");
    api_html(b, inc->summary);
    vg_buf_puts(b, "</td><td data-label=\"STARTED\">");
    time_cell(b, inc->started_at_ms, now);
    vg_buf_printf(b, "</td><td data-label=\"DURATION\">%s</td>", dur);
    if (firing) {
        vg_buf_puts(b, "<td data-label=\"\"><button type=\"button\" class=\"silence\" "
                       "data-monitor=\"");
        api_html(b, inc->monitor);
        vg_buf_puts(b, "\" data-resource=\"");
        api_html(b, inc->resource);
        vg_buf_puts(b, "\">Silence…</button></td>");
    } else {
        vg_buf_puts(b, "<td data-label=\"STATUS\">");
        badge(b, inc->state);
        vg_buf_puts(b, "</td>");
    }
    vg_buf_puts(b, "</tr>\n");
}

static void incidents_page(struct api_ctx *c, struct api_resp *r)
{
    struct vg_incident_record *v = NULL;
    struct vg_buf *b = &r->body;
    struct vg_state *st;
    char errstr[512];
    int64_t now = vg_now_ms();
    size_t n = 0;
    size_t n_firing = 0;
    size_t n_ended = 0;
    vg_err_t err;

    if (!api_state_get(c->api, &st, r)) {
        html_error(r, r->status, "Incidents", json_error_text(r));
        return;
    }
    err = vg_state_incidents_list(st, 0, &v, &n, errstr, sizeof(errstr));
    if (!api_state_done(c->api, st, err, errstr, r)) {
        html_error(r, r->status, "Incidents", json_error_text(r));
        return;
    }
    vg_buf_reset(b);
    page_start(b, "Incidents", "incidents");
    vg_buf_puts(b, "<h1>Incidents</h1>\n<section aria-labelledby=\"h-firing\"><h2 "
                   "id=\"h-firing\">Firing</h2>\n<div class=\"table-wrap\"><table "
                   "class=\"incidents\" id=\"firing\"><thead><tr><th scope=\"col\">SEVERITY</th>"
                   "<th scope=\"col\">MONITOR</th><th scope=\"col\">RESOURCE</th><th "
                   "scope=\"col\">SUMMARY</th><th scope=\"col\">STARTED</th><th "
                   "scope=\"col\">DURATION</th><th scope=\"col\"><span "
                   "class=\"sr-only\">Actions</span></th></tr></thead><tbody>\n");
    for (size_t i = 0; i < n; i++) {
        if (v[i].state && !strcmp(v[i].state, "firing")) {
            incident_row(b, &v[i], now, true);
            n_firing++;
        }
    }
    vg_buf_printf(b,
                  "</tbody></table></div>\n<p class=\"empty\" id=\"firing-empty\"%s>Nothing "
                  "is firing.</p>\n</section>\n",
                  n_firing ? " hidden" : "");
    vg_buf_puts(b,
                "<section aria-labelledby=\"h-resolved\"><h2 id=\"h-resolved\">Recently "
                "resolved</h2>\n<div class=\"table-wrap\"><table class=\"incidents\" "
                "id=\"resolved\"><thead><tr><th scope=\"col\">SEVERITY</th><th "
                "scope=\"col\">MONITOR</th><th scope=\"col\">RESOURCE</th><th "
                "scope=\"col\">SUMMARY</th><th scope=\"col\">STARTED</th><th "
                "scope=\"col\">DURATION</th><th scope=\"col\">STATUS</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < n; i++) {
        if (v[i].state && strcmp(v[i].state, "firing") != 0 &&
            v[i].ended_at_ms >= now - API_RECENT_MS) {
            incident_row(b, &v[i], now, false);
            n_ended++;
        }
    }
    vg_buf_printf(b,
                  "</tbody></table></div>\n<p class=\"empty\" id=\"resolved-empty\"%s>None "
                  "in the last 24 hours.</p>\n</section>\n",
                  n_ended ? " hidden" : "");
    /* The silence form: shown by app.js in a dialog (it needs the token, sent as a header). */
    vg_buf_puts(b, "<dialog id=\"silence-dialog\" aria-labelledby=\"silence-title\">\n"
                   "<form method=\"dialog\" id=\"silence-form\">\n<h2 "
                   "id=\"silence-title\">Silence</h2>\n<p id=\"silence-what\"></p>\n"
                   "<label>Duration <select name=\"duration\"><option>30m</option><option "
                   "selected>2h</option><option>8h</option><option>1d</option></select>"
                   "</label>\n<label>Comment <input name=\"comment\" "
                   "autocomplete=\"off\"></label>\n<label>Token <input type=\"password\" "
                   "name=\"token\" required autocomplete=\"off\"></label>\n<p "
                   "class=\"error\" id=\"silence-error\" role=\"alert\"></p>\n<div "
                   "class=\"buttons\"><button value=\"cancel\" formnovalidate>Cancel</button>"
                   "<button value=\"ok\" id=\"silence-ok\">Silence</button></div>\n</form>\n"
                   "</dialog>\n");
    page_end(b);
    html_ok(r);
    vg_incident_records_free(v, n);
}

/* ---- routing ------------------------------------------------------------------------------ */

bool api_console(struct api_ctx *c, struct api_resp *r)
{
    const char *p = c->path;
    bool get = !strcmp(c->method, "GET") || !strcmp(c->method, "HEAD");

    for (size_t i = 0; i < api_n_assets; i++) {
        if (!strcmp(p, api_assets[i].path)) {
            if (!get) {
                api_error(r, 405, "%s: only GET", p);
                r->allow = "GET, HEAD";
                return true;
            }
            r->status = 200;
            r->ctype = api_assets[i].ctype;
            vg_buf_append(&r->body, (const char *)api_assets[i].data, api_assets[i].len);
            return true;
        }
    }
    if (strcmp(p, "/") != 0 && strcmp(p, "/incidents") != 0 && strncmp(p, "/resources/", 11)) {
        return false;
    }
    if (!get) {
        api_error(r, 405, "%s: only GET", p);
        r->allow = "GET, HEAD";
        return true;
    }
    if (!strcmp(p, "/")) {
        resources_page(c, r);
    } else if (!strcmp(p, "/incidents")) {
        incidents_page(c, r);
    } else if (p[11]) {
        resource_page(c, r, p + 11);
    } else {
        return false;
    }
    return true;
}
