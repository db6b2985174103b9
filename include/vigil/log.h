/*
 * Logging: one line per record on stderr,
 *   2026-11-28T10:00:00.123Z WARN state: message key=value
 * The macros check the level before formatting. DEBUG is enabled per
 * facility (vg_log_enable_debug("consumer,rules")). Thread-safe.
 */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/err.h"

enum vg_log_level {
    VG_LOG_LEVEL_ERROR = 0,
    VG_LOG_LEVEL_WARN,
    VG_LOG_LEVEL_INFO,
    VG_LOG_LEVEL_DEBUG
};

void vg_log(enum vg_log_level level, const char *facility, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool vg_log_enabled(enum vg_log_level level, const char *facility);
void vg_log_set_level(enum vg_log_level level);
/*
 * JSON lines instead of text (`log.format: json`): one object per record,
 *   {"ts":"2026-11-28T10:00:00.123Z","level":"warn","module":"state","msg":"...","key":"value"}
 * with each key=value pair of the message (key: [a-z_][a-z0-9_.]*; a value
 * runs to the next space, or is "double quoted") also as a key of its own:
 * an integer as a number, anything else as a string. `ts`, `level`,
 * `module` and `msg` are never overwritten.
 */
void vg_log_set_json(bool json);
/* Format one record as vg_log would print it in JSON (no newline); caller frees. */
char *vg_log_format_json(enum vg_log_level level, const char *facility, const char *ts,
                         const char *msg);
/*
 * The facilities the code logs under (the first argument of VG_LOG_*),
 * NULL-terminated: what `--debug` accepts, besides "all".
 */
const char *const *vg_log_facilities(void);
/*
 * Check a `--debug` list: comma-separated facilities, or "all". Returns
 * VG_OK, or VG_ERR_INVALID with errstr naming the first unknown entry, the
 * closest known facility when one is near, and every known one.
 */
vg_err_t vg_log_check_debug(const char *facilities, char *errstr, size_t errstr_size);
/* Enable DEBUG for a list that vg_log_check_debug accepted (comma-separated, or "all"). */
void vg_log_enable_debug(const char *facilities);

#define VG_LOG_AT(lvl, fac, ...)                                                                   \
    do {                                                                                           \
        if (vg_log_enabled((lvl), (fac))) {                                                        \
            vg_log((lvl), (fac), __VA_ARGS__);                                                     \
        }                                                                                          \
    } while (0)
#define VG_LOG_ERROR(fac, ...) VG_LOG_AT(VG_LOG_LEVEL_ERROR, fac, __VA_ARGS__)
#define VG_LOG_WARN(fac, ...) VG_LOG_AT(VG_LOG_LEVEL_WARN, fac, __VA_ARGS__)
#define VG_LOG_INFO(fac, ...) VG_LOG_AT(VG_LOG_LEVEL_INFO, fac, __VA_ARGS__)
#define VG_LOG_DEBUG(fac, ...) VG_LOG_AT(VG_LOG_LEVEL_DEBUG, fac, __VA_ARGS__)

/*
 * Copy `url` into `out` with any password, query string and path tokens
 * replaced by "<redacted>": "redis://:s3cret@host:6379/0" ->
 * "redis://:<redacted>@host:6379/0", "https://hooks.slack.com/services/T/B/X"
 * -> "https://hooks.slack.com/<redacted>". Always NUL-terminates.
 */
void vg_redact_url(const char *url, char *out, size_t out_size);

#endif
