/* core/cfg.c - the settings table and its three readers (file, flags,
 * board profile). See cfg.h.
 *
 * Every setting is one row: name, type, where it lives in struct wisp_cfg,
 * bounds and help. A new setting is a new row; nothing else changes. */
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plat.h"
#include "spawn.h"
#include "tls.h"
#include "wisp_config.h"

enum cfg_type { CFG_STR, CFG_U64 };

struct cfg_row {
    const char *name;
    enum cfg_type type;
    size_t off, size; /* size: buffer size for strings */
    uint64_t min, max;
    const char *def;
    const char *help;
};

#define STR(n, field, def, help)                                                                   \
    {n, CFG_STR, offsetof(struct wisp_cfg, field), sizeof(((struct wisp_cfg *)0)->field), 0, 0,   \
     def, help}
#define U64(n, field, lo, hi, def, help)                                                           \
    {n, CFG_U64, offsetof(struct wisp_cfg, field), sizeof(uint64_t), lo, hi, def, help}

#ifdef WISP_32BIT
#define MAP_MAX_DEFAULT "1024" /* 32-bit: the map must fit the address space */
#define MAP_MAX_LIMIT 2048
#else
#define MAP_MAX_DEFAULT "65536"
#define MAP_MAX_LIMIT (1u << 24)
#endif

