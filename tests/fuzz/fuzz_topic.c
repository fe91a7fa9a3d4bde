/* Fuzz target: MQTT topic filter matching (feeds/feed_util.c). The input
 * is a filter, a newline and a topic. Besides not crashing: a topic with
 * no wildcard matches itself as a filter, and "#" matches every topic that
 * does not start with '$'. */
#include <stdlib.h>
#include <string.h>

#include "feed.h"
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[1024];
    if (size >= sizeof buf)
        size = sizeof buf - 1;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *topic = strchr(buf, '\n');
    if (!topic)
        return 0;
    *topic++ = '\0';
    const char *filter = buf;
    (void)feed_topic_matches(filter, topic);
    if (!strpbrk(topic, "+#") && strncmp(topic, "$share/", 7) != 0 &&
        !feed_topic_matches(topic, topic))
        abort();
    if (topic[0] != '$' && !feed_topic_matches("#", topic))
        abort();
    return 0;
}
