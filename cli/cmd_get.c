/*
 * `vigil get`: Resources read from Redis (docs/cli.md).
 *   table  NAME | VERSION | TYPE | WORKSPACE | STATUS | RUNTIME | OWNER (the seed's)
 *   wide   the table plus HEALTH | SINCE | UPDATED
 *   json   an array of {id, name, version, type, workspace, status, runtime,
 *          owner, health, updated_at}; yaml the same fields
 * `vigil get ID` shows one Resource in full. Also here: the helpers the
 * other read-only commands share (cmd_history.c): connecting, the table
 * renderer, durations, YAML scalars. Colour only on a TTY, never with NO_COLOR.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define COLOR_GREEN "\033[32m"
#define COLOR_RED "\033[31m"
#define COLOR_YELLOW "\033[33m"
#define COLOR_RESET "\033[0m"

/* ---- shared helpers (cli.h) ------------------------------------------- */

int64_t cli_now_ms(void)
{
    const char *fixed = getenv("VIGIL_NOW_MS");
    int64_t ms;

    /* Tests pin "now" so SINCE is reproducible; never set in production. */
    if (fixed && *fixed && vg_parse_i64(fixed, &ms) && ms >= 0) {
        return ms;
    }
    return vg_now_ms();
}

bool cli_use_color(FILE *out)
{
    const char *no_color = getenv("NO_COLOR");
    const char *term = getenv("TERM");

    if (no_color && *no_color) {
        return false; /* https://no-color.org */
    }
    if (term && strcmp(term, "dumb") == 0) {
        return false;
    }
    return isatty(fileno(out)) == 1;
}

/* kubectl's AGE (k8s.io/apimachinery duration.HumanDuration), from milliseconds. */
void cli_format_age(int64_t ms, char *out, size_t out_size)
{
    int64_t secs = ms / 1000; /* truncates toward zero, like Go's int(d.Seconds()) */
    int64_t mins;
    int64_t hours;

    if (secs < -1) {
        snprintf(out, out_size, "<invalid>");
        return;
    }
    if (secs < 0) {
        snprintf(out, out_size, "0s");
        return;
    }
    if (secs < 120) {
        snprintf(out, out_size, "%" PRId64 "s", secs);
        return;
    }
    mins = secs / 60;
    if (mins < 10) {
        if (secs % 60 == 0) {
            snprintf(out, out_size, "%" PRId64 "m", mins);
        } else {
            snprintf(out, out_size, "%" PRId64 "m%" PRId64 "s", mins, secs % 60);
        }
        return;
    }
    if (mins < 180) {
        snprintf(out, out_size, "%" PRId64 "m", mins);
        return;
    }
    hours = secs / 3600;
    if (hours < 8) {
        if (mins % 60 == 0) {
            snprintf(out, out_size, "%" PRId64 "h", hours);
        } else {
            snprintf(out, out_size, "%" PRId64 "h%" PRId64 "m", hours, mins % 60);
        }
    } else if (hours < 48) {
        snprintf(out, out_size, "%" PRId64 "h", hours);
    } else if (hours < 24 * 8) {
        if (hours % 24 == 0) {
            snprintf(out, out_size, "%" PRId64 "d", hours / 24);
        } else {
            snprintf(out, out_size, "%" PRId64 "d%" PRId64 "h", hours / 24, hours % 24);
        }
    } else if (hours < 24 * 365 * 2) {
        snprintf(out, out_size, "%" PRId64 "d", hours / 24);
    } else if (hours < 24 * 365 * 8) {
        int64_t days = (hours / 24) % 365;

        if (days == 0) {
            snprintf(out, out_size, "%" PRId64 "y", hours / 24 / 365);
        } else {
            snprintf(out, out_size, "%" PRId64 "y%" PRId64 "d", hours / 24 / 365, days);
        }
    } else {
        snprintf(out, out_size, "%" PRId64 "y", hours / 24 / 365);
    }
}

void cli_format_time(int64_t ms, char *out, size_t out_size)
{
    if (ms == 0) {
        snprintf(out, out_size, "%s", "");
        return;
    }
    vg_time_format_rfc3339(ms, out, out_size);
}

/* One UTF-8 sequence at p: its code point and length (invalid bytes: themselves, length 1). */
static size_t utf8_next(const unsigned char *p, uint32_t *cp)
{
    size_t len;
    uint32_t v;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        v = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        v = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        v = p[0] & 0x07;
    } else {
        *cp = 0xfffd;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        v = (v << 6) | (p[i] & 0x3f);
    }
    *cp = v;
    return len;
}

/*
 * Terminal columns of one code point: 0 for combining marks and
 * zero-width characters, 2 for East Asian wide/fullwidth (CJK, Hangul,
 * kana, fullwidth forms, most emoji), 1 otherwise. A short table, not
 * all of Unicode's EastAsianWidth.txt: enough to keep CJK names aligned.
 */
static int cp_width(uint32_t cp)
{
    static const uint32_t zero[][2] = {
        {0x0300, 0x036f}, {0x0483, 0x0489}, {0x0591, 0x05bd}, {0x0610, 0x061a}, {0x064b, 0x065f},
        {0x200b, 0x200f}, {0x20d0, 0x20ff}, {0xfe00, 0xfe0f}, {0xfe20, 0xfe2f},
    };
    static const uint32_t wide[][2] = {
        {0x1100, 0x115f},   {0x2e80, 0x303e},   {0x3041, 0x33ff},   {0x3400, 0x4dbf},
        {0x4e00, 0x9fff},   {0xa000, 0xa4cf},   {0xac00, 0xd7a3},   {0xf900, 0xfaff},
        {0xfe30, 0xfe4f},   {0xff00, 0xff60},   {0xffe0, 0xffe6},   {0x1f300, 0x1f64f},
        {0x1f900, 0x1f9ff}, {0x20000, 0x2fffd}, {0x30000, 0x3fffd},
    };

    for (size_t i = 0; i < VG_ARRAY_LEN(zero); i++) {
        if (cp >= zero[i][0] && cp <= zero[i][1]) {
            return 0;
        }
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(wide); i++) {
        if (cp >= wide[i][0] && cp <= wide[i][1]) {
            return 2;
        }
    }
    return 1;
}

