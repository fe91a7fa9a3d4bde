/* tests/unit/test_plat.c - platform helpers (platform/plat.h) held to what
 * they stand in for: the string copies give snprintf's bytes and lengths
 * at every capacity; a CPU share maps to the nice value with the nearest
 * kernel weight, and a group's nice value reaches all of it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
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

static const struct check_test tests[] = {
    {"plat_strcpy_is_snprintf", plat_strcpy_is_snprintf},
    {"plat_strjoin_is_snprintf", plat_strjoin_is_snprintf},
    {"nice_for_share_follows_the_weights", nice_for_share_follows_the_weights},
    {"group_nice_reaches_the_whole_group", group_nice_reaches_the_whole_group},
};

CHECK_MAIN(tests)
