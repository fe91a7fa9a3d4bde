/* tests/unit/test_feed_alarm.c - the alarm feed kind (feeds/alarm.c) on a
 * real event_base with real timers: alarm (cron), interval and once
 * bindings fire through env->fire and save their state, pause drops,
 * startDate/stopDate bound the schedule, a restart catches up once and
 * never double-fires, bad parameters are refused, and unbind/stop leave no
 * timer behind. The only timing assertions are "at least N fires before a
 * deadline"; everything else is counted or ordered. */
#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "cron.h"
#include "feed.h"
#include "plat.h"

#define MAX_RECS 24

/* What the fake core saw for one trigger. */
struct rec {
    char trigger[32];
    int fires, saves;
    int fires_since_save; /* a save must follow each fire */
    int save_order_errors;
    json_t *last_payload, *last_state;
    int64_t first_fire_ms, last_fire_ms;
    char ns[32];
    int deletes;             /* delete_trigger calls */
    bool delete_rules;       /* the last call's rules flag */
    int saves_before_delete; /* saves seen when it was asked */
    int deletes_inside_bind; /* must stay 0 */
};

struct core {
    struct event_base *base;
    void *self;
    struct rec recs[MAX_RECS];
    int nrec;
    int total_fires, total_saves;
    /* behaviour switches */
    const char *refuse;         /* fire returns -ENOENT for this trigger */
    const char *unbind_trigger; /* unbind this binding from inside its fire */
    struct feed_binding *unbind_binding;
    bool stop_on_fire; /* stop the adapter from inside a fire */
    bool in_bind;      /* an ops call is running */
    int total_deletes;
};

static struct rec *rec_for(struct core *c, const char *trigger)
{
    for (int i = 0; i < c->nrec; i++)
        if (strcmp(c->recs[i].trigger, trigger) == 0)
            return &c->recs[i];
    CHECK(c->nrec < MAX_RECS);
    if (c->nrec >= MAX_RECS)
        return &c->recs[MAX_RECS - 1];
    struct rec *r = &c->recs[c->nrec++];
    snprintf(r->trigger, sizeof r->trigger, "%s", trigger);
    return r;
}

static int fake_fire(void *ctx, const char *ns, const char *trigger, const json_t *params)
{
    struct core *c = ctx;
    struct rec *r = rec_for(c, trigger);
    int64_t now = plat_clock_real_ms();
    CHECK(json_is_object(params));
    if (c->refuse && strcmp(c->refuse, trigger) == 0)
        return -ENOENT;
    r->fires++;
    r->fires_since_save++;
    c->total_fires++;
    if (!r->first_fire_ms)
        r->first_fire_ms = now;
    r->last_fire_ms = now;
    snprintf(r->ns, sizeof r->ns, "%s", ns);
    json_decref(r->last_payload);
    r->last_payload = json_deep_copy(params);
    if (c->unbind_trigger && strcmp(c->unbind_trigger, trigger) == 0) {
        feed_alarm_ops.unbind(c->self, c->unbind_binding);
        c->unbind_trigger = NULL;
    }
    if (c->stop_on_fire) {
        c->stop_on_fire = false;
        feed_alarm_ops.stop(c->self);
        c->self = NULL;
    }
    return 0;
}

static void fake_save(void *ctx, const char *ns, const char *trigger, const json_t *state)
{
    struct core *c = ctx;
    (void)ns;
    struct rec *r = rec_for(c, trigger);
    r->saves++;
    c->total_saves++;
    if (r->fires_since_save != 1)
        r->save_order_errors++;
    r->fires_since_save = 0;
    json_decref(r->last_state);
    r->last_state = json_deep_copy(state);
}

static void fake_delete(void *ctx, const char *ns, const char *trigger,
                        const struct feed_binding *b, bool rules)
{
    struct core *c = ctx;
    struct rec *r = rec_for(c, trigger);
    CHECK_STREQ(ns, "guest");
    CHECK(b != NULL);
    r->deletes++;
    r->delete_rules = rules;
    r->saves_before_delete = r->saves;
    r->deletes_inside_bind += c->in_bind;
    c->total_deletes++;
}

static void core_start(struct core *c)
{
    memset(c, 0, sizeof *c);
    c->base = event_base_new();
    CHECK(c->base != NULL);
    struct feed_env env = {.base = c->base,
                           .fire = fake_fire,
                           .save = fake_save,
                           .delete_trigger = fake_delete,
                           .ctx = c,
                           .mqtt_url = NULL,
                           .client_id = "test"};
    struct wisp_err err = {0};
    CHECK_EQ_INT(feed_alarm_ops.start(&env, &c->self, &err), 0);
    CHECK(c->self != NULL);
}

static int pending_events(struct core *c)
{
    return event_base_get_num_events(c->base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE);
}

/* Stops the adapter (unless a test already did), checks that no timer is
 * left and that the loop runs no callback any more, and frees it all. */
