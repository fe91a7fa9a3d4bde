/* core/metrics.h - GET /metrics: every module's counters in Prometheus's
 * text format (version 0.0.4), one family per name, each with its TYPE
 * line. Reads the modules' stats functions only; holds no state. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct http_server;
struct store;
struct pool;
struct act;
struct feeds;

/* What is counted; feeds may be NULL (no adapters). */
struct metrics_src {
    const struct http_server *http;
    struct store *st;
    const struct pool *pool;
    const struct act *act;
    const struct feeds *feeds;
    uint64_t auth_failed;    /* requests with a missing or wrong key */
    uint64_t auth_throttled; /* refused (429) past auth-failures-per-minute */
};

/* Writes the text into buf (NUL-terminated) and returns its length; a
 * sample line that does not fit in cap is left out (8 KB holds them all). */
size_t metrics_text(const struct metrics_src *src, char *buf, size_t cap);
