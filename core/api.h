/* core/api.h - the OpenWhisk REST API (/api/v1/...) on core/http.
 *
 * Loop thread only. Entity writes answer only once they are durable
 * (store_sync). Every error reply is OpenWhisk's shape:
 *   {"error": "<message>", "code": "<transaction id>"}
 * with the errno-to-status mapping kept in one table in api.c. */
#pragma once
#include <stddef.h>
#include <stdint.h>

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

/* Fuzz entry point (tests/fuzz): splits "/" + data as a request path
 * (percent-decoding) and matches it against the route table for each
 * method, as route() does, without a server, a store or a key. The number
 * of methods some row serves it with, -EINVAL when the path is refused
 * (400), -ENOMEM; abort() on a broken invariant. */
int api_fuzz_route(const uint8_t *data, size_t len);
