/*
 * Allocation that never returns NULL (out of memory aborts: we are
 * supervised and Kafka redelivers), assertions that stay compiled in,
 * and a growable byte buffer used to build strings.
 */
#ifndef VIGIL_MEM_H
#define VIGIL_MEM_H

#include <stdarg.h>
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

#endif
