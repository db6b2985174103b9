/*
 * The email sink: SMTP (smtp:// with STARTTLS, or smtps://) through
 * libcurl, on the same multi handle and transfers as the HTTP sinks
 * (sinks_http.c drives them; here: the config check, the message, the
 * SMTP options and the classification of the outcome). One notice is one
 * mail: multipart/alternative with a text and an HTML part, both
 * quoted-printable so any server takes them (no 8BITMIME needed); a
 * grouped page is one mail listing its incidents. Message-ID derives from
 * the notification id, so a retry resends the same message and clients
 * can drop the copy; a notice after an incident's first one answers it
 * (In-Reply-To, References) so clients thread firing and resolved.
 * Texts from events pass through header sanitising: no CR/LF injection.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <string.h>
#include <time.h>

#include "sinks_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

#ifndef VIGIL_VERSION
#define VIGIL_VERSION "0.0.0"
#endif

#define SUBJECT_MAX 200 /* bytes of the subject before it is cut */
#define QP_LINE_MAX 76  /* RFC 2045 6.7 */
#define LISTED_MAX 100  /* a grouped mail lists this many incidents, then "and N more" */
#define WORD_CHUNK 45   /* bytes per RFC 2047 encoded word (60 base64 chars, under 75) */

/* ---------------------------------------------------------------- config */

static bool plain_address(const char *a)
{
    const char *at = strchr(a, '@');

    if (!at || at == a || !at[1] || strchr(at + 1, '@')) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)a; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || strchr("<>,;\"", *p)) {
            return false;
        }
    }
    return true;
}

static struct curl_slist *rcpt_add(struct curl_slist *list, const char *addr)
{
    char *line = vg_asprintf("<%s>", addr);
    struct curl_slist *next = curl_slist_append(list, line);

    vg_free(line);
    if (!next) {
        vg_oom("curl_slist_append");
    }
    return next;
}

static char **strv_copy(char *const *v, size_t n)
{
    char **out = vg_calloc(n + 1, sizeof(*out));

    for (size_t i = 0; i < n; i++) {
        out[i] = vg_strdup(v[i]);
    }
    return out;
}

vg_err_t sinks_email_check(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                           size_t errstr_size)
{
    static const CURLUPart secret_parts[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_QUERY};
    struct curl_slist *rcpt = NULL;
    char redacted[512];
    char *scheme = NULL;
    char *host = NULL;
    CURLU *u;
    vg_err_t err = VG_OK;

    if (!cfg->url || !cfg->from || cfg->n_to == 0) {
        snprintf(errstr, errstr_size, "sink %s: email needs url, from and to", cfg->name);
        return VG_ERR_INVALID;
    }
    u = curl_url();
    if (!u) {
        vg_oom("curl_url");
    }
    vg_redact_url(cfg->url, redacted, sizeof(redacted));
    if (curl_url_set(u, CURLUPART_URL, cfg->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0] ||
        (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0)) {
        snprintf(errstr, errstr_size, "sink %s: url \"%s\" is not an smtp:// or smtps:// url",
                 cfg->name, redacted);
        err = VG_ERR_INVALID;
        goto out;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(secret_parts); i++) {
        char *part = NULL;
        if (curl_url_get(u, secret_parts[i], &part, 0) == CURLUE_OK && part) {
            sinks_add_secret(s, part);
            curl_free(part);
        }
    }
    if (!plain_address(cfg->from)) {
        snprintf(errstr, errstr_size, "sink %s: from \"%s\" is not an address", cfg->name,
                 cfg->from);
        err = VG_ERR_INVALID;
        goto out;
    }
    for (size_t i = 0; i < cfg->n_to + cfg->n_cc; i++) {
        const char *a = i < cfg->n_to ? cfg->to[i] : cfg->cc[i - cfg->n_to];
        if (!plain_address(a)) {
            snprintf(errstr, errstr_size, "sink %s: %s \"%s\" is not an address", cfg->name,
                     i < cfg->n_to ? "to" : "cc", a);
            err = VG_ERR_INVALID;
            goto out;
        }
        rcpt = rcpt_add(rcpt, a);
    }
    if ((cfg->username != NULL) != (cfg->password != NULL)) {
        snprintf(errstr, errstr_size, "sink %s: username and password go together", cfg->name);
        err = VG_ERR_INVALID;
        goto out;
    }
    s->starttls = SINKS_STARTTLS_REQUIRED;
    if (cfg->starttls && !strcmp(cfg->starttls, "optional")) {
        s->starttls = SINKS_STARTTLS_OPTIONAL;
    } else if (cfg->starttls && !strcmp(cfg->starttls, "never")) {
        s->starttls = SINKS_STARTTLS_NEVER;
    } else if (cfg->starttls && strcmp(cfg->starttls, "required") != 0) {
        snprintf(errstr, errstr_size, "sink %s: starttls must be required, optional or never",
                 cfg->name);
        err = VG_ERR_INVALID;
        goto out;
    }
    s->url = vg_strdup(cfg->url);
    s->mail_from = vg_strdup(cfg->from);
    s->mail_domain = vg_strdup(strchr(cfg->from, '@') + 1);
    s->mail_to = strv_copy(cfg->to, cfg->n_to);
    s->n_mail_to = cfg->n_to;
    s->mail_cc = strv_copy(cfg->cc, cfg->n_cc);
    s->n_mail_cc = cfg->n_cc;
    s->mail_rcpt = rcpt;
    rcpt = NULL;
    if (cfg->username) {
        s->username = vg_strdup(cfg->username);
        s->password = vg_strdup(cfg->password);
        sinks_add_secret(s, s->username);
        sinks_add_secret(s, s->password);
    }
out:
    curl_slist_free_all(rcpt);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return err;
}

