/* core/feeds.c - see feeds.h.
 *
 * The one thing to keep in mind: adapters call back (fire, save) from their
 * own events, and those callbacks may reach the store and the invoke path;
 * ops calls made from here never expect a callback inside them. */
#include "feeds.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "auth.h"
#include "codec.h"
#include "entity.h"
#include "feed.h"
#include "log.h"
#include "plat.h"
#include "store.h"
#include "trigger.h"
#include "wjson.h"

#define OUTBOX_WINDOW 256 /* publishes in flight */
/* A result is stored only once it has waited this long for the broker: one
 * taken (QoS 0) or acknowledged (QoS 1/2) sooner never touches the store.
 * The same window as the activation records' group commit. */
#define OUTBOX_STORE_US 2000

enum { AD_ALARM, AD_MQTT, AD_POLL, AD_WEBHOOK, AD_N };

static const struct sysaction {
    const char *pkg, *name;
    int adapter;
    const char *alarm_kind; /* for the alarms package */
} sysactions[] = {
    {"alarms", "alarm", AD_ALARM, "alarm"},   {"alarms", "interval", AD_ALARM, "interval"},
    {"alarms", "once", AD_ALARM, "once"},     {"mqtt", "subscribe", AD_MQTT, NULL},
    {"webhook", "hook", AD_WEBHOOK, NULL},    {"poll", "http", AD_POLL, NULL},
};

struct binding {
    struct binding *next;
    char ns[AUTH_NS_MAX];
    char trigger[ENTITY_NAME_MAX + 1];
    const struct sysaction *sa;
    struct feed_binding *fb;
};

struct adapter {
    const struct feed_ops *ops;
    void *self;
};

/* A trigger an adapter asked to delete (feed_delete_fn), waiting for
 * on_deletes. */
struct pending_delete {
    struct pending_delete *next;
    char ns[AUTH_NS_MAX];
    char trigger[ENTITY_NAME_MAX + 1];
    const struct feed_binding *fb;
    bool rules;
};

struct obx {
    struct obx *next;
    struct feeds *f; /* an entry is its own publish callback's argument */
    uint64_t seq;
    int64_t born_us; /* queued at (monotonic) */
    int64_t sent_us; /* handed to the client at (while inflight) */
    char *topic, *payload;
    size_t len;
    int qos;
    bool retain, stored, inflight;
};

struct feeds {
    struct event_base *base;
    struct store *st;
    struct trigger *trig;
    struct act *act;
    struct feeds_cfg cfg;
    struct adapter ad[AD_N];
    struct adapter *sink; /* the started adapter that publishes results, or NULL */
    struct adapter *hook; /* the started one that takes /hooks requests, or NULL */
    struct binding *bindings;
    /* outbox */
    struct obx *head, *tail;
    unsigned nobx, inflight;
    int64_t store_now; /* the clock of the outbox write being made */
    bool store_all;    /* closing: every entry not acknowledged is kept */
    uint64_t next_seq;
    uint64_t *acked; /* sequence numbers to delete from the store */
    unsigned nacked, acked_cap;
    struct event *ev_outbox;
    struct event *ev_obx_store; /* the next store of the outbox is due */
    /* triggers to delete after their fire, in the order asked */
    struct pending_delete *deletes, **deletes_tail;
    struct event *ev_deletes;
    struct feeds_stats stats;   /* events_in and drops are the adapters' */
    unsigned long long refused; /* fires trigger_fire refused */
};

/* ==== stored bindings ================================================= */

static int bkey(const char *ns, const char *trigger, char *key)
{
    size_t nl = strlen(ns), tl = strlen(trigger);
    if (5 + nl + 1 + tl > STORE_MAX_KEY)
        return -ENAMETOOLONG;
    memcpy(key, "feed", 5); /* with its NUL */
    memcpy(key + 5, ns, nl + 1);
    memcpy(key + 5 + nl + 1, trigger, tl);
    return (int)(5 + nl + 1 + tl);
}

struct put_ctx {
    const char *key;
    size_t klen;
    json_t *doc;  /* NULL: delete */
    const json_t *state; /* set: update only the state of the stored doc */
};

static int put_fn(struct store_txn *t, void *arg)
{
    struct put_ctx *c = arg;
    if (c->state) {
        json_t *old = NULL;
        int rc = store_txn_get(t, STORE_META, c->key, c->klen, NULL, NULL, &old);
        if (rc < 0)
            return rc == -ENOENT ? 0 : rc; /* unbound meanwhile: nothing to keep */
        json_t *doc = json_deep_copy(old);
        json_decref(old);
        if (!doc)
            return -ENOMEM;
        json_object_set(doc, "state", (json_t *)c->state);
        rc = store_txn_put(t, STORE_META, c->key, c->klen, REC_META, plat_clock_real_ms(), doc);
        json_decref(doc);
        return rc;
    }
    if (!c->doc) {
        int rc = store_txn_del(t, STORE_META, c->key, c->klen);
        return rc == -ENOENT ? 0 : rc;
    }
    return store_txn_put(t, STORE_META, c->key, c->klen, REC_META, plat_clock_real_ms(), c->doc);
}

static int store_binding(struct feeds *f, const char *ns, const char *trigger, json_t *doc,
                         const json_t *state, struct wisp_err *err)
{
    char key[STORE_MAX_KEY];
    int kl = bkey(ns, trigger, key);
    if (kl < 0)
        return wisp_err_set(err, -EINVAL, "The trigger name is too long.");
    struct put_ctx c = {.key = key, .klen = (size_t)kl, .doc = doc, .state = state};
    return store_write(f->st, put_fn, &c, err);
}

