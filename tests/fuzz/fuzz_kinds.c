/* Fuzz target: the runtime kind manifest (runtimes/kinds.c): parsing,
 * then resolution against a fake machine (no process is run) and the
 * lookups on what it offers. */
#include <errno.h>
#include <stdio.h>

#include "fuzz_targets.h"
#include "log.h"
#include "pool.h"

/* Every interpreter answers, with a version taken from its path's length,
 * so both outcomes of a {major} kind are reached. */
static int probe(void *ctx, const char *interpreter, char *version, size_t cap)
{
    (void)ctx;
    size_t n = 0;
    while (interpreter[n])
        n++;
    if (n % 3 == 0)
        return -ENOENT; /* not installed */
    if (n % 3 == 1)
        snprintf(version, cap, "v%zu.0.1", n);
    else
        snprintf(version, cap, "no version");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wlog_threshold = WLOG_ERR; /* what resolution skips is logged at warn */
    struct rt_kinds *k = NULL;
    if (rt_kinds_parse((const char *)data, size, "fuzz", &k, NULL) == 0) {
        (void)rt_kind_find(k, "python:default");
        if (rt_kinds_resolve(k, NULL, probe, NULL, NULL) == 0) {
            for (size_t i = 0; i < rt_kinds_count(k); i++)
                (void)rt_kind_for_stored(k, rt_kind_at(k, i)->kind);
            (void)rt_kind_for_stored(k, "nodejs:20");
            (void)rt_kind_unavailable(k, "nodejs:default");
        }
        rt_kinds_free(k);
    }
    return 0;
}