void sinks_email_sink_fini(struct sink *s)
{
    curl_slist_free_all(s->mail_rcpt);
    s->mail_rcpt = NULL;
    for (size_t i = 0; s->mail_to && i < s->n_mail_to; i++) {
        vg_free(s->mail_to[i]);
    }
    for (size_t i = 0; s->mail_cc && i < s->n_mail_cc; i++) {
        vg_free(s->mail_cc[i]);
    }
    vg_free(s->mail_to);
    vg_free(s->mail_cc);
    vg_free(s->mail_from);
    vg_free(s->mail_domain);
    vg_free(s->username);
    vg_free(s->password);
    s->mail_to = s->mail_cc = NULL;
    s->mail_from = s->mail_domain = s->username = s->password = NULL;
}

/* ---------------------------------------------------------------- encodings */

/* A header value from event data: control characters (CR, LF...) become spaces. */
static char *header_safe(const char *s)
{
    char *out = vg_strdup(s);

    for (char *p = out; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
    return out;
}

/* Subject: as is when ASCII, else RFC 2047 encoded words, folded, cut on UTF-8 boundaries. */
static void put_subject(struct vg_buf *b, const char *subject)
{
    size_t n = strlen(subject);
    bool ascii = true;
    size_t i = 0;

    for (size_t k = 0; k < n; k++) {
        ascii = ascii && (unsigned char)subject[k] < 0x80;
    }
    vg_buf_puts(b, "Subject: ");
    if (ascii) {
        vg_buf_puts(b, subject);
        vg_buf_puts(b, "\r\n");
        return;
    }
    while (i < n) {
        unsigned char enc[4 * WORD_CHUNK / 3 + 8];
        size_t take = n - i < WORD_CHUNK ? n - i : WORD_CHUNK;

        /* Never split a UTF-8 sequence across two words. */
        while (i + take < n && take > 1 && ((unsigned char)subject[i + take] & 0xC0) == 0x80) {
            take--;
        }
        EVP_EncodeBlock(enc, (const unsigned char *)subject + i, (int)take);
        vg_buf_printf(b, "%s=?UTF-8?B?%s?=", i ? "\r\n " : "", (const char *)enc);
        i += take;
    }
    vg_buf_puts(b, "\r\n");
}

/*
 * Quoted-printable (RFC 2045 6.7) of UTF-8 text with "\n" line ends, into
 * CRLF lines of at most 76 characters (soft breaks "=").
 */
static void put_qp(struct vg_buf *b, const char *text)
{
    size_t col = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char enc[4];
        size_t w;
        bool line_end = p[1] == '\n' || p[1] == '\0';

        if (*p == '\n') {
            vg_buf_puts(b, "\r\n");
            col = 0;
            continue;
        }
        if ((*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !line_end)) {
            enc[0] = (char)*p;
            enc[1] = '\0';
        } else {
            snprintf(enc, sizeof(enc), "=%02X", *p);
        }
        w = strlen(enc);
        if (col + w > QP_LINE_MAX - 1) {
            vg_buf_puts(b, "=\r\n");
            col = 0;
        }
        vg_buf_puts(b, enc);
        col += w;
    }
    vg_buf_puts(b, "\r\n");
}

