/* Fuzz target: the webhook feed's request path (feeds/webhook.c) as core
 * hands it a POST /hooks/{id}: the first byte picks the Content-Type, the
 * rest is the body, signed with the binding's secret so the body reaches
 * the JSON and form readers. Whatever it fires must be an object. */
#include <event2/event.h>
#include <mbedtls/md.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"
#include "fuzz_targets.h"
#include "plat.h"

#define SECRET "fuzz-secret-fuzz-secret"

static int on_fire(void *ctx, const char *ns, const char *trigger, const json_t *params)
{
    (void)ctx, (void)ns, (void)trigger;
    if (!json_is_object(params))
        abort();
    return 0;
}

static struct event_base *base;
static void *self;
static const char *hook_id;

static void setup(void)
{
    base = event_base_new();
    static struct feed_env env;
    env = (struct feed_env){.base = base, .fire = on_fire};
    struct wisp_err err = {0};
    struct feed_binding *b = NULL;
    json_t *p = json_pack("{s:s}", "secret", SECRET);
    if (!base || feed_webhook_ops.start(&env, &self, &err) != 0 ||
        feed_webhook_ops.bind(self, "guest", "t", p, NULL, &b, &err) != 0)
        abort();
    json_decref(p);
    hook_id = feed_webhook_id(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!self)
        setup();
    static const char *const types[] = {"application/json", "application/x-www-form-urlencoded",
                                        "application/json; charset=utf-8", "text/plain", NULL};
    const char *ctype = size ? types[data[0] % 5] : NULL;
    const char *body = size ? (const char *)data + 1 : "";
    size_t len = size ? size - 1 : 0;
    unsigned char mac[32];
    char hex[65], sig[72];
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)SECRET,
                    strlen(SECRET), (const unsigned char *)body, len, mac);
    plat_hex(mac, sizeof mac, hex);
    snprintf(sig, sizeof sig, "sha256=%s", hex);
    struct wisp_err err = {0};
    int rc = feed_webhook_request(self, hook_id, sig, ctype, body, len, &err);
    if (rc != 0 && !err.msg[0])
        abort(); /* every refusal says why */
    event_base_loop(base, EVLOOP_NONBLOCK);
    return 0;
}
