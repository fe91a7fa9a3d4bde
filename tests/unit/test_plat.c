/* tests/unit/test_plat.c - platform helpers (platform/plat.h) held to what
 * they stand in for: the string copies give snprintf's bytes and lengths
 * at every capacity. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "plat.h"

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

static const struct check_test tests[] = {
    {"plat_strcpy_is_snprintf", plat_strcpy_is_snprintf},
    {"plat_strjoin_is_snprintf", plat_strjoin_is_snprintf},
};

CHECK_MAIN(tests)
