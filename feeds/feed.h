/* feeds/feed.h - the interface every feed kind implements.
 *
 * A feed kind (mqtt, webhook, poll, alarm) turns outside events into trigger
 * fires. Core owns the bindings (they are stored with their trigger, so they
 * survive restarts) and calls bind() again for each at start. An adapter
 * owns its sockets and timers and never touches the store or the pools:
 * events come up through the callbacks in struct feed_env, calls go down
 * through struct feed_ops.
 *
 * Threading: loop thread only; nothing blocks (no synchronous DNS, connect,
 * sleep or disk sync). Callbacks into core are never made from inside an
 * ops call that core is making (post them with a zero-delay event); core's
 * callbacks may call ops again.
 *
 * Ownership: strings and JSON passed in are borrowed for the call; an
 * adapter copies what it keeps. A binding belongs to its adapter and dies in
 * unbind() or stop(). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wisp.h"

struct event_base;
struct feed_binding; /* opaque; owned by the feed kind */

/* Fires trigger ns/trigger with params (an object; borrowed). 0, or a
 * negative code when core refused and nothing ran: -ENOENT, no such trigger
 * any more; -EAGAIN, the namespace's fire limit; -EBUSY, its rules'
 * invocations would not all pass the namespace's invocation limits now
 * (a minute's count, in flight). On -EAGAIN and -EBUSY an adapter that can
 * keep the event offers it again later (mqtt holds it, leaving the rest at
 * the broker: back-pressure); the others count a drop. */
typedef int feed_fire_fn(void *ctx, const char *ns, const char *trigger, const json_t *params);
/* Persists a binding's small state (e.g. an alarm's last fire time) with
 * the binding, so it comes back to bind() after a restart. */
typedef void feed_save_fn(void *ctx, const char *ns, const char *trigger, const json_t *state);
/* Asks core to delete trigger ns/trigger, whose binding b is, and with
 * rules set every rule attached to it (OpenWhisk's deleteAfterFire: a
 * one-time alarm's trigger goes after its fire). Core only queues the
 * request here; later, from an event of its own, one store write removes
 * the trigger, the rules and the binding's record, and then unbind(b) runs.
 * The request is dropped when b is no longer the trigger's binding by then
 * (deleted, or replaced by a new CREATE). A request lost to a crash is made
 * again by the adapter when the binding comes back to bind() with a state
 * that says it was due, so asking twice must be (and is) harmless. */
typedef void feed_delete_fn(void *ctx, const char *ns, const char *trigger,
                            const struct feed_binding *b, bool rules);

struct feed_env {
    struct event_base *base;
    feed_fire_fn *fire;
    feed_save_fn *save;
    /* NULL when core takes no such requests (adapters then never ask) */
    feed_delete_fn *delete_trigger;
    void *ctx;               /* passed to fire, save and delete_trigger */
    const char *mqtt_url;    /* the broker (--mqtt), NULL when none; mqtt only */
    const char *client_id;   /* a stable id for this wispd (persistent MQTT sessions) */
    const char *tls_ca_file; /* CA bundle (PEM) outgoing TLS trusts (poll's https);
                              * NULL or "": TLS_CA_FILE_DEFAULT. Read on first use. */
};

/* A feed event counter set, for READ and /metrics. */
struct feed_counters {
    uint64_t events_in, fires, drops;
    uint64_t pending; /* events taken in and not fired yet (held, queued) */
};

struct feed_sink_ops;
struct feed_hook_ops;