static void core_finish(struct core *c)
{
    if (c->self)
        feed_alarm_ops.stop(c->self);
    c->self = NULL;
    CHECK_EQ_INT(pending_events(c), 0);
    int fires = c->total_fires, saves = c->total_saves, deletes = c->total_deletes;
    event_base_loop(c->base, EVLOOP_NONBLOCK);
    CHECK_EQ_INT(c->total_fires, fires);
    CHECK_EQ_INT(c->total_saves, saves);
    CHECK_EQ_INT(c->total_deletes, deletes);
    event_base_free(c->base);
    for (int i = 0; i < c->nrec; i++) {
        json_decref(c->recs[i].last_payload);
        json_decref(c->recs[i].last_state);
    }
}

static struct feed_binding *bind_text(struct core *c, const char *trigger, const char *params,
                                      const char *state)
{
    json_error_t jerr;
    json_t *p = json_loads(params, 0, &jerr);
    json_t *s = state ? json_loads(state, 0, &jerr) : NULL;
    CHECK(p != NULL);
    CHECK(!state || s != NULL);
    struct feed_binding *b = NULL;
    struct wisp_err err = {0};
    c->in_bind = true;
    int rc = feed_alarm_ops.bind(c->self, "guest", trigger, p, s, &b, &err);
    c->in_bind = false;
    if (rc)
        fprintf(stderr, "  bind %s %s: %s\n", trigger, params, err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK(b != NULL);
    json_decref(p);
    json_decref(s);
    return b;
}

/* ---- running the loop -------------------------------------------------- */

struct want {
    const char *trigger;
    int fires;
};

struct runner {
    struct core *c;
    const struct want *wants;
    size_t n;
    int64_t deadline;
    bool met;
};

static bool wants_met(struct core *c, const struct want *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rec_for(c, w[i].trigger)->fires < w[i].fires)
            return false;
    return true;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct runner *r = arg;
    if (r->n && wants_met(r->c, r->wants, r->n)) {
        r->met = true;
        event_base_loopbreak(r->c->base);
    } else if (plat_clock_real_ms() >= r->deadline) {
        event_base_loopbreak(r->c->base);
    }
}

/* Runs the loop until every want is met or ms pass (n == 0: for ms). */
static bool run_until(struct core *c, int64_t ms, const struct want *wants, size_t n)
{
    struct runner r = {c, wants, n, plat_clock_real_ms() + ms, false};
    struct event *ev = event_new(c->base, -1, EV_PERSIST, tick, &r);
    struct timeval tv = {0, 10 * 1000};
    event_add(ev, &tv);
    event_base_dispatch(c->base);
    event_free(ev);
    if (n && !r.met) {
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "  %s: %d fires, wanted %d\n", wants[i].trigger,
                    rec_for(c, wants[i].trigger)->fires, wants[i].fires);
    }
    return r.met;
}

/* ---- helpers for status and state -------------------------------------- */

static json_int_t int_member(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    CHECK(json_is_integer(v));
    return json_integer_value(v);
}

static bool is_null_member(const json_t *o, const char *key)
{
    return json_is_null(json_object_get(o, key));
}

static void iso_ms(int64_t ms, char *buf, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03dZ", base, (int)(ms % 1000));
}

/* ---- tests ------------------------------------------------------------- */

