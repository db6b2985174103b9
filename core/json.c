/*
 * JSON helpers: cJSON allocation hooks, string escaping into a vg_buf,
 * and the checks run on untrusted input before cJSON parses it (one pass:
 * UTF-8, nesting depth, raw control characters in strings).
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vigil/json.h"

static void *json_malloc(size_t n)
{
    return vg_malloc(n);
}

void vg_json_init(void)
{
    cJSON_Hooks hooks = {.malloc_fn = json_malloc, .free_fn = vg_free};
    cJSON_InitHooks(&hooks);
}

void vg_json_append_string(struct vg_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    vg_buf_putc(b, '"');
    for (; *p; p++) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p != '"' && *p != '\\') {
            p++;
        }
        if (p > run) {
            vg_buf_append(b, (const char *)run, (size_t)(p - run));
        }
        if (!*p) {
            break;
        }
        switch (*p) {
        case '"':
            vg_buf_puts(b, "\\\"");
            break;
        case '\\':
            vg_buf_puts(b, "\\\\");
            break;
        case '\n':
            vg_buf_puts(b, "\\n");
            break;
        case '\r':
            vg_buf_puts(b, "\\r");
            break;
        case '\t':
            vg_buf_puts(b, "\\t");
            break;
        default:
            vg_buf_printf(b, "\\u%04x", *p);
        }
    }
    vg_buf_putc(b, '"');
}

int vg_json_depth(const char *json, size_t len, int limit)
{
    int depth = 0;
    int max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = false;
            }
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
            if (depth > max) {
                max = depth;
                if (max > limit) {
                    return max;
                }
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

/*
 * Length of the valid UTF-8 sequence at p[i] (lead byte >= 0x80), or 0
 * when it is not one: overlong forms (C0 AF), surrogates (ED A0 80),
 * code points beyond U+10FFFF, stray or missing continuation bytes.
 */
static size_t utf8_seq_len(const unsigned char *p, size_t i, size_t len)
{
    unsigned char c = p[i];
    size_t n;
    uint32_t cp;

    if ((c & 0xe0) == 0xc0) {
        n = 1;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 2;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (i + n >= len) {
        return 0;
    }
    for (size_t k = 1; k <= n; k++) {
        if ((p[i + k] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
        return 0;
    }
    return n + 1;
}

bool vg_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = 1;
        if (p[i] >= 0x80) {
            n = utf8_seq_len(p, i, len);
            if (n == 0) {
                return false;
            }
        }
        i += n;
    }
    return true;
}

/*
 * One pass instead of three (UTF-8, depth, strings): decode runs it on
 * every message before cJSON sees it. Inside strings only '"' and '\\'
 * change the state; an escaped quote or backslash is stepped over, any
 * other escape is left for cJSON to judge (a raw control byte right after
 * a backslash is still a control byte).
 */
enum vg_json_scan_result vg_json_scan(const char *json, size_t len, int max_depth,
                                      struct vg_json_scan *out)
{
    const unsigned char *p = (const unsigned char *)json;
    int depth = 0;
    bool in_str = false;
    size_t i = 0;

    out->at = 0;
    out->depth = 0;
    out->nul_escape = false;
    while (i < len) {
        unsigned char c = p[i];

        if (c >= 0x80) {
            size_t n = utf8_seq_len(p, i, len);
            if (n == 0) {
                out->at = i;
                return VG_JSON_SCAN_NOT_UTF8;
            }
            i += n;
            continue;
        }
        if (in_str) {
            if (c == '"') {
                in_str = false;
            } else if (c < 0x20) {
                out->at = i;
                return VG_JSON_SCAN_CONTROL_CHAR;
            } else if (c == '\\' && i + 1 < len) {
                if (p[i + 1] == '"' || p[i + 1] == '\\') {
                    i++;
                } else if (p[i + 1] == 'u' && i + 5 < len && p[i + 2] == '0' && p[i + 3] == '0' &&
                           p[i + 4] == '0' && p[i + 5] == '0') {
                    out->nul_escape = true;
                }
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > out->depth) {
                out->depth = depth;
                if (depth > max_depth) {
                    out->at = i;
                    return VG_JSON_SCAN_TOO_DEEP;
                }
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
        i++;
    }
    return VG_JSON_SCAN_OK;
}
