/* tests/unit/test_entity.c - entity names, references and the documents
 * built for actions, packages, triggers and rules (core/entity.h), with the
 * real runtime manifest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "check.h"
#include "entity.h"
#include "pool.h"
#include "wisp_config.h"
#include "wjson.h"

#define NOW 1700000000000LL

static struct rt_kinds *g_kinds;

static struct entity_env env_std(void)
{
    struct entity_env e = {.kinds = g_kinds,
                           .max_code_bytes = 1000,
                           .max_params_bytes = 200,
                           .sequence_max = 3,
                           .concurrency_max = 500};
    return e;
}

static void free_kinds(void)
{
    rt_kinds_free(g_kinds);
    g_kinds = NULL;
}

/* A machine where python3 and node 20 run: the manifest is resolved as on
 * one, whatever this machine has (test_kinds holds the resolution itself). */
static int node20_probe(void *ctx, const char *interpreter, char *version, size_t cap)
{
    (void)ctx;
    snprintf(version, cap, "%s", strstr(interpreter, "node") ? "v20.11.1" : "Python 3.11.2");
    return 0;
}

static void need_kinds(void)
{
    if (g_kinds)
        return;
    atexit(free_kinds);
    struct wisp_err err = {0};
    int rc = rt_kinds_load(WISP_SOURCE_DIR "/runtimes/kinds.json", &g_kinds, &err);
    if (rc == 0)
        rc = rt_kinds_resolve(g_kinds, NULL, node20_probe, NULL, &err);
    if (rc)
        fprintf(stderr, "kinds: %s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
}

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j)
        fprintf(stderr, "bad test JSON '%s': %s\n", text, je.text);
    CHECK(j != NULL);
    return j;
}

/* Builds an action from body text (old may be NULL). Returns rc; *out set
 * on success. */
static int action(const struct entity_env *env, const char *body, const json_t *old,
                  json_t **out, struct wisp_err *err)
{
    json_t *b = J(body);
    memset(err, 0, sizeof *err);
    *out = NULL;
    int rc = entity_build_action(env, b, old, "me", "act", "me", NOW, out, err);
    if (rc == 0)
        CHECK(*out != NULL);
    else
        CHECK(*out == NULL);
    json_decref(b);
    return rc;
}

static json_int_t limit(const json_t *doc, const char *name)
{
    return json_integer_value(json_object_get(json_object_get(doc, "limits"), name));
}

/* ==== names ============================================================= */

static void entity_name_valid_table(void)
{
    char max_ok[ENTITY_NAME_MAX + 1], too_long[ENTITY_NAME_MAX + 2];
    memset(max_ok, 'a', ENTITY_NAME_MAX);
    max_ok[ENTITY_NAME_MAX] = '\0';
    memset(too_long, 'a', ENTITY_NAME_MAX + 1);
    too_long[ENTITY_NAME_MAX + 1] = '\0';
    const char *good[] = {"a",   "a b", "a@b.c-d", "_x",  "x_",   "_",      "a-",   "a@", "a.",
                          "ab",  "A9",  "a  b",    "9",   "a.b.c", "hello world", "x-y z@w.v",
                          max_ok};
    for (size_t i = 0; i < WISP_ARRAY_LEN(good); i++) {
        struct wisp_err err = {0};
        int rc = entity_name_valid(good[i], "action", &err);
        if (rc)
            fprintf(stderr, "  '%.40s' refused: %s\n", good[i], err.msg);
        CHECK_EQ_INT(rc, 0);
    }
    const char *bad[] = {"",    " a",  "a ",   "-a",   "@a",  ".a",   "a/b",  "a?b", "a#b",
                         "a\tb", "a:b", "a\nb", " ",   "a b ", "\xc3\xa9", "a\xc3\xa9", "a*",
                         "a%b", "a+b", "a,b",  "a!",  too_long};
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        struct wisp_err err = {0};
        int rc = entity_name_valid(bad[i], "action", &err);
        if (rc != -EINVAL)
            fprintf(stderr, "  '%.40s' accepted\n", bad[i]);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK(strstr(err.msg, "action") != NULL);
    }
}

static void entity_parse_ref_table(void)
{
    struct {
        const char *ref, *ns, *path;
    } good[] = {
        {"/ns/a", "ns", "a"},
        {"/ns/p/a", "ns", "p/a"},
        {"/_/a", "me", "a"},
        {"/_/p/a", "me", "p/a"},
        {"a", "me", "a"},
        {"p/a", "me", "p/a"},
        {"/whisk.system/utils/echo", "whisk.system", "utils/echo"},
        {"/me/a b", "me", "a b"},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(good); i++) {
        char ns[AUTH_NS_MAX] = "", path[2 * ENTITY_NAME_MAX + 2] = "";
        struct wisp_err err = {0};
        int rc = entity_parse_ref(good[i].ref, "me", ns, path, &err);
        if (rc)
            fprintf(stderr, "  '%s': %s\n", good[i].ref, err.msg);
        CHECK_EQ_INT(rc, 0);
        CHECK_STREQ(ns, good[i].ns);
        CHECK_STREQ(path, good[i].path);
    }
    char long_ref[1200];
    memset(long_ref, 'a', sizeof long_ref - 1);
    long_ref[sizeof long_ref - 1] = '\0';
    const char *bad[] = {"/ns",    "/a/b/c/d", "",      "/",       "//a",  "/ns/",
                         "a/b/c",  "p/",       "/ns//a", "/bad ns/a", "/ns/-a", "/ns/p/-a",
                         "/a/b/c/d/e", "/_",   long_ref};
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        char ns[AUTH_NS_MAX], path[2 * ENTITY_NAME_MAX + 2];
        struct wisp_err err = {0};
        int rc = entity_parse_ref(bad[i], "me", ns, path, &err);
        if (rc != -EINVAL)
            fprintf(stderr, "  '%.40s' accepted\n", bad[i]);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK(err.msg[0] != '\0');
    }
    /* longest valid parts fit the documented buffers */
    char ref[AUTH_NS_MAX + 2 * ENTITY_NAME_MAX + 4];
    char nsn[AUTH_NS_MAX], nm[ENTITY_NAME_MAX + 1];
    memset(nsn, 'n', AUTH_NS_MAX - 1);
    nsn[AUTH_NS_MAX - 1] = '\0';
    memset(nm, 'x', ENTITY_NAME_MAX);
    nm[ENTITY_NAME_MAX] = '\0';
    snprintf(ref, sizeof ref, "/%s/%s/%s", nsn, nm, nm);
    char ns[AUTH_NS_MAX], path[2 * ENTITY_NAME_MAX + 2];
    CHECK_EQ_INT(entity_parse_ref(ref, "me", ns, path, NULL), 0);
    CHECK_EQ_INT(strlen(ns), AUTH_NS_MAX - 1);
    CHECK_EQ_INT(strlen(path), 2 * ENTITY_NAME_MAX + 1);
}

