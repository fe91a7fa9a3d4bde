/* tests/unit/test_cron.c - the alarm feed's cron parser, next-time
 * computation, timezone offsets and ISO 8601 dates (feeds/cron.h). Pure
 * computation against fixed reference times: no clock, no event loop. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cron.h"

/* An ISO date the tests trust (cron_iso_known_values checks the parser
 * against epoch numbers computed independently). */
static int64_t iso(const char *s)
{
    int64_t ms = -1;
    int rc = cron_parse_iso(s, &ms);
    if (rc)
        fprintf(stderr, "  bad reference date %s\n", s);
    CHECK_EQ_INT(rc, 0);
    return ms;
}

static bool bit(uint64_t set, int n)
{
    return (set >> n) & 1u;
}

/* The members of a bit set as "a,b,c" for readable comparisons. */
static const char *members(uint64_t set, int lo, int hi, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = lo; i <= hi; i++) {
        if (bit(set, i))
            len += (size_t)snprintf(buf + len, cap - len, "%s%d", len ? "," : "", i);
    }
    return buf;
}

static void cron_iso_known_values(void)
{
    struct {
        const char *text;
        int64_t ms;
    } rows[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2024-06-01T12:00:00Z", INT64_C(1717243200000)},
        {"2024-06-01T12:00:00.250Z", INT64_C(1717243200250)},
        {"2024-06-01T12:00:00.25Z", INT64_C(1717243200250)},
        {"2024-06-01T12:00:00.123456789Z", INT64_C(1717243200123)},
        {"2024-06-01T12:00:00", INT64_C(1717243200000)},
        {"2024-06-01T12:00Z", INT64_C(1717243200000)},
        {"2024-06-01 12:00:00z", INT64_C(1717243200000)},
        {"2024-06-01T14:00:00+02:00", INT64_C(1717243200000)},
        {"2024-06-01T14:00:00+0200", INT64_C(1717243200000)},
        {"2024-06-01T14:00:00+02", INT64_C(1717243200000)},
        {"2024-06-01T06:30:00-05:30", INT64_C(1717243200000)},
        {"2024-06-03", INT64_C(1717372800000)},
        {"2024-02-29T00:00:00Z", INT64_C(1709164800000)},
        {"2000-03-01T00:00:00Z", INT64_C(951868800000)},
        {"2100-03-01T00:00:00Z", INT64_C(4107542400000)},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        int64_t ms = -1;
        CHECK_EQ_INT(cron_parse_iso(rows[i].text, &ms), 0);
        if (ms != rows[i].ms)
            fprintf(stderr, "  %s -> %lld\n", rows[i].text, (long long)ms);
        CHECK_EQ_INT(ms, rows[i].ms);
    }
    CHECK_EQ_INT(cron_days_from_civil(1970, 1, 1), 0);
    CHECK_EQ_INT(cron_days_from_civil(2024, 6, 1), 19875);
}

static void cron_iso_rejects(void)
{
    const char *bad[] = {"",
                         "yesterday",
                         "2024",
                         "2024-06",
                         "2024-13-01",
                         "2024-00-10",
                         "2023-02-29",
                         "2024-02-30",
                         "2024-04-31",
                         "2024-06-01T",
                         "2024-06-01T25:00:00Z",
                         "2024-06-01T12:60:00Z",
                         "2024-06-01T12:00:61Z",
                         "2024-06-01T12:00:00.Z",
                         "2024-06-01T12:00:00Zx",
                         "2024-06-01T12:00:00+2",
                         "2024-06-01T12:00:00+15:00",
                         "2024-06-01T12:00:00+02:60",
                         "2024-06-01X12:00:00Z",
                         "24-06-01",
                         "2024/06/01",
                         "1717243200000"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        int64_t ms = 0;
        int rc = cron_parse_iso(bad[i], &ms);
        if (rc != -EINVAL)
            fprintf(stderr, "  '%s' accepted\n", bad[i]);
        CHECK_EQ_INT(rc, -EINVAL);
    }
    int64_t ms;
    CHECK_EQ_INT(cron_parse_iso(NULL, &ms), -EINVAL);
}

