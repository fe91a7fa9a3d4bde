/* platform/wjson.h - the JSON helpers every module shares (jansson).
 *
 * jansson was chosen over cJSON because it keeps 64-bit integers exact
 * (cJSON stores every number as a double, which corrupts ids and epoch
 * times past 2^53), keeps object keys in insertion order (so records read
 * back in the order they were written), reports parse errors with line and
 * column, and reference-counts values so the entity cache can hand out
 * shared read-only documents without copying. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "wisp.h"

/* Deepest nesting accepted in stored documents. The msgpack-c unpacker has a
 * fixed stack of 32 levels (MSGPACK_EMBED_STACK_SIZE, compiled into the
 * library); records wrap user values in up to 5 levels of their own. */
#define WJSON_MAX_DEPTH 24

/* Parses len bytes (any JSON value). NULL on error with err->msg set. */
json_t *wjson_parse(const char *buf, size_t len, struct wisp_err *err);
/* json_loadb(buf, len, flags, je), faster: the same trees, the same errors. */
json_t *wjson_load(const char *buf, size_t len, size_t flags, json_error_t *je);
/* The fast reader alone: NULL when it leaves the answer to json_loadb (any
 * error, and the few things it does not read itself). For the fuzzer. */
json_t *wjson_load_fast(const char *buf, size_t len, size_t flags);
/* Compact serialisation, the bytes json_dumps(JSON_COMPACT | JSON_ENCODE_ANY)
 * gives; caller frees with free(). NULL on ENOMEM or what jansson cannot
 * write either (invalid UTF-8, a NaN). */
char *wjson_dump(const json_t *j, size_t *len);
struct plat_buf;
/* The same, appended to b (NUL-terminated after). 0, -ENOMEM or -EINVAL
 * (b is then as it was). */
int wjson_dump_to(struct plat_buf *b, const json_t *j) WISP_MUST_CHECK;
/* For JSON written piece by piece: a quoted, escaped string of n bytes
 * (-EINVAL for invalid UTF-8), and an integer. 0 or a negative errno. */
int wjson_put_str(struct plat_buf *b, const char *s, size_t n) WISP_MUST_CHECK;
int wjson_put_int(struct plat_buf *b, long long v) WISP_MUST_CHECK;
/* Nesting depth: scalars 0, [] / {} 1, [[1]] 2, ... */
int wjson_depth(const json_t *j);
/* Borrowed string member or NULL when absent or not a string. */
const char *wjson_str(const json_t *obj, const char *key);
/* Boolean member; def when absent; -1 if present and not a boolean. */
int wjson_bool(const json_t *obj, const char *key, bool def);
/* Finds {"key": k, "value": v} in a key/value array; borrowed or NULL. */
json_t *wjson_kv_get(const json_t *arr, const char *key);
/* A JSON string holding len bytes at p in base64 (new reference), or NULL
 * (out of memory). */
json_t *wjson_base64(const void *p, size_t len);
