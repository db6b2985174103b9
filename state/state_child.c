/*
 * The private redis-server child: the embedded default of `vigil run` and
 * the Redis of every integration test. One unix socket in its own
 * directory, no TCP port, AOF on (fsync before every reply), no RDB
 * snapshots, AOF rewrites only once the AOF passes 512 MB. The child
 * dies with us (PR_SET_PDEATHSIG) and sits in its own session so a
 * terminal ^C reaches vigil first and vigil stops it in order. Noticing
 * that it died and starting it again are here; deciding when (and
 * logging) is the supervisor's (engine/embedded.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "state_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

#define CHILD_READY_TIMEOUT_MS 10000
/* Replaying a large AOF: waited for as long as redis-server answers LOADING, up to this. */
#define CHILD_LOAD_TIMEOUT_MS (30 * 60 * 1000)
#define CHILD_LOAD_LOG_MS 10000
#define CHILD_STOP_TIMEOUT_MS 5000
#define CHILD_POLL_MS 10
#define LOG_TAIL_BYTES 600

struct vg_redis_child {
    pid_t pid; /* -1: not running (before start, after exit or a failed restart) */
    char *dir;
    char *sock;
    char *url;
    char *password; /* kept for a restart */
    int tcp_port;
    int ready_timeout_ms;
};

static void sleep_ms(int ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* mkdir -p */
static bool mkdir_p(const char *path, char *errstr, size_t errstr_size)
{
    char *tmp = vg_strdup(path);
    bool ok = true;

    for (char *p = tmp + 1; ok; p++) {
        char saved = *p;

        if (saved != '/' && saved != '\0') {
            continue;
        }
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
            state_set_err(errstr, errstr_size, "redis data dir %s: mkdir %s: %s", path, tmp,
                          strerror(errno));
            ok = false;
        }
        *p = saved;
        if (saved == '\0') {
            break;
        }
    }
    vg_free(tmp);
    return ok;
}

/*
 * `dir` made absolute against the working directory, without trailing
 * slashes or "./" prefixes (realpath() is XSI, outside our POSIX level).
 */
static bool make_absolute(const char *dir, char *out, size_t out_size)
{
    size_t len;
    int n;

    if (dir[0] == '/') {
        n = snprintf(out, out_size, "%s", dir);
    } else {
        char cwd[PATH_MAX];

        if (!getcwd(cwd, sizeof(cwd))) {
            return false;
        }
        while (dir[0] == '.' && dir[1] == '/') {
            dir += 2;
            while (dir[0] == '/') {
                dir++;
            }
        }
        if (strcmp(dir, ".") == 0 || dir[0] == '\0') {
            n = snprintf(out, out_size, "%s", cwd);
        } else {
            n = snprintf(out, out_size, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, dir);
        }
    }
    if (n < 0 || (size_t)n >= out_size) {
        errno = ENAMETOOLONG;
        return false;
    }
    len = strlen(out);
    while (len > 1 && out[len - 1] == '/') {
        out[--len] = '\0';
    }
    return true;
}

/* Full path of redis-server on $PATH, or NULL. */
static char *find_redis_server(void)
{
    const char *path = getenv("PATH");
    const char *p;

    if (!path || !*path) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    p = path;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        char *cand = vg_asprintf("%.*s/redis-server", len ? (int)len : 1, len ? p : ".");

        if (access(cand, X_OK) == 0) {
            return cand;
        }
        vg_free(cand);
        if (!colon) {
            return NULL;
        }
        p = colon + 1;
    }
}

/*
 * PING on the unix socket (after AUTH when `password` is set): 1 PONG,
 * 2 LOADING (replaying its AOF), 0 answered something else (NOAUTH...),
 * -1 no answer.
 */
