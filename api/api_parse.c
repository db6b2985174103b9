/*
 * The parsing of what an HTTP client sends, apart from libmicrohttpd and
 * Redis so that each piece is pure and fuzzed (tests/fuzz/fuzz_http_request.c):
 * the request head the acceptor peeks at, the request target's escapes and
 * parameters, JSON bodies, the values of query parameters (cursor, q,
 * health) and the body of POST /api/v1/silences. The handlers that use
 * them are in api.c, api_gate.c and api_v1.c.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"
#include "vigil/json.h"
#include "vigil/util.h"

#define MAX_MATCHERS 32

/* ---- the request head (the acceptor peeks at it) ---------------------------------- */

static bool is_health_path(const char *target, size_t len)
{
    static const char *const paths[] = {"/healthz", "/readyz", "/metrics"};
    const char *q = memchr(target, '?', len);
    size_t pl = q ? (size_t)(q - target) : len;

    for (size_t i = 0; i < VG_ARRAY_LEN(paths); i++) {
        if (strlen(paths[i]) == pl && !strncmp(target, paths[i], pl)) {
            return true;
        }
    }
    return false;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

__attribute__((format(printf, 4, 5))) static enum api_head_verdict
refuse(struct api_head *out, unsigned status, enum api_reason reason, const char *fmt, ...)
{
    va_list ap;

    out->status = status;
    out->reason = reason;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
    return API_HEAD_REFUSED;
}

enum api_head_verdict api_head_check(const char *h, size_t n, struct api_head *out)
{
    bool *health = &out->health;
    const char *eol = memchr(h, '\n', n);
    const char *sp1;
    const char *sp2;
    const char *line;
    const char *end = h + n;
    size_t headers = 0;
    bool body = false;
    size_t vlen;
    size_t ml;

    memset(out, 0, sizeof(*out));
    if (!eol) {
        if (n > API_MAX_URI_BYTES + 32) {
            return refuse(out, 414, API_REASON_TOO_LARGE, "request target longer than %d bytes",
                          API_MAX_URI_BYTES);
        }
        return API_HEAD_WAIT;
    }
    ml = strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    sp1 = h + ml;
    sp2 = sp1 < eol ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (ml == 0 || ml > 16 || *sp1 != ' ' || !sp2 || sp2 == sp1 + 1) {
        return refuse(out, 400, API_REASON_BAD_REQUEST,
                      "malformed request line (expected METHOD /path HTTP/1.1)");
    }
    if ((size_t)(sp2 - sp1 - 1) > API_MAX_URI_BYTES) {
        return refuse(out, 414, API_REASON_TOO_LARGE, "request target longer than %d bytes",
                      API_MAX_URI_BYTES);
    }
    for (const char *q = sp1 + 1; q < sp2; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
            return refuse(out, 400, API_REASON_BAD_REQUEST,
                          "control character in the request target");
        }
    }
    vlen = (size_t)(eol - sp2 - 1);
    if (vlen > 0 && eol[-1] == '\r') {
        vlen--;
    }
    if (vlen != 8 ||
        (strncmp(sp2 + 1, "HTTP/1.0", 8) != 0 && strncmp(sp2 + 1, "HTTP/1.1", 8) != 0)) {
        return refuse(out, 505, API_REASON_BAD_REQUEST,
                      "unsupported protocol (expected HTTP/1.0 or HTTP/1.1)");
    }
    *health = is_health_path(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    for (line = eol + 1; line < end;) {
        const char *le = memchr(line, '\n', (size_t)(end - line));
        const char *colon;
        size_t ll;

        if (!le) {
            break;
        }
        ll = (size_t)(le - line);
        if (ll > 0 && line[ll - 1] == '\r') {
            ll--;
        }
        if (ll == 0) {
            /* A body could be trickled: only bodiless requests may take the reserve. */
            *health = *health && !body;
            return API_HEAD_OK;
        }
        if (++headers > API_MAX_HEADERS) {
            return refuse(out, 431, API_REASON_TOO_LARGE, "more than %d header lines",
                          API_MAX_HEADERS);
        }
        colon = memchr(line, ':', ll);
        for (const char *q = line; colon && q < colon; q++) {
            if (!is_tchar((unsigned char)*q)) {
                colon = NULL;
            }
        }
        if (!colon || colon == line) {
            return refuse(out, 400, API_REASON_BAD_REQUEST,
                          "malformed header line (expected Name: value)");
        }
        for (const char *q = colon + 1; q < line + ll; q++) {
            if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f) {
                return refuse(out, 400, API_REASON_BAD_REQUEST, "control character in header %.*s",
                              (int)(colon - line), line);
            }
        }
        if ((size_t)(colon - line) == 17 && !strncasecmp(line, "Transfer-Encoding", 17)) {
            /* Bodies are small JSON: a length up front keeps chunk parsing (and its HTML errors)
             * out. */
            return refuse(out, 411, API_REASON_BAD_REQUEST,
                          "send the body with Content-Length, not Transfer-Encoding");
        }
        if ((size_t)(colon - line) == 14 && !strncasecmp(line, "Content-Length", 14)) {
            char num[24];
            const char *v = colon + 1;
            size_t vl;
            int64_t cl;
            while (v < line + ll && (*v == ' ' || *v == '\t')) {
                v++;
            }
            vl = (size_t)(line + ll - v);
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) {
                vl--;
            }
            snprintf(num, sizeof(num), "%.*s", (int)(vl < sizeof(num) ? vl : sizeof(num) - 1), v);
            if (vl == 0 || vl >= sizeof(num) || strspn(num, "0123456789") != vl ||
                !vg_parse_i64(num, &cl)) {
                return refuse(out, 400, API_REASON_BAD_REQUEST,
                              "Content-Length: expected a number of bytes");
            }
            body = cl > 0;
            if (cl > API_MAX_BODY_BYTES) {
                return refuse(out, 413, API_REASON_TOO_LARGE, "request body larger than %d bytes",
                              API_MAX_BODY_BYTES);
            }
        }
        line = le + 1;
    }
    if (n > API_MAX_HEADER_BYTES) {
        return refuse(out, 431, API_REASON_TOO_LARGE,
                      "request line and headers larger than %d bytes", API_MAX_HEADER_BYTES);
    }
    return API_HEAD_WAIT;
}

