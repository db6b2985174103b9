/*
 * The acceptor in front of libmicrohttpd: it owns the listening socket,
 * holds each new connection (in one poll set, no thread) until its request
 * line and headers are in the socket buffer, enforces the connection limits,
 * the size limits of the request head and the whole-request deadline,
 * answers refusals itself in the JSON error shape, and hands good requests
 * to libmicrohttpd. It also cuts handed-over connections whose body (or
 * response) outlives its deadline.
 *
 * Why not libmicrohttpd's own limits: 0.9.75 applies MHD_OPTION_CONNECTION_LIMIT
 * and MHD_OPTION_PER_IP_CONNECTION_LIMIT at accept, before it knows the path,
 * so it cannot keep room for /healthz; MHD_OPTION_CONNECTION_TIMEOUT is an
 * idle timeout that every trickled byte resets; and its own 414/431/400
 * answers are HTML. The server stays thread-per-connection because handlers
 * block (the Redis pool, a stream waiting on the ring's condition variable):
 * slow clients never get a thread here, only the poll set, and after the
 * hand-over only a body can be slow, which the deadline bounds. The head is
 * read with MSG_PEEK, so libmicrohttpd still reads it itself; SO_RCVLOWAT
 * (Linux) keeps poll from waking until more bytes than already seen arrive.
 */
#define _GNU_SOURCE /* accept4, pipe2, POLLRDHUP (Linux) */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "api_int.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/util.h"

#define ACCEPTS_PER_WAKE 64
#define DRAIN_BYTES (64 * 1024) /* read and drop this much before closing a refused socket */

/* ---- replies written straight to a socket ------------------------------------ */

static const char *status_text(unsigned status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Service Unavailable";
    }
}

void api_gate_reply(int fd, unsigned status, const char *message)
{
    struct vg_buf body = {0};
    struct vg_buf out = {0};

    vg_buf_puts(&body, "{\"error\": ");
    vg_json_append_string(&body, message);
    vg_buf_puts(&body, "}\n");
    vg_buf_printf(&out,
                  "HTTP/1.1 %u %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\nCache-Control: no-store\r\n"
                  "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
                  "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n\r\n",
                  status, status_text(status), body.len);
    vg_buf_append(&out, body.data, body.len);
    /* Best effort: a reply this small fits any socket buffer; a client that cannot take it loses
     * it. */
    if (send(fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        VG_LOG_DEBUG("api", "reply %u not sent: %s", status, strerror(errno));
    }
    vg_buf_fini(&out);
    vg_buf_fini(&body);
}

/* ---- connections held by the acceptor ------------------------------------------- */

static void client_ip(const struct sockaddr_storage *ss, char *out, size_t out_size)
{
    snprintf(out, out_size, "?");
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)out_size);
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) { /* one client, one address, whichever family it used */
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)out_size);
        } else {
            inet_ntop(AF_INET6, a, out, (socklen_t)out_size);
        }
    }
}

/* Close pending[i] (after reading what the client already sent, so the close is a FIN, not an RST).
 */
