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

/* ==== packing =========================================================
 * Written straight into the buffer, in the encodings msgpack-c's packer
 * picks (smallest that fits; str8 for short strings), so records read back
 * by any msgpack reader. msgpack-c's packer calls a write callback per
 * token: a visible share of an event's CPU. */

static unsigned char *room(struct plat_buf *b, size_t n)
{
    if (plat_buf_reserve(b, n) < 0)
        return NULL;
    unsigned char *p = (unsigned char *)b->data + b->len;
    b->len += n;
    return p;
}

/* a head: tag byte then a big-endian value of `bytes` bytes */
static int head(struct plat_buf *b, unsigned tag, uint64_t v, int bytes)
{
    unsigned char *p = room(b, 1 + (size_t)bytes);
    if (!p)
        return -ENOMEM;
    p[0] = (unsigned char)tag;
    plat_be_put(p + 1, v, (size_t)bytes);
    return 0;
}

static int pack_len(struct plat_buf *b, size_t n, unsigned fix, unsigned fixmax, unsigned t8,
                    unsigned t16, unsigned t32)
{
    if (n <= fixmax)
        return head(b, fix | (unsigned)n, 0, 0);
    if (t8 && n < 256)
        return head(b, t8, n, 1);
    if (n < 65536)
        return head(b, t16, n, 2);
    if (n <= UINT32_MAX)
        return head(b, t32, n, 4);
    return -E2BIG;
}

static int pack_str(struct plat_buf *b, const char *s, size_t n)
{
    size_t mark = b->len;
    unsigned char *p = NULL;
    if (pack_len(b, n, 0xa0, 31, 0xd9, 0xda, 0xdb) < 0 || !(p = room(b, n))) {
        b->len = mark; /* no header without its body */
        return -ENOMEM;
    }
    memcpy(p, s, n);
    return 0;
}

static int pack_int(struct plat_buf *b, int64_t d)
{
    if (d >= -32 && d < 128)
        return head(b, (unsigned)(d & 0xff), 0, 0);
    if (d < 0) {
        if (d >= INT8_MIN)
            return head(b, 0xd0, (uint64_t)d, 1);
        if (d >= INT16_MIN)
            return head(b, 0xd1, (uint64_t)d, 2);
        if (d >= INT32_MIN)
            return head(b, 0xd2, (uint64_t)d, 4);
        return head(b, 0xd3, (uint64_t)d, 8);
    }
    if (d < 256)
        return head(b, 0xcc, (uint64_t)d, 1);
    if (d < 65536)
        return head(b, 0xcd, (uint64_t)d, 2);
    if (d <= UINT32_MAX)
        return head(b, 0xce, (uint64_t)d, 4);
    return head(b, 0xcf, (uint64_t)d, 8);
}

