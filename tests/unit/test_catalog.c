/* tests/unit/test_catalog.c - seeding whisk.system (core/catalog.h) into a
 * real store in a fresh directory, from a catalog folder each test writes:
 * what is written the first time, that the same catalog writes nothing
 * again, what a change rewrites (and its version), what is removed, what is
 * never touched, and the python versions where the manifest offers no
 * nodejs. The real runtimes/catalog is seeded once too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "check.h"
#include "plat.h"
#include "pool.h"
#include "store.h"
#include "wisp_config.h"
#include "wjson.h"

static const char KINDS[] =
    "{\"kinds\": ["
    "{\"kind\": \"python:3\", \"family\": \"python\", \"default\": true, \"interpreter\": "
    "\"/usr/bin/python3\", \"launcher\": \"python/launcher.py\", \"needs\": \"code\"},"
    "{\"kind\": \"nodejs:20\", \"family\": \"nodejs\", \"default\": true, \"interpreter\": "
    "\"/usr/bin/node\", \"launcher\": \"nodejs/launcher.js\", \"needs\": \"code\"},"
    "{\"kind\": \"sequence\", \"family\": \"sequence\", \"default\": true, \"needs\": "
    "\"components\"}]}";
static const char KINDS_NO_NODE[] =
    "{\"kinds\": ["
    "{\"kind\": \"python:3\", \"family\": \"python\", \"default\": true, \"interpreter\": "
    "\"/usr/bin/python3\", \"launcher\": \"python/launcher.py\", \"needs\": \"code\"}]}";

static const char MANIFEST[] =
    "{\"packages\": [{\"name\": \"utils\", \"python_prelude\": \"utils/pre.py\","
    " \"annotations\": [{\"key\": \"description\", \"value\": \"d\"}],"
    " \"actions\": [{\"name\": \"echo\", \"annotations\": [{\"key\": \"description\","
    " \"value\": \"Returns the input\"}]}, {\"name\": \"date\"}]}]}";

struct fixture {
    char dir[64]; /* the store */
    char rt[64];  /* the runtimes folder: catalog/... */
    struct store *st;
    struct rt_kinds *kinds;
};

static void put_file(struct fixture *f, const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/catalog/%s", f->rt, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    CHECK_EQ_INT(plat_mkdir_p(path, 0755), 0);
    *slash = '/';
    CHECK_EQ_INT(plat_write_file(path, text, strlen(text), 0644), 0);
}

static void setup(struct fixture *f, const char *kinds)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/wisp-test-catalog-XXXXXX");
    snprintf(f->rt, sizeof f->rt, "/tmp/wisp-test-catalog-rt-XXXXXX");
    CHECK(mkdtemp(f->dir) != NULL);
    CHECK(mkdtemp(f->rt) != NULL);
    struct store_cfg sc = {.dir = f->dir, .map_bytes = 1 << 20, .map_max_bytes = 64 << 20};
    struct wisp_err err = {0};
    CHECK_EQ_INT(store_open(&sc, NULL, &f->st, &err), 0);
    CHECK_EQ_INT(rt_kinds_parse(kinds, strlen(kinds), "test", &f->kinds, &err), 0);
    put_file(f, "catalog.json", MANIFEST);
    put_file(f, "utils/echo.js", "function main(a) { return a; }\n");
    put_file(f, "utils/date.js", "function main() { return {date: new Date()}; }\n");
    put_file(f, "utils/pre.py", "PRELUDE = 1");
    put_file(f, "utils/echo.py", "def main(a):\n    return a\n");
    put_file(f, "utils/date.py", "def main(a):\n    return {}\n");
}

static void teardown(struct fixture *f)
{
    store_close(f->st);
    rt_kinds_free(f->kinds);
    plat_rm_rf(f->dir);
    plat_rm_rf(f->rt);
}

static int seed(struct fixture *f, struct catalog_result *res, struct wisp_err *err)
{
    struct catalog_cfg cc = {.runtimes_dir = f->rt, .kinds = f->kinds};
    memset(res, 0, sizeof *res);
    return catalog_seed(f->st, &cc, res, err);
}

