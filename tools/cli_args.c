/* tools/cli_args.c - the flag table and the one parser every verb uses.
 *
 * Flags follow wsk's (cobra's) conventions: long --flag VALUE or
 * --flag=VALUE, short -f VALUE, switches bundled (-br), flags anywhere
 * among the positional arguments, "--" ends them. A value is taken as it
 * comes, so `-p n -5` gives n the value -5. Short letters mean different
 * flags for different verbs (-l is --limit for lists, --last for
 * activation get, --logsize for action create), which is why lookups go
 * through the verb's own list. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cmd.h"

#define KV "KEY VALUE"
const struct cli_opt cli_opts[OPT__COUNT] = {
    [OPT_HELP] = {"help", 'h', ARG_NONE, NULL, "help for this command"},
    [OPT_APIHOST] = {"apihost", 0, ARG_ONE, "HOST", "whisk API HOST (http:// or https://)"},
    [OPT_APIVERSION] = {"apiversion", 0, ARG_ONE, "VERSION", "whisk API VERSION"},
    [OPT_AUTH] = {"auth", 'u', ARG_ONE, "KEY", "authorization KEY (UUID:SECRET)"},
    [OPT_CERT] = {"cert", 0, ARG_ONE, "FILE", "client certificate FILE (PEM)"},
    [OPT_KEY] = {"key", 0, ARG_ONE, "FILE", "client key FILE (PEM)"},
    [OPT_CACERT] = {"cacert", 0, ARG_ONE, "FILE", "CA certificates FILE (PEM) to trust"},
    [OPT_INSECURE] = {"insecure", 'i', ARG_NONE, NULL, "bypass certificate checking"},
    [OPT_JSON] = {"json", 0, ARG_NONE, NULL, "print the server's JSON documents, for scripts"},
    [OPT_VERBOSE] = {"verbose", 'v', ARG_NONE, NULL, "show requests and answers (on stderr)"},
    [OPT_DEBUG] = {"debug", 'd', ARG_NONE, NULL, "as --verbose"},
    [OPT_PARAM] = {"param", 'p', ARG_PAIR, KV, "parameter values in KEY VALUE format"},
    [OPT_PARAM_FILE] = {"param-file", 'P', ARG_ONE, "FILE",
                        "FILE containing parameter values in JSON format"},
    [OPT_ANNOT] = {"annotation", 'a', ARG_PAIR, KV, "annotation values in KEY VALUE format"},
    [OPT_ANNOT_FILE] = {"annotation-file", 'A', ARG_ONE, "FILE",
                        "FILE containing annotation values in JSON format"},
    [OPT_KIND] = {"kind", 0, ARG_ONE, "KIND", "the KIND of the action runtime (python:3, ...)"},
    [OPT_MAIN] = {"main", 0, ARG_ONE, "NAME", "the name of the action entry point"},
    [OPT_DOCKER] = {"docker", 0, ARG_ONE, "IMAGE", "run the action in container IMAGE"},
    [OPT_SEQUENCE] = {"sequence", 0, ARG_NONE, NULL,
                      "treat ACTION as comma separated sequence of actions to invoke"},
    [OPT_WEB] = {"web", 0, ARG_ONE, "true|false|raw", "treat ACTION as a web action"},
    [OPT_WEB_SECURE] = {"web-secure", 0, ARG_ONE, "SECRET",
                        "secure the web action: true, false, or any string"},
    [OPT_TIMEOUT] = {"timeout", 't', ARG_INT, "LIMIT", "the timeout LIMIT in milliseconds"},
    [OPT_MEMORY] = {"memory", 'm', ARG_INT, "LIMIT", "the maximum memory LIMIT in MB"},
    [OPT_LOGSIZE] = {"logsize", 'l', ARG_INT, "LIMIT", "the maximum log size LIMIT in MB"},
    [OPT_CONCURRENCY] = {"concurrency", 'c', ARG_INT, "LIMIT",
                         "the maximum concurrent activations LIMIT per worker"},
    [OPT_DEL_ANNOT] = {"del-annotation", 0, ARG_ONE, "KEY", "annotation KEY to delete"},
    [OPT_BLOCKING] = {"blocking", 'b', ARG_NONE, NULL, "blocking invoke"},
    [OPT_RESULT] = {"result", 'r', ARG_NONE, NULL,
                    "blocking invoke; show only activation result (unless there is a failure)"},
    [OPT_SUMMARY] = {"summary", 's', ARG_NONE, NULL, "summarize the entity's details"},
    [OPT_URL] = {"url", 'r', ARG_NONE, NULL, "get action url"},
    [OPT_SAVE] = {"save", 0, ARG_NONE, NULL, "save action code to a file named after it"},
    [OPT_SAVE_AS] = {"save-as", 0, ARG_ONE, "FILE", "save action code to FILE"},
    [OPT_LIMIT] = {"limit", 'l', ARG_INT, "LIMIT", "only return LIMIT entities (at most 200)"},
    [OPT_SKIP] = {"skip", 's', ARG_INT, "SKIP", "exclude the first SKIP entities"},
    [OPT_NAME_SORT] = {"name-sort", 'n', ARG_NONE, NULL, "sort the list by entity name"},
    [OPT_FEED] = {"feed", 'f', ARG_ONE, "ACTION_NAME", "trigger feed ACTION_NAME"},
    [OPT_SHARED] = {"shared", 0, ARG_ONE, "yes|no", "package visibility"},
    [OPT_DISABLE] = {"disable", 0, ARG_NONE, NULL, "disable the rule before deleting it"},
    [OPT_SINCE] = {"since", 0, ARG_INT, "SINCE", "activations later than SINCE (ms since 1970)"},
    [OPT_UPTO] = {"upto", 0, ARG_INT, "UPTO", "activations earlier than UPTO (ms since 1970)"},
    [OPT_FULL] = {"full", 'f', ARG_NONE, NULL, "include full activation description"},
    [OPT_LAST] = {"last", 'l', ARG_NONE, NULL, "the last activation"},
    [OPT_LOGS] = {"logs", 'g', ARG_NONE, NULL, "emit only the logs, stripped of time stamps"},
    [OPT_STRIP] = {"strip", 'r', ARG_NONE, NULL, "strip timestamp and stream information"},
    [OPT_EXIT] = {"exit", 'e', ARG_INT, "SECONDS", "stop polling after SECONDS seconds"},
    [OPT_SINCE_SECONDS] = {"since-seconds", 0, ARG_INT, "SECONDS", "start SECONDS ago"},
    [OPT_SINCE_MINUTES] = {"since-minutes", 0, ARG_INT, "MINUTES", "start MINUTES ago"},
    [OPT_SINCE_HOURS] = {"since-hours", 0, ARG_INT, "HOURS", "start HOURS ago"},
    [OPT_SINCE_DAYS] = {"since-days", 0, ARG_INT, "DAYS", "start DAYS ago"},
    [OPT_NAMESPACE] = {"namespace", 0, ARG_ONE, "NAMESPACE", "whisk NAMESPACE"},
    [OPT_P_AUTH] = {"auth", 0, ARG_NONE, NULL, "authorization key"},
    [OPT_P_APIHOST] = {"apihost", 0, ARG_NONE, NULL, "whisk API host"},
    [OPT_P_APIVERSION] = {"apiversion", 0, ARG_NONE, NULL, "whisk API version"},
    [OPT_P_NAMESPACE] = {"namespace", 0, ARG_NONE, NULL, "whisk namespace"},
    [OPT_P_CERT] = {"cert", 0, ARG_NONE, NULL, "client cert"},
    [OPT_P_KEY] = {"key", 0, ARG_NONE, NULL, "client key"},
    [OPT_P_CACERT] = {"cacert", 0, ARG_NONE, NULL, "CA cert"},
    [OPT_P_CLIVERSION] = {"cliversion", 0, ARG_NONE, NULL, "whisk CLI version"},
    [OPT_P_APIBUILD] = {"apibuild", 0, ARG_NONE, NULL, "whisk API build version"},
    [OPT_P_APIBUILDNO] = {"apibuildno", 0, ARG_NONE, NULL, "whisk API build number"},
    [OPT_P_ALL] = {"all", 0, ARG_NONE, NULL, "all properties"},
    [OPT_MANIFEST] = {"manifest", 'm', ARG_ONE, "FILE", "the manifest FILE (manifest.yaml)"},
    [OPT_DEPLOYMENT] = {"deployment", 'd', ARG_ONE, "FILE",
                        "the deployment FILE overriding inputs"},
    [OPT_DRY_RUN] = {"dry-run", 0, ARG_NONE, NULL, "show what would change, write nothing"},
};

bool cli_verb_takes(const struct cli_verb *v, int id)
{
    if (id <= OPT_GLOBAL_END)
        return true;
    for (const short *o = v->opts; o && *o >= 0; o++)
        if (*o == id)
            return true;
    return false;
}

/* The flag v means by --name (n bytes) or -c; the verb's own first. */
static int find_opt(const struct cli_verb *v, const char *name, size_t n, char c)
{
    for (int pass = 0; pass < 2; pass++)
        for (int id = 0; id < OPT__COUNT; id++) {
            const struct cli_opt *o = &cli_opts[id];
            if ((pass == 0) == (id <= OPT_GLOBAL_END) || !cli_verb_takes(v, id))
                continue;
            if (name ? strlen(o->lng) == n && strncmp(o->lng, name, n) == 0 : o->shrt == c)
                return id;
        }
    return -1;
}