static void cron_timezones(void)
{
    struct {
        const char *tz;
        int off;
    } good[] = {{"UTC", 0},
                {"utc", 0},
                {"GMT", 0},
                {"Etc/UTC", 0},
                {"Z", 0},
                {"+02:00", 7200},
                {"-05:30", -19800},
                {"+0530", 19800},
                {"-03", -10800},
                {"+14:00", 50400},
                {"-12:00", -43200},
                {"UTC+01:00", 3600},
                {"GMT-08:00", -28800},
                {"+00:00", 0}};
    for (size_t i = 0; i < WISP_ARRAY_LEN(good); i++) {
        int off = 12345;
        struct wisp_err err = {0};
        int rc = cron_parse_tz(good[i].tz, &off, &err);
        if (rc)
            fprintf(stderr, "  '%s': %s\n", good[i].tz, err.msg);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(off, good[i].off);
    }
    const char *bad[] = {
        "",   "Europe/Berlin", "America/New_York", "EST",  "+25:00",   "+14:30", "+02:60", "02:00",
        "+2", "+02:00 ",       "Etc/GMT+2",        "UTC+", "+02:00:00"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        int off = 0;
        struct wisp_err err = {0};
        int rc = cron_parse_tz(bad[i], &off, &err);
        if (rc != -EINVAL)
            fprintf(stderr, "  '%s' accepted\n", bad[i]);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK(strstr(err.msg, "timezone") != NULL);
        CHECK(strstr(err.msg, "+02:00") != NULL); /* says what would work */
    }
    struct wisp_err err = {0};
    int off;
    CHECK_EQ_INT(cron_parse_tz("Europe/Berlin", &off, &err), -EINVAL);
    CHECK(strstr(err.msg, "'Europe/Berlin' is not supported") != NULL);
}