static const struct cfg_row rows[] = {
    STR("data", data, WISP_DEFAULT_DATA, "data directory (LMDB store, guest.key)"),
    STR("listen", listen, "127.0.0.1:3233", "API listener HOST:PORT (port 0 picks a free one)"),
    STR("config", config, "", "config file to read"),
    STR("board", board, "generic", "board profile name (board-dir/NAME.conf), or auto: picked by the device tree's model and the memory"),
    STR("board-dir", board_dir, WISP_DEFAULT_BOARD_DIR, "where board profiles live"),
    STR("kinds", kinds, WISP_DEFAULT_KINDS, "runtime kinds manifest"),
    STR("mqtt", mqtt, "", "MQTT broker URL for feeds and result bindings"),
    STR("tls-cert", tls_cert, "", "TLS certificate (PEM) for the API listener"),
    STR("tls-key", tls_key, "", "TLS private key (PEM) for the API listener"),
    STR("tls-ca-file", tls_ca_file, TLS_CA_FILE_DEFAULT,
        "CA bundle (PEM) that outgoing TLS trusts (poll feed https:// URLs)"),
    STR("log-level", log_level, "info", "err, warn, info or debug"),
    U64("store-map-mb", store_map_mb, 1, MAP_MAX_LIMIT, "64", "initial LMDB map size (MB)"),
    U64("store-map-max-mb", store_map_max_mb, 1, MAP_MAX_LIMIT, MAP_MAX_DEFAULT,
        "the LMDB map grows up to this size (MB)"),
    U64("store-trim-ms", store_trim_ms, 0, 60000, "25",
        "under writes, the store's mapped pages leave wispd's RSS at most this often (they stay in the page cache; 0: once a second)"),
    U64("entity-cache", entity_cache, 0, 1000000, "1024", "entities kept decoded in memory"),
    U64("http-max-conns", http_max_conns, 1, 65536, "512", "concurrent API connections"),
    U64("http-idle-timeout-s", http_idle_timeout_s, 1, 86400, "60",
        "close API connections idle this long"),
    U64("http-max-held-mb", http_max_held_mb, 1, 1u << 16, "32",
        "replies waiting for clients that do not read them, all connections together; past it "
        "the oldest unmoved ones are dropped and their connections closed"),
    U64("http-max-header-kb", http_max_header_kb, 1, 1024, "16", "request line + headers bound"),
    U64("max-body-kb", max_body_kb, 1, 1u << 20, "1100",
        "request body bound (action PUT: action-max-code-kb)"),
    U64("action-max-code-kb", action_max_code_kb, 1, 1u << 20, "49152",
        "exec.code bound (OpenWhisk: 48 MB)"),
    U64("max-params-kb", max_params_kb, 1, 1u << 20, "1024",
        "parameters / annotations bound (OpenWhisk: 1 MB)"),
    U64("sequence-max", sequence_max, 1, 10000, "50", "components in one sequence"),
    U64("concurrency-max", concurrency_max, 1, 500, "500", "largest limits.concurrency"),
    U64("action-timeout-max-ms", action_timeout_max_ms, 100, 86400000, "300000",
        "largest limits.timeout (OpenWhisk: 5 min)"),
    U64("action-timeout-default-ms", action_timeout_default_ms, 100, 86400000, "60000",
        "limits.timeout of an action that names none"),
    U64("action-memory-min-mb", action_memory_min_mb, 16, 1u << 20, "128",
        "smallest limits.memory"),
    U64("action-memory-max-mb", action_memory_max_mb, 16, 1u << 20, "512",
        "largest limits.memory"),
    U64("action-memory-default-mb", action_memory_default_mb, 16, 1u << 20, "256",
        "limits.memory of an action that names none"),
    U64("action-logs-max-mb", action_logs_max_mb, 0, 1024, "10",
        "largest limits.logs, and the default"),
    U64("drain-timeout-s", drain_timeout_s, 0, 3600, "30",
        "on SIGTERM wait this long for in-flight work"),
    U64("invocations-per-minute", invocations_per_minute, 1, 100000000, "60000",
        "per namespace (OpenWhisk's default is 120; gateways run tighter loops)"),
    U64("concurrent-invocations", concurrent_invocations, 1, 100000, "200",
        "activations in flight per namespace"),
    U64("fires-per-minute", fires_per_minute, 1, 100000000, "60000",
        "trigger fires per namespace (OpenWhisk's default is 60)"),
    U64("auth-failures-per-minute", auth_failures_per_minute, 1, 100000000, "60",
        "failed API authentications per client address; beyond, 429 for a minute"),
    U64("max-payload-kb", max_payload_kb, 1, 1u << 20, "1024", "invoke parameters (OpenWhisk: 1 MB)"),
    U64("max-result-kb", max_result_kb, 1, 1u << 20, "1024", "action results (OpenWhisk: 1 MB)"),
    U64("activation-max-age-s", activation_max_age_s, 0, 1u << 31, "604800",
        "activations older than this are removed (0: no age limit)"),
    U64("activation-max-count", activation_max_count, 1, 100000000, "100000",
        "activations kept per namespace"),
    U64("pool-memory-mb", pool_memory_mb, 128, 1u << 20, "1024",
        "memory budget: the sum of running actions' limits.memory"),
    U64("stem-memory-mb", stem_memory_mb, 16, 4096, "128", "what a stem cell reserves"),
    U64("idle-evict-s", idle_evict_s, 1, 86400, "600", "warm workers idle this long stop"),
    U64("stem-reclaim-s", stem_reclaim_s, 1, 86400, "5",
        "a missing stem cell may replace a warm worker idle this long"),
    U64("pool-queue-max", pool_queue_max, 0, 1000000, "1000",
        "activations waiting for a worker; beyond, 503"),
    U64("worker-pids-max", worker_pids_max, 1, 1u << 22, "1024", "processes per worker (cgroups)"),
    STR("prewarm", prewarm, "python:3=1,nodejs:default=1", "stem cells per kind, kind=count,..."),
    STR("interpreters", interpreters, "", "kind=/path/to/interpreter,... over the manifest's"),
    STR("worker-user", worker_user, "nobody", "user workers run as when wispd runs as root"),
    STR("cgroups", cgroups, "auto", "auto: confine workers in cgroups where possible; off"),
    STR("worker-cpu-share", worker_cpu_share, "memory",
        "memory: a worker's CPU weight is limits.memory / pool-memory-mb of wispd's "
        "(OpenWhisk's cpu-shares); equal"),
    STR("mqtt-client-id", mqtt_client_id, "",
        "MQTT client id (default: wisp-<hostname>-<hash of the data dir>)"),
    U64("outbox-max", outbox_max, 1, 10000000, "10000",
        "MQTT results kept while the broker is away; beyond, new ones are dropped"),
    U64("container-pause-ms", container_pause_ms, 0, 3600000, "50",
        "an idle container is frozen (cgroup freezer) after this many ms; 0: never"),
    STR("oci-runtime", oci_runtime, "runc",
        "the OCI runtime container actions run with: runc, crun, or a path"),
    STR("runtimes-dir", runtimes_dir, WISP_DEFAULT_RUNTIMES_DIR, "where the launchers live"),
    STR("libexec-dir", libexec_dir, WISP_DEFAULT_LIBEXEC_DIR,
        "where compiled helpers live (wisp-unzip-exec, for zipped native actions)"),
};

