/* core/invoke.c - see invoke.h.
 *
 * One struct activation per activation in flight, a sequence included (its
 * components are activations of their own, each with cause = the
 * sequence's id). An activation ends in finish(): its record is built once,
 * queued for the group commit, and when committed handed to the waiter (a
 * blocking HTTP request) or dropped; a sequence component instead hands its
 * response to its parent, which starts the next component or finishes. */
#include "invoke.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "auth.h"
#include "codec.h"
#include "entity.h"
#include "quota.h"
#include "log.h"
#include "plat.h"
#include "pool.h"
#include "store.h"
#include "wjson.h"

#define FQ_MAX (AUTH_NS_MAX + 2 * ENTITY_NAME_MAX + 4)

enum act_status { ST_SUCCESS = 0, ST_APP_ERROR = 1, ST_DEV_ERROR = 2, ST_INTERNAL = 3 };

struct invoke_waiter {
    struct activation *a;
    invoke_done_fn *cb;
    void *arg;
    struct event *timer;
    json_t *record; /* finished before invoke_start returned: delivered by the timer */
};

struct activation {
    struct invoke *inv;
    char id[33];
    char ns[AUTH_NS_MAX], subject[AUTH_NS_MAX];
    char fq[FQ_MAX];  /* "ns/pkg/name": the path annotation */
    char name[ENTITY_NAME_MAX + 1];
    char version[32];
    char kind[48];
    json_t *limits;
    int64_t start_ms;
    unsigned depth;
    struct activation *parent; /* the sequence running this component */
    char cause[33];
    /* sequences */
    json_t *components, *seq_logs, *last_response;
    size_t next;
    struct invoke_waiter *waiter;
    bool *finished; /* inside invoke_start: set when the activation ends there, before
                     * its caller is ready for the callback */
    json_t *record;
    json_t *publish; /* result binding, or NULL */
    char *in_topic;
};

struct invoke {
    struct event_base *base;
    struct store *st;
    struct pool *pool;
    struct act *act;
    struct invoke_cfg cfg;
    char *api_host;
    struct quota quota;
    unsigned pending;
    struct plat_buf rec;  /* a record being encoded (reused) */
};

static void finish(struct activation *a, enum act_status st, json_t *result, json_t *logs,
                   int64_t wait_ms, int64_t init_ms, bool timed_out);
static void seq_next(struct activation *seq);

/* ==== resolution ====================================================== */

static void merge_params(json_t *into, const json_t *kv)
{
    size_t i;
    json_t *e;
    json_array_foreach(kv, i, e) {
        const char *k = wjson_str(e, "key");
        json_t *v = json_object_get(e, "value");
        if (k && v)
            json_object_set(into, k, v);
    }
}

static int entity(struct invoke *inv, const char *ns, const char *path, enum rec_kind want,
                  json_t **doc)
{
    enum rec_kind kind;
    int rc = store_entity_get(inv->st, ns, path, &kind, doc);
    if (rc == 0 && kind != want) {
        json_decref(*doc);
        *doc = NULL;
        return -ENOENT;
    }
    return rc == -EBADMSG || rc == -EPROTO ? -EIO : rc;
}

/* Loads the action at ns/path (through a binding when the package is one)
 * and the parameters it runs with. */
