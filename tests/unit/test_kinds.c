/* tests/unit/test_kinds.c - the runtime kind manifest (runtimes/pool.h):
 * the real runtimes/kinds.json, manifests that must be refused, and the
 * resolution against what is installed. A fake probe stands in for the
 * machine ("node 18 is installed", "there is no node") so every case runs
 * anywhere; one case asks the real /usr/bin/node, one the real probe. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "pool.h"
#include "wisp_config.h"

#define MANIFEST WISP_SOURCE_DIR "/runtimes/kinds.json"

/* ==== a fake machine ================================================== */

struct fake {
    const char *node;   /* what /usr/bin/node --version prints; NULL: no node */
    const char *python; /* the same for /usr/bin/python3 */
    const char *other;  /* any other path */
    int fail_rc;        /* the rc for a missing one */
    unsigned calls;
    char last[128];
};

static int fake_probe(void *ctx, const char *interpreter, char *version, size_t cap)
{
    struct fake *f = ctx;
    f->calls++;
    snprintf(f->last, sizeof f->last, "%s", interpreter);
    const char *v = strcmp(interpreter, "/usr/bin/node") == 0      ? f->node
                    : strcmp(interpreter, "/usr/bin/python3") == 0 ? f->python
                                                                   : f->other;
    if (!v)
        return f->fail_rc ? f->fail_rc : -ENOENT;
    snprintf(version, cap, "%s", v);
    return 0;
}

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

/* The real manifest resolved on a machine with these interpreters. */
static struct rt_kinds *real_on(struct fake *f, const char *interpreters)
{
    struct rt_kinds *k = load_real();
    if (!k)
        return NULL;
    struct wisp_err err = {0};
    int rc = rt_kinds_resolve(k, interpreters, fake_probe, f, &err);
    if (rc)
        fprintf(stderr, "  resolve: %s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
    return k;
}

/* The listed kinds, comma-separated. */
static const char *listed(const struct rt_kinds *k, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < rt_kinds_count(k); i++)
        len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s%s", i ? "," : "",
                                rt_kind_at(k, i)->kind);
    return buf;
}

