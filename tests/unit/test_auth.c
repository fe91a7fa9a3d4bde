/* tests/unit/test_auth.c - namespaces and API keys (core/auth.h) on a real
 * store in a temporary directory. */
#include <errno.h>
#include <event2/event.h>
#include <ftw.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "check.h"
#include "plat.h"
#include "store.h"
#include "wjson.h"

#define KEY_BUF (AUTH_UUID_LEN + AUTH_SECRET_LEN + 2)

static const char UUID1[] = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502";
static const char UUID2[] = "7a2b5c0e-1d3f-4a6b-9c8d-0e1f2a3b4c5d";
static const char SECRET1[] = "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/* ==== fixtures ========================================================== */

struct fx {
    char *dir;
    struct event_base *base;
    struct store *st;
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A store without per-commit fsync (async mode, the loop is never needed
 * because no test waits for durability), so many writes stay fast. */
static void fx_open(struct fx *f)
{
    char tmpl[] = "/tmp/wisp-test-auth-XXXXXX";
    char *d = mkdtemp(tmpl);
    CHECK(d != NULL);
    f->dir = strdup(d ? d : "/nonexistent");
    f->base = event_base_new();
    CHECK(f->base != NULL);
    struct store_cfg cfg = {.dir = f->dir,
                            .map_bytes = 4u << 20,
                            .map_max_bytes = 64u << 20,
                            .cache_entries = 16,
                            .async_sync = true};
    struct wisp_err err = {0};
    f->st = NULL;
    int rc = store_open(&cfg, f->base, &f->st, &err);
    if (rc)
        fprintf(stderr, "store_open: %s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
}

static void fx_close(struct fx *f)
{
    store_close(f->st);
    event_base_free(f->base);
    CHECK_EQ_INT(nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(f->dir);
}

static void basic_header(const char *cred, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    memcpy(out, "Basic ", 6);
    int rc = mbedtls_base64_encode((unsigned char *)out + 6, cap - 6, &n,
                                   (const unsigned char *)cred, len);
    CHECK_EQ_INT(rc, 0);
    out[6 + n] = '\0';
}

static int check_key(struct store *st, const char *key, char *ns_out)
{
    char hdr[256];
    basic_header(key, strlen(key), hdr, sizeof hdr);
    return auth_check(st, hdr, ns_out, NULL);
}

static bool is_alnum_str(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

/* ==== pure checks ======================================================= */

static void auth_ns_valid_accepts_good_names(void)
{
    char long_ok[AUTH_NS_MAX];
    memset(long_ok, 'n', sizeof long_ok - 1);
    long_ok[sizeof long_ok - 1] = '\0'; /* 127 characters */
    const char *good[] = {"guest", "a", "Z", "0", "a1", "my.ns", "a@b.c", "a-b", "a_b", "_x",
                          "x_", "whisk.system2", "WHISK", long_ok};
    for (size_t i = 0; i < WISP_ARRAY_LEN(good); i++) {
        struct wisp_err err = {0};
        int rc = auth_ns_valid(good[i], &err);
        if (rc != 0)
            fprintf(stderr, "  '%.40s' refused: %s\n", good[i], err.msg);
        CHECK_EQ_INT(rc, 0);
    }
}

static void auth_ns_valid_rejects_bad_names(void)
{
    char too_long[AUTH_NS_MAX + 1];
    memset(too_long, 'n', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0'; /* 128 characters */
    const char *bad[] = {"",    "_",   "whisk.system", too_long, "a b", "a/b",  "-a",
                         ".a",  "@a",  "a:b",          "a\tb",   "a\n", "\xc3\xa4", "a*",
                         "a?b", "a#b", " a"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        struct wisp_err err = {0};
        int rc = auth_ns_valid(bad[i], &err);
        if (rc != -EINVAL)
            fprintf(stderr, "  '%.40s' accepted (rc %d)\n", bad[i], rc);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK_EQ_INT(err.code, -EINVAL);
        CHECK(err.msg[0] != '\0');
    }
    CHECK_EQ_INT(auth_ns_valid("a b", NULL), -EINVAL); /* err is optional */
}

static void auth_key_parse_table(void)
{
    char good_key[KEY_BUF];
    snprintf(good_key, sizeof good_key, "%s:%s", UUID1, SECRET1);
    struct {
        const char *key;
        int rc;
    } rows[] = {
        {good_key, 0},
        {"23bc46b1-71f6-4ed5-8c54-816aa4f8c502:abcdefgh", 0},     /* 8-char secret */
        {"23BC46B1-71F6-4ED5-8C54-816AA4F8C502:abcdefgh", 0},     /* upper-case hex */
        {"23bc46b1-71f6-4ed5-8c54-816aa4f8c502:abcdefg", -EINVAL}, /* 7-char secret */
        {"23bc46b1-71f6-4ed5-8c54-816aa4f8c502:", -EINVAL},
        {"23bc46b1-71f6-4ed5-8c54-816aa4f8c502", -EINVAL},         /* no colon */
        {"23bc46b1-71f6-4ed5-8c54-816aa4f8c50:abcdefgh", -EINVAL}, /* 35-char uuid */
        {"23bc46b1-71f6-4ed5-8c54-816aa4f8c5022:abcdefgh", -EINVAL},
        {"23bc46b1x71f6-4ed5-8c54-816aa4f8c502:abcdefgh", -EINVAL}, /* dash missing */
        {"23bc46b1-71f6-4ed5-8c54-816aa4f8c50g:abcdefgh", -EINVAL}, /* not hex */
        {"23bc46b171f6-4ed5-8c54-816aa4f8c502-:abcdefgh", -EINVAL}, /* dash misplaced */
        {"23bc46b1-71f6-4ed5-8c54-816aa4f8c502:abcd-efgh", -EINVAL}, /* bad secret char */
        {"23bc46b1-71f6-4ed5-8c54-816aa4f8c502:abcdefgh:", -EINVAL},
        {"23bc46b1-71f6-4ed5-8c54-816aa4f8c502:abcd efgh", -EINVAL},
        {":abcdefgh", -EINVAL},
        {"", -EINVAL},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        char uuid[AUTH_UUID_LEN + 1] = "", secret[AUTH_SECRET_LEN + 1] = "";
        struct wisp_err err = {0};
        int rc = auth_key_parse(rows[i].key, uuid, secret, &err);
        if (rc != rows[i].rc)
            fprintf(stderr, "  row %zu '%s': rc %d\n", i, rows[i].key, rc);
        CHECK_EQ_INT(rc, rows[i].rc);
        if (rc < 0)
            CHECK(err.msg[0] != '\0');
    }
    /* 64-char secret is the maximum, 65 is too long */
    char key[KEY_BUF + 8];
    char uuid[AUTH_UUID_LEN + 1], secret[AUTH_SECRET_LEN + 1];
    snprintf(key, sizeof key, "%s:%s", UUID1, SECRET1);
    CHECK_EQ_INT(auth_key_parse(key, uuid, secret, NULL), 0);
    CHECK_STREQ(uuid, UUID1);
    CHECK_STREQ(secret, SECRET1);
    snprintf(key, sizeof key, "%s:%sA", UUID1, SECRET1);
    CHECK_EQ_INT(auth_key_parse(key, uuid, secret, NULL), -EINVAL);
}

/* ==== keys in the store ================================================= */

static void auth_key_create_random_key(void)
{
    struct fx f;
    fx_open(&f);
    char k1[KEY_BUF], k2[KEY_BUF];
    struct wisp_err err = {0};
    CHECK_EQ_INT(auth_key_create(f.st, "guest", NULL, k1, &err), 0);
    CHECK_EQ_INT(auth_key_create(f.st, "guest", NULL, k2, &err), 0);
    CHECK_EQ_INT(strlen(k1), AUTH_UUID_LEN + 1 + AUTH_SECRET_LEN);
    char uuid[AUTH_UUID_LEN + 1], secret[AUTH_SECRET_LEN + 1];
    CHECK_EQ_INT(auth_key_parse(k1, uuid, secret, NULL), 0);
    CHECK_EQ_INT(strlen(secret), AUTH_SECRET_LEN);
    CHECK(is_alnum_str(secret));
    CHECK_EQ_INT(uuid[14], '4'); /* version 4 */
    CHECK(strchr("89ab", uuid[19]) != NULL);
    CHECK(strcmp(k1, k2) != 0);
    CHECK(strncmp(k1, k2, AUTH_UUID_LEN) != 0);
    char ns[AUTH_NS_MAX];
    CHECK_EQ_INT(check_key(f.st, k1, ns), 0);
    CHECK_STREQ(ns, "guest");
    CHECK_EQ_INT(check_key(f.st, k2, ns), 0);
    fx_close(&f);
}

static void auth_key_create_imports_given_key(void)
{
    struct fx f;
    fx_open(&f);
    char in[KEY_BUF], out[KEY_BUF];
    snprintf(in, sizeof in, "%s:%s", UUID1, SECRET1);
    struct wisp_err err = {0};
    CHECK_EQ_INT(auth_key_create(f.st, "team.a", in, out, &err), 0);
    CHECK_STREQ(out, in);
    char ns[AUTH_NS_MAX] = "";
    CHECK_EQ_INT(check_key(f.st, in, ns), 0);
    CHECK_STREQ(ns, "team.a");
    /* a short secret imports too and only that exact secret works */
    char short_key[KEY_BUF];
    snprintf(short_key, sizeof short_key, "%s:abcdefgh", UUID2);
    CHECK_EQ_INT(auth_key_create(f.st, "team.b", short_key, out, &err), 0);
    CHECK_EQ_INT(check_key(f.st, short_key, ns), 0);
    CHECK_STREQ(ns, "team.b");
    snprintf(short_key, sizeof short_key, "%s:abcdefghi", UUID2);
    CHECK_EQ_INT(check_key(f.st, short_key, ns), -EACCES);
    snprintf(short_key, sizeof short_key, "%s:abcdefg1", UUID2);
    CHECK_EQ_INT(check_key(f.st, short_key, ns), -EACCES);
    fx_close(&f);
}

static void auth_key_create_rejects_bad_input(void)
{
    struct fx f;
    fx_open(&f);
    char out[KEY_BUF];
    struct wisp_err err = {0};
    CHECK_EQ_INT(auth_key_create(f.st, "_", NULL, out, &err), -EINVAL);
    CHECK_EQ_INT(auth_key_create(f.st, "whisk.system", NULL, out, &err), -EINVAL);
    CHECK_EQ_INT(auth_key_create(f.st, "", NULL, out, &err), -EINVAL);
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(auth_key_create(f.st, "guest", "not-a-key", out, &err), -EINVAL);
    CHECK(err.msg[0] != '\0');
    unsigned n = 0;
    CHECK_EQ_INT(auth_ns_revoke(f.st, "guest", &n, NULL), -ENOENT); /* nothing stored */
    fx_close(&f);
}

static void auth_key_create_duplicate_uuid_is_eexist(void)
{
    struct fx f;
    fx_open(&f);
    char in[KEY_BUF], out[KEY_BUF];
    snprintf(in, sizeof in, "%s:%s", UUID1, SECRET1);
    CHECK_EQ_INT(auth_key_create(f.st, "alpha", in, out, NULL), 0);
    char other[KEY_BUF];
    snprintf(other, sizeof other, "%s:differentsecret1", UUID1);
    struct wisp_err err = {0};
    CHECK_EQ_INT(auth_key_create(f.st, "beta", other, out, &err), -EEXIST);
    CHECK_EQ_INT(err.code, -EEXIST);
    CHECK(strstr(err.msg, UUID1) != NULL);
    /* the first key is untouched, the second never works */
    char ns[AUTH_NS_MAX];
    CHECK_EQ_INT(check_key(f.st, in, ns), 0);
    CHECK_STREQ(ns, "alpha");
    CHECK_EQ_INT(check_key(f.st, other, ns), -EACCES);
    fx_close(&f);
}

/* ==== auth_check ======================================================== */

static void auth_check_accepts_right_credentials(void)
{
    struct fx f;
    fx_open(&f);
    char key[KEY_BUF], out[KEY_BUF];
    snprintf(key, sizeof key, "%s:%s", UUID1, SECRET1);
    CHECK_EQ_INT(auth_key_create(f.st, "guest", key, out, NULL), 0);
    char hdr[256], ns[AUTH_NS_MAX] = "";
    basic_header(key, strlen(key), hdr, sizeof hdr);
    CHECK_EQ_INT(auth_check(f.st, hdr, ns, NULL), 0);
    CHECK_STREQ(ns, "guest");
    /* the scheme is case-insensitive and extra spaces before the token are fine */
    char alt[300];
    snprintf(alt, sizeof alt, "basic %s", hdr + 6);
    memset(ns, 0, sizeof ns);
    CHECK_EQ_INT(auth_check(f.st, alt, ns, NULL), 0);
    CHECK_STREQ(ns, "guest");
    snprintf(alt, sizeof alt, "BASIC   %s", hdr + 6);
    CHECK_EQ_INT(auth_check(f.st, alt, ns, NULL), 0);
    /* key_out, when given, gets the key back */
    char got[KEY_BUF + 8];
    memset(got, 'z', sizeof got);
    CHECK_EQ_INT(auth_check(f.st, hdr, ns, got), 0);
    CHECK_STREQ(got, key);
    /* and is left alone on failure */
    char wrong[KEY_BUF + 8];
    snprintf(wrong, sizeof wrong, "%s:WrongSecret123", UUID1);
    char whdr[256];
    basic_header(wrong, strlen(wrong), whdr, sizeof whdr);
    memset(got, 0, sizeof got);
    CHECK_EQ_INT(auth_check(f.st, whdr, ns, got), -EACCES);
    CHECK_EQ_INT(got[0], 0);
    /* repeated checks stay right */
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(auth_check(f.st, hdr, ns, NULL), 0);
    fx_close(&f);
}

static void auth_check_rejects_wrong_credentials(void)
{
    struct fx f;
    fx_open(&f);
    char key[KEY_BUF], out[KEY_BUF];
    snprintf(key, sizeof key, "%s:%s", UUID1, SECRET1);
    CHECK_EQ_INT(auth_key_create(f.st, "guest", key, out, NULL), 0);
    char ns[AUTH_NS_MAX];
    char bad[KEY_BUF + 8];

    /* wrong secret altogether */
    snprintf(bad, sizeof bad, "%s:%s", UUID1, "WrongSecret0123456789");
    CHECK_EQ_INT(check_key(f.st, bad, ns), -EACCES);
    /* unknown uuid, right secret */
    snprintf(bad, sizeof bad, "%s:%s", UUID2, SECRET1);
    CHECK_EQ_INT(check_key(f.st, bad, ns), -EACCES);
    /* secret one char off: at the start, middle and end */
    const size_t pos[] = {0, 31, AUTH_SECRET_LEN - 1};
    for (size_t i = 0; i < WISP_ARRAY_LEN(pos); i++) {
        snprintf(bad, sizeof bad, "%s:%s", UUID1, SECRET1);
        char *c = bad + AUTH_UUID_LEN + 1 + pos[i];
        *c = *c == 'a' ? 'b' : 'a';
        CHECK_EQ_INT(check_key(f.st, bad, ns), -EACCES);
    }
    /* secret truncated by one, or one char longer */
    snprintf(bad, sizeof bad, "%s:%.*s", UUID1, AUTH_SECRET_LEN - 1, SECRET1);
    CHECK_EQ_INT(check_key(f.st, bad, ns), -EACCES);
    /* the uuid alone, or with a trailing colon */
    snprintf(bad, sizeof bad, "%s", UUID1);
    CHECK_EQ_INT(check_key(f.st, bad, ns), -EACCES);
    snprintf(bad, sizeof bad, "%s:", UUID1);
    CHECK_EQ_INT(check_key(f.st, bad, ns), -EACCES);
    /* a NUL after the right credentials */
    char hdr[256];
    char withnul[KEY_BUF + 4];
    size_t kl = strlen(key);
    memcpy(withnul, key, kl);
    memcpy(withnul + kl, "\0xy", 3);
    basic_header(withnul, kl + 3, hdr, sizeof hdr);
    CHECK_EQ_INT(auth_check(f.st, hdr, ns, NULL), -EACCES);

    /* malformed headers */
    basic_header(key, strlen(key), hdr, sizeof hdr);
    CHECK_EQ_INT(auth_check(f.st, hdr + 6, ns, NULL), -EACCES); /* missing "Basic " */
    char alt[300];
    snprintf(alt, sizeof alt, "Bearer %s", hdr + 6);
    CHECK_EQ_INT(auth_check(f.st, alt, ns, NULL), -EACCES);
    snprintf(alt, sizeof alt, "Basic%s", hdr + 6);
    CHECK_EQ_INT(auth_check(f.st, alt, ns, NULL), -EACCES);
    CHECK_EQ_INT(auth_check(f.st, "Basic !!!!not*base64!!!!", ns, NULL), -EACCES);
    CHECK_EQ_INT(auth_check(f.st, "Basic ", ns, NULL), -EACCES);
    CHECK_EQ_INT(auth_check(f.st, "Basic", ns, NULL), -EACCES);
    CHECK_EQ_INT(auth_check(f.st, "", ns, NULL), -EACCES);
    CHECK_EQ_INT(auth_check(f.st, NULL, ns, NULL), -EACCES);
    /* a truncated token */
    snprintf(alt, sizeof alt, "%.*s", (int)strlen(hdr) - 3, hdr);
    CHECK_EQ_INT(auth_check(f.st, alt, ns, NULL), -EACCES);
    /* a token far too long */
    char huge[2048];
    memcpy(huge, "Basic ", 6);
    memset(huge + 6, 'A', sizeof huge - 7);
    huge[sizeof huge - 1] = '\0';
    CHECK_EQ_INT(auth_check(f.st, huge, ns, NULL), -EACCES);
    /* the right key still works after all that */
    CHECK_EQ_INT(check_key(f.st, key, ns), 0);
    fx_close(&f);
}

static void auth_revoke_makes_check_fail(void)
{
    struct fx f;
    fx_open(&f);
    char k1[KEY_BUF], k2[KEY_BUF];
    CHECK_EQ_INT(auth_key_create(f.st, "guest", NULL, k1, NULL), 0);
    CHECK_EQ_INT(auth_key_create(f.st, "guest", NULL, k2, NULL), 0);
    char ns[AUTH_NS_MAX];
    CHECK_EQ_INT(check_key(f.st, k1, ns), 0);
    char uuid[AUTH_UUID_LEN + 1];
    memcpy(uuid, k1, AUTH_UUID_LEN);
    uuid[AUTH_UUID_LEN] = '\0';
    struct wisp_err err = {0};
    CHECK_EQ_INT(auth_key_revoke(f.st, uuid, &err), 0);
    CHECK_EQ_INT(check_key(f.st, k1, ns), -EACCES);
    CHECK_EQ_INT(check_key(f.st, k2, ns), 0); /* the other key stays */
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(auth_key_revoke(f.st, uuid, &err), -ENOENT);
    CHECK(strstr(err.msg, uuid) != NULL);
    CHECK_EQ_INT(auth_key_revoke(f.st, "not-a-uuid", &err), -EINVAL);
    fx_close(&f);
}

/* A check remembers the key record it decoded last; a record replaced under
 * the same uuid (revoked, then imported with another secret and namespace)
 * must be read afresh, not answered from that memory. */
static void auth_check_sees_a_replaced_key(void)
{
    struct fx f;
    fx_open(&f);
    char k1[KEY_BUF], k2[KEY_BUF], out[KEY_BUF], ns[AUTH_NS_MAX];
    snprintf(k1, sizeof k1, "%s:%s", UUID1, SECRET1);
    snprintf(k2, sizeof k2, "%s:%s", UUID1, "AnotherSecret0123456789");
    CHECK_EQ_INT(auth_key_create(f.st, "alpha", k1, out, NULL), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(check_key(f.st, k1, ns), 0);
        CHECK_STREQ(ns, "alpha");
    }
    CHECK_EQ_INT(check_key(f.st, k2, ns), -EACCES);
    CHECK_EQ_INT(auth_key_revoke(f.st, UUID1, NULL), 0);
    CHECK_EQ_INT(check_key(f.st, k1, ns), -EACCES);
    CHECK_EQ_INT(auth_key_create(f.st, "beta", k2, out, NULL), 0);
    CHECK_EQ_INT(check_key(f.st, k1, ns), -EACCES);
    CHECK_EQ_INT(check_key(f.st, k2, ns), 0);
    CHECK_STREQ(ns, "beta");
    fx_close(&f);
}

struct list_ctx {
    int n;
    char uuids[8][AUTH_UUID_LEN + 1];
    char ns[8][AUTH_NS_MAX];
    long long created[8];
};

static void list_cb(void *arg, const char *uuid, const char *ns, long long created_ms)
{
    struct list_ctx *c = arg;
    if (c->n < 8) {
        snprintf(c->uuids[c->n], sizeof c->uuids[0], "%s", uuid);
        snprintf(c->ns[c->n], sizeof c->ns[0], "%s", ns);
        c->created[c->n] = created_ms;
    }
    c->n++;
}

static void auth_key_list_filters_by_namespace(void)
{
    struct fx f;
    fx_open(&f);
    char a1[KEY_BUF], a2[KEY_BUF], b1[KEY_BUF];
    long long before = (long long)plat_clock_real_ms();
    CHECK_EQ_INT(auth_key_create(f.st, "alpha", NULL, a1, NULL), 0);
    CHECK_EQ_INT(auth_key_create(f.st, "alpha", NULL, a2, NULL), 0);
    CHECK_EQ_INT(auth_key_create(f.st, "beta", NULL, b1, NULL), 0);
    struct list_ctx all = {0}, alpha = {0}, beta = {0}, none = {0};
    CHECK_EQ_INT(auth_key_list(f.st, NULL, list_cb, &all), 0);
    CHECK_EQ_INT(all.n, 3);
    CHECK_EQ_INT(auth_key_list(f.st, "alpha", list_cb, &alpha), 0);
    CHECK_EQ_INT(alpha.n, 2);
    for (int i = 0; i < alpha.n && i < 8; i++) {
        CHECK_STREQ(alpha.ns[i], "alpha");
        CHECK(strncmp(alpha.uuids[i], a1, AUTH_UUID_LEN) == 0 ||
              strncmp(alpha.uuids[i], a2, AUTH_UUID_LEN) == 0);
        CHECK(alpha.created[i] >= before);
        CHECK_EQ_INT(strlen(alpha.uuids[i]), AUTH_UUID_LEN);
    }
    CHECK_EQ_INT(auth_key_list(f.st, "beta", list_cb, &beta), 0);
    CHECK_EQ_INT(beta.n, 1);
    CHECK(strncmp(beta.uuids[0], b1, AUTH_UUID_LEN) == 0);
    CHECK_EQ_INT(auth_key_list(f.st, "gamma", list_cb, &none), 0);
    CHECK_EQ_INT(none.n, 0);
    /* a namespace that is a prefix of another does not match it */
    struct list_ctx alph = {0};
    CHECK_EQ_INT(auth_key_list(f.st, "alph", list_cb, &alph), 0);
    CHECK_EQ_INT(alph.n, 0);
    fx_close(&f);
}

static void auth_ns_revoke_counts_and_removes_only_that_ns(void)
{
    struct fx f;
    fx_open(&f);
    char k[KEY_BUF], other[KEY_BUF];
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(auth_key_create(f.st, "alpha", NULL, k, NULL), 0);
    CHECK_EQ_INT(auth_key_create(f.st, "beta", NULL, other, NULL), 0);
    unsigned n = 99;
    struct wisp_err err = {0};
    CHECK_EQ_INT(auth_ns_revoke(f.st, "alpha", &n, &err), 0);
    CHECK_EQ_INT(n, 3);
    char ns[AUTH_NS_MAX];
    CHECK_EQ_INT(check_key(f.st, k, ns), -EACCES);
    CHECK_EQ_INT(check_key(f.st, other, ns), 0);
    struct list_ctx c = {0};
    CHECK_EQ_INT(auth_key_list(f.st, "alpha", list_cb, &c), 0);
    CHECK_EQ_INT(c.n, 0);
    n = 99;
    CHECK_EQ_INT(auth_ns_revoke(f.st, "alpha", &n, &err), -ENOENT);
    CHECK_EQ_INT(n, 0);
    fx_close(&f);
}

static void auth_ns_revoke_handles_more_than_one_round(void)
{
    struct fx f;
    fx_open(&f);
    char k[KEY_BUF];
    for (int i = 0; i < 300; i++)
        CHECK_EQ_INT(auth_key_create(f.st, "many", NULL, k, NULL), 0);
    CHECK_EQ_INT(auth_key_create(f.st, "few", NULL, k, NULL), 0);
    unsigned n = 0;
    CHECK_EQ_INT(auth_ns_revoke(f.st, "many", &n, NULL), 0);
    CHECK_EQ_INT(n, 300);
    struct list_ctx c = {0};
    CHECK_EQ_INT(auth_key_list(f.st, NULL, list_cb, &c), 0);
    CHECK_EQ_INT(c.n, 1);
    CHECK_STREQ(c.ns[0], "few");
    fx_close(&f);
}

static bool file_contains(const char *path, const char *needle)
{
    char *buf = NULL;
    size_t len = 0;
    if (plat_read_file(path, 256u << 20, &buf, &len) < 0)
        return false;
    bool found = memmem(buf, len, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

static void auth_store_never_holds_the_secret(void)
{
    struct fx f;
    fx_open(&f);
    char key[KEY_BUF], out[KEY_BUF], rnd[KEY_BUF];
    snprintf(key, sizeof key, "%s:%s", UUID1, SECRET1);
    CHECK_EQ_INT(auth_key_create(f.st, "guest", key, out, NULL), 0);
    CHECK_EQ_INT(auth_key_create(f.st, "guest", NULL, rnd, NULL), 0);
    /* the decoded record: namespace, salt, hash, created and nothing like the secret */
    json_t *doc = NULL;
    CHECK_EQ_INT(store_get(f.st, STORE_KEYS, UUID1, AUTH_UUID_LEN, NULL, NULL, &doc), 0);
    CHECK_STREQ(wjson_str(doc, "namespace"), "guest");
    CHECK_EQ_INT(strlen(wjson_str(doc, "salt") ? wjson_str(doc, "salt") : ""), 32);
    CHECK_EQ_INT(strlen(wjson_str(doc, "hash") ? wjson_str(doc, "hash") : ""), 64);
    char *dump = wjson_dump(doc, NULL);
    CHECK(dump != NULL);
    if (dump) {
        CHECK(strstr(dump, SECRET1) == NULL);
        CHECK(strstr(dump, rnd + AUTH_UUID_LEN + 1) == NULL);
    }
    free(dump);
    json_decref(doc);
    store_close(f.st);
    f.st = NULL;
    /* the raw data file on disk */
    char path[512];
    snprintf(path, sizeof path, "%s/data.mdb", f.dir);
    CHECK(file_contains(path, UUID1)); /* the scan itself works */
    CHECK(!file_contains(path, SECRET1));
    CHECK(!file_contains(path, rnd + AUTH_UUID_LEN + 1));
    fx_close(&f);
}

/* ==== bootstrap ========================================================= */

static void auth_bootstrap_writes_guest_key_file(void)
{
    struct fx f;
    fx_open(&f);
    bool created = false;
    struct wisp_err err = {0};
    CHECK_EQ_INT(auth_bootstrap_guest(f.st, f.dir, NULL, &created, &err), 0);
    CHECK(created);
    char path[512];
    snprintf(path, sizeof path, "%s/guest.key", f.dir);
    struct stat sb;
    CHECK_EQ_INT(stat(path, &sb), 0);
    CHECK_EQ_INT(sb.st_mode & 0777, 0600);
    char *text = NULL;
    size_t len = 0;
    CHECK_EQ_INT(plat_read_file(path, 4096, &text, &len), 0);
    CHECK_EQ_INT(len, AUTH_UUID_LEN + 1 + AUTH_SECRET_LEN + 1);
    if (text && len > 0) {
        CHECK_EQ_INT(text[len - 1], '\n');
        text[len - 1] = '\0';
        char ns[AUTH_NS_MAX] = "";
        CHECK_EQ_INT(check_key(f.st, text, ns), 0);
        CHECK_STREQ(ns, "guest");
    }
    /* the second run does nothing */
    created = true;
    CHECK_EQ_INT(auth_bootstrap_guest(f.st, f.dir, NULL, &created, &err), 0);
    CHECK(!created);
    char *again = NULL;
    size_t len2 = 0;
    CHECK_EQ_INT(plat_read_file(path, 4096, &again, &len2), 0);
    CHECK(text && again && len2 == len && memcmp(text, again, len - 1) == 0);
    struct list_ctx c = {0};
    CHECK_EQ_INT(auth_key_list(f.st, "guest", list_cb, &c), 0);
    CHECK_EQ_INT(c.n, 1);
    free(text);
    free(again);
    fx_close(&f);
}

static void auth_bootstrap_uses_env_key(void)
{
    struct fx f;
    fx_open(&f);
    char key[KEY_BUF];
    snprintf(key, sizeof key, "%s:%s", UUID2, SECRET1);
    bool created = false;
    struct wisp_err err = {0};
    CHECK_EQ_INT(auth_bootstrap_guest(f.st, f.dir, key, &created, &err), 0);
    CHECK(created);
    char ns[AUTH_NS_MAX] = "";
    CHECK_EQ_INT(check_key(f.st, key, ns), 0);
    CHECK_STREQ(ns, "guest");
    char path[512];
    snprintf(path, sizeof path, "%s/guest.key", f.dir);
    CHECK(access(path, F_OK) != 0); /* no key file when the key came from the env */
    /* second call: nothing, even with another key */
    char key2[KEY_BUF];
    snprintf(key2, sizeof key2, "%s:%s", UUID1, SECRET1);
    CHECK_EQ_INT(auth_bootstrap_guest(f.st, f.dir, key2, &created, &err), 0);
    CHECK(!created);
    CHECK_EQ_INT(check_key(f.st, key2, ns), -EACCES);
    struct list_ctx c = {0};
    CHECK_EQ_INT(auth_key_list(f.st, NULL, list_cb, &c), 0);
    CHECK_EQ_INT(c.n, 1);
    fx_close(&f);
}

static void auth_bootstrap_rejects_bad_env_key(void)
{
    struct fx f;
    fx_open(&f);
    bool created = true;
    struct wisp_err err = {0};
    CHECK_EQ_INT(auth_bootstrap_guest(f.st, f.dir, "nonsense", &created, &err), -EINVAL);
    CHECK(!created);
    CHECK(strstr(err.msg, "WISP_GUEST_KEY") != NULL);
    /* nothing was marked: a later run with no env key still bootstraps */
    CHECK_EQ_INT(auth_bootstrap_guest(f.st, f.dir, "", &created, &err), 0);
    CHECK(created);
    char path[512];
    snprintf(path, sizeof path, "%s/guest.key", f.dir);
    CHECK_EQ_INT(access(path, F_OK), 0);
    fx_close(&f);
}

static const struct check_test tests[] = {
    {"auth_ns_valid_accepts_good_names", auth_ns_valid_accepts_good_names},
    {"auth_ns_valid_rejects_bad_names", auth_ns_valid_rejects_bad_names},
    {"auth_key_parse_table", auth_key_parse_table},
    {"auth_key_create_random_key", auth_key_create_random_key},
    {"auth_key_create_imports_given_key", auth_key_create_imports_given_key},
    {"auth_key_create_rejects_bad_input", auth_key_create_rejects_bad_input},
    {"auth_key_create_duplicate_uuid_is_eexist", auth_key_create_duplicate_uuid_is_eexist},
    {"auth_check_accepts_right_credentials", auth_check_accepts_right_credentials},
    {"auth_check_rejects_wrong_credentials", auth_check_rejects_wrong_credentials},
    {"auth_revoke_makes_check_fail", auth_revoke_makes_check_fail},
    {"auth_check_sees_a_replaced_key", auth_check_sees_a_replaced_key},
    {"auth_key_list_filters_by_namespace", auth_key_list_filters_by_namespace},
    {"auth_ns_revoke_counts_and_removes_only_that_ns",
     auth_ns_revoke_counts_and_removes_only_that_ns},
    {"auth_ns_revoke_handles_more_than_one_round", auth_ns_revoke_handles_more_than_one_round},
    {"auth_store_never_holds_the_secret", auth_store_never_holds_the_secret},
    {"auth_bootstrap_writes_guest_key_file", auth_bootstrap_writes_guest_key_file},
    {"auth_bootstrap_uses_env_key", auth_bootstrap_uses_env_key},
    {"auth_bootstrap_rejects_bad_env_key", auth_bootstrap_rejects_bad_env_key},
};

CHECK_MAIN(tests)