static void entity_version_bump_table(void)
{
    struct {
        const char *in, *out;
    } rows[] = {
        {"0.0.1", "0.0.2"}, {"1.2.3", "1.2.4"}, {"0.0.9", "0.0.10"}, {"3.0.99", "3.0.100"},
        {"abc", "0.0.1"},   {"", "0.0.1"},      {"1.2", "0.0.1"},    {"1.2.3x", "0.0.1"},
        {"1.2.3.4", "0.0.1"}, {NULL, "0.0.1"},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        char out[32] = "unset";
        entity_version_bump(rows[i].in, out);
        CHECK_STREQ(out, rows[i].out);
    }
}

/* ==== actions: create =================================================== */

static void entity_action_create_fills_defaults(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *doc;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"python:3\", \"code\": \"def main(a): return a\"}}",
                        NULL, &doc, &err), 0);
    if (!doc)
        return;
    CHECK_STREQ(wjson_str(doc, "namespace"), "me");
    CHECK_STREQ(wjson_str(doc, "name"), "act");
    CHECK_STREQ(wjson_str(doc, "version"), "0.0.1");
    CHECK_EQ_INT(json_integer_value(json_object_get(doc, "updated")), NOW);
    CHECK(json_is_false(json_object_get(doc, "publish")));
    json_t *ex = json_object_get(doc, "exec");
    CHECK_STREQ(wjson_str(ex, "kind"), "python:3");
    CHECK_STREQ(wjson_str(ex, "code"), "def main(a): return a");
    CHECK(json_is_false(json_object_get(ex, "binary")));
    CHECK_EQ_INT(limit(doc, "timeout"), 60000);
    CHECK_EQ_INT(limit(doc, "memory"), 256);
    CHECK_EQ_INT(limit(doc, "logs"), 10);
    CHECK_EQ_INT(limit(doc, "concurrency"), 1);
    CHECK(json_is_array(json_object_get(doc, "parameters")));
    CHECK_EQ_INT(json_array_size(json_object_get(doc, "parameters")), 0);
    json_t *ann = json_object_get(doc, "annotations");
    CHECK_EQ_INT(json_array_size(ann), 1);
    CHECK_STREQ(json_string_value(wjson_kv_get(ann, "exec")), "python:3");
    /* stored documents must stay within what the codec reads back */
    CHECK(wjson_depth(doc) <= WJSON_MAX_DEPTH);
    json_decref(doc);
}

static void entity_action_needs_exec_on_create(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *doc;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env, "{}", NULL, &doc, &err), -EINVAL);
    CHECK(strstr(err.msg, "exec undefined") != NULL);
    CHECK_EQ_INT(action(&env, "{\"exec\": null}", NULL, &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": \"python\"}", NULL, &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {}}", NULL, &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": 3, \"code\": \"x\"}}", NULL, &doc, &err),
                 -EINVAL);
    CHECK_EQ_INT(action(&env, "[1]", NULL, &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "\"body\"", NULL, &doc, &err), -EINVAL);
}

static void entity_action_kind_checked_against_manifest(void)
{
    need_kinds();
    struct entity_env env = env_std();
    struct {
        const char *kind, *stored;
    } ok[] = {{"python:3", "python:3"},       {"python:default", "python:3"},
              {"nodejs:20", "nodejs:20"},     {"nodejs:default", "nodejs:20"},
              {"nodejs", "nodejs:20"},        {"native", "native"},
              {"native:default", "native"}};
    for (size_t i = 0; i < WISP_ARRAY_LEN(ok); i++) {
        char body[200];
        snprintf(body, sizeof body, "{\"exec\": {\"kind\": \"%s\", \"code\": \"x\"}}", ok[i].kind);
        json_t *doc;
        struct wisp_err err;
        int rc = action(&env, body, NULL, &doc, &err);
        if (rc)
            fprintf(stderr, "  kind %s: %s\n", ok[i].kind, err.msg);
        CHECK_EQ_INT(rc, 0);
        CHECK_STREQ(wjson_str(json_object_get(doc, "exec"), "kind"), ok[i].stored);
        CHECK_STREQ(json_string_value(wjson_kv_get(json_object_get(doc, "annotations"), "exec")),
                    ok[i].stored);
        json_decref(doc);
    }
    const char *bad[] = {"cobol:1", "python", "python:2", "java:default", "", "NODEJS:20"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        char body[200];
        snprintf(body, sizeof body, "{\"exec\": {\"kind\": \"%s\", \"code\": \"x\"}}", bad[i]);
        json_t *doc;
        struct wisp_err err;
        CHECK_EQ_INT(action(&env, body, NULL, &doc, &err), -EINVAL);
        CHECK(strstr(err.msg, "not supported") != NULL);
    }
}

