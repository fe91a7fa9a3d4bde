/* core/codec.c - JSON documents to msgpack records and back (msgpack-c).
 *
 * msgpack-c's unpacker keeps a fixed 32-level stack; deeper input fails to
 * decode instead of overflowing, and the API refuses to store documents
 * nested deeper than WJSON_MAX_DEPTH so every record written can be read. */
#include "codec.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"
#include "wjson.h"

static int buf_write(void *data, const char *p, size_t n)
{
    return plat_buf_add(data, p, n) < 0 ? -1 : 0;
}

static int pack_json(msgpack_packer *pk, const json_t *j, int depth)
{
    if (depth > 30)
        return -EINVAL;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        if (msgpack_pack_map(pk, json_object_size(j)))
            return -ENOMEM;
        json_object_foreach((json_t *)j, k, v) {
            size_t kl = strlen(k);
            if (msgpack_pack_str(pk, kl) || msgpack_pack_str_body(pk, k, kl))
                return -ENOMEM;
            int rc = pack_json(pk, v, depth + 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        if (msgpack_pack_array(pk, json_array_size(j)))
            return -ENOMEM;
        json_array_foreach(j, i, v) {
            int rc = pack_json(pk, v, depth + 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case JSON_STRING: {
        size_t n = json_string_length(j);
        return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, json_string_value(j), n)
                   ? -ENOMEM
                   : 0;
    }
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(j)) ? -ENOMEM : 0;
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(j)) ? -ENOMEM : 0;
    case JSON_TRUE:
        return msgpack_pack_true(pk) ? -ENOMEM : 0;
    case JSON_FALSE:
        return msgpack_pack_false(pk) ? -ENOMEM : 0;
    case JSON_NULL:
        return msgpack_pack_nil(pk) ? -ENOMEM : 0;
    }
    return -EINVAL;
}

int codec_record_pack(struct plat_buf *buf, enum rec_kind kind, int64_t updated_ms,
                      const json_t *doc)
{
    msgpack_packer pk;
    buf->len = 0;
    msgpack_packer_init(&pk, buf, buf_write);
    if (msgpack_pack_array(&pk, 4) || msgpack_pack_uint8(&pk, CODEC_SCHEMA_VERSION) ||
        msgpack_pack_uint8(&pk, (uint8_t)kind) || msgpack_pack_int64(&pk, updated_ms))
        return -ENOMEM;
    return pack_json(&pk, doc, 0);
}

