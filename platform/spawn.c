/* platform/spawn.c - see spawn.h.
 *
 * Between fork and exec the child only makes async-signal-safe calls: it
 * shares nothing with the loop but memory it does not touch. Failures are
 * sent to the parent over a close-on-exec pipe as (step, errno): EOF on
 * that pipe means exec succeeded. */
#include "spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "plat.h"
#include "wisp_config.h"

enum spawn_step { STEP_FDS = 1, STEP_CGROUP, STEP_RLIMIT, STEP_CHDIR, STEP_PRIVS, STEP_EXEC };
static const char *const step_names[] = {"", "fd setup", "cgroup join", "rlimits", "chdir",
                                         "privilege drop", "exec"};

int plat_pipe(int fds[2], int nonblock_end)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    if (nonblock_end >= 0) {
        int fl = fcntl(fds[nonblock_end], F_GETFL);
        if (fl < 0 || fcntl(fds[nonblock_end], F_SETFL, fl | O_NONBLOCK) < 0) {
            int e = errno;
            close(fds[0]);
            close(fds[1]);
            return -e;
        }
    }
    return 0;
}

void plat_kill_group(pid_t pid)
{
    if (pid > 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL); /* in case it left its group */
    }
}

pid_t plat_kill_uid_start(uid_t uid)
{
    /* kill(-1) signals every process its caller may signal, and it is
     * atomic with respect to fork: a child is either already listed, or
     * its parent's fork fails on the SIGKILL pending for it. Sent as uid,
     * it leaves nothing of uid running, not even what left its process
     * group and session (setsid, a double fork). wispd is root and must
     * not send it itself: a child of its own drops to uid first. */
    if (uid == 0)
        return -EINVAL;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        bool ok = setgroups(0, NULL) == 0 && setuid(uid) == 0 &&
                  (kill(-1, SIGKILL) == 0 || errno == ESRCH);
        _exit(ok ? 0 : 1);
    }
    return pid;
}

int plat_kill_uid_status(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPERM;
}

int plat_kill_uid(uid_t uid)
{
    pid_t pid = plat_kill_uid_start(uid);
    if (pid < 0)
        return pid;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return plat_kill_uid_status(st);
}

/* Runs ask(arg, out) in a child and copies the len bytes it fills in back
 * through a pipe; -EIO when the child died before it wrote them all. */
