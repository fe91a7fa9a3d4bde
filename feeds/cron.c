/* feeds/cron.c - cron expressions, fixed UTC offsets and ISO 8601 dates
 * (see cron.h). Calendar arithmetic is done by hand on days since the
 * epoch (proleptic Gregorian), so nothing depends on TZ, the C library's
 * timegm or a timezone database. */
#include "cron.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CRON_MAX_LEN 512
#define CRON_HORIZON_YEARS 60

/* ---- calendar --------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t cron_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* ---- parsing ---------------------------------------------------------- */

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct field_def {
    const char *name;
    int lo, hi;  /* values accepted */
    int open_hi; /* the end of '*' and of "a/n" (6 for weekdays: 7 is an alias) */
    const char *const *names;
    int n_names;
    int name_base;    /* value of names[0] */
    const char *what; /* for "is not a number or ..." */
};

static const struct field_def field_defs[6] = {
    {"second", 0, 59, 59, NULL, 0, 0, NULL},
    {"minute", 0, 59, 59, NULL, 0, 0, NULL},
    {"hour", 0, 23, 23, NULL, 0, 0, NULL},
    {"day-of-month", 1, 31, 31, NULL, 0, 0, NULL},
    {"month", 1, 12, 12, month_names, 12, 1, "month name"},
    {"day-of-week", 0, 7, 6, dow_names, 7, 0, "weekday name"},
};

static int perr(struct wisp_err *err, const struct field_def *f, const char *s, size_t n,
                const char *what)
{
    return wisp_err_set(err, -EINVAL, "cron: %s field '%.*s' %s", f->name, (int)n, s, what);
}

/* A number or name s[0..n) of field f; item[0..in) is the list item, for
 * messages. */
static int parse_value(const struct field_def *f, const char *s, size_t n, const char *item,
                       size_t in, int *out, struct wisp_err *err)
{
    if (n == 0)
        return perr(err, f, item, in, "is incomplete");
    bool digits = true;
    for (size_t i = 0; i < n; i++)
        digits = digits && isdigit((unsigned char)s[i]);
    if (digits) {
        long v = 0;
        for (size_t i = 0; i < n && v <= 1000; i++)
            v = v * 10 + (s[i] - '0');
        if (v < f->lo || v > f->hi) {
            char what[48];
            snprintf(what, sizeof what, "out of range %d-%d", f->lo, f->hi);
            return perr(err, f, s, n, what);
        }
        *out = (int)v;
        return 0;
    }
    if (f->names && n == 3) {
        for (int i = 0; i < f->n_names; i++) {
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->name_base + i;
                return 0;
            }
        }
    }
    char what[64];
    snprintf(what, sizeof what, "is not a number%s%s", f->what ? " or " : "",
             f->what ? f->what : "");
    return perr(err, f, s, n, what);
}

/* One list item: "*", "v", "a-b", each with an optional "/step". */
static int parse_item(const struct field_def *f, const char *s, size_t n, uint64_t *bits,
                      struct wisp_err *err)
{
    const char *slash = memchr(s, '/', n);
    size_t rn = slash ? (size_t)(slash - s) : n;
    int a, b, step = 1;
    int rc;
    if (rn == 1 && s[0] == '*') {
        a = f->lo;
        b = f->open_hi;
    } else {
        const char *dash = memchr(s, '-', rn);
        if (dash) {
            size_t an = (size_t)(dash - s);
            if ((rc = parse_value(f, s, an, s, n, &a, err)) ||
                (rc = parse_value(f, dash + 1, rn - an - 1, s, n, &b, err)))
                return rc;
            if (a > b)
                return perr(err, f, s, rn, "is a reversed range");
        } else {
            if ((rc = parse_value(f, s, rn, s, n, &a, err)))
                return rc;
            b = slash ? f->open_hi : a;
            if (b < a) /* "7/2" in day-of-week */
                b = a;
        }
    }
    if (slash) {
        const char *st = slash + 1;
        size_t sn = n - rn - 1;
        int max = f->open_hi - f->lo + 1;
        long v = 0;
        bool ok = sn > 0;
        for (size_t i = 0; i < sn && ok; i++) {
            ok = isdigit((unsigned char)st[i]) != 0;
            if (v <= 1000)
                v = v * 10 + (st[i] - '0');
        }
        if (!ok || v < 1 || v > max) {
            char what[48];
            snprintf(what, sizeof what, "step must be a number 1-%d", max);
            return perr(err, f, s, n, what);
        }
        step = (int)v;
    }
    for (int v = a; v <= b; v += step)
        *bits |= (uint64_t)1 << v;
    return 0;
}