/* ---- the request target and body -------------------------------------------------- */

/* A control character (C0, DEL or C1) in s[0..n)? */
static bool has_control(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f ||
            (s[i] == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)) {
            return true;
        }
    }
    return false;
}

static int hex_value(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/*
 * Percent-decode s[0..n) into `out` ('+' is a space in a query); false on
 * a broken escape. Then say what is wrong with the result, or NULL.
 */
static const char *decoded_problem(const char *s, size_t n, bool query, struct vg_buf *out)
{
    vg_buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return "a broken %-escape";
            }
            vg_buf_putc(out, (char)(hi * 16 + lo));
            i += 2;
        } else {
            vg_buf_putc(out, query && s[i] == '+' ? ' ' : s[i]);
        }
    }
    if (has_control((const unsigned char *)out->data, out->len)) {
        return "a control character";
    }
    if (out->len && !vg_utf8_valid(out->data, out->len)) {
        return "bytes that are not valid UTF-8";
    }
    return NULL;
}

bool api_uri_problem(const char *uri, struct vg_buf *why, bool *too_many)
{
    const char *q = strchr(uri, '?');
    size_t pl = q ? (size_t)(q - uri) : strlen(uri);
    struct vg_buf dec = {0};
    const char *what = decoded_problem(uri, pl, false, &dec);
    size_t n_params = 0;
    bool bad = false;

    *too_many = false;
    if (what) {
        vg_buf_printf(why, "path: contains %s", what);
        bad = true;
    }
    for (const char *p = q ? q + 1 : NULL; !bad && p && *p;) {
        size_t len = strcspn(p, "&");
        size_t kl = strcspn(p, "=&");
        if (len > 0 && ++n_params > API_MAX_QUERY_PARAMS) {
            vg_buf_printf(why, "more than %d query parameters", API_MAX_QUERY_PARAMS);
            *too_many = true;
            bad = true;
        } else if (len > 0 && (what = decoded_problem(p, len, true, &dec)) != NULL) {
            vg_buf_printf(why, "query parameter \"%.*s\": contains %s", (int)(kl < 64 ? kl : 64), p,
                          what);
            bad = true;
        }
        p += len;
        p += *p == '&';
    }
    vg_buf_fini(&dec);
    return bad;
}

const char *api_body_problem(const char *s, size_t n)
{
    bool in_str = false;

    if (!vg_utf8_valid(s, n)) {
        return "body: not valid UTF-8";
    }
    if (vg_json_depth(s, n, API_MAX_JSON_DEPTH) > API_MAX_JSON_DEPTH) {
        return "body: nested deeper than 32 levels";
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!in_str) {
            in_str = ch == '"';
            continue;
        }
        if (ch == '"') {
            in_str = false;
        } else if (has_control((const unsigned char *)s + i, n - i > 1 ? 2 : 1)) {
            return "body: a string contains a control character";
        } else if (ch == '\\' && i + 1 < n) {
            char e = s[++i];
            long cp;
            if (strchr("bfnrt", e)) {
                return "body: a string contains a control character";
            }
            if (e != 'u') {
                continue;
            }
            cp = 0;
            for (int k = 1; k <= 4; k++) {
                int h = i + (size_t)k < n ? hex_value(s[i + (size_t)k]) : -1;
                if (h < 0) {
                    return "body: a broken \\u escape";
                }
                cp = cp * 16 + h;
            }
            i += 4;
            if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
                return "body: a string contains a control character (such as \\u0000)";
            }
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                return "body: a string contains a lone surrogate";
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                long lo = 0;
                if (i + 6 >= n || s[i + 1] != '\\' || s[i + 2] != 'u') {
                    return "body: a string contains a lone surrogate";
                }
                for (int k = 3; k <= 6; k++) {
                    int h = hex_value(s[i + (size_t)k]);
                    lo = h < 0 ? -1 : lo * 16 + h;
                    if (lo < 0) {
                        break;
                    }
                }
                if (lo < 0xdc00 || lo > 0xdfff) {
                    return "body: a string contains a lone surrogate";
                }
                i += 6;
            }
        }
    }
    return NULL;
}

