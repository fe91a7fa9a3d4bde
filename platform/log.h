/* platform/log.h - leveled logging to stderr, one line per event:
 *   2026-11-24T15:48:07.123Z info store: opened path=./var map_mb=64
 * The level is checked before the arguments are evaluated. Never log secrets,
 * action code or payloads at info level. Not thread-safe beyond what one
 * fprintf gives; the loop thread is the only caller in wispd. */
#pragma once
#include "wisp.h"

enum wlog_level { WLOG_ERR = 0, WLOG_WARN = 1, WLOG_INFO = 2, WLOG_DEBUG = 3 };

extern enum wlog_level wlog_threshold;

/* Parses "err", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int wlog_parse_level(const char *name, enum wlog_level *out) WISP_MUST_CHECK;
void wlog_emit(enum wlog_level level, const char *module, const char *fmt, ...)
    WISP_PRINTF(3, 4);

#define wlog(level, module, ...)                                                                   \
    do {                                                                                           \
        if ((level) <= wlog_threshold)                                                             \
            wlog_emit((level), (module), __VA_ARGS__);                                             \
    } while (0)
#define wlog_err(module, ...) wlog(WLOG_ERR, module, __VA_ARGS__)
#define wlog_warn(module, ...) wlog(WLOG_WARN, module, __VA_ARGS__)
#define wlog_info(module, ...) wlog(WLOG_INFO, module, __VA_ARGS__)
#define wlog_debug(module, ...) wlog(WLOG_DEBUG, module, __VA_ARGS__)
