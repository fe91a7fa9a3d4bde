/* tests/unit/test_plat.c - platform helpers (platform/plat.h) held to what
 * they stand in for: the string copies give snprintf's bytes and lengths
 * at every capacity; a CPU share maps to the nice value with the nearest
 * kernel weight, and a group's nice value reaches all of it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "dl.h"
#include "plat.h"
#include "spawn.h"

static void plat_strcpy_is_snprintf(void)
{
    static const char *const srcs[] = {"", "a", "guest", "a-longer/name@0.0.1"};
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        for (size_t cap = 0; cap <= 24; cap++) {
            char want[32], got[32];
            memset(want, 'Z', sizeof want);
            memset(got, 'Z', sizeof got);
            int wn = snprintf(want, cap, "%s", srcs[i]);
            size_t gn = plat_strcpy(got, cap, srcs[i]);
            CHECK_EQ_INT((long long)gn, wn);
            CHECK(memcmp(want, got, sizeof want) == 0); /* nothing past cap either */
        }
    }
}

static void plat_strjoin_is_snprintf(void)
{
    static const char *const as[] = {"", "ns", "guest/pkg"};
    static const char *const bs[] = {"", "x", "action-name"};
    for (size_t i = 0; i < sizeof as / sizeof as[0]; i++)
        for (size_t j = 0; j < sizeof bs / sizeof bs[0]; j++)
            for (size_t cap = 0; cap <= 24; cap++) {
                char want[32], got[32];
                memset(want, 'Z', sizeof want);
                memset(got, 'Z', sizeof got);
                int wn = snprintf(want, cap, "%s%c%s", as[i], '/', bs[j]);
                size_t gn = plat_strjoin(got, cap, as[i], '/', bs[j]);
                CHECK_EQ_INT((long long)gn, wn);
                CHECK(memcmp(want, got, sizeof want) == 0);
            }
}

/* The kernel's weight for each nice value maps back to that value; shares
 * between two weights go to the nearer on the 1.25-per-step scale. */
static void nice_for_share_follows_the_weights(void)
{
    static const unsigned weight[20] = {1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
                                        110,  87,  70,  56,  45,  36,  29,  23,  18,  15};
    for (int n = 0; n < 20; n++)
        CHECK_EQ_INT(plat_nice_for_share(weight[n]), n);
    CHECK_EQ_INT(plat_nice_for_share(4096), 0);
    CHECK_EQ_INT(plat_nice_for_share(512), 3);  /* 512 MB of a 1024 MB pool */
    CHECK_EQ_INT(plat_nice_for_share(256), 6);  /* 256 MB: OpenWhisk's default memory */
    CHECK_EQ_INT(plat_nice_for_share(128), 9);
    CHECK_EQ_INT(plat_nice_for_share(2), 19);
    CHECK_EQ_INT(plat_nice_for_share(0), 19);
    int last = 0;
    for (unsigned s = 1100; s > 0; s--) { /* a smaller share never gets a lower nice */
        int n = plat_nice_for_share(s);
        CHECK(n >= last);
        last = n;
    }
}

/* Every process of the group gets the nice value: the leader and a member
 * it started before. */
