/* core/web.c - OpenWhisk web actions (see web.h).
 *
 * A request: its path parsed (namespace, package, action, extension,
 * projection), the action read (web-export, require-whisk-auth, raw-http,
 * web-custom-options), the parameters built from the request, then one
 * blocking invoke as the action's own namespace; the reply is rendered
 * from the activation record when it ends (on_done), or an error now. */
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
#include "http.h"
#include "invoke.h"
#include "log.h"
#include "store.h"
#include "wjson.h"

#define WAIT_MS 60000
#define MSG_NOT_FOUND "The requested resource does not exist."
#define MSG_RESERVED "Request defines parameters that are not allowed (e.g., reserved properties)."
#define MSG_EXT "Extension must be specified and one of [.http, .json, .html, .svg, .text]."

enum ext { EXT_HTTP, EXT_JSON, EXT_HTML, EXT_SVG, EXT_TEXT };
static const char *const ext_names[] = {"http", "json", "html", "svg", "text"};

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
    char projection[512]; /* "/a/b" after the action, .json */
    bool head;            /* HEAD: no body */
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

/* ---- rendering ---------------------------------------------------------- */

static bool text_type(const char *ct)
{
    return !ct || strncasecmp(ct, "text/", 5) == 0 || strstr(ct, "json") || strstr(ct, "xml") ||
           strstr(ct, "javascript") || strstr(ct, "x-www-form-urlencoded");
}

static void web_send(struct pending *p, int status, const char *ctype, const char *body, size_t len)
{
    http_reply(p->req, status, ctype, p->head ? NULL : body, p->head ? 0 : len);
}

static void send_json(struct pending *p, int status, const json_t *v)
{
    size_t n;
    char *s = wjson_dump(v, &n);
    if (!s) {
        reply_error(p->req, p->txid, 503, "System is overloaded, try again later.");
        return;
    }
    web_send(p, status, "application/json", s, n);
    free(s);
}

/* .http: {statusCode, headers, body}. */
static void render_http(struct pending *p, const json_t *res)
{
    const json_t *code = json_object_get(res, "statusCode"), *hdrs = json_object_get(res, "headers");
    const json_t *body = json_object_get(res, "body");
    if (!json_is_object(res) || (code && !json_is_integer(code)) || (hdrs && !json_is_object(hdrs))) {
        reply_error(p->req, p->txid, 502, "The action did not produce a valid response.");
        return;
    }
    int status = code ? (int)json_integer_value(code) : (body && !json_is_null(body) ? 200 : 204);
    if (status < 100 || status > 599) {
        reply_error(p->req, p->txid, 502, "The action did not produce a valid response.");
        return;
    }
    const char *ctype = NULL, *k;
    json_t *v;
    json_object_foreach((json_t *)hdrs, k, v)
    {
        char num[32];
        const char *val = json_string_value(v);
        if (json_is_integer(v)) {
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
            val = num;
        } else if (json_is_boolean(v)) {
            val = json_is_true(v) ? "true" : "false";
        }
        if (!val)
            continue;
        if (strcasecmp(k, "content-type") == 0) {
            ctype = json_string_value(v);
            continue;
        }
        if (strcasecmp(k, "content-length") && http_req_add_header(p->req, k, val) < 0) {
            reply_error(p->req, p->txid, 502, "The action's response headers are not valid.");
            return;
        }
    }
    if (!body || json_is_null(body)) {
        web_send(p, status, ctype, NULL, 0);
        return;
    }
    if (!json_is_string(body)) { /* JSON: as JSON */
        size_t n;
        char *s = wjson_dump(body, &n);
        web_send(p, status, ctype ? ctype : "application/json", s ? s : "", s ? n : 0);
        free(s);
        return;
    }
    const char *s = json_string_value(body);
    size_t len = json_string_length(body);
    if (text_type(ctype)) {
        web_send(p, status, ctype ? ctype : "text/html", s, len);
        return;
    }
    /* a binary type: the body is base64 */
    size_t olen = 0;
    unsigned char *bin = malloc(len + 1);
    if (!bin || mbedtls_base64_decode(bin, len + 1, &olen, (const unsigned char *)s, len) != 0) {
        free(bin);
        reply_error(p->req, p->txid, 400, "The response body is not valid base64 for its "
                                           "binary Content-Type.");
        return;
    }
    web_send(p, status, ctype, (const char *)bin, olen);
    free(bin);
}

/* .json with a projection (/a/b): the member it names. */
static const json_t *project(const json_t *v, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && v; t = strtok_r(NULL, "/", &save))
        v = json_is_object(v) ? json_object_get(v, t) : NULL;
    return v;
}

