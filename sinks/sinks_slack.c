/*
 * The Slack sink. Messages: Block Kit inside a coloured attachment, a
 * header with the severity emoji, the monitor and the transition; fields
 * for resource, workspace, type, owner, transition, reason/pod and since
 * when; a console link. A grouped page lists up to 10 incidents and
 * "and N more". Slack's documented limits are applied here: header text
 * <= 150 characters, section text <= 3000, field text <= 2000, at most
 * 10 fields and 50 blocks. Texts are mrkdwn-escaped (&, <, >).
 * Requests: an incoming webhook posts; with a bot token the Web API posts
 * the first message of an incident, then updates it and replies in its
 * thread, and reads {"ok": false} answers. Sending is sinks_http.c's.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <string.h>

#include "sinks_int.h"
#include "vigil/util.h"

#define HEADER_MAX 150
#define SECTION_MAX 3000
#define FIELD_MAX 2000
#define FALLBACK_MAX 3000
#define MAX_LISTED 10 /* a grouped message lists this many incidents, then "and N more" */
#define DEFAULT_API "https://slack.com/api"

/* mrkdwn escaping: Slack reads &, < and > as control characters. */
static void put_md(struct vg_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '&') {
            vg_buf_puts(b, "&amp;");
        } else if (*s == '<') {
            vg_buf_puts(b, "&lt;");
        } else if (*s == '>') {
            vg_buf_puts(b, "&gt;");
        } else {
            vg_buf_putc(b, *s);
        }
    }
}

static cJSON *text_obj(const char *type, const char *text, size_t max)
{
    cJSON *t = cJSON_CreateObject();
    char *cut = sinks_truncate_utf8(text, max);

    cJSON_AddStringToObject(t, "type", type);
    cJSON_AddStringToObject(t, "text", cut);
    if (!strcmp(type, "plain_text")) {
        cJSON_AddBoolToObject(t, "emoji", true);
    }
    vg_free(cut);
    return t;
}

static void add_block(cJSON *blocks, cJSON *block)
{
    if (cJSON_GetArraySize(blocks) >= 50) {
        cJSON_Delete(block);
        return;
    }
    cJSON_AddItemToArray(blocks, block);
}

static void add_header(cJSON *blocks, const char *text)
{
    cJSON *b = cJSON_CreateObject();

    cJSON_AddStringToObject(b, "type", "header");
    cJSON_AddItemToObject(b, "text", text_obj("plain_text", text, HEADER_MAX));
    add_block(blocks, b);
}

static void add_section(cJSON *blocks, const char *md)
{
    cJSON *b = cJSON_CreateObject();

    cJSON_AddStringToObject(b, "type", "section");
    cJSON_AddItemToObject(b, "text", text_obj("mrkdwn", md, SECTION_MAX));
    add_block(blocks, b);
}

static void add_field(cJSON *fields, const char *label, const char *value, bool code)
{
    struct vg_buf b = {0};

    if (!value || !value[0] || cJSON_GetArraySize(fields) >= 10) {
        return;
    }
    vg_buf_printf(&b, "*%s*\n%s", label, code ? "`" : "");
    put_md(&b, value);
    vg_buf_puts(&b, code ? "`" : "");
    cJSON_AddItemToArray(fields, text_obj("mrkdwn", b.data, FIELD_MAX));
    vg_buf_fini(&b);
}

/* "<!date^1795860000^{date_short_pretty} {time}|2026-11-28T10:00:00Z>": rendered in each reader's
 * zone. */
static void put_date(struct vg_buf *b, const char *rfc3339)
{
    int64_t ms;

    if (!rfc3339[0] || !vg_time_parse_rfc3339(rfc3339, strlen(rfc3339), &ms)) {
        put_md(b, rfc3339);
        return;
    }
    vg_buf_printf(b, "<!date^%lld^{date_short_pretty} {time}|", (long long)(ms / 1000));
    put_md(b, rfc3339);
    vg_buf_putc(b, '>');
}

static void add_link(cJSON *blocks, const char *console_url, const char *resource_id)
{
    char *url = sinks_console_link(console_url, resource_id);
    cJSON *b;
    cJSON *elems;
    cJSON *btn;

    if (!url) {
        return;
    }
    b = cJSON_CreateObject();
    elems = cJSON_CreateArray();
    btn = cJSON_CreateObject();
    cJSON_AddStringToObject(btn, "type", "button");
    cJSON_AddItemToObject(btn, "text", text_obj("plain_text", "Open in console", 75));
    cJSON_AddStringToObject(btn, "url", url);
    cJSON_AddItemToArray(elems, btn);
    cJSON_AddStringToObject(b, "type", "actions");
    cJSON_AddItemToObject(b, "elements", elems);
    add_block(blocks, b);
    vg_free(url);
}

