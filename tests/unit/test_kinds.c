/* tests/unit/test_kinds.c - the runtime kind manifest (runtimes/pool.h):
 * the real runtimes/kinds.json and manifests that must be refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pool.h"
#include "wisp_config.h"

#define MANIFEST WISP_SOURCE_DIR "/runtimes/kinds.json"

static struct rt_kinds *load_real(void)
{
    struct rt_kinds *k = NULL;
    struct wisp_err err = {0};
    int rc = rt_kinds_load(MANIFEST, &k, &err);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK(k != NULL);
    return k;
}

static int parse(const char *text, struct wisp_err *err)
{
    struct rt_kinds *k = NULL;
    memset(err, 0, sizeof *err);
    int rc = rt_kinds_parse(text, strlen(text), "test.json", &k, err);
    if (rc == 0)
        CHECK(k != NULL);
    rt_kinds_free(k);
    return rc;
}

static bool is_program(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    return strcmp(slash ? slash + 1 : path, name) == 0;
}

static void kinds_real_manifest_loads(void)
{
    struct rt_kinds *k = load_real();
    if (!k)
        return;
    CHECK(rt_kinds_count(k) >= 6);
    const char *names[] = {"python:3", "nodejs:20", "nodejs", "native", "blackbox", "sequence"};
    for (size_t i = 0; i < rt_kinds_count(k) && i < WISP_ARRAY_LEN(names); i++)
        CHECK_STREQ(rt_kind_at(k, i)->kind, names[i]);
    /* every listed kind is found under its own name, and each family has
     * exactly one default */
    for (size_t i = 0; i < rt_kinds_count(k); i++) {
        const struct rt_kind *d = rt_kind_at(k, i);
        CHECK(rt_kind_find(k, d->kind) == d);
        int defaults = 0;
        for (size_t j = 0; j < rt_kinds_count(k); j++)
            defaults += rt_kind_at(k, j)->is_default &&
                        strcmp(rt_kind_at(k, j)->family, d->family) == 0;
        CHECK_EQ_INT(defaults, 1);
    }
    rt_kinds_free(k);
}

static void kinds_find_each_real_kind(void)
{
    struct rt_kinds *k = load_real();
    if (!k)
        return;
    struct {
        const char *name, *kind, *family, *interp, *launcher;
        enum rt_needs needs;
        bool is_default;
    } rows[] = {
        {"python:3", "python:3", "python", "python3", "python/launcher.py", RT_NEEDS_CODE, true},
        {"nodejs:20", "nodejs:20", "nodejs", "node", "nodejs/launcher.js", RT_NEEDS_CODE, true},
        {"nodejs", "nodejs", "nodejs", "node", "nodejs/launcher.js", RT_NEEDS_CODE, false},
        {"native", "native", "native", NULL, NULL, RT_NEEDS_CODE, true},
        {"blackbox", "blackbox", "blackbox", NULL, NULL, RT_NEEDS_IMAGE, true},
        {"sequence", "sequence", "sequence", NULL, NULL, RT_NEEDS_COMPONENTS, true},
        {"python:default", "python:3", "python", "python3", "python/launcher.py", RT_NEEDS_CODE,
         true},
        {"nodejs:default", "nodejs:20", "nodejs", "node", "nodejs/launcher.js", RT_NEEDS_CODE,
         true},
        {"native:default", "native", "native", NULL, NULL, RT_NEEDS_CODE, true},
        {"blackbox:default", "blackbox", "blackbox", NULL, NULL, RT_NEEDS_IMAGE, true},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        const struct rt_kind *d = rt_kind_find(k, rows[i].name);
        CHECK(d != NULL);
        if (!d) {
            fprintf(stderr, "  %s not found\n", rows[i].name);
            continue;
        }
        CHECK_STREQ(d->kind, rows[i].kind);
        CHECK_STREQ(d->family, rows[i].family);
        CHECK_EQ_INT(d->needs, rows[i].needs);
        CHECK_EQ_INT(d->is_default, rows[i].is_default);
        if (rows[i].interp) {
            /* "node" or a path to it ("/usr/bin/node") */
            CHECK(d->interpreter && is_program(d->interpreter, rows[i].interp));
            CHECK_STREQ(d->launcher, rows[i].launcher);
        } else {
            CHECK(d->interpreter == NULL);
            CHECK(d->launcher == NULL);
        }
    }
    rt_kinds_free(k);
}

static void kinds_unknown_names_are_null(void)
{
    struct rt_kinds *k = load_real();
    if (!k)
        return;
    const char *unknown[] = {"",        "python",    "python:2",      "nodejs:18", "java:default",
                             ":default", "default",  "Python:3",      "python:3 ", "nodejs:20x",
                             "python:default:x", "sequence:1", "nodejs:Default"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(unknown); i++) {
        const struct rt_kind *d = rt_kind_find(k, unknown[i]);
        if (d)
            fprintf(stderr, "  '%s' resolved to %s\n", unknown[i], d->kind);
        CHECK(d == NULL);
    }
    rt_kinds_free(k);
}

