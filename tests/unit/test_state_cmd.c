/*
 * The RESP argument writer of state/ (state_int.h): every argument kind
 * (string, integer, name/value pair, two pieces, printf-style) as the exact bytes a
 * command carries, checked against an independent rendering with
 * snprintf, over integer edges (0, powers of ten and one below, both
 * ends of int64) and lengths around one, two and three digits. No sockets.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "state_int.h"

/* The arguments written so far: the bytes after the header's room. */
static const char *args_of(const struct state_cmd *c, size_t *len)
{
    *len = c->len - STATE_CMD_HEAD;
    return c->buf + STATE_CMD_HEAD;
}

/* "$<len>\r\n<s>\r\n" appended to want. */
static void want_arg(struct vg_buf *want, const char *s, size_t len)
{
    vg_buf_printf(want, "$%zu\r\n", len);
    vg_buf_append(want, s, len);
    vg_buf_puts(want, "\r\n");
}

static void assert_args(const struct state_cmd *c, const struct vg_buf *want, size_t n_args)
{
    size_t len;
    const char *got = args_of(c, &len);

    assert_int_equal(c->n, n_args);
    if (len != want->len || memcmp(got, want->data, len) != 0) {
        fail_msg("RESP differs:\n got  %.*s\n want %.*s", (int)len, got, (int)want->len,
                 want->data);
    }
}

static void test_integers(void **state)
{
    struct state_cmd c = {0};
    struct vg_buf want = {0};
    int64_t values[128];
    size_t n = 0;
    uint64_t p10 = 1;

    (void)state;

    values[n++] = 0;
    values[n++] = INT64_MAX;
    values[n++] = INT64_MIN;
    values[n++] = INT64_MIN + 1;
    values[n++] = 1764896400123; /* a time in ms: the usual case */
    for (int k = 1; k <= 18; k++) {
        p10 *= 10;
        values[n++] = (int64_t)p10;
        values[n++] = (int64_t)p10 - 1;
        values[n++] = (int64_t)p10 + 1;
        values[n++] = -(int64_t)p10;
        values[n++] = 1 - (int64_t)p10;
    }
    for (size_t i = 0; i < n; i++) {
        char tmp[32];
        int len = snprintf(tmp, sizeof(tmp), "%" PRId64, values[i]);

        state_cmd_i64(&c, values[i]);
        want_arg(&want, tmp, (size_t)len);
        state_cmd_field_i64(&c, "updated_at", values[i]);
        want_arg(&want, "updated_at", strlen("updated_at"));
        want_arg(&want, tmp, (size_t)len);
    }
    assert_args(&c, &want, 3 * n);
    vg_buf_fini(&want);
    state_cmd_fini(&c);
}

static void test_strings(void **state)
{
    struct state_cmd c = {0};
    struct vg_buf want = {0};
    char big[1200];
    size_t lens[] = {0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, sizeof(big) - 1};
    size_t n_args = 0;

    (void)state;

    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (char)('a' + i % 26);
    }
    big[sizeof(big) - 1] = '\0';
    for (size_t i = 0; i < VG_ARRAY_LEN(lens); i++) {
        char saved = big[lens[i]];

        big[lens[i]] = '\0';
        state_cmd_str(&c, big);
        want_arg(&want, big, lens[i]);
        state_cmd_arg(&c, big, lens[i]);
        want_arg(&want, big, lens[i]);
        state_cmd_field(&c, "message", big);
        want_arg(&want, "message", 7);
        want_arg(&want, big, lens[i]);
        state_cmd_arg2(&c, "inc:", 4, big, lens[i]);
        vg_buf_printf(&want, "$%zu\r\ninc:", lens[i] + 4);
        vg_buf_append(&want, big, lens[i]);
        vg_buf_puts(&want, "\r\n");
        n_args += 5;
        big[lens[i]] = saved;
    }
    /* NULL is the empty string, as a value and as an argument */
    state_cmd_str(&c, NULL);
    want_arg(&want, "", 0);
    state_cmd_field(&c, "owner", NULL);
    want_arg(&want, "owner", 5);
    want_arg(&want, "", 0);
    n_args += 3;
    assert_args(&c, &want, n_args);

    /* reset keeps the buffer, and the next command starts clean */
    state_cmd_reset(&c);
    vg_buf_reset(&want);
    state_cmd_str(&c, "HSET");
    want_arg(&want, "HSET", 4);
    assert_args(&c, &want, 1);
    vg_buf_fini(&want);
    state_cmd_fini(&c);
}

