/* core/main.c - wispd: reads the config, opens the store, starts the API
 * and runs the loop. Every socket, timer and signal is an event on the one
 * event_base created here.
 *
 * SIGTERM/SIGINT drain: the listener closes at once, requests in flight get
 * their answers (bounded by drain-timeout-s), then the loop ends and wispd
 * exits 0. */
#include <errno.h>
#include <event2/event.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "api.h"
#include "auth.h"
#include "catalog.h"
#include "feeds.h"
#include "invoke.h"
#include "trigger.h"
#include "cfg.h"
#include "log.h"
#include "notify.h"
#include "plat.h"
#include "pool.h"
#include "spawn.h"
#include "store.h"
#include "tls.h"
#include "wisp_config.h"

struct daemon {
    struct event_base *base;
    uint64_t drain_timeout_s;
    struct api *api;
    struct invoke *inv;
    struct feeds *feeds;
    struct event *drain_tick;
    int64_t drain_deadline_us;
    bool draining;
};

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    unsigned pending = api_pending(d->api) + invoke_pending(d->inv) + feeds_pending(d->feeds);
    if (pending == 0 || plat_clock_mono_us() >= d->drain_deadline_us) {
        if (pending)
            wlog_warn("wispd", "drain timeout: %u requests, activations or events still pending",
                      pending);
        event_base_loopexit(d->base, NULL);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon *d = arg;
    if (d->draining) {
        wlog_warn("wispd", "second signal %d: exiting now", (int)sig);
        event_base_loopexit(d->base, NULL);
        return;
    }
    d->draining = true;
    d->drain_deadline_us = plat_clock_mono_us() + (int64_t)d->drain_timeout_s * 1000000;
    wlog_info("wispd", "signal %d: draining (up to %llu s)", (int)sig,
              (unsigned long long)d->drain_timeout_s);
    api_stop_listening(d->api);
    feeds_drain(d->feeds);
    struct timeval tick = {0, 20000};
    d->drain_tick = event_new(d->base, -1, EV_PERSIST, on_drain_tick, d);
    if (!d->drain_tick || event_add(d->drain_tick, &tick) < 0)
        event_base_loopexit(d->base, NULL);
}

/* The MQTT client id: the configured one, else wisp-HOST-HASH, HASH from
 * the data dir's absolute path, so the id (and the broker session that
 * belongs to it) stays across restarts, and two wispd on one host, which
 * need two data dirs, do not take the session from each other. */
static void default_client_id(const struct wisp_cfg *cfg, char *out, size_t cap)
{
    if (cfg->mqtt_client_id[0]) {
        snprintf(out, cap, "%s", cfg->mqtt_client_id);
        return;
    }
    char hn[64] = "gateway";
    gethostname(hn, sizeof hn - 1);
    char *abs = realpath(cfg->data, NULL);
    const char *dir = abs ? abs : cfg->data;
    uint64_t h = plat_fnv1a64(dir, strlen(dir));
    free(abs);
    snprintf(out, cap, "wisp-%s-%08x", hn, (unsigned)(h ^ (h >> 32)));
}

