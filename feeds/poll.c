/* feeds/poll.c - the poll feed kind (/whisk.system/poll/http): fires the
 * trigger when an HTTP resource changes.
 *
 * Parameters:
 *   url              required; http:// or https://host[:port]/path[?query].
 *                    The host is a name or an IP literal (IPv6 in
 *                    brackets). Names are resolved at each poll by one
 *                    evdns base the adapter shares (/etc/hosts, then the
 *                    name servers of /etc/resolv.conf), never by a blocking
 *                    getaddrinfo; every address a name gives is tried in
 *                    turn. https verifies the server's certificate against
 *                    the CA bundle (env->tls_ca_file, the tls-ca-file
 *                    setting; loaded once, at the first https poll) and
 *                    that it is for the host: a DNS name as mbedtls
 *                    checks it (also sent as SNI), an IP literal as a
 *                    subjectAltName IP entry (platform/tls.h). There is
 *                    no way to skip the check.
 *   interval         seconds between polls (default 60, 1..MAX_INTERVAL)
 *   headers          optional object of extra request headers (strings;
 *                    only their names are shown in status, values may be
 *                    credentials)
 *   method           "GET" (default) or "HEAD"
 *   trigger_payload  optional object (a string s becomes {"payload": s})
 *                    under the fired params
 *
 * Each binding polls once right after bind (from the loop, never inside
 * bind()) and then every interval; a paused binding does not poll (an
 * outstanding request is abandoned) and polls right away on unpause. One
 * request at a time: a tick that finds the previous request still out is
 * skipped and counted. A request gets min(interval, 30) s in all (connect,
 * send, headers, body), its body at most MAX_BODY bytes (larger: dropped,
 * counted as a drop, shown as lastError).
 *
 * Change detection: requests carry If-None-Match / If-Modified-Since from
 * the last good response's ETag / Last-Modified. A 304, or a 2xx whose
 * body hashes (SHA-256) like the last one, is "unchanged" and fires
 * nothing; for HEAD the hash covers ETag, Last-Modified and Content-Length.
 * The first good response is a change (from nothing). A change fires
 *   trigger_payload + {"url", "status", "headers": {"etag", "last-modified",
 *   "content-type"} (those present), "body"}
 * where body is the parsed JSON when the response says it is JSON (or has
 * no Content-Type) and parses, else the text, else (not UTF-8, or NUL
 * bytes) base64 with "body_base64": true. HEAD fires carry no body.
 * Redirects are not followed; they, other non-2xx answers, DNS failures,
 * connection and TLS failures (a certificate that does not verify:
 * "TLS: certificate verify failed: <reasons>") and timeouts count as
 * errors (lastError) and fire nothing; the next interval polls again.
 *
 * After each fire save() stores {"url", "etag", "lastModified", "hash"}, so
 * a restart (bind() with that state) does not re-fire an unchanged
 * resource; a state saved for another url is ignored. A change that core
 * refuses (or that arrives while paused) is a drop, and the validators are
 * not advanced, so the next poll sees the change again.
 *
 * The exchange itself is feeds/fetch.c (same for both schemes). Its
 * callback only records the outcome and activates a per-binding event; the
 * outcome is handled (and core called) from that event, so core may unbind
 * or stop from inside fire/save. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "feed.h"
#include "fetch.h"
#include "log.h"
#include "plat.h"
#include "tls.h"
#include "wjson.h"

#define MAX_BODY (1024 * 1024)
#define MAX_HEADERS_SIZE (64 * 1024)
#define MAX_TIMEOUT 30
#define DEFAULT_INTERVAL 60
#define MAX_INTERVAL (30 * 86400)
#define MAX_URL 2048
#define MAX_HOST 253 /* a DNS name's longest text form */
#define MAX_USER_HEADERS 32
#define MAX_HEADER_VALUE 4096
#define MAX_BODY_DEPTH 16 /* a JSON body nested deeper is passed as text */

struct poll_self {
    struct feed_env env;
    struct feed_set set;
    struct feed_counters totals;
    /* shared by all bindings, made on first use (see resolver(), tls()) */
    struct evdns_base *dns;
    struct tls_client *tls;
    char *ca_file;
    char tls_error[200]; /* why the CA bundle could not be loaded */
};

