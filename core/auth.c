/* core/auth.c - see auth.h. A key revoked by `wisp admin` while wispd runs
 * stops working on the next request: every check reads the key's record.
 * The cost per request is one LMDB read, a compare with the bytes decoded
 * last time, and one SHA-256 of ~80 bytes. */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <string.h>

#include "plat.h"
#include "store.h"
#include "wjson.h"

int auth_ns_valid(const char *ns, struct wisp_err *err)
{
    size_t n = strlen(ns);
    if (n == 0 || n >= AUTH_NS_MAX)
        return wisp_err_set(err, -EINVAL, "namespace must be 1 to %d characters", AUTH_NS_MAX - 1);
    if (!isalnum((unsigned char)ns[0]) && ns[0] != '_')
        return wisp_err_set(err, -EINVAL, "namespace '%s' must start with a letter or digit", ns);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)ns[i];
        if (!isalnum(c) && !strchr("_.@-", c))
            return wisp_err_set(err, -EINVAL, "namespace '%s' has an invalid character", ns);
    }
    if (strcmp(ns, "_") == 0 || strcmp(ns, "whisk.system") == 0)
        return wisp_err_set(err, -EINVAL, "namespace '%s' is reserved", ns);
    return 0;
}

static bool is_uuid(const char *s)
{
    if (strlen(s) != AUTH_UUID_LEN)
        return false;
    for (int i = 0; i < AUTH_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

int auth_key_parse(const char *key, char uuid[AUTH_UUID_LEN + 1], char secret[AUTH_SECRET_LEN + 1],
                   struct wisp_err *err)
{
    const char *colon = strchr(key, ':');
    if (!colon || colon - key != AUTH_UUID_LEN)
        return wisp_err_set(err, -EINVAL, "a key is uuid:secret (36-character uuid)");
    memcpy(uuid, key, AUTH_UUID_LEN);
    uuid[AUTH_UUID_LEN] = '\0';
    if (!is_uuid(uuid))
        return wisp_err_set(err, -EINVAL, "the key's uuid part is not a uuid");
    size_t sl = strlen(colon + 1);
    if (sl < 8 || sl > AUTH_SECRET_LEN)
        return wisp_err_set(err, -EINVAL, "the key's secret must be 8 to %d characters",
                            AUTH_SECRET_LEN);
    for (size_t i = 0; i < sl; i++)
        if (!isalnum((unsigned char)colon[1 + i]))
            return wisp_err_set(err, -EINVAL, "the key's secret must be letters and digits");
    memcpy(secret, colon + 1, sl + 1);
    return 0;
}

static void hash_secret(const unsigned char salt[16], const char *secret, char out_hex[65])
{
    unsigned char digest[32];
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    mbedtls_sha256_starts_ret(&ctx, 0);
    mbedtls_sha256_update_ret(&ctx, salt, 16);
    mbedtls_sha256_update_ret(&ctx, (const unsigned char *)secret, strlen(secret));
    mbedtls_sha256_finish_ret(&ctx, digest);
    mbedtls_sha256_free(&ctx);
    plat_hex(digest, sizeof digest, out_hex);
}

struct put_key {
    const char *uuid;
    json_t *doc;
};

static int put_key_fn(struct store_txn *t, void *arg)
{
    struct put_key *pk = arg;
    json_t *old = NULL;
    int rc = store_txn_get(t, STORE_KEYS, pk->uuid, AUTH_UUID_LEN, NULL, NULL, &old);
    json_decref(old);
    if (rc == 0)
        return -EEXIST;
    if (rc != -ENOENT)
        return rc;
    return store_txn_put(t, STORE_KEYS, pk->uuid, AUTH_UUID_LEN, REC_KEY, plat_clock_real_ms(),
                         pk->doc);
}

int auth_key_create(struct store *st, const char *ns, const char *key_in, char *key_out,
                    struct wisp_err *err)
{
    char uuid[AUTH_UUID_LEN + 1], secret[AUTH_SECRET_LEN + 1];
    int rc = auth_ns_valid(ns, err);
    if (rc < 0)
        return rc;
    if (key_in) {
        if ((rc = auth_key_parse(key_in, uuid, secret, err)) < 0)
            return rc;
    } else {
        unsigned char raw[AUTH_SECRET_LEN];
        if ((rc = plat_uuid4(uuid)) < 0 || (rc = plat_rand_bytes(raw, sizeof raw)) < 0)
            return wisp_err_set(err, rc, "no random bytes: %s", strerror(-rc));
        static const char alnum[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for (int i = 0; i < AUTH_SECRET_LEN; i++) /* 248 = 4*62: no modulo bias */
            secret[i] = alnum[raw[i] < 248 ? raw[i] % 62 : (raw[i] - 248) % 62];
        secret[AUTH_SECRET_LEN] = '\0';
    }
    unsigned char salt[16];
    char salt_hex[33], hash_hex[65];
    if ((rc = plat_rand_bytes(salt, sizeof salt)) < 0)
        return wisp_err_set(err, rc, "no random bytes: %s", strerror(-rc));
    plat_hex(salt, sizeof salt, salt_hex);
    hash_secret(salt, secret, hash_hex);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:I}", "namespace", ns, "salt", salt_hex, "hash",
                            hash_hex, "created", (json_int_t)plat_clock_real_ms());
    if (!doc)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    struct put_key pk = {.uuid = uuid, .doc = doc};
    rc = store_write(st, put_key_fn, &pk, err);
    json_decref(doc);
    if (rc == -EEXIST)
        return wisp_err_set(err, rc, "a key with uuid %s exists already", uuid);
    if (rc < 0)
        return rc;
    snprintf(key_out, AUTH_UUID_LEN + AUTH_SECRET_LEN + 2, "%s:%s", uuid, secret);
    return 0;
}

static int del_key_fn(struct store_txn *t, void *arg)
{
    return store_txn_del(t, STORE_KEYS, arg, AUTH_UUID_LEN);
}

int auth_key_revoke(struct store *st, const char *uuid, struct wisp_err *err)
{
    if (!is_uuid(uuid))
        return wisp_err_set(err, -EINVAL, "'%s' is not a key uuid", uuid);
    int rc = store_write(st, del_key_fn, (void *)uuid, err);
    if (rc == -ENOENT)
        return wisp_err_set(err, rc, "no key with uuid %s", uuid);
    return rc;
}

struct list_ctx {
    const char *ns;
    auth_key_fn *fn;
    void *arg;
};

static int list_fn(void *arg, const struct store_rec *r)
{
    struct list_ctx *c = arg;
    size_t klen;
    const char *key = store_rec_key(r, &klen);
    json_t *doc;
    if (klen != AUTH_UUID_LEN || store_rec_doc(r, &doc) < 0)
        return 0; /* unreadable records are skipped, not fatal to a listing */
    const char *ns = wjson_str(doc, "namespace");
    if (ns && (!c->ns || strcmp(ns, c->ns) == 0)) {
        char uuid[AUTH_UUID_LEN + 1];
        memcpy(uuid, key, AUTH_UUID_LEN);
        uuid[AUTH_UUID_LEN] = '\0';
        c->fn(c->arg, uuid, ns, (long long)json_integer_value(json_object_get(doc, "created")));
    }
    json_decref(doc);
    return 0;
}

int auth_key_list(struct store *st, const char *ns, auth_key_fn *fn, void *arg)
{
    struct list_ctx c = {.ns = ns, .fn = fn, .arg = arg};
    return store_scan(st, STORE_KEYS, "", 0, false, list_fn, &c);
}

struct ns_revoke {
    char (*uuids)[AUTH_UUID_LEN + 1];
    unsigned n, cap;
};

static void collect_fn(void *arg, const char *uuid, const char *ns, long long created)
{
    (void)ns;
    (void)created;
    struct ns_revoke *r = arg;
    if (r->n < r->cap)
        memcpy(r->uuids[r->n++], uuid, AUTH_UUID_LEN + 1);
}

static int del_keys_fn(struct store_txn *t, void *arg)
{
    struct ns_revoke *r = arg;
    for (unsigned i = 0; i < r->n; i++) {
        int rc = store_txn_del(t, STORE_KEYS, r->uuids[i], AUTH_UUID_LEN);
        if (rc < 0 && rc != -ENOENT)
            return rc;
    }
    return 0;
}

int auth_ns_revoke(struct store *st, const char *ns, unsigned *count, struct wisp_err *err)
{
    char uuids[256][AUTH_UUID_LEN + 1];
    struct ns_revoke r = {.uuids = uuids, .cap = 256};
    *count = 0;
    for (;;) { /* in rounds of 256 keys */
        r.n = 0;
        int rc = auth_key_list(st, ns, collect_fn, &r);
        if (rc < 0)
            return wisp_err_set(err, rc, "cannot list keys: %s", strerror(-rc));
        if (r.n == 0)
            return *count ? 0 : wisp_err_set(err, -ENOENT, "namespace %s has no keys", ns);
        if ((rc = store_write(st, del_keys_fn, &r, err)) < 0)
            return rc;
        *count += r.n;
    }
}

/* The decoded key records of the last few uuids seen, each with the stored
 * bytes it was decoded from. Every check still reads the record: a memo
 * is used only while those bytes are unchanged, so a key revoked or
 * replaced by `wisp admin` stops working on the next request. */
#define KEY_MEMOS 16
#define KEY_MEMO_RAW 512

struct key_memo {
    char uuid[AUTH_UUID_LEN + 1];
    unsigned char raw[KEY_MEMO_RAW];
    size_t raw_len;
    char ns[AUTH_NS_MAX];
    unsigned char salt[16];
    char hash[65];
};

static struct key_memo key_memos[KEY_MEMOS];

struct key_read {
    const char *uuid;
    struct key_memo *m; /* the memo slot, filled or confirmed */
};

static int key_decode(const void *data, size_t len, struct key_memo *m)
{
    json_t *doc = NULL;
    enum rec_kind kind;
    int64_t updated;
    int rc = codec_record_unpack(data, len, &kind, &updated, &doc);
    if (rc < 0)
        return rc;
    const char *ns = wjson_str(doc, "namespace"), *salt_hex = wjson_str(doc, "salt"),
               *hash_hex = wjson_str(doc, "hash");
    rc = -EACCES;
    if (ns && salt_hex && hash_hex && strlen(salt_hex) == 32 && strlen(hash_hex) == 64 &&
        strlen(ns) < AUTH_NS_MAX && plat_unhex(salt_hex, sizeof m->salt, m->salt)) {
        strcpy(m->ns, ns);
        memcpy(m->hash, hash_hex, 65);
        rc = 0;
    }
    json_decref(doc);
    return rc;
}

static int key_read_fn(void *arg, const void *data, size_t len)
{
    struct key_read *kr = arg;
    struct key_memo *m = kr->m;
    if (m->raw_len == len && strcmp(m->uuid, kr->uuid) == 0 && memcmp(m->raw, data, len) == 0)
        return 0;
    m->raw_len = 0; /* no memo until the new one is whole */
    int rc = key_decode(data, len, m);
    if (rc == 0 && len <= sizeof m->raw) {
        strcpy(m->uuid, kr->uuid);
        memcpy(m->raw, data, len);
        m->raw_len = len;
    }
    return rc;
}

int auth_check(struct store *st, const char *header, char *ns_out, char *key_out)
{
    if (!header || strncasecmp(header, "Basic ", 6) != 0)
        return -EACCES;
    const char *b64 = header + 6;
    while (*b64 == ' ')
        b64++;
    unsigned char dec[AUTH_UUID_LEN + 1 + AUTH_SECRET_LEN + 4];
    size_t dlen = 0, blen = strlen(b64);
    if (blen > 4 * (sizeof dec / 3) || !plat_base64_decode(b64, blen, dec, sizeof dec - 1, &dlen))
        return -EACCES;
    dec[dlen] = '\0';
    if (memchr(dec, '\0', dlen))
        return -EACCES;
    char uuid[AUTH_UUID_LEN + 1], secret[AUTH_SECRET_LEN + 1];
    if (auth_key_parse((const char *)dec, uuid, secret, NULL) < 0)
        return -EACCES;
    unsigned h = 0;
    for (int i = 0; i < AUTH_UUID_LEN; i++)
        h = h * 31 + (unsigned char)uuid[i];
    struct key_read kr = {.uuid = uuid, .m = &key_memos[h % KEY_MEMOS]};
    int rc = store_get_raw(st, STORE_KEYS, uuid, AUTH_UUID_LEN, key_read_fn, &kr);
    if (rc == -ENOENT || rc == -EACCES)
        return -EACCES;
    if (rc < 0)
        return -EIO;
    char got[65];
    hash_secret(kr.m->salt, secret, got);
    if (!plat_ct_equal(got, kr.m->hash, 64))
        return -EACCES;
    strcpy(ns_out, kr.m->ns);
    if (key_out)
        snprintf(key_out, AUTH_UUID_LEN + AUTH_SECRET_LEN + 2, "%s:%s", uuid, secret);
    return 0;
}

static int mark_bootstrapped(struct store_txn *t, void *arg)
{
    (void)arg;
    json_t *doc = json_pack("{s:I}", "at", (json_int_t)plat_clock_real_ms());
    if (!doc)
        return -ENOMEM;
    int rc = store_txn_put(t, STORE_META, "guest", 5, REC_META, plat_clock_real_ms(), doc);
    json_decref(doc);
    return rc;
}

int auth_bootstrap_guest(struct store *st, const char *data_dir, const char *env_key,
                         bool *created, struct wisp_err *err)
{
    json_t *doc = NULL;
    *created = false;
    int rc = store_get(st, STORE_META, "guest", 5, NULL, NULL, &doc);
    json_decref(doc);
    if (rc == 0)
        return 0;
    if (rc != -ENOENT)
        return wisp_err_set(err, rc, "cannot read the store: %s", strerror(-rc));
    char key[AUTH_UUID_LEN + AUTH_SECRET_LEN + 2];
    if (env_key && *env_key) {
        struct wisp_err e = {0};
        if (auth_key_parse(env_key, key, key + AUTH_UUID_LEN + 1, &e) < 0)
            return wisp_err_set(err, -EINVAL, "WISP_GUEST_KEY: %s", e.msg);
    }
    rc = auth_key_create(st, "guest", env_key && *env_key ? env_key : NULL, key, err);
    if (rc < 0 && rc != -EEXIST)
        return rc;
    if (rc == 0 && !(env_key && *env_key)) {
        char path[4096], line[sizeof key + 1];
        snprintf(path, sizeof path, "%s/guest.key", data_dir);
        int n = snprintf(line, sizeof line, "%s\n", key);
        if ((rc = plat_write_file(path, line, (size_t)n, 0600)) < 0)
            return wisp_err_set(err, rc, "cannot write %s: %s", path, strerror(-rc));
    }
    if ((rc = store_write(st, mark_bootstrapped, NULL, err)) < 0)
        return rc;
    *created = true;
    return 0;
}
