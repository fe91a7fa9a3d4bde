/* platform/wisp.h - project-wide macros and the error detail struct.
 *
 * Fallible functions return 0 or a negative errno-style code and are marked
 * WISP_MUST_CHECK. Where a human needs to know more (config files, API
 * validation, parsers) they also fill an optional struct wisp_err. */
#pragma once
#include <stdarg.h>
#include <stddef.h>

#define WISP_MUST_CHECK __attribute__((warn_unused_result))
#define WISP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define WISP_UNUSED __attribute__((unused))
#define WISP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct wisp_err {
    int code;      /* negative errno-style code, 0 when unset */
    char msg[240]; /* human-readable, safe to show to the API caller */
};

/* Sets err (when not NULL) and returns code, so callers can write
 * `return wisp_err_set(err, -EINVAL, "...")`. */
int wisp_err_set(struct wisp_err *err, int code, const char *fmt, ...) WISP_PRINTF(3, 4);
