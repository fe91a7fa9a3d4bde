/* runtimes/pool_priv.h - what the pool policy (pool.c) and the worker
 * backends (process.c, container.c) share. Not on core's include path.
 *
 * A backend only starts and stops workers: it hands back a pid and the
 * parent's ends of four pipes (stdin, stdout, stderr, fd 3). Everything
 * spoken over those pipes (actionloop.c) and every decision about which
 * worker runs what (pool.c) is common to all backends. A kind names its
 * backend in the manifest ("backend": "container"; "process" when absent);
 * pool.c's backend table maps the name to the ops below, so a new backend
 * is one file and one line of that table. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pool.h"
#include "spawn.h"

/* What to run. The process backend runs program, or the interpreter with
 * its args and the launcher; the container backend runs the image's
 * entrypoint (through the shim for OpenWhisk's HTTP contract). */
struct worker_start {
    const char *program;     /* a native action: its executable (relative to cwd or absolute) */
    const char *interpreter; /* a launcher kind: "python3", "/usr/bin/node" */
    const char *interp_args; /* its options before the launcher, space-separated; NULL: none */
    const char *launcher;    /* the launcher script's absolute path */
    char *const *envp;
    const char *cwd;
    uint64_t mem_bytes;       /* the worker's memory limit */
    bool set_nice;            /* start at this nice value (a worker spawned for its action) */
    int nice;
    const char *image; /* container backend: the action's exec.image */
    const char *id;    /* a name unique among this wispd's live workers ("w12") */
    bool network;      /* container backend: share the host's network namespace */
};

struct worker_proc {
    pid_t pid;
    int fd_in, fd_out, fd_err, fd_ctl; /* parent ends, non-blocking, close-on-exec */
    char dir[PATH_MAX];                /* the worker's folder (cwd) */
    char name[48];                     /* the backend's name for it (a container id) */
    bool launching;                    /* pid is a launcher that exits once it started it */
    bool with_init; /* an image worker that acks and takes an init line, as a launcher */
    struct plat_cg cg; /* process backend: the worker's cgroup leaf (cg.n 0: none) */
    bool oom_killed;   /* container backend: seen in its cgroup when it exited */
};

struct worker_stats {
    uint64_t mem_bytes; /* memory charged to it now */
    uint64_t pids;      /* its processes and threads */
    bool oom_killed;    /* the OOM killer ended something of it */
};

struct pool_backend_ops {
    const char *name;
    /* Sets the backend up (work_dir: the pool's, absolute). 0, or -errno
     * with err saying why this backend's kinds cannot run here: the pool
     * answers their activations with that and runs everything else. */
    int (*open)(const struct pool_cfg *cfg, const char *work_dir, void **self,
                struct wisp_err *err);
    /* After every worker was killed. */
    void (*close)(void *self);
    /* Starts a worker. 0 or -errno with err: -ENOENT, -EINVAL and -ENOTSUP
     * are the action's fault (its image, say), others the system's. */
    int (*start)(void *self, const struct worker_start *ws, struct worker_proc *out,
                 struct wisp_err *err);
    /* Kills it (and everything it started); reaping is the pool's. */
    void (*kill)(void *self, const struct worker_proc *wp);
    /* Optional: stops an idle worker from running at all (the cgroup
     * freezer), and lets it run again. 0 or -errno. */
    int (*pause)(void *self, const struct worker_proc *wp);
    int (*resume)(void *self, const struct worker_proc *wp);
    /* Optional: what the worker uses now (its cgroup's counters), and
     * whether the kernel's OOM killer ended it for its memory limit; asked
     * while it runs (/metrics) and once it exited, before release(). 0, or
     * -errno when the backend cannot tell (no cgroup for it). */
    int (*stats)(void *self, const struct worker_proc *wp, struct worker_stats *out);
    /* Optional: frees what start() made for it, once it is reaped. */
    void (*release)(void *self, struct worker_proc *wp);
    /* Optional: wp->pid exited with status (killed: after kill()). true
     * when the worker lives on as wp->pid (a launcher handed over to what
     * it started); false when it is gone. */
    bool (*exited)(void *self, struct worker_proc *wp, bool killed, int status);
    /* Optional: a child of wispd that is no worker's exited with status
     * (a helper the backend started, as the process backend's kills).
     * true when it was the backend's. */
    bool (*reaped)(void *self, pid_t pid, int status);
};

extern const struct pool_backend_ops process_backend_ops;
extern const struct pool_backend_ops container_backend_ops;