static void entity_action_code_rules(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *doc;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"python:3\"}}", NULL, &doc, &err), -EINVAL);
    CHECK(strstr(err.msg, "exec.code") != NULL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"python:3\", \"code\": 5}}", NULL, &doc, &err),
                 -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"python:3\", \"code\": null}}", NULL, &doc,
                        &err),
                 -EINVAL);
    /* main */
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"nodejs:20\", \"code\": \"x\", \"main\": \"run\"}}",
                        NULL, &doc, &err), 0);
    CHECK_STREQ(wjson_str(json_object_get(doc, "exec"), "main"), "run");
    json_decref(doc);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"nodejs:20\", \"code\": \"x\", \"main\": \"\"}}",
                        NULL, &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"nodejs:20\", \"code\": \"x\", \"main\": 1}}",
                        NULL, &doc, &err), -EINVAL);
}

static void entity_action_binary_code_must_be_base64(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *doc;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"python:3\", \"binary\": true, \"code\": \"UEsDBBQAAAAI\"}}",
                        NULL, &doc, &err), 0);
    CHECK(json_is_true(json_object_get(json_object_get(doc, "exec"), "binary")));
    json_decref(doc);
    const char *bad[] = {"not base64!", "UEsD*BBQ", "", "====", "\xc3\xa9\xc3\xa9"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        char body[200];
        snprintf(body, sizeof body,
                 "{\"exec\": {\"kind\": \"python:3\", \"binary\": true, \"code\": \"%s\"}}", bad[i]);
        int rc = action(&env, body, NULL, &doc, &err);
        if (rc != -EINVAL)
            fprintf(stderr, "  binary code '%s' accepted\n", bad[i]);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK(rc != -EINVAL || strstr(err.msg, "base64") != NULL);
        json_decref(doc);
    }
    /* without the flag, as OpenWhisk: all-base64 code is binary, text is not */
    static const struct {
        const char *code;
        bool binary;
    } infer[] = {{"UEsDBBQAAAAI", true}, {"UEsDBA==", true}, {"UEsDBA=", false},
                 {"def main(a): return a", false}, {"function main(a) { return a }", false},
                 {"abc", false}, {"YWJj\\nZGVm", false}};
    for (size_t i = 0; i < WISP_ARRAY_LEN(infer); i++) {
        char body[200];
        snprintf(body, sizeof body, "{\"exec\": {\"kind\": \"python:3\", \"code\": \"%s\"}}",
                 infer[i].code);
        CHECK_EQ_INT(action(&env, body, NULL, &doc, &err), 0);
        bool got = json_is_true(json_object_get(json_object_get(doc, "exec"), "binary"));
        if (got != infer[i].binary)
            fprintf(stderr, "  code '%s': binary %d\n", infer[i].code, (int)got);
        CHECK(got == infer[i].binary);
        json_decref(doc);
    }
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"python:3\", \"binary\": \"yes\", \"code\": \"x\"}}",
                        NULL, &doc, &err), -EINVAL);
}

static void entity_action_code_size_limit_is_e2big(void)
{
    need_kinds();
    struct entity_env env = env_std(); /* 1000 bytes */
    char *body = malloc(1200);
    char *code = malloc(1100);
    memset(code, 'x', 1001);
    code[1000] = '\0';
    snprintf(body, 1200, "{\"exec\": {\"kind\": \"python:3\", \"code\": \"%s\"}}", code);
    json_t *doc;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env, body, NULL, &doc, &err), 0);
    json_decref(doc);
    code[1000] = 'x';
    code[1001] = '\0';
    snprintf(body, 1200, "{\"exec\": {\"kind\": \"python:3\", \"code\": \"%s\"}}", code);
    CHECK_EQ_INT(action(&env, body, NULL, &doc, &err), -E2BIG);
    CHECK_EQ_INT(err.code, -E2BIG);
    CHECK_STREQ(err.msg, "exec larger than allowed: 1001 > 1000 bytes.");
    free(body);
    free(code);
}

static void entity_action_limits_ranges(void)
{
    need_kinds();
    struct entity_env env = env_std();
    struct {
        const char *name, *value;
        int rc;
    } rows[] = {
        {"timeout", "99", -EINVAL},      {"timeout", "100", 0},        {"timeout", "300000", 0},
        {"timeout", "300001", -EINVAL},  {"memory", "127", -EINVAL},   {"memory", "128", 0},
        {"memory", "512", 0},            {"memory", "513", -EINVAL},   {"logs", "-1", -EINVAL},
        {"logs", "0", 0},                {"logs", "10", 0},            {"logs", "11", -EINVAL},
        {"concurrency", "0", -EINVAL},   {"concurrency", "1", 0},      {"concurrency", "500", 0},
        {"concurrency", "501", -EINVAL}, {"timeout", "\"60000\"", -EINVAL},
        {"timeout", "1000.5", -EINVAL},  {"memory", "true", -EINVAL},  {"memory", "[256]", -EINVAL},
        {"timeout", "null", 0},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        char body[300];
        snprintf(body, sizeof body,
                 "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"limits\": {\"%s\": %s}}",
                 rows[i].name, rows[i].value);
        json_t *doc;
        struct wisp_err err;
        int rc = action(&env, body, NULL, &doc, &err);
        if (rc != rows[i].rc)
            fprintf(stderr, "  limits.%s = %s: rc %d (%s)\n", rows[i].name, rows[i].value, rc,
                    err.msg);
        CHECK_EQ_INT(rc, rows[i].rc);
        if (rc == 0 && strcmp(rows[i].value, "null") != 0)
            CHECK_EQ_INT(limit(doc, rows[i].name), atoll(rows[i].value));
        if (rc < 0)
            CHECK(strstr(err.msg, rows[i].name) != NULL);
        json_decref(doc);
    }
    json_t *doc;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"limits\": {\"timeout\": 99}}",
                        NULL, &doc, &err), -EINVAL);
    CHECK_STREQ(err.msg, "timeout 99 milliseconds is outside the allowed range 100 to 300000.");
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"limits\": 5}",
                        NULL, &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"limits\": null}",
                        NULL, &doc, &err), 0);
    CHECK_EQ_INT(limit(doc, "memory"), 256);
    json_decref(doc);
}

