/* platform/spawn.h - starting worker processes and confining them.
 *
 * plat_spawn forks and execs with an explicit fd map (the child gets
 * exactly fds 0..3 from the parent's, everything else closed), its own
 * process group (so a kill reaches everything it started), optional
 * resource limits, optional cgroup membership and, when wispd runs as
 * root, an unprivileged uid/gid; the child dies with the thread that
 * spawned it (PR_SET_PDEATHSIG), so a wispd killed with SIGKILL leaves no
 * workers behind. It returns once the child has exec'd (or
 * reports why it could not): the wait is bounded by the child's exec, a
 * few hundred microseconds, and never by the program that runs.
 *
 * Cgroups: plat_cgroups_open finds a writable hierarchy (v2 unified, or v1
 * memory + pids) and makes a parent group for this daemon; each worker gets
 * a leaf with memory and pids limits. Where cgroups are missing or not
 * writable it returns -ENOTSUP and workers run with rlimits only. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "wisp.h"

struct plat_rlimits {
    uint64_t nofile;      /* RLIMIT_NOFILE; 0: unchanged */
    uint64_t nproc;       /* RLIMIT_NPROC (per uid; meaningful with a uid drop) */
    uint64_t fsize_bytes; /* RLIMIT_FSIZE */
    uint64_t as_bytes;    /* RLIMIT_AS; breaks V8, leave 0 for node */
    bool no_core;         /* RLIMIT_CORE = 0 */
};

/* A leaf cgroup: one directory (v2) or one per v1 controller. */
struct plat_cg {
    char dirs[2][PATH_MAX];
    int n;
};

struct plat_spawn_opts {
    const char *path;  /* program to exec (absolute, or relative to cwd) */
    char *const *argv; /* argv[0] included, NULL-terminated */
    char *const *envp; /* complete environment, NULL-terminated */
    const char *cwd;   /* NULL: inherit */
    int fds[4];        /* parent fds to become the child's 0..3; -1: /dev/null (3: closed) */
    bool drop_privs;   /* setgroups/setgid/setuid to uid/gid below */
    uid_t uid;
    gid_t gid;
    struct plat_rlimits rl;
    const struct plat_cg *cg; /* join this cgroup before exec; NULL: stay */
    bool set_nice;            /* setpriority(nice) before exec */
    int nice;
};

/* Starts the program. 0 with *pid set, or -errno with err naming the step
 * that failed (exec, chdir, cgroup, setuid, ...). */
int plat_spawn(const struct plat_spawn_opts *o, pid_t *pid, struct wisp_err *err) WISP_MUST_CHECK;
/* pipe2 with O_CLOEXEC; the end at index nonblock_end (0, 1, or -1 for
 * none) is also O_NONBLOCK. 0 or -errno. */
int plat_pipe(int fds[2], int nonblock_end) WISP_MUST_CHECK;
/* SIGKILLs the process group of a spawned worker. */
void plat_kill_group(pid_t pid);
/* SIGKILLs every process that runs as uid (not 0), wherever it is: in a
 * session of its own, orphaned. A short-lived child of wispd does it,
 * dropped to uid: plat_kill_uid_start starts it and returns its pid (or
 * -errno) without waiting, for the caller to reap (SIGCHLD) and read with
 * plat_kill_uid_status (0: killed, -EPERM: it could not). plat_kill_uid
 * waits for it: start-up and shutdown only. */
pid_t plat_kill_uid_start(uid_t uid) WISP_MUST_CHECK;
int plat_kill_uid_status(int status);
int plat_kill_uid(uid_t uid) WISP_MUST_CHECK;
/* The account database, asked at start-up in a child process that exits
 * after: the NSS modules getpwnam loads (systemd's, a directory
 * service's) are never mapped into wispd, where they would stay resident
 * for its whole life (libnss_systemd and what it pulls in: 650 KB).
 * plat_user_find: 0 with *uid and *gid, -ENOENT when there is no such
 * user, or -errno. plat_uids_taken: taken[i] = 1 when some account has
 * uid first + i (n at most 65536); the number of them, or -errno. */
int plat_user_find(const char *name, uid_t *uid, gid_t *gid) WISP_MUST_CHECK;
int plat_uids_taken(unsigned first, unsigned n, unsigned char *taken) WISP_MUST_CHECK;
/* Makes this process the reaper of its descendants' orphans (a container
 * whose runtime exited after starting it): they become its children, and
 * their exits its SIGCHLDs. 0 or -errno. */
int plat_set_subreaper(void) WISP_MUST_CHECK;
/* Runs argv (stdio on /dev/null) and waits for it: start-up and shutdown
 * only. Its exit status, or -errno. */
