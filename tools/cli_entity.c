/* tools/cli_entity.c - names, the entity calls of the OpenWhisk REST API,
 * and the documents they carry (key/value arrays, parameters, exec).
 *
 * Paths are built here and only here: every segment is percent-encoded
 * (entity names may hold blanks and '@'), so a name can never change the
 * path or start a query. The namespace "_" means the key's own, as the
 * server reads it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "plat.h"
#include "wjson.h"

/* An action's code may be 48 MB (OpenWhisk's limit, wispd's default). */
#define CLI_CODE_MAX (48u << 20)

/* ==== names ============================================================== */

static int copy_part(char *dst, size_t cap, const char *s, size_t n, const char *whole,
                     struct cli_err *err)
{
    if (n >= cap)
        return cli_fail(err, CLI_EXIT_USAGE, "The name '%s' is too long.", whole);
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

int cli_name_parse(const char *s, const char *default_ns, struct cli_name *n, struct cli_err *err)
{
    *n = (struct cli_name){0};
    const char *parts[4];
    size_t lens[4], np = 0;
    bool qualified = s[0] == '/';
    for (const char *p = s + qualified; np < 4;) {
        size_t l = strcspn(p, "/");
        parts[np] = p;
        lens[np++] = l;
        if (!p[l])
            break;
        p += l + 1;
    }
    bool bad = np == 4 || (!qualified && np > 2);
    for (size_t i = 0; i < np && !bad; i++)
        bad = lens[i] == 0;
    if (bad || !*s)
        return cli_fail(err, CLI_EXIT_USAGE,
                        "'%s' is not a valid qualified name. A valid qualified name must be "
                        "specified.",
                        s);
    size_t i = 0;
    int rc = qualified ? copy_part(n->ns, sizeof n->ns, parts[i], lens[i], s, err)
                       : copy_part(n->ns, sizeof n->ns, default_ns, strlen(default_ns), s, err);
    i += qualified;
    if (rc == 0 && np - i == 2) {
        rc = copy_part(n->pkg, sizeof n->pkg, parts[i], lens[i], s, err);
        i++;
    }
    if (rc == 0 && i < np)
        rc = copy_part(n->name, sizeof n->name, parts[i], lens[i], s, err);
    return rc;
}

const char *cli_name_entity(const struct cli_name *n, char *buf, size_t cap)
{
    if (n->pkg[0])
        snprintf(buf, cap, "%s/%s", n->pkg, n->name);
    else
        snprintf(buf, cap, "%s", n->name);
    return buf;
}

const char *cli_name_full(const struct cli_name *n, char *buf, size_t cap)
{
    char e[520];
    snprintf(buf, cap, "/%s/%s", n->ns, cli_name_entity(n, e, sizeof e));
    return buf;
}

/* ==== paths ============================================================== */

/* NUL-terminates b (plat_buf keeps room for it but does not write it). */
static int buf_cstr(struct plat_buf *b)
{
    if (plat_buf_reserve(b, 0) < 0)
        return -1;
    b->data[b->len] = '\0';
    return 0;
}

/* Appends s percent-encoded (RFC 3986 unreserved characters as they are). */
static int put_escaped(struct plat_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~", *p);
        char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        rc = plain ? plat_buf_add(b, p, 1) : plat_buf_add(b, enc, 3);
    }
    return rc;
}

/* "namespaces/NS/COLL[/PKG][/NAME][?QUERY]"; the caller frees b. Segments
 * that are NULL or "" are left out; a pkg alone keeps its trailing '/'
 * (the API's "actions of a package"). */