static int resolve(struct invoke *inv, const char *ns, const char *path, const char *subject,
                   const json_t *payload, json_t **action, json_t **params, char *fq,
                   struct wisp_err *err)
{
    json_t *doc = NULL, *pkg = NULL, *bound = NULL;
    json_t *p = json_object();
    const char *slash = strchr(path, '/');
    char pkgname[ENTITY_NAME_MAX + 1] = "";
    int rc;
    if (!p)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    /* another namespace's missing package answers as a closed one (below):
     * nothing tells another namespace what exists */
    bool others = strcmp(ns, subject) != 0;
    if (slash)
        snprintf(pkgname, sizeof pkgname, "%.*s", (int)(slash - path), path);
    if (slash && (rc = entity(inv, ns, pkgname, REC_PACKAGE, &pkg)) < 0 &&
        (rc == -EIO || !others)) {
        rc = wisp_err_set(err, rc == -EIO ? -EIO : -ENOENT, rc == -EIO ?
                          "The stored package cannot be read." : "The requested resource does not exist.");
        goto out;
    }
    /* Another namespace's actions are the caller's to run only in a
     * published package, as OpenWhisk entitles a subject to nothing else
     * there. The API checks a direct invoke before it gets here; this is
     * for sequence components, which may name any namespace. */
    if (others && !json_is_true(json_object_get(pkg, "publish"))) {
        rc = wisp_err_set(err, -EACCES,
                          "The supplied authentication is not authorized to access this "
                          "resource.");
        goto out;
    }
    const json_t *b = json_object_get(pkg, "binding");
    if (pkg && json_object_size(b) > 0) {
        const char *bns = wjson_str(b, "namespace"), *bname = wjson_str(b, "name");
        char real[2 * ENTITY_NAME_MAX + 2];
        plat_strjoin(real, sizeof real, bname ? bname : "", '/', slash + 1);
        if (!bns || !bname || entity(inv, bns, bname, REC_PACKAGE, &bound) < 0 ||
            entity(inv, bns, real, REC_ACTION, &doc) < 0) {
            rc = wisp_err_set(err, -ENOENT, "The requested resource does not exist.");
            goto out;
        }
        if (strcmp(bns, subject) != 0 && !json_is_true(json_object_get(bound, "publish"))) {
            rc = wisp_err_set(err, -EACCES,
                              "The supplied authentication is not authorized to access this "
                              "resource.");
            goto out;
        }
        merge_params(p, json_object_get(bound, "parameters"));
        merge_params(p, json_object_get(pkg, "parameters"));
        plat_strjoin(fq, FQ_MAX, bns, '/', real);
    } else {
        if ((rc = entity(inv, ns, path, REC_ACTION, &doc)) < 0) {
            rc = wisp_err_set(err, rc == -EIO ? -EIO : -ENOENT, rc == -EIO ?
                              "The stored action cannot be read." : "The requested resource does not exist.");
            goto out;
        }
        merge_params(p, json_object_get(pkg, "parameters"));
        plat_strjoin(fq, FQ_MAX, ns, '/', path);
    }
    merge_params(p, json_object_get(doc, "parameters"));
    /* final: the caller may not override defined parameters */
    if (payload && json_is_true(wjson_kv_get(json_object_get(doc, "annotations"), "final"))) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)payload, k, v) {
            /* a parameter defined without a value (null) stays the caller's to give */
            const json_t *have = json_object_get(p, k);
            if (have && !json_is_null(have)) {
                rc = wisp_err_set(err, -EINVAL, "Request defines parameters that are not allowed "
                                                "(e.g., reserved properties).");
                goto out;
            }
        }
    }
    if (payload && json_object_size(p) == 0) { /* nothing to merge: the payload itself */
        json_decref(p);
        p = json_incref((json_t *)payload);
    } else if (payload) {
        json_object_update(p, (json_t *)payload);
    }
    *action = doc;
    *params = p;
    doc = p = NULL;
    rc = 0;
out:
    json_decref(doc);
    json_decref(pkg);
    json_decref(bound);
    json_decref(p);
    return rc;
}

/* ==== records ========================================================= */

/* The record is built and queued: answer the waiter and let go. (Reads of
 * activations flush the queue first, so the record is there for a caller
 * who asks right after the answer.) */
