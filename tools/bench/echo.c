/* echo: an OpenWhisk actionloop echo action in C (the warm `native` echo the
 * benchmark invokes). It speaks the unmodified actionloop protocol:
 *
 *   - on start, if __OW_WAIT_FOR_ACK is non-empty, write {"ok":true}\n to fd 3;
 *   - then for each line on stdin (one JSON object, arbitrarily long), write
 *     the object value of its top-level "value" key followed by "\n" to fd 3
 *     in one write(), and flush stdout/stderr;
 *   - exit 0 on EOF.
 *
 * No JSON library: a small scanner that knows strings (with escapes) and
 * nesting finds the top-level "value" member. If the line is not an object
 * or "value" is missing or not an object, the result is {}.
 *
 *   cc -O2 echo.c -o echo
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OUT_FD 3

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* p at the opening quote; returns just past the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            if (++p >= end)
                return NULL;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* p at the first byte of a value; returns just past it, or NULL. */
static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                if (!(p = skip_string(p, end)))
                    return NULL;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    /* number, true, false, null: up to a delimiter */
    const char *s = p;
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\r' && *p != '\n')
        p++;
    return p > s ? p : NULL;
}

/* Finds the top-level "value" object in [p, end); sets *vs and *ve. */
static int find_value(const char *p, const char *end, const char **vs, const char **ve)
{
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return -1;
    while (p < end) {
        if (*p != '"')
            return -1;
        const char *ks = p + 1, *ke = skip_string(p, end);
        if (!ke)
            return -1;
        size_t klen = (size_t)(ke - 1 - ks);
        p = skip_ws(ke, end);
        if (p >= end || *p != ':')
            return -1;
        p = skip_ws(p + 1, end);
        const char *s = p, *e = skip_value(p, end);
        if (!e)
            return -1;
        if (klen == 5 && memcmp(ks, "value", 5) == 0) {
            if (*s != '{')
                return -1;
            *vs = s;
            *ve = e;
            return 0;
        }
        p = skip_ws(e, end);
        if (p >= end || *p != ',')
            return -1;
        p = skip_ws(p + 1, end);
    }
    return -1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Answers one line [p, nl) where *nl == '\n' (the line's bytes may be
 * overwritten). */
static int answer(char *p, char *nl)
{
    const char *vs, *ve;
    int rc;
    if (find_value(p, nl, &vs, &ve) == 0) {
        /* the byte after the object is still inside the line (at least the
         * closing brace of the message) or the newline itself */
        char *after = (char *)ve;
        *after = '\n';
        rc = write_all(OUT_FD, vs, (size_t)(after + 1 - vs));
    } else {
        rc = write_all(OUT_FD, "{}\n", 3);
    }
    fflush(stdout);
    fflush(stderr);
    return rc;
}

int main(void)
{
    const char *ack = getenv("__OW_WAIT_FOR_ACK");
    if (ack && *ack && write_all(OUT_FD, "{\"ok\":true}\n", 12) < 0)
        return 1;

    size_t cap = 64 * 1024, len = 0, scanned = 0;
    char *buf = malloc(cap);
    if (!buf)
        return 1;
    for (;;) {
        char *nl = memchr(buf + scanned, '\n', len - scanned);
        if (nl) {
            if (answer(buf, nl) < 0)
                return 1;
            size_t used = (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len - used);
            len -= used;
            scanned = 0;
            continue;
        }
        scanned = len;
        if (len == cap) {
            char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb)
                return 1;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(0, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (r == 0) {
            /* a last line without a newline still gets an answer */
            if (len > 0) {
                if (len == cap) {
                    char *nb = realloc(buf, cap + 1);
                    if (!nb)
                        return 1;
                    buf = nb;
                }
                buf[len] = '\n';
                if (answer(buf, buf + len) < 0)
                    return 1;
            }
            return 0;
        }
        len += (size_t)r;
    }
}
