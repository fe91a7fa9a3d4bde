/* runtimes/process.c - the process backend: a worker is a plain process
 * started with plat_spawn, its own process group, rlimits, an unprivileged
 * uid/gid when wispd runs as root, and a cgroup leaf when the pool has
 * cgroups. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plat.h"
#include "pool_priv.h"

struct process_backend {
    bool drop_privs;
    uid_t uid;
    gid_t gid;
};

static int proc_open(const struct pool_cfg *cfg, const char *work_dir, void **self,
                     struct wisp_err *err)
{
    (void)work_dir;
    struct process_backend *b = calloc(1, sizeof *b);
    if (!b)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    *b = (struct process_backend){cfg->drop_privs, cfg->uid, cfg->gid};
    *self = b;
    return 0;
}

static void proc_close(void *self)
{
    free(self);
}

static void close4(int fds[8])
{
    for (int i = 0; i < 8; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static int proc_start(void *self, const struct worker_start *ws, struct worker_proc *out,
                      struct wisp_err *err)
{
    const struct process_backend *cfg = self;
    /* pipes: [0,1] stdin (parent writes 1), [2,3] stdout, [4,5] stderr,
     * [6,7] fd 3; the parent's ends are non-blocking. */
    int p[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    int rc;
    if ((rc = plat_pipe(p, 1)) < 0 || (rc = plat_pipe(p + 2, 0)) < 0 ||
        (rc = plat_pipe(p + 4, 0)) < 0 || (rc = plat_pipe(p + 6, 0)) < 0) {
        close4(p);
        return wisp_err_set(err, rc, "pipe: %s", strerror(-rc));
    }
    struct plat_spawn_opts o = {
        .path = ws->path,
        .argv = ws->argv,
        .envp = ws->envp,
        .cwd = ws->cwd,
        .fds = {p[0], p[3], p[5], p[7]},
        .drop_privs = cfg->drop_privs,
        .uid = cfg->uid,
        .gid = cfg->gid,
        .rl = {.nofile = 1024, .nproc = 1024, .no_core = true},
        .cg = ws->cg,
        .set_nice = ws->set_nice,
        .nice = ws->nice,
    };
    pid_t pid;
    rc = plat_spawn(&o, &pid, err);
    close(p[0]);
    close(p[3]);
    close(p[5]);
    close(p[7]);
    if (rc < 0) {
        close(p[1]);
        close(p[2]);
        close(p[4]);
        close(p[6]);
        return rc;
    }
    *out = (struct worker_proc){.pid = pid, .fd_in = p[1], .fd_out = p[2], .fd_err = p[4],
                                .fd_ctl = p[6]};
    plat_strcpy(out->dir, sizeof out->dir, ws->cwd ? ws->cwd : "");
    return 0;
}

static void proc_kill(void *self, const struct worker_proc *wp)
{
    (void)self;
    plat_kill_group(wp->pid);
}

const struct pool_backend_ops process_backend_ops = {
    .name = "process",
    .open = proc_open,
    .close = proc_close,
    .start = proc_start,
    .kill = proc_kill,
};