static void cron_parse_valid_table(void)
{
    /* field sets as lists; NULL = not checked */
    struct {
        const char *expr, *sec, *min, *hour, *dom, *month, *dow;
        bool dom_star, dow_star, has_seconds;
    } rows[] = {
        {"* * * * *", "0", NULL, NULL, NULL, NULL, "0,1,2,3,4,5,6", true, true, false},
        {"*/15 * * * *", "0", "0,15,30,45", NULL, NULL, NULL, NULL, true, true, false},
        {"0 9 * * MON-FRI", "0", "0", "9", NULL, NULL, "1,2,3,4,5", true, false, false},
        {"0 9 * * mon-fri", "0", "0", "9", NULL, NULL, "1,2,3,4,5", true, false, false},
        {"5 4 1,15 JAN,mar-May *", "0", "5", "4", "1,15", "1,3,4,5", NULL, false, true, false},
        {"0 0 * * 7", NULL, NULL, NULL, NULL, NULL, "0", true, false, false},
        {"0 0 * * 0", NULL, NULL, NULL, NULL, NULL, "0", true, false, false},
        {"0 0 * * 5-7", NULL, NULL, NULL, NULL, NULL, "0,5,6", true, false, false},
        {"0 0 * * SAT,SUN", NULL, NULL, NULL, NULL, NULL, "0,6", true, false, false},
        {"1-10/3 * * * *", "0", "1,4,7,10", NULL, NULL, NULL, NULL, true, true, false},
        {"5/20 * * * *", "0", "5,25,45", NULL, NULL, NULL, NULL, true, true, false},
        {"0 */6 * * *", "0", "0", "0,6,12,18", NULL, NULL, NULL, true, true, false},
        {"0 0 */10 * *", NULL, NULL, NULL, "1,11,21,31", NULL, NULL, true, true, false},
        {"0 0 1 */3 *", NULL, NULL, NULL, "1", "1,4,7,10", NULL, false, true, false},
        {"0 0 13 * FRI", NULL, NULL, NULL, "13", NULL, "5", false, false, false},
        {"59 23 31 12 *", "0", "59", "23", "31", "12", NULL, false, true, false},
        {"*/1 * * * * *", NULL, NULL, NULL, NULL, NULL, NULL, true, true, true},
        {"*/10 * * * * *", "0,10,20,30,40,50", NULL, NULL, NULL, NULL, NULL, true, true, true},
        {"30 0 0 1 1 *", "30", "0", "0", "1", "1", NULL, false, true, true},
        {"  0\t9  * *\tMON ", "0", "0", "9", NULL, NULL, "1", true, false, false},
        {"0,30 8-17 * * 1-5", "0", "0,30", "8,9,10,11,12,13,14,15,16,17", NULL, NULL, "1,2,3,4,5",
         true, false, false},
        {"@hourly", "0", "0", NULL, NULL, NULL, NULL, true, true, false},
        {"@daily", "0", "0", "0", NULL, NULL, NULL, true, true, false},
        {"@weekly", "0", "0", "0", NULL, NULL, "0", true, false, false},
        {"@yearly", "0", "0", "0", "1", "1", NULL, false, true, false},
        {"0 0 29 2 *", NULL, NULL, NULL, "29", "2", NULL, false, true, false},
        {"0 0 30 2 MON", NULL, NULL, NULL, "30", "2", "1", false, false, false},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        struct cron_expr c;
        struct wisp_err err = {0};
        int rc = cron_parse(rows[i].expr, &c, &err);
        if (rc) {
            fprintf(stderr, "  '%s': %s\n", rows[i].expr, err.msg);
            CHECK_EQ_INT(rc, 0);
            continue;
        }
        char buf[256];
        if (rows[i].sec)
            CHECK_STREQ(members(c.sec, 0, 59, buf, sizeof buf), rows[i].sec);
        if (rows[i].min)
            CHECK_STREQ(members(c.min, 0, 59, buf, sizeof buf), rows[i].min);
        if (rows[i].hour)
            CHECK_STREQ(members(c.hour, 0, 23, buf, sizeof buf), rows[i].hour);
        if (rows[i].dom)
            CHECK_STREQ(members(c.dom, 1, 31, buf, sizeof buf), rows[i].dom);
        if (rows[i].month)
            CHECK_STREQ(members(c.month, 1, 12, buf, sizeof buf), rows[i].month);
        if (rows[i].dow)
            CHECK_STREQ(members(c.dow, 0, 7, buf, sizeof buf), rows[i].dow);
        if (c.dom_star != rows[i].dom_star || c.dow_star != rows[i].dow_star ||
            c.has_seconds != rows[i].has_seconds)
            fprintf(stderr, "  '%s': flags\n", rows[i].expr);
        CHECK_EQ_INT(c.dom_star, rows[i].dom_star);
        CHECK_EQ_INT(c.dow_star, rows[i].dow_star);
        CHECK_EQ_INT(c.has_seconds, rows[i].has_seconds);
    }
    /* 6 fields: every second; 5 fields: second 0 only */
    struct cron_expr c;
    CHECK_EQ_INT(cron_parse("* * * * * *", &c, NULL), 0);
    CHECK(c.sec == (((uint64_t)1 << 60) - 1));
    CHECK_EQ_INT(cron_parse("* * * * *", &c, NULL), 0);
    CHECK(c.sec == 1);
    CHECK(c.min == (((uint64_t)1 << 60) - 1));
}