static int ping_socket(const char *sock, const char *password, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (suseconds_t)(timeout_ms % 1000) * 1000};
    redisContext *ctx = redisConnectUnixWithTimeout(sock, tv);
    redisReply *reply;
    int rc = -1;

    if (!ctx) {
        vg_oom("redis context");
    }
    if (ctx->err) {
        redisFree(ctx);
        return -1;
    }
    /* Without the timeout a stopped child could hold this PING forever. */
    if (redisSetTimeout(ctx, tv) != REDIS_OK) {
        redisFree(ctx);
        return -1;
    }
    if (password) {
        reply = redisCommand(ctx, "AUTH %s", password);
        if (!reply) {
            redisFree(ctx);
            return -1;
        }
        freeReplyObject(reply);
    }
    reply = redisCommand(ctx, "PING");
    if (reply) {
        if (reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0) {
            rc = 1;
        } else if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "LOADING", 7) == 0) {
            rc = 2;
        } else {
            rc = 0;
        }
        freeReplyObject(reply);
    }
    redisFree(ctx);
    return rc;
}

/* The last lines of DIR/redis.log, flattened to one line, into out. */
static void log_tail(const char *dir, char *out, size_t out_size)
{
    char *path = vg_asprintf("%s/redis.log", dir);
    char buf[LOG_TAIL_BYTES + 1];
    ssize_t n = 0;
    int fd = open(path, O_RDONLY);

    out[0] = '\0';
    vg_free(path);
    if (fd < 0) {
        return;
    }
    {
        off_t end = lseek(fd, 0, SEEK_END);
        off_t start = end > LOG_TAIL_BYTES ? end - LOG_TAIL_BYTES : 0;

        if (end >= 0 && lseek(fd, start, SEEK_SET) >= 0) {
            n = read(fd, buf, LOG_TAIL_BYTES);
        }
    }
    close(fd);
    if (n <= 0) {
        return;
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || buf[i] == '\r') {
            buf[i] = '|';
        }
    }
    snprintf(out, out_size, "%s", buf);
}

static void describe_status(int status, char *out, size_t out_size)
{
    if (WIFEXITED(status)) {
        snprintf(out, out_size, "exit status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(out, out_size, "killed by signal %d", WTERMSIG(status));
    } else {
        snprintf(out, out_size, "status 0x%x", (unsigned)status);
    }
}

/*
 * In the child after fork: only async-signal-safe calls until execv
 * (vigil has threads; their locks may be held in this copy).
 */
__attribute__((noreturn)) static void exec_child(const char *bin, char *const argv[],
                                                 const char *log_path, pid_t parent)
{
    sigset_t none;
    struct sigaction dfl;
    long max_fd = sysconf(_SC_OPEN_MAX);
    int fd;

    /* Own session: ^C in vigil's terminal goes to vigil's process group only. */
    setsid();
    /* Die (cleanly: redis flushes its AOF on SIGTERM) if vigil is SIGKILLed. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) {
        _exit(127); /* vigil died before prctl took effect */
    }
    /* A blocked or ignored SIGTERM would survive exec and make redis unstoppable. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &dfl, NULL);
    sigaction(SIGINT, &dfl, NULL);
    sigaction(SIGPIPE, &dfl, NULL);
    sigaction(SIGHUP, &dfl, NULL);

    fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
        dup2(fd, 0);
    }
    /* Anything redis prints before it opens its logfile lands there too. */
    fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    if (max_fd < 0 || max_fd > 65536) {
        max_fd = 65536;
    }
    for (long i = 3; i < max_fd; i++) {
        close((int)i);
    }
    execv(bin, argv);
    _exit(127);
}

static void child_free(struct vg_redis_child *rc)
{
    vg_free(rc->dir);
    vg_free(rc->sock);
    vg_free(rc->url);
    vg_free(rc->password);
    vg_free(rc);
}

/* Wait for `pid` to exit for up to timeout_ms; true with *status when it did. */
static bool wait_exit(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = vg_mono_ms() + timeout_ms;

    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);

        if (r == pid || (r < 0 && errno == ECHILD)) {
            return true;
        }
        if (vg_mono_ms() >= deadline) {
            return false;
        }
        sleep_ms(CHILD_POLL_MS);
    }
}

/*
 * requirepass goes in a 0600 config file rather than on the command line,
 * where every local user could read it in ps.
 */
