/*
 * What receivers answer, read without libcurl's handles (so each piece is
 * pure and fuzzed: tests/fuzz/fuzz_sink_response.c): the Retry-After
 * header, the excerpt of a body kept for a dead letter, secrets scrubbed
 * out of a message, Slack's Web API {"ok": false, "error": ...} and a
 * legacy Teams connector's "returned HTTP error N" in a 2xx body.
 * Fetching the answer and classifying its status are sinks_http.c's.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sinks_int.h"
#include "vigil/util.h"

#define TEAMS_RESPONSE_MARK "returned HTTP error "

int64_t sinks_retry_after_ms(const char *value, time_t now)
{
    char *end = NULL;
    long long secs;
    time_t when;

    errno = 0;
    secs = strtoll(value, &end, 10);
    if (end != value && *end == '\0' && secs >= 0) {
        /* more seconds than a long long holds (ERANGE) is still a delay: the cap */
        return errno || secs > SINKS_RETRY_AFTER_MAX_MS / 1000 ? SINKS_RETRY_AFTER_MAX_MS
                                                               : secs * 1000;
    }
    when = curl_getdate(value, NULL);
    if (when < 0) {
        return -1;
    }
    if (when <= now) {
        return 0;
    }
    /* in seconds first: a date centuries ahead would overflow in milliseconds */
    if ((int64_t)when - (int64_t)now > SINKS_RETRY_AFTER_MAX_MS / 1000) {
        return SINKS_RETRY_AFTER_MAX_MS;
    }
    return ((int64_t)when - (int64_t)now) * 1000;
}

void sinks_response_excerpt(char *dst, size_t dst_size, const char *resp, size_t resp_len)
{
    size_t n = resp_len < dst_size - 1 ? resp_len : dst_size - 1;
    size_t back = 0;
    unsigned char lead;
    size_t need;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)resp[i];
        dst[i] = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? ' ' : (char)c;
    }
    dst[n] = '\0';
    if (n == resp_len) {
        return; /* all of it: nothing was cut (a last character is kept whole) */
    }
    /* Cut: drop the last sequence if the cut left it incomplete. */
    while (back < 4 && back < n && ((unsigned char)dst[n - 1 - back] & 0xC0) == 0x80) {
        back++;
    }
    if (back == n) {
        dst[0] = '\0';
        return;
    }
    lead = (unsigned char)dst[n - 1 - back];
    need = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : 4;
    if (need != back + 1) {
        dst[n - 1 - back] = '\0';
    }
}

/*
 * One pass per secret, left to right, into a copy: a replacement is never
 * searched again (a secret inside "<redacted>", such as "red", would
 * otherwise be replaced forever), and the text is cut to msg_size - 1
 * bytes, before a "<redacted>" that does not fit whole (the secret goes
 * either way).
 */
void sinks_scrub(const struct sink *s, char *msg, size_t msg_size)
{
    static const char red[] = "<redacted>";
    const size_t cap = msg_size - 1;

    for (size_t i = 0; i < s->n_secrets; i++) {
        const char *secret = s->secrets[i];
        size_t n = strlen(secret);
        const char *from = msg;
        const char *hit = n ? strstr(msg, secret) : NULL;
        char *out;
        size_t len = 0;
        bool full = false;

        if (!hit) {
            continue;
        }
        out = vg_malloc(msg_size);
        for (; hit && !full; hit = strstr(from, secret)) {
            size_t k = (size_t)(hit - from);

            if (len + k > cap) {
                k = cap - len;
                full = true;
            }
            memcpy(out + len, from, k);
            len += k;
            if (!full && len + sizeof(red) - 1 > cap) {
                full = true;
            } else if (!full) {
                memcpy(out + len, red, sizeof(red) - 1);
                len += sizeof(red) - 1;
            }
            from = hit + n;
        }
        if (!full) {
            size_t k = strlen(from);

            k = len + k > cap ? cap - len : k;
            memcpy(out + len, from, k);
            len += k;
        }
        out[len] = '\0';
        memcpy(msg, out, len + 1);
        vg_free(out);
    }
}

static bool retriable_error(const char *e)
{
    static const char *const retry[] = {"ratelimited", "rate_limited",        "internal_error",
                                        "fatal_error", "service_unavailable", "request_timeout",
                                        NULL};
    for (const char *const *r = retry; *r; r++) {
        if (!strcmp(e, *r)) {
            return true;
        }
    }
    return false;
}

void sinks_slack_answer(const struct sink *s, const char *resp, size_t resp_len, bool have_memo,
                        struct vg_sink_result *r, char **new_memo)
{
    cJSON *root;
    const cJSON *ok;
    const cJSON *err;
    const char *e;

    if (s->type != SINK_SLACK || !s->slack_bot) {
        return;
    }
    root = cJSON_ParseWithLength(resp ? resp : "", resp_len);
    ok = cJSON_GetObjectItemCaseSensitive(root, "ok");
    err = cJSON_GetObjectItemCaseSensitive(root, "error");
    e = cJSON_IsString(err) ? err->valuestring : "invalid_response";
    if (!cJSON_IsTrue(ok)) {
        r->err = retriable_error(e) ? VG_ERR_BACKEND : VG_ERR_REJECTED;
        snprintf(r->detail, sizeof(r->detail), "sink %s: slack error %.100s", s->name, e);
    } else {
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "ts");
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(root, "channel");
        if (cJSON_IsString(ts) && cJSON_IsString(ch) && !have_memo) {
            vg_free(*new_memo);
            *new_memo = vg_asprintf("%s %s", ch->valuestring, ts->valuestring);
        }
    }
    cJSON_Delete(root);
}

void sinks_teams_answer(const struct sink *s, const char *resp, size_t resp_len,
                        struct vg_sink_result *r)
{
    char text[VG_SINK_RESPONSE_MAX];
    const char *hit;
    char *end = NULL;
    long status;

    if (s->type != SINK_TEAMS || !resp || resp_len == 0) {
        return;
    }
    snprintf(text, sizeof(text), "%.*s",
             (int)(resp_len < sizeof(text) ? resp_len : sizeof(text) - 1), resp);
    hit = strstr(text, TEAMS_RESPONSE_MARK);
    if (!hit) {
        return;
    }
    errno = 0;
    status = strtol(hit + strlen(TEAMS_RESPONSE_MARK), &end, 10);
    if (errno || end == hit + strlen(TEAMS_RESPONSE_MARK) || status < 100 || status > 599) {
        return;
    }
    r->err = sinks_classify_status(status);
    if (r->err == VG_OK) {
        r->err = VG_ERR_BACKEND; /* "returned HTTP error 200" is still not a delivery */
    }
    r->status = status;
    snprintf(r->detail, sizeof(r->detail), "sink %s: teams answered HTTP %ld in a 2xx body",
             s->name, status);
}
