/* feeds/alarm.c - the alarm feed kind: OpenWhisk's /whisk.system/alarms
 * package (apache/openwhisk-package-alarms), three feed actions served by
 * one adapter. The binding's params say which:
 *   alarm     cron (5 fields, or 6 with leading seconds; see cron.h),
 *             timezone ("UTC" or a fixed offset such as "+02:00"),
 *             startDate, stopDate, trigger_payload
 *   interval  minutes (or seconds, a Wisp extension), startDate, stopDate,
 *             trigger_payload; slots are startDate + k * interval, and
 *             without startDate the first fire is one interval after the
 *             first bind (that anchor is kept in the saved state)
 *   once      date, deleteAfterFire (false|true|"rules"), trigger_payload
 * An explicit "feed": "alarm"|"interval"|"once" wins; otherwise cron picks
 * alarm, minutes/seconds interval, date once. Dates are ISO 8601 strings
 * (UTC when they carry no offset) or epoch milliseconds. A string
 * trigger_payload becomes {"payload": string}, as in OpenWhisk.
 *
 * Because bind() cannot tell a new trigger from one re-bound after a
 * restart, dates in the past are accepted (OpenWhisk refuses them at
 * creation): a past once date fires right away, a passed stopDate just
 * means no fires.
 *
 * Scheduling: each binding has one evtimer armed for its next slot,
 * computed from the wall clock (plat_clock_real_ms). A timer is never set
 * more than 60 s ahead; when it expires early (that cap, or the wall clock
 * moved back) the slot is re-checked against the real clock and the timer
 * re-armed, and after each fire the next slot is computed afresh from the
 * real clock, so clock jumps cost at most one fire, never a burst.
 * Fires only happen in the timer callback, never inside an ops call.
 * After each fire, save() stores {"lastFired": ms, "fires": n} (plus
 * "anchor" for an interval without startDate, "done" for a once).
 *
 * Missed-fire policy: when bind() gets a state whose lastFired is older
 * than the latest slot due at or before now (fires missed while wispd was
 * down), the binding fires ONCE right away (one catch-up, however many
 * slots were missed; none once stopDate has passed) and then follows its
 * schedule; no slot at or before lastFired ever fires again, so a restart
 * never double-fires. Without a saved state nothing is caught up (the
 * binding never fired, so nothing can be known to be missed), except a
 * once whose date has passed. A once whose state says it fired (or was
 * skipped while paused) never fires again.
 *
 * Paused bindings keep their schedule; a slot that comes due while paused
 * is dropped (counted) and not caught up later. A fire that core refuses
 * is counted as a drop and not saved.
 *
 * deleteAfterFire: after a once fired (core took the fire) and its state
 * (lastFired, done) is saved, the adapter asks core to delete the trigger
 * (env->delete_trigger; "rules": its rules as well), still inside the timer
 * callback; core does the deleting later from its own event and unbinds.
 * If wispd stops in between, the binding comes back to bind() with that
 * state, and the adapter asks again from a zero-delay timer (never inside
 * bind()). A once whose slot was dropped (paused, or refused by core) keeps
 * its trigger, as OpenWhisk's provider only deletes after a fire. */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cron.h"
#include "feed.h"
#include "log.h"
#include "plat.h"

#define TIMER_CAP_MS 60000
#define MAX_DATE_MS INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */
#define MAX_MINUTES INT64_C(10000000)        /* about 19 years */

enum alarm_kind { AK_ALARM, AK_INTERVAL, AK_ONCE };
enum after_fire { DAF_KEEP, DAF_TRIGGER, DAF_RULES }; /* a once's deleteAfterFire */
static const char *const kind_names[] = {"alarm", "interval", "once"};

struct alarm_self {
    struct feed_env env;
    struct feed_set set;
    struct feed_counters totals;
};

