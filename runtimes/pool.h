/* runtimes/pool.h - the runtimes' public face to core: the kind manifest
 * and the pool of pre-warmed workers.
 *
 * The manifest (runtimes/kinds.json) says which exec.kind values exist, what
 * each needs in exec (code, an image, or components), how `family:default`
 * resolves, and which launcher and interpreter run a kind. A kind may be
 * named by its interpreter's version ("nodejs:{major}"): which one is known
 * only once the manifest is resolved against this machine, at start-up
 * (rt_kinds_resolve, which pool_open calls); from then on the manifest
 * offers only the kinds that can run here.
 *
 * The pool runs activations on workers that speak OpenWhisk's actionloop
 * protocol (one JSON line in on stdin, one JSON line out on fd 3, logs on
 * stdout/stderr). core/invoke calls pool_run() and gets exactly one callback;
 * it never learns which worker, or which backend, served it. Loop thread
 * only. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wisp.h"

struct event_base;

enum rt_needs {
    RT_NEEDS_CODE,       /* exec.code (text, or base64 zip with binary) */
    RT_NEEDS_IMAGE,      /* exec.image (container image) */
    RT_NEEDS_COMPONENTS, /* exec.components (a sequence) */
};

struct rt_kind {
    const char *kind;   /* "python:3" */
    const char *family; /* "python" */
    bool is_default;    /* the family's default */
    const char *interpreter, *launcher; /* NULL for native, blackbox, sequence */
    const char *args;   /* interpreter flags before the launcher, space-separated, or NULL */
    const char *backend; /* what runs its workers: "process" (the default) or "container" */
    enum rt_needs needs;
};

struct rt_kinds;

/* Loads a manifest file. 0 or -errno with err set (file:problem). Not yet
 * resolved: see rt_kinds_resolve. */
int rt_kinds_load(const char *path, struct rt_kinds **out, struct wisp_err *err) WISP_MUST_CHECK;
/* Parses a manifest held in memory (also the fuzz entry point). Pure: it
 * runs nothing. Until rt_kinds_resolve, every kind is offered except those
 * named by their interpreter's version. */
int rt_kinds_parse(const char *text, size_t len, const char *origin, struct rt_kinds **out,
                   struct wisp_err *err) WISP_MUST_CHECK;
void rt_kinds_free(struct rt_kinds *k);

/* Asks whether interpreter (a path) runs here: 0 with the first line of what
 * `interpreter --version` printed in version (NUL-terminated, at most cap -
 * 1 bytes); -ENOEXEC when it ran and failed (what it printed in version);
 * else -errno (-ENOENT, -EACCES, -ETIMEDOUT). */
typedef int rt_probe_fn(void *ctx, const char *interpreter, char *version, size_t cap);
/* Whom rt_probe_interpreter runs the interpreter as: the workers' user. */
struct rt_probe_user {
    bool drop_privs;
    uid_t uid;
    gid_t gid;
};
/* The real probe (ctx: a const struct rt_probe_user *, or NULL for wispd's
 * own user): runs `interpreter --version` and waits for it, at most 10 s.
 * It blocks: start-up only. */
int rt_probe_interpreter(void *ctx, const char *interpreter, char *version, size_t cap);
/* Resolves k against this machine, once (later calls return 0 and change
 * nothing): applies interpreters ("kind=/path,...": a kind by its name, a
 * version of a versioned kind, an alias or family:default; "" or NULL for
 * none) over the manifest's interpreters, asks probe about each distinct
 * interpreter, names each versioned kind after its interpreter's major
 * version, and from then on offers only the kinds whose interpreter ran
 * (kinds without one, native, blackbox and sequence, always). The others
 * are logged with the reason and kept for rt_kind_unavailable. 0, or -errno
 * with err: -EINVAL for a bad interpreters spec or a versioned kind that
 * resolves to a name the manifest lists too, -ENOMEM. */
int rt_kinds_resolve(struct rt_kinds *k, const char *interpreters, rt_probe_fn *probe, void *ctx,
                     struct wisp_err *err) WISP_MUST_CHECK;

/* The offered kind for `name`, as a new action may name it: its name, an
 * alias of it ("nodejs") or "family:default"; NULL when no offered kind has
 * that name (unknown, or not runnable here). Borrowed until rt_kinds_free. */
const struct rt_kind *rt_kind_find(const struct rt_kinds *k, const char *name);
/* The offered kind a stored action of kind `name` runs on: rt_kind_find's,
 * else, for any version of a versioned family ("nodejs:20" stored while
 * node 20 ran here), the version that runs here now. NULL when none does. */
const struct rt_kind *rt_kind_for_stored(const struct rt_kinds *k, const char *name);
/* Why `name`, a kind of the manifest (or a version, alias or default of
 * one), is not offered here ("/usr/bin/node cannot run here: No such file
 * or directory"); NULL when it is offered or the manifest does not know it. */
const char *rt_kind_unavailable(const struct rt_kinds *k, const char *name);
/* The offered kinds, in manifest order (what GET /api/v1 lists). */
size_t rt_kinds_count(const struct rt_kinds *k);
const struct rt_kind *rt_kind_at(const struct rt_kinds *k, size_t i); /* NULL past the end */

/* ==== worker pool ===================================================== */

struct pool;