static int entity_path(struct plat_buf *b, const char *ns, const char *coll, const char *pkg,
                       const char *name, const char *query)
{
    int rc = plat_buf_add(b, "namespaces/", 11);
    if (rc == 0)
        rc = put_escaped(b, ns);
    if (rc == 0 && (rc = plat_buf_add(b, "/", 1)) == 0)
        rc = plat_buf_add(b, coll, strlen(coll));
    if (rc == 0 && pkg && *pkg && (rc = plat_buf_add(b, "/", 1)) == 0 &&
        (rc = put_escaped(b, pkg)) == 0 && !(name && *name))
        rc = plat_buf_add(b, "/", 1);
    if (rc == 0 && name && *name && (rc = plat_buf_add(b, "/", 1)) == 0)
        rc = put_escaped(b, name);
    if (rc == 0 && query && *query && (rc = plat_buf_add(b, "?", 1)) == 0)
        rc = plat_buf_add(b, query, strlen(query));
    return rc == 0 ? buf_cstr(b) : rc;
}

/* One call on an entity path; 0 for 2xx, as the header says. */
static int call(struct cli_client *cl, const char *method, const char *ns, const char *coll,
                const char *pkg, const char *name, const char *query, const json_t *body,
                struct cli_resp *out, struct cli_err *err)
{
    struct plat_buf path = {0};
    *out = (struct cli_resp){0};
    if (entity_path(&path, ns, coll, pkg, name, query) < 0) {
        plat_buf_fini(&path);
        return cli_fail(err, CLI_EXIT_GENERAL, "out of memory");
    }
    int rc = cli_http(cl, method, path.data, body, out, err);
    plat_buf_fini(&path);
    return rc < 0 ? rc : cli_resp_check(out, err);
}

int cli_entity_put(struct cli_client *cl, const char *coll, const struct cli_name *n,
                   const json_t *doc, bool overwrite, struct cli_resp *out, struct cli_err *err)
{
    return call(cl, "PUT", n->ns, coll, n->pkg, n->name,
                overwrite ? "overwrite=true" : "overwrite=false", doc, out, err);
}

int cli_entity_get(struct cli_client *cl, const char *coll, const struct cli_name *n,
                   const char *query, struct cli_resp *out, struct cli_err *err)
{
    return call(cl, "GET", n->ns, coll, n->pkg, n->name, query, NULL, out, err);
}

int cli_entity_delete(struct cli_client *cl, const char *coll, const struct cli_name *n,
                      struct cli_resp *out, struct cli_err *err)
{
    return call(cl, "DELETE", n->ns, coll, n->pkg, n->name, NULL, NULL, out, err);
}

/* Appends "key=v&" to a query. */
static int query_num(struct plat_buf *q, const char *key, long long v)
{
    char num[96];
    int n = snprintf(num, sizeof num, "%s=%lld&", key, v);
    return plat_buf_add(q, num, (size_t)n);
}

int cli_entity_list(struct cli_client *cl, const char *coll, const char *ns, const char *pkg,
                    const struct cli_list_opts *o, struct cli_resp *out, struct cli_err *err)
{
    struct plat_buf q = {0};
    int rc = o->limit > 0 ? query_num(&q, "limit", o->limit) : 0;
    if (rc == 0)
        rc = query_num(&q, "skip", o->skip);
    if (rc == 0 && o->since > 0)
        rc = query_num(&q, "since", o->since);
    if (rc == 0 && o->upto > 0)
        rc = query_num(&q, "upto", o->upto);
    if (rc == 0 && o->docs)
        rc = plat_buf_add(&q, "docs=true&", 10);
    if (rc == 0 && o->name && *o->name && (rc = plat_buf_add(&q, "name=", 5)) == 0)
        rc = put_escaped(&q, o->name);
    if (rc == 0)
        rc = buf_cstr(&q);
    if (rc < 0) {
        plat_buf_fini(&q);
        *out = (struct cli_resp){0};
        return cli_fail(err, CLI_EXIT_GENERAL, "out of memory");
    }
    if (q.len && q.data[q.len - 1] == '&')
        q.data[--q.len] = '\0';
    rc = call(cl, "GET", ns, coll, pkg, NULL, q.data, NULL, out, err);
    plat_buf_fini(&q);
    return rc;
}