struct feed_binding {
    struct feed_link link; /* first: the set's links are bindings */
    struct alarm_self *self;
    char *ns, *trigger;
    enum alarm_kind kind;
    json_t *given;   /* the schedule parameters as given, for status */
    json_t *payload; /* trigger_payload, an object */
    struct cron_expr cron;
    int tz_off;                     /* seconds east of UTC */
    int64_t interval_ms, anchor_ms; /* interval: slots anchor + k * interval */
    bool anchor_saved;              /* anchor goes into the state */
    int64_t date_ms;                /* once */
    enum after_fire daf;            /* once */
    int64_t start_ms, stop_ms;      /* -1 when absent */
    bool paused;
    bool catchup;                /* the timer is the catch-up fire */
    bool delete_due;             /* the timer asks core to delete the trigger */
    bool done;                   /* a once that had its turn */
    int64_t next_ms, last_fired; /* -1 when none */
    uint64_t fires, drops;
    struct event *timer;
};

/* ---- parameters ------------------------------------------------------- */

/* A present, non-null member or NULL. */
static const json_t *member(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int parse_date(const json_t *v, const char *name, int64_t *out, struct wisp_err *err)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n >= 0 && n <= MAX_DATE_MS) {
            *out = n;
            return 0;
        }
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d <= (double)MAX_DATE_MS) { /* false for NaN */
            *out = (int64_t)d;
            return 0;
        }
    } else if (json_is_string(v)) {
        int64_t ms;
        if (cron_parse_iso(json_string_value(v), &ms) == 0 && ms >= 0 && ms <= MAX_DATE_MS) {
            *out = ms;
            return 0;
        }
        return wisp_err_set(err, -EINVAL,
                            "%s: '%.64s' is not an ISO 8601 date (such as "
                            "2030-01-31T09:00:00Z) or epoch milliseconds",
                            name, json_string_value(v));
    }
    return wisp_err_set(
        err, -EINVAL, "%s: must be an ISO 8601 date string or epoch milliseconds since 1970", name);
}

/* A positive integer: a JSON integer, an integral real or a string of
 * digits (OpenWhisk accepts "5"). */
static int parse_positive(const json_t *v, const char *name, int64_t max, int64_t *out,
                          struct wisp_err *err)
{
    int64_t n = -1;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        /* no libm here: the range check also rejects NaN and infinities */
        if (d > -1e15 && d < 1e15 && d == (double)(int64_t)d)
            n = (int64_t)d;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = strlen(s);
        if (len > 0 && len <= 15 && strspn(s, "0123456789") == len)
            n = strtoll(s, NULL, 10);
    }
    if (n < 1 || n > max)
        return wisp_err_set(err, -EINVAL, "%s: must be a positive integer (1-%lld)", name,
                            (long long)max);
    *out = n;
    return 0;
}

static int pick_kind(const json_t *params, enum alarm_kind *kind, struct wisp_err *err)
{
    const json_t *f = member(params, "feed");
    if (f) {
        const char *s = json_is_string(f) ? json_string_value(f) : "";
        const char *slash = strrchr(s, '/'); /* "/whisk.system/alarms/once" */
        if (slash)
            s = slash + 1;
        for (int i = 0; i < 3; i++) {
            if (strcmp(s, kind_names[i]) == 0) {
                *kind = (enum alarm_kind)i;
                return 0;
            }
        }
        return wisp_err_set(err, -EINVAL, "feed: must be \"alarm\", \"interval\" or \"once\"");
    }
    if (member(params, "cron"))
        *kind = AK_ALARM;
    else if (member(params, "minutes") || member(params, "seconds"))
        *kind = AK_INTERVAL;
    else if (member(params, "date"))
        *kind = AK_ONCE;
    else
        return wisp_err_set(err, -EINVAL,
                            "cron: missing (an alarm needs cron, an interval minutes, a "
                            "one-time alarm date)");
    return 0;
}

/* Keeps a copy of params[key] in b->given for status. */
static void keep(struct feed_binding *b, const json_t *params, const char *key)
{
    const json_t *v = member(params, key);
    if (v)
        json_object_set_new(b->given, key, json_deep_copy(v));
}

static int parse_payload(struct feed_binding *b, const json_t *params, struct wisp_err *err)
{
    const json_t *p = member(params, "trigger_payload");
    if (!p)
        b->payload = json_object();
    else if (json_is_object(p))
        b->payload = json_deep_copy(p);
    else if (json_is_string(p))
        b->payload = json_pack("{s:s}", "payload", json_string_value(p));
    else
        return wisp_err_set(err, -EINVAL, "trigger_payload: must be an object");
    return b->payload ? 0 : wisp_err_set(err, -ENOMEM, "trigger_payload: out of memory");
}

