/* tests/unit/test_feed_poll.c - the poll feed (feeds/poll.c, fetch.c)
 * against real servers: an evhttp server on 127.0.0.1 on the test's own
 * event_base, whose content the tests change, and for https python3's ssl
 * servers (https_server.py) with certificates made by openssl at test time.
 * Host names go through the adapter's evdns resolver (/etc/hosts for
 * localhost). Interval 1 s throughout; waits have deadlines, nothing
 * asserts on timing. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <mbedtls/base64.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "feed.h"
#include "plat.h"
#include "wisp_config.h"

/* ---- the server ------------------------------------------------------- */

struct srv {
    struct event_base *base;
    struct evhttp *http;
    int port;
    char *body;
    size_t len;
    char ctype[64], etag[64], lm[64]; /* "" when not sent */
    int status;                       /* 200 unless set */
    bool chunked, hang;
    int requests, n304;
    char inm[128], ims[128]; /* the last request's conditional headers */
    char host[128];
};

static void srv_set(struct srv *s, const char *body, const char *ctype, const char *etag,
                    const char *lm)
{
    free(s->body);
    s->len = strlen(body);
    s->body = malloc(s->len + 1);
    memcpy(s->body, body, s->len + 1);
    snprintf(s->ctype, sizeof s->ctype, "%s", ctype ? ctype : "");
    snprintf(s->etag, sizeof s->etag, "%s", etag ? etag : "");
    snprintf(s->lm, sizeof s->lm, "%s", lm ? lm : "");
}

static void srv_set_bytes(struct srv *s, const void *data, size_t len)
{
    free(s->body);
    s->body = malloc(len ? len : 1);
    memcpy(s->body, data, len);
    s->len = len;
}

static void copy_header(struct evkeyvalq *h, const char *name, char *out, size_t cap)
{
    const char *v = evhttp_find_header(h, name);
    snprintf(out, cap, "%s", v ? v : "");
}

static void srv_handle(struct evhttp_request *req, void *arg)
{
    struct srv *s = arg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    s->requests++;
    copy_header(in, "If-None-Match", s->inm, sizeof s->inm);
    copy_header(in, "If-Modified-Since", s->ims, sizeof s->ims);
    copy_header(in, "Host", s->host, sizeof s->host);
    if (s->hang)
        return; /* never answered; freed when the client goes away */
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (s->status != 200) {
        evhttp_send_reply(req, s->status, "Oops", NULL);
        return;
    }
    if (s->etag[0])
        evhttp_add_header(out, "ETag", s->etag);
    if (s->lm[0])
        evhttp_add_header(out, "Last-Modified", s->lm);
    if ((s->etag[0] && strcmp(s->inm, s->etag) == 0) ||
        (!s->etag[0] && s->lm[0] && strcmp(s->ims, s->lm) == 0)) {
        s->n304++;
        evhttp_send_reply(req, 304, "Not Modified", NULL);
        return;
    }
    if (s->ctype[0])
        evhttp_add_header(out, "Content-Type", s->ctype);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, s->body, s->len);
    if (s->chunked) {
        evhttp_send_reply_start(req, 200, "OK");
        evhttp_send_reply_chunk(req, b);
        evhttp_send_reply_end(req);
    } else {
        evhttp_send_reply(req, 200, "OK", b);
    }
    evbuffer_free(b);
}

/* Listens on port (0: any free one). */
static bool srv_up(struct srv *s, int port)
{
    s->http = evhttp_new(s->base);
    if (!s->http)
        return false;
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(s->http, srv_handle, s);
    /* libevent adds a text/html type to replies without one */
    evhttp_set_default_content_type(s->http, NULL);
    struct evhttp_bound_socket *bs =
        evhttp_bind_socket_with_handle(s->http, "127.0.0.1", (ev_uint16_t)port);
    if (!bs) {
        evhttp_free(s->http);
        s->http = NULL;
        return false;
    }
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
    s->port = ntohs(sin.sin_port);
    return true;
}

static void srv_down(struct srv *s)
{
    if (s->http)
        evhttp_free(s->http);
    s->http = NULL;
}

/* ---- the fixture ------------------------------------------------------ */

struct rec {
    int fires, saves;
    json_t *last, *state;
    char trigger[64];
    int fire_rc;
    int leave; /* inside fire: 1 unbinds `b`, 2 stops the adapter */
    struct feed_binding *b;
    void **selfp;
};

static int on_fire(void *ctx, const char *ns, const char *trigger, const json_t *params)
{
    struct rec *r = ctx;
    (void)ns;
    snprintf(r->trigger, sizeof r->trigger, "%s", trigger);
    r->fires++;
    json_decref(r->last);
    r->last = json_deep_copy(params);
    if (r->leave == 1) {
        feed_poll_ops.unbind(*r->selfp, r->b);
    } else if (r->leave == 2) {
        feed_poll_ops.stop(*r->selfp);
        *r->selfp = NULL;
    }
    return r->fire_rc;
}

static void on_save(void *ctx, const char *ns, const char *trigger, const json_t *state)
{
    struct rec *r = ctx;
    (void)ns;
    (void)trigger;
    r->saves++;
    json_decref(r->state);
    r->state = json_deep_copy(state);
}

struct fx {
    struct event_base *base;
    struct event *hb; /* keeps the loop turning while we wait */
    struct srv srv;
    struct rec rec;
    struct feed_env env;
    void *self;
};