static void activation_done(struct activation *a)
{
    struct invoke *inv = a->inv;
    if (a->finished)
        *a->finished = true;
    if (a->waiter && a->finished) {
        /* a sequence can end before invoke_start returns (a component
         * that cannot start): the answer goes out from the loop, after */
        struct invoke_waiter *w = a->waiter;
        static const struct timeval now = {0, 0};
        a->waiter = NULL;
        w->a = NULL;
        w->record = a->record ? json_incref(a->record) : json_object();
        evtimer_add(w->timer, &now);
    } else if (a->waiter) {
        struct invoke_waiter *w = a->waiter;
        a->waiter = NULL;
        event_free(w->timer);
        w->cb(w->arg, a->record);
        free(w);
    }
    inv->pending--;
    json_decref(a->record);
    json_decref(a->limits);
    json_decref(a->components);
    json_decref(a->seq_logs);
    json_decref(a->last_response);
    json_decref(a->publish);
    free(a->in_topic);
    free(a);
}

struct run_end { /* how a run ended, for its record */
    enum act_status st;
    const json_t *result, *logs;
    int64_t end, wait_ms, init_ms; /* init_ms < 0: no initTime */
    bool timed_out;
};

/* The record, encoded where it is made (building a json_t only to encode
 * and free it was a visible share of every event). 0, -ENOMEM, or -EINVAL
 * for a result nested too deeply. */
static int pack_record(struct plat_buf *b, const struct activation *a, const struct run_end *e)
{
    size_t nann = 5 + (e->init_ms >= 0) + (a->parent != NULL) + (a->components && !a->parent);
    struct act_head h = {.subject = a->subject, .name = a->name, .id = a->id,
                         .version = a->version, .start = a->start_ms, .end = e->end,
                         .status_code = (int)e->st, .nfields = a->cause[0] ? 13 : 12};
    int rc = act_pack_head(b, &h);
#define PUT(x) \
    if (!rc)   \
    rc = (x)
    PUT(e->result ? codec_put_json(b, e->result, 2) : codec_put_map(b, 0));
    PUT(codec_put_str(b, "logs"));
    PUT(e->logs ? codec_put_json(b, e->logs, 1) : codec_put_array(b, 0));
    PUT(codec_put_str(b, "annotations"));
    PUT(codec_put_array(b, nann));
    PUT(act_pack_annotation(b, "path"));
    PUT(codec_put_str(b, a->fq));
    PUT(act_pack_annotation(b, "waitTime"));
    PUT(codec_put_int(b, e->wait_ms));
    PUT(act_pack_annotation(b, "kind"));
    PUT(codec_put_str(b, a->kind));
    PUT(act_pack_annotation(b, "timeout"));
    PUT(codec_put_bool(b, e->timed_out));
    PUT(act_pack_annotation(b, "limits"));
    PUT(a->limits ? codec_put_json(b, a->limits, 3) : codec_put_map(b, 0));
    if (e->init_ms >= 0) {
        PUT(act_pack_annotation(b, "initTime"));
        PUT(codec_put_int(b, e->init_ms));
    }
    if (a->parent) {
        PUT(act_pack_annotation(b, "causedBy"));
        PUT(codec_put_str(b, "sequence"));
    }
    if (a->components && !a->parent) {
        PUT(act_pack_annotation(b, "topmost"));
        PUT(codec_put_bool(b, true));
    }
    if (a->cause[0]) {
        PUT(codec_put_str(b, "cause"));
        PUT(codec_put_str(b, a->cause));
    }
#undef PUT
    return rc;
}