/* Takes the values of flag id; *i moves past the ones consumed. */
static int take_values(int id, const char *inline_v, int argc, char **argv, int *i,
                       struct cli_args *a, struct cli_err *err)
{
    const struct cli_opt *o = &cli_opts[id];
    int need = o->arg == ARG_NONE ? 0 : o->arg == ARG_PAIR ? 2 : 1;
    if (a->nocc >= a->cap) /* bundled switches: -bbbb... */
        return cli_fail(err, CLI_EXIT_USAGE, "too many flags");
    struct cli_occ *occ = &a->occ[a->nocc++];
    *occ = (struct cli_occ){.id = (short)id, .num = 1};
    for (int k = 0; k < need; k++) {
        if (k == 0 && inline_v) {
            occ->v[0] = inline_v;
        } else if (*i + 1 < argc) {
            occ->v[k] = argv[++*i];
        } else {
            return cli_fail(err, CLI_EXIT_USAGE, "flag needs %s: --%s",
                            need == 2 ? "two arguments (KEY VALUE)" : "an argument", o->lng);
        }
    }
    if (o->arg == ARG_NONE && inline_v) { /* --flag=true|false */
        if (strcmp(inline_v, "true") && strcmp(inline_v, "false"))
            return cli_fail(err, CLI_EXIT_USAGE, "invalid argument \"%s\" for \"--%s\" flag",
                            inline_v, o->lng);
        occ->num = strcmp(inline_v, "true") == 0;
    }
    if (o->arg == ARG_INT) {
        char *end;
        errno = 0;
        occ->num = strtoll(occ->v[0], &end, 10);
        if (errno || end == occ->v[0] || *end)
            return cli_fail(err, CLI_EXIT_USAGE, "invalid argument \"%s\" for \"--%s\" flag",
                            occ->v[0], o->lng);
    }
    return 0;
}

