/* tests/unit/test_feed_webhook.c - the webhook feed (feeds/webhook.c):
 * signed requests fire, anything else is refused, the hook id survives a
 * restart through the saved state. A real event_base runs the deferred
 * save. */
#include <errno.h>
#include <event2/event.h>
#include <mbedtls/md.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "feed.h"
#include "plat.h"

#define SECRET "0123456789abcdef-the-secret"

struct rec {
    int fires, saves;
    json_t *last, *state;
    int fire_rc;
};

static int on_fire(void *ctx, const char *ns, const char *trigger, const json_t *params)
{
    struct rec *r = ctx;
    CHECK_STREQ(ns, "guest");
    CHECK_STREQ(trigger, "hooked");
    r->fires++;
    json_decref(r->last);
    r->last = json_deep_copy(params);
    return r->fire_rc;
}

static void on_save(void *ctx, const char *ns, const char *trigger, const json_t *state)
{
    struct rec *r = ctx;
    (void)ns;
    (void)trigger;
    r->saves++;
    json_decref(r->state);
    r->state = json_deep_copy(state);
}

struct fx {
    struct event_base *base;
    struct rec rec;
    struct feed_env env;
    void *self;
};

static bool fx_init(struct fx *f)
{
    memset(f, 0, sizeof *f);
    f->base = event_base_new();
    f->env = (struct feed_env){.base = f->base, .fire = on_fire, .save = on_save, .ctx = &f->rec};
    struct wisp_err err = {0};
    int rc = feed_webhook_ops.start(&f->env, &f->self, &err);
    CHECK_EQ_INT(rc, 0);
    return rc == 0;
}

static void fx_done(struct fx *f)
{
    if (f->self)
        feed_webhook_ops.stop(f->self);
    event_base_free(f->base);
    json_decref(f->rec.last);
    json_decref(f->rec.state);
}

/* Runs the loop until the deferred work is done (bounded). */
static void settle(struct fx *f)
{
    for (int i = 0; i < 10; i++)
        event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static int bind_text(struct fx *f, const char *params, const json_t *state, struct feed_binding **b,
                     struct wisp_err *err)
{
    json_error_t je;
    json_t *p = json_loads(params, 0, &je);
    CHECK(p != NULL);
    memset(err, 0, sizeof *err);
    int rc = feed_webhook_ops.bind(f->self, "guest", "hooked", p, state, b, err);
    json_decref(p);
    return rc;
}

static void sign(const char *secret, const char *body, size_t len, char out[72])
{
    unsigned char mac[32];
    char hex[65];
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)secret,
                    strlen(secret), (const unsigned char *)body, len, mac);
    plat_hex(mac, sizeof mac, hex);
    snprintf(out, 72, "sha256=%s", hex);
}

/* A request signed with secret. */
static int post(struct fx *f, const char *id, const char *secret, const char *ctype,
                const char *body, struct wisp_err *err)
{
    char sig[72];
    sign(secret, body, strlen(body), sig);
    memset(err, 0, sizeof *err);
    return feed_webhook_request(f->self, id, sig, ctype, body, strlen(body), err);
}

static long long st_int(struct fx *f, const struct feed_binding *b, const char *key)
{
    json_t *s = feed_webhook_ops.status(f->self, b);
    json_t *v = json_object_get(s, key);
    long long n = json_is_integer(v) ? json_integer_value(v) : json_is_true(v) ? 1 : -1;
    json_decref(s);
    return n;
}

