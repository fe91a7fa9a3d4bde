/* core/trigger.h - firing triggers: every active rule's action runs with
 * the trigger's parameters merged with the event's, and the fire gets an
 * activation record of its own (OpenWhisk's shape: the fired payload as
 * result, one JSON line per rule in logs). Feeds fire through here too.
 * Loop thread only. */
#pragma once
#include <jansson.h>
#include <stdbool.h>

#include "wisp.h"

struct store;
struct invoke;
struct act;
struct trigger;

struct trigger_cfg {
    unsigned fires_per_minute; /* per namespace */
};

int trigger_open(struct store *st, struct invoke *inv, struct act *act,
                 const struct trigger_cfg *cfg, struct trigger **out, struct wisp_err *err)
    WISP_MUST_CHECK;
void trigger_close(struct trigger *t);

/* Fires ns/name for caller subject with payload (an object or NULL).
 * 0 with id set (202); 1 when no rule is active (204, no record); -ENOENT
 * (404), -EAGAIN (429: fires per minute), -EIO, with err. A rule whose
 * action cannot start (over the invocation limits, say) is an error line
 * in the fire's record, as in OpenWhisk. With hold, a fire whose active
 * rules would not all pass subject's invocation limits now is refused
 * whole instead (-EBUSY, nothing ran or was recorded): feeds fire so, to
 * offer the event again later rather than lose a rule's run. */
int trigger_fire(struct trigger *t, const char *ns, const char *name, const char *subject,
                 const json_t *payload, bool hold, char id[33], struct wisp_err *err)
    WISP_MUST_CHECK;

struct trigger_stats {
    unsigned long long fires, no_rule, limited, held, rule_runs, rule_errors;
};
void trigger_get_stats(const struct trigger *t, struct trigger_stats *out);
