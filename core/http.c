/* core/http.c - see http.h.
 *
 * Each connection is a small state machine driven by conn_drive(): it moves
 * forward on every read until it would have to wait. Only one request per
 * connection is out at a time; bytes of a pipelined next request stay in
 * the input buffer, whose growth is capped by a read watermark.
 *
 * The one thing a newcomer gets wrong: a request outlives its connection
 * when its reply is pending. conn_free() never frees a handed-out request;
 * it only cuts req->conn, and http_reply() frees whatever is left.
 *
 * Bounds against clients that misbehave, each counted (http_stats):
 * connections (max_conns, and no file descriptor left: 503 at accept); a
 * head's bytes (431) and its time (408: the bufferevent's read timeout
 * starts again with every byte, so a head trickled in a byte at a time
 * had no end); a body's bytes (413) and progress; and replies a client
 * does not read: one per connection (the next request is not read before
 * it is written), closed when it does not move for idle_timeout_s, and at
 * most max_held_bytes of them across connections (see hold()).
 *
 * The fuzz entry (http_fuzz_server, at the end) runs this same machine on a
 * connection without a socket: bev is NULL, pin/pout are its two sides, and
 * a reply counts as written the moment it is queued. Every bufferevent call
 * on the request path is therefore behind a c->bev check. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"

#define HTTP_MAX_HEADERS 64
#define LINGER_SECONDS 2
#define ACCEPT_PAUSE_MS 100 /* no fd and no spare to refuse with: accepting rests */
#define CHUNK_LINE_MAX 1024 /* a chunk-size line or a trailer line, without its CRLF */

struct hdr {
    const char *name, *value;
};

enum conn_state {
    C_HEAD,       /* waiting for a complete request head */
    C_BODY,       /* reading a Content-Length body */
    C_CHUNK_SIZE, /* reading a chunk-size line */
    C_CHUNK_DATA, /* reading chunk bytes */
    C_CHUNK_CRLF, /* reading the CRLF after chunk bytes */
    C_TRAILER,    /* reading trailer lines after the last chunk */
    C_HANDLING,   /* request handed to the handler, reply pending */
    C_WRITING,    /* reply queued, waiting for the output to drain */
    C_LINGER,     /* error reply sent, discarding input until EOF */
};

struct conn;

struct http_req {
    struct conn *conn; /* NULL once the client has gone */
    struct http_server *srv;
    char *head;
    const char *method, *path, *query;
    int minor;
    struct hdr hdrs[HTTP_MAX_HEADERS];
    unsigned nhdrs;
    char *body;
    size_t body_len, body_cap;
    bool keep_alive, chunked, expect_continue;
    long long content_length; /* -1: none */
    struct evbuffer *extra;   /* response headers added by the handler */
    bool own_cors;            /* the handler's CORS headers (or none) replace the default set */
    http_gone_fn *gone_fn;
    void *gone_arg;
};

struct conn {
    struct http_server *srv;
    struct bufferevent *bev;
    struct conn *prev, *next;
    enum conn_state state;
    struct http_req *req;
    size_t body_limit, need;
    size_t trailer_room;         /* C_TRAILER: bytes left under max_header_bytes */
    bool close_after, linger;
    struct event *timer;         /* made on first use: the head's deadline in C_HEAD, the
                                  * linger bound in C_LINGER, a close soon once abandoned */
    size_t held;                 /* output counted in srv->held_bytes (hold()) */
    struct conn *hprev, *hnext;  /* on srv's held list, oldest first, while held */
    bool held_on;
    bool in_drive;               /* conn_drive is on the stack */
    struct tls_conn *tls;        /* NULL on plain connections */
    struct evbuffer *pin, *pout; /* plaintext sides of a TLS (or the fuzz) connection */
    char peer[48];               /* the client's address, as text */
};

struct http_server {
    struct event_base *base;
    struct evconnlistener *lev;
    struct http_server_cfg cfg;
    struct http_callbacks cbs;
    struct conn *conns;
    unsigned nconns, pending;
    struct http_stats stats;
    struct timeval idle;
    bool freed; /* http_server_free ran with requests pending: the last reply frees it */
    struct conn *held_head, *held_tail; /* connections whose reply waits for the client */
    size_t max_held;
    int spare_fd; /* kept open to be closed when accept() runs out of fds */
    struct event *accept_pause;
};

static void conn_drive(struct conn *c);
static void conn_free(struct conn *c);

/* The plaintext buffers the HTTP machine reads and writes: the socket's
 * own, or the TLS layer's. */
static struct evbuffer *conn_in(struct conn *c)
{
    return c->pin ? c->pin : bufferevent_get_input(c->bev);
}

static struct evbuffer *conn_out(struct conn *c)
{
    return c->pout ? c->pout : bufferevent_get_output(c->bev);
}

/* Pushes queued plaintext through TLS; -EPROTO when the session broke. */
static int conn_flush(struct conn *c)
{
    if (!c->tls)
        return 0;
    return tls_conn_write(c->tls, c->pout, bufferevent_get_output(c->bev));
}

/* ==== the connection's timer ========================================== */

static void conn_error(struct conn *c, int status, const char *msg);

