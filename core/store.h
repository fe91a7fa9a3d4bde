/* core/store.h - the one LMDB environment, its named databases and msgpack
 * records (core/codec.h).
 *
 * Loop thread only (plus the store's own fsync thread, which never touches a
 * transaction). Reads are served from one reusable read transaction and, for
 * entities, from a bounded cache that every write to the same key clears.
 * Writes run inside store_write(), which retries the whole write after
 * growing the map when LMDB reports it full, so a write function must only
 * touch the store through the txn it is given.
 *
 * Durability: in wispd commits do not fsync on the loop thread. A caller that
 * must not answer before the data is on disk asks store_sync(), which hands
 * the fsync to the store's sync thread and calls back on the loop when every
 * commit made so far is durable (redis's bio idea). A crash of the process
 * alone (kill -9) loses nothing committed; a power cut loses at most the
 * commits whose sync had not completed. The offline admin tool opens the
 * store with synchronous commits instead. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "wisp.h"

struct event_base;
struct store;
struct store_txn;

enum store_db {
    STORE_KEYS = 0,    /* key uuid -> REC_KEY {namespace, salt, hash, created} */
    STORE_ENTITIES,    /* "ns\0path" -> REC_ACTION | REC_PACKAGE | REC_TRIGGER | REC_RULE */
    STORE_ACTIVATIONS, /* "ns\0id" -> REC_ACTIVATION (core/act.c) */
    STORE_ACT_INDEX,   /* schema 1 only: ns + time + id; emptied by act's migration */
    STORE_META,        /* "schema" and other small facts */
    STORE_ACT_LEGACY,  /* id -> key, for records whose ids are not time-ordered */
    STORE_NDB
};

/* The layout a data dir is stamped with. 2: activations keyed by namespace
 * and id, no act_index. A store of schema 1 opens, and core/act.c moves it
 * to 2 (store_schema, store_txn_set_schema); a newer one is refused. */
#define STORE_SCHEMA_VERSION 2

#define STORE_MAX_KEY 480 /* LMDB's default key limit is 511 bytes */

struct store_cfg {
    const char *dir;
    uint64_t map_bytes;     /* initial map size */
    uint64_t map_max_bytes; /* the map grows by doubling up to this */
    unsigned cache_entries; /* entity cache bound; 0 disables it */
    bool async_sync;        /* wispd: fsync on the sync thread (needs base) */
    unsigned trim_ms;       /* store_trim after commits at most this often; 0: never there */
};

/* Opens (creating when absent) the environment in cfg->dir. base is needed
 * when async_sync is set. 0, or -errno with err filled. */
int store_open(const struct store_cfg *cfg, struct event_base *base, struct store **out,
               struct wisp_err *err) WISP_MUST_CHECK;
/* Writes a consistent, compacted copy of the store to file: an LMDB data
 * file, made from one read transaction (MDB_CP_COMPACT), so writers go on,
 * a running wispd's too. It goes to file.tmp-PID first, is synced, and
 * replaces file only when complete. 0 or -errno with err. */
int store_backup(struct store *st, const char *file, struct wisp_err *err) WISP_MUST_CHECK;

/* What a backup holds (store_restore). */
struct store_backup_info {
    unsigned schema;
    uint64_t keys, entities, activations;
    bool replaced; /* a store was there: it is dir/data.mdb.pre-restore now */
};
/* Puts the backup in file in place of dir's store (dir is made when
 * absent). No process may have dir's store open: the caller holds wispd's
 * data dir lock. file is checked first: an LMDB data file with a schema
 * this build reads (an older one is migrated when wispd next opens it).
 * The store it replaces stays as dir/data.mdb.pre-restore. 0 or -errno. */
int store_restore(const char *dir, const char *file, struct store_backup_info *info,
                  struct wisp_err *err) WISP_MUST_CHECK;

/* Lets the sync thread finish (waiters still queued are answered with the
 * result of that last sync), closes the environment. NULL is a no-op. */
void store_close(struct store *st);

/* Builds the entities key for ns and path ("name" or "pkg/name") into buf
 * (STORE_MAX_KEY bytes); returns its length or -ENAMETOOLONG. */
int store_entity_key(const char *ns, const char *path, char *buf) WISP_MUST_CHECK;

/* store_get on the entities key of ns and path. */
int store_entity_get(struct store *st, const char *ns, const char *path, enum rec_kind *kind,
                     json_t **doc) WISP_MUST_CHECK;

/* Reads one record. *doc is a new reference the caller must json_decref()
 * and must not modify (cached documents are shared). kind/updated_ms may be
 * NULL. 0, -ENOENT, -EBADMSG (undecodable), -EPROTO (newer schema), -EIO. */