static void group_nice_reaches_the_whole_group(void)
{
    errno = 0;
    int own = getpriority(PRIO_PROCESS, 0);
    CHECK_EQ_INT(errno, 0);
    int up[2], down[2];
    CHECK_EQ_INT(pipe(up), 0);
    CHECK_EQ_INT(pipe(down), 0);
    pid_t leader = fork();
    CHECK(leader >= 0);
    if (leader == 0) {
        setpgid(0, 0);
        pid_t member = fork(); /* same group */
        if (member == 0) {
            char c;
            _exit(read(down[0], &c, 1) == 1 ? 0 : 1);
        }
        if (write(up[1], &member, sizeof member) != sizeof member)
            _exit(2);
        int st = 1;
        waitpid(member, &st, 0);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 3);
    }
    setpgid(leader, leader);
    pid_t member = -1;
    CHECK_EQ_INT(read(up[0], &member, sizeof member), (long long)sizeof member);
    int want = own + 4 > 19 ? 19 : own + 4;
    CHECK_EQ_INT(plat_group_nice(leader, own + 4), 0);
    errno = 0;
    CHECK_EQ_INT(getpriority(PRIO_PROCESS, (id_t)leader), want);
    CHECK_EQ_INT(getpriority(PRIO_PROCESS, (id_t)member), want);
    CHECK_EQ_INT(errno, 0);
    CHECK_EQ_INT(write(down[1], "xx", 2), 2);
    int st = -1;
    CHECK_EQ_INT(waitpid(leader, &st, 0), leader);
    CHECK(WIFEXITED(st));
    CHECK_EQ_INT(WEXITSTATUS(st), 0);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    CHECK_EQ_INT(plat_group_nice(-1, 0), 0); /* no group: nothing to do */
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* beside parent: dir base/<prefix><suffix> (and a leaf in it) */
static void sibling(const char *parent, const char *prefix, const char *suffix, bool leaf,
                    char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s", parent);
    char *slash = strrchr(out, '/');
    CHECK(n > 0 && slash);
    snprintf(slash + 1, cap - (size_t)(slash + 1 - out), "%s%s", prefix, suffix);
    CHECK(mkdir(out, 0755) == 0 || errno == EEXIST);
    if (leaf) {
        char l[PATH_MAX + 8];
        snprintf(l, sizeof l, "%s/w1", out);
        CHECK_EQ_INT(mkdir(l, 0755), 0);
    }
}

static void cgroup_sweep_takes_dead_daemons_groups_only(void)
{
    char prefix[48], name[64];
    snprintf(prefix, sizeof prefix, "wisptest%d-", (int)getpid()); /* ours alone */
    snprintf(name, sizeof name, "%s%d", prefix, (int)getpid());
    struct plat_cgroups *c = NULL;
    struct wisp_err err = {0};
    if (plat_cgroups_open(name, &c, &err) < 0) {
        printf("  (skipped: %s)\n", err.msg);
        return;
    }
    /* a group of our own pid with a leaf in it (a dead daemon's whose pid
     * we got): opened again, it comes back empty */
    char stale[2][PATH_MAX + 8];
    for (int i = 0; plat_cgroups_parent(c, i); i++) {
        snprintf(stale[i], sizeof stale[i], "%s/w1", plat_cgroups_parent(c, i));
        CHECK_EQ_INT(mkdir(stale[i], 0755), 0);
    }
    plat_cgroups_close(c); /* fails to remove the parents: they hold w1 */
    c = NULL;
    CHECK_EQ_INT(plat_cgroups_open(name, &c, &err), 0);
    for (int i = 0; plat_cgroups_parent(c, i); i++) {
        CHECK(is_dir(plat_cgroups_parent(c, i)));
        CHECK(!is_dir(stale[i]));
    }
    pid_t dead = fork();
    CHECK(dead >= 0);
    if (dead == 0)
        _exit(0);
    CHECK_EQ_INT(waitpid(dead, NULL, 0), dead);
    char sdead[16], slive[16];
    snprintf(sdead, sizeof sdead, "%d", (int)dead);
    snprintf(slive, sizeof slive, "%d", (int)getppid());
    char d[2][PATH_MAX + 64], l[2][PATH_MAX + 64], x[2][PATH_MAX + 64], z[2][PATH_MAX + 64];
    int n = 0;
    for (const char *par; (par = plat_cgroups_parent(c, n)); n++) {
        CHECK(is_dir(par));
        sibling(par, prefix, sdead, true, d[n], sizeof d[n]);
        sibling(par, prefix, slive, false, l[n], sizeof l[n]);
        sibling(par, prefix, "x1", false, x[n], sizeof x[n]);
        char zdead[24];
        snprintf(zdead, sizeof zdead, "0%d", (int)dead); /* not a name a daemon makes */
        sibling(par, prefix, zdead, false, z[n], sizeof z[n]);
    }
    CHECK(n >= 1 && n <= 2);
    CHECK_EQ_INT(plat_cgroups_sweep(c, prefix), n); /* the dead one, per hierarchy */
    for (int i = 0; i < n; i++) {
        CHECK(!is_dir(d[i]));
        CHECK(is_dir(l[i])); /* a live pid's group stays */
        CHECK(is_dir(x[i])); /* not a pid: not ours */
        CHECK(is_dir(z[i]));
        CHECK(is_dir(plat_cgroups_parent(c, i)));
        CHECK_EQ_INT(rmdir(l[i]), 0);
        CHECK_EQ_INT(rmdir(x[i]), 0);
        CHECK_EQ_INT(rmdir(z[i]), 0);
    }
    CHECK_EQ_INT(plat_cgroups_sweep(c, prefix), 0);
    /* a parent that went (another daemon's sweep) is made again */
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(rmdir(plat_cgroups_parent(c, i)), 0);
    struct plat_cg cg;
    CHECK_EQ_INT(plat_cgroup_new(c, "w1", 64u << 20, 16, &cg), 0);
    CHECK_EQ_INT(cg.n, n);
    for (int i = 0; i < n; i++)
        CHECK(is_dir(cg.dirs[i]));
    plat_cgroup_free(&cg);
    char keep[PATH_MAX];
    snprintf(keep, sizeof keep, "%s", plat_cgroups_parent(c, 0));
    plat_cgroups_close(c);
    CHECK(!is_dir(keep));
}

