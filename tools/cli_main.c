/* tools/cli_main.c - the verb table and the dispatcher of `wisp`'s client
 * commands, and the helpers every verb shares.
 *
 * One row per command, as wsk spells it (`wisp action create NAME FILE`);
 * the row says which positional arguments and flags the command takes,
 * and cli_main() does the rest in one order for all of them: find the
 * row, parse the flags (usage errors exit 2 with the usage line), check
 * the argument count, read the configuration, run the verb, print its
 * error. Nothing here knows what a verb does. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cmd.h"

#define OPTS(...) ((const short[]){__VA_ARGS__, -1})
#define O_KV OPT_PARAM, OPT_PARAM_FILE, OPT_ANNOT, OPT_ANNOT_FILE
#define O_EXEC OPT_KIND, OPT_MAIN, OPT_DOCKER, OPT_SEQUENCE, OPT_WEB, OPT_WEB_SECURE
#define O_LIMITS OPT_TIMEOUT, OPT_MEMORY, OPT_LOGSIZE, OPT_CONCURRENCY
#define O_LIST OPT_LIMIT, OPT_SKIP, OPT_NAME_SORT
#define O_PROPS                                                                                    \
    OPT_P_AUTH, OPT_P_APIHOST, OPT_P_APIVERSION, OPT_P_NAMESPACE, OPT_P_CERT, OPT_P_KEY,           \
        OPT_P_CACERT
#define NEED_ACTION "An action name is required."
#define NEED_TRIGGER "A trigger name is required."
#define NEED_RULE "A rule name is required."
#define NEED_PACKAGE "A package name is required."
#define NEED_ID "An activation ID is required."
#define NEED_NS "An optional namespace is the only valid argument."
#define NEED_NONE "No arguments are required."

const struct cli_verb cli_verbs[] = {
    {"action", "create", "ACTION_NAME ACTION", "create a new action",
     "An action name and code artifact are required.", 1, 2, OPTS(O_EXEC, O_LIMITS, O_KV),
     cli_action_create},
    {"action", "update", "ACTION_NAME [ACTION]",
     "update an existing action, or create an action if it does not exist",
     "An action name is required. A code artifact is optional.", 1, 2,
     OPTS(O_EXEC, O_LIMITS, O_KV, OPT_DEL_ANNOT), cli_action_update},
    {"action", "invoke", "ACTION_NAME", "invoke action", NEED_ACTION, 1, 1,
     OPTS(OPT_PARAM, OPT_PARAM_FILE, OPT_BLOCKING, OPT_RESULT), cli_action_invoke_cmd},
    {"action", "get", "ACTION_NAME [FIELD_FILTER | --summary | --url]", "get action", NEED_ACTION,
     1, 2, OPTS(OPT_SUMMARY, OPT_URL, OPT_SAVE, OPT_SAVE_AS), cli_action_get},
    {"action", "delete", "ACTION_NAME", "delete action", NEED_ACTION, 1, 1, NULL,
     cli_action_delete},
    {"action", "list", "[NAMESPACE | PACKAGE_NAME]",
     "list all actions in a namespace or actions contained in a package", NEED_NS, 0, 1,
     OPTS(O_LIST), cli_action_list},
    {"activation", "list", "[NAMESPACE or NAME]", "list activations", NEED_NS, 0, 1,
     OPTS(OPT_LIMIT, OPT_SKIP, OPT_SINCE, OPT_UPTO, OPT_FULL), cli_activation_list},
    {"activation", "get", "(ACTIVATION_ID | --last) [FIELD_FILTER]", "get activation", NEED_ID, 0,
     2, OPTS(OPT_SUMMARY, OPT_LAST, OPT_LOGS), cli_activation_get},
    {"activation", "logs", "(ACTIVATION_ID | --last)", "get the logs of an activation", NEED_ID, 0,
     1, OPTS(OPT_LAST, OPT_STRIP), cli_activation_logs},
    {"activation", "result", "(ACTIVATION_ID | --last)", "get the result of an activation", NEED_ID,
     0, 1, OPTS(OPT_LAST), cli_activation_result},
    {"activation", "poll", "[NAMESPACE | ACTION_NAME]",
     "poll continuously for log messages from currently running actions", NEED_NS, 0, 1,
     OPTS(OPT_EXIT, OPT_SINCE_SECONDS, OPT_SINCE_MINUTES, OPT_SINCE_HOURS, OPT_SINCE_DAYS),
     cli_activation_poll},
    {"completion", "bash", "",
     "print the bash completion script "
     "(source <(wisp completion bash))",
     NEED_NONE, 0, 0, NULL, cli_completion_bash},
    {"deploy", NULL, "", "deploy a wskdeploy manifest", NEED_NONE, 0, 0,
     OPTS(OPT_MANIFEST, OPT_DEPLOYMENT, OPT_PARAM, OPT_PARAM_FILE, OPT_DRY_RUN), cli_deploy},
    {"list", NULL, "[NAMESPACE]", "list entities in the current namespace", NEED_NS, 0, 1,
     OPTS(OPT_NAME_SORT), cli_namespace_get},
    {"namespace", "list", "", "list available namespaces", NEED_NONE, 0, 0, NULL,
     cli_namespace_list},
    {"namespace", "get", "[NAMESPACE]",
     "get triggers, actions, and rules in the registry for namespace", NEED_NS, 0, 1,
     OPTS(OPT_NAME_SORT), cli_namespace_get},
    {"package", "bind", "PACKAGE_NAME BOUND_PACKAGE_NAME", "bind parameters to a package",
     "A package name and binding name are required.", 2, 2, OPTS(O_KV), cli_package_bind},
    {"package", "create", "PACKAGE_NAME", "create a new package", NEED_PACKAGE, 1, 1,
     OPTS(O_KV, OPT_SHARED), cli_package_create},
    {"package", "update", "PACKAGE_NAME",
     "update an existing package, or create a package if it does not exist", NEED_PACKAGE, 1, 1,
     OPTS(O_KV, OPT_SHARED), cli_package_update},
    {"package", "get", "PACKAGE_NAME [FIELD_FILTER]", "get package", NEED_PACKAGE, 1, 2,
     OPTS(OPT_SUMMARY), cli_package_get},
    {"package", "delete", "PACKAGE_NAME", "delete package", NEED_PACKAGE, 1, 1, NULL,
     cli_package_delete},
    {"package", "list", "[NAMESPACE]", "list all packages", NEED_NS, 0, 1, OPTS(O_LIST),
     cli_package_list},
    {"property", "set", "", "set property", NEED_NONE, 0, 0, OPTS(OPT_NAMESPACE), cli_property_set},
    {"property", "get", "", "get property", NEED_NONE, 0, 0,
     OPTS(O_PROPS, OPT_P_CLIVERSION, OPT_P_APIBUILD, OPT_P_APIBUILDNO, OPT_P_ALL),
     cli_property_get},
    {"property", "unset", "", "unset property", NEED_NONE, 0, 0, OPTS(O_PROPS), cli_property_unset},
    {"rule", "create", "RULE_NAME TRIGGER_NAME ACTION_NAME", "create new rule",
     "A rule, trigger and action name are required.", 3, 3, NULL, cli_rule_create},
    {"rule", "update", "RULE_NAME TRIGGER_NAME ACTION_NAME",
     "update an existing rule, or create a rule if it does not exist",
     "A rule, trigger and action name are required.", 3, 3, NULL, cli_rule_update},
    {"rule", "enable", "RULE_NAME", "enable rule", NEED_RULE, 1, 1, NULL, cli_rule_enable},
    {"rule", "disable", "RULE_NAME", "disable rule", NEED_RULE, 1, 1, NULL, cli_rule_disable},
    {"rule", "status", "RULE_NAME", "get rule status", NEED_RULE, 1, 1, NULL, cli_rule_status},
    {"rule", "get", "RULE_NAME [FIELD_FILTER]", "get rule", NEED_RULE, 1, 2, OPTS(OPT_SUMMARY),
     cli_rule_get},
    {"rule", "delete", "RULE_NAME", "delete rule", NEED_RULE, 1, 1, OPTS(OPT_DISABLE),
     cli_rule_delete},
    {"rule", "list", "[NAMESPACE]", "list all rules", NEED_NS, 0, 1, OPTS(O_LIST), cli_rule_list},
    {"trigger", "create", "TRIGGER_NAME", "create new trigger", NEED_TRIGGER, 1, 1,
     OPTS(O_KV, OPT_FEED), cli_trigger_create},
    {"trigger", "update", "TRIGGER_NAME",
     "update an existing trigger, or create a trigger if it does not exist", NEED_TRIGGER, 1, 1,
     OPTS(O_KV), cli_trigger_update},
    {"trigger", "get", "TRIGGER_NAME [FIELD_FILTER]", "get trigger", NEED_TRIGGER, 1, 2,
     OPTS(OPT_SUMMARY), cli_trigger_get},
    {"trigger", "delete", "TRIGGER_NAME", "delete trigger", NEED_TRIGGER, 1, 1, NULL,
     cli_trigger_delete},
    {"trigger", "list", "[NAMESPACE]", "list all triggers", NEED_NS, 0, 1, OPTS(O_LIST),
     cli_trigger_list},
    {"trigger", "fire", "TRIGGER_NAME", "fire trigger event", NEED_TRIGGER, 1, 1,
     OPTS(OPT_PARAM, OPT_PARAM_FILE), cli_trigger_fire_cmd},
    {"undeploy", NULL, "", "remove what a manifest's project deployed", NEED_NONE, 0, 0,
     OPTS(OPT_MANIFEST, OPT_DRY_RUN), cli_undeploy},
};
const size_t cli_nverbs = WISP_ARRAY_LEN(cli_verbs);

static const struct {
    const char *noun, *help;
} nouns[] = {
    {"action", "work with actions"},
    {"activation", "work with activations"},
    {"completion", "shell completion"},
    {"deploy", "deploy a wskdeploy manifest (-m manifest.yaml)"},
    {"list", "list entities in the current namespace"},
    {"namespace", "work with namespaces"},
    {"package", "work with packages"},
    {"property", "work with whisk properties (~/.wskprops)"},
    {"rule", "work with rules"},
    {"trigger", "work with triggers"},
    {"undeploy", "remove what a manifest's project deployed"},
};

/* ==== help =============================================================== */

