/* tools/cli_out.c - what the CLI prints, in wsk's words and layout, and
 * its error values.
 *
 * The formats are wsk's (the openwhisk-cli commands and the
 * ToSummaryRowString methods of openwhisk-client-go): "ok: created action hello", lists as a
 * header and one row per entity with the name padded to 70 columns, JSON
 * indented by four spaces. Scripts should not scrape these: every verb
 * takes --json and prints the server's documents instead.
 *
 * Colour (green "ok:", bold names) only when stdout is a terminal, as the
 * colour library wsk uses decides; the one module-static flag is set by
 * cli_out_init() and read here only. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "wjson.h"

static bool color;

void cli_out_init(void)
{
    color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
}

/* ==== errors ============================================================ */

int cli_fail(struct cli_err *err, int exit_code, const char *fmt, ...)
{
    if (!err)
        return -1;
    err->exit_code = exit_code ? exit_code : CLI_EXIT_GENERAL;
    err->status = 0;
    err->code[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

void cli_err_prefix(struct cli_err *err, const char *fmt, ...)
{
    char head[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    size_t h = strlen(head), m = strnlen(err->msg, sizeof err->msg - 1);
    if (h > sizeof err->msg - 1)
        h = sizeof err->msg - 1;
    if (h + m > sizeof err->msg - 1) /* the end of the message gives way */
        m = sizeof err->msg - 1 - h;
    memmove(err->msg + h, err->msg, m);
    memcpy(err->msg, head, h);
    err->msg[h + m] = '\0';
}

void cli_print_error(const struct cli_err *err, bool as_json)
{
    if (!as_json) {
        fprintf(stderr, "error: %s\n", err->msg);
        return;
    }
    json_t *j = json_pack("{s:s, s:s?, s:i, s:i}", "error", err->msg, "code",
                          err->code[0] ? err->code : NULL, "status", err->status, "exitCode",
                          err->exit_code);
    if (j)
        cli_print_json_line(stderr, j);
    else
        fprintf(stderr, "error: %s\n", err->msg);
    json_decref(j);
}

/* ==== plain output ====================================================== */

void cli_ok(const char *fmt, ...)
{
    fputs(color ? "\033[32mok:\033[0m " : "ok: ", stdout);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

const char *cli_bold(const char *s)
{
    static char buf[1024];
    if (!color)
        return s;
    snprintf(buf, sizeof buf, "\033[1m%s\033[0m", s);
    return buf;
}

static void print_json_flags(FILE *f, const json_t *j, size_t flags)
{
    char *s = json_dumps(j, flags | JSON_ENCODE_ANY);
    fputs(s ? s : "null", f);
    fputc('\n', f);
    free(s);
}

void cli_print_json(FILE *f, const json_t *j)
{
    print_json_flags(f, j, JSON_INDENT(4));
}

void cli_print_json_line(FILE *f, const json_t *j)
{
    print_json_flags(f, j, JSON_COMPACT);
}

/* ==== lists ============================================================= */

static const char *str_or(const json_t *o, const char *key, const char *def)
{
    const char *s = wjson_str(o, key);
    return s ? s : def;
}

/* "/NAMESPACE/NAME": wsk's first column. */
static void full_name(const json_t *it, char *buf, size_t cap)
{
    snprintf(buf, cap, "/%s/%s", str_or(it, "namespace", ""), str_or(it, "name", ""));
}

static void row_action(const json_t *it)
{
    char n[600];
    full_name(it, n, sizeof n);
    const char *kind = json_string_value(wjson_kv_get(json_object_get(it, "annotations"), "exec"));
    if (!kind)
        kind = str_or(json_object_get(it, "exec"), "kind", "");
    printf("%-70s %s %s\n", n, "private", kind);
}

static void row_package(const json_t *it)
{
    char n[600];
    full_name(it, n, sizeof n);
    printf("%-70s %s\n", n, json_is_true(json_object_get(it, "publish")) ? "shared" : "private");
}

static void row_trigger(const json_t *it)
{
    char n[600];
    full_name(it, n, sizeof n);
    printf("%-70s %s\n", n, "private");
}

static void row_rule(const json_t *it)
{
    char n[600];
    full_name(it, n, sizeof n);
    printf("%-70s %-20s %s\n", n, "private", str_or(it, "status", ""));
}

static void row_namespace(const json_t *it)
{
    printf("%s\n", json_is_string(it) ? json_string_value(it) : str_or(it, "name", ""));
}

static const struct list_fmt {
    const char *coll;
    void (*row)(const json_t *item);
} list_fmts[] = {
    {"actions", row_action}, {"packages", row_package},     {"triggers", row_trigger},
    {"rules", row_rule},     {"namespaces", row_namespace},
};

/* wsk's order with --name-sort: entities outside packages first, then by
 * namespace and name, ignoring case. */
static int by_name(const void *pa, const void *pb)
{
    const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    if (json_is_string(a) && json_is_string(b))
        return strcasecmp(json_string_value(a), json_string_value(b));
    const char *na = str_or(a, "namespace", ""), *nb = str_or(b, "namespace", "");
    bool pa_ = strchr(na, '/') != NULL, pb_ = strchr(nb, '/') != NULL;
    if (pa_ != pb_)
        return pa_ ? 1 : -1;
    char ka[600], kb[600];
    snprintf(ka, sizeof ka, "%s/%s", na, str_or(a, "name", ""));
    snprintf(kb, sizeof kb, "%s/%s", nb, str_or(b, "name", ""));
    return strcasecmp(ka, kb);
}

void cli_print_list(const char *coll, const json_t *items, bool sort)
{
    const struct list_fmt *f = NULL;
    for (size_t i = 0; i < WISP_ARRAY_LEN(list_fmts); i++)
        if (strcmp(list_fmts[i].coll, coll) == 0)
            f = &list_fmts[i];
    printf("%s\n", cli_bold(coll));
    size_t n = json_array_size(items);
    if (!f || n == 0)
        return;
    json_t **v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        if (!v) { /* out of memory: the server's order */
            f->row(json_array_get(items, i));
            continue;
        }
        v[i] = json_array_get(items, i);
    }
    if (v && sort)
        qsort(v, n, sizeof *v, by_name);
    for (size_t i = 0; v && i < n; i++)
        f->row(v[i]);
    free(v);
}

/* ==== activations ======================================================= */

/* A duration of ms milliseconds as Go's time.Duration prints it, the way
 * the wsk table shows it: 0s, 87ms, 1.5s, 2m3.25s, 1h0m0s. */
static void go_duration(long long ms, char *out, size_t cap)
{
    if (ms <= 0) {
        snprintf(out, cap, "0s");
        return;
    }
    if (ms < 1000) {
        snprintf(out, cap, "%lldms", ms);
        return;
    }
    long long h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
    char sec[32];
    if (frac) {
        snprintf(sec, sizeof sec, "%lld.%03lld", s, frac);
        for (char *e = sec + strlen(sec) - 1; *e == '0'; e--)
            *e = '\0';
    } else {
        snprintf(sec, sizeof sec, "%lld", s);
    }
    if (h)
        snprintf(out, cap, "%lldh%lldm%ss", h, m, sec);
    else if (m)
        snprintf(out, cap, "%lldm%ss", m, sec);
    else
        snprintf(out, cap, "%ss", sec);
}

/* wsk's TruncateStr: long names keep their ends around "...". */
static void trunc_mid(const char *s, size_t max, char *out, size_t cap)
{
    size_t n = strlen(s);
    if (n <= max) {
        snprintf(out, cap, "%s", s);
        return;
    }
    size_t mid = max / 2 + (max % 2), tail = max / 2 - 3;
    snprintf(out, cap, "%.*s...%s", (int)mid, s, s + n - tail);
}

static const char *act_status(const json_t *a)
{
    static const char *const names[] = {"success", "application error", "developer error",
                                        "internal error"};
    json_t *sc = json_object_get(a, "statusCode");
    long long code = json_is_integer(sc) ? json_integer_value(sc) : -1;
    if (code < 0) {
        const char *st = wjson_str(json_object_get(a, "response"), "status");
        code = !st || strcmp(st, "success") == 0           ? 0
               : strcmp(st, "application error") == 0      ? 1
               : strcmp(st, "action developer error") == 0 ? 2
                                                           : 3;
    }
    return names[code >= 0 && code < 4 ? code : 0];
}

static const char *act_kind(const json_t *a)
{
    const char *k = json_string_value(wjson_kv_get(json_object_get(a, "annotations"), "kind"));
    return k ? k : "unknown";
}

static void act_row(const json_t *a, int kw, int sw)
{
    time_t t = (time_t)(json_integer_value(json_object_get(a, "start")) / 1000);
    struct tm tm = {0};
    localtime_r(&t, &tm);
    char ns[64], name[64], ver[64], fqn[200], dur[32];
    trunc_mid(str_or(a, "namespace", ""), 20, ns, sizeof ns);
    trunc_mid(str_or(a, "name", ""), 30, name, sizeof name);
    trunc_mid(str_or(a, "version", ""), 20, ver, sizeof ver);
    snprintf(fqn, sizeof fqn, "%s/%s:%s", ns, name, ver);
    long long d = json_integer_value(json_object_get(a, "duration"));
    if (d > 0)
        d = json_integer_value(json_object_get(a, "end")) -
            json_integer_value(json_object_get(a, "start"));
    go_duration(d, dur, sizeof dur);
    bool cold = wjson_kv_get(json_object_get(a, "annotations"), "initTime") != NULL;
    printf("%d-%02d-%02d %02d:%02d:%02d %-32s %-*s %-5s %-10s %-*s %s\n", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           str_or(a, "activationId", ""), kw, act_kind(a), cold ? "cold" : "warm", dur, sw,
           act_status(a), fqn);
}

void cli_print_activations(const json_t *items)
{
    int kw = 4, sw = 7; /* "Kind"; "success", wsk's narrowest status */
    size_t i;
    json_t *a;
    json_array_foreach(items, i, a)
    {
        int k = (int)strlen(act_kind(a)), s = (int)strlen(act_status(a));
        kw = k > kw ? k : kw;
        sw = s > sw ? s : sw;
    }
    printf("%-19s %-32s %-*s %-6s%-10s %-*s %-6s\n", "Datetime", "Activation ID", kw, "Kind",
           "Start", "Duration", sw, "Status", "Entity");
    json_array_foreach(items, i, a) act_row(a, kw, sw);
}

/* ==== summaries ========================================================= */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* wsk's getParamUnion: bound parameters (marked "*", "**" when final) and
 * those the "parameters" annotation describes, sorted, joined. */
static void param_union(const json_t *doc, char *out, size_t cap)
{
    const json_t *annots = json_object_get(doc, "annotations");
    const json_t *params = json_object_get(doc, "parameters");
    const char *names[128];
    size_t n = 0, i;
    json_t *e;
    json_array_foreach(params, i, e) if (n < 128 && wjson_str(e, "key")) names[n++] =
        wjson_str(e, "key");
    json_array_foreach(wjson_kv_get(annots, "parameters"), i, e)
    {
        const char *nm = wjson_str(e, "name");
        if (nm && n < 128 && !wjson_kv_get(params, nm))
            names[n++] = nm;
    }
    const char *mark = json_is_true(wjson_kv_get(annots, "final")) ? "**" : "*";
    qsort(names, n, sizeof *names, cmp_str);
    size_t len = 0;
    out[0] = '\0';
    for (size_t k = 0; k < n && len < cap; k++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s%s", k ? ", " : "",
                                wjson_kv_get(params, names[k]) ? mark : "", names[k]);
}

/* wsk's printEntitySummary. */
static void summary_line(const char *type, const char *name, const json_t *doc)
{
    char params[1024], desc[1200];
    param_union(doc, params, sizeof params);
    const char *d =
        json_string_value(wjson_kv_get(json_object_get(doc, "annotations"), "description"));
    if (d && *d) {
        snprintf(desc, sizeof desc, ": %s", d);
    } else if (params[0]) { /* "Returns a result based on parameters a and b" */
        char plain[1024];
        size_t k = 0;
        for (const char *p = params; *p && k + 1 < sizeof plain; p++)
            if (*p != '*')
                plain[k++] = *p;
        plain[k] = '\0';
        char *last = strrchr(plain, ',');
        if (last)
            snprintf(desc, sizeof desc, ": Returns a result based on parameters %.*s and%s",
                     (int)(last - plain), plain, last + 1);
        else
            snprintf(desc, sizeof desc, ": Returns a result based on parameter %s", plain);
    } else {
        desc[0] = '\0';
    }
    printf("%s %s%s\n", cli_bold(type), name, desc);
    printf("   (%s: %s)\n", cli_bold("parameters"), params[0] ? params : "none defined");
}

void cli_print_summary(const char *kind, const json_t *doc)
{
    char n[600];
    full_name(doc, n, sizeof n);
    if (strcmp(kind, "rule") == 0) {
        printf("%s %s\n", cli_bold("rule"), n);
        printf("   (%s: %s)\n", cli_bold("status"), str_or(doc, "status", ""));
        return;
    }
    char type[16];
    snprintf(type, sizeof type, "%7s", kind);
    summary_line(strcmp(kind, "action") == 0 ? "action" : type, n, doc);
    if (strcmp(kind, "package") != 0)
        return;
    static const char *const parts[][2] = {{"actions", " action"}, {"feeds", " feed  "}};
    for (size_t p = 0; p < 2; p++) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(doc, parts[p][0]), i, e)
        {
            char sub[900];
            snprintf(sub, sizeof sub, "%s/%s", n, str_or(e, "name", ""));
            summary_line(parts[p][1], sub, e);
        }
    }
}
