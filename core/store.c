/* core/store.c - LMDB environment, named databases, entity cache, group
 * fsync. See store.h for the contract.
 *
 * Invariants:
 * - Only this file includes lmdb.h; MDB_* codes become -errno here
 *   (MDB_NOTFOUND -> -ENOENT, MDB_MAP_FULL -> -ENOSPC, corruption -> -EIO).
 * - At most one transaction is live at a time (one thread). The reusable
 *   read txn is reset between reads so it never pins old pages.
 * - The sync thread only calls mdb_env_sync(): without MDB_WRITEMAP that is
 *   an fdatasync() of the data file, safe beside a writer on the loop.
 * - The cache holds decoded documents by entities key. A write to a key
 *   drops its entry before commit; entries are filled only by reads, which
 *   see committed data, so the cache never holds an uncommitted value. */
#include "store.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <lmdb.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "plat.h"

#define SYNC_WAITERS_MAX 4096

static const char *const db_names[STORE_NDB] = {"keys",      "entities", "activations",
                                                "act_index", "meta",     "act_legacy"};

struct cache_ent {
    struct cache_ent *hnext;            /* hash chain */
    struct cache_ent *lru_prev, *lru_next;
    enum rec_kind kind;
    int64_t updated_ms;
    json_t *doc;
    size_t klen;
    char *key; /* stored right after the struct, same allocation */
};

struct sync_waiter {
    struct sync_waiter *next;
    uint64_t gen;
    store_synced_fn *cb;
    void *arg;
};

struct store {
    MDB_env *env;
    MDB_dbi dbi[STORE_NDB];
    MDB_txn *rtxn; /* reusable read txn, reset when idle */
    int rtxn_depth; /* > 0 while a read (a scan) holds it */
    uint64_t map_bytes, map_max_bytes;
    char data_path[PATH_MAX + 16];
    void *map_addr; /* where data.mdb is mapped, for store_trim */
    size_t map_len;
    int64_t trimmed_us; /* the last store_trim */
    int64_t trim_us;    /* cfg->trim_ms (see store_write) */
    bool map_full; /* set by a put/commit that hit MDB_MAP_FULL */
    unsigned schema; /* what the data dir was stamped with when opened */
    struct store_stats stats;
    struct plat_buf pack; /* reused by puts (one writer at a time) */

    /* entity cache */
    struct cache_ent **buckets;
    size_t nbuckets, nentries, cap;
    struct cache_ent lru; /* sentinel: lru.lru_next is the most recent */

    /* group fsync */
    struct event_base *base;
    struct event *sync_ev;
    int sync_fd; /* eventfd: sync thread -> loop */
    pthread_t sync_thread;
    bool has_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t req_gen, done_gen; /* under mu */
    int sync_err;               /* under mu: last fdatasync failure */
    bool stopping;              /* under mu */
    struct sync_waiter *wait_head, *wait_tail;
    unsigned nwaiters;
};

struct store_txn {
    struct store *st;
    MDB_txn *txn;
};

struct store_rec {
    struct store *st;
    MDB_val key, val;
};

static int map_rc(struct store *st, int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_KEYEXIST:
        return -EEXIST;
    case MDB_MAP_FULL:
        st->map_full = true;
        return -ENOSPC;
    case MDB_TXN_FULL:
        return -E2BIG;
    case MDB_BAD_VALSIZE:
        return -ENAMETOOLONG;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return -EIO;
    default:
        return rc > 0 ? -rc : -EIO;
    }
}

/* ==== entity cache ==================================================== */

static struct cache_ent **cache_slot(struct store *st, const void *key, size_t klen)
{
    struct cache_ent **pp = &st->buckets[plat_fnv1a64(key, klen) & (st->nbuckets - 1)];
    while (*pp && ((*pp)->klen != klen || memcmp((*pp)->key, key, klen) != 0))
        pp = &(*pp)->hnext;
    return pp;
}

static void lru_unlink(struct cache_ent *e)
{
    e->lru_prev->lru_next = e->lru_next;
    e->lru_next->lru_prev = e->lru_prev;
}

