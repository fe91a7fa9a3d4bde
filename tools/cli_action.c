/* tools/cli_action.c - `wisp action create|update|invoke|get|delete|list`.
 *
 * The document an action is PUT with is built the way wsk builds it
 * (openwhisk-cli commands/action.go): exec from the code file (kind from
 * its extension, --kind over it), --sequence, or --docker; parameters and
 * annotations from -p/-P and -a/-A in command-line order; limits only
 * when given; --web as the three annotations web-export, raw-http and
 * final; --web-secure as require-whisk-auth.
 *
 * An update sends only what the command line names and the server keeps
 * the rest. The one exception, as in wsk: an update that changes --web or
 * --web-secure without -a first reads the action and sends its
 * annotations back with the web ones changed, since annotations given
 * replace all of them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli_cmd.h"
#include "plat.h"
#include "wjson.h"

#define NEED_CODE "An action name and code artifact are required."

/* The exec the command line gives: a sequence, code from a file, an
 * image. *exec stays NULL when it gives none (an update may). */
static int exec_of(struct cli_ctx *x, json_t **exec)
{
    *exec = NULL;
    const char *art = cli_pos(x, 1), *docker = cli_str(&x->a, OPT_DOCKER);
    const char *kind = cli_str(&x->a, OPT_KIND);
    if (kind && docker)
        return cli_usage_fail(x, "Cannot specify both --kind and --docker at the same time.");
    if (cli_has(&x->a, OPT_SEQUENCE)) {
        if (!art)
            return cli_usage_fail(x, NEED_CODE);
        json_t *comps = json_array();
        for (const char *p = art; comps && *p;) {
            size_t l = strcspn(p, ",");
            char one[600], q[700];
            snprintf(one, sizeof one, "%.*s", (int)l, p);
            cli_ctx_qualify(x, one, q, sizeof q);
            json_array_append_new(comps, json_string(q));
            p += l + (p[l] == ',');
        }
        *exec = json_pack("{s:s, s:o*}", "kind", "sequence", "components", comps);
        return *exec ? 0 : cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory");
    }
    if (!art && !docker)
        return 0;
    struct cli_exec_opts o = {.kind = kind, .main = cli_str(&x->a, OPT_MAIN), .image = docker};
    *exec = cli_exec_from_file(art, &o, &x->err);
    return *exec ? 0 : -1;
}

static json_t *limits_of(const struct cli_ctx *x)
{
    static const struct {
        int opt;
        const char *key;
    } map[] = {{OPT_TIMEOUT, "timeout"},
               {OPT_MEMORY, "memory"},
               {OPT_LOGSIZE, "logs"},
               {OPT_CONCURRENCY, "concurrency"}};
    json_t *l = NULL;
    for (size_t i = 0; i < WISP_ARRAY_LEN(map); i++)
        if (cli_has(&x->a, map[i].opt)) {
            if (!l)
                l = json_object();
            json_object_set_new(l, map[i].key, json_integer(cli_num(&x->a, map[i].opt, 0)));
        }
    return l;
}

/* -p/-P as "parameters" (or -a/-A as "annotations") when given. */
static int kv_member(struct cli_ctx *x, json_t *doc, const char *member, int pair, int file)
{
    bool given;
    json_t *obj = cli_ctx_kv(x, pair, file, &given);
    if (!obj)
        return -1;
    int rc = given ? json_object_set_new(doc, member, cli_kv_from_object(obj)) : 0;
    json_decref(obj);
    return rc == 0 ? 0 : cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory");
}

/* ==== --web and --web-secure ============================================ */

static bool is_web(const json_t *annots)
{
    return json_is_true(wjson_kv_get(annots, "web-export"));
}

static int set_web(struct cli_ctx *x, json_t *annots, const char *mode)
{
    bool on = !strcasecmp(mode, "true") || !strcasecmp(mode, "yes"), raw = !strcasecmp(mode, "raw");
    if (!on && !raw && strcasecmp(mode, "false") && strcasecmp(mode, "no"))
        return cli_usage_fail(x,
                              "Invalid argument '%s' for --web flag. Valid input consist of "
                              "'yes', 'true', 'raw', 'false', or 'no'.",
                              mode);
    if (cli_kv_set(annots, "web-export", json_boolean(on || raw)) < 0 ||
        cli_kv_set(annots, "raw-http", json_boolean(raw)) < 0 ||
        cli_kv_set(annots, "final", json_boolean(on || raw)) < 0)
        return cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory");
    return 0;
}

