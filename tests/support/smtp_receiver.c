/*
 * The SMTP test server of smtp_receiver.h: on each connection, read command
 * lines and answer. The accepting thread, one thread per connection and the
 * wake-up pipe every blocking read polls (so vg_smtp_receiver_stop returns
 * promptly) are listener.h's.
 */
#include "smtp_receiver.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define LINE_MAX_BYTES 4096
#define DATA_MAX_BYTES (4 * 1024 * 1024)

/* One connection, for the time it is served. */
struct sconn {
    struct vg_smtp_receiver *r;
    int fd;
    struct vg_buf in; /* bytes read, not yet consumed */
};

struct vg_smtp_receiver {
    struct vg_test_listener ln;
    pthread_mutex_t mu;
    struct vg_smtp_message *msgs;
    size_t n_msgs;
    size_t cap_msgs;
    struct vg_smtp_behaviour *queue;
    size_t q_len;
    size_t q_cap;
};

/* ---------------------------------------------------------------- I/O */

/* 1 readable, 0 stopping or error. */
static int wait_readable(struct vg_smtp_receiver *r, int fd)
{
    return vg_test_listener_wait(&r->ln, fd, POLLIN, -1) == 1;
}

static bool send_all(int fd, const char *s)
{
    size_t n = strlen(s);

    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* One line without its CRLF into a new heap string; NULL on EOF, stop or an overlong line. */
static char *read_line(struct sconn *c)
{
    for (;;) {
        char *nl = c->in.data ? memchr(c->in.data, '\n', c->in.len) : NULL;
        char chunk[4096];
        ssize_t got;

        if (nl) {
            size_t n = (size_t)(nl - c->in.data);
            char *line = vg_strndup(c->in.data, n > 0 && nl[-1] == '\r' ? n - 1 : n);
            memmove(c->in.data, nl + 1, c->in.len - n - 1);
            c->in.len -= n + 1;
            c->in.data[c->in.len] = '\0';
            return line;
        }
        if (c->in.len > DATA_MAX_BYTES || wait_readable(c->r, c->fd) != 1) {
            return NULL;
        }
        got = recv(c->fd, chunk, sizeof(chunk), 0);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            return NULL;
        }
        vg_buf_append(&c->in, chunk, (size_t)got);
    }
}

static size_t b64_decode(const char *in, unsigned char *out, size_t out_size)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned int acc = 0;
    int bits = 0;
    size_t n = 0;

    for (; *in && *in != '='; in++) {
        const char *p = strchr(tbl, *in);
        if (!p || !*in) {
            continue;
        }
        acc = (acc << 6) | (unsigned int)(p - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 < out_size) {
                out[n++] = (unsigned char)((acc >> bits) & 0xFF);
            }
        }
    }
    out[n] = '\0';
    return n;
}

/* ---------------------------------------------------------------- the session */

struct session {
    char *helo;
    char *user;
    char *pass;
    struct vg_smtp_message cur; /* the open transaction */
    bool open;
    struct vg_smtp_behaviour b;
};

static void msg_fini(struct vg_smtp_message *m)
{
    vg_free(m->helo);
    vg_free(m->mail_from);
    for (size_t i = 0; i < m->n_rcpt; i++) {
        vg_free(m->rcpt[i]);
    }
    vg_free(m->rcpt);
    vg_free(m->auth_user);
    vg_free(m->auth_pass);
    vg_free(m->data);
    memset(m, 0, sizeof(*m));
}

static void msg_copy(struct vg_smtp_message *dst, const struct vg_smtp_message *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->helo = src->helo ? vg_strdup(src->helo) : NULL;
    dst->mail_from = src->mail_from ? vg_strdup(src->mail_from) : NULL;
    dst->rcpt = vg_calloc(src->n_rcpt + 1, sizeof(char *));
    for (size_t i = 0; i < src->n_rcpt; i++) {
        dst->rcpt[i] = vg_strdup(src->rcpt[i]);
    }
    dst->n_rcpt = src->n_rcpt;
    dst->auth_user = src->auth_user ? vg_strdup(src->auth_user) : NULL;
    dst->auth_pass = src->auth_pass ? vg_strdup(src->auth_pass) : NULL;
    if (src->data) {
        dst->data = vg_malloc(src->data_len + 1);
        memcpy(dst->data, src->data, src->data_len + 1);
    }
    dst->data_len = src->data_len;
    dst->status = src->status;
    dst->at_mono_ms = src->at_mono_ms;
}