static void put_html(struct vg_buf *b, const char *s)
{
    for (; *s; s++) {
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
        case '\n':
            vg_buf_puts(b, "<br>");
            break;
        default:
            vg_buf_putc(b, *s);
            break;
        }
    }
}

/* A msg-id's left side from a notification id: dot-atom characters only. */
static void put_msgid(struct vg_buf *b, const char *id, const char *domain)
{
    vg_buf_putc(b, '<');
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        bool ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '.' || *p == '_';
        vg_buf_putc(b, ok ? (char)*p : '_');
    }
    vg_buf_printf(b, ".vigil@%s>", domain);
}

/* RFC 5322 date, "Fri, 04 Dec 2026 21:23:21 +0000", whatever the locale. */
static void put_date(struct vg_buf *b, int64_t now_s)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)now_s;
    struct tm tm;

    gmtime_r(&t, &tm);
    vg_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday % 7],
                  tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
}

static void put_list(struct vg_buf *b, const char *name, char *const *v, size_t n)
{
    if (n == 0) {
        return;
    }
    vg_buf_printf(b, "%s: ", name);
    for (size_t i = 0; i < n; i++) {
        vg_buf_printf(b, "%s%s", i ? ",\r\n " : "", v[i]);
    }
    vg_buf_puts(b, "\r\n");
}

/* ---------------------------------------------------------------- the message */

/* "[HIGH] workflow ingestion-payments failed (public)", or for a group "[HIGH] 3 incidents: ...".
 */
static char *subject_of(const struct sinks_notice *nt)
{
    const struct sinks_notice_item *it = &nt->items[0];
    struct vg_buf b = {0};
    char word[32];
    char *safe;
    char *cut;

    sinks_status_word(word, sizeof(word), nt->status, sinks_notice_str(it->incident, "severity"));
    if (nt->grouped) {
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive((const cJSON *)nt->group, "labels");
        const cJSON *l;
        bool first = true;

        vg_buf_printf(&b, "[%s] %zu incidents: %s", word, nt->n_total,
                      sinks_notice_str(nt->group, "pager"));
        cJSON_ArrayForEach(l, labels)
        {
            if (cJSON_IsString(l)) {
                vg_buf_printf(&b, "%s%s=%s", first ? " (" : ", ", l->string, l->valuestring);
                first = false;
            }
        }
        vg_buf_puts(&b, first ? "" : ")");
    } else {
        const char *to = sinks_notice_str(it->transition, "to");

        /* A stale notice may have no transition: no empty word then. */
        vg_buf_printf(&b, "[%s] %s %s%s%s (%s)", word, sinks_notice_str(it->resource, "type"),
                      sinks_notice_str(it->resource, "name"), to[0] ? " " : "", to,
                      sinks_notice_str(it->resource, "workspace"));
    }
    safe = header_safe(b.data);
    cut = sinks_truncate_utf8(safe, SUBJECT_MAX);
    vg_free(safe);
    vg_buf_fini(&b);
    return cut;
}

struct row {
    const char *label;
    const char *value;
};

