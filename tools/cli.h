/* tools/cli.h - the client side of the `wisp` CLI as a small library
 * (wisp_cli): the wsk configuration (~/.wskprops), one HTTP client for
 * the OpenWhisk REST API (libcurl), entity helpers and wsk-style output.
 * The verbs of tools/cli_*.c are built on it, and so is manifest deploy.
 *
 * A command line tool, not the daemon: everything here is synchronous and
 * single-threaded, and blocking on the network is the point.
 *
 * Errors: fallible functions return 0, or -1 with a struct cli_err filled
 * in: a message for a human and the code the process should exit with.
 * The codes are wsk's (openwhisk-client-go whisk/wskerror.go, client.go):
 * 2 for usage (bad flags, missing files, no key configured), 3 when the
 * server cannot be reached, HTTP status - 256 for an error the server
 * answered (404 -> 148, 409 -> 153, 400 -> 144, 502 -> 246), 202 for a
 * blocking invoke still running, 1 for everything else.
 *
 * Ownership: strings passed in are borrowed for the call. json_t results
 * are new references the caller decrefs; json_t arguments are borrowed
 * unless a function says it steals them. A struct cli_resp owns its body
 * until cli_resp_fini(). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "wisp.h"

/* ==== errors ============================================================ */

enum {
    CLI_EXIT_GENERAL = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_NETWORK = 3,
    CLI_EXIT_TIMED_OUT = 202,
};

struct cli_err {
    int exit_code; /* what the process ends with; never 0 once set */
    int status;    /* the HTTP status of a server's answer, else 0 */
    char code[64]; /* the server's "code" (its request id), else "" */
    char msg[1024];
};

/* Sets err (exit_code, msg; status and code cleared) and returns -1, so
 * callers can write `return cli_fail(err, CLI_EXIT_USAGE, "...")`. */
int cli_fail(struct cli_err *err, int exit_code, const char *fmt, ...) WISP_PRINTF(3, 4);
/* Puts context in front of err->msg: "Unable to get action 'x': " + msg. */
void cli_err_prefix(struct cli_err *err, const char *fmt, ...) WISP_PRINTF(2, 3);

/* ==== configuration: the wsk properties file ============================ */

/* The properties file as lines, so writing it back keeps what wsk or a
 * person put there: comments, order and keys Wisp does not use
 * (APIGW_ACCESS_TOKEN, APIGW_TENANT_ID, ...). Lines are KEY=VALUE; '#'
 * starts a comment, blanks around key and value are ignored (wsk's
 * ReadProps). */
struct cli_props {
    char path[4096];
    char **lines;
    size_t nlines;
};

/* $WSK_CONFIG_FILE when set (even to a file that does not exist, as wsk),
 * else $HOME/.wskprops. */
int cli_props_path(char *out, size_t cap, struct cli_err *err) WISP_MUST_CHECK;
/* Reads path; a file that does not exist reads as empty. */
int cli_props_load(struct cli_props *p, const char *path, struct cli_err *err) WISP_MUST_CHECK;
/* The value of key, or NULL; borrowed until the next cli_props_get(). */
const char *cli_props_get(const struct cli_props *p, const char *key);
/* Sets key (replacing its line, else appending one); value NULL removes
 * every line of key. 0, or -1 when out of memory. */
int cli_props_set(struct cli_props *p, const char *key, const char *value) WISP_MUST_CHECK;
/* Writes the file back atomically, mode 0600 (it holds the key). */
int cli_props_save(const struct cli_props *p, struct cli_err *err) WISP_MUST_CHECK;
void cli_props_fini(struct cli_props *p);

/* What a command runs with, after every layer. */
struct cli_conf {
    char props_path[4096];
    char apihost[512]; /* as given: "http://127.0.0.1:3233", or a bare host (https) */
    char auth[512];    /* UUID:KEY */
    char ns[256];      /* default namespace, "_" unless set */
    char apiversion[32];
    char cacert[4096], cert[4096], key[4096];
    bool insecure, verbose;
};
/* Command-line values; NULL or false where not given. */
struct cli_overrides {
    const char *apihost, *auth, *apiversion, *cacert, *cert, *key;
    bool insecure, verbose;
};
/* Layers, lowest first, as wsk: defaults (namespace "_", API version v1),
 * the properties file, WHISK_AUTH / WHISK_APIHOST / WHISK_NAMESPACE /
 * WHISK_APIVERSION, then the flags. */
