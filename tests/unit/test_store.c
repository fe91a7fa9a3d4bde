/* tests/unit/test_store.c - the LMDB store (core/store.h) on a real
 * environment in a fresh temporary directory per test. */
#include <errno.h>
#include <limits.h>
#include <event2/event.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "plat.h"
#include "store.h"
#include "wjson.h"

/* ==== helpers =========================================================== */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    CHECK_EQ_INT(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/wisp-test-store-XXXXXX";
    char *d = mkdtemp(tmpl);
    CHECK(d != NULL);
    return d ? strdup(d) : NULL;
}

static struct store *open_store(const char *dir, uint64_t map, uint64_t max, unsigned cache,
                                bool async, struct event_base *base)
{
    struct store_cfg cfg = {.dir = dir,
                            .map_bytes = map,
                            .map_max_bytes = max,
                            .cache_entries = cache,
                            .async_sync = async};
    struct store *st = NULL;
    struct wisp_err err = {0};
    int rc = store_open(&cfg, base, &st, &err);
    if (rc != 0)
        fprintf(stderr, "store_open(%s): %d %s\n", dir, rc, err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK(st != NULL);
    return st;
}

static struct store *open_default(const char *dir, unsigned cache)
{
    return open_store(dir, 4u << 20, 64u << 20, cache, false, NULL);
}

struct put_arg {
    enum store_db db;
    const void *key;
    size_t klen;
    enum rec_kind kind;
    int64_t upd;
    const json_t *doc;
    int put_rc;
};

static int put_fn(struct store_txn *t, void *arg)
{
    struct put_arg *p = arg;
    p->put_rc = store_txn_put(t, p->db, p->key, p->klen, p->kind, p->upd, p->doc);
    return p->put_rc;
}

static int put(struct store *st, enum store_db db, const char *key, enum rec_kind kind,
               int64_t upd, const json_t *doc)
{
    struct put_arg p = {db, key, strlen(key), kind, upd, doc, 0};
    struct wisp_err err = {0};
    return store_write(st, put_fn, &p, &err);
}

struct del_arg {
    enum store_db db;
    const char *key;
};

static int del_fn(struct store_txn *t, void *arg)
{
    struct del_arg *d = arg;
    return store_txn_del(t, d->db, d->key, strlen(d->key));
}

static int del(struct store *st, enum store_db db, const char *key)
{
    struct del_arg d = {db, key};
    return store_write(st, del_fn, &d, NULL);
}

static json_t *doc_v(const char *tag, json_int_t v)
{
    return json_pack("{s:s, s:I}", "tag", tag, "v", v);
}

/* Reads key and checks its kind, time and "v" member. */
static void expect_doc(struct store *st, enum store_db db, const char *key, enum rec_kind kind,
                       int64_t upd, json_int_t v)
{
    enum rec_kind k = 0;
    int64_t u = 0;
    json_t *doc = NULL;
    int rc = store_get(st, db, key, strlen(key), &k, &u, &doc);
    CHECK_EQ_INT(rc, 0);
    if (rc == 0) {
        CHECK_EQ_INT(k, kind);
        CHECK_EQ_INT(u, upd);
        CHECK_EQ_INT(json_integer_value(json_object_get(doc, "v")), v);
    }
    json_decref(doc);
}

static void expect_missing(struct store *st, enum store_db db, const char *key)
{
    json_t *doc = NULL;
    CHECK_EQ_INT(store_get(st, db, key, strlen(key), NULL, NULL, &doc), -ENOENT);
    CHECK(doc == NULL);
}

/* Opens the data dir with plain LMDB (store closed) and puts raw bytes. */
static void raw_put(const char *dir, const char *dbname, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    CHECK_EQ_INT(mdb_env_create(&env), 0);
    CHECK_EQ_INT(mdb_env_set_maxdbs(env, 8), 0);
    CHECK_EQ_INT(mdb_env_set_mapsize(env, (size_t)64 << 20), 0);
    CHECK_EQ_INT(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
    CHECK_EQ_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ_INT(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    MDB_val v = {.mv_size = vlen, .mv_data = (void *)val};
    CHECK_EQ_INT(mdb_put(txn, dbi, &k, &v, 0), 0);
    CHECK_EQ_INT(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Reads raw bytes with plain LMDB; returns the length or -1. */
static int raw_get(const char *dir, const char *dbname, const char *key, void *out, size_t cap)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int n = -1;
    CHECK_EQ_INT(mdb_env_create(&env), 0);
    CHECK_EQ_INT(mdb_env_set_maxdbs(env, 8), 0);
    CHECK_EQ_INT(mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0600), 0);
    CHECK_EQ_INT(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    if (mdb_dbi_open(txn, dbname, 0, &dbi) == 0) {
        MDB_val k = {.mv_size = strlen(key), .mv_data = (void *)key}, v;
        if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size <= cap) {
            memcpy(out, v.mv_data, v.mv_size);
            n = (int)v.mv_size;
        }
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

static int64_t now_ms(void)
{
    return plat_clock_mono_us() / 1000;
}

/* Runs the loop in short slices until *flag is set or 5 s pass. */
static void run_until(struct event_base *base, const int *flag)
{
    int64_t deadline = now_ms() + 5000;
    while (!*flag && now_ms() < deadline) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

/* ==== open / close / basic records ====================================== */

static void store_reopen_keeps_data_in_every_db(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 16);
    const enum store_db dbs[] = {STORE_KEYS,      STORE_ENTITIES, STORE_ACTIVATIONS,
                                 STORE_ACT_INDEX, STORE_META,     STORE_ACT_LEGACY};
    for (size_t i = 0; i < WISP_ARRAY_LEN(dbs); i++) {
        json_t *d = doc_v("x", (json_int_t)i + 100);
        CHECK_EQ_INT(put(st, dbs[i], "k1", REC_ACTION + (int)i, 1000 + (int64_t)i, d), 0);
        json_decref(d);
    }
    store_close(st);
    st = open_default(dir, 16);
    for (size_t i = 0; i < WISP_ARRAY_LEN(dbs); i++)
        expect_doc(st, dbs[i], "k1", REC_ACTION + (int)i, 1000 + (int64_t)i, (json_int_t)i + 100);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_databases_are_separate(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 0);
    json_t *d = doc_v("keys", 1);
    CHECK_EQ_INT(put(st, STORE_KEYS, "same", REC_KEY, 1, d), 0);
    json_decref(d);
    expect_doc(st, STORE_KEYS, "same", REC_KEY, 1, 1);
    expect_missing(st, STORE_ENTITIES, "same");
    expect_missing(st, STORE_ACTIVATIONS, "same");
    expect_missing(st, STORE_ACT_INDEX, "same");
    expect_missing(st, STORE_META, "same");
    expect_missing(st, STORE_ACT_LEGACY, "same");
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_put_get_del_in_each_db(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 8);
    const enum store_db dbs[] = {STORE_KEYS,      STORE_ENTITIES, STORE_ACTIVATIONS,
                                 STORE_ACT_INDEX, STORE_META,     STORE_ACT_LEGACY};
    for (size_t i = 0; i < WISP_ARRAY_LEN(dbs); i++) {
        expect_missing(st, dbs[i], "key");
        json_t *d = doc_v("a", 7);
        CHECK_EQ_INT(put(st, dbs[i], "key", REC_RULE, -5, d), 0);
        json_decref(d);
        expect_doc(st, dbs[i], "key", REC_RULE, -5, 7);
        /* overwrite */
        d = doc_v("b", 8);
        CHECK_EQ_INT(put(st, dbs[i], "key", REC_TRIGGER, 6, d), 0);
        json_decref(d);
        expect_doc(st, dbs[i], "key", REC_TRIGGER, 6, 8);
        CHECK_EQ_INT(del(st, dbs[i], "key"), 0);
        expect_missing(st, dbs[i], "key");
        CHECK_EQ_INT(del(st, dbs[i], "key"), -ENOENT);
    }
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_get_with_null_kind_and_time(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 0);
    json_t *d = doc_v("a", 1);
    CHECK_EQ_INT(put(st, STORE_ACTIVATIONS, "a", REC_ACTIVATION, 9, d), 0);
    json_decref(d);
    json_t *doc = NULL;
    CHECK_EQ_INT(store_get(st, STORE_ACTIVATIONS, "a", 1, NULL, NULL, &doc), 0);
    CHECK(doc && json_integer_value(json_object_get(doc, "v")) == 1);
    json_decref(doc);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_binary_keys_with_nul_bytes_are_distinct(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 8);
    char k1[STORE_MAX_KEY], k2[STORE_MAX_KEY];
    int l1 = store_entity_key("ns", "a", k1);
    int l2 = store_entity_key("ns\0", "a", k2); /* same bytes: "ns\0a" */
    CHECK_EQ_INT(l1, 4);
    CHECK_EQ_INT(l2, 4);
    CHECK(memcmp(k1, "ns\0a", 4) == 0);
    char k3[STORE_MAX_KEY];
    int l3 = store_entity_key("nsa", "", k3); /* "nsa\0" */
    CHECK_EQ_INT(l3, 4);
    json_t *d1 = doc_v("1", 1), *d3 = doc_v("3", 3);
    struct put_arg p1 = {STORE_ENTITIES, k1, (size_t)l1, REC_ACTION, 1, d1, 0};
    struct put_arg p3 = {STORE_ENTITIES, k3, (size_t)l3, REC_ACTION, 3, d3, 0};
    CHECK_EQ_INT(store_write(st, put_fn, &p1, NULL), 0);
    CHECK_EQ_INT(store_write(st, put_fn, &p3, NULL), 0);
    json_t *got = NULL;
    CHECK_EQ_INT(store_get(st, STORE_ENTITIES, k1, (size_t)l1, NULL, NULL, &got), 0);
    CHECK(got && json_integer_value(json_object_get(got, "v")) == 1);
    json_decref(got);
    got = NULL;
    CHECK_EQ_INT(store_get(st, STORE_ENTITIES, k3, (size_t)l3, NULL, NULL, &got), 0);
    CHECK(got && json_integer_value(json_object_get(got, "v")) == 3);
    json_decref(got);
    json_decref(d1);
    json_decref(d3);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_entity_key_limits(void)
{
    char buf[STORE_MAX_KEY];
    char ns[400], path[400];
    memset(ns, 'n', sizeof ns);
    memset(path, 'p', sizeof path);
    ns[200] = '\0';
    path[279] = '\0'; /* 200 + 1 + 279 = 480 */
    CHECK_EQ_INT(store_entity_key(ns, path, buf), STORE_MAX_KEY);
    CHECK_EQ_INT(buf[200], '\0');
    CHECK_EQ_INT(buf[201], 'p');
    CHECK_EQ_INT(buf[STORE_MAX_KEY - 1], 'p');
    path[279] = 'p';
    path[280] = '\0';
    CHECK_EQ_INT(store_entity_key(ns, path, buf), -ENAMETOOLONG);
    CHECK_EQ_INT(store_entity_key("guest", "pkg/act", buf), 13);
    CHECK(memcmp(buf, "guest\0pkg/act", 13) == 0);
}

static void store_entity_get_reads_by_ns_and_path(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 8);
    char key[STORE_MAX_KEY];
    int kl = store_entity_key("guest", "pkg/act", key);
    CHECK(kl > 0);
    json_t *d = doc_v("e", 42);
    struct put_arg p = {STORE_ENTITIES, key, (size_t)kl, REC_ACTION, 1, d, 0};
    CHECK_EQ_INT(store_write(st, put_fn, &p, NULL), 0);
    enum rec_kind k = 0;
    json_t *doc = NULL;
    CHECK_EQ_INT(store_entity_get(st, "guest", "pkg/act", &k, &doc), 0);
    CHECK_EQ_INT(k, REC_ACTION);
    CHECK_EQ_INT(json_integer_value(json_object_get(doc, "v")), 42);
    json_decref(doc);
    doc = NULL;
    CHECK_EQ_INT(store_entity_get(st, "guest", "pkg", &k, &doc), -ENOENT);
    CHECK_EQ_INT(store_entity_get(st, "gues", "tpkg/act", &k, &doc), -ENOENT);
    char longp[600];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    CHECK_EQ_INT(store_entity_get(st, "guest", longp, &k, &doc), -ENAMETOOLONG);
    CHECK(doc == NULL);
    json_decref(d);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_put_rejects_oversized_key(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 8);
    char key[600];
    memset(key, 'k', sizeof key);
    json_t *d = doc_v("a", 1);
    struct put_arg p = {STORE_ENTITIES, key, 512, REC_ACTION, 1, d, 0};
    int rc = store_write(st, put_fn, &p, NULL);
    CHECK_EQ_INT(p.put_rc, -ENAMETOOLONG);
    CHECK_EQ_INT(rc, -ENAMETOOLONG);
    /* an empty key is refused too */
    p.klen = 0;
    rc = store_write(st, put_fn, &p, NULL);
    CHECK(rc < 0);
    /* the limit itself works */
    p.klen = STORE_MAX_KEY;
    CHECK_EQ_INT(store_write(st, put_fn, &p, NULL), 0);
    json_t *got = NULL;
    CHECK_EQ_INT(store_get(st, STORE_ENTITIES, key, STORE_MAX_KEY, NULL, NULL, &got), 0);
    json_decref(got);
    got = NULL;
    CHECK(store_get(st, STORE_ENTITIES, key, 512, NULL, NULL, &got) < 0);
    CHECK(got == NULL);
    json_decref(d);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

/* ==== entity cache ====================================================== */

static void store_cache_get_after_put_returns_new_value(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 8);
    json_t *d1 = doc_v("one", 1), *d2 = doc_v("two", 2);
    CHECK_EQ_INT(put(st, STORE_ENTITIES, "ns", REC_ACTION, 1, d1), 0);
    struct store_stats s0, s1, s2;
    store_get_stats(st, &s0);
    json_t *first = NULL, *second = NULL, *none = NULL;
    CHECK_EQ_INT(store_get(st, STORE_ENTITIES, "nx", 2, NULL, NULL, &none), -ENOENT);
    CHECK_EQ_INT(store_get(st, STORE_ENTITIES, "ns", 2, NULL, NULL, &first), 0);
    CHECK_EQ_INT(store_get(st, STORE_ENTITIES, "ns", 2, NULL, NULL, &second), 0);
    store_get_stats(st, &s1);
    CHECK_EQ_INT(s1.cache_misses - s0.cache_misses, 2); /* the -ENOENT and the first */
    CHECK_EQ_INT(s1.cache_hits - s0.cache_hits, 1);
    CHECK_EQ_INT(json_integer_value(json_object_get(second, "v")), 1);
    CHECK_EQ_INT(put(st, STORE_ENTITIES, "ns", REC_ACTION, 2, d2), 0);
    expect_doc(st, STORE_ENTITIES, "ns", REC_ACTION, 2, 2);
    /* documents handed out earlier are not changed behind the caller */
    CHECK_EQ_INT(json_integer_value(json_object_get(first, "v")), 1);
    CHECK_STREQ(wjson_str(first, "tag"), "one");
    /* a second read is served from the cache and is still the new value */
    expect_doc(st, STORE_ENTITIES, "ns", REC_ACTION, 2, 2);
    store_get_stats(st, &s2);
    CHECK(s2.cache_hits > s1.cache_hits);
    json_decref(first);
    json_decref(second);
    json_decref(d1);
    json_decref(d2);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_cache_get_after_del_is_enoent(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 8);
    json_t *d = doc_v("x", 5);
    CHECK_EQ_INT(put(st, STORE_ENTITIES, "e", REC_RULE, 1, d), 0);
    expect_doc(st, STORE_ENTITIES, "e", REC_RULE, 1, 5);
    expect_doc(st, STORE_ENTITIES, "e", REC_RULE, 1, 5); /* cached now */
    CHECK_EQ_INT(del(st, STORE_ENTITIES, "e"), 0);
    expect_missing(st, STORE_ENTITIES, "e");
    expect_missing(st, STORE_ENTITIES, "e");
    json_decref(d);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static int put_then_fail_fn(struct store_txn *t, void *arg)
{
    struct put_arg *p = arg;
    int rc = store_txn_put(t, p->db, p->key, p->klen, p->kind, p->upd, p->doc);
    CHECK_EQ_INT(rc, 0);
    return -EIO;
}

static void store_cache_not_changed_by_aborted_write(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 8);
    json_t *d1 = doc_v("one", 1), *d2 = doc_v("two", 2);
    CHECK_EQ_INT(put(st, STORE_ENTITIES, "k", REC_ACTION, 1, d1), 0);
    expect_doc(st, STORE_ENTITIES, "k", REC_ACTION, 1, 1);
    struct put_arg p = {STORE_ENTITIES, "k", 1, REC_ACTION, 2, d2, 0};
    CHECK_EQ_INT(store_write(st, put_then_fail_fn, &p, NULL), -EIO);
    expect_doc(st, STORE_ENTITIES, "k", REC_ACTION, 1, 1);
    json_decref(d1);
    json_decref(d2);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_cache_bounded_lru_keeps_values_right(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 3);
    char key[16];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        json_t *d = doc_v(key, i);
        CHECK_EQ_INT(put(st, STORE_ENTITIES, key, REC_ACTION, i, d), 0);
        json_decref(d);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10; i++) {
            snprintf(key, sizeof key, "k%d", (i * 7 + round) % 10);
            expect_doc(st, STORE_ENTITIES, key, REC_ACTION, (i * 7 + round) % 10,
                       (i * 7 + round) % 10);
        }
    }
    /* overwrite every key while some are cached, then read all back */
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        json_t *d = doc_v(key, 100 + i);
        CHECK_EQ_INT(put(st, STORE_ENTITIES, key, REC_ACTION, 100 + i, d), 0);
        json_decref(d);
        expect_doc(st, STORE_ENTITIES, key, REC_ACTION, 100 + i, 100 + i);
    }
    for (int i = 9; i >= 0; i--) {
        snprintf(key, sizeof key, "k%d", i);
        expect_doc(st, STORE_ENTITIES, key, REC_ACTION, 100 + i, 100 + i);
    }
    struct store_stats s;
    store_get_stats(st, &s);
    CHECK(s.cache_hits > 0);
    CHECK(s.cache_misses > 0);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_cache_disabled_still_reads(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 0);
    json_t *d = doc_v("x", 1);
    CHECK_EQ_INT(put(st, STORE_ENTITIES, "k", REC_ACTION, 1, d), 0);
    expect_doc(st, STORE_ENTITIES, "k", REC_ACTION, 1, 1);
    expect_doc(st, STORE_ENTITIES, "k", REC_ACTION, 1, 1);
    struct store_stats s;
    store_get_stats(st, &s);
    CHECK_EQ_INT(s.cache_hits, 0);
    json_decref(d);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

/* ==== scan ============================================================== */

struct scan_ctx {
    char seen[16][32];
    int n;
    int stop_after; /* return 1 after this many; 0: never */
    int fail_at;    /* return -EIO at this visit (1-based); 0: never */
    int kinds[16];
    json_int_t vals[16];
};

static int scan_fn(void *arg, const struct store_rec *r)
{
    struct scan_ctx *c = arg;
    size_t klen;
    const char *key = store_rec_key(r, &klen);
    if (c->n < 16) {
        size_t l = klen < 31 ? klen : 31;
        memcpy(c->seen[c->n], key, l);
        c->seen[c->n][l] = '\0';
        c->kinds[c->n] = store_rec_kind(r);
        json_t *doc = NULL;
        if (store_rec_doc(r, &doc) == 0)
            c->vals[c->n] = json_integer_value(json_object_get(doc, "v"));
        else
            c->vals[c->n] = -1;
        json_decref(doc);
    }
    c->n++;
    if (c->fail_at && c->n == c->fail_at)
        return -EIO;
    if (c->stop_after && c->n == c->stop_after)
        return 1;
    return 0;
}

static void fill_scan_db(struct store *st)
{
    const char *keys[] = {"a", "a/1", "a/2", "a/3", "ab", "b/1", "b/2", "\xff", "\xff\xff"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(keys); i++) {
        json_t *d = doc_v("scan", (json_int_t)i);
        CHECK_EQ_INT(put(st, STORE_ACT_INDEX, keys[i], REC_ACTIVATION, 0, d), 0);
        json_decref(d);
    }
}

static void store_scan_prefix_forward_in_key_order(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 0);
    fill_scan_db(st);
    struct scan_ctx c = {0};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "a/", 2, false, scan_fn, &c), 0);
    CHECK_EQ_INT(c.n, 3);
    CHECK_STREQ(c.seen[0], "a/1");
    CHECK_STREQ(c.seen[1], "a/2");
    CHECK_STREQ(c.seen[2], "a/3");
    CHECK_EQ_INT(c.kinds[0], REC_ACTIVATION);
    CHECK_EQ_INT(c.vals[0], 1);
    CHECK_EQ_INT(c.vals[2], 3);
    /* prefix "a" includes "a" itself and "ab" */
    struct scan_ctx c2 = {0};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "a", 1, false, scan_fn, &c2), 0);
    CHECK_EQ_INT(c2.n, 5);
    CHECK_STREQ(c2.seen[0], "a");
    CHECK_STREQ(c2.seen[4], "ab");
    /* empty prefix: everything */
    struct scan_ctx c3 = {0};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "", 0, false, scan_fn, &c3), 0);
    CHECK_EQ_INT(c3.n, 9);
    CHECK_STREQ(c3.seen[8], "\xff\xff");
    /* no match */
    struct scan_ctx c4 = {0};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "c", 1, false, scan_fn, &c4), 0);
    CHECK_EQ_INT(c4.n, 0);
    /* an empty database */
    struct scan_ctx c5 = {0};
    CHECK_EQ_INT(store_scan(st, STORE_KEYS, "", 0, false, scan_fn, &c5), 0);
    CHECK_EQ_INT(c5.n, 0);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_scan_prefix_reverse(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 0);
    fill_scan_db(st);
    struct scan_ctx c = {0};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "a/", 2, true, scan_fn, &c), 0);
    CHECK_EQ_INT(c.n, 3);
    CHECK_STREQ(c.seen[0], "a/3");
    CHECK_STREQ(c.seen[1], "a/2");
    CHECK_STREQ(c.seen[2], "a/1");
    /* the last keys of the database (nothing sorts after the prefix) */
    struct scan_ctx c2 = {0};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "b/", 2, true, scan_fn, &c2), 0);
    CHECK_EQ_INT(c2.n, 2);
    CHECK_STREQ(c2.seen[0], "b/2");
    CHECK_STREQ(c2.seen[1], "b/1");
    /* prefixes ending in 0xff carry */
    struct scan_ctx c3 = {0};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "\xff", 1, true, scan_fn, &c3), 0);
    CHECK_EQ_INT(c3.n, 2);
    CHECK_STREQ(c3.seen[0], "\xff\xff");
    CHECK_STREQ(c3.seen[1], "\xff");
    /* empty prefix: everything, last first */
    struct scan_ctx c4 = {0};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "", 0, true, scan_fn, &c4), 0);
    CHECK_EQ_INT(c4.n, 9);
    CHECK_STREQ(c4.seen[0], "\xff\xff");
    CHECK_STREQ(c4.seen[8], "a");
    /* no match, before and after every key */
    struct scan_ctx c5 = {0};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "0", 1, true, scan_fn, &c5), 0);
    CHECK_EQ_INT(c5.n, 0);
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "c", 1, true, scan_fn, &c5), 0);
    CHECK_EQ_INT(c5.n, 0);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_scan_stops_early_on_1(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 0);
    fill_scan_db(st);
    struct scan_ctx c = {.stop_after = 2};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "a", 1, false, scan_fn, &c), 0);
    CHECK_EQ_INT(c.n, 2);
    struct scan_ctx r = {.stop_after = 1};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "a", 1, true, scan_fn, &r), 0);
    CHECK_EQ_INT(r.n, 1);
    CHECK_STREQ(r.seen[0], "ab");
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_scan_propagates_callback_error(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 0);
    fill_scan_db(st);
    struct scan_ctx c = {.fail_at = 2};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "", 0, false, scan_fn, &c), -EIO);
    CHECK_EQ_INT(c.n, 2);
    struct scan_ctx r = {.fail_at = 1};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "b", 1, true, scan_fn, &r), -EIO);
    CHECK_EQ_INT(r.n, 1);
    /* the store still works afterwards */
    struct scan_ctx ok = {0};
    CHECK_EQ_INT(store_scan(st, STORE_ACT_INDEX, "b", 1, false, scan_fn, &ok), 0);
    CHECK_EQ_INT(ok.n, 2);
    expect_doc(st, STORE_ACT_INDEX, "a/1", REC_ACTIVATION, 0, 1);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

