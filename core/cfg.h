/* core/cfg.h - wispd's settings: one table drives the config file, the
 * command-line flags, board profiles and --print-config, so they cannot
 * drift apart.
 *
 * Layers, lowest first: built-in defaults < board profile (board-dir/NAME.conf)
 * < config file (--config) < command-line flags. Files hold `key = value`
 * lines (or `key value`), `#` starts a comment. Keys are the flag names
 * without the leading dashes. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wisp.h"

struct wisp_cfg {
    char data[PATH_MAX];      /* data dir */
    char listen[256];         /* HOST:PORT */
    char config[PATH_MAX];    /* config file, if any */
    char board[64];           /* board profile name */
    char board_dir[PATH_MAX]; /* where profiles live */
    char kinds[PATH_MAX];     /* runtime manifest */
    char mqtt[512];           /* broker URL (feeds; later issue) */
    char tls_cert[PATH_MAX];
    char tls_key[PATH_MAX];
    char tls_ca_file[PATH_MAX]; /* CAs outgoing TLS trusts (poll feed's https) */
    char log_level[16];
    uint64_t store_map_mb;
    uint64_t store_map_max_mb;
    uint64_t store_trim_ms;
    uint64_t entity_cache;
    uint64_t http_max_conns;
    uint64_t http_idle_timeout_s;
    uint64_t http_max_header_kb;
    uint64_t http_max_held_mb; /* replies held for clients that do not read, all together */
    uint64_t max_body_kb;       /* bodies of requests other than action PUT */
    uint64_t action_max_code_kb; /* exec.code limit (OpenWhisk: 48 MB) */
    uint64_t max_params_kb;     /* parameters/annotations (OpenWhisk: 1 MB) */
    uint64_t sequence_max;      /* components per sequence */
    uint64_t action_timeout_max_ms, action_timeout_default_ms; /* limits.timeout */
    uint64_t action_memory_min_mb, action_memory_max_mb, action_memory_default_mb;
    uint64_t action_logs_max_mb;
    uint64_t concurrency_max;   /* upper bound of limits.concurrency */
    uint64_t drain_timeout_s;   /* SIGTERM drain bound */
    /* invocation */
    uint64_t invocations_per_minute; /* per namespace */
    uint64_t concurrent_invocations; /* per namespace */
    uint64_t fires_per_minute;       /* per namespace */
    uint64_t auth_failures_per_minute; /* per client address */
    uint64_t max_payload_kb;
    uint64_t max_result_kb;
    uint64_t activation_max_age_s;
    uint64_t activation_max_count;
    uint64_t pool_memory_mb;
    uint64_t stem_memory_mb;
    uint64_t idle_evict_s;
    uint64_t stem_reclaim_s;
    uint64_t pool_queue_max;
    uint64_t worker_pids_max;
    char prewarm[256];
    char interpreters[1024];
    char worker_user[64];
    char cgroups[8];
    char worker_cpu_share[8];
    char oci_runtime[PATH_MAX];
    uint64_t container_pause_ms;
    char runtimes_dir[PATH_MAX];
    char libexec_dir[PATH_MAX];
    char mqtt_client_id[128];
    uint64_t outbox_max;
    /* not a setting: with board = auto, which profile was picked and why
     * (for the log); "" otherwise */
    char board_auto[256];
};

/* Fills the built-in defaults. */
void cfg_defaults(struct wisp_cfg *cfg);
/* Applies one `key`, `value` setting. 0, or -EINVAL/-ERANGE with err set
 * ("listen: ..."). */
int cfg_set(struct wisp_cfg *cfg, const char *key, const char *value, struct wisp_err *err)
    WISP_MUST_CHECK;
/* Parses the bytes of a config file and applies them; errors name
 * origin:line. */
int cfg_parse(struct wisp_cfg *cfg, const char *text, size_t len, const char *origin,
              struct wisp_err *err) WISP_MUST_CHECK;
/* Builds the whole config from argv (flags as `--key value` or
 * `--key=value`), loading the board profile and config file they name.
 * Returns 0, 1 when the caller should print usage and exit 0 (--help), 2 for
 * --print-config, or a negative code with err set. */
int cfg_load(struct wisp_cfg *cfg, int argc, char **argv, struct wisp_err *err) WISP_MUST_CHECK;
/* Writes every setting as a config file would hold it (secrets masked). */
void cfg_print(const struct wisp_cfg *cfg, void *file);
void cfg_usage(void *file);
/* The profile `--board auto` picks for a machine: the device tree's model
 * ("" on a PC) and its memory (MB, a cgroup's limit if lower). */
const char *cfg_board_pick(const char *model, uint64_t mem_mb);
/* Splits "host:port" ("[v6]:port" too). 0 or -EINVAL. */
int cfg_split_hostport(const char *s, char *host, size_t hostlen, unsigned *port) WISP_MUST_CHECK;

/* Fuzz entry point for the config parser. */
int cfg_fuzz_one(const uint8_t *data, size_t len);
