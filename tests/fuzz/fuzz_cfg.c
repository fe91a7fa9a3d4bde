/* Fuzz target: the config file parser (core/cfg.c). */
#include "cfg.h"
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)cfg_fuzz_one(data, size);
    return 0;
}
