/* core/tls.h - TLS for the API listener (mbedtls), as a filter between a
 * connection's socket buffers and its plaintext buffers.
 *
 * Loop thread only; never blocks: the record layer reads ciphertext from an
 * evbuffer and writes ciphertext to another, so a TLS connection is driven
 * by the same read/write events as a plain one. Only this file and tls.c
 * know mbedtls's SSL types. */
#pragma once
#include <stdbool.h>

#include "wisp.h"

struct evbuffer;
struct tls_server;
struct tls_conn;

/* Loads a PEM certificate chain and private key. 0 or -errno with err. */
int tls_server_new(const char *cert_path, const char *key_path, struct tls_server **out,
                   struct wisp_err *err) WISP_MUST_CHECK;
void tls_server_free(struct tls_server *s);

struct tls_conn *tls_conn_new(struct tls_server *s);
void tls_conn_free(struct tls_conn *c);

/* Moves what it can from cipher_in (drained as consumed) through the
 * handshake and record layer: plaintext is appended to plain_in, handshake
 * and alert records to cipher_out. 0 (go on, more may come later), 1 (the
 * peer closed the session), or -EPROTO on a TLS failure. */
int tls_conn_read(struct tls_conn *c, struct evbuffer *cipher_in, struct evbuffer *plain_in,
                  struct evbuffer *cipher_out) WISP_MUST_CHECK;
/* Encrypts all of plain_out (drained) into cipher_out once the handshake is
 * done; before that it leaves plain_out alone. 0 or -EPROTO. */
int tls_conn_write(struct tls_conn *c, struct evbuffer *plain_out, struct evbuffer *cipher_out)
    WISP_MUST_CHECK;
/* Queues a close_notify alert into cipher_out. */
void tls_conn_close(struct tls_conn *c, struct evbuffer *cipher_out);
bool tls_conn_ready(const struct tls_conn *c);
