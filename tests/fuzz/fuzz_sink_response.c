/*
 * libFuzzer target for what receivers answer (sinks/sinks_response.c):
 * the Retry-After header, the excerpt of a body kept for a dead letter,
 * secrets scrubbed out of it, a Slack Web API answer ({"ok": false,
 * "error": ...} on a 2xx) and a Teams connector's "returned HTTP error N".
 * Input: byte 0 flags (bit 0: the incident already has a memo; bit 1: the
 * sink is Teams, else Slack with a bot token), byte 1 the excerpt buffer's
 * size, then a secret of the sink up to the first '\n', then the answer
 * (its header value is the same bytes up to the first NUL). Checked: the
 * Retry-After is -1 or within the cap; the excerpt fits, is valid UTF-8
 * when the answer is, and is all of an answer that fits; a scrubbed text
 * fits and holds no secret (but where "<redacted>" itself spells one).
 * Built with clang -fsanitize=fuzzer,address,undefined (tests/fuzz.cmake).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sinks_int.h"
#include "vigil/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_S 1795860000 /* the wall clock for HTTP-dates */
#define MARK "<redacted>"

/* Each place `secret` is found in `text` overlaps a MARK (which may spell part of it). */
static bool only_near_marks(const char *text, const char *secret)
{
    size_t n = strlen(secret);

    for (const char *hit = strstr(text, secret); hit; hit = strstr(hit + 1, secret)) {
        bool covered = false;

        for (const char *m = strstr(text, MARK); m && !covered && m < hit + n;
             m = strstr(m + 1, MARK)) {
            covered = m + strlen(MARK) > hit;
        }
        if (!covered) {
            return false;
        }
    }
    return true;
}

static void check_scrubbed(const struct sink *s, char *text, size_t text_size)
{
    sinks_scrub(s, text, text_size);
    if (strlen(text) >= text_size) {
        abort();
    }
    for (size_t i = 0; i < s->n_secrets; i++) {
        if (!only_near_marks(text, s->secrets[i])) {
            abort(); /* a secret survived the scrub */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static const size_t sizes[] = {1, 2, 3, 4, 5, 8, 11, 16, 64, VG_SINK_RESPONSE_MAX};
    char name[] = "ops";
    char token[] = "xoxb-fuzz-token";
    char *secrets[2];
    char *secret;
    struct sink s;
    struct vg_sink_result r;
    char *memo = NULL;
    char *resp;
    char *value;
    char excerpt[VG_SINK_RESPONSE_MAX];
    const char *nl;
    size_t excerpt_size;
    size_t len;
    uint8_t flags;
    int64_t ms;

    if (!ready) {
        vg_json_init();
        ready = 1;
    }
    if (size < 2) {
        return 0;
    }
    flags = data[0];
    memset(&s, 0, sizeof(s));
    s.name = name;
    s.type = (flags & 2) ? SINK_TEAMS : SINK_SLACK;
    s.slack_bot = true;
    excerpt_size = sizes[data[1] % (sizeof(sizes) / sizeof(sizes[0]))];
    data += 2;
    size -= 2;
    nl = memchr(data, '\n', size);
    secret = vg_strndup((const char *)data, nl ? (size_t)(nl - (const char *)data) : 0);
    if (strlen(secret) >= 3) { /* as sinks_add_secret: shorter strings are not secrets */
        secrets[s.n_secrets++] = secret;
    }
    secrets[s.n_secrets++] = token;
    s.secrets = secrets;
    if (nl) {
        size -= (size_t)(nl + 1 - (const char *)data);
        data = (const uint8_t *)nl + 1;
    }
    len = size;
    resp = malloc(len ? len : 1); /* exact size: ASan sees any over-read */
    memcpy(resp, data, len);

    value = vg_strndup(resp, len); /* a header value ends at its first NUL */
    ms = sinks_retry_after_ms(value, NOW_S);
    if (ms < -1 || ms > SINKS_RETRY_AFTER_MAX_MS) {
        abort();
    }
    vg_free(value);

    sinks_response_excerpt(excerpt, excerpt_size, resp, len);
    if (strlen(excerpt) >= excerpt_size) {
        abort();
    }
    if (!memchr(resp, '\0', len) && vg_utf8_valid(resp, len) &&
        !vg_utf8_valid(excerpt, strlen(excerpt))) {
        abort(); /* cut inside a character */
    }
    if (len < excerpt_size && !memchr(resp, '\0', len) && strlen(excerpt) != len) {
        abort(); /* an answer that fits is kept whole */
    }
    check_scrubbed(&s, excerpt, excerpt_size);

    memset(&r, 0, sizeof(r));
    r.retry_after_ms = -1;
    if (flags & 1) {
        memo = vg_strdup("C123 1700000000.000100");
    }
    sinks_slack_answer(&s, resp, len, memo != NULL, &r, &memo);
    sinks_teams_answer(&s, resp, len, &r);
    if (r.err != VG_OK && !r.detail[0]) {
        abort(); /* a failure says why */
    }
    check_scrubbed(&s, r.detail, sizeof(r.detail));
    vg_free(memo);
    free(resp);
    vg_free(secret);
    return 0;
}