static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->state != C_HEAD) { /* C_LINGER: its bound, or abandoned */
        conn_free(c);
        return;
    }
    if (c->tls) { /* maybe still in its handshake: nothing to answer through */
        c->srv->stats.refusals[HTTP_REFUSE_HEAD_TIMEOUT]++;
        conn_free(c);
        return;
    }
    conn_error(c, 408, "The request head did not arrive in time.");
}

/* Arms the timer for tv from now. 0 or -ENOMEM. */
static int conn_timer(struct conn *c, const struct timeval *tv)
{
    if (!c->timer && !(c->timer = evtimer_new(c->srv->base, on_conn_timer, c)))
        return -ENOMEM;
    return evtimer_add(c->timer, tv) < 0 ? -ENOMEM : 0;
}

static void conn_timer_stop(struct conn *c)
{
    if (c->timer)
        evtimer_del(c->timer);
}

/* Bytes of a head came and it is not whole yet: from the first of them it
 * has idle_timeout_s as a whole, however they trickle in (the read timeout
 * starts again with every byte). Without a timer the read timeout is what
 * is left. */
static void head_begun(struct conn *c)
{
    if (c->bev && !(c->timer && evtimer_pending(c->timer, NULL)))
        (void)conn_timer(c, &c->srv->idle);
}

/* ==== replies held for clients ======================================== */

static size_t out_len(struct conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev)) +
           (c->pout ? evbuffer_get_length(c->pout) : 0);
}

static void unhold(struct conn *c)
{
    struct http_server *s = c->srv;
    if (!c->held_on)
        return;
    if (c->hprev)
        c->hprev->hnext = c->hnext;
    else
        s->held_head = c->hnext;
    if (c->hnext)
        c->hnext->hprev = c->hprev;
    else
        s->held_tail = c->hprev;
    c->hprev = c->hnext = NULL;
    c->held_on = false;
    s->stats.held_bytes -= c->held;
    c->held = 0;
}

/* Drops what c holds and closes it from the loop soon: the shedding runs
 * inside another connection's reply, with callbacks of c's perhaps on the
 * stack (a handler answering two requests). Its write timeout goes once
 * the timer is armed: in a loop turn late enough for both, it would count
 * the connection a second time (write_timeout) before the timer frees it
 * (seen under ASan on a loaded machine). It stays as the fallback should
 * the timer be refused. */
static void conn_abandon(struct conn *c, enum http_refusal why)
{
    struct timeval soon = {0, 0};
    c->srv->stats.refusals[why]++;
    unhold(c);
    c->state = C_LINGER;
    bufferevent_disable(c->bev, EV_READ);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_drain(out, evbuffer_get_length(out));
    if (c->pout)
        evbuffer_drain(c->pout, evbuffer_get_length(c->pout));
    if (conn_timer(c, &soon) == 0)
        bufferevent_disable(c->bev, EV_WRITE);
}

/* A reply the socket did not take whole waits in c's output, and counts
 * against max_held_bytes until it is written (on_write) or c goes. Past
 * the bound the oldest held replies that have not moved since they were
 * last counted go with their connections (their clients read nothing); a
 * reply that moved is counted again at its new size and kept. The reply
 * just queued always stays: one reply per connection is the floor. */
static void hold(struct conn *c)
{
    struct http_server *s = c->srv;
    if (!c->held_on) {
        c->hprev = s->held_tail;
        if (s->held_tail)
            s->held_tail->hnext = c;
        else
            s->held_head = c;
        s->held_tail = c;
        c->held_on = true;
    }
    s->stats.held_bytes -= c->held;
    c->held = out_len(c);
    s->stats.held_bytes += c->held;
    for (struct conn *h = s->held_head, *next; h && s->stats.held_bytes > s->max_held; h = next) {
        next = h->hnext;
        if (h == c)
            continue;
        size_t now = out_len(h);
        if (now < h->held) { /* its client reads */
            s->stats.held_bytes -= h->held - now;
            h->held = now;
        } else {
            conn_abandon(h, HTTP_REFUSE_OUTPUT_FULL);
        }
    }
}

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

/* ==== request head parsing ============================================ */

