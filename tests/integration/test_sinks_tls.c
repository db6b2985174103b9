/*
 * TLS for webhook sinks: TLS verification is on by default and
 * `ca_file` trusts a private CA. A real TLS endpoint on 127.0.0.1: socat
 * terminates TLS with a certificate the test issues from its own CA
 * (openssl CLI) and forwards to the recording HTTP receiver. A sink with
 * ca_file delivers; the same endpoint without it is refused (certificate
 * not trusted) and the page lands in the dead-letter stream.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "env.h"
#include "outbox.h"
#include "page_body.h"
#include "support.h"
#include "vigil/mem.h"

static struct vg_test_env E;
static struct vg_http_receiver *R; /* E.rcv, behind the TLS endpoint */
static pid_t socat_pid;
static int tls_port;

static bool port_open(void *arg)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok;
    (void)arg;
    a.sin_port = htons((uint16_t)tls_port);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static int setup(void **state)
{
    char *cmd;
    char *listen;
    char *target;
    char *cert;
    char *key;
    (void)state;
    vg_test_no_proxy();
    if (vg_test_env_start(&E, "sinks-tls", NULL) != 0) {
        return -1;
    }
    R = E.rcv;
    /* A private CA and a server certificate for IP 127.0.0.1, signed by it. */
    cmd = vg_asprintf(
        "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=vigil-test-ca 2>/dev/null && openssl req -newkey rsa:2048 -nodes -keyout "
        "srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null && printf "
        "'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && openssl x509 -req -in srv.csr -CA ca.pem "
        "-CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf 2>/dev/null",
        E.dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl failed: %s\n", cmd);
        vg_free(cmd);
        return -1;
    }
    vg_free(cmd);
    tls_port = vg_test_free_port();
    cert = vg_asprintf("%s/srv.pem", E.dir);
    key = vg_asprintf("%s/srv.key", E.dir);
    listen = vg_asprintf("OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,cert=%s,key=%s,verify=0",
                         tls_port, cert, key);
    target = vg_asprintf("TCP:127.0.0.1:%d", vg_http_receiver_port(R));
    {
        char *argv[] = {(char *)"/usr/bin/socat", listen, target, NULL};
        char *log = vg_asprintf("%s/socat.log", E.dir);
        socat_pid = vg_test_spawn(argv, NULL, log);
        vg_free(log);
    }
    vg_free(cert);
    vg_free(key);
    vg_free(listen);
    vg_free(target);
    if (socat_pid <= 0 || !vg_test_wait_for(port_open, NULL, 10000)) {
        fprintf(stderr, "socat did not listen on 127.0.0.1:%d (is socat installed?)\n", tls_port);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    int rc;

    (void)state;
    rc = vg_test_env_stop(&E);
    if (socat_pid > 0) {
        vg_test_stop(socat_pid, SIGTERM, 5000);
    }
    R = NULL;
    return rc;
}

static void test_ca_file_trusted_default_verifies(void **state)
{
    char *sinks;
    char *body;
    char *sid;
    char *out = NULL;
    char *err = NULL;
    (void)state;

    sinks = vg_asprintf("  trusted: {type: webhook, url: \"https://127.0.0.1:%d/hook\", "
                        "ca_file: \"%s/ca.pem\", max_attempts: 3}\n"
                        "  untrusted: {type: webhook, url: \"https://127.0.0.1:%d/other\", "
                        "max_attempts: 1}\n",
                        tls_port, E.dir, tls_port);
    assert_true(vg_test_env_spawn_with(&E, "monitors: []\n", sinks));
    body = vg_test_page_body("aaaaaaaaaaaaaaa1", "firing", "tls-a");
    sid = vg_test_outbox_put(&E, "aaaaaaaaaaaaaaa1-1", "trusted", "oncall", body);
    assert_non_null(sid);
    vg_free(sid);
    vg_free(body);
    body = vg_test_page_body("aaaaaaaaaaaaaaa2", "firing", "tls-b");
    sid = vg_test_outbox_put(&E, "aaaaaaaaaaaaaaa2-1", "untrusted", "oncall", body);
    assert_non_null(sid);
    vg_free(sid);
    vg_free(body);
    if (!vg_test_outbox_wait_drained(&E, 30000) || !vg_test_env_wait_requests(&E, 1, 10000)) {
        fail_msg("pages were not delivered or dead-lettered");
    }
    /* Over TLS, through the private CA: delivered once. Without ca_file: never reached. */
    assert_int_equal(vg_test_requests_with_key(R, "aaaaaaaaaaaaaaa1-1"), 1);
    assert_int_equal(vg_test_requests_with_key(R, "aaaaaaaaaaaaaaa2-1"), 0);
    assert_int_equal(vg_http_receiver_count(R), 1);
    assert_int_equal(vg_test_env_run_cli(&E, &out, &err, "dlq", "list", NULL), 0);
    if (!strstr(out, "aaaaaaaaaaaaaaa2-1")) {
        fprintf(stderr, "dlq list:\n%s\n%s\n", out, err);
    }
    assert_non_null(strstr(out, "aaaaaaaaaaaaaaa2-1"));
    assert_null(strstr(out, "aaaaaaaaaaaaaaa1-1"));
    vg_free(out);
    vg_free(err);
    vg_free(sinks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ca_file_trusted_default_verifies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
