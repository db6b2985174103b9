/*
 * The benchmarks' webhook receiver (bench_receiver.h): it parses just
 * enough HTTP/1.1 (head, Content-Length) to answer each request with 200.
 */
#include "bench_receiver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vigil/mem.h"

#define BUF_BYTES (64 * 1024) /* grows to fit a request (grouped pages can be megabytes) */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static vg_bench_receiver_fn on_request;
static void *on_request_arg;
static long n_requests;
static int listen_fd = -1;

int64_t vg_bench_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void vg_bench_sleep_us(int64_t us)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000), .tv_nsec = (long)(us % 1000000) * 1000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

long vg_bench_receiver_count(void)
{
    long n;

    pthread_mutex_lock(&mu);
    n = n_requests;
    pthread_mutex_unlock(&mu);
    return n;
}

/* Content-Length from a head (case as libcurl sends it), 0 when absent. */
static size_t content_length(const char *head, size_t head_len)
{
    static const char name[] = "\r\nContent-Length: ";

    for (size_t i = 0; i + sizeof(name) - 1 < head_len; i++) {
        if (memcmp(head + i, name, sizeof(name) - 1) == 0) {
            return (size_t)strtoul(head + i + sizeof(name) - 1, NULL, 10);
        }
    }
    return 0;
}

static void *conn_main(void *arg)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    int fd = (int)(intptr_t)arg;
    size_t cap = BUF_BYTES;
    char *buf = vg_malloc(cap);
    size_t len = 0;

    for (;;) {
        ssize_t r;

        if (cap - len < 4096) {
            cap *= 2;
            buf = vg_realloc(buf, cap);
        }
        r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
        buf[len] = '\0';
        for (;;) {
            char *end = strstr(buf, "\r\n\r\n");
            size_t head_len;
            size_t total;

            if (!end) {
                break;
            }
            head_len = (size_t)(end - buf);
            total = head_len + 4 + content_length(buf, head_len);
            if (len < total) {
                break;
            }
            pthread_mutex_lock(&mu);
            n_requests++;
            if (on_request) {
                on_request(on_request_arg, buf, head_len, end + 4, total - head_len - 4,
                           vg_bench_mono_us());
            }
            pthread_mutex_unlock(&mu);
            if (send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL) < 0) {
                goto out;
            }
            memmove(buf, buf + total, len - total);
            len -= total;
            buf[len] = '\0';
        }
    }
out:
    close(fd);
    vg_free(buf);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_t t;
        int fd = accept(listen_fd, NULL, NULL);

        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            return NULL;
        }
        if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) == 0) {
            pthread_detach(t);
        } else {
            close(fd);
        }
    }
}

int vg_bench_receiver_start(vg_bench_receiver_fn fn, void *arg)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    pthread_t t;

    on_request = fn;
    on_request_arg = arg;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(listen_fd, 128) != 0 || getsockname(listen_fd, (struct sockaddr *)&sa, &sl) != 0 ||
        pthread_create(&t, NULL, accept_main, NULL) != 0) {
        return -1;
    }
    pthread_detach(t);
    return ntohs(sa.sin_port);
}
