/* tools/cli_cmd.h - the verbs of `wisp` (everything but admin and image):
 * the flag table, the verb table and the context a verb runs in. Private
 * to the wisp executable; what other tools may reuse is in cli.h.
 *
 * A verb is a row of the table in cli_main.c: noun, verb, the positional
 * arguments it takes, the flags it accepts, and one function. Flags are
 * parsed from the one option table in cli_args.c, so parsing, --help and
 * the bash completion cannot drift apart.
 *
 * A verb function returns 0 (done), -1 with x->err set (the dispatcher
 * prints it and exits with its code; usage errors also get the usage
 * line), or a positive exit code when it has already said everything
 * (a failed blocking invoke prints the activation, then exits 246). */
#pragma once
#include <stdio.h>

#include "cli.h"

/* Every flag any verb takes. A verb lists the ones it accepts; the global
 * ones (OPT_HELP .. OPT_DEBUG) are accepted everywhere. Where a verb's
 * flag has a global's name (`property get --auth` is a switch, the global
 * --auth takes a key) the verb's wins, as in wsk. */
enum cli_opt_id {
    OPT_HELP,
    OPT_APIHOST,
    OPT_APIVERSION,
    OPT_AUTH,
    OPT_CERT,
    OPT_KEY,
    OPT_CACERT,
    OPT_INSECURE,
    OPT_JSON,
    OPT_VERBOSE,
    OPT_DEBUG,
    OPT_GLOBAL_END = OPT_DEBUG,
    OPT_PARAM,
    OPT_PARAM_FILE,
    OPT_ANNOT,
    OPT_ANNOT_FILE,
    OPT_KIND,
    OPT_MAIN,
    OPT_DOCKER,
    OPT_SEQUENCE,
    OPT_WEB,
    OPT_WEB_SECURE,
    OPT_TIMEOUT,
    OPT_MEMORY,
    OPT_LOGSIZE,
    OPT_CONCURRENCY,
    OPT_DEL_ANNOT,
    OPT_BLOCKING,
    OPT_RESULT,
    OPT_SUMMARY,
    OPT_URL,
    OPT_SAVE,
    OPT_SAVE_AS,
    OPT_LIMIT,
    OPT_SKIP,
    OPT_NAME_SORT,
    OPT_FEED,
    OPT_SHARED,
    OPT_DISABLE,
    OPT_SINCE,
    OPT_UPTO,
    OPT_FULL,
    OPT_LAST,
    OPT_LOGS,
    OPT_STRIP,
    OPT_EXIT,
    OPT_SINCE_SECONDS,
    OPT_SINCE_MINUTES,
    OPT_SINCE_HOURS,
    OPT_SINCE_DAYS,
    OPT_NAMESPACE,
    /* the switches of property get and unset */
    OPT_P_AUTH,
    OPT_P_APIHOST,
    OPT_P_APIVERSION,
    OPT_P_NAMESPACE,
    OPT_P_CERT,
    OPT_P_KEY,
    OPT_P_CACERT,
    OPT_P_CLIVERSION,
    OPT_P_APIBUILD,
    OPT_P_APIBUILDNO,
    OPT_P_ALL,
    /* deploy, undeploy (tools/cli_deploy.c) */
    OPT_MANIFEST,
    OPT_DEPLOYMENT,
    OPT_DRY_RUN,
    OPT__COUNT
};

enum cli_opt_arg {
    ARG_NONE, /* a switch */
    ARG_ONE,  /* one value: --kind KIND, --kind=KIND */
    ARG_INT,  /* one integer */
    ARG_PAIR, /* two values: -p KEY VALUE */
};

struct cli_opt {
    const char *lng;
    char shrt; /* 0: none */
    enum cli_opt_arg arg;
    const char *meta; /* what --help shows after the flag */
    const char *help;
};
extern const struct cli_opt cli_opts[OPT__COUNT];

/* One flag as given, in command-line order (-p and -P merge in order). */
struct cli_occ {
    short id;
    const char *v[2];
    long long num;
};

struct cli_args {
    const char **pos;
    int npos;
    struct cli_occ *occ;
    size_t nocc, cap;
};

struct cli_ctx;
typedef int cli_verb_fn(struct cli_ctx *x);

struct cli_verb {
    const char *noun, *verb; /* verb NULL: the noun is the command (`wisp list`) */
    const char *args;        /* the usage line's arguments */
    const char *help;
    const char *need;  /* wsk's words when the arguments are wrong */
    int min, max;      /* positional arguments */
    const short *opts; /* accepted flags, -1 ends */
    cli_verb_fn *fn;
};
extern const struct cli_verb cli_verbs[];
extern const size_t cli_nverbs;

