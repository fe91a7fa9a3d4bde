/* Fuzz target: action PUT bodies through validation and update merging
 * (core/entity.c) with the real kind manifest. */
#include <stdio.h>
#include <stdlib.h>

#include "entity.h"
#include "fuzz_targets.h"
#include "pool.h"
#include "wisp_config.h"

/* The manifest resolved as on a machine with python3 and node 18, without
 * running anything: the target stays a pure function of its input. */
static int probe(void *ctx, const char *interpreter, char *version, size_t cap)
{
    (void)ctx;
    (void)interpreter;
    snprintf(version, cap, "v18.19.0");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rt_kinds *kinds;
    if (!kinds && (rt_kinds_load(WISP_SOURCE_DIR "/runtimes/kinds.json", &kinds, NULL) < 0 ||
                   rt_kinds_resolve(kinds, NULL, probe, NULL, NULL) < 0))
        abort();
    struct entity_env env = {.kinds = kinds, .max_code_bytes = 4096, .max_params_bytes = 4096,
                             .sequence_max = 5, .concurrency_max = 10};
    (void)entity_fuzz_one(&env, data, size);
    return 0;
}
