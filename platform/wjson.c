/* platform/wjson.c - see wjson.h. */
#include "wjson.h"

#include "plat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

json_t *wjson_parse(const char *buf, size_t len, struct wisp_err *err)
{
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        wisp_err_set(err, -EINVAL, "The request content was malformed: %s at line %d column %d",
                     je.text, je.line, je.column);
    return j;
}

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
