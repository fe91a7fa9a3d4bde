/* core/quota.h - per-namespace rate limits: a sliding one-minute window
 * (this minute's count plus the part of the last minute that still lies
 * within 60 s) and an in-flight count. Used for invocations and trigger
 * fires. Fixed-size table: namespaces beyond it reuse idle slots. Loop
 * thread only. */
#pragma once
#include <stdint.h>

#include "wisp.h"

#define QUOTA_SLOTS 256
#define QUOTA_NS_MAX 128

struct quota_slot {
    char ns[QUOTA_NS_MAX];
    unsigned inflight;
    int64_t minute;             /* the minute count belongs to */
    unsigned count, prev_count; /* this minute's and the last one's */
};

struct quota {
    unsigned per_minute, concurrent; /* 0: no concurrency limit */
    struct quota_slot slot[QUOTA_SLOTS];
};

void quota_init(struct quota *l, unsigned per_minute, unsigned concurrent);
/* Whether n more for ns would be admitted now (nothing is counted): 0, or
 * -EAGAIN with OpenWhisk's 429 message. */
int quota_room(struct quota *l, const char *ns, unsigned n, struct wisp_err *err) WISP_MUST_CHECK;
/* Admits one more for ns: 0, or -EAGAIN with OpenWhisk's 429 message. */
int quota_admit(struct quota *l, const char *ns, struct wisp_err *err) WISP_MUST_CHECK;
/* Adds delta (+1 / -1) to ns's in-flight count. */
void quota_inflight(struct quota *l, const char *ns, int delta);
