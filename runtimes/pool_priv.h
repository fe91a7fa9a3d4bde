/* runtimes/pool_priv.h - what the pool policy (pool.c) and a worker backend
 * (process.c; a container backend later) share. Not on core's include path.
 *
 * A backend only starts and stops workers: it hands back a pid and the
 * parent's ends of four pipes (stdin, stdout, stderr, fd 3). Everything
 * spoken over those pipes (actionloop.c) and every decision about which
 * worker runs what (pool.c) is common to all backends. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pool.h"
#include "spawn.h"

struct worker_start {
    const char *path;   /* program: an interpreter, or a native executable */
    char *const *argv;
    char *const *envp;
    const char *cwd;
    const struct plat_cg *cg; /* NULL: no cgroup */
    uint64_t mem_bytes;       /* the worker's memory limit (for rlimits where no cgroup) */
    bool set_nice;            /* start at this nice value (a worker spawned for its action) */
    int nice;
};

struct worker_proc {
    pid_t pid;
    int fd_in, fd_out, fd_err, fd_ctl; /* parent ends, non-blocking, close-on-exec */
};

struct pool_backend_ops {
    const char *name;
    /* Starts a worker. 0 or -errno with err. */
    int (*start)(void *self, const struct worker_start *ws, struct worker_proc *out,
                 struct wisp_err *err);
    /* Kills it (and everything it started); reaping is the pool's. */
    void (*kill)(void *self, const struct worker_proc *wp);
};

struct process_backend_cfg {
    bool drop_privs;
    uid_t uid;
    gid_t gid;
};
extern const struct pool_backend_ops process_backend_ops;