static void entity_action_parameters_shape_and_duplicates(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *doc;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env,
                        "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"parameters\": "
                        "[{\"key\": \"a\", \"value\": 1}, {\"key\": \"b\", \"value\": \"x\"}, "
                        "{\"key\": \"a\", \"value\": 2}]}",
                        NULL, &doc, &err), 0);
    json_t *p = json_object_get(doc, "parameters");
    CHECK_EQ_INT(json_array_size(p), 2);
    CHECK_EQ_INT(json_integer_value(wjson_kv_get(p, "a")), 2);
    CHECK_STREQ(json_string_value(wjson_kv_get(p, "b")), "x");
    json_decref(doc);
    /* init is allowed on action parameters */
    CHECK_EQ_INT(action(&env,
                        "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"parameters\": "
                        "[{\"key\": \"a\", \"value\": null, \"init\": true}]}",
                        NULL, &doc, &err), 0);
    CHECK(json_is_true(json_object_get(json_array_get(json_object_get(doc, "parameters"), 0), "init")));
    json_decref(doc);
    const char *bad[] = {
        "{\"a\": 1}",
        "\"a=1\"",
        "[1]",
        "[{\"key\": \"a\"}]",
        "[{\"value\": 1}]",
        "[{\"key\": \"\", \"value\": 1}]",
        "[{\"key\": 5, \"value\": 1}]",
        "[{\"key\": \"a\", \"value\": 1, \"init\": \"yes\"}]",
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        char body[300];
        snprintf(body, sizeof body,
                 "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"parameters\": %s}", bad[i]);
        int rc = action(&env, body, NULL, &doc, &err);
        if (rc != -EINVAL)
            fprintf(stderr, "  parameters %s accepted\n", bad[i]);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK(strstr(err.msg, "parameters") != NULL);
        json_decref(doc);
    }
}

static void entity_action_parameters_size_limit_is_e2big(void)
{
    need_kinds();
    struct entity_env env = env_std(); /* 200 bytes */
    char big[400], body[600];
    memset(big, 'v', 250);
    big[250] = '\0';
    snprintf(body, sizeof body,
             "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"parameters\": [{\"key\": "
             "\"a\", \"value\": \"%s\"}]}",
             big);
    json_t *doc;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env, body, NULL, &doc, &err), -E2BIG);
    CHECK(strncmp(err.msg, "parameters larger than allowed: ", 32) == 0);
    CHECK(strstr(err.msg, " > 200 bytes.") != NULL);
    /* annotations have the same bound */
    snprintf(body, sizeof body,
             "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"annotations\": [{\"key\": "
             "\"a\", \"value\": \"%s\"}]}",
             big);
    CHECK_EQ_INT(action(&env, body, NULL, &doc, &err), -E2BIG);
    CHECK(strncmp(err.msg, "annotations larger than allowed: ", 33) == 0);
    /* just under the bound is fine */
    big[150] = '\0';
    snprintf(body, sizeof body,
             "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"parameters\": [{\"key\": "
             "\"a\", \"value\": \"%s\"}]}",
             big);
    CHECK_EQ_INT(action(&env, body, NULL, &doc, &err), 0);
    json_decref(doc);
}

static json_t *nested_value(int depth)
{
    json_t *v = json_integer(1);
    for (int i = 0; i < depth; i++) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        v = a;
    }
    return v;
}

static void entity_action_parameters_too_deep_is_einval(void)
{
    need_kinds();
    struct entity_env env = env_std();
    env.max_params_bytes = 1 << 20;
    /* parameters = [ {key, value: V} ]: depth 2 + depth(V) */
    for (int d = WJSON_MAX_DEPTH - 3; d <= WJSON_MAX_DEPTH + 20; d++) {
        json_t *body = J("{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}}");
        json_t *params = json_pack("[{s:s, s:o}]", "key", "deep", "value", nested_value(d));
        json_object_set_new(body, "parameters", params);
        json_t *doc = NULL;
        struct wisp_err err = {0};
        int rc = entity_build_action(&env, body, NULL, "me", "act", "me", NOW, &doc, &err);
        if (2 + d <= WJSON_MAX_DEPTH) {
            CHECK_EQ_INT(rc, 0);
            CHECK(doc && wjson_depth(json_object_get(doc, "parameters")) == 2 + d);
        } else {
            if (rc != -EINVAL)
                fprintf(stderr, "  depth %d: rc %d\n", 2 + d, rc);
            CHECK_EQ_INT(rc, -EINVAL);
            CHECK(strstr(err.msg, "nested deeper") != NULL);
        }
        json_decref(doc);
        json_decref(body);
    }
}

static void entity_action_publish_must_be_boolean(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *doc;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"publish\": true}",
                        NULL, &doc, &err), 0);
    CHECK(json_is_true(json_object_get(doc, "publish")));
    json_decref(doc);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"publish\": \"yes\"}",
                        NULL, &doc, &err), -EINVAL);
}

/* ==== actions: update =================================================== */

static json_t *stored_action(const struct entity_env *env)
{
    json_t *doc = NULL;
    struct wisp_err err;
    CHECK_EQ_INT(action(env,
                        "{\"exec\": {\"kind\": \"python:3\", \"code\": \"v1\", \"main\": \"m\"}, "
                        "\"parameters\": [{\"key\": \"a\", \"value\": 1}], "
                        "\"annotations\": [{\"key\": \"x\", \"value\": 1}, {\"key\": \"y\", "
                        "\"value\": 2}], "
                        "\"limits\": {\"timeout\": 1000, \"memory\": 128}, \"publish\": true}",
                        NULL, &doc, &err), 0);
    return doc;
}