static int parse_start_stop(struct feed_binding *b, const json_t *params, struct wisp_err *err)
{
    const json_t *v;
    int rc;
    if ((v = member(params, "startDate")) && (rc = parse_date(v, "startDate", &b->start_ms, err)))
        return rc;
    if ((v = member(params, "stopDate")) && (rc = parse_date(v, "stopDate", &b->stop_ms, err)))
        return rc;
    if (b->start_ms >= 0 && b->stop_ms >= 0 && b->stop_ms <= b->start_ms)
        return wisp_err_set(err, -EINVAL, "stopDate: must be after startDate");
    keep(b, params, "startDate");
    keep(b, params, "stopDate");
    return 0;
}

static int parse_params(struct feed_binding *b, const json_t *params, int64_t now,
                        struct wisp_err *err)
{
    int rc = pick_kind(params, &b->kind, err);
    if (rc)
        return rc;
    const json_t *v;
    switch (b->kind) {
    case AK_ALARM: {
        v = member(params, "cron");
        if (!v || !json_is_string(v))
            return wisp_err_set(err, -EINVAL, "cron: %s", v ? "must be a string" : "missing");
        if ((rc = cron_parse(json_string_value(v), &b->cron, err)))
            return rc;
        if ((v = member(params, "timezone"))) {
            if (!json_is_string(v))
                return wisp_err_set(err, -EINVAL, "timezone: must be a string");
            if ((rc = cron_parse_tz(json_string_value(v), &b->tz_off, err)))
                return rc;
        }
        keep(b, params, "cron");
        keep(b, params, "timezone");
        rc = parse_start_stop(b, params, err);
        break;
    }
    case AK_INTERVAL: {
        const json_t *mv = member(params, "minutes"), *sv = member(params, "seconds");
        int64_t n;
        if (mv && sv)
            return wisp_err_set(err, -EINVAL, "minutes: give minutes or seconds, not both");
        if (!mv && !sv)
            return wisp_err_set(err, -EINVAL, "minutes: missing");
        if (mv && (rc = parse_positive(mv, "minutes", MAX_MINUTES, &n, err)))
            return rc;
        if (sv && (rc = parse_positive(sv, "seconds", MAX_MINUTES * 60, &n, err)))
            return rc;
        b->interval_ms = n * (mv ? 60000 : 1000);
        keep(b, params, mv ? "minutes" : "seconds");
        if ((rc = parse_start_stop(b, params, err)))
            return rc;
        if (b->start_ms >= 0) {
            b->anchor_ms = b->start_ms;
        } else {
            b->anchor_ms = now + b->interval_ms;
            b->anchor_saved = true;
        }
        break;
    }
    case AK_ONCE: {
        if (!(v = member(params, "date")))
            return wisp_err_set(err, -EINVAL, "date: missing");
        if ((rc = parse_date(v, "date", &b->date_ms, err)))
            return rc;
        keep(b, params, "date");
        const char *daf = "false";
        if ((v = member(params, "deleteAfterFire"))) {
            if (json_is_boolean(v))
                daf = json_is_true(v) ? "true" : "false";
            else if (json_is_string(v) && (strcasecmp(json_string_value(v), "true") == 0 ||
                                           strcasecmp(json_string_value(v), "false") == 0 ||
                                           strcasecmp(json_string_value(v), "rules") == 0))
                daf = json_string_value(v);
            else
                return wisp_err_set(err, -EINVAL,
                                    "deleteAfterFire: must be false, true or \"rules\"");
        }
        char low[8];
        size_t i = 0;
        for (; daf[i] && i < sizeof low - 1; i++)
            low[i] = (char)(daf[i] | 0x20);
        low[i] = '\0';
        b->daf = strcmp(low, "rules") == 0  ? DAF_RULES
                 : strcmp(low, "true") == 0 ? DAF_TRIGGER
                                            : DAF_KEEP;
        json_object_set_new(b->given, "deleteAfterFire",
                            b->daf == DAF_RULES ? json_string("rules")
                                                : json_boolean(b->daf == DAF_TRIGGER));
        break;
    }
    }
    if (!rc)
        rc = parse_payload(b, params, err);
    return rc;
}

