/*
 * Delivery policy without I/O or clocks: the per-sink token
 * bucket, the per-sink circuit breaker, the per-page backoff schedule and
 * the HTTP status table. Time comes in as `now_ms`, randomness as `rnd01`,
 * so tests/unit/test_sinks6_policy.c can drive them exactly.
 */
#include "sinks_int.h"

#define BACKOFF_BASE_MS 200
#define BACKOFF_MAX_MS 10000

void sinks_bucket_init(struct sinks_bucket *b, double rate_per_s, int burst, int64_t now_ms)
{
    b->rate_per_s = rate_per_s > 0 ? rate_per_s : 0;
    if (burst > 0) {
        b->burst = burst;
    } else {
        b->burst = rate_per_s >= 1 ? (double)(int64_t)(rate_per_s + 0.999) : 1;
    }
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

bool sinks_bucket_take(struct sinks_bucket *b, int64_t now_ms, int64_t *wait_ms)
{
    if (b->rate_per_s <= 0) {
        return true;
    }
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->rate_per_s / 1000.0;
        if (b->tokens > b->burst) {
            b->tokens = b->burst;
        }
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    /* Round up: waking a millisecond early would only find no token again. */
    *wait_ms = (int64_t)((1.0 - b->tokens) * 1000.0 / b->rate_per_s) + 1;
    return false;
}

bool sinks_breaker_allow(struct sinks_breaker *br, int64_t now_ms, int64_t *wait_ms)
{
    switch (br->state) {
    case SINKS_BREAKER_CLOSED:
        return true;
    case SINKS_BREAKER_OPEN:
        if (now_ms < br->open_until) {
            *wait_ms = br->open_until - now_ms;
            return false;
        }
        br->state = SINKS_BREAKER_HALF_OPEN;
        br->probing = true;
        return true;
    case SINKS_BREAKER_HALF_OPEN:
        if (br->probing) {
            *wait_ms = -1; /* until the probe answers */
            return false;
        }
        br->probing = true;
        return true;
    }
    return false;
}

void sinks_breaker_cancel(struct sinks_breaker *br)
{
    if (br->state == SINKS_BREAKER_HALF_OPEN) {
        br->probing = false;
    }
}

bool sinks_breaker_success(struct sinks_breaker *br)
{
    bool changed = br->state != SINKS_BREAKER_CLOSED;

    br->state = SINKS_BREAKER_CLOSED;
    br->failures = 0;
    br->probing = false;
    br->cooldown_ms = 0;
    br->down_since = 0;
    return changed;
}

bool sinks_breaker_failure(struct sinks_breaker *br, int64_t now_ms)
{
    br->failures++;
    switch (br->state) {
    case SINKS_BREAKER_CLOSED:
        if (br->failures < SINKS_BREAKER_THRESHOLD) {
            return false;
        }
        br->state = SINKS_BREAKER_OPEN;
        br->cooldown_ms = SINKS_BREAKER_MIN_MS;
        br->open_until = now_ms + br->cooldown_ms;
        br->down_since = now_ms;
        br->probing = false;
        return true;
    case SINKS_BREAKER_HALF_OPEN:
        /* The probe failed: back to waiting, twice as long (capped). */
        br->cooldown_ms =
            br->cooldown_ms * 2 > SINKS_BREAKER_MAX_MS ? SINKS_BREAKER_MAX_MS : br->cooldown_ms * 2;
        br->state = SINKS_BREAKER_OPEN;
        br->open_until = now_ms + br->cooldown_ms;
        br->probing = false;
        return false;
    case SINKS_BREAKER_OPEN:
        /* A request started before the breaker opened: nothing new to learn. */
        return false;
    }
    return false;
}

const char *sinks_breaker_name(enum sinks_breaker_state s)
{
    switch (s) {
    case SINKS_BREAKER_CLOSED:
        return "up";
    case SINKS_BREAKER_OPEN:
        return "down";
    case SINKS_BREAKER_HALF_OPEN:
        return "probing";
    }
    return "?";
}

int64_t sinks_backoff_ms(int attempt, double rnd01)
{
    int64_t delay = BACKOFF_BASE_MS;

    for (int i = 1; i < attempt && delay < BACKOFF_MAX_MS; i++) {
        delay *= 2;
    }
    if (delay > BACKOFF_MAX_MS) {
        delay = BACKOFF_MAX_MS;
    }
    if (rnd01 < 0) {
        rnd01 = 0;
    }
    if (rnd01 >= 1) {
        rnd01 = 0.999999;
    }
    return delay + (int64_t)((double)delay * 0.25 * rnd01);
}

vg_err_t sinks_classify_status(long status)
{
    if (status >= 200 && status < 300) {
        return VG_OK;
    }
    if (status == 408 || status == 429 || (status >= 500 && status < 600)) {
        return VG_ERR_BACKEND;
    }
    if (status >= 300 && status < 500) {
        return VG_ERR_REJECTED;
    }
    return VG_ERR_BACKEND; /* 1xx as final, 6xx, 0: a broken peer, maybe a transient one */
}

int64_t vg_sinks_backoff_ms(int attempt, double rnd01)
{
    return sinks_backoff_ms(attempt, rnd01);
}
