/*
 * Logging to stderr, one line per record, and URL redaction. Levels are
 * global; DEBUG is enabled per facility, from the one list of facilities
 * the code logs under (what `--debug` accepts). Each record is formatted into
 * one buffer and written with a single fputs under flockfile so lines
 * from different threads never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static volatile int log_level = VG_LOG_LEVEL_INFO;
static char debug_facilities[256];
static volatile int debug_all;
static volatile int log_json;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const char *const json_level_names[] = {"error", "warn", "info", "debug"};

/*
 * Every facility the code logs under: the one list `--debug` is checked
 * against. A new VG_LOG_*("name", ...) facility is added here too (a test
 * runs `vigil run --debug` with each facility found in the sources).
 */
static const char *const facilities[] = {"api",   "cli",   "consumer", "kafka",
                                         "rules", "sinks", "state",    NULL};

const char *const *vg_log_facilities(void)
{
    return facilities;
}

/* Edits (insert, delete, substitute) between two short words; larger than any hint at 32+. */
static size_t word_distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    size_t row[33];

    if (la > 32 || lb > 32) {
        return 32;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);

            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* "unknown debug facility "X" (did you mean "Y"?); known: a, b, ..., all". */
static vg_err_t unknown_facility(const char *name, size_t len, char *errstr, size_t errstr_size)
{
    struct vg_buf b = {0};
    const char *hint = NULL;
    size_t hint_d = 3; /* a hint only within two edits */

    for (size_t i = 0; facilities[i]; i++) {
        size_t d = word_distance(name, len, facilities[i]);

        if (d < hint_d) {
            hint_d = d;
            hint = facilities[i];
        }
    }
    vg_buf_puts(&b, "unknown debug facility \"");
    vg_buf_append(&b, name, len);
    vg_buf_putc(&b, '"');
    if (hint) {
        vg_buf_printf(&b, " (did you mean \"%s\"?)", hint);
    }
    vg_buf_puts(&b, "; known:");
    for (size_t i = 0; facilities[i]; i++) {
        vg_buf_printf(&b, " %s,", facilities[i]);
    }
    vg_buf_puts(&b, " all");
    snprintf(errstr, errstr_size, "%s", b.data);
    vg_buf_fini(&b);
    return VG_ERR_INVALID;
}

vg_err_t vg_log_check_debug(const char *list, char *errstr, size_t errstr_size)
{
    const char *p = list;

    for (;;) {
        size_t len = strcspn(p, ",");
        bool known = len == 3 && strncmp(p, "all", 3) == 0;

        for (size_t i = 0; facilities[i] && !known; i++) {
            known = strlen(facilities[i]) == len && strncmp(facilities[i], p, len) == 0;
        }
        if (!known) {
            return unknown_facility(p, len, errstr, errstr_size);
        }
        if (p[len] == '\0') {
            return VG_OK;
        }
        p += len + 1;
    }
}

void vg_log_set_level(enum vg_log_level level)
{
    log_level = (int)level;
}

void vg_log_set_json(bool json)
{
    log_json = json ? 1 : 0;
}

static bool key_start(char c)
{
    return (c >= 'a' && c <= 'z') || c == '_';
}

static bool key_char(char c)
{
    return key_start(c) || (c >= '0' && c <= '9') || c == '.';
}

/* `v` (len bytes) is a JSON-safe integer: optional '-', digits, no leading zero, <= 15 digits. */
static bool is_integer(const char *v, size_t len)
{
    size_t i = v[0] == '-' ? 1 : 0;

    if (len <= i || len - i > 15 || (v[i] == '0' && len - i > 1)) {
        return false;
    }
    for (; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return false;
        }
    }
    return true;
}

char *vg_log_format_json(enum vg_log_level level, const char *facility, const char *ts,
                         const char *msg)
{
    static const char *const reserved[] = {"ts", "level", "module", "msg"};
    struct vg_buf b = {0};
    const char *p = msg;

    vg_buf_puts(&b, "{\"ts\":");
    vg_json_append_string(&b, ts);
    vg_buf_printf(&b, ",\"level\":\"%s\",\"module\":", json_level_names[level]);
    vg_json_append_string(&b, facility);
    vg_buf_puts(&b, ",\"msg\":");
    vg_json_append_string(&b, msg);
    /* key=value pairs: a key starts a word */
    while (*p) {
        const char *k = p;
        const char *eq;
        const char *v;
        size_t vlen;
        bool taken = false;

        if (!(p == msg || p[-1] == ' ') || !key_start(*p)) {
            p++;
            continue;
        }
        while (key_char(*p)) {
            p++;
        }
        if (*p != '=') {
            continue;
        }
        eq = p;
        v = eq + 1;
        if (*v == '"') {
            const char *end = strchr(v + 1, '"');

            v++;
            vlen = end ? (size_t)(end - v) : strlen(v);
            p = v + vlen + (end ? 1 : 0);
        } else {
            vlen = strcspn(v, " ");
            p = v + vlen;
        }
        for (size_t i = 0; i < VG_ARRAY_LEN(reserved); i++) {
            taken = taken || (strlen(reserved[i]) == (size_t)(eq - k) &&
                              strncmp(reserved[i], k, (size_t)(eq - k)) == 0);
        }
        if (taken) {
            continue;
        }
        vg_buf_putc(&b, ',');
        {
            char *key = vg_strndup(k, (size_t)(eq - k));
            char *val = vg_strndup(v, vlen);

            vg_json_append_string(&b, key);
            vg_buf_putc(&b, ':');
            if (is_integer(val, vlen)) {
                vg_buf_puts(&b, val);
            } else {
                vg_json_append_string(&b, val);
            }
            free(key);
            free(val);
        }
    }
    vg_buf_putc(&b, '}');
    return vg_buf_steal(&b);
}