static void cron_parse_invalid_table(void)
{
    struct {
        const char *expr, *msg;
    } rows[] = {
        {"61 * * * *", "cron: minute field '61' out of range 0-59"},
        {"* 24 * * *", "cron: hour field '24' out of range 0-23"},
        {"* * 0 * *", "cron: day-of-month field '0' out of range 1-31"},
        {"* * 32 * *", "cron: day-of-month field '32' out of range 1-31"},
        {"* * * 13 *", "cron: month field '13' out of range 1-12"},
        {"* * * 0 *", "cron: month field '0' out of range 1-12"},
        {"* * * * 8", "cron: day-of-week field '8' out of range 0-7"},
        {"60 * * * * *", "cron: second field '60' out of range 0-59"},
        {"0 1-61 * * * *", "cron: minute field '61' out of range 0-59"},
        {"1,99 * * * *", "cron: minute field '99' out of range 0-59"},
        {"99999999999999 * * * *", "cron: minute field '99999999999999' out of range 0-59"},
        {"* * * *", "cron: expected 5 fields"},
        {"* * * * * * *", "got 7"},
        {"", "got 0"},
        {"   ", "got 0"},
        {"*/0 * * * *", "cron: minute field '*/0' step must be a number 1-60"},
        {"*/61 * * * *", "cron: minute field '*/61' step must be a number 1-60"},
        {"*/x * * * *", "cron: minute field '*/x' step must be a number"},
        {"*/ * * * *", "cron: minute field '*/' step must be a number"},
        {"5-1 * * * *", "cron: minute field '5-1' is a reversed range"},
        {"* * * * FRI-MON", "cron: day-of-week field 'FRI-MON' is a reversed range"},
        {"a * * * *", "cron: minute field 'a' is not a number"},
        {"* * * FOO *", "cron: month field 'FOO' is not a number or month name"},
        {"* * * JANUARY *", "cron: month field 'JANUARY' is not a number or month name"},
        {"* * * * MON-FOO", "cron: day-of-week field 'FOO' is not a number or weekday name"},
        {"* * * MON *", "cron: month field 'MON' is not a number or month name"},
        {"* * * * JAN", "cron: day-of-week field 'JAN' is not a number or weekday name"},
        {"MON * * * *", "cron: minute field 'MON' is not a number"},
        {"1,,2 * * * *", "cron: minute field '1,,2' has an empty list item"},
        {"1, * * * *", "cron: minute field '1,' has an empty list item"},
        {",1 * * * *", "cron: minute field ',1' has an empty list item"},
        {"-1 * * * *", "cron: minute field '-1' is incomplete"},
        {"1- * * * *", "cron: minute field '1-' is incomplete"},
        {"1-2-3 * * * *", "cron: minute field '2-3' is not a number"},
        {"*-5 * * * *", "cron: minute field '*' is not a number"},
        {"1.5 * * * *", "cron: minute field '1.5' is not a number"},
        {"? * * * *", "cron: minute field '?' is not a number"},
        {"0 0 30 2 *", "cron: day-of-month field '30' never occurs in month field '2'"},
        {"0 0 31 4,6,9,11 *", "never occurs"},
        {"0 0 31 APR *", "never occurs"},
        {"@reboot", "cron: unsupported macro '@reboot'"},
        {"@hourly x", "cron: unsupported macro '@hourly'"},
        {"@", "unsupported macro"},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        struct cron_expr c;
        struct wisp_err err = {0};
        int rc = cron_parse(rows[i].expr, &c, &err);
        if (rc != -EINVAL || !strstr(err.msg, rows[i].msg))
            fprintf(stderr, "  '%s': rc %d '%s' lacks '%s'\n", rows[i].expr, rc, err.msg,
                    rows[i].msg);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK_EQ_INT(err.code, -EINVAL);
        CHECK(strstr(err.msg, rows[i].msg) != NULL);
    }
    /* the exact message the API shows */
    struct cron_expr c;
    struct wisp_err err = {0};
    CHECK_EQ_INT(cron_parse("61 * * * *", &c, &err), -EINVAL);
    CHECK_STREQ(err.msg, "cron: minute field '61' out of range 0-59");
    CHECK_EQ_INT(cron_parse(NULL, &c, &err), -EINVAL);
    char long_expr[600];
    memset(long_expr, '1', sizeof long_expr - 1);
    long_expr[sizeof long_expr - 1] = '\0';
    CHECK_EQ_INT(cron_parse(long_expr, &c, &err), -EINVAL);
    CHECK(strstr(err.msg, "too long") != NULL);
    /* errors without an err pointer */
    CHECK_EQ_INT(cron_parse("61 * * * *", &c, NULL), -EINVAL);
}