static void lru_push(struct store *st, struct cache_ent *e)
{
    e->lru_next = st->lru.lru_next;
    e->lru_prev = &st->lru;
    st->lru.lru_next->lru_prev = e;
    st->lru.lru_next = e;
}

static void cache_drop(struct store *st, const void *key, size_t klen)
{
    if (!st->cap)
        return;
    struct cache_ent **pp = cache_slot(st, key, klen);
    struct cache_ent *e = *pp;
    if (!e)
        return;
    *pp = e->hnext;
    lru_unlink(e);
    json_decref(e->doc);
    free(e);
    st->nentries--;
}

static void cache_put(struct store *st, const void *key, size_t klen, enum rec_kind kind,
                      int64_t updated_ms, json_t *doc)
{
    if (!st->cap)
        return;
    if (st->nentries >= st->cap) {
        struct cache_ent *old = st->lru.lru_prev;
        cache_drop(st, old->key, old->klen);
    }
    struct cache_ent *e = malloc(sizeof *e + klen);
    if (!e)
        return; /* a cache that cannot grow is still correct */
    e->key = (char *)(e + 1);
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->kind = kind;
    e->updated_ms = updated_ms;
    e->doc = json_incref(doc);
    struct cache_ent **pp = cache_slot(st, key, klen);
    e->hnext = *pp;
    *pp = e;
    lru_push(st, e);
    st->nentries++;
}

static void cache_free(struct store *st)
{
    while (st->nentries)
        cache_drop(st, st->lru.lru_prev->key, st->lru.lru_prev->klen);
    free(st->buckets);
}

/* ==== sync thread ===================================================== */

static void *sync_main(void *arg)
{
    struct store *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->stopping && st->done_gen == st->req_gen)
            pthread_cond_wait(&st->cv, &st->mu);
        if (st->done_gen == st->req_gen && st->stopping)
            break;
        uint64_t target = st->req_gen;
        pthread_mutex_unlock(&st->mu);
        int rc = mdb_env_sync(st->env, 1);
        pthread_mutex_lock(&st->mu);
        st->done_gen = target;
        st->sync_err = rc ? -rc : 0;
        uint64_t one = 1;
        ssize_t n = write(st->sync_fd, &one, sizeof one);
        (void)n; /* eventfd counter saturation only merges wake-ups */
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static void sync_complete(struct store *st, bool closing)
{
    pthread_mutex_lock(&st->mu);
    uint64_t done = st->done_gen;
    int err = st->sync_err;
    pthread_mutex_unlock(&st->mu);
    while (st->wait_head && (closing || st->wait_head->gen <= done)) {
        struct sync_waiter *w = st->wait_head;
        st->wait_head = w->next;
        if (!st->wait_head)
            st->wait_tail = NULL;
        st->nwaiters--;
        int rc = w->gen <= done ? err : -ECANCELED;
        if (rc < 0)
            wlog_err("store", "fsync failed: %s", strerror(-rc));
        w->cb(w->arg, rc);
        free(w);
    }
}

static void on_sync_event(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
    struct store *st = arg;
    st->stats.syncs++;
    sync_complete(st, false);
}

int store_sync(struct store *st, store_synced_fn *cb, void *arg)
{
    if (!st->has_thread)
        return -ENOTSUP;
    if (st->nwaiters >= SYNC_WAITERS_MAX)
        return -EAGAIN;
    struct sync_waiter *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    pthread_mutex_lock(&st->mu);
    w->gen = ++st->req_gen;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    w->cb = cb;
    w->arg = arg;
    if (st->wait_tail)
        st->wait_tail->next = w;
    else
        st->wait_head = w;
    st->wait_tail = w;
    st->nwaiters++;
    return 0;
}

static void find_map(struct store *st);

/* ==== open / close ==================================================== */

static int rtxn_begin(struct store *st, MDB_txn **out)
{
    int rc;
    if (st->rtxn_depth > 0) {
        /* A read from inside a scan callback: the reusable txn is busy, so
         * this one gets its own (MDB_NOTLS allows several per thread). */
        rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, out);
        if (rc)
            return map_rc(st, rc);
        st->rtxn_depth++;
        return 0;
    }
    if (st->rtxn)
        rc = mdb_txn_renew(st->rtxn);
    else
        rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->rtxn);
    if (rc) {
        if (st->rtxn)
            mdb_txn_abort(st->rtxn);
        st->rtxn = NULL;
        return map_rc(st, rc);
    }
    *out = st->rtxn;
    st->rtxn_depth = 1;
    return 0;
}

