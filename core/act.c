/* core/act.c - see act.h.
 *
 * Keys. activations: ns, NUL, the 32-hex id. Ids are time-ordered (their
 * first 12 hex digits are the creation time in epoch ms, and the record's
 * start is taken right after), so one namespace's records sort by time and
 * a reverse scan lists the newest first: one B-tree serves reads by id,
 * lists and retention, and a record costs one put and, under retention,
 * one delete. Lists filter on the record's head (start) and its leading
 * string fields (name) before decoding the rest.
 *
 * Stores of schema 1 kept each record under its bare id plus an act_index
 * entry (ns, start as 8 bytes, id). migrate() moves them once, at start-up.
 * Ids made before ids were time-ordered are random: such a record is keyed
 * ns, NUL, its start as 12 hex digits, its id, so it sorts by time too, and
 * act_legacy maps its id to that key.
 *
 * Retention. Count: each group commit removes the oldest records of a
 * namespace over activation-max-count in the same write. Age, and any
 * backlog: the 1 s tick, in batches, a few milliseconds at a time. */
#include "act.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "plat.h"
#include "store.h"
#include "wjson.h"

#define KEY_MAX (AUTH_NS_MAX + 1 + 12 + 32)
/* How much later than its key's time (its id's) a record may start: the
 * start is read right after the id is made. Lists rely on it to stop early;
 * a moved record further off is keyed by its start. */
#define KEY_START_SLACK_MS 1000
#define PRUNE_BATCH 256
#define ACT_COMMIT_US 2000 /* records wait at most this long for their commit */
#define ACT_BATCH 512      /* ... or until this many are queued */

struct pending {
    struct pending *next;
    char ns[AUTH_NS_MAX];
    char id[33];
    unsigned char *rec;
    size_t rec_len;
    act_committed_fn *cb;
    void *arg;
};

struct commit_ns { /* one namespace's share of a group commit */
    char ns[AUTH_NS_MAX];
    long long added, pruned;
};

struct act {
    struct event_base *base;
    struct store *st;
    struct act_cfg cfg;
    struct pending *head, *tail;
    unsigned nqueued;
    struct event *ev_flush, *ev_tick;
    bool dirty; /* committed since the last sync request */
    bool prune_behind; /* the last prune ran out of time */
    json_t *counts; /* ns -> number of records */
    struct commit_ns commit_ns[8]; /* the namespaces of the commit being made */
    unsigned ncommit_ns;
    struct act_stats stats;
};

/* 32 lowercase hex like OpenWhisk's ids, but time-ordered (as UUIDv7): 48
 * bits of epoch milliseconds, then 80 random bits, counting up by a random
 * step within one millisecond so ids follow creation order. New records
 * land at the right edge of the activations B-tree instead of on random
 * pages, which keeps pages full and the touched part of the map small;
 * retention then removes from the left edge. */
void act_new_id(char out[33])
{
    /* random bytes fetched 500 ids at a time: one getrandom() per id was a
     * syscall on every invoke (loop thread only, like every caller) */
    static unsigned char pool[5000];
    static size_t used = sizeof pool;
    static unsigned char last[16];
    static uint64_t last_ms;
    unsigned char b[16];
    uint64_t ms = (uint64_t)plat_clock_real_ms();
    if (used == sizeof pool && plat_rand_bytes(pool, sizeof pool) == 0)
        used = 0;
    unsigned char rnd[10] = {0};
    if (used < sizeof pool) {
        memcpy(rnd, pool + used, 10);
        used += 10;
    } else { /* never in practice; ids stay unique through the step below */
        rnd[9] = 1;
    }
    if (ms <= last_ms) {
        /* Same millisecond (or the clock stepped back): the last id plus a
         * random step, so ids, and lists in start order, follow creation
         * order (RFC 9562's monotonic random) */
        memcpy(b, last, sizeof b);
        unsigned carry = (unsigned)rnd[0] << 8 | rnd[1];
        carry++;
        for (int i = 15; i >= 6 && carry; i--) {
            carry += b[i];
            b[i] = (unsigned char)carry;
            carry >>= 8;
        }
    } else {
        for (int i = 0; i < 6; i++)
            b[i] = (unsigned char)(ms >> (40 - 8 * i));
        memcpy(b + 6, rnd, 10);
        b[6] &= 0x7f; /* room to count up within the millisecond */
        last_ms = ms;
    }
    memcpy(last, b, sizeof last);
    plat_hex(b, sizeof b, out);
}

