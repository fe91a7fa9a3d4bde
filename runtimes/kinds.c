/* runtimes/kinds.c - the kind manifest: reading it, and resolving it
 * against this machine. See pool.h. The manifest is data, so a new
 * interpreted kind is a new line in kinds.json and a launcher file, not a
 * change of code.
 *
 * Two states. A parsed manifest offers every kind it names except those
 * named by their interpreter's version ("nodejs:{major}"): nobody knows
 * that name yet. rt_kinds_resolve (once, at start-up: it runs programs)
 * applies the --interpreters overrides, asks each interpreter for its
 * version, names the versioned kinds after it ("nodejs:18" where Debian 12's
 * node runs) and from then on offers only the kinds that can run here: what
 * GET /api/v1 lists, what an action may be created with.
 *
 * What a newcomer gets wrong: a stored action keeps the kind it was
 * created with. rt_kind_find is for new actions and refuses "nodejs:20"
 * once node 18 is what runs here; running a stored action goes through
 * rt_kind_for_stored, which maps any version of a versioned family to the
 * version installed now, so an interpreter upgrade or downgrade never
 * strands stored actions. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plat.h"
#include "pool.h"
#include "spawn.h"
#include "wjson.h"

#define MAJOR "{major}"
#define PROBE_TIMEOUT_MS 10000u /* a healthy `node --version` takes ~30 ms */

struct entry {
    struct rt_kind k;    /* what callers see; k.kind is the resolved name */
    const char *pattern; /* "nodejs:{major}" for a kind named by its interpreter's version */
    const json_t *aliases; /* names that also find it but are not listed ("nodejs"); borrowed */
    const char *why_not;   /* resolved and not offered: the reason */
    bool offered;          /* listed and found */
};

struct rt_kinds {
    json_t *doc;   /* owns the manifest's strings */
    json_t *owned; /* owns the strings resolution made: names, paths, reasons */
    size_t n;
    struct entry *v;
    size_t nvis;
    const struct rt_kind **vis; /* the offered kinds in manifest order */
    bool resolved;
};

void rt_kinds_free(struct rt_kinds *k)
{
    if (!k)
        return;
    json_decref(k->doc);
    json_decref(k->owned);
    free(k->v);
    free(k->vis);
    free(k);
}

/* A copy of s that lives as long as k; NULL on allocation failure. */
static const char *own_str(struct rt_kinds *k, const char *s)
{
    json_t *j = json_string(s);
    if (!j || json_array_append_new(k->owned, j) < 0)
        return NULL;
    return json_string_value(j);
}

static void rebuild_visible(struct rt_kinds *k)
{
    k->nvis = 0;
    for (size_t i = 0; i < k->n; i++)
        if (k->v[i].offered)
            k->vis[k->nvis++] = &k->v[i].k;
}

/* True when name is pattern with {major} replaced by a decimal number. */
static bool pattern_matches(const char *pattern, const char *name)
{
    const char *m = strstr(pattern, MAJOR);
    size_t pre = (size_t)(m - pattern), post = strlen(m + strlen(MAJOR));
    size_t len = strlen(name);
    if (len <= pre + post || strncmp(name, pattern, pre) != 0 ||
        strcmp(name + len - post, m + strlen(MAJOR)) != 0)
        return false;
    for (size_t i = pre; i < len - post; i++)
        if (name[i] < '0' || name[i] > '9')
            return false;
    return true;
}

static bool has_alias(const struct entry *e, const char *name)
{
    size_t i;
    const json_t *a;
    json_array_foreach(e->aliases, i, a) {
        if (strcmp(json_string_value(a), name) == 0)
            return true;
    }
    return false;
}

/* Whether name is e's: its name (resolved, or any version of its pattern
 * when versions is set), an alias, or its family's "family:default". */
static bool names_entry(const struct entry *e, const char *name, bool versions)
{
    const char *colon = strchr(name, ':');
    if (colon && strcmp(colon + 1, "default") == 0)
        return e->k.is_default && strlen(e->k.family) == (size_t)(colon - name) &&
               strncmp(e->k.family, name, (size_t)(colon - name)) == 0;
    if (e->k.kind && strcmp(e->k.kind, name) == 0)
        return true;
    if (versions && e->pattern && pattern_matches(e->pattern, name))
        return true;
    return has_alias(e, name);
}

