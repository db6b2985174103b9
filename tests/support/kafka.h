/*
 * The Kafka side of the integration tests that drive consumer/ directly
 * (no vigil): librdkafka's mock cluster as a cmocka group fixture, a topic
 * and group named after the test, numbered messages produced to it, a
 * consumer with the short group timeouts the mock needs, and a ledger
 * that a handler records every delivered message in (order per partition,
 * each number once, errors printed).
 */
#ifndef VIGIL_TEST_KAFKA_H
#define VIGIL_TEST_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/consumer.h"

/* cmocka group setup/teardown: *state is a one-broker struct vg_mock_kafka. */
int vg_test_kafka_setup(void **state);
int vg_test_kafka_teardown(void **state);

struct vg_test_kafka {
    struct vg_mock_kafka *mk;
    const char *bootstraps;
    char topic[96]; /* <name>-<pid> */
    char group[96]; /* <name>-g-<pid> */
    int partitions;
};

/* Fill `tk` and create its topic with `partitions` partitions. false (printed) on failure. */
bool vg_test_kafka_topic(struct vg_test_kafka *tk, struct vg_mock_kafka *mk, const char *name,
                         int partitions);

/* How numbered messages are spread over the partitions. */
enum vg_test_kafka_spread {
    VG_TEST_KAFKA_KEYED,      /* key "k<i % 101>": the partitioner's choice */
    VG_TEST_KAFKA_ROUND_ROBIN /* no key, partition i % partitions */
};

/* Produce messages whose payloads are the numbers from..to-1, flushed. false (printed) on failure.
 */
bool vg_test_kafka_produce(const struct vg_test_kafka *tk, int from, int to,
                           enum vg_test_kafka_spread spread);
/* The topic's end offset summed over partitions; -1 (printed) on failure. */
int64_t vg_test_kafka_end(const struct vg_test_kafka *tk);

/*
 * Properties (VG_TEST_KAFKA_N_STREAM_PROPS of them, for vg_producer_new)
 * of a producer that streams to the mock cluster while its requests fail
 * (brokers down, leaders moving): one produce request in flight per
 * broker, so that librdkafka never reports a failed batch delivered
 * because a later one succeeded, which the mock makes a lost batch
 * (include/vigil/consumer.h, the notes on the mock). A batch written
 * whose answer was lost is still in the topic twice.
 */
#define VG_TEST_KAFKA_N_STREAM_PROPS 1
extern const struct vg_kv vg_test_kafka_stream_props[VG_TEST_KAFKA_N_STREAM_PROPS];

/*
 * A consumer of tk's topic in tk's group with session.timeout.ms 6000 and
 * heartbeat.interval.ms 500 (the mock coordinator holds each rejoin for a
 * session timeout), plus `props`: NULL-terminated key, value pairs (may be
 * NULL). NULL (printed) on failure.
 */
struct vg_consumer *vg_test_kafka_consumer(const struct vg_test_kafka *tk, int batch_size,
                                           int batch_ms, const char *const *props);

/* Stops a consumer from its idle callback once a deadline has passed. */
struct vg_test_deadline {
    struct vg_consumer *c;
    int64_t at_ms;
    bool passed;
};

/* Arm for `timeout_ms` (scaled) from now. */
void vg_test_deadline_arm(struct vg_test_deadline *d, struct vg_consumer *c, int timeout_ms);
/* From an idle callback: past the deadline, mark it and stop the consumer. Returns d->passed. */
bool vg_test_deadline_check(struct vg_test_deadline *d);

#define VG_TEST_MAX_PARTS 16

/* What a handler has been handed, message by message. */
struct vg_test_ledger {
    const char *topic; /* NULL: any topic */
    int partitions;
    size_t n_msgs;   /* payload numbers are 0..n_msgs-1 */
    bool unordered;  /* several members share the ledger: no per-partition order check */
    bool repeats_ok; /* a number seen again is counted in `repeated`, not an error */
    int64_t start[VG_TEST_MAX_PARTS]; /* expected first offset per partition (0) */
    int64_t next[VG_TEST_MAX_PARTS];  /* after the last one recorded */
    bool any[VG_TEST_MAX_PARTS];
    unsigned char *got; /* times each number was recorded */
    size_t total;       /* messages recorded */
    size_t distinct;    /* numbers recorded at least once */
    size_t repeated;    /* numbers recorded again (repeats_ok) */
    int errors;         /* the first few are printed */
};

void vg_test_ledger_init(struct vg_test_ledger *l, const char *topic, int partitions,
                         size_t n_msgs);
void vg_test_ledger_fini(struct vg_test_ledger *l);
/* Count an error; print the first ten. */
void vg_test_ledger_error(struct vg_test_ledger *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Record one delivered message: its topic and partition are the ledger's,
 * its offset follows the partition's previous one (or start[]), its payload
 * is a number below n_msgs seen for the first time (unless repeats_ok).
 * Returns the number, or -1 when the message was wrong (an error counted).
 */
int64_t vg_test_ledger_record(struct vg_test_ledger *l, const struct vg_kafka_msg *m);

#endif
