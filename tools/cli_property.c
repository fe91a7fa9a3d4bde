/* tools/cli_property.c - `wisp property set|get|unset`, wsk's commands on
 * the properties file, with wsk's messages.
 *
 * One row per property: its key in the file, the flag that sets it, the
 * switch that picks it for get and unset, and the words wsk prints. set
 * writes the file once, after every value was checked (an API host that
 * is not a URL, a namespace the key does not have), so a refused set
 * changes nothing. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli_cmd.h"
#include "wisp_config.h"

static const struct prop {
    const char *key, *json; /* in the file; in --json output */
    int set_flag, sw;       /* property set's flag; get's and unset's switch */
    const char *label, *tabs;
    const char *set_msg; /* followed by the value when it ends in "to " */
    const char *unset_msg;
    size_t conf_off;
} props[] = {
    {"CERT", "cert", OPT_CERT, OPT_P_CERT, "client cert", "\t\t",
     "client cert set. Run 'wisp property get --cert' to see the new value.", "client cert unset.",
     offsetof(struct cli_conf, cert)},
    {"KEY", "key", OPT_KEY, OPT_P_KEY, "Client key", "\t\t",
     "client key set. Run 'wisp property get --key' to see the new value.", "client key unset.",
     offsetof(struct cli_conf, key)},
    {"CACERT", "cacert", OPT_CACERT, OPT_P_CACERT, "CA certificate", "\t\t",
     "CA cert set. Run 'wisp property get --cacert' to see the new value.", "CA cert unset.",
     offsetof(struct cli_conf, cacert)},
    {"AUTH", "auth", OPT_AUTH, OPT_P_AUTH, "whisk auth", "\t\t",
     "whisk auth set. Run 'wisp property get --auth' to see the new value.", "whisk auth unset.",
     offsetof(struct cli_conf, auth)},
    {"APIHOST", "apihost", OPT_APIHOST, OPT_P_APIHOST, "whisk API host", "\t\t",
     "whisk API host set to ", "whisk API host unset.", offsetof(struct cli_conf, apihost)},
    {"APIVERSION", "apiversion", OPT_APIVERSION, OPT_P_APIVERSION, "whisk API version", "\t",
     "whisk API version set to ", "whisk API version unset; the default value of v1 will be used.",
     offsetof(struct cli_conf, apiversion)},
    {"NAMESPACE", "namespace", OPT_NAMESPACE, OPT_P_NAMESPACE, "whisk namespace", "\t\t",
     "whisk namespace set to ", "whisk namespace unset; the default value of _ will be used.",
     offsetof(struct cli_conf, ns)},
};

/* The file as an object, for --json. */
static json_t *props_json(const struct cli_props *p)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < WISP_ARRAY_LEN(props); i++) {
        const char *v = cli_props_get(p, props[i].key);
        if (v)
            json_object_set_new(o, props[i].key, json_string(v));
    }
    return o;
}

/* wsk refuses a namespace the key does not have. */
static int check_namespace(struct cli_ctx *x, const char *ns)
{
    struct cli_client *cl;
    struct cli_resp r = {0};
    int rc = cli_ctx_client(x, &cl);
    if (rc == 0 && (rc = cli_http(cl, "GET", "namespaces", NULL, &r, &x->err)) == 0)
        rc = cli_resp_check(&r, &x->err);
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(r.json, i, e) found |=
        json_is_string(e) && strcmp(json_string_value(e), ns) == 0;
    cli_resp_fini(&r);
    if (rc < 0) {
        cli_err_prefix(&x->err,
                       "Authenticated user does not have namespace '%s'; set command "
                       "failed: ",
                       ns);
        return -1;
    }
    if (!found)
        return cli_fail(&x->err, CLI_EXIT_GENERAL,
                        "Namespace '%s' is not in the list of entitled namespaces", ns);
    return 0;
}

static int check_value(struct cli_ctx *x, const struct prop *p, const char *v)
{
    if (p->set_flag == OPT_APIHOST && cli_apihost_check(v, &x->err) < 0) {
        cli_err_prefix(&x->err,
                       "Unable to set API host value; the API host value '%s' is "
                       "invalid: ",
                       v);
        return -1;
    }
    if (p->set_flag == OPT_NAMESPACE)
        return check_namespace(x, v);
    return 0;
}

