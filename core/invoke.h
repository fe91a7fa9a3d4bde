/* core/invoke.h - the invoke path: from "run this action with these
 * parameters" to a stored activation record.
 *
 * invoke_start resolves the action (through package bindings), merges
 * parameters (package < binding < action < request), applies the
 * namespace's limits, hands the run to the pool (or walks a sequence) and
 * returns the activation id at once. The record is committed when the run
 * ends; a waiter, if given, is called once with it, or with NULL when its
 * wait ran out first (the activation goes on). Loop thread only. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "wisp.h"

struct event_base;
struct store;
struct pool;
struct act;
struct invoke;
struct invoke_waiter;

/* A finished activation with a result binding (the rule's, else the
 * action's "mqtt-publish" annotation): in_topic is the "topic" parameter it
 * ran with (for topic templates), or NULL. All borrowed for the call. */
/* A successful activation with a result binding: the binding, the topic of
 * the message that caused it (or NULL), the action's name, the activation's
 * id, its result. */
typedef void invoke_result_fn(void *ctx, const json_t *publish, const char *in_topic,
                              const char *name, const char *activation_id, const json_t *result);

struct invoke_cfg {
    invoke_result_fn *on_result; /* NULL: result bindings are ignored */
    void *ctx;
    unsigned per_minute;      /* invocations per minute per namespace */
    unsigned concurrent;      /* activations in flight per namespace */
    size_t max_payload_bytes; /* merged parameters */
    size_t max_result_bytes;
    unsigned sequence_depth;  /* nested sequences */
    const char *api_host;     /* __OW_API_HOST for actions */
};

int invoke_open(struct event_base *base, struct store *st, struct pool *pool, struct act *act,
                const struct invoke_cfg *cfg, struct invoke **out, struct wisp_err *err)
    WISP_MUST_CHECK;
/* Where result bindings go (core/feeds); NULL drops them. */
void invoke_set_result_sink(struct invoke *inv, invoke_result_fn *fn, void *ctx);
/* The URL actions get as __OW_API_HOST (known once the API listens). */
int invoke_set_api_host(struct invoke *inv, const char *url) WISP_MUST_CHECK;
/* Fails nothing: running activations finish through the pool's close. */
void invoke_close(struct invoke *inv);
/* Activations started and not yet recorded. */
unsigned invoke_pending(const struct invoke *inv);
/* Whether n more invocations by subject would pass its limits now
 * (invocations a minute, in flight): 0, or -EAGAIN with the 429 message. */
int invoke_room(struct invoke *inv, const char *subject, unsigned n, struct wisp_err *err)
    WISP_MUST_CHECK;

struct invoke_req {
    const char *ns;      /* the action's namespace */
    const char *path;    /* "name" or "pkg/name" */
    const char *subject; /* the caller's namespace */
    const char *api_key; /* the caller's key, given to actions annotated provide-api-key */
    const json_t *payload; /* request parameters (an object; borrowed) */
    bool blocking;
    uint32_t wait_ms;    /* blocking: the longest wait */
    const char *cause;   /* the trigger activation that started it, or NULL */
    const json_t *publish; /* a rule's result binding ({"topic","qos","retain"}) or NULL */
};

/* record: the activation as the API shows it (borrowed during the call), or
 * NULL when the wait ran out. */
typedef void invoke_done_fn(void *arg, const json_t *record);

/* Starts an activation; id gets its id. With cb, *waiter can cancel the
 * wait (invoke_cancel). 0, or with err: -ENOENT (no such action), -EACCES
 * (another namespace's action outside a published package, or a binding of
 * an unpublished one), -EINVAL (overriding final parameters, a bad
 * sequence), -E2BIG (payload), -EAGAIN
 * (429: a namespace limit), -EBUSY (503: the pool's queue is full),
 * -ENOTSUP (a kind this appliance cannot run), -EIO. */
int invoke_start(struct invoke *inv, const struct invoke_req *req, char id[33],
                 invoke_done_fn *cb, void *arg, struct invoke_waiter **waiter,
                 struct wisp_err *err) WISP_MUST_CHECK;
/* The waiter's caller has gone: no callback will come. */
void invoke_cancel(struct invoke_waiter *w);

/* HTTP status OpenWhisk answers a finished activation with: 200, 502 for
 * application and developer errors, 500 for internal errors. */
int invoke_http_status(const json_t *record);
