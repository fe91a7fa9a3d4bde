/* tools/cli_entities.c - the trigger, rule, package and namespace verbs,
 * `wisp list`, and the get/delete/list every entity kind shares.
 *
 * Triggers with a feed behave as in wsk (openwhisk-cli commands/
 * trigger.go): `trigger create --feed F` creates the trigger with a
 * "feed" annotation and no parameters of its own, then invokes F
 * (blocking) with lifecycleEvent CREATE, triggerName /NS/NAME, authKey
 * and the -p parameters; if F refuses, the trigger is deleted again and
 * the command fails with F's answer. `trigger update` of a trigger with a
 * feed runs F's UPDATE instead of changing the trigger; `trigger delete`
 * deletes the trigger, and wispd tells F (DELETE) as it does for every
 * client. */
#include <string.h>
#include <strings.h>

#include "cli_cmd.h"
#include "wjson.h"

/* ==== what every kind shares ============================================= */

int cli_verb_get(struct cli_ctx *x, const char *coll, const char *kind)
{
    struct cli_name n;
    struct cli_client *cl;
    struct cli_resp r = {0};
    char e[600];
    int rc = cli_ctx_name(x, cli_pos(x, 0), &n);
    if (rc == 0 && (rc = cli_ctx_client(x, &cl)) == 0 &&
        (rc = cli_entity_get(cl, coll, &n, NULL, &r, &x->err)) < 0)
        cli_err_prefix(&x->err, "Unable to get %s '%s': ", kind, cli_name_entity(&n, e, sizeof e));
    if (rc == 0 && cli_has(&x->a, OPT_SUMMARY) && !x->json)
        cli_print_summary(kind, r.json);
    else if (rc == 0)
        rc = cli_ctx_show(x, kind, cli_name_entity(&n, e, sizeof e), r.json, cli_pos(x, 1));
    cli_resp_fini(&r);
    return rc;
}

int cli_verb_delete(struct cli_ctx *x, const char *coll, const char *kind)
{
    struct cli_name n;
    struct cli_client *cl;
    struct cli_resp r = {0};
    char e[600];
    int rc = cli_ctx_name(x, cli_pos(x, 0), &n);
    if (rc == 0 && (rc = cli_ctx_client(x, &cl)) == 0 &&
        (rc = cli_entity_delete(cl, coll, &n, &r, &x->err)) < 0)
        cli_err_prefix(&x->err, "Unable to delete %s '%s': ", kind,
                       cli_name_entity(&n, e, sizeof e));
    if (rc == 0)
        cli_ctx_done(x, r.json, "deleted %s %s", kind, cli_bold(cli_name_entity(&n, e, sizeof e)));
    cli_resp_fini(&r);
    return rc;
}

/* The namespace of `COLL list [/NAMESPACE]`. */
static int list_ns(struct cli_ctx *x, char *ns, size_t cap)
{
    snprintf(ns, cap, "%s", x->conf.ns);
    const char *arg = cli_pos(x, 0);
    struct cli_name n;
    if (!arg)
        return 0;
    if (cli_ctx_name(x, arg, &n) < 0)
        return -1;
    if (n.name[0] || arg[0] != '/')
        return cli_usage_fail(x,
                              "An entity name, '%s', was provided instead of a namespace. "
                              "Valid namespaces are of the following format: /NAMESPACE.",
                              arg);
    snprintf(ns, cap, "%s", n.ns);
    return 0;
}

static int verb_list(struct cli_ctx *x, const char *coll)
{
    char ns[256];
    struct cli_client *cl;
    struct cli_resp r = {0};
    struct cli_list_opts o = {.limit = (int)cli_num(&x->a, OPT_LIMIT, 30),
                              .skip = (int)cli_num(&x->a, OPT_SKIP, 0)};
    int rc = list_ns(x, ns, sizeof ns);
    if (rc == 0 && (rc = cli_ctx_client(x, &cl)) == 0 &&
        (rc = cli_entity_list(cl, coll, ns, NULL, &o, &r, &x->err)) < 0)
        cli_err_prefix(&x->err, "Unable to obtain the list of %s for namespace '%s': ", coll,
                       strcmp(ns, "_") ? ns : "default");
    if (rc == 0 && x->json)
        cli_print_json(stdout, r.json);
    else if (rc == 0)
        cli_print_list(coll, r.json, cli_has(&x->a, OPT_NAME_SORT));
    cli_resp_fini(&r);
    return rc;
}

