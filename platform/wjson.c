/* platform/wjson.c - see wjson.h. */
#include "wjson.h"

#include "plat.h"

#include <mbedtls/base64.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ==== the writer =====================================================
 * Our own compact writer, byte for byte what json_dumps(JSON_COMPACT |
 * JSON_ENCODE_ANY) writes (a unit test and the codec fuzzer compare the two):
 * jansson's dumper walks every string a code point at a time through a
 * callback and formats every integer with snprintf, a visible share of
 * each event's CPU. */

/* Length of the valid UTF-8 sequence at s (at most n bytes), as jansson
 * accepts it (no overlong forms, no surrogates, nothing past U+10FFFF);
 * 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* ==== the reader =====================================================
 * A single pass over the bytes that builds the very tree json_loadb builds,
 * through the same jansson calls (json_object_setn_new_nocheck keeps
 * jansson's rule for duplicate keys: the last value wins, in the first
 * one's place). jansson's lexer reads a byte at a time through a stream
 * and copies every token; this reads strings without escapes in place.
 * Whatever it does not handle (an error of any kind, an integer of more
 * than 18 digits, nesting past READ_DEPTH) it leaves to json_loadb, so the
 * accepted set, the trees and the error messages are jansson's: a fuzz
 * target holds the two to the same trees. */

#define READ_DEPTH 64

struct rd {
    const unsigned char *p, *end;
    size_t flags;
    int depth;
    char *tmp; /* unescaped strings */
    size_t tmp_cap;
};

