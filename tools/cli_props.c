/* tools/cli_props.c - the wsk properties file (~/.wskprops) and the
 * settings a command runs with.
 *
 * The file is wsk's: KEY=VALUE lines (AUTH, APIHOST, NAMESPACE,
 * APIVERSION, CERT, KEY, CACERT, and whatever else tools put there, such
 * as APIGW_ACCESS_TOKEN), read the way wsk's ReadProps reads it: '#' to
 * the end of a line is a comment, blanks around are ignored, the last
 * line of a key wins. wsk rewrites the file from a map (its order and
 * comments lost); here it is kept as lines, so a `property set` changes
 * one line and nothing else, and a file wsk wrote reads and writes back
 * as wsk would have it.
 *
 * The one thing a newcomer gets wrong: WSK_CONFIG_FILE set to a file that
 * does not exist is not an error, it means "no properties" (wsk's rule),
 * so ~/.wskprops is then not read either. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "plat.h"

#define PROPS_MAX_BYTES (1u << 20)

int cli_props_path(char *out, size_t cap, struct cli_err *err)
{
    const char *env = getenv("WSK_CONFIG_FILE");
    const char *home = getenv("HOME");
    if (!env && (!home || !*home)) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!env && !home)
        return cli_fail(err, CLI_EXIT_GENERAL,
                        "Unable to locate properties file '~/.wskprops': no home directory "
                        "(set HOME or WSK_CONFIG_FILE)");
    int n = env ? snprintf(out, cap, "%s", env) : snprintf(out, cap, "%s/.wskprops", home);
    if (n < 0 || (size_t)n >= cap)
        return cli_fail(err, CLI_EXIT_GENERAL, "the properties file's path is too long");
    return 0;
}

/* The key and value of one line, blanks and comment gone; false for a
 * line that sets nothing. */
static bool line_kv(const char *line, char *key, size_t kcap, char *val, size_t vcap)
{
    size_t end = strcspn(line, "#");
    const char *eq = memchr(line, '=', end);
    if (!eq)
        return false;
    const char *k = line, *ke = eq, *v = eq + 1, *ve = line + end;
    while (k < ke && (*k == ' ' || *k == '\t'))
        k++;
    while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t' || ke[-1] == '\r'))
        ke--;
    while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
        ve--;
    if (ke == k || (size_t)(ke - k) >= kcap || (size_t)(ve - v) >= vcap)
        return false;
    snprintf(key, kcap, "%.*s", (int)(ke - k), k);
    snprintf(val, vcap, "%.*s", (int)(ve - v), v);
    return true;
}

static int add_line(struct cli_props *p, const char *s, size_t n)
{
    char **l = realloc(p->lines, (p->nlines + 1) * sizeof *l);
    if (!l)
        return -1;
    p->lines = l;
    if (!(l[p->nlines] = strndup(s, n)))
        return -1;
    p->nlines++;
    return 0;
}