size_t cli_display_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;

    while (*p) {
        uint32_t cp;

        p += utf8_next(p, &cp);
        w += (size_t)cp_width(cp);
    }
    return w;
}

/*
 * `s` with control characters (C0, DEL, C1) replaced by '?': a Resource
 * name or message must not move the cursor or recolour the terminal.
 * Returns `s` itself when it is clean, else a heap copy in *tmp.
 */
static const char *printable(const char *s, char **tmp)
{
    const unsigned char *p = (const unsigned char *)s;
    struct vg_buf b = {0};
    bool dirty = false;

    *tmp = NULL;
    for (const unsigned char *q = p; *q; q++) {
        if (*q < 0x20 || *q == 0x7f || (q[0] == 0xc2 && q[1] >= 0x80 && q[1] <= 0x9f)) {
            dirty = true;
            break;
        }
    }
    if (!dirty) {
        return s;
    }
    while (*p) {
        uint32_t cp;
        size_t len = utf8_next(p, &cp);

        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
            vg_buf_putc(&b, '?');
        } else {
            vg_buf_append(&b, (const char *)p, len);
        }
        p += len;
    }
    *tmp = vg_buf_steal(&b);
    return *tmp;
}

static void pad(FILE *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fputc(' ', out);
    }
}

void cli_print_grid(FILE *out, const char *const *headers, size_t ncols, const char *const *cells,
                    const char *const *colors, size_t nrows)
{
    size_t *width = vg_calloc(ncols, sizeof(*width));
    char **clean = vg_calloc(ncols * (nrows ? nrows : 1), sizeof(*clean));
    const char **shown = vg_calloc(ncols * (nrows ? nrows : 1), sizeof(*shown));

    for (size_t c = 0; c < ncols; c++) {
        width[c] = strlen(headers[c]);
    }
    for (size_t i = 0; i < nrows * ncols; i++) {
        size_t w;

        shown[i] = printable(cells[i] ? cells[i] : "", &clean[i]);
        w = cli_display_width(shown[i]);
        if (w > width[i % ncols]) {
            width[i % ncols] = w;
        }
    }
    /* header: centred, as dataos-ctl prints it */
    for (size_t c = 0; c < ncols; c++) {
        size_t total = width[c] + 2;
        size_t left = (total - strlen(headers[c])) / 2;

        if (c > 0) {
            fputc('|', out);
        }
        pad(out, left);
        fputs(headers[c], out);
        if (c < ncols - 1) {
            pad(out, total - left - strlen(headers[c]));
        }
    }
    fputc('\n', out);
    for (size_t c = 0; c < ncols; c++) {
        if (c > 0) {
            fputc('|', out);
        }
        for (size_t k = 0; k < width[c] + 2; k++) {
            fputc('-', out);
        }
    }
    fputc('\n', out);
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *cell = shown[r * ncols + c];
            const char *col = colors ? colors[r * ncols + c] : NULL;

            if (c > 0) {
                fputc('|', out);
            }
            fputc(' ', out);
            if (col) {
                fputs(col, out);
            }
            fputs(cell, out);
            if (col) {
                fputs(COLOR_RESET, out);
            }
            if (c < ncols - 1) {
                pad(out, width[c] + 1 - cli_display_width(cell));
            }
        }
        fputc('\n', out);
    }
    for (size_t i = 0; i < nrows * ncols; i++) {
        vg_free(clean[i]);
    }
    vg_free(clean);
    vg_free(shown);
    vg_free(width);
}

const char *cli_value_color(const char *value)
{
    if (!strcmp(value, "active") || !strcmp(value, "running") || !strcmp(value, "succeeded") ||
        !strcmp(value, "healthy")) {
        return COLOR_GREEN;
    }
    if (!strcmp(value, "error") || !strcmp(value, "deleted") || !strcmp(value, "failed") ||
        !strcmp(value, "unhealthy")) {
        return COLOR_RED;
    }
    if (!strcmp(value, "pending") || !strcmp(value, "progressing")) {
        return COLOR_YELLOW;
    }
    return NULL;
}

/* Characters YAML treats as line breaks or a BOM, or that are not printable. */
static bool yaml_special(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0xfeff || cp == 0xfffd;
}

/*
 * YAML plain scalars only where no YAML 1.1 or 1.2 reader could take them
 * for anything but that string: a letter (ASCII or any printable
 * non-ASCII character) first, then letters, digits, -_./ and ':' (not
 * before a space or at the end), and not a bool/null word. Everything
 * else is double-quoted.
 */