int cli_conf_load(struct cli_conf *c, const struct cli_overrides *o,
                  struct cli_err *err) WISP_MUST_CHECK;

/* ==== the HTTP client ==================================================== */

struct cli_client; /* one libcurl handle, reused for every call */

struct cli_resp {
    long status;
    json_t *json; /* the body parsed, NULL when empty or not JSON */
    char *body;   /* raw, NUL-terminated ("" when empty) */
    size_t len;
    char activation_id[64]; /* the x-openwhisk-activation-id header */
};

/* Whether host can be an API host: "http://...", "https://..." or a bare
 * host[:port] (https). A usage error otherwise. */
int cli_apihost_check(const char *host, struct cli_err *err) WISP_MUST_CHECK;
/* Checks that c names an API host and a key (usage errors otherwise) and
 * sets up TLS from it: --cacert (PEM bundle), --insecure, --cert/--key. */
int cli_client_open(const struct cli_conf *c, struct cli_client **out,
                    struct cli_err *err) WISP_MUST_CHECK;
void cli_client_close(struct cli_client *cl); /* NULL: no-op */
/* method path, path relative to APIHOST/api/VERSION/ and escaped (the
 * cli_entity_* helpers build it), body JSON or NULL. 0 once the server
 * answered anything: look at out->status. -1 (exit 3) when it could not
 * be reached. out is filled either way; release it with cli_resp_fini(). */
int cli_http(struct cli_client *cl, const char *method, const char *path, const json_t *body,
             struct cli_resp *out, struct cli_err *err) WISP_MUST_CHECK;
void cli_resp_fini(struct cli_resp *r);
/* 0 for a 2xx answer. Else -1 with the server's "error (code CODE)", or
 * wsk's words for a body that is not an error document, and exit code
 * status - 256. */
int cli_resp_check(const struct cli_resp *r, struct cli_err *err) WISP_MUST_CHECK;

/* ==== names ============================================================== */

/* A qualified name as wsk reads one: "/ns/pkg/name", "/ns/name", "/ns",
 * "pkg/name" or "name"; without a leading '/' the namespace is the
 * default one. */
struct cli_name {
    char ns[256];
    char pkg[256];  /* "" outside a package */
    char name[256]; /* "" for "/ns" alone */
};
int cli_name_parse(const char *s, const char *default_ns, struct cli_name *n,
                   struct cli_err *err) WISP_MUST_CHECK;
/* "pkg/name" or "name", into buf; returns buf. */
const char *cli_name_entity(const struct cli_name *n, char *buf, size_t cap);
/* "/ns/pkg/name" or "/ns/name", into buf; returns buf. */
const char *cli_name_full(const struct cli_name *n, char *buf, size_t cap);

/* ==== entities =========================================================== */

/* Collections are "actions", "packages", "triggers", "rules". Every helper
 * fills out with the answer and returns 0 for 2xx, else -1 with err set as
 * cli_resp_check() does (or for the network, as cli_http()). */
int cli_entity_put(struct cli_client *cl, const char *coll, const struct cli_name *n,
                   const json_t *doc, bool overwrite, struct cli_resp *out,
                   struct cli_err *err) WISP_MUST_CHECK;
/* query: "code=false" and the like, or NULL. */
int cli_entity_get(struct cli_client *cl, const char *coll, const struct cli_name *n,
                   const char *query, struct cli_resp *out, struct cli_err *err) WISP_MUST_CHECK;
int cli_entity_delete(struct cli_client *cl, const char *coll, const struct cli_name *n,
                      struct cli_resp *out, struct cli_err *err) WISP_MUST_CHECK;

struct cli_list_opts {
    int limit, skip;       /* limit 0: the server's default */
    long long since, upto; /* activations, ms since the epoch; 0: unset */
    const char *name;      /* activations of this entity only */
    bool docs;             /* activations: whole records */
};
/* GET namespaces/NS/COLL (pkg: the actions of package pkg); coll may also
 * be "activations". out->json is the array. */