/* One "--name[=value]" or "-abc" word at argv[*i]. */
static int parse_flag(const struct cli_verb *v, int argc, char **argv, int *i, struct cli_args *a,
                      struct cli_err *err)
{
    const char *w = argv[*i];
    if (w[1] == '-') {
        const char *name = w + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        int id = find_opt(v, name, n, 0);
        if (id < 0)
            return cli_fail(err, CLI_EXIT_USAGE, "unknown flag: --%.*s", (int)n, name);
        return take_values(id, eq ? eq + 1 : NULL, argc, argv, i, a, err);
    }
    for (const char *c = w + 1; *c; c++) {
        int id = find_opt(v, NULL, 0, *c);
        if (id < 0)
            return cli_fail(err, CLI_EXIT_USAGE, "unknown shorthand flag: '%c' in %s", *c, w);
        bool has_arg = cli_opts[id].arg != ARG_NONE;
        /* -l5: the rest of the word is the value */
        if (take_values(id, has_arg && c[1] ? c + 1 : NULL, argc, argv, i, a, err) < 0)
            return -1;
        if (has_arg)
            break;
    }
    return 0;
}

int cli_args_parse(const struct cli_verb *v, int argc, char **argv, struct cli_args *a,
                   struct cli_err *err)
{
    *a = (struct cli_args){0};
    a->cap = (size_t)argc + 1;
    a->pos = calloc(a->cap, sizeof *a->pos);
    a->occ = calloc(a->cap, sizeof *a->occ);
    if (!a->pos || !a->occ)
        return cli_fail(err, CLI_EXIT_GENERAL, "out of memory");
    bool flags_done = false;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (!flags_done && strcmp(w, "--") == 0) {
            flags_done = true;
        } else if (!flags_done && w[0] == '-' && w[1]) {
            if (parse_flag(v, argc, argv, &i, a, err) < 0)
                return -1;
        } else {
            a->pos[a->npos++] = w;
        }
    }
    return 0;
}

