/* runtimes/container.c - the container backend: a worker is an OCI
 * container run by an OCI runtime CLI (runc by default, crun through
 * --oci-runtime), from an image in the data dir's store (image.h).
 *
 * start() writes the bundle's config.json into the worker's folder (the
 * image's rootfs is shared, read-only) and spawns `RUNTIME --root STATE run
 * --detach --preserve-fds 1 --pid-file DIR/pid --bundle DIR ID` with the
 * worker's four pipes as its fds 0..3. Detached and without a terminal,
 * the runtime hands them to the container as they are (in the foreground
 * runc copies stdout and stderr through pipes of its own, so a log line
 * could arrive after the answer on fd 3), so the action speaks actionloop
 * over the very pipes a process worker would: the image's label
 * io.wisp.protocol=actionloop says its entrypoint is an actionloop
 * executable, run as a native action is. Any other image speaks
 * OpenWhisk's HTTP contract (/init, /run on port 8080): its entrypoint
 * goes behind wisp-blackbox-shim (runtimes/native, bind-mounted read-only
 * at /.wisp), which acks, takes the init line like a launcher and speaks
 * HTTP to the image's server on the container's own loopback. The runtime exits once the
 * container runs (tens of milliseconds; none of its memory stays per
 * container); wispd is the subreaper, so the container's init becomes its
 * child and the worker's pid (ct_exited), and its exit the worker's end.
 * Then `RUNTIME delete --force` removes the record and the cgroups, in the
 * background.
 *
 * Isolation, in the config: its own pid, mount, network (loopback only:
 * no route out; an action annotated network=true shares the host's
 * instead), ipc and uts namespaces; the image's rootfs read-only; a
 * tmpfs /tmp of CT_TMP_MB; no capabilities, no new privileges; the
 * runtime's masked and read-only /proc paths; a seccomp filter refusing
 * what a function never needs (mount, kernel modules, keyrings, ptrace,
 * namespaces, reboot, ...); the pool's unprivileged uid/gid (65534 when
 * wispd does not drop privileges); memory (no swap beyond it) and pids
 * limits from the action, in the container's own cgroup.
 *
 * kill() SIGKILLs the container's init (its pid namespace goes with it),
 * or while the runtime is still starting it, the runtime and the init its
 * pid file names. Everything a killed wispd left running, and anything
 * still there at shutdown, is deleted by sweep() (the state dir is ours
 * alone: --root in the data dir).
 *
 * Where there is no runtime or wispd is not root, open() fails with the
 * reason and the pool answers container actions with it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "plat.h"
#include "pool_priv.h"
#include "wjson.h"

#define CT_TMP_MB 64
#define CT_NOBODY 65534
#define CT_ID_PREFIX "wisp-"
#define SHIM_NAME "wisp-blackbox-shim"
#define SHIM_DIR "/.wisp" /* made in every rootfs at import */

struct ct_self {
    char runtime[PATH_MAX];
    char libexec[PATH_MAX]; /* holds SHIM_NAME, bind-mounted at SHIM_DIR */
    char state[PATH_MAX + 16]; /* the runtime's --root */
    char data_dir[PATH_MAX];
    bool drop_privs;
    uid_t uid;
    gid_t gid;
    unsigned pids_max;
};

static bool executable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* The runtime: a path, or a name looked up in the usual bin folders. */
static int find_runtime(const char *want, char *out, size_t cap)
{
    const char *name = want && *want ? want : "runc";
    if (strchr(name, '/')) {
        snprintf(out, cap, "%s", name);
        return executable(out) ? 0 : -ENOENT;
    }
    static const char *const dirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                       "/usr/bin", "/sbin", "/bin"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(dirs); i++) {
        snprintf(out, cap, "%s/%s", dirs[i], name);
        if (executable(out))
            return 0;
    }
    return -ENOENT;
}

/* Deletes every container in the state dir (ours alone), running or
 * not: what a killed wispd left, or what is still going at shutdown. The
 * runtime kills it and removes its cgroups; the record goes regardless.
 * Blocking: start-up and shutdown only. */
