/* tests/unit/test_act.c - activation records in a real LMDB store: a store
 * of schema 1 (records under bare ids plus an act_index) moves to the
 * one-tree layout when activations open, a record whose id is not
 * time-ordered included, and reads, lists, filters and retention work on
 * what was moved. */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act.h"
#include "check.h"
#include "codec.h"
#include "plat.h"
#include "store.h"
#include "wjson.h"

/* An activation record as wispd writes one: name "name", path annotation
 * ns/name or ns/pkg/name. */
static void make_rec(struct plat_buf *b, const char *ns, const char *pkg, const char *name,
                     const char *id, int64_t start)
{
    struct act_head h = {.subject = ns, .name = name, .id = id, .version = "0.0.1",
                         .start = start, .end = start + 1, .status_code = 0, .nfields = 12};
    char path[128];
    if (pkg)
        snprintf(path, sizeof path, "%s/%s/%s", ns, pkg, name);
    else
        snprintf(path, sizeof path, "%s/%s", ns, name);
    int rc = act_pack_head(b, &h);
    if (!rc && !(rc = codec_put_map(b, 0)) && !(rc = codec_put_str(b, "logs")) &&
        !(rc = codec_put_array(b, 0)) && !(rc = codec_put_str(b, "annotations")) &&
        !(rc = codec_put_array(b, 1)) && !(rc = act_pack_annotation(b, "path")))
        rc = codec_put_str(b, path);
    CHECK_EQ_INT(rc, 0);
}

struct old_rec {
    const char *ns, *pkg, *name;
    char id[33];
    int64_t start;
    bool has_record; /* false: an index entry whose record is gone */
};

struct old_layout {
    struct old_rec *recs;
    size_t n;
    unsigned schema; /* 1; 2: a move that stopped half-way */
};

/* Writes what a schema 1 store held: each record under its bare id, an
 * act_index entry ns, NUL, start as 8 big-endian bytes, id. */
static int write_old(struct store_txn *t, void *arg)
{
    struct old_layout *o = arg;
    struct plat_buf b = {0};
    int rc = store_txn_set_schema(t, o->schema);
    for (size_t i = 0; rc == 0 && i < o->n; i++) {
        const struct old_rec *r = &o->recs[i];
        make_rec(&b, r->ns, r->pkg, r->name, r->id, r->start);
        unsigned char k[128];
        size_t nl = strlen(r->ns);
        memcpy(k, r->ns, nl + 1);
        for (int j = 0; j < 8; j++)
            k[nl + 1 + j] = (unsigned char)((uint64_t)r->start >> (56 - 8 * j));
        memcpy(k + nl + 9, r->id, 32);
        if (r->has_record)
            rc = store_txn_put_raw(t, STORE_ACTIVATIONS, r->id, 32, b.data, b.len);
        if (rc == 0)
            rc = store_txn_put_raw(t, STORE_ACT_INDEX, k, nl + 41, b.data, b.len);
    }
    plat_buf_fini(&b);
    return rc;
}

static int count_fn(void *arg, const struct store_rec *r)
{
    (void)r;
    ++*(int *)arg;
    return 0;
}

static int count_db(struct store *st, enum store_db db)
{
    int n = 0;
    CHECK_EQ_INT(store_scan(st, db, "", 0, false, count_fn, &n), 0);
    return n;
}

/* The activation ids a list gives, newest first, joined by spaces. */
static void list_ids(struct act *a, const char *ns, const struct act_query *q, char *out,
                     size_t cap)
{
    json_t *l = NULL;
    out[0] = '\0';
    CHECK_EQ_INT(act_list(a, ns, q, &l), 0);
    size_t i;
    json_t *v;
    json_array_foreach(l, i, v) {
        const char *id = wjson_str(v, "activationId");
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", len ? " " : "", id ? id : "?");
    }
    json_decref(l);
}

static void expect_get(struct act *a, const char *ns, const char *id, int want)
{
    json_t *doc = NULL;
    CHECK_EQ_INT(act_get(a, ns, id, &doc), want);
    if (want == 0)
        CHECK_STREQ(wjson_str(doc, "activationId"), id);
    json_decref(doc);
}

/* A new store in a new directory dir (a mkdtemp template), its settings
 * in *cfg for reopening. */
static struct store *new_store(char *dir, struct store_cfg *cfg, uint64_t map_bytes)
{
    CHECK(mkdtemp(dir) != NULL);
    *cfg = (struct store_cfg){.dir = dir, .map_bytes = map_bytes, .map_max_bytes = 256u << 20};
    struct wisp_err err = {0};
    struct store *st = NULL;
    CHECK_EQ_INT(store_open(cfg, NULL, &st, &err), 0);
    CHECK_EQ_INT(store_schema(st), STORE_SCHEMA_VERSION);
    return st;
}