/* Parameters and annotations of the command line as "parameters" and
 * "annotations" of doc, each when given. */
static int put_kv(struct cli_ctx *x, json_t *doc, bool with_params)
{
    static const struct {
        const char *member;
        int pair, file;
    } kv[] = {{"parameters", OPT_PARAM, OPT_PARAM_FILE},
              {"annotations", OPT_ANNOT, OPT_ANNOT_FILE}};
    for (size_t i = with_params ? 0 : 1; i < WISP_ARRAY_LEN(kv); i++) {
        bool given;
        json_t *obj = cli_ctx_kv(x, kv[i].pair, kv[i].file, &given);
        if (!obj)
            return -1;
        if (given)
            json_object_set_new(doc, kv[i].member, cli_kv_from_object(obj));
        json_decref(obj);
    }
    return 0;
}

/* PUT of coll NAME with doc (overwrite: an update), failing in wsk's
 * words, "Unable to create KIND 'NAME': ..."; r holds the answer. */
static int put_raw(struct cli_ctx *x, const char *coll, const struct cli_name *n, const json_t *doc,
                   bool overwrite, const char *kind, struct cli_resp *r)
{
    struct cli_client *cl;
    char e[600];
    *r = (struct cli_resp){0};
    int rc = cli_ctx_client(x, &cl);
    if (rc == 0 && (rc = cli_entity_put(cl, coll, n, doc, overwrite, r, &x->err)) < 0)
        cli_err_prefix(&x->err, "Unable to %s %s '%s': ", overwrite ? "update" : "create", kind,
                       cli_name_entity(n, e, sizeof e));
    return rc;
}

/* put_raw, then "ok: created KIND NAME" (or updated). */
static int put_entity(struct cli_ctx *x, const char *coll, const struct cli_name *n,
                      const json_t *doc, bool overwrite, const char *kind)
{
    struct cli_resp r;
    char e[600];
    int rc = put_raw(x, coll, n, doc, overwrite, kind, &r);
    if (rc == 0)
        cli_ctx_done(x, r.json, "%s %s %s", overwrite ? "updated" : "created", kind,
                     cli_bold(cli_name_entity(n, e, sizeof e)));
    cli_resp_fini(&r);
    return rc;
}

/* ==== triggers =========================================================== */

/* Invokes trigger t's feed action (blocking) with lifecycle event ev, as
 * wsk's feedParameters: triggerName, authKey, and params. */
static int run_feed(struct cli_ctx *x, const char *feed, const struct cli_name *t, const char *ev,
                    const json_t *params, struct cli_resp *r)
{
    struct cli_name f;
    struct cli_client *cl;
    char tn[600], full[600];
    *r = (struct cli_resp){0};
    if (cli_ctx_name(x, feed, &f) < 0 || cli_ctx_client(x, &cl) < 0)
        return -1;
    json_t *p = params ? json_deep_copy(params) : json_object();
    snprintf(tn, sizeof tn, "/%s/%s", t->ns, t->name);
    if (!p || json_object_set_new(p, "lifecycleEvent", json_string(ev)) ||
        json_object_set_new(p, "triggerName", json_string(tn)) ||
        json_object_set_new(p, "authKey", json_string(x->conf.auth))) {
        json_decref(p);
        return cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory");
    }
    int rc = cli_action_invoke(cl, &f, p, true, false, r, &x->err);
    json_decref(p);
    if (rc < 0 && r->json && !x->json) /* the feed's refusal, as wsk shows it */
        cli_print_json(stderr, r->json);
    if (rc < 0)
        cli_err_prefix(&x->err,
                       "Unable to configure feed '%s': ", cli_name_full(&f, full, sizeof full));
    return rc;
}

