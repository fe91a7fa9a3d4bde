/* tools/cli_deploy.c - `wisp deploy` and `wisp undeploy`: a wskdeploy
 * manifest (tools/manifest.c) onto the server.
 *
 * Deploy runs in three steps, and writes only in the last:
 *   1. read: the manifest, the deployment file, -p; every error names
 *      FILE:LINE. Then the server: its runtimes, and for every entity the
 *      manifest names what the server has now. An entity of that name
 *      that is not this project's is an error here, before any write.
 *   2. plan: each entity is created, updated or left as it is (what the
 *      server has is compared with what would be written, ignoring what
 *      the server adds), and the project's entities the manifest no
 *      longer names are to be deleted.
 *   3. write, in dependency order: dropped rules first (so no rule points
 *      at an action about to go), packages, actions, sequences, triggers
 *      (running their feed's CREATE), rules, then the dropped triggers,
 *      actions and packages. The first failure stops it, and what was
 *      done and what was not is printed.
 *
 * What belongs to a project is told by wskdeploy's annotation on every
 * entity: "whisk-managed": {"projectName", "projectHash", "projectDeps",
 * "file"}. projectHash is the SHA-1 of the manifest and deployment files,
 * so a changed file rewrites the entities it deploys. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cli_cmd.h"
#include "manifest.h"
#include "mbedtls/sha1.h"
#include "wjson.h"

enum op { OP_SAME, OP_CREATE, OP_UPDATE, OP_DELETE };
static const char *const op_words[] = {"unchanged", "created", "updated", "deleted"};
static const char *const op_would[] = {"unchanged", "would create", "would update", "would delete"};

struct want {
    const char *coll, *kind; /* "actions", "sequence" */
    struct cli_name n;
    json_t *doc;
    const struct mf_trigger *trigger; /* a trigger with a feed */
    enum op op;
    bool done;
};

struct deploy {
    struct cli_ctx *x;
    struct cli_client *cl;
    struct manifest m;
    char ns[256];    /* the namespace's real name: components and rules name it */
    json_t *managed; /* the whisk-managed annotation's value */
    struct want *w;  /* wants, then the project's entities to delete */
    size_t nw, cap;
};

/* ==== zip: a folder as a stored (uncompressed) archive ==================== */

struct zbuf {
    unsigned char *p;
    size_t len, cap;
    unsigned char *dir; /* the central directory, built alongside */
    size_t dlen, dcap, count;
};

static int zput(unsigned char **p, size_t *len, size_t *cap, const void *d, size_t n)
{
    if (*len + n > *cap) {
        size_t c = (*len + n) * 2;
        unsigned char *g = realloc(*p, c);
        if (!g)
            return -1;
        *p = g, *cap = c;
    }
    memcpy(*p + *len, d, n);
    *len += n;
    return 0;
}