/* All the live schedules share one loop run (about 3-4 s). */
static void alarm_live_schedules(void)
{
    struct core c;
    core_start(&c);
    int64_t now = plat_clock_real_ms();
    char p[256], iso[40];

    bind_text(&c, "cron6", "{\"cron\": \"*/1 * * * * *\", \"trigger_payload\": {\"x\": 1}}", NULL);
    bind_text(&c, "interval", "{\"seconds\": 1}", NULL);
    snprintf(p, sizeof p, "{\"date\": %lld}", (long long)(now + 300));
    struct feed_binding *once = bind_text(&c, "once", p, NULL);
    iso_ms(now + 600, iso, sizeof iso);
    snprintf(p, sizeof p,
             "{\"feed\": \"once\", \"date\": \"%s\", \"deleteAfterFire\": \"rules\", "
             "\"trigger_payload\": \"hello\"}",
             iso);
    struct feed_binding *onceiso = bind_text(&c, "onceiso", p, NULL);
    int64_t start = now + 1500;
    snprintf(p, sizeof p, "{\"seconds\": 1, \"startDate\": %lld}", (long long)start);
    struct feed_binding *late = bind_text(&c, "late", p, NULL);
    int64_t stop = now + 1200;
    snprintf(p, sizeof p, "{\"cron\": \"*/1 * * * * *\", \"stopDate\": %lld}", (long long)stop);
    struct feed_binding *stopping = bind_text(&c, "stopping", p, NULL);
    struct feed_binding *paused = bind_text(&c, "paused", "{\"seconds\": 1}", NULL);
    feed_alarm_ops.set_paused(c.self, paused, true);

    /* nothing fires inside bind() */
    CHECK_EQ_INT(c.total_fires, 0);
    /* the delayed interval's first slot is its startDate */
    json_t *st = feed_alarm_ops.status(c.self, late);
    CHECK_EQ_INT(int_member(st, "nextFire"), start);
    json_decref(st);

    const struct want w[] = {
        {"cron6", 3}, {"interval", 2}, {"once", 1}, {"onceiso", 1}, {"late", 1}};
    CHECK(run_until(&c, 4500, w, WISP_ARRAY_LEN(w)));
    /* keep going until the paused interval had at least one slot to drop */
    json_t *ps = feed_alarm_ops.status(c.self, paused);
    if (int_member(ps, "drops") < 1)
        run_until(&c, 1500, NULL, 0);
    json_decref(ps);

    /* 6-field cron: payload, namespace, a save after each fire */
    struct rec *r = rec_for(&c, "cron6");
    CHECK(r->fires >= 3);
    CHECK_STREQ(r->ns, "guest");
    CHECK_EQ_INT(json_integer_value(json_object_get(r->last_payload, "x")), 1);
    CHECK_EQ_INT(json_object_size(r->last_payload), 1);
    CHECK_EQ_INT(r->saves, r->fires);
    CHECK_EQ_INT(r->save_order_errors, 0);
    CHECK_EQ_INT(int_member(r->last_state, "fires"), r->fires);
    CHECK(int_member(r->last_state, "lastFired") >= now);
    CHECK(int_member(r->last_state, "lastFired") % 1000 == 0); /* the slot, a whole second */

    r = rec_for(&c, "interval");
    CHECK(r->fires >= 2);
    CHECK_EQ_INT(json_object_size(r->last_payload), 0); /* default payload {} */
    CHECK_EQ_INT(r->saves, r->fires);
    CHECK_EQ_INT(r->save_order_errors, 0);
    CHECK(json_is_integer(json_object_get(r->last_state, "anchor")));

    /* once: exactly one fire, then done */
    r = rec_for(&c, "once");
    CHECK_EQ_INT(r->fires, 1);
    CHECK(r->first_fire_ms >= now + 300);
    CHECK_EQ_INT(r->saves, 1);
    CHECK_EQ_INT(int_member(r->last_state, "fires"), 1);
    st = feed_alarm_ops.status(c.self, once);
    CHECK_STREQ(json_string_value(json_object_get(st, "kind")), "once");
    CHECK_STREQ(json_string_value(json_object_get(st, "state")), "done");
    CHECK(is_null_member(st, "nextFire"));
    CHECK_EQ_INT(int_member(st, "lastFired"), now + 300);
    CHECK_EQ_INT(int_member(st, "fires"), 1);
    json_decref(st);
    r = rec_for(&c, "onceiso");
    CHECK_EQ_INT(r->fires, 1);
    CHECK_STREQ(json_string_value(json_object_get(r->last_payload, "payload")), "hello");
    st = feed_alarm_ops.status(c.self, onceiso);
    CHECK_STREQ(json_string_value(json_object_get(st, "deleteAfterFire")), "rules");
    CHECK_STREQ(json_string_value(json_object_get(st, "date")), iso);
    json_decref(st);

    /* startDate: never before it */
    r = rec_for(&c, "late");
    CHECK(r->fires >= 1);
    CHECK(r->first_fire_ms >= start);
    CHECK_EQ_INT(int_member(r->last_state, "lastFired") >= start, 1);

    /* stopDate: at most the slots up to it, then stopped */
    r = rec_for(&c, "stopping");
    CHECK(r->fires >= 1 && r->fires <= 2);
    CHECK(r->last_fire_ms == 0 || int_member(r->last_state, "lastFired") <= stop);
    st = feed_alarm_ops.status(c.self, stopping);
    CHECK_STREQ(json_string_value(json_object_get(st, "state")), "stopped");
    CHECK(is_null_member(st, "nextFire"));
    json_decref(st);

    /* paused: slots dropped, nothing fired; unpaused: fires again */
    r = rec_for(&c, "paused");
    CHECK_EQ_INT(r->fires, 0);
    CHECK_EQ_INT(r->saves, 0);
    st = feed_alarm_ops.status(c.self, paused);
    CHECK(json_is_true(json_object_get(st, "paused")));
    CHECK(int_member(st, "drops") >= 1);
    CHECK(json_is_integer(json_object_get(st, "nextFire")));
    json_decref(st);
    feed_alarm_ops.set_paused(c.self, paused, false);
    const struct want w2[] = {{"paused", 1}};
    CHECK(run_until(&c, 2500, w2, 1));
    st = feed_alarm_ops.status(c.self, paused);
    CHECK(json_is_false(json_object_get(st, "paused")));
    CHECK(int_member(st, "fires") >= 1);
    json_decref(st);

    /* adapter totals add up */
    struct feed_counters fc;
    feed_alarm_ops.counters(c.self, &fc);
    CHECK_EQ_INT(fc.fires, (uint64_t)c.total_fires);
    CHECK(fc.drops >= 1);
    CHECK_EQ_INT(fc.events_in, fc.fires + fc.drops);
    core_finish(&c);
}