static int in_child(void (*ask)(const void *arg, void *out), const void *arg, void *out,
                    size_t len)
{
    int p[2];
    int rc = plat_pipe(p, -1);
    if (rc < 0)
        return rc;
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        close(p[0]);
        close(p[1]);
        return rc;
    }
    if (pid == 0) {
        close(p[0]);
        ask(arg, out);
        const char *at = out;
        for (size_t left = len; left;) {
            ssize_t n = write(p[1], at, left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                _exit(1);
            at += n;
            left -= (size_t)n;
        }
        _exit(0);
    }
    close(p[1]);
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(p[0], (char *)out + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return got == len ? 0 : -EIO;
}

struct user_found {
    int rc;
    unsigned uid, gid;
};

static void ask_user(const void *arg, void *out)
{
    struct user_found *f = out;
    errno = 0;
    struct passwd *pw = getpwnam(arg);
    *f = pw ? (struct user_found){.uid = pw->pw_uid, .gid = pw->pw_gid}
            : (struct user_found){.rc = errno ? -errno : -ENOENT};
}

int plat_user_find(const char *name, uid_t *uid, gid_t *gid)
{
    struct user_found f;
    int rc = in_child(ask_user, name, &f, sizeof f);
    if (rc == 0 && (rc = f.rc) == 0) {
        *uid = f.uid;
        *gid = f.gid;
    }
    return rc;
}

struct uid_range {
    unsigned first, n;
};

static void ask_uids(const void *arg, void *out)
{
    const struct uid_range *r = arg;
    unsigned char *taken = out;
    memset(taken, 0, r->n);
    setpwent();
    for (struct passwd *pw; (pw = getpwent());)
        if (pw->pw_uid >= r->first && pw->pw_uid - r->first < r->n)
            taken[pw->pw_uid - r->first] = 1;
    endpwent();
}

int plat_uids_taken(unsigned first, unsigned n, unsigned char *taken)
{
    if (n > 65536)
        return -EINVAL;
    struct uid_range r = {first, n};
    int rc = in_child(ask_uids, &r, taken, n);
    if (rc < 0)
        return rc;
    int count = 0;
    for (unsigned i = 0; i < n; i++)
        count += taken[i];
    return count;
}

int plat_set_subreaper(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 ? -errno : 0;
}

int plat_run_wait(char *const argv[])
{
    static char *const envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                 NULL};
    struct plat_spawn_opts o = {.path = argv[0], .argv = argv, .envp = envp, .fds = {-1, -1, -1, -1}};
    struct wisp_err err = {0};
    pid_t pid;
    int rc = plat_spawn(&o, &pid, &err);
    if (rc < 0)
        return rc;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int plat_run_capture(const struct plat_run_opts *o, char *out, size_t cap)
{
    static char *const envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", NULL};
    int p[2];
    int rc = plat_pipe(p, 0);
    if (rc < 0)
        return rc;
    struct plat_spawn_opts so = {.path = o->argv[0], .argv = o->argv, .envp = envp, .cwd = "/",
                                 .fds = {-1, p[1], p[1], -1}, .drop_privs = o->drop_privs,
                                 .uid = o->uid, .gid = o->gid};
    struct wisp_err err = {0};
    pid_t pid;
    rc = plat_spawn(&so, &pid, &err);
    close(p[1]);
    if (rc < 0) {
        close(p[0]);
        return rc;
    }
    size_t len = 0;
    bool eof = false;
    int status = 0;
    pid_t done = 0;
    int64_t deadline = plat_clock_mono_us() + (int64_t)o->timeout_ms * 1000;
    /* Its output until EOF, then its exit: a program that closes its
     * output and lingers is waited for (and killed) as one that hangs. */
    for (;;) {
        if (eof && (done = waitpid(pid, &status, WNOHANG)) != 0)
            break;
        int64_t left = deadline - plat_clock_mono_us();
        if (left <= 0)
            break;
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        int wait_ms = (int)(left / 1000) + 1;
        if (poll(eof ? NULL : &pf, eof ? 0 : 1, eof && wait_ms > 5 ? 5 : wait_ms) < 0 &&
            errno != EINTR)
            break;
        if (eof || !pf.revents)
            continue;
        char tmp[512];
        ssize_t n = read(p[0], tmp, sizeof tmp);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            eof = true;
            continue;
        }
        size_t take = cap && len < cap - 1 ? cap - 1 - len : 0;
        take = take < (size_t)n ? take : (size_t)n;
        memcpy(out + len, tmp, take);
        len += take;
    }
    close(p[0]);
    if (cap)
        out[len] = '\0';
    if (done < 0)
        return -errno; /* someone else reaped it */
    if (done == 0) { /* past the deadline: it goes now */
        plat_kill_group(pid);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        return -ETIMEDOUT;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int plat_nice_for_share(unsigned share)
{
    /* the kernel's weights for nice 0..19 (sched_prio_to_weight) */
    static const unsigned weight[20] = {1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
                                        110,  87,  70,  56,  45,  36,  29,  23,  18,  15};
    uint64_t s2 = (uint64_t)share * share;
    for (int n = 0; n < 19; n++)
        if (s2 >= (uint64_t)weight[n] * weight[n + 1]) /* nearer weight[n] than weight[n+1] */
            return n;
    return 19;
}

int plat_group_nice(pid_t pgid, int nice)
{
    if (nice < -20)
        nice = -20;
    if (nice > 19)
        nice = 19;
    return pgid > 0 && setpriority(PRIO_PGRP, (id_t)pgid, nice) < 0 ? -errno : 0;
}

static void child_fail(int errfd, enum spawn_step step, int e)
{
    int msg[2] = {(int)step, e};
    ssize_t n = write(errfd, msg, sizeof msg);
    (void)n;
    _exit(127);
}

static int write_str(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, s, strlen(s));
    int e = n < 0 ? errno : 0;
    close(fd);
    return n < 0 ? -e : 0;
}

static void set_rlimit(int errfd, int res, uint64_t v)
{
    struct rlimit r = {.rlim_cur = (rlim_t)v, .rlim_max = (rlim_t)v}, now;
    if (setrlimit(res, &r) == 0)
        return;
    /* above a hard limit an unprivileged worker cannot raise: the hard one
     * (a worker of a wispd started with fewer open files gets as many) */
    int e = errno;
    if (e == EPERM && getrlimit(res, &now) == 0 && now.rlim_max < (rlim_t)v) {
        now.rlim_cur = now.rlim_max;
        if (setrlimit(res, &now) == 0)
            return;
        e = errno;
    }
    child_fail(errfd, STEP_RLIMIT, e);
}

static void child(const struct plat_spawn_opts *o, int errfd, pid_t parent)
{
    /* Signals: libevent installed handlers in the parent; the program
     * starts with defaults and nothing blocked. */
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    setpgid(0, 0);

    /* Move the source fds above 3 first, so a source that is itself 0..3
     * is not overwritten before it is used. */
    int src[4];
    for (int i = 0; i < 4; i++) {
        src[i] = -1;
        if (o->fds[i] >= 0 && (src[i] = fcntl(o->fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
            child_fail(errfd, STEP_FDS, errno);
    }
    for (int i = 0; i < 4; i++) {
        int fd = src[i];
        if (fd < 0) {
            if (i == 3) {
                close(3);
                continue;
            }
            fd = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
            if (fd < 0)
                child_fail(errfd, STEP_FDS, errno);
        }
        if (fd != i && dup2(fd, i) < 0) /* dup2 clears close-on-exec on i */
            child_fail(errfd, STEP_FDS, errno);
    }
    /* Everything else must not reach the program, even an fd some library
     * opened without O_CLOEXEC. */
    /* (errfd stays: it is close-on-exec and reports failures until exec.) */
#ifdef SYS_close_range
    if ((errfd > 4 && syscall(SYS_close_range, 4u, (unsigned)errfd - 1, 0u) < 0) ||
        syscall(SYS_close_range, (unsigned)errfd + 1, ~0u, 0u) < 0)
#endif
        for (int fd = 4; fd < 4096; fd++)
            if (fd != errfd)
                close(fd);
    if (o->set_nice) /* a weight, not a limit: a failure leaves the inherited one */
        (void)setpriority(PRIO_PROCESS, 0, o->nice);
    if (o->cg) {
        for (int i = 0; i < o->cg->n; i++) {
            char p[PATH_MAX + 16];
            snprintf(p, sizeof p, "%s/cgroup.procs", o->cg->dirs[i]);
            int rc = write_str(p, "0");
            if (rc < 0)
                child_fail(errfd, STEP_CGROUP, -rc);
        }
    }
    if (o->rl.nofile)
        set_rlimit(errfd, RLIMIT_NOFILE, o->rl.nofile);
    if (o->rl.fsize_bytes)
        set_rlimit(errfd, RLIMIT_FSIZE, o->rl.fsize_bytes);
    if (o->rl.as_bytes)
        set_rlimit(errfd, RLIMIT_AS, o->rl.as_bytes);
    if (o->rl.no_core)
        set_rlimit(errfd, RLIMIT_CORE, 0);
    if (o->cwd && chdir(o->cwd) < 0)
        child_fail(errfd, STEP_CHDIR, errno);
    if (o->drop_privs) {
        if (setgroups(0, NULL) < 0 || setgid(o->gid) < 0)
            child_fail(errfd, STEP_PRIVS, errno);
        if (o->rl.nproc)
            set_rlimit(errfd, RLIMIT_NPROC, o->rl.nproc);
        if (setuid(o->uid) < 0)
            child_fail(errfd, STEP_PRIVS, errno);
    } else if (o->rl.nproc && getuid() != 0) {
        set_rlimit(errfd, RLIMIT_NPROC, o->rl.nproc);
    }
    /* The program dies with its parent, even one killed with SIGKILL; set
     * after the credential change, which clears it. A parent already gone
     * leaves nothing to run for. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        child_fail(errfd, STEP_PRIVS, errno);
    if (getppid() != parent)
        child_fail(errfd, STEP_EXEC, ESRCH);
    execve(o->path, o->argv, o->envp);
    child_fail(errfd, STEP_EXEC, errno);
}

int plat_spawn(const struct plat_spawn_opts *o, pid_t *pid_out, struct wisp_err *err)
{
    int ep[2];
    int rc = plat_pipe(ep, -1);
    if (rc < 0)
        return wisp_err_set(err, rc, "pipe: %s", strerror(-rc));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(ep[0]);
        close(ep[1]);
        return wisp_err_set(err, -e, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(ep[0]);
        child(o, ep[1], parent);
    }
    close(ep[1]);
    setpgid(pid, pid); /* both sides, so kill(-pid) works at once */
    int msg[2];
    ssize_t n;
    do
        n = read(ep[0], msg, sizeof msg);
    while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof msg) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        int step = msg[0] > 0 && msg[0] <= STEP_EXEC ? msg[0] : STEP_EXEC;
        return wisp_err_set(err, -msg[1], "%s of %s failed: %s", step_names[step], o->path,
                            strerror(msg[1]));
    }
    *pid_out = pid;
    return 0;
}

/* ==== cgroups ========================================================= */

struct plat_cgroups {
    int version;
    char parent[2][PATH_MAX]; /* v2: [0]; v1: memory, pids */
    int n;
};

int plat_cgroups_version(const struct plat_cgroups *c)
{
    return c->version;
}

const char *plat_cgroups_parent(const struct plat_cgroups *c, int i)
{
    return i >= 0 && i < c->n ? c->parent[i] : NULL;
}

/* Our own group in a hierarchy, from /proc/self/cgroup ("N:ctrl:/path"). */
static int own_group(const char *ctrl, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -errno;
    char line[PATH_MAX + 64];
    int rc = -ENOENT;
    while (fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = '\0';
        bool match = ctrl ? strstr(a + 1, ctrl) != NULL : b == a + 1;
        if (!match)
            continue;
        char *p = b + 1;
        p[strcspn(p, "\n")] = '\0';
        snprintf(out, cap, "%s", p);
        rc = 0;
        break;
    }
    fclose(f);
    return rc;
}

/* The lowest memory limit on our cgroup and its ancestors (v2 memory.max,
 * v1 memory.limit_in_bytes); 0 when there is none. */
static uint64_t own_memory_limit(void)
{
    bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
    char own[PATH_MAX], path[PATH_MAX + 64], buf[64];
    if (own_group(v2 ? NULL : "memory", own, sizeof own) < 0)
        return 0;
    uint64_t low = 0;
    /* own, each parent, then the root: inside a container the mount shows
     * the container's group as the root, and own is not in it */
    for (bool root = false; !root;) {
        root = !strchr(own, '/') || strcmp(own, "/") == 0;
        snprintf(path, sizeof path, "/sys/fs/cgroup%s%s/%s", v2 ? "" : "/memory",
                 root ? "" : own, v2 ? "memory.max" : "memory.limit_in_bytes");
        if (plat_read_pseudo(path, buf, sizeof buf) > 0 && buf[0] >= '0' && buf[0] <= '9') {
            uint64_t v = strtoull(buf, NULL, 10); /* "max" (v2) is no limit; v1 says ~2^63 */
            if (v > 0 && v < (1ull << 62) && (!low || v < low))
                low = v;
        }
        char *slash = strrchr(own, '/');
        if (slash)
            *slash = '\0'; /* "/a/b" -> "/a" -> "" (the root next) */
        if (!root && !own[0])
            snprintf(own, sizeof own, "/");
    }
    return low;
}

void plat_machine_read(struct plat_machine *out)
{
    *out = (struct plat_machine){0};
    char buf[4096];
    int n = plat_read_pseudo("/proc/device-tree/model", out->model, sizeof out->model);
    if (n < 0)
        out->model[0] = '\0';
    if (plat_read_pseudo("/proc/meminfo", buf, sizeof buf) > 0) {
        const char *m = strstr(buf, "MemTotal:");
        if (m)
            out->mem_bytes = strtoull(m + 9, NULL, 10) * 1024; /* "MemTotal:  1234 kB" */
    }
    uint64_t lim = own_memory_limit();
    if (lim && (!out->mem_bytes || lim < out->mem_bytes)) {
        out->mem_bytes = lim;
        out->mem_limited = true;
    }
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A directory entry named prefix + a decimal pid: that pid, else 0. */
static pid_t prefixed_pid(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0 || name[pl] < '1' || name[pl] > '9')
        return 0; /* also no leading zero: not a name %d makes */
    long v = 0;
    for (const char *q = name + pl; *q; q++) {
        if (*q < '0' || *q > '9' || v > 4194304) /* past any pid_max */
            return 0;
        v = v * 10 + (*q - '0');
    }
    return (pid_t)v;
}

/* Removes dir's subdirectories (leaves), then dir; the kernel refuses
 * any group that still holds a process. True when dir is gone. */
static bool remove_group(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    struct dirent *e;
    char sub[PATH_MAX + 256];
    while ((e = readdir(d)))
        if (e->d_type == DT_DIR && e->d_name[0] != '.') {
            int n = snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
            if (n > 0 && (size_t)n < sizeof sub)
                rmdir(sub);
        }
    closedir(d);
    return rmdir(dir) == 0;
}

/* Makes the parent group(s), with the controllers on for the leaves (v2).
 * 0 or -errno; nothing is left made on failure. */
static int make_parents(struct plat_cgroups *c)
{
    bool made[2] = {false, false};
    int rc = 0;
    for (int i = 0; i < c->n && rc == 0; i++) {
        if (mkdir(c->parent[i], 0755) == 0)
            made[i] = true;
        else if (errno != EEXIST)
            rc = -errno;
    }
    if (rc == 0 && c->version == 2) {
        char ctl[PATH_MAX + 32];
        snprintf(ctl, sizeof ctl, "%s/cgroup.subtree_control", c->parent[0]);
        if (write_str(ctl, "+memory +pids") < 0)
            rc = -EACCES;
    }
    for (int i = 0; rc < 0 && i < c->n; i++)
        if (made[i])
            rmdir(c->parent[i]);
    return rc;
}

int plat_cgroups_open(const char *name, struct plat_cgroups **out, struct wisp_err *err)
{
    struct plat_cgroups *c = calloc(1, sizeof *c);
    if (!c)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    char own[PATH_MAX];
    int rc;
    if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
        /* v2: workers go in a child of our own group; controllers must be
         * enabled in our group's subtree_control, which the kernel allows
         * only if our group holds no processes itself ("no internal
         * processes"): systemd's Delegate=yes gives such a group. */
        c->version = 2;
        if ((rc = own_group(NULL, own, sizeof own)) < 0)
            goto unsupported;
        char base[PATH_MAX + 16], ctl[PATH_MAX + 64];
        snprintf(base, sizeof base, "/sys/fs/cgroup%s", strcmp(own, "/") ? own : "");
        snprintf(ctl, sizeof ctl, "%s/cgroup.subtree_control", base);
        if (strlen(base) + strlen(name) + 2 > sizeof c->parent[0]) {
            rc = -ENAMETOOLONG;
            goto unsupported;
        }
        if (write_str(ctl, "+memory +pids") < 0) {
            rc = -EACCES;
            goto unsupported;
        }
        memcpy(c->parent[0], base, strlen(base));
        c->parent[0][strlen(base)] = '/';
        strcpy(c->parent[0] + strlen(base) + 1, name);
        c->n = 1;
    } else {
        c->version = 1;
        static const char *const ctrls[] = {"memory", "pids"};
        for (int i = 0; i < 2; i++) {
            char root[64];
            snprintf(root, sizeof root, "/sys/fs/cgroup/%s", ctrls[i]);
            if (!is_dir(root) || (rc = own_group(ctrls[i], own, sizeof own)) < 0) {
                rc = -ENOENT;
                goto unsupported;
            }
            /* Inside a container the own path may not exist in this mount
             * (the mount shows the container's group as its root). */
            char base[PATH_MAX + 64];
            snprintf(base, sizeof base, "%s%s", root, strcmp(own, "/") ? own : "");
            if (!is_dir(base))
                snprintf(base, sizeof base, "%s", root);
            if (strlen(base) + strlen(name) + 2 > sizeof c->parent[i]) {
                rc = -ENAMETOOLONG;
                goto unsupported;
            }
            size_t bl = strlen(base);
            memcpy(c->parent[i], base, bl);
            c->parent[i][bl] = '/';
            strcpy(c->parent[i] + bl + 1, name);
        }
        c->n = 2;
    }
    /* a group of our own pid is a dead daemon's whose pid we got: its
     * leaves would carry its OOM counts over to our workers */
    for (int i = 0; i < c->n; i++)
        if (is_dir(c->parent[i]))
            remove_group(c->parent[i]);
    if ((rc = make_parents(c)) < 0)
        goto unsupported;
    *out = c;
    return 0;
unsupported:
    wisp_err_set(err, -ENOTSUP, "cgroups v%d not usable here (%s)", c->version, strerror(-rc));
    free(c);
    return -ENOTSUP;
}

int plat_cgroups_sweep(const struct plat_cgroups *c, const char *prefix)
{
    int removed = 0;
    for (int i = 0; i < c->n; i++) {
        char base[PATH_MAX];
        snprintf(base, sizeof base, "%s", c->parent[i]);
        char *slash = strrchr(base, '/');
        if (!slash)
            continue;
        *slash = '\0';
        DIR *d = opendir(base);
        if (!d)
            continue;
        struct dirent *e;
        char dir[PATH_MAX + 256];
        while ((e = readdir(d))) {
            pid_t pid = prefixed_pid(e->d_name, prefix);
            if (pid <= 0 || pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH)
                continue; /* not one of ours, or its daemon lives */
            int n = snprintf(dir, sizeof dir, "%s/%s", base, e->d_name);
            if (n > 0 && (size_t)n < sizeof dir)
                removed += remove_group(dir);
        }
        closedir(d);
    }
    return removed;
}

void plat_cgroups_close(struct plat_cgroups *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        rmdir(c->parent[i]);
    free(c);
}

int plat_cgroup_new(struct plat_cgroups *c, const char *leaf, uint64_t mem_bytes,
                    unsigned pids_max, struct plat_cg *out)
{
    char val[32], p[PATH_MAX + 64];
    memset(out, 0, sizeof *out);
    for (int i = 0; i < c->n; i++) {
        size_t pl = strlen(c->parent[i]), ll = strlen(leaf);
        if (pl + ll + 2 > sizeof out->dirs[i])
            return -ENAMETOOLONG;
        memcpy(out->dirs[i], c->parent[i], pl);
        out->dirs[i][pl] = '/';
        memcpy(out->dirs[i] + pl + 1, leaf, ll + 1);
        int mk = mkdir(out->dirs[i], 0755) < 0 ? -errno : 0;
        if (mk == -ENOENT && (mk = make_parents(c)) == 0) /* the parent went: again */
            mk = mkdir(out->dirs[i], 0755) < 0 ? -errno : 0;
        if (mk < 0 && mk != -EEXIST) {
            plat_cgroup_free(out);
            return mk;
        }
        out->n = i + 1;
    }
    int rc = 0;
    snprintf(val, sizeof val, "%llu", (unsigned long long)mem_bytes);
    if (c->version == 2) {
        snprintf(p, sizeof p, "%s/memory.max", out->dirs[0]);
        if (rc == 0)
            rc = write_str(p, val);
        snprintf(p, sizeof p, "%s/memory.swap.max", out->dirs[0]);
        (void)write_str(p, "0"); /* absent without swap accounting */
        snprintf(p, sizeof p, "%s/pids.max", out->dirs[0]);
    } else {
        snprintf(p, sizeof p, "%s/memory.limit_in_bytes", out->dirs[0]);
        rc = write_str(p, val);
        snprintf(p, sizeof p, "%s/pids.max", out->dirs[1]);
    }
    snprintf(val, sizeof val, "%u", pids_max);
    if (rc == 0)
        rc = write_str(p, val);
    if (rc < 0)
        plat_cgroup_free(out);
    return rc;
}

int plat_cgroup_freeze_pid(pid_t pid, bool frozen)
{
    char p[64], line[PATH_MAX + 64], path[2 * PATH_MAX];
    snprintf(p, sizeof p, "/proc/%d/cgroup", (int)pid);
    FILE *f = fopen(p, "re");
    if (!f)
        return -errno;
    path[0] = '\0';
    bool v1 = false;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *rel = c2 + 1;
        bool has_freezer = false;
        for (const char *t = ctrls; *t;) {
            size_t l = strcspn(t, ",");
            has_freezer |= l == 7 && strncmp(t, "freezer", 7) == 0;
            t += l + (t[l] == ',');
        }
        if (has_freezer) {
            snprintf(path, sizeof path, "/sys/fs/cgroup/freezer%s/freezer.state", rel);
            v1 = true;
        } else if (!v1 && strncmp(line, "0", 1) == 0 && !*ctrls) {
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/cgroup.freeze", rel);
        }
    }
    fclose(f);
    if (!path[0] || access(path, W_OK) < 0)
        return -ENOTSUP;
    const char *v = v1 ? (frozen ? "FROZEN" : "THAWED") : (frozen ? "1" : "0");
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, v, strlen(v));
    int rc = w == (ssize_t)strlen(v) ? 0 : -errno;
    close(fd);
    return rc;
}