static void finish(struct activation *a, enum act_status st, json_t *result, json_t *logs,
                   int64_t wait_ms, int64_t init_ms, bool timed_out)
{
    struct invoke *inv = a->inv;
    struct run_end e = {.st = st, .result = result, .logs = logs, .end = plat_clock_real_ms(),
                        .wait_ms = wait_ms, .init_ms = init_ms, .timed_out = timed_out};
    struct plat_buf *b = &inv->rec;
    json_t *deep = NULL;
    int rc = pack_record(b, a, &e);
    if (rc == -EINVAL) { /* a result too deep to store: the record says so instead */
        e.st = ST_DEV_ERROR;
        e.result = deep = json_pack("{s:s}", "error", "The action produced a response nested too "
                                                      "deeply to be stored.");
        rc = e.result ? pack_record(b, a, &e) : -ENOMEM;
    }
    quota_inflight(&inv->quota, a->subject, -1);
    struct activation *parent = a->parent;
    if (parent) { /* the sequence goes on with this component's response */
        json_decref(parent->last_response);
        parent->last_response =
            json_pack("{s:s, s:i, s:b, s:o}", "status", act_status_name((int)e.st), "statusCode",
                      (int)e.st, "success", e.st == ST_SUCCESS, "result",
                      e.result ? json_incref((json_t *)e.result) : json_object());
        json_array_append_new(parent->seq_logs, json_string(a->id));
    }
    if (rc == 0 && a->publish && e.st == ST_SUCCESS && inv->cfg.on_result)
        inv->cfg.on_result(inv->cfg.ctx, a->publish, a->in_topic, a->name, a->id, e.result);
    /* who waits gets the record as it is stored */
    if (rc == 0 && a->waiter) {
        enum rec_kind kind;
        int64_t upd;
        if (codec_record_unpack(b->data, b->len, &kind, &upd, &a->record) < 0)
            a->record = NULL;
    }
    struct act_rec r = {.id = a->id, .rec = b->data, .len = b->len};
    if (rc < 0 || act_put(inv->act, a->subject, &r, NULL, NULL) < 0)
        wlog_err("invoke", "activation %s could not be queued for storage", a->id);
    plat_buf_trim(b);
    json_decref(deep);
    if (parent)
        seq_next(parent);
    activation_done(a);
}

static void on_pool_done(void *arg, const struct pool_result *r)
{
    struct activation *a = arg;
    struct invoke *inv = a->inv;
    enum act_status st;
    json_t *result = NULL;
    if (r->status == POOL_OK) {
        /* OpenWhisk measures the result as the runtime sent it */
        size_t size = r->result_bytes;
        if (size > inv->cfg.max_result_bytes) {
            char msg[160];
            snprintf(msg, sizeof msg, "The action produced a response that exceeded the allowed "
                                      "length: %zu > %zu bytes.", size, inv->cfg.max_result_bytes);
            st = ST_DEV_ERROR;
            result = json_pack("{s:s}", "error", msg);
        } else if (json_is_object(r->result) || json_is_array(r->result)) {
            st = json_is_object(r->result) && json_object_get(r->result, "error") ? ST_APP_ERROR
                                                                                   : ST_SUCCESS;
            result = json_incref(r->result);
        } else {
            st = ST_DEV_ERROR;
            result = json_pack("{s:s}", "error", "The action did not return a dictionary or array.");
        }
    } else {
        st = r->status == POOL_SYSTEM_ERROR ? ST_INTERNAL : ST_DEV_ERROR;
        result = json_pack("{s:s}", "error", r->error ? r->error : "The action failed.");
    }
    finish(a, st, result, r->logs, r->wait_ms, r->init_ms, r->status == POOL_TIMEOUT);
    json_decref(result);
}

/* ==== starting ======================================================== */

static struct activation *new_activation(struct invoke *inv, const char *ns, const char *subject,
                                         struct activation *parent)
{
    struct activation *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->inv = inv;
    act_new_id(a->id);
    plat_strcpy(a->ns, sizeof a->ns, ns);
    plat_strcpy(a->subject, sizeof a->subject, subject);
    a->start_ms = plat_clock_real_ms();
    a->parent = parent;
    a->depth = parent ? parent->depth + 1 : 0;
    if (parent)
        plat_strcpy(a->cause, sizeof a->cause, parent->id);
    inv->pending++;
    quota_inflight(&inv->quota, subject, +1);
    return a;
}

static void fill_from_action(struct activation *a, const json_t *doc, const char *fq)
{
    plat_strcpy(a->fq, sizeof a->fq, fq);
    plat_strcpy(a->name, sizeof a->name, wjson_str(doc, "name") ? wjson_str(doc, "name") : "");
    plat_strcpy(a->version, sizeof a->version,
                wjson_str(doc, "version") ? wjson_str(doc, "version") : "0.0.1");
    const json_t *ex = json_object_get(doc, "exec");
    plat_strcpy(a->kind, sizeof a->kind, wjson_str(ex, "kind") ? wjson_str(ex, "kind") : "");
    a->limits = json_incref(json_object_get(doc, "limits"));
}