static json_t *get(struct fixture *f, const char *path, enum rec_kind *kind)
{
    json_t *doc = NULL;
    enum rec_kind k;
    int rc = store_entity_get(f->st, CATALOG_NS, path, &k, &doc);
    if (kind)
        *kind = rc == 0 ? k : 0;
    return rc == 0 ? doc : NULL;
}

static const char *ann(const json_t *doc, const char *key)
{
    return json_string_value(wjson_kv_get(json_object_get(doc, "annotations"), key));
}

/* Writes a document at whisk.system/path as something else than the catalog would. */
struct raw_put {
    const char *path;
    enum rec_kind kind;
    json_t *doc; /* NULL: bytes that are no record */
};

static int raw_put_fn(struct store_txn *t, void *arg)
{
    struct raw_put *p = arg;
    char key[STORE_MAX_KEY];
    int klen = store_entity_key(CATALOG_NS, p->path, key);
    if (klen < 0)
        return klen;
    if (!p->doc)
        return store_txn_put_raw(t, STORE_ENTITIES, key, (size_t)klen, "\xc1garbage", 8);
    return store_txn_put(t, STORE_ENTITIES, key, (size_t)klen, p->kind, 1, p->doc);
}

static void raw_put(struct fixture *f, const char *path, enum rec_kind kind, json_t *doc)
{
    struct raw_put p = {.path = path, .kind = kind, .doc = doc};
    struct wisp_err err = {0};
    CHECK_EQ_INT(store_write(f->st, raw_put_fn, &p, &err), 0);
    json_decref(doc);
}

/* ==== tests ============================================================= */

static void seeds_published_entities_once(void)
{
    struct fixture f;
    setup(&f, KINDS);
    struct catalog_result r;
    struct wisp_err err = {0};
    CHECK_EQ_INT(seed(&f, &r, &err), 0);
    CHECK_EQ_INT(r.packages, 1);
    CHECK_EQ_INT(r.actions, 2);
    CHECK_EQ_INT(r.written, 3);
    CHECK_STREQ(r.kind, "nodejs:20");
    enum rec_kind kind;
    json_t *pkg = get(&f, "utils", &kind), *echo = get(&f, "utils/echo", NULL);
    CHECK_EQ_INT(kind, REC_PACKAGE);
    CHECK(json_is_true(json_object_get(pkg, "publish")));
    CHECK_STREQ(wjson_str(pkg, "namespace"), "whisk.system");
    CHECK_STREQ(ann(pkg, "description"), "d");
    CHECK_STREQ(ann(pkg, CATALOG_MARK_KEY), CATALOG_MARK_VALUE);
    CHECK_EQ_INT(json_object_size(json_object_get(pkg, "binding")), 0);
    /* an action as a PUT makes it */
    CHECK_STREQ(wjson_str(echo, "namespace"), "whisk.system/utils");
    CHECK_STREQ(wjson_str(echo, "name"), "echo");
    CHECK_STREQ(wjson_str(echo, "version"), "0.0.1");
    CHECK(json_is_true(json_object_get(echo, "publish")));
    const json_t *ex = json_object_get(echo, "exec");
    CHECK_STREQ(wjson_str(ex, "kind"), "nodejs:20");
    CHECK_STREQ(wjson_str(ex, "code"), "function main(a) { return a; }\n");
    CHECK_STREQ(ann(echo, "description"), "Returns the input");
    CHECK_STREQ(ann(echo, CATALOG_MARK_KEY), CATALOG_MARK_VALUE);
    CHECK_STREQ(ann(echo, "exec"), "nodejs:20");
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(echo, "limits"), "memory")),
                 128);
    json_int_t updated = json_integer_value(json_object_get(echo, "updated"));

    /* the same catalog again: nothing written, nothing changed */
    CHECK_EQ_INT(seed(&f, &r, &err), 0);
    CHECK_EQ_INT(r.written + r.removed + r.foreign, 0);
    json_t *again = get(&f, "utils/echo", NULL);
    CHECK(json_equal(again, echo));
    CHECK_EQ_INT(json_integer_value(json_object_get(again, "updated")), updated);
    json_decref(again);
    json_decref(pkg);
    json_decref(echo);
    teardown(&f);
}

