/*
 * libFuzzer target for the HTTP API's request parsing (api/api_parse.c),
 * without sockets: the input is what a client sends, request line, headers
 * and body. It goes where the server sends it: the acceptor's head check;
 * the request target's escapes and parameter count; the path split and
 * decoded as libmicrohttpd does (MHD_http_unescape), a /api/v1 resource id
 * and its /history suffix; each query parameter's value through the parser
 * its endpoint uses (limit, cursor, q, health, status); the body through
 * the JSON check and, as POST /api/v1/silences would, the silence parser.
 * Checked: a cursor decodes to what encodes to it, a name holding q
 * matches q and its glob, a parsed silence holds only valid matchers and
 * ends after it starts and after now.
 * Built with clang -fsanitize=fuzzer,address,undefined (tests/fuzz.cmake).
 */
#include <fnmatch.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"
#include "vigil/json.h"
#include "vigil/page.h"
#include "vigil/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_MS INT64_C(1795860000000)

static void check_cursor(const char *hex)
{
    char *name = NULL;
    char *id = NULL;
    char *again;

    if (!api_cursor_decode(hex, &name, &id)) {
        return;
    }
    again = api_cursor_encode(name, id);
    if (strcasecmp(again, hex) != 0) {
        abort(); /* a cursor is what encodes to it */
    }
    free(again);
    free(name);
    free(id);
}

static void check_q(const char *q)
{
    char *glob;
    char *name;

    if (strlen(q) > 256) {
        return; /* the handler refuses it first */
    }
    glob = api_q_glob(q);
    name = vg_asprintf("Ingest-%s-x", q);
    if (!api_name_matches(name, q) || fnmatch(glob, name, 0) != 0) {
        abort(); /* a name holding q is found, by the scan and by the index's glob */
    }
    free(name);
    free(glob);
}

static void check_param(const char *key, const char *value)
{
    int64_t n;

    /* the time and duration parsers of silence bodies and `vigil replay --from`, on any value */
    (void)vg_time_parse_rfc3339(value, strlen(value), &n);
    (void)vg_duration_parse(value, &n);
    if (!strcmp(key, "limit")) {
        (void)vg_parse_i64(value, &n);
    } else if (!strcmp(key, "cursor")) {
        check_cursor(value);
    } else if (!strcmp(key, "q")) {
        check_q(value);
    } else if (!strcmp(key, "health")) {
        (void)api_health_filter_ok(value);
    }
}

/* The query as libmicrohttpd splits it: '&' between parameters, the first '=' in each. */
static void check_query(char *query)
{
    for (char *p = query; p && *p;) {
        char *amp = strchr(p, '&');
        char *eq;

        if (amp) {
            *amp = '\0';
        }
        eq = strchr(p, '=');
        if (eq) {
            *eq = '\0';
        }
        MHD_http_unescape(p);
        if (eq) {
            MHD_http_unescape(eq + 1);
        }
        check_param(p, eq ? eq + 1 : "");
        p = amp ? amp + 1 : NULL;
    }
}

static void check_target(const char *target)
{
    struct vg_buf why = {0};
    bool too_many;
    char *path;
    char *q;

    if (api_uri_problem(target, &why, &too_many)) {
        if (!why.data || !why.data[0]) {
            abort(); /* a refusal says why */
        }
        vg_buf_fini(&why);
        return;
    }
    path = vg_strdup(target);
    q = strchr(path, '?');
    if (q) {
        *q++ = '\0';
        check_query(q);
    }
    MHD_http_unescape(path);
    if (!strncmp(path, "/api/v1/resources/", 18) && path[18]) {
        size_t il = strlen(path + 18);
        char *id = il > 8 && !strcmp(path + 18 + il - 8, "/history") ? vg_strndup(path + 18, il - 8)
                                                                     : vg_strdup(path + 18);

        if (!vg_utf8_valid(id, strlen(id))) {
            abort(); /* the target's check let no broken id through */
        }
        free(id);
    }
    free(path);
}

static void check_body(const char *body, size_t len)
{
    struct vg_silence s;
    struct vg_buf why = {0};

    (void)api_body_problem(body, len);
    if (!api_silence_parse(body, len, NOW_MS, &s, &why)) {
        if (!why.data || !why.data[0]) {
            abort();
        }
    } else {
        if (s.n_matchers == 0 || s.ends_at_ms <= s.starts_at_ms || s.ends_at_ms <= NOW_MS ||
            !s.comment || !s.created_by) {
            abort();
        }
        for (size_t i = 0; i < s.n_matchers; i++) {
            if (!api_matcher_ok(s.matchers[i])) {
                abort();
            }
        }
    }
    vg_silence_fini(&s);
    vg_buf_fini(&why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct api_head head;
    enum api_head_verdict v;
    const char *eol;
    const char *sp1;
    const char *sp2;
    const char *blank;
    char *req;

    if (!ready) {
        vg_json_init();
        ready = 1;
    }
    req = malloc(size + 1); /* as peeked: h[n] is a NUL, and ASan sees any over-read */
    memcpy(req, data, size);
    req[size] = '\0';
    v = api_head_check(req, size, &head);
    if (v == API_HEAD_REFUSED && (head.status < 400 || head.status > 599 || !head.message[0])) {
        abort();
    }
    eol = memchr(req, '\n', size);
    sp1 = eol ? memchr(req, ' ', (size_t)(eol - req)) : NULL;
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (v == API_HEAD_OK && sp2) {
        char *target = vg_strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));

        check_target(target);
        free(target);
    }
    blank = strstr(req, "\r\n\r\n");
    if (blank) {
        size_t off = (size_t)(blank + 4 - req);
        char *body = malloc(size - off ? size - off : 1); /* exact size, not NUL-terminated */

        memcpy(body, req + off, size - off);
        check_body(body, size - off);
        free(body);
    }
    free(req);
    return 0;
}