int plat_run_wait(char *const argv[]) WISP_MUST_CHECK;
/* What plat_run_capture runs: argv[0] is a path (no PATH search). */
struct plat_run_opts {
    char *const *argv;
    bool drop_privs; /* as uid/gid (wispd running as root) */
    uid_t uid;
    gid_t gid;
    unsigned timeout_ms; /* then it is killed, with everything it started */
};
/* Runs a program with stdin on /dev/null and stdout and stderr into one
 * pipe, in /, with a minimal environment, and waits for it: start-up only,
 * it blocks up to timeout_ms. At most cap - 1 bytes of what it prints land
 * in out, NUL-terminated (the rest is read and dropped). Its exit status
 * (128 + the signal that ended it); -ETIMEDOUT when it was still running at
 * the deadline (it is killed); or -errno when it could not start (-ENOENT,
 * -EACCES: the exec failed). */
int plat_run_capture(const struct plat_run_opts *o, char *out, size_t cap) WISP_MUST_CHECK;
/* The nice increment that gives a process `share` of a full CPU weight
 * (1024: nice 0's weight), as docker's cpu-shares do: the nice value whose
 * scheduler weight is nearest on the 1.25-per-step scale. 1024 and over: 0;
 * the smallest shares: 19. */
int plat_nice_for_share(unsigned share);
/* Sets every process in group pgid to nice (clamped to -20..19); a process
 * it starts later inherits it. 0 or -errno. */
int plat_group_nice(pid_t pgid, int nice) WISP_MUST_CHECK;

struct plat_cgroups;
/* Prepares a parent group named name (e.g. "wisp-1234"). 0, -ENOTSUP with
 * err explaining why cgroups are not used. */
int plat_cgroups_open(const char *name, struct plat_cgroups **out, struct wisp_err *err)
    WISP_MUST_CHECK;
/* Removes the groups beside our parent named prefix + the pid of a
 * process that no longer exists (a daemon killed before it could clean
 * up), with their leaves; groups still holding a process stay (the kernel
 * refuses them). Returns how many went. A daemon in another pid namespace
 * sharing this parent looks dead: an idle group of its may go, and
 * plat_cgroup_new makes a missing parent again. */
int plat_cgroups_sweep(const struct plat_cgroups *c, const char *prefix);
/* Removes the parent group (its leaves must be gone). NULL is a no-op. */
void plat_cgroups_close(struct plat_cgroups *c);
/* Makes leaf `leaf` with a memory limit and a pids limit (and the parent
 * again if it went). 0 or -errno. */
int plat_cgroup_new(struct plat_cgroups *c, const char *leaf, uint64_t mem_bytes,
                    unsigned pids_max, struct plat_cg *out) WISP_MUST_CHECK;
/* What a cgroup's controllers count, read from its files (v2:
 * memory.current, memory.events, pids.current; v1: memory.usage_in_bytes,
 * memory.oom_control, pids.current). A value whose file is missing is 0. */
struct plat_cg_stats {
    uint64_t mem_bytes; /* memory charged now (page cache included) */
    uint64_t oom_kills; /* processes the OOM killer ended for its limit */
    uint64_t pids;      /* tasks in it now */
};
/* 0, or -errno when none of its files could be read (the group is gone). */
int plat_cgroup_stats(const struct plat_cg *cg, struct plat_cg_stats *out) WISP_MUST_CHECK;

/* What a board profile is picked by (wispd --board auto). */
struct plat_machine {
    char model[128];     /* /proc/device-tree/model ("Raspberry Pi 4 Model B Rev 1.4"); "" without */
    uint64_t mem_bytes;  /* MemTotal, or the memory limit of our cgroup or an ancestor's if lower */
    bool mem_limited;    /* that limit is what mem_bytes says */
};
/* Reads them (start-up: blocking reads of /proc and /sys). */
void plat_machine_read(struct plat_machine *out);
/* The cgroup an OCI runtime made for cgroupsPath rel ("/ID"), as a
 * plat_cg (v2 when the unified hierarchy carries the controllers, else v1's
 * memory and pids folders); nothing is made or checked. */
void plat_cgroup_at(const char *rel, struct plat_cg *out);
/* Whether an OCI runtime can make groups with memory and pids limits at
 * the top of the hierarchy (where plat_cgroup_at looks): v2 with both
 * controllers, or v1's memory and pids folders, writable. 0, or -ENOTSUP
 * with err saying what is missing. */
int plat_cgroup_root_check(struct wisp_err *err) WISP_MUST_CHECK;
/* Freezes (or thaws) the cgroup pid is in, by the freezer: v1's
 * freezer.state or v2's cgroup.freeze, found through /proc/PID/cgroup.
 * Returns at once (a v1 freeze completes in the background). 0 or -errno
 * (-ENOTSUP: no freezer for it). */
int plat_cgroup_freeze_pid(pid_t pid, bool frozen) WISP_MUST_CHECK;
/* Removes a leaf whose processes are gone. */
void plat_cgroup_free(const struct plat_cg *cg);
int plat_cgroups_version(const struct plat_cgroups *c);
/* The parent group's directory in hierarchy i (v2: 0; v1: 0 memory,
 * 1 pids); NULL past the last. */
const char *plat_cgroups_parent(const struct plat_cgroups *c, int i);