static void le(unsigned char *b, unsigned v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

/* One file: local header and data, and its central directory entry. The
 * time is fixed (1980-01-01) so the same folder zips to the same bytes. */
static int zip_entry(struct zbuf *z, const char *name, const unsigned char *data, size_t n)
{
    unsigned char h[46] = {0};
    size_t nl = strlen(name), off = z->len;
    unsigned crc = (unsigned)crc32(0, data, (uInt)n);
    le(h, 0x04034b50, 4), le(h + 4, 20, 2), le(h + 10, 0, 2), le(h + 12, 0x21, 2);
    le(h + 14, crc, 4), le(h + 18, (unsigned)n, 4), le(h + 22, (unsigned)n, 4),
        le(h + 26, (unsigned)nl, 2);
    if (zput(&z->p, &z->len, &z->cap, h, 30) || zput(&z->p, &z->len, &z->cap, name, nl) ||
        zput(&z->p, &z->len, &z->cap, data, n))
        return -1;
    memset(h, 0, sizeof h);
    le(h, 0x02014b50, 4), le(h + 4, 20, 2), le(h + 6, 20, 2), le(h + 14, 0x21, 2);
    le(h + 16, crc, 4), le(h + 20, (unsigned)n, 4), le(h + 24, (unsigned)n, 4),
        le(h + 28, (unsigned)nl, 2);
    le(h + 42, (unsigned)off, 4);
    z->count++;
    return zput(&z->dir, &z->dlen, &z->dcap, h, 46) || zput(&z->dir, &z->dlen, &z->dcap, name, nl);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int zip_file(struct zbuf *z, const char *path, const char *name)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    size_t n = 0, cap = 0;
    unsigned char chunk[65536];
    int rc = f ? 0 : -1;
    for (size_t got; rc == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0;)
        rc = zput(&data, &n, &cap, chunk, got);
    rc = rc == 0 ? zip_entry(z, name, data ? data : (unsigned char *)"", n) : -1;
    if (f)
        fclose(f);
    free(data);
    return rc;
}

/* The files under dir (prefix: their names in the archive), sorted. */
static int zip_dir(struct zbuf *z, const char *dir, const char *prefix, int depth)
{
    DIR *d = depth < 16 ? opendir(dir) : NULL;
    char **names = NULL;
    size_t n = 0;
    int rc = d ? 0 : -1;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char **g = realloc(names, (n + 1) * sizeof *g);
        rc = g && (g[n] = strdup(e->d_name)) ? 0 : -1;
        names = g ? g : names, n += rc == 0;
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char path[8192], name[8192];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(name, sizeof name, "%s%s", prefix, names[i]);
        if (rc == 0 && stat(path, &st) == 0)
            rc = S_ISDIR(st.st_mode) ? (strcat(name, "/"), zip_dir(z, path, name, depth + 1))
                                     : zip_file(z, path, name);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* exec for a folder: the zip as base64. */
static json_t *exec_from_dir(const struct mf_action *a, struct cli_err *err)
{
    struct zbuf z = {0};
    unsigned char end[22] = {0};
    int rc = zip_dir(&z, a->function, "", 0);
    le(end, 0x06054b50, 4), le(end + 8, (unsigned)z.count, 2), le(end + 10, (unsigned)z.count, 2);
    le(end + 12, (unsigned)z.dlen, 4), le(end + 16, (unsigned)z.len, 4);
    if (rc == 0)
        rc = zput(&z.p, &z.len, &z.cap, z.dir, z.dlen) || zput(&z.p, &z.len, &z.cap, end, 22);
    json_t *exec = rc == 0 ? json_pack("{s:s, s:o, s:b}", "kind", a->runtime, "code",
                                       wjson_base64(z.p, z.len), "binary", 1)
                           : NULL;
    if (exec && a->main)
        json_object_set_new(exec, "main", json_string(a->main));
    free(z.p), free(z.dir);
    if (!exec)
        cli_fail(err, CLI_EXIT_GENERAL, "cannot zip folder '%s'", a->function);
    return exec;
}

/* ==== documents =========================================================== */

/* kv array of obj, plus extra (an object, may be NULL) over it. */
static json_t *kv_of(const json_t *obj, const json_t *extra)
{
    json_t *o = json_deep_copy(obj);
    if (extra)
        json_object_update(o, (json_t *)extra);
    json_t *kv = cli_kv_from_object(o);
    json_decref(o);
    return kv;
}

static json_t *annots_of(struct deploy *d, const json_t *user)
{
    json_t *extra = json_pack("{s:O}", "whisk-managed", d->managed);
    json_t *kv = kv_of(user, extra);
    json_decref(extra);
    return kv;
}

/* web: true|raw|false as `action create --web` sets it. 0, or -1 (memory). */
static int set_web(json_t *annots, const char *mode)
{
    bool raw = mode && strcasecmp(mode, "raw") == 0;
    bool on = raw || (mode && (strcasecmp(mode, "true") == 0 || strcasecmp(mode, "yes") == 0));
    if (!mode)
        return 0;
    return cli_kv_set(annots, "web-export", json_boolean(on)) < 0 ||
                   cli_kv_set(annots, "raw-http", json_boolean(raw)) < 0 ||
                   cli_kv_set(annots, "final", json_boolean(on)) < 0
               ? -1
               : 0;
}

static json_t *exec_of(struct deploy *d, const struct mf_action *a)
{
    if (a->sequence) {
        json_t *comps = json_array();
        for (size_t i = 0; i < a->ncomponents; i++) {
            char q[1024];
            const char *c = a->components[i];
            snprintf(q, sizeof q, c[0] == '/' ? "%s" : "/%s/%s", c[0] == '/' ? c : d->ns, c);
            json_array_append_new(comps, json_string(q));
        }
        return json_pack("{s:s, s:o}", "kind", "sequence", "components", comps);
    }
    struct stat st;
    if (a->function && stat(a->function, &st) == 0 && S_ISDIR(st.st_mode))
        return exec_from_dir(a, &d->x->err);
    struct cli_exec_opts o = {.kind = a->runtime, .main = a->main, .image = a->docker};
    return cli_exec_from_file(a->function, &o, &d->x->err);
}

static json_t *action_doc(struct deploy *d, const struct mf_action *a)
{
    json_t *exec = exec_of(d, a);
    if (!exec)
        return NULL;
    json_t *annots = annots_of(d, a->annotations);
    if (!annots || set_web(annots, a->web) < 0) {
        json_decref(exec), json_decref(annots);
        cli_fail(&d->x->err, CLI_EXIT_GENERAL, "out of memory");
        return NULL;
    }
    json_t *doc = json_pack("{s:o, s:o, s:o}", "exec", exec, "parameters", kv_of(a->inputs, NULL),
                            "annotations", annots);
    if (json_object_size(a->limits))
        json_object_set(doc, "limits", a->limits);
    return doc;
}

static json_t *trigger_doc(struct deploy *d, const struct mf_trigger *t)
{
    json_t *annots = annots_of(d, t->annotations);
    if (t->feed) {
        char q[1024];
        snprintf(q, sizeof q, t->feed[0] == '/' ? "%s" : "/%s/%s",
                 t->feed[0] == '/' ? t->feed : d->ns, t->feed);
        if (cli_kv_set(annots, "feed", json_string(q)) < 0) {
            json_decref(annots);
            return NULL;
        }
    }
    return json_pack("{s:o, s:o}", "parameters", t->feed ? json_array() : kv_of(t->inputs, NULL),
                     "annotations", annots);
}

static json_t *rule_doc(struct deploy *d, const struct mf_rule *r)
{
    char t[1024], a[1024];
    snprintf(t, sizeof t, r->trigger[0] == '/' ? "%s" : "/%s/%s",
             r->trigger[0] == '/' ? r->trigger : d->ns, r->trigger);
    snprintf(a, sizeof a, r->action[0] == '/' ? "%s" : "/%s/%s",
             r->action[0] == '/' ? r->action : d->ns, r->action);
    json_t *none = json_object();
    json_t *doc =
        json_pack("{s:s, s:s, s:o}", "trigger", t, "action", a, "annotations", annots_of(d, none));
    json_decref(none);
    return doc;
}

/* ==== the wants ============================================================ */

static struct want *want_add(struct deploy *d, const char *coll, const char *kind, const char *pkg,
                             const char *name, json_t *doc)
{
    if (d->nw == d->cap) {
        size_t c = d->cap ? 2 * d->cap : 16;
        struct want *g = realloc(d->w, c * sizeof *g);
        if (!g)
            return NULL;
        d->w = g, d->cap = c;
    }
    struct want *w = &d->w[d->nw++];
    *w = (struct want){.coll = coll, .kind = kind, .doc = doc};
    snprintf(w->n.ns, sizeof w->n.ns, "%s", d->ns);
    snprintf(w->n.pkg, sizeof w->n.pkg, "%s", pkg ? pkg : "");
    snprintf(w->n.name, sizeof w->n.name, "%s", name);
    return w;
}

/* Packages, actions, sequences, triggers, rules: the order they are written in. */
static int build_wants(struct deploy *d, const json_t *params)
{
    struct manifest *m = &d->m;
    for (size_t i = 0; i < m->npkgs; i++) {
        const struct mf_package *p = &m->pkgs[i];
        json_t *doc = json_pack("{s:o, s:o, s:b}", "parameters", kv_of(p->inputs, params),
                                "annotations", annots_of(d, p->annotations), "publish", 0);
        if (!want_add(d, "packages", "package", NULL, p->name, doc))
            return cli_fail(&d->x->err, CLI_EXIT_GENERAL, "out of memory");
    }
    for (int seq = 0; seq < 2; seq++)
        for (size_t i = 0; i < m->npkgs; i++)
            for (size_t k = 0; k < m->pkgs[i].nactions; k++) {
                const struct mf_action *a = &m->pkgs[i].actions[k];
                if (a->sequence != (seq == 1))
                    continue;
                json_t *doc = action_doc(d, a);
                if (!doc || !want_add(d, "actions", seq ? "sequence" : "action", m->pkgs[i].name,
                                      a->name, doc))
                    return -1;
            }
    for (size_t i = 0; i < m->ntriggers; i++) {
        json_t *doc = trigger_doc(d, &m->triggers[i]);
        struct want *w =
            doc ? want_add(d, "triggers", "trigger", NULL, m->triggers[i].name, doc) : NULL;
        if (!w)
            return cli_fail(&d->x->err, CLI_EXIT_GENERAL, "out of memory");
        w->trigger = m->triggers[i].feed ? &m->triggers[i] : NULL;
    }
    for (size_t i = 0; i < m->nrules; i++)
        if (!want_add(d, "rules", "rule", NULL, m->rules[i].name, rule_doc(d, &m->rules[i])))
            return -1;
    return 0;
}

/* ==== comparing with the server =========================================== */

/* A kv array as an object, without what the server adds. */
static json_t *kv_obj(const json_t *kv)
{
    static const char *const server_added[] = {"exec", "binary"};
    json_t *o = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(kv, i, e) json_object_set(o, json_string_value(json_object_get(e, "key")),
                                                 json_object_get(e, "value"));
    for (size_t k = 0; k < sizeof server_added / sizeof *server_added; k++)
        json_object_del(o, server_added[k]);
    return o;
}

static bool kv_same(const json_t *a, const json_t *b)
{
    json_t *x = kv_obj(a), *y = kv_obj(b);
    bool same = json_equal(x, y);
    json_decref(x), json_decref(y);
    return same;
}

/* Every member of want is in have, equal (the server adds members). */
static bool members_same(const json_t *want, const json_t *have)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)want, k,
                        v) if (!json_equal(v, json_object_get(have, k))) return false;
    return true;
}