/* The feed of a trigger document, or NULL. */
static const char *feed_of(const json_t *trigger)
{
    return json_string_value(wjson_kv_get(json_object_get(trigger, "annotations"), "feed"));
}

/* The trigger document of the command line: with a feed, the "feed"
 * annotation and no parameters (those go to the feed). */
static int trigger_doc(struct cli_ctx *x, const char *feed, json_t *doc, char *ffull, size_t cap)
{
    struct cli_name f;
    if (put_kv(x, doc, !feed) < 0)
        return -1;
    if (!feed)
        return 0;
    if (cli_ctx_name(x, feed, &f) < 0)
        return -1;
    json_t *annots = json_object_get(doc, "annotations");
    if (!annots)
        json_object_set_new(doc, "annotations", annots = json_array());
    return cli_kv_set(annots, "feed", json_string(cli_name_full(&f, ffull, cap))) < 0
               ? cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory")
               : 0;
}

/* --json of a trigger set up with a feed: both documents. */
static void done_with_feed(struct cli_ctx *x, const char *verb, const char *name,
                           const json_t *trigger, const json_t *feed)
{
    json_t *both = x->json ? json_pack("{s:O?, s:O?}", "trigger", trigger, "feed", feed) : NULL;
    cli_ctx_done(x, both, "%s trigger %s", verb, cli_bold(name));
    json_decref(both);
}

static int trigger_create(struct cli_ctx *x, const struct cli_name *n)
{
    const char *feed = cli_str(&x->a, OPT_FEED);
    char ffull[600] = "", e[600];
    struct cli_resp tr = {0}, fr = {0};
    bool given;
    json_t *doc = json_object();
    json_t *params = feed ? cli_ctx_kv(x, OPT_PARAM, OPT_PARAM_FILE, &given) : NULL;
    int rc = doc && (params || !feed) ? trigger_doc(x, feed, doc, ffull, sizeof ffull) : -1;
    cli_name_entity(n, e, sizeof e);
    if (rc == 0)
        rc = put_raw(x, "triggers", n, doc, false, "trigger", &tr);
    if (rc == 0 && feed && (rc = run_feed(x, ffull, n, "CREATE", params, &fr)) < 0) {
        cli_err_prefix(&x->err, "Unable to create trigger '%s': ", e);
        struct cli_resp dr;
        struct cli_err ignored = {0}; /* the trigger goes; the feed's error is the one to show */
        if (cli_entity_delete(x->cl, "triggers", n, &dr, &ignored) < 0)
            ignored.exit_code = 0;
        cli_resp_fini(&dr);
    }
    if (rc == 0 && feed && !x->json) {
        const char *id = wjson_str(fr.json, "activationId");
        cli_ok("invoked %s with id %s", ffull, cli_bold(id ? id : fr.activation_id));
        cli_print_json(stdout, fr.json);
    }
    if (rc == 0)
        done_with_feed(x, "created", e, tr.json, feed ? fr.json : NULL);
    cli_resp_fini(&tr);
    cli_resp_fini(&fr);
    json_decref(params);
    json_decref(doc);
    return rc;
}

int cli_trigger_create(struct cli_ctx *x)
{
    struct cli_name n;
    return cli_ctx_name(x, cli_pos(x, 0), &n) < 0 ? -1 : trigger_create(x, &n);
}

/* The trigger as it is; *missing when it does not exist. */
static int trigger_now(struct cli_ctx *x, const struct cli_name *n, struct cli_resp *r,
                       bool *missing)
{
    struct cli_client *cl;
    char e[600];
    *r = (struct cli_resp){0};
    int rc = cli_ctx_client(x, &cl);
    if (rc == 0)
        rc = cli_entity_get(cl, "triggers", n, NULL, r, &x->err);
    *missing = rc < 0 && r->status == 404;
    if (rc < 0 && !*missing)
        cli_err_prefix(&x->err, "Unable to get trigger '%s': ", cli_name_entity(n, e, sizeof e));
    return rc;
}

