/* tools/cli_activation.c - `wisp activation list|get|logs|result|poll`.
 *
 * poll is the one loop of the CLI: list the activations since a point,
 * print the new ones (oldest first), sleep two seconds (wsk's interval),
 * until SIGINT or SIGTERM ("Poll terminated", exit 1 as wsk) or --exit
 * SECONDS. A record is written when its activation ends, with the time it
 * started, so one that ran long appears "in the past": each round asks
 * for the last POLL_LOOKBACK_MS again and a set of the ids already shown
 * keeps them from printing twice. Sleeping is fine here: this is a
 * command line tool, not the daemon's loop. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_cmd.h"
#include "plat.h"
#include "wjson.h"

#define POLL_INTERVAL_MS 2000
#define POLL_LOOKBACK_MS 60000
#define POLL_LIMIT 200

/* The namespace and entity of `activation list|poll [NAMESPACE or NAME]`. */
static int act_filter(struct cli_ctx *x, char *ns, size_t nscap, char *name, size_t cap)
{
    struct cli_name n;
    snprintf(ns, nscap, "%s", x->conf.ns);
    name[0] = '\0';
    if (!cli_pos(x, 0))
        return 0;
    if (cli_ctx_name(x, cli_pos(x, 0), &n) < 0)
        return -1;
    snprintf(ns, nscap, "%s", n.ns);
    cli_name_entity(&n, name, cap);
    return 0;
}

int cli_activation_list(struct cli_ctx *x)
{
    char ns[256], name[520];
    struct cli_client *cl;
    struct cli_resp r = {0};
    int rc = act_filter(x, ns, sizeof ns, name, sizeof name);
    struct cli_list_opts o = {.limit = (int)cli_num(&x->a, OPT_LIMIT, 30),
                              .skip = (int)cli_num(&x->a, OPT_SKIP, 0),
                              .since = cli_num(&x->a, OPT_SINCE, 0),
                              .upto = cli_num(&x->a, OPT_UPTO, 0),
                              .name = name,
                              .docs = cli_has(&x->a, OPT_FULL)};
    if (rc == 0 && (rc = cli_ctx_client(x, &cl)) == 0 &&
        (rc = cli_entity_list(cl, "activations", ns, NULL, &o, &r, &x->err)) < 0)
        cli_err_prefix(&x->err, "Unable to obtain the list of activations for namespace '%s': ",
                       strcmp(ns, "_") ? ns : "default");
    size_t i;
    json_t *a;
    if (rc == 0 && x->json) {
        cli_print_json(stdout, r.json);
    } else if (rc == 0 && o.docs) {
        printf("%s\n", cli_bold("activations"));
        json_array_foreach(r.json, i, a) cli_print_json(stdout, a);
    } else if (rc == 0) {
        cli_print_activations(r.json);
    }
    cli_resp_fini(&r);
    return rc;
}

/* The activation a command names: its ID, or with --last the newest; *rest
 * is the index of the argument after it. */
static int act_id(struct cli_ctx *x, char *id, size_t cap, int *rest)
{
    bool last = cli_has(&x->a, OPT_LAST);
    *rest = last ? 0 : 1;
    if (!last && !cli_pos(x, 0))
        return cli_usage_fail(x, "Invalid argument(s). An activation ID is required.");
    if (x->a.npos > x->verb->max - last)
        return cli_usage_fail(x, "Invalid argument(s): %s. An activation ID is required.",
                              x->a.pos[x->a.npos - 1]);
    if (!last) {
        snprintf(id, cap, "%s", cli_pos(x, 0));
        return 0;
    }
    struct cli_client *cl;
    struct cli_resp r = {0};
    struct cli_list_opts o = {.limit = 1};
    int rc = cli_ctx_client(x, &cl);
    if (rc == 0)
        rc = cli_entity_list(cl, "activations", x->conf.ns, NULL, &o, &r, &x->err);
    const char *got = wjson_str(json_array_get(r.json, 0), "activationId");
    if (rc == 0 && !got)
        rc = cli_fail(&x->err, CLI_EXIT_GENERAL,
                      "Activation list does not contain any "
                      "activations.");
    if (rc == 0)
        snprintf(id, cap, "%s", got);
    cli_resp_fini(&r);
    return rc;
}