static void hook_signed_request_fires(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    CHECK_EQ_INT(bind_text(&f,
                           "{\"secret\": \"" SECRET "\", \"trigger_payload\": "
                           "{\"source\": \"gh\", \"action\": \"default\"}}",
                           NULL, &b, &err),
                 0);
    char id[33]; /* copied: the binding's id dies with it */
    snprintf(id, sizeof id, "%s", feed_webhook_id(b));
    CHECK(strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32);
    /* the id is saved from the loop, not inside bind() */
    CHECK_EQ_INT(f.rec.saves, 0);
    settle(&f);
    CHECK_EQ_INT(f.rec.saves, 1);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.state, "id")), id);

    int rc = post(&f, id, SECRET, "application/json; charset=utf-8",
                  "{\"action\": \"opened\", \"n\": 7}", &err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(f.rec.fires, 1);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "source")), "gh");
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "action")), "opened");
    CHECK_EQ_INT(json_integer_value(json_object_get(f.rec.last, "n")), 7);
    CHECK(json_object_get(f.rec.last, "__ow_headers") == NULL);
    /* an empty body is {} */
    char sig[72];
    sign(SECRET, "", 0, sig);
    CHECK_EQ_INT(feed_webhook_request(f.self, id, sig, NULL, NULL, 0, &err), 0);
    CHECK_EQ_INT(f.rec.fires, 2);
    CHECK_EQ_INT(json_object_size(f.rec.last), 2); /* the trigger_payload alone */
    /* core refuses the fire: its code comes back */
    f.rec.fire_rc = -EAGAIN;
    CHECK_EQ_INT(post(&f, id, SECRET, "application/json", "{}", &err), -EAGAIN);
    CHECK(strlen(err.msg) > 0);
    f.rec.fire_rc = -ENOENT;
    CHECK_EQ_INT(post(&f, id, SECRET, "application/json", "{}", &err), -ENOENT);
    f.rec.fire_rc = 0;
    CHECK_EQ_INT(st_int(&f, b, "requests"), 4);
    CHECK_EQ_INT(st_int(&f, b, "fires"), 2);
    CHECK_EQ_INT(st_int(&f, b, "drops"), 2);
    CHECK_EQ_INT(st_int(&f, b, "rejected"), 0);
    struct feed_counters c;
    feed_webhook_ops.counters(f.self, &c);
    CHECK_EQ_INT(c.fires, 2);
    CHECK_EQ_INT(c.drops, 2);
    CHECK_EQ_INT(c.events_in, 4);
    feed_webhook_ops.unbind(f.self, b);
    /* unbound: the id is gone */
    CHECK_EQ_INT(post(&f, id, SECRET, "application/json", "{}", &err), -ENOENT);
out:
    fx_done(&f);
}

static void hook_bad_signatures(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    CHECK_EQ_INT(bind_text(&f, "{\"secret\": \"" SECRET "\"}", NULL, &b, &err), 0);
    const char *id = feed_webhook_id(b);
    const char *body = "{\"a\": 1}";
    /* signed with another secret */
    CHECK_EQ_INT(post(&f, id, "another-secret-of-16+", "application/json", body, &err), -EACCES);
    CHECK(strstr(err.msg, "signature mismatch") != NULL);
    /* missing */
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(
        feed_webhook_request(f.self, id, NULL, "application/json", body, strlen(body), &err),
        -EACCES);
    CHECK(strstr(err.msg, "missing signature") != NULL);
    CHECK_EQ_INT(feed_webhook_request(f.self, id, "", "application/json", body, strlen(body), &err),
                 -EACCES);
    /* the right MAC in the wrong form: uppercase, no prefix, sha1=, truncated */
    char sig[72], bad[80];
    sign(SECRET, body, strlen(body), sig);
    snprintf(bad, sizeof bad, "%s", sig);
    for (char *p = bad + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    CHECK_EQ_INT(
        feed_webhook_request(f.self, id, bad, "application/json", body, strlen(body), &err),
        -EACCES);
    CHECK_EQ_INT(
        feed_webhook_request(f.self, id, sig + 7, "application/json", body, strlen(body), &err),
        -EACCES);
    snprintf(bad, sizeof bad, "sha1=%s", sig + 7);
    CHECK_EQ_INT(
        feed_webhook_request(f.self, id, bad, "application/json", body, strlen(body), &err),
        -EACCES);
    snprintf(bad, sizeof bad, "%.70s", sig);
    CHECK_EQ_INT(
        feed_webhook_request(f.self, id, bad, "application/json", body, strlen(body), &err),
        -EACCES);
    /* the signature of another body */
    CHECK_EQ_INT(feed_webhook_request(f.self, id, sig, "application/json", "{\"a\": 2}", 8, &err),
                 -EACCES);
    CHECK_EQ_INT(f.rec.fires, 0);
    CHECK_EQ_INT(st_int(&f, b, "rejected"), 8);
    CHECK_EQ_INT(st_int(&f, b, "fires"), 0);
    /* and the right one */
    CHECK_EQ_INT(
        feed_webhook_request(f.self, id, sig, "application/json", body, strlen(body), &err), 0);
    CHECK_EQ_INT(f.rec.fires, 1);
    feed_webhook_ops.unbind(f.self, b);
out:
    fx_done(&f);
}

static void hook_bodies(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    CHECK_EQ_INT(
        bind_text(&f, "{\"secret\": \"" SECRET "\", \"trigger_payload\": \"hi\"}", NULL, &b, &err),
        0);
    const char *id = feed_webhook_id(b);
    /* form: decoded strings, the last of repeated keys wins */
    CHECK_EQ_INT(post(&f, id, SECRET, "Application/X-WWW-Form-Urlencoded",
                      "name=J%C3%BCrgen+Smith&empty=&flag&x=1&x=2&&amp%26=%3D", &err),
                 0);
    CHECK_EQ_INT(f.rec.fires, 1);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "payload")), "hi");
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "name")), "J\xc3\xbcrgen Smith");
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "empty")), "");
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "flag")), "");
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "x")), "2");
    CHECK_STREQ(json_string_value(json_object_get(f.rec.last, "amp&")), "=");
    CHECK_EQ_INT(json_object_size(f.rec.last), 6);
    /* refused bodies: correctly signed, still -EINVAL */
    const struct {
        const char *ctype, *body;
    } bad[] = {
        {"application/json", "[1, 2]"},
        {"application/json", "\"text\""},
        {"application/json", "{\"a\": "},
        {"text/plain", "a=1"},
        {NULL, "{}"},
        {"application/x-www-form-urlencoded", "a=%zz"},
        {"application/x-www-form-urlencoded", "a=%00"},
        {"application/x-www-form-urlencoded", "a=%ff"},
        {"application/json", "{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}"},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        int rc = post(&f, id, SECRET, bad[i].ctype, bad[i].body, &err);
        if (rc != -EINVAL)
            fprintf(stderr, "  body %zu (%s) gave %d\n", i, bad[i].body, rc);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK(strlen(err.msg) > 0);
    }
    CHECK_EQ_INT(f.rec.fires, 1);
    /* too large */
    size_t big = 1024 * 1024 + 1;
    char *data = malloc(big + 1);
    memset(data, 'a', big);
    data[big] = '\0';
    CHECK_EQ_INT(post(&f, id, SECRET, "application/json", data, &err), -E2BIG);
    free(data);
    CHECK_EQ_INT(f.rec.fires, 1);
    feed_webhook_ops.unbind(f.self, b);