static unsigned lim(const json_t *limits, const char *k, unsigned def)
{
    json_t *v = json_object_get(limits, k);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (unsigned)json_integer_value(v) : def;
}

/* Runs a resolved action (doc, params). Returns 0 or an error for the
 * caller of a top-level start; a component's failure finishes its
 * sequence instead. */
static int run_action(struct activation *a, const json_t *doc, json_t *params,
                      const char *api_key, struct wisp_err *err)
{
    struct invoke *inv = a->inv;
    const json_t *ex = json_object_get(doc, "exec");
    if (strcmp(a->kind, "sequence") == 0) {
        size_t plen = json_dumpb(params, NULL, 0, JSON_COMPACT);
        if (plen > inv->cfg.max_payload_bytes)
            return wisp_err_set(err, -E2BIG, "Payload larger than allowed: %zu > %zu bytes.",
                                plen, inv->cfg.max_payload_bytes);
        if (a->depth >= inv->cfg.sequence_depth)
            return wisp_err_set(err, -EINVAL, "Sequences are nested too deeply (more than %u).",
                                inv->cfg.sequence_depth);
        a->components = json_incref(json_object_get(ex, "components"));
        a->seq_logs = json_array();
        a->last_response = json_pack("{s:O}", "result", params);
        seq_next(a);
        return 0;
    }
    const json_t *limits = a->limits;
    unsigned timeout = lim(limits, "timeout", 60000);
    char name[FQ_MAX + 1];
    name[0] = '/'; /* OpenWhisk's names start with a slash */
    plat_strcpy(name + 1, sizeof name - 1, a->fq);
    bool with_key = api_key &&
               json_is_true(wjson_kv_get(json_object_get(doc, "annotations"), "provide-api-key"));
    struct pool_msg msg = {.value = params,
                           .value_max = inv->cfg.max_payload_bytes,
                           .namespace = a->subject,
                           .action_name = name,
                           .activation_id = a->id,
                           .api_host = inv->api_host,
                           .api_key = with_key ? api_key : NULL,
                           .deadline_ms = plat_clock_real_ms() + timeout};
    char key[FQ_MAX + 64];
    snprintf(key, sizeof key, "%s@%s#%lld", a->fq, a->version,
             (long long)json_integer_value(json_object_get(doc, "updated")));
    struct pool_action pa = {
        .key = key,
        .kind = a->kind,
        .name = name,
        .code = json_object_get(ex, "code"),
        .binary = json_is_true(json_object_get(ex, "binary")),
        .main = wjson_str(ex, "main"),
        .image = wjson_str(ex, "image"),
        .network = json_is_true(wjson_kv_get(json_object_get(doc, "annotations"), "network")),
        .memory_mb = lim(limits, "memory", 256),
        .timeout_ms = timeout,
        .concurrency = lim(limits, "concurrency", 1),
        .log_limit_bytes = (size_t)json_integer_value(json_object_get(limits, "logs")) << 20,
        .result_limit_bytes = inv->cfg.max_result_bytes,
    };
    int rc = pool_run(inv->pool, &pa, &msg, on_pool_done, a);
    if (rc == -EMSGSIZE)
        return wisp_err_set(err, -E2BIG, "Payload larger than allowed: %zu > %zu bytes.",
                            json_dumpb(params, NULL, 0, JSON_COMPACT), inv->cfg.max_payload_bytes);
    if (rc == -EINVAL)
        return wisp_err_set(err, -EINVAL, "The parameters are not valid JSON text.");
    if (rc == -ENOTSUP)
        return wisp_err_set(err, -ENOTSUP, "Actions of kind %s cannot run on this appliance yet.",
                            a->kind);
    if (rc == -E2BIG)
        return wisp_err_set(err, -E2BIG, "The action's memory limit exceeds what this appliance "
                                         "can give any action.");
    if (rc == -EAGAIN)
        return wisp_err_set(err, -EBUSY, "System is overloaded, try again later.");
    if (rc < 0)
        return wisp_err_set(err, rc, "The action could not be started.");
    return 0;
}

