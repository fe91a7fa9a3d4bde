/* Fuzz target: the webhook feed's request path (feeds/webhook.c) as core
 * hands it a POST /hooks/{id}. The first byte b picks the Content-Type (b %
 * 5) and what else comes from the input (b / 5 % 8):
 *   0, 6, 7  the rest is the body, signed with the binding's secret, so it
 *            reaches the JSON and form readers;
 *   1        the Content-Type is the input up to the first newline;
 *   2        the X-Hub-Signature-256 value is the input up to the first
 *            newline: refused (-EACCES) unless it is the right one;
 *   3        the hook id is the input up to the first newline: -ENOENT
 *            unless it is the binding's;
 *   4        the right MAC in upper-case hex, 5 no signature at all: both
 *            refused.
 * Whatever it fires must be an object, and every refusal says why. */
#include <ctype.h>
#include <errno.h>
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
    int variant = size ? data[0] / 5 % 8 : 0;
    const char *body = size ? (const char *)data + 1 : "";
    size_t len = size ? size - 1 : 0;
    /* variants 1..3: a header value, then the body */
    char field[256] = "";
    if (variant >= 1 && variant <= 3) {
        const char *nl = memchr(body, '\n', len);
        size_t fl = nl ? (size_t)(nl - body) : len;
        if (fl >= sizeof field || memchr(body, '\0', fl))
            return 0; /* longer than any header we test, or not a C string */
        memcpy(field, body, fl);
        field[fl] = '\0';
        body += nl ? fl + 1 : fl;
        len -= nl ? fl + 1 : fl;
    }
    unsigned char mac[32];
    char hex[65], sig[72];
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)SECRET,
                    strlen(SECRET), (const unsigned char *)body, len, mac);
    plat_hex(mac, sizeof mac, hex);
    if (variant == 4)
        for (char *h = hex; *h; h++)
            *h = (char)toupper((unsigned char)*h);
    snprintf(sig, sizeof sig, "sha256=%s", hex);
    const char *use_sig = variant == 2 ? field : variant == 5 ? NULL : sig;
    const char *use_id = variant == 3 ? field : hook_id;
    if (variant == 1)
        ctype = field;
    struct wisp_err err = {0};
    int rc = feed_webhook_request(self, use_id, use_sig, ctype, body, len, &err);
    if (rc != 0 && !err.msg[0])
        abort(); /* every refusal says why */
    bool right_id = strcmp(use_id, hook_id) == 0;
    bool right_sig = use_sig && strcmp(use_sig, sig) == 0 && variant != 4;
    if (!right_id && rc != -ENOENT)
        abort();
    if (right_id && !right_sig && rc != -EACCES && rc != -E2BIG)
        abort();
    event_base_loop(base, EVLOOP_NONBLOCK);
    return 0;
}