static void drop_pending(struct api_gate *g, size_t i)
{
    struct api_pending *p = &g->pending[i];
    char sink[4096];
    size_t drained = 0;
    ssize_t got;

    shutdown(p->fd, SHUT_WR);
    while (drained < DRAIN_BYTES && (got = recv(p->fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0) {
        drained += (size_t)got;
    }
    close(p->fd);
    free(p->addr);
    memmove(&g->pending[i], &g->pending[i + 1], (g->n_pending - i - 1) * sizeof(*p));
    g->n_pending--;
}

__attribute__((format(printf, 5, 6))) static void refuse_pending(struct vg_api *api, size_t i,
                                                                 unsigned status,
                                                                 enum api_reason reason,
                                                                 const char *fmt, ...)
{
    struct api_gate *g = &api->gate;
    struct vg_buf msg = {0};
    va_list ap;

    va_start(ap, fmt);
    vg_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    api_gate_reply(g->pending[i].fd, status, msg.data);
    api_reject(api, reason, g->pending[i].ip, "%u %s", status, msg.data);
    vg_buf_fini(&msg);
    drop_pending(g, i);
}

static void admit(struct vg_api *api, int fd, const struct sockaddr_storage *ss, socklen_t len)
{
    struct api_gate *g = &api->gate;
    struct api_pending *p;
    char ip[64];
    size_t same = 0;
    size_t oldest_same = SIZE_MAX;

    client_ip(ss, ip, sizeof(ip));
    for (size_t i = 0; i < g->n_pending; i++) {
        if (!strcmp(g->pending[i].ip, ip)) {
            same++;
            oldest_same = oldest_same == SIZE_MAX ? i : oldest_same;
        }
    }
    /*
     * Room for the newcomer comes from the oldest connection still sending
     * its head: a client that sends a whole request at once (a health check,
     * a scrape) always gets in, while trickling and idle sockets get cut.
     */
    if (same >= (size_t)g->max_per_ip) {
        refuse_pending(api, oldest_same, 503, API_REASON_PER_IP,
                       "too many connections from %s (http.max_connections_per_ip is %d)", ip,
                       g->max_per_ip);
    }
    if (g->n_pending >= (size_t)g->max_connections) {
        refuse_pending(api, 0, 503, API_REASON_TOO_MANY,
                       "too many connections still sending their request (http.max_connections "
                       "is %d)",
                       g->max_connections);
    }
    p = &g->pending[g->n_pending++];
    memset(p, 0, sizeof(*p));
    p->fd = fd;
    p->addr = vg_malloc(sizeof(*p->addr));
    memcpy(p->addr, ss, sizeof(*ss));
    p->addr_len = (unsigned)len;
    snprintf(p->ip, sizeof(p->ip), "%s", ip);
    p->accepted_ms = vg_mono_ms();
}

/* ---- the records of handed-over connections -------------------------------------------- */

static void conns_remove(struct api_gate *g, const struct api_conn *ac)
{
    for (size_t i = 0; i < g->n_conns; i++) {
        if (g->conns[i] == ac) {
            g->conns[i] = g->conns[--g->n_conns];
            return;
        }
    }
}

/* Give pending[i] to libmicrohttpd, or refuse it when its slots are taken. */
static void hand_over(struct vg_api *api, size_t i, bool health)
{
    struct api_gate *g = &api->gate;
    struct api_pending p = g->pending[i];
    struct api_conn *ac;
    size_t general = 0;
    size_t same = 0;
    int one = 1;

    pthread_mutex_lock(&g->lock);
    for (size_t k = 0; k < g->n_conns; k++) {
        if (!g->conns[k]->reserve) {
            general++;
            same += !strcmp(g->conns[k]->ip, p.ip);
        }
    }
    if (health ? g->n_conns >= (size_t)g->max_connections + API_RESERVED_SLOTS
               : general >= (size_t)g->max_connections) {
        pthread_mutex_unlock(&g->lock);
        refuse_pending(api, i, 503, API_REASON_TOO_MANY,
                       "busy: %zu requests in progress (http.max_connections is %d)", general,
                       g->max_connections);
        return;
    }
    if (!health && same >= (size_t)g->max_per_ip) {
        pthread_mutex_unlock(&g->lock);
        refuse_pending(api, i, 503, API_REASON_PER_IP,
                       "too many requests in progress from %s (http.max_connections_per_ip is %d)",
                       p.ip, g->max_per_ip);
        return;
    }
    ac = vg_calloc(1, sizeof(*ac));
    ac->fd = p.fd;
    snprintf(ac->ip, sizeof(ac->ip), "%s", p.ip);
    ac->deadline_ms = p.accepted_ms + g->request_timeout_ms;
    ac->reserve = health;
    for (size_t k = 0; k < g->n_conns; k++) {
        if (g->conns[k]->fd == p.fd) { /* a stale record (libmicrohttpd failed before STARTED) */
            free(g->conns[k]);
            g->conns[k] = g->conns[--g->n_conns];
            break;
        }
    }
    *VG_ARRAY_PUSH(g->conns, g->n_conns, g->cap_conns) = ac;
    pthread_mutex_unlock(&g->lock);

    setsockopt(p.fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    memmove(&g->pending[i], &g->pending[i + 1], (g->n_pending - i - 1) * sizeof(p));
    g->n_pending--;
    if (MHD_add_connection(api->mhd, p.fd, (const struct sockaddr *)p.addr,
                           (socklen_t)p.addr_len) != MHD_YES) {
        /* libmicrohttpd closed the socket: nothing else holds this fd number yet. */
        pthread_mutex_lock(&g->lock);
        conns_remove(g, ac);
        pthread_mutex_unlock(&g->lock);
        free(ac);
        api_reject(api, API_REASON_TOO_MANY, p.ip, "libmicrohttpd refused the connection: %s",
                   strerror(errno));
    }
    free(p.addr);
}

/* ---- reading the head ------------------------------------------------------------ */

/* pending[i] is readable (or hung up). */
static void examine(struct vg_api *api, size_t i, short revents)
{
    struct api_gate *g = &api->gate;
    struct api_pending *p = &g->pending[i];
    ssize_t n = recv(p->fd, g->peek, API_MAX_HEADER_BYTES + 1, MSG_PEEK | MSG_DONTWAIT);
    struct api_head head;
    int lowat;

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    if (n <= 0) { /* gone before sending a request: not a refusal */
        drop_pending(g, i);
        return;
    }
    g->peek[n] = '\0';
    switch (api_head_check(g->peek, (size_t)n, &head)) {
    case API_HEAD_REFUSED:
        refuse_pending(api, i, head.status, head.reason, "%s", head.message);
        return;
    case API_HEAD_OK:
        hand_over(api, i, head.health);
        return;
    case API_HEAD_WAIT:
        break;
    }
    if (revents & (POLLRDHUP | POLLHUP | POLLERR)) { /* half a request and no more coming */
        drop_pending(g, i);
        return;
    }
    /* Wake only once more than what is already here has arrived. */
    p->seen = (size_t)n;
    lowat = (int)n + 1;
    setsockopt(p->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
}

/* ---- deadlines --------------------------------------------------------------------- */

/* Cut what is past its deadline; returns the next deadline (INT64_MAX: none). */
static int64_t enforce_deadlines(struct vg_api *api, int64_t now)
{
    struct api_gate *g = &api->gate;
    int64_t next = INT64_MAX;

    for (size_t i = g->n_pending; i-- > 0;) {
        int64_t d = g->pending[i].accepted_ms + g->request_timeout_ms;
        if (now >= d) {
            refuse_pending(api, i, 408, API_REASON_TIMEOUT,
                           "the request took longer than %d ms (http.request_timeout_ms)",
                           g->request_timeout_ms);
        } else if (d < next) {
            next = d;
        }
    }
    pthread_mutex_lock(&g->lock);
    for (size_t i = 0; i < g->n_conns; i++) {
        struct api_conn *ac = g->conns[i];
        if (ac->cut || ac->deadline_ms == 0) {
            continue;
        }
        if (now < ac->deadline_ms) {
            next = ac->deadline_ms < next ? ac->deadline_ms : next;
            continue;
        }
        /*
         * libmicrohttpd closes the socket only after NOTIFY_CLOSED, which
         * takes this lock: the fd is still this connection's. shutdown()
         * wakes its thread, which then closes it.
         */
        if (!ac->received) {
            api_gate_reply(ac->fd, 408, "the request took longer than http.request_timeout_ms");
            api_reject(api, API_REASON_TIMEOUT, ac->ip,
                       "408 the request body took longer than %d ms (http.request_timeout_ms)",
                       g->request_timeout_ms);
        } else {
            api_reject(api, API_REASON_TIMEOUT, ac->ip, "the response was not read within %d s",
                       API_CONNECTION_TIMEOUT_S);
        }
        shutdown(ac->fd, SHUT_RDWR);
        ac->cut = true;
    }
    pthread_mutex_unlock(&g->lock);
    return next;
}

static void *gate_main(void *arg)
{
    struct vg_api *api = arg;
    struct api_gate *g = &api->gate;
    struct pollfd *pfd = vg_calloc((size_t)g->max_connections + 2, sizeof(*pfd));
    int64_t accept_paused_until = 0;

    while (!atomic_load(&api->stopping)) {
        int64_t now = vg_mono_ms();
        int64_t next = enforce_deadlines(api, now);
        size_t np = g->n_pending;
        int timeout;
        int rc;

        if (accept_paused_until > now && accept_paused_until < next) {
            next = accept_paused_until;
        }
        timeout = next == INT64_MAX ? -1 : (int)(next - now < 0 ? 0 : next - now);
        pfd[0] = (struct pollfd){.fd = g->wake[0], .events = POLLIN};
        pfd[1] =
            (struct pollfd){.fd = accept_paused_until > now ? -1 : g->listen_fd, .events = POLLIN};
        for (size_t i = 0; i < np; i++) {
            pfd[2 + i] = (struct pollfd){.fd = g->pending[i].fd, .events = POLLIN | POLLRDHUP};
        }
        rc = poll(pfd, np + 2, timeout);
        if (rc < 0) {
            if (errno != EINTR) {
                VG_LOG_WARN("api", "acceptor: poll: %s", strerror(errno));
            }
            continue;
        }
        if (pfd[0].revents) {
            char b[64];
            while (read(g->wake[0], b, sizeof(b)) > 0) {
            }
            continue;
        }
        /* Backwards: removing pending[i] shifts only entries already looked at. */
        for (size_t i = np; i-- > 0;) {
            if (pfd[2 + i].revents) {
                examine(api, i, pfd[2 + i].revents);
            }
        }
        for (int k = 0; (pfd[1].revents & POLLIN) && k < ACCEPTS_PER_WAKE; k++) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof(ss);
            int fd =
                accept4(g->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    api_reject(api, API_REASON_TOO_MANY, "?", "accept: %s", strerror(errno));
                    accept_paused_until = vg_mono_ms() + 100; /* else poll would spin */
                }
                break;
            }
            admit(api, fd, &ss, len);
        }
    }
    free(pfd);
    return NULL;
}

/* ---- libmicrohttpd's side ------------------------------------------------------------ */

void api_gate_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe)
{
    struct vg_api *api = cls;
    struct api_gate *g = &api->gate;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = NULL;
        pthread_mutex_lock(&g->lock);
        for (size_t i = 0; info && i < g->n_conns; i++) {
            if (g->conns[i]->fd == info->connect_fd) {
                *socket_context = g->conns[i];
                break;
            }
        }
        pthread_mutex_unlock(&g->lock);
    } else if (*socket_context) {
        struct api_conn *ac = *socket_context;
        pthread_mutex_lock(&g->lock);
        conns_remove(g, ac);
        pthread_mutex_unlock(&g->lock);
        free(ac);
        *socket_context = NULL;
    }
}

