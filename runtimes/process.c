/* runtimes/process.c - the process backend: a worker is a plain process
 * started with plat_spawn, its own process group, rlimits, an unprivileged
 * uid/gid when wispd runs as root, and a cgroup leaf (memory, pids) where
 * cgroups are writable (use_cgroups).
 *
 * The leaves sit in a parent group CGROUP_PREFIX + wispd's pid inside
 * wispd's own group; groups of wispd processes since gone are swept at
 * open.
 *
 * Worker uids. With one uid for every worker (worker-user), a worker could
 * read and write the directories of the others (the code of other
 * actions), signal and ptrace them, read their /proc, and use up the one
 * nproc limit they share. So, with wispd root, each worker runs as a uid
 * of its own from WORKER_UID_FIRST on (and worker-user's group), its
 * directory its own and 0700. No account may use those uids: Debian gives
 * accounts uids below 60000 and subordinate ids from 100000; one found in
 * the range anyway is skipped. Every wispd of the host draws from the same
 * range: a uid is taken by an flock on its file in UID_LOCK_DIR and held
 * while its worker lives. Whatever the worker left running under its uid
 * (a daemon in a session of its own escapes the process group kill) is
 * killed with it, and the uid goes back only once that kill is done. A
 * lock file that is not empty was held by a wispd that died: what still
 * runs as that uid is killed before the uid is used.
 *
 * Those kills are children of wispd that drop to the uid
 * (plat_kill_uid_start): the loop never waits for one. Its exit comes as
 * a SIGCHLD the pool hands to proc_reaped. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "plat.h"
#include "pool_priv.h"

#define CGROUP_PREFIX "wisp-" /* + wispd's pid: its parent group */
#define WORKER_UID_FIRST 70000u
#define WORKER_UIDS 1024u
#define UID_LOCK_DIR "/run/wisp-worker-uids"
#define UID_KILL_TRIES 2 /* kills of a uid's leftovers before it stays taken */

/* A uid of the range. */
struct uid_slot {
    int lock;       /* the flock'd lock file; -1: free; -2: an account's, never used */
    pid_t worker;   /* the worker running as it (0: none) */
    pid_t killer;   /* the child killing what runs as it (0: none) */
    bool clean;     /* that kill succeeded: nothing runs as it */
    bool unused;    /* no worker has it (released, or a dead wispd's): back once clean */
    unsigned kills; /* kills tried since it was last clean */
};

