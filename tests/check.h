/* tests/check.h - the unit tests' checks. A test is a function in a
 * {name, fn} table; a failed CHECK reports file:line and the test goes on;
 * the program exits non-zero if any check failed. Optional argument: run
 * only the test with that name. */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "%s:%d: CHECK_EQ_INT failed: %s == %lld, %s == %lld\n", __FILE__,      \
                    __LINE__, #a, va_, #b, vb_);                                                   \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_STREQ(a, b)                                                                          \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                               \
            fprintf(stderr, "%s:%d: CHECK_STREQ failed: %s == \"%s\", %s == \"%s\"\n", __FILE__,   \
                    __LINE__, #a, sa_ ? sa_ : "(null)", #b, sb_ ? sb_ : "(null)");                 \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

struct check_test {
    const char *name;
    void (*fn)(void);
};

static inline int check_run(const struct check_test *tests, size_t n, int argc, char **argv)
{
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        int before = check_failures;
        tests[i].fn();
        fprintf(stderr, "%s %s\n", check_failures == before ? "ok  " : "FAIL", tests[i].name);
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return check_failures ? 1 : 0;
}

#define CHECK_MAIN(tests)                                                                          \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return check_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);                     \
    }