static void heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* ca: the CA bundle the adapter trusts (NULL: the default). */
static bool fx_init_ca(struct fx *f, const char *ca)
{
    memset(f, 0, sizeof *f);
    signal(SIGPIPE, SIG_IGN); /* as wispd does: the server writes to clients that left */
    f->base = event_base_new();
    f->hb = event_new(f->base, -1, EV_PERSIST, heartbeat, NULL);
    struct timeval tv = {0, 20000};
    event_add(f->hb, &tv);
    f->srv.base = f->base;
    f->srv.status = 200;
    srv_set(&f->srv, "hello", "text/plain", NULL, NULL);
    CHECK(srv_up(&f->srv, 0));
    f->env = (struct feed_env){
        .base = f->base, .fire = on_fire, .save = on_save, .ctx = &f->rec, .tls_ca_file = ca};
    struct wisp_err err = {0};
    int rc = feed_poll_ops.start(&f->env, &f->self, &err);
    CHECK_EQ_INT(rc, 0);
    return rc == 0 && f->srv.http;
}

static bool fx_init(struct fx *f)
{
    return fx_init_ca(f, NULL);
}

static void fx_done(struct fx *f)
{
    if (f->self)
        feed_poll_ops.stop(f->self);
    /* as wispd does: a last turn for what libevent deferred (a cancelled
     * DNS lookup frees itself there) */
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    srv_down(&f->srv);
    free(f->srv.body);
    event_free(f->hb);
    event_base_free(f->base);
    json_decref(f->rec.last);
    json_decref(f->rec.state);
}

#define WAIT_UNTIL(f, cond, ms)                                                                    \
    do {                                                                                           \
        int64_t end_ = plat_clock_mono_us() + (int64_t)(ms)*1000;                                  \
        while (!(cond) && plat_clock_mono_us() < end_)                                             \
            event_base_loop((f)->base, EVLOOP_ONCE);                                               \
    } while (0)

/* Binds with params given as JSON text, in which %d is port. */
static int bind_port(struct fx *f, int port, const json_t *state, struct feed_binding **b,
                     struct wisp_err *err, const char *fmt)
{
    char text[1024], num[16];
    size_t o = 0;
    snprintf(num, sizeof num, "%d", port);
    for (const char *p = fmt; *p && o < sizeof text - 16; p++) {
        if (p[0] == '%' && p[1] == 'd') {
            o += (size_t)snprintf(text + o, sizeof text - o, "%s", num);
            p++;
        } else {
            text[o++] = *p;
        }
    }
    text[o] = '\0';
    json_error_t je;
    json_t *p = json_loads(text, 0, &je);
    if (!p) {
        fprintf(stderr, "bad test JSON: %s: %s\n", text, je.text);
        return -999;
    }
    memset(err, 0, sizeof *err);
    int rc = feed_poll_ops.bind(f->self, "guest", "t1", p, state, b, err);
    json_decref(p);
    if (rc && rc != -EINVAL)
        fprintf(stderr, "  bind: %s\n", err->msg);
    return rc;
}

/* The same with the evhttp server's port. */
static int bind_fmt(struct fx *f, const json_t *state, struct feed_binding **b,
                    struct wisp_err *err, const char *fmt)
{
    return bind_port(f, f->srv.port, state, b, err, fmt);
}

static long long st_int(struct fx *f, const struct feed_binding *b, const char *key)
{
    json_t *s = feed_poll_ops.status(f->self, b);
    json_t *v = json_object_get(s, key);
    long long n = json_is_integer(v) ? json_integer_value(v) : json_is_true(v) ? 1 : -1;
    json_decref(s);
    return n;
}

/* The status's lastError, copied ("" when null). */
static const char *st_error(struct fx *f, const struct feed_binding *b)
{
    static char buf[256];
    json_t *s = feed_poll_ops.status(f->self, b);
    const char *e = json_string_value(json_object_get(s, "lastError"));
    snprintf(buf, sizeof buf, "%s", e ? e : "");
    json_decref(s);
    return buf;
}

#define POLLS(f, b) st_int((f), (b), "polls")

/* Polls now instead of at the next tick: an unpaused binding polls right
 * away. Waits for that poll to be handled. */
static void poll_now(struct fx *f, struct feed_binding *b)
{
    long long polls = POLLS(f, b);
    feed_poll_ops.set_paused(f->self, b, true);
    feed_poll_ops.set_paused(f->self, b, false);
    WAIT_UNTIL(f, POLLS(f, b) > polls, 5000);
    CHECK_EQ_INT(POLLS(f, b), polls + 1);
}

/* ---- tests ------------------------------------------------------------ */

