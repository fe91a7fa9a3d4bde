/* feeds/mqtt_lib.c - see mqtt_lib.h. */
#include "mqtt_lib.h"

#include <errno.h>
#include <stdbool.h>

#include "dl.h"

PLAT_DLOPEN_NOTE(dlopen_note_mosquitto, "mqtt", "MQTT feeds and result bindings (wispd --mqtt)",
                 WISP_SONAME_MOSQUITTO);

struct mqtt_lib mqtt_lib;

int mqtt_lib_load(struct wisp_err *err)
{
    static bool loaded;
    if (loaded)
        return 0;
    void *h = plat_dl_open(WISP_SONAME_MOSQUITTO, "mqtt", err);
    if (!h)
        return -ENOENT;
    struct mqtt_lib t;
    /* POSIX's way to take a function from dlsym: through a void * */
#define MQTT_LIB_LOAD(f)                                                                           \
    if (!(*(void **)&t.f = plat_dl_sym(h, WISP_SONAME_MOSQUITTO, #f, err)))                        \
        return -ENOENT;
    MQTT_LIB_FUNCS(MQTT_LIB_LOAD)
#undef MQTT_LIB_LOAD
    mqtt_lib = t;
    loaded = true;
    return 0;
}
