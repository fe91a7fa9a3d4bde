/* core/api.h - the OpenWhisk REST API (/api/v1/...) on core/http.
 *
 * Loop thread only. Entity writes answer only once they are durable
 * (store_sync). Every error reply is OpenWhisk's shape:
 *   {"error": "<message>", "code": "<transaction id>"}
 * with the errno-to-status mapping kept in one table in api.c. */
#pragma once
#include "wisp.h"

struct event_base;
struct store;
struct rt_kinds;
struct wisp_cfg;
struct tls_server;
struct invoke;
struct act;
struct pool;
struct trigger;
struct feeds;
struct api;

/* What the API serves from; all borrowed until api_free. tls: NULL for
 * plain HTTP. */
struct api_env {
    struct event_base *base;
    struct store *st;
    const struct rt_kinds *kinds;
    const struct wisp_cfg *cfg;
    struct tls_server *tls;
    struct invoke *inv;
    struct act *act;
    struct pool *pool;
    struct trigger *trig;
    struct feeds *feeds;
};

int api_start(const struct api_env *env, struct api **out, unsigned *bound_port,
              struct wisp_err *err) WISP_MUST_CHECK;
/* Stops accepting connections (drain starts). */
void api_stop_listening(struct api *a);
/* Requests accepted and not yet answered. */
unsigned api_pending(const struct api *a);
void api_free(struct api *a);
