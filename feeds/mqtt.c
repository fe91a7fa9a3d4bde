/* feeds/mqtt.c - the MQTT feed kind (/whisk.system/mqtt/subscribe) and the
 * MQTT client behind result bindings (feed_mqtt_publish). With mqtt_lib.h
 * (the library's functions, loaded when the feed starts), the only file of
 * wispd that includes mosquitto.h; nothing MOSQ_* leaves it.
 *
 * The broker: env->mqtt_url, two client connections for the whole adapter:
 * rx (the client id) subscribes and takes the messages; tx (the client id
 * plus "-out", clean start) publishes the results. One connection would do
 * for both, but libmosquitto acknowledges a message as it reads it, so
 * while core holds messages back the socket is left unread, and the
 * broker's PUBACKs for our results would wait there behind a backlog of
 * messages (after a restart: all of them; the outbox fills). tx is always
 * read. The URL:
 *   mqtt://[user[:pass]@]HOST[:PORT]              (port 1883 by default)
 *   mqtts://[user[:pass]@]HOST[:PORT][?ca=FILE][&insecure=1]   (8883)
 * HOST is an IP literal (IPv6 in brackets) or "localhost" (127.0.0.1):
 * resolving a name would block the loop. user and pass may be
 * percent-encoded and are never logged. mqtts verifies the broker's
 * certificate against the system CAs (/etc/ssl/certs) or, with ?ca=, that
 * one PEM file; the certificate must carry the IP as a subjectAltName IP
 * entry (a CN or DNS name spelling it does not count) unless ?insecure=1,
 * which skips the name check (tests only; the chain and dates are still
 * verified). TLS 1.2 or later. OpenSSL does these checks in a context of
 * ours (mqtt_tls.h), not libmosquitto's.
 *
 * MQTT v5; rx has a stable client id (env->client_id), clean start off and a
 * session expiry interval of SESSION_EXPIRY seconds, so the broker keeps
 * the subscriptions and queues QoS 1/2 messages while wispd is away for a
 * short while (a restart, a broker fail-over); they are delivered when the
 * connection comes back.
 *
 * ---- How the connection is driven (libmosquitto 2.0.11) ----------------
 * Only from the libevent loop; never mosquitto_loop_start/forever/loop.
 *
 * Connecting without blocking: mosquitto_connect() and mosquitto_connect_
 * bind_v5() make a blocking connect(2) (minutes for an address that does
 * not answer). mosquitto_connect_async() is documented for the threaded
 * loop, but in 2.0.11 it is the same internal mosquitto__reconnect() with
 * blocking=false: the socket is made non-blocking before connect(2),
 * EINPROGRESS is accepted, the CONNECT packet is queued at once and
 * mosquitto_want_write() stays true until it is written, once the socket is
 * writable. That is exactly what an external loop needs: we watch
 * mosquitto_socket() for EV_READ always and EV_WRITE while want_write, and
 * call mosquitto_loop_read()/loop_write(). (Checked by experiment: it
 * returns in microseconds for an address that never answers; a refused
 * connection shows up as an error from loop_write; a refused loopback
 * connection may fail synchronously with MOSQ_ERR_ERRNO.) Reconnects use
 * mosquitto_reconnect_async(), which closes the old socket and does the
 * same. The one gap: the async calls take no CONNECT properties, and the
 * session expiry is one. mosquitto_connect_bind_v5() copies its properties
 * into the client (they are then sent by every later connect, async ones
 * included) before it checks its other arguments, so start() calls it once
 * with keepalive 1, which it refuses (MOSQ_ERR_INVAL) before any socket is
 * made: it only stores the properties. Checked on 2.0.11 by capturing the
 * CONNECT bytes of connect_async and reconnect_async, and by the unit test
 * mqtt_persistent_session (a message queued by the broker while the client
 * was away arrives after it comes back: without the property the session
 * would end at the disconnect).
 *
 * A connection attempt that gets no CONNACK within CONNECT_TIMEOUT_MS, or
 * whose socket reports an error (SO_ERROR) before the CONNACK, is abandoned
 * (its socket is closed by the next reconnect_async); the TLS handshake of
 * 2.0.11 otherwise keeps a refused socket readable forever without an
 * error. The socket events are re-created after every (re)connect because
 * the fd changes (and a reused fd number would be a different file).
 * A 1 s timer calls mosquitto_loop_misc() (keepalive PINGs, timeouts) and,
 * for TLS, loop_read() once more (records OpenSSL buffered are invisible
 * to epoll). The MQTT socket is made close-on-exec. TCP_NODELAY is on.
 *
 * Reconnects back off: 1 s doubling to 30 s, +-20 % jitter; a connection
 * that stayed up STABLE_MS resets the backoff (so two wispds fighting over
 * one client id do not reconnect every second).
 *
 * Callbacks: libmosquitto's callbacks only record (messages are copied,
 * acks and state changes noted) and activate a zero-delay event; that event
 * makes every call into core (fires, publish completions, on_connect
 * callbacks) and every SUBSCRIBE after a CONNACK. Nothing re-enters
 * libmosquitto from inside its own callbacks, and core may call any op
 * (even stop) from inside its callbacks.
 *
 * ---- Bindings ----------------------------------------------------------
 * Parameters:
 *   topic    required; a filter with + and # ("a/+/c", "a/#"), or
 *            "$share/GROUP/FILTER" for an MQTT v5 shared subscription (one
 *            of the group's subscribers gets each message)
 *   qos      0, 1 or 2 (default 1)
 *   payload  how a message becomes the fire's params: "json" (default),
 *            "text" or "base64" (see below)
 * One broker subscription per distinct filter, at the highest qos of its
 * bindings, with retain handling "send retained only for a new
 * subscription" (a reconnect does not replay retained messages) and an
 * MQTT v5 subscription identifier derived from the filter (a hash, so it
 * is the same after a restart): a message delivered for several
 * overlapping subscriptions (the broker sends one copy per subscription)
 * fires each binding exactly once. Messages without a known identifier
 * (brokers without them, sessions from before) are matched by topic.
 * Unsubscribed when the last binding of the filter goes (at the next
 * connect when that happens while disconnected). Every filter is
 * subscribed again after every connect, session or not.
 *
 * Messages: every binding whose filter matches (feed_topic_matches) gets a
 * fire; a paused one drops it (counted). With payload "json", a payload
 * that is a JSON object becomes the params, plus "topic" unless it has
 * one. Otherwise (and always with "text") the params are
 *   {"payload": text, "topic", "qos", "retain"}
 * with the payload as text when it is UTF-8 without NUL bytes, else base64
 * with "payload_base64": true ("base64": always base64). At most
 * MAX_QUEUED_MSGS messages / MAX_QUEUED_BYTES wait to be fired (more are
 * dropped and counted); the broker is told the packet size limit
 * (MAX_PACKET) and drops larger messages itself.
 *
 * Back-pressure: libmosquitto acknowledges a message as it reads it, so a
 * message read is the adapter's to keep. When core refuses a fire for now
 * (-EAGAIN, -EBUSY: the namespace at its limits) the message stays first
 * in the queue and is offered again every HOLD_RETRY_MS from the binding
 * it reached; meanwhile at most HOLD_QUEUE messages are read (may_read)
 * and the rest stay at the broker, unacknowledged, in the session. drain()
 * (SIGTERM) reads nothing new and fires what was read.
 *
 * ---- Publishing (tx) ---------------------------------------------------
 * feed_mqtt_connected(): both links are up; the on_connect callbacks run
 * each time that becomes true.
 * feed_mqtt_publish(): -ENOTCONN unless tx is up (the caller keeps the
 * message), -EINVAL for a bad topic/qos or a message the broker can never
 * take, -EAGAIN with MAX_OUTSTANDING publishes unanswered. Otherwise cb
 * follows (from the loop): 0 on PUBACK/PUBCOMP (QoS 1/2) or once written
 * (QoS 0); -EIO when the broker refused it (a v5 reason code >= 0x80);
 * -ENOTCONN for everything outstanding when the connection drops. QoS 1
 * semantics: may duplicate, never lost (libmosquitto itself also resends
 * its unacknowledged messages after a reconnect; their late acks are
 * ignored). stop() drops outstanding callbacks without calling them. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "feed.h"
#include "log.h"
#include "mqtt_lib.h"
#include "mqtt_tls.h"
#include "plat.h"
#include "wjson.h"

#define KEEPALIVE 30             /* seconds */
#define SESSION_EXPIRY 3600      /* seconds the broker keeps our session */
#define CONNECT_TIMEOUT_MS 10000 /* TCP + TLS + CONNACK */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define STABLE_MS 10000               /* up this long: the backoff starts over */
#define MAX_PACKET (4u * 1024 * 1024) /* largest packet we accept */
#define MAX_OUTSTANDING 10000         /* unanswered publishes */
#define MAX_QUEUED_MSGS 10000         /* received, not fired yet */
#define MAX_QUEUED_BYTES (64u * 1024 * 1024)
#define FIRE_BATCH 256   /* messages fired per loop turn */
#define READ_BURST 16    /* packets read per socket wake-up */
#define HOLD_QUEUE 64    /* held: read no more once this many wait */
#define HOLD_RETRY_MS 10 /* held: offer the first message again this often */
#define MAX_FILTER 65535
#define MAX_SUBID 268435455u
#define MAX_IDS 8           /* subscription ids kept per message */
#define MAX_PARAMS_DEPTH 16 /* a deeper JSON payload passes as text */
#define PUB_BUCKETS 1024
#define SYSTEM_CA_PATH "/etc/ssl/certs"

enum conn_state { CS_DOWN, CS_CONNECTING, CS_UP };
enum payload_mode { PM_JSON, PM_TEXT, PM_BASE64 };
static const char *const mode_names[] = {"json", "text", "base64"};