/* "/path/name" of a rule's {"path", "name"} member. */
static void rule_end(const json_t *e, char *out, size_t cap)
{
    snprintf(out, cap, "/%s/%s", json_string_value(json_object_get(e, "path")) ?: "",
             json_string_value(json_object_get(e, "name")) ?: "");
}

/* What the server shows of the feed (its READ: the parameters it runs
 * with, and status that changes, "connected" and the like): every input
 * must be there, equal. An input dropped from the file changes the
 * projectHash, so that is seen too. */
static bool feed_same(const struct mf_trigger *t, const json_t *have)
{
    const json_t *f = json_object_get(have, "feed");
    return json_is_object(f) && members_same(t->inputs, f);
}

static bool same_as(const struct want *w, const json_t *have)
{
    const json_t *want = w->doc;
    if (!kv_same(json_object_get(want, "annotations"), json_object_get(have, "annotations")))
        return false;
    if (strcmp(w->coll, "rules") == 0) {
        char t[1024], a[1024];
        rule_end(json_object_get(have, "trigger"), t, sizeof t);
        rule_end(json_object_get(have, "action"), a, sizeof a);
        return !strcmp(t, json_string_value(json_object_get(want, "trigger"))) &&
               !strcmp(a, json_string_value(json_object_get(want, "action")));
    }
    if (!kv_same(json_object_get(want, "parameters"), json_object_get(have, "parameters")))
        return false;
    if (w->trigger && !feed_same(w->trigger, have))
        return false;
    if (json_object_get(want, "exec") &&
        !members_same(json_object_get(want, "exec"), json_object_get(have, "exec")))
        return false;
    return !json_object_get(want, "limits") ||
           members_same(json_object_get(want, "limits"), json_object_get(have, "limits"));
}

