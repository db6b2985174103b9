/*
 * How kafka.prefetch_mb is split into librdkafka's settings
 * (consumer_prefetch_derive, docs/config.md "kafka"): a sixteenth of the
 * budget for one fetch response (1 to 50 MiB), 1 MiB for the batch a
 * response may end with, the rest for the queue, and one message per 512
 * bytes of budget. Whatever the budget, the three parts add up to no more
 * than it, which is what bounds librdkafka's queued payload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "consumer_int.h"
#include "vigil/config.h"

#define MIB (1L << 20)

static void test_split_table(void **state)
{
    static const struct {
        int budget_mb;
        long fetch_max_bytes;
        long kbytes;
        long min_messages;
    } cases[] = {
        {4, 1 * MIB, 2 * 1024, 8192},     /* the smallest: the 1 MiB floor of a fetch */
        {16, 1 * MIB, 14 * 1024, 32768},  /* a sixteenth is 1 MiB */
        {48, 3 * MIB, 44 * 1024, 98304},  /* the default */
        {64, 4 * MIB, 59 * 1024, 131072}, /* the default before: 8 MiB fetches, 55 MiB queued */
        {1024, 50 * MIB, 973 * 1024, 2097152},  /* a fetch capped at librdkafka's default */
        {2048, 50 * MIB, 1997 * 1024, 4194304}, /* the largest */
    };
    int bad = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct consumer_prefetch pf;

        consumer_prefetch_derive(cases[i].budget_mb, &pf);
        if (pf.fetch_max_bytes != cases[i].fetch_max_bytes || pf.kbytes != cases[i].kbytes ||
            pf.min_messages != cases[i].min_messages) {
            fprintf(stderr,
                    "[%zu] %d MiB: fetch.max.bytes %ld (want %ld), queued.max.messages.kbytes "
                    "%ld (want %ld), queued.min.messages %ld (want %ld)\n",
                    i, cases[i].budget_mb, pf.fetch_max_bytes, cases[i].fetch_max_bytes, pf.kbytes,
                    cases[i].kbytes, pf.min_messages, cases[i].min_messages);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_default_budget(void **state)
{
    struct consumer_prefetch pf;

    (void)state;
    /* The default's bound, as docs/config.md and docs/performance.md state it. */
    assert_int_equal(VG_KAFKA_PREFETCH_MB_DEFAULT, 48);
    consumer_prefetch_derive(VG_KAFKA_PREFETCH_MB_DEFAULT, &pf);
    assert_int_equal(pf.kbytes, 44 * 1024);
    assert_int_equal(pf.fetch_max_bytes, 3 * MIB);
}

static void test_parts_within_budget(void **state)
{
    int bad = 0;

    (void)state;
    for (int mb = 4; mb <= 2048; mb++) {
        struct consumer_prefetch pf;
        long budget = (long)mb * MIB;

        consumer_prefetch_derive(mb, &pf);
        /* queue + one response + the batch it may end with */
        if (pf.kbytes * 1024 + pf.fetch_max_bytes + MIB > budget ||
            pf.fetch_max_bytes > budget / 16 + MIB || pf.min_messages != budget / 512) {
            fprintf(stderr, "%d MiB: kbytes %ld, fetch.max.bytes %ld, min messages %ld\n", mb,
                    pf.kbytes, pf.fetch_max_bytes, pf.min_messages);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_table),
        cmocka_unit_test(test_default_budget),
        cmocka_unit_test(test_parts_within_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
