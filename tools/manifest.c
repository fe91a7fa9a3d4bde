/* tools/manifest.c - wskdeploy manifests into struct manifest (see
 * manifest.h). libyaml loads the file as a document; the readers below
 * walk it with one key table per level, so an unknown key, a wrong type
 * or a missing file is reported with the line libyaml marked. */
#include "manifest.h"
#include "plat.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

struct yctx {
    yaml_document_t doc;
    const char *file;
    char dir[4096]; /* the manifest's folder, for function paths */
    char *err;
    size_t cap;
    struct manifest *m;
    struct mf_package *pkg; /* the package being read */
};

static int yfail(struct yctx *y, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(y->err, y->cap, "%s:%zu: %s", y->file, n ? n->start_mark.line + 1 : 0, msg);
    return -1;
}

static int line_of(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static yaml_node_t *node(struct yctx *y, int id)
{
    return yaml_document_get_node(&y->doc, id);
}

/* ==== scalars ============================================================ */

/* $VAR and ${VAR} replaced from the environment; a new string or NULL. */
static char *subst(const char *s)
{
    size_t cap = strlen(s) + 1, len = 0;
    char *out = malloc(cap);
    while (out && *s) {
        const char *val = NULL;
        size_t skip = 1, vlen = 1;
        if (s[0] == '$' && (s[1] == '{' || isalpha((unsigned char)s[1]) || s[1] == '_')) {
            bool brace = s[1] == '{';
            size_t n = 0;
            const char *name = s + 1 + brace;
            while (isalnum((unsigned char)name[n]) || name[n] == '_')
                n++;
            if (!brace || name[n] == '}') {
                char key[256];
                snprintf(key, sizeof key, "%.*s", (int)n, name);
                val = getenv(key) ? getenv(key) : "";
                vlen = strlen(val);
                skip = 1 + brace + n + brace;
            }
        }
        if (len + vlen + 1 > cap) {
            char *grown = realloc(out, cap = 2 * (len + vlen + 1));
            if (!grown)
                free(out);
            out = grown;
            if (!out)
                break;
        }
        memcpy(out + len, val ? val : s, vlen);
        len += vlen;
        s += skip;
    }
    if (out)
        out[len] = '\0';
    return out;
}

/* The text of a scalar node, substituted; NULL (and err) for other nodes. */
static char *text(struct yctx *y, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        yfail(y, n, "%s must be a scalar", what);
        return NULL;
    }
    char *s = subst((const char *)n->data.scalar.value);
    if (!s)
        yfail(y, n, "out of memory");
    return s;
}

static int text_into(struct yctx *y, const yaml_node_t *n, const char *what, char *out, size_t cap)
{
    char *s = text(y, n, what);
    if (!s)
        return -1;
    int rc = strlen(s) < cap ? 0 : yfail(y, n, "%s is too long", what);
    snprintf(out, cap, "%s", s);
    free(s);
    return rc;
}

/* A plain scalar as YAML 1.1 reads it: bool, null, integer, float, string. */
static json_t *scalar_json(const char *s, bool plain)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    if (!plain)
        return json_string(s);
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strcmp(s, yes[i]) == 0)
            return json_true();
        if (strcmp(s, no[i]) == 0)
            return json_false();
    }
    if (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0)
        return json_null();
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end == '\0' && !isspace((unsigned char)*s))
        return json_integer(v);
    double d = strtod(s, &end);
    if (*end == '\0' && !isspace((unsigned char)*s) && strpbrk(s, "0123456789"))
        return json_real(d);
    return json_string(s);
}