/* The number after "key " in a "key value" list (memory.events, oom_control). */
static uint64_t keyed_value(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *t = text; (t = strstr(t, key)) != NULL; t += kl)
        if ((t == text || t[-1] == '\n') && t[kl] == ' ')
            return strtoull(t + kl + 1, NULL, 10);
    return 0;
}

static int read_stat(const char *dir, const char *file, char *buf, size_t cap)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return plat_read_pseudo(p, buf, cap);
}

int plat_cgroup_stats(const struct plat_cg *cg, struct plat_cg_stats *out)
{
    memset(out, 0, sizeof *out);
    if (cg->n == 0)
        return -ENOENT;
    bool v2 = cg->n == 1;
    const char *mem = cg->dirs[0], *pids = cg->dirs[v2 ? 0 : 1];
    char buf[1024];
    int got = 0;
    if (read_stat(mem, v2 ? "memory.current" : "memory.usage_in_bytes", buf, sizeof buf) > 0) {
        out->mem_bytes = strtoull(buf, NULL, 10);
        got++;
    }
    if (read_stat(mem, v2 ? "memory.events" : "memory.oom_control", buf, sizeof buf) > 0) {
        out->oom_kills = keyed_value(buf, "oom_kill");
        got++;
    }
    if (read_stat(pids, "pids.current", buf, sizeof buf) > 0) {
        out->pids = strtoull(buf, NULL, 10);
        got++;
    }
    return got ? 0 : -ENOENT;
}