struct feed_ops {
    const char *kind; /* "mqtt", "webhook", "poll", "alarm" */
    /* A kind that also carries results out (mqtt: result bindings) has a
     * sink; one that takes requests from core's API listener (webhook) has
     * a hook. NULL in the others. Core finds them here, not by name. */
    const struct feed_sink_ops *sink;
    const struct feed_hook_ops *hook;
    /* Starts the adapter. 0 or -errno with err. */
    int (*start)(const struct feed_env *env, void **self, struct wisp_err *err);
    /* Stops it and frees every binding; no callback runs after it returns. */
    void (*stop)(void *self);
    /* Adds a binding for trigger ns/trigger. params are the feed action's
     * parameters (OpenWhisk's feed-specific ones, e.g. topic or cron);
     * state is what save() last stored for it, or NULL. 0, or -EINVAL with
     * err naming the bad parameter. */
    int (*bind)(void *self, const char *ns, const char *trigger, const json_t *params,
                const json_t *state, struct feed_binding **out, struct wisp_err *err);
    /* Removes and frees a binding. */
    void (*unbind)(void *self, struct feed_binding *b);
    /* PAUSE / UNPAUSE: a paused binding takes no events (they are dropped
     * and counted). */
    void (*set_paused)(void *self, struct feed_binding *b, bool paused);
    /* READ: the binding's status as an object (new reference): its
     * parameters, paused or not, counters, and kind-specific facts (next
     * fire time, connection state, ...). */
    json_t *(*status)(void *self, const struct feed_binding *b);
    /* The adapter's own counters (all bindings). */
    void (*counters)(void *self, struct feed_counters *out);
    /* wispd is stopping: take no new events from outside where the source
     * keeps them (a broker's session), but fire those already taken
     * (counters' pending says how many are left). NULL: nothing to do. */
    void (*drain)(void *self);
};

/* The adapters built into wispd. */
extern const struct feed_ops feed_alarm_ops;
extern const struct feed_ops feed_mqtt_ops;
extern const struct feed_ops feed_poll_ops;
extern const struct feed_ops feed_webhook_ops;

/* ==== sinks: kinds that carry results out (result bindings) ============= */

/* Called once a publish is acknowledged by the broker (QoS 1/2) or written
 * (QoS 0): rc 0; -ENOTCONN when the connection went first (send it again
 * later); -EIO when the broker refused it for good. stop() drops the
 * callbacks of publishes still outstanding without calling them. */
typedef void feed_published_fn(void *arg, int rc);
/* Publishes payload to topic with qos (0..2). -ENOTCONN when the broker is
 * not connected (core keeps the message for later), -EAGAIN when too many
 * are outstanding, -EINVAL for a bad topic, 0 when handed to the client (cb
 * follows). */
int feed_mqtt_publish(void *self, const char *topic, const void *payload, size_t len, int qos,
                      bool retain, feed_published_fn *cb, void *arg) WISP_MUST_CHECK;
/* Holds back (on true) or sends (on false) what publishes write to the
 * broker's socket, so a batch of results leaves in as few TCP segments as
 * fit instead of one each. Every hold must be followed by a release before
 * control goes back to the loop. */
void feed_mqtt_batch(void *self, bool hold);
/* Connected to the broker now (both of the adapter's connections: the one
 * that takes messages and the one that publishes). */
bool feed_mqtt_connected(void *self);
/* Registers cb(arg) to run each time feed_mqtt_connected becomes true, so
 * core can flush what it kept while the broker was away. */
void feed_mqtt_on_connect(void *self, void (*cb)(void *arg), void *arg);

/* A sink's operations, as the functions above describe them for mqtt (the
 * unit tests call those by name; core through feed_ops.sink). */
struct feed_sink_ops {
    int (*publish)(void *self, const char *topic, const void *payload, size_t len, int qos,
                   bool retain, feed_published_fn *cb, void *arg);
    void (*batch)(void *self, bool hold);
    bool (*connected)(void *self);
    void (*on_connect)(void *self, void (*cb)(void *arg), void *arg);
};

/* Fuzz entry points (feeds/mqtt.c; no broker, no socket), for tests/fuzz.
 * The broker URL (--mqtt) through the parser start() uses: 0 or its
 * refusal. An incoming MQTT v5 PUBLISH packet (fixed header, topic, packet
 * id, properties, payload) decoded as libmosquitto decodes it, handed to
 * the adapter self (from start(), never connected) as libmosquitto hands a
 * message on, and fired to self's bindings as the loop would: 0, or
 * -EPROTO for a packet libmosquitto refuses. Both abort() on a broken
 * invariant. */