static void alarm_status_fields(void)
{
    struct core c;
    core_start(&c);
    int64_t before = plat_clock_real_ms();
    struct feed_binding *b =
        bind_text(&c, "t",
                  "{\"cron\": \"0 9 * * MON-FRI\", \"timezone\": \"+02:00\", "
                  "\"startDate\": \"2030-01-01T00:00:00Z\", \"stopDate\": 4102444800000}",
                  NULL);
    json_t *st = feed_alarm_ops.status(c.self, b);
    CHECK_STREQ(json_string_value(json_object_get(st, "kind")), "alarm");
    CHECK_STREQ(json_string_value(json_object_get(st, "cron")), "0 9 * * MON-FRI");
    CHECK_STREQ(json_string_value(json_object_get(st, "timezone")), "+02:00");
    CHECK_STREQ(json_string_value(json_object_get(st, "startDate")), "2030-01-01T00:00:00Z");
    CHECK_EQ_INT(int_member(st, "stopDate"), INT64_C(4102444800000));
    CHECK(json_is_false(json_object_get(st, "paused")));
    CHECK_STREQ(json_string_value(json_object_get(st, "state")), "scheduled");
    /* 2030-01-01 is a Tuesday: 09:00 at +02:00 */
    int64_t want = 0;
    CHECK_EQ_INT(cron_parse_iso("2030-01-01T07:00:00Z", &want), 0);
    CHECK_EQ_INT(int_member(st, "nextFire"), want);
    CHECK(is_null_member(st, "lastFired"));
    CHECK_EQ_INT(int_member(st, "fires"), 0);
    CHECK_EQ_INT(int_member(st, "drops"), 0);
    CHECK(json_is_object(json_object_get(st, "trigger_payload")));
    json_decref(st);
    feed_alarm_ops.set_paused(c.self, b, true);
    st = feed_alarm_ops.status(c.self, b);
    CHECK(json_is_true(json_object_get(st, "paused")));
    json_decref(st);

    /* interval: minutes, also as a string of digits; first slot one
     * interval after the bind */
    b = bind_text(&c, "iv", "{\"minutes\": \"5\"}", NULL);
    int64_t after = plat_clock_real_ms();
    st = feed_alarm_ops.status(c.self, b);
    CHECK_STREQ(json_string_value(json_object_get(st, "kind")), "interval");
    CHECK_STREQ(json_string_value(json_object_get(st, "minutes")), "5");
    CHECK(int_member(st, "nextFire") >= before + 300000);
    CHECK(int_member(st, "nextFire") <= after + 300000);
    json_decref(st);

    /* an explicit feed wins over the other parameters */
    b = bind_text(&c, "explicit", "{\"feed\": \"interval\", \"seconds\": 2, \"cron\": \"x\"}",
                  NULL);
    st = feed_alarm_ops.status(c.self, b);
    CHECK_STREQ(json_string_value(json_object_get(st, "kind")), "interval");
    CHECK_EQ_INT(int_member(st, "seconds"), 2);
    json_decref(st);
    b = bind_text(&c, "path",
                  "{\"feed\": \"/whisk.system/alarms/once\", \"date\": 4102444800000, "
                  "\"deleteAfterFire\": true}",
                  NULL);
    st = feed_alarm_ops.status(c.self, b);
    CHECK_STREQ(json_string_value(json_object_get(st, "kind")), "once");
    CHECK(json_is_true(json_object_get(st, "deleteAfterFire")));
    CHECK_EQ_INT(int_member(st, "nextFire"), INT64_C(4102444800000));
    json_decref(st);
    b = bind_text(&c, "once2", "{\"date\": \"2100-01-01\"}", NULL);
    st = feed_alarm_ops.status(c.self, b);
    CHECK(json_is_false(json_object_get(st, "deleteAfterFire")));
    json_decref(st);

    /* stopDate already passed: bound, but stopped */
    b = bind_text(&c, "over", "{\"cron\": \"* * * * *\", \"stopDate\": 1000}", NULL);
    st = feed_alarm_ops.status(c.self, b);
    CHECK_STREQ(json_string_value(json_object_get(st, "state")), "stopped");
    CHECK(is_null_member(st, "nextFire"));
    json_decref(st);
    core_finish(&c);
}

