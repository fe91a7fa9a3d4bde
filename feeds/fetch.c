/* feeds/fetch.c - see fetch.h. One state machine per exchange:
 *
 *   RESOLVE  evdns_getaddrinfo is out (or answered synchronously from
 *            /etc/hosts or an IP literal)
 *   CONNECT  a non-blocking connect to the current address; a failure moves
 *            on to the next address
 *   TLS      connected, the handshake runs (https only); the request waits
 *            in pout until it is done
 *   HEAD     reading the status line and headers (1xx interim responses
 *            are skipped)
 *   BODY     reading the body: Content-Length, chunked, or until close
 *   DONE     finished; the socket is gone, done() is due or has run
 *
 * All bufferevent callbacks are deferred (BEV_OPT_DEFER_CALLBACKS), so none
 * runs inside a libevent call of ours, and a finished exchange frees its
 * socket at once. A cancelled DNS lookup still calls back later, so the
 * lookup holds a small ticket rather than the fetch itself.
 *
 * Bounds: the head (status line + headers, counted with their line ends)
 * is at most max_head bytes, the body at most max_body; a chunk-size line
 * is at most MAX_LINE. Plaintext from TLS is parsed as it arrives, so the
 * buffers hold at most one read's worth beyond those bounds. */
#include "fetch.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "tls.h"

#define MAX_LINE 1024 /* a chunk-size or trailer line */
#define MAX_ADDRS 8   /* addresses tried per exchange */

enum stage { ST_RESOLVE, ST_CONNECT, ST_TLS, ST_HEAD, ST_BODY, ST_DONE };
enum body_mode { BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

struct ticket {
    struct fetch *f; /* NULL once the fetch is gone */
};

struct fetch {
    struct event_base *base;
    struct evdns_base *dns;
    struct tls_client *tls_cl;
    char *host;
    uint16_t port;
    bool head_only;
    size_t max_head, max_body;
    fetch_done_fn *done;
    void *arg;
    enum stage stage;
    struct event *finish_ev;
    int rc;
    char err[200];
    char stage_text[160];
    /* resolving and connecting */
    struct ticket *ticket;
    struct evdns_getaddrinfo_request *dreq;
    struct evutil_addrinfo *addrs, *next_addr;
    int tried, last_errno;
    struct bufferevent *bev;
    /* TLS: plaintext in and out; the request waits in pout */
    struct tls_conn *tls;
    struct evbuffer *pin, *pout;
    struct evbuffer *req; /* plain TCP: the request until connected */
    /* the response */
    int status;
    char *hdrs; /* "name\0value\0" pairs */
    size_t hdrs_len, head_bytes;
    enum body_mode mode;
    enum chunk_state chunk;
    uint64_t remaining; /* BODY_LENGTH / CH_DATA */
    struct evbuffer *body;
};

/* ---- finishing -------------------------------------------------------- */

static void drop_socket(struct fetch *f)
{
    if (f->bev) {
        bufferevent_free(f->bev); /* clears its callbacks, pending ones too */
        f->bev = NULL;
    }
    tls_conn_free(f->tls);
    f->tls = NULL;
}

static void WISP_PRINTF(3, 4) finish(struct fetch *f, int rc, const char *fmt, ...)
{
    if (f->stage == ST_DONE)
        return;
    f->stage = ST_DONE;
    f->rc = rc;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->err, sizeof f->err, fmt, ap);
        va_end(ap);
    }
    drop_socket(f);
    if (f->finish_ev) /* the fuzz entry's fetch has none: its caller asks */
        event_active(f->finish_ev, EV_TIMEOUT, 1);
}

static void on_finish(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetch *f = arg;
    f->done(f->arg, f->rc); /* may free f */
}

/* ---- the response ----------------------------------------------------- */

static const char *find_header(const struct fetch *f, const char *name)
{
    for (size_t o = 0; o < f->hdrs_len;) {
        const char *k = f->hdrs + o, *v = k + strlen(k) + 1;
        if (strcasecmp(k, name) == 0)
            return v;
        o = (size_t)(v - f->hdrs) + strlen(v) + 1;
    }
    return NULL;
}

