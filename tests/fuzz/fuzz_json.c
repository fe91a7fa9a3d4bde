/* Fuzz target: our JSON reader and writer (platform/wjson.c) against
 * jansson's own.
 * - Whatever the fast reader reads, with each set of flags the code uses,
 *   json_loadb reads too, into the same tree (compared by the writer's
 *   bytes, so types and key order count).
 * - Whatever jansson parses must come out of wjson_dump as the very bytes
 *   json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) gives, and read back equal. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_targets.h"
#include "wjson.h"

static void same_reading(const uint8_t *data, size_t size, size_t flags)
{
    json_t *fast = wjson_load_fast((const char *)data, size, flags);
    if (!fast)
        return;
    json_t *j = json_loadb((const char *)data, size, flags, NULL);
    if (!j)
        abort();
    size_t n = 0, m = 0;
    char *a = wjson_dump(fast, &n), *b = wjson_dump(j, &m);
    if (!a || !b || n != m || memcmp(a, b, n) != 0 || !json_equal(fast, j))
        abort();
    free(a);
    free(b);
    json_decref(j);
    json_decref(fast);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    same_reading(data, size, 0);
    same_reading(data, size, JSON_DECODE_ANY);
    same_reading(data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL);
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!j)
        return 0;
    size_t n = 0, m = 0;
    char *ours = wjson_dump(j, &n);
    char *theirs = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (theirs)
        m = strlen(theirs); /* a NUL inside a string is written as \u0000 */
    if (!ours != !theirs || (ours && (n != m || memcmp(ours, theirs, n) != 0)))
        abort();
    if (ours) {
        json_t *back = json_loadb(ours, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!back || !json_equal(j, back))
            abort();
        json_decref(back);
    }
    free(ours);
    free(theirs);
    json_decref(j);
    return 0;
}
