/* runtimes/kinds.c - the kind manifest reader. See pool.h. The manifest is
 * data, so a new interpreted kind is a new line in kinds.json and a
 * launcher file, not a change of code. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"
#include "pool.h"
#include "wjson.h"

struct rt_kinds {
    json_t *doc; /* owns the strings the kinds point into */
    size_t n;
    struct rt_kind *v;
};

void rt_kinds_free(struct rt_kinds *k)
{
    if (!k)
        return;
    json_decref(k->doc);
    free(k->v);
    free(k);
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
    json_t *arr = json_object_get(k->doc, "kinds");
    if (!k->doc || !json_is_array(arr) || json_array_size(arr) == 0) {
        rc = wisp_err_set(err, -EINVAL, "%s: %s", origin,
                          k->doc ? "needs a non-empty \"kinds\" array" : je.msg);
        goto out;
    }
    k->v = calloc(json_array_size(arr), sizeof *k->v);
    if (!k->v) {
        rc = wisp_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        struct rt_kind *d = &k->v[k->n];
        d->kind = wjson_str(e, "kind");
        d->family = wjson_str(e, "family");
        d->interpreter = wjson_str(e, "interpreter");
        d->launcher = wjson_str(e, "launcher");
        d->args = wjson_str(e, "args");
        d->backend = wjson_str(e, "backend");
        if (!d->backend)
            d->backend = "process";
        const char *needs = wjson_str(e, "needs");
        int def = wjson_bool(e, "default", false);
        if (!d->kind || !*d->kind || !d->family || !needs || def < 0) {
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
        if (rt_kind_find(k, d->kind)) {
            rc = wisp_err_set(err, -EINVAL, "%s: kind %s listed twice", origin, d->kind);
            goto out;
        }
        k->n++;
    }
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

const struct rt_kind *rt_kind_find(const struct rt_kinds *k, const char *name)
{
    const char *colon = strchr(name, ':');
    bool want_default = colon && strcmp(colon + 1, "default") == 0;
    size_t flen = colon ? (size_t)(colon - name) : 0;
    for (size_t i = 0; i < k->n; i++) {
        const struct rt_kind *d = &k->v[i];
        if (want_default ? d->is_default && strlen(d->family) == flen &&
                               strncmp(d->family, name, flen) == 0
                         : strcmp(d->kind, name) == 0)
            return d;
    }
    return NULL;
}

size_t rt_kinds_count(const struct rt_kinds *k) { return k->n; }
const struct rt_kind *rt_kind_at(const struct rt_kinds *k, size_t i) { return &k->v[i]; }
