/* core/quota.c - see quota.h. */
#include "quota.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "plat.h"

void quota_init(struct quota *l, unsigned per_minute, unsigned concurrent)
{
    memset(l, 0, sizeof *l);
    l->per_minute = per_minute;
    l->concurrent = concurrent;
}

static struct quota_slot *slot(struct quota *l, const char *ns)
{
    struct quota_slot *free_slot = NULL;
    for (unsigned i = 0; i < QUOTA_SLOTS; i++) {
        if (strcmp(l->slot[i].ns, ns) == 0)
            return &l->slot[i];
        if (!free_slot && !l->slot[i].ns[0])
            free_slot = &l->slot[i];
    }
    for (unsigned i = 0; i < QUOTA_SLOTS && !free_slot; i++)
        if (l->slot[i].inflight == 0) /* reuse an idle one */
            free_slot = &l->slot[i];
    if (free_slot) {
        memset(free_slot, 0, sizeof *free_slot);
        snprintf(free_slot->ns, sizeof free_slot->ns, "%s", ns);
    }
    return free_slot;
}

/* The slot of ns with its minute brought up to now, and the sliding
 * window's count. NULL when every slot is busy with another namespace. */
static struct quota_slot *current(struct quota *l, const char *ns, unsigned *window)
{
    struct quota_slot *s = slot(l, ns);
    if (!s)
        return NULL;
    int64_t now = plat_clock_mono_us() / 1000;
    int64_t minute = now / 60000;
    if (minute != s->minute) {
        s->prev_count = minute == s->minute + 1 ? s->count : 0;
        s->count = 0;
        s->minute = minute;
    }
    *window =
        s->count + (unsigned)((uint64_t)s->prev_count * (uint64_t)(60000 - now % 60000) / 60000);
    return s;
}

static int check(const struct quota *l, const struct quota_slot *s, unsigned window, unsigned n,
                 struct wisp_err *err)
{
    if (!s)
        return wisp_err_set(err, -EAGAIN, "Too many namespaces active at once.");
    if (window + n > l->per_minute)
        return wisp_err_set(err, -EAGAIN,
                            "Too many requests in the last minute (count: %u, allowed: %u).",
                            window, l->per_minute);
    if (l->concurrent && s->inflight + n > l->concurrent)
        return wisp_err_set(err, -EAGAIN,
                            "Too many concurrent requests in flight (count: %u, allowed: %u).",
                            s->inflight, l->concurrent);
    return 0;
}

int quota_room(struct quota *l, const char *ns, unsigned n, struct wisp_err *err)
{
    unsigned window = 0;
    /* current() sets window: called before check's arguments are read
     * (argument order is unspecified; passing both at once read 0) */
    struct quota_slot *s = current(l, ns, &window);
    return check(l, s, window, n, err);
}

int quota_admit(struct quota *l, const char *ns, struct wisp_err *err)
{
    unsigned window = 0;
    struct quota_slot *s = current(l, ns, &window);
    int rc = check(l, s, window, 1, err);
    if (rc == 0)
        s->count++;
    return rc;
}

void quota_inflight(struct quota *l, const char *ns, int delta)
{
    struct quota_slot *s = slot(l, ns);
    if (s)
        s->inflight = (unsigned)((int)s->inflight + delta);
}
