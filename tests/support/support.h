/*
 * Test helpers shared by unit and integration tests: bounded waits
 * (scaled by VIGIL_TEST_TIMEOUT_SCALE), temp dirs, child processes.
 */
#ifndef VIGIL_TEST_SUPPORT_H
#define VIGIL_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct redisReply;

/*
 * A raw command's reply read as a number, and freed: an integer reply (XLEN, EXISTS, HEXISTS,
 * SCARD ...), a string holding a whole number (HGET of a counter), nil as -1, and the count
 * that heads an array (XPENDING's summary). LLONG_MIN, with `what` (the command) and the
 * reply printed, for anything else or no reply (NULL).
 */
long long vg_test_reply_int(struct redisReply *reply, const char *what);

/* timeout_ms * VIGIL_TEST_TIMEOUT_SCALE (default 1). */
int vg_test_timeout(int timeout_ms);
/* Poll `pred(arg)` every 10 ms until true (returns true) or the scaled timeout (false). */
bool vg_test_wait_for(bool (*pred)(void *arg), void *arg, int timeout_ms);
/* A fresh directory under $TMPDIR (or /tmp) named vigil-<name>-<pid>-XXXXXX. Caller frees. */
char *vg_test_mkdtemp(const char *name);
/* rm -rf. */
void vg_test_rmrf(const char *path);
/* Write `len` bytes to a new file at `path`. */
bool vg_test_write_file(const char *path, const char *data, size_t len);
/*
 * A new file /tmp/vigil-<name>-XXXXXX holding `text`; returns its path
 * (caller unlinks and frees), NULL with the reason printed.
 */
char *vg_test_write_tmp(const char *name, const char *text);
/* Read a whole file into a new NUL-terminated heap string; NULL if missing. */
char *vg_test_read_file(const char *path, size_t *len_out);
/*
 * Spawn argv[0] (a path) with argv, stdout and stderr redirected to the
 * given files (NULL: inherit). Returns the pid or -1.
 */
pid_t vg_test_spawn(char *const argv[], const char *stdout_path, const char *stderr_path);
/* Run to completion; returns the exit status (or 128+signal), output captured into *out (heap). */
int vg_test_run(char *const argv[], char **out, char **err);
/* Send `sig`, wait up to timeout_ms, then SIGKILL. Returns the exit status (or 128+signal). */
int vg_test_stop(pid_t pid, int sig, int timeout_ms);
/* Path of the vigil binary under test ($VIGIL_BIN). */
const char *vg_test_vigil_bin(void);

/*
 * The seed of a randomised test: VIGIL_TEST_SEED when set (false when it
 * is not a number), else time ^ pid; printed with how to replay the run.
 */
bool vg_test_seed(unsigned *seed);

/* Requests to 127.0.0.1 must not detour through a proxy from the environment: unset them. */
void vg_test_no_proxy(void);
/* A free loopback TCP port (bound, then released: the window for a clash is tiny); -1. */
int vg_test_free_port(void);

#endif