int cli_trigger_update(struct cli_ctx *x)
{
    struct cli_name n;
    struct cli_resp cur, fr = {0};
    bool missing, given;
    char e[600];
    if (cli_ctx_name(x, cli_pos(x, 0), &n) < 0)
        return -1;
    int rc = trigger_now(x, &n, &cur, &missing);
    const char *feed = rc == 0 ? feed_of(cur.json) : NULL;
    if (rc < 0 && missing) {
        x->err = (struct cli_err){0};
        rc = trigger_create(x, &n);
    } else if (rc == 0 && feed) { /* a feed's trigger changes through its feed */
        json_t *params = cli_ctx_kv(x, OPT_PARAM, OPT_PARAM_FILE, &given);
        rc = params ? run_feed(x, feed, &n, "UPDATE", params, &fr) : -1;
        if (rc < 0)
            cli_err_prefix(&x->err,
                           "Unable to update trigger '%s': ", cli_name_entity(&n, e, sizeof e));
        if (rc == 0 && !x->json)
            cli_print_json(stdout, fr.json);
        if (rc == 0)
            done_with_feed(x, "updated", cli_name_entity(&n, e, sizeof e), cur.json, fr.json);
        json_decref(params);
    } else if (rc == 0) {
        json_t *doc = json_object();
        rc = doc ? put_kv(x, doc, true) : -1;
        if (rc == 0)
            rc = put_entity(x, "triggers", &n, doc, true, "trigger");
        json_decref(doc);
    }
    cli_resp_fini(&cur);
    cli_resp_fini(&fr);
    return rc;
}

int cli_trigger_get(struct cli_ctx *x)
{
    return cli_verb_get(x, "triggers", "trigger");
}

/* wispd runs the feed's DELETE itself when a trigger with a "feed"
 * annotation is deleted (for deploy tools that only delete the trigger),
 * so unlike wsk the CLI does not: the feed would hear it twice. */
int cli_trigger_delete(struct cli_ctx *x)
{
    struct cli_name n;
    struct cli_resp cur;
    bool missing;
    if (cli_ctx_name(x, cli_pos(x, 0), &n) < 0)
        return -1;
    int rc = trigger_now(x, &n, &cur, &missing);
    if (missing)
        cli_err_prefix(&x->err, "Unable to get trigger '%s': ", n.name);
    if (rc == 0)
        rc = cli_verb_delete(x, "triggers", "trigger");
    cli_resp_fini(&cur);
    return rc;
}

int cli_trigger_list(struct cli_ctx *x)
{
    return verb_list(x, "triggers");
}

int cli_trigger_fire_cmd(struct cli_ctx *x)
{
    struct cli_name n;
    struct cli_client *cl;
    struct cli_resp r = {0};
    bool given;
    char shown[600];
    if (cli_ctx_name(x, cli_pos(x, 0), &n) < 0)
        return -1;
    json_t *params = cli_ctx_kv(x, OPT_PARAM, OPT_PARAM_FILE, &given);
    int rc = params ? cli_ctx_client(x, &cl) : -1;
    if (rc == 0 && (rc = cli_trigger_fire(cl, &n, params, &r, &x->err)) < 0)
        cli_err_prefix(&x->err, "Unable to fire trigger '%s': ", n.name);
    snprintf(shown, sizeof shown, "/%s/%s", n.ns, n.name);
    const char *id = wjson_str(r.json, "activationId");
    if (rc == 0 && x->json)
        cli_ctx_done(x, r.json, "%s", "");
    else if (rc == 0 && r.status == 204)
        printf("trigger %s did not fire as it is not associated with an active rule\n", shown);
    else if (rc == 0)
        cli_ok("triggered %s with id %s", shown, cli_bold(id ? id : r.activation_id));
    cli_resp_fini(&r);
    json_decref(params);
    return rc;
}

/* ==== rules ============================================================== */