/* A record's key: ns, NUL, id (ns shorter than AUTH_NS_MAX). */
static size_t act_key(const char *ns, const char *id, unsigned char *k)
{
    size_t nl = strlen(ns);
    memcpy(k, ns, nl + 1);
    memcpy(k + nl + 1, id, 32);
    return nl + 1 + 32;
}

/* The time a key sorts by: the first 12 hex digits after ns and NUL (48
 * big-endian bits of epoch ms); 0 if they are not hex. */
static int64_t key_ms(const unsigned char *tail)
{
    unsigned char b[6];
    return plat_unhex((const char *)tail, sizeof b, b) ? (int64_t)plat_be_get(b, sizeof b) : 0;
}

static bool is_hex32(const char *p)
{
    for (int i = 0; i < 32; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

/* The key of one of ns's records: the plain one or a legacy one. */
static bool is_rec_key(size_t kl, size_t nslen)
{
    return kl == nslen + 1 + 32 || kl == nslen + 1 + 12 + 32;
}

static json_t *summary(const json_t *doc)
{
    static const char *const keep[] = {"namespace", "name", "subject", "activationId", "version",
                                       "publish", "start", "end", "duration", "annotations",
                                       "cause"};
    json_t *s = json_object();
    for (size_t i = 0; s && i < WISP_ARRAY_LEN(keep); i++) {
        json_t *v = json_object_get(doc, keep[i]);
        if (v)
            json_object_set(s, keep[i], v);
    }
    json_t *code = json_object_get(json_object_get(doc, "response"), "statusCode");
    if (s)
        json_object_set(s, "statusCode", code ? code : json_integer(0));
    return s;
}

/* ==== retention ======================================================= */

struct prune_ctx {
    int64_t cutoff;
    long long excess;
    size_t nslen, n;
    unsigned char keys[PRUNE_BATCH][KEY_MAX];
    size_t lens[PRUNE_BATCH];
};

static struct prune_ctx prune_buf; /* loop thread only; too big for the stack */

static int prune_scan(void *arg, const struct store_rec *r)
{
    struct prune_ctx *c = arg;
    size_t kl;
    const unsigned char *k = (const unsigned char *)store_rec_key(r, &kl);
    if (!is_rec_key(kl, c->nslen))
        return 0;
    if ((long long)c->n >= c->excess && key_ms(k + c->nslen + 1) >= c->cutoff)
        return 1; /* oldest first: nothing further qualifies */
    memcpy(c->keys[c->n], k, kl);
    c->lens[c->n] = kl;
    return ++c->n == PRUNE_BATCH ? 1 : 0;
}

static int prune_fn(struct store_txn *t, void *arg)
{
    struct prune_ctx *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        int rc = store_txn_del(t, STORE_ACTIVATIONS, c->keys[i], c->lens[i]);
        if (rc == 0 && c->lens[i] == c->nslen + 1 + 12 + 32)
            rc = store_txn_del(t, STORE_ACT_LEGACY, c->keys[i] + c->nslen + 13, 32);
        if (rc < 0 && rc != -ENOENT)
            return rc;
    }
    return 0;
}

/* Count retention rides on each group commit: a namespace over max_count
 * loses its oldest records in the same write that adds the new ones (at
 * most twice as many as it adds, so a backlog shrinks), spreading the work
 * evenly instead of in long slices on the tick. Age and what is left over
 * are the tick's (prune()). */
static int prune_in_txn(struct store_txn *t, struct act *a, struct commit_ns *cn)
{
    struct prune_ctx *c = &prune_buf;
    long long count = json_integer_value(json_object_get(a->counts, cn->ns)) + cn->added;
    long long excess = count - (long long)a->cfg.max_count;
    long long budget = 2 * cn->added + 16;
    while (excess > 0 && budget > 0) {
        c->n = 0; /* the key arrays (77 kB) are written before they are read */
        c->cutoff = INT64_MIN;
        c->excess = excess < budget ? excess : budget;
        c->nslen = strlen(cn->ns);
        int rc = store_txn_scan(t, STORE_ACTIVATIONS, cn->ns, c->nslen + 1, prune_scan, c);
        if (rc == 0 && c->n)
            rc = prune_fn(t, c);
        if (rc < 0)
            return rc;
        if (c->n == 0)
            break;
        cn->pruned += (long long)c->n;
        excess -= (long long)c->n;
        budget -= (long long)c->n;
    }
    return 0;
}

static int flush_fn(struct store_txn *t, void *arg)
{
    struct act *a = arg;
    a->ncommit_ns = 0;
    for (struct pending *p = a->head; p; p = p->next) {
        unsigned i = 0;
        while (i < a->ncommit_ns && strcmp(a->commit_ns[i].ns, p->ns) != 0)
            i++;
        if (i == a->ncommit_ns && i < WISP_ARRAY_LEN(a->commit_ns)) {
            strcpy(a->commit_ns[i].ns, p->ns);
            a->commit_ns[i].added = a->commit_ns[i].pruned = 0;
            a->ncommit_ns++;
        }
        if (i < a->ncommit_ns)
            a->commit_ns[i].added++;
        unsigned char k[KEY_MAX];
        size_t kl = act_key(p->ns, p->id, k);
        int rc = store_txn_put_raw(t, STORE_ACTIVATIONS, k, kl, p->rec, p->rec_len);
        if (rc < 0)
            return rc;
    }
    for (unsigned i = 0; i < a->ncommit_ns; i++) {
        int rc = prune_in_txn(t, a, &a->commit_ns[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void flush(struct act *a)
{
    if (!a->head)
        return;
    evtimer_del(a->ev_flush);
    struct wisp_err err = {0};
    int rc = store_write(a->st, flush_fn, a, &err);
    if (rc < 0)
        wlog_err("act", "cannot store %u activations: %s", a->nqueued, err.msg);
    struct pending *p = a->head;
    a->head = a->tail = NULL;
    unsigned n = a->nqueued;
    a->nqueued = 0;
    a->stats.commits++;
    if (rc == 0) {
        a->dirty = true;
        a->stats.committed += n;
        for (unsigned i = 0; i < a->ncommit_ns; i++) { /* records pruned in the commit */
            const struct commit_ns *cn = &a->commit_ns[i];
            long long c = json_integer_value(json_object_get(a->counts, cn->ns)) - cn->pruned;
            json_object_set_new(a->counts, cn->ns, json_integer(c));
            a->stats.pruned += (unsigned long long)cn->pruned;
        }
    } else {
        a->stats.dropped += n;
    }
    while (p) {
        struct pending *next = p->next;
        if (rc == 0) {
            json_t *c = json_object_get(a->counts, p->ns);
            json_object_set_new(a->counts, p->ns, json_integer(json_integer_value(c) + 1));
        }
        if (p->cb)
            p->cb(p->arg, rc);
        free(p->rec);
        free(p);
        p = next;
    }
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

int act_put(struct act *a, const char *ns, const struct act_rec *r, act_committed_fn *cb,
            void *arg)
{
    if (a->nqueued >= a->cfg.queue_max || strlen(ns) >= AUTH_NS_MAX || !r->id ||
        strlen(r->id) != 32 || !is_hex32(r->id)) {
        a->stats.dropped++;
        return -EAGAIN;
    }
    struct pending *p = calloc(1, sizeof *p);
    if (!p || !(p->rec = malloc(r->len))) {
        free(p);
        return -ENOMEM;
    }
    memcpy(p->rec, r->rec, r->len);
    p->rec_len = r->len;
    strcpy(p->ns, ns);
    memcpy(p->id, r->id, 33);
    p->cb = cb;
    p->arg = arg;
    if (a->tail)
        a->tail->next = p;
    else
        a->head = p;
    a->tail = p;
    /* Group commit: the first record arms a short timer, so under load one
     * write serves everything that finished in the window; a full window
     * commits at once. */
    a->nqueued++;
    if (a->nqueued == 1 || a->nqueued == ACT_BATCH) {
        struct timeval tv = {0, a->nqueued == 1 ? ACT_COMMIT_US : 0};
        evtimer_add(a->ev_flush, &tv);
    }
    return 0;
}

static const char *const status_names[] = {"success", "application error",
                                           "action developer error", "whisk internal error"};

const char *act_status_name(int status_code)
{
    return status_code >= 0 && status_code < (int)WISP_ARRAY_LEN(status_names)
               ? status_names[status_code]
               : NULL;
}

int act_pack_head(struct plat_buf *b, const struct act_head *h)
{
    if (h->status_code < 0 || h->status_code >= (int)WISP_ARRAY_LEN(status_names))
        return -EINVAL;
    int rc = codec_record_begin(b, REC_ACTIVATION, h->start);
#define PUT(x) \
    if (!rc)   \
    rc = (x)
    PUT(codec_put_map(b, h->nfields));
    const char *strs[][2] = {{"namespace", h->subject}, {"name", h->name},
                             {"subject", h->subject}, {"activationId", h->id},
                             {"version", h->version}};
    for (size_t i = 0; i < WISP_ARRAY_LEN(strs); i++) {
        PUT(codec_put_str(b, strs[i][0]));
        PUT(codec_put_str(b, strs[i][1]));
    }
    PUT(codec_put_str(b, "publish"));
    PUT(codec_put_bool(b, false));
    const char *ints[] = {"start", "end", "duration"};
    int64_t ivals[] = {h->start, h->end, h->end - h->start};
    for (size_t i = 0; i < WISP_ARRAY_LEN(ints); i++) {
        PUT(codec_put_str(b, ints[i]));
        PUT(codec_put_int(b, ivals[i]));
    }
    PUT(codec_put_str(b, "response"));
    PUT(codec_put_map(b, 4));
    PUT(codec_put_str(b, "status"));
    PUT(codec_put_str(b, status_names[h->status_code]));
    PUT(codec_put_str(b, "statusCode"));
    PUT(codec_put_int(b, h->status_code));
    PUT(codec_put_str(b, "success"));
    PUT(codec_put_bool(b, h->status_code == 0));
    PUT(codec_put_str(b, "result"));
#undef PUT
    return rc;
}

int act_pack_annotation(struct plat_buf *b, const char *key)
{
    int rc = codec_put_map(b, 2);
    if (!rc && !(rc = codec_put_str(b, "key")) && !(rc = codec_put_str(b, key)))
        rc = codec_put_str(b, "value");
    return rc;
}

struct legacy_key {
    const char *ns;
    unsigned char k[KEY_MAX];
    size_t kl;
};

static int legacy_key_fn(void *arg, const void *data, size_t len)
{
    struct legacy_key *l = arg;
    size_t nl = strlen(l->ns);
    if (len != nl + 1 + 12 + 32 || memcmp(data, l->ns, nl + 1) != 0)
        return -ENOENT; /* another namespace's */
    memcpy(l->k, data, len);
    l->kl = len;
    return 0;
}

int act_get(struct act *a, const char *ns, const char *id, json_t **doc)
{
    flush(a); /* what is queued must be readable */
    if (strlen(id) != 32 || !is_hex32(id) || strlen(ns) >= AUTH_NS_MAX)
        return -ENOENT;
    struct legacy_key l = {.ns = ns};
    l.kl = act_key(ns, id, l.k);
    int rc = store_get(a->st, STORE_ACTIVATIONS, l.k, l.kl, NULL, NULL, doc);
    if (rc == -ENOENT && store_get_raw(a->st, STORE_ACT_LEGACY, id, 32, legacy_key_fn, &l) == 0)
        rc = store_get(a->st, STORE_ACTIVATIONS, l.k, l.kl, NULL, NULL, doc);
    if (rc == -EBADMSG || rc == -EPROTO)
        return -EIO;
    if (rc < 0)
        return rc;
    const char *dns = wjson_str(*doc, "namespace");
    if (!dns || strcmp(dns, ns) != 0) { /* another namespace's: not there for this caller */
        json_decref(*doc);
        *doc = NULL;
        return -ENOENT;
    }
    return 0;
}

struct list_ctx {
    const struct act_query *q;
    const char *want_name; /* the last segment of q->name: a record's name must equal it */
    size_t nslen;
    long long seen;
    json_t *out;
};

static bool name_matches(const json_t *s, const char *want)
{
    if (!want)
        return true;
    const char *name = wjson_str(s, "name");
    if (name && strcmp(name, want) == 0)
        return true;
    /* "pkg/action" matches the path annotation "ns/pkg/action" */
    const char *path = json_string_value(wjson_kv_get(json_object_get(s, "annotations"), "path"));
    if (!path)
        return false;
    const char *slash = strchr(path, '/');
    return slash && strcmp(slash + 1, want) == 0;
}

static int list_fn(void *arg, const struct store_rec *r)
{
    struct list_ctx *c = arg;
    size_t kl, vl;
    const unsigned char *k = (const unsigned char *)store_rec_key(r, &kl);
    if (!is_rec_key(kl, c->nslen))
        return 0;
    if (c->q->since && key_ms(k + c->nslen + 1) + KEY_START_SLACK_MS < c->q->since)
        return 1; /* older from here on */
    const void *v = store_rec_val(r, &vl);
    int64_t start;
    if (codec_record_peek_updated(v, vl, &start) < 0 || (c->q->upto && start > c->q->upto) ||
        (c->q->since && start < c->q->since))
        return 0;
    json_t *doc = NULL;
    if (c->q->name) {
        const char *name;
        size_t n;
        int rc = codec_record_peek_str(v, vl, "name", &name, &n);
        if (rc == -EBADMSG || (rc == 0 && (n != strlen(c->want_name) ||
                                           memcmp(name, c->want_name, n) != 0)))
            return 0;
        /* a plain name that the peek matched is settled; a path needs the
         * annotations */
        if (rc != 0 || c->want_name != c->q->name) {
            if (store_rec_doc(r, &doc) < 0)
                return 0;
            if (!name_matches(doc, c->q->name)) {
                json_decref(doc);
                return 0;
            }
        }
    }
    if (c->seen++ < c->q->skip || c->q->count) {
        json_decref(doc);
        return 0;
    }
    if (!doc && store_rec_doc(r, &doc) < 0)
        return 0; /* unreadable: not listed */
    json_array_append_new(c->out, c->q->docs ? doc : summary(doc));
    if (!c->q->docs)
        json_decref(doc);
    return (long long)json_array_size(c->out) >= c->q->limit ? 1 : 0;
}

int act_list(struct act *a, const char *ns, const struct act_query *q, json_t **out)
{
    flush(a);
    struct list_ctx c = {.q = q, .nslen = strlen(ns), .out = json_array()};
    if (q->name) {
        const char *slash = strrchr(q->name, '/');
        c.want_name = slash ? slash + 1 : q->name;
    }
    unsigned char prefix[AUTH_NS_MAX + 1];
    if (c.nslen >= AUTH_NS_MAX || !c.out) {
        json_decref(c.out);
        return -EINVAL;
    }
    memcpy(prefix, ns, c.nslen);
    prefix[c.nslen] = 0;
    int rc = store_scan(a->st, STORE_ACTIVATIONS, prefix, c.nslen + 1, true, list_fn, &c);
    if (rc < 0) {
        json_decref(c.out);
        return -EIO;
    }
    if (q->count) {
        json_decref(c.out);
        *out = json_pack("{s:I}", "activations", (json_int_t)c.seen);
    } else {
        *out = c.out;
    }
    return 0;
}

/* Removes what retention says must go, in batches, for at most a few
 * milliseconds per call so the loop stays responsive; under a sustained
 * write rate it keeps up because each batch is a single write. */
static bool prune_round(struct act *a);

static void prune(struct act *a)
{
    /* 5 ms a second normally; 25 ms while it is behind (under a sustained
     * rate above what 5 ms removes), so the store stays near its cap */
    int64_t budget_end = plat_clock_mono_us() + (a->prune_behind ? 25000 : 5000);
    bool more = true;
    while (more && plat_clock_mono_us() < budget_end)
        more = prune_round(a);
    a->prune_behind = more;
}

static bool prune_round(struct act *a)
{
    struct prune_ctx *c = &prune_buf;
    const char *ns;
    json_t *v;
    bool more = false;
    int64_t now = plat_clock_real_ms();
    json_object_foreach(a->counts, ns, v) {
        long long count = json_integer_value(v);
        memset(c, 0, sizeof *c);
        c->cutoff = a->cfg.max_age_s ? now - (int64_t)a->cfg.max_age_s * 1000 : INT64_MIN;
        c->excess = count > (long long)a->cfg.max_count ? count - (long long)a->cfg.max_count : 0;
        c->nslen = strlen(ns);
        unsigned char prefix[AUTH_NS_MAX + 1];
        memcpy(prefix, ns, c->nslen + 1);
        if (store_scan(a->st, STORE_ACTIVATIONS, prefix, c->nslen + 1, false, prune_scan, c) < 0 ||
            c->n == 0)
            continue;
        struct wisp_err err = {0};
        if (store_write(a->st, prune_fn, c, &err) < 0) {
            wlog_err("act", "retention: %s", err.msg);
            continue;
        }
        long long left = count > (long long)c->n ? count - (long long)c->n : 0;
        json_object_set_new(a->counts, ns, json_integer(left));
        a->stats.pruned += c->n;
        a->dirty = true;
        more |= c->n == PRUNE_BATCH;
    }
    return more;
}

static void synced(void *arg, int rc)
{
    (void)arg;
    if (rc < 0 && rc != -ECANCELED)
        wlog_err("act", "fsync of activations failed: %s", strerror(-rc));
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct act *a = arg;
    prune(a);
    store_trim(a->st);
    if (a->dirty) {
        a->dirty = false;
        int rc = store_sync(a->st, synced, NULL);
        if (rc < 0 && rc != -ENOTSUP)
            a->dirty = true; /* try again next second */
    }
}

static int count_fn(void *arg, const struct store_rec *r)
{
    json_t *counts = arg;
    size_t kl;
    const char *k = store_rec_key(r, &kl);
    size_t nl = strnlen(k, kl);
    if (nl == kl || nl >= AUTH_NS_MAX)
        return 0;
    char ns[AUTH_NS_MAX];
    memcpy(ns, k, nl);
    ns[nl] = '\0';
    json_t *c = json_object_get(counts, ns);
    json_object_set_new(counts, ns, json_integer(json_integer_value(c) + 1));
    return 0;
}

/* ==== the move from schema 1 ========================================= */

#define MIGRATE_BATCH 2048
#define MIGRATE_BATCH_BYTES (32u << 20) /* a batch's records: the write needs as much again */
#define ID_CLOCK_SLACK_MS (3600 * 1000) /* a time-ordered id is this close to its start */

struct migrate_ctx {
    size_t n;
    unsigned char keys[MIGRATE_BATCH][512]; /* LMDB keys are at most 511 bytes */
    size_t lens[MIGRATE_BATCH];
    struct plat_buf rec; /* one record, copied out before the writes that move it */
    unsigned long long moved, legacy; /* by the batch being written */
    bool more;                        /* the batch stopped before act_index's end */
};

static int migrate_scan(void *arg, const struct store_rec *r)
{
    struct migrate_ctx *c = arg;
    size_t kl;
    const char *k = store_rec_key(r, &kl);
    if (kl > sizeof c->keys[0])
        return -EIO;
    memcpy(c->keys[c->n], k, kl);
    c->lens[c->n] = kl;
    return ++c->n == MIGRATE_BATCH ? 1 : 0;
}

static int copy_rec(void *arg, const void *data, size_t len)
{
    struct plat_buf *b = arg;
    b->len = 0;
    return plat_buf_add(b, data, len);
}

/* One batch: each act_index entry's record moves under its new key, the
 * entry goes. The first batch stamps schema 2, so a build from before
 * refuses the store from then on; a stop half-way leaves entries in
 * act_index, which the next start moves. */
static int migrate_fn(struct store_txn *t, void *arg)
{
    struct migrate_ctx *c = arg;
    c->n = 0;
    c->moved = c->legacy = 0;
    c->more = false;
    size_t bytes = 0;
    int rc = store_txn_scan(t, STORE_ACT_INDEX, "", 0, migrate_scan, c);
    if (rc == 0 && c->n)
        rc = store_txn_set_schema(t, STORE_SCHEMA_VERSION);
    c->more = c->n == MIGRATE_BATCH;
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        if (bytes >= MIGRATE_BATCH_BYTES) { /* the rest waits for the next batch */
            c->more = true;
            break;
        }
        const unsigned char *k = c->keys[i];
        size_t kl = c->lens[i], nl = strnlen((const char *)k, kl);
        if ((rc = store_txn_del(t, STORE_ACT_INDEX, k, kl)) < 0)
            break;
        if (nl >= AUTH_NS_MAX || kl != nl + 9 + 32 || !is_hex32((const char *)k + nl + 9))
            continue; /* not an index entry: nothing to move */
        const char *id = (const char *)k + nl + 9;
        rc = store_txn_get_raw(t, STORE_ACTIVATIONS, id, 32, copy_rec, &c->rec);
        if (rc == -ENOENT) { /* an entry whose record is gone */
            rc = 0;
            continue;
        }
        if (rc < 0)
            break;
        bytes += c->rec.len;
        /* the low 48 bits of the 8-byte start: what 12 hex digits hold */
        int64_t start = (int64_t)plat_be_get(k + nl + 3, 6);
        int64_t d = key_ms((const unsigned char *)id) - start;
        /* keyed by its id only where lists find it by its id's time */
        bool legacy = d < -KEY_START_SLACK_MS || d > ID_CLOCK_SLACK_MS;
        unsigned char nk[KEY_MAX];
        memcpy(nk, k, nl + 1);
        size_t nkl = nl + 1;
        if (legacy) { /* ns, NUL, start as 12 hex digits, id */
            char hex[13];
            plat_hex(k + nl + 3, 6, hex); /* the low 48 bits of the 8-byte start */
            memcpy(nk + nkl, hex, 12);
            nkl += 12;
        }
        memcpy(nk + nkl, id, 32);
        nkl += 32;
        if ((rc = store_txn_put_raw(t, STORE_ACTIVATIONS, nk, nkl, c->rec.data, c->rec.len)) <
                0 ||
            (rc = store_txn_del(t, STORE_ACTIVATIONS, id, 32)) < 0 ||
            (legacy && (rc = store_txn_put_raw(t, STORE_ACT_LEGACY, id, 32, nk, nkl)) < 0))
            break;
        c->moved++;
        c->legacy += legacy;
    }
    return rc;
}

static int stamp_fn(struct store_txn *t, void *arg)
{
    (void)arg;
    return store_txn_set_schema(t, STORE_SCHEMA_VERSION);
}

static int any_fn(void *arg, const struct store_rec *r)
{
    (void)r;
    *(bool *)arg = true;
    return 1;
}

/* Moves what act_index still holds (a store of schema 1, or one whose move
 * stopped half-way) to the one-tree layout, in batches of at most 2048
 * records or 32 MB, each one write. Start-up only, before the loop runs.
 * 0 (*moved: whether anything was written), or -errno with err set. */
static int migrate(struct store *st, bool *moved_any, struct wisp_err *err)
{
    bool pending = false;
    int rc = store_scan(st, STORE_ACT_INDEX, "", 0, false, any_fn, &pending);
    *moved_any = false;
    if (rc < 0)
        return wisp_err_set(err, rc, "cannot read act_index: %s", strerror(-rc));
    if (!pending && store_schema(st) >= STORE_SCHEMA_VERSION)
        return 0;
    if (!pending) { /* nothing to move: the stamp alone */
        if ((rc = store_write(st, stamp_fn, NULL, err)) < 0 && !err->msg[0])
            wisp_err_set(err, rc, "cannot stamp store schema %d: %s", STORE_SCHEMA_VERSION,
                         strerror(-rc));
        return rc;
    }
    struct migrate_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    unsigned long long moved = 0, legacy = 0;
    do {
        if ((rc = store_write(st, migrate_fn, c, err)) < 0)
            break;
        moved += c->moved;
        legacy += c->legacy;
    } while (c->more);
    plat_buf_fini(&c->rec);
    free(c);
    if (rc < 0) {
        if (!err->msg[0])
            wisp_err_set(err, rc, "cannot move activations to store schema %d: %s",
                         STORE_SCHEMA_VERSION, strerror(-rc));
        return rc;
    }
    *moved_any = true;
    wlog_info("act", "activations moved to the store's schema %d layout: %llu records (%llu keyed "
              "by their start: ids not time-ordered)", STORE_SCHEMA_VERSION, moved, legacy);
    return 0;
}

int act_open(struct event_base *base, struct store *st, const struct act_cfg *cfg,
             struct act **out, struct wisp_err *err)
{
    struct act *a = calloc(1, sizeof *a);
    if (!a)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    a->base = base;
    a->st = st;
    a->cfg = *cfg;
    a->counts = json_object();
    a->ev_flush = evtimer_new(base, on_flush, a);
    a->ev_tick = event_new(base, -1, EV_PERSIST, on_tick, a);
    struct timeval sec = {1, 0};
    int rc;
    if (!a->counts || !a->ev_flush || !a->ev_tick || event_add(a->ev_tick, &sec) < 0) {
        rc = wisp_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    bool moved;
    if ((rc = migrate(st, &moved, err)) < 0)
        goto fail;
    a->dirty = moved; /* the next tick syncs what the move wrote */
    /* Per-namespace counts for retention: one pass over the keys. */
    if ((rc = store_scan(st, STORE_ACTIVATIONS, "", 0, false, count_fn, a->counts)) < 0) {
        wisp_err_set(err, rc, "cannot read the activations: %s", strerror(-rc));
        goto fail;
    }
    *out = a;
    return 0;
fail:
    act_close(a);
    return rc;
}

void act_close(struct act *a)
{
    if (!a)
        return;
    flush(a);
    if (a->ev_flush)
        event_free(a->ev_flush);
    if (a->ev_tick)
        event_free(a->ev_tick);
    json_decref(a->counts);
    free(a);
}

void act_get_stats(const struct act *a, struct act_stats *out)
{
    *out = a->stats;
    out->queued = a->nqueued;
}