/* One broker subscription: a distinct filter. refs == 0: unbound while
 * disconnected, unsubscribed at the next connect. */
struct sub {
    struct sub *next;
    char *filter;
    uint32_t id;
    int qos;
    int refs;
    int mid;     /* SUBSCRIBE awaiting its SUBACK, 0 none */
    bool acked;  /* SUBACK granted on this connection */
    int refused; /* the last SUBACK's failure reason, 0 none */
};

struct feed_binding {
    struct feed_binding *prev, *next;
    char *ns, *trigger, *filter;
    struct sub *sub;
    uint64_t serial; /* bindings are in the list in serial order */
    int qos;
    enum payload_mode mode;
    bool paused, dead;
    uint64_t events, fires, drops;
};

/* A publish: outstanding (hash by mid + FIFO), then done (FIFO). */
struct pub {
    struct pub *hnext, *prev, *next;
    int mid, rc;
    feed_published_fn *cb;
    void *arg;
};

struct inmsg {
    struct inmsg *next;
    char *topic;
    unsigned char *payload;
    size_t len;
    int qos;
    bool retain;
    int nids; /* -1: more than MAX_IDS */
    uint32_t ids[MAX_IDS];
    uint64_t next_serial; /* held: the bindings before this one have it */
};

struct conn_cb {
    void (*cb)(void *arg);
    void *arg;
};

/* One client connection to the broker. The adapter has two: rx carries
 * the subscriptions and the messages, and its reading stops while core
 * holds messages back (back-pressure); tx carries the result publishes and
 * is always read, so their PUBACKs never wait behind unread messages. */
enum link_role { LINK_RX, LINK_TX };

struct mq_link {
    struct mq_self *s;
    enum link_role role;
    const char *name; /* in logs: "subscriber" or "publisher" */
    char *client_id;
    struct mosquitto *mosq;
    enum conn_state state;
    bool inited; /* connect_async ran; later attempts reconnect_async */
    int64_t attempt_us, up_us;
    int backoff_ms;
    int fail_streak;
    int short_streak; /* connections in a row that ended before STABLE_MS */
    int fd;
    struct event *ev_read, *ev_write, *ev_misc, *ev_retry;
    bool write_on;
    bool read_off;     /* ev_read is not armed (may_read said no) */
    bool corked;       /* TCP_CORK set on fd (feed_mqtt_batch) */
    bool progress;     /* a libmosquitto callback ran */
    bool connect_news; /* a CONNACK the work event has not handled */
    bool subid_ok;     /* the broker takes subscription identifiers */
    char last_error[160];
    struct mqtt_tls_check tls_check; /* mqtts: the broker certificate's check */
};

struct mq_self {
    struct event_base *base;
    feed_fire_fn *fire;
    void *ctx;
    bool lib_inited;
    /* the broker */
    char host[64], shown[96]; /* shown: scheme://host:port, for logs and errors */
    int port;
    bool tls;
    struct mq_link rx, tx;
    struct event *ev_work, *ev_hold;
    /* bindings */
    struct sub *subs;
    struct feed_binding *head, *tail, *graveyard;
    /* publishes (on tx) */
    struct pub *buckets[PUB_BUCKETS];
    struct pub *out_head, *out_tail;
    size_t nout;
    struct pub *done_head, *done_tail;
    bool publishing; /* inside mosquitto_publish_v5 */
    int early_mid, early_rc;
    /* received messages (on rx) */
    struct inmsg *in_head, *in_tail;
    size_t nin, in_bytes;
    uint64_t serials; /* the last binding's serial */
    bool held;        /* core refused the first message for now (limits) */
    bool hold_due;    /* held: the time to offer it again has come */
    bool draining;    /* take no new messages (drain) */
    uint64_t queue_drops_logged;
    struct conn_cb *ccbs;
    size_t nccbs;
    struct feed_counters totals;
    int busy;      /* inside the work event (calls into core) */
    bool dead;     /* stop() ran inside it; freed when it ends */
    bool stopping; /* ignore libmosquitto's callbacks */
};

/* ---- small helpers ---------------------------------------------------- */

static void add_ms(struct event *ev, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void kick(struct mq_self *s)
{
    if (s->ev_work && !s->dead)
        event_active(s->ev_work, EV_TIMEOUT, 1);
}

/* libmosquitto's text for rc, without its full stop (it goes mid-line). */
static const char *mosq_text(int rc, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", mqtt_lib.mosquitto_strerror(rc));
    size_t l = strlen(buf);
    if (l > 0 && buf[l - 1] == '.')
        buf[l - 1] = '\0';
    return buf;
}

/* A libmosquitto disconnect code: v5 reason codes are 0, 4 or >= 0x80,
 * the library's own errors are small positive numbers. */
static const char *disconnect_text(int rc, char *buf, size_t cap)
{
    if (rc >= 0x80)
        snprintf(buf, cap, "%s", mqtt_lib.mosquitto_reason_string(rc));
    else if (rc == MOSQ_ERR_ERRNO)
        snprintf(buf, cap, "%s", strerror(errno));
    else if (rc == 0)
        snprintf(buf, cap, "closed");
    else
        mosq_text(rc, buf, cap);
    return buf;
}

/* FNV-1a of the filter mapped to 1..MAX_SUBID: the same id for the same
 * filter in every run, so a persisted session's queued messages match. */
static uint32_t filter_hash_id(const char *filter)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)filter; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h % MAX_SUBID + 1;
}

/* ---- socket events ---------------------------------------------------- */

static void on_io(evutil_socket_t fd, short what, void *arg);
static void lost(struct mq_link *l, const char *why);

static void io_drop(struct mq_link *l)
{
    if (l->ev_read)
        event_free(l->ev_read);
    if (l->ev_write)
        event_free(l->ev_write);
    l->ev_read = l->ev_write = NULL;
    l->write_on = false;
    l->read_off = false;
    l->corked = false;
    l->fd = -1;
}

/* Whether to read more from the broker. Messages are acknowledged as they
 * are read (libmosquitto sends the PUBACK), so while core holds them back
 * (limits) or wispd drains, the rest stay unread at the broker, in the
 * session: back-pressure instead of a queue here that a stop would lose.
 * A connection being made is always read (its CONNACK); tx always. */
static bool may_read(const struct mq_link *l)
{
    const struct mq_self *s = l->s;
    if (l->role == LINK_TX || l->state != CS_UP)
        return true;
    return !s->draining && s->nin < (s->held ? HOLD_QUEUE : MAX_QUEUED_MSGS / 2);
}

/* Arms or disarms EV_READ as may_read says. */
static void read_sync(struct mq_link *l)
{
    if (!l->ev_read)
        return;
    bool want = may_read(l);
    if (want && l->read_off && event_add(l->ev_read, NULL) == 0)
        l->read_off = false;
    else if (!want && !l->read_off && event_del(l->ev_read) == 0)
        l->read_off = true;
}

/* Watches libmosquitto's socket: EV_READ unless may_read says no, EV_WRITE
 * while it has something to write. Called after every call into
 * libmosquitto. */
static void io_sync(struct mq_link *l)
{
    if (!l->mosq || l->state == CS_DOWN)
        return;
    int fd = mqtt_lib.mosquitto_socket(l->mosq);
    if (fd != l->fd)
        io_drop(l);
    if (fd < 0)
        return;
    if (!l->ev_read) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0)
            (void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        l->ev_read = event_new(l->s->base, fd, EV_READ | EV_PERSIST, on_io, l);
        l->ev_write = event_new(l->s->base, fd, EV_WRITE | EV_PERSIST, on_io, l);
        if (!l->ev_read || !l->ev_write || event_add(l->ev_read, NULL) < 0) {
            io_drop(l);
            lost(l, "out of memory");
            return;
        }
        l->fd = fd;
    }
    read_sync(l);
    bool ww = mqtt_lib.mosquitto_want_write(l->mosq);
    if (ww && !l->write_on)
        event_add(l->ev_write, NULL);
    else if (!ww && l->write_on)
        event_del(l->ev_write);
    l->write_on = ww;
}

/* After a call into libmosquitto: it may have closed the socket (its
 * on_disconnect then ran) or want to write. */
static void after_mosq(struct mq_link *l)
{
    if (l->state == CS_DOWN || !l->mosq)
        return;
    if (mqtt_lib.mosquitto_socket(l->mosq) < 0) {
        io_drop(l);
        lost(l, "connection closed");
        return;
    }
    io_sync(l);
}

/* ---- publishes -------------------------------------------------------- */

static struct pub **bucket(struct mq_self *s, int mid)
{
    return &s->buckets[(unsigned)mid & (PUB_BUCKETS - 1)];
}

static void pub_insert(struct mq_self *s, struct pub *p)
{
    struct pub **b = bucket(s, p->mid);
    p->hnext = *b;
    *b = p;
    p->next = NULL;
    p->prev = s->out_tail;
    if (s->out_tail)
        s->out_tail->next = p;
    else
        s->out_head = p;
    s->out_tail = p;
    s->nout++;
}

static void pub_unlink(struct mq_self *s, struct pub *p)
{
    for (struct pub **pp = bucket(s, p->mid); *pp; pp = &(*pp)->hnext)
        if (*pp == p) {
            *pp = p->hnext;
            break;
        }
    if (p->prev)
        p->prev->next = p->next;
    else
        s->out_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        s->out_tail = p->prev;
    p->prev = p->next = p->hnext = NULL;
    s->nout--;
}

static struct pub *pub_take(struct mq_self *s, int mid)
{
    for (struct pub *p = *bucket(s, mid); p; p = p->hnext)
        if (p->mid == mid) {
            pub_unlink(s, p);
            return p;
        }
    return NULL;
}