static void rtxn_end(struct store *st, MDB_txn *txn)
{
    if (--st->rtxn_depth > 0 || txn != st->rtxn)
        mdb_txn_abort(txn); /* a nested read's own txn */
    else
        mdb_txn_reset(txn);
}

int store_open(const struct store_cfg *cfg, struct event_base *base, struct store **out,
               struct wisp_err *err)
{
    int rc;
    MDB_txn *txn = NULL;
    struct store *st = calloc(1, sizeof *st);
    if (!st)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    st->sync_fd = -1;
    st->lru.lru_next = st->lru.lru_prev = &st->lru;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    st->map_bytes = cfg->map_bytes;
    st->map_max_bytes = cfg->map_max_bytes < cfg->map_bytes ? cfg->map_bytes : cfg->map_max_bytes;
    st->trim_us = (int64_t)cfg->trim_ms * 1000;
    st->cap = cfg->cache_entries;
    if (st->cap) {
        st->nbuckets = 16;
        while (st->nbuckets < 2 * (size_t)st->cap)
            st->nbuckets *= 2;
        st->buckets = calloc(st->nbuckets, sizeof *st->buckets);
        if (!st->buckets) {
            rc = wisp_err_set(err, -ENOMEM, "out of memory");
            goto fail;
        }
    }
    rc = plat_mkdir_p(cfg->dir, 0700);
    if (rc < 0) {
        wisp_err_set(err, rc, "cannot create data dir %s: %s", cfg->dir, strerror(-rc));
        goto fail;
    }
    if ((rc = mdb_env_create(&st->env)) || (rc = mdb_env_set_maxdbs(st->env, STORE_NDB)) ||
        (rc = mdb_env_set_mapsize(st->env, (size_t)st->map_bytes))) {
        rc = map_rc(st, rc);
        wisp_err_set(err, rc, "lmdb setup: %s", mdb_strerror(-rc));
        goto fail;
    }
    /* NOSYNC only where the sync thread provides durability. NOTLS: the
     * reusable read txn is not tied to a thread slot. */
    unsigned flags = MDB_NOTLS | (cfg->async_sync ? MDB_NOSYNC : 0);
    rc = mdb_env_open(st->env, cfg->dir, flags, 0600);
    if (rc) {
        int e = rc;
        rc = map_rc(st, rc);
        wisp_err_set(err, rc, "cannot open store in %s: %s", cfg->dir, mdb_strerror(e));
        goto fail;
    }
    MDB_envinfo info;
    mdb_env_info(st->env, &info);
    if (info.me_mapsize > st->map_bytes)
        st->map_bytes = info.me_mapsize; /* an existing store may have grown already */
    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn))) {
        rc = map_rc(st, rc);
        wisp_err_set(err, rc, "lmdb txn: %s", strerror(-rc));
        goto fail;
    }
    for (int i = 0; i < STORE_NDB; i++) {
        if ((rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &st->dbi[i]))) {
            int e = rc;
            rc = map_rc(st, rc);
            wisp_err_set(err, rc, "lmdb open db %s: %s", db_names[i], mdb_strerror(e));
            goto fail;
        }
    }
    /* Schema: refuse a data dir written by a newer build, stamp a new one. */
    MDB_val k = {.mv_size = 6, .mv_data = "schema"}, v;
    rc = mdb_get(txn, st->dbi[STORE_META], &k, &v);
    if (rc == 0) {
        if (v.mv_size != 4) {
            rc = wisp_err_set(err, -EIO, "store meta schema record is corrupt");
            goto fail;
        }
        uint32_t ver;
        memcpy(&ver, v.mv_data, 4);
        if (ver > STORE_SCHEMA_VERSION) {
            rc = wisp_err_set(err, -EPROTO,
                              "data dir %s has schema %u, newer than this build's %d", cfg->dir,
                              ver, STORE_SCHEMA_VERSION);
            goto fail;
        }
        st->schema = ver;
    } else if (rc == MDB_NOTFOUND) {
        uint32_t ver = STORE_SCHEMA_VERSION;
        st->schema = ver;
        v.mv_size = 4;
        v.mv_data = &ver;
        if ((rc = mdb_put(txn, st->dbi[STORE_META], &k, &v, 0))) {
            rc = map_rc(st, rc);
            wisp_err_set(err, rc, "cannot stamp schema: %s", strerror(-rc));
            goto fail;
        }
    } else {
        rc = map_rc(st, rc);
        wisp_err_set(err, rc, "cannot read schema: %s", strerror(-rc));
        goto fail;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        rc = map_rc(st, rc);
        wisp_err_set(err, rc, "cannot commit store setup: %s", strerror(-rc));
        goto fail;
    }
    if (cfg->async_sync) {
        st->base = base;
        st->sync_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (st->sync_fd < 0) {
            rc = wisp_err_set(err, -errno, "eventfd: %s", strerror(errno));
            goto fail;
        }
        st->sync_ev = event_new(base, st->sync_fd, EV_READ | EV_PERSIST, on_sync_event, st);
        if (!st->sync_ev || event_add(st->sync_ev, NULL) < 0) {
            rc = wisp_err_set(err, -ENOMEM, "cannot register sync event");
            goto fail;
        }
        if ((rc = pthread_create(&st->sync_thread, NULL, sync_main, st))) {
            rc = wisp_err_set(err, -rc, "cannot start sync thread: %s", strerror(rc));
            goto fail;
        }
        st->has_thread = true;
    }
    st->stats.map_bytes = st->map_bytes;
    char real[PATH_MAX];
    if (realpath(cfg->dir, real)) {
        snprintf(st->data_path, sizeof st->data_path, "%s/data.mdb", real);
        find_map(st);
    }
    *out = st;
    return 0;