static void schema1_store_moves_to_one_tree(void)
{
    char dir[] = "/tmp/wisp-act-XXXXXX";
    struct store_cfg scfg;
    struct store *st = new_store(dir, &scfg, 4u << 20);
    struct wisp_err err = {0};

    int64_t now = plat_clock_real_ms();
    struct old_rec recs[6] = {
        {.ns = "guest", .name = "a1", .start = now - 3000, .has_record = true},
        {.ns = "guest", .name = "a2", .start = now - 2000, .has_record = true},
        {.ns = "guest", .pkg = "pkg", .name = "a1", .start = now - 1000, .has_record = true},
        /* made before ids were time-ordered: random, its time far in the future */
        {.ns = "guest", .name = "a1", .id = "f0e1d2c3b4a5968778695a4b3c2d1e0f",
         .start = now - 10000, .has_record = true},
        {.ns = "other", .name = "a1", .start = now - 500, .has_record = true},
        {.ns = "guest", .name = "gone", .start = now - 1500, .has_record = false},
    };
    for (size_t i = 0; i < 6; i++)
        if (!recs[i].id[0])
            act_new_id(recs[i].id);
    const char *id0 = recs[0].id, *id1 = recs[1].id, *id2 = recs[2].id, *old = recs[3].id;
    struct old_layout o = {recs, 6, 1};
    CHECK_EQ_INT(store_write(st, write_old, &o, &err), 0);
    store_close(st);

    struct event_base *base = event_base_new();
    CHECK(base != NULL);
    st = NULL;
    CHECK_EQ_INT(store_open(&scfg, NULL, &st, &err), 0);
    CHECK_EQ_INT(store_schema(st), 1);
    struct act_cfg acfg = {.max_age_s = 0, .max_count = 100, .queue_max = 100};
    struct act *a = NULL;
    CHECK_EQ_INT(act_open(base, st, &acfg, &a, &err), 0);
    CHECK_EQ_INT(store_schema(st), STORE_SCHEMA_VERSION);
    CHECK_EQ_INT(count_db(st, STORE_ACT_INDEX), 0);
    CHECK_EQ_INT(count_db(st, STORE_ACTIVATIONS), 5);
    CHECK_EQ_INT(count_db(st, STORE_ACT_LEGACY), 1);

    for (int round = 0; round < 2; round++) { /* as moved, then after a reopen */
        for (int i = 0; i < 5; i++)
            expect_get(a, recs[i].ns, recs[i].id, 0);
        expect_get(a, "other", id0, -ENOENT); /* another namespace's */
        expect_get(a, "other", old, -ENOENT);
        expect_get(a, "guest", recs[4].id, -ENOENT);
        expect_get(a, "guest", recs[5].id, -ENOENT);
        char ids[512], want[512];
        struct act_query q = {.limit = 10};
        list_ids(a, "guest", &q, ids, sizeof ids);
        /* newest first: ids by their time, the random one by its start */
        snprintf(want, sizeof want, "%s %s %s %s", id2, id1, id0, old);
        CHECK_STREQ(ids, want);
        q.name = "pkg/a1";
        list_ids(a, "guest", &q, ids, sizeof ids);
        CHECK_STREQ(ids, id2);
        q.name = "a1";
        list_ids(a, "guest", &q, ids, sizeof ids);
        snprintf(want, sizeof want, "%s %s %s", id2, id0, old);
        CHECK_STREQ(ids, want);
        q.name = "a1";
        q.skip = 1;
        q.limit = 1;
        list_ids(a, "guest", &q, ids, sizeof ids);
        CHECK_STREQ(ids, id0);
        struct act_query qs = {.limit = 10, .since = recs[1].start};
        list_ids(a, "guest", &qs, ids, sizeof ids);
        snprintf(want, sizeof want, "%s %s", id2, id1);
        CHECK_STREQ(ids, want);
        struct act_query qu = {.limit = 10, .upto = recs[1].start};
        list_ids(a, "guest", &qu, ids, sizeof ids);
        snprintf(want, sizeof want, "%s %s %s", id1, id0, old);
        CHECK_STREQ(ids, want);
        struct act_query qc = {.count = true};
        json_t *c = NULL;
        CHECK_EQ_INT(act_list(a, "guest", &qc, &c), 0);
        CHECK_EQ_INT(json_integer_value(json_object_get(c, "activations")), 4);
        json_decref(c);
        act_close(a);
        store_close(st);
        st = NULL;
        a = NULL;
        CHECK_EQ_INT(store_open(&scfg, NULL, &st, &err), 0);
        CHECK_EQ_INT(store_schema(st), STORE_SCHEMA_VERSION);
        acfg.max_count = round == 0 ? 100 : 2;
        CHECK_EQ_INT(act_open(base, st, &acfg, &a, &err), 0);
    }

    /* Retention by count: the oldest go first, the moved legacy record and
     * its act_legacy entry with them. */
    char nid[33];
    act_new_id(nid);
    struct plat_buf b = {0};
    make_rec(&b, "guest", NULL, "a3", nid, plat_clock_real_ms());
    struct act_rec r = {.id = nid, .rec = b.data, .len = b.len};
    CHECK_EQ_INT(act_put(a, "guest", &r, NULL, NULL), 0);
    plat_buf_fini(&b);
    char ids[512], want[512];
    struct act_query q = {.limit = 10};
    list_ids(a, "guest", &q, ids, sizeof ids);
    snprintf(want, sizeof want, "%s %s", nid, id2);
    CHECK_STREQ(ids, want);
    expect_get(a, "guest", old, -ENOENT);
    CHECK_EQ_INT(count_db(st, STORE_ACT_LEGACY), 0);
    expect_get(a, "other", recs[4].id, 0); /* another namespace keeps its own */
    act_close(a);
    store_close(st);
    event_base_free(base);
    plat_rm_rf(dir);
}