static void a_change_rewrites_that_action_as_an_update(void)
{
    struct fixture f;
    setup(&f, KINDS);
    struct catalog_result r;
    struct wisp_err err = {0};
    CHECK_EQ_INT(seed(&f, &r, &err), 0);
    put_file(&f, "utils/echo.js", "function main(a) { return {a}; }\n");
    CHECK_EQ_INT(seed(&f, &r, &err), 0);
    CHECK_EQ_INT(r.written, 1);
    json_t *echo = get(&f, "utils/echo", NULL), *date = get(&f, "utils/date", NULL);
    CHECK_STREQ(wjson_str(echo, "version"), "0.0.2");
    CHECK_STREQ(wjson_str(json_object_get(echo, "exec"), "code"),
                "function main(a) { return {a}; }\n");
    CHECK_STREQ(wjson_str(date, "version"), "0.0.1");
    json_decref(echo);
    json_decref(date);
    /* a stored document changed behind wispd's back is put right too */
    json_t *doc = get(&f, "utils/date", NULL), *copy = json_deep_copy(doc);
    json_object_set_new(copy, "publish", json_false());
    json_decref(doc);
    raw_put(&f, "utils/date", REC_ACTION, copy);
    CHECK_EQ_INT(seed(&f, &r, &err), 0);
    CHECK_EQ_INT(r.written, 1);
    date = get(&f, "utils/date", NULL);
    CHECK(json_is_true(json_object_get(date, "publish")));
    CHECK_STREQ(wjson_str(date, "version"), "0.0.2");
    json_decref(date);
    teardown(&f);
}

static void removes_only_marked_entities_it_no_longer_names(void)
{
    struct fixture f;
    setup(&f, KINDS);
    struct catalog_result r;
    struct wisp_err err = {0};
    CHECK_EQ_INT(seed(&f, &r, &err), 0);
    /* an entity wispd's catalog did not write, in whisk.system */
    raw_put(&f, "utils/other", REC_ACTION,
            json_pack("{s:s, s:s, s:[]}", "namespace", "whisk.system/utils", "name", "other",
                      "annotations"));
    /* the manifest drops date */
    put_file(&f, "catalog.json",
             "{\"packages\": [{\"name\": \"utils\", \"python_prelude\": \"utils/pre.py\","
             " \"annotations\": [{\"key\": \"description\", \"value\": \"d\"}],"
             " \"actions\": [{\"name\": \"echo\", \"annotations\": [{\"key\": \"description\","
             " \"value\": \"Returns the input\"}]}]}]}");
    CHECK_EQ_INT(seed(&f, &r, &err), 0);
    CHECK_EQ_INT(r.removed, 1);
    CHECK_EQ_INT(r.written, 0);
    json_t *date = get(&f, "utils/date", NULL), *other = get(&f, "utils/other", NULL);
    CHECK(date == NULL);
    CHECK(other != NULL);
    json_decref(other);
    teardown(&f);
}

static void leaves_unmarked_entities_in_its_way_alone(void)
{
    struct fixture f;
    setup(&f, KINDS);
    raw_put(&f, "utils/echo", REC_ACTION,
            json_pack("{s:s, s:s, s:s, s:[]}", "namespace", "whisk.system/utils", "name", "echo",
                      "version", "7.0.0", "annotations"));
    struct catalog_result r;
    struct wisp_err err = {0};
    CHECK_EQ_INT(seed(&f, &r, &err), 0);
    CHECK_EQ_INT(r.foreign, 1);
    CHECK_EQ_INT(r.written, 2);
    json_t *echo = get(&f, "utils/echo", NULL);
    CHECK_STREQ(wjson_str(echo, "version"), "7.0.0");
    CHECK(ann(echo, CATALOG_MARK_KEY) == NULL);
    json_decref(echo);
    teardown(&f);
}