/* Close the open transaction with `status` and record it. */
static void record(struct vg_smtp_receiver *r, struct session *ss, int status)
{
    struct vg_smtp_message *m;

    ss->cur.status = status;
    ss->cur.at_mono_ms = vg_mono_ms();
    ss->cur.helo = ss->helo ? vg_strdup(ss->helo) : NULL;
    ss->cur.auth_user = ss->user ? vg_strdup(ss->user) : NULL;
    ss->cur.auth_pass = ss->pass ? vg_strdup(ss->pass) : NULL;
    pthread_mutex_lock(&r->mu);
    m = VG_ARRAY_PUSH(r->msgs, r->n_msgs, r->cap_msgs);
    *m = ss->cur;
    pthread_mutex_unlock(&r->mu);
    memset(&ss->cur, 0, sizeof(ss->cur));
    ss->open = false;
}

static const char *arg_of(const char *line, const char *verb)
{
    size_t n = strlen(verb);

    if (strncasecmp(line, verb, n) != 0) {
        return NULL;
    }
    return line + n;
}

/* "<addr> PARAMS" -> "addr" (heap). */
static char *path_of(const char *s)
{
    const char *lt = strchr(s, '<');
    const char *gt = lt ? strchr(lt, '>') : NULL;

    if (!lt || !gt) {
        return vg_strdup(s);
    }
    return vg_strndup(lt + 1, (size_t)(gt - lt - 1));
}

static void auth_plain(struct session *ss, const char *b64)
{
    unsigned char raw[1024];
    size_t n = b64_decode(b64, raw, sizeof(raw));
    const char *user = memchr(raw, '\0', n) ? (const char *)raw + strlen((char *)raw) + 1 : NULL;

    vg_free(ss->user);
    vg_free(ss->pass);
    ss->user = NULL;
    ss->pass = NULL;
    if (user && user < (const char *)raw + n) {
        ss->user = vg_strdup(user);
        if (user + strlen(user) + 1 <= (const char *)raw + n) {
            ss->pass = vg_strdup(user + strlen(user) + 1);
        }
    }
}

/* Read DATA up to the lone ".", undoing dot stuffing. False when the connection ended. */
static bool read_data(struct sconn *c, struct vg_buf *out)
{
    for (;;) {
        char *line = read_line(c);
        if (!line) {
            return false;
        }
        if (!strcmp(line, ".")) {
            vg_free(line);
            return true;
        }
        vg_buf_puts(out, line[0] == '.' ? line + 1 : line);
        vg_buf_puts(out, "\r\n");
        vg_free(line);
    }
}

