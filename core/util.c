/*
 * Time (RFC 3339, clocks), durations, globs, fingerprints and strict
 * integer parsing.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vigil/util.h"

int64_t vg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Howard Hinnant's algorithm. */
int64_t vg_days_from_civil(int64_t y, int m, int d)
{
    int64_t era;
    int64_t yoe;
    int64_t doy;
    int64_t doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool vg_time_parse_rfc3339(const char *s, size_t len, int64_t *out_ms)
{
    int y, mo, d, h, mi, sec;
    int64_t ms = 0;
    size_t i = 19;
    int64_t offset_min = 0;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (len < 20) {
        return false;
    }
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec)) {
        return false;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60) {
        return false;
    }
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        return false;
    }
    if (s[i] == '.') {
        int scale = 100;
        i++;
        if (i >= len || !isdigit((unsigned char)s[i])) {
            return false;
        }
        while (i < len && isdigit((unsigned char)s[i])) {
            ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
    }
    if (i >= len) {
        return false;
    }
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int oh, om;
        int sign = s[i] == '-' ? -1 : 1;
        if (len - i < 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !digits(s + i + 4, 2, &om) || oh > 23 || om > 59) {
            return false;
        }
        offset_min = sign * (oh * 60 + om);
        i += 6;
    } else {
        return false;
    }
    if (i != len) {
        return false;
    }
    if (sec == 60) {
        sec = 59; /* leap second: clamp */
    }
    *out_ms =
        ((vg_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - offset_min * 60) *
            1000 +
        ms;
    return true;
}

void vg_time_format_rfc3339(int64_t ms, char *out, size_t out_size)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    if (frac) {
        snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    } else {
        snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
}

bool vg_duration_parse(const char *s, int64_t *out_ms)
{
    int64_t total = 0;
    const char *p = s;
    if (!*p) {
        return false;
    }
    while (*p) {
        int64_t v = 0;
        int64_t unit;
        if (!isdigit((unsigned char)*p)) {
            return false;
        }
        while (isdigit((unsigned char)*p)) {
            if (v > (INT64_MAX - 9) / 10) {
                return false;
            }
            v = v * 10 + (*p - '0');
            p++;
        }
        if (p[0] == 'm' && p[1] == 's') {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60 * 1000;
            p++;
        } else if (*p == 'h') {
            unit = 3600 * 1000;
            p++;
        } else if (*p == 'd') {
            unit = 86400 * 1000;
            p++;
        } else if (*p == 'w') {
            unit = 7 * 86400 * (int64_t)1000;
            p++;
        } else {
            return false;
        }
        if (v > INT64_MAX / unit || total > INT64_MAX - v * unit) {
            return false;
        }
        total += v * unit;
    }
    *out_ms = total;
    return true;
}

bool vg_glob_match(const char *pattern, const char *s)
{
    return fnmatch(pattern, s, 0) == 0;
}

bool vg_is_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

bool vg_glob_valid(const char *pattern)
{
    const char *p = pattern;
    while (*p) {
        if (*p == '\\') {
            if (!p[1]) {
                return false;
            }
            p += 2;
            continue;
        }
        if (*p == '[') {
            const char *q = p + 1;
            if (*q == '!' || *q == '^') {
                q++;
            }
            if (*q == ']') {
                q++;
            }
            while (*q && *q != ']') {
                q++;
            }
            if (!*q) {
                return false;
            }
            p = q + 1;
            continue;
        }
        p++;
    }
    return true;
}

void vg_fingerprint(char out[17], const char *const *parts, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)parts[i];
        if (i > 0) {
            h ^= '\n';
            h *= 0x100000001b3ULL;
        }
        for (; *p; p++) {
            h ^= *p;
            h *= 0x100000001b3ULL;
        }
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

bool vg_parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v;
    if (!s || !*s || isspace((unsigned char)*s)) {
        return false;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || !end || *end != '\0') {
        return false;
    }
    *out = (int64_t)v;
    return true;
}