/* Any node as JSON. */
static json_t *to_json(struct yctx *y, yaml_node_t *n, int depth)
{
    if (depth > 32) {
        yfail(y, n, "nested too deeply");
        return NULL;
    }
    if (n->type == YAML_SCALAR_NODE) {
        char *s = text(y, n, "value");
        json_t *j = s ? scalar_json(s, n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) : NULL;
        free(s);
        return j;
    }
    json_t *j = n->type == YAML_MAPPING_NODE ? json_object() : json_array();
    if (n->type == YAML_SEQUENCE_NODE)
        for (yaml_node_item_t *i = n->data.sequence.items.start;
             j && i < n->data.sequence.items.top; i++) {
            json_t *v = to_json(y, node(y, *i), depth + 1);
            if (!v || json_array_append_new(j, v))
                json_decref(j), j = NULL;
        }
    if (n->type == YAML_MAPPING_NODE)
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; j && p < n->data.mapping.pairs.top;
             p++) {
            char *k = text(y, node(y, p->key), "a key");
            json_t *v = k ? to_json(y, node(y, p->value), depth + 1) : NULL;
            if (!v || json_object_set_new(j, k, v))
                json_decref(j), j = NULL;
            free(k);
        }
    return j;
}

/* ==== mappings =========================================================== */

typedef int key_fn(struct yctx *y, yaml_node_t *val, void *obj);
struct key {
    const char *name;
    key_fn *fn;
};

/* Calls the table's reader for every key of mapping n; unknown and
 * repeated keys are errors. */
static int walk(struct yctx *y, yaml_node_t *n, const char *what, const struct key *tab,
                size_t ntab, void *obj)
{
    if (n->type != YAML_MAPPING_NODE)
        return yfail(y, n, "%s must be a mapping", what);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(y, p->key);
        if (k->type != YAML_SCALAR_NODE)
            return yfail(y, k, "keys of %s must be scalars", what);
        const char *name = (const char *)k->data.scalar.value;
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++)
            if (strcmp((const char *)node(y, q->key)->data.scalar.value, name) == 0)
                return yfail(y, k, "duplicate key '%s' in %s", name, what);
        size_t i = 0;
        while (i < ntab && strcmp(tab[i].name, name))
            i++;
        if (i == ntab)
            return yfail(y, k, "unknown key '%s' in %s", name, what);
        if (tab[i].fn(y, node(y, p->value), obj) < 0)
            return -1;
    }
    return 0;
}

/* Calls fn for every NAME: BODY of a mapping of named entities. */
typedef int named_fn(struct yctx *y, const char *name, yaml_node_t *key, yaml_node_t *body);
static int each_named(struct yctx *y, yaml_node_t *n, const char *what, named_fn *fn)
{
    if (n->type == YAML_SCALAR_NODE && !*n->data.scalar.value)
        return 0; /* "actions:" with nothing under it */
    if (n->type != YAML_MAPPING_NODE)
        return yfail(y, n, "%s must be a mapping of names", what);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(y, p->key);
        char name[MF_NAME_MAX];
        if (text_into(y, k, "a name", name, sizeof name) < 0)
            return -1;
        if (!*name || strchr(name, '/'))
            return yfail(y, k, "'%s' is not a valid entity name", name);
        if (fn(y, name, k, node(y, p->value)) < 0)
            return -1;
    }
    return 0;
}

/* inputs: NAME: VALUE, or NAME: {type, description, default, value}. */
static int read_inputs(struct yctx *y, yaml_node_t *n, json_t *into)
{
    json_t *j = to_json(y, n, 0);
    if (!j)
        return -1;
    if (!json_is_object(j) && !json_is_null(j)) {
        json_decref(j);
        return yfail(y, n, "inputs must be a mapping");
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_is_object(j) ? j : NULL, k, v)
    {
        json_t *val = v;
        if (json_is_object(v) && (json_object_get(v, "type") || json_object_get(v, "value") ||
                                  json_object_get(v, "default")))
            val = json_object_get(v, "value") ? json_object_get(v, "value")
                                              : json_object_get(v, "default");
        json_object_set_new(into, k, val ? json_incref(val) : json_string(""));
    }
    json_decref(j);
    return 0;
}

static int read_annotations(struct yctx *y, yaml_node_t *n, json_t *into)
{
    json_t *j = to_json(y, n, 0);
    if (!json_is_object(j)) {
        json_decref(j);
        return j ? yfail(y, n, "annotations must be a mapping") : -1;
    }
    json_object_update(into, j);
    json_decref(j);
    return 0;
}

