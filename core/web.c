/* core/web.c - OpenWhisk web actions (see web.h).
 *
 * A request: its path parsed (namespace, package, action, extension,
 * projection), the action read (through a package binding if need be) for
 * its annotations (web-export, require-whisk-auth, raw-http,
 * web-custom-options), the parameters built from the request, then one
 * blocking invoke as the action's own namespace; the reply is rendered
 * from the activation record when it ends (on_done), or an error now.
 *
 * OpenWhisk's controller (WebActions.scala) is the spec, down to its
 * messages; what a newcomer gets wrong about it:
 * - a name that ends in no known extension is all name (names may hold
 *   dots) and is served as .http: there is no "bad extension" error;
 * - an application error's `error` goes through the extension's renderer
 *   like a result (a string error as .text is 200), and a renderer refuses
 *   what does not fit its media type with 400, never 5xx;
 * - once the action is known, every reply carries OpenWhisk's CORS headers,
 *   or none at all for an action that answers CORS itself. */
#include "web.h"

#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "auth.h"
#include "entity.h"
#include "http.h"
#include "invoke.h"
#include "log.h"
#include "store.h"
#include "wjson.h"

#define WAIT_MS 60000
/* OpenWhisk's messages (common/scala/.../http/ErrorResponse.scala) */
#define MSG_NOT_FOUND "The requested resource does not exist."
#define MSG_RESERVED "Request defines parameters that are not allowed (e.g., reserved properties)."
#define MSG_UNAUTHORIZED                                                                           \
    "The resource requires authentication, which was not supplied with the request."
#define MSG_NO_PROPERTY "Response does not include requested property."
#define MSG_UNKNOWN_TYPE "Response did not specify a known content-type."
#define MSG_TYPE_MISMATCH "Response type in header did not match generated content type."
#define MSG_FAILED "There was an error processing your request."
#define MSG_NOT_READY "Response not yet ready."
#define MSG_OVERLOADED "System is overloaded, try again later."
/* CorsSettings.scala: what a web action answers a preflight with */
#define CORS_METHODS "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
#define CORS_HEADERS "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"

enum ext { EXT_HTTP, EXT_JSON, EXT_HTML, EXT_SVG, EXT_TEXT };
static const char *const ext_names[] = {"http", "json", "html", "svg", "text"};

/* The parameters a request may not set (web.h). */
static const char *const reserved[] = {"__ow_method", "__ow_headers", "__ow_path",
                                       "__ow_user",   "__ow_query",   "__ow_body"};

struct web {
    struct store *st;
    struct invoke *inv;
    struct pending *pending; /* requests waiting for their activation */
};

/* One request waiting for its activation. */
struct pending {
    struct pending *prev, *next;
    struct web *w;
    struct http_req *req;
    struct invoke_waiter *waiter;
    enum ext ext;
    char txid[33];
    char id[33];          /* the activation's, for the reply's header */
    char projection[512]; /* "/a/b" after the action; never for .http */
};

size_t web_error_json(const char *msg, const char *code, char *buf, size_t cap)
{
    json_t *j = json_pack("{s:s, s:s}", "error", msg, "code", code);
    size_t n = j ? json_dumpb(j, buf, cap, JSON_COMPACT) : 0;
    json_decref(j);
    if (n == 0 || n > cap)
        n = (size_t)snprintf(buf, cap, "{\"error\":\"internal error\",\"code\":\"%s\"}", code);
    return n;
}

static void reply_error(struct http_req *req, const char *txid, int status, const char *msg)
{
    char buf[1024];
    size_t n = web_error_json(msg, txid, buf, sizeof buf);
    wlog_debug("web", "%s %s -> %d %s", http_req_method(req), http_req_path(req), status, msg);
    http_reply(req, status, "application/json", buf, n);
}

/* OpenWhisk's 400 for a value its extension cannot carry. */
static void reply_invalid(struct pending *p, const char *media)
{
    char msg[96];
    snprintf(msg, sizeof msg, "Response is not valid '%s'.", media);
    reply_error(p->req, p->txid, 400, msg);
}

