/* feeds/webhook.c - the webhook feed kind (/whisk.system/webhook/hook):
 * POST /hooks/{id} fires the trigger when the request is signed with the
 * binding's secret, GitHub style: X-Hub-Signature-256: sha256=<64 lowercase
 * hex of HMAC-SHA256(secret, body)>.
 *
 * Parameters: secret (required, 16..256 characters) and trigger_payload
 * (optional object; a string s becomes {"payload": s}).
 *
 * Each binding has a random hook id (32 lowercase hex, 128 bits); it is the
 * binding's state, so it survives restarts: bind() reuses the id of the
 * state it is given. Every bind saves {"id"} through a zero-delay event
 * (never inside bind()), so the id is stored even when core rewrote the
 * binding's record without its state.
 *
 * A request (feed_webhook_request) is checked in this order: the id
 * (-ENOENT), the size (-E2BIG over MAX_BODY), the signature (-EACCES,
 * compared in constant time), the body (-EINVAL), paused (-EAGAIN,
 * counted as a drop). An empty body is {}, application/json must be an object,
 * application/x-www-form-urlencoded gives string values (the last of
 * repeated keys wins); any other type is refused. The params, merged over
 * trigger_payload, are fired synchronously; core's refusal is returned
 * (-EAGAIN over the fire limit or, from -EBUSY, over the invocation
 * limits; -ENOENT trigger gone) and counted as a drop. The secret is never shown or logged. */
#include <errno.h>
#include <event2/event.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "feed.h"
#include "log.h"
#include "plat.h"
#include "wjson.h"

#define ID_BYTES 16
#define ID_LEN (2 * ID_BYTES)
#define SECRET_MIN 16
#define SECRET_MAX 256
#define MAX_BODY (1024 * 1024)
#define MAX_DEPTH 16 /* the body's nesting (the stored records add their own) */
#define SIG_PREFIX "sha256="
#define SIG_PREFIX_LEN 7

struct hook_self {
    struct feed_env env;
    struct feed_set set;
    struct feed_counters totals;
};

struct feed_binding {
    struct feed_link link; /* first: the set's links are bindings */
    struct hook_self *self;
    char *ns, *trigger;
    char id[ID_LEN + 1];
    unsigned char *secret;
    size_t secret_len;
    json_t *payload;
    struct event *save_ev;
    bool paused;
    uint64_t requests, rejected, fires, drops;
};

/* ---- bindings --------------------------------------------------------- */

static void binding_free(struct feed_binding *b)
{
    struct hook_self *s = b->self;
    feed_set_remove(&s->set, &b->link);
    if (b->save_ev)
        event_free(b->save_ev);
    if (b->secret) {
        mbedtls_platform_zeroize(b->secret, b->secret_len);
        free(b->secret);
    }
    json_decref(b->payload);
    free(b->ns);
    free(b->trigger);
    free(b);
}

/* Ends a callback into core; false when the binding is gone. */
static bool leave(struct feed_binding *b)
{
    return feed_leave(&b->self->set, &b->link);
}

static void free_link(struct feed_link *k)
{
    binding_free((struct feed_binding *)k);
}

static void quiet_link(struct feed_link *k)
{
    event_del(((struct feed_binding *)k)->save_ev);
}

static const struct feed_set_ops set_ops = {free_link, quiet_link, free};

static void enter(struct feed_binding *b)
{
    feed_enter(&b->self->set, &b->link);
}

static void on_save(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct feed_binding *b = arg;
    struct hook_self *s = b->self;
    if (!s->env.save)
        return;
    json_t *st = json_pack("{s:s}", "id", b->id);
    if (!st)
        return;
    enter(b);
    s->env.save(s->env.ctx, b->ns, b->trigger, st);
    json_decref(st);
    leave(b);
}

