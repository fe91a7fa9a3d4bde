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

#include "dl.h"

/* OpenSSL, reached as libmosquitto is (mqtt_lib.h): loaded with the first
 * context, by its soname; libmosquitto has loaded it already. */
PLAT_DLOPEN_NOTE(dlopen_note_ssl, "mqtts", "the broker certificate check of mqtts:// links",
                 WISP_SONAME_SSL);

#define SSL_FUNCS(X)                                                                               \
    X(TLS_client_method)                                                                           \
    X(SSL_CTX_new)                                                                                 \
    X(SSL_CTX_free)                                                                                \
    X(SSL_CTX_ctrl)                                                                                \
    X(SSL_CTX_get0_param)                                                                          \
    X(SSL_CTX_load_verify_locations)                                                               \
    X(SSL_CTX_set_verify)                                                                          \
    X(SSL_CTX_set_cert_verify_callback)                                                            \
    X(X509_verify_cert)                                                                            \
    X(X509_verify_cert_error_string)                                                               \
    X(X509_STORE_CTX_get_error)                                                                    \
    X(X509_VERIFY_PARAM_set1_ip_asc)                                                               \
    X(ERR_clear_error)                                                                             \
    X(ERR_error_string_n)                                                                          \
    X(ERR_peek_last_error)

#define SSL_MEMBER(f) __typeof__(f) *f;
static struct {
    SSL_FUNCS(SSL_MEMBER)
} ssl;
#undef SSL_MEMBER

static int ssl_load(struct wisp_err *err)
{
    static bool loaded;
    if (loaded)
        return 0;
    void *h = plat_dl_open(WISP_SONAME_SSL, "mqtts", err);
    if (!h)
        return -ENOENT;
    /* symbols of libcrypto too: dlsym looks through the library's
     * dependencies */
#define SSL_LOAD(f)                                                                                \
    if (!(*(void **)&ssl.f = plat_dl_sym(h, WISP_SONAME_SSL, #f, err)))                           \
        return -ENOENT;
    SSL_FUNCS(SSL_LOAD)
#undef SSL_LOAD
    loaded = true;
    return 0;
}

static int check_chain(X509_STORE_CTX *sctx, void *arg)
{
    struct mqtt_tls_check *chk = arg;
    chk->why[0] = '\0';
    int ok = ssl.X509_verify_cert(sctx);
    if (ok > 0)
        return ok;
    int e = ssl.X509_STORE_CTX_get_error(sctx);
    if (e == X509_V_ERR_IP_ADDRESS_MISMATCH)
        snprintf(chk->why, sizeof chk->why,
                 "TLS: certificate verify failed: no subjectAltName IP entry for %.45s (a CN or "
                 "DNS name spelling it does not count)",
                 chk->ip);
    else
        snprintf(chk->why, sizeof chk->why, "TLS: certificate verify failed: %s",
                 ssl.X509_verify_cert_error_string(e));
    return ok;
}

int mqtt_tls_ctx_new(struct mqtt_tls_check *chk, const char *ca_file, const char *ca_path,
                     bool check_ip, void **out, struct wisp_err *err)
{
    unsigned char a[16];
    if (check_ip && inet_pton(AF_INET, chk->ip, a) != 1 && inet_pton(AF_INET6, chk->ip, a) != 1)
        return wisp_err_set(err, -EINVAL, "mqtt: '%.60s' is not an IP address", chk->ip);
    chk->why[0] = '\0';
    int loaded = ssl_load(err);
    if (loaded < 0)
        return loaded;
    SSL_CTX *ctx = ssl.SSL_CTX_new(ssl.TLS_client_method());
    if (!ctx)
        return wisp_err_set(err, -ENOMEM, "mqtt: cannot create the TLS context");
    int rc = 0;
    ssl.ERR_clear_error();
    if (ssl.SSL_CTX_load_verify_locations(ctx, ca_file, ca_file ? NULL : ca_path) != 1) {
        char why[128];
        ssl.ERR_error_string_n(ssl.ERR_peek_last_error(), why, sizeof why);
        rc = wisp_err_set(err, -EINVAL, "mqtt: cannot use the CA certificates %.100s: %s",
                          ca_file ? ca_file : ca_path, why);
        goto out;
    }
    /* set1_ip_asc: matched against iPAddress entries only (X509_check_ip
     * never looks at the CN) */
    if (ssl.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL) != 1 ||
        (check_ip && ssl.X509_VERIFY_PARAM_set1_ip_asc(ssl.SSL_CTX_get0_param(ctx), chk->ip) != 1)) {
        rc = wisp_err_set(err, -ENOMEM, "mqtt: cannot set up the TLS context");
        goto out;
    }
    ssl.SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    ssl.SSL_CTX_set_cert_verify_callback(ctx, check_chain, chk);
out:
    ssl.ERR_clear_error();
    if (rc < 0) {
        ssl.SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void mqtt_tls_ctx_free(void *ctx)
{
    if (ctx)
        ssl.SSL_CTX_free(ctx);
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