static void upper(char *dst, size_t dst_size, const char *s)
{
    size_t i = 0;

    for (; s[i] && i + 1 < dst_size; i++) {
        dst[i] = (char)toupper((unsigned char)s[i]);
    }
    dst[i] = '\0';
}

static void single_blocks(cJSON *blocks, const struct sinks_notice *nt, const char *console_url,
                          struct vg_buf *fallback)
{
    const struct sinks_notice_item *it = &nt->items[0];
    const char *severity = sinks_notice_str(it->incident, "severity");
    const char *monitor = sinks_notice_str(it->incident, "monitor");
    const char *summary = sinks_notice_str(it->incident, "summary");
    const char *from = sinks_notice_str(it->transition, "from");
    const char *reason = sinks_notice_str(it->transition, "reason");
    const struct sinks_look *st = sinks_look_of(nt->status, severity);
    struct vg_buf b = {0};
    char word[32];
    cJSON *sec;
    cJSON *fields;

    upper(word, sizeof(word), strcmp(nt->status, "firing") ? nt->status : severity);
    vg_buf_printf(&b, "%s %s: %s", st->emoji, word, monitor);
    add_header(blocks, b.data);
    vg_buf_reset(&b);
    vg_buf_printf(fallback, "%s %s: %s %s", word, monitor, sinks_notice_str(it->resource, "id"),
                  summary);

    if (summary[0]) {
        put_md(&b, summary);
        add_section(blocks, b.data);
        vg_buf_reset(&b);
    }
    sec = cJSON_CreateObject();
    fields = cJSON_CreateArray();
    cJSON_AddStringToObject(sec, "type", "section");
    add_field(fields, "Resource", sinks_notice_str(it->resource, "name"), true);
    add_field(fields, "Workspace", sinks_notice_str(it->resource, "workspace"), false);
    add_field(fields, "Type", sinks_notice_str(it->resource, "type"), false);
    add_field(fields, "Owner", sinks_notice_str(it->resource, "owner"), false);
    vg_buf_printf(&b, "%s: %s \xe2\x86\x92 %s", sinks_notice_str(it->transition, "field"),
                  from[0] ? from : "(none)", sinks_notice_str(it->transition, "to"));
    add_field(fields, "Transition", b.data, false);
    vg_buf_reset(&b);
    if (!reason[0]) {
        reason = sinks_notice_str(it->incident, "reason");
    }
    add_field(fields, "Reason", reason, false);
    add_field(fields, "Pod", sinks_notice_str(it->transition, "pod"), true);
    vg_buf_puts(&b, "*Since*\n");
    put_date(&b, sinks_notice_str(it->incident, "started_at"));
    cJSON_AddItemToArray(fields, text_obj("mrkdwn", b.data, FIELD_MAX));
    vg_buf_reset(&b);
    if (strcmp(nt->status, "firing") != 0) {
        const char *end = sinks_notice_str(it->incident, "resolved_at");
        vg_buf_printf(&b, "*%s at*\n", !strcmp(nt->status, "resolved") ? "Resolved" : "Ended");
        put_date(&b, end[0] ? end : sinks_notice_str(it->transition, "at"));
        if (cJSON_GetArraySize(fields) < 10) {
            cJSON_AddItemToArray(fields, text_obj("mrkdwn", b.data, FIELD_MAX));
        }
        vg_buf_reset(&b);
    }
    cJSON_AddItemToObject(sec, "fields", fields);
    add_block(blocks, sec);
    {
        cJSON *ctx = cJSON_CreateObject();
        cJSON *elems = cJSON_CreateArray();

        vg_buf_puts(&b, "incident `");
        put_md(&b, sinks_notice_str(it->incident, "id"));
        vg_buf_puts(&b, "` \xc2\xb7 resource `");
        put_md(&b, sinks_notice_str(it->resource, "id"));
        vg_buf_puts(&b, "`");
        cJSON_AddItemToArray(elems, text_obj("mrkdwn", b.data, SECTION_MAX));
        cJSON_AddStringToObject(ctx, "type", "context");
        cJSON_AddItemToObject(ctx, "elements", elems);
        add_block(blocks, ctx);
    }
    add_link(blocks, console_url, sinks_notice_str(it->resource, "id"));
    vg_buf_fini(&b);
}

static void group_blocks(cJSON *blocks, const struct sinks_notice *nt, const char *console_url,
                         struct vg_buf *fallback)
{
    const char *severity = sinks_notice_str(nt->items[0].incident, "severity");
    const struct sinks_look *st = sinks_look_of(nt->status, severity);
    const char *pager = sinks_notice_str(nt->group, "pager");
    size_t listed = nt->n_items < MAX_LISTED ? nt->n_items : MAX_LISTED;
    struct vg_buf b = {0};
    char word[32];