int store_get(struct store *st, enum store_db db, const void *key, size_t klen,
              enum rec_kind *kind, int64_t *updated_ms, json_t **doc) WISP_MUST_CHECK;

/* Calls fn(arg, bytes, len) with one record's stored bytes, valid only
 * during the call (for callers that keep a decoded copy and only need to
 * know whether it still matches). fn's result is returned; -ENOENT, -EIO. */
typedef int store_raw_fn(void *arg, const void *data, size_t len);
int store_get_raw(struct store *st, enum store_db db, const void *key, size_t klen,
                  store_raw_fn *fn, void *arg) WISP_MUST_CHECK;

/* One record met by a scan. rec and its key are valid only during the
 * callback; store_rec_doc decodes it (new reference) when the caller wants it. */
struct store_rec;
const char *store_rec_key(const struct store_rec *r, size_t *len);
const void *store_rec_val(const struct store_rec *r, size_t *len); /* the record's bytes */
int store_rec_kind(const struct store_rec *r); /* -EBADMSG if unreadable */
int store_rec_doc(const struct store_rec *r, json_t **doc) WISP_MUST_CHECK;
/* Return 0 to go on, 1 to stop, <0 to stop with that error. */
typedef int store_scan_fn(void *arg, const struct store_rec *r);
/* Visits records whose key starts with prefix, in key order (reverse order
 * when reverse is set). Returns 0 or the first negative code. */
int store_scan(struct store *st, enum store_db db, const void *prefix, size_t plen, bool reverse,
               store_scan_fn *fn, void *arg) WISP_MUST_CHECK;

/* A write: fn runs inside a write transaction and returns 0 to commit or a
 * negative code to abort. When the map fills, fn is run again after the map
 * grows; at the growth limit or on a full disk the result is -ENOSPC. */
typedef int store_write_fn(struct store_txn *txn, void *arg);
int store_write(struct store *st, store_write_fn *fn, void *arg, struct wisp_err *err)
    WISP_MUST_CHECK;
/* A record that cannot be decoded gives -EBADMSG (-EPROTO: a newer schema)
 * with *kind what its head names, or 0. */
int store_txn_get(struct store_txn *t, enum store_db db, const void *key, size_t klen,
                  enum rec_kind *kind, int64_t *updated_ms, json_t **doc) WISP_MUST_CHECK;
int store_txn_put(struct store_txn *t, enum store_db db, const void *key, size_t klen,
                  enum rec_kind kind, int64_t updated_ms, const json_t *doc) WISP_MUST_CHECK;
/* A record already encoded (codec_record_pack or codec_record_begin...). */
int store_txn_put_raw(struct store_txn *t, enum store_db db, const void *key, size_t klen,
                      const void *rec, size_t len) WISP_MUST_CHECK;
/* store_scan inside a write, seeing the write's own changes. The callback
 * must not write (collect keys, then delete them after the scan). */
int store_txn_scan(struct store_txn *t, enum store_db db, const void *prefix, size_t plen,
                   store_scan_fn *fn, void *arg) WISP_MUST_CHECK;
/* store_get_raw inside a write: the bytes are valid until the next change
 * made through t. */
int store_txn_get_raw(struct store_txn *t, enum store_db db, const void *key, size_t klen,
                      store_raw_fn *fn, void *arg) WISP_MUST_CHECK;
/* The schema the data dir was stamped with when it was opened (a new one:
 * STORE_SCHEMA_VERSION), and a write stamping it anew. */
unsigned store_schema(const struct store *st);
int store_txn_set_schema(struct store_txn *t, unsigned version) WISP_MUST_CHECK;
/* 0 or -ENOENT. */
int store_txn_del(struct store_txn *t, enum store_db db, const void *key, size_t klen)
    WISP_MUST_CHECK;

/* Calls cb(arg, 0) on the loop once every commit made so far is on disk, or
 * cb(arg, -errno) if the sync failed. store_close syncs before it returns,
 * so waiters still queued then get 0 (or the sync's error); -ECANCELED
 * only when no sync thread ever ran. Never calls
 * cb from inside store_sync. -EAGAIN when too many waiters are queued. */
typedef void store_synced_fn(void *arg, int rc);
int store_sync(struct store *st, store_synced_fn *cb, void *arg) WISP_MUST_CHECK;

/* Lets go of the map's resident pages (they stay in the page cache and come
 * back on the next touch), so wispd's RSS shows its own memory and not the
 * store's history. Cheap; call every few seconds. */
void store_trim(struct store *st);

struct store_stats {
    uint64_t map_bytes, used_bytes, grows, cache_hits, cache_misses, syncs;
};
void store_get_stats(struct store *st, struct store_stats *out);
