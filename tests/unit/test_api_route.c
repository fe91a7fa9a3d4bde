/* tests/unit/test_api_route.c - the API's path parser and route table
 * through the socket-free entry point api_fuzz_route(): the number of
 * methods some row serves a path with, or -EINVAL for a path the API
 * answers 400. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "check.h"

static int route_of(const char *path_after_slash)
{
    size_t n = strlen(path_after_slash);
    uint8_t *copy = calloc(1, n ? n : 1); /* exact size, so ASan sees over-reads */
    if (!copy)
        return -ENOMEM;
    if (n)
        memcpy(copy, path_after_slash, n);
    int rc = api_fuzz_route(copy, n);
    free(copy);
    return rc;
}

static void api_route_matches_the_table(void)
{
    CHECK_EQ_INT(route_of(""), 2);                                /* GET, HEAD */
    CHECK_EQ_INT(route_of("ping"), 2);                            /* GET, HEAD */
    CHECK_EQ_INT(route_of("api/v1/namespaces/_/actions/a"), 5);   /* GET HEAD PUT POST DELETE */
    CHECK_EQ_INT(route_of("api/v1/namespaces/_/actions/"), 2);    /* the list, trailing '/' */
    CHECK_EQ_INT(route_of("api/v1/namespaces/_/packages/p"), 4);  /* no POST */
    CHECK_EQ_INT(route_of("api/v1/web/guest/default/a.json"), 6); /* any method */
    CHECK_EQ_INT(route_of("nothing/here"), 0);
    CHECK_EQ_INT(route_of("api/v1/namespaces//actions/a"), 0); /* an empty capture */
}

static void api_route_refuses_bad_escapes(void)
{
    CHECK_EQ_INT(route_of("a%2Fb"), -EINVAL);
    CHECK_EQ_INT(route_of("a%00"), -EINVAL);
    CHECK_EQ_INT(route_of("a%zz"), -EINVAL);
    CHECK_EQ_INT(route_of("a%4"), -EINVAL);
    char many[200] = "";
    for (int i = 0; i < 64; i++) /* more segments than the parser keeps */
        strcat(many, "s/");
    CHECK_EQ_INT(route_of(many), -EINVAL);
    CHECK(route_of("api/v1/namespaces/_/triggers/t%20x") >= 0);
}

/* issue 16: a segment filling the 2048-byte segment buffer, then an empty
 * one, wrote that one's NUL past the buffer (into the struct after it, so
 * ASan could not see it) */
static void api_route_full_segment_buffer_is_refused(void)
{
    char path[2100];
    memset(path, 'a', 2047);
    path[2047] = '/';
    path[2048] = '\0';
    CHECK_EQ_INT(route_of(path), -EINVAL);
    path[2047] = '\0'; /* 2047 bytes and their NUL fit */
    CHECK_EQ_INT(route_of(path), 0);
    memset(path, 'a', 2046);
    path[2046] = '/';
    path[2047] = '\0';
    CHECK_EQ_INT(route_of(path), 0);
}

static const struct check_test tests[] = {
    {"api_route_matches_the_table", api_route_matches_the_table},
    {"api_route_refuses_bad_escapes", api_route_refuses_bad_escapes},
    {"api_route_full_segment_buffer_is_refused", api_route_full_segment_buffer_is_refused},
};

CHECK_MAIN(tests)