/* wsk's secret for --web-secure true: a random integer JS can hold. */
static json_t *new_secret(void)
{
    uint64_t r = 0;
    if (plat_rand_bytes(&r, sizeof r) < 0)
        return NULL;
    return json_integer((json_int_t)(r & ((1ull << 53) - 1)));
}

static int set_secret(struct cli_ctx *x, json_t *doc, json_t *annots, const json_t *old)
{
    const char *s = cli_str(&x->a, OPT_WEB_SECURE);
    json_t *had = wjson_kv_get(old, "require-whisk-auth");
    if (!strcasecmp(s, "false")) {
        cli_kv_del(annots, "require-whisk-auth");
        json_t *del = json_object_get(doc, "delAnnotations");
        if (had && !del)
            json_object_set_new(doc, "delAnnotations", del = json_array());
        return had && json_array_append_new(del, json_string("require-whisk-auth")) ? -1 : 0;
    }
    json_t *secret = strcasecmp(s, "true")  ? json_string(s)
                     : json_is_integer(had) ? json_incref(had)
                                            : new_secret();
    return cli_kv_set(annots, "require-whisk-auth", secret);
}

/* Carries the old action's annotations into an update that names no -a,
 * or just its web ones into one that does, as wsk. */
static json_t *web_annotations(json_t *doc, const json_t *old)
{
    json_t *annots = json_object_get(doc, "annotations");
    if (!annots) {
        annots = old ? json_deep_copy(old) : json_array();
        json_object_set_new(doc, "annotations", annots);
        return annots;
    }
    static const char *const keep[] = {"web-export", "raw-http", "final", "require-whisk-auth"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(keep); i++)
        if (wjson_kv_get(old, keep[i]) && !wjson_kv_get(annots, keep[i]) &&
            cli_kv_set(annots, keep[i], json_incref(wjson_kv_get(old, keep[i]))) < 0)
            return NULL;
    return annots;
}

static int apply_web(struct cli_ctx *x, json_t *doc, const json_t *old_action)
{
    const char *web = cli_str(&x->a, OPT_WEB), *secure = cli_str(&x->a, OPT_WEB_SECURE);
    if (!web && !secure)
        return 0;
    const json_t *old = json_object_get(old_action, "annotations");
    json_t *annots = web_annotations(doc, old);
    if (!annots)
        return cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory");
    if (web && set_web(x, annots, web) < 0)
        return -1;
    if (!secure)
        return 0;
    if (!is_web(annots))
        return cli_usage_fail(x, "The --web-secure option is only valid when the --web option "
                                 "is enabled.");
    return set_secret(x, doc, annots, old) < 0
               ? cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory")
               : 0;
}

/* ==== create and update ================================================== */

/* The action as it is now, for an update that changes --web: NULL when
 * there is none yet (the update creates it) or it is not needed. */
static int old_action(struct cli_ctx *x, const struct cli_name *n, json_t **out)
{
    *out = NULL;
    if (!cli_has(&x->a, OPT_WEB) && !cli_has(&x->a, OPT_WEB_SECURE))
        return 0;
    struct cli_client *cl;
    struct cli_resp r;
    char e[600];
    if (cli_ctx_client(x, &cl) < 0)
        return -1;
    int rc = cli_entity_get(cl, "actions", n, "code=false", &r, &x->err);
    if (rc < 0 && r.status == 404)
        rc = 0;
    else if (rc < 0)
        cli_err_prefix(&x->err, "Unable to get action '%s': ", cli_name_entity(n, e, sizeof e));
    else
        *out = json_incref(r.json);
    cli_resp_fini(&r);
    return rc;
}

