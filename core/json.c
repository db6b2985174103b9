/*
 * JSON helpers: cJSON allocation hooks, string escaping into a vg_buf,
 * a cheap nesting-depth check run before parsing untrusted input, and
 * UTF-8 validation.
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

bool vg_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len) {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
            return false;
        }
        i += n + 1;
    }
    return true;
}