static struct binding **find_binding(struct feeds *f, const char *ns, const char *trigger)
{
    struct binding **pp = &f->bindings;
    while (*pp && (strcmp((*pp)->ns, ns) || strcmp((*pp)->trigger, trigger)))
        pp = &(*pp)->next;
    return pp;
}

static void drop_binding(struct feeds *f, struct binding **pp)
{
    struct binding *b = *pp;
    struct adapter *ad = &f->ad[b->sa->adapter];
    if (ad->self && b->fb)
        ad->ops->unbind(ad->self, b->fb);
    *pp = b->next;
    free(b);
    f->stats.bindings--;
}

/* Binds in the adapter and links it; the store is the caller's business. */
static int add_binding(struct feeds *f, const struct sysaction *sa, const char *ns,
                       const char *trigger, const json_t *params, const json_t *state,
                       bool paused, struct wisp_err *err)
{
    struct adapter *ad = &f->ad[sa->adapter];
    if (!ad->self)
        return wisp_err_set(err, -ENOTSUP, sa->adapter == AD_MQTT
                                               ? "No MQTT broker is configured (wispd --mqtt)."
                                               : "This feed is not available.");
    struct binding *b = calloc(1, sizeof *b);
    if (!b)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    snprintf(b->ns, sizeof b->ns, "%s", ns);
    snprintf(b->trigger, sizeof b->trigger, "%s", trigger);
    b->sa = sa;
    json_t *p = json_deep_copy(params);
    if (p && sa->alarm_kind)
        json_object_set_new(p, "feed", json_string(sa->alarm_kind));
    int rc = p ? ad->ops->bind(ad->self, ns, trigger, p, state, &b->fb, err)
               : wisp_err_set(err, -ENOMEM, "out of memory");
    json_decref(p);
    if (rc < 0) {
        free(b);
        return rc;
    }
    if (paused)
        ad->ops->set_paused(ad->self, b->fb, true);
    b->next = f->bindings;
    f->bindings = b;
    f->stats.bindings++;
    return 0;
}

/* ==== adapter callbacks =============================================== */

static int on_fire(void *ctx, const char *ns, const char *trigger, const json_t *params)
{
    struct feeds *f = ctx;
    char id[33];
    struct wisp_err err = {0};
    int rc = trigger_fire(f->trig, ns, trigger, ns, params, true, id, &err);
    if (rc < 0) { /* the adapter drops the event or holds it (and counts); this says why */
        if (f->refused++ % 1000 == 0) /* rate-limited: one line per 1000 */
            wlog_warn("feeds", "fire of %s/%s refused: %s (%llu refused so far)", ns, trigger,
                      err.msg, f->refused);
        return rc;
    }
    f->stats.fires++; /* also with no active rule (1): the trigger fired, as the adapters count */
    return 0;
}

static void on_save(void *ctx, const char *ns, const char *trigger, const json_t *state)
{
    struct feeds *f = ctx;
    struct wisp_err err = {0};
    if (store_binding(f, ns, trigger, NULL, state, &err) < 0)
        wlog_err("feeds", "cannot save the state of %s/%s: %s", ns, trigger, err.msg);
}

/* ==== deleting a trigger after its fire =============================== */

/* Called from inside the adapter's timer callback: only queue. */
static void on_delete_trigger(void *ctx, const char *ns, const char *trigger,
                              const struct feed_binding *fb, bool rules)
{
    struct feeds *f = ctx;
    for (struct pending_delete *d = f->deletes; d; d = d->next)
        if (d->fb == fb)
            return; /* asked already */
    struct pending_delete *d = calloc(1, sizeof *d);
    if (!d) {
        wlog_err("feeds", "out of memory: %s/%s is deleted at the next start", ns, trigger);
        return;
    }
    snprintf(d->ns, sizeof d->ns, "%s", ns);
    snprintf(d->trigger, sizeof d->trigger, "%s", trigger);
    d->fb = fb;
    d->rules = rules;
    *f->deletes_tail = d;
    f->deletes_tail = &d->next;
    struct timeval zero = {0, 0};
    evtimer_add(f->ev_deletes, &zero);
}

struct del_ctx {
    const struct pending_delete *d;
    unsigned nrules; /* rules deleted */
};

/* Collects the rules named in a trigger's "rules" map that still point at
 * it, then deletes them (a scan callback must not write, and the map is
 * the trigger's own, kept in step with every rule change). */
static int del_rules(struct store_txn *t, const struct pending_delete *d, const json_t *tdoc,
                     unsigned *n)
{
    const char *fq;
    json_t *v;
    json_object_foreach(json_object_get(tdoc, "rules"), fq, v) {
        (void)v;
        const char *slash = strchr(fq, '/');
        if (!slash || (size_t)(slash - fq) != strlen(d->ns) || strncmp(fq, d->ns, strlen(d->ns)))
            continue; /* a rule's trigger is always in the rule's namespace */
        char key[STORE_MAX_KEY];
        int kl = store_entity_key(d->ns, slash + 1, key);
        if (kl < 0)
            continue;
        enum rec_kind kind;
        json_t *rdoc = NULL;
        int rc = store_txn_get(t, STORE_ENTITIES, key, (size_t)kl, &kind, NULL, &rdoc);
        if (rc == -ENOENT)
            continue;
        if (rc < 0)
            return rc;
        const json_t *tref = json_object_get(rdoc, "trigger");
        const char *tpath = wjson_str(tref, "path"), *tname = wjson_str(tref, "name");
        bool ours = kind == REC_RULE && tpath && tname && strcmp(tpath, d->ns) == 0 &&
                    strcmp(tname, d->trigger) == 0;
        json_decref(rdoc);
        if (!ours)
            continue;
        if ((rc = store_txn_del(t, STORE_ENTITIES, key, (size_t)kl)) < 0)
            return rc;
        (*n)++;
    }
    return 0;
}