/* The project an entity's whisk-managed annotation names, or NULL. */
static const char *project_of(const json_t *doc)
{
    json_t *wm = wjson_kv_get(json_object_get(doc, "annotations"), "whisk-managed");
    return json_string_value(json_object_get(wm, "projectName"));
}

static const char *shown(const struct want *w, char *buf, size_t cap)
{
    return cli_name_entity(&w->n, buf, cap);
}

/* What each want does to the server: GETs, and refuses names that are
 * someone else's. */
static int plan_wants(struct deploy *d)
{
    for (size_t i = 0; i < d->nw; i++) {
        struct want *w = &d->w[i];
        struct cli_resp r;
        char e[600];
        int rc = cli_entity_get(d->cl, w->coll, &w->n, NULL, &r, &d->x->err);
        if (rc < 0 && r.status != 404) {
            cli_resp_fini(&r);
            return -1;
        }
        const char *owner = rc == 0 ? project_of(r.json) : NULL;
        if (rc == 0 && (!owner || strcmp(owner, d->m.project))) {
            cli_fail(&d->x->err, CLI_EXIT_GENERAL,
                     "%s %s exists and is not part of project '%s'%s%s%s; nothing deployed",
                     w->kind, shown(w, e, sizeof e), d->m.project, owner ? " (it is project '" : "",
                     owner ? owner : "", owner ? "')" : "");
            cli_resp_fini(&r);
            return -1;
        }
        w->op = rc < 0 ? OP_CREATE : same_as(w, r.json) ? OP_SAME : OP_UPDATE;
        cli_resp_fini(&r);
    }
    return 0;
}