void cli_usage(FILE *f)
{
    fprintf(f, "usage: wisp COMMAND [flags]   (the wsk CLI's commands, against wispd)\n");
    for (size_t n = 0; n < WISP_ARRAY_LEN(nouns); n++) {
        char verbs[200] = "";
        size_t len = 0;
        for (size_t i = 0; i < cli_nverbs; i++)
            if (strcmp(cli_verbs[i].noun, nouns[n].noun) == 0 && cli_verbs[i].verb)
                len += (size_t)snprintf(verbs + len, sizeof verbs - len, "%s%s", len ? "|" : "",
                                        cli_verbs[i].verb);
        char head[256];
        snprintf(head, sizeof head, "%s %s", nouns[n].noun, verbs);
        fprintf(f, "  %-58s %s\n", head, nouns[n].help);
    }
    fprintf(f, "Run 'wisp COMMAND --help' for its verbs and flags. Settings come from "
               "~/.wskprops (WSK_CONFIG_FILE), --apihost, --auth, -i, --cacert.\n");
}

static void noun_help(FILE *f, const char *noun)
{
    fprintf(f, "usage: wisp %s VERB [flags]\n\nverbs:\n", noun);
    for (size_t i = 0; i < cli_nverbs; i++)
        if (strcmp(cli_verbs[i].noun, noun) == 0)
            fprintf(f, "  %-10s %s\n", cli_verbs[i].verb, cli_verbs[i].help);
    fprintf(f, "Run 'wisp %s VERB --help' for a verb's flags.\n", noun);
}

