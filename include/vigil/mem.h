/*
 * Allocation that never returns NULL (out of memory aborts: we are
 * supervised and Kafka redelivers), assertions that stay compiled in,
 * a growable byte buffer used to build strings, and a bump arena for
 * scratch memory that is dropped all at once.
 */
#ifndef VIGIL_MEM_H
#define VIGIL_MEM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

void *vg_malloc(size_t n);
void *vg_calloc(size_t nmemb, size_t size);
void *vg_realloc(void *p, size_t n);
char *vg_strdup(const char *s);
char *vg_strndup(const char *s, size_t n);
/* printf into a new heap string. */
char *vg_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vg_free(void *p);

/* Print "out of memory: what" and abort(). */
__attribute__((noreturn)) void vg_oom(const char *what);

__attribute__((noreturn)) void vg_assert_fail(const char *expr, const char *file, int line);
#define VG_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            vg_assert_fail(#cond, __FILE__, __LINE__);                                             \
        }                                                                                          \
    } while (0)

#define VG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Grow a heap array `*arr` of `*cap` elements so that it holds at least `need`. */
void vg_array_grow(void **arr, size_t *cap, size_t need, size_t elem_size);
/* The growth call only when full: this runs per field of every event. */
#define VG_ARRAY_PUSH(arr, n, cap)                                                                 \
    ((n) + 1 > (cap) ? vg_array_grow((void **)&(arr), &(cap), (n) + 1, sizeof(*(arr))) : (void)0,  \
     &(arr)[(n)++])

/* A growable NUL-terminated byte buffer. Zero-initialise (`struct vg_buf b = {0};`). */
struct vg_buf {
    char *data;
    size_t len;
    size_t cap;
};

void vg_buf_append(struct vg_buf *b, const char *s, size_t n);
void vg_buf_puts(struct vg_buf *b, const char *s);
void vg_buf_putc(struct vg_buf *b, char c);
void vg_buf_printf(struct vg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vg_buf_vprintf(struct vg_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void vg_buf_reset(struct vg_buf *b);
/* Hand the heap string over to the caller (never NULL); the buffer is empty afterwards. */
char *vg_buf_steal(struct vg_buf *b);
void vg_buf_fini(struct vg_buf *b);

/*
 * A bump allocator: allocation is a pointer bump in the current chunk
 * (a new chunk, at least twice the last, when it is full), nothing is
 * freed one by one, vg_arena_reset drops everything at once. For scratch
 * memory with one clear lifetime (a message being decoded). Not
 * thread-safe: one owner thread at a time.
 */
struct vg_arena_chunk;
/* The members are mem.c's: visible only so that vg_arena_alloc's fast path inlines. */
struct vg_arena {
    struct vg_arena_chunk *first; /* kept by resets */
    struct vg_arena_chunk *cur;   /* where allocations go */
    char *next;                   /* in cur */
    size_t left;                  /* bytes from next to the end of cur */
    size_t chunk_bytes;
};
/* An empty arena whose first chunk (made on first use, kept by resets) holds `chunk_bytes`. */
struct vg_arena *vg_arena_new(size_t chunk_bytes);
void vg_arena_destroy(struct vg_arena *a); /* accepts NULL */
/* True when `p` lies in memory the arena handed out (or will: any chunk it holds). */
bool vg_arena_owns(const struct vg_arena *a, const void *p);
/* Forget every allocation; chunks beyond the first go back to the heap. */
void vg_arena_reset(struct vg_arena *a);
/* vg_arena_alloc when the current chunk is full (and always under AddressSanitizer). */
void *vg_arena_alloc_slow(struct vg_arena *a, size_t n);

/* Under AddressSanitizer every allocation takes the slow path, which poisons and red-zones. */
#if defined(__SANITIZE_ADDRESS__)
#define VG_ARENA_FAST 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VG_ARENA_FAST 0
#endif
#endif
#ifndef VG_ARENA_FAST
#define VG_ARENA_FAST 1
#endif

/* `n` bytes aligned for any type, valid until the next reset; never NULL. */
static inline void *vg_arena_alloc(struct vg_arena *a, size_t n)
{
    const size_t align = _Alignof(max_align_t);

    /* n in 1..left (0 wraps around and goes slow), so rounding up cannot overflow */
    if (VG_ARENA_FAST && n - 1 < a->left) {
        size_t need = (n + align - 1) & ~(align - 1);

        if (need <= a->left) {
            void *p = a->next;

            a->next += need;
            a->left -= need;
            return p;
        }
    }
    return vg_arena_alloc_slow(a, n);
}

#endif