static int dup_text(struct yctx *y, yaml_node_t *n, const char *what, char **out)
{
    free(*out);
    return (*out = text(y, n, what)) ? 0 : -1;
}

/* ==== actions and sequences ============================================== */

static bool runtime_ok(const char *r)
{
    const char *colon = strchr(r, ':');
    if (!colon || colon == r || !colon[1])
        return false;
    for (const char *c = r; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr(":.-_", *c))
            return false;
    return true;
}

static int a_function(struct yctx *y, yaml_node_t *v, void *o)
{
    struct mf_action *a = o;
    char *t = text(y, v, "function");
    if (!t)
        return -1;
    char path[8192];
    snprintf(path, sizeof path, "%s%s", t[0] == '/' ? "" : y->dir, t);
    free(t);
    struct stat st;
    if (stat(path, &st) < 0)
        return yfail(y, v, "function file '%s' does not exist", path);
    free(a->function);
    return (a->function = strdup(path)) ? 0 : yfail(y, v, "out of memory");
}
static int a_runtime(struct yctx *y, yaml_node_t *v, void *o)
{
    struct mf_action *a = o;
    if (dup_text(y, v, "runtime", &a->runtime) < 0)
        return -1;
    return runtime_ok(a->runtime)
               ? 0
               : yfail(y, v, "'%s' is not a runtime (FAMILY:VERSION)", a->runtime);
}
static int a_main(struct yctx *y, yaml_node_t *v, void *o)
{
    return dup_text(y, v, "main", &((struct mf_action *)o)->main);
}
static int a_docker(struct yctx *y, yaml_node_t *v, void *o)
{
    return dup_text(y, v, "docker", &((struct mf_action *)o)->docker);
}
static int a_web(struct yctx *y, yaml_node_t *v, void *o)
{
    struct mf_action *a = o;
    static const char *const ok[] = {"true", "yes", "raw", "false", "no"};
    if (dup_text(y, v, "web", &a->web) < 0)
        return -1;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (strcasecmp(a->web, ok[i]) == 0)
            return 0;
    return yfail(y, v, "web must be true, false or raw, not '%s'", a->web);
}
static int a_inputs(struct yctx *y, yaml_node_t *v, void *o)
{
    return read_inputs(y, v, ((struct mf_action *)o)->inputs);
}
static int a_annotations(struct yctx *y, yaml_node_t *v, void *o)
{
    return read_annotations(y, v, ((struct mf_action *)o)->annotations);
}

/* limits, with wskdeploy's names mapped to the server's. */
static int a_limits(struct yctx *y, yaml_node_t *v, void *o)
{
    static const struct {
        const char *yaml, *server;
    } names[] = {{"timeout", "timeout"},
                 {"memorySize", "memory"},
                 {"logSize", "logs"},
                 {"concurrentActivations", "concurrency"}};
    struct mf_action *a = o;
    if (v->type != YAML_MAPPING_NODE)
        return yfail(y, v, "limits must be a mapping");
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(y, p->key);
        const char *name = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        size_t i = 0;
        while (i < sizeof names / sizeof *names && strcmp(names[i].yaml, name))
            i++;
        if (i == sizeof names / sizeof *names)
            return yfail(y, k, "unknown key '%s' in limits", name);
        json_t *n = to_json(y, node(y, p->value), 0);
        if (!json_is_integer(n) || json_integer_value(n) <= 0) {
            json_decref(n);
            return yfail(y, node(y, p->value), "limit %s must be a positive integer", name);
        }
        json_object_set_new(a->limits, names[i].server, n);
    }
    return 0;
}

/* A component name as the server reads it: package-local names get the
 * package, qualified ones stay. */