/* ---- schedule --------------------------------------------------------- */

/* The first slot strictly after t (startDate honoured, stopDate not); -1
 * when none. */
static int64_t slot_after(const struct feed_binding *b, int64_t t)
{
    switch (b->kind) {
    case AK_ALARM:
        if (b->start_ms >= 0 && t < b->start_ms - 1)
            t = b->start_ms - 1;
        return cron_next(&b->cron, b->tz_off, t);
    case AK_INTERVAL:
        if (t < b->anchor_ms)
            return b->anchor_ms;
        return b->anchor_ms + ((t - b->anchor_ms) / b->interval_ms + 1) * b->interval_ms;
    case AK_ONCE:
        return !b->done && t < b->date_ms ? b->date_ms : -1;
    }
    return -1;
}

static void arm(struct feed_binding *b, int64_t now)
{
    int64_t delay;
    if (b->catchup || b->delete_due)
        delay = 0;
    else if (b->next_ms >= 0)
        delay = b->next_ms - now;
    else {
        evtimer_del(b->timer);
        return;
    }
    if (delay < 0)
        delay = 0;
    if (delay > TIMER_CAP_MS)
        delay = TIMER_CAP_MS;
    struct timeval tv = {.tv_sec = (time_t)(delay / 1000),
                         .tv_usec = (suseconds_t)(delay % 1000) * 1000};
    evtimer_add(b->timer, &tv);
}

/* Sets next_ms to the first slot after both now and lastFired, within
 * stopDate, and arms the timer. */
static void schedule(struct feed_binding *b, int64_t now)
{
    int64_t from = b->last_fired > now ? b->last_fired : now;
    int64_t n = slot_after(b, from);
    if (n >= 0 && b->stop_ms >= 0 && n > b->stop_ms)
        n = -1;
    b->next_ms = n;
    arm(b, now);
}

static bool stop_passed(const struct feed_binding *b, int64_t now)
{
    return b->stop_ms >= 0 && now > b->stop_ms;
}

/* ---- bindings --------------------------------------------------------- */

static void binding_free(struct feed_binding *b)
{
    struct alarm_self *s = b->self;
    feed_set_remove(&s->set, &b->link);
    if (b->timer)
        event_free(b->timer);
    json_decref(b->given);
    json_decref(b->payload);
    free(b->ns);
    free(b->trigger);
    free(b);
}

static json_t *state_json(const struct feed_binding *b)
{
    json_t *st = json_object();
    if (!st)
        return NULL;
    json_object_set_new(st, "lastFired",
                        b->last_fired >= 0 ? json_integer(b->last_fired) : json_null());
    json_object_set_new(st, "fires", json_integer((json_int_t)b->fires));
    if (b->kind == AK_INTERVAL && b->anchor_saved)
        json_object_set_new(st, "anchor", json_integer(b->anchor_ms));
    if (b->kind == AK_ONCE && b->done)
        json_object_set_new(st, "done", json_true());
    return st;
}

/* Callbacks into core run between enter() and leave(): core may unbind
 * the binding or stop the adapter from inside them. leave() is false when
 * the binding was freed meanwhile. */
static void enter(struct feed_binding *b)
{
    feed_enter(&b->self->set, &b->link);
}

static bool leave(struct feed_binding *b)
{
    return feed_leave(&b->self->set, &b->link);
}

static void free_link(struct feed_link *k)
{
    binding_free((struct feed_binding *)k);
}

static void quiet_link(struct feed_link *k)
{
    evtimer_del(((struct feed_binding *)k)->timer);
}

static const struct feed_set_ops set_ops = {free_link, quiet_link, free};