static bool is_tchar(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Parses the NUL-terminated head in r->head in place. 0 or an HTTP status. */
static int parse_head(struct http_req *r, size_t len)
{
    char *p = r->head, *end = r->head + len;
    char *eol = strstr(p, "\r\n");
    if (!eol)
        return 400;
    *eol = '\0';
    /* request line: METHOD SP target SP HTTP/1.x */
    char *sp1 = strchr(p, ' ');
    if (!sp1 || sp1 == p)
        return 400;
    *sp1 = '\0';
    for (char *m = p; *m; m++)
        if (!is_tchar((unsigned char)*m))
            return 400;
    r->method = p;
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (!sp2)
        return 400;
    *sp2 = '\0';
    const char *ver = sp2 + 1;
    /* "HTTP/" major ["." minor]: other shapes are malformed (400); a
     * well-formed version other than 1.x is unsupported (505) */
    const char *vn = ver + 5;
    if (strncmp(ver, "HTTP/", 5) != 0 || !isdigit((unsigned char)*vn))
        return 400;
    size_t maj = strspn(vn, "0123456789"), min = 0;
    if (vn[maj] == '.') {
        min = strspn(vn + maj + 1, "0123456789");
        if (min == 0)
            return 400;
    }
    if (vn[maj + (min ? min + 1 : 0)] != '\0')
        return 400;
    if (maj != 1 || vn[0] != '1' || min != 1)
        return 505;
    r->minor = ver[7] - '0';
    if (target[0] != '/')
        return 400;
    for (char *t = target; *t; t++)
        if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
            return 400;
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        r->query = q + 1;
    } else {
        r->query = "";
    }
    r->path = target;
    /* header fields */
    p = eol + 2;
    while (p < end) {
        eol = strstr(p, "\r\n");
        if (!eol)
            return 400;
        *eol = '\0';
        if (eol == p)
            break; /* the empty line */
        char *colon = strchr(p, ':');
        if (!colon || colon == p)
            return 400;
        for (char *n = p; n < colon; n++)
            if (!is_tchar((unsigned char)*n))
                return 400;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            *--ve = '\0';
        for (char *c = v; *c; c++)
            if ((unsigned char)*c < 0x20 && *c != '\t')
                return 400;
        if (r->nhdrs == HTTP_MAX_HEADERS)
            return 431;
        r->hdrs[r->nhdrs].name = p;
        r->hdrs[r->nhdrs++].value = v;
        p = eol + 2;
    }
    /* framing */
    r->content_length = -1;
    const char *cl = NULL, *te = NULL, *conn = NULL, *expect = NULL;
    for (unsigned i = 0; i < r->nhdrs; i++) {
        const char *n = r->hdrs[i].name, *v = r->hdrs[i].value;
        if (strcasecmp(n, "Content-Length") == 0) {
            if (cl && strcmp(cl, v) != 0)
                return 400;
            cl = v;
        } else if (strcasecmp(n, "Transfer-Encoding") == 0) {
            te = v;
        } else if (strcasecmp(n, "Connection") == 0) {
            conn = v;
        } else if (strcasecmp(n, "Expect") == 0) {
            expect = v;
        }
    }
    if (te) {
        if (cl || strcasecmp(te, "chunked") != 0)
            return te && strcasecmp(te, "chunked") != 0 ? 501 : 400;
        r->chunked = true;
    } else if (cl) {
        if (!*cl || strlen(cl) > 18 || strspn(cl, "0123456789") != strlen(cl))
            return 400;
        r->content_length = strtoll(cl, NULL, 10);
    }
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0)
            return 400;
        r->expect_continue = r->minor >= 1;
    }
    r->keep_alive = r->minor >= 1;
    if (conn) {
        if (strcasestr(conn, "close"))
            r->keep_alive = false;
        else if (strcasestr(conn, "keep-alive"))
            r->keep_alive = true;
    }
    return 0;
}

static void req_free(struct http_req *r)
{
    if (!r)
        return;
    if (r->extra)
        evbuffer_free(r->extra);
    free(r->head);
    free(r->body);
    free(r);
}

int http_fuzz_one(const unsigned char *data, size_t len)
{
    struct http_req *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->head = malloc(len + 1);
    if (!r->head) {
        free(r);
        return -ENOMEM;
    }
    memcpy(r->head, data, len);
    r->head[len] = '\0';
    int rc = parse_head(r, strlen(r->head));
    req_free(r);
    return rc;
}

/* ==== accessors ======================================================= */

const char *http_req_method(const struct http_req *r) { return r->method; }
const char *http_req_path(const struct http_req *r) { return r->path; }
const char *http_req_query(const struct http_req *r) { return r->query; }
const char *http_req_peer(const struct http_req *r) { return r->conn ? r->conn->peer : "?"; }
bool http_req_is_gone(const struct http_req *r) { return r->conn == NULL; }

const char *http_req_header(const struct http_req *r, const char *name)
{
    for (unsigned i = 0; i < r->nhdrs; i++)
        if (strcasecmp(r->hdrs[i].name, name) == 0)
            return r->hdrs[i].value;
    return NULL;
}

void http_req_each_header(const struct http_req *r,
                          void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    for (unsigned i = 0; i < r->nhdrs; i++)
        fn(arg, r->hdrs[i].name, r->hdrs[i].value);
}

const char *http_req_body(const struct http_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body ? r->body : "";
}

void http_req_on_gone(struct http_req *r, http_gone_fn *fn, void *arg)
{
    r->gone_fn = fn;
    r->gone_arg = arg;
}

void http_req_own_cors(struct http_req *r)
{
    r->own_cors = true;
}

int http_req_add_header(struct http_req *r, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return -EINVAL;
    if (!r->extra && !(r->extra = evbuffer_new()))
        return -ENOMEM;
    return evbuffer_add_printf(r->extra, "%s: %s\r\n", name, value) < 0 ? -ENOMEM : 0;
}

/* ==== replies ========================================================= */

