/* core/trigger.c - see trigger.h. The trigger document keeps its rules map
 * (rule -> action, status) in step with every rule change, so a fire reads
 * one document and never scans the rules. */
#include "trigger.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "auth.h"
#include "codec.h"
#include "entity.h"
#include "invoke.h"
#include "quota.h"
#include "log.h"
#include "plat.h"
#include "store.h"
#include "wjson.h"

struct trigger {
    struct store *st;
    struct invoke *inv;
    struct act *act;
    struct trigger_cfg cfg;
    struct quota quota;
    struct trigger_stats stats;
    struct plat_buf line; /* a log line being written (reused) */
    struct plat_buf logs; /* a fire's log lines, encoded (reused) */
    struct plat_buf rec;  /* a fire's record, encoded (reused) */
};

/* The fire's own record (OpenWhisk's trigger activation), encoded into
 * t->rec: the fired parameters as its result, one log line per rule (nlogs
 * msgpack strings already in t->logs). */
static int trigger_record(struct trigger *t, const char *subject, const char *name,
                          const char *id, const char *version, int64_t start, const json_t *args,
                          size_t nlogs, const char *tpath)
{
    struct plat_buf *b = &t->rec;
    struct act_head h = {.subject = subject, .name = name, .id = id,
                         .version = version ? version : "0.0.1", .start = start, .end = start,
                         .status_code = 0, .nfields = 12};
    int rc = act_pack_head(b, &h);
    if (!rc)
        rc = codec_put_json(b, args, 2);
    if (!rc && !(rc = codec_put_str(b, "logs")) && !(rc = codec_put_array(b, nlogs)))
        rc = plat_buf_add(b, t->logs.data, t->logs.len);
    if (!rc && !(rc = codec_put_str(b, "annotations")) && !(rc = codec_put_array(b, 2)) &&
        !(rc = act_pack_annotation(b, "path")) && !(rc = codec_put_str(b, tpath)) &&
        !(rc = act_pack_annotation(b, "kind")))
        rc = codec_put_str(b, "trigger");
    return rc;
}

