/* tests/unit/test_quota.c - the per-key rate limits (core/quota.h): what
 * quota_room says agrees with what quota_admit does, at every count, for
 * a batch of n and for in-flight limits; keys are counted apart. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "quota.h"

static struct quota q; /* 256 slots: too big for the stack of a test */

static void room_agrees_with_admit(void)
{
    struct wisp_err err = {0};
    quota_init(&q, 5, 0);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(quota_room(&q, "a", 1, &err), 0);
        CHECK_EQ_INT(quota_room(&q, "a", (unsigned)(5 - i), &err), 0);
        CHECK_EQ_INT(quota_room(&q, "a", (unsigned)(6 - i), &err), -EAGAIN);
        CHECK_EQ_INT(quota_admit(&q, "a", &err), 0);
    }
    /* full: room says no, as admit does */
    CHECK_EQ_INT(quota_room(&q, "a", 1, &err), -EAGAIN);
    CHECK(strstr(err.msg, "count: 5, allowed: 5") != NULL);
    CHECK_EQ_INT(quota_admit(&q, "a", &err), -EAGAIN);
    /* another key has its own minute */
    CHECK_EQ_INT(quota_room(&q, "b", 5, &err), 0);
    CHECK_EQ_INT(quota_admit(&q, "b", &err), 0);
}

static void inflight_limit(void)
{
    struct wisp_err err = {0};
    quota_init(&q, 1000, 2);
    quota_inflight(&q, "a", 1);
    CHECK_EQ_INT(quota_room(&q, "a", 1, &err), 0);
    CHECK_EQ_INT(quota_room(&q, "a", 2, &err), -EAGAIN);
    quota_inflight(&q, "a", 1);
    CHECK_EQ_INT(quota_admit(&q, "a", &err), -EAGAIN);
    CHECK(strstr(err.msg, "concurrent") != NULL);
    quota_inflight(&q, "a", -1);
    CHECK_EQ_INT(quota_admit(&q, "a", &err), 0);
}

static const struct check_test tests[] = {
    {"room_agrees_with_admit", room_agrees_with_admit},
    {"inflight_limit", inflight_limit},
};

CHECK_MAIN(tests)
