/* feeds/fetch.h - one HTTP/1.1 exchange, over TCP or TLS, for the poll
 * feed: resolve the host (evdns: /etc/hosts, then the resolv.conf name
 * servers), connect to each address in turn until one answers, run the TLS
 * handshake when asked, send the request, read one response with a bounded
 * head and body.
 *
 * Why not evhttp's client: libevent 2.1's evhttp connects through
 * bufferevent_socket_connect, which cannot connect a filtered bufferevent
 * (so no TLS of ours under it), and it tries only the first address a
 * name resolves to ("localhost" may give ::1 first).
 *
 * Loop thread only; nothing blocks. The caller owns the deadline (fetch
 * has none: an unanswered request waits until fetch_free). Callbacks: done
 * runs exactly once per fetch that is not freed first, always from its own
 * loop event (never inside fetch_start), and may call fetch_free. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wisp.h"

struct event_base;
struct evdns_base;
struct evbuffer;
struct tls_client;
struct fetch;

struct fetch_target {
    const char *host; /* a name or an IP literal (IPv6 without brackets) */
    uint16_t port;
    struct tls_client *tls; /* NULL: plain TCP; else TLS verified for host */
    bool head;              /* a HEAD request: the response has no body */
    size_t max_head;        /* status line and headers, bytes */
    size_t max_body;        /* body bytes (after de-chunking) */
};

/* rc: 0 (a response: status, headers, body), -EFBIG (the head or the body
 * over its bound), or another negative code with fetch_error() saying
 * why: -ENOENT (the name did not resolve), -ECONNREFUSED (no address took
 * the connection), -EPROTO (TLS or HTTP failure), -EIO, -ENOMEM. */
typedef void fetch_done_fn(void *arg, int rc);

/* Starts the exchange; request is the complete request (head and body) and
 * is drained. dns resolves host (an IP literal never reaches a name
 * server). 0 with *out, or -ENOMEM. */
int fetch_start(struct event_base *base, struct evdns_base *dns, const struct fetch_target *t,
                struct evbuffer *request, fetch_done_fn *done, void *arg,
                struct fetch **out) WISP_MUST_CHECK;
/* Abandons (or releases) a fetch; done is not called after. NULL is fine. */
void fetch_free(struct fetch *f);

/* After done: the status code (0 unless rc was 0). */
int fetch_status(const struct fetch *f);
/* After done: the first header called name (any case), or NULL. */
const char *fetch_header(const struct fetch *f, const char *name);
/* After done: the body (the fetch keeps it; the caller may drain it). */
struct evbuffer *fetch_body(struct fetch *f);
/* After done with rc < 0: one line for a status. */
const char *fetch_error(const struct fetch *f);
/* What it is doing now ("resolving example.com", "connecting to ...",
 * "in the TLS handshake", "waiting for the response", ...), to say
 * where a caller's deadline hit it. */
const char *fetch_stage(const struct fetch *f);

/* ---- fuzz entry points (no socket, no loop; tests/fuzz) ----------------
 * A fetch that has sent its request and reads the response from the bytes
 * fed to it, through the same parser as bytes from the socket (status
 * line, 1xx answers, headers, Content-Length, chunked or close-delimited
 * bodies, the bounds). 0 or -ENOMEM; release with fetch_free(). */
int fetch_fuzz_new(bool head, size_t max_head, size_t max_body, struct fetch **out)
    WISP_MUST_CHECK;
/* Feeds bytes; eof: the server closed the connection after them. 1 once
 * the exchange is over (*rc as done() would get it; the accessors answer
 * then), 0 while it wants more, -ENOMEM. */
int fetch_fuzz_feed(struct fetch *f, const void *data, size_t len, bool eof, int *rc);