/* Runs sh -c script in leaf cg; its exit status. */
static int run_in(const struct plat_cg *cg, const char *script)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    static char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct plat_spawn_opts o = {.path = "/bin/sh", .argv = argv, .envp = envp,
                                .fds = {-1, -1, -1, -1}, .cg = cg};
    struct wisp_err err = {0};
    pid_t pid;
    CHECK_EQ_INT(plat_spawn(&o, &pid, &err), 0);
    int st = 0;
    CHECK_EQ_INT(waitpid(pid, &st, 0), pid);
    return st;
}

/* A leaf's counters: what a process in it holds, how many tasks, and the
 * OOM killer's verdict when one outgrows the limit (v1 reads
 * memory.oom_control, not failcnt: hitting the limit and reclaiming is not
 * a kill). The same leaf found by path (plat_cgroup_at) reads the same. */
static void cgroup_stats_count_memory_tasks_and_oom(void)
{
    char name[64];
    snprintf(name, sizeof name, "wispstat%d", (int)getpid());
    struct plat_cgroups *c = NULL;
    struct wisp_err err = {0};
    if (plat_cgroups_open(name, &c, &err) < 0) {
        printf("  (skipped: %s)\n", err.msg);
        return;
    }
    struct plat_cg cg, at;
    struct plat_cg_stats st, st2;
    CHECK_EQ_INT(plat_cgroup_new(c, "w1", 16u << 20, 16, &cg), 0);
    CHECK_EQ_INT(plat_cgroup_stats(&cg, &st), 0);
    CHECK_EQ_INT((long long)st.pids, 0);
    CHECK_EQ_INT((long long)st.oom_kills, 0);
    /* a task that writes 4 MB to its /tmp-less pipe buffer: charged while it lives */
    CHECK_EQ_INT(run_in(&cg, "x=$(head -c 4000000 /dev/zero | tr '\\0' a); test ${#x} -eq 4000000"), 0);
    CHECK_EQ_INT(plat_cgroup_stats(&cg, &st), 0);
    CHECK_EQ_INT((long long)st.oom_kills, 0);
    CHECK(st.mem_bytes > 0); /* what it touched stays charged (page cache, slab) */
    /* tail -n 1 holds a line with no end in memory: 64 MB in a 16 MB leaf */
    int status = run_in(&cg, "head -c 67108864 /dev/zero | tail -n 1 >/dev/null");
    CHECK(status != 0);
    CHECK_EQ_INT(plat_cgroup_stats(&cg, &st), 0);
    CHECK(st.oom_kills >= 1);
    /* the same group, named as a runtime names it: by its path under the
     * root of the memory hierarchy */
    const char *par = plat_cgroups_parent(c, 0);
    const char *root = plat_cgroups_version(c) == 2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
    CHECK(strncmp(par, root, strlen(root)) == 0);
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/w1", par + strlen(root));
    plat_cgroup_at(rel, &at);
    CHECK_EQ_INT(plat_cgroup_stats(&at, &st2), 0);
    CHECK_EQ_INT((long long)st2.oom_kills, (long long)st.oom_kills);
    plat_cgroup_free(&cg);
    CHECK(plat_cgroup_stats(&cg, &st) < 0); /* gone */
    plat_cgroups_close(c);
}

