/* core/catalog.c - see catalog.h. Seeds whisk.system's packages from
 * RUNTIMES_DIR/catalog/catalog.json at start-up.
 *
 * The documents are built by entity_build_package/entity_build_action from
 * a PUT body, exactly as the API builds them, so a seeded action is stored,
 * listed, read, bound and invoked like any other; nothing on the request
 * path knows the catalog exists. An update passes the stored document as
 * the old one, so its version goes up as a PUT with overwrite would make
 * it, and the pool, whose warm workers are keyed by version and `updated`,
 * never runs an old worker for new code.
 *
 * Deciding what to write: the document the manifest would give now is
 * built against the stored one and compared with it, `updated` and
 * `version` aside. Equal everywhere means the write is aborted, so a
 * restart costs a few reads and no commit. The comparison is of whole
 * documents, not of a digest of the inputs, so a stored record changed by
 * anything (another build's code, a kind that became runnable, a poke at
 * the store) is put right at the next start.
 *
 * The one thing a newcomer would get wrong: only entities carrying the
 * "wisp-managed": "catalog" annotation are replaced or removed. whisk.system
 * has no key today, but an entity wispd did not write there is not wispd's
 * to overwrite; it is left alone and named in the log. */
#include "catalog.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "entity.h"
#include "log.h"
#include "plat.h"
#include "pool.h"
#include "store.h"
#include "wjson.h"

#define PATH_LEN (2 * ENTITY_NAME_MAX + 2) /* "pkg/name" and its NUL */
#define CODE_MAX (1u << 20)                /* per source file; they are a few hundred bytes */
#define MANIFEST_MAX (1u << 20)
/* The store write aborts with this when nothing differs (never returned). */
#define UNCHANGED (-EALREADY)

/* The languages the actions come in, best first: OpenWhisk ships them in
 * JavaScript; the python versions give the same answers (their prelude
 * does JavaScript's conversions) for gateways without node. */
static const struct {
    const char *kind, *ext;
} langs[] = {{"nodejs:default", "js"}, {"python:default", "py"}};

/* One entity the manifest names: its path in whisk.system and the PUT body
 * that makes it. Packages come before their actions. */
struct entry {
    enum rec_kind kind;
    char path[PATH_LEN];
    json_t *body;
};

struct seed {
    struct entity_env env;
    struct entry *v;
    size_t n, cap;
    int64_t now;
    struct catalog_result res;
    json_t *stale; /* paths of marked entities the manifest no longer names */
    struct wisp_err *err;
};

static bool marked(const json_t *doc)
{
    const char *v =
        json_string_value(wjson_kv_get(json_object_get(doc, "annotations"), CATALOG_MARK_KEY));
    return v && strcmp(v, CATALOG_MARK_VALUE) == 0;
}

/* ==== the manifest ==================================================== */

/* Reads DIR/catalog/REL into a JSON string; with prelude, that file's text
 * comes first. */
static int read_code(const char *dir, const char *rel, const char *prelude, json_t **out,
                     struct wisp_err *err)
{
    char path[PATH_MAX + PATH_LEN + 32];
    char *text = NULL, *pre = NULL;
    size_t len = 0, plen = 0;
    int rc;
    if ((size_t)snprintf(path, sizeof path, "%s/catalog/%s", dir, rel) >= sizeof path)
        return wisp_err_set(err, -ENAMETOOLONG, "catalog: %s/catalog/%s: name too long", dir, rel);
    /* a catalog folder without the code it names is one that cannot be used */
    if ((rc = plat_read_file(path, CODE_MAX, &text, &len)) < 0)
        return wisp_err_set(err, -EINVAL, "catalog: cannot read %s: %s", path, strerror(-rc));
    if (prelude) {
        if ((size_t)snprintf(path, sizeof path, "%s/catalog/%s", dir, prelude) >= sizeof path)
            rc = -ENAMETOOLONG;
        else
            rc = plat_read_file(path, CODE_MAX, &pre, &plen);
        if (rc < 0) {
            free(text);
            return wisp_err_set(err, -EINVAL, "catalog: cannot read %s: %s", path, strerror(-rc));
        }
    }
    char *all = malloc(plen + 1 + len + 1);
    if (!all) {
        rc = wisp_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if (plen)
        memcpy(all, pre, plen);
    size_t n = plen;
    if (plen && pre[plen - 1] != '\n')
        all[n++] = '\n';
    memcpy(all + n, text, len);
    n += len;
    *out = json_stringn(all, n);
    rc = *out ? 0 : wisp_err_set(err, -EINVAL, "catalog: %s is not UTF-8 text", rel);
    free(all);
out:
    free(text);
    free(pre);
    return rc;
}

static int add_entry(struct seed *s, enum rec_kind kind, const char *path, json_t *body)
{
    if (!body)
        return wisp_err_set(s->err, -ENOMEM, "out of memory");
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        struct entry *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            json_decref(body);
            return wisp_err_set(s->err, -ENOMEM, "out of memory");
        }
        s->v = v;
        s->cap = cap;
    }
    struct entry *e = &s->v[s->n++];
    e->kind = kind;
    plat_strcpy(e->path, sizeof e->path, path);
    e->body = body;
    return 0;
}