static void rewrites_a_record_that_cannot_be_read(void)
{
    struct fixture f;
    setup(&f, KINDS);
    raw_put(&f, "utils/echo", REC_ACTION, NULL);
    struct catalog_result r;
    struct wisp_err err = {0};
    CHECK_EQ_INT(seed(&f, &r, &err), 0);
    CHECK_EQ_INT(r.written, 3);
    json_t *echo = get(&f, "utils/echo", NULL);
    CHECK_STREQ(ann(echo, CATALOG_MARK_KEY), CATALOG_MARK_VALUE);
    CHECK_STREQ(wjson_str(echo, "version"), "0.0.1");
    json_decref(echo);
    teardown(&f);
}

static void python_versions_without_nodejs(void)
{
    struct fixture f;
    setup(&f, KINDS_NO_NODE);
    struct catalog_result r;
    struct wisp_err err = {0};
    CHECK_EQ_INT(seed(&f, &r, &err), 0);
    CHECK_STREQ(r.kind, "python:3");
    json_t *echo = get(&f, "utils/echo", NULL);
    const json_t *ex = json_object_get(echo, "exec");
    CHECK_STREQ(wjson_str(ex, "kind"), "python:3");
    /* the prelude first, on a line of its own */
    CHECK_STREQ(wjson_str(ex, "code"), "PRELUDE = 1\ndef main(a):\n    return a\n");
    json_decref(echo);
    teardown(&f);
}

static void missing_or_broken_catalogs(void)
{
    struct fixture f;
    setup(&f, KINDS);
    struct catalog_result r;
    struct wisp_err err = {0};
    /* no catalog folder: nothing seeded, not an error */
    char path[128];
    snprintf(path, sizeof path, "%s/catalog", f.rt);
    plat_rm_rf(path);
    CHECK_EQ_INT(seed(&f, &r, &err), 0);
    CHECK_EQ_INT(r.written, 0);
    CHECK(get(&f, "utils", NULL) == NULL);
    /* a manifest that is not one, a bad name, a missing code file */
    const char *bad[] = {
        "[", "{}", "{\"packages\": [{\"name\": \"a/b\", \"actions\": []}]}",
        "{\"packages\": [{\"name\": \"utils\", \"actions\": [{\"name\": \"nope\"}]}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put_file(&f, "catalog.json", bad[i]);
        memset(&err, 0, sizeof err);
        CHECK_EQ_INT(seed(&f, &r, &err), -EINVAL);
        CHECK(err.msg[0] != '\0');
        CHECK(get(&f, "utils", NULL) == NULL);
    }
    teardown(&f);
}

static void seeds_the_real_catalog(void)
{
    struct fixture f;
    setup(&f, KINDS);
    struct catalog_cfg cc = {.runtimes_dir = WISP_SOURCE_DIR "/runtimes", .kinds = f.kinds};
    struct catalog_result r = {0};
    struct wisp_err err = {0};
    CHECK_EQ_INT(catalog_seed(f.st, &cc, &r, &err), 0);
    CHECK_EQ_INT(r.packages, 1);
    CHECK_EQ_INT(r.actions, 9);
    CHECK_EQ_INT(r.written, 10);
    const char *names[] = {"echo", "cat",  "smash",     "split",  "sort",
                           "head", "date", "namespace", "hosturl"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "utils/%s", names[i]);
        json_t *a = get(&f, path, NULL);
        CHECK(a != NULL);
        CHECK(ann(a, "description") != NULL);
        json_decref(a);
    }
    teardown(&f);
}

static const struct check_test tests[] = {
    {"seeds_published_entities_once", seeds_published_entities_once},
    {"a_change_rewrites_that_action_as_an_update", a_change_rewrites_that_action_as_an_update},
    {"removes_only_marked_entities_it_no_longer_names",
     removes_only_marked_entities_it_no_longer_names},
    {"leaves_unmarked_entities_in_its_way_alone", leaves_unmarked_entities_in_its_way_alone},
    {"rewrites_a_record_that_cannot_be_read", rewrites_a_record_that_cannot_be_read},
    {"python_versions_without_nodejs", python_versions_without_nodejs},
    {"missing_or_broken_catalogs", missing_or_broken_catalogs},
    {"seeds_the_real_catalog", seeds_the_real_catalog},
};
CHECK_MAIN(tests)