static void render(struct pending *p, const json_t *res)
{
    switch (p->ext) {
    case EXT_HTTP:
        render_http(p, res);
        return;
    case EXT_JSON: {
        const json_t *v = p->projection[0] ? project(res, p->projection) : res;
        if (!v) {
            reply_error(p->req, p->txid, 404, "The requested property does not exist.");
            return;
        }
        send_json(p, 200, v);
        return;
    }
    default: {
        static const char *const fields[] = {[EXT_HTML] = "html", [EXT_SVG] = "svg",
                                             [EXT_TEXT] = "text"};
        static const char *const types[] = {[EXT_HTML] = "text/html; charset=UTF-8",
                                            [EXT_SVG] = "image/svg+xml",
                                            [EXT_TEXT] = "text/plain; charset=UTF-8"};
        const json_t *v = json_object_get(res, "body");
        if (!json_is_string(v))
            v = json_object_get(res, fields[p->ext]);
        if (!json_is_string(v)) {
            char msg[128];
            snprintf(msg, sizeof msg, "The action did not return a string '%s' or 'body' for .%s.",
                     fields[p->ext], ext_names[p->ext]);
            reply_error(p->req, p->txid, 400, msg);
            return;
        }
        web_send(p, 200, types[p->ext], json_string_value(v), json_string_length(v));
        return;
    }
    }
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
    const char *status = wjson_str(resp, "status");
    const json_t *res = json_object_get(resp, "result");
    if (!record) {
        reply_error(p->req, p->txid, 502, "Response not yet ready.");
    } else if (status && strcmp(status, "success") && strcmp(status, "application error")) {
        const char *e = wjson_str(res, "error");
        reply_error(p->req, p->txid, 502, e ? e : "The action did not produce a valid response.");
    } else if (status && strcmp(status, "application error") == 0) {
        /* its error is rendered in the result's place (an .http error object
         * carries its own statusCode); an error that is no object: 400 */
        const json_t *e = json_object_get(res, "error");
        if (json_is_object(e))
            render(p, e);
        else
            send_json(p, 400, res);
    } else {
        render(p, res);
    }
    free(p);
}

/* ---- the request ------------------------------------------------------- */