static bool add_header(struct fetch *f, const char *k, size_t kl, const char *v, size_t vl)
{
    char *n = realloc(f->hdrs, f->hdrs_len + kl + vl + 2);
    if (!n)
        return false;
    f->hdrs = n;
    memcpy(n + f->hdrs_len, k, kl);
    n[f->hdrs_len + kl] = '\0';
    memcpy(n + f->hdrs_len + kl + 1, v, vl);
    n[f->hdrs_len + kl + 1 + vl] = '\0';
    f->hdrs_len += kl + vl + 2;
    return true;
}

/* Takes one CRLF (or LF) line of at most cap bytes off in. 1 with *line
 * (malloc'd), 0 when it is not complete yet, -1 when it is too long. */
static int take_line(struct evbuffer *in, size_t cap, char **line, size_t *used)
{
    size_t eol = 0;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
    if (p.pos < 0)
        return evbuffer_get_length(in) > cap ? -1 : 0;
    if ((size_t)p.pos + eol > cap)
        return -1;
    size_t n = 0;
    *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
    if (!*line)
        return -1;
    if (used)
        *used += (size_t)p.pos + eol;
    return 1;
}

static bool parse_status(struct fetch *f, const char *line)
{
    /* HTTP/1.x SP 3DIGIT [SP reason] */
    if (strncmp(line, "HTTP/1.", 7) != 0 || !line[7] || line[8] != ' ')
        return false;
    const char *c = line + 9;
    for (int i = 0; i < 3; i++)
        if (c[i] < '0' || c[i] > '9')
            return false;
    if (c[3] && c[3] != ' ')
        return false;
    f->status = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
    return f->status >= 100;
}

static bool parse_header(struct fetch *f, const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return false;
    size_t kl = (size_t)(colon - line);
    for (size_t i = 0; i < kl; i++)
        if (line[i] == ' ' || line[i] == '\t')
            return false; /* also rejects obsolete line folding */
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vl = strlen(v);
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    return add_header(f, line, kl, v, vl);
}

/* The headers are in: how does the body end? False (with finish) when
 * the answer is malformed or too large. */
static bool start_body(struct fetch *f)
{
    if (f->head_only || f->status == 204 || f->status == 304) {
        finish(f, 0, NULL);
        return false;
    }
    const char *te = find_header(f, "Transfer-Encoding");
    const char *cl = find_header(f, "Content-Length");
    f->stage = ST_BODY;
    if (te) {
        /* chunked must be the last coding; anything else runs to the close */
        size_t n = strlen(te);
        f->mode = n >= 7 && strcasecmp(te + n - 7, "chunked") == 0 ? BODY_CHUNKED : BODY_CLOSE;
        f->chunk = CH_SIZE;
    } else if (cl) {
        if (!*cl || strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 18) {
            finish(f, -EPROTO, "invalid HTTP response (Content-Length: %.40s)", cl);
            return false;
        }
        f->remaining = strtoull(cl, NULL, 10);
        if (f->remaining > f->max_body) {
            finish(f, -EFBIG, "response body over %zu bytes", f->max_body);
            return false;
        }
        f->mode = BODY_LENGTH;
        if (f->remaining == 0) {
            finish(f, 0, NULL);
            return false;
        }
    } else {
        f->mode = BODY_CLOSE;
    }
    return true;
}

/* Moves up to n bytes of in to the body. False (with finish) over bound. */
static bool take_body(struct fetch *f, struct evbuffer *in, size_t n)
{
    if (evbuffer_get_length(f->body) + n > f->max_body) {
        finish(f, -EFBIG, "response body over %zu bytes", f->max_body);
        return false;
    }
    if (n > 0 && evbuffer_remove_buffer(in, f->body, n) != (int)n) {
        finish(f, -ENOMEM, "out of memory");
        return false;
    }
    return true;
}