/* The facts of one incident, in the Slack message's order. */
static size_t facts_of(const struct sinks_notice *nt, const struct sinks_notice_item *it,
                       struct row *rows, char *transition, size_t transition_size, char *since,
                       size_t since_size, char *ended, size_t ended_size)
{
    const char *from = sinks_notice_str(it->transition, "from");
    const char *reason = sinks_notice_str(it->transition, "reason");
    size_t n = 0;

    snprintf(transition, transition_size, "%s: %s \xe2\x86\x92 %s",
             sinks_notice_str(it->transition, "field"), from[0] ? from : "(none)",
             sinks_notice_str(it->transition, "to"));
    sinks_human_time(since, since_size, sinks_notice_str(it->incident, "started_at"));
    rows[n++] = (struct row){"Resource", sinks_notice_str(it->resource, "name")};
    rows[n++] = (struct row){"Workspace", sinks_notice_str(it->resource, "workspace")};
    rows[n++] = (struct row){"Type", sinks_notice_str(it->resource, "type")};
    rows[n++] = (struct row){"Owner", sinks_notice_str(it->resource, "owner")};
    rows[n++] = (struct row){"Transition", transition};
    rows[n++] =
        (struct row){"Reason", reason[0] ? reason : sinks_notice_str(it->incident, "reason")};
    rows[n++] = (struct row){"Pod", sinks_notice_str(it->transition, "pod")};
    rows[n++] = (struct row){"Since", since};
    ended[0] = '\0';
    if (strcmp(it->status, "firing") != 0) {
        const char *end = sinks_notice_str(it->incident, "resolved_at");
        sinks_human_time(ended, ended_size, end[0] ? end : sinks_notice_str(it->transition, "at"));
        rows[n++] =
            (struct row){!strcmp(it->status, "resolved") ? "Resolved at" : "Ended at", ended};
    }
    (void)nt;
    return n;
}

static void single_parts(const struct sink *s, const struct sinks_notice *nt, const char *id,
                         struct vg_buf *text, struct vg_buf *html)
{
    const struct sinks_notice_item *it = &nt->items[0];
    const char *severity = sinks_notice_str(it->incident, "severity");
    const char *summary = sinks_notice_str(it->incident, "summary");
    const char *description = sinks_notice_str(it->incident, "description");
    char *link = sinks_console_link(s->console_url, sinks_notice_str(it->resource, "id"));
    struct row rows[12];
    char transition[3 * 64 + 16];
    char since[64];
    char ended[64];
    char word[32];
    size_t n;

    sinks_status_word(word, sizeof(word), nt->status, severity);
    n = facts_of(nt, it, rows, transition, sizeof(transition), since, sizeof(since), ended,
                 sizeof(ended));
    vg_buf_printf(text, "%s: %s\n", word, sinks_notice_str(it->incident, "monitor"));
    vg_buf_printf(html,
                  "<div style=\"border-left:6px solid %s;padding:4px 12px;font-family:sans-serif\">"
                  "<h2 style=\"margin:4px 0\">",
                  sinks_status_color(nt->status, severity));
    put_html(html, word);
    vg_buf_puts(html, ": ");
    put_html(html, sinks_notice_str(it->incident, "monitor"));
    vg_buf_puts(html, "</h2>");
    if (summary[0]) {
        vg_buf_printf(text, "%s\n", summary);
        vg_buf_puts(html, "<p style=\"font-size:larger\">");
        put_html(html, summary);
        vg_buf_puts(html, "</p>");
    }
    if (description[0]) {
        vg_buf_printf(text, "\n%s\n", description);
        vg_buf_puts(html, "<p>");
        put_html(html, description);
        vg_buf_puts(html, "</p>");
    }
    vg_buf_puts(text, "\n");
    vg_buf_puts(html, "<table style=\"border-collapse:collapse\">");
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].value[0]) {
            continue;
        }
        vg_buf_printf(text, "%-12s %s\n", rows[i].label, rows[i].value);
        vg_buf_puts(html, "<tr><td style=\"padding:2px 12px 2px 0;color:#555\">");
        put_html(html, rows[i].label);
        vg_buf_puts(html, "</td><td style=\"padding:2px 0\">");
        put_html(html, rows[i].value);
        vg_buf_puts(html, "</td></tr>");
    }
    vg_buf_puts(html, "</table>");
    if (link) {
        vg_buf_printf(text, "%-12s %s\n", "Console", link);
        vg_buf_puts(html, "<p><a href=\"");
        put_html(html, link);
        vg_buf_puts(html, "\">Open in console</a></p>");
        vg_free(link);
    }
    vg_buf_printf(text, "\nincident %s \xc2\xb7 resource %s\n-- \nvigil notification %s\n",
                  sinks_notice_str(it->incident, "id"), sinks_notice_str(it->resource, "id"), id);
    vg_buf_puts(html, "<p style=\"color:#888;font-size:small\">incident ");
    put_html(html, sinks_notice_str(it->incident, "id"));
    vg_buf_puts(html, " \xc2\xb7 resource ");
    put_html(html, sinks_notice_str(it->resource, "id"));
    vg_buf_puts(html, " \xc2\xb7 notification ");
    put_html(html, id);
    vg_buf_puts(html, "</p></div>");
}