static int parse_field(const struct field_def *f, const char *s, size_t n, uint64_t *bits,
                       bool *star, struct wisp_err *err)
{
    *bits = 0;
    *star = s[0] == '*';
    const char *p = s, *end = s + n;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *ie = comma ? comma : end;
        if (ie == p)
            return perr(err, f, s, n, "has an empty list item");
        int rc = parse_item(f, p, (size_t)(ie - p), bits, err);
        if (rc)
            return rc;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static const struct {
    const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

int cron_parse(const char *text, struct cron_expr *out, struct wisp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return wisp_err_set(err, -EINVAL, "cron: missing expression");
    size_t len = strlen(text);
    if (len > CRON_MAX_LEN)
        return wisp_err_set(err, -EINVAL, "cron: expression too long (over %d characters)",
                            CRON_MAX_LEN);
    const char *p = text;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '@') {
        size_t n = strcspn(p, " \t");
        const char *rest = p + n;
        while (*rest == ' ' || *rest == '\t')
            rest++;
        for (size_t i = 0; i < WISP_ARRAY_LEN(macros) && !*rest; i++)
            if (strlen(macros[i].name) == n && strncasecmp(p, macros[i].name, n) == 0)
                return cron_parse(macros[i].expr, out, err);
        return wisp_err_set(err, -EINVAL, "cron: unsupported macro '%.*s'", (int)n, p);
    }
    const char *tok[7];
    size_t tlen[7];
    int nt = 0;
    while (*p) {
        size_t n = strcspn(p, " \t");
        if (nt < 7) {
            tok[nt] = p;
            tlen[nt] = n;
        }
        nt++;
        p += n;
        while (*p == ' ' || *p == '\t')
            p++;
    }
    if (nt != 5 && nt != 6)
        return wisp_err_set(err, -EINVAL,
                            "cron: expected 5 fields (minute hour day-of-month month "
                            "day-of-week) or 6 (seconds first), got %d",
                            nt);
    int first = nt == 5 ? 1 : 0;
    uint64_t bits[6];
    bool star[6] = {false};
    bits[0] = 1; /* second 0 for 5 fields */
    for (int i = first; i < 6; i++) {
        int rc =
            parse_field(&field_defs[i], tok[i - first], tlen[i - first], &bits[i], &star[i], err);
        if (rc)
            return rc;
    }
    if (bits[5] & (1u << 7))
        bits[5] = (bits[5] & ~(uint64_t)(1u << 7)) | 1u;
    out->sec = bits[0];
    out->min = bits[1];
    out->hour = (uint32_t)bits[2];
    out->dom = (uint32_t)bits[3];
    out->month = (uint16_t)bits[4];
    out->dow = (uint8_t)bits[5];
    out->dom_star = star[3];
    out->dow_star = star[5];
    out->has_seconds = nt == 6;
    /* Both must match when either starts with '*': then some listed day
     * must exist in some listed month (Feb counts 29 days). */
    if (out->dom_star || out->dow_star) {
        bool any = false;
        for (int m = 1; m <= 12 && !any; m++) {
            if (!(out->month & (1u << m)))
                continue;
            int maxd = m == 2 ? 29 : days_in_month(2001, m);
            for (int d = 1; d <= maxd && !any; d++)
                any = (out->dom & (1u << d)) != 0;
        }
        if (!any)
            return wisp_err_set(err, -EINVAL,
                                "cron: day-of-month field '%.*s' never occurs in month field "
                                "'%.*s'",
                                (int)tlen[3 - first], tok[3 - first], (int)tlen[4 - first],
                                tok[4 - first]);
    }
    return 0;
}

/* ---- next time -------------------------------------------------------- */

static bool day_matches(const struct cron_expr *c, int d, int wd)
{
    bool dm = (c->dom & (1u << d)) != 0, wm = (c->dow & (1u << wd)) != 0;
    return (c->dom_star || c->dow_star) ? (dm && wm) : (dm || wm);
}

int64_t cron_next(const struct cron_expr *c, int tz_offset_s, int64_t after_ms)
{
    int64_t t = floor_div(after_ms, 1000) + 1 + tz_offset_s; /* local seconds */
    int64_t y0 = 0, y;
    int m, d;
    civil_from_days(floor_div(t, 86400), &y0, &m, &d);
    for (;;) {
        int64_t days = floor_div(t, 86400);
        int64_t sod = t - days * 86400;
        civil_from_days(days, &y, &m, &d);
        if (y > y0 + CRON_HORIZON_YEARS)
            return -1;
        if (!(c->month & (1u << m))) {
            t = cron_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * 86400;
            continue;
        }
        int wd = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
        if (!day_matches(c, d, wd)) {
            t = (days + 1) * 86400;
            continue;
        }
        int h = (int)(sod / 3600), mi = (int)(sod / 60 % 60), s = (int)(sod % 60);
        if (!(c->hour & (1u << h))) {
            t = days * 86400 + (h + 1) * 3600;
            continue;
        }
        if (!(c->min & ((uint64_t)1 << mi))) {
            t = days * 86400 + h * 3600 + (mi + 1) * 60;
            continue;
        }
        if (!(c->sec & ((uint64_t)1 << s))) {
            t++;
            continue;
        }
        return (t - tz_offset_s) * 1000;
    }
}

/* ---- timezones and dates ---------------------------------------------- */

/* Exactly n digits at *p; advances. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* "+HH:MM", "+HHMM" or "+HH" (sign required) up to the end of the string. */
static bool parse_offset(const char *p, int *offset_s)
{
    int sign = *p == '+' ? 1 : *p == '-' ? -1 : 0;
    int hh, mm = 0;
    if (!sign)
        return false;
    p++;
    if (!digits(&p, 2, &hh))
        return false;
    if (*p == ':')
        p++;
    if (*p && !digits(&p, 2, &mm))
        return false;
    if (*p || hh > 14 || mm > 59 || hh * 60 + mm > 14 * 60)
        return false;
    *offset_s = sign * (hh * 3600 + mm * 60);
    return true;
}

int cron_parse_tz(const char *tz, int *offset_s, struct wisp_err *err)
{
    static const char *const utc[] = {"UTC", "GMT", "Etc/UTC", "Etc/GMT", "Z", "UCT", "Zulu"};
    if (!tz)
        return wisp_err_set(err, -EINVAL, "timezone: missing");
    for (size_t i = 0; i < WISP_ARRAY_LEN(utc); i++) {
        if (strcasecmp(tz, utc[i]) == 0) {
            *offset_s = 0;
            return 0;
        }
    }
    const char *p = tz;
    if (strncasecmp(p, "UTC", 3) == 0 || strncasecmp(p, "GMT", 3) == 0)
        p += 3;
    if (strlen(tz) <= 16 && parse_offset(p, offset_s))
        return 0;
    return wisp_err_set(err, -EINVAL,
                        "timezone: '%.64s' is not supported (use UTC or a fixed offset such "
                        "as +02:00 or -05:30)",
                        tz);
}

int cron_parse_iso(const char *s, int64_t *ms)
{
    if (!s)
        return -EINVAL;
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -EINVAL;
    if (*p) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return -EINVAL;
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return -EINVAL;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec))
                return -EINVAL;
            if (*p == '.' || *p == ',') {
                p++;
                int nd = 0;
                while (isdigit((unsigned char)*p)) {
                    if (nd < 3)
                        frac = frac * 10 + (*p - '0');
                    nd++;
                    p++;
                }
                if (nd == 0 || nd > 9)
                    return -EINVAL;
                for (; nd < 3; nd++)
                    frac *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return -EINVAL;
        if (*p == 'Z' || *p == 'z') {
            if (p[1])
                return -EINVAL;
        } else if (*p && !parse_offset(p, &off)) {
            return -EINVAL;
        }
    }
    int64_t t = cron_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    *ms = t * 1000 + frac;
    return 0;
}
