/*
 * The listening socket and wake-up pipe of the in-process test servers
 * (listener.h). No threads here: each server runs its own accept loop.
 */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);

    if (flags >= 0) {
        (void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool vg_test_listener_open(struct vg_test_listener *l)
{
    struct sockaddr_in sa = {0};
    socklen_t sa_len = sizeof(sa);

    l->fd = -1;
    l->port = 0;
    if (pipe(l->wake) != 0) {
        l->wake[0] = l->wake[1] = -1;
        return false;
    }
    set_cloexec(l->wake[0]);
    set_cloexec(l->wake[1]);
    l->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (l->fd < 0) {
        goto fail;
    }
    set_cloexec(l->fd);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l->fd, 64) != 0 ||
        getsockname(l->fd, (struct sockaddr *)&sa, &sa_len) != 0) {
        goto fail;
    }
    l->port = ntohs(sa.sin_port);
    return true;

fail:
    vg_test_listener_close(l);
    return false;
}

int vg_test_listener_wait(const struct vg_test_listener *l, int fd, short events, int timeout_ms)
{
    struct pollfd pfd[2] = {
        {.fd = l->wake[0], .events = POLLIN},
        {.fd = fd, .events = events},
    };
    int64_t deadline = timeout_ms >= 0 ? mono_ms() + timeout_ms : -1;

    for (;;) {
        int left = -1;
        int rc;

        if (deadline >= 0) {
            int64_t now = mono_ms();
            left = now >= deadline ? 0 : (int)(deadline - now);
        }
        rc = poll(pfd, fd >= 0 ? 2 : 1, left);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc < 0 || pfd[0].revents) {
            return -1;
        }
        return rc == 0 ? 0 : 1;
    }
}

int vg_test_listener_accept(const struct vg_test_listener *l)
{
    int fd = accept(l->fd, NULL, NULL);

    if (fd >= 0) {
        set_cloexec(fd);
    }
    return fd;
}

void vg_test_listener_wake(struct vg_test_listener *l)
{
    static const char one = 1;

    while (write(l->wake[1], &one, 1) < 0 && errno == EINTR) {
    }
}

void vg_test_listener_close(struct vg_test_listener *l)
{
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    if (l->wake[0] >= 0) {
        close(l->wake[0]);
        close(l->wake[1]);
        l->wake[0] = l->wake[1] = -1;
    }
}