static void done_push(struct mq_self *s, struct pub *p, int rc)
{
    p->rc = rc;
    p->next = NULL;
    if (s->done_tail)
        s->done_tail->next = p;
    else
        s->done_head = p;
    s->done_tail = p;
}

static void fail_outstanding(struct mq_self *s)
{
    while (s->out_head) {
        struct pub *p = s->out_head;
        pub_unlink(s, p);
        done_push(s, p, -ENOTCONN);
    }
}

/* ---- the connection --------------------------------------------------- */

static void schedule_retry(struct mq_link *l)
{
    int ms = l->backoff_ms;
    uint32_t r = 0;
    if (plat_rand_bytes(&r, sizeof r) < 0)
        r = 0;
    ms = (int)((int64_t)ms * (80 + (int)(r % 41)) / 100); /* +-20 % */
    l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
    add_ms(l->ev_retry, ms);
    wlog_debug("mqtt", "next %s connection attempt to %s in %d ms", l->name, l->s->shown, ms);
}

/* The connection (or attempt) is over: fail what is outstanding, retry. */
static void lost(struct mq_link *l, const char *why)
{
    struct mq_self *s = l->s;
    if (l->state == CS_DOWN || s->stopping)
        return;
    bool was_up = l->state == CS_UP;
    bool stable = plat_clock_mono_us() - l->up_us >= (int64_t)STABLE_MS * 1000;
    if (was_up && stable)
        l->backoff_ms = BACKOFF_MIN_MS;
    if (was_up)
        l->short_streak = stable ? 0 : l->short_streak + 1;
    /* mosquitto 2.0 closes a taken-over session's connection without the
     * v5 reason (0x8E, cb_disconnect): the pattern is what shows it */
    if (was_up && l->short_streak % 10 == 3)
        wlog_err("mqtt",
                 "%s closed %d connections in a row within %d s of their start: if another "
                 "client (another wispd?) uses our client id '%.60s', each takes the session "
                 "from the other and its messages are lost; give each its own --mqtt-client-id",
                 s->shown, l->short_streak, STABLE_MS / 1000, l->client_id);
    l->state = CS_DOWN;
    io_drop(l); /* an abandoned socket is closed by the next reconnect */
    if (l->role == LINK_RX) {
        for (struct sub *sub = s->subs; sub; sub = sub->next) {
            sub->acked = false;
            sub->mid = 0;
        }
    } else {
        fail_outstanding(s);
    }
    /* a failed certificate check says more than libmosquitto's TLS error */
    char tls_why[sizeof l->tls_check.why];
    if (l->tls_check.why[0]) {
        snprintf(tls_why, sizeof tls_why, "%s", l->tls_check.why);
        l->tls_check.why[0] = '\0';
        why = tls_why;
    }
    snprintf(l->last_error, sizeof l->last_error, "%s", why);
    if (was_up) {
        wlog_warn("mqtt", "lost the %s connection to %s: %s; reconnecting", l->name, s->shown,
                  why);
        l->fail_streak = 0;
    } else if (l->fail_streak++ == 0) {
        wlog_warn("mqtt", "cannot connect to %s (%s): %s; retrying", s->shown, l->name, why);
    } else {
        wlog_debug("mqtt", "cannot connect to %s (%s): %s", s->shown, l->name, why);
    }
    schedule_retry(l);
    if (s->done_head)
        kick(s);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mq_link *l = arg;
    io_drop(l);
    errno = 0;
    int rc = l->inited ? mqtt_lib.mosquitto_reconnect_async(l->mosq)
                       : mqtt_lib.mosquitto_connect_async(l->mosq, l->s->host, l->s->port, KEEPALIVE);
    int e = errno;
    if (rc != MOSQ_ERR_INVAL)
        l->inited = true;
    l->state = CS_CONNECTING;
    l->attempt_us = plat_clock_mono_us();
    if (rc != MOSQ_ERR_SUCCESS) {
        char buf[120];
        if (rc == MOSQ_ERR_ERRNO)
            snprintf(buf, sizeof buf, "%s", strerror(e));
        else
            mosq_text(rc, buf, sizeof buf);
        lost(l, buf);
        return;
    }
    io_sync(l);
    if (l->state == CS_CONNECTING && l->fd < 0)
        lost(l, "no socket");
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct mq_link *l = arg;
    if (l->state == CS_CONNECTING) {
        int e = 0;
        socklen_t len = sizeof e;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e != 0) {
            lost(l, strerror(e));
            return;
        }
    }
    int rc = MOSQ_ERR_SUCCESS;
    if (what & EV_WRITE)
        rc = mqtt_lib.mosquitto_loop_write(l->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS && (what & EV_READ)) {
        for (int i = 0; i < READ_BURST && l->state != CS_DOWN && may_read(l); i++) {
            if (mqtt_lib.mosquitto_socket(l->mosq) != l->fd)
                break;
            l->progress = false;
            rc = mqtt_lib.mosquitto_loop_read(l->mosq, 1);
            if (rc != MOSQ_ERR_SUCCESS || !l->progress)
                break;
        }
    }
    after_mosq(l);
}

static void on_misc(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mq_link *l = arg;
    if (l->state == CS_CONNECTING &&
        plat_clock_mono_us() - l->attempt_us > (int64_t)CONNECT_TIMEOUT_MS * 1000) {
        lost(l, "timed out waiting for the broker's CONNACK");
        return;
    }
    if (l->state != CS_UP)
        return;
    mqtt_lib.mosquitto_loop_misc(l->mosq);
    if (l->s->tls && l->state == CS_UP && mqtt_lib.mosquitto_socket(l->mosq) == l->fd && l->fd >= 0 &&
        may_read(l))
        mqtt_lib.mosquitto_loop_read(l->mosq, 1);
    after_mosq(l);
}

/* ---- libmosquitto callbacks (record only) ----------------------------- */

static void cb_connect(struct mosquitto *m, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    (void)m;
    struct mq_link *l = obj;
    struct mq_self *s = l->s;
    if (s->stopping)
        return;
    l->progress = true;
    if (rc != 0) {
        /* loop_read fails next and closes the socket: lost() follows */
        snprintf(l->last_error, sizeof l->last_error, "the broker refused the connection: %s",
                 mqtt_lib.mosquitto_reason_string(rc));
        wlog_warn("mqtt", "%s refused the %s connection: %s", s->shown, l->name,
                  mqtt_lib.mosquitto_reason_string(rc));
        return;
    }
    uint8_t avail = 1;
    l->subid_ok =
        !(mqtt_lib.mosquitto_property_read_byte(props, MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE, &avail, false) &&
          avail == 0);
    l->state = CS_UP;
    l->up_us = plat_clock_mono_us();
    l->fail_streak = 0;
    l->last_error[0] = '\0';
    l->connect_news = true;
    if (l->role == LINK_RX)
        wlog_info("mqtt", "connected to %s session_present=%d", s->shown, flags & 1);
    else
        wlog_debug("mqtt", "publisher connected to %s", s->shown);
    kick(s);
}

static void cb_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
    (void)m;
    (void)props;
    struct mq_link *l = obj;
    if (l->s->stopping)
        return;
    l->progress = true;
    char buf[120];
    if (rc == MQTT_RC_SESSION_TAKEN_OVER) /* each would take it back, dropping the other's */
        wlog_err("mqtt",
                 "another client connected to %s with our client id '%.60s' and took the "
                 "session over: two wispd must not share one; give each its own "
                 "--mqtt-client-id (the default comes from the host name and the data dir)",
                 l->s->shown, l->client_id);
    lost(l, disconnect_text(rc, buf, sizeof buf));
}

static void cb_publish(struct mosquitto *m, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
    (void)m;
    (void)props;
    struct mq_link *l = obj;
    struct mq_self *s = l->s;
    if (s->stopping)
        return;
    l->progress = true;
    if (l->role != LINK_TX)
        return;
    int rc = reason >= 0x80 ? -EIO : 0;
    if (rc)
        wlog_warn("mqtt", "the broker refused a publish (mid %d): %s", mid,
                  mqtt_lib.mosquitto_reason_string(reason));
    struct pub *p = pub_take(s, mid);
    if (!p) {
        if (s->publishing) { /* QoS 0 written inside mosquitto_publish_v5 */
            s->early_mid = mid;
            s->early_rc = rc;
        }
        return; /* else: resent by libmosquitto after a reconnect, already failed */
    }
    done_push(s, p, rc);
    kick(s);
}

static void cb_subscribe(struct mosquitto *m, void *obj, int mid, int count, const int *granted,
                         const mosquitto_property *props)
{
    (void)m;
    (void)props;
    struct mq_link *l = obj;
    struct mq_self *s = l->s;
    if (s->stopping)
        return;
    l->progress = true;
    for (struct sub *sub = s->subs; sub; sub = sub->next) {
        if (sub->mid != mid)
            continue;
        sub->mid = 0;
        int g = count > 0 ? granted[0] : 0x80;
        if (g >= 0x80) {
            sub->acked = false;
            sub->refused = g;
            wlog_warn("mqtt", "the broker refused the subscription to %s: %s", sub->filter,
                      mqtt_lib.mosquitto_reason_string(g));
        } else {
            sub->acked = true;
            sub->refused = 0;
        }
        break;
    }
}

static void cb_unsubscribe(struct mosquitto *m, void *obj, int mid, const mosquitto_property *props)
{
    (void)m;
    (void)mid;
    (void)props;
    struct mq_link *l = obj;
    l->progress = true;
}