/* One write: the trigger (and its rules) and the binding's record. */
static int del_fn(struct store_txn *t, void *arg)
{
    struct del_ctx *c = arg;
    const struct pending_delete *d = c->d;
    c->nrules = 0; /* the write may run again after the map grows */
    char key[STORE_MAX_KEY];
    int kl = store_entity_key(d->ns, d->trigger, key);
    if (kl < 0)
        return kl;
    enum rec_kind kind;
    json_t *tdoc = NULL;
    int rc = store_txn_get(t, STORE_ENTITIES, key, (size_t)kl, &kind, NULL, &tdoc);
    if (rc == 0 && kind == REC_TRIGGER) {
        if (d->rules)
            rc = del_rules(t, d, tdoc, &c->nrules);
        if (rc == 0)
            rc = store_txn_del(t, STORE_ENTITIES, key, (size_t)kl);
    } else if (rc == 0 || rc == -ENOENT) {
        rc = 0; /* gone already (or the name is something else now) */
    }
    json_decref(tdoc);
    if (rc < 0)
        return rc;
    if ((kl = bkey(d->ns, d->trigger, key)) < 0)
        return kl;
    rc = store_txn_del(t, STORE_META, key, (size_t)kl);
    return rc == -ENOENT ? 0 : rc;
}

/* What is logged once the deletion is on disk. */
struct del_note {
    char what[AUTH_NS_MAX + ENTITY_NAME_MAX + 48];
};

static void on_delete_durable(void *arg, int rc)
{
    struct del_note *n = arg;
    if (rc < 0)
        wlog_err("feeds", "deleted %s after its fire, but the store could not sync: %s", n->what,
                 strerror(-rc));
    else
        wlog_info("feeds", "deleted %s after its fire (deleteAfterFire)", n->what);
    free(n);
}

static void on_deletes(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct feeds *f = arg;
    struct pending_delete *list = f->deletes;
    f->deletes = NULL;
    f->deletes_tail = &f->deletes;
    while (list) {
        struct pending_delete *d = list;
        list = d->next;
        struct binding **pp = find_binding(f, d->ns, d->trigger);
        if (*pp && (*pp)->fb == d->fb) {
            struct del_ctx c = {.d = d};
            struct wisp_err err = {0};
            if (store_write(f->st, del_fn, &c, &err) < 0) {
                /* the binding stays; it asks again when it is bound at the next start */
                wlog_err("feeds", "cannot delete %s/%s after its fire: %s", d->ns, d->trigger,
                         err.msg);
            } else {
                drop_binding(f, find_binding(f, d->ns, d->trigger));
                f->stats.deleted_after_fire++;
                struct del_note *n = malloc(sizeof *n);
                if (n) {
                    int l = snprintf(n->what, sizeof n->what, "trigger %s/%s", d->ns, d->trigger);
                    if (d->rules && l > 0 && (size_t)l < sizeof n->what)
                        snprintf(n->what + l, sizeof n->what - (size_t)l, " and its %u rule%s",
                                 c.nrules, c.nrules == 1 ? "" : "s");
                    int rc = store_sync(f->st, on_delete_durable, n);
                    if (rc < 0) /* -ENOTSUP: synchronous commits, durable already */
                        on_delete_durable(n, rc == -ENOTSUP ? 0 : rc);
                }
            }
        }
        free(d);
    }
}

/* ==== system feed actions ============================================= */

bool feeds_is_system_action(const char *pkg, const char *name)
{
    for (size_t i = 0; i < WISP_ARRAY_LEN(sysactions); i++)
        if (strcmp(sysactions[i].pkg, pkg) == 0 && strcmp(sysactions[i].name, name) == 0)
            return true;
    return false;
}

bool feeds_is_system_package(const char *pkg)
{
    for (size_t i = 0; i < WISP_ARRAY_LEN(sysactions); i++)
        if (strcmp(sysactions[i].pkg, pkg) == 0)
            return true;
    return false;
}

static json_t *binding_status(struct feeds *f, struct binding *b)
{
    struct adapter *ad = &f->ad[b->sa->adapter];
    json_t *s = ad->self ? ad->ops->status(ad->self, b->fb) : json_object();
    if (s) {
        char feed[64];
        snprintf(feed, sizeof feed, "/whisk.system/%s/%s", b->sa->pkg, b->sa->name);
        json_object_set_new(s, "feed", json_string(feed));
    }
    return s;
}