static void poll_first_fires_then_304(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    srv_set(&f.srv, "hello", "text/plain", "\"v1\"", "Tue, 01 Jan 2030 00:00:00 GMT");
    CHECK_EQ_INT(bind_fmt(&f, NULL, &b, &err,
                          "{\"url\": \"http://127.0.0.1:%d/res?x=1\", \"interval\": 1, "
                          "\"trigger_payload\": {\"a\": 1, \"status\": \"mine\"}}"),
                 0);
    CHECK_EQ_INT(f.rec.fires, 0); /* never inside bind() */
    WAIT_UNTIL(&f, f.rec.fires >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 1);
    CHECK_STREQ(f.rec.trigger, "t1");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/res?x=1", f.srv.port);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "url")), url);
    CHECK_EQ_INT(json_integer_value(json_object_get(f.rec.last, "status")), 200);
    CHECK_EQ_INT(json_integer_value(json_object_get(f.rec.last, "a")), 1);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "body")), "hello");
    CHECK(json_object_get(f.rec.last, "body_base64") == NULL);
    json_t *h = json_object_get(f.rec.last, "headers");
    CHECK_STREQ(json_string_value(json_object_get(h, "etag")), "\"v1\"");
    CHECK_STREQ(json_string_value(json_object_get(h, "last-modified")),
                "Tue, 01 Jan 2030 00:00:00 GMT");
    CHECK_STREQ(json_string_value(json_object_get(h, "content-type")), "text/plain");
    /* the first request had no validators; Host names the url's host */
    CHECK_STREQ(f.srv.inm, "");
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", f.srv.port);
    CHECK_STREQ(f.srv.host, host);
    /* state saved after the fire */
    CHECK_EQ_INT(f.rec.saves, 1);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.state, "etag")), "\"v1\"");
    CHECK_STREQ(json_string_value(json_object_get(f.rec.state, "lastModified")),
                "Tue, 01 Jan 2030 00:00:00 GMT");
    CHECK(json_string_length(json_object_get(f.rec.state, "hash")) == 64);

    /* unchanged: a conditional request, a 304, no fire */
    WAIT_UNTIL(&f, POLLS(&f, b) >= 2, 5000);
    CHECK_EQ_INT(POLLS(&f, b), 2);
    CHECK_EQ_INT(f.rec.fires, 1);
    CHECK_EQ_INT(f.srv.n304, 1);
    CHECK_STREQ(f.srv.inm, "\"v1\"");
    CHECK_STREQ(f.srv.ims, "Tue, 01 Jan 2030 00:00:00 GMT");
    CHECK_EQ_INT(st_int(&f, b, "lastStatus"), 304);
    CHECK_EQ_INT(st_int(&f, b, "changes"), 1);

    /* changed: fires again with the new body */
    srv_set(&f.srv, "world", "text/plain", "\"v2\"", NULL);
    WAIT_UNTIL(&f, f.rec.fires >= 2, 5000);
    CHECK_EQ_INT(f.rec.fires, 2);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "body")), "world");
    CHECK_STREQ(json_string_value(json_object_get(f.rec.state, "etag")), "\"v2\"");
    CHECK(json_is_null(json_object_get(f.rec.state, "lastModified")) ||
          !json_object_get(f.rec.state, "lastModified"));
    json_t *st = feed_poll_ops.status(f.self, b);
    CHECK_EQ_INT(json_integer_value(json_object_get(st, "fires")), 2);
    CHECK_EQ_INT(json_integer_value(json_object_get(st, "changes")), 2);
    CHECK_EQ_INT(json_integer_value(json_object_get(st, "errors")), 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(st, "interval")), 1);
    CHECK(json_is_false(json_object_get(st, "paused")));
    CHECK(json_is_null(json_object_get(st, "lastError")));
    CHECK(json_integer_value(json_object_get(st, "lastPoll")) > 0);
    json_decref(st);
    struct feed_counters c;
    feed_poll_ops.counters(f.self, &c);
    CHECK_EQ_INT(c.fires, 2);
    CHECK_EQ_INT(c.events_in, 2);
    feed_poll_ops.unbind(f.self, b);
out:
    fx_done(&f);
}

static void poll_hash_without_validators_and_json(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    srv_set(&f.srv, "{\"x\": 1, \"list\": [1, 2]}", "application/json; charset=utf-8", NULL, NULL);
    CHECK_EQ_INT(bind_fmt(&f, NULL, &b, &err,
                          "{\"url\": \"http://localhost:%d/\", \"interval\": \"1\", "
                          "\"headers\": {\"X-Token\": \"abc\"}}"),
                 0);
    WAIT_UNTIL(&f, f.rec.fires >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 1);
    json_t *body = json_object_get(f.rec.last, "body");
    CHECK(json_is_object(body));
    CHECK_EQ_INT(json_integer_value(json_object_get(body, "x")), 1);
    CHECK_EQ_INT(json_array_size(json_object_get(body, "list")), 2);
    CHECK(json_object_size(json_object_get(f.rec.last, "headers")) == 1); /* content-type */
    /* no validators: unchanged content is found by its hash */
    WAIT_UNTIL(&f, POLLS(&f, b) >= 2, 5000);
    CHECK_EQ_INT(POLLS(&f, b), 2);
    CHECK_EQ_INT(f.rec.fires, 1);
    CHECK_STREQ(f.srv.inm, "");
    CHECK_STREQ(f.srv.ims, "");
    CHECK_EQ_INT(f.srv.n304, 0);
    CHECK_EQ_INT(st_int(&f, b, "lastStatus"), 200);
    /* the header values are not shown, their names are */
    json_t *st = feed_poll_ops.status(f.self, b);
    char *dump = json_dumps(st, 0);
    CHECK(dump && strstr(dump, "X-Token") && !strstr(dump, "abc"));
    free(dump);
    json_decref(st);
    /* a change fires the new body */
    srv_set(&f.srv, "{\"x\": 2}", "application/json", NULL, NULL);
    WAIT_UNTIL(&f, f.rec.fires >= 2, 5000);
    CHECK_EQ_INT(f.rec.fires, 2);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(f.rec.last, "body"), "x")), 2);
    /* JSON-looking text that is not declared JSON stays text */
    srv_set(&f.srv, "{\"x\": 3}", "text/plain", NULL, NULL);
    poll_now(&f, b);
    CHECK_EQ_INT(f.rec.fires, 3);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "body")), "{\"x\": 3}");
    feed_poll_ops.unbind(f.self, b);
out:
    fx_done(&f);
}