int cli_global_words(const char *w)
{
    if (w[0] != '-' || !w[1] || strcmp(w, "--") == 0)
        return 0;
    if (w[1] == '-') {
        const char *name = w + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        for (int id = 0; id <= OPT_GLOBAL_END; id++)
            if (strlen(cli_opts[id].lng) == n && strncmp(cli_opts[id].lng, name, n) == 0)
                return cli_opts[id].arg != ARG_NONE && !eq ? 2 : 1;
        return 0;
    }
    for (const char *c = w + 1; *c; c++) {
        int id = 0;
        while (id <= OPT_GLOBAL_END && cli_opts[id].shrt != *c)
            id++;
        if (id > OPT_GLOBAL_END)
            return 0;
        if (cli_opts[id].arg != ARG_NONE)
            return c[1] ? 1 : 2;
    }
    return 1;
}

void cli_args_fini(struct cli_args *a)
{
    free(a->pos);
    free(a->occ);
    *a = (struct cli_args){0};
}

static const struct cli_occ *last(const struct cli_args *a, int id)
{
    for (size_t i = a->nocc; i-- > 0;)
        if (a->occ[i].id == id)
            return &a->occ[i];
    return NULL;
}

bool cli_has(const struct cli_args *a, int id)
{
    const struct cli_occ *o = last(a, id);
    return o && (cli_opts[id].arg != ARG_NONE || o->num);
}

const char *cli_str(const struct cli_args *a, int id)
{
    const struct cli_occ *o = last(a, id);
    return o ? o->v[0] : NULL;
}

long long cli_num(const struct cli_args *a, int id, long long def)
{
    const struct cli_occ *o = last(a, id);
    return o ? o->num : def;
}

/* ==== help =============================================================== */

static void flag_line(FILE *f, int id)
{
    const struct cli_opt *o = &cli_opts[id];
    char head[80];
    if (o->shrt)
        snprintf(head, sizeof head, "-%c, --%s %s", o->shrt, o->lng, o->meta ? o->meta : "");
    else
        snprintf(head, sizeof head, "    --%s %s", o->lng, o->meta ? o->meta : "");
    fprintf(f, "  %-36s %s\n", head, o->help);
}

void cli_verb_help(FILE *f, const struct cli_verb *v, bool full)
{
    fprintf(f, "usage: wisp %s%s%s%s%s [flags]\n", v->noun, v->verb ? " " : "",
            v->verb ? v->verb : "", v->args[0] ? " " : "", v->args);
    if (!full)
        return;
    fprintf(f, "\n%s\n", v->help);
    if (v->opts && v->opts[0] >= 0) {
        fprintf(f, "\nflags:\n");
        for (const short *o = v->opts; *o >= 0; o++)
            flag_line(f, *o);
    }
    fprintf(f, "\nglobal flags:\n");
    for (int id = 0; id <= OPT_GLOBAL_END; id++)
        if (find_opt(v, cli_opts[id].lng, strlen(cli_opts[id].lng), 0) == id)
            flag_line(f, id);
}
