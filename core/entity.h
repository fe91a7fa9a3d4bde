/* core/entity.h - OpenWhisk entities: names, validation, and the documents
 * stored for actions, packages, triggers and rules.
 *
 * Pure functions of their inputs (no store, no loop), so they are unit- and
 * fuzz-tested on their own. A build function takes the PUT body and, on
 * update, the stored document, and returns the document to store: update
 * merges the way OpenWhisk's controller does (fields given replace, fields
 * absent keep their stored value, the version's patch number goes up).
 * Errors: -EINVAL (400) or -E2BIG (413) with err->msg for the caller. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "wisp.h"

struct rt_kinds;

#define ENTITY_NAME_MAX 256

/* The ranges and defaults of an action's limits (the configuration's
 * action-* settings; OpenWhisk's are 100..300000 ms, default 60000;
 * 128..512 MB, default 256; logs 0..10 MB). All zero: OpenWhisk's. */
struct entity_limits {
    unsigned timeout_min_ms, timeout_max_ms, timeout_def_ms;
    unsigned memory_min_mb, memory_max_mb, memory_def_mb;
    unsigned logs_max_mb;
};
#define ENTITY_LIMITS_OPENWHISK {100, 300000, 60000, 128, 512, 256, 10}

struct entity_env {
    const struct rt_kinds *kinds;
    struct entity_limits limits;
    size_t max_code_bytes;
    size_t max_params_bytes;
    unsigned sequence_max;
    unsigned concurrency_max;
};

/* OpenWhisk's entity name rule: \A([\w]|[\w][\w@ .-]*[\w@.-]+)\z, at most
 * ENTITY_NAME_MAX bytes. 0 or -EINVAL with err set. */
int entity_name_valid(const char *name, const char *what, struct wisp_err *err) WISP_MUST_CHECK;

/* Splits an entity reference as rules and sequences give them: "/ns/name",
 * "/ns/pkg/name", "name" or "pkg/name" ("_" is caller_ns). ns gets the
 * namespace (AUTH_NS_MAX), path "name" or "pkg/name" (2*ENTITY_NAME_MAX+2). */
int entity_parse_ref(const char *ref, const char *caller_ns, char *ns, char *path,
                     struct wisp_err *err) WISP_MUST_CHECK;

/* ns_path is "ns" or "ns/pkg" (the document's namespace field). */
int entity_build_action(const struct entity_env *env, const json_t *body, const json_t *old,
                        const char *ns_path, const char *name, const char *caller_ns,
                        int64_t now_ms, json_t **out, struct wisp_err *err) WISP_MUST_CHECK;
/* binding_ref: the resolved {"namespace","name"} of the bound package when
 * the body asks for a binding (checked by the caller), else NULL. */
int entity_build_package(const struct entity_env *env, const json_t *body, const json_t *old,
                         const char *ns, const char *name, const json_t *binding_ref,
                         int64_t now_ms, json_t **out, struct wisp_err *err) WISP_MUST_CHECK;
int entity_build_trigger(const struct entity_env *env, const json_t *body, const json_t *old,
                         const char *ns, const char *name, int64_t now_ms, json_t **out,
                         struct wisp_err *err) WISP_MUST_CHECK;
/* trigger / action: resolved {"path","name"} references (the caller checks
 * that they exist). */
int entity_build_rule(const struct entity_env *env, const json_t *body, const json_t *old,
                      const char *ns, const char *name, const json_t *trigger,
                      const json_t *action, int64_t now_ms, json_t **out, struct wisp_err *err)
    WISP_MUST_CHECK;

/* The form a list shows (no code, no parameters). New reference. */
json_t *entity_brief(enum rec_kind kind, const json_t *doc);
/* A copy of an action document without exec.code (GET ?code=false). */
json_t *entity_without_code(const json_t *doc);
/* "0.0.7" -> "0.0.8" into out (32 bytes); unparsable versions restart. */
void entity_version_bump(const char *version, char out[32]);

/* Fuzz entry point: builds an action from arbitrary body bytes. */
int entity_fuzz_one(const struct entity_env *env, const uint8_t *data, size_t len);