/* The manifest's annotations with the catalog's mark added. */
static json_t *marked_annotations(const json_t *ann)
{
    json_t *out = json_is_array(ann) ? json_copy((json_t *)ann) : json_array();
    if (out && json_array_append_new(out, json_pack("{s:s, s:s}", "key", CATALOG_MARK_KEY, "value",
                                                    CATALOG_MARK_VALUE)) < 0) {
        json_decref(out);
        out = NULL;
    }
    return out;
}

static int load_package(struct seed *s, const char *dir, const json_t *pkg, const char *kind,
                        const char *ext)
{
    const char *name = wjson_str(pkg, "name"), *prelude = wjson_str(pkg, "python_prelude");
    const json_t *actions = json_object_get(pkg, "actions");
    int rc;
    if (!name || entity_name_valid(name, "package", s->err) < 0 || !json_is_array(actions))
        return wisp_err_set(s->err, -EINVAL,
                            "catalog.json: each package needs a valid name and an actions array");
    json_t *body = json_pack("{s:[], s:o, s:b}", "parameters", "annotations",
                             marked_annotations(json_object_get(pkg, "annotations")), "publish", 1);
    json_t *params = json_object_get(pkg, "parameters");
    if (body && params)
        json_object_set(body, "parameters", params);
    if ((rc = add_entry(s, REC_PACKAGE, name, body)) < 0)
        return rc;
    size_t i;
    const json_t *a;
    json_array_foreach(actions, i, a)
    {
        const char *an = wjson_str(a, "name");
        if (!an || entity_name_valid(an, "action", s->err) < 0)
            return wisp_err_set(s->err, -EINVAL,
                                "catalog.json: %s: actions[%zu] needs a valid name", name, i);
        char rel[PATH_LEN + 8], path[PATH_LEN];
        snprintf(rel, sizeof rel, "%s/%s.%s", name, an, ext);
        snprintf(path, sizeof path, "%s/%s", name, an);
        json_t *code = NULL;
        bool py = strcmp(ext, "py") == 0;
        if ((rc = read_code(dir, rel, py ? prelude : NULL, &code, s->err)) < 0)
            return rc;
        /* OpenWhisk installs them with the defaults, bar memory: the
         * smallest OpenWhisk allows, as these hold a few kB, so a sequence
         * of three reserves 384 MB of the pool's budget and not 768. */
        body = json_pack("{s:{s:s, s:o}, s:[], s:o, s:{s:i, s:i, s:i, s:i}, s:b}", "exec", "kind",
                         kind, "code", code, "parameters", "annotations",
                         marked_annotations(json_object_get(a, "annotations")), "limits", "timeout",
                         60000, "memory", 128, "logs", 10, "concurrency", 1, "publish", 1);
        if ((rc = add_entry(s, REC_ACTION, path, body)) < 0)
            return rc;
    }
    return 0;
}

/* The kind the actions run as: the first language the manifest offers.
 * Resolved against the machine (pool_open), it offers only kinds whose
 * interpreter runs here, so this is where a gateway without node gets the
 * python versions. false: neither runs. */
static bool pick_kind(const struct rt_kinds *kinds, const char **kind, const char **ext)
{
    for (size_t i = 0; i < WISP_ARRAY_LEN(langs); i++) {
        const struct rt_kind *k = rt_kind_find(kinds, langs[i].kind);
        if (k) {
            *kind = k->kind;
            *ext = langs[i].ext;
            return true;
        }
    }
    return false;
}

/* ==== the store write ================================================= */

