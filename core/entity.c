/* core/entity.c - see entity.h. Messages follow OpenWhisk's wording where
 * clients or users match on it ("<field> larger than allowed: N > M bytes.",
 * "Too many actions in the sequence."). */
#include "entity.h"

#include <ctype.h>
#include <errno.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "pool.h"
#include "wjson.h"

#define MALFORMED "The request content was malformed: "

static bool is_word(unsigned char c)
{
    return isalnum(c) || c == '_';
}

int entity_name_valid(const char *name, const char *what, struct wisp_err *err)
{
    size_t n = strlen(name);
    if (n == 0 || n > ENTITY_NAME_MAX)
        return wisp_err_set(err, -EINVAL, "The %s name must be 1 to %d characters.", what,
                            ENTITY_NAME_MAX);
    bool ok = is_word((unsigned char)name[0]);
    for (size_t i = 1; ok && i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        bool last = i == n - 1;
        ok = is_word(c) || c == '@' || c == '.' || c == '-' || (c == ' ' && !last);
    }
    if (!ok)
        return wisp_err_set(err, -EINVAL,
                            "The %s name '%.64s' is not valid: use letters, digits and _ @ . - "
                            "or inner spaces, starting with a letter, digit or _.",
                            what, name);
    return 0;
}

int entity_parse_ref(const char *ref, const char *caller_ns, char *ns, char *path,
                     struct wisp_err *err)
{
    char buf[AUTH_NS_MAX + 2 * ENTITY_NAME_MAX + 8];
    if (strlen(ref) >= sizeof buf)
        return wisp_err_set(err, -EINVAL, "The name '%.64s...' is too long.", ref);
    strcpy(buf, ref);
    char *parts[4];
    int n = 0;
    char *p = buf;
    bool qualified = *p == '/';
    if (qualified)
        p++;
    for (;;) {
        if (n == 4)
            return wisp_err_set(err, -EINVAL, "The name '%.64s' has too many parts.", ref);
        parts[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    const char *rns = caller_ns, *pkg = NULL, *name;
    if (qualified) {
        if (n < 2 || n > 3)
            return wisp_err_set(err, -EINVAL, "The name '%.64s' is not a valid /namespace/[package/]name.", ref);
        rns = strcmp(parts[0], "_") == 0 ? caller_ns : parts[0];
        pkg = n == 3 ? parts[1] : NULL;
        name = parts[n - 1];
    } else {
        if (n > 2)
            return wisp_err_set(err, -EINVAL, "The name '%.64s' is not a valid [package/]name.", ref);
        pkg = n == 2 ? parts[0] : NULL;
        name = parts[n - 1];
    }
    int rc;
    if (strcmp(rns, caller_ns) != 0 && strcmp(rns, "whisk.system") != 0 &&
        (rc = auth_ns_valid(rns, err)) < 0)
        return rc;
    if ((pkg && (rc = entity_name_valid(pkg, "package", err)) < 0) ||
        (rc = entity_name_valid(name, "entity", err)) < 0)
        return rc;
    strcpy(ns, rns);
    if (pkg)
        sprintf(path, "%s/%s", pkg, name);
    else
        strcpy(path, name);
    return 0;
}

void entity_version_bump(const char *version, char out[32])
{
    unsigned a, b, c;
    char tail;
    if (version && sscanf(version, "%u.%u.%u%c", &a, &b, &c, &tail) == 3 && c < 999999999)
        snprintf(out, 32, "%u.%u.%u", a, b, c + 1);
    else
        snprintf(out, 32, "0.0.1");
}

/* ==== field validators ================================================= */

static int size_check(const json_t *v, const char *field, size_t max, struct wisp_err *err)
{
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n > max)
        return wisp_err_set(err, -E2BIG, "%s larger than allowed: %zu > %zu bytes.", field, n, max);
    return 0;
}

/* [{"key": "...", "value": ...}] -> a clean copy (later duplicates win). */
static int kv_array(const json_t *v, const char *field, bool allow_init, size_t max, json_t **out,
                    struct wisp_err *err)
{
    if (!json_is_array(v))
        return wisp_err_set(err, -EINVAL, MALFORMED "%s must be an array of {key, value}.", field);
    if (wjson_depth(v) > WJSON_MAX_DEPTH)
        return wisp_err_set(err, -EINVAL, MALFORMED "%s are nested deeper than %d levels.", field,
                            WJSON_MAX_DEPTH);
    int rc = size_check(v, field, max, err);
    if (rc < 0)
        return rc;
    json_t *res = json_array();
    if (!res)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        const char *k = wjson_str(e, "key");
        json_t *val = json_object_get(e, "value");
        int init = wjson_bool(e, "init", false);
        if (!json_is_object(e) || !k || !*k || !val || init < 0 || (init && !allow_init)) {
            json_decref(res);
            return wisp_err_set(err, -EINVAL,
                                MALFORMED "%s[%zu] must be {\"key\": non-empty string, \"value\": "
                                "any%s}.", field, i, allow_init ? ", \"init\": boolean" : "");
        }
        size_t j;
        json_t *have;
        json_array_foreach(res, j, have) {
            if (strcmp(wjson_str(have, "key"), k) == 0) {
                json_array_remove(res, j);
                break;
            }
        }
        json_t *kv = json_pack("{s:s, s:O}", "key", k, "value", val);
        if (kv && init)
            json_object_set_new(kv, "init", json_true());
        if (!kv || json_array_append_new(res, kv)) {
            json_decref(res);
            return wisp_err_set(err, -ENOMEM, "out of memory");
        }
    }
    *out = res;
    return 0;
}

