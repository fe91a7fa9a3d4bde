/* core/auth.h - namespaces and API keys as OpenWhisk has them.
 *
 * A key is `uuid:secret` (36-char UUID, 64-char secret), sent as HTTP Basic
 * credentials. The store keeps, per uuid, the namespace, a random salt and
 * SHA-256(salt || secret) (mbedtls); the secret itself is never stored and
 * the comparison is constant-time. Loop thread or the offline admin tool. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "wisp.h"

struct store;

#define AUTH_UUID_LEN 36
#define AUTH_SECRET_LEN 64
#define AUTH_NS_MAX 128

/* Checks a namespace name (letters, digits, `_ . @ -`, not "_", not
 * "whisk.system"). 0 or -EINVAL with err set. */
int auth_ns_valid(const char *ns, struct wisp_err *err) WISP_MUST_CHECK;

/* Checks and splits "uuid:secret". 0 or -EINVAL with err set. */
int auth_key_parse(const char *key, char uuid[AUTH_UUID_LEN + 1],
                   char secret[AUTH_SECRET_LEN + 1], struct wisp_err *err) WISP_MUST_CHECK;

/* Creates a key for ns. With key_in ("uuid:secret") that key is imported,
 * else a random one is made. key_out (at least 102 bytes) gets "uuid:secret".
 * 0, -EEXIST (uuid taken), -EINVAL, or a store error. */
int auth_key_create(struct store *st, const char *ns, const char *key_in, char *key_out,
                    struct wisp_err *err) WISP_MUST_CHECK;
/* Removes the key with this uuid. 0 or -ENOENT. */
int auth_key_revoke(struct store *st, const char *uuid, struct wisp_err *err) WISP_MUST_CHECK;
/* Removes every key of ns; *count gets how many. */
int auth_ns_revoke(struct store *st, const char *ns, unsigned *count, struct wisp_err *err)
    WISP_MUST_CHECK;

/* Calls fn(arg, uuid, ns, created_ms) per key, optionally only for one ns. */
typedef void auth_key_fn(void *arg, const char *uuid, const char *ns, long long created_ms);
int auth_key_list(struct store *st, const char *ns, auth_key_fn *fn, void *arg) WISP_MUST_CHECK;

/* Checks an Authorization header value ("Basic base64(uuid:secret)").
 * ns_out (AUTH_NS_MAX bytes) gets the key's namespace and key_out (NULL, or
 * AUTH_UUID_LEN + AUTH_SECRET_LEN + 2 bytes) the key itself. 0 or -EACCES
 * (missing, malformed, unknown or wrong); store failures are -EIO. */
int auth_check(struct store *st, const char *header, char *ns_out, char *key_out)
    WISP_MUST_CHECK;

/* On a data dir never bootstrapped, creates namespace "guest" with key
 * env_key ("uuid:secret", from WISP_GUEST_KEY) or a random key written to
 * DIR/guest.key (mode 0600). *created tells whether this run did it. */
int auth_bootstrap_guest(struct store *st, const char *data_dir, const char *env_key,
                         bool *created, struct wisp_err *err) WISP_MUST_CHECK;