fail:
    if (txn)
        mdb_txn_abort(txn);
    store_close(st);
    return rc;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    if (st->has_thread) {
        pthread_mutex_lock(&st->mu);
        st->stopping = true;
        pthread_cond_signal(&st->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->sync_thread, NULL);
    }
    sync_complete(st, true);
    plat_buf_fini(&st->pack);
    if (st->sync_ev)
        event_free(st->sync_ev);
    if (st->sync_fd >= 0)
        close(st->sync_fd);
    if (st->rtxn)
        mdb_txn_abort(st->rtxn);
    if (st->env) {
        if (st->has_thread)
            mdb_env_sync(st->env, 1);
        mdb_env_close(st->env);
    }
    cache_free(st);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
}

/* ==== reads =========================================================== */

int store_entity_key(const char *ns, const char *path, char *buf)
{
    size_t nl = strlen(ns), pl = strlen(path);
    if (nl + 1 + pl > STORE_MAX_KEY)
        return -ENAMETOOLONG;
    memcpy(buf, ns, nl);
    buf[nl] = '\0';
    memcpy(buf + nl + 1, path, pl);
    return (int)(nl + 1 + pl);
}

static int decode(MDB_val *v, enum rec_kind *kind, int64_t *upd, json_t **doc)
{
    enum rec_kind k;
    int64_t u;
    int rc = codec_record_unpack(v->mv_data, v->mv_size, &k, &u, doc);
    if (rc < 0) {
        /* what the head says, where it says anything: 0 when unknown */
        int peek = codec_record_peek_kind(v->mv_data, v->mv_size);
        if (kind)
            *kind = peek > 0 ? (enum rec_kind)peek : (enum rec_kind)0;
        return rc;
    }
    if (kind)
        *kind = k;
    if (upd)
        *upd = u;
    return 0;
}

struct decoded {
    enum rec_kind kind;
    int64_t updated;
    json_t *doc;
};

static int decode_fn(void *arg, const void *data, size_t len)
{
    struct decoded *d = arg;
    return codec_record_unpack(data, len, &d->kind, &d->updated, &d->doc);
}

