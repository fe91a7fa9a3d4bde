/* core/feeds.h - core's side of the feed adapters (feeds/feed.h): starts
 * them, keeps trigger bindings in the store and re-binds them at start,
 * answers the built-in feed actions of /whisk.system natively, routes
 * webhook requests, deletes the triggers adapters ask it to (a once alarm's
 * deleteAfterFire: the trigger, its rules for "rules", and the binding in
 * one store write, logged once it is on disk), and publishes result bindings
 * to MQTT through a durable outbox. Loop thread only.
 *
 * Bindings live in the meta database under "feed\0ns\0trigger" as
 * {"kind", "feed", "params", "state", "paused"}. The outbox lives there too,
 * under "outbox\0" + an 8-byte big-endian sequence number, so results that
 * could not be published while the broker was away (or wispd was down) go
 * out in order when it returns. */
#pragma once
#include <jansson.h>
#include <stdbool.h>

#include "wisp.h"

struct event_base;
struct store;
struct trigger;
struct act;
struct feeds;

struct feeds_cfg {
    const char *mqtt_url; /* NULL or "": no MQTT adapter */
    const char *client_id;
    const char *tls_ca_file; /* poll's https; NULL: the system bundle */
    unsigned outbox_max;  /* results kept while they cannot be published */
};

int feeds_open(struct event_base *base, struct store *st, struct trigger *trig, struct act *act,
               const struct feeds_cfg *cfg, struct feeds **out, struct wisp_err *err)
    WISP_MUST_CHECK;
void feeds_close(struct feeds *f);

/* True for the built-in feed actions: pkg/name under whisk.system. */
bool feeds_is_system_action(const char *pkg, const char *name);
/* True for the packages that hold them (alarms, mqtt, webhook, poll). */
bool feeds_is_system_package(const char *pkg);
/* Runs a lifecycle event (CREATE, READ, UPDATE, DELETE, PAUSE, UNPAUSE) of
 * a built-in feed action for caller ns. *record gets the activation as the
 * API shows it (new reference; also stored), also when the feed refuses
 * the event: then the result is negative (-EINVAL, -ENOENT, -EACCES,
 * -ENOTSUP: no broker) and the record an application error with the
 * message, which the API answers with 502 as OpenWhisk answers a failed
 * action. Without a record: -ENOENT (no such feed action), -ENOMEM,
 * -ENOSPC, -EIO. */
int feeds_system_action(struct feeds *f, const char *caller_ns, const char *pkg,
                        const char *name, const json_t *body, json_t **record,
                        struct wisp_err *err) WISP_MUST_CHECK;
/* The trigger was deleted: drop its binding, if any. */
void feeds_trigger_deleted(struct feeds *f, const char *ns, const char *trigger);
/* The binding's status (READ) for GET of a trigger, or NULL (new ref). */
json_t *feeds_trigger_status(struct feeds *f, const char *ns, const char *trigger);
/* A webhook request (POST /hooks/{id}); codes as feed_webhook_request. */
int feeds_webhook(struct feeds *f, const char *id, const char *sig, const char *ctype,
                  const char *body, size_t len, struct wisp_err *err) WISP_MUST_CHECK;
/* invoke_result_fn for result bindings. */
void feeds_on_result(void *ctx, const json_t *publish, const char *in_topic, const char *name,
                     const char *activation_id, const json_t *result);

struct feeds_stats {
    unsigned long long events_in, fires, drops, published, publish_failed, outbox_dropped;
    unsigned long long pending; /* events taken in, not fired yet (held at limits) */
    unsigned long long deleted_after_fire; /* triggers deleted after a once alarm fired */
    unsigned outbox, bindings;
    bool mqtt_connected;
};
void feeds_get_stats(const struct feeds *f, struct feeds_stats *out);
/* SIGTERM: the adapters take no new events where their source keeps them
 * (MQTT: unread messages stay at the broker) and fire those taken. */
void feeds_drain(struct feeds *f);
/* Events taken in and not fired yet: the drain waits for them too. */
unsigned feeds_pending(const struct feeds *f);