static bool yaml_plain_ok(const char *s)
{
    static const char *const words[] = {"y",   "n",    "yes",   "no",  "on",
                                        "off", "true", "false", "null"};
    const unsigned char *p = (const unsigned char *)s;
    char lower[8];
    size_t len = strlen(s);
    bool first = true;

    if (len == 0) {
        return false;
    }
    while (*p) {
        uint32_t cp;
        size_t n = utf8_next(p, &cp);
        bool letter = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
                      (cp >= 0xa0 && !yaml_special(cp));
        bool ok =
            letter || (!first && ((cp >= '0' && cp <= '9') || cp == '-' || cp == '_' || cp == '.' ||
                                  cp == '/' || (cp == ':' && p[1] != '\0' && p[1] != ' ')));

        if (!ok) {
            return false;
        }
        first = false;
        p += n;
    }
    if (len < sizeof(lower)) {
        for (size_t i = 0; i <= len; i++) {
            lower[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
        }
        for (size_t i = 0; i < VG_ARRAY_LEN(words); i++) {
            if (strcmp(lower, words[i]) == 0) {
                return false;
            }
        }
    }
    return true;
}

/* A YAML double-quoted scalar: \" \\ \n \t \r, and \uXXXX for the rest of yaml_special. */
static void yaml_quoted(struct vg_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    vg_buf_putc(b, '"');
    while (*p) {
        uint32_t cp;
        size_t n = utf8_next(p, &cp);

        if (cp == '"' || cp == '\\') {
            vg_buf_putc(b, '\\');
            vg_buf_putc(b, (char)cp);
        } else if (cp == '\n') {
            vg_buf_puts(b, "\\n");
        } else if (cp == '\t') {
            vg_buf_puts(b, "\\t");
        } else if (cp == '\r') {
            vg_buf_puts(b, "\\r");
        } else if (cp == 0xfffd && n == 1) {
            vg_buf_printf(b, "\\x%02x", (unsigned)*p); /* an invalid byte, kept visible */
        } else if (yaml_special(cp) && !(cp == 0xfffd && n == 3)) {
            vg_buf_printf(b, "\\u%04x", (unsigned)cp);
        } else {
            vg_buf_append(b, (const char *)p, n);
        }
        p += n;
    }
    vg_buf_putc(b, '"');
}

void cli_yaml_scalar(struct vg_buf *b, const char *s)
{
    if (!s) {
        vg_buf_puts(b, "null");
    } else if (yaml_plain_ok(s)) {
        vg_buf_puts(b, s);
    } else {
        yaml_quoted(b, s);
    }
}

/* Only `redis:` of the config (vg_config_load_redis): what a command that only reads needs. */
static int load_redis_config(struct vg_config *cfg, const char *path)
{
    char errstr[1024];

    vg_config_init(cfg);
    if (path && vg_config_load_redis(cfg, path, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "vigil: %s\n", errstr);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

int cli_open_state(const char *cmd, const char *config_path, bool writes, const char *redis_url,
                   const char *prefix, struct vg_config *cfg, struct vg_state **st,
                   struct vg_redis_child **child)
{
    char errstr[1024];
    char *url = NULL;
    int rc;

    *st = NULL;
    *child = NULL;
    rc = writes ? cli_load_config(cfg, config_path) : load_redis_config(cfg, config_path);
    if (rc) {
        return rc;
    }
    if (cli_redis_for_reading(cfg, redis_url, &url, child, errstr, sizeof(errstr)) != VG_OK ||
        vg_state_connect(st, url, prefix ? prefix : cfg->redis.prefix, errstr, sizeof(errstr)) !=
            VG_OK) {
        /* errstr names the URL with the password redacted, and the reason */
        fprintf(stderr, "vigil %s: cannot reach redis: %s\n", cmd, errstr);
        rc = CLI_EXIT_USAGE;
    }
    free(url);
    return rc;
}

void cli_close_state(struct vg_state *st, struct vg_redis_child *child)
{
    vg_state_destroy(st);
    vg_redis_child_stop(child);
}

int cli_state_error(const char *cmd, vg_err_t err, const char *errstr)
{
    if (err == VG_ERR_BACKEND || err == VG_ERR_TIMEOUT) {
        fprintf(stderr, "vigil %s: cannot reach redis: %s\n", cmd, errstr);
        return CLI_EXIT_USAGE;
    }
    fprintf(stderr, "vigil %s: %s\n", cmd, errstr);
    return CLI_EXIT_FAILURE;
}

/* ---- the list: table, wide, json, yaml -------------------------------- */

void cli_print_table(FILE *out, struct vg_resource **v, size_t n, bool color)
{
    static const char *const headers[] = {"NAME",   "VERSION", "TYPE", "WORKSPACE",
                                          "STATUS", "RUNTIME", "OWNER"};
    enum { NCOLS = VG_ARRAY_LEN(headers) };
    const char **cells = vg_calloc(NCOLS * (n ? n : 1), sizeof(*cells));
    const char **colors = vg_calloc(NCOLS * (n ? n : 1), sizeof(*colors));

    for (size_t i = 0; i < n; i++) {
        const char **row = &cells[i * NCOLS];

        row[0] = v[i]->name;
        row[1] = v[i]->version;
        row[2] = v[i]->type;
        row[3] = v[i]->workspace;
        row[4] = v[i]->status;
        row[5] = v[i]->runtime;
        row[6] = v[i]->owner;
        if (color) {
            colors[i * NCOLS + 4] = cli_value_color(v[i]->status);
            colors[i * NCOLS + 5] = cli_value_color(v[i]->runtime);
        }
    }
    cli_print_grid(out, headers, NCOLS, cells, colors, n);
    vg_free(cells);
    vg_free(colors);
}

/* When the current status/runtime pair began: the later of the two since-times. */
static int64_t since_ms(const struct vg_resource *res)
{
    return res->status_since_ms > res->runtime_since_ms ? res->status_since_ms
                                                        : res->runtime_since_ms;
}

void cli_print_wide(FILE *out, struct vg_resource **v, size_t n, bool color, int64_t now_ms)
{
    static const char *const headers[] = {"NAME",    "VERSION", "TYPE",   "WORKSPACE", "STATUS",
                                          "RUNTIME", "OWNER",   "HEALTH", "SINCE",     "UPDATED"};
    enum { NCOLS = VG_ARRAY_LEN(headers), TEXT = 40 };
    const char **cells = vg_calloc(NCOLS * (n ? n : 1), sizeof(*cells));
    const char **colors = vg_calloc(NCOLS * (n ? n : 1), sizeof(*colors));
    char(*text)[2][TEXT] = vg_calloc(n ? n : 1, sizeof(*text));

    for (size_t i = 0; i < n; i++) {
        const char **row = &cells[i * NCOLS];
        int64_t since = since_ms(v[i]);

        if (since) {
            cli_format_age(now_ms - since, text[i][0], TEXT);
        }
        cli_format_time(v[i]->updated_at_ms, text[i][1], TEXT);
        row[0] = v[i]->name;
        row[1] = v[i]->version;
        row[2] = v[i]->type;
        row[3] = v[i]->workspace;
        row[4] = v[i]->status;
        row[5] = v[i]->runtime;
        row[6] = v[i]->owner;
        row[7] = vg_health_name(v[i]->health);
        row[8] = text[i][0];
        row[9] = text[i][1];
        if (color) {
            colors[i * NCOLS + 4] = cli_value_color(v[i]->status);
            colors[i * NCOLS + 5] = cli_value_color(v[i]->runtime);
            colors[i * NCOLS + 7] = cli_value_color(row[7]);
        }
    }
    cli_print_grid(out, headers, NCOLS, cells, colors, n);
    vg_free(cells);
    vg_free(colors);
    vg_free(text);
}

static void json_field(struct vg_buf *b, const char *key, const char *value, bool first)
{
    if (!first) {
        vg_buf_putc(b, ',');
    }
    vg_json_append_string(b, key);
    vg_buf_putc(b, ':');
    vg_json_append_string(b, value);
}

void cli_print_json(FILE *out, struct vg_resource **v, size_t n)
{
    struct vg_buf b = {0};
    vg_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        char ts[40];
        vg_buf_puts(&b, i ? ",\n  {" : "\n  {");
        json_field(&b, "id", v[i]->id, true);
        json_field(&b, "name", v[i]->name, false);
        json_field(&b, "version", v[i]->version, false);
        json_field(&b, "type", v[i]->type, false);
        json_field(&b, "workspace", v[i]->workspace, false);
        json_field(&b, "status", v[i]->status, false);
        json_field(&b, "runtime", v[i]->runtime, false);
        json_field(&b, "owner", v[i]->owner, false);
        json_field(&b, "health", vg_health_name(v[i]->health), false);
        if (v[i]->updated_at_ms) {
            vg_time_format_rfc3339(v[i]->updated_at_ms, ts, sizeof(ts));
            json_field(&b, "updated_at", ts, false);
        } else {
            vg_buf_puts(&b, ",\"updated_at\":null");
        }
        vg_buf_putc(&b, '}');
    }
    vg_buf_puts(&b, n ? "\n]\n" : "]\n");
    fputs(b.data, out);
    vg_buf_fini(&b);
}

static void yaml_field(struct vg_buf *b, const char *indent, const char *key, const char *value)
{
    vg_buf_puts(b, indent);
    vg_buf_puts(b, key);
    vg_buf_puts(b, ": ");
    cli_yaml_scalar(b, value);
    vg_buf_putc(b, '\n');
}

void cli_print_yaml(FILE *out, struct vg_resource **v, size_t n)
{
    struct vg_buf b = {0};

    if (n == 0) {
        vg_buf_puts(&b, "[]\n");
    }
    for (size_t i = 0; i < n; i++) {
        char ts[40];

        vg_time_format_rfc3339(v[i]->updated_at_ms, ts, sizeof(ts));
        yaml_field(&b, "- ", "id", v[i]->id);
        yaml_field(&b, "  ", "name", v[i]->name);
        yaml_field(&b, "  ", "version", v[i]->version);
        yaml_field(&b, "  ", "type", v[i]->type);
        yaml_field(&b, "  ", "workspace", v[i]->workspace);
        yaml_field(&b, "  ", "status", v[i]->status);
        yaml_field(&b, "  ", "runtime", v[i]->runtime);
        yaml_field(&b, "  ", "owner", v[i]->owner);
        yaml_field(&b, "  ", "health", vg_health_name(v[i]->health));
        yaml_field(&b, "  ", "updated_at", v[i]->updated_at_ms ? ts : NULL);
    }
    fputs(b.data, out);
    vg_buf_fini(&b);
}

/* ---- one Resource in full --------------------------------------------- */

/*
 * The detail view's fields in display order, shared by the text, JSON and
 * YAML renderings so the three always agree.
 */
struct detail {
    const struct vg_resource *res;
    int64_t now_ms;
    char status_since[40];
    char runtime_since[40];
    char health_since[40];
    char updated_at[40];
};

static void detail_init(struct detail *d, const struct vg_resource *res, int64_t now_ms)
{
    memset(d, 0, sizeof(*d));
    d->res = res;
    d->now_ms = now_ms;
    cli_format_time(res->status_since_ms, d->status_since, sizeof(d->status_since));
    cli_format_time(res->runtime_since_ms, d->runtime_since, sizeof(d->runtime_since));
    cli_format_time(res->health_since_ms, d->health_since, sizeof(d->health_since));
    cli_format_time(res->updated_at_ms, d->updated_at, sizeof(d->updated_at));
}

/* A pod's READY column: regular containers ready / regular containers, as kubectl prints it. */
static void pod_ready_text(const struct vg_pod *p, char *out, size_t out_size)
{
    size_t ready = 0;
    size_t total = 0;

    for (size_t i = 0; i < p->n_containers; i++) {
        if (!p->containers[i].init) {
            total++;
            ready += p->containers[i].ready ? 1 : 0;
        }
    }
    snprintf(out, out_size, "%zu/%zu", ready, total);
}

/* What a pod is waiting on or died of: status.reason, else the first container's reason. */
static const char *pod_reason(const struct vg_pod *p)
{
    if (p->reason[0]) {
        return p->reason;
    }
    for (size_t i = 0; i < p->n_containers; i++) {
        const struct vg_container *c = &p->containers[i];
        if (c->reason[0] && strcmp(c->reason, "Completed") != 0) {
            return c->reason;
        }
    }
    return "";
}

/*
 * Pods of the Resource (issue 4): NAME | PHASE | READY | RESTARTS | REASON |
 * LAST TRANSITION, after a line naming the pod and reason that decided the
 * runtime.
 */
static void detail_pods_text(FILE *out, const struct vg_resource *res)
{
    static const char *const headers[] = {"NAME",     "PHASE",  "READY",
                                          "RESTARTS", "REASON", "LAST TRANSITION"};
    enum { NCOLS = VG_ARRAY_LEN(headers) };
    const char **cells;
    char(*text)[3][40];

    if (res->n_pods == 0) {
        fprintf(out, "%-12s %s\n", "Pods:", "none");
        return;
    }
    if (res->runtime_pod[0]) {
        fprintf(out, "%-12s %zu (runtime %s from pod %s%s%s)\n", "Pods:", res->n_pods, res->runtime,
                res->runtime_pod, res->runtime_reason[0] ? ": " : "", res->runtime_reason);
    } else {
        fprintf(out, "%-12s %zu\n", "Pods:", res->n_pods);
    }
    cells = vg_calloc(NCOLS * res->n_pods, sizeof(*cells));
    text = vg_calloc(res->n_pods, sizeof(*text));
    for (size_t i = 0; i < res->n_pods; i++) {
        const struct vg_pod *p = &res->pods[i];

        pod_ready_text(p, text[i][0], sizeof(text[i][0]));
        snprintf(text[i][1], sizeof(text[i][1]), "%d", (int)p->restarts);
        cli_format_time(p->last_transition_ms, text[i][2], sizeof(text[i][2]));
        cells[i * NCOLS + 0] = p->name;
        cells[i * NCOLS + 1] = p->phase;
        cells[i * NCOLS + 2] = text[i][0];
        cells[i * NCOLS + 3] = text[i][1];
        cells[i * NCOLS + 4] = pod_reason(p);
        cells[i * NCOLS + 5] = text[i][2];
    }
    cli_print_grid(out, headers, NCOLS, cells, NULL, res->n_pods);
    vg_free(cells);
    vg_free(text);
}

/* The pods as a JSON array, then runtime_reason and runtime_pod (null when none). */
static void detail_pods_json(struct vg_buf *b, const struct vg_resource *res)
{
    vg_buf_puts(b, ",\n  \"pods\": [");
    for (size_t i = 0; i < res->n_pods; i++) {
        const struct vg_pod *p = &res->pods[i];
        char ts[40];

        vg_buf_puts(b, i ? ",\n    {\"name\": " : "\n    {\"name\": ");
        vg_json_append_string(b, p->name);
        vg_buf_puts(b, ", \"namespace\": ");
        vg_json_append_string(b, p->ns ? p->ns : "");
        vg_buf_puts(b, ", \"phase\": ");
        vg_json_append_string(b, p->phase);
        vg_buf_puts(b, ", \"reason\": ");
        vg_json_append_string(b, pod_reason(p));
        vg_buf_printf(b, ", \"ready\": %s, \"restarts\": %d, \"last_transition\": ",
                      p->ready ? "true" : "false", (int)p->restarts);
        cli_format_time(p->last_transition_ms, ts, sizeof(ts));
        if (ts[0]) {
            vg_json_append_string(b, ts);
        } else {
            vg_buf_puts(b, "null");
        }
        vg_buf_puts(b, ", \"containers\": [");
        for (size_t j = 0; j < p->n_containers; j++) {
            const struct vg_container *c = &p->containers[j];

            vg_buf_puts(b, j ? ", {\"name\": " : "{\"name\": ");
            vg_json_append_string(b, c->name);
            vg_buf_printf(b, ", \"init\": %s, \"ready\": %s, \"restarts\": %d, \"state\": ",
                          c->init ? "true" : "false", c->ready ? "true" : "false",
                          (int)c->restarts);
            vg_json_append_string(b, c->state);
            vg_buf_puts(b, ", \"reason\": ");
            vg_json_append_string(b, c->reason);
            vg_buf_printf(b, ", \"exit_code\": %d}", (int)c->exit_code);
        }
        vg_buf_puts(b, "]}");
    }
    vg_buf_puts(b, res->n_pods ? "\n  ]" : "]");
    vg_buf_puts(b, ",\n  \"runtime_reason\": ");
    if (res->runtime_reason[0]) {
        vg_json_append_string(b, res->runtime_reason);
    } else {
        vg_buf_puts(b, "null");
    }
    vg_buf_puts(b, ",\n  \"runtime_pod\": ");
    if (res->runtime_pod[0]) {
        vg_json_append_string(b, res->runtime_pod);
    } else {
        vg_buf_puts(b, "null");
    }
}

/* The pods as a YAML sequence, then runtime_reason and runtime_pod. */
static void detail_pods_yaml(struct vg_buf *b, const struct vg_resource *res)
{
    if (res->n_pods == 0) {
        vg_buf_puts(b, "pods: []\n");
    } else {
        vg_buf_puts(b, "pods:\n");
    }
    for (size_t i = 0; i < res->n_pods; i++) {
        const struct vg_pod *p = &res->pods[i];
        char ts[40];

        cli_format_time(p->last_transition_ms, ts, sizeof(ts));
        vg_buf_puts(b, "  - name: ");
        cli_yaml_scalar(b, p->name);
        vg_buf_puts(b, "\n    namespace: ");
        cli_yaml_scalar(b, p->ns ? p->ns : "");
        vg_buf_puts(b, "\n    phase: ");
        cli_yaml_scalar(b, p->phase);
        vg_buf_puts(b, "\n    reason: ");
        cli_yaml_scalar(b, pod_reason(p));
        vg_buf_printf(b, "\n    ready: %s\n    restarts: %d\n    last_transition: ",
                      p->ready ? "true" : "false", (int)p->restarts);
        cli_yaml_scalar(b, ts[0] ? ts : NULL);
        vg_buf_puts(b, "\n");
    }
    vg_buf_puts(b, "runtime_reason: ");
    cli_yaml_scalar(b, res->runtime_reason[0] ? res->runtime_reason : NULL);
    vg_buf_puts(b, "\nruntime_pod: ");
    cli_yaml_scalar(b, res->runtime_pod[0] ? res->runtime_pod : NULL);
    vg_buf_puts(b, "\n");
}

static void text_line(FILE *out, const char *label, const char *value)
{
    char *tmp;

    fprintf(out, "%-12s %s\n", label, printable(value, &tmp));
    vg_free(tmp);
}

/* "active       since 2026-11-28T10:00:00Z (3h)" */
static void text_since_line(FILE *out, const char *label, const char *value, int64_t since_ms,
                            const char *since_text, int64_t now_ms, bool color)
{
    const char *col = color ? cli_value_color(value) : NULL;
    char *tmp;
    const char *shown = printable(value, &tmp);
    size_t w = cli_display_width(shown);

    fprintf(out, "%-12s %s%s%s", label, col ? col : "", shown, col ? COLOR_RESET : "");
    vg_free(tmp);
    if (since_ms) {
        char age[40];

        cli_format_age(now_ms - since_ms, age, sizeof(age));
        pad(out, w < 12 ? 12 - w : 1);
        fprintf(out, "since %s (%s)", since_text, age);
    }
    fputc('\n', out);
}

/*
 * The incidents of `res` that are open (firing): rules/ also keeps entries
 * it is only watching ("pending") or that owe an end notice; those are not
 * incidents to show. Returns a heap array of pointers (caller frees).
 */
static const struct vg_open_incident **open_incidents(const struct vg_resource *res,
                                                      size_t *n_out)
{
    const struct vg_open_incident **v = vg_calloc(res->n_incidents + 1, sizeof(*v));
    size_t n = 0;

    for (size_t i = 0; i < res->n_incidents; i++) {
        const struct vg_open_incident *inc = &res->incidents[i];
        if (!inc->state || strcmp(inc->state, "firing") == 0) {
            v[n++] = inc;
        }
    }
    *n_out = n;
    return v;
}

void cli_print_detail(FILE *out, const struct vg_resource *res, int64_t now_ms, bool color)
{
    size_t n_open = 0;
    const struct vg_open_incident **open = open_incidents(res, &n_open);
    struct detail d;
    char *tmp;

    detail_init(&d, res, now_ms);
    text_line(out, "Id:", res->id);
    text_line(out, "Name:", res->name);
    text_line(out, "Version:", res->version);
    text_line(out, "Type:", res->type);
    text_line(out, "Workspace:", res->workspace);
    text_line(out, "Owner:", res->owner);
    text_since_line(out, "Status:", res->status, res->status_since_ms, d.status_since, now_ms,
                    color);
    text_since_line(out, "Runtime:", res->runtime, res->runtime_since_ms, d.runtime_since, now_ms,
                    color);
    text_since_line(out, "Health:", vg_health_name(res->health), res->health_since_ms,
                    d.health_since, now_ms, color);
    text_line(out, "Updated:", d.updated_at);
    text_line(out, "Message:", res->message ? res->message : "");
    if (res->pos.topic) {
        fprintf(out, "%-12s topic=%s partition=%d offset=%" PRId64 "\n",
                "Kafka:", printable(res->pos.topic, &tmp), (int)res->pos.partition,
                res->pos.offset);
        vg_free(tmp);
    } else {
        text_line(out, "Kafka:", "");
    }
    if (n_open == 0) {
        fprintf(out, "%-12s %s\n", "Incidents:", "none");
    } else {
        static const char *const headers[] = {"MONITOR", "SEVERITY", "ID", "STARTED",
                                              "NOTIFICATIONS"};
        enum { NCOLS = VG_ARRAY_LEN(headers) };
        const char **cells = vg_calloc(NCOLS * n_open, sizeof(*cells));
        char(*text)[2][40] = vg_calloc(n_open, sizeof(*text));

        fprintf(out, "%-12s %zu open\n", "Incidents:", n_open);
        for (size_t i = 0; i < n_open; i++) {
            const struct vg_open_incident *inc = open[i];

            cli_format_time(inc->started_at_ms, text[i][0], sizeof(text[i][0]));
            snprintf(text[i][1], sizeof(text[i][1]), "%d", inc->seq);
            cells[i * NCOLS + 0] = inc->monitor;
            cells[i * NCOLS + 1] = inc->severity;
            cells[i * NCOLS + 2] = inc->id;
            cells[i * NCOLS + 3] = text[i][0];
            cells[i * NCOLS + 4] = text[i][1];
        }
        cli_print_grid(out, headers, NCOLS, cells, NULL, n_open);
        vg_free(cells);
        vg_free(text);
    }
    detail_pods_text(out, res);
    vg_free(open);
}

static void json_time(struct vg_buf *b, const char *key, const char *text)
{
    vg_buf_puts(b, ",\n  ");
    vg_json_append_string(b, key);
    vg_buf_puts(b, ": ");
    if (text[0]) {
        vg_json_append_string(b, text);
    } else {
        vg_buf_puts(b, "null");
    }
}

static void json_member(struct vg_buf *b, const char *key, const char *value, bool first)
{
    vg_buf_puts(b, first ? "\n  " : ",\n  ");
    vg_json_append_string(b, key);
    vg_buf_puts(b, ": ");
    if (value) {
        vg_json_append_string(b, value);
    } else {
        vg_buf_puts(b, "null");
    }
}

void cli_print_detail_json(FILE *out, const struct vg_resource *res, int64_t now_ms)
{
    size_t n_open = 0;
    const struct vg_open_incident **open = open_incidents(res, &n_open);
    struct detail d;
    struct vg_buf b = {0};

    detail_init(&d, res, now_ms);
    vg_buf_putc(&b, '{');
    json_member(&b, "id", res->id, true);
    json_member(&b, "name", res->name, false);
    json_member(&b, "version", res->version, false);
    json_member(&b, "type", res->type, false);
    json_member(&b, "workspace", res->workspace, false);
    json_member(&b, "status", res->status, false);
    json_member(&b, "runtime", res->runtime, false);
    json_member(&b, "owner", res->owner, false);
    json_member(&b, "health", vg_health_name(res->health), false);
    json_time(&b, "updated_at", d.updated_at);
    json_time(&b, "status_since", d.status_since);
    json_time(&b, "runtime_since", d.runtime_since);
    json_time(&b, "health_since", d.health_since);
    json_member(&b, "message", res->message, false);
    vg_buf_puts(&b, ",\n  \"position\": ");
    if (res->pos.topic) {
        vg_buf_puts(&b, "{\"topic\": ");
        vg_json_append_string(&b, res->pos.topic);
        vg_buf_printf(&b, ", \"partition\": %d, \"offset\": %" PRId64 "}", (int)res->pos.partition,
                      res->pos.offset);
    } else {
        vg_buf_puts(&b, "null");
    }
    vg_buf_puts(&b, ",\n  \"incidents\": [");
    for (size_t i = 0; i < n_open; i++) {
        const struct vg_open_incident *inc = open[i];
        char ts[40];

        cli_format_time(inc->started_at_ms, ts, sizeof(ts));
        vg_buf_puts(&b, i ? ",\n    {\"monitor\": " : "\n    {\"monitor\": ");
        vg_json_append_string(&b, inc->monitor);
        vg_buf_puts(&b, ", \"id\": ");
        vg_json_append_string(&b, inc->id);
        vg_buf_puts(&b, ", \"severity\": ");
        vg_json_append_string(&b, inc->severity);
        vg_buf_puts(&b, ", \"started_at\": ");
        if (ts[0]) {
            vg_json_append_string(&b, ts);
        } else {
            vg_buf_puts(&b, "null");
        }
        vg_buf_printf(&b, ", \"notifications\": %d}", inc->seq);
    }
    vg_buf_puts(&b, n_open ? "\n  ]" : "]");
    detail_pods_json(&b, res);
    vg_buf_puts(&b, "\n}\n");
    fputs(b.data, out);
    vg_buf_fini(&b);
    vg_free(open);
}

void cli_print_detail_yaml(FILE *out, const struct vg_resource *res, int64_t now_ms)
{
    size_t n_open = 0;
    const struct vg_open_incident **open = open_incidents(res, &n_open);
    struct detail d;
    struct vg_buf b = {0};

    detail_init(&d, res, now_ms);
    yaml_field(&b, "", "id", res->id);
    yaml_field(&b, "", "name", res->name);
    yaml_field(&b, "", "version", res->version);
    yaml_field(&b, "", "type", res->type);
    yaml_field(&b, "", "workspace", res->workspace);
    yaml_field(&b, "", "status", res->status);
    yaml_field(&b, "", "runtime", res->runtime);
    yaml_field(&b, "", "owner", res->owner);
    yaml_field(&b, "", "health", vg_health_name(res->health));
    yaml_field(&b, "", "updated_at", d.updated_at[0] ? d.updated_at : NULL);
    yaml_field(&b, "", "status_since", d.status_since[0] ? d.status_since : NULL);
    yaml_field(&b, "", "runtime_since", d.runtime_since[0] ? d.runtime_since : NULL);
    yaml_field(&b, "", "health_since", d.health_since[0] ? d.health_since : NULL);
    yaml_field(&b, "", "message", res->message);
    if (res->pos.topic) {
        vg_buf_puts(&b, "position:\n");
        yaml_field(&b, "  ", "topic", res->pos.topic);
        vg_buf_printf(&b, "  partition: %d\n  offset: %" PRId64 "\n", (int)res->pos.partition,
                      res->pos.offset);
    } else {
        vg_buf_puts(&b, "position: null\n");
    }
    if (n_open == 0) {
        vg_buf_puts(&b, "incidents: []\n");
    } else {
        vg_buf_puts(&b, "incidents:\n");
    }
    for (size_t i = 0; i < n_open; i++) {
        const struct vg_open_incident *inc = open[i];
        char ts[40];

        cli_format_time(inc->started_at_ms, ts, sizeof(ts));
        yaml_field(&b, "  - ", "monitor", inc->monitor);
        yaml_field(&b, "    ", "id", inc->id);
        yaml_field(&b, "    ", "severity", inc->severity);
        yaml_field(&b, "    ", "started_at", ts[0] ? ts : NULL);
        vg_buf_printf(&b, "    notifications: %d\n", inc->seq);
    }
    detail_pods_yaml(&b, res);
    fputs(b.data, out);
    vg_buf_fini(&b);
    vg_free(open);
}

/* ---- the command ------------------------------------------------------ */

static void get_usage(FILE *out)
{
    fputs("usage: vigil get [-c vigil.yaml | --redis URL [--prefix P]] [-t TYPE] [-w WORKSPACE]\n"
          "                 [-n NAME-GLOB] [--owner OWNER] [-a] [-o table|wide|json|yaml]\n"
          "       vigil get [-c vigil.yaml | --redis URL [--prefix P]] [-o table|json|yaml] ID\n",
          out);
}

static int get_one(struct vg_state *st, const char *id, const char *output)
{
    struct vg_resource *res = NULL;
    char errstr[1024];
    vg_err_t err = vg_state_get(st, id, &res, errstr, sizeof(errstr));
    int64_t now = cli_now_ms();

    if (err != VG_OK) {
        return cli_state_error("get", err, errstr);
    }
    if (!res) {
        fprintf(stderr, "vigil get: resource \"%s\" not found\n", id);
        return CLI_EXIT_FAILURE;
    }
    if (!strcmp(output, "json")) {
        cli_print_detail_json(stdout, res, now);
    } else if (!strcmp(output, "yaml")) {
        cli_print_detail_yaml(stdout, res, now);
    } else {
        cli_print_detail(stdout, res, now, cli_use_color(stdout));
    }
    vg_resource_destroy(res);
    return CLI_EXIT_OK;
}

static int get_list(struct vg_state *st, const struct vg_state_filter *f, const char *output)
{
    struct vg_resource **v = NULL;
    char errstr[1024];
    size_t n = 0;
    vg_err_t err = vg_state_list(st, f, &v, &n, errstr, sizeof(errstr));

    if (err != VG_OK) {
        return cli_state_error("get", err, errstr);
    }
    if (!strcmp(output, "json")) {
        cli_print_json(stdout, v, n);
    } else if (!strcmp(output, "yaml")) {
        cli_print_yaml(stdout, v, n);
    } else if (n > 0 && !strcmp(output, "wide")) {
        cli_print_wide(stdout, v, n, cli_use_color(stdout), cli_now_ms());
    } else if (n > 0) {
        cli_print_table(stdout, v, n, cli_use_color(stdout));
    }
    if (n == 0) {
        fprintf(stderr, "No resources found.\n");
    }
    vg_resources_free(v, n);
    return CLI_EXIT_OK;
}

int cli_cmd_get(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"redis", required_argument, NULL, 'r'},
                                         {"prefix", required_argument, NULL, 'P'},
                                         {"type", required_argument, NULL, 't'},
                                         {"workspace", required_argument, NULL, 'w'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"owner", required_argument, NULL, 'O'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    const char *redis_url = NULL;
    const char *prefix = NULL;
    const char *output = "table";
    const char *id = NULL;
    struct vg_state_filter f = {0};
    struct vg_config cfg;
    struct vg_redis_child *child = NULL;
    struct vg_state *st = NULL;
    int rc;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:t:w:n:ao:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'r':
            redis_url = optarg;
            break;
        case 'P':
            prefix = optarg;
            break;
        case 't':
            f.type = optarg;
            break;
        case 'w':
            f.workspace = optarg;
            break;
        case 'n':
            f.name_glob = optarg;
            break;
        case 'O':
            f.owner = optarg;
            break;
        case 'a':
            break; /* all owners: also the default (dataos-ctl habit) */
        case 'o':
            output = optarg;
            break;
        case 'h':
            get_usage(stdout);
            return CLI_EXIT_OK;
        default:
            get_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (strcmp(output, "table") != 0 && strcmp(output, "wide") != 0 &&
        strcmp(output, "json") != 0 && strcmp(output, "yaml") != 0) {
        fprintf(stderr, "vigil get: unknown output format \"%s\" (table, wide, json or yaml)\n",
                output);
        return CLI_EXIT_USAGE;
    }
    if (optind < argc) {
        id = argv[optind++];
        if (!strchr(id, ':')) {
            fprintf(stderr,
                    "vigil get: \"%s\" is not a Resource id (type:version:name:workspace); "
                    "use -n NAME-GLOB to search by name\n",
                    id);
            return CLI_EXIT_USAGE;
        }
        if (f.type || f.workspace || f.name_glob || f.owner) {
            fprintf(stderr, "vigil get: an ID cannot be combined with -t, -w, -n or --owner\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vigil get: unexpected argument \"%s\"\n", argv[optind]);
        get_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (f.name_glob && !vg_glob_valid(f.name_glob)) {
        fprintf(stderr, "vigil get: bad name glob \"%s\" (unbalanced [ ])\n", f.name_glob);
        return CLI_EXIT_USAGE;
    }
    rc = cli_open_state("get", config_path, false, redis_url, prefix, &cfg, &st, &child);
    if (rc == CLI_EXIT_OK) {
        rc = id ? get_one(st, id, output) : get_list(st, &f, output);
    }
    cli_close_state(st, child);
    vg_config_fini(&cfg);
    return rc;
}
