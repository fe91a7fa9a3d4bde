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

static int dump_add(const char *chunk, size_t n, void *arg)
{
    return plat_buf_add(arg, chunk, n);
}

/* One pass into a growing buffer: json_dumpb(NULL) to size and then again
 * to fill costs a second serialization on every invoke. */
char *wjson_dump(const json_t *j, size_t *len)
{
    struct plat_buf d = {0};
    if (json_dump_callback(j, dump_add, &d, JSON_COMPACT | JSON_ENCODE_ANY) < 0 || d.len == 0) {
        plat_buf_fini(&d);
        return NULL;
    }
    d.data[d.len] = '\0';
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