/* Starts the next component of a sequence, or finishes it. */
static void seq_next(struct activation *seq)
{
    struct invoke *inv = seq->inv;
    json_t *resp = seq->last_response;
    json_t *res = json_object_get(resp, "result");
    bool failed = seq->next > 0 && !json_is_true(json_object_get(resp, "success"));
    if (failed || seq->next >= json_array_size(seq->components)) {
        int code = (int)json_integer_value(json_object_get(resp, "statusCode"));
        finish(seq, failed ? (enum act_status)code : ST_SUCCESS, res, seq->seq_logs, 0, -1, false);
        return;
    }
    const char *ref = json_string_value(json_array_get(seq->components, seq->next++));
    char ns[AUTH_NS_MAX], path[2 * ENTITY_NAME_MAX + 2], fq[FQ_MAX];
    struct wisp_err err = {0};
    json_t *doc = NULL, *params = NULL;
    const json_t *payload = json_is_object(res) ? res : NULL;
    struct activation *c = NULL;
    int rc = ref ? entity_parse_ref(ref, seq->subject, ns, path, &err) : -EINVAL;
    if (rc == 0)
        rc = resolve(inv, ns, path, seq->subject, payload, &doc, &params, fq, &err);
    if (rc == 0 && !(c = new_activation(inv, ns, seq->subject, seq)))
        rc = wisp_err_set(&err, -ENOMEM, "out of memory");
    if (rc == 0) {
        fill_from_action(c, doc, fq);
        rc = run_action(c, doc, params, NULL, &err);
        if (rc < 0) { /* the component never ran: it still gets its record */
            json_t *e = json_pack("{s:s}", "error", err.msg);
            finish(c, rc == -EBUSY || rc == -ENOMEM ? ST_INTERNAL : ST_DEV_ERROR, e, NULL, 0, -1,
                   false);
            json_decref(e);
        }
    } else {
        json_t *e = json_pack("{s:s}", "error", rc == -ENOENT ? "Sequence component does not exist."
                                                              : err.msg);
        json_t *r2 = json_pack("{s:s, s:i, s:b, s:o}", "status", act_status_name(ST_APP_ERROR),
                               "statusCode", ST_APP_ERROR, "success", 0, "result", e);
        json_decref(seq->last_response);
        seq->last_response = r2;
        seq_next(seq);
    }
    json_decref(doc);
    json_decref(params);
}

static void on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct invoke_waiter *w = arg;
    if (w->a)
        w->a->waiter = NULL;
    event_free(w->timer);
    w->cb(w->arg, w->record); /* NULL: the wait ran out first */
    json_decref(w->record);
    free(w);
}