static void alarm_bad_params(void)
{
    struct {
        const char *params, *msg;
    } rows[] = {
        {"{}", "cron: missing"},
        {"{\"trigger_payload\": {}}", "cron"},
        {"{\"cron\": \"61 * * * *\"}", "cron: minute field '61' out of range 0-59"},
        {"{\"cron\": 5}", "cron: must be a string"},
        {"{\"cron\": \"* * * *\"}", "cron: expected 5 fields"},
        {"{\"cron\": \"* * * * *\", \"timezone\": \"Europe/Berlin\"}",
         "timezone: 'Europe/Berlin' is not supported"},
        {"{\"cron\": \"* * * * *\", \"timezone\": 2}", "timezone: must be a string"},
        {"{\"cron\": \"* * * * *\", \"startDate\": \"soon\"}", "startDate: 'soon' is not an ISO"},
        {"{\"cron\": \"* * * * *\", \"startDate\": -5}", "startDate"},
        {"{\"cron\": \"* * * * *\", \"stopDate\": true}", "stopDate: must be"},
        {"{\"cron\": \"* * * * *\", \"startDate\": 2000, \"stopDate\": 1000}",
         "stopDate: must be after startDate"},
        {"{\"cron\": \"* * * * *\", \"trigger_payload\": 5}", "trigger_payload: must be an object"},
        {"{\"cron\": \"* * * * *\", \"trigger_payload\": [1]}", "trigger_payload"},
        {"{\"minutes\": 0}", "minutes: must be a positive integer"},
        {"{\"minutes\": -3}", "minutes: must be a positive integer"},
        {"{\"minutes\": 1.5}", "minutes: must be a positive integer"},
        {"{\"minutes\": \"abc\"}", "minutes: must be a positive integer"},
        {"{\"minutes\": \"\"}", "minutes"},
        {"{\"minutes\": 100000000000}", "minutes: must be a positive integer"},
        {"{\"seconds\": 0}", "seconds: must be a positive integer"},
        {"{\"minutes\": 1, \"seconds\": 1}", "minutes: give minutes or seconds, not both"},
        {"{\"feed\": \"interval\"}", "minutes: missing"},
        {"{\"feed\": \"alarm\", \"minutes\": 1}", "cron: missing"},
        {"{\"feed\": \"once\", \"cron\": \"* * * * *\"}", "date: missing"},
        {"{\"feed\": \"weekly\", \"cron\": \"* * * * *\"}", "feed: must be"},
        {"{\"feed\": 3, \"cron\": \"* * * * *\"}", "feed: must be"},
        {"{\"date\": \"tomorrow\"}", "date: 'tomorrow' is not an ISO 8601 date"},
        {"{\"date\": \"2024-02-30T00:00:00Z\"}", "date: '2024-02-30T00:00:00Z'"},
        {"{\"date\": {}}", "date: must be"},
        {"{\"date\": 1e300}", "date: must be"},
        {"{\"date\": 4102444800000, \"deleteAfterFire\": \"maybe\"}",
         "deleteAfterFire: must be false, true or \"rules\""},
        {"{\"date\": 4102444800000, \"deleteAfterFire\": 1}", "deleteAfterFire"},
        {"{\"date\": 4102444800000, \"trigger_payload\": false}", "trigger_payload"},
        {"[]", "params"},
        {"\"cron\"", "params"},
    };
    struct core c;
    core_start(&c);
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        json_error_t jerr;
        json_t *p = json_loads(rows[i].params, JSON_DECODE_ANY, &jerr);
        CHECK(p != NULL);
        struct feed_binding *b = NULL;
        struct wisp_err err = {0};
        int rc = feed_alarm_ops.bind(c.self, "guest", "bad", p, NULL, &b, &err);
        if (rc != -EINVAL || !strstr(err.msg, rows[i].msg))
            fprintf(stderr, "  %s: rc %d '%s' lacks '%s'\n", rows[i].params, rc, err.msg,
                    rows[i].msg);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK_EQ_INT(err.code, -EINVAL);
        CHECK(strstr(err.msg, rows[i].msg) != NULL);
        CHECK(b == NULL);
        json_decref(p);
        /* a NULL err is fine too */
        p = json_loads(rows[i].params, JSON_DECODE_ANY, &jerr);
        CHECK_EQ_INT(feed_alarm_ops.bind(c.self, "guest", "bad", p, NULL, &b, NULL), -EINVAL);
        json_decref(p);
    }
    CHECK_EQ_INT(pending_events(&c), 0); /* refused bindings leave no timer */
    /* a malformed saved state is ignored, not an error */
    bind_text(&c, "odd", "{\"cron\": \"0 0 1 1 *\"}", "{\"lastFired\": \"x\", \"fires\": -4}");
    bind_text(&c, "odd2", "{\"minutes\": 1}", "[1, 2]");
    CHECK_EQ_INT(pending_events(&c), 2);
    core_finish(&c);
    CHECK_EQ_INT(c.total_fires, 0);
}