/* ---- query parameter values ------------------------------------------------------- */

bool api_health_filter_ok(const char *health)
{
    return !health || !strcmp(health, "healthy") || !strcmp(health, "progressing") ||
           !strcmp(health, "unhealthy") || !strcmp(health, "unknown");
}

bool api_name_matches(const char *name, const char *q)
{
    size_t nl = strlen(name);
    size_t ql = strlen(q);

    for (size_t i = 0; i + ql <= nl; i++) {
        if (strncasecmp(name + i, q, ql) == 0) {
            return true;
        }
    }
    return false;
}

char *api_q_glob(const char *q)
{
    struct vg_buf b = {0};

    vg_buf_putc(&b, '*');
    for (const char *p = q; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (isalpha(ch) && ch < 0x80) {
            vg_buf_printf(&b, "[%c%c]", tolower(ch), toupper(ch));
        } else if (strchr("*?[]\\", ch)) {
            vg_buf_putc(&b, '\\');
            vg_buf_putc(&b, (char)ch);
        } else {
            vg_buf_putc(&b, (char)ch);
        }
    }
    vg_buf_putc(&b, '*');
    return vg_buf_steal(&b);
}

/* ---- cursors: hex of "name\x1fid" of the last item of a page ----------------- */

char *api_cursor_encode(const char *name, const char *id)
{
    struct vg_buf b = {0};
    const char *parts[2] = {name, id};

    for (int p = 0; p < 2; p++) {
        if (p) {
            vg_buf_puts(&b, "1f");
        }
        for (const char *s = parts[p]; *s; s++) {
            vg_buf_printf(&b, "%02x", (unsigned char)*s);
        }
    }
    return vg_buf_steal(&b);
}