static int action_doc(struct cli_ctx *x, const struct cli_name *n, bool update, json_t *doc)
{
    json_t *exec = NULL, *old = NULL;
    int rc = exec_of(x, &exec);
    if (rc == 0 && !exec && !update)
        rc = cli_usage_fail(x, NEED_CODE);
    if (rc == 0 && exec)
        json_object_set(doc, "exec", exec);
    if (rc == 0)
        rc = kv_member(x, doc, "parameters", OPT_PARAM, OPT_PARAM_FILE);
    if (rc == 0)
        rc = kv_member(x, doc, "annotations", OPT_ANNOT, OPT_ANNOT_FILE);
    json_t *limits = limits_of(x);
    if (limits)
        json_object_set_new(doc, "limits", limits);
    for (size_t i = 0; i < x->a.nocc; i++)
        if (x->a.occ[i].id == OPT_DEL_ANNOT) {
            json_t *del = json_object_get(doc, "delAnnotations");
            if (!del)
                json_object_set_new(doc, "delAnnotations", del = json_array());
            json_array_append_new(del, json_string(x->a.occ[i].v[0]));
        }
    if (rc == 0 && update)
        rc = old_action(x, n, &old);
    if (rc == 0)
        rc = apply_web(x, doc, old);
    json_decref(exec);
    json_decref(old);
    return rc;
}

static int action_put(struct cli_ctx *x, bool update)
{
    struct cli_name n;
    struct cli_client *cl;
    struct cli_resp r = {0};
    char e[600];
    json_t *doc = json_object();
    int rc = doc ? cli_ctx_name(x, cli_pos(x, 0), &n) : -1;
    if (rc == 0)
        rc = action_doc(x, &n, update, doc);
    if (rc == 0 && (rc = cli_ctx_client(x, &cl)) == 0 &&
        (rc = cli_entity_put(cl, "actions", &n, doc, update, &r, &x->err)) < 0)
        cli_err_prefix(&x->err, "Unable to %s action '%s': ", update ? "update" : "create",
                       cli_name_entity(&n, e, sizeof e));
    if (rc == 0)
        cli_ctx_done(x, r.json, "%s action %s", update ? "updated" : "created",
                     cli_bold(cli_name_entity(&n, e, sizeof e)));
    cli_resp_fini(&r);
    json_decref(doc);
    return rc;
}

int cli_action_create(struct cli_ctx *x)
{
    return action_put(x, false);
}

int cli_action_update(struct cli_ctx *x)
{
    return action_put(x, true);
}

/* ==== invoke ============================================================= */

/* A 502 that carries the failed action's answer (its record, or with
 * result=true its result), not an error of the API's ({"error", "code"}):
 * wsk's parseApplicationError. */
static bool action_failed(const struct cli_resp *r)
{
    return r->status == 502 && r->json && !json_object_get(r->json, "code");
}

/* After the answer: what wsk prints for it, and the exit code. */
static int invoke_report(struct cli_ctx *x, const char *shown, const struct cli_resp *r,
                         bool blocking, bool result, int rc)
{
    const char *id = wjson_str(r->json, "activationId");
    if (!id)
        id = r->activation_id;
    if (rc == 0 && blocking && r->status == 202) { /* still running after the server's wait */
        fprintf(stderr, "ok: invoked %s, but the request has not yet finished, with id %s\n", shown,
                id);
        if (x->json)
            cli_print_json(stdout, r->json);
        return CLI_EXIT_TIMED_OUT;
    }
    bool failed = rc < 0 && action_failed(r);
    if (rc < 0 && !failed)
        return -1;
    FILE *f = failed && !x->json ? stderr : stdout;
    if (!x->json && !result && f == stdout)
        cli_ok("invoked %s with id %s", shown, cli_bold(id));
    else if (!x->json && !result)
        fprintf(f, "ok: invoked %s with id %s\n", shown, id);
    if (x->json || blocking)
        cli_print_json(f, r->json);
    return failed ? x->err.exit_code : 0;
}

