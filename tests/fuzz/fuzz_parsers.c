/*
 * libFuzzer target for the small parsers of outside input that have no
 * target of their own. The first byte picks one; the rest is its input:
 *   0  a redis URL (`redis.url`, state_url_parse) and its redacted form
 *   1  silence matchers ("key=glob", from `vigil silence add -m` and
 *      POST /api/v1/silences), then applied to an incident by a ruleset
 *   2  the `vigil get -n` name glob against a name, and its literal prefix
 *      (what the name index is narrowed by)
 *   3  the JSON helpers of core/json.c (the pre-parse scan, UTF-8, depth,
 *      string escaping), each against a plain byte-by-byte reference
 *   4  what vigil reads back from Redis: a silence, a page body (outbox),
 *      a grouped body, an incident record, the rules' state of an incident
 *   5  RFC 3339 times and durations (`--start`, `--for`, `--from`)
 *   6  a Resource hash as HGETALL returns it (state/state_resource.c); with
 *      an odd first byte / 7 (13, 27, ...), a history stream entry as
 *      XRANGE returns it (state/state_history_entry.c)
 * Built with clang -fsanitize=fuzzer,address,undefined (tests/fuzz.cmake).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api_int.h"
#include "state_int.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/rules.h"
#include "vigil/util.h"

#include "fuzz_rules_fire.h"

/* ---- 6: a Resource hash (HGETALL) ---------------------------------------- */