static void entity_action_update_keeps_absent_fields(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *old = stored_action(&env);
    if (!old)
        return;
    json_t *before = json_deep_copy(old);
    json_t *body = J("{}");
    json_t *doc = NULL;
    struct wisp_err err = {0};
    CHECK_EQ_INT(entity_build_action(&env, body, old, "me", "act", "me", NOW + 5, &doc, &err), 0);
    CHECK(json_equal(old, before)); /* the stored document is not modified */
    CHECK_STREQ(wjson_str(doc, "version"), "0.0.2");
    CHECK_EQ_INT(json_integer_value(json_object_get(doc, "updated")), NOW + 5);
    CHECK(json_equal(json_object_get(doc, "exec"), json_object_get(old, "exec")));
    CHECK(json_equal(json_object_get(doc, "parameters"), json_object_get(old, "parameters")));
    CHECK(json_equal(json_object_get(doc, "annotations"), json_object_get(old, "annotations")));
    CHECK_EQ_INT(limit(doc, "timeout"), 1000);
    CHECK_EQ_INT(limit(doc, "memory"), 128);
    CHECK_EQ_INT(limit(doc, "logs"), 10);
    CHECK(json_is_true(json_object_get(doc, "publish")));
    /* and a second update bumps again */
    json_t *doc2 = NULL;
    CHECK_EQ_INT(entity_build_action(&env, body, doc, "me", "act", "me", NOW + 6, &doc2, &err), 0);
    CHECK_STREQ(wjson_str(doc2, "version"), "0.0.3");
    json_decref(doc2);
    json_decref(doc);
    json_decref(body);
    json_decref(before);
    json_decref(old);
}

static void entity_action_update_replaces_given_fields(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *old = stored_action(&env);
    if (!old)
        return;
    json_t *doc = NULL;
    struct wisp_err err;
    /* a new exec of another kind: the exec annotation follows */
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"nodejs:default\", \"code\": \"v2\"}}", old,
                        &doc, &err), 0);
    json_t *ex = json_object_get(doc, "exec");
    CHECK_STREQ(wjson_str(ex, "kind"), "nodejs:20");
    CHECK_STREQ(wjson_str(ex, "code"), "v2");
    CHECK(json_object_get(ex, "main") == NULL); /* exec is replaced, not merged */
    json_t *ann = json_object_get(doc, "annotations");
    CHECK_STREQ(json_string_value(wjson_kv_get(ann, "exec")), "nodejs:20");
    CHECK_EQ_INT(json_integer_value(wjson_kv_get(ann, "x")), 1);
    CHECK_EQ_INT(json_array_size(ann), 3);
    CHECK_EQ_INT(limit(doc, "timeout"), 1000);
    json_decref(doc);
    /* only one limit changes */
    CHECK_EQ_INT(action(&env, "{\"limits\": {\"memory\": 512}}", old, &doc, &err), 0);
    CHECK_EQ_INT(limit(doc, "memory"), 512);
    CHECK_EQ_INT(limit(doc, "timeout"), 1000);
    json_decref(doc);
    /* parameters are replaced as a whole */
    CHECK_EQ_INT(action(&env, "{\"parameters\": [{\"key\": \"b\", \"value\": 2}]}", old, &doc, &err),
                 0);
    json_t *p = json_object_get(doc, "parameters");
    CHECK_EQ_INT(json_array_size(p), 1);
    CHECK(wjson_kv_get(p, "a") == NULL);
    CHECK_EQ_INT(json_integer_value(wjson_kv_get(p, "b")), 2);
    json_decref(doc);
    /* an invalid update leaves nothing behind */
    CHECK_EQ_INT(action(&env, "{\"limits\": {\"memory\": 1}}", old, &doc, &err), -EINVAL);
    /* a user cannot forge the exec annotation */
    CHECK_EQ_INT(action(&env, "{\"annotations\": [{\"key\": \"exec\", \"value\": \"blackbox\"}]}",
                        old, &doc, &err), 0);
    CHECK_STREQ(json_string_value(wjson_kv_get(json_object_get(doc, "annotations"), "exec")),
                "python:3");
    json_decref(doc);
    json_decref(old);
}

static void entity_action_del_annotations(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *old = stored_action(&env);
    if (!old)
        return;
    json_t *doc = NULL;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env, "{\"delAnnotations\": [\"x\", \"nosuch\"]}", old, &doc, &err), 0);
    json_t *ann = json_object_get(doc, "annotations");
    CHECK(wjson_kv_get(ann, "x") == NULL);
    CHECK_EQ_INT(json_integer_value(wjson_kv_get(ann, "y")), 2);
    CHECK_STREQ(json_string_value(wjson_kv_get(ann, "exec")), "python:3");
    json_decref(doc);
    /* given together: annotations are replaced first, then deleted from */
    CHECK_EQ_INT(action(&env,
                        "{\"annotations\": [{\"key\": \"p\", \"value\": 1}, {\"key\": \"q\", "
                        "\"value\": 2}], \"delAnnotations\": [\"p\"]}",
                        old, &doc, &err), 0);
    ann = json_object_get(doc, "annotations");
    CHECK(wjson_kv_get(ann, "p") == NULL);
    CHECK(wjson_kv_get(ann, "x") == NULL);
    CHECK_EQ_INT(json_integer_value(wjson_kv_get(ann, "q")), 2);
    json_decref(doc);
    CHECK_EQ_INT(action(&env, "{\"delAnnotations\": \"x\"}", old, &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"delAnnotations\": [1]}", old, &doc, &err), -EINVAL);
    json_decref(old);
}

/* ==== sequences and blackbox ============================================ */