/* Re-binding after a restart with the state save() stored. */
static void alarm_restart_semantics(void)
{
    struct core c;
    core_start(&c);
    int64_t now = plat_clock_real_ms();
    char p[256], s[256];
    struct cron_expr daily;
    CHECK_EQ_INT(cron_parse("0 0 * * *", &daily, NULL), 0);
    int64_t next_midnight = cron_next(&daily, 0, now + 2000);
    int64_t last_midnight = next_midnight - 86400000;

    /* missed three days: exactly one catch-up, then the schedule */
    snprintf(s, sizeof s, "{\"lastFired\": %lld, \"fires\": 7}",
             (long long)(last_midnight - 3 * 86400000LL));
    struct feed_binding *missed = bind_text(&c, "missed", "{\"cron\": \"0 0 * * *\"}", s);
    /* fired at the latest slot: nothing to catch up, no double fire */
    snprintf(s, sizeof s, "{\"lastFired\": %lld, \"fires\": 3}", (long long)last_midnight);
    struct feed_binding *uptodate = bind_text(&c, "uptodate", "{\"cron\": \"0 0 * * *\"}", s);
    /* an interval 5 slots behind: one catch-up, then every second (no burst) */
    int64_t start = now - 10000;
    snprintf(p, sizeof p, "{\"seconds\": 1, \"startDate\": %lld}", (long long)start);
    snprintf(s, sizeof s, "{\"lastFired\": %lld, \"fires\": 5}", (long long)(start + 5000));
    bind_text(&c, "behind", p, s);
    /* an interval without startDate keeps its saved anchor (phase .500) */
    int64_t anchor = (now / 1000) * 1000 - 20500;
    snprintf(s, sizeof s, "{\"lastFired\": %lld, \"fires\": 2, \"anchor\": %lld}",
             (long long)(anchor + 10000), (long long)anchor);
    struct feed_binding *phase = bind_text(&c, "phase", "{\"seconds\": 1}", s);
    /* a once that fired never fires again, even with its date ahead */
    snprintf(p, sizeof p, "{\"date\": %lld}", (long long)(now - 1000));
    snprintf(s, sizeof s, "{\"lastFired\": %lld, \"fires\": 1}", (long long)(now - 1000));
    struct feed_binding *oncefired = bind_text(&c, "oncefired", p, s);
    snprintf(p, sizeof p, "{\"date\": %lld}", (long long)(now + 300));
    bind_text(&c, "onceahead", p, s);
    /* a once skipped while paused is done as well */
    bind_text(&c, "onceskipped", p, "{\"lastFired\": null, \"fires\": 0, \"done\": true}");
    /* a once whose date passed while down (no state): fires once */
    snprintf(p, sizeof p, "{\"date\": %lld}", (long long)(now - 60000));
    bind_text(&c, "oncemissed", p, NULL);
    /* stopDate passed while down: no catch-up */
    snprintf(p, sizeof p, "{\"cron\": \"*/1 * * * * *\", \"stopDate\": %lld}",
             (long long)(now - 1000));
    snprintf(s, sizeof s, "{\"lastFired\": %lld, \"fires\": 9}", (long long)(now - 5000));
    struct feed_binding *expired = bind_text(&c, "expired", p, s);
    /* a missed slot while the binding is paused again: the catch-up is dropped */
    snprintf(s, sizeof s, "{\"lastFired\": %lld, \"fires\": 1}",
             (long long)(last_midnight - 86400000LL));
    struct feed_binding *pz = bind_text(&c, "pausedmissed", "{\"cron\": \"0 0 * * *\"}", s);
    feed_alarm_ops.set_paused(c.self, pz, true);

    CHECK_EQ_INT(c.total_fires, 0); /* catch-ups come from the timer, not bind() */
    json_t *st = feed_alarm_ops.status(c.self, missed);
    CHECK_EQ_INT(int_member(st, "fires"), 7);
    json_decref(st);

    run_until(&c, 1600, NULL, 0);

    struct rec *r = rec_for(&c, "missed");
    CHECK_EQ_INT(r->fires, 1);
    CHECK_EQ_INT(r->saves, 1);
    CHECK_EQ_INT(int_member(r->last_state, "fires"), 8);
    CHECK(int_member(r->last_state, "lastFired") >= now);
    st = feed_alarm_ops.status(c.self, missed);
    CHECK_EQ_INT(int_member(st, "nextFire"), next_midnight);
    CHECK_EQ_INT(int_member(st, "fires"), 8);
    json_decref(st);

    CHECK_EQ_INT(rec_for(&c, "uptodate")->fires, 0);
    st = feed_alarm_ops.status(c.self, uptodate);
    CHECK_EQ_INT(int_member(st, "nextFire"), next_midnight);
    CHECK_EQ_INT(int_member(st, "lastFired"), last_midnight);
    CHECK_EQ_INT(int_member(st, "fires"), 3);
    json_decref(st);

    r = rec_for(&c, "behind");
    CHECK(r->fires >= 2); /* the catch-up and at least one slot in 1.6 s */
    CHECK(r->fires <= 4); /* not one per missed slot (that would be 6+) */
    CHECK_EQ_INT(int_member(r->last_state, "fires"), 5 + r->fires);
    CHECK_EQ_INT(r->save_order_errors, 0);

    r = rec_for(&c, "phase");
    CHECK(r->fires >= 1);
    st = feed_alarm_ops.status(c.self, phase);
    CHECK_EQ_INT((int_member(st, "nextFire") - anchor) % 1000, 0);
    json_decref(st);
    CHECK_EQ_INT(int_member(r->last_state, "anchor"), anchor);

    CHECK_EQ_INT(rec_for(&c, "oncefired")->fires, 0);
    CHECK_EQ_INT(rec_for(&c, "onceahead")->fires, 0);
    CHECK_EQ_INT(rec_for(&c, "onceskipped")->fires, 0);
    st = feed_alarm_ops.status(c.self, oncefired);
    CHECK_STREQ(json_string_value(json_object_get(st, "state")), "done");
    CHECK(is_null_member(st, "nextFire"));
    json_decref(st);
    CHECK_EQ_INT(rec_for(&c, "oncemissed")->fires, 1);

    CHECK_EQ_INT(rec_for(&c, "expired")->fires, 0);
    st = feed_alarm_ops.status(c.self, expired);
    CHECK_STREQ(json_string_value(json_object_get(st, "state")), "stopped");
    CHECK_EQ_INT(int_member(st, "fires"), 9);
    json_decref(st);

    CHECK_EQ_INT(rec_for(&c, "pausedmissed")->fires, 0);
    st = feed_alarm_ops.status(c.self, pz);
    CHECK_EQ_INT(int_member(st, "drops"), 1);
    json_decref(st);
    core_finish(&c);
}