    upper(word, sizeof(word), nt->status);
    vg_buf_printf(&b, "%s %zu incidents %s%s%s", st->emoji, nt->n_total, word, pager[0] ? ": " : "",
                  pager);
    add_header(blocks, b.data);
    vg_buf_printf(fallback, "%zu incidents %s %s", nt->n_total, word, pager);
    for (size_t i = 0; i < listed; i++) {
        const struct sinks_notice_item *it = &nt->items[i];
        const char *from = sinks_notice_str(it->transition, "from");

        vg_buf_reset(&b);
        vg_buf_printf(&b, "%s *",
                      sinks_look_of(it->status, sinks_notice_str(it->incident, "severity"))->emoji);
        put_md(&b, sinks_notice_str(it->incident, "monitor"));
        vg_buf_puts(&b, "* \xc2\xb7 `");
        put_md(&b, sinks_notice_str(it->resource, "name"));
        vg_buf_puts(&b, "` in ");
        put_md(&b, sinks_notice_str(it->resource, "workspace"));
        vg_buf_printf(&b, " (%s \xe2\x86\x92 %s)", from[0] ? from : "(none)",
                      sinks_notice_str(it->transition, "to"));
        if (sinks_notice_str(it->incident, "summary")[0]) {
            vg_buf_puts(&b, "\n");
            put_md(&b, sinks_notice_str(it->incident, "summary"));
        }
        add_section(blocks, b.data);
    }
    if (nt->n_total > listed) {
        cJSON *ctx = cJSON_CreateObject();
        cJSON *elems = cJSON_CreateArray();
        char *more = sinks_console_incidents_link(console_url);

        vg_buf_reset(&b);
        if (more) {
            vg_buf_printf(&b, "<%s|and %zu more>", more, nt->n_total - listed);
        } else {
            vg_buf_printf(&b, "and %zu more", nt->n_total - listed);
        }
        vg_free(more);
        cJSON_AddItemToArray(elems, text_obj("mrkdwn", b.data, SECTION_MAX));
        cJSON_AddStringToObject(ctx, "type", "context");
        cJSON_AddItemToObject(ctx, "elements", elems);
        add_block(blocks, ctx);
    }
    if (console_url) {
        add_link(blocks, console_url, sinks_notice_str(nt->items[0].resource, "id"));
    }
    vg_buf_fini(&b);
}

char *sinks_slack_render(const struct sinks_notice *nt, const char *channel, const char *update_ts,
                         const char *thread_ts, const char *console_url)
{
    cJSON *root = cJSON_CreateObject();
    struct vg_buf fallback = {0};
    char *text;
    char *out;

    if (channel) {
        cJSON_AddStringToObject(root, "channel", channel);
    }
    if (update_ts) {
        cJSON_AddStringToObject(root, "ts", update_ts);
    }
    if (thread_ts) {
        /* The reply in the original message's thread: one short line. */
        const struct sinks_notice_item *it = &nt->items[0];
        char word[32];

        upper(word, sizeof(word), nt->status);
        cJSON_AddStringToObject(root, "thread_ts", thread_ts);
        vg_buf_printf(&fallback, "%s %s: ", sinks_look_of(nt->status, "")->emoji, word);
        if (nt->grouped) {
            vg_buf_printf(&fallback, "%zu incidents", nt->n_total);
        } else {
            const char *from = sinks_notice_str(it->transition, "from");
            put_md(&fallback, sinks_notice_str(it->resource, "id"));
            vg_buf_printf(&fallback, " %s %s \xe2\x86\x92 %s",
                          sinks_notice_str(it->transition, "field"), from[0] ? from : "(none)",
                          sinks_notice_str(it->transition, "to"));
        }
        text = sinks_truncate_utf8(fallback.data, FALLBACK_MAX);
        cJSON_AddStringToObject(root, "text", text);
        vg_free(text);
    } else {
        cJSON *att = cJSON_CreateArray();
        cJSON *a = cJSON_CreateObject();
        cJSON *blocks = cJSON_CreateArray();
        const struct sinks_look *st =
            sinks_look_of(nt->status, sinks_notice_str(nt->items[0].incident, "severity"));

        if (nt->grouped) {
            group_blocks(blocks, nt, console_url, &fallback);
        } else {
            single_blocks(blocks, nt, console_url, &fallback);
        }
        text = sinks_truncate_utf8(fallback.data ? fallback.data : "", FALLBACK_MAX);
        cJSON_AddStringToObject(root, "text", text);
        vg_free(text);
        cJSON_AddStringToObject(a, "color", st->color);
        cJSON_AddItemToObject(a, "blocks", blocks);
        cJSON_AddItemToArray(att, a);
        cJSON_AddItemToObject(root, "attachments", att);
    }
    vg_buf_fini(&fallback);
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!out) {
        vg_oom("cJSON_PrintUnformatted");
    }
    return out;
}