/* What one request brought back (filled by the fetch callback). */
struct outcome {
    bool got;       /* the exchange ended, or never started */
    bool timed_out; /* our deadline expired first */
    int rc;         /* fetch's code: 0 (a response), -EFBIG, other errors */
    char err[200];  /* rc < 0: why; timed out: where it was */
    int code;       /* 0: no response */
    char *etag, *last_modified, *ctype, *clen;
    unsigned char *body;
    size_t len;
};

struct feed_binding {
    struct feed_link link; /* first: the set's links are bindings */
    struct poll_self *self;
    char *ns, *trigger;
    /* parameters */
    char *url;
    char *host;        /* to resolve and connect to, and for TLS (no brackets) */
    char *host_header; /* Host: as in the url */
    char *target;      /* path and query */
    uint16_t port;
    bool https;
    int interval, timeout; /* seconds */
    bool head;             /* method HEAD (else GET) */
    json_t *headers;       /* the extra request headers, an object of strings */
    json_t *payload;       /* trigger_payload, an object */
    /* validators of the last good response */
    char *etag, *last_modified;
    unsigned char hash[32];
    bool have_hash;
    /* the request in progress */
    struct fetch *fetch;
    bool inflight; /* a request is out or its outcome not handled yet */
    struct outcome out;
    struct event *tick, *deadline, *done_ev;
    bool paused;
    /* status */
    int last_status; /* 0: none */
    char last_error[200];
    int64_t last_poll; /* ms, -1: never */
    uint64_t polls, changes, errors, fires, drops, skipped;
};

/* ---- small helpers ---------------------------------------------------- */

