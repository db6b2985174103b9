/*
 * How the CLI prints: the dataos-ctl grid (centred headers, '|' between
 * columns, UTF-8 display width, control characters neutralised), colour
 * badges, kubectl-style ages, RFC 3339 times, and JSON and YAML scalars
 * and fields. Pure: what to print is the commands' (cmd_*.c); no Redis,
 * no config. Colour only on a TTY, never with NO_COLOR.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "render.h"
#include "vigil/json.h"
#include "vigil/util.h"

#define COLOR_GREEN "\033[32m"
#define COLOR_RED "\033[31m"
#define COLOR_YELLOW "\033[33m"

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

const char *cli_printable(const char *s, char **tmp)
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

void cli_pad(FILE *out, size_t n)
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

        shown[i] = cli_printable(cells[i] ? cells[i] : "", &clean[i]);
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
        cli_pad(out, left);
        fputs(headers[c], out);
        if (c < ncols - 1) {
            cli_pad(out, total - left - strlen(headers[c]));
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
                fputs(CLI_COLOR_RESET, out);
            }
            if (c < ncols - 1) {
                cli_pad(out, width[c] + 1 - cli_display_width(cell));
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

void cli_yaml_field(struct vg_buf *b, const char *indent, const char *key, const char *value)
{
    vg_buf_puts(b, indent);
    vg_buf_puts(b, key);
    vg_buf_puts(b, ": ");
    cli_yaml_scalar(b, value);
    vg_buf_putc(b, '\n');
}

void cli_json_member(struct vg_buf *b, const char *sep, const char *key, const char *value)
{
    vg_buf_puts(b, sep);
    vg_json_append_string(b, key);
    vg_buf_puts(b, ": ");
    if (value) {
        vg_json_append_string(b, value);
    } else {
        vg_buf_puts(b, "null");
    }
}