static void poll_errors_and_recovery(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    srv_set(&f.srv, "one", "text/plain", NULL, NULL);
    CHECK_EQ_INT(
        bind_fmt(&f, NULL, &b, &err, "{\"url\": \"http://127.0.0.1:%d/\", \"interval\": 1}"), 0);
    WAIT_UNTIL(&f, f.rec.fires >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 1);
    int port = f.srv.port;
    /* server down: connection refused, counted, no fire */
    srv_down(&f.srv);
    poll_now(&f, b);
    CHECK_EQ_INT(st_int(&f, b, "errors"), 1);
    CHECK(strstr(st_error(&f, b), "connect") != NULL);
    CHECK_EQ_INT(st_int(&f, b, "lastStatus"), -1); /* null */
    CHECK_EQ_INT(f.rec.fires, 1);
    /* and at the next tick, again */
    WAIT_UNTIL(&f, st_int(&f, b, "errors") >= 2, 5000);
    CHECK_EQ_INT(st_int(&f, b, "errors"), 2);
    CHECK_EQ_INT(f.rec.fires, 1);
    /* back, unchanged: no fire, the error clears */
    CHECK(srv_up(&f.srv, port));
    poll_now(&f, b);
    CHECK_EQ_INT(st_int(&f, b, "lastStatus"), 200);
    CHECK_STREQ(st_error(&f, b), "");
    CHECK_EQ_INT(f.rec.fires, 1);
    /* 5xx: an error, no fire, even though the body differs */
    f.srv.status = 503;
    srv_set(&f.srv, "two", "text/plain", NULL, NULL);
    poll_now(&f, b);
    CHECK_EQ_INT(st_int(&f, b, "errors"), 3);
    CHECK_EQ_INT(st_int(&f, b, "lastStatus"), 503);
    CHECK(strstr(st_error(&f, b), "503") != NULL);
    CHECK_EQ_INT(f.rec.fires, 1);
    /* a server that never answers: the request times out */
    f.srv.status = 200;
    f.srv.hang = true;
    poll_now(&f, b);
    CHECK_EQ_INT(st_int(&f, b, "errors"), 4);
    CHECK(strstr(st_error(&f, b), "timed out") != NULL);
    CHECK_EQ_INT(f.rec.fires, 1);
    /* recovered and changed: fires */
    f.srv.hang = false;
    poll_now(&f, b);
    CHECK_EQ_INT(f.rec.fires, 2);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "body")), "two");
    CHECK_EQ_INT(st_int(&f, b, "errors"), 4);
    feed_poll_ops.unbind(f.self, b);
out:
    fx_done(&f);
}

static void poll_state_restored(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    json_t *state = NULL;
    const char *params = "{\"url\": \"http://127.0.0.1:%d/s\", \"interval\": 1}";
    if (!fx_init(&f))
        goto out;
    srv_set(&f.srv, "same", "text/plain", "\"e1\"", NULL);
    CHECK_EQ_INT(bind_fmt(&f, NULL, &b, &err, params), 0);
    WAIT_UNTIL(&f, f.rec.fires >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 1);
    state = json_deep_copy(f.rec.state);
    CHECK(state != NULL);
    feed_poll_ops.unbind(f.self, b);
    /* "restart": bound again with the saved state; the first poll is
     * conditional and nothing fires */
    int before = f.srv.requests;
    CHECK_EQ_INT(bind_fmt(&f, state, &b, &err, params), 0);
    WAIT_UNTIL(&f, POLLS(&f, b) >= 1, 5000);
    CHECK_EQ_INT(f.srv.requests, before + 1);
    CHECK_STREQ(f.srv.inm, "\"e1\"");
    CHECK_EQ_INT(st_int(&f, b, "lastStatus"), 304);
    CHECK_EQ_INT(f.rec.fires, 1);
    feed_poll_ops.unbind(f.self, b);
    /* the same state without validators: the hash alone holds */
    srv_set(&f.srv, "same", "text/plain", NULL, NULL);
    json_object_del(state, "etag");
    CHECK_EQ_INT(bind_fmt(&f, state, &b, &err, params), 0);
    WAIT_UNTIL(&f, POLLS(&f, b) >= 1, 5000);
    CHECK_EQ_INT(st_int(&f, b, "lastStatus"), 200);
    CHECK_STREQ(f.srv.inm, "");
    CHECK_EQ_INT(f.rec.fires, 1);
    feed_poll_ops.unbind(f.self, b);
    /* a state saved for another url does not apply */
    CHECK_EQ_INT(
        bind_fmt(&f, state, &b, &err, "{\"url\": \"http://127.0.0.1:%d/other\", \"interval\": 1}"),
        0);
    WAIT_UNTIL(&f, f.rec.fires >= 2, 5000);
    CHECK_EQ_INT(f.rec.fires, 2);
    feed_poll_ops.unbind(f.self, b);
out:
    json_decref(state);
    fx_done(&f);
}

static void poll_pause_stops_polling(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    CHECK_EQ_INT(
        bind_fmt(&f, NULL, &b, &err, "{\"url\": \"http://127.0.0.1:%d/\", \"interval\": 1}"), 0);
    WAIT_UNTIL(&f, f.rec.fires >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 1);
    feed_poll_ops.set_paused(f.self, b, true);
    CHECK_EQ_INT(st_int(&f, b, "paused"), 1);
    int before = f.srv.requests;
    long long polls = POLLS(&f, b);
    srv_set(&f.srv, "changed while paused", "text/plain", NULL, NULL);
    WAIT_UNTIL(&f, false, 1600); /* more than an interval */
    CHECK_EQ_INT(f.srv.requests, before);
    CHECK_EQ_INT(POLLS(&f, b), polls);
    CHECK_EQ_INT(f.rec.fires, 1);
    /* unpaused: polls again and fires the change */
    feed_poll_ops.set_paused(f.self, b, false);
    WAIT_UNTIL(&f, f.rec.fires >= 2, 5000);
    CHECK_EQ_INT(f.rec.fires, 2);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "body")), "changed while paused");
    feed_poll_ops.unbind(f.self, b);