static void entity_sequence_components(void)
{
    need_kinds();
    struct entity_env env = env_std(); /* sequence_max 3 */
    json_t *doc;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env,
                        "{\"exec\": {\"kind\": \"sequence\", \"components\": [\"/ns/a\", "
                        "\"/_/p/b\", \"/whisk.system/utils/echo\"]}}",
                        NULL, &doc, &err), 0);
    json_t *c = json_object_get(json_object_get(doc, "exec"), "components");
    CHECK_EQ_INT(json_array_size(c), 3);
    CHECK_STREQ(json_string_value(json_array_get(c, 0)), "/ns/a");
    CHECK_STREQ(json_string_value(json_array_get(c, 1)), "/me/p/b");
    CHECK_STREQ(json_string_value(json_array_get(c, 2)), "/whisk.system/utils/echo");
    CHECK_STREQ(json_string_value(wjson_kv_get(json_object_get(doc, "annotations"), "exec")),
                "sequence");
    json_decref(doc);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"sequence\", \"components\": [\"a\"]}}", NULL,
                        &doc, &err), -EINVAL);
    CHECK(strstr(err.msg, "fully qualified") != NULL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"sequence\", \"components\": [\"p/a\"]}}",
                        NULL, &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"sequence\", \"components\": [\"/ns\"]}}",
                        NULL, &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"sequence\", \"components\": [7]}}", NULL,
                        &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"sequence\", \"components\": []}}", NULL,
                        &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"sequence\"}}", NULL, &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"sequence\", \"components\": \"/ns/a\"}}",
                        NULL, &doc, &err), -EINVAL);
    CHECK_EQ_INT(action(&env,
                        "{\"exec\": {\"kind\": \"sequence\", \"components\": [\"/ns/a\", "
                        "\"/ns/b\", \"/ns/c\", \"/ns/d\"]}}",
                        NULL, &doc, &err), -EINVAL);
    CHECK_STREQ(err.msg, "Too many actions in the sequence.");
}

static void entity_blackbox_needs_image(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *doc;
    struct wisp_err err;
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"blackbox\"}}", NULL, &doc, &err), -EINVAL);
    CHECK(strstr(err.msg, "image") != NULL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"blackbox\", \"image\": \"\"}}", NULL, &doc,
                        &err), -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"blackbox\", \"image\": 5}}", NULL, &doc, &err),
                 -EINVAL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"blackbox:default\", \"image\": \"org/img:1\"}}",
                        NULL, &doc, &err), 0);
    json_t *ex = json_object_get(doc, "exec");
    CHECK_STREQ(wjson_str(ex, "kind"), "blackbox");
    CHECK_STREQ(wjson_str(ex, "image"), "org/img:1");
    CHECK(json_is_false(json_object_get(ex, "binary")));
    CHECK(json_object_get(ex, "code") == NULL);
    json_decref(doc);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"blackbox\", \"image\": \"i\", \"code\": \"c\"}}",
                        NULL, &doc, &err), 0);
    CHECK_STREQ(wjson_str(json_object_get(doc, "exec"), "code"), "c");
    json_decref(doc);
    /* as OpenWhisk's BlackBoxExec: main and binary go with the code */
    CHECK_EQ_INT(action(&env,
                        "{\"exec\": {\"kind\": \"blackbox\", \"image\": \"i\", \"code\": "
                        "\"UEsDBA==\", \"main\": \"handle\"}}",
                        NULL, &doc, &err),
                 0);
    ex = json_object_get(doc, "exec");
    CHECK_STREQ(wjson_str(ex, "main"), "handle");
    CHECK(json_is_true(json_object_get(ex, "binary")));
    json_decref(doc);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"blackbox\", \"image\": \"i\", \"main\": 7}}",
                        NULL, &doc, &err),
                 -EINVAL);
    CHECK(strstr(err.msg, "exec.main") != NULL);
    CHECK_EQ_INT(action(&env, "{\"exec\": {\"kind\": \"blackbox\", \"image\": \"i\", \"code\": "
                              "\"not base64!\", \"binary\": true}}",
                        NULL, &doc, &err),
                 -EINVAL);
}

/* ==== rules, packages, triggers ========================================= */

static void entity_rule_status_validation(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *trig = J("{\"path\": \"me\", \"name\": \"t\"}");
    json_t *act = J("{\"path\": \"me\", \"name\": \"a\"}");
    struct {
        const char *body;
        int rc;
        const char *status;
    } rows[] = {
        {"{}", 0, "active"},
        {"{\"status\": \"active\"}", 0, "active"},
        {"{\"status\": \"inactive\"}", 0, "inactive"},
        {"{\"status\": \"\"}", 0, "active"},
        {"{\"status\": null}", 0, "active"},
        {"{\"status\": \"paused\"}", -EINVAL, NULL},
        {"{\"status\": \"ACTIVE\"}", -EINVAL, NULL},
        {"{\"status\": 1}", -EINVAL, NULL},
        {"{\"status\": true}", -EINVAL, NULL},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        json_t *body = J(rows[i].body), *doc = NULL;
        struct wisp_err err = {0};
        int rc = entity_build_rule(&env, body, NULL, "me", "r", trig, act, NOW, &doc, &err);
        CHECK_EQ_INT(rc, rows[i].rc);
        if (rc == 0) {
            CHECK_STREQ(wjson_str(doc, "status"), rows[i].status);
            CHECK(json_equal(json_object_get(doc, "trigger"), trig));
            CHECK(json_equal(json_object_get(doc, "action"), act));
            CHECK_STREQ(wjson_str(doc, "version"), "0.0.1");
        } else {
            CHECK(strstr(err.msg, "status") != NULL);
        }
        json_decref(doc);
        json_decref(body);
    }
    /* create needs both references */
    json_t *body = J("{}"), *doc = NULL;
    struct wisp_err err = {0};
    CHECK_EQ_INT(entity_build_rule(&env, body, NULL, "me", "r", trig, NULL, NOW, &doc, &err),
                 -EINVAL);
    CHECK_EQ_INT(entity_build_rule(&env, body, NULL, "me", "r", NULL, act, NOW, &doc, &err),
                 -EINVAL);
    /* update keeps status and references when not given */
    json_t *inactive = J("{\"status\": \"inactive\"}"), *old = NULL;
    CHECK_EQ_INT(entity_build_rule(&env, inactive, NULL, "me", "r", trig, act, NOW, &old, &err), 0);
    CHECK_EQ_INT(entity_build_rule(&env, body, old, "me", "r", NULL, NULL, NOW + 1, &doc, &err), 0);
    CHECK_STREQ(wjson_str(doc, "status"), "inactive");
    CHECK(json_equal(json_object_get(doc, "action"), act));
    CHECK_STREQ(wjson_str(doc, "version"), "0.0.2");
    json_decref(doc);
    json_decref(old);
    json_decref(inactive);
    json_decref(body);
    json_decref(trig);
    json_decref(act);
}