/* "name.ext" into name and its extension; no extension: .http. */
static int split_ext(char *seg, enum ext *out)
{
    char *dot = strrchr(seg, '.');
    *out = EXT_HTTP;
    if (!dot)
        return 0;
    for (size_t i = 0; i < WISP_ARRAY_LEN(ext_names); i++)
        if (strcmp(dot + 1, ext_names[i]) == 0) {
            *dot = '\0';
            *out = (enum ext)i;
            return 0;
        }
    return -EINVAL;
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

/* A body as a parameter: text as it is (UTF-8), anything else base64. */
static json_t *body_value(const char *body, size_t len, const char *ctype)
{
    json_t *s = text_type(ctype) ? json_stringn(body, len) : NULL;
    return s ? s : wjson_base64(body, len);
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

/* The action's parameters from the request. NULL with *status/msg set. */
static json_t *params_of(struct http_req *req, const json_t *ann, const char *rest,
                         const char *user, int *status, const char **msg)
{
    bool raw = json_is_true(wjson_kv_get(ann, "raw-http"));
    const char *q = http_req_query(req), *ctype = http_req_header(req, "Content-Type");
    size_t blen;
    const char *body = http_req_body(req, &blen);
    json_t *params = raw ? json_object() : query_object(q);
    if (!params) {
        *status = 503, *msg = "out of memory";
        return NULL;
    }
    if (raw) {
        json_object_set_new(params, "__ow_query", json_string(q ? q : ""));
        json_object_set_new(params, "__ow_body", body_value(body, blen, ctype));
    } else if (blen && ctype && strstr(ctype, "json")) {
        json_t *b = wjson_parse(body, blen, NULL);
        if (!json_is_object(b)) {
            json_decref(b);
            json_decref(params);
            *status = 400, *msg = "The request content was malformed: a JSON body must be an object.";
            return NULL;
        }
        const char *k;
        json_t *v;
        json_object_foreach(b, k, v) json_object_set(params, k, v);
        json_decref(b);
    } else if (blen && ctype && strstr(ctype, "x-www-form-urlencoded")) {
        char *form = strndup(body, blen);
        json_t *f = form ? query_object(form) : NULL;
        free(form);
        json_object_update(params, f);
        json_decref(f);
    } else if (blen) { /* any other body: as __ow_body, base64 unless text */
        json_object_set_new(params, "__ow_body", body_value(body, blen, ctype));
    }
    const char *k;
    json_t *v;
    json_object_foreach(params, k, v) if (strncmp(k, "__ow_", 5) == 0 && strcmp(k, "__ow_body") &&
                                          strcmp(k, "__ow_query"))
    {
        json_decref(params);
        *status = 400, *msg = MSG_RESERVED;
        return NULL;
    }
    char method[16];
    snprintf(method, sizeof method, "%s", http_req_method(req));
    for (char *c = method; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    json_t *hdrs = json_object();
    http_req_each_header(req, add_header, hdrs);
    json_object_set_new(params, "__ow_method", json_string(method));
    json_object_set_new(params, "__ow_headers", hdrs);
    json_object_set_new(params, "__ow_path", json_string(rest));
    if (user)
        json_object_set_new(params, "__ow_user", json_string(user));
    return params;
}

/* require-whisk-auth: 0, or -EACCES (401). *user: the caller's namespace. */
static int check_auth(struct web *w, struct http_req *req, const json_t *ann, char *user)
{
    const json_t *need = wjson_kv_get(ann, "require-whisk-auth");
    user[0] = '\0';
    if (!need || json_is_false(need))
        return 0;
    if (json_is_true(need)) {
        char key[AUTH_UUID_LEN + AUTH_SECRET_LEN + 2];
        return auth_check(w->st, http_req_header(req, "Authorization"), user, key) < 0 ? -EACCES
                                                                                      : 0;
    }
    char want[64];
    if (json_is_string(need))
        snprintf(want, sizeof want, "%s", json_string_value(need));
    else if (json_is_integer(need))
        snprintf(want, sizeof want, "%lld", (long long)json_integer_value(need));
    else
        return -EACCES;
    const char *got = http_req_header(req, "X-Require-Whisk-Auth");
    return got && strcmp(got, want) == 0 ? 0 : -EACCES;
}

static void cors(struct http_req *req)
{
    if (http_req_add_header(req, "Access-Control-Allow-Methods",
                            "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH") < 0 ||
        http_req_add_header(req, "Access-Control-Allow-Headers",
                            "Authorization, Origin, X-Requested-With, Content-Type, Accept, "
                            "User-Agent") < 0)
        wlog_debug("web", "cannot add the CORS headers");
}

void web_serve(struct web *w, struct http_req *req, const char *txid, char *const *segs,
               int nsegs)
{
    if (nsegs < 3) {
        reply_error(req, txid, 404, MSG_NOT_FOUND);
        return;
    }
    const char *ns = segs[0], *pkg = segs[1];
    char name[256], path[520], rest[512] = "";
    snprintf(name, sizeof name, "%s", segs[2]);
    enum ext ext;
    if (split_ext(name, &ext) < 0) {
        reply_error(req, txid, 406, MSG_EXT);
        return;
    }
    for (int i = 3; i < nsegs; i++) {
        size_t o = strlen(rest);
        snprintf(rest + o, sizeof rest - o, "/%s", segs[i]);
    }
    if (strcmp(pkg, "default") == 0)
        snprintf(path, sizeof path, "%s", name);
    else
        snprintf(path, sizeof path, "%s/%s", pkg, name);
    enum rec_kind kind;
    json_t *doc = NULL;
    int rc = store_entity_get(w->st, ns, path, &kind, &doc);
    const json_t *ann = json_object_get(doc, "annotations");
    if (rc < 0 || kind != REC_ACTION || !json_is_true(wjson_kv_get(ann, "web-export"))) {
        json_decref(doc);
        reply_error(req, txid, rc == -EIO ? 500 : 404, rc == -EIO ? "The store failed." : MSG_NOT_FOUND);
        return;
    }
    bool options = strcmp(http_req_method(req), "OPTIONS") == 0;
    if (options && !json_is_true(wjson_kv_get(ann, "web-custom-options"))) {
        json_decref(doc);
        cors(req);
        http_reply(req, 200, NULL, NULL, 0);
        return;
    }
    char user[AUTH_NS_MAX];
    if (check_auth(w, req, ann, user) < 0) {
        json_decref(doc);
        reply_error(req, txid, 401, "The resource requires authentication, which was not supplied "
                                    "with the request.");
        return;
    }
    int status = 0;
    const char *msg = NULL;
    json_t *params = params_of(req, ann, rest, user[0] ? user : NULL, &status, &msg);
    json_decref(doc);
    if (!params) {
        reply_error(req, txid, status, msg);
        return;
    }
    struct pending *p = calloc(1, sizeof *p);
    if (!p) {
        json_decref(params);
        reply_error(req, txid, 503, "System is overloaded, try again later.");
        return;
    }
    *p = (struct pending){.w = w, .req = req, .ext = ext,
                          .head = strcmp(http_req_method(req), "HEAD") == 0};
    snprintf(p->txid, sizeof p->txid, "%s", txid);
    snprintf(p->projection, sizeof p->projection, "%s", rest);
    if (ext != EXT_JSON)
        p->projection[0] = '\0';
    p->next = w->pending; /* linked first: on_done unlinks it */
    if (w->pending)
        w->pending->prev = p;
    w->pending = p;
    struct invoke_req ireq = {.ns = ns, .path = path, .subject = ns, .payload = params,
                              .blocking = true, .wait_ms = WAIT_MS};
    char id[33];
    struct wisp_err err = {0};
    rc = invoke_start(w->inv, &ireq, id, on_done, p, &p->waiter, &err);
    json_decref(params);
    if (rc < 0) {
        pending_unlink(p);
        free(p);
        int st = rc == -EINVAL ? 400 : rc == -E2BIG ? 413 : rc == -EAGAIN ? 429
                 : rc == -ENOENT ? 404 : 503;
        reply_error(req, txid, st, err.msg[0] ? err.msg : MSG_RESERVED);
        return;
    }
    http_req_on_gone(req, on_gone, p);
}