/* a and b are the same document but for when it was written and its version */
static bool same_entity(const json_t *a, const json_t *b)
{
    json_t *x = json_copy((json_t *)a), *y = json_copy((json_t *)b); /* shallow */
    bool eq = false;
    if (x && y) {
        static const char *const stamp[] = {"updated", "version"};
        for (size_t i = 0; i < WISP_ARRAY_LEN(stamp); i++) {
            json_object_del(x, stamp[i]);
            json_object_del(y, stamp[i]);
        }
        eq = json_equal(x, y);
    }
    json_decref(x);
    json_decref(y);
    return eq;
}

static int build(struct seed *s, const struct entry *e, const json_t *old, json_t **doc)
{
    if (e->kind == REC_PACKAGE)
        return entity_build_package(&s->env, e->body, old, CATALOG_NS, e->path, NULL, s->now, doc,
                                    s->err);
    char ns_path[sizeof CATALOG_NS + ENTITY_NAME_MAX + 1];
    const char *slash = strchr(e->path, '/');
    snprintf(ns_path, sizeof ns_path, "%s/%.*s", CATALOG_NS, (int)(slash - e->path), e->path);
    return entity_build_action(&s->env, e->body, old, ns_path, slash + 1, CATALOG_NS, s->now, doc,
                               s->err);
}

/* Writes e unless what is stored is the same, or is not the catalog's. */
static int seed_one(struct seed *s, struct store_txn *t, const struct entry *e)
{
    char key[STORE_MAX_KEY];
    int klen = store_entity_key(CATALOG_NS, e->path, key);
    if (klen < 0)
        return wisp_err_set(s->err, -EINVAL, "catalog: %s: name too long", e->path);
    enum rec_kind kind;
    json_t *old = NULL, *doc = NULL;
    int rc = store_txn_get(t, STORE_ENTITIES, key, (size_t)klen, &kind, NULL, &old);
    if (rc == -EBADMSG || rc == -EPROTO) { /* unreadable: whose it was cannot be told */
        wlog_warn("catalog", "/%s/%s: the stored record cannot be read; writing it anew",
                  CATALOG_NS, e->path);
        old = NULL;
    } else if (rc < 0 && rc != -ENOENT) {
        return wisp_err_set(s->err, rc, "catalog: cannot read /%s/%s", CATALOG_NS, e->path);
    } else if (rc == 0 && (kind != e->kind || !marked(old))) {
        wlog_warn("catalog", "/%s/%s exists and was not written by wispd's catalog: left as it is",
                  CATALOG_NS, e->path);
        s->res.foreign++;
        json_decref(old);
        return 0;
    }
    if ((rc = build(s, e, old, &doc)) < 0) {
        char why[sizeof s->err->msg];
        plat_strcpy(why, sizeof why, s->err->msg);
        json_decref(old);
        return wisp_err_set(s->err, rc, "catalog: /%s/%s: %s", CATALOG_NS, e->path, why);
    }
    if (!old || !same_entity(old, doc)) {
        if ((rc = store_txn_put(t, STORE_ENTITIES, key, (size_t)klen, e->kind, s->now, doc)) < 0)
            wisp_err_set(s->err, rc, "catalog: cannot write /%s/%s", CATALOG_NS, e->path);
        else
            s->res.written++;
    }
    json_decref(old);
    json_decref(doc);
    return rc;
}

static bool wanted(const struct seed *s, const char *path, size_t len)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->v[i].path) == len && memcmp(s->v[i].path, path, len) == 0)
            return true;
    return false;
}

/* Collects (a scan must not write) the marked packages and actions the
 * manifest no longer names: what an older build seeded. */
static int stale_fn(void *arg, const struct store_rec *r)
{
    struct seed *s = arg;
    int kind = store_rec_kind(r);
    size_t klen, skip = sizeof CATALOG_NS; /* "whisk.system" and its NUL */
    const char *key = store_rec_key(r, &klen);
    json_t *doc = NULL;
    if ((kind != REC_ACTION && kind != REC_PACKAGE) || klen <= skip ||
        wanted(s, key + skip, klen - skip) || store_rec_doc(r, &doc) < 0)
        return 0;
    bool ours = marked(doc);
    json_decref(doc);
    if (ours && json_array_append_new(s->stale, json_stringn(key + skip, klen - skip)) < 0)
        return -ENOMEM;
    return 0;
}