int cli_props_load(struct cli_props *p, const char *path, struct cli_err *err)
{
    *p = (struct cli_props){0};
    snprintf(p->path, sizeof p->path, "%s", path);
    char *data = NULL;
    size_t len = 0;
    int rc = *path ? plat_read_file(path, PROPS_MAX_BYTES, &data, &len) : -ENOENT;
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return cli_fail(err, CLI_EXIT_GENERAL, "Unable to read the properties file '%s': %s", path,
                        strerror(-rc));
    for (const char *s = data; rc == 0 && s < data + len;) {
        const char *nl = memchr(s, '\n', (size_t)(data + len - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(data + len - s);
        rc = add_line(p, s, n);
        s += n + 1;
    }
    free(data);
    if (rc < 0) {
        cli_props_fini(p);
        return cli_fail(err, CLI_EXIT_GENERAL, "out of memory");
    }
    return 0;
}

const char *cli_props_get(const struct cli_props *p, const char *key)
{
    static char val[4096];
    char k[128], v[sizeof val];
    const char *found = NULL;
    for (size_t i = 0; i < p->nlines; i++)
        if (line_kv(p->lines[i], k, sizeof k, v, sizeof v) && strcmp(k, key) == 0) {
            memcpy(val, v, sizeof v);
            found = val;
        }
    return found;
}

int cli_props_set(struct cli_props *p, const char *key, const char *value)
{
    char *line = NULL;
    if (value && asprintf(&line, "%s=%s", key, value) < 0)
        return -1;
    char k[128], v[4096];
    size_t out = 0;
    for (size_t i = 0; i < p->nlines; i++) {
        if (!line_kv(p->lines[i], k, sizeof k, v, sizeof v) || strcmp(k, key) != 0) {
            p->lines[out++] = p->lines[i];
            continue;
        }
        free(p->lines[i]);
        if (line) { /* the first line of key takes the new value */
            p->lines[out++] = line;
            line = NULL;
        }
    }
    p->nlines = out;
    if (line) {
        int rc = add_line(p, line, strlen(line));
        free(line);
        return rc;
    }
    return 0;
}

int cli_props_save(const struct cli_props *p, struct cli_err *err)
{
    struct plat_buf b = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < p->nlines; i++)
        if ((rc = plat_buf_add(&b, p->lines[i], strlen(p->lines[i]))) == 0)
            rc = plat_buf_add(&b, "\n", 1);
    /* Write through a symlink (dotfiles kept elsewhere) and keep the
     * mode of a file that is there; a new one is private. */
    char real[PATH_MAX];
    const char *target = realpath(p->path, real) ? real : p->path;
    struct stat st;
    unsigned mode = stat(target, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0600;
    if (rc == 0)
        rc = plat_write_file(target, b.data ? b.data : "", b.len, mode);
    plat_buf_fini(&b);
    if (rc < 0)
        return cli_fail(err, CLI_EXIT_GENERAL, "Unable to write the properties file '%s': %s",
                        p->path, strerror(-rc));
    return 0;
}

void cli_props_fini(struct cli_props *p)
{
    for (size_t i = 0; i < p->nlines; i++)
        free(p->lines[i]);
    free(p->lines);
    p->lines = NULL;
    p->nlines = 0;
}

/* ==== the settings ====================================================== */

#define CONF(f) offsetof(struct cli_conf, f), sizeof(((struct cli_conf *)0)->f)
#define OVR(f) (int)offsetof(struct cli_overrides, f)

/* One row per setting: its properties key, wsk's environment variable,
 * and the flag (an offset into struct cli_overrides, -1 for none). */
static const struct setting {
    const char *prop, *env;
    size_t off, cap;
    int ovr;
} settings[] = {
    {"APIHOST", "WHISK_APIHOST", CONF(apihost), OVR(apihost)},
    {"AUTH", "WHISK_AUTH", CONF(auth), OVR(auth)},
    {"NAMESPACE", "WHISK_NAMESPACE", CONF(ns), -1},
    {"APIVERSION", "WHISK_APIVERSION", CONF(apiversion), OVR(apiversion)},
    {"CACERT", NULL, CONF(cacert), OVR(cacert)},
    {"CERT", NULL, CONF(cert), OVR(cert)},
    {"KEY", NULL, CONF(key), OVR(key)},
};

static int put(struct cli_conf *c, const struct setting *s, const char *v, const char *from,
               struct cli_err *err)
{
    if (!v || !*v)
        return 0;
    if (strlen(v) >= s->cap)
        return cli_fail(err, CLI_EXIT_USAGE, "%s from %s is longer than %zu bytes", s->prop, from,
                        s->cap - 1);
    memcpy((char *)c + s->off, v, strlen(v) + 1);
    return 0;
}

int cli_conf_load(struct cli_conf *c, const struct cli_overrides *o, struct cli_err *err)
{
    *c = (struct cli_conf){.ns = "_", .apiversion = "v1"};
    struct cli_props p;
    if (cli_props_path(c->props_path, sizeof c->props_path, err) < 0 ||
        cli_props_load(&p, c->props_path, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < WISP_ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        const char *flag = s->ovr >= 0 ? *(const char *const *)((const char *)o + s->ovr) : NULL;
        if ((rc = put(c, s, cli_props_get(&p, s->prop), c->props_path, err)) == 0 &&
            (rc = put(c, s, s->env ? getenv(s->env) : NULL, s->env ? s->env : "", err)) == 0)
            rc = put(c, s, flag, "the command line", err);
    }
    cli_props_fini(&p);
    c->insecure = o->insecure;
    c->verbose = o->verbose;
    return rc;
}
