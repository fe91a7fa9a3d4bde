/* platform/wjson.c - see wjson.h. */
#include "wjson.h"

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

char *wjson_dump(const json_t *j, size_t *len)
{
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n == 0)
        return NULL;
    char *buf = malloc(n + 1);
    if (!buf)
        return NULL;
    if (json_dumpb(j, buf, n, JSON_COMPACT | JSON_ENCODE_ANY) != n) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
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