static int seed_fn(struct store_txn *t, void *arg)
{
    struct seed *s = arg;
    /* run again from the start when the map grew: nothing carries over */
    s->res.written = s->res.removed = s->res.foreign = 0;
    json_array_clear(s->stale);
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++)
        rc = seed_one(s, t, &s->v[i]);
    char prefix[sizeof CATALOG_NS];
    memcpy(prefix, CATALOG_NS, sizeof prefix); /* with its NUL: the namespace's keys */
    if (rc == 0 && (rc = store_txn_scan(t, STORE_ENTITIES, prefix, sizeof prefix, stale_fn, s)) < 0)
        wisp_err_set(s->err, rc, "catalog: cannot list /%s", CATALOG_NS);
    size_t i;
    json_t *p;
    json_array_foreach(s->stale, i, p)
    {
        if (rc < 0)
            break;
        char key[STORE_MAX_KEY];
        int klen = store_entity_key(CATALOG_NS, json_string_value(p), key);
        rc = klen < 0 ? -EINVAL : store_txn_del(t, STORE_ENTITIES, key, (size_t)klen);
        if (rc == 0)
            s->res.removed++;
        else
            wisp_err_set(s->err, rc, "catalog: cannot remove /%s/%s", CATALOG_NS,
                         json_string_value(p));
    }
    if (rc < 0)
        return rc;
    return s->res.written + s->res.removed ? 0 : UNCHANGED;
}

int catalog_seed(struct store *st, const struct catalog_cfg *cfg, struct catalog_result *out,
                 struct wisp_err *err)
{
    struct wisp_err local = {0};
    if (!err)
        err = &local;
    struct seed s = {
        /* OpenWhisk's limits, whatever this gateway's configuration allows
         * its users: the catalog is the same everywhere */
        .env = {.kinds = cfg->kinds,
                .max_code_bytes = CODE_MAX * 2,
                .max_params_bytes = 1u << 20,
                .sequence_max = 1,
                .concurrency_max = 1},
        .now = plat_clock_real_ms(),
        .stale = json_array(),
        .err = err,
    };
    char path[PATH_MAX + 32];
    char *text = NULL;
    size_t len;
    json_t *man = NULL;
    const char *kind, *ext;
    int rc;
    if (!s.stale)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/catalog/catalog.json", cfg->runtimes_dir);
    rc = plat_read_file(path, MANIFEST_MAX, &text, &len);
    if (rc == -ENOENT) {
        wlog_warn("catalog", "no %s: /%s's packages are not seeded", path, CATALOG_NS);
        rc = 0;
        goto out;
    }
    if (rc < 0) {
        rc = wisp_err_set(err, rc, "catalog: cannot read %s: %s", path, strerror(-rc));
        goto out;
    }
    struct wisp_err je = {0};
    man = wjson_parse(text, len, &je);
    const json_t *pkgs = json_object_get(man, "packages");
    if (!json_is_array(pkgs)) {
        rc = wisp_err_set(err, -EINVAL, "catalog: %s: %s", path,
                          man ? "needs a \"packages\" array" : je.msg);
        goto out;
    }
    if (!pick_kind(cfg->kinds, &kind, &ext)) {
        wlog_warn("catalog", "neither nodejs nor python runs here: /%s is not seeded", CATALOG_NS);
        goto out;
    }
    size_t i;
    const json_t *p;
    json_array_foreach(pkgs, i, p)
    {
        if ((rc = load_package(&s, cfg->runtimes_dir, p, kind, ext)) < 0)
            goto out;
    }
    for (size_t j = 0; j < s.n; j++) {
        if (s.v[j].kind == REC_PACKAGE)
            s.res.packages++;
        else
            s.res.actions++;
    }
    plat_strcpy(s.res.kind, sizeof s.res.kind, kind);
    rc = store_write(st, seed_fn, &s, err);
    if (rc == UNCHANGED) {
        rc = 0;
        wlog_info("catalog", "/%s up to date: packages=%u actions=%u kind=%s", CATALOG_NS,
                  s.res.packages, s.res.actions, kind);
    } else if (rc == 0) {
        wlog_info("catalog", "/%s seeded: packages=%u actions=%u kind=%s written=%u removed=%u",
                  CATALOG_NS, s.res.packages, s.res.actions, kind, s.res.written, s.res.removed);
        json_array_foreach(s.stale, i, p)
            wlog_info("catalog", "/%s/%s: no longer in the catalog, removed", CATALOG_NS,
                      json_string_value(p));
    } else if (!err->msg[0]) {
        wisp_err_set(err, rc, "catalog: the store write failed: %s", strerror(-rc));
    }
out:
    if (rc == 0 && out)
        *out = s.res;
    for (size_t j = 0; j < s.n; j++)
        json_decref(s.v[j].body);
    free(s.v);
    json_decref(s.stale);
    json_decref(man);
    free(text);
    return rc;
}