struct process_backend {
    bool drop_privs;
    uid_t uid;
    gid_t gid;
    unsigned pids_max;
    struct plat_cgroups *cgroups; /* NULL: rlimits and the pool's budget only */
    bool own_uids;                /* a uid per worker (see "Worker uids") */
    unsigned next_uid;            /* where the search for a free one starts */
    struct uid_slot uids[WORKER_UIDS];
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

/* Start-up only (the account database may be a directory service's): the
 * uids of the range some account has are never used. */
static void open_uids(struct process_backend *b)
{
    for (unsigned i = 0; i < WORKER_UIDS; i++)
        b->uids[i] = (struct uid_slot){.lock = -1};
    if (!b->drop_privs)
        return;
    if (mkdir(UID_LOCK_DIR, 0700) < 0 && errno != EEXIST) {
        wlog_warn("pool", "cannot make %s: %s; every worker runs as the worker user", UID_LOCK_DIR,
                  strerror(errno));
        return;
    }
    b->own_uids = true;
    unsigned char taken[WORKER_UIDS];
    int accounts = plat_uids_taken(WORKER_UID_FIRST, WORKER_UIDS, taken);
    if (accounts < 0) {
        wlog_warn("pool", "cannot list the accounts: %s; every worker runs as the worker user",
                  strerror(-accounts));
        b->own_uids = false;
        return;
    }
    for (unsigned i = 0; i < WORKER_UIDS; i++)
        if (taken[i])
            b->uids[i].lock = -2;
    if (accounts)
        wlog_warn("pool", "%d accounts have uids in %u..%u, which workers do not use", accounts,
                  WORKER_UID_FIRST, WORKER_UID_FIRST + WORKER_UIDS - 1);
}

/* Gives uid i back: nothing runs as it, and the empty lock file says so. */
static void uid_put(struct process_backend *b, unsigned i)
{
    if (ftruncate(b->uids[i].lock, 0) < 0)
        wlog_warn("pool", "uid %u: cannot clear its lock file: %s", WORKER_UID_FIRST + i,
                  strerror(errno));
    close(b->uids[i].lock);
    b->uids[i] = (struct uid_slot){.lock = -1};
}

/* Starts killing what runs as uid i, unless a kill of it is under way. */
static void uid_kill(struct process_backend *b, unsigned i)
{
    struct uid_slot *u = &b->uids[i];
    if (u->killer > 0)
        return;
    u->clean = false;
    u->kills++;
    pid_t pid = plat_kill_uid_start(WORKER_UID_FIRST + i);
    if (pid < 0)
        wlog_err("pool", "uid %u: cannot start the kill of what its worker left: %s",
                 WORKER_UID_FIRST + i, strerror(-pid));
    else
        u->killer = pid;
}

/* An unused uid goes back once clean; one whose kill failed is tried
 * again, and stays taken after UID_KILL_TRIES. */
static void uid_settle(struct process_backend *b, unsigned i)
{
    struct uid_slot *u = &b->uids[i];
    if (!u->unused || u->killer > 0)
        return;
    if (u->clean)
        uid_put(b, i);
    else if (u->kills < UID_KILL_TRIES)
        uid_kill(b, i);
    else
        wlog_err("pool", "uid %u stays taken: what its worker left could not be killed",
                 WORKER_UID_FIRST + i);
}

/* Takes a free uid of the range for a worker: its index, or -errno. A uid
 * a dead wispd held is cleaned in the background while the search goes
 * on. */
static int uid_take(struct process_backend *b, struct wisp_err *err)
{
    int rc = -EAGAIN;
    unsigned i = 0;
    char path[sizeof UID_LOCK_DIR + 16] = "";
    for (unsigned n = 0; n < WORKER_UIDS && rc == -EAGAIN; n++) {
        i = (b->next_uid + n) % WORKER_UIDS;
        if (b->uids[i].lock != -1)
            continue;
        snprintf(path, sizeof path, UID_LOCK_DIR "/%u", WORKER_UID_FIRST + i);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            rc = -errno;
            break;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) { /* another wispd's worker has it */
            close(fd);
            continue;
        }
        struct stat st;
        char mark[16];
        int len = snprintf(mark, sizeof mark, "%d\n", (int)getpid());
        if (fstat(fd, &st) == 0 && st.st_size > 0) { /* its last holder died holding it */
            b->uids[i] = (struct uid_slot){.lock = fd, .unused = true};
            uid_kill(b, i);
            continue;
        }
        rc = pwrite(fd, mark, (size_t)len, 0) == len ? (int)i : -errno;
        if (rc < 0)
            close(fd);
        else
            b->uids[i] = (struct uid_slot){.lock = fd};
    }
    if (rc >= 0)
        b->next_uid = (i + 1) % WORKER_UIDS; /* round robin: a uid rests between workers */
    else if (rc == -EAGAIN)
        wisp_err_set(err, rc, "all %u worker uids are in use", WORKER_UIDS);
    else
        wisp_err_set(err, rc, "cannot take uid %u for a worker (%s): %s", WORKER_UID_FIRST + i,
                     path, strerror(-rc));
    return rc;
}

static int uid_of(const struct process_backend *b, pid_t pid)
{
    for (unsigned i = 0; b->own_uids && pid > 0 && i < WORKER_UIDS; i++)
        if (b->uids[i].lock >= 0 && b->uids[i].worker == pid)
            return (int)i;
    return -1;
}