static const struct cfg_row *find_row(const char *name)
{
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

int cfg_set(struct wisp_cfg *cfg, const char *key, const char *value, struct wisp_err *err)
{
    const struct cfg_row *r = find_row(key);
    if (!r)
        return wisp_err_set(err, -EINVAL, "unknown setting '%s'", key);
    char *field = (char *)cfg + r->off;
    if (r->type == CFG_STR) {
        size_t n = strlen(value);
        if (n >= r->size)
            return wisp_err_set(err, -ERANGE, "%s: value longer than %zu bytes", key, r->size - 1);
        memcpy(field, value, n + 1);
        return 0;
    }
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)value[0]))
        return wisp_err_set(err, -EINVAL, "%s: '%s' is not a number", key, value);
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || *end)
        return wisp_err_set(err, -EINVAL, "%s: '%s' is not a number", key, value);
    if (v < r->min || v > r->max)
        return wisp_err_set(err, -ERANGE, "%s: %llu out of range %llu..%llu", key, v,
                            (unsigned long long)r->min, (unsigned long long)r->max);
    uint64_t u = v;
    memcpy(field, &u, sizeof u);
    return 0;
}

void cfg_defaults(struct wisp_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        int rc = cfg_set(cfg, rows[i].name, rows[i].def, NULL);
        (void)rc; /* defaults are in range by construction (unit-tested) */
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int cfg_parse(struct wisp_cfg *cfg, const char *text, size_t len, const char *origin,
              struct wisp_err *err)
{
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        char line[PATH_MAX + 128];
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        lineno++;
        size_t n = end - pos;
        if (n >= sizeof line)
            return wisp_err_set(err, -EINVAL, "%s:%d: line too long", origin, lineno);
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos = end + 1;
        if (memchr(line, '\0', n))
            return wisp_err_set(err, -EINVAL, "%s:%d: NUL byte in line", origin, lineno);
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        char *sep = s + strcspn(s, "= \t");
        char *val = sep;
        if (*sep) { /* "key = value", "key=value" or "key value" */
            *sep = '\0';
            val = trim(sep + 1);
            if (*val == '=')
                val = trim(val + 1);
        }
        struct wisp_err e = {0};
        if (cfg_set(cfg, s, val, &e) < 0)
            return wisp_err_set(err, e.code, "%s:%d: %s", origin, lineno, e.msg);
    }
    return 0;
}

static int load_file(struct wisp_cfg *cfg, const char *path, struct wisp_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = plat_read_file(path, 1 << 20, &text, &len);
    if (rc < 0)
        return wisp_err_set(err, rc, "cannot read %s: %s", path, strerror(-rc));
    rc = cfg_parse(cfg, text, len, path, err);
    free(text);
    return rc;
}

/* Settings that bound each other: a lower bound above its upper bound, or
 * a default outside its range, is refused here instead of at the first
 * action that meets it. */