int feed_mqtt_fuzz_url(const uint8_t *data, size_t len);
int feed_mqtt_fuzz_publish(void *self, const uint8_t *data, size_t len);

/* ==== hooks: kinds that take requests from the API listener ============ */

/* A request to a webhook URL (/hooks/{id}), handed over by core's API
 * listener: sig is the X-Hub-Signature-256 header (or NULL), ctype the
 * Content-Type. 0 when the trigger fired; -ENOENT (no such hook: 404),
 * -EACCES (missing or wrong signature: 401), -EINVAL (a body that is not a
 * JSON object or form: 400), -EAGAIN (paused or over a limit: 429), with
 * err set. Fires synchronously through env->fire (an exception to the rule
 * above: core is not inside an ops call of its own here). */
int feed_webhook_request(void *self, const char *id, const char *sig, const char *ctype,
                         const char *body, size_t len, struct wisp_err *err) WISP_MUST_CHECK;
/* The hook id of a binding (to build its URL). Borrowed. */
const char *feed_webhook_id(const struct feed_binding *b);

/* A hook's operations, as the two above for webhook. */
struct feed_hook_ops {
    int (*request)(void *self, const char *id, const char *sig, const char *ctype,
                   const char *body, size_t len, struct wisp_err *err);
    const char *(*id)(const struct feed_binding *b);
};

/* ==== shared helpers (feeds/feed_util.c) =============================== */

/* Bindings whose callbacks into core may unbind them, or stop the adapter,
 * from inside (alarm, poll, webhook). An adapter's struct feed_binding
 * starts with a struct feed_link; its self holds a struct feed_set.
 * Callbacks into core run between feed_enter() and feed_leave(). */
struct feed_link {
    struct feed_link *prev, *next;
    bool linked;
    bool busy; /* inside a callback into core */
    bool dead; /* unbound or stopped meanwhile: the callback's end frees it */
};
/* How a set ends its adapter's bindings (each starts with its feed_link)
 * and the adapter itself. */
struct feed_set_ops {
    void (*free_link)(struct feed_link *k);  /* frees a binding */
    void (*quiet_link)(struct feed_link *k); /* stops the timers of one inside a callback */
    void (*free_owner)(void *owner);         /* frees the adapter */
};
struct feed_set {
    struct feed_link *head;
    int busy;  /* callbacks into core in progress */
    bool dead; /* stopped inside one: the last to end frees the adapter */
    const struct feed_set_ops *ops;
    void *owner;
};
void feed_set_init(struct feed_set *s, const struct feed_set_ops *ops, void *owner);
void feed_set_add(struct feed_set *s, struct feed_link *k);
void feed_set_remove(struct feed_set *s, struct feed_link *k); /* no-op when not in */
void feed_enter(struct feed_set *s, struct feed_link *k);
/* Ends a callback: true when the binding goes on; false when it was
 * unbound meanwhile and is now freed (and the adapter too, when it was
 * stopped and this was its last callback). */
bool feed_leave(struct feed_set *s, struct feed_link *k);
/* Unbinding k: true when the caller frees it now; false when it is inside
 * a callback, marked dead and out of the set (the caller only stops its
 * timers; feed_leave() frees it). */
bool feed_retire(struct feed_set *s, struct feed_link *k);
/* stop(): unbinds every binding and frees the adapter, now or when the
 * last callback in progress ends. */
void feed_set_stop(struct feed_set *s);

/* MQTT topic filter matching with + and # (and $share/group/ prefixes
 * stripped from the filter). */
bool feed_topic_matches(const char *filter, const char *topic);
/* The IP address a URL host stands for, without resolving anything (a name
 * lookup would block the loop): an IPv4 literal, "[v6]" or "localhost"
 * (127.0.0.1). ip gets the address text; *v6 whether it is IPv6. 0,
 * -ERANGE for a malformed "[...]", -EINVAL for anything else. */
int feed_ip_literal(const char *host, char *ip, size_t cap, bool *v6);