/* The first entry of k that name names (among the offered ones, or all). */
static struct entry *lookup(const struct rt_kinds *k, const char *name, bool versions,
                            bool offered_only)
{
    for (size_t i = 0; i < k->n; i++) {
        struct entry *e = &k->v[i];
        if ((!offered_only || e->offered) && names_entry(e, name, versions))
            return e;
    }
    return NULL;
}

static bool valid_pattern(const char *p)
{
    const char *m = strstr(p, MAJOR);
    return m && !strstr(m + 1, MAJOR) && !strchr(m + strlen(MAJOR), '{') &&
           (m == p || !memchr(p, '{', (size_t)(m - p)));
}

/* A name taken by another entry of the parsed manifest (kinds, patterns,
 * aliases), before resolution. */
static bool name_taken(const struct rt_kinds *k, const char *name)
{
    for (size_t i = 0; i < k->n; i++) {
        const struct entry *e = &k->v[i];
        if ((e->k.kind && strcmp(e->k.kind, name) == 0) ||
            (e->pattern && strcmp(e->pattern, name) == 0) || has_alias(e, name))
            return true;
    }
    return false;
}

int rt_kinds_parse(const char *text, size_t len, const char *origin, struct rt_kinds **out,
                   struct wisp_err *err)
{
    struct wisp_err je = {0};
    int rc = 0;
    struct rt_kinds *k = calloc(1, sizeof *k);
    if (!k)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    k->doc = wjson_parse(text, len, &je);
    k->owned = json_array();
    json_t *arr = json_object_get(k->doc, "kinds");
    if (!k->owned) {
        rc = wisp_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if (!k->doc || !json_is_array(arr) || json_array_size(arr) == 0) {
        rc = wisp_err_set(err, -EINVAL, "%s: %s", origin,
                          k->doc ? "needs a non-empty \"kinds\" array" : je.msg);
        goto out;
    }
    k->v = calloc(json_array_size(arr), sizeof *k->v);
    k->vis = calloc(json_array_size(arr), sizeof *k->vis);
    if (!k->v || !k->vis) {
        rc = wisp_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        struct entry *x = &k->v[k->n];
        struct rt_kind *d = &x->k;
        const char *name = wjson_str(e, "kind");
        d->family = wjson_str(e, "family");
        d->interpreter = wjson_str(e, "interpreter");
        d->launcher = wjson_str(e, "launcher");
        d->args = wjson_str(e, "args");
        d->backend = wjson_str(e, "backend");
        if (!d->backend)
            d->backend = "process";
        const char *needs = wjson_str(e, "needs");
        int def = wjson_bool(e, "default", false);
        if (!name || !*name || !d->family || !needs || def < 0) {
            rc = wisp_err_set(err, -EINVAL, "%s: kinds[%zu] needs kind, family and needs", origin,
                              i);
            goto out;
        }
        d->is_default = def;
        if (strcmp(needs, "code") == 0)
            d->needs = RT_NEEDS_CODE;
        else if (strcmp(needs, "image") == 0)
            d->needs = RT_NEEDS_IMAGE;
        else if (strcmp(needs, "components") == 0)
            d->needs = RT_NEEDS_COMPONENTS;
        else {
            rc = wisp_err_set(err, -EINVAL, "%s: kinds[%zu]: needs is code, image or components",
                              origin, i);
            goto out;
        }
        if (strchr(name, '{')) {
            if (!valid_pattern(name) || !d->interpreter) {
                rc = wisp_err_set(err, -EINVAL, "%s: kinds[%zu]: a kind named by its "
                                  "interpreter's version has one " MAJOR " and an interpreter",
                                  origin, i);
                goto out;
            }
            x->pattern = name;
        } else {
            d->kind = name;
            x->offered = true;
        }
        json_t *al = json_object_get(e, "aliases");
        size_t j;
        json_t *a;
        bool aliases_ok = !al || json_is_array(al);
        json_array_foreach(al, j, a) { /* none when al is not an array */
            const char *s = json_string_value(a);
            aliases_ok = aliases_ok && s && *s && !strchr(s, '{') && !strstr(s, ":default");
        }
        if (!aliases_ok) {
            rc = wisp_err_set(err, -EINVAL, "%s: kinds[%zu]: aliases is an array of names",
                              origin, i);
            goto out;
        }
        if (name_taken(k, name)) {
            rc = wisp_err_set(err, -EINVAL, "%s: kind %s listed twice", origin, name);
            goto out;
        }
        json_array_foreach(al, j, a) {
            const char *s = json_string_value(a);
            bool dup = name_taken(k, s) || strcmp(s, name) == 0;
            for (size_t m = 0; m < j && !dup; m++)
                dup = strcmp(json_string_value(json_array_get(al, m)), s) == 0;
            if (dup) {
                rc = wisp_err_set(err, -EINVAL, "%s: kind %s listed twice", origin, s);
                goto out;
            }
        }
        x->aliases = al;
        k->n++;
    }
    rebuild_visible(k);
    *out = k;
    k = NULL;
out:
    rt_kinds_free(k);
    return rc;
}

int rt_kinds_load(const char *path, struct rt_kinds **out, struct wisp_err *err)
{
    char *text;
    size_t len;
    int rc = plat_read_file(path, 1 << 20, &text, &len);
    if (rc < 0)
        return wisp_err_set(err, rc, "cannot read kinds manifest %s: %s", path, strerror(-rc));
    rc = rt_kinds_parse(text, len, path, out, err);
    free(text);
    return rc;
}

/* ==== resolution ====================================================== */

int rt_probe_interpreter(void *ctx, const char *interpreter, char *version, size_t cap)
{
    const struct rt_probe_user *as = ctx;
    char *argv[] = {(char *)interpreter, "--version", NULL};
    struct plat_run_opts o = {.argv = argv, .timeout_ms = PROBE_TIMEOUT_MS};
    if (as) {
        o.drop_privs = as->drop_privs;
        o.uid = as->uid;
        o.gid = as->gid;
    }
    if (interpreter[0] != '/')
        return -ENOENT; /* plat_spawn does not search PATH: name it by its path */
    int rc = plat_run_capture(&o, version, cap);
    if (rc < 0)
        return rc;
    version[strcspn(version, "\n")] = '\0';
    return rc == 0 ? 0 : -ENOEXEC;
}

/* The first decimal number in text ("v18.19.0" -> 18, "Python 3.11.2" ->
 * 3), or -1 when it has none (or an absurd one). */
static int major_of(const char *text)
{
    const char *p = text + strcspn(text, "0123456789");
    if (!*p)
        return -1;
    long v = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((v = v * 10 + (*p - '0')) > 99999)
            return -1;
    return (int)v;
}

/* Applies "kind=/path,..." over the manifest's interpreters. */
static int apply_overrides(struct rt_kinds *k, const char *spec, struct wisp_err *err)
{
    char buf[1024];
    if (!spec || !*spec)
        return 0;
    if (strlen(spec) >= sizeof buf)
        return wisp_err_set(err, -EINVAL, "interpreters: too long");
    strcpy(buf, spec);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(tok, '=');
        if (!eq)
            return wisp_err_set(err, -EINVAL, "interpreters: '%s' is not kind=value", tok);
        *eq = '\0';
        struct entry *e = lookup(k, tok, true, false);
        if (!e || !e->k.launcher)
            return wisp_err_set(err, -EINVAL, "interpreters: '%s' is not a kind with a launcher",
                                tok);
        if (eq[1] != '/')
            return wisp_err_set(err, -EINVAL, "interpreters: %s: '%s' is not an absolute path",
                                tok, eq + 1);
        if (!(e->k.interpreter = own_str(k, eq + 1)))
            return wisp_err_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

struct probed {
    const char *path;
    int rc;
    char version[128];
};

/* What the probe says of path, asked once per distinct interpreter. */
static const struct probed *probe_once(struct probed *cache, size_t *n, const char *path,
                                       rt_probe_fn *probe, void *ctx)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(cache[i].path, path) == 0)
            return &cache[i];
    struct probed *p = &cache[(*n)++];
    p->path = path;
    p->version[0] = '\0';
    p->rc = probe(ctx, path, p->version, sizeof p->version);
    return p;
}