out:
    fx_done(&f);
}

static void poll_oversized_body_dropped(void)
{
    struct fx f;
    struct feed_binding *b = NULL, *b2 = NULL;
    struct wisp_err err;
    size_t big = 1024 * 1024 + 1;
    char *data = NULL;
    if (!fx_init(&f))
        goto out;
    data = malloc(big);
    memset(data, 'a', big);
    srv_set_bytes(&f.srv, data, big);
    CHECK_EQ_INT(
        bind_fmt(&f, NULL, &b, &err, "{\"url\": \"http://127.0.0.1:%d/\", \"interval\": 1}"), 0);
    WAIT_UNTIL(&f, POLLS(&f, b) >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 0);
    CHECK_EQ_INT(st_int(&f, b, "drops"), 1);
    CHECK(strstr(st_error(&f, b), "too large") != NULL);
    feed_poll_ops.unbind(f.self, b);
    /* the same without Content-Length (chunked) */
    f.srv.chunked = true;
    CHECK_EQ_INT(
        bind_fmt(&f, NULL, &b2, &err, "{\"url\": \"http://127.0.0.1:%d/\", \"interval\": 1}"), 0);
    WAIT_UNTIL(&f, POLLS(&f, b2) >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 0);
    CHECK_EQ_INT(st_int(&f, b2, "drops"), 1);
    CHECK(strstr(st_error(&f, b2), "too large") != NULL);
    /* back under the limit (and binary): fires, base64 */
    const unsigned char bin[] = {0xff, 0x00, 0xfe, 'x'};
    srv_set_bytes(&f.srv, bin, sizeof bin);
    snprintf(f.srv.ctype, sizeof f.srv.ctype, "application/octet-stream");
    WAIT_UNTIL(&f, f.rec.fires >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 1);
    CHECK(json_is_true(json_object_get(f.rec.last, "body_base64")));
    const char *b64 = json_string_value(json_object_get(f.rec.last, "body"));
    unsigned char dec[16];
    size_t dl = 0;
    CHECK(b64 && mbedtls_base64_decode(dec, sizeof dec, &dl, (const unsigned char *)b64,
                                       strlen(b64)) == 0);
    CHECK(dl == sizeof bin && memcmp(dec, bin, sizeof bin) == 0);
    CHECK_STREQ(st_error(&f, b2), "");
    feed_poll_ops.unbind(f.self, b2);
out:
    free(data);
    fx_done(&f);
}

static void poll_head_method(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    srv_set(&f.srv, "body", "text/plain", NULL, "Tue, 01 Jan 2030 00:00:00 GMT");
    CHECK_EQ_INT(bind_fmt(&f, NULL, &b, &err,
                          "{\"url\": \"http://127.0.0.1:%d/\", \"interval\": 1, "
                          "\"method\": \"HEAD\"}"),
                 0);
    WAIT_UNTIL(&f, f.rec.fires >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 1);
    CHECK(json_object_get(f.rec.last, "body") == NULL);
    CHECK_STREQ(
        json_string_value(json_object_get(json_object_get(f.rec.last, "headers"), "last-modified")),
        "Tue, 01 Jan 2030 00:00:00 GMT");
    /* Last-Modified matches: 304 */
    WAIT_UNTIL(&f, POLLS(&f, b) >= 2, 5000);
    CHECK_EQ_INT(f.srv.n304, 1);
    CHECK_EQ_INT(f.rec.fires, 1);
    srv_set(&f.srv, "body", "text/plain", NULL, "Wed, 02 Jan 2030 00:00:00 GMT");
    WAIT_UNTIL(&f, f.rec.fires >= 2, 5000);
    CHECK_EQ_INT(f.rec.fires, 2);
    feed_poll_ops.unbind(f.self, b);
out:
    fx_done(&f);
}

static void poll_fire_refused_is_retried(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    f.rec.fire_rc = -EAGAIN;
    CHECK_EQ_INT(
        bind_fmt(&f, NULL, &b, &err, "{\"url\": \"http://127.0.0.1:%d/\", \"interval\": 1}"), 0);
    WAIT_UNTIL(&f, f.rec.fires >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 1);
    CHECK_EQ_INT(f.rec.saves, 0);
    CHECK_EQ_INT(st_int(&f, b, "drops"), 1);
    CHECK_EQ_INT(st_int(&f, b, "fires"), 0);
    f.rec.fire_rc = 0;
    WAIT_UNTIL(&f, f.rec.fires >= 2, 5000); /* the same content, offered again */
    CHECK_EQ_INT(f.rec.fires, 2);
    CHECK_EQ_INT(f.rec.saves, 1);
    CHECK_EQ_INT(st_int(&f, b, "fires"), 1);
    feed_poll_ops.unbind(f.self, b);
out:
    fx_done(&f);
}

static void expect_einval(struct fx *f, const char *params, const char *word)
{
    struct feed_binding *b = NULL;
    struct wisp_err err;
    int rc = bind_fmt(f, NULL, &b, &err, params);
    CHECK_EQ_INT(rc, -EINVAL);
    if (!strstr(err.msg, word)) {
        fprintf(stderr, "  '%s' not in '%s'\n", word, err.msg);
        CHECK(false);
    }
    if (rc == 0)
        feed_poll_ops.unbind(f->self, b);
}

