/* core/http.h - the API's HTTP/1.1 server, on libevent bufferevents.
 *
 * Why not evhttp: on Debian's libevent 2.1 evhttp answers an oversized body
 * with its own HTML page (OpenWhisk clients expect a JSON error), offers no
 * hook between headers and body (so a body limit cannot depend on the
 * route), no connection cap, and no notice when a client hangs up on a
 * request whose reply is still pending (libevent issue #997). This server
 * does those four things and nothing more: keep-alive, Content-Length and
 * chunked bodies, `Expect: 100-continue`, one request in flight per
 * connection (pipelined requests wait their turn).
 *
 * Loop thread only. A request is handed to the handler once its body is
 * read; the handler answers with http_reply() now or later. Every request
 * gets exactly one http_reply(), which also frees it. If the client goes
 * away first the request stays valid, http_req_is_gone() turns true, the
 * gone callback (if set) runs once, and the eventual reply is discarded. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "wisp.h"

struct event_base;
struct tls_server;
struct http_server;
struct http_req;

struct http_server_cfg {
    size_t max_header_bytes; /* request line + headers; beyond: 431 */
    size_t max_body_bytes;   /* default body bound; beyond: 413 */
    unsigned max_conns;      /* beyond: 503 and close */
    unsigned idle_timeout_s; /* idle keep-alive bound; a request head, begun, must be whole
                              * within it (408); a body or reply that does not move for it
                              * closes the connection */
    size_t max_held_bytes;   /* replies waiting in the output of clients that do not read
                              * them; beyond, the oldest that have not moved are dropped
                              * and their connections closed. 0: HTTP_HELD_DEFAULT */
    struct tls_server *tls;  /* NULL: plain HTTP; else borrowed for the server's life */
};

/* Called once the headers are in: returns the body bound for this request
 * (0 means the server default). Must not reply. */
typedef size_t http_body_limit_fn(void *ctx, const struct http_req *req);
/* Called once per request with its body read. */
typedef void http_handler_fn(void *ctx, struct http_req *req);
/* Builds the body of the server's own error replies (400, 413, 431, 503)
 * into buf; returns its length. */
typedef size_t http_error_body_fn(void *ctx, int status, const char *msg, char *buf, size_t cap);
typedef void http_gone_fn(void *arg);

struct http_callbacks {
    http_body_limit_fn *body_limit;
    http_handler_fn *handle;
    http_error_body_fn *error_body;
    void *ctx;
};

/* Binds host:port (port 0: any free port, reported in *bound_port).
 * 0 or -errno with err set. */
int http_server_start(struct event_base *base, const struct http_server_cfg *cfg,
                      const char *host, unsigned port, const struct http_callbacks *cbs,
                      struct http_server **out, unsigned *bound_port, struct wisp_err *err)
    WISP_MUST_CHECK;
/* Stops accepting; connections already open go on. */
void http_server_stop_listening(struct http_server *s);
/* Requests handed to the handler and not yet replied to, plus replies
 * queued and not yet written out (a drain waits for both). */
unsigned http_server_pending(const struct http_server *s);
#define HTTP_HELD_DEFAULT ((size_t)32 << 20)

/* Why the server turned a client away on its own: an error reply of its
 * own, then a close, or a close alone. */
enum http_refusal {
    HTTP_REFUSE_BAD_REQUEST,    /* 400: a malformed head or chunked body */
    HTTP_REFUSE_HEAD_TOO_LARGE, /* 431: head or trailer past max_header_bytes, too many fields */
    HTTP_REFUSE_BODY_TOO_LARGE, /* 413 */
    HTTP_REFUSE_UNSUPPORTED,    /* 501, 505: a transfer coding or version not spoken here */
    HTTP_REFUSE_NO_MEMORY,      /* 503 */
    HTTP_REFUSE_HEAD_TIMEOUT,   /* 408: a head begun and not whole within idle_timeout_s */
    HTTP_REFUSE_BODY_TIMEOUT,   /* closed: no body bytes for idle_timeout_s */
    HTTP_REFUSE_WRITE_TIMEOUT,  /* closed: the client read nothing of a reply for idle_timeout_s */
    HTTP_REFUSE_OUTPUT_FULL,    /* closed: replies held past max_held_bytes, this one unread */
    HTTP_REFUSE_N
};