static int not_offered(struct rt_kinds *k, struct entry *e, const char *fmt, ...)
    WISP_PRINTF(3, 4);
static int not_offered(struct rt_kinds *k, struct entry *e, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    e->offered = false;
    if (!(e->why_not = own_str(k, why)))
        return -ENOMEM;
    wlog_warn("kinds", "kind %s is not offered: %s", e->pattern ? e->pattern : e->k.kind, why);
    return 0;
}

int rt_kinds_resolve(struct rt_kinds *k, const char *interpreters, rt_probe_fn *probe, void *ctx,
                     struct wisp_err *err)
{
    if (k->resolved)
        return 0;
    int rc = apply_overrides(k, interpreters, err);
    if (rc < 0)
        return rc;
    struct probed *cache = calloc(k->n, sizeof *cache);
    size_t ncache = 0;
    if (!cache)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < k->n && rc == 0; i++) {
        struct entry *e = &k->v[i];
        if (!e->k.interpreter) /* native, blackbox, sequence: nothing to ask */
            continue;
        const struct probed *p = probe_once(cache, &ncache, e->k.interpreter, probe, ctx);
        int major = major_of(p->version);
        if (p->rc == -ENOEXEC) {
            rc = not_offered(k, e, "%s --version failed: %s", e->k.interpreter,
                             p->version[0] ? p->version : "no output");
        } else if (p->rc == -ETIMEDOUT) {
            rc = not_offered(k, e, "%s --version did not answer within %u s", e->k.interpreter,
                             PROBE_TIMEOUT_MS / 1000);
        } else if (p->rc < 0) {
            rc = not_offered(k, e, "%s cannot run here: %s", e->k.interpreter, strerror(-p->rc));
        } else if (e->pattern && major < 0) {
            rc = not_offered(k, e, "%s --version names no version: '%s'", e->k.interpreter,
                             p->version);
        } else if (e->pattern) {
            char name[128];
            const char *m = strstr(e->pattern, MAJOR);
            snprintf(name, sizeof name, "%.*s%d%s", (int)(m - e->pattern), e->pattern, major,
                     m + strlen(MAJOR));
            if (lookup(k, name, false, true))
                rc = wisp_err_set(err, -EINVAL, "kinds: %s resolves to %s (%s is %s), which the "
                                  "manifest lists too", e->pattern, name, e->k.interpreter,
                                  p->version);
            else if (!(e->k.kind = own_str(k, name)))
                rc = -ENOMEM;
            e->offered = rc == 0;
        }
        if (rc == 0 && e->offered)
            wlog_info("kinds", "%s runs on %s (%s)", e->k.kind, e->k.interpreter, p->version);
    }
    free(cache);
    if (rc == -ENOMEM)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    if (rc < 0)
        return rc;
    rebuild_visible(k);
    k->resolved = true;
    return 0;
}

/* ==== lookups ========================================================= */

const struct rt_kind *rt_kind_find(const struct rt_kinds *k, const char *name)
{
    const struct entry *e = lookup(k, name, false, true);
    return e ? &e->k : NULL;
}

const struct rt_kind *rt_kind_for_stored(const struct rt_kinds *k, const char *name)
{
    const struct entry *e = lookup(k, name, false, true);
    if (!e)
        e = lookup(k, name, true, true);
    return e ? &e->k : NULL;
}

const char *rt_kind_unavailable(const struct rt_kinds *k, const char *name)
{
    if (lookup(k, name, true, true))
        return NULL;
    const struct entry *e = lookup(k, name, true, false);
    return e ? (e->why_not ? e->why_not : "its interpreter's version is not known yet") : NULL;
}

size_t rt_kinds_count(const struct rt_kinds *k)
{
    return k->nvis;
}

const struct rt_kind *rt_kind_at(const struct rt_kinds *k, size_t i)
{
    return i < k->nvis ? k->vis[i] : NULL;
}