static int qualify(struct yctx *y, yaml_node_t *at, const char *name, char *out, size_t cap)
{
    if (!*name)
        return yfail(y, at, "an empty action name");
    size_t n = name[0] == '/' || strchr(name, '/') ? plat_strcpy(out, cap, name)
                                                   : plat_strjoin(out, cap, y->pkg->name, '/', name);
    return n < cap ? 0 : yfail(y, at, "the action name is too long");
}

static int add_component(struct yctx *y, struct mf_action *a, yaml_node_t *at, const char *name)
{
    char q[2 * MF_NAME_MAX + 2];
    char **grown = realloc(a->components, (a->ncomponents + 1) * sizeof *grown);
    if (!grown)
        return yfail(y, at, "out of memory");
    a->components = grown;
    if (qualify(y, at, name, q, sizeof q) < 0 || !(grown[a->ncomponents] = strdup(q)))
        return -1;
    a->ncomponents++;
    return 0;
}

/* sequences.NAME.actions: "a, b" or a list. */
static int s_actions(struct yctx *y, yaml_node_t *v, void *o)
{
    struct mf_action *a = o;
    if (v->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top;
             i++) {
            char name[MF_NAME_MAX * 2];
            if (text_into(y, node(y, *i), "an action", name, sizeof name) < 0 ||
                add_component(y, a, node(y, *i), name) < 0)
                return -1;
        }
        return 0;
    }
    char *t = text(y, v, "actions");
    int rc = t ? 0 : -1;
    for (char *save = NULL, *tok = t ? strtok_r(t, ",", &save) : NULL; rc == 0 && tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        for (char *e = tok + strlen(tok); e > tok && isspace((unsigned char)e[-1]);)
            *--e = '\0';
        rc = add_component(y, a, v, tok);
    }
    free(t);
    return rc;
}

static const struct key action_keys[] = {
    {"function", a_function}, {"runtime", a_runtime}, {"main", a_main},
    {"docker", a_docker},     {"inputs", a_inputs},   {"limits", a_limits},
    {"web", a_web},           {"web-export", a_web},  {"annotations", a_annotations},
};
static const struct key sequence_keys[] = {
    {"actions", s_actions}, {"inputs", a_inputs},  {"annotations", a_annotations},
    {"web", a_web},         {"web-export", a_web},
};

static struct mf_action *new_action(struct yctx *y, const char *name, yaml_node_t *key)
{
    struct mf_package *p = y->pkg;
    for (size_t i = 0; i < p->nactions; i++)
        if (strcmp(p->actions[i].name, name) == 0) {
            yfail(y, key, "'%s/%s' is defined twice", p->name, name);
            return NULL;
        }
    struct mf_action *grown = realloc(p->actions, (p->nactions + 1) * sizeof *grown);
    if (!grown) {
        yfail(y, key, "out of memory");
        return NULL;
    }
    p->actions = grown;
    struct mf_action *a = &grown[p->nactions++];
    *a = (struct mf_action){.line = line_of(key),
                            .inputs = json_object(),
                            .annotations = json_object(),
                            .limits = json_object()};
    snprintf(a->name, sizeof a->name, "%s", name);
    return a;
}

static int one_action(struct yctx *y, const char *name, yaml_node_t *key, yaml_node_t *body)
{
    struct mf_action *a = new_action(y, name, key);
    if (!a ||
        walk(y, body, "an action", action_keys, sizeof action_keys / sizeof *action_keys, a) < 0)
        return -1;
    if (!a->function && !a->docker)
        return yfail(y, key, "action '%s' needs a function (or docker)", name);
    struct stat st;
    bool packed = a->function && (stat(a->function, &st) == 0 && S_ISDIR(st.st_mode));
    const char *ext = a->function ? strrchr(a->function, '.') : NULL;
    packed = packed || (ext && strcmp(ext, ".zip") == 0);
    if (packed && !a->runtime && !a->docker)
        return yfail(y, key, "action '%s': a folder or .zip function needs a runtime", name);
    return 0;
}