static void ask_delete(struct feed_binding *b)
{
    struct alarm_self *s = b->self;
    if (b->kind == AK_ONCE && b->daf != DAF_KEEP && !b->link.dead && s->env.delete_trigger) {
        wlog_debug("alarm", "once fired, asking to delete trigger=%s/%s%s", b->ns, b->trigger,
                   b->daf == DAF_RULES ? " and its rules" : "");
        s->env.delete_trigger(s->env.ctx, b->ns, b->trigger, b, b->daf == DAF_RULES);
    }
}

/* Fires (or drops, when paused) one slot at time `at`. False when the
 * binding was freed by a callback (unbind or stop from inside fire/save). */
static bool deliver(struct feed_binding *b, int64_t at)
{
    struct alarm_self *s = b->self;
    s->totals.events_in++;
    enter(b);
    bool ok = false;
    if (!b->paused) {
        int rc = s->env.fire(s->env.ctx, b->ns, b->trigger, b->payload);
        ok = rc == 0;
        if (!ok)
            wlog_debug("alarm", "fire refused trigger=%s/%s rc=%d", b->ns, b->trigger, rc);
    }
    if (ok) {
        b->fires++;
        b->last_fired = at;
        s->totals.fires++;
    } else {
        b->drops++;
        s->totals.drops++;
    }
    if (b->kind == AK_ONCE)
        b->done = true;
    if ((ok || b->kind == AK_ONCE) && !b->link.dead && s->env.save) {
        json_t *st = state_json(b);
        if (st)
            s->env.save(s->env.ctx, b->ns, b->trigger, st);
        json_decref(st);
    }
    if (ok) /* after the save: the deletion is never asked for an unrecorded fire */
        ask_delete(b);
    return leave(b);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct feed_binding *b = arg;
    int64_t now = plat_clock_real_ms(), at;
    if (b->delete_due) { /* re-bound after a fire whose deletion did not happen */
        b->delete_due = false;
        enter(b);
        ask_delete(b);
        if (leave(b))
            schedule(b, plat_clock_real_ms());
        return;
    }
    if (b->catchup) {
        b->catchup = false;
        if (stop_passed(b, now)) {
            schedule(b, now);
            return;
        }
        at = now;
    } else {
        if (b->next_ms < 0)
            return;
        if (now < b->next_ms) { /* the 60 s cap, or the clock went back */
            arm(b, now);
            return;
        }
        at = b->next_ms; /* lastFired is the slot: never re-fired */
    }
    if (!deliver(b, at))
        return;
    schedule(b, plat_clock_real_ms());
}

/* Applies a saved state (see the missed-fire policy above). */
static void restore(struct feed_binding *b, const json_t *state, int64_t now)
{
    int64_t last = -1;
    if (json_is_object(state)) {
        const json_t *v = json_object_get(state, "lastFired");
        if (json_is_integer(v) && json_integer_value(v) >= 0)
            last = json_integer_value(v);
        v = json_object_get(state, "fires");
        if (json_is_integer(v) && json_integer_value(v) >= 0)
            b->fires = (uint64_t)json_integer_value(v);
        v = json_object_get(state, "anchor");
        if (b->kind == AK_INTERVAL && b->anchor_saved && json_is_integer(v))
            b->anchor_ms = json_integer_value(v);
        else if (b->kind == AK_INTERVAL && b->anchor_saved && last >= 0)
            b->anchor_ms = last; /* a state without anchor: keep the phase */
        if (b->kind == AK_ONCE &&
            (last >= 0 || b->fires > 0 || json_is_true(json_object_get(state, "done"))))
            b->done = true;
        /* it fired (core took it) but its trigger is still here: ask again */
        b->delete_due = b->kind == AK_ONCE && b->daf != DAF_KEEP && last >= 0;
    }
    b->last_fired = last;
    if (b->kind == AK_ONCE) {
        /* a passed date that never had its turn fires now */
        b->catchup = !b->done && b->date_ms <= now;
    } else if (last >= 0) {
        int64_t missed = slot_after(b, last);
        b->catchup = missed >= 0 && missed <= now && !stop_passed(b, now) &&
                     (b->stop_ms < 0 || missed <= b->stop_ms);
    }
    schedule(b, now);
}

/* ---- ops -------------------------------------------------------------- */

