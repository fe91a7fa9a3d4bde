/* core/web.h - OpenWhisk web actions: /api/v1/web/{namespace}/{package |
 * default}/{action}[.{ext}][/projection], called without a key.
 *
 * An action answers here only when annotated web-export: true (else 404,
 * as OpenWhisk). Its parameters are the request's: the query, then a JSON
 * object or form body over them, plus __ow_method (lower case),
 * __ow_headers (lower-case names), __ow_path (what follows the action) and,
 * with require-whisk-auth, __ow_user. raw-http: true gives the query as
 * __ow_query and the body as __ow_body (base64 unless it is text) instead.
 * A request naming an __ow_ parameter itself, or overriding one the
 * action or package fixed (final), is refused with 400.
 *
 * require-whisk-auth: true wants a valid key (Basic); a string or number
 * wants the X-Require-Whisk-Auth header to equal it: 401 otherwise.
 *
 * The extension picks how the result is rendered: .json (the result, or
 * the projection of it: /a/b), .html, .svg and .text (a string member:
 * body, or html / svg / text), .http (no extension: {statusCode, headers,
 * body}, body base64-decoded when its Content-Type is not text). An
 * application error's `error` is rendered the same way. Every web
 * invocation is an activation of the action's namespace, and counts
 * against its limits. OPTIONS gets CORS answers unless the action is
 * annotated web-custom-options: true (then the action answers). */
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
void web_serve(struct web *w, struct http_req *req, const char *txid, char *const *segs,
               int nsegs);

/* The OpenWhisk error document {"error": msg, "code": code} into buf; its
 * length. */
size_t web_error_json(const char *msg, const char *code, char *buf, size_t cap);