static void group_parts(const struct sink *s, const struct sinks_notice *nt, const char *id,
                        struct vg_buf *text, struct vg_buf *html)
{
    const char *severity = sinks_notice_str(nt->items[0].incident, "severity");
    const char *pager = sinks_notice_str(nt->group, "pager");
    size_t listed = nt->n_items < LISTED_MAX ? nt->n_items : LISTED_MAX;
    char word[32];

    sinks_status_word(word, sizeof(word), nt->status, "");
    vg_buf_printf(text, "%zu incidents %s%s%s\n\n", nt->n_total, word, pager[0] ? ": " : "", pager);
    vg_buf_printf(html,
                  "<div style=\"border-left:6px solid %s;padding:4px 12px;font-family:sans-serif\">"
                  "<h2 style=\"margin:4px 0\">%zu incidents ",
                  sinks_status_color(nt->status, severity), nt->n_total);
    put_html(html, word);
    if (pager[0]) {
        vg_buf_puts(html, ": ");
        put_html(html, pager);
    }
    vg_buf_puts(html, "</h2><ul>");
    for (size_t i = 0; i < listed; i++) {
        const struct sinks_notice_item *it = &nt->items[i];
        const char *from = sinks_notice_str(it->transition, "from");
        const char *summary = sinks_notice_str(it->incident, "summary");
        char *link = sinks_console_link(s->console_url, sinks_notice_str(it->resource, "id"));
        char iword[32];
        struct vg_buf line = {0};

        sinks_status_word(iword, sizeof(iword), it->status,
                          sinks_notice_str(it->incident, "severity"));
        vg_buf_printf(&line, "[%s] %s \xc2\xb7 %s in %s (%s \xe2\x86\x92 %s)", iword,
                      sinks_notice_str(it->incident, "monitor"),
                      sinks_notice_str(it->resource, "name"),
                      sinks_notice_str(it->resource, "workspace"), from[0] ? from : "(none)",
                      sinks_notice_str(it->transition, "to"));
        vg_buf_printf(text, "- %s\n", line.data);
        vg_buf_puts(html, "<li>");
        put_html(html, line.data);
        if (summary[0]) {
            vg_buf_printf(text, "  %s\n", summary);
            vg_buf_puts(html, "<br>");
            put_html(html, summary);
        }
        if (link) {
            vg_buf_printf(text, "  %s\n", link);
            vg_buf_puts(html, " <a href=\"");
            put_html(html, link);
            vg_buf_puts(html, "\">console</a>");
            vg_free(link);
        }
        vg_buf_puts(html, "</li>");
        vg_buf_fini(&line);
    }
    vg_buf_puts(html, "</ul>");
    if (nt->n_total > listed) {
        char *more = sinks_console_incidents_link(s->console_url);

        vg_buf_printf(text, "and %zu more%s%s\n", nt->n_total - listed, more ? ": " : "",
                      more ? more : "");
        if (more) {
            vg_buf_puts(html, "<p><a href=\"");
            put_html(html, more);
            vg_buf_printf(html, "\">and %zu more</a></p>", nt->n_total - listed);
        } else {
            vg_buf_printf(html, "<p>and %zu more</p>", nt->n_total - listed);
        }
        vg_free(more);
    }
    vg_buf_printf(text, "-- \nvigil notification %s\n", id);
    vg_buf_puts(html, "<p style=\"color:#888;font-size:small\">notification ");
    put_html(html, id);
    vg_buf_puts(html, "</p></div>");
}

