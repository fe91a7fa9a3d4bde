/* Fuzz target: the alarm feed's parsers (feeds/cron.c). The input's lines
 * are a cron expression, a timezone and an ISO 8601 date. An expression
 * that parses must have a next time after any moment of this century, and
 * the time after that one must come later still. */
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "fuzz_targets.h"

/* The next line of [*p, end) as a NUL-terminated copy in buf. */
static const char *line(const char **p, const char *end, char *buf, size_t cap)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = (size_t)((nl ? nl : end) - *p);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, *p, n);
    buf[n] = '\0';
    *p = nl ? nl + 1 : end;
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    char expr[512], tz[128], iso[128];
    line(&p, end, expr, sizeof expr);
    line(&p, end, tz, sizeof tz);
    line(&p, end, iso, sizeof iso);
    struct wisp_err err = {0};
    int offset = 0;
    if (cron_parse_tz(tz, &offset, &err) != 0)
        offset = 0;
    int64_t at = 0;
    if (cron_parse_iso(iso, &at) != 0 || at < 946684800000 || at > 4102444800000)
        at = 1764547200000 + (int64_t)size * 1000003; /* 2025-12-01 and on */
    struct cron_expr c;
    if (cron_parse(expr, &c, &err) == 0) {
        int64_t next = cron_next(&c, offset, at);
        if (next <= at || next % 1000 != 0)
            abort();
        if (cron_next(&c, offset, next) <= next)
            abort();
    }
    return 0;
}
