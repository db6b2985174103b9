/*
 * A tiny webhook receiver for the benchmarks: HTTP/1.1 keep-alive on
 * 127.0.0.1, one thread per connection, answers 200 at once and hands each
 * request's head and body to a callback with its arrival time. One per
 * process; it lives until the process exits.
 */
#ifndef VIGIL_BENCH_RECEIVER_H
#define VIGIL_BENCH_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

/* Called for each request, serialized by the receiver's lock. */
typedef void (*vg_bench_receiver_fn)(void *arg, const char *head, size_t head_len, const char *body,
                                     size_t body_len, int64_t arrived_us);

/* Start listening on 127.0.0.1:0; returns the port, or -1. `fn` may be NULL. */
int vg_bench_receiver_start(vg_bench_receiver_fn fn, void *arg);
/* Requests received so far. */
long vg_bench_receiver_count(void);
/* CLOCK_MONOTONIC in microseconds (system-wide: comparable across processes). */
int64_t vg_bench_mono_us(void);
void vg_bench_sleep_us(int64_t us);

#endif