struct cli_ctx {
    const struct cli_verb *verb;
    struct cli_args a;
    struct cli_conf conf;
    struct cli_client *cl; /* opened by cli_ctx_client() */
    bool json;
    struct cli_err err;
};

/* ==== flags (cli_args.c) ================================================ */

/* Parses argv (after noun and verb) for v into a (arrays sized by argc,
 * freed by cli_args_fini). -1 with a usage error in err. */
int cli_args_parse(const struct cli_verb *v, int argc, char **argv, struct cli_args *a,
                   struct cli_err *err) WISP_MUST_CHECK;
void cli_args_fini(struct cli_args *a);
/* The words a global flag at w takes before the command (`wisp --json
 * action list`): 1, 2 with its value, 0 when w is not one. */
int cli_global_words(const char *w);
bool cli_has(const struct cli_args *a, int id);
/* The last value of a flag, or NULL. */
const char *cli_str(const struct cli_args *a, int id);
long long cli_num(const struct cli_args *a, int id, long long def);
/* The usage line and, with full, the flags. */
void cli_verb_help(FILE *f, const struct cli_verb *v, bool full);
/* Whether v accepts flag id (the globals always). */
bool cli_verb_takes(const struct cli_verb *v, int id);

/* ==== helpers for verbs (cli_main.c) ==================================== */

/* Positional argument i, or NULL. */
const char *cli_pos(const struct cli_ctx *x, int i);
/* The client, opened on first use. */
int cli_ctx_client(struct cli_ctx *x, struct cli_client **out) WISP_MUST_CHECK;
/* Parses a name against the default namespace (usage error when bad). */
int cli_ctx_name(struct cli_ctx *x, const char *s, struct cli_name *n) WISP_MUST_CHECK;
/* A usage error (exit 2, and the dispatcher adds the usage line). */
int cli_usage_fail(struct cli_ctx *x, const char *fmt, ...) WISP_PRINTF(2, 3);
/* -p/-P (or -a/-A) in command-line order into one object; NULL with
 * x->err set on a bad file. *given tells whether any was there. */
json_t *cli_ctx_kv(struct cli_ctx *x, int pair_id, int file_id, bool *given);
/* The outcome of a verb that changed something: --json prints doc (or
 * {}), else "ok: " and the message. */
void cli_ctx_done(struct cli_ctx *x, const json_t *doc, const char *fmt, ...) WISP_PRINTF(3, 4);
/* The outcome of a get: --json prints doc; else "ok: got KIND NAME" and
 * the JSON, or with field (FIELD_FILTER) only that member. -1 (usage)
 * when doc has no such field. */
int cli_ctx_show(struct cli_ctx *x, const char *kind, const char *name, const json_t *doc,
                 const char *field) WISP_MUST_CHECK;
/* "/" + ns + "/" + name unless name is qualified already (wsk's
 * getQualifiedName, for rule targets and sequence components). */
void cli_ctx_qualify(const struct cli_ctx *x, const char *name, char *out, size_t cap);

/* ==== the verbs ========================================================== */

/* get, delete: what every entity kind does alike (coll "triggers", kind
 * "trigger"): wsk's messages, --summary, FIELD_FILTER, --json. */
int cli_verb_get(struct cli_ctx *x, const char *coll, const char *kind);
int cli_verb_delete(struct cli_ctx *x, const char *coll, const char *kind);

cli_verb_fn cli_property_set, cli_property_get, cli_property_unset;
cli_verb_fn cli_action_create, cli_action_update, cli_action_invoke_cmd, cli_action_get,
    cli_action_delete, cli_action_list;
cli_verb_fn cli_trigger_create, cli_trigger_update, cli_trigger_get, cli_trigger_delete,
    cli_trigger_list, cli_trigger_fire_cmd;
cli_verb_fn cli_rule_create, cli_rule_update, cli_rule_enable, cli_rule_disable, cli_rule_status,
    cli_rule_get, cli_rule_delete, cli_rule_list;
cli_verb_fn cli_package_create, cli_package_update, cli_package_bind, cli_package_get,
    cli_package_delete, cli_package_list;
cli_verb_fn cli_namespace_list, cli_namespace_get;
cli_verb_fn cli_activation_list, cli_activation_get, cli_activation_logs, cli_activation_result,
    cli_activation_poll;
cli_verb_fn cli_completion_bash;
cli_verb_fn cli_deploy, cli_undeploy;

/* The whole CLI but admin and image: argv[0] is "wisp", then global
 * flags if any, the noun, the verb and its arguments. Returns the exit
 * code. */
int cli_main(int argc, char **argv);
/* The summary of every command (wisp --help). */
void cli_usage(FILE *f);
