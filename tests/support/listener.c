/*
 * The listening socket, wake-up pipe and connection threads of the
 * in-process test servers (listener.h). Finished connection threads are
 * joined at the next accept, so long tests do not pile them up.
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

#include "vigil/mem.h"

struct vg_test_conn {
    struct vg_test_listener *l;
    int fd;
    size_t id;
    pthread_t thread;
    bool done; /* under l->mu: the thread is about to return, join it */
    struct vg_test_conn *next;
};

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

static void close_fds(struct vg_test_listener *l)
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

static bool open_fds(struct vg_test_listener *l)
{
    struct sockaddr_in sa = {0};
    socklen_t sa_len = sizeof(sa);

    l->fd = -1;
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
    close_fds(l);
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

static void *conn_main(void *arg)
{
    struct vg_test_conn *c = arg;

    c->l->serve(c->l->server, c->fd, c->id);
    close(c->fd);
    c->fd = -1;
    pthread_mutex_lock(&c->l->mu);
    c->done = true;
    pthread_mutex_unlock(&c->l->mu);
    return NULL;
}

/* Join connection threads that have finished. */
static void reap_done(struct vg_test_listener *l)
{
    struct vg_test_conn *done = NULL;

    pthread_mutex_lock(&l->mu);
    for (struct vg_test_conn **pp = &l->conns; *pp;) {
        struct vg_test_conn *c = *pp;
        if (c->done) {
            *pp = c->next;
            c->next = done;
            done = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&l->mu);
    while (done) {
        struct vg_test_conn *next = done->next;
        pthread_join(done->thread, NULL);
        vg_free(done);
        done = next;
    }
}

static void *accept_main(void *arg)
{
    struct vg_test_listener *l = arg;

    for (;;) {
        struct vg_test_conn *c;
        int fd;

        if (vg_test_listener_wait(l, l->fd, POLLIN, -1) != 1) {
            return NULL;
        }
        fd = accept(l->fd, NULL, NULL);
        if (fd < 0) {
            continue; /* EINTR, ECONNABORTED, EMFILE...: poll again */
        }
        set_cloexec(fd);
        reap_done(l);

        c = vg_calloc(1, sizeof(*c));
        c->l = l;
        c->fd = fd;
        c->id = atomic_fetch_add(&l->n_conns, 1) + 1;
        pthread_mutex_lock(&l->mu);
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
            pthread_mutex_unlock(&l->mu);
            close(fd);
            vg_free(c);
            continue;
        }
        c->next = l->conns;
        l->conns = c;
        pthread_mutex_unlock(&l->mu);
    }
}

bool vg_test_listener_start(struct vg_test_listener *l, vg_test_serve_fn serve, void *server)
{
    l->serve = serve;
    l->server = server;
    l->conns = NULL;
    atomic_init(&l->n_conns, 0);
    if (!open_fds(l)) {
        return false;
    }
    pthread_mutex_init(&l->mu, NULL);
    if (pthread_create(&l->accept_thread, NULL, accept_main, l) != 0) {
        pthread_mutex_destroy(&l->mu);
        close_fds(l);
        return false;
    }
    return true;
}

void vg_test_listener_stop(struct vg_test_listener *l)
{
    static const char one = 1;

    /* Never read: wake[0] stays readable, so every poll in every thread returns. */
    while (write(l->wake[1], &one, 1) < 0 && errno == EINTR) {
    }
    pthread_join(l->accept_thread, NULL);
    /* No new connections now; each connection thread ends at its next wait. */
    while (l->conns) {
        struct vg_test_conn *c = l->conns;
        l->conns = c->next;
        pthread_join(c->thread, NULL);
        vg_free(c);
    }
    close_fds(l);
    pthread_mutex_destroy(&l->mu);
}

size_t vg_test_listener_connections(struct vg_test_listener *l)
{
    return atomic_load(&l->n_conns);
}
