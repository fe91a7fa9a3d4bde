/* feeds/feed_util.c - helpers the feed kinds share. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "feed.h"

/* MQTT filter matching (MQTT 3.1.1 / 5 section 4.7): levels split on '/',
 * '+' matches one level, '#' (last) matches the rest including the parent
 * level itself; topics starting with '$' are not matched by a leading
 * wildcard. "$share/group/" before a filter only picks subscribers. */
bool feed_topic_matches(const char *filter, const char *topic)
{
    if (strncmp(filter, "$share/", 7) == 0) {
        const char *slash = strchr(filter + 7, '/');
        if (!slash)
            return false;
        filter = slash + 1;
    }
    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return false;
    const char *f = filter, *t = topic;
    for (;;) {
        size_t fl = strcspn(f, "/"), tl = strcspn(t, "/");
        if (fl == 1 && f[0] == '#')
            return f[1] == '\0';
        if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0))
            return false;
        f += fl;
        t += tl;
        if (!*f && !*t)
            return true;
        if (!*f) /* filter ended before the topic */
            return false;
        if (!*t) /* topic ended: only "/#" may follow */
            return strcmp(f, "/#") == 0;
        f++;
        t++;
    }
}

int feed_ip_literal(const char *host, char *ip, size_t cap, bool *v6)
{
    size_t hl = strlen(host);
    *v6 = host[0] == '[';
    if (*v6) {
        if (hl < 3 || host[hl - 1] != ']' || hl - 2 >= cap)
            return -ERANGE;
        memcpy(ip, host + 1, hl - 2);
        ip[hl - 2] = '\0';
    } else if (strcasecmp(host, "localhost") == 0) {
        snprintf(ip, cap, "127.0.0.1");
    } else if (hl < cap) {
        memcpy(ip, host, hl + 1);
    } else {
        return -EINVAL;
    }
    unsigned char addr[16];
    return inet_pton(*v6 ? AF_INET6 : AF_INET, ip, addr) == 1 ? 0 : -EINVAL;
}

/* ==== binding sets ==================================================== */

void feed_set_init(struct feed_set *s, const struct feed_set_ops *ops, void *owner)
{
    *s = (struct feed_set){.ops = ops, .owner = owner};
}

void feed_set_add(struct feed_set *s, struct feed_link *k)
{
    k->prev = NULL;
    k->next = s->head;
    if (s->head)
        s->head->prev = k;
    s->head = k;
    k->linked = true;
}

void feed_set_remove(struct feed_set *s, struct feed_link *k)
{
    if (!k->linked)
        return;
    if (k->prev)
        k->prev->next = k->next;
    else
        s->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    k->linked = false;
}

void feed_enter(struct feed_set *s, struct feed_link *k)
{
    k->busy = true;
    s->busy++;
}

bool feed_leave(struct feed_set *s, struct feed_link *k)
{
    k->busy = false;
    s->busy--;
    if (!k->dead)
        return true;
    bool all = s->dead && s->busy == 0;
    s->ops->free_link(k);
    if (all)
        s->ops->free_owner(s->owner);
    return false;
}

bool feed_retire(struct feed_set *s, struct feed_link *k)
{
    if (!k->busy)
        return true;
    k->dead = true;
    feed_set_remove(s, k);
    return false;
}

void feed_set_stop(struct feed_set *s)
{
    while (s->head) {
        struct feed_link *k = s->head;
        if (feed_retire(s, k))
            s->ops->free_link(k);
        else /* inside its callback: feed_leave() frees it */
            s->ops->quiet_link(k);
    }
    if (s->busy == 0)
        s->ops->free_owner(s->owner);
    else
        s->dead = true;
}