/* state_cmd_fmt as snprintf would have it, for the formats it writes itself and the others. */
static void test_formats(void **state)
{
    struct state_cmd c = {0};
    struct vg_buf want = {0};
    char tmp[2048];
    char long_s[600];
    int len;
    size_t n_args = 0;

    (void)state;
    memset(long_s, 'x', sizeof(long_s) - 1);
    long_s[sizeof(long_s) - 1] = '\0';
#define FMT_CASE(...)                                                                              \
    do {                                                                                           \
        state_cmd_fmt(&c, __VA_ARGS__);                                                            \
        len = snprintf(tmp, sizeof(tmp), __VA_ARGS__);                                             \
        want_arg(&want, tmp, (size_t)len);                                                         \
        n_args++;                                                                                  \
    } while (0)
    FMT_CASE("%s:idx:name", "vigil");
    FMT_CASE("%s/%d", "events", 0);
    FMT_CASE("%s/%d", "events", 7);
    FMT_CASE("%s/%d", "events", 191);
    FMT_CASE("%s/%d", "t", INT32_MAX);
    FMT_CASE("%s/%d", "t", -1);
    FMT_CASE("%s/%d", "t", INT32_MIN);
    FMT_CASE("%s:pod:%s/%s", "vigil", "ns-a", "pod-1");
    FMT_CASE("%s:outbox:dead", "");
    FMT_CASE("%s", "");
    FMT_CASE("plain text");
    FMT_CASE("%s:%s", long_s, long_s); /* longer than the fallback's stack buffer */
    /* left to vsnprintf */
    FMT_CASE("%5d|%-3s|", 42, "a");
    FMT_CASE("100%% %s", "sure");
    FMT_CASE("%s/%lld", "t", (long long)INT64_MIN);
    FMT_CASE("%s%s%s%s%s%s%s%s%s", "1", "2", "3", "4", "5", "6", "7", "8", "9");
#undef FMT_CASE
    assert_args(&c, &want, n_args);
    vg_buf_fini(&want);
    state_cmd_fini(&c);
}

/*
 * A pair whose value is pieces joined by STATE_PIECE_SEP (a history entry's
 * `s`): integers at the edges (negative ones: no partition is -1), an empty
 * string piece, and a string long enough for a three-digit length.
 */
static void test_pieces(void **state)
{
    struct state_cmd c = {0};
    struct vg_buf want = {0};
    struct vg_buf value = {0};
    char topic[300];
    const int64_t ints[] = {0, -1, 9, 10, INT64_MAX, INT64_MIN, 1764896400123};

    (void)state;
    memset(topic, 'k', sizeof(topic) - 1);
    topic[sizeof(topic) - 1] = '\0';
    for (size_t i = 0; i < VG_ARRAY_LEN(ints); i++) {
        const char *strs[] = {"", "t", topic};

        for (size_t j = 0; j < VG_ARRAY_LEN(strs); j++) {
            const struct state_piece p[4] = {
                {NULL, 0, ints[i]},
                {strs[j], strlen(strs[j]), 0},
                {NULL, 0, ints[i] / -2},
                {strs[j], strlen(strs[j]), 0},
            };

            state_cmd_field_pieces(&c, "s", 1, p, 4);
            vg_buf_reset(&value);
            vg_buf_printf(&value, "%" PRId64 "\x1f%s\x1f%" PRId64 "\x1f%s", ints[i], strs[j],
                          ints[i] / -2, strs[j]);
            want_arg(&want, "s", 1);
            want_arg(&want, value.data, value.len);
        }
    }
    /* one piece: no separator */
    state_cmd_field_pieces(&c, "t", 1, (const struct state_piece[]){{"runtime", 7, 0}}, 1);
    want_arg(&want, "t", 1);
    want_arg(&want, "runtime", 7);
    assert_args(&c, &want, 2 * (VG_ARRAY_LEN(ints) * 3 + 1));
    state_cmd_fini(&c);
    vg_buf_fini(&want);
    vg_buf_fini(&value);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