int invoke_start(struct invoke *inv, const struct invoke_req *req, char id[33],
                 invoke_done_fn *cb, void *arg, struct invoke_waiter **waiter,
                 struct wisp_err *err)
{
    json_t *doc = NULL, *params = NULL;
    char fq[FQ_MAX];
    int rc = quota_admit(&inv->quota, req->subject, err);
    if (rc < 0)
        return rc;
    if ((rc = resolve(inv, req->ns, req->path, req->subject, req->payload, &doc, &params, fq,
                      err)) < 0)
        return rc;
    struct activation *a = new_activation(inv, req->ns, req->subject, NULL);
    if (!a) {
        rc = wisp_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    fill_from_action(a, doc, fq);
    if (req->cause)
        plat_strcpy(a->cause, sizeof a->cause, req->cause);
    /* a result binding: the rule's, else the action's own */
    const json_t *pub = req->publish ? req->publish
                                     : wjson_kv_get(json_object_get(doc, "annotations"),
                                                    "mqtt-publish");
    if (json_is_object(pub) && wjson_str(pub, "topic")) {
        a->publish = json_incref((json_t *)pub); /* a cached document: never changed */
        const char *t = wjson_str(params, "topic");
        a->in_topic = t ? strdup(t) : NULL;
    }
    struct invoke_waiter *w = NULL;
    if (cb) {
        w = calloc(1, sizeof *w);
        struct timeval tv = {req->wait_ms / 1000, (req->wait_ms % 1000) * 1000};
        if (!w || !(w->timer = evtimer_new(inv->base, on_wait_timeout, w)) ||
            evtimer_add(w->timer, &tv) < 0) {
            if (w && w->timer)
                event_free(w->timer);
            free(w);
            w = NULL;
            rc = wisp_err_set(err, -ENOMEM, "out of memory");
        } else {
            w->a = a;
            w->cb = cb;
            w->arg = arg;
            a->waiter = w;
        }
    }
    memcpy(id, a->id, 33); /* a may be gone once run_action returns */
    bool finished = false;
    a->finished = &finished;
    if (rc == 0)
        rc = run_action(a, doc, params, req->api_key, err);
    if (rc < 0) { /* never started: no record, no callback */
        if (a->waiter) {
            event_free(a->waiter->timer);
            free(a->waiter);
        }
        json_decref(a->publish);
        free(a->in_topic);
        quota_inflight(&inv->quota, req->subject, -1);
        inv->pending--;
        json_decref(a->limits);
        json_decref(a->components);
        json_decref(a->seq_logs);
        json_decref(a->last_response);
        free(a);
        goto out;
    }
    if (!finished) /* still running: from now on it ends from the loop */
        a->finished = NULL;
    if (waiter)
        *waiter = w;
out:
    json_decref(doc);
    json_decref(params);
    return rc;
}

void invoke_cancel(struct invoke_waiter *w)
{
    if (!w)
        return;
    if (w->a)
        w->a->waiter = NULL;
    event_free(w->timer);
    json_decref(w->record);
    free(w);
}

int invoke_http_status(const json_t *record)
{
    int code = (int)json_integer_value(
        json_object_get(json_object_get(record, "response"), "statusCode"));
    return code == ST_SUCCESS ? 200 : code == ST_INTERNAL ? 500 : 502;
}

unsigned invoke_pending(const struct invoke *inv)
{
    return inv->pending;
}

int invoke_room(struct invoke *inv, const char *subject, unsigned n, struct wisp_err *err)
{
    return quota_room(&inv->quota, subject, n, err);
}

int invoke_open(struct event_base *base, struct store *st, struct pool *pool, struct act *act,
                const struct invoke_cfg *cfg, struct invoke **out, struct wisp_err *err)
{
    struct invoke *inv = calloc(1, sizeof *inv);
    if (!inv)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    inv->base = base;
    inv->st = st;
    inv->pool = pool;
    inv->act = act;
    inv->cfg = *cfg;
    quota_init(&inv->quota, cfg->per_minute, cfg->concurrent);
    inv->api_host = strdup(cfg->api_host ? cfg->api_host : "");
    if (!inv->api_host) {
        free(inv);
        return wisp_err_set(err, -ENOMEM, "out of memory");
    }
    *out = inv;
    return 0;
}

void invoke_set_result_sink(struct invoke *inv, invoke_result_fn *fn, void *ctx)
{
    if (!inv)
        return;
    inv->cfg.on_result = fn;
    inv->cfg.ctx = ctx;
}

int invoke_set_api_host(struct invoke *inv, const char *url)
{
    char *s = strdup(url);
    if (!s)
        return -ENOMEM;
    free(inv->api_host);
    inv->api_host = s;
    return 0;
}

void invoke_close(struct invoke *inv)
{
    if (!inv)
        return;
    free(inv->api_host);
    plat_buf_fini(&inv->rec);
    free(inv);
}