static int pack_json(struct plat_buf *b, const json_t *j, int depth)
{
    if (depth > 30) /* (documents inside records start a few levels down) */
        return -EINVAL;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (pack_len(b, json_object_size(j), 0x80, 15, 0, 0xde, 0xdf) < 0)
            return -ENOMEM;
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it)) {
            if (pack_str(b, json_object_iter_key(it), json_object_iter_key_len(it)) < 0)
                return -ENOMEM;
            int rc = pack_json(b, json_object_iter_value(it), depth + 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        if (pack_len(b, n, 0x90, 15, 0, 0xdc, 0xdd) < 0)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            int rc = pack_json(b, json_array_get(j, i), depth + 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case JSON_STRING:
        return pack_str(b, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return pack_int(b, json_integer_value(j));
    case JSON_REAL: {
        double d = json_real_value(j);
        uint64_t u;
        memcpy(&u, &d, sizeof u);
        return head(b, 0xcb, u, 8);
    }
    case JSON_TRUE:
        return head(b, 0xc3, 0, 0);
    case JSON_FALSE:
        return head(b, 0xc2, 0, 0);
    case JSON_NULL:
        return head(b, 0xc0, 0, 0);
    }
    return -EINVAL;
}

int codec_record_begin(struct plat_buf *buf, enum rec_kind kind, int64_t updated_ms)
{
    buf->len = 0;
    if (head(buf, 0x94, 0, 0) < 0 || pack_int(buf, CODEC_SCHEMA_VERSION) < 0 ||
        pack_int(buf, (int64_t)kind) < 0 || pack_int(buf, updated_ms) < 0)
        return -ENOMEM;
    return 0;
}

int codec_put_map(struct plat_buf *buf, size_t n)
{
    return pack_len(buf, n, 0x80, 15, 0, 0xde, 0xdf) < 0 ? -ENOMEM : 0;
}

int codec_put_array(struct plat_buf *buf, size_t n)
{
    return pack_len(buf, n, 0x90, 15, 0, 0xdc, 0xdd) < 0 ? -ENOMEM : 0;
}

int codec_put_str(struct plat_buf *buf, const char *s)
{
    return pack_str(buf, s, strlen(s));
}

int codec_put_strn(struct plat_buf *buf, const char *s, size_t n)
{
    return pack_str(buf, s, n);
}

int codec_put_int(struct plat_buf *buf, int64_t v)
{
    return pack_int(buf, v);
}

int codec_put_bool(struct plat_buf *buf, bool v)
{
    return head(buf, v ? 0xc3 : 0xc2, 0, 0);
}

int codec_put_json(struct plat_buf *buf, const json_t *j, int depth)
{
    return pack_json(buf, j, depth);
}

int codec_record_pack(struct plat_buf *buf, enum rec_kind kind, int64_t updated_ms,
                      const json_t *doc)
{
    int rc = codec_record_begin(buf, kind, updated_ms);
    return rc < 0 ? rc : pack_json(buf, doc, 0);
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
            /* a key twice: we never write that, and jansson would keep the
             * last while codec_record_peek_str() finds the first */
            json_t *v = json_object_get(m, key) ? NULL : unpack_obj(&kv->val);
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
            uint64_t v = plat_be_get(d + pos + 1, (size_t)n);
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
    if (len < 4 || b[0] != 0x94 || b[1] > 0x7f || b[2] > 0x7f || b[2] == 0)
        return -EBADMSG;
    return b[2];
}

/* The int at d[*pos] (any msgpack integer format), moving *pos past it. */
static int peek_int(const unsigned char *d, size_t len, size_t *pos, int64_t *v)
{
    if (*pos >= len)
        return -EBADMSG;
    unsigned char b = d[(*pos)++];
    if (b <= 0x7f || b >= 0xe0) {
        *v = (int8_t)b;
        return 0;
    }
    if (b < 0xcc || b > 0xd3)
        return -EBADMSG;
    int n = 1 << ((b - 0xcc) & 3);
    if ((size_t)n > len - *pos)
        return -EBADMSG;
    uint64_t u = plat_be_get(d + *pos, (size_t)n);
    *pos += (size_t)n;
    if (b >= 0xd0 && n < 8 && (u >> (8 * n - 1)) & 1) /* signed, negative: extend */
        u |= ~UINT64_C(0) << (8 * n);
    else if (b <= 0xcf && n == 8 && u > INT64_MAX)
        return -EBADMSG;
    *v = (int64_t)u;
    return 0;
}

/* The str at d[*pos], moving *pos past it; -ENOENT when it is not a str. */
static int peek_strv(const unsigned char *d, size_t len, size_t *pos, const char **s, size_t *n)
{
    if (*pos >= len)
        return -EBADMSG;
    unsigned char b = d[*pos];
    size_t hl, sl;
    if (b >= 0xa0 && b <= 0xbf) {
        hl = 1;
        sl = b & 0x1fu;
    } else if (b >= 0xd9 && b <= 0xdb) {
        int w = 1 << (b - 0xd9);
        if ((size_t)w >= len - *pos)
            return -EBADMSG;
        hl = 1 + (size_t)w;
        sl = (size_t)plat_be_get(d + *pos + 1, (size_t)w);
    } else {
        return -ENOENT;
    }
    if (hl > len - *pos || sl > len - *pos - hl)
        return -EBADMSG;
    *s = (const char *)d + *pos + hl;
    *n = sl;
    *pos += hl + sl;
    return 0;
}

int codec_record_peek_updated(const void *data, size_t len, int64_t *updated_ms)
{
    size_t pos = 3;
    if (codec_record_peek_kind(data, len) < 0)
        return -EBADMSG;
    return peek_int(data, len, &pos, updated_ms);
}

int codec_record_peek_str(const void *data, size_t len, const char *key, const char **s,
                          size_t *n)
{
    const unsigned char *d = data;
    size_t pos = 3;
    int64_t upd;
    if (codec_record_peek_kind(data, len) < 0 || peek_int(d, len, &pos, &upd) < 0 || pos >= len)
        return -EBADMSG;
    uint64_t nkv;
    if (d[pos] >= 0x80 && d[pos] <= 0x8f) {
        nkv = d[pos] & 0x0fu;
        pos += 1;
    } else if ((d[pos] == 0xde || d[pos] == 0xdf) && len - pos > (d[pos] == 0xde ? 2u : 4u)) {
        int w = d[pos] == 0xde ? 2 : 4;
        nkv = plat_be_get(d + pos + 1, (size_t)w);
        pos += 1 + (size_t)w;
    } else {
        return -EBADMSG;
    }
    size_t klen = strlen(key);
    for (uint64_t i = 0; i < nkv; i++) {
        const char *k, *v;
        size_t kn, vn;
        int rc = peek_strv(d, len, &pos, &k, &kn);
        if (rc == 0)
            rc = peek_strv(d, len, &pos, &v, &vn);
        if (rc < 0)
            return rc;
        if (kn == klen && memcmp(k, key, klen) == 0) {
            *s = v;
            *n = vn;
            return 0;
        }
    }
    return -ENOENT;
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
    if ((f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[2].via.u64 > (uint64_t)INT64_MAX) &&
        f[2].type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
        goto out; /* updated_ms is an int64 */
    /* A record of this build has the head codec_record_peek_kind() reads
     * (fixarray, positive fixints, a kind), so a listing that filters on
     * it and a get agree. (A newer schema version, in any encoding, is
     * -EPROTO above.) */
    if (codec_record_peek_kind(data, len) < 0)
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
    int64_t upd, peeked;
    json_t *doc = NULL;
    int rc = codec_record_unpack(data, len, &kind, &upd, &doc);
    /* the peeks read the same bytes without the bounds walk: a record that
     * decodes has the kind and updated_ms they read, and a peeked string
     * lies within the bytes and is what the document holds */
    if (rc == 0 && (codec_record_peek_kind(data, len) != (int)kind ||
                    codec_record_peek_updated(data, len, &peeked) != 0 || peeked != upd))
        abort();
    const char *s;
    size_t n;
    int prc = codec_record_peek_str(data, len, "name", &s, &n);
    if (prc == 0 &&
        (s < (const char *)data || n > len || (size_t)(s - (const char *)data) > len - n))
        abort();
    if (rc == 0 && prc == 0) {
        const json_t *name = json_object_get(doc, "name");
        if (!json_is_string(name) || json_string_length(name) != n ||
            memcmp(json_string_value(name), s, n) != 0)
            abort();
    }
    /* what decodes, packs again (unless nested past what packing allows)
     * into a record that decodes to the same */
    struct plat_buf b = {0};
    if (rc == 0 && codec_record_pack(&b, kind, upd, doc) == 0) {
        enum rec_kind k2;
        int64_t u2;
        json_t *d2 = NULL;
        if (codec_record_unpack(b.data, b.len, &k2, &u2, &d2) != 0 || k2 != kind || u2 != upd ||
            !json_equal(doc, d2))
            abort();
        json_decref(d2);
    }
    plat_buf_fini(&b);
    json_decref(doc);
    return rc;
}