int web_open(const struct web_cfg *cfg, struct web **out, struct wisp_err *err)
{
    struct web *w = calloc(1, sizeof *w);
    if (!w)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    w->st = cfg->st;
    w->inv = cfg->inv;
    *out = w;
    return 0;
}

static void pending_unlink(struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->w->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

void web_close(struct web *w)
{
    if (!w)
        return;
    while (w->pending) {
        struct pending *p = w->pending;
        pending_unlink(p);
        invoke_cancel(p->waiter);
        http_req_on_gone(p->req, NULL, NULL);
        free(p);
    }
    free(w);
}

/* ==== media types ======================================================= */

/* The media type of a Content-Type value (before any ';', blanks trimmed,
 * lower case) into buf; false when it is no type/subtype. */
static bool media_of(const char *ct, char *buf, size_t cap)
{
    size_t n = 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    for (; *ct && *ct != ';' && n + 1 < cap; ct++)
        buf[n++] = (char)(*ct >= 'A' && *ct <= 'Z' ? *ct + 32 : *ct);
    while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    const char *slash = strchr(buf, '/');
    return slash && slash > buf && slash[1] && !strchr(slash + 1, '/') && !strpbrk(buf, " \t,");
}

/* application/json or any +json type (OpenWhisk's isJsonFamily). */
static bool json_family(const char *media)
{
    size_t n = strlen(media);
    return strcmp(media, "application/json") == 0 || (n > 5 && strcmp(media + n - 5, "+json") == 0);
}

/* Text, not bytes: what akka-http calls a non-binary type (text, JSON, XML,
 * scripts, forms, or any type given a charset). */
static bool text_media(const char *ct, const char *media)
{
    return strncmp(media, "text/", 5) == 0 || json_family(media) || strstr(media, "xml") ||
           strstr(media, "javascript") || strcmp(media, "application/x-www-form-urlencoded") == 0 ||
           strcasestr(ct, "charset=");
}

/* base64 text, as OpenWhisk checks a JSON-typed .http body for it. */
static bool base64_shaped(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && (strchr("+/", s[i]) || (s[i] >= '0' && s[i] <= '9') ||
                       ((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z')))
        i++;
    size_t pad = len - i;
    return len > 0 && len % 4 == 0 && pad <= 2 && strspn(s + i, "=") == pad;
}

/* ==== rendering ========================================================= */

/* .json: an object or array. */
static void render_json(struct pending *p, const json_t *v)
{
    size_t n;
    char *s = json_is_object(v) || json_is_array(v) ? wjson_dump(v, &n) : NULL;
    if (s)
        http_reply(p->req, 200, "application/json", s, n);
    else if (json_is_object(v) || json_is_array(v))
        reply_error(p->req, p->txid, 503, MSG_OVERLOADED);
    else
        reply_invalid(p, "application/json");
    free(s);
}

/* .html and .svg: a string; of an object, its body (or html / svg). */
static void render_markup(struct pending *p, const json_t *v)
{
    bool html = p->ext == EXT_HTML;
    const json_t *s = v;
    if (json_is_object(v) && !(s = json_object_get(v, "body")))
        s = json_object_get(v, html ? "html" : "svg");
    if (json_is_string(s))
        http_reply(p->req, 200, html ? "text/html; charset=UTF-8" : "image/svg+xml",
                   json_string_value(s), json_string_length(s));
    else
        reply_invalid(p, html ? "text/html" : "image/svg+xml");
}

/* .text: any JSON value as text (strings as they are); of an object, its
 * body (or text), 404 when it has neither. */
static void render_text(struct pending *p, const json_t *v)
{
    const json_t *s = v;
    if (json_is_object(v) && !(s = json_object_get(v, "body")))
        s = json_object_get(v, "text");
    char *dumped =
        json_is_string(s) || !s
            ? NULL
            : json_dumps(s, JSON_ENCODE_ANY |
                                (json_is_object(s) || json_is_array(s) ? JSON_INDENT(2) : 0));
    if (!s)
        reply_error(p->req, p->txid, 404, MSG_NO_PROPERTY);
    else if (json_is_string(s))
        http_reply(p->req, 200, "text/plain; charset=UTF-8", json_string_value(s),
                   json_string_length(s));
    else if (dumped)
        http_reply(p->req, 200, "text/plain; charset=UTF-8", dumped, strlen(dumped));
    else
        reply_error(p->req, p->txid, 503, MSG_OVERLOADED);
    free(dumped);
}

/* statusCode of a .http result: a whole number or a numeric string in
 * 100-599; absent is 0 (the caller's default). false when invalid. */
static bool http_status(const json_t *code, int *out)
{
    long long v = 0;
    double d = json_real_value(code);
    char *end = NULL;
    if (json_is_integer(code))
        v = json_integer_value(code);
    else if (json_is_real(code) && d >= 100 && d <= 599 && d == (double)(int)d)
        v = (long long)d;
    else if (json_is_string(code) && json_string_length(code) > 0)
        v = strtoll(json_string_value(code), &end, 10);
    *out = v >= 100 && v <= 599 ? (int)v : 0;
    return !code || (*out && (!end || *end == '\0'));
}

/* One header value as text: a string, number or boolean; NULL otherwise. */
static const char *header_text(const json_t *v, char *buf, size_t cap)
{
    const char *s = json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, cap, "%.15g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    return s ? s : json_is_number(v) || json_is_boolean(v) ? buf : NULL;
}

/* The headers of a .http result: each a value or an array of them (one
 * header each, as Set-Cookie wants). With req NULL they are only checked.
 * ctype gets the Content-Type ("" when none), which is the reply's own and
 * never added. 0, -EINVAL (not a value, or not one a header can hold),
 * -ENOMEM. */
static int http_headers(struct http_req *req, const json_t *hdrs, char *ctype, size_t cap)
{
    const char *k;
    json_t *v;
    int rc = 0;
    ctype[0] = '\0';
    json_object_foreach((json_t *)hdrs, k, v)
    {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n && rc == 0; i++) {
            char buf[64];
            const char *text =
                header_text(json_is_array(v) ? json_array_get(v, i) : v, buf, sizeof buf);
            if (!text || !*k || strpbrk(k, "\r\n: ") || strpbrk(text, "\r\n"))
                rc = -EINVAL;
            else if (strcasecmp(k, "content-type") == 0)
                snprintf(ctype, cap, "%s", text);
            else if (req && strcasecmp(k, "content-length") &&
                     http_req_add_header(req, k, text) < 0)
                rc = -ENOMEM;
        }
        if (rc < 0)
            break;
    }
    return rc;
}

/* What a .http body becomes. */
struct entity {
    bool some;        /* false: no body (and no Content-Type) */
    const char *type; /* the reply's Content-Type */
    const char *data;
    size_t len;
    unsigned char *own; /* data when made here (dumped or decoded) */
};

/* body under the action's Content-Type (NULL: none), as OpenWhisk renders
 * it: JSON values as JSON (only under a JSON type), strings as text/html
 * unless typed, base64-decoded under a binary type (and under a JSON type
 * when they look like base64: actions written when JSON had to be sent
 * so, kept by OpenWhisk). 0, or -EINVAL / -ENOMEM with *msg. */
static int http_entity(const json_t *body, const char *ctype, struct entity *e, const char **msg)
{
    char media[128] = "";
    const char *s = json_string_value(body);
    size_t len = json_string_length(body), olen = 0;
    int rc = 0;
    *e = (struct entity){.some = body && !json_is_null(body) && !(s && len == 0)};
    if (!e->some) {
        /* nothing to send: no type either */
    } else if (ctype && !media_of(ctype, media, sizeof media)) {
        *msg = MSG_UNKNOWN_TYPE, rc = -EINVAL;
    } else if (!s && ctype && !json_family(media)) {
        *msg = MSG_TYPE_MISMATCH, rc = -EINVAL;
    } else if (!s) {
        e->own = (unsigned char *)wjson_dump(body, &e->len);
        e->data = (const char *)e->own;
        e->type = ctype ? ctype : "application/json";
        if (!e->own)
            *msg = MSG_OVERLOADED, rc = -ENOMEM;
    } else if (!ctype ||
               (text_media(ctype, media) && !(json_family(media) && base64_shaped(s, len)))) {
        e->data = s, e->len = len;
        e->type = ctype ? ctype : "text/html; charset=UTF-8";
    } else if (!(e->own = malloc(len + 1))) {
        *msg = MSG_OVERLOADED, rc = -ENOMEM;
    } else if (mbedtls_base64_decode(e->own, len + 1, &olen, (const unsigned char *)s, len) != 0) {
        *msg = MSG_TYPE_MISMATCH, rc = -EINVAL;
    } else {
        e->data = (const char *)e->own, e->len = olen, e->type = ctype;
    }
    return rc;
}

/* .http: {statusCode, headers, body}. The action's headers are added only
 * once all of it is known good, so an error reply never carries them. */
static void render_http(struct pending *p, const json_t *res)
{
    const json_t *hdrs = json_object_get(res, "headers");
    char ctype[256] = "";
    int status = 0, rc = -EINVAL;
    const char *msg = NULL;
    struct entity e = {0};
    if (json_is_object(res) && (!hdrs || json_is_object(hdrs)) &&
        http_status(json_object_get(res, "statusCode"), &status) &&
        http_headers(NULL, hdrs, ctype, sizeof ctype) == 0)
        rc = http_entity(json_object_get(res, "body"), ctype[0] ? ctype : NULL, &e, &msg);
    if (rc == 0 && http_headers(p->req, hdrs, ctype, sizeof ctype) < 0)
        rc = -ENOMEM, msg = MSG_OVERLOADED;
    if (!status)
        status = e.some ? 200 : 204;
    if (rc == 0)
        http_reply(p->req, status, e.some ? e.type : NULL, e.data, e.len);
    else if (msg)
        reply_error(p->req, p->txid, rc == -ENOMEM ? 503 : 400, msg);
    else
        reply_invalid(p, "message/http");
    free(e.own);
}

/* A value (a result, what a projection picked, an error's `error`)
 * through the extension's renderer. */
static void render(struct pending *p, const json_t *v)
{
    switch (p->ext) {
    case EXT_HTTP:
        render_http(p, v);
        break;
    case EXT_JSON:
        render_json(p, v);
        break;
    case EXT_TEXT:
        render_text(p, v);
        break;
    default:
        render_markup(p, v);
        break;
    }
}

/* The member a projection (/a/b) names; NULL when there is none. */
static const json_t *project(const json_t *v, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && v; t = strtok_r(NULL, "/", &save))
        v = json_is_object(v) ? json_object_get(v, t) : NULL;
    return v;
}

static void on_gone(void *arg)
{
    struct pending *p = arg;
    pending_unlink(p);
    invoke_cancel(p->waiter);
    free(p);
}

static void on_done(void *arg, const json_t *record)
{
    struct pending *p = arg;
    pending_unlink(p);
    http_req_on_gone(p->req, NULL, NULL);
    const json_t *resp = json_object_get(record, "response");
    const char *status = wjson_str(resp, "status"), *id = wjson_str(record, "activationId");
    const json_t *res = json_object_get(resp, "result"), *v = NULL;
    if (http_req_add_header(p->req, "x-openwhisk-activation-id", id ? id : p->id) < 0)
        wlog_debug("web", "cannot add the activation id header");
    if (status && strcmp(status, "success") == 0)
        v = p->projection[0] ? project(res, p->projection) : res;
    else if (status && strcmp(status, "application error") == 0)
        v = json_object_get(res, "error"); /* in the result's place; no projection */
    if (!record) {
        /* the wait ran out; the activation goes on */
        reply_error(p->req, p->txid, 202, MSG_NOT_READY);
    } else if (v) {
        render(p, v);
    } else if (status &&
               (strcmp(status, "success") == 0 || strcmp(status, "application error") == 0)) {
        reply_error(p->req, p->txid, 404, MSG_NO_PROPERTY);
    } else {
        /* the action failed to run or to answer; its record says how */
        reply_error(p->req, p->txid, 400, MSG_FAILED);
    }
    free(p);
}

/* ==== the request ======================================================= */

/* The extension a name ends in, cut off; a name that ends in none is all
 * name and served as .http (OpenWhisk: names may hold dots, and no
 * extension means .http). */
static enum ext split_ext(char *seg)
{
    size_t n = strlen(seg);
    enum ext ext = EXT_HTTP;
    for (size_t i = 0; i < WISP_ARRAY_LEN(ext_names); i++) {
        size_t e = strlen(ext_names[i]);
        if (n > e && seg[n - e - 1] == '.' && strcmp(seg + n - e, ext_names[i]) == 0) {
            seg[n - e - 1] = '\0';
            ext = (enum ext)i;
            break;
        }
    }
    return ext;
}

/* The action a web path names (pkg "default": none), read for its
 * annotations; through a binding when pkg is one (the binding's own
 * annotations do not count, as in OpenWhisk; invoke resolves it again with
 * its parameters). 0 with *doc and path ("name" or "pkg/name"), -ENOENT
 * or -EIO. */
static int load_action(struct web *w, const char *ns, const char *pkg, const char *name,
                       json_t **doc, char *path, size_t cap)
{
    enum rec_kind kind = REC_ACTION;
    json_t *bind = NULL;
    bool plain = strcmp(pkg, "default") == 0;
    if (plain)
        snprintf(path, cap, "%s", name);
    else
        snprintf(path, cap, "%s/%s", pkg, name);
    int rc = store_entity_get(w->st, ns, path, &kind, doc);
    if (rc == -ENOENT && !plain && store_entity_get(w->st, ns, pkg, &kind, &bind) == 0 &&
        kind == REC_PACKAGE) {
        const json_t *b = json_object_get(bind, "binding");
        const char *bns = wjson_str(b, "namespace"), *bname = wjson_str(b, "name");
        char real[2 * ENTITY_NAME_MAX + 2];
        snprintf(real, sizeof real, "%s/%s", bname ? bname : "", name);
        rc = bns && bname ? store_entity_get(w->st, bns, real, &kind, doc) : -ENOENT;
    }
    json_decref(bind);
    if (rc == 0 && kind != REC_ACTION)
        rc = -ENOENT;
    if (rc < 0) {
        json_decref(*doc);
        *doc = NULL;
    }
    return rc == -EIO ? -EIO : rc < 0 ? -ENOENT : 0;
}

static json_t *query_object(const char *q)
{
    json_t *o = json_object();
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    if (o && q && *q && evhttp_parse_query_str(q, &kv) == 0)
        for (struct evkeyval *e = TAILQ_FIRST(&kv); e; e = TAILQ_NEXT(e, next))
            json_object_set_new(o, e->key, json_string(e->value));
    evhttp_clear_headers(&kv);
    return o;
}

static bool names_reserved(const json_t *o)
{
    bool hit = false;
    for (size_t i = 0; i < WISP_ARRAY_LEN(reserved) && !hit; i++)
        hit = json_object_get(o, reserved[i]) != NULL;
    return hit;
}

/* A body as __ow_body: text as it is (if valid UTF-8), anything else
 * base64: binary types, JSON (as OpenWhisk does) and a body with no type
 * (which HTTP says is application/octet-stream). */
static json_t *body_value(const char *body, size_t len, const char *ctype)
{
    char media[128];
    bool text = ctype && media_of(ctype, media, sizeof media) && text_media(ctype, media) &&
                !json_family(media);
    json_t *s = text ? json_stringn(body, len) : NULL;
    return s ? s : wjson_base64(body, len);
}

/* The request's parameters, not raw: the query, then the fields of a JSON
 * object or form body over it; any other body (a JSON value that is no
 * object included) as __ow_body. NULL with *status / *msg set: a malformed
 * JSON body, or a query or body naming a reserved parameter. */
static json_t *request_params(struct http_req *req, int *status, const char **msg)
{
    const char *ctype = http_req_header(req, "Content-Type");
    char media[128] = "";
    size_t blen;
    const char *body = http_req_body(req, &blen);
    bool typed = ctype && media_of(ctype, media, sizeof media);
    bool json = blen && typed && json_family(media);
    json_t *params = query_object(http_req_query(req)), *b = NULL;
    if (json) {
        b = wjson_parse(body, blen, NULL);
    } else if (blen && typed && strcmp(media, "application/x-www-form-urlencoded") == 0) {
        char *form = strndup(body, blen);
        b = form ? query_object(form) : NULL;
        free(form);
    } else if (blen) {
        b = body_value(body, blen, ctype); /* a string: never fields */
    }
    *msg = NULL;
    if (json && !b)
        *status = 400, *msg = "The request content was malformed: the body is not JSON.";
    else if (!params || (blen && !b))
        *status = 503, *msg = MSG_OVERLOADED;
    else if (names_reserved(params) || (json_is_object(b) && names_reserved(b)))
        *status = 400, *msg = MSG_RESERVED;
    else if (json_is_object(b))
        json_object_update(params, b);
    else if (b)
        json_object_set(params, "__ow_body", b);
    json_decref(b);
    if (*msg) {
        json_decref(params);
        params = NULL;
    }
    return params;
}

/* The request's headers, names in lower case. */
static void add_header(void *arg, const char *name, const char *value)
{
    char low[128];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof low; i++)
        low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    low[i] = '\0';
    json_object_set_new(arg, low, json_string(value));
}

/* The action's parameters from the request (raw-http: the query and body
 * as __ow_query and __ow_body, unparsed and unchecked), plus the HTTP
 * context. NULL with *status / *msg set. */
static json_t *params_of(struct http_req *req, bool raw, const char *rest, const char *user,
                         int *status, const char **msg)
{
    size_t blen;
    const char *body = http_req_body(req, &blen);
    *msg = NULL;
    json_t *params = raw ? json_object() : request_params(req, status, msg);
    json_t *hdrs = json_object();
    char method[16];
    snprintf(method, sizeof method, "%s", http_req_method(req));
    for (char *c = method; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    if (params && hdrs) {
        if (raw) {
            json_object_set_new(params, "__ow_query", json_string(http_req_query(req)));
            json_object_set_new(params, "__ow_body",
                                body_value(body, blen, http_req_header(req, "Content-Type")));
        }
        http_req_each_header(req, add_header, hdrs);
        json_object_set_new(params, "__ow_method", json_string(method));
        json_object_set(params, "__ow_headers", hdrs);
        json_object_set_new(params, "__ow_path", json_string(rest));
        if (user[0])
            json_object_set_new(params, "__ow_user", json_string(user));
    } else if (!*msg) {
        *status = 503, *msg = MSG_OVERLOADED;
    }
    json_decref(hdrs);
    if (*msg) {
        json_decref(params);
        params = NULL;
    }
    return params;
}

/* require-whisk-auth: true wants a valid key (Basic), a string or number
 * the X-Require-Whisk-Auth header equal to it; none (or false) nothing.
 * 0 or -EACCES (401). With the annotation, user gets the caller's
 * namespace when a valid key came along ("" else): that is __ow_user. */
static int check_auth(struct web *w, struct http_req *req, const json_t *need, char *user)
{
    const char *basic = http_req_header(req, "Authorization");
    const char *got = http_req_header(req, "X-Require-Whisk-Auth");
    char key[AUTH_UUID_LEN + AUTH_SECRET_LEN + 2], want[64] = "";
    user[0] = '\0';
    if (need && !json_is_false(need) && basic && auth_check(w->st, basic, user, key) < 0)
        user[0] = '\0';
    if (json_is_string(need))
        snprintf(want, sizeof want, "%s", json_string_value(need));
    else if (json_is_integer(need))
        snprintf(want, sizeof want, "%lld", (long long)json_integer_value(need));
    else if (json_is_real(need))
        snprintf(want, sizeof want, "%.15g", json_real_value(need));
    bool ok = !need || json_is_false(need) || (json_is_true(need) && user[0]) ||
              (want[0] && got && strcmp(got, want) == 0);
    return ok ? 0 : -EACCES;
}

/* Once the action is known every reply carries OpenWhisk's CORS headers
 * (Allow-Headers echoes a preflight's Access-Control-Request-Headers), or
 * none at all when the action answers CORS itself (web-custom-options). */
static void cors(struct http_req *req, bool custom)
{
    const char *asked = http_req_header(req, "Access-Control-Request-Headers");
    http_req_own_cors(req);
    if (!custom && (http_req_add_header(req, "Access-Control-Allow-Origin", "*") < 0 ||
                    http_req_add_header(req, "Access-Control-Allow-Methods", CORS_METHODS) < 0 ||
                    http_req_add_header(req, "Access-Control-Allow-Headers",
                                        asked ? asked : CORS_HEADERS) < 0))
        wlog_debug("web", "cannot add the CORS headers");
}

static int invoke_status(int rc)
{
    return rc == -EINVAL   ? 400
           : rc == -EACCES ? 403
           : rc == -ENOENT ? 404
           : rc == -E2BIG  ? 413
           : rc == -EAGAIN ? 429
           : rc == -EIO    ? 500
                           : 503;
}

/* One blocking invoke of ns/path as its owner; the reply comes in on_done,
 * or now when it cannot start. */
static void start(struct web *w, struct http_req *req, const char *txid, const char *ns,
                  const char *path, enum ext ext, const char *rest, const json_t *params)
{
    struct pending *p = calloc(1, sizeof *p);
    struct wisp_err err = {0};
    int rc = -ENOMEM;
    if (p) {
        *p = (struct pending){.w = w, .req = req, .ext = ext};
        snprintf(p->txid, sizeof p->txid, "%s", txid);
        if (ext != EXT_HTTP) /* .http never projects: the path is only __ow_path */
            snprintf(p->projection, sizeof p->projection, "%s", rest);
        p->next = w->pending; /* linked first: on_done unlinks it */
        if (w->pending)
            w->pending->prev = p;
        w->pending = p;
        struct invoke_req ireq = {.ns = ns,
                                  .path = path,
                                  .subject = ns,
                                  .payload = params,
                                  .blocking = true,
                                  .wait_ms = WAIT_MS};
        rc = invoke_start(w->inv, &ireq, p->id, on_done, p, &p->waiter, &err);
    }
    if (rc == 0) {
        http_req_on_gone(req, on_gone, p);
    } else {
        if (p) {
            pending_unlink(p);
            free(p);
        }
        reply_error(req, txid, invoke_status(rc), err.msg[0] ? err.msg : MSG_OVERLOADED);
    }
}

void web_serve(struct web *w, struct http_req *req, const char *txid, char *const *segs, int nsegs)
{
    char name[ENTITY_NAME_MAX + 1] = "", path[2 * ENTITY_NAME_MAX + 2], rest[512] = "";
    char user[AUTH_NS_MAX] = "";
    json_t *doc = NULL, *params = NULL;
    int status = 404;
    const char *msg = MSG_NOT_FOUND;
    if (nsegs >= 3)
        snprintf(name, sizeof name, "%s", segs[2]);
    enum ext ext = split_ext(name);
    for (int i = 3; i < nsegs; i++) {
        size_t o = strlen(rest);
        snprintf(rest + o, sizeof rest - o, "/%s", segs[i]);
    }
    int rc = nsegs < 3 ? -ENOENT : load_action(w, segs[0], segs[1], name, &doc, path, sizeof path);
    const json_t *ann = json_object_get(doc, "annotations");
    bool options = strcmp(http_req_method(req), "OPTIONS") == 0;
    bool custom = json_is_true(wjson_kv_get(ann, "web-custom-options"));
    if (rc < 0 || !json_is_true(wjson_kv_get(ann, "web-export"))) {
        status = rc == -EIO ? 500 : 404, msg = rc == -EIO ? "The store failed." : MSG_NOT_FOUND;
        goto fail;
    }
    cors(req, custom);
    if (options && !custom) { /* the preflight: no activation */
        http_reply(req, 200, NULL, NULL, 0);
        goto out;
    }
    /* a custom OPTIONS runs whatever the auth (preflights carry no
     * credentials): the action answers it, as in OpenWhisk */
    if (check_auth(w, req, wjson_kv_get(ann, "require-whisk-auth"), user) < 0 && !options) {
        status = 401, msg = MSG_UNAUTHORIZED;
        goto fail;
    }
    params = params_of(req, json_is_true(wjson_kv_get(ann, "raw-http")), rest, user, &status, &msg);
    if (!params)
        goto fail;
    start(w, req, txid, segs[0], path, ext, rest, params);
    goto out;
fail:
    reply_error(req, txid, status, msg);
out:
    json_decref(params);
    json_decref(doc);
}
