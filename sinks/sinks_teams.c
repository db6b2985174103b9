/*
 * The Microsoft Teams sink: one Adaptive Card (schema 1.4) per notice,
 * posted as a "message" with one attachment to a Workflows (or legacy
 * incoming) webhook, with the Slack message's content: severity colour
 * (a container style: cards have no free colours), monitor, summary,
 * resource facts, transition, reason, since, a console link; a grouped
 * page lists its incidents. Teams refuses messages over 28 KB, so the card
 * is cut down (fewer listed incidents, shorter texts) until it fits.
 * Also the small helpers the Teams and email renderers share.
 * Sending, retries and Retry-After are sinks_http.c's.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sinks_int.h"
#include "vigil/util.h"

#define MAX_LISTED 25 /* a grouped card lists at most this many incidents */
#define TEXT_MAX 2000 /* bytes of one text, before the size limit asks for less */
#define TITLE_MAX 200 /* bytes of the card's title */

const char *sinks_status_color(const char *status, const char *severity)
{
    return sinks_look_of(status, severity)->color;
}

void sinks_status_word(char *dst, size_t dst_size, const char *status, const char *severity)
{
    const char *s = strcmp(status, "firing") != 0 ? status : severity;
    size_t i = 0;

    for (; s[i] && i + 1 < dst_size; i++) {
        dst[i] = (char)toupper((unsigned char)s[i]);
    }
    dst[i] = '\0';
}

char *sinks_console_link(const char *console_url, const char *resource_id)
{
    struct vg_buf b = {0};
    size_t n;

    if (!console_url || !console_url[0]) {
        return NULL;
    }
    n = strlen(console_url);
    vg_buf_append(&b, console_url, console_url[n - 1] == '/' ? n - 1 : n);
    vg_buf_puts(&b, "/resources/");
    for (const unsigned char *p = (const unsigned char *)resource_id; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' || *p == ':') {
            vg_buf_putc(&b, (char)*p);
        } else {
            vg_buf_printf(&b, "%%%02X", *p);
        }
    }
    return vg_buf_steal(&b);
}

char *sinks_console_incidents_link(const char *console_url)
{
    size_t n;

    if (!console_url || !console_url[0]) {
        return NULL;
    }
    n = strlen(console_url);
    return vg_asprintf("%.*s/incidents", (int)(console_url[n - 1] == '/' ? n - 1 : n), console_url);
}

/* ---------------------------------------------------------------- the card */