static redisReply *reply_str(const char *s, size_t len)
{
    redisReply *r = vg_calloc(1, sizeof(*r));

    r->type = REDIS_REPLY_STRING;
    r->str = vg_malloc(len + 1); /* as hiredis: NUL-terminated, exact size for ASan */
    memcpy(r->str, s, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static void reply_free(redisReply *r)
{
    for (size_t i = 0; i < r->elements; i++) {
        reply_free(r->element[i]);
    }
    vg_free(r->element);
    vg_free(r->str);
    vg_free(r);
}

static void reply_push(redisReply *arr, redisReply *el)
{
    arr->element = vg_realloc(arr->element, (arr->elements + 1) * sizeof(*arr->element));
    arr->element[arr->elements++] = el;
}

/* The arguments of a state_cmd ("$<len>\r\n<bytes>\r\n" each, after the head) as a reply. */
static redisReply *reply_of_cmd(const struct state_cmd *c)
{
    redisReply *arr = vg_calloc(1, sizeof(*arr));
    size_t i = STATE_CMD_HEAD;

    arr->type = REDIS_REPLY_ARRAY;
    while (i < c->len) {
        char *end;
        unsigned long long n;

        if (c->buf[i] != '$') {
            abort();
        }
        n = strtoull(c->buf + i + 1, &end, 10);
        if (end[0] != '\r' || end[1] != '\n' || (size_t)(end + 2 - c->buf) + n + 2 > c->len) {
            abort(); /* the command builder wrote a broken frame */
        }
        reply_push(arr, reply_str(end + 2, (size_t)n));
        i = (size_t)(end + 2 - c->buf) + (size_t)n + 2;
    }
    return arr;
}

/*
 * Lines are field, value, field, value... of a Resource hash as HGETALL
 * returns it. What reads as a Resource is written back (its fields), read
 * again and written again: the two writes are the same bytes.
 */
static void check_resource_hash(const char *text, size_t len)
{
    redisReply *arr = vg_calloc(1, sizeof(*arr));
    struct vg_resource *res;
    char why[256];

    arr->type = REDIS_REPLY_ARRAY;
    for (size_t i = 0; i <= len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) : len - i;

        reply_push(arr, reply_str(text + i, n));
        i += n + 1;
    }
    res = state_resource_from_reply(arr, why, sizeof(why));
    if (res) {
        struct state_cmd one = {0};
        struct state_cmd two = {0};
        struct vg_resource *again;
        redisReply *back;

        state_resource_fields(&one, res);
        back = reply_of_cmd(&one);
        again = state_resource_from_reply(back, why, sizeof(why));
        if (!again) {
            fprintf(stderr, "a written Resource does not read back: %s\n", why);
            abort();
        }
        state_resource_fields(&two, again);
        if (one.len != two.len || memcmp(one.buf + STATE_CMD_HEAD, two.buf + STATE_CMD_HEAD,
                                         one.len - STATE_CMD_HEAD) != 0) {
            fprintf(stderr, "%.*s\n---\n%.*s\n", (int)(one.len - STATE_CMD_HEAD),
                    one.buf + STATE_CMD_HEAD, (int)(two.len - STATE_CMD_HEAD),
                    two.buf + STATE_CMD_HEAD);
            abort();
        }
        state_cmd_fini(&one);
        state_cmd_fini(&two);
        reply_free(back);
        vg_resource_destroy(again);
        vg_resource_destroy(res);
    }
    reply_free(arr);
}

/* ---- 6, odd: a history stream entry (XRANGE) ------------------------------ */

static bool has_sep(const char *s)
{
    return s && strchr(s, STATE_PIECE_SEP) != NULL;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/*
 * Lines are name, value, name, value... of one stream entry. What reads as
 * transitions is checked for shape; each transition whose values the
 * packed pairs can hold is written as `t` + `s` + message and read back:
 * the same transition.
 */
static void check_history_entry(const char *text, size_t len)
{
    redisReply *entry = vg_calloc(1, sizeof(*entry));
    redisReply *fields = vg_calloc(1, sizeof(*fields));
    struct vg_history_entry *v = NULL;
    size_t n = 0;
    size_t cap = 0;
    const char *why = NULL;

    entry->type = REDIS_REPLY_ARRAY;
    fields->type = REDIS_REPLY_ARRAY;
    reply_push(entry, reply_str("1-0", 3));
    reply_push(entry, fields);
    for (size_t i = 0; i <= len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t k = nl ? (size_t)(nl - (text + i)) : len - i;

        reply_push(fields, reply_str(text + i, k));
        i += k + 1;
    }
    if (!state_history_entry_read(entry, &v, &n, &cap, &why)) {
        if (n != 0 || !why) {
            abort(); /* refused: nothing appended, and a reason */
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct vg_history_entry *e = &v[i];
        struct state_cmd c = {0};
        redisReply *back;
        redisReply *again;
        struct vg_history_entry *w = NULL;
        size_t nw = 0;
        size_t capw = 0;

        if (strcmp(e->stream_id, "1-0") != 0 || (e->field && !e->to) || (e->to && !e->from)) {
            abort();
        }
        if (!e->field || !e->field[0] || !e->to[0] || has_sep(e->field) || has_sep(e->from) ||
            has_sep(e->to) || has_sep(e->pos.topic)) {
            continue; /* a log line, or values only the older layout can hold */
        }
        state_history_transition(&c, e->field, e->from, e->to);
        state_history_source(&c, e->at_ms, &e->pos, e->message);
        back = reply_of_cmd(&c);
        again = vg_calloc(1, sizeof(*again));
        again->type = REDIS_REPLY_ARRAY;
        reply_push(again, reply_str("1-0", 3));
        reply_push(again, back);
        if (!state_history_entry_read(again, &w, &nw, &capw, &why) || nw != 1 ||
            !same_str(w[0].field, e->field) || !same_str(w[0].from, e->from) ||
            !same_str(w[0].to, e->to) || w[0].at_ms != e->at_ms ||
            w[0].pos.partition != e->pos.partition || w[0].pos.offset != e->pos.offset ||
            !same_str(w[0].pos.topic, e->pos.topic) || !same_str(w[0].message, e->message)) {
            fprintf(stderr, "a packed transition does not read back (%s)\n", why ? why : "differs");
            abort();
        }
        vg_history_free(w, nw);
        reply_free(again);
        state_cmd_fini(&c);
    }
    vg_history_free(v, n);
    reply_free(entry);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_MS INT64_C(1795860000000)
#define MAX_LINES 8

/* ---- 0: the redis URL ------------------------------------------------------ */

/*
 * The password of a redis:// URL as the parser reads it (between the first ':'
 * of the userinfo and the last '@'), when it is long enough to tell apart, must
 * appear in `text` (a redacted URL, an error) no more often than elsewhere in
 * the URL.
 */
static void check_no_password(const char *url, const char *text)
{
    const char *rest = url + 8;
    const char *at;
    const char *colon;
    char *secret;
    char *others;

    if (strncmp(url, "redis://", 8) != 0) {
        return;
    }
    at = strrchr(rest, '@');
    colon = at ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
    if (!colon || at - colon - 1 < 4) {
        return;
    }
    secret = vg_strndup(colon + 1, (size_t)(at - colon - 1));
    others = vg_asprintf("%.*s%s", (int)(colon + 1 - url), url, at);
    if (strstr(text, secret) && !strstr(others, secret)) {
        fprintf(stderr, "url: %s\nshows its password: %s\n", url, text);
        abort();
    }
    vg_free(others);
    vg_free(secret);
}

/*
 * What the redacted form of a parsed URL must be: the URL with its
 * password (TCP: between the userinfo's ':' and the '@'; unix: the whole
 * query) replaced by <redacted>, and nothing else changed.
 */
static void check_url(const char *url)
{
    struct state_url u;
    char errstr[512];
    char redacted[1024];
    char want[1024];
    size_t len = strlen(url);

    errstr[0] = '\0';
    vg_redact_url(url, redacted, sizeof(redacted));
    check_no_password(url, redacted);
    if (state_url_parse(url, &u, errstr, sizeof(errstr)) != VG_OK) {
        if (!errstr[0] || u.host || u.path || u.user || u.pass) {
            abort(); /* a refusal says why and leaves nothing to free */
        }
        check_no_password(url, errstr);
        return;
    }
    if (u.is_unix) {
        const char *q = strchr(url, '?');

        if (!u.path || u.path[0] != '/' || u.host) {
            abort();
        }
        if (q) {
            snprintf(want, sizeof(want), "%.*s?<redacted>", (int)(q - url), url);
        } else {
            snprintf(want, sizeof(want), "%s", url);
        }
    } else {
        const char *rest = url + 8;
        const char *at = strrchr(rest, '@');

        if (!u.host || !u.host[0] || u.port < 1 || u.port > 65535 || u.path) {
            abort();
        }
        if (at) {
            const char *colon = memchr(rest, ':', (size_t)(at - rest));

            if (!colon || !u.pass || !u.pass[0]) {
                abort();
            }
            snprintf(want, sizeof(want), "%.*s<redacted>%s", (int)(colon + 1 - url), url, at);
        } else {
            snprintf(want, sizeof(want), "%s", url);
        }
    }
    if (u.db < 0 || (u.user && !u.pass)) {
        abort();
    }
    if (len < 900 && strcmp(want, redacted) != 0) {
        fprintf(stderr, "url: %s\nredacted: %s\nwant: %s\n", url, redacted, want);
        abort(); /* the log line would show more than the password's place */
    }
    state_url_fini(&u);
}

/* ---- 1: silence matchers ---------------------------------------------------- */

static struct vg_ruleset *rs;

/* One monitor that fires on runtime -> failed, one pager that takes everything. */
static const char rules_yaml[] = "monitors:\n"
                                 "  - name: m\n"
                                 "    match: {type: workflow}\n"
                                 "    when: {runtime: {to: failed}}\n"
                                 "    severity: high\n"
                                 "    incident: inc\n"
                                 "    labels: {team: t}\n"
                                 "pagers:\n"
                                 "  - name: p\n"
                                 "    match: {type: workflow}\n"
                                 "    sinks: [console]\n";

static size_t split_lines(char *s, char **lines, size_t max)
{
    size_t n = 0;

    while (n < max) {
        char *nl = strchr(s, '\n');

        lines[n++] = s;
        if (!nl) {
            break;
        }
        *nl = '\0';
        s = nl + 1;
    }
    return n;
}

/* The value a matcher's key names on the incident built below; NULL when not known here. */
static const char *subject_value(const char *key, const char *name, const char *id)
{
    static const char *const fixed[][2] = {
        {"monitor", "m"}, {"severity", "high"},    {"incident", "inc"},  {"type", "workflow"},
        {"owner", "o"},   {"workspace", "public"}, {"labels.team", "t"}, {"version", "v1"},
    };

    if (!strcmp(key, "name")) {
        return name;
    }
    if (!strcmp(key, "resource")) {
        return id;
    }
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (!strcmp(key, fixed[i][0])) {
            return fixed[i][1];
        }
    }
    return strncmp(key, "labels.", 7) == 0 ? "" : NULL; /* a label the incident lacks */
}

/* Does a silence of `matchers` hold for workflow `name` failing, as a reference? -1: unknown. */
static int expect_silenced(char *const *matchers, size_t n, const char *name, const char *id)
{
    int all = 1;

    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(matchers[i], '=');
        char key[64];
        const char *v;

        if ((size_t)(eq - matchers[i]) >= sizeof(key)) {
            return -1;
        }
        memcpy(key, matchers[i], (size_t)(eq - matchers[i]));
        key[eq - matchers[i]] = '\0';
        v = subject_value(key, name, id);
        if (!v || strchr(eq + 1, '\\')) {
            return -1; /* an escape: a glob or literal text, the docs do not say */
        }
        if (vg_is_glob(eq + 1) ? !vg_glob_match(eq + 1, v) : strcmp(eq + 1, v) != 0) {
            all = 0;
        }
    }
    return all;
}

static void eval_silence(const struct vg_silence *s, const char *name)
{
    static char wf[] = "workflow";
    static char *batch[] = {wf};
    const struct vg_health_config hc = {batch, 1};
    static const char *const runtimes[] = {"running", "failed"};
    struct vg_rules_out out = {0};
    struct vg_resource *res = NULL;
    struct vg_rules_env env = {.now_ms = NOW_MS, .silences = s, .n_silences = 1};
    size_t pages = 0;
    char *id = vg_resource_id("workflow", "v1", name, "public");
    int want = expect_silenced(s->matchers, s->n_matchers, name, id);

    for (size_t i = 0; i < 2; i++) {
        struct vg_event ev;
        struct vg_transition tr[3];
        size_t nt;

        memset(&ev, 0, sizeof(ev));
        ev.type = vg_strdup("workflow");
        ev.name = vg_strdup(name);
        ev.workspace = vg_strdup("public");
        ev.version = vg_strdup("v1");
        ev.owner = vg_strdup("o");
        ev.id = vg_strdup(id);
        snprintf(ev.status, sizeof(ev.status), "active");
        snprintf(ev.runtime, sizeof(ev.runtime), "%s", runtimes[i]);
        ev.time_ms = NOW_MS - 1000 + (int64_t)i;
        ev.pos.topic = vg_strdup("t");
        ev.pos.offset = (int64_t)i;
        if (!res) {
            res = vg_resource_new_from_event(&ev);
        }
        nt = vg_resource_apply(&hc, res, &ev, tr);
        vg_rules_eval_event(rs, &env, res, &ev, tr, nt, &out);
        pages += out.pages.n;
        vg_rules_out_clear(&out);
        vg_event_fini(&ev);
    }
    if (want >= 0 && (pages == 0) != (want == 1)) {
        fprintf(stderr, "name \"%s\": %zu pages, silence expected to %s\n", name, pages,
                want ? "hold" : "not hold");
        abort();
    }
    vg_resource_destroy(res);
    vg_rules_out_fini(&out);
    vg_free(id);
}

/*
 * Line 1 is a resource name, every further line a matcher. The CLI
 * (vg_rules_matcher_valid) and the API (api_matcher_ok) must agree on
 * each; a silence of valid ones survives its JSON form and, applied to
 * the failing workflow, holds back its page exactly when each matcher
 * holds.
 */
static void check_matchers(char *text)
{
    char *lines[MAX_LINES + 1];
    size_t n = split_lines(text, lines, MAX_LINES + 1);
    struct vg_silence s = {0};
    struct vg_silence back;
    char errstr[512];
    char *json;

    if (n < 2 || !vg_utf8_valid(lines[0], strlen(lines[0]))) {
        return;
    }
    for (size_t i = 1; i < n; i++) {
        bool cli = vg_rules_matcher_valid(lines[i], errstr, sizeof(errstr));
        bool api = api_matcher_ok(lines[i]);

        if (cli != api) {
            fprintf(stderr, "matcher \"%s\": the CLI says %s, the API %s\n", lines[i],
                    cli ? "valid" : errstr, api ? "valid" : "invalid");
            abort();
        }
        if (!cli) {
            return;
        }
    }
    s.id = vg_strdup("s1");
    s.matchers = vg_calloc(n - 1, sizeof(char *));
    for (size_t i = 1; i < n; i++) {
        s.matchers[s.n_matchers++] = vg_strdup(lines[i]);
    }
    s.starts_at_ms = NOW_MS - 60000;
    s.ends_at_ms = NOW_MS + 60000;
    s.comment = vg_strdup("fuzz");
    s.created_by = vg_strdup("fuzz");
    json = vg_silence_to_json(&s);
    if (!vg_silence_from_json(&back, json, strlen(json)) || back.n_matchers != s.n_matchers) {
        abort(); /* what we write we must read */
    }
    for (size_t i = 0; i < s.n_matchers; i++) {
        if (strcmp(back.matchers[i], s.matchers[i]) != 0) {
            abort();
        }
    }
    vg_silence_fini(&back);
    vg_free(json);
    eval_silence(&s, lines[0]);
    vg_silence_fini(&s);
}

/* ---- 2: the name glob of `vigil get -n` ------------------------------------ */

/* Line 1 a glob, line 2 a name: a name it matches starts with the prefix the index is read by. */
static void check_name_glob(char *text)
{
    char *lines[2];
    size_t lit;

    if (split_lines(text, lines, 2) < 2 || !vg_glob_valid(lines[0])) {
        return;
    }
    lit = strcspn(lines[0], "*?[\\");
    if (vg_glob_match(lines[0], lines[1]) && strncmp(lines[0], lines[1], lit) != 0) {
        abort();
    }
    if (!vg_is_glob(lines[0]) && !strchr(lines[0], '\\') &&
        vg_glob_match(lines[0], lines[1]) != (strcmp(lines[0], lines[1]) == 0)) {
        abort(); /* without metacharacters a glob is the name itself */
    }
}

/* ---- 3: core/json.c against references -------------------------------------- */

/* Well-formed UTF-8 by the Unicode standard's table of byte sequences; the sequence length or 0. */
static size_t ref_utf8_len(const unsigned char *p, size_t len)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    size_t n;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (len < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t k = 2; k < n; k++) {
        if (p[k] < 0x80 || p[k] > 0xbf) {
            return 0;
        }
    }
    return n;
}

/* vg_json_scan one byte at a time, as its contract reads. */
static enum vg_json_scan_result ref_scan(const unsigned char *p, size_t len, int max_depth,
                                         struct vg_json_scan *out)
{
    int depth = 0;
    bool in_str = false;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];

        if (c >= 0x80) {
            size_t n = ref_utf8_len(p + i, len - i);

            if (n == 0) {
                out->at = i;
                return VG_JSON_SCAN_NOT_UTF8;
            }
            i += n - 1;
        } else if (in_str) {
            if (c == '"') {
                in_str = false;
            } else if (c < 0x20) {
                out->at = i;
                return VG_JSON_SCAN_CONTROL_CHAR;
            } else if (c == '\\' && i + 1 < len) {
                if (p[i + 1] == '"' || p[i + 1] == '\\') {
                    i++;
                } else if (len - i >= 6 && !memcmp(p + i + 1, "u0000", 5)) {
                    out->nul_escape = true;
                }
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
            if (depth > out->depth) {
                out->depth = depth;
                if (depth > max_depth) {
                    out->at = i;
                    return VG_JSON_SCAN_TOO_DEEP;
                }
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return VG_JSON_SCAN_OK;
}

static void check_json_helpers(const char *json, size_t len, int max_depth)
{
    struct vg_json_scan got;
    struct vg_json_scan want;
    enum vg_json_scan_result r = vg_json_scan(json, len, max_depth, &got);
    enum vg_json_scan_result wr = ref_scan((const unsigned char *)json, len, max_depth, &want);
    bool utf8 = true;

    if (r != wr || (r != VG_JSON_SCAN_OK && got.at != want.at) || got.depth != want.depth ||
        (r == VG_JSON_SCAN_OK && got.nul_escape != want.nul_escape)) {
        fprintf(stderr, "scan: got %d at %zu depth %d nul %d, want %d at %zu depth %d nul %d\n",
                (int)r, got.at, got.depth, got.nul_escape, (int)wr, want.at, want.depth,
                want.nul_escape);
        abort();
    }
    for (size_t i = 0; i < len;) {
        size_t n = ref_utf8_len((const unsigned char *)json + i, len - i);

        if (n == 0) {
            utf8 = false;
            break;
        }
        i += n;
    }
    if (vg_utf8_valid(json, len) != utf8) {
        abort();
    }
    if (r == VG_JSON_SCAN_OK && vg_json_depth(json, len, max_depth) != got.depth) {
        abort(); /* the two depth counters agree on what the scan passes */
    }
}

/* A NUL-free valid UTF-8 string, escaped: cJSON reads back the same text, and the scan passes it.
 */
static void check_json_string(const char *s)
{
    struct vg_buf b = {0};
    struct vg_json_scan sc;
    cJSON *back;

    if (!vg_utf8_valid(s, strlen(s))) {
        return;
    }
    vg_json_append_string(&b, s);
    back = cJSON_ParseWithLength(b.data, b.len);
    if (!back || !cJSON_IsString(back) || strcmp(back->valuestring, s) != 0) {
        abort();
    }
    if (vg_json_scan(b.data, b.len, 1, &sc) != VG_JSON_SCAN_OK || sc.nul_escape) {
        abort();
    }
    cJSON_Delete(back);
    vg_buf_fini(&b);
}

/* ---- 4: what vigil reads back from Redis ------------------------------------ */

/* Read, write, read, write: the two writes are the same text (nothing is lost or invented). */
static void check_stored(const char *json, size_t len)
{
    struct vg_silence s;
    struct vg_page pg;
    struct vg_pages group = {0};
    struct vg_incident_record r;
    char errstr[256];

    if (vg_silence_from_json(&s, json, len)) {
        char *one = vg_silence_to_json(&s);
        struct vg_silence again;
        char *two;

        if (!vg_silence_from_json(&again, one, strlen(one))) {
            abort();
        }
        two = vg_silence_to_json(&again);
        if (strcmp(one, two) != 0) {
            abort();
        }
        vg_free(two);
        vg_silence_fini(&again);
        vg_free(one);
        vg_silence_fini(&s);
    }
    memset(&pg, 0, sizeof(pg));
    if (vg_page_from_json(&pg, json, len, errstr, sizeof(errstr)) == VG_OK) {
        char *one = vg_page_to_json(&pg);
        struct vg_page again;
        char *two;

        memset(&again, 0, sizeof(again));
        if (vg_page_from_json(&again, one, strlen(one), errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "%s\n%s\n", one, errstr);
            abort();
        }
        two = vg_page_to_json(&again);
        if (strcmp(one, two) != 0) {
            fprintf(stderr, "%s\n%s\n", one, two);
            abort();
        }
        vg_free(two);
        vg_page_fini(&again);
        vg_free(one);
    }
    vg_page_fini(&pg);
    (void)vg_page_json_is_group(json, len);
    (void)vg_page_group_from_json(&group, json, len, errstr, sizeof(errstr));
    for (size_t i = 0; i < group.n; i++) {
        vg_free(vg_page_to_json(&group.items[i]));
    }
    vg_pages_fini(&group);
    if (vg_incident_record_from_json(&r, json, len)) {
        char *one = vg_incident_record_to_json(&r);
        struct vg_incident_record again;
        char *two;

        if (!vg_incident_record_from_json(&again, one, strlen(one))) {
            abort();
        }
        two = vg_incident_record_to_json(&again);
        if (strcmp(one, two) != 0) {
            fprintf(stderr, "%s\n%s\n", one, two);
            abort();
        }
        vg_free(two);
        vg_incident_record_fini(&again);
        vg_free(one);
        vg_incident_record_fini(&r);
    }
}

/*
 * The rules' own state of an incident, as read back with its Resource
 * (`data`, opaque outside rules/): the failing workflow of section 1 with
 * an entry for its monitor holding `data`, in each state, evaluated on a
 * failure and a recovery, and its timers fired.
 */
static void check_incident_data(const char *data)
{
    static char wf[] = "workflow";
    static char *batch[] = {wf};
    const struct vg_health_config hc = {batch, 1};
    static const char *const states[] = {"firing", "pending", "resolved", NULL};
    static const char *const runtimes[] = {"running", "failed", "running"};

    for (size_t k = 0; k < VG_ARRAY_LEN(states); k++) {
        struct vg_rules_out out = {0};
        struct vg_resource *res = NULL;

        for (size_t i = 0; i < VG_ARRAY_LEN(runtimes); i++) {
            struct vg_rules_env env = {.now_ms = NOW_MS + (int64_t)i * 1000};
            struct vg_event ev;
            struct vg_transition tr[3];
            size_t nt;

            memset(&ev, 0, sizeof(ev));
            ev.type = vg_strdup("workflow");
            ev.name = vg_strdup("ingestion-x");
            ev.workspace = vg_strdup("public");
            ev.version = vg_strdup("v1");
            ev.owner = vg_strdup("o");
            ev.id = vg_resource_id("workflow", "v1", "ingestion-x", "public");
            snprintf(ev.status, sizeof(ev.status), "active");
            snprintf(ev.runtime, sizeof(ev.runtime), "%s", runtimes[i]);
            ev.time_ms = env.now_ms;
            ev.pos.topic = vg_strdup("t");
            ev.pos.offset = (int64_t)i;
            if (!res) {
                struct vg_open_incident *inc;

                res = vg_resource_new_from_event(&ev);
                inc = vg_resource_add_incident(res, "m", "8c0f6a1e2b3d4c5f", "high", NOW_MS);
                inc->state = states[k] ? vg_strdup(states[k]) : NULL;
                inc->data = vg_strdup(data);
            }
            nt = vg_resource_apply(&hc, res, &ev, tr);
            vg_rules_eval_event(rs, &env, res, &ev, tr, nt, &out);
            fuzz_fire_first_timer(rs, res, &out);
            vg_rules_out_clear(&out);
            vg_event_fini(&ev);
        }
        vg_resource_destroy(res);
        vg_rules_out_fini(&out);
    }
}

/* ---- 5: times and durations ------------------------------------------------- */

static void check_times(const char *s)
{
    int64_t ms;
    int64_t again;
    char text[64];

    if (vg_time_parse_rfc3339(s, strlen(s), &ms)) {
        vg_time_format_rfc3339(ms, text, sizeof(text));
        if (!vg_time_parse_rfc3339(text, strlen(text), &again) || again != ms) {
            fprintf(stderr, "\"%s\" -> %lld -> \"%s\"\n", s, (long long)ms, text);
            abort(); /* what we print we must read, as the same instant */
        }
    }
    if (vg_duration_parse(s, &ms) && ms < 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char *text;
    char *exact;

    if (!ready) {
        char errstr[512];

        vg_json_init();
        vg_log_set_level(VG_LOG_LEVEL_ERROR); /* dropped hash fields are warned about */
        rs = vg_ruleset_new();
        if (vg_rules_load_string(rs, "silences.yaml", rules_yaml, strlen(rules_yaml), errstr,
                                 sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "%s\n", errstr);
            abort();
        }
        ready = 1;
    }
    if (size < 1) {
        return 0;
    }
    text = malloc(size); /* the rest as a C string: NUL at the end, ASan sees any over-read */
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    exact = malloc(size - 1 ? size - 1 : 1); /* the rest as wire bytes, not NUL-terminated */
    memcpy(exact, data + 1, size - 1);
    switch (data[0] % 7) {
    case 0:
        check_url(text);
        break;
    case 1:
        check_matchers(text);
        break;
    case 2:
        check_name_glob(text);
        break;
    case 3:
        check_json_helpers(exact, size - 1, 1 + (data[0] / 7) % 8);
        check_json_string(text);
        break;
    case 4:
        check_stored(exact, size - 1);
        check_incident_data(text);
        break;
    case 5:
        check_times(text);
        break;
    default:
        if ((data[0] / 7) % 2 == 0) {
            check_resource_hash(exact, size - 1);
        } else {
            check_history_entry(exact, size - 1);
        }
        break;
    }
    free(exact);
    free(text);
    return 0;
}
