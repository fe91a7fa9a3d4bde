/* Fuzz target: the actionloop protocol (runtimes/actionloop.c), the bytes a
 * worker sends back. The input is one line from fd 3 read as an ack, an
 * init answer and a result, and the same bytes as a log line; a result
 * that parses must go out again in a run line (as a sequence passes it on)
 * and that line must read back with the same value. */
#include <stdlib.h>
#include <string.h>

#include "actionloop.h"
#include "fuzz_targets.h"
#include "wjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    (void)al_is_ack(line, size);
    char msg[512];
    if (al_init_answer(line, size, msg, sizeof msg) != 0 && !strstr(msg, "Initialization has failed"))
        abort();
    struct timespec at = {(time_t)size * 7919, (long)(size % 1000000000)};
    json_t *log = al_log_line(&at, size % 2 ? "stdout" : "stderr", line, size);
    if (!log || json_string_length(log) < size + 30)
        abort();
    json_decref(log);
    json_t *v = al_result(line, size);
    if (v) {
        struct pool_msg m = {.value = v, .namespace = "ns", .action_name = "/ns/a",
                             .activation_id = "0123", .api_host = "http://h", .deadline_ms = 1};
        struct plat_buf b = {0};
        if (al_run_line(&b, &m) == 0) {
            json_t *back = wjson_parse(b.data, b.len, NULL);
            if (!back || !json_equal(json_object_get(back, "value"), v))
                abort();
            json_decref(back);
        }
        plat_buf_fini(&b);
        json_decref(v);
    }
    return 0;
}