static int check_ranges(const struct wisp_cfg *cfg, struct wisp_err *err)
{
    const struct {
        const char *lo_name, *hi_name;
        uint64_t lo, hi;
    } pairs[] = {
        {"store-map-mb", "store-map-max-mb", cfg->store_map_mb, cfg->store_map_max_mb},
        {"action-memory-min-mb", "action-memory-max-mb", cfg->action_memory_min_mb,
         cfg->action_memory_max_mb},
        {"action-memory-min-mb", "action-memory-default-mb", cfg->action_memory_min_mb,
         cfg->action_memory_default_mb},
        {"action-memory-default-mb", "action-memory-max-mb", cfg->action_memory_default_mb,
         cfg->action_memory_max_mb},
        {"action-timeout-default-ms", "action-timeout-max-ms", cfg->action_timeout_default_ms,
         cfg->action_timeout_max_ms},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(pairs); i++)
        if (pairs[i].hi < pairs[i].lo)
            return wisp_err_set(err, -ERANGE, "%s (%llu) is below %s (%llu)", pairs[i].hi_name,
                                (unsigned long long)pairs[i].hi, pairs[i].lo_name,
                                (unsigned long long)pairs[i].lo);
    return 0;
}

/* Memory decides first (a 512 MB board fits one profile whatever it is);
 * then a device tree says an ARM board, sized by memory; a PC with 4 GB or
 * more is a small x86 gateway. MemTotal is what the kernel did not keep,
 * so each bound sits below the size it stands for. */
const char *cfg_board_pick(const char *model, uint64_t mem_mb)
{
    const char *pick;
    if (mem_mb && mem_mb <= 640)
        pick = "arm-512";
    else if (model && model[0])
        pick = mem_mb && mem_mb <= 1536 ? "pi3" : "pi4";
    else
        pick = mem_mb >= 3584 ? "x86-small" : "generic";
    return pick;
}

/* board = auto: the profile for this machine, and why into cfg. */
static const char *board_auto(struct wisp_cfg *cfg)
{
    struct plat_machine m;
    plat_machine_read(&m);
    const char *pick = cfg_board_pick(m.model, m.mem_bytes >> 20);
    snprintf(cfg->board_auto, sizeof cfg->board_auto, "board auto: %s (%s%s%s, %llu MB%s)", pick,
             m.model[0] ? "model '" : "no device tree", m.model, m.model[0] ? "'" : "",
             (unsigned long long)(m.mem_bytes >> 20), m.mem_limited ? ", its cgroup's limit" : "");
    return pick;
}