static json_t *unpack_obj(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return NULL;
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: /* msgpack-c may give NULL for "" */
        return json_stringn(o->via.str.size ? o->via.str.ptr : "", o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = unpack_obj(&o->via.array.ptr[i]);
            if (!v || json_array_append_new(a, v)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            size_t kl = kv->key.via.str.size;
            const char *kp = kl ? kv->key.via.str.ptr : "";
            /* keys are checked as jansson checks them when parsing: UTF-8,
             * no NUL (a corrupt record must not decode into a document
             * that cannot be written out again) */
            if (kv->key.type != MSGPACK_OBJECT_STR || memchr(kp, '\0', kl)) {
                json_decref(m);
                return NULL;
            }
            char small[256], *key = kl < sizeof small ? small : malloc(kl + 1);
            if (!key) {
                json_decref(m);
                return NULL;
            }
            memcpy(key, kp, kl);
            key[kl] = '\0';
            json_t *v = unpack_obj(&kv->val);
            int bad = !v || json_object_set_new(m, key, v); /* set_new checks UTF-8 */
            if (key != small)
                free(key);
            if (bad) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    default: /* bin and ext never appear in our records */
        return NULL;
    }
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Walks the msgpack bytes once and checks that every declared length and
 * element count fits in what is left. msgpack-c sizes its allocations from
 * the declared counts before it reads the elements, so a corrupt header
 * claiming 2^32 elements would otherwise cost gigabytes; after this check
 * every count is bounded by the record's own length. */
static int check_bounds(const unsigned char *d, size_t len)
{
    uint64_t pending = 1;
    size_t pos = 0;
    while (pending) {
        if (pos >= len)
            return -EBADMSG;
        pending--;
        unsigned char b = d[pos];
        uint64_t head = 1, body = 0, kids = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* one-byte values */
        } else if (b <= 0x8f) {
            kids = 2u * (b & 0x0fu);
        } else if (b <= 0x9f) {
            kids = b & 0x0fu;
        } else if (b <= 0xbf) {
            body = b & 0x1fu;
        } else {
            /* sizes of the length field (n) per type byte 0xc4..0xdf; for
             * fixed-size types the body length instead */
            static const struct { unsigned char n, fixed, ext, kind; } t[] = {
                /* kind: 0 bytes, 1 array, 2 map */
                [0xc4 - 0xc4] = {1, 0, 0, 0}, [0xc5 - 0xc4] = {2, 0, 0, 0},
                [0xc6 - 0xc4] = {4, 0, 0, 0}, [0xc7 - 0xc4] = {1, 0, 1, 0},
                [0xc8 - 0xc4] = {2, 0, 1, 0}, [0xc9 - 0xc4] = {4, 0, 1, 0},
                [0xca - 0xc4] = {0, 4, 0, 0}, [0xcb - 0xc4] = {0, 8, 0, 0},
                [0xcc - 0xc4] = {0, 1, 0, 0}, [0xcd - 0xc4] = {0, 2, 0, 0},
                [0xce - 0xc4] = {0, 4, 0, 0}, [0xcf - 0xc4] = {0, 8, 0, 0},
                [0xd0 - 0xc4] = {0, 1, 0, 0}, [0xd1 - 0xc4] = {0, 2, 0, 0},
                [0xd2 - 0xc4] = {0, 4, 0, 0}, [0xd3 - 0xc4] = {0, 8, 0, 0},
                [0xd4 - 0xc4] = {0, 2, 0, 0}, [0xd5 - 0xc4] = {0, 3, 0, 0},
                [0xd6 - 0xc4] = {0, 5, 0, 0}, [0xd7 - 0xc4] = {0, 9, 0, 0},
                [0xd8 - 0xc4] = {0, 17, 0, 0}, [0xd9 - 0xc4] = {1, 0, 0, 0},
                [0xda - 0xc4] = {2, 0, 0, 0}, [0xdb - 0xc4] = {4, 0, 0, 0},
                [0xdc - 0xc4] = {2, 0, 0, 1}, [0xdd - 0xc4] = {4, 0, 0, 1},
                [0xde - 0xc4] = {2, 0, 0, 2}, [0xdf - 0xc4] = {4, 0, 0, 2},
            };
            if (b == 0xc1)
                return -EBADMSG; /* never used */
            const unsigned char n = t[b - 0xc4].n;
            head = 1 + n + t[b - 0xc4].ext;
            if (pos + 1 + n > len)
                return -EBADMSG;
            uint64_t v = be(d + pos + 1, n);
            if (t[b - 0xc4].kind == 1)
                kids = v;
            else if (t[b - 0xc4].kind == 2)
                kids = 2 * v;
            else
                body = n ? v : t[b - 0xc4].fixed;
        }
        if (head > len - pos || body > len - pos - head)
            return -EBADMSG;
        pos += (size_t)(head + body);
        pending += kids;
        if (pending > len - pos) /* every element takes at least a byte */
            return -EBADMSG;
    }
    return pos == len ? 0 : -EBADMSG;
}

int codec_record_peek_kind(const void *data, size_t len)
{
    const unsigned char *b = data;
    if (len < 4 || b[0] != 0x94 || b[1] > 0x7f || b[2] > 0x7f)
        return -EBADMSG;
    return b[2];
}

int codec_record_unpack(const void *data, size_t len, enum rec_kind *kind, int64_t *updated_ms,
                        json_t **doc)
{
    int rc = -EBADMSG;
    size_t off = 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (check_bounds(data, len) < 0)
        goto out;
    if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
        goto out;
    const msgpack_object *o = &u.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4)
        goto out;
    const msgpack_object *f = o->via.array.ptr;
    if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        goto out;
    if (f[0].via.u64 > CODEC_SCHEMA_VERSION || f[0].via.u64 == 0) {
        rc = -EPROTO;
        goto out;
    }
    if (f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER && f[2].type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
        goto out;
    json_t *j = unpack_obj(&f[3]);
    if (!j)
        goto out;
    *kind = (enum rec_kind)f[1].via.u64;
    *updated_ms = f[2].via.i64;
    *doc = j;
    rc = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}

int codec_fuzz_one(const uint8_t *data, size_t len)
{
    enum rec_kind kind;
    int64_t upd;
    json_t *doc = NULL;
    int rc = codec_record_unpack(data, len, &kind, &upd, &doc);
    json_decref(doc);
    return rc;
}