/* ==== helpers ============================================================ */

const char *cli_pos(const struct cli_ctx *x, int i)
{
    return i < x->a.npos ? x->a.pos[i] : NULL;
}

int cli_ctx_client(struct cli_ctx *x, struct cli_client **out)
{
    if (!x->cl && cli_client_open(&x->conf, &x->cl, &x->err) < 0)
        return -1;
    *out = x->cl;
    return 0;
}

int cli_ctx_name(struct cli_ctx *x, const char *s, struct cli_name *n)
{
    return cli_name_parse(s, x->conf.ns, n, &x->err);
}

int cli_usage_fail(struct cli_ctx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[sizeof x->err.msg];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cli_fail(&x->err, CLI_EXIT_USAGE, "%s", msg);
}

json_t *cli_ctx_kv(struct cli_ctx *x, int pair_id, int file_id, bool *given)
{
    json_t *obj = json_object();
    *given = false;
    for (size_t i = 0; obj && i < x->a.nocc; i++) { /* obj NULL: failed */
        const struct cli_occ *o = &x->a.occ[i];
        if (o->id != pair_id && o->id != file_id)
            continue;
        *given = true;
        json_t *add = o->id == pair_id ? cli_value(o->v[1]) : cli_json_file(o->v[0], &x->err);
        bool ok = add && (o->id == file_id ? json_object_update(obj, add) == 0
                                           : json_object_set(obj, o->v[0], add) == 0);
        if (!ok && o->id == pair_id)
            cli_usage_fail(x, "Invalid argument '%s' for --%s: not UTF-8", o->v[1],
                           cli_opts[pair_id].lng);
        json_decref(add);
        if (!ok) {
            json_decref(obj);
            obj = NULL;
        }
    }
    if (!obj && x->err.exit_code == 0)
        cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory");
    return obj;
}