static int rule_put(struct cli_ctx *x, bool update)
{
    struct cli_name n;
    char trig[600], act[600], e[600];
    if (cli_ctx_name(x, cli_pos(x, 0), &n) < 0)
        return -1;
    cli_ctx_qualify(x, cli_pos(x, 1), trig, sizeof trig);
    cli_ctx_qualify(x, cli_pos(x, 2), act, sizeof act);
    json_t *doc = json_pack("{s:s, s:s, s:s}", "name", cli_name_entity(&n, e, sizeof e), "trigger",
                            trig, "action", act);
    int rc = doc ? put_entity(x, "rules", &n, doc, update, "rule")
                 : cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory");
    json_decref(doc);
    return rc;
}

int cli_rule_create(struct cli_ctx *x)
{
    return rule_put(x, false);
}

int cli_rule_update(struct cli_ctx *x)
{
    return rule_put(x, true);
}

/* Sets rule n active or not; quiet: no "ok:" line (delete --disable). */
static int rule_state(struct cli_ctx *x, const struct cli_name *n, bool active, bool quiet)
{
    struct cli_client *cl;
    struct cli_resp r = {0};
    int rc = cli_ctx_client(x, &cl);
    if (rc == 0 && (rc = cli_rule_state(cl, n, active, &r, &x->err)) < 0)
        cli_err_prefix(&x->err, "Unable to %s rule '%s': ", active ? "enable" : "disable", n->name);
    if (rc == 0 && !quiet)
        cli_ctx_done(x, r.json, "%s rule %s", active ? "enabled" : "disabled", cli_bold(n->name));
    cli_resp_fini(&r);
    return rc;
}

int cli_rule_enable(struct cli_ctx *x)
{
    struct cli_name n;
    return cli_ctx_name(x, cli_pos(x, 0), &n) < 0 ? -1 : rule_state(x, &n, true, false);
}

int cli_rule_disable(struct cli_ctx *x)
{
    struct cli_name n;
    return cli_ctx_name(x, cli_pos(x, 0), &n) < 0 ? -1 : rule_state(x, &n, false, false);
}

int cli_rule_status(struct cli_ctx *x)
{
    struct cli_name n;
    struct cli_client *cl;
    struct cli_resp r = {0};
    int rc = cli_ctx_name(x, cli_pos(x, 0), &n);
    if (rc == 0 && (rc = cli_ctx_client(x, &cl)) == 0 &&
        (rc = cli_entity_get(cl, "rules", &n, NULL, &r, &x->err)) < 0)
        cli_err_prefix(&x->err, "Unable to get status of rule '%s': ", n.name);
    const char *st = wjson_str(r.json, "status");
    if (rc == 0)
        cli_ctx_done(x, r.json, "rule %s is %s", cli_bold(n.name), st ? st : "unknown");
    cli_resp_fini(&r);
    return rc;
}

int cli_rule_get(struct cli_ctx *x)
{
    return cli_verb_get(x, "rules", "rule");
}

int cli_rule_delete(struct cli_ctx *x)
{
    struct cli_name n;
    if (cli_ctx_name(x, cli_pos(x, 0), &n) < 0)
        return -1;
    if (cli_has(&x->a, OPT_DISABLE) && rule_state(x, &n, false, true) < 0)
        return -1;
    return cli_verb_delete(x, "rules", "rule");
}

int cli_rule_list(struct cli_ctx *x)
{
    return verb_list(x, "rules");
}

/* ==== packages =========================================================== */

static int package_put(struct cli_ctx *x, bool update)
{
    struct cli_name n;
    const char *shared = cli_str(&x->a, OPT_SHARED);
    if (cli_ctx_name(x, cli_pos(x, 0), &n) < 0)
        return -1;
    if (shared && strcasecmp(shared, "yes") && strcasecmp(shared, "no"))
        return cli_usage_fail(x, "Cannot use value '%s' for shared.", shared);
    json_t *doc = json_object();
    int rc = doc ? put_kv(x, doc, true) : cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory");
    if (rc == 0 && shared)
        json_object_set_new(doc, "publish", json_boolean(strcasecmp(shared, "yes") == 0));
    if (rc == 0)
        rc = put_entity(x, "packages", &n, doc, update, "package");
    json_decref(doc);
    return rc;
}