bool api_cursor_decode(const char *hex, char **name, char **id)
{
    size_t len = strlen(hex);
    char *raw;
    char *sep;

    if (len == 0 || len % 2 || len > 2 * 16384) {
        return false;
    }
    raw = vg_malloc(len / 2 + 1);
    for (size_t i = 0; i < len / 2; i++) {
        char byte[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        char *end;
        long v;
        if (!isxdigit((unsigned char)byte[0]) || !isxdigit((unsigned char)byte[1])) {
            free(raw);
            return false;
        }
        v = strtol(byte, &end, 16);
        raw[i] = (char)v;
    }
    raw[len / 2] = '\0';
    sep = memchr(raw, 0x1f, len / 2);
    if (!sep || strlen(raw) != len / 2) {
        free(raw);
        return false;
    }
    *sep = '\0';
    *name = vg_strdup(raw);
    *id = vg_strdup(sep + 1);
    free(raw);
    return true;
}

/* ---- the body of POST /api/v1/silences ------------------------------------------- */

bool api_matcher_ok(const char *m)
{
    static const char *const keys[] = {"monitor",   "resource", "severity", "incident", "type",
                                       "workspace", "name",     "owner",    "version",  NULL};
    const char *eq = strchr(m, '=');
    size_t kl;

    if (!eq || eq == m || !eq[1]) {
        return false;
    }
    kl = (size_t)(eq - m);
    /* As `vigil silence add -m` (vg_rules_matcher_valid) has it: a key under 256 bytes, and a
     * glob whose brackets close (fnmatch would take an unclosed '[' as a literal one). */
    if (kl >= API_MATCHER_KEY_MAX || !vg_glob_valid(eq + 1)) {
        return false;
    }
    if (kl > 7 && !strncmp(m, "labels.", 7)) {
        return true;
    }
    for (size_t i = 0; keys[i]; i++) {
        if (strlen(keys[i]) == kl && !strncmp(keys[i], m, kl)) {
            return true;
        }
    }
    return false;
}

bool api_silence_parse(const char *body, size_t len, int64_t now, struct vg_silence *s,
                       struct vg_buf *why)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *m;
    const cJSON *it;
    const cJSON *v;
    bool ok = false;

    memset(s, 0, sizeof(*s));
    if (!root || !cJSON_IsObject(root)) {
        vg_buf_printf(why, "body: expected a JSON object");
        goto out;
    }
    cJSON_ArrayForEach(it, root)
    {
        static const char *const keys[] = {"matchers", "starts_at",  "ends_at", "duration",
                                           "comment",  "created_by", NULL};
        bool known = false;
        for (size_t i = 0; keys[i]; i++) {
            known |= !strcmp(keys[i], it->string);
        }
        if (!known) {
            vg_buf_printf(why, "body: unknown key \"%s\"", it->string);
            goto out;
        }
    }
    m = cJSON_GetObjectItemCaseSensitive(root, "matchers");
    if (cJSON_IsObject(m)) { /* {"monitor": "x", ...} is the same as ["monitor=x", ...] */
        cJSON_ArrayForEach(it, m)
        {
            if (!cJSON_IsString(it)) {
                vg_buf_printf(why, "matchers.%s: expected a string", it->string);
                goto out;
            }
        }
    } else if (!cJSON_IsArray(m)) {
        vg_buf_printf(why, "matchers: expected [\"key=glob\", ...] or {\"key\": \"glob\"}");
        goto out;
    }
    s->matchers = vg_calloc(MAX_MATCHERS, sizeof(*s->matchers));
    cJSON_ArrayForEach(it, m)
    {
        char *text;
        if (s->n_matchers == MAX_MATCHERS) {
            vg_buf_printf(why, "matchers: at most %d", MAX_MATCHERS);
            goto out;
        }
        if (cJSON_IsObject(m)) {
            text = vg_asprintf("%s=%s", it->string, it->valuestring);
        } else if (cJSON_IsString(it)) {
            text = vg_strdup(it->valuestring);
        } else {
            vg_buf_printf(why, "matchers: expected strings \"key=glob\"");
            goto out;
        }
        s->matchers[s->n_matchers++] = text;
        if (!api_matcher_ok(text)) {
            const char *eq = strchr(text, '=');

            if (eq && eq[1] && !vg_glob_valid(eq + 1)) {
                vg_buf_printf(why, "matchers: \"%s\": invalid glob (unbalanced [ ])", text);
            } else {
                vg_buf_printf(why,
                              "matchers: \"%s\": expected key=glob with key one of monitor, "
                              "resource, severity, incident, type, workspace, name, owner, "
                              "version, labels.<key>",
                              text);
            }
            goto out;
        }
    }
    if (s->n_matchers == 0) {
        vg_buf_printf(why, "matchers: at least one is needed (a silence of everything is a "
                           "mistake)");
        goto out;
    }
    s->starts_at_ms = now;
    v = cJSON_GetObjectItemCaseSensitive(root, "starts_at");
    if (v && (!cJSON_IsString(v) ||
              !vg_time_parse_rfc3339(v->valuestring, strlen(v->valuestring), &s->starts_at_ms))) {
        vg_buf_printf(why, "starts_at: expected an RFC 3339 time");
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "ends_at");
    it = cJSON_GetObjectItemCaseSensitive(root, "duration");
    if ((v != NULL) == (it != NULL)) {
        vg_buf_printf(why, "give either ends_at (RFC 3339) or duration (\"2h\")");
        goto out;
    }
    if (v && (!cJSON_IsString(v) ||
              !vg_time_parse_rfc3339(v->valuestring, strlen(v->valuestring), &s->ends_at_ms))) {
        vg_buf_printf(why, "ends_at: expected an RFC 3339 time");
        goto out;
    }
    if (it) {
        int64_t d;
        if (!cJSON_IsString(it) || !vg_duration_parse(it->valuestring, &d) || d <= 0) {
            vg_buf_printf(why, "duration: expected a duration such as \"30m\" or \"2h\"");
            goto out;
        }
        /* starts_at may be years ahead: the sum must not overflow (no silence lasts that long) */
        if (s->starts_at_ms > 0 && d > INT64_MAX - s->starts_at_ms) {
            vg_buf_printf(why, "duration: too long");
            goto out;
        }
        s->ends_at_ms = s->starts_at_ms + d;
    }
    if (s->ends_at_ms <= s->starts_at_ms || s->ends_at_ms <= now) {
        vg_buf_printf(why, "ends_at: must be after starts_at and in the future");
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "comment");
    if (v && !cJSON_IsString(v)) {
        vg_buf_printf(why, "comment: expected a string");
        goto out;
    }
    s->comment = vg_strdup(v ? v->valuestring : "");
    v = cJSON_GetObjectItemCaseSensitive(root, "created_by");
    if (v && !cJSON_IsString(v)) {
        vg_buf_printf(why, "created_by: expected a string");
        goto out;
    }
    s->created_by = vg_strdup(v ? v->valuestring : "api");
    ok = true;
out:
    cJSON_Delete(root);
    return ok;
}