int store_get(struct store *st, enum store_db db, const void *key, size_t klen,
              enum rec_kind *kind, int64_t *updated_ms, json_t **doc)
{
    if (db == STORE_ENTITIES && st->cap) {
        struct cache_ent *e = *cache_slot(st, key, klen);
        if (e) {
            st->stats.cache_hits++;
            lru_unlink(e);
            lru_push(st, e);
            if (kind)
                *kind = e->kind;
            if (updated_ms)
                *updated_ms = e->updated_ms;
            *doc = json_incref(e->doc);
            return 0;
        }
        st->stats.cache_misses++;
    }
    struct decoded d = {0};
    int rc = store_get_raw(st, db, key, klen, decode_fn, &d);
    if (rc < 0)
        return rc;
    *doc = d.doc;
    if (db == STORE_ENTITIES)
        cache_put(st, key, klen, d.kind, d.updated, *doc);
    if (kind)
        *kind = d.kind;
    if (updated_ms)
        *updated_ms = d.updated;
    return 0;
}

int store_get_raw(struct store *st, enum store_db db, const void *key, size_t klen,
                  store_raw_fn *fn, void *arg)
{
    MDB_txn *txn;
    int rc = rtxn_begin(st, &txn);
    if (rc < 0)
        return rc;
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key}, v;
    rc = map_rc(st, mdb_get(txn, st->dbi[db], &k, &v));
    if (rc == 0)
        rc = fn(arg, v.mv_data, v.mv_size);
    rtxn_end(st, txn);
    return rc;
}

int store_entity_get(struct store *st, const char *ns, const char *path, enum rec_kind *kind,
                     json_t **doc)
{
    char key[STORE_MAX_KEY];
    int n = store_entity_key(ns, path, key);
    if (n < 0)
        return n;
    return store_get(st, STORE_ENTITIES, key, (size_t)n, kind, NULL, doc);
}

const char *store_rec_key(const struct store_rec *r, size_t *len)
{
    *len = r->key.mv_size;
    return r->key.mv_data;
}

const void *store_rec_val(const struct store_rec *r, size_t *len)
{
    *len = r->val.mv_size;
    return r->val.mv_data;
}

int store_rec_kind(const struct store_rec *r)
{
    return codec_record_peek_kind(r->val.mv_data, r->val.mv_size);
}

int store_rec_doc(const struct store_rec *r, json_t **doc)
{
    MDB_val v = r->val;
    return decode(&v, NULL, NULL, doc);
}