static void sweep(struct ct_self *c)
{
    DIR *d = opendir(c->state);
    if (!d)
        return;
    unsigned n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (strncmp(de->d_name, CT_ID_PREFIX, strlen(CT_ID_PREFIX)) != 0)
            continue;
        char *argv[] = {c->runtime, "--root", c->state, "delete", "--force", de->d_name, NULL};
        int rc = plat_run_wait(argv);
        char p[2 * PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", c->state, de->d_name);
        if (rc != 0) { /* the runtime could not: kill what its record names */
            char sp[2 * PATH_MAX + 16], *text = NULL;
            size_t len;
            snprintf(sp, sizeof sp, "%s/state.json", p);
            if (plat_read_file(sp, 1 << 20, &text, &len) == 0) {
                json_t *st = json_loadb(text, len, 0, NULL);
                json_int_t pid = json_integer_value(json_object_get(st, "init_process_pid"));
                if (pid > 1)
                    kill((pid_t)pid, SIGKILL);
                json_decref(st);
            }
            free(text);
        }
        plat_rm_rf(p);
        n++;
    }
    closedir(d);
    if (n)
        wlog_info("container", "removed %u container%s left running", n, n == 1 ? "" : "s");
}

static int ct_open(const struct pool_cfg *cfg, const char *work_dir, void **self,
                   struct wisp_err *err)
{
    (void)work_dir;
    struct ct_self *c = calloc(1, sizeof *c);
    if (!c)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    int rc = 0;
    struct wisp_err cgerr = {0};
    if (find_runtime(cfg->oci_runtime, c->runtime, sizeof c->runtime) < 0)
        rc = wisp_err_set(err, -ENOTSUP,
                          "Container actions cannot run here: no OCI runtime (%s) was found; "
                          "install runc or crun, or name one with --oci-runtime.",
                          cfg->oci_runtime && *cfg->oci_runtime ? cfg->oci_runtime : "runc");
    else if (geteuid() != 0)
        rc = wisp_err_set(err, -ENOTSUP,
                          "Container actions cannot run here: wispd must run as root to "
                          "start containers.");
    else if (plat_cgroup_root_check(&cgerr) < 0)
        /* runc would start the container without limits, or not at all */
        rc = wisp_err_set(err, -ENOTSUP,
                          "Container actions cannot run here: %s; containers need its memory "
                          "and pids limits.", cgerr.msg);
    else if (!cfg->data_dir || !realpath(cfg->data_dir, c->data_dir))
        rc = wisp_err_set(err, -ENOTSUP, "Container actions cannot run here: no data dir.");
    if (rc == 0) {
        /* in the data dir, not the work dir: that may be a fresh folder
         * under /tmp each start, and the sweep must find the last one's */
        snprintf(c->state, sizeof c->state, "%s/containers", c->data_dir);
        if ((rc = plat_mkdir_p(c->state, 0700)) < 0)
            wisp_err_set(err, rc, "cannot make %s: %s", c->state, strerror(-rc));
    }
    if (rc < 0) {
        free(c);
        return rc;
    }
    if (!cfg->libexec_dir || !realpath(cfg->libexec_dir, c->libexec))
        c->libexec[0] = '\0'; /* HTTP images then say the shim is missing */
    c->drop_privs = cfg->drop_privs;
    c->uid = cfg->drop_privs ? cfg->uid : CT_NOBODY;
    c->gid = cfg->drop_privs ? cfg->gid : CT_NOBODY;
    c->pids_max = cfg->pids_max ? cfg->pids_max : 256;
    if ((rc = plat_set_subreaper()) < 0) {
        free(c);
        return wisp_err_set(err, rc,
                            "Container actions cannot run here: wispd cannot become the reaper "
                            "of its containers (PR_SET_CHILD_SUBREAPER: %s; qemu-user refuses it)",
                            strerror(-rc));
    }
    sweep(c);
    img_sweep(c->data_dir);
    wlog_info("container", "OCI runtime %s", c->runtime);
    *self = c;
    return 0;
}