static int set_kv_field(json_t *doc, const json_t *body, const char *field, bool allow_init,
                        size_t max, struct wisp_err *err)
{
    json_t *v = json_object_get(body, field);
    if (!v || json_is_null(v)) {
        if (!json_object_get(doc, field))
            json_object_set_new(doc, field, json_array());
        return 0;
    }
    json_t *clean = NULL;
    int rc = kv_array(v, field, allow_init, max, &clean, err);
    if (rc < 0)
        return rc;
    json_object_set_new(doc, field, clean);
    return 0;
}

static int set_publish(json_t *doc, const json_t *body, struct wisp_err *err)
{
    json_t *v = json_object_get(body, "publish");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return wisp_err_set(err, -EINVAL, MALFORMED "publish must be a boolean.");
        json_object_set(doc, "publish", v);
    } else if (!json_object_get(doc, "publish")) {
        json_object_set_new(doc, "publish", json_false());
    }
    return 0;
}

struct limit_row {
    const char *name, *unit;
    json_int_t min, max, def;
};

static int set_limits(const struct entity_env *env, json_t *doc, const json_t *body,
                      struct wisp_err *err)
{
    static const struct entity_limits ow = ENTITY_LIMITS_OPENWHISK;
    const struct entity_limits *l = env->limits.timeout_max_ms ? &env->limits : &ow;
    const struct limit_row rows[] = {
        {"timeout", "milliseconds", l->timeout_min_ms, l->timeout_max_ms, l->timeout_def_ms},
        {"memory", "MB", l->memory_min_mb, l->memory_max_mb, l->memory_def_mb},
        {"logs", "MB", 0, l->logs_max_mb, l->logs_max_mb},
        {"concurrency", "", 1, (json_int_t)env->concurrency_max, 1},
    };
    json_t *lim = json_object_get(doc, "limits");
    if (!lim) {
        lim = json_object();
        json_object_set_new(doc, "limits", lim);
    }
    json_t *in = json_object_get(body, "limits");
    if (in && !json_is_null(in) && !json_is_object(in))
        return wisp_err_set(err, -EINVAL, MALFORMED "limits must be an object.");
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        const struct limit_row *r = &rows[i];
        json_t *v = json_object_get(in, r->name);
        if (v && !json_is_null(v)) {
            if (!json_is_integer(v))
                return wisp_err_set(err, -EINVAL, MALFORMED "limits.%s must be an integer.",
                                    r->name);
            json_int_t x = json_integer_value(v);
            if (x < r->min || x > r->max)
                return wisp_err_set(err, -EINVAL,
                                    "%s %lld %s%sis outside the allowed range %lld to %lld.",
                                    r->name, (long long)x, r->unit, *r->unit ? " " : "",
                                    (long long)r->min, (long long)r->max);
            json_object_set_new(lim, r->name, json_integer(x));
        } else if (!json_object_get(lim, r->name)) {
            json_object_set_new(lim, r->name, json_integer(r->def));
        }
    }
    return 0;
}


