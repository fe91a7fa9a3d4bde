/* tools/manifest.h - a wskdeploy manifest (and deployment file) read into
 * plain structs, for `wisp deploy` (tools/cli_deploy.c).
 *
 * The schema is the one wskdeploy and `aio runtime deploy` read
 * (openwhisk-wskdeploy specification): a project with packages; in each
 * package actions, sequences, triggers and rules. Triggers and rules live
 * in the namespace, not in the package, as on the server. Everything is
 * checked while reading, against the files it names (function paths), so
 * a manifest that loads is one deploy can write without surprises; what
 * only the server knows (runtimes it has) is deploy's to check.
 *
 * No network and no globals: a fuzz target can drive manifest_load() with
 * a file. Errors are "FILE:LINE: message" in a caller's buffer.
 *
 * Scalars go through $VAR / ${VAR} substitution from the environment (an
 * unset variable is ""); plain scalars that read as YAML 1.1 true/false,
 * null, integers or floats become those JSON types in inputs and
 * annotations, quoted ones stay strings. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define MF_NAME_MAX 256

struct mf_action {
    char name[MF_NAME_MAX];
    int line;
    bool sequence;
    char *function; /* path as resolved against the manifest's folder, or NULL */
    char *runtime, *main, *docker, *web; /* NULL when not given */
    json_t *inputs, *annotations;        /* objects, never NULL */
    json_t *limits;    /* the server's names: timeout, memory, logs, concurrency */
    char **components; /* a sequence's actions, qualified "pkg/name" or "/ns/..." */
    size_t ncomponents;
};

struct mf_trigger {
    char name[MF_NAME_MAX];
    int line;
    char *feed;                   /* NULL: a plain trigger */
    json_t *inputs, *annotations; /* with a feed, inputs go to the feed */
};

struct mf_rule {
    char name[MF_NAME_MAX];
    int line;
    char trigger[MF_NAME_MAX];
    char action[2 * MF_NAME_MAX]; /* "pkg/name", or "/ns/..." as written */
};

struct mf_package {
    char name[MF_NAME_MAX];
    int line;
    char *version, *license;
    json_t *inputs, *annotations;
    struct mf_action *actions; /* actions and sequences, in the file's order */
    size_t nactions;
};

struct manifest {
    char file[4096]; /* as given */
    char project[MF_NAME_MAX];
    struct mf_package *pkgs;
    size_t npkgs;
    struct mf_trigger *triggers;
    size_t ntriggers;
    struct mf_rule *rules;
    size_t nrules;
};

/* Reads and checks path. 0, or -1 with "FILE:LINE: message" in err (the
 * manifest is then empty, and manifest_fini() is still safe). */
int manifest_load(struct manifest *m, const char *path, char *err, size_t cap);
/* Lays a deployment file over m: its project, package, action and
 * trigger inputs replace the manifest's of the same names. Naming
 * anything the manifest does not have is an error. */
int manifest_deployment(struct manifest *m, const char *path, char *err, size_t cap);
void manifest_fini(struct manifest *m);

/* The action or sequence "pkg/name" of m, or NULL. */
const struct mf_action *manifest_action(const struct manifest *m, const char *qname);