int main(int argc, char **argv)
{
    static struct wisp_cfg cfg;
    struct wisp_err err = {0};
    struct daemon d = {0};
    struct store *st = NULL;
    int data_lock = -1; /* DATA/wispd.lock, held while wispd runs */
    struct rt_kinds *kinds = NULL;
    struct tls_server *tls = NULL;
    struct pool *pool = NULL;
    struct act *act = NULL;
    struct trigger *trig = NULL;
    struct feeds *feeds = NULL;
    static char tmp_work[64];
    struct event *sigs[2] = {0};
    int status = 1;

    /* No fastbins: every request allocates a few chunks over 1 KB (request
     * head, buffer chains), and each such malloc first consolidated the
     * fastbins (a few % of a warm invoke). Small chunks still come from
     * the per-thread cache. */
    mallopt(M_MXFAST, 0);

    /* anywhere: the relocatable tree's wrapper puts its paths first */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("wispd %s\n", WISP_VERSION);
            return 0;
        }
    }
    int rc = cfg_load(&cfg, argc, argv, &err);
    if (rc == 1) {
        cfg_usage(stdout);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "wispd: %s\n", err.msg);
        return 2;
    }
    if (rc == 2) {
        if (cfg.board_auto[0])
            printf("# %s\n", cfg.board_auto);
        cfg_print(&cfg, stdout);
        return 0;
    }
    enum wlog_level lvl;
    if (wlog_parse_level(cfg.log_level, &lvl) == 0)
        wlog_threshold = lvl;
    if (cfg.board_auto[0])
        wlog_info("wispd", "%s", cfg.board_auto);
    signal(SIGPIPE, SIG_IGN);
    /* every API connection, worker pipe and store file is a descriptor:
     * the soft limit (often 1024) would refuse connections far below
     * http-max-conns */
    long nofile = plat_raise_nofile();
    if (nofile > 0 && (uint64_t)nofile < cfg.http_max_conns + 256)
        wlog_warn("wispd", "open files limited to %ld: fewer than http-max-conns (%llu) plus "
                  "room for workers; raise the limit (LimitNOFILE=) or lower http-max-conns",
                  nofile, (unsigned long long)cfg.http_max_conns);

    d.base = event_base_new();
    if (!d.base) {
        fprintf(stderr, "wispd: cannot create the event loop\n");
        return 1;
    }
    if (rt_kinds_load(cfg.kinds, &kinds, &err) < 0) {
        fprintf(stderr, "wispd: %s\n", err.msg);
        goto out;
    }
    /* One wispd per data dir: a second would run the same feeds and
     * workers, and `wisp admin restore` must know none runs. */
    char lock_path[sizeof cfg.data + 16];
    long holder;
    snprintf(lock_path, sizeof lock_path, "%s/wispd.lock", cfg.data);
    if ((rc = plat_mkdir_p(cfg.data, 0700)) < 0 ||
        (rc = plat_lock_pidfile(lock_path, &data_lock, &holder)) < 0) {
        if (rc == -EWOULDBLOCK)
            fprintf(stderr, "wispd: data dir %s is in use by another wispd (pid %ld)\n", cfg.data,
                    holder);
        else
            fprintf(stderr, "wispd: cannot lock data dir %s: %s\n", cfg.data, strerror(-rc));
        goto out;
    }
    struct store_cfg sc = {
        .dir = cfg.data,
        .map_bytes = cfg.store_map_mb << 20,
        .map_max_bytes = cfg.store_map_max_mb << 20,
        .trim_ms = (unsigned)cfg.store_trim_ms,
        .cache_entries = (unsigned)cfg.entity_cache,
        .async_sync = true,
    };
    if (store_open(&sc, d.base, &st, &err) < 0) {
        fprintf(stderr, "wispd: %s\n", err.msg);
        goto out;
    }
    bool created;
    if (auth_bootstrap_guest(st, cfg.data, getenv("WISP_GUEST_KEY"), &created, &err) < 0) {
        fprintf(stderr, "wispd: guest namespace: %s\n", err.msg);
        goto out;
    }
    if (created)
        wlog_info("wispd", "new data dir %s: namespace guest created%s", cfg.data,
                  getenv("WISP_GUEST_KEY") ? " with WISP_GUEST_KEY" : ", key in guest.key");
    if (cfg.tls_cert[0] && tls_server_new(cfg.tls_cert, cfg.tls_key, &tls, &err) < 0) {
        fprintf(stderr, "wispd: %s\n", err.msg);
        goto out;
    }
    /* Workers run unprivileged when wispd runs as root. */
    struct pool_cfg pc = {
        .kinds = kinds,
        .runtimes_dir = cfg.runtimes_dir,
        .libexec_dir = cfg.libexec_dir,
        .interpreters = cfg.interpreters,
        .prewarm = cfg.prewarm,
        .memory_budget_mb = cfg.pool_memory_mb,
        .stem_memory_mb = (unsigned)cfg.stem_memory_mb,
        .idle_evict_s = (unsigned)cfg.idle_evict_s,
        .stem_reclaim_s = (unsigned)cfg.stem_reclaim_s,
        .queue_max = (unsigned)cfg.pool_queue_max,
        .pids_max = (unsigned)cfg.worker_pids_max,
        .use_cgroups = strcmp(cfg.cgroups, "auto") == 0,
        .cpu_by_memory = strcmp(cfg.worker_cpu_share, "memory") == 0,
        .data_dir = cfg.data,
        .oci_runtime = cfg.oci_runtime,
        .pause_ms = (unsigned)cfg.container_pause_ms,
    };
    char work_dir[sizeof cfg.data + 8];
    snprintf(work_dir, sizeof work_dir, "%s/work", cfg.data);
    pc.work_dir = work_dir;
    if (geteuid() == 0 && cfg.worker_user[0]) {
        rc = plat_user_find(cfg.worker_user, &pc.uid, &pc.gid);
        if (rc < 0) {
            fprintf(stderr, "wispd: worker-user: %s '%s'\n",
                    rc == -ENOENT ? "no user" : strerror(-rc), cfg.worker_user);
            goto out;
        }
        pc.drop_privs = true;
        /* the workers' directories are under the data dir: let them pass */
        if (chmod(cfg.data, 0711) < 0)
            wlog_warn("wispd", "cannot chmod %s: %s", cfg.data, strerror(errno));
        /* Interpreters open scripts by absolute path, so every parent must
         * be passable for the worker user; where the data dir's are not
         * (under /root, a 0700 temp dir), the work dir goes under /tmp. */
        if (!plat_path_reachable(cfg.data, pc.uid, pc.gid)) {
            snprintf(tmp_work, sizeof tmp_work, "/tmp/wisp-work-XXXXXX");
            if (!mkdtemp(tmp_work) || chmod(tmp_work, 0711) < 0) {
                fprintf(stderr, "wispd: cannot make a work dir under /tmp: %s\n", strerror(errno));
                tmp_work[0] = '\0';
                goto out;
            }
            pc.work_dir = tmp_work;
            wlog_info("wispd", "%s is not reachable for user %s: workers run in %s", cfg.data,
                      cfg.worker_user, tmp_work);
        }
    }
    if (pool_open(d.base, &pc, &pool, &err) < 0) {
        fprintf(stderr, "wispd: %s\n", err.msg);
        goto out;
    }
    /* /whisk.system/utils: a catalog that cannot be seeded is logged, and
     * every other entity still serves */
    struct catalog_cfg cat = {.runtimes_dir = cfg.runtimes_dir, .kinds = kinds};
    if (catalog_seed(st, &cat, NULL, &err) < 0)
        wlog_err("wispd", "%s", err.msg);
    struct act_cfg ac = {.max_age_s = cfg.activation_max_age_s,
                         .max_count = cfg.activation_max_count,
                         .queue_max = 65536};
    if (act_open(d.base, st, &ac, &act, &err) < 0) {
        fprintf(stderr, "wispd: %s\n", err.msg);
        goto out;
    }
    struct invoke_cfg ic = {
        .per_minute = (unsigned)cfg.invocations_per_minute,
        .concurrent = (unsigned)cfg.concurrent_invocations,
        .max_payload_bytes = (size_t)cfg.max_payload_kb * 1024,
        .max_result_bytes = (size_t)cfg.max_result_kb * 1024,
        .sequence_depth = 8,
    };
    if (invoke_open(d.base, st, pool, act, &ic, &d.inv, &err) < 0) {
        fprintf(stderr, "wispd: %s\n", err.msg);
        goto out;
    }
    struct trigger_cfg tc = {.fires_per_minute = (unsigned)cfg.fires_per_minute};
    if (trigger_open(st, d.inv, act, &tc, &trig, &err) < 0) {
        fprintf(stderr, "wispd: %s\n", err.msg);
        goto out;
    }
    char client_id[160];
    default_client_id(&cfg, client_id, sizeof client_id);
    struct feeds_cfg fc = {.mqtt_url = cfg.mqtt, .client_id = client_id,
                           .tls_ca_file = cfg.tls_ca_file,
                           .outbox_max = (unsigned)cfg.outbox_max};
    if (feeds_open(d.base, st, trig, act, &fc, &feeds, &err) < 0) {
        fprintf(stderr, "wispd: %s\n", err.msg);
        goto out;
    }
    invoke_set_result_sink(d.inv, feeds_on_result, feeds);
    d.feeds = feeds;
    unsigned port;
    struct api_env env = {.base = d.base, .st = st, .kinds = kinds, .cfg = &cfg, .tls = tls,
                          .inv = d.inv, .act = act, .pool = pool, .trig = trig, .feeds = feeds};
    if (api_start(&env, &d.api, &port, &err) < 0) {
        fprintf(stderr, "wispd: %s\n", err.msg);
        goto out;
    }
    int signums[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        sigs[i] = evsignal_new(d.base, signums[i], on_signal, &d);
        if (!sigs[i] || event_add(sigs[i], NULL) < 0) {
            fprintf(stderr, "wispd: cannot watch signals\n");
            goto out;
        }
    }
    char host[256];
    unsigned ignored;
    if (cfg_split_hostport(cfg.listen, host, sizeof host, &ignored) < 0)
        goto out;
    char url[320];
    snprintf(url, sizeof url, "%s://%s%s%s:%u", tls ? "https" : "http",
             strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port);
    if (invoke_set_api_host(d.inv, url) < 0)
        goto out;
    fprintf(stderr, "wispd: ready on %s\n", url);
    fflush(stderr);
    /* systemd Type=notify: the listener is bound, the pools are up */
    if ((rc = plat_notify_ready()) < 0)
        wlog_warn("wispd", "NOTIFY_SOCKET: %s", strerror(-rc));
    d.drain_timeout_s = cfg.drain_timeout_s;
    event_base_dispatch(d.base);
    /* the loop no longer watches signals: one more TERM must not kill the
     * shutdown half-way */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    wlog_info("wispd", "stopped");
    status = 0;
out:
    /* Order matters: the API first (pending waiters are cancelled), then
     * the pool (its running activations finish as failed and queue their
     * records), then the activation queue is committed, then the rest. */
    api_free(d.api);
    invoke_set_result_sink(d.inv, NULL, NULL);
    feeds_close(feeds);
    trigger_close(trig);
    pool_close(pool);
    act_close(act);
    invoke_close(d.inv);
    for (int i = 0; i < 2; i++)
        if (sigs[i])
            event_free(sigs[i]);
    if (d.drain_tick)
        event_free(d.drain_tick);
    store_close(st);
    if (data_lock >= 0)
        close(data_lock);
    if (tmp_work[0])
        plat_rm_rf(tmp_work);
    tls_server_free(tls);
    rt_kinds_free(kinds);
    /* Every module is closed; one last non-blocking turn lets libevent run
     * what it deferred on their behalf (a DNS lookup the poll feed
     * cancelled is freed in its callback), which event_base_free would
     * drop. */
    event_base_loop(d.base, EVLOOP_NONBLOCK);
    event_base_free(d.base);
    return status;
}