int cli_property_set(struct cli_ctx *x)
{
    struct cli_props p;
    if (cli_props_load(&p, x->conf.props_path, &x->err) < 0)
        return -1;
    char msgs[4096] = "";
    size_t len = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < WISP_ARRAY_LEN(props); i++) {
        const char *v = cli_str(&x->a, props[i].set_flag);
        if (!v)
            continue;
        if ((rc = check_value(x, &props[i], v)) == 0 && cli_props_set(&p, props[i].key, v) < 0)
            rc = cli_fail(&x->err, CLI_EXIT_GENERAL, "out of memory");
        const char *m = props[i].set_msg;
        bool with_value = m[strlen(m) - 1] == ' ';
        len += (size_t)snprintf(msgs + len, sizeof msgs - len, "%s%s\n", m,
                                with_value ? cli_bold(v) : "");
    }
    if (rc == 0 && len == 0)
        rc = cli_usage_fail(x, "Set at least one of --apihost, --auth, --namespace, "
                               "--apiversion, --cacert, --cert, --key.");
    if (rc == 0)
        rc = cli_props_save(&p, &x->err);
    for (const char *m = msgs; rc == 0 && !x->json && *m;) {
        const char *nl = strchr(m, '\n');
        cli_ok("%.*s", (int)(nl - m), m);
        m = nl + 1;
    }
    if (rc == 0 && x->json) {
        json_t *o = props_json(&p);
        cli_print_json(stdout, o);
        json_decref(o);
    }
    cli_props_fini(&p);
    return rc;
}

int cli_property_unset(struct cli_ctx *x)
{
    struct cli_props p;
    if (cli_props_load(&p, x->conf.props_path, &x->err) < 0)
        return -1;
    int rc = 0, n = 0;
    for (size_t i = 0; rc == 0 && i < WISP_ARRAY_LEN(props); i++)
        if (cli_has(&x->a, props[i].sw)) {
            rc = cli_props_set(&p, props[i].key, NULL);
            n++;
        }
    if (rc == 0 && n == 0)
        rc = cli_usage_fail(x, "Unset at least one of --apihost, --auth, --namespace, "
                               "--apiversion, --cacert, --cert, --key.");
    if (rc == 0)
        rc = cli_props_save(&p, &x->err);
    for (size_t i = 0; rc == 0 && !x->json && i < WISP_ARRAY_LEN(props); i++)
        if (cli_has(&x->a, props[i].sw))
            cli_ok("%s", props[i].unset_msg);
    if (rc == 0 && x->json) {
        json_t *o = props_json(&p);
        cli_print_json(stdout, o);
        json_decref(o);
    }
    cli_props_fini(&p);
    return rc;
}

/* The server's build and build number (GET /api/v1), "Unknown" when it
 * cannot be asked; -1 then, with x->err set. */
static int api_build(struct cli_ctx *x, char *build, char *buildno, size_t cap)
{
    snprintf(build, cap, "Unknown");
    snprintf(buildno, cap, "Unknown");
    struct cli_client *cl;
    struct cli_resp r = {0};
    int rc = cli_ctx_client(x, &cl);
    if (rc == 0 && (rc = cli_http(cl, "GET", "", NULL, &r, &x->err)) == 0)
        rc = cli_resp_check(&r, &x->err);
    const char *b = json_string_value(json_object_get(r.json, "build"));
    const char *bn = json_string_value(json_object_get(r.json, "buildno"));
    if (rc == 0) {
        snprintf(build, cap, "%s", b ? b : "Unknown");
        snprintf(buildno, cap, "%s", bn ? bn : "Unknown");
    }
    cli_resp_fini(&r);
    if (rc < 0)
        cli_err_prefix(&x->err, "Unable to obtain API build information: ");
    return rc;
}

static void show(struct cli_ctx *x, json_t *o, const char *label, const char *tabs, const char *key,
                 const char *v)
{
    if (x->json)
        json_object_set_new(o, key, json_string(v));
    else
        printf("%s%s%s\n", label, tabs, cli_bold(v));
}

int cli_property_get(struct cli_ctx *x)
{
    static const int switches[] = {
        OPT_P_AUTH,   OPT_P_APIHOST,    OPT_P_APIVERSION, OPT_P_NAMESPACE,  OPT_P_CERT, OPT_P_KEY,
        OPT_P_CACERT, OPT_P_CLIVERSION, OPT_P_APIBUILD,   OPT_P_APIBUILDNO, OPT_P_ALL};
    bool all = true;
    for (size_t i = 0; i < WISP_ARRAY_LEN(switches); i++)
        all &= !cli_has(&x->a, switches[i]);
    all |= cli_has(&x->a, OPT_P_ALL);
    json_t *o = x->json ? json_object() : NULL;
    for (size_t i = 0; i < WISP_ARRAY_LEN(props); i++)
        if (all || cli_has(&x->a, props[i].sw))
            show(x, o, props[i].label, props[i].tabs, props[i].json,
                 (const char *)&x->conf + props[i].conf_off);
    if (all || cli_has(&x->a, OPT_P_CLIVERSION))
        show(x, o, "whisk CLI version", "\t", "cliversion", WISP_VERSION);
    int rc = 0;
    bool b = all || cli_has(&x->a, OPT_P_APIBUILD), bn = all || cli_has(&x->a, OPT_P_APIBUILDNO);
    if (b || bn) {
        char build[128], buildno[128];
        rc = api_build(x, build, buildno, sizeof build);
        if (b)
            show(x, o, "whisk API build", "\t\t", "apibuild", build);
        if (bn)
            show(x, o, "whisk API build number", "\t", "apibuildno", buildno);
    }
    if (o)
        cli_print_json(stdout, o);
    json_decref(o);
    return rc;
}