/* One step of a chunked body. 1: go on, 0: need more input, -1: finished. */
static int chunk_step(struct fetch *f, struct evbuffer *in)
{
    char *line = NULL;
    int r = 0;
    switch (f->chunk) {
    case CH_SIZE: {
        if ((r = take_line(in, MAX_LINE, &line, NULL)) <= 0)
            break;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(line, &end, 16);
        bool ok = end != line && !errno && (*end == '\0' || *end == ';' || *end == ' ');
        free(line);
        if (!ok) {
            finish(f, -EPROTO, "invalid HTTP response (chunk size)");
            return -1;
        }
        if (n > f->max_body) {
            finish(f, -EFBIG, "response body over %zu bytes", f->max_body);
            return -1;
        }
        f->remaining = n;
        f->chunk = n == 0 ? CH_TRAILER : CH_DATA;
        return 1;
    }
    case CH_DATA: {
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < f->remaining ? avail : (size_t)f->remaining;
        if (n == 0)
            return 0;
        if (!take_body(f, in, n))
            return -1;
        f->remaining -= n;
        if (f->remaining == 0)
            f->chunk = CH_DATA_END;
        return 1;
    }
    case CH_DATA_END:
    case CH_TRAILER:
        if ((r = take_line(in, MAX_LINE, &line, NULL)) <= 0)
            break;
        bool empty = line[0] == '\0';
        free(line);
        if (f->chunk == CH_DATA_END) {
            if (!empty) {
                finish(f, -EPROTO, "invalid HTTP response (chunk end)");
                return -1;
            }
            f->chunk = CH_SIZE;
        } else if (empty) {
            finish(f, 0, NULL);
            return -1;
        }
        return 1;
    }
    if (r < 0) {
        finish(f, -EPROTO, "invalid HTTP response (chunk line too long)");
        return -1;
    }
    return 0;
}

/* Parses what in holds. Finishes the exchange when the response is
 * complete or bad. */
static void parse(struct fetch *f, struct evbuffer *in)
{
    while (f->stage == ST_HEAD) {
        char *line = NULL;
        int r = take_line(in, f->max_head - f->head_bytes, &line, &f->head_bytes);
        if (r < 0) {
            finish(f, -EFBIG, "response headers over %zu bytes", f->max_head);
            return;
        }
        if (r == 0)
            return;
        bool ok = true, end = false;
        if (f->status == 0)
            ok = parse_status(f, line);
        else if (line[0] == '\0')
            end = true;
        else
            ok = parse_header(f, line);
        free(line);
        if (!ok) {
            finish(f, -EPROTO, "invalid HTTP response");
            return;
        }
        if (end && f->status < 200) { /* an interim answer: the real one follows */
            f->status = 0;
            f->hdrs_len = 0;
        } else if (end && !start_body(f)) {
            return;
        }
    }
    if (f->stage != ST_BODY)
        return;
    switch (f->mode) {
    case BODY_LENGTH: {
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < f->remaining ? avail : (size_t)f->remaining;
        if (!take_body(f, in, n))
            return;
        f->remaining -= n;
        if (f->remaining == 0)
            finish(f, 0, NULL);
        break;
    }
    case BODY_CLOSE:
        take_body(f, in, evbuffer_get_length(in));
        break;
    case BODY_CHUNKED:
        while (chunk_step(f, in) > 0)
            ;
        break;
    }
}

/* The peer closed: complete only when the body runs to the close. */
static void on_closed(struct fetch *f)
{
    if (f->stage == ST_BODY && f->mode == BODY_CLOSE)
        finish(f, 0, NULL);
    else
        finish(f, -EIO, "the connection was closed before a complete response");
}

/* ---- the connection --------------------------------------------------- */

static void try_next_addr(struct fetch *f);

static void on_read(struct bufferevent *bev, void *arg)
{
    struct fetch *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (!f->tls) {
        parse(f, in);
        return;
    }
    int rc = tls_conn_read(f->tls, in, f->pin, bufferevent_get_output(bev));
    if (rc < 0) {
        char why[200];
        tls_conn_error(f->tls, why, sizeof why);
        finish(f, -EPROTO, "TLS: %s", why);
        return;
    }
    if (tls_conn_ready(f->tls)) {
        if (f->stage == ST_TLS)
            f->stage = ST_HEAD;
        if (tls_conn_write(f->tls, f->pout, bufferevent_get_output(bev)) < 0) {
            finish(f, -EPROTO, "TLS: cannot send the request");
            return;
        }
    }
    parse(f, f->pin);
    if (rc == 1 && f->stage != ST_DONE)
        on_closed(f);
}