struct http_stats {
    unsigned long long requests, by_class[6]; /* by_class[2] counts 2xx replies, ... */
    unsigned long long accepted, refused;     /* connections; refused (503): over max_conns,
                                               * or no file descriptor left */
    unsigned long long accept_errors;         /* accept() failed: EMFILE, ENFILE, ENOMEM, ... */
    unsigned long long refusals[HTTP_REFUSE_N];
    unsigned long long held_bytes;            /* reply bytes waiting for clients now */
    unsigned open;                            /* connections open now */
};
void http_server_stats(const struct http_server *s, struct http_stats *out);

/* Closes every connection and frees the server. Requests still pending are
 * marked gone; their replies are discarded and free them (the server's
 * memory goes with the last of them, so a late reply is still safe). */
void http_server_free(struct http_server *s);

const char *http_req_method(const struct http_req *r);
/* Percent-encoded path without the query, e.g. "/api/v1/namespaces/_/actions". */
const char *http_req_path(const struct http_req *r);
/* The client's address ("127.0.0.1", "::1"); "?" once it hung up. */
const char *http_req_peer(const struct http_req *r);
/* Raw query string without '?', or "" when none. */
const char *http_req_query(const struct http_req *r);
/* Case-insensitive header lookup; NULL when absent. */
const char *http_req_header(const struct http_req *r, const char *name);
/* The body (NUL-terminated for convenience), len may be 0. */
const char *http_req_body(const struct http_req *r, size_t *len);
/* Calls fn for each request header, in the order they came. */
void http_req_each_header(const struct http_req *r,
                          void (*fn)(void *arg, const char *name, const char *value), void *arg);
bool http_req_is_gone(const struct http_req *r);
void http_req_on_gone(struct http_req *r, http_gone_fn *fn, void *arg);

/* Leaves the server's default CORS headers (Access-Control-Allow-Origin: *
 * and the API's methods and headers) out of the reply: the handler adds its
 * own, or none (a web action that answers CORS itself). */
void http_req_own_cors(struct http_req *r);
/* Adds a response header (copied); before http_reply only. */
int http_req_add_header(struct http_req *r, const char *name, const char *value) WISP_MUST_CHECK;
/* Sends the reply and frees r. body may be NULL when len is 0. */
void http_reply(struct http_req *r, int status, const char *content_type, const char *body,
                size_t len);

const char *http_status_text(int status);

/* ==== fuzz entry points ==============================================
 * No socket and no event loop; for tests/fuzz and the unit tests. */

/* Parses one request head (request line + headers): 0, or the HTTP status
 * the server answers it with. */
int http_fuzz_one(const unsigned char *data, size_t len);
/* A server with one connection and no socket. Bytes given to
 * http_fuzz_feed() go through the connection's state machine as bytes
 * read from a client do (heads, Content-Length and chunked bodies,
 * trailers, pipelined requests, the server's own error replies); a reply
 * counts as written out the moment it is made. cbs as for
 * http_server_start(): handle() runs for every request, and its reply may
 * come at once or later, between feeds. 0 or -ENOMEM; free the server with
 * http_server_free() (a request still pending is then marked gone). */
int http_fuzz_server(const struct http_callbacks *cbs, size_t max_header_bytes,
                     size_t max_body_bytes, struct http_server **out) WISP_MUST_CHECK;
/* 1 while the connection is open, 0 once the server has closed it (after
 * an error reply or Connection: close; later bytes are dropped), -ENOMEM. */
int http_fuzz_feed(struct http_server *s, const void *data, size_t len);