int cli_action_invoke(struct cli_client *cl, const struct cli_name *n, const json_t *params,
                      bool blocking, bool result, struct cli_resp *out, struct cli_err *err)
{
    char q[64];
    snprintf(q, sizeof q, "blocking=%s&result=%s", blocking ? "true" : "false",
             result ? "true" : "false");
    json_t *empty = params ? NULL : json_object();
    int rc =
        call(cl, "POST", n->ns, "actions", n->pkg, n->name, q, params ? params : empty, out, err);
    json_decref(empty);
    return rc;
}

int cli_trigger_fire(struct cli_client *cl, const struct cli_name *n, const json_t *params,
                     struct cli_resp *out, struct cli_err *err)
{
    json_t *empty = params ? NULL : json_object();
    int rc =
        call(cl, "POST", n->ns, "triggers", NULL, n->name, NULL, params ? params : empty, out, err);
    json_decref(empty);
    return rc;
}

int cli_rule_state(struct cli_client *cl, const struct cli_name *n, bool active,
                   struct cli_resp *out, struct cli_err *err)
{
    json_t *body = json_pack("{s:s}", "status", active ? "active" : "inactive");
    int rc = call(cl, "POST", n->ns, "rules", NULL, n->name, NULL, body, out, err);
    json_decref(body);
    return rc;
}

int cli_activation_fetch(struct cli_client *cl, const char *ns, const char *id, const char *part,
                         struct cli_resp *out, struct cli_err *err)
{
    /* activations/ID/PART: the id takes the package's place in the path */
    return part ? call(cl, "GET", ns, "activations", id, part, NULL, NULL, out, err)
                : call(cl, "GET", ns, "activations", NULL, id, NULL, NULL, out, err);
}

/* ==== documents ========================================================== */

void cli_kv_del(json_t *arr, const char *key)
{
    for (size_t i = json_array_size(arr); i-- > 0;) {
        const char *k = wjson_str(json_array_get(arr, i), "key");
        if (k && strcmp(k, key) == 0)
            json_array_remove(arr, i);
    }
}

int cli_kv_set(json_t *arr, const char *key, json_t *value)
{
    json_t *e = value ? json_pack("{s:s, s:o}", "key", key, "value", value) : NULL;
    if (!e)
        return -1;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *k = wjson_str(json_array_get(arr, i), "key");
        if (k && strcmp(k, key) == 0) {
            cli_kv_del(arr, key); /* later duplicates too */
            return json_array_insert_new(arr, i, e) == 0 ? 0 : -1;
        }
    }
    return json_array_append_new(arr, e) == 0 ? 0 : -1;
}