int cli_action_invoke_cmd(struct cli_ctx *x)
{
    struct cli_name n;
    struct cli_client *cl;
    struct cli_resp r = {0};
    bool given, result = cli_has(&x->a, OPT_RESULT);
    bool blocking = result || cli_has(&x->a, OPT_BLOCKING);
    char shown[600], e[600];
    if (cli_ctx_name(x, cli_pos(x, 0), &n) < 0)
        return -1;
    json_t *params = cli_ctx_kv(x, OPT_PARAM, OPT_PARAM_FILE, &given);
    int rc = params ? cli_ctx_client(x, &cl) : -1;
    if (rc == 0) {
        rc = cli_action_invoke(cl, &n, params, blocking, result, &r, &x->err);
        if (rc < 0 && !action_failed(&r))
            cli_err_prefix(&x->err,
                           "Unable to invoke action '%s': ", cli_name_entity(&n, e, sizeof e));
        rc = invoke_report(x, cli_name_full(&n, shown, sizeof shown), &r, blocking, result, rc);
    }
    cli_resp_fini(&r);
    json_decref(params);
    return rc;
}

/* ==== get ================================================================ */

/* wsk's ActionURL: the web URL of a web action, else its REST URL. */
static void action_url(const struct cli_ctx *x, const struct cli_name *n, const json_t *doc,
                       char *out, size_t cap)
{
    const char *h = x->conf.apihost;
    size_t hl = strlen(h);
    while (hl && h[hl - 1] == '/')
        hl--;
    char ns[256];
    snprintf(ns, sizeof ns, "%s", wjson_str(doc, "namespace") ? wjson_str(doc, "namespace") : "");
    ns[strcspn(ns, "/")] = '\0';
    const char *scheme = strstr(h, "://") ? "" : "https://";
    if (is_web(json_object_get(doc, "annotations")))
        snprintf(out, cap, "%s%.*s/api/%s/web/%s/%s/%s", scheme, (int)hl, h, x->conf.apiversion, ns,
                 n->pkg[0] ? n->pkg : "default", n->name);
    else
        snprintf(out, cap, "%s%.*s/api/%s/namespaces/%s/actions/%s%s%s", scheme, (int)hl, h,
                 x->conf.apiversion, ns, n->pkg, n->pkg[0] ? "/" : "", n->name);
}

/* The extension wsk gives saved code (getKindExtension). */
static const char *code_ext(const char *kind, bool binary)
{
    static const char *const map[][2] = {{"nodejs", ".js"}, {"python", ".py"}, {"swift", ".swift"},
                                         {"php", ".php"},   {"ruby", ".rb"},   {"rust", ".rs"},
                                         {"go", ".go"},     {"java", ".jar"}};
    if (binary && strncmp(kind, "java", 4) != 0)
        return strcmp(kind, "native") == 0 ? "" : ".zip";
    for (size_t i = 0; i < WISP_ARRAY_LEN(map); i++)
        if (strncmp(kind, map[i][0], strlen(map[i][0])) == 0)
            return map[i][1];
    return "";
}

static int write_new(struct cli_ctx *x, const char *file, const void *data, size_t len,
                     unsigned mode)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST)
        return cli_usage_fail(x, "The file '%s' already exists", file);
    if (fd < 0)
        return cli_usage_fail(x, "Cannot create file '%s': %s", file, strerror(errno));
    ssize_t w = write(fd, data, len);
    int e = errno;
    if (close(fd) < 0 || w < 0 || (size_t)w != len)
        return cli_fail(&x->err, CLI_EXIT_GENERAL, "Cannot write file '%s': %s", file,
                        strerror(w < 0 ? e : EIO));
    return 0;
}

