/* core/api.c - routes, auth, entity CRUD. See api.h.
 *
 * A request flows: http -> handle() -> route table -> one handler. Reads are
 * answered at once; writes go through store_write() and are answered from
 * the store_sync() callback, when the write is on disk. A handler never
 * keeps the http_req past its reply; a pending write reply holds the request
 * and the http layer keeps it valid even if the client hangs up.
 *
 * Entity names share one space per namespace across the four collections,
 * as in OpenWhisk: the key is "ns\0name" (or "ns\0pkg/name" inside a
 * package) and the record's kind says which collection owns it. */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act.h"
#include "auth.h"
#include "cfg.h"
#include "entity.h"
#include "feeds.h"
#include "http.h"
#include "invoke.h"
#include "metrics.h"
#include "trigger.h"
#include "web.h"
#include "log.h"
#include "plat.h"
#include "pool.h"
#include "quota.h"
#include "store.h"
#include "wisp_config.h"
#include "wjson.h"

#define MAX_SEGS 32 /* web paths carry a projection or __ow_path after the action */
#define PATH_MAXLEN (2 * ENTITY_NAME_MAX + 2)
#define LIST_LIMIT_DEFAULT 30
#define LIST_LIMIT_MAX 200

#define MSG_NOT_FOUND "The requested resource does not exist."
#define MSG_UNAUTHORIZED "The supplied authentication is invalid."
#define MSG_FORBIDDEN "The supplied authentication is not authorized to access this resource."
#define MSG_CONFLICT "Concurrent modification to resource detected."
#define MSG_WRONG_COLL "Resource by this name exists but is not in this collection."

struct api {
    struct event_base *base;
    struct store *st;
    const struct rt_kinds *kinds;
    const struct wisp_cfg *cfg;
    struct invoke *inv;
    struct act *act;
    struct pool *pool;
    struct trigger *trig;
    struct feeds *feeds;
    struct entity_env env;
    struct http_server *http;
    struct web *web;
    char txid_prefix[17];
    uint64_t txid_seq;
    /* failed authentications per client address: a key guessed at
     * answers 429 past auth-failures-per-minute */
    struct quota auth_fail;
    uint64_t auth_failed, auth_throttled;
};

/* One request being served. */
struct rq {
    struct api *api;
    struct http_req *req;
    const char *method;
    char txid[33];
    char ns[AUTH_NS_MAX]; /* the caller's namespace */
    char key[AUTH_UUID_LEN + AUTH_SECRET_LEN + 2]; /* the caller's key, for provide-api-key */
    char *segs[MAX_SEGS];
    int nsegs;
    char segbuf[2048];
    json_t *body;
    /* set by the route that serves it (see "routing") */
    char *cap[4];          /* the pattern's ":" segments, in order */
    int ncap;
    char **rest;           /* a "*" pattern's remaining segments */
    int nrest;
    const char *target_ns; /* an R_NS route's namespace ("_" resolved) */
};

struct route {
    const char *method; /* "GET" answers HEAD too; "*": any */
    const char *path;   /* pattern; see "routing" */
    unsigned flags;     /* R_NS, R_PUBLIC */
    void (*fn)(struct rq *r, const struct route *rt); /* NULL: the row is a placeholder */
    int arg;            /* the handler's: enum coll, enum act_part */
    bool (*when)(const struct rq *r); /* the row applies only when this is true */
};

enum coll { COLL_ACTIONS, COLL_PACKAGES, COLL_TRIGGERS, COLL_RULES };

static const struct coll_info {
    const char *name;     /* URL collection */
    const char *singular; /* for messages */
    enum rec_kind kind;
} colls[] = {
    [COLL_ACTIONS] = {"actions", "action", REC_ACTION},
    [COLL_PACKAGES] = {"packages", "package", REC_PACKAGE},
    [COLL_TRIGGERS] = {"triggers", "trigger", REC_TRIGGER},
    [COLL_RULES] = {"rules", "rule", REC_RULE},
};

/* ==== replies ========================================================= */

static int status_of(int code)
{
    switch (code) {
    case -EINVAL: return 400;
    case -EACCES: return 403;
    case -ENOENT: return 404;
    case -EEXIST: return 409;
    case -E2BIG: return 413;
    case -EAGAIN:
    case -EBUSY:
    case -ENOSPC:
    case -ENOMEM: return 503;
    default: return 500;
    }
}

static void new_txid(struct api *a, char out[33])
{
    static const char digits[] = "0123456789abcdef";
    unsigned long long v = ++a->txid_seq;
    size_t n = strlen(a->txid_prefix); /* at most 16 */
    memcpy(out, a->txid_prefix, n);
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[n + (size_t)i] = digits[v & 15];
    out[n + 16] = '\0';
}

static size_t error_json(const char *msg, const char *txid, char *buf, size_t cap)
{
    return web_error_json(msg, txid, buf, cap);
}

static void finish(struct rq *r)
{
    json_decref(r->body);
    free(r);
}

static void reply_error(struct rq *r, int status, const char *msg)
{
    char buf[1024];
    size_t n = error_json(msg, r->txid, buf, sizeof buf);
    if (status >= 500)
        wlog_err("api", "%s %s -> %d %s code=%s", r->method, http_req_path(r->req), status, msg,
                 r->txid);
    else
        wlog_debug("api", "%s %s -> %d %s", r->method, http_req_path(r->req), status, msg);
    http_reply(r->req, status, "application/json", buf, n);
    finish(r);
}

static void reply_err(struct rq *r, const struct wisp_err *e)
{
    reply_error(r, status_of(e->code), e->msg[0] ? e->msg : strerror(-e->code));
}

/* Sends j (stolen) with status. */
static void reply_json(struct rq *r, int status, json_t *j)
{
    size_t n;
    char *s = j ? wjson_dump(j, &n) : NULL;
    json_decref(j);
    if (!s) {
        reply_error(r, 503, "System is overloaded, try again later.");
        return;
    }
    http_reply(r->req, status, "application/json", s, n);
    free(s);
    finish(r);
}

/* A write's reply waits for the fsync that makes it durable. */
struct durable_reply {
    struct rq *r;
    int status;
    json_t *j;
};

static void on_durable(void *arg, int rc)
{
    struct durable_reply *d = arg;
    if (rc < 0) {
        json_decref(d->j);
        reply_error(d->r, 500, "The store could not make the change durable.");
    } else {
        reply_json(d->r, d->status, d->j);
    }
    free(d);
}

static void reply_durable(struct rq *r, int status, json_t *j)
{
    struct durable_reply *d = malloc(sizeof *d);
    if (!d) {
        json_decref(j);
        reply_error(r, 503, "System is overloaded, try again later.");
        return;
    }
    *d = (struct durable_reply){r, status, j};
    int rc = store_sync(r->api->st, on_durable, d);
    if (rc == -ENOTSUP) { /* synchronous commits: durable already */
        free(d);
        reply_json(r, status, j);
    } else if (rc < 0) {
        free(d);
        json_decref(j);
        reply_error(r, 503, "System is overloaded, try again later.");
    }
}

/* ==== request parsing helpers ========================================== */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Splits the path into percent-decoded segments. -EINVAL on bad escapes,
 * NUL or '/' hidden in an escape, or too many segments. */
static int split_path(struct rq *r, const char *path)
{
    char *out = r->segbuf, *end = r->segbuf + sizeof r->segbuf - 1;
    const char *p = path + 1;
    r->nsegs = 0;
    for (;;) {
        /* out may stand one past end after a full segment: an empty one
         * next would write its NUL beyond the buffer */
        if (r->nsegs == MAX_SEGS || out > end)
            return -EINVAL;
        r->segs[r->nsegs++] = out;
        while (*p && *p != '/') {
            if (out >= end)
                return -EINVAL;
            if (*p == '%') {
                int hi = hexval((unsigned char)p[1]), lo = hi < 0 ? -1 : hexval((unsigned char)p[2]);
                if (lo < 0 || (hi == 0 && lo == 0) || (hi == 2 && lo == 15))
                    return -EINVAL;
                *out++ = (char)(hi * 16 + lo);
                p += 3;
            } else {
                *out++ = *p++;
            }
        }
        *out++ = '\0';
        if (!*p)
            return 0;
        p++;
    }
}

/* Value of a query parameter, decoded into buf; NULL when absent. */
static const char *query_param(struct rq *r, const char *name, char *buf, size_t cap)
{
    const char *q = http_req_query(r->req);
    size_t nl = strlen(name);
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len >= nl && strncmp(q, name, nl) == 0 && (len == nl || q[nl] == '=')) {
            const char *v = len == nl ? q + len : q + nl + 1;
            size_t o = 0;
            for (const char *s = v; s < q + len && o + 1 < cap; s++) {
                if (*s == '%' && s + 2 < q + len + 0 + 1 && hexval((unsigned char)s[1]) >= 0 &&
                    hexval((unsigned char)s[2]) >= 0) {
                    buf[o++] = (char)(hexval((unsigned char)s[1]) * 16 + hexval((unsigned char)s[2]));
                    s += 2;
                } else {
                    buf[o++] = *s == '+' ? ' ' : *s;
                }
            }
            buf[o] = '\0';
            return buf;
        }
        q += len + (amp ? 1 : 0);
        if (!amp)
            break;
    }
    return NULL;
}

/* A boolean query parameter: def when absent, -1 when not true/false. */
static int query_bool(struct rq *r, const char *name, bool def)
{
    char buf[16];
    const char *v = query_param(r, name, buf, sizeof buf);
    if (!v)
        return def;
    if (strcmp(v, "true") == 0 || strcmp(v, "") == 0)
        return 1;
    if (strcmp(v, "false") == 0)
        return 0;
    return -1;
}

static int query_uint(struct rq *r, const char *name, long long def, long long max,
                      const char *what, long long *out, struct wisp_err *err)
{
    char buf[32];
    const char *v = query_param(r, name, buf, sizeof buf);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < 0 || x > max)
        return wisp_err_set(err, -EINVAL, "The value '%.20s' is not in the range of 0 to %lld for %s.",
                            v, max, what);
    *out = x;
    return 0;
}

