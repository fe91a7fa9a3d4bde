/* Fuzz target: the API's request path parser and route table (core/api.c):
 * percent-decoding into segments (split_path) and the table match
 * (path_match) for every method, as route() does it, with no server. The
 * input is the path after its leading '/'. The entry point checks that
 * every segment lies in the segment buffer, that no %2F hides a separator,
 * that encoding the segments again and splitting gives them back, and that
 * a matched row's captures are the non-empty segments its handler reads. */
#include "api.h"
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)api_fuzz_route(data, size);
    return 0;
}