static void session_run(struct sconn *c)
{
    struct vg_smtp_receiver *r = c->r;
    struct session ss;
    char reply[64];

    memset(&ss, 0, sizeof(ss));
    if (!send_all(c->fd, "220 vigil-test ESMTP ready\r\n")) {
        return;
    }
    for (;;) {
        char *line = read_line(c);
        const char *a;
        bool ok = true;

        if (!line) {
            break;
        }
        if ((a = arg_of(line, "EHLO ")) != NULL || (a = arg_of(line, "HELO ")) != NULL) {
            vg_free(ss.helo);
            ss.helo = vg_strdup(a);
            ok = send_all(c->fd, line[0] == 'H' || line[0] == 'h'
                                     ? "250 vigil-test\r\n"
                                     : "250-vigil-test\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n"
                                       "250 SIZE 10485760\r\n");
        } else if ((a = arg_of(line, "AUTH PLAIN")) != NULL) {
            if (*a == ' ') {
                auth_plain(&ss, a + 1);
            } else {
                char *resp;
                ok = send_all(c->fd, "334 \r\n");
                resp = ok ? read_line(c) : NULL;
                if (!resp) {
                    vg_free(line);
                    break;
                }
                auth_plain(&ss, resp);
                vg_free(resp);
            }
            ok = send_all(c->fd, "235 2.7.0 Authentication successful\r\n");
        } else if ((a = arg_of(line, "AUTH LOGIN")) != NULL) {
            unsigned char raw[512];
            char *u = NULL;
            char *p = NULL;

            if (*a == ' ') {
                b64_decode(a + 1, raw, sizeof(raw));
                u = vg_strdup((char *)raw);
            } else if (send_all(c->fd, "334 VXNlcm5hbWU6\r\n")) {
                char *l = read_line(c);
                if (l) {
                    b64_decode(l, raw, sizeof(raw));
                    u = vg_strdup((char *)raw);
                    vg_free(l);
                }
            }
            if (u && send_all(c->fd, "334 UGFzc3dvcmQ6\r\n")) {
                char *l = read_line(c);
                if (l) {
                    b64_decode(l, raw, sizeof(raw));
                    p = vg_strdup((char *)raw);
                    vg_free(l);
                }
            }
            vg_free(ss.user);
            vg_free(ss.pass);
            ss.user = u;
            ss.pass = p;
            ok = p && send_all(c->fd, "235 2.7.0 Authentication successful\r\n");
        } else if ((a = arg_of(line, "MAIL FROM:")) != NULL) {
            msg_fini(&ss.cur);
            ss.cur.mail_from = path_of(a);
            ss.open = true;
            memset(&ss.b, 0, sizeof(ss.b));
            pthread_mutex_lock(&r->mu);
            if (r->q_len > 0) {
                ss.b = r->queue[0];
                memmove(r->queue, r->queue + 1, (r->q_len - 1) * sizeof(*r->queue));
                r->q_len--;
            }
            pthread_mutex_unlock(&r->mu);
            ok = send_all(c->fd, "250 2.1.0 Ok\r\n");
        } else if ((a = arg_of(line, "RCPT TO:")) != NULL) {
            if (!ss.open) {
                ok = send_all(c->fd, "503 5.5.1 MAIL first\r\n");
            } else if (ss.b.rcpt_status && ss.b.rcpt_status != 250) {
                int st = ss.b.rcpt_status;
                ss.cur.rcpt = vg_realloc(ss.cur.rcpt, (ss.cur.n_rcpt + 1) * sizeof(char *));
                ss.cur.rcpt[ss.cur.n_rcpt++] = path_of(a);
                record(r, &ss, st);
                snprintf(reply, sizeof(reply), "%d recipient refused by the script\r\n", st);
                ok = send_all(c->fd, reply);
            } else {
                ss.cur.rcpt = vg_realloc(ss.cur.rcpt, (ss.cur.n_rcpt + 1) * sizeof(char *));
                ss.cur.rcpt[ss.cur.n_rcpt++] = path_of(a);
                ok = send_all(c->fd, "250 2.1.5 Ok\r\n");
            }
        } else if (!strcasecmp(line, "DATA")) {
            struct vg_buf data = {0};
            int st = ss.b.data_status ? ss.b.data_status : 250;

            if (!ss.open || ss.cur.n_rcpt == 0) {
                ok = send_all(c->fd, "503 5.5.1 RCPT first\r\n");
            } else if (send_all(c->fd, "354 End data with <CR><LF>.<CR><LF>\r\n") &&
                       read_data(c, &data)) {
                ss.cur.data_len = data.len;
                ss.cur.data = vg_buf_steal(&data);
                if (!ss.cur.data) {
                    ss.cur.data = vg_strdup("");
                }
                record(r, &ss, st);
                snprintf(reply, sizeof(reply), "%d %s\r\n", st,
                         st == 250 ? "2.0.0 Ok: queued" : "refused by the script");
                ok = send_all(c->fd, reply);
            } else {
                vg_buf_fini(&data);
                ok = false;
            }
        } else if (!strcasecmp(line, "RSET")) {
            msg_fini(&ss.cur);
            ss.open = false;
            ok = send_all(c->fd, "250 2.0.0 Ok\r\n");
        } else if (!strcasecmp(line, "NOOP")) {
            ok = send_all(c->fd, "250 2.0.0 Ok\r\n");
        } else if (!strcasecmp(line, "QUIT")) {
            send_all(c->fd, "221 2.0.0 Bye\r\n");
            vg_free(line);
            break;
        } else {
            /* STARTTLS included: this server never offers it. */
            ok = send_all(c->fd, "502 5.5.2 Command not recognised\r\n");
        }
        vg_free(line);
        if (!ok) {
            break;
        }
    }
    msg_fini(&ss.cur);
    vg_free(ss.helo);
    vg_free(ss.user);
    vg_free(ss.pass);
}