static void cron_next_table(void)
{
    struct {
        const char *expr, *tz, *from, *want;
    } rows[] = {
        /* weekdays at 9 from a Saturday: Monday */
        {"0 9 * * MON-FRI", "UTC", "2024-06-01T12:00:00Z", "2024-06-03T09:00:00Z"},
        {"0 9 * * MON-FRI", "UTC", "2024-06-03T09:00:00Z", "2024-06-04T09:00:00Z"},
        {"0 9 * * MON-FRI", "UTC", "2024-06-03T08:59:59.999Z", "2024-06-03T09:00:00Z"},
        {"0 9 * * MON-FRI", "UTC", "2024-06-07T09:00:00Z", "2024-06-10T09:00:00Z"},
        /* the same in local time east and west of UTC */
        {"0 9 * * MON-FRI", "+02:00", "2024-06-01T12:00:00Z", "2024-06-03T07:00:00Z"},
        {"0 9 * * MON-FRI", "-05:30", "2024-06-03T14:00:00Z", "2024-06-03T14:30:00Z"},
        {"0 9 * * MON-FRI", "-05:30", "2024-06-03T14:30:00Z", "2024-06-04T14:30:00Z"},
        /* local midnight far east is the previous UTC day */
        {"0 0 * * *", "+14:00", "2024-06-01T09:59:59Z", "2024-06-01T10:00:00Z"},
        {"0 0 * * SUN", "+14:00", "2024-06-01T09:00:00Z", "2024-06-01T10:00:00Z"},
        {"0 0 * * SAT", "-10:00", "2024-06-01T09:00:00Z", "2024-06-01T10:00:00Z"},
        /* every quarter hour; strictly after */
        {"*/15 * * * *", "UTC", "2024-06-01T10:07:30Z", "2024-06-01T10:15:00Z"},
        {"*/15 * * * *", "UTC", "2024-06-01T10:15:00Z", "2024-06-01T10:30:00Z"},
        {"*/15 * * * *", "UTC", "2024-06-01T23:50:00Z", "2024-06-02T00:00:00Z"},
        {"*/15 * * * *", "+05:30", "2024-06-01T10:07:30Z", "2024-06-01T10:15:00Z"},
        /* Feb 29: leap years only, 2100 is not one */
        {"0 0 29 2 *", "UTC", "2025-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
        {"0 0 29 2 *", "UTC", "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z"},
        {"0 0 29 2 *", "UTC", "2024-01-15T00:00:00Z", "2024-02-29T00:00:00Z"},
        {"0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"},
        /* Vixie: both restricted, either matches */
        {"0 0 13 * MON", "UTC", "2024-09-10T00:00:00Z", "2024-09-13T00:00:00Z"}, /* Fri 13th */
        {"0 0 13 * MON", "UTC", "2024-09-13T00:00:00Z", "2024-09-16T00:00:00Z"}, /* Monday */
        {"0 0 1 * FRI", "UTC", "2024-05-25T00:00:00Z", "2024-05-31T00:00:00Z"},
        /* '*'-led day field: both must match */
        {"0 0 */2 * MON", "UTC", "2024-09-01T00:00:00Z", "2024-09-09T00:00:00Z"},
        {"0 0 * * MON", "UTC", "2024-09-10T00:00:00Z", "2024-09-16T00:00:00Z"},
        {"0 0 13 * *", "UTC", "2024-09-14T00:00:00Z", "2024-10-13T00:00:00Z"},
        /* year rollover */
        {"59 23 31 12 *", "UTC", "2024-12-31T23:59:00Z", "2025-12-31T23:59:00Z"},
        {"59 23 31 12 *", "UTC", "2024-06-01T00:00:00Z", "2024-12-31T23:59:00Z"},
        {"0 0 1 1 *", "UTC", "2024-12-31T23:59:59.999Z", "2025-01-01T00:00:00Z"},
        {"0 0 1 1 *", "+01:00", "2024-12-31T22:59:59Z", "2024-12-31T23:00:00Z"},
        /* short months are skipped */
        {"0 0 31 * *", "UTC", "2024-04-15T00:00:00Z", "2024-05-31T00:00:00Z"},
        {"0 0 31 * *", "UTC", "2024-05-31T00:00:00Z", "2024-07-31T00:00:00Z"},
        /* names, 7 = Sunday */
        {"0 0 1 JAN,JUL *", "UTC", "2024-02-01T00:00:00Z", "2024-07-01T00:00:00Z"},
        {"0 12 * * 7", "UTC", "2024-06-01T00:00:00Z", "2024-06-02T12:00:00Z"},
        {"30 2 * * *", "UTC", "2024-06-01T02:30:00.001Z", "2024-06-02T02:30:00Z"},
        /* six fields */
        {"*/10 * * * * *", "UTC", "2024-06-01T10:00:05.500Z", "2024-06-01T10:00:10Z"},
        {"* * * * * *", "UTC", "2024-06-01T10:00:05.999Z", "2024-06-01T10:00:06Z"},
        {"* * * * * *", "UTC", "2024-06-01T10:00:05Z", "2024-06-01T10:00:06Z"},
        {"30 0 0 1 1 *", "UTC", "2024-06-01T00:00:00Z", "2025-01-01T00:00:30Z"},
        {"*/1 * * * * *", "UTC", "2024-06-01T23:59:59Z", "2024-06-02T00:00:00Z"},
        {"@hourly", "UTC", "2024-06-01T10:00:00Z", "2024-06-01T11:00:00Z"},
        {"@hourly", "+05:30", "2024-06-01T10:00:00Z", "2024-06-01T10:30:00Z"},
        {"@weekly", "UTC", "2024-06-01T00:00:00Z", "2024-06-02T00:00:00Z"},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        struct cron_expr c;
        struct wisp_err err = {0};
        int off = 0;
        CHECK_EQ_INT(cron_parse(rows[i].expr, &c, &err), 0);
        CHECK_EQ_INT(cron_parse_tz(rows[i].tz, &off, &err), 0);
        int64_t got = cron_next(&c, off, iso(rows[i].from)), want = iso(rows[i].want);
        if (got != want)
            fprintf(stderr, "  '%s' %s from %s: got %lld want %lld (%s)\n", rows[i].expr,
                    rows[i].tz, rows[i].from, (long long)got, (long long)want, rows[i].want);
        CHECK_EQ_INT(got, want);
    }
}

static void cron_next_walks_forward(void)
{
    /* consecutive slots of a weekday schedule for four weeks: 20 of them,
     * strictly increasing, all at 09:00 local on Monday-Friday */
    struct cron_expr c;
    CHECK_EQ_INT(cron_parse("0 9 * * MON-FRI", &c, NULL), 0);
    int64_t t = iso("2024-06-01T00:00:00Z"), end = iso("2024-06-29T00:00:00Z");
    int n = 0;
    for (;;) {
        int64_t next = cron_next(&c, 3600, t);
        CHECK(next > t);
        if (next <= t || next >= end)
            break;
        int64_t local_s = next / 1000 + 3600;
        int64_t days = local_s / 86400;
        int wd = (int)((days + 4) % 7);
        CHECK(wd >= 1 && wd <= 5);
        CHECK_EQ_INT(local_s % 86400, 9 * 3600);
        t = next;
        n++;
    }
    CHECK_EQ_INT(n, 20);
    /* pre-epoch references and sub-second offsets do not break it */
    CHECK_EQ_INT(cron_parse("0 0 1 1 *", &c, NULL), 0);
    CHECK_EQ_INT(cron_next(&c, 0, -1), 0);
    CHECK_EQ_INT(cron_next(&c, 0, -86400000), 0);
}

static const struct check_test tests[] = {
    {"cron_iso_known_values", cron_iso_known_values},
    {"cron_iso_rejects", cron_iso_rejects},
    {"cron_timezones", cron_timezones},
    {"cron_parse_valid_table", cron_parse_valid_table},
    {"cron_parse_invalid_table", cron_parse_invalid_table},
    {"cron_next_table", cron_next_table},
    {"cron_next_walks_forward", cron_next_walks_forward},
};

CHECK_MAIN(tests)
