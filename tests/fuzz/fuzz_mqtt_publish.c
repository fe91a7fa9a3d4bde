/* Fuzz target: an incoming MQTT v5 PUBLISH as feeds/mqtt.c takes it. The
 * input is the packet (fixed header, topic, packet id, properties,
 * payload); feed_mqtt_fuzz_publish() decodes it as libmosquitto does and
 * runs the adapter's on_message and work event: subscription identifiers
 * (at most MAX_IDS kept), matching by identifier or by topic against the
 * bindings below, and the fire params of each payload mode (JSON object,
 * text, base64). The adapter is started on a loop that never runs, so it
 * never connects; its subscriber link stays down and takes the
 * subscription identifiers as a broker that grants them would. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"
#include "fuzz_targets.h"

static struct event_base *base;
static void *self;
static unsigned fired[5];

static const struct {
    const char *topic, *payload;
} binds[5] = {
    {"#", "json"},   {"a/+/c", "text"},  {"$share/g/a/#", "base64"},
    {"a/b", "json"}, {"$SYS/#", "text"},
};

static bool b64_text(const char *s)
{
    size_t n = strlen(s);
    if (n % 4)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", s[i]))
            return false;
    return true;
}

static int on_fire(void *ctx, const char *ns, const char *trigger, const json_t *params)
{
    (void)ctx, (void)ns;
    int i = trigger[0] - '0';
    if (i < 0 || i > 4 || !json_is_object(params) ||
        !json_is_string(json_object_get(params, "topic")))
        abort();
    fired[i]++;
    const json_t *p = json_object_get(params, "payload");
    bool b64 = json_is_true(json_object_get(params, "payload_base64"));
    if (strcmp(binds[i].payload, "json") != 0) {
        /* {"payload", "topic", "qos", "retain"}, base64 when asked or not text */
        json_int_t q = json_integer_value(json_object_get(params, "qos"));
        if (!json_is_string(p) || q < 0 || q > 2 ||
            !json_is_boolean(json_object_get(params, "retain")))
            abort();
        if (strcmp(binds[i].payload, "base64") == 0 && !b64)
            abort();
        if (b64 && !b64_text(json_string_value(p)))
            abort();
    }
    return 0;
}

static void setup(void)
{
    base = event_base_new();
    static struct feed_env env;
    env = (struct feed_env){
        .base = base, .fire = on_fire, .mqtt_url = "mqtt://127.0.0.1:1", .client_id = "fuzz"};
    struct wisp_err err = {0};
    if (!base || feed_mqtt_ops.start(&env, &self, &err) != 0)
        abort();
    for (int i = 0; i < 5; i++) {
        char trig[2] = {(char)('0' + i), '\0'};
        struct feed_binding *b;
        json_t *p = json_pack("{s:s,s:s,s:i}", "topic", binds[i].topic, "payload", binds[i].payload,
                              "qos", i % 3);
        if (feed_mqtt_ops.bind(self, "guest", trig, p, NULL, &b, &err) != 0)
            abort();
        json_decref(p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!self)
        setup();
    memset(fired, 0, sizeof fired);
    (void)feed_mqtt_fuzz_publish(self, data, size);
    for (int i = 0; i < 5; i++)
        if (fired[i] > 1)
            abort(); /* one message fires a binding at most once */
    return 0;
}