void cli_ctx_done(struct cli_ctx *x, const json_t *doc, const char *fmt, ...)
{
    if (x->json) {
        json_t *empty = doc ? NULL : json_object();
        cli_print_json(stdout, doc ? doc : empty);
        json_decref(empty);
        return;
    }
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_ok("%s", msg);
}

int cli_ctx_show(struct cli_ctx *x, const char *kind, const char *name, const json_t *doc,
                 const char *field)
{
    const json_t *show = field ? json_object_get(doc, field) : doc;
    if (field && !show)
        return cli_usage_fail(x, "Invalid field filter '%s'.", field);
    if (!x->json && field)
        cli_ok("got %s %s, displaying field %s", kind, cli_bold(name), field);
    else if (!x->json)
        cli_ok("got %s %s", kind, cli_bold(name));
    cli_print_json(stdout, show);
    return 0;
}

void cli_ctx_qualify(const struct cli_ctx *x, const char *name, char *out, size_t cap)
{
    if (name[0] == '/')
        snprintf(out, cap, "%s", name);
    else
        snprintf(out, cap, "/%s/%s", x->conf.ns, name);
}

/* ==== dispatch =========================================================== */

static int check_count(struct cli_ctx *x)
{
    const struct cli_verb *v = x->verb;
    if (x->a.npos < v->min)
        return cli_usage_fail(x, "Invalid argument(s). %s", v->need);
    if (x->a.npos > v->max) {
        char extra[512] = "";
        size_t len = 0;
        for (int i = v->max; i < x->a.npos && len < sizeof extra; i++)
            len += (size_t)snprintf(extra + len, sizeof extra - len, "%s%s", len ? ", " : "",
                                    x->a.pos[i]);
        return cli_usage_fail(x, "Invalid argument(s): %s. %s", extra, v->need);
    }
    return 0;
}

static int load_conf(struct cli_ctx *x)
{
    const struct cli_args *a = &x->a;
    struct cli_overrides o = {
        .apihost = cli_str(a, OPT_APIHOST),
        .auth = cli_str(a, OPT_AUTH),
        .apiversion = cli_str(a, OPT_APIVERSION),
        .cacert = cli_str(a, OPT_CACERT),
        .cert = cli_str(a, OPT_CERT),
        .key = cli_str(a, OPT_KEY),
        .insecure = cli_has(a, OPT_INSECURE),
        .verbose = cli_has(a, OPT_VERBOSE) || cli_has(a, OPT_DEBUG),
    };
    return cli_conf_load(&x->conf, &o, &x->err);
}

