/*
 * The redis URL parser of state/ (state_int.h): redis:// and unix://
 * forms, auth, db, malformed ones, and that errors never show a password.
 * No sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "state_int.h"

static const struct {
    const char *url;
    bool is_unix;
    const char *host;
    int port;
    const char *path;
    const char *user;
    const char *pass;
    int db;
} good[] = {
    {"redis://localhost", false, "localhost", 6379, NULL, NULL, NULL, 0},
    {"redis://127.0.0.1:6380", false, "127.0.0.1", 6380, NULL, NULL, NULL, 0},
    {"redis://127.0.0.1:6380/", false, "127.0.0.1", 6380, NULL, NULL, NULL, 0},
    {"redis://redis.internal:7000/5", false, "redis.internal", 7000, NULL, NULL, NULL, 5},
    {"redis://h/15", false, "h", 6379, NULL, NULL, NULL, 15},
    {"redis://:s3cret@h:1", false, "h", 1, NULL, NULL, "s3cret", 0},
    {"redis://vigil:s3cret@h:65535/2", false, "h", 65535, NULL, "vigil", "s3cret", 2},
    {"redis://u:p%40ss%3Aw%2Fd@h", false, "h", 6379, NULL, "u", "p@ss:w/d", 0},
    {"redis://u:a@b@h", false, "h", 6379, NULL, "u", "a@b", 0},
    {"redis://[::1]:6390/1", false, "::1", 6390, NULL, NULL, NULL, 1},
    {"redis://[::1]", false, "::1", 6379, NULL, NULL, NULL, 0},
    {"unix:///run/redis.sock", true, NULL, 0, "/run/redis.sock", NULL, NULL, 0},
    {"unix:///var/lib/vigil/redis.sock?db=4", true, NULL, 0, "/var/lib/vigil/redis.sock", NULL,
     NULL, 4},
    {"unix:///r.sock?password=x%26y", true, NULL, 0, "/r.sock", NULL, "x&y", 0},
    {"unix:///r.sock?db=1&user=me&password=pw", true, NULL, 0, "/r.sock", "me", "pw", 1},
};

static const char *const bad[] = {
    "",
    "localhost:6379",
    "http://localhost",
    "rediss://h:6379",
    "redis://",
    "redis://:6379",
    "redis://h:",
    "redis://h:0",
    "redis://h:65536",
    "redis://h:12ab",
    "redis://h:-1",
    "redis://h/x",
    "redis://h/-1",
    "redis://h/1/2",
    "redis://h?db=1",
    "redis://user@h",
    "redis://u:@h",
    "redis://u:%zz@h",
    "redis://u:%4@h",
    "redis://u:%00@h",
    "redis://[::1",
    "redis://[]:1",
    "redis://[::1]x",
    "unix://",
    "unix:///",
    "unix://relative.sock",
    "unix:///r.sock?db=",
    "unix:///r.sock?db=x",
    "unix:///r.sock?timeout=1",
    "unix:///r.sock?user=me",
    "unix:///aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
};

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void test_good(void **state)
{
    int failures = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(good); i++) {
        struct state_url u;
        char errstr[256] = "";
        vg_err_t err = state_url_parse(good[i].url, &u, errstr, sizeof(errstr));

        if (err != VG_OK) {
            fprintf(stderr, "good[%zu] %s: %s\n", i, good[i].url, errstr);
            failures++;
            continue;
        }
        if (u.is_unix != good[i].is_unix || !str_eq(u.host, good[i].host) ||
            (!u.is_unix && u.port != good[i].port) || !str_eq(u.path, good[i].path) ||
            !str_eq(u.user, good[i].user) || !str_eq(u.pass, good[i].pass) || u.db != good[i].db) {
            fprintf(stderr,
                    "good[%zu] %s: got unix=%d host=%s port=%d path=%s user=%s pass=%s db=%d\n", i,
                    good[i].url, u.is_unix, u.host ? u.host : "-", u.port, u.path ? u.path : "-",
                    u.user ? u.user : "-", u.pass ? u.pass : "-", u.db);
            failures++;
        }
        state_url_fini(&u);
    }
    assert_int_equal(failures, 0);
}

static void test_bad(void **state)
{
    int failures = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(bad); i++) {
        struct state_url u;
        char errstr[256] = "";
        vg_err_t err = state_url_parse(bad[i], &u, errstr, sizeof(errstr));

        if (err != VG_ERR_INVALID) {
            fprintf(stderr, "bad[%zu] %s: accepted (err %d)\n", i, bad[i], (int)err);
            failures++;
            if (err == VG_OK) {
                state_url_fini(&u);
            }
            continue;
        }
        if (errstr[0] == '\0' || u.host || u.path || u.user || u.pass) {
            fprintf(stderr, "bad[%zu] %s: no message or leftovers: %s\n", i, bad[i], errstr);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_error_redacts_password(void **state)
{
    struct state_url u;
    char errstr[256] = "";

    (void)state;
    assert_int_equal(state_url_parse("redis://u:hunter2@h:99999", &u, errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_null(strstr(errstr, "hunter2"));
    assert_non_null(strstr(errstr, "bad port"));
    assert_int_equal(
        state_url_parse("unix:///r.sock?password=hunter2&x=1", &u, errstr, sizeof(errstr)),
        VG_ERR_INVALID);
    assert_null(strstr(errstr, "hunter2"));
}

static void test_error_class(void **state)
{
    static const struct {
        const char *msg;
        vg_err_t want;
    } cases[] = {
        {"LOADING Redis is loading the dataset in memory", VG_ERR_BACKEND},
        {"MASTERDOWN Link with MASTER is down", VG_ERR_BACKEND},
        {"BUSY Redis is busy running a script", VG_ERR_BACKEND},
        {"READONLY You can't write against a read only replica.", VG_ERR_BACKEND},
        {"OOM command not allowed when used memory > 'maxmemory'.", VG_ERR_BACKEND},
        {"EXECABORT Transaction discarded because of previous errors.", VG_ERR_BACKEND},
        {"BUSYGROUP Consumer Group name already exists", VG_ERR_INVALID},
        {"NOAUTH Authentication required.", VG_ERR_INVALID},
        {"WRONGPASS invalid username-password pair", VG_ERR_INVALID},
        {"WRONGTYPE Operation against a key holding the wrong kind of value", VG_ERR_INVALID},
        {"ERR unknown command", VG_ERR_INVALID},
        {"LOADING", VG_ERR_BACKEND},
        {"MOVED 3999 127.0.0.1:6381", VG_ERR_BACKEND},
        {"ASK 3999 127.0.0.1:6381", VG_ERR_BACKEND},
    };
    int failures = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        vg_err_t got = state_error_class(cases[i].msg, strlen(cases[i].msg));

        if (got != cases[i].want) {
            fprintf(stderr, "case %zu \"%s\": want %d got %d\n", i, cases[i].msg,
                    (int)cases[i].want, (int)got);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_error_redacts_password),
        cmocka_unit_test(test_error_class),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