/* One activation (part NULL), or its "logs" or "result". */
static int fetch(struct cli_ctx *x, const char *id, const char *part, const char *what,
                 struct cli_resp *r)
{
    struct cli_client *cl;
    *r = (struct cli_resp){0};
    int rc = cli_ctx_client(x, &cl);
    if (rc == 0 && (rc = cli_activation_fetch(cl, x->conf.ns, id, part, r, &x->err)) < 0)
        cli_err_prefix(&x->err, "Unable to get %s '%s': ", what, id);
    return rc;
}

/* wsk's stripTimestamp: "2024-05-01T10:00:00.123Z stdout: text" -> "text". */
static const char *strip_stamp(const char *line)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.";
    for (size_t i = 0; i < sizeof shape - 1; i++)
        if (shape[i] == 'd' ? (line[i] < '0' || line[i] > '9') : line[i] != shape[i])
            return line;
    const char *p = line + sizeof shape - 1;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p++ != 'Z')
        return line;
    const char *q = p;
    while (*q == ' ')
        q++;
    if (strncmp(q, "stdout:", 7) == 0 || strncmp(q, "stderr:", 7) == 0)
        p = q + 7;
    return (*p == ' ' || *p == '\t') && p[1] ? p + 1 : line;
}

static void print_logs(const json_t *logs, bool strip)
{
    size_t i;
    json_t *l;
    json_array_foreach(logs, i, l) if (json_is_string(l))
        printf("%s\n", strip ? strip_stamp(json_string_value(l)) : json_string_value(l));
}

int cli_activation_get(struct cli_ctx *x)
{
    char id[128], when[64];
    int rest;
    struct cli_resp r = {0};
    int rc = act_id(x, id, sizeof id, &rest);
    if (rc == 0)
        rc = fetch(x, id, NULL, "activation", &r);
    const json_t *a = r.json, *resp = json_object_get(a, "response");
    if (rc == 0 && cli_has(&x->a, OPT_SUMMARY) && !x->json) {
        time_t end = (time_t)(json_integer_value(json_object_get(a, "end")) / 1000);
        struct tm tm = {0};
        localtime_r(&end, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %z %Z", &tm);
        printf("activation result for '/%s/%s' (%s at %s)\n", wjson_str(a, "namespace") ?: "",
               wjson_str(a, "name") ?: "", wjson_str(resp, "status") ?: "", when);
        cli_print_json(stdout, json_object_get(resp, "result"));
    } else if (rc == 0 && cli_has(&x->a, OPT_LOGS) && !x->json) {
        print_logs(json_object_get(a, "logs"), true);
    } else if (rc == 0) {
        rc = cli_ctx_show(x, "activation", id, a, cli_pos(x, rest));
    }
    cli_resp_fini(&r);
    return rc;
}

int cli_activation_logs(struct cli_ctx *x)
{
    char id[128];
    int rest;
    struct cli_resp r = {0};
    int rc = act_id(x, id, sizeof id, &rest);
    if (rc == 0 && (rc = fetch(x, id, "logs", "logs for activation", &r)) == 0) {
        if (x->json)
            cli_print_json(stdout, r.json);
        else
            print_logs(json_object_get(r.json, "logs"), cli_has(&x->a, OPT_STRIP));
    }
    cli_resp_fini(&r);
    return rc;
}

int cli_activation_result(struct cli_ctx *x)
{
    char id[128];
    int rest;
    struct cli_resp r = {0};
    int rc = act_id(x, id, sizeof id, &rest);
    if (rc == 0 && (rc = fetch(x, id, "result", "result for activation", &r)) == 0) {
        const json_t *res = json_object_get(r.json, "result");
        cli_print_json(stdout, res && !x->json ? res : r.json);
    }
    cli_resp_fini(&r);
    return rc;
}

/* ==== poll =============================================================== */

static volatile sig_atomic_t poll_stop;

static void on_stop(int sig)
{
    (void)sig;
    poll_stop = 1;
}

/* The ids already shown, with their start times, so old ones can go. */
struct seen {
    struct seen_id {
        char id[40];
        long long start;
    } * v;
    size_t n, cap;
};

static bool seen_has(const struct seen *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].id, id) == 0)
            return true;
    return false;
}

static void seen_add(struct seen *s, const char *id, long long start, long long keep_since)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) /* forget what the window no longer reaches */
        if (s->v[i].start >= keep_since)
            s->v[k++] = s->v[i];
    s->n = k;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct seen_id *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return; /* out of memory: it may print twice, nothing worse */
        s->v = v;
        s->cap = cap;
    }
    snprintf(s->v[s->n].id, sizeof s->v[s->n].id, "%s", id);
    s->v[s->n++].start = start;
}