static int alarm_start(const struct feed_env *env, void **self, struct wisp_err *err)
{
    if (!env || !env->base || !env->fire)
        return wisp_err_set(err, -EINVAL, "alarm: needs an event base and a fire callback");
    struct alarm_self *s = calloc(1, sizeof *s);
    if (!s)
        return wisp_err_set(err, -ENOMEM, "alarm: out of memory");
    s->env = *env;
    s->env.mqtt_url = NULL;
    s->env.client_id = NULL;
    feed_set_init(&s->set, &set_ops, s);
    *self = s;
    return 0;
}

static void alarm_stop(void *self)
{
    struct alarm_self *s = self;
    if (s)
        feed_set_stop(&s->set);
}

static int alarm_bind(void *self, const char *ns, const char *trigger, const json_t *params,
                      const json_t *state, struct feed_binding **out, struct wisp_err *err)
{
    struct alarm_self *s = self;
    if (!json_is_object(params))
        return wisp_err_set(err, -EINVAL, "params: the alarm feed's parameters must be an object");
    struct feed_binding *b = calloc(1, sizeof *b);
    if (!b)
        return wisp_err_set(err, -ENOMEM, "alarm: out of memory");
    b->self = s;
    b->start_ms = b->stop_ms = b->next_ms = b->last_fired = -1;
    b->given = json_object();
    b->ns = strdup(ns);
    b->trigger = strdup(trigger);
    b->timer = evtimer_new(s->env.base, on_timer, b);
    int64_t now = plat_clock_real_ms();
    int rc;
    if (!b->given || !b->ns || !b->trigger || !b->timer)
        rc = wisp_err_set(err, -ENOMEM, "alarm: out of memory");
    else
        rc = parse_params(b, params, now, err);
    if (rc) {
        binding_free(b);
        return rc;
    }
    feed_set_add(&s->set, &b->link);
    restore(b, state, now);
    wlog_debug("alarm", "bound trigger=%s/%s kind=%s next=%lld catchup=%d", ns, trigger,
               kind_names[b->kind], (long long)b->next_ms, b->catchup);
    *out = b;
    return 0;
}

static void alarm_unbind(void *self, struct feed_binding *b)
{
    (void)self;
    if (!b)
        return;
    if (!feed_retire(&b->self->set, &b->link)) { /* inside its own fire: leave() frees it */
        evtimer_del(b->timer);
        return;
    }
    binding_free(b);
}

static void alarm_set_paused(void *self, struct feed_binding *b, bool paused)
{
    (void)self;
    b->paused = paused;
}

static json_t *ms_or_null(int64_t ms)
{
    return ms >= 0 ? json_integer(ms) : json_null();
}

static json_t *alarm_status(void *self, const struct feed_binding *b)
{
    (void)self;
    json_t *st = json_object();
    if (!st)
        return NULL;
    json_object_set_new(st, "kind", json_string(kind_names[b->kind]));
    json_object_update(st, b->given);
    json_object_set(st, "trigger_payload", b->payload);
    json_object_set_new(st, "paused", json_boolean(b->paused));
    const char *phase = "scheduled";
    int64_t next = b->catchup ? plat_clock_real_ms() : b->next_ms;
    if (next < 0) {
        if (b->kind == AK_ONCE && b->done)
            phase = "done";
        else if (b->stop_ms >= 0)
            phase = "stopped"; /* stopDate passed (or no slot before it) */
        else
            phase = "done";
    }
    json_object_set_new(st, "state", json_string(phase));
    json_object_set_new(st, "nextFire", ms_or_null(next));
    json_object_set_new(st, "lastFired", ms_or_null(b->last_fired));
    json_object_set_new(st, "fires", json_integer((json_int_t)b->fires));
    json_object_set_new(st, "drops", json_integer((json_int_t)b->drops));
    return st;
}

static void alarm_counters(void *self, struct feed_counters *out)
{
    const struct alarm_self *s = self;
    *out = s->totals;
}

const struct feed_ops feed_alarm_ops = {
    .kind = "alarm",
    .start = alarm_start,
    .stop = alarm_stop,
    .bind = alarm_bind,
    .unbind = alarm_unbind,
    .set_paused = alarm_set_paused,
    .status = alarm_status,
    .counters = alarm_counters,
};