static int one_sequence(struct yctx *y, const char *name, yaml_node_t *key, yaml_node_t *body)
{
    struct mf_action *a = new_action(y, name, key);
    if (!a)
        return -1;
    a->sequence = true;
    if (walk(y, body, "a sequence", sequence_keys, sizeof sequence_keys / sizeof *sequence_keys,
             a) < 0)
        return -1;
    return a->ncomponents ? 0 : yfail(y, key, "sequence '%s' names no actions", name);
}

/* ==== triggers and rules ================================================= */

static int t_feed(struct yctx *y, yaml_node_t *v, void *o)
{
    return dup_text(y, v, "feed", &((struct mf_trigger *)o)->feed);
}
static int t_inputs(struct yctx *y, yaml_node_t *v, void *o)
{
    return read_inputs(y, v, ((struct mf_trigger *)o)->inputs);
}
static int t_annotations(struct yctx *y, yaml_node_t *v, void *o)
{
    return read_annotations(y, v, ((struct mf_trigger *)o)->annotations);
}
static const struct key trigger_keys[] = {
    {"feed", t_feed}, {"inputs", t_inputs}, {"annotations", t_annotations}};

static int one_trigger(struct yctx *y, const char *name, yaml_node_t *key, yaml_node_t *body)
{
    struct manifest *m = y->m;
    for (size_t i = 0; i < m->ntriggers; i++)
        if (strcmp(m->triggers[i].name, name) == 0)
            return yfail(y, key, "trigger '%s' is defined twice", name);
    struct mf_trigger *grown = realloc(m->triggers, (m->ntriggers + 1) * sizeof *grown);
    if (!grown)
        return yfail(y, key, "out of memory");
    m->triggers = grown;
    struct mf_trigger *t = &grown[m->ntriggers++];
    *t = (struct mf_trigger){
        .line = line_of(key), .inputs = json_object(), .annotations = json_object()};
    snprintf(t->name, sizeof t->name, "%s", name);
    return walk(y, body, "a trigger", trigger_keys, sizeof trigger_keys / sizeof *trigger_keys, t);
}

static int r_trigger(struct yctx *y, yaml_node_t *v, void *o)
{
    struct mf_rule *r = o;
    return text_into(y, v, "trigger", r->trigger, sizeof r->trigger);
}
static int r_action(struct yctx *y, yaml_node_t *v, void *o)
{
    struct mf_rule *r = o;
    char name[MF_NAME_MAX];
    return text_into(y, v, "action", name, sizeof name) < 0
               ? -1
               : qualify(y, v, name, r->action, sizeof r->action);
}
static const struct key rule_keys[] = {{"trigger", r_trigger}, {"action", r_action}};

static int one_rule(struct yctx *y, const char *name, yaml_node_t *key, yaml_node_t *body)
{
    struct manifest *m = y->m;
    for (size_t i = 0; i < m->nrules; i++)
        if (strcmp(m->rules[i].name, name) == 0)
            return yfail(y, key, "rule '%s' is defined twice", name);
    struct mf_rule *grown = realloc(m->rules, (m->nrules + 1) * sizeof *grown);
    if (!grown)
        return yfail(y, key, "out of memory");
    m->rules = grown;
    struct mf_rule *r = &grown[m->nrules++];
    *r = (struct mf_rule){.line = line_of(key)};
    snprintf(r->name, sizeof r->name, "%s", name);
    if (walk(y, body, "a rule", rule_keys, sizeof rule_keys / sizeof *rule_keys, r) < 0)
        return -1;
    if (!*r->trigger || !*r->action)
        return yfail(y, key, "rule '%s' needs a trigger and an action", name);
    return 0;
}

/* ==== packages and the project =========================================== */