static void poll_bad_params(void)
{
    struct fx f;
    if (!fx_init(&f))
        goto out;
    expect_einval(&f, "{\"interval\": 5}", "url: missing");
    expect_einval(&f, "{\"url\": 5}", "url");
    expect_einval(&f, "{\"url\": \"http://[1:2:3:4:5:6:7:8:9]:%d/\"}", "url");
    expect_einval(&f, "{\"url\": \"ftp://127.0.0.1:%d/\"}", "http://");
    expect_einval(&f, "{\"url\": \"not a url %d\"}", "url");
    expect_einval(&f, "{\"url\": \"http://u:p@127.0.0.1:%d/\"}", "Authorization");
    expect_einval(&f, "{\"url\": \"http://127.0.0.1:%d/\", \"interval\": 0}", "interval");
    expect_einval(&f, "{\"url\": \"http://127.0.0.1:%d/\", \"interval\": -3}", "interval");
    expect_einval(&f, "{\"url\": \"http://127.0.0.1:%d/\", \"interval\": 1.5}", "interval");
    expect_einval(&f, "{\"url\": \"http://127.0.0.1:%d/\", \"method\": \"POST\"}", "method");
    expect_einval(&f, "{\"url\": \"http://127.0.0.1:%d/\", \"headers\": {\"A\": 1}}", "headers");
    expect_einval(&f, "{\"url\": \"http://127.0.0.1:%d/\", \"headers\": {\"A\": \"x\\r\\nB: y\"}}",
                  "headers");
    expect_einval(&f,
                  "{\"url\": \"http://127.0.0.1:%d/\", \"headers\": {\"If-None-Match\": \"x\"}}",
                  "headers");
    expect_einval(&f, "{\"url\": \"http://127.0.0.1:%d/\", \"trigger_payload\": 5}",
                  "trigger_payload");
    CHECK_EQ_INT(f.rec.fires, 0);
    /* accepted forms: an IPv6 literal, localhost, the defaults */
    struct feed_binding *b = NULL;
    struct wisp_err err;
    CHECK_EQ_INT(bind_fmt(&f, NULL, &b, &err, "{\"url\": \"http://[::1]:%d/x\"}"), 0);
    if (b) {
        CHECK_EQ_INT(st_int(&f, b, "interval"), 60);
        CHECK_EQ_INT(st_int(&f, b, "timeout"), 30);
        feed_poll_ops.unbind(f.self, b);
    }
    /* host names and https (checked when they poll, not at bind) */
    const char *fine[] = {
        "{\"url\": \"http://LOCALHOST:%d\"}", "{\"url\": \"http://gateway.example.com:%d/x\"}",
        "{\"url\": \"https://api.example.com/status\"}", "{\"url\": \"https://[::1]:%d/\"}"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(fine); i++) {
        b = NULL;
        CHECK_EQ_INT(bind_fmt(&f, NULL, &b, &err, fine[i]), 0);
        if (b)
            feed_poll_ops.unbind(f.self, b);
    }
out:
    fx_done(&f);
}

/* core may unbind, or stop the adapter, from inside fire; and either may
 * come while a request is out */
static void poll_unbind_and_stop_anywhere(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    const char *params = "{\"url\": \"http://127.0.0.1:%d/\", \"interval\": 1}";
    if (!fx_init(&f))
        goto out;
    f.rec.selfp = &f.self;
    f.rec.leave = 1;
    CHECK_EQ_INT(bind_fmt(&f, NULL, &b, &err, params), 0);
    f.rec.b = b;
    WAIT_UNTIL(&f, f.rec.fires >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 1);
    CHECK_EQ_INT(f.rec.saves, 0); /* unbound inside fire: no save for it */
    /* unbound while its request is out */
    f.rec.leave = 0;
    f.srv.hang = true;
    int before = f.srv.requests;
    CHECK_EQ_INT(bind_fmt(&f, NULL, &b, &err, params), 0);
    WAIT_UNTIL(&f, f.srv.requests > before, 5000);
    feed_poll_ops.unbind(f.self, b);
    WAIT_UNTIL(&f, false, 200);
    /* stopped inside fire */
    f.srv.hang = false;
    f.rec.leave = 2;
    CHECK_EQ_INT(bind_fmt(&f, NULL, &b, &err, params), 0);
    WAIT_UNTIL(&f, f.rec.fires >= 2, 5000);
    CHECK_EQ_INT(f.rec.fires, 2);
    CHECK(f.self == NULL);
    /* stopped while a request is out */
    f.rec.leave = 0;
    f.srv.hang = true;
    CHECK_EQ_INT(feed_poll_ops.start(&f.env, &f.self, &err), 0);
    before = f.srv.requests;
    CHECK_EQ_INT(bind_fmt(&f, NULL, &b, &err, params), 0);
    WAIT_UNTIL(&f, f.srv.requests > before, 5000);
    CHECK_EQ_INT(f.srv.requests, before + 1);
out:
    fx_done(&f); /* stop() with the request out */
}

/* ---- host names over evdns ------------------------------------------- */

