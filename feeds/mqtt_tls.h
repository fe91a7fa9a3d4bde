/* feeds/mqtt_tls.h - the TLS context of mqtts:// links.
 *
 * libmosquitto 2.0.11 does TLS with OpenSSL (not mbedtls), and its own
 * host check (the verify callback it installs when it builds the context)
 * takes a certificate whose CN or dNSName entry spells the broker's IP, and
 * falls back to the CN when the certificate has iPAddress entries only: a
 * certificate for 127.0.0.2 with CN=127.0.0.1 passes for 127.0.0.1
 * (checked with mosquitto_pub, the same library). So the mqtt feed hands
 * libmosquitto a context of its own (MOSQ_OPT_SSL_CTX, without
 * MOSQ_OPT_SSL_CTX_WITH_DEFAULTS: libmosquitto then only runs the
 * handshake on it and adds nothing) in which OpenSSL verifies everything:
 * the chain to the CAs, the validity dates, and the broker's address as
 * an iPAddress entry (X509_VERIFY_PARAM_set1_ip_asc: the address bytes,
 * never the CN or a dNSName); TLS 1.2 is the minimum.
 *
 * Loop thread only (the check runs inside the handshake, which the feed
 * drives from the loop through libmosquitto). Only mqtt_tls.c includes
 * OpenSSL's headers. */
#pragma once
#include <stdbool.h>

#include "wisp.h"

/* What the certificate check of one link knows: the address it insists
 * on, and why the last check failed. Owned by the caller; it must outlive
 * every handshake on the context made with it (the context lives as long
 * as the mosquitto client it is given to). */
struct mqtt_tls_check {
    char ip[64];   /* the broker's IP literal, no brackets */
    char why[160]; /* "TLS: certificate verify failed: ..." or "" */
};

/* A new OpenSSL SSL_CTX (as void *, for mosquitto_void_option(...,
 * MOSQ_OPT_SSL_CTX, ...), which takes a reference of its own: drop ours
 * with mqtt_tls_ctx_free right after). It trusts the PEM file ca_file or,
 * when that is NULL, the hashed directory ca_path (/etc/ssl/certs). With
 * check_ip the certificate must carry chk->ip; without (?insecure=1, for
 * tests) any name goes, the chain and dates are still verified.
 * 0 or -errno with err: -EINVAL for CAs that do not load or a chk->ip that
 * is not an IP literal, -ENOMEM. Built without OpenSSL's headers
 * (libssl-dev; a cross sysroot may lack them) the address cannot be
 * checked: -ENOTSUP when check_ip, else 0 with *out NULL, and the caller
 * leaves TLS to libmosquitto. */
int mqtt_tls_ctx_new(struct mqtt_tls_check *chk, const char *ca_file, const char *ca_path,
                     bool check_ip, void **out, struct wisp_err *err) WISP_MUST_CHECK;
void mqtt_tls_ctx_free(void *ctx);