static int scan_txn(struct store *st, MDB_txn *txn, enum store_db db, const void *prefix,
                    size_t plen, bool reverse, store_scan_fn *fn, void *arg)
{
    MDB_cursor *cur = NULL;
    int rc = map_rc(st, mdb_cursor_open(txn, st->dbi[db], &cur));
    if (rc < 0)
        return rc;
    struct store_rec r = {.st = st};
    int mrc;
    if (!reverse) {
        r.key.mv_size = plen;
        r.key.mv_data = (void *)prefix;
        mrc = plen ? mdb_cursor_get(cur, &r.key, &r.val, MDB_SET_RANGE)
                   : mdb_cursor_get(cur, &r.key, &r.val, MDB_FIRST);
    } else {
        /* Position past the last key with this prefix: the prefix with its
         * last byte incremented (carrying), then step back. */
        unsigned char hi[STORE_MAX_KEY];
        size_t hl = plen;
        if (plen > sizeof hi) {
            mdb_cursor_close(cur);
            return -ENAMETOOLONG;
        }
        memcpy(hi, prefix, plen);
        while (hl > 0 && hi[hl - 1] == 0xff)
            hl--;
        if (hl == 0) {
            mrc = mdb_cursor_get(cur, &r.key, &r.val, MDB_LAST);
        } else {
            hi[hl - 1]++;
            r.key.mv_size = hl;
            r.key.mv_data = hi;
            mrc = mdb_cursor_get(cur, &r.key, &r.val, MDB_SET_RANGE);
            mrc = mrc == MDB_NOTFOUND ? mdb_cursor_get(cur, &r.key, &r.val, MDB_LAST)
                                      : mdb_cursor_get(cur, &r.key, &r.val, MDB_PREV);
        }
    }
    while (mrc == 0) {
        if (r.key.mv_size < plen || memcmp(r.key.mv_data, prefix, plen) != 0)
            break;
        rc = fn(arg, &r);
        if (rc != 0)
            break;
        mrc = mdb_cursor_get(cur, &r.key, &r.val, reverse ? MDB_PREV : MDB_NEXT);
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = map_rc(st, mrc);
    if (rc > 0)
        rc = 0;
    mdb_cursor_close(cur);
    return rc;
}

int store_scan(struct store *st, enum store_db db, const void *prefix, size_t plen, bool reverse,
               store_scan_fn *fn, void *arg)
{
    MDB_txn *txn;
    int rc = rtxn_begin(st, &txn);
    if (rc < 0)
        return rc;
    rc = scan_txn(st, txn, db, prefix, plen, reverse, fn, arg);
    rtxn_end(st, txn);
    return rc;
}

int store_txn_scan(struct store_txn *t, enum store_db db, const void *prefix, size_t plen,
                   store_scan_fn *fn, void *arg)
{
    return scan_txn(t->st, t->txn, db, prefix, plen, false, fn, arg);
}

/* ==== writes ========================================================== */

static int grow_map(struct store *st, struct wisp_err *err)
{
    if (st->map_bytes >= st->map_max_bytes)
        return wisp_err_set(err, -ENOSPC, "store is full: the map is at its limit of %llu MB",
                            (unsigned long long)(st->map_max_bytes >> 20));
    uint64_t next = st->map_bytes * 2;
    if (next > st->map_max_bytes)
        next = st->map_max_bytes;
    /* No transaction may be live while the map is resized. */
    if (st->rtxn) {
        mdb_txn_abort(st->rtxn);
        st->rtxn = NULL;
    }
    int rc = mdb_env_set_mapsize(st->env, (size_t)next);
    if (rc)
        return wisp_err_set(err, map_rc(st, rc), "cannot grow the store map to %llu MB: %s",
                            (unsigned long long)(next >> 20), mdb_strerror(rc));
    wlog_info("store", "map grown from %llu MB to %llu MB",
              (unsigned long long)(st->map_bytes >> 20), (unsigned long long)(next >> 20));
    st->map_bytes = next;
    st->stats.map_bytes = next;
    st->stats.grows++;
    find_map(st);
    return 0;
}

int store_write(struct store *st, store_write_fn *fn, void *arg, struct wisp_err *err)
{
    for (int attempt = 0;; attempt++) {
        struct store_txn t = {.st = st};
        st->map_full = false;
        int rc = mdb_txn_begin(st->env, NULL, 0, &t.txn);
        if (rc)
            return wisp_err_set(err, map_rc(st, rc), "cannot begin write: %s", mdb_strerror(rc));
        rc = fn(&t, arg);
        if (rc < 0) {
            mdb_txn_abort(t.txn);
        } else {
            int mrc = mdb_txn_commit(t.txn);
            rc = map_rc(st, mrc);
            /* Under a stream of writes the map's pages, touched and
             * faulted in around (64 KB a fault), were 10 to 15 MB of RSS
             * within a second at 2,000 activations a second: trimmed
             * after commits, at most every trim_us. Each trim costs the
             * refaults of the hot pages (measured in the README). */
            if (mrc == 0 && st->trim_us && plat_clock_mono_us() - st->trimmed_us >= st->trim_us)
                store_trim(st);
            if (rc == -ENOSPC && !st->map_full)
                return wisp_err_set(err, rc, "store write failed: the disk is full");
            if (rc < 0 && rc != -ENOSPC)
                return wisp_err_set(err, rc, "store commit failed: %s", mdb_strerror(mrc));
        }
        if (rc == -ENOSPC && st->map_full && attempt < 8) {
            int g = grow_map(st, err);
            if (g < 0)
                return g;
            continue;
        }
        if (rc == -ENOSPC && !st->map_full)
            return wisp_err_set(err, rc, "store write failed: the disk is full");
        return rc;
    }
}

int store_txn_get(struct store_txn *t, enum store_db db, const void *key, size_t klen,
                  enum rec_kind *kind, int64_t *updated_ms, json_t **doc)
{
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key}, v;
    int rc = map_rc(t->st, mdb_get(t->txn, t->st->dbi[db], &k, &v));
    if (rc < 0)
        return rc;
    return decode(&v, kind, updated_ms, doc);
}