static void cb_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    (void)m;
    struct mq_link *l = obj;
    struct mq_self *s = l->s;
    if (s->stopping)
        return;
    l->progress = true;
    size_t tl = strlen(msg->topic);
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    if (s->nin >= MAX_QUEUED_MSGS || s->in_bytes + len > MAX_QUEUED_BYTES) {
        s->totals.events_in++;
        s->totals.drops++;
        if (s->queue_drops_logged++ % 1000 == 0)
            wlog_warn("mqtt", "too many messages waiting to be fired; dropping (topic %.100s)",
                      msg->topic);
        return;
    }
    struct inmsg *im = malloc(sizeof *im + tl + 1 + len);
    if (!im) {
        s->totals.events_in++;
        s->totals.drops++;
        return;
    }
    memset(im, 0, sizeof *im);
    im->topic = (char *)(im + 1);
    memcpy(im->topic, msg->topic, tl + 1);
    im->payload = (unsigned char *)im->topic + tl + 1;
    if (len)
        memcpy(im->payload, msg->payload, len);
    im->len = len;
    im->qos = msg->qos;
    im->retain = msg->retain;
    uint32_t v = 0;
    for (const mosquitto_property *p =
             mqtt_lib.mosquitto_property_read_varint(props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, &v, false);
         p; p = mqtt_lib.mosquitto_property_read_varint(p, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, &v, true)) {
        if (im->nids < 0 || im->nids == MAX_IDS) {
            im->nids = -1;
            break;
        }
        im->ids[im->nids++] = v;
    }
    if (s->in_tail)
        s->in_tail->next = im;
    else
        s->in_head = im;
    s->in_tail = im;
    s->nin++;
    s->in_bytes += len;
    kick(s);
}

static void cb_log(struct mosquitto *m, void *obj, int level, const char *str)
{
    (void)m;
    (void)obj;
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
        wlog_debug("mqtt", "libmosquitto: %s", str);
}

/* ---- subscriptions ---------------------------------------------------- */

static void sub_send(struct mq_self *s, struct sub *sub)
{
    if (s->rx.state != CS_UP)
        return;
    mosquitto_property *props = NULL;
    if (s->rx.subid_ok &&
        mqtt_lib.mosquitto_property_add_varint(&props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, sub->id) != 0) {
        mqtt_lib.mosquitto_property_free_all(&props);
        props = NULL;
    }
    int mid = 0;
    int rc = mqtt_lib.mosquitto_subscribe_v5(s->rx.mosq, &mid, sub->filter, sub->qos,
                                    MQTT_SUB_OPT_SEND_RETAIN_NEW, props);
    mqtt_lib.mosquitto_property_free_all(&props);
    char buf[120];
    if (rc == MOSQ_ERR_SUCCESS)
        sub->mid = mid;
    else
        wlog_warn("mqtt", "cannot subscribe to %s: %s", sub->filter,
                  mosq_text(rc, buf, sizeof buf));
}

static void sub_free(struct mq_self *s, struct sub *sub)
{
    for (struct sub **pp = &s->subs; *pp; pp = &(*pp)->next)
        if (*pp == sub) {
            *pp = sub->next;
            break;
        }
    free(sub->filter);
    free(sub);
}

static void sub_unsubscribe(struct mq_self *s, struct sub *sub)
{
    if (s->rx.state == CS_UP) {
        int rc = mqtt_lib.mosquitto_unsubscribe_v5(s->rx.mosq, NULL, sub->filter, NULL);
        char buf[120];
        if (rc != MOSQ_ERR_SUCCESS)
            wlog_debug("mqtt", "cannot unsubscribe from %s: %s", sub->filter,
                       mosq_text(rc, buf, sizeof buf));
    }
}

static struct sub *sub_find(struct mq_self *s, const char *filter)
{
    for (struct sub *sub = s->subs; sub; sub = sub->next)
        if (strcmp(sub->filter, filter) == 0)
            return sub;
    return NULL;
}

static bool subid_used(struct mq_self *s, uint32_t id)
{
    for (struct sub *sub = s->subs; sub; sub = sub->next)
        if (sub->id == id)
            return true;
    return false;
}

/* The highest qos of the filter's live bindings. */
static int sub_want_qos(struct mq_self *s, struct sub *sub)
{
    int q = 0;
    for (struct feed_binding *b = s->head; b; b = b->next)
        if (b->sub == sub && b->qos > q)
            q = b->qos;
    return q;
}

/* Takes a reference on the filter's subscription; subscribes when it is
 * new or needs a higher qos. */
static struct sub *sub_ref(struct mq_self *s, const char *filter, int qos)
{
    struct sub *sub = sub_find(s, filter);
    bool send = false;
    if (!sub) {
        sub = calloc(1, sizeof *sub);
        if (!sub || !(sub->filter = strdup(filter))) {
            free(sub);
            return NULL;
        }
        uint32_t id = filter_hash_id(filter);
        while (subid_used(s, id))
            id = id % MAX_SUBID + 1;
        sub->id = id;
        sub->qos = qos;
        sub->next = s->subs;
        s->subs = sub;
        send = true;
    } else if (sub->refs == 0 || qos > sub->qos) { /* revived, or a higher qos */
        sub->qos = qos;
        send = true;
    }
    sub->refs++;
    if (send)
        sub_send(s, sub);
    return sub;
}

/* Drops a reference (the binding is already unlinked). */
static void sub_unref(struct mq_self *s, struct sub *sub)
{
    if (!sub)
        return;
    if (--sub->refs > 0) {
        int q = sub_want_qos(s, sub);
        if (q != sub->qos) { /* the highest-qos binding went: downgrade */
            sub->qos = q;
            sub_send(s, sub);
        }
        return;
    }
    if (s->rx.state == CS_UP) {
        sub_unsubscribe(s, sub);
        sub_free(s, sub);
    } /* else kept with refs 0 until the next connect unsubscribes it */
}

/* After a CONNACK: unsubscribe what went while away, subscribe the rest. */
static void resubscribe(struct mq_self *s)
{
    struct sub *next;
    for (struct sub *sub = s->subs; sub; sub = next) {
        next = sub->next;
        if (sub->refs == 0) {
            sub_unsubscribe(s, sub);
            sub_free(s, sub);
        } else {
            sub_send(s, sub);
        }
    }
}

/* ---- firing ----------------------------------------------------------- */

static bool utf8_text(const unsigned char *p, size_t len)
{
    if (memchr(p, '\0', len))
        return false;
    json_t *t = json_stringn((const char *)p, len); /* NULL when not UTF-8 */
    bool ok = t != NULL;
    json_decref(t);
    return ok;
}

static json_t *fire_params(enum payload_mode mode, const struct inmsg *m)
{
    if (mode == PM_JSON && m->len > 0) {
        json_error_t je;
        json_t *j = wjson_load((const char *)m->payload, m->len, 0, &je);
        if (j && json_is_object(j) && wjson_depth(j) <= MAX_PARAMS_DEPTH) {
            if (!json_object_get(j, "topic"))
                json_object_set_new(j, "topic", json_string(m->topic));
            return j;
        }
        json_decref(j);
    }
    json_t *p = json_object();
    if (!p)
        return NULL;
    json_t *v;
    if (mode != PM_BASE64 && utf8_text(m->payload, m->len)) {
        v = json_stringn((const char *)m->payload, m->len);
    } else {
        v = wjson_base64(m->payload, m->len);
        json_object_set_new(p, "payload_base64", json_true());
    }
    if (!v) {
        json_decref(p);
        return NULL;
    }
    json_object_set_new(p, "payload", v);
    json_object_set_new(p, "topic", json_string(m->topic));
    json_object_set_new(p, "qos", json_integer(m->qos));
    json_object_set_new(p, "retain", json_boolean(m->retain));
    return p;
}

/* by_id: the message names (some of) our subscriptions; a binding gets it
 * only through its own, so overlapping filters fire once per copy. */
static bool binding_gets(const struct feed_binding *b, const struct inmsg *m, bool by_id)
{
    if (by_id) {
        bool hit = false;
        for (int i = 0; i < m->nids && !hit; i++)
            hit = b->sub && b->sub->id == m->ids[i];
        if (!hit)
            return false;
    }
    return feed_topic_matches(b->filter, m->topic);
}

/* Fires every binding the message is for, from m->next_serial on. false
 * when core held a fire back for now (-EAGAIN, -EBUSY: the namespace is at
 * its limits): the message stays first in the queue and is offered again
 * from that binding on, so no binding gets it twice or never. Runs with
 * s->busy held. */
static bool deliver(struct mq_self *s, struct inmsg *m)
{
    /* by subscription id when the message names one of ours */
    bool by_id = false;
    if (s->rx.subid_ok && m->nids > 0)
        for (int i = 0; i < m->nids && !by_id; i++)
            for (struct sub *sub = s->subs; sub && !by_id; sub = sub->next)
                by_id = sub->refs > 0 && sub->id == m->ids[i];
    size_t n = 0, cap = 0;
    struct feed_binding **v = NULL;
    for (struct feed_binding *b = s->head; b; b = b->next) {
        if (b->serial < m->next_serial || !binding_gets(b, m, by_id))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct feed_binding **nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                s->totals.events_in++;
                s->totals.drops++;
                continue;
            }
            v = nv;
            cap = nc;
        }
        v[n++] = b;
    }
    json_t *params[3] = {NULL, NULL, NULL}; /* one per payload mode */
    bool held = false;
    for (size_t i = 0; i < n && !s->dead && !held; i++) {
        struct feed_binding *b = v[i];
        if (b->dead) /* unbound by an earlier fire of this message */
            continue;
        int rc = -ENOMEM;
        if (!b->paused && !params[b->mode])
            params[b->mode] = fire_params(b->mode, m);
        if (!b->paused && params[b->mode])
            rc = s->fire(s->ctx, b->ns, b->trigger, params[b->mode]);
        if (rc == -EAGAIN || rc == -EBUSY) {
            held = true;
            break;
        }
        m->next_serial = b->serial + 1;
        b->events++;
        s->totals.events_in++;
        if (rc == 0) {
            b->fires++;
            s->totals.fires++;
        } else { /* paused (a drop, as documented), out of memory, trigger gone */
            if (!b->paused)
                wlog_debug("mqtt", "fire refused trigger=%s/%s rc=%d", b->ns, b->trigger, rc);
            b->drops++;
            s->totals.drops++;
        }
    }
    for (int i = 0; i < 3; i++)
        json_decref(params[i]);
    free(v);
    return !held;
}

