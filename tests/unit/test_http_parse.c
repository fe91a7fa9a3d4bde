/* tests/unit/test_http_parse.c - the HTTP request head parser through its
 * socket-free entry point http_fuzz_one(): 0 for a head the server takes,
 * else the HTTP status it answers with; and the connection machine (bodies,
 * chunks, trailers, pipelining) through http_fuzz_server(). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http.h"

/* Parses text from an exact-size heap copy (so ASan sees over-reads). */
static int parse(const char *text)
{
    size_t len = strlen(text);
    unsigned char *p = malloc(len ? len : 1);
    memcpy(p, text, len);
    int rc = http_fuzz_one(p, len);
    free(p);
    return rc;
}

struct row {
    const char *head;
    int status;
};

static void run_rows(const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = parse(rows[i].head);
        if (rc != rows[i].status) {
            fprintf(stderr, "  row %zu: got %d, want %d for:\n", i, rc, rows[i].status);
            for (const char *c = rows[i].head; *c; c++) {
                if (*c == '\r')
                    fputs("\\r", stderr);
                else if (*c == '\n')
                    fputs("\\n\n", stderr);
                else
                    fputc(*c, stderr);
            }
            fputc('\n', stderr);
        }
        CHECK_EQ_INT(rc, rows[i].status);
    }
}

