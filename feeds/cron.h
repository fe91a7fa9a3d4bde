/* feeds/cron.h - cron expressions, fixed UTC offsets and ISO 8601 dates for
 * the alarm feed (feeds/alarm.c). Pure computation: no clock, no timezone
 * database, no locale; all times are epoch milliseconds.
 *
 * Syntax: 5 fields "min hour dom month dow" or 6 with a leading seconds
 * field, separated by blanks. Each field is a comma list of items: "*",
 * a number or name, a range "a-b", each optionally followed by a step
 * "/n" ("a/n" means a-max/n, as in cronie). Month names JAN-DEC, weekday
 * names SUN-SAT (case-insensitive, also inside ranges); day-of-week 0 and
 * 7 are both Sunday. Macros @yearly @annually @monthly @weekly @daily
 * @midnight @hourly. Day matching follows Vixie cron: when both the
 * day-of-month and the day-of-week field are restricted (neither starts
 * with '*') a day matches if EITHER does; otherwise both must match. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "wisp.h"

struct cron_expr {
    uint64_t sec;            /* bit n: second n (0-59); only bit 0 for 5 fields */
    uint64_t min;            /* bit n: minute n (0-59) */
    uint32_t hour;           /* bit n: hour n (0-23) */
    uint32_t dom;            /* bit n: day of month n (1-31) */
    uint16_t month;          /* bit n: month n (1-12) */
    uint8_t dow;             /* bit n: weekday n (0 Sunday - 6 Saturday) */
    bool dom_star, dow_star; /* the field started with '*' (Vixie) */
    bool has_seconds;        /* 6 fields */
};

/* Parses text. 0, or -EINVAL with err naming the field, e.g.
 * "cron: minute field '61' out of range 0-59". Expressions that can never
 * match (such as "0 0 30 2 *") are refused too. */
int cron_parse(const char *text, struct cron_expr *out, struct wisp_err *err) WISP_MUST_CHECK;

/* The first matching time strictly after after_ms, in epoch ms (always a
 * whole second), evaluating the fields in local time = UTC + tz_offset_s.
 * -1 when none within the next 60 years (cannot happen for an expression
 * cron_parse accepted, short of the end of the calendar). */
int64_t cron_next(const struct cron_expr *c, int tz_offset_s, int64_t after_ms);

/* Parses a timezone: "UTC", "GMT", "Etc/UTC", "Etc/GMT", "Z", or a fixed
 * offset "+HH:MM", "-HH:MM", "+HHMM", "+HH" (optionally after "UTC"/"GMT"),
 * at most 14 hours. *offset_s gets seconds east of UTC. 0 or -EINVAL with
 * err (zone names other than UTC need a timezone database Wisp lacks). */
int cron_parse_tz(const char *tz, int *offset_s, struct wisp_err *err) WISP_MUST_CHECK;

/* Parses an ISO 8601 date "YYYY-MM-DD" or date-time
 * "YYYY-MM-DDTHH:MM[:SS[.fff]]" ('T', 't' or a space) with an optional
 * "Z" or offset (+HH:MM, +HHMM, +HH); without an offset the time is UTC.
 * 0 or -EINVAL. */
int cron_parse_iso(const char *s, int64_t *ms) WISP_MUST_CHECK;

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
int64_t cron_days_from_civil(int64_t y, int m, int d);
