/*
 * Time zones for pager mute windows: a small TZif reader (RFC 8536, the
 * files under /usr/share/zoneinfo) and the POSIX TZ rule of its footer for
 * times after the last transition. Files are read once, when rules load;
 * converting a time afterwards is pure (no TZ environment variable, no
 * tzset, no locks), so evaluation stays free of I/O and thread-safe.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

#define TZIF_MAX_BYTES (512 * 1024)

/* A date rule of a POSIX TZ string: Jn, n or Mm.w.d, plus the local time of the change. */
struct tz_date {
    char form;    /* 'J', 'N' (zero-based day) or 'M' */
    int day;      /* J: 1..365, N: 0..365, M: weekday 0..6 */
    int month;    /* M */
    int week;     /* M: 1..5 (5 = last) */
    int32_t secs; /* local time of day of the change */
};

struct tz_rule {
    bool valid;
    int32_t std_off; /* UTC offset in seconds (east positive) */
    bool has_dst;
    int32_t dst_off;
    struct tz_date start, end;
};

struct rules_tz {
    int64_t *times; /* transition times, UTC seconds, ascending */
    int32_t *offs;  /* UTC offset from times[i] on */
    size_t n;
    int32_t first_off;   /* before the first transition */
    struct tz_rule rule; /* after the last transition (footer) */
};

void rules_tz_destroy(struct rules_tz *tz)
{
    if (!tz) {
        return;
    }
    vg_free(tz->times);
    vg_free(tz->offs);
    vg_free(tz);
}