int trigger_fire(struct trigger *t, const char *ns, const char *name, const char *subject,
                 const json_t *payload, bool hold, char id[33], struct wisp_err *err)
{
    json_t *doc = NULL, *args = NULL;
    size_t nlogs = 0;
    enum rec_kind kind;
    int rc = store_entity_get(t->st, ns, name, &kind, &doc);
    if (rc == -ENOENT || (rc == 0 && kind != REC_TRIGGER)) {
        rc = wisp_err_set(err, -ENOENT, "The requested resource does not exist.");
        goto out;
    }
    if (rc < 0) {
        rc = wisp_err_set(err, -EIO, "The stored trigger cannot be read.");
        goto out;
    }
    /* Is any rule active? Only then does the fire count and get a record. */
    json_t *rules = json_object_get(doc, "rules");
    const char *rname;
    json_t *rule;
    unsigned active = 0;
    json_object_foreach(rules, rname, rule)
        active += strcmp(wjson_str(rule, "status") ? wjson_str(rule, "status") : "", "active") == 0;
    if (!active) {
        t->stats.no_rule++;
        rc = 1;
        goto out;
    }
    if (hold && invoke_room(t->inv, subject, active, err) < 0) {
        t->stats.held++;
        rc = -EBUSY;
        goto out;
    }
    if ((rc = quota_admit(&t->quota, subject, err)) < 0) {
        t->stats.limited++;
        goto out;
    }
    /* the event's parameters over the trigger's; without any of the
     * trigger's own, the event's object itself (nothing changes it after) */
    const json_t *tparams = json_object_get(doc, "parameters");
    if (json_array_size(tparams) == 0 && json_is_object(payload)) {
        args = json_incref((json_t *)payload);
    } else {
        args = json_object();
        size_t i;
        json_t *p;
        json_array_foreach(tparams, i, p) {
            const char *k = wjson_str(p, "key");
            if (k && json_object_get(p, "value"))
                json_object_set(args, k, json_object_get(p, "value"));
        }
        if (json_is_object(payload))
            json_object_update(args, (json_t *)payload);
    }
    act_new_id(id);
    int64_t start = plat_clock_real_ms();
    t->logs.len = 0;
    json_object_foreach(rules, rname, rule) {
        if (strcmp(wjson_str(rule, "status") ? wjson_str(rule, "status") : "", "active") != 0)
            continue;
        const json_t *aref = json_object_get(rule, "action");
        const char *apath = wjson_str(aref, "path"), *aname = wjson_str(aref, "name");
        char ans[AUTH_NS_MAX] = "", path[2 * ENTITY_NAME_MAX + 2] = "";
        if (apath && aname) {
            const char *slash = strchr(apath, '/');
            snprintf(ans, sizeof ans, "%.*s", (int)(slash ? slash - apath : (long)strlen(apath)),
                     apath);
            if (slash)
                plat_strjoin(path, sizeof path, slash + 1, '/', aname);
            else
                plat_strcpy(path, sizeof path, aname);
        }
        /* the rule's own result binding, if it has one */
        const char *rslash = strchr(rname, '/');
        json_t *rdoc = NULL;
        const json_t *pub = NULL;
        enum rec_kind rk;
        if (rslash && store_entity_get(t->st, ns, rslash + 1, &rk, &rdoc) == 0 && rk == REC_RULE)
            pub = wjson_kv_get(json_object_get(rdoc, "annotations"), "mqtt-publish");
        struct invoke_req req = {.ns = ans, .path = path, .subject = subject, .payload = args,
                                 .cause = id, .publish = pub};
        char aid[33];
        struct wisp_err ierr = {0};
        int irc = apath && aname ? invoke_start(t->inv, &req, aid, NULL, NULL, NULL, &ierr)
                                 : wisp_err_set(&ierr, -ENOENT, "The rule has no action.");
        json_decref(rdoc);
        char afq[AUTH_NS_MAX + 2 * ENTITY_NAME_MAX + 4];
        plat_strjoin(afq, sizeof afq, apath ? apath : "", '/', aname ? aname : "");
        /* the log line, written straight out: OpenWhisk's keys and order */
        struct plat_buf *b = &t->line;
        b->len = 0;
        const char *open = irc == 0 ? "{\"statusCode\":0,\"success\":true,\"activationId\":"
                           : irc == -ENOENT ? "{\"statusCode\":1,\"success\":false,\"error\":"
                                            : "{\"statusCode\":2,\"success\":false,\"error\":";
        int wrc = plat_buf_add(b, open, strlen(open));
        const char *msg = irc == 0 ? aid : ierr.msg;
        if (!wrc)
            wrc = wjson_put_str(b, msg, strlen(msg));
        if (!wrc && !(wrc = plat_buf_add(b, ",\"rule\":", 8)))
            wrc = wjson_put_str(b, rname, strlen(rname));
        if (!wrc && !(wrc = plat_buf_add(b, ",\"action\":", 10)))
            wrc = wjson_put_str(b, afq, strlen(afq));
        if (!wrc && !(wrc = plat_buf_add(b, "}", 1)) &&
            codec_put_strn(&t->logs, b->data, b->len) == 0)
            nlogs++;
        t->stats.rule_runs += irc == 0;
        t->stats.rule_errors += irc != 0;
    }
    char tpath[AUTH_NS_MAX + ENTITY_NAME_MAX + 2];
    plat_strjoin(tpath, sizeof tpath, ns, '/', name);
    int prc = trigger_record(t, subject, name, id, wjson_str(doc, "version"), start, args, nlogs,
                             tpath);
    if (prc == 0) {
        struct act_rec r = {.id = id, .rec = t->rec.data, .len = t->rec.len};
        prc = act_put(t->act, subject, &r, NULL, NULL);
    }
    if (prc < 0)
        wlog_err("trigger", "the record of fire %s could not be queued", id);
    plat_buf_trim(&t->rec);
    plat_buf_trim(&t->logs);
    t->stats.fires++;
    rc = 0;
out:
    json_decref(doc);
    json_decref(args);
    return rc;
}

int trigger_open(struct store *st, struct invoke *inv, struct act *act,
                 const struct trigger_cfg *cfg, struct trigger **out, struct wisp_err *err)
{
    struct trigger *t = calloc(1, sizeof *t);
    if (!t)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    t->st = st;
    t->inv = inv;
    t->act = act;
    t->cfg = *cfg;
    quota_init(&t->quota, cfg->fires_per_minute, 0);
    *out = t;
    return 0;
}

void trigger_close(struct trigger *t)
{
    if (t) {
        plat_buf_fini(&t->line);
        plat_buf_fini(&t->logs);
        plat_buf_fini(&t->rec);
    }
    free(t);
}

void trigger_get_stats(const struct trigger *t, struct trigger_stats *out)
{
    *out = t->stats;
}