/* The thread a notice belongs to: the incident's first notification ("<incident>-1"). */
static void put_threading(struct vg_buf *b, const struct sink *s, const struct sinks_notice *nt,
                          const char *id)
{
    struct vg_buf ref = {0};

    if (nt->grouped) {
        /* A group has no first mail to answer: a stable reference id keeps its mails together. */
        char *labels = cJSON_PrintUnformatted(
            cJSON_GetObjectItemCaseSensitive((const cJSON *)nt->group, "labels"));
        const char *parts[2] = {sinks_notice_str(nt->group, "pager"), labels ? labels : ""};
        char fp[17];

        vg_fingerprint(fp, parts, 2);
        cJSON_free(labels);
        vg_buf_printf(&ref, "group-%s", fp);
        vg_buf_puts(b, "References: ");
        put_msgid(b, ref.data, s->mail_domain);
        vg_buf_puts(b, "\r\n");
    } else {
        vg_buf_printf(&ref, "%s-1", sinks_notice_str(nt->items[0].incident, "id"));
        if (strcmp(ref.data, id) != 0) {
            vg_buf_puts(b, "In-Reply-To: ");
            put_msgid(b, ref.data, s->mail_domain);
            vg_buf_puts(b, "\r\nReferences: ");
            put_msgid(b, ref.data, s->mail_domain);
            vg_buf_puts(b, "\r\n");
        }
    }
    vg_buf_fini(&ref);
}