static void queue_reply(struct conn *c, int status, const char *ctype, const char *body,
                        size_t len, struct evbuffer *extra, bool keep_alive, bool head_only,
                        bool cors_default)
{
    c->srv->stats.requests++;
    c->srv->stats.by_class[status >= 100 && status < 600 ? status / 100 : 0]++;
    struct evbuffer *out = conn_out(c);
    /* Formatted by hand: printf was a visible share of a warm invoke. */
    static const char cors[] =
        "Access-Control-Allow-Origin: *\r\n"
        "Access-Control-Allow-Methods: GET, DELETE, POST, PUT, HEAD\r\n"
        "Access-Control-Allow-Headers: Authorization, Origin, X-Requested-With, "
        "Content-Type, Accept, User-Agent\r\n";
    char num[24];
    if (status < 100 || status > 999)
        status = 500;
    const char *text = http_status_text(status);
    char line[] = {'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', (char)('0' + status / 100),
                   (char)('0' + status / 10 % 10), (char)('0' + status % 10), ' '};
    evbuffer_add(out, line, sizeof line);
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\r\nContent-Length: ", 18);
    size_t nl = sizeof num;
    size_t v = len;
    do {
        num[--nl] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    evbuffer_add(out, num + nl, sizeof num - nl);
    evbuffer_add(out, "\r\n", 2);
    if (cors_default)
        evbuffer_add(out, cors, sizeof cors - 1);
    if (len || ctype) {
        const char *ct = ctype ? ctype : "application/json";
        evbuffer_add(out, "Content-Type: ", 14);
        evbuffer_add(out, ct, strlen(ct));
        evbuffer_add(out, "\r\n", 2);
    }
    if (extra)
        evbuffer_add_buffer(out, extra);
    if (!keep_alive)
        evbuffer_add(out, "Connection: close\r\n", 19);
    evbuffer_add(out, "\r\n", 2);
    if (len && !head_only)
        evbuffer_add(out, body, len);
    c->close_after = !keep_alive;
    c->state = C_WRITING;
    if (conn_flush(c) < 0)
        c->close_after = true;
    if (!c->bev) { /* the fuzz connection: its "socket" takes everything at once */
        evbuffer_drain(out, evbuffer_get_length(out));
        c->state = c->close_after ? C_LINGER : C_HEAD;
        if (c->state == C_HEAD && !c->in_drive)
            conn_drive(c);
        return;
    }
    /* A keep-alive reply that the socket takes whole needs no write event
     * (two epoll_ctl calls and a loop turn saved on the hot path). */
    if (!c->close_after && !c->tls) {
        /* a bufferevent keeps its output's front frozen except while it
         * writes itself (as bufferevent_sock.c does) */
        evbuffer_unfreeze(out, 1);
        int n = evbuffer_write(out, bufferevent_getfd(c->bev));
        evbuffer_freeze(out, 1);
        (void)n; /* an error shows again, and is handled, on the next read */
        if (evbuffer_get_length(out) == 0) {
            c->state = C_HEAD;
            if (!c->in_drive)
                conn_drive(c); /* pipelined requests may be waiting */
            return;
        }
    }
    /* While it waits, only the write timeout: a client taking its time
     * to read a big reply sends nothing meanwhile, and is not idle. */
    bufferevent_set_timeouts(c->bev, NULL, &c->srv->idle);
    bufferevent_enable(c->bev, EV_WRITE);
    hold(c);
}

static enum http_refusal refusal_of(int status)
{
    switch (status) {
    case 408: return HTTP_REFUSE_HEAD_TIMEOUT;
    case 413: return HTTP_REFUSE_BODY_TOO_LARGE;
    case 431: return HTTP_REFUSE_HEAD_TOO_LARGE;
    case 501:
    case 505: return HTTP_REFUSE_UNSUPPORTED;
    case 503: return HTTP_REFUSE_NO_MEMORY;
    default: return HTTP_REFUSE_BAD_REQUEST;
    }
}

/* The server's own error replies; the connection closes after them. */
static void conn_error(struct conn *c, int status, const char *msg)
{
    char body[512];
    size_t len = c->srv->cbs.error_body(c->srv->cbs.ctx, status, msg, body, sizeof body);
    c->srv->stats.refusals[refusal_of(status)]++;
    conn_timer_stop(c); /* a head deadline; the linger bound comes after the reply */
    req_free(c->req);
    c->req = NULL;
    /* Unread request bytes may follow: read and drop them after the reply
     * so the client sees the status instead of a reset. */
    c->linger = true;
    queue_reply(c, status, "application/json", body, len, NULL, false, false, true);
}

void http_reply(struct http_req *r, int status, const char *ctype, const char *body, size_t len)
{
    struct conn *c = r->conn;
    struct http_server *s = r->srv;
    s->pending--;
    if (c) {
        c->req = NULL;
        if (c->bev)
            bufferevent_set_timeouts(c->bev, &c->srv->idle, &c->srv->idle);
        queue_reply(c, status, ctype, body, len, r->extra, r->keep_alive,
                    strcmp(r->method, "HEAD") == 0, !r->own_cors);
    }
    req_free(r);
    if (s->freed && s->pending == 0)
        free(s);
}

/* ==== connection state machine ======================================== */

static void dispatch(struct conn *c)
{
    struct http_req *r = c->req;
    if (!r->body) { /* every handler may treat the body as a C string */
        r->body = calloc(1, 1);
        if (!r->body) {
            conn_error(c, 503, "out of memory");
            return;
        }
    }
    r->body[r->body_len] = '\0';
    c->state = C_HANDLING;
    c->srv->pending++;
    /* A pending reply may take long (a blocking invoke): no read timeout
     * meanwhile; a hang-up still shows as EOF. */
    if (c->bev)
        bufferevent_set_timeouts(c->bev, NULL, &c->srv->idle);
    c->srv->cbs.handle(c->srv->cbs.ctx, r);
}

static bool body_reserve(struct conn *c, size_t more)
{
    struct http_req *r = c->req;
    if (r->body_len + more + 1 <= r->body_cap)
        return true;
    size_t cap = r->body_cap ? r->body_cap : 1024;
    while (cap < r->body_len + more + 1)
        cap *= 2;
    char *b = realloc(r->body, cap);
    if (!b)
        return false;
    r->body = b;
    r->body_cap = cap;
    return true;
}

/* Takes the next request head off in. false when it is not complete yet
 * (nothing happened); true when the connection moved on: a body state, the
 * handler (which may have replied already), or an error reply. */
static bool start_request(struct conn *c, struct evbuffer *in)
{
    struct http_server *s = c->srv;
    /* Tolerate empty lines before a request line (RFC 9112 2.2). */
    for (;;) {
        unsigned char two[2];
        if (evbuffer_copyout(in, two, 2) == 2 && two[0] == '\r' && two[1] == '\n')
            evbuffer_drain(in, 2);
        else
            break;
    }
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0) {
        if (evbuffer_get_length(in) <= s->cfg.max_header_bytes) {
            head_begun(c); /* empty lines alone count: a trickle of them has no end either */
            return false;
        }
        conn_error(c, 431, "Request header is larger than allowed.");
        return true;
    }
    conn_timer_stop(c); /* the head is whole: its deadline goes */
    size_t hlen = (size_t)end.pos + 4;
    if (hlen > s->cfg.max_header_bytes) {
        conn_error(c, 431, "Request header is larger than allowed.");
        return true;
    }
    struct http_req *r = calloc(1, sizeof *r);
    char *head = malloc(hlen + 1);
    if (!r || !head) {
        free(r);
        free(head);
        conn_error(c, 503, "out of memory");
        return true;
    }
    evbuffer_remove(in, head, hlen);
    head[hlen] = '\0';
    r->head = head;
    r->srv = s;
    r->conn = c;
    c->req = r;
    if (memchr(head, '\0', hlen)) {
        conn_error(c, 400, "The request head contains a NUL byte.");
        return true;
    }
    int status = parse_head(r, hlen);
    if (status) {
        conn_error(c, status, status == 431 ? "Too many request header fields."
                              : status == 505 ? "HTTP version not supported."
                              : status == 501 ? "Transfer encoding not supported."
                                              : "The request could not be parsed.");
        return true;
    }
    size_t limit = s->cbs.body_limit ? s->cbs.body_limit(s->cbs.ctx, r) : 0;
    c->body_limit = limit ? limit : s->cfg.max_body_bytes;
    if (r->content_length >= 0 && (unsigned long long)r->content_length > c->body_limit) {
        char msg[160];
        snprintf(msg, sizeof msg, "Request larger than allowed: %lld > %zu bytes.",
                 r->content_length, c->body_limit);
        conn_error(c, 413, msg);
        return true;
    }
    if (r->expect_continue) {
        evbuffer_add(conn_out(c), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        if (conn_flush(c) < 0) { /* a broken TLS session: the next read closes it */
            c->state = C_LINGER;
            return true;
        }
        if (c->bev)
            bufferevent_enable(c->bev, EV_WRITE);
    }
    if (r->chunked) {
        c->state = C_CHUNK_SIZE;
    } else if (r->content_length > 0) {
        c->need = (size_t)r->content_length;
        if (!body_reserve(c, c->need)) {
            conn_error(c, 503, "out of memory");
            return true;
        }
        c->state = C_BODY;
    } else {
        dispatch(c);
    }
    return true;
}

/* A chunk-size or trailer line holds no control characters but HTAB: a
 * bare LF or CR (or a NUL) in one is read as a line end by other parsers,
 * and a proxy in front would then see different chunks (RFC 9112 7.1). */
static bool chunk_line_ok(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

/* chunk-size [chunk-ext]: 1*HEXDIG, then the end of the line, or ';' or
 * blanks before an extension (whose content is not ours to check).
 * strtoull would also take a sign, leading blanks and "0x", which a proxy
 * in front may read differently. */
static bool chunk_size(const char *line, unsigned long long *out)
{
    unsigned long long v = 0;
    size_t i = 0;
    for (; isxdigit((unsigned char)line[i]); i++) {
        if (v >> 60)
            return false; /* beyond 64 bits; any body bound refuses far less */
        int ch = tolower((unsigned char)line[i]);
        v = v * 16 + (unsigned)(ch <= '9' ? ch - '0' : ch - 'a' + 10);
    }
    if (i == 0 || (line[i] && line[i] != ';' && line[i] != ' ' && line[i] != '\t'))
        return false;
    *out = v;
    return true;
}

static void conn_drive_loop(struct conn *c);

static void conn_drive(struct conn *c)
{
    c->in_drive = true;
    conn_drive_loop(c);
    c->in_drive = false;
}

static void conn_drive_loop(struct conn *c)
{
    struct evbuffer *in = conn_in(c);
    /* Every case returns when it must wait for bytes and breaks when it
     * made progress. */
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        switch (c->state) {
        case C_HEAD:
            if (avail == 0)
                return;
            /* A handler that replied at once leaves the state at C_HEAD
             * again: go on, pipelined requests may be in the buffer (with
             * no more bytes coming to wake us up for them). */
            if (!start_request(c, in))
                return; /* incomplete head */
            break;
        case C_BODY: {
            size_t n = avail < c->need ? avail : c->need;
            if (n == 0)
                return;
            struct http_req *r = c->req;
            evbuffer_remove(in, r->body + r->body_len, n);
            r->body_len += n;
            c->need -= n;
            if (c->need == 0)
                dispatch(c);
            break;
        }
        case C_CHUNK_SIZE:
        case C_TRAILER: {
            size_t llen;
            char *line = evbuffer_readln(in, &llen, EVBUFFER_EOL_CRLF_STRICT);
            if (!line) {
                /* the same bound whether the line came in one read or
                 * many: its bytes, plus the CR of a CRLF still on its way */
                if (avail > CHUNK_LINE_MAX + 1)
                    conn_error(c, 400, "Malformed chunked body.");
                return;
            }
            unsigned long long sz = 0;
            bool ok = llen <= CHUNK_LINE_MAX && chunk_line_ok(line, llen) &&
                      (c->state == C_TRAILER || chunk_size(line, &sz));
            bool trailer_full = c->state == C_TRAILER && ok && llen + 2 > c->trailer_room;
            free(line);
            if (!ok || trailer_full) {
                conn_error(c, ok ? 431 : 400,
                           ok ? "Request trailer is larger than allowed." : "Malformed chunked body.");
                return;
            }
            if (c->state == C_TRAILER) {
                c->trailer_room -= llen + 2;
                if (llen == 0)
                    dispatch(c);
                break;
            }
            if (sz == 0) {
                c->state = C_TRAILER;
                c->trailer_room = c->srv->cfg.max_header_bytes;
                break;
            }
            if (sz > c->body_limit || c->req->body_len + sz > c->body_limit) {
                char msg[160];
                snprintf(msg, sizeof msg, "Request larger than allowed: %llu > %zu bytes.",
                         (unsigned long long)(c->req->body_len + sz), c->body_limit);
                conn_error(c, 413, msg);
                return;
            }
            if (!body_reserve(c, (size_t)sz)) {
                conn_error(c, 503, "out of memory");
                return;
            }
            c->need = (size_t)sz;
            c->state = C_CHUNK_DATA;
            break;
        }
        case C_CHUNK_DATA: {
            size_t n = avail < c->need ? avail : c->need;
            if (n == 0)
                return;
            struct http_req *r = c->req;
            evbuffer_remove(in, r->body + r->body_len, n);
            r->body_len += n;
            c->need -= n;
            if (c->need == 0)
                c->state = C_CHUNK_CRLF;
            break;
        }
        case C_CHUNK_CRLF: {
            char two[2];
            if (avail < 2)
                return;
            evbuffer_remove(in, two, 2);
            if (two[0] != '\r' || two[1] != '\n') {
                conn_error(c, 400, "Malformed chunked body.");
                return;
            }
            c->state = C_CHUNK_SIZE;
            break;
        }
        case C_LINGER:
            evbuffer_drain(in, avail);
            return;
        case C_HANDLING:
        case C_WRITING:
            return;
        }
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (c->tls) {
        /* While a reply is pending, leave ciphertext unread past a bound so
         * the read watermark holds back a pipelining client. */
        if ((c->state == C_HANDLING || c->state == C_WRITING) &&
            evbuffer_get_length(c->pin) > 65536)
            return;
        int rc = tls_conn_read(c->tls, bufferevent_get_input(bev), c->pin,
                               bufferevent_get_output(bev));
        if (rc != 0) { /* close_notify or a broken session */
            conn_free(c);
            return;
        }
        if (conn_flush(c) < 0) {
            conn_free(c);
            return;
        }
    }
    conn_drive(c);
    /* TLS: a handshake not done, or a record still in pieces, has the
     * head's deadline too (head_begun); a session that is up with nothing
     * pending waits as an idle connection does. */
    if (c->tls && c->state == C_HEAD) {
        if (!tls_conn_ready(c->tls) || evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
            evbuffer_get_length(c->pin) > 0)
            head_begun(c);
        else
            conn_timer_stop(c);
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
        (c->tls && evbuffer_get_length(c->pout) > 0))
        return;
    if (!c->tls)
        bufferevent_disable(bev, EV_WRITE);
    unhold(c);
    if (c->state != C_WRITING)
        return;
    if (c->close_after) {
        if (!c->linger || c->tls) {
            conn_free(c);
            return;
        }
        /* Half-close and drain what the client still sends, for a bound. */
        shutdown(bufferevent_getfd(bev), SHUT_WR);
        c->state = C_LINGER;
        struct timeval tv = {LINGER_SECONDS, 0};
        if (conn_timer(c, &tv) < 0) {
            conn_free(c);
            return;
        }
        conn_drive(c);
        return;
    }
    c->state = C_HEAD;
    bufferevent_set_timeouts(bev, &c->srv->idle, &c->srv->idle);
    conn_drive(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    /* EOF, error or timeout: the connection is over either way. A timeout
     * is counted unless it ended an idle keep-alive connection. */
    enum http_refusal why = HTTP_REFUSE_N;
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_WRITING))
        why = HTTP_REFUSE_WRITE_TIMEOUT;
    else if ((what & BEV_EVENT_TIMEOUT) && c->state != C_HEAD && c->state != C_HANDLING &&
             c->state != C_WRITING && c->state != C_LINGER)
        why = HTTP_REFUSE_BODY_TIMEOUT; /* C_BODY and the chunked states */
    else if ((what & BEV_EVENT_TIMEOUT) && c->state == C_HEAD &&
             evbuffer_get_length(conn_in(c)) > 0)
        why = HTTP_REFUSE_HEAD_TIMEOUT;
    if (why != HTTP_REFUSE_N)
        c->srv->stats.refusals[why]++;
    conn_free(c);
}

static void conn_free(struct conn *c)
{
    struct http_server *s = c->srv;
    struct http_req *r = c->req;
    if (r) {
        if (c->state == C_HANDLING) {
            r->conn = NULL; /* the handler still owns it; its reply frees it */
            if (r->gone_fn)
                r->gone_fn(r->gone_arg);
        } else {
            req_free(r);
        }
    }
    if (c->bev)
        unhold(c);
    if (c->timer)
        event_free(c->timer);
    if (c->bev)
        bufferevent_free(c->bev);
    tls_conn_free(c->tls);
    if (c->pin)
        evbuffer_free(c->pin);
    if (c->pout)
        evbuffer_free(c->pout);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c);
}

