/* platform/tls.h - TLS (mbedtls) between a connection's socket buffers and
 * its plaintext buffers: the server side for the API listener (core/http.c)
 * and the client side for outgoing HTTPS (the poll feed).
 *
 * Loop thread only; never blocks: the record layer reads ciphertext from an
 * evbuffer and writes ciphertext to another, so a TLS connection is driven
 * by the same read/write events as a plain one. Only this file and tls.c
 * know mbedtls's SSL types.
 *
 * Both ends speak TLS 1.2 only: 1.0 and 1.1 are refused (min version),
 * and mbedtls 2.28 has no TLS 1.3 (only an experimental prototype, which
 * Debian does not build).
 *
 * A client connection verifies the server's certificate (chain, validity,
 * key usage) against the CA bundle of its tls_client and checks it was
 * issued for the host it was opened with; there is no way to switch that
 * off. The host check depends on the host:
 *   a DNS name   mbedtls's check: a dNSName entry of the subjectAltName
 *                (wildcards as mbedtls allows them), or the CN when the
 *                certificate has no subjectAltName; also sent as SNI;
 *   an IP literal (IPv4 dotted quad or IPv6, no brackets): an iPAddress
 *                entry of the subjectAltName equal to the 4 or 16 address
 *                bytes; a CN or dNSName spelling the address does not
 *                count (mbedtls 2.28 would take those and knows no
 *                iPAddress entries, so tls.c checks this one itself). No
 *                SNI (RFC 6066 allows host names only). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "wisp.h"

/* Debian's bundle of the CAs the system trusts (package ca-certificates):
 * the default of the tls-ca-file setting. */
#define TLS_CA_FILE_DEFAULT "/etc/ssl/certs/ca-certificates.crt"

struct evbuffer;
struct tls_server;
struct tls_client;
struct tls_conn;

/* Loads a PEM certificate chain and private key. 0 or -errno with err. */
int tls_server_new(const char *cert_path, const char *key_path, struct tls_server **out,
                   struct wisp_err *err) WISP_MUST_CHECK;
void tls_server_free(struct tls_server *s);

/* Loads the CA bundle (PEM, e.g. /etc/ssl/certs/ca-certificates.crt) that
 * client connections trust. Certificates in the file that mbedtls cannot
 * parse are skipped; none usable is an error. 0 or -errno with err. */
int tls_client_new(const char *ca_file, struct tls_client **out,
                   struct wisp_err *err) WISP_MUST_CHECK;
void tls_client_free(struct tls_client *cl);

/* A server-side connection. NULL when out of memory. */
struct tls_conn *tls_conn_new(struct tls_server *s);
/* A client-side connection to host (copied): the name or address the
 * server's certificate must carry (above), and the SNI for a name. NULL
 * when out of memory. The client speaks
 * first: call tls_conn_read once when the socket is connected (with an
 * empty cipher_in) to queue its hello. */
struct tls_conn *tls_conn_new_client(struct tls_client *cl, const char *host);
void tls_conn_free(struct tls_conn *c);

/* Moves what it can from cipher_in (drained as consumed) through the
 * handshake and record layer: plaintext is appended to plain_in, handshake
 * and alert records to cipher_out. 0 (go on, more may come later), 1 (the
 * peer closed the session), or -EPROTO on a TLS failure. */
int tls_conn_read(struct tls_conn *c, struct evbuffer *cipher_in, struct evbuffer *plain_in,
                  struct evbuffer *cipher_out) WISP_MUST_CHECK;
/* Encrypts all of plain_out (drained) into cipher_out once the handshake is
 * done; before that it leaves plain_out alone. 0 or -EPROTO. */
int tls_conn_write(struct tls_conn *c, struct evbuffer *plain_out,
                   struct evbuffer *cipher_out) WISP_MUST_CHECK;
/* Queues a close_notify alert into cipher_out. */
void tls_conn_close(struct tls_conn *c, struct evbuffer *cipher_out);
bool tls_conn_ready(const struct tls_conn *c);
/* Why the last call failed with -EPROTO, as one line for a status:
 * "certificate verify failed: ..." (with mbedtls's reasons; for an IP
 * literal missing from the certificate "no subjectAltName IP entry for
 * ADDR ..." first) or "handshake failed: ..." / "...". Returns buf. */
const char *tls_conn_error(const struct tls_conn *c, char *buf, size_t cap);