/* More records than one batch holds, in a map that has to grow, from a
 * store whose move stopped half-way (stamped 2, act_index not empty); one
 * record starts later than its id's time by more than lists allow, so it is
 * keyed by its start. A store of schema 1 with nothing to move is stamped. */
static void a_long_move_in_batches_resumes(void)
{
    char dir[] = "/tmp/wisp-act-XXXXXX";
    struct store_cfg scfg;
    struct store *st = new_store(dir, &scfg, 1u << 20);
    struct wisp_err err = {0};
    enum { N = 5000 };
    struct old_rec *recs = calloc(N, sizeof *recs);
    int64_t now = plat_clock_real_ms();
    for (int i = 0; i < N; i++) {
        act_new_id(recs[i].id);
        recs[i].ns = i % 2 ? "guest" : "other";
        recs[i].name = "a";
        recs[i].start = now - N + i;
        recs[i].has_record = true;
    }
    recs[N - 1].start = now + 5000; /* later than its id's time by 5 s */
    struct old_layout o = {recs, N, 2};
    CHECK_EQ_INT(store_write(st, write_old, &o, &err), 0);
    store_close(st);

    struct event_base *base = event_base_new();
    st = NULL;
    CHECK_EQ_INT(store_open(&scfg, NULL, &st, &err), 0);
    struct act_cfg acfg = {.max_count = 100000, .queue_max = 100};
    struct act *a = NULL;
    CHECK_EQ_INT(act_open(base, st, &acfg, &a, &err), 0);
    CHECK_EQ_INT(count_db(st, STORE_ACT_INDEX), 0);
    CHECK_EQ_INT(count_db(st, STORE_ACTIVATIONS), N);
    CHECK_EQ_INT(count_db(st, STORE_ACT_LEGACY), 1);
    for (int i = 0; i < N; i += 97)
        expect_get(a, recs[i].ns, recs[i].id, 0);
    expect_get(a, "guest", recs[N - 1].id, 0);
    struct act_query qc = {.count = true};
    json_t *c = NULL;
    CHECK_EQ_INT(act_list(a, "guest", &qc, &c), 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(c, "activations")), N / 2);
    json_decref(c);
    struct act_query qs = {.limit = 10, .since = now + 4000};
    char ids[512];
    list_ids(a, "guest", &qs, ids, sizeof ids);
    CHECK_STREQ(ids, recs[N - 1].id);
    act_close(a);
    store_close(st);
    free(recs);

    /* schema 1, nothing in act_index: stamped 2 all the same */
    char dir2[] = "/tmp/wisp-act-XXXXXX";
    st = new_store(dir2, &scfg, 1u << 20);
    struct old_layout none = {NULL, 0, 1};
    CHECK_EQ_INT(store_write(st, write_old, &none, &err), 0);
    store_close(st);
    st = NULL;
    CHECK_EQ_INT(store_open(&scfg, NULL, &st, &err), 0);
    CHECK_EQ_INT(store_schema(st), 1);
    a = NULL;
    CHECK_EQ_INT(act_open(base, st, &acfg, &a, &err), 0);
    CHECK_EQ_INT(store_schema(st), STORE_SCHEMA_VERSION);
    act_close(a);
    store_close(st);
    event_base_free(base);
    plat_rm_rf(dir);
    plat_rm_rf(dir2);
}

static const struct check_test tests[] = {
    {"schema1_store_moves_to_one_tree", schema1_store_moves_to_one_tree},
    {"a_long_move_in_batches_resumes", a_long_move_in_batches_resumes},
};

CHECK_MAIN(tests)