static int p_version(struct yctx *y, yaml_node_t *v, void *o)
{
    return dup_text(y, v, "version", &((struct mf_package *)o)->version);
}
static int p_license(struct yctx *y, yaml_node_t *v, void *o)
{
    return dup_text(y, v, "license", &((struct mf_package *)o)->license);
}
static int p_inputs(struct yctx *y, yaml_node_t *v, void *o)
{
    return read_inputs(y, v, ((struct mf_package *)o)->inputs);
}
static int p_annotations(struct yctx *y, yaml_node_t *v, void *o)
{
    return read_annotations(y, v, ((struct mf_package *)o)->annotations);
}
static int p_actions(struct yctx *y, yaml_node_t *v, void *o)
{
    (void)o;
    return each_named(y, v, "actions", one_action);
}
static int p_sequences(struct yctx *y, yaml_node_t *v, void *o)
{
    (void)o;
    return each_named(y, v, "sequences", one_sequence);
}
static int p_triggers(struct yctx *y, yaml_node_t *v, void *o)
{
    (void)o;
    return each_named(y, v, "triggers", one_trigger);
}
static int p_rules(struct yctx *y, yaml_node_t *v, void *o)
{
    (void)o;
    return each_named(y, v, "rules", one_rule);
}
static const struct key package_keys[] = {
    {"version", p_version},         {"license", p_license}, {"inputs", p_inputs},
    {"annotations", p_annotations}, {"actions", p_actions}, {"sequences", p_sequences},
    {"triggers", p_triggers},       {"rules", p_rules},
};

static int one_package(struct yctx *y, const char *name, yaml_node_t *key, yaml_node_t *body)
{
    struct manifest *m = y->m;
    for (size_t i = 0; i < m->npkgs; i++)
        if (strcmp(m->pkgs[i].name, name) == 0)
            return yfail(y, key, "package '%s' is defined twice", name);
    struct mf_package *grown = realloc(m->pkgs, (m->npkgs + 1) * sizeof *grown);
    if (!grown)
        return yfail(y, key, "out of memory");
    m->pkgs = grown;
    struct mf_package *p = &grown[m->npkgs++];
    *p = (struct mf_package){
        .line = line_of(key), .inputs = json_object(), .annotations = json_object()};
    snprintf(p->name, sizeof p->name, "%s", name);
    y->pkg = p;
    return walk(y, body, "a package", package_keys, sizeof package_keys / sizeof *package_keys, p);
}

static int j_name(struct yctx *y, yaml_node_t *v, void *o)
{
    (void)o;
    return text_into(y, v, "project name", y->m->project, sizeof y->m->project);
}
static int j_packages(struct yctx *y, yaml_node_t *v, void *o)
{
    (void)o;
    return each_named(y, v, "packages", one_package);
}
static int j_project(struct yctx *y, yaml_node_t *v, void *o)
{
    static const struct key keys[] = {{"name", j_name}, {"packages", j_packages}};
    return walk(y, v, "the project", keys, sizeof keys / sizeof *keys, o);
}
static const struct key top_keys[] = {{"project", j_project}, {"packages", j_packages}};

/* ==== checks across the manifest ========================================= */

const struct mf_action *manifest_action(const struct manifest *m, const char *qname)
{
    for (size_t i = 0; i < m->npkgs; i++) {
        size_t n = strlen(m->pkgs[i].name);
        if (strncmp(qname, m->pkgs[i].name, n) || qname[n] != '/')
            continue;
        for (size_t k = 0; k < m->pkgs[i].nactions; k++)
            if (strcmp(m->pkgs[i].actions[k].name, qname + n + 1) == 0)
                return &m->pkgs[i].actions[k];
    }
    return NULL;
}

