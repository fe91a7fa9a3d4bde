/* Fuzz target: the HTTP server's connection machine (core/http.c) on a
 * connection without a socket (http_fuzz_server): request heads, NUL bytes
 * in them, Content-Length and chunked bodies (extensions, trailers),
 * Expect: 100-continue, pipelined requests, the server's own error replies.
 *
 * The input is what a client sends. It runs twice: in one read, and in
 * reads of 1..16 bytes (the size from the input's last byte). Both runs
 * must hand the handler the same requests and end the same way: a parser
 * whose answer depends on how the bytes were split is one a proxy in front
 * of it can be made to disagree with. A request whose path starts with
 * /defer is answered only after the read that brought it, so bytes also
 * arrive while a reply is pending; one under /hold is never answered
 * before the server is freed (the client-gone path, and a reply that comes
 * after the server). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_targets.h"
#include "http.h"

#define MAX_HEADER 1024
#define MAX_BODY 2048

struct run {
    uint64_t hash; /* FNV-1a of everything the handler and error_body saw */
    unsigned requests, errors;
    struct http_req *deferred, *held;
    int gone;
};

static void mix(struct run *r, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        r->hash ^= b[i];
        r->hash *= 1099511628211u;
    }
    r->hash ^= 0xff; /* a separator, so "ab"+"c" differs from "a"+"bc" */
    r->hash *= 1099511628211u;
}

static void mix_str(struct run *r, const char *s)
{
    mix(r, s, strlen(s));
}

static void each_header(void *arg, const char *name, const char *value)
{
    mix_str(arg, name);
    mix_str(arg, value);
}

static size_t body_limit(void *ctx, const struct http_req *req)
{
    (void)ctx;
    return strncmp(http_req_path(req), "/small", 6) == 0 ? 16 : 0;
}

static void on_gone(void *arg)
{
    ((struct run *)arg)->gone++;
}

static void handle(void *ctx, struct http_req *req)
{
    struct run *r = ctx;
    r->requests++;
    size_t len;
    const char *body = http_req_body(req, &len);
    if (len > MAX_BODY || body[len] != '\0')
        abort(); /* over the bound, or not the C string the handlers rely on */
    mix_str(r, http_req_method(req));
    mix_str(r, http_req_path(req));
    mix_str(r, http_req_query(req));
    http_req_each_header(req, each_header, r);
    mix(r, body, len);
    const char *echo = http_req_header(req, "X-Echo");
    if (echo && http_req_add_header(req, "X-Echo", echo) < 0)
        abort(); /* a value the parser took is one a reply may carry */
    if (strncmp(http_req_path(req), "/hold", 5) == 0) {
        r->held = req; /* one request is out at a time: nothing comes after it */
        http_req_on_gone(req, on_gone, r);
        return;
    }
    if (strncmp(http_req_path(req), "/defer", 6) == 0) {
        r->deferred = req;
        return;
    }
    http_reply(req, 200, "text/plain", "ok", 2);
}

static size_t error_body(void *ctx, int status, const char *msg, char *buf, size_t cap)
{
    struct run *r = ctx;
    r->errors++;
    mix(r, &status, sizeof status);
    mix_str(r, msg);
    return (size_t)snprintf(buf, cap, "{\"error\":\"%d\"}", status);
}

/* The reply lets the next pipelined request in, which may be deferred
 * again: until none is left. */
static void answer_deferred(struct run *r)
{
    while (r->deferred) {
        struct http_req *req = r->deferred;
        r->deferred = NULL;
        http_reply(req, 202, NULL, NULL, 0);
    }
}

static void run(const uint8_t *data, size_t size, size_t step, struct run *r)
{
    struct http_callbacks cbs = {body_limit, handle, error_body, r};
    struct http_server *s;
    memset(r, 0, sizeof *r);
    r->hash = 14695981039346656037u;
    if (http_fuzz_server(&cbs, MAX_HEADER, MAX_BODY, &s) < 0)
        abort();
    int open = 1;
    for (size_t off = 0; off < size && open == 1; off += step) {
        size_t n = size - off < step ? size - off : step;
        /* each read in its own heap block, so ASan sees over-reads */
        unsigned char *p = malloc(n);
        memcpy(p, data + off, n);
        open = http_fuzz_feed(s, p, n);
        free(p);
        if (open == 1) { /* the replies may close it: ask again after them */
            answer_deferred(r);
            open = http_fuzz_feed(s, NULL, 0);
        }
    }
    int status = open;
    mix(r, &status, sizeof status);
    http_server_free(s); /* a held request is marked gone ... */
    if (r->held && r->gone != 1)
        abort();
    if (r->held) /* ... and its reply, after the server, must be safe */
        http_reply(r->held, 200, NULL, NULL, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole, split;
    run(data, size, size ? size : 1, &whole);
    run(data, size, size ? (size_t)data[size - 1] % 16 + 1 : 1, &split);
    if (whole.hash != split.hash || whole.requests != split.requests ||
        whole.errors != split.errors)
        abort();
    return 0;
}