static void kinds_parse_errors(void)
{
    struct {
        const char *text, *msg;
    } rows[] = {
        {"not json", "test.json"},
        {"", "test.json"},
        {"[]", "kinds"},
        {"{}", "kinds"},
        {"{\"kinds\": []}", "kinds"},
        {"{\"kinds\": {}}", "kinds"},
        {"{\"kinds\": [{\"family\": \"x\", \"needs\": \"code\"}]}", "kinds[0]"},
        {"{\"kinds\": [{\"kind\": \"\", \"family\": \"x\", \"needs\": \"code\"}]}", "kinds[0]"},
        {"{\"kinds\": [{\"kind\": \"x:1\", \"needs\": \"code\"}]}", "kinds[0]"},
        {"{\"kinds\": [{\"kind\": \"x:1\", \"family\": \"x\"}]}", "kinds[0]"},
        {"{\"kinds\": [{\"kind\": 5, \"family\": \"x\", \"needs\": \"code\"}]}", "kinds[0]"},
        {"{\"kinds\": [{\"kind\": \"x:1\", \"family\": \"x\", \"needs\": \"magic\"}]}", "needs"},
        {"{\"kinds\": [{\"kind\": \"x:1\", \"family\": \"x\", \"needs\": \"code\", \"default\": "
         "\"yes\"}]}",
         "kinds[0]"},
        {"{\"kinds\": [{\"kind\": \"x:1\", \"family\": \"x\", \"needs\": \"code\"}, {\"kind\": "
         "\"x:1\", \"family\": \"x\", \"needs\": \"image\"}]}",
         "twice"},
        {"{\"kinds\": [{\"kind\": \"a\", \"family\": \"a\", \"needs\": \"code\"}, 7]}", "kinds[1]"},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        struct wisp_err err;
        int rc = parse(rows[i].text, &err);
        if (rc != -EINVAL)
            fprintf(stderr, "  row %zu accepted\n", i);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK_EQ_INT(err.code, -EINVAL);
        if (!strstr(err.msg, rows[i].msg))
            fprintf(stderr, "  row %zu: '%s' lacks '%s'\n", i, err.msg, rows[i].msg);
        CHECK(strstr(err.msg, rows[i].msg) != NULL);
        CHECK(strstr(err.msg, "test.json") != NULL);
    }
}

static void kinds_minimal_manifest_parses(void)
{
    static const char text[] =
        "{\"kinds\": [{\"kind\": \"lua:5\", \"family\": \"lua\", \"default\": true, "
        "\"interpreter\": \"lua\", \"launcher\": \"lua/l.lua\", \"needs\": \"code\"}, "
        "{\"kind\": \"lua:4\", \"family\": \"lua\", \"needs\": \"code\"}]}";
    struct rt_kinds *k = NULL;
    struct wisp_err err = {0};
    CHECK_EQ_INT(rt_kinds_parse(text, strlen(text), "mem", &k, &err), 0);
    if (!k)
        return;
    CHECK_EQ_INT(rt_kinds_count(k), 2);
    const struct rt_kind *d = rt_kind_find(k, "lua:default");
    CHECK(d && strcmp(d->kind, "lua:5") == 0);
    d = rt_kind_find(k, "lua:4");
    CHECK(d && !d->is_default && d->interpreter == NULL);
    CHECK(rt_kind_find(k, "python:default") == NULL);
    rt_kinds_free(k);
    rt_kinds_free(NULL);
}

static void kinds_load_missing_file_fails(void)
{
    struct rt_kinds *k = NULL;
    struct wisp_err err = {0};
    CHECK_EQ_INT(rt_kinds_load("/nonexistent/kinds.json", &k, &err), -ENOENT);
    CHECK(strstr(err.msg, "/nonexistent/kinds.json") != NULL);
    CHECK(k == NULL);
}

static void kinds_random_input_never_crashes(void)
{
    static const char *pieces[] = {"{", "}", "[", "]", ",", ":", "\"kinds\"", "\"kind\"",
                                   "\"family\"", "\"needs\"", "\"code\"", "\"image\"",
                                   "\"default\"", "true", "\"x:1\"", "\"x\"", "1", "null"};
    unsigned x = 7;
    char buf[512];
    for (int it = 0; it < 2000; it++) {
        size_t len = 0;
        int n = 1 + (int)(x % 40);
        for (int i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            const char *p = pieces[(x >> 16) % WISP_ARRAY_LEN(pieces)];
            size_t pl = strlen(p);
            if (len + pl >= sizeof buf)
                break;
            memcpy(buf + len, p, pl);
            len += pl;
        }
        struct rt_kinds *k = NULL;
        int rc = rt_kinds_parse(buf, len, "fuzz", &k, NULL);
        CHECK(rc == 0 || rc == -EINVAL);
        CHECK((rc == 0) == (k != NULL));
        if (k) {
            for (size_t i = 0; i < rt_kinds_count(k); i++)
                CHECK(rt_kind_find(k, rt_kind_at(k, i)->kind) == rt_kind_at(k, i));
        }
        rt_kinds_free(k);
    }
}

static const struct check_test tests[] = {
    {"kinds_real_manifest_loads", kinds_real_manifest_loads},
    {"kinds_find_each_real_kind", kinds_find_each_real_kind},
    {"kinds_unknown_names_are_null", kinds_unknown_names_are_null},
    {"kinds_parse_errors", kinds_parse_errors},
    {"kinds_minimal_manifest_parses", kinds_minimal_manifest_parses},
    {"kinds_load_missing_file_fails", kinds_load_missing_file_fails},
    {"kinds_random_input_never_crashes", kinds_random_input_never_crashes},
};

CHECK_MAIN(tests)