int store_txn_get_raw(struct store_txn *t, enum store_db db, const void *key, size_t klen,
                      store_raw_fn *fn, void *arg)
{
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key}, v;
    int rc = map_rc(t->st, mdb_get(t->txn, t->st->dbi[db], &k, &v));
    return rc < 0 ? rc : fn(arg, v.mv_data, v.mv_size);
}

unsigned store_schema(const struct store *st)
{
    return st->schema;
}

int store_txn_set_schema(struct store_txn *t, unsigned version)
{
    uint32_t ver = version;
    int rc = store_txn_put_raw(t, STORE_META, "schema", 6, &ver, sizeof ver);
    if (rc == 0)
        t->st->schema = version;
    return rc;
}

int store_txn_put_raw(struct store_txn *t, enum store_db db, const void *key, size_t klen,
                      const void *rec, size_t len)
{
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    MDB_val v = {.mv_size = len, .mv_data = (void *)rec};
    int rc = map_rc(t->st, mdb_put(t->txn, t->st->dbi[db], &k, &v, 0));
    if (rc == 0 && db == STORE_ENTITIES)
        cache_drop(t->st, key, klen);
    return rc;
}

int store_txn_put(struct store_txn *t, enum store_db db, const void *key, size_t klen,
                  enum rec_kind kind, int64_t updated_ms, const json_t *doc)
{
    struct plat_buf *buf = &t->st->pack;
    int rc = codec_record_pack(buf, kind, updated_ms, doc);
    if (rc == 0)
        rc = store_txn_put_raw(t, db, key, klen, buf->data, buf->len);
    plat_buf_trim(buf);
    return rc;
}

int store_txn_del(struct store_txn *t, enum store_db db, const void *key, size_t klen)
{
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    int rc = map_rc(t->st, mdb_del(t->txn, t->st->dbi[db], &k, NULL));
    if (rc == 0 && db == STORE_ENTITIES)
        cache_drop(t->st, key, klen);
    return rc;
}

void store_get_stats(struct store *st, struct store_stats *out)
{
    MDB_envinfo info;
    MDB_stat s;
    *out = st->stats;
    if (mdb_env_info(st->env, &info) == 0 && mdb_env_stat(st->env, &s) == 0)
        out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * s.ms_psize;
}

/* LMDB does not tell where it mapped the file (mdb_env_info's address is
 * only set with MDB_FIXEDMAP), so find data.mdb in /proc/self/maps. Called
 * at open and after every resize, which remaps. */
static void find_map(struct store *st)
{
    st->map_addr = NULL;
    st->map_len = 0;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return;
    char line[PATH_MAX + 128];
    while (fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (!path)
            continue;
        path[strcspn(path, "\n")] = '\0';
        if (strcmp(path, st->data_path) != 0)
            continue;
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (!st->map_addr || hi - lo > st->map_len)) {
            st->map_addr = (void *)lo;
            st->map_len = hi - lo;
        }
    }
    fclose(f);
}

void store_trim(struct store *st)
{
    /* Without MDB_WRITEMAP the map is read-only and file-backed: dropping
     * its pages from our page tables loses nothing (a read holding a
     * pointer into it faults the same bytes back in). */
    st->trimmed_us = plat_clock_mono_us();
    if (st->map_addr)
        madvise(st->map_addr, st->map_len, MADV_DONTNEED);
}

/* ==== backup and restore ================================================ */