static void entity_package_binding_rules(void)
{
    need_kinds();
    struct entity_env env = env_std();
    struct wisp_err err = {0};
    json_t *plain_body = J("{\"parameters\": [{\"key\": \"a\", \"value\": 1}]}");
    json_t *plain = NULL;
    CHECK_EQ_INT(entity_build_package(&env, plain_body, NULL, "me", "pkg", NULL, NOW, &plain, &err),
                 0);
    CHECK(json_is_object(json_object_get(plain, "binding")));
    CHECK_EQ_INT(json_object_size(json_object_get(plain, "binding")), 0);
    CHECK_EQ_INT(json_array_size(json_object_get(plain, "parameters")), 1);

    json_t *ref = J("{\"namespace\": \"other\", \"name\": \"lib\"}");
    json_t *bind_body = J("{\"binding\": {\"namespace\": \"other\", \"name\": \"lib\"}}");
    json_t *bound = NULL;
    CHECK_EQ_INT(entity_build_package(&env, bind_body, NULL, "me", "b", ref, NOW, &bound, &err), 0);
    CHECK(json_equal(json_object_get(bound, "binding"), ref));

    /* a plain package cannot become a binding, nor the other way round */
    json_t *doc = NULL;
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(entity_build_package(&env, bind_body, plain, "me", "pkg", ref, NOW, &doc, &err),
                 -EINVAL);
    CHECK(strstr(err.msg, "binding") != NULL);
    CHECK(doc == NULL);
    json_t *unbind = J("{\"binding\": {}}");
    CHECK_EQ_INT(entity_build_package(&env, unbind, bound, "me", "b", NULL, NOW, &doc, &err),
                 -EINVAL);
    /* updates that leave the binding alone keep it */
    json_t *params = J("{\"parameters\": [{\"key\": \"z\", \"value\": 0}]}");
    CHECK_EQ_INT(entity_build_package(&env, params, bound, "me", "b", NULL, NOW, &doc, &err), 0);
    CHECK(json_equal(json_object_get(doc, "binding"), ref));
    CHECK_STREQ(wjson_str(doc, "version"), "0.0.2");
    json_decref(doc);
    CHECK_EQ_INT(entity_build_package(&env, unbind, plain, "me", "pkg", NULL, NOW, &doc, &err), 0);
    CHECK_EQ_INT(json_object_size(json_object_get(doc, "binding")), 0);
    json_decref(doc);
    /* package parameters take no init */
    json_t *init = J("{\"parameters\": [{\"key\": \"a\", \"value\": 1, \"init\": true}]}");
    CHECK_EQ_INT(entity_build_package(&env, init, NULL, "me", "p2", NULL, NOW, &doc, &err),
                 -EINVAL);
    json_decref(init);
    json_decref(params);
    json_decref(unbind);
    json_decref(bound);
    json_decref(bind_body);
    json_decref(ref);
    json_decref(plain);
    json_decref(plain_body);
}

static void entity_trigger_defaults(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *body = J("{\"parameters\": [{\"key\": \"k\", \"value\": \"v\"}]}"), *doc = NULL;
    struct wisp_err err = {0};
    CHECK_EQ_INT(entity_build_trigger(&env, body, NULL, "me", "t", NOW, &doc, &err), 0);
    CHECK(json_is_object(json_object_get(doc, "limits")));
    CHECK(json_is_object(json_object_get(doc, "rules")));
    CHECK_EQ_INT(json_array_size(json_object_get(doc, "annotations")), 0);
    CHECK_STREQ(json_string_value(wjson_kv_get(json_object_get(doc, "parameters"), "k")), "v");
    CHECK(json_is_false(json_object_get(doc, "publish")));
    json_decref(doc);
    json_t *bad = J("{\"parameters\": 5}");
    CHECK_EQ_INT(entity_build_trigger(&env, bad, NULL, "me", "t", NOW, &doc, &err), -EINVAL);
    json_decref(bad);
    json_decref(body);
}

/* ==== brief / without_code ============================================== */