static bool valid_id(const char *id)
{
    if (!id || strlen(id) != ID_LEN)
        return false;
    for (size_t i = 0; i < ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

static struct feed_binding *find_id(struct hook_self *s, const char *id)
{
    struct feed_binding *found = NULL;
    if (!id || strlen(id) != ID_LEN)
        return NULL;
    /* every binding is compared, in constant time, so the time taken does
     * not tell how much of an id was right */
    for (struct feed_link *k = s->set.head; k; k = k->next) {
        struct feed_binding *b = (struct feed_binding *)k;
        if (plat_ct_equal(b->id, id, ID_LEN)) /* dead ones are out of the set */
            found = b;
    }
    return found;
}

static int parse_params(struct feed_binding *b, const json_t *params, struct wisp_err *err)
{
    const json_t *v = json_object_get(params, "secret");
    if (!v || json_is_null(v))
        return wisp_err_set(err, -EINVAL, "secret: missing");
    if (!json_is_string(v))
        return wisp_err_set(err, -EINVAL, "secret: must be a string");
    size_t n = json_string_length(v);
    if (n < SECRET_MIN || n > SECRET_MAX || strlen(json_string_value(v)) != n)
        return wisp_err_set(err, -EINVAL, "secret: must be %d to %d characters", SECRET_MIN,
                            SECRET_MAX);
    b->secret = malloc(n);
    if (!b->secret)
        return wisp_err_set(err, -ENOMEM, "webhook: out of memory");
    memcpy(b->secret, json_string_value(v), n);
    b->secret_len = n;
    v = json_object_get(params, "trigger_payload");
    if (!v || json_is_null(v))
        b->payload = json_object();
    else if (json_is_object(v))
        b->payload = json_deep_copy(v);
    else if (json_is_string(v))
        b->payload = json_pack("{s:s}", "payload", json_string_value(v));
    else
        return wisp_err_set(err, -EINVAL, "trigger_payload: must be an object");
    return b->payload ? 0 : wisp_err_set(err, -ENOMEM, "webhook: out of memory");
}

/* ---- request bodies --------------------------------------------------- */

/* The media type of a Content-Type, without parameters, compared
 * case-insensitively. */
static bool media_is(const char *ctype, const char *want)
{
    if (!ctype)
        return false;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    size_t n = strcspn(ctype, ";");
    while (n > 0 && (ctype[n - 1] == ' ' || ctype[n - 1] == '\t'))
        n--;
    return n == strlen(want) && strncasecmp(ctype, want, n) == 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes (and '+' to space) in[0..len) into out (len + 1 bytes).
 * -1 on a bad escape or a NUL. */
static long form_decode(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 1 < len ? hexval(in[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0')
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

static int parse_form(const char *body, size_t len, json_t **out, struct wisp_err *err)
{
    json_t *obj = json_object();
    char *key = malloc(len + 1), *val = malloc(len + 1);
    int rc = 0;
    if (!obj || !key || !val) {
        rc = wisp_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(body + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - body) : len;
        const char *seg = body + i;
        size_t sl = end - i;
        i = end + 1;
        if (sl == 0)
            continue;
        const char *eq = memchr(seg, '=', sl);
        size_t kl = eq ? (size_t)(eq - seg) : sl;
        long kn = form_decode(seg, kl, key);
        long vn = eq ? form_decode(eq + 1, sl - kl - 1, val) : 0;
        if (!eq)
            val[0] = '\0';
        if (kn < 0 || vn < 0) {
            rc = wisp_err_set(err, -EINVAL, "The form body has a bad %%-escape or a NUL.");
            goto out;
        }
        if (kn == 0)
            continue;
        json_t *v = json_stringn(val, (size_t)vn);
        if (!v || json_object_setn_new(obj, key, (size_t)kn, v) != 0) {
            rc = wisp_err_set(err, -EINVAL, "The form body is not UTF-8 text.");
            goto out;
        }
    }
    *out = obj;
    obj = NULL;
out:
    json_decref(obj);
    free(key);
    free(val);
    return rc;
}

static int parse_body(const char *ctype, const char *body, size_t len, json_t **out,
                      struct wisp_err *err)
{
    if (len == 0)
        *out = json_object();
    else if (media_is(ctype, "application/json")) {
        json_error_t je;
        json_t *j = wjson_load(body, len, 0, &je);
        if (!j)
            return wisp_err_set(err, -EINVAL, "The request content was malformed: %s", je.text);
        if (!json_is_object(j)) {
            json_decref(j);
            return wisp_err_set(err, -EINVAL, "The JSON body must be an object.");
        }
        if (wjson_depth(j) > MAX_DEPTH) {
            json_decref(j);
            return wisp_err_set(err, -EINVAL, "The JSON body is nested more than %d levels deep.",
                                MAX_DEPTH);
        }
        *out = j;
    } else if (media_is(ctype, "application/x-www-form-urlencoded")) {
        return parse_form(body, len, out, err);
    } else {
        return wisp_err_set(
            err, -EINVAL,
            "The body must be application/json or application/x-www-form-urlencoded.");
    }
    return *out ? 0 : wisp_err_set(err, -ENOMEM, "out of memory");
}

static bool signature_ok(const struct feed_binding *b, const char *sig, const char *body,
                         size_t len)
{
    unsigned char mac[32];
    char hex[65];
    if (strlen(sig) != SIG_PREFIX_LEN + 64 || strncmp(sig, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
        return false;
    if (mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), b->secret, b->secret_len,
                        (const unsigned char *)(body ? body : ""), len, mac) != 0)
        return false;
    plat_hex(mac, sizeof mac, hex);
    bool ok = plat_ct_equal(hex, sig + SIG_PREFIX_LEN, 64);
    mbedtls_platform_zeroize(mac, sizeof mac);
    return ok;
}

/* ---- the operation ---------------------------------------------------- */

int feed_webhook_request(void *self, const char *id, const char *sig, const char *ctype,
                         const char *body, size_t len, struct wisp_err *err)
{
    struct hook_self *s = self;
    struct feed_binding *b = s ? find_id(s, id) : NULL;
    if (!b)
        return wisp_err_set(err, -ENOENT, "The requested resource does not exist.");
    b->requests++;
    if (len > MAX_BODY) {
        b->rejected++;
        return wisp_err_set(err, -E2BIG, "The body is larger than %d bytes.", MAX_BODY);
    }
    if (!sig || !*sig) {
        b->rejected++;
        return wisp_err_set(err, -EACCES, "missing signature (X-Hub-Signature-256)");
    }
    if (!signature_ok(b, sig, body, len)) {
        b->rejected++;
        return wisp_err_set(err, -EACCES, "signature mismatch");
    }
    json_t *data = NULL;
    int rc = parse_body(ctype, body, len, &data, err);
    if (rc < 0) {
        b->rejected++;
        return rc;
    }
    s->totals.events_in++;
    if (b->paused) {
        json_decref(data);
        b->drops++;
        s->totals.drops++;
        return wisp_err_set(err, -EAGAIN, "The trigger's webhook is paused.");
    }
    json_t *params = json_deep_copy(b->payload);
    if (!params || json_object_update(params, data) != 0) {
        json_decref(params);
        json_decref(data);
        b->drops++;
        s->totals.drops++;
        return wisp_err_set(err, -ENOMEM, "out of memory");
    }
    json_decref(data);
    enter(b);
    rc = s->env.fire(s->env.ctx, b->ns, b->trigger, params);
    json_decref(params);
    if (rc == 0) {
        b->fires++;
        s->totals.fires++;
    } else {
        b->drops++;
        s->totals.drops++;
        wlog_debug("webhook", "fire refused trigger=%s/%s rc=%d", b->ns, b->trigger, rc);
        if (rc == -EAGAIN)
            wisp_err_set(err, rc, "The trigger's fire limit was reached.");
        else if (rc == -EBUSY) /* the caller retries: 429 */
            rc = wisp_err_set(err, -EAGAIN,
                              "The namespace is at its invocation limits; try again later.");
        else if (rc == -ENOENT)
            wisp_err_set(err, rc, "The trigger does not exist any more.");
        else
            wisp_err_set(err, rc, "The trigger could not be fired.");
    }
    leave(b);
    return rc;
}

const char *feed_webhook_id(const struct feed_binding *b)
{
    return b ? b->id : NULL;
}

/* ---- ops -------------------------------------------------------------- */

static int hook_start(const struct feed_env *env, void **self, struct wisp_err *err)
{
    if (!env || !env->base || !env->fire)
        return wisp_err_set(err, -EINVAL, "webhook: needs an event base and a fire callback");
    struct hook_self *s = calloc(1, sizeof *s);
    if (!s)
        return wisp_err_set(err, -ENOMEM, "webhook: out of memory");
    s->env = *env;
    s->env.mqtt_url = NULL;
    s->env.client_id = NULL;
    feed_set_init(&s->set, &set_ops, s);
    *self = s;
    return 0;
}

static void hook_stop(void *self)
{
    struct hook_self *s = self;
    if (s)
        feed_set_stop(&s->set);
}

static int hook_bind(void *self, const char *ns, const char *trigger, const json_t *params,
                     const json_t *state, struct feed_binding **out, struct wisp_err *err)
{
    struct hook_self *s = self;
    if (!json_is_object(params))
        return wisp_err_set(err, -EINVAL,
                            "params: the webhook feed's parameters must be an object");
    struct feed_binding *b = calloc(1, sizeof *b);
    if (!b)
        return wisp_err_set(err, -ENOMEM, "webhook: out of memory");
    b->self = s;
    b->ns = strdup(ns);
    b->trigger = strdup(trigger);
    b->save_ev = evtimer_new(s->env.base, on_save, b);
    int rc;
    if (!b->ns || !b->trigger || !b->save_ev)
        rc = wisp_err_set(err, -ENOMEM, "webhook: out of memory");
    else
        rc = parse_params(b, params, err);
    if (rc) {
        binding_free(b);
        return rc;
    }
    const char *old = json_is_object(state) ? wjson_str(state, "id") : NULL;
    if (valid_id(old) && !find_id(s, old)) {
        memcpy(b->id, old, ID_LEN + 1);
    } else {
        if (old)
            wlog_warn("webhook", "trigger=%s/%s: the saved hook id is %s; a new one is made", ns,
                      trigger, valid_id(old) ? "in use by another binding" : "malformed");
        do {
            unsigned char raw[ID_BYTES];
            if ((rc = plat_rand_bytes(raw, sizeof raw)) < 0) {
                binding_free(b);
                return wisp_err_set(err, rc, "webhook: no random bytes");
            }
            plat_hex(raw, sizeof raw, b->id);
        } while (find_id(s, b->id));
    }
    feed_set_add(&s->set, &b->link);
    struct timeval zero = {0, 0};
    evtimer_add(b->save_ev, &zero);
    wlog_debug("webhook", "bound trigger=%s/%s reused=%d", ns, trigger,
               old && strcmp(old, b->id) == 0);
    *out = b;
    return 0;
}

static void hook_unbind(void *self, struct feed_binding *b)
{
    (void)self;
    if (!b)
        return;
    if (!feed_retire(&b->self->set, &b->link)) { /* inside its callback: leave() frees it */
        event_del(b->save_ev);
        return;
    }
    binding_free(b);
}

static void hook_set_paused(void *self, struct feed_binding *b, bool paused)
{
    (void)self;
    b->paused = paused;
}

static json_t *hook_status(void *self, const struct feed_binding *b)
{
    (void)self;
    return json_pack("{s:s, s:O, s:b, s:I, s:I, s:I, s:I}", "id", b->id, "trigger_payload",
                     b->payload, "paused", b->paused, "requests", (json_int_t)b->requests,
                     "rejected", (json_int_t)b->rejected, "fires", (json_int_t)b->fires, "drops",
                     (json_int_t)b->drops);
}

static void hook_counters(void *self, struct feed_counters *out)
{
    const struct hook_self *s = self;
    *out = s->totals;
}

static const struct feed_hook_ops hook_hook = {
    .request = feed_webhook_request,
    .id = feed_webhook_id,
};

const struct feed_ops feed_webhook_ops = {
    .kind = "webhook",
    .hook = &hook_hook,
    .start = hook_start,
    .stop = hook_stop,
    .bind = hook_bind,
    .unbind = hook_unbind,
    .set_paused = hook_set_paused,
    .status = hook_status,
    .counters = hook_counters,
};
