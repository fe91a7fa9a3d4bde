/* core/tls.c - see tls.h. The mbedtls BIO callbacks never block: recv
 * takes from the current cipher_in buffer or says WANT_READ, send appends
 * to the current cipher_out buffer (bounded by the connection's own flow:
 * the HTTP layer stops producing while output is queued). */
#include "tls.h"

#include <errno.h>
#include <event2/buffer.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct tls_server {
    mbedtls_ssl_config conf;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
};

struct tls_conn {
    mbedtls_ssl_context ssl;
    bool handshake_done;
    struct evbuffer *in, *out; /* set for the duration of one call */
};

static int bio_send(void *arg, const unsigned char *buf, size_t len)
{
    struct tls_conn *c = arg;
    if (!c->out || evbuffer_add(c->out, buf, len) < 0)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    return (int)len;
}

static int bio_recv(void *arg, unsigned char *buf, size_t len)
{
    struct tls_conn *c = arg;
    if (!c->in || evbuffer_get_length(c->in) == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    int n = evbuffer_remove(c->in, buf, len);
    return n > 0 ? n : MBEDTLS_ERR_SSL_WANT_READ;
}

void tls_server_free(struct tls_server *s)
{
    if (!s)
        return;
    mbedtls_ssl_config_free(&s->conf);
    mbedtls_x509_crt_free(&s->cert);
    mbedtls_pk_free(&s->key);
    mbedtls_ctr_drbg_free(&s->drbg);
    mbedtls_entropy_free(&s->entropy);
    free(s);
}

int tls_server_new(const char *cert_path, const char *key_path, struct tls_server **out,
                   struct wisp_err *err)
{
    struct tls_server *s = calloc(1, sizeof *s);
    if (!s)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    mbedtls_ssl_config_init(&s->conf);
    mbedtls_x509_crt_init(&s->cert);
    mbedtls_pk_init(&s->key);
    mbedtls_entropy_init(&s->entropy);
    mbedtls_ctr_drbg_init(&s->drbg);
    char msg[128];
    int rc;
    if ((rc = mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy,
                                    (const unsigned char *)"wispd", 5))) {
        mbedtls_strerror(rc, msg, sizeof msg);
        wisp_err_set(err, -EIO, "tls: cannot seed the random generator: %s", msg);
        goto fail;
    }
    if ((rc = mbedtls_x509_crt_parse_file(&s->cert, cert_path))) {
        mbedtls_strerror(rc, msg, sizeof msg);
        wisp_err_set(err, -EINVAL, "tls-cert %s: %s", cert_path, msg);
        goto fail;
    }
    if ((rc = mbedtls_pk_parse_keyfile(&s->key, key_path, NULL))) {
        mbedtls_strerror(rc, msg, sizeof msg);
        wisp_err_set(err, -EINVAL, "tls-key %s: %s", key_path, msg);
        goto fail;
    }
    if ((rc = mbedtls_ssl_config_defaults(&s->conf, MBEDTLS_SSL_IS_SERVER,
                                          MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT))) {
        wisp_err_set(err, -EIO, "tls: cannot set defaults");
        goto fail;
    }
    mbedtls_ssl_conf_min_version(&s->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3); /* TLS 1.2 and up */
    mbedtls_ssl_conf_rng(&s->conf, mbedtls_ctr_drbg_random, &s->drbg);
    if ((rc = mbedtls_ssl_conf_own_cert(&s->conf, &s->cert, &s->key))) {
        mbedtls_strerror(rc, msg, sizeof msg);
        wisp_err_set(err, -EINVAL, "tls: certificate and key do not go together: %s", msg);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    tls_server_free(s);
    return err ? err->code : -EINVAL;
}

struct tls_conn *tls_conn_new(struct tls_server *s)
{
    struct tls_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    mbedtls_ssl_init(&c->ssl);
    if (mbedtls_ssl_setup(&c->ssl, &s->conf)) {
        mbedtls_ssl_free(&c->ssl);
        free(c);
        return NULL;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    return c;
}

void tls_conn_free(struct tls_conn *c)
{
    if (!c)
        return;
    mbedtls_ssl_free(&c->ssl);
    free(c);
}

bool tls_conn_ready(const struct tls_conn *c)
{
    return c->handshake_done;
}

int tls_conn_read(struct tls_conn *c, struct evbuffer *cipher_in, struct evbuffer *plain_in,
                  struct evbuffer *cipher_out)
{
    int rc = 0;
    c->in = cipher_in;
    c->out = cipher_out;
    if (!c->handshake_done) {
        int h = mbedtls_ssl_handshake(&c->ssl);
        if (h == MBEDTLS_ERR_SSL_WANT_READ || h == MBEDTLS_ERR_SSL_WANT_WRITE)
            goto out;
        if (h) {
            char msg[128];
            mbedtls_strerror(h, msg, sizeof msg);
            wlog_debug("tls", "handshake failed: %s", msg);
            rc = -EPROTO;
            goto out;
        }
        c->handshake_done = true;
    }
    for (;;) {
        unsigned char buf[16384];
        int n = mbedtls_ssl_read(&c->ssl, buf, sizeof buf);
        if (n > 0) {
            if (evbuffer_add(plain_in, buf, (size_t)n) < 0) {
                rc = -ENOMEM;
                break;
            }
            continue;
        }
        if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE)
            break;
        rc = n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ? 1 : -EPROTO;
        break;
    }
out:
    c->in = c->out = NULL;
    return rc;
}

int tls_conn_write(struct tls_conn *c, struct evbuffer *plain_out, struct evbuffer *cipher_out)
{
    if (!c->handshake_done)
        return 0;
    int rc = 0;
    c->out = cipher_out;
    while (evbuffer_get_length(plain_out) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(plain_out, -1, NULL, &v, 1) < 1)
            break;
        int n = mbedtls_ssl_write(&c->ssl, v.iov_base, v.iov_len);
        if (n <= 0) {
            rc = -EPROTO;
            break;
        }
        evbuffer_drain(plain_out, (size_t)n);
    }
    c->out = NULL;
    return rc;
}

void tls_conn_close(struct tls_conn *c, struct evbuffer *cipher_out)
{
    c->out = cipher_out;
    mbedtls_ssl_close_notify(&c->ssl);
    c->out = NULL;
}