/* "192.0.2.1" or "2001:db8::1" (no port: one client, many connections). */
static void peer_text(const struct sockaddr *sa, int salen, char *out, size_t cap)
{
    const void *a = NULL;
    if (sa && sa->sa_family == AF_INET && salen >= (int)sizeof(struct sockaddr_in))
        a = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa && sa->sa_family == AF_INET6 && salen >= (int)sizeof(struct sockaddr_in6))
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!a || !evutil_inet_ntop(sa->sa_family, a, out, cap))
        snprintf(out, cap, "?");
}

/* Answers a connection that will not be served with 503 and closes it. */
static void refuse(struct http_server *s, evutil_socket_t fd, const char *msg, const char *why)
{
    char body[256], head[512];
    size_t len = s->cbs.error_body(s->cbs.ctx, 503, msg, body, sizeof body);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%.*s",
                     len, (int)len, body);
    /* Best effort on a fresh socket with an empty send buffer. */
    ssize_t w = write(fd, head, (size_t)n);
    (void)w;
    evutil_closesocket(fd);
    if (s->stats.refused++ % 1000 == 0) /* rate-limited: one line per 1000 */
        wlog_warn("http", "connection refused: %u open (%s), %llu refused so far", s->nconns, why,
                  s->stats.refused);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http_server *s = arg;
    if (s->lev)
        evconnlistener_enable(s->lev);
}