static const char *kind_of(const struct rt_kind *d)
{
    return d ? d->kind : "(none)";
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

/* ==== the manifest as read ============================================ */

static void kinds_real_manifest_loads(void)
{
    struct rt_kinds *k = load_real();
    if (!k)
        return;
    char buf[256];
    /* before resolution nobody knows node's version: no nodejs kind yet */
    CHECK_STREQ(listed(k, buf, sizeof buf), "python:3,native,blackbox,sequence");
    CHECK(rt_kind_find(k, "nodejs:default") == NULL);
    CHECK(rt_kind_at(k, rt_kinds_count(k)) == NULL);
    rt_kinds_free(k);

    struct fake f = {.node = "v18.19.0", .python = "Python 3.11.2"};
    k = real_on(&f, NULL);
    if (!k)
        return;
    CHECK_STREQ(listed(k, buf, sizeof buf), "python:3,nodejs:18,native,blackbox,sequence");
    /* every listed kind is found under its own name, and each family has
     * exactly one default */
    for (size_t i = 0; i < rt_kinds_count(k); i++) {
        const struct rt_kind *d = rt_kind_at(k, i);
        CHECK(rt_kind_find(k, d->kind) == d);
        CHECK(rt_kind_for_stored(k, d->kind) == d);
        CHECK(rt_kind_unavailable(k, d->kind) == NULL);
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
    struct fake f = {.node = "v20.20.2", .python = "Python 3.11.2"};
    struct rt_kinds *k = real_on(&f, "");
    if (!k)
        return;
    struct {
        const char *name, *kind, *family, *interp, *launcher;
        enum rt_needs needs;
        bool is_default;
    } rows[] = {
        {"python:3", "python:3", "python", "python3", "python/launcher.py", RT_NEEDS_CODE, true},
        {"nodejs:20", "nodejs:20", "nodejs", "node", "nodejs/launcher.js", RT_NEEDS_CODE, true},
        {"nodejs", "nodejs:20", "nodejs", "node", "nodejs/launcher.js", RT_NEEDS_CODE, true},
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
            /* Debian's interpreters, by path: workers never search PATH */
            CHECK(d->interpreter && d->interpreter[0] == '/' &&
                  is_program(d->interpreter, rows[i].interp));
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
    struct fake f = {.node = "v20.1.0", .python = "Python 3.11.2"};
    struct rt_kinds *k = real_on(&f, NULL);
    if (!k)
        return;
    const char *unknown[] = {"",          "python",         "python:2",       "nodejs:18",
                             "java:default", ":default",    "default",        "Python:3",
                             "python:3 ", "nodejs:20x",     "python:default:x", "sequence:1",
                             "nodejs:Default", "nodejs:{major}", "nodejs:", "NODEJS:20"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(unknown); i++) {
        const struct rt_kind *d = rt_kind_find(k, unknown[i]);
        if (d)
            fprintf(stderr, "  '%s' resolved to %s\n", unknown[i], d->kind);
        CHECK(d == NULL);
    }
    /* and what a stored action may not name either: only versions of a
     * versioned family are mapped */
    const char *never[] = {"python:2", "nodejs:20x", "nodejs:", "nodejs:{major}", "java:8",
                           "native:1", "nodejs:-1", "nodejs:1.2"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(never); i++) {
        const struct rt_kind *d = rt_kind_for_stored(k, never[i]);
        if (d)
            fprintf(stderr, "  stored '%s' ran as %s\n", never[i], d->kind);
        CHECK(d == NULL);
    }
    rt_kinds_free(k);
}

/* ==== resolution ====================================================== */

/* Issue 15: kinds.json said nodejs:20 where Debian 12 runs node 18. */
static void kinds_nodejs_is_named_after_the_installed_major(void)
{
    struct {
        const char *version, *kind;
    } rows[] = {{"v18.19.0", "nodejs:18"}, {"v20.20.2", "nodejs:20"}, {"v22.3.0", "nodejs:22"},
                {"v12.22.12", "nodejs:12"}, {"node v21.0.0-pre", "nodejs:21"}};
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        struct fake f = {.node = rows[i].version, .python = "Python 3.11.2"};
        struct rt_kinds *k = real_on(&f, NULL);
        if (!k)
            continue;
        const struct rt_kind *d = rt_kind_find(k, rows[i].kind);
        CHECK_STREQ(kind_of(d), rows[i].kind);
        CHECK(d && d->is_default && strcmp(d->family, "nodejs") == 0);
        CHECK(rt_kind_find(k, "nodejs:default") == d);
        CHECK(rt_kind_find(k, "nodejs") == d);
        /* exactly one nodejs kind is listed */
        int node_kinds = 0;
        for (size_t j = 0; j < rt_kinds_count(k); j++)
            node_kinds += strcmp(rt_kind_at(k, j)->family, "nodejs") == 0;
        CHECK_EQ_INT(node_kinds, 1);
        rt_kinds_free(k);
    }
}

static void kinds_stored_versions_run_on_the_installed_one(void)
{
    struct fake f = {.node = "v18.20.4", .python = "Python 3.11.2"};
    struct rt_kinds *k = real_on(&f, NULL);
    if (!k)
        return;
    const struct rt_kind *n18 = rt_kind_find(k, "nodejs:18");
    CHECK(n18 != NULL);
    /* a new action may not name a version that is not here ... */
    CHECK(rt_kind_find(k, "nodejs:20") == NULL);
    CHECK(rt_kind_unavailable(k, "nodejs:20") == NULL); /* not a failure: another version runs */
    /* ... but one stored while node 20 ran (or by an older Wisp) still runs */
    const char *stored[] = {"nodejs:20", "nodejs:18", "nodejs", "nodejs:default", "nodejs:6"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(stored); i++)
        CHECK_STREQ(kind_of(rt_kind_for_stored(k, stored[i])), "nodejs:18");
    CHECK_STREQ(kind_of(rt_kind_for_stored(k, "python:3")), "python:3");
    rt_kinds_free(k);
}

static void kinds_missing_interpreter_is_not_offered(void)
{
    char buf[256];
    struct fake f = {.node = NULL, .python = "Python 3.11.2"};
    struct rt_kinds *k = real_on(&f, NULL);
    if (!k)
        return;
    CHECK_STREQ(listed(k, buf, sizeof buf), "python:3,native,blackbox,sequence");
    const char *gone[] = {"nodejs:default", "nodejs", "nodejs:18", "nodejs:20"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(gone); i++) {
        CHECK(rt_kind_find(k, gone[i]) == NULL);
        CHECK(rt_kind_for_stored(k, gone[i]) == NULL);
        const char *why = rt_kind_unavailable(k, gone[i]);
        CHECK(why && strstr(why, "/usr/bin/node") && strstr(why, "No such file"));
    }
    CHECK(rt_kind_unavailable(k, "cobol:1") == NULL); /* unknown, not unavailable */
    CHECK(rt_kind_unavailable(k, "python:3") == NULL);
    rt_kinds_free(k);

    /* no python either; one that runs but fails --version; one that hangs */
    struct fake none = {.fail_rc = -EACCES};
    k = real_on(&none, NULL);
    if (k) {
        CHECK_STREQ(listed(k, buf, sizeof buf), "native,blackbox,sequence");
        const char *why = rt_kind_unavailable(k, "python:default");
        CHECK(why && strstr(why, "/usr/bin/python3 cannot run here: Permission denied"));
        rt_kinds_free(k);
    }
    struct fake broken = {.node = "v18.0.0", .python = NULL, .fail_rc = -ENOEXEC};
    k = real_on(&broken, NULL);
    if (k) {
        CHECK_STREQ(listed(k, buf, sizeof buf), "nodejs:18,native,blackbox,sequence");
        const char *why = rt_kind_unavailable(k, "python:3");
        CHECK(why && strstr(why, "--version failed"));
        rt_kinds_free(k);
    }
    struct fake slow = {.node = NULL, .python = "Python 3.11.2", .fail_rc = -ETIMEDOUT};
    k = real_on(&slow, NULL);
    if (k) {
        const char *why = rt_kind_unavailable(k, "nodejs");
        CHECK(why && strstr(why, "did not answer"));
        rt_kinds_free(k);
    }
}

static void kinds_version_must_have_a_number(void)
{
    const char *bad[] = {"", "node", "vX.Y", "version unknown"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        struct fake f = {.node = bad[i], .python = "Python 3"};
        struct rt_kinds *k = real_on(&f, NULL);
        if (!k)
            continue;
        CHECK(rt_kind_find(k, "nodejs:default") == NULL);
        const char *why = rt_kind_unavailable(k, "nodejs:default");
        CHECK(why && strstr(why, "names no version"));
        /* python:3 is not named by its version: any answer will do */
        CHECK(rt_kind_find(k, "python:3") != NULL);
        rt_kinds_free(k);
    }
}

static void kinds_each_interpreter_is_asked_once(void)
{
    struct fake f = {.node = "v18.1.0", .python = "Python 3.11.2"};
    struct rt_kinds *k = real_on(&f, NULL);
    if (!k)
        return;
    CHECK_EQ_INT(f.calls, 2); /* python3 and node */
    struct wisp_err err = {0};
    /* resolved once: a second call (main.c and pool_open both may) asks nothing */
    CHECK_EQ_INT(rt_kinds_resolve(k, "nodejs=/opt/node/bin/node", fake_probe, &f, &err), 0);
    CHECK_EQ_INT(f.calls, 2);
    CHECK_STREQ(kind_of(rt_kind_find(k, "nodejs:default")), "nodejs:18");
    rt_kinds_free(k);

    /* two kinds on one interpreter: one question */
    static const char two[] =
        "{\"kinds\": [{\"kind\": \"lua:{major}\", \"family\": \"lua\", \"default\": true, "
        "\"interpreter\": \"/usr/bin/lua\", \"launcher\": \"l.lua\", \"needs\": \"code\"}, "
        "{\"kind\": \"luajit\", \"family\": \"lua\", \"interpreter\": \"/usr/bin/lua\", "
        "\"launcher\": \"j.lua\", \"needs\": \"code\"}]}";
    struct fake g = {.other = "Lua 5.4.4  Copyright (C) 1994-2022"};
    CHECK_EQ_INT(rt_kinds_parse(two, strlen(two), "mem", &k, &err), 0);
    if (!k)
        return;
    CHECK_EQ_INT(rt_kinds_resolve(k, NULL, fake_probe, &g, &err), 0);
    CHECK_EQ_INT(g.calls, 1);
    char buf[64];
    CHECK_STREQ(listed(k, buf, sizeof buf), "lua:5,luajit");
    rt_kinds_free(k);
}

static void kinds_interpreter_overrides(void)
{
    /* a node elsewhere, named by any name of the kind: its version names it */
    const char *keys[] = {"nodejs:20", "nodejs:18", "nodejs", "nodejs:default"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(keys); i++) {
        char spec[128];
        snprintf(spec, sizeof spec, "%s=/opt/node20/bin/node", keys[i]);
        struct fake f = {.node = "v18.19.0", .python = "Python 3.11.2", .other = "v20.11.1"};
        struct rt_kinds *k = real_on(&f, spec);
        if (!k)
            continue;
        const struct rt_kind *d = rt_kind_find(k, "nodejs:default");
        CHECK_STREQ(kind_of(d), "nodejs:20");
        CHECK(d && strcmp(d->interpreter, "/opt/node20/bin/node") == 0);
        CHECK(rt_kind_find(k, "nodejs:18") == NULL);
        CHECK_EQ_INT(f.calls, 2); /* /usr/bin/node is no longer asked */
        rt_kinds_free(k);
    }
    /* python elsewhere; and an override that does not run */
    struct fake f = {.node = "v18.19.0", .python = NULL, .other = "Python 3.12.1"};
    struct rt_kinds *k = real_on(&f, "python:3=/opt/py/bin/python3");
    if (k) {
        const struct rt_kind *d = rt_kind_find(k, "python:default");
        CHECK(d && strcmp(d->interpreter, "/opt/py/bin/python3") == 0);
        rt_kinds_free(k);
    }
    struct fake g = {.node = "v18.19.0", .python = "Python 3.11.2", .other = NULL};
    k = real_on(&g, "nodejs=/nowhere/node");
    if (k) {
        CHECK(rt_kind_find(k, "nodejs") == NULL);
        const char *why = rt_kind_unavailable(k, "nodejs:18");
        CHECK(why && strstr(why, "/nowhere/node"));
        rt_kinds_free(k);
    }
    /* refused specs */
    struct {
        const char *spec, *msg;
    } bad[] = {
        {"nodejs", "is not kind=value"},
        {"cobol:1=/usr/bin/cobc", "'cobol:1' is not a kind with a launcher"},
        {"native=/bin/sh", "'native' is not a kind with a launcher"},
        {"python:3=python3", "not an absolute path"},
        {"nodejs:20x=/usr/bin/node", "is not a kind with a launcher"},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        struct rt_kinds *r = load_real();
        if (!r)
            continue;
        struct fake h = {.node = "v18.0.0", .python = "Python 3"};
        struct wisp_err err = {0};
        CHECK_EQ_INT(rt_kinds_resolve(r, bad[i].spec, fake_probe, &h, &err), -EINVAL);
        if (!strstr(err.msg, bad[i].msg))
            fprintf(stderr, "  '%s': '%s' lacks '%s'\n", bad[i].spec, err.msg, bad[i].msg);
        CHECK(strstr(err.msg, bad[i].msg) != NULL);
        CHECK_EQ_INT(h.calls, 0); /* refused before anything runs */
        rt_kinds_free(r);
    }
}

static void kinds_resolved_name_must_be_free(void)
{
    static const char text[] =
        "{\"kinds\": [{\"kind\": \"x:{major}\", \"family\": \"x\", \"default\": true, "
        "\"interpreter\": \"/usr/bin/x\", \"launcher\": \"x.x\", \"needs\": \"code\"}, "
        "{\"kind\": \"x:5\", \"family\": \"x\", \"needs\": \"code\"}]}";
    struct rt_kinds *k = NULL;
    struct wisp_err err = {0};
    CHECK_EQ_INT(rt_kinds_parse(text, strlen(text), "mem", &k, &err), 0);
    if (!k)
        return;
    struct fake f = {.other = "x 5.0"};
    CHECK_EQ_INT(rt_kinds_resolve(k, NULL, fake_probe, &f, &err), -EINVAL);
    CHECK(strstr(err.msg, "x:{major} resolves to x:5") != NULL);
    rt_kinds_free(k);
}

/* The real probe: a program is asked for its version by path, as the
 * workers' user would run it. */
static void kinds_real_probe_runs_the_interpreter(void)
{
    char dir[] = "/tmp/wisp-kinds-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char ok[64], bad[64], version[64];
    snprintf(ok, sizeof ok, "%s/ok", dir);
    snprintf(bad, sizeof bad, "%s/bad", dir);
    FILE *f = fopen(ok, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("#!/bin/sh\n[ \"$1\" = --version ] && echo v18.20.4 && echo second line\n", f);
        fclose(f);
    }
    f = fopen(bad, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("#!/bin/sh\necho 'bad option' >&2\nexit 9\n", f);
        fclose(f);
    }
    CHECK(chmod(ok, 0755) == 0 && chmod(bad, 0755) == 0);
    CHECK_EQ_INT(rt_probe_interpreter(NULL, ok, version, sizeof version), 0);
    CHECK_STREQ(version, "v18.20.4");
    CHECK_EQ_INT(rt_probe_interpreter(NULL, bad, version, sizeof version), -ENOEXEC);
    CHECK_STREQ(version, "bad option");
    CHECK_EQ_INT(rt_probe_interpreter(NULL, "/nonexistent/node", version, sizeof version),
                 -ENOENT);
    CHECK_EQ_INT(rt_probe_interpreter(NULL, "node", version, sizeof version), -ENOENT);
    /* not executable */
    CHECK(chmod(ok, 0644) == 0);
    CHECK_EQ_INT(rt_probe_interpreter(NULL, ok, version, sizeof version), -EACCES);
    /* as an unprivileged user, where wispd runs as root */
    if (geteuid() == 0) {
        CHECK(chmod(ok, 0755) == 0 && chmod(dir, 0755) == 0);
        struct rt_probe_user nobody = {.drop_privs = true, .uid = 65534, .gid = 65534};
        CHECK_EQ_INT(rt_probe_interpreter(&nobody, ok, version, sizeof version), 0);
        CHECK(chmod(ok, 0700) == 0); /* root's alone */
        CHECK_EQ_INT(rt_probe_interpreter(&nobody, ok, version, sizeof version), -EACCES);
    }
    unlink(ok);
    unlink(bad);
    rmdir(dir);
}

/* The real manifest on this machine: node is offered exactly when
 * /usr/bin/node runs, under its own major version. */
static void kinds_real_manifest_on_this_machine(void)
{
    struct rt_kinds *k = load_real();
    if (!k)
        return;
    struct wisp_err err = {0};
    CHECK_EQ_INT(rt_kinds_resolve(k, NULL, rt_probe_interpreter, NULL, &err), 0);
    const struct rt_kind *d = rt_kind_find(k, "nodejs:default");
    if (access("/usr/bin/node", X_OK) == 0) {
        char want[32] = "nodejs:?";
        FILE *p = popen("/usr/bin/node -p 'process.versions.node.split(\".\")[0]'", "r");
        char major[16] = "";
        if (p) {
            if (fgets(major, sizeof major, p))
                major[strcspn(major, "\n")] = '\0';
            pclose(p);
        }
        snprintf(want, sizeof want, "nodejs:%s", major);
        CHECK_STREQ(kind_of(d), want);
        fprintf(stderr, "  this machine: %s\n", kind_of(d));
    } else {
        CHECK(d == NULL);
    }
    rt_kinds_free(k);
}

/* ==== refused manifests =============================================== */

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
        /* versioned kinds: one {major}, and an interpreter to ask */
        {"{\"kinds\": [{\"kind\": \"x:{major}\", \"family\": \"x\", \"needs\": \"code\"}]}",
         "interpreter"},
        {"{\"kinds\": [{\"kind\": \"x:{major}.{major}\", \"family\": \"x\", \"interpreter\": "
         "\"/x\", \"needs\": \"code\"}]}",
         "kinds[0]"},
        {"{\"kinds\": [{\"kind\": \"x:{minor}\", \"family\": \"x\", \"interpreter\": \"/x\", "
         "\"needs\": \"code\"}]}",
         "kinds[0]"},
        /* aliases: names, unique across the manifest */
        {"{\"kinds\": [{\"kind\": \"x:1\", \"family\": \"x\", \"needs\": \"code\", \"aliases\": "
         "\"x\"}]}",
         "aliases"},
        {"{\"kinds\": [{\"kind\": \"x:1\", \"family\": \"x\", \"needs\": \"code\", \"aliases\": "
         "[\"\"]}]}",
         "aliases"},
        {"{\"kinds\": [{\"kind\": \"x:1\", \"family\": \"x\", \"needs\": \"code\", \"aliases\": "
         "[\"x:default\"]}]}",
         "aliases"},
        {"{\"kinds\": [{\"kind\": \"x:1\", \"family\": \"x\", \"needs\": \"code\", \"aliases\": "
         "[\"x\", \"x\"]}]}",
         "twice"},
        {"{\"kinds\": [{\"kind\": \"x:1\", \"family\": \"x\", \"needs\": \"code\"}, {\"kind\": "
         "\"y\", \"family\": \"y\", \"needs\": \"code\", \"aliases\": [\"x:1\"]}]}",
         "twice"},
        {"{\"kinds\": [{\"kind\": \"x:1\", \"family\": \"x\", \"needs\": \"code\", \"aliases\": "
         "[\"y\"]}, {\"kind\": \"y\", \"family\": \"y\", \"needs\": \"code\"}]}",
         "twice"},
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
        "{\"kind\": \"lua:4\", \"family\": \"lua\", \"needs\": \"code\", \"aliases\": [\"lua\"]}]}";
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
    CHECK(rt_kind_find(k, "lua") == d); /* an alias finds it ... */
    for (size_t i = 0; i < rt_kinds_count(k); i++) /* ... and is not listed */
        CHECK(strcmp(rt_kind_at(k, i)->kind, "lua") != 0);
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
                                   "\"default\"", "true", "\"x:1\"", "\"x\"", "1", "null",
                                   "\"x:{major}\"", "\"aliases\"", "\"interpreter\"", "\"/x\""};
    unsigned x = 7;
    char buf[512];
    for (int it = 0; it < 4000; it++) {
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
            struct fake f = {.other = (x >> 8) & 1 ? "v7.1" : NULL};
            rc = rt_kinds_resolve(k, NULL, fake_probe, &f, NULL);
            CHECK(rc == 0 || rc == -EINVAL);
            for (size_t i = 0; i < rt_kinds_count(k); i++) {
                CHECK(rt_kind_find(k, rt_kind_at(k, i)->kind) == rt_kind_at(k, i));
                CHECK(rt_kind_for_stored(k, rt_kind_at(k, i)->kind) == rt_kind_at(k, i));
            }
        }
        rt_kinds_free(k);
    }
}