/* ---- teardown --------------------------------------------------------- */

static void binding_free(struct feed_binding *b)
{
    free(b->ns);
    free(b->trigger);
    free(b->filter);
    free(b);
}

static void reap(struct mq_self *s)
{
    while (s->graveyard) {
        struct feed_binding *b = s->graveyard;
        s->graveyard = b->next;
        binding_free(b);
    }
}

static void link_free(struct mq_link *l)
{
    io_drop(l);
    if (l->ev_misc)
        event_free(l->ev_misc);
    if (l->ev_retry)
        event_free(l->ev_retry);
    if (l->mosq)
        mqtt_lib.mosquitto_destroy(l->mosq);
    free(l->client_id);
}

static void self_free(struct mq_self *s)
{
    link_free(&s->rx);
    link_free(&s->tx);
    if (s->ev_work)
        event_free(s->ev_work);
    if (s->ev_hold)
        event_free(s->ev_hold);
    if (s->lib_inited)
        mqtt_lib.mosquitto_lib_cleanup();
    while (s->head) {
        struct feed_binding *b = s->head;
        s->head = b->next;
        binding_free(b);
    }
    reap(s);
    while (s->subs)
        sub_free(s, s->subs);
    while (s->out_head) {
        struct pub *p = s->out_head;
        pub_unlink(s, p);
        free(p);
    }
    while (s->done_head) {
        struct pub *p = s->done_head;
        s->done_head = p->next;
        free(p);
    }
    while (s->in_head) {
        struct inmsg *m = s->in_head;
        s->in_head = m->next;
        free(m);
    }
    free(s->ccbs);
    free(s);
}

/* The other link just connected: try this one now, if it is waiting. */
static void link_hurry(struct mq_link *l)
{
    if (l->state != CS_DOWN || !evtimer_pending(l->ev_retry, NULL))
        return;
    l->backoff_ms = BACKOFF_MIN_MS;
    add_ms(l->ev_retry, 0);
}

/* ---- the work event: every call into core ----------------------------- */

static void on_work(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mq_self *s = arg;
    s->busy++;
    /* publish completions first (failures of the old connection before
     * the news of the new one) */
    struct pub *done = s->done_head;
    s->done_head = s->done_tail = NULL; /* later ones wait for the next turn */
    while (done) {
        struct pub *p = done;
        done = p->next;
        if (p->cb && !s->dead)
            p->cb(p->arg, p->rc);
        free(p);
    }
    bool news = s->rx.connect_news || s->tx.connect_news;
    if (news) /* the broker is back: the other link need not wait out its backoff */
        link_hurry(s->rx.connect_news ? &s->tx : &s->rx);
    if (!s->dead && s->rx.connect_news) {
        s->rx.connect_news = false;
        if (s->rx.state == CS_UP) {
            resubscribe(s);
            after_mosq(&s->rx);
        }
    }
    s->tx.connect_news = false;
    /* connected (feed_mqtt_connected) once both links are up */
    for (size_t i = 0; news && i < s->nccbs && feed_mqtt_connected(s); i++)
        s->ccbs[i].cb(s->ccbs[i].arg);
    bool offer = !s->held || s->hold_due;
    s->hold_due = false;
    for (int n = 0; offer && !s->dead && s->in_head && n < FIRE_BATCH; n++) {
        struct inmsg *m = s->in_head;
        if (!deliver(s, m)) {
            s->held = true; /* on_hold offers it again; may_read reads little meanwhile */
            add_ms(s->ev_hold, HOLD_RETRY_MS);
            break;
        }
        s->held = false;
        s->in_head = m->next;
        if (!s->in_head)
            s->in_tail = NULL;
        s->nin--;
        s->in_bytes -= m->len;
        free(m);
    }
    if (!s->dead && ((s->in_head && !s->held) || s->done_head))
        kick(s);
    if (!s->dead)
        read_sync(&s->rx);
    s->busy--;
    if (s->busy == 0) {
        if (s->dead)
            self_free(s);
        else
            reap(s);
    }
}

static void on_hold(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mq_self *s = arg;
    s->hold_due = true;
    kick(s);
}

/* ---- the URL ---------------------------------------------------------- */

static int parse_url(struct mq_self *s, const char *url, char **user, char **pass, char **ca,
                     bool *insecure, struct wisp_err *err)
{
    if (!url || !*url)
        return wisp_err_set(err, -EINVAL, "mqtt: no broker URL (--mqtt mqtt://HOST:PORT)");
    if (strlen(url) > 1024)
        return wisp_err_set(err, -EINVAL, "mqtt: the broker URL is too long");
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return wisp_err_set(
                err, -EINVAL, "mqtt: the broker URL must not contain spaces or control characters");
    struct evhttp_uri *u = evhttp_uri_parse(url);
    if (!u)
        return wisp_err_set(err, -EINVAL,
                            "mqtt: '%.100s' is not a valid broker URL (mqtt://HOST:PORT)", url);
    int rc = 0;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
    const char *userinfo = evhttp_uri_get_userinfo(u);
    int port = evhttp_uri_get_port(u);
    char ip[64];
    if (!scheme || (strcasecmp(scheme, "mqtt") != 0 && strcasecmp(scheme, "mqtts") != 0)) {
        rc = wisp_err_set(err, -EINVAL,
                          "mqtt: the broker URL must start with mqtt:// or mqtts:// (not %.20s)",
                          scheme ? scheme : "nothing");
        goto out;
    }
    s->tls = strcasecmp(scheme, "mqtts") == 0;
    if (!host || !*host) {
        rc = wisp_err_set(err, -EINVAL, "mqtt: the broker URL has no host");
        goto out;
    }
    bool v6 = false;
    int lit = feed_ip_literal(host, ip, sizeof ip, &v6);
    if (lit == -ERANGE) {
        rc = wisp_err_set(err, -EINVAL, "mqtt: bad IPv6 address in the broker URL");
        goto out;
    }
    if (lit < 0) {
        rc = wisp_err_set(err, -EINVAL, "mqtt: the broker host '%.80s' is not an IP address; host names are not "
                          "resolved (that would block): use an IP address or localhost", host);
        goto out;
    }
    if (port == 0 || port > 65535) {
        rc = wisp_err_set(err, -EINVAL, "mqtt: bad port in the broker URL");
        goto out;
    }
    if (port < 0)
        port = s->tls ? 8883 : 1883;
    if (path && *path && strcmp(path, "/") != 0) {
        rc = wisp_err_set(err, -EINVAL, "mqtt: the broker URL must not have a path (%.60s)", path);
        goto out;
    }
    if (evhttp_uri_get_fragment(u)) {
        rc = wisp_err_set(err, -EINVAL, "mqtt: the broker URL must not have a #fragment");
        goto out;
    }
    snprintf(s->host, sizeof s->host, "%s", ip);
    s->port = port;
    snprintf(s->shown, sizeof s->shown, "%s://%s%s%s:%d", s->tls ? "mqtts" : "mqtt", v6 ? "[" : "",
             ip, v6 ? "]" : "", port);
    if (userinfo) {
        const char *colon = strchr(userinfo, ':');
        size_t ul = colon ? (size_t)(colon - userinfo) : strlen(userinfo);
        char *raw = strndup(userinfo, ul);
        size_t un = 0, pn = 0;
        *user = raw ? evhttp_uridecode(raw, 0, &un) : NULL;
        free(raw);
        if (colon)
            *pass = evhttp_uridecode(colon + 1, 0, &pn);
        if (!*user || (colon && !*pass)) {
            rc = wisp_err_set(err, -ENOMEM, "mqtt: out of memory");
            goto out;
        }
        /* a %00 would cut the name or the password short without a word */
        if (strlen(*user) != un || (*pass && strlen(*pass) != pn)) {
            rc = wisp_err_set(err, -EINVAL, "mqtt: %%00 in the broker URL's user name or password");
            goto out;
        }
        if (!**user) {
            rc = wisp_err_set(err, -EINVAL, "mqtt: empty user name in the broker URL");
            goto out;
        }
    }
    if (query && *query) {
        if (evhttp_parse_query_str(query, &q) < 0) {
            rc = wisp_err_set(err, -EINVAL, "mqtt: bad query in the broker URL");
            goto out;
        }
        for (struct evkeyval *kv = TAILQ_FIRST(&q); kv; kv = TAILQ_NEXT(kv, next)) {
            if (strcmp(kv->key, "ca") == 0 && s->tls && kv->value[0]) {
                free(*ca);
                if (!(*ca = strdup(kv->value))) {
                    rc = wisp_err_set(err, -ENOMEM, "mqtt: out of memory");
                    goto out;
                }
            } else if (strcmp(kv->key, "insecure") == 0 && s->tls &&
                       (strcmp(kv->value, "1") == 0 || strcmp(kv->value, "0") == 0)) {
                *insecure = kv->value[0] == '1';
            } else if ((strcmp(kv->key, "ca") == 0 || strcmp(kv->key, "insecure") == 0) &&
                       !s->tls) {
                rc = wisp_err_set(err, -EINVAL, "mqtt: ?%.20s= is for mqtts:// URLs only", kv->key);
                goto out;
            } else {
                rc = wisp_err_set(err, -EINVAL,
                                  "mqtt: unknown or bad broker URL option '%.40s' (known: "
                                  "ca=FILE, insecure=1)",
                                  kv->key);
                goto out;
            }
        }
    }
out:
    evhttp_clear_headers(&q);
    evhttp_uri_free(u);
    return rc;
}