int cli_package_create(struct cli_ctx *x)
{
    return package_put(x, false);
}

int cli_package_update(struct cli_ctx *x)
{
    return package_put(x, true);
}

int cli_package_bind(struct cli_ctx *x)
{
    struct cli_name pkg, bind;
    if (cli_ctx_name(x, cli_pos(x, 0), &pkg) < 0 || cli_ctx_name(x, cli_pos(x, 1), &bind) < 0)
        return -1;
    json_t *doc = json_pack("{s:{s:s, s:s}}", "binding", "namespace", pkg.ns, "name", pkg.name);
    int rc = doc ? put_kv(x, doc, true) : cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory");
    struct cli_resp r = {0};
    if (rc == 0)
        rc = put_raw(x, "packages", &bind, doc, false, "binding", &r);
    if (rc == 0)
        cli_ctx_done(x, r.json, "created binding %s", cli_bold(cli_pos(x, 1)));
    cli_resp_fini(&r);
    json_decref(doc);
    return rc;
}

int cli_package_get(struct cli_ctx *x)
{
    return cli_verb_get(x, "packages", "package");
}

int cli_package_delete(struct cli_ctx *x)
{
    return cli_verb_delete(x, "packages", "package");
}

int cli_package_list(struct cli_ctx *x)
{
    return verb_list(x, "packages");
}

/* ==== namespaces ========================================================= */

int cli_namespace_list(struct cli_ctx *x)
{
    struct cli_client *cl;
    struct cli_resp r = {0};
    int rc = cli_ctx_client(x, &cl);
    if (rc == 0 && (rc = cli_http(cl, "GET", "namespaces", NULL, &r, &x->err)) == 0)
        rc = cli_resp_check(&r, &x->err);
    if (rc < 0)
        cli_err_prefix(&x->err, "Unable to obtain the list of available namespaces: ");
    if (rc == 0 && x->json)
        cli_print_json(stdout, r.json);
    else if (rc == 0)
        cli_print_list("namespaces", r.json, false);
    cli_resp_fini(&r);
    return rc;
}

/* `wisp namespace get` and `wisp list`: every kind of entity of the
 * namespace, as wsk lists them (packages, actions, triggers, rules). */
int cli_namespace_get(struct cli_ctx *x)
{
    static const char *const colls[] = {"packages", "actions", "triggers", "rules"};
    struct cli_resp r[4] = {{0}};
    struct cli_client *cl;
    struct cli_list_opts o = {.limit = 200};
    char ns[256];
    int rc = list_ns(x, ns, sizeof ns);
    if (rc == 0)
        rc = cli_ctx_client(x, &cl);
    for (size_t i = 0; rc == 0 && i < 4; i++)
        if ((rc = cli_entity_list(cl, colls[i], ns, NULL, &o, &r[i], &x->err)) < 0)
            cli_err_prefix(&x->err, "Unable to obtain the list of entities for namespace '%s': ",
                           strcmp(ns, "_") ? ns : "default");
    if (rc == 0 && x->json) {
        json_t *all = json_pack("{s:O, s:O, s:O, s:O}", colls[0], r[0].json, colls[1], r[1].json,
                                colls[2], r[2].json, colls[3], r[3].json);
        cli_print_json(stdout, all);
        json_decref(all);
    } else if (rc == 0) {
        printf("Entities in namespace: %s\n", cli_bold(strcmp(ns, "_") ? ns : "default"));
        for (size_t i = 0; i < 4; i++)
            cli_print_list(colls[i], r[i].json, cli_has(&x->a, OPT_NAME_SORT));
    }
    for (size_t i = 0; i < 4; i++)
        cli_resp_fini(&r[i]);
    return rc;
}