static int proc_open(const struct pool_cfg *cfg, const char *work_dir, void **self,
                     struct wisp_err *err)
{
    (void)work_dir;
    struct process_backend *b = calloc(1, sizeof *b);
    if (!b)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    b->drop_privs = cfg->drop_privs;
    b->uid = cfg->uid;
    b->gid = cfg->gid;
    b->pids_max = cfg->pids_max;
    open_uids(b);
    if (cfg->use_cgroups)
        open_cgroups(b);
    *self = b;
    return 0;
}

static void proc_close(void *self)
{
    struct process_backend *b = self;
    /* Every worker is gone; shutdown may wait. A uid is still held where a
     * kill is under way or failed: it is killed once more, and kept taken
     * (its lock file not empty) if that fails too. */
    for (unsigned i = 0; i < WORKER_UIDS; i++) {
        if (b->uids[i].lock < 0)
            continue;
        int st;
        if (b->uids[i].killer > 0)
            while (waitpid(b->uids[i].killer, &st, 0) < 0 && errno == EINTR)
                ;
        if (plat_kill_uid(WORKER_UID_FIRST + i) == 0)
            uid_put(b, i);
    }
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
    struct process_backend *cfg = self;
    int slot = -1;
    uid_t uid = cfg->uid;
    if (cfg->own_uids) {
        if ((slot = uid_take(cfg, err)) < 0)
            return slot;
        uid = WORKER_UID_FIRST + (unsigned)slot;
        if (ws->cwd && chown(ws->cwd, uid, cfg->gid) < 0) {
            int rc = wisp_err_set(err, -errno, "cannot chown %s: %s", ws->cwd, strerror(errno));
            uid_put(cfg, (unsigned)slot); /* nothing ran as it yet */
            return rc;
        }
    }
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
        if (slot >= 0)
            uid_put(cfg, (unsigned)slot);
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
        .uid = uid,
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
        /* a child that failed before its exec was reaped by plat_spawn */
        if (slot >= 0)
            uid_put(cfg, (unsigned)slot);
        return rc;
    }
    if (slot >= 0)
        cfg->uids[slot].worker = pid;
    *out = (struct worker_proc){.pid = pid, .fd_in = p[1], .fd_out = p[2], .fd_err = p[4],
                                .fd_ctl = p[6]};
    plat_strcpy(out->dir, sizeof out->dir, ws->cwd ? ws->cwd : "");
    out->cg = cg;
    return 0;
}

static void proc_kill(void *self, const struct worker_proc *wp)
{
    struct process_backend *b = self;
    plat_kill_group(wp->pid);
    int slot = uid_of(b, wp->pid);
    if (slot >= 0)
        uid_kill(b, (unsigned)slot);
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
    struct process_backend *b = self;
    /* The uid goes back once proc_kill's kill is done: while its lock is
     * held, nothing new runs as it. */
    int slot = uid_of(b, wp->pid);
    if (slot >= 0) {
        b->uids[slot].worker = 0;
        b->uids[slot].unused = true;
        uid_settle(b, (unsigned)slot);
    }
    plat_cgroup_free(&wp->cg); /* the kernel keeps it while a process is in it */
    wp->cg.n = 0;
}

/* A kill started by uid_kill ended. */
static bool proc_reaped(void *self, pid_t pid, int status)
{
    struct process_backend *b = self;
    for (unsigned i = 0; b->own_uids && i < WORKER_UIDS; i++) {
        struct uid_slot *u = &b->uids[i];
        if (u->lock < 0 || u->killer != pid)
            continue;
        u->killer = 0;
        if (plat_kill_uid_status(status) == 0) {
            u->clean = true;
            u->kills = 0;
        } else {
            wlog_err("pool", "uid %u: cannot kill what its worker left", WORKER_UID_FIRST + i);
        }
        uid_settle(b, i);
        return true;
    }
    return false;
}

const struct pool_backend_ops process_backend_ops = {
    .name = "process",
    .open = proc_open,
    .close = proc_close,
    .start = proc_start,
    .kill = proc_kill,
    .stats = proc_stats,
    .release = proc_release,
    .reaped = proc_reaped,
};