/* A lifecycle event for the feed action sa: *out gets its result. */
static int feed_lifecycle(struct feeds *f, const char *caller_ns, const struct sysaction *sa,
                          const json_t *body, json_t **out, struct wisp_err *err)
{
    const char *ev = wjson_str(body, "lifecycleEvent"), *tname = wjson_str(body, "triggerName");
    if (!ev || !tname)
        return wisp_err_set(err, -EINVAL, "A feed action needs lifecycleEvent and triggerName.");
    char ns[AUTH_NS_MAX], trig[2 * ENTITY_NAME_MAX + 2];
    int rc = entity_parse_ref(tname, caller_ns, ns, trig, err);
    if (rc < 0)
        return rc;
    if (strcmp(ns, caller_ns) != 0)
        return wisp_err_set(err, -EACCES, "The supplied authentication is not authorized to "
                                          "access this resource.");
    if (strchr(trig, '/'))
        return wisp_err_set(err, -EINVAL, "triggerName must name a trigger, not a package.");
    json_t *params = json_deep_copy(body);
    json_object_del(params, "lifecycleEvent");
    json_object_del(params, "triggerName");
    json_object_del(params, "authKey");
    json_t *result = NULL;
    struct binding **pp = find_binding(f, ns, trig);
    char feed[64];
    snprintf(feed, sizeof feed, "/whisk.system/%s/%s", sa->pkg, sa->name);
    if (strcmp(ev, "CREATE") == 0 || strcmp(ev, "UPDATE") == 0) {
        bool update = strcmp(ev, "UPDATE") == 0;
        json_t *tdoc = NULL, *stored = NULL, *state = NULL;
        enum rec_kind kind;
        rc = store_entity_get(f->st, ns, trig, &kind, &tdoc);
        json_decref(tdoc);
        if (rc < 0 || kind != REC_TRIGGER) {
            rc = wisp_err_set(err, -ENOENT, "Trigger %s does not exist.", trig);
            goto out;
        }
        if (update) { /* new parameters over the stored ones, state kept */
            char key[STORE_MAX_KEY];
            int kl = bkey(ns, trig, key);
            if (kl > 0 && store_get(f->st, STORE_META, key, (size_t)kl, NULL, NULL, &stored) == 0) {
                json_t *merged = json_deep_copy(json_object_get(stored, "params"));
                json_object_update(merged, params);
                json_decref(params);
                params = merged;
                state = json_incref(json_object_get(stored, "state"));
            }
            json_decref(stored);
        }
        if (*pp)
            drop_binding(f, pp);
        rc = add_binding(f, sa, ns, trig, params, json_is_object(state) ? state : NULL, false,
                         err);
        if (rc < 0) {
            json_decref(state);
            goto out;
        }
        /* UPDATE keeps the state (an alarm's last fire, a poller's ETag) */
        json_t *doc = json_pack("{s:s, s:s, s:O, s:O, s:b}", "kind", sa->pkg, "feed", feed,
                                "params", params, "state",
                                json_is_object(state) ? state : json_null(), "paused", 0);
        json_decref(state);
        rc = store_binding(f, ns, trig, doc, NULL, err);
        json_decref(doc);
        if (rc < 0) {
            drop_binding(f, find_binding(f, ns, trig));
            goto out;
        }
        result = json_pack("{s:s, s:s}", "status", update ? "updated" : "created", "feed", feed);
        const struct feed_hook_ops *hook = f->ad[sa->adapter].ops->hook;
        if (hook) {
            struct binding *b = *find_binding(f, ns, trig);
            char url[80];
            snprintf(url, sizeof url, "/hooks/%s", hook->id(b->fb));
            json_object_set_new(result, "url", json_string(url));
        }
    } else if (!*pp || (*pp)->sa != sa) {
        rc = wisp_err_set(err, -ENOENT, "Trigger %s has no %s feed.", trig, feed);
        goto out;
    } else if (strcmp(ev, "DELETE") == 0) {
        drop_binding(f, pp);
        if ((rc = store_binding(f, ns, trig, NULL, NULL, err)) < 0)
            goto out;
        result = json_pack("{s:s}", "status", "deleted");
    } else if (strcmp(ev, "PAUSE") == 0 || strcmp(ev, "UNPAUSE") == 0) {
        bool pause = strcmp(ev, "PAUSE") == 0;
        struct adapter *ad = &f->ad[sa->adapter];
        ad->ops->set_paused(ad->self, (*pp)->fb, pause);
        char key[STORE_MAX_KEY];
        int kl = bkey(ns, trig, key);
        json_t *stored = NULL;
        if (kl > 0 && store_get(f->st, STORE_META, key, (size_t)kl, NULL, NULL, &stored) == 0) {
            json_t *doc = json_deep_copy(stored);
            json_object_set_new(doc, "paused", json_boolean(pause));
            rc = store_binding(f, ns, trig, doc, NULL, err);
            json_decref(doc);
        }
        json_decref(stored);
        if (rc < 0)
            goto out;
        result = json_pack("{s:s}", "status", pause ? "paused" : "active");
    } else if (strcmp(ev, "READ") == 0) {
        result = binding_status(f, *pp);
    } else {
        rc = wisp_err_set(err, -EINVAL, "lifecycleEvent must be CREATE, READ, UPDATE, DELETE, "
                                        "PAUSE or UNPAUSE.");
        goto out;
    }
    *out = result;
    result = NULL;
    rc = 0;
out:
    json_decref(params);
    json_decref(result);
    return rc;
}