/* ---- ops -------------------------------------------------------------- */

/* Creates the link's client. rx keeps a session (clean start off, a
 * session expiry); tx starts clean: what it has not had acknowledged is
 * failed to core, which keeps it and publishes it again. */
static int client_setup(struct mq_link *l, const char *user, const char *pass, const char *ca,
                        bool insecure, struct wisp_err *err)
{
    struct mq_self *s = l->s;
    bool rx = l->role == LINK_RX;
    l->mosq = mqtt_lib.mosquitto_new(l->client_id, !rx, l);
    if (!l->mosq)
        return wisp_err_set(err, errno == EINVAL ? -EINVAL : -ENOMEM,
                            "mqtt: cannot create the client (client id '%.60s')", l->client_id);
    mqtt_lib.mosquitto_int_option(l->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mqtt_lib.mosquitto_int_option(l->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mqtt_lib.mosquitto_connect_v5_callback_set(l->mosq, cb_connect);
    mqtt_lib.mosquitto_disconnect_v5_callback_set(l->mosq, cb_disconnect);
    mqtt_lib.mosquitto_publish_v5_callback_set(l->mosq, cb_publish);
    mqtt_lib.mosquitto_subscribe_v5_callback_set(l->mosq, cb_subscribe);
    mqtt_lib.mosquitto_unsubscribe_v5_callback_set(l->mosq, cb_unsubscribe);
    mqtt_lib.mosquitto_message_v5_callback_set(l->mosq, cb_message);
    /* libmosquitto formats a line for every packet once a callback is set */
    if (wlog_threshold >= WLOG_DEBUG)
        mqtt_lib.mosquitto_log_callback_set(l->mosq, cb_log);
    if (user && mqtt_lib.mosquitto_username_pw_set(l->mosq, user, pass) != MOSQ_ERR_SUCCESS)
        return wisp_err_set(err, -EINVAL, "mqtt: bad user name or password in the broker URL");
    if (s->tls) {
        /* The context is ours (mqtt_tls.h): OpenSSL checks the chain, the
         * dates and the broker's address as an iPAddress entry, TLS 1.2 or
         * later; libmosquitto's own host check would take a CN spelling
         * the address. libmosquitto only runs the handshake on it. */
        void *ctx = NULL;
        snprintf(l->tls_check.ip, sizeof l->tls_check.ip, "%s", s->host);
        int rc = mqtt_tls_ctx_new(&l->tls_check, ca, SYSTEM_CA_PATH, !insecure, &ctx, err);
        if (rc < 0)
            return rc;
        char buf[120];
        if (ctx) {
            /* without its defaults (on unless said: 2.0.11 would then want
             * tls_set's CAs and install its own host check) */
            rc = mqtt_lib.mosquitto_void_option(l->mosq, MOSQ_OPT_SSL_CTX, ctx);
            mqtt_tls_ctx_free(ctx); /* libmosquitto holds a reference of its own */
            if (rc == MOSQ_ERR_SUCCESS)
                rc = mqtt_lib.mosquitto_int_option(l->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
        } else { /* built without libssl-dev, ?insecure=1: libmosquitto's TLS */
            rc = ca ? mqtt_lib.mosquitto_tls_set(l->mosq, ca, NULL, NULL, NULL, NULL)
                    : mqtt_lib.mosquitto_tls_set(l->mosq, NULL, SYSTEM_CA_PATH, NULL, NULL, NULL);
            if (rc == MOSQ_ERR_SUCCESS) /* 1: verify the chain */
                rc = mqtt_lib.mosquitto_tls_opts_set(l->mosq, 1, "tlsv1.2", NULL);
            if (rc == MOSQ_ERR_SUCCESS)
                rc = mqtt_lib.mosquitto_tls_insecure_set(l->mosq, true);
        }
        if (rc != MOSQ_ERR_SUCCESS)
            return wisp_err_set(err, -EINVAL, "mqtt: cannot use the CA certificates %.100s: %s",
                                ca ? ca : SYSTEM_CA_PATH, mosq_text(rc, buf, sizeof buf));
    }
    if (!rx)
        return 0;
    /* Stores the CONNECT properties only: keepalive 1 is refused before any
     * socket is made (see the top of this file). */
    mosquitto_property *props = NULL;
    int rc =
        mqtt_lib.mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, SESSION_EXPIRY);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mqtt_lib.mosquitto_property_add_int32(&props, MQTT_PROP_MAXIMUM_PACKET_SIZE, MAX_PACKET);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mqtt_lib.mosquitto_connect_bind_v5(l->mosq, s->host, s->port, 1, NULL, props);
    mqtt_lib.mosquitto_property_free_all(&props);
    char buf[120];
    if (rc != MOSQ_ERR_INVAL)
        return wisp_err_set(err, -EIO, "mqtt: cannot set the session properties: %s",
                            mosq_text(rc, buf, sizeof buf));
    return 0;
}

/* The configured client id, or a random one (no session across restarts). */
static char *rx_client_id(const char *conf, struct wisp_err *err)
{
    char *id = NULL;
    if (conf && *conf) {
        size_t l = strlen(conf);
        if (l > 65535 - 8 || mqtt_lib.mosquitto_validate_utf8(conf, (int)l) != 0) {
            wisp_err_set(err, -EINVAL, "mqtt: the client id must be UTF-8 text");
            return NULL;
        }
        id = strdup(conf);
    } else {
        unsigned char r[6];
        char hex[13];
        if (plat_rand_bytes(r, sizeof r) < 0)
            memset(r, 0, sizeof r);
        plat_hex(r, sizeof r, hex);
        if ((id = malloc(32)))
            snprintf(id, 32, "wisp-%s", hex);
        wlog_warn("mqtt",
                  "no client id configured; using %s (the broker session will not survive a "
                  "restart)",
                  id ? id : "?");
    }
    if (!id)
        wisp_err_set(err, -ENOMEM, "mqtt: out of memory");
    return id;
}

static int link_init(struct mq_self *s, struct mq_link *l, enum link_role role, char *client_id,
                     struct wisp_err *err)
{
    l->s = s;
    l->role = role;
    l->name = role == LINK_RX ? "subscriber" : "publisher";
    l->client_id = client_id;
    l->fd = -1;
    l->backoff_ms = BACKOFF_MIN_MS;
    l->subid_ok = true;
    l->ev_misc = event_new(s->base, -1, EV_PERSIST, on_misc, l);
    l->ev_retry = evtimer_new(s->base, on_retry, l);
    if (!client_id || !l->ev_misc || !l->ev_retry)
        return wisp_err_set(err, -ENOMEM, "mqtt: out of memory");
    return 0;
}

static void link_go(struct mq_link *l)
{
    struct timeval sec = {1, 0};
    event_add(l->ev_misc, &sec);
    add_ms(l->ev_retry, 0); /* the first attempt, from the loop */
}

static int mq_start(const struct feed_env *env, void **self, struct wisp_err *err)
{
    if (!env || !env->base || !env->fire)
        return wisp_err_set(err, -EINVAL, "mqtt: needs an event base and a fire callback");
    int loaded = mqtt_lib_load(err);
    if (loaded < 0)
        return loaded;
    struct mq_self *s = calloc(1, sizeof *s);
    if (!s)
        return wisp_err_set(err, -ENOMEM, "mqtt: out of memory");
    s->base = env->base;
    s->fire = env->fire;
    s->ctx = env->ctx;
    s->rx.fd = s->tx.fd = -1;
    char *user = NULL, *pass = NULL, *ca = NULL;
    bool insecure = false;
    int rc = parse_url(s, env->mqtt_url, &user, &pass, &ca, &insecure, err);
    char *id = NULL, *txid = NULL;
    if (rc == 0 && !(id = rx_client_id(env->client_id, err)))
        rc = -EINVAL;
    if (rc == 0 && (txid = malloc(strlen(id) + 5)))
        sprintf(txid, "%s-out", id);
    if (rc == 0)
        rc = link_init(s, &s->rx, LINK_RX, id, err);
    else
        free(id);
    if (rc == 0)
        rc = link_init(s, &s->tx, LINK_TX, txid, err);
    else
        free(txid);
    if (rc == 0 && mqtt_lib.mosquitto_lib_init() != MOSQ_ERR_SUCCESS)
        rc = wisp_err_set(err, -EIO, "mqtt: cannot initialise libmosquitto");
    s->lib_inited = rc == 0;
    if (rc == 0)
        rc = client_setup(&s->rx, user, pass, ca, insecure, err);
    if (rc == 0)
        rc = client_setup(&s->tx, user, pass, ca, insecure, err);
    if (pass)
        memset(pass, 0, strlen(pass));
    free(user);
    free(pass);
    free(ca);
    if (rc == 0) {
        s->ev_work = event_new(s->base, -1, 0, on_work, s);
        s->ev_hold = evtimer_new(s->base, on_hold, s);
        if (!s->ev_work || !s->ev_hold)
            rc = wisp_err_set(err, -ENOMEM, "mqtt: out of memory");
    }
    if (rc) {
        self_free(s);
        return rc;
    }
    link_go(&s->rx);
    link_go(&s->tx);
    wlog_info("mqtt", "broker %s client_id=%s (results: %s)", s->shown, s->rx.client_id,
              s->tx.client_id);
    *self = s;
    return 0;
}

static void link_stop(struct mq_link *l)
{
    if (l->mosq && l->state == CS_UP)
        mqtt_lib.mosquitto_disconnect_v5(l->mosq, 0, NULL); /* best effort; the session stays */
    io_drop(l);
    event_del(l->ev_misc);
    event_del(l->ev_retry);
}

static void mq_stop(void *self)
{
    struct mq_self *s = self;
    if (!s || s->dead)
        return;
    s->stopping = true; /* libmosquitto's callbacks are ignored from here */
    if (s->nin)
        wlog_err("mqtt",
                 "stopping with %zu received messages not fired; the broker has them as "
                 "delivered, so they are lost",
                 s->nin);
    link_stop(&s->rx);
    link_stop(&s->tx);
    event_del(s->ev_work);
    event_del(s->ev_hold);
    if (s->busy) {
        s->dead = true; /* on_work frees it when it unwinds */
        return;
    }
    self_free(s);
}

static int check_levels(const char *f, struct wisp_err *err)
{
    for (const char *p = f;;) {
        size_t l = strcspn(p, "/");
        const char *hash = memchr(p, '#', l), *plus = memchr(p, '+', l);
        if (hash && (l != 1 || p[l] != '\0'))
            return wisp_err_set(err, -EINVAL,
                                "topic: '#' must be the whole last level of the filter (as in "
                                "a/b/#)");
        if (plus && l != 1)
            return wisp_err_set(err, -EINVAL,
                                "topic: '+' must be a whole level of the filter (as in a/+/c)");
        if (!p[l])
            return 0;
        p += l + 1;
    }
}

static int check_filter(const char *f, size_t len, struct wisp_err *err)
{
    if (len == 0)
        return wisp_err_set(err, -EINVAL, "topic: must not be empty");
    if (len > MAX_FILTER)
        return wisp_err_set(err, -EINVAL, "topic: longer than %d bytes", MAX_FILTER);
    if (strlen(f) != len)
        return wisp_err_set(err, -EINVAL, "topic: must not contain NUL characters");
    if (mqtt_lib.mosquitto_validate_utf8(f, (int)len) != MOSQ_ERR_SUCCESS)
        return wisp_err_set(err, -EINVAL, "topic: must be UTF-8 text without control characters");
    const char *body = f;
    if (strncmp(f, "$share/", 7) == 0) {
        const char *g = f + 7;
        size_t gl = strcspn(g, "/");
        if (gl == 0)
            return wisp_err_set(err, -EINVAL,
                                "topic: a shared subscription needs a group name "
                                "($share/GROUP/FILTER)");
        if (memchr(g, '+', gl) || memchr(g, '#', gl))
            return wisp_err_set(err, -EINVAL,
                                "topic: a shared subscription's group name must not contain + "
                                "or #");
        if (g[gl] != '/' || g[gl + 1] == '\0')
            return wisp_err_set(err, -EINVAL,
                                "topic: a shared subscription needs a filter after the group "
                                "($share/GROUP/FILTER)");
        body = g + gl + 1;
    }
    return check_levels(body, err);
}

static int parse_qos(const json_t *v, int *out, struct wisp_err *err)
{
    long long n = -1;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *t = json_string_value(v);
        if (t[0] >= '0' && t[0] <= '2' && t[1] == '\0')
            n = t[0] - '0';
    }
    if (n < 0 || n > 2)
        return wisp_err_set(err, -EINVAL, "qos: must be 0, 1 or 2");
    *out = (int)n;
    return 0;
}

static int mq_bind(void *self, const char *ns, const char *trigger, const json_t *params,
                   const json_t *state, struct feed_binding **out, struct wisp_err *err)
{
    struct mq_self *s = self;
    (void)state;
    if (!json_is_object(params))
        return wisp_err_set(err, -EINVAL, "params: the mqtt feed's parameters must be an object");
    const json_t *t = json_object_get(params, "topic");
    if (!t || json_is_null(t))
        return wisp_err_set(err, -EINVAL, "topic: missing (an MQTT topic filter, e.g. sensors/#)");
    if (!json_is_string(t))
        return wisp_err_set(err, -EINVAL, "topic: must be a string");
    int rc = check_filter(json_string_value(t), json_string_length(t), err);
    if (rc)
        return rc;
    int qos = 1;
    const json_t *v = json_object_get(params, "qos");
    if (v && !json_is_null(v) && (rc = parse_qos(v, &qos, err)))
        return rc;
    enum payload_mode mode = PM_JSON;
    v = json_object_get(params, "payload");
    if (v && !json_is_null(v)) {
        const char *m = json_string_value(v);
        size_t i = 0;
        while (m && i < WISP_ARRAY_LEN(mode_names) && strcmp(m, mode_names[i]) != 0)
            i++;
        if (!m || i == WISP_ARRAY_LEN(mode_names))
            return wisp_err_set(err, -EINVAL, "payload: must be \"json\", \"text\" or \"base64\"");
        mode = (enum payload_mode)i;
    }
    struct feed_binding *b = calloc(1, sizeof *b);
    if (b)
        b->serial = ++s->serials;
    if (!b)
        return wisp_err_set(err, -ENOMEM, "mqtt: out of memory");
    b->qos = qos;
    b->mode = mode;
    b->ns = strdup(ns);
    b->trigger = strdup(trigger);
    b->filter = strdup(json_string_value(t));
    if (!b->ns || !b->trigger || !b->filter || !(b->sub = sub_ref(s, b->filter, qos))) {
        binding_free(b);
        return wisp_err_set(err, -ENOMEM, "mqtt: out of memory");
    }
    /* appended: messages fire bindings in the order they were bound */
    b->prev = s->tail;
    if (s->tail)
        s->tail->next = b;
    else
        s->head = b;
    s->tail = b;
    after_mosq(&s->rx);
    wlog_debug("mqtt", "bound trigger=%s/%s topic=%s qos=%d", ns, trigger, b->filter, qos);
    *out = b;
    return 0;
}

static void mq_unbind(void *self, struct feed_binding *b)
{
    struct mq_self *s = self;
    if (!b || b->dead)
        return;
    if (b->prev)
        b->prev->next = b->next;
    else
        s->head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else
        s->tail = b->prev;
    b->prev = NULL;
    sub_unref(s, b->sub);
    b->sub = NULL;
    after_mosq(&s->rx);
    if (s->busy) { /* a message being fired may still point at it */
        b->dead = true;
        b->next = s->graveyard;
        s->graveyard = b;
        return;
    }
    binding_free(b);
}

static void mq_set_paused(void *self, struct feed_binding *b, bool paused)
{
    (void)self;
    b->paused = paused;
}

static json_t *mq_status(void *self, const struct feed_binding *b)
{
    const struct mq_self *s = self;
    bool up = s->rx.state == CS_UP;
    const char *why = NULL;
    char buf[160];
    if (b->sub && b->sub->refused) {
        snprintf(buf, sizeof buf, "the broker refused the subscription: %s",
                 mqtt_lib.mosquitto_reason_string(b->sub->refused));
        why = buf;
    } else if (!up && s->rx.last_error[0]) {
        why = s->rx.last_error;
    }
    return json_pack("{s:s, s:i, s:s, s:b, s:b, s:b, s:I, s:I, s:I, s:s?}", "topic", b->filter,
                     "qos", b->qos, "payload", mode_names[b->mode], "paused", b->paused,
                     "connected", up, "subscribed", up && b->sub && b->sub->acked, "events",
                     (json_int_t)b->events, "fires", (json_int_t)b->fires, "drops",
                     (json_int_t)b->drops, "lastError", why);
}

static void mq_counters(void *self, struct feed_counters *out)
{
    const struct mq_self *s = self;
    *out = s->totals;
    out->pending = s->nin;
}

/* Drain: no new messages are read (they stay at the broker, in the
 * session); those already read are still fired. */
static void mq_drain(void *self)
{
    struct mq_self *s = self;
    s->draining = true;
    read_sync(&s->rx);
}

static const struct feed_sink_ops mq_sink = {
    .publish = feed_mqtt_publish,
    .batch = feed_mqtt_batch,
    .connected = feed_mqtt_connected,
    .on_connect = feed_mqtt_on_connect,
};

const struct feed_ops feed_mqtt_ops = {
    .kind = "mqtt",
    .sink = &mq_sink,
    .start = mq_start,
    .stop = mq_stop,
    .bind = mq_bind,
    .unbind = mq_unbind,
    .set_paused = mq_set_paused,
    .status = mq_status,
    .counters = mq_counters,
    .drain = mq_drain,
};

/* ---- MQTT-only operations --------------------------------------------- */

static int publish_errno(int rc)
{
    switch (rc) {
    case MOSQ_ERR_INVAL:
    case MOSQ_ERR_MALFORMED_UTF8:
    case MOSQ_ERR_PAYLOAD_SIZE:
    case MOSQ_ERR_OVERSIZE_PACKET:
    case MOSQ_ERR_QOS_NOT_SUPPORTED:
    case MOSQ_ERR_RETAIN_NOT_SUPPORTED:
        return -EINVAL;
    case MOSQ_ERR_NOMEM:
        return -ENOMEM;
    default:
        return -ENOTCONN;
    }
}

int feed_mqtt_publish(void *self, const char *topic, const void *payload, size_t len, int qos,
                      bool retain, feed_published_fn *cb, void *arg)
{
    struct mq_self *s = self;
    if (!s || s->dead || s->stopping)
        return -ENOTCONN;
    if (!topic || qos < 0 || qos > 2 || (len && !payload) || len > MQTT_MAX_PAYLOAD)
        return -EINVAL;
    size_t tl = strlen(topic);
    if (tl == 0 || tl > 65535 || strpbrk(topic, "+#") ||
        mqtt_lib.mosquitto_validate_utf8(topic, (int)tl) != MOSQ_ERR_SUCCESS)
        return -EINVAL;
    if (s->tx.state != CS_UP)
        return -ENOTCONN;
    if (s->nout >= MAX_OUTSTANDING)
        return -EAGAIN;
    struct pub *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    int mid = 0;
    s->publishing = true;
    s->early_mid = 0;
    int rc = mqtt_lib.mosquitto_publish_v5(s->tx.mosq, &mid, topic, (int)len, payload, qos, retain, NULL);
    s->publishing = false;
    if (rc != MOSQ_ERR_SUCCESS) {
        free(p);
        char buf[120];
        wlog_debug("mqtt", "publish to %.100s failed: %s", topic, mosq_text(rc, buf, sizeof buf));
        after_mosq(&s->tx);
        return publish_errno(rc);
    }
    p->mid = mid;
    p->cb = cb;
    p->arg = arg;
    if (s->early_mid == mid && mid != 0) {
        done_push(s, p, s->early_rc);
        kick(s);
    } else {
        pub_insert(s, p);
    }
    after_mosq(&s->tx);
    return 0;
}

void feed_mqtt_batch(void *self, bool hold)
{
    struct mq_self *s = self;
    if (!s || s->dead || s->tx.fd < 0 || s->tx.corked == hold)
        return;
    /* TCP_CORK: segments wait for the release (or 200 ms, or a full MSS) */
    int on = hold;
    if (setsockopt(s->tx.fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on) == 0 || !hold)
        s->tx.corked = hold;
}

bool feed_mqtt_connected(void *self)
{
    const struct mq_self *s = self;
    return s && !s->dead && !s->stopping && s->rx.state == CS_UP && s->tx.state == CS_UP;
}

void feed_mqtt_on_connect(void *self, void (*cb)(void *arg), void *arg)
{
    struct mq_self *s = self;
    if (!s || !cb)
        return;
    struct conn_cb *n = realloc(s->ccbs, (s->nccbs + 1) * sizeof *n);
    if (!n) {
        wlog_err("mqtt", "out of memory registering a connect callback");
        return;
    }
    s->ccbs = n;
    s->ccbs[s->nccbs++] = (struct conn_cb){cb, arg};
}

/* ---- fuzz entry points (no broker, no socket) --------------------------
 * For tests/fuzz: the two things in this file that read bytes from
 * outside. Broken invariants abort(), so the fuzzer reports them. */

int feed_mqtt_fuzz_url(const uint8_t *data, size_t len)
{
    char *url = malloc(len + 1);
    struct mq_self *s = calloc(1, sizeof *s);
    if (!url || !s) {
        free(url);
        free(s);
        return -ENOMEM;
    }
    memcpy(url, data, len);
    url[len] = '\0';
    char *user = NULL, *pass = NULL, *ca = NULL;
    bool insecure = false;
    struct wisp_err err = {0};
    int rc = parse_url(s, url, &user, &pass, &ca, &insecure, &err);
    if (rc != 0 && !err.msg[0])
        abort(); /* every refusal says why */
    if (rc == 0 && (s->port < 1 || s->port > 65535 || !s->host[0] || (ca && !s->tls) ||
                    (insecure && !s->tls) || (pass && !user) || (user && !user[0])))
        abort();
    free(user);
    free(pass);
    free(ca);
    free(s);
    free(url);
    return rc;
}

/* Readers over a packet, for the fuzz entry below; false when it is short. */
struct fz_rd {
    const uint8_t *p;
    size_t left;
};

static bool fz_take(struct fz_rd *r, size_t n, const uint8_t **out)
{
    if (n > r->left)
        return false;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static bool fz_u16(struct fz_rd *r, uint32_t *v)
{
    const uint8_t *b;
    if (!fz_take(r, 2, &b))
        return false;
    *v = (uint32_t)b[0] << 8 | b[1];
    return true;
}

static bool fz_varint(struct fz_rd *r, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        const uint8_t *b;
        if (!fz_take(r, 1, &b))
            return false;
        *v |= (uint32_t)(*b & 0x7f) << (7 * i);
        if (!(*b & 0x80))
            return true;
    }
    return false; /* a fifth byte: malformed */
}

/* A UTF-8 string (u16 length), NUL-terminated into a new buffer, as
 * libmosquitto's packet reader hands strings on (it refuses bad UTF-8). */
static char *fz_string(struct fz_rd *r)
{
    uint32_t n;
    const uint8_t *b;
    if (!fz_u16(r, &n) || !fz_take(r, n, &b))
        return NULL;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, b, n);
    s[n] = '\0';
    if (mqtt_lib.mosquitto_validate_utf8(s, (int)n) != MOSQ_ERR_SUCCESS) {
        free(s);
        return NULL;
    }
    return s;
}