struct pool_cfg {
    struct rt_kinds *kinds;    /* pool_open resolves it (rt_kinds_resolve with interpreters,
                                * run as the workers' user) unless that was done already */
    const char *runtimes_dir;  /* launcher paths in the manifest are relative to it */
    const char *libexec_dir;   /* compiled helpers: wisp-unzip-exec (zipped native actions) */
    const char *work_dir;      /* per-worker directories (cwd, native code) */
    const char *interpreters;  /* "kind=/path,..." overriding the manifest; may be "" */
    const char *prewarm;       /* stem cells per kind: "python:3=1,nodejs:default=1"; may be
                                * "". A version not installed here prewarms the one that is;
                                * a kind that cannot run here is skipped (logged). */
    uint64_t memory_budget_mb; /* the sum of reserved limits.memory never exceeds it */
    unsigned stem_memory_mb;   /* what a stem cell reserves before it knows its action */
    unsigned idle_evict_s;     /* warm workers idle this long are stopped */
    unsigned stem_reclaim_s;   /* a stem cell that does not fit may replace a warm
                                * worker idle this long (0: never) */
    unsigned queue_max;        /* activations waiting for capacity */
    unsigned pause_ms;         /* an idle worker whose backend can is paused after this; 0 never */
    unsigned pids_max;         /* per worker, with cgroups */
    bool use_cgroups;
    bool cpu_by_memory; /* a worker's CPU weight follows its limits.memory (OpenWhisk's
                         * cpu-shares); false: every worker weighs as much as wispd */
    const char *data_dir;    /* the container images (runtimes/image.h) */
    const char *oci_runtime; /* runc (the default), crun, or a path; NULL/"": runc */
    bool drop_privs; /* run workers as uid/gid (wispd running as root) */
    uid_t uid;
    gid_t gid;
};

/* core's view of one action version. Strings are borrowed for the call;
 * code is a JSON string the pool keeps a reference to while it needs it. */
struct pool_action {
    const char *key;  /* warm-reuse identity: changes when the action changes */
    const char *kind; /* the action's exec.kind as stored (rt_kind_for_stored runs it) */
    const char *name; /* "/ns/[pkg/]name", for init and logs */
    json_t *code;
    bool binary;
    const char *main;  /* entry point or NULL */
    const char *image; /* exec.image (kinds that need one), else NULL */
    bool network;      /* a container action annotated "network": true: the host's network */
    unsigned memory_mb, timeout_ms, concurrency;
    size_t log_limit_bytes, result_limit_bytes;
};

/* One activation as core hands it over; runtimes/actionloop.c writes it as
 * the run line (core never formats protocol text). Borrowed for the call. */
struct pool_msg {
    const json_t *value;       /* the parameters */
    size_t value_max;          /* pool_run refuses a larger value: -EMSGSIZE (0: no bound) */
    const char *namespace;     /* the caller's */
    const char *action_name;   /* "/ns/[pkg/]name" */
    const char *activation_id; /* also the transaction id */
    const char *api_host;      /* __OW_API_HOST */
    const char *api_key;       /* NULL unless the action is annotated provide-api-key */
    int64_t deadline_ms;       /* wall clock (ms since the epoch) */
};

enum pool_status {
    POOL_OK,           /* result holds the action's answer (any JSON value) */
    POOL_TIMEOUT,      /* killed at its time limit */
    POOL_OOM,          /* killed by its memory limit */
    POOL_CRASHED,      /* exited or closed its pipes before answering */
    POOL_BAD_RESULT,   /* not one JSON line, or larger than allowed */
    POOL_INIT_FAILED,  /* the code did not load */
    POOL_FLOOD,        /* wrote far past its log limit */
    POOL_SYSTEM_ERROR, /* no worker could be started */
};

struct pool_result {
    enum pool_status status;
    json_t *result;    /* POOL_OK: the parsed answer (borrowed) */
    size_t result_bytes; /* POOL_OK: the answer's size as the action wrote it */
    const char *error; /* otherwise: the message for the activation record */
    json_t *logs;      /* array of "<time> stdout: <line>" strings (borrowed) */
    int64_t wait_ms;   /* queued before a worker took it */
    int64_t init_ms;   /* >= 0 when this run paid a start or an init; else -1 */
};
typedef void pool_done_fn(void *arg, const struct pool_result *r);

/* 0, or -errno with err. Stem cells start from the loop shortly after. */
int pool_open(struct event_base *base, const struct pool_cfg *cfg, struct pool **out,
              struct wisp_err *err) WISP_MUST_CHECK;
/* Kills every worker and fails queued and running activations with
 * POOL_SYSTEM_ERROR before it returns. NULL is a no-op. */
void pool_close(struct pool *p);

/* Runs one activation of a with m (written out before pool_run returns).
 * done(arg, result) runs exactly once, from the loop, never inside pool_run.
 * 0; -EAGAIN when the wait queue is full; -E2BIG when the action's memory
 * exceeds the whole budget; -ENOTSUP for a kind no backend here runs;
 * -EMSGSIZE for a value over m->value_max; -EINVAL for a value that is not
 * JSON text; -ENOMEM. */
int pool_run(struct pool *p, const struct pool_action *a, const struct pool_msg *m,
             pool_done_fn *done, void *arg) WISP_MUST_CHECK;

struct pool_backend_stats {
    const char *name; /* "process", "container" */
    unsigned workers; /* live ones */
    uint64_t mem_bytes; /* memory their cgroups hold now (0 without cgroups) */
};

struct pool_stats {
    unsigned workers, idle, stem_cells, queued;
    uint64_t reserved_mb, budget_mb;
    uint64_t cold_starts, stem_inits, warm_runs, evictions, kills;
    uint64_t pauses, resumes; /* idle containers frozen, and thawed for a run */
    struct pool_backend_stats backends[4];
    unsigned nbackends;
};
void pool_get_stats(const struct pool *p, struct pool_stats *out);