/* ==== what the project has on the server ================================== */

static int add_drop(struct deploy *d, const char *coll, const json_t *item)
{
    const char *ns = json_string_value(json_object_get(item, "namespace"));
    const char *name = json_string_value(json_object_get(item, "name"));
    const char *slash = ns ? strchr(ns, '/') : NULL;
    static const struct {
        const char *coll, *kind;
    } kinds[] = {
        {"rules", "rule"}, {"triggers", "trigger"}, {"actions", "action"}, {"packages", "package"}};
    const char *kind = "entity";
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(kinds[i].coll, coll))
            kind = kinds[i].kind;
    for (size_t i = 0; i < d->nw; i++) /* still wanted, or listed twice */
        if (!strcmp(d->w[i].coll, coll) && !strcmp(d->w[i].n.name, name ? name : "") &&
            !strcmp(d->w[i].n.pkg, slash ? slash + 1 : ""))
            return 0;
    struct want *w = want_add(d, coll, kind, slash ? slash + 1 : NULL, name ? name : "", NULL);
    if (!w)
        return cli_fail(&d->x->err, CLI_EXIT_GENERAL, "out of memory");
    w->op = OP_DELETE;
    return 0;
}

/* Whether item (a list entry) is this project's; GETs it when the list
 * left the annotations out. */
static bool is_ours(struct deploy *d, const char *coll, const json_t *item)
{
    if (json_object_get(item, "annotations"))
        return project_of(item) && !strcmp(project_of(item), d->m.project);
    struct cli_name n = {0};
    struct cli_resp r;
    struct cli_err ignored;
    const char *ns = json_string_value(json_object_get(item, "namespace"));
    const char *slash = ns ? strchr(ns, '/') : NULL;
    snprintf(n.ns, sizeof n.ns, "%s", d->ns);
    snprintf(n.pkg, sizeof n.pkg, "%s", slash ? slash + 1 : "");
    snprintf(n.name, sizeof n.name, "%s", json_string_value(json_object_get(item, "name")) ?: "");
    bool ours = cli_entity_get(d->cl, coll, &n, "code=false", &r, &ignored) == 0 &&
                project_of(r.json) && !strcmp(project_of(r.json), d->m.project);
    cli_resp_fini(&r);
    return ours;
}