static void http_parse_accepts_valid_heads(void)
{
    const struct row rows[] = {
        {"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 0},
        {"GET /api/v1/namespaces/_/actions?limit=30&skip=0 HTTP/1.1\r\n"
         "Host: 127.0.0.1:3233\r\nAuthorization: Basic YTpi\r\nAccept: application/json\r\n"
         "User-Agent: test\r\n\r\n",
         0},
        {"POST /api/v1/namespaces/_/actions/a?blocking=true HTTP/1.1\r\nHost: h\r\n"
         "Content-Type: application/json\r\nContent-Length: 17\r\n\r\n",
         0},
        {"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 0},
        {"PUT /x HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\n\r\n", 0},
        {"DELETE /a%20b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0},
        {"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0},
        {"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0},
        {"POST /x HTTP/1.1\r\nContent-Length: 999999999999999999\r\n\r\n", 0},
        {"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nX-Empty:\r\nX-Spaces:    \t \r\nX-Tab:\tv\t\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nX-Obs: caf\xc3\xa9\r\n\r\n", 0},
        {"PATCH /~user/!$&'()*+,;=:@ HTTP/1.1\r\nX!#$%&'*+-.^_`|~: ok\r\n\r\n", 0},
        {"M-SEARCH / HTTP/1.1\r\n\r\n", 0},
    };
    run_rows(rows, WISP_ARRAY_LEN(rows));
}

static void http_parse_rejects_bad_request_lines(void)
{
    const struct row rows[] = {
        {"", 400},
        {"\r\n\r\n", 400},
        {"GET / HTTP/1.1", 400},               /* no CRLF at all */
        {"GET / HTTP/1.1\n\n", 400},            /* bare LF */
        {"GET /\r\n\r\n", 400},                 /* HTTP/0.9 style */
        {"GET\r\n\r\n", 400},
        {" / HTTP/1.1\r\n\r\n", 400},           /* empty method */
        {"GET  / HTTP/1.1\r\n\r\n", 400},       /* two spaces */
        {"GET x HTTP/1.1\r\n\r\n", 400},        /* target not origin-form */
        {"GET / FTP/1.1\r\n\r\n", 400},
        {"GET / http/1.1\r\n\r\n", 400},
        {"G(T / HTTP/1.1\r\n\r\n", 400},        /* not a token */
        {"GET /a\x7f HTTP/1.1\r\n\r\n", 400},   /* DEL in target */
        {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400}, /* raw non-ASCII in target */
        {"GET /a\tb HTTP/1.1\r\n\r\n", 400},
    };
    run_rows(rows, WISP_ARRAY_LEN(rows));
}

static void http_parse_rejects_unsupported_versions_with_505(void)
{
    const struct row rows[] = {
        {"GET / HTTP/2.0\r\n\r\n", 505},
        {"GET / HTTP/2\r\n\r\n", 505},
        {"GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},
        {"GET / HTTP/0.9\r\n\r\n", 505},
        {"GET / HTTP/1.10\r\n\r\n", 505},
    };
    run_rows(rows, WISP_ARRAY_LEN(rows));
}

static void http_parse_framing_errors(void)
{
    const struct row rows[] = {
        {"PUT /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"PUT /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"PUT /x HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501},
        {"PUT /x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 7\r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nContent-Length: 5a\r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nContent-Length: \r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 400},
    };
    run_rows(rows, WISP_ARRAY_LEN(rows));
}

static void http_parse_header_field_errors(void)
{
    const struct row rows[] = {
        {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n: novalue\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n", 400},   /* bare LF inside a line */
        {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},       /* bare CR in a value */
        {"GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", 400},      /* control character */
        {"GET / HTTP/1.1\r\nX(y): a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a", 400},               /* unterminated header line */
    };
    run_rows(rows, WISP_ARRAY_LEN(rows));
}

static char *head_with_headers(int n)
{
    size_t cap = 64 + (size_t)n * 32;
    char *h = malloc(cap);
    size_t len = (size_t)snprintf(h, cap, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(h + len, cap - len, "X-H%d: v%d\r\n", i, i);
    snprintf(h + len, cap - len, "\r\n");
    return h;
}

static void http_parse_header_count_limit_is_431(void)
{
    char *h = head_with_headers(64);
    CHECK_EQ_INT(parse(h), 0);
    free(h);
    h = head_with_headers(65);
    CHECK_EQ_INT(parse(h), 431);
    free(h);
    h = head_with_headers(500);
    CHECK_EQ_INT(parse(h), 431);
    free(h);
}

static void http_parse_stops_at_nul(void)
{
    /* the fuzz entry parses up to the first NUL, like a C string */
    static const unsigned char with_nul[] = "GET / HTTP/1.1\r\n\r\n\0garbage \x01\x02";
    CHECK_EQ_INT(http_fuzz_one(with_nul, sizeof with_nul - 1), 0);
    static const unsigned char nul_in_line[] = "GET /\0 HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(http_fuzz_one(nul_in_line, sizeof nul_in_line - 1), 400);
    CHECK_EQ_INT(http_fuzz_one((const unsigned char *)"", 0), 400);
}

static void http_parse_random_bytes_never_crash(void)
{
    uint64_t x = 0x243f6a8885a308d3ull;
    static const char *pieces[] = {"GET", "POST", " ", "/", "/a?b=c", "HTTP/1.1", "HTTP/1.0",
                                   "HTTP/2.0", "\r\n", "\r", "\n", ":", ": ", "Host",
                                   "Content-Length", "Transfer-Encoding", "chunked", "gzip",
                                   "Connection", "close", "Expect", "100-continue", "5", "-1",
                                   "\t", "\x01", "\xff", "x"};
    char buf[1024];
    for (int it = 0; it < 5000; it++) {
        size_t len = 0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int n = (int)(x % 60);
        for (int i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (it % 3 == 0) { /* raw bytes */
                if (len < sizeof buf)
                    buf[len++] = (char)(x >> 24);
                continue;
            }
            const char *p = pieces[(x >> 20) % WISP_ARRAY_LEN(pieces)];
            size_t pl = strlen(p);
            if (len + pl > sizeof buf)
                break;
            memcpy(buf + len, p, pl);
            len += pl;
        }
        unsigned char *copy = malloc(len ? len : 1);
        memcpy(copy, buf, len);
        int rc = http_fuzz_one(copy, len);
        CHECK(rc == 0 || rc == 400 || rc == 431 || rc == 501 || rc == 505);
        free(copy);
    }
}

/* ---- the connection machine (http_fuzz_server) ------------------------ */

struct conn_log {
    int handled, errors, last_error;
    char paths[256];
    char body[256];
    struct http_req *held;
};

static void log_handle(void *ctx, struct http_req *req)
{
    struct conn_log *l = ctx;
    l->handled++;
    snprintf(l->paths + strlen(l->paths), sizeof l->paths - strlen(l->paths), "%s ",
             http_req_path(req));
    size_t n;
    const char *b = http_req_body(req, &n);
    snprintf(l->body, sizeof l->body, "%.*s", (int)n, b);
    if (strcmp(http_req_path(req), "/hold") == 0) {
        l->held = req;
        return;
    }
    http_reply(req, 200, NULL, NULL, 0);
}

static size_t log_error(void *ctx, int status, const char *msg, char *buf, size_t cap)
{
    (void)msg;
    struct conn_log *l = ctx;
    l->errors++;
    l->last_error = status;
    return (size_t)snprintf(buf, cap, "{}");
}

/* Feeds text in reads of step bytes (0: one read); 1 while open. */
static int feed(struct conn_log *l, const char *text, size_t step)
{
    struct http_callbacks cbs = {NULL, log_handle, log_error, l};
    struct http_server *s;
    memset(l, 0, sizeof *l);
    if (http_fuzz_server(&cbs, 1024, 4096, &s) < 0)
        return -1;
    size_t len = strlen(text), off = 0;
    int open = 1;
    do {
        size_t n = step && len - off > step ? step : len - off;
        open = http_fuzz_feed(s, text + off, n);
        off += n;
    } while (open == 1 && off < len);
    http_server_free(s);
    if (l->held)
        http_reply(l->held, 200, NULL, NULL, 0); /* after the server: must be safe */
    return open;
}

/* issue 16: a handler that replied at once left pipelined requests in the
 * buffer until more bytes came (none would: the client waits) */
static void http_conn_answers_every_pipelined_request(void)
{
    struct conn_log l;
    const char *three = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(feed(&l, three, 0), 1);
    CHECK_EQ_INT(l.handled, 3);
    CHECK_STREQ(l.paths, "/a /b /c ");
    CHECK_EQ_INT(feed(&l, three, 5), 1);
    CHECK_EQ_INT(l.handled, 3);
}

static void http_conn_reads_length_and_chunked_bodies(void)
{
    struct conn_log l;
    CHECK_EQ_INT(feed(&l, "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /y HTTP/1.1\r\n\r\n", 0),
                 1);
    CHECK_EQ_INT(l.handled, 2);
    CHECK_EQ_INT(feed(&l,
                      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5;name=value\r\nhello\r\n6 ;x\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
                      3),
                 1);
    CHECK_EQ_INT(l.handled, 1);
    CHECK_STREQ(l.body, "hello world");
    CHECK_EQ_INT(l.errors, 0);
}

/* issue 16: strtoull took a sign, blanks and 0x; a bare LF in an
 * extension is a line end to other parsers */
static void http_conn_refuses_loose_chunk_sizes(void)
{
    static const char *const bad[] = {"+5", "-0", " 5", "0x5", "5;a\nb", "g", ";x", "5\x01"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        char req[256];
        snprintf(req, sizeof req,
                 "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%s\r\nhello\r\n0\r\n\r\n",
                 bad[i]);
        struct conn_log l;
        CHECK_EQ_INT(feed(&l, req, 0), 0);
        CHECK_EQ_INT(l.handled, 0);
        CHECK_EQ_INT(l.last_error, 400);
    }
}

/* issue 16: a chunk-size line over the bound was refused when it came in
 * pieces and taken when it came in one read */
static void http_conn_chunk_line_bound_does_not_depend_on_reads(void)
{
    char req[2048];
    int n = snprintf(req, sizeof req, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    memset(req + n, '0', 1030);
    snprintf(req + n + 1030, sizeof req - (size_t)n - 1030, "5\r\nhello\r\n0\r\n\r\n");
    struct conn_log whole, split;
    CHECK_EQ_INT(feed(&whole, req, 0), 0);
    CHECK_EQ_INT(feed(&split, req, 7), 0);
    CHECK_EQ_INT(whole.last_error, 400);
    CHECK_EQ_INT(split.last_error, 400);
}

/* issue 16: trailer lines were read without end */
static void http_conn_bounds_trailers(void)
{
    char req[4096];
    size_t n = (size_t)snprintf(req, sizeof req,
                                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
    for (int i = 0; i < 12; i++) /* 12 * 102 bytes > the 1024-byte head bound */
        n += (size_t)snprintf(req + n, sizeof req - n, "X-T: %096d\r\n", i);
    snprintf(req + n, sizeof req - n, "\r\n");
    struct conn_log l;
    CHECK_EQ_INT(feed(&l, req, 0), 0);
    CHECK_EQ_INT(l.handled, 0);
    CHECK_EQ_INT(l.last_error, 431);
}

/* issue 16: http_reply() on a request the server had marked gone in
 * http_server_free() used the freed server */
static void http_conn_reply_after_server_free_is_safe(void)
{
    struct conn_log l;
    CHECK_EQ_INT(feed(&l, "GET /hold HTTP/1.1\r\n\r\nGET /never HTTP/1.1\r\n\r\n", 0), 1);
    CHECK_EQ_INT(l.handled, 1);
}

static const struct check_test tests[] = {
    {"http_parse_accepts_valid_heads", http_parse_accepts_valid_heads},
    {"http_parse_rejects_bad_request_lines", http_parse_rejects_bad_request_lines},
    {"http_parse_rejects_unsupported_versions_with_505",
     http_parse_rejects_unsupported_versions_with_505},
    {"http_parse_framing_errors", http_parse_framing_errors},
    {"http_parse_header_field_errors", http_parse_header_field_errors},
    {"http_parse_header_count_limit_is_431", http_parse_header_count_limit_is_431},
    {"http_parse_stops_at_nul", http_parse_stops_at_nul},
    {"http_parse_random_bytes_never_crash", http_parse_random_bytes_never_crash},
    {"http_conn_answers_every_pipelined_request", http_conn_answers_every_pipelined_request},
    {"http_conn_reads_length_and_chunked_bodies", http_conn_reads_length_and_chunked_bodies},
    {"http_conn_refuses_loose_chunk_sizes", http_conn_refuses_loose_chunk_sizes},
    {"http_conn_chunk_line_bound_does_not_depend_on_reads",
     http_conn_chunk_line_bound_does_not_depend_on_reads},
    {"http_conn_bounds_trailers", http_conn_bounds_trailers},
    {"http_conn_reply_after_server_free_is_safe", http_conn_reply_after_server_free_is_safe},
};

CHECK_MAIN(tests)
