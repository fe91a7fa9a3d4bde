/* runtimes/process.c - the process backend: a worker is a plain process
 * started with plat_spawn, its own process group, rlimits, an unprivileged
 * uid/gid when wispd runs as root, and a cgroup leaf (memory, pids) where
 * cgroups are writable (use_cgroups).
 *
 * The leaves sit in a parent group CGROUP_PREFIX + wispd's pid inside
 * wispd's own group; groups of wispd processes since gone are swept at
 * open. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "plat.h"
#include "pool_priv.h"

#define CGROUP_PREFIX "wisp-" /* + wispd's pid: its parent group */

struct process_backend {
    bool drop_privs;
    uid_t uid;
    gid_t gid;
    unsigned pids_max;
    struct plat_cgroups *cgroups; /* NULL: rlimits and the pool's budget only */
};

static void open_cgroups(struct process_backend *b)
{
    char name[64];
    struct wisp_err cerr = {0};
    snprintf(name, sizeof name, CGROUP_PREFIX "%d", (int)getpid());
    if (plat_cgroups_open(name, &b->cgroups, &cerr) < 0) {
        wlog_warn("pool", "%s; workers are limited by rlimits and the memory budget only",
                  cerr.msg);
        return;
    }
    wlog_info("pool", "workers run in cgroup v%d leaves (memory, pids)",
              plat_cgroups_version(b->cgroups));
    int gone = plat_cgroups_sweep(b->cgroups, CGROUP_PREFIX);
    if (gone > 0)
        wlog_info("pool", "removed %d cgroups left by wispd processes since gone", gone);
}

static int proc_open(const struct pool_cfg *cfg, const char *work_dir, void **self,
                     struct wisp_err *err)
{
    (void)work_dir;
    struct process_backend *b = calloc(1, sizeof *b);
    if (!b)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    *b = (struct process_backend){cfg->drop_privs, cfg->uid, cfg->gid, cfg->pids_max, NULL};
    if (cfg->use_cgroups)
        open_cgroups(b);
    *self = b;
    return 0;
}

static void proc_close(void *self)
{
    struct process_backend *b = self;
    plat_cgroups_close(b->cgroups);
    free(b);
}

static void close4(int fds[8])
{
    for (int i = 0; i < 8; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* argv of a worker: {program}, or {interpreter, args..., launcher}; the
 * words of interp_args are cut in args (cap bytes). */
static void worker_argv(const struct worker_start *ws, char *args, size_t cap, char **argv,
                        size_t n)
{
    size_t k = 0;
    if (ws->program) {
        argv[k++] = (char *)ws->program;
    } else {
        argv[k++] = (char *)ws->interpreter;
        plat_strcpy(args, cap, ws->interp_args ? ws->interp_args : "");
        for (char *save = NULL, *t = strtok_r(args, " ", &save); t && k + 2 < n;
             t = strtok_r(NULL, " ", &save))
            argv[k++] = t;
        argv[k++] = (char *)ws->launcher;
    }
    argv[k] = NULL;
}

static int proc_start(void *self, const struct worker_start *ws, struct worker_proc *out,
                      struct wisp_err *err)
{
    const struct process_backend *cfg = self;
    struct plat_cg cg = {0};
    if (cfg->cgroups && ws->id && plat_cgroup_new(cfg->cgroups, ws->id, ws->mem_bytes, cfg->pids_max, &cg) < 0)
        cg.n = 0; /* rlimits and the budget only, as without cgroups */
    /* pipes: [0,1] stdin (parent writes 1), [2,3] stdout, [4,5] stderr,
     * [6,7] fd 3; the parent's ends are non-blocking. */
    int p[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    int rc;
    if ((rc = plat_pipe(p, 1)) < 0 || (rc = plat_pipe(p + 2, 0)) < 0 ||
        (rc = plat_pipe(p + 4, 0)) < 0 || (rc = plat_pipe(p + 6, 0)) < 0) {
        close4(p);
        plat_cgroup_free(&cg);
        return wisp_err_set(err, rc, "pipe: %s", strerror(-rc));
    }
    char args[64], *argv[8] = {0};
    worker_argv(ws, args, sizeof args, argv, WISP_ARRAY_LEN(argv));
    struct plat_spawn_opts o = {
        .path = argv[0],
        .argv = argv,
        .envp = ws->envp,
        .cwd = ws->cwd,
        .fds = {p[0], p[3], p[5], p[7]},
        .drop_privs = cfg->drop_privs,
        .uid = cfg->uid,
        .gid = cfg->gid,
        .rl = {.nofile = 1024, .nproc = 1024, .no_core = true},
        .cg = cg.n ? &cg : NULL,
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
        plat_cgroup_free(&cg);
        return rc;
    }
    *out = (struct worker_proc){.pid = pid, .fd_in = p[1], .fd_out = p[2], .fd_err = p[4],
                                .fd_ctl = p[6]};
    plat_strcpy(out->dir, sizeof out->dir, ws->cwd ? ws->cwd : "");
    out->cg = cg;
    return 0;
}

static void proc_kill(void *self, const struct worker_proc *wp)
{
    (void)self;
    plat_kill_group(wp->pid);
}

static int proc_stats(void *self, const struct worker_proc *wp, struct worker_stats *out)
{
    (void)self;
    struct plat_cg_stats cs;
    int rc = plat_cgroup_stats(&wp->cg, &cs); /* no leaf: -ENOENT */
    *out = (struct worker_stats){cs.mem_bytes, cs.pids, cs.oom_kills > 0};
    return rc;
}

static void proc_release(void *self, struct worker_proc *wp)
{
    (void)self;
    plat_cgroup_free(&wp->cg); /* the kernel keeps it while a process is in it */
    wp->cg.n = 0;
}

const struct pool_backend_ops process_backend_ops = {
    .name = "process",
    .open = proc_open,
    .close = proc_close,
    .start = proc_start,
    .kill = proc_kill,
    .stats = proc_stats,
    .release = proc_release,
};