char *sinks_email_render(const struct sink *s, const struct sinks_notice *nt, const char *id,
                         int64_t now_s)
{
    struct vg_buf b = {0};
    struct vg_buf text = {0};
    struct vg_buf html = {0};
    char *subject = subject_of(nt);
    char boundary[96];

    snprintf(boundary, sizeof(boundary), "=_vigil_%.64s", id);
    for (char *p = boundary; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == '"' || *p == 0x7f) {
            *p = '_';
        }
    }
    put_date(&b, now_s);
    vg_buf_printf(&b, "From: vigil <%s>\r\n", s->mail_from);
    put_list(&b, "To", s->mail_to, s->n_mail_to);
    put_list(&b, "Cc", s->mail_cc, s->n_mail_cc);
    put_subject(&b, subject);
    vg_buf_puts(&b, "Message-ID: ");
    put_msgid(&b, id, s->mail_domain);
    vg_buf_puts(&b, "\r\n");
    put_threading(&b, s, nt, id);
    vg_buf_puts(&b, "Auto-Submitted: auto-generated\r\n");
    {
        char *safe = header_safe(id);
        vg_buf_printf(&b, "X-Vigil-Notification: %s\r\n", safe);
        vg_free(safe);
    }
    vg_buf_puts(&b, "MIME-Version: 1.0\r\n");
    vg_buf_printf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", boundary);
    if (nt->grouped) {
        group_parts(s, nt, id, &text, &html);
    } else {
        single_parts(s, nt, id, &text, &html);
    }
    vg_buf_printf(&b,
                  "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                  boundary);
    put_qp(&b, text.data ? text.data : "");
    vg_buf_printf(&b,
                  "--%s\r\nContent-Type: text/html; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                  boundary);
    vg_buf_puts(&html, "\n");
    put_qp(&b, html.data);
    vg_buf_printf(&b, "--%s--\r\n", boundary);
    vg_buf_fini(&text);
    vg_buf_fini(&html);
    vg_free(subject);
    return vg_buf_steal(&b);
}

/* ---------------------------------------------------------------- libcurl */

static size_t on_read(char *buf, size_t size, size_t nitems, void *opaque)
{
    struct sinks_upload *up = opaque;
    size_t room = size * nitems;
    size_t n = up->len - up->off < room ? up->len - up->off : room;

    memcpy(buf, up->data + up->off, n);
    up->off += n;
    return n;
}

bool sinks_email_setup(void *easy, const struct sink *s)
{
    CURL *e = easy;
    long use_ssl = s->starttls == SINKS_STARTTLS_REQUIRED   ? (long)CURLUSESSL_ALL
                   : s->starttls == SINKS_STARTTLS_OPTIONAL ? (long)CURLUSESSL_TRY
                                                            : (long)CURLUSESSL_NONE;
    char *from = vg_asprintf("<%s>", s->mail_from);
    bool ok = true;

    ok = ok && curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps") == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    /* Proxies come from config only, never from the environment. */
    ok = ok && curl_easy_setopt(e, CURLOPT_PROXY, s->proxy ? s->proxy : "") == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->connect_ms) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_USE_SSL, use_ssl) == CURLE_OK;
    /* libcurl copies strings; the recipient list is the sink's and outlives the handle. */
    ok = ok && curl_easy_setopt(e, CURLOPT_MAIL_FROM, from) == CURLE_OK;
    ok =
        ok && curl_easy_setopt(e, CURLOPT_MAIL_RCPT, (struct curl_slist *)s->mail_rcpt) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_UPLOAD, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read) == CURLE_OK;
    if (s->username) {
        ok = ok && curl_easy_setopt(e, CURLOPT_USERNAME, s->username) == CURLE_OK;
        ok = ok && curl_easy_setopt(e, CURLOPT_PASSWORD, s->password) == CURLE_OK;
    }
    if (s->ca_file) {
        ok = ok && curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file) == CURLE_OK;
    }
    if (s->client_cert) {
        ok = ok && curl_easy_setopt(e, CURLOPT_SSLCERT, s->client_cert) == CURLE_OK;
    }
    if (s->client_key) {
        ok = ok && curl_easy_setopt(e, CURLOPT_SSLKEY, s->client_key) == CURLE_OK;
    }
    vg_free(from);
    return ok;
}

void sinks_email_arm(void *easy, struct sinks_upload *up, const char *data, size_t len)
{
    CURL *e = easy;

    up->data = data ? data : "";
    up->len = data ? len : 0;
    up->off = 0;
    curl_easy_setopt(e, CURLOPT_READDATA, up);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up->len);
}

void sinks_email_classify(const struct sink *s, int code, long reply, const char *errbuf,
                          struct vg_sink_result *r)
{
    const char *why = errbuf && errbuf[0] ? errbuf : curl_easy_strerror((CURLcode)code);

    r->retry_after_ms = -1;
    r->status = reply;
    if (code == CURLE_OK) {
        r->err = VG_OK;
        return;
    }
    if (reply >= 400 && reply < 500) {
        r->err = VG_ERR_BACKEND; /* 4xx is SMTP's "try again later" */
    } else if (code == CURLE_USE_SSL_FAILED) {
        r->err = VG_ERR_REJECTED;
        why = "the server does not offer STARTTLS (starttls: required)";
    } else if (code == CURLE_LOGIN_DENIED) {
        r->err = VG_ERR_REJECTED;
        why = "SMTP authentication refused";
    } else if (reply >= 500 && reply < 600) {
        r->err = VG_ERR_REJECTED;
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        r->err = VG_ERR_TIMEOUT;
    } else {
        r->err = VG_ERR_BACKEND;
    }
    if (reply > 0) {
        snprintf(r->detail, sizeof(r->detail), "sink %s: SMTP %ld: %s", s->name, reply, why);
    } else {
        snprintf(r->detail, sizeof(r->detail), "sink %s: %s", s->name, why);
    }
    sinks_scrub(s, r->detail, sizeof(r->detail));
    snprintf(r->response, sizeof(r->response), "%s", r->detail);
}