/* Parses the JSON body (an empty body is {}). */
static int parse_body(struct rq *r, struct wisp_err *err)
{
    size_t len;
    const char *b = http_req_body(r->req, &len);
    const char *ct = http_req_header(r->req, "Content-Type");
    if (len == 0) {
        r->body = json_object();
        return 0;
    }
    if (ct && strncasecmp(ct, "application/json", 16) != 0)
        return wisp_err_set(err, -EPROTONOSUPPORT,
                            "The request's Content-Type is not supported. Expected "
                            "application/json.");
    r->body = wjson_parse(b, len, err);
    return r->body ? 0 : -EINVAL;
}

/* The body of an invoke or a fire: a JSON object of parameters (empty:
 * none). Replies with the error itself and returns < 0 otherwise. */
static int parse_params_body(struct rq *r)
{
    struct wisp_err err = {0};
    if (parse_body(r, &err) < 0) {
        reply_error(r, err.code == -EPROTONOSUPPORT ? 415 : 400, err.msg);
        return -1;
    }
    if (!json_is_object(r->body)) {
        reply_error(r, 400, "The request content was malformed: the parameters must be a JSON "
                            "object.");
        return -1;
    }
    return 0;
}

/* ==== store access ===================================================== */

static int ent_key(const char *ns, const char *path, char *key, size_t *klen)
{
    int n = store_entity_key(ns, path, key);
    if (n < 0)
        return n;
    *klen = (size_t)n;
    return 0;
}

/* Reads an entity of the given kind. -ENOENT, or -EEXIST with the wrong
 * collection message when the name belongs to another collection. */
static int get_entity(struct api *a, const char *ns, const char *path, enum rec_kind want,
                      json_t **doc, struct wisp_err *err)
{
    enum rec_kind kind;
    int rc = store_entity_get(a->st, ns, path, &kind, doc);
    if (rc == -ENAMETOOLONG)
        return wisp_err_set(err, -EINVAL, "The entity name is too long.");
    if (rc == -ENOENT)
        return wisp_err_set(err, rc, MSG_NOT_FOUND);
    if (rc == -EBADMSG || rc == -EPROTO)
        return wisp_err_set(err, -EIO, "The stored record for this entity cannot be read%s.",
                            rc == -EPROTO ? " (written by a newer version)" : " (corrupt)");
    if (rc < 0)
        return wisp_err_set(err, rc, "The store failed to read the entity.");
    if (kind != want) {
        json_decref(*doc);
        *doc = NULL;
        return wisp_err_set(err, -EEXIST, MSG_WRONG_COLL);
    }
    return 0;
}

static int txn_get_entity(struct store_txn *t, const char *ns, const char *path,
                          enum rec_kind *kind, json_t **doc)
{
    char key[STORE_MAX_KEY];
    size_t klen;
    int rc = ent_key(ns, path, key, &klen);
    if (rc < 0)
        return -EINVAL;
    return store_txn_get(t, STORE_ENTITIES, key, klen, kind, NULL, doc);
}

/* A sequence's component ("/ns/[pkg/]name") names an action, directly or
 * through a package binding. 0, -ENOENT, or the store's error. */
/* 0 when path ("pkg/name") lies in a published package of ns; -EACCES in
 * none, an unpublished one or one that does not exist (another
 * namespace's packages are not told apart), or -errno of the store. */
static int txn_in_published(struct store_txn *t, const char *ns, const char *path)
{
    const char *sep = strchr(path, '/');
    if (!sep)
        return -EACCES;
    char pkg[ENTITY_NAME_MAX + 1];
    snprintf(pkg, sizeof pkg, "%.*s", (int)(sep - path), path);
    enum rec_kind kind;
    json_t *doc = NULL;
    int rc = txn_get_entity(t, ns, pkg, &kind, &doc);
    bool pub = rc == 0 && kind == REC_PACKAGE && json_is_true(json_object_get(doc, "publish"));
    json_decref(doc);
    return rc < 0 && rc != -ENOENT ? rc : pub ? 0 : -EACCES; /* missing: not told */
}

/* Whether a sequence component names an action the caller may run: its
 * own, or one in another namespace's published package (OpenWhisk checks
 * read access on every component at PUT). 0, -ENOENT, -EACCES. */
static int component_exists(struct store_txn *t, const char *fq, const char *caller)
{
    char ns[AUTH_NS_MAX], path[2 * PATH_MAXLEN + 2];
    const char *slash = strchr(fq + 1, '/');
    if (fq[0] != '/' || !slash || (size_t)(slash - fq - 1) >= sizeof ns ||
        strlen(slash + 1) >= sizeof path)
        return -ENOENT;
    snprintf(ns, sizeof ns, "%.*s", (int)(slash - fq - 1), fq + 1);
    snprintf(path, sizeof path, "%s", slash + 1);
    for (int hop = 0; hop < 2; hop++) {
        enum rec_kind kind;
        json_t *doc = NULL;
        int rc = strcmp(ns, caller) != 0 ? txn_in_published(t, ns, path) : 0;
        if (rc < 0)
            return rc;
        rc = txn_get_entity(t, ns, path, &kind, &doc);
        json_decref(doc);
        if (rc == 0)
            return kind == REC_ACTION ? 0 : -ENOENT;
        char *sep = strchr(path, '/');
        if (rc != -ENOENT || !sep || hop)
            return rc;
        /* pkg/name where pkg may be a binding: look in the package it binds */
        *sep = '\0';
        json_t *pkg = NULL;
        rc = txn_get_entity(t, ns, path, &kind, &pkg);
        const json_t *b = json_object_get(pkg, "binding");
        const char *bns = wjson_str(b, "namespace"), *bname = wjson_str(b, "name");
        char name[PATH_MAXLEN];
        snprintf(name, sizeof name, "%s", sep + 1);
        if (rc == 0 && kind == REC_PACKAGE && bns && bname && strlen(bns) < sizeof ns) {
            snprintf(ns, sizeof ns, "%s", bns);
            snprintf(path, sizeof path, "%s/%s", bname, name);
        } else {
            json_decref(pkg);
            return rc == 0 || rc == -ENOENT ? -ENOENT : rc;
        }
        json_decref(pkg);
    }
    return -ENOENT;
}

static int txn_put_entity(struct store_txn *t, const char *ns, const char *path,
                          enum rec_kind kind, int64_t now, const json_t *doc)
{
    char key[STORE_MAX_KEY];
    size_t klen;
    int rc = ent_key(ns, path, key, &klen);
    if (rc < 0)
        return -EINVAL;
    return store_txn_put(t, STORE_ENTITIES, key, klen, kind, now, doc);
}

static int txn_del_entity(struct store_txn *t, const char *ns, const char *path)
{
    char key[STORE_MAX_KEY];
    size_t klen;
    int rc = ent_key(ns, path, key, &klen);
    if (rc < 0)
        return -EINVAL;
    return store_txn_del(t, STORE_ENTITIES, key, klen);
}

/* ==== writes ========================================================== */

struct write_ctx {
    struct rq *r;
    enum coll coll;
    const char *ns;   /* target namespace */
    const char *path; /* "name" or "pkg/name" */
    const char *pkg;  /* NULL or package name */
    const char *name;
    bool overwrite, force;
    int64_t now;
    json_t *result; /* document to answer with */
    struct wisp_err err;
};

static int fail(struct write_ctx *w, int code, const char *msg)
{
    return wisp_err_set(&w->err, code, "%s", msg);
}

/* Reads the target under the txn; -EEXIST when it belongs elsewhere. */
static int load_target(struct write_ctx *w, struct store_txn *t, json_t **old)
{
    enum rec_kind kind;
    *old = NULL;
    int rc = txn_get_entity(t, w->ns, w->path, &kind, old);
    if (rc == -ENOENT)
        return 0;
    if (rc == -EBADMSG || rc == -EPROTO)
        return fail(w, -EIO, "The stored record for this entity cannot be read.");
    if (rc < 0)
        return wisp_err_set(&w->err, rc, "The store failed to read the entity.");
    if (kind != colls[w->coll].kind) {
        json_decref(*old);
        *old = NULL;
        return fail(w, -EEXIST, MSG_WRONG_COLL);
    }
    return 0;
}

/* {"path": "ns[/pkg]", "name": "x"} for a reference. */
static json_t *ref_json(const char *ns, const char *path)
{
    const char *slash = strchr(path, '/');
    if (!slash)
        return json_pack("{s:s, s:s}", "path", ns, "name", path);
    char full[AUTH_NS_MAX + ENTITY_NAME_MAX + 2];
    snprintf(full, sizeof full, "%s/%.*s", ns, (int)(slash - path), path);
    return json_pack("{s:s, s:s}", "path", full, "name", slash + 1);
}

/* Finds an action, following a package binding ("binding/action"). */
static int txn_action_exists(struct write_ctx *w, struct store_txn *t, const char *ns,
                             const char *path)
{
    enum rec_kind kind;
    json_t *doc = NULL;
    int rc = txn_get_entity(t, ns, path, &kind, &doc);
    json_decref(doc);
    if (rc == 0)
        return kind == REC_ACTION ? 0 : fail(w, -EEXIST, MSG_WRONG_COLL);
    const char *slash = strchr(path, '/');
    if (rc != -ENOENT || !slash)
        return rc == -ENOENT ? wisp_err_set(&w->err, rc, "The action '%s' does not exist.", path)
                             : rc;
    char pkg[ENTITY_NAME_MAX + 1];
    snprintf(pkg, sizeof pkg, "%.*s", (int)(slash - path), path);
    rc = txn_get_entity(t, ns, pkg, &kind, &doc);
    if (rc == 0 && kind == REC_PACKAGE) {
        json_t *b = json_object_get(doc, "binding");
        const char *bns = wjson_str(b, "namespace"), *bname = wjson_str(b, "name");
        if (bns && bname) {
            char real[PATH_MAXLEN + 2];
            snprintf(real, sizeof real, "%s/%s", bname, slash + 1);
            json_t *adoc = NULL;
            rc = txn_get_entity(t, bns, real, &kind, &adoc);
            json_decref(adoc);
            json_decref(doc);
            if (rc == 0 && kind == REC_ACTION)
                return 0;
            return wisp_err_set(&w->err, -ENOENT, "The action '%s' does not exist.", path);
        }
    }
    json_decref(doc);
    return wisp_err_set(&w->err, -ENOENT, "The action '%s' does not exist.", path);
}