void sinks_human_time(char *dst, size_t dst_size, const char *rfc3339)
{
    int64_t ms;
    time_t t;
    struct tm tm;

    if (!rfc3339[0] || !vg_time_parse_rfc3339(rfc3339, strlen(rfc3339), &ms)) {
        snprintf(dst, dst_size, "%s", rfc3339);
        return;
    }
    t = (time_t)(ms / 1000);
    gmtime_r(&t, &tm);
    if (strftime(dst, dst_size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
        snprintf(dst, dst_size, "%s", rfc3339);
    }
}

static cJSON *text_block(const char *text, size_t max, const char *size, bool bold, bool subtle)
{
    cJSON *t = cJSON_CreateObject();
    char *cut = sinks_truncate_utf8(text, max);

    cJSON_AddStringToObject(t, "type", "TextBlock");
    cJSON_AddStringToObject(t, "text", cut);
    cJSON_AddBoolToObject(t, "wrap", true);
    if (size) {
        cJSON_AddStringToObject(t, "size", size);
    }
    if (bold) {
        cJSON_AddStringToObject(t, "weight", "Bolder");
    }
    if (subtle) {
        cJSON_AddBoolToObject(t, "isSubtle", true);
    }
    vg_free(cut);
    return t;
}

static void add_fact(cJSON *facts, const char *title, const char *value, size_t max)
{
    cJSON *f;
    char *cut;

    if (!value || !value[0]) {
        return;
    }
    f = cJSON_CreateObject();
    cut = sinks_truncate_utf8(value, max);
    cJSON_AddStringToObject(f, "title", title);
    cJSON_AddStringToObject(f, "value", cut);
    cJSON_AddItemToArray(facts, f);
    vg_free(cut);
}

/* The coloured title band: a container in the notice's style. */
static cJSON *title_band(const char *style, const char *title)
{
    cJSON *c = cJSON_CreateObject();
    cJSON *items = cJSON_CreateArray();

    cJSON_AddStringToObject(c, "type", "Container");
    cJSON_AddStringToObject(c, "style", style);
    cJSON_AddBoolToObject(c, "bleed", true);
    cJSON_AddItemToArray(items, text_block(title, TITLE_MAX, "Large", true, false));
    cJSON_AddItemToObject(c, "items", items);
    return c;
}

static void single_body(cJSON *body, const struct sinks_notice *nt, size_t max)
{
    const struct sinks_notice_item *it = &nt->items[0];
    const char *severity = sinks_notice_str(it->incident, "severity");
    const char *summary = sinks_notice_str(it->incident, "summary");
    const char *description = sinks_notice_str(it->incident, "description");
    const char *from = sinks_notice_str(it->transition, "from");
    const char *reason = sinks_notice_str(it->transition, "reason");
    cJSON *facts = cJSON_CreateArray();
    cJSON *set = cJSON_CreateObject();
    struct vg_buf b = {0};
    char word[32];
    char when[64];

    sinks_status_word(word, sizeof(word), nt->status, severity);
    vg_buf_printf(&b, "%s: %s", word, sinks_notice_str(it->incident, "monitor"));
    cJSON_AddItemToArray(body, title_band(sinks_look_of(nt->status, severity)->card_style, b.data));
    if (summary[0]) {
        cJSON_AddItemToArray(body, text_block(summary, max, "Medium", false, false));
    }
    if (description[0]) {
        cJSON_AddItemToArray(body, text_block(description, max, NULL, false, false));
    }
    add_fact(facts, "Resource", sinks_notice_str(it->resource, "name"), max);
    add_fact(facts, "Workspace", sinks_notice_str(it->resource, "workspace"), max);
    add_fact(facts, "Type", sinks_notice_str(it->resource, "type"), max);
    add_fact(facts, "Owner", sinks_notice_str(it->resource, "owner"), max);
    vg_buf_reset(&b);
    vg_buf_printf(&b, "%s: %s \xe2\x86\x92 %s", sinks_notice_str(it->transition, "field"),
                  from[0] ? from : "(none)", sinks_notice_str(it->transition, "to"));
    add_fact(facts, "Transition", b.data, max);
    add_fact(facts, "Reason", reason[0] ? reason : sinks_notice_str(it->incident, "reason"), max);
    add_fact(facts, "Pod", sinks_notice_str(it->transition, "pod"), max);
    sinks_human_time(when, sizeof(when), sinks_notice_str(it->incident, "started_at"));
    add_fact(facts, "Since", when, max);
    if (strcmp(nt->status, "firing") != 0) {
        const char *end = sinks_notice_str(it->incident, "resolved_at");
        sinks_human_time(when, sizeof(when), end[0] ? end : sinks_notice_str(it->transition, "at"));
        add_fact(facts, !strcmp(nt->status, "resolved") ? "Resolved at" : "Ended at", when, max);
    }
    cJSON_AddStringToObject(set, "type", "FactSet");
    cJSON_AddItemToObject(set, "facts", facts);
    cJSON_AddItemToArray(body, set);
    vg_buf_reset(&b);
    vg_buf_printf(&b, "incident %s \xc2\xb7 resource %s", sinks_notice_str(it->incident, "id"),
                  sinks_notice_str(it->resource, "id"));
    cJSON_AddItemToArray(body, text_block(b.data, max, "Small", false, true));
    vg_buf_fini(&b);
}

static void group_body(cJSON *body, const struct sinks_notice *nt, const char *console_url,
                       size_t listed, size_t max)
{
    const char *severity = sinks_notice_str(nt->items[0].incident, "severity");
    const char *pager = sinks_notice_str(nt->group, "pager");
    struct vg_buf b = {0};
    char word[32];

    sinks_status_word(word, sizeof(word), nt->status, "");
    vg_buf_printf(&b, "%zu incidents %s%s%s", nt->n_total, word, pager[0] ? ": " : "", pager);
    cJSON_AddItemToArray(body, title_band(sinks_look_of(nt->status, severity)->card_style, b.data));
    for (size_t i = 0; i < listed; i++) {
        const struct sinks_notice_item *it = &nt->items[i];
        const char *from = sinks_notice_str(it->transition, "from");
        char iword[32];

        sinks_status_word(iword, sizeof(iword), it->status,
                          sinks_notice_str(it->incident, "severity"));
        vg_buf_reset(&b);
        vg_buf_printf(&b, "**%s** %s \xc2\xb7 %s in %s (%s \xe2\x86\x92 %s)", iword,
                      sinks_notice_str(it->incident, "monitor"),
                      sinks_notice_str(it->resource, "name"),
                      sinks_notice_str(it->resource, "workspace"), from[0] ? from : "(none)",
                      sinks_notice_str(it->transition, "to"));
        if (sinks_notice_str(it->incident, "summary")[0]) {
            vg_buf_printf(&b, "\n\n%s", sinks_notice_str(it->incident, "summary"));
        }
        cJSON_AddItemToArray(body, text_block(b.data, max, NULL, false, false));
    }
    if (nt->n_total > listed) {
        char *more = sinks_console_incidents_link(console_url);

        vg_buf_reset(&b);
        if (more) {
            vg_buf_printf(&b, "[and %zu more](%s)", nt->n_total - listed, more);
        } else {
            vg_buf_printf(&b, "and %zu more", nt->n_total - listed);
        }
        vg_free(more);
        cJSON_AddItemToArray(body, text_block(b.data, max, "Small", false, true));
    }
    vg_buf_fini(&b);
}

static char *render_card(const struct sinks_notice *nt, const char *console_url, size_t listed,
                         size_t max)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *atts = cJSON_CreateArray();
    cJSON *att = cJSON_CreateObject();
    cJSON *card = cJSON_CreateObject();
    cJSON *body = cJSON_CreateArray();
    cJSON *ms = cJSON_CreateObject();
    char *link = sinks_console_link(console_url, sinks_notice_str(nt->items[0].resource, "id"));
    char *out;

    cJSON_AddStringToObject(root, "type", "message");
    cJSON_AddStringToObject(att, "contentType", "application/vnd.microsoft.card.adaptive");
    cJSON_AddNullToObject(att, "contentUrl");
    cJSON_AddStringToObject(card, "$schema", "http://adaptivecards.io/schemas/adaptive-card.json");
    cJSON_AddStringToObject(card, "type", "AdaptiveCard");
    cJSON_AddStringToObject(card, "version", "1.4");
    cJSON_AddStringToObject(ms, "width", "Full");
    cJSON_AddItemToObject(card, "msteams", ms);
    if (nt->grouped) {
        group_body(body, nt, console_url, listed, max);
    } else {
        single_body(body, nt, max);
    }
    cJSON_AddItemToObject(card, "body", body);
    if (link) {
        cJSON *actions = cJSON_CreateArray();
        cJSON *open = cJSON_CreateObject();

        cJSON_AddStringToObject(open, "type", "Action.OpenUrl");
        cJSON_AddStringToObject(open, "title", "Open in console");
        cJSON_AddStringToObject(open, "url", link);
        cJSON_AddItemToArray(actions, open);
        cJSON_AddItemToObject(card, "actions", actions);
        vg_free(link);
    }
    cJSON_AddItemToObject(att, "content", card);
    cJSON_AddItemToArray(atts, att);
    cJSON_AddItemToObject(root, "attachments", atts);
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!out) {
        vg_oom("cJSON_PrintUnformatted");
    }
    return out;
}

char *sinks_teams_render(const struct sinks_notice *nt, const char *console_url)
{
    size_t listed = nt->n_items < MAX_LISTED ? nt->n_items : MAX_LISTED;
    size_t max = TEXT_MAX;
    char *out = render_card(nt, console_url, listed, max);

    /* Fewer incidents first, then shorter texts: the card always fits in the end. */
    while (strlen(out) > SINKS_TEAMS_MAX_BYTES && (listed > 1 || max > 64)) {
        if (listed > 1) {
            listed /= 2;
        } else {
            max /= 2;
        }
        vg_free(out);
        out = render_card(nt, console_url, listed, max);
    }
    return out;
}

/* ---------------------------------------------------------------- requests and answers */

vg_err_t sinks_teams_check(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                           size_t errstr_size)
{
    vg_err_t err;

    if (!cfg->url || !cfg->url[0]) {
        snprintf(errstr, errstr_size, "sink %s: teams needs a url", cfg->name);
        return VG_ERR_INVALID;
    }
    err = sinks_http_check_url(s, "url", cfg->url, errstr, errstr_size);
    if (err) {
        return err;
    }
    s->url = vg_strdup(cfg->url);
    return VG_OK;
}
