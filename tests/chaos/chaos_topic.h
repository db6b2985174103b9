/*
 * The chaos suite's event topic read back, every partition from its first
 * offset to its end, with a plain librdkafka consumer (no group): what
 * the topic really holds once the generator has flushed, so that the
 * applied offsets can be compared with each partition's end offset and the
 * messages with what was produced.
 */
#ifndef VIGIL_CHAOS_TOPIC_H
#define VIGIL_CHAOS_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAOS_TOPIC_MAX_PARTITIONS 64

struct chaos_msg {
    int64_t offset;
    char *key;     /* NUL-terminated copy; "" when the message has none */
    char *payload; /* NUL-terminated copy */
};

struct chaos_partition {
    int64_t low;  /* the first offset the broker still holds (0 unless it dropped old data) */
    int64_t high; /* the end offset: the next message would get it */
    struct chaos_msg *msgs;
    size_t n;
    size_t cap;
};

struct chaos_topic {
    int partitions;
    struct chaos_partition part[CHAOS_TOPIC_MAX_PARTITIONS];
};

/*
 * Read all of `topic` (its `partitions` partitions) on `bootstraps` into
 * `out`: each partition's watermarks and every message between them, in
 * offset order. False (printed) on an error, or when some partition was
 * not read to its end within timeout_ms; `out` then holds what was read.
 * Free with chaos_topic_fini.
 */
bool chaos_topic_read(const char *bootstraps, const char *topic, int partitions, int timeout_ms,
                      struct chaos_topic *out);
void chaos_topic_fini(struct chaos_topic *t);

#endif