/* The project's entities the wants do not name, as OP_DELETE wants, in
 * the order they go: rules, triggers, actions (of every package), packages. */
static int plan_drops(struct deploy *d)
{
    static const char *const colls[] = {"rules", "triggers", "actions", "packages"};
    for (size_t c = 0; c < sizeof colls / sizeof *colls; c++) {
        struct cli_list_opts o = {.limit = 200};
        struct cli_resp r;
        if (cli_entity_list(d->cl, colls[c], d->ns, NULL, &o, &r, &d->x->err) < 0) {
            cli_resp_fini(&r);
            return -1;
        }
        size_t i;
        json_t *item;
        int rc = 0;
        json_array_foreach(r.json, i, item) if (rc == 0 && is_ours(d, colls[c], item)) rc =
            add_drop(d, colls[c], item);
        cli_resp_fini(&r);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ==== writing ============================================================= */

/* Runs the feed's CREATE for trigger w, as `trigger create --feed`. */
static int run_feed(struct deploy *d, const struct want *w)
{
    struct cli_name f;
    char tn[600];
    const char *feed =
        json_string_value(wjson_kv_get(json_object_get(w->doc, "annotations"), "feed"));
    if (cli_name_parse(feed, d->ns, &f, &d->x->err) < 0)
        return -1;
    json_t *p = json_deep_copy(w->trigger->inputs);
    snprintf(tn, sizeof tn, "/%s/%s", d->ns, w->n.name);
    json_object_set_new(p, "lifecycleEvent", json_string("CREATE"));
    json_object_set_new(p, "triggerName", json_string(tn));
    json_object_set_new(p, "authKey", json_string(d->x->conf.auth));
    struct cli_resp r;
    int rc = cli_action_invoke(d->cl, &f, p, true, false, &r, &d->x->err);
    json_decref(p);
    if (rc < 0)
        cli_err_prefix(&d->x->err, "Unable to configure feed '%s': ", feed);
    cli_resp_fini(&r);
    return rc;
}

static int del(struct deploy *d, const struct want *w)
{
    struct cli_resp r;
    int rc = cli_entity_delete(d->cl, w->coll, &w->n, &r, &d->x->err);
    cli_resp_fini(&r);
    return rc;
}

/* Rules on trigger name go again after it was made anew. */
static void touch_rules(struct deploy *d, const char *trigger)
{
    char q[600];
    snprintf(q, sizeof q, "/%s/%s", d->ns, trigger);
    for (size_t i = 0; i < d->nw; i++)
        if (d->w[i].op == OP_SAME && !strcmp(d->w[i].coll, "rules") &&
            !strcmp(json_string_value(json_object_get(d->w[i].doc, "trigger")), q))
            d->w[i].op = OP_UPDATE;
}

static int write_one(struct deploy *d, struct want *w)
{
    if (w->op == OP_DELETE)
        return del(d, w);
    bool feed = w->trigger != NULL;
    if (feed && w->op == OP_UPDATE && del(d, w) < 0) /* wispd runs the feed's DELETE */
        return -1;
    struct cli_resp r;
    int rc =
        cli_entity_put(d->cl, w->coll, &w->n, w->doc, !feed && w->op == OP_UPDATE, &r, &d->x->err);
    cli_resp_fini(&r);
    if (rc == 0 && feed && run_feed(d, w) < 0) {
        struct cli_err ignored;
        if (cli_entity_delete(d->cl, w->coll, &w->n, &r, &ignored) <
            0) /* no trigger without its feed */
            fprintf(stderr, "warning: trigger %s stays, without its feed: %s\n", w->n.name,
                    ignored.msg);
        cli_resp_fini(&r);
        return -1;
    }
    if (rc == 0 && feed)
        touch_rules(d, w->n.name);
    return rc;
}

static void report(const struct want *w, bool dry)
{
    char e[600];
    if (w->op == OP_SAME)
        printf("unchanged %s %s\n", w->kind, shown(w, e, sizeof e));
    else if (dry)
        printf("%s %s %s\n", op_would[w->op], w->kind, shown(w, e, sizeof e));
    else
        cli_ok("%s %s %s", op_words[w->op], w->kind, shown(w, e, sizeof e));
    fflush(stdout);
}

/* The pass a want is written in: dropped rules, the wants, the other drops. */
static int pass_of(const struct want *w)
{
    return w->op != OP_DELETE ? 1 : strcmp(w->coll, "rules") == 0 ? 0 : 2;
}

static int write_all(struct deploy *d, bool dry)
{
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < d->nw; i++) {
            struct want *w = &d->w[i];
            if (pass_of(w) != pass)
                continue;
            if (!dry && w->op != OP_SAME && write_one(d, w) < 0)
                return -1;
            w->done = true;
            report(w, dry);
        }
    return 0;
}

static void report_undone(const struct deploy *d)
{
    char e[600];
    fprintf(stderr, "deploy of project '%s' stopped; not done:\n", d->m.project);
    for (size_t i = 0; i < d->nw; i++)
        if (!d->w[i].done && d->w[i].op != OP_SAME)
            fprintf(stderr, "  %s %s %s\n", op_would[d->w[i].op] + (d->w[i].op != OP_SAME ? 6 : 0),
                    d->w[i].kind, shown(&d->w[i], e, sizeof e));
}

/* ==== reading ============================================================= */

/* SHA-1 of the manifest and deployment files, in hex. */
static void project_hash(const char *const *files, char out[41])
{
    mbedtls_sha1_context c;
    unsigned char sum[20], buf[65536];
    mbedtls_sha1_init(&c);
    mbedtls_sha1_starts_ret(&c);
    for (; *files; files++) {
        FILE *f = fopen(*files, "rb");
        for (size_t n; f && (n = fread(buf, 1, sizeof buf, f)) > 0;)
            mbedtls_sha1_update_ret(&c, buf, n);
        if (f)
            fclose(f);
    }
    mbedtls_sha1_finish_ret(&c, sum);
    mbedtls_sha1_free(&c);
    for (int i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", sum[i]);
}

/* The namespace's own name ("_" names it only in requests). */
static int real_ns(struct deploy *d)
{
    snprintf(d->ns, sizeof d->ns, "%s", d->x->conf.ns);
    if (strcmp(d->ns, "_"))
        return 0;
    struct cli_resp r;
    int rc = cli_http(d->cl, "GET", "namespaces", NULL, &r, &d->x->err);
    if (rc == 0)
        rc = cli_resp_check(&r, &d->x->err);
    if (rc == 0 && json_string_value(json_array_get(r.json, 0)))
        snprintf(d->ns, sizeof d->ns, "%s", json_string_value(json_array_get(r.json, 0)));
    cli_resp_fini(&r);
    return rc;
}

/* Whether the server has runtime kind (a family's "default" counts). */
static bool has_kind(const json_t *runtimes, const char *kind)
{
    const char *fam;
    json_t *list;
    json_object_foreach((json_t *)runtimes, fam, list)
    {
        size_t i;
        json_t *k;
        json_array_foreach(list, i, k)
        {
            char def[300];
            snprintf(def, sizeof def, "%s:default", fam);
            if (!strcmp(json_string_value(json_object_get(k, "kind")) ?: "", kind) ||
                !strcmp(def, kind))
                return true;
        }
    }
    return false;
}

/* Every runtime the manifest names is one the server runs. A server that
 * does not list its runtimes is taken at its word later. */
static int check_runtimes(struct deploy *d)
{
    struct cli_resp r;
    struct cli_err ignored;
    int rc = cli_http(d->cl, "GET", "", NULL, &r, &ignored);
    json_t *runtimes = rc == 0 && r.status == 200 ? json_object_get(r.json, "runtimes") : NULL;
    for (size_t i = 0; runtimes && rc == 0 && i < d->m.npkgs; i++)
        for (size_t k = 0; rc == 0 && k < d->m.pkgs[i].nactions; k++) {
            const struct mf_action *a = &d->m.pkgs[i].actions[k];
            if (a->runtime && !a->docker && !has_kind(runtimes, a->runtime))
                rc = cli_fail(&d->x->err, CLI_EXIT_GENERAL,
                              "%s:%d: action '%s': runtime '%s' is not one the server has",
                              d->m.file, a->line, a->name, a->runtime);
        }
    cli_resp_fini(&r);
    return rc < 0 ? -1 : 0;
}

/* The manifest, the deployment file, and the managed annotation. */
static int read_files(struct deploy *d)
{
    struct cli_ctx *x = d->x;
    const char *mf = cli_str(&x->a, OPT_MANIFEST) ?: "manifest.yaml";
    const char *dep = cli_str(&x->a, OPT_DEPLOYMENT);
    char msg[1024], hash[41];
    if (manifest_load(&d->m, mf, msg, sizeof msg) < 0 ||
        (dep && manifest_deployment(&d->m, dep, msg, sizeof msg) < 0))
        return cli_fail(&x->err, CLI_EXIT_GENERAL, "%s", msg);
    const char *files[] = {mf, dep, NULL};
    project_hash(files, hash);
    d->managed = json_pack("{s:s, s:s, s:[], s:s}", "projectName", d->m.project, "projectHash",
                           hash, "projectDeps", "file", mf);
    return d->managed ? 0 : cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory");
}

static int open_deploy(struct cli_ctx *x, struct deploy *d)
{
    *d = (struct deploy){.x = x};
    if (read_files(d) < 0 || cli_ctx_client(x, &d->cl) < 0 || real_ns(d) < 0)
        return -1;
    return 0;
}

static void close_deploy(struct deploy *d)
{
    for (size_t i = 0; i < d->nw; i++)
        json_decref(d->w[i].doc);
    free(d->w);
    json_decref(d->managed);
    manifest_fini(&d->m);
}

/* ==== the verbs =========================================================== */

static size_t changes(const struct deploy *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->nw; i++)
        n += d->w[i].op != OP_SAME;
    return n;
}

int cli_deploy(struct cli_ctx *x)
{
    struct deploy d;
    bool given, dry = cli_has(&x->a, OPT_DRY_RUN);
    int rc = open_deploy(x, &d);
    json_t *params = rc == 0 ? cli_ctx_kv(x, OPT_PARAM, OPT_PARAM_FILE, &given) : NULL;
    if (rc == 0 && !params)
        rc = -1;
    if (rc == 0)
        rc = check_runtimes(&d);
    if (rc == 0)
        rc = build_wants(&d, params);
    if (rc == 0)
        rc = plan_wants(&d);
    if (rc == 0)
        rc = plan_drops(&d);
    size_t n = changes(&d);
    if (rc == 0 && n == 0) {
        cli_ok("nothing to change in project %s", d.m.project);
    } else if (rc == 0) {
        rc = write_all(&d, dry);
        if (rc < 0)
            report_undone(&d);
        else if (dry)
            cli_ok("dry run of project %s: %zu change%s, nothing written", d.m.project, n,
                   n == 1 ? "" : "s");
        else
            cli_ok("deployed project %s: %zu change%s", d.m.project, n, n == 1 ? "" : "s");
    }
    json_decref(params);
    close_deploy(&d);
    return rc;
}

int cli_undeploy(struct cli_ctx *x)
{
    struct deploy d;
    bool dry = cli_has(&x->a, OPT_DRY_RUN);
    int rc = open_deploy(x, &d);
    if (rc == 0)
        rc = plan_drops(&d); /* no wants: everything of the project goes */
    if (rc == 0 && d.nw == 0)
        cli_ok("nothing to undeploy in project %s", d.m.project);
    else if (rc == 0 && (rc = write_all(&d, dry)) < 0)
        report_undone(&d);
    else if (rc == 0)
        cli_ok("%s project %s", dry ? "dry run, would undeploy" : "undeployed", d.m.project);
    close_deploy(&d);
    return rc;
}
