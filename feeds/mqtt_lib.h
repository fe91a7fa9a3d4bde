/* feeds/mqtt_lib.h - the libmosquitto functions the mqtt feed calls,
 * reached through a table that mqtt_lib_load fills when the feed starts
 * (see platform/dl.h for why: a wispd without --mqtt never maps
 * libmosquitto or the OpenSSL it pulls in). The feed calls
 * mqtt_lib.mosquitto_new(...) where it would call mosquitto_new(...); a
 * call made directly does not link, wispd having no DT_NEEDED entry for
 * the library. A function the feed starts to use is one more line in
 * MQTT_LIB_FUNCS. Loop thread only. */
#pragma once
#include <mosquitto.h>

#include "wisp.h"

#define MQTT_LIB_FUNCS(X)                                                                          \
    X(mosquitto_lib_init)                                                                          \
    X(mosquitto_lib_cleanup)                                                                       \
    X(mosquitto_new)                                                                               \
    X(mosquitto_destroy)                                                                           \
    X(mosquitto_strerror)                                                                          \
    X(mosquitto_reason_string)                                                                     \
    X(mosquitto_int_option)                                                                        \
    X(mosquitto_void_option)                                                                       \
    X(mosquitto_username_pw_set)                                                                   \
    X(mosquitto_tls_set)                                                                           \
    X(mosquitto_tls_opts_set)                                                                      \
    X(mosquitto_tls_insecure_set)                                                                  \
    X(mosquitto_connect_bind_v5)                                                                   \
    X(mosquitto_connect_async)                                                                     \
    X(mosquitto_reconnect_async)                                                                   \
    X(mosquitto_disconnect_v5)                                                                     \
    X(mosquitto_socket)                                                                            \
    X(mosquitto_want_write)                                                                        \
    X(mosquitto_loop_read)                                                                         \
    X(mosquitto_loop_write)                                                                        \
    X(mosquitto_loop_misc)                                                                         \
    X(mosquitto_publish_v5)                                                                        \
    X(mosquitto_subscribe_v5)                                                                      \
    X(mosquitto_unsubscribe_v5)                                                                    \
    X(mosquitto_connect_v5_callback_set)                                                           \
    X(mosquitto_disconnect_v5_callback_set)                                                        \
    X(mosquitto_publish_v5_callback_set)                                                           \
    X(mosquitto_subscribe_v5_callback_set)                                                         \
    X(mosquitto_unsubscribe_v5_callback_set)                                                       \
    X(mosquitto_message_v5_callback_set)                                                           \
    X(mosquitto_log_callback_set)                                                                  \
    X(mosquitto_property_add_binary)                                                               \
    X(mosquitto_property_add_byte)                                                                 \
    X(mosquitto_property_add_int16)                                                                \
    X(mosquitto_property_add_int32)                                                                \
    X(mosquitto_property_add_string)                                                               \
    X(mosquitto_property_add_string_pair)                                                          \
    X(mosquitto_property_add_varint)                                                               \
    X(mosquitto_property_check_all)                                                                \
    X(mosquitto_property_free_all)                                                                 \
    X(mosquitto_property_identifier_to_string)                                                     \
    X(mosquitto_property_read_byte)                                                                \
    X(mosquitto_property_read_varint)                                                              \
    X(mosquitto_string_to_property_info)                                                           \
    X(mosquitto_validate_utf8)

#define MQTT_LIB_MEMBER(f) __typeof__(f) *f;
struct mqtt_lib {
    MQTT_LIB_FUNCS(MQTT_LIB_MEMBER)
};
#undef MQTT_LIB_MEMBER

/* Filled by mqtt_lib_load; all NULL before. */
extern struct mqtt_lib mqtt_lib;

/* Loads libmosquitto (WISP_SONAME_MOSQUITTO) once; later calls return at
 * once. 0, or -ENOENT with err naming the library or the function it
 * lacks (the table stays unusable; the feed does not start). */
int mqtt_lib_load(struct wisp_err *err) WISP_MUST_CHECK;