/* accept() failed for want of a file descriptor or memory. libevent's
 * listener is level-triggered and only warns: the loop spun on the same
 * pending connection at full CPU, writing a log line per turn. The spare
 * fd, closed for a moment, takes the connection so that it is refused
 * with a 503 like any past max_conns; without one, accepting rests for
 * ACCEPT_PAUSE_MS and the connections wait in the backlog meanwhile. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct http_server *s = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (s->stats.accept_errors++ % 1000 == 0)
        wlog_warn("http", "accept: %s (%u connections open, %llu such errors so far)",
                  evutil_socket_error_to_string(e), s->nconns, s->stats.accept_errors);
    if ((e == EMFILE || e == ENFILE) && s->spare_fd >= 0) {
        close(s->spare_fd);
        int fd = accept4(evconnlistener_get_fd(lev), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            refuse(s, fd, "Too many open files.", "no file descriptor left");
        s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && s->spare_fd >= 0)
            return;
    }
    struct timeval pause = {0, ACCEPT_PAUSE_MS * 1000};
    if (s->accept_pause && evtimer_add(s->accept_pause, &pause) == 0)
        evconnlistener_disable(lev);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)lev;
    struct http_server *s = arg;
    if (s->nconns >= s->cfg.max_conns) {
        refuse(s, fd, "Too many connections.", "http-max-conns");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    struct bufferevent *bev =
        c ? bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->srv = s;
    c->bev = bev;
    c->state = C_HEAD;
    peer_text(sa, salen, c->peer, sizeof c->peer);
    if (s->cfg.tls) {
        c->tls = tls_conn_new(s->cfg.tls);
        c->pin = evbuffer_new();
        c->pout = evbuffer_new();
        if (!c->tls || !c->pin || !c->pout) {
            tls_conn_free(c->tls);
            if (c->pin)
                evbuffer_free(c->pin);
            if (c->pout)
                evbuffer_free(c->pout);
            bufferevent_free(bev);
            free(c);
            return;
        }
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->stats.accepted++;
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    bufferevent_set_timeouts(bev, &s->idle, &s->idle);
    /* Bodies are moved out as they arrive; this caps what a pipelining
     * client can park in the input buffer while a reply is pending. */
    size_t hw = s->cfg.max_header_bytes * 2 < 65536 ? 65536 : s->cfg.max_header_bytes * 2;
    bufferevent_setwatermark(bev, EV_READ, 0, hw);
    /* Plain connections write directly and watch for EV_WRITE only while a
     * reply is left over; with it always on, every reply cost two
     * epoll_ctl calls and a loop turn. TLS writes handshake bytes too. */
    bufferevent_disable(bev, EV_WRITE);
    bufferevent_enable(bev, c->tls ? EV_READ | EV_WRITE : EV_READ);
}

