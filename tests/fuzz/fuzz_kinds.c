/* Fuzz target: the runtime kind manifest (runtimes/kinds.c). */
#include "fuzz_targets.h"
#include "pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rt_kinds *k = NULL;
    if (rt_kinds_parse((const char *)data, size, "fuzz", &k, NULL) == 0) {
        (void)rt_kind_find(k, "python:default");
        rt_kinds_free(k);
    }
    return 0;
}