/* One property as the wire has it (identifier, then a value of the type
 * that identifier has), added to *props through libmosquitto's own calls,
 * which check the identifier against the type. *nsubid counts subscription
 * identifiers; with skip_more, only the first goes into *props. */
static bool fz_property(struct fz_rd *r, mosquitto_property **props, int *nsubid, bool skip_more)
{
    uint32_t id, v;
    int type = 0, got = 0;
    if (!fz_varint(r, &id))
        return false;
    const char *name = mqtt_lib.mosquitto_property_identifier_to_string((int)id);
    if (!name || mqtt_lib.mosquitto_string_to_property_info(name, &got, &type) != MOSQ_ERR_SUCCESS)
        return false;
    const uint8_t *b;
    char *k = NULL, *val = NULL;
    int rc = MOSQ_ERR_INVAL;
    switch (type) {
    case MQTT_PROP_TYPE_BYTE:
        if (fz_take(r, 1, &b))
            rc = mqtt_lib.mosquitto_property_add_byte(props, (int)id, b[0]);
        break;
    case MQTT_PROP_TYPE_INT16:
        if (fz_u16(r, &v))
            rc = mqtt_lib.mosquitto_property_add_int16(props, (int)id, (uint16_t)v);
        break;
    case MQTT_PROP_TYPE_INT32:
        if (fz_take(r, 4, &b))
            rc = mqtt_lib.mosquitto_property_add_int32(
                props, (int)id, (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | b[2] << 8 | b[3]);
        break;
    case MQTT_PROP_TYPE_VARINT:
        if (fz_varint(r, &v))
            rc = skip_more && id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER && *nsubid > 0
                     ? MOSQ_ERR_SUCCESS
                     : mqtt_lib.mosquitto_property_add_varint(props, (int)id, v);
        *nsubid += id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER;
        break;
    case MQTT_PROP_TYPE_BINARY:
        if (fz_u16(r, &v) && fz_take(r, v, &b))
            rc = mqtt_lib.mosquitto_property_add_binary(props, (int)id, b, (uint16_t)v);
        break;
    case MQTT_PROP_TYPE_STRING:
        if ((val = fz_string(r)))
            rc = mqtt_lib.mosquitto_property_add_string(props, (int)id, val);
        break;
    case MQTT_PROP_TYPE_STRING_PAIR:
        if ((k = fz_string(r)) && (val = fz_string(r)))
            rc = mqtt_lib.mosquitto_property_add_string_pair(props, (int)id, k, val);
        break;
    }
    free(k);
    free(val);
    return rc == MOSQ_ERR_SUCCESS;
}

int feed_mqtt_fuzz_publish(void *self, const uint8_t *data, size_t len)
{
    struct mq_self *s = self;
    struct fz_rd r = {data, len};
    const uint8_t *b;
    uint32_t v;
    if (!fz_take(&r, 1, &b) || (b[0] >> 4) != 3 || ((b[0] >> 1) & 3) == 3)
        return -EPROTO; /* not a PUBLISH, or qos 3 */
    int qos = (b[0] >> 1) & 3;
    bool retain = b[0] & 1;
    if (!fz_varint(&r, &v)) /* the remaining length: libmosquitto's framing, not checked */
        return -EPROTO;
    char *topic = fz_string(&r);
    if (!topic)
        return -EPROTO;
    int rc = -EPROTO;
    uint32_t mid = 0;
    mosquitto_property *props = NULL, *checked = NULL;
    uint32_t plen;
    const uint8_t *pb;
    if (qos > 0 && (!fz_u16(&r, &mid) || mid == 0))
        goto out;
    if (!fz_varint(&r, &plen) || !fz_take(&r, plen, &pb))
        goto out;
    /* libmosquitto checks the list as a whole (mosquitto_property_check_all:
     * ranges, properties PUBLISH may carry, duplicates) and in 2.0.11 also
     * refuses a second subscription identifier, which MQTT 5 allows when a
     * broker sends one copy for several subscriptions. The check here leaves
     * the extra identifiers out, so what on_message does with them (for such
     * brokers and a libmosquitto that takes them) is fuzzed too. */
    int nsub = 0, nsub2 = 0;
    struct fz_rd pr = {pb, plen}, pr2 = {pb, plen};
    while (pr.left)
        if (!fz_property(&pr, &props, &nsub, false) || !fz_property(&pr2, &checked, &nsub2, true))
            goto out;
    if (mqtt_lib.mosquitto_property_check_all(CMD_PUBLISH, checked) != MOSQ_ERR_SUCCESS)
        goto out;
    /* what libmosquitto passes to on_message, then what the loop does */
    struct mosquitto_message msg = {
        .mid = (int)mid,
        .topic = topic,
        .payload = r.left ? (void *)r.p : NULL,
        .payloadlen = (int)r.left,
        .qos = qos,
        .retain = retain,
    };
    size_t queued = s->nin;
    cb_message(s->rx.mosq, &s->rx, &msg, props);
    if (s->nin > queued && s->in_tail->nids > MAX_IDS)
        abort();
    on_work(-1, EV_TIMEOUT, s);
    if (s->nin && !s->held)
        abort(); /* everything is fired unless core held it back */
    rc = 0;
out:
    mqtt_lib.mosquitto_property_free_all(&props);
    mqtt_lib.mosquitto_property_free_all(&checked);
    free(topic);
    return rc;
}
