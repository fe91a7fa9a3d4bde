/* runtimes/actionloop.c - see actionloop.h. */
#include "actionloop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wjson.h"

int al_run_line(struct plat_buf *b, const struct pool_msg *m)
{
    size_t start = b->len;
    /* written straight out (keys in OpenWhisk's order): a json_t built
     * only to be dumped was a visible share of a run */
    int rc = plat_buf_add(b, "{\"value\":", 9);
    size_t vstart = b->len;
    if (!rc)
        rc = wjson_dump_to(b, m->value);
    if (!rc && m->value_max && b->len - vstart > m->value_max)
        rc = -EMSGSIZE;
    const char *keys[] = {",\"namespace\":", ",\"action_name\":", ",\"activation_id\":",
                          ",\"transaction_id\":", ",\"api_host\":", ",\"api_key\":"};
    const char *vals[] = {m->namespace,     m->action_name, m->activation_id,
                          m->activation_id, m->api_host,    m->api_key};
    for (size_t i = 0; !rc && i < WISP_ARRAY_LEN(keys); i++) {
        if (i == 4 && !(rc = plat_buf_add(b, ",\"deadline\":", 12)))
            rc = wjson_put_int(b, m->deadline_ms);
        if (!rc && vals[i] && !(rc = plat_buf_add(b, keys[i], strlen(keys[i]))))
            rc = wjson_put_str(b, vals[i], strlen(vals[i]));
    }
    if (!rc)
        rc = plat_buf_add(b, "}", 1);
    if (rc)
        b->len = start;
    else
        b->data[b->len] = '\0'; /* plat_buf_add keeps room for it */
    return rc;
}

int al_init_line(struct plat_buf *b, const char *name, const char *main, const json_t *code,
                 bool binary)
{
    /* no code (a blackbox action without any): no "code" member */
    json_t *init = json_pack("{s:{s:s, s:s, s:O*, s:b, s:{}}}", "value", "name", name, "main",
                             main ? main : "main", "code", code, "binary", binary, "env");
    int rc = init ? wjson_dump_to(b, init) : -ENOMEM;
    json_decref(init);
    return rc;
}

bool al_is_ack(const char *line, size_t len)
{
    json_t *j = wjson_parse(line, len, NULL);
    bool ok = json_is_object(j) && json_object_size(j) == 1 &&
              json_is_true(json_object_get(j, "ok"));
    json_decref(j);
    return ok;
}

int al_init_answer(const char *line, size_t len, char *msg, size_t cap)
{
    json_t *j = wjson_parse(line, len, NULL);
    int rc = 0;
    if (!json_is_object(j) || !json_is_true(json_object_get(j, "ok"))) {
        const char *e = wjson_str(j, "error");
        snprintf(msg, cap, "Initialization has failed: %s", e ? e : "no valid answer");
        rc = -EINVAL;
    }
    json_decref(j);
    return rc;
}

json_t *al_result(const char *line, size_t len)
{
    return wjson_parse(line, len, NULL);
}

json_t *al_log_line(const struct timespec *at, const char *stream, const char *line, size_t len)
{
    struct tm tm;
    gmtime_r(&at->tv_sec, &tm);
    char head[64];
    int n = snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, at->tv_nsec);
    char *s = malloc((size_t)n + strlen(stream) + len + 40);
    if (!s)
        return NULL;
    int m = sprintf(s, "%-30s %s: ", head, stream);
    memcpy(s + m, line, len);
    s[m + (int)len] = '\0';
    json_t *js = json_stringn(s, (size_t)m + len);
    if (!js) /* not UTF-8: keep the line, replace the bytes */
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[m + (int)i] >= 0x80)
                s[m + (int)i] = '?';
    if (!js)
        js = json_stringn(s, (size_t)m + len);
    free(s);
    return js;
}

int al_truncation_notice(char *out, size_t cap, size_t limit)
{
    return snprintf(out, cap,
                    "Logs were truncated because the total bytes size exceeds the limit of %zu "
                    "bytes.",
                    limit);
}
