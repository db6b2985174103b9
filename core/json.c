/*
 * JSON helpers: cJSON allocation hooks and the per-thread scratch arena
 * they use while decoding, string escaping into a vg_buf, and the checks
 * run on untrusted input before cJSON parses it (one pass: UTF-8, nesting
 * depth, raw control characters in strings).
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "vigil/json.h"

/* A native event's tree fits many times over; a large Pod takes a second chunk. */
#define SCRATCH_CHUNK_BYTES (64 * 1024)

/*
 * cJSON's hooks are process-wide and take no context, so the arena they
 * use is found per thread: decoding on several threads needs no lock.
 * `scratch_open` is set only between begin and end, around a parse on
 * this thread; every other cJSON use (building JSON to print, on any
 * thread) goes to the heap as before.
 */
static _Thread_local struct vg_arena *scratch;
static _Thread_local bool scratch_open;
static bool hooks_installed; /* set once by vg_json_init, before threads */
static pthread_once_t scratch_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t scratch_key; /* frees a thread's arena when the thread exits */

static void *json_malloc(size_t n)
{
    if (scratch_open) {
        return vg_arena_alloc(scratch, n);
    }
    return vg_malloc(n);
}

/* A free of arena memory is a no-op; anything else came from the heap. */
static void json_free(void *p)
{
    if (scratch_open && vg_arena_owns(scratch, p)) {
        return;
    }
    vg_free(p);
}

void vg_json_init(void)
{
    cJSON_Hooks hooks = {.malloc_fn = json_malloc, .free_fn = json_free};
    cJSON_InitHooks(&hooks);
    hooks_installed = true;
}

static void scratch_free_at_exit(void *a)
{
    vg_arena_destroy(a);
}

static void scratch_make_key(void)
{
    if (pthread_key_create(&scratch_key, scratch_free_at_exit) != 0) {
        vg_oom("pthread key");
    }
}

struct vg_arena *vg_json_scratch_begin(bool *trees_in_arena)
{
    VG_ASSERT(!scratch_open);
    if (!scratch) {
        scratch = vg_arena_new(SCRATCH_CHUNK_BYTES);
        pthread_once(&scratch_key_once, scratch_make_key);
        if (pthread_setspecific(scratch_key, scratch) != 0) {
            vg_oom("pthread key");
        }
    }
    scratch_open = true;
    *trees_in_arena = hooks_installed;
    return scratch;
}

void vg_json_scratch_end(void)
{
    VG_ASSERT(scratch_open);
    scratch_open = false;
    vg_arena_reset(scratch);
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
 * What may change the scan's state: in a string (control bytes, '"',
 * '\\', bytes >= 0x80) and outside one ('"', brackets, bytes >= 0x80).
 * Every other byte is skipped without a branch per kind.
 */
#define IN_STR 1
#define OUT_STR 2
#define X8(v) v, v, v, v, v, v, v, v
#define X32(v) X8(v), X8(v), X8(v), X8(v)
static const unsigned char byte_class[256] = {
    X32(IN_STR),           ['"'] = IN_STR | OUT_STR,
    ['['] = OUT_STR,       ['\\'] = IN_STR,
    [']'] = OUT_STR,       ['{'] = OUT_STR,
    ['}'] = OUT_STR,       [0x80] = X32(IN_STR | OUT_STR),
    X32(IN_STR | OUT_STR), X32(IN_STR | OUT_STR),
    X32(IN_STR | OUT_STR),
};

/*
 * The bytes of `v` that are special inside a string (< 0x20, '"', '\\',
 * >= 0x80) get their high bit set, by the usual "has a zero / has less
 * than" bit tricks. A borrow can mark a byte above a real match, never
 * below one, so the lowest marked byte is the first special byte.
 */
static uint64_t string_special_mask(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101u;
    const uint64_t high = 0x8080808080808080u;
    uint64_t q = v ^ (ones * '"');
    uint64_t b = v ^ (ones * '\\');

    return (((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b) | v) & high;
}

/* The offset of the first byte at or after `i` that is special inside a string, or `len`. */
static size_t skip_string_plain(const unsigned char *p, size_t i, size_t len)
{
#if defined(__SSE2__)
    /*
     * Sixteen bytes a step where SSE2 is there (every x86-64): a long
     * message text is most of an event's bytes. Compared as signed bytes,
     * those >= 0x80 are negative, so "less than 0x20" catches them too.
     */
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);

    while (len - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i special =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                         _mm_cmplt_epi8(v, space));
        unsigned bits = (unsigned)_mm_movemask_epi8(special);

        if (bits) {
            return i + (size_t)__builtin_ctz(bits); /* bit k is byte k */
        }
        i += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len - i >= 8) {
        uint64_t v;
        uint64_t m;

        memcpy(&v, p + i, sizeof(v));
        m = string_special_mask(v);
        if (m) {
            return i +
                   (size_t)(__builtin_ctzll(m) / 8); /* the first byte in memory is the lowest */
        }
        i += 8;
    }
#endif
    while (i < len && !(byte_class[p[i]] & IN_STR)) {
        i++;
    }
    return i;
}

/*
 * One pass instead of three (UTF-8, depth, strings): decode runs it on
 * every message before cJSON sees it. Inside strings only '"' and '\\'
 * change the state; an escaped quote or backslash is stepped over, any
 * other escape is left for cJSON to judge (a raw control byte right after
 * a backslash is still a control byte). Plain bytes are skipped sixteen
 * (SSE2) or eight at a time inside strings and by one table lookup
 * elsewhere: this runs over every byte of every message.
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
        unsigned char c;

        if (in_str) {
            i = skip_string_plain(p, i, len);
        } else {
            while (i < len && !(byte_class[p[i]] & OUT_STR)) {
                i++;
            }
        }
        if (i >= len) {
            break;
        }
        c = p[i];
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
            } else if (i + 1 < len) { /* a backslash */
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
        } else {
            depth--; /* '}' or ']' */
        }
        i++;
    }
    return VG_JSON_SCAN_OK;
}