int cli_entity_list(struct cli_client *cl, const char *coll, const char *ns, const char *pkg,
                    const struct cli_list_opts *o, struct cli_resp *out,
                    struct cli_err *err) WISP_MUST_CHECK;
/* POST actions/NAME?blocking=&result= with params (an object, or NULL for
 * {}). A 502 (the action failed) is -1 too, with out holding the record. */
int cli_action_invoke(struct cli_client *cl, const struct cli_name *n, const json_t *params,
                      bool blocking, bool result, struct cli_resp *out,
                      struct cli_err *err) WISP_MUST_CHECK;
/* POST triggers/NAME: 202 with an activation id, or 204 (no active rule). */
int cli_trigger_fire(struct cli_client *cl, const struct cli_name *n, const json_t *params,
                     struct cli_resp *out, struct cli_err *err) WISP_MUST_CHECK;
int cli_rule_state(struct cli_client *cl, const struct cli_name *n, bool active,
                   struct cli_resp *out, struct cli_err *err) WISP_MUST_CHECK;

/* GET activations/ID, or its "logs" or "result" (part). */
int cli_activation_fetch(struct cli_client *cl, const char *ns, const char *id, const char *part,
                         struct cli_resp *out, struct cli_err *err) WISP_MUST_CHECK;

/* ==== documents ========================================================== */

/* Sets key in a [{"key": k, "value": v}] array, replacing an entry of the
 * same key; steals value. 0, or -1 when out of memory. */
int cli_kv_set(json_t *arr, const char *key, json_t *value) WISP_MUST_CHECK;
/* Removes key's entries. */
void cli_kv_del(json_t *arr, const char *key);
/* An object {"k": v, ...} as a new key/value array (object order). */
json_t *cli_kv_from_object(const json_t *obj);
/* wsk's reading of a -p/-a VALUE: JSON when it parses as JSON, else the
 * text as a string. New reference (NULL when out of memory). */
json_t *cli_value(const char *text);
/* A file holding one JSON object (-P, -A). */
json_t *cli_json_file(const char *path, struct cli_err *err);

/* Builds "exec" for code in a file: .js is nodejs:default, .py
 * python:default, an ELF executable or a script with '#!' and the execute
 * bit native, and kind (when not NULL) overrides all of them; a .zip
 * needs kind, as in wsk. Binary code (a zip, an ELF, anything that is not
 * UTF-8 text) goes as base64 with "binary": true. main and image (a
 * blackbox image: kind "blackbox", the file optional, path NULL) are
 * added when not NULL. */
struct cli_exec_opts {
    const char *kind, *main, *image;
};
json_t *cli_exec_from_file(const char *path, const struct cli_exec_opts *o, struct cli_err *err);

/* ==== output ============================================================= */

/* Colour "ok:" and names as wsk does, only on a terminal (and not under
 * NO_COLOR). Call once before printing. */
void cli_out_init(void);
/* "ok: " + the message + newline, on stdout. */
void cli_ok(const char *fmt, ...) WISP_PRINTF(1, 2);
/* A name in bold on a terminal; the string itself otherwise. Valid until
 * the next call. */
const char *cli_bold(const char *s);
/* JSON as wsk prints it: indented by four spaces, and a newline. */
void cli_print_json(FILE *f, const json_t *j);
/* One compact line (for streams of records, --json of activation poll). */
void cli_print_json_line(FILE *f, const json_t *j);
/* The error as wsk shows it, "error: MSG" on stderr; with as_json an
 * object {"error", "code", "status", "exitCode"} instead. */
void cli_print_error(const struct cli_err *err, bool as_json);
/* A list as `wsk COLL list` prints it: a header ("actions", "packages",
 * "triggers", "rules", "namespaces") and a row per item, in the server's
 * order or, with by_name, sorted by name. */
void cli_print_list(const char *coll, const json_t *items, bool by_name);
/* `wsk activation list`'s table. */
void cli_print_activations(const json_t *items);
/* `wsk ENTITY get --summary`: what an entity takes and says. */
void cli_print_summary(const char *kind, const json_t *doc);