/* Adds (status != NULL) or removes a rule from its trigger's "rules" map. */
static int txn_trigger_rule(struct store_txn *t, const json_t *trig_ref, const char *rule_fq,
                            const json_t *action_ref, const char *status, int64_t now)
{
    const char *tns = wjson_str(trig_ref, "path"), *tname = wjson_str(trig_ref, "name");
    enum rec_kind kind;
    json_t *doc = NULL;
    if (!tns || !tname)
        return 0;
    int rc = txn_get_entity(t, tns, tname, &kind, &doc);
    if (rc == -ENOENT || (rc == 0 && kind != REC_TRIGGER)) {
        json_decref(doc);
        return 0; /* the trigger is gone; nothing to keep in step */
    }
    if (rc < 0)
        return rc;
    json_t *copy = json_deep_copy(doc);
    json_decref(doc);
    if (!copy)
        return -ENOMEM;
    json_t *rules = json_object_get(copy, "rules");
    if (!json_is_object(rules)) {
        rules = json_object();
        json_object_set_new(copy, "rules", rules);
    }
    if (status)
        json_object_set_new(rules, rule_fq,
                            json_pack("{s:O, s:s}", "action", action_ref, "status", status));
    else
        json_object_del(rules, rule_fq);
    rc = txn_put_entity(t, tns, tname, REC_TRIGGER, now, copy);
    json_decref(copy);
    return rc;
}

static int resolve_binding(struct write_ctx *w, struct store_txn *t, json_t *b, json_t **out)
{
    *out = NULL;
    if (!b || json_is_null(b) || (json_is_object(b) && json_object_size(b) == 0))
        return 0;
    const char *bns = wjson_str(b, "namespace"), *bname = wjson_str(b, "name");
    if (!json_is_object(b) || !bname)
        return fail(w, -EINVAL, "The request content was malformed: binding must be "
                                "{\"namespace\": ..., \"name\": ...}.");
    if (!bns || strcmp(bns, "_") == 0)
        bns = w->r->ns;
    int rc = entity_name_valid(bname, "package", &w->err);
    if (rc < 0)
        return rc;
    enum rec_kind kind;
    json_t *doc = NULL;
    rc = txn_get_entity(t, bns, bname, &kind, &doc);
    bool others = strcmp(bns, w->r->ns) != 0;
    if (others && (rc == -ENOENT || (rc == 0 && kind != REC_PACKAGE))) {
        json_decref(doc); /* another namespace's names are not told apart */
        return fail(w, -EACCES, MSG_FORBIDDEN);
    }
    if (rc == -ENOENT || (rc == 0 && kind != REC_PACKAGE)) {
        json_decref(doc);
        return wisp_err_set(&w->err, -EINVAL, "Binding references a package that does not exist.");
    }
    if (rc < 0)
        return rc;
    bool is_binding = json_object_size(json_object_get(doc, "binding")) > 0;
    bool published = json_is_true(json_object_get(doc, "publish"));
    json_decref(doc);
    if (is_binding)
        return fail(w, -EINVAL, "Cannot bind to another package binding.");
    if (strcmp(bns, w->r->ns) != 0 && !published)
        return fail(w, -EACCES, MSG_FORBIDDEN);
    *out = json_pack("{s:s, s:s}", "namespace", bns, "name", bname);
    return *out ? 0 : -ENOMEM;
}

static int put_fn(struct store_txn *t, void *arg)
{
    struct write_ctx *w = arg;
    struct rq *r = w->r;
    struct api *a = r->api;
    json_t *old = NULL, *doc = NULL, *ref1 = NULL, *ref2 = NULL;
    json_decref(w->result);
    w->result = NULL;
    int rc = load_target(w, t, &old);
    if (rc < 0)
        goto out;
    if (old && !w->overwrite) {
        rc = fail(w, -EEXIST, MSG_CONFLICT);
        goto out;
    }
    switch (w->coll) {
    case COLL_ACTIONS: {
        char ns_path[AUTH_NS_MAX + ENTITY_NAME_MAX + 2];
        snprintf(ns_path, sizeof ns_path, "%s%s%s", w->ns, w->pkg ? "/" : "",
                 w->pkg ? w->pkg : "");
        if (w->pkg) { /* the package must exist and hold its own actions */
            enum rec_kind kind;
            json_t *p = NULL;
            rc = txn_get_entity(t, w->ns, w->pkg, &kind, &p);
            bool binding = rc == 0 && json_object_size(json_object_get(p, "binding")) > 0;
            json_decref(p);
            if (rc == -ENOENT || (rc == 0 && kind != REC_PACKAGE)) {
                rc = wisp_err_set(&w->err, -ENOENT, "The package '%s' does not exist.", w->pkg);
                goto out;
            }
            if (rc < 0)
                goto out;
            if (binding) {
                rc = fail(w, -EINVAL, "Cannot create an action in a package binding.");
                goto out;
            }
        }
        rc = entity_build_action(&a->env, r->body, old, ns_path, w->name, r->ns, w->now, &doc,
                                 &w->err);
        const json_t *comps = json_object_get(json_object_get(doc, "exec"), "components");
        size_t i;
        const json_t *c;
        json_array_foreach(comps, i, c)
        {
            if (rc < 0)
                break;
            int e = component_exists(t, json_string_value(c), w->r->ns);
            if (e == -ENOENT)
                rc = fail(w, -EINVAL, "Sequence component does not exist.");
            else if (e == -EACCES)
                rc = fail(w, -EACCES, MSG_FORBIDDEN);
            else if (e < 0)
                rc = e;
        }
        break;
    }
    case COLL_PACKAGES:
        if ((rc = resolve_binding(w, t, json_object_get(r->body, "binding"), &ref1)) < 0)
            goto out;
        rc = entity_build_package(&a->env, r->body, old, w->ns, w->name, ref1, w->now, &doc,
                                  &w->err);
        break;
    case COLL_TRIGGERS:
        rc = entity_build_trigger(&a->env, r->body, old, w->ns, w->name, w->now, &doc, &w->err);
        break;
    case COLL_RULES: {
        const char *ts = wjson_str(r->body, "trigger"), *as = wjson_str(r->body, "action");
        json_t *tv = json_object_get(r->body, "trigger"), *av = json_object_get(r->body, "action");
        if ((tv && !ts) || (av && !as) || (!old && (!ts || !as))) {
            rc = fail(w, -EINVAL, "The request content was malformed: a rule needs \"trigger\" "
                                  "and \"action\" names.");
            goto out;
        }
        char ns1[AUTH_NS_MAX], p1[PATH_MAXLEN];
        if (ts) {
            if ((rc = entity_parse_ref(ts, r->ns, ns1, p1, &w->err)) < 0)
                goto out;
            if (strcmp(ns1, w->ns) != 0 || strchr(p1, '/')) {
                rc = fail(w, -EINVAL, "A rule's trigger must be in the rule's namespace.");
                goto out;
            }
            enum rec_kind kind;
            json_t *tdoc = NULL;
            rc = txn_get_entity(t, ns1, p1, &kind, &tdoc);
            json_decref(tdoc);
            if (rc == -ENOENT || (rc == 0 && kind != REC_TRIGGER)) {
                rc = wisp_err_set(&w->err, -EINVAL, "The trigger '%s' does not exist.", p1);
                goto out;
            }
            if (rc < 0)
                goto out;
            ref1 = ref_json(ns1, p1);
        }
        if (as) {
            char ns2[AUTH_NS_MAX], p2[PATH_MAXLEN];
            if ((rc = entity_parse_ref(as, r->ns, ns2, p2, &w->err)) < 0)
                goto out;
            if (strcmp(ns2, w->ns) != 0) {
                rc = fail(w, -EACCES, MSG_FORBIDDEN);
                goto out;
            }
            if ((rc = txn_action_exists(w, t, ns2, p2)) < 0) {
                if (rc == -ENOENT) /* a bad reference in the body: 400, as OpenWhisk */
                    rc = w->err.code = -EINVAL;
                goto out;
            }
            ref2 = ref_json(ns2, p2);
        }
        rc = entity_build_rule(&a->env, r->body, old, w->ns, w->name, ref1, ref2, w->now, &doc,
                               &w->err);
        if (rc < 0)
            goto out;
        char fq[AUTH_NS_MAX + ENTITY_NAME_MAX + 2];
        snprintf(fq, sizeof fq, "%s/%s", w->ns, w->name);
        if (old && (rc = txn_trigger_rule(t, json_object_get(old, "trigger"), fq, NULL, NULL,
                                          w->now)) < 0)
            goto out;
        rc = txn_trigger_rule(t, json_object_get(doc, "trigger"), fq,
                              json_object_get(doc, "action"), wjson_str(doc, "status"), w->now);
        break;
    }
    }
    if (rc < 0)
        goto out;
    if ((rc = txn_put_entity(t, w->ns, w->path, colls[w->coll].kind, w->now, doc)) < 0) {
        wisp_err_set(&w->err, rc, "The store failed to write the entity.");
        goto out;
    }
    w->result = doc;
    doc = NULL;
out:
    json_decref(old);
    json_decref(doc);
    json_decref(ref1);
    json_decref(ref2);
    return rc;
}

struct pkg_scan {
    size_t count;
    char (*names)[PATH_MAXLEN];
    size_t cap;
};

static int pkg_scan_fn(void *arg, const struct store_rec *rec)
{
    struct pkg_scan *s = arg;
    size_t klen;
    const char *key = store_rec_key(rec, &klen);
    const char *path = memchr(key, '\0', klen);
    if (!path)
        return 0;
    path++;
    size_t plen = klen - (size_t)(path - key);
    if (s->names && s->count < s->cap && plen < PATH_MAXLEN) {
        memcpy(s->names[s->count], path, plen);
        s->names[s->count][plen] = '\0';
    }
    s->count++;
    return 0;
}

struct rule_unlink {
    const char *rule_fq;
    char triggers[64][ENTITY_NAME_MAX + 1];
    size_t n;
};

static int rule_unlink_scan(void *arg, const struct store_rec *rec)
{
    struct rule_unlink *u = arg;
    json_t *doc = NULL;
    size_t klen;
    const char *key = store_rec_key(rec, &klen);
    const char *name = memchr(key, '\0', klen);
    if (store_rec_kind(rec) != REC_TRIGGER || !name || store_rec_doc(rec, &doc) < 0)
        return 0;
    name++;
    size_t nl = klen - (size_t)(name - key);
    if (json_object_get(json_object_get(doc, "rules"), u->rule_fq) && nl <= ENTITY_NAME_MAX &&
        u->n < WISP_ARRAY_LEN(u->triggers)) {
        memcpy(u->triggers[u->n], name, nl);
        u->triggers[u->n++][nl] = '\0';
    }
    json_decref(doc);
    return 0;
}

