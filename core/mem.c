/*
 * Allocation wrappers that abort on out-of-memory, the assertion hook,
 * growable arrays, the vg_buf string builder and the vg_arena bump
 * allocator.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/mem.h"

/*
 * Under AddressSanitizer an arena poisons what it has not handed out and
 * puts a red zone after each allocation, so overflows and use after a
 * reset are still caught although nothing goes back to malloc.
 */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_REDZONE 16
#else
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ARENA_REDZONE 0
#endif

void vg_oom(const char *what)
{
    fprintf(stderr, "vigil: out of memory: %s\n", what);
    abort();
}

void vg_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "vigil: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

void *vg_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        vg_oom("malloc");
    }
    return p;
}

void *vg_calloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p) {
        vg_oom("calloc");
    }
    return p;
}

void *vg_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        vg_oom("realloc");
    }
    return q;
}

char *vg_strdup(const char *s)
{
    return vg_strndup(s, strlen(s));
}

char *vg_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = vg_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *vg_asprintf(const char *fmt, ...)
{
    struct vg_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    vg_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return vg_buf_steal(&b);
}

void vg_free(void *p)
{
    free(p);
}

void vg_array_grow(void **arr, size_t *cap, size_t need, size_t elem_size)
{
    size_t ncap;
    if (need <= *cap) {
        return;
    }
    ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) {
        ncap *= 2;
    }
    *arr = vg_realloc(*arr, ncap * elem_size);
    memset((char *)*arr + *cap * elem_size, 0, (ncap - *cap) * elem_size);
    *cap = ncap;
}

static void buf_reserve(struct vg_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    size_t ncap;
    if (need <= b->cap) {
        return;
    }
    ncap = b->cap ? b->cap * 2 : 64;
    while (ncap < need) {
        ncap *= 2;
    }
    b->data = vg_realloc(b->data, ncap);
    b->cap = ncap;
}

void vg_buf_append(struct vg_buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void vg_buf_puts(struct vg_buf *b, const char *s)
{
    vg_buf_append(b, s, strlen(s));
}

void vg_buf_putc(struct vg_buf *b, char c)
{
    vg_buf_append(b, &c, 1);
}

void vg_buf_vprintf(struct vg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    va_copy(ap2, ap);
    buf_reserve(b, 64);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    }
    b->len += (size_t)n;
    va_end(ap2);
}

void vg_buf_printf(struct vg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vg_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void vg_buf_reset(struct vg_buf *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

char *vg_buf_steal(struct vg_buf *b)
{
    char *s = b->data;
    if (!s) {
        s = vg_strdup("");
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return s;
}

void vg_buf_fini(struct vg_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

/* One block of arena memory; chunks are chained newest first. */
struct vg_arena_chunk {
    struct vg_arena_chunk *prev;
    size_t size;        /* bytes in data */
    max_align_t data[]; /* aligned for any type */
};

struct vg_arena *vg_arena_new(size_t chunk_bytes)
{
    struct vg_arena *a = vg_calloc(1, sizeof(*a));

    a->chunk_bytes = chunk_bytes ? chunk_bytes : 4096;
    return a;
}

static struct vg_arena_chunk *chunk_new(struct vg_arena_chunk *prev, size_t size)
{
    struct vg_arena_chunk *c;

    if (size > SIZE_MAX - sizeof(*c)) {
        vg_oom("arena chunk");
    }
    c = vg_malloc(sizeof(*c) + size);
    c->prev = prev;
    c->size = size;
    ASAN_POISON_MEMORY_REGION(c->data, size);
    return c;
}

static void use_chunk(struct vg_arena *a, struct vg_arena_chunk *c)
{
    a->cur = c;
    a->next = (char *)c->data;
    a->left = c->size;
}

/* Room for `need` bytes: the first chunk on first use, else a new one at least twice the last. */
static void arena_grow(struct vg_arena *a, size_t need)
{
    size_t size;

    if (!a->first) {
        a->first = chunk_new(NULL, a->chunk_bytes);
        use_chunk(a, a->first);
        if (a->left >= need) {
            return;
        }
    }
    size = a->cur->size <= SIZE_MAX / 2 ? a->cur->size * 2 : a->cur->size;
    if (size < need) {
        size = need;
    }
    use_chunk(a, chunk_new(a->cur, size));
}

void *vg_arena_alloc_slow(struct vg_arena *a, size_t n)
{
    const size_t align = _Alignof(max_align_t);
    size_t need;
    char *p;

    if (n > SIZE_MAX / 2) {
        vg_oom("arena allocation");
    }
    need = (n + ARENA_REDZONE + align - 1) & ~(align - 1);
    if (need == 0) {
        need = align;
    }
    if (a->left < need) {
        arena_grow(a, need);
    }
    p = a->next;
    a->next += need;
    a->left -= need;
    ASAN_UNPOISON_MEMORY_REGION(p, n);
    return p;
}

bool vg_arena_owns(const struct vg_arena *a, const void *p)
{
    uintptr_t u = (uintptr_t)p;

    for (const struct vg_arena_chunk *c = a->cur; c; c = c->prev) {
        uintptr_t start = (uintptr_t)c->data;

        if (u >= start && u - start < c->size) {
            return true;
        }
    }
    return false;
}

void vg_arena_reset(struct vg_arena *a)
{
    while (a->cur && a->cur != a->first) {
        struct vg_arena_chunk *prev = a->cur->prev;

        free(a->cur);
        a->cur = prev;
    }
    if (a->first) {
        ASAN_POISON_MEMORY_REGION(a->first->data, a->first->size);
        use_chunk(a, a->first);
    }
}

void vg_arena_destroy(struct vg_arena *a)
{
    if (!a) {
        return;
    }
    while (a->cur) {
        struct vg_arena_chunk *prev = a->cur->prev;

        free(a->cur);
        a->cur = prev;
    }
    free(a);
}