/* Where polling starts: --since-* ago, else just after the newest one. */
static long long poll_start(struct cli_ctx *x, struct cli_client *cl, const char *ns)
{
    long long ago =
        cli_num(&x->a, OPT_SINCE_SECONDS, 0) + 60 * cli_num(&x->a, OPT_SINCE_MINUTES, 0) +
        3600 * (cli_num(&x->a, OPT_SINCE_HOURS, 0) + 24 * cli_num(&x->a, OPT_SINCE_DAYS, 0));
    long long now = plat_clock_real_ms();
    if (ago > 0)
        return now - ago * 1000;
    struct cli_resp r = {0};
    struct cli_err ignored = {0};
    struct cli_list_opts o = {.limit = 1};
    long long since = now;
    if (cli_entity_list(cl, "activations", ns, NULL, &o, &r, &ignored) == 0)
        since = json_array_size(r.json)
                    ? json_integer_value(json_object_get(json_array_get(r.json, 0), "start")) + 1
                    : 0;
    cli_resp_fini(&r);
    return since;
}

/* Prints the activations of one answer not shown yet, oldest first;
 * returns the newest start seen. */
static long long poll_print(struct cli_ctx *x, const json_t *list, struct seen *s, long long newest,
                            long long keep_since)
{
    for (size_t i = json_array_size(list); i-- > 0;) {
        const json_t *a = json_array_get(list, i);
        const char *id = wjson_str(a, "activationId");
        long long start = json_integer_value(json_object_get(a, "start"));
        if (!id || seen_has(s, id))
            continue;
        seen_add(s, id, start, keep_since);
        newest = start > newest ? start : newest;
        if (x->json) {
            cli_print_json_line(stdout, a);
        } else {
            printf("\nActivation: '%s' (%s)\n", wjson_str(a, "name") ?: "", id);
            cli_print_json(stdout, json_object_get(a, "logs"));
        }
    }
    fflush(stdout);
    return newest;
}

static void poll_sleep(void)
{
    long long until = plat_clock_mono_us() + POLL_INTERVAL_MS * 1000ll;
    for (long long now; !poll_stop && (now = plat_clock_mono_us()) < until;) {
        struct timespec ts = {(until - now) / 1000000, (until - now) % 1000000 * 1000};
        nanosleep(&ts, NULL); /* EINTR on the signal: the loop looks at poll_stop */
    }
}

int cli_activation_poll(struct cli_ctx *x)
{
    char ns[256], name[520];
    struct cli_client *cl;
    struct seen s = {0};
    if (act_filter(x, ns, sizeof ns, name, sizeof name) < 0 || cli_ctx_client(x, &cl) < 0)
        return -1;
    struct sigaction sa = {.sa_handler = on_stop}; /* no SA_RESTART: the sleep wakes up */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (!x->json)
        printf("Enter Ctrl-c to exit.\n");
    long long floor = poll_start(x, cl, ns), newest = floor, exit_s = cli_num(&x->a, OPT_EXIT, 0);
    long long t0 = plat_clock_mono_us();
    if (!x->json)
        printf("Polling for activation logs\n");
    fflush(stdout);
    int rc = 0;
    for (bool first = true; !poll_stop; first = false) {
        if (exit_s > 0 && (plat_clock_mono_us() - t0) / 1000000 >= exit_s)
            break;
        long long since = newest - POLL_LOOKBACK_MS > floor ? newest - POLL_LOOKBACK_MS : floor;
        struct cli_list_opts o = {.limit = POLL_LIMIT, .since = since, .name = name, .docs = true};
        struct cli_resp r = {0};
        if (cli_entity_list(cl, "activations", ns, NULL, &o, &r, &x->err) == 0)
            newest = poll_print(x, r.json, &s, newest, since);
        else if (first) /* a key or host that does not work: say so, once, and stop */
            rc = -1;
        cli_resp_fini(&r);
        if (rc < 0)
            break;
        poll_sleep();
    }
    free(s.v);
    if (rc == 0 && poll_stop) {
        printf("Poll terminated\n");
        rc = CLI_EXIT_GENERAL;
    }
    return rc;
}