/* Core's callbacks may call ops again: unbind or stop from inside a fire,
 * and a refused fire counts as a drop without a save. */
static void alarm_callbacks_reenter(void)
{
    struct core c;
    core_start(&c);
    int64_t now = plat_clock_real_ms();
    char p[128];
    snprintf(p, sizeof p, "{\"date\": %lld}", (long long)(now - 10));
    c.unbind_binding = bind_text(&c, "gone", "{\"cron\": \"*/1 * * * * *\"}",
                                 "{\"lastFired\": 1000, \"fires\": 1}");
    c.unbind_trigger = "gone";
    c.refuse = "refused";
    struct feed_binding *refused = bind_text(&c, "refused", p, NULL);
    const struct want w[] = {{"gone", 1}};
    CHECK(run_until(&c, 1000, w, 1));
    run_until(&c, 200, NULL, 0);
    struct rec *r = rec_for(&c, "gone");
    CHECK_EQ_INT(r->fires, 1); /* the catch-up, then unbound inside it */
    CHECK_EQ_INT(r->saves, 0); /* no save for a binding unbound in its fire */
    json_t *st = feed_alarm_ops.status(c.self, refused);
    CHECK_EQ_INT(int_member(st, "drops"), 1);
    CHECK_EQ_INT(int_member(st, "fires"), 0);
    CHECK_STREQ(json_string_value(json_object_get(st, "state")), "done");
    json_decref(st);
    /* a once's turn is saved even when refused, so it stays done */
    CHECK_EQ_INT(rec_for(&c, "refused")->saves, 1);
    CHECK(json_is_true(json_object_get(rec_for(&c, "refused")->last_state, "done")));
    CHECK_EQ_INT(pending_events(&c), 0);

    /* stop from inside a fire: no further callbacks, nothing left */
    bind_text(&c, "s1", p, NULL);
    bind_text(&c, "s2", "{\"seconds\": 1}", NULL);
    bind_text(&c, "s3", p, NULL);
    c.stop_on_fire = true;
    run_until(&c, 300, NULL, 0);
    CHECK(c.self == NULL);
    CHECK_EQ_INT(rec_for(&c, "s1")->fires + rec_for(&c, "s3")->fires, 1);
    CHECK_EQ_INT(rec_for(&c, "s1")->saves + rec_for(&c, "s3")->saves, 0);
    core_finish(&c);
}

/* deleteAfterFire: once a once fired and its state is saved, the adapter
 * asks core (once) to delete the trigger, with its rules for "rules"; never
 * for false, nor for a slot that was dropped (paused or refused). A binding
 * that comes back with a fired state asks again from the loop, never from
 * inside bind(); one whose slot was dropped does not. */