/* ==== writes ============================================================ */

static int two_puts_then_fail_fn(struct store_txn *t, void *arg)
{
    const json_t *d = arg;
    if (store_txn_put(t, STORE_ENTITIES, "w1", 2, REC_ACTION, 1, d) < 0 ||
        store_txn_put(t, STORE_KEYS, "w2", 2, REC_KEY, 1, d) < 0)
        return -EIO;
    /* the txn sees its own writes */
    json_t *got = NULL;
    CHECK_EQ_INT(store_txn_get(t, STORE_ENTITIES, "w1", 2, NULL, NULL, &got), 0);
    json_decref(got);
    return -EPERM;
}

static void store_write_error_aborts_everything(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 8);
    json_t *d = doc_v("x", 1);
    CHECK_EQ_INT(store_write(st, two_puts_then_fail_fn, d, NULL), -EPERM);
    expect_missing(st, STORE_ENTITIES, "w1");
    expect_missing(st, STORE_KEYS, "w2");
    store_close(st);
    /* and nothing shows up after a reopen either */
    st = open_default(dir, 8);
    expect_missing(st, STORE_ENTITIES, "w1");
    expect_missing(st, STORE_KEYS, "w2");
    json_decref(d);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static int txn_get_del_fn(struct store_txn *t, void *arg)
{
    (void)arg;
    enum rec_kind k = 0;
    int64_t u = 0;
    json_t *doc = NULL;
    CHECK_EQ_INT(store_txn_get(t, STORE_META, "m", 1, &k, &u, &doc), 0);
    CHECK_EQ_INT(k, REC_META);
    CHECK_EQ_INT(u, 77);
    CHECK_EQ_INT(json_integer_value(json_object_get(doc, "v")), 3);
    json_decref(doc);
    doc = NULL;
    CHECK_EQ_INT(store_txn_get(t, STORE_META, "zz", 2, NULL, NULL, &doc), -ENOENT);
    CHECK_EQ_INT(store_txn_del(t, STORE_META, "zz", 2), -ENOENT);
    return store_txn_del(t, STORE_META, "m", 1);
}