json_t *cli_kv_from_object(const json_t *obj)
{
    json_t *arr = json_array(), *v;
    const char *k;
    json_object_foreach((json_t *)obj, k, v) if (!arr || cli_kv_set(arr, k, json_incref(v)) < 0)
    {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

json_t *cli_value(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(text);
}

/* Reads a whole file for the CLI, errors in wsk's words (exit 2). */
static int read_input(const char *path, size_t max, char **data, size_t *len, struct cli_err *err)
{
    int rc = plat_read_file(path, max, data, len);
    if (rc == -ENOENT || rc == -EISDIR || rc == -EINVAL)
        return cli_fail(err, CLI_EXIT_USAGE, "File '%s' is not a valid file or it does not exist",
                        path);
    if (rc == -E2BIG)
        return cli_fail(err, CLI_EXIT_USAGE, "File '%s' is larger than %u MB", path,
                        (unsigned)(max >> 20));
    if (rc < 0)
        return cli_fail(err, CLI_EXIT_USAGE, "Unable to read the file '%s': %s", path,
                        strerror(-rc));
    return 0;
}

json_t *cli_json_file(const char *path, struct cli_err *err)
{
    char *data = NULL;
    size_t len = 0;
    if (read_input(path, 16u << 20, &data, &len, err) < 0)
        return NULL;
    json_error_t je;
    json_t *j = json_loadb(data, len, 0, &je);
    free(data);
    if (!j)
        cli_fail(err, CLI_EXIT_USAGE, "File '%s' is not JSON: %s (line %d)", path, je.text,
                 je.line);
    else if (!json_is_object(j)) {
        json_decref(j);
        j = NULL;
        cli_fail(err, CLI_EXIT_USAGE, "File '%s' must hold a JSON object", path);
    }
    return j;
}

/* The kind for code in path, from its name and its first bytes. */
static int kind_of(const char *path, const char *data, size_t len, const char **kind,
                   struct cli_err *err)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *ext = strrchr(base, '.') ? strrchr(base, '.') : "";
    struct stat st;
    bool elf = len >= 4 && memcmp(data, "\177ELF", 4) == 0;
    bool script =
        len >= 2 && memcmp(data, "#!", 2) == 0 && stat(path, &st) == 0 && (st.st_mode & 0111);
    if (strcmp(ext, ".js") == 0)
        *kind = "nodejs:default";
    else if (strcmp(ext, ".py") == 0)
        *kind = "python:default";
    else if (strcmp(ext, ".zip") == 0)
        return cli_fail(err, CLI_EXIT_USAGE,
                        "creating an action from a .zip artifact requires "
                        "specifying the action kind explicitly");
    else if (elf || script)
        *kind = "native";
    else
        return cli_fail(err, CLI_EXIT_USAGE,
                        "'%s' is not a supported action runtime (name the kind with --kind)",
                        *ext ? ext : base);
    return 0;
}

static int exec_code(json_t *exec, const char *path, const struct cli_exec_opts *o,
                     struct cli_err *err)
{
    char *data = NULL;
    size_t len = 0;
    if (read_input(path, CLI_CODE_MAX, &data, &len, err) < 0)
        return -1;
    const char *kind = o->kind;
    int rc = o->image || kind ? 0 : kind_of(path, data, len, &kind, err);
    const char *ext = strrchr(path, '.');
    bool binary = (ext && strcmp(ext, ".zip") == 0) || memchr(data, '\0', len) != NULL ||
                  (len >= 4 && memcmp(data, "\177ELF", 4) == 0);
    json_t *code = binary ? NULL : json_stringn(data, len); /* NULL: not UTF-8 */
    if (!code)
        binary = true, code = wjson_base64(data, len);
    free(data);
    if (rc == 0 && !code)
        rc = cli_fail(err, CLI_EXIT_GENERAL, "out of memory");
    if (rc == 0 && kind && json_object_set_new(exec, "kind", json_string(kind)))
        rc = cli_fail(err, CLI_EXIT_GENERAL, "out of memory");
    if (rc == 0 && (json_object_set(exec, "code", code) ||
                    json_object_set_new(exec, "binary", json_boolean(binary))))
        rc = cli_fail(err, CLI_EXIT_GENERAL, "out of memory");
    json_decref(code);
    return rc;
}

json_t *cli_exec_from_file(const char *path, const struct cli_exec_opts *o, struct cli_err *err)
{
    json_t *exec = json_object();
    int rc = exec ? 0 : cli_fail(err, CLI_EXIT_GENERAL, "out of memory");
    if (rc == 0 && o->image)
        rc = json_object_set_new(exec, "kind", json_string("blackbox")) ||
                     json_object_set_new(exec, "image", json_string(o->image))
                 ? cli_fail(err, CLI_EXIT_GENERAL, "out of memory")
                 : 0;
    if (rc == 0 && path)
        rc = exec_code(exec, path, o, err);
    if (rc == 0 && o->main && json_object_set_new(exec, "main", json_string(o->main)))
        rc = cli_fail(err, CLI_EXIT_GENERAL, "out of memory");
    if (rc < 0) {
        json_decref(exec);
        return NULL;
    }
    return exec;
}
