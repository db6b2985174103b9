/*
 * What the in-process test servers (http_receiver.c, smtp_receiver.c) share:
 * a TCP socket listening on 127.0.0.1 at an ephemeral port, and a wake-up
 * pipe that every server thread polls beside its own socket. Waking writes
 * the pipe once and nobody reads it, so it stays readable and every wait in
 * every thread ends: that is how a server's stop reaches its threads.
 */
#ifndef VIGIL_TEST_LISTENER_H
#define VIGIL_TEST_LISTENER_H

#include <stdbool.h>

struct vg_test_listener {
    int fd;      /* the listening socket */
    int wake[2]; /* [0] polled by every thread, [1] written once by vg_test_listener_wake */
    int port;
};

/* Listen on 127.0.0.1:0 (close-on-exec). False, with nothing left open, on failure. */
bool vg_test_listener_open(struct vg_test_listener *l);

/*
 * Wait until `fd` has `events` (fd < 0: only wait), the listener is woken,
 * or `timeout_ms` passes (-1: forever). Returns 1 when fd is ready
 * (POLLHUP/POLLERR count: the read or write reports them), 0 on timeout,
 * -1 once woken or on a poll error.
 */
int vg_test_listener_wait(const struct vg_test_listener *l, int fd, short events, int timeout_ms);

/* Accept one connection (close-on-exec): its fd, or -1 (EINTR, ECONNABORTED...: wait again). */
int vg_test_listener_accept(const struct vg_test_listener *l);

/* End every wait, now and later. */
void vg_test_listener_wake(struct vg_test_listener *l);

/* Close the socket and the pipe (after the threads that poll them are joined). */
void vg_test_listener_close(struct vg_test_listener *l);

#endif