static void ct_close(void *self)
{
    struct ct_self *c = self;
    if (!c)
        return;
    sweep(c); /* the pool killed every worker; their runtimes may still be exiting */
    free(c);
}

static json_t *str_array(const char *const *v)
{
    json_t *a = json_array();
    for (; a && *v; v++)
        json_array_append_new(a, json_string(*v));
    return a;
}

static json_t *mounts(const struct ct_self *c, bool shim)
{
    char tmp_opts[64];
    snprintf(tmp_opts, sizeof tmp_opts, "size=%dm", CT_TMP_MB);
    json_t *m = json_pack(
        "[{s:s,s:s,s:s},"
        "{s:s,s:s,s:s,s:[s,s,s,s]},"
        "{s:s,s:s,s:s,s:[s,s,s,s,s]},"
        "{s:s,s:s,s:s,s:[s,s,s,s]},"
        "{s:s,s:s,s:s,s:[s,s,s,s,s]}]",
        "destination", "/proc", "type", "proc", "source", "proc",
        "destination", "/dev", "type", "tmpfs", "source", "tmpfs", "options", "nosuid",
        "strictatime", "mode=755", "size=65536k",
        "destination", "/sys", "type", "sysfs", "source", "sysfs", "options", "nosuid", "noexec",
        "nodev", "ro", "rslave",
        "destination", "/dev/shm", "type", "tmpfs", "source", "shm", "options", "nosuid",
        "noexec", "nodev", "size=16m",
        "destination", "/tmp", "type", "tmpfs", "source", "tmpfs", "options", "nosuid", "nodev",
        "mode=1777", tmp_opts, "rw");
    if (m && shim)
        json_array_append_new(m, json_pack("{s:s,s:s,s:s,s:[s,s,s,s]}", "destination", SHIM_DIR,
                                           "type", "bind", "source", c->libexec, "options",
                                           "rbind", "ro", "nosuid", "nodev"));
    return m;
}

/* Refused with EPERM: what a function never needs and a container escape
 * often does. Everything else is allowed (the runtime's own default
 * profiles are allow-lists; this is the short deny-list on top of no
 * capabilities). */
static json_t *seccomp(void)
{
    static const char *const deny[] = {
        "mount", "umount2", "pivot_root", "chroot", "swapon", "swapoff", "reboot",
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
        "add_key", "request_key", "keyctl", "ptrace", "process_vm_readv", "process_vm_writev",
        "unshare", "setns", "bpf", "perf_event_open", "userfaultfd", "open_by_handle_at",
        "name_to_handle_at", "acct", "quotactl", "settimeofday", "clock_settime", "adjtimex",
        "sethostname", "setdomainname", "iopl", "ioperm", "fsopen", "fsmount", "move_mount",
        "open_tree", "fspick", "lookup_dcookie", "vhangup", "nfsservctl", NULL};
    json_t *names = str_array(deny);
    return json_pack("{s:s,s:[s,s,s],s:[{s:o,s:s,s:i}]}", "defaultAction", "SCMP_ACT_ALLOW",
                     "architectures", "SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM",
                     "syscalls", "names", names, "action", "SCMP_ACT_ERRNO", "errnoRet", 1);
}

/* process.args: the image's Entrypoint then Cmd; behind the shim when the
 * image speaks OpenWhisk's HTTP contract. */
static json_t *args_of(const struct img_config *ic, bool shim)
{
    json_t *a = json_array();
    if (a && shim)
        json_array_append_new(a, json_string(SHIM_DIR "/" SHIM_NAME));
    const json_t *parts[] = {ic->entrypoint, ic->cmd};
    for (size_t i = 0; a && i < 2; i++) {
        size_t k;
        const json_t *s;
        json_array_foreach(parts[i], k, s) json_array_append(a, (json_t *)s);
    }
    return a;
}

