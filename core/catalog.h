/* core/catalog.h - the built-in catalog: the packages OpenWhisk's
 * openwhisk-catalog installs into namespace whisk.system (today `utils`:
 * echo, cat, smash, split, sort, head, date, namespace, hosturl), kept in the
 * store as ordinary published entities.
 *
 * They are real actions, written as a PUT would write them, so everything
 * the API does with a published package works on them unchanged: GET from
 * any namespace, invoke (the activation is the invoker's, as in OpenWhisk),
 * sequence components, bindings. No key owns whisk.system (auth refuses the
 * name), so nobody but wispd writes there.
 *
 * What to seed is data: RUNTIMES_DIR/catalog/catalog.json names the
 * packages, their actions and annotations; each action's code is
 * PACKAGE/NAME.js (nodejs:default, as OpenWhisk ships them) or, where no
 * nodejs kind can run, PACKAGE/NAME.py after the package's python prelude
 * (python:3). Every seeded entity carries the annotation
 * "wisp-managed": "catalog"; only entities with that mark are ever replaced
 * or removed. Start-up only: it reads files and writes the store
 * synchronously, on the loop thread, before the API listens. */
#pragma once
#include "wisp.h"

struct rt_kinds;
struct store;

#define CATALOG_NS "whisk.system"
#define CATALOG_MARK_KEY "wisp-managed"
#define CATALOG_MARK_VALUE "catalog"

struct catalog_cfg {
    const char *runtimes_dir; /* holds catalog/catalog.json and the code */
    /* resolves nodejs:default and python:default; in wispd the manifest as
     * pool_open resolved it, which offers only the kinds that run here */
    const struct rt_kinds *kinds;
};

/* What one catalog_seed did, for the log line and for tests. */
struct catalog_result {
    unsigned packages, actions; /* what the manifest names */
    unsigned written;           /* created, or replaced because they differed */
    unsigned removed;           /* marked entities the manifest no longer names */
    unsigned foreign;           /* unmarked entities in the way, left alone (logged) */
    char kind[32];              /* the kind the actions were built for */
};

/* Brings whisk.system in line with the manifest, in one store write: an
 * entity is written only when what is stored differs from what the
 * manifest gives, apart from `updated` and `version` (an update bumps the
 * version, as a PUT with overwrite does), so a restart writes nothing.
 * out may be NULL. 0, also when there is no catalog folder (nothing is
 * seeded; logged), and when neither nodejs nor python runs here (nothing
 * is written; logged); -EINVAL for a manifest or code file that cannot be used,
 * -ENOMEM, or the store's error (-ENOSPC, -EIO), with err set. */
int catalog_seed(struct store *st, const struct catalog_cfg *cfg, struct catalog_result *out,
                 struct wisp_err *err) WISP_MUST_CHECK;