static bool self_maps(const char *what)
{
    char line[512];
    bool found = false;
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f);
    while (fgets(line, sizeof line, f))
        found = found || strstr(line, what);
    fclose(f);
    return found;
}

/* The account database is asked in a child: its answers are getpwnam's
 * and getpwent's, and no NSS module is mapped here for them. */
static void accounts_are_asked_in_a_child(void)
{
    uid_t uid = 1;
    gid_t gid = 1;
    CHECK_EQ_INT(plat_user_find("root", &uid, &gid), 0);
    CHECK_EQ_INT((long long)uid, 0);
    CHECK_EQ_INT((long long)gid, 0);
    CHECK_EQ_INT(plat_user_find("wisp-no-such-user", &uid, &gid), -ENOENT);
    static unsigned char taken[65536];
    int n = plat_uids_taken(0, sizeof taken, taken);
    CHECK(n >= 1);
    CHECK(taken[0]);
    CHECK_EQ_INT(plat_uids_taken(0, 65537, taken), -EINVAL);
    /* before this process asks anything itself */
    CHECK(!self_maps("libnss_"));
    int want = 0;
    static unsigned char seen[65536];
    setpwent();
    for (struct passwd *pw; (pw = getpwent());)
        if (pw->pw_uid < sizeof seen && !seen[pw->pw_uid]++) {
            want++;
            CHECK(taken[pw->pw_uid]);
        }
    endpwent();
    CHECK_EQ_INT(n, want);
    struct passwd *nobody = getpwnam("nobody");
    if (nobody) {
        CHECK_EQ_INT(plat_user_find("nobody", &uid, &gid), 0);
        CHECK_EQ_INT((long long)uid, (long long)nobody->pw_uid);
        CHECK_EQ_INT((long long)gid, (long long)nobody->pw_gid);
    }
}

/* A library that is not there, and a symbol that is not in one that is,
 * are named in the error. */
static void dl_names_what_is_missing(void)
{
    struct wisp_err err = {0};
    CHECK(!plat_dl_open("libwisp-none.so.0", "feature-x", &err));
    CHECK_EQ_INT(err.code, -ENOENT);
    CHECK(strstr(err.msg, "feature-x needs libwisp-none.so.0"));
    void *h = plat_dl_open("libc.so.6", "libc", &err);
    CHECK(h);
    const char *(*version)(void);
    *(void **)&version = plat_dl_sym(h, "libc.so.6", "gnu_get_libc_version", &err);
    CHECK(version && version()[0] == '2');
    err = (struct wisp_err){0};
    CHECK(!plat_dl_sym(h, "libc.so.6", "wisp_no_such_symbol", &err));
    CHECK(strstr(err.msg, "libc.so.6 has no wisp_no_such_symbol"));
}

static const struct check_test tests[] = {
    {"accounts_are_asked_in_a_child", accounts_are_asked_in_a_child},
    {"dl_names_what_is_missing", dl_names_what_is_missing},
    {"plat_strcpy_is_snprintf", plat_strcpy_is_snprintf},
    {"plat_strjoin_is_snprintf", plat_strjoin_is_snprintf},
    {"nice_for_share_follows_the_weights", nice_for_share_follows_the_weights},
    {"group_nice_reaches_the_whole_group", group_nice_reaches_the_whole_group},
    {"cgroup_sweep_takes_dead_daemons_groups_only", cgroup_sweep_takes_dead_daemons_groups_only},
    {"cgroup_stats_count_memory_tasks_and_oom", cgroup_stats_count_memory_tasks_and_oom},
};

CHECK_MAIN(tests)