static bool write_auth_conf(const char *path, const char *password, char *errstr,
                            size_t errstr_size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    struct vg_buf b = {0};
    bool ok;

    if (fd < 0) {
        state_set_err(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return false;
    }
    vg_buf_puts(&b, "requirepass \"");
    for (const char *p = password; *p; p++) {
        if (*p == '"' || *p == '\\') {
            vg_buf_putc(&b, '\\');
        }
        vg_buf_putc(&b, *p);
    }
    vg_buf_puts(&b, "\"\n");
    ok = write(fd, b.data, b.len) == (ssize_t)b.len;
    if (!ok) {
        state_set_err(errstr, errstr_size, "%s: %s", path, strerror(errno));
    }
    close(fd);
    vg_buf_fini(&b);
    return ok;
}

/* The child's URL: the socket, plus the %-encoded password when there is one. */
static char *child_url(const char *sock, const char *password)
{
    struct vg_buf b = {0};

    vg_buf_printf(&b, "unix://%s", sock);
    if (password) {
        vg_buf_puts(&b, "?password=");
        for (const unsigned char *p = (const unsigned char *)password; *p; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '_' || *p == '.' || *p == '~') {
                vg_buf_putc(&b, (char)*p);
            } else {
                vg_buf_printf(&b, "%%%02X", (unsigned)*p);
            }
        }
    }
    return vg_buf_steal(&b);
}

vg_err_t vg_redis_child_start(struct vg_redis_child **out, const char *dir, char *errstr,
                              size_t errstr_size)
{
    static const struct vg_redis_child_opts none = {NULL, 0, 0};

    return vg_redis_child_start_opts(out, dir, &none, errstr, errstr_size);
}

/* SIGTERM, wait (bounded), then SIGKILL; rc->pid is -1 afterwards. */
static void kill_and_reap(struct vg_redis_child *rc)
{
    int status = 0;

    if (rc->pid <= 0) {
        return;
    }
    kill(rc->pid, SIGTERM);
    if (!wait_exit(rc->pid, CHILD_STOP_TIMEOUT_MS, &status)) {
        VG_LOG_WARN("state", "redis-server pid=%d ignored SIGTERM for %d ms, killing", (int)rc->pid,
                    CHILD_STOP_TIMEOUT_MS);
        kill(rc->pid, SIGKILL);
        waitpid(rc->pid, &status, 0);
    }
    rc->pid = -1;
}

/*
 * Fork and exec redis-server on rc's directory, socket and options, and
 * wait until it answers PING. On failure no process is left (rc->pid -1).
 */
