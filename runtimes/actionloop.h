/* runtimes/actionloop.h - OpenWhisk's actionloop protocol, both ways, and
 * nothing else: the lines the pool writes to a worker's stdin, the lines it
 * reads from fd 3, and the log lines made of stdout and stderr. No I/O and
 * no state: bytes in, bytes or trees out, so every backend shares it and a
 * fuzzer can drive it (tests/fuzz/fuzz_actionloop.c).
 *
 * The exchange (../shared/openwhisk/REFERENCE.md, B.9):
 *   worker -> {"ok":true}                      the launcher is up (ack)
 *   pool   -> {"value":{"name","main","code","binary","env"}}    init
 *   worker -> {"ok":true} | {"error":"..."}    init's answer
 *   pool   -> {"value":{...},"namespace","action_name","activation_id",
 *              "transaction_id","deadline","api_host"[,"api_key"]}  a run
 *   worker -> one JSON value                   the result
 * Each is one line; lines end with \n, which these functions neither write
 * nor expect. Runtimes only (not on core's include path). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "plat.h"
#include "pool.h"

/* Appends the run line of m to b (NUL-terminated after). 0; -EMSGSIZE when m->value takes more
 * than m->value_max bytes (0: no bound); -EINVAL when value cannot be
 * written as JSON text; -ENOMEM. b is as it was on error. */
int al_run_line(struct plat_buf *b, const struct pool_msg *m) WISP_MUST_CHECK;
/* Appends the init line (main NULL: "main"; NUL-terminated after). 0,
 * -EINVAL, -ENOMEM. */
int al_init_line(struct plat_buf *b, const char *name, const char *main, const json_t *code,
                 bool binary) WISP_MUST_CHECK;
/* True for exactly {"ok":true}: the launcher's ack (also __OW_WAIT_FOR_ACK's). */
bool al_is_ack(const char *line, size_t len);
/* Init's answer: 0 when {"ok":true,...}; -EINVAL otherwise, with msg set to
 * "Initialization has failed: <the error, or 'no valid answer'>". */
int al_init_answer(const char *line, size_t len, char *msg, size_t cap);
/* A run's answer: the parsed value (new reference), or NULL when the line
 * is not one JSON value. */
json_t *al_result(const char *line, size_t len);
/* A log line in OpenWhisk's form, "<time padded to 30> <stream>: <line>",
 * as a JSON string (new reference); bytes that are not UTF-8 become '?'.
 * NULL only without memory. */
json_t *al_log_line(const struct timespec *at, const char *stream, const char *line, size_t len);
/* What al_log_line puts before the text for "stdout" or "stderr": the
 * 30-column time, a space, the stream and ": ". */
#define AL_LOG_PREFIX_LEN (30 + 1 + 6 + 2)
/* The notice OpenWhisk adds as the last log line when logs are cut. */
int al_truncation_notice(char *out, size_t cap, size_t limit);