/* process.env: the image's, then the worker's own (they win). */
static json_t *env_of(const struct img_config *ic, char *const *envp)
{
    json_t *e = json_array();
    size_t k;
    const json_t *s;
    json_array_foreach(ic->env, k, s) json_array_append(e, (json_t *)s);
    for (; e && envp && *envp; envp++)
        if (strncmp(*envp, "HOME=", 5) != 0 && strncmp(*envp, "PATH=", 5) != 0)
            json_array_append_new(e, json_string(*envp));
    json_array_append_new(e, json_string("HOME=/tmp"));
    return e;
}

static json_t *bundle_config(const struct ct_self *c, const struct worker_start *ws,
                             const char *id, const char *rootfs, const struct img_config *ic,
                             bool shim)
{
    static const char *const masked[] = {
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
        "/proc/scsi", NULL};
    static const char *const ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                     "/proc/sysrq-trigger", NULL};
    int64_t mem = (int64_t)ws->mem_bytes;
    json_t *caps = json_pack("{s:[],s:[],s:[],s:[],s:[]}", "bounding", "effective",
                             "inheritable", "permitted", "ambient");
    json_t *cfg = json_pack(
        "{s:s,"
        "s:{s:b,s:{s:i,s:i},s:o,s:o,s:s,s:o,s:b,s:[{s:s,s:i,s:i}]},"
        "s:{s:s,s:b},s:s,s:o,"
        "s:{s:{s:{s:I,s:I},s:{s:i},s:[{s:b,s:s}]},s:[{s:s},{s:s},{s:s},{s:s},{s:s}],"
        "s:o,s:o,s:o}}",
        "ociVersion", "1.0.2",
        "process", "terminal", 0, "user", "uid", (int)c->uid, "gid", (int)c->gid, "args",
        args_of(ic, shim), "env", env_of(ic, ws->envp), "cwd",
        ic->workdir && *ic->workdir ? ic->workdir : "/", "capabilities", caps,
        "noNewPrivileges", 1, "rlimits", "type", "RLIMIT_NOFILE", "hard", 1024, "soft", 1024,
        "root", "path", rootfs, "readonly", 1, "hostname", "wisp", "mounts", mounts(c, shim),
        "linux", "resources", "memory", "limit", (json_int_t)mem, "swap", (json_int_t)mem,
        "pids", "limit", (int)c->pids_max, "devices", "allow", 0, "access", "rwm",
        "namespaces", "type", "pid", "type", "network", "type", "ipc", "type", "uts", "type",
        "mount", "maskedPaths", str_array(masked), "readonlyPaths", str_array(ro), "seccomp",
        seccomp());
    char cgpath[64];
    snprintf(cgpath, sizeof cgpath, "/%s", id); /* where ct_oom looks */
    if (cfg)
        json_object_set_new(json_object_get(cfg, "linux"), "cgroupsPath", json_string(cgpath));
    if (cfg && ws->network) { /* the action asked for the network: the host's, shared */
        json_t *ns = json_object_get(json_object_get(cfg, "linux"), "namespaces");
        json_array_remove(ns, 1);
    }
    return cfg;
}

/* The image, its config and the bundle's config.json in ws->cwd. *shim:
 * the image speaks OpenWhisk's HTTP contract (wisp-blackbox-shim runs it). */