static void rd_ws(struct rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* The string whose opening quote was just passed: *out (in the input, or
 * in r->tmp when it had escapes) and *n. false to leave it to jansson. */
static bool rd_string(struct rd *r, const char **out, size_t *n)
{
    const unsigned char *s = r->p;
    while (r->p < r->end) {
        unsigned c = *r->p;
        if (c == '"') {
            *out = (const char *)s;
            *n = (size_t)(r->p - s);
            r->p++;
            return true;
        }
        if (c == '\\')
            break;
        if (c < 0x20)
            return false;
        if (c < 0x80) {
            r->p++;
        } else {
            size_t l = utf8_len(r->p, (size_t)(r->end - r->p));
            if (!l)
                return false;
            r->p += l;
        }
    }
    if (r->p >= r->end)
        return false;
    /* escapes: unescape into tmp; the result is never longer than the input */
    size_t need = (size_t)(r->end - s);
    if (need > r->tmp_cap) {
        char *t = realloc(r->tmp, need);
        if (!t)
            return false;
        r->tmp = t;
        r->tmp_cap = need;
    }
    size_t o = (size_t)(r->p - s);
    memcpy(r->tmp, s, o);
    while (r->p < r->end) {
        unsigned c = *r->p;
        if (c == '"') {
            r->p++;
            *out = r->tmp;
            *n = o;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            size_t l = utf8_len(r->p, (size_t)(r->end - r->p));
            if (!l)
                return false;
            memcpy(r->tmp + o, r->p, l);
            o += l;
            r->p += l;
            continue;
        }
        if (c != '\\') {
            r->tmp[o++] = (char)c;
            r->p++;
            continue;
        }
        if (r->end - r->p < 2)
            return false;
        c = r->p[1];
        r->p += 2;
        const char *simple = strchr("\"\\/bfnrt", (int)c);
        if (c && simple) {
            static const char to[] = "\"\\/\b\f\n\r\t";
            r->tmp[o++] = to[simple - "\"\\/bfnrt"];
            continue;
        }
        if (c != 'u' || r->end - r->p < 4)
            return false;
        int cp = hex4(r->p);
        r->p += 4;
        if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
            return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u')
                return false;
            int lo = hex4(r->p + 2);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return false;
            r->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0 && !(r->flags & JSON_ALLOW_NUL))
            return false;
        /* at most 4 bytes out for at least 6 in */
        if (cp < 0x80) {
            r->tmp[o++] = (char)cp;
        } else if (cp < 0x800) {
            r->tmp[o++] = (char)(0xC0 | cp >> 6);
            r->tmp[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            r->tmp[o++] = (char)(0xE0 | cp >> 12);
            r->tmp[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
            r->tmp[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            r->tmp[o++] = (char)(0xF0 | cp >> 18);
            r->tmp[o++] = (char)(0x80 | (cp >> 12 & 0x3F));
            r->tmp[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
            r->tmp[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return false;
}

/* Skips a run of digits; its length. */
static size_t rd_digits(struct rd *r)
{
    const unsigned char *d = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return (size_t)(r->p - d);
}

static json_t *rd_number(struct rd *r)
{
    const unsigned char *s = r->p;
    bool neg = false;
    if (r->p < r->end && *r->p == '-') {
        neg = true;
        r->p++;
    }
    const unsigned char *d = r->p;
    size_t nd = rd_digits(r);
    if (nd == 0 || (nd > 1 && *d == '0'))
        return NULL;
    bool real = false;
    if (r->p < r->end && *r->p == '.') {
        real = true;
        r->p++;
        if (rd_digits(r) == 0)
            return NULL;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        real = true;
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (rd_digits(r) == 0)
            return NULL;
    }
    if (!real) {
        if (nd > 18)
            return NULL; /* may not fit: jansson says how */
        int64_t v = 0;
        for (size_t i = 0; i < nd; i++)
            v = v * 10 + (d[i] - '0');
        return json_integer(neg ? -v : v);
    }
    char buf[64];
    size_t tl = (size_t)(r->p - s);
    if (tl >= sizeof buf)
        return NULL;
    memcpy(buf, s, tl);
    buf[tl] = '\0';
    char *e;
    double v = strtod(buf, &e);
    if (e != buf + tl || !isfinite(v)) /* a locale's decimal point, or overflow */
        return NULL;
    return json_real(v);
}

static json_t *rd_value(struct rd *r)
{
    rd_ws(r);
    if (r->p >= r->end)
        return NULL;
    unsigned c = *r->p;
    if (c == '{' || c == '[') {
        if (++r->depth > READ_DEPTH)
            return NULL;
        r->p++;
        bool obj = c == '{';
        json_t *j = obj ? json_object() : json_array();
        if (!j)
            return NULL;
        rd_ws(r);
        if (r->p < r->end && *r->p == (obj ? '}' : ']')) {
            r->p++;
            r->depth--;
            return j;
        }
        for (;;) {
            const char *key = NULL;
            size_t kl = 0;
            char kbuf[64], *kfree = NULL;
            if (obj) {
                rd_ws(r);
                if (r->p >= r->end || *r->p != '"')
                    goto bad;
                r->p++;
                if (!rd_string(r, &key, &kl) || memchr(key, '\0', kl))
                    goto bad;
                if (key == r->tmp) { /* the value may reuse tmp */
                    char *k = kl < sizeof kbuf ? kbuf : (kfree = malloc(kl));
                    if (!k)
                        goto bad;
                    memcpy(k, key, kl);
                    key = k;
                }
                rd_ws(r);
                if (r->p >= r->end || *r->p != ':') {
                    free(kfree);
                    goto bad;
                }
                r->p++;
            }
            json_t *v = rd_value(r);
            int rc = !v ? -1
                     : obj ? json_object_setn_new_nocheck(j, key, kl, v)
                           : json_array_append_new(j, v);
            free(kfree);
            if (rc < 0)
                goto bad;
            rd_ws(r);
            if (r->p >= r->end)
                goto bad;
            if (*r->p == ',') {
                r->p++;
                continue;
            }
            if (*r->p != (obj ? '}' : ']'))
                goto bad;
            r->p++;
            r->depth--;
            return j;
        }
    bad:
        json_decref(j);
        return NULL;
    }
    if (c == '"') {
        r->p++;
        const char *s;
        size_t n;
        return rd_string(r, &s, &n) ? json_stringn_nocheck(s, n) : NULL;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return rd_number(r);
    static const struct {
        const char *word;
        size_t len;
    } lit[] = {{"true", 4}, {"false", 5}, {"null", 4}};
    for (int i = 0; i < 3; i++)
        if ((size_t)(r->end - r->p) >= lit[i].len && memcmp(r->p, lit[i].word, lit[i].len) == 0) {
            r->p += lit[i].len;
            return i == 0 ? json_true() : i == 1 ? json_false() : json_null();
        }
    return NULL;
}

json_t *wjson_load_fast(const char *buf, size_t len, size_t flags)
{
    if (flags & ~(size_t)(JSON_DECODE_ANY | JSON_ALLOW_NUL))
        return NULL;
    struct rd r = {.p = (const unsigned char *)buf, .end = (const unsigned char *)buf + len,
                   .flags = flags};
    rd_ws(&r);
    if (!(flags & JSON_DECODE_ANY) && (r.p >= r.end || (*r.p != '{' && *r.p != '[')))
        return NULL;
    json_t *j = rd_value(&r);
    free(r.tmp);
    if (!j)
        return NULL;
    rd_ws(&r);
    if (r.p != r.end) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *wjson_load(const char *buf, size_t len, size_t flags, json_error_t *je)
{
    json_t *j = wjson_load_fast(buf, len, flags);
    return j ? j : json_loadb(buf, len, flags, je);
}

json_t *wjson_parse(const char *buf, size_t len, struct wisp_err *err)
{
    json_error_t je;
    json_t *j = wjson_load(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        wisp_err_set(err, -EINVAL, "The request content was malformed: %s at line %d column %d",
                     je.text, je.line, je.column);
    return j;
}

static int put_string(struct plat_buf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    if (plat_buf_add(b, "\"", 1) < 0)
        return -ENOMEM;
    size_t run = 0; /* s[run .. i) is copied as it is */
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_len(s + i, n - i);
            if (!l)
                return -EINVAL;
            i += l;
            continue;
        }
        if (plat_buf_add(b, s + run, i - run) < 0)
            return -ENOMEM;
        char esc[6] = {'\\', 0};
        size_t el = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        if (plat_buf_add(b, esc, el) < 0)
            return -ENOMEM;
        run = ++i;
    }
    return plat_buf_add(b, s + run, n - run) < 0 || plat_buf_add(b, "\"", 1) < 0 ? -ENOMEM : 0;
}

static int put_integer(struct plat_buf *b, json_int_t v)
{
    char d[24], *p = d + sizeof d;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return plat_buf_add(b, p, (size_t)(d + sizeof d - p));
}

static int put_value(struct plat_buf *b, const json_t *j, int depth)
{
    if (depth > 2048) /* as deep as jansson's parser goes */
        return -EINVAL;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (plat_buf_add(b, "{", 1) < 0)
            return -ENOMEM;
        bool first = true;
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it)) {
            int rc = 0;
            if ((!first && plat_buf_add(b, ",", 1) < 0) ||
                (rc = put_string(b, json_object_iter_key(it), json_object_iter_key_len(it))) < 0 ||
                plat_buf_add(b, ":", 1) < 0 ||
                (rc = put_value(b, json_object_iter_value(it), depth + 1)) < 0)
                return rc < 0 ? rc : -ENOMEM;
            first = false;
        }
        return plat_buf_add(b, "}", 1);
    }
    case JSON_ARRAY: {
        if (plat_buf_add(b, "[", 1) < 0)
            return -ENOMEM;
        size_t n = json_array_size(j);
        for (size_t i = 0; i < n; i++) {
            int rc = 0;
            if ((i && plat_buf_add(b, ",", 1) < 0) ||
                (rc = put_value(b, json_array_get(j, i), depth + 1)) < 0)
                return rc < 0 ? rc : -ENOMEM;
        }
        return plat_buf_add(b, "]", 1);
    }
    case JSON_STRING:
        return put_string(b, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return put_integer(b, json_integer_value(j));
    case JSON_REAL: { /* rare: jansson's own formatting, so reals read back alike */
        char d[64];
        size_t n = json_dumpb(j, d, sizeof d, JSON_ENCODE_ANY);
        return n == 0 || n > sizeof d ? -EINVAL : plat_buf_add(b, d, n);
    }
    case JSON_TRUE:
        return plat_buf_add(b, "true", 4);
    case JSON_FALSE:
        return plat_buf_add(b, "false", 5);
    case JSON_NULL:
        return plat_buf_add(b, "null", 4);
    }
    return -EINVAL;
}

int wjson_put_str(struct plat_buf *b, const char *s, size_t n)
{
    size_t mark = b->len;
    int rc = put_string(b, s, n);
    if (rc < 0)
        b->len = mark;
    return rc;
}

int wjson_put_int(struct plat_buf *b, long long v)
{
    return put_integer(b, v);
}

int wjson_dump_to(struct plat_buf *b, const json_t *j)
{
    size_t mark = b->len;
    int rc = j ? put_value(b, j, 0) : -EINVAL;
    if (rc < 0)
        b->len = mark;
    if (b->data)
        b->data[b->len] = '\0';
    return rc < 0 ? rc : 0;
}

char *wjson_dump(const json_t *j, size_t *len)
{
    struct plat_buf d = {0};
    if (wjson_dump_to(&d, j) < 0) {
        plat_buf_fini(&d);
        return NULL;
    }
    if (len)
        *len = d.len;
    return d.data;
}

int wjson_depth(const json_t *j)
{
    int max = 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            int d = wjson_depth(v);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            int d = wjson_depth(v);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    return 0;
}

const char *wjson_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

int wjson_bool(const json_t *obj, const char *key, bool def)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return def;
    if (!json_is_boolean(v))
        return -1;
    return json_is_true(v);
}

json_t *wjson_kv_get(const json_t *arr, const char *key)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *k = wjson_str(e, "key");
        if (k && strcmp(k, key) == 0)
            return json_object_get(e, "value");
    }
    return NULL;
}

json_t *wjson_base64(const void *p, size_t len)
{
    size_t olen = 0;
    mbedtls_base64_encode(NULL, 0, &olen, p, len);
    unsigned char *enc = malloc(olen + 1);
    json_t *r = NULL;
    if (enc && mbedtls_base64_encode(enc, olen + 1, &olen, p, len) == 0)
        r = json_stringn((const char *)enc, olen);
    free(enc);
    return r;
}
