/* Fuzz target: HTTP request line and header parsing (core/http.c). */
#include "fuzz_targets.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)http_fuzz_one(data, size);
    return 0;
}