/* Exec.isBinaryCode's test (without its trim: the code is stored and
 * decoded as given): a non-empty multiple of 4 of the base64 alphabet with
 * at most two '=' at the end. Text code has spaces, newlines or
 * punctuation and never passes. */
static bool code_is_base64(const char *c, size_t n)
{
    if (n == 0 || n % 4)
        return false;
    size_t pad = c[n - 1] == '=' ? (c[n - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < n - pad; i++)
        if (!isalnum((unsigned char)c[i]) && c[i] != '+' && c[i] != '/')
            return false;
    return true;
}

/* exec.code (a string) and exec.binary into res. 0 or -EINVAL. */
static int exec_code(const json_t *ex, json_t *code, json_t *res, struct wisp_err *err)
{
    int binary = wjson_bool(ex, "binary", false);
    if (binary < 0)
        return wisp_err_set(err, -EINVAL, MALFORMED "exec.binary must be a boolean.");
    /* as OpenWhisk (Exec.isBinaryCode): code that is all base64 is
     * binary whether or not the client says so (the npm client sends a
     * zip Buffer as base64 code without the flag) */
    binary = binary || code_is_base64(json_string_value(code), json_string_length(code));
    if (binary) {
        size_t olen;
        int b = mbedtls_base64_decode(NULL, 0, &olen, (const unsigned char *)json_string_value(code),
                                      json_string_length(code));
        if (b == MBEDTLS_ERR_BASE64_INVALID_CHARACTER || json_string_length(code) == 0)
            return wisp_err_set(err, -EINVAL, MALFORMED "exec.code is marked binary but is not base64.");
    }
    json_object_set(res, "code", code);
    json_object_set_new(res, "binary", json_boolean(binary));
    return 0;
}

/* exec.main, when given, into res. 0 or -EINVAL. */
static int exec_main(const json_t *ex, json_t *res, struct wisp_err *err)
{
    json_t *m = json_object_get(ex, "main");
    if (!m || json_is_null(m))
        return 0;
    const char *ms = json_string_value(m);
    if (!ms || !*ms || strlen(ms) > 256)
        return wisp_err_set(err, -EINVAL, MALFORMED "exec.main must be a non-empty string.");
    json_object_set(res, "main", m);
    return 0;
}

static int build_exec(const struct entity_env *env, const json_t *ex, const char *caller_ns,
                      json_t **out, struct wisp_err *err)
{
    if (!json_is_object(ex))
        return wisp_err_set(err, -EINVAL, MALFORMED "exec must be an object.");
    const char *kname = wjson_str(ex, "kind");
    if (!kname)
        return wisp_err_set(err, -EINVAL, MALFORMED "exec.kind must be a string.");
    const struct rt_kind *k = rt_kind_find(env->kinds, kname);
    if (!k)
        return wisp_err_set(err, -EINVAL, MALFORMED "kind '%.64s' is not supported.", kname);
    json_t *res = json_pack("{s:s}", "kind", k->kind);
    if (!res)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    int rc = 0;
    json_t *code = json_object_get(ex, "code");
    if (code && !json_is_null(code) && !json_is_string(code)) {
        rc = wisp_err_set(err, -EINVAL, MALFORMED "exec.code must be a string.");
        goto out;
    }
    if (code && json_is_string(code) && json_string_length(code) > env->max_code_bytes) {
        rc = wisp_err_set(err, -E2BIG, "exec larger than allowed: %zu > %zu bytes.",
                          json_string_length(code), env->max_code_bytes);
        goto out;
    }
    switch (k->needs) {
    case RT_NEEDS_COMPONENTS: {
        json_t *comps = json_object_get(ex, "components");
        if (!json_is_array(comps) || json_array_size(comps) == 0) {
            rc = wisp_err_set(err, -EINVAL,
                              MALFORMED "a sequence needs exec.components, a non-empty array.");
            goto out;
        }
        if (json_array_size(comps) > env->sequence_max) {
            rc = wisp_err_set(err, -EINVAL, "Too many actions in the sequence.");
            goto out;
        }
        json_t *list = json_array();
        json_object_set_new(res, "components", list);
        size_t i;
        json_t *c;
        json_array_foreach(comps, i, c) {
            const char *s = json_string_value(c);
            char ns[AUTH_NS_MAX], path[2 * ENTITY_NAME_MAX + 2], fq[sizeof ns + sizeof path + 2];
            if (!s || s[0] != '/') {
                rc = wisp_err_set(err, -EINVAL,
                                  MALFORMED "exec.components[%zu] must be a fully qualified "
                                  "name (/namespace/[package/]action).", i);
                goto out;
            }
            if ((rc = entity_parse_ref(s, caller_ns, ns, path, err)) < 0)
                goto out;
            snprintf(fq, sizeof fq, "/%s/%s", ns, path);
            json_array_append_new(list, json_string(fq));
        }
        break;
    }
    case RT_NEEDS_IMAGE: {
        const char *image = wjson_str(ex, "image");
        if (!image || !*image || strlen(image) > 512) {
            rc = wisp_err_set(err, -EINVAL, MALFORMED "kind %s needs exec.image, a string.",
                              k->kind);
            goto out;
        }
        json_object_set_new(res, "image", json_string(image));
        /* as OpenWhisk's BlackBoxExec: code for the image's init is
         * optional, and main and binary go with it */
        if (code && json_is_string(code))
            rc = exec_code(ex, code, res, err);
        else
            json_object_set_new(res, "binary", json_false());
        if (rc == 0)
            rc = exec_main(ex, res, err);
        break;
    }
    case RT_NEEDS_CODE: {
        if (!code || !json_is_string(code)) {
            rc = wisp_err_set(err, -EINVAL, MALFORMED "kind %s needs exec.code, a string.",
                              k->kind);
            goto out;
        }
        if ((rc = exec_code(ex, code, res, err)) == 0)
            rc = exec_main(ex, res, err);
        break;
    }
    }
out:
    if (rc < 0) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return 0;
}

/* Shared head of every build: the body is an object, the document starts
 * from the stored one (update) or a fresh one (create). */
static int begin_doc(const json_t *body, const json_t *old, const char *ns, const char *name,
                     int64_t now_ms, json_t **out, struct wisp_err *err)
{
    if (!json_is_object(body))
        return wisp_err_set(err, -EINVAL, MALFORMED "expected a JSON object.");
    json_t *doc = old ? json_deep_copy(old) : json_object();
    if (!doc)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    char ver[32];
    entity_version_bump(old ? wjson_str(old, "version") : NULL, ver);
    json_object_set_new(doc, "namespace", json_string(ns));
    json_object_set_new(doc, "name", json_string(name));
    json_object_set_new(doc, "version", json_string(ver));
    json_object_set_new(doc, "updated", json_integer(now_ms));
    *out = doc;
    return 0;
}

static int annotations(const struct entity_env *env, json_t *doc, const json_t *body,
                       struct wisp_err *err)
{
    int rc = set_kv_field(doc, body, "annotations", false, env->max_params_bytes, err);
    if (rc < 0)
        return rc;
    json_t *del = json_object_get(body, "delAnnotations");
    if (!del || json_is_null(del))
        return 0;
    if (!json_is_array(del))
        return wisp_err_set(err, -EINVAL, MALFORMED "delAnnotations must be an array of strings.");
    json_t *ann = json_object_get(doc, "annotations");
    size_t i;
    json_t *d;
    json_array_foreach(del, i, d) {
        const char *k = json_string_value(d);
        if (!k)
            return wisp_err_set(err, -EINVAL,
                                MALFORMED "delAnnotations must be an array of strings.");
        for (size_t j = 0; j < json_array_size(ann); j++) {
            if (strcmp(wjson_str(json_array_get(ann, j), "key"), k) == 0) {
                json_array_remove(ann, j);
                break;
            }
        }
    }
    return 0;
}

static void set_annotation(json_t *doc, const char *key, json_t *value)
{
    json_t *ann = json_object_get(doc, "annotations");
    size_t i;
    json_t *e;
    json_array_foreach(ann, i, e) {
        if (strcmp(wjson_str(e, "key"), key) == 0) {
            json_object_set_new(e, "value", value);
            return;
        }
    }
    json_array_append_new(ann, json_pack("{s:s, s:o}", "key", key, "value", value));
}

int entity_build_action(const struct entity_env *env, const json_t *body, const json_t *old,
                        const char *ns_path, const char *name, const char *caller_ns,
                        int64_t now_ms, json_t **out, struct wisp_err *err)
{
    json_t *doc = NULL, *ex = NULL;
    int rc = begin_doc(body, old, ns_path, name, now_ms, &doc, err);
    if (rc < 0)
        return rc;
    json_t *in_exec = json_object_get(body, "exec");
    if (in_exec && !json_is_null(in_exec)) {
        if ((rc = build_exec(env, in_exec, caller_ns, &ex, err)) < 0)
            goto out;
        json_object_set_new(doc, "exec", ex);
    } else if (!old) {
        rc = wisp_err_set(err, -EINVAL, MALFORMED "exec undefined.");
        goto out;
    }
    if ((rc = set_kv_field(doc, body, "parameters", true, env->max_params_bytes, err)) < 0 ||
        (rc = annotations(env, doc, body, err)) < 0 || (rc = set_limits(env, doc, body, err)) < 0 ||
        (rc = set_publish(doc, body, err)) < 0)
        goto out;
    set_annotation(doc, "exec",
                   json_string(wjson_str(json_object_get(doc, "exec"), "kind")));
    *out = doc;
    doc = NULL;
out:
    json_decref(doc);
    return rc;
}

int entity_build_package(const struct entity_env *env, const json_t *body, const json_t *old,
                         const char *ns, const char *name, const json_t *binding_ref,
                         int64_t now_ms, json_t **out, struct wisp_err *err)
{
    json_t *doc = NULL;
    int rc = begin_doc(body, old, ns, name, now_ms, &doc, err);
    if (rc < 0)
        return rc;
    bool was_binding = old && json_object_size(json_object_get(old, "binding")) > 0;
    json_t *in_b = json_object_get(body, "binding");
    bool asks_binding = in_b && json_object_size(in_b) > 0;
    if (old && in_b && asks_binding != was_binding) {
        rc = wisp_err_set(err, -EINVAL,
                          "A package cannot be turned into a binding or a binding into a package.");
        goto out;
    }
    if (binding_ref)
        json_object_set(doc, "binding", (json_t *)binding_ref);
    else if (!json_object_get(doc, "binding"))
        json_object_set_new(doc, "binding", json_object());
    if ((rc = set_kv_field(doc, body, "parameters", false, env->max_params_bytes, err)) < 0 ||
        (rc = annotations(env, doc, body, err)) < 0 || (rc = set_publish(doc, body, err)) < 0)
        goto out;
    json_t *bd = json_object_get(doc, "binding");
    if (json_object_size(bd) > 0) /* as OpenWhisk annotates every binding */
        set_annotation(doc, "binding", json_incref(bd));
    *out = doc;
    doc = NULL;
out:
    json_decref(doc);
    return rc;
}

int entity_build_trigger(const struct entity_env *env, const json_t *body, const json_t *old,
                         const char *ns, const char *name, int64_t now_ms, json_t **out,
                         struct wisp_err *err)
{
    json_t *doc = NULL;
    int rc = begin_doc(body, old, ns, name, now_ms, &doc, err);
    if (rc < 0)
        return rc;
    if ((rc = set_kv_field(doc, body, "parameters", false, env->max_params_bytes, err)) < 0 ||
        (rc = annotations(env, doc, body, err)) < 0 || (rc = set_publish(doc, body, err)) < 0)
        goto out;
    if (!json_object_get(doc, "limits"))
        json_object_set_new(doc, "limits", json_object());
    if (!json_object_get(doc, "rules"))
        json_object_set_new(doc, "rules", json_object());
    *out = doc;
    doc = NULL;
out:
    json_decref(doc);
    return rc;
}

int entity_build_rule(const struct entity_env *env, const json_t *body, const json_t *old,
                      const char *ns, const char *name, const json_t *trigger,
                      const json_t *action, int64_t now_ms, json_t **out, struct wisp_err *err)
{
    json_t *doc = NULL;
    int rc = begin_doc(body, old, ns, name, now_ms, &doc, err);
    if (rc < 0)
        return rc;
    json_t *st = json_object_get(body, "status");
    const char *status = json_string_value(st);
    if (st && !json_is_null(st) &&
        (!status || (*status && strcmp(status, "active") && strcmp(status, "inactive")))) {
        rc = wisp_err_set(err, -EINVAL, MALFORMED "status must be \"active\" or \"inactive\".");
        goto out;
    }
    if (status && *status)
        json_object_set_new(doc, "status", json_string(status));
    else if (!json_object_get(doc, "status"))
        json_object_set_new(doc, "status", json_string("active"));
    if (trigger)
        json_object_set(doc, "trigger", (json_t *)trigger);
    if (action)
        json_object_set(doc, "action", (json_t *)action);
    if (!json_object_get(doc, "trigger") || !json_object_get(doc, "action")) {
        rc = wisp_err_set(err, -EINVAL, MALFORMED "a rule needs a trigger and an action.");
        goto out;
    }
    if ((rc = annotations(env, doc, body, err)) < 0 || (rc = set_publish(doc, body, err)) < 0)
        goto out;
    *out = doc;
    doc = NULL;
out:
    json_decref(doc);
    return rc;
}

json_t *entity_without_code(const json_t *doc)
{
    json_t *c = json_deep_copy(doc);
    json_t *ex = json_object_get(c, "exec");
    if (ex)
        json_object_del(ex, "code");
    return c;
}

json_t *entity_brief(enum rec_kind kind, const json_t *doc)
{
    static const char *const common[] = {"namespace", "name", "version", "publish",
                                         "annotations", "updated"};
    json_t *b = json_object();
    if (!b)
        return NULL;
    for (size_t i = 0; i < WISP_ARRAY_LEN(common); i++) {
        json_t *v = json_object_get(doc, common[i]);
        if (v)
            json_object_set(b, common[i], v);
    }
    json_t *ex = json_object_get(doc, "exec");
    switch (kind) {
    case REC_ACTION:
        json_object_set_new(b, "exec", json_pack("{s:b}", "binary",
                                                 json_is_true(json_object_get(ex, "binary"))));
        json_object_set(b, "limits", json_object_get(doc, "limits"));
        break;
    case REC_PACKAGE: { /* OpenWhisk's package view shows false for "no binding" */
        json_t *bd = json_object_get(doc, "binding");
        json_object_set_new(b, "binding", json_object_size(bd) ? json_incref(bd) : json_false());
        break;
    }
    case REC_RULE:
        json_object_set(b, "status", json_object_get(doc, "status"));
        json_object_set(b, "trigger", json_object_get(doc, "trigger"));
        json_object_set(b, "action", json_object_get(doc, "action"));
        break;
    default:
        break;
    }
    return b;
}

int entity_fuzz_one(const struct entity_env *env, const uint8_t *data, size_t len)
{
    json_t *body = wjson_parse((const char *)data, len, NULL), *out = NULL;
    if (!body)
        return -EINVAL;
    int rc = entity_build_action(env, body, NULL, "guest", "fuzz", "guest", 0, &out, NULL);
    if (rc == 0) {
        json_t *again = NULL;
        rc = entity_build_action(env, body, out, "guest", "fuzz", "guest", 1, &again, NULL);
        json_decref(again);
    }
    json_decref(out);
    json_decref(body);
    return rc;
}