static int save_code(struct cli_ctx *x, const struct cli_name *n, const json_t *doc)
{
    const json_t *exec = json_object_get(doc, "exec");
    const char *kind = wjson_str(exec, "kind") ? wjson_str(exec, "kind") : "";
    const json_t *code = json_object_get(exec, "code");
    bool binary = json_is_true(json_object_get(exec, "binary"));
    if (strcmp(kind, "sequence") == 0)
        return cli_usage_fail(x, "Cannot save action sequences");
    if (!json_is_string(code))
        return cli_usage_fail(x, "Cannot save Docker images");
    char file[PATH_MAX];
    if (cli_str(&x->a, OPT_SAVE_AS))
        snprintf(file, sizeof file, "%s", cli_str(&x->a, OPT_SAVE_AS));
    else
        snprintf(file, sizeof file, "%s%s", n->name, code_ext(kind, binary));
    const char *text = json_string_value(code);
    size_t len = json_string_length(code), out = len;
    unsigned char *bin = binary ? malloc(len + 1) : NULL;
    if (binary && (!bin || !plat_base64_decode(text, len, bin, len + 1, &out))) {
        free(bin);
        return cli_fail(&x->err, CLI_EXIT_GENERAL, "The action's code is not valid base64");
    }
    int rc = write_new(x, file, binary ? (const void *)bin : text, out,
                       strcmp(kind, "native") == 0 ? 0755 : 0644);
    free(bin);
    char real[PATH_MAX];
    if (rc == 0)
        cli_ctx_done(x, NULL, "saved action code to %s",
                     cli_bold(realpath(file, real) ? real : file));
    return rc;
}

int cli_action_get(struct cli_ctx *x)
{
    struct cli_name n;
    struct cli_client *cl;
    struct cli_resp r = {0};
    char e[600];
    bool url = cli_has(&x->a, OPT_URL), summary = cli_has(&x->a, OPT_SUMMARY);
    bool save = cli_has(&x->a, OPT_SAVE) || cli_has(&x->a, OPT_SAVE_AS);
    const char *field = url || summary ? NULL : cli_pos(x, 1);
    int rc = cli_ctx_name(x, cli_pos(x, 0), &n);
    if (rc == 0 && (rc = cli_ctx_client(x, &cl)) == 0 &&
        (rc = cli_entity_get(cl, "actions", &n, save ? "code=true" : "code=false", &r, &x->err)) <
            0)
        cli_err_prefix(&x->err, "Unable to get action '%s': ", cli_name_entity(&n, e, sizeof e));
    if (rc == 0 && url) {
        char u[2048];
        action_url(x, &n, r.json, u, sizeof u);
        json_t *j = json_pack("{s:s}", "url", u);
        if (!x->json)
            cli_ok("got action %s", cli_bold(cli_name_entity(&n, e, sizeof e)));
        x->json ? cli_print_json(stdout, j) : (void)printf("%s\n", u);
        json_decref(j);
    } else if (rc == 0 && summary && !x->json) {
        cli_print_summary("action", r.json);
    } else if (rc == 0 && save) {
        rc = save_code(x, &n, r.json);
    } else if (rc == 0) {
        rc = cli_ctx_show(x, "action", cli_name_entity(&n, e, sizeof e), r.json, field);
    }
    cli_resp_fini(&r);
    return rc;
}

/* ==== delete and list ==================================================== */

int cli_action_delete(struct cli_ctx *x)
{
    return cli_verb_delete(x, "actions", "action");
}

int cli_action_list(struct cli_ctx *x)
{
    struct cli_name n = {0};
    struct cli_client *cl;
    struct cli_resp r = {0};
    snprintf(n.ns, sizeof n.ns, "%s", x->conf.ns);
    int rc = cli_pos(x, 0) ? cli_ctx_name(x, cli_pos(x, 0), &n) : 0;
    if (rc == 0 && n.pkg[0])
        rc = cli_usage_fail(x, "'%s' is not a namespace or a package", cli_pos(x, 0));
    struct cli_list_opts o = {.limit = (int)cli_num(&x->a, OPT_LIMIT, 30),
                              .skip = (int)cli_num(&x->a, OPT_SKIP, 0)};
    if (rc == 0 && (rc = cli_ctx_client(x, &cl)) == 0 &&
        (rc = cli_entity_list(cl, "actions", n.ns, n.name, &o, &r, &x->err)) < 0)
        cli_err_prefix(&x->err, "Unable to obtain the list of actions for namespace '%s': ",
                       strcmp(n.ns, "_") ? n.ns : "default");
    if (rc == 0 && x->json)
        cli_print_json(stdout, r.json);
    else if (rc == 0)
        cli_print_list("actions", r.json, cli_has(&x->a, OPT_NAME_SORT));
    cli_resp_fini(&r);
    return rc;
}