out:
    fx_done(&f);
}

static void hook_id_from_state_and_unknown(void)
{
    struct fx f;
    struct feed_binding *b = NULL, *b2 = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    const char *saved = "00112233445566778899aabbccddeeff";
    json_t *state = json_pack("{s:s}", "id", saved);
    CHECK_EQ_INT(bind_text(&f, "{\"secret\": \"" SECRET "\"}", state, &b, &err), 0);
    CHECK_STREQ(feed_webhook_id(b), saved);
    settle(&f);
    CHECK_STREQ(json_string_value(json_object_get(f.rec.state, "id")), saved);
    CHECK_EQ_INT(post(&f, saved, SECRET, "application/json", "{}", &err), 0);
    CHECK_EQ_INT(f.rec.fires, 1);
    /* unknown ids */
    CHECK_EQ_INT(
        post(&f, "00112233445566778899aabbccddeefe", SECRET, "application/json", "{}", &err),
        -ENOENT);
    CHECK_EQ_INT(post(&f, "0011", SECRET, "application/json", "{}", &err), -ENOENT);
    CHECK_EQ_INT(post(&f, "", SECRET, "application/json", "{}", &err), -ENOENT);
    CHECK_EQ_INT(feed_webhook_request(f.self, NULL, NULL, NULL, NULL, 0, &err), -ENOENT);
    /* the same saved id on a second binding is not shared */
    CHECK_EQ_INT(bind_text(&f, "{\"secret\": \"" SECRET "\"}", state, &b2, &err), 0);
    CHECK(strcmp(feed_webhook_id(b2), saved) != 0);
    CHECK(strlen(feed_webhook_id(b2)) == 32);
    /* a malformed saved id is replaced */
    json_t *junk = json_pack("{s:s}", "id", "../../etc");
    feed_webhook_ops.unbind(f.self, b2);
    CHECK_EQ_INT(bind_text(&f, "{\"secret\": \"" SECRET "\"}", junk, &b2, &err), 0);
    CHECK(strlen(feed_webhook_id(b2)) == 32 &&
          strspn(feed_webhook_id(b2), "0123456789abcdef") == 32);
    json_decref(junk);
    json_decref(state);
    feed_webhook_ops.unbind(f.self, b2);
    feed_webhook_ops.unbind(f.self, b);
    settle(&f); /* unbound before the deferred save: nothing more is saved */
out:
    fx_done(&f);
}