static int64_t year_of_days(int64_t z)
{
    int64_t era;
    int64_t doe;
    int64_t yoe;
    int64_t doy;
    int64_t mp;
    int64_t m;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    m = mp < 10 ? mp + 3 : mp - 9;
    return yoe + era * 400 + (m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Local seconds since the epoch (in the zone's local time) of rule date `d` in year `y`. */
static int64_t rule_local(const struct tz_date *d, int64_t y)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days;

    if (d->form == 'J') {
        /* 1..365, February 29 never counted */
        days = vg_days_from_civil(y, 1, 1) + d->day - 1;
        if (is_leap(y) && d->day >= 60) {
            days++;
        }
    } else if (d->form == 'N') {
        days = vg_days_from_civil(y, 1, 1) + d->day;
    } else {
        int64_t first = vg_days_from_civil(y, d->month, 1);
        int wd1 = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
        int dim = mdays[d->month - 1] + (d->month == 2 && is_leap(y));
        int mday = 1 + (d->day - wd1 + 7) % 7 + (d->week - 1) * 7;

        while (mday > dim) {
            mday -= 7;
        }
        days = first + mday - 1;
    }
    return days * 86400 + d->secs;
}

static int32_t rule_offset(const struct tz_rule *r, int64_t utc_s)
{
    int64_t y;
    int64_t start;
    int64_t end;

    if (!r->has_dst) {
        return r->std_off;
    }
    y = year_of_days(floor_div(utc_s + r->std_off, 86400));
    /* The start is given in standard time, the end in daylight time. */
    start = rule_local(&r->start, y) - r->std_off;
    end = rule_local(&r->end, y) - r->dst_off;
    if (start < end) {
        return (utc_s >= start && utc_s < end) ? r->dst_off : r->std_off;
    }
    return (utc_s >= end && utc_s < start) ? r->std_off : r->dst_off;
}

int32_t rules_tz_offset(const struct rules_tz *tz, int64_t utc_s)
{
    size_t lo = 0;
    size_t hi;

    if (!tz) {
        return 0;
    }
    if (tz->n == 0) {
        return tz->rule.valid ? rule_offset(&tz->rule, utc_s) : tz->first_off;
    }
    if (utc_s < tz->times[0]) {
        return tz->first_off;
    }
    if (utc_s >= tz->times[tz->n - 1] && tz->rule.valid) {
        return rule_offset(&tz->rule, utc_s);
    }
    /* The last transition at or before utc_s. */
    hi = tz->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (tz->times[mid] <= utc_s) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return tz->offs[lo];
}

void rules_local_time(const struct rules_tz *tz, int64_t utc_ms, int *wday, int *minute)
{
    int64_t utc_s = floor_div(utc_ms, 1000);
    int64_t local = utc_s + rules_tz_offset(tz, utc_s);
    int64_t days = floor_div(local, 86400);

    *wday = (int)(((days % 7) + 7 + 4) % 7);
    *minute = (int)((local - days * 86400) / 60);
}

/* ---- POSIX TZ strings ----------------------------------------------------- */

static bool parse_num(const char **p, int max, int *out)
{
    int v = 0;
    int digits = 0;

    while (**p >= '0' && **p <= '9') {
        v = v * 10 + (**p - '0');
        (*p)++;
        if (++digits > 4 || v > max) {
            return false;
        }
    }
    *out = v;
    return digits > 0;
}

/* [+-]hh[:mm[:ss]] into seconds. */
static bool parse_hms(const char **p, int max_hours, int32_t *out)
{
    int sign = 1;
    int h = 0;
    int m = 0;
    int s = 0;

    if (**p == '+' || **p == '-') {
        sign = **p == '-' ? -1 : 1;
        (*p)++;
    }
    if (!parse_num(p, max_hours, &h)) {
        return false;
    }
    if (**p == ':') {
        (*p)++;
        if (!parse_num(p, 59, &m)) {
            return false;
        }
        if (**p == ':') {
            (*p)++;
            if (!parse_num(p, 59, &s)) {
                return false;
            }
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

static bool parse_name(const char **p)
{
    const char *start = *p;

    if (**p == '<') {
        while (**p && **p != '>') {
            (*p)++;
        }
        if (**p != '>') {
            return false;
        }
        (*p)++;
        return *p - start >= 5;
    }
    while ((**p >= 'A' && **p <= 'Z') || (**p >= 'a' && **p <= 'z')) {
        (*p)++;
    }
    return *p - start >= 3;
}

static bool parse_date(const char **p, struct tz_date *d)
{
    d->secs = 2 * 3600;
    if (**p == 'J') {
        (*p)++;
        d->form = 'J';
        if (!parse_num(p, 365, &d->day) || d->day < 1) {
            return false;
        }
    } else if (**p == 'M') {
        (*p)++;
        d->form = 'M';
        if (!parse_num(p, 12, &d->month) || d->month < 1 || *(*p)++ != '.' ||
            !parse_num(p, 5, &d->week) || d->week < 1 || *(*p)++ != '.' ||
            !parse_num(p, 6, &d->day)) {
            return false;
        }
    } else {
        d->form = 'N';
        if (!parse_num(p, 365, &d->day)) {
            return false;
        }
    }
    if (**p == '/') {
        (*p)++;
        return parse_hms(p, 167, &d->secs);
    }
    return true;
}

static bool parse_rule(const char *spec, struct tz_rule *r)
{
    const char *p = spec;
    int32_t off;

    memset(r, 0, sizeof(*r));
    if (!parse_name(&p) || !parse_hms(&p, 24, &off)) {
        return false;
    }
    r->std_off = -off; /* POSIX offsets are west-positive */
    if (*p) {
        if (!parse_name(&p)) {
            return false;
        }
        r->has_dst = true;
        r->dst_off = r->std_off + 3600;
        if (*p && *p != ',') {
            if (!parse_hms(&p, 24, &off)) {
                return false;
            }
            r->dst_off = -off;
        }
        if (*p != ',') {
            return false; /* no default rule: refuse rather than guess */
        }
        p++;
        if (!parse_date(&p, &r->start) || *p++ != ',' || !parse_date(&p, &r->end)) {
            return false;
        }
    }
    r->valid = *p == '\0';
    return r->valid;
}

struct rules_tz *rules_tz_from_posix(const char *spec)
{
    struct rules_tz *tz = vg_calloc(1, sizeof(*tz));

    if (!parse_rule(spec, &tz->rule)) {
        rules_tz_destroy(tz);
        return NULL;
    }
    tz->first_off = tz->rule.std_off;
    return tz;
}

/* ---- TZif ------------------------------------------------------------------ */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static bool read_counts(const unsigned char *p, size_t len, struct tzif_counts *c)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0) {
        return false;
    }
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    return c->type > 0 && c->type <= 256 && c->time <= 100000 && c->leap <= 100000 &&
           c->chars <= 100000 && c->isut <= 256 && c->isstd <= 256;
}

static size_t block_len(const struct tzif_counts *c, size_t tsize)
{
    return c->time * tsize + c->time + c->type * 6 + c->chars + c->leap * (tsize + 4) + c->isstd +
           c->isut;
}

static bool parse_tzif(struct rules_tz *tz, const unsigned char *buf, size_t len)
{
    struct tzif_counts c;
    const unsigned char *p = buf;
    const unsigned char *buf_end = buf + len;
    size_t tsize = 4;
    const unsigned char *types;
    const unsigned char *info;

    if (!read_counts(p, len, &c)) {
        return false;
    }
    if (buf[4] >= '2') {
        /* Skip the 32-bit block: the 64-bit one follows with its own header. */
        size_t skip = 44 + block_len(&c, 4);

        if (skip > len || !read_counts(p + skip, len - skip, &c)) {
            return false;
        }
        p += skip;
        len -= skip;
        tsize = 8;
    }
    if (44 + block_len(&c, tsize) > len) {
        return false;
    }
    p += 44;
    types = p + c.time * tsize;
    info = types + c.time;
    tz->n = c.time;
    tz->times = vg_calloc(c.time ? c.time : 1, sizeof(*tz->times));
    tz->offs = vg_calloc(c.time ? c.time : 1, sizeof(*tz->offs));
    for (size_t i = 0; i < c.time; i++) {
        uint8_t t = types[i];

        if (t >= c.type) {
            return false;
        }
        tz->times[i] = tsize == 8 ? be64(p + i * 8) : (int64_t)(int32_t)be32(p + i * 4);
        tz->offs[i] = (int32_t)be32(info + t * 6);
        if (i > 0 && tz->times[i] <= tz->times[i - 1]) {
            return false;
        }
    }
    tz->first_off = (int32_t)be32(info);
    if (tsize == 8) {
        const unsigned char *foot = p + block_len(&c, 8);
        size_t left = (size_t)(buf_end - foot);
        char spec[128];
        size_t k = 0;

        /* "\n<POSIX TZ>\n": an empty spec means no rule. */
        if (left >= 2 && foot[0] == '\n') {
            for (size_t i = 1; i < left && foot[i] != '\n' && k + 1 < sizeof(spec); i++) {
                spec[k++] = (char)foot[i];
            }
            spec[k] = '\0';
            if (k > 0 && !parse_rule(spec, &tz->rule)) {
                memset(&tz->rule, 0, sizeof(tz->rule));
            }
        }
    }
    return true;
}

static bool valid_zone_name(const char *name)
{
    if (!*name || name[0] == '/' || strstr(name, "..")) {
        return false;
    }
    for (const char *p = name; *p; p++) {
        char ch = *p;

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '/' || ch == '_' || ch == '-' || ch == '+')) {
            return false;
        }
    }
    return true;
}

struct rules_tz *rules_tz_load(const char *name, char *errstr, size_t errstr_size)
{
    const char *dir = getenv("TZDIR");
    struct rules_tz *tz;
    unsigned char *buf;
    char *path;
    size_t len;
    FILE *fp;

    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
        return vg_calloc(1, sizeof(struct rules_tz));
    }
    if (!valid_zone_name(name)) {
        snprintf(errstr, errstr_size, "invalid time zone name \"%s\" (e.g. Europe/Berlin)", name);
        return NULL;
    }
    path = vg_asprintf("%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    fp = fopen(path, "rb");
    if (!fp) {
        snprintf(errstr, errstr_size, "unknown time zone \"%s\" (%s: %s)", name, path,
                 strerror(errno));
        vg_free(path);
        return NULL;
    }
    buf = vg_malloc(TZIF_MAX_BYTES);
    len = fread(buf, 1, TZIF_MAX_BYTES, fp);
    fclose(fp);
    tz = vg_calloc(1, sizeof(*tz));
    if (!parse_tzif(tz, buf, len)) {
        snprintf(errstr, errstr_size, "time zone \"%s\": %s is not a TZif file", name, path);
        rules_tz_destroy(tz);
        tz = NULL;
    }
    vg_free(buf);
    vg_free(path);
    return tz;
}
