/* core/metrics.c - see metrics.h. The samples are a table built from the
 * stats structs, so a new counter is one line and its TYPE comes with it. */
#include "metrics.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "act.h"
#include "feeds.h"
#include "http.h"
#include "plat.h"
#include "pool.h"
#include "store.h"

struct sample {
    const char *name;  /* the family; samples of one family are adjacent */
    const char *type;  /* "counter" or "gauge" */
    const char *label; /* `state="idle"`, or NULL */
    uint64_t v;
};

#define MAX_SAMPLES 96

/* Appends one sample (and the family's TYPE line before its first). */
static size_t put(char *buf, size_t cap, size_t n, const struct sample *s, const char *prev)
{
    char line[256];
    int l = 0;
    if (!prev || strcmp(prev, s->name) != 0)
        l = snprintf(line, sizeof line, "# TYPE %s %s\n", s->name, s->type);
    l += snprintf(line + l, sizeof line - (size_t)l, "%s%s%s%s %llu\n", s->name,
                  s->label ? "{" : "", s->label ? s->label : "", s->label ? "}" : "",
                  (unsigned long long)s->v);
    if (l <= 0 || (size_t)l >= sizeof line || n + (size_t)l >= cap)
        return n;
    memcpy(buf + n, line, (size_t)l + 1);
    return n + (size_t)l;
}

static size_t pool_samples(const struct pool *p, struct sample *s, char labels[][48])
{
    struct pool_stats ps;
    pool_get_stats(p, &ps);
    size_t n = 0;
    const struct sample fixed[] = {
        {"wisp_pool_workers", "gauge", "state=\"all\"", ps.workers},
        {"wisp_pool_workers", "gauge", "state=\"idle\"", ps.idle},
        {"wisp_pool_workers", "gauge", "state=\"stem\"", ps.stem_cells},
        {"wisp_pool_queued", "gauge", NULL, ps.queued},
        {"wisp_pool_reserved_bytes", "gauge", NULL, ps.reserved_mb << 20},
        {"wisp_pool_budget_bytes", "gauge", NULL, ps.budget_mb << 20},
        {"wisp_pool_starts_total", "counter", "how=\"cold\"", ps.cold_starts},
        {"wisp_pool_starts_total", "counter", "how=\"stem\"", ps.stem_inits},
        {"wisp_pool_warm_runs_total", "counter", NULL, ps.warm_runs},
        {"wisp_pool_evictions_total", "counter", NULL, ps.evictions},
        {"wisp_pool_kills_total", "counter", NULL, ps.kills},
        {"wisp_pool_pauses_total", "counter", NULL, ps.pauses},
        {"wisp_pool_resumes_total", "counter", NULL, ps.resumes},
    };
    memcpy(s, fixed, sizeof fixed);
    n = WISP_ARRAY_LEN(fixed);
    /* per backend: its live workers, then what their cgroups hold */
    for (unsigned i = 0; i < ps.nbackends; i++) {
        snprintf(labels[i], sizeof labels[i], "backend=\"%s\"", ps.backends[i].name);
        s[n++] = (struct sample){"wisp_pool_backend_workers", "gauge", labels[i],
                                 ps.backends[i].workers};
    }
    for (unsigned i = 0; i < ps.nbackends; i++)
        s[n++] = (struct sample){"wisp_pool_worker_memory_bytes", "gauge", labels[i],
                                 ps.backends[i].mem_bytes};
    return n;
}