static void alarm_delete_after_fire(void)
{
    struct core c;
    core_start(&c);
    int64_t now = plat_clock_real_ms();
    char p[160], s[128];
    static const char *const live[][2] = {
        {"t_true", "true"},   {"t_rules", "\"rules\""},   {"t_false", "false"},
        {"t_paused", "true"}, {"t_refused", "\"rules\""},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(live); i++) {
        snprintf(p, sizeof p, "{\"date\": %lld, \"deleteAfterFire\": %s}", (long long)(now + 200),
                 live[i][1]);
        struct feed_binding *b = bind_text(&c, live[i][0], p, NULL);
        if (strcmp(live[i][0], "t_paused") == 0)
            feed_alarm_ops.set_paused(c.self, b, true);
    }
    c.refuse = "t_refused";
    /* as after a restart: fired (the deletion did not happen), dropped, kept */
    snprintf(p, sizeof p, "{\"date\": %lld, \"deleteAfterFire\": \"RULES\"}",
             (long long)(now - 5000));
    snprintf(s, sizeof s, "{\"lastFired\": %lld, \"fires\": 1, \"done\": true}",
             (long long)(now - 5000));
    bind_text(&c, "r_fired", p, s);
    bind_text(&c, "r_dropped", p, "{\"lastFired\": null, \"fires\": 0, \"done\": true}");
    snprintf(p, sizeof p, "{\"date\": %lld, \"deleteAfterFire\": false}", (long long)(now - 5000));
    bind_text(&c, "r_keep", p, s);
    CHECK_EQ_INT(c.total_deletes, 0);

    const struct want w[] = {{"t_true", 1}, {"t_rules", 1}, {"t_false", 1}};
    CHECK(run_until(&c, 5000, w, WISP_ARRAY_LEN(w)));
    run_until(&c, 200, NULL, 0); /* room for a wrong second request to show */

    struct rec *r = rec_for(&c, "t_true");
    CHECK_EQ_INT(r->deletes, 1);
    CHECK(!r->delete_rules);
    CHECK_EQ_INT(r->saves_before_delete, 1); /* the fire was saved first */
    r = rec_for(&c, "t_rules");
    CHECK_EQ_INT(r->deletes, 1);
    CHECK(r->delete_rules);
    CHECK_EQ_INT(r->saves_before_delete, 1);
    CHECK_EQ_INT(rec_for(&c, "t_false")->deletes, 0);
    CHECK_EQ_INT(rec_for(&c, "t_paused")->deletes, 0);
    CHECK_EQ_INT(rec_for(&c, "t_paused")->saves, 1); /* done, dropped */
    CHECK_EQ_INT(rec_for(&c, "t_refused")->deletes, 0);
    r = rec_for(&c, "r_fired");
    CHECK_EQ_INT(r->fires, 0);
    CHECK_EQ_INT(r->deletes, 1);
    CHECK(r->delete_rules);
    CHECK_EQ_INT(rec_for(&c, "r_dropped")->deletes, 0);
    CHECK_EQ_INT(rec_for(&c, "r_keep")->deletes, 0);
    CHECK_EQ_INT(rec_for(&c, "r_keep")->fires, 0);
    for (int i = 0; i < c.nrec; i++)
        CHECK_EQ_INT(c.recs[i].deletes_inside_bind, 0);
    CHECK_EQ_INT(c.total_deletes, 3);
    core_finish(&c);
}

static void alarm_unbind_and_stop_leave_no_timers(void)
{
    struct core c;
    core_start(&c);
    int64_t now = plat_clock_real_ms();
    char p[128];
    snprintf(p, sizeof p, "{\"date\": %lld}", (long long)(now - 10));
    struct feed_binding *a = bind_text(&c, "a", "{\"cron\": \"*/1 * * * * *\"}", NULL);
    struct feed_binding *b = bind_text(&c, "b", p, NULL); /* a catch-up is pending */
    bind_text(&c, "c", "{\"seconds\": 1}", NULL);
    bind_text(&c, "d", p, NULL);
    CHECK_EQ_INT(pending_events(&c), 4);
    feed_alarm_ops.unbind(c.self, a);
    feed_alarm_ops.unbind(c.self, b);
    CHECK_EQ_INT(pending_events(&c), 2);
    feed_alarm_ops.stop(c.self);
    c.self = NULL;
    CHECK_EQ_INT(pending_events(&c), 0);
    event_base_loop(c.base, EVLOOP_NONBLOCK);
    /* and over a second of real time: still nothing */
    struct timeval tv = {1, 100 * 1000};
    event_base_loopexit(c.base, &tv);
    event_base_dispatch(c.base);
    CHECK_EQ_INT(c.total_fires, 0);
    CHECK_EQ_INT(c.total_saves, 0);
    core_finish(&c);

    /* unbinding everything one by one also leaves nothing */
    core_start(&c);
    a = bind_text(&c, "a", "{\"cron\": \"*/1 * * * * *\"}", NULL);
    b = bind_text(&c, "b", p, NULL);
    feed_alarm_ops.unbind(c.self, b);
    feed_alarm_ops.unbind(c.self, a);
    CHECK_EQ_INT(pending_events(&c), 0);
    core_finish(&c);
    CHECK_EQ_INT(c.total_fires, 0);
}

static const struct check_test tests[] = {
    {"alarm_live_schedules", alarm_live_schedules},
    {"alarm_status_fields", alarm_status_fields},
    {"alarm_bad_params", alarm_bad_params},
    {"alarm_restart_semantics", alarm_restart_semantics},
    {"alarm_callbacks_reenter", alarm_callbacks_reenter},
    {"alarm_delete_after_fire", alarm_delete_after_fire},
    {"alarm_unbind_and_stop_leave_no_timers", alarm_unbind_and_stop_leave_no_timers},
};

CHECK_MAIN(tests)