struct api_conn *api_gate_conn(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

void api_gate_received(struct vg_api *api, struct api_conn *ac)
{
    if (!ac) {
        return;
    }
    pthread_mutex_lock(&api->gate.lock);
    ac->received = true;
    ac->deadline_ms = 0; /* the handler's own waits are bounded (Redis pool, timeouts) */
    pthread_mutex_unlock(&api->gate.lock);
}

void api_gate_responding(struct vg_api *api, struct api_conn *ac, bool stream)
{
    if (!ac) {
        return;
    }
    pthread_mutex_lock(&api->gate.lock);
    ac->received = true;
    ac->deadline_ms = stream ? 0 : vg_mono_ms() + API_CONNECTION_TIMEOUT_S * 1000LL;
    pthread_mutex_unlock(&api->gate.lock);
    /* No wake-up needed: the acceptor wakes at the earlier deadline anyway and looks again. */
}

/* ---- start and stop ----------------------------------------------------------------- */

vg_err_t api_gate_start(struct vg_api *api, char *errstr, size_t errstr_size)
{
    struct api_gate *g = &api->gate;
    int fl = fcntl(g->listen_fd, F_GETFL);

    if (fl < 0 || fcntl(g->listen_fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        pipe2(g->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(errstr, errstr_size, "http: acceptor: %s", strerror(errno));
        return VG_ERR_IO;
    }
    g->pending = vg_calloc((size_t)g->max_connections, sizeof(*g->pending));
    g->peek = vg_malloc(API_MAX_HEADER_BYTES + 2); /* and a NUL */
    if (pthread_create(&g->thread, NULL, gate_main, api) != 0) {
        snprintf(errstr, errstr_size, "http: acceptor: cannot start its thread");
        return VG_ERR_IO;
    }
    g->started = true;
    return VG_OK;
}

void api_gate_stop(struct vg_api *api)
{
    struct api_gate *g = &api->gate;

    if (g->started) {
        ssize_t w = write(g->wake[1], "s", 1);
        (void)w;
        pthread_join(g->thread, NULL);
        g->started = false;
    }
    while (g->n_pending > 0) {
        drop_pending(g, g->n_pending - 1);
    }
}