static void outcome_clear(struct outcome *o)
{
    free(o->etag);
    free(o->last_modified);
    free(o->ctype);
    free(o->clen);
    free(o->body);
    memset(o, 0, sizeof *o);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void set_str(char **slot, const char *v)
{
    char *c = dup_or_null(v);
    free(*slot);
    *slot = c;
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void add_ms(struct event *ev, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- parameters ------------------------------------------------------- */

static const json_t *member(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int parse_url(struct feed_binding *b, const char *url, struct wisp_err *err)
{
    if (strlen(url) > MAX_URL)
        return wisp_err_set(err, -EINVAL, "url: longer than %d characters", MAX_URL);
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return wisp_err_set(err, -EINVAL, "url: must not contain spaces or control characters");
    struct evhttp_uri *u = evhttp_uri_parse(url);
    if (!u)
        return wisp_err_set(err, -EINVAL, "url: '%.100s' is not a valid URL", url);
    int rc = 0;
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
    int port = evhttp_uri_get_port(u);
    if (!scheme || (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        rc = wisp_err_set(err, -EINVAL, "url: must be an http:// or https:// URL");
        goto out;
    }
    b->https = strcasecmp(scheme, "https") == 0;
    if (evhttp_uri_get_userinfo(u)) {
        rc = wisp_err_set(err, -EINVAL,
                          "url: user:password@ is not supported; put an Authorization header "
                          "in headers");
        goto out;
    }
    if (!host || !*host) {
        rc = wisp_err_set(err, -EINVAL, "url: has no host");
        goto out;
    }
    /* a name (resolved at each poll, on the loop, by evdns) or an IP
     * literal; IPv6 comes in brackets, which the connection goes without */
    size_t hl = strlen(host);
    if (hl > MAX_HOST) {
        rc = wisp_err_set(err, -EINVAL, "url: host name longer than %d characters", MAX_HOST);
        goto out;
    }
    char name[MAX_HOST + 1];
    if (host[0] == '[') {
        unsigned char a6[16];
        memcpy(name, host + 1, hl - 2); /* evhttp_uri_parse checked the brackets */
        name[hl - 2] = '\0';
        if (inet_pton(AF_INET6, name, a6) != 1) {
            rc = wisp_err_set(err, -EINVAL, "url: bad IPv6 address");
            goto out;
        }
    } else {
        memcpy(name, host, hl + 1);
    }
    if (port == 0 || port > 65535) {
        rc = wisp_err_set(err, -EINVAL, "url: bad port");
        goto out;
    }
    int def_port = b->https ? 443 : 80;
    if (port < 0)
        port = def_port;
    char hosthdr[MAX_HOST + 8];
    if (port == def_port)
        snprintf(hosthdr, sizeof hosthdr, "%s", host);
    else
        snprintf(hosthdr, sizeof hosthdr, "%s:%d", host, port);
    if (!path || !*path)
        path = "/";
    size_t tl = strlen(path) + (query ? strlen(query) + 1 : 0) + 1;
    b->target = malloc(tl);
    b->host = strdup(name);
    b->host_header = strdup(hosthdr);
    b->url = strdup(url);
    if (!b->target || !b->host || !b->host_header || !b->url) {
        rc = wisp_err_set(err, -ENOMEM, "poll: out of memory");
        goto out;
    }
    snprintf(b->target, tl, "%s%s%s", path, query ? "?" : "", query ? query : "");
    b->port = (uint16_t)port;
out:
    evhttp_uri_free(u);
    return rc;
}

static int parse_interval(const json_t *v, int *out, struct wisp_err *err)
{
    long long n = -1;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 1 && d <= MAX_INTERVAL && d == (double)(long long)d) /* no libm */
            n = (long long)d;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = strlen(s);
        if (len > 0 && len <= 12 && strspn(s, "0123456789") == len)
            n = strtoll(s, NULL, 10);
    }
    if (n < 1 || n > MAX_INTERVAL)
        return wisp_err_set(err, -EINVAL, "interval: must be a whole number of seconds (1-%d)",
                            MAX_INTERVAL);
    *out = (int)n;
    return 0;
}

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

static int parse_headers(struct feed_binding *b, const json_t *v, struct wisp_err *err)
{
    static const char *const managed[] = {"Connection",
                                          "Content-Length",
                                          "Transfer-Encoding",
                                          "If-None-Match",
                                          "If-Modified-Since",
                                          "Upgrade",
                                          "TE",
                                          "Keep-Alive",
                                          "Expect"};
    if (!json_is_object(v))
        return wisp_err_set(err, -EINVAL, "headers: must be an object of strings");
    if (json_object_size(v) > MAX_USER_HEADERS)
        return wisp_err_set(err, -EINVAL, "headers: at most %d", MAX_USER_HEADERS);
    const char *k;
    const json_t *val;
    json_object_foreach((json_t *)v, k, val)
    {
        if (!is_token(k) || strlen(k) > 64)
            return wisp_err_set(err, -EINVAL, "headers: '%.64s' is not a header name", k);
        for (size_t i = 0; i < WISP_ARRAY_LEN(managed); i++)
            if (strcasecmp(k, managed[i]) == 0)
                return wisp_err_set(err, -EINVAL, "headers: %s is set by the poll feed", k);
        if (!json_is_string(val))
            return wisp_err_set(err, -EINVAL, "headers: the value of %.64s must be a string", k);
        const char *s = json_string_value(val);
        size_t n = json_string_length(val);
        if (n > MAX_HEADER_VALUE || strlen(s) != n || strpbrk(s, "\r\n"))
            return wisp_err_set(err, -EINVAL,
                                "headers: the value of %.64s must be one line of at most %d "
                                "characters",
                                k, MAX_HEADER_VALUE);
    }
    b->headers = json_deep_copy(v);
    return b->headers ? 0 : wisp_err_set(err, -ENOMEM, "poll: out of memory");
}

static int parse_params(struct feed_binding *b, const json_t *params, struct wisp_err *err)
{
    const json_t *v = member(params, "url");
    int rc;
    if (!v)
        return wisp_err_set(err, -EINVAL, "url: missing");
    if (!json_is_string(v))
        return wisp_err_set(err, -EINVAL, "url: must be a string");
    if ((rc = parse_url(b, json_string_value(v), err)))
        return rc;
    b->interval = DEFAULT_INTERVAL;
    if ((v = member(params, "interval")) && (rc = parse_interval(v, &b->interval, err)))
        return rc;
    b->timeout = b->interval < MAX_TIMEOUT ? b->interval : MAX_TIMEOUT;
    if ((v = member(params, "headers")) && (rc = parse_headers(b, v, err)))
        return rc;
    b->head = false;
    if ((v = member(params, "method"))) {
        const char *m = json_string_value(v);
        if (m && strcasecmp(m, "HEAD") == 0)
            b->head = true;
        else if (!m || strcasecmp(m, "GET") != 0)
            return wisp_err_set(err, -EINVAL, "method: must be \"GET\" or \"HEAD\"");
    }
    v = member(params, "trigger_payload");
    if (!v)
        b->payload = json_object();
    else if (json_is_object(v))
        b->payload = json_deep_copy(v);
    else if (json_is_string(v))
        b->payload = json_pack("{s:s}", "payload", json_string_value(v));
    else
        return wisp_err_set(err, -EINVAL, "trigger_payload: must be an object");
    return b->payload ? 0 : wisp_err_set(err, -ENOMEM, "poll: out of memory");
}

/* Applies a saved state when it was saved for this url. */
static void restore(struct feed_binding *b, const json_t *state)
{
    if (!json_is_object(state))
        return;
    const char *url = wjson_str(state, "url");
    if (url && strcmp(url, b->url) != 0)
        return;
    const char *hash = wjson_str(state, "hash");
    if (hash && strlen(hash) == 2 * sizeof b->hash && plat_unhex(hash, sizeof b->hash, b->hash))
        b->have_hash = true;
    else
        return; /* validators without a hash would only hide the first change */
    set_str(&b->etag, wjson_str(state, "etag"));
    set_str(&b->last_modified, wjson_str(state, "lastModified"));
}

/* ---- bindings --------------------------------------------------------- */

static void drop_request(struct feed_binding *b)
{
    fetch_free(b->fetch); /* without calling back */
    b->fetch = NULL;
    if (b->deadline)
        evtimer_del(b->deadline);
    if (b->done_ev)
        event_del(b->done_ev);
    outcome_clear(&b->out);
    b->inflight = false;
}

static void binding_free(struct feed_binding *b)
{
    struct poll_self *s = b->self;
    feed_set_remove(&s->set, &b->link);
    drop_request(b);
    if (b->tick)
        event_free(b->tick);
    if (b->deadline)
        event_free(b->deadline);
    if (b->done_ev)
        event_free(b->done_ev);
    json_decref(b->headers);
    json_decref(b->payload);
    free(b->etag);
    free(b->last_modified);
    free(b->url);
    free(b->host);
    free(b->host_header);
    free(b->target);
    free(b->ns);
    free(b->trigger);
    free(b);
}

/* ---- shared resolver and TLS client ----------------------------------- */

/* The resolver all bindings share, made on first use: it reads
 * /etc/resolv.conf and /etc/hosts once (evdns: DNS_OPTIONS_ALL includes
 * the hosts file). NULL when that failed; the next poll tries again. */
static struct evdns_base *resolver(struct poll_self *s)
{
    if (!s->dns)
        s->dns = evdns_base_new(s->env.base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                                 EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    return s->dns;
}

/* The TLS client (the CA bundle) https bindings share, loaded once on the
 * first https poll. A bundle that does not load is not tried again (until
 * a restart); each https poll reports why. NULL then. */
static struct tls_client *tls(struct poll_self *s)
{
    if (s->tls || s->tls_error[0])
        return s->tls;
    const char *ca = s->ca_file ? s->ca_file : TLS_CA_FILE_DEFAULT;
    struct wisp_err err = {0};
    if (tls_client_new(ca, &s->tls, &err) < 0) {
        snprintf(s->tls_error, sizeof s->tls_error, "TLS: cannot load the CA bundle: %.160s",
                 err.msg);
        wlog_warn("poll", "%s", s->tls_error);
    }
    return s->tls;
}

/* Lookups still out were cancelled by fetch_free; libevent frees them
 * (and fetch's tickets) in their callbacks, on the next loop turn. */
static void self_free(void *self)
{
    struct poll_self *s = self;
    tls_client_free(s->tls);
    if (s->dns)
        evdns_base_free(s->dns, 0);
    free(s->ca_file);
    free(s);
}

static void free_link(struct feed_link *k)
{
    binding_free((struct feed_binding *)k);
}

static void quiet_link(struct feed_link *k)
{
    evtimer_del(((struct feed_binding *)k)->tick);
}

static const struct feed_set_ops set_ops = {free_link, quiet_link, self_free};

/* ---- the request ------------------------------------------------------ */

static char *header_dup(const struct fetch *f, const char *name)
{
    const char *v = fetch_header(f, name);
    return v ? strdup(v) : NULL;
}

/* fetch's callback (from its own event): record, free the exchange and
 * hand over to done_ev, where core may be called. */
static void on_fetched(void *arg, int rc)
{
    struct feed_binding *b = arg;
    struct outcome *o = &b->out;
    struct fetch *f = b->fetch;
    o->got = true;
    o->rc = rc;
    if (rc == 0) {
        o->code = fetch_status(f);
        o->etag = header_dup(f, "ETag");
        o->last_modified = header_dup(f, "Last-Modified");
        o->ctype = header_dup(f, "Content-Type");
        o->clen = header_dup(f, "Content-Length");
        struct evbuffer *in = fetch_body(f);
        size_t len = evbuffer_get_length(in); /* at most MAX_BODY: fetch's bound */
        if (len > 0) {
            o->body = malloc(len);
            if (o->body && evbuffer_remove(in, o->body, len) == (int)len) {
                o->len = len;
            } else {
                free(o->body);
                o->body = NULL;
                o->code = 0;
                o->rc = -ENOMEM;
                snprintf(o->err, sizeof o->err, "out of memory");
            }
        }
    } else {
        snprintf(o->err, sizeof o->err, "%s", fetch_error(f));
    }
    fetch_free(f);
    b->fetch = NULL;
    evtimer_del(b->deadline);
    event_active(b->done_ev, EV_TIMEOUT, 1);
}

static void handle_outcome(struct feed_binding *b);

/* A poll that cannot start: the outcome is handled from the loop. */
static void fail_now(struct feed_binding *b, const char *why)
{
    b->out.got = true;
    b->out.rc = -EIO;
    snprintf(b->out.err, sizeof b->out.err, "%s", why);
    evtimer_del(b->deadline);
    event_active(b->done_ev, EV_TIMEOUT, 1);
}

static bool user_header(const struct feed_binding *b, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(b->headers, k, v)
    {
        if (strcasecmp(k, name) == 0)
            return true;
    }
    return false;
}

/* The request head: the method, the user's headers, then ours. */
static int build_request(const struct feed_binding *b, struct evbuffer *req)
{
    int rc = evbuffer_add_printf(req, "%s %s HTTP/1.1\r\n", b->head ? "HEAD" : "GET", b->target);
    const char *k;
    json_t *v;
    json_object_foreach(b->headers, k, v)
    {
        if (rc >= 0)
            rc = evbuffer_add_printf(req, "%s: %s\r\n", k, json_string_value(v));
    }
    static const char *const ours[][2] = {
        {"Host", NULL}, {"User-Agent", "wisp-poll/1"}, {"Accept", "*/*"}};
    for (size_t i = 0; i < WISP_ARRAY_LEN(ours) && rc >= 0; i++)
        if (!user_header(b, ours[i][0]))
            rc = evbuffer_add_printf(req, "%s: %s\r\n", ours[i][0],
                                     ours[i][1] ? ours[i][1] : b->host_header);
    if (rc >= 0)
        rc = evbuffer_add_printf(req, "Connection: close\r\n");
    if (rc >= 0 && b->have_hash && b->etag)
        rc = evbuffer_add_printf(req, "If-None-Match: %s\r\n", b->etag);
    if (rc >= 0 && b->have_hash && b->last_modified)
        rc = evbuffer_add_printf(req, "If-Modified-Since: %s\r\n", b->last_modified);
    if (rc >= 0)
        rc = evbuffer_add(req, "\r\n", 2);
    return rc < 0 ? -ENOMEM : 0;
}

static void start_request(struct feed_binding *b)
{
    struct poll_self *s = b->self;
    outcome_clear(&b->out);
    b->inflight = true;
    /* a timeout equal to the interval ends just before the next tick */
    int64_t ms = (int64_t)b->timeout * 1000 - (b->timeout == b->interval ? 100 : 0);
    add_ms(b->deadline, ms);
    struct evdns_base *dns = resolver(s);
    if (!dns) {
        fail_now(b, "cannot start the DNS resolver (/etc/resolv.conf)");
        return;
    }
    struct fetch_target t = {.host = b->host,
                             .port = b->port,
                             .head = b->head,
                             .max_head = MAX_HEADERS_SIZE,
                             .max_body = MAX_BODY};
    if (b->https && !(t.tls = tls(s))) {
        fail_now(b, s->tls_error);
        return;
    }
    struct evbuffer *req = evbuffer_new();
    if (!req || build_request(b, req) < 0 ||
        fetch_start(s->env.base, dns, &t, req, on_fetched, b, &b->fetch) < 0)
        fail_now(b, "out of memory");
    if (req)
        evbuffer_free(req);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct feed_binding *b = arg;
    outcome_clear(&b->out);
    if (b->fetch) /* where it was when time ran out */
        snprintf(b->out.err, sizeof b->out.err, "%s", fetch_stage(b->fetch));
    fetch_free(b->fetch);
    b->fetch = NULL;
    b->out.got = true;
    b->out.timed_out = true;
    event_del(b->done_ev);
    handle_outcome(b);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    handle_outcome(arg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct feed_binding *b = arg;
    if (b->paused)
        return;
    add_ms(b->tick, (int64_t)b->interval * 1000);
    if (b->inflight) {
        b->skipped++;
        return;
    }
    start_request(b);
}

/* ---- outcome ---------------------------------------------------------- */

static bool is_json_type(const char *ctype)
{
    if (!ctype)
        return true; /* no type given: JSON if it parses */
    size_t n = strcspn(ctype, ";");
    while (n > 0 && (ctype[n - 1] == ' ' || ctype[n - 1] == '\t'))
        n--;
    while (n > 0 && (*ctype == ' ' || *ctype == '\t')) {
        ctype++;
        n--;
    }
    if ((n == 16 && strncasecmp(ctype, "application/json", 16) == 0) ||
        (n == 9 && strncasecmp(ctype, "text/json", 9) == 0))
        return true;
    return n > 5 && strncasecmp(ctype + n - 5, "+json", 5) == 0 &&
           strncasecmp(ctype, "application/", 12) == 0;
}

static json_t *body_value(const struct outcome *o, bool *base64)
{
    const char *p = (const char *)o->body;
    *base64 = false;
    if (o->len == 0)
        return json_string("");
    if (is_json_type(o->ctype)) {
        json_error_t je;
        json_t *j = wjson_load(p, o->len, JSON_DECODE_ANY, &je);
        if (j && wjson_depth(j) <= MAX_BODY_DEPTH)
            return j;
        json_decref(j);
    }
    if (!memchr(p, '\0', o->len)) {
        json_t *t = json_stringn(p, o->len); /* NULL when not UTF-8 */
        if (t)
            return t;
    }
    json_t *r = wjson_base64(o->body, o->len);
    *base64 = r != NULL;
    return r;
}

static json_t *fire_params(const struct feed_binding *b, const struct outcome *o)
{
    json_t *p = json_deep_copy(b->payload), *h = json_object();
    if (!p || !h) {
        json_decref(p);
        json_decref(h);
        return NULL;
    }
    if (o->etag)
        json_object_set_new(h, "etag", json_string(o->etag));
    if (o->last_modified)
        json_object_set_new(h, "last-modified", json_string(o->last_modified));
    if (o->ctype)
        json_object_set_new(h, "content-type", json_string(o->ctype));
    json_object_set_new(p, "url", json_string(b->url));
    json_object_set_new(p, "status", json_integer(o->code));
    json_object_set_new(p, "headers", h);
    json_object_del(p, "body_base64"); /* only ours may say so */
    if (!b->head) {
        bool b64;
        json_t *body = body_value(o, &b64);
        if (!body) {
            json_decref(p);
            return NULL;
        }
        json_object_set_new(p, "body", body);
        if (b64)
            json_object_set_new(p, "body_base64", json_true());
    }
    return p;
}

static void hash_outcome(const struct feed_binding *b, const struct outcome *o,
                         unsigned char out[32])
{
    mbedtls_sha256_context c;
    mbedtls_sha256_init(&c);
    mbedtls_sha256_starts_ret(&c, 0);
    if (b->head) {
        const char *parts[] = {o->etag, o->last_modified, o->clen};
        for (size_t i = 0; i < WISP_ARRAY_LEN(parts); i++) {
            const char *s = parts[i] ? parts[i] : "";
            mbedtls_sha256_update_ret(&c, (const unsigned char *)s, strlen(s) + 1);
        }
    } else if (o->len > 0) {
        mbedtls_sha256_update_ret(&c, o->body, o->len);
    }
    mbedtls_sha256_finish_ret(&c, out);
    mbedtls_sha256_free(&c);
}

static json_t *state_json(const struct feed_binding *b)
{
    char hex[65];
    plat_hex(b->hash, sizeof b->hash, hex);
    return json_pack("{s:s, s:s?, s:s?, s:s}", "url", b->url, "etag", b->etag, "lastModified",
                     b->last_modified, "hash", hex);
}

/* Fires a change. False when the binding was freed by a callback. */
static bool deliver(struct feed_binding *b, const unsigned char hash[32])
{
    struct poll_self *s = b->self;
    struct outcome *o = &b->out;
    b->changes++;
    s->totals.events_in++;
    if (b->paused) {
        b->drops++;
        s->totals.drops++;
        return true;
    }
    json_t *params = fire_params(b, o);
    if (!params) {
        snprintf(b->last_error, sizeof b->last_error, "out of memory");
        b->drops++;
        s->totals.drops++;
        return true;
    }
    feed_enter(&s->set, &b->link);
    int rc = s->env.fire(s->env.ctx, b->ns, b->trigger, params);
    json_decref(params);
    if (rc == 0 && !b->link.dead) {
        b->fires++;
        s->totals.fires++;
        /* the change is delivered: advance the validators */
        set_str(&b->etag, o->etag);
        set_str(&b->last_modified, o->last_modified);
        memcpy(b->hash, hash, 32);
        b->have_hash = true;
        if (s->env.save) {
            json_t *st = state_json(b);
            if (st)
                s->env.save(s->env.ctx, b->ns, b->trigger, st);
            json_decref(st);
        }
    } else if (rc == 0) {
        b->fires++;
        s->totals.fires++;
    } else {
        wlog_debug("poll", "fire refused trigger=%s/%s rc=%d", b->ns, b->trigger, rc);
        snprintf(b->last_error, sizeof b->last_error, "the fire was refused (%s)",
                 rc == -EAGAIN   ? "over the fire limit"
                 : rc == -ENOENT ? "no such trigger"
                                 : "error");
        b->drops++;
        s->totals.drops++;
    }
    return feed_leave(&s->set, &b->link);
}

static void handle_outcome(struct feed_binding *b)
{
    struct outcome *o = &b->out;
    b->inflight = false;
    b->polls++;
    b->last_poll = plat_clock_real_ms();
    if (o->timed_out || o->code == 0) {
        b->last_status = 0;
        if (o->timed_out) {
            snprintf(b->last_error, sizeof b->last_error, "timed out after %d s%s%.160s%s",
                     b->timeout, o->err[0] ? " (" : "", o->err, o->err[0] ? ")" : "");
            b->errors++;
        } else if (o->rc == -EFBIG) {
            snprintf(b->last_error, sizeof b->last_error, "response too large: %.170s", o->err);
            b->self->totals.events_in++; /* a change, perhaps, that cannot be fired */
            b->drops++;
            b->self->totals.drops++;
        } else {
            snprintf(b->last_error, sizeof b->last_error, "%s", o->err);
            b->errors++;
        }
        wlog_debug("poll", "poll failed trigger=%s/%s: %s", b->ns, b->trigger, b->last_error);
        outcome_clear(o);
        return;
    }
    b->last_status = o->code;
    if (o->code == 304) {
        b->last_error[0] = '\0';
        if (o->etag)
            set_str(&b->etag, o->etag);
        if (o->last_modified)
            set_str(&b->last_modified, o->last_modified);
        outcome_clear(o);
        return;
    }
    if (o->code < 200 || o->code > 299) {
        const char *loc = o->code >= 300 && o->code < 400 ? " (redirects are not followed)" : "";
        snprintf(b->last_error, sizeof b->last_error, "HTTP status %d%s", o->code, loc);
        b->errors++;
        outcome_clear(o);
        return;
    }
    b->last_error[0] = '\0';
    unsigned char hash[32];
    hash_outcome(b, o, hash);
    if (b->have_hash && memcmp(hash, b->hash, sizeof hash) == 0) {
        /* unchanged; keep the newest validators */
        if (!str_eq(o->etag, b->etag))
            set_str(&b->etag, o->etag);
        if (!str_eq(o->last_modified, b->last_modified))
            set_str(&b->last_modified, o->last_modified);
        outcome_clear(o);
        return;
    }
    if (deliver(b, hash))
        outcome_clear(o);
}

/* ---- ops -------------------------------------------------------------- */

static int poll_start(const struct feed_env *env, void **self, struct wisp_err *err)
{
    if (!env || !env->base || !env->fire)
        return wisp_err_set(err, -EINVAL, "poll: needs an event base and a fire callback");
    struct poll_self *s = calloc(1, sizeof *s);
    if (!s)
        return wisp_err_set(err, -ENOMEM, "poll: out of memory");
    s->env = *env;
    s->env.mqtt_url = NULL;
    s->env.client_id = NULL;
    s->env.tls_ca_file = NULL;
    if (env->tls_ca_file && *env->tls_ca_file && !(s->ca_file = strdup(env->tls_ca_file))) {
        free(s);
        return wisp_err_set(err, -ENOMEM, "poll: out of memory");
    }
    feed_set_init(&s->set, &set_ops, s);
    *self = s;
    return 0;
}

static void poll_stop(void *self)
{
    struct poll_self *s = self;
    if (s)
        feed_set_stop(&s->set);
}

static int poll_bind(void *self, const char *ns, const char *trigger, const json_t *params,
                     const json_t *state, struct feed_binding **out, struct wisp_err *err)
{
    struct poll_self *s = self;
    if (!json_is_object(params))
        return wisp_err_set(err, -EINVAL, "params: the poll feed's parameters must be an object");
    struct feed_binding *b = calloc(1, sizeof *b);
    if (!b)
        return wisp_err_set(err, -ENOMEM, "poll: out of memory");
    b->self = s;
    b->last_poll = -1;
    b->ns = strdup(ns);
    b->trigger = strdup(trigger);
    b->tick = evtimer_new(s->env.base, on_tick, b);
    b->deadline = evtimer_new(s->env.base, on_deadline, b);
    b->done_ev = evtimer_new(s->env.base, on_done, b);
    int rc;
    if (!b->ns || !b->trigger || !b->tick || !b->deadline || !b->done_ev)
        rc = wisp_err_set(err, -ENOMEM, "poll: out of memory");
    else
        rc = parse_params(b, params, err);
    if (rc) {
        binding_free(b);
        return rc;
    }
    restore(b, state);
    feed_set_add(&s->set, &b->link);
    add_ms(b->tick, 0); /* the first poll, from the loop */
    wlog_debug("poll", "bound trigger=%s/%s interval=%d restored=%d", ns, trigger, b->interval,
               b->have_hash);
    *out = b;
    return 0;
}

static void poll_unbind(void *self, struct feed_binding *b)
{
    (void)self;
    if (!b)
        return;
    if (!feed_retire(&b->self->set, &b->link)) { /* inside its fire: deliver() frees it */
        evtimer_del(b->tick);
        return;
    }
    binding_free(b);
}

static void poll_set_paused(void *self, struct feed_binding *b, bool paused)
{
    (void)self;
    if (b->paused == paused)
        return;
    b->paused = paused;
    if (paused) {
        evtimer_del(b->tick);
        if (!b->link.busy) /* abandon the request in progress */
            drop_request(b);
    } else if (!b->link.dead) {
        add_ms(b->tick, 0);
    }
}

static json_t *poll_status(void *self, const struct feed_binding *b)
{
    (void)self;
    json_t *names = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(b->headers, k, v)
    {
        json_array_append_new(names, json_string(k));
    }
    return json_pack(
        "{s:s, s:s, s:i, s:i, s:o, s:O, s:b, s:o, s:o, s:o, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:b}",
        "url", b->url, "method", b->head ? "HEAD" : "GET", "interval", b->interval, "timeout",
        b->timeout, "headers", names, "trigger_payload", b->payload, "paused", b->paused,
        "lastStatus", b->last_status ? json_integer(b->last_status) : json_null(), "lastError",
        b->last_error[0] ? json_string(b->last_error) : json_null(), "lastPoll",
        b->last_poll >= 0 ? json_integer(b->last_poll) : json_null(), "polls", (json_int_t)b->polls,
        "changes", (json_int_t)b->changes, "errors", (json_int_t)b->errors, "fires",
        (json_int_t)b->fires, "drops", (json_int_t)b->drops, "skipped", (json_int_t)b->skipped,
        "polling", b->inflight);
}

static void poll_counters(void *self, struct feed_counters *out)
{
    const struct poll_self *s = self;
    *out = s->totals;
}

const struct feed_ops feed_poll_ops = {
    .kind = "poll",
    .start = poll_start,
    .stop = poll_stop,
    .bind = poll_bind,
    .unbind = poll_unbind,
    .set_paused = poll_set_paused,
    .status = poll_status,
    .counters = poll_counters,
};