static vg_err_t spawn(struct vg_redis_child *rc, char *errstr, size_t errstr_size)
{
    char *conf_path = NULL;
    char port[16];
    char *bin = NULL;
    char *log_path = NULL;
    char *argv[32];
    size_t argc = 0;
    int64_t started;
    int64_t deadline;
    int64_t next_log_ms = CHILD_LOAD_LOG_MS;
    vg_err_t err = VG_ERR_IO;

    if (access(rc->sock, F_OK) == 0) {
        if (ping_socket(rc->sock, NULL, 500) >= 0) {
            state_set_err(errstr, errstr_size, "another redis-server already serves %s", rc->dir);
            goto out;
        }
        if (unlink(rc->sock) != 0 && errno != ENOENT) {
            state_set_err(errstr, errstr_size, "remove stale socket %s: %s", rc->sock,
                          strerror(errno));
            goto out;
        }
    }
    bin = find_redis_server();
    if (!bin) {
        state_set_err(errstr, errstr_size, "redis-server not found on PATH: install redis-server");
        goto out;
    }
    log_path = vg_asprintf("%s/redis.log", rc->dir);
    argv[argc++] = bin;
    if (rc->password) {
        conf_path = vg_asprintf("%s/vigil-auth.conf", rc->dir);
        if (!write_auth_conf(conf_path, rc->password, errstr, errstr_size)) {
            goto out;
        }
        argv[argc++] = conf_path; /* a config file must come first */
    }
    snprintf(port, sizeof(port), "%d", rc->tcp_port);
    argv[argc++] = (char *)"--port";
    argv[argc++] = port;
    if (rc->tcp_port > 0) {
        argv[argc++] = (char *)"--bind";
        argv[argc++] = (char *)"127.0.0.1";
    }
    argv[argc++] = (char *)"--unixsocket";
    argv[argc++] = rc->sock;
    argv[argc++] = (char *)"--unixsocketperm";
    argv[argc++] = (char *)"700";
    argv[argc++] = (char *)"--dir";
    argv[argc++] = rc->dir;
    argv[argc++] = (char *)"--appendonly";
    argv[argc++] = (char *)"yes";
    /*
     * always: Redis replies only after the AOF write and fsync. With
     * everysec a busy disk lets Redis postpone the write by up to 2 s while
     * it already replies, and a kill then loses writes vigil was told are
     * done (Kafka offsets have moved past them). vigil writes a batch per
     * MULTI/EXEC, so this is about one fsync per batch.
     */
    argv[argc++] = (char *)"--appendfsync";
    argv[argc++] = (char *)"always";
    /*
     * Redis rewrites the AOF (a forked child serialising the whole dataset,
     * busy on a core for a second or more per 100 MB) each time it has
     * doubled, but not below the min-size (Redis's default: 64 MB). vigil's
     * dataset is small next to its AOF growth: every event appends its
     * state, history entry and offsets (~1.4-1.6 KB of AOF an event), so
     * at 10,000 events/s the default forked every 4-7 s and each rewrite
     * stalled the commits it shared the cores with. 512 MB makes it about
     * every 35 s at that rate and every ~6 min at 1,000/s, for at most
     * ~512 MB more on disk and a longer AOF replay on restart (waited for:
     * LOADING below). The base file stays RDB (fast to write and load).
     */
    argv[argc++] = (char *)"--auto-aof-rewrite-min-size";
    argv[argc++] = (char *)"512mb";
    argv[argc++] = (char *)"--auto-aof-rewrite-percentage";
    argv[argc++] = (char *)"100";
    argv[argc++] = (char *)"--aof-use-rdb-preamble";
    argv[argc++] = (char *)"yes";
    argv[argc++] = (char *)"--save";
    argv[argc++] = (char *)"";
    argv[argc++] = (char *)"--daemonize";
    argv[argc++] = (char *)"no";
    argv[argc++] = (char *)"--logfile";
    argv[argc++] = log_path;
    argv[argc] = NULL;
    VG_ASSERT(argc < VG_ARRAY_LEN(argv));

    {
        pid_t parent = getpid();

        rc->pid = fork();
        if (rc->pid < 0) {
            state_set_err(errstr, errstr_size, "fork redis-server: %s", strerror(errno));
            goto out;
        }
        if (rc->pid == 0) {
            exec_child(bin, argv, log_path, parent);
        }
    }

    started = vg_mono_ms();
    deadline = started + rc->ready_timeout_ms;
    for (;;) {
        int status;
        int ping;
        pid_t r = waitpid(rc->pid, &status, WNOHANG);

        if (r == rc->pid) {
            char how[64];
            char tail[LOG_TAIL_BYTES + 1];

            rc->pid = -1;
            describe_status(status, how, sizeof(how));
            log_tail(rc->dir, tail, sizeof(tail));
            state_set_err(errstr, errstr_size, "redis-server in %s exited (%s)%s%s", rc->dir, how,
                          tail[0] ? ": " : "", tail);
            goto out;
        }
        ping = access(rc->sock, F_OK) == 0 ? ping_socket(rc->sock, rc->password, 200) : -1;
        if (ping == 1) {
            break;
        }
        /*
         * Replaying its AOF: it works, and a restart would only start the
         * replay over. Waited for (bounded), the ready timeout then counts
         * from its last LOADING answer.
         */
        if (ping == 2 && vg_mono_ms() - started < CHILD_LOAD_TIMEOUT_MS) {
            deadline = vg_mono_ms() + rc->ready_timeout_ms;
            if (vg_mono_ms() - started >= next_log_ms) {
                VG_LOG_INFO("state", "redis-server pid=%d still loading its AOF after %lld s",
                            (int)rc->pid, (long long)(vg_mono_ms() - started) / 1000);
                next_log_ms += CHILD_LOAD_LOG_MS;
            }
        }
        if (vg_mono_ms() >= deadline) {
            char tail[LOG_TAIL_BYTES + 1];

            log_tail(rc->dir, tail, sizeof(tail));
            state_set_err(errstr, errstr_size, "redis-server in %s not ready after %lld ms%s%s",
                          rc->dir, (long long)(vg_mono_ms() - started), tail[0] ? ": " : "", tail);
            err = VG_ERR_TIMEOUT;
            kill_and_reap(rc);
            goto out;
        }
        sleep_ms(CHILD_POLL_MS);
    }
    VG_LOG_INFO("state", "redis-server started pid=%d dir=%s", (int)rc->pid, rc->dir);
    err = VG_OK;
out:
    vg_free(bin);
    vg_free(log_path);
    vg_free(conf_path);
    return err;
}