int http_server_start(struct event_base *base, const struct http_server_cfg *cfg,
                      const char *host, unsigned port, const struct http_callbacks *cbs,
                      struct http_server **out, unsigned *bound_port, struct wisp_err *err)
{
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    char spec[300];
    const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    /* libevent's parser refuses port 0, so parse the address alone. */
    snprintf(spec, sizeof spec, strchr(h, ':') ? "[%s]" : "%s", h);
    memset(&ss, 0, sizeof ss);
    if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sslen) < 0)
        return wisp_err_set(err, -EINVAL, "listen: '%s' is not an IP address", host);
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    snprintf(spec, sizeof spec, strchr(h, ':') ? "[%s]:%u" : "%s:%u", h, port);
    struct http_server *s = calloc(1, sizeof *s);
    if (!s)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    s->base = base;
    s->cfg = *cfg;
    s->cbs = *cbs;
    s->idle.tv_sec = cfg->idle_timeout_s;
    s->max_held = cfg->max_held_bytes ? cfg->max_held_bytes : HTTP_HELD_DEFAULT;
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    s->accept_pause = evtimer_new(base, on_accept_resume, s);
    s->lev = evconnlistener_new_bind(
        base, on_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 511,
        (struct sockaddr *)&ss, sslen);
    if (!s->lev || !s->accept_pause) {
        int e = s->lev ? ENOMEM : errno;
        if (s->lev)
            evconnlistener_free(s->lev);
        if (s->accept_pause)
            event_free(s->accept_pause);
        if (s->spare_fd >= 0)
            close(s->spare_fd);
        free(s);
        return wisp_err_set(err, -e, "cannot listen on %s: %s", spec, strerror(e));
    }
    evconnlistener_set_error_cb(s->lev, on_accept_error);
    struct sockaddr_storage got;
    socklen_t glen = sizeof got;
    getsockname(evconnlistener_get_fd(s->lev), (struct sockaddr *)&got, &glen);
    *bound_port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                  : ((struct sockaddr_in *)&got)->sin_port);
    *out = s;
    return 0;
}