static int check_refs(struct manifest *m, const char *file, char *err, size_t cap)
{
    for (size_t i = 0; i < m->nrules; i++) {
        const struct mf_rule *r = &m->rules[i];
        size_t t = 0;
        while (t < m->ntriggers && strcmp(m->triggers[t].name, r->trigger))
            t++;
        if (t == m->ntriggers && r->trigger[0] != '/')
            return snprintf(
                       err, cap,
                       "%s:%d: rule '%s' names trigger '%s', which the manifest does not define",
                       file, r->line, r->name, r->trigger),
                   -1;
        if (r->action[0] != '/' && !manifest_action(m, r->action))
            return snprintf(
                       err, cap,
                       "%s:%d: rule '%s' names action '%s', which the manifest does not define",
                       file, r->line, r->name, r->action),
                   -1;
    }
    for (size_t i = 0; i < m->npkgs; i++)
        for (size_t k = 0; k < m->pkgs[i].nactions; k++) {
            const struct mf_action *a = &m->pkgs[i].actions[k];
            for (size_t c = 0; c < a->ncomponents; c++)
                if (a->components[c][0] != '/' && !manifest_action(m, a->components[c]))
                    return snprintf(err, cap,
                                    "%s:%d: sequence '%s' names action '%s', which the manifest "
                                    "does not define",
                                    file, a->line, a->name, a->components[c]),
                           -1;
        }
    return 0;
}

/* ==== loading ============================================================ */

/* Loads path as one YAML document into y->doc. */
static int load_doc(struct yctx *y, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return snprintf(y->err, y->cap, "%s: cannot open: %s", path, strerror(errno)), -1;
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int ok = yaml_parser_load(&p, &y->doc);
    if (!ok)
        snprintf(y->err, y->cap, "%s:%zu: YAML syntax error: %s%s%s", path, p.problem_mark.line + 1,
                 p.problem ? p.problem : "unknown", p.context ? " " : "",
                 p.context ? p.context : "");
    yaml_parser_delete(&p);
    fclose(f);
    if (!ok)
        return -1;
    if (!yaml_document_get_root_node(&y->doc)) {
        yaml_document_delete(&y->doc);
        return snprintf(y->err, y->cap, "%s:1: the file is empty", path), -1;
    }
    const char *slash = strrchr(path, '/');
    snprintf(y->dir, sizeof y->dir, "%.*s", slash ? (int)(slash - path + 1) : 0, path);
    return 0;
}

int manifest_load(struct manifest *m, const char *path, char *err, size_t cap)
{
    *m = (struct manifest){0};
    snprintf(m->file, sizeof m->file, "%s", path);
    struct yctx y = {.file = path, .err = err, .cap = cap, .m = m};
    if (load_doc(&y, path) < 0)
        return -1;
    yaml_node_t *root = yaml_document_get_root_node(&y.doc);
    int rc = walk(&y, root, "the manifest", top_keys, sizeof top_keys / sizeof *top_keys, m);
    if (rc == 0 && !*m->project)
        rc = yfail(&y, root, "the manifest names no project (project: name: NAME)");
    if (rc == 0 && !m->npkgs)
        rc = yfail(&y, root, "the manifest has no packages");
    if (rc == 0)
        rc = check_refs(m, path, err, cap);
    yaml_document_delete(&y.doc);
    if (rc < 0)
        manifest_fini(m);
    return rc;
}

/* ==== deployment files ==================================================== */

/* The deployment file's walk: the same shape, only names and inputs. */
struct dctx {
    struct mf_package *pkg;
};

static int d_inputs_into(struct yctx *y, yaml_node_t *v, json_t *into)
{
    json_t *over = json_object();
    int rc = read_inputs(y, v, over);
    if (rc == 0)
        json_object_update(into, over);
    json_decref(over);
    return rc;
}
static int da_inputs(struct yctx *y, yaml_node_t *v, void *o)
{
    return d_inputs_into(y, v, *(json_t **)o);
}
static const struct key d_entity_keys[] = {{"inputs", da_inputs}};

