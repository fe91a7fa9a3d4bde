/* Fuzz target: the JSON writer (platform/wjson.c) against jansson's own.
 * Whatever jansson parses must come out of wjson_dump as the very bytes
 * json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) gives, and read back equal. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_targets.h"
#include "wjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