static void on_connected(struct fetch *f)
{
    struct bufferevent *bev = f->bev;
    if (f->tls_cl) {
        f->tls = tls_conn_new_client(f->tls_cl, f->host);
        if (!f->tls) {
            finish(f, -ENOMEM, "out of memory");
            return;
        }
        f->stage = ST_TLS;
        /* the client speaks first: its hello goes out now */
        if (tls_conn_read(f->tls, bufferevent_get_input(bev), f->pin, bufferevent_get_output(bev)) <
            0) {
            char why[200];
            tls_conn_error(f->tls, why, sizeof why);
            finish(f, -EPROTO, "TLS: %s", why);
            return;
        }
    } else {
        f->stage = ST_HEAD;
        if (bufferevent_write_buffer(bev, f->req) < 0) {
            finish(f, -ENOMEM, "out of memory");
            return;
        }
    }
    bufferevent_enable(bev, EV_READ);
}

static bool known_errno(int e)
{
    return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == ETIMEDOUT ||
           e == ECONNRESET || e == EADDRNOTAVAIL || e == EAFNOSUPPORT || e == EPIPE;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct fetch *f = arg;
    int e = errno; /* libevent leaves the socket error here */
    if (f->stage == ST_CONNECT) {
        if (what & BEV_EVENT_CONNECTED) {
            on_connected(f);
            return;
        }
        f->last_errno = e;
        drop_socket(f);
        try_next_addr(f);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        /* over TLS, the rest of the plaintext first */
        if (f->tls)
            on_read(f->bev, f);
        if (f->stage != ST_DONE)
            on_closed(f);
        return;
    }
    if (what & BEV_EVENT_ERROR)
        finish(f, -EIO, "connection error%s%s", known_errno(e) ? ": " : "",
               known_errno(e) ? strerror(e) : "");
}

