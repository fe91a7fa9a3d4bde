/* platform/tls.c - see tls.h. The mbedtls BIO callbacks never block: recv
 * takes from the current cipher_in buffer or says WANT_READ, send appends
 * to the current cipher_out buffer (bounded by the connection's own flow:
 * the HTTP layer stops producing while output is queued). Server and client
 * connections share everything but their mbedtls_ssl_config.
 *
 * The one thing a newcomer gets wrong: mbedtls 2.28 checks the name given
 * to mbedtls_ssl_set_hostname against the certificate's dNSName entries
 * (or, without a subjectAltName, its CN) as text. Handed "127.0.0.1" it
 * would take a certificate whose CN or DNS entry spells the address and
 * refuse one that carries it properly, as an iPAddress entry. So a client
 * for an IP literal gives mbedtls no name at all (which also keeps the IP
 * out of SNI, as RFC 6066 asks) and checks the address itself, in
 * verify_ip(), during the handshake: before the client sends anything of
 * its own beyond the hello. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The random generator a config draws from. */
struct tls_rng {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

struct tls_server {
    mbedtls_ssl_config conf;
    struct tls_rng rng;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
};

struct tls_client {
    mbedtls_ssl_config conf;
    struct tls_rng rng;
    mbedtls_x509_crt ca;
};

/* A subjectAltName iPAddress entry as mbedtls lists it in
 * crt->subject_alt_names: GeneralName [7], primitive, its value the 4 or 16
 * address bytes (RFC 5280, 4.2.1.6). */
#define SAN_IP_TAG (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7)

struct tls_conn {
    mbedtls_ssl_context ssl;
    bool handshake_done;
    int last_err;              /* the mbedtls code behind the last -EPROTO */
    uint32_t verify_flags;     /* the certificate check's findings (clients) */
    struct evbuffer *in, *out; /* set for the duration of one call */
    /* a client for an IP literal: the address the server's certificate
     * must carry as an iPAddress entry (ip_len 4 or 16; 0: a DNS name,
     * which mbedtls checks) */
    unsigned char ip[16];
    size_t ip_len;
    bool ip_mismatch; /* verify_ip found no such entry */
    char ip_text[INET6_ADDRSTRLEN];
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

static void rng_init(struct tls_rng *r)
{
    mbedtls_entropy_init(&r->entropy);
    mbedtls_ctr_drbg_init(&r->drbg);
}

static void rng_free(struct tls_rng *r)
{
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->entropy);
}

static int rng_seed(struct tls_rng *r, struct wisp_err *err)
{
    int rc = mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
                                   (const unsigned char *)"wispd", 5);
    if (rc) {
        char msg[128];
        mbedtls_strerror(rc, msg, sizeof msg);
        return wisp_err_set(err, -EIO, "tls: cannot seed the random generator: %s", msg);
    }
    return 0;
}

/* Defaults shared by both ends: TLS 1.2 and up, our generator. */
static int conf_defaults(mbedtls_ssl_config *conf, int endpoint, struct tls_rng *r,
                         struct wisp_err *err)
{
    if (mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT))
        return wisp_err_set(err, -EIO, "tls: cannot set defaults");
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &r->drbg);
    return 0;
}