void plat_cgroup_at(const char *rel, struct plat_cg *out)
{
    memset(out, 0, sizeof *out);
    while (*rel == '/')
        rel++;
    if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
        snprintf(out->dirs[0], sizeof out->dirs[0], "/sys/fs/cgroup/%s", rel);
        out->n = 1;
    } else {
        snprintf(out->dirs[0], sizeof out->dirs[0], "/sys/fs/cgroup/memory/%s", rel);
        snprintf(out->dirs[1], sizeof out->dirs[1], "/sys/fs/cgroup/pids/%s", rel);
        out->n = 2;
    }
}

int plat_cgroup_root_check(struct wisp_err *err)
{
    char ctl[512];
    if (plat_read_pseudo("/sys/fs/cgroup/cgroup.controllers", ctl, sizeof ctl) >= 0) {
        bool mem = false, pids = false;
        for (char *save = NULL, *t = strtok_r(ctl, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
            mem |= strcmp(t, "memory") == 0;
            pids |= strcmp(t, "pids") == 0;
        }
        if (!mem || !pids)
            return wisp_err_set(err, -ENOTSUP, "cgroup v2 at /sys/fs/cgroup lacks the %s controller",
                                mem ? "pids" : "memory");
        if (access("/sys/fs/cgroup", W_OK) < 0)
            return wisp_err_set(err, -ENOTSUP, "/sys/fs/cgroup is not writable");
        return 0;
    }
    static const char *const v1[] = {"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(v1); i++) {
        struct stat st;
        if (stat(v1[i], &st) < 0 || !S_ISDIR(st.st_mode))
            return wisp_err_set(err, -ENOTSUP, "no cgroup hierarchy with memory and pids (%s is missing)",
                                v1[i]);
        if (access(v1[i], W_OK) < 0)
            return wisp_err_set(err, -ENOTSUP, "%s is not writable", v1[i]);
    }
    return 0;
}

void plat_cgroup_free(const struct plat_cg *cg)
{
    for (int i = 0; i < cg->n; i++)
        rmdir(cg->dirs[i]);
}