int feeds_system_action(struct feeds *f, const char *caller_ns, const char *pkg,
                        const char *name, const json_t *body, json_t **record,
                        struct wisp_err *err)
{
    const struct sysaction *sa = NULL;
    for (size_t i = 0; i < WISP_ARRAY_LEN(sysactions); i++)
        if (strcmp(sysactions[i].pkg, pkg) == 0 && strcmp(sysactions[i].name, name) == 0)
            sa = &sysactions[i];
    *record = NULL;
    if (!sa)
        return wisp_err_set(err, -ENOENT, "The requested resource does not exist.");
    json_t *result = NULL;
    int rc = feed_lifecycle(f, caller_ns, sa, body, &result, err);
    /* the appliance failing (memory, store) is the API's error; the feed
     * refusing is the feed action's, an application error as OpenWhisk
     * reports a failed action */
    if (rc == -ENOMEM || rc == -ENOSPC || rc == -EIO || rc == -EAGAIN)
        return rc;
    bool ok = rc == 0;
    if (!ok)
        result = json_pack("{s:s}", "error", err->msg);
    /* the answer is an activation of the feed action, encoded like every
     * record, stored, and shown as it was stored */
    char id[33], path[96];
    act_new_id(id);
    snprintf(path, sizeof path, "whisk.system/%s/%s", sa->pkg, sa->name);
    int64_t now = plat_clock_real_ms();
    struct act_head h = {.subject = caller_ns, .name = sa->name, .id = id, .version = "0.0.1",
                         .start = now, .end = now, .status_code = ok ? 0 : 1, .nfields = 12};
    struct plat_buf b = {0};
    int prc = act_pack_head(&b, &h);
    if (!prc)
        prc = result ? codec_put_json(&b, result, 2) : codec_put_map(&b, 0);
    if (!prc && !(prc = codec_put_str(&b, "logs")) && !(prc = codec_put_array(&b, 0)) &&
        !(prc = codec_put_str(&b, "annotations")) && !(prc = codec_put_array(&b, 2)) &&
        !(prc = act_pack_annotation(&b, "path")) && !(prc = codec_put_str(&b, path)) &&
        !(prc = act_pack_annotation(&b, "kind")))
        prc = codec_put_str(&b, "feed");
    json_decref(result);
    enum rec_kind kind;
    int64_t upd;
    if (prc < 0 || codec_record_unpack(b.data, b.len, &kind, &upd, record) < 0) {
        plat_buf_fini(&b);
        *record = NULL;
        return wisp_err_set(err, -ENOMEM, "out of memory");
    }
    struct act_rec r = {.id = id, .rec = b.data, .len = b.len};
    if (act_put(f->act, caller_ns, &r, NULL, NULL) < 0)
        wlog_warn("feeds", "the record of a feed action could not be queued");
    plat_buf_fini(&b);
    return ok ? 0 : rc;
}

void feeds_trigger_deleted(struct feeds *f, const char *ns, const char *trigger)
{
    struct binding **pp = find_binding(f, ns, trigger);
    if (!*pp)
        return;
    drop_binding(f, pp);
    struct wisp_err err = {0};
    if (store_binding(f, ns, trigger, NULL, NULL, &err) < 0)
        wlog_err("feeds", "cannot remove the binding of %s/%s: %s", ns, trigger, err.msg);
}

json_t *feeds_trigger_status(struct feeds *f, const char *ns, const char *trigger)
{
    struct binding *b = *find_binding(f, ns, trigger);
    return b ? binding_status(f, b) : NULL;
}

int feeds_webhook(struct feeds *f, const char *id, const char *sig, const char *ctype,
                  const char *body, size_t len, struct wisp_err *err)
{
    if (!f->hook)
        return wisp_err_set(err, -ENOENT, "The requested resource does not exist.");
    return f->hook->ops->hook->request(f->hook->self, id, sig, ctype, body, len, err);
}

/* ==== result bindings: the outbox ===================================== */

static void outbox_kick(struct feeds *f)
{
    if (!evtimer_pending(f->ev_outbox, NULL)) {
        struct timeval zero = {0, 0};
        evtimer_add(f->ev_outbox, &zero);
    }
}

static void obx_key(uint64_t seq, unsigned char k[15])
{
    memcpy(k, "outbox", 7);
    plat_be_put(k + 7, seq, 8);
}

static void obx_append(struct feeds *f, struct obx *o)
{
    o->f = f;
    if (f->tail)
        f->tail->next = o;
    else
        f->head = o;
    f->tail = o;
    f->nobx++;
}

static void obx_free(struct obx *o)
{
    free(o->topic);
    free(o->payload);
    free(o);
}

/* When an entry not yet stored must be: OUTBOX_STORE_US after it was
 * queued. A QoS 0 result handed to the client is written out within a loop
 * turn or two and then gone (at most once), so its time counts from the
 * hand-over instead: storing it while it leaves would only send it twice
 * after a crash, and under load that was most of the outbox's writes. One
 * still in the client's queue after that (a broker that stopped reading)
 * is kept like any other, and closing keeps every entry not acknowledged. */
static int64_t obx_store_at(const struct obx *o)
{
    return (o->inflight && o->qos == 0 ? o->sent_us : o->born_us) + OUTBOX_STORE_US;
}

/* In a write of the outbox: every entry not stored rides along, except a
 * QoS 0 result handed over too recently to be due. */
static bool obx_needs_store(const struct feeds *f, const struct obx *o)
{
    return !o->stored && (f->store_all || !(o->inflight && o->qos == 0) ||
                          obx_store_at(o) <= f->store_now);
}