void vg_log_enable_debug(const char *list)
{
    if (!list || !*list) {
        return;
    }
    /* stored as ",a,b," so membership is a strstr of ",fac," */
    snprintf(debug_facilities, sizeof(debug_facilities), ",%s,", list);
    if (strstr(debug_facilities, ",all,")) {
        debug_all = 1;
    }
}

bool vg_log_enabled(enum vg_log_level level, const char *facility)
{
    char needle[64];
    if ((int)level <= log_level) {
        return true;
    }
    if (level != VG_LOG_LEVEL_DEBUG) {
        return false;
    }
    if (debug_all) {
        return true;
    }
    if (!debug_facilities[0]) {
        return false;
    }
    snprintf(needle, sizeof(needle), ",%s,", facility);
    return strstr(debug_facilities, needle) != NULL;
}

void vg_log(enum vg_log_level level, const char *facility, const char *fmt, ...)
{
    char ts[40];
    char line[4096];
    int n;
    va_list ap;

    vg_time_format_rfc3339(vg_now_ms(), ts, sizeof(ts));
    n = snprintf(line, sizeof(line), "%s %s %s: ", ts, level_names[level], facility);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (log_json) {
        char *json = vg_log_format_json(level, facility, ts, line + n);

        flockfile(stderr);
        fputs(json, stderr);
        fputc('\n', stderr);
        funlockfile(stderr);
        free(json);
        return;
    }
    flockfile(stderr);
    fputs(line, stderr);
    fputc('\n', stderr);
    funlockfile(stderr);
}

void vg_redact_url(const char *url, char *out, size_t out_size)
{
    const char *scheme_end;
    const char *auth_start;
    const char *host_end;
    const char *userinfo_end;
    const char *at;
    struct vg_buf b = {0};

    if (out_size == 0) {
        return;
    }
    scheme_end = strstr(url, "://");
    if (!scheme_end) {
        snprintf(out, out_size, "<redacted>");
        return;
    }
    auth_start = scheme_end + 3;
    if (strncmp(url, "unix://", 7) == 0) {
        /* A socket path is not a secret; a query string may hold one. */
        const char *q = strchr(auth_start, '?');
        vg_buf_append(&b, url, q ? (size_t)(q - url) : strlen(url));
        if (q) {
            vg_buf_puts(&b, "?<redacted>");
        }
        goto out;
    }
    /*
     * Where the userinfo ends is where the URL's own parser puts it: for
     * redis:// ours (state/), which takes the last '@' anywhere, so that
     * "redis://:pa/ss@host" and "redis://:pa?ss@host" have the password
     * "pa/ss" and "pa?ss" (cutting at the '/' or '?' would print "pa");
     * for the rest curl, which looks for it before the first '/', '?' or '#'.
     */
    userinfo_end = strncmp(url, "redis://", 8) == 0 ? auth_start + strlen(auth_start)
                                                    : auth_start + strcspn(auth_start, "/?#");
    at = NULL;
    for (const char *p = auth_start; p < userinfo_end; p++) {
        if (*p == '@') {
            at = p;
        }
    }
    host_end = (at ? at : auth_start) + strcspn(at ? at : auth_start, "/?#");
    vg_buf_append(&b, url, (size_t)(auth_start - url));
    if (at) {
        const char *colon = memchr(auth_start, ':', (size_t)(at - auth_start));
        if (colon) {
            vg_buf_append(&b, auth_start, (size_t)(colon - auth_start));
            vg_buf_puts(&b, ":<redacted>");
        } else {
            vg_buf_puts(&b, "<redacted>");
        }
        vg_buf_append(&b, at, (size_t)(host_end - at));
    } else {
        vg_buf_append(&b, auth_start, (size_t)(host_end - auth_start));
    }
    /*
     * Redis URLs keep their "/db" path; any other path may embed a token
     * (Slack hooks, signed URLs), so it is redacted whole.
     */
    if (*host_end) {
        if (strncmp(url, "redis://", 8) == 0 && *host_end == '/' &&
            strspn(host_end + 1, "0123456789") == strlen(host_end + 1)) {
            vg_buf_puts(&b, host_end);
        } else {
            vg_buf_puts(&b, "/<redacted>");
        }
    }
out:
    snprintf(out, out_size, "%s", b.data ? b.data : "");
    vg_buf_fini(&b);
}