int cfg_load(struct wisp_cfg *cfg, int argc, char **argv, struct wisp_err *err)
{
    /* Flags are applied last but read first: they name the config file and
     * the board, and the board must go under the file. */
    struct wisp_cfg flags;
    char *keys[64], *vals[64];
    int nflags = 0, special = 0;
    cfg_defaults(cfg);
    cfg_defaults(&flags);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        if (strcmp(a, "--print-config") == 0) {
            special = 2;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return wisp_err_set(err, -EINVAL, "unexpected argument '%s'", a);
        if (nflags == (int)WISP_ARRAY_LEN(keys))
            return wisp_err_set(err, -E2BIG, "too many flags");
        char *k = argv[i] + 2, *v;
        char *eq = strchr(k, '=');
        if (eq) {
            *eq = '\0';
            v = eq + 1;
        } else {
            if (i + 1 >= argc)
                return wisp_err_set(err, -EINVAL, "--%s needs a value", k);
            v = argv[++i];
        }
        struct wisp_err e = {0};
        if (cfg_set(&flags, k, v, &e) < 0)
            return wisp_err_set(err, e.code, "--%s", e.msg);
        keys[nflags] = k;
        vals[nflags++] = v;
    }
    int rc;
    struct wisp_cfg file;
    cfg_defaults(&file);
    if (flags.config[0] && (rc = load_file(&file, flags.config, err)) < 0)
        return rc;
    const char *board = file.board, *board_dir = file.board_dir;
    for (int i = 0; i < nflags; i++) {
        if (strcmp(keys[i], "board") == 0)
            board = vals[i];
        else if (strcmp(keys[i], "board-dir") == 0)
            board_dir = vals[i];
    }
    if (strchr(board, '/') || board[0] == '.' || !board[0])
        return wisp_err_set(err, -EINVAL, "board: '%s' is not a profile name", board);
    cfg_defaults(cfg);
    if (strcmp(board, "auto") == 0)
        board = board_auto(cfg);
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s.conf", board_dir, board) >= (int)sizeof path)
        return wisp_err_set(err, -ENAMETOOLONG, "board: path too long");
    rc = load_file(cfg, path, err);
    if (rc == -ENOENT)
        return wisp_err_set(err, rc, "board: no profile '%s' in %s", board, board_dir);
    if (rc < 0)
        return rc;
    if (flags.config[0] && (rc = load_file(cfg, flags.config, err)) < 0)
        return rc;
    for (int i = 0; i < nflags; i++)
        if ((rc = cfg_set(cfg, keys[i], vals[i], err)) < 0)
            return rc;
    if ((rc = cfg_set(cfg, "board", board, err)) < 0)
        return rc;
    if ((rc = check_ranges(cfg, err)) < 0)
        return rc;
    enum wlog_level lvl;
    if (wlog_parse_level(cfg->log_level, &lvl) < 0)
        return wisp_err_set(err, -EINVAL, "log-level: '%s' is not one of err, warn, info, debug",
                            cfg->log_level);
    char host[256];
    unsigned port;
    if (cfg_split_hostport(cfg->listen, host, sizeof host, &port) < 0)
        return wisp_err_set(err, -EINVAL, "listen: '%s' is not HOST:PORT with a port 0..65535",
                            cfg->listen);
    if (strcmp(cfg->cgroups, "auto") != 0 && strcmp(cfg->cgroups, "off") != 0)
        return wisp_err_set(err, -EINVAL, "cgroups: '%s' is not auto or off", cfg->cgroups);
    if (strcmp(cfg->worker_cpu_share, "memory") != 0 && strcmp(cfg->worker_cpu_share, "equal") != 0)
        return wisp_err_set(err, -EINVAL, "worker-cpu-share: '%s' is not memory or equal",
                            cfg->worker_cpu_share);
    if (!cfg->tls_cert[0] != !cfg->tls_key[0])
        return wisp_err_set(err, -EINVAL, "tls-cert and tls-key go together");
    return special;
}

int cfg_split_hostport(const char *s, char *host, size_t hostlen, unsigned *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -EINVAL;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -EINVAL;
    const char *p = colon + 1;
    if (!*p || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p))
        return -EINVAL;
    unsigned long v = strtoul(p, NULL, 10);
    if (v > 65535)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (unsigned)v;
    return 0;
}

void cfg_print(const struct wisp_cfg *cfg, void *file)
{
    FILE *f = file;
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        const char *field = (const char *)cfg + rows[i].off;
        if (rows[i].type == CFG_STR) {
            bool secret = strcmp(rows[i].name, "tls-key") == 0 && field[0];
            fprintf(f, "%s = %s\n", rows[i].name, secret ? "(set)" : field);
        } else {
            uint64_t v;
            memcpy(&v, field, sizeof v);
            fprintf(f, "%s = %llu\n", rows[i].name, (unsigned long long)v);
        }
    }
}

void cfg_usage(void *file)
{
    FILE *f = file;
    fprintf(f, "usage: wispd [--KEY VALUE]... [--print-config] [--help]\n"
               "Every KEY is also a config-file key (KEY = VALUE).\n\n");
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++)
        fprintf(f, "  --%-22s %s (default: %s)\n", rows[i].name, rows[i].help,
                rows[i].def[0] ? rows[i].def : "none");
    fprintf(f, "\nEnvironment: WISP_GUEST_KEY=uuid:key sets the guest key of a new data dir.\n");
}

int cfg_fuzz_one(const uint8_t *data, size_t len)
{
    struct wisp_cfg cfg;
    cfg_defaults(&cfg);
    return cfg_parse(&cfg, (const char *)data, len, "fuzz", NULL);
}
