/* core/act.h - activation records: group commit, reads, lists, retention.
 *
 * Records are committed in groups: act_put queues a record (encoded where
 * it is made, with act_pack_head and the codec's writer) and the queue is
 * written in one transaction from a zero-delay event, at most once per loop
 * tick; the commit callback runs after that write. The fsync follows within
 * a second (a timer asks store_sync when something was written), so a power
 * cut loses at most about a second of activations; a crash of wispd alone
 * loses none that were committed. Retention removes records older than
 * max_age_s or beyond max_count per namespace, a bounded batch per second.
 * Loop thread only. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "wisp.h"

struct event_base;
struct plat_buf;
struct store;
struct act;

struct act_cfg {
    uint64_t max_age_s;  /* 0: keep forever (count still applies) */
    uint64_t max_count;  /* per namespace */
    unsigned queue_max;  /* records waiting for the next commit */
};

int act_open(struct event_base *base, struct store *st, const struct act_cfg *cfg,
             struct act **out, struct wisp_err *err) WISP_MUST_CHECK;
/* Commits what is queued, then frees. NULL is a no-op. */
void act_close(struct act *a);

/* A new activation id: 32 lowercase hex digits. */
void act_new_id(char out[33]);

/* Called once the record is committed (rc 0) or failed to be (rc < 0). */
typedef void act_committed_fn(void *arg, int rc);
/* A finished record, encoded (act_pack_head and the codec's writer: kind
 * REC_ACTIVATION, updated = start; "name" among the leading fields, which
 * lists read without decoding the rest). */
struct act_rec {
    const char *id; /* 32 hex digits, from act_new_id (keys sort by its time) */
    const void *rec;
    size_t len;
};
/* Queues a copy of the record r of namespace ns. cb may be NULL. 0, or
 * -EAGAIN when the queue is full (the record is then dropped and counted),
 * -ENOMEM. */
int act_put(struct act *a, const char *ns, const struct act_rec *r, act_committed_fn *cb,
            void *arg) WISP_MUST_CHECK;
/* The record with this id in ns (new reference). 0, -ENOENT, -EIO. */
int act_get(struct act *a, const char *ns, const char *id, json_t **doc) WISP_MUST_CHECK;

/* Encoding a record (into buf, reset): what every activation record starts
 * with, OpenWhisk's fields in its order: a map of nfields, then namespace,
 * name, subject, activationId, version, publish, start, end, duration and
 * response (status, statusCode, success) up to the key "result". The caller
 * writes the result, "logs", "annotations" and any more fields. */
struct act_head {
    const char *subject, *name, *id, *version;
    int64_t start, end;
    int status_code; /* 0 success .. 3 whisk internal error */
    size_t nfields;  /* 12, or more */
};
int act_pack_head(struct plat_buf *buf, const struct act_head *h) WISP_MUST_CHECK;
/* "success", "application error", ... for statusCode 0..3; else NULL. */
const char *act_status_name(int status_code);
/* An annotation's {"key": key, "value": ...} up to the value. */
int act_pack_annotation(struct plat_buf *buf, const char *key) WISP_MUST_CHECK;

struct act_query {
    const char *name;   /* "action" or "pkg/action"; NULL: all */
    int64_t since, upto; /* epoch ms, inclusive; 0: open */
    long long skip, limit;
    bool docs, count;
};
/* Newest first. *out is an array of records (docs) or summaries, or
 * {"activations": N} for count. 0 or -EIO. */
int act_list(struct act *a, const char *ns, const struct act_query *q, json_t **out)
    WISP_MUST_CHECK;

struct act_stats {
    uint64_t committed, dropped, pruned, commits;
    unsigned queued;
};
void act_get_stats(const struct act *a, struct act_stats *out);