static const struct check_test tests[] = {
    {"kinds_real_manifest_loads", kinds_real_manifest_loads},
    {"kinds_find_each_real_kind", kinds_find_each_real_kind},
    {"kinds_unknown_names_are_null", kinds_unknown_names_are_null},
    {"kinds_nodejs_is_named_after_the_installed_major",
     kinds_nodejs_is_named_after_the_installed_major},
    {"kinds_stored_versions_run_on_the_installed_one",
     kinds_stored_versions_run_on_the_installed_one},
    {"kinds_missing_interpreter_is_not_offered", kinds_missing_interpreter_is_not_offered},
    {"kinds_version_must_have_a_number", kinds_version_must_have_a_number},
    {"kinds_each_interpreter_is_asked_once", kinds_each_interpreter_is_asked_once},
    {"kinds_interpreter_overrides", kinds_interpreter_overrides},
    {"kinds_resolved_name_must_be_free", kinds_resolved_name_must_be_free},
    {"kinds_real_probe_runs_the_interpreter", kinds_real_probe_runs_the_interpreter},
    {"kinds_real_manifest_on_this_machine", kinds_real_manifest_on_this_machine},
    {"kinds_parse_errors", kinds_parse_errors},
    {"kinds_minimal_manifest_parses", kinds_minimal_manifest_parses},
    {"kinds_load_missing_file_fails", kinds_load_missing_file_fails},
    {"kinds_random_input_never_crashes", kinds_random_input_never_crashes},
};

CHECK_MAIN(tests)