static void hook_paused_and_status(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    CHECK_EQ_INT(bind_text(&f, "{\"secret\": \"" SECRET "\"}", NULL, &b, &err), 0);
    const char *id = feed_webhook_id(b);
    feed_webhook_ops.set_paused(f.self, b, true);
    CHECK_EQ_INT(post(&f, id, SECRET, "application/json", "{}", &err), -EAGAIN);
    CHECK_EQ_INT(f.rec.fires, 0);
    /* a bad signature is still refused as such */
    CHECK_EQ_INT(post(&f, id, "some-other-secret-xx", "application/json", "{}", &err), -EACCES);
    json_t *st = feed_webhook_ops.status(f.self, b);
    CHECK_STREQ(json_string_value(json_object_get(st, "id")), id);
    CHECK(json_is_true(json_object_get(st, "paused")));
    CHECK_EQ_INT(json_integer_value(json_object_get(st, "requests")), 2);
    CHECK_EQ_INT(json_integer_value(json_object_get(st, "rejected")), 1);
    CHECK_EQ_INT(json_integer_value(json_object_get(st, "fires")), 0);
    char *dump = json_dumps(st, 0);
    CHECK(dump && !strstr(dump, SECRET) && !strstr(dump, "0123456789abcdef"));
    free(dump);
    json_decref(st);
    feed_webhook_ops.set_paused(f.self, b, false);
    CHECK_EQ_INT(post(&f, id, SECRET, "application/json", "{}", &err), 0);
    CHECK_EQ_INT(f.rec.fires, 1);
    feed_webhook_ops.unbind(f.self, b);
out:
    fx_done(&f);
}

static void hook_bad_params(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f))
        goto out;
    const char *bad[] = {
        "{}",
        "{\"secret\": 12345678901234567}",
        "{\"secret\": \"short\"}",
        "{\"secret\": \"" SECRET "\", \"trigger_payload\": [1]}",
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        CHECK_EQ_INT(bind_text(&f, bad[i], NULL, &b, &err), -EINVAL);
        CHECK(strlen(err.msg) > 0);
        CHECK(!strstr(err.msg, SECRET));
    }
    char longer[400];
    memset(longer, 'x', 257);
    longer[257] = '\0';
    json_t *p = json_pack("{s:s}", "secret", longer);
    CHECK_EQ_INT(feed_webhook_ops.bind(f.self, "guest", "hooked", p, NULL, &b, &err), -EINVAL);
    json_decref(p);
    longer[256] = '\0';
    p = json_pack("{s:s}", "secret", longer);
    CHECK_EQ_INT(feed_webhook_ops.bind(f.self, "guest", "hooked", p, NULL, &b, &err), 0);
    json_decref(p);
    feed_webhook_ops.unbind(f.self, b);
    CHECK_EQ_INT(f.rec.saves, 0);
out:
    fx_done(&f);
}

/* core may unbind the binding, or stop the adapter, from inside fire */
static struct fx *reentry_fx;
static struct feed_binding *reentry_b;
static int reentry_mode;

static int fire_and_leave(void *ctx, const char *ns, const char *trigger, const json_t *params)
{
    (void)ctx;
    (void)ns;
    (void)trigger;
    (void)params;
    if (reentry_mode == 1)
        feed_webhook_ops.unbind(reentry_fx->self, reentry_b);
    else {
        feed_webhook_ops.stop(reentry_fx->self);
        reentry_fx->self = NULL;
    }
    return 0;
}

static void hook_unbind_inside_fire(void)
{
    for (reentry_mode = 1; reentry_mode <= 2; reentry_mode++) {
        struct fx f;
        struct wisp_err err;
        if (!fx_init(&f))
            break;
        f.env.fire = fire_and_leave;
        feed_webhook_ops.stop(f.self);
        CHECK_EQ_INT(feed_webhook_ops.start(&f.env, &f.self, &err), 0);
        reentry_fx = &f;
        CHECK_EQ_INT(bind_text(&f, "{\"secret\": \"" SECRET "\"}", NULL, &reentry_b, &err), 0);
        char id[33];
        snprintf(id, sizeof id, "%s", feed_webhook_id(reentry_b));
        void *self = f.self;
        char sig[72];
        sign(SECRET, "{}", 2, sig);
        CHECK_EQ_INT(feed_webhook_request(self, id, sig, "application/json", "{}", 2, &err), 0);
        if (f.self)
            CHECK_EQ_INT(post(&f, id, SECRET, "application/json", "{}", &err), -ENOENT);
        fx_done(&f);
    }
}

static const struct check_test tests[] = {
    {"hook_signed_request_fires", hook_signed_request_fires},
    {"hook_bad_signatures", hook_bad_signatures},
    {"hook_bodies", hook_bodies},
    {"hook_id_from_state_and_unknown", hook_id_from_state_and_unknown},
    {"hook_paused_and_status", hook_paused_and_status},
    {"hook_bad_params", hook_bad_params},
    {"hook_unbind_inside_fire", hook_unbind_inside_fire},
};

CHECK_MAIN(tests)