/* ---------------------------------------------------------------- the Web API */

/* The requests of one notice, in order: a new message, or an update of it and a thread reply. */
enum slack_step { SLACK_POST = 0, SLACK_UPDATE, SLACK_REPLY };

/* Split a memo "CHANNEL TS". */
static bool memo_split(const char *memo, char *channel, size_t ch_size, char *ts, size_t ts_size)
{
    const char *sp = memo ? strchr(memo, ' ') : NULL;

    if (!sp || sp == memo || !sp[1] || (size_t)(sp - memo) >= ch_size ||
        strlen(sp + 1) >= ts_size) {
        return false;
    }
    memcpy(channel, memo, (size_t)(sp - memo));
    channel[sp - memo] = '\0';
    snprintf(ts, ts_size, "%s", sp + 1);
    return true;
}

/*
 * Which request step `step` of this notice is: with a bot token, a notice
 * that is not "firing" and an earlier message to refer to updates that
 * message (step 0) and replies in its thread (step 1); anything else posts.
 */
static enum slack_step step_kind(const struct sink *s, const struct sinks_notice *nt,
                                 const char *memo, int step)
{
    char ch[64];
    char ts[64];

    if (s->slack_bot && strcmp(nt->status, "firing") != 0 &&
        memo_split(memo, ch, sizeof(ch), ts, sizeof(ts))) {
        return step == 0 ? SLACK_UPDATE : SLACK_REPLY;
    }
    return SLACK_POST;
}

vg_err_t sinks_slack_check(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                           size_t errstr_size)
{
    vg_err_t err;

    if (cfg->token && cfg->channel) {
        s->slack_bot = true;
        s->token = vg_strdup(cfg->token);
        s->channel = vg_strdup(cfg->channel);
        sinks_add_secret(s, s->token);
        s->url = vg_strdup(cfg->api_url ? cfg->api_url : DEFAULT_API);
        /* The API base is not a secret: its path stays printable. */
        return sinks_http_check_url(s, "api_url", s->url, errstr, errstr_size);
    }
    if (cfg->webhook_url) {
        err = sinks_http_check_url(s, "webhook_url", cfg->webhook_url, errstr, errstr_size);
        if (err) {
            return err;
        }
        s->url = vg_strdup(cfg->webhook_url);
        return VG_OK;
    }
    snprintf(errstr, errstr_size, "sink %s: slack needs webhook_url, or token and channel",
             cfg->name);
    return VG_ERR_INVALID;
}

void sinks_slack_request(const struct sink *s, const struct sinks_notice *nt, const char *memo,
                         int step, char **url, char **body)
{
    char ch[64] = "";
    char ts[64] = "";
    size_t n = strlen(s->url);
    int base = (int)(n && s->url[n - 1] == '/' ? n - 1 : n);

    if (!s->slack_bot) {
        *body = sinks_slack_render(nt, NULL, NULL, NULL, s->console_url);
        *url = vg_strdup(s->url);
        return;
    }
    switch (step_kind(s, nt, memo, step)) {
    case SLACK_UPDATE:
        memo_split(memo, ch, sizeof(ch), ts, sizeof(ts));
        *body = sinks_slack_render(nt, ch, ts, NULL, s->console_url);
        *url = vg_asprintf("%.*s/chat.update", base, s->url);
        break;
    case SLACK_REPLY:
        memo_split(memo, ch, sizeof(ch), ts, sizeof(ts));
        *body = sinks_slack_render(nt, ch, NULL, ts, s->console_url);
        *url = vg_asprintf("%.*s/chat.postMessage", base, s->url);
        break;
    default:
        *body = sinks_slack_render(nt, s->channel, NULL, NULL, s->console_url);
        *url = vg_asprintf("%.*s/chat.postMessage", base, s->url);
        break;
    }
}

bool sinks_slack_has_next(const struct sink *s, const char *src, size_t src_len, const char *memo,
                          int step)
{
    struct sinks_notice nt;
    char why[128];
    bool more;

    if (s->type != SINK_SLACK || !s->slack_bot) {
        return false;
    }
    if (sinks_notice_parse(&nt, src, src_len, why, sizeof(why)) != VG_OK) {
        return false;
    }
    more = step_kind(s, &nt, memo, step) == SLACK_UPDATE;
    sinks_notice_fini(&nt);
    return more;
}

bool sinks_slack_update_skippable(const struct sink *s, int step, const char *memo,
                                  const struct vg_sink_result *r)
{
    return s->type == SINK_SLACK && s->slack_bot && step == 0 && memo &&
           r->err == VG_ERR_REJECTED &&
           (strstr(r->detail, "message_not_found") || strstr(r->detail, "cant_update_message") ||
            strstr(r->detail, "edit_window_closed"));
}