static void entity_brief_strips_code_and_parameters(void)
{
    need_kinds();
    struct entity_env env = env_std();
    json_t *doc = stored_action(&env);
    if (!doc)
        return;
    json_t *b = entity_brief(REC_ACTION, doc);
    CHECK(b != NULL);
    CHECK(json_object_get(b, "parameters") == NULL);
    json_t *ex = json_object_get(b, "exec");
    CHECK(json_is_object(ex));
    CHECK(json_object_get(ex, "code") == NULL);
    CHECK(json_is_false(json_object_get(ex, "binary")));
    CHECK_STREQ(wjson_str(b, "name"), "act");
    CHECK_STREQ(wjson_str(b, "namespace"), "me");
    CHECK_STREQ(wjson_str(b, "version"), "0.0.1");
    CHECK(json_is_true(json_object_get(b, "publish")));
    CHECK(json_is_array(json_object_get(b, "annotations")));
    CHECK_EQ_INT(limit(b, "timeout"), 1000);
    char *s = wjson_dump(b, NULL);
    CHECK(s && strstr(s, "v1") == NULL);
    free(s);
    json_decref(b);
    /* without_code copies: the original keeps its code */
    json_t *w = entity_without_code(doc);
    CHECK(json_object_get(json_object_get(w, "exec"), "code") == NULL);
    CHECK_STREQ(wjson_str(json_object_get(w, "exec"), "kind"), "python:3");
    CHECK_EQ_INT(json_array_size(json_object_get(w, "parameters")), 1);
    CHECK_STREQ(wjson_str(json_object_get(doc, "exec"), "code"), "v1");
    json_decref(w);
    /* packages: no parameters */
    json_t *pb = J("{\"parameters\": [{\"key\": \"secret\", \"value\": \"hunter2\"}]}"), *pkg = NULL;
    struct wisp_err err = {0};
    CHECK_EQ_INT(entity_build_package(&env, pb, NULL, "me", "p", NULL, NOW, &pkg, &err), 0);
    json_t *bp = entity_brief(REC_PACKAGE, pkg);
    CHECK(bp && json_object_get(bp, "parameters") == NULL);
    s = wjson_dump(bp, NULL);
    CHECK(s && strstr(s, "hunter2") == NULL);
    free(s);
    json_decref(bp);
    json_decref(pkg);
    json_decref(pb);
    /* triggers: no parameters either */
    json_t *tb = J("{\"parameters\": [{\"key\": \"k\", \"value\": \"tv\"}]}"), *trg = NULL;
    CHECK_EQ_INT(entity_build_trigger(&env, tb, NULL, "me", "t", NOW, &trg, &err), 0);
    json_t *bt = entity_brief(REC_TRIGGER, trg);
    CHECK(bt && json_object_get(bt, "parameters") == NULL);
    CHECK_STREQ(wjson_str(bt, "name"), "t");
    json_decref(bt);
    json_decref(trg);
    json_decref(tb);
    json_decref(doc);
}

/* ==== robustness ======================================================== */

static void entity_fuzz_bodies_never_crash(void)
{
    need_kinds();
    struct entity_env env = env_std();
    static const char *seeds[] = {
        "{\"exec\": {\"kind\": \"python:3\", \"code\": \"x\"}, \"limits\": {\"timeout\": 100}}",
        "{\"exec\": {\"kind\": \"sequence\", \"components\": [\"/a/b\", \"/_/c/d\"]}}",
        "{\"exec\": {\"kind\": \"blackbox\", \"image\": \"i\"}, \"parameters\": [{\"key\": \"a\", "
        "\"value\": [1, {\"b\": 2}]}], \"delAnnotations\": [\"a\"]}",
        "{\"exec\": {\"kind\": \"nodejs:default\", \"code\": \"UEsD\", \"binary\": true, \"main\": "
        "\"m\"}, \"publish\": false, \"annotations\": [{\"key\": \"x\", \"value\": null}]}",
    };
    unsigned x = 12345;
    for (int it = 0; it < 3000; it++) {
        const char *seed = seeds[it % WISP_ARRAY_LEN(seeds)];
        size_t len = strlen(seed);
        char *buf = malloc(len + 1);
        memcpy(buf, seed, len + 1);
        int flips = 1 + it % 3;
        for (int f = 0; f < flips; f++) {
            x = x * 1103515245u + 12345u;
            size_t pos = (x >> 8) % len;
            x = x * 1103515245u + 12345u;
            static const char alphabet[] = "{}[]\":,0123456789-aez/_ .@tfn\\";
            buf[pos] = alphabet[(x >> 8) % (sizeof alphabet - 1)];
        }
        int rc = entity_fuzz_one(&env, (const uint8_t *)buf, len);
        CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG);
        free(buf);
    }
}

static const struct check_test tests[] = {
    {"entity_name_valid_table", entity_name_valid_table},
    {"entity_parse_ref_table", entity_parse_ref_table},
    {"entity_version_bump_table", entity_version_bump_table},
    {"entity_action_create_fills_defaults", entity_action_create_fills_defaults},
    {"entity_action_needs_exec_on_create", entity_action_needs_exec_on_create},
    {"entity_action_kind_checked_against_manifest", entity_action_kind_checked_against_manifest},
    {"entity_action_code_rules", entity_action_code_rules},
    {"entity_action_binary_code_must_be_base64", entity_action_binary_code_must_be_base64},
    {"entity_action_code_size_limit_is_e2big", entity_action_code_size_limit_is_e2big},
    {"entity_action_limits_ranges", entity_action_limits_ranges},
    {"entity_action_parameters_shape_and_duplicates",
     entity_action_parameters_shape_and_duplicates},
    {"entity_action_parameters_size_limit_is_e2big", entity_action_parameters_size_limit_is_e2big},
    {"entity_action_parameters_too_deep_is_einval", entity_action_parameters_too_deep_is_einval},
    {"entity_action_publish_must_be_boolean", entity_action_publish_must_be_boolean},
    {"entity_action_update_keeps_absent_fields", entity_action_update_keeps_absent_fields},
    {"entity_action_update_replaces_given_fields", entity_action_update_replaces_given_fields},
    {"entity_action_del_annotations", entity_action_del_annotations},
    {"entity_sequence_components", entity_sequence_components},
    {"entity_blackbox_needs_image", entity_blackbox_needs_image},
    {"entity_rule_status_validation", entity_rule_status_validation},
    {"entity_package_binding_rules", entity_package_binding_rules},
    {"entity_trigger_defaults", entity_trigger_defaults},
    {"entity_brief_strips_code_and_parameters", entity_brief_strips_code_and_parameters},
    {"entity_fuzz_bodies_never_crash", entity_fuzz_bodies_never_crash},
};

CHECK_MAIN(tests)