void http_server_stop_listening(struct http_server *s)
{
    if (s->lev) {
        evconnlistener_free(s->lev);
        s->lev = NULL;
    }
    if (s->accept_pause)
        evtimer_del(s->accept_pause);
}

void http_server_stats(const struct http_server *s, struct http_stats *out)
{
    *out = s->stats;
    out->open = s->nconns;
}

unsigned http_server_pending(const struct http_server *s)
{
    unsigned n = s->pending;
    for (const struct conn *c = s->conns; c; c = c->next)
        n += c->state == C_WRITING;
    return n;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    http_server_stop_listening(s);
    while (s->conns)
        conn_free(s->conns);
    if (s->accept_pause) {
        event_free(s->accept_pause);
        s->accept_pause = NULL;
    }
    if (s->spare_fd > 0) { /* 0: the fuzz server's, which has none */
        close(s->spare_fd);
        s->spare_fd = -1;
    }
    /* Requests whose connection went earlier may still be out, and each
     * reply decrements s->pending: the server stays until the last. */
    if (s->pending) {
        s->freed = true;
        return;
    }
    free(s);
}

/* ==== the fuzz connection ============================================= */

int http_fuzz_server(const struct http_callbacks *cbs, size_t max_header_bytes,
                     size_t max_body_bytes, struct http_server **out)
{
    struct http_server *s = calloc(1, sizeof *s);
    struct conn *c = calloc(1, sizeof *c);
    if (!s || !c || !(c->pin = evbuffer_new()) || !(c->pout = evbuffer_new())) {
        if (c && c->pin)
            evbuffer_free(c->pin);
        free(c);
        free(s);
        return -ENOMEM;
    }
    s->cfg.max_header_bytes = max_header_bytes;
    s->cfg.max_body_bytes = max_body_bytes;
    s->cfg.max_conns = 1;
    s->cbs = *cbs;
    c->srv = s;
    c->state = C_HEAD;
    snprintf(c->peer, sizeof c->peer, "fuzz");
    s->conns = c;
    s->nconns = 1;
    s->stats.accepted = 1;
    *out = s;
    return 0;
}

int http_fuzz_feed(struct http_server *s, const void *data, size_t len)
{
    struct conn *c = s->conns;
    if (!c)
        return 0;
    if (len && evbuffer_add(c->pin, data, len) < 0)
        return -ENOMEM;
    conn_drive(c);
    return c->state != C_LINGER;
}