static void serve_conn(void *server, int fd, size_t id)
{
    struct sconn c = {.r = server, .fd = fd};

    (void)id;
    session_run(&c);
    vg_buf_fini(&c.in);
}

/* ---------------------------------------------------------------- API */

struct vg_smtp_receiver *vg_smtp_receiver_start(void)
{
    struct vg_smtp_receiver *r = vg_calloc(1, sizeof(*r));

    pthread_mutex_init(&r->mu, NULL);
    if (!vg_test_listener_start(&r->ln, serve_conn, r)) {
        pthread_mutex_destroy(&r->mu);
        vg_free(r);
        return NULL;
    }
    return r;
}

void vg_smtp_receiver_stop(struct vg_smtp_receiver *r)
{
    if (!r) {
        return;
    }
    vg_test_listener_stop(&r->ln);
    for (size_t i = 0; i < r->n_msgs; i++) {
        msg_fini(&r->msgs[i]);
    }
    vg_free(r->msgs);
    vg_free(r->queue);
    pthread_mutex_destroy(&r->mu);
    vg_free(r);
}

int vg_smtp_receiver_port(const struct vg_smtp_receiver *r)
{
    return r->ln.port;
}

char *vg_smtp_receiver_url(const struct vg_smtp_receiver *r)
{
    return vg_asprintf("smtp://127.0.0.1:%d", r->ln.port);
}

void vg_smtp_receiver_push(struct vg_smtp_receiver *r, const struct vg_smtp_behaviour *b)
{
    pthread_mutex_lock(&r->mu);
    *VG_ARRAY_PUSH(r->queue, r->q_len, r->q_cap) = *b;
    pthread_mutex_unlock(&r->mu);
}

size_t vg_smtp_receiver_count(struct vg_smtp_receiver *r)
{
    size_t n;

    pthread_mutex_lock(&r->mu);
    n = r->n_msgs;
    pthread_mutex_unlock(&r->mu);
    return n;
}

size_t vg_smtp_receiver_delivered(struct vg_smtp_receiver *r)
{
    size_t n = 0;

    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_msgs; i++) {
        n += r->msgs[i].status == 250 && r->msgs[i].data;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

struct vg_smtp_message *vg_smtp_receiver_message(struct vg_smtp_receiver *r, size_t i)
{
    struct vg_smtp_message *m = NULL;

    pthread_mutex_lock(&r->mu);
    if (i < r->n_msgs) {
        m = vg_malloc(sizeof(*m));
        msg_copy(m, &r->msgs[i]);
    }
    pthread_mutex_unlock(&r->mu);
    return m;
}

void vg_smtp_message_free(struct vg_smtp_message *m)
{
    if (m) {
        msg_fini(m);
        vg_free(m);
    }
}

char *vg_smtp_message_header(const struct vg_smtp_message *m, const char *name)
{
    const char *p = m->data;
    size_t n = strlen(name);

    while (p && *p && strncmp(p, "\r\n", 2) != 0) {
        const char *eol = strstr(p, "\r\n");
        if (!eol) {
            return NULL;
        }
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            struct vg_buf b = {0};
            const char *v = p + n + 1;

            /* unfold: continuation lines start with space or tab */
            for (;;) {
                while (*v == ' ' || *v == '\t') {
                    v++;
                }
                vg_buf_append(&b, v, (size_t)(eol - v));
                if (eol[2] != ' ' && eol[2] != '\t') {
                    break;
                }
                vg_buf_putc(&b, ' ');
                v = eol + 2;
                eol = strstr(v, "\r\n");
                if (!eol) {
                    break;
                }
            }
            return vg_buf_steal(&b);
        }
        p = eol + 2;
    }
    return NULL;
}

struct count_wait {
    struct vg_smtp_receiver *r;
    size_t n;
};

static bool have_count(void *arg)
{
    struct count_wait *w = arg;

    return vg_smtp_receiver_count(w->r) >= w->n;
}

bool vg_smtp_receiver_wait(struct vg_smtp_receiver *r, size_t n, int timeout_ms)
{
    struct count_wait w = {r, n};

    return vg_test_wait_for(have_count, &w, timeout_ms);
}
