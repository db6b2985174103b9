/*
 * A mock broker taken down and up (vg_mock_kafka_broker_set_down) while a
 * forked child of the test process is alive: the mock re-binds the downed
 * broker's port, which librdkafka 2.0.2 turns into an abort when a child
 * still holds the old listening socket. Also: the partitions the broker
 * led move to the brokers still up, and come back once it is up again; and
 * a child started later does not keep the mock's accepted connections
 * (which would stay open however often their broker went down).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "support.h"
#include "vigil/consumer.h"

#define N_BROKERS 3
#define N_PARTS 6 /* two partitions led by each broker */

/* n messages on every partition, flushed within 15 s (scaled). */
static vg_err_t produce_all(struct vg_producer *p, const char *topic, int n, char *errstr,
                            size_t errstr_size)
{
    for (int i = 0; i < n * N_PARTS; i++) {
        vg_err_t err =
            vg_producer_send(p, topic, i % N_PARTS, NULL, 0, "v", 1, errstr, errstr_size);

        if (err != VG_OK) {
            return err;
        }
    }
    return vg_producer_flush(p, vg_test_timeout(15000), errstr, errstr_size);
}

static void test_down_up_with_forked_child(void **state)
{
    struct vg_mock_kafka *mk = NULL;
    struct vg_producer *p = NULL;
    char errstr[512] = "";
    char topic[64];
    int gate[2];
    pid_t child;
    int status = -1;
    int64_t end = -1;

    (void)state;
    snprintf(topic, sizeof(topic), "mock-down-%d", (int)getpid());
    assert_int_equal(vg_mock_kafka_start(&mk, N_BROKERS, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, N_PARTS, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(
        vg_producer_new(&p, vg_mock_kafka_bootstraps(mk), NULL, 0, errstr, sizeof(errstr)), VG_OK);
    /* connections to every broker */
    assert_int_equal(produce_all(p, topic, 10, errstr, sizeof(errstr)), VG_OK);

    /*
     * A child that stays between fork and exec for as long as the broker is
     * down: before the fork guard it held the listening sockets, and the
     * mock's re-bind aborted this process.
     */
    assert_int_equal(pipe(gate), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        char c;

        close(gate[1]);
        _exit(read(gate[0], &c, 1) == 0 ? 0 : 1);
    }
    close(gate[0]);

    vg_mock_kafka_broker_set_down(mk, 1, true);
    /* Broker 1 led partitions 0 and 3: delivered anyway, by the brokers that took them over. */
    assert_int_equal(produce_all(p, topic, 10, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_kafka_topic_end(vg_mock_kafka_bootstraps(mk), topic, vg_test_timeout(10000),
                                        &end, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(end, 2 * 10 * N_PARTS);
    vg_mock_kafka_broker_set_down(mk, 1, true); /* again: nothing changes */

    vg_mock_kafka_broker_set_down(mk, 1, false);
    assert_int_equal(produce_all(p, topic, 10, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_kafka_topic_end(vg_mock_kafka_bootstraps(mk), topic, vg_test_timeout(10000),
                                        &end, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(end, 3 * 10 * N_PARTS);

    /* the child was there all along, and leaves cleanly */
    close(gate[1]);
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    vg_producer_destroy(p);
    vg_mock_kafka_stop(mk);
}

/* Is `port` one of the brokers' in "127.0.0.1:p1,127.0.0.1:p2,..."? */
static bool broker_port(const char *bootstraps, long port)
{
    for (const char *c = strchr(bootstraps, ':'); c; c = strchr(c + 1, ':')) {
        if (strtol(c + 1, NULL, 10) == port) {
            return true;
        }
    }
    return false;
}

/*
 * The "socket:[inode]" names of this process's sockets on a broker's
 * port (the mock's listeners and accepted connections). Returns how many.
 */
static size_t mock_sockets(const char *bootstraps, char names[][64], size_t max)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    size_t n = 0;

    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL && n < max) {
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        char path[300];
        ssize_t k;
        char *end;
        long fd;

        errno = 0;
        fd = strtol(de->d_name, &end, 10);
        if (errno || end == de->d_name || *end ||
            getsockname((int)fd, (struct sockaddr *)&sin, &len) != 0 || sin.sin_family != AF_INET ||
            !broker_port(bootstraps, ntohs(sin.sin_port))) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
        k = readlink(path, names[n], 63);
        if (k > 0) {
            names[n++][k] = '\0';
        }
    }
    closedir(dir);
    return n;
}

static bool exec_done(void *arg)
{
    char path[64];
    char exe[256];
    ssize_t k;

    snprintf(path, sizeof(path), "/proc/%d/exe", (int)*(pid_t *)arg);
    k = readlink(path, exe, sizeof(exe) - 1);
    if (k <= 0) {
        return false;
    }
    exe[k] = '\0';
    return strstr(exe, "sleep") != NULL;
}

static void test_child_keeps_no_connections(void **state)
{
    struct vg_mock_kafka *mk = NULL;
    struct vg_producer *p = NULL;
    char errstr[512] = "";
    char topic[64];
    char names[64][64];
    size_t n;
    char *argv[] = {(char *)"/bin/sleep", (char *)"30", NULL};
    pid_t child;
    char dir_path[32];
    DIR *dir;
    struct dirent *de;
    int kept = 0;

    (void)state;
    snprintf(topic, sizeof(topic), "mock-child-%d", (int)getpid());
    assert_int_equal(vg_mock_kafka_start(&mk, N_BROKERS, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, N_PARTS, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(
        vg_producer_new(&p, vg_mock_kafka_bootstraps(mk), NULL, 0, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(produce_all(p, topic, 1, errstr, sizeof(errstr)), VG_OK);
    n = mock_sockets(vg_mock_kafka_bootstraps(mk), names, 64);
    assert_true(n > N_BROKERS); /* the listeners and at least one accepted connection */

    child = vg_test_spawn(argv, NULL, NULL);
    assert_true(child > 0);
    assert_true(vg_test_wait_for(exec_done, &child, 10000));
    snprintf(dir_path, sizeof(dir_path), "/proc/%d/fd", (int)child);
    dir = opendir(dir_path);
    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL) {
        char path[300];
        char name[64];
        ssize_t k;

        snprintf(path, sizeof(path), "%s/%s", dir_path, de->d_name);
        k = readlink(path, name, sizeof(name) - 1);
        if (k <= 0) {
            continue;
        }
        name[k] = '\0';
        for (size_t i = 0; i < n; i++) {
            if (strcmp(name, names[i]) == 0) {
                fprintf(stderr, "child fd %s is the mock's %s\n", de->d_name, name);
                kept++;
            }
        }
    }
    closedir(dir);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_int_equal(kept, 0);

    vg_producer_destroy(p);
    vg_mock_kafka_stop(mk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_down_up_with_forked_child),
        cmocka_unit_test(test_child_keeps_no_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
