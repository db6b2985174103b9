/*
 * Shared test helpers: bounded waits scaled by VIGIL_TEST_TIMEOUT_SCALE,
 * temp dirs, files, child processes.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

int vg_test_timeout(int timeout_ms)
{
    const char *s = getenv("VIGIL_TEST_TIMEOUT_SCALE");
    int64_t scale = 1;
    if (s && vg_parse_i64(s, &scale) && scale > 0) {
        return (int)(timeout_ms * scale);
    }
    return timeout_ms;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

bool vg_test_wait_for(bool (*pred)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = vg_mono_ms() + vg_test_timeout(timeout_ms);
    for (;;) {
        if (pred(arg)) {
            return true;
        }
        if (vg_mono_ms() >= deadline) {
            return pred(arg);
        }
        sleep_ms(10);
    }
}

char *vg_test_mkdtemp(const char *name)
{
    const char *tmp = getenv("TMPDIR");
    char *path =
        vg_asprintf("%s/vigil-%s-%d-XXXXXX", tmp && *tmp ? tmp : "/tmp", name, (int)getpid());
    if (!mkdtemp(path)) {
        fprintf(stderr, "mkdtemp %s: %s\n", path, strerror(errno));
        abort();
    }
    return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void vg_test_rmrf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bool vg_test_write_file(const char *path, const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    bool ok;
    if (!fp) {
        return false;
    }
    ok = fwrite(data, 1, len, fp) == len;
    return fclose(fp) == 0 && ok;
}

char *vg_test_read_file(const char *path, size_t *len_out)
{
    FILE *fp = fopen(path, "rb");
    struct vg_buf b = {0};
    char chunk[8192];
    size_t n;
    if (!fp) {
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        vg_buf_append(&b, chunk, n);
    }
    fclose(fp);
    if (len_out) {
        *len_out = b.len;
    }
    return vg_buf_steal(&b);
}

static void redirect(const char *path, int fd)
{
    int f;
    if (!path) {
        return;
    }
    f = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (f < 0) {
        _exit(126);
    }
    dup2(f, fd);
    close(f);
}

pid_t vg_test_spawn(char *const argv[], const char *stdout_path, const char *stderr_path)
{
    pid_t pid;
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        redirect(stdout_path, 1);
        redirect(stderr_path, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int exit_code(int status)
{
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

int vg_test_run(char *const argv[], char **out, char **err)
{
    char *dir = vg_test_mkdtemp("run");
    char *out_path = vg_asprintf("%s/out", dir);
    char *err_path = vg_asprintf("%s/err", dir);
    int status = 0;
    pid_t pid = vg_test_spawn(argv, out_path, err_path);
    if (pid < 0) {
        status = -1;
    } else {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        status = exit_code(status);
    }
    if (out) {
        *out = vg_test_read_file(out_path, NULL);
        if (!*out) {
            *out = vg_strdup("");
        }
    }
    if (err) {
        *err = vg_test_read_file(err_path, NULL);
        if (!*err) {
            *err = vg_strdup("");
        }
    }
    vg_test_rmrf(dir);
    free(out_path);
    free(err_path);
    free(dir);
    return status;
}

int vg_test_stop(pid_t pid, int sig, int timeout_ms)
{
    int status = 0;
    int64_t deadline;
    if (pid <= 0) {
        return -1;
    }
    kill(pid, sig);
    deadline = vg_mono_ms() + vg_test_timeout(timeout_ms);
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return exit_code(status);
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (vg_mono_ms() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            return exit_code(status);
        }
        sleep_ms(10);
    }
}

const char *vg_test_vigil_bin(void)
{
    const char *bin = getenv("VIGIL_BIN");
    if (!bin || !*bin) {
        fprintf(stderr, "VIGIL_BIN is not set (ctest sets it)\n");
        abort();
    }
    return bin;
}

char *vg_test_write_tmp(const char *name, const char *text)
{
    char *path = vg_asprintf("/tmp/vigil-%s-XXXXXX", name);
    int fd = mkstemp(path);
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;

    if (!fp) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        free(path);
        return NULL;
    }
    fputs(text, fp);
    fclose(fp);
    return path;
}

bool vg_test_seed(unsigned *seed)
{
    const char *env = getenv("VIGIL_TEST_SEED");

    *seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (env && *env) {
        int64_t v;

        if (!vg_parse_i64(env, &v)) {
            fprintf(stderr, "VIGIL_TEST_SEED=%s is not a number\n", env);
            return false;
        }
        *seed = (unsigned)v;
    }
    fprintf(stderr, "seed %u (VIGIL_TEST_SEED=%u to replay)\n", *seed, *seed);
    return true;
}

void vg_test_no_proxy(void)
{
    static const char *const names[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                        "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        unsetenv(names[i]);
    }
}

int vg_test_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}