static int d_action(struct yctx *y, const char *name, yaml_node_t *key, yaml_node_t *body)
{
    for (size_t i = 0; i < y->pkg->nactions; i++)
        if (strcmp(y->pkg->actions[i].name, name) == 0)
            return walk(y, body, "an action", d_entity_keys, 1, &y->pkg->actions[i].inputs);
    return yfail(y, key, "action '%s/%s' is not in the manifest", y->pkg->name, name);
}
static int d_trigger(struct yctx *y, const char *name, yaml_node_t *key, yaml_node_t *body)
{
    for (size_t i = 0; i < y->m->ntriggers; i++)
        if (strcmp(y->m->triggers[i].name, name) == 0)
            return walk(y, body, "a trigger", d_entity_keys, 1, &y->m->triggers[i].inputs);
    return yfail(y, key, "trigger '%s' is not in the manifest", name);
}
static int dp_inputs(struct yctx *y, yaml_node_t *v, void *o)
{
    (void)o;
    return d_inputs_into(y, v, y->pkg->inputs);
}
static int dp_actions(struct yctx *y, yaml_node_t *v, void *o)
{
    (void)o;
    return each_named(y, v, "actions", d_action);
}
static int dp_triggers(struct yctx *y, yaml_node_t *v, void *o)
{
    (void)o;
    return each_named(y, v, "triggers", d_trigger);
}
static const struct key d_package_keys[] = {{"inputs", dp_inputs},
                                            {"actions", dp_actions},
                                            {"sequences", dp_actions},
                                            {"triggers", dp_triggers}};

static int d_package(struct yctx *y, const char *name, yaml_node_t *key, yaml_node_t *body)
{
    for (size_t i = 0; i < y->m->npkgs; i++)
        if (strcmp(y->m->pkgs[i].name, name) == 0) {
            y->pkg = &y->m->pkgs[i];
            return walk(y, body, "a package", d_package_keys,
                        sizeof d_package_keys / sizeof *d_package_keys, NULL);
        }
    return yfail(y, key, "package '%s' is not in the manifest", name);
}
static int dj_name(struct yctx *y, yaml_node_t *v, void *o)
{
    char name[MF_NAME_MAX];
    (void)o;
    if (text_into(y, v, "project name", name, sizeof name) < 0)
        return -1;
    return strcmp(name, y->m->project) == 0
               ? 0
               : yfail(y, v, "project '%s' is not the manifest's ('%s')", name, y->m->project);
}
static int dj_packages(struct yctx *y, yaml_node_t *v, void *o)
{
    (void)o;
    return each_named(y, v, "packages", d_package);
}
static int dj_project(struct yctx *y, yaml_node_t *v, void *o)
{
    static const struct key keys[] = {{"name", dj_name}, {"packages", dj_packages}};
    return walk(y, v, "the project", keys, 2, o);
}

int manifest_deployment(struct manifest *m, const char *path, char *err, size_t cap)
{
    static const struct key keys[] = {{"project", dj_project}, {"packages", dj_packages}};
    struct yctx y = {.file = path, .err = err, .cap = cap, .m = m};
    if (load_doc(&y, path) < 0)
        return -1;
    int rc = walk(&y, yaml_document_get_root_node(&y.doc), "the deployment", keys, 2, NULL);
    yaml_document_delete(&y.doc);
    return rc;
}

/* ==== freeing ============================================================= */

static void action_fini(struct mf_action *a)
{
    free(a->function), free(a->runtime), free(a->main), free(a->docker), free(a->web);
    json_decref(a->inputs), json_decref(a->annotations), json_decref(a->limits);
    for (size_t i = 0; i < a->ncomponents; i++)
        free(a->components[i]);
    free(a->components);
}

void manifest_fini(struct manifest *m)
{
    for (size_t i = 0; i < m->npkgs; i++) {
        struct mf_package *p = &m->pkgs[i];
        for (size_t k = 0; k < p->nactions; k++)
            action_fini(&p->actions[k]);
        free(p->actions), free(p->version), free(p->license);
        json_decref(p->inputs), json_decref(p->annotations);
    }
    for (size_t i = 0; i < m->ntriggers; i++) {
        free(m->triggers[i].feed);
        json_decref(m->triggers[i].inputs), json_decref(m->triggers[i].annotations);
    }
    free(m->pkgs), free(m->triggers), free(m->rules);
    m->pkgs = NULL, m->triggers = NULL, m->rules = NULL;
    m->npkgs = m->ntriggers = m->nrules = 0;
}