void tls_server_free(struct tls_server *s)
{
    if (!s)
        return;
    mbedtls_ssl_config_free(&s->conf);
    mbedtls_x509_crt_free(&s->cert);
    mbedtls_pk_free(&s->key);
    rng_free(&s->rng);
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
    rng_init(&s->rng);
    char msg[128];
    int rc;
    if (rng_seed(&s->rng, err))
        goto fail;
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
    if (conf_defaults(&s->conf, MBEDTLS_SSL_IS_SERVER, &s->rng, err))
        goto fail;
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

void tls_client_free(struct tls_client *cl)
{
    if (!cl)
        return;
    mbedtls_ssl_config_free(&cl->conf);
    mbedtls_x509_crt_free(&cl->ca);
    rng_free(&cl->rng);
    free(cl);
}

int tls_client_new(const char *ca_file, struct tls_client **out, struct wisp_err *err)
{
    struct tls_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    mbedtls_ssl_config_init(&cl->conf);
    mbedtls_x509_crt_init(&cl->ca);
    rng_init(&cl->rng);
    if (rng_seed(&cl->rng, err))
        goto fail;
    /* > 0: that many certificates could not be parsed (a system bundle may
     * hold a few mbedtls does not support); the others still count */
    int rc = mbedtls_x509_crt_parse_file(&cl->ca, ca_file);
    if (rc < 0 || cl->ca.version == 0) {
        char msg[128] = "no certificate in it";
        if (rc < 0)
            mbedtls_strerror(rc, msg, sizeof msg);
        wisp_err_set(err, -EINVAL, "tls-ca-file %s: %s", ca_file, msg);
        goto fail;
    }
    if (conf_defaults(&cl->conf, MBEDTLS_SSL_IS_CLIENT, &cl->rng, err))
        goto fail;
    mbedtls_ssl_conf_authmode(&cl->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&cl->conf, &cl->ca, NULL);
    *out = cl;
    return 0;
fail:
    tls_client_free(cl);
    return err ? err->code : -EINVAL;
}

static struct tls_conn *conn_new(const mbedtls_ssl_config *conf)
{
    struct tls_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    mbedtls_ssl_init(&c->ssl);
    if (mbedtls_ssl_setup(&c->ssl, conf)) {
        mbedtls_ssl_free(&c->ssl);
        free(c);
        return NULL;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    return c;
}

/* The peer certificate (depth 0) must carry c->ip as an iPAddress entry,
 * byte for byte; its CN and dNSName entries do not count, as in browsers
 * and OpenSSL's X509_check_ip. A miss is a name mismatch, so the handshake
 * fails like any other verify failure (VERIFY_REQUIRED); ip_mismatch lets
 * tls_conn_error say which name was missing. The CA certificates above it
 * are mbedtls's business (depth > 0). */
static int verify_ip(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct tls_conn *c = arg;
    if (depth != 0)
        return 0;
    for (const mbedtls_x509_sequence *san = &crt->subject_alt_names; san; san = san->next) {
        if (san->buf.p && san->buf.tag == SAN_IP_TAG && san->buf.len == c->ip_len &&
            memcmp(san->buf.p, c->ip, c->ip_len) == 0)
            return 0;
    }
    c->ip_mismatch = true;
    *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
}

struct tls_conn *tls_conn_new(struct tls_server *s)
{
    return conn_new(&s->conf);
}

struct tls_conn *tls_conn_new_client(struct tls_client *cl, const char *host)
{
    if (!host)
        return NULL;
    unsigned char ip[16];
    size_t ip_len = inet_pton(AF_INET, host, ip) == 1    ? 4
                    : inet_pton(AF_INET6, host, ip) == 1 ? 16
                                                         : 0;
    struct tls_conn *c = conn_new(&cl->conf);
    if (!c)
        return NULL;
    int rc;
    if (ip_len) {
        /* NULL said out loud: no SNI and no name check by mbedtls (later
         * 2.28 releases refuse a verifying client that never set one) */
        rc = mbedtls_ssl_set_hostname(&c->ssl, NULL);
        memcpy(c->ip, ip, ip_len);
        c->ip_len = ip_len;
        snprintf(c->ip_text, sizeof c->ip_text, "%s", host);
        mbedtls_ssl_set_verify(&c->ssl, verify_ip, c);
    } else {
        /* SNI, and the name mbedtls verifies against the certificate */
        rc = mbedtls_ssl_set_hostname(&c->ssl, host);
    }
    if (rc) {
        tls_conn_free(c);
        return NULL;
    }
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
            c->last_err = h;
            c->verify_flags = mbedtls_ssl_get_verify_result(&c->ssl);
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
        if (rc < 0)
            c->last_err = n;
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
            c->last_err = n;
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

const char *tls_conn_error(const struct tls_conn *c, char *buf, size_t cap)
{
    char msg[256];
    if (c->last_err == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && c->verify_flags &&
        c->verify_flags != (uint32_t)-1) {
        /* for an IP literal the name mismatch is verify_ip's, and mbedtls's
         * text for it ("Common Name (CN)") would mislead: ours goes first */
        uint32_t flags = c->verify_flags;
        size_t o = 0;
        if (c->ip_mismatch) {
            flags &= ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH;
            o = (size_t)snprintf(msg, sizeof msg,
                                 "no subjectAltName IP entry for %s (a CN or DNS name "
                                 "spelling it does not count)",
                                 c->ip_text);
        }
        /* one reason a line, each "  <text>\n": made into "a; b" */
        char info[512];
        if (!flags || mbedtls_x509_crt_verify_info(info, sizeof info, "", flags) < 0)
            info[0] = '\0';
        for (const char *p = info; *p && o + 3 < sizeof msg;) {
            size_t n = strcspn(p, "\n");
            if (n > 0) {
                if (o > 0)
                    o += (size_t)snprintf(msg + o, sizeof msg - o, "; ");
                if (o < sizeof msg)
                    o += (size_t)snprintf(msg + o, sizeof msg - o, "%.*s", (int)n, p);
            }
            p += n + (p[n] == '\n');
        }
        if (o >= sizeof msg)
            o = sizeof msg - 1;
        msg[o] = '\0';
        snprintf(buf, cap, "certificate verify failed: %s", o ? msg : "untrusted");
        return buf;
    }
    mbedtls_strerror(c->last_err, msg, sizeof msg);
    snprintf(buf, cap, "%s%s", c->handshake_done ? "" : "handshake failed: ", msg);
    return buf;
}