/* A damaged record can still be deleted, so it never blocks its name. Its
 * own links cannot be read: a damaged rule is taken out of every trigger of
 * its namespace that lists it. */
static int unlink_damaged_rule(struct write_ctx *w, struct store_txn *t)
{
    static struct rule_unlink u; /* loop thread only; too big for the stack */
    char fq[AUTH_NS_MAX + ENTITY_NAME_MAX + 2], prefix[STORE_MAX_KEY];
    size_t plen;
    snprintf(fq, sizeof fq, "%s/%s", w->ns, w->name);
    u.rule_fq = fq;
    u.n = 0;
    int rc = ent_key(w->ns, "", prefix, &plen);
    if (rc < 0 || (rc = store_txn_scan(t, STORE_ENTITIES, prefix, plen, rule_unlink_scan, &u)) < 0)
        return rc;
    for (size_t i = 0; i < u.n; i++) {
        json_t *ref = json_pack("{s:s, s:s}", "path", w->ns, "name", u.triggers[i]);
        rc = ref ? txn_trigger_rule(t, ref, fq, NULL, NULL, w->now) : -ENOMEM;
        json_decref(ref);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int del_fn(struct store_txn *t, void *arg)
{
    struct write_ctx *w = arg;
    json_t *old = NULL;
    json_decref(w->result);
    w->result = NULL;
    enum rec_kind kind = 0;
    int rc = txn_get_entity(t, w->ns, w->path, &kind, &old);
    bool damaged = rc == -EBADMSG || rc == -EPROTO;
    json_decref(old);
    old = NULL;
    if (damaged && kind && kind != colls[w->coll].kind)
        return fail(w, -EEXIST, MSG_WRONG_COLL);
    if (!damaged && (rc = load_target(w, t, &old)) < 0)
        return rc;
    if (!damaged && !old)
        return fail(w, -ENOENT, MSG_NOT_FOUND);
    if (w->coll == COLL_PACKAGES) {
        /* A package goes only when empty, or with its actions under force. */
        char prefix[STORE_MAX_KEY];
        size_t plen;
        char inner[ENTITY_NAME_MAX + 2];
        snprintf(inner, sizeof inner, "%s/", w->name);
        if ((rc = ent_key(w->ns, inner, prefix, &plen)) < 0)
            goto out;
        static char names[1024][PATH_MAXLEN];
        struct pkg_scan s = {.names = w->force ? names : NULL, .cap = 1024};
        if ((rc = store_txn_scan(t, STORE_ENTITIES, prefix, plen, pkg_scan_fn, &s)) < 0)
            goto out;
        if (s.count && !w->force) {
            rc = wisp_err_set(&w->err, -EEXIST,
                              "Package not empty (contains %zu %s). Set force param or delete "
                              "package contents.", s.count, s.count == 1 ? "entity" : "entities");
            goto out;
        }
        if (s.count > s.cap) {
            rc = fail(w, -E2BIG, "Package holds too many actions to delete at once; delete "
                                 "some first.");
            goto out;
        }
        for (size_t i = 0; i < s.count; i++)
            if ((rc = txn_del_entity(t, w->ns, names[i])) < 0)
                goto out;
    }
    if (w->coll == COLL_RULES) {
        char fq[AUTH_NS_MAX + ENTITY_NAME_MAX + 2];
        snprintf(fq, sizeof fq, "%s/%s", w->ns, w->name);
        rc = damaged ? unlink_damaged_rule(w, t)
                     : txn_trigger_rule(t, json_object_get(old, "trigger"), fq, NULL, NULL, w->now);
        if (rc < 0)
            goto out;
    }
    if ((rc = txn_del_entity(t, w->ns, w->path)) < 0)
        goto out;
    if (damaged) { /* nothing to show of it but its name */
        wlog_warn("api", "deleted the unreadable record of %s/%s", w->ns, w->path);
        old = json_pack("{s:s, s:s}", "namespace", w->ns, "name", w->name);
        rc = old ? 0 : -ENOMEM;
    } else if (w->coll == COLL_RULES) { /* OpenWhisk answers with the rule as it is now: off */
        json_t *copy = json_deep_copy(old);
        json_decref(old);
        old = copy;
        json_object_set_new(old, "status", json_string("inactive"));
    }
    w->result = old;
    old = NULL;
out:
    json_decref(old);
    return rc;
}

static int rule_state_fn(struct store_txn *t, void *arg)
{
    struct write_ctx *w = arg;
    json_t *old = NULL;
    json_decref(w->result);
    w->result = NULL;
    int rc = load_target(w, t, &old);
    if (rc < 0)
        return rc;
    if (!old)
        return fail(w, -ENOENT, MSG_NOT_FOUND);
    const char *status = wjson_str(w->r->body, "status");
    json_t *doc = json_deep_copy(old);
    json_decref(old);
    if (!doc)
        return -ENOMEM;
    json_object_set_new(doc, "status", json_string(status));
    char fq[AUTH_NS_MAX + ENTITY_NAME_MAX + 2];
    snprintf(fq, sizeof fq, "%s/%s", w->ns, w->name);
    if ((rc = txn_trigger_rule(t, json_object_get(doc, "trigger"), fq,
                               json_object_get(doc, "action"), status, w->now)) < 0 ||
        (rc = txn_put_entity(t, w->ns, w->path, REC_RULE, w->now, doc)) < 0) {
        json_decref(doc);
        return rc;
    }
    w->result = doc;
    return 0;
}

static void run_write(struct rq *r, store_write_fn *fn, struct write_ctx *w, int ok_status)
{
    int rc = store_write(r->api->st, fn, w, &w->err);
    if (rc < 0) {
        json_decref(w->result);
        if (!w->err.msg[0])
            wisp_err_set(&w->err, rc, "The store failed: %s", strerror(-rc));
        w->err.code = rc;
        reply_err(r, &w->err);
        return;
    }
    reply_durable(r, ok_status, w->result);
}

/* ==== reads =========================================================== */

struct list_ctx {
    enum rec_kind kind;
    bool count_only;
    bool published_only; /* another namespace's list: only what it publishes */
    long long skip, limit, seen;
    json_t *out;
    int err;
};

static int list_fn(void *arg, const struct store_rec *rec)
{
    struct list_ctx *l = arg;
    size_t klen;
    const char *key = store_rec_key(rec, &klen);
    const char *path = memchr(key, '\0', klen);
    if (!path || store_rec_kind(rec) != (int)l->kind)
        return 0;
    json_t *doc = NULL;
    if (l->published_only &&
        (store_rec_doc(rec, &doc) < 0 || !json_is_true(json_object_get(doc, "publish")))) {
        json_decref(doc);
        return 0;
    }
    /* Listing a namespace's actions includes those inside its packages,
     * as OpenWhisk's view keyed by root namespace does. */
    if (l->seen++ < l->skip || l->count_only || (long long)json_array_size(l->out) >= l->limit) {
        json_decref(doc);
        return (long long)json_array_size(l->out) >= l->limit && !l->count_only ? 1 : 0;
    }
    if (!doc && store_rec_doc(rec, &doc) < 0)
        return 0; /* an unreadable record must not hide the others */
    json_t *b = entity_brief(l->kind, doc);
    json_decref(doc);
    if (!b || json_array_append_new(l->out, b)) {
        l->err = -ENOMEM;
        return -ENOMEM;
    }
    return 0;
}

static void do_list(struct rq *r, enum coll c, const char *ns, const char *pkg)
{
    struct wisp_err err = {0};
    struct list_ctx l = {.kind = colls[c].kind,
                         .published_only = c == COLL_PACKAGES && strcmp(ns, r->ns) != 0};
    int cnt = query_bool(r, "count", false);
    if (cnt < 0) {
        reply_error(r, 400, "The value of 'count' must be true or false.");
        return;
    }
    l.count_only = cnt;
    if (query_uint(r, "skip", 0, 1LL << 40, colls[c].name, &l.skip, &err) < 0 ||
        query_uint(r, "limit", LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, colls[c].name, &l.limit,
                   &err) < 0) {
        reply_err(r, &err);
        return;
    }
    if (l.limit == 0)
        l.limit = LIST_LIMIT_MAX;
    char prefix[STORE_MAX_KEY];
    size_t plen;
    char inner[ENTITY_NAME_MAX + 2];
    snprintf(inner, sizeof inner, "%s/", pkg ? pkg : "");
    if (ent_key(ns, pkg ? inner : "", prefix, &plen) < 0) {
        reply_error(r, 400, "The name is too long.");
        return;
    }
    l.out = json_array();
    int rc = store_scan(r->api->st, STORE_ENTITIES, prefix, plen, false, list_fn, &l);
    if (rc < 0 || !l.out) {
        json_decref(l.out);
        reply_error(r, 500, "The store failed to list entities.");
        return;
    }
    if (l.count_only) {
        json_decref(l.out);
        reply_json(r, 200, json_pack("{s:I}", colls[c].name, (json_int_t)l.seen));
        return;
    }
    reply_json(r, 200, l.out);
}

/* GET of a package adds its actions (those of the bound package for a
 * binding) and feeds, as OpenWhisk shows them. */
static void get_package(struct rq *r, const char *ns, json_t *doc)
{
    json_t *out = json_deep_copy(doc);
    json_t *b = json_object_get(doc, "binding");
    const char *pns = ns, *pname = wjson_str(doc, "name");
    if (json_object_size(b) > 0) {
        pns = wjson_str(b, "namespace");
        pname = wjson_str(b, "name");
        /* A binding shows the bound package's parameters under its own. */
        json_t *bound = NULL;
        struct wisp_err e = {0};
        if (pns && pname && get_entity(r->api, pns, pname, REC_PACKAGE, &bound, &e) == 0) {
            json_t *merged = json_deep_copy(json_object_get(bound, "parameters"));
            size_t i;
            json_t *p;
            json_array_foreach(json_object_get(doc, "parameters"), i, p) {
                const char *k = wjson_str(p, "key");
                for (size_t j = 0; merged && k && j < json_array_size(merged); j++) {
                    if (strcmp(wjson_str(json_array_get(merged, j), "key"), k) == 0) {
                        json_array_remove(merged, j);
                        break;
                    }
                }
                json_array_append(merged, p);
            }
            if (merged)
                json_object_set_new(out, "parameters", merged);
            json_decref(bound);
        }
    }
    struct list_ctx l = {.kind = REC_ACTION, .limit = 1000};
    char prefix[STORE_MAX_KEY], inner[ENTITY_NAME_MAX + 2];
    size_t plen;
    l.out = json_array();
    snprintf(inner, sizeof inner, "%s/", pname ? pname : "");
    if (pns && ent_key(pns, inner, prefix, &plen) == 0 &&
        store_scan(r->api->st, STORE_ENTITIES, prefix, plen, false, list_fn, &l) < 0) {
        json_decref(l.out);
        json_decref(out);
        reply_error(r, 500, "The store failed to list the package's actions.");
        return;
    }
    json_t *actions = json_array(), *feeds = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(l.out, i, a) {
        json_t *brief = json_pack("{s:O, s:O, s:O}", "name", json_object_get(a, "name"),
                                  "version", json_object_get(a, "version"), "annotations",
                                  json_object_get(a, "annotations"));
        bool is_feed = wjson_kv_get(json_object_get(a, "annotations"), "feed") != NULL;
        json_array_append_new(is_feed ? feeds : actions, brief);
    }
    json_decref(l.out);
    json_object_set_new(out, "actions", actions);
    json_object_set_new(out, "feeds", feeds);
    reply_json(r, 200, out);
}

/* ==== invoke and activations ========================================== */

static bool is(const struct rq *r, const char *m);
static void method_not_allowed(struct rq *r, const char *allowed);

struct pending_invoke {
    struct rq *r;
    struct invoke_waiter *w;
    bool result_only;
    char id[33];
};

static void reply_activation_id(struct rq *r, int status, const char *id)
{
    if (http_req_add_header(r->req, "x-openwhisk-activation-id", id) < 0) {
        reply_error(r, 503, "System is overloaded, try again later.");
        return;
    }
    reply_json(r, status, json_pack("{s:s}", "activationId", id));
}

static void on_invoke_done(void *arg, const json_t *record)
{
    struct pending_invoke *pi = arg;
    struct rq *r = pi->r;
    http_req_on_gone(r->req, NULL, NULL);
    if (!record) { /* the wait ran out: the activation goes on */
        reply_activation_id(r, 202, pi->id);
    } else if (http_req_add_header(r->req, "x-openwhisk-activation-id", pi->id) < 0) {
        reply_error(r, 503, "System is overloaded, try again later.");
    } else {
        json_t *body = pi->result_only
                           ? json_object_get(json_object_get(record, "response"), "result")
                           : (json_t *)record;
        reply_json(r, invoke_http_status(record), json_incref(body));
    }
    free(pi);
}

static void on_invoke_gone(void *arg)
{
    struct pending_invoke *pi = arg;
    invoke_cancel(pi->w);
    http_reply(pi->r->req, 499, NULL, NULL, 0); /* discarded: frees the request */
    finish(pi->r);
    free(pi);
}

static int invoke_errstatus(int code)
{
    switch (code) {
    case -EAGAIN: return 429;
    case -EBUSY: return 503;
    case -ENOTSUP: return 501;
    case -EIO: return 500;
    default: return status_of(code);
    }
}

static void do_invoke(struct rq *r, const char *ns, const char *path)
{
    struct wisp_err err = {0};
    int blocking = query_bool(r, "blocking", false), result = query_bool(r, "result", false);
    long long timeout;
    if (blocking < 0 || result < 0) {
        reply_error(r, 400, "The values of 'blocking' and 'result' must be true or false.");
        return;
    }
    if (query_uint(r, "timeout", 60000, 60000, "timeout", &timeout, &err) < 0) {
        reply_err(r, &err);
        return;
    }
    if (parse_params_body(r) < 0)
        return;
    struct invoke_req ireq = {
        .ns = ns,
        .path = path,
        .subject = r->ns,
        .api_key = r->key,
        .payload = r->body,
        .blocking = blocking,
        .wait_ms = (uint32_t)(timeout > 0 ? timeout : 60000),
    };
    struct pending_invoke *pi = NULL;
    if (blocking && !(pi = calloc(1, sizeof *pi))) {
        reply_error(r, 503, "System is overloaded, try again later.");
        return;
    }
    char id[33];
    int rc = invoke_start(r->api->inv, &ireq, id, blocking ? on_invoke_done : NULL, pi,
                          pi ? &pi->w : NULL, &err);
    if (rc < 0) {
        free(pi);
        reply_error(r, invoke_errstatus(rc), err.msg);
        return;
    }
    if (!blocking) {
        reply_activation_id(r, 202, id);
        return;
    }
    pi->r = r;
    pi->result_only = result;
    memcpy(pi->id, id, sizeof pi->id);
    http_req_on_gone(r->req, on_invoke_gone, pi);
}

static void do_fire(struct rq *r, const char *ns, const char *name)
{
    struct wisp_err err = {0};
    if (parse_params_body(r) < 0)
        return;
    char id[33];
    int rc = trigger_fire(r->api->trig, ns, name, r->ns, r->body, false, id, &err);
    if (rc == 1) { /* no active rule: nothing ran, nothing recorded */
        http_reply(r->req, 204, NULL, NULL, 0);
        finish(r);
    } else if (rc < 0) {
        reply_error(r, invoke_errstatus(rc), err.msg);
    } else {
        reply_activation_id(r, 202, id);
    }
}

static void system_action(struct rq *r, const char *pkg, const char *name)
{
    struct wisp_err err = {0};
    if (parse_body(r, &err) < 0) {
        reply_error(r, err.code == -EPROTONOSUPPORT ? 415 : 400, err.msg);
        return;
    }
    json_t *record = NULL;
    int rc = feeds_system_action(r->api->feeds, r->ns, pkg, name, r->body, &record, &err);
    if (rc < 0 && !record) {
        reply_error(r, status_of(rc), err.msg);
        return;
    }
    bool result_only = query_bool(r, "result", false) == 1;
    const char *id = wjson_str(record, "activationId");
    if (id && http_req_add_header(r->req, "x-openwhisk-activation-id", id) < 0) {
        json_decref(record);
        reply_error(r, 503, "System is overloaded, try again later.");
        return;
    }
    if (result_only) {
        json_t *res = json_incref(json_object_get(json_object_get(record, "response"), "result"));
        json_decref(record);
        record = res;
    }
    reply_json(r, rc < 0 ? 502 : 200, record);
}

/* POST /hooks/{id}: signed by the binding's secret instead of an API key. */
static void webhook(struct rq *r, const char *id)
{
    struct wisp_err err = {0};
    size_t len;
    const char *body = http_req_body(r->req, &len);
    if (!r->api->feeds) {
        reply_error(r, 404, MSG_NOT_FOUND);
        return;
    }
    int rc = feeds_webhook(r->api->feeds, id, http_req_header(r->req, "X-Hub-Signature-256"),
                           http_req_header(r->req, "Content-Type"), body, len, &err);
    if (rc < 0) {
        reply_error(r, rc == -EACCES ? 401 : rc == -EAGAIN ? 429 : status_of(rc), err.msg);
        return;
    }
    reply_json(r, 202, json_pack("{s:s}", "status", "accepted"));
}

/* ==== routing ========================================================= */

static void method_not_allowed(struct rq *r, const char *allowed)
{
    char msg[160];
    snprintf(msg, sizeof msg, "HTTP method not allowed, supported methods: %s", allowed);
    if (http_req_add_header(r->req, "Allow", allowed) < 0) {
        reply_error(r, 503, "out of memory");
        return;
    }
    reply_error(r, 405, msg);
}

static bool is(const struct rq *r, const char *m)
{
    return strcmp(r->method, m) == 0 || (strcmp(m, "GET") == 0 && strcmp(r->method, "HEAD") == 0);
}

/* Another namespace's published package can be read, and the actions in
 * it read and invoked, as OpenWhisk entitles every subject to a public
 * package; everything else there stays 403. */
static bool public_entitled(struct rq *r, const char *ns, const char *pkg)
{
    json_t *doc = NULL, *bound = NULL;
    enum rec_kind kind;
    bool ok = store_entity_get(r->api->st, ns, pkg, &kind, &doc) == 0 && kind == REC_PACKAGE &&
              json_is_true(json_object_get(doc, "publish"));
    /* a published binding shows what it binds: that must be open to the
     * reader too (published, or the reader's own) */
    const json_t *b = json_object_get(doc, "binding");
    if (ok && json_object_size(b) > 0) {
        const char *bns = wjson_str(b, "namespace"), *bname = wjson_str(b, "name");
        ok = bns && bname &&
             (strcmp(bns, r->ns) == 0 ||
              (store_entity_get(r->api->st, bns, bname, &kind, &bound) == 0 &&
               kind == REC_PACKAGE && json_is_true(json_object_get(bound, "publish"))));
    }
    json_decref(bound);
    json_decref(doc);
    return ok;
}

/* DELETE of a trigger runs its feed's DELETE first. A built-in feed's
 * binding goes (feeds_trigger_deleted). A trigger whose "feed" annotation
 * names another action (deploy tools create them so: aio runtime deploy,
 * wskdeploy) gets that action invoked with lifecycleEvent DELETE, as
 * `wsk trigger delete` does, when the caller may invoke it (its own, or
 * in a published package). The activation is recorded; the trigger goes
 * whatever the feed answers, as with wsk. */
static void trigger_feed_delete(struct rq *r, const char *name)
{
    if (r->api->feeds)
        feeds_trigger_deleted(r->api->feeds, r->target_ns, name);
    json_t *doc = NULL;
    struct wisp_err err = {0};
    if (entity_name_valid(name, "trigger", &err) < 0 ||
        get_entity(r->api, r->target_ns, name, REC_TRIGGER, &doc, &err) < 0)
        return;
    const char *feed = json_string_value(wjson_kv_get(json_object_get(doc, "annotations"), "feed"));
    char fns[AUTH_NS_MAX], fpath[PATH_MAXLEN], pkg[ENTITY_NAME_MAX + 1] = "";
    const char *slash = NULL;
    if (feed && entity_parse_ref(feed, r->ns, fns, fpath, &err) == 0) {
        slash = strchr(fpath, '/');
        if (slash)
            snprintf(pkg, sizeof pkg, "%.*s", (int)(slash - fpath), fpath);
    }
    bool builtin = slash && strcmp(fns, "whisk.system") == 0 && feeds_is_system_action(pkg, slash + 1);
    if (feed && !builtin && *fpath &&
        (strcmp(fns, r->ns) == 0 || (slash && public_entitled(r, fns, pkg)))) {
        char trig[AUTH_NS_MAX + ENTITY_NAME_MAX + 3];
        snprintf(trig, sizeof trig, "/%s/%s", r->target_ns, name);
        json_t *args = json_pack("{s:s, s:s, s:s}", "lifecycleEvent", "DELETE", "triggerName",
                                 trig, "authKey", r->key);
        struct invoke_req req = {.ns = fns, .path = fpath, .subject = r->ns, .api_key = r->key,
                                 .payload = args};
        char id[33];
        if (!args || invoke_start(r->api->inv, &req, id, NULL, NULL, NULL, &err) < 0)
            wlog_warn("api", "trigger %s: its feed %s was not told of the delete: %s", trig, feed,
                      args ? err.msg : "out of memory");
        json_decref(args);
    }
    json_decref(doc);
}

/* ==== activations ===================================================== */

static void act_list_h(struct rq *r, const struct route *rt)
{
    (void)rt;
    struct wisp_err err = {0};
    struct act_query q = {0};
    char name[2 * ENTITY_NAME_MAX + 2];
    long long since, upto;
    int docs = query_bool(r, "docs", false), count = query_bool(r, "count", false);
    if (docs < 0 || count < 0) {
        reply_error(r, 400, "The values of 'docs' and 'count' must be true or false.");
        return;
    }
    if (docs && count) {
        reply_error(r, 400, "The parameters 'docs' and 'count' cannot be used together.");
        return;
    }
    if (query_uint(r, "skip", 0, 1LL << 40, "activations", &q.skip, &err) < 0 ||
        query_uint(r, "limit", LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, "activations", &q.limit,
                   &err) < 0 ||
        query_uint(r, "since", 0, 1LL << 53, "since", &since, &err) < 0 ||
        query_uint(r, "upto", 0, 1LL << 53, "upto", &upto, &err) < 0) {
        reply_err(r, &err);
        return;
    }
    if (q.limit == 0)
        q.limit = LIST_LIMIT_MAX;
    q.since = since;
    q.upto = upto;
    q.docs = docs;
    q.count = count;
    q.name = query_param(r, "name", name, sizeof name);
    if (q.name && !*q.name)
        q.name = NULL;
    json_t *out;
    if (act_list(r->api->act, r->target_ns, &q, &out) < 0) {
        reply_error(r, 500, "The store failed to list activations.");
        return;
    }
    reply_json(r, 200, out);
}

enum act_part { ACT_WHOLE, ACT_LOGS, ACT_RESULT };

/* GET .../activations/ID[/logs|/result]: rt->arg says which part. */
static void act_get_h(struct rq *r, const struct route *rt)
{
    json_t *doc;
    int rc = act_get(r->api->act, r->target_ns, r->cap[1], &doc);
    if (rc == -ENOENT) {
        reply_error(r, 404, MSG_NOT_FOUND);
        return;
    }
    if (rc < 0) {
        reply_error(r, 500, "The stored activation cannot be read.");
        return;
    }
    if (rt->arg == ACT_WHOLE)
        reply_json(r, 200, doc);
    else if (rt->arg == ACT_LOGS)
        reply_json(r, 200, json_pack("{s:O}", "logs", json_object_get(doc, "logs")));
    else
        reply_json(r, 200, json_incref(json_object_get(doc, "response")));
    if (rt->arg != ACT_WHOLE)
        json_decref(doc);
}

/* ==== the API's own documents ========================================== */

/* GET / and GET /api/v1: what deploy tools read before anything else
 * (runtimes, limits), from this build's kinds and configuration. */
static void info_h(struct rq *r, const struct route *rt)
{
    (void)rt;
    json_t *runtimes = json_object();
    for (size_t i = 0; i < rt_kinds_count(r->api->kinds); i++) {
        const struct rt_kind *k = rt_kind_at(r->api->kinds, i);
        json_t *fam = json_object_get(runtimes, k->family);
        if (!fam) {
            fam = json_array();
            json_object_set_new(runtimes, k->family, fam);
        }
        json_array_append_new(fam, json_pack("{s:s, s:b}", "kind", k->kind, "default",
                                             k->is_default));
    }
    const struct wisp_cfg *c = r->api->cfg;
    reply_json(r, 200,
               json_pack("{s:[s], s:s, s:s, s:s, s:o, s:{s:I, s:I, s:I, s:I, s:I}}", "api_paths",
                         "/api/v1", "description", "OpenWhisk API (Wisp)", "api_version", "1.0.0",
                         "build", WISP_VERSION, "runtimes", runtimes, "limits",
                         "actions_per_minute", (json_int_t)c->invocations_per_minute,
                         "triggers_per_minute", (json_int_t)c->fires_per_minute,
                         "concurrent_actions", (json_int_t)c->concurrent_invocations,
                         "max_action_code_bytes", (json_int_t)(c->action_max_code_kb * 1024),
                         "sequence_length", (json_int_t)c->sequence_max));
}

/* GET .../namespaces/NS/limits: the namespace's quotas and the ranges an
 * action's limits may take, as configured. */
static void ns_limits_h(struct rq *r, const struct route *rt)
{
    (void)rt;
    const struct entity_limits *l = &r->api->env.limits;
    const struct wisp_cfg *c = r->api->cfg;
    reply_json(r, 200,
               json_pack("{s:I, s:I, s:I, s:{s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I}, s:I}",
                         "invocationsPerMinute", (json_int_t)c->invocations_per_minute,
                         "concurrentInvocations", (json_int_t)c->concurrent_invocations,
                         "firesPerMinute", (json_int_t)c->fires_per_minute, "timeout", "min",
                         (json_int_t)l->timeout_min_ms, "max", (json_int_t)l->timeout_max_ms,
                         "memory", "min", (json_int_t)l->memory_min_mb, "max",
                         (json_int_t)l->memory_max_mb, "logs", "min", (json_int_t)0, "max",
                         (json_int_t)l->logs_max_mb, "sequenceLength",
                         (json_int_t)c->sequence_max));
}

static void ns_list_h(struct rq *r, const struct route *rt)
{
    (void)rt;
    reply_json(r, 200, json_pack("[s]", r->ns));
}

static void ping_h(struct rq *r, const struct route *rt)
{
    (void)rt;
    http_reply(r->req, 200, "text/plain", "pong", 4);
    finish(r);
}

/* Prometheus text format; no auth (it holds no secrets, and the API
 * listens on loopback by default). */
static void metrics_h(struct rq *r, const struct route *rt)
{
    (void)rt;
    const struct metrics_src src = {r->api->http,   r->api->st,          r->api->pool,
                                    r->api->act,    r->api->feeds,       r->api->auth_failed,
                                    r->api->auth_throttled};
    char buf[8192];
    size_t n = metrics_text(&src, buf, sizeof buf);
    http_reply(r->req, 200, "text/plain; version=0.0.4", buf, n);
    finish(r);
}

/* No key: the action decides (core/web.c). */
static void web_h(struct rq *r, const struct route *rt)
{
    (void)rt;
    web_serve(r->api->web, r->req, r->txid, r->rest, r->nrest);
    finish(r);
}

static void webhook_h(struct rq *r, const struct route *rt)
{
    (void)rt;
    webhook(r, r->cap[0]);
}

/* The built-in feed actions of /whisk.system answer every namespace. */
static bool is_feed_package(const struct rq *r)
{
    return r->api->feeds && feeds_is_system_package(r->cap[0]);
}

static void sysfeed_h(struct rq *r, const struct route *rt)
{
    (void)rt;
    /* an unknown name in a built-in package: 404, as OpenWhisk answers for
     * a public package */
    if (!feeds_is_system_action(r->cap[0], r->cap[1])) {
        reply_error(r, 404, MSG_NOT_FOUND);
        return;
    }
    system_action(r, r->cap[0], r->cap[1]);
}

/* ==== entities ======================================================== */

/* The entity a row's captures name (after the namespace: [pkg,] name),
 * checked, into w; path gets "name" or "pkg/name". false when answered. */
static bool entity_target(struct rq *r, const struct route *rt, struct write_ctx *w,
                          char path[PATH_MAXLEN])
{
    struct wisp_err err = {0};
    const char *pkg = r->ncap == 3 ? r->cap[1] : NULL, *name = r->cap[r->ncap - 1];
    if ((pkg && entity_name_valid(pkg, "package", &err) < 0) ||
        entity_name_valid(name, colls[rt->arg].singular, &err) < 0) {
        reply_err(r, &err);
        return false;
    }
    snprintf(path, PATH_MAXLEN, "%s%s%s", pkg ? pkg : "", pkg ? "/" : "", name);
    *w = (struct write_ctx){.r = r, .coll = (enum coll)rt->arg, .ns = r->target_ns,
                            .path = path, .pkg = pkg, .name = name,
                            .now = plat_clock_real_ms()};
    return true;
}

/* Runs a write of the row's entity (answered from the store's sync). */
static void entity_write(struct rq *r, const struct route *rt, store_write_fn *fn,
                         void (*set)(struct write_ctx *w, int v), int v)
{
    char path[PATH_MAXLEN];
    struct write_ctx *w = calloc(1, sizeof *w);
    if (!w) {
        reply_error(r, 503, "System is overloaded, try again later.");
        return;
    }
    if (entity_target(r, rt, w, path)) {
        if (set)
            set(w, v);
        run_write(r, fn, w, 200);
    }
    free(w);
}

static void list_h(struct rq *r, const struct route *rt)
{
    struct wisp_err err = {0};
    const char *pkg = r->ncap == 2 ? r->cap[1] : NULL; /* actions/PKG/ */
    if (pkg && entity_name_valid(pkg, "package", &err) < 0) {
        reply_err(r, &err);
        return;
    }
    do_list(r, (enum coll)rt->arg, r->target_ns, pkg);
}

static void get_h(struct rq *r, const struct route *rt)
{
    char path[PATH_MAXLEN];
    struct write_ctx w;
    struct wisp_err err = {0};
    json_t *doc = NULL;
    if (!entity_target(r, rt, &w, path))
        return;
    enum coll c = w.coll;
    /* another namespace's action (in a published package) shows no code */
    bool others = strcmp(r->target_ns, r->ns) != 0;
    if (get_entity(r->api, w.ns, path, colls[c].kind, &doc, &err) < 0) {
        reply_err(r, &err);
    } else if (c == COLL_PACKAGES) {
        get_package(r, w.ns, doc);
        json_decref(doc);
    } else if (c == COLL_ACTIONS && (others || query_bool(r, "code", true) == 0)) {
        reply_json(r, 200, entity_without_code(doc));
        json_decref(doc);
    } else if (c == COLL_TRIGGERS && r->api->feeds) { /* with its feed's READ */
        json_t *fs = feeds_trigger_status(r->api->feeds, w.ns, w.name);
        if (fs) {
            json_t *copy = json_deep_copy(doc);
            json_decref(doc);
            doc = copy;
            json_object_set_new(doc, "feed", fs);
        }
        reply_json(r, 200, doc);
    } else {
        reply_json(r, 200, doc);
    }
}

static void set_overwrite(struct write_ctx *w, int v)
{
    w->overwrite = v;
}

static void set_force(struct write_ctx *w, int v)
{
    w->force = v;
}

static void put_h(struct rq *r, const struct route *rt)
{
    struct wisp_err err = {0};
    int ow = query_bool(r, "overwrite", false);
    if (ow < 0)
        reply_error(r, 400, "The value of 'overwrite' must be true or false.");
    else if (parse_body(r, &err) < 0)
        reply_error(r, err.code == -EPROTONOSUPPORT ? 415 : 400, err.msg);
    else
        entity_write(r, rt, put_fn, set_overwrite, ow);
}

static void del_h(struct rq *r, const struct route *rt)
{
    int force = query_bool(r, "force", false);
    if (force < 0) {
        reply_error(r, 400, "The value of 'force' must be true or false.");
        return;
    }
    if (rt->arg == COLL_TRIGGERS)
        trigger_feed_delete(r, r->cap[r->ncap - 1]);
    entity_write(r, rt, del_fn, set_force, force);
}

static void invoke_h(struct rq *r, const struct route *rt)
{
    char path[PATH_MAXLEN];
    struct write_ctx w;
    if (entity_target(r, rt, &w, path))
        do_invoke(r, w.ns, path);
}

static void fire_h(struct rq *r, const struct route *rt)
{
    char path[PATH_MAXLEN];
    struct write_ctx w;
    if (entity_target(r, rt, &w, path))
        do_fire(r, w.ns, w.name);
}

static void rule_state_h(struct rq *r, const struct route *rt)
{
    struct wisp_err err = {0};
    const char *st;
    if (parse_body(r, &err) < 0)
        reply_error(r, err.code == -EPROTONOSUPPORT ? 415 : 400, err.msg);
    else if (!(st = wjson_str(r->body, "status")) ||
             (strcmp(st, "active") && strcmp(st, "inactive")))
        reply_error(r, 400, "The request content was malformed: status must be \"active\" "
                            "or \"inactive\".");
    else
        entity_write(r, rt, rule_state_fn, NULL, 0);
}

/* ==== routing =========================================================
 *
 * One table: method x path pattern -> handler, first match wins. A pattern
 * is segments joined by '/': a literal, ":" (one segment, captured into
 * r->cap in order) or a last "*" (the rest, for web paths). A path that
 * ends in '/' matches a pattern that ends in '/' first ("actions/PKG/"
 * lists a package), else the pattern without it. A path no row matches is
 * 404; a path some rows match with another method is 405 with their
 * methods in Allow.
 *
 * Everything under /api/v1/namespaces needs a key before anything else is
 * said about it (401 before 404 or 405), as in OpenWhisk. R_NS rows
 * capture the namespace first ("_": the caller's); another namespace's is
 * open only to R_PUBLIC rows, for its published packages
 * (public_entitled), and 403 otherwise. */

enum { R_NS = 1, R_PUBLIC = 2 };

#define NS "api/v1/namespaces/:/"
#define ENTITY_ROWS(coll, C, POST_FN, PUB)                                                    \
    {"GET", NS coll, R_NS | (PUB), list_h, C, NULL},                                          \
    {"GET", NS coll "/:", R_NS | (PUB), get_h, C, NULL},                                      \
    {"PUT", NS coll "/:", R_NS, put_h, C, NULL},                                              \
    {"DELETE", NS coll "/:", R_NS, del_h, C, NULL},                                           \
    {"POST", NS coll "/:", R_NS, POST_FN, C, NULL}

static const struct route routes[] = {
    {"GET", "", 0, info_h, 0, NULL},
    {"GET", "ping", 0, ping_h, 0, NULL},
    {"GET", "metrics", 0, metrics_h, 0, NULL},
    {"POST", "hooks/:", 0, webhook_h, 0, NULL},
    {"GET", "api/v1", 0, info_h, 0, NULL},
    {"*", "api/v1/web/*", 0, web_h, 0, NULL},
    {"GET", "api/v1/namespaces", 0, ns_list_h, 0, NULL},
    {"GET", NS "limits", R_NS, ns_limits_h, 0, NULL},
    {"GET", NS "activations", R_NS, act_list_h, 0, NULL},
    {"GET", NS "activations/:", R_NS, act_get_h, ACT_WHOLE, NULL},
    {"GET", NS "activations/:/logs", R_NS, act_get_h, ACT_LOGS, NULL},
    {"GET", NS "activations/:/result", R_NS, act_get_h, ACT_RESULT, NULL},
    {"POST", "api/v1/namespaces/whisk.system/actions/:/:", 0, sysfeed_h, 0, is_feed_package},
    {"GET", NS "actions/:/", R_NS | R_PUBLIC, list_h, COLL_ACTIONS, NULL},
    {"GET", NS "actions/:/:", R_NS | R_PUBLIC, get_h, COLL_ACTIONS, NULL},
    {"PUT", NS "actions/:/:", R_NS, put_h, COLL_ACTIONS, NULL},
    {"DELETE", NS "actions/:/:", R_NS, del_h, COLL_ACTIONS, NULL},
    {"POST", NS "actions/:/:", R_NS | R_PUBLIC, invoke_h, COLL_ACTIONS, NULL},
    ENTITY_ROWS("actions", COLL_ACTIONS, invoke_h, 0),
    /* packages have no POST: their row's method never matches */
    ENTITY_ROWS("packages", COLL_PACKAGES, NULL, R_PUBLIC),
    ENTITY_ROWS("triggers", COLL_TRIGGERS, fire_h, 0),
    ENTITY_ROWS("rules", COLL_RULES, rule_state_h, 0),
};
#undef ENTITY_ROWS
#undef NS

/* Whether path segs[0..n) match pattern pat; captures into r. */
static bool path_match(struct rq *r, const char *pat, int n)
{
    int i = 0, ncap = 0;
    for (const char *p = pat;; p++) {
        size_t l = strcspn(p, "/");
        if (l == 1 && *p == '*') {
            r->rest = r->segs + i;
            r->nrest = n - i;
            break;
        }
        if (i == n)
            return false;
        if (l == 1 && *p == ':') {
            if (!r->segs[i][0] || ncap == (int)WISP_ARRAY_LEN(r->cap))
                return false;
            r->cap[ncap++] = r->segs[i];
        } else if (strlen(r->segs[i]) != l || strncmp(r->segs[i], p, l) != 0) {
            return false;
        }
        i++;
        p += l;
        if (!*p) {
            if (i != n)
                return false;
            break;
        }
    }
    r->ncap = ncap;
    return true;
}

static bool method_is(const struct rq *r, const char *m)
{
    return strcmp(m, "*") == 0 || is(r, m);
}

/* The key, for every path under /api/v1/namespaces. false when answered.
 * An address past auth-failures-per-minute failed attempts gets 429 for
 * every key until its minute has passed: checking a key it may be
 * guessing would tell it when it guessed right. */
static bool authenticate(struct rq *r)
{
    struct api *a = r->api;
    struct wisp_err qerr = {0};
    const char *peer = http_req_peer(r->req);
    if (quota_room(&a->auth_fail, peer, 1, &qerr) < 0) {
        a->auth_throttled++;
        reply_error(r, 429, "Too many failed authentication attempts from this address in the "
                            "last minute; try again later.");
        return false;
    }
    int rc = auth_check(a->st, http_req_header(r->req, "Authorization"), r->ns, r->key);
    if (rc < 0 && rc != -EIO) {
        a->auth_failed++;
        if (quota_admit(&a->auth_fail, peer, &qerr) < 0) /* every slot busy this minute */
            wlog_debug("api", "a failed authentication from %s not counted: %s", peer, qerr.msg);
    }
    if (rc == -EIO) {
        reply_error(r, 500, "The store failed to check the key.");
    } else if (rc < 0 && http_req_add_header(r->req, "WWW-Authenticate",
                                             "Basic realm=\"whisk rest service\"") < 0) {
        reply_error(r, 503, "out of memory");
    } else if (rc < 0) {
        reply_error(r, 401, MSG_UNAUTHORIZED);
    }
    return rc == 0;
}

/* 405 naming the methods of the rows that matched the path. */
static void not_allowed(struct rq *r, const struct route *const *hit, size_t nhit)
{
    char allow[64] = "";
    for (size_t i = 0; i < nhit; i++) {
        if (!hit[i]->fn || strstr(allow, hit[i]->method))
            continue;
        size_t l = strlen(allow);
        snprintf(allow + l, sizeof allow - l, "%s%s", l ? ", " : "", hit[i]->method);
    }
    method_not_allowed(r, allow);
}

/* The namespace of an R_NS row, and whether the caller may use it there. */
static bool entitled(struct rq *r, const struct route *rt)
{
    const char *ns = strcmp(r->cap[0], "_") == 0 ? r->ns : r->cap[0];
    r->target_ns = ns;
    if (strcmp(ns, r->ns) == 0)
        return true;
    /* a package row names it in cap[1] (packages/P, actions/P/A); a list
     * of packages shows only the published ones */
    bool ok = (rt->flags & R_PUBLIC) &&
              ((rt->fn == list_h && rt->arg == COLL_PACKAGES) || public_entitled(r, ns, r->cap[1]));
    if (!ok)
        reply_error(r, 403, MSG_FORBIDDEN);
    return ok;
}

/* The rows whose pattern matches the path: exactly, else without a
 * trailing empty segment; nsegs is the count that matched. */
struct route_hits {
    const struct route *hit[12];
    size_t n;
    int nsegs;
};

static void route_find(struct rq *r, struct route_hits *h)
{
    h->n = 0;
    h->nsegs = r->nsegs;
    for (int pass = 0; pass < 2 && h->n == 0; pass++) {
        int n = r->nsegs - pass;
        if (pass == 1 && (n < 1 || r->segs[n][0] != '\0'))
            break;
        h->nsegs = n;
        for (size_t i = 0; i < WISP_ARRAY_LEN(routes) && h->n < WISP_ARRAY_LEN(h->hit); i++)
            if (path_match(r, routes[i].path, n) && (!routes[i].when || routes[i].when(r)))
                h->hit[h->n++] = &routes[i];
    }
}

/* The first of them that takes the method, with its captures set; NULL:
 * none does (405). */
static const struct route *route_pick(struct rq *r, const struct route_hits *h)
{
    const struct route *rt = NULL;
    for (size_t i = 0; i < h->n && !rt; i++)
        if (h->hit[i]->fn && method_is(r, h->hit[i]->method))
            rt = h->hit[i];
    if (rt)
        (void)path_match(r, rt->path, h->nsegs); /* its captures, not the last row's */
    return rt;
}

static void route(struct rq *r)
{
    struct route_hits h;
    route_find(r, &h);
    bool keyed = r->nsegs >= 3 && strcmp(r->segs[0], "api") == 0 &&
                 strcmp(r->segs[1], "v1") == 0 && strcmp(r->segs[2], "namespaces") == 0;
    if (keyed && !authenticate(r))
        return;
    if (h.n == 0) {
        reply_error(r, 404, MSG_NOT_FOUND);
        return;
    }
    const struct route *rt = route_pick(r, &h);
    if (!rt) {
        not_allowed(r, h.hit, h.n);
        return;
    }
    if ((rt->flags & R_NS) && !entitled(r, rt))
        return;
    rt->fn(r, rt);
}

static void handle(void *ctx, struct http_req *req)
{
    struct api *a = ctx;
    struct rq *r = calloc(1, sizeof *r);
    if (!r) {
        http_reply(req, 503, "application/json", "{\"error\":\"out of memory\",\"code\":\"0\"}", 37);
        return;
    }
    r->api = a;
    r->req = req;
    r->method = http_req_method(req);
    new_txid(a, r->txid);
    bool web = strncmp(http_req_path(req), "/api/v1/web/", 12) == 0;
    if (strcmp(r->method, "OPTIONS") == 0 && !web) { /* CORS preflight; headers come with every reply */
        http_reply(req, 200, NULL, NULL, 0);
        finish(r);
        return;
    }
    static const char *const known[] = {"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"};
    bool ok = false;
    for (size_t i = 0; i < WISP_ARRAY_LEN(known); i++) /* the route table says which path takes which */
        ok |= strcmp(r->method, known[i]) == 0;
    if (!ok) {
        method_not_allowed(r, "GET, PUT, POST, DELETE, HEAD, OPTIONS");
        return;
    }
    if (split_path(r, http_req_path(req)) < 0) {
        reply_error(r, 400, "The request path is not valid.");
        return;
    }
    route(r);
}

static size_t body_limit(void *ctx, const struct http_req *req)
{
    struct api *a = ctx;
    const char *p = http_req_path(req);
    /* Action PUT carries the code: bounded by the code limit plus room for
     * escaping, parameters and annotations. */
    if (strcmp(http_req_method(req), "PUT") == 0 && strstr(p, "/actions/"))
        return (size_t)a->cfg->action_max_code_kb * 1024 * 2 + (size_t)a->cfg->max_params_kb * 2048;
    if (strcmp(http_req_method(req), "POST") == 0 && strstr(p, "/actions/"))
        return (size_t)a->cfg->max_payload_kb * 1024;
    return (size_t)a->cfg->max_body_kb * 1024;
}

static size_t error_body(void *ctx, int status, const char *msg, char *buf, size_t cap)
{
    (void)status;
    char txid[33];
    new_txid(ctx, txid);
    return error_json(msg, txid, buf, cap);
}

int api_start(const struct api_env *env, struct api **out, unsigned *bound_port,
              struct wisp_err *err)
{
    struct event_base *base = env->base;
    const struct rt_kinds *kinds = env->kinds;
    const struct wisp_cfg *cfg = env->cfg;
    struct tls_server *tls = env->tls;
    struct api *a = calloc(1, sizeof *a);
    if (!a)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    a->base = base;
    a->st = env->st;
    a->kinds = kinds;
    a->cfg = cfg;
    a->inv = env->inv;
    a->act = env->act;
    a->pool = env->pool;
    a->trig = env->trig;
    a->feeds = env->feeds;
    quota_init(&a->auth_fail, (unsigned)cfg->auth_failures_per_minute, 0);
    a->env = (struct entity_env){
        .kinds = kinds,
        .limits = {100, (unsigned)cfg->action_timeout_max_ms,
                   (unsigned)cfg->action_timeout_default_ms, (unsigned)cfg->action_memory_min_mb,
                   (unsigned)cfg->action_memory_max_mb, (unsigned)cfg->action_memory_default_mb,
                   (unsigned)cfg->action_logs_max_mb},
        .max_code_bytes = (size_t)cfg->action_max_code_kb * 1024,
        .max_params_bytes = (size_t)cfg->max_params_kb * 1024,
        .sequence_max = (unsigned)cfg->sequence_max,
        .concurrency_max = (unsigned)cfg->concurrency_max,
    };
    unsigned char rnd[8];
    int rc = plat_rand_bytes(rnd, sizeof rnd);
    if (rc < 0) {
        free(a);
        return wisp_err_set(err, rc, "no random bytes");
    }
    plat_hex(rnd, sizeof rnd, a->txid_prefix);
    char host[256];
    unsigned port;
    if (cfg_split_hostport(cfg->listen, host, sizeof host, &port) < 0) {
        free(a);
        return wisp_err_set(err, -EINVAL, "listen: '%s' is not HOST:PORT", cfg->listen);
    }
    struct http_server_cfg hc = {
        .max_header_bytes = (size_t)cfg->http_max_header_kb * 1024,
        .max_body_bytes = (size_t)cfg->max_body_kb * 1024,
        .max_conns = (unsigned)cfg->http_max_conns,
        .max_held_bytes = (size_t)cfg->http_max_held_mb << 20,
        .idle_timeout_s = (unsigned)cfg->http_idle_timeout_s,
        .tls = tls,
    };
    struct http_callbacks cbs = {.body_limit = body_limit, .handle = handle,
                                 .error_body = error_body, .ctx = a};
    struct web_cfg wc = {.st = a->st, .inv = a->inv};
    if ((rc = web_open(&wc, &a->web, err)) < 0) {
        free(a);
        return rc;
    }
    rc = http_server_start(base, &hc, host, port, &cbs, &a->http, bound_port, err);
    if (rc < 0) {
        web_close(a->web);
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void api_stop_listening(struct api *a)
{
    http_server_stop_listening(a->http);
}

unsigned api_pending(const struct api *a)
{
    return http_server_pending(a->http);
}

void api_free(struct api *a)
{
    if (!a)
        return;
    http_server_free(a->http);
    web_close(a->web);
    free(a);
}

/* ==== fuzz entry point ================================================= */

/* Percent-encodes every byte outside the unreserved set; the split of the
 * result must give back the segments it was made from. */
static size_t fuzz_encode(const char *seg, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)seg; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p)) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    return o;
}

int api_fuzz_route(const uint8_t *data, size_t len)
{
    static struct api none; /* no store, no feeds: rows with a `when` do not apply */
    struct rq *r = calloc(1, sizeof *r), *again = calloc(1, sizeof *again);
    char *path = malloc(len + 2), *enc = malloc(3 * len + 2);
    int rc = -ENOMEM;
    if (!r || !again || !path || !enc)
        goto out;
    /* what http hands on: a path that starts with '/', without its query */
    path[0] = '/';
    memcpy(path + 1, data, len);
    path[len + 1] = '\0';
    r->api = &none;
    rc = split_path(r, path);
    if (rc < 0)
        goto out;
    const char *lo = r->segbuf, *hi = r->segbuf + sizeof r->segbuf;
    size_t e = 0;
    for (int i = 0; i < r->nsegs; i++) {
        const char *sg = r->segs[i];
        if (sg < lo || sg >= hi || memchr(sg, '\0', (size_t)(hi - sg)) == NULL)
            abort(); /* a segment outside the buffer, or not terminated in it */
        if (strchr(sg, '/'))
            abort(); /* %2F must not hide a separator */
        enc[e++] = '/';
        e += fuzz_encode(sg, enc + e);
    }
    enc[e] = '\0';
    if (split_path(again, enc) < 0 || again->nsegs != r->nsegs)
        abort();
    for (int i = 0; i < r->nsegs; i++)
        if (strcmp(again->segs[i], r->segs[i]) != 0)
            abort();
    /* route()'s own matching, for each method, without authenticating or
     * calling a handler */
    static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"};
    int hits = 0;
    for (size_t m = 0; m < WISP_ARRAY_LEN(methods); m++) {
        r->method = methods[m];
        struct route_hits h;
        route_find(r, &h);
        const struct route *rt = route_pick(r, &h);
        if (!rt)
            continue; /* 404 or 405 */
        hits++;
        if (!path_match(r, rt->path, h.nsegs))
            abort(); /* a row matches the path it matched before */
        for (int i = 0; i < r->ncap; i++)
            if (!r->cap[i][0] || r->cap[i] < lo || r->cap[i] >= hi)
                abort();
        if ((rt->flags & R_NS) && r->ncap < 1)
            abort(); /* entitled() reads the namespace from cap[0] */
        if (r->rest && (r->nrest < 0 || r->rest + r->nrest > r->segs + r->nsegs))
            abort();
        r->rest = NULL;
        r->nrest = 0;
    }
    rc = hits;
out:
    free(r);
    free(again);
    free(path);
    free(enc);
    return rc;
}