size_t metrics_text(const struct metrics_src *src, char *buf, size_t cap)
{
    struct http_stats hs;
    struct store_stats ss;
    struct act_stats as;
    struct feeds_stats fs = {0};
    uint64_t rss, rss_peak;
    http_server_stats(src->http, &hs);
    store_get_stats(src->st, &ss);
    act_get_stats(src->act, &as);
    if (src->feeds)
        feeds_get_stats(src->feeds, &fs);
    plat_self_rss(&rss, &rss_peak);
    struct sample s[MAX_SAMPLES];
    char labels[4][48];
    _Static_assert(WISP_ARRAY_LEN(labels) >= WISP_ARRAY_LEN(((struct pool_stats *)0)->backends),
                   "a label per backend");
    size_t ns = pool_samples(src->pool, s, labels);
    const struct sample rest[] = {
        {"wisp_activations_stored_total", "counter", NULL, as.committed},
        {"wisp_activations_dropped_total", "counter", NULL, as.dropped},
        {"wisp_activations_pruned_total", "counter", NULL, as.pruned},
        {"wisp_activation_commits_total", "counter", NULL, as.commits},
        {"wisp_feed_events_total", "counter", NULL, fs.events_in},
        {"wisp_feed_fires_total", "counter", NULL, fs.fires},
        {"wisp_feed_drops_total", "counter", NULL, fs.drops},
        {"wisp_feed_pending", "gauge", NULL, fs.pending},
        {"wisp_feed_bindings", "gauge", NULL, fs.bindings},
        {"wisp_feed_triggers_deleted_total", "counter", NULL, fs.deleted_after_fire},
        {"wisp_mqtt_connected", "gauge", NULL, fs.mqtt_connected ? 1 : 0},
        {"wisp_mqtt_outbox", "gauge", NULL, fs.outbox},
        {"wisp_mqtt_published_total", "counter", NULL, fs.published},
        {"wisp_mqtt_outbox_dropped_total", "counter", NULL, fs.outbox_dropped},
        {"wisp_http_requests_total", "counter", "class=\"2xx\"", hs.by_class[2]},
        {"wisp_http_requests_total", "counter", "class=\"3xx\"", hs.by_class[3]},
        {"wisp_http_requests_total", "counter", "class=\"4xx\"", hs.by_class[4]},
        {"wisp_http_requests_total", "counter", "class=\"5xx\"", hs.by_class[5]},
        {"wisp_http_connections_accepted_total", "counter", NULL, hs.accepted},
        {"wisp_http_connections_refused_total", "counter", NULL, hs.refused},
        {"wisp_http_connections_open", "gauge", NULL, hs.open},
        {"wisp_http_accept_errors_total", "counter", NULL, hs.accept_errors},
        /* one line per enum http_refusal (the assert below counts them) */
        {"wisp_http_refusals_total", "counter", "reason=\"bad_request\"",
         hs.refusals[HTTP_REFUSE_BAD_REQUEST]},
        {"wisp_http_refusals_total", "counter", "reason=\"head_too_large\"",
         hs.refusals[HTTP_REFUSE_HEAD_TOO_LARGE]},
        {"wisp_http_refusals_total", "counter", "reason=\"body_too_large\"",
         hs.refusals[HTTP_REFUSE_BODY_TOO_LARGE]},
        {"wisp_http_refusals_total", "counter", "reason=\"unsupported\"",
         hs.refusals[HTTP_REFUSE_UNSUPPORTED]},
        {"wisp_http_refusals_total", "counter", "reason=\"no_memory\"",
         hs.refusals[HTTP_REFUSE_NO_MEMORY]},
        {"wisp_http_refusals_total", "counter", "reason=\"head_timeout\"",
         hs.refusals[HTTP_REFUSE_HEAD_TIMEOUT]},
        {"wisp_http_refusals_total", "counter", "reason=\"body_timeout\"",
         hs.refusals[HTTP_REFUSE_BODY_TIMEOUT]},
        {"wisp_http_refusals_total", "counter", "reason=\"write_timeout\"",
         hs.refusals[HTTP_REFUSE_WRITE_TIMEOUT]},
        {"wisp_http_refusals_total", "counter", "reason=\"output_full\"",
         hs.refusals[HTTP_REFUSE_OUTPUT_FULL]},
        {"wisp_http_output_held_bytes", "gauge", NULL, hs.held_bytes},
        {"wisp_auth_failures_total", "counter", NULL, src->auth_failed},
        {"wisp_auth_throttled_total", "counter", NULL, src->auth_throttled},
        {"wisp_store_map_bytes", "gauge", NULL, ss.map_bytes},
        {"wisp_store_used_bytes", "gauge", NULL, ss.used_bytes},
        {"wisp_store_map_grows_total", "counter", NULL, ss.grows},
        {"wisp_store_syncs_total", "counter", NULL, ss.syncs},
        {"wisp_entity_cache_hits_total", "counter", NULL, ss.cache_hits},
        {"wisp_entity_cache_misses_total", "counter", NULL, ss.cache_misses},
        {"process_resident_memory_bytes", "gauge", NULL, rss},
        {"wisp_resident_memory_peak_bytes", "gauge", NULL, rss_peak},
    };
    _Static_assert(WISP_ARRAY_LEN(rest) + 13 + 2 * 4 <= MAX_SAMPLES, "room for every sample");
    _Static_assert(HTTP_REFUSE_N == 9, "a wisp_http_refusals_total sample per reason");
    memcpy(s + ns, rest, sizeof rest);
    ns += WISP_ARRAY_LEN(rest);
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ns; i++)
        n = put(buf, cap, n, &s[i], i ? s[i - 1].name : NULL);
    return n;
}