static int write_bundle(const struct ct_self *c, const struct worker_start *ws, const char *id,
                        bool *shim, struct wisp_err *err)
{
    char dir[PATH_MAX], p[PATH_MAX + 32], *text = NULL;
    size_t len;
    int rc = img_resolve(c->data_dir, ws->image, dir, sizeof dir);
    if (rc < 0)
        return wisp_err_set(err, -ENOENT,
                            "The action's image %.200s is not on this appliance: import it with "
                            "`wisp image import FILE %.200s` (an OCI or docker save archive).",
                            ws->image, ws->image);
    snprintf(p, sizeof p, "%s/config.json", dir);
    if ((rc = plat_read_file(p, 4 << 20, &text, &len)) < 0)
        return wisp_err_set(err, rc, "cannot read %s: %s", p, strerror(-rc));
    json_t *doc = json_loadb(text, len, 0, NULL), *cfg = NULL;
    free(text);
    struct img_config ic;
    if (!doc)
        rc = wisp_err_set(err, -EINVAL, "%s is not JSON", p);
    else
        rc = img_config_read(doc, &ic, err);
    *shim = rc == 0 && (!ic.protocol || strcmp(ic.protocol, "actionloop") != 0);
    char sp[2 * PATH_MAX];
    snprintf(sp, sizeof sp, "%s/" SHIM_NAME, c->libexec);
    if (*shim && (!c->libexec[0] || access(sp, X_OK) < 0))
        rc = wisp_err_set(err, -ENXIO,
                          "The image %.200s speaks OpenWhisk's HTTP contract, whose adapter (%s) "
                          "is not in --libexec-dir.",
                          ws->image, SHIM_NAME);
    if (rc == 0 && json_array_size(ic.entrypoint) + json_array_size(ic.cmd) == 0)
        rc = wisp_err_set(err, -EINVAL, "The image %.200s has no Entrypoint or Cmd.", ws->image);
    snprintf(p, sizeof p, "%s/rootfs", dir);
    if (rc == 0 && !(cfg = bundle_config(c, ws, id, p, &ic, *shim)))
        rc = wisp_err_set(err, -ENOMEM, "out of memory");
    char *out = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
    snprintf(p, sizeof p, "%s/config.json", ws->cwd);
    if (rc == 0 && (rc = out ? plat_write_file_fast(p, out, strlen(out), 0600) : -ENOMEM) < 0)
        wisp_err_set(err, rc, "cannot write %s: %s", p, strerror(-rc));
    free(out);
    json_decref(cfg);
    json_decref(doc);
    return rc;
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static int ct_start(void *self, const struct worker_start *ws, struct worker_proc *out,
                    struct wisp_err *err)
{
    struct ct_self *c = self;
    if (!ws->image || !ws->id)
        return wisp_err_set(err, -EINVAL, "a container needs an image");
    char id[48]; /* the container's name and its cgroup's: ours by the prefix */
    snprintf(id, sizeof id, CT_ID_PREFIX "%d-%.24s", (int)getpid(), ws->id);
    bool shim = false;
    int rc = write_bundle(c, ws, id, &shim, err);
    if (rc < 0)
        return rc;
    int p[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    if ((rc = plat_pipe(p, 1)) < 0 || (rc = plat_pipe(p + 2, 0)) < 0 ||
        (rc = plat_pipe(p + 4, 0)) < 0 || (rc = plat_pipe(p + 6, 0)) < 0) {
        close_all(p, 8);
        return wisp_err_set(err, rc, "pipe: %s", strerror(-rc));
    }
    char pidfile[PATH_MAX + 8];
    snprintf(pidfile, sizeof pidfile, "%s/pid", ws->cwd);
    char *argv[] = {c->runtime, "--root", c->state, "run", "--detach", "--preserve-fds", "1",
                    "--pid-file", pidfile, "--bundle", (char *)ws->cwd, id, NULL};
    static char *const envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                 NULL};
    struct plat_spawn_opts o = {
        .path = c->runtime,
        .argv = argv,
        .envp = envp,
        .cwd = ws->cwd,
        .fds = {p[0], p[3], p[5], p[7]},
        .rl = {.no_core = true},
    };
    pid_t pid;
    rc = plat_spawn(&o, &pid, err);
    int child_ends[] = {p[0], p[3], p[5], p[7]};
    close_all(child_ends, 4);
    if (rc < 0) {
        int ours[] = {p[1], p[2], p[4], p[6]};
        close_all(ours, 4);
        return rc;
    }
    *out = (struct worker_proc){.pid = pid, .fd_in = p[1], .fd_out = p[2], .fd_err = p[4],
                                .fd_ctl = p[6]};
    snprintf(out->dir, sizeof out->dir, "%s", ws->cwd);
    snprintf(out->name, sizeof out->name, "%s", id);
    out->launching = true;
    out->with_init = shim; /* the shim acks, then takes the init line to /init */
    return 0;
}

static long read_pid(const char *dir)
{
    char p[PATH_MAX + 8], *text = NULL;
    size_t len;
    snprintf(p, sizeof p, "%s/pid", dir);
    long pid = 0;
    if (plat_read_file(p, 32, &text, &len) == 0)
        pid = strtol(text, NULL, 10);
    free(text);
    return pid;
}

/* The counters of the cgroup runc made for cgroupsPath /ID (bundle_config). */
static int cg_stats(const char *id, struct worker_stats *out)
{
    struct plat_cg cg;
    struct plat_cg_stats cs;
    plat_cgroup_at(id, &cg);
    int rc = plat_cgroup_stats(&cg, &cs);
    *out = (struct worker_stats){cs.mem_bytes, cs.pids, cs.oom_kills > 0};
    return rc;
}

/* Asked while it runs, when fd 3 closes (the cgroup is still there) or
 * after the exit (the OOM verdict was read before the delete, in ct_exited). */
static int ct_stats(void *self, const struct worker_proc *wp, struct worker_stats *out)
{
    (void)self;
    int rc = wp->name[0] ? cg_stats(wp->name, out) : -ENOENT;
    if (rc < 0)
        *out = (struct worker_stats){0};
    out->oom_killed |= wp->oom_killed;
    return rc < 0 && !wp->oom_killed ? rc : 0;
}

/* The runtime's exit (launching) hands the worker over to the container's
 * init, now our child (subreaper); the init's exit is the end, and the
 * runtime's record and cgroups go in the background (its exit is reaped
 * by the pool as a stranger's). */
static bool ct_exited(void *self, struct worker_proc *wp, bool killed, int status)
{
    struct ct_self *c = self;
    if (wp->launching) {
        wp->launching = false;
        long pid = read_pid(wp->dir);
        /* alive, or a zombie of ours not reaped yet: either way its exit comes */
        if (!killed && WIFEXITED(status) && WEXITSTATUS(status) == 0 && pid > 1 &&
            kill((pid_t)pid, 0) == 0) {
            wp->pid = (pid_t)pid;
            return true;
        }
    }
    /* read before `delete` removes the cgroup */
    struct worker_stats st;
    wp->oom_killed = cg_stats(wp->name, &st) == 0 && st.oom_killed;
    char *argv[] = {c->runtime, "--root", c->state, "delete", "--force", wp->name, NULL};
    static char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    struct plat_spawn_opts o = {.path = c->runtime, .argv = argv, .envp = envp,
                                .fds = {-1, -1, -1, -1}};
    struct wisp_err err = {0};
    pid_t pid;
    if (plat_spawn(&o, &pid, &err) < 0)
        wlog_warn("container", "cannot delete container %s: %s", wp->name, err.msg);
    return false;
}

/* The container's cgroup, frozen or thawed: idle containers take no CPU
 * (no timers, no background threads) and keep their memory. */
static int ct_pause(void *self, const struct worker_proc *wp)
{
    (void)self;
    return wp->launching ? -EAGAIN : plat_cgroup_freeze_pid(wp->pid, true);
}

static int ct_resume(void *self, const struct worker_proc *wp)
{
    (void)self;
    return wp->launching ? 0 : plat_cgroup_freeze_pid(wp->pid, false);
}

static void ct_kill(void *self, const struct worker_proc *wp)
{
    (void)self;
    long pid = wp->launching ? read_pid(wp->dir) : wp->pid;
    /* a frozen task takes its SIGKILL only once thawed (v1); not paused, or
     * no freezer: nothing to thaw */
    if (pid > 1 && !wp->launching && plat_cgroup_freeze_pid((pid_t)pid, false) < 0)
        wlog_debug("container", "%s: not thawed before the kill", wp->name);
    if (pid > 1)
        kill((pid_t)pid, SIGKILL); /* its pid namespace goes with it */
    if (wp->launching)
        plat_kill_group(wp->pid); /* the runtime: ct_exited deletes what it made */
}

const struct pool_backend_ops container_backend_ops = {
    .name = "container",
    .open = ct_open,
    .close = ct_close,
    .start = ct_start,
    .kill = ct_kill,
    .stats = ct_stats,
    .pause = ct_pause,
    .resume = ct_resume,
    .exited = ct_exited,
};
