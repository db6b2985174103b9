/*
 * A string-keyed hash map (open addressing, linear probing, tombstones).
 * Keys are copied; values are borrowed. Used for the state cache and
 * rule indexes; not thread-safe.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/mem.h"
#include "vigil/util.h"

#define TOMBSTONE ((char *)&tombstone_marker)
static char tombstone_marker;

struct slot {
    char *key; /* NULL: empty; TOMBSTONE: deleted */
    uint64_t hash;
    void *value;
};

struct vg_map {
    struct slot *slots;
    size_t cap; /* power of two */
    size_t count;
    size_t used; /* count + tombstones */
};

/*
 * Eight bytes a step (FNV-1a took one: ~5 instructions a byte, and the
 * state cache hashes a Resource id of ~35 bytes several times per event).
 * Each step multiplies and folds the high half down, and the end mixes
 * again, so the low bits the table indexes by depend on every byte.
 */
static uint64_t hash_str(const char *s)
{
    size_t len = strlen(s);
    const unsigned char *p = (const unsigned char *)s;
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)len;
    uint64_t w;

    while (len >= 8) {
        memcpy(&w, p, sizeof(w));
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    w = 0;
    memcpy(&w, p, len);
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

struct vg_map *vg_map_new(void)
{
    struct vg_map *m = vg_calloc(1, sizeof(*m));
    m->cap = 16;
    m->slots = vg_calloc(m->cap, sizeof(*m->slots));
    return m;
}

static void free_slots(struct vg_map *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        struct slot *s = &m->slots[i];
        if (s->key && s->key != TOMBSTONE) {
            free(s->key);
            if (free_value) {
                free_value(s->value);
            }
        }
        s->key = NULL;
        s->value = NULL;
    }
    m->count = 0;
    m->used = 0;
}

void vg_map_destroy(struct vg_map *m, void (*free_value)(void *))
{
    if (!m) {
        return;
    }
    free_slots(m, free_value);
    free(m->slots);
    free(m);
}

void vg_map_clear(struct vg_map *m, void (*free_value)(void *))
{
    free_slots(m, free_value);
}

static struct slot *find(const struct vg_map *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct slot *s = &m->slots[i];
        if (!s->key) {
            return NULL;
        }
        if (s->key != TOMBSTONE && s->hash == h && strcmp(s->key, key) == 0) {
            return s;
        }
    }
}

static void grow(struct vg_map *m)
{
    struct slot *old = m->slots;
    size_t old_cap = m->cap;
    size_t ncap = m->count * 4 > m->cap ? m->cap * 2 : m->cap;
    m->slots = vg_calloc(ncap, sizeof(*m->slots));
    m->cap = ncap;
    m->used = m->count;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key && old[i].key != TOMBSTONE) {
            size_t mask = ncap - 1;
            size_t j = old[i].hash & mask;
            while (m->slots[j].key) {
                j = (j + 1) & mask;
            }
            m->slots[j] = old[i];
        }
    }
    free(old);
}

void *vg_map_get(const struct vg_map *m, const char *key)
{
    struct slot *s = find(m, key, hash_str(key));
    return s ? s->value : NULL;
}

void *vg_map_put(struct vg_map *m, const char *key, void *value)
{
    uint64_t h = hash_str(key);
    struct slot *s = find(m, key, h);
    size_t mask;
    if (s) {
        void *prev = s->value;
        s->value = value;
        return prev;
    }
    if ((m->used + 1) * 4 > m->cap * 3) {
        grow(m);
    }
    mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        s = &m->slots[i];
        if (!s->key || s->key == TOMBSTONE) {
            if (!s->key) {
                m->used++;
            }
            s->key = vg_strdup(key);
            s->hash = h;
            s->value = value;
            m->count++;
            return NULL;
        }
    }
}

void *vg_map_remove(struct vg_map *m, const char *key)
{
    struct slot *s = find(m, key, hash_str(key));
    void *v;
    if (!s) {
        return NULL;
    }
    v = s->value;
    free(s->key);
    s->key = TOMBSTONE;
    s->value = NULL;
    m->count--;
    return v;
}

size_t vg_map_count(const struct vg_map *m)
{
    return m->count;
}

bool vg_map_next(const struct vg_map *m, size_t *iter, const char **key, void **value)
{
    while (*iter < m->cap) {
        struct slot *s = &m->slots[(*iter)++];
        if (s->key && s->key != TOMBSTONE) {
            *key = s->key;
            *value = s->value;
            return true;
        }
    }
    return false;
}