static void poll_host_names_resolved_on_the_loop(void)
{
    struct fx f;
    struct feed_binding *b = NULL, *nx = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    srv_set(&f.srv, "by name", "text/plain", NULL, NULL);
    /* localhost comes from /etc/hosts through evdns, not from a shortcut */
    CHECK_EQ_INT(
        bind_fmt(&f, NULL, &b, &err, "{\"url\": \"http://localhost:%d/n\", \"interval\": 1}"), 0);
    WAIT_UNTIL(&f, f.rec.fires >= 1, 5000);
    CHECK_EQ_INT(f.rec.fires, 1);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "body")), "by name");
    char host[64];
    snprintf(host, sizeof host, "localhost:%d", f.srv.port);
    CHECK_STREQ(f.srv.host, host);
    feed_poll_ops.unbind(f.self, b);
    /* a name no resolver knows: an error naming it, no fire, and the
     * binding polls again at the next interval */
    CHECK_EQ_INT(bind_fmt(&f, NULL, &nx, &err,
                          "{\"url\": \"http://nonexistent.invalid:%d/\", \"interval\": 1}"),
                 0);
    WAIT_UNTIL(&f, POLLS(&f, nx) >= 2, 10000);
    CHECK_EQ_INT(POLLS(&f, nx), 2);
    CHECK_EQ_INT(st_int(&f, nx, "errors"), 2);
    CHECK(strstr(st_error(&f, nx), "nonexistent.invalid") != NULL);
    CHECK_EQ_INT(st_int(&f, nx, "lastStatus"), -1);
    CHECK_EQ_INT(f.rec.fires, 1);
    feed_poll_ops.unbind(f.self, nx);
    /* stopped while a lookup may be out: nothing leaks (ASan), no callback */
    CHECK_EQ_INT(bind_fmt(&f, NULL, &nx, &err,
                          "{\"url\": \"http://nonexistent.invalid:%d/\", \"interval\": 1}"),
                 0);
    event_base_loop(f.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
out:
    fx_done(&f);
}

/* ---- https ------------------------------------------------------------ */

/* Certificates made by openssl in a temp dir, and python3 HTTPS servers
 * serving dir/body: */
struct tls_fx {
    char dir[64], ca[128], body[128];
    pid_t pid;
    int in_fd;    /* the server's stdin: closing it stops it */
    int good;     /* a certificate for localhost from our CA */
    int other_ca; /* a certificate for localhost from another CA */
    int wrong_cn; /* a certificate for wrong.example from our CA */
};

static bool sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "  failed (%d): %s\n", rc, cmd);
    return rc == 0;
}

static void write_body(const struct tls_fx *t, const char *text)
{
    FILE *fp = fopen(t->body, "w");
    CHECK(fp != NULL);
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

static bool tls_fx_up(struct tls_fx *t)
{
    memset(t, 0, sizeof *t);
    t->pid = -1;
    t->in_fd = -1;
    snprintf(t->dir, sizeof t->dir, "/tmp/wisp-poll-tls-XXXXXX");
    if (!mkdtemp(t->dir))
        return false;
    snprintf(t->ca, sizeof t->ca, "%s/ca.pem", t->dir);
    snprintf(t->body, sizeof t->body, "%s/body", t->dir);
    write_body(t, "v1");
    /* EC P-256 keys: quick to make, and mbedtls speaks them */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "(cd %s && K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes' && "
             "CAX='-addext basicConstraints=critical,CA:TRUE "
             "-addext keyUsage=critical,keyCertSign,cRLSign' && "
             "openssl req -x509 $K -keyout ca.key -out ca.pem -days 2 "
             "-subj /CN=wisp-test-ca $CAX && "
             "openssl req -x509 $K -keyout ca2.key -out ca2.pem -days 2 "
             "-subj /CN=wisp-other-ca $CAX && "
             "mk() { openssl req $K -keyout $1.key -out $1.csr -subj /CN=$2 && "
             "echo subjectAltName=DNS:$2 > $1.ext && "
             "openssl x509 -req -in $1.csr -CA $3.pem -CAkey $3.key -CAcreateserial "
             "-out $1.pem -days 2 -extfile $1.ext; } && "
             "mk good localhost ca && mk other localhost ca2 && mk wrong wrong.example ca",
             t->dir);
    size_t cl = strlen(cmd);
    snprintf(cmd + cl, sizeof cmd - cl, ") >/dev/null 2>&1");
    if (!sh("command -v openssl >/dev/null && command -v python3 >/dev/null") || !sh(cmd))
        return false;
    int in[2], out[2];
    if (pipe(in) || pipe(out))
        return false;
    char script[512], good[256], other[256], wrong[256];
    snprintf(script, sizeof script, "%s/tests/unit/https_server.py", WISP_SOURCE_DIR);
    snprintf(good, sizeof good, "%s/good.pem:%s/good.key", t->dir, t->dir);
    snprintf(other, sizeof other, "%s/other.pem:%s/other.key", t->dir, t->dir);
    snprintf(wrong, sizeof wrong, "%s/wrong.pem:%s/wrong.key", t->dir, t->dir);
    t->pid = fork();
    if (t->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execlp("python3", "python3", script, t->body, good, other, wrong, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    t->in_fd = in[1];
    /* the ports line, with a deadline */
    char line[128] = "";
    size_t n = 0;
    int64_t end = plat_clock_mono_us() + 20 * 1000000LL;
    while (t->pid > 0 && !memchr(line, '\n', n) && n < sizeof line - 1 &&
           plat_clock_mono_us() < end) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t r = read(out[0], line + n, sizeof line - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    line[n] = '\0';
    close(out[0]);
    return sscanf(line, "%d %d %d", &t->good, &t->other_ca, &t->wrong_cn) == 3;
}

static void tls_fx_down(struct tls_fx *t)
{
    if (t->in_fd >= 0)
        close(t->in_fd);
    if (t->pid > 0) {
        int st;
        kill(t->pid, SIGTERM);
        waitpid(t->pid, &st, 0);
    }
    if (t->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", t->dir);
        sh(cmd);
    }
}

static void poll_https_fires_on_change_only(void)
{
    struct tls_fx t;
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    bool up = tls_fx_up(&t);
    CHECK(up);
    if (!fx_init_ca(&f, t.ca) || !up)
        goto out;
    CHECK_EQ_INT(bind_port(&f, t.good, NULL, &b, &err,
                           "{\"url\": \"https://localhost:%d/status\", \"interval\": 1}"),
                 0);
    WAIT_UNTIL(&f, f.rec.fires >= 1, 10000);
    CHECK_EQ_INT(f.rec.fires, 1);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "body")), "v1");
    char url[96];
    snprintf(url, sizeof url, "https://localhost:%d/status", t.good);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "url")), url);
    CHECK_STREQ(st_error(&f, b), "");
    /* unchanged: the ETag comes back, a 304, no fire */
    WAIT_UNTIL(&f, POLLS(&f, b) >= 2, 10000);
    CHECK_EQ_INT(POLLS(&f, b), 2);
    CHECK_EQ_INT(st_int(&f, b, "lastStatus"), 304);
    CHECK_EQ_INT(f.rec.fires, 1);
    /* changed: fires the new body */
    write_body(&t, "v2");
    WAIT_UNTIL(&f, f.rec.fires >= 2, 10000);
    CHECK_EQ_INT(f.rec.fires, 2);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "body")), "v2");
    CHECK_EQ_INT(st_int(&f, b, "errors"), 0);
    feed_poll_ops.unbind(f.self, b);
