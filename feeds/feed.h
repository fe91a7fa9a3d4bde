/* feeds/feed.h - the interface every feed kind (mqtt, webhook, poll, alarm)
 * implements. Loop thread only; nothing blocks. An adapter turns an outside
 * event into one call of the fire callback core hands it at start, and never
 * touches the store or the pools. Core keeps the bindings as entities and
 * re-binds them at start. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "wisp.h"

struct event_base;
struct feed_binding; /* opaque; owned by the feed kind */

/* Injected by core (trigger_fire); copies what it keeps. */
typedef int feed_fire_fn(void *ctx, const char *ns, const char *trigger, const char *params_json,
                         size_t len);

struct feed_env {
    struct event_base *base;
    feed_fire_fn *fire;
    void *fire_ctx;
};

struct feed_ops {
    const char *kind;
    int (*start)(const struct feed_env *env, const void *cfg, void **self);
    void (*stop)(void *self); /* frees all bindings; no callbacks after */
    int (*bind)(void *self, const char *ns, const char *trigger, const char *cfg_json, size_t len,
                struct feed_binding **out, struct wisp_err *err);
    int (*unbind)(void *self, struct feed_binding *b); /* frees b */
    int (*set_paused)(void *self, struct feed_binding *b, bool paused);
};
