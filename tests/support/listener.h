/*
 * What the in-process test servers (http_receiver.c, smtp_receiver.c) share:
 * a TCP socket listening on 127.0.0.1 at an ephemeral port, one accepting
 * thread and one thread per connection, and a wake-up pipe that every one of
 * those threads polls beside its own socket. Stopping writes the pipe once
 * and nobody reads it, so it stays readable and every wait in every thread
 * ends. What is said on a connection is the server's (its serve function).
 */
#ifndef VIGIL_TEST_LISTENER_H
#define VIGIL_TEST_LISTENER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Serve one connection on its own thread until the peer is done or a wait
 * says the listener stopped; the listener closes `fd` afterwards. `id`
 * numbers connections 1, 2, ... in accept order.
 */
typedef void (*vg_test_serve_fn)(void *server, int fd, size_t id);

struct vg_test_conn; /* one connection's thread (listener.c) */

struct vg_test_listener {
    int fd;      /* the listening socket */
    int wake[2]; /* [0] polled by every thread, [1] written once by vg_test_listener_stop */
    int port;
    vg_test_serve_fn serve;
    void *server;
    pthread_t accept_thread;
    pthread_mutex_t mu; /* guards conns */
    struct vg_test_conn *conns;
    atomic_size_t n_conns; /* accepted so far */
};

/*
 * Listen on 127.0.0.1:0 (close-on-exec) and accept on a thread of its own,
 * each connection served by `serve(server, fd, id)` on a new thread. False,
 * with nothing left open or running, on failure.
 */
bool vg_test_listener_start(struct vg_test_listener *l, vg_test_serve_fn serve, void *server);

/*
 * End every wait, join the accepting thread and every connection's thread,
 * close the socket and the pipe. The server's own state is still intact
 * while its connection threads finish.
 */
void vg_test_listener_stop(struct vg_test_listener *l);

/* Connections accepted so far (any thread). */
size_t vg_test_listener_connections(struct vg_test_listener *l);

/*
 * Wait until `fd` has `events` (fd < 0: only wait), the listener is stopped,
 * or `timeout_ms` passes (-1: forever). Returns 1 when fd is ready
 * (POLLHUP/POLLERR count: the read or write reports them), 0 on timeout,
 * -1 once stopped or on a poll error.
 */
int vg_test_listener_wait(const struct vg_test_listener *l, int fd, short events, int timeout_ms);

#endif