int store_backup(struct store *st, const char *file, struct wisp_err *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%d", file, (int)getpid()) >= (int)sizeof tmp)
        return wisp_err_set(err, -ENAMETOOLONG, "%s: name too long", file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return wisp_err_set(err, -errno, "cannot create %s: %s", tmp, strerror(errno));
    int rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
    if (rc)
        rc = wisp_err_set(err, rc > 0 ? -EIO : rc, "cannot copy the store: %s", mdb_strerror(rc));
    else if (fsync(fd) < 0)
        rc = wisp_err_set(err, -errno, "cannot sync %s: %s", tmp, strerror(errno));
    if (close(fd) < 0 && rc == 0)
        rc = wisp_err_set(err, -errno, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, file) < 0)
        rc = wisp_err_set(err, -errno, "cannot rename %s to %s: %s", tmp, file, strerror(errno));
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* file as a backup: read-only, without a lock file (nothing else opens
 * it). 0 or -errno with err. */
static int backup_check(const char *file, struct store_backup_info *info, struct wisp_err *err)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_stat ms;
    MDB_val k = {.mv_size = 6, .mv_data = "schema"}, v;
    int rc = mdb_env_create(&env);
    if (rc == 0 && (rc = mdb_env_set_maxdbs(env, STORE_NDB)) == 0)
        rc = mdb_env_open(env, file, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc) {
        rc = wisp_err_set(err, rc > 0 ? -EINVAL : rc, "%s is not a Wisp backup: %s", file,
                          mdb_strerror(rc));
        goto out;
    }
    *info = (struct store_backup_info){0};
    uint32_t ver = 0;
    if (mdb_dbi_open(txn, "meta", 0, &dbi) || mdb_get(txn, dbi, &k, &v) || v.mv_size != 4) {
        rc = wisp_err_set(err, -EINVAL, "%s is not a Wisp backup: no schema record", file);
        goto out;
    }
    memcpy(&ver, v.mv_data, 4);
    info->schema = ver;
    if (ver > STORE_SCHEMA_VERSION) {
        rc = wisp_err_set(err, -EPROTO, "%s has schema %u, newer than this build's %d", file, ver,
                          STORE_SCHEMA_VERSION);
        goto out;
    }
    const char *const dbs[] = {"keys", "entities", "activations"};
    uint64_t *const n[] = {&info->keys, &info->entities, &info->activations};
    for (size_t i = 0; i < WISP_ARRAY_LEN(dbs); i++)
        if (mdb_dbi_open(txn, dbs[i], 0, &dbi) == 0 && mdb_stat(txn, dbi, &ms) == 0)
            *n[i] = ms.ms_entries;
out:
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    return rc;
}

int store_restore(const char *dir, const char *file, struct store_backup_info *info,
                  struct wisp_err *err)
{
    char cur[PATH_MAX], tmp[PATH_MAX], old[PATH_MAX], lock[PATH_MAX];
    if (snprintf(old, sizeof old, "%s/data.mdb.pre-restore", dir) >= (int)sizeof old)
        return wisp_err_set(err, -ENAMETOOLONG, "%s: name too long", dir);
    snprintf(cur, sizeof cur, "%s/data.mdb", dir);
    snprintf(tmp, sizeof tmp, "%s/data.mdb.restore-%d", dir, (int)getpid());
    snprintf(lock, sizeof lock, "%s/lock.mdb", dir);
    int rc = backup_check(file, info, err);
    if (rc < 0)
        return rc;
    if ((rc = plat_mkdir_p(dir, 0700)) < 0)
        return wisp_err_set(err, rc, "cannot create data dir %s: %s", dir, strerror(-rc));
    if ((rc = plat_copy_file(file, tmp, 0600, true)) < 0) {
        unlink(tmp);
        return wisp_err_set(err, rc, "cannot copy %s into %s: %s", file, dir, strerror(-rc));
    }
    struct stat sb;
    bool had = stat(cur, &sb) == 0;
    if (had && rename(cur, old) < 0)
        rc = wisp_err_set(err, -errno, "cannot keep %s as %s: %s", cur, old, strerror(errno));
    else if (rename(tmp, cur) < 0)
        rc = wisp_err_set(err, -errno, "cannot rename %s to %s: %s", tmp, cur, strerror(errno));
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    info->replaced = had;
    /* the old store's reader table: nothing has it open, LMDB makes it anew */
    if (unlink(lock) < 0 && errno != ENOENT)
        return wisp_err_set(err, -errno, "cannot remove %s: %s", lock, strerror(errno));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* the renames */
        close(dfd);
    }
    return 0;
}