/* Runs v on its words, and the global flags given before the command. */
static int run_verb(const struct cli_verb *v, int argc, char **argv, int nglob, char **glob)
{
    struct cli_ctx x = {.verb = v};
    char **words = malloc(((size_t)argc + (size_t)nglob + 1) * sizeof *words);
    if (!words) {
        fprintf(stderr, "error: out of memory\n");
        return CLI_EXIT_GENERAL;
    }
    memcpy(words, argv, (size_t)argc * sizeof *words);
    memcpy(words + argc, glob, (size_t)nglob * sizeof *words);
    int rc = cli_args_parse(v, argc + nglob, words, &x.a, &x.err);
    if (rc == 0 && cli_has(&x.a, OPT_HELP)) {
        cli_verb_help(stdout, v, true);
        cli_args_fini(&x.a);
        free(words);
        return 0;
    }
    x.json = rc == 0 && cli_has(&x.a, OPT_JSON);
    if (rc == 0)
        rc = check_count(&x);
    /* the completion script is written at build time: no settings read */
    if (rc == 0 && v->fn != cli_completion_bash)
        rc = load_conf(&x);
    if (rc == 0)
        rc = v->fn(&x);
    fflush(stdout);
    if (rc < 0) {
        cli_print_error(&x.err, x.json);
        if (x.err.exit_code == CLI_EXIT_USAGE) {
            cli_verb_help(stderr, v, false);
            fprintf(stderr, "Run 'wisp %s%s%s --help' for usage.\n", v->noun, v->verb ? " " : "",
                    v->verb ? v->verb : "");
        }
    }
    int code = rc < 0 ? x.err.exit_code : rc;
    cli_client_close(x.cl);
    cli_args_fini(&x.a);
    free(words);
    return code;
}

/* Moves the global flags before the noun and before the verb (`wisp
 * --json action -i list`) to glob; returns the index of the word after
 * them, from i. */
static int skip_globals(int argc, char **argv, int i, char **glob, int *nglob)
{
    for (int n; i < argc && strcmp(argv[i], "--help") && strcmp(argv[i], "-h") &&
                (n = cli_global_words(argv[i])) > 0;
         i += n)
        for (int k = 0; k < n && i + k < argc; k++)
            glob[(*nglob)++] = argv[i + k];
    return i;
}

static const struct cli_verb *find_verb(const char *noun, const char *verb, bool *known)
{
    *known = false;
    for (size_t i = 0; i < cli_nverbs; i++)
        if (strcmp(cli_verbs[i].noun, noun) == 0) {
            *known = true;
            if (!cli_verbs[i].verb || (verb && strcmp(cli_verbs[i].verb, verb) == 0))
                return &cli_verbs[i];
        }
    return NULL;
}

static int dispatch(int argc, char **argv, char **glob)
{
    int nglob = 0, first = skip_globals(argc, argv, 1, glob, &nglob);
    bool known;
    if (first >= argc) {
        fprintf(stderr, "error: a command is required\n");
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *noun = argv[first];
    const struct cli_verb *v = find_verb(noun, NULL, &known);
    if (!known) {
        fprintf(stderr, "error: unknown command '%s' for 'wisp'\n", noun);
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (v) /* a noun that is the command: `wisp list` */
        return run_verb(v, argc - first - 1, argv + first + 1, nglob, glob);
    int at = skip_globals(argc, argv, first + 1, glob, &nglob);
    const char *verb = at < argc ? argv[at] : NULL;
    bool help = verb && (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help"));
    if (verb && !help && (v = find_verb(noun, verb, &known)))
        return run_verb(v, argc - at - 1, argv + at + 1, nglob, glob);
    if (verb && !help && verb[0] != '-')
        fprintf(stderr, "error: unknown command '%s' for 'wisp %s'\n", verb, noun);
    else if (!help)
        fprintf(stderr, "error: a verb is required\n");
    noun_help(help ? stdout : stderr, noun);
    return help ? 0 : CLI_EXIT_USAGE;
}

int cli_main(int argc, char **argv)
{
    cli_out_init();
    char **glob = calloc((size_t)argc + 1, sizeof *glob);
    if (!glob) {
        fprintf(stderr, "error: out of memory\n");
        return CLI_EXIT_GENERAL;
    }
    int code = dispatch(argc, argv, glob);
    free(glob);
    return code;
}
