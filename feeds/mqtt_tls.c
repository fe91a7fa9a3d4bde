/* feeds/mqtt_tls.c - see mqtt_tls.h. The chain is verified by OpenSSL's
 * X509_verify_cert, wrapped (SSL_CTX_set_cert_verify_callback) only to
 * keep the reason, so the feed's lastError says which check failed instead
 * of libmosquitto's "A TLS error occurred". OpenSSL stops at the first
 * failure, in its order: the chain to a trusted CA, the address
 * (X509_V_ERR_IP_ADDRESS_MISMATCH), then signatures and validity dates. */
#include "mqtt_tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef WISP_HAVE_LIBSSL
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

static int check_chain(X509_STORE_CTX *sctx, void *arg)
{
    struct mqtt_tls_check *chk = arg;
    chk->why[0] = '\0';
    int ok = X509_verify_cert(sctx);
    if (ok > 0)
        return ok;
    int e = X509_STORE_CTX_get_error(sctx);
    if (e == X509_V_ERR_IP_ADDRESS_MISMATCH)
        snprintf(chk->why, sizeof chk->why,
                 "TLS: certificate verify failed: no subjectAltName IP entry for %.45s (a CN or "
                 "DNS name spelling it does not count)",
                 chk->ip);
    else
        snprintf(chk->why, sizeof chk->why, "TLS: certificate verify failed: %s",
                 X509_verify_cert_error_string(e));
    return ok;
}

int mqtt_tls_ctx_new(struct mqtt_tls_check *chk, const char *ca_file, const char *ca_path,
                     bool check_ip, void **out, struct wisp_err *err)
{
    unsigned char a[16];
    if (check_ip && inet_pton(AF_INET, chk->ip, a) != 1 && inet_pton(AF_INET6, chk->ip, a) != 1)
        return wisp_err_set(err, -EINVAL, "mqtt: '%.60s' is not an IP address", chk->ip);
    chk->why[0] = '\0';
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return wisp_err_set(err, -ENOMEM, "mqtt: cannot create the TLS context");
    int rc = 0;
    ERR_clear_error();
    if (SSL_CTX_load_verify_locations(ctx, ca_file, ca_file ? NULL : ca_path) != 1) {
        char why[128];
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof why);
        rc = wisp_err_set(err, -EINVAL, "mqtt: cannot use the CA certificates %.100s: %s",
                          ca_file ? ca_file : ca_path, why);
        goto out;
    }
    /* set1_ip_asc: matched against iPAddress entries only (X509_check_ip
     * never looks at the CN) */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        (check_ip && X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), chk->ip) != 1)) {
        rc = wisp_err_set(err, -ENOMEM, "mqtt: cannot set up the TLS context");
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, check_chain, chk);
out:
    ERR_clear_error();
    if (rc < 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void mqtt_tls_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx);
}

#else /* built without OpenSSL's headers */

int mqtt_tls_ctx_new(struct mqtt_tls_check *chk, const char *ca_file, const char *ca_path,
                     bool check_ip, void **out, struct wisp_err *err)
{
    (void)ca_path;
    chk->why[0] = '\0';
    *out = NULL;
    /* a CA file that cannot be read is named first, as with OpenSSL */
    if (ca_file && access(ca_file, R_OK) < 0)
        return wisp_err_set(err, -EINVAL, "mqtt: cannot use the CA certificates %.100s: %s",
                            ca_file, strerror(errno));
    if (!check_ip)
        return 0;
    return wisp_err_set(err, -ENOTSUP,
                        "mqtt: this wispd was built without OpenSSL's headers (libssl-dev) and "
                        "cannot check that the broker's certificate is for %.45s; mqtts:// "
                        "needs them (?insecure=1 skips the check, for tests)",
                        chk->ip);
}

void mqtt_tls_ctx_free(void *ctx)
{
    (void)ctx;
}

#endif
