/* core/web.h - OpenWhisk web actions: /api/v1/web/{namespace}/{package |
 * default}/{action}[.{ext}][/projection], called without a key.
 *
 * An action answers here only when annotated web-export: true (else 404,
 * as OpenWhisk), also through a package binding. Its parameters are the
 * package's, the binding's, the action's, then the request's: the query,
 * then the fields of a JSON object or form body over them; any other body
 * (a JSON value that is no object included) is __ow_body, base64 unless it
 * is text. Plus __ow_method (lower case), __ow_headers (lower-case names),
 * __ow_path (what follows the action) and, with require-whisk-auth and a
 * valid key, __ow_user. raw-http: true gives the query as __ow_query and
 * the body as __ow_body (JSON as base64) instead, unchecked. A request
 * naming one of those six __ow_ parameters, or overriding one the action
 * or its package fixed (final), is refused with 400.
 *
 * require-whisk-auth: true wants a valid key (Basic); a string or number
 * wants the X-Require-Whisk-Auth header to equal it: 401 otherwise.
 *
 * The extension picks how the result is rendered: .json (an object or
 * array), .html and .svg (a string: of an object, its body, or html /
 * svg), .text (any value as text: of an object, its body or text), .http
 * or none ({statusCode, headers, body}: JSON bodies as JSON, strings as
 * text/html unless typed, base64-decoded under a binary Content-Type). A
 * name that ends in no known extension is all name (names may hold dots)
 * and served as .http. Every extension but .http takes a projection
 * (/a/b: the member it names; 404 when there is none). An application
 * error's `error` is rendered the same way (no projection); an action
 * that failed to answer is 400. What an extension cannot carry is 400
 * with OpenWhisk's message.
 *
 * Every web invocation is an activation of the action's namespace, counts
 * against its limits, and its id comes back in x-openwhisk-activation-id.
 * Once the action is known, replies carry OpenWhisk's CORS headers and
 * OPTIONS answers them without an activation, unless the action is
 * annotated web-custom-options: true: then no CORS headers are added and
 * the action answers OPTIONS itself (whatever its require-whisk-auth). */
#pragma once
#include <stddef.h>

#include "wisp.h"

struct http_req;
struct invoke;
struct store;
struct web;

struct web_cfg {
    struct store *st;
    struct invoke *inv;
};

int web_open(const struct web_cfg *cfg, struct web **out, struct wisp_err *err) WISP_MUST_CHECK;
/* Fails the requests still waiting (none reply). NULL is a no-op. */
void web_close(struct web *w);

/* Serves one request; segs are the decoded path parts after /api/v1/web,
 * txid the request's transaction id (the code of its error bodies). The
 * reply comes now or when the activation ends. */
void web_serve(struct web *w, struct http_req *req, const char *txid, char *const *segs, int nsegs);

/* The OpenWhisk error document {"error": msg, "code": code} into buf; its
 * length. */
size_t web_error_json(const char *msg, const char *code, char *buf, size_t cap);