vg_err_t vg_redis_child_start_opts(struct vg_redis_child **out, const char *dir,
                                   const struct vg_redis_child_opts *opts, char *errstr,
                                   size_t errstr_size)
{
    struct vg_redis_child *rc;
    struct sockaddr_un sun;
    char abs[PATH_MAX];
    vg_err_t err;

    *out = NULL;
    if (!mkdir_p(dir, errstr, errstr_size)) {
        return VG_ERR_IO;
    }
    if (!make_absolute(dir, abs, sizeof(abs))) {
        state_set_err(errstr, errstr_size, "redis data dir %s: %s", dir, strerror(errno));
        return VG_ERR_IO;
    }
    rc = vg_calloc(1, sizeof(*rc));
    rc->pid = -1;
    rc->dir = vg_strdup(abs);
    rc->sock = vg_asprintf("%s/redis.sock", abs);
    rc->url = child_url(rc->sock, opts->password);
    rc->password = opts->password ? vg_strdup(opts->password) : NULL;
    rc->tcp_port = opts->tcp_port;
    rc->ready_timeout_ms =
        opts->ready_timeout_ms > 0 ? opts->ready_timeout_ms : CHILD_READY_TIMEOUT_MS;
    if (opts->tcp_port < 0 || opts->tcp_port > 65535) {
        state_set_err(errstr, errstr_size, "redis child: bad tcp port %d", opts->tcp_port);
        err = VG_ERR_INVALID;
        goto fail;
    }
    if (strlen(rc->sock) >= sizeof(sun.sun_path)) {
        state_set_err(errstr, errstr_size,
                      "redis data dir %s: socket path %s is longer than %zu bytes", abs, rc->sock,
                      sizeof(sun.sun_path) - 1);
        err = VG_ERR_INVALID;
        goto fail;
    }
    err = spawn(rc, errstr, errstr_size);
    if (err) {
        goto fail;
    }
    *out = rc;
    return VG_OK;
fail:
    child_free(rc);
    return err;
}

bool vg_redis_child_exited(struct vg_redis_child *rc, char *how, size_t how_size)
{
    int status;
    pid_t r;

    if (rc->pid <= 0) {
        state_set_err(how, how_size, "not running");
        return true;
    }
    r = waitpid(rc->pid, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) {
        return false;
    }
    if (r == rc->pid) {
        describe_status(status, how, how_size);
    } else {
        /* ECHILD: someone else reaped it (SIGCHLD ignored); it is gone either way */
        state_set_err(how, how_size, "reaped elsewhere (%s)", strerror(errno));
    }
    rc->pid = -1;
    return true;
}

vg_err_t vg_redis_child_restart(struct vg_redis_child *rc, char *errstr, size_t errstr_size)
{
    struct stat sb;

    VG_ASSERT(rc->pid <= 0);
    /*
     * Not mkdir -p: a data dir removed under a running vigil held the
     * state and the applied offsets; an empty one would silently start
     * over. A human decides (recreate it, or restore it).
     */
    if (stat(rc->dir, &sb) != 0) {
        state_set_err(errstr, errstr_size, "redis data dir %s: %s", rc->dir, strerror(errno));
        return VG_ERR_IO;
    }
    if (!S_ISDIR(sb.st_mode)) {
        state_set_err(errstr, errstr_size, "redis data dir %s: not a directory", rc->dir);
        return VG_ERR_IO;
    }
    return spawn(rc, errstr, errstr_size);
}

const char *vg_redis_child_url(const struct vg_redis_child *rc)
{
    return rc->url;
}

int vg_redis_child_pid(const struct vg_redis_child *rc)
{
    return (int)rc->pid;
}

void vg_redis_child_stop(struct vg_redis_child *rc)
{
    if (!rc) {
        return;
    }
    kill_and_reap(rc);
    child_free(rc);
}