static void try_next_addr(struct fetch *f)
{
    while (f->next_addr && f->tried < MAX_ADDRS) {
        struct evutil_addrinfo *a = f->next_addr;
        f->next_addr = a->ai_next;
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
            continue;
        f->tried++;
        char ip[64] = "?";
        const void *in = a->ai_family == AF_INET
                             ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                             : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        evutil_inet_ntop(a->ai_family, in, ip, sizeof ip);
        snprintf(f->stage_text, sizeof f->stage_text, "connecting to %s (%s)", f->host, ip);
        f->bev =
            bufferevent_socket_new(f->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!f->bev) {
            finish(f, -ENOMEM, "out of memory");
            return;
        }
        bufferevent_setcb(f->bev, on_read, NULL, on_event, f);
        if (bufferevent_socket_connect(f->bev, a->ai_addr, (int)a->ai_addrlen) == 0)
            return; /* on_event tells how it went */
        f->last_errno = errno;
        drop_socket(f);
    }
    int e = f->last_errno;
    finish(f, -ECONNREFUSED, "cannot connect to %s:%u%s%s", f->host, f->port,
           known_errno(e) ? ": " : "", known_errno(e) ? strerror(e) : "");
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct ticket *t = arg;
    struct fetch *f = t->f;
    free(t);
    if (!f) { /* abandoned while the lookup was out */
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    f->ticket = NULL;
    f->dreq = NULL;
    if (result != 0) {
        if (res)
            evutil_freeaddrinfo(res);
        finish(f, -ENOENT, "cannot resolve %s: %s", f->host,
               result == EVUTIL_EAI_CANCEL ? "cancelled" : evutil_gai_strerror(result));
        return;
    }
    f->addrs = f->next_addr = res;
    f->stage = ST_CONNECT;
    try_next_addr(f);
}

/* ---- API -------------------------------------------------------------- */

int fetch_start(struct event_base *base, struct evdns_base *dns, const struct fetch_target *t,
                struct evbuffer *request, fetch_done_fn *done, void *arg, struct fetch **out)
{
    struct fetch *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->base = base;
    f->dns = dns;
    f->tls_cl = t->tls;
    f->port = t->port;
    f->head_only = t->head;
    f->max_head = t->max_head;
    f->max_body = t->max_body;
    f->done = done;
    f->arg = arg;
    f->host = strdup(t->host);
    f->finish_ev = event_new(base, -1, 0, on_finish, f);
    f->req = evbuffer_new();
    f->body = evbuffer_new();
    f->ticket = malloc(sizeof *f->ticket);
    if (t->tls) {
        f->pin = evbuffer_new();
        f->pout = evbuffer_new();
    }
    struct evbuffer *dst = t->tls ? f->pout : f->req;
    if (!f->host || !f->finish_ev || !f->req || !f->body || !f->ticket ||
        (t->tls && (!f->pin || !f->pout)) || evbuffer_add_buffer(dst, request) < 0) {
        free(f->ticket);
        f->ticket = NULL;
        fetch_free(f);
        return -ENOMEM;
    }
    f->ticket->f = f;
    f->stage = ST_RESOLVE;
    snprintf(f->stage_text, sizeof f->stage_text, "resolving %s", f->host);
    char port[8];
    snprintf(port, sizeof port, "%u", t->port);
    struct evutil_addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    /* may answer at once (an IP literal, /etc/hosts): on_resolved has run
     * then and freed the ticket, and NULL comes back */
    struct evdns_getaddrinfo_request *r =
        evdns_getaddrinfo(dns, f->host, port, &hints, on_resolved, f->ticket);
    if (f->ticket)
        f->dreq = r;
    *out = f;
    return 0;
}

void fetch_free(struct fetch *f)
{
    if (!f)
        return;
    if (f->ticket) {
        /* the lookup calls back later (cancelled) and frees the ticket */
        f->ticket->f = NULL;
        if (f->dreq)
            evdns_getaddrinfo_cancel(f->dreq);
    }
    drop_socket(f);
    if (f->addrs)
        evutil_freeaddrinfo(f->addrs);
    if (f->finish_ev)
        event_free(f->finish_ev);
    if (f->req)
        evbuffer_free(f->req);
    if (f->pin)
        evbuffer_free(f->pin);
    if (f->pout)
        evbuffer_free(f->pout);
    if (f->body)
        evbuffer_free(f->body);
    free(f->hdrs);
    free(f->host);
    free(f);
}

int fetch_status(const struct fetch *f)
{
    return f->stage == ST_DONE && f->rc == 0 ? f->status : 0;
}

const char *fetch_header(const struct fetch *f, const char *name)
{
    return find_header(f, name);
}

struct evbuffer *fetch_body(struct fetch *f)
{
    return f->body;
}

const char *fetch_error(const struct fetch *f)
{
    return f->err[0] ? f->err : "error";
}

const char *fetch_stage(const struct fetch *f)
{
    switch (f->stage) {
    case ST_RESOLVE:
    case ST_CONNECT:
        return f->stage_text;
    case ST_TLS:
        return "in the TLS handshake";
    case ST_HEAD:
        return "waiting for the response";
    case ST_BODY:
        return "reading the response body";
    case ST_DONE:
        break;
    }
    return "done";
}

/* ---- the fuzz entry: the response parser without a socket ------------- */

int fetch_fuzz_new(bool head, size_t max_head, size_t max_body, struct fetch **out)
{
    struct fetch *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->head_only = head;
    f->max_head = max_head;
    f->max_body = max_body;
    f->stage = ST_HEAD;
    f->pin = evbuffer_new();
    f->body = evbuffer_new();
    if (!f->pin || !f->body) {
        fetch_free(f);
        return -ENOMEM;
    }
    *out = f;
    return 0;
}

int fetch_fuzz_feed(struct fetch *f, const void *data, size_t len, bool eof, int *rc)
{
    if (f->stage != ST_DONE) {
        if (len && evbuffer_add(f->pin, data, len) < 0)
            return -ENOMEM;
        parse(f, f->pin);
        if (eof && f->stage != ST_DONE)
            on_closed(f);
    }
    if (f->stage != ST_DONE)
        return 0;
    *rc = f->rc;
    return 1;
}