out:
    fx_done(&f);
    tls_fx_down(&t);
}

/* Waits for the binding's first poll; it must be an error containing want. */
static void expect_poll_error(struct fx *f, struct feed_binding *b, const char *want)
{
    WAIT_UNTIL(f, POLLS(f, b) >= 1, 10000);
    CHECK(POLLS(f, b) >= 1);
    CHECK(st_int(f, b, "errors") >= 1);
    if (!strstr(st_error(f, b), want)) {
        fprintf(stderr, "  '%s' not in '%s'\n", want, st_error(f, b));
        CHECK(false);
    }
}

static void poll_https_rejects_bad_certificates(void)
{
    struct tls_fx t;
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    const char *url = "{\"url\": \"https://localhost:%d/\", \"interval\": 1}";
    bool up = tls_fx_up(&t);
    CHECK(up);
    if (!fx_init_ca(&f, t.ca) || !up)
        goto out;
    /* from a CA we do not trust */
    CHECK_EQ_INT(bind_port(&f, t.other_ca, NULL, &b, &err, url), 0);
    expect_poll_error(&f, b, "TLS: certificate verify failed: ");
    CHECK(strstr(st_error(&f, b), "trusted") != NULL);
    feed_poll_ops.unbind(f.self, b);
    /* from our CA, for another name */
    CHECK_EQ_INT(bind_port(&f, t.wrong_cn, NULL, &b, &err, url), 0);
    expect_poll_error(&f, b, "TLS: certificate verify failed: ");
    CHECK(strstr(st_error(&f, b), "CN") != NULL);
    feed_poll_ops.unbind(f.self, b);
    /* the right certificate under a name it does not carry (127.0.0.1) */
    CHECK_EQ_INT(bind_port(&f, t.good, NULL, &b, &err,
                           "{\"url\": \"https://127.0.0.1:%d/\", \"interval\": 1}"),
                 0);
    expect_poll_error(&f, b, "TLS: certificate verify failed: ");
    feed_poll_ops.unbind(f.self, b);
    /* https to a plain HTTP server */
    CHECK_EQ_INT(bind_fmt(&f, NULL, &b, &err, url), 0);
    expect_poll_error(&f, b, "TLS: ");
    feed_poll_ops.unbind(f.self, b);
    CHECK_EQ_INT(f.rec.fires, 0);
    /* with the system bundle instead of ours, our CA is not trusted
     * either (the bundle loads lazily, at the first https poll) */
    feed_poll_ops.stop(f.self);
    f.env.tls_ca_file = NULL;
    CHECK_EQ_INT(feed_poll_ops.start(&f.env, &f.self, &err), 0);
    CHECK_EQ_INT(bind_port(&f, t.good, NULL, &b, &err, url), 0);
    expect_poll_error(&f, b, "TLS: ");
    feed_poll_ops.unbind(f.self, b);
    /* a CA file that is not there: every https poll says so */
    feed_poll_ops.stop(f.self);
    f.env.tls_ca_file = "/nonexistent/ca.pem";
    CHECK_EQ_INT(feed_poll_ops.start(&f.env, &f.self, &err), 0);
    CHECK_EQ_INT(bind_port(&f, t.good, NULL, &b, &err, url), 0);
    expect_poll_error(&f, b, "/nonexistent/ca.pem");
    WAIT_UNTIL(&f, POLLS(&f, b) >= 2, 10000);
    CHECK(strstr(st_error(&f, b), "CA bundle") != NULL);
    feed_poll_ops.unbind(f.self, b);
    CHECK_EQ_INT(f.rec.fires, 0);
out:
    fx_done(&f);
    tls_fx_down(&t);
}

static const struct check_test tests[] = {
    {"poll_first_fires_then_304", poll_first_fires_then_304},
    {"poll_hash_without_validators_and_json", poll_hash_without_validators_and_json},
    {"poll_errors_and_recovery", poll_errors_and_recovery},
    {"poll_state_restored", poll_state_restored},
    {"poll_pause_stops_polling", poll_pause_stops_polling},
    {"poll_oversized_body_dropped", poll_oversized_body_dropped},
    {"poll_head_method", poll_head_method},
    {"poll_fire_refused_is_retried", poll_fire_refused_is_retried},
    {"poll_bad_params", poll_bad_params},
    {"poll_unbind_and_stop_anywhere", poll_unbind_and_stop_anywhere},
    {"poll_host_names_resolved_on_the_loop", poll_host_names_resolved_on_the_loop},
    {"poll_https_fires_on_change_only", poll_https_fires_on_change_only},
    {"poll_https_rejects_bad_certificates", poll_https_rejects_bad_certificates},
};

CHECK_MAIN(tests)