static void store_txn_get_and_del(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 8);
    json_t *d = doc_v("m", 3);
    CHECK_EQ_INT(put(st, STORE_META, "m", REC_META, 77, d), 0);
    CHECK_EQ_INT(store_write(st, txn_get_del_fn, NULL, NULL), 0);
    expect_missing(st, STORE_META, "m");
    json_decref(d);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

#define BIG_VALUE (64 * 1024)

struct bulk_arg {
    int first, count;
};

static json_t *big_doc(int i)
{
    char *s = malloc(BIG_VALUE);
    for (int j = 0; j < BIG_VALUE; j++)
        s[j] = (char)('a' + (i + j) % 26);
    json_t *d = json_pack("{s:i, s:s%}", "v", i, "blob", s, (size_t)BIG_VALUE);
    free(s);
    return d;
}

static int bulk_fn(struct store_txn *t, void *arg)
{
    struct bulk_arg *b = arg;
    for (int i = b->first; i < b->first + b->count; i++) {
        char key[16];
        snprintf(key, sizeof key, "big%04d", i);
        json_t *d = big_doc(i);
        int rc = store_txn_put(t, STORE_ACTIVATIONS, key, strlen(key), REC_ACTIVATION, i, d);
        json_decref(d);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void check_big(struct store *st, int i)
{
    char key[16];
    snprintf(key, sizeof key, "big%04d", i);
    json_t *doc = NULL;
    int rc = store_get(st, STORE_ACTIVATIONS, key, strlen(key), NULL, NULL, &doc);
    CHECK_EQ_INT(rc, 0);
    if (rc == 0) {
        CHECK_EQ_INT(json_integer_value(json_object_get(doc, "v")), i);
        json_t *blob = json_object_get(doc, "blob");
        CHECK_EQ_INT(json_string_length(blob), BIG_VALUE);
        const char *s = json_string_value(blob);
        CHECK(s && s[0] == (char)('a' + i % 26) &&
              s[BIG_VALUE - 1] == (char)('a' + (i + BIG_VALUE - 1) % 26));
    }
    json_decref(doc);
}

static void store_map_grows_up_to_max(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_store(dir, 1u << 20, 64u << 20, 0, false, NULL);
    struct store_stats s0;
    store_get_stats(st, &s0);
    CHECK_EQ_INT(s0.map_bytes, 1u << 20);
    CHECK_EQ_INT(s0.grows, 0);
    /* 128 x 64 KB = 8 MB in writes of 8 records */
    for (int w = 0; w < 16; w++) {
        struct bulk_arg b = {w * 8, 8};
        struct wisp_err err = {0};
        int rc = store_write(st, bulk_fn, &b, &err);
        if (rc)
            fprintf(stderr, "write %d: %d %s\n", w, rc, err.msg);
        CHECK_EQ_INT(rc, 0);
    }
    struct store_stats s1;
    store_get_stats(st, &s1);
    CHECK(s1.grows > 0);
    CHECK(s1.map_bytes >= (8u << 20));
    CHECK(s1.map_bytes <= (64u << 20));
    CHECK(s1.used_bytes >= (8u << 20));
    CHECK(s1.used_bytes <= s1.map_bytes);
    for (int i = 0; i < 128; i++)
        check_big(st, i);
    store_close(st);
    /* a reopen with the small initial size still reads everything */
    st = open_store(dir, 1u << 20, 64u << 20, 0, false, NULL);
    for (int i = 0; i < 128; i += 9)
        check_big(st, i);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_map_full_at_limit_is_enospc(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_store(dir, 1u << 20, 1u << 20, 0, false, NULL);
    int ok = 0, rc = 0;
    struct wisp_err err = {0};
    for (int i = 0; i < 128; i++) {
        struct bulk_arg b = {i, 1};
        memset(&err, 0, sizeof err);
        rc = store_write(st, bulk_fn, &b, &err);
        if (rc < 0)
            break;
        ok++;
    }
    CHECK_EQ_INT(rc, -ENOSPC);
    CHECK_EQ_INT(err.code, -ENOSPC);
    CHECK(strstr(err.msg, "limit") != NULL);
    CHECK(strstr(err.msg, "1 MB") != NULL);
    CHECK(ok > 0);
    CHECK(ok < 16); /* 1 MB cannot hold 16 x 64 KB */
    struct store_stats s;
    store_get_stats(st, &s);
    CHECK_EQ_INT(s.grows, 0);
    CHECK_EQ_INT(s.map_bytes, 1u << 20);
    /* the store goes on serving reads and small writes are still refused
     * or accepted cleanly, never half-done */
    for (int i = 0; i < ok; i++)
        check_big(st, i);
    store_close(st);
    st = open_store(dir, 1u << 20, 1u << 20, 0, false, NULL);
    for (int i = 0; i < ok; i++)
        check_big(st, i);
    char key[16];
    snprintf(key, sizeof key, "big%04d", ok);
    expect_missing(st, STORE_ACTIVATIONS, key);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

/* ==== corruption and schema ============================================= */

static void store_get_reports_corrupt_record_as_ebadmsg(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 8);
    json_t *d = doc_v("good", 1);
    CHECK_EQ_INT(put(st, STORE_ENTITIES, "good", REC_ACTION, 1, d), 0);
    json_decref(d);
    store_close(st);
    raw_put(dir, "entities", "bad", 3, "\x94\x01\x01garbage!", 11);
    raw_put(dir, "entities", "bad2", 4, "\xff\xfe\xfd", 3);
    /* a well-formed record from a newer schema */
    raw_put(dir, "entities", "newer", 5, "\x94\x02\x01\x00\x80", 5);
    st = open_default(dir, 8);
    json_t *doc = NULL;
    CHECK_EQ_INT(store_get(st, STORE_ENTITIES, "bad", 3, NULL, NULL, &doc), -EBADMSG);
    CHECK(doc == NULL);
    CHECK_EQ_INT(store_get(st, STORE_ENTITIES, "bad", 3, NULL, NULL, &doc), -EBADMSG);
    CHECK_EQ_INT(store_get(st, STORE_ENTITIES, "bad2", 4, NULL, NULL, &doc), -EBADMSG);
    CHECK_EQ_INT(store_get(st, STORE_ENTITIES, "newer", 5, NULL, NULL, &doc), -EPROTO);
    CHECK(doc == NULL);
    expect_doc(st, STORE_ENTITIES, "good", REC_ACTION, 1, 1);
    /* a scan meets the garbage without failing */
    struct scan_ctx c = {0};
    CHECK_EQ_INT(store_scan(st, STORE_ENTITIES, "", 0, false, scan_fn, &c), 0);
    CHECK_EQ_INT(c.n, 4);
    CHECK_STREQ(c.seen[0], "bad");
    CHECK_EQ_INT(c.kinds[0], REC_ACTION); /* its first bytes look like a record */
    CHECK_EQ_INT(c.vals[0], -1);          /* but the document does not decode */
    CHECK_STREQ(c.seen[1], "bad2");
    CHECK_EQ_INT(c.kinds[1], -EBADMSG);
    CHECK_STREQ(c.seen[2], "good");
    CHECK_EQ_INT(c.kinds[2], REC_ACTION);
    CHECK_EQ_INT(c.vals[2], 1);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_open_stamps_schema(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 0);
    store_close(st);
    unsigned char buf[16];
    CHECK_EQ_INT(raw_get(dir, "meta", "schema", buf, sizeof buf), 4);
    uint32_t v;
    memcpy(&v, buf, 4);
    CHECK_EQ_INT(v, STORE_SCHEMA_VERSION);
    rm_rf(dir);
    free(dir);
}

static void store_open_refuses_newer_schema_with_eproto(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 0);
    json_t *d = doc_v("x", 1);
    CHECK_EQ_INT(put(st, STORE_ENTITIES, "keep", REC_ACTION, 1, d), 0);
    json_decref(d);
    store_close(st);
    uint32_t newer = STORE_SCHEMA_VERSION + 1;
    raw_put(dir, "meta", "schema", 6, &newer, 4);
    struct store_cfg cfg = {.dir = dir, .map_bytes = 4u << 20, .map_max_bytes = 64u << 20};
    struct wisp_err err = {0};
    st = NULL;
    CHECK_EQ_INT(store_open(&cfg, NULL, &st, &err), -EPROTO);
    CHECK_EQ_INT(err.code, -EPROTO);
    CHECK(strstr(err.msg, "schema") != NULL);
    /* the refusal leaves the data dir alone */
    unsigned char buf[8];
    CHECK_EQ_INT(raw_get(dir, "meta", "schema", buf, sizeof buf), 4);
    uint32_t v;
    memcpy(&v, buf, 4);
    CHECK_EQ_INT(v, newer);
    /* a corrupt schema value is an error too */
    raw_put(dir, "meta", "schema", 6, "\x01\x00\x00", 3);
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(store_open(&cfg, NULL, &st, &err), -EIO);
    CHECK(err.msg[0] != '\0');
    /* the current version opens and the data is there */
    uint32_t cur = STORE_SCHEMA_VERSION;
    raw_put(dir, "meta", "schema", 6, &cur, 4);
    st = open_default(dir, 0);
    expect_doc(st, STORE_ENTITIES, "keep", REC_ACTION, 1, 1);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void store_open_fails_on_unusable_dir(void)
{
    char *dir = make_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/file", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/sub", path); /* a dir below a regular file */
    struct store_cfg cfg = {.dir = sub, .map_bytes = 1u << 20, .map_max_bytes = 1u << 20};
    struct store *st = NULL;
    struct wisp_err err = {0};
    int rc = store_open(&cfg, NULL, &st, &err);
    CHECK(rc < 0);
    CHECK_EQ_INT(err.code, rc);
    CHECK(err.msg[0] != '\0');
    store_close(NULL); /* no-op */
    rm_rf(dir);
    free(dir);
}

/* ==== async sync ======================================================== */

struct sync_ctx {
    int calls, rc;
    int order[8];
    int norder;
    bool in_sync_call;
    bool bad_context; /* called from inside store_sync */
};

static struct sync_ctx *g_sync;

static void synced_cb(void *arg, int rc)
{
    struct sync_ctx *c = g_sync;
    if (c->in_sync_call)
        c->bad_context = true;
    if (c->norder < 8)
        c->order[c->norder++] = (int)(intptr_t)arg;
    c->calls++;
    c->rc = rc;
}

static int sync_call(struct store *st, struct sync_ctx *c, intptr_t tag)
{
    c->in_sync_call = true;
    int rc = store_sync(st, synced_cb, (void *)tag);
    c->in_sync_call = false;
    return rc;
}

static void store_sync_calls_back_from_loop_after_write(void)
{
    char *dir = make_tmpdir();
    struct event_base *base = event_base_new();
    CHECK(base != NULL);
    struct store *st = open_store(dir, 1u << 20, 8u << 20, 8, true, base);
    struct sync_ctx c = {0};
    g_sync = &c;
    json_t *d = doc_v("x", 1);
    CHECK_EQ_INT(put(st, STORE_ENTITIES, "k", REC_ACTION, 1, d), 0);
    json_decref(d);
    CHECK_EQ_INT(sync_call(st, &c, 1), 0);
    CHECK_EQ_INT(c.calls, 0); /* never from inside store_sync */
    run_until(base, &c.calls);
    CHECK_EQ_INT(c.calls, 1);
    CHECK_EQ_INT(c.rc, 0);
    CHECK(!c.bad_context);
    struct store_stats s;
    store_get_stats(st, &s);
    CHECK(s.syncs >= 1);
    /* several waiters are answered in order */
    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(sync_call(st, &c, 10), 0);
    CHECK_EQ_INT(sync_call(st, &c, 11), 0);
    CHECK_EQ_INT(sync_call(st, &c, 12), 0);
    CHECK_EQ_INT(c.calls, 0);
    int64_t deadline = now_ms() + 5000;
    while (c.calls < 3 && now_ms() < deadline) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    CHECK_EQ_INT(c.calls, 3);
    CHECK_EQ_INT(c.order[0], 10);
    CHECK_EQ_INT(c.order[1], 11);
    CHECK_EQ_INT(c.order[2], 12);
    CHECK_EQ_INT(c.rc, 0);
    CHECK(!c.bad_context);
    store_close(st);
    CHECK_EQ_INT(c.calls, 3); /* nothing left to call at close */
    event_base_free(base);
    /* the write survived */
    st = open_default(dir, 0);
    expect_doc(st, STORE_ENTITIES, "k", REC_ACTION, 1, 1);
    store_close(st);
    g_sync = NULL;
    rm_rf(dir);
    free(dir);
}

static void store_sync_refuses_beyond_waiter_limit(void)
{
    char *dir = make_tmpdir();
    struct event_base *base = event_base_new();
    struct store *st = open_store(dir, 1u << 20, 8u << 20, 0, true, base);
    struct sync_ctx c = {0};
    g_sync = &c;
    int queued = 0, rc = 0;
    for (int i = 0; i < 5000; i++) {
        rc = sync_call(st, &c, 0);
        if (rc < 0)
            break;
        queued++;
    }
    CHECK_EQ_INT(rc, -EAGAIN);
    CHECK(queued >= 1);
    CHECK_EQ_INT(c.calls, 0);
    int64_t deadline = now_ms() + 5000;
    while (c.calls < queued && now_ms() < deadline) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    CHECK_EQ_INT(c.calls, queued);
    CHECK_EQ_INT(c.rc, 0);
    /* room again */
    CHECK_EQ_INT(sync_call(st, &c, 0), 0);
    store_close(st);
    CHECK_EQ_INT(c.calls, queued + 1);
    event_base_free(base);
    g_sync = NULL;
    rm_rf(dir);
    free(dir);
}

static void store_sync_without_async_mode_is_refused(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 0);
    struct sync_ctx c = {0};
    g_sync = &c;
    CHECK(sync_call(st, &c, 0) < 0);
    store_close(st);
    CHECK_EQ_INT(c.calls, 0);
    g_sync = NULL;
    rm_rf(dir);
    free(dir);
}

/* store.h: store_close syncs first, so waiters still queued learn that
 * their data is on disk (rc 0), in order, before it returns. */
static void store_close_answers_pending_waiters_after_its_sync(void)
{
    char *dir = make_tmpdir();
    struct event_base *base = event_base_new();
    struct store *st = open_store(dir, 1u << 20, 8u << 20, 0, true, base);
    struct sync_ctx c = {0};
    g_sync = &c;
    json_t *d = doc_v("x", 1);
    CHECK_EQ_INT(put(st, STORE_ENTITIES, "k", REC_ACTION, 1, d), 0);
    json_decref(d);
    CHECK_EQ_INT(sync_call(st, &c, 1), 0);
    CHECK_EQ_INT(sync_call(st, &c, 2), 0);
    CHECK_EQ_INT(c.calls, 0);
    store_close(st); /* the loop never ran */
    CHECK_EQ_INT(c.calls, 2);
    CHECK_EQ_INT(c.order[0], 1);
    CHECK_EQ_INT(c.order[1], 2);
    CHECK_EQ_INT(c.rc, 0);
    event_base_free(base);
    g_sync = NULL;
    rm_rf(dir);
    free(dir);
}

/* ==== re-entrancy ======================================================= */

struct nested_ctx {
    struct store *st;
    int visits, get_rc;
};

static int nested_get_fn(void *arg, const struct store_rec *r)
{
    struct nested_ctx *c = arg;
    size_t klen;
    const char *key = store_rec_key(r, &klen);
    json_t *doc = NULL;
    char copy[64];
    memcpy(copy, key, klen < sizeof copy ? klen : sizeof copy);
    c->get_rc = store_get(c->st, STORE_ENTITIES, copy, klen, NULL, NULL, &doc);
    json_decref(doc);
    c->visits++;
    return 0;
}

static void nested_body(void)
{
    char *dir = make_tmpdir();
    struct store *st = open_default(dir, 0);
    for (int i = 0; i < 4; i++) {
        char key[8];
        snprintf(key, sizeof key, "n%d", i);
        json_t *d = doc_v(key, i);
        CHECK_EQ_INT(put(st, STORE_ENTITIES, key, REC_ACTION, i, d), 0);
        json_decref(d);
    }
    struct nested_ctx c = {.st = st};
    int rc = store_scan(st, STORE_ENTITIES, "n", 1, false, nested_get_fn, &c);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(c.visits, 4);
    CHECK_EQ_INT(c.get_rc, 0);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

/* A scan callback that reads another record with store_get (the header
 * does not forbid it). Run in a child: a use-after-free aborts under ASan. */
static void store_get_inside_scan_callback_works(void)
{
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        check_failures = 0;
        nested_body();
        fflush(stderr);
        _exit(check_failures ? 1 : 0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "  child %s %d\n", WIFEXITED(status) ? "exited" : "killed by signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Kilobytes of data.mdb in this process's RSS (its mappings in smaps). */
static long map_rss_kb(const char *dir)
{
    char want[PATH_MAX + 16], real[PATH_MAX], line[PATH_MAX + 128];
    CHECK(realpath(dir, real) != NULL);
    snprintf(want, sizeof want, "%s/data.mdb", real);
    FILE *f = fopen("/proc/self/smaps", "re");
    CHECK(f != NULL);
    long kb = 0;
    bool in = false;
    while (f && fgets(line, sizeof line, f)) {
        size_t hex = strspn(line, "0123456789abcdef");
        if (hex > 0 && line[hex] == '-') { /* a mapping's head: "lo-hi perms off dev ino path" */
            char *path = strchr(line, '/');
            if (path)
                path[strcspn(path, "\n")] = '\0';
            in = path && strcmp(path, want) == 0;
        } else if (in && strncmp(line, "Rss:", 4) == 0) {
            kb += strtol(line + 4, NULL, 10);
        }
    }
    if (f)
        fclose(f);
    return kb;
}

/* Writes 3,000 records one commit each and reads them all back, then one
 * more commit: with trim_ms the map's pages have left the RSS after it;
 * without, they are still there. */
static void store_trim_after_commits_drops_the_map_from_rss(void)
{
    for (int trim = 0; trim < 2; trim++) {
        char *dir = make_tmpdir();
        struct store_cfg cfg = {.dir = dir, .map_bytes = 4u << 20, .map_max_bytes = 64u << 20,
                                .trim_ms = trim ? 1 : 0};
        struct store *st = NULL;
        struct wisp_err err = {0};
        CHECK_EQ_INT(store_open(&cfg, NULL, &st, &err), 0);
        json_t *doc = json_pack("{s:s}", "pad", "0123456789012345678901234567890123456789");
        char key[32];
        for (int i = 0; i < 3000; i++) {
            snprintf(key, sizeof key, "k%06d", i);
            CHECK_EQ_INT(put(st, STORE_ENTITIES, key, REC_ACTION, i, doc), 0);
        }
        for (int i = 0; i < 3000; i++) {
            json_t *got = NULL;
            snprintf(key, sizeof key, "k%06d", i);
            CHECK_EQ_INT(store_get(st, STORE_ENTITIES, key, strlen(key), NULL, NULL, &got), 0);
            json_decref(got);
        }
        CHECK(map_rss_kb(dir) > 0);
        usleep(2000); /* past trim_ms */
        CHECK_EQ_INT(put(st, STORE_ENTITIES, "last", REC_ACTION, 1, doc), 0);
        long kb = map_rss_kb(dir);
        if (trim)
            CHECK_EQ_INT(kb, 0);
        else
            CHECK(kb > 0);
        json_decref(doc);
        store_close(st);
        rm_rf(dir);
        free(dir);
    }
}

static const struct check_test tests[] = {
    {"store_trim_after_commits_drops_the_map_from_rss", store_trim_after_commits_drops_the_map_from_rss},
    {"store_reopen_keeps_data_in_every_db", store_reopen_keeps_data_in_every_db},
    {"store_databases_are_separate", store_databases_are_separate},
    {"store_put_get_del_in_each_db", store_put_get_del_in_each_db},
    {"store_get_with_null_kind_and_time", store_get_with_null_kind_and_time},
    {"store_binary_keys_with_nul_bytes_are_distinct", store_binary_keys_with_nul_bytes_are_distinct},
    {"store_entity_key_limits", store_entity_key_limits},
    {"store_entity_get_reads_by_ns_and_path", store_entity_get_reads_by_ns_and_path},
    {"store_put_rejects_oversized_key", store_put_rejects_oversized_key},
    {"store_cache_get_after_put_returns_new_value", store_cache_get_after_put_returns_new_value},
    {"store_cache_get_after_del_is_enoent", store_cache_get_after_del_is_enoent},
    {"store_cache_not_changed_by_aborted_write", store_cache_not_changed_by_aborted_write},
    {"store_cache_bounded_lru_keeps_values_right", store_cache_bounded_lru_keeps_values_right},
    {"store_cache_disabled_still_reads", store_cache_disabled_still_reads},
    {"store_scan_prefix_forward_in_key_order", store_scan_prefix_forward_in_key_order},
    {"store_scan_prefix_reverse", store_scan_prefix_reverse},
    {"store_scan_stops_early_on_1", store_scan_stops_early_on_1},
    {"store_scan_propagates_callback_error", store_scan_propagates_callback_error},
    {"store_write_error_aborts_everything", store_write_error_aborts_everything},
    {"store_txn_get_and_del", store_txn_get_and_del},
    {"store_map_grows_up_to_max", store_map_grows_up_to_max},
    {"store_map_full_at_limit_is_enospc", store_map_full_at_limit_is_enospc},
    {"store_get_reports_corrupt_record_as_ebadmsg", store_get_reports_corrupt_record_as_ebadmsg},
    {"store_open_stamps_schema", store_open_stamps_schema},
    {"store_open_refuses_newer_schema_with_eproto", store_open_refuses_newer_schema_with_eproto},
    {"store_open_fails_on_unusable_dir", store_open_fails_on_unusable_dir},
    {"store_sync_calls_back_from_loop_after_write", store_sync_calls_back_from_loop_after_write},
    {"store_sync_refuses_beyond_waiter_limit", store_sync_refuses_beyond_waiter_limit},
    {"store_sync_without_async_mode_is_refused", store_sync_without_async_mode_is_refused},
    {"store_close_answers_pending_waiters_after_its_sync",
     store_close_answers_pending_waiters_after_its_sync},
    {"store_get_inside_scan_callback_works", store_get_inside_scan_callback_works},
};

CHECK_MAIN(tests)