static int outbox_write_fn(struct store_txn *t, void *arg)
{
    struct feeds *f = arg;
    unsigned char k[15];
    for (unsigned i = 0; i < f->nacked; i++) {
        obx_key(f->acked[i], k);
        int rc = store_txn_del(t, STORE_META, k, sizeof k);
        if (rc < 0 && rc != -ENOENT)
            return rc;
    }
    for (struct obx *o = f->head; o; o = o->next) {
        if (!obx_needs_store(f, o))
            continue;
        json_t *doc = json_pack("{s:s, s:s%, s:i, s:b}", "topic", o->topic, "payload",
                                o->payload, o->len, "qos", o->qos, "retain", o->retain);
        obx_key(o->seq, k);
        int rc = doc ? store_txn_put(t, STORE_META, k, sizeof k, REC_META, 0, doc) : -ENOMEM;
        json_decref(doc);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void on_published(void *arg, int rc);

static void outbox_store(struct feeds *f)
{
    struct wisp_err err = {0};
    f->store_now = plat_clock_mono_us();
    if (store_write(f->st, outbox_write_fn, f, &err) == 0) {
        for (struct obx *o = f->head; o; o = o->next)
            if (obx_needs_store(f, o))
                o->stored = true;
        f->nacked = 0;
    } else {
        wlog_err("feeds", "cannot store the outbox: %s", err.msg);
    }
}

/* The earliest store time of the entries not stored, or -1. Entries are
 * in queue order and a hand-over time is never before its entry's queue
 * time, so the first entry timed by its queue time ends the search. */
static int64_t obx_next_due(const struct feeds *f)
{
    int64_t due = -1;
    for (const struct obx *o = f->head; o; o = o->next) {
        if (o->stored)
            continue;
        int64_t at = obx_store_at(o);
        if (due < 0 || at < due)
            due = at;
        if (!(o->inflight && o->qos == 0))
            break;
    }
    return due;
}

/* Stores the outbox once an entry's store time has come, or sets the timer
 * for the earliest. Deletions of acknowledged entries ride along too (a
 * stored entry left behind is only sent again). */
static void outbox_store_due(struct feeds *f)
{
    int64_t due = obx_next_due(f);
    if (due < 0 && !f->nacked)
        return;
    int64_t now = plat_clock_mono_us();
    if (due >= 0 && due <= now) {
        outbox_store(f);
        if ((due = obx_next_due(f)) < 0) /* handed-over ones not yet due */
            return;
    }
    if (!evtimer_pending(f->ev_obx_store, NULL)) {
        int64_t wait = due < 0 || due <= now ? OUTBOX_STORE_US : due - now; /* a failed write: later */
        struct timeval tv = {(time_t)(wait / 1000000), (suseconds_t)(wait % 1000000)};
        evtimer_add(f->ev_obx_store, &tv);
    }
}

static void on_obx_store(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct feeds *f = arg;
    if (f->nacked) /* deletions waited long enough */
        outbox_store(f);
    outbox_store_due(f);
}

static void on_outbox(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct feeds *f = arg;
    void *mq = f->sink ? f->sink->self : NULL;
    const struct feed_sink_ops *sk = f->sink ? f->sink->ops->sink : NULL;
    /* cork only for two or more to send now */
    unsigned ready = 0;
    for (struct obx *o = f->head; o && ready < 2; o = o->next)
        ready += !o->inflight;
    bool batch = mq && ready >= 2 && f->inflight + 1 < OUTBOX_WINDOW && sk->connected(mq);
    if (batch)
        sk->batch(mq, true);
    for (struct obx *o = f->head, *next; mq && sk->connected(mq) && o &&
                                         f->inflight < OUTBOX_WINDOW;
         o = next) {
        next = o->next;
        if (o->inflight)
            continue;
        int rc = sk->publish(mq, o->topic, o->payload, o->len, o->qos, o->retain, on_published, o);
        if (rc == -EINVAL) { /* never publishable: drop it */
            o->inflight = true;
            f->inflight++;
            on_published(o, rc);
            continue;
        }
        if (rc < 0)
            break; /* not connected or full: try again later */
        o->inflight = true;
        o->sent_us = plat_clock_mono_us();
        f->inflight++;
    }
    if (batch)
        sk->batch(mq, false);
    outbox_store_due(f);
}

/* The broker took the entry (rc 0), or it could not be sent: then it waits
 * for the next connect, unless it can never be sent (-EINVAL). */
static void on_published(void *arg, int rc)
{
    struct obx *o = arg;
    struct feeds *f = o->f;
    f->inflight--;
    if (rc < 0 && rc != -EINVAL && rc != -EIO) { /* -EIO: the broker refused it for good */
        o->inflight = false;
        f->stats.publish_failed++;
        outbox_kick(f); /* it waits for the broker again: the next turn keeps it */
        return;
    }
    struct obx **pp = &f->head, *prev = NULL;
    while (*pp && *pp != o) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = o->next;
    if (f->tail == o)
        f->tail = prev;
    f->nobx--;
    if (o->stored) {
        if (f->nacked == f->acked_cap) {
            unsigned cap = f->acked_cap ? f->acked_cap * 2 : 64;
            uint64_t *n = realloc(f->acked, cap * sizeof *n);
            if (n) {
                f->acked = n;
                f->acked_cap = cap;
            }
        }
        if (f->nacked < f->acked_cap)
            f->acked[f->nacked++] = o->seq;
    }
    if (rc == 0)
        f->stats.published++;
    else
        f->stats.outbox_dropped++;
    obx_free(o);
    outbox_kick(f);
}

static void on_sink_connect(void *arg)
{
    outbox_kick(arg);
}

/* Expands {topic}, {1}..{9} (levels of the topic the activation was fired
 * from), {action} and {activationId} in a result topic template. */
static int expand_topic(const char *tpl, const char *in_topic, const char *action,
                        const char *activation_id, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = tpl; *p;) {
        const char *val = NULL;
        size_t vlen = 0, skip = 1;
        char seg[256];
        if (*p == '{') {
            const char *close = strchr(p, '}');
            size_t nl = close ? (size_t)(close - p - 1) : 0;
            if (close && nl == 5 && strncmp(p + 1, "topic", 5) == 0 && in_topic) {
                val = in_topic;
            } else if (close && nl == 6 && strncmp(p + 1, "action", 6) == 0) {
                val = action;
            } else if (close && nl == 12 && strncmp(p + 1, "activationId", 12) == 0) {
                val = activation_id;
            } else if (close && nl == 1 && p[1] >= '1' && p[1] <= '9' && in_topic) {
                int want = p[1] - '0', lvl = 1;
                const char *s = in_topic;
                while (lvl < want && (s = strchr(s, '/')))
                    s++, lvl++;
                if (s) {
                    size_t l = strcspn(s, "/");
                    snprintf(seg, sizeof seg, "%.*s", (int)(l < 255 ? l : 255), s);
                    val = seg;
                }
            }
            if (val)
                skip = nl + 2;
        }
        if (val) {
            vlen = strlen(val);
        } else {
            val = p;
            vlen = 1;
        }
        if (o + vlen >= cap)
            return -ENAMETOOLONG;
        memcpy(out + o, val, vlen);
        o += vlen;
        p += skip;
    }
    out[o] = '\0';
    if (!o || strpbrk(out, "+#"))
        return -EINVAL;
    return 0;
}

void feeds_on_result(void *ctx, const json_t *publish, const char *in_topic, const char *name,
                     const char *activation_id, const json_t *result)
{
    struct feeds *f = ctx;
    if (!f->sink) {
        f->stats.outbox_dropped++;
        return;
    }
    char topic[1024];
    if (expand_topic(wjson_str(publish, "topic"), in_topic, name, activation_id, topic,
                     sizeof topic) < 0) {
        f->stats.outbox_dropped++;
        wlog_debug("feeds", "result topic template %s gives no valid topic",
                   wjson_str(publish, "topic"));
        return;
    }
    if (f->nobx >= f->cfg.outbox_max) {
        if (f->stats.outbox_dropped++ % 1000 == 0)
            wlog_warn("feeds", "result outbox full (%u): results dropped (%llu so far)", f->nobx,
                      f->stats.outbox_dropped);
        return;
    }
    struct obx *o = calloc(1, sizeof *o);
    json_t *qv = json_object_get(publish, "qos");
    if (!o)
        return;
    o->topic = strdup(topic);
    o->payload = wjson_dump(result, &o->len);
    o->qos = json_is_integer(qv) && json_integer_value(qv) >= 0 && json_integer_value(qv) <= 2
                 ? (int)json_integer_value(qv)
                 : 1;
    o->retain = json_is_true(json_object_get(publish, "retain"));
    o->seq = f->next_seq++;
    o->born_us = plat_clock_mono_us();
    if (!o->topic || !o->payload) {
        obx_free(o);
        return;
    }
    obx_append(f, o);
    outbox_kick(f);
}

/* ==== open / close ==================================================== */

struct load_ctx {
    struct feeds *f;
    json_t *list; /* [[ns, trigger, doc], ...] */
};

static int load_fn(void *arg, const struct store_rec *r)
{
    struct load_ctx *c = arg;
    size_t kl;
    const char *k = store_rec_key(r, &kl);
    json_t *doc;
    if (store_rec_doc(r, &doc) < 0)
        return 0;
    if (kl > 5 && memcmp(k, "feed", 5) == 0) {
        const char *ns = k + 5;
        size_t nl = strnlen(ns, kl - 5);
        if (nl < kl - 5) {
            char trig[ENTITY_NAME_MAX + 1];
            snprintf(trig, sizeof trig, "%.*s", (int)(kl - 5 - nl - 1), ns + nl + 1);
            json_array_append_new(c->list, json_pack("[s, s, o]", ns, trig, doc));
            return 0;
        }
    } else if (kl == 15 && memcmp(k, "outbox", 7) == 0) {
        struct obx *o = calloc(1, sizeof *o);
        const char *topic = wjson_str(doc, "topic"), *payload = wjson_str(doc, "payload");
        if (o && topic && payload) {
            o->seq = plat_be_get(k + 7, 8);
            o->topic = strdup(topic);
            o->len = json_string_length(json_object_get(doc, "payload"));
            o->payload = malloc(o->len + 1);
            if (o->payload)
                memcpy(o->payload, payload, o->len + 1);
            o->qos = (int)json_integer_value(json_object_get(doc, "qos"));
            o->retain = json_is_true(json_object_get(doc, "retain"));
            o->stored = true;
            if (o->topic && o->payload) {
                struct feeds *f = c->f;
                obx_append(f, o);
                if (o->seq >= f->next_seq)
                    f->next_seq = o->seq + 1;
                o = NULL;
            }
        }
        if (o)
            obx_free(o);
    }
    json_decref(doc);
    return 0;
}

int feeds_open(struct event_base *base, struct store *st, struct trigger *trig, struct act *act,
               const struct feeds_cfg *cfg, struct feeds **out, struct wisp_err *err)
{
    struct feeds *f = calloc(1, sizeof *f);
    if (!f)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    f->base = base;
    f->st = st;
    f->trig = trig;
    f->act = act;
    f->cfg = *cfg;
    f->next_seq = 1;
    int rc;
    f->deletes_tail = &f->deletes;
    f->ev_outbox = evtimer_new(base, on_outbox, f);
    f->ev_obx_store = evtimer_new(base, on_obx_store, f);
    f->ev_deletes = evtimer_new(base, on_deletes, f);
    if (!f->ev_outbox || !f->ev_obx_store || !f->ev_deletes) {
        rc = wisp_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    const struct feed_ops *ops[AD_N] = {[AD_ALARM] = &feed_alarm_ops, [AD_MQTT] = &feed_mqtt_ops,
                                        [AD_POLL] = &feed_poll_ops,
                                        [AD_WEBHOOK] = &feed_webhook_ops};
    struct feed_env env = {.base = base, .fire = on_fire, .save = on_save,
                           .delete_trigger = on_delete_trigger, .ctx = f,
                           .mqtt_url = cfg->mqtt_url, .client_id = cfg->client_id,
                           .tls_ca_file = cfg->tls_ca_file};
    for (int i = 0; i < AD_N; i++) {
        f->ad[i].ops = ops[i];
        if (i == AD_MQTT && (!cfg->mqtt_url || !*cfg->mqtt_url))
            continue;
        if ((rc = ops[i]->start(&env, &f->ad[i].self, err)) < 0)
            goto fail;
        if (ops[i]->sink && !f->sink)
            f->sink = &f->ad[i];
        if (ops[i]->hook && !f->hook)
            f->hook = &f->ad[i];
    }
    if (f->sink)
        f->sink->ops->sink->on_connect(f->sink->self, on_sink_connect, f);
    /* bindings and the outbox come back from the store */
    struct load_ctx lc = {.f = f, .list = json_array()};
    if ((rc = store_scan(st, STORE_META, "", 0, false, load_fn, &lc)) < 0) {
        json_decref(lc.list);
        wisp_err_set(err, rc, "cannot read feed bindings: %s", strerror(-rc));
        goto fail;
    }
    size_t i;
    json_t *e;
    json_array_foreach(lc.list, i, e) {
        const char *ns = json_string_value(json_array_get(e, 0));
        const char *tr = json_string_value(json_array_get(e, 1));
        json_t *doc = json_array_get(e, 2);
        const char *feed = wjson_str(doc, "feed");
        const struct sysaction *sa = NULL;
        for (size_t j = 0; feed && j < WISP_ARRAY_LEN(sysactions); j++) {
            char name[64];
            snprintf(name, sizeof name, "/whisk.system/%s/%s", sysactions[j].pkg,
                     sysactions[j].name);
            if (strcmp(name, feed) == 0)
                sa = &sysactions[j];
        }
        struct wisp_err berr = {0};
        json_t *state = json_object_get(doc, "state");
        if (!sa || add_binding(f, sa, ns, tr, json_object_get(doc, "params"),
                               json_is_object(state) ? state : NULL,
                               json_is_true(json_object_get(doc, "paused")), &berr) < 0)
            wlog_err("feeds", "cannot re-bind %s/%s to %s: %s", ns, tr, feed ? feed : "?",
                     sa ? berr.msg : "unknown feed");
    }
    json_decref(lc.list);
    if (f->head)
        outbox_kick(f);
    *out = f;
    return 0;
fail:
    feeds_close(f);
    return rc;
}

void feeds_close(struct feeds *f)
{
    if (!f)
        return;
    while (f->bindings) {
        struct binding *b = f->bindings;
        f->bindings = b->next;
        free(b); /* the adapters free their bindings in stop() */
    }
    for (int i = 0; i < AD_N; i++)
        if (f->ad[i].self)
            f->ad[i].ops->stop(f->ad[i].self);
    /* what is still only in memory goes to the store, to be sent next time */
    if (f->head || f->nacked) {
        struct wisp_err err = {0};
        f->store_all = true;
        if (store_write(f->st, outbox_write_fn, f, &err) < 0)
            wlog_err("feeds", "cannot store the outbox: %s", err.msg);
    }
    while (f->head) {
        struct obx *o = f->head;
        f->head = o->next;
        obx_free(o);
    }
    free(f->acked);
    if (f->ev_outbox)
        event_free(f->ev_outbox);
    if (f->ev_obx_store)
        event_free(f->ev_obx_store);
    /* deletions not done yet are asked again when their bindings come back */
    while (f->deletes) {
        struct pending_delete *d = f->deletes;
        f->deletes = d->next;
        free(d);
    }
    if (f->ev_deletes)
        event_free(f->ev_deletes);
    free(f);
}

void feeds_get_stats(const struct feeds *f, struct feeds_stats *out)
{
    *out = f->stats;
    out->outbox = f->nobx;
    out->mqtt_connected = f->sink && f->sink->ops->sink->connected(f->sink->self);
    for (int i = 0; i < AD_N; i++) {
        if (!f->ad[i].self)
            continue;
        struct feed_counters c;
        f->ad[i].ops->counters(f->ad[i].self, &c);
        out->events_in += c.events_in;
        out->drops += c.drops;
        out->pending += c.pending;
    }
}

void feeds_drain(struct feeds *f)
{
    for (int i = 0; i < AD_N; i++)
        if (f->ad[i].self && f->ad[i].ops->drain)
            f->ad[i].ops->drain(f->ad[i].self);
}

unsigned feeds_pending(const struct feeds *f)
{
    struct feeds_stats st;
    feeds_get_stats(f, &st);
    return st.pending > UINT_MAX ? UINT_MAX : (unsigned)st.pending;
}
